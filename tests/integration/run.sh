#!/usr/bin/env bash
# Run the integration suites: stock Kafka clients against real samsa-broker
# processes (see tests/integration/conftest.py and node/broker.mjs).
#
#   pytest  (kcat, confluent-kafka-python, kafka-python, sarama via a Go program,
#            raw-socket cases)
#   node    (kafkajs, @platformatic/kafka) via node's built-in test runner
#
# The two runners are independent (every test picks its own free ports, temp
# dirs and topic names), so they run side by side to stay well inside the time
# budget on a 2-core machine; each one's own output and summary is printed
# after both finish. Exits non-zero if either failed, including pytest's exit
# status 5 ("no tests collected"). Extra arguments go to pytest.
# Env: SAMSA_BROKER, SAMSA_IT_LOG_LEVEL (see conftest.py), IT_SERIAL=1 to run
# the runners one after the other (and pytest without xdist workers).
set -uo pipefail
cd "$(dirname "$0")/../.."
root=$PWD
py=/usr/bin/python3
[ -x "$py" ] || py=python3

if [ ! -x bin/samsa-broker ] && [ -z "${SAMSA_BROKER:-}" ]; then
  echo "integration: bin/samsa-broker is missing (run make build)" >&2
  exit 1
fi

node_dir=tests/integration/node
if [ ! -d "$node_dir/node_modules" ] || [ "$node_dir/package-lock.json" -nt "$node_dir/node_modules/.package-lock.json" ]; then
  (cd "$node_dir" && npm ci --no-audit --no-fund --loglevel=error >/dev/null) || {
    echo "integration: npm ci failed in $node_dir" >&2; exit 1; }
fi

out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT

pytest_args=(-q -rfEs -p no:cacheprovider)
if "$py" -c 'import pytest_timeout' 2>/dev/null; then
  # A backstop; every wait inside is bounded already. The thread method also
  # ends a test stuck inside a C call (a client library's blocking close),
  # where the default signal method never gets to run.
  pytest_args+=(--timeout=300 --timeout-method=thread)
fi
# pytest-xdist: tests are independent (own ports, dirs, topics) and mostly wait
# on I/O, so two workers halve the wall time on 2 cores. Tests marked
# @pytest.mark.serial (heavy load, scale) run afterwards, alone.
xdist=0
if [ "${IT_SERIAL:-0}" != 1 ] && "$py" -c 'import xdist' 2>/dev/null; then
  xdist=1
fi

run_pytest() {
  local rc
  if [ "$xdist" = 1 ]; then
    "$py" -m pytest "${pytest_args[@]}" -n 2 -m "not serial" tests/integration "$@" >"$out/pytest.txt" 2>&1
    rc=$?
    echo "----- tests marked serial, one at a time -----" >>"$out/pytest.txt"
    "$py" -m pytest "${pytest_args[@]}" -m serial tests/integration "$@" >>"$out/pytest.txt" 2>&1
    local rc2=$?
    # phase 2 may legitimately select nothing (5); phase 1 must run tests
    if [ "$rc" = 0 ] && [ "$rc2" != 5 ]; then rc=$rc2; fi
  else
    "$py" -m pytest "${pytest_args[@]}" tests/integration "$@" >"$out/pytest.txt" 2>&1
    rc=$?
  fi
  echo "$rc" >"$out/pytest.rc"
}
run_node() {
  # node 20 runs every *.test.mjs under the directory (node_modules excluded).
  (cd "$node_dir" && node --test --test-reporter=spec .) >"$out/node.txt" 2>&1
  echo $? >"$out/node.rc"
}

start=$SECONDS
if [ "${IT_SERIAL:-0}" = 1 ]; then
  run_pytest "$@"
  run_node
else
  run_pytest "$@" &
  pid_py=$!
  run_node &
  pid_node=$!
  wait "$pid_py" "$pid_node"
fi

rc_py=$(cat "$out/pytest.rc")
rc_node=$(cat "$out/node.rc")

echo "===== integration: pytest (kcat, confluent-kafka, kafka-python, sarama, raw wire) ====="
cat "$out/pytest.txt"
echo "===== integration: node --test (kafkajs, @platformatic/kafka) ====="
cat "$out/node.txt"
# One plain closing line over both runners: "integration: N passed, N failed, N skipped".
count() { grep -Eo "$1" "$2" | grep -Eo '[0-9]+' | awk '{s+=$1} END {print s+0}'; }
grep -E '^=* ?[0-9]+ (passed|failed|errors?|skipped|deselected)|^=* ?no tests ran' "$out/pytest.txt" >"$out/pyline"
passed=$(( $(count '[0-9]+ passed' "$out/pyline") + $(count 'ℹ pass [0-9]+' "$out/node.txt") ))
failed=$(( $(count '[0-9]+ (failed|errors?)' "$out/pyline") + $(count 'ℹ fail [0-9]+' "$out/node.txt") ))
skipped=$(( $(count '[0-9]+ skipped' "$out/pyline") + $(count 'ℹ (skipped|todo) [0-9]+' "$out/node.txt") ))
if [ "$rc_py" != 0 ] || [ "$rc_node" != 0 ]; then
  [ "$failed" -gt 0 ] || failed=1   # a runner failed without counting a test failure
fi
echo "===== integration: done in $((SECONDS - start))s ====="
echo "integration: $passed passed, $failed failed, $skipped skipped"

rc=0
if [ "$rc_py" = 5 ]; then
  echo "integration: pytest collected no tests" >&2
  rc=1
elif [ "$rc_py" != 0 ]; then
  echo "integration: pytest failed (exit $rc_py)" >&2
  rc=1
fi
if [ "$rc_node" != 0 ]; then
  echo "integration: node tests failed (exit $rc_node)" >&2
  rc=1
fi
exit $rc
