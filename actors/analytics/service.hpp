#pragma once
/// The analytics service: one per node, at `services/analytics`, registered as `analytics`
/// (the module's name) so the front end and the cluster find it.
///
/// As a front end it takes app calls (`(api_atom, ApiCall bytes, std::shared_ptr<feed>)` ->
/// answer bytes): `generate` and `submit` admit a report (it starts at once while fewer than
/// `analytics.max_running_reports` run here, else it waits in a bounded queue and starts in
/// order), `status`/`cancel`/`fetch` act on a report — this node's, or forwarded to the node
/// its id names. As a worker it takes coordinator calls (`(call_atom, WorkerCall bytes)` from
/// any node through the cluster): `read` queues partitions for its reader pool, `collect`
/// pages through the node's merged partial, `release` drops it and cancels its readers,
/// `list` names the reports it coordinates, `api` is a forwarded app call.
///
/// Readers are detached actors (blocking libpq), `analytics.readers` of them, sharing the
/// node's connection pool. Coordinators are detached too (planning queries, the final merge).
/// See actors/analytics/README.md for the files along a report's path.

#include <vector>

#include <caf/error.hpp>

#include "actors/analytics/config.hpp"
#include "runtime/config/node_config.hpp"
#include "runtime/supervision/supervisor.hpp"

namespace wharf::actors {

/// The supervised child spec; reports come from `settings.reports` (checked at start: a bad
/// definition fails the node's start with a clear error). DSN: analytics.dsn, else
/// $WHARF_PG_DSN; without either the service answers UNAVAILABLE.
runtime::child_spec analytics_child(const runtime::node_config& node,
                                    const analytics_settings& settings);

/// Checks `[[reports]]` (for wharf-node's start-up); the error names the key.
[[nodiscard]] caf::error check_reports(const std::vector<report_config>& reports);

} // namespace wharf::actors
