#include "actors/analytics/analytics_service.hpp"

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstring>
#include <cstdlib>
#include <deque>
#include <future>
#include <map>
#include <mutex>
#include <optional>
#include <random>
#include <set>
#include <thread>

#include <malloc.h>

#include <caf/all.hpp>
#include <spdlog/spdlog.h>

#include "actors/analytics/agg_table.hpp"
#include "actors/analytics/chunk_codec.hpp"
#include "actors/analytics/key_codec.hpp"
#include "actors/analytics/sorted_partial.hpp"
#include "actors/analytics/report_def.hpp"
#include "protocols/capnp_io.hpp"
#include "protocols/result_page.hpp"
#include "actors/analytics/partition_reader.hpp"
#include "actors/analytics/plan.hpp"
#include "actors/analytics/single_sql.hpp"
#include "protocols/analytics.capnp.h"
#include "runtime/core/types.hpp"
#include "runtime/pg/pg_connection.hpp"

namespace wharf::actors {

using protocols::flat_reader;
using protocols::message_bytes;
using protocols::page_view;
using protocols::page_writer;

using namespace wharf::runtime;
namespace rp = wharf::reports;
using steady = std::chrono::steady_clock;

namespace {

using read_atom = caf::atom_constant<caf::atom("read")>;
using start_atom = caf::atom_constant<caf::atom("start")>;
using progress_atom = caf::atom_constant<caf::atom("progress")>;
using finished_atom = caf::atom_constant<caf::atom("finished")>;
using deadline_atom = caf::atom_constant<caf::atom("deadline")>;
using cancel_atom = caf::atom_constant<caf::atom("cancel")>;
using members_atom = caf::atom_constant<caf::atom("members")>;

constexpr uint32_t chunk_groups = 300000;     // groups per collect round trip (<= ~16 MB)
constexpr uint64_t page_rows = 100000;        // rows per stored result page (= max_fetch)
constexpr uint32_t default_fetch = 10000;
constexpr uint32_t max_fetch = 100000;
constexpr size_t max_partitions = 4096;       // per report
constexpr size_t max_running_reports = 32;    // coordinated by one node at a time
constexpr size_t plan_connections = 8;        // coordinators beyond wait for a connection
constexpr const char* store_path = "system/store";
constexpr const char* service_path = "services/analytics";

std::string str(capnp::Text::Reader t) {
  return std::string(t.cStr(), t.size());
}

kj::StringPtr text(const std::string& s) {
  return kj::StringPtr(s.c_str(), s.size());
}

// A stored result: keys "meta" and "page/NNNNNNNN" under this path.
std::string result_path(const std::string& id) {
  return std::string(service_path) + "/results/" + id;
}

std::string page_key(uint64_t page) {
  char buf[32];
  std::snprintf(buf, sizeof(buf), "page/%08llu", static_cast<unsigned long long>(page));
  return buf;
}

rp::ReadMode to_wire(read_mode m) {
  switch (m) {
    case read_mode::automatic: return rp::ReadMode::AUTO;
    case read_mode::pushdown: return rp::ReadMode::PUSHDOWN;
    case read_mode::pull: return rp::ReadMode::PULL;
  }
  return rp::ReadMode::AUTO;
}

read_mode from_wire(rp::ReadMode m) {
  switch (m) {
    case rp::ReadMode::PUSHDOWN: return read_mode::pushdown;
    case rp::ReadMode::PULL: return read_mode::pull;
    default: return read_mode::automatic;
  }
}

key_kind kind_of(const std::string& s) {
  if (s == "int")
    return key_kind::integer;
  if (s == "float")
    return key_kind::floating;
  if (s == "bool")
    return key_kind::boolean;
  return key_kind::text;
}

// -- report plan <-> ReadTask --

void write_plan(rp::ReadTask::Builder b, const report_plan& p) {
  b.setReportId(text(p.report_id));
  auto d = b.initDef();
  d.setName(text(p.def.name));
  d.setTable(text(p.def.table));
  d.setPartitionColumn(text(p.def.partition_column));
  d.setTimeColumn(text(p.def.time_column));
  d.setUserColumn(text(p.def.user_column));
  auto gb = d.initGroupBy(static_cast<unsigned>(p.def.group_by.size()));
  for (unsigned i = 0; i < gb.size(); ++i)
    gb.set(i, text(p.def.group_by[i]));
  auto ag = d.initAggregates(static_cast<unsigned>(p.def.aggregates.size()));
  for (unsigned i = 0; i < ag.size(); ++i) {
    ag[i].setFn(static_cast<rp::AggFn>(p.def.aggregates[i].fn));
    ag[i].setColumn(text(p.def.aggregates[i].column));
    ag[i].setName(text(p.def.aggregates[i].name));
  }
  auto fc = d.initFilterColumns(static_cast<unsigned>(p.def.filter_columns.size()));
  for (unsigned i = 0; i < fc.size(); ++i)
    fc.set(i, text(p.def.filter_columns[i]));
  auto ct = d.initColumnTypes(static_cast<unsigned>(p.column_types.size()));
  unsigned i = 0;
  for (auto& [name, type] : p.column_types) {
    ct[i].setName(text(name));
    ct[i].setType(text(type));
    ++i;
  }
  auto nn = d.initNotNull(static_cast<unsigned>(p.not_null.size()));
  i = 0;
  for (auto& c : p.not_null)
    nn.set(i++, text(c));
  auto kk = d.initKeyKinds(static_cast<unsigned>(p.key_kinds.size()));
  auto kt = d.initKeyAsText(static_cast<unsigned>(p.key_as_text.size()));
  for (unsigned k = 0; k < kk.size(); ++k) {
    kk.set(k, to_string(p.key_kinds[k]));
    kt.set(k, p.key_as_text[k]);
  }
  b.setStartDate(text(p.params.start));
  b.setEndDate(text(p.params.end));
  auto ids = b.initUserIds(static_cast<unsigned>(p.params.user_ids.size()));
  for (unsigned k = 0; k < ids.size(); ++k)
    ids.set(k, p.params.user_ids[k]);
  auto fs = b.initFilters(static_cast<unsigned>(p.params.filters.size()));
  for (unsigned k = 0; k < fs.size(); ++k) {
    fs[k].setColumn(text(p.params.filters[k].first));
    fs[k].setValue(text(p.params.filters[k].second));
  }
  b.setMode(to_wire(p.mode));
  b.setSnapshot(text(p.snapshot));
  b.setPartitions(p.partitions);
  auto ss = b.initSession(static_cast<unsigned>(p.session.size()));
  for (unsigned k = 0; k < ss.size(); ++k) {
    ss[k].setName(text(p.session[k].first));
    ss[k].setValue(text(p.session[k].second));
  }
}

caf::expected<report_plan> read_plan(rp::ReadTask::Reader r) {
  report_plan p;
  p.report_id = str(r.getReportId());
  auto d = r.getDef();
  p.def.name = str(d.getName());
  p.def.table = str(d.getTable());
  p.def.partition_column = str(d.getPartitionColumn());
  p.def.time_column = str(d.getTimeColumn());
  p.def.user_column = str(d.getUserColumn());
  for (auto g : d.getGroupBy())
    p.def.group_by.push_back(str(g));
  for (auto a : d.getAggregates()) {
    auto fn = static_cast<uint16_t>(a.getFn());
    if (fn > static_cast<uint16_t>(agg_fn::count_distinct))
      return make_error(report_errc::invalid_argument, "unknown aggregate function");
    p.def.aggregates.push_back({static_cast<agg_fn>(fn), str(a.getColumn()), str(a.getName())});
  }
  for (auto f : d.getFilterColumns())
    p.def.filter_columns.push_back(str(f));
  for (auto c : d.getColumnTypes())
    p.column_types[str(c.getName())] = str(c.getType());
  for (auto k : d.getKeyKinds())
    p.key_kinds.push_back(kind_of(str(k)));
  for (auto k : d.getKeyAsText())
    p.key_as_text.push_back(k);
  for (auto c : d.getNotNull())
    p.not_null.insert(str(c));
  if (p.key_kinds.size() != p.def.group_by.size() || p.key_as_text.size() != p.def.group_by.size()
      || p.def.aggregates.empty() || p.def.group_by.empty())
    return make_error(report_errc::invalid_argument, "inconsistent report definition");
  p.params.start = str(r.getStartDate());
  p.params.end = str(r.getEndDate());
  for (auto id : r.getUserIds())
    p.params.user_ids.push_back(id);
  for (auto f : r.getFilters())
    p.params.filters.emplace_back(str(f.getColumn()), str(f.getValue()));
  p.mode = from_wire(r.getMode()) == read_mode::pull ? read_mode::pull : read_mode::pushdown;
  p.snapshot = str(r.getSnapshot());
  if (!p.snapshot.empty() && !valid_snapshot_id(p.snapshot))
    return make_error(report_errc::invalid_argument, "malformed snapshot id");
  p.partitions = std::min<uint32_t>(r.getPartitions(), max_partitions);
  for (auto x : r.getSession()) {
    // Values are bound parameters; names are checked so a plan cannot set anything else.
    if (p.session.size() >= 8)
      return make_error(report_errc::invalid_argument, "too many session settings");
    if (!session_setting_allowed(str(x.getName())))
      return make_error(report_errc::invalid_argument,
                        "session setting not allowed: " + str(x.getName()));
    p.session.emplace_back(str(x.getName()), str(x.getValue()));
  }
  // A peer is trusted with the plan, but not with SQL: every column must be one the
  // definition names (identifiers are quoted anyway; values are bound).
  if (auto err = validate(p.def, p.params))
    return err;
  return p;
}

std::string worker_error(const caf::error& err) {
  capnp::MallocMessageBuilder mb;
  auto e = mb.initRoot<rp::WorkerReply>().initError();
  auto re = to_report_error(err);
  e.setCode(to_string(static_cast<report_errc>(re.code())));
  auto msg = message_of(re);
  e.setMessage(text(msg));
  e.setSqlstate(text(sqlstate_of(err)));
  return message_bytes(mb);
}

// -- memory --

// Reports allocate and free hundreds of MB in big blocks (tables, sorted partials, chunks,
// pages). wharf-node keeps those in malloc's heap while reports run (fresh pages from the
// kernel cost a fault, a zeroing and a cgroup charge each: a fifth of the coordinator's CPU
// when every large block was mapped on its own), and this hands the free memory back once no
// report has been active here for `analytics.keep_memory_s` (default 300 s; a report that
// starts on trimmed memory pays its faults again: ~100k on 3 nodes for a 10M-row report
// here): a helper thread looks every second.
class report_activity {
public:
  static void keep_for(std::chrono::seconds s) { keep().store(s.count()); }

