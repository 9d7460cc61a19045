#pragma once
/// The worker side of a report (internal to actors/analytics): a node's partial of one
/// report, the requests waiting for its partitions, and the detached reader actors that read
/// partitions into it and page it out to the coordinator as chunks.
///
/// Threads: `node_report` says which mutex guards which field; `pending` and `read_wait`
/// belong to the service's thread; reads and collects run on reader threads.

#include <atomic>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include <caf/allowed_unsafe_message_type.hpp>
#include <caf/behavior.hpp>
#include <caf/error.hpp>
#include <caf/fwd.hpp>
#include <caf/response_promise.hpp>

#include "actors/analytics/agg_table.hpp"
#include "actors/analytics/chunk_codec.hpp"
#include "actors/analytics/plan.hpp"
#include "actors/analytics/report_memory.hpp"
#include "actors/analytics/sorted_partial.hpp"

namespace wharf::runtime {
class pg_connection;
class pg_pool;
} // namespace wharf::runtime

namespace wharf::actors::analytics_detail {

/// The `WorkerReply.error` for `err`: its report error code, message and SQLSTATE.
std::string worker_error(const caf::error& err);

/// The `WorkerReply.done` of a read that began with partition `id` and read `rows`.
std::string done_reply(uint32_t id, uint64_t rows);

/// Rows read by a reader's reply, or nullopt when it is not a Done (an error).
std::optional<uint64_t> done_rows(const std::string& bytes);

/// One read request of a coordinator: answered once every partition it names has been read
/// here — by its own read or by another request's (a coordinator re-sending a read it thinks
/// lost) — with the first failure's reply if any read failed. Service thread only.
struct read_wait {
  caf::response_promise promise;
  std::set<uint32_t> left;
  uint32_t first = 0;
  uint64_t rows = 0;
  std::string failure;

  void resolve(uint32_t id, const std::string& reply, std::optional<uint64_t> rows_read) {
    if (left.erase(id) == 0)
      return;
    if (!rows_read && failure.empty())
      failure = reply;
    rows += rows_read.value_or(0);
    if (left.empty())
      promise.deliver(failure.empty() ? done_reply(first, rows) : failure);
  }
};

/// A node's partial of one report.
struct node_report {
  report_activity busy;
  std::mutex mtx; // guards tables, collected, retired, running (not a table during its read)
  std::mutex small; // guards merged and active; held only briefly (the service takes it)
  std::shared_ptr<const report_plan> plan;
  // The column types this node trusts: looked up in its own catalog before its first read,
  // never taken from the peer's plan (they are spliced into SQL as casts).
  std::once_flag types_once;
  std::shared_ptr<const report_plan> local_plan;
  caf::error types_error;
  // One table per reader: reader r aggregates every partition it reads straight into
  // tables[r] (no per-partition table and merge). A failed read drops that whole table, and
  // with it the other partitions it held; `merged` forgets them too, and the coordinator
  // finds them missing when it collects and reads them again.
  std::vector<std::unique_ptr<agg_table>> tables;
  std::set<uint32_t> merged;              // partitions whose rows are in some table
  std::optional<sorted_partial> collected; // the tables as one sorted run, built by collect
  std::vector<std::unique_ptr<agg_table>> retired; // folded into `collected` (its keys view them)
  // The usual case, one dense table: chunks are cut straight from its cells (see run_collect).
  std::unique_ptr<agg_table> walking;
  dense_cursor cursor;
  int running = 0;                     // reads in flight
  std::atomic<bool> stop{false};
  std::set<runtime::pg_connection*> active;
  std::chrono::steady_clock::time_point expires;
  // Service thread only: partitions queued or being read here, with the requests waiting
  // for them (each partition is read by one job at a time, whoever asks).
  std::map<uint32_t, std::vector<std::shared_ptr<read_wait>>> pending;
};

/// Partition `id` of `rep` was read (rows) or failed (nullopt): every request waiting on it
/// learns so, and it is no longer pending.
void settle(node_report& rep, uint32_t id, const std::string& reply,
            std::optional<uint64_t> rows);

/// A read (or a collect) queued for a reader.
struct read_job {
  std::shared_ptr<node_report> report;
  std::vector<partition> run; // ascending ids; adjacent ones are read as one statement
  bool collect = false; // page through the merged partial instead of reading
  uint64_t offset = 0;
  uint32_t limit = 0;
};

/// A partition reader: a detached actor that answers `read_atom` jobs with an encoded
/// `WorkerReply` (reads through `pool`, null when the node has no database; `index` names its
/// table in each report's partial).
caf::behavior reader_impl(caf::event_based_actor*, std::shared_ptr<runtime::pg_pool> pool,
                          size_t index);

} // namespace wharf::actors::analytics_detail

CAF_ALLOW_UNSAFE_MESSAGE_TYPE(std::shared_ptr<wharf::actors::analytics_detail::read_job>)
