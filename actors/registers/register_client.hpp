#pragma once
/// Reads and writes a node's durable register over RPC (`Node.kv()`), for the console, tests
/// and tools. Synchronous: it runs on an `rpc_client`, one call at a time.

#include <string>

#include <caf/expected.hpp>

namespace wharf::runtime {
class rpc_client;
} // namespace wharf::runtime

namespace wharf::actors {

/// The answer of a register: `error`/`error_code` set when it failed (wire codes).
struct register_reply {
  std::string error;
  std::string error_code;
  bool found = false;
  std::string value;
  std::string node;
};

/// `key` on `node` ("" = the node `client` reaches). Transport failures are errors; failures
/// of the register or the cluster are replies with `error` set.
[[nodiscard]] caf::expected<register_reply> register_get(runtime::rpc_client& client,
                                                         const std::string& node,
                                                         const std::string& key);

/// Writes `key` = `value` on `node`; the reply comes once the write is durable.
[[nodiscard]] caf::expected<register_reply> register_put(runtime::rpc_client& client,
                                                         const std::string& node,
                                                         const std::string& key,
                                                         const std::string& value);

} // namespace wharf::actors
