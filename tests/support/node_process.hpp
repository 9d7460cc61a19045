#pragma once
/// Real wharf-node processes for system tests: start with flags, signal, wait, read the log.
/// Everything binds to 127.0.0.1 on ports from `free_port`.

#include <chrono>
#include <functional>
#include <string>
#include <vector>

#include <sys/types.h>

namespace wharf::test {

/// A free port on 127.0.0.1 that stays this process's: below the kernel's ephemeral range
/// (so no connect() or bind(0) elsewhere gets it meanwhile), locked against other test
/// processes (a lock file per port under /tmp/wharf-test-ports), never given twice.
uint16_t free_port();

/// A plain TCP client on 127.0.0.1 for listener tests.
class tcp_client {
public:
  explicit tcp_client(uint16_t port); ///< connects (`connected()` tells whether it could)
  ~tcp_client();
  tcp_client(const tcp_client&) = delete;
  tcp_client& operator=(const tcp_client&) = delete;
  bool connected() const noexcept { return fd_ >= 0; }
  bool send(const std::string& bytes);
  /// Ends what this side sends (the peer reads end-of-stream); reading goes on.
  void shutdown_write();
  /// Reads until what arrived contains `text`, the peer closes or `limit` passes; returns
  /// everything read so far (on this call and earlier unconsumed reads).
  std::string read_until(const std::string& text,
                         std::chrono::milliseconds limit = std::chrono::seconds{10});
  /// Whether the peer closed (a read returned end-of-stream).
  bool closed() const noexcept { return closed_; }

private:
  int fd_ = -1;
  bool closed_ = false;
  std::string buffer_;
};

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

  /// Runs `path` instead of wharf-node (a node binary with other modules linked).
  void binary(std::string path) { binary_ = std::move(path); }

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
  std::string binary_;
  uint16_t seed_port_;
  ports ports_;
  pid_t pid_ = -1;
};

} // namespace wharf::test
