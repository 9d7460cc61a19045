#!/usr/bin/env bash
# bench/failover: how fast survivors mark a failed node down, and how fast a restarted node is
# alive again everywhere. Starts a 3-node cluster with deploy/cluster.sh on loopback, then per
# round: SIGKILL n3 (connection loss) or SIGSTOP n3 (frozen: heartbeat timeout), polls the
# member table of n1 and n2 every 10 ms until both show n3 down, restarts/continues n3 and
# polls until all show it alive. Prints one line per round and the medians; the goal in
# issue 2 is "down on every survivor within 3 s".
# Usage: bench/failover/run.sh [ROUNDS]   (env: WHARF_BUILD_DIR, WHARF_BASE_PORT default 9600)
set -euo pipefail
repo=$(dirname "$(dirname "$(dirname "$(readlink -f "$0")")")")
rounds=${1:-5}
build=${WHARF_BUILD_DIR:-$repo/build}
base=${WHARF_BASE_PORT:-9600}
dir=$(mktemp -d /tmp/wharf-failover.XXXXXX)
cli="$build/apps/wharf"
export WHARF_BIN_DIR="$build/apps"
cleanup() { "$repo/deploy/cluster.sh" down --dir "$dir" >/dev/null 2>&1 || true; rm -rf "$dir"; }
trap cleanup EXIT
"$repo/deploy/cluster.sh" up 3 --base-port "$base" --dir "$dir" >/dev/null
status_of() { # rpc port, node -> status column
  "$cli" console --connect "127.0.0.1:$1" --timeout-ms 2000 -c nodes 2>/dev/null \
    | awk -v n="$2" '$1 == n { print $6 }'
}
now_ms() { date +%s%3N; }
wait_for() { # status, deadline seconds; returns elapsed ms or fails
  local want=$1 limit=$(( $(now_ms) + $2 * 1000 )) t0=$3
  while [ "$(now_ms)" -lt "$limit" ]; do
    if [ "$(status_of $((base + 1)) n3)" = "$want" ] && [ "$(status_of $((base + 11)) n3)" = "$want" ]; then
      echo $(( $(now_ms) - t0 )); return 0
    fi
    sleep 0.01
  done
  echo "timeout"; return 1
}
median() { sort -n | awk '{ a[NR] = $1 } END { print (NR % 2 ? a[(NR + 1) / 2] : (a[NR / 2] + a[NR / 2 + 1]) / 2) }'; }
kill_down=(); kill_back=(); stop_down=(); stop_back=()
for r in $(seq 1 "$rounds"); do
  pid=$(cat "$dir/pids/n3.pid")
  t0=$(now_ms); kill -KILL "$pid"; d=$(wait_for down 10 "$t0")
  t0=$(now_ms); "$repo/deploy/cluster.sh" start-node 3 --dir "$dir" >/dev/null
  b=$(wait_for alive 20 "$t0")
  echo "round $r SIGKILL: down on n1+n2 after ${d} ms; restarted n3 alive everywhere after ${b} ms"
  kill_down+=("$d"); kill_back+=("$b")
  pid=$(cat "$dir/pids/n3.pid")
  t0=$(now_ms); kill -STOP "$pid"; d=$(wait_for down 10 "$t0")
  t0=$(now_ms); kill -CONT "$pid"; b=$(wait_for alive 20 "$t0")
  echo "round $r SIGSTOP: down on n1+n2 after ${d} ms; after SIGCONT alive everywhere after ${b} ms"
  stop_down+=("$d"); stop_back+=("$b")
done
echo
echo "median SIGKILL -> down everywhere: $(printf '%s\n' "${kill_down[@]}" | median) ms (goal < 3000 ms)"
echo "median SIGSTOP -> down everywhere: $(printf '%s\n' "${stop_down[@]}" | median) ms (goal < 3000 ms; heartbeat 300 ms, failure timeout 1500 ms)"
echo "median restart -> alive everywhere: $(printf '%s\n' "${kill_back[@]}" | median) ms"
echo "median SIGCONT -> alive everywhere: $(printf '%s\n' "${stop_back[@]}" | median) ms"
for x in "${kill_down[@]}"; do echo "sigkill_down,run,$x,ms"; done
for x in "${stop_down[@]}"; do echo "sigstop_down,run,$x,ms"; done
