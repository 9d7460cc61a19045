#include "runtime/cluster/cluster_actor.hpp"

#include <algorithm>
#include <map>
#include <set>

#include <caf/all.hpp>
#include <caf/io/middleman.hpp>
#include <caf/io/middleman_actor.hpp>
#include <spdlog/spdlog.h>

#include "protocols/codec.hpp"
#include "runtime/core/logging.hpp"
#include "runtime/core/metrics.hpp"
#include "runtime/core/types.hpp"

namespace wharf::runtime {

namespace {

using namespace protocols;
using clock_type = caf::actor_clock::clock_type;
// Receives the answer to an operator command, exactly once.
using admin_done = std::function<void(admin_reply)>;

// A failed admin reply with a wire code (protocols/error_code.hpp).
admin_reply admin_error(error_code code, std::string message) {
  return make_admin_error(to_string(code), std::move(message));
}
using string_map = std::map<std::string, std::string>;

struct peer {
  member info;
  caf::actor handle;             // null until connected
  clock_type::time_point last_seen;
};

// One outgoing connection target (host:port). The middleman connects one request at a time
// and an unreachable host can hold it for seconds, so every target has at most one attempt
// in flight and failed attempts back off exponentially.
struct dial_state {
  bool in_flight = false;
  clock_type::time_point next_attempt;
  std::chrono::milliseconds backoff{0};
};

constexpr std::chrono::milliseconds max_dial_backoff{30000};

// A request in flight towards a peer; `fail` answers it when the peer goes away first.
struct pending_call {
  std::string peer;
  std::function<void(runtime_errc, const std::string&)> fail;
};

struct cluster_state {
  node_config cfg;
  member self_row;
  child_context ctx;
  std::map<std::string, peer> peers; // by name, never holds our own row
  std::map<uint64_t, pending_call> pending;
  std::map<std::string, dial_state> dials;        // by "host:port"
  std::map<std::string, std::string> seed_names;  // seed "host:port" -> member name
  uint64_t next_call = 1;
  uint64_t next_trace = 1;
  unsigned ticks = 0;
  unsigned publish_attempts = 0;
};

constexpr unsigned max_publish_attempts = 30;

std::string norm_host(const std::string& h) {
  return h == "localhost" ? std::string("127.0.0.1") : h;
}

std::string target_key(const std::string& host, uint16_t port) {
  return norm_host(host) + ":" + std::to_string(port);
}

bool is_self(const node_config& cfg, const endpoint& ep) {
  return ep.port == cfg.cluster_port && norm_host(ep.host) == norm_host(cfg.host);
}

class cluster {
public:
  cluster(caf::event_based_actor* self, std::shared_ptr<cluster_state> st)
    : self_(self), st_(std::move(st)) {}

  node_metrics* metrics() { return st_->ctx.metrics.get(); }
  const std::string& name() const { return st_->cfg.name; }

  // -- wire --

  std::string envelope_bytes(envelope_body body, uint64_t trace = 0) {
    envelope env;
    env.trace_id = trace ? trace : st_->next_trace++;
    env.from = name();
    env.body = std::move(body);
    auto bytes = encode(env);
    if (auto m = metrics()) {
      ++m->messages_out;
      m->bytes_out += bytes.size();
    }
    return bytes;
  }

  // One-way envelope (gossip, heartbeat, leave): no reply travels back.
  void send(const caf::actor& to, envelope_body body) {
    if (to)
      self_->send(to, cast_atom::value, envelope_bytes(std::move(body)));
  }

  // `via` is the "host:port" we dialled, remembered as the seed's member name.
  void join(const caf::actor& h, const std::string& via) {
    self_->request(h, std::chrono::seconds{5}, wire_atom::value, envelope_bytes(join_msg{st_->self_row}))
      .then([this, h, via](const std::string& reply) { on_join_reply(reply, h, via); },
            [](caf::error& err) { spdlog::debug("cluster: join failed: {}", describe(err)); });
  }

