#!/usr/bin/env bash
# bench/report: the user behavior report (issue 3) over PostgreSQL, side by side in one run:
#   wharf   `wharf report user_behavior_report` on a 3-node cluster, --mode auto, pushdown, pull
#   SQL     the same report as one SQL statement in PostgreSQL (COPY ... TO STDOUT, CSV to a file)
#   COPY    a raw binary COPY of the rows and columns the report needs, to /dev/null: the cost
#           of only moving the data out of PostgreSQL
#   Dask    bench/report/dask_report.py: the Dask offload article's approach (LocalCluster with
#           2 worker processes x 1 thread, partitioned read_sql_query, groupby), timed without
#           cluster start-up
#   low-cardinality: report `events_by_type` (group by event_type only, from node.toml)
#           with wharf --mode pushdown and auto, against one SQL statement (and Dask)
# over every row of user_events with event_timestamp BETWEEN '2025-01-01' AND
# '2025-12-31 23:59:59' (the whole generated year).
#
# Steps: (1) PostgreSQL: $WHARF_PG_DSN, or else a throwaway PostgreSQL 15 on 127.0.0.1 started
# as in tests/run.sh (as user postgres when root; fsync=off, shared_buffers=4GB, work_mem=64MB
# so the single statement's hash aggregate is not starved, max_wal_size=8GB for the load);
# (2) `wharf datagen user_events --rows N` unless the table already holds N rows (--reload:
# always, with --replace), then VACUUM (FREEZE, ANALYZE) so no contender pays for hint bits;
# (3) a 3-node cluster: deploy/cluster.sh up 3 --base-port P --config node.toml, the file
# holding [analytics] dsn and the [[reports]] entry events_by_type, and one untimed wharf
# report (the cluster's start-up, left out as Dask's LocalCluster start-up is); (4) R rounds, each running
# every contender once in turn (interleaved, so drift hits all alike); the median of each is
# reported (before each run: `sync` and one second's pause, so no contender pays for the
# previous one's pending writeback); (5) every answer is checked against the single SQL
# statement's (bench/report/compare_csv.py: rows sorted, avg_value within a relative 1e-9);
# (6) goals with PASS/MISS:
#   Dask / wharf auto >= 8;  wharf auto / single SQL <= 0.7;  wharf auto / raw COPY <= 1.5;
#   low-cardinality wharf pushdown / single SQL <= 1.2.
# The cluster, the throwaway PostgreSQL and the work directory are removed on exit (the work
# directory is kept, and named, when the run fails).
#
# If `wharf report` does not exist in the build (unknown subcommand), the wharf contenders and
# the cluster are skipped with "wharf report: not available". If Dask cannot be imported, the
# script installs Debian's packages when root (apt-get), otherwise says what to install and
# skips the Dask column.
#
# Usage: bench/report/run.sh [--reload] [N]      (N rows, default 10000000)
#
# Environment:
#   WHARF_BUILD_DIR       build dir with apps/wharf and apps/wharf-node (default
#                         <repo>/build-release if it exists, else <repo>/build)
#   WHARF_BENCH_ALLOW_ANY_BUILD=1  run even if the build dir is not CMAKE_BUILD_TYPE=Release
#   WHARF_PG_DSN          libpq connection string of the PostgreSQL to use (default: start one)
#   WHARF_PG_BIN          PostgreSQL 15 server binaries (default /usr/lib/postgresql/15/bin)
#   WHARF_BENCH_REPEAT    rounds R (default 3)
#   WHARF_BENCH_TIMEOUT   seconds one contender run may take before it counts as failed
#                         (default 900)
#   WHARF_BASE_PORT       n1's cluster port; n1's RPC port is +1 (default 9700)
#   WHARF_BENCH_DASK=0    skip the Dask contenders
#   WHARF_BENCH_KEEP_LOGS=DIR  copy the nodes' logs there at the end, with timeline.csv
#                         (round, contender, start and end in UTC) to match them against
#   WHARF_BENCH_LOG_LEVEL the nodes' log level (default info; debug logs each report's phases)
#   WHARF_PYTHON          Python that sees Debian's dask packages (default /usr/bin/python3)
#
# Output: human lines plus `name,run,value,unit` lines (run = 1..R or median; ratios as
# ratio_<a>_over_<b>,median,X,x). Exit codes: 0 benchmark done (even if a goal is MISSed or a
# contender was skipped); 1 wrong answer, a contender failed, or set-up failed; 2 usage or build
# problem.
set -euo pipefail

