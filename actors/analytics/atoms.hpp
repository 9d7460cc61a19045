#pragma once
/// The analytics service's internal messages (internal to actors/analytics): the atoms its
/// actors — the service, report coordinators and partition readers — send each other, and
/// the limits both ends of those messages check. The runtime's atoms (`call_atom`,
/// `api_atom`, `probe_atom`, `tick_atom`, ...) come from runtime/core/types.hpp.

#include <cstddef>
#include <cstdint>

#include <caf/atom.hpp>

namespace wharf::actors::analytics_detail {

using read_atom = caf::atom_constant<caf::atom("read")>;
using start_atom = caf::atom_constant<caf::atom("start")>;
using progress_atom = caf::atom_constant<caf::atom("progress")>;
using finished_atom = caf::atom_constant<caf::atom("finished")>;
using deadline_atom = caf::atom_constant<caf::atom("deadline")>;
using cancel_atom = caf::atom_constant<caf::atom("cancel")>;
using members_atom = caf::atom_constant<caf::atom("members")>;

constexpr uint32_t chunk_groups = 300000;     // groups per collect round trip (<= ~16 MB)
constexpr size_t max_partitions = 4096;       // per report

} // namespace wharf::actors::analytics_detail