  report_activity() {
    static std::once_flag started;
    std::call_once(started, [] { std::thread(trim_loop).detach(); });
    active().fetch_add(1);
    generation().fetch_add(1);
  }
  ~report_activity() { active().fetch_sub(1); }
  report_activity(const report_activity&) = delete;
  report_activity& operator=(const report_activity&) = delete;

private:
  static std::atomic<int>& active() {
    static std::atomic<int> n{0};
    return n;
  }
  static std::atomic<uint64_t>& generation() {
    static std::atomic<uint64_t> n{0};
    return n;
  }
  static std::atomic<int64_t>& keep() {
    static std::atomic<int64_t> s{runtime::analytics_config{}.keep_memory.count()};
    return s;
  }
  // Trims once reports have left the node quiet for keep() seconds (as allocators that decay
  // their free pages do): back-to-back reports reuse the memory, an idle node gives it back.
  [[noreturn]] static void trim_loop() {
    uint64_t trimmed = 0, seen = 0;
    auto quiet_since = std::chrono::steady_clock::now();
    while (true) {
      std::this_thread::sleep_for(std::chrono::seconds{1});
      auto gen = generation().load();
      auto now = std::chrono::steady_clock::now();
      if (active().load() > 0 || gen != seen) {
        seen = gen;
        quiet_since = now;
        continue;
      }
      if (gen != trimmed && now - quiet_since >= std::chrono::seconds{keep().load()}) {
        trimmed = gen;
        auto before = mallinfo2();
        malloc_trim(0);
        spdlog::debug("reports done: malloc holds {} MB in use, returned free memory ({} MB "
                      "in arenas) to the system", before.uordblks >> 20, before.fordblks >> 20);
      }
    }
  }
};

// -- worker side: a node's partial of one report --

std::string done_reply(uint32_t id, uint64_t rows) {
  capnp::MallocMessageBuilder mb;
  auto d = mb.initRoot<rp::WorkerReply>().initDone();
  d.setPartitionId(id);
  d.setRowsRead(rows);
  return message_bytes(mb);
}

// Rows read by a reader's reply, or nullopt when it is not a Done (an error).
std::optional<uint64_t> done_rows(const std::string& bytes) {
  try {
    flat_reader rd{bytes};
    if (!rd.ok())
      return std::nullopt;
    auto r = rd.get<rp::WorkerReply>();
    if (!r.isDone())
      return std::nullopt;
    return r.getDone().getRowsRead();
  } catch (const kj::Exception&) {
    return std::nullopt;
  }
}

// One read request of a coordinator: answered once every partition it names has been read
// here — by its own read or by another request's (a coordinator re-sending a read it thinks
// lost) — with the first failure's reply if any read failed. Service thread only.
struct read_wait {
  caf::response_promise promise;
  std::set<uint32_t> left;
  uint32_t first = 0;
  uint64_t rows = 0;
  std::string failure;

  void resolve(uint32_t id, const std::string& reply, std::optional<uint64_t> rows_read) {
    if (left.erase(id) == 0)
      return;
    if (!rows_read && failure.empty())
      failure = reply;
    rows += rows_read.value_or(0);
    if (left.empty())
      promise.deliver(failure.empty() ? done_reply(first, rows) : failure);
  }
};

struct node_report {
  report_activity busy;
  std::mutex mtx; // guards tables, collected, retired, running (not a table during its read)
  std::mutex small; // guards merged and active; held only briefly (the service takes it)
  std::shared_ptr<const report_plan> plan;
  // The column types this node trusts: looked up in its own catalog before its first read,
  // never taken from the peer's plan (they are spliced into SQL as casts).
  std::once_flag types_once;
  std::shared_ptr<const report_plan> local_plan;
  caf::error types_error;
  // One table per reader: reader r aggregates every partition it reads straight into
  // tables[r] (no per-partition table and merge). A failed read drops that whole table, and
  // with it the other partitions it held; `merged` forgets them too, and the coordinator
  // finds them missing when it collects and reads them again.
  std::vector<std::unique_ptr<agg_table>> tables;
  std::set<uint32_t> merged;              // partitions whose rows are in some table
  std::optional<sorted_partial> collected; // the tables as one sorted run, built by collect
  std::vector<std::unique_ptr<agg_table>> retired; // folded into `collected` (its keys view them)
  // The usual case, one dense table: chunks are cut straight from its cells (see run_collect).
  std::unique_ptr<agg_table> walking;
  dense_cursor cursor;
  int running = 0;                     // reads in flight
  std::atomic<bool> stop{false};
  std::set<pg_connection*> active;
  steady::time_point expires;
  // Service thread only: partitions queued or being read here, with the requests waiting
  // for them (each partition is read by one job at a time, whoever asks).
  std::map<uint32_t, std::vector<std::shared_ptr<read_wait>>> pending;
};

// Partition `id` of `rep` was read (rows) or failed (nullopt): every request waiting on it
// learns so, and it is no longer pending.
void settle(node_report& rep, uint32_t id, const std::string& reply,
            std::optional<uint64_t> rows) {
  auto i = rep.pending.find(id);
  if (i == rep.pending.end())
    return;
  auto waiting = std::move(i->second);
  rep.pending.erase(i);
  for (auto& w : waiting)
    w->resolve(id, reply, rows);
}

struct read_job {
  std::shared_ptr<node_report> report;
  std::vector<partition> run; // ascending ids; adjacent ones are read as one statement
  bool collect = false; // page through the merged partial instead of reading
  uint64_t offset = 0;
  uint32_t limit = 0;
};

} // namespace
} // namespace wharf::actors

CAF_ALLOW_UNSAFE_MESSAGE_TYPE(std::shared_ptr<wharf::actors::read_job>)

