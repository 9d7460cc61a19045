#pragma once
/// The chunks nodes send their partials in: a `WorkerReply.chunk` (analytics.capnp) holds a
/// slice of a node's groups in key order, keys front-coded and counts as varints. Encoding
/// runs on a node's reader thread, decoding on the coordinator; both are pure functions of
/// their arguments.

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include <caf/expected.hpp>

#include "actors/analytics/agg_table.hpp"
#include "actors/analytics/sorted_partial.hpp"

namespace wharf::actors {

/// A `WorkerReply.chunk` (analytics.capnp) with groups [offset, offset + limit).
std::string encode_chunk(const sorted_partial& p, uint64_t offset, uint32_t limit);

/// Where a walk over a dense table's groups in key order stands (see the encode_chunk below).
class dense_cursor {
public:
  dense_cursor();
  ~dense_cursor();
  dense_cursor(dense_cursor&&) noexcept;
  dense_cursor& operator=(dense_cursor&&) noexcept;

private:
  friend class agg_table;
  struct walk;
  std::unique_ptr<walk> w_;
};

/// The same chunk for a dense table (`t.dense()`), cut straight from its cells in key order:
/// no sorted copy of the table is made, and the first chunk is ready after walking only its
/// own groups. `cursor` goes on from where the previous chunk ended when `offset` is that
/// point; any other offset walks from the start. `t` must not change meanwhile.
std::string encode_chunk(const agg_table& t, dense_cursor& cursor, uint64_t offset,
                         uint32_t limit);

/// Result of decoding one chunk.
struct chunk_info {
  std::vector<uint32_t> partitions;
  uint64_t total_groups = 0;
  uint32_t groups = 0;
};

/// Appends the groups of an encoded `WorkerReply.chunk` to `into` (keys view into `reply`,
/// which must outlive `into`). Untrusted input: lengths and key order are checked; a
/// malformed chunk is an error and appends nothing.
[[nodiscard]] caf::expected<chunk_info> append_chunk(sorted_partial& into, std::string_view reply);

} // namespace wharf::actors
