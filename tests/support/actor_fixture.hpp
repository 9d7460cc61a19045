#pragma once
/// Deterministic actor tests: an actor system on CAF's test coordinator (one thread, FIFO,
/// manual clock), after `test_coordinator_fixture` in caf/test/dsl.hpp but usable from
/// Boost.Test. `run()` delivers every pending message; `advance(d)` moves the clock and fires
/// due timeouts; `ask<T>(h, xs...)` sends a request, runs, and returns the answer.

#include <chrono>
#include <optional>
#include <stdexcept>

#include <caf/all.hpp>

#include "runtime/core/types.hpp"

namespace wharf::test {

class actor_fixture {
public:
  actor_fixture()
    : sys(init(cfg)), self(sys, true),
      sched(dynamic_cast<caf::scheduler::test_coordinator&>(sys.scheduler())) {
    sched.clock().current_time += std::chrono::hours(1); // a clock at 0 hides bugs
  }

  virtual ~actor_fixture() { sched.run(); }

  size_t run() { return sched.run(); }

  size_t advance(caf::timespan d) {
    auto n = sched.advance_time(d);
    run();
    return n;
  }

  /// Sends a request and runs the system until the answer is there; the answer (value or
  /// error) is returned. Throws when no answer arrived (a bug in the actor under test).
  template <class T, class Handle, class... Ts>
  caf::expected<T> ask(const Handle& h, Ts&&... xs) {
    auto rh = self->request(h, caf::infinite, std::forward<Ts>(xs)...);
    run();
    std::optional<caf::expected<T>> out;
    rh.receive([&](T& x) { out = std::move(x); }, [&](caf::error& e) { out = std::move(e); });
    if (!out)
      throw std::logic_error("no answer");
    return std::move(*out);
  }

  caf::actor_system_config cfg;
  caf::actor_system sys;
  caf::scoped_actor self;
  caf::scheduler::test_coordinator& sched;

private:
  static caf::actor_system_config& init(caf::actor_system_config& cfg) {
    runtime::add_types(cfg);
    cfg.set("scheduler.policy", caf::atom("testing"));
    cfg.set("logger.file-verbosity", caf::atom("quiet"));
    cfg.set("logger.console-verbosity", caf::atom("quiet"));
    cfg.set("logger.inline-output", true);
    return cfg;
  }
};

} // namespace wharf::test