namespace wharf::actors {
namespace {

std::string run_read(read_job& job, pg_pool& pool, size_t r) {
  auto& rep = *job.report;
  if (job.run.empty())
    return worker_error(make_error(report_errc::internal, "a read of no partition"));
  auto first = job.run.front().id;
  agg_table* table = nullptr; // only this reader touches it while the read runs
  {
    std::lock_guard<std::mutex> guard{rep.mtx};
    if (rep.stop)
      return worker_error(make_error(report_errc::cancelled, "report released"));
    {
      std::lock_guard<std::mutex> small{rep.small};
      // Already read here: idempotent.
      job.run.erase(std::remove_if(job.run.begin(), job.run.end(),
                                   [&](const partition& p) { return rep.merged.count(p.id) > 0; }),
                    job.run.end());
      if (job.run.empty())
        return done_reply(first, 0);
    }
    if (rep.tables.size() <= r)
      rep.tables.resize(r + 1);
    if (!rep.tables[r])
      rep.tables[r] = std::make_unique<agg_table>(rep.plan->spec());
    table = rep.tables[r].get();
    ++rep.running;
  }
  auto give_up = [&](const caf::error& err) {
    std::lock_guard<std::mutex> guard{rep.mtx};
    --rep.running;
    return worker_error(err);
  };
  auto lease = pool.acquire();
  if (!lease)
    return give_up(make_error(report_errc::unavailable,
                              "database unreachable: " + message_of(lease.error())));
  std::call_once(rep.types_once, [&] {
    auto local = local_types(**lease, *rep.plan);
    if (local)
      rep.local_plan = std::make_shared<report_plan>(std::move(*local));
    else
      rep.types_error = local.error();
  });
  if (!rep.local_plan)
    return give_up(rep.types_error);
  {
    std::lock_guard<std::mutex> small{rep.small};
    rep.active.insert(&**lease);
  }
  caf::expected<uint64_t> rows{uint64_t{0}};
  // Adjacent partitions go as one statement; a gap (partitions left out as read already)
  // starts another.
  for (size_t i = 0; i < job.run.size() && rows;) {
    size_t j = i + 1;
    while (j < job.run.size() && job.run[j].lo == job.run[j - 1].hi)
      ++j;
    // A release that came after the check above found no statement to cancel: check again.
    if (rep.stop) {
      rows = make_error(report_errc::cancelled, "report released");
      break;
    }
    std::vector<partition> stretch(job.run.begin() + static_cast<std::ptrdiff_t>(i),
                                   job.run.begin() + static_cast<std::ptrdiff_t>(j));
    auto got = read_run(**lease, *rep.local_plan, stretch, *table, &rep.stop);
    if (got)
      *rows += *got;
    else
      rows = got.error();
    i = j;
  }
  {
    std::lock_guard<std::mutex> small{rep.small};
    rep.active.erase(&**lease);
  }
  std::lock_guard<std::mutex> guard{rep.mtx};
  --rep.running;
  std::lock_guard<std::mutex> small{rep.small};
  if (!rows || rep.stop) {
    // The table may hold part of this partition: drop it with everything it held.
    for (auto id : table->partitions())
      rep.merged.erase(id);
    rep.tables[r].reset();
    if (!rows)
      return worker_error(rows.error());
    return worker_error(make_error(report_errc::cancelled, "report released"));
  }
  for (auto& p : job.run)
    rep.merged.insert(p.id);
  return done_reply(first, *rows);
}

// Folds the readers' tables into one sorted run (CPU-heavy, hence on a reader thread) and
// returns one chunk of it.
std::string run_collect(read_job& job) {
  auto& rep = *job.report;
  std::lock_guard<std::mutex> guard{rep.mtx};
  if (rep.running > 0)
    return worker_error(make_error(report_errc::internal, "reads still running"));
  size_t tables = 0;
  for (auto& t : rep.tables)
    tables += t != nullptr;
  if (!rep.collected && !rep.walking && tables == 1) {
    for (auto& t : rep.tables) {
      if (t && t->dense()) {
        spdlog::debug("report {}: chunks cut from one dense table of {} groups",
                      rep.plan->report_id, t->groups());
        rep.walking = std::move(t);
        rep.cursor = dense_cursor{};
        tables = 0;
      }
    }
  }
  if (rep.walking && tables == 0)
    return encode_chunk(*rep.walking, rep.cursor, job.offset, job.limit);
  bool fresh = !rep.collected || tables > 0;
  if (fresh) {
    auto t0 = steady::now();
    std::vector<sorted_partial> parts;
    if (rep.walking) {
      // Reads after the first collect (partitions of a failed node) added tables: the walked
      // one joins the general merge.
      parts.push_back(to_sorted(*rep.walking));
      rep.retired.push_back(std::move(rep.walking));
    }
    for (auto& t : rep.tables) {
      if (!t)
        continue;
      parts.push_back(to_sorted(*t));
      rep.retired.push_back(std::move(t));
    }
    auto t1 = steady::now();
    if (!rep.collected && parts.size() == 1) {
      rep.collected.emplace(std::move(parts.front())); // one table: nothing to merge
    } else {
      std::vector<const sorted_partial*> runs;
      if (rep.collected)
        runs.push_back(&*rep.collected);
      for (auto& p : parts)
        runs.push_back(&p);
      auto merged = merge_sorted(runs, rep.plan->spec());
      rep.collected.emplace(std::move(merged));
    }
    auto ms = [](auto d) { return std::chrono::duration_cast<std::chrono::milliseconds>(d).count(); };
    spdlog::debug("report {}: {} tables sorted in {} ms, merged into {} groups in {} ms",
                  rep.plan->report_id, parts.size(), ms(t1 - t0), rep.collected->size(),
                  ms(steady::now() - t1));
  }
  return encode_chunk(*rep.collected, job.offset, job.limit);
}

caf::behavior reader_impl(caf::event_based_actor*, std::shared_ptr<pg_pool> pool, size_t index) {
  return {
    [pool, index](read_atom, std::shared_ptr<read_job>& job) -> std::string {
      if (job->collect)
        return run_collect(*job);
      if (!pool)
        return worker_error(make_error(report_errc::unavailable,
                                       "no database configured on this node (analytics.dsn "
                                       "or WHARF_PG_DSN)"));
      return run_read(*job, *pool, index);
    },
  };
}

// -- app-facing responses --

struct response_info {
  std::string id;
  rp::ReportStatus status = rp::ReportStatus::PENDING;
  std::string error;
  std::string code;
  std::string sqlstate;
  read_mode mode = read_mode::automatic;
  uint32_t partitions = 0;
  uint32_t done = 0;
  uint32_t retries = 0;
  uint64_t rows_read = 0;
  uint64_t elapsed_ms = 0;
  uint64_t trace = 0;
  std::string node;
};

void fill(rp::ReportResponse::Builder b, const response_info& x) {
  b.setReportId(text(x.id));
  b.setStatus(x.status);
  b.setErrorMessage(text(x.error));
  b.setErrorCode(text(x.code));
  b.setSqlstate(text(x.sqlstate));
  b.setModeUsed(to_wire(x.mode));
  b.setPartitions(x.partitions);
  b.setPartitionsDone(x.done);
  b.setRetries(x.retries);
  b.setRowsRead(x.rows_read);
  b.setElapsedMs(x.elapsed_ms);
  b.setTraceId(x.trace);
  b.setNode(text(x.node));
}

std::string response_bytes(const response_info& x) {
  capnp::MallocMessageBuilder mb;
  fill(mb.initRoot<rp::ReportResponse>(), x);
  return message_bytes(mb);
}

// Status, code, message and SQLSTATE of a report that ended in `err`.
void set_error(response_info& x, const caf::error& err) {
  auto re = to_report_error(err);
  auto code = static_cast<report_errc>(re.code());
  x.status = code == report_errc::timeout     ? rp::ReportStatus::TIMEOUT
             : code == report_errc::cancelled ? rp::ReportStatus::CANCELLED
                                              : rp::ReportStatus::FAILED;
  x.code = to_string(code);
  x.error = message_of(re);
  x.sqlstate = sqlstate_prefix(x.error);
}

std::string error_response(const std::string& id, const caf::error& err, uint64_t trace,
                           const std::string& node) {
  response_info x;
  x.id = id;
  set_error(x, err);
  x.trace = trace;
  x.node = node;
  return response_bytes(x);
}

void set_cell(rp::Value::Builder v, const cell& c) {
  if (auto* i = std::get_if<int64_t>(&c))
    v.setInt(*i);
  else if (auto* d = std::get_if<double>(&c))
    v.setFloat(*d);
  else if (auto* s = std::get_if<std::string>(&c))
    v.setText(text(*s));
  else if (auto* b = std::get_if<bool>(&c))
    v.setBool(*b);
  else
    v.setNull();
}

void write_columns(capnp::List<rp::Column>::Builder out,
                   const std::vector<std::pair<std::string, std::string>>& cols) {
  for (unsigned i = 0; i < out.size(); ++i) {
    out[i].setName(text(cols[i].first));
    out[i].setType(text(cols[i].second));
  }
}

// Writes a group's key cells straight from their binary form (no intermediate strings).
unsigned write_key(capnp::List<rp::Value>::Builder vals, std::string_view key,
                   const std::vector<key_kind>& kinds) {
  unsigned c = 0;
  for_each_field(key, kinds, [&](const key_field& x) {
    auto v = vals[c++];
    if (x.null)
      v.setNull();
    else if (x.kind == key_kind::integer)
      v.setInt(x.i);
    else if (x.kind == key_kind::floating)
      v.setFloat(x.f);
    else if (x.kind == key_kind::boolean)
      v.setBool(x.b);
    else
      v.setText(capnp::Text::Reader(x.t.data(), x.t.size()));
  });
  return c;
}

void write_rows(capnp::List<rp::Row>::Builder out, const sorted_partial& p, size_t from) {
  auto na = p.spec.aggs.size();
  auto nk = p.spec.keys.size();
  for (unsigned r = 0; r < out.size(); ++r) {
    auto g = from + r;
    auto vals = out[r].initValues(static_cast<unsigned>(nk + na));
    auto c = write_key(vals, p.keys[g], p.spec.keys);
    for (size_t a = 0; a < na; ++a)
      set_cell(vals[c++], p.final_value(g, a));
  }
}

// Writes groups [from, from + n) of `p` column-wise: keys straight from their binary form,
// then each aggregate's final value.
void write_page(protocols::page_writer& w, const sorted_partial& p, size_t from, size_t n) {
  auto na = p.spec.aggs.size();
  w.reserve(n);
  for (size_t g = from; g < from + n; ++g) {
    size_t c = 0;
    for_each_field(p.keys[g], p.spec.keys, [&](const key_field& x) {
      if (x.null)
        w.put_null(c);
      else if (x.kind == key_kind::integer)
        w.put_int(c, x.i);
      else if (x.kind == key_kind::floating)
        w.put_float(c, x.f);
      else if (x.kind == key_kind::boolean)
        w.put_bool(c, x.b);
      else
        w.put_text(c, x.t);
      ++c;
    });
    for (size_t a = 0; a < na; ++a, ++c) {
      auto v = p.final_value(g, a);
      if (auto* i = std::get_if<int64_t>(&v))
        w.put_int(c, *i);
      else if (auto* d = std::get_if<double>(&v))
        w.put_float(c, *d);
      else
        w.put_null(c); // aggregates are ints or floats
    }
  }
}

// -- the coordinator of one report --

struct coord_args {
  std::string id;
  report_def def;
  report_params params;
  read_mode mode = read_mode::automatic;
  std::chrono::milliseconds deadline{0};
  size_t partitions = 0;
  uint64_t trace = 0;
  std::shared_ptr<pg_pool> pool;
  analytics_config cfg;
  std::string node;
  size_t worker_threads = 2;
  caf::actor service;
  caf::actor root;
};

struct part_state {
  partition p;
  enum { queued, running, done } st = queued;
  std::string node;
  unsigned attempts = 0;
  uint64_t token = 0;
  steady::time_point sent;
};

// How long a read may go unanswered before the coordinator asks its node whether it has it
// (CAF may lose a message while two nodes settle their connection).
constexpr std::chrono::seconds probe_after{2};

struct worker_node {
  std::set<uint64_t> reads; // tokens of the reads in flight there
  bool dead = false;
  std::set<uint32_t> done;
  /// The collected chunks (a deque: `run`'s keys view into them, so they must not move) and
  /// their groups, decoded as each chunk arrives.
  std::deque<std::string> chunks;
  std::optional<sorted_partial> run;
  uint64_t collected = 0;
  void reset_collect() {
    run.reset();
    chunks.clear();
    collected = 0;
  }
  enum { idle, running, complete } collect = idle;
};

class coordinator {
public:
  coordinator(caf::event_based_actor* self, coord_args args)
    : self_(self), a_(std::move(args)), started_(steady::now()) {}

  void start() {
    info_.id = a_.id;
    info_.trace = a_.trace;
    info_.node = a_.node;
    info_.status = rp::ReportStatus::RUNNING;
    self_->delayed_send(self_, a_.deadline, deadline_atom::value);
    if (!a_.pool) {
      fail(make_error(report_errc::unavailable,
                      "no database configured (analytics.dsn or WHARF_PG_DSN)"));
      return;
    }
    // Planning blocks on PostgreSQL: fine here, this actor has its own thread.
    auto lease = a_.pool->acquire();
    if (!lease) {
      fail(make_error(report_errc::unavailable,
                      "database unreachable: " + message_of(lease.error())));
      return;
    }
    auto plan = make_plan(**lease, a_.def, a_.params, a_.mode);
    if (!plan) {
      fail(plan.error());
      return;
    }
    plan->report_id = a_.id;
    plan_ = std::make_shared<report_plan>(std::move(*plan));
    info_.mode = plan_->mode;
    spdlog::info("report {} ({}): mode {} ({})", a_.id, a_.def.name, to_string(plan_->mode),
                 plan_->mode_reason);
    self_->send(self_, members_atom::value);
    self_->delayed_send(self_, probe_after, probe_atom::value);
    wanted_ = a_.partitions;
    lease_ = std::move(*lease);
  }

  // The member table arrives; plan partitions over the live workers and start reading.
  void on_members(const protocols::admin_reply& r) {
    if (finished_)
      return;
    for (auto& m : r.members)
      if (m.status == protocols::member_status::alive
          && std::find(m.roles.begin(), m.roles.end(), "worker") != m.roles.end())
        nodes_[m.name];
    if (nodes_.empty()) {
      fail(make_error(report_errc::unavailable, "no live worker node in the cluster"));
      return;
    }
    auto n = wanted_ ? wanted_ : 4 * a_.worker_threads * nodes_.size();
    auto parts = plan_partitions(*lease_, *plan_, n);
    if (!parts) {
      fail(parts.error());
      return;
    }
    // One snapshot for every partition, on every node: the planning connection exports it
    // and keeps its transaction open until the report ends (finish()).
    auto snap = export_snapshot(*lease_);
    if (!snap) {
      fail(snap.error());
      return;
    }
    plan_->snapshot = *snap;
    plan_->partitions = static_cast<uint32_t>(parts->size());
    for (auto& p : *parts) {
      part_state s;
      s.p = p;
      parts_.push_back(s);
    }
    info_.partitions = static_cast<uint32_t>(parts_.size());
    progress();
    pump();
  }

