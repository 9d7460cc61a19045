#pragma once
/// Text between Cap'n Proto and std::string (internal to actors/analytics).

#include <string>

#include <capnp/blob.h>

namespace wharf::actors::analytics_detail {

/// A copy of `t`.
inline std::string str(capnp::Text::Reader t) {
  return std::string(t.cStr(), t.size());
}

/// A view of `s` for a builder's setter (which copies it); `s` must outlive the call.
inline kj::StringPtr text(const std::string& s) {
  return kj::StringPtr(s.c_str(), s.size());
}

} // namespace wharf::actors::analytics_detail
