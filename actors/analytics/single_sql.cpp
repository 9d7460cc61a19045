#include "actors/analytics/single_sql.hpp"

#include <algorithm>

#include "actors/analytics/partition_reader.hpp"
#include "actors/analytics/sql_text.hpp"
#include "runtime/pg/pg_connection.hpp"

namespace wharf::actors {

using runtime::pg_connection;
using namespace analytics_detail;

caf::expected<std::vector<std::vector<cell>>> single_sql(pg_connection& pg,
                                                         const report_plan& p) {
  auto& d = p.def;
  binder bind;
  std::string sql = "SELECT " + key_sql(p);
  for (auto& a : d.aggregates) {
    auto col = a.column == "*" ? std::string("*") : q(a.column);
    switch (a.fn) {
      case agg_fn::count: sql += ", count(" + col + ")"; break;
      case agg_fn::count_distinct: sql += ", count(DISTINCT " + col + ")"; break;
      case agg_fn::sum: sql += ", sum(" + float_input(a) + ")"; break;
      case agg_fn::avg: sql += ", avg(" + float_input(a) + ")"; break;
      case agg_fn::min: sql += ", min(" + float_input(a) + ")"; break;
      case agg_fn::max: sql += ", max(" + float_input(a) + ")"; break;
    }
  }
  sql += " FROM " + q(d.table) + where_sql(p, bind, nullptr) + group_by_sql(p);
  auto r = pg.query_binary(sql, bind.values);
  if (!r)
    return to_report_error(r.error());
  std::vector<std::vector<cell>> rows;
  std::string key;
  auto nk = d.group_by.size();
  for (int row = 0; row < r->rows(); ++row) {
    result_key(key, *r, row, nk);
    auto out = decode_key(key, p.key_kinds);
    for (size_t a = 0; a < d.aggregates.size(); ++a) {
      auto c = static_cast<int>(nk + a);
      if (r->is_null(row, c)) {
        out.emplace_back(std::monostate{});
        continue;
      }
      auto v = r->value(row, c);
      if (d.aggregates[a].fn == agg_fn::count || d.aggregates[a].fn == agg_fn::count_distinct)
        out.emplace_back(static_cast<int64_t>(be64(v.data())));
      else
        out.emplace_back(be_double(v.data()));
    }
    rows.push_back(std::move(out));
  }
  std::sort(rows.begin(), rows.end(), [nk](const std::vector<cell>& a, const std::vector<cell>& b) {
    for (size_t k = 0; k < nk; ++k) {
      bool an = std::holds_alternative<std::monostate>(a[k]);
      bool bn = std::holds_alternative<std::monostate>(b[k]);
      if (an != bn)
        return bn;
      if (!an && a[k] != b[k])
        return a[k] < b[k];
    }
    return false;
  });
  return rows;
}

std::vector<std::vector<cell>> final_rows(const sorted_partial& p) {
  std::vector<std::vector<cell>> out;
  out.reserve(p.size());
  for (size_t g = 0; g < p.size(); ++g) {
    auto row = decode_key(p.keys[g], p.spec.keys);
    for (size_t a = 0; a < p.spec.aggs.size(); ++a)
      row.push_back(p.final_value(g, a));
    out.push_back(std::move(row));
  }
  return out;
}

std::vector<std::pair<std::string, std::string>> result_columns(const report_plan& p) {
  std::vector<std::pair<std::string, std::string>> out;
  for (size_t k = 0; k < p.def.group_by.size(); ++k)
    out.emplace_back(p.def.group_by[k], to_string(p.key_kinds[k]));
  for (auto& a : p.def.aggregates)
    out.emplace_back(a.name, a.fn == agg_fn::count || a.fn == agg_fn::count_distinct ? "int"
                                                                                    : "float");
  return out;
}

} // namespace wharf::actors
