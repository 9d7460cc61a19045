#pragma once
/// Hosts a node's external endpoints on one KJ event-loop thread: the Cap'n Proto RPC server
/// (`api.capnp`, bootstrap `Node`), the HTTP server and the TCP listeners service modules
/// open. It knows no service by name: `Node.admin()` is the node's own operator interface;
/// every other `Node` accessor, `Node.service(name)`, every HTTP route but `/health` and
/// `/metrics`, and every extra listener come from the modules' front ends
/// (`runtime/rpc/front_end.hpp`).
///
/// Bridge: calls become CAF messages to actors and answers come back as cross-thread promise
/// fulfilments (`bridge.hpp`): the loop keeps serving while actors work.
/// HTTP: bodies are limited (413 naming the limit), a connection that does not start like an
/// HTTP request gets 400 and is closed at once, and every error body is JSON with
/// `error_code`.
///
/// Use from the main thread: construct, `start()`, `drain()` when the node begins to stop
/// (listeners stop accepting and their connections get up to the drain time to finish),
/// `stop()` before the actor system goes away.

#include <chrono>
#include <cstdint>
#include <memory>
#include <string>

#include <caf/error.hpp>
#include <caf/fwd.hpp>

#include "runtime/config/node_config.hpp"

namespace wharf::runtime {

class node_metrics;

struct rpc_options {
  node_config node;       ///< host, ports (0 = a free port; see rpc_port()), name, limits
  bool enable_rpc = true;
  bool enable_http = true;
  module_list modules;    ///< whose front ends to serve
};

class rpc_host {
public:
  rpc_host(caf::actor_system& sys, rpc_options opts, std::shared_ptr<node_metrics> metrics);
  ~rpc_host();
  rpc_host(const rpc_host&) = delete;
  rpc_host& operator=(const rpc_host&) = delete;

  /// Starts the KJ thread, binds every port and makes the modules' front ends; returns once
  /// all listen, or the first failure (`runtime_errc::unreachable`, naming the port).
  [[nodiscard]] caf::error start();

  /// Stops accepting on the modules' listeners, tells their connections to finish and waits
  /// until they did or `timeout` passed (then they are cancelled). RPC and HTTP keep serving.
  void drain(std::chrono::milliseconds timeout);

  /// Stops the loop and joins the thread. Idempotent.
  void stop();

  uint16_t rpc_port() const noexcept;
  uint16_t http_port() const noexcept;

  /// The port a module's listener got (0 when there is none of that name).
  uint16_t listener_port(const std::string& name) const;

private:
  struct impl;
  std::unique_ptr<impl> impl_;
};

} // namespace wharf::runtime
