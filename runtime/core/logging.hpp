#pragma once
/// Process-wide log setup: one line per event on stderr,
/// `2026-11-21T22:14:43.875Z level node=n1 message`. Called once by `main`.

#include <string>

namespace wharf::runtime {

/// Installs the default spdlog logger for this process. `level` is one of
/// trace|debug|info|warn|error|off (validated by `node_config::validate`).
void setup_logging(const std::string& node_name, const std::string& level);

} // namespace wharf::runtime
