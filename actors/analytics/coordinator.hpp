#pragma once
/// The coordinator of one report (internal to actors/analytics): plans the report, hands its
/// partitions to the worker nodes' analytics services (`call_atom` through the cluster),
/// retries what fails or goes missing, collects the nodes' partials as chunks while others
/// still read, merges them and answers — inline for small results, stored for large ones
/// (result_store.hpp).
///
/// A detached actor (planning queries block, the final merge is CPU-heavy) that the service
/// spawns per report; it sends the service `progress_atom` updates and one `finished_atom`
/// with the encoded `ReportResponse`, answers `cancel_atom`, and quits once it has answered.

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>

#include <caf/actor.hpp>
#include <caf/behavior.hpp>
#include <caf/fwd.hpp>

#include "actors/analytics/plan.hpp"
#include "actors/analytics/report_def.hpp"
#include "actors/analytics/config.hpp"

namespace wharf::runtime {
class pg_pool;
} // namespace wharf::runtime

namespace wharf::actors::analytics_detail {

/// What a coordinator is spawned with.
struct coord_args {
  std::string id;
  report_def def;
  report_params params;
  read_mode mode = read_mode::automatic;
  std::chrono::milliseconds deadline{0}; ///< left when it starts (see `queued`)
  std::chrono::milliseconds queued{0};   ///< spent in the admission queue before it started
  size_t partitions = 0;
  uint64_t trace = 0;
  std::shared_ptr<runtime::pg_pool> pool;
  analytics_config cfg;
  std::string node;
  size_t worker_threads = 2;
  caf::actor service;
  caf::actor root;
};

/// The coordinator's behaviour (spawn it detached).
caf::behavior coordinator_impl(caf::event_based_actor* self, coord_args args);

} // namespace wharf::actors::analytics_detail