  void broadcast(const envelope_body& body) {
    for (auto& [n, p] : st_->peers)
      if (p.handle && p.info.status == member_status::alive)
        send(p.handle, body);
  }

  member_table table() const {
    member_table t;
    t.members.push_back(st_->self_row);
    for (auto& [n, p] : st_->peers)
      t.members.push_back(p.info);
    std::sort(t.members.begin(), t.members.end(),
              [](const member& a, const member& b) { return a.name < b.name; });
    return t;
  }

  void update_gauges() {
    if (auto m = metrics()) {
      uint64_t alive = 1, down = 0; // we are alive
      for (auto& [n, p] : st_->peers)
        (p.info.status == member_status::alive ? alive : down) += 1;
      m->members_alive = alive;
      m->members_down = down;
    }
  }

  // -- membership --

  // Dials host:port (a seed, or a member named `expected_name`) and sends `join` once the
  // middleman has a handle. Rate-limited per target, see dial_state.
  void connect(const std::string& host, uint16_t port, const std::string& expected_name) {
    auto key = target_key(host, port);
    auto& d = st_->dials[key];
    auto now = self_->clock().now();
    if (d.in_flight || now < d.next_attempt)
      return;
    d.in_flight = true;
    auto mm = self_->system().middleman().actor_handle();
    // The middleman connects asynchronously: no scheduler thread blocks on the TCP handshake.
    self_->request(mm, std::chrono::seconds{10}, caf::connect_atom::value, host, port)
      .then(
        [=](const caf::node_id&, caf::strong_actor_ptr& ptr, const std::set<std::string>&) {
          auto& d = st_->dials[key];
          d.in_flight = false;
          d.backoff = std::chrono::milliseconds{0};
          auto h = caf::actor_cast<caf::actor>(ptr);
          if (!h) {
            spdlog::warn("cluster: {} has no published actor", key);
            return;
          }
          join(h, key);
        },
        [=](caf::error& err) {
          auto& d = st_->dials[key];
          d.in_flight = false;
          d.backoff = std::min(max_dial_backoff,
                               std::max(std::chrono::milliseconds{250}, d.backoff * 2));
          d.next_attempt = self_->clock().now() + d.backoff;
          spdlog::debug("cluster: cannot reach {}{}: {} (next try in {} ms)", key,
                        expected_name.empty() ? "" : " (" + expected_name + ")", describe(err),
                        d.backoff.count());
        });
  }

  // Two members that learn of each other at the same moment must not dial each other at
  // once: CAF 0.17's BASP can then drop messages in flight while it settles on one
  // connection (seen as lost join and service calls). The smaller name dials.
  bool dials_first(const std::string& peer_name) const { return name() < peer_name; }

  // Adopts the sender of a `join` (or any envelope) as the handle for `name`.
  void adopt(const std::string& name, const caf::actor& handle) {
    auto i = st_->peers.find(name);
    if (i == st_->peers.end() || !handle || i->second.handle == handle)
      return;
    if (i->second.handle)
      self_->demonitor(i->second.handle);
    i->second.handle = handle;
    i->second.last_seen = self_->clock().now();
    self_->monitor(handle);
  }

