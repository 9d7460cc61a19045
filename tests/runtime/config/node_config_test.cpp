#include "runtime/config/node_config.hpp"

#include <boost/test/unit_test.hpp>

#include "runtime/config/config_section.hpp"
#include "runtime/core/types.hpp"
#include "runtime/module/service_module.hpp"
#include "tests/support/expect.hpp"

using namespace wharf::runtime;

namespace {

std::string error_of(const std::string& toml) {
  auto cfg = parse_node_config(toml, "node.toml");
  if (cfg)
    return "";
  return wharf::test::why(cfg);
}

} // namespace

BOOST_AUTO_TEST_SUITE(node_config_suite)

BOOST_AUTO_TEST_CASE(defaults_are_valid) {
  node_config cfg;
  BOOST_TEST(!cfg.validate());
}

BOOST_AUTO_TEST_CASE(a_full_file_is_read) {
  auto cfg = parse_node_config(R"(
[node]
name = "n7"
host = "127.0.0.2"
cluster_port = 8100
rpc_port = 0
http_port = 8102
data_dir = "/var/lib/wharf"
roles = ["worker", "gateway"]
shutdown_timeout_ms = 1000
worker_threads = 4
[cluster]
seeds = ["127.0.0.1:7100", "localhost:7110"]
heartbeat_ms = 100
failure_timeout_ms = 900
request_timeout_ms = 2000
[log]
level = "debug"
[state]
durability = "group"
)", "node.toml");
  BOOST_REQUIRE_MESSAGE(cfg, wharf::test::why(cfg));
  BOOST_TEST(cfg->name == "n7");
  BOOST_TEST(cfg->host == "127.0.0.2");
  BOOST_TEST(cfg->cluster_port == 8100);
  BOOST_TEST(cfg->rpc_port == 0);
  BOOST_TEST(cfg->roles.size() == 2u);
  BOOST_TEST(cfg->worker_threads == 4u);
  BOOST_TEST(cfg->seeds.size() == 2u);
  BOOST_TEST(cfg->seeds[1].host == "localhost");
  BOOST_TEST(cfg->seeds[1].port == 7110);
  BOOST_TEST(cfg->heartbeat_interval.count() == 100);
  BOOST_TEST(cfg->failure_timeout.count() == 900);
  BOOST_TEST((cfg->durability == durability_mode::group));
  BOOST_TEST(cfg->log_level == "debug");
  BOOST_TEST(!cfg->validate());
}

BOOST_AUTO_TEST_CASE(the_dump_reads_back_identically) {
  node_config cfg;
  cfg.name = "x";
  cfg.seeds = {{"127.0.0.1", 7100}};
  cfg.durability = durability_mode::group;
  auto back = parse_node_config(to_toml(cfg), "dump");
  BOOST_REQUIRE_MESSAGE(back, wharf::test::why(back));
  BOOST_TEST(to_toml(*back) == to_toml(cfg));
}

BOOST_AUTO_TEST_CASE(errors_name_the_key) {
  BOOST_TEST(error_of("[node]\ncluster_port = \"x\"\n").find("node.cluster_port: expected an integer")
             != std::string::npos);
  BOOST_TEST(error_of("[node]\ncluster_port = 70000\n").find("node.cluster_port: must be 0..65535")
             != std::string::npos);
  BOOST_TEST(error_of("[node]\nnmae = \"n1\"\n").find("node.nmae: unknown key") != std::string::npos);
  BOOST_TEST(error_of("[nodes]\n").find("nodes: unknown section") != std::string::npos);
  BOOST_TEST(error_of("[cluster]\nseeds = [\"nohost\"]\n").find("cluster.seeds: expected host:port")
             != std::string::npos);
  BOOST_TEST(error_of("[cluster]\nseeds = \"a:1\"\n").find("cluster.seeds: expected an array")
             != std::string::npos);
  BOOST_TEST(error_of("[state]\ndurability = \"often\"\n").find("state.durability") != std::string::npos);
  BOOST_TEST(error_of("[node]\nname = \n").find("node.toml:2") != std::string::npos);
}

BOOST_AUTO_TEST_CASE(cross_field_rules_are_checked) {
  node_config cfg;
  cfg.failure_timeout = cfg.heartbeat_interval;
  auto err = cfg.validate();
  BOOST_REQUIRE(err);
  BOOST_TEST(describe(err).find("cluster.failure_timeout_ms") != std::string::npos);
  node_config bad_name;
  bad_name.name = "a b";
  BOOST_TEST(describe(bad_name.validate()).find("node.name") != std::string::npos);
}

