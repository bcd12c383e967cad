#!/usr/bin/env bash
# run-cluster.sh - a local multi-node Samsa cluster on 127.0.0.1 (docs/CLUSTER.md).
#
#   scripts/run-cluster.sh [start]   format (once) and start N combined nodes
#   scripts/run-cluster.sh status    which nodes are alive
#   scripts/run-cluster.sh stop      SIGTERM each node by its pid, wait for it
#
# Every node is process.roles=broker,controller and a voter of the metadata
# quorum. Node <id> (1..N) lives in $CLUSTER_DIR/node-<id>/: server.properties
# (rewritten on each start), data/ (log.dirs), broker.log (appended), pid.
# One cluster id, made once by `samsa storage random-uuid`, is kept in
# $CLUSTER_DIR/cluster.id and formatted into every node's data dir
# (--ignore-formatted: a formatted dir is left as it is).
#
# Ports of node <id>: PLAINTEXT PORT_BASE+id, CONTROLLER PORT_BASE+100+id,
# metrics PORT_BASE+200+id (defaults 19092.., 19192.., 19292..).
# Env: N (nodes, default 3; 1..99), PORT_BASE (default 19091),
#      CLUSTER_DIR (default ./data/cluster), START_TIMEOUT (seconds, default 30).
# Exit: 0 ok (status: all nodes alive), 1 failure (status: some node down), 2 usage.
#
# Processes are only ever signalled by the pid this script recorded, and only
# if that pid still runs bin/samsa-broker with this node's config.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
N=${N:-3}
PORT_BASE=${PORT_BASE:-19091}
CLUSTER_DIR=${CLUSTER_DIR:-$root/data/cluster}
START_TIMEOUT=${START_TIMEOUT:-30}
STOP_TIMEOUT=30
broker_bin=$root/bin/samsa-broker
samsa_bin=$root/bin/samsa

usage() {
  sed -n '2,/^set -euo/p' "$0" | sed -e '$d' -e 's/^# \{0,1\}//'
}

case "$N" in ''|*[!0-9]*) echo "run-cluster: N must be a number, got '$N'" >&2; exit 2 ;; esac
case "$PORT_BASE" in ''|*[!0-9]*) echo "run-cluster: PORT_BASE must be a number" >&2; exit 2 ;; esac
if [ "$N" -lt 1 ] || [ "$N" -gt 99 ]; then
  echo "run-cluster: N must be between 1 and 99, got $N" >&2
  exit 2
fi
if [ $((PORT_BASE + 299)) -gt 65535 ] || [ "$PORT_BASE" -lt 1024 ]; then
  echo "run-cluster: PORT_BASE $PORT_BASE leaves no room for 3 x 100 ports below 65536" >&2
  exit 2
fi
case "$CLUSTER_DIR" in /*) ;; *) CLUSTER_DIR=$root/$CLUSTER_DIR ;; esac

node_dir()   { echo "$CLUSTER_DIR/node-$1"; }
plain_port() { echo $((PORT_BASE + $1)); }
ctrl_port()  { echo $((PORT_BASE + 100 + $1)); }
metric_port() { echo $((PORT_BASE + 200 + $1)); }

# Node ids with a directory under CLUSTER_DIR, ascending (for stop/status,
# which act on what exists, whatever N is now).
existing_ids() {
  local d
  for d in "$CLUSTER_DIR"/node-*; do
    [ -d "$d" ] || continue
    echo "${d##*/node-}"
  done | sort -n
}

# The pid of node $1 if its pid file names a live bin/samsa-broker run with
# this node's config; nothing otherwise (no file, exited, or pid reused).
live_pid() {
  local dir pid cmd
  dir=$(node_dir "$1")
  [ -f "$dir/pid" ] || return 0
  pid=$(cat "$dir/pid" 2>/dev/null || true)
  case "$pid" in ''|*[!0-9]*) return 0 ;; esac
  [ -r "/proc/$pid/cmdline" ] || return 0
  cmd=$(tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null || true)
  case "$cmd" in
    *samsa-broker*"$dir/server.properties"*) echo "$pid" ;;
  esac
}

port_accepts() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

