#include "runtime/config/node_config.hpp"

#include <fstream>
#include <set>
#include <sstream>

#include <toml++/toml.h>

#include "runtime/core/types.hpp"

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
  static const std::set<std::string> levels{"trace", "debug", "info", "warn", "error", "off"};
  if (levels.count(log_level) == 0)
    return bad("log.level: expected trace|debug|info|warn|error|off, got \"" + log_level + "\"");
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

using table = toml::table;

struct reader {
  const table& root;
  std::string source;
  caf::error err;

  caf::error bad(const std::string& key, const std::string& msg) {
    return make_error(runtime_errc::bad_config, source + ": " + key + ": " + msg);
  }

  // Every section and key we accept; anything else is rejected so typos surface.
  caf::error check_known() {
    static const std::map<std::string, std::set<std::string>> known{
      {"node", {"name", "host", "cluster_port", "rpc_port", "http_port", "data_dir", "roles",
                "shutdown_timeout_ms", "worker_threads"}},
      {"cluster", {"seeds", "heartbeat_ms", "failure_timeout_ms", "request_timeout_ms"}},
      {"log", {"level"}},
      {"state", {"durability"}},
      {"analytics", {"dsn", "readers", "partitions", "large_result_rows", "default_deadline_ms",
                     "max_attempts", "result_ttl_s", "keep_memory_s"}},
    };
    for (auto& [k, v] : root) {
      std::string section{k.str()};
      if (section == "reports")
        continue; // an array of tables, checked by `reports()`

      auto i = known.find(section);
      if (i == known.end())
        return bad(section, "unknown section (expected node, cluster, log, state, analytics or "
                            "reports)");
      if (!v.is_table())
        return bad(section, "expected a table");
      for (auto& [k2, v2] : *v.as_table()) {
        std::string key{k2.str()};
        if (i->second.count(key) == 0)
          return bad(section + "." + key, "unknown key");
      }
    }
    return caf::none;
  }

  void str(const char* sec, const char* key, std::string& out) {
    if (err)
      return;
    auto node = root[sec][key];
    if (!node)
      return;
    if (auto v = node.value<std::string>())
      out = *v;
    else
      err = bad(std::string(sec) + "." + key, "expected a string");
  }

  void integer(const char* sec, const char* key, int64_t lo, int64_t hi, int64_t& out) {
    if (err)
      return;
    auto node = root[sec][key];
    if (!node)
      return;
    auto v = node.as_integer();
    if (!v) {
      err = bad(std::string(sec) + "." + key, "expected an integer");
      return;
    }
    if (v->get() < lo || v->get() > hi) {
      err = bad(std::string(sec) + "." + key,
                "must be " + std::to_string(lo) + ".." + std::to_string(hi) + ", got "
                  + std::to_string(v->get()));
      return;
    }
    out = v->get();
  }

  void size(const char* sec, const char* key, int64_t lo, int64_t hi, size_t& out) {
    int64_t v = static_cast<int64_t>(out);
    integer(sec, key, lo, hi, v);
    out = static_cast<size_t>(v);
  }

