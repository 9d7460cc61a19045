#include "actors/analytics/chunk_codec.hpp"

#include <algorithm>
#include <cstring>
#include <optional>

#include <capnp/message.h>
#include <capnp/serialize.h>

#include "actors/analytics/dense_table.hpp"
#include "protocols/capnp_io.hpp"
#include "protocols/analytics.capnp.h"

namespace wharf::actors {

using namespace analytics_detail;
using protocols::flat_reader;
using protocols::message_bytes;

namespace {

// Which aggregates keep which float state (a PartialChunk ships only those).
struct float_states {
  explicit float_states(const table_spec& spec) {
    for (size_t a = 0; a < spec.aggs.size(); ++a) {
      auto fn = spec.aggs[a];
      has_sum.push_back(fn == agg_fn::sum || fn == agg_fn::avg);
      has_min.push_back(fn == agg_fn::min);
      has_max.push_back(fn == agg_fn::max);
      if (has_sum.back())
        sum.push_back(a);
      if (has_min.back())
        min.push_back(a);
      if (has_max.back())
        max.push_back(a);
    }
  }
  std::vector<bool> has_sum, has_min, has_max;
  std::vector<size_t> sum, min, max; // the aggregates, in order
};

} // namespace

namespace {

void put_varint(std::string& out, uint64_t v) {
  if (v < 0x80) {
    out.push_back(static_cast<char>(v));
    return;
  }
  char b[10];
  size_t n = 0;
  while (v >= 0x80) {
    b[n++] = static_cast<char>(v | 0x80);
    v >>= 7;
  }
  b[n++] = static_cast<char>(v);
  out.append(b, n);
}

// Reads a varint at `pos` (moved past it); false when cut off or longer than 10 bytes.
bool get_varint(const char* p, size_t size, size_t& pos, uint64_t& v) {
  v = 0;
  for (int shift = 0; shift < 70 && pos < size; shift += 7) {
    auto b = static_cast<unsigned char>(p[pos++]);
    v |= static_cast<uint64_t>(b & 0x7f) << shift;
    if (!(b & 0x80))
      return true;
  }
  return false;
}

// The concatenated keys of `n` front-coded ones; nothing when malformed. Untrusted input: a
// shared length must not exceed the previous key, a suffix must be there, and the output is
// bounded by what `n` keys of the chunk's size could hold.
struct unpacked_keys {
  std::shared_ptr<char> bytes; // not zero-filled first: every byte is written
  size_t size = 0;
};

std::optional<unpacked_keys> unpack_keys(const char* p, size_t size, uint32_t n) {
  // Shared runs expand: cap each key, and the whole output at what a writer puts in a chunk
  // (chunk_writer stops at 16 MB of plain key bytes, plus the one key that crossed it).
  constexpr size_t max_key = size_t{1} << 20;
  constexpr size_t max_total = (size_t{16} << 20) + max_key;
  size_t prev_at = 0, prev_len = 0, pos = 0, total = 0;
  // First pass: the output size, every length checked.
  for (uint32_t g = 0; g < n; ++g) {
    uint64_t shared = 0, rest = 0;
    if (!get_varint(p, size, pos, shared) || !get_varint(p, size, pos, rest))
      return std::nullopt;
    if (shared > prev_len || rest > size - pos || shared + rest > max_key)
      return std::nullopt;
    pos += rest;
    prev_len = shared + rest;
    total += prev_len;
    if (total > max_total)
      return std::nullopt;
  }
  if (pos != size)
    return std::nullopt;
  unpacked_keys out;
  out.bytes = std::shared_ptr<char>(new char[std::max<size_t>(total, 1)], std::default_delete<char[]>());
  out.size = total;
  char* o = out.bytes.get();
  pos = 0;
  size_t at = 0;
  for (uint32_t g = 0; g < n; ++g) {
    uint64_t shared = 0, rest = 0;
    get_varint(p, size, pos, shared);
    get_varint(p, size, pos, rest);
    if (shared > 0)
      std::memcpy(o + at, o + prev_at, shared); // the previous key ends where this one starts
    std::memcpy(o + at + shared, p + pos, rest);
    pos += rest;
    prev_at = at;
    at += shared + rest;
  }
  return out;
}

} // namespace

namespace {

// Chunks stop at about 16 MB (and their group limit): envelopes between nodes are capped at
// 64 MB.
constexpr size_t chunk_budget = 16u << 20;

// Builds a PartialChunk group by group, keys ascending: front-coded keys (sorted neighbours
// share their leading fields) and varint counts, about half the bytes of the plain form for
// user_behavior_report, and float states only of the aggregates that keep them.
class chunk_writer {
public:
  explicit chunk_writer(const table_spec& spec)
    : shape_(spec), fs_(spec), na_(spec.aggs.size()) {}

