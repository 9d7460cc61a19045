#include "actors/analytics/report_sql.hpp"

#include <algorithm>
#include <cctype>
#include <cmath>
#include <condition_variable>
#include <deque>
#include <limits>
#include <mutex>
#include <thread>
#include <cstring>
#include <set>

#include "runtime/core/types.hpp"
#include "runtime/pg/pg_connection.hpp"

namespace wharf::actors {

using runtime::pg_connection;

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
  if (!err)
    return err;
  if (err.category() == report_errc_category)
    return err;
  auto msg = message_of(err);
  if (err.category() == runtime::pg_errc_category) {
    auto code = static_cast<runtime::pg_errc>(err.code());
    if (code == runtime::pg_errc::cancelled)
      return make_error(report_errc::cancelled, msg);
    if (code == runtime::pg_errc::connection)
      return make_error(report_errc::unavailable, "database unreachable: " + msg);
    auto state = runtime::sqlstate_of(err);
    if (state.rfind("22", 0) == 0)
      return make_error(report_errc::invalid_argument, msg);
    return make_error(report_errc::pg_error, msg);
  }
  return make_error(report_errc::internal, msg);
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

std::string q(const std::string& ident) {
  return pg_connection::quote_identifier(ident);
}

bool is_ctid(const report_def& d) {
  return d.partition_column == "ctid";
}

// Collects values as parameters and returns the SQL that refers to each: `$n` for a
// statement run with bound parameters, or a one-time subquery over a session setting that a
// preceding `set_config($n)` filled (for COPY, which takes no parameters).
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

std::string type_of(const report_plan& p, const std::string& col) {
  auto i = p.column_types.find(col);
  return i == p.column_types.end() ? std::string("text") : i->second;
}

// WHERE clause: time range, user ids, filters, and the partition (when given).
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

// A column's value spelled so that values SQL calls equal are equal bytes: GROUP BY and
// DISTINCT fold -0 into 0, every NaN into one group, 1.0 into 1.00 and '1 day' into
// '24 hours', while the nodes compare the bytes they receive (abs(-0) is 0, 'NaN' is one
// NaN, trim_scale drops trailing zeros, justify_interval spells a span one way).
// groups_by_bytes() admits only types this makes exact.
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

// Pull mode: the distinct input expressions and, per aggregate, which one it reads.
struct pull_inputs {
  std::vector<std::string> exprs;
  std::vector<int> of_agg; // -1 = count(*)
};

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

caf::error bad_row(const std::string& why) {
  return make_error(report_errc::internal, "unexpected COPY data: " + why);
}

// The group key of result row `row`: its first `nk` columns, each length-prefixed as in
// COPY's binary format (the bytes pull mode hashes).
void result_key(std::string& key, const runtime::pg_binary_result& r, int row, size_t nk) {
  key.clear();
  for (size_t k = 0; k < nk; ++k) {
    auto c = static_cast<int>(k);
    if (r.is_null(row, c)) {
      append_be32(key, static_cast<uint32_t>(-1));
      continue;
    }
    auto v = r.value(row, c);
    append_be32(key, static_cast<uint32_t>(v.size()));
    key.append(v);
  }
}

caf::expected<uint64_t> read_pushdown(pg_connection& pg, const report_plan& p,
                                      const partition& part, agg_table& out) {
  auto& d = p.def;
  binder bind;
  std::string sql = "SELECT " + key_sql(p);
  for (auto& a : d.aggregates) {
    switch (a.fn) {
      case agg_fn::count:
        sql += a.column == "*" ? ", count(*)" : ", count(" + q(a.column) + ")";
        break;
      case agg_fn::sum:
      case agg_fn::avg:
        sql += ", count(" + q(a.column) + "), sum(" + float_input(a) + ")";
        break;
      case agg_fn::min:
        sql += ", count(" + q(a.column) + "), min(" + float_input(a) + ")";
        break;
      case agg_fn::max:
        sql += ", count(" + q(a.column) + "), max(" + float_input(a) + ")";
        break;
      case agg_fn::count_distinct:
        return make_error(report_errc::invalid_argument,
                          "count_distinct needs mode pull (or auto)");
    }
  }
  sql += " FROM " + q(d.table) + where_sql(p, bind, &part) + group_by_sql(p);
  auto r = pg.query_binary(sql, bind.values);
  if (!r)
    return to_report_error(r.error());
  auto nk = d.group_by.size();
  std::string key;
  for (int row = 0; row < r->rows(); ++row) {
    result_key(key, *r, row, nk);
    auto* g = out.state(key);
    int col = static_cast<int>(nk);
    for (size_t a = 0; a < d.aggregates.size(); ++a) {
      auto cnt = r->value(row, col++);
      if (cnt.size() != 8)
        return bad_row("count is not an int8");
      auto n = static_cast<int64_t>(be64(cnt.data()));
      if (d.aggregates[a].fn == agg_fn::count) {
        out.add_rows(g, a, n);
        continue;
      }
      auto v = r->value(row, col++);
      if (n > 0 && v.size() != 8)
        return bad_row("aggregate is not a float8");
      double x = n > 0 ? be_double(v.data()) : 0;
      out.add_state(g, a, n, x, x, x);
    }
  }
  return static_cast<uint64_t>(r->rows());
}

// Aggregates COPY binary tuples into a table. Rows are taken in batches: hash every key,
// prefetch their slots, then their records, then update — the table outgrows the caches by
// far, and this hides most of the memory latency. Row bytes must stay valid until `flush`.
class row_aggregator {
public:
  row_aggregator(const report_plan& p, const pull_inputs& in, agg_table& out)
    : d_(p.def), in_(in), out_(out), nk_(p.def.group_by.size()), ni_(in.exprs.size()),
      stride_(std::max<size_t>(ni_, 1)), keys_(batch), hashes_(batch), states_(batch),
      vals_(batch * stride_) {}