script_dir="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo_dir="$(cd "$script_dir/../.." && pwd)"

usage() {
  sed -n '2,/^set -euo/{/^set -euo/d;s/^# \{0,1\}//;p}' "${BASH_SOURCE[0]}"
}

die() {
  echo "bench/report/run.sh: error: $*" >&2
  exit 1
}

usage_error() {
  echo "bench/report/run.sh: $*" >&2
  exit 2
}

is_uint() { [[ "$1" =~ ^[0-9]+$ ]]; }

rows=10000000
reload=0
rows_given=0
while [ $# -gt 0 ]; do
  case "$1" in
    -h|--help) usage; exit 0 ;;
    --reload) reload=1 ;;
    -*) usage_error "unknown option '$1' (try --help)" ;;
    *)
      [ $rows_given = 0 ] || usage_error "unexpected argument '$1' (try --help)"
      rows="$1"; rows_given=1 ;;
  esac
  shift
done
{ is_uint "$rows" && [ "$rows" -ge 1 ]; } || usage_error "N must be a positive whole number, got '$rows'"

if [ -n "${WHARF_BUILD_DIR:-}" ]; then
  build_dir="$WHARF_BUILD_DIR"
elif [ -d "$repo_dir/build-release" ]; then
  build_dir="$repo_dir/build-release"
else
  build_dir="$repo_dir/build"
