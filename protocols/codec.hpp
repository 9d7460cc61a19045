#pragma once
/// Encoding of `envelope` to Cap'n Proto bytes and back. Decoding treats its input as
/// untrusted: it enforces traversal and nesting limits, checks alignment and size, and returns
/// an error value instead of throwing. Thread-safe (no shared state).

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include <caf/error.hpp>
#include <caf/expected.hpp>

#include "protocols/messages.hpp"

namespace wharf::protocols {

/// Error codes of the wire codec (category `codec_errc_category`).
enum class codec_errc : uint8_t {
  none = 0,
  too_large,   ///< input longer than `decode_limits::max_bytes`
  misaligned,  ///< size not a multiple of 8 bytes (a Cap'n Proto word)
  malformed,   ///< Cap'n Proto rejected the message (truncated, garbage, over limits)
  empty_body,  ///< the union holds an unknown member (written by a newer schema)
};

/// Category atom for `caf::error`s carrying a `codec_errc`.
constexpr caf::atom_value codec_errc_category = caf::atom("codec");

const char* to_string(codec_errc x) noexcept;

caf::error make_error(codec_errc code, std::string context);

/// Upper bounds on list lengths accepted from the wire; longer lists are `malformed`.
constexpr size_t max_members = 4096;
constexpr size_t max_roles = 64;
constexpr size_t max_actor_entries = 1u << 20;
constexpr size_t max_stats = 4096;

/// Bounds applied while decoding untrusted bytes. The traversal limit is further capped at
/// four times the message size.
struct decode_limits {
  size_t max_bytes = 64u << 20;               ///< whole message
  uint64_t traversal_limit_words = 8u << 20;  ///< Cap'n Proto traversal limit (64 MiB)
  int nesting_limit = 16;                     ///< Cap'n Proto nesting limit
};

/// Encodes an envelope as a flat Cap'n Proto message.
std::string encode(const envelope& x);

/// Decodes bytes produced by `encode`. Never throws; malformed input yields a `codec_errc`.
[[nodiscard]] caf::expected<envelope> decode(std::string_view bytes,
                                             const decode_limits& limits = {});

} // namespace wharf::protocols
