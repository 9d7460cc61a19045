#include "runtime/config/node_config.hpp"

#include <fstream>
#include <sstream>

#include "runtime/config/config_section.hpp"
#include "runtime/core/types.hpp"
#include "runtime/module/service_module.hpp"

namespace wharf::runtime {

const char* to_string(durability_mode x) noexcept {
  return x == durability_mode::sync ? "sync" : "group";
}

caf::expected<endpoint> parse_endpoint(const std::string& text, const std::string& what) {
  auto colon = text.rfind(':');
  if (colon == std::string::npos || colon == 0 || colon + 1 == text.size())
    return make_error(runtime_errc::bad_config,
                      what + ": expected host:port, got \"" + text + "\"");
  auto port_text = text.substr(colon + 1);
  char* end = nullptr;
  auto port = std::strtol(port_text.c_str(), &end, 10);
  if (*end != '\0' || port <= 0 || port > 65535)
    return make_error(runtime_errc::bad_config,
                      what + ": port must be 1..65535, got \"" + port_text + "\"");
  return endpoint{text.substr(0, colon), static_cast<uint16_t>(port)};
}

bool node_config::has_role(const std::string& role) const {
  return std::find(roles.begin(), roles.end(), role) != roles.end();
}

caf::error node_config::validate() const {
  auto bad = [](std::string msg) { return make_error(runtime_errc::bad_config, std::move(msg)); };
  if (name.empty() || name.size() > 64)
    return bad("node.name: must be 1..64 characters");
  for (char c : name)
    if (!(isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '_' || c == '.'))
      return bad("node.name: only letters, digits, '-', '_' and '.' are allowed, got \"" + name
                 + "\"");
  if (host.empty())
    return bad("node.host: must not be empty");
  if (cluster_port == 0)
    return bad("node.cluster_port: must be 1..65535");
  if (data_dir.empty())
    return bad("node.data_dir: must not be empty");
  static const std::vector<std::string> levels{"trace", "debug", "info", "warn", "error", "off"};
  if (std::find(levels.begin(), levels.end(), log_level) == levels.end())
    return bad("log.level: expected trace|debug|info|warn|error|off, got \"" + log_level + "\"");
  if (log_format != "text" && log_format != "json")
    return bad("log.format: expected text or json, got \"" + log_format + "\"");
  if (heartbeat_interval.count() <= 0)
    return bad("cluster.heartbeat_ms: must be positive");
  if (failure_timeout <= heartbeat_interval)
    return bad("cluster.failure_timeout_ms: must be greater than cluster.heartbeat_ms");
  if (request_timeout.count() <= 0)
    return bad("cluster.request_timeout_ms: must be positive");
  if (shutdown_timeout.count() <= 0)
    return bad("node.shutdown_timeout_ms: must be positive");
  if (worker_threads == 0 || worker_threads > 256)
    return bad("node.worker_threads: must be 1..256");
  return caf::none;
}

namespace {

constexpr int64_t max_ms = 24 * 3600 * 1000;

// The node's own sections; the same declarations read, dump and document them.
void configure(config_root& root, node_config& c) {
  root.section("node", "this node: name, addresses, data directory, roles", [&](config_section& s) {
    s.text("name", c.name, "unique in the cluster: 1..64 letters, digits, '-', '_', '.'");
    s.text("host", c.host, "address every port binds to (and members dial)");
    s.port("cluster_port", c.cluster_port, "node-to-node port (CAF BASP), 1..65535");
    s.port("rpc_port", c.rpc_port, "Cap'n Proto RPC port for apps and the console, 0 = off");
    s.port("http_port", c.http_port, "HTTP port (/health, /metrics, module routes), 0 = off");
    s.text("data_dir", c.data_dir, "state directory; RocksDB lives in <data_dir>/<name>");
    s.texts("roles", c.roles, "roles decide which modules' children this node runs");
    s.millis("shutdown_timeout_ms", c.shutdown_timeout, 1, max_ms,
             "per child on shutdown (listeners drain as long); the node gives up after 4x");
    s.count("worker_threads", c.worker_threads, 1, 256, "scheduler threads of the actor system");
    s.count("http_max_body_bytes", c.http_max_body, 1024, size_t{1} << 30,
            "largest HTTP request body; larger ones get 413");
  });
  std::vector<std::string> seeds;
  for (auto& e : c.seeds)
    seeds.push_back(e.host + ":" + std::to_string(e.port));
  root.section("cluster", "membership and failure detection", [&](config_section& s) {
    s.texts("seeds", seeds, "members to join through, \"host:port\" (their cluster_port)");
    s.millis("heartbeat_ms", c.heartbeat_interval, 1, max_ms, "interval between heartbeats");
    s.millis("failure_timeout_ms", c.failure_timeout, 1, max_ms,
             "a member silent this long is down (> heartbeat_ms)");
    s.millis("request_timeout_ms", c.request_timeout, 1, max_ms,
             "time limit of a request forwarded to another node");
    if (s.mode() != config_mode::read)
      return;
    std::vector<endpoint> eps;
    for (auto& x : seeds) {
      auto ep = parse_endpoint(x, "");
      if (!ep) {
        auto why = describe(ep.error()); // "bad_config: : expected host:port, got ..."
        auto at = why.find(": : ");
        s.check("seeds", at == std::string::npos ? why : why.substr(at + 4));
        return;
      }
      eps.push_back(*ep);
    }
    c.seeds = std::move(eps);
  });
  root.section("log", "logging to stderr", [&](config_section& s) {
    s.choice("level", c.log_level, {"trace", "debug", "info", "warn", "error", "off"},
             "log level");
    s.choice("format", c.log_format, {"text", "json"},
             "text lines, or one JSON object per line (time, level, node, actor, trace, msg)");
  });
  std::string durability = to_string(c.durability);
  root.section("state", "durable actor state (RocksDB)", [&](config_section& s) {
    s.choice("durability", durability, {"sync", "group"},
             "sync: fsync each commit; group: commits in flight share one fsync");
  });
  c.durability = durability == "group" ? durability_mode::group : durability_mode::sync;
}

void configure_all(config_root& root, node_config& c, const module_list& modules) {
  configure(root, c);
  for (auto* m : modules)
    m->configure(root);
}

} // namespace

caf::expected<node_config> parse_node_config(const std::string& toml_text,
                                             const std::string& source,
                                             const module_list& modules) {
  caf::error err;
  auto root = config_root::reader(toml_text, source, err);
  if (!root)
    return err;
  node_config cfg;
  configure_all(*root, cfg, modules);
  if (auto e = root->finish())
    return e;
  if (cfg.cluster_port == 0)
    return make_error(runtime_errc::bad_config, source + ": node.cluster_port: must be 1..65535");
  return cfg;
}

caf::expected<node_config> load_node_config(const std::string& path, const module_list& modules) {
  std::ifstream in{path};
  if (!in)
    return make_error(runtime_errc::bad_config, path + ": cannot open config file");
  std::stringstream ss;
  ss << in.rdbuf();
  return parse_node_config(ss.str(), path, modules);
}

std::string to_toml(const node_config& cfg, const module_list& modules) {
  auto root = config_root::writer(config_mode::dump);
  auto copy = cfg; // the declarations take references; dumping changes nothing
  configure_all(*root, copy, modules);
  return root->text();
}

std::string describe_config(const module_list& modules) {
  auto root = config_root::writer(config_mode::describe);
  node_config defaults;
  configure_all(*root, defaults, modules);
  return root->text();
}

} // namespace wharf::runtime
