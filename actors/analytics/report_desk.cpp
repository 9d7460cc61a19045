// The app side of the analytics service (service_state.hpp): the reports this node
// coordinates, from submission through the admission queue to their answers, and the calls
// apps make on them (status, cancel, fetch, list), forwarded to the node that coordinates a
// report when it is another one.
#include <algorithm>
#include <cstdio>

#include <capnp/message.h>
#include <caf/all.hpp>
#include <spdlog/spdlog.h>

#include "actors/analytics/atoms.hpp"
#include "actors/analytics/capnp_text.hpp"
#include "actors/analytics/plan_codec.hpp"
#include "actors/analytics/report_json.hpp"
#include "actors/analytics/service_state.hpp"
#include "protocols/analytics.capnp.h"
#include "protocols/capnp_io.hpp"
#include "runtime/core/logging.hpp"
#include "runtime/core/metrics.hpp"
#include "runtime/core/types.hpp"

namespace wharf::actors::analytics_detail {

using protocols::error_code;
using protocols::flat_reader;
using protocols::message_bytes;
using namespace wharf::runtime;
namespace rp = wharf::reports;

namespace {

constexpr size_t max_api_call = 16u << 20; // an ApiCall: user ids and filters at most
constexpr size_t max_listed_finished = 100; // finished reports `list` shows, newest first
constexpr size_t id_hex = 16;               // "<node>-" then this many hex digits

std::string progress_bytes(const std::string& id, const response_info& info) {
  capnp::MallocMessageBuilder mb;
  auto p = mb.initRoot<rp::Progress>();
  p.setReportId(text(id));
  p.setPartitionsDone(info.done);
  p.setPartitionsTotal(info.partitions);
  p.setRowsRead(info.rows_read);
  p.setStatus(info.status);
  return message_bytes(mb);
}

uint64_t ms_between(steady::time_point a, steady::time_point b) {
  return static_cast<uint64_t>(
    std::max<int64_t>(0, std::chrono::duration_cast<std::chrono::milliseconds>(b - a).count()));
}

} // namespace

std::string coordinator_of(const std::string& id) {
  if (id.size() < id_hex + 2 || id[id.size() - id_hex - 1] != '-')
    return {};
  for (size_t i = id.size() - id_hex; i < id.size(); ++i)
    if (!std::isxdigit(static_cast<unsigned char>(id[i])))
      return {};
  return id.substr(0, id.size() - id_hex - 1);
}

size_t service::running() const {
  size_t n = 0;
  for (auto& [id, e] : st_->reports)
    n += e.coordinator ? 1 : 0;
  return n;
}

void service::update_gauges() {
  st_->metrics.running->set(static_cast<int64_t>(running()));
  st_->metrics.queued->set(static_cast<int64_t>(st_->admission.size()));
}

void service::count_finished(rp::ReportStatus status) {
  auto i = st_->metrics.finished.find(actors::to_string(status));
  if (i != st_->metrics.finished.end())
    i->second->add();
}

std::string service::new_id() {
  char buf[id_hex + 1];
  std::snprintf(buf, sizeof(buf), "%016llx", static_cast<unsigned long long>(st_->rng()));
  return st_->node + "-" + buf;
}

caf::result<std::string> service::on_api(const std::string& bytes,
                                         std::shared_ptr<feed> progress) {
  flat_reader rd{bytes, max_api_call};
  try {
    if (!rd.ok())
      return error_response("", make_error(error_code::invalid_argument, "malformed call"), 0,
                            st_->node);
    rd.get<rp::ApiCall>(); // the root is readable
  } catch (const kj::Exception& e) {
    return error_response("",
                          make_error(error_code::invalid_argument,
                                     std::string("malformed call: ") + e.getDescription().cStr()),
                          0, st_->node);
  }
  // The promise takes the request's sender: from here every answer, errors too, goes
  // through it (a returned value would be dropped).
  auto promise = self_->make_response_promise<std::string>();
  auto reply = [promise](std::string answer) mutable { promise.deliver(std::move(answer)); };
  try {
    api(rd.get<rp::ApiCall>(), bytes, std::move(progress), false, reply);
  } catch (const kj::Exception& e) {
    reply(error_response("",
                         make_error(error_code::invalid_argument,
                                    std::string("malformed call: ") + e.getDescription().cStr()),
                         0, st_->node));
  }
  return promise;
}

void service::api(rp::ApiCall::Reader call, const std::string& bytes,
                  std::shared_ptr<feed> progress, bool forwarded, reply_fn reply) {
  // A report id names the node that coordinates it: calls on it go there.
  auto elsewhere = [&](const std::string& id) {
    auto node = coordinator_of(id);
    return !forwarded && !node.empty() && node != st_->node ? node : std::string{};
  };
  switch (call.which()) {
    case rp::ApiCall::GENERATE:
      return submit(call.getGenerate(), std::move(progress), true, std::move(reply));
    case rp::ApiCall::SUBMIT:
      return submit(call.getSubmit(), std::move(progress), false, std::move(reply));
    case rp::ApiCall::STATUS: {
      auto id = str(call.getStatus());
      if (auto node = elsewhere(id); !node.empty())
        return forward(node, bytes, false, std::move(reply));
      return status(id, std::move(reply));
    }
    case rp::ApiCall::CANCEL: {
      auto id = str(call.getCancel());
      if (auto node = elsewhere(id); !node.empty())
        return forward(node, bytes, false, std::move(reply));
      return cancel(id, std::move(reply));
    }
    case rp::ApiCall::FETCH: {
      if (auto node = elsewhere(str(call.getFetch().getRef())); !node.empty())
        return forward(node, bytes, true, std::move(reply));
      return results_.fetch(call.getFetch(), std::move(reply));
    }
    case rp::ApiCall::LIST: {
      // The list as a ReportList (the worker call wraps it in a WorkerReply).
      flat_reader rd{list()};
      capnp::MallocMessageBuilder mb;
      mb.setRoot(rd.get<rp::WorkerReply>().getList());
      return reply(message_bytes(mb));
    }
  }
  reply(error_response("", make_error(error_code::invalid_argument, "unknown call"), 0,
                       st_->node));
}

// Hands an app's call to the node that coordinates the report, through the cluster.
void service::forward(const std::string& node, const std::string& bytes, bool page,
                      reply_fn reply) {
  auto cluster = self_->system().registry().get<caf::actor>(cluster_name);
  auto failed = [this, page](const caf::error& err) {
    auto code = wire_code(err);
    // No such node: then there is no such report either.
    auto shown = code == error_code::unknown_node ? make_error(error_code::not_found, message_of(err))
                                                  : make_error(code, message_of(err));
    if (!page)
      return error_response("", shown, 0, st_->node);
    capnp::MallocMessageBuilder mb;
    auto p = mb.initRoot<rp::ResultPage>();
    p.setErrorCode(protocols::to_string(wire_code(shown)));
    p.setError(text(message_of(shown)));
    return message_bytes(mb);
  };
  if (!cluster)
    return reply(failed(make_error(error_code::unavailable, "the node is stopping")));
  capnp::MallocMessageBuilder mb;
  auto call = mb.initRoot<rp::WorkerCall>();
  call.setApi(kj::arrayPtr(reinterpret_cast<const kj::byte*>(bytes.data()), bytes.size()));
  self_->request(cluster, forward_timeout, call_atom::value, node, std::string(service_name),
                 message_bytes(mb))
    .then(
      [reply, failed, node](const std::string& answer) {
        try {
          flat_reader rd{answer};
          if (rd.ok()) {
            auto r = rd.get<rp::WorkerReply>();
            if (r.isApi()) {
              auto a = r.getApi();
              reply(std::string(reinterpret_cast<const char*>(a.begin()), a.size()));
              return;
            }
            if (r.isError()) {
              reply(failed(make_error(protocols::parse_error_code(str(r.getError().getCode())),
                                      str(r.getError().getMessage()))));
              return;
            }
          }
        } catch (const kj::Exception&) {
        }
        reply(failed(make_error(error_code::internal, "malformed answer from " + node)));
      },
      [reply, failed](caf::error& err) { reply(failed(err)); });
}

void service::submit(rp::ReportRequest::Reader req, std::shared_ptr<feed> progress, bool wait,
                     reply_fn reply) {
  auto trace = req.getTraceId() ? req.getTraceId() : st_->rng();
  auto name = str(req.getReportName());
  auto def = st_->catalog.find(name);
  if (!def)
    return reply(error_response("", def.error(), trace, st_->node));
  report_params params;
  params.start = str(req.getStartDate());
  params.end = str(req.getEndDate());
  for (auto id : req.getUserIds())
    params.user_ids.push_back(id);
  for (auto f : req.getFilters())
    params.filters.emplace_back(str(f.getColumn()), str(f.getValue()));
  if (auto err = validate(*def, params))
    return reply(error_response("", err, trace, st_->node));
  if (running() >= st_->cfg.max_running && st_->admission.size() >= st_->cfg.max_queued) {
    st_->metrics.rejected->add();
    return reply(error_response("",
                          make_error(error_code::resource_exhausted,
                                     "node " + st_->node + " runs " + std::to_string(running())
                                       + " reports and " + std::to_string(st_->admission.size())
                                       + " wait (analytics.max_running_reports, "
                                         "max_queued_reports); retry later"),
                          trace, st_->node));
  }
  coord_args a;
  a.id = new_id();
  a.def = std::move(*def);
  a.params = std::move(params);
  a.mode = from_wire(req.getMode());
  a.deadline = req.getDeadlineMs() ? std::chrono::milliseconds{req.getDeadlineMs()}
                                   : st_->cfg.default_deadline;
  a.partitions = std::min<size_t>(req.getPartitions() ? req.getPartitions() : st_->cfg.partitions,
                                  max_partitions);
  a.trace = trace;
  a.pool = st_->plan_pool;
  a.cfg = st_->cfg;
  a.node = st_->node;
  a.worker_threads = st_->worker_threads;
  a.service = caf::actor_cast<caf::actor>(self_);
  a.root = st_->ctx.root;
  auto id = a.id;
  log_context lc{st_->ctx.path, trace};
  spdlog::info("report {} ({}) submitted: {} .. {}, {} user ids, {} filters, mode {}, trace {:x}",
               id, a.def.name, a.params.start, a.params.end, a.params.user_ids.size(),
               a.params.filters.size(), to_string(a.mode), trace);
  auto& e = st_->reports[id];
  e.name = a.def.name;
  e.info.id = id;
  e.info.trace = trace;
  e.info.node = st_->node;
  e.info.mode = a.mode;
  e.submitted = steady::now();
  e.deadline = e.submitted + a.deadline;
  if (progress)
    e.progress.push_back(std::move(progress));
  e.queued = std::move(a);
  if (running() < st_->cfg.max_running) {
    start(e);
  } else {
    // Admission: it waits its turn, at most queue_wait and never past its deadline.
    e.info.status = rp::ReportStatus::PENDING;
    st_->admission.push_back(id);
    auto wait_for = std::min<steady::duration>(st_->cfg.queue_wait, e.deadline - e.submitted);
    self_->delayed_send(self_, wait_for, admit_atom::value, id);
    spdlog::info("report {} waits to start: {} running, {} queued", id, running(),
                 st_->admission.size());
    for (auto& f : e.progress)
      f->push(progress_bytes(id, e.info));
  }
  update_gauges();
  if (!wait)
    return reply(response_bytes(e.info));
  e.waiters.push_back(std::move(reply));
}

void service::start(report_entry& e) {
  auto a = std::move(*e.queued);
  e.queued.reset();
  // The deadline counts from submission: time spent queued is spent.
  a.queued = std::chrono::duration_cast<std::chrono::milliseconds>(steady::now() - e.submitted);
  a.deadline = std::max(std::chrono::milliseconds{1}, a.deadline - a.queued);
  e.info.status = rp::ReportStatus::RUNNING;
  // Detached: planning queries block, and the final merge is CPU-heavy.
  e.coordinator = self_->spawn<caf::detached>(coordinator_impl, std::move(a));
  // A coordinator that dies without answering (an exception) must not leave callers hanging.
  self_->monitor(e.coordinator);
}

void service::admit_next() {
  while (!st_->admission.empty() && running() < st_->cfg.max_running) {
    auto id = st_->admission.front();
    st_->admission.pop_front();
    auto i = st_->reports.find(id);
    if (i == st_->reports.end() || !i->second.queued)
      continue;
    auto waited = ms_between(i->second.submitted, steady::now());
    spdlog::info("report {} starts after {} ms in the admission queue", id, waited);
    start(i->second);
  }
  update_gauges();
}

void service::on_admit_timeout(const std::string& id) {
  auto i = st_->reports.find(id);
  if (i == st_->reports.end() || !i->second.queued)
    return; // it started (or ended) meanwhile
  auto& e = i->second;
  auto waited = ms_between(e.submitted, steady::now());
  if (steady::now() >= e.deadline)
    finish_queued(id, make_error(error_code::timeout,
                                 "the report did not start within its deadline ("
                                   + std::to_string(waited) + " ms in the admission queue)"));
  else
    finish_queued(id, make_error(error_code::resource_exhausted,
                                 "the report waited " + std::to_string(waited)
                                   + " ms to start (analytics.queue_wait_ms); retry later"));
}

// Ends a report that never started (cancelled, or waited too long).
void service::finish_queued(const std::string& id, const caf::error& err) {
  auto& e = st_->reports[id];
  e.queued.reset();
  st_->admission.erase(std::remove(st_->admission.begin(), st_->admission.end(), id),
                       st_->admission.end());
  auto info = e.info;
  set_error(info, err);
  info.elapsed_ms = ms_between(e.submitted, steady::now());
  spdlog::warn("report {} ({}) {}: {}", id, e.name, info.code, info.error);
  on_finished(id, response_bytes(info));
}

void service::on_progress(const std::string& id, uint32_t done, uint32_t total, uint64_t rows) {
  auto i = st_->reports.find(id);
  if (i == st_->reports.end())
    return;
  auto& e = i->second;
  e.info.done = done;
  e.info.partitions = total;
  e.info.rows_read = rows;
  if (e.progress.empty())
    return;
  auto bytes = progress_bytes(id, e.info);
  for (auto& f : e.progress)
    f->push(bytes); // a caller that falls behind loses older updates, never memory
}

void service::on_finished(const std::string& id, std::string response) {
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
    e.info.mode = from_wire(r.getModeUsed());
    e.info.code = str(r.getErrorCode());
    if (r.hasResultRef())
      e.stored_pages = (r.getTotalRows() + result_page_rows - 1) / result_page_rows;
  } catch (const kj::Exception&) {
    e.info.status = rp::ReportStatus::FAILED;
  }
  count_finished(e.info.status);
  for (auto& f : e.progress) {
    f->push(progress_bytes(id, e.info));
    f->close();
  }
  e.progress.clear();
  for (auto& w : e.waiters)
    w(response);
  e.waiters.clear();
  // Small results stay in memory for `status` until they expire; big ones are stored.
  e.final_response = std::move(response);
  admit_next();
}

