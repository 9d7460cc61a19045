#include "actors/analytics/partition_reader.hpp"

#include <algorithm>
#include <condition_variable>
#include <cstring>
#include <deque>
#include <mutex>
#include <set>
#include <thread>

#include "actors/analytics/key_codec.hpp"
#include "actors/analytics/sql_text.hpp"
#include "runtime/pg/pg_connection.hpp"

namespace wharf::actors {

using runtime::pg_connection;
using namespace analytics_detail;

namespace analytics_detail {

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

} // namespace analytics_detail

namespace {

caf::error bad_row(const std::string& why) {
  return runtime::make_error(protocols::error_code::internal, "unexpected COPY data: " + why);
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
        return runtime::make_error(protocols::error_code::invalid_argument,
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

} // namespace

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

caf::expected<uint64_t> read_run(pg_connection& pg, const report_plan& plan,
                                 const std::vector<partition>& run, agg_table& out,
                                 const std::atomic<bool>* stop) {
  if (!adjacent_run(run))
    return runtime::make_error(protocols::error_code::invalid_argument, "partitions of one read must be adjacent");
  // One statement over the run's whole range: rows are counted once, whatever the split.
  partition part{run.front().id, run.front().lo, run.back().hi};
  bool in_snapshot = !plan.snapshot.empty();
  bool in_tx = in_snapshot || !plan.session.empty();
  if (in_snapshot && !valid_snapshot_id(plan.snapshot))
    return runtime::make_error(protocols::error_code::invalid_argument, "malformed snapshot id");
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

} // namespace wharf::actors
