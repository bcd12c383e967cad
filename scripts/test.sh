#!/usr/bin/env bash
# Run every test: unit tests and fuzz-corpus replays through ctest, then the
# integration suites. Exits non-zero if anything failed.
set -uo pipefail
cd "$(dirname "$0")/.."
build=${1:-build}
rc=0
(cd "$build" && ctest --output-on-failure -j "$(nproc)") || rc=1
if [ -f tests/integration/run.sh ]; then
  bash tests/integration/run.sh || rc=1
fi
exit $rc
