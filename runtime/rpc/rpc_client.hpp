#pragma once
/// A synchronous Cap'n Proto client of one node, for the console, CLIs, tests and tools: it
/// owns a KJ event loop on the calling thread, connects lazily to the node's RPC port and
/// runs one call at a time against the `Node` bootstrap, each bounded by a timeout. Use one
/// instance per thread, and never on a thread that runs a KJ loop or CAF scheduler work.
///
/// ```cpp
/// rpc_client c{"127.0.0.1", 7101};
/// auto page = c.call<std::string>([](api::Node::Client node) {
///   return node.kvRequest().send().getKv().getRequest()...send().then(...);
/// });
/// ```

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>

#include <caf/expected.hpp>
#include <kj/async.h>

#include "protocols/api.capnp.h"

namespace wharf::runtime {

class rpc_client {
public:
  /// An unreachable node shows up as `runtime_errc::unreachable` on `call`.
  rpc_client(std::string host, uint16_t port,
             std::chrono::milliseconds timeout = std::chrono::seconds{30});
  ~rpc_client();
  rpc_client(const rpc_client&) = delete;
  rpc_client& operator=(const rpc_client&) = delete;

  /// Runs `f(node)` and waits for the promise it returns, at most the timeout. Errors:
  /// `unreachable` (connection refused or lost, or a failed call, with its text; the next
  /// call reconnects), `timeout` (it reconnects too), and the wire codes UNIMPLEMENTED (the
  /// node offers no such call or module) and UNAVAILABLE (it is overloaded).
  template <class T>
  [[nodiscard]] caf::expected<T> call(const std::function<kj::Promise<T>(api::Node::Client)>& f) {
    caf::expected<T> out{caf::error{}};
    auto err = run([&](api::Node::Client node) {
      return f(kj::mv(node)).then([&out](T x) { out = std::move(x); });
    });
    if (err)
      return err;
    return out;
  }

  /// "host:port".
  const std::string& target() const noexcept;

  /// The per-call timeout.
  std::chrono::milliseconds timeout() const noexcept;

private:
  caf::error run(const std::function<kj::Promise<void>(api::Node::Client)>& f);
  struct impl;
  std::unique_ptr<impl> impl_;
};

} // namespace wharf::runtime
