#pragma once
/// The analytics service's actor state (internal to actors/analytics): the class the service
/// behaviour (service.cpp) dispatches to. Its two halves live in two files: the worker side
/// (service.cpp: partitions read here for any node's coordinator, readers, releases) and the
/// app side (report_desk.cpp: reports this node coordinates, the admission queue, status,
/// cancel, list, stored results, calls forwarded to the node that coordinates a report).
/// Every member runs on the service actor's thread.

#include <chrono>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <random>
#include <string>
#include <vector>

#include <caf/actor.hpp>
#include <caf/fwd.hpp>
#include <caf/response_promise.hpp>

#include "actors/analytics/config.hpp"
#include "actors/analytics/coordinator.hpp"
#include "actors/analytics/partials.hpp"
#include "actors/analytics/report_def.hpp"
#include "actors/analytics/response_codec.hpp"
#include "actors/analytics/result_store.hpp"
#include "runtime/rpc/feed.hpp"
#include "runtime/supervision/supervisor.hpp"

namespace wharf::runtime {
class metric;
class pg_pool;
} // namespace wharf::runtime

namespace wharf::actors::analytics_detail {

using steady = std::chrono::steady_clock;

/// Gets the encoded answer to an app's call, once.
using reply_fn = std::function<void(std::string)>;

/// A report this node coordinates: queued, running, or finished (kept `result_ttl`).
struct report_entry {
  std::string name;                     ///< the report's name
  std::optional<coord_args> queued;     ///< set while it waits in the admission queue
  caf::actor coordinator;               ///< set while it runs
  response_info info;
  std::string final_response;           ///< encoded ReportResponse once finished
  std::vector<reply_fn> waiters;        ///< `generate` and `cancel` callers
  std::vector<std::shared_ptr<runtime::feed>> progress;
  steady::time_point submitted;
  steady::time_point deadline;          ///< submitted + the report's deadline
  steady::time_point finished_at;
  uint64_t stored_pages = 0;
};

struct pending_read {
  std::shared_ptr<read_job> job;
  caf::response_promise promise;
};

/// The service's metrics (`/metrics`, `stats`).
struct service_metrics {
  runtime::metric* running = nullptr;  ///< reports_running
  runtime::metric* queued = nullptr;   ///< reports_queued
  runtime::metric* rejected = nullptr; ///< reports_rejected_total (queue full)
  std::map<std::string, runtime::metric*> finished; ///< reports_finished_total{status}
};

struct service_state {
  std::string node;                   ///< this node's name
  size_t worker_threads = 2;          ///< per node, for the default partition count
  analytics_config cfg;
  runtime::child_context ctx;
  report_catalog catalog;
  std::shared_ptr<runtime::pg_pool> pool;      ///< readers' connections
  std::shared_ptr<runtime::pg_pool> plan_pool; ///< coordinators' connections (one each)
  std::vector<caf::actor> idle;                ///< readers
  std::deque<pending_read> queue;              ///< reads and collects waiting for a reader
  std::map<std::string, std::shared_ptr<node_report>> partials;
  std::map<std::string, report_entry> reports;
  std::deque<std::string> admission;           ///< queued report ids, oldest first
  service_metrics metrics;
  size_t dropped_reads = 0;                    ///< by analytics.test_drop_reads
  std::mt19937_64 rng{std::random_device{}()};
};

class service {
public:
  service(caf::event_based_actor* self, std::shared_ptr<service_state> st);

  // -- worker side (service.cpp) --

  /// A coordinator's call (`WorkerCall`, from any node through the cluster).
  caf::result<std::string> on_worker_call(const std::string& payload);

  // -- app side (report_desk.cpp) --

  /// An app's call (`ApiCall`) from this node's front end; `progress` (may be null) gets the
  /// report's progress. Answers the encoded ReportResponse or ResultPage.
  caf::result<std::string> on_api(const std::string& bytes, std::shared_ptr<runtime::feed> progress);
  void on_progress(const std::string& id, uint32_t done, uint32_t total, uint64_t rows);
  void on_finished(const std::string& id, std::string response);
  void on_down(const caf::down_msg& dm);
  /// A queued report's wait may be over (its deadline or the queue's limit).
  void on_admit_timeout(const std::string& id);
  void on_tick();

private:
  // worker side
  caf::result<std::string> read(reports::ReadTask::Reader task);
  caf::result<std::string> probe(const std::string& id);
  caf::result<std::string> enqueue(std::shared_ptr<read_job> job);
  void dispatch();
  void release(const std::string& id);
  // app side
  void api(reports::ApiCall::Reader call, const std::string& bytes,
           std::shared_ptr<runtime::feed> progress, bool forwarded, reply_fn reply);
  void submit(reports::ReportRequest::Reader req, std::shared_ptr<runtime::feed> progress,
              bool wait, reply_fn reply);
  void start(report_entry& e);
  void admit_next();
  void status(const std::string& id, reply_fn reply);
  void cancel(const std::string& id, reply_fn reply);
  void forward(const std::string& node, const std::string& bytes, bool page, reply_fn reply);
  std::string list();
  void finish_queued(const std::string& id, const caf::error& err);
  void count_finished(reports::ReportStatus status);
  void update_gauges();
  std::string new_id();
  size_t running() const;

  caf::event_based_actor* self_;
  std::shared_ptr<service_state> st_;
  result_store results_;
};

/// The node a report id names ("n1-0123456789abcdef" -> "n1"), or "" when it is not one.
std::string coordinator_of(const std::string& report_id);

} // namespace wharf::actors::analytics_detail