fi
case "$build_dir" in /*) ;; *) build_dir="$PWD/$build_dir" ;; esac
cli="$build_dir/apps/wharf"
repeat="${WHARF_BENCH_REPEAT:-3}"
base_port="${WHARF_BASE_PORT:-9700}"
pg_bin="${WHARF_PG_BIN:-/usr/lib/postgresql/15/bin}"
py="${WHARF_PYTHON:-/usr/bin/python3}"
want_dask="${WHARF_BENCH_DASK:-1}"
run_timeout="${WHARF_BENCH_TIMEOUT:-900}"
keep_logs="${WHARF_BENCH_KEEP_LOGS:-}"
log_level="${WHARF_BENCH_LOG_LEVEL:-info}"
case "$log_level" in trace|debug|info|warn|error) ;; *)
  usage_error "WHARF_BENCH_LOG_LEVEL must be trace, debug, info, warn or error, got '$log_level'" ;;
esac
if [ -n "$keep_logs" ]; then
  mkdir -p "$keep_logs" && keep_logs="$(cd "$keep_logs" && pwd)" ||
    usage_error "WHARF_BENCH_KEEP_LOGS: cannot use '$keep_logs' as a directory"
  : >"$keep_logs/timeline.csv"
fi
{ is_uint "$repeat" && [ "$repeat" -ge 1 ]; } || usage_error "WHARF_BENCH_REPEAT must be a positive whole number, got '$repeat'"
{ is_uint "$base_port" && [ "$base_port" -ge 1 ] && [ "$base_port" -le 65500 ]; } ||
  usage_error "WHARF_BASE_PORT must be a port number, got '$base_port'"
{ is_uint "$run_timeout" && [ "$run_timeout" -ge 1 ]; } ||
  usage_error "WHARF_BENCH_TIMEOUT must be a positive whole number of seconds, got '$run_timeout'"

# The report's window: the whole generated year, the end as a full timestamp (BETWEEN is
# inclusive on both sides).
ts_start="2025-01-01"
ts_end="2025-12-31 23:59:59"

[ -x "$cli" ] || usage_error "$cli not found. Build it (Release) with:
  cmake -S $repo_dir -B $repo_dir/build-release -DCMAKE_BUILD_TYPE=Release
  cmake --build $repo_dir/build-release --target wharf wharf-node
or point WHARF_BUILD_DIR at a build dir."
build_type="$(sed -n 's/^CMAKE_BUILD_TYPE:[A-Z]*=//p' "$build_dir/CMakeCache.txt" 2>/dev/null || true)"
if [[ "$build_type" != "Release" && "${WHARF_BENCH_ALLOW_ANY_BUILD:-0}" != "1" ]]; then
  usage_error "$build_dir is a '${build_type:-unknown}' build; benchmarks run only from Release
builds (set WHARF_BENCH_ALLOW_ANY_BUILD=1 to override, e.g. to smoke-test the script)."
fi
psql_bin="$(command -v psql || true)"
[ -n "$psql_bin" ] || psql_bin="$pg_bin/psql"
[ -x "$psql_bin" ] || usage_error "psql not found (install postgresql-client-15)"
command -v python3 >/dev/null || usage_error "needs python3 (for compare_csv.py)"

banner() { printf '\n==> %s\n' "$*"; }
now_ns() { date +%s%N; }

work_dir="$(mktemp -d /tmp/wharf-bench-report.XXXXXX)"
out_dir="$work_dir/out"
err_dir="$work_dir/err"
mkdir -p "$out_dir" "$err_dir"
export WHARF_BIN_DIR="$build_dir/apps"
cluster_up=0
pg_dir=""

# shellcheck disable=SC2317  # invoked through the EXIT trap
cleanup() {
  local rc=$?
  if [ -n "$keep_logs" ] && [ -d "$work_dir/logs" ]; then
    cp "$work_dir"/logs/*.log "$keep_logs"/ 2>/dev/null ||
      echo "bench/report/run.sh: warning: could not copy the node logs to $keep_logs" >&2
  fi
  if [ "$cluster_up" = 1 ]; then
    "$repo_dir/deploy/cluster.sh" down --dir "$work_dir" >/dev/null 2>&1 ||
      echo "bench/report/run.sh: warning: cluster.sh down failed; check $work_dir/pids" >&2
    cluster_up=0
  fi
  if [ -n "$pg_dir" ]; then
    WHARF_PG_BIN="$pg_bin" "$repo_dir/deploy/local-pg.sh" remove "$pg_dir" ||
      echo "bench/report/run.sh: warning: could not stop PostgreSQL in $pg_dir" >&2
    pg_dir=""
  fi
  if [ "$rc" -eq 0 ]; then
    rm -rf "$work_dir"
  else
    echo "bench/report/run.sh: outputs, error logs and node logs kept in $work_dir" >&2
  fi
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# -- 1. PostgreSQL --

if [ -n "${WHARF_PG_DSN:-}" ]; then
  dsn="$WHARF_PG_DSN"
else
  banner "starting a throwaway PostgreSQL from $pg_bin (deploy/local-pg.sh)"
  # Under /tmp, not $TMPDIR: every parent directory must be traversable by the postgres user.
  pg_dir="$(mktemp -d /tmp/wharf-bench-pg.XXXXXX)"
  # Sized for a 24 GiB machine that also runs 3 nodes and Dask: the whole table (~0.8 GiB at
  # 10M rows) fits in shared_buffers with room to spare.
  dsn_line="$(WHARF_PG_BIN="$pg_bin" "$repo_dir/deploy/local-pg.sh" start "$pg_dir" \
    --port-from 54529 -c shared_buffers=4GB -c work_mem=64MB -c max_wal_size=8GB)" ||
    die "PostgreSQL did not start"
  eval "$dsn_line"
  dsn="$WHARF_PG_DSN"
  unset WHARF_PG_DSN
  echo "PostgreSQL ready: $dsn (data in $pg_dir, removed on exit)"
fi
shown_dsn="$(sed -E "s/(password=)('[^']*'|[^ ]*)/\1***/; s#(://[^:/@]*:)[^@]*@#\1***@#" <<<"$dsn")"

psql_q() { "$psql_bin" -X -q -v ON_ERROR_STOP=1 -d "$dsn" "$@"; }
# A contender's command, bounded by WHARF_BENCH_TIMEOUT (exit 124 when it hits the bound).
# --foreground keeps it in our process group, so Ctrl-C reaches it.
bounded() { timeout --foreground -k 10 "$run_timeout" "$@"; }

# -- 2. data --

banner "data: user_events with $rows rows"
exists="$(psql_q -At -c "SELECT to_regclass('user_events') IS NOT NULL")" ||
  die "cannot query PostgreSQL at $shown_dsn"