  // One tuple (without the file header); false on malformed data (see `failure`).
  bool add(std::string_view msg) {
    const char* ptr = msg.data();
    size_t n = msg.size();
    if (n < 2)
      return fail("short tuple");
    auto fields = be16(ptr);
    if (fields == -1)
      return true; // trailer
    if (static_cast<size_t>(fields) != nk_ + ni_)
      return fail("expected " + std::to_string(nk_ + ni_) + " fields, got "
                  + std::to_string(fields));
    const char* end = ptr + n;
    const char* cur = ptr + 2;
    const char* key_begin = cur;
    for (size_t k = 0; k < nk_; ++k) {
      if (end - cur < 4)
        return fail("truncated key");
      auto len = static_cast<int32_t>(be32(cur));
      cur += 4;
      if (len > 0) {
        if (end - cur < len)
          return fail("truncated key");
        cur += len;
      }
    }
    keys_[pending_] = std::string_view(key_begin, static_cast<size_t>(cur - key_begin));
    auto* x = &vals_[pending_ * stride_];
    for (size_t i = 0; i < ni_; ++i) {
      if (end - cur < 4)
        return fail("truncated value");
      auto len = static_cast<int32_t>(be32(cur));
      cur += 4;
      if (len > 0 && end - cur < len)
        return fail("truncated value");
      x[i] = {cur, len};
      if (len > 0)
        cur += len;
    }
    ++rows_;
    if (++pending_ == batch)
      return flush();
    return true;
  }

  bool flush() {
    size_t r = 0;
    // Dense table: the cells of as many rows as their codes allow (prefetched), then one row
    // through `state`, which widens the codes (moving the cells) or turns the table hashed.
    while (r < pending_ && out_.dense()) {
      auto m = out_.dense_states(&keys_[r], pending_ - r, states_.data());
      for (size_t i = 0; i < m; ++i)
        if (!update(states_[i], &vals_[(r + i) * stride_]))
          return false;
      r += m;
      if (r < pending_) {
        if (!update(out_.state(keys_[r]), &vals_[r * stride_]))
          return false;
        ++r;
      }
    }
    if (r < pending_) {
      for (size_t i = r; i < pending_; ++i) {
        hashes_[i] = agg_table::hash(keys_[i]);
        out_.prefetch_slot(hashes_[i]);
      }
      for (size_t i = r; i < pending_; ++i)
        out_.prefetch_record(hashes_[i]);
      for (size_t i = r; i < pending_; ++i)
        if (!update(out_.state(keys_[i], hashes_[i]), &vals_[i * stride_]))
          return false;
    }
    pending_ = 0;
    return true;
  }