  // Merges one row learned from `source` (a peer's own row when `authoritative`).
  // Returns true when the table changed in a way others should hear about.
  bool merge(const member& m, bool authoritative) {
    if (m.name == name()) {
      if (m.incarnation > st_->self_row.incarnation)
        spdlog::error("cluster: another node claims our name {} with a newer incarnation", name());
      return false;
    }
    auto i = st_->peers.find(m.name);
    if (i == st_->peers.end()) {
      peer p;
      p.info = m;
      p.last_seen = self_->clock().now();
      st_->peers.emplace(m.name, std::move(p));
      spdlog::info("cluster: member {} ({}:{}) is {} (incarnation {})", m.name, m.host,
                   m.cluster_port, to_string(m.status), m.incarnation);
      if (m.status == member_status::alive && !authoritative && dials_first(m.name))
        connect(m.host, m.cluster_port, m.name);
      return true;
    }
    auto& p = i->second;
    if (m.incarnation > p.info.incarnation) {
      // A restarted node: its old connection is gone for good.
      if (p.handle)
        self_->demonitor(p.handle);
      p.handle = nullptr;
      fail_pending(m.name, "it restarted (incarnation " + std::to_string(m.incarnation) + ")");
      p.info = m;
      p.last_seen = self_->clock().now();
      spdlog::info("cluster: member {} rejoined with incarnation {} ({})", m.name,
                   m.incarnation, to_string(m.status));
      if (m.status == member_status::alive && !authoritative && dials_first(m.name))
        connect(m.host, m.cluster_port, m.name);
      return true;
    }
    if (m.incarnation == p.info.incarnation) {
      if (authoritative && p.info.status != m.status) {
        p.info.status = m.status;
        return true;
      }
      // Our own observation of a peer wins over gossip, except for a graceful leave.
      if (m.status == member_status::left && p.info.status != member_status::left) {
        p.info.status = member_status::left;
        return true;
      }
    }
    return false;
  }

  void mark_down(const std::string& peer_name, member_status status, const std::string& why) {
    auto i = st_->peers.find(peer_name);
    if (i == st_->peers.end())
      return;
    auto& p = i->second;
    if (p.info.status != member_status::alive && status == member_status::down)
      return;
    p.info.status = status;
    if (status == member_status::left)
      spdlog::info("cluster: member {} left the cluster", peer_name);
    else
      spdlog::warn("cluster: member {} is down: {}", peer_name, why);
    fail_pending(peer_name, why);
    update_gauges();
  }

  void fail_pending(const std::string& peer_name, const std::string& why) {
    for (auto i = st_->pending.begin(); i != st_->pending.end();) {
      if (i->second.peer != peer_name) {
        ++i;
        continue;
      }
      auto fail = std::move(i->second.fail);
      i = st_->pending.erase(i);
      if (auto m = metrics())
        ++m->peer_down_failures;
      fail(runtime_errc::peer_down,
           "node " + peer_name + " went down while the request was pending: " + why);
    }
  }

  void on_down(const caf::down_msg& dm) {
    for (auto& [n, p] : st_->peers) {
      if (p.handle && p.handle.address() == dm.source) {
        p.handle = nullptr;
        mark_down(n, p.info.status == member_status::left ? member_status::left
                                                           : member_status::down,
                  "connection lost (" + describe(dm.reason) + ")");
        return;
      }
    }
  }

  void on_tick() {
    auto now = self_->clock().now();
    ++st_->ticks;
    heartbeat hb{st_->self_row.incarnation};
    for (auto& [n, p] : st_->peers) {
      if (!p.handle) {
        // A member we know but hold no connection to: it is down once the failure timeout
        // passes without one, and we keep dialling it (backed off) until it answers or left.
        if (p.info.status == member_status::left)
          continue;
        bool overdue = now - p.last_seen > st_->cfg.failure_timeout;
        if (p.info.status == member_status::alive && overdue)
          mark_down(n, member_status::down, "no connection");
        // The other side dials first when its name sorts first; we step in only once it is
        // overdue (it may be unable to reach us, or down).
        if (dials_first(n) || overdue)
          connect(p.info.host, p.info.cluster_port, n);
        continue;
      }
      send(p.handle, hb);
      if (p.info.status == member_status::alive && now - p.last_seen > st_->cfg.failure_timeout) {
        auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(now - p.last_seen);
        mark_down(n, member_status::down,
                  "no heartbeat for " + std::to_string(ms.count()) + " ms");
      }
    }
    // Keep dialling seeds we hold no live member for (a seed may start after us).
    for (auto& s : st_->cfg.seeds) {
      if (is_self(st_->cfg, s))
        continue;
      auto key = target_key(s.host, s.port);
      auto known = st_->seed_names.find(key);
      if (known != st_->seed_names.end()) {
        auto i = st_->peers.find(known->second);
        if (i != st_->peers.end() && i->second.handle)
          continue;
      }
      connect(s.host, s.port, "");
    }
    auto retry_every = std::max<unsigned>(
      1, static_cast<unsigned>(1000 / std::max<long>(1, st_->cfg.heartbeat_interval.count())));
    update_gauges();
    if (st_->ticks % retry_every == 0)
      refresh_mailboxes();
    self_->delayed_send(self_, st_->cfg.heartbeat_interval, tick_atom::value);
  }

