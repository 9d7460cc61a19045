// wharf: the command-line tool. `wharf console --connect HOST:PORT` opens the interactive
// operator console (history, tab completion); `-c "COMMAND"` runs one command and exits
// non-zero when it fails.
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <iostream>

#include <CLI/CLI.hpp>
#include <editline/readline.h>

#include "runtime/config/node_config.hpp"
#include "runtime/console/console.hpp"
#include "runtime/core/types.hpp"
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
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e) == 0 ? 0 : 2;
  }
  if (*con)
    return console(connect, commands, timeout_ms);
  return 2;
}
