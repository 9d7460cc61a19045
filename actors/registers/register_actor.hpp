#pragma once
/// A durable key/value register: the simplest stateful service, and the one the console's
/// `get`/`put` and the recovery tests use. It restores its map from the state store when it
/// starts (after a crash or a node restart) and acknowledges a `put` only once the store says
/// the write is durable.
///
/// Protocol (untyped):
/// - `(get_atom, key)` -> `(bool found, std::string value)`
/// - `(put_atom, key, value)` -> `ok_atom` once durable; error `storage_failure`
/// - `(probe_atom)` -> `uint64_t` mailbox size
/// Registers itself as `register_name`. Finds the store at path `system/store` via the root.

#include <caf/behavior.hpp>
#include <caf/fwd.hpp>

#include "runtime/supervision/supervisor.hpp"

namespace wharf::actors {

caf::behavior register_impl(caf::event_based_actor* self, runtime::child_context ctx);

/// The child spec the node uses: name "register", permanent.
runtime::child_spec register_child();

} // namespace wharf::actors
