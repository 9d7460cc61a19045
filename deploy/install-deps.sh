#!/usr/bin/env bash
# Installs every Debian 12 package wharf needs to build, test and run. Idempotent.
# Must run as root (or through sudo). Usage: deploy/install-deps.sh
set -euo pipefail

packages=(
  build-essential cmake ccache pkg-config git
  libcaf-dev                      # CAF 0.17.6: core + io + openssl
  capnproto libcapnp-dev          # capnp compiler, capnp-rpc, kj-async, kj-http
  librocksdb-dev                  # durable actor state
  libpq-dev postgresql            # libpq + a real server for tests
  libspdlog-dev libfmt-dev        # structured logging
  libboost-test-dev               # Boost.Test
  libpg-query-dev                 # SQL parsing (shard routers)
  libtomlplusplus-dev             # node config (TOML)
  libcli11-dev                    # command-line parsing
  nlohmann-json3-dev              # JSON for HTTP endpoints
  libedit-dev                     # console line editing, history, completion
  libxxhash-dev                   # hashing
  libabsl-dev                     # flat hash maps (report aggregation)
  python3 curl procps psmisc      # test and demo helpers (pgrep, curl, killall)
)

if [ "$(id -u)" -ne 0 ]; then
  exec sudo -E "$0" "$@"
fi

missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -eq 0 ]; then
  echo "install-deps: all ${#packages[@]} packages already installed"
  exit 0
fi
echo "install-deps: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
apt-get update -q
apt-get install -y -q --no-install-recommends "${missing[@]}"
