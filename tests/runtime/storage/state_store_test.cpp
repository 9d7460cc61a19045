#include "runtime/storage/state_store.hpp"

#include <map>

#include <boost/test/unit_test.hpp>

#include "runtime/core/metrics.hpp"
#include "runtime/storage/kv_store.hpp"
#include "tests/support/actor_fixture.hpp"
#include "tests/support/temp_dir.hpp"

using namespace wharf;
using namespace wharf::runtime;
using string_map = std::map<std::string, std::string>;

namespace {

struct fixture : test::actor_fixture {
  test::temp_dir dir;
  std::shared_ptr<kv_store> db;
  std::shared_ptr<node_metrics> metrics = std::make_shared<node_metrics>();

  fixture() {
    auto opened = kv_store::open(dir.str());
    if (!opened)
      throw std::runtime_error(describe(opened.error()));
    db = std::move(*opened);
  }

  caf::actor spawn_store(durability_mode mode) { return sys.spawn(state_store_impl, db, mode, metrics); }

  // Sends `n` persists without running in between, then runs once: what a busy node sees.
  std::vector<caf::error> persist_burst(caf::actor store, int n) {
    std::vector<decltype(self->request(store, caf::infinite, persist_atom::value, std::string{},
                                       string_map{}, std::vector<std::string>{}))>
      handles;
    for (int i = 0; i < n; ++i)
      handles.push_back(self->request(store, caf::infinite, persist_atom::value,
                                      std::string{"svc/a"},
                                      string_map{{"k" + std::to_string(i), std::to_string(i)}},
                                      std::vector<std::string>{}));
    run();
    std::vector<caf::error> errors;
    for (auto& h : handles)
      h.receive([&](caf::ok_atom) { errors.emplace_back(); },
                [&](caf::error& e) { errors.push_back(e); });
    return errors;
  }
};

} // namespace

BOOST_FIXTURE_TEST_SUITE(state_store, fixture)

BOOST_AUTO_TEST_CASE(persisted_state_is_restored_by_path) {
  auto store = spawn_store(durability_mode::sync);
  auto ok = ask<caf::ok_atom>(store, persist_atom::value, std::string{"svc/a"},
                              string_map{{"x", "1"}, {"y", "2"}}, std::vector<std::string>{});
  BOOST_REQUIRE(ok);
  ok = ask<caf::ok_atom>(store, persist_atom::value, std::string{"svc/a"},
                         string_map{{"z", "3"}}, std::vector<std::string>{"x"});
  BOOST_REQUIRE(ok);
  auto restored = ask<string_map>(store, restore_atom::value, std::string{"svc/a"});
  BOOST_REQUIRE(restored);
  BOOST_TEST((*restored == string_map{{"y", "2"}, {"z", "3"}}));
  auto other = ask<string_map>(store, restore_atom::value, std::string{"svc/b"});
  BOOST_REQUIRE(other);
  BOOST_TEST(other->empty());
}

BOOST_AUTO_TEST_CASE(sync_mode_commits_each_write_on_its_own) {
  auto store = spawn_store(durability_mode::sync);
  auto errors = persist_burst(store, 8);
  BOOST_TEST(errors.size() == 8u);
  for (auto& e : errors)
    BOOST_TEST(!e);
  BOOST_TEST(metrics->state_commits.load() == 8u);
  BOOST_TEST(metrics->state_writes.load() == 8u);
}

BOOST_AUTO_TEST_CASE(group_mode_commits_writes_in_flight_together) {
  auto store = spawn_store(durability_mode::group);
  auto errors = persist_burst(store, 8);
  BOOST_TEST(errors.size() == 8u);
  for (auto& e : errors)
    BOOST_TEST(!e);
  BOOST_TEST(metrics->state_commits.load() == 1u); // one fsync'd batch for all eight
  BOOST_TEST(metrics->state_writes.load() == 8u);
  auto restored = ask<string_map>(store, restore_atom::value, std::string{"svc/a"});
  BOOST_REQUIRE(restored);
  BOOST_TEST(restored->size() == 8u);
}

BOOST_AUTO_TEST_CASE(state_outlives_the_store_actor) {
  {
    auto store = spawn_store(durability_mode::group);
    BOOST_REQUIRE(ask<caf::ok_atom>(store, persist_atom::value, std::string{"p"},
                                    string_map{{"k", "v"}}, std::vector<std::string>{}));
    caf::anon_send_exit(store, caf::exit_reason::user_shutdown);
    run();
  }
  auto again = spawn_store(durability_mode::sync);
  auto restored = ask<string_map>(again, restore_atom::value, std::string{"p"});
  BOOST_REQUIRE(restored);
  BOOST_TEST((*restored == string_map{{"k", "v"}}));
}

BOOST_AUTO_TEST_SUITE_END()
