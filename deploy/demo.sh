#!/usr/bin/env bash
# demo.sh: from a fresh Debian 12 machine to a working 3-node wharf cluster, shown step by step.
# Installs the packages (deploy/install-deps.sh, uses sudo when not root), builds Release into
# <repo>/build, starts a local PostgreSQL (deploy/local-pg.sh, unless WHARF_PG_DSN names one)
# and 3 local nodes (deploy/cluster.sh up 3), then shows them working: the member table, a
# supervision tree, a durable write, a crashed actor restoring its state, /health and /metrics,
# sample data loaded into PostgreSQL and `user_behavior_report` run through the cluster (CLI
# and HTTP), and a SIGKILLed node detected as down and rejoining after a restart.
#
# Usage: deploy/demo.sh [--no-install] [--no-build] [--keep | --stop] [-h|--help]
#   --no-install  skip deploy/install-deps.sh
#   --no-build    skip cmake; use the binaries already in $WHARF_BIN_DIR or <repo>/build/apps
#   --keep        leave the cluster running at the end (the default: open the console on it)
#   --stop        stop the cluster at the end (deploy/cluster.sh down), also when a step fails
# Environment: WHARF_BASE_PORT (default 7100; n1 = P..P+2, n2 = P+10.., n3 = P+20..),
#   WHARF_CLUSTER_DIR (default /tmp/wharf-cluster), WHARF_BIN_DIR (see --no-build),
#   WHARF_PG_DSN (use this PostgreSQL instead of starting one in $WHARF_CLUSTER_DIR/pg),
#   WHARF_DEMO_ROWS (sample rows, default 1000000).
# Exit code: 0 when every step worked; 1 when a step failed (the banner names it); 2 usage error.
set -euo pipefail

script_dir="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo_dir="$(dirname "$script_dir")"

usage() {
  sed -n '2,/^set -euo/{/^set -euo/d;s/^# \{0,1\}//;p}' "${BASH_SOURCE[0]}"
}

install=1
build=1
stop_at_end=0
while [ $# -gt 0 ]; do
  case "$1" in
    --no-install) install=0 ;;
    --no-build) build=0 ;;
    --keep) stop_at_end=0 ;;
    --stop) stop_at_end=1 ;;
    -h|--help) usage; exit 0 ;;
    *) echo "demo.sh: unknown option '$1'; try 'deploy/demo.sh --help'" >&2; exit 2 ;;
  esac
  shift
done

base_port="${WHARF_BASE_PORT:-7100}"
cluster_dir="${WHARF_CLUSTER_DIR:-/tmp/wharf-cluster}"
if ! [[ "$base_port" =~ ^[0-9]+$ ]] || [ "$base_port" -lt 1 ] || [ "$base_port" -gt 65513 ]; then
  echo "demo.sh: WHARF_BASE_PORT must be a port number 1..65513, got '$base_port'" >&2
  exit 2
fi
export WHARF_CLUSTER_DIR="$cluster_dir"
if [ $build = 1 ]; then
  # What we build is what we run, whatever WHARF_BIN_DIR says.
  export WHARF_BIN_DIR="$repo_dir/build/apps"
else
  export WHARF_BIN_DIR="${WHARF_BIN_DIR:-$repo_dir/build/apps}"
fi
wharf="$WHARF_BIN_DIR/wharf"
cluster=("$script_dir/cluster.sh")
rpc1=$((base_port + 1))
http1=$((base_port + 2))
connect="127.0.0.1:$rpc1"

step=""
bold="" plain=""
if [ -t 1 ]; then bold=$'\033[1m' plain=$'\033[0m'; fi
banner() {
  step="$*"
  printf '\n%s==> %s%s\n' "$bold" "$*" "$plain"
}

cluster_started=0
pg_started=0
pg_dir="$cluster_dir/pg"
demo_rows="${WHARF_DEMO_ROWS:-1000000}"
on_exit() {
  local rc=$?
  if [ $rc -ne 0 ] && [ -n "$step" ]; then
    echo >&2
    echo "demo.sh: FAILED at step: $step (exit code $rc)" >&2
  fi
  if [ $cluster_started = 1 ]; then
    if [ $stop_at_end = 1 ]; then
      echo
      echo "==> stopping the cluster (--stop)"
      "${cluster[@]}" down --dir "$cluster_dir" || true
      if [ $pg_started = 1 ]; then
        echo "==> stopping the local PostgreSQL"
        "$script_dir/local-pg.sh" stop "$pg_dir" || true
      fi
    elif [ $rc -ne 0 ]; then
      echo "The cluster is left running for inspection:" >&2
      echo "  deploy/cluster.sh status --dir $cluster_dir   (logs in $cluster_dir/logs)" >&2
      echo "  deploy/cluster.sh down --dir $cluster_dir" >&2
    fi
  fi
  exit $rc
}
trap on_exit EXIT