have=0
if [ "$exists" = t ]; then have="$(psql_q -At -c "SELECT count(*) FROM user_events")"; fi
if [ "$exists" = t ] && [ "$have" = "$rows" ] && [ $reload = 0 ]; then
  echo "user_events already holds $rows rows; not reloading (--reload forces it)"
else
  gen=("$cli" datagen user_events --dsn "$dsn" --rows "$rows")
  if [ "$exists" = t ]; then
    echo "user_events holds $have rows; reloading it with $rows"
    gen+=(--replace)
  fi
  "${gen[@]}" || die "wharf datagen failed"
fi
t0=$(now_ns)
psql_q -c "VACUUM (FREEZE, ANALYZE) user_events" || die "VACUUM user_events failed"
echo "VACUUM (FREEZE, ANALYZE): $(awk -v d=$(($(now_ns) - t0)) 'BEGIN { printf "%.1f", d / 1e9 }') s"
window="event_timestamp BETWEEN '$ts_start' AND '$ts_end'"
in_window="$(psql_q -At -c "SELECT count(*) FROM user_events WHERE $window")" ||
  die "counting the rows in the window failed"

# -- contenders --

sql_hc="SELECT user_id, event_type, avg(value) AS avg_value, count(id) AS event_count FROM user_events WHERE $window GROUP BY 1, 2"
sql_lc="SELECT event_type, avg(value) AS avg_value, count(id) AS event_count FROM user_events WHERE $window GROUP BY 1"
sql_raw="SELECT user_id, event_type, value, id FROM user_events WHERE $window"

# `wharf report` exists unless the CLI rejects it as an unknown subcommand (CLI11 says "A
# subcommand is required" or "... not expected").
unknown_subcommand_re='subcommand is required|not expected|unknown subcommand|unrecognized'
report_ok=1
if probe="$(timeout -k 5 30 "$cli" report 2>&1 >/dev/null)"; then :; fi
if grep -qiE "$unknown_subcommand_re" <<<"$probe"; then
  report_ok=0
  echo
  echo "wharf report: not available ($cli: $(head -n 1 <<<"$probe")); skipping the wharf contenders"
fi

dask_ok=0
dask_pkgs=(python3-dask python3-distributed python3-pandas python3-sqlalchemy python3-psycopg2)
dask_importable() {
  [ -x "$py" ] && "$py" -c 'import dask.dataframe, distributed, pandas, sqlalchemy, psycopg2' 2>/dev/null
}
if [ "$want_dask" = 0 ]; then
  echo "Dask: skipped (WHARF_BENCH_DASK=0)"
elif dask_importable; then
  dask_ok=1
