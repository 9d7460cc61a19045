#pragma once
/// Real wharf-node processes for system tests: start with flags, signal, wait, read the log.
/// Everything binds to 127.0.0.1 on ports picked free by the kernel.

#include <chrono>
#include <functional>
#include <string>
#include <vector>

#include <sys/types.h>

namespace wharf::test {

/// A port that was free a moment ago (bind to 0, read, close).
uint16_t free_port();

/// Polls `cond` every 20 ms until it holds or `limit` passes; returns whether it held.
/// A bound on waiting for a condition, not a timing assertion.
bool eventually(const std::function<bool()>& cond,
                std::chrono::milliseconds limit = std::chrono::seconds{20});

/// Runs a command to completion; returns its exit code and captures stdout+stderr.
int run_command(const std::vector<std::string>& argv, std::string* output);

/// `GET path` over a raw socket; returns the status code (0 when the connection failed).
int http_get(uint16_t port, const std::string& path, std::string* body = nullptr);

/// `METHOD path` with `body` (sent as application/json when not empty) over a raw socket;
/// waits at most `limit` for the whole response. Returns the status code (0 when the
/// connection failed or no complete response arrived) and the response body.
int http_request(uint16_t port, const std::string& method, const std::string& path,
                 const std::string& body, std::string* response_body = nullptr,
                 std::chrono::milliseconds limit = std::chrono::seconds{30});

/// Opens a TCP connection to the port, writes `bytes`, reads until the peer closes or 2 s
/// pass, and closes. Returns false when the connection could not be made.
bool send_raw(uint16_t port, const std::string& bytes);

class node_process {
public:
  struct ports {
    uint16_t cluster = 0, rpc = 0, http = 0;
  };

  /// Does not start anything yet. `seed_port` 0 means "seed myself" (a new cluster).
  node_process(std::string name, std::string data_dir, std::string log_dir, uint16_t seed_port);
  ~node_process(); // SIGKILLs a process still running

  node_process(const node_process&) = delete;
  node_process& operator=(const node_process&) = delete;

  /// Starts the process (again) with the same name, ports and data directory.
  void start(const std::vector<std::string>& extra_flags = {});

  /// Sends `sig` (SIGKILL, SIGSTOP, SIGCONT, SIGTERM).
  void signal(int sig);

  /// Waits for the process to exit; returns its exit code (128+signal when killed), or -1
  /// if it did not exit within `limit`.
  int wait(std::chrono::milliseconds limit = std::chrono::seconds{20});

  bool running() const noexcept { return pid_ > 0; }
  const std::string& name() const noexcept { return name_; }
  const ports& port() const noexcept { return ports_; }
  std::string log() const;
  std::string log_tail(size_t lines = 30) const;

private:
  std::string name_;
  std::string data_dir_;
  std::string log_path_;
  uint16_t seed_port_;
  ports ports_;
  pid_t pid_ = -1;
};

} // namespace wharf::test
