#pragma once
/// The PostgreSQL that tests/run.sh starts, named by WHARF_PG_DSN. Without it a `pg` test is
/// skipped loudly on a laptop (ctest shows the executable as skipped, not passed) and fails
/// under CI or tests/run.sh (CI or WHARF_REQUIRE_PG set), where a skip would hide a gap.

#include <cstdlib>
#include <memory>

#include <boost/test/unit_test.hpp>

#include "runtime/pg/pg_connection.hpp"
#include "tests/support/expect.hpp"

namespace wharf::test {

/// A connection, or null when the test must be skipped (after saying so).
inline std::unique_ptr<runtime::pg_connection> connect_test_pg() {
  auto dsn = std::getenv("WHARF_PG_DSN");
  if (!dsn) {
    if (std::getenv("CI") || std::getenv("WHARF_REQUIRE_PG"))
      BOOST_FAIL("WHARF_PG_DSN is not set under CI or tests/run.sh: PostgreSQL must run");
    BOOST_TEST_MESSAGE("SKIPPED: WHARF_PG_DSN is not set (run through tests/run.sh)");
    return nullptr;
  }
  auto c = runtime::pg_connection::open(dsn);
  BOOST_REQUIRE_MESSAGE(c, "cannot connect to WHARF_PG_DSN: " << why(c));
  return std::move(*c);
}

} // namespace wharf::test
