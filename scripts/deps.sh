#!/usr/bin/env bash
# Install the Debian packages Samsa builds and tests with, and the npm
# packages of the node client tests. Idempotent and quiet when all is there.
set -euo pipefail
cd "$(dirname "$0")/.."

pkgs=(build-essential cmake python3 pkg-config
      librdkafka-dev kcat python3-pytest python3-confluent-kafka python3-kafka
      nodejs npm)
missing=()
for p in "${pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
# node/npm may come from elsewhere (nvm, tarball): accept any working binaries.
if command -v node >/dev/null && command -v npm >/dev/null; then
  tmp=(); for p in "${missing[@]}"; do [[ $p == nodejs || $p == npm ]] || tmp+=("$p"); done
  missing=("${tmp[@]+"${tmp[@]}"}")
fi
if [ ${#missing[@]} -gt 0 ]; then
  echo "deps: installing ${missing[*]}"
  SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO=sudo
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${missing[@]}" >/dev/null
fi
