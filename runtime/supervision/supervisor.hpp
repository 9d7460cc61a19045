#pragma once
/// Erlang-style supervisors on CAF 0.17 (which has links and monitors but no supervisors).
///
/// A supervisor starts its children in order, links to them and traps their exits. When a
/// child exits it applies the child's restart type (permanent: always restart; transient:
/// restart after an abnormal exit; temporary: never) and its strategy (one_for_one: restart the
/// child; one_for_all: restart every child; rest_for_one: restart the child and those started
/// after it). More than `max_restarts` restarts within `window` make it give up: it stops its
/// children and exits with `runtime_errc::restart_intensity`, which its own parent handles as
/// a child failure (escalation). A child whose factory throws counts as a failed start and is
/// retried the same way. An exit from anywhere else (its parent, or `anon_send_exit`)
/// starts an ordered shutdown: children stop one at a time in reverse start order, each given
/// `shutdown_timeout` before it is killed.
///
/// Protocol (untyped), answered by every supervisor:
/// - `(tree_atom)` -> `std::vector<protocols::actor_entry>`: itself and its subtree,
///   depth-first, with restart counts and worker mailbox sizes (workers answer `probe_atom`).
/// - `(whereis_atom, path)` -> `caf::actor`, or error `not_found`.
/// - `(kill_atom, path)` -> `ok_atom` after sending the actor an exit with reason
///   `runtime_errc::killed`; error `not_found`.
/// - `(probe_atom)` -> `uint64_t` mailbox size.
/// Paths: the root supervisor's path is ""; a child's is "<parent path>/<name>" ("system/kv").

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include <caf/actor.hpp>
#include <caf/event_based_actor.hpp>
#include <caf/spawn_options.hpp>
#include <caf/fwd.hpp>
#include <caf/timespan.hpp>

namespace wharf::runtime {

class node_metrics;

enum class restart_strategy : uint8_t { one_for_one, one_for_all, rest_for_one };
enum class restart_type : uint8_t { permanent, transient, temporary };
enum class child_kind : uint8_t { worker, supervisor };

const char* to_string(restart_strategy x) noexcept;
const char* to_string(restart_type x) noexcept;

/// What a child learns when it starts: where it lives in the tree.
struct child_context {
  std::string path;                      ///< e.g. "system/store"
  caf::actor root;                       ///< the node's root supervisor (for path lookups)
  std::shared_ptr<node_metrics> metrics; ///< may be null (tests)
};

/// Starts one incarnation of a child. It must spawn with `caf::linked` from `parent` (so the
/// child can never outlive an unlinked window) and return the handle.
using child_factory =
  std::function<caf::actor(caf::event_based_actor& parent, const child_context& ctx)>;

struct child_spec {
  std::string name;
  child_kind kind = child_kind::worker;
  restart_type restart = restart_type::permanent;
  child_factory start;
};

struct supervisor_spec {
  std::string name;
  restart_strategy strategy = restart_strategy::one_for_one;
  size_t max_restarts = 5;                           ///< restarts allowed within `window`
  caf::timespan window = std::chrono::seconds{10};
  caf::timespan shutdown_timeout = std::chrono::seconds{5}; ///< per child
  std::vector<child_spec> children;
};

/// A child spec that runs a nested supervisor.
child_spec supervisor_child(supervisor_spec spec,
                            restart_type restart = restart_type::permanent);

/// A child spec for a worker whose behaviour function takes `(self, child_context, xs...)`.
template <class Fun, class... Ts>
child_spec worker_child(std::string name, restart_type restart, Fun fun, Ts... xs) {
  child_spec spec;
  spec.name = std::move(name);
  spec.kind = child_kind::worker;
  spec.restart = restart;
  spec.start = [fun, xs...](caf::event_based_actor& parent, const child_context& ctx) {
    return parent.spawn<caf::linked>(fun, ctx, xs...);
  };
  return spec;
}

/// Spawns a root supervisor (path ""). Stop it with `anon_send_exit(h, user_shutdown)`.
caf::actor spawn_root_supervisor(caf::actor_system& sys, supervisor_spec spec,
                                 std::shared_ptr<node_metrics> metrics);

/// The behaviour of a supervisor (exposed for tests that spawn it directly).
caf::behavior supervisor_impl(caf::event_based_actor* self, supervisor_spec spec,
                              child_context ctx);

} // namespace wharf::runtime
