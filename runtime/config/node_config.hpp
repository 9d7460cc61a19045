#pragma once
/// Configuration of one wharf-node: defaults, loading from a TOML file, validation.
/// Errors name the offending key, e.g. "cluster.heartbeat_ms: expected an integer".

#include <chrono>
#include <cstdint>
#include <string>
#include <vector>

#include <caf/expected.hpp>

namespace wharf::runtime {

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

/// A declarative report (`[[reports]]` in the node config). The analytics service checks the
/// semantics (identifiers, aggregate syntax); here they are only strings.
struct report_config {
  std::string name;
  std::string table;
  std::string partition_column = "id";
  std::string time_column;                 ///< filtered by the request's start/end (BETWEEN)
  std::string user_column;                 ///< filtered by the request's user id list ("" = none)
  std::vector<std::string> filter_columns; ///< columns `filters` may name (equality)
  std::vector<std::string> group_by;
  std::vector<std::string> aggregates;     ///< "fn(column) AS name", fn among count, sum, avg, min, max, count_distinct
};

/// `[analytics]`: the offloaded-report service.
struct analytics_config {
  std::string dsn;                  ///< libpq DSN; empty = $WHARF_PG_DSN
  size_t readers = 1;               ///< partition readers (PostgreSQL connections) per node
  size_t partitions = 0;            ///< per report; 0 = 4 x worker threads in the cluster
  size_t large_result_rows = 10000; ///< larger results are stored and fetched by reference
  std::chrono::milliseconds default_deadline{300000};
  size_t max_attempts = 3;          ///< per partition, across node failures and errors
  std::chrono::seconds result_ttl{3600};
  /// Freed report memory stays in malloc's heap this long after the node's last
  /// report, then goes back to the system (malloc_trim); 0 = as soon as reports stop.
  std::chrono::seconds keep_memory{300};
};

struct node_config {
  std::string name = "n1";               ///< [node] name: unique in the cluster
  std::string host = "127.0.0.1";        ///< [node] host: address every port binds to
  uint16_t cluster_port = 7100;          ///< [node] cluster_port: CAF BASP (node-to-node)
  uint16_t rpc_port = 7101;              ///< [node] rpc_port: Cap'n Proto RPC, 0 = off
  uint16_t http_port = 7102;             ///< [node] http_port: /health and /metrics, 0 = off
  std::string data_dir = "./wharf-data"; ///< [node] data_dir: RocksDB lives in <data_dir>/<name>
  std::vector<std::string> roles = {"worker"}; ///< [node] roles
  std::string log_level = "info";        ///< [log] level: trace|debug|info|warn|error
  std::vector<endpoint> seeds;           ///< [cluster] seeds: ["host:port", ...]
  std::chrono::milliseconds heartbeat_interval{300};  ///< [cluster] heartbeat_ms
  std::chrono::milliseconds failure_timeout{1500};    ///< [cluster] failure_timeout_ms
  std::chrono::milliseconds request_timeout{10000};   ///< [cluster] request_timeout_ms
  durability_mode durability = durability_mode::sync; ///< [state] durability: sync|group
  std::chrono::milliseconds shutdown_timeout{5000};   ///< [node] shutdown_timeout_ms
  size_t worker_threads = 2;                           ///< [node] worker_threads
  analytics_config analytics;                          ///< [analytics]
  std::vector<report_config> reports;                  ///< [[reports]]

  /// Checks cross-field rules; the error names the key.
  [[nodiscard]] caf::error validate() const;
};

/// Reads a TOML file over the defaults. Unknown keys are errors (a typo must not pass silently).
[[nodiscard]] caf::expected<node_config> load_node_config(const std::string& path);

/// Same, from TOML text (`source` names it in messages).
[[nodiscard]] caf::expected<node_config> parse_node_config(const std::string& toml_text,
                                                           const std::string& source);

/// Renders the configuration back as TOML (for --dump-config and the docs).
std::string to_toml(const node_config& cfg);

} // namespace wharf::runtime
