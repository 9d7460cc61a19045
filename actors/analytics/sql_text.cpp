#include "actors/analytics/sql_text.hpp"

#include <algorithm>
#include <limits>

#include "runtime/pg/pg_connection.hpp"

namespace wharf::actors::analytics_detail {

using runtime::pg_connection;

std::string q(const std::string& ident) {
  return pg_connection::quote_identifier(ident);
}

bool is_ctid(const report_def& d) {
  return d.partition_column == "ctid";
}

std::string type_of(const report_plan& p, const std::string& col) {
  auto i = p.column_types.find(col);
  return i == p.column_types.end() ? std::string("text") : i->second;
}

std::string where_sql(const report_plan& p, binder& bind, const partition* part) {
  std::vector<std::string> conds;
  auto& d = p.def;
  // Untyped `$n` lets PostgreSQL infer the column's type; settings need an explicit cast.
  auto typed = [&](const std::string& col) {
    return bind.via_settings ? type_of(p, col) : std::string{};
  };
  if (!d.time_column.empty())
    conds.push_back(q(d.time_column) + " BETWEEN " + bind(p.params.start, typed(d.time_column))
                    + " AND " + bind(p.params.end, typed(d.time_column)));
  if (!p.params.user_ids.empty() && !d.user_column.empty()) {
    std::string ids = "{";
    for (size_t i = 0; i < p.params.user_ids.size(); ++i)
      ids += (i ? "," : "") + std::to_string(p.params.user_ids[i]);
    ids += "}";
    // The cast makes a settings subquery a scalar array, not ANY(subquery).
    conds.push_back(q(d.user_column) + " = ANY(" + bind(ids, "bigint[]") + "::bigint[])");
  }
  for (auto& [col, val] : p.params.filters)
    conds.push_back(q(col) + " = " + bind(val, typed(col)));
  if (part) {
    if (is_ctid(d)) {
      auto tid = [&](int64_t page) {
        auto v = bind(std::to_string(page), "text");
        return "('(' || " + v + " || ',0)')::tid";
      };
      conds.push_back("ctid >= " + tid(part->lo) + " AND ctid < " + tid(part->hi));
    } else {
      // int8 whatever the column's integer type. The first and last partitions are open
      // at their outer end (int8's extremes stand for "unbounded").
      auto col = q(d.partition_column);
      bool first = part->lo == std::numeric_limits<int64_t>::min();
      if (!first)
        conds.push_back(col + " >= " + bind(std::to_string(part->lo), "int8"));
      if (part->hi != std::numeric_limits<int64_t>::max()) {
        auto below = col + " < " + bind(std::to_string(part->hi), "int8");
        // Rows whose partition key is NULL belong to the first partition.
        bool nullable = p.not_null.count(d.partition_column) == 0;
        conds.push_back(first && nullable ? "(" + below + " OR " + col + " IS NULL)" : below);
      }
    }
  }
  std::string out;
  for (auto& c : conds)
    out += (out.empty() ? " WHERE " : " AND ") + c;
  return out;
}

std::string canonical_sql(const report_plan& p, const std::string& column) {
  auto col = q(column);
  auto type = type_of(p, column);
  if (type == "double precision" || type == "real")
    return "CASE WHEN " + col + " = 0 THEN abs(" + col + ") WHEN " + col
           + " = 'NaN' THEN 'NaN' ELSE " + col + " END";
  if (type == "numeric")
    return "trim_scale(" + col + ")";
  if (type == "interval")
    return "justify_interval(" + col + ")";
  return col;
}

std::string key_sql(const report_plan& p) {
  std::string out;
  for (size_t k = 0; k < p.def.group_by.size(); ++k) {
    auto key = canonical_sql(p, p.def.group_by[k]);
    out += (k ? ", " : "") + (p.key_as_text[k] ? "(" + key + ")::text" : key);
  }
  return out;
}

std::string group_by_sql(const report_plan& p) {
  std::string out = " GROUP BY ";
  for (size_t k = 0; k < p.def.group_by.size(); ++k)
    out += (k ? ", " : "") + std::to_string(k + 1);
  return out;
}

std::string float_input(const aggregate& a) {
  return "(" + q(a.column) + ")::float8";
}

pull_inputs inputs_of(const report_plan& p) {
  auto& d = p.def;
  pull_inputs in;
  for (auto& a : d.aggregates) {
    // count of a NOT NULL column counts rows: nothing to ship for it.
    if (a.column == "*" || (a.fn == agg_fn::count && p.not_null.count(a.column))) {
      in.of_agg.push_back(-1);
      continue;
    }
    auto e = a.fn == agg_fn::count            ? q(a.column)
             : a.fn == agg_fn::count_distinct ? canonical_sql(p, a.column)
                                              : float_input(a);
    auto it = std::find(in.exprs.begin(), in.exprs.end(), e);
    if (it == in.exprs.end()) {
      in.exprs.push_back(e);
      in.of_agg.push_back(static_cast<int>(in.exprs.size() - 1));
    } else {
      in.of_agg.push_back(static_cast<int>(it - in.exprs.begin()));
    }
  }
  return in;
}

} // namespace wharf::actors::analytics_detail