  // `[[reports]]`: an array of tables with string and string-array keys.
  void reports(std::vector<report_config>& out) {
    if (err)
      return;
    auto node = root["reports"];
    if (!node)
      return;
    auto arr = node.as_array();
    if (!arr) {
      err = bad("reports", "expected an array of tables ([[reports]])");
      return;
    }
    static const std::set<std::string> keys{"name", "table", "partition_column", "time_column",
                                            "user_column", "filter_columns", "group_by",
                                            "aggregates"};
    size_t i = 0;
    for (auto& el : *arr) {
      auto where = "reports[" + std::to_string(i++) + "]";
      auto t = el.as_table();
      if (!t) {
        err = bad(where, "expected a table");
        return;
      }
      for (auto& [k, v] : *t)
        if (keys.count(std::string{k.str()}) == 0) {
          err = bad(where + "." + std::string{k.str()}, "unknown key");
          return;
        }
      report_config r;
      // The key's node, or nothing (then `err` says so when the key is required).
      auto lookup = [&](const char* key, bool required) -> const toml::node* {
        if (err)
          return nullptr;
        auto* n = t->get(key);
        if (!n && required)
          err = bad(where + "." + key, "required");
        return n;
      };
      auto text = [&](const char* key, std::string& v, bool required) {
        auto* n = lookup(key, required);
        if (!n)
          return;
        if (auto s = n->value<std::string>())
          v = *s;
        else
          err = bad(where + "." + key, "expected a string");
      };
      auto list = [&](const char* key, std::vector<std::string>& v, bool required) {
        auto* n = lookup(key, required);
        if (!n)
          return;
        auto a = n->as_array();
        if (!a) {
          err = bad(where + "." + key, "expected an array of strings");
          return;
        }
        for (auto& x : *a) {
          auto s = x.value<std::string>();
          if (!s) {
            err = bad(where + "." + key, "expected an array of strings");
            return;
          }
          v.push_back(*s);
        }
      };
      text("name", r.name, true);
      text("table", r.table, true);
      text("partition_column", r.partition_column, false);
      text("time_column", r.time_column, false);
      text("user_column", r.user_column, false);
      list("filter_columns", r.filter_columns, false);
      list("group_by", r.group_by, true);
      list("aggregates", r.aggregates, true);
      if (err)
        return;
      out.push_back(std::move(r));
    }
  }

  void port(const char* sec, const char* key, uint16_t& out) {
    int64_t v = out;
    integer(sec, key, 0, 65535, v);
    out = static_cast<uint16_t>(v);
  }

  void millis(const char* sec, const char* key, std::chrono::milliseconds& out) {
    int64_t v = out.count();
    integer(sec, key, 1, 24 * 3600 * 1000, v);
    out = std::chrono::milliseconds{v};
  }

  void strings(const char* sec, const char* key, std::vector<std::string>& out) {
    if (err)
      return;
    auto node = root[sec][key];
    if (!node)
      return;
    auto arr = node.as_array();
    if (!arr) {
      err = bad(std::string(sec) + "." + key, "expected an array of strings");
      return;
    }
    std::vector<std::string> xs;
    for (auto& el : *arr) {
      auto v = el.value<std::string>();
      if (!v) {
        err = bad(std::string(sec) + "." + key, "expected an array of strings");
        return;
      }
      xs.push_back(*v);
    }
    out = std::move(xs);
  }
};

} // namespace

caf::expected<node_config> parse_node_config(const std::string& toml_text,
                                             const std::string& source) {
  toml::table root;
  try {
    root = toml::parse(toml_text, source);
  } catch (const toml::parse_error& e) {
    std::ostringstream os;
    os << source << ":" << e.source().begin.line << ":" << e.source().begin.column << ": "
       << e.description();
    return make_error(runtime_errc::bad_config, os.str());
  }
  node_config cfg;
  reader rd{root, source, caf::none};
  if (auto err = rd.check_known())
    return err;
  rd.str("node", "name", cfg.name);
  rd.str("node", "host", cfg.host);
  rd.port("node", "cluster_port", cfg.cluster_port);
  rd.port("node", "rpc_port", cfg.rpc_port);
  rd.port("node", "http_port", cfg.http_port);
  rd.str("node", "data_dir", cfg.data_dir);
  rd.strings("node", "roles", cfg.roles);
  rd.millis("node", "shutdown_timeout_ms", cfg.shutdown_timeout);
  int64_t threads = static_cast<int64_t>(cfg.worker_threads);
  rd.integer("node", "worker_threads", 1, 256, threads);
  cfg.worker_threads = static_cast<size_t>(threads);
  rd.str("log", "level", cfg.log_level);
  std::vector<std::string> seeds;
  rd.strings("cluster", "seeds", seeds);
  rd.millis("cluster", "heartbeat_ms", cfg.heartbeat_interval);
  rd.millis("cluster", "failure_timeout_ms", cfg.failure_timeout);
  rd.millis("cluster", "request_timeout_ms", cfg.request_timeout);
  std::string durability = to_string(cfg.durability);
  rd.str("state", "durability", durability);
  auto& an = cfg.analytics;
  rd.str("analytics", "dsn", an.dsn);
  rd.size("analytics", "readers", 1, 64, an.readers);
  rd.size("analytics", "partitions", 0, 4096, an.partitions);
  rd.size("analytics", "large_result_rows", 1, int64_t{1} << 32, an.large_result_rows);
  rd.millis("analytics", "default_deadline_ms", an.default_deadline);
  rd.size("analytics", "max_attempts", 1, 100, an.max_attempts);
  int64_t ttl = an.result_ttl.count();
  rd.integer("analytics", "result_ttl_s", 1, 30 * 24 * 3600, ttl);
  an.result_ttl = std::chrono::seconds{ttl};
  int64_t keep = an.keep_memory.count();
  rd.integer("analytics", "keep_memory_s", 0, 24 * 3600, keep);
  an.keep_memory = std::chrono::seconds{keep};
  rd.reports(cfg.reports);
  if (rd.err)
    return rd.err;
  for (auto& s : seeds) {
    auto ep = parse_endpoint(s, source + ": cluster.seeds");
    if (!ep)
      return ep.error();
    cfg.seeds.push_back(*ep);
  }
  if (durability == "sync")
    cfg.durability = durability_mode::sync;
  else if (durability == "group")
    cfg.durability = durability_mode::group;
  else
    return rd.bad("state.durability", "expected \"sync\" or \"group\", got \"" + durability + "\"");
  if (cfg.cluster_port == 0)
    return rd.bad("node.cluster_port", "must be 1..65535");
  return cfg;
}

