#pragma once
/// The SQL text of a report's statements (internal to actors/analytics): quoted identifiers,
/// the WHERE clause with every value bound, the group keys and the pull mode's inputs. No
/// value is ever spliced into SQL text: values go through a `binder`. Pure functions.

#include <string>
#include <vector>

#include "actors/analytics/plan.hpp"
#include "actors/analytics/report_def.hpp"

namespace wharf::actors::analytics_detail {

/// `ident` quoted as an SQL identifier.
std::string q(const std::string& ident);

/// Whether the report's partitions are page ranges ("ctid").
bool is_ctid(const report_def& d);

/// Collects values as parameters and returns the SQL that refers to each: `$n` for a
/// statement run with bound parameters, or a one-time subquery over a session setting that a
/// preceding `set_config($n)` filled (for COPY, which takes no parameters).
struct binder {
  bool via_settings = false;
  std::vector<std::string> values;
  std::string operator()(const std::string& value, const std::string& type) {
    values.push_back(value);
    auto n = std::to_string(values.size());
    if (!via_settings)
      return type.empty() ? "$" + n : "$" + n + "::" + type;
    return "(SELECT current_setting('wharf.p" + n + "')::" + (type.empty() ? "text" : type) + ")";
  }
  std::string set_config_sql() const {
    std::string sql = "SELECT ";
    for (size_t i = 1; i <= values.size(); ++i)
      sql += (i > 1 ? ", " : "") + std::string("set_config('wharf.p") + std::to_string(i)
             + "', $" + std::to_string(i) + ", false)";
    return sql;
  }
};

/// The format_type of a column the plan references ("text" for one it does not).
std::string type_of(const report_plan& p, const std::string& col);

/// WHERE clause: time range, user ids, filters, and the partition (when given).
std::string where_sql(const report_plan& p, binder& bind, const partition* part);

/// A column's value spelled so that values SQL calls equal are equal bytes: GROUP BY and
/// DISTINCT fold -0 into 0, every NaN into one group, 1.0 into 1.00 and '1 day' into
/// '24 hours', while the nodes compare the bytes they receive (abs(-0) is 0, 'NaN' is one
/// NaN, trim_scale drops trailing zeros, justify_interval spells a span one way).
/// groups_by_bytes() admits only types this makes exact.
std::string canonical_sql(const report_plan& p, const std::string& column);

/// The group keys as a select list (canonical, and as text where the plan says so).
std::string key_sql(const report_plan& p);

/// " GROUP BY 1, 2, ..." over the group keys.
std::string group_by_sql(const report_plan& p);

/// An aggregate's input as float8.
std::string float_input(const aggregate& a);

/// Pull mode: the distinct input expressions and, per aggregate, which one it reads.
struct pull_inputs {
  std::vector<std::string> exprs;
  std::vector<int> of_agg; // -1 = count(*)
};

/// The inputs pull mode selects for the plan's aggregates.
pull_inputs inputs_of(const report_plan& p);

} // namespace wharf::actors::analytics_detail
