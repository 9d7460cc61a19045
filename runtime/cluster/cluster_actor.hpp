#pragma once
/// The cluster actor: one per node, published on the cluster port. It owns the member table,
/// exchanges `cluster.capnp` envelopes with the other nodes' cluster actors, detects failures
/// (CAF monitor for lost connections, heartbeat timeout for frozen processes), and executes or
/// forwards operator commands.
///
/// Membership: a node sends `join` to each seed and to every member it learns of; the receiver
/// answers with its full table and gossips the change to the others, so every node connects to
/// every other one (full mesh) and converges on the same table. For the same name a higher
/// incarnation wins (a restarted node replaces its old row).
///
/// Failure: a member whose connection drops, or that sends no heartbeat for
/// `failure_timeout`, is marked down; requests pending towards it fail at once with
/// `errorCode = PEER_DOWN` (CAF 0.17 would otherwise let them wait for their own timeout).
///
/// Local protocol (untyped):
/// - `(admin_atom, admin_request)` -> `admin_reply`: run or forward an operator command;
///   failures are replies with `error`/`error_code` set (protocols/error_code.hpp).
/// - `(call_atom, node, service, payload)` -> `std::string`: hands `payload` to the actor
///   registered as `service` on `node` ("" = here) as `(call_atom, payload)` and answers its
///   reply, or an error (PEER_DOWN as soon as the node is seen failing).
/// - `(wire_atom, std::string bytes)` -> `std::string bytes`: an encoded envelope from a peer.
/// Registers itself as `cluster_name` in the actor system's registry.

#include <cstdint>
#include <memory>

#include <caf/behavior.hpp>
#include <caf/fwd.hpp>

#include "runtime/config/node_config.hpp"
#include "runtime/supervision/supervisor.hpp"

namespace wharf::runtime {

struct cluster_args {
  node_config config;
  uint64_t incarnation = 0; ///< grows across restarts of the node (persisted in RocksDB)
};

caf::behavior cluster_impl(caf::event_based_actor* self, child_context ctx, cluster_args args);

} // namespace wharf::runtime
