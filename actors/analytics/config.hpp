#pragma once
/// The analytics module's configuration: `[analytics]` and the declarative `[[reports]]`
/// (see deploy/node.example.toml for every key). Declared once in `configure`, which reads,
/// dumps and documents them (runtime/config/config_section.hpp).

#include <chrono>
#include <cstddef>
#include <string>
#include <vector>

namespace wharf::runtime {
class config_root;
} // namespace wharf::runtime

namespace wharf::actors {

/// A declarative report (`[[reports]]`). The service checks the semantics (identifiers,
/// aggregate syntax) when the node starts; here they are only strings.
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
  /// Reports one node coordinates at a time (each holds a planning connection for its
  /// snapshot); more wait in the admission queue and start in order.
  size_t max_running = 8;
  /// Reports that may wait; past it a caller gets RESOURCE_EXHAUSTED (HTTP 503, Retry-After).
  size_t max_queued = 1024;
  /// The longest a report waits in the queue before it fails with RESOURCE_EXHAUSTED (its
  /// deadline, counted from submission, still applies).
  std::chrono::milliseconds queue_wait{120000};
  /// Fault injection for tests: the first N read calls this node gets are dropped without
  /// an answer, as CAF may lose a message while two nodes settle their connection. 0 = off.
  size_t test_drop_reads = 0;
};

/// What the module reads: `[analytics]` and `[[reports]]`.
struct analytics_settings {
  analytics_config analytics;
  std::vector<report_config> reports;
};

/// Declares `[analytics]` and `[[reports]]` over `s` (all config modes).
void configure(runtime::config_root& root, analytics_settings& s);

} // namespace wharf::actors
