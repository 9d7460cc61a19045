// wharf: the command-line tool. `wharf console --connect HOST:PORT` opens the interactive
// operator console (history, completion of commands and node names); `-c "COMMAND"` runs one
// command and exits non-zero when it fails. `wharf report` and `wharf datagen` come from the
// analytics module. This file is wiring: the terminal, the flags and the modules it links.
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <iostream>

#include <CLI/CLI.hpp>
#include <editline/readline.h>

#include "actors/analytics/datagen.hpp"
#include "actors/analytics/module.hpp"
#include "actors/analytics/report_cli.hpp"
#include "actors/registers/register_module.hpp"
#include "runtime/config/node_config.hpp"
#include "runtime/console/console.hpp"
#include "runtime/core/types.hpp"
#include "runtime/rpc/rpc_client.hpp"

using namespace wharf;

namespace {

runtime::console* active = nullptr; // the console editline completes for

char* complete_word(const char*, int state) {
  static std::vector<std::string> matches;
  static size_t index;
  if (state == 0) {
    index = 0;
    matches = active ? active->complete(std::string(rl_line_buffer, static_cast<size_t>(rl_point)))
                     : std::vector<std::string>{};
  }
  if (index < matches.size())
    return strdup(matches[index++].c_str());
  return nullptr;
}

char** completion(const char* text, int, int) {
  rl_attempted_completion_over = 1;
  return rl_completion_matches(text, complete_word);
}

int print(const runtime::console_result& r) {
  std::cout << r.output << std::flush;
  std::cerr << r.error << std::flush;
  return r.exit_code;
}

int console(const runtime::module_list& modules, const std::string& connect,
            const std::vector<std::string>& commands, int timeout_ms) {
  auto ep = runtime::parse_endpoint(connect, "--connect");
  if (!ep) {
    std::cerr << "wharf console: " << runtime::describe(ep.error()) << '\n';
    return 2;
  }
  runtime::rpc_client client{ep->host, ep->port, std::chrono::milliseconds{timeout_ms}};
  runtime::console con{client, modules};
  if (!commands.empty()) {
    int rc = 0;
    for (auto& c : commands) {
      rc = print(con.run(c));
      if (rc != 0)
        break;
    }
    return rc;
  }
  // Interactive: check the node answers first, so a typo in --connect fails fast.
  auto hello = con.run("nodes");
  if (hello.exit_code != 0) {
    std::cerr << hello.error;
    return 1;
  }
  std::cout << "connected to " << connect << "; type `help` for commands, Ctrl-D to leave\n";
  std::string history_file;
  if (auto home = std::getenv("HOME"))
    history_file = std::string(home) + "/.wharf_history";
  using_history();
  if (!history_file.empty())
    read_history(history_file.c_str());
  active = &con;
  rl_attempted_completion_function = completion;
  auto prompt = "wharf " + connect + "> ";
  while (char* raw = readline(prompt.c_str())) {
    std::string line{raw};
    free(raw);
    if (line.find_first_not_of(" \t") == std::string::npos)
      continue;
    add_history(line.c_str());
    auto r = con.run(line);
    print(r);
    if (r.quit)
      break;
  }
  active = nullptr;
  if (!history_file.empty())
    write_history(history_file.c_str());
  return 0;
}

} // namespace

int main(int argc, char** argv) {
  actors::register_module kv;
  actors::analytics_module analytics;
  runtime::module_list modules{&kv, &analytics};
  CLI::App app{"wharf: command-line tool for a wharf cluster", "wharf"};
  app.require_subcommand(1);
  auto* con = app.add_subcommand("console", "operator console: interactive, or scripted with -c\n"
                                              + runtime::console_help(modules));
  std::string connect = "127.0.0.1:7101";
  std::vector<std::string> commands;
  int timeout_ms = 30000;
  con->add_option("--connect", connect, "RPC address of any node [default: 127.0.0.1:7101]");
  con->add_option("-c,--command", commands,
                  "run COMMAND and exit (repeatable; stops at the first failure)");
  con->add_option("--timeout-ms", timeout_ms, "per-command timeout [default: 30000]");
  auto* gen = app.add_subcommand(
    "datagen", "load deterministic test data into PostgreSQL (binary COPY, one transaction)");
  std::string dataset, dsn;
  actors::datagen_options gen_opts;
  gen->add_option("dataset", dataset, "what to generate: user_events")->required();
  gen->add_option("--dsn", dsn, "libpq connection string [default: $WHARF_PG_DSN]");
  gen->add_option("--rows", gen_opts.rows, "number of rows")->required();
  gen->add_option("--users", gen_opts.users, "distinct user ids drawn from [default: 100000]");
  gen->add_option("--seed", gen_opts.seed, "seed; the same seed gives the same rows [default: 1]");
  gen->add_option("--table", gen_opts.table, "target table [default: user_events]");
  gen->add_flag("--replace", gen_opts.replace, "drop and reload the table if it exists");
  auto* rep = app.add_subcommand(
    "report", "run a report on the cluster (offloaded SQL analytics) and print its rows");
  actors::report_options ro;
  rep->add_option("name", ro.name, "report name, e.g. user_behavior_report")->required();
  rep->add_option("--connect", ro.connect, "RPC address of any node [default: 127.0.0.1:7101]");
  rep->add_option("--start", ro.start, "first day (YYYY-MM-DD = its midnight) or timestamp, inclusive");
  rep->add_option("--end", ro.end, "last day or timestamp, inclusive (BETWEEN)");
  rep->add_option("--user", ro.users, "only this user id (repeatable)");
  rep->add_option("--filter", ro.filters, "KEY=VALUE equality filter on a column the report allows (repeatable)");
  rep->add_option("--mode", ro.mode, "auto (from PostgreSQL's statistics), pushdown or pull [default: auto]");
  rep->add_option("--format", ro.format, "json, csv or table [default: table]");
  rep->add_option("--out", ro.out, "write the rows to FILE instead of stdout");
  rep->add_option("--deadline-ms", ro.deadline_ms, "give up after this long (TIMEOUT) [default: the node's, 300000]");
  rep->add_option("--partitions", ro.partitions, "partitions to split the read into [default: 4 x worker threads in the cluster]");
  rep->add_flag("--no-progress", [&](int64_t) { ro.progress = false; }, "no progress bar on a terminal");
  rep->add_flag("-q,--quiet", ro.quiet, "no summary line on stderr");
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e) == 0 ? 0 : 2;
  }
  if (*con)
    return console(modules, connect, commands, timeout_ms);
  if (*gen)
    return actors::run_datagen(dataset, dsn, gen_opts);
  if (*rep)
    return actors::run_report(ro);
  return 2;
}
