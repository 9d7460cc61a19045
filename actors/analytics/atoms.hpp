#pragma once
/// The analytics service's internal messages (internal to actors/analytics): the atoms its
/// actors — the service, report coordinators and partition readers — send each other, and
/// the limits both ends of those messages check, and the names and sizes used in more than one
/// file. The runtime's atoms (`call_atom`, `api_atom`, `probe_atom` for mailbox sizes,
/// `tick_atom`, ...) come from runtime/core/types.hpp.

#include <chrono>
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
using recheck_atom = caf::atom_constant<caf::atom("recheck")>; ///< coordinator: look for lost reads
using admit_atom = caf::atom_constant<caf::atom("admit")>;     ///< service: a queued report's wait ends

/// The module's name: its `Node` accessor, its service's registry name, and the service
/// name coordinators call through the cluster.
constexpr char service_name[] = "analytics";
/// The column family stored results live in.
constexpr const char* results_family = "analytics_results";

constexpr uint32_t chunk_groups = 300000;     // groups per collect round trip (<= ~16 MB)
constexpr size_t max_partitions = 4096;       // per report
constexpr uint32_t result_page_rows = 100000; // rows per stored result page = most a fetch gets
constexpr uint32_t default_fetch_rows = 10000; // a fetch that names no limit
/// How long the service and coordinators wait for the state store and the cluster actor
/// (local actors: only a stopping node makes them late).
constexpr std::chrono::seconds store_timeout{10};
/// How long a node keeps a report's partial past the report's deadline when its coordinator
/// never releases it (the coordinator's node died).
constexpr std::chrono::seconds partial_grace{60};
/// How long a call forwarded to the node that coordinates a report (status, cancel, fetch)
/// may take before the caller gets TIMEOUT (a lost message must not hang it).
constexpr std::chrono::seconds forward_timeout{30};
/// How often the service looks for expired reports, results and partials.
constexpr std::chrono::seconds tick_every{10};

} // namespace wharf::actors::analytics_detail