  void refresh_mailboxes() {
    if (!st_->ctx.root || !metrics())
      return;
    auto m = st_->ctx.metrics;
    self_->request(st_->ctx.root, std::chrono::seconds{2}, tree_atom::value)
      .then(
        [m](const std::vector<actor_entry>& xs) {
          std::map<std::string, uint64_t> sizes;
          for (auto& e : xs)
            sizes[e.path] = e.mailbox_size;
          m->mailboxes(std::move(sizes));
        },
        [](caf::error&) {});
  }

  // `one_way`: arrived with cast_atom (no reply expected) rather than as a request.
  caf::result<std::string> on_wire(const std::string& bytes, bool one_way) {
    if (auto m = metrics()) {
      ++m->messages_in;
      m->bytes_in += bytes.size();
    }
    auto env = decode(bytes);
    auto sender = caf::actor_cast<caf::actor>(self_->current_sender());
    if (!env) {
      if (auto m = metrics())
        ++m->decode_errors;
      spdlog::error("cluster: rejected a malformed envelope of {} bytes from {}: {}",
                    bytes.size(), caf::to_string(self_->current_sender()), describe(env.error()));
      return env.error();
    }
    auto from = env->from;
    if (from == name()) {
      spdlog::error("cluster: an envelope claims to come from this node ({}); ignored", from);
      return make_error(runtime_errc::bad_request, "sender uses this node's name");
    }
    bool request_kind = std::holds_alternative<join_msg>(env->body)
                        || std::holds_alternative<admin_request>(env->body)
                        || std::holds_alternative<bench_echo>(env->body)
                        || std::holds_alternative<service_call>(env->body);
    if (one_way && request_kind) {
      spdlog::error("cluster: {} sent a request envelope without expecting a reply", from);
      return std::string{};
    }
    if (auto i = st_->peers.find(from); i != st_->peers.end())
      i->second.last_seen = self_->clock().now();
    return std::visit(
      [&](auto& body) -> caf::result<std::string> { return handle(from, env->trace_id, sender, body); },
      env->body);
  }

  caf::result<std::string> handle(const std::string& from, uint64_t, const caf::actor& sender,
                                  join_msg& j) {
    if (j.self.name != from || j.self.name.empty())
      return make_error(runtime_errc::bad_request, "join: sender and row disagree");
    j.self.status = member_status::alive;
    bool changed = merge(j.self, true);
    adopt(from, sender);
    auto& p = st_->peers[from];
    if (p.info.status != member_status::alive) {
      p.info.status = member_status::alive;
      changed = true;
    }
    update_gauges();
    if (changed)
      broadcast(table());
    return envelope_bytes(table());
  }

  caf::result<std::string> handle(const std::string& from, uint64_t, const caf::actor& sender,
                                  member_table& t) {
    bool changed = false;
    for (auto& m : t.members)
      changed |= merge(m, false);
    // A table from a member we have no handle for yet (the reply to our join arrives as a
    // response, handled in `on_join_reply`; gossip arrives here) also gives us its handle.
    adopt(from, sender);
    update_gauges();
    if (changed)
      broadcast(table());
    return std::string{};
  }

