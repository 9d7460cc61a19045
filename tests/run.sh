#!/usr/bin/env bash
# run.sh: installs the dependencies, builds wharf with tests and benchmarks (RelWithDebInfo),
# starts a throwaway PostgreSQL 15 on 127.0.0.1 and runs every test through ctest. CI runs
# this through .ci/run.
#
# Usage: tests/run.sh [--no-install] [--no-build] [-h|--help] [--] [CTEST_ARGS...]
#   --no-install  skip deploy/install-deps.sh (which uses sudo when not root)
#   --no-build    skip cmake; run the tests already built in the build directory
#   CTEST_ARGS    passed to ctest after the defaults, e.g. `tests/run.sh -L unit`,
#                 `tests/run.sh -R codec`; put them after `--` if one looks like our flags
# Environment:
#   WHARF_BUILD_DIR   build directory (default <repo>/build)
#   WHARF_BUILD_JOBS  parallel compile jobs (default 2)
#   WHARF_PG_BIN      PostgreSQL server binaries (default /usr/lib/postgresql/15/bin)
# Exported to the tests: WHARF_PG_DSN="host=127.0.0.1 port=PORT user=postgres dbname=postgres"
# (PORT is the first free port from 54329). PostgreSQL runs as the `postgres` user when this
# script runs as root (initdb refuses root), as the current user otherwise; it is stopped and
# its directory removed when the script exits, also on failure or Ctrl-C.
# Exit code: ctest's (0 = every test passed); 1 if the build or PostgreSQL fails; 2 usage error.
set -euo pipefail

script_dir="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo_dir="$(dirname "$script_dir")"

usage() {
  sed -n '2,/^set -euo/{/^set -euo/d;s/^# \{0,1\}//;p}' "${BASH_SOURCE[0]}"
}

die() {
  echo "tests/run.sh: error: $*" >&2
  exit 1
}

install=1
build=1
ctest_args=()
while [ $# -gt 0 ]; do
  case "$1" in
    --no-install) install=0 ;;
    --no-build) build=0 ;;
    -h|--help) usage; exit 0 ;;
    --) shift; ctest_args+=("$@"); break ;;
    *) ctest_args+=("$1") ;;
  esac
  shift
done

build_dir="${WHARF_BUILD_DIR:-$repo_dir/build}"
case "$build_dir" in /*) ;; *) build_dir="$PWD/$build_dir" ;; esac
jobs="${WHARF_BUILD_JOBS:-2}"
[[ "$jobs" =~ ^[1-9][0-9]*$ ]] || { echo "tests/run.sh: WHARF_BUILD_JOBS must be a positive number, got '$jobs'" >&2; exit 2; }
pg_bin="${WHARF_PG_BIN:-/usr/lib/postgresql/15/bin}"

banner() { printf '\n==> %s\n' "$*"; }

# -- dependencies and build --

if [ $install = 1 ]; then
  banner "installing Debian packages (deploy/install-deps.sh)"
  "$repo_dir/deploy/install-deps.sh"
fi

if [ $build = 1 ]; then
  banner "building RelWithDebInfo with tests and benchmarks into $build_dir"
  cmake -S "$repo_dir" -B "$build_dir" -DCMAKE_BUILD_TYPE=RelWithDebInfo \
    -DWHARF_ENABLE_TESTING=ON -DWHARF_ENABLE_BENCH=ON || die "cmake configure failed"
  cmake --build "$build_dir" -j"$jobs" || die "build failed"
fi
[ -f "$build_dir/CTestTestfile.cmake" ] ||
  die "no tests in $build_dir (missing CTestTestfile.cmake); build with -DWHARF_ENABLE_TESTING=ON or drop --no-build"

# -- throwaway PostgreSQL (see /work/shared/toolchain-notes.md section 8) --

for b in initdb pg_ctl pg_isready; do
  [ -x "$pg_bin/$b" ] || die "$pg_bin/$b not found (install postgresql-15 with deploy/install-deps.sh, or set WHARF_PG_BIN)"
done

as_pg=()
if [ "$(id -u)" -eq 0 ]; then
  id postgres >/dev/null 2>&1 || die "running as root, but there is no 'postgres' user to run PostgreSQL (initdb refuses root); install the postgresql package"
  as_pg=(runuser -u postgres --)
fi

pg_data=""
pg_started=0

# Runs a PostgreSQL command as its owner, from / (postgres must be able to read the cwd).
pg() { (cd / && "${as_pg[@]}" "$@"); }

# shellcheck disable=SC2317  # invoked through the EXIT trap
stop_pg() {
  if [ "$pg_started" = 1 ]; then
    pg "$pg_bin/pg_ctl" -D "$pg_data" -m fast -w -t 30 stop >/dev/null 2>&1 ||
      echo "tests/run.sh: warning: pg_ctl stop failed; see $pg_data/server.log" >&2
    pg_started=0
  fi
  if [ -n "$pg_data" ] && [ -d "$pg_data" ]; then
    rm -rf "$pg_data"
  fi
}
trap stop_pg EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

port_in_use() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

banner "starting a throwaway PostgreSQL from $pg_bin"
# Under /tmp, not $TMPDIR: every parent directory must be traversable by the postgres user.
pg_data="$(mktemp -d /tmp/wharf-pg.XXXXXX)"
[ ${#as_pg[@]} -eq 0 ] || chown postgres:postgres "$pg_data"
pg "$pg_bin/initdb" -D "$pg_data" -U postgres -A trust -E UTF8 --no-sync >"$pg_data.initdb.log" 2>&1 || {
  cat "$pg_data.initdb.log" >&2; rm -f "$pg_data.initdb.log"; die "initdb failed"
}
rm -f "$pg_data.initdb.log"

pg_port=""
for ((port = 54329; port < 54429; port++)); do
  port_in_use "$port" && continue
  # Truncate (never create: a root-owned log would be unwritable for postgres) so the check
  # below sees only this attempt.
  if [ -f "$pg_data/server.log" ]; then : >"$pg_data/server.log"; fi
  if pg "$pg_bin/pg_ctl" -D "$pg_data" -l "$pg_data/server.log" -w -t 30 \
    -o "-c listen_addresses=127.0.0.1 -p $port -c unix_socket_directories=$pg_data -c fsync=off" \
    start >/dev/null; then
    pg_started=1
    pg_port="$port"
    break
  fi
  # Lost a race for the port: try the next one. Anything else is a real failure.
  grep -qE 'could not bind|Address already in use' "$pg_data/server.log" 2>/dev/null || {
    tail -n 20 "$pg_data/server.log" >&2 || true
    die "PostgreSQL did not start"
  }
done
[ -n "$pg_port" ] || die "no free port for PostgreSQL in 54329..54428"

ready=0
for _ in $(seq 1 100); do
  if "$pg_bin/pg_isready" -q -h 127.0.0.1 -p "$pg_port"; then ready=1; break; fi
  sleep 0.1
done
[ $ready = 1 ] || { tail -n 20 "$pg_data/server.log" >&2 || true; die "PostgreSQL on port $pg_port is not ready after 10 s"; }

export WHARF_PG_DSN="host=127.0.0.1 port=$pg_port user=postgres dbname=postgres"
echo "PostgreSQL ready: WHARF_PG_DSN=\"$WHARF_PG_DSN\" (data in $pg_data, removed on exit)"

# -- tests --

banner "ctest --test-dir $build_dir --output-on-failure -j1 ${ctest_args[*]:-}"
rc=0
ctest --test-dir "$build_dir" --output-on-failure -j1 "${ctest_args[@]}" || rc=$?
exit $rc
