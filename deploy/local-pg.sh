#!/usr/bin/env bash
# local-pg.sh: a throwaway local PostgreSQL for the demo, the tests and the benchmarks.
#
# Usage:
#   deploy/local-pg.sh start DIR [--port-from P] [-c NAME=VALUE]...
#       initdb into DIR/data (if it is not there yet), start the server on 127.0.0.1 at the first
#       free port from P (default 54329), wait until it accepts connections, and print one line:
#       WHARF_PG_DSN="host=127.0.0.1 port=PORT user=postgres dbname=postgres"
#       (also written to DIR/dsn). Extra -c settings go to the server (fsync=off is always set:
#       the data is throwaway).
#   deploy/local-pg.sh stop DIR      stop the server (the data stays in DIR/data)
#   deploy/local-pg.sh remove DIR    stop it and delete DIR
# As root the server runs as the `postgres` user (initdb refuses root); DIR must then be
# traversable by it (use a directory under /tmp). Environment: WHARF_PG_BIN (server binaries,
# default /usr/lib/postgresql/15/bin).
# Exit codes: 0 done; 1 PostgreSQL failed (its log is shown); 2 usage error.
set -euo pipefail

pg_bin="${WHARF_PG_BIN:-/usr/lib/postgresql/15/bin}"
usage() { sed -n '2,/^set -euo/{/^set -euo/d;s/^# \{0,1\}//;p}' "${BASH_SOURCE[0]}"; }
die() { echo "local-pg.sh: $*" >&2; exit 1; }

[ $# -ge 2 ] || { usage >&2; exit 2; }
cmd="$1" dir="$2"
shift 2
case "$dir" in /*) ;; *) dir="$PWD/$dir" ;; esac
port_from=54329
settings=(-c fsync=off)
while [ $# -gt 0 ]; do
  case "$1" in
    --port-from) [ $# -ge 2 ] || { usage >&2; exit 2; }; port_from="$2"; shift 2 ;;
    -c) [ $# -ge 2 ] || { usage >&2; exit 2; }; settings+=(-c "$2"); shift 2 ;;
    *) echo "local-pg.sh: unknown option '$1'" >&2; exit 2 ;;
  esac
done

as_pg=()
if [ "$(id -u)" -eq 0 ]; then
  id postgres >/dev/null 2>&1 || die "running as root, but there is no 'postgres' user (initdb refuses root); install the postgresql package"
  as_pg=(runuser -u postgres --)
fi
pg() { (cd / && "${as_pg[@]}" "$@"); }
data="$dir/data"

stop() {
  if [ -f "$data/postmaster.pid" ]; then
    pg "$pg_bin/pg_ctl" -D "$data" -m fast -w -t 30 stop >/dev/null 2>&1 || echo "local-pg.sh: warning: pg_ctl stop failed; see $dir/server.log" >&2
  fi
}

case "$cmd" in
  stop) stop; exit 0 ;;
  remove) stop; rm -rf "$dir"; exit 0 ;;
  start) ;;
  -h|--help) usage; exit 0 ;;
  *) echo "local-pg.sh: unknown command '$cmd' (start, stop or remove)" >&2; exit 2 ;;
esac

for b in initdb pg_ctl pg_isready; do
  [ -x "$pg_bin/$b" ] || die "$pg_bin/$b not found (install postgresql-15 with deploy/install-deps.sh, or set WHARF_PG_BIN)"
done
mkdir -p "$dir"
[ ${#as_pg[@]} -eq 0 ] || chown postgres:postgres "$dir"
if [ ! -f "$data/PG_VERSION" ]; then
  pg "$pg_bin/initdb" -D "$data" -U postgres -A trust -E UTF8 --no-sync >"$dir/initdb.log" 2>&1 || {
    cat "$dir/initdb.log" >&2; die "initdb failed"
  }
fi
if [ -f "$data/postmaster.pid" ] && [ -f "$dir/dsn" ] && pg "$pg_bin/pg_ctl" -D "$data" status >/dev/null 2>&1; then
  cat "$dir/dsn"   # already running
  exit 0
fi
port_in_use() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
port=""
for p in $(seq "$port_from" $((port_from + 99))); do
  port_in_use "$p" && continue
  # Truncate (never create: a root-owned log would be unwritable for postgres).
  if [ -f "$dir/server.log" ]; then : >"$dir/server.log"; fi
  if pg "$pg_bin/pg_ctl" -D "$data" -l "$dir/server.log" -w -t 30 \
    -o "-c listen_addresses=127.0.0.1 -p $p -c unix_socket_directories=$dir ${settings[*]}" \
    start >/dev/null 2>&1; then
    port="$p"
    break
  fi
  grep -qE 'could not bind|Address already in use' "$dir/server.log" 2>/dev/null || {
    tail -n 20 "$dir/server.log" >&2 || true
    die "PostgreSQL did not start (log above)"
  }
done
[ -n "$port" ] || die "no free port for PostgreSQL in $port_from..$((port_from + 99))"
for _ in $(seq 1 100); do
  "$pg_bin/pg_isready" -q -h 127.0.0.1 -p "$port" && break
  sleep 0.1
done
"$pg_bin/pg_isready" -q -h 127.0.0.1 -p "$port" || { tail -n 20 "$dir/server.log" >&2; die "PostgreSQL on port $port is not ready after 10 s"; }
line="WHARF_PG_DSN=\"host=127.0.0.1 port=$port user=postgres dbname=postgres\""
echo "$line" >"$dir/dsn"
echo "$line"