# Runs one console command against n1 and shows it like a shell transcript.
console() {
  echo "\$ wharf console --connect $connect -c \"$*\""
  "$wharf" console --connect "$connect" --timeout-ms 10000 -c "$*"
}

# The STATUS column (6th) of member $1 in n1's `nodes` table, or nothing.
member_status() {
  local table
  table="$("$wharf" console --connect "$connect" --timeout-ms 2000 -c nodes 2>/dev/null)" || return 0
  awk -v n="$1" 'NR > 1 && $1 == n { print $6 }' <<<"$table"
}

# poll SECONDS WHAT COMMAND...: runs COMMAND every 0.1 s until it succeeds; fails after SECONDS.
poll() {
  local seconds="$1" what="$2" t0 now
  shift 2
  t0=$(date +%s%3N)
  while :; do
    if "$@"; then
      now=$(date +%s%3N)
      echo "    ok: $what (after $((now - t0)) ms)"
      return 0
    fi
    now=$(date +%s%3N)
    if ((now - t0 >= seconds * 1000)); then
      echo "demo.sh: timed out after ${seconds} s waiting for: $what" >&2
      return 1
    fi
    sleep 0.1
  done
}

greeting_is_hello() {
  [ "$("$wharf" console --connect "$connect" --timeout-ms 2000 -c "get n2 greeting" 2>/dev/null)" = hello ]
}
n3_is() { [ "$(member_status n3)" = "$1" ]; }

cd "$repo_dir"

if [ $install = 1 ]; then
  banner "installing Debian packages (deploy/install-deps.sh)"
  deploy/install-deps.sh
else
  banner "skipping deploy/install-deps.sh (--no-install)"
fi

if [ $build = 1 ]; then
  banner "building Release into $repo_dir/build (cmake, 2 jobs)"
  cmake -S . -B build -DCMAKE_BUILD_TYPE=Release
  cmake --build build -j2
else
  banner "skipping the build (--no-build); using $WHARF_BIN_DIR"
  for b in wharf-node wharf; do
    [ -x "$WHARF_BIN_DIR/$b" ] || { echo "demo.sh: $WHARF_BIN_DIR/$b not found; build first or drop --no-build" >&2; exit 1; }
  done
fi

if [ -n "${WHARF_PG_DSN:-}" ]; then
  banner "using the PostgreSQL of WHARF_PG_DSN"
else
  banner "starting a local PostgreSQL in $pg_dir (deploy/local-pg.sh)"
  mkdir -p "$cluster_dir"
  dsn_line="$("$script_dir/local-pg.sh" start "$pg_dir")"
  pg_started=1
  eval "export $dsn_line"
fi
echo "WHARF_PG_DSN=\"$WHARF_PG_DSN\""

banner "starting a 3-node cluster on 127.0.0.1 (deploy/cluster.sh up 3)"
# Every node reads the same analytics settings: the database, and one declarative report
# beside the built-in user_behavior_report.
mkdir -p "$cluster_dir"
cat >"$cluster_dir/node.toml" <<TOML
[analytics]
dsn = "$WHARF_PG_DSN"

[[reports]]
name = "events_by_type"
table = "user_events"
partition_column = "id"
time_column = "event_timestamp"
user_column = "user_id"
filter_columns = ["user_id", "event_type"]
group_by = ["event_type"]
aggregates = ["avg(value) AS avg_value", "count(id) AS event_count", "count_distinct(user_id) AS users"]
TOML
"${cluster[@]}" up 3 --base-port "$base_port" --dir "$cluster_dir" --config "$cluster_dir/node.toml"
cluster_started=1

banner "the member table, as n1 sees it"
console nodes

banner "n2's supervision tree"
console tree n2

banner "a durable write: put n2 greeting hello (acknowledged once fsync'd)"
console put n2 greeting hello

banner "fault injection: crash n2's register actor"
console kill n2 services/register

