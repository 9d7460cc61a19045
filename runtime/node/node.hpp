#pragma once
/// Runs one wharf-node until SIGTERM/SIGINT: opens the node's RocksDB, starts the actor
/// system and the supervision tree, publishes the cluster port, serves RPC and HTTP, then on
/// a signal leaves the cluster and shuts the tree down in order.
///
/// The tree: `/` (one_for_one) -> `system` (rest_for_one: `store`, `cluster`) and `services`
/// (one_for_one: the children of every module whose roles this node has, in module order).
/// Paths as in `tree`.

#include "runtime/config/node_config.hpp"

namespace wharf::runtime {

/// Blocks until the node stops. Returns the process exit code: 0 after a clean stop, 1 when
/// the node could not start (port in use, data dir locked) or its root supervisor gave up.
/// Call from `main` before any other thread exists (it sets the signal mask). `modules` have
/// read their config sections already (see `load_node_config`).
int run_node(const node_config& cfg, const module_list& modules);

/// The whole of `wharf-node`: parses the flags and the config file (the modules' sections
/// too; `--help` and `--dump-config` show them), validates, and runs the node with
/// `modules`. Returns the exit code: 0 clean stop, 1 runtime failure, 2 bad configuration
/// or usage.
int node_main(int argc, char** argv, const module_list& modules);

} // namespace wharf::runtime