namespace {

// A module with one section and one array of tables, as a service declares them.
struct sample_module final : service_module {
  struct item {
    std::string name;
    std::vector<std::string> tags;
  };
  std::string mode = "fast";
  size_t depth = 3;
  std::vector<item> items;
  const char* name() const override { return "sample"; }
  const char* summary() const override { return "a sample"; }
  void configure(config_root& root) override {
    root.section("sample", summary(), [this](config_section& s) {
      s.choice("mode", mode, {"fast", "slow"}, "how");
      s.count("depth", depth, 1, 9, "how deep");
    });
    root.tables<item>("items", "things", items, [](config_section& s, item& x) {
      s.text("name", x.name, "its name").required("name");
      s.texts("tags", x.tags, "labels");
    });
  }
};

} // namespace

BOOST_AUTO_TEST_CASE(a_module_reads_dumps_and_documents_its_sections) {
  sample_module m;
  auto cfg = parse_node_config("[sample]\nmode = \"slow\"\n[[items]]\nname = \"a\"\ntags = [\"x\"]\n"
                               "[[items]]\nname = \"b\"\n",
                               "node.toml", {&m});
  BOOST_REQUIRE_MESSAGE(cfg, wharf::test::why(cfg));
  BOOST_TEST(m.mode == "slow");
  BOOST_TEST(m.depth == 3u);
  BOOST_REQUIRE(m.items.size() == 2u);
  BOOST_TEST(m.items[1].name == "b");
  auto dump = to_toml(*cfg, {&m});
  BOOST_TEST(dump.find("[sample]\nmode = \"slow\"\ndepth = 3\n") != std::string::npos, dump);
  BOOST_TEST(dump.find("[[items]]\nname = \"a\"\ntags = [\"x\"]\n") != std::string::npos, dump);
  sample_module again;
  auto back = parse_node_config(dump, "dump", {&again});
  BOOST_REQUIRE_MESSAGE(back, wharf::test::why(back));
  BOOST_TEST(to_toml(*back, {&again}) == dump);
  auto help = describe_config({&m});
  BOOST_TEST(help.find("[sample]  a sample") != std::string::npos, help);
  BOOST_TEST(help.find("[[items]]  things (repeatable)") != std::string::npos, help);
}

BOOST_AUTO_TEST_CASE(a_module_section_fails_like_the_nodes_own) {
  auto error = [](const std::string& toml) {
    sample_module m;
    auto cfg = parse_node_config(toml, "node.toml", {&m});
    return cfg ? std::string{} : wharf::test::why(cfg);
  };
  BOOST_TEST(error("[sample]\ndepht = 2\n") == "bad_config: node.toml: sample.depht: unknown key");
  BOOST_TEST(error("[sample]\ndepth = 10\n") == "bad_config: node.toml: sample.depth: must be 1..9, got 10");
  BOOST_TEST(error("[sample]\nmode = \"odd\"\n")
             == "bad_config: node.toml: sample.mode: expected \"fast\" or \"slow\", got \"odd\"");
  BOOST_TEST(error("[[items]]\ntags = []\n") == "bad_config: node.toml: items[0].name: required");
  BOOST_TEST(error("[[items]]\nname = \"a\"\nnope = 1\n") == "bad_config: node.toml: items[0].nope: unknown key");
  // An unknown key wins over a bad value elsewhere: a typo is the likelier mistake.
  BOOST_TEST(error("[sample]\ndepth = 10\n[cluster]\nheartbeet_ms = 1\n")
             == "bad_config: node.toml: cluster.heartbeet_ms: unknown key");
  BOOST_TEST(error("[nodes]\n").find("unknown section (expected node, cluster, log, state, sample or items)")
             != std::string::npos, error("[nodes]\n"));
}

BOOST_AUTO_TEST_CASE(endpoints_parse_or_explain) {
  auto ok = parse_endpoint("10.0.0.1:7100", "--seed");
  BOOST_REQUIRE(ok);
  BOOST_TEST(ok->port == 7100);
  BOOST_TEST(describe(parse_endpoint("host:0", "--seed").error()).find("--seed: port must be")
             != std::string::npos);
  BOOST_TEST(describe(parse_endpoint(":80", "--seed").error()).find("expected host:port")
             != std::string::npos);
}

BOOST_AUTO_TEST_SUITE_END()