  // `distinct`: the group's set per aggregate when the spec has count_distinct.
  void add(std::string_view key, const agg_values* v, const distinct_set* distinct) {
    size_t shared = 0, most = std::min(prev_.size(), key.size());
    // Eight bytes at a time, then the rest.
    while (shared + 8 <= most && std::memcmp(prev_.data() + shared, key.data() + shared, 8) == 0)
      shared += 8;
    while (shared < most && prev_[shared] == key[shared])
      ++shared;
    put_varint(keys_, shared);
    put_varint(keys_, key.size() - shared);
    keys_.append(key.data() + shared, key.size() - shared);
    prev_.assign(key.data(), key.size());
    plain_key_bytes_ += key.size();
    for (size_t a = 0; a < na_; ++a) {
      put_varint(counts_, static_cast<uint64_t>(v[a].count));
      if (fs_.has_sum[a])
        sums_.push_back(v[a].sum);
      if (fs_.has_min[a])
        mins_.push_back(v[a].min);
      if (fs_.has_max[a])
        maxs_.push_back(v[a].max);
      if (shape_.distinct) {
        std::string blob;
        for (auto& x : distinct[a]) {
          append_be32(blob, static_cast<uint32_t>(x.size()));
          blob.append(x);
        }
        blob_bytes_ += blob.size();
        blobs_.push_back(std::move(blob));
      }
    }
    ++groups_;
  }

  uint32_t groups() const { return groups_; }
  // Whether another group fits (the first always does). Keys count with their plain size,
  // which bounds what a reader rebuilds (see unpack_keys).
  bool room(uint64_t limit) const {
    auto bytes = plain_key_bytes_ + counts_.size()
                 + 8 * (sums_.size() + mins_.size() + maxs_.size()) + blob_bytes_;
    return groups_ < limit && (groups_ == 0 || bytes < chunk_budget);
  }

