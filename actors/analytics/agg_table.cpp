#include "actors/analytics/agg_table.hpp"

#include <algorithm>
#include <cstring>

#define XXH_INLINE_ALL
#include <xxhash.h>

#include "actors/analytics/dense_table.hpp"

namespace wharf::actors {

using namespace analytics_detail;

state_shape::state_shape(const table_spec& spec) {
  for (auto fn : spec.aggs) {
    sum |= fn == agg_fn::sum || fn == agg_fn::avg;
    min |= fn == agg_fn::min;
    max |= fn == agg_fn::max;
    distinct |= fn == agg_fn::count_distinct;
  }
  words_per_agg = 1 + (sum ? 1 : 0) + (min ? 1 : 0) + (max ? 1 : 0);
}

namespace {

constexpr size_t block_words = size_t{1} << 17; // 1 MiB

} // namespace

agg_table::agg_table(table_spec spec, bool allow_dense)
  : spec_(std::move(spec)), na_(spec_.aggs.size()), shape_(spec_), wpa_(shape_.words_per_agg),
    state_words_(na_ * wpa_) {
  if (!allow_dense || shape_.distinct)
    return;
  dense_ = std::make_unique<dense_part>();
  dense_->cols.resize(spec_.keys.size());
  for (size_t k = 0; k < spec_.keys.size(); ++k)
    dense_->cols[k].range = spec_.keys[k] == key_kind::integer;
  auto cols = dense_->cols;
  if (!dense_->relayout(std::move(cols), state_words_))
    dense_.reset();
}

size_t agg_table::groups() const {
  return dense_ ? dense_->groups : records_.size();
}

agg_table::agg_table(agg_table&&) noexcept = default;
agg_table& agg_table::operator=(agg_table&&) noexcept = default;
agg_table::~agg_table() = default;

// -- the hashed form --
//
// Record: [key length << 32 | group index][states][key bytes, padded to words].

void agg_table::grow() {
  size_t cap = slots_.empty() ? 1024 : slots_.size() * 2;
  std::vector<slot> next(cap, slot{0, nullptr});
  size_t mask = cap - 1;
  for (auto& s : slots_) {
    if (!s.rec)
      continue;
    auto i = s.hash & mask;
    while (next[i].rec)
      i = (i + 1) & mask;
    next[i] = s;
  }
  slots_ = std::move(next);
  mask_ = mask;
}

uint64_t agg_table::hash(std::string_view key) {
  return XXH3_64bits(key.data(), key.size());
}

uint64_t* agg_table::state(std::string_view key, uint64_t h) {
  if (dense_)
    return dense_state(key);
  if ((records_.size() + 1) * 10 > slots_.size() * 7)
    grow();
  auto i = h & mask_;
  while (true) {
    auto& s = slots_[i];
    if (!s.rec)
      break;
    if (s.hash == h && key_len(s.rec) == key.size()
        && std::memcmp(s.rec + 1 + state_words_, key.data(), key.size()) == 0)
      return s.rec + 1;
    i = (i + 1) & mask_;
  }
  // A new group: its record goes at the end of the current block.
  auto words = 1 + state_words_ + (key.size() + 7) / 8;
  if (block_used_ + words > block_size_) {
    block_size_ = std::max(block_words, words);
    blocks_.emplace_back(new uint64_t[block_size_]);
    block_used_ = 0;
  }
  uint64_t* rec = blocks_.back().get() + block_used_;
  block_used_ += words;
  auto g = static_cast<uint32_t>(records_.size());
  rec[0] = (uint64_t{static_cast<uint32_t>(key.size())} << 32) | g;
  std::fill(rec + 1, rec + 1 + state_words_, uint64_t{0});
  std::memcpy(rec + 1 + state_words_, key.data(), key.size());
  records_.push_back(rec);
  if (shape_.distinct)
    distinct_.resize(distinct_.size() + na_);
  slots_[i] = slot{h, rec};
  return rec + 1;
}

void agg_table::add_state(uint64_t* st, size_t a, int64_t count, double sum, double min,
                          double max) {
  if (count <= 0)
    return;
  auto* p = st + a * wpa_;
  bool first = p[0] == 0;
  p[0] += static_cast<uint64_t>(count);
  size_t f = 1;
  if (shape_.sum) {
    setd(p + f, getd(p + f) + sum);
    ++f;
  }
  if (shape_.min) {
    if (first || min < getd(p + f))
      setd(p + f, min);
    ++f;
  }
  if (shape_.max && (first || max > getd(p + f)))
    setd(p + f, max);
}

void agg_table::add_distinct(uint64_t* st, size_t a, std::string_view v) {
  auto g = group_of(st - 1);
  distinct_[g * na_ + a].emplace(v);
}

} // namespace wharf::actors
