#include "actors/analytics/user_behavior.hpp"

#include <cmath>
#include <cstdlib>
#include <unistd.h>

#include <boost/test/unit_test.hpp>

#include "actors/analytics/datagen.hpp"
#include "runtime/pg/pg_connection.hpp"
#include "tests/support/expect.hpp"
#include "tests/support/pg_test.hpp"

using namespace wharf;
using namespace wharf::actors;

namespace {

struct report_fixture {
  std::unique_ptr<runtime::pg_connection> pg;
  std::string table = "wharf_test_" + std::to_string(::getpid()) + "_ub";

  report_fixture() : pg(test::connect_test_pg()) {
    if (!pg)
      return;
    datagen_options o;
    o.table = table;
    o.rows = 20000;
    o.users = 150;
    o.seed = 42;
    o.replace = true;
    auto r = generate_user_events(*pg, o);
    BOOST_REQUIRE_MESSAGE(r, test::why(r));
  }

  ~report_fixture() {
    if (pg) {
      auto r = pg->query("DROP TABLE IF EXISTS " + pg->quote_identifier(table));
      (void) r;
    }
  }

  void exec(const std::string& sql) {
    auto r = pg->query(sql);
    BOOST_REQUIRE_MESSAGE(r, sql << ": " << test::why(r));
  }

  user_behavior_request req(std::string start, std::string end) {
    user_behavior_request r;
    r.table = table;
    r.start = std::move(start);
    r.end = std::move(end);
    return r;
  }

  // The partitioned pushdown answer for `r` split into `n` id ranges.
  std::vector<user_behavior_row> partitioned(const user_behavior_request& r, size_t n) {
    auto bounds = user_behavior_id_bounds(*pg, r);
    BOOST_REQUIRE_MESSAGE(bounds, test::why(bounds));
    user_behavior_partials all;
    if (*bounds)
      for (auto [lo, hi] : split_id_range((*bounds)->first, (*bounds)->second, n)) {
        auto part = user_behavior_pushdown(*pg, r, lo, hi);
        BOOST_REQUIRE_MESSAGE(part, test::why(part));
        merge(all, *part);
      }
    return finalize(all);
  }

  void check_equal(const std::vector<user_behavior_row>& got,
                   const std::vector<user_behavior_row>& want) {
    BOOST_REQUIRE_EQUAL(got.size(), want.size());
    for (size_t i = 0; i < got.size(); ++i) {
      BOOST_TEST(got[i].user_id == want[i].user_id, "row " << i);
      BOOST_TEST(got[i].event_type == want[i].event_type, "row " << i);
      BOOST_TEST(got[i].event_count == want[i].event_count, "row " << i);
      BOOST_REQUIRE(got[i].avg_value.has_value() == want[i].avg_value.has_value());
      if (got[i].avg_value)
        BOOST_TEST(*got[i].avg_value == *want[i].avg_value, boost::test_tools::tolerance(1e-9));
    }
  }
};

} // namespace

BOOST_AUTO_TEST_SUITE(user_behavior)

BOOST_AUTO_TEST_CASE(id_ranges_cover_exactly_without_overlap) {
  for (auto [lo, hi, n] : {std::tuple<int64_t, int64_t, size_t>{1, 10, 3}, {5, 5, 4}, {1, 1000003, 16}, {-7, 9, 5}}) {
    auto parts = split_id_range(lo, hi, n);
    BOOST_REQUIRE(!parts.empty());
    BOOST_TEST(parts.front().first == lo);
    BOOST_TEST(parts.back().second == hi + 1);
    for (size_t i = 1; i < parts.size(); ++i)
      BOOST_TEST(parts[i].first == parts[i - 1].second);
    BOOST_TEST(parts.size() <= n);
  }
  BOOST_TEST(split_id_range(10, 9, 4).empty());
}

BOOST_FIXTURE_TEST_CASE(partitions_merge_to_the_single_sql_answer, report_fixture) {
  if (!pg)
    return;
  auto r = req("2025-03-01", "2025-06-30");
  auto truth = user_behavior_single_sql(*pg, r);
  BOOST_REQUIRE_MESSAGE(truth, test::why(truth));
  BOOST_TEST(truth->size() > 1000u); // 150 users x 8 types, nearly all present
  for (size_t n : {1u, 4u, 7u, 64u})
    check_equal(partitioned(r, n), *truth);
}

BOOST_FIXTURE_TEST_CASE(user_filters_nulls_and_skewed_ids_agree_too, report_fixture) {
  if (!pg)
    return;
  exec("UPDATE " + pg->quote_identifier(table) + " SET value = NULL WHERE id % 10 = 0 OR user_id = 5");
  exec("UPDATE " + pg->quote_identifier(table) + " SET id = id + 1000000000 WHERE id > 19990");
  auto r = req("2025-01-01", "2025-12-31 23:59:59");
  r.user_ids = {5, 6, 7, 999999};
  auto truth = user_behavior_single_sql(*pg, r);
  BOOST_REQUIRE(truth);
  BOOST_TEST(!truth->empty());
  bool all_null_group = false;
  for (auto& row : *truth) {
    BOOST_TEST((row.user_id == 5 || row.user_id == 6 || row.user_id == 7));
    all_null_group |= row.user_id == 5 && !row.avg_value;
  }
  BOOST_TEST(all_null_group); // avg over only NULLs is NULL, and stays so after merging
  check_equal(partitioned(r, 5), *truth);
  check_equal(partitioned(req("2025-01-01", "2025-12-31 23:59:59"), 8),
              *user_behavior_single_sql(*pg, req("2025-01-01", "2025-12-31 23:59:59")));
}

BOOST_FIXTURE_TEST_CASE(a_range_without_rows_is_an_empty_report, report_fixture) {
  if (!pg)
    return;
  auto r = req("2030-01-01", "2030-12-31");
  auto bounds = user_behavior_id_bounds(*pg, r);
  BOOST_REQUIRE(bounds);
  BOOST_TEST(!bounds->has_value());
  BOOST_TEST(partitioned(r, 4).empty());
  BOOST_TEST(user_behavior_single_sql(*pg, r)->empty());
}

BOOST_FIXTURE_TEST_CASE(a_bare_end_date_means_its_midnight, report_fixture) {
  if (!pg)
    return;
  exec("INSERT INTO " + pg->quote_identifier(table)
       + " VALUES (99000001, 777, 'click', '2027-03-01 12:00', 1.0)");
  BOOST_TEST(partitioned(req("2027-01-01", "2027-03-01"), 2).empty());
  auto rows = partitioned(req("2027-01-01", "2027-03-01 12:00:00"), 2);
  BOOST_REQUIRE_EQUAL(rows.size(), 1u);
  BOOST_TEST(rows[0].user_id == 777);
  BOOST_TEST(rows[0].event_count == 1);
}

BOOST_FIXTURE_TEST_CASE(injection_in_values_is_just_a_bad_value, report_fixture) {
  if (!pg)
    return;
  auto r = req("2025-01-01'; DROP TABLE " + table + "; --", "2025-02-01");
  auto res = user_behavior_single_sql(*pg, r);
  BOOST_REQUIRE(!res);
  BOOST_TEST(test::why(res).find("22007") != std::string::npos, test::why(res)); // invalid datetime
  auto part = user_behavior_pushdown(*pg, r, 1, 100);
  BOOST_REQUIRE(!part);
  auto count = pg->query("SELECT count(*) FROM " + pg->quote_identifier(table));
  BOOST_REQUIRE(count);
  BOOST_TEST(*count->rows[0][0] == "20000");
}

BOOST_AUTO_TEST_SUITE_END()