  caf::result<std::string> handle(const std::string& from, uint64_t, const caf::actor& sender,
                                  heartbeat& hb) {
    auto i = st_->peers.find(from);
    if (i == st_->peers.end() || hb.incarnation < i->second.info.incarnation)
      return std::string{};
    adopt(from, sender);
    if (i->second.info.status == member_status::down && hb.incarnation == i->second.info.incarnation) {
      spdlog::info("cluster: member {} is alive again", from);
      i->second.info.status = member_status::alive;
      update_gauges();
      broadcast(table());
    }
    return std::string{};
  }

  caf::result<std::string> handle(const std::string& from, uint64_t, const caf::actor&,
                                  leave_msg& l) {
    auto i = st_->peers.find(from);
    if (i != st_->peers.end() && l.incarnation >= i->second.info.incarnation)
      mark_down(from, member_status::left, "left the cluster");
    return std::string{};
  }

  caf::result<std::string> handle(const std::string&, uint64_t trace, const caf::actor&,
                                  admin_request& req) {
    auto rp = self_->make_response_promise();
    req.node.clear(); // we are the target
    execute(req, [this, rp, trace](admin_reply r) mutable {
      rp.deliver(envelope_bytes(std::move(r), trace));
    });
    return rp;
  }

  caf::result<std::string> handle(const std::string& from, uint64_t, const caf::actor&,
                                  admin_reply&) {
    return make_error(runtime_errc::bad_request, "unsolicited admin reply from " + from);
  }

  caf::result<std::string> handle(const std::string&, uint64_t trace, const caf::actor&,
                                  bench_echo& e) {
    return envelope_bytes(std::move(e), trace);
  }

  caf::result<std::string> handle(const std::string&, uint64_t trace, const caf::actor&,
                                  service_call& c) {
    auto rp = self_->make_response_promise<std::string>();
    call_local(c.service, std::move(c.payload),
               [this, rp, trace](caf::expected<std::string> r) mutable {
                 service_reply out;
                 if (r) {
                   out.payload = std::move(*r);
                 } else {
                   out.error = message_of(r.error());
                   out.error_code = to_string(wire_code(r.error()));
                 }
                 rp.deliver(envelope_bytes(std::move(out), trace));
               });
    return rp;
  }

  caf::result<std::string> handle(const std::string& from, uint64_t, const caf::actor&,
                                  service_reply&) {
    return make_error(runtime_errc::bad_request, "unsolicited service reply from " + from);
  }

  // The answer to our own `join`: the seed's table.
  void on_join_reply(const std::string& bytes, const caf::actor& from_handle,
                     const std::string& via) {
    if (bytes.empty())
      return;
    auto env = decode(bytes);
    if (!env) {
      spdlog::error("cluster: malformed join reply: {}", describe(env.error()));
      return;
    }
    if (env->from == name()) {
      spdlog::error("cluster: {} answered as ourselves ({}); is it our own address or a "
                    "name clash?", via, name());
      return;
    }
    st_->seed_names[via] = env->from;
    if (auto* t = std::get_if<member_table>(&env->body)) {
      bool changed = false;
      for (auto& m : t->members)
        changed |= merge(m, m.name == env->from);
      adopt(env->from, from_handle);
      update_gauges();
      if (changed)
        broadcast(table());
    }
  }

  // -- service calls --

  // Hands `payload` to the service actor registered as `service` on this node.
  void call_local(const std::string& service, std::string payload,
                  std::function<void(caf::expected<std::string>)> done) {
    caf::actor h;
    if (!service.empty() && service.size() <= 10)
      h = self_->system().registry().get<caf::actor>(caf::atom_from_string(service));
    if (!h) {
      done(make_error(runtime_errc::not_found,
                      "node " + name() + " runs no service \"" + service + "\""));
      return;
    }
    // No timeout here: the caller (e.g. a coordinator) owns the deadline.
    self_->request(h, caf::infinite, call_atom::value, std::move(payload))
      .then([done](std::string& r) { done(std::move(r)); },
            [done](caf::error& err) { done(std::move(err)); });
  }

