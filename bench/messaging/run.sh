#!/usr/bin/env bash
# run.sh: bench/messaging — node-to-node messaging and idle-node memory.
#
# 1. Starts `messaging_bench serve` on a free 127.0.0.1 port, waits until it listens, runs
#    `messaging_bench client` (throughput and p50/p99 latency, 32 B and 4 KiB payloads,
#    Cap'n Proto envelope vs CAF-native serialization, interleaved, median of R runs; every
#    echo is checked), then stops the server.
# 2. Starts one idle `wharf-node` (fresh temp data dir), waits for GET /health = 200, lets it
#    idle, reads VmRSS/VmHWM from /proc/PID/status and the CPU it used while idle (from
#    /proc/PID/stat), and stops it with SIGTERM.
# 3. Prints the goals with PASS/MISS: capnp within 10% of native (throughput >= 0.90x and
#    p50 latency <= 1.10x, both payload sizes); idle node RSS < 64 MiB.
#
# Usage: bench/messaging/run.sh [client options, e.g. --runs 5 --count 50000]
#
# Environment:
#   WHARF_BUILD_DIR            Release build dir holding bench/messaging_bench and
#                              apps/wharf-node (default <repo>/build)
#   WHARF_BENCH_ALLOW_ANY_BUILD=1  run even if the build dir is not CMAKE_BUILD_TYPE=Release
#   WHARF_BENCH_PORT           port of `messaging_bench serve` (default: first free of 9403-9499)
#   WHARF_BENCH_CLUSTER_PORT   idle node's cluster port (default 9400)
#   WHARF_BENCH_RPC_PORT       idle node's RPC port (default 9401)
#   WHARF_BENCH_HTTP_PORT      idle node's HTTP port (default 9402)
#   WHARF_BENCH_IDLE_SECONDS   idle time before reading the RSS (default 5)
#   WHARF_BENCH_START_TIMEOUT  seconds to wait for a process to come up (default 20)
#
# Output: human lines plus `name,run,value,unit` lines. Exit codes: 0 benchmark done (even if
# a goal is MISSed); 1 answer mismatch, crash or a process that did not come up; 2 usage or
# build problem.
set -euo pipefail

script_dir="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo_dir="$(cd "$script_dir/../.." && pwd)"
build_dir="${WHARF_BUILD_DIR:-$repo_dir/build}"
bench_bin="$build_dir/bench/messaging_bench"
node_bin="$build_dir/apps/wharf-node"
start_timeout="${WHARF_BENCH_START_TIMEOUT:-20}"
idle_seconds="${WHARF_BENCH_IDLE_SECONDS:-5}"
rss_goal_kib=$((64 * 1024))

die() {
  echo "run.sh: error: $*" >&2
  exit 1
}

usage_error() {
  echo "run.sh: $*" >&2
  exit 2
}

for bin in "$bench_bin" "$node_bin"; do
  if [[ ! -x "$bin" ]]; then
    usage_error "$bin not found. Build it (Release) with:
  cmake -S $repo_dir -B $build_dir -DCMAKE_BUILD_TYPE=Release -DWHARF_ENABLE_TESTING=OFF
  cmake --build $build_dir --target messaging_bench wharf-node
or point WHARF_BUILD_DIR at a Release build dir."
  fi
done
build_type="$(sed -n 's/^CMAKE_BUILD_TYPE:[A-Z]*=//p' "$build_dir/CMakeCache.txt" 2>/dev/null || true)"
if [[ "$build_type" != "Release" && "${WHARF_BENCH_ALLOW_ANY_BUILD:-0}" != "1" ]]; then
  usage_error "$build_dir is a '${build_type:-unknown}' build; benchmarks run only from Release
builds (set WHARF_BENCH_ALLOW_ANY_BUILD=1 to override, e.g. to smoke-test the script)."
fi
command -v ss >/dev/null || usage_error "needs ss (iproute2)"
command -v curl >/dev/null || usage_error "needs curl"

work_dir="$(mktemp -d /tmp/wharf-bench-messaging.XXXXXX)"
server_pid=""
node_pid=""

