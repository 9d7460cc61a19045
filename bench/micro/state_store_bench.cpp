// state_store_bench: acknowledged durable writes per second through the node's state-store
// actor, `sync` (one fsync'd RocksDB write per commit) versus `group` (commits in flight share
// one fsync'd write), for 1, 8 and 64 concurrent writers. Each writer is an actor that
// persists one key, waits for the acknowledgement, and repeats, like a stateful service.
// Setup: a fresh RocksDB directory per case under $TMPDIR, the store detached as in a node,
// 2 scheduler threads. Output: one human line per case plus `name,run,value,unit` lines.
// Usage: state_store_bench [--writes-per-case N] [--runs R]
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <iostream>
#include <map>
#include <string>
#include <vector>

#include <unistd.h>

#include <caf/all.hpp>

#include "runtime/core/metrics.hpp"
#include "runtime/core/types.hpp"
#include "runtime/storage/kv_store.hpp"
#include "runtime/storage/state_store.hpp"

using namespace wharf::runtime;
using string_map = std::map<std::string, std::string>;
using done_atom = caf::atom_constant<caf::atom("done")>;

namespace {

// One persist, then the next once acknowledged (no self-referencing closure: it would keep
// the handles it captures alive forever and stall the actor system's shutdown).
void write_next(caf::event_based_actor* self, caf::actor store, std::string path,
                std::shared_ptr<int> left, caf::actor report) {
  if ((*left)-- == 0) {
    self->send(report, done_atom::value);
    self->quit();
    return;
  }
  auto key = "k" + std::to_string(*left % 16);
  self->request(store, std::chrono::seconds{60}, persist_atom::value, path,
                string_map{{key, std::string(64, 'v')}}, std::vector<std::string>{})
    .then([=](caf::ok_atom) { write_next(self, store, path, left, report); },
          [](caf::error& err) {
            std::cerr << "persist failed: " << describe(err) << '\n';
            std::exit(1);
          });
}

caf::behavior writer(caf::event_based_actor* self, caf::actor store, int id, int count,
                     caf::actor report) {
  write_next(self, store, "bench/w" + std::to_string(id), std::make_shared<int>(count), report);
  return {[](int) {}};
}

struct result {
  double writes_per_s;
  uint64_t commits;
};

result run_case(caf::actor_system& sys, durability_mode mode, int writers, int total) {
  auto dir = std::filesystem::temp_directory_path()
             / ("wharf-store-bench-" + std::to_string(::getpid()));
  std::filesystem::remove_all(dir);
  auto opened = kv_store::open(dir.string());
  if (!opened) {
    std::cerr << describe(opened.error()) << '\n';
    std::exit(1);
  }
  std::shared_ptr<kv_store> db = std::move(*opened);
  auto metrics = std::make_shared<node_metrics>();
  auto store = sys.spawn<caf::detached>(state_store_impl, db, mode, metrics);
  caf::scoped_actor self{sys};
  auto per_writer = std::max(1, total / writers);
  auto t0 = std::chrono::steady_clock::now();
  for (int i = 0; i < writers; ++i)
    sys.spawn(writer, store, i, per_writer, caf::actor{self});
  for (int i = 0; i < writers; ++i)
    self->receive([](done_atom) {});
  auto secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  if (metrics->state_writes.load() != static_cast<uint64_t>(per_writer) * writers) {
    std::cerr << "lost acknowledgements\n";
    std::exit(1);
  }
  self->send_exit(store, caf::exit_reason::user_shutdown);
  self->wait_for(store);
  db.reset();
  std::filesystem::remove_all(dir);
  return {per_writer * writers / secs, metrics->state_commits.load()};
}

} // namespace

int main(int argc, char** argv) {
  int total = 2000, runs = 3;
  for (int i = 1; i + 1 < argc; i += 2) {
    std::string a = argv[i];
    if (a == "--writes-per-case")
      total = std::atoi(argv[i + 1]);
    else if (a == "--runs")
      runs = std::atoi(argv[i + 1]);
  }
  std::setvbuf(stdout, nullptr, _IOLBF, 0); // progress lines as they come
  caf::actor_system_config cfg;
  add_types(cfg);
  cfg.set("scheduler.max-threads", 2);
  cfg.set("logger.console-verbosity", caf::atom("quiet"));
  caf::actor_system sys{cfg};
  std::printf("state store: %d acknowledged writes per case, median of %d runs\n", total, runs);
  for (int writers : {1, 8, 64}) {
    std::map<std::string, std::vector<double>> rate;
    std::map<std::string, std::vector<double>> per_commit;
    for (int r = 1; r <= runs; ++r) {
      for (auto mode : {durability_mode::sync, durability_mode::group}) {
        auto res = run_case(sys, mode, writers, total);
        auto name = std::string(to_string(mode));
        rate[name].push_back(res.writes_per_s);
        per_commit[name].push_back(static_cast<double>(total / writers * writers)
                                   / static_cast<double>(res.commits));
        std::printf("%s_%dw_writes,%d,%.0f,writes/s\n", name.c_str(), writers, r,
                    res.writes_per_s);
      }
    }
    auto median = [](std::vector<double> v) {
      std::sort(v.begin(), v.end());
      return v[v.size() / 2];
    };
    auto s = median(rate["sync"]), g = median(rate["group"]);
    std::printf("%2d writers: sync %8.0f writes/s | group %8.0f writes/s (%.1f writes per "
                "fsync) | group/sync %.2fx\n",
                writers, s, g, median(per_commit["group"]), g / s);
  }
  return 0;
}