  // `(call_atom, node, service, payload)`: runs on `node` ("" = here); answers the service's
  // reply bytes, or an error (`peer_down` as soon as the node is seen failing).
  caf::result<std::string> service(std::string node, std::string service, std::string payload) {
    auto rp = self_->make_response_promise<std::string>();
    if (node.empty() || node == name()) {
      call_local(service, std::move(payload), [rp](caf::expected<std::string> r) mutable {
        if (r)
          rp.deliver(std::move(*r));
        else
          rp.deliver(std::move(r.error()));
      });
      return rp;
    }
    // The promise took the request's sender: every answer from here goes through it (a
    // returned error would be dropped).
    auto i = st_->peers.find(node);
    if (i == st_->peers.end()) {
      rp.deliver(make_error(runtime_errc::unknown_node, "no member named \"" + node + "\""));
      return rp;
    }
    auto& p = i->second;
    if (p.info.status != member_status::alive || !p.handle) {
      rp.deliver(make_error(runtime_errc::peer_down,
                            "node " + node + " is " + to_string(p.info.status)));
      return rp;
    }
    auto id = st_->next_call++;
    st_->pending.emplace(id, pending_call{node, [rp](runtime_errc code, const std::string& why) mutable {
                                            rp.deliver(make_error(code, why));
                                          }});
    self_->request(p.handle, caf::infinite, wire_atom::value,
                   envelope_bytes(service_call{std::move(service), std::move(payload)}))
      .then(
        [this, id, rp](const std::string& bytes) mutable {
          if (!take_pending(id))
            return; // already failed (peer down)
          auto env = decode(bytes);
          if (!env) {
            rp.deliver(env.error());
            return;
          }
          auto* r = std::get_if<service_reply>(&env->body);
          if (!r)
            rp.deliver(make_error(runtime_errc::bad_request, "reply is not a service reply"));
          else if (!r->error.empty())
            rp.deliver(make_error(parse_error_code(r->error_code), r->error));
          else
            rp.deliver(std::move(r->payload));
        },
        [this, id, rp, node](caf::error& err) mutable {
          if (!take_pending(id))
            return;
          rp.deliver(make_error(runtime_errc::peer_down,
                                "call to " + node + " failed: " + describe(err)));
        });
    return rp;
  }

  // Forgets pending call `id`; false when it was already answered (failed at peer down).
  bool take_pending(uint64_t id) {
    auto i = st_->pending.find(id);
    if (i == st_->pending.end())
      return false;
    st_->pending.erase(i);
    return true;
  }

  // -- operator commands --

  void admin(admin_request req, admin_done sink) {
    if (auto m = metrics())
      ++m->admin_requests;
    if (req.node.empty() || req.node == name()) {
      execute(req, std::move(sink));
      return;
    }
    auto i = st_->peers.find(req.node);
    if (i == st_->peers.end()) {
      sink(admin_error(error_code::unknown_node,
                       "no member named \"" + req.node + "\" (see `nodes`)"));
      return;
    }
    auto& p = i->second;
    if (p.info.status != member_status::alive || !p.handle) {
      auto r = admin_error(error_code::peer_down,
                           "node " + req.node + " is " + to_string(p.info.status));
      r.node = req.node;
      sink(std::move(r));
      return;
    }
    auto id = st_->next_call++;
    auto target = req.node;
    st_->pending.emplace(id, pending_call{target, [sink, target](runtime_errc code,
                                                                 const std::string& why) {
                                            auto r = admin_error(wire_code(make_error(code, "")), why);
                                            r.node = target;
                                            sink(std::move(r));
                                          }});
    self_->request(p.handle, st_->cfg.request_timeout, wire_atom::value,
                   envelope_bytes(std::move(req)))
      .then(
        [this, id, sink](const std::string& bytes) {
          if (!take_pending(id))
            return; // already failed (peer down)
          auto env = decode(bytes);
          if (!env) {
            sink(admin_error(error_code::internal, "malformed reply: " + describe(env.error())));
            return;
          }
          if (auto* r = std::get_if<admin_reply>(&env->body))
            sink(std::move(*r));
          else
            sink(admin_error(error_code::internal, "reply is not an admin reply"));
        },
        [this, id, target, sink](caf::error& err) {
          if (!take_pending(id))
            return;
          bool timeout = err == caf::sec::request_timeout;
          auto r = admin_error(timeout ? error_code::timeout : error_code::internal,
                               "request to " + target + " failed: " + describe(err));
          r.node = target;
          sink(std::move(r));
        });
  }

