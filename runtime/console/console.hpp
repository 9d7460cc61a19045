#pragma once
/// The operator console's command language, independent of the terminal: parse a line, run
/// it against a node through `rpc_client`, render the answer as text. The node's own commands
/// (nodes, tree, actors, stats, kill) live here; every service module adds its own
/// (`service_module::console_commands`), with usage, help and argument completion. The
/// `wharf console` app adds line editing and history on top.

#include <functional>
#include <string>
#include <vector>

#include "runtime/config/node_config.hpp"

namespace wharf::runtime {

class rpc_client;

/// The outcome of one console command.
struct console_result {
  int exit_code = 0;  ///< 0 ok, 1 command failed, 2 usage error
  std::string output; ///< text for stdout (ends with a newline when non-empty)
  std::string error;  ///< text for stderr
  bool quit = false;  ///< the user asked to leave

  /// A failed command: "error (code): message".
  static console_result failure(const std::string& code, const std::string& message);
};

/// One console command. `usage` names its arguments ("jobs [NODE]", "kill NODE PATH"); an
/// argument named NODE completes with member names. The words after the command are split
/// on blanks into at most `max_args` arguments (the last takes the rest of the line); fewer
/// than `min_args` or more than `max_args` is a usage error (exit code 2).
struct console_command {
  std::string name;
  std::string usage;
  std::string help;
  size_t min_args = 0;
  size_t max_args = 0;
  std::function<console_result(rpc_client& client, const std::vector<std::string>& args)> run;
};

class console {
public:
  /// `client` must outlive the console.
  console(rpc_client& client, const module_list& modules);

  /// Runs one command line (e.g. "tree n2", "kill n1 services/echo").
  console_result run(const std::string& line);

  /// Command names (and `exit`), for completion.
  std::vector<std::string> command_names() const;

  /// The `help` text.
  std::string help() const;

  /// Completions of the last word of `line` (what was typed so far): command names for the
  /// first word; member names for an argument named NODE (asked of the node once).
  std::vector<std::string> complete(const std::string& line);

private:
  const console_command* find(const std::string& name) const;
  std::vector<console_command> commands_;
  rpc_client& client_;
  std::vector<std::string> members_; // cached for completion
};

/// The help text of `modules`' commands and the node's, for `wharf console --help`.
std::string console_help(const module_list& modules);

} // namespace wharf::runtime
