#!/usr/bin/env bash
# run.sh: installs the dependencies, builds wharf with tests and benchmarks (RelWithDebInfo),
# starts a throwaway PostgreSQL 15 on 127.0.0.1 and runs every test through ctest; then builds
# the protocols and runtime tests with AddressSanitizer and UndefinedBehaviorSanitizer in a
# second build directory and runs them (any finding fails). CI runs this through .ci/run.
#
# Usage: tests/run.sh [--no-install] [--no-build] [--no-sanitizers] [-h|--help] [--] [CTEST_ARGS...]
#   --no-install     skip deploy/install-deps.sh (which uses sudo when not root)
#   --no-build       skip cmake; run the tests already built in the build directories
#   --no-sanitizers  skip the sanitizer build and its tests (they also skip when CTEST_ARGS
#                    select tests)
#   CTEST_ARGS       passed to ctest after the defaults, e.g. `tests/run.sh -L unit`,
#                    `tests/run.sh -R codec`; put them after `--` if one looks like our flags
# Environment:
#   WHARF_BUILD_DIR   build directory (default <repo>/build); the sanitizer build goes to
#                     the same path with -asan appended
#   WHARF_BUILD_JOBS  parallel compile jobs (default 2)
#   WHARF_PG_BIN      PostgreSQL server binaries (default /usr/lib/postgresql/15/bin)
# Exported to the tests: WHARF_PG_DSN="host=127.0.0.1 port=PORT user=postgres dbname=postgres"
# (PORT is the first free port from 54329) and WHARF_REQUIRE_PG=1 (a `pg` test fails rather
# than skips without its database). PostgreSQL runs as the `postgres` user when this
# script runs as root (initdb refuses root), as the current user otherwise; it is stopped and
# its directory removed when the script exits, also on failure or Ctrl-C.
# Exit code: 0 when every test passed (ctest's code otherwise, or 1 for a sanitizer finding);
# 1 if the build or PostgreSQL fails; 2 usage error.
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
sanitizers=1
ctest_args=()
while [ $# -gt 0 ]; do
  case "$1" in
    --no-install) install=0 ;;
    --no-build) build=0 ;;
    --no-sanitizers) sanitizers=0 ;;
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
export WHARF_REQUIRE_PG=1
echo "PostgreSQL ready: WHARF_PG_DSN=\"$WHARF_PG_DSN\" (data in $pg_dir, removed on exit)"

# -- tests --

banner "ctest --test-dir $build_dir --output-on-failure -j1 ${ctest_args[*]:-}"
rc=0
ctest --test-dir "$build_dir" --output-on-failure -j1 "${ctest_args[@]}" || rc=$?

# -- the same unit tests under AddressSanitizer and UndefinedBehaviorSanitizer --

if [ $sanitizers = 1 ] && [ ${#ctest_args[@]} -eq 0 ]; then
  asan_dir="${build_dir}-asan"
  if [ $build = 1 ]; then
    banner "building protocols_tests and runtime_tests with -fsanitize=address,undefined into $asan_dir"
    cmake -S "$repo_dir" -B "$asan_dir" -DCMAKE_BUILD_TYPE=RelWithDebInfo -DWHARF_SANITIZERS=ON \
      -DWHARF_ENABLE_TESTING=ON -DWHARF_ENABLE_BENCH=OFF >/dev/null || die "cmake configure (sanitizers) failed"
    cmake --build "$asan_dir" -j"$jobs" --target protocols_tests runtime_tests ||
      die "sanitizer build failed"
  fi
  export ASAN_OPTIONS="detect_leaks=1:abort_on_error=0:exitcode=23"
  export UBSAN_OPTIONS="halt_on_error=1:print_stacktrace=1:suppressions=$repo_dir/tests/sanitizers/ubsan.supp"
  for t in protocols_tests runtime_tests; do
    banner "$t under AddressSanitizer and UndefinedBehaviorSanitizer"
    if ! "$asan_dir/tests/$t" --color_output=no; then
      echo "tests/run.sh: $t failed under the sanitizers" >&2
      [ "$rc" -ne 0 ] || rc=1
    fi
  done
fi
exit $rc