  void execute(const admin_request& req, admin_done sink) {
    auto me = name();
    auto finish = [me, sink](admin_reply r) {
      r.node = me;
      sink(std::move(r));
    };
    auto fail = [finish](caf::error& err) {
      if (err == caf::sec::request_receiver_down)
        finish(admin_error(error_code::not_running, "the target actor is not running (it may "
                                                    "be restarting; see `tree`)"));
      else
        finish(admin_error(wire_code(err), describe(err)));
    };
    auto timeout = std::chrono::seconds{5};
    switch (req.command) {
      case admin_command::members: {
        admin_reply r;
        r.members = table().members;
        finish(std::move(r));
        return;
      }
      case admin_command::stats: {
        admin_reply r;
        if (auto m = metrics())
          r.stats = m->snapshot();
        r.stats.push_back({"incarnation", static_cast<double>(st_->self_row.incarnation)});
        r.stats.push_back({"pending_requests", static_cast<double>(st_->pending.size())});
        finish(std::move(r));
        return;
      }
      case admin_command::tree:
      case admin_command::actors:
        self_->request(st_->ctx.root, timeout, tree_atom::value)
          .then(
            [finish](std::vector<actor_entry>& xs) {
              admin_reply r;
              r.actors = std::move(xs);
              finish(std::move(r));
            },
            fail);
        return;
      case admin_command::kill:
        if (req.path.empty()) {
          finish(admin_error(error_code::invalid_argument, "kill needs an actor path (see `tree`)"));
          return;
        }
        if (req.path == st_->ctx.path) {
          // Crashing ourselves: answer first, we will not be there to answer afterwards.
          finish(admin_reply{});
          self_->send(st_->ctx.root, kill_atom::value, req.path);
          return;
        }
        self_->request(st_->ctx.root, timeout, kill_atom::value, req.path)
          .then([finish](caf::ok_atom) { finish(admin_reply{}); }, fail);
        return;
      case admin_command::get:
      case admin_command::put:
        // Retired: a module serves get and put now (Node.kv()).
        finish(admin_error(error_code::unimplemented,
                           "Admin.get/put are retired: use Node.kv() (console: get, put)"));
        return;
    }
    finish(admin_error(error_code::invalid_argument, "unknown command"));
  }

  // -- lifecycle --

  // Publishes this actor on the cluster port. A restarted incarnation may find the port still
  // held by its predecessor until the middleman processed the unpublish, so retry briefly.
  void publish() {
    auto self_ptr = caf::actor_cast<caf::strong_actor_ptr>(self_);
    auto mm = self_->system().middleman().actor_handle();
    auto port = st_->cfg.cluster_port;
    auto host = st_->cfg.host;
    auto m = st_->ctx.metrics;
    self_->request(mm, std::chrono::seconds{10}, caf::publish_atom::value, port, self_ptr,
                   std::set<std::string>{}, host, true)
      .then(
        [=](uint16_t actual) {
          spdlog::info("cluster: {} listening on {}:{} (incarnation {})", name(), host, actual,
                       st_->self_row.incarnation);
          if (m)
            m->cluster_listening = true;
        },
        [=](caf::error& err) {
          if (++st_->publish_attempts < max_publish_attempts) {
            spdlog::debug("cluster: cannot listen on {}:{} yet: {}", host, port, describe(err));
            self_->delayed_send(self_, std::chrono::milliseconds{100}, caf::publish_atom::value);
            return;
          }
          spdlog::error("cluster: cannot listen on {}:{}: {}", host, port, describe(err));
          self_->quit(err);
        });
  }

