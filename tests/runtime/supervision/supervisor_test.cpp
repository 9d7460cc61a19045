#include "runtime/supervision/supervisor.hpp"

#include <algorithm>
#include <map>

#include <boost/test/unit_test.hpp>

#include "runtime/core/metrics.hpp"
#include "tests/support/actor_fixture.hpp"
#include "tests/support/expect.hpp"

using namespace wharf;
using namespace wharf::runtime;
using protocols::actor_entry;

namespace {

using crash_atom = caf::atom_constant<caf::atom("crash")>;
using finish_atom = caf::atom_constant<caf::atom("finish")>;

/// What the test workers report: "start PATH" and "stop PATH", in order.
using journal = std::shared_ptr<std::vector<std::string>>;

caf::behavior test_worker(caf::event_based_actor* self, child_context ctx, journal log,
                          bool ignore_exit) {
  log->push_back("start " + ctx.path);
  self->attach_functor([log, path = ctx.path] { log->push_back("stop " + path); });
  if (ignore_exit)
    self->set_exit_handler([](caf::exit_msg&) {}); // a child that never stops by itself
  return {
    [=](crash_atom) { self->quit(make_error(runtime_errc::bad_request, "boom")); },
    [=](finish_atom) { self->quit(); },
    [=](probe_atom) -> uint64_t { return self->mailbox().size(); },
  };
}

child_spec worker(const std::string& name, restart_type rt, journal log,
                  bool ignore_exit = false) {
  return worker_child(name, rt, test_worker, log, ignore_exit);
}

struct fixture : test::actor_fixture {
  journal log = std::make_shared<std::vector<std::string>>();
  std::shared_ptr<node_metrics> metrics = std::make_shared<node_metrics>();
  caf::actor root;

  // Supervisors and their linked children keep each other alive; the actor system's
  // destructor would wait for them forever.
  ~fixture() override {
    if (root) {
      caf::anon_send_exit(root, caf::exit_reason::kill);
      run();
    }
  }

  void start(supervisor_spec spec) {
    root = spawn_root_supervisor(sys, std::move(spec), metrics);
    self->monitor(root);
    run();
  }

  caf::actor whereis(const std::string& path) {
    auto h = ask<caf::actor>(root, whereis_atom::value, path);
    BOOST_REQUIRE_MESSAGE(h, "whereis " << path << ": " << test::why(h));
    return *h;
  }

  void send(const std::string& path, caf::atom_value what) {
    auto h = whereis(path);
    if (what == crash_atom::value)
      self->send(h, crash_atom::value);
    else
      self->send(h, finish_atom::value);
    run();
  }

  size_t count(const std::string& entry) const {
    return static_cast<size_t>(std::count(log->begin(), log->end(), entry));
  }

  std::map<std::string, actor_entry> tree() {
    auto xs = ask<std::vector<actor_entry>>(root, tree_atom::value);
    BOOST_REQUIRE(xs);
    std::map<std::string, actor_entry> out;
    for (auto& e : *xs)
      out[e.path] = e;
    return out;
  }

  bool root_exited(caf::error* reason = nullptr) {
    bool down = false;
    self->receive([&](caf::down_msg& dm) {
      down = true;
      if (reason)
        *reason = dm.reason;
    }, caf::after(std::chrono::seconds(0)) >> [] {});
    return down;
  }
};

supervisor_spec three(restart_strategy s, journal log, size_t max_restarts = 5) {
  supervisor_spec spec;
  spec.name = "root";
  spec.strategy = s;
  spec.max_restarts = max_restarts;
  spec.window = std::chrono::seconds{10};
  spec.shutdown_timeout = std::chrono::seconds{1};
  spec.children = {worker("a", restart_type::permanent, log),
                   worker("b", restart_type::permanent, log),
                   worker("c", restart_type::permanent, log)};
  return spec;
}

} // namespace

BOOST_FIXTURE_TEST_SUITE(supervisor, fixture)

BOOST_AUTO_TEST_CASE(children_start_in_order) {
  start(three(restart_strategy::one_for_one, log));
  BOOST_TEST(*log == (std::vector<std::string>{"start a", "start b", "start c"}),
             boost::test_tools::per_element());
}

BOOST_AUTO_TEST_CASE(one_for_one_restarts_only_the_failed_child) {
  start(three(restart_strategy::one_for_one, log));
  auto a = whereis("a"), b = whereis("b"), c = whereis("c");
  send("b", crash_atom::value);
  BOOST_TEST(count("start a") == 1u);
  BOOST_TEST(count("start b") == 2u);
  BOOST_TEST(count("start c") == 1u);
  BOOST_TEST((whereis("a") == a));
  BOOST_TEST((whereis("b") != b));
  BOOST_TEST((whereis("c") == c));
  auto t = tree();
  BOOST_TEST(t["b"].restarts == 1u);
  BOOST_TEST(t["a"].restarts == 0u);
  BOOST_TEST(t["b"].status == "running");
  BOOST_TEST(metrics->restarts.load() == 1u);
}

