#pragma once
/// A durable key/value register: the simplest stateful service, behind the console's
/// `get`/`put` and the recovery tests. It restores its map from the state store when it
/// starts (after a crash or a node restart) and acknowledges a `put` only once the store says
/// the write is durable.
///
/// Protocol (untyped):
/// - `(call_atom, payload)` -> `std::string`: `payload` is an encoded `kv::RegisterCall`
///   (protocols/kv.capnp), the answer an encoded `kv::RegisterReply`; local front ends and
///   other nodes (through the cluster actor, service "kv") call it alike. Malformed calls get
///   a reply with errorCode INVALID_ARGUMENT.
/// - `(probe_atom)` -> `uint64_t` mailbox size
/// Registers itself under the module's name ("kv"). Finds the store at `system/store`.

#include <string>

#include <caf/behavior.hpp>
#include <caf/fwd.hpp>

#include "runtime/supervision/supervisor.hpp"

namespace wharf::actors {

/// The registry name (and service name over the cluster) of the register: the module's name.
constexpr char register_service[] = "kv";

/// `node_name` is the node's, named in every reply.
caf::behavior register_impl(caf::event_based_actor* self, runtime::child_context ctx,
                            std::string node_name);

/// Encodes a get (`put` false) or put of `key` for the register.
std::string encode_register_call(const std::string& key, bool put, const std::string& value);

} // namespace wharf::actors
