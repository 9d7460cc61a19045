#include "runtime/supervision/supervisor.hpp"

#include <deque>
#include <set>
#include <optional>

#include <caf/all.hpp>
#include <spdlog/spdlog.h>

#include "runtime/core/metrics.hpp"
#include "runtime/core/types.hpp"

namespace wharf::runtime {

const char* to_string(restart_strategy x) noexcept {
  switch (x) {
    case restart_strategy::one_for_one: return "one_for_one";
    case restart_strategy::one_for_all: return "one_for_all";
    case restart_strategy::rest_for_one: return "rest_for_one";
  }
  return "unknown";
}

const char* to_string(restart_type x) noexcept {
  switch (x) {
    case restart_type::permanent: return "permanent";
    case restart_type::transient: return "transient";
    case restart_type::temporary: return "temporary";
  }
  return "unknown";
}

child_spec supervisor_child(supervisor_spec spec, restart_type restart) {
  child_spec c;
  c.name = spec.name;
  c.kind = child_kind::supervisor;
  c.restart = restart;
  c.start = [spec](caf::event_based_actor& parent, const child_context& ctx) {
    return parent.spawn<caf::linked>(supervisor_impl, spec, ctx);
  };
  return c;
}

caf::actor spawn_root_supervisor(caf::actor_system& sys, supervisor_spec spec,
                                 std::shared_ptr<node_metrics> metrics) {
  // The root learns its own handle as the lookup root in its first message.
  return sys.spawn([spec, metrics](caf::event_based_actor* self) {
    child_context ctx{"", caf::actor_cast<caf::actor>(self), metrics};
    return supervisor_impl(self, spec, ctx);
  });
}

namespace {

using protocols::actor_entry;
using clock_type = caf::actor_clock::clock_type;

struct slot {
  child_spec spec;
  caf::actor handle;
  uint32_t restarts = 0;
  std::string status = "stopped";
};

struct sup_state {
  supervisor_spec spec;
  child_context ctx;
  std::vector<slot> children;
  std::deque<clock_type::time_point> restart_log;
  // Children replaced without waiting for their exit; an exit message from one of them may
  // still be queued and must not be mistaken for an exit from the parent.
  std::set<caf::actor_addr> retired;
  bool stopping = false;
  caf::error stop_reason;
  size_t stop_pos = 0;  // index of the child being stopped during ordered shutdown
  uint64_t stop_gen = 0;

  std::string path_of(const slot& s) const {
    return ctx.path.empty() ? s.spec.name : ctx.path + "/" + s.spec.name;
  }
  std::string name() const { return ctx.path.empty() ? "/" : ctx.path; }
};

// Sends `dest` an exit message whose source is `dest` itself, as `caf::anon_send_exit` does,
// but with any error as the reason. CAF unlinks a receiver from the source of an exit
// message, so an exit sent by the supervisor itself would cut the very link through which
// the supervisor must hear that the child died.
void exit_keep_link(const caf::actor& dest, caf::error reason) {
  if (dest)
    dest->enqueue(nullptr, caf::make_message_id(),
                  caf::make_message(caf::exit_msg{dest.address(), std::move(reason)}), nullptr);
}

bool abnormal(const caf::error& reason) {
  return reason && reason != caf::exit_reason::normal
         && reason != caf::exit_reason::user_shutdown;
}

class supervisor {
public:
  supervisor(caf::event_based_actor* self, std::shared_ptr<sup_state> st)
    : self_(self), st_(std::move(st)) {}

  void start_all() {
    for (size_t i = 0; i < st_->children.size(); ++i)
      start(i);
  }

  void start(size_t i) {
    auto& s = st_->children[i];
    child_context cc{st_->path_of(s), st_->ctx.root, st_->ctx.metrics};
    try {
      s.handle = s.spec.start(*self_, cc);
    } catch (const std::exception& e) {
      // A factory that throws is a failed start; the exit handler never hears of it.
      spdlog::error("supervisor {}: starting {} threw: {}", st_->name(), cc.path, e.what());
      s.handle = nullptr;
    }
    s.status = s.handle ? "running" : "failed";
    spdlog::debug("supervisor {}: started {} as actor {}", st_->name(), cc.path,
                  s.handle ? s.handle.id() : 0);
    // A failed start counts like a crash: retried under the restart intensity, so a factory
    // that keeps failing escalates instead of leaving the child dead and unnoticed.
    if (!s.handle)
      self_->send(self_, retry_atom::value, static_cast<uint64_t>(i));
  }

  void on_retry(size_t i) {
    if (st_->stopping || i >= st_->children.size() || st_->children[i].handle)
      return;
    if (!admit_restart())
      return;
    auto& s = st_->children[i];
    ++s.restarts;
    if (st_->ctx.metrics)
      ++st_->ctx.metrics->restarts;
    start(i);
  }

  // Stops a child without waiting and without hearing its exit (used while restarting).
  void stop_now(slot& s) {
    if (!s.handle)
      return;
    self_->unlink_from(s.handle);
    self_->send_exit(s.handle, caf::exit_reason::user_shutdown);
    st_->retired.insert(s.handle.address());
    s.handle = nullptr;
    s.status = "stopped";
  }

