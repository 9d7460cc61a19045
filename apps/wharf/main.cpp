// wharf: the command-line tool. `wharf console --connect HOST:PORT` opens the interactive
// operator console (history, tab completion); `-c "COMMAND"` runs one command and exits
// non-zero when it fails.
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <iostream>

#include <unistd.h>

#include <CLI/CLI.hpp>
#include <editline/readline.h>

#include "actors/analytics/datagen.hpp"
#include "report_cmd.hpp"
#include "runtime/config/node_config.hpp"
#include "runtime/console/console.hpp"
#include "runtime/core/types.hpp"
#include "runtime/pg/pg_connection.hpp"
#include "runtime/rpc/admin_client.hpp"

using namespace wharf;

namespace {

char* complete_command(const char* text, int state) {
  static size_t index;
  if (state == 0)
    index = 0;
  auto& cmds = runtime::console_commands();
  auto len = strlen(text);
  while (index < cmds.size()) {
    auto& c = cmds[index++];
    if (c.compare(0, len, text) == 0)
      return strdup(c.c_str());
  }
  return nullptr;
}

char** completion(const char* text, int start, int) {
  rl_attempted_completion_over = 1;
  if (start != 0)
    return nullptr; // only the command word completes; node names vary
  return rl_completion_matches(text, complete_command);
}

int print(const runtime::console_result& r) {
  std::cout << r.output << std::flush;
  std::cerr << r.error << std::flush;
  return r.exit_code;
}

int console(const std::string& connect, const std::vector<std::string>& commands,
            int timeout_ms) {
  auto ep = runtime::parse_endpoint(connect, "--connect");
  if (!ep) {
    std::cerr << "wharf console: " << runtime::describe(ep.error()) << '\n';
    return 2;
  }
  runtime::admin_client client{ep->host, ep->port, std::chrono::milliseconds{timeout_ms}};
  if (!commands.empty()) {
    int rc = 0;
    for (auto& c : commands) {
      rc = print(runtime::run_console_command(client, c));
      if (rc != 0)
        break;
    }
    return rc;
  }
  // Interactive: check the node answers first, so a typo in --connect fails fast.
  auto hello = runtime::run_console_command(client, "nodes");
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
  rl_attempted_completion_function = completion;
  auto prompt = "wharf " + connect + "> ";
  while (char* raw = readline(prompt.c_str())) {
    std::string line{raw};
    free(raw);
    if (line.find_first_not_of(" \t") == std::string::npos)
      continue;
    add_history(line.c_str());
    auto r = runtime::run_console_command(client, line);
    print(r);
    if (r.quit)
      break;
  }
  if (!history_file.empty())
    write_history(history_file.c_str());
  return 0;
}

int datagen(const std::string& dataset, std::string dsn, const actors::datagen_options& opts) {
  if (dataset != "user_events") {
    std::cerr << "wharf datagen: unknown dataset \"" << dataset << "\" (known: user_events)\n";
    return 2;
  }
  if (dsn.empty())
    if (auto env = std::getenv("WHARF_PG_DSN"))
      dsn = env;
  if (dsn.empty()) {
    std::cerr << "wharf datagen: no database: pass --dsn or set WHARF_PG_DSN\n";
    return 2;
  }
  auto pg = runtime::pg_connection::open(dsn);
  if (!pg) {
    std::cerr << "wharf datagen: " << runtime::describe(pg.error()) << '\n';
    return 1;
  }
  bool tty = isatty(2);
  auto progress = [&](uint64_t rows) {
    if (tty)
      std::cerr << "\r" << rows << " / " << opts.rows << " rows" << std::flush;
  };
  auto res = actors::generate_user_events(**pg, opts, progress);
  if (tty)
    std::cerr << "\r" << std::string(40, ' ') << "\r";
  if (!res) {
    std::cerr << "wharf datagen: " << runtime::describe(res.error()) << '\n';
    return runtime::code_of(res.error()) == runtime::runtime_errc::bad_request ? 2 : 1;
  }
  std::cout << "loaded " << res->rows << " rows into " << opts.table << " in " << res->seconds
            << " s (" << static_cast<uint64_t>(res->rows / std::max(res->seconds, 1e-9))
            << " rows/s), seed " << opts.seed << ", " << opts.users << " users\n";
  return 0;
}

} // namespace

int main(int argc, char** argv) {
  CLI::App app{"wharf: command-line tool for a wharf cluster", "wharf"};
  app.require_subcommand(1);
  auto* con = app.add_subcommand(
    "console", "operator console: interactive, or scripted with -c\n" + runtime::console_help());
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
  cli::report_options ro;
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
    return console(connect, commands, timeout_ms);
  if (*gen)
    return datagen(dataset, dsn, gen_opts);
  if (*rep)
    return cli::run_report(ro);
  return 2;
}
