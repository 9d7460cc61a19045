#pragma once
/// Plain C++ mirrors of the structs in `cluster.capnp`, used inside a node. Nodes exchange them
/// only in their Cap'n Proto encoding (see `protocols/codec.hpp`); the `inspect` overloads exist
/// so the same structs can travel in *local* CAF messages and serve as the CAF-native contender
/// in bench/messaging.

#include <cstdint>
#include <string>
#include <variant>
#include <vector>

#include <caf/meta/type_name.hpp>

namespace wharf::protocols {

/// Liveness of a cluster member. Crosses the wire as `MemberStatus`.
enum class member_status : uint8_t { alive, down, left };

/// Returns "alive", "down" or "left".
const char* to_string(member_status x) noexcept;

/// One row of the member table (`Member` in cluster.capnp).
struct member {
  std::string name;
  std::string host;
  uint16_t cluster_port = 0;
  uint16_t rpc_port = 0;
  uint16_t http_port = 0;
  std::vector<std::string> roles;
  member_status status = member_status::alive;
  uint64_t incarnation = 0;
  friend bool operator==(const member& a, const member& b) {
    return a.name == b.name && a.host == b.host && a.cluster_port == b.cluster_port
           && a.rpc_port == b.rpc_port && a.http_port == b.http_port && a.roles == b.roles
           && a.status == b.status && a.incarnation == b.incarnation;
  }
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, member& x) {
  return f(caf::meta::type_name("member"), x.name, x.host, x.cluster_port, x.rpc_port,
           x.http_port, x.roles, x.status, x.incarnation);
}

/// Operator commands (`AdminCommand`).
enum class admin_command : uint8_t { members, tree, actors, stats, kill, get, put };

/// Returns the console spelling of a command ("members", "tree", ...).
const char* to_string(admin_command x) noexcept;

/// An operator command addressed to one node (`AdminRequest`).
struct admin_request {
  admin_command command = admin_command::members;
  std::string node;  ///< target node; empty = the receiving node
  std::string path;  ///< `kill`: actor path
  std::string key;   ///< `get`/`put`: register key
  std::string value; ///< `put`: register value
  friend bool operator==(const admin_request& a, const admin_request& b) {
    return a.command == b.command && a.node == b.node && a.path == b.path && a.key == b.key
           && a.value == b.value;
  }
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, admin_request& x) {
  return f(caf::meta::type_name("admin_request"), x.command, x.node, x.path, x.key, x.value);
}

/// One managed actor of a supervision tree (`ActorEntry`).
struct actor_entry {
  std::string path;
  uint16_t depth = 0;
  std::string kind;         ///< "supervisor" | "worker"
  std::string strategy;     ///< supervisors only
  std::string restart_type; ///< permanent | transient | temporary
  uint32_t restarts = 0;
  std::string status;       ///< running | stopped | failed
  uint64_t actor_id = 0;
  uint64_t mailbox_size = 0;
  friend bool operator==(const actor_entry& a, const actor_entry& b) {
    return a.path == b.path && a.depth == b.depth && a.kind == b.kind && a.strategy == b.strategy
           && a.restart_type == b.restart_type && a.restarts == b.restarts
           && a.status == b.status && a.actor_id == b.actor_id
           && a.mailbox_size == b.mailbox_size;
  }
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, actor_entry& x) {
  return f(caf::meta::type_name("actor_entry"), x.path, x.depth, x.kind, x.strategy,
           x.restart_type, x.restarts, x.status, x.actor_id, x.mailbox_size);
}

/// A named counter or gauge (`Stat`).
struct stat {
  std::string name;
  double value = 0;
  friend bool operator==(const stat& a, const stat& b) {
    return a.name == b.name && a.value == b.value;
  }
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, stat& x) {
  return f(caf::meta::type_name("stat"), x.name, x.value);
}

/// The answer to an `admin_request` (`AdminReply`). `error` empty means success.
struct admin_reply {
  std::string error;
  std::string error_code;
  std::vector<member> members;
  std::vector<actor_entry> actors;
  std::vector<stat> stats;
  std::string value;
  bool found = false;
  std::string node;
  friend bool operator==(const admin_reply& a, const admin_reply& b) {
    return a.error == b.error && a.error_code == b.error_code && a.members == b.members
           && a.actors == b.actors && a.stats == b.stats && a.value == b.value
           && a.found == b.found && a.node == b.node;
  }
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, admin_reply& x) {
  return f(caf::meta::type_name("admin_reply"), x.error, x.error_code, x.members, x.actors,
           x.stats, x.value, x.found, x.node);
}

/// Builds a failed reply with a machine-readable code and a human-readable message.
admin_reply make_admin_error(std::string code, std::string message);

/// `Join`: the sender's own row.
struct join_msg {
  member self;
  friend bool operator==(const join_msg& a, const join_msg& b) { return a.self == b.self; }
};

/// `MemberTable`: a full member table.
struct member_table {
  std::vector<member> members;
  friend bool operator==(const member_table& a, const member_table& b) {
    return a.members == b.members;
  }
};

/// `Heartbeat`.
struct heartbeat {
  uint64_t incarnation = 0;
  friend bool operator==(const heartbeat& a, const heartbeat& b) {
    return a.incarnation == b.incarnation;
  }
};

/// `Leave`: graceful stop.
struct leave_msg {
  uint64_t incarnation = 0;
  friend bool operator==(const leave_msg& a, const leave_msg& b) {
    return a.incarnation == b.incarnation;
  }
};

/// `BenchEcho`: benchmark payload.
struct bench_echo {
  uint64_t seq = 0;
  int64_t sent_nanos = 0;
  std::string payload;
  friend bool operator==(const bench_echo& a, const bench_echo& b) {
    return a.seq == b.seq && a.sent_nanos == b.sent_nanos && a.payload == b.payload;
  }
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, bench_echo& x) {
  return f(caf::meta::type_name("bench_echo"), x.seq, x.sent_nanos, x.payload);
}

/// `ServiceCall`: a request for the service actor registered as `service` on the receiver;
/// `payload` is that service's own encoded message.
struct service_call {
  std::string service;
  std::string payload;
  friend bool operator==(const service_call& a, const service_call& b) {
    return a.service == b.service && a.payload == b.payload;
  }
};

/// `ServiceReply`: the service's answer, or why there is none (`error` non-empty).
struct service_reply {
  std::string payload;
  std::string error;
  std::string error_code;
  friend bool operator==(const service_reply& a, const service_reply& b) {
    return a.payload == b.payload && a.error == b.error && a.error_code == b.error_code;
  }
};

/// The body of an envelope: exactly one of the node-to-node messages.
using envelope_body = std::variant<join_msg, member_table, heartbeat, leave_msg, admin_request,
                                   admin_reply, bench_echo, service_call, service_reply>;

/// `Envelope`: what one node sends another.
struct envelope {
  uint64_t trace_id = 0;
  std::string from;
  envelope_body body;
  friend bool operator==(const envelope& a, const envelope& b) {
    return a.trace_id == b.trace_id && a.from == b.from && a.body == b.body;
  }
};

} // namespace wharf::protocols
