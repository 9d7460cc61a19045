#include "actors/analytics/sorted_partial.hpp"

#include <algorithm>
#include <cstddef>

#include <absl/container/flat_hash_set.h>

namespace wharf::actors {

using analytics_detail::compare_groups;

namespace {

// How one prefix field packs into few order-preserving bits: the bits that vary between the
// groups (constant high and low bits dropped), or, when those are many but the values few,
// the rank of the value among them (8 event types: 3 bits).
struct field_code {
  int shift = 0;
  int width = 0;
  std::vector<uint64_t> dict; // sorted distinct values when coded by rank
  uint64_t code(uint64_t v) const {
    if (!dict.empty())
      return static_cast<uint64_t>(std::lower_bound(dict.begin(), dict.end(), v) - dict.begin());
    return width == 0 ? 0 : (v >> shift) & ((width == 64 ? 0 : uint64_t{1} << width) - 1);
  }
};

template <class Get>
field_code code_field(size_t n, Get get) {
  field_code fc;
  if (n == 0)
    return fc;
  uint64_t first = get(0), diff = 0;
  for (size_t i = 1; i < n; ++i)
    diff |= get(i) ^ first;
  if (diff == 0)
    return fc;
  fc.shift = __builtin_ctzll(diff);
  fc.width = 64 - __builtin_clzll(diff) - fc.shift;
  if (fc.width <= 16)
    return fc;
  // Few distinct values? (at most 4096; a one-entry cache skips runs of the same value)
  absl::flat_hash_set<uint64_t> seen;
  uint64_t last = first;
  seen.insert(first);
  for (size_t i = 1; i < n; ++i) {
    auto v = get(i);
    if (v == last)
      continue;
    last = v;
    if (seen.insert(v).second && seen.size() > 4096)
      return fc;
  }
  fc.dict.assign(seen.begin(), seen.end());
  std::sort(fc.dict.begin(), fc.dict.end());
  fc.shift = 0;
  fc.width = 64 - __builtin_clzll(static_cast<uint64_t>(fc.dict.size() - 1) | 1);
  return fc;
}

// Both codes in one word (c1.width + c2.width <= 64; c1 is constant when c2 takes 64 bits).
inline uint64_t pack(const field_code& c1, const field_code& c2,
                     const std::pair<uint64_t, uint64_t>& pre) {
  auto lo = c2.code(pre.second);
  return c2.width >= 64 ? lo : (c1.code(pre.first) << c2.width) | lo;
}

// Stable LSD radix sort of `xs` on bits [lo, lo + width) of key(x), 11 bits per pass,
// skipping digits every item shares.
template <class T, class Key>
void radix_sort(std::vector<T>& xs, int lo, int width, Key key) {
  constexpr int digit = 11;
  constexpr size_t buckets = size_t{1} << digit;
  auto n = xs.size();
  if (n < 2 || width <= 0)
    return;
  std::vector<T> tmp(n);
  std::vector<uint32_t> count(buckets);
  auto* src = &xs;
  auto* dst = &tmp;
  for (int at = lo; at < lo + width; at += digit) {
    std::fill(count.begin(), count.end(), 0u);
    for (auto& x : *src)
      ++count[(key(x) >> at) & (buckets - 1)];
    if (std::any_of(count.begin(), count.end(), [n](uint32_t k) { return k == n; }))
      continue;
    uint32_t sum = 0;
    for (auto& k : count) {
      auto v = k;
      k = sum;
      sum += v;
    }
    auto& out = *dst;
    for (auto& x : *src)
      out[count[(key(x) >> at) & (buckets - 1)]++] = x;
    std::swap(src, dst);
  }
  if (src != &xs)
    xs.swap(tmp);
}

} // namespace

void agg_table::sorted(std::vector<uint32_t>& order,
                       std::vector<std::pair<uint64_t, uint64_t>>* prefixes) const {
  // Order on the first two key fields' 64-bit prefixes, packed into as few bits as keep their
  // order (user_behavior_report: 17 bits of user id and 3 of event type), radix-sorted; only
  // groups with equal prefixes look at their records.
  auto n = groups();
  std::vector<std::pair<uint64_t, uint64_t>> pre(n);
  for (uint32_t g = 0; g < n; ++g) {
    if (g + 8 < n)
      __builtin_prefetch(records_[g + 8]);
    pre[g] = key_prefixes(key(g), spec_.keys);
  }
  auto c1 = code_field(n, [&](size_t i) { return pre[i].first; });
  auto c2 = code_field(n, [&](size_t i) { return pre[i].second; });
  order.resize(n);
  auto tie_runs = [&](auto same) {
    // Equal prefixes (long texts, more than two key fields, NULL against the largest value):
    // by the keys themselves.
    for (size_t i = 0; i < n;) {
      size_t j = i + 1;
      while (j < n && same(i, j))
        ++j;
      if (j - i > 1)
        std::sort(order.begin() + static_cast<std::ptrdiff_t>(i),
                  order.begin() + static_cast<std::ptrdiff_t>(j),
                  [this](uint32_t x, uint32_t y) {
                    return compare_keys(key(x), key(y), spec_.keys) < 0;
                  });
      i = j;
    }
  };
  auto width = c1.width + c2.width;
  if (width <= 32) {
    // (code << 32 | group) in one word.
    std::vector<uint64_t> xs(n);
    for (uint32_t g = 0; g < n; ++g)
      xs[g] = (pack(c1, c2, pre[g]) << 32) | g;
    radix_sort(xs, 32, width, [](uint64_t x) { return x; });
    for (size_t i = 0; i < n; ++i)
      order[i] = static_cast<uint32_t>(xs[i]);
    tie_runs([&](size_t i, size_t j) { return xs[i] >> 32 == xs[j] >> 32; });
  } else {
    struct item {
      uint64_t hi, lo;
      uint32_t g;
    };
    std::vector<item> xs(n);
    bool packed = width <= 64;
    for (uint32_t g = 0; g < n; ++g) {
      if (packed)
        xs[g] = item{0, pack(c1, c2, pre[g]), g};
      else
        xs[g] = item{pre[g].first, pre[g].second, g};
    }
    radix_sort(xs, 0, packed ? width : 64, [](const item& x) { return x.lo; });
    if (!packed)
      radix_sort(xs, 0, 64, [](const item& x) { return x.hi; });
    for (size_t i = 0; i < n; ++i)
      order[i] = xs[i].g;
    tie_runs([&](size_t i, size_t j) { return xs[i].hi == xs[j].hi && xs[i].lo == xs[j].lo; });
  }
  if (prefixes) {
    prefixes->resize(n);
    for (size_t i = 0; i < n; ++i) {
      if (i + 16 < n)
        __builtin_prefetch(&pre[order[i + 16]]);
      (*prefixes)[i] = pre[order[i]];
    }
  }
}

// -- sorted partials --

sorted_partial::sorted_partial(table_spec s) : spec(std::move(s)) {}

void sorted_partial::reserve(size_t groups) {
  state_shape shape{spec};
  auto na = spec.aggs.size();
  keys.reserve(groups);
  prefixes.reserve(groups);
  counts.reserve(groups * na);
  if (shape.sum)
    sums.reserve(groups * na);
  if (shape.min)
    mins.reserve(groups * na);
  if (shape.max)
    maxs.reserve(groups * na);
  if (shape.distinct)
    distinct.reserve(groups * na);
}

cell sorted_partial::final_value(size_t g, size_t a) const {
  auto i = g * spec.aggs.size() + a;
  auto n = counts[i];
  switch (spec.aggs[a]) {
    case agg_fn::count:
      return n;
    case agg_fn::count_distinct:
      return static_cast<int64_t>(distinct[i].size());
    case agg_fn::sum:
      return n > 0 ? cell{sums[i]} : cell{};
    case agg_fn::avg:
      return n > 0 ? cell{sums[i] / static_cast<double>(n)} : cell{};
    case agg_fn::min:
      return n > 0 ? cell{mins[i]} : cell{};
    case agg_fn::max:
      return n > 0 ? cell{maxs[i]} : cell{};
  }
  return {};
}

sorted_partial to_sorted(const agg_table& t) {
  if (t.dense_)
    return t.dense_sorted();
  state_shape shape{t.spec()};
  sorted_partial out{t.spec()};
  auto na = t.aggregates();
  std::vector<uint32_t> order;
  t.sorted(order, &out.prefixes);
  out.reserve(order.size());
  for (size_t i = 0; i < order.size(); ++i) {
    auto g = order[i];
    if (i + 8 < order.size())
      t.prefetch_group(order[i + 8]);
    out.keys.push_back(t.key(g));
    for (size_t a = 0; a < na; ++a) {
      out.counts.push_back(t.count(g, a));
      if (shape.sum)
        out.sums.push_back(t.sum(g, a));
      if (shape.min)
        out.mins.push_back(t.min(g, a));
      if (shape.max)
        out.maxs.push_back(t.max(g, a));
      if (shape.distinct)
        out.distinct.push_back(t.distinct(g, a));
    }
  }
  out.partitions = t.partitions();
  return out;
}

namespace {

// Appends group g of `from` to `out`, or combines it into `out`'s last group.
void take(sorted_partial& out, const sorted_partial& from, size_t g, bool combine,
          const state_shape& shape) {
  auto na = out.spec.aggs.size();
  if (!combine) {
    out.keys.push_back(from.keys[g]);
    out.prefixes.push_back(from.prefixes[g]);
    for (size_t a = 0; a < na; ++a) {
      auto i = g * na + a;
      out.counts.push_back(from.counts[i]);
      if (shape.sum)
        out.sums.push_back(from.sums[i]);
      if (shape.min)
        out.mins.push_back(from.mins[i]);
      if (shape.max)
        out.maxs.push_back(from.maxs[i]);
      if (shape.distinct)
        out.distinct.push_back(from.distinct[i]);
    }
    return;
  }
  auto base = (out.size() - 1) * na;
  for (size_t a = 0; a < na; ++a) {
    auto i = g * na + a;
    auto o = base + a;
    auto n = from.counts[i];
    if (shape.distinct && out.spec.aggs[a] == agg_fn::count_distinct) {
      for (auto& v : from.distinct[i])
        out.distinct[o].insert(v);
    }
    if (n <= 0)
      continue;
    bool first = out.counts[o] == 0;
    out.counts[o] += n;
    if (shape.sum)
      out.sums[o] += from.sums[i];
    if (shape.min && (first || from.mins[i] < out.mins[o]))
      out.mins[o] = from.mins[i];
    if (shape.max && (first || from.maxs[i] > out.maxs[o]))
      out.maxs[o] = from.maxs[i];
  }
}

} // namespace

sorted_partial merge_sorted(const std::vector<const sorted_partial*>& runs,
                            const table_spec& spec) {
  state_shape shape{spec};
  sorted_partial out{spec};
  size_t total = 0;
  for (auto* r : runs) {
    total += r->size();
    out.key_stores.insert(out.key_stores.end(), r->key_stores.begin(), r->key_stores.end());
    for (auto p : r->partitions)
      if (std::find(out.partitions.begin(), out.partitions.end(), p) == out.partitions.end())
        out.partitions.push_back(p);
  }
  out.reserve(total);
  std::vector<size_t> at(runs.size(), 0);
  std::vector<size_t> ties;
  // Each run holds a key once, so equal keys can only meet at the heads: take the smallest
  // head and fold in every other head equal to it.
  while (true) {
    size_t best = runs.size();
    ties.clear();
    for (size_t r = 0; r < runs.size(); ++r) {
      if (at[r] >= runs[r]->size())
        continue;
      if (best == runs.size()) {
        best = r;
        continue;
      }
      auto& x = *runs[r];
      auto& y = *runs[best];
      auto c = compare_groups(x.prefixes[at[r]], x.keys[at[r]], y.prefixes[at[best]],
                              y.keys[at[best]], spec.keys);
      if (c < 0) {
        best = r;
        ties.clear();
      } else if (c == 0) {
        ties.push_back(r);
      }
    }
    if (best == runs.size())
      break;
    take(out, *runs[best], at[best]++, false, shape);
    for (auto r : ties)
      take(out, *runs[r], at[r]++, true, shape);
  }
  return out;
}

} // namespace wharf::actors
