#include "actors/analytics/agg_table.hpp"

#include <algorithm>
#include <array>
#include <cstring>

#include <sys/mman.h>

#include <capnp/message.h>
#include <capnp/serialize.h>

#define XXH_INLINE_ALL
#include <xxhash.h>

#include "protocols/capnp_io.hpp"
#include "protocols/analytics.capnp.h"

namespace wharf::actors {

using protocols::flat_reader;
using protocols::message_bytes;

const char* to_string(key_kind x) noexcept {
  switch (x) {
    case key_kind::integer: return "int";
    case key_kind::floating: return "float";
    case key_kind::boolean: return "bool";
    case key_kind::text: return "text";
  }
  return "text";
}

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
void read_states(const uint64_t* st, size_t na, size_t wpa, const state_shape& shape,
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

inline uint32_t key_len(const uint64_t* rec) {
  return static_cast<uint32_t>(rec[0] >> 32);
}

inline uint32_t group_of(const uint64_t* rec) {
  return static_cast<uint32_t>(rec[0]);
}

constexpr size_t block_words = size_t{1} << 17; // 1 MiB

} // namespace

// -- the dense form --
//
// Key column k maps a value to a code in [0, dim_k); a group lives at cell
// sum(code_k * stride_k) (the first column most significant), its states at
// data[cell * state_words], its presence in a bit of `present`. An integer column's codes are
// value - base for base <= value < base + span, and `span` for NULL; any other column's are
// dictionary codes in order of first sight (NULL included), `capacity` of them reserved.
// Values outside the codes widen them: a new layout, every present cell moved (rare: the
// range grows by half each time). Past the caps the table turns hashed.

namespace {

constexpr uint64_t dense_max_cells = uint64_t{1} << 22;
constexpr uint64_t dense_max_bytes = uint64_t{256} << 20;
constexpr size_t dense_max_dict = 1024;
constexpr int64_t dense_first_span = 64;

// The dense table's cells. Rows hit them in random order, so with 4 KiB pages a table of
// megabytes costs a TLB miss on most rows: a table of 2 MiB or more gets a mapping of its
// own, 2 MiB aligned and advised as transparent huge pages (served on fault in Linux's
// default "madvise" mode; where THP is off the advice changes nothing). Smaller tables come
// from calloc. Either way the cells start zeroed.
struct cells_deleter {
  size_t mapped = 0; // bytes of the mapping, 0 for calloc's
  void operator()(uint64_t* p) const {
    if (mapped)
      ::munmap(p, mapped);
    else
      std::free(p);
  }
};
using cells_ptr = std::unique_ptr<uint64_t[], cells_deleter>;

constexpr size_t huge_page = size_t{2} << 20;

cells_ptr zeroed_cells(size_t words) {
  size_t bytes = words * 8;
  if (bytes < huge_page)
    return cells_ptr{static_cast<uint64_t*>(std::calloc(std::max<size_t>(words, 1), 8))};
  size_t len = (bytes + huge_page - 1) / huge_page * huge_page;
  void* raw = ::mmap(nullptr, len + huge_page, PROT_READ | PROT_WRITE,
                     MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (raw == MAP_FAILED)
    return cells_ptr{};
  // Keep the aligned middle: only 2 MiB aligned ranges can be backed by huge pages.
  auto at = reinterpret_cast<uintptr_t>(raw);
  auto aligned = (at + huge_page - 1) & ~(uintptr_t{huge_page} - 1);
  if (aligned > at)
    ::munmap(raw, aligned - at);
  if (auto tail = at + len + huge_page - (aligned + len); tail > 0)
    ::munmap(reinterpret_cast<void*>(aligned + len), tail);
  auto* p = reinterpret_cast<void*>(aligned);
  (void) ::madvise(p, len, MADV_HUGEPAGE);
  return cells_ptr{static_cast<uint64_t*>(p), cells_deleter{len}};
}

const char null_field[4] = {'\xff', '\xff', '\xff', '\xff'};

// A field of at most 16 bytes (a short text with its length prefix: the usual dictionary
// value, an event type or a status) is told apart by its length and its first and last 8
// bytes (4 when shorter than 8), which together cover every byte: a dictionary lookup then
// compares three words instead of hashing and comparing bytes.
struct packed_field {
  uint64_t a = 0, b = 0;
  uint32_t n = 0;
  bool operator==(const packed_field& o) const { return a == o.a && b == o.b && n == o.n; }
};

constexpr uint32_t long_field = ~uint32_t{0};

inline bool pack(std::string_view f, packed_field& out) {
  auto n = f.size();
  const char* p = f.data();
  if (n > 16)
    return false;
  if (n >= 8) {
    std::memcpy(&out.a, p, 8);
    std::memcpy(&out.b, p + n - 8, 8);
  } else if (n >= 4) {
    uint32_t x, y;
    std::memcpy(&x, p, 4);
    std::memcpy(&y, p + n - 4, 4);
    out.a = x;
    out.b = y;
  } else {
    out.a = 0;
    out.b = 0;
    std::memcpy(&out.a, p, n);
  }
  out.n = static_cast<uint32_t>(n);
  return true;
}

inline uint64_t packed_hash(const packed_field& k) {
  uint64_t h = k.a * 0x9E3779B97F4A7C15ull + k.b * 0xC2B2AE3D27D4EB4Full + k.n;
  return h ^ (h >> 32);
}

} // namespace

struct agg_table::dense_part {
  struct column {
    bool range = false;
    int64_t base = 0;
    uint64_t span = 0;
    int32_t width = 0;               // byte length of the integers (2, 4, 8); 0 until one came
    std::vector<std::string> values; // dictionary: each value's field bytes (length prefix too)
    std::vector<packed_field> packed; // the same values packed (n = long_field past 16 bytes)
    uint64_t capacity = 0;
    std::vector<uint32_t> slots; // open addressing over `values`: code + 1, 0 = free

