#pragma once
/// Hash aggregation of report rows (pull mode) and of partial states (pushdown mode), and
/// the sorted partials nodes exchange.
///
/// Groups are keyed by the group-by values in PostgreSQL's binary format, each prefixed by
/// its Int32 length (-1 = NULL) — exactly the bytes a `COPY ... (FORMAT binary)` tuple or a
/// binary result holds, so pull mode hashes the wire bytes without decoding them. Per group
/// and aggregate the state is (count of non-NULL inputs, and sum/min/max in float8 when an
/// aggregate needs them), plus a set of values for count_distinct; states merge
/// associatively.
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
/// After reading, a table becomes a `sorted_partial` (groups in key order, states
/// column-wise); partials merge as sorted runs (k-way, streaming), so neither nodes nor the
/// coordinator re-hash 800,000 groups, and the final rows come out ordered for free.

#include <cstdint>
#include <cstring>
#include <memory>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

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

/// Which float fields the aggregates of a spec need.
struct state_shape {
  explicit state_shape(const table_spec& spec);
  bool sum = false, min = false, max = false, distinct = false;
  size_t words_per_agg = 1; ///< count, then sum/min/max as present (8 bytes each)
};

using distinct_set = absl::flat_hash_set<std::string>;

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
  struct dense_part;
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

/// The order-preserving prefixes of a key's first two fields (see sorted_partial).
std::pair<uint64_t, uint64_t> key_prefixes(std::string_view key, const std::vector<key_kind>& kinds);

/// Compares two keys in their binary form as PostgreSQL orders them ascending.
int compare_keys(std::string_view a, std::string_view b, const std::vector<key_kind>& kinds);

/// Decodes a binary key into typed cells.
std::vector<cell> decode_key(std::string_view key, const std::vector<key_kind>& kinds);

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

/// Appends `x` as a big-endian Int32 (the length prefix of binary values and keys).
inline void append_be32(std::string& out, uint32_t x) {
  char b[4] = {static_cast<char>(x >> 24), static_cast<char>(x >> 16), static_cast<char>(x >> 8),
               static_cast<char>(x)};
  out.append(b, 4);
}

/// A binary int2/int4/int8 value of `len` bytes (0 for other lengths).
inline int64_t key_int(const char* p, int32_t len) {
  return len == 8 ? static_cast<int64_t>(be64(p))
         : len == 4 ? static_cast<int64_t>(static_cast<int32_t>(be32(p)))
         : len == 2 ? static_cast<int64_t>(be16(p))
                    : 0;
}

/// A binary float4/float8 value of `len` bytes (0 for other lengths).
inline double key_float(const char* p, int32_t len) {
  if (len == 8) {
    auto bits = be64(p);
    double d;
    std::memcpy(&d, &bits, 8);
    return d;
  }
  if (len == 4) {
    auto bits = be32(p);
    float f;
    std::memcpy(&f, &bits, 4);
    return f;
  }
  return 0;
}

/// One field of a binary key, decoded. An int or float of an unexpected length is NULL.
struct key_field {
  key_kind kind = key_kind::text;
  bool null = false;
  int64_t i = 0;
  double f = 0;
  bool b = false;
  std::string_view t;
};

/// Calls `f(const key_field&)` for each field of a binary key (a key built by this file's
/// tables or checked by append_chunk: lengths are not re-checked here).
template <class F>
void for_each_field(std::string_view key, const std::vector<key_kind>& kinds, F f) {
  size_t at = 0;
  for (auto kind : kinds) {
    key_field x;
    x.kind = kind;
    auto len = static_cast<int32_t>(be32(key.data() + at));
    at += 4;
    const char* p = key.data() + at;
    if (len > 0)
      at += static_cast<size_t>(len);
    x.null = len < 0;
    if (!x.null) {
      switch (kind) {
        case key_kind::integer:
          x.null = len != 8 && len != 4 && len != 2;
          x.i = key_int(p, len);
          break;
        case key_kind::floating:
          x.null = len != 8 && len != 4;
          x.f = key_float(p, len);
          break;
        case key_kind::boolean:
          x.b = len >= 1 && p[0] != 0;
          break;
        case key_kind::text:
          x.t = std::string_view(p, static_cast<size_t>(len));
          break;
      }
    }
    f(x);
  }
}

} // namespace wharf::actors
