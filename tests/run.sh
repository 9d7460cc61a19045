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

# -- throwaway PostgreSQL (deploy/local-pg.sh; see /work/shared/toolchain-notes.md section 8) --

# Under /tmp, not $TMPDIR: every parent directory must be traversable by the postgres user.
pg_dir=""
# shellcheck disable=SC2317  # invoked through the EXIT trap
stop_pg() {
  if [ -n "$pg_dir" ]; then
    WHARF_PG_BIN="$pg_bin" "$repo_dir/deploy/local-pg.sh" remove "$pg_dir" ||
      echo "tests/run.sh: warning: could not stop PostgreSQL in $pg_dir" >&2
    pg_dir=""
  fi
}
trap stop_pg EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

banner "starting a throwaway PostgreSQL from $pg_bin"
pg_dir="$(mktemp -d /tmp/wharf-pg.XXXXXX)"
dsn_line="$(WHARF_PG_BIN="$pg_bin" "$repo_dir/deploy/local-pg.sh" start "$pg_dir" --port-from 54329)" ||
  die "PostgreSQL did not start"
eval "export $dsn_line"
echo "PostgreSQL ready: WHARF_PG_DSN=\"$WHARF_PG_DSN\" (data in $pg_dir, removed on exit)"

# -- tests --

banner "ctest --test-dir $build_dir --output-on-failure -j1 ${ctest_args[*]:-}"
rc=0
ctest --test-dir "$build_dir" --output-on-failure -j1 "${ctest_args[@]}" || rc=$?
exit $rc
