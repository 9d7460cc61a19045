#pragma once
/// The analytics service (issue 3): one per node, at `services/analytics`, registered as
/// `analytics` so the RPC host and the cluster find it.
///
/// As a front end it takes app calls (`api_atom`, an encoded `ApiCall`): `generate` and
/// `submit` spawn a report coordinator, `status`/`cancel` act on it, `fetch` pages through
/// a stored result. As a worker it takes coordinator calls (`call_atom`, an encoded
/// `WorkerCall` from any node): `read` queues one partition for its reader pool, `collect`
/// pages through the node's merged partial, `release` drops it and cancels its readers.
///
/// Readers are detached actors (blocking libpq), `analytics.readers` of them, sharing the
/// node's connection pool. The coordinator is detached too (planning queries, the final
/// merge). See docs in actors/analytics/README.md.

#include <caf/error.hpp>

#include "runtime/config/node_config.hpp"
#include "runtime/supervision/supervisor.hpp"

namespace wharf::actors {

/// The supervised child spec; reports come from `cfg.reports` (checked at start: a bad
/// definition fails the node's start with a clear error). DSN: cfg.analytics.dsn, else
/// $WHARF_PG_DSN; without either the service answers UNAVAILABLE.
runtime::child_spec analytics_child(const runtime::node_config& cfg);

/// Checks the `[[reports]]` of a config (for wharf-node's start-up); the error names the key.
[[nodiscard]] caf::error check_reports(const runtime::node_config& cfg);

} // namespace wharf::actors
