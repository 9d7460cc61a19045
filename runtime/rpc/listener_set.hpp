#pragma once
/// The TCP listeners service modules open on the node's KJ loop (`listener_spec`): binds
/// each on the node's host, accepts connections and hands them to the module's handler,
/// counts them in `/metrics` (`wharf_listener_connections{listener}` open now,
/// `wharf_listener_accepted_total`, `wharf_listener_refused_total` over max_connections,
/// `wharf_listener_errors_total` of handlers that failed), and drains on stop: no new
/// connections, the open ones are told (`connection_context::draining`) and get until the
/// drain deadline to finish before they are cancelled. KJ loop thread only.

#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include <caf/error.hpp>

#include "runtime/rpc/front_end.hpp"

namespace wharf::runtime {

class node_metrics;

class listener_set {
public:
  listener_set(kj::Network& network, kj::Timer& timer, std::shared_ptr<node_metrics> metrics);
  ~listener_set();
  listener_set(const listener_set&) = delete;
  listener_set& operator=(const listener_set&) = delete;

  /// Binds `spec` on `host` and starts accepting; `unreachable` (naming the listener and the
  /// port) when it cannot bind. `wait_scope` resolves the address.
  [[nodiscard]] caf::error add(const std::string& host, listener_spec spec,
                               kj::WaitScope& wait_scope);

  /// The bound port of a listener (0 when none has that name).
  uint16_t port(const std::string& name) const;

  /// Stops accepting, tells every open connection and resolves when all ended or `timeout`
  /// passed (the rest are cancelled then).
  kj::Promise<void> drain(std::chrono::milliseconds timeout);

private:
  struct impl;
  std::unique_ptr<impl> impl_;
};

} // namespace wharf::runtime
