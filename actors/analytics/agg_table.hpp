#pragma once
/// Hash aggregation of report rows (pull mode) and of partial states (pushdown mode).
///
/// Groups are keyed by their binary key (key_codec.hpp). Per group and aggregate the state is
/// (count of non-NULL inputs, and sum/min/max in float8 when an aggregate needs them), plus a
/// set of values for count_distinct; states merge associatively.
///
/// Layout (the table is the hot loop of pull mode). A table starts *dense* when its keys
/// allow it (integer, text, bool or float keys; no count_distinct): each key column maps its
/// values to small codes — an integer column by offset from a base (a range that widens as
/// values arrive), any other column by a dictionary of the values seen — and a group's states
/// sit at the index those codes make, in one flat array: a row costs one cache miss, no hash
/// and no key compare, and the groups come out in key order without a sort. When the codes
/// would need more than a few million cells (sparse integers, many distinct texts) the table
/// turns into the general form for good: open addressing over 16-byte slots (64-bit hash,
/// record pointer), each group's record holding its key and its states side by side, so a row
/// usually costs two cache misses. Both forms give the same groups. Not thread-safe.
///
/// The dense form lives in dense_table.hpp/.cpp. A table leaves a node as a sorted partial
/// (sorted_partial.hpp) cut into chunks (chunk_codec.hpp).

#include <cstdint>
#include <cstring>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <absl/container/flat_hash_set.h>

#include "actors/analytics/key_codec.hpp"
#include "actors/analytics/report_def.hpp"

namespace wharf::actors {

struct table_spec {
  std::vector<key_kind> keys;
  std::vector<agg_fn> aggs;
};

/// Which float fields the aggregates of a spec need.
struct state_shape {
  explicit state_shape(const table_spec& spec);
  bool sum = false, min = false, max = false, distinct = false;
  size_t words_per_agg = 1; ///< count, then sum/min/max as present (8 bytes each)
};

using distinct_set = absl::flat_hash_set<std::string>;

// -- a group's state block, shared by the table's two forms and the code that reads them --
namespace analytics_detail {

inline double getd(const uint64_t* p) {
  double d;
  std::memcpy(&d, p, sizeof(d));
  return d;
}

inline void setd(uint64_t* p, double d) {
  std::memcpy(p, &d, sizeof(d));
}

// One group's state for one aggregate, as sorted partials and chunks carry it.
struct agg_values {
  int64_t count = 0;
  double sum = 0, min = 0, max = 0;
};

// Reads the state block of one group (per aggregate: count, then sum/min/max as kept).
inline void read_states(const uint64_t* st, size_t na, size_t wpa, const state_shape& shape,
                        agg_values* out) {
  for (size_t a = 0; a < na; ++a) {
    const uint64_t* p = st + a * wpa;
    size_t f = 1;
    out[a].count = static_cast<int64_t>(p[0]);
    if (shape.sum)
      out[a].sum = getd(p + f++);
    if (shape.min)
      out[a].min = getd(p + f++);
    if (shape.max)
      out[a].max = getd(p + f++);
  }
}

// A hashed-form record starts with one word: key length << 32 | group index.
inline uint32_t key_len(const uint64_t* rec) {
  return static_cast<uint32_t>(rec[0] >> 32);
}

inline uint32_t group_of(const uint64_t* rec) {
  return static_cast<uint32_t>(rec[0]);
}

struct dense_part; // the dense form (dense_table.hpp)

} // namespace analytics_detail

struct sorted_partial;
class dense_cursor;

class agg_table {
public:
  /// `allow_dense = false` keeps the table in its general (hashed) form from the start.
  explicit agg_table(table_spec spec, bool allow_dense = true);
  agg_table(agg_table&&) noexcept;
  agg_table& operator=(agg_table&&) noexcept;
  ~agg_table();

  const table_spec& spec() const { return spec_; }
  size_t groups() const;
  size_t aggregates() const { return na_; }

  /// The state block of `key`'s group (length-prefixed binary values), created when new.
  /// Valid until the next `state`/`dense_states` call (dense cells move when the codes
  /// widen); in the hashed form until the table is destroyed (records never move).
  uint64_t* state(std::string_view key) { return state(key, dense_ ? 0 : hash(key)); }
  uint64_t* state(std::string_view key, uint64_t h);

  /// Whether the table is in its dense form (see above).
  bool dense() const { return dense_ != nullptr; }
  /// Dense form only: the state blocks of the longest prefix of `keys[0, n)` whose codes
  /// exist already (created groups included), into `out`; returns its length. The caller
  /// updates them, then passes the next key to `state`, which widens the codes (or turns the
  /// table hashed). The blocks are prefetched.
  size_t dense_states(const std::string_view* keys, size_t n, uint64_t** out);

  static uint64_t hash(std::string_view key);

