@0xe56631d8d6d38b72;
# External Cap'n Proto RPC API of a wharf-node (apps, the console). Each node serves it on its
# RPC port; the bootstrap capability is `Node`. Compatibility: never renumber an ordinal.
#
# Services are modules (runtime/module/service_module.hpp): `Node` has one typed accessor per
# service, named as the module (`analytics`, `kv`), and `service(name)` for any module by
# name. A node that does not run a module answers its accessor with an UNIMPLEMENTED error.

using Cxx = import "/capnp/c++.capnp";
$Cxx.namespace("wharf::api");

using Cluster = import "cluster.capnp";
using Reports = import "analytics.capnp";
using Kv = import "kv.capnp";

# Bootstrap capability: hands out the services this node offers.
interface Node {
  # The operator interface (members, tree, actors, stats, fault injection).
  admin @0 () -> (admin :Admin);
  # Offloaded reports over PostgreSQL (module `analytics`).
  analytics @1 () -> (analytics :Analytics);
  # The durable key/value register (module `kv`).
  kv @2 () -> (kv :Register);
  # The capability of the module named `name` (as in `wharf-node --help`), for modules
  # without a typed accessor here; cast it to the module's interface.
  service @3 (name :Text) -> (service :Capability);
}

# Receives progress of a running report (partitions done); the node calls it as partitions
# complete and once more when the report ends. Errors it raises are ignored.
interface ProgressSink {
  progress @0 (progress :Reports.Progress) -> ();
}

# Offloaded SQL analytics. Every failure is reported in the response (`status`,
# `errorCode`, `errorMessage`, `sqlstate`), not as an RPC exception.
interface Analytics {
  # Runs the report and answers when it finished, failed, timed out or was cancelled.
  # Results over analytics.large_result_rows come back as `resultRef` for `fetchResult`.
  generateReport @0 (request :Reports.ReportRequest, progress :ProgressSink)
      -> (response :Reports.ReportResponse);
  # Starts the report and answers at once (status pending or running, with its id).
  submit @1 (request :Reports.ReportRequest, progress :ProgressSink)
      -> (response :Reports.ReportResponse);
  # Where a report is; when done, its result (or reference) as `generateReport` gives it.
  status @2 (reportId :Text) -> (response :Reports.ReportResponse);
  # Stops a running report: its readers stop and free their connections.
  cancel @3 (reportId :Text) -> (response :Reports.ReportResponse);
  # Rows [offset, offset + limit) of a stored result (limit 0 = 10000, at most 100000).
  fetchResult @4 (ref :Text, offset :UInt64, limit :UInt32) -> (page :Reports.ResultPage);
  # The reports `node` coordinates (empty = the node this connection reaches): running and
  # queued ones first, then recently finished ones, newest first. `error`/`errorCode` are set
  # when `node` cannot answer (unknown, down).
  list @5 (node :Text) -> (list :Reports.ReportList);
}

# The durable key/value register of each node (module `kv`): the simplest stateful service,
# behind the console's `get` and `put`. `node` names the member that must answer (empty =
# the node this connection reaches); the call is forwarded over the cluster, and fails at
# once with errorCode PEER_DOWN when that node goes down meanwhile. Failures are reported in
# `reply.error`/`reply.errorCode`, never as RPC exceptions.
interface Register {
  # Reads `key`; `reply.found` tells whether it exists.
  get @0 (node :Text, key :Text) -> (reply :Kv.RegisterReply);
  # Writes `key` = `value`; the reply comes once the write is durable.
  put @1 (node :Text, key :Text, value :Text) -> (reply :Kv.RegisterReply);
}

# Operator interface. Every method takes `node`: the name of the member that must answer
# (empty = the node this connection reaches). The receiving node forwards the call over the
# cluster; a call towards a member that goes down fails at once with errorCode PEER_DOWN.
# Failures are reported in `reply.error`/`reply.errorCode`, not as RPC exceptions, so the
# caller always learns why.
interface Admin {
  # The member table (name, addresses, roles, status, incarnation).
  members @0 (node :Text) -> (reply :Cluster.AdminReply);
  # The supervision tree, in depth-first order, with restart counts.
  tree @1 (node :Text) -> (reply :Cluster.AdminReply);
  # Managed actors with mailbox sizes.
  actors @2 (node :Text) -> (reply :Cluster.AdminReply);
  # Node counters: messages in/out, restarts, members alive/down, decode errors.
  stats @3 (node :Text) -> (reply :Cluster.AdminReply);
  # Crashes the actor at `path` (fault injection); its supervisor restarts it per its policy.
  kill @4 (node :Text, path :Text) -> (reply :Cluster.AdminReply);
  # Deprecated: the register is a module now (`Node.kv()`); answers errorCode UNIMPLEMENTED.
  get @5 (node :Text, key :Text) -> (reply :Cluster.AdminReply);
  # Deprecated: see `get`.
  put @6 (node :Text, key :Text, value :Text) -> (reply :Cluster.AdminReply);
}
