#pragma once
/// Report definitions (issue 3, points 5 and 6): what a report reads and how it aggregates.
/// `user_behavior_report` is built in; more come from the node config (`[[reports]]`), so a
/// new report needs no C++. A request names a report and brings its values (time range, user
/// ids, equality filters); `validate` turns mistakes into INVALID_ARGUMENT before any SQL runs.

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include <caf/error.hpp>
#include <caf/expected.hpp>

#include "protocols/error_code.hpp"
#include "runtime/core/types.hpp"

namespace wharf::actors {

struct report_config;

/// Errors are `runtime::make_error(protocols::error_code, ...)`: the one wire vocabulary
/// (INVALID_ARGUMENT, NOT_FOUND, ...) that callers see as `errorCode`.
using runtime::message_of;

enum class agg_fn : uint8_t { count, sum, avg, min, max, count_distinct };

const char* to_string(agg_fn x) noexcept;

struct aggregate {
  agg_fn fn = agg_fn::count;
  std::string column; ///< "*" only with count
  std::string name;   ///< result column name
};

struct report_def {
  std::string name;
  std::string table;
  std::string partition_column = "id"; ///< an integer column, or "ctid" for page ranges
  std::string time_column;             ///< "" = the report takes no time range
  std::string user_column;             ///< "" = the report takes no user id list
  std::vector<std::string> filter_columns;
  std::vector<std::string> group_by;
  std::vector<aggregate> aggregates;
};

/// The values of one request.
struct report_params {
  std::string start;              ///< "YYYY-MM-DD" (midnight) or a timestamp; inclusive
  std::string end;                ///< inclusive (BETWEEN)
  std::vector<int64_t> user_ids;  ///< empty = all
  std::vector<std::pair<std::string, std::string>> filters; ///< column = value
};

/// `user_behavior_report` over `user_events`: grouped by (user_id, event_type),
/// avg(value) AS avg_value, count(id) AS event_count; partitions are page ranges (ctid).
report_def user_behavior_report();

/// Checks and converts a `[[reports]]` entry; errors name the report and the key.
[[nodiscard]] caf::expected<report_def> parse_report(const report_config& cfg);

/// Parses "fn(column) AS name" (case-insensitive fn and AS; name defaults to fn_column).
[[nodiscard]] caf::expected<aggregate> parse_aggregate(const std::string& text);

/// The most user ids one request may name.
constexpr size_t max_user_ids = 100000;

/// INVALID_ARGUMENT when the request does not fit the report: filters on columns the report
/// does not allow, user ids without a user column, a missing time range, malformed dates.
[[nodiscard]] caf::error validate(const report_def& def, const report_params& p);

/// The built-in reports plus those of the config (a config entry may replace a built-in).
class report_catalog {
public:
  report_catalog();
  [[nodiscard]] caf::error add(report_def def);
  /// NOT_FOUND with the known names when there is no such report.
  [[nodiscard]] caf::expected<report_def> find(const std::string& name) const;
  std::vector<std::string> names() const;

private:
  std::map<std::string, report_def> defs_;
};

} // namespace wharf::actors
