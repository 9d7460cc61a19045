#pragma once
/// Hash aggregation of report rows (pull mode) and of partial states (pushdown mode, and the
/// merge of partitions and nodes). Groups are keyed by the group-by values in PostgreSQL's
/// binary format, each prefixed by its Int32 length (-1 = NULL) — exactly the bytes a
/// `COPY ... (FORMAT binary)` tuple or a binary result holds, so pull mode hashes the wire
/// bytes without decoding them. Per group and aggregate the state is (count of non-NULL
/// inputs, sum, min, max) in float8, plus a set of values for count_distinct; states merge
/// associatively. Partition ids merged so far travel with the table, so a partial is never
/// counted twice. Not thread-safe.

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include <absl/container/flat_hash_map.h>
#include <absl/container/flat_hash_set.h>
#include <caf/expected.hpp>

#include "actors/analytics/report_def.hpp"

namespace wharf::actors {

/// How a group-by column's binary value decodes (the SQL selects other types as `::text`).
enum class key_kind : uint8_t { integer, floating, boolean, text };

const char* to_string(key_kind x) noexcept; ///< "int", "float", "bool", "text"

struct table_spec {
  std::vector<key_kind> keys;
  std::vector<agg_fn> aggs;
};

/// One typed result cell.
using cell = std::variant<std::monostate, int64_t, double, std::string, bool>;

class agg_table {
public:
  explicit agg_table(table_spec spec);
  agg_table(agg_table&&) noexcept;
  agg_table& operator=(agg_table&&) noexcept;
  ~agg_table();

  const table_spec& spec() const { return spec_; }
  size_t groups() const { return keys_.size(); }
  size_t aggregates() const { return spec_.aggs.size(); }

  /// The group of `key` (length-prefixed binary values), created when new.
  uint32_t group(std::string_view key);
  std::string_view key(uint32_t g) const { return keys_[g]; }

  void add_rows(uint32_t g, size_t a, int64_t n) { counts_[g * na_ + a] += n; }
  void add_value(uint32_t g, size_t a, double v);
  void add_distinct(uint32_t g, size_t a, std::string_view v);
  /// Merges a partial state (count, and sum/min/max when count > 0).
  void add_state(uint32_t g, size_t a, int64_t count, double sum, double min, double max);

  int64_t count(uint32_t g, size_t a) const { return counts_[g * na_ + a]; }
  double sum(uint32_t g, size_t a) const { return sums_.empty() ? 0 : sums_[g * na_ + a]; }
  double min(uint32_t g, size_t a) const { return mins_.empty() ? 0 : mins_[g * na_ + a]; }
  double max(uint32_t g, size_t a) const { return maxs_.empty() ? 0 : maxs_[g * na_ + a]; }

  /// Adds every group of `other` (same spec) into this table.
  void merge(const agg_table& other);

  /// Partitions whose rows are in this table.
  std::vector<uint32_t>& partitions() { return partitions_; }
  const std::vector<uint32_t>& partitions() const { return partitions_; }

  /// A `WorkerReply.chunk` (analytics.capnp) with groups [offset, offset + limit).
  std::string encode_chunk(uint64_t offset, uint32_t limit) const;

  /// Decodes a group's key into typed cells.
  std::vector<cell> decode_key(uint32_t g) const;

  /// The final value of aggregate `a` of group `g` (NULL when no non-NULL input).
  cell final_value(uint32_t g, size_t a) const;

  /// Group indexes ordered by their decoded keys (NULLs last, as PostgreSQL's ORDER BY).
  std::vector<uint32_t> sorted() const;

private:
  void grow();
  table_spec spec_;
  size_t na_;
  bool need_sum_ = false, need_min_ = false, need_max_ = false, need_distinct_ = false;
  struct arena;
  std::unique_ptr<arena> arena_;
  absl::flat_hash_map<std::string_view, uint32_t> index_;
  std::vector<std::string_view> keys_;
  std::vector<int64_t> counts_;
  std::vector<double> sums_, mins_, maxs_;
  std::vector<absl::flat_hash_set<std::string>> distinct_;
  std::vector<uint32_t> partitions_;
};

/// Result of merging one encoded chunk.
struct chunk_info {
  std::vector<uint32_t> partitions;
  uint64_t total_groups = 0;
  uint32_t groups = 0;
};

/// Merges the groups of a `PartialChunk` (inside an encoded `WorkerReply`) into `into`.
/// Untrusted input: lengths are checked; a malformed chunk is an error and merges nothing.
[[nodiscard]] caf::expected<chunk_info> merge_chunk(agg_table& into, std::string_view reply);

/// Big-endian readers for PostgreSQL's binary format.
inline uint32_t be32(const char* p) {
  auto u = reinterpret_cast<const unsigned char*>(p);
  return (uint32_t{u[0]} << 24) | (uint32_t{u[1]} << 16) | (uint32_t{u[2]} << 8) | u[3];
}
inline uint64_t be64(const char* p) {
  return (uint64_t{be32(p)} << 32) | be32(p + 4);
}
inline int16_t be16(const char* p) {
  auto u = reinterpret_cast<const unsigned char*>(p);
  return static_cast<int16_t>((u[0] << 8) | u[1]);
}

} // namespace wharf::actors
