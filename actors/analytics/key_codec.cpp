#include "actors/analytics/key_codec.hpp"

#include <algorithm>

namespace wharf::actors {

using analytics_detail::float_order;

const char* to_string(key_kind x) noexcept {
  switch (x) {
    case key_kind::integer: return "int";
    case key_kind::floating: return "float";
    case key_kind::boolean: return "bool";
    case key_kind::text: return "text";
  }
  return "text";
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

} // namespace wharf::actors
