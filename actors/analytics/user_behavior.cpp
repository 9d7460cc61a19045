#include "actors/analytics/user_behavior.hpp"

#include <cstdlib>

#include "runtime/core/types.hpp"
#include "runtime/pg/pg_connection.hpp"

namespace wharf::actors {

namespace {

// The filter shared by every statement: $1 start, $2 end, $3 user ids as a bigint array
// literal ("{1,2}"), or '' for every user. Only the quoted table name is spliced.
const char* filter_sql = " WHERE event_timestamp BETWEEN $1::timestamp AND $2::timestamp"
                         " AND (NULLIF($3, '') IS NULL OR user_id = ANY(NULLIF($3, '')::bigint[]))";

std::vector<std::string> filter_params(const user_behavior_request& req) {
  std::string ids;
  if (!req.user_ids.empty()) {
    ids = "{";
    for (size_t i = 0; i < req.user_ids.size(); ++i)
      ids += (i ? "," : "") + std::to_string(req.user_ids[i]);
    ids += "}";
  }
  return {req.start, req.end, ids};
}

int64_t to_i64(const std::optional<std::string>& s) {
  return s ? std::strtoll(s->c_str(), nullptr, 10) : 0;
}

} // namespace

caf::expected<std::optional<std::pair<int64_t, int64_t>>>
user_behavior_id_bounds(runtime::pg_connection& pg, const user_behavior_request& req) {
  auto r = pg.query(("SELECT min(id), max(id) FROM " + pg.quote_identifier(req.table)
                                + filter_sql),
                    filter_params(req));
  if (!r)
    return r.error();
  auto& row = r->rows.at(0);
  if (!row[0])
    return std::optional<std::pair<int64_t, int64_t>>{};
  return std::optional<std::pair<int64_t, int64_t>>{std::make_pair(to_i64(row[0]), to_i64(row[1]))};
}

caf::expected<user_behavior_partials> user_behavior_pushdown(runtime::pg_connection& pg,
                                                             const user_behavior_request& req,
                                                             int64_t lo, int64_t hi) {
  auto params = filter_params(req);
  params.push_back(std::to_string(lo));
  params.push_back(std::to_string(hi));
  // sum(value) in full precision text; float8 output is shortest-exact in PostgreSQL 12+.
  auto r = pg.query(("SELECT user_id, event_type, sum(value), count(value), count(id)"
                                " FROM " + pg.quote_identifier(req.table) + filter_sql
                                + " AND id >= $4::bigint AND id < $5::bigint GROUP BY 1, 2"),
                    params);
  if (!r)
    return r.error();
  user_behavior_partials out;
  for (auto& row : r->rows) {
    auto& p = out[{to_i64(row[0]), row[1].value_or("")}];
    p.value_sum = row[2] ? std::strtod(row[2]->c_str(), nullptr) : 0;
    p.value_count = to_i64(row[3]);
    p.id_count = to_i64(row[4]);
  }
  return out;
}

void merge(user_behavior_partials& into, const user_behavior_partials& from) {
  for (auto& [k, p] : from) {
    auto& q = into[k];
    q.value_sum += p.value_sum;
    q.value_count += p.value_count;
    q.id_count += p.id_count;
  }
}

std::vector<user_behavior_row> finalize(const user_behavior_partials& xs) {
  std::vector<user_behavior_row> out;
  out.reserve(xs.size());
  for (auto& [k, p] : xs) {
    user_behavior_row row;
    row.user_id = k.first;
    row.event_type = k.second;
    if (p.value_count > 0)
      row.avg_value = p.value_sum / static_cast<double>(p.value_count);
    row.event_count = p.id_count;
    out.push_back(std::move(row));
  }
  return out;
}

caf::expected<std::vector<user_behavior_row>>
user_behavior_single_sql(runtime::pg_connection& pg, const user_behavior_request& req) {
  auto r = pg.query(("SELECT user_id, event_type, avg(value), count(id) FROM "
                                + pg.quote_identifier(req.table) + filter_sql
                                + " GROUP BY 1, 2 ORDER BY 1, 2"),
                    filter_params(req));
  if (!r)
    return r.error();
  std::vector<user_behavior_row> out;
  for (auto& row : r->rows) {
    user_behavior_row x;
    x.user_id = to_i64(row[0]);
    x.event_type = row[1].value_or("");
    if (row[2])
      x.avg_value = std::strtod(row[2]->c_str(), nullptr);
    x.event_count = to_i64(row[3]);
    out.push_back(std::move(x));
  }
  return out;
}

std::vector<std::pair<int64_t, int64_t>> split_id_range(int64_t lo, int64_t hi, size_t n) {
  std::vector<std::pair<int64_t, int64_t>> out;
  if (hi < lo || n == 0)
    return out;
  auto span = static_cast<uint64_t>(hi - lo) + 1;
  auto parts = std::min<uint64_t>(n, span);
  for (uint64_t i = 0; i < parts; ++i) {
    auto a = lo + static_cast<int64_t>(span * i / parts);
    auto b = lo + static_cast<int64_t>(span * (i + 1) / parts);
    out.emplace_back(a, b);
  }
  return out;
}

} // namespace wharf::actors
