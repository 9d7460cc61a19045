#include "actors/analytics/agg_table.hpp"

#include <algorithm>
#include <cmath>
#include <cstring>

#include <capnp/message.h>
#include <capnp/serialize.h>

#include "actors/analytics/capnp_io.hpp"
#include "protocols/analytics.capnp.h"

namespace wharf::actors {

const char* to_string(key_kind x) noexcept {
  switch (x) {
    case key_kind::integer: return "int";
    case key_kind::floating: return "float";
    case key_kind::boolean: return "bool";
    case key_kind::text: return "text";
  }
  return "text";
}

// Key bytes live in fixed blocks, so the string_views in the index never move.
struct agg_table::arena {
  static constexpr size_t block = 1 << 20;
  std::vector<std::unique_ptr<char[]>> blocks;
  size_t used = block;
  std::string_view copy(std::string_view s) {
    if (s.size() > block) {
      blocks.emplace_back(new char[s.size()]);
      std::memcpy(blocks.back().get(), s.data(), s.size());
      auto out = std::string_view(blocks.back().get(), s.size());
      // Keep filling the previous block: move the big one before it.
      if (blocks.size() >= 2)
        std::swap(blocks[blocks.size() - 1], blocks[blocks.size() - 2]);
      return out;
    }
    if (used + s.size() > block) {
      blocks.emplace_back(new char[block]);
      used = 0;
    }
    char* p = blocks.back().get() + used;
    std::memcpy(p, s.data(), s.size());
    used += s.size();
    return std::string_view(p, s.size());
  }
};

agg_table::agg_table(table_spec spec)
  : spec_(std::move(spec)), na_(spec_.aggs.size()), arena_(std::make_unique<arena>()) {
  for (auto fn : spec_.aggs) {
    need_sum_ |= fn == agg_fn::sum || fn == agg_fn::avg;
    need_min_ |= fn == agg_fn::min;
    need_max_ |= fn == agg_fn::max;
    need_distinct_ |= fn == agg_fn::count_distinct;
  }
}

agg_table::agg_table(agg_table&&) noexcept = default;
agg_table& agg_table::operator=(agg_table&&) noexcept = default;
agg_table::~agg_table() = default;

uint32_t agg_table::group(std::string_view key) {
  auto it = index_.find(key);
  if (it != index_.end())
    return it->second;
  auto g = static_cast<uint32_t>(keys_.size());
  auto stored = arena_->copy(key);
  index_.emplace(stored, g);
  keys_.push_back(stored);
  counts_.resize(counts_.size() + na_, 0);
  if (need_sum_)
    sums_.resize(sums_.size() + na_, 0.0);
  if (need_min_)
    mins_.resize(mins_.size() + na_, 0.0);
  if (need_max_)
    maxs_.resize(maxs_.size() + na_, 0.0);
  if (need_distinct_)
    distinct_.resize(distinct_.size() + na_);
  return g;
}

void agg_table::add_value(uint32_t g, size_t a, double v) {
  auto i = g * na_ + a;
  bool first = counts_[i] == 0;
  counts_[i] += 1;
  if (need_sum_)
    sums_[i] += v;
  if (need_min_ && (first || v < mins_[i]))
    mins_[i] = v;
  if (need_max_ && (first || v > maxs_[i]))
    maxs_[i] = v;
}

void agg_table::add_distinct(uint32_t g, size_t a, std::string_view v) {
  distinct_[g * na_ + a].emplace(v);
}

void agg_table::add_state(uint32_t g, size_t a, int64_t count, double sum, double min,
                          double max) {
  if (count <= 0)
    return;
  auto i = g * na_ + a;
  bool first = counts_[i] == 0;
  counts_[i] += count;
  if (need_sum_)
    sums_[i] += sum;
  if (need_min_ && (first || min < mins_[i]))
    mins_[i] = min;
  if (need_max_ && (first || max > maxs_[i]))
    maxs_[i] = max;
}

void agg_table::merge(const agg_table& other) {
  index_.reserve(index_.size() + other.groups() / 2);
  for (uint32_t og = 0; og < other.groups(); ++og) {
    auto g = group(other.keys_[og]);
    for (size_t a = 0; a < na_; ++a) {
      auto j = og * na_ + a;
      if (spec_.aggs[a] == agg_fn::count_distinct) {
        auto& into = distinct_[g * na_ + a];
        for (auto& v : other.distinct_[j])
          into.insert(v);
      } else if (spec_.aggs[a] == agg_fn::count) {
        counts_[g * na_ + a] += other.counts_[j];
      } else {
        add_state(g, a, other.counts_[j], other.sums_.empty() ? 0 : other.sums_[j],
                  other.mins_.empty() ? 0 : other.mins_[j],
                  other.maxs_.empty() ? 0 : other.maxs_[j]);
      }
    }
  }
  for (auto p : other.partitions_)
    if (std::find(partitions_.begin(), partitions_.end(), p) == partitions_.end())
      partitions_.push_back(p);
}

std::string agg_table::encode_chunk(uint64_t offset, uint32_t limit) const {
  auto first = std::min<uint64_t>(offset, groups());
  auto n = static_cast<uint32_t>(std::min<uint64_t>(limit, groups() - first));
  size_t key_bytes = 0;
  for (uint32_t i = 0; i < n; ++i)
    key_bytes += keys_[first + i].size();
  capnp::MallocMessageBuilder mb(static_cast<unsigned>(
    std::min<size_t>(64 + key_bytes / 8 + n * na_ * 4, 1u << 28)));
  auto c = mb.initRoot<reports::WorkerReply>().initChunk();
  auto ps = c.initPartitionIds(static_cast<unsigned>(partitions_.size()));
  for (unsigned i = 0; i < partitions_.size(); ++i)
    ps.set(i, partitions_[i]);
  c.setTotalGroups(groups());
  c.setOffset(first);
  c.setGroups(n);
  auto keys = c.initKeys(static_cast<unsigned>(key_bytes));
  size_t at = 0;
  for (uint32_t i = 0; i < n; ++i) {
    auto k = keys_[first + i];
    std::memcpy(keys.begin() + at, k.data(), k.size());
    at += k.size();
  }
  auto m = static_cast<unsigned>(n * na_);
  auto base = first * na_;
  auto counts = c.initCounts(m);
  for (unsigned i = 0; i < m; ++i)
    counts.set(i, counts_[base + i]);
  auto fill = [&](const std::vector<double>& src, auto list) {
    for (unsigned i = 0; i < m; ++i)
      list.set(i, src[base + i]);
  };
  if (need_sum_)
    fill(sums_, c.initSums(m));
  if (need_min_)
    fill(mins_, c.initMins(m));
  if (need_max_)
    fill(maxs_, c.initMaxs(m));
  if (need_distinct_) {
    auto d = c.initDistinct(m);
    for (unsigned i = 0; i < m; ++i) {
      std::string blob;
      for (auto& v : distinct_[base + i]) {
        uint32_t len = static_cast<uint32_t>(v.size());
        char hdr[4] = {static_cast<char>(len >> 24), static_cast<char>(len >> 16),
                       static_cast<char>(len >> 8), static_cast<char>(len)};
        blob.append(hdr, 4).append(v);
      }
      d.set(i, capnp::Data::Reader(reinterpret_cast<const kj::byte*>(blob.data()), blob.size()));
    }
  }
  return message_bytes(mb);
}

namespace {

// Splits one length-prefixed key of `nkeys` columns off `p`; nullopt when malformed.
std::optional<size_t> key_length(const char* p, size_t avail, size_t nkeys) {
  size_t at = 0;
  for (size_t k = 0; k < nkeys; ++k) {
    if (avail - at < 4)
      return std::nullopt;
    auto len = static_cast<int32_t>(be32(p + at));
    at += 4;
    if (len < -1 || (len > 0 && static_cast<size_t>(len) > avail - at))
      return std::nullopt;
    if (len > 0)
      at += static_cast<size_t>(len);
  }
  return at;
}

} // namespace

caf::expected<chunk_info> merge_chunk(agg_table& into, std::string_view reply) {
  auto bad = [](const std::string& why) {
    return make_error(report_errc::internal, "malformed partial chunk: " + why);
  };
  try {
    flat_reader rd{reply};
    if (!rd.ok())
      return bad("not a Cap'n Proto message");
    auto root = rd.get<reports::WorkerReply>();
    if (!root.isChunk())
      return bad("not a chunk");
    auto c = root.getChunk();
    auto n = c.getGroups();
    auto na = into.aggregates();
    auto m = static_cast<size_t>(n) * na;
    auto counts = c.getCounts();
    auto sums = c.getSums();
    auto mins = c.getMins();
    auto maxs = c.getMaxs();
    auto distinct = c.getDistinct();
    bool need_sum = false, need_min = false, need_max = false, need_distinct = false;
    for (auto fn : into.spec().aggs) {
      need_sum |= fn == agg_fn::sum || fn == agg_fn::avg;
      need_min |= fn == agg_fn::min;
      need_max |= fn == agg_fn::max;
      need_distinct |= fn == agg_fn::count_distinct;
    }
    if (counts.size() != m || (need_sum && sums.size() != m) || (need_min && mins.size() != m)
        || (need_max && maxs.size() != m) || (need_distinct && distinct.size() != m))
      return bad("state vectors do not match " + std::to_string(n) + " groups");
    auto keys = c.getKeys();
    auto* p = reinterpret_cast<const char*>(keys.begin());
    size_t avail = keys.size();
    // Validate every key before merging anything.
    std::vector<std::string_view> ks;
    ks.reserve(n);
    size_t at = 0;
    for (uint32_t g = 0; g < n; ++g) {
      auto len = key_length(p + at, avail - at, into.spec().keys.size());
      if (!len)
        return bad("key " + std::to_string(g) + " is truncated");
      ks.emplace_back(p + at, *len);
      at += *len;
    }
    if (at != avail)
      return bad("trailing key bytes");
    for (uint32_t g = 0; g < n; ++g) {
      auto tg = into.group(ks[g]);
      for (size_t a = 0; a < na; ++a) {
        auto i = static_cast<unsigned>(g * na + a);
        switch (into.spec().aggs[a]) {
          case agg_fn::count:
            into.add_rows(tg, a, counts[i]);
            break;
          case agg_fn::count_distinct: {
            auto d = distinct[i];
            auto* q = reinterpret_cast<const char*>(d.begin());
            size_t pos = 0;
            while (pos < d.size()) {
              if (d.size() - pos < 4)
                return bad("distinct set truncated");
              auto len = be32(q + pos);
              pos += 4;
              if (len > d.size() - pos)
                return bad("distinct value truncated");
              into.add_distinct(tg, a, std::string_view(q + pos, len));
              pos += len;
            }
            break;
          }
          default:
            into.add_state(tg, a, counts[i], need_sum ? sums[i] : 0, need_min ? mins[i] : 0,
                           need_max ? maxs[i] : 0);
        }
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
  }
}

std::vector<cell> agg_table::decode_key(uint32_t g) const {
  std::vector<cell> out;
  auto k = keys_[g];
  size_t at = 0;
  for (auto kind : spec_.keys) {
    auto len = static_cast<int32_t>(be32(k.data() + at));
    at += 4;
    if (len < 0) {
      out.emplace_back(std::monostate{});
      continue;
    }
    const char* v = k.data() + at;
    at += static_cast<size_t>(len);
    switch (kind) {
      case key_kind::integer:
        if (len == 8)
          out.emplace_back(static_cast<int64_t>(be64(v)));
        else if (len == 4)
          out.emplace_back(static_cast<int64_t>(static_cast<int32_t>(be32(v))));
        else if (len == 2)
          out.emplace_back(static_cast<int64_t>(be16(v)));
        else
          out.emplace_back(std::monostate{});
        break;
      case key_kind::floating:
        if (len == 8) {
          auto bits = be64(v);
          double d;
          std::memcpy(&d, &bits, 8);
          out.emplace_back(d);
        } else if (len == 4) {
          auto bits = be32(v);
          float f;
          std::memcpy(&f, &bits, 4);
          out.emplace_back(static_cast<double>(f));
        } else {
          out.emplace_back(std::monostate{});
        }
        break;
      case key_kind::boolean:
        out.emplace_back(len >= 1 && v[0] != 0);
        break;
      case key_kind::text:
        out.emplace_back(std::string(v, static_cast<size_t>(len)));
        break;
    }
  }
  return out;
}

cell agg_table::final_value(uint32_t g, size_t a) const {
  auto i = g * na_ + a;
  switch (spec_.aggs[a]) {
    case agg_fn::count:
      return counts_[i];
    case agg_fn::count_distinct:
      return static_cast<int64_t>(distinct_[i].size());
    case agg_fn::sum:
      return counts_[i] > 0 ? cell{sums_[i]} : cell{};
    case agg_fn::avg:
      return counts_[i] > 0 ? cell{sums_[i] / static_cast<double>(counts_[i])} : cell{};
    case agg_fn::min:
      return counts_[i] > 0 ? cell{mins_[i]} : cell{};
    case agg_fn::max:
      return counts_[i] > 0 ? cell{maxs_[i]} : cell{};
  }
  return {};
}

std::vector<uint32_t> agg_table::sorted() const {
  std::vector<std::vector<cell>> decoded;
  decoded.reserve(groups());
  for (uint32_t g = 0; g < groups(); ++g)
    decoded.push_back(decode_key(g));
  std::vector<uint32_t> order(groups());
  for (uint32_t g = 0; g < groups(); ++g)
    order[g] = g;
  // NULLs sort last, as in PostgreSQL's default ascending order.
  auto less = [](const cell& a, const cell& b) {
    bool an = std::holds_alternative<std::monostate>(a);
    bool bn = std::holds_alternative<std::monostate>(b);
    if (an || bn)
      return !an && bn;
    return a < b;
  };
  std::sort(order.begin(), order.end(), [&](uint32_t x, uint32_t y) {
    auto& a = decoded[x];
    auto& b = decoded[y];
    for (size_t k = 0; k < a.size(); ++k) {
      if (less(a[k], b[k]))
        return true;
      if (less(b[k], a[k]))
        return false;
    }
    return false;
  });
  return order;
}

} // namespace wharf::actors
