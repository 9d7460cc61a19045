#pragma once
/// `why(x)`: the rendered error of a `caf::expected`, or "ok". Safe inside Boost.Test message
/// arguments, which are evaluated even when the check passes.

#include <string>

#include <caf/expected.hpp>

#include "runtime/core/types.hpp"

namespace wharf::test {

template <class T>
std::string why(const caf::expected<T>& x) {
  return x ? std::string{"ok"} : runtime::describe(x.error());
}

} // namespace wharf::test
