#pragma once
/// A report plan on the wire: `report_plan` <-> `ReadTask` (analytics.capnp), the read
/// mode's wire enum, and the `WorkerCall` a coordinator sends to have a node read partitions.
/// A plan from a peer is trusted with the plan, not with SQL: `read_plan` checks it like a
/// request (`validate`), its session settings by name and its snapshot id by shape. Pure
/// functions, any thread.

#include <cstdint>
#include <string>
#include <vector>

#include <caf/expected.hpp>

#include "actors/analytics/plan.hpp"
#include "protocols/analytics.capnp.h"

namespace wharf::actors {

/// A coordinator's `WorkerCall` that has a node read `run` (adjacent partitions, one
/// statement in pushdown) of `plan`, as the cluster carries it to `call_atom`.
std::string encode_read_call(const report_plan& plan, const std::vector<partition>& run,
                             uint32_t deadline_ms);

namespace analytics_detail {

namespace rp = wharf::reports;

/// The wire form of a read mode, and back (anything unknown is `automatic`).
rp::ReadMode to_wire(read_mode m);
read_mode from_wire(rp::ReadMode m);

/// Writes `p` into a ReadTask (the partitions are the caller's).
void write_plan(rp::ReadTask::Builder b, const report_plan& p);

/// The plan of a peer's ReadTask. Errors: INVALID_ARGUMENT (unknown aggregate, inconsistent
/// definition, malformed snapshot id, a session setting not allowed, or what `validate`
/// refuses).
[[nodiscard]] caf::expected<report_plan> read_plan(rp::ReadTask::Reader r);

} // namespace analytics_detail

} // namespace wharf::actors