caf::expected<node_config> load_node_config(const std::string& path) {
  std::ifstream in{path};
  if (!in)
    return make_error(runtime_errc::bad_config, path + ": cannot open config file");
  std::stringstream ss;
  ss << in.rdbuf();
  return parse_node_config(ss.str(), path);
}

std::string to_toml(const node_config& c) {
  std::ostringstream os;
  auto list = [&](const std::vector<std::string>& xs) {
    os << '[';
    for (size_t i = 0; i < xs.size(); ++i)
      os << (i ? ", " : "") << '"' << xs[i] << '"';
    os << "]\n";
  };
  os << "[node]\nname = \"" << c.name << "\"\nhost = \"" << c.host << "\"\ncluster_port = "
     << c.cluster_port << "\nrpc_port = " << c.rpc_port << "\nhttp_port = " << c.http_port
     << "\ndata_dir = \"" << c.data_dir << "\"\nroles = ";
  list(c.roles);
  os << "shutdown_timeout_ms = " << c.shutdown_timeout.count()
     << "\nworker_threads = " << c.worker_threads << "\n\n[cluster]\nseeds = ";
  std::vector<std::string> seeds;
  for (auto& s : c.seeds)
    seeds.push_back(s.host + ":" + std::to_string(s.port));
  list(seeds);
  os << "heartbeat_ms = " << c.heartbeat_interval.count()
     << "\nfailure_timeout_ms = " << c.failure_timeout.count()
     << "\nrequest_timeout_ms = " << c.request_timeout.count() << "\n\n[log]\nlevel = \""
     << c.log_level << "\"\n\n[state]\ndurability = \"" << to_string(c.durability) << "\"\n";
  auto& a = c.analytics;
  os << "\n[analytics]\ndsn = \"" << a.dsn << "\"  # empty = $WHARF_PG_DSN\nreaders = " << a.readers
     << "\npartitions = " << a.partitions << "  # 0 = 4 x worker threads in the cluster"
     << "\nlarge_result_rows = " << a.large_result_rows
     << "\ndefault_deadline_ms = " << a.default_deadline.count()
     << "\nmax_attempts = " << a.max_attempts << "\nresult_ttl_s = " << a.result_ttl.count()
     << "\nkeep_memory_s = " << a.keep_memory.count()
     << "  # freed report memory kept pooled after the last report\n";
  for (auto& r : c.reports) {
    os << "\n[[reports]]\nname = \"" << r.name << "\"\ntable = \"" << r.table
       << "\"\npartition_column = \"" << r.partition_column << "\"\ntime_column = \""
       << r.time_column << "\"\nuser_column = \"" << r.user_column << "\"\nfilter_columns = ";
    list(r.filter_columns);
    os << "group_by = ";
    list(r.group_by);
    os << "aggregates = ";
    list(r.aggregates);
  }
  return os.str();
}

} // namespace wharf::runtime