    uint64_t dim() const { return range ? span + 1 : capacity; }

    // The code of a field (its length prefix and bytes), or -1 when it has none yet.
    int64_t code(std::string_view field) const {
      if (!range) {
        if (slots.empty())
          return -1;
        auto mask = slots.size() - 1;
        packed_field k;
        if (!pack(field, k))
          return long_code(field);
        for (auto i = packed_hash(k) & mask;; i = (i + 1) & mask) {
          auto s = slots[i];
          if (s == 0)
            return -1;
          if (packed[s - 1] == k)
            return s - 1;
        }
      }
      auto len = static_cast<int32_t>(be32(field.data()));
      if (len < 0)
        return static_cast<int64_t>(span);
      if (len != width)
        return -1;
      auto off = static_cast<uint64_t>(key_int(field.data() + 4, len)) - static_cast<uint64_t>(base);
      return off < span ? static_cast<int64_t>(off) : -1;
    }

    // Appends the field bytes of `code`.
    void append_field(std::string& out, uint64_t code) const {
      if (!range) {
        out.append(values[code]);
        return;
      }
      if (code == span) {
        out.append(null_field, 4);
        return;
      }
      auto v = static_cast<uint64_t>(base) + code;
      char b[12] = {0, 0, 0, static_cast<char>(width)};
      for (int i = 0; i < width; ++i)
        b[4 + i] = static_cast<char>(v >> (8 * (width - 1 - i)));
      out.append(b, 4 + static_cast<size_t>(width));
    }

    // Gives `field` a code: widens the range or adds a dictionary value. False past the caps
    // or for an integer of another byte length than the column's.
    bool widen(std::string_view field) {
      if (!range) {
        if (values.size() >= dense_max_dict)
          return false;
        values.emplace_back(field);
        packed.emplace_back();
        if (!pack(field, packed.back()))
          packed.back().n = long_field;
        if (values.size() > capacity) {
          capacity = std::max<uint64_t>(4, capacity * 2);
          slots.assign(capacity * 4, 0);
          for (size_t c = 0; c < values.size(); ++c)
            insert_slot(c);
        } else {
          insert_slot(values.size() - 1);
        }
        return true;
      }
      auto len = static_cast<int32_t>(be32(field.data()));
      if (len != 2 && len != 4 && len != 8)
        return false;
      using wide = __int128;
      const wide lowest = std::numeric_limits<int64_t>::min();
      const wide highest = std::numeric_limits<int64_t>::max();
      wide v = key_int(field.data() + 4, len);
      wide lo, hi;
      if (width == 0) {
        width = len;
        lo = v - dense_first_span / 4;
        hi = lo + dense_first_span - 1;
      } else {
        if (len != width)
          return false;
        wide old_lo = base, old_hi = wide{base} + static_cast<wide>(span) - 1;
        wide need = std::max(old_hi, v) - std::min(old_lo, v) + 1;
        wide size = std::max(need, static_cast<wide>(span + span / 2));
        if (size > static_cast<wide>(dense_max_cells))
          return false;
        // The room to spare goes where the range had to grow.
        if (v < old_lo) {
          hi = old_hi;
          lo = hi - size + 1;
        } else {
          lo = old_lo;
          hi = lo + size - 1;
        }
      }
      if (lo < lowest) {
        hi += lowest - lo;
        lo = lowest;
      }
      if (hi > highest) {
        lo -= hi - highest;
        hi = highest;
      }
      base = static_cast<int64_t>(lo);
      span = static_cast<uint64_t>(hi - lo + 1);
      return true;
    }

