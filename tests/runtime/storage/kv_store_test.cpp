#include "runtime/storage/kv_store.hpp"

#include <boost/test/unit_test.hpp>

#include "runtime/core/types.hpp"
#include "tests/support/temp_dir.hpp"

using namespace wharf;
using namespace wharf::runtime;

BOOST_AUTO_TEST_SUITE(kv_store_suite)

BOOST_AUTO_TEST_CASE(put_then_get_returns_value) {
  test::temp_dir dir;
  auto db = kv_store::open(dir.str());
  BOOST_REQUIRE(db);
  write_batch wb;
  wb.put(column::actor_state, "k", "v");
  BOOST_REQUIRE(!(*db)->write(wb, true));
  auto v = (*db)->get(column::actor_state, "k");
  BOOST_REQUIRE(v);
  BOOST_REQUIRE(v->has_value());
  BOOST_TEST(**v == "v");
  auto missing = (*db)->get(column::actor_state, "nope");
  BOOST_REQUIRE(missing);
  BOOST_TEST(!missing->has_value());
}

BOOST_AUTO_TEST_CASE(column_families_are_separate) {
  test::temp_dir dir;
  auto db = kv_store::open(dir.str());
  BOOST_REQUIRE(db);
  write_batch wb;
  wb.put(column::meta, "k", "meta");
  BOOST_REQUIRE(!(*db)->write(wb, false));
  auto v = (*db)->get(column::actor_state, "k");
  BOOST_REQUIRE(v);
  BOOST_TEST(!v->has_value());
}

BOOST_AUTO_TEST_CASE(state_survives_reopening) {
  test::temp_dir dir;
  {
    auto db = kv_store::open(dir.str());
    BOOST_REQUIRE(db);
    write_batch wb;
    wb.put(column::actor_state, state_prefix("a/b") + "x", "1");
    wb.put(column::actor_state, state_prefix("a/b") + "y", "2");
    BOOST_REQUIRE(!(*db)->write(wb, true));
  }
  auto db = kv_store::open(dir.str());
  BOOST_REQUIRE(db);
  auto xs = (*db)->scan(column::actor_state, state_prefix("a/b"));
  BOOST_REQUIRE(xs);
  BOOST_TEST(xs->size() == 2u);
  BOOST_TEST(xs->at("x") == "1");
  BOOST_TEST(xs->at("y") == "2");
}

BOOST_AUTO_TEST_CASE(scan_does_not_leak_into_sibling_paths) {
  test::temp_dir dir;
  auto db = kv_store::open(dir.str());
  BOOST_REQUIRE(db);
  write_batch wb;
  wb.put(column::actor_state, state_prefix("spolt/p1") + "k", "mine");
  wb.put(column::actor_state, state_prefix("spolt/p10") + "k", "sibling");
  wb.put(column::actor_state, state_prefix("spolt/p1/child") + "k", "child");
  BOOST_REQUIRE(!(*db)->write(wb, true));
  auto xs = (*db)->scan(column::actor_state, state_prefix("spolt/p1"));
  BOOST_REQUIRE(xs);
  BOOST_TEST(xs->size() == 1u);
  BOOST_TEST(xs->at("k") == "mine");
}

// paths_under lists each path holding state once (it seeks past the path's other keys),
// stays under the parent, skips keys that are not state keys, and stops at the limit.
BOOST_AUTO_TEST_CASE(paths_under_lists_each_state_path_once) {
  test::temp_dir dir;
  auto db = kv_store::open(dir.str());
  BOOST_REQUIRE(db);
  write_batch wb;
  for (auto path : {"r/a", "r/b", "r/b/c", "r/bb", "s/x"})
    for (auto key : {"meta", "page/00000000", "page/00000001"})
      wb.put(column::actor_state, state_prefix(path) + key, std::string(path) + key);
  wb.put(column::actor_state, "r/no-state-key", "x");
  wb.put(column::actor_state, "r/zz-no-state-key", "x");
  BOOST_REQUIRE(!(*db)->write(wb, true));
  auto xs = (*db)->paths_under(column::actor_state, "r/", 100);
  BOOST_REQUIRE(xs);
  BOOST_TEST((*xs == std::vector<std::string>{"r/a", "r/b", "r/b/c", "r/bb"}));
  auto two = (*db)->paths_under(column::actor_state, "r/", 2);
  BOOST_REQUIRE(two);
  BOOST_TEST((*two == std::vector<std::string>{"r/a", "r/b"}));
  auto none = (*db)->paths_under(column::actor_state, "q/", 100);
  BOOST_REQUIRE(none);
  BOOST_TEST(none->empty());
}

BOOST_AUTO_TEST_CASE(a_batch_applies_puts_and_deletes_together) {
  test::temp_dir dir;
  auto db = kv_store::open(dir.str());
  BOOST_REQUIRE(db);
  write_batch first;
  first.put(column::actor_state, "old", "1");
  BOOST_REQUIRE(!(*db)->write(first, true));
  write_batch second;
  second.del(column::actor_state, "old");
  second.put(column::actor_state, "new", "2");
  BOOST_REQUIRE(!(*db)->write(second, true));
  auto xs = (*db)->scan(column::actor_state, "");
  BOOST_REQUIRE(xs);
  BOOST_TEST(xs->size() == 1u);
  BOOST_TEST(xs->count("new") == 1u);
}

BOOST_AUTO_TEST_CASE(a_locked_directory_is_a_clear_error) {
  test::temp_dir dir;
  auto first = kv_store::open(dir.str());
  BOOST_REQUIRE(first);
  auto second = kv_store::open(dir.str());
  BOOST_REQUIRE(!second);
  BOOST_TEST((code_of(second.error()) == runtime_errc::storage_failure));
  BOOST_TEST(describe(second.error()).find("lock") != std::string::npos, describe(second.error()));
}

BOOST_AUTO_TEST_SUITE_END()
