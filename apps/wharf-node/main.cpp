// wharf-node: runs one node of a wharf cluster. Options come from a TOML file (--config)
// with command-line overrides; see --help. Exit codes: 0 clean stop, 1 runtime failure,
// 2 bad configuration or usage.
#include <iostream>

#include <malloc.h>

#include <CLI/CLI.hpp>

#include "actors/analytics/service.hpp"
#include "actors/registers/register_actor.hpp"
#include "runtime/config/node_config.hpp"
#include "runtime/core/types.hpp"
#include "runtime/node/node.hpp"

using namespace wharf;

int main(int argc, char** argv) {
  // Reports allocate and free hundreds of MB in big blocks (aggregation tables, sorted
  // partials, chunks, pages) on many threads. The memory stays in malloc's heap between
  // reports and is reused: one arena (a block freed by one thread serves the next report's
  // threads, where per-thread arenas unmapped whole heaps on free), no mapping of its own
  // for a big block, and no trim on free. Otherwise every report faulted in, zeroed and
  // charged its memory again: ~100-200k page faults a 10M-row report on 3 nodes (~1.7 us
  // each on our VM). The analytics service gives the memory back (malloc_trim) after
  // `analytics.keep_memory_s` without reports.
  if (mallopt(M_ARENA_MAX, 1) != 1 || mallopt(M_MMAP_MAX, 0) != 1
      || mallopt(M_TRIM_THRESHOLD, -1) != 1)
    std::cerr << "wharf-node: warning: malloc refused a setting (M_ARENA_MAX, M_MMAP_MAX or "
                 "M_TRIM_THRESHOLD); reports may fault their memory in again\n";
  runtime::node_config defaults;
  CLI::App app{"wharf-node: one node of a wharf cluster (actors, state, RPC, HTTP).\n"
               "Settings come from --config FILE (TOML: [node] [cluster] [log] [state]); flags "
               "override the file.\nExample: wharf-node --name n2 --cluster-port 7200 "
               "--rpc-port 7201 --http-port 7202 --seed 127.0.0.1:7100",
               "wharf-node"};
  std::string config_file;
  std::string name, host, data_dir, log_level, durability, roles;
  int cluster_port = -1, rpc_port = -1, http_port = -1;
  std::vector<std::string> seeds;
  bool dump = false;
  app.add_option("--config", config_file, "TOML config file (see deploy/node.example.toml)");
  app.add_option("--name", name, "unique node name [default: " + defaults.name + "]");
  app.add_option("--host", host, "address all ports bind to [default: " + defaults.host + "]");
  app.add_option("--cluster-port", cluster_port,
                 "node-to-node port [default: " + std::to_string(defaults.cluster_port) + "]");
  app.add_option("--rpc-port", rpc_port, "Cap'n Proto RPC port, 0 = off [default: "
                                            + std::to_string(defaults.rpc_port) + "]");
  app.add_option("--http-port", http_port, "HTTP port (/health, /metrics), 0 = off [default: "
                                              + std::to_string(defaults.http_port) + "]");
  app.add_option("--data-dir", data_dir,
                 "state directory; RocksDB lives in DIR/NAME [default: " + defaults.data_dir + "]");
  app.add_option("--seed", seeds,
                 "host:port of a member to join through (repeatable); none or only itself "
                 "starts a new cluster");
  app.add_option("--roles", roles, "comma-separated roles [default: worker]");
  app.add_option("--log-level", log_level,
                 "trace|debug|info|warn|error|off [default: " + defaults.log_level + "]");
  app.add_option("--durability", durability,
                 "sync (fsync each commit) | group (commits in flight share one fsync) "
                 "[default: sync]");
  app.add_flag("--dump-config", dump, "print the effective configuration as TOML and exit");
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e) == 0 ? 0 : 2;
  }
  auto fail = [](const caf::error& err) {
    std::cerr << "wharf-node: " << runtime::describe(err) << '\n';
    return 2;
  };
  runtime::node_config cfg;
  if (!config_file.empty()) {
    auto loaded = runtime::load_node_config(config_file);
    if (!loaded)
      return fail(loaded.error());
    cfg = std::move(*loaded);
  }
  auto port = [&](int value, const char* flag, uint16_t& out) -> caf::error {
    if (value < 0)
      return caf::none;
    if (value > 65535)
      return runtime::make_error(runtime::runtime_errc::bad_config,
                                 std::string(flag) + ": must be 0..65535");
    out = static_cast<uint16_t>(value);
    return caf::none;
  };
  if (!name.empty())
    cfg.name = name;
  if (!host.empty())
    cfg.host = host;
  if (!data_dir.empty())
    cfg.data_dir = data_dir;
  if (!log_level.empty())
    cfg.log_level = log_level;
  if (auto err = port(cluster_port, "--cluster-port", cfg.cluster_port))
    return fail(err);
  if (auto err = port(rpc_port, "--rpc-port", cfg.rpc_port))
    return fail(err);
  if (auto err = port(http_port, "--http-port", cfg.http_port))
    return fail(err);
  if (!seeds.empty()) {
    cfg.seeds.clear();
    for (auto& s : seeds) {
      auto ep = runtime::parse_endpoint(s, "--seed");
      if (!ep)
        return fail(ep.error());
      cfg.seeds.push_back(*ep);
    }
  }
  if (!roles.empty()) {
    cfg.roles.clear();
    std::string r;
    for (char c : roles + ",") {
      if (c == ',') {
        if (!r.empty())
          cfg.roles.push_back(r);
        r.clear();
      } else {
        r += c;
      }
    }
  }
  if (!durability.empty()) {
    if (durability == "sync")
      cfg.durability = runtime::durability_mode::sync;
    else if (durability == "group")
      cfg.durability = runtime::durability_mode::group;
    else
      return fail(runtime::make_error(runtime::runtime_errc::bad_config,
                                      "--durability: expected sync or group, got \""
                                        + durability + "\""));
  }
  if (auto err = cfg.validate())
    return fail(err);
  if (auto err = actors::check_reports(cfg))
    return fail(err);
  if (dump) {
    std::cout << runtime::to_toml(cfg);
    return 0;
  }
  return runtime::run_node(cfg, {actors::register_child(), actors::analytics_child(cfg)});
}