  private:
    // A dictionary value past 16 bytes: hashed and compared byte by byte (out of line: the
    // rows' usual path through `code` stays short).
    __attribute__((noinline)) int64_t long_code(std::string_view field) const {
      auto mask = slots.size() - 1;
      for (auto i = XXH3_64bits(field.data(), field.size()) & mask;; i = (i + 1) & mask) {
        auto s = slots[i];
        if (s == 0)
          return -1;
        if (values[s - 1] == field)
          return s - 1;
      }
    }

    void insert_slot(size_t c) {
      auto mask = slots.size() - 1;
      auto& v = values[c];
      auto i = (packed[c].n != long_field ? packed_hash(packed[c]) : XXH3_64bits(v.data(), v.size()))
               & mask;
      while (slots[i] != 0)
        i = (i + 1) & mask;
      slots[i] = static_cast<uint32_t>(c + 1);
    }
  };

  std::vector<column> cols;
  std::vector<uint64_t> stride;
  uint64_t cells = 0;
  cells_ptr data;
  std::vector<uint64_t> present;
  size_t groups = 0;

  bool has(uint64_t cell) const { return (present[cell >> 6] >> (cell & 63)) & 1; }

  // Splits a key into its column fields; false when a field is cut off.
  bool fields(std::string_view key, std::string_view* out) const {
    size_t at = 0;
    for (size_t k = 0; k < cols.size(); ++k) {
      if (key.size() - at < 4)
        return false;
      auto len = static_cast<int32_t>(be32(key.data() + at));
      size_t n = 4 + (len > 0 ? static_cast<size_t>(len) : 0);
      if (key.size() - at < n)
        return false;
      out[k] = key.substr(at, n);
      at += n;
    }
    return true;
  }

  // Lays the cells out for `next` (codes only ever widen) and moves every group over. False
  // (nothing changed) when the layout would pass the caps.
  bool relayout(std::vector<column> next, size_t words) {
    std::vector<uint64_t> st(next.size());
    uint64_t n = 1;
    for (size_t k = next.size(); k-- > 0;) {
      st[k] = n;
      auto dim = next[k].dim();
      if (dim != 0 && n > dense_max_cells / dim)
        return false;
      n *= std::max<uint64_t>(dim, 1);
    }
    if (n > dense_max_cells || n * std::max<size_t>(words, 1) * 8 > dense_max_bytes)
      return false;
    auto next_data = zeroed_cells(n * std::max<size_t>(words, 1));
    if (!next_data)
      return false;
    std::vector<uint64_t> next_present((n + 63) / 64, 0);
    std::vector<uint64_t> codes(cols.size());
    for (size_t w = 0; w < present.size(); ++w) {
      for (auto bits = present[w]; bits != 0; bits &= bits - 1) {
        auto cell = w * 64 + static_cast<uint64_t>(__builtin_ctzll(bits));
        auto rest = cell;
        for (size_t k = cols.size(); k-- > 0;) {
          auto dim = std::max<uint64_t>(cols[k].dim(), 1);
          codes[k] = rest % dim;
          rest /= dim;
        }
        uint64_t to = 0;
        for (size_t k = 0; k < cols.size(); ++k) {
          auto c = codes[k];
          if (cols[k].range)
            c = c == cols[k].span ? next[k].span
                                  : c + static_cast<uint64_t>(cols[k].base - next[k].base);
          to += c * st[k];
        }
        std::memcpy(next_data.get() + to * words, data.get() + cell * words, words * 8);
        next_present[to >> 6] |= uint64_t{1} << (to & 63);
      }
    }
    cols = std::move(next);
    stride = std::move(st);
    cells = n;
    data = std::move(next_data);
    present = std::move(next_present);
    return true;
  }