  std::optional<size_t> find(const caf::actor_addr& addr) const {
    for (size_t i = 0; i < st_->children.size(); ++i)
      if (st_->children[i].handle && st_->children[i].handle.address() == addr)
        return i;
    return std::nullopt;
  }

  void on_exit(caf::exit_msg& em) {
    auto idx = find(em.source);
    if (!idx && st_->retired.erase(em.source) > 0)
      return; // a child we already replaced
    if (!idx) {
      // From the parent or an operator: shut down in order, unless it is a normal exit.
      if (!st_->stopping && em.reason && em.reason != caf::exit_reason::normal)
        begin_shutdown(em.reason);
      return;
    }
    auto& s = st_->children[*idx];
    s.handle = nullptr;
    s.status = abnormal(em.reason) ? "failed" : "stopped";
    if (st_->stopping) {
      if (*idx == st_->stop_pos)
        continue_shutdown();
      return;
    }
    bool restart = s.spec.restart == restart_type::permanent
                   || (s.spec.restart == restart_type::transient && abnormal(em.reason));
    auto path = st_->path_of(s);
    if (!restart) {
      spdlog::info("supervisor {}: {} exited ({}), {} child not restarted", st_->name(), path,
                   describe(em.reason), to_string(s.spec.restart));
      return;
    }
    spdlog::warn("supervisor {}: {} exited ({}), restarting ({})", st_->name(), path,
                 describe(em.reason), to_string(st_->spec.strategy));
    if (!admit_restart())
      return;
    switch (st_->spec.strategy) {
      case restart_strategy::one_for_one:
        restart_range(*idx, *idx + 1);
        break;
      case restart_strategy::one_for_all:
        restart_range(0, st_->children.size());
        break;
      case restart_strategy::rest_for_one:
        restart_range(*idx, st_->children.size());
        break;
    }
  }

  // Records a restart; false (and the supervisor gives up) when the intensity is exceeded.
  bool admit_restart() {
    auto now = self_->clock().now();
    auto& log = st_->restart_log;
    log.push_back(now);
    while (!log.empty() && now - log.front() > st_->spec.window)
      log.pop_front();
    if (log.size() <= st_->spec.max_restarts)
      return true;
    spdlog::error("supervisor {}: more than {} restarts within {} ms, giving up and escalating",
                  st_->name(), st_->spec.max_restarts,
                  std::chrono::duration_cast<std::chrono::milliseconds>(st_->spec.window).count());
    if (st_->ctx.metrics)
      ++st_->ctx.metrics->escalations;
    for (auto i = st_->children.size(); i-- > 0;)
      stop_now(st_->children[i]);
    self_->quit(make_error(runtime_errc::restart_intensity,
                           st_->name() + ": more than " + std::to_string(st_->spec.max_restarts)
                             + " restarts"));
    return false;
  }

  // Stops the running children in [first, last) in reverse order, then starts them in order.
  // Temporary children are not brought back by a group restart.
  void restart_range(size_t first, size_t last) {
    for (auto i = last; i-- > first;)
      stop_now(st_->children[i]);
    for (auto i = first; i < last; ++i) {
      auto& s = st_->children[i];
      if (s.spec.restart == restart_type::temporary && i != first)
        continue;
      if (s.spec.restart == restart_type::temporary)
        continue;
      start(i);
      ++s.restarts;
      if (st_->ctx.metrics)
        ++st_->ctx.metrics->restarts;
    }
  }

  void begin_shutdown(caf::error reason) {
    spdlog::debug("supervisor {}: ordered shutdown ({})", st_->name(), describe(reason));
    st_->stopping = true;
    st_->stop_reason = std::move(reason);
    st_->stop_pos = st_->children.size();
    continue_shutdown();
  }

  void continue_shutdown() {
    while (st_->stop_pos > 0) {
      auto& s = st_->children[--st_->stop_pos];
      if (!s.handle)
        continue;
      exit_keep_link(s.handle, caf::exit_reason::user_shutdown);
      self_->delayed_send(self_, st_->spec.shutdown_timeout, stop_atom::value, ++st_->stop_gen);
      return;
    }
    self_->quit(st_->stop_reason);
  }

  void on_stop_timeout(uint64_t gen) {
    if (!st_->stopping || gen != st_->stop_gen || st_->stop_pos >= st_->children.size())
      return;
    auto& s = st_->children[st_->stop_pos];
    if (!s.handle)
      return;
    spdlog::warn("supervisor {}: {} did not stop within {} ms, killing it", st_->name(),
                 st_->path_of(s),
                 std::chrono::duration_cast<std::chrono::milliseconds>(
                   st_->spec.shutdown_timeout)
                   .count());
    self_->unlink_from(s.handle);
    self_->send_exit(s.handle, caf::exit_reason::kill);
    s.handle = nullptr;
    s.status = "killed";
    continue_shutdown();
  }