  void pump() {
    if (finished_ || finalizing_)
      return;
    bool any_alive = false;
    for (auto& [name, n] : nodes_) {
      if (n.dead)
        continue;
      any_alive = true;
      while (n.reads.size() < a_.cfg.readers) {
        auto run = next_run();
        if (run.empty())
          break;
        send_read(name, run);
      }
    }
    if (!any_alive) {
      fail(make_error(report_errc::unavailable, "every worker node failed during the report"));
      return;
    }
    bool queued = std::any_of(parts_.begin(), parts_.end(),
                              [](const part_state& s) { return s.st == part_state::queued; });
    // A node is final for this report once nothing is left to hand out and it has no read in
    // flight: collect it now, while the others still read.
    if (!queued)
      for (auto& [name, n] : nodes_)
        if (!n.dead && n.reads.empty() && n.collect == worker_node::idle && !n.done.empty()) {
          n.collect = worker_node::running;
          n.reset_collect();
          collect(name);
        }
    bool all_read = std::all_of(parts_.begin(), parts_.end(),
                                [](const part_state& s) { return s.st == part_state::done; });
    if (!all_read)
      return;
    if (!read_logged_) {
      read_logged_ = true;
      spdlog::debug("report {}: all {} partitions read after {} ms", a_.id, parts_.size(),
                    elapsed());
    }
    bool all_collected = std::all_of(nodes_.begin(), nodes_.end(), [](const auto& kv) {
      auto& n = kv.second;
      return n.dead || n.done.empty() || n.collect == worker_node::complete;
    });
    if (all_collected) {
      finalizing_ = true;
      finalize();
    }
  }

  // The next read to hand out: the first queued partition, and in a pushdown plan the queued
  // partitions adjacent to it, up to an even share of what is queued per free reader. A
  // pushdown partition is a whole GROUP BY statement in PostgreSQL: fewer, larger statements
  // cost less (planning, round trips, JIT compilation), while the partitions stay the unit
  // of retries. Pull reads stream one partition each (the nodes aggregate while they read).
  std::vector<part_state*> next_run() {
    std::vector<part_state*> run;
    auto it = std::find_if(parts_.begin(), parts_.end(),
                           [](const part_state& s) { return s.st == part_state::queued; });
    if (it == parts_.end())
      return run;
    run.push_back(&*it);
    if (plan_->mode != read_mode::pushdown)
      return run;
    size_t queued = 0, free = 0;
    for (auto& s : parts_)
      queued += s.st == part_state::queued;
    for (auto& [name, n] : nodes_)
      if (!n.dead && n.reads.size() < a_.cfg.readers)
        free += a_.cfg.readers - n.reads.size();
    auto share = (queued + std::max<size_t>(free, 1) - 1) / std::max<size_t>(free, 1);
    for (auto next = it + 1; next != parts_.end() && run.size() < share; ++next) {
      if (next->st != part_state::queued || next->p.lo != run.back()->p.hi)
        break;
      run.push_back(&*next);
    }
    return run;
  }

  void send_read(const std::string& node, const std::vector<part_state*>& run) {
    // A node whose partial was (being) collected gets more rows: collect everything again.
    if (nodes_[node].collect != worker_node::idle)
      restart_collect();
    auto token = ++tokens_;
    std::vector<uint32_t> ids;
    for (auto* s : run) {
      s->st = part_state::running;
      s->node = node;
      s->token = token;
      s->sent = steady::now();
      ids.push_back(s->p.id);
    }
    nodes_[node].reads.insert(token);
    std::vector<partition> parts;
    for (auto* s : run)
      parts.push_back(s->p);
    call(node, encode_read_call(*plan_, parts, static_cast<uint32_t>(a_.deadline.count())),
         [this, node, ids, token](std::string& bytes) { on_read(node, ids, token, bytes); },
         [this, node, ids, token](caf::error& err) { on_call_error(node, ids, token, err); });
  }

  template <class F, class G>
  void call(const std::string& node, std::string payload, F ok, G err) {
    auto cluster = self_->system().registry().get<caf::actor>(cluster_name);
    if (!cluster) {
      fail(make_error(report_errc::unavailable, "the node is stopping"));
      return;
    }
    self_->request(cluster, caf::infinite, call_atom::value, node, std::string("analytics"),
                   std::move(payload))
      .then(std::move(ok), std::move(err));
  }

  part_state* current(const std::string& node, uint32_t id, uint64_t token) {
    if (finished_ || finalizing_ || id >= parts_.size())
      return nullptr;
    auto& s = parts_[id];
    if (s.st != part_state::running || s.node != node || s.token != token)
      return nullptr; // stale: the partition was re-dispatched meanwhile
    return &s;
  }

  // The partitions of a read that are still waiting for it (none once it is stale).
  std::vector<part_state*> live(const std::string& node, const std::vector<uint32_t>& ids,
                                uint64_t token) {
    std::vector<part_state*> out;
    for (auto id : ids)
      if (auto* s = current(node, id, token))
        out.push_back(s);
    return out;
  }

  void on_read(const std::string& node, const std::vector<uint32_t>& ids, uint64_t token,
               const std::string& bytes) {
    auto run = live(node, ids, token);
    if (run.empty())
      return;
    auto& n = nodes_[node];
    n.reads.erase(token);
    auto retry_all = [&](const std::string& why) {
      for (auto* s : run) {
        retry(*s, why);
        if (finished_)
          return;
      }
      pump();
    };
    flat_reader rd{bytes};
    try {
      if (!rd.ok())
        throw kj::Exception(kj::Exception::Type::FAILED, __FILE__, __LINE__,
                            kj::str("malformed reply"));
      auto r = rd.get<rp::WorkerReply>();
      if (r.isDone()) {
        // Rows reached a node thought idle (its collect may have begun): collect it again.
        if (n.collect != worker_node::idle)
          restart_collect();
        for (auto* s : run) {
          s->st = part_state::done;
          n.done.insert(s->p.id);
          info_.done++;
        }
        info_.rows_read += r.getDone().getRowsRead();
        progress();
        pump();
        return;
      }
      if (r.isError()) {
        auto e = r.getError();
        auto code = report_errc_from_string(str(e.getCode()));
        auto msg = str(e.getMessage());
        if (code == report_errc::unavailable || code == report_errc::internal) {
          retry_all(node + ": " + msg);
          return;
        }
        if (code == report_errc::cancelled && finished_)
          return;
        fail(make_error(code, msg));
        return;
      }
      retry_all(node + ": unexpected reply");
    } catch (const kj::Exception& e) {
      retry_all(node + ": malformed reply: " + e.getDescription().cStr());
    }
  }

  // Every probe_after: ask each node with reads older than that which partitions it has.
  // A read it neither has nor had was lost on the way: send it again (the node answers a
  // duplicate from the same read, so nothing is read twice).
  void on_probe_tick() {
    if (finished_ || finalizing_)
      return;
    auto now = steady::now();
    std::set<std::string> ask;
    for (auto& s : parts_)
      if (s.st == part_state::running && now - s.sent >= probe_after && !nodes_[s.node].dead)
        ask.insert(s.node);
    for (auto& node : ask) {
      capnp::MallocMessageBuilder mb;
      mb.initRoot<rp::WorkerCall>().setProbe(text(a_.id));
      auto asked = now;
      call(node, message_bytes(mb),
           [this, node, asked](std::string& bytes) { on_known(node, asked, bytes); },
           [](caf::error&) {}); // a failing node shows up through its reads
    }
    self_->delayed_send(self_, probe_after, probe_atom::value);
  }

  void on_known(const std::string& node, steady::time_point asked, const std::string& bytes) {
    if (finished_ || finalizing_)
      return;
    std::set<uint32_t> merged, active;
    try {
      flat_reader rd{bytes};
      if (!rd.ok())
        return;
      auto r = rd.get<rp::WorkerReply>();
      if (!r.isKnown())
        return;
      for (auto id : r.getKnown().getMerged())
        merged.insert(id);
      for (auto id : r.getKnown().getActive())
        active.insert(id);
    } catch (const kj::Exception&) {
      return;
    }
    bool changed = false;
    std::set<uint64_t> touched;
    for (auto& s : parts_) {
      if (s.st != part_state::running || s.node != node || s.sent > asked - probe_after)
        continue;
      if (merged.count(s.p.id)) {
        // Read, but the answer was lost.
        s.st = part_state::done;
        touched.insert(s.token);
        nodes_[node].done.insert(s.p.id);
        info_.done++;
        changed = true;
      } else if (!active.count(s.p.id)) {
        spdlog::warn("report {}: the read of partition {} never reached {}; sending it again",
                     a_.id, s.p.id, node);
        touched.insert(s.token);
        retry(s, "the request to " + node + " was lost");
        changed = true;
      }
      if (finished_)
        return;
    }
    // A read is over once none of its partitions waits for it any more (part of a run may
    // still be read there: its reply is still to come).
    for (auto token : touched)
      if (std::none_of(parts_.begin(), parts_.end(), [&](const part_state& s) {
            return s.st == part_state::running && s.node == node && s.token == token;
          }))
        nodes_[node].reads.erase(token);
    if (changed) {
      progress();
      pump();
    }
  }

  void retry(part_state& s, const std::string& why) {
    s.st = part_state::queued;
    s.node.clear();
    ++info_.retries;
    if (++s.attempts >= a_.cfg.max_attempts)
      fail(make_error(report_errc::unavailable,
                      "partition " + std::to_string(s.p.id) + " failed "
                        + std::to_string(s.attempts) + " times; last: " + why));
    else
      spdlog::warn("report {}: partition {} re-queued ({})", a_.id, s.p.id, why);
  }

  // A node failed (down, unknown, stopping, no service): everything it read for us is gone.
  void node_failed(const std::string& node, const std::string& why) {
    if (finalizing_)
      return;
    auto& n = nodes_[node];
    if (n.dead)
      return;
    n.dead = true;
    n.reads.clear();
    n.done.clear();
    n.reset_collect();
    spdlog::warn("report {}: worker {} failed ({}); re-dispatching its partitions", a_.id, node,
                 why);
    for (auto& s : parts_) {
      if (s.node != node || s.st == part_state::queued)
        continue;
      if (s.st == part_state::done)
        info_.done--;
      retry(s, node + " failed: " + why);
      if (finished_)
        return;
    }
    restart_collect();
    progress();
  }

  // Partitions move to other nodes, whose partials change: whatever was collected so far is
  // stale (answers still in flight are recognised by their round and dropped).
  void restart_collect() {
    ++collect_round_;
    for (auto& [name, m] : nodes_) {
      m.reset_collect();
      m.collect = worker_node::idle;
    }
  }

  void on_call_error(const std::string& node, const std::vector<uint32_t>& ids, uint64_t token,
                     caf::error& err) {
    if (finished_)
      return;
    if (live(node, ids, token).empty() && nodes_[node].dead)
      return;
    node_failed(node, describe(err));
    pump();
  }

