#pragma once
/// Hosts a node's external endpoints on one KJ event-loop thread: the Cap'n Proto RPC server
/// (`api.capnp`, bootstrap `Node`) and the HTTP server (`GET /health`, `GET /metrics`).
///
/// Bridge: an RPC call becomes a CAF message to the cluster actor carrying a `reply_sink`
/// that fulfils a cross-thread KJ promise. Neither side ever waits on the other: the KJ loop
/// keeps serving while the actor works, and the actor's reply just wakes the loop.
/// Construct, `start()` from the main thread, `stop()` before the actor system goes away.

#include <cstdint>
#include <memory>
#include <string>

#include <caf/error.hpp>
#include <caf/fwd.hpp>

namespace wharf::runtime {

class node_metrics;

struct rpc_options {
  std::string host = "127.0.0.1";
  uint16_t rpc_port = 0;  ///< 0 = pick a free port; see `rpc_port()` after start
  uint16_t http_port = 0; ///< 0 = pick a free port
  bool enable_rpc = true;
  bool enable_http = true;
  std::string node_name;
};

class rpc_host {
public:
  rpc_host(caf::actor_system& sys, rpc_options opts, std::shared_ptr<node_metrics> metrics);
  ~rpc_host();
  rpc_host(const rpc_host&) = delete;
  rpc_host& operator=(const rpc_host&) = delete;

  /// Starts the KJ thread and binds both ports; returns once they listen or binding failed.
  [[nodiscard]] caf::error start();

  /// Stops the loop and joins the thread. Idempotent.
  void stop();

  uint16_t rpc_port() const noexcept;
  uint16_t http_port() const noexcept;

private:
  struct impl;
  std::unique_ptr<impl> impl_;
};

} // namespace wharf::runtime
