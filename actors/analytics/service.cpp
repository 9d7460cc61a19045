#include "actors/analytics/service.hpp"

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <memory>
#include <mutex>

#include <capnp/message.h>
#include <caf/all.hpp>
#include <spdlog/spdlog.h>

#include "actors/analytics/atoms.hpp"
#include "actors/analytics/capnp_text.hpp"
#include "actors/analytics/partition_reader.hpp"
#include "actors/analytics/plan_codec.hpp"
#include "actors/analytics/report_memory.hpp"
#include "actors/analytics/service_state.hpp"
#include "protocols/analytics.capnp.h"
#include "protocols/capnp_io.hpp"
#include "runtime/core/logging.hpp"
#include "runtime/core/metrics.hpp"
#include "runtime/core/types.hpp"
#include "runtime/pg/pg_connection.hpp"

// The worker side of the analytics service (partitions read here for any node's report
// coordinator) and the service's behaviour; the app side is in report_desk.cpp.

namespace wharf::actors {

using protocols::flat_reader;
using protocols::message_bytes;
using namespace wharf::runtime;
namespace rp = wharf::reports;
using namespace analytics_detail;

namespace analytics_detail {

service::service(caf::event_based_actor* self, std::shared_ptr<service_state> st)
  : self_(self), st_(std::move(st)),
    results_(self, st_->ctx.root, st_->cfg.result_ttl,
             [this](const std::string& id) { return st_->reports.count(id) > 0; }) {}


caf::result<std::string> service::on_worker_call(const std::string& payload) {
  flat_reader rd{payload};
  try {
    if (!rd.ok())
      return worker_error(runtime::make_error(protocols::error_code::invalid_argument, "malformed worker call"));
    auto call = rd.get<rp::WorkerCall>();
    switch (call.which()) {
      case rp::WorkerCall::LIST:
        return list();
      case rp::WorkerCall::API: {
        // From the node an app asked, for a report coordinated here: answered in kind.
        auto bytes = call.getApi();
        std::string api_bytes(reinterpret_cast<const char*>(bytes.begin()), bytes.size());
        flat_reader inner{api_bytes};
        if (!inner.ok())
          return worker_error(runtime::make_error(protocols::error_code::invalid_argument,
                                                  "malformed forwarded call"));
        auto promise = self_->make_response_promise<std::string>();
        try {
          api(inner.get<rp::ApiCall>(), api_bytes, nullptr, true, [promise](std::string a) mutable {
            capnp::MallocMessageBuilder mb;
            mb.initRoot<rp::WorkerReply>().setApi(
              kj::arrayPtr(reinterpret_cast<const kj::byte*>(a.data()), a.size()));
            promise.deliver(message_bytes(mb));
          });
        } catch (const kj::Exception& e) { // the promise has the sender: answer through it
          promise.deliver(worker_error(runtime::make_error(
            protocols::error_code::invalid_argument,
            std::string("malformed forwarded call: ") + e.getDescription().cStr())));
        }
        return promise;
      }
      case rp::WorkerCall::READ:
        return read(call.getRead());
      case rp::WorkerCall::COLLECT: {
        auto c = call.getCollect();
        auto i = st_->partials.find(str(c.getReportId()));
        if (i == st_->partials.end())
          return worker_error(runtime::make_error(protocols::error_code::not_found,
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
    return worker_error(runtime::make_error(protocols::error_code::invalid_argument, "unknown worker call"));
  } catch (const kj::Exception& e) {
    return worker_error(runtime::make_error(protocols::error_code::invalid_argument,
                                   std::string("malformed worker call: ")
                                     + e.getDescription().cStr()));
  }
}

caf::result<std::string> service::read(rp::ReadTask::Reader task) {
  if (st_->dropped_reads < st_->cfg.test_drop_reads) {
    // Fault injection: as if the call was lost on its way; the caller never hears back.
    ++st_->dropped_reads;
    spdlog::warn("analytics: test_drop_reads: dropping read call {} of {} (report {})",
                 st_->dropped_reads, st_->cfg.test_drop_reads, str(task.getReportId()));
    return caf::delegated<std::string>{}; // no promise is taken: no answer ever goes back
  }
  auto p = task.getPartition();
  std::vector<partition> run{partition{p.getId(), p.getLo(), p.getHi()}};
  auto more = task.getMore();
  if (more.size() >= max_partitions)
    return worker_error(runtime::make_error(protocols::error_code::invalid_argument, "too many partitions"));
  for (auto m : more)
    run.push_back(partition{m.getId(), m.getLo(), m.getHi()});
  if (!adjacent_run(run))
    return worker_error(runtime::make_error(protocols::error_code::invalid_argument,
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
    rep->expires = steady::now() + std::chrono::milliseconds{ms} + partial_grace;
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

caf::result<std::string> service::probe(const std::string& id) {
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

caf::result<std::string> service::enqueue(std::shared_ptr<read_job> job) {
  auto promise = self_->make_response_promise();
  st_->queue.push_back(pending_read{std::move(job), promise});
  dispatch();
  return caf::delegated<std::string>{};
}

void service::dispatch() {
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
          answer(worker_error(runtime::make_error(protocols::error_code::internal, describe(err))));
        });
  }
}

void service::release(const std::string& id) {
  auto i = st_->partials.find(id);
  if (i == st_->partials.end())
    return;
  auto rep = i->second;
  st_->partials.erase(i);
  rep->stop = true;
  // Queued reads of this report never start.
  auto cancelled = worker_error(runtime::make_error(protocols::error_code::cancelled, "report released"));
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


} // namespace analytics_detail

namespace {

caf::behavior service_impl(caf::event_based_actor* self, child_context ctx, std::string node,
                           size_t worker_threads, analytics_settings settings) {
  auto st = std::make_shared<service_state>();
  st->node = std::move(node);
  st->worker_threads = worker_threads;
  st->cfg = settings.analytics;
  st->ctx = ctx;
  for (auto& r : settings.reports) {
    auto def = parse_report(r);
    if (def)
      (void) st->catalog.add(std::move(*def));
    else
      spdlog::error("analytics: {}", message_of(def.error()));
  }
  auto dsn = st->cfg.dsn;
  if (dsn.empty())
    if (auto* env = std::getenv("WHARF_PG_DSN"))
      dsn = env;
  if (!dsn.empty()) {
    // Two pools, so coordinators (each holding a connection for its report's snapshot)
    // can never starve the readers their reports wait for.
    st->pool = pg_pool::make(dsn, st->cfg.readers);
    st->plan_pool = pg_pool::make(dsn, st->cfg.max_running);
  } else {
    spdlog::warn("analytics: no database configured (analytics.dsn or WHARF_PG_DSN): reports "
                 "will answer UNAVAILABLE");
  }
  if (!ctx.metrics) // a service spawned on its own (tests) counts into its own metrics
    st->ctx.metrics = std::make_shared<node_metrics>();
  auto& m = *st->ctx.metrics;
  st->metrics.running = &m.get("reports_running", metric_kind::gauge,
                               "reports this node coordinates now");
  st->metrics.queued = &m.get("reports_queued", metric_kind::gauge,
                              "reports waiting in this node's admission queue");
  st->metrics.rejected = &m.get("reports_rejected_total", metric_kind::counter,
                                "reports refused because the admission queue was full");
  for (auto status : {"done", "failed", "timeout", "cancelled"})
    st->metrics.finished[status] = &m.get("reports_finished_total", metric_kind::counter,
                                          "reports this node coordinated, by how they ended",
                                          {{"status", status}});
  report_activity::keep_for(st->cfg.keep_memory);
  for (size_t i = 0; i < st->cfg.readers; ++i)
    st->idle.push_back(self->spawn<caf::detached + caf::linked>(reader_impl, st->pool, i));
  auto s = std::make_shared<service>(self, st);
  self->set_down_handler([s](caf::down_msg& dm) { s->on_down(dm); });
  register_as(self->system(), caf::atom(service_name), caf::actor_cast<caf::actor>(self));
  self->send(self, tick_atom::value); // the first tick looks for results stored earlier
  spdlog::info("analytics: {} readers, at most {} reports at once ({} may wait), reports: {}",
               st->cfg.readers, st->cfg.max_running, st->cfg.max_queued, [&] {
                 std::string out;
                 for (auto& n : st->catalog.names())
                   out += (out.empty() ? "" : ", ") + n;
                 return out;
               }());
  // Every line a handler logs names this actor (JSON logs).
  auto path = std::make_shared<const std::string>(ctx.path);
  return {
    [s, path](call_atom, const std::string& payload) {
      log_context lc{*path, 0};
      return s->on_worker_call(payload);
    },
    [s, path](api_atom, const std::string& bytes, std::shared_ptr<feed>& progress) {
      log_context lc{*path, 0};
      return s->on_api(bytes, std::move(progress));
    },
    [s](progress_atom, const std::string& id, uint32_t done, uint32_t total, uint64_t rows) {
      s->on_progress(id, done, total, rows);
    },
    [s, path](finished_atom, const std::string& id, std::string& response) {
      log_context lc{*path, 0};
      s->on_finished(id, std::move(response));
    },
    [s, path](admit_atom, const std::string& id) {
      log_context lc{*path, 0};
      s->on_admit_timeout(id);
    },
    [s, path](tick_atom) {
      log_context lc{*path, 0};
      s->on_tick();
    },
    [self](probe_atom) -> uint64_t { return self->mailbox().size(); },
  };
}

} // namespace

caf::error check_reports(const std::vector<report_config>& reports) {
  for (auto& r : reports) {
    auto def = parse_report(r);
    if (!def)
      return make_error(runtime_errc::bad_config, message_of(def.error()));
  }
  return caf::none;
}

child_spec analytics_child(const node_config& node, const analytics_settings& settings) {
  return worker_child(service_name, restart_type::permanent, service_impl, node.name,
                      node.worker_threads, settings);
}

} // namespace wharf::actors
