@0xf492acf8b35e56b2;
# Node-to-node messages of a wharf cluster. Every message between two wharf-nodes is one
# `Envelope`, encoded as a flat (unpacked) Cap'n Proto message and carried as bytes inside a
# CAF message. Receivers decode with traversal and nesting limits (see protocols/codec.hpp).
# Compatibility: never renumber or reuse an ordinal; add new union members at the end.

using Cxx = import "/capnp/c++.capnp";
$Cxx.namespace("wharf::wire");

# Liveness of a cluster member as seen by the node that reports it.
enum MemberStatus {
  alive @0;   # heartbeats arrive and the connection is up
  down @1;    # connection lost or heartbeats missing for longer than the failure timeout
  left @2;    # the member announced a graceful stop
}

# One row of the member table.
struct Member {
  name @0 :Text;          # unique node name, stable across restarts (e.g. "n1")
  host @1 :Text;          # address the node's ports listen on (e.g. "127.0.0.1")
  clusterPort @2 :UInt16; # CAF BASP port other nodes connect to
  rpcPort @3 :UInt16;     # Cap'n Proto RPC port for apps and the console (0 = none)
  httpPort @4 :UInt16;    # HTTP port for /health and /metrics (0 = none)
  roles @5 :List(Text);   # services this node runs (e.g. "worker", "gateway")
  status @6 :MemberStatus;
  incarnation @7 :UInt64; # grows with every start of the node; higher wins on merge
}

# "Here I am": sent by a node to every member it learns of, starting with its seeds.
# The receiver answers with a `members` envelope holding its whole table.
struct Join {
  member @0 :Member;      # the sender's own row
}

# A full member table: the reply to `join`, and the gossip sent when the table changes.
struct MemberTable {
  members @0 :List(Member);
}

# Periodic liveness signal; a member silent for longer than the failure timeout is down.
struct Heartbeat {
  incarnation @0 :UInt64; # the sender's incarnation, so a stale process is told apart
}

# Graceful stop: the sender leaves the cluster and should be shown as `left`.
struct Leave {
  incarnation @0 :UInt64;
}

# Operator commands, forwarded to the node that must execute them.
enum AdminCommand {
  members @0;  # the member table as this node sees it
  tree @1;     # the supervision tree
  actors @2;   # every managed actor with its mailbox size
  stats @3;    # node counters (messages, restarts, members)
  kill @4;     # crash the actor at `path` (fault injection)
  get @5;      # read `key` from the node's durable register (system/kv)
  put @6;      # write `key` = `value` to the durable register
}

struct AdminRequest {
  command @0 :AdminCommand;
  node @1 :Text;          # target node name; empty = the node that receives the request
  path @2 :Text;          # actor path for `kill`
  key @3 :Text;           # register key for `get`/`put`
  value @4 :Text;         # register value for `put`
}

# One managed actor in a node's supervision tree.
struct ActorEntry {
  path @0 :Text;          # e.g. "system/kv"; children extend their parent's path
  depth @1 :UInt16;       # 0 for the root supervisor
  kind @2 :Text;          # "supervisor" or "worker"
  strategy @3 :Text;      # supervisors: one_for_one | one_for_all | rest_for_one
  restartType @4 :Text;   # permanent | transient | temporary
  restarts @5 :UInt32;    # how often the supervisor restarted this child
  status @6 :Text;        # running | stopped | failed
  actorId @7 :UInt64;     # CAF actor id of the current incarnation (0 when not running)
  mailboxSize @8 :UInt64; # messages waiting, when the actor answered the probe
}

# A named counter or gauge.
struct Stat {
  name @0 :Text;
  value @1 :Float64;
}

struct AdminReply {
  error @0 :Text;         # empty on success; otherwise a one-line human-readable reason
  errorCode @1 :Text;     # machine-readable reason (protocols/error_code.hpp): NOT_FOUND, PEER_DOWN, ...
  members @2 :List(Member);
  actors @3 :List(ActorEntry);
  stats @4 :List(Stat);
  value @5 :Text;         # `get`: the value
  found @6 :Bool;         # `get`: whether the key exists
  node @7 :Text;          # the node that executed the command
}

# Benchmark payload: echoed back unchanged by the receiver (bench/messaging).
struct BenchEcho {
  seq @0 :UInt64;
  sentNanos @1 :Int64;
  payload @2 :Data;
}

# A call to a named service actor on the receiving node (e.g. "analytics"); the payload is
# that service's own Cap'n Proto message (analytics.capnp `WorkerCall`).
struct ServiceCall {
  service @0 :Text;
  payload @1 :Data;
}

# The answer to a `ServiceCall`: the service's reply payload, or why there is none.
struct ServiceReply {
  payload @0 :Data;
  error @1 :Text;         # empty on success
  errorCode @2 :Text;     # protocols/error_code.hpp: NOT_FOUND (no such service), PEER_DOWN, ...
}

struct Envelope {
  traceId @0 :UInt64;     # carried from the request that caused this message; 0 = none
  from @1 :Text;          # sender node name
  body :union {
    join @2 :Join;
    members @3 :MemberTable;
    heartbeat @4 :Heartbeat;
    leave @5 :Leave;
    adminRequest @6 :AdminRequest;
    adminReply @7 :AdminReply;
    benchEcho @8 :BenchEcho;
    serviceCall @9 :ServiceCall;
    serviceReply @10 :ServiceReply;
  }
}
