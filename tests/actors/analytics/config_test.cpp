#include "actors/analytics/config.hpp"

#include <boost/test/unit_test.hpp>

#include "actors/analytics/module.hpp"
#include "runtime/config/node_config.hpp"
#include "tests/support/expect.hpp"

using namespace wharf;

namespace {

std::string error_of(const std::string& toml) {
  actors::analytics_module m;
  auto cfg = runtime::parse_node_config(toml, "node.toml", {&m});
  return cfg ? std::string{} : test::why(cfg);
}

} // namespace

BOOST_AUTO_TEST_SUITE(analytics_config_suite)

BOOST_AUTO_TEST_CASE(report_memory_keeping_is_read_and_bounded) {
  BOOST_TEST(actors::analytics_config{}.keep_memory.count() == 300);
  actors::analytics_module m;
  auto cfg = runtime::parse_node_config("[analytics]\nkeep_memory_s = 0\n", "node.toml", {&m});
  BOOST_REQUIRE_MESSAGE(cfg, test::why(cfg));
  BOOST_TEST(m.settings().analytics.keep_memory.count() == 0);
  BOOST_TEST(error_of("[analytics]\nkeep_memory_s = -1\n").find("analytics.keep_memory_s")
             != std::string::npos);
  BOOST_TEST(error_of("[analytics]\nkeep_memory_s = \"1m\"\n").find("analytics.keep_memory_s")
             != std::string::npos);
}

BOOST_AUTO_TEST_CASE(reports_are_read_and_their_keys_checked) {
  actors::analytics_module m;
  auto cfg = runtime::parse_node_config("[[reports]]\nname = \"a\"\ntable = \"t\"\n"
                                        "group_by = [\"k\"]\naggregates = [\"count(*)\"]\n",
                                        "node.toml", {&m});
  BOOST_REQUIRE_MESSAGE(cfg, test::why(cfg));
  BOOST_REQUIRE(m.settings().reports.size() == 1u);
  BOOST_TEST(m.settings().reports[0].partition_column == "id");
  BOOST_TEST(error_of("[[reports]]\nname = \"a\"\n") == "bad_config: node.toml: reports[0].table: required");
  BOOST_TEST(error_of("[[reports]]\nname = \"a\"\ntable = \"t\"\ngroup_by = [\"k\"]\n"
                      "aggregates = [\"count(*)\"]\ncolour = 1\n")
             == "bad_config: node.toml: reports[0].colour: unknown key");
  BOOST_TEST(error_of("[analytics]\nmax_running_reports = 0\n")
             == "bad_config: node.toml: analytics.max_running_reports: must be 1..256, got 0");
}

BOOST_AUTO_TEST_CASE(the_dump_holds_every_key_and_reads_back) {
  actors::analytics_module m;
  auto cfg = runtime::parse_node_config("[analytics]\nreaders = 3\n", "node.toml", {&m});
  BOOST_REQUIRE(cfg);
  auto dump = runtime::to_toml(*cfg, {&m});
  for (auto key : {"dsn", "readers = 3", "partitions", "large_result_rows", "default_deadline_ms",
                   "max_attempts", "result_ttl_s", "keep_memory_s", "max_running_reports",
                   "max_queued_reports", "queue_wait_ms"})
    BOOST_TEST(dump.find(key) != std::string::npos, key);
  actors::analytics_module again;
  auto back = runtime::parse_node_config(dump, "dump", {&again});
  BOOST_REQUIRE_MESSAGE(back, test::why(back));
  BOOST_TEST(runtime::to_toml(*back, {&again}) == dump);
}

BOOST_AUTO_TEST_SUITE_END()