# Stops a process we started: SIGTERM, up to $2 seconds, then SIGKILL. Sets `stop_status` to
# its exit status. (Not usable in $(...): `wait` only works on this shell's own children.)
stop_status=0
stop_pid() {
  local pid="$1" limit="$2" i
  stop_status=0
  kill -TERM "$pid" 2>/dev/null || true
  for ((i = 0; i < limit * 10; i++)); do
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.1
  done
  if kill -0 "$pid" 2>/dev/null; then
    echo "run.sh: pid $pid ignored SIGTERM for ${limit}s; sending SIGKILL" >&2
    kill -KILL "$pid" 2>/dev/null || true
  fi
  wait "$pid" 2>/dev/null || stop_status=$?
}

cleanup() {
  if [[ -n "$server_pid" ]]; then stop_pid "$server_pid" 5; fi
  if [[ -n "$node_pid" ]]; then stop_pid "$node_pid" 15; fi
  rm -rf "$work_dir"
}
trap cleanup EXIT

is_listening() { [[ -n "$(ss -Hltn "sport = :$1" 2>/dev/null)" ]]; }

check_port() {
  if [[ ! "$1" =~ ^[0-9]+$ ]] || (($1 < 1 || $1 > 65535)); then
    usage_error "$2=$1 is not a port"
  fi
  if is_listening "$1"; then
    die "port $1 ($2) is already in use; pick another with $2=..."
  fi
}

# -- ports: loopback only; node 9400-9402 and the bench server in 9403-9499 by default --

cluster_port="${WHARF_BENCH_CLUSTER_PORT:-9400}"
rpc_port="${WHARF_BENCH_RPC_PORT:-9401}"
http_port="${WHARF_BENCH_HTTP_PORT:-9402}"
check_port "$cluster_port" WHARF_BENCH_CLUSTER_PORT
check_port "$rpc_port" WHARF_BENCH_RPC_PORT
check_port "$http_port" WHARF_BENCH_HTTP_PORT
if [[ -n "${WHARF_BENCH_PORT:-}" ]]; then
  bench_port="$WHARF_BENCH_PORT"
  check_port "$bench_port" WHARF_BENCH_PORT
else
  bench_port=""
  for p in $(seq 9403 9499); do
    if [[ "$p" != "$cluster_port" && "$p" != "$rpc_port" && "$p" != "$http_port" ]] \
      && ! is_listening "$p"; then
      bench_port="$p"
      break
    fi
  done
  [[ -n "$bench_port" ]] || die "no free port in 9403-9499; set WHARF_BENCH_PORT"
fi

echo "# bench/messaging $(date -u +%Y-%m-%dT%H:%M:%SZ) on $(nproc) cores, build $build_dir ($build_type)"

# -- 1. messaging: serve + client --

"$bench_bin" serve --port "$bench_port" >"$work_dir/serve.log" 2>&1 &
server_pid=$!
for ((i = 0; ; i++)); do
  grep -q "serving on" "$work_dir/serve.log" && break
  if ! kill -0 "$server_pid" 2>/dev/null; then
    cat "$work_dir/serve.log" >&2
    server_pid=""
    die "messaging_bench serve exited before listening on 127.0.0.1:$bench_port"
  fi
  ((i < start_timeout * 10)) || die "messaging_bench serve not listening after ${start_timeout}s"
  sleep 0.1
done

set +e
"$bench_bin" client --port "$bench_port" "$@" | tee "$work_dir/client.out"
statuses=("${PIPESTATUS[@]}")
set -e
client_rc="${statuses[0]}"
server_alive=1
kill -0 "$server_pid" 2>/dev/null || server_alive=0
stop_pid "$server_pid" 5
server_rc="$stop_status"
server_pid=""
if [[ "$client_rc" != 0 ]]; then
  die "messaging_bench client failed (exit $client_rc): answer mismatch, crash or usage error"
fi
if [[ "$server_alive" != 1 || "$server_rc" != 0 ]]; then
  cat "$work_dir/serve.log" >&2
  die "messaging_bench serve crashed or failed (exit $server_rc)"
fi

# -- 2. idle node memory --

data_dir="$(mktemp -d "$work_dir/node-data.XXXXXX")"
"$node_bin" --name bench-idle --data-dir "$data_dir" --cluster-port "$cluster_port" \
  --rpc-port "$rpc_port" --http-port "$http_port" >"$work_dir/node.log" 2>&1 &