void service::status(const std::string& id, reply_fn reply) {
  auto i = st_->reports.find(id);
  if (i == st_->reports.end())
    return reply(error_response(id,
                          make_error(error_code::not_found,
                                     "no report \"" + id.substr(0, 128) + "\" on node " + st_->node
                                       + " (expired, or never submitted)"),
                          0, st_->node));
  auto& e = i->second;
  if (!e.final_response.empty())
    return reply(e.final_response);
  auto info = e.info;
  info.elapsed_ms = ms_between(e.submitted, steady::now());
  reply(response_bytes(info));
}

void service::cancel(const std::string& id, reply_fn reply) {
  auto i = st_->reports.find(id);
  if (i == st_->reports.end())
    return status(id, std::move(reply));
  auto& e = i->second;
  if (e.queued) {
    finish_queued(id, make_error(error_code::cancelled, "cancelled by the caller"));
    return reply(e.final_response);
  }
  if (e.coordinator) {
    // The answer is the final state, once the coordinator has stopped everything.
    e.waiters.push_back(std::move(reply));
    self_->send(e.coordinator, cancel_atom::value);
    return;
  }
  reply(e.final_response.empty() ? response_bytes(e.info) : e.final_response);
}

std::string service::list() {
  std::vector<std::pair<const std::string*, const report_entry*>> live, done;
  for (auto& [id, e] : st_->reports)
    (e.final_response.empty() ? live : done).emplace_back(&id, &e);
  std::sort(live.begin(), live.end(), [](auto& a, auto& b) {
    return a.second->submitted < b.second->submitted;
  });
  std::sort(done.begin(), done.end(), [](auto& a, auto& b) {
    return a.second->finished_at > b.second->finished_at;
  });
  if (done.size() > max_listed_finished)
    done.resize(max_listed_finished);
  capnp::MallocMessageBuilder mb;
  auto w = mb.initRoot<rp::WorkerReply>().initList();
  w.setNode(text(st_->node));
  auto out = w.initReports(static_cast<unsigned>(live.size() + done.size()));
  unsigned k = 0;
  auto now = steady::now();
  for (auto* part : {&live, &done})
    for (auto& [id, e] : *part) {
      auto r = out[k++];
      r.setReportId(text(*id));
      r.setName(text(e->name));
      r.setStatus(e->info.status);
      r.setMode(to_wire(e->info.mode));
      r.setPartitions(e->info.partitions);
      r.setPartitionsDone(e->info.done);
      r.setRowsRead(e->info.rows_read);
      r.setElapsedMs(ms_between(e->submitted, e->final_response.empty() ? now : e->finished_at));
      r.setCoordinator(text(st_->node));
      r.setErrorCode(text(e->info.code));
    }
  return message_bytes(mb);
}

void service::on_down(const caf::down_msg& dm) {
  for (auto& [id, e] : st_->reports) {
    if (e.coordinator && e.coordinator.address() == dm.source) {
      auto reason = dm.reason ? describe(dm.reason) : std::string("it stopped");
      spdlog::error("report {}: the coordinator died without an answer ({})", id, reason);
      on_finished(id, error_response(id,
                                     make_error(error_code::internal,
                                                "the report's coordinator failed: " + reason),
                                     e.info.trace, st_->node));
      return;
    }
  }
}

void service::on_tick() {
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
  auto ttl = st_->cfg.result_ttl;
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
  self_->delayed_send(self_, tick_every, tick_atom::value);
}

} // namespace wharf::actors::analytics_detail
