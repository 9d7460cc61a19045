#pragma once
/// Group keys in their binary form, and the typed cells they decode to.
///
/// Groups are keyed by the group-by values in PostgreSQL's binary format, each prefixed by
/// its Int32 length (-1 = NULL) — exactly the bytes a `COPY ... (FORMAT binary)` tuple or a
/// binary result holds, so pull mode hashes the wire bytes without decoding them. This file
/// reads such keys field by field, compares them as PostgreSQL orders them, and maps them to
/// the 64-bit order-preserving prefixes that sorts and merges compare first. The readers sit
/// in the hot loops of reading, sorting and merging, hence inline. Pure functions, any thread.

#include <cstdint>
#include <cstring>
#include <string>
#include <string_view>
#include <utility>
#include <variant>
#include <vector>

namespace wharf::actors {

/// How a group-by column's binary value decodes (the SQL selects other types as `::text`).
enum class key_kind : uint8_t { integer, floating, boolean, text };

const char* to_string(key_kind x) noexcept; ///< "int", "float", "bool", "text"

/// One typed result cell.
using cell = std::variant<std::monostate, int64_t, double, std::string, bool>;

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

/// A binary float8 value (8 bytes at `p`).
inline double be_double(const char* p) {
  auto bits = be64(p);
  double d;
  std::memcpy(&d, &bits, 8);
  return d;
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

/// Calls `f(const key_field&)` for each field of a binary key (a key built by an agg_table
/// or checked by append_chunk: lengths are not re-checked here).
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

namespace analytics_detail {

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
inline uint64_t sort_prefix(std::string_view k, key_kind kind, size_t& at, bool& exact) {
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

} // namespace analytics_detail

/// The order-preserving prefixes of a key's first two fields (see sorted_partial).
inline std::pair<uint64_t, uint64_t> key_prefixes(std::string_view k,
                                                 const std::vector<key_kind>& kinds) {
  // The second prefix only orders keys whose first fields are equal: when the first prefix
  // does not pin its field down, it is 0 and compare_keys decides.
  size_t at = 0;
  bool exact = true;
  uint64_t p1 = kinds.size() > 0 ? analytics_detail::sort_prefix(k, kinds[0], at, exact) : 0;
  if (!exact || p1 == UINT64_MAX || kinds.size() < 2)
    return {p1, 0};
  bool unused = true;
  return {p1, analytics_detail::sort_prefix(k, kinds[1], at, unused)};
}

namespace analytics_detail {

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

} // namespace analytics_detail

} // namespace wharf::actors