write_config() {
  local id=$1 dir voters="" i
  dir=$(node_dir "$id")
  for ((i = 1; i <= N; i++)); do
    voters+="${voters:+,}$i@127.0.0.1:$(ctrl_port "$i")"
  done
  mkdir -p "$dir/data"
  cat >"$dir/server.properties.tmp" <<EOF
# Node $id of a $N-node local cluster, written by scripts/run-cluster.sh
# (rewritten on every start: edit the script, or PORT_BASE/N, not this file).
node.id=$id
process.roles=broker,controller
listeners=PLAINTEXT://127.0.0.1:$(plain_port "$id"),CONTROLLER://127.0.0.1:$(ctrl_port "$id")
advertised.listeners=PLAINTEXT://127.0.0.1:$(plain_port "$id")
controller.listener.names=CONTROLLER
listener.security.protocol.map=PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT
controller.quorum.voters=$voters
log.dirs=$dir/data
metrics.listener=http://127.0.0.1:$(metric_port "$id")
num.partitions=3
# Partitions are not replicated yet: internal topics get one replica.
offsets.topic.replication.factor=1
transaction.state.log.replication.factor=1
transaction.state.log.min.isr=1
EOF
  mv "$dir/server.properties.tmp" "$dir/server.properties"
}

bootstrap_list() {
  local i out=""
  for ((i = 1; i <= $1; i++)); do
    out+="${out:+,}127.0.0.1:$(plain_port "$i")"
  done
  echo "$out"
}

print_running() {
  local n=$1 i
  echo "Samsa cluster of $n nodes (cluster id $(cat "$CLUSTER_DIR/cluster.id")):"
  for ((i = 1; i <= n; i++)); do
    printf '  node %-2s PLAINTEXT 127.0.0.1:%s  CONTROLLER 127.0.0.1:%s  metrics http://127.0.0.1:%s  pid %s\n' \
      "$i" "$(plain_port "$i")" "$(ctrl_port "$i")" "$(metric_port "$i")" "$(live_pid "$i")"
  done
  local bs
  bs=$(bootstrap_list "$n")
  echo
  echo "bootstrap: $bs"
  echo "  ./bin/samsa -b $bs cluster info"
  echo "  ./bin/samsa -b 127.0.0.1:$(plain_port 1) cluster quorum"
  echo "logs:  $CLUSTER_DIR/node-<id>/broker.log"
  echo "stop:  scripts/run-cluster.sh stop        status: scripts/run-cluster.sh status"
}

# SIGTERM the given node ids by pid, then wait (bounded) for each to exit;
# a node still running after STOP_TIMEOUT gets SIGKILL (by pid) and a note.
stop_nodes() {
  local id pid rc=0 deadline
  local -a pids=() ids=()
  for id in "$@"; do
    pid=$(live_pid "$id")
    if [ -n "$pid" ]; then
      kill -TERM "$pid" 2>/dev/null || true
      pids+=("$pid")
      ids+=("$id")
    fi
  done
  deadline=$((SECONDS + STOP_TIMEOUT))
  local k
  for k in "${!pids[@]}"; do
    pid=${pids[$k]}
    id=${ids[$k]}
    while kill -0 "$pid" 2>/dev/null && [ $SECONDS -lt $deadline ]; do
      sleep 0.1
    done
    if kill -0 "$pid" 2>/dev/null; then
      echo "node $id (pid $pid) did not exit ${STOP_TIMEOUT}s after SIGTERM; sending SIGKILL" >&2
      kill -KILL "$pid" 2>/dev/null || true
      rc=1
    else
      echo "node $id stopped (pid $pid)"
    fi
  done
  for id in "$@"; do
    rm -f "$(node_dir "$id")/pid"
  done
  return $rc
}

cmd_status() {
  local ids id pid alive=0 total=0
  ids=$(existing_ids)
  if [ -z "$ids" ]; then
    echo "no cluster under $CLUSTER_DIR (start one with scripts/run-cluster.sh)"
    return 1
  fi
  for id in $ids; do
    total=$((total + 1))
    pid=$(live_pid "$id")
    if [ -n "$pid" ]; then
      alive=$((alive + 1))
      printf 'node %-2s alive    pid %-8s PLAINTEXT 127.0.0.1:%s  CONTROLLER 127.0.0.1:%s\n' \
        "$id" "$pid" "$(plain_port "$id")" "$(ctrl_port "$id")"
    else
      printf 'node %-2s stopped\n' "$id"
    fi
  done
  echo "$alive of $total nodes alive"
  [ "$alive" -eq "$total" ]
}

