@0x9c9af48533355efc;
# Offloaded analytics (issue 3): the report contract apps use (through api.capnp's `Analytics`
# and HTTP /v1/reports) and the messages a report coordinator exchanges with the analytics
# service of every worker node (carried as `ServiceCall.payload` in cluster.capnp).
# Compatibility: never renumber or reuse an ordinal; add new union members at the end.

using Cxx = import "/capnp/c++.capnp";
$Cxx.namespace("wharf::reports");

# -- the app-facing contract --

# One typed cell of a result row.
struct Value {
  union {
    null @0 :Void;
    int @1 :Int64;
    float @2 :Float64;
    text @3 :Text;     # text columns, and timestamps/dates/numerics rendered as PostgreSQL does
    bool @4 :Bool;
  }
}

struct Column {
  name @0 :Text;
  type @1 :Text;       # "int" | "float" | "text" | "bool"
}

struct Row {
  values @0 :List(Value);
}

# How partitions read PostgreSQL. `auto` picks per request from PostgreSQL's statistics.
enum ReadMode {
  auto @0;
  pushdown @1;         # partial GROUP BY in PostgreSQL, partial states shipped
  pull @2;             # COPY (...) TO STDOUT (FORMAT binary), aggregated in C++ hash tables
}

enum ReportStatus {
  pending @0;
  running @1;
  done @2;
  failed @3;
  timeout @4;
  cancelled @5;
}

# Equality filter on a column the report allows (`filter_columns`); the value is bound as a
# parameter and cast by PostgreSQL to the column's type.
struct Filter {
  column @0 :Text;
  value @1 :Text;
}

struct ReportRequest {
  reportName @0 :Text;       # e.g. "user_behavior_report"
  startDate @1 :Text;        # "YYYY-MM-DD" (its midnight) or a full timestamp; inclusive
  endDate @2 :Text;          # inclusive (SQL BETWEEN)
  userIds @3 :List(Int64);   # empty = every user
  filters @4 :List(Filter);
  mode @5 :ReadMode;
  deadlineMs @6 :UInt32;     # 0 = the node's default (analytics.default_deadline_ms)
  traceId @7 :UInt64;        # 0 = the node assigns one
  partitions @8 :UInt32;     # 0 = analytics.partitions (default 4 x worker threads in the cluster)
}

struct ReportResponse {
  reportId @0 :Text;
  status @1 :ReportStatus;
  errorMessage @2 :Text;     # empty unless failed/timeout/cancelled
  errorCode @3 :Text;        # NOT_FOUND | INVALID_ARGUMENT | TIMEOUT | CANCELLED | PG_ERROR | UNAVAILABLE | INTERNAL
  sqlstate @4 :Text;         # PostgreSQL's SQLSTATE when errorCode = PG_ERROR
  columns @5 :List(Column);
  rows @6 :List(Row);        # the result, ordered by the group keys, unless `resultRef` is set
  resultRef @7 :Text;        # large results: page through them with `fetchResult`
  totalRows @8 :UInt64;
  modeUsed @9 :ReadMode;
  partitions @10 :UInt32;
  partitionsDone @11 :UInt32;
  retries @12 :UInt32;       # partitions re-run (node failures, errors)
  elapsedMs @13 :UInt64;
  traceId @14 :UInt64;
  node @15 :Text;            # the coordinating node
  rowsRead @16 :UInt64;      # rows (pull) or partial groups (pushdown) read from PostgreSQL
}

struct Progress {
  reportId @0 :Text;
  partitionsDone @1 :UInt32;
  partitionsTotal @2 :UInt32;
  rowsRead @3 :UInt64;
  status @4 :ReportStatus;
}

# A page of a stored result (`fetchResult`). The rows come column-wise in `data`: one
# `ColumnValues` per entry of `columns`, each holding `rowCount` values (a page of 100,000
# rows is about a quarter of the size of the same rows as `List(Row)`, and cheap to read).
struct ResultPage {
  columns @0 :List(Column);
  rows @1 :List(Row);        # not set by this version: see `data`
  offset @2 :UInt64;
  totalRows @3 :UInt64;
  error @4 :Text;            # e.g. unknown or expired reference
  errorCode @5 :Text;
  data @6 :List(ColumnValues);
  rowCount @7 :UInt32;
}

# One column of a page: `rowCount` values of the column's type ("int" -> ints, "float" ->
# floats, "bool" -> bools, "text" -> texts).
struct ColumnValues {
  nulls @0 :List(Bool);      # empty when no value is NULL; else one flag per row (true = NULL)
  union {
    ints @1 :List(Int64);
    floats @2 :List(Float64);
    bools @3 :List(Bool);
    texts @4 :TextValues;
  }
}

# Text values back to back: value i is bytes[ends[i-1] .. ends[i]) (ends[-1] = 0).
struct TextValues {
  bytes @0 :Data;
  ends @1 :List(UInt32);
}

# One report a node coordinates, as `Analytics.list` (and the console's `reports`) shows it.
struct ReportSummary {
  reportId @0 :Text;
  name @1 :Text;             # the report's name
  status @2 :ReportStatus;   # pending = waiting in the admission queue
  mode @3 :ReadMode;         # the mode asked for until planned, then the mode used
  partitions @4 :UInt32;
  partitionsDone @5 :UInt32;
  elapsedMs @6 :UInt64;      # since submitted (running) or until finished
  coordinator @7 :Text;      # the node that coordinates it
  errorCode @8 :Text;        # when it ended in an error
  rowsRead @9 :UInt64;
}

# The reports one node coordinates: running and queued first, then finished, newest first.
struct ReportList {
  reports @0 :List(ReportSummary);
  node @1 :Text;             # the node that answered
  error @2 :Text;            # set when the node could not answer (then errorCode too)
  errorCode @3 :Text;
}