  // -- collect --

  void collect(const std::string& node) {
    capnp::MallocMessageBuilder mb;
    auto c = mb.initRoot<rp::WorkerCall>().initCollect();
    c.setReportId(text(a_.id));
    c.setOffset(nodes_[node].collected);
    c.setLimit(chunk_groups);
    auto round = collect_round_;
    call(node, message_bytes(mb),
         [this, node, round](std::string& bytes) { on_chunk(node, round, std::move(bytes)); },
         [this, node, round](caf::error& err) {
           if (finished_ || finalizing_ || round != collect_round_)
             return;
           node_failed(node, describe(err));
           pump();
         });
  }

  void on_chunk(const std::string& node, uint64_t round, std::string bytes) {
    auto& n = nodes_[node];
    if (finished_ || finalizing_ || round != collect_round_ || n.collect != worker_node::running)
      return;
    try {
      flat_reader rd{bytes};
      if (!rd.ok())
        throw kj::Exception(kj::Exception::Type::FAILED, __FILE__, __LINE__,
                            kj::str("malformed chunk"));
      auto r = rd.get<rp::WorkerReply>();
      if (!r.isChunk()) {
        auto msg = r.isError() ? str(r.getError().getMessage()) : std::string("not a chunk");
        node_failed(node, "collect: " + msg);
        pump();
        return;
      }
      auto c = r.getChunk();
      std::set<uint32_t> has;
      for (auto p : c.getPartitionIds())
        has.insert(p);
      if (has != n.done) {
        if (!std::includes(n.done.begin(), n.done.end(), has.begin(), has.end())) {
          // Partitions we never gave it (a restarted node?): trust none of it.
          node_failed(node, "its partial covers other partitions than it reported");
        } else {
          // A reader failed after reading these (its table went with it): read them again.
          for (auto id : n.done)
            if (!has.count(id) && id < parts_.size()) {
              info_.done--;
              retry(parts_[id], node + " lost the partition's rows");
              if (finished_)
                return;
            }
          n.done = has;
          restart_collect();
        }
        pump();
        return;
      }
      n.collected += c.getGroups();
      auto total = c.getTotalGroups();
      bool more = n.collected < total && c.getGroups() > 0;
      // Ask for the next chunk first: the node encodes and sends it while this one decodes
      // (and other nodes still sort or send theirs).
      if (more)
        collect(node);
      n.chunks.push_back(std::move(bytes));
      if (!n.run) {
        n.run.emplace(plan_->spec());
        // Room for the node's whole run, so the vectors do not grow by copying. Both counts
        // are the node's word, checked only by append_chunk: bounded by a few times what this
        // chunk's bytes could hold (a group takes two bytes at least) and by 4M groups.
        uint64_t could = std::min<uint64_t>(c.getGroups(), n.chunks.back().size() / 2);
        n.run->reserve(std::min<uint64_t>(
          {total, 4 * std::max<uint64_t>(could, 1), uint64_t{4} << 20}));
      }
      auto t0 = steady::now();
      if (auto ok = append_chunk(*n.run, n.chunks.back()); !ok) {
        node_failed(node, "collect: " + message_of(ok.error())); // drops the next chunk too
        pump();
        return;
      }
      spdlog::trace("report {}: chunk of {} groups ({} bytes) from {} at {} ms, decoded in {} us",
                    a_.id, c.getGroups(), n.chunks.back().size(), node, elapsed(),
                    std::chrono::duration_cast<std::chrono::microseconds>(steady::now() - t0)
                      .count());
      if (more)
        return;
      n.collect = worker_node::complete;
    } catch (const kj::Exception& e) {
      node_failed(node, std::string("collect: ") + e.getDescription().cStr());
    } catch (const std::bad_alloc&) {
      node_failed(node, "collect: out of memory");
    }
    pump();
  }

  // -- the answer --

  void finalize() {
    spdlog::debug("report {}: partials collected after {} ms", a_.id, elapsed());
    // Each node's chunks form one sorted run; the runs merge in one streaming pass and the
    // rows come out in key order. Keys view into the chunks, kept until the answer is built.
    auto spec = plan_->spec();
    std::vector<const sorted_partial*> ptrs;
    for (auto& [name, n] : nodes_)
      if (n.run && n.run->size() > 0)
        ptrs.push_back(&*n.run);
    auto total = merge_sorted(ptrs, spec);
    spdlog::debug("report {}: {} groups merged after {} ms", a_.id, total.size(), elapsed());
    auto cols = result_columns(*plan_);
    info_.status = rp::ReportStatus::DONE;
    info_.elapsed_ms = elapsed();
    if (total.size() <= a_.cfg.large_result_rows) {
      capnp::MallocMessageBuilder mb;
      auto b = mb.initRoot<rp::ReportResponse>();
      fill(b, info_);
      write_columns(b.initColumns(static_cast<unsigned>(cols.size())), cols);
      write_rows(b.initRows(static_cast<unsigned>(total.size())), total, 0);
      b.setTotalRows(total.size());
      release_chunks();
      finish(message_bytes(mb));
      return;
    }
    store_result(total, cols);
    release_chunks();
  }

  void release_chunks() {
    for (auto& [name, n] : nodes_)
      n.reset_collect();
  }

  // Large results: pages of `page_rows` rows, written to RocksDB (through the state store) in
  // one atomic batch under the report's path, then the answer names the reference. Every
  // page carries the columns, so a page-aligned fetch is served as stored.
  void store_result(const sorted_partial& total,
                    const std::vector<std::pair<std::string, std::string>>& cols) {
    std::map<std::string, std::string> puts;
    auto rows = total.size();
    std::vector<std::string> types;
    for (auto& c : cols)
      types.push_back(c.second);
    // Pages are independent: a helper thread encodes every other one (the reads are over, a
    // core is free by now).
    auto encode = [&](uint64_t first_page, uint64_t step) {
      std::vector<std::pair<std::string, std::string>> out;
      for (uint64_t from = first_page * page_rows; from < rows; from += step * page_rows) {
        auto n = std::min<uint64_t>(page_rows, rows - from);
        capnp::MallocMessageBuilder mb;
        auto page = mb.initRoot<rp::ResultPage>();
        write_columns(page.initColumns(static_cast<unsigned>(cols.size())), cols);
        page.setOffset(from);
        page.setTotalRows(rows);
        page_writer w{types};
        write_page(w, total, from, n);
        w.write(page);
        out.emplace_back(page_key(from / page_rows), message_bytes(mb));
      }
      return out;
    };
    try {
      auto odd = std::async(std::launch::async, encode, 1, 2);
      auto even = encode(0, 2);
      auto rest = odd.get();
      for (auto* part : {&even, &rest})
        for (auto& kv : *part)
          puts.emplace(std::move(kv));
    } catch (const kj::Exception& e) {
      fail(make_error(report_errc::internal,
                      std::string("cannot store the result: ") + e.getDescription().cStr()));
      return;
    } catch (const std::exception& e) {
      fail(make_error(report_errc::internal, std::string("cannot store the result: ") + e.what()));
      return;
    }
    {
      capnp::MallocMessageBuilder mb;
      auto meta = mb.initRoot<rp::ResultPage>();
      meta.setTotalRows(rows);
      write_columns(meta.initColumns(static_cast<unsigned>(cols.size())), cols);
      puts.emplace("meta", message_bytes(mb));
    }
    spdlog::debug("report {}: {} result pages encoded after {} ms", a_.id, puts.size() - 1,
                  elapsed());
    self_->request(a_.root, std::chrono::seconds{10}, whereis_atom::value,
                   std::string{store_path})
      .then(
        [this, puts = std::move(puts), rows, cols](caf::actor& store) mutable {
          self_->request(store, std::chrono::seconds{120}, persist_atom::value,
                         result_path(a_.id), std::move(puts), std::vector<std::string>{})
            .then(
              [this, rows, cols](caf::ok_atom) {
                if (finished_)
                  return;
                info_.elapsed_ms = elapsed();
                capnp::MallocMessageBuilder mb;
                auto b = mb.initRoot<rp::ReportResponse>();
                fill(b, info_);
                write_columns(b.initColumns(static_cast<unsigned>(cols.size())), cols);
                b.setResultRef(text(a_.id));
                b.setTotalRows(rows);
                finish(message_bytes(mb));
              },
              [this](caf::error& err) {
                fail(make_error(report_errc::internal,
                                "cannot store the result: " + describe(err)));
              });
        },
        [this](caf::error& err) {
          fail(make_error(report_errc::internal, "no state store: " + describe(err)));
        });
  }

  uint64_t elapsed() const {
    return static_cast<uint64_t>(std::chrono::duration_cast<std::chrono::milliseconds>(
                                   steady::now() - started_)
                                   .count());
  }

  void progress() {
    self_->send(a_.service, progress_atom::value, a_.id, info_.done, info_.partitions,
                info_.rows_read);
  }

  void fail(const caf::error& err) {
    if (finished_)
      return;
    auto re = to_report_error(err);
    spdlog::warn("report {} ({}) {}: {}", a_.id, a_.def.name,
                 to_string(static_cast<report_errc>(re.code())), message_of(re));
    capnp::MallocMessageBuilder mb;
    auto b = mb.initRoot<rp::ReportResponse>();
    set_error(info_, re);
    info_.elapsed_ms = elapsed();
    fill(b, info_);
    finish(message_bytes(mb));
  }

  void finish(std::string response) {
    if (finished_)
      return;
    finished_ = true;
    if (info_.status == rp::ReportStatus::DONE)
      spdlog::info("report {} ({}) done in {} ms: {} partitions, {} retries, mode {}", a_.id,
                   a_.def.name, info_.elapsed_ms, info_.partitions, info_.retries,
                   to_string(info_.mode));
    self_->send(a_.service, finished_atom::value, a_.id, std::move(response));
    // Every node we used drops its partial (and stops its readers if any still run).
    capnp::MallocMessageBuilder mb;
    mb.initRoot<rp::WorkerCall>().setRelease(text(a_.id));
    auto release = message_bytes(mb);
    auto cluster = self_->system().registry().get<caf::actor>(cluster_name);
    if (cluster)
      for (auto& [name, n] : nodes_) // dead ones too: a node marked dead may still run
        caf::anon_send(cluster, call_atom::value, name, std::string("analytics"), release);
    if (lease_)
      (void) lease_->query("ROLLBACK"); // ends the exported snapshot's transaction
    lease_ = pg_pool::lease{};
    self_->quit();
  }