cmd_stop() {
  local ids
  ids=$(existing_ids)
  if [ -z "$ids" ]; then
    echo "no cluster under $CLUSTER_DIR"
    return 0
  fi
  local any=0 id
  for id in $ids; do
    if [ -n "$(live_pid "$id")" ]; then
      any=1
    else
      rm -f "$(node_dir "$id")/pid"  # stale: its process is gone
    fi
  done
  if [ $any = 0 ]; then
    echo "no node is running"
    return 0
  fi
  # shellcheck disable=SC2086 # ids are plain numbers
  stop_nodes $ids
}

cmd_start() {
  local id running=()
  for id in $(existing_ids); do
    [ -n "$(live_pid "$id")" ] && running+=("$id")
  done
  if [ ${#running[@]} -gt 0 ]; then
    echo "cluster already running (nodes ${running[*]} alive); scripts/run-cluster.sh stop first"
    echo
    print_running "$(existing_ids | tail -n 1)"
    return 0
  fi
  for f in "$broker_bin" "$samsa_bin"; do
    if [ ! -x "$f" ]; then
      echo "run-cluster: $f is missing (run make build)" >&2
      return 1
    fi
  done
  mkdir -p "$CLUSTER_DIR"
  # The node count is part of the data's identity (the voters): refuse to
  # start a different N on data made for another one.
  if [ -f "$CLUSTER_DIR/nodes" ] && [ "$(cat "$CLUSTER_DIR/nodes")" != "$N" ]; then
    echo "run-cluster: $CLUSTER_DIR holds a $(cat "$CLUSTER_DIR/nodes")-node cluster;" \
      "use N=$(cat "$CLUSTER_DIR/nodes"), or remove $CLUSTER_DIR for a new one" >&2
    return 1
  fi
  if [ ! -s "$CLUSTER_DIR/cluster.id" ]; then
    "$samsa_bin" storage random-uuid >"$CLUSTER_DIR/cluster.id.tmp"
    mv "$CLUSTER_DIR/cluster.id.tmp" "$CLUSTER_DIR/cluster.id"
  fi
  echo "$N" >"$CLUSTER_DIR/nodes"
  local cid
  cid=$(cat "$CLUSTER_DIR/cluster.id")
  for ((id = 1; id <= N; id++)); do
    write_config "$id"
    if ! "$samsa_bin" storage format -c "$(node_dir "$id")/server.properties" \
        --cluster-id "$cid" --ignore-formatted >"$(node_dir "$id")/format.out" 2>&1; then
      echo "run-cluster: samsa storage format failed for node $id:" >&2
      cat "$(node_dir "$id")/format.out" >&2
      return 1
    fi
  done
  # Launch every node before waiting for any: none serves before a quorum.
  local -a offsets=()
  for ((id = 1; id <= N; id++)); do
    local dir
    dir=$(node_dir "$id")
    touch "$dir/broker.log"
    offsets[id]=$(stat -c %s "$dir/broker.log")
    echo "=== run-cluster start $(date -u +%FT%TZ)" >>"$dir/broker.log"
    nohup "$broker_bin" "$dir/server.properties" >>"$dir/broker.log" 2>&1 </dev/null &
    echo $! >"$dir/pid"
  done
  local deadline=$((SECONDS + START_TIMEOUT)) failed=""
  for ((id = 1; id <= N; id++)); do
    local dir pid
    dir=$(node_dir "$id")
    pid=$(cat "$dir/pid")
    while :; do
      if ! kill -0 "$pid" 2>/dev/null; then
        failed="node $id exited during startup"
        break
      fi
      if tail -c +"$((offsets[id] + 1))" "$dir/broker.log" | grep -q "serving" &&
          port_accepts "$(plain_port "$id")"; then
        break
      fi
      if [ $SECONDS -ge $deadline ]; then
        failed="node $id not serving on 127.0.0.1:$(plain_port "$id") after ${START_TIMEOUT}s"
        break
      fi
      sleep 0.1
    done
    if [ -n "$failed" ]; then
      echo "run-cluster: $failed; its log ($dir/broker.log) ends:" >&2
      tail -n 20 "$dir/broker.log" >&2
      echo "run-cluster: stopping the nodes started" >&2
      local -a all=()
      local i
      for ((i = 1; i <= N; i++)); do all+=("$i"); done
      stop_nodes "${all[@]}" >&2 || true
      return 1
    fi
  done
  print_running "$N"
}

case "${1:-start}" in
  start) cmd_start ;;
  stop) cmd_stop ;;
  status) cmd_status ;;
  -h|--help|help) usage ;;
  *) echo "run-cluster: unknown command '$1' (start, stop or status)" >&2; exit 2 ;;
esac