node_pid=$!
for ((i = 0; ; i++)); do
  code="$(curl -s -o /dev/null -w '%{http_code}' --max-time 1 \
    "http://127.0.0.1:$http_port/health" || true)"
  [[ "$code" == 200 ]] && break
  if ! kill -0 "$node_pid" 2>/dev/null; then
    cat "$work_dir/node.log" >&2
    node_pid=""
    die "wharf-node exited before /health answered 200"
  fi
  ((i < start_timeout * 10)) || die "wharf-node /health not 200 after ${start_timeout}s (last: $code)"
  sleep 0.1
done
# CPU ticks (user + system) the node spends over its idle window: heartbeats and timers only.
cpu_ticks() { sed 's/.*) //' "/proc/$1/stat" | awk '{ print $12 + $13 }'; }
ticks0="$(cpu_ticks "$node_pid")"
idle_t0=$(date +%s%N)
sleep "$idle_seconds"
kill -0 "$node_pid" 2>/dev/null || die "wharf-node died while idle"
ticks1="$(cpu_ticks "$node_pid")"
idle_t1=$(date +%s%N)
rss_kib="$(awk '/^VmRSS:/ {print $2}' "/proc/$node_pid/status")"
hwm_kib="$(awk '/^VmHWM:/ {print $2}' "/proc/$node_pid/status")"
[[ -n "$rss_kib" && -n "$hwm_kib" ]] || die "cannot read VmRSS/VmHWM of pid $node_pid"
stop_pid "$node_pid" 15
node_rc="$stop_status"
node_pid=""
mib() { awk -v k="$1" 'BEGIN { printf "%.1f", k / 1024 }'; }
echo "idle node RSS: $(mib "$rss_kib") MiB, peak (VmHWM) $(mib "$hwm_kib") MiB after ${idle_seconds}s idle (goal < 64 MiB)"
idle_cpu_pct="$(awk -v d=$((ticks1 - ticks0)) -v hz="$(getconf CLK_TCK)" -v ns=$((idle_t1 - idle_t0)) \
  'BEGIN { printf "%.2f", 100 * d / hz / (ns / 1e9) }')"
echo "idle node CPU: $idle_cpu_pct % of a core over ${idle_seconds}s idle ($((ticks1 - ticks0)) ticks)"
echo "idle_node_rss,1,$rss_kib,KiB"
echo "idle_node_hwm,1,$hwm_kib,KiB"
echo "idle_node_cpu,1,$idle_cpu_pct,percent"
if [[ "$node_rc" != 0 ]]; then
  cat "$work_dir/node.log" >&2
  die "wharf-node did not stop cleanly on SIGTERM (exit $node_rc)"
fi

# -- 3. goals --

figure() {
  awk -F, -v n="$1" '$1 == n && $2 == "median" { print $3 }' "$work_dir/client.out"
}
at_least() { awk -v v="$1" -v l="$2" 'BEGIN { print (v != "" && v + 0 >= l) ? "PASS" : "MISS" }'; }
at_most() { awk -v v="$1" -v l="$2" 'BEGIN { print (v != "" && v + 0 <= l) ? "PASS" : "MISS" }'; }
below() { awk -v v="$1" -v l="$2" 'BEGIN { print (v != "" && v + 0 < l) ? "PASS" : "MISS" }'; }

echo
echo "== summary =="
echo "goal 1: Cap'n Proto path within 10% of CAF-native (throughput >= 0.90x, p50 latency <= 1.10x)"
for size in 32B 4096B; do
  tp="$(figure "ratio_${size}_throughput")"
  lat="$(figure "ratio_${size}_latency_p50")"
  cpu="$(figure "ratio_${size}_cpu")"
  printf '  %-6s throughput capnp/native %sx: %s   p50 latency capnp/native %sx: %s   (CPU/msg %sx)\n' \
    "$size" "${tp:-?}" "$(at_least "$tp" 0.90)" "${lat:-?}" "$(at_most "$lat" 1.10)" "${cpu:-?}"
done
echo "goal 2: idle node RSS < 64 MiB"
printf '  idle node RSS %s MiB: %s\n' "$(mib "$rss_kib")" "$(below "$rss_kib" "$rss_goal_kib")"