  /// Batching helpers: start loading the slot of hash `h`, then the record it points at, so
  /// that `state` finds both in cache (the table is far larger than the caches).
  void prefetch_slot(uint64_t h) const {
    if (!slots_.empty())
      __builtin_prefetch(&slots_[h & mask_]);
  }
  void prefetch_group(uint32_t g) const { __builtin_prefetch(records_[g]); }
  void prefetch_record(uint64_t h) const {
    if (slots_.empty())
      return;
    // The group's slot is the first one with its hash along the probe sequence (usually
    // within the cache line `prefetch_slot` loaded).
    for (size_t i = h & mask_, n = 0; n < 8; i = (i + 1) & mask_, ++n) {
      auto& s = slots_[i];
      if (!s.rec)
        return; // a new group
      if (s.hash == h) {
        __builtin_prefetch(s.rec);
        __builtin_prefetch(s.rec + 8); // records are not line-aligned: the key may spill over
        return;
      }
    }
  }

  void add_rows(uint64_t* st, size_t a, int64_t n) {
    reinterpret_cast<int64_t&>(st[a * wpa_]) += n;
  }
  void add_value(uint64_t* st, size_t a, double v) { add_state(st, a, 1, v, v, v); }
  void add_distinct(uint64_t* st, size_t a, std::string_view v);
  /// Merges a partial state (count, and sum/min/max when count > 0).
  void add_state(uint64_t* st, size_t a, int64_t count, double sum, double min, double max);

  /// By group index, the hashed form only (`to_sorted` and the chunk encoders read either).
  /// Inline (below): to_sorted reads every group through them.
  std::string_view key(uint32_t g) const;
  int64_t count(uint32_t g, size_t a) const;
  double sum(uint32_t g, size_t a) const;
  double min(uint32_t g, size_t a) const;
  double max(uint32_t g, size_t a) const;
  const distinct_set& distinct(uint32_t g, size_t a) const { return distinct_[g * na_ + a]; }

  /// Partitions whose rows are in this table.
  std::vector<uint32_t>& partitions() { return partitions_; }
  const std::vector<uint32_t>& partitions() const { return partitions_; }

  /// Group indexes ordered by key (NULLs last, text by bytes) into `order`, and (when
  /// `prefixes` is set) each group's key prefixes (see sorted_partial) in that order.
  void sorted(std::vector<uint32_t>& order,
              std::vector<std::pair<uint64_t, uint64_t>>* prefixes) const;

private:
  friend sorted_partial to_sorted(const agg_table& t);
  friend std::string encode_chunk(const agg_table& t, dense_cursor& cursor, uint64_t offset,
                                  uint32_t limit);
  using dense_part = analytics_detail::dense_part;
  void grow();
  uint64_t* dense_state(std::string_view key);
  void to_hashed();
  sorted_partial dense_sorted() const;
  void dense_start(dense_cursor& cursor) const;
  bool dense_next(dense_cursor& cursor, std::string& key, uint64_t& cell) const;
  std::string dense_chunk(dense_cursor& cursor, uint64_t offset, uint32_t limit) const;
  table_spec spec_;
  size_t na_;
  state_shape shape_;
  size_t wpa_; // words per aggregate
  size_t state_words_;
  struct slot {
    uint64_t hash;
    uint64_t* rec;
  };
  std::vector<slot> slots_;
  size_t mask_ = 0;
  std::vector<uint64_t*> records_;
  std::vector<std::unique_ptr<uint64_t[]>> blocks_;
  size_t block_used_ = 0;
  size_t block_size_ = 0;
  std::vector<distinct_set> distinct_;
  std::vector<uint32_t> partitions_;
  std::unique_ptr<dense_part> dense_;
};

inline std::string_view agg_table::key(uint32_t g) const {
  auto* rec = records_[g];
  return std::string_view(reinterpret_cast<const char*>(rec + 1 + state_words_),
                          analytics_detail::key_len(rec));
}

inline int64_t agg_table::count(uint32_t g, size_t a) const {
  return static_cast<int64_t>(records_[g][1 + a * wpa_]);
}

inline double agg_table::sum(uint32_t g, size_t a) const {
  return shape_.sum ? analytics_detail::getd(records_[g] + 1 + a * wpa_ + 1) : 0;
}

inline double agg_table::min(uint32_t g, size_t a) const {
  return shape_.min
           ? analytics_detail::getd(records_[g] + 1 + a * wpa_ + 1 + (shape_.sum ? 1 : 0))
           : 0;
}

inline double agg_table::max(uint32_t g, size_t a) const {
  return shape_.max ? analytics_detail::getd(records_[g] + 1 + a * wpa_ + 1 + (shape_.sum ? 1 : 0)
                                             + (shape_.min ? 1 : 0))
                    : 0;
}

} // namespace wharf::actors
