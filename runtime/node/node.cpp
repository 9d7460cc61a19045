#include "runtime/node/node.hpp"

#include <csignal>
#include <filesystem>
#include <pthread.h>
#include <thread>

#include <caf/all.hpp>
#include <caf/io/all.hpp>
#include <spdlog/spdlog.h>

#include "runtime/cluster/cluster_actor.hpp"
#include "runtime/core/logging.hpp"
#include "runtime/core/metrics.hpp"
#include "runtime/core/types.hpp"
#include "runtime/module/service_module.hpp"
#include "runtime/rpc/rpc_host.hpp"
#include "runtime/storage/kv_store.hpp"
#include "runtime/storage/state_store.hpp"

namespace wharf::runtime {

namespace {

// Incarnations grow across restarts even if the clock steps back: max(previous + 1, now).
caf::expected<uint64_t> next_incarnation(kv_store& store) {
  auto prev = store.get(column::meta, "incarnation");
  if (!prev)
    return prev.error();
  uint64_t old = 0;
  if (*prev) {
    char* end = nullptr;
    old = std::strtoull((*prev)->c_str(), &end, 10);
    if (end == (*prev)->c_str() || *end != '\0')
      return make_error(runtime_errc::storage_failure,
                        "stored incarnation is corrupt: \"" + **prev + "\"");
  }
  auto now = static_cast<uint64_t>(std::chrono::duration_cast<std::chrono::milliseconds>(
                                     std::chrono::system_clock::now().time_since_epoch())
                                     .count());
  auto inc = std::max(old + 1, now);
  write_batch wb;
  wb.put(column::meta, "incarnation", std::to_string(inc));
  if (auto err = store.write(wb, true))
    return err;
  return inc;
}

// The children of every module this node's roles run, in module order.
std::vector<child_spec> module_children(const node_config& cfg, const module_list& modules,
                                        const std::shared_ptr<node_metrics>& metrics) {
  std::vector<child_spec> out;
  module_context ctx{cfg, metrics};
  for (auto* m : modules)
    for (auto& c : m->children(ctx)) {
      bool runs = c.roles.empty();
      for (auto& r : c.roles)
        runs = runs || cfg.has_role(r);
      if (runs)
        out.push_back(std::move(c.spec));
      else
        spdlog::info("module {}: not running {} here (roles {})", m->name(), c.spec.name,
                     [&] {
                       std::string rs;
                       for (auto& r : c.roles)
                         rs += (rs.empty() ? "" : ",") + r;
                       return rs;
                     }());
    }
  return out;
}

supervisor_spec make_tree(const node_config& cfg, uint64_t incarnation,
                          std::shared_ptr<kv_store> store, std::shared_ptr<node_metrics> metrics,
                          std::vector<child_spec> services) {
  child_spec store_child;
  store_child.name = "store";
  store_child.restart = restart_type::permanent;
  auto mode = cfg.durability;
  // Detached: RocksDB writes and fsyncs run on the store's own thread.
  store_child.start = [store, mode, metrics](caf::event_based_actor& parent, const child_context&) {
    return parent.spawn<caf::detached + caf::linked>(state_store_impl, store, mode, metrics);
  };
  supervisor_spec system;
  system.name = "system";
  system.strategy = restart_strategy::rest_for_one;
  system.shutdown_timeout = cfg.shutdown_timeout;
  system.children.push_back(store_child);
  system.children.push_back(worker_child("cluster", restart_type::permanent, cluster_impl,
                                         cluster_args{cfg, incarnation}));
  supervisor_spec svc;
  svc.name = "services";
  svc.strategy = restart_strategy::one_for_one;
  svc.shutdown_timeout = cfg.shutdown_timeout;
  svc.children = std::move(services);
  supervisor_spec root;
  root.name = "root";
  root.strategy = restart_strategy::one_for_one;
  root.shutdown_timeout = cfg.shutdown_timeout;
  // Services stop first (reverse order), so they can still persist through `system/store`.
  root.children.push_back(supervisor_child(system));
  root.children.push_back(supervisor_child(svc));
  return root;
}

} // namespace

int run_node(const node_config& cfg, const module_list& modules) {
  // Every thread created from here on inherits this mask; the main thread takes the signals.
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGTERM);
  sigaddset(&signals, SIGINT);
  sigaddset(&signals, SIGUSR2); // raised by ourselves when the root supervisor dies
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);

  setup_logging(cfg.name, cfg.log_level, cfg.log_format);
  auto dir = std::filesystem::path(cfg.data_dir) / cfg.name;
  std::error_code ec;
  std::filesystem::create_directories(dir, ec);
  if (ec) {
    spdlog::error("cannot create data directory {}: {}", dir.string(), ec.message());
    return 1;
  }
  std::vector<column_family_spec> families;
  for (auto* m : modules)
    for (auto& f : m->column_families())
      families.push_back(std::move(f));
  auto opened = kv_store::open(dir.string(), families);
  if (!opened) {
    spdlog::error("{} (is another wharf-node using this data dir?)", describe(opened.error()));
    return 1;
  }
  std::shared_ptr<kv_store> store = std::move(*opened);
  auto incarnation = next_incarnation(*store);
  if (!incarnation) {
    spdlog::error("cannot record incarnation: {}", describe(incarnation.error()));
    return 1;
  }
  auto metrics = std::make_shared<node_metrics>();

  caf::actor_system_config acfg;
  acfg.load<caf::io::middleman>();
  add_types(acfg);
  for (auto* m : modules)
    m->add_types(acfg);
  acfg.set("scheduler.max-threads", cfg.worker_threads);
  // An idle scheduler worker spins briefly, then waits on its condition variable (a message
  // for it wakes it). CAF's default also polls every 50 us for 25 ms after each job before
  // waiting, which heartbeats and timers renew: an idle node spent ~3.5 % of a core on
  // wake-ups, a busy node ~13 % of its CPU time.
  acfg.set("work-stealing.moderate-poll-attempts", size_t{0});
  acfg.set("logger.console-verbosity", caf::atom("quiet"));
  acfg.set("logger.file-verbosity", caf::atom("quiet"));
  int exit_code = 0;
  {
    caf::actor_system sys{acfg};
    auto root = spawn_root_supervisor(
      sys, make_tree(cfg, *incarnation, store, metrics, module_children(cfg, modules, metrics)),
      metrics);
    root->attach_functor([](const caf::error& reason) {
      if (reason != caf::exit_reason::user_shutdown) {
        spdlog::error("root supervisor exited ({}); stopping the node", describe(reason));
        ::kill(::getpid(), SIGUSR2);
      }
    });
    rpc_options ro;
    ro.node = cfg;
    ro.enable_rpc = cfg.rpc_port != 0;
    ro.enable_http = cfg.http_port != 0;
    ro.modules = modules;
    rpc_host rpc{sys, ro, metrics};
    auto err = rpc.start();
    // The cluster actor publishes its port asynchronously; wait (bounded) before serving.
    auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds{10};
    while (!err && !metrics->cluster_listening && std::chrono::steady_clock::now() < deadline)
      std::this_thread::sleep_for(std::chrono::milliseconds{5});
    if (!err && !metrics->cluster_listening)
      err = make_error(runtime_errc::unreachable,
                       "cannot listen on cluster port " + cfg.host + ":"
                         + std::to_string(cfg.cluster_port) + " (see the log above)");
    if (err) {
      spdlog::error("{}", describe(err));
      exit_code = 1;
    } else {
      metrics->serving = true;
      spdlog::info("node {} serving: cluster {}:{}, rpc {}, http {}, data {}, durability {}",
                   cfg.name, cfg.host, cfg.cluster_port, rpc.rpc_port(), rpc.http_port(),
                   dir.string(), to_string(cfg.durability));
      int sig = 0;
      sigwait(&signals, &sig);
      if (sig == SIGUSR2)
        exit_code = 1;
      else
        spdlog::info("received {}, leaving the cluster and stopping", strsignal(sig));
    }
    metrics->serving = false;
    // Modules' listeners first: their connections finish while the services still run.
    rpc.drain(std::chrono::duration_cast<std::chrono::milliseconds>(cfg.shutdown_timeout));
    {
      caf::scoped_actor self{sys};
      self->monitor(root);
      self->send_exit(root, caf::exit_reason::user_shutdown);
      bool stopped = false;
      self->receive([&](caf::down_msg&) { stopped = true; },
                    caf::after(cfg.shutdown_timeout * 4) >> [&] {
                      spdlog::error("supervision tree did not stop within {} ms; killing it",
                                    (cfg.shutdown_timeout * 4).count());
                    });
      if (!stopped) {
        exit_code = 1;
        // Untrappable: the root dies now, and its links take the rest of the tree down.
        self->send_exit(root, caf::exit_reason::kill);
        self->receive([](caf::down_msg&) {}, caf::after(std::chrono::seconds{5}) >> [] {});
      }
    }
    rpc.stop();
    sys.registry().erase(cluster_name);
    for (auto* m : modules)
      sys.registry().erase(caf::atom_from_string(m->name()));
  }
  store.reset();
  spdlog::info("node {} stopped", cfg.name);
  return exit_code;
}

} // namespace wharf::runtime