  uint64_t rows() const { return rows_; }
  caf::error failure;

private:
  static constexpr size_t batch = 32;

  bool fail(const std::string& why) {
    failure = bad_row(why);
    return false;
  }

  bool update(uint64_t* g, const std::pair<const char*, int32_t>* inputs) {
    for (size_t a = 0; a < in_.of_agg.size(); ++a) {
      auto i = in_.of_agg[a];
      if (i < 0) {
        out_.add_rows(g, a, 1);
        continue;
      }
      auto [v, len] = inputs[static_cast<size_t>(i)];
      if (len < 0)
        continue; // NULL: ignored by every aggregate but count(*)
      switch (d_.aggregates[a].fn) {
        case agg_fn::count:
          out_.add_rows(g, a, 1);
          break;
        case agg_fn::count_distinct:
          out_.add_distinct(g, a, std::string_view(v, static_cast<size_t>(len)));
          break;
        default:
          if (len != 8)
            return fail("value is not a float8");
          out_.add_value(g, a, be_double(v));
      }
    }
    return true;
  }

  const report_def& d_;
  const pull_inputs& in_;
  agg_table& out_;
  size_t nk_, ni_, stride_;
  std::vector<std::string_view> keys_;
  std::vector<uint64_t> hashes_;
  std::vector<uint64_t*> states_;
  std::vector<std::pair<const char*, int32_t>> vals_;
  size_t pending_ = 0;
  uint64_t rows_ = 0;
};

// Hands buffers of length-prefixed tuples from the thread that receives COPY data to the
// thread that aggregates them, so PostgreSQL keeps streaming while rows are hashed. Bounded:
// the receiver waits when the aggregator is `depth` buffers behind.
class tuple_pipe {
public:
  static constexpr size_t buffer_bytes = 256 * 1024;
  static constexpr size_t depth = 4;

  // Receiver side. False once the consumer gave up.
  bool push(std::string&& buf) {
    std::unique_lock<std::mutex> guard{mtx_};
    not_full_.wait(guard, [this] { return q_.size() < depth || stopped_; });
    if (stopped_)
      return false;
    q_.push_back(std::move(buf));
    not_empty_.notify_one();
    return true;
  }
  void close() {
    std::lock_guard<std::mutex> guard{mtx_};
    closed_ = true;
    not_empty_.notify_one();
  }
  bool stopped() {
    std::lock_guard<std::mutex> guard{mtx_};
    return stopped_;
  }