else
  missing=()
  for p in "${dask_pkgs[@]}"; do
    dpkg-query -W -f='${db:Status-Status}' "$p" 2>/dev/null | grep -qx installed || missing+=("$p")
  done
  if [ ${#missing[@]} -gt 0 ] && [ "$(id -u)" -eq 0 ] && command -v apt-get >/dev/null; then
    banner "installing ${missing[*]} (apt-get)"
    if apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >"$work_dir/apt.log" 2>&1; then
      echo "installed ${missing[*]}"
    else
      tail -n 20 "$work_dir/apt.log" >&2 || true
      echo "bench/report/run.sh: warning: apt-get install ${missing[*]} failed" >&2
    fi
  fi
  if dask_importable; then
    dask_ok=1
  else
    echo "Dask: not available to $py; install with: sudo apt-get install ${dask_pkgs[*]}" \
      "(and run with WHARF_PYTHON=/usr/bin/python3); skipping the Dask column"
  fi
fi

# -- 3. cluster --

if [ $report_ok = 1 ]; then
  banner "3-node cluster on 127.0.0.1:$base_port.. (deploy/cluster.sh, --config $work_dir/node.toml)"
  toml_dsn="${dsn//\\/\\\\}"
  toml_dsn="${toml_dsn//\"/\\\"}"
  cat >"$work_dir/node.toml" <<EOF
[log]
level = "$log_level"
[analytics]
dsn = "$toml_dsn"
[[reports]]
name = "events_by_type"
table = "user_events"
partition_column = "ctid"
time_column = "event_timestamp"
filter_columns = ["user_id", "event_type"]
group_by = ["event_type"]
aggregates = ["avg(value) AS avg_value", "count(id) AS event_count"]
EOF
  # Set before `up`: a half-started cluster is stopped by cleanup too.
  cluster_up=1
  "$repo_dir/deploy/cluster.sh" up 3 --base-port "$base_port" --dir "$work_dir" \
    --config "$work_dir/node.toml" >"$work_dir/cluster-up.log" 2>&1 || {
    cat "$work_dir/cluster-up.log" >&2
    die "the cluster did not come up"
  }
  echo "cluster up; reports go to 127.0.0.1:$((base_port + 1))"
fi

# -- 4. timed rounds --

# Contenders in the order each round runs them; the single SQL statements come first in their
# group, so the reference answer exists before anything is compared with it.
declare -A label ref
order=()
add() { # name, reference answer's name ("" = none, "self" = is a reference), label
  order+=("$1"); ref[$1]="$2"; label[$1]="$3"
}
add sql self "single SQL statement in PostgreSQL (CSV to a file)"
add copy_raw "" "raw binary COPY of the needed rows to /dev/null"
if [ $report_ok = 1 ]; then
  add wharf_auto sql "wharf report user_behavior_report --mode auto"
  add wharf_pushdown sql "wharf report user_behavior_report --mode pushdown"
  add wharf_pull sql "wharf report user_behavior_report --mode pull"
fi
[ $dask_ok = 0 ] || add dask sql "Dask LocalCluster 2x1 (excluding cluster start-up)"
add lc_sql self "low-card: single SQL GROUP BY event_type"
if [ $report_ok = 1 ]; then
  add lc_wharf_pushdown lc_sql "low-card: wharf report events_by_type --mode pushdown"
  add lc_wharf_auto lc_sql "low-card: wharf report events_by_type --mode auto"
fi
[ $dask_ok = 0 ] || add lc_dask lc_sql "low-card: Dask, group by event_type (excl. start-up)"

wharf_report() { # report, mode, out
  bounded "$cli" report "$1" --connect "127.0.0.1:$((base_port + 1))" --start "$ts_start" \
    --end "$ts_end" --mode "$2" --format csv --out "$3"
}
dask_report() { # group-by, out
  bounded "$py" "$script_dir/dask_report.py" --dsn "$dsn" --start "$ts_start" --end "$ts_end" \
    --group-by "$1" --out "$2"
}

# Runs contender $1 writing its answer to $2 (stdout to $3); fails if the contender fails.
run_contender() {
  case "$1" in
    sql) bounded "$psql_bin" -X -q -v ON_ERROR_STOP=1 -d "$dsn" -c "COPY ($sql_hc) TO STDOUT WITH (FORMAT csv, HEADER)" >"$2" ;;
    copy_raw) bounded "$psql_bin" -X -q -v ON_ERROR_STOP=1 -d "$dsn" -c "COPY ($sql_raw) TO STDOUT (FORMAT binary)" >/dev/null ;;
    wharf_auto) wharf_report user_behavior_report auto "$2" >"$3" ;;
    wharf_pushdown) wharf_report user_behavior_report pushdown "$2" >"$3" ;;
    wharf_pull) wharf_report user_behavior_report pull "$2" >"$3" ;;
    dask) dask_report user_id,event_type "$2" >"$3" ;;
    lc_sql) bounded "$psql_bin" -X -q -v ON_ERROR_STOP=1 -d "$dsn" -c "COPY ($sql_lc) TO STDOUT WITH (FORMAT csv, HEADER)" >"$2" ;;
    lc_wharf_pushdown) wharf_report events_by_type pushdown "$2" >"$3" ;;
    lc_wharf_auto) wharf_report events_by_type auto "$2" >"$3" ;;
    lc_dask) dask_report event_type "$2" >"$3" ;;
    *) die "no contender '$1'" ;;
  esac
}