  std::string finish(const std::vector<uint32_t>& partitions, uint64_t total, uint64_t offset) {
    auto words = (keys_.size() + counts_.size() + blob_bytes_) / 8
                 + sums_.size() + mins_.size() + maxs_.size() + partitions.size() / 2 + 64;
    capnp::MallocMessageBuilder mb(static_cast<unsigned>(std::min<size_t>(words, 1u << 28)));
    auto c = mb.initRoot<reports::WorkerReply>().initChunk();
    auto ps = c.initPartitionIds(static_cast<unsigned>(partitions.size()));
    for (unsigned i = 0; i < partitions.size(); ++i)
      ps.set(i, partitions[i]);
    c.setTotalGroups(total);
    c.setOffset(offset);
    c.setGroups(groups_);
    auto data = [](const std::string& b) {
      return capnp::Data::Reader(reinterpret_cast<const kj::byte*>(b.data()), b.size());
    };
    c.setPackedKeys(data(keys_));
    c.setPackedCounts(data(counts_));
    auto fill = [](const std::vector<double>& src, auto list) {
      for (unsigned i = 0; i < src.size(); ++i)
        list.set(i, src[i]);
    };
    if (!sums_.empty())
      fill(sums_, c.initSums(static_cast<unsigned>(sums_.size())));
    if (!mins_.empty())
      fill(mins_, c.initMins(static_cast<unsigned>(mins_.size())));
    if (!maxs_.empty())
      fill(maxs_, c.initMaxs(static_cast<unsigned>(maxs_.size())));
    if (shape_.distinct) {
      auto d = c.initDistinct(static_cast<unsigned>(blobs_.size()));
      for (unsigned i = 0; i < blobs_.size(); ++i)
        d.set(i, data(blobs_[i]));
    }
    return message_bytes(mb);
  }

private:
  state_shape shape_;
  float_states fs_;
  size_t na_;
  uint32_t groups_ = 0;
  std::string keys_, counts_, prev_;
  std::vector<double> sums_, mins_, maxs_;
  std::vector<std::string> blobs_;
  size_t blob_bytes_ = 0;
  size_t plain_key_bytes_ = 0;
};

} // namespace

std::string encode_chunk(const sorted_partial& p, uint64_t offset, uint32_t limit) {
  state_shape shape{p.spec};
  auto na = p.spec.aggs.size();
  auto first = std::min<uint64_t>(offset, p.size());
  auto most = std::min<uint64_t>(limit, p.size() - first);
  chunk_writer w{p.spec};
  std::vector<agg_values> v(na);
  for (auto g = first; w.room(most); ++g) {
    for (size_t a = 0; a < na; ++a) {
      auto i = g * na + a;
      v[a].count = p.counts[i];
      v[a].sum = shape.sum ? p.sums[i] : 0;
      v[a].min = shape.min ? p.mins[i] : 0;
      v[a].max = shape.max ? p.maxs[i] : 0;
    }
    w.add(p.keys[g], v.data(), shape.distinct ? &p.distinct[g * na] : nullptr);
  }
  return w.finish(p.partitions, p.size(), first);
}

std::string agg_table::dense_chunk(dense_cursor& cursor, uint64_t offset, uint32_t limit) const {
  auto& d = *dense_;
  std::string key;
  uint64_t cell = 0;
  if (!cursor.w_ || cursor.w_->table != this || cursor.w_->emitted != offset) {
    dense_start(cursor);
    while (cursor.w_->emitted < offset && dense_next(cursor, key, cell)) {
    }
  }
  auto first = cursor.w_->emitted;
  chunk_writer w{spec_};
  std::vector<agg_values> v(na_);
  while (w.room(limit) && dense_next(cursor, key, cell)) {
    read_states(d.data.get() + cell * state_words_, na_, wpa_, shape_, v.data());
    w.add(key, v.data(), nullptr);
  }
  return w.finish(partitions_, d.groups, first);
}

std::string encode_chunk(const agg_table& t, dense_cursor& cursor, uint64_t offset,
                         uint32_t limit) {
  if (!t.dense_)
    return encode_chunk(to_sorted(t), offset, limit);
  return t.dense_chunk(cursor, offset, limit);
}

namespace {

// The length of one length-prefixed key of `nkeys` columns at `p`; 0 when malformed.
size_t key_length(const char* p, size_t avail, size_t nkeys) {
  size_t at = 0;
  for (size_t k = 0; k < nkeys; ++k) {
    if (avail - at < 4)
      return 0;
    auto len = static_cast<int32_t>(be32(p + at));
    at += 4;
    if (len < -1 || (len > 0 && static_cast<size_t>(len) > avail - at))
      return 0;
    if (len > 0)
      at += static_cast<size_t>(len);
  }
  return at;
}

// A chunk's `m` counts: varints (the compact form) or a list. False when the varints are
// not exactly `m` (the list's length is the caller's to check).
bool read_counts(reports::PartialChunk::Reader c, size_t m, std::vector<int64_t>& counts) {
  if (c.hasPackedCounts()) {
    auto pc = c.getPackedCounts();
    counts.reserve(std::min<size_t>(m, pc.size())); // `groups` is untrusted
    auto* q = reinterpret_cast<const char*>(pc.begin());
    size_t pos = 0;
    uint64_t v = 0;
    while (counts.size() < m && get_varint(q, pc.size(), pos, v))
      counts.push_back(static_cast<int64_t>(v));
    return pos == pc.size();
  }
  for (auto x : c.getCounts())
    counts.push_back(x);
  return true;
}

// The `m` count_distinct sets of a chunk (each a run of length-prefixed values) into `sets`;
// what is truncated when one is, else null.
const char* read_sets(capnp::List<capnp::Data>::Reader distinct, size_t m,
                      std::vector<distinct_set>& sets) {
  sets.resize(m);
  for (unsigned i = 0; i < m; ++i) {
    auto d = distinct[i];
    auto* q = reinterpret_cast<const char*>(d.begin());
    size_t pos = 0;
    while (pos < d.size()) {
      if (d.size() - pos < 4)
        return "distinct set truncated";
      auto len = be32(q + pos);
      pos += 4;
      if (len > d.size() - pos)
        return "distinct value truncated";
      sets[i].emplace(q + pos, len);
      pos += len;
    }
  }
  return nullptr;
}

} // namespace

caf::expected<chunk_info> append_chunk(sorted_partial& into, std::string_view reply) {
  auto bad = [](const std::string& why) {
    return runtime::make_error(protocols::error_code::internal, "malformed partial chunk: " + why);
  };
  // Keys stay views into `reply`: the reader must not copy it.
  if (reinterpret_cast<uintptr_t>(reply.data()) % alignof(capnp::word) != 0)
    return bad("misaligned buffer");
  state_shape shape{into.spec};
  // Sizes to go back to if memory runs out midway: a chunk appends all or nothing.
  const size_t sizes[] = {into.keys.size(),  into.prefixes.size(), into.counts.size(),
                          into.sums.size(),  into.mins.size(),     into.maxs.size(),
                          into.distinct.size(), into.key_stores.size()};
  try {
    flat_reader rd{reply};
    if (!rd.ok())
      return bad("not a Cap'n Proto message");
    auto root = rd.get<reports::WorkerReply>();
    if (!root.isChunk())
      return bad("not a chunk");
    auto c = root.getChunk();
    auto n = c.getGroups();
    auto na = into.spec.aggs.size();
    auto m = static_cast<size_t>(n) * na;
    std::vector<int64_t> counts;
    if (!read_counts(c, m, counts))
      return bad("packed counts do not match " + std::to_string(n) + " groups");
    auto sums = c.getSums();
    auto mins = c.getMins();
    auto maxs = c.getMaxs();
    auto distinct = c.getDistinct();
    float_states fs{into.spec};
    if (counts.size() != m || sums.size() != n * fs.sum.size() || mins.size() != n * fs.min.size()
        || maxs.size() != n * fs.max.size() || (shape.distinct && distinct.size() != m))
      return bad("state vectors do not match " + std::to_string(n) + " groups");
    auto keys = c.getKeys();
    auto* p = reinterpret_cast<const char*>(keys.begin());
    size_t avail = keys.size();
    std::shared_ptr<char> store;
    if (c.hasPackedKeys()) {
      // Front-coded: rebuilt into bytes of their own, checked like the plain form below.
      auto pk = c.getPackedKeys();
      auto unpacked = unpack_keys(reinterpret_cast<const char*>(pk.begin()), pk.size(), n);
      if (!unpacked)
        return bad("packed keys are malformed");
      store = std::move(unpacked->bytes);
      p = store.get();
      avail = unpacked->size;
    }
    // Every key field takes 4 bytes at least: `groups` cannot exceed that (it is untrusted).
    if (!into.spec.keys.empty() && n > avail / 4)
      return bad("more groups than key bytes");
    // Keys go straight into `into` (strictly ascending: merges rely on it); a failure below
    // takes them out again, so a malformed chunk appends nothing.
    const size_t base = into.keys.size();
    auto undo = [&](const std::string& why) {
      into.keys.resize(base);
      into.prefixes.resize(base);
      return bad(why);
    };
    auto& kinds = into.spec.keys;
    size_t at = 0;
    for (uint32_t g = 0; g < n; ++g) {
      auto len = key_length(p + at, avail - at, kinds.size());
      if (len == 0)
        return undo("key " + std::to_string(g) + " is truncated");
      std::string_view k(p + at, len);
      auto pre = key_prefixes(k, kinds);
      at += len;
      if (!into.keys.empty() && compare_groups(into.prefixes.back(), into.keys.back(), pre, k, kinds) >= 0)
        return undo("keys out of order at group " + std::to_string(g));
      into.keys.push_back(k);
      into.prefixes.push_back(pre);
    }
    if (at != avail)
      return undo("trailing key bytes");
    std::vector<distinct_set> sets;
    if (shape.distinct)
      if (auto why = read_sets(distinct, m, sets))
        return undo(why);
    if (store)
      into.key_stores.push_back(std::move(store));
    // In memory every aggregate has a slot in each float vector that exists (0 when unused).
    into.counts.insert(into.counts.end(), counts.begin(), counts.end());
    unsigned js = 0, jn = 0, jx = 0;
    for (uint32_t g = 0; g < n; ++g) {
      for (size_t a = 0; a < na; ++a) {
        if (shape.sum)
          into.sums.push_back(fs.has_sum[a] ? sums[js++] : 0.0);
        if (shape.min)
          into.mins.push_back(fs.has_min[a] ? mins[jn++] : 0.0);
        if (shape.max)
          into.maxs.push_back(fs.has_max[a] ? maxs[jx++] : 0.0);
        if (shape.distinct)
          into.distinct.push_back(std::move(sets[g * na + a]));
      }
    }
    chunk_info info;
    for (auto id : c.getPartitionIds())
      info.partitions.push_back(id);
    info.total_groups = c.getTotalGroups();
    info.groups = n;
    return info;
  } catch (const kj::Exception& e) {
    return bad(e.getDescription().cStr());
  } catch (const std::bad_alloc&) {
    into.keys.resize(sizes[0]);
    into.prefixes.resize(sizes[1]);
    into.counts.resize(sizes[2]);
    into.sums.resize(sizes[3]);
    into.mins.resize(sizes[4]);
    into.maxs.resize(sizes[5]);
    into.distinct.resize(sizes[6]);
    into.key_stores.resize(sizes[7]);
    return bad("out of memory");
  }
}

} // namespace wharf::actors