  caf::response_promise tree() {
    auto rp = self_->make_response_promise();
    struct collect {
      std::vector<std::vector<actor_entry>> parts;
      size_t pending = 0;
    };
    auto c = std::make_shared<collect>();
    c->parts.resize(st_->children.size());
    actor_entry me;
    me.path = st_->name();
    me.kind = "supervisor";
    me.strategy = to_string(st_->spec.strategy);
    me.status = st_->stopping ? "stopping" : "running";
    me.actor_id = self_->id();
    me.mailbox_size = self_->mailbox().size();
    auto finish = [c, me, rp]() mutable {
      std::vector<actor_entry> out{me};
      for (auto& p : c->parts)
        out.insert(out.end(), p.begin(), p.end());
      rp.deliver(std::move(out));
    };
    for (size_t i = 0; i < st_->children.size(); ++i) {
      auto& s = st_->children[i];
      actor_entry base;
      base.path = st_->path_of(s);
      base.depth = 1;
      base.kind = s.spec.kind == child_kind::supervisor ? "supervisor" : "worker";
      base.restart_type = to_string(s.spec.restart);
      base.restarts = s.restarts;
      base.status = s.status;
      base.actor_id = s.handle ? s.handle.id() : 0;
      if (!s.handle) {
        c->parts[i] = {base};
        continue;
      }
      ++c->pending;
      auto done = [c, finish]() mutable {
        if (--c->pending == 0)
          finish();
      };
      auto on_error = [c, i, base, done](caf::error&) mutable {
        base.status = "unresponsive";
        c->parts[i] = {base};
        done();
      };
      if (s.spec.kind == child_kind::supervisor) {
        self_->request(s.handle, std::chrono::seconds{5}, tree_atom::value)
          .then(
            [c, i, base, done](std::vector<actor_entry>& sub) mutable {
              for (auto& e : sub)
                e.depth += 1;
              if (!sub.empty()) {
                sub[0].restart_type = base.restart_type;
                sub[0].restarts = base.restarts;
              }
              c->parts[i] = std::move(sub);
              done();
            },
            on_error);
      } else {
        self_->request(s.handle, std::chrono::seconds{2}, probe_atom::value)
          .then(
            [c, i, base, done](uint64_t n) mutable {
              base.mailbox_size = n;
              c->parts[i] = {base};
              done();
            },
            on_error);
      }
    }
    if (c->pending == 0)
      finish();
    return rp;
  }

  // Resolves `path` to a running child here or below; `on_found` handles a direct child.
  template <class OnFound>
  caf::result<caf::message> route(const std::string& path, caf::message fwd, OnFound on_found) {
    for (auto& s : st_->children) {
      auto cp = st_->path_of(s);
      if (path == cp) {
        if (!s.handle)
          return make_error(runtime_errc::not_found, path + " is not running");
        return on_found(s);
      }
      if (s.spec.kind == child_kind::supervisor && path.compare(0, cp.size() + 1, cp + "/") == 0) {
        if (!s.handle)
          return make_error(runtime_errc::not_found, cp + " is not running");
        self_->delegate(s.handle, std::move(fwd));
        return caf::delegated<caf::message>{};
      }
    }
    return make_error(runtime_errc::not_found, "no actor at path \"" + path + "\"");
  }

  caf::event_based_actor* self_;
  std::shared_ptr<sup_state> st_;
};

} // namespace

caf::behavior supervisor_impl(caf::event_based_actor* self, supervisor_spec spec,
                              child_context ctx) {
  auto st = std::make_shared<sup_state>();
  st->ctx = std::move(ctx);
  for (auto& c : spec.children)
    st->children.push_back(slot{c, nullptr, 0, "stopped"});
  st->spec = std::move(spec);
  auto sup = std::make_shared<supervisor>(self, st);
  self->set_exit_handler([sup](caf::exit_msg& em) { sup->on_exit(em); });
  sup->start_all();
  return {
    [sup](tree_atom) { return sup->tree(); },
    [sup](whereis_atom, const std::string& path) -> caf::result<caf::message> {
      return sup->route(path, caf::make_message(whereis_atom::value, path),
                        [](slot& s) -> caf::result<caf::message> {
                          return caf::make_message(s.handle);
                        });
    },
    [sup, self](kill_atom, const std::string& path) -> caf::result<caf::message> {
      return sup->route(path, caf::make_message(kill_atom::value, path),
                        [self, path](slot& s) -> caf::result<caf::message> {
                          spdlog::warn("fault injection: crashing {} (actor {})", path,
                                       s.handle.id());
                          exit_keep_link(s.handle, make_error(runtime_errc::killed,
                                                              path + " crashed by operator"));
                          return caf::make_message(caf::ok_atom::value);
                        });
    },
    [self](probe_atom) -> uint64_t { return self->mailbox().size(); },
    [sup](stop_atom, uint64_t gen) { sup->on_stop_timeout(gen); },
    [sup](retry_atom, uint64_t child) { sup->on_retry(static_cast<size_t>(child)); },
  };
}

} // namespace wharf::runtime
