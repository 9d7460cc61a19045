#pragma once
/// Atoms, error codes and message-type registration shared by every runtime component.
/// Call `add_types(cfg)` on every node's `actor_system_config` before creating the system:
/// CAF 0.17 rejects unannounced types at run time, even for local sends.

#include <cstdint>
#include <functional>
#include <memory>
#include <string>

#include <caf/atom.hpp>
#include <caf/error.hpp>
#include <caf/fwd.hpp>

#include "protocols/error_code.hpp"
#include "protocols/messages.hpp"

namespace wharf::runtime {

// -- atoms (at most 10 characters each) --

// Each atom has one meaning across the node; services define their own atoms next to their
// actors.
using wire_atom = caf::atom_constant<caf::atom("wire")>;       ///< envelope, request/response
using cast_atom = caf::atom_constant<caf::atom("cast")>;       ///< envelope, one-way
using admin_atom = caf::atom_constant<caf::atom("admin")>;     ///< operator command
using tree_atom = caf::atom_constant<caf::atom("tree")>;       ///< supervision tree query
using probe_atom = caf::atom_constant<caf::atom("probe")>;     ///< mailbox-size probe, only
using kill_atom = caf::atom_constant<caf::atom("kill")>;       ///< fault injection
using whereis_atom = caf::atom_constant<caf::atom("whereis")>; ///< resolve an actor path
using tick_atom = caf::atom_constant<caf::atom("tick")>;       ///< periodic timer
using persist_atom = caf::atom_constant<caf::atom("persist")>; ///< durable write
using restore_atom = caf::atom_constant<caf::atom("restore")>; ///< durable read
using list_atom = caf::atom_constant<caf::atom("list")>;       ///< durable paths under a path
using flush_atom = caf::atom_constant<caf::atom("flush")>;     ///< group-commit flush
using stop_atom = caf::atom_constant<caf::atom("stop")>;       ///< ordered shutdown step
using retry_atom = caf::atom_constant<caf::atom("retry")>;     ///< retry a failed child start
using call_atom = caf::atom_constant<caf::atom("call")>;       ///< service call (payload bytes)
using api_atom = caf::atom_constant<caf::atom("api")>;         ///< app-facing call (RPC/HTTP)

// -- well-known registry names of per-node system actors --

/// The name under which the cluster actor registers itself in its actor system's registry,
/// so the RPC bridge and services find the current incarnation after a restart. A module's
/// service actor registers under the module's name.
constexpr caf::atom_value cluster_name = caf::atom("cluster");

/// Points `name` in the actor system's registry at `h`, replacing an earlier incarnation.
/// (CAF 0.17's `registry().put` never overwrites an existing name.)
void register_as(caf::actor_system& sys, caf::atom_value name, const caf::actor& h);

// -- errors --

/// Error codes of the runtime (category `runtime_errc_category`).
enum class runtime_errc : uint8_t {
  none = 0,
  peer_down,          ///< the remote node went down while a request towards it was pending
  unknown_node,       ///< no member with that name
  not_found,          ///< no actor at that path / no such key
  bad_request,        ///< malformed or unsupported request
  timeout,            ///< the request's own deadline passed
  storage_failure,    ///< RocksDB reported an error
  restart_intensity,  ///< a supervisor gave up after too many restarts
  killed,             ///< an operator crashed the actor on purpose (fault injection)
  shutting_down,      ///< the node is stopping
  bad_config,         ///< invalid configuration value
  unreachable,        ///< cannot connect to the node at all
};

/// Category atom for `caf::error`s carrying a `runtime_errc`.
constexpr caf::atom_value runtime_errc_category = caf::atom("wharf");

const char* to_string(runtime_errc x) noexcept;

caf::error make_error(runtime_errc code, std::string context);

/// Category atom for `caf::error`s carrying a wire `protocols::error_code` directly (errors
/// that came from another node or a client, and services' own errors).
constexpr caf::atom_value error_code_category = caf::atom("error");

caf::error make_error(protocols::error_code code, std::string context);

/// With PostgreSQL's SQLSTATE (when not empty) carried as a field: the context's second
/// element (see `sqlstate_of`).
caf::error make_error(protocols::error_code code, std::string context, std::string sqlstate);

/// The SQLSTATE an error carries (PostgreSQL errors, and errors made from them), or "".
std::string sqlstate_of(const caf::error& err);

/// The wire code of any error (protocols/error_code.hpp): wire errors as they are, and the
/// node's own categories (runtime, codec, PostgreSQL, CAF's) mapped onto it.
protocols::error_code wire_code(const caf::error& err) noexcept;

/// The message of an error: its string context when it has one, else `describe(err)`.
std::string message_of(const caf::error& err);

/// Returns a one-line rendering of any error ("peer_down: node n2 is down").
std::string describe(const caf::error& err);

/// Returns the runtime_errc of `err`, or `runtime_errc::none` for other categories.
runtime_errc code_of(const caf::error& err) noexcept;

/// Registers every message type and error category the runtime uses.
void add_types(caf::actor_system_config& cfg);

} // namespace wharf::runtime

