#!/usr/bin/env bash
# cluster.sh: starts, inspects and stops a local N-node wharf cluster on 127.0.0.1.
#
# Usage:
#   deploy/cluster.sh up N [--base-port P] [--dir DIR] [--durability sync|group] [--config FILE]
#   deploy/cluster.sh status [--dir DIR]
#   deploy/cluster.sh down [--dir DIR]
#   deploy/cluster.sh start-node I [--dir DIR]     (internal: used by `up` and deploy/demo.sh)
#
# Node i (1-based) is named n<i> and listens on cluster port P+10*(i-1), RPC port +1 and
# HTTP port +2 (n1 = 7100/7101/7102, n2 = 7110/7111/7112, ...). Every node seeds from n1's
# cluster port (n1 seeding itself starts a new cluster) and keeps its RocksDB under DIR/data.
# With --config FILE every node also gets `--config FILE` (a wharf-node TOML file, e.g. with
# [analytics] and [[reports]]); the flags above still override the file's name, host, ports,
# data_dir, seeds and durability.
# Layout of DIR: logs/n<i>.log, pids/n<i>.pid, data/n<i>/, cluster.env (N, BASE_PORT,
# DURABILITY, CONFIG = the config file's absolute path or empty, WHARF_CONNECT = n1's RPC
# address; `source` it in scripts).
#
# Environment:
#   WHARF_CLUSTER_DIR  default DIR (default /tmp/wharf-cluster)
#   WHARF_BASE_PORT    default P for `up` (default 7100)
#   WHARF_BIN_DIR      where wharf-node and wharf live (default <repo>/build/apps)
#   WHARF_UP_TIMEOUT   seconds `up`/`start-node` wait for the cluster (default 20)
#   WHARF_DOWN_TIMEOUT seconds `down` waits after SIGTERM before SIGKILL (default 15)
#
# Exit codes: 0 success; 1 the cluster did not come up / a node is not healthy (`status`);
# 2 usage error.
set -euo pipefail

script_dir="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo_dir="$(dirname "$script_dir")"
prog="deploy/cluster.sh"

