#pragma once
/// The node's state-store actor: the only actor that touches RocksDB. Runs detached (its own
/// thread), so fsyncs never block a scheduler thread. Actors persist and restore their state
/// under their tree path through it.
///
/// Protocol (untyped):
/// - `(persist_atom, path, std::map<string,string> puts, std::vector<string> deletes)`
///     -> `ok_atom` once the batch is durable per the durability mode; error `storage_failure`.
/// - `(restore_atom, path)` -> `std::map<string,string>` (empty when nothing was stored).
/// - `(restore_atom, path, key)` -> `(bool found, std::string value)`: one key only.
/// - `(list_atom, parent)` -> `std::vector<std::string>`: the paths under `parent` (a path
///     prefix) that hold state, at most 100,000.
/// The same four with a `column_ref` after the atom work on a module's column family
/// (`service_module::column_families`) instead of the node's actor state; an unknown family
/// is error `not_found`.
/// - `(probe_atom)` -> `uint64_t` mailbox size.
/// Other actors find it by its tree path (`whereis system/store` through the root).

#include <memory>

#include <caf/behavior.hpp>
#include <caf/fwd.hpp>

#include "runtime/config/node_config.hpp"

namespace wharf::runtime {

class kv_store;
class node_metrics;

/// Behaviour of the state store. `store` is shared with the node, which closes it after the
/// actor system stopped; `metrics` may be null. In `group` mode, persists that arrive while a write is in flight are
/// committed together in one fsync'd batch (group commit); in `sync` mode each is its own.
caf::behavior state_store_impl(caf::event_based_actor* self, std::shared_ptr<kv_store> store,
                               durability_mode mode, std::shared_ptr<node_metrics> metrics);

} // namespace wharf::runtime
