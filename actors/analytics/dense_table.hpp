#pragma once
/// The dense form of an aggregation table (see agg_table.hpp): its layout, `dense_part`, and
/// where a walk over its groups in key order stands. Internal to actors/analytics:
/// agg_table.cpp creates and destroys it, dense_table.cpp reads rows into it and walks it,
/// chunk_codec.cpp cuts chunks from its cells. Not thread-safe (as the table).
///
/// Key column k maps a value to a code in [0, dim_k); a group lives at cell
/// sum(code_k * stride_k) (the first column most significant), its states at
/// data[cell * state_words], its presence in a bit of `present`. An integer column's codes are
/// value - base for base <= value < base + span, and `span` for NULL; any other column's are
/// dictionary codes in order of first sight (NULL included), `capacity` of them reserved.
/// Values outside the codes widen them: a new layout, every present cell moved (rare: the
/// range grows by half each time). Past the caps the table turns hashed.

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <limits>
#include <string>
#include <string_view>
#include <vector>

#define XXH_INLINE_ALL
#include <xxhash.h>

#include "actors/analytics/agg_table.hpp"
#include "actors/analytics/cell_memory.hpp"
#include "actors/analytics/chunk_codec.hpp"
#include "actors/analytics/key_codec.hpp"

namespace wharf::actors {
namespace analytics_detail {

constexpr uint64_t dense_max_cells = uint64_t{1} << 22;
constexpr uint64_t dense_max_bytes = uint64_t{256} << 20;
constexpr size_t dense_max_dict = 1024;
constexpr int64_t dense_first_span = 64;

inline constexpr char null_field[4] = {'\xff', '\xff', '\xff', '\xff'};

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

/// A dense table's key codes and cells (the layout above).
struct dense_part {
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

} // namespace analytics_detail

/// Where a walk over a dense table's groups in key order stands.
struct dense_cursor::walk {
  const agg_table* table = nullptr;
  std::vector<std::vector<uint64_t>> order; // each column's codes in key order
  std::vector<size_t> pos;                  // the next combination of codes to look at
  bool end = false;
  uint64_t emitted = 0;                     // groups returned so far
};

} // namespace wharf::actors
