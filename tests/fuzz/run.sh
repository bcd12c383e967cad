#!/usr/bin/env bash
# run.sh BUILDDIR SECONDS - run every libFuzzer target BUILDDIR/fuzz_* (built with
# cmake -DCMAKE_C_COMPILER=clang -DSAMSA_FUZZ=ON) for SECONDS each, seeded from
# tests/fuzz/corpus/<name>. New interesting inputs go to a scratch directory; set
# MERGE=1 to merge them into the committed corpus (minimised with -merge=1).
# Crashes are written as tests/fuzz/crash-* (ignored by git): copy a reproducer
# into the corpus once fixed, so ctest replays it.
# FUZZ_TARGETS="request batch" limits the run to those targets. The last line sums
# the executions of all targets ("fuzz: N executions in total").
set -euo pipefail
if [ $# -ne 2 ]; then
    echo "usage: $0 BUILDDIR SECONDS" >&2
    exit 2
fi
build=$1
secs=$2
here=$(cd "$(dirname "$0")" && pwd)
status=0
found=0
total=0
for bin in "$build"/fuzz_*; do
    [ -x "$bin" ] || continue
    name=$(basename "$bin")
    case $name in *_replay) continue ;; esac
    if [ -n "${FUZZ_TARGETS:-}" ] && [[ " $FUZZ_TARGETS " != *" ${name#fuzz_} "* ]]; then
        continue
    fi
    found=1
    corpus="$here/corpus/${name#fuzz_}"
    mkdir -p "$corpus"
    scratch=$(mktemp -d)
    echo "== $name for ${secs}s (corpus $corpus)"
    log=$(mktemp)
    if ! "$bin" -max_total_time="$secs" -timeout=10 -rss_limit_mb=2048 -print_final_stats=1 \
        -artifact_prefix="$here/" "$scratch" "$corpus" 2>&1 | tee "$log" | grep -v "^#"; then
        echo "!! $name found a failure (see $here/crash-*)" >&2
        status=1
    fi
    runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)
    total=$((total + ${runs:-0}))
    rm -f "$log"
    if [ "${MERGE:-0}" = 1 ]; then
        merged=$(mktemp -d)
        "$bin" -merge=1 "$merged" "$corpus" "$scratch" >/dev/null 2>&1
        rm -f "$corpus"/*
        cp "$merged"/* "$corpus"/
        rm -rf "$merged"
        echo "   corpus now $(ls "$corpus" | wc -l) files"
    fi
    rm -rf "$scratch"
done
echo "fuzz: $total executions in total"
if [ $found = 0 ]; then
    echo "no fuzz targets in $build (configure with -DSAMSA_FUZZ=ON and clang)" >&2
    exit 1
fi
exit $status
