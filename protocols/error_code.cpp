#include "protocols/error_code.hpp"

#include <cctype>

namespace wharf::protocols {

namespace {

constexpr error_code all[] = {
  error_code::invalid_argument, error_code::not_found,       error_code::unknown_node,
  error_code::timeout,          error_code::cancelled,       error_code::unavailable,
  error_code::peer_down,        error_code::resource_exhausted, error_code::too_large,
  error_code::pg_error,         error_code::storage_failure, error_code::not_running,
  error_code::unimplemented,    error_code::internal,
};

} // namespace

const char* to_string(error_code x) noexcept {
  switch (x) {
    case error_code::none: return "";
    case error_code::invalid_argument: return "INVALID_ARGUMENT";
    case error_code::not_found: return "NOT_FOUND";
    case error_code::unknown_node: return "UNKNOWN_NODE";
    case error_code::timeout: return "TIMEOUT";
    case error_code::cancelled: return "CANCELLED";
    case error_code::unavailable: return "UNAVAILABLE";
    case error_code::peer_down: return "PEER_DOWN";
    case error_code::resource_exhausted: return "RESOURCE_EXHAUSTED";
    case error_code::too_large: return "TOO_LARGE";
    case error_code::pg_error: return "PG_ERROR";
    case error_code::storage_failure: return "STORAGE_FAILURE";
    case error_code::not_running: return "NOT_RUNNING";
    case error_code::unimplemented: return "UNIMPLEMENTED";
    case error_code::internal: return "INTERNAL";
  }
  return "INTERNAL";
}

error_code parse_error_code(std::string_view s) noexcept {
  if (s.empty())
    return error_code::none;
  for (auto x : all) {
    std::string_view name = to_string(x);
    if (name.size() != s.size())
      continue;
    bool same = true;
    for (size_t i = 0; i < s.size() && same; ++i)
      same = std::toupper(static_cast<unsigned char>(s[i])) == name[i];
    if (same)
      return x;
  }
  return error_code::internal;
}

unsigned http_status(error_code x) noexcept {
  switch (x) {
    case error_code::none: return 200;
    case error_code::invalid_argument: return 400;
    case error_code::not_found:
    case error_code::unknown_node: return 404;
    case error_code::timeout: return 504;
    case error_code::cancelled: return 409;
    case error_code::unavailable:
    case error_code::peer_down:
    case error_code::resource_exhausted:
    case error_code::not_running: return 503;
    case error_code::too_large: return 413;
    case error_code::pg_error: return 502;
    case error_code::unimplemented: return 501;
    case error_code::storage_failure:
    case error_code::internal: return 500;
  }
  return 500;
}

} // namespace wharf::protocols
