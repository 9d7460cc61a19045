#include "actors/analytics/dense_table.hpp"

#include <array>
#include <memory>

#include "actors/analytics/sorted_partial.hpp"

namespace wharf::actors {

using namespace analytics_detail;

size_t agg_table::dense_states(const std::string_view* keys, size_t n, uint64_t** out) {
  auto& d = *dense_;
  auto nc = d.cols.size();
  std::array<std::string_view, 8> small;
  std::vector<std::string_view> large;
  std::string_view* fields = small.data();
  if (nc > small.size()) {
    large.resize(nc);
    fields = large.data();
  }
  for (size_t r = 0; r < n; ++r) {
    if (!d.fields(keys[r], fields))
      return r;
    uint64_t cell = 0;
    for (size_t k = 0; k < nc; ++k) {
      auto c = d.cols[k].code(fields[k]);
      if (c < 0)
        return r;
      cell += static_cast<uint64_t>(c) * d.stride[k];
    }
    auto& w = d.present[cell >> 6];
    auto bit = uint64_t{1} << (cell & 63);
    if (!(w & bit)) {
      w |= bit;
      ++d.groups;
    }
    auto* st = d.data.get() + cell * state_words_;
    __builtin_prefetch(st, 1);
    if (state_words_ > 1)
      __builtin_prefetch(st + state_words_ - 1, 1);
    out[r] = st;
  }
  return n;
}

uint64_t* agg_table::dense_state(std::string_view key) {
  uint64_t* st = nullptr;
  if (dense_states(&key, 1, &st) == 1)
    return st;
  auto& d = *dense_;
  std::vector<std::string_view> fields(d.cols.size());
  if (d.fields(key, fields.data())) {
    auto next = d.cols;
    bool ok = true, same_layout = true;
    for (size_t k = 0; k < next.size() && ok; ++k) {
      if (next[k].code(fields[k]) < 0) {
        ok = next[k].widen(fields[k]);
        same_layout &= next[k].dim() == d.cols[k].dim();
      }
    }
    // A dictionary value that fits its reserved codes changes no cell: no new layout.
    if (ok && same_layout)
      d.cols = std::move(next);
    if (ok && (same_layout || d.relayout(std::move(next), state_words_))
        && dense_states(&key, 1, &st) == 1)
      return st;
  }
  // Past the caps (or a key this form cannot code): the general form, for good.
  to_hashed();
  return state(key, hash(key));
}

void agg_table::to_hashed() {
  auto d = std::move(dense_);
  std::vector<uint64_t> codes;
  std::string key;
  for (size_t w = 0; w < d->present.size(); ++w) {
    for (auto bits = d->present[w]; bits != 0; bits &= bits - 1) {
      auto cell = w * 64 + static_cast<uint64_t>(__builtin_ctzll(bits));
      d->codes_of(cell, codes);
      key.clear();
      for (size_t k = 0; k < codes.size(); ++k)
        d->cols[k].append_field(key, codes[k]);
      auto* st = state(key, hash(key));
      std::memcpy(st, d->data.get() + cell * state_words_, state_words_ * 8);
    }
  }
}

dense_cursor::dense_cursor() = default;
dense_cursor::~dense_cursor() = default;
dense_cursor::dense_cursor(dense_cursor&&) noexcept = default;
dense_cursor& dense_cursor::operator=(dense_cursor&&) noexcept = default;

void agg_table::dense_start(dense_cursor& cursor) const {
  auto& d = *dense_;
  auto nc = d.cols.size();
  cursor.w_ = std::make_unique<dense_cursor::walk>();
  auto& w = *cursor.w_;
  w.table = this;
  w.order.resize(nc);
  w.pos.assign(nc, 0);
  w.end = d.groups == 0;
  // Integers ascending, dictionaries by compare_keys, NULL last either way.
  for (size_t k = 0; k < nc; ++k) {
    auto& c = d.cols[k];
    auto& o = w.order[k];
    if (c.range) {
      o.resize(c.span + 1);
      for (uint64_t i = 0; i <= c.span; ++i)
        o[i] = i;
      continue;
    }
    o.resize(c.values.size());
    for (size_t i = 0; i < o.size(); ++i)
      o[i] = i;
    std::vector<key_kind> kind{spec_.keys[k]};
    std::sort(o.begin(), o.end(), [&](uint64_t a, uint64_t b) {
      return compare_keys(c.values[a], c.values[b], kind) < 0;
    });
    w.end |= o.empty();
  }
}

bool agg_table::dense_next(dense_cursor& cursor, std::string& key, uint64_t& cell) const {
  auto& d = *dense_;
  auto& w = *cursor.w_;
  auto nc = d.cols.size();
  while (!w.end) {
    uint64_t at = 0;
    for (size_t k = 0; k < nc; ++k)
      at += w.order[k][w.pos[k]] * d.stride[k];
    bool hit = d.has(at);
    if (hit) {
      key.clear();
      for (size_t k = 0; k < nc; ++k)
        d.cols[k].append_field(key, w.order[k][w.pos[k]]);
      cell = at;
    }
    // The odometer: the last column turns fastest.
    size_t k = nc;
    while (k > 0 && ++w.pos[k - 1] == w.order[k - 1].size())
      w.pos[--k] = 0;
    w.end = k == 0;
    if (hit) {
      ++w.emitted;
      return true;
    }
  }
  return false;
}

sorted_partial agg_table::dense_sorted() const {
  auto& d = *dense_;
  dense_cursor cursor;
  dense_start(cursor);
  sorted_partial out{spec_};
  auto store = std::make_shared<std::vector<char>>();
  // The longest key the codes can make, so the store never moves.
  size_t longest = 0;
  for (auto& c : d.cols) {
    size_t field = c.range ? 4 + static_cast<size_t>(c.width) : 4;
    for (auto& v : c.values)
      field = std::max(field, v.size());
    longest += field;
  }
  store->reserve(d.groups * longest);
  std::vector<size_t> ends;
  std::vector<uint64_t> cells;
  ends.reserve(d.groups);
  cells.reserve(d.groups);
  std::string key;
  uint64_t cell = 0;
  while (dense_next(cursor, key, cell)) {
    store->insert(store->end(), key.begin(), key.end());
    ends.push_back(store->size());
    cells.push_back(cell);
  }
  out.reserve(cells.size());
  std::vector<agg_values> v(na_);
  size_t begin = 0;
  for (size_t i = 0; i < cells.size(); ++i) {
    std::string_view k(store->data() + begin, ends[i] - begin);
    begin = ends[i];
    out.keys.push_back(k);
    out.prefixes.push_back(key_prefixes(k, spec_.keys));
    read_states(d.data.get() + cells[i] * state_words_, na_, wpa_, shape_, v.data());
    for (size_t a = 0; a < na_; ++a) {
      out.counts.push_back(v[a].count);
      if (shape_.sum)
        out.sums.push_back(v[a].sum);
      if (shape_.min)
        out.mins.push_back(v[a].min);
      if (shape_.max)
        out.maxs.push_back(v[a].max);
    }
  }
  out.key_stores.push_back(std::move(store));
  out.partitions = partitions_;
  return out;
}

} // namespace wharf::actors