  void on_deadline() {
    fail(make_error(report_errc::timeout, "the report did not finish within "
                                            + std::to_string(a_.deadline.count()) + " ms"));
  }

  void on_cancel() { fail(make_error(report_errc::cancelled, "cancelled by the caller")); }

private:
  caf::event_based_actor* self_;
  report_activity busy_;
  coord_args a_;
  steady::time_point started_;
  std::shared_ptr<report_plan> plan_;
  pg_pool::lease lease_;
  size_t wanted_ = 0;
  response_info info_;
  std::vector<part_state> parts_;
  std::map<std::string, worker_node> nodes_;
  uint64_t tokens_ = 0;
  uint64_t collect_round_ = 0;
  bool finalizing_ = false; // every partial is in: no event changes the answer any more
  bool read_logged_ = false;
  bool finished_ = false;
};

caf::behavior coordinator_impl(caf::event_based_actor* self, coord_args args) {
  auto c = std::make_shared<coordinator>(self, std::move(args));
  self->send(self, start_atom::value);
  return {
    [c](start_atom) { c->start(); },
    [c, self](members_atom) {
      auto cluster = self->system().registry().get<caf::actor>(cluster_name);
      if (!cluster) {
        c->fail(make_error(report_errc::unavailable, "the node is stopping"));
        return;
      }
      caf::actor me = caf::actor_cast<caf::actor>(self);
      protocols::admin_request req;
      req.command = protocols::admin_command::members;
      reply_sink sink{std::make_shared<std::function<void(protocols::admin_reply)>>(
        [me](protocols::admin_reply r) { caf::anon_send(me, std::move(r)); })};
      self->send(cluster, admin_atom::value, std::move(req), std::move(sink));
    },
    [c](protocols::admin_reply& r) { c->on_members(r); },
    [c](deadline_atom) { c->on_deadline(); },
    [c](probe_atom) { c->on_probe_tick(); },
    [c](cancel_atom) { c->on_cancel(); },
  };
}

// -- the service --

struct report_entry {
  caf::actor coordinator;
  response_info info;
  std::string final_response; // encoded ReportResponse once finished
  std::vector<bytes_sink> waiters;
  std::vector<bytes_sink> progress;
  steady::time_point finished_at;
  uint64_t stored_pages = 0;
};

struct pending_read {
  std::shared_ptr<read_job> job;
  caf::response_promise promise;
};

struct service_state {
  node_config cfg;
  child_context ctx;
  report_catalog catalog;
  std::shared_ptr<pg_pool> pool;      // readers' connections
  std::shared_ptr<pg_pool> plan_pool; // coordinators' connections (planning, snapshot)
  std::vector<caf::actor> idle;
  std::deque<pending_read> queue;
  std::map<std::string, std::shared_ptr<node_report>> partials;
  std::map<std::string, report_entry> reports;
  // Results stored by an earlier run of this service (before a node or actor restart): the
  // time they expire at and their page count. Their age was not stored, so each gets one
  // more `result_ttl` from the moment it is found.
  struct leftover {
    steady::time_point expires;
    uint64_t pages = 0;
  };
  std::map<std::string, leftover> leftovers;
  enum { not_yet, searching, adopted } adoption = not_yet; // the store searched for leftovers
  std::mt19937_64 rng{std::random_device{}()};
};

class service {
public:
  service(caf::event_based_actor* self, std::shared_ptr<service_state> st)
    : self_(self), st_(std::move(st)) {}

  // -- worker side --

  caf::result<std::string> on_worker_call(const std::string& payload) {
    flat_reader rd{payload};
    try {
      if (!rd.ok())
        return worker_error(make_error(report_errc::invalid_argument, "malformed worker call"));
      auto call = rd.get<rp::WorkerCall>();
      switch (call.which()) {
        case rp::WorkerCall::READ:
          return read(call.getRead());
        case rp::WorkerCall::COLLECT: {
          auto c = call.getCollect();
          auto i = st_->partials.find(str(c.getReportId()));
          if (i == st_->partials.end())
            return worker_error(make_error(report_errc::not_found,
                                           "no partial for report " + str(c.getReportId())));
          auto job = std::make_shared<read_job>();
          job->report = i->second;
          job->collect = true;
          job->offset = c.getOffset();
          job->limit = std::min(c.getLimit(), chunk_groups);
          return enqueue(std::move(job));
        }
        case rp::WorkerCall::PROBE:
          return probe(str(call.getProbe()));
        case rp::WorkerCall::RELEASE: {
          release(str(call.getRelease()));
          capnp::MallocMessageBuilder mb;
          mb.initRoot<rp::WorkerReply>().setReleased();
          return message_bytes(mb);
        }
      }
      return worker_error(make_error(report_errc::invalid_argument, "unknown worker call"));
    } catch (const kj::Exception& e) {
      return worker_error(make_error(report_errc::invalid_argument,
                                     std::string("malformed worker call: ")
                                       + e.getDescription().cStr()));
    }
  }

  caf::result<std::string> read(rp::ReadTask::Reader task) {
    auto p = task.getPartition();
    std::vector<partition> run{partition{p.getId(), p.getLo(), p.getHi()}};
    auto more = task.getMore();
    if (more.size() >= max_partitions)
      return worker_error(make_error(report_errc::invalid_argument, "too many partitions"));
    for (auto m : more)
      run.push_back(partition{m.getId(), m.getLo(), m.getHi()});
    if (!adjacent_run(run))
      return worker_error(make_error(report_errc::invalid_argument,
                                     "partitions of one read must be adjacent"));
    auto id = str(task.getReportId());
    auto& rep = st_->partials[id];
    if (!rep) {
      auto plan = read_plan(task);
      if (!plan) {
        st_->partials.erase(id);
        return worker_error(plan.error());
      }
      rep = std::make_shared<node_report>();
      rep->plan = std::make_shared<report_plan>(std::move(*plan));
      auto ms = std::max<uint32_t>(task.getDeadlineMs(), 1000);
      rep->expires = steady::now() + std::chrono::milliseconds{ms} + std::chrono::seconds{60};
    }
    // Partitions read here already need nothing; those another request queued or reads
    // now are waited for, never read twice; the rest make this request's job.
    auto wait = std::make_shared<read_wait>();
    wait->first = run.front().id;
    std::vector<partition> todo;
    {
      std::lock_guard<std::mutex> small{rep->small};
      for (auto& x : run) {
        if (rep->merged.count(x.id))
          continue;
        wait->left.insert(x.id);
        if (!rep->pending.count(x.id))
          todo.push_back(x);
      }
    }
    if (wait->left.empty())
      return done_reply(wait->first, 0);
    wait->promise = self_->make_response_promise();
    for (auto x : wait->left)
      rep->pending[x].push_back(wait);
    if (!todo.empty()) {
      auto job = std::make_shared<read_job>();
      job->report = rep;
      job->run = std::move(todo);
      st_->queue.push_back(pending_read{std::move(job), {}});
      dispatch();
    }
    return caf::delegated<std::string>{};
  }

  caf::result<std::string> probe(const std::string& id) {
    capnp::MallocMessageBuilder mb;
    auto k = mb.initRoot<rp::WorkerReply>().initKnown();
    auto i = st_->partials.find(id);
    if (i != st_->partials.end()) {
      auto& rep = *i->second;
      std::vector<uint32_t> merged;
      {
        std::lock_guard<std::mutex> small{rep.small};
        merged.assign(rep.merged.begin(), rep.merged.end());
      }
      auto m = k.initMerged(static_cast<unsigned>(merged.size()));
      for (unsigned j = 0; j < merged.size(); ++j)
        m.set(j, merged[j]);
      auto a = k.initActive(static_cast<unsigned>(rep.pending.size()));
      unsigned j = 0;
      for (auto& [part, waiting] : rep.pending)
        a.set(j++, part);
    }
    return message_bytes(mb);
  }

  caf::result<std::string> enqueue(std::shared_ptr<read_job> job) {
    auto promise = self_->make_response_promise();
    st_->queue.push_back(pending_read{std::move(job), promise});
    dispatch();
    return caf::delegated<std::string>{};
  }

  void dispatch() {
    while (!st_->idle.empty() && !st_->queue.empty()) {
      auto reader = st_->idle.back();
      st_->idle.pop_back();
      auto next = std::move(st_->queue.front());
      st_->queue.pop_front();
      auto promise = next.promise;
      auto rep = next.job->report;
      bool collect = next.job->collect;
      std::vector<uint32_t> ids;
      if (!collect)
        for (auto& x : next.job->run)
          ids.push_back(x.id);
      // A collect answers its one request; a read resolves its partitions for every request
      // waiting on them (its rows count once, with its first partition).
      auto answer = [rep, ids, collect, promise](const std::string& bytes) mutable {
        if (collect) {
          promise.deliver(bytes);
          return;
        }
        auto rows = done_rows(bytes);
        for (auto id : ids) {
          auto counted = rows;
          if (rows && id != ids.front())
            counted = 0;
          settle(*rep, id, bytes, counted);
        }
      };
      self_->request(reader, caf::infinite, read_atom::value, std::move(next.job))
        .then(
          [this, reader, answer](std::string& bytes) mutable {
            answer(bytes);
            st_->idle.push_back(reader);
            dispatch();
          },
          [answer](caf::error& err) mutable {
            // The reader died (its supervisor link takes the service down too; see start).
            answer(worker_error(make_error(report_errc::internal, describe(err))));
          });
    }
  }

  void release(const std::string& id) {
    auto i = st_->partials.find(id);
    if (i == st_->partials.end())
      return;
    auto rep = i->second;
    st_->partials.erase(i);
    rep->stop = true;
    // Queued reads of this report never start.
    auto cancelled = worker_error(make_error(report_errc::cancelled, "report released"));
    for (auto q = st_->queue.begin(); q != st_->queue.end();) {
      if (q->job->report == rep) {
        if (q->job->collect)
          q->promise.deliver(cancelled);
        else
          for (auto& x : q->job->run)
            settle(*rep, x.id, cancelled, std::nullopt);
        q = st_->queue.erase(q);
      } else {
        ++q;
      }
    }
    // Running statements are cancelled from a helper thread (PQcancel blocks briefly); the
    // report's small mutex keeps each connection from going back to the pool meanwhile.
    bool running;
    {
      std::lock_guard<std::mutex> small{rep->small};
      running = !rep->active.empty();
    }
    if (running)
      self_->spawn<caf::detached>([rep] {
        std::lock_guard<std::mutex> small{rep->small};
        for (auto* c : rep->active)
          c->cancel();
      });
  }

  // -- app side --

