#pragma once
/// The CAF<->KJ bridge for module front ends: a Cap'n Proto or HTTP call on the node's KJ
/// loop becomes a CAF request to an actor, and the reply comes back as a `kj::Promise`.
/// Neither side blocks: a short-lived helper actor sends the request and fulfils a
/// cross-thread promise with the answer, which wakes the loop. A helper that dies unanswered
/// (the node stops) rejects the promise instead of leaving the caller hanging.
///
/// ```cpp
/// return bridge.request<std::string>(bridge.find(my_service_name), 10s, call_atom_v, bytes)
///   .then([ctx](caf::expected<std::string> reply) mutable { ... });
/// ```
///
/// For server-to-client streams (progress, subscriptions) see `feed.hpp`.
/// Include only from front-end `.cpp` files: it pulls CAF and KJ in.

#include <chrono>
#include <memory>
#include <utility>

#include <caf/actor.hpp>
#include <caf/actor_registry.hpp>
#include <caf/actor_system.hpp>
#include <caf/event_based_actor.hpp>
#include <caf/expected.hpp>
#include <kj/async.h>

namespace wharf::runtime {

class kj_bridge {
public:
  explicit kj_bridge(caf::actor_system& sys) : sys_(sys) {}

  caf::actor_system& system() const noexcept { return sys_; }

  /// The actor registered as `name` (by `register_as`), or null while none is. Looked up per
  /// call, so a restarted actor is found.
  caf::actor find(caf::atom_value name) const {
    return sys_.registry().get<caf::actor>(name);
  }

  /// KJ loop thread only (the promise belongs to the calling thread's event loop): sends
  /// `xs...` to `target` as a CAF request and resolves
  /// with its reply of type `R`, or the error (`caf::sec::request_timeout` after `timeout`;
  /// 0 = no timeout, the target owns the deadline). A null target resolves at once with
  /// `caf::sec::invalid_argument`.
  template <class R, class... Ts>
  kj::Promise<caf::expected<R>> request(caf::actor target, std::chrono::milliseconds timeout,
                                        Ts... xs) {
    if (!target)
      return caf::expected<R>{caf::make_error(caf::sec::invalid_argument,
                                              "no actor to ask (the service is not running)")};
    auto paf = kj::newPromiseAndCrossThreadFulfiller<caf::expected<R>>();
    auto done = std::make_shared<kj::Own<kj::CrossThreadPromiseFulfiller<caf::expected<R>>>>(
      kj::mv(paf.fulfiller));
    sys_.spawn([=](caf::event_based_actor* self) {
      auto ok = [done](R& r) { (*done)->fulfill(caf::expected<R>{std::move(r)}); };
      auto fail = [done](caf::error& err) { (*done)->fulfill(caf::expected<R>{std::move(err)}); };
      if (timeout.count() > 0)
        self->request(target, timeout, xs...).then(ok, fail);
      else
        self->request(target, caf::infinite, xs...).then(ok, fail);
    });
    return kj::mv(paf.promise);
  }

private:
  caf::actor_system& sys_;
};

} // namespace wharf::runtime
