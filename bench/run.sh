#!/usr/bin/env bash
# run.sh - `make bench`: Samsa side by side with librdkafka's mock cluster, and
# the machine's limits, in one run (bench/bench.py does the work; method and
# results in docs/PERFORMANCE.md).
#
#   bash bench/run.sh            full run (~10 min): every workload, 3 A/B pairs,
#                                tables written into docs/PERFORMANCE.md
#   BENCH_QUICK=1 bash bench/run.sh   quick run (~1 min) for iteration; prints only
#   BENCH_ONLY=produce,e2e ...   a subset (machine,produce,consume,e2e,txn,resources,compress,
#                                cleaner,connect,cluster); prints only
#   BENCH_PAIRS=N                A/B pairs per workload
#   BENCH_VERSUS=BIN             B side = another samsa-broker build instead of the mock
#                                (the effect of a change, same method); prints only
# Binaries: SAMSA_BROKER (default bin/samsa-broker), SAMSA_CLI (default bin/samsa).
# Raw samples: BENCH_JSON (default build/bench-results.json).
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
broker=${SAMSA_BROKER:-$root/bin/samsa-broker}
cli=${SAMSA_CLI:-$root/bin/samsa}
for b in "$broker" "$cli"; do
  if [ ! -x "$b" ]; then
    echo "bench: $b is missing (run make build)" >&2
    exit 1
  fi
done
if ! "$cli" perf --help >/dev/null 2>&1; then
  echo "bench: $cli has no working 'perf' command" >&2
  exit 1
fi
out=${BENCH_BUILD:-$root/build}/bench
mkdir -p "$out"
cc -O2 -Wall -Wextra -pthread bench/machine.c -o "$out/machine"
args=(--broker "$broker" --cli "$cli" --machine "$out/machine"
      --json "${BENCH_JSON:-$out/bench-results.json}")
[ "${BENCH_QUICK:-0}" = 1 ] && args+=(--quick)
[ -n "${BENCH_PAIRS:-}" ] && args+=(--pairs "$BENCH_PAIRS")
[ -n "${BENCH_ONLY:-}" ] && args+=(--only "$BENCH_ONLY")
[ -n "${BENCH_VERSUS:-}" ] && args+=(--versus "$BENCH_VERSUS")
py=/usr/bin/python3
[ -x "$py" ] || py=python3
only=${BENCH_ONLY:-}
if [ -z "$only" ] || [ "$only" != "cluster" ] && [ "$only" != "compress" ] &&
   [ "$only" != "cleaner" ] && [ "$only" != "connect" ]; then
  "$py" bench/bench.py "${args[@]}"
fi
# The cluster's control plane (docs/PERFORMANCE.md "Cluster"): the metadata
# image at 100,000 partitions, controller failover after kill -9 and the
# propagation of 10,000 new partitions to every broker. Printed; the tables in
# PERFORMANCE.md are updated by hand from them.
# Topic compression.type: CPU per GB of re-framing against passthrough
# (docs/PERFORMANCE.md "Topic compression"). Printed.
case ",$only," in
  ,,|*,compress,*)
    echo "== topic compression: re-framing cost per GB (bench/compress_bench.c)"
    mb=64; [ "${BENCH_QUICK:-0}" = 1 ] && mb=16
    "${BENCH_BUILD:-$root/build}/bench/compress_bench" "$mb" 5
    ;;
esac
# The log cleaner (docs/PERFORMANCE.md "Log cleaner"): MB/s cleaned against a
# copy of the same segments, and produce latency while it cleans. Printed.
case ",$only," in
  ,,|*,cleaner,*)
    echo "== log cleaner: MB/s of log cleaned (bench/cleaner_bench.c)"
    mb=256; runs=5; [ "${BENCH_QUICK:-0}" = 1 ] && mb=64 && runs=1
    "${BENCH_BUILD:-$root/build}/bench/cleaner_bench" "$mb" 25 "$runs" 2>/dev/null
    "${BENCH_BUILD:-$root/build}/bench/cleaner_bench" "$mb" 1 "$runs" 2>/dev/null
    echo "== log cleaner: produce latency while it cleans (bench/cleaner_latency.py)"
    quick=()
    [ "${BENCH_QUICK:-0}" = 1 ] && quick=(--quick)
    "$py" bench/cleaner_latency.py "${quick[@]}" --broker "$broker" --cli "$cli"
    ;;
esac
# samsa-connect (docs/PERFORMANCE.md "Connect"): file -> topic -> file through one
# worker against samsa perf produce + consume of the same data; the worker's RSS.
case ",$only," in
  ,,|*,connect,*)
    echo "== connect: file source -> broker -> file sink (bench/connect_bench.py)"
    quick=()
    [ "${BENCH_QUICK:-0}" = 1 ] && quick=(--quick)
    "$py" bench/connect_bench.py "${quick[@]}" --pairs 5 --broker "$broker" --cli "$cli" \
      --connect "${SAMSA_CONNECT:-$root/bin/samsa-connect}"
    ;;
esac
case ",$only," in
  ,,|*,cluster,*)
    echo "== metadata image: replay, snapshot write and load (bench/meta_bench.c)"
    "${BENCH_BUILD:-$root/build}/bench/meta_bench" 100000 100 "$out"
    echo "== cluster: failover and propagation (bench/cluster_bench.py)"
    quick=()
    [ "${BENCH_QUICK:-0}" = 1 ] && quick=(--quick)
    "$py" bench/cluster_bench.py "${quick[@]}" --json "$out/cluster-results.json"
    ;;
esac
