#pragma once
/// `user_behavior_report` (issue 3): rows with `event_timestamp BETWEEN start AND end`
/// (optionally only some user ids), grouped by (user_id, event_type), with
/// `avg_value = avg(value)` (NULLs ignored, as SQL's AVG) and `event_count = count(id)`.
///
/// Pushdown building blocks: each id-range partition runs a partial GROUP BY in PostgreSQL
/// and ships decomposed partial states (sum, count of values, count of ids); partials merge
/// associatively and are idempotent per partition id at the caller; `finalize` turns them into
/// rows. Every value reaches PostgreSQL as a bound parameter. Blocking libpq calls: run them in
/// a detached actor or an I/O thread.

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include <caf/expected.hpp>

namespace wharf::runtime {
class pg_connection;
} // namespace wharf::runtime

namespace wharf::actors {

struct user_behavior_request {
  std::string table = "user_events";
  std::string start;              ///< "YYYY-MM-DD" (midnight) or a full timestamp
  std::string end;                ///< inclusive, as SQL BETWEEN
  std::vector<int64_t> user_ids;  ///< empty = every user
};

/// Decomposed aggregate state of one group.
struct user_behavior_partial {
  double value_sum = 0;
  int64_t value_count = 0; ///< non-NULL values
  int64_t id_count = 0;
};

using group_key = std::pair<int64_t, std::string>; ///< (user_id, event_type)
using user_behavior_partials = std::map<group_key, user_behavior_partial>;

/// One result row; `avg_value` is empty when every value of the group is NULL.
struct user_behavior_row {
  int64_t user_id = 0;
  std::string event_type;
  std::optional<double> avg_value;
  int64_t event_count = 0;
};

/// The smallest and largest id matching the filter; nullopt when no row matches.
[[nodiscard]] caf::expected<std::optional<std::pair<int64_t, int64_t>>>
user_behavior_id_bounds(runtime::pg_connection& pg, const user_behavior_request& req);

/// Partial aggregates of the rows with `lo <= id < hi` (pushdown: GROUP BY in PostgreSQL).
[[nodiscard]] caf::expected<user_behavior_partials>
user_behavior_pushdown(runtime::pg_connection& pg, const user_behavior_request& req, int64_t lo,
                       int64_t hi);

/// Adds `from` into `into`.
void merge(user_behavior_partials& into, const user_behavior_partials& from);

/// Final rows ordered by (user_id, event_type).
std::vector<user_behavior_row> finalize(const user_behavior_partials& xs);

/// The whole report as one SQL statement: the ground truth the distributed answer must equal.
[[nodiscard]] caf::expected<std::vector<user_behavior_row>>
user_behavior_single_sql(runtime::pg_connection& pg, const user_behavior_request& req);

/// Splits [lo, hi] into at most `n` contiguous half-open ranges covering it exactly.
std::vector<std::pair<int64_t, int64_t>> split_id_range(int64_t lo, int64_t hi, size_t n);

} // namespace wharf::actors
