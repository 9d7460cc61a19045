#pragma once
/// A service module's front end on the node's KJ loop: the Cap'n Proto capability the `Node`
/// bootstrap hands out for it, its HTTP routes and its own TCP listeners. The node makes one
/// per module (`service_module::make_front`) on the loop thread when it starts serving and
/// destroys it there when it stops, after draining the module's listeners.
///
/// Everything here runs on the KJ loop thread and must never block it: talk to actors through
/// `front_context::bridge` (a CAF request whose answer resumes a promise) and stream to
/// clients through a `feed`. Include only from front-end `.cpp` files (pulls KJ and capnp in).

#include <chrono>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include <capnp/capability.h>
#include <kj/async-io.h>

#include "runtime/http/route_table.hpp"
#include "runtime/rpc/bridge.hpp"

namespace wharf::runtime {

class node_metrics;
struct node_config;

/// What a front end may use. Valid on the KJ thread while the front end lives.
struct front_context {
  kj_bridge& bridge;                     ///< to the node's actors
  const node_config& node;               ///< name, host, roles, timeouts
  std::shared_ptr<node_metrics> metrics; ///< the node's metrics (families of its own)
  kj::Timer& timer;                      ///< the loop's timer
  kj::TaskSet& tasks;                    ///< background work on the loop (failures logged)
  kj::Network& network;                  ///< for outgoing connections
};

/// One TCP connection of a module's listener, from accept until its handler's promise ends.
struct connection_context {
  std::string peer;   ///< "host:port" of the client
  /// Resolves when the node starts draining (SIGTERM): finish the current exchange and let
  /// the promise end; the node cancels what is left after `[node] shutdown_timeout_ms`.
  kj::ForkedPromise<void>& draining;
};

/// Serves one connection; the node owns the stream and closes it when the promise ends.
using connection_handler =
  std::function<kj::Promise<void>(kj::AsyncIoStream& stream, connection_context& ctx)>;

/// A TCP listener a module opens on the node's host (PostgreSQL wire, WebSocket, ...).
struct listener_spec {
  std::string name;        ///< metrics label, e.g. "pgwire"; unique in the node
  uint16_t port = 0;       ///< 0 = a free port (logged), typically from the module's config
  size_t max_connections = 10000; ///< more are accepted and closed at once (counted)
  connection_handler handler;
};

class module_front {
public:
  virtual ~module_front();

  /// The capability served as `Node.<module name>()` (the typed accessor in api.capnp) and
  /// `Node.service("<module name>")`; none (the default) when the module has no capability.
  virtual kj::Maybe<capnp::Capability::Client> capability();

  /// Adds the module's HTTP routes.
  virtual void add_routes(route_table& routes);

  /// The listeners the module needs.
  virtual std::vector<listener_spec> listeners();
};

} // namespace wharf::runtime