  void start() {
    auto mm = self_->system().middleman().actor_handle();
    auto port = st_->cfg.cluster_port;
    publish();
    // Unpublish when this incarnation ends, so a restarted cluster actor can take the port.
    auto addr = self_->address();
    self_->attach_functor([mm, addr, port] { caf::anon_send(mm, caf::unpublish_atom::value, addr, port); });
    for (auto& s : st_->cfg.seeds)
      if (!is_self(st_->cfg, s))
        connect(s.host, s.port, "");
    update_gauges();
    self_->send(self_, tick_atom::value);
  }

  void leave(const caf::error& reason) {
    // Only a stopping node leaves: a restart of this actor (same incarnation) must not make
    // the others show the node as gone, since a late `leave` could overtake our re-join.
    auto m = metrics();
    bool node_stopping = m == nullptr || !m->serving;
    if (node_stopping)
      broadcast(leave_msg{st_->self_row.incarnation});
    auto pending = std::move(st_->pending);
    st_->pending.clear();
    for (auto& [id, call] : pending)
      call.fail(runtime_errc::shutting_down,
                node_stopping ? "node " + name() + " is stopping"
                              : "the cluster actor of " + name() + " is restarting ("
                                  + describe(reason) + ")");
    if (m)
      m->cluster_listening = false;
    self_->quit(reason);
  }

private:
  caf::event_based_actor* self_;
  std::shared_ptr<cluster_state> st_;
};

} // namespace

caf::behavior cluster_impl(caf::event_based_actor* self, child_context ctx, cluster_args args) {
  auto st = std::make_shared<cluster_state>();
  st->cfg = args.config;
  st->ctx = std::move(ctx);
  st->self_row.name = st->cfg.name;
  st->self_row.host = st->cfg.host;
  st->self_row.cluster_port = st->cfg.cluster_port;
  st->self_row.rpc_port = st->cfg.rpc_port;
  st->self_row.http_port = st->cfg.http_port;
  st->self_row.roles = st->cfg.roles;
  st->self_row.status = member_status::alive;
  st->self_row.incarnation = args.incarnation;
  auto c = std::make_shared<cluster>(self, st);
  register_as(self->system(), cluster_name, caf::actor_cast<caf::actor>(self));
  self->set_down_handler([c](caf::down_msg& dm) { c->on_down(dm); });
  // Trap exits so a graceful stop can tell the others before going.
  self->set_exit_handler([c](caf::exit_msg& em) { c->leave(em.reason); });
  c->start();
  // Every line a handler logs names this actor (JSON logs).
  auto path = std::make_shared<const std::string>(st->ctx.path);
  return {
    [c, path](wire_atom, const std::string& bytes) {
      log_context lc{*path, 0};
      return c->on_wire(bytes, false);
    },
    [c, path](cast_atom, const std::string& bytes) {
      log_context lc{*path, 0};
      (void) c->on_wire(bytes, true);
    },
    [c, self](admin_atom, admin_request& req) -> caf::result<admin_reply> {
      auto rp = self->make_response_promise<admin_reply>();
      c->admin(std::move(req), [rp](admin_reply r) mutable { rp.deliver(std::move(r)); });
      return rp;
    },
    [c](call_atom, std::string& node, std::string& service, std::string& payload) {
      return c->service(std::move(node), std::move(service), std::move(payload));
    },
    [c, path](tick_atom) {
      log_context lc{*path, 0};
      c->on_tick();
    },
    [c](caf::publish_atom) { c->publish(); },
    [self](probe_atom) -> uint64_t { return self->mailbox().size(); },
  };
}

} // namespace wharf::runtime
