#pragma once
/// Runs one wharf-node until SIGTERM/SIGINT: opens the node's RocksDB, starts the actor
/// system and the supervision tree, publishes the cluster port, serves RPC and HTTP, then on
/// a signal leaves the cluster and shuts the tree down in order.
///
/// The tree: `/` (one_for_one) -> `system` (rest_for_one: `store`, `cluster`) and `services`
/// (one_for_one: the caller's `services`, e.g. actors/registers). Paths as in `tree`.

#include <vector>

#include "runtime/config/node_config.hpp"
#include "runtime/supervision/supervisor.hpp"

namespace wharf::runtime {

/// Blocks until the node stops. Returns the process exit code: 0 after a clean stop, 1 when
/// the node could not start (port in use, data dir locked) or its root supervisor gave up.
/// Call from `main` before any other thread exists (it sets the signal mask).
int run_node(const node_config& cfg, std::vector<child_spec> services);

} // namespace wharf::runtime
