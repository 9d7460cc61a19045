#!/usr/bin/env bash
# Checks the dependency direction protocols <- runtime <- actors <- apps by grepping includes
# (the CMake link graph enforces it too; this names the offending line), and that runtime/
# stays generic: services plug in as modules (runtime/module/service_module.hpp), so runtime/
# includes no service's schema or header and names no service. Usage: layering.sh REPO
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
# The node's own schemas are api.capnp (the Node bootstrap: one typed accessor per service)
# and cluster.capnp; every other schema belongs to a service.
service_schemas=$(cd protocols && ls *.capnp | grep -vxE 'api\.capnp|cluster\.capnp' \
  | sed 's/\./\\./g' | paste -sd'|' -)
if [ -n "$service_schemas" ]; then
  check runtime "protocols/($service_schemas)\.h" "a service's schema (runtime knows no service)"
fi
# Service names in runtime/ code: a service is a module; runtime must not name one.
names=$(grep -rnwiE 'analytics|reports?|register_(actor|child|module|name)|kv_register' runtime \
  --include='*.hpp' --include='*.cpp' || true)
if [ -n "$names" ]; then
  echo "layering: runtime/ names a service (it must stay generic; services are modules):"
  echo "$names"
  fail=1
fi
[ "$fail" -eq 0 ] && echo "layering: ok (protocols <- runtime <- actors <- apps; runtime names no service)"
exit "$fail"
