#pragma once
/// Process-wide log setup, on stderr, one event per line, in one of two formats:
/// - text: `2026-11-21T22:14:43.875Z info node=n1 message`
/// - json: `{"ts":"2026-11-21T22:14:43.875Z","level":"info","node":"n1","actor":"...",
///   "trace":"1f2e...","msg":"..."}` (every value escaped), for the log stacks operators run.
/// `actor` and `trace` come from the `log_context` of the thread that logs (empty when none).
/// Called once by `main`.

#include <cstdint>
#include <string>

namespace wharf::runtime {

/// Installs the default spdlog logger for this process. `level` is one of
/// trace|debug|info|warn|error|off, `format` text|json (validated by `node_config::validate`).
void setup_logging(const std::string& node_name, const std::string& level,
                   const std::string& format = "text");

/// Names the actor (its tree path) and the trace id the current thread works for, while it
/// lives; JSON log lines carry them. Set it at the top of a handler (a CAF handler runs on
/// one thread from start to end). Scopes nest; the inner one wins until it ends.
class log_context {
public:
  /// `actor` must outlive this object.
  log_context(const std::string& actor, uint64_t trace) noexcept;

  /// For a detached actor (a thread of its own for its whole life): names it and its trace
  /// for every line the calling thread logs from now on.
  static void set_for_thread(std::string actor, uint64_t trace);
  ~log_context();
  log_context(const log_context&) = delete;
  log_context& operator=(const log_context&) = delete;

private:
  const std::string* prev_actor_;
  uint64_t prev_trace_;
};

} // namespace wharf::runtime
