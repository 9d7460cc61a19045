#pragma once
/// Configuration of one wharf-node: defaults, loading from a TOML file, validation.
/// Errors name the offending key, e.g. "cluster.heartbeat_ms: expected an integer".
/// The node's own sections are `[node]`, `[cluster]`, `[log]` and `[state]`; each service
/// module declares its own (see `service_module::configure`) and keeps what it read.

#include <chrono>
#include <cstdint>
#include <string>
#include <vector>

#include <caf/expected.hpp>

namespace wharf::runtime {

class service_module;
/// The modules a process links (also in service_module.hpp).
using module_list = std::vector<service_module*>;

/// How acknowledged actor state reaches the disk.
enum class durability_mode : uint8_t {
  sync,   ///< every commit is its own fsync'd RocksDB write
  group,  ///< commits queued while a write is in flight share one fsync'd write
};

const char* to_string(durability_mode x) noexcept;

/// A `host:port` pair.
struct endpoint {
  std::string host;
  uint16_t port = 0;
  friend bool operator==(const endpoint& a, const endpoint& b) {
    return a.host == b.host && a.port == b.port;
  }
};

/// Parses "host:port"; `what` names the option in the error message.
[[nodiscard]] caf::expected<endpoint> parse_endpoint(const std::string& text,
                                                     const std::string& what);

struct node_config {
  std::string name = "n1";               ///< [node] name: unique in the cluster
  std::string host = "127.0.0.1";        ///< [node] host: address every port binds to
  uint16_t cluster_port = 7100;          ///< [node] cluster_port: CAF BASP (node-to-node)
  uint16_t rpc_port = 7101;              ///< [node] rpc_port: Cap'n Proto RPC, 0 = off
  uint16_t http_port = 7102;             ///< [node] http_port: /health and /metrics, 0 = off
  std::string data_dir = "./wharf-data"; ///< [node] data_dir: RocksDB lives in <data_dir>/<name>
  std::vector<std::string> roles = {"worker"}; ///< [node] roles
  std::string log_level = "info";        ///< [log] level: trace|debug|info|warn|error
  std::string log_format = "text";       ///< [log] format: text | json (one object a line)
  std::vector<endpoint> seeds;           ///< [cluster] seeds: ["host:port", ...]
  std::chrono::milliseconds heartbeat_interval{300};  ///< [cluster] heartbeat_ms
  std::chrono::milliseconds failure_timeout{1500};    ///< [cluster] failure_timeout_ms
  std::chrono::milliseconds request_timeout{10000};   ///< [cluster] request_timeout_ms
  durability_mode durability = durability_mode::sync; ///< [state] durability: sync|group
  std::chrono::milliseconds shutdown_timeout{5000};   ///< [node] shutdown_timeout_ms
  size_t worker_threads = 2;                           ///< [node] worker_threads
  size_t http_max_body = 1u << 20;                     ///< [node] http_max_body_bytes

  /// Whether this node has `role`.
  bool has_role(const std::string& role) const;

  /// Checks cross-field rules; the error names the key.
  [[nodiscard]] caf::error validate() const;
};

/// Reads a TOML file over the defaults: the node's sections into the result, each module's
/// into the module. Unknown sections and keys are errors (a typo must not pass silently).
[[nodiscard]] caf::expected<node_config> load_node_config(const std::string& path,
                                                          const module_list& modules = {});

/// Same, from TOML text (`source` names it in messages).
[[nodiscard]] caf::expected<node_config> parse_node_config(const std::string& toml_text,
                                                           const std::string& source,
                                                           const module_list& modules = {});

/// Renders the configuration back as TOML, the modules' sections included (--dump-config).
std::string to_toml(const node_config& cfg, const module_list& modules = {});

/// Every section and key with its default and meaning, the modules' included (--help).
std::string describe_config(const module_list& modules = {});

} // namespace wharf::runtime