BOOST_AUTO_TEST_CASE(one_for_all_restarts_every_child) {
  start(three(restart_strategy::one_for_all, log));
  auto a = whereis("a"), c = whereis("c");
  send("b", crash_atom::value);
  for (auto n : {"a", "b", "c"}) {
    BOOST_TEST(count(std::string("start ") + n) == 2u, n);
    BOOST_TEST(count(std::string("stop ") + n) == 1u, n);
  }
  BOOST_TEST((whereis("a") != a));
  BOOST_TEST((whereis("c") != c));
}

BOOST_AUTO_TEST_CASE(two_children_dying_together_do_not_stop_the_supervisor) {
  // Both exits are queued before the supervisor runs: handling a's restarts b as well, and
  // b's old exit, still queued, must be recognised as stale, not as an exit from the parent.
  start(three(restart_strategy::one_for_all, log));
  auto a = whereis("a"), b = whereis("b"); // whereis runs the scheduler: resolve first
  self->send(a, crash_atom::value);
  self->send(b, crash_atom::value);
  run();
  BOOST_TEST(!root_exited());
  auto t = tree();
  for (auto n : {"a", "b", "c"}) {
    BOOST_TEST(t[n].status == "running", n);
    BOOST_TEST(t[n].restarts == 1u, n);
  }
}

BOOST_AUTO_TEST_CASE(rest_for_one_restarts_the_child_and_those_after_it) {
  start(three(restart_strategy::rest_for_one, log));
  auto a = whereis("a");
  send("b", crash_atom::value);
  BOOST_TEST(count("start a") == 1u);
  BOOST_TEST(count("stop a") == 0u);
  BOOST_TEST(count("start b") == 2u);
  BOOST_TEST(count("start c") == 2u);
  BOOST_TEST(count("stop c") == 1u);
  BOOST_TEST((whereis("a") == a));
}

BOOST_AUTO_TEST_CASE(restart_types_decide_what_comes_back) {
  supervisor_spec spec;
  spec.name = "root";
  spec.children = {worker("perm", restart_type::permanent, log),
                   worker("trans", restart_type::transient, log),
                   worker("temp", restart_type::temporary, log),
                   worker("trans2", restart_type::transient, log)};
  start(spec);
  send("perm", finish_atom::value);   // normal exit: permanent still restarts
  send("trans", finish_atom::value);  // normal exit: transient stays down
  send("trans2", crash_atom::value);  // abnormal exit: transient restarts
  send("temp", crash_atom::value);    // temporary never restarts
  BOOST_TEST(count("start perm") == 2u);
  BOOST_TEST(count("start trans") == 1u);
  BOOST_TEST(count("start trans2") == 2u);
  BOOST_TEST(count("start temp") == 1u);
  auto t = tree();
  BOOST_TEST(t["trans"].status == "stopped");
  BOOST_TEST(t["temp"].status == "failed");
  BOOST_TEST(t["perm"].status == "running");
  auto gone = ask<caf::actor>(root, whereis_atom::value, std::string{"temp"});
  BOOST_REQUIRE(!gone);
  BOOST_TEST((code_of(gone.error()) == runtime_errc::not_found));
}

BOOST_AUTO_TEST_CASE(too_many_restarts_in_the_window_escalates_to_the_parent) {
  auto inner = three(restart_strategy::one_for_one, log, 2);
  inner.name = "inner";
  supervisor_spec outer;
  outer.name = "root";
  outer.max_restarts = 5;
  outer.children = {supervisor_child(inner)};
  start(outer);
  auto first_inner = whereis("inner");
  send("inner/a", crash_atom::value);
  send("inner/a", crash_atom::value);
  BOOST_TEST((whereis("inner") == first_inner)); // two restarts: within the intensity
  send("inner/a", crash_atom::value);            // third within 10 s: inner gives up
  BOOST_TEST((whereis("inner") != first_inner)); // ... and the root restarted it
  BOOST_TEST(metrics->escalations.load() == 1u);
  auto t = tree();
  BOOST_TEST(t["inner"].restarts == 1u);
  BOOST_TEST(t["inner/a"].restarts == 0u); // a fresh subtree
  BOOST_TEST(count("start inner/c") == 2u);
  BOOST_TEST(!root_exited());
}

BOOST_AUTO_TEST_CASE(restarts_spread_beyond_the_window_do_not_escalate) {
  start(three(restart_strategy::one_for_one, log, 1));
  for (int i = 0; i < 4; ++i) {
    send("a", crash_atom::value);
    advance(std::chrono::seconds{11});
  }
  BOOST_TEST(count("start a") == 5u);
  BOOST_TEST(metrics->escalations.load() == 0u);
  BOOST_TEST(!root_exited());
}

BOOST_AUTO_TEST_CASE(an_escalating_root_exits_with_the_reason) {
  start(three(restart_strategy::one_for_one, log, 0));
  send("a", crash_atom::value);
  caf::error reason;
  BOOST_REQUIRE(root_exited(&reason));
  BOOST_TEST((code_of(reason) == runtime_errc::restart_intensity), describe(reason));
  BOOST_TEST(count("stop b") == 1u);
  BOOST_TEST(count("stop c") == 1u);
}

