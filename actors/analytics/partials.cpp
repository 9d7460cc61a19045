#include "actors/analytics/partials.hpp"

#include <algorithm>

#include <capnp/message.h>
#include <caf/all.hpp>
#include <spdlog/spdlog.h>

#include "actors/analytics/atoms.hpp"
#include "actors/analytics/capnp_text.hpp"
#include "actors/analytics/partition_reader.hpp"
#include "protocols/analytics.capnp.h"
#include "protocols/capnp_io.hpp"
#include "runtime/core/types.hpp"
#include "runtime/pg/pg_connection.hpp"

namespace wharf::actors::analytics_detail {

using protocols::flat_reader;
using protocols::message_bytes;
using namespace wharf::runtime;
namespace rp = wharf::reports;
using steady = std::chrono::steady_clock;

std::string worker_error(const caf::error& err) {
  capnp::MallocMessageBuilder mb;
  auto e = mb.initRoot<rp::WorkerReply>().initError();
  auto re = to_report_error(err);
  e.setCode(to_string(static_cast<protocols::error_code>(re.code())));
  auto msg = message_of(re);
  e.setMessage(text(msg));
  e.setSqlstate(text(runtime::sqlstate_of(re)));
  return message_bytes(mb);
}

std::string done_reply(uint32_t id, uint64_t rows) {
  capnp::MallocMessageBuilder mb;
  auto d = mb.initRoot<rp::WorkerReply>().initDone();
  d.setPartitionId(id);
  d.setRowsRead(rows);
  return message_bytes(mb);
}

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

namespace {

std::string run_read(read_job& job, pg_pool& pool, size_t r) {
  auto& rep = *job.report;
  if (job.run.empty())
    return worker_error(runtime::make_error(protocols::error_code::internal, "a read of no partition"));
  auto first = job.run.front().id;
  agg_table* table = nullptr; // only this reader touches it while the read runs
  {
    std::lock_guard<std::mutex> guard{rep.mtx};
    if (rep.stop)
      return worker_error(runtime::make_error(protocols::error_code::cancelled, "report released"));
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
    return give_up(runtime::make_error(protocols::error_code::unavailable,
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
      rows = runtime::make_error(protocols::error_code::cancelled, "report released");
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
    return worker_error(runtime::make_error(protocols::error_code::cancelled, "report released"));
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
    return worker_error(runtime::make_error(protocols::error_code::internal, "reads still running"));
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

} // namespace

caf::behavior reader_impl(caf::event_based_actor*, std::shared_ptr<pg_pool> pool,
                          size_t index) {
  return {
    [pool, index](read_atom, std::shared_ptr<read_job>& job) -> std::string {
      if (job->collect)
        return run_collect(*job);
      if (!pool)
        return worker_error(runtime::make_error(protocols::error_code::unavailable,
                                       "no database configured on this node (analytics.dsn "
                                       "or WHARF_PG_DSN)"));
      return run_read(*job, *pool, index);
    },
  };
}

} // namespace wharf::actors::analytics_detail