banner "its supervisor restarts it and it restores its state from RocksDB"
poll 10 "get n2 greeting prints hello" greeting_is_hello
console get n2 greeting
console tree n2 | grep -E 'register|^node' || true

banner "HTTP on n1: /health and /metrics"
echo "\$ curl -s http://127.0.0.1:$http1/health"
curl -sS --max-time 5 -w '    (HTTP %{http_code})\n' "http://127.0.0.1:$http1/health"
echo "\$ curl -s http://127.0.0.1:$http1/metrics | grep '^wharf_' | head -n 6"
metrics="$(curl -sS --max-time 5 "http://127.0.0.1:$http1/metrics")"
awk '/^wharf_/ && n++ < 6' <<<"$metrics"

banner "sample data: $demo_rows rows of user_events in PostgreSQL (wharf datagen, binary COPY)"
echo "\$ wharf datagen user_events --rows $demo_rows --replace"
"$wharf" datagen user_events --dsn "$WHARF_PG_DSN" --rows "$demo_rows" --replace

banner "user_behavior_report through the cluster (partitions read on all 3 nodes)"
echo "\$ wharf report user_behavior_report --connect $connect --start 2025-01-01 --end 2025-12-31 --format csv --out report.csv"
"$wharf" report user_behavior_report --connect "$connect" --start 2025-01-01 --end 2025-12-31 \
  --format csv --out "$cluster_dir/report.csv"
echo "\$ head -n 4 report.csv; wc -l report.csv"
head -n 4 "$cluster_dir/report.csv"
wc -l <"$cluster_dir/report.csv"

banner "a declarative report from the node config: events_by_type (group by event_type, distinct users)"
echo "\$ wharf report events_by_type --connect $connect --start 2025-01-01 --end 2025-12-31"
"$wharf" report events_by_type --connect "$connect" --start 2025-01-01 --end 2025-12-31

banner "the same operation over HTTP: POST /v1/reports"
body='{"report":"user_behavior_report","start_date":"2025-01-01","end_date":"2025-12-31 23:59:59","user_ids":[42,4242]}'
echo "\$ curl -s -X POST http://127.0.0.1:$http1/v1/reports -d '$body'"
curl -sS --max-time 60 -w '\n    (HTTP %{http_code})\n' -X POST "http://127.0.0.1:$http1/v1/reports" -d "$body"

banner "a bad request gets a clear error: a filter the report does not allow"
echo "\$ wharf report user_behavior_report --start 2025-01-01 --end 2025-12-31 --filter 'value=1; DROP TABLE user_events'"
if "$wharf" report user_behavior_report --connect "$connect" --start 2025-01-01 --end 2025-12-31 \
  --filter 'value=1; DROP TABLE user_events'; then
  echo "demo.sh: the report accepted a filter it must refuse" >&2
  exit 1
fi

banner "a node crash: SIGKILL n3; the others mark it down"
n3_pid="$(cat "$cluster_dir/pids/n3.pid")"
echo "\$ kill -KILL $n3_pid   # n3"
kill -KILL "$n3_pid"
poll 15 "n1 sees n3 as down" n3_is down
console nodes

banner "restart n3 (same flags as cluster.sh up); it rejoins"
"${cluster[@]}" start-node 3 --dir "$cluster_dir"
poll 20 "n1 sees n3 as alive again" n3_is alive
console nodes

step=""
banner "done"
if [ $stop_at_end = 1 ]; then
  echo "The cluster is stopped next (--stop); data and logs stay in $cluster_dir."
else
  rel_bin="$WHARF_BIN_DIR"
  [ "$rel_bin" = "$repo_dir/build/apps" ] && rel_bin="build/apps"
  dir_opt=""
  [ "$cluster_dir" = /tmp/wharf-cluster ] || dir_opt=" --dir $cluster_dir"
  echo "The cluster keeps running (data, logs and pids in $cluster_dir)."
  echo "  open the console:  $rel_bin/wharf console --connect $connect"
  echo "  cluster status:    deploy/cluster.sh status$dir_opt"
  echo "  stop it:           deploy/cluster.sh down$dir_opt"
  echo "  run a report:      $rel_bin/wharf report user_behavior_report --connect $connect --start 2025-01-01 --end 2025-12-31"
  if [ $pg_started = 1 ]; then
    echo "  PostgreSQL:        $WHARF_PG_DSN (stop: deploy/local-pg.sh stop $pg_dir)"
  fi
fi
