#include "actors/analytics/service.hpp"

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <deque>
#include <map>
#include <memory>
#include <mutex>
#include <random>
#include <vector>

#include <capnp/message.h>
#include <caf/all.hpp>
#include <spdlog/spdlog.h>

#include "actors/analytics/atoms.hpp"
#include "actors/analytics/capnp_text.hpp"
#include "actors/analytics/coordinator.hpp"
#include "actors/analytics/partials.hpp"
#include "actors/analytics/partition_reader.hpp"
#include "actors/analytics/plan_codec.hpp"
#include "actors/analytics/report_def.hpp"
#include "actors/analytics/report_memory.hpp"
#include "actors/analytics/response_codec.hpp"
#include "actors/analytics/result_store.hpp"
#include "protocols/analytics.capnp.h"
#include "protocols/capnp_io.hpp"
#include "runtime/core/types.hpp"
#include "runtime/pg/pg_connection.hpp"

namespace wharf::actors {

using protocols::flat_reader;
using protocols::message_bytes;
using namespace wharf::runtime;
namespace rp = wharf::reports;
using steady = std::chrono::steady_clock;
using namespace analytics_detail;

namespace {

constexpr size_t max_running_reports = 32;    // coordinated by one node at a time
constexpr size_t plan_connections = 8;        // coordinators beyond wait for a connection

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
  std::mt19937_64 rng{std::random_device{}()};
};

class service {
public:
  service(caf::event_based_actor* self, std::shared_ptr<service_state> st)
    : self_(self), st_(std::move(st)),
      results_(self, st_->ctx.root, st_->cfg.analytics.result_ttl,
               [this](const std::string& id) { return st_->reports.count(id) > 0; }) {}

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
          results_.fetch(call.getFetch(), std::move(reply));
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
        e.stored_pages =
          (r.getTotalRows() + result_store::page_rows - 1) / result_store::page_rows;
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
    results_.adopt_leftovers();
    results_.drop_expired(now);
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
          results_.drop(i->first, e.stored_pages);
        i = st_->reports.erase(i);
      } else {
        ++i;
      }
    }
    self_->delayed_send(self_, std::chrono::seconds{10}, tick_atom::value);
  }

private:
  caf::event_based_actor* self_;
  std::shared_ptr<service_state> st_;
  result_store results_;
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

child_spec analytics_child(const node_config& cfg) {
  return worker_child("analytics", restart_type::permanent, service_impl, cfg);
}

} // namespace wharf::actors
