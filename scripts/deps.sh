#!/usr/bin/env bash
# Install the Debian packages Samsa builds and tests with, and the npm
# packages of the node client tests. Idempotent and quiet when all is there.
set -euo pipefail
cd "$(dirname "$0")/.."

pkgs=(build-essential cmake python3 pkg-config zlib1g-dev liblz4-dev libzstd-dev libsnappy-dev
      librdkafka-dev kcat python3-pytest python3-confluent-kafka python3-kafka
      # integration tests: kafka-python's codecs (snappy, lz4 frames, zstd), a
      # per-test time bound and two workers for pytest
      python3-snappy python3-lz4 python3-zstandard python3-pytest-timeout
      python3-pytest-xdist
      # ss(8), which reads back the broker's socket buffer sizes
      iproute2
      # tests/chaos/repl_chaos.py: network partitions of one node (as root; else skipped)
      iptables
      # tests/integration/test_sarama.py: Go and sarama 1.22 (built offline in GOPATH mode)
      golang-go golang-github-shopify-sarama-dev
      nodejs npm
      # samsa-connect (src/connect): its REST server and JSON documents
      libmicrohttpd-dev libjansson-dev
      # samsa-connect's JDBC connectors (libsqlite3, libpq); their tests run a PostgreSQL 15
      libsqlite3-dev libpq-dev postgresql)
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

# npm packages of the node client tests (kafkajs, @platformatic/kafka), pinned by
# the committed package-lock.json: install when node_modules is absent or older
# than the lock file (npm ci rewrites node_modules/.package-lock.json).
node_dir=tests/integration/node
if [ -f "$node_dir/package-lock.json" ] && command -v npm >/dev/null; then
  if [ ! -f "$node_dir/node_modules/.package-lock.json" ] ||
     [ "$node_dir/package-lock.json" -nt "$node_dir/node_modules/.package-lock.json" ]; then
    echo "deps: npm ci in $node_dir"
    (cd "$node_dir" && npm ci --no-audit --no-fund --loglevel=error >/dev/null)
  fi
fi
# @platformatic/kafka 1.x needs node >= 20.19 (Debian bookworm's nodejs is 18).
if command -v node >/dev/null &&
   ! node -e 'const [a,b]=process.versions.node.split(".").map(Number); process.exit(a>20||(a==20&&b>=19)?0:1)'; then
  echo "deps: warning: node $(node --version) is older than 20.19; @platformatic/kafka tests may fail" >&2
fi