BOOST_AUTO_TEST_CASE(a_factory_that_throws_is_retried_and_then_escalates) {
  auto failures = std::make_shared<int>(2); // the flaky child fails to start twice
  child_spec flaky;
  flaky.name = "flaky";
  flaky.start = [failures, this](caf::event_based_actor& parent, const child_context& ctx) {
    if ((*failures)-- > 0)
      throw std::runtime_error("cannot open resource");
    return parent.spawn<caf::linked>(test_worker, ctx, log, false);
  };
  child_spec broken;
  broken.name = "broken";
  broken.start = [](caf::event_based_actor&, const child_context&) -> caf::actor {
    throw std::runtime_error("always fails");
  };
  supervisor_spec spec;
  spec.name = "root";
  spec.max_restarts = 3;
  spec.children = {flaky};
  start(spec);
  BOOST_TEST(count("start flaky") == 1u);
  BOOST_TEST(tree()["flaky"].status == "running");
  BOOST_TEST(tree()["flaky"].restarts == 2u);
  BOOST_TEST(!root_exited());
  // A child that can never start: retried up to the intensity, then the supervisor gives up.
  caf::anon_send_exit(root, caf::exit_reason::kill);
  run();
  root_exited();
  spec.children = {broken};
  start(spec);
  caf::error reason;
  BOOST_REQUIRE(root_exited(&reason));
  BOOST_TEST((code_of(reason) == runtime_errc::restart_intensity), describe(reason));
}

BOOST_AUTO_TEST_CASE(shutdown_stops_children_one_by_one_in_reverse_order) {
  auto inner = three(restart_strategy::one_for_one, log);
  inner.name = "inner";
  supervisor_spec spec;
  spec.name = "root";
  spec.children = {worker("first", restart_type::permanent, log), supervisor_child(inner),
                   worker("last", restart_type::permanent, log)};
  start(spec);
  log->clear();
  caf::anon_send_exit(root, caf::exit_reason::user_shutdown);
  run();
  BOOST_TEST(*log == (std::vector<std::string>{"stop last", "stop inner/c", "stop inner/b",
                                               "stop inner/a", "stop first"}),
             boost::test_tools::per_element());
  caf::error reason;
  BOOST_REQUIRE(root_exited(&reason));
  BOOST_TEST((reason == caf::exit_reason::user_shutdown));
}

BOOST_AUTO_TEST_CASE(a_child_that_ignores_shutdown_is_killed_after_the_timeout) {
  supervisor_spec spec;
  spec.name = "root";
  spec.shutdown_timeout = std::chrono::seconds{2};
  spec.children = {worker("polite", restart_type::permanent, log),
                   worker("stubborn", restart_type::permanent, log, true)};
  start(spec);
  caf::anon_send_exit(root, caf::exit_reason::user_shutdown);
  run();
  BOOST_TEST(count("stop stubborn") == 0u); // still waiting for it
  BOOST_TEST(!root_exited());
  advance(std::chrono::seconds{2});
  BOOST_TEST(count("stop stubborn") == 1u);
  BOOST_TEST(count("stop polite") == 1u);
  BOOST_TEST(root_exited());
}

BOOST_AUTO_TEST_CASE(kill_by_path_crashes_the_actor_and_it_restarts) {
  auto inner = three(restart_strategy::one_for_one, log);
  inner.name = "inner";
  supervisor_spec spec;
  spec.name = "root";
  spec.children = {supervisor_child(inner)};
  start(spec);
  auto before = whereis("inner/b");
  auto ok = ask<caf::ok_atom>(root, kill_atom::value, std::string{"inner/b"});
  BOOST_REQUIRE_MESSAGE(ok, test::why(ok));
  run();
  BOOST_TEST((whereis("inner/b") != before));
  BOOST_TEST(tree()["inner/b"].restarts == 1u);
  auto missing = ask<caf::ok_atom>(root, kill_atom::value, std::string{"inner/zz"});
  BOOST_REQUIRE(!missing);
  BOOST_TEST((code_of(missing.error()) == runtime_errc::not_found));
}

BOOST_AUTO_TEST_CASE(tree_lists_every_actor_depth_first) {
  auto inner = three(restart_strategy::rest_for_one, log);
  inner.name = "inner";
  supervisor_spec spec;
  spec.name = "root";
  spec.children = {supervisor_child(inner), worker("w", restart_type::transient, log)};
  start(spec);
  auto xs = ask<std::vector<actor_entry>>(root, tree_atom::value);
  BOOST_REQUIRE(xs);
  std::vector<std::string> paths;
  std::vector<uint16_t> depths;
  for (auto& e : *xs) {
    paths.push_back(e.path);
    depths.push_back(e.depth);
  }
  BOOST_TEST(paths == (std::vector<std::string>{"/", "inner", "inner/a", "inner/b", "inner/c", "w"}),
             boost::test_tools::per_element());
  BOOST_TEST(depths == (std::vector<uint16_t>{0, 1, 2, 2, 2, 1}), boost::test_tools::per_element());
  BOOST_TEST((*xs)[1].strategy == "rest_for_one");
  BOOST_TEST((*xs)[5].restart_type == "transient");
}

BOOST_AUTO_TEST_SUITE_END()
