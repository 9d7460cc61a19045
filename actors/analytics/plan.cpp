#include "actors/analytics/plan.hpp"

#include <algorithm>
#include <cctype>
#include <cstdlib>
#include <limits>
#include <set>

#include "actors/analytics/sql_text.hpp"
#include "runtime/core/types.hpp"
#include "runtime/pg/pg_connection.hpp"

namespace wharf::actors {

using runtime::pg_connection;
using namespace analytics_detail;

const char* to_string(read_mode x) noexcept {
  switch (x) {
    case read_mode::automatic: return "auto";
    case read_mode::pushdown: return "pushdown";
    case read_mode::pull: return "pull";
  }
  return "auto";
}

table_spec report_plan::spec() const {
  table_spec s;
  s.keys = key_kinds;
  for (auto& a : def.aggregates)
    s.aggs.push_back(a.fn);
  return s;
}

caf::error to_report_error(const caf::error& err) {
  using protocols::error_code;
  if (!err)
    return err;
  if (err.category() == runtime::error_code_category)
    return err;
  auto msg = message_of(err);
  auto state = runtime::sqlstate_of(err);
  if (err.category() == runtime::pg_errc_category) {
    auto code = static_cast<runtime::pg_errc>(err.code());
    if (code == runtime::pg_errc::cancelled)
      return runtime::make_error(error_code::cancelled, msg, state);
    if (code == runtime::pg_errc::connection)
      return runtime::make_error(error_code::unavailable, "database unreachable: " + msg, state);
    if (state.rfind("22", 0) == 0) // data exceptions: the request's values are wrong
      return runtime::make_error(error_code::invalid_argument, msg, state);
    return runtime::make_error(error_code::pg_error, msg, state);
  }
  return runtime::make_error(runtime::wire_code(err), msg);
}

namespace {

const std::set<uint32_t> integer_oids{20, 21, 23};
const std::set<uint32_t> numeric_oids{20, 21, 23, 700, 701, 1700};
const std::set<uint32_t> text_oids{25, 1043, 1042, 19}; // text, varchar, char(n), name
// Types whose values SQL calls equal are equal bytes (or are made so by canonical_sql):
// integers, floats, numeric, bool, the text types, "char", date, time, timetz, timestamp,
// timestamptz, interval, uuid, bytea, inet, cidr, macaddr, macaddr8, bit, varbit, oid, money.
const std::set<uint32_t> byte_exact_oids{20,   21,   23,   700,  701,  1700, 16,  25,   1043,
                                         1042, 19,   18,   1082, 1083, 1266, 1114, 1184, 1186,
                                         2950, 17,   869,  650,  829,  774,  1560, 1562, 26,
                                         790};

// A column as the catalog describes it. Domains are resolved to their base type: values
// travel, compare and cast as the base type's.
struct column_info {
  std::string type;          ///< format_type of the base type, without its modifier
  uint32_t oid = 0;          ///< the base type
  char typtype = 'b';        ///< of the base type: 'e' for an enum
  bool not_null = false;
  bool deterministic = true; ///< false for a nondeterministic (e.g. case-insensitive) collation
};

caf::expected<std::map<std::string, column_info>> catalog_columns(pg_connection& pg,
                                                                  const std::string& table) {
  // The type without its modifier: pull mode casts bound values with it, and a cast to
  // varchar(20) or numeric(10,2) would truncate or round where pushdown's inferred type
  // does not.
  auto cols = pg.query(
    "SELECT a.attname::text, format_type(b.oid, NULL), b.oid::int8, b.typtype::text,"
    " a.attnotnull, coalesce((SELECT co.collisdeterministic FROM pg_collation co"
    " WHERE co.oid = a.attcollation), true)"
    " FROM pg_attribute a CROSS JOIN LATERAL ("
    "WITH RECURSIVE r(t, depth) AS (SELECT a.atttypid, 0 UNION ALL"
    " SELECT ty.typbasetype, r.depth + 1 FROM r JOIN pg_type ty ON ty.oid = r.t"
    " WHERE ty.typtype = 'd' AND r.depth < 32)"
    " SELECT ty.oid, ty.typtype FROM r JOIN pg_type ty ON ty.oid = r.t"
    " ORDER BY r.depth DESC LIMIT 1) b"
    " WHERE a.attrelid = $1::regclass AND a.attnum > 0 AND NOT a.attisdropped",
    {q(table)});
  if (!cols)
    return to_report_error(cols.error());
  std::map<std::string, column_info> out;
  for (auto& row : cols->rows) {
    column_info c;
    c.type = row[1].value_or("text");
    c.oid = static_cast<uint32_t>(std::stoul(row[2].value_or("0")));
    c.typtype = row[3].value_or("b").empty() ? 'b' : row[3]->front();
    c.not_null = row[4].value_or("f") == "t";
    c.deterministic = row[5].value_or("t") == "t";
    out[row[0].value_or("")] = std::move(c);
  }
  return out;
}

// Group keys and count_distinct inputs are compared as bytes on the nodes (in both modes:
// pushdown merges partitions' groups by their bytes). A type whose equal values can differ
// in bytes (jsonb 1.0 and 1.00, citext, arrays, ranges, a case-insensitive collation...)
// would split a group PostgreSQL keeps whole, so it is refused rather than answered wrongly.
caf::error groups_by_bytes(const report_def& d, const std::string& col, const column_info& c,
                           const char* role) {
  if ((byte_exact_oids.count(c.oid) || c.typtype == 'e') && c.deterministic)
    return caf::none;
  auto why = c.deterministic ? "type " + c.type + ", whose equal values can differ in bytes"
                             : "a nondeterministic collation";
  return runtime::make_error(protocols::error_code::invalid_argument,
                    "report " + d.name + ": cannot " + role + " column \"" + col + "\": it has "
                      + why + ", so wharf could not group it exactly as PostgreSQL does; cast it"
                      " in a view (e.g. to text) and report over the view");
}

// The coordinator's session settings that decide how values are parsed and spelled (see
// report_plan::session).
caf::expected<std::vector<std::pair<std::string, std::string>>>
session_settings(pg_connection& pg) {
  auto session = pg.query("SELECT current_setting('TimeZone'), current_setting('DateStyle'),"
                          " current_setting('IntervalStyle'), current_setting('lc_monetary')");
  if (!session)
    return to_report_error(session.error());
  if (session->rows.size() != 1 || session->rows[0].size() != 4)
    return runtime::make_error(protocols::error_code::internal, "session settings: unexpected answer");
  auto& now = session->rows[0];
  return std::vector<std::pair<std::string, std::string>>{
    {"TimeZone", now[0].value_or("UTC")},
    {"DateStyle", now[1].value_or("ISO, MDY")},
    {"IntervalStyle", now[2].value_or("postgres")},
    {"lc_monetary", now[3].value_or("C")},
    {"extra_float_digits", "1"}};
}

// Checks every column the report names against the catalog (`types`) and records its type,
// NOT NULL, and for group keys how they decode; `distinct` tells whether an aggregate is
// count_distinct. Errors: INVALID_ARGUMENT.
caf::error resolve_columns(report_plan& p, std::map<std::string, column_info>& types,
                           bool& distinct) {
  auto& d = p.def;
  auto need = [&](const std::string& col, const char* role) -> caf::error {
    auto i = types.find(col);
    if (i == types.end())
      return runtime::make_error(protocols::error_code::invalid_argument,
                        "report " + d.name + ": " + role + " column \"" + col
                          + "\" does not exist in table " + d.table);
    p.column_types[col] = i->second.type;
    if (i->second.not_null)
      p.not_null.insert(col);
    return caf::none;
  };
  if (!is_ctid(d)) {
    if (auto err = need(d.partition_column, "partition"))
      return err;
    if (integer_oids.count(types[d.partition_column].oid) == 0)
      return runtime::make_error(protocols::error_code::invalid_argument,
                        "report " + d.name + ": partition column " + d.partition_column
                          + " must be an integer column (or \"ctid\")");
  }
  if (!d.time_column.empty())
    if (auto err = need(d.time_column, "time"))
      return err;
  if (!d.user_column.empty())
    if (auto err = need(d.user_column, "user"))
      return err;
  for (auto& [col, val] : p.params.filters)
    if (auto err = need(col, "filter"))
      return err;
  for (auto& col : d.group_by) {
    if (auto err = need(col, "group-by"))
      return err;
    auto& c = types[col];
    if (auto err = groups_by_bytes(d, col, c, "group by"))
      return err;
    auto oid = c.oid;
    key_kind kind = key_kind::text;
    bool as_text = false;
    if (integer_oids.count(oid))
      kind = key_kind::integer;
    else if (oid == 700 || oid == 701)
      kind = key_kind::floating;
    else if (oid == 16)
      kind = key_kind::boolean;
    else if (text_oids.count(oid) == 0)
      as_text = true; // timestamps, numerics, uuids, enums...: their (canonical) text form
    p.key_kinds.push_back(kind);
    p.key_as_text.push_back(as_text);
  }
  for (auto& a : d.aggregates) {
    if (a.column == "*")
      continue;
    if (auto err = need(a.column, "aggregate"))
      return err;
    if (a.fn == agg_fn::count_distinct)
      if (auto err = groups_by_bytes(d, a.column, types[a.column], "count_distinct of"))
        return err;
    distinct |= a.fn == agg_fn::count_distinct;
    bool numeric_fn = a.fn == agg_fn::sum || a.fn == agg_fn::avg || a.fn == agg_fn::min
                      || a.fn == agg_fn::max;
    if (numeric_fn && numeric_oids.count(types[a.column].oid) == 0)
      return runtime::make_error(protocols::error_code::invalid_argument,
                        "report " + d.name + ": " + to_string(a.fn) + "(" + a.column
                          + ") needs a numeric column");
  }
  return caf::none;
}

// The mode to read with: the requested one, else pull for count_distinct, else the one
// PostgreSQL's statistics suggest. Errors: INVALID_ARGUMENT, PG_ERROR.
caf::expected<report_plan> choose_mode(pg_connection& pg, report_plan p, read_mode mode,
                                       bool distinct) {
  auto& d = p.def;
  if (distinct && mode == read_mode::pushdown)
    return runtime::make_error(protocols::error_code::invalid_argument,
                      "report " + d.name + " uses count_distinct: mode pushdown cannot merge it;"
                      " use pull or auto");
  if (mode != read_mode::automatic) {
    p.mode = mode;
    p.mode_reason = "requested";
    return p;
  }
  if (distinct) {
    p.mode = read_mode::pull;
    p.mode_reason = "count_distinct";
    return p;
  }
  // Estimates: rows from pg_class, groups as the product of the keys' distinct counts.
  auto stats = pg.query(
    "SELECT c.reltuples::float8, s.attname::text, s.n_distinct::float8 FROM pg_class c"
    " JOIN pg_namespace n ON n.oid = c.relnamespace"
    " LEFT JOIN pg_stats s ON s.schemaname = n.nspname AND s.tablename = c.relname"
    " WHERE c.oid = $1::regclass",
    {q(d.table)});
  if (!stats)
    return to_report_error(stats.error());
  double rows = -1;
  std::map<std::string, double> nd;
  for (auto& r : stats->rows) {
    rows = r[0] ? std::strtod(r[0]->c_str(), nullptr) : -1;
    if (r[1] && r[2])
      nd[*r[1]] = std::strtod(r[2]->c_str(), nullptr);
  }
  double groups = 1;
  bool known = rows > 0;
  for (auto& col : d.group_by) {
    auto i = nd.find(col);
    if (col == d.user_column && !p.params.user_ids.empty()) {
      groups *= static_cast<double>(p.params.user_ids.size());
      continue;
    }
    if (i == nd.end()) {
      known = false;
      break;
    }
    groups *= i->second >= 0 ? i->second : -i->second * rows;
  }
  if (!known) {
    p.mode = read_mode::pushdown;
    p.mode_reason = "no statistics (run ANALYZE); pushdown";
    return p;
  }
  double matching = rows;
  if (!p.params.user_ids.empty() && nd.count(d.user_column) && nd[d.user_column] != 0) {
    auto users = nd[d.user_column] > 0 ? nd[d.user_column] : -nd[d.user_column] * rows;
    matching = rows * std::min(1.0, static_cast<double>(p.params.user_ids.size()) / users);
  }
  groups = std::min(groups, matching);
  // Pushdown ships one partial row per group and partition, and PostgreSQL hashes every row
  // anyway; once groups are not much fewer than rows, streaming the rows wins.
  p.mode = groups * 50 > matching ? read_mode::pull : read_mode::pushdown;
  p.mode_reason = "estimated " + std::to_string(static_cast<int64_t>(groups)) + " groups over "
                  + std::to_string(static_cast<int64_t>(matching)) + " rows";
  return p;
}

} // namespace

caf::expected<report_plan> make_plan(pg_connection& pg, report_def def, report_params params,
                                     read_mode mode) {
  if (auto err = validate(def, params))
    return err;
  report_plan p;
  p.def = std::move(def);
  p.params = std::move(params);
  auto& d = p.def;
  auto cols = catalog_columns(pg, d.table);
  if (!cols)
    return cols.error();
  auto session = session_settings(pg);
  if (!session)
    return session.error();
  p.session = std::move(*session);
  bool distinct = false;
  if (auto err = resolve_columns(p, *cols, distinct))
    return err;
  return choose_mode(pg, std::move(p), mode, distinct);
}

caf::expected<report_plan> local_types(pg_connection& pg, const report_plan& p) {
  auto types = catalog_columns(pg, p.def.table);
  if (!types)
    return types.error();
  report_plan out = p;
  for (auto& [col, type] : out.column_types) {
    auto i = types->find(col);
    if (i == types->end())
      return runtime::make_error(protocols::error_code::invalid_argument,
                        "column \"" + col + "\" does not exist in table " + p.def.table);
    type = i->second.type;
  }
  return out;
}

caf::expected<std::vector<partition>> plan_partitions(pg_connection& pg, const report_plan& p,
                                                      size_t n) {
  int64_t lo = 0, hi = 0;
  if (is_ctid(p.def)) {
    auto r = pg.query("SELECT (pg_relation_size($1::regclass) /"
                      " current_setting('block_size')::int8)::int8",
                      {q(p.def.table)});
    if (!r)
      return to_report_error(r.error());
    hi = std::stoll(r->rows.at(0).at(0).value_or("0")) - 1;
    if (hi < 0)
      return std::vector<partition>{};
  } else {
    auto col = q(p.def.partition_column);
    auto r = pg.query("SELECT min(" + col + ")::int8, max(" + col + ")::int8 FROM "
                      + q(p.def.table));
    if (!r)
      return to_report_error(r.error());
    auto& row = r->rows.at(0);
    if (!row[0])
      return std::vector<partition>{};
    lo = std::stoll(*row[0]);
    hi = std::stoll(*row[1]);
  }
  std::vector<partition> out;
  // 128-bit arithmetic: ids may span all of int64 (hi - lo and span * i overflow 64 bits).
  using wide = __int128;
  wide span = static_cast<wide>(hi) - static_cast<wide>(lo) + 1;
  auto parts = static_cast<uint64_t>(std::max<wide>(1, std::min<wide>(static_cast<wide>(n), span)));
  for (uint64_t i = 0; i < parts; ++i) {
    partition x;
    x.id = static_cast<uint32_t>(i);
    x.lo = static_cast<int64_t>(lo + span * static_cast<wide>(i) / static_cast<wide>(parts));
    x.hi = static_cast<int64_t>(lo + span * static_cast<wide>(i + 1) / static_cast<wide>(parts));
    out.push_back(x);
  }
  // Rows written after planning still belong to the report: the ends stay open.
  out.front().lo = is_ctid(p.def) ? 0 : std::numeric_limits<int64_t>::min();
  out.back().hi = is_ctid(p.def) ? int64_t{4294967295} : std::numeric_limits<int64_t>::max();
  return out;
}

bool valid_snapshot_id(const std::string& s) {
  if (s.empty() || s.size() > 64)
    return false;
  for (char c : s)
    if (!(std::isdigit(static_cast<unsigned char>(c)) || (c >= 'A' && c <= 'F') || c == '-'))
      return false;
  return true;
}

caf::expected<std::string> export_snapshot(pg_connection& pg) {
  auto begin = pg.query("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY");
  if (!begin)
    return to_report_error(begin.error());
  auto r = pg.query("SELECT pg_export_snapshot()");
  if (!r || r->rows.empty() || !r->rows[0][0]) {
    (void) pg.query("ROLLBACK");
    return r ? runtime::make_error(protocols::error_code::internal, "pg_export_snapshot() returned nothing")
             : to_report_error(r.error());
  }
  return *r->rows[0][0];
}

bool session_setting_allowed(const std::string& name) {
  static const std::set<std::string> allowed{"TimeZone", "DateStyle", "IntervalStyle",
                                             "lc_monetary", "extra_float_digits"};
  return allowed.count(name) > 0;
}

} // namespace wharf::actors
