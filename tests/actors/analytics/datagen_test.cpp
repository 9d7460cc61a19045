#include "actors/analytics/datagen.hpp"

#include <cstdlib>
#include <unistd.h>

#include <boost/test/unit_test.hpp>

#include "runtime/core/types.hpp"
#include "runtime/pg/pg_connection.hpp"
#include "tests/support/expect.hpp"
#include "tests/support/pg_test.hpp"

using namespace wharf;
using actors::datagen_options;
using actors::generate_user_events;

namespace {

/// A connection to the PostgreSQL named by WHARF_PG_DSN (tests/run.sh starts one). Without it
/// the case is skipped loudly on a laptop, and fails under CI, where a skip would hide it.
struct pg_fixture {
  std::unique_ptr<runtime::pg_connection> pg;
  std::vector<std::string> tables;

  pg_fixture() : pg(test::connect_test_pg()) {}

  ~pg_fixture() {
    for (auto& t : tables)
      if (pg) {
        auto r = pg->query("DROP TABLE IF EXISTS " + pg->quote_identifier(t));
        (void) r;
      }
  }

  std::string table(const std::string& tag) {
    tables.push_back("wharf_test_" + std::to_string(::getpid()) + "_" + tag);
    return tables.back();
  }

  std::string scalar(const std::string& sql) {
    auto r = pg->query(sql);
    BOOST_REQUIRE_MESSAGE(r, sql << ": " << test::why(r));
    BOOST_REQUIRE(!r->rows.empty());
    return r->rows[0][0].value_or("NULL");
  }

  datagen_options opts(const std::string& t, uint64_t rows, uint64_t users, uint64_t seed) {
    datagen_options o;
    o.table = t;
    o.rows = rows;
    o.users = users;
    o.seed = seed;
    return o;
  }
};

} // namespace

BOOST_FIXTURE_TEST_SUITE(datagen, pg_fixture)

BOOST_AUTO_TEST_CASE(loads_the_requested_rows_with_the_promised_shape) {
  if (!pg)
    return;
  auto t = table("shape");
  auto res = generate_user_events(*pg, opts(t, 20000, 500, 3));
  BOOST_REQUIRE_MESSAGE(res, test::why(res));
  BOOST_TEST(res->rows == 20000u);
  auto q = pg->quote_identifier(t);
  BOOST_TEST(scalar("SELECT count(*) FROM " + q) == "20000");
  BOOST_TEST(scalar("SELECT min(id) || '-' || max(id) FROM " + q) == "1-20000");
  auto users = std::stoi(scalar("SELECT count(DISTINCT user_id) FROM " + q));
  BOOST_TEST(users <= 500);
  BOOST_TEST(users > 480); // 20000 draws over 500 users hit nearly all of them
  BOOST_TEST(scalar("SELECT count(DISTINCT event_type) FROM " + q) == "8");
  BOOST_TEST(scalar("SELECT bool_and(event_timestamp >= '2025-01-01' AND event_timestamp < "
                    "'2026-01-01') FROM " + q) == "t");
  BOOST_TEST(scalar("SELECT bool_and(value >= 0 AND value < 1000) FROM " + q) == "t");
  // Time does not follow id: id ranges must not prune by time.
  auto corr = std::stod(scalar("SELECT corr(id, extract(epoch FROM event_timestamp)) FROM " + q));
  BOOST_TEST(std::abs(corr) < 0.05);
  BOOST_TEST(scalar("SELECT count(*) FROM pg_index WHERE indrelid = to_regclass('" + q
                    + "') AND indisprimary") == "1");
}

BOOST_AUTO_TEST_CASE(the_same_seed_gives_the_same_rows) {
  if (!pg)
    return;
  auto a = table("seed_a"), b = table("seed_b"), c = table("seed_c");
  BOOST_REQUIRE(generate_user_events(*pg, opts(a, 3000, 100, 9)));
  BOOST_REQUIRE(generate_user_events(*pg, opts(b, 3000, 100, 9)));
  BOOST_REQUIRE(generate_user_events(*pg, opts(c, 3000, 100, 10)));
  auto differ = [&](const std::string& x, const std::string& y) {
    return std::stoi(scalar("SELECT count(*) FROM (SELECT * FROM " + pg->quote_identifier(x)
                            + " EXCEPT SELECT * FROM " + pg->quote_identifier(y) + ") d"));
  };
  BOOST_TEST(differ(a, b) == 0);
  BOOST_TEST(differ(b, a) == 0);
  BOOST_TEST(differ(a, c) > 2900);
}

BOOST_AUTO_TEST_CASE(an_existing_table_is_kept_unless_replace_is_given) {
  if (!pg)
    return;
  auto t = table("keep");
  BOOST_REQUIRE(generate_user_events(*pg, opts(t, 100, 10, 1)));
  auto again = generate_user_events(*pg, opts(t, 5, 10, 1));
  BOOST_REQUIRE(!again);
  BOOST_TEST((runtime::code_of(again.error()) == runtime::runtime_errc::bad_request));
  BOOST_TEST(test::why(again).find("--replace") != std::string::npos);
  BOOST_TEST(scalar("SELECT count(*) FROM " + pg->quote_identifier(t)) == "100");
  auto o = opts(t, 5, 10, 1);
  o.replace = true;
  BOOST_REQUIRE(generate_user_events(*pg, o));
  BOOST_TEST(scalar("SELECT count(*) FROM " + pg->quote_identifier(t)) == "5");
}

BOOST_AUTO_TEST_CASE(a_hostile_table_name_is_only_ever_a_name) {
  if (!pg)
    return;
  auto victim = table("victim");
  BOOST_REQUIRE(generate_user_events(*pg, opts(victim, 10, 10, 1)));
  auto evil = table("x\"; DROP TABLE " + victim + "; --");
  auto res = generate_user_events(*pg, opts(evil, 10, 10, 1));
  BOOST_REQUIRE_MESSAGE(res, test::why(res));
  BOOST_TEST(scalar("SELECT count(*) FROM " + pg->quote_identifier(victim)) == "10");
  BOOST_TEST(scalar("SELECT count(*) FROM " + pg->quote_identifier(evil)) == "10");
}

BOOST_AUTO_TEST_CASE(server_errors_carry_the_sqlstate_and_the_connection_stays_usable) {
  if (!pg)
    return;
  auto t = table("nope");
  auto o = opts("no_such_schema_wharf." + t, 10, 10, 1);
  auto res = generate_user_events(*pg, o);
  BOOST_REQUIRE(!res);
  BOOST_TEST(test::why(res).find("3F000") != std::string::npos, test::why(res)); // invalid_schema_name
  BOOST_TEST(scalar("SELECT 1") == "1"); // the connection is still usable (rolled back)
}

BOOST_AUTO_TEST_SUITE_END()
