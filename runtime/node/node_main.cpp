// node_main: the flags and config handling of `wharf-node` (apps/wharf-node/main.cpp is the
// list of modules it links). Flags override the config file; the modules' sections come from
// the file only.
#include "runtime/node/node.hpp"

#include <iostream>

#include <CLI/CLI.hpp>

#include "runtime/core/types.hpp"
#include "runtime/module/service_module.hpp"

namespace wharf::runtime {

namespace {

std::vector<std::string> split_roles(const std::string& roles) {
  std::vector<std::string> out;
  std::string r;
  for (char c : roles + ",") {
    if (c == ',') {
      if (!r.empty())
        out.push_back(r);
      r.clear();
    } else {
      r += c;
    }
  }
  return out;
}

std::string help_footer(const module_list& modules) {
  std::string out = "\nModules linked into this binary:\n";
  for (auto* m : modules)
    out += std::string("  ") + m->name() + std::string(12 - std::min<size_t>(11, std::string(m->name()).size()), ' ')
           + m->summary() + "\n";
  out += "\nConfig file sections and keys (TOML, shown with their defaults):\n\n";
  out += describe_config(modules);
  return out;
}

} // namespace

int node_main(int argc, char** argv, const module_list& modules) {
  for (size_t i = 0; i < modules.size(); ++i)
    for (size_t j = 0; j < i; ++j)
      if (std::string(modules[i]->name()) == modules[j]->name()) {
        std::cerr << "wharf-node: two modules are named \"" << modules[i]->name() << "\"\n";
        return 2;
      }
  node_config defaults;
  CLI::App app{"wharf-node: one node of a wharf cluster (actors, state, RPC, HTTP).\n"
               "Settings come from --config FILE (TOML; sections below); flags override the "
               "file.\nExample: wharf-node --name n2 --cluster-port 7200 --rpc-port 7201 "
               "--http-port 7202 --seed 127.0.0.1:7100",
               "wharf-node"};
  app.footer(help_footer(modules));
  std::string config_file;
  std::string name, host, data_dir, log_level, log_format, durability, roles;
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
  app.add_option("--log-format", log_format,
                 "text (one line an event) | json (one object a line) [default: text]");
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
    std::cerr << "wharf-node: " << describe(err) << '\n';
    return 2;
  };
  node_config cfg;
  if (!config_file.empty()) {
    auto loaded = load_node_config(config_file, modules);
    if (!loaded)
      return fail(loaded.error());
    cfg = std::move(*loaded);
  }
  auto port = [&](int value, const char* flag, uint16_t& out) -> caf::error {
    if (value < 0)
      return caf::none;
    if (value > 65535)
      return make_error(runtime_errc::bad_config, std::string(flag) + ": must be 0..65535");
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
  if (!log_format.empty())
    cfg.log_format = log_format;
  if (auto err = port(cluster_port, "--cluster-port", cfg.cluster_port))
    return fail(err);
  if (auto err = port(rpc_port, "--rpc-port", cfg.rpc_port))
    return fail(err);
  if (auto err = port(http_port, "--http-port", cfg.http_port))
    return fail(err);
  if (!seeds.empty()) {
    cfg.seeds.clear();
    for (auto& s : seeds) {
      auto ep = parse_endpoint(s, "--seed");
      if (!ep)
        return fail(ep.error());
      cfg.seeds.push_back(*ep);
    }
  }
  if (!roles.empty())
    cfg.roles = split_roles(roles);
  if (!durability.empty()) {
    if (durability == "sync")
      cfg.durability = durability_mode::sync;
    else if (durability == "group")
      cfg.durability = durability_mode::group;
    else
      return fail(make_error(runtime_errc::bad_config,
                             "--durability: expected sync or group, got \"" + durability + "\""));
  }
  if (auto err = cfg.validate())
    return fail(err);
  for (auto* m : modules)
    if (auto err = m->validate(cfg))
      return fail(err);
  if (dump) {
    std::cout << to_toml(cfg, modules);
    return 0;
  }
  for (auto* m : modules)
    m->prepare_process();
  return run_node(cfg, modules);
}

} // namespace wharf::runtime