  // Consumer side: the next buffer, or false when closed and drained.
  bool pop(std::string& out) {
    std::unique_lock<std::mutex> guard{mtx_};
    not_empty_.wait(guard, [this] { return !q_.empty() || closed_; });
    if (q_.empty())
      return false;
    out = std::move(q_.front());
    q_.pop_front();
    not_full_.notify_one();
    return true;
  }
  void stop() {
    std::lock_guard<std::mutex> guard{mtx_};
    stopped_ = true;
    not_full_.notify_one();
  }

private:
  std::mutex mtx_;
  std::condition_variable not_full_, not_empty_;
  std::deque<std::string> q_;
  bool closed_ = false;
  bool stopped_ = false;
};

caf::expected<uint64_t> read_pull(pg_connection& pg, const report_plan& p, const partition& part,
                                  agg_table& out, const std::atomic<bool>* stop) {
  auto& d = p.def;
  auto in = inputs_of(p);
  binder bind;
  bind.via_settings = true;
  std::string select = "SELECT " + key_sql(p);
  for (auto& e : in.exprs)
    select += ", " + e;
  select += " FROM " + q(d.table) + where_sql(p, bind, &part);
  if (!bind.values.empty()) {
    auto r = pg.query(bind.set_config_sql(), bind.values);
    if (!r)
      return to_report_error(r.error());
  }
  row_aggregator agg{p, in, out};
  tuple_pipe pipe;
  std::thread consumer([&] {
    std::string buf;
    while (pipe.pop(buf)) {
      size_t at = 0;
      bool ok = true;
      while (ok && at + 4 <= buf.size()) {
        auto len = be32(buf.data() + at);
        ok = agg.add(std::string_view(buf.data() + at + 4, len));
        at += 4 + len;
      }
      // The rows of `buf` are referenced until this flush.
      if (!ok || !agg.flush()) {
        pipe.stop();
        return;
      }
    }
  });
  std::string cur;
  cur.reserve(tuple_pipe::buffer_bytes + 1024);
  bool header = true;
  uint64_t received = 0;
  caf::error failure;
  auto err = pg.copy_out("COPY (" + select + ") TO STDOUT (FORMAT binary)",
                         [&](std::string_view msg) {
    if (header) {
      // "PGCOPY\n\377\r\n\0", Int32 flags, Int32 extension length, extension.
      if (msg.size() < 19 || std::memcmp(msg.data(), "PGCOPY\n\377\r\n\0", 11) != 0) {
        failure = bad_row("no binary COPY header");
        return false;
      }
      auto ext = be32(msg.data() + 15);
      if (ext > msg.size() - 19) {
        failure = bad_row("bad header extension");
        return false;
      }
      msg.remove_prefix(19 + ext);
      header = false;
      if (msg.empty())
        return true;
    }
    append_be32(cur, static_cast<uint32_t>(msg.size()));
    cur.append(msg);
    if (cur.size() >= tuple_pipe::buffer_bytes) {
      if (!pipe.push(std::move(cur)))
        return false; // the aggregator failed; its error says why
      cur = std::string{};
      cur.reserve(tuple_pipe::buffer_bytes + 1024);
    }
    ++received;
    return (received & 4095) != 0 || stop == nullptr || !stop->load(std::memory_order_relaxed);
  });
  if (!cur.empty() && !failure)
    (void) pipe.push(std::move(cur));
  pipe.close();
  consumer.join();
  if (agg.failure)
    return agg.failure;
  if (failure)
    return failure;
  if (err)
    return to_report_error(err);
  return agg.rows();
}

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
  return make_error(report_errc::invalid_argument,
                    "report " + d.name + ": cannot " + role + " column \"" + col + "\": it has "
                      + why + ", so wharf could not group it exactly as PostgreSQL does; cast it"
                      " in a view (e.g. to text) and report over the view");
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
  auto& types = *cols;
  auto session = pg.query("SELECT current_setting('TimeZone'), current_setting('DateStyle'),"
                          " current_setting('IntervalStyle'), current_setting('lc_monetary')");
  if (!session)
    return to_report_error(session.error());
  if (session->rows.size() != 1 || session->rows[0].size() != 4)
    return make_error(report_errc::internal, "session settings: unexpected answer");
  auto& now = session->rows[0];
  p.session = {{"TimeZone", now[0].value_or("UTC")},
               {"DateStyle", now[1].value_or("ISO, MDY")},
               {"IntervalStyle", now[2].value_or("postgres")},
               {"lc_monetary", now[3].value_or("C")},
               {"extra_float_digits", "1"}};
  auto need = [&](const std::string& col, const char* role) -> caf::error {
    auto i = types.find(col);
    if (i == types.end())
      return make_error(report_errc::invalid_argument,
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
      return make_error(report_errc::invalid_argument,
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
  bool distinct = false;
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
      return make_error(report_errc::invalid_argument,
                        "report " + d.name + ": " + to_string(a.fn) + "(" + a.column
                          + ") needs a numeric column");
  }
  if (distinct && mode == read_mode::pushdown)
    return make_error(report_errc::invalid_argument,
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

caf::expected<report_plan> local_types(pg_connection& pg, const report_plan& p) {
  auto types = catalog_columns(pg, p.def.table);
  if (!types)
    return types.error();
  report_plan out = p;
  for (auto& [col, type] : out.column_types) {
    auto i = types->find(col);
    if (i == types->end())
      return make_error(report_errc::invalid_argument,
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
    return r ? make_error(report_errc::internal, "pg_export_snapshot() returned nothing")
             : to_report_error(r.error());
  }
  return *r->rows[0][0];
}

bool adjacent_run(const std::vector<partition>& run) {
  if (run.empty())
    return false;
  std::set<uint32_t> ids;
  for (size_t i = 0; i < run.size(); ++i) {
    if (!ids.insert(run[i].id).second || run[i].lo >= run[i].hi)
      return false;
    if (i > 0 && run[i].lo != run[i - 1].hi)
      return false;
  }
  return true;
}

caf::expected<uint64_t> read_partition(pg_connection& pg, const report_plan& plan,
                                       const partition& part, agg_table& out,
                                       const std::atomic<bool>* stop) {
  return read_run(pg, plan, std::vector<partition>{part}, out, stop);
}

bool session_setting_allowed(const std::string& name) {
  static const std::set<std::string> allowed{"TimeZone", "DateStyle", "IntervalStyle",
                                             "lc_monetary", "extra_float_digits"};
  return allowed.count(name) > 0;
}

caf::expected<uint64_t> read_run(pg_connection& pg, const report_plan& plan,
                                 const std::vector<partition>& run, agg_table& out,
                                 const std::atomic<bool>* stop) {
  if (!adjacent_run(run))
    return make_error(report_errc::invalid_argument, "partitions of one read must be adjacent");
  // One statement over the run's whole range: rows are counted once, whatever the split.
  partition part{run.front().id, run.front().lo, run.back().hi};
  bool in_snapshot = !plan.snapshot.empty();
  bool in_tx = in_snapshot || !plan.session.empty();
  if (in_snapshot && !valid_snapshot_id(plan.snapshot))
    return make_error(report_errc::invalid_argument, "malformed snapshot id");
  if (in_tx) {
    auto b = pg.query("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY");
    if (!b)
      return to_report_error(b.error());
  }
  if (in_snapshot) {
    // SET TRANSACTION SNAPSHOT takes no parameters: the id is checked to be hex and dashes.
    auto set = pg.query("SET TRANSACTION SNAPSHOT '" + plan.snapshot + "'");
    if (!set) {
      (void) pg.query("ROLLBACK");
      return to_report_error(set.error());
    }
  }
  if (!plan.session.empty()) {
    // Transaction-local, names and values bound: the pooled session keeps its own defaults.
    // The names are make_plan's, or a peer's checked by read_plan (session_setting_allowed).
    std::string sql = "SELECT ";
    std::vector<std::string> values;
    for (auto& [name, value] : plan.session) {
      sql += (values.empty() ? "" : ", ") + std::string("set_config($")
             + std::to_string(values.size() + 1) + ", $" + std::to_string(values.size() + 2)
             + ", true)";
      values.push_back(name);
      values.push_back(value);
    }
    auto set = pg.query(sql, values);
    if (!set) {
      (void) pg.query("ROLLBACK");
      return to_report_error(set.error());
    }
  }
  if (in_tx) {
    // PostgreSQL JIT-compiles a statement whose estimated cost passes jit_above_cost. A
    // pushdown statement costs about run/partitions of the report's: it is compiled when the
    // whole report, as one statement, would be (pushdown runs are large enough for the
    // compilation to pay; pull reads single partitions and keeps PostgreSQL's own rule).
    // Transaction-local; -1 (JIT off) stays.
    if (plan.mode == read_mode::pushdown && plan.partitions > run.size()) {
      auto jit = pg.query("SELECT set_config('jit_above_cost', (current_setting('jit_above_cost')"
                          "::float8 * $1::int4 / $2::int4)::text, true)"
                          " WHERE current_setting('jit_above_cost')::float8 > 0",
                          {std::to_string(run.size()), std::to_string(plan.partitions)});
      if (!jit) {
        (void) pg.query("ROLLBACK");
        return to_report_error(jit.error());
      }
    }
  }
  auto r = plan.mode == read_mode::pull ? read_pull(pg, plan, part, out, stop)
                                        : read_pushdown(pg, plan, part, out);
  if (in_tx) {
    auto end = pg.query(r ? "COMMIT" : "ROLLBACK");
    if (r && !end)
      r = to_report_error(end.error());
  }
  if (r)
    for (auto& x : run)
      out.partitions().push_back(x.id);
  return r;
}

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
