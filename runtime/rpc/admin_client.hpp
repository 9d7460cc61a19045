#pragma once
/// Synchronous client of a node's `Admin` RPC interface, for the console, tests and tools.
/// Owns a KJ event loop on the calling thread: use one instance per thread, and not on a
/// thread that already runs a KJ loop or CAF scheduler work.

#include <chrono>
#include <cstdint>
#include <memory>
#include <string>

#include <caf/expected.hpp>

#include "protocols/messages.hpp"

namespace wharf::runtime {

class rpc_client;

/// Runs one operator command over `client` (`Node.admin()`); errors as `admin_client::call`.
[[nodiscard]] caf::expected<protocols::admin_reply> call_admin(rpc_client& client,
                                                               const protocols::admin_request& req);

class admin_client {
public:
  /// Connects lazily: an unreachable node shows up as `runtime_errc::unreachable` on `call`.
  admin_client(std::string host, uint16_t port,
               std::chrono::milliseconds timeout = std::chrono::seconds{30});
  ~admin_client();
  admin_client(const admin_client&) = delete;
  admin_client& operator=(const admin_client&) = delete;

  /// Runs one command. Transport failures (connection refused, reset, timeout) are errors;
  /// command failures come back as a reply with `error`/`error_code` set.
  [[nodiscard]] caf::expected<protocols::admin_reply> call(const protocols::admin_request& req);

  const std::string& target() const noexcept;

private:
  struct impl;
  std::unique_ptr<impl> impl_;
};

} // namespace wharf::runtime
