#!/usr/bin/env bash
# storage_bench.sh - storage engine benchmarks (results go to the "Storage"
# section of docs/PERFORMANCE.md by hand; this script only measures).
#
#   bench/storage_bench.sh [LOG_GB] [DATA_PARENT]
#
# In one run, on one machine, side by side:
#   1. the machine's fsync rate (512-byte append + fdatasync, in the data dir)
#   2. produce throughput on a topic with flush.messages=1 (every acknowledged
#      record fsynced before the answer), acks=all:
#        a. one producer, one request in flight (each answer waits for an fsync)
#        b. 16 producers x 5 requests in flight (group commit shares fsyncs)
#      reported as records/s and as a multiple of the fsync rate
#   3. restart time with LOG_GB (default 4) of log in 8 partitions:
#        a. after a graceful stop (clean: no scan)
#        b. after kill -9 right after writing 256 MB more (recovery scans only
#           what was not yet flushed; the broker logs the bytes it scanned)
#      as the broker's own "started in" (process start to listeners up, logs
#      loaded) and as wall time from exec until it logs "serving".
# Needs: cc, librdkafka (pkg-config rdkafka), bin/samsa-broker (or $SAMSA_BROKER).
set -euo pipefail
cd "$(dirname "$0")/.."
LOG_GB=${1:-4}
PARENT=${2:-${TMPDIR:-/tmp}}
BROKER=${SAMSA_BROKER:-$PWD/bin/samsa-broker}
WORK=$(mktemp -d "$PARENT/samsa-storage-bench.XXXXXX")
BENCH=$WORK/storage_bench
trap 'kill -9 $PID 2>/dev/null || true; [ -n "${KEEP:-}" ] || rm -rf "$WORK"' EXIT
cc -O2 -o "$BENCH" bench/storage_bench.c $(pkg-config --cflags --libs rdkafka) -lpthread

PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
CPORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
MPORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
BOOT=127.0.0.1:$PORT
mkdir -p "$WORK/data"
cat > "$WORK/server.properties" <<EOF
node.id=1
process.roles=broker,controller
listeners=PLAINTEXT://127.0.0.1:$PORT,CONTROLLER://127.0.0.1:$CPORT
advertised.listeners=PLAINTEXT://127.0.0.1:$PORT
controller.listener.names=CONTROLLER
listener.security.protocol.map=PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT
controller.quorum.voters=1@127.0.0.1:$CPORT
log.dirs=$WORK/data
metrics.listener=http://127.0.0.1:$MPORT
num.partitions=1
offsets.topic.replication.factor=1
EOF

PID=
start_broker() { # $1: label to print (runs in this shell: PID must stick)
  local t0 t1
  t0=$(date +%s%N)
  local before
  before=$(grep -c "serving on" "$WORK/broker.log" 2>/dev/null || true)
  "$BROKER" "$WORK/server.properties" >>"$WORK/broker.log" 2>&1 &
  PID=$!
  # ready = the broker logged "serving" (listeners bound); polled every 2 ms
  until [ "$(grep -c "serving on" "$WORK/broker.log")" -gt "${before:-0}" ]; do
    kill -0 "$PID" 2>/dev/null || { echo "broker died" >&2; tail "$WORK/broker.log" >&2; exit 1; }
    sleep 0.002
  done
  t1=$(date +%s%N)
  "$BENCH" serving "$BOOT" 60 >/dev/null
  echo "$1 ready_ms=$(( (t1 - t0) / 1000000 )) $(grep 'started in' "$WORK/broker.log" | tail -1 | sed 's/.*started in/started_in/')"
}
stop_broker() {
  local t0 t1
  t0=$(date +%s%N)
  kill -TERM "$PID"
  wait "$PID" || true
  t1=$(date +%s%N)
  echo "stop_ms=$(( (t1 - t0) / 1000000 ))"
}

echo "== machine"
echo "cpus=$(nproc) kernel=$(uname -r) fs=$(df -T "$WORK" | awk 'NR==2{print $2}')"
FSYNC=$("$BENCH" fsync "$WORK/data" 3)
echo "$FSYNC"
FSYNC_RATE=$(echo "$FSYNC" | sed 's/.*fsync_per_sec=\([0-9]*\).*/\1/')

start_broker "first start:" >/dev/null
echo "== produce, flush.messages=1, acks=all, 100-byte records"
"$BENCH" create "$BOOT" gc 1 flush.messages=1
R1=$("$BENCH" produce "$BOOT" gc 0.5 100 all 1 0 1 1)
echo "1 producer x 1 in flight, 1 record per request:    $R1"
R2=$("$BENCH" produce "$BOOT" gc 4 100 all 5 0 32 1)
echo "32 producers x 5 in flight, 1 record per request:  $R2"
for r in "$R1" "$R2"; do
  rate=$(echo "$r" | sed 's/.*msgs_per_sec=\([0-9]*\).*/\1/')
  echo "  records/s per fsync/s of the machine: $(python3 -c "print(round($rate/$FSYNC_RATE, 2))")"
done

echo "== restart with ${LOG_GB} GB of log (8 partitions, 1 KB records)"
"$BENCH" create "$BOOT" big 8
"$BENCH" produce "$BOOT" big $((LOG_GB * 1024)) 1024 1 5 5 4
du -sh "$WORK/data" | awk '{print "data_dir=" $1}'
stop_broker
start_broker "clean restart:"
"$BENCH" produce "$BOOT" big 256 1024 1 5 5 4 >/dev/null
kill -9 "$PID"; wait "$PID" 2>/dev/null || true
start_broker "restart after kill -9 (256 MB just written):"
grep -h "recovery scanned" "$WORK/broker.log" | sed 's/.*recovery scanned \([0-9]*\) bytes (validated \([0-9]*\).*/\1 \2/' |
  awk '{s+=$1; v+=$2} END {printf "recovered_segments_bytes=%.0f validated_unflushed_bytes=%.0f\n", s, v}' || true
grep -c "recovery scanned" "$WORK/broker.log" | awk '{print "logs_recovered=" $1}'
stop_broker >/dev/null