  // The codes of a cell (inverse of the layout).
  void codes_of(uint64_t cell, std::vector<uint64_t>& codes) const {
    codes.resize(cols.size());
    for (size_t k = cols.size(); k-- > 0;) {
      auto dim = std::max<uint64_t>(cols[k].dim(), 1);
      codes[k] = cell % dim;
      cell /= dim;
    }
  }
};

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

struct dense_cursor::walk {
  const agg_table* table = nullptr;
  std::vector<std::vector<uint64_t>> order; // each column's codes in key order
  std::vector<size_t> pos;                  // the next combination of codes to look at
  bool end = false;
  uint64_t emitted = 0;                     // groups returned so far
};

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

std::string_view agg_table::key(uint32_t g) const {
  auto* rec = records_[g];
  return std::string_view(reinterpret_cast<const char*>(rec + 1 + state_words_), key_len(rec));
}

int64_t agg_table::count(uint32_t g, size_t a) const {
  return static_cast<int64_t>(records_[g][1 + a * wpa_]);
}

double agg_table::sum(uint32_t g, size_t a) const {
  return shape_.sum ? getd(records_[g] + 1 + a * wpa_ + 1) : 0;
}

double agg_table::min(uint32_t g, size_t a) const {
  return shape_.min ? getd(records_[g] + 1 + a * wpa_ + 1 + (shape_.sum ? 1 : 0)) : 0;
}

double agg_table::max(uint32_t g, size_t a) const {
  return shape_.max
           ? getd(records_[g] + 1 + a * wpa_ + 1 + (shape_.sum ? 1 : 0) + (shape_.min ? 1 : 0))
           : 0;
}

std::vector<cell> decode_key(std::string_view k, const std::vector<key_kind>& kinds) {
  std::vector<cell> out;
  for_each_field(k, kinds, [&](const key_field& x) {
    if (x.null)
      out.emplace_back(std::monostate{});
    else if (x.kind == key_kind::integer)
      out.emplace_back(x.i);
    else if (x.kind == key_kind::floating)
      out.emplace_back(x.f);
    else if (x.kind == key_kind::boolean)
      out.emplace_back(x.b);
    else
      out.emplace_back(std::string(x.t));
  });
  return out;
}

namespace {

// The bits of a double as an unsigned value in the order keys sort by: negatives below
// positives, -0.0 just below +0.0, NaN (positive) above +inf. A total order on distinct bit
// patterns, so equal keys are exactly equal bytes (-0.0/+0.0 and NaNs are not folded).
inline uint64_t float_order(double d) {
  uint64_t bits;
  std::memcpy(&bits, &d, 8);
  return (bits >> 63) ? ~bits : bits | (uint64_t{1} << 63);
}

// A 64-bit value ordered like the key's field at byte offset `at` (ties are settled by
// compare_keys); `at` moves past the field. `exact` is cleared for texts of 8 bytes or more,
// whose prefix other texts can share (text has no NUL byte, so a shorter text's zero padding
// tells it apart); key_prefixes treats UINT64_MAX, which NULL shares with the largest values,
// as inexact too.
uint64_t sort_prefix(std::string_view k, key_kind kind, size_t& at, bool& exact) {
  auto len = static_cast<int32_t>(be32(k.data() + at));
  const char* p = k.data() + at + 4;
  at += 4 + (len > 0 ? static_cast<size_t>(len) : 0);
  if (len < 0)
    return UINT64_MAX; // NULLs last
  switch (kind) {
    case key_kind::integer:
      return static_cast<uint64_t>(key_int(p, len)) ^ (uint64_t{1} << 63);
    case key_kind::floating:
      return float_order(key_float(p, len));
    case key_kind::boolean:
    case key_kind::text: {
      uint64_t x = 0;
      for (int32_t i = 0; i < 8; ++i)
        x = (x << 8) | (i < len ? static_cast<unsigned char>(p[i]) : 0u);
      exact = len < 8;
      return x;
    }
  }
  return 0;
}

} // namespace

std::pair<uint64_t, uint64_t> key_prefixes(std::string_view k, const std::vector<key_kind>& kinds) {
  // The second prefix only orders keys whose first fields are equal: when the first prefix
  // does not pin its field down, it is 0 and compare_keys decides.
  size_t at = 0;
  bool exact = true;
  uint64_t p1 = kinds.size() > 0 ? sort_prefix(k, kinds[0], at, exact) : 0;
  if (!exact || p1 == UINT64_MAX || kinds.size() < 2)
    return {p1, 0};
  bool unused = true;
  return {p1, sort_prefix(k, kinds[1], at, unused)};
}

namespace {

// Orders two groups of sorted partials: prefixes first, then equal bytes mean equal keys
// (the binary encoding of a value is canonical), and only then a field-by-field compare.
inline int compare_groups(const std::pair<uint64_t, uint64_t>& pa, std::string_view a,
                          const std::pair<uint64_t, uint64_t>& pb, std::string_view b,
                          const std::vector<key_kind>& kinds) {
  if (pa != pb)
    return pa < pb ? -1 : 1;
  if (a == b)
    return 0;
  return compare_keys(a, b, kinds);
}

} // namespace

int compare_keys(std::string_view a, std::string_view b, const std::vector<key_kind>& kinds) {
  size_t i = 0, j = 0;
  for (auto kind : kinds) {
    auto la = static_cast<int32_t>(be32(a.data() + i));
    auto lb = static_cast<int32_t>(be32(b.data() + j));
    i += 4;
    j += 4;
    const char* pa = a.data() + i;
    const char* pb = b.data() + j;
    i += la > 0 ? static_cast<size_t>(la) : 0;
    j += lb > 0 ? static_cast<size_t>(lb) : 0;
    if (la < 0 || lb < 0) {
      if (la < 0 && lb < 0)
        continue;
      return la < 0 ? 1 : -1;
    }
    int c = 0;
    switch (kind) {
      case key_kind::integer: {
        auto x = key_int(pa, la), y = key_int(pb, lb);
        c = x < y ? -1 : x > y ? 1 : 0;
        break;
      }
      case key_kind::floating: {
        // By bits (see float_order): `<` would call NaN equal to everything, which breaks
        // the strict order sorted runs and merges rely on.
        auto x = float_order(key_float(pa, la)), y = float_order(key_float(pb, lb));
        c = x < y ? -1 : x > y ? 1 : 0;
        break;
      }
      case key_kind::boolean:
      case key_kind::text: {
        auto n = static_cast<size_t>(std::min(la, lb));
        c = n ? std::memcmp(pa, pb, n) : 0;
        if (c == 0)
          c = la < lb ? -1 : la > lb ? 1 : 0;
        break;
      }
    }
    if (c != 0)
      return c;
  }
  return 0;
}

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

} // namespace

caf::expected<chunk_info> append_chunk(sorted_partial& into, std::string_view reply) {
  auto bad = [](const std::string& why) {
    return make_error(report_errc::internal, "malformed partial chunk: " + why);
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
    // Counts: varints (the compact form) or a list.
    std::vector<int64_t> counts;
    if (c.hasPackedCounts()) {
      auto pc = c.getPackedCounts();
      counts.reserve(std::min<size_t>(m, pc.size())); // `groups` is untrusted
      auto* q = reinterpret_cast<const char*>(pc.begin());
      size_t pos = 0;
      uint64_t v = 0;
      while (counts.size() < m && get_varint(q, pc.size(), pos, v))
        counts.push_back(static_cast<int64_t>(v));
      if (pos != pc.size())
        return bad("packed counts do not match " + std::to_string(n) + " groups");
    } else {
      for (auto x : c.getCounts())
        counts.push_back(x);
    }
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
    if (shape.distinct) {
      sets.resize(m);
      for (unsigned i = 0; i < m; ++i) {
        auto d = distinct[i];
        auto* q = reinterpret_cast<const char*>(d.begin());
        size_t pos = 0;
        while (pos < d.size()) {
          if (d.size() - pos < 4)
            return undo("distinct set truncated");
          auto len = be32(q + pos);
          pos += 4;
          if (len > d.size() - pos)
            return undo("distinct value truncated");
          sets[i].emplace(q + pos, len);
          pos += len;
        }
      }
    }
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