# Checks contender $1's answer of round $2 against its reference. Round 1 is compared in full;
# later rounds only if their sorted bytes differ from round 1's.
check_answer() {
  local name="$1" r="$2" out="$out_dir/$1.csv" first="$out_dir/$1.first.sorted"
  [ -n "${ref[$name]}" ] || return 0
  if [ "$r" -gt 1 ] && LC_ALL=C sort "$out" | cmp -s - "$first"; then return 0; fi
  # The reference: another contender's round 1, or (for the reference itself) its own.
  local against="" what=""
  if [ "${ref[$name]}" != self ]; then
    against="${ref[$name]}" what="${label[${ref[$name]}]}"
  elif [ "$r" -gt 1 ]; then
    against="$name" what="its round 1"
  fi
  if [ -n "$against" ] && ! python3 "$script_dir/compare_csv.py" "$out_dir/$against.first.csv" \
    "$out" >"$err_dir/$name.compare" 2>&1; then
    echo "WRONG ANSWER: ${label[$name]} (round $r) differs from $what:" >&2
    cat "$err_dir/$name.compare" >&2
    exit 1
  fi
  if [ "$r" -eq 1 ]; then
    cp "$out" "$out_dir/$name.first.csv"
    LC_ALL=C sort "$out" >"$first"
  fi
}

declare -A times
fmt_s() { awk -v d="$1" 'BEGIN { printf "%.3f", d / 1e9 }'; }

# One untimed report first: the cluster's start-up (pool connections to PostgreSQL, first
# touch of the nodes' report memory) stays out of the figures, as Dask's LocalCluster
# start-up does.
if [ $report_ok = 1 ]; then
  banner "warm-up: one untimed wharf report (cluster start-up)"
  t0=$(now_ns)
  wharf_report user_behavior_report pull "$work_dir/warmup.csv" >"$err_dir/warmup.stdout" \
    2>"$err_dir/warmup.stderr" || {
    cat "$err_dir/warmup.stderr" >&2
    die "the warm-up report failed"
  }
  echo "warm-up report: $(fmt_s $(($(now_ns) - t0))) s (not counted)"
fi

banner "$repeat round(s) of ${#order[@]} contenders; N = $rows rows, $in_window in the window"
echo "# bench/report $(date -u +%Y-%m-%dT%H:%M:%SZ) on $(nproc) cores, build $build_dir (${build_type:-unknown}), PostgreSQL $shown_dsn"
for ((r = 1; r <= repeat; r++)); do
  for name in "${order[@]}"; do
    [ -n "${label[$name]:-}" ] || continue # dropped after "not available"
    out="$out_dir/$name.csv"
    rm -f "$out"
    # Start each contender on a settled machine: the previous one's files (the single
    # statement's spill and CSV, answers) are written back first, outside the timing.
    sync
    sleep 1
    t0=$(now_ns)
    started="$(date -u +%H:%M:%S.%3N)"
    rc=0
    run_contender "$name" "$out" "$err_dir/$name.stdout" 2>"$err_dir/$name.stderr" || rc=$?
    if [ $rc -ne 0 ]; then
      if [[ "$name" == *wharf_* ]] && grep -qiE "$unknown_subcommand_re" "$err_dir/$name.stderr"; then
        echo "wharf report: not available ($(head -n 1 "$err_dir/$name.stderr")); dropping ${label[$name]}"
        unset "label[$name]"
        continue
      fi
      cat "$err_dir/$name.stderr" >&2
      if [[ "$name" == *wharf_* ]]; then
        for log in "$work_dir"/logs/n*.log; do
          echo "---- last 20 lines of $log ----" >&2
          tail -n 20 "$log" >&2 || true
        done
      fi
      [ $rc -ne 124 ] || die "${label[$name]} timed out after ${run_timeout} s (round $r; WHARF_BENCH_TIMEOUT)"
      die "${label[$name]} failed with exit code $rc (round $r)"
    fi
    t1=$(now_ns)
    [ -z "$keep_logs" ] || echo "$r,$name,$started,$(date -u +%H:%M:%S.%3N)" >>"$keep_logs/timeline.csv"
    wall=$((t1 - t0))
    if [[ "$name" == *dask ]]; then
      # Dask's own figure excludes LocalCluster start-up and shutdown; keep the wall clock too.
      secs="$(awk '$1 == "elapsed_s" { printf "%.3f", $2 }' "$err_dir/$name.stdout")"
      [ -n "$secs" ] || die "dask_report.py printed no elapsed_s (stdout in $err_dir/$name.stdout)"
      times[${name}_wall]+="$(fmt_s "$wall") "
    else
      secs="$(fmt_s "$wall")"
    fi
    times[$name]+="$secs "
    printf '  round %d  %-60s %9.3f s\n' "$r" "${label[$name]}" "$secs"
    if [ "$name" != copy_raw ]; then
      [ -s "$out" ] || die "${label[$name]} wrote no answer to $out (round $r)"
      check_answer "$name" "$r"
    fi
  done
