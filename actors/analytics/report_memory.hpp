#pragma once
/// Keeps the memory of reports in malloc's heap while they run, and gives it back once the
/// node has been quiet (internal to actors/analytics).
///
/// Reports allocate and free hundreds of MB in big blocks (tables, sorted partials, chunks,
/// pages). wharf-node keeps those in malloc's heap while reports run (fresh pages from the
/// kernel cost a fault, a zeroing and a cgroup charge each: a fifth of the coordinator's CPU
/// when every large block was mapped on its own), and this hands the free memory back once no
/// report has been active here for `analytics.keep_memory_s` (default 300 s; a report that
/// starts on trimmed memory pays its faults again: ~100k on 3 nodes for a 10M-row report
/// here): a helper thread looks every second.
///
/// A `report_activity` lives as long as one report does on a node (its coordinator, each
/// node's partial); any thread may create or destroy one.

#include <atomic>
#include <chrono>
#include <cstdint>

namespace wharf::actors::analytics_detail {

class report_activity {
public:
  /// How long reports must have left the node quiet before it trims (once, at start-up).
  static void keep_for(std::chrono::seconds s);

  report_activity();
  ~report_activity();
  report_activity(const report_activity&) = delete;
  report_activity& operator=(const report_activity&) = delete;

private:
  static std::atomic<int>& active();
  static std::atomic<uint64_t>& generation();
  static std::atomic<int64_t>& keep();
  [[noreturn]] static void trim_loop();
};

} // namespace wharf::actors::analytics_detail
