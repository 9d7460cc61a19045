#!/usr/bin/env bash
# Checks the dependency direction protocols <- runtime <- actors <- apps by grepping includes
# (the CMake link graph enforces it too; this names the offending line). Usage: layering.sh REPO
set -euo pipefail
repo=${1:-$(dirname "$(dirname "$(readlink -f "$0")")")}
cd "$repo"
fail=0
check() { # folder, regex of forbidden includes, why
  local hits
  hits=$(grep -rnE "^\s*#\s*include\s*[<\"]($2)" "$1" --include='*.hpp' --include='*.cpp' || true)
  if [ -n "$hits" ]; then
    echo "layering: $1 must not include $3:"
    echo "$hits"
    fail=1
  fi
}
check protocols 'runtime/|actors/|apps/|rocksdb/|spdlog/|libpq|caf/all\.hpp|caf/io/|caf/event_based_actor|caf/actor_system|caf/scheduled_actor' \
  'runtime, actors, apps, storage, logging or CAF actor/scheduling headers'
check runtime 'actors/|apps/' 'actors or apps'
check actors 'apps/' 'apps'
[ "$fail" -eq 0 ] && echo "layering: ok (protocols <- runtime <- actors <- apps)"
exit "$fail"