  void on_api(const std::string& bytes, bytes_sink reply, bytes_sink progress) {
    flat_reader rd{bytes, 16u << 20};
    try {
      if (!rd.ok()) {
        reply(error_response("", make_error(report_errc::invalid_argument, "malformed call"), 0,
                             st_->cfg.name));
        return;
      }
      auto call = rd.get<rp::ApiCall>();
      switch (call.which()) {
        case rp::ApiCall::GENERATE:
          submit(call.getGenerate(), std::move(reply), std::move(progress), true);
          return;
        case rp::ApiCall::SUBMIT:
          submit(call.getSubmit(), std::move(reply), std::move(progress), false);
          return;
        case rp::ApiCall::STATUS:
          status(str(call.getStatus()), std::move(reply));
          return;
        case rp::ApiCall::CANCEL:
          cancel(str(call.getCancel()), std::move(reply));
          return;
        case rp::ApiCall::FETCH:
          fetch(call.getFetch(), std::move(reply));
          return;
      }
      reply(error_response("", make_error(report_errc::invalid_argument, "unknown call"), 0,
                           st_->cfg.name));
    } catch (const kj::Exception& e) {
      reply(error_response("", make_error(report_errc::invalid_argument,
                                          std::string("malformed call: ")
                                            + e.getDescription().cStr()),
                           0, st_->cfg.name));
    }
  }

  std::string new_id() {
    char buf[17];
    std::snprintf(buf, sizeof(buf), "%016llx",
                  static_cast<unsigned long long>(st_->rng()));
    return st_->cfg.name + "-" + buf;
  }

  void submit(rp::ReportRequest::Reader req, bytes_sink reply, bytes_sink progress, bool wait) {
    auto trace = req.getTraceId() ? req.getTraceId() : st_->rng();
    auto name = str(req.getReportName());
    auto def = st_->catalog.find(name);
    if (!def) {
      reply(error_response("", def.error(), trace, st_->cfg.name));
      return;
    }
    report_params params;
    params.start = str(req.getStartDate());
    params.end = str(req.getEndDate());
    for (auto id : req.getUserIds())
      params.user_ids.push_back(id);
    for (auto f : req.getFilters())
      params.filters.emplace_back(str(f.getColumn()), str(f.getValue()));
    if (auto err = validate(*def, params)) {
      reply(error_response("", err, trace, st_->cfg.name));
      return;
    }
    size_t running = 0;
    for (auto& [id, e] : st_->reports)
      running += e.coordinator ? 1 : 0;
    if (running >= max_running_reports) {
      reply(error_response("", make_error(report_errc::unavailable,
                                          "node " + st_->cfg.name + " already runs "
                                            + std::to_string(running) + " reports; retry later"),
                           trace, st_->cfg.name));
      return;
    }
    coord_args a;
    a.id = new_id();
    a.def = std::move(*def);
    a.params = std::move(params);
    a.mode = from_wire(req.getMode());
    a.deadline = req.getDeadlineMs() ? std::chrono::milliseconds{req.getDeadlineMs()}
                                     : st_->cfg.analytics.default_deadline;
    a.partitions = std::min<size_t>(
      req.getPartitions() ? req.getPartitions() : st_->cfg.analytics.partitions, max_partitions);
    a.trace = trace;
    a.pool = st_->plan_pool;
    a.cfg = st_->cfg.analytics;
    a.node = st_->cfg.name;
    a.worker_threads = st_->cfg.worker_threads;
    a.service = caf::actor_cast<caf::actor>(self_);
    a.root = st_->ctx.root;
    auto id = a.id;
    spdlog::info("report {} ({}) submitted: {} .. {}, {} user ids, {} filters, mode {}, trace {:x}",
                 id, a.def.name, a.params.start, a.params.end, a.params.user_ids.size(),
                 a.params.filters.size(), to_string(a.mode), trace);
    auto& e = st_->reports[id];
    e.info.id = id;
    e.info.trace = trace;
    e.info.node = st_->cfg.name;
    e.info.status = rp::ReportStatus::RUNNING;
    if (progress)
      e.progress.push_back(std::move(progress));
    // Detached: planning queries block, and the final merge is CPU-heavy.
    e.coordinator = self_->spawn<caf::detached>(coordinator_impl, std::move(a));
    // A coordinator that dies without answering (an exception) must not leave callers hanging.
    self_->monitor(e.coordinator);
    if (wait)
      e.waiters.push_back(std::move(reply));
    else
      reply(response_bytes(e.info));
  }

  void on_progress(const std::string& id, uint32_t done, uint32_t total, uint64_t rows) {
    auto i = st_->reports.find(id);
    if (i == st_->reports.end())
      return;
    auto& e = i->second;
    e.info.done = done;
    e.info.partitions = total;
    e.info.rows_read = rows;
    if (e.progress.empty())
      return;
    capnp::MallocMessageBuilder mb;
    auto p = mb.initRoot<rp::Progress>();
    p.setReportId(text(id));
    p.setPartitionsDone(done);
    p.setPartitionsTotal(total);
    p.setRowsRead(rows);
    p.setStatus(rp::ReportStatus::RUNNING);
    auto bytes = message_bytes(mb);
    for (auto& s : e.progress)
      s(bytes);
  }

  void on_finished(const std::string& id, std::string response) {
    auto i = st_->reports.find(id);
    if (i == st_->reports.end())
      return;
    auto& e = i->second;
    e.coordinator = nullptr;
    e.finished_at = steady::now();
    try {
      flat_reader rd{response};
      auto r = rd.get<rp::ReportResponse>();
      e.info.status = r.getStatus();
      e.info.done = r.getPartitionsDone();
      e.info.partitions = r.getPartitions();
      e.info.rows_read = r.getRowsRead();
      if (r.hasResultRef())
        e.stored_pages = (r.getTotalRows() + page_rows - 1) / page_rows;
    } catch (const kj::Exception&) {
      e.info.status = rp::ReportStatus::FAILED;
    }
    for (auto& s : e.progress) {
      capnp::MallocMessageBuilder mb;
      auto p = mb.initRoot<rp::Progress>();
      p.setReportId(text(id));
      p.setPartitionsDone(e.info.done);
      p.setPartitionsTotal(e.info.partitions);
      p.setRowsRead(e.info.rows_read);
      p.setStatus(e.info.status);
      s(message_bytes(mb));
    }
    e.progress.clear();
    for (auto& w : e.waiters)
      w(response);
    e.waiters.clear();
    // Small results stay in memory for `status` until they expire; big ones are stored.
    e.final_response = std::move(response);
  }

  void status(const std::string& id, bytes_sink reply) {
    auto i = st_->reports.find(id);
    if (i == st_->reports.end()) {
      reply(error_response(id, make_error(report_errc::not_found,
                                          "no report \"" + id.substr(0, 128) + "\" on node "
                                            + st_->cfg.name + " (expired, or another node "
                                            "coordinates it)"),
                           0, st_->cfg.name));
      return;
    }
    auto& e = i->second;
    if (!e.final_response.empty())
      reply(e.final_response);
    else
      reply(response_bytes(e.info));
  }

  void cancel(const std::string& id, bytes_sink reply) {
    auto i = st_->reports.find(id);
    if (i == st_->reports.end()) {
      status(id, std::move(reply));
      return;
    }
    auto& e = i->second;
    if (e.coordinator) {
      // The answer is the final state, once the coordinator has stopped everything.
      e.waiters.push_back(std::move(reply));
      self_->send(e.coordinator, cancel_atom::value);
      return;
    }
    reply(e.final_response.empty() ? response_bytes(e.info) : e.final_response);
  }

  void fetch(rp::FetchRequest::Reader req, bytes_sink reply) {
    auto ref = str(req.getRef());
    auto offset = req.getOffset();
    uint64_t limit = req.getLimit() ? std::min(req.getLimit(), max_fetch) : default_fetch;
    auto fail = [reply](const std::string& code, const std::string& msg) {
      capnp::MallocMessageBuilder mb;
      auto p = mb.initRoot<rp::ResultPage>();
      p.setErrorCode(text(code));
      p.setError(text(msg));
      reply(message_bytes(mb));
    };
    bool plain = !ref.empty() && ref.size() < 128
                 && std::all_of(ref.begin(), ref.end(), [](char c) {
                      return std::isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '_';
                    });
    if (!plain) {
      fail("INVALID_ARGUMENT", "bad result reference");
      return;
    }
    self_->request(st_->ctx.root, std::chrono::seconds{10}, whereis_atom::value,
                   std::string{store_path})
      .then(
        [this, ref, offset, limit, reply, fail](caf::actor& store) {
          self_->request(store, std::chrono::seconds{10}, restore_atom::value, result_path(ref),
                         std::string{"meta"})
            .then(
              [this, store, ref, offset, limit, reply, fail](bool found, std::string& meta) {
                if (!found) {
                  fail("NOT_FOUND", "no stored result \"" + ref + "\" (unknown or expired)");
                  return;
                }
                fetch_pages(store, ref, offset, limit, std::move(meta), reply);
              },
              [fail](caf::error& err) { fail("INTERNAL", describe(err)); });
        },
        [fail](caf::error& err) { fail("INTERNAL", describe(err)); });
  }