usage() {
  cat <<EOF
Usage:
  $prog up N [--base-port P] [--dir DIR] [--durability sync|group] [--config FILE]
  $prog status [--dir DIR]
  $prog down [--dir DIR]
  $prog start-node I [--dir DIR]   (internal: (re)start node n<I> of the cluster in DIR)

Starts/stops an N-node wharf cluster on 127.0.0.1. Node n<i> uses cluster port
P+10*(i-1), RPC port +1, HTTP port +2; all seed from 127.0.0.1:P (n1).

Options:
  --base-port P     n1's cluster port (default \$WHARF_BASE_PORT or 7100)
  --dir DIR         cluster directory: logs/, pids/, data/, cluster.env
                    (default \$WHARF_CLUSTER_DIR or /tmp/wharf-cluster)
  --durability M    sync (fsync every commit, default) or group (group commit)
  --config FILE     pass \`--config FILE\` (wharf-node TOML) to every node; kept in
                    cluster.env, so \`start-node\` uses it too. The flags this script
                    passes win over the file: name, host, cluster/RPC/HTTP ports,
                    data dir, seed and durability
  -h, --help        show this text

Binaries come from \$WHARF_BIN_DIR, else $repo_dir/build/apps.
\`up\` waits up to \$WHARF_UP_TIMEOUT s (default 20) for /health = 200 on every node
and N alive members in \`nodes\`; \`down\` sends SIGTERM, waits up to
\$WHARF_DOWN_TIMEOUT s (default 15), then SIGKILLs. Data and logs are kept.
EOF
}

die() {
  echo "cluster.sh: error: $*" >&2
  exit 1
}

usage_error() {
  echo "cluster.sh: $*" >&2
  echo "Try '$prog --help'." >&2
  exit 2
}

is_uint() { [[ "$1" =~ ^[0-9]+$ ]]; }

now_ms() { date +%s%3N; }

# -- argument parsing --

cmd=""
count=""
dir="${WHARF_CLUSTER_DIR:-/tmp/wharf-cluster}"
base_port="${WHARF_BASE_PORT:-7100}"
durability="sync"
config=""
base_port_given=0
durability_given=0
config_given=0

[ $# -gt 0 ] || { usage >&2; exit 2; }
case "$1" in
  -h|--help) usage; exit 0 ;;
  up|status|down|start-node) cmd="$1"; shift ;;
  *) usage_error "unknown command '$1' (expected up, status or down)" ;;
esac
while [ $# -gt 0 ]; do
  case "$1" in
    -h|--help) usage; exit 0 ;;
    --dir)
      [ $# -ge 2 ] || usage_error "--dir needs a value"
      dir="$2"; shift 2 ;;
    --dir=*) dir="${1#*=}"; shift ;;
    --base-port)
      [ $# -ge 2 ] || usage_error "--base-port needs a value"
      base_port="$2"; base_port_given=1; shift 2 ;;
    --base-port=*) base_port="${1#*=}"; base_port_given=1; shift ;;
    --durability)
      [ $# -ge 2 ] || usage_error "--durability needs a value"
      durability="$2"; durability_given=1; shift 2 ;;
    --durability=*) durability="${1#*=}"; durability_given=1; shift ;;
    --config)
      [ $# -ge 2 ] || usage_error "--config needs a value"
      config="$2"; config_given=1; shift 2 ;;
    --config=*) config="${1#*=}"; config_given=1; shift ;;
    -*) usage_error "unknown option '$1' for '$cmd'" ;;
    *)
      # The one positional argument: N for `up`, I for `start-node`.
      if [ -z "$count" ] && { [ "$cmd" = up ] || [ "$cmd" = start-node ]; }; then
        count="$1"; shift
      else
        usage_error "unexpected argument '$1' for '$cmd'"
      fi ;;
  esac
done
if [ "$cmd" != up ] && { [ $base_port_given = 1 ] || [ $durability_given = 1 ] || [ $config_given = 1 ]; }; then
  usage_error "--base-port, --durability and --config only apply to 'up'"
fi
[ -n "$dir" ] || usage_error "--dir must not be empty"
case "$dir" in /*) ;; *) dir="$PWD/$dir" ;; esac
if [ $config_given = 1 ]; then
  [ -n "$config" ] || usage_error "--config must not be empty"
  case "$config" in /*) ;; *) config="$PWD/$config" ;; esac
fi

bin_dir="${WHARF_BIN_DIR:-$repo_dir/build/apps}"
up_timeout="${WHARF_UP_TIMEOUT:-20}"
down_timeout="${WHARF_DOWN_TIMEOUT:-15}"
is_uint "$up_timeout" || usage_error "WHARF_UP_TIMEOUT must be a whole number of seconds"
is_uint "$down_timeout" || usage_error "WHARF_DOWN_TIMEOUT must be a whole number of seconds"

env_file="$dir/cluster.env"
pid_dir="$dir/pids"
log_dir="$dir/logs"
data_dir="$dir/data"

# -- helpers --

check_binaries() {
  local b
  for b in wharf-node wharf; do
    [ -x "$bin_dir/$b" ] || die "$bin_dir/$b not found or not executable
  build first (cmake -S . -B build && cmake --build build -j2) or set WHARF_BIN_DIR"
  done
  command -v curl >/dev/null || die "curl not found (run deploy/install-deps.sh)"
  command -v setsid >/dev/null || die "setsid not found (util-linux)"
}

# Ports of node $1 (1-based), from $base_port.
cluster_port_of() { echo $((base_port + 10 * ($1 - 1))); }
rpc_port_of() { echo $((base_port + 10 * ($1 - 1) + 1)); }
http_port_of() { echo $((base_port + 10 * ($1 - 1) + 2)); }

# True if process $1 exists and is not a zombie (a SIGKILLed node stays a zombie until its
# reaper collects it, and `kill -0` still succeeds on it).
pid_alive() {
  local stat
  kill -0 "$1" 2>/dev/null || return 1
  stat="$(cat "/proc/$1/stat" 2>/dev/null)" || return 1
  stat="${stat##*) }"
  [ "${stat:0:1}" != Z ]
}

# Prints the pid in pid file $1 if that process is alive and is a wharf-node; fails otherwise.
# Checking the command name guards against a recycled pid.
live_pid() {
  local file="$1" pid comm
  [ -f "$file" ] || return 1
  pid="$(cat "$file" 2>/dev/null || true)"
  is_uint "$pid" || return 1
  pid_alive "$pid" || return 1
  comm="$(cat "/proc/$pid/comm" 2>/dev/null || true)"
  [ "$comm" = "wharf-node" ] || return 1
  echo "$pid"
}

# True if something accepts TCP connections on 127.0.0.1:$1.
port_in_use() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

# HTTP status of node $1's /health ("000" when nothing answers).
health_code() {
  curl -s -o /dev/null -w '%{http_code}' --max-time 1 \
    "http://127.0.0.1:$(http_port_of "$1")/health" 2>/dev/null || true
}

# Number of members with STATUS (column 6) = alive, as seen by the node with RPC port $1.
alive_count() {
  local table
  table="$("$bin_dir/wharf" console --connect "127.0.0.1:$1" --timeout-ms 2000 -c nodes 2>/dev/null)" || true
  awk 'NR > 1 && $6 == "alive" { n++ } END { print n + 0 }' <<<"$table"
}

load_env() {
  [ -f "$env_file" ] || die "no cluster in $dir (missing $env_file); start one with: $prog up N --dir $dir"
  # shellcheck disable=SC1090
  source "$env_file"
  count="${N:-}"
  # shellcheck disable=SC2153  # BASE_PORT comes from cluster.env
  base_port="${BASE_PORT:-}"
  durability="${DURABILITY:-sync}"
  config="${CONFIG:-}"
  if ! is_uint "$count" || ! is_uint "$base_port"; then
    die "$env_file is damaged (N='$count', BASE_PORT='$base_port'); run '$prog down --dir $dir' and 'up' again"
  fi
}

tail_logs() {
  local i log
  for ((i = 1; i <= count; i++)); do
    log="$log_dir/n$i.log"
    echo "---- last 20 lines of $log ----" >&2
    if [ -f "$log" ]; then tail -n 20 "$log" >&2; else echo "(no log)" >&2; fi
  done
}

# Starts node $1 in the background, in its own session (so a terminal hangup or Ctrl-C in
# the calling shell does not reach it). The child writes its own pid before exec'ing
# wharf-node, so the pid file always holds the node's real pid.
launch_node() {
  local i="$1" name="n$1" pid_file="$pid_dir/n$1.pid" log="$log_dir/n$1.log" t0
  if live_pid "$pid_file" >/dev/null; then
    die "$name is already running (pid $(cat "$pid_file")); stop it first"
  fi
  rm -f "$pid_file"
  local p config_args=()
  if [ -n "$config" ]; then
    [ -r "$config" ] || die "config file $config (from --config) is missing or unreadable"
    config_args=(--config "$config")
  fi
  for p in "$(cluster_port_of "$i")" "$(rpc_port_of "$i")" "$(http_port_of "$i")"; do
    if port_in_use "$p"; then
      die "port $p (for $name) is already in use on 127.0.0.1; pick another --base-port"
    fi
  done
  echo "=== cluster.sh: starting $name at $(date -u +%Y-%m-%dT%H:%M:%SZ) ===" >>"$log"
  # shellcheck disable=SC2016  # $$ and $@ expand in the child shell, on purpose
  setsid bash -c 'echo $$ >"$0"; exec "$@"' "$pid_file" \
    "$bin_dir/wharf-node" \
    "${config_args[@]}" \
    --name "$name" \
    --host 127.0.0.1 \
    --cluster-port "$(cluster_port_of "$i")" \
    --rpc-port "$(rpc_port_of "$i")" \
    --http-port "$(http_port_of "$i")" \
    --seed "127.0.0.1:$base_port" \
    --data-dir "$data_dir" \
    --durability "$durability" \
    </dev/null >>"$log" 2>&1 &
  t0=$(now_ms)
  until [ -s "$pid_file" ]; do
    (($(now_ms) - t0 < 5000)) || die "$name did not start (no pid file after 5 s); see $log"
    sleep 0.05
  done
}

# Waits until node $1's /health is 200; fails (with its log) if it dies or the bound passes.
wait_healthy() {
  local i="$1" deadline=$(($(now_ms) + up_timeout * 1000))
  while :; do
    if ! live_pid "$pid_dir/n$i.pid" >/dev/null; then
      echo "cluster.sh: error: n$i exited during start-up" >&2
      return 1
    fi
    [ "$(health_code "$i")" = 200 ] && return 0
    (($(now_ms) < deadline)) || {
      echo "cluster.sh: error: n$i: /health did not return 200 within ${up_timeout} s" >&2
      return 1
    }
    sleep 0.1
  done
}

write_env() {
  local tmp="$env_file.tmp"
  {
    echo "# Written by deploy/cluster.sh up on $(date -u +%Y-%m-%dT%H:%M:%SZ); source it in scripts."
    echo "N=$count"
    echo "BASE_PORT=$base_port"
    echo "DURABILITY=$durability"
    printf 'CONFIG=%q\n' "$config"
    echo "WHARF_CONNECT=127.0.0.1:$(rpc_port_of 1)"
  } >"$tmp"
  mv "$tmp" "$env_file"
}

# Sends SIGTERM to every live node in pid_dir, waits, SIGKILLs leftovers. Quiet if $1 = quiet.
stop_all() {
  local quiet="${1:-}" f pid name
  local -a pids=() names=()
  shopt -s nullglob
  for f in "$pid_dir"/*.pid; do
    name="$(basename "$f" .pid)"
    if pid="$(live_pid "$f")"; then
      kill -TERM "$pid" 2>/dev/null || true
      pids+=("$pid")
      names+=("$name")
      [ -n "$quiet" ] || echo "sent SIGTERM to $name (pid $pid)"
    fi
  done
  shopt -u nullglob
  local deadline=$(($(now_ms) + down_timeout * 1000)) left
  while :; do
    left=0
    for pid in "${pids[@]}"; do
      if pid_alive "$pid"; then left=$((left + 1)); fi
    done
    [ "$left" -eq 0 ] && break
    if (($(now_ms) >= deadline)); then
      local k
      for k in "${!pids[@]}"; do
        if pid_alive "${pids[$k]}"; then
          echo "cluster.sh: ${names[$k]} (pid ${pids[$k]}) still running after ${down_timeout} s; sending SIGKILL" >&2
          kill -KILL "${pids[$k]}" 2>/dev/null || true
        fi
      done
      sleep 0.2
      break
    fi
    sleep 0.1
  done
  rm -f "$pid_dir"/*.pid
  if [ -z "$quiet" ]; then
    if [ ${#pids[@]} -eq 0 ]; then echo "no running nodes in $dir"; else echo "stopped ${#pids[@]} node(s)"; fi
  fi
}

# -- commands --

cmd_up() {
  [ -n "$count" ] || usage_error "up needs the number of nodes, e.g. '$prog up 3'"
  if ! { is_uint "$count" && [ "$count" -ge 1 ] && [ "$count" -le 100 ]; }; then
    usage_error "N must be a whole number 1..100, got '$count'"
  fi
  if ! { is_uint "$base_port" && [ "$base_port" -ge 1 ]; }; then
    usage_error "--base-port must be a port number, got '$base_port'"
  fi
  [ $((base_port + 10 * (count - 1) + 2)) -le 65535 ] ||
    usage_error "--base-port $base_port leaves no room for $count nodes (ports go up to P+10*(N-1)+2)"
  case "$durability" in sync|group) ;; *) usage_error "--durability must be sync or group, got '$durability'" ;; esac
  if [ -n "$config" ]; then
    if [ ! -f "$config" ] || [ ! -r "$config" ]; then usage_error "--config: $config is not a readable file"; fi
  fi
  check_binaries

  if [ -d "$pid_dir" ]; then
    local f pid running=()
    shopt -s nullglob
    for f in "$pid_dir"/*.pid; do
      if pid="$(live_pid "$f")"; then running+=("$(basename "$f" .pid) (pid $pid)"); fi
    done
    shopt -u nullglob
    if [ ${#running[@]} -gt 0 ]; then
      die "a cluster is already running in $dir: ${running[*]}
  inspect it with: $prog status --dir $dir
  stop it with:    $prog down --dir $dir"
    fi
    rm -f "$pid_dir"/*.pid
  fi
  local i p
  for ((i = 1; i <= count; i++)); do
    for p in "$(cluster_port_of "$i")" "$(rpc_port_of "$i")" "$(http_port_of "$i")"; do
      if port_in_use "$p"; then die "port $p (for n$i) is already in use on 127.0.0.1; pick another --base-port"; fi
    done
  done
  mkdir -p "$pid_dir" "$log_dir" "$data_dir"
  write_env

  echo "starting $count node(s) in $dir (ports $base_port..$((base_port + 10 * (count - 1) + 2)), durability $durability${config:+, config $config})"
  for ((i = 1; i <= count; i++)); do
    launch_node "$i"
    # n1 is every node's seed: give it a head start so the others join at once.
    if [ "$i" -eq 1 ] && ! wait_healthy 1; then
      tail_logs; stop_all quiet
      die "the cluster did not come up; nodes stopped, logs kept in $log_dir"
    fi
  done

  local deadline=$(($(now_ms) + up_timeout * 1000)) ok alive=0
  while :; do
    ok=1
    for ((i = 1; i <= count; i++)); do
      if ! live_pid "$pid_dir/n$i.pid" >/dev/null; then
        echo "cluster.sh: error: n$i exited during start-up" >&2
        tail_logs; stop_all quiet
        die "the cluster did not come up; nodes stopped, logs kept in $log_dir"
      fi
      [ "$(health_code "$i")" = 200 ] || { ok=0; break; }
    done
    if [ "$ok" = 1 ]; then
      alive="$(alive_count "$(rpc_port_of 1)")"
      [ "$alive" -eq "$count" ] && break
    fi
    if (($(now_ms) >= deadline)); then
      echo "cluster.sh: error: within ${up_timeout} s: all /health 200 = $([ "$ok" = 1 ] && echo yes || echo no), alive members seen by n1 = $alive of $count" >&2
      tail_logs; stop_all quiet
      die "the cluster did not come up; nodes stopped, logs kept in $log_dir"
    fi
    sleep 0.1
  done

  local connect
  connect="127.0.0.1:$(rpc_port_of 1)"
  echo
  echo "wharf cluster up: $count node(s), all alive"
  for ((i = 1; i <= count; i++)); do
    printf '  n%-4s pid %-8s cluster 127.0.0.1:%s  rpc %s  http http://127.0.0.1:%s/health\n' \
      "$i" "$(cat "$pid_dir/n$i.pid")" "$(cluster_port_of "$i")" "$(rpc_port_of "$i")" "$(http_port_of "$i")"
  done
  echo
  echo "  directory: $dir  (cluster.env, data/, pids/)"
  echo "  logs:      $log_dir/n<i>.log"
  echo "  console:   $bin_dir/wharf console --connect $connect"
  echo "  status:    $prog status --dir $dir"
  echo "  stop:      $prog down --dir $dir"
}

cmd_start_node() {
  [ -n "$count" ] || usage_error "start-node needs a node number, e.g. '$prog start-node 3'"
  local i="$count"
  load_env
  if ! { is_uint "$i" && [ "$i" -ge 1 ] && [ "$i" -le "$count" ]; }; then
    usage_error "node number must be 1..$count, got '$i'"
  fi
  check_binaries
  mkdir -p "$pid_dir" "$log_dir" "$data_dir"
  launch_node "$i"
  if ! wait_healthy "$i"; then
    tail -n 20 "$log_dir/n$i.log" >&2 || true
    die "n$i did not become healthy; see $log_dir/n$i.log"
  fi
  echo "n$i started (pid $(cat "$pid_dir/n$i.pid")), /health 200; log: $log_dir/n$i.log"
}

cmd_status() {
  load_env
  check_binaries
  local i pid code first_rpc="" healthy=0
  echo "cluster in $dir: $count node(s), base port $base_port, durability $durability${config:+, config $config}"
  for ((i = 1; i <= count; i++)); do
    if pid="$(live_pid "$pid_dir/n$i.pid")"; then
      code="$(health_code "$i")"
      printf '  n%-4s running (pid %s)  /health %s\n' "$i" "$pid" \
        "$([ "$code" = 000 ] && echo 'no answer' || echo "$code")"
      if [ "$code" = 200 ]; then
        healthy=$((healthy + 1))
        [ -n "$first_rpc" ] || first_rpc="$(rpc_port_of "$i")"
      fi
    else
      printf '  n%-4s not running\n' "$i"
    fi
  done
  echo
  if [ -n "$first_rpc" ]; then
    echo "members as seen by 127.0.0.1:$first_rpc:"
    "$bin_dir/wharf" console --connect "127.0.0.1:$first_rpc" --timeout-ms 5000 -c nodes ||
      echo "(the console could not list members)"
  else
    echo "no live node to ask for the member table"
  fi
  if [ "$healthy" -ne "$count" ]; then
    echo "cluster.sh: $healthy of $count node(s) healthy" >&2
    return 1
  fi
}

cmd_down() {
  if [ ! -d "$pid_dir" ]; then
    echo "nothing running in $dir"
    return 0
  fi
  stop_all
  echo "data kept in $data_dir, logs kept in $log_dir"
}

case "$cmd" in
  up) cmd_up ;;
  start-node) cmd_start_node ;;
  status) cmd_status ;;
  down) cmd_down ;;
esac
