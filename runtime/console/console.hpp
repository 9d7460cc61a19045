#pragma once
/// The operator console's command language, independent of the terminal: parse a line, run it
/// against a node through `admin_client`, render the answer as text. The `wharf console` app
/// adds line editing, history and completion on top.

#include <string>
#include <vector>

namespace wharf::runtime {

class admin_client;

/// The outcome of one console command.
struct console_result {
  int exit_code = 0;  ///< 0 ok, 1 command failed, 2 usage error
  std::string output; ///< text for stdout (ends with a newline when non-empty)
  std::string error;  ///< text for stderr
  bool quit = false;  ///< the user asked to leave
};

/// Command names, for tab completion.
const std::vector<std::string>& console_commands();

/// The `help` text.
std::string console_help();

/// Runs one command line (e.g. "tree n2", "kill n1 services/register").
console_result run_console_command(admin_client& client, const std::string& line);

} // namespace wharf::runtime