# What the RPC/HTTP front end hands the node's analytics service (one message per call).
struct ApiCall {
  union {
    generate @0 :ReportRequest;  # run and answer when finished
    submit @1 :ReportRequest;    # answer at once with the report id (status pending/running)
    status @2 :Text;             # report id
    cancel @3 :Text;             # report id
    fetch @4 :FetchRequest;
    list @5 :Void;               # the reports this node coordinates (ReportList)
  }
}

struct FetchRequest {
  ref @0 :Text;
  offset @1 :UInt64;
  limit @2 :UInt32;
}

# -- coordinator <-> worker node (node-to-node) --

enum AggFn {
  count @0;
  sum @1;
  avg @2;
  min @3;
  max @4;
  countDistinct @5;
}

struct Aggregate {
  fn @0 :AggFn;
  column @1 :Text;
  name @2 :Text;
}

# A resolved report definition: workers need no configuration of their own.
struct ReportDef {
  name @0 :Text;
  table @1 :Text;
  partitionColumn @2 :Text;
  timeColumn @3 :Text;
  userColumn @4 :Text;
  groupBy @5 :List(Text);
  aggregates @6 :List(Aggregate);
  filterColumns @7 :List(Text);
  columnTypes @8 :List(Column);   # PostgreSQL types (format_type) of the referenced columns
  keyKinds @9 :List(Text);        # per group-by column: int | float | bool | text
  keyAsText @10 :List(Bool);      # selected as ::text (types without a native decoding)
  notNull @11 :List(Text);        # referenced columns declared NOT NULL (count(c) = count(*))
}

# Rows with lo <= partitionColumn < hi.
struct Partition {
  id @0 :UInt32;
  lo @1 :Int64;
  hi @2 :Int64;
}

# Read one partition and merge it into this node's partial for the report.
struct ReadTask {
  reportId @0 :Text;
  def @1 :ReportDef;
  startDate @2 :Text;
  endDate @3 :Text;
  userIds @4 :List(Int64);
  filters @5 :List(Filter);
  mode @6 :ReadMode;         # pushdown or pull (never auto here)
  partition @7 :Partition;
  deadlineMs @8 :UInt32;     # the worker drops the report's state after this
  snapshot @9 :Text;         # pg_export_snapshot() of the coordinator: every partition reads it
  partitions @10 :UInt32;    # how many partitions the report has (0 = unknown): scales JIT
  more @11 :List(Partition); # pushdown: adjacent partitions after `partition`, read with it
                             # as one statement (each one's lo is the previous one's hi)
  session @12 :List(Setting); # the coordinator's session settings every read applies
}

# A PostgreSQL setting (set_config name and value).
struct Setting {
  name @0 :Text;
  value @1 :Text;
}

# Page through this node's merged partial (groups in a stable order).
struct Collect {
  reportId @0 :Text;
  offset @1 :UInt64;
  limit @2 :UInt32;
}

# Partial aggregate states, column-wise. Group g's key is the g-th run of key bytes: for each
# group-by column an Int32 length (-1 = NULL) and the value in PostgreSQL's binary format.
# Per aggregate a (state index) the vectors hold ngroups entries, group-major:
# counts[g * naggs + a] = non-NULL inputs (or rows for count(*)); sums hold, group-major, one
# entry per group and aggregate that keeps a sum (sum, avg) in aggregate order, mins one per
# min and maxs one per max aggregate (a count ships no float state); distinct[g * naggs + a]
# = concatenated length-prefixed distinct values (count_distinct only).
struct PartialChunk {
  partitionIds @0 :List(UInt32);  # every partition merged into this node's partial
  totalGroups @1 :UInt64;
  offset @2 :UInt64;
  keys @3 :Data;
  counts @4 :List(Int64);
  sums @5 :List(Float64);
  mins @6 :List(Float64);
  maxs @7 :List(Float64);
  distinct @8 :List(Data);
  groups @9 :UInt32;              # groups in this chunk
  # The compact form writers use (readers take either): the keys front-coded — per group a
  # varint count of leading bytes shared with the previous key of the chunk, a varint count of
  # the bytes that follow, those bytes — and the counts as varints; `keys`/`counts` empty.
  packedKeys @10 :Data;
  packedCounts @11 :Data;
}

struct TaskDone {
  partitionId @0 :UInt32;
  rowsRead @1 :UInt64;
}

struct WorkerError {
  code @0 :Text;             # PG_ERROR | INVALID_ARGUMENT | CANCELLED | NOT_FOUND | INTERNAL
  message @1 :Text;
  sqlstate @2 :Text;
}

# What a node knows of a report's partitions: the coordinator's check for lost messages.
struct Known {
  merged @0 :List(UInt32);   # read into this node's partial
  active @1 :List(UInt32);   # queued or being read
}

struct WorkerCall {
  union {
    read @0 :ReadTask;
    collect @1 :Collect;
    release @2 :Text;        # report id: drop this node's partial, cancel its readers
    probe @3 :Text;          # report id: answer `known`
    list @4 :Void;           # the reports this node coordinates: answer `list`
    api @5 :Data;            # an encoded ApiCall (status, cancel, fetch) for the report this
                             # node coordinates (its id starts with the node's name), sent by
                             # the node an app asked: answer `api`
  }
}

struct WorkerReply {
  union {
    done @0 :TaskDone;
    chunk @1 :PartialChunk;
    released @2 :Void;
    error @3 :WorkerError;
    known @4 :Known;
    list @5 :ReportList;
    api @6 :Data;            # the encoded answer (ReportResponse or ResultPage) to `api`
  }
}
