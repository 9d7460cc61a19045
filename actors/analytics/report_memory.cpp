#include "actors/analytics/report_memory.hpp"

#include <mutex>
#include <thread>

#include <malloc.h>

#include <spdlog/spdlog.h>

#include "actors/analytics/config.hpp"

namespace wharf::actors::analytics_detail {

void report_activity::keep_for(std::chrono::seconds s) {
  keep().store(s.count());
}

report_activity::report_activity() {
  static std::once_flag started;
  std::call_once(started, [] { std::thread(trim_loop).detach(); });
  active().fetch_add(1);
  generation().fetch_add(1);
}

report_activity::~report_activity() {
  active().fetch_sub(1);
}

std::atomic<int>& report_activity::active() {
  static std::atomic<int> n{0};
  return n;
}

std::atomic<uint64_t>& report_activity::generation() {
  static std::atomic<uint64_t> n{0};
  return n;
}

std::atomic<int64_t>& report_activity::keep() {
  static std::atomic<int64_t> s{analytics_config{}.keep_memory.count()};
  return s;
}

// Trims once reports have left the node quiet for keep() seconds (as allocators that decay
// their free pages do): back-to-back reports reuse the memory, an idle node gives it back.
void report_activity::trim_loop() {
  uint64_t trimmed = 0, seen = 0;
  auto quiet_since = std::chrono::steady_clock::now();
  while (true) {
    std::this_thread::sleep_for(std::chrono::seconds{1});
    auto gen = generation().load();
    auto now = std::chrono::steady_clock::now();
    if (active().load() > 0 || gen != seen) {
      seen = gen;
      quiet_since = now;
      continue;
    }
    if (gen != trimmed && now - quiet_since >= std::chrono::seconds{keep().load()}) {
      trimmed = gen;
      auto before = mallinfo2();
      malloc_trim(0);
      spdlog::debug("reports done: malloc holds {} MB in use, returned free memory ({} MB "
                    "in arenas) to the system", before.uordblks >> 20, before.fordblks >> 20);
    }
  }
}

} // namespace wharf::actors::analytics_detail