done

# -- 5. summary --

median() { tr ' ' '\n' | sed '/^$/d' | sort -g | awk '{ a[NR] = $1 } END { if (NR) printf "%.3f\n", (NR % 2 ? a[(NR + 1) / 2] : (a[NR / 2] + a[NR / 2 + 1]) / 2) }'; }
med() { [ -n "${label[$1]:-}" ] && [ -n "${times[$1]:-}" ] && median <<<"${times[$1]}"; }
ratio() { # a b -> a/b with 3 decimals, or empty if either is missing
  local a b
  a="$(med "$1")" || true
  b="$(med "$2")" || true
  [ -n "$a" ] && [ -n "$b" ] || return 0
  awk -v a="$a" -v b="$b" 'BEGIN { if (b > 0) printf "%.3f", a / b }'
}

echo
echo "== bench/report: N = $rows rows ($in_window in the window), median of $repeat =="
for name in "${order[@]}"; do
  m="$(med "$name")" || continue
  extra=""
  if [[ "$name" == *dask ]]; then extra="  (wall incl. start-up: $(median <<<"${times[${name}_wall]}") s)"; fi
  printf '  %-60s %9.3f s   runs: %s%s\n' "${label[$name]}" "$m" "${times[$name]% }" "$extra"
done
[ $report_ok = 1 ] || echo "  wharf report: not available"
[ $dask_ok = 1 ] || echo "  Dask: not available"

echo
echo "goals (ratios of medians):"
goal() { # text, a, b, op (ge|le), limit
  local v verdict
  v="$(ratio "$2" "$3")"
  if [ -z "$v" ]; then
    verdict="SKIP (no figure)"
  elif [ "$4" = ge ]; then
    verdict="$(awk -v v="$v" -v l="$5" 'BEGIN { print (v + 0 >= l) ? "PASS" : "MISS" }')"
  else
    verdict="$(awk -v v="$v" -v l="$5" 'BEGIN { print (v + 0 <= l) ? "PASS" : "MISS" }')"
  fi
  printf '  %-44s %8s   goal %s %-4s %s\n' "$1" "${v:-n/a}" "$([ "$4" = ge ] && echo '>=' || echo '<=')" "$5" "$verdict"
}
goal "Dask / wharf auto" dask wharf_auto ge 8
goal "wharf auto / single SQL" wharf_auto sql le 0.7
goal "wharf auto / raw COPY" wharf_auto copy_raw le 1.5
goal "low-card wharf pushdown / single SQL" lc_wharf_pushdown lc_sql le 1.2
echo "other ratios:"
info() { local v; v="$(ratio "$2" "$3")"; [ -z "$v" ] || printf '  %-44s %8s\n' "$1" "$v"; }
info "Dask / single SQL" dask sql
info "single SQL / raw COPY" sql copy_raw
info "wharf pushdown / single SQL" wharf_pushdown sql
info "wharf pull / raw COPY" wharf_pull copy_raw
info "low-card wharf auto / single SQL" lc_wharf_auto lc_sql
info "low-card Dask / low-card wharf auto" lc_dask lc_wharf_auto
echo "answers: every contender equal to the single SQL statement (avg_value within 1e-9 relative)"

echo
for name in "${order[@]}"; do
  m="$(med "$name")" || continue
  i=0
  for x in ${times[$name]}; do i=$((i + 1)); echo "$name,$i,$x,s"; done
  echo "$name,median,$m,s"
  if [[ "$name" == *dask ]]; then
    i=0
    for x in ${times[${name}_wall]}; do i=$((i + 1)); echo "${name}_wall,$i,$x,s"; done
    echo "${name}_wall,median,$(median <<<"${times[${name}_wall]}"),s"
  fi
done
for pair in dask:wharf_auto wharf_auto:sql wharf_auto:copy_raw lc_wharf_pushdown:lc_sql dask:sql; do
  v="$(ratio "${pair%%:*}" "${pair#*:}")"
  [ -z "$v" ] || echo "ratio_${pair%%:*}_over_${pair#*:},median,$v,x"
done
