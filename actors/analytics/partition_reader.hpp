#pragma once
/// Reading a report's partitions on a worker node into an aggregation table.
///
/// Reading (worker): pushdown runs a partial GROUP BY with every value bound as a parameter
/// and binary results; pull streams `COPY (SELECT ...) TO STDOUT (FORMAT binary)` and
/// aggregates in an `agg_table`. COPY takes no bound parameters, so pull first binds the
/// values with `set_config($n)` on the same connection and the COPY reads them back through
/// `current_setting` in one-time subqueries: no value is ever spliced into SQL text.
/// Every function here blocks: call them from detached actors only.

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include <caf/expected.hpp>

#include "actors/analytics/agg_table.hpp"
#include "actors/analytics/plan.hpp"

namespace wharf::runtime {
class pg_binary_result;
class pg_connection;
} // namespace wharf::runtime

namespace wharf::actors {

/// Reads one partition into `out` (and records its id there). Returns rows (pull) or partial
/// groups (pushdown) read. `stop` is polled during pull; a set flag cancels the statement.
[[nodiscard]] caf::expected<uint64_t> read_partition(runtime::pg_connection& pg,
                                                     const report_plan& plan,
                                                     const partition& part, agg_table& out,
                                                     const std::atomic<bool>* stop = nullptr);

/// Reads a run of adjacent partitions (each one's lo is the previous one's hi) as one
/// statement and records every id in `out`. Errors: INVALID_ARGUMENT for an empty or
/// non-adjacent run, else as `read_partition`.
[[nodiscard]] caf::expected<uint64_t> read_run(runtime::pg_connection& pg,
                                               const report_plan& plan,
                                               const std::vector<partition>& run, agg_table& out,
                                               const std::atomic<bool>* stop = nullptr);

/// True when `run` is non-empty, its ids distinct and each partition starts where the one
/// before it ends.
bool adjacent_run(const std::vector<partition>& run);

namespace analytics_detail {

/// The group key of result row `row`: its first `nk` columns, each length-prefixed as in
/// COPY's binary format (the bytes pull mode hashes).
void result_key(std::string& key, const runtime::pg_binary_result& r, int row, size_t nk);

} // namespace analytics_detail

} // namespace wharf::actors
