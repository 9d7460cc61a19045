#pragma once
/// Sorted partials: an aggregation table's groups in key order, and the merge of such runs.
///
/// After reading, a table becomes a `sorted_partial` (groups in key order, states
/// column-wise); partials merge as sorted runs (k-way, streaming), so neither nodes nor the
/// coordinator re-hash 800,000 groups, and the final rows come out ordered for free.
///
/// Building a partial is single-threaded; once built it may be read from several threads
/// (the coordinator encodes result pages on two).

#include <cstdint>
#include <memory>
#include <string_view>
#include <utility>
#include <vector>

#include "actors/analytics/agg_table.hpp"
#include "actors/analytics/key_codec.hpp"

namespace wharf::actors {

/// Groups in key order with their states column-wise (g * naggs + a), as in PartialChunk.
/// Keys are views: into the tables or chunk bytes it was made from, which must outlive it.
struct sorted_partial {
  explicit sorted_partial(table_spec s);
  table_spec spec;
  std::vector<std::string_view> keys;
  /// Per group, 64-bit order-preserving prefixes of the first two key fields (the second is 0
  /// unless the first prefix pins its field down): merges compare these first and look at
  /// the key bytes only on a tie.
  std::vector<std::pair<uint64_t, uint64_t>> prefixes;
  std::vector<int64_t> counts;
  std::vector<double> sums, mins, maxs;  ///< empty unless an aggregate needs them
  std::vector<distinct_set> distinct;    ///< empty unless count_distinct
  std::vector<uint32_t> partitions;
  /// Owners of bytes some of `keys` view (keys made when a dense table is sorted, or
  /// unpacked from a chunk).
  std::vector<std::shared_ptr<const void>> key_stores;
  size_t size() const { return keys.size(); }
  /// Room for `groups` groups in every vector in use.
  void reserve(size_t groups);
  /// The final value of aggregate `a` of group `g` (NULL when no non-NULL input).
  cell final_value(size_t g, size_t a) const;
};

/// A table's groups in key order.
sorted_partial to_sorted(const agg_table& t);

/// Merges sorted runs into one (equal keys combine); partition ids are united.
sorted_partial merge_sorted(const std::vector<const sorted_partial*>& runs, const table_spec& spec);

} // namespace wharf::actors