  // Reads the pages covering [offset, offset + limit) one after another, then answers. A
  // request for exactly one stored page gets the page as stored (no copy of its rows).
  void fetch_pages(caf::actor store, std::string ref, uint64_t offset, uint64_t limit,
                   std::string meta, bytes_sink reply) {
    struct job {
      std::string meta;
      std::vector<std::string> pages;
      uint64_t first_page = 0;
      uint64_t last_page = 0;
    };
    auto j = std::make_shared<job>();
    j->meta = std::move(meta);
    uint64_t total = 0;
    try {
      flat_reader rd{j->meta};
      if (rd.ok())
        total = rd.get<rp::ResultPage>().getTotalRows();
    } catch (const kj::Exception&) {
    }
    auto end = std::min(total, offset + limit);
    bool whole_page = offset % page_rows == 0 && (end - offset == page_rows || end == total);
    auto answer = [j, offset, end, total, whole_page, reply] {
      if (whole_page && j->pages.size() == 1) {
        reply(std::move(j->pages.front()));
        return;
      }
      capnp::MallocMessageBuilder mb;
      auto out = mb.initRoot<rp::ResultPage>();
      flat_reader mr{j->meta};
      if (!mr.ok())
        throw std::runtime_error("its meta entry is not a Cap'n Proto message");
      out.setColumns(mr.get<rp::ResultPage>().getColumns());
      out.setOffset(offset);
      out.setTotalRows(total);
      std::vector<std::string> types;
      for (auto c : out.getColumns())
        types.emplace_back(c.getType().cStr());
      page_writer w{types};
      for (auto& bytes : j->pages) {
        flat_reader pr{bytes};
        if (!pr.ok())
          throw std::runtime_error("not a Cap'n Proto message");
        auto page = pr.get<rp::ResultPage>();
        page_view v{page};
        if (!v.ok())
          throw std::runtime_error(v.error());
        // The page's rows that fall into [offset, end).
        auto base = page.getOffset();
        auto from = std::max(base, offset) - base;
        auto to = std::min(base + v.rows(), end);
        if (to > base + from && !w.append(v, from, to - base))
          throw std::runtime_error("its columns differ from the result's");
      }
      w.write(out);
      reply(message_bytes(mb));
    };
    if (end <= offset) {
      j->last_page = 0;
      j->first_page = 1; // no page to read: answer at once (through the same checks)
    } else {
      j->first_page = offset / page_rows;
      j->last_page = (end - 1) / page_rows;
    }
    auto next = std::make_shared<std::function<void(uint64_t)>>();
    *next = [this, store, ref, j, next, answer, reply](uint64_t page) {
      if (page > j->last_page) {
        auto corrupt = [&](const std::string& why) {
          capnp::MallocMessageBuilder mb;
          auto p = mb.initRoot<rp::ResultPage>();
          p.setErrorCode("INTERNAL");
          p.setError(text("stored page is corrupt: " + why));
          reply(message_bytes(mb));
        };
        try {
          answer();
        } catch (const kj::Exception& e) {
          corrupt(e.getDescription().cStr());
        } catch (const std::exception& e) {
          corrupt(e.what());
        }
        *next = nullptr; // break the cycle
        return;
      }
      self_->request(store, std::chrono::seconds{10}, restore_atom::value, result_path(ref),
                     page_key(page))
        .then(
          [j, next, page](bool, std::string& bytes) {
            j->pages.push_back(std::move(bytes));
            if (*next)
              (*next)(page + 1);
          },
          [reply, next](caf::error& err) {
            capnp::MallocMessageBuilder mb;
            auto p = mb.initRoot<rp::ResultPage>();
            p.setErrorCode("INTERNAL");
            p.setError(text(describe(err)));
            reply(message_bytes(mb));
            *next = nullptr;
          });
    };
    (*next)(j->first_page);
  }

  void on_down(const caf::down_msg& dm) {
    for (auto& [id, e] : st_->reports) {
      if (e.coordinator && e.coordinator.address() == dm.source) {
        auto reason = dm.reason ? describe(dm.reason) : std::string("it stopped");
        spdlog::error("report {}: the coordinator died without an answer ({})", id, reason);
        on_finished(id, error_response(id, make_error(report_errc::internal,
                                                      "the report's coordinator failed: "
                                                        + reason),
                                       e.info.trace, st_->cfg.name));
        return;
      }
    }
  }

  // -- housekeeping --

  void on_tick() {
    auto now = steady::now();
    if (st_->adoption == service_state::not_yet) {
      st_->adoption = service_state::searching;
      adopt_stored_results();
    }
    for (auto i = st_->leftovers.begin(); i != st_->leftovers.end();) {
      if (now > i->second.expires) {
        drop_stored(i->first, i->second.pages);
        i = st_->leftovers.erase(i);
      } else {
        ++i;
      }
    }
    for (auto i = st_->partials.begin(); i != st_->partials.end();) {
      if (now > i->second->expires) {
        spdlog::warn("analytics: dropping the partial of report {} (its coordinator never "
                     "released it)", i->first);
        auto id = i->first;
        ++i;
        release(id);
      } else {
        ++i;
      }
    }
    auto ttl = st_->cfg.analytics.result_ttl;
    for (auto i = st_->reports.begin(); i != st_->reports.end();) {
      auto& e = i->second;
      if (!e.coordinator && !e.final_response.empty() && now - e.finished_at > ttl) {
        if (e.stored_pages > 0)
          drop_stored(i->first, e.stored_pages);
        i = st_->reports.erase(i);
      } else {
        ++i;
      }
    }
    self_->delayed_send(self_, std::chrono::seconds{10}, tick_atom::value);
  }

  // Finds the results an earlier run of this service stored and gives each one more
  // `result_ttl` (then on_tick drops them): without this they would stay on disk for good
  // once the node restarted.
  void adopt_stored_results() {
    auto parent = result_path("");
    self_->request(st_->ctx.root, std::chrono::seconds{10}, whereis_atom::value,
                   std::string{store_path})
      .then(
        [this, parent](caf::actor& store) {
          self_->request(store, std::chrono::seconds{60}, list_atom::value, parent)
            .then(
              [this, store, parent](std::vector<std::string>& paths) {
                st_->adoption = service_state::adopted;
                size_t found = 0;
                for (auto& path : paths) {
                  auto id = path.substr(parent.size());
                  if (st_->reports.count(id) || st_->leftovers.count(id))
                    continue; // stored by this run
                  ++found;
                  adopt(store, id);
                }
                if (found > 0)
                  spdlog::info("analytics: stored results from an earlier run: {} (they expire "
                               "in {} s)",
                               found, st_->cfg.analytics.result_ttl.count());
              },
              [this](caf::error& err) {
                st_->adoption = service_state::not_yet; // again at the next tick
                spdlog::warn("analytics: cannot list stored results: {}", describe(err));
              });
        },
        [this](caf::error& err) {
          st_->adoption = service_state::not_yet;
          spdlog::warn("analytics: no state store to list stored results: {}", describe(err));
        });
  }

  void adopt(const caf::actor& store, const std::string& id) {
    self_->request(store, std::chrono::seconds{60}, restore_atom::value, result_path(id),
                   std::string{"meta"})
      .then(
        [this, id](bool found, std::string& meta) {
          if (st_->reports.count(id))
            return;
          uint64_t pages = 0;
          if (found) {
            flat_reader rd{meta};
            try {
              if (rd.ok())
                pages = (rd.get<rp::ResultPage>().getTotalRows() + page_rows - 1) / page_rows;
            } catch (const kj::Exception&) {
            }
          }
          if (pages == 0)
            spdlog::warn("analytics: stored result {} has no readable meta; only its meta "
                         "and first page will be dropped", id);
          st_->leftovers[id] = {steady::now() + st_->cfg.analytics.result_ttl,
                                std::max<uint64_t>(pages, 1)};
        },
        [id](caf::error& err) {
          spdlog::warn("analytics: cannot read stored result {}: {}", id, describe(err));
        });
  }

  void drop_stored(const std::string& id, uint64_t pages) {
    self_->request(st_->ctx.root, std::chrono::seconds{10}, whereis_atom::value,
                   std::string{store_path})
      .then(
        [this, id, pages](caf::actor& store) {
          std::vector<std::string> keys{"meta"};
          for (uint64_t p = 0; p < pages; ++p)
            keys.push_back(page_key(p));
          self_->send(store, persist_atom::value, result_path(id),
                      std::map<std::string, std::string>{}, std::move(keys));
        },
        [](caf::error&) {});
  }

private:
  caf::event_based_actor* self_;
  std::shared_ptr<service_state> st_;
};

caf::behavior service_impl(caf::event_based_actor* self, child_context ctx, node_config cfg) {
  auto st = std::make_shared<service_state>();
  st->cfg = cfg;
  st->ctx = ctx;
  for (auto& r : cfg.reports) {
    auto def = parse_report(r);
    if (def)
      (void) st->catalog.add(std::move(*def));
    else
      spdlog::error("analytics: {}", message_of(def.error()));
  }
  auto dsn = cfg.analytics.dsn;
  if (dsn.empty())
    if (auto* env = std::getenv("WHARF_PG_DSN"))
      dsn = env;
  if (!dsn.empty()) {
    // Two pools, so coordinators (each holding a connection for its report's snapshot)
    // can never starve the readers their reports wait for.
    st->pool = pg_pool::make(dsn, cfg.analytics.readers);
    st->plan_pool = pg_pool::make(dsn, plan_connections);
  }
  else
    spdlog::warn("analytics: no database configured (analytics.dsn or WHARF_PG_DSN): reports "
                 "will answer UNAVAILABLE");
  report_activity::keep_for(cfg.analytics.keep_memory);
  for (size_t i = 0; i < cfg.analytics.readers; ++i)
    st->idle.push_back(self->spawn<caf::detached + caf::linked>(reader_impl, st->pool, i));
  auto s = std::make_shared<service>(self, st);
  self->set_down_handler([s](caf::down_msg& dm) { s->on_down(dm); });
  register_as(self->system(), analytics_name, caf::actor_cast<caf::actor>(self));
  self->send(self, tick_atom::value); // the first tick looks for results stored earlier
  spdlog::info("analytics: {} readers, reports: {}", cfg.analytics.readers, [&] {
    std::string out;
    for (auto& n : st->catalog.names())
      out += (out.empty() ? "" : ", ") + n;
    return out;
  }());
  return {
    [s](call_atom, const std::string& payload) { return s->on_worker_call(payload); },
    [s](api_atom, const std::string& bytes, bytes_sink& reply, bytes_sink& progress) {
      s->on_api(bytes, std::move(reply), std::move(progress));
    },
    [s](progress_atom, const std::string& id, uint32_t done, uint32_t total, uint64_t rows) {
      s->on_progress(id, done, total, rows);
    },
    [s](finished_atom, const std::string& id, std::string& response) {
      s->on_finished(id, std::move(response));
    },
    [s](tick_atom) { s->on_tick(); },
    [self](probe_atom) -> uint64_t { return self->mailbox().size(); },
  };
}

} // namespace

caf::error check_reports(const node_config& cfg) {
  for (auto& r : cfg.reports) {
    auto def = parse_report(r);
    if (!def)
      return make_error(runtime_errc::bad_config, message_of(def.error()));
  }
  return caf::none;
}

std::string encode_read_call(const report_plan& plan, const std::vector<partition>& run,
                             uint32_t deadline_ms) {
  capnp::MallocMessageBuilder mb;
  auto task = mb.initRoot<rp::WorkerCall>().initRead();
  write_plan(task, plan);
  auto set = [](auto b, const partition& p) {
    b.setId(p.id);
    b.setLo(p.lo);
    b.setHi(p.hi);
  };
  if (!run.empty())
    set(task.initPartition(), run.front());
  auto more = task.initMore(run.empty() ? 0 : static_cast<unsigned>(run.size() - 1));
  for (unsigned i = 0; i < more.size(); ++i)
    set(more[i], run[i + 1]);
  task.setDeadlineMs(deadline_ms);
  return message_bytes(mb);
}

child_spec analytics_child(const node_config& cfg) {
  return worker_child("analytics", restart_type::permanent, service_impl, cfg);
}

} // namespace wharf::actors
