#pragma once
/// The one error vocabulary of every wire: `errorCode` in admin replies, report responses,
/// result pages, service replies between nodes and HTTP error bodies (`error_code`) all
/// carry one of these names, spelled as `to_string` gives them ("NOT_FOUND"). Components keep
/// their own code enums (runtime_errc, pg_errc, codec_errc, ...) and map them here where an
/// answer leaves the node. A name this version does not know reads as `internal`.
/// Compatibility: never rename or renumber an entry; add new ones at the end.

#include <cstdint>
#include <string_view>

namespace wharf::protocols {

enum class error_code : uint8_t {
  none = 0,
  invalid_argument,   ///< INVALID_ARGUMENT: the request is malformed or does not fit
  not_found,          ///< NOT_FOUND: no such report, result, key, actor path, route
  unknown_node,       ///< UNKNOWN_NODE: no member with that name
  timeout,            ///< TIMEOUT: a deadline passed
  cancelled,          ///< CANCELLED: the caller (or an operator) cancelled it
  unavailable,        ///< UNAVAILABLE: not now (starting, stopping, no database, no worker)
  peer_down,          ///< PEER_DOWN: the node that had to answer went down meanwhile
  resource_exhausted, ///< RESOURCE_EXHAUSTED: a queue or limit is full; retry later
  too_large,          ///< TOO_LARGE: over a size limit (the message names it)
  pg_error,           ///< PG_ERROR: PostgreSQL rejected a statement (see `sqlstate`)
  storage_failure,    ///< STORAGE_FAILURE: RocksDB failed
  not_running,        ///< NOT_RUNNING: the actor is not running (it may be restarting)
  unimplemented,      ///< UNIMPLEMENTED: this node does not offer that call
  internal,           ///< INTERNAL: a bug or a malformed answer between nodes
};

/// "INVALID_ARGUMENT", "NOT_FOUND", ... ("" for none).
const char* to_string(error_code x) noexcept;

/// The code spelled `s` (either case); `internal` for a name this version does not know,
/// `none` for "".
error_code parse_error_code(std::string_view s) noexcept;

/// The HTTP status an error answers with: 400, 404, 504, 409, 503, 502, 413, 500, 501.
unsigned http_status(error_code x) noexcept;

} // namespace wharf::protocols
