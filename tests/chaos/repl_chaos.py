#!/usr/bin/python3
"""Chaos test of REPLICATED partitions (`make chaos`; one pass in tests/integration/test_repl_chaos.py).

    /usr/bin/python3 tests/chaos/repl_chaos.py [--seconds N] [--seed S]
                                               [--layout combined|split] [--keep] [--strict-dups]
                                               [--faults a,b,...] [--no-idempotence]

Starts a cluster with the integration harness (tests/integration/cluster.py):
layout "combined" = 3 combined nodes (broker,controller), layout "split" = 1
controller-only node + 3 broker-only nodes. Every node runs with
min.insync.replicas=2, replica.lag.time.max.ms=3000, broker.session.timeout.ms=3000,
offsets.topic.replication.factor=3 (offsets.topic.num.partitions=6, to stay light).
One topic, 6 partitions, replication factor 3.

Load, for the whole run:
  producer   confluent_kafka Producer, acks=all, enable.idempotence=true: about
             150 values a second, round robin over the partitions, each value
             "p<partition>-<seq>" with seq counting up per partition; every
             delivery report without error is remembered as (partition, offset, value)
  group      two consumers of one group (enable.auto.commit=false) that commit
             synchronously after each batch they processed; every (partition,
             offset, value) they see is remembered
  monitor    every 0.5 s, raw FindCoordinator to every live broker and raw
             OffsetFetch from every node named coordinator (a cut-off old
             coordinator and the new one may both answer)

Faults, in this order (one pass; with --seconds N the list is run again, the
victims drawn anew from the seed, until N seconds have gone, at least one pass):
  kill9-leader      kill -9 the leader of a random partition, restart it 1-4 s later
  sigstop-leader    SIGSTOP the leader of a random partition until its leaderships
                    moved (it is fenced after broker.session.timeout.ms) and at
                    least that timeout (3 s) plus 1-3 s has gone, then SIGCONT
  netpart-leader    cut the leader of a partition off from every other node (clients
                    still reach it) as long as sigstop-leader, then heal; the victim
                    is the group's coordinator when it leads a partition of the
                    topic: clients keep asking it to take commits it cannot replicate.
                    Needs root, iptables and a writable cgroup2 mount: each node
                    runs in its own cgroup, and one iptables chain of this run's
                    own, jumped to only for this cluster's ports, drops the
                    victim's packets to the other nodes' ports and theirs to its
                    ports, and the answers on node-to-node connections open at
                    the cut (found with ss). Otherwise skipped, the reason printed.
  kill9-controller  kill -9 the active metadata controller (DescribeQuorum through
                    `samsa cluster quorum`), restart it 1-4 s later
  rolling-restart   SIGTERM (exit status 0) and start every node in turn (seeded
                    order), waiting for every ISR to be whole again before the next
Each fault is followed by a heal (SIGCONT, restart, rules removed) and a
settle: one agreed quorum leader, every broker in every broker's Metadata and
every partition of the topic and of __consumer_offsets led with an ISR of 3 in
every broker's Metadata (bounded; a partition that does not get there is a
"stuck ISR" failure and ends the fault loop). Then, and again at the end:

  loss       every acknowledged (partition, offset, value) is at that offset when
             read back from offset 0 to the high watermark by a fresh consumer
  dups       each value is stored once. The broker does not deduplicate
             idempotent retries yet (issue #14): duplicates are reported as a
             finding, and fail the run only with --strict-dups
  order      per partition, the values' seqs increase with the offset (the first
             copy of each value); a value in the wrong partition fails too
  progress   every partition gets new acknowledgements and new group commits
             within 20 s of the settle. librdkafka 1.7 can stay on a broker
             that is no longer the leader after two Metadata answers that name
             different leaders (librdkafka issues #3399, #4976): a client it
             logs that for is replaced once (a finding, not a failure)
  clients    no client logs a response it could not parse, nor an offset reset
             after OFFSET_OUT_OF_RANGE for an offset it had reached
  group      a commit the consumers got acknowledged before an OffsetFetch was
             sent shows in that OffsetFetch's answer (durable and visible at
             the coordinator), one node's answers never move backwards, and the
             committed offsets are never above the high watermark
  procs/logs no node exited by itself or failed to restart, every SIGTERM exit
             status is 0, no ERROR / assertion / sanitizer line in a node's log
             (unless listed in EXPLAINED_ERRORS below)
At the end only (load stopped): the group drains to the high watermark of every
partition (committed offset = high watermark), it saw every acknowledged value at
its offset, and the segment files of each partition are byte-identical on its
three replicas (bounded wait for the followers' last fetch).

--faults runs a subset of the list, in the order given. --no-idempotence is a
diagnostic: the producer runs without enable.idempotence (still acks=all), and
order breaks become report-only, since its retries may reorder.

Prints one summary line per fault and a final "repl chaos seed S: passed|FAILED"
line. Exit 0 when all hold, 1 on a failure, 2 on a harness error; the cluster
directory is kept on failure or with --keep. Binaries: $SAMSA_BROKER /
$SAMSA_CLI (default bin/samsa-broker, bin/samsa) are copied to a temporary
directory first, so a rebuild during the run does not change what runs.
"""

import argparse
import atexit
import collections
import logging
import os
import random
import re
import shutil
import signal
import struct
import subprocess
import sys
import tempfile
import threading
import time
import traceback

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
IT_DIR = os.path.join(REPO, "tests", "integration")

# ERROR lines a fault explains: (regex, why). Anything else is a failure.
# Empty on purpose: add an entry only with the reason a fault makes it right.
EXPLAINED_ERRORS = []

FAULTS = ["kill9-leader", "sigstop-leader", "netpart-leader", "kill9-controller",
          "rolling-restart"]
TOPIC = "repl-chaos"
PARTITIONS = 6
RF = 3
OFFSETS_TOPIC = "__consumer_offsets"
SESSION_TIMEOUT_S = 3.0
OVERRIDES = {
    "min.insync.replicas": "2",
    "replica.lag.time.max.ms": "3000",
    "broker.session.timeout.ms": "3000",
    "offsets.topic.replication.factor": "3",
    "offsets.topic.num.partitions": "6",
}
RATE_PER_S = 150
START_TIMEOUT_S = 60.0
SETTLE_TIMEOUT_S = 90.0
PROGRESS_TIMEOUT_S = 20.0
MOVE_TIMEOUT_S = 20.0
DRAIN_TIMEOUT_S = 90.0

T0 = time.monotonic()


def say(msg):
    print(f"[{time.monotonic() - T0:7.1f}s] {msg}", flush=True)


def wait_for(pred, timeout_s, interval_s=0.3):
    """Poll pred() -> (ok, detail) until ok or timeout; returns (ok, detail, seconds)."""
    t0 = time.monotonic()
    deadline = t0 + timeout_s
    while True:
        try:
            ok, detail = pred()
        except Exception as e:  # noqa: BLE001 - kept as the detail
            ok, detail = False, f"{type(e).__name__}: {e}"
        if ok or time.monotonic() >= deadline:
            return ok, detail, time.monotonic() - t0
        time.sleep(interval_s)


def parse_value(v):
    """b"p3-17" -> (3, 17); None when it is not one of ours."""
    m = re.fullmatch(rb"p(\d+)-(\d+)", v or b"")
    return (int(m.group(1)), int(m.group(2))) if m else None


# --------------------------------------------------------------------------- setup

def stage_binaries(tmp):
    """Copy the broker and CLI into tmp/bin and point the harness at the copies
    (conftest reads SAMSA_BROKER / SAMSA_CLI when it is imported)."""
    bindir = os.path.join(tmp, "bin")
    os.makedirs(bindir)
    src = {"SAMSA_BROKER": os.environ.get("SAMSA_BROKER", os.path.join(REPO, "bin", "samsa-broker")),
           "SAMSA_CLI": os.environ.get("SAMSA_CLI", os.path.join(REPO, "bin", "samsa"))}
    for var, path in src.items():
        if not os.access(path, os.X_OK):
            sys.exit(f"repl chaos: {path} is missing (make build)")
        dst = os.path.join(bindir, os.path.basename(path))
        shutil.copy2(path, dst)
        os.environ[var] = dst
    return src, bindir


class NetPartition:
    """Cut one node off from the others on loopback, clients untouched.

    Only as root, with iptables (the cgroup match, v2 path) and a writable
    cgroup2 mount. Every node of this run starts inside its own cgroup
    <cgroup2>/samsa-repl-chaos-<pid>/node-<id> (a wrapper script joins it and
    execs the broker, so every socket the broker opens belongs to it). A
    partition is one chain, SAMSA-RC-<pid>, jumped to from OUTPUT only for
    TCP packets from or to this cluster's PLAINTEXT/CONTROLLER ports; its rules
    drop the victim's packets to the other nodes' ports and the other nodes'
    packets to the victim's ports. Each rule also names a cgroup of this run,
    so a chain left behind by a killed run matches nothing; the next run
    deletes such chains (their pid no longer alive) before it starts."""

    CHAIN_PREFIX = "SAMSA-RC-"

    def __init__(self):
        self.reason = None          # why partitions are not possible (None: they are)
        self.cg_mount = None
        self.cg_rel = f"samsa-repl-chaos-{os.getpid()}"
        self.chain = f"{self.CHAIN_PREFIX}{os.getpid()}"
        self.jump = None            # the OUTPUT rule's arguments while a partition is on
        self.ids = []

    def _ipt(self, *args, check=True):
        r = subprocess.run(["iptables", "-w", "5", *args], capture_output=True, text=True,
                           timeout=30)
        if check and r.returncode != 0:
            raise RuntimeError(f"iptables {' '.join(args)}: exit {r.returncode}: {r.stderr.strip()}")
        return r

    @property
    def cg_dir(self):
        return os.path.join(self.cg_mount, self.cg_rel)

    def probe(self, node_ids):
        """Decide whether partitions are possible; create the cgroups if so."""
        uid = os.geteuid()
        if uid != 0:
            has_unshare = subprocess.run(["unshare", "-rn", "true"], capture_output=True).returncode == 0
            netns = subprocess.run(["ip", "netns", "list"], capture_output=True).returncode == 0
            self.reason = (f"not root (id -u = {uid}); `unshare -rn` "
                           f"{'works' if has_unshare else 'does not work'} and `ip netns` "
                           f"{'works' if netns else 'does not work'}, but a private network "
                           "namespace would need every node started inside its own namespace "
                           "with its own address, and a process that is only SIGSTOPped is "
                           "the sigstop fault already: no partition without root")
            return False
        if not shutil.which("iptables"):
            self.reason = ("root, but iptables is not installed (apt-get install iptables;"
                           " scripts/deps.sh installs it)")
            return False
        with open("/proc/mounts") as f:
            mounts = [ln.split() for ln in f]
        cg2 = [m[1] for m in mounts if len(m) > 2 and m[2] == "cgroup2"]
        if not cg2:
            self.reason = "root, but no cgroup2 file system is mounted (iptables -m cgroup --path)"
            return False
        self.cg_mount = cg2[0]
        self.cleanup_stale()
        try:
            os.makedirs(self.cg_dir)
            for i in node_ids:
                os.makedirs(os.path.join(self.cg_dir, f"node-{i}"))
            self.ids = list(node_ids)
            # The match must load and resolve a path of ours.
            self._ipt("-N", self.chain)
            try:
                self._ipt("-A", self.chain, "-p", "tcp", "-m", "cgroup", "--path",
                          f"{self.cg_rel}/node-{node_ids[0]}", "-j", "RETURN")
            finally:
                self._ipt("-F", self.chain, check=False)
                self._ipt("-X", self.chain, check=False)
        except (OSError, RuntimeError, subprocess.TimeoutExpired) as e:
            self.reason = f"root, but the cgroup match does not work here: {e}"
            self.remove_cgroups()
            return False
        return True

    def cleanup_stale(self):
        """Delete chains (and their jump rules) of earlier runs whose process is gone."""
        r = self._ipt("-S", check=False)
        if r.returncode != 0:
            return
        stale = set()
        for ln in r.stdout.splitlines():
            m = re.match(rf"-N ({self.CHAIN_PREFIX}(\d+))$", ln)
            if m and not os.path.exists(f"/proc/{m.group(2)}"):
                stale.add(m.group(1))
        for ln in r.stdout.splitlines():
            m = re.match(r"-A OUTPUT (.*-j (\S+))$", ln)
            if m and m.group(2) in stale:
                self._ipt("-D", "OUTPUT", *m.group(1).split(), check=False)
        for ch in stale:
            self._ipt("-F", ch, check=False)
            self._ipt("-X", ch, check=False)
            say(f"netpart: removed the chain {ch} a killed run left behind")
        # and the cgroups of such runs, once their nodes are gone
        for d in os.listdir(self.cg_mount):
            m = re.fullmatch(r"samsa-repl-chaos-(\d+)", d)
            if not m or os.path.exists(f"/proc/{m.group(1)}"):
                continue
            top = os.path.join(self.cg_mount, d)
            for sub in os.listdir(top):
                if os.path.isdir(os.path.join(top, sub)):
                    try:
                        os.rmdir(os.path.join(top, sub))
                    except OSError:
                        pass
            try:
                os.rmdir(top)
            except OSError:
                pass

    def wrapper(self, bindir, real_broker):
        """A broker launcher that joins <cg_dir>/<basename of its cwd> (the
        harness starts each node in its node-<id> directory) and execs the broker."""
        path = os.path.join(bindir, "samsa-broker-in-cgroup")
        with open(path, "w") as f:
            f.write("#!/bin/sh\n"
                    "# repl_chaos.py: run this node in its own cgroup (network partitions)\n"
                    f'cg="{self.cg_dir}/$(basename "$PWD")"\n'
                    'echo $$ > "$cg/cgroup.procs" || { echo "cannot join $cg" >&2; exit 97; }\n'
                    f'exec "{real_broker}" "$@"\n')
        os.chmod(path, 0o755)
        return path

    def _ports(self, cluster, i):
        b = cluster.node(i)
        return [str(p) for p in (b.port, b.controller_port) if p]

    @staticmethod
    def _established(pid):
        """[(local port, remote port)] of the established TCP connections of pid."""
        r = subprocess.run(["ss", "-tnpH", "state", "established"], capture_output=True,
                           text=True, timeout=30)
        out = []
        for ln in r.stdout.splitlines():
            if f"pid={pid}," not in ln:
                continue
            f = ln.split()
            if len(f) >= 4:
                out.append((f[2].rsplit(":", 1)[1], f[3].rsplit(":", 1)[1]))
        return out

    def _drop(self, cgroup_node, sports, dports):
        """DROP what node cgroup_node's sockets send from one of sports to one
        of dports (multiport takes 15 ports a rule)."""
        sports, dports = sorted(set(sports)), sorted(set(dports))
        for i in range(0, len(dports), 15):
            args = ["-A", self.chain, "-p", "tcp", "-m", "cgroup", "--path",
                    f"{self.cg_rel}/node-{cgroup_node}"]
            if sports:
                args += ["-m", "multiport", "--sports", ",".join(sports)]
            args += ["-m", "multiport", "--dports", ",".join(dports[i:i + 15]), "-j", "DROP"]
            self._ipt(*args)

    def cut(self, cluster, victim):
        """Partition victim from every other node (clients still reach it).

        New connections: the victim's packets to the other nodes' ports and
        theirs to its ports are dropped (a SYN never arrives). Connections
        already open (found with ss by pid) would still carry the answers to
        requests sent before the cut (a long-poll Fetch, say): the answers on
        them are dropped too, by the ephemeral port at the far end."""
        others = [i for i in cluster.ids if i != victim]
        ours = [p for i in cluster.ids for p in self._ports(cluster, i)]
        vports = self._ports(cluster, victim)
        oports = [p for i in others for p in self._ports(cluster, i)]
        self._ipt("-N", self.chain)
        self.jump = ["-p", "tcp", "-m", "multiport", "--ports", ",".join(ours), "-j", self.chain]
        self._ipt("-I", "OUTPUT", "1", *self.jump)
        self._drop(victim, [], oports)
        for o in others:
            self._drop(o, [], vports)
        # answers on connections opened before the cut
        v_out = [lp for lp, rp in self._established(cluster.node(victim).proc.pid)
                 if rp in oports and lp not in vports]
        if v_out:
            for o in others:
                self._drop(o, self._ports(cluster, o), v_out)
        for o in others:
            b = cluster.node(o)
            if b.proc is None:
                continue
            o_out = [lp for lp, rp in self._established(b.proc.pid)
                     if rp in vports and lp not in self._ports(cluster, o)]
            if o_out:
                self._drop(victim, vports, o_out)

    def heal(self):
        if self.jump is not None:
            self._ipt("-D", "OUTPUT", *self.jump, check=False)
            self.jump = None
        self._ipt("-F", self.chain, check=False)
        self._ipt("-X", self.chain, check=False)

    def remove_cgroups(self):
        if not self.cg_mount or not os.path.isdir(self.cg_dir):
            return
        for i in self.ids:
            try:
                os.rmdir(os.path.join(self.cg_dir, f"node-{i}"))
            except OSError:
                pass
        try:
            os.rmdir(self.cg_dir)
        except OSError:
            pass


# --------------------------------------------------------------------------- load

class Load:
    """The producer, the group's two consumers and the committed-offset monitor."""

    def __init__(self, cluster, group, log_path, idempotence=True):
        self.c = cluster
        self.idempotence = idempotence
        self.log_path = log_path
        self.group = group
        self.lock = threading.Lock()
        self.stop_prod = threading.Event()
        self.stop_group = threading.Event()
        self.errors = []                    # exceptions in the threads (harness errors)
        # producer
        self.acked = []                     # (partition, offset, value)
        # successes the client reported without an offset (librdkafka does so
        # for messages it takes as persisted without the broker's offset)
        self.acked_no_offset = []           # (partition, value, t)
        self.acked_by_part = collections.Counter()   # partition -> successes
        self.produced = 0
        self.failed = collections.Counter()  # delivery error name -> count
        self.fatal = []                     # fatal producer errors
        self.client_errors = collections.Counter()
        self.undelivered = 0
        # group
        self.seen = {}                      # (partition, offset) -> value the group read
        self.seen_conflicts = []            # the group read two values at one offset
        self.consumed = 0
        self.commits = 0
        self.commit_errors = collections.Counter()
        self.committed = {}                 # partition -> last committed offset the monitor read
        self.regressions = []               # (t, partition, before, after, node)
        # partition -> [(t acknowledged, offset)], offsets increasing: the
        # commits the consumers got a success for (OffsetCommit answered 0)
        self.commit_acks = collections.defaultdict(list)
        self.lost_commits = []              # (t, partition, acknowledged, read, node)
        self.redelivered = 0                # records the group read more than once
        self.monitor_errors = collections.Counter()
        self.monitor_reads = 0
        self.split_coordinator_reads = 0    # rounds where brokers named different coordinators
        # a client found stuck on a non-leader (librdkafka bug) is replaced:
        # set the event, its thread makes a new one
        self.replace = {n: threading.Event() for n in ("producer", "consumer-1", "consumer-2")}
        self.replacements = collections.Counter()
        log = logging.getLogger("librdkafka")
        log.setLevel(logging.DEBUG)
        h = logging.FileHandler(log_path)
        h.setFormatter(logging.Formatter("%(asctime)s %(threadName)s %(levelname)s %(message)s"))
        self.logf = ClientLogFilter()
        h.addFilter(self.logf)
        log.addHandler(h)
        log.propagate = False
        self.klog = log
        self.prod_thread = threading.Thread(target=self._guard, args=(self._producer, "producer"),
                                            name="producer", daemon=True)
        self.group_threads = [
            threading.Thread(target=self._guard, args=(self._consumer, f"consumer-{i}", i),
                             name=f"consumer-{i}", daemon=True) for i in (1, 2)]
        self.group_threads.append(threading.Thread(target=self._guard,
                                                   args=(self._monitor, "monitor"),
                                                   name="monitor", daemon=True))

    def start(self):
        self.prod_thread.start()
        for t in self.group_threads:
            t.start()

    def stop_producer(self):
        self.stop_prod.set()
        self.prod_thread.join(timeout=90)
        if self.prod_thread.is_alive():
            self.errors.append("producer thread did not stop within 90 s")

    def stop_consumers(self):
        self.stop_group.set()
        for t in self.group_threads:
            t.join(timeout=60)
            if t.is_alive():
                self.errors.append(f"thread {t.name} did not stop within 60 s")

    def _guard(self, fn, name, *args):
        try:
            fn(*args)
        except Exception:  # noqa: BLE001 - reported as a harness error
            self.errors.append(f"thread {name}: {traceback.format_exc()}")

    # -- snapshots for the checks (copies, under the lock)

    def acked_snapshot(self):
        with self.lock:
            return list(self.acked)

    def acked_by_partition(self):
        with self.lock:
            return dict(self.acked_by_part)

    def acked_no_offset_snapshot(self):
        with self.lock:
            return list(self.acked_no_offset)

    def n_acked(self):
        with self.lock:
            return len(self.acked)

    def committed_snapshot(self):
        with self.lock:
            return dict(self.committed)

    def committed_total(self):
        with self.lock:
            return sum(self.committed.values())

    # -- threads

    def _error_cb(self, who):
        def cb(err):
            with self.lock:
                self.client_errors[f"{who}: {err.name()}"] += 1
                if err.fatal():
                    self.fatal.append(f"{who}: {err}")
        return cb

    def _producer(self):
        from confluent_kafka import Producer
        # debug "topic": partition migrations, to recognise a client stuck on
        # a non-leader (Run.stuck_clients)
        conf = {"bootstrap.servers": self.c.bootstrap, "acks": "all",
                "enable.idempotence": self.idempotence, "linger.ms": 5,
                "message.timeout.ms": 120000, "retry.backoff.ms": 100,
                "client.id": "repl-chaos-producer", "logger": self.klog, "debug": "topic",
                "error_cb": self._error_cb("producer")}
        p = Producer(conf)

        def delivered(err, msg):
            with self.lock:
                if err is None:
                    self.acked_by_part[msg.partition()] += 1
                if err is not None:
                    self.failed[err.name()] += 1
                elif msg.offset() is None or msg.offset() < 0:
                    self.acked_no_offset.append((msg.partition(), msg.value(),
                                                 time.monotonic() - T0))
                else:
                    self.acked.append((msg.partition(), msg.offset(), msg.value()))
        seq = [0] * PARTITIONS
        n = 0
        per_tick = max(1, RATE_PER_S // 10)
        next_tick = time.monotonic()
        while not self.stop_prod.is_set():
            if self.replace["producer"].is_set():
                # Its queued and in-flight messages fail (_PURGE_*): never
                # acknowledged, so never expected; seqs go on from where they were.
                self.replace["producer"].clear()
                p.purge()
                p.flush(10)
                p = Producer(conf)
                with self.lock:
                    self.replacements["producer"] += 1
            # poll() returns early when it served a delivery report: pace by the clock
            now = time.monotonic()
            if now < next_tick:
                p.poll(next_tick - now)
                continue
            next_tick = max(next_tick + 0.1, now - 1.0)
            if len(p) < 20000:
                for _ in range(per_tick):
                    part = n % PARTITIONS
                    n += 1
                    try:
                        p.produce(TOPIC, value=f"p{part}-{seq[part]}".encode(), partition=part,
                                  on_delivery=delivered)
                    except BufferError:
                        n -= 1
                        break
                    seq[part] += 1
                    self.produced += 1
            p.poll(0)
        self.undelivered = p.flush(60)

    def _consumer(self, idx):
        from confluent_kafka import Consumer, KafkaError, KafkaException
        name = f"consumer-{idx}"
        conf = {"bootstrap.servers": self.c.bootstrap, "group.id": self.group,
                "client.id": f"repl-chaos-{name}",
                "enable.auto.commit": False, "auto.offset.reset": "earliest",
                "session.timeout.ms": 10000, "heartbeat.interval.ms": 1000,
                "logger": self.klog, "debug": "topic", "error_cb": self._error_cb(name)}
        c = Consumer(conf)
        c.subscribe([TOPIC])
        try:
            while not self.stop_group.is_set():
                if self.replace[name].is_set():
                    self.replace[name].clear()
                    c.close()
                    c = Consumer(conf)
                    c.subscribe([TOPIC])
                    with self.lock:
                        self.replacements[name] += 1
                msgs = c.consume(500, 0.5)
                done = 0
                for m in msgs:
                    if m.error():
                        if m.error().code() != KafkaError._PARTITION_EOF:
                            with self.lock:
                                self.client_errors[f"consumer-{idx} fetch: {m.error().name()}"] += 1
                        continue
                    key = (m.partition(), m.offset())
                    with self.lock:
                        old = self.seen.get(key)
                        if old is not None:
                            self.redelivered += 1
                            if old != m.value():
                                self.seen_conflicts.append((key, old, m.value()))
                        self.seen[key] = m.value()
                        self.consumed += 1
                    done += 1
                if done:
                    try:
                        res = c.commit(asynchronous=False)
                        t = time.monotonic()
                        with self.lock:
                            self.commits += 1
                            for tp in res or []:
                                if tp.error is not None or tp.offset < 0:
                                    continue
                                acks = self.commit_acks[tp.partition]
                                if not acks or tp.offset > acks[-1][1]:
                                    acks.append((t, tp.offset))
                    except KafkaException as e:
                        with self.lock:
                            self.commit_errors[e.args[0].name()] += 1
        finally:
            c.close()

    def _monitor(self):
        """Every 0.5 s: FindCoordinator to every live broker, OffsetFetch from
        every node named coordinator (a partitioned old coordinator and the
        new one may both answer). Checks, per partition:
          - a commit acknowledged before the OffsetFetch was sent shows in the
            answer of the coordinator most brokers name (a later commit may
            have moved the offset further): an acknowledged commit must be
            durable and visible at the coordinator. A node cut off from the
            others may still call itself coordinator and answer from what it
            has, as Kafka's would: its answers are not held to this;
          - one node's answers never go backwards."""
        per_node = collections.defaultdict(dict)     # node -> {partition: last offset}
        while not self.stop_group.is_set():
            t_send = time.monotonic()
            votes = collections.Counter()
            ports = {}
            for b in list(self.c.nodes.values()):
                if not b.is_broker or b.proc is None or b.paused:
                    continue
                try:
                    err, node, port = find_coordinator_raw(b.port, self.group)
                except (OSError, struct.error, AssertionError, ConnectionError):
                    continue
                if err == 0 and node >= 0:
                    votes[node] += 1
                    ports[node] = port
                else:
                    with self.lock:
                        self.monitor_errors[f"FindCoordinator error {err}"] += 1
            if len(votes) > 1:
                with self.lock:
                    self.split_coordinator_reads += 1
            ranked = votes.most_common()
            majority = (ranked[0][0] if ranked and (len(ranked) == 1 or ranked[0][1] > ranked[1][1])
                        else None)
            for node, port in ports.items():
                try:
                    got = offset_fetch_raw(port, self.group, TOPIC, range(PARTITIONS))
                except (OSError, struct.error, AssertionError, ConnectionError):
                    with self.lock:
                        self.monitor_errors["OffsetFetch: no answer"] += 1
                    continue
                now = time.monotonic() - T0
                with self.lock:
                    self.monitor_reads += 1
                    for part, (off, err) in sorted(got.items()):
                        if err != 0:
                            self.monitor_errors[f"OffsetFetch error {err}"] += 1
                            continue
                        before = per_node[node].get(part)
                        if before is not None and off < before:
                            self.regressions.append((now, part, before, off, node))
                        per_node[node][part] = off
                        if node != majority:
                            continue
                        floor = [o for t, o in self.commit_acks[part] if t < t_send]
                        if floor and off < floor[-1]:
                            self.lost_commits.append((now, part, floor[-1], off, node))
                        if off >= 0:
                            self.committed[part] = off
            self.stop_group.wait(0.5)


def find_coordinator_raw(port, group, timeout_s=2.0):
    """FindCoordinator v1 (group) to exactly this broker -> (error, node, port)."""
    from conftest import Reader, WireConn, enc_str
    c = WireConn(port, timeout_s=timeout_s, client_id="repl-chaos-monitor")
    try:
        r = Reader(c.request(10, 1, enc_str(group) + struct.pack(">b", 0)))
    finally:
        c.close()
    r.i32()  # throttle
    err = r.i16()
    r.string()  # message
    node = r.i32()
    r.string()  # host
    return err, node, r.i32()


def offset_fetch_raw(port, group, topic, partitions, timeout_s=2.0):
    """OffsetFetch v1 to exactly this broker -> {partition: (offset, error)}."""
    from conftest import Reader, WireConn, enc_array, enc_str
    body = enc_str(group) + enc_array([enc_str(topic) + enc_array(
        [struct.pack(">i", p) for p in partitions])])
    c = WireConn(port, timeout_s=timeout_s, client_id="repl-chaos-monitor")
    try:
        r = Reader(c.request(9, 1, body))
    finally:
        c.close()
    out = {}
    for _ in range(r.i32()):
        r.string()
        for _ in range(r.i32()):
            part, off = r.i32(), r.i64()
            r.string()  # metadata
            out[part] = (off, r.i16())
    return out


class ClientLogFilter(logging.Filter):
    """On the clients' log handler: counts the librdkafka lines that show a
    broker misbehaving to a client (all of them, written or not), and writes
    at most CAP lines of one kind (digits aside) per fault, so a client in a
    tight retry loop cannot fill the disk."""

    CAP = 200
    # what a client sees that a Kafka-compatible broker must not cause
    ANOMALIES = (
        ("MALFORMED", re.compile(r"Protocol parse failure|invalid MessageSetSize")),
        ("OFFSET_RESET", re.compile(r"offset reset \(at offset .*Offset out of range")),
    )

    def __init__(self):
        super().__init__()
        self.lock = threading.Lock()
        self.counts = collections.Counter()
        self.dropped = 0
        self.anomalies = collections.Counter()
        self.examples = collections.defaultdict(list)

    def filter(self, record):
        msg = record.getMessage()
        with self.lock:
            for kind, rx in self.ANOMALIES:
                if rx.search(msg):
                    self.anomalies[kind] += 1
                    if len(self.examples[kind]) < 3:
                        self.examples[kind].append(f"{record.threadName}: {msg[:300]}")
            key = (record.threadName, re.sub(r"\d+", "N", msg)[:160])
            self.counts[key] += 1
            if self.counts[key] > self.CAP:
                self.dropped += 1
                return False
        return True

    def take(self):
        """{kind: (count, examples)} since the last take; the per-kind caps start over."""
        with self.lock:
            out = {k: (n, list(self.examples[k])) for k, n in self.anomalies.items()}
            self.anomalies.clear()
            self.examples.clear()
            self.counts.clear()
        return out


class NoLoad(Exception):
    """The load never got going: reported as a failure, no faults run."""


def client_log_digest(path, n=4):
    """The most frequent WARNING/ERROR lines of the clients' librdkafka log (digits as N)."""
    kinds = collections.Counter()
    try:
        with open(path, errors="replace") as f:
            for ln in f:
                if " WARNING " in ln or " ERROR " in ln:
                    body = re.sub(r"^\S+ \S+ ", "", ln.strip())
                    kinds[re.sub(r"\d+", "N", body)[:200]] += 1
    except OSError:
        return "no client log"
    return "clients' log: " + " | ".join(f"x{v} {k}" for k, v in kinds.most_common(n))


# --------------------------------------------------------------------------- reading back

def read_back(bootstrap, timeout_s=90):
    """Every partition from offset 0 to its high watermark with a fresh consumer:
    ({partition: [(offset, value)]}, {partition: (low, high)}, problems)."""
    from confluent_kafka import Consumer, KafkaError, TopicPartition
    c = Consumer({"bootstrap.servers": bootstrap, "group.id": f"repl-chaos-verify-{os.getpid()}",
                  "enable.auto.commit": False, "enable.auto.offset.store": False,
                  "enable.partition.eof": True, "fetch.wait.max.ms": 100, "log_level": 0})
    problems = []
    out = {p: [] for p in range(PARTITIONS)}
    hw = {}
    try:
        for p in range(PARTITIONS):
            hw[p] = c.get_watermark_offsets(TopicPartition(TOPIC, p), timeout=10)
        c.assign([TopicPartition(TOPIC, p, 0) for p in range(PARTITIONS)])
        remaining = {p for p in range(PARTITIONS) if hw[p][1] > 0}
        deadline = time.monotonic() + timeout_s
        while remaining and time.monotonic() < deadline:
            for m in c.consume(1000, 1.0):
                p = m.partition()
                if m.error():
                    if m.error().code() == KafkaError._PARTITION_EOF:
                        remaining.discard(p)
                    else:
                        problems.append(f"read back p{p}: {m.error()}")
                    continue
                if m.offset() < hw[p][1]:
                    out[p].append((m.offset(), m.value()))
                if m.offset() >= hw[p][1] - 1:
                    remaining.discard(p)
        if remaining:
            problems.append(f"partitions not read to their high watermark in {timeout_s}s:"
                            f" {sorted(remaining)}")
    finally:
        c.close()
    return out, hw, problems


def high_watermarks(bootstrap):
    from confluent_kafka import Consumer, TopicPartition
    c = Consumer({"bootstrap.servers": bootstrap, "group.id": f"repl-chaos-hw-{os.getpid()}",
                  "log_level": 0})
    try:
        return {p: c.get_watermark_offsets(TopicPartition(TOPIC, p), timeout=10)[1]
                for p in range(PARTITIONS)}
    finally:
        c.close()


def check_log(acked, stored, hw, acked_no_offset=()):
    """Loss, duplicates and order. acked_no_offset: (partition, value, t)
    reported delivered without an offset: each must be stored somewhere in its
    partition. Returns (failures, dup_findings, stats)."""
    failures, dups = [], []
    by_part = collections.defaultdict(dict)
    for p, off, v in acked:
        by_part[p][off] = v
    for p in range(PARTITIONS):
        have = dict(stored.get(p, []))
        values = set(have.values())
        gone = [v for q, v, _ in acked_no_offset if q == p and v not in values]
        if gone:
            failures.append(f"LOST p{p}: {len(gone)} record(s) reported delivered without an"
                            f" offset are not in the partition: {gone[:5]} (librdkafka acks"
                            f" messages implicitly when the broker accepts a later sequence of"
                            f" the same producer: a broker without sequence checks, issue #14,"
                            f" lets a retried batch be skipped)")
        lost = []
        for off, v in sorted(by_part[p].items()):
            got = have.get(off)
            if got == v:
                continue
            if got is None:
                why = ("beyond the high watermark %d" % hw[p][1] if off >= hw[p][1] else
                       "below the log start %d" % hw[p][0] if off < hw[p][0] else "not returned")
            else:
                why = f"read {got!r}"
            lost.append(f"offset {off} {v!r}: {why}")
        if lost:
            failures.append(f"LOST p{p} (log start {hw[p][0]}, hw {hw[p][1]}): {len(lost)} "
                            f"acknowledged record(s): " + "; ".join(lost[:5])
                            + (" ..." if len(lost) > 5 else ""))
        offs = [o for o, _ in stored.get(p, [])]
        if offs != sorted(set(offs)):
            failures.append(f"ORDER p{p}: offsets read back are not strictly increasing")
        copies = collections.defaultdict(list)
        last_seq, last_off, wrong, disorder = -1, None, [], []
        for off, v in stored.get(p, []):
            pv = parse_value(v)
            if pv is None or pv[0] != p:
                wrong.append(f"offset {off} {v!r}")
                continue
            copies[v].append(off)
            if len(copies[v]) > 1:
                continue  # a second copy: counted below, not an order break
            if pv[1] <= last_seq:
                disorder.append(f"seq {pv[1]} at offset {off} after seq {last_seq} at {last_off}")
            last_seq, last_off = pv[1], off
        if wrong:
            failures.append(f"WRONG p{p}: {len(wrong)} value(s) of another partition or unknown: "
                            + "; ".join(wrong[:5]))
        if disorder:
            failures.append(f"ORDER p{p}: {len(disorder)} value(s) out of seq order: "
                            + "; ".join(disorder[:5]))
        dup = {v: o for v, o in copies.items() if len(o) > 1}
        if dup:
            ex = sorted(dup.items(), key=lambda kv: kv[1][0])[:4]
            dups.append(f"p{p}: {len(dup)} value(s) stored more than once, "
                        f"{sum(len(o) - 1 for o in dup.values())} extra copies; e.g. "
                        + ", ".join(f"{v.decode()} at {o}" for v, o in ex))
    stats = {"stored": sum(len(v) for v in stored.values()), "acked": len(acked)}
    return failures, dups, stats


def segment_digest(cluster, node_id, partition):
    import hashlib
    d = os.path.join(cluster.node(node_id).data_dir, f"{TOPIC}-{partition}")
    h = hashlib.sha256()
    files, size = [], 0
    if not os.path.isdir(d):
        return None, [], 0
    for f in sorted(os.listdir(d)):
        if f.endswith(".log"):
            with open(os.path.join(d, f), "rb") as fh:
                data = fh.read()
            h.update(data)
            size += len(data)
            files.append(f"{f}:{len(data)}")
    return h.hexdigest(), files, size


# --------------------------------------------------------------------------- the run

class Run:
    def __init__(self, cluster, harness, conftest, layout, seed, net, strict_dups):
        self.c = cluster
        self.h = harness
        self.ct = conftest
        self.layout = layout
        self.seed = seed
        self.rng = random.Random(seed)
        self.net = net
        self.strict_dups = strict_dups
        self.load = None
        self.problems = []          # process problems: crashes, failed restarts, bad exits
        self.findings = []          # report-only (duplicates)
        self.rows = []              # per fault summary lines
        self.failed = False
        self.log_pos = {i: 0 for i in cluster.ids}
        self.reported_regressions = 0
        self.reported_conflicts = 0
        self.reported_no_offset = 0
        self.reported = set()       # check_log failures already reported
        self.last_dups = None
        self.reported_lost_commits = 0

    # -- processes (only the main thread signals nodes)

    def check_procs(self, when):
        for i, b in self.c.nodes.items():
            if b.proc is None:
                continue
            rc = b.proc.poll()
            if rc is not None:
                b.proc, b.paused = None, False
                self.problems.append(f"node {i} exited by itself with status {rc} ({when})")
                say(f"!! node {i} exited by itself with status {rc}; log tail:\n{b.log_tail(30)}")

    def start_nodes(self, ids, why):
        for i in ids:
            self.c.node(i).launch()
        for i in ids:
            b = self.c.node(i)
            t0 = time.monotonic()
            try:
                b.wait_ready(START_TIMEOUT_S)
            except self.ct.pytest.fail.Exception as e:
                b.proc, b.paused = None, False
                first = str(e).splitlines()[0]
                self.problems.append(f"node {i}: restart after {why} failed: {first}")
                say(f"!! node {i}: restart after {why} failed: {e}")
                continue
            say(f"   node {i} serving again ({time.monotonic() - t0:.1f}s)")

    def stop_node(self, i):
        t0 = time.monotonic()
        rc = self.c.stop(i)
        if rc != 0:
            self.problems.append(f"node {i}: SIGTERM exit status {rc}")
            say(f"!! node {i}: SIGTERM exit status {rc}; log tail:\n{self.c.node(i).log_tail(30)}")
        else:
            say(f"   node {i} exited 0 after {time.monotonic() - t0:.1f}s")
        return rc

    def heal_all(self):
        """SIGCONT what is paused, remove a partition, start what is down."""
        self.check_procs("before the heal")
        if self.net:
            self.net.heal()
        for i, b in self.c.nodes.items():
            if b.proc is not None and b.paused:
                self.c.sigcont(i)
        dead = [i for i in self.c.ids if self.c.node(i).proc is None]
        if dead:
            say(f"   heal: starting nodes {dead}")
            self.start_nodes(dead, "the heal")

    # -- what the cluster says

    def partitions(self, via, topic):
        t = self.c.metadata(via, [topic], timeout_s=3)["topics"].get(topic)
        if t is None or t["error"] != 0:
            return None
        return t["partitions"]

    def leader_of(self, p):
        for via in self.c.live_brokers():
            try:
                parts = self.partitions(via, TOPIC)
            except Exception:  # noqa: BLE001 - ask the next
                continue
            if parts and parts.get(p, {}).get("leader", -1) >= 0:
                return parts[p]["leader"]
        raise RuntimeError(f"no live broker names a leader of {TOPIC}-{p}")

    def group_coordinator(self):
        """The group's coordinator as the first live broker names it, or None."""
        for via in self.c.live_brokers():
            try:
                err, node, _ = find_coordinator_raw(self.c.node(via).port, self.load.group)
            except (OSError, struct.error, AssertionError, ConnectionError):
                continue
            if err == 0 and node >= 0:
                return node
        return None

    def isr_whole(self):
        """(ok, detail): every live broker lists every partition of the topic and
        of __consumer_offsets led, ISR = replicas = RF."""
        bad = []
        live = self.c.live_brokers()
        if len(live) != len(self.c.broker_ids):
            return False, [f"brokers down: {sorted(set(self.c.broker_ids) - set(live))}"]
        leaders = collections.defaultdict(dict)
        for via in live:
            for topic, n in ((TOPIC, PARTITIONS), (OFFSETS_TOPIC, None)):
                parts = self.partitions(via, topic)
                if parts is None or (n is not None and len(parts) != n):
                    bad.append(f"node {via}: {topic} missing")
                    continue
                for p, v in sorted(parts.items()):
                    leaders[(topic, p)][via] = v["leader"]
                    if v["leader"] < 0 or len(v["isr"]) != RF or sorted(v["isr"]) != sorted(v["replicas"]):
                        bad.append(f"node {via}: {topic}-{p} leader {v['leader']} "
                                   f"replicas {v['replicas']} isr {v['isr']}")
        for (topic, p), by in sorted(leaders.items()):
            if len(set(by.values())) > 1:
                bad.append(f"{topic}-{p}: brokers name different leaders {by}")
        return not bad, bad

    def settle(self, what):
        """Agreed quorum leader, every broker unfenced, every ISR whole. Returns
        (ok, seconds)."""
        t0 = time.monotonic()
        try:
            self.c.wait_for_leader(timeout_s=SETTLE_TIMEOUT_S)
            self.c.wait_for_brokers(len(self.c.broker_ids),
                                    timeout_s=max(SETTLE_TIMEOUT_S - (time.monotonic() - t0), 5))
        except AssertionError as e:
            self.fail(f"after {what}: quorum/brokers not back: {e}")
            return False, time.monotonic() - t0
        left = max(SETTLE_TIMEOUT_S - (time.monotonic() - t0), 10)
        ok, detail, _ = wait_for(self.isr_whole, left, interval_s=0.5)
        if not ok:
            self.fail(f"STUCK ISR after {what} ({SETTLE_TIMEOUT_S:.0f}s): " + "; ".join(detail[:8]))
        return ok, time.monotonic() - t0

    def note(self, msg):
        """A report-only finding."""
        self.findings.append(msg)
        say(f"   finding: {msg}")

    def fail(self, msg):
        self.failed = True
        self.fault_failures.append(msg)
        say(f"!! {msg}")

    # -- the checks after each fault

    def new_log_errors(self):
        out = []
        for i in self.c.ids:
            text = self.c.node(i).log_text()
            new, self.log_pos[i] = text[self.log_pos[i]:], len(text)
            for ln in new.splitlines():
                if self.ct.BAD_LOG_RE.search(ln) and not any(re.search(rx, ln)
                                                             for rx, _ in EXPLAINED_ERRORS):
                    out.append(f"node {i}: {ln}")
        return out

    def leader_views(self, parts):
        """{partition: {broker: leader it names}} from every live broker."""
        out = collections.defaultdict(dict)
        for via in self.c.live_brokers():
            try:
                got = self.partitions(via, TOPIC) or {}
            except Exception as e:  # noqa: BLE001 - shown as such
                got = {p: {"leader": f"{type(e).__name__}"} for p in parts}
            for p in parts:
                out[p][via] = got.get(p, {}).get("leader")
        return dict(out)

    STUCK_RE = re.compile(r"^\S+ \S+ (producer|consumer-\d) DEBUG BROKER .*Topic "
                          + re.escape(TOPIC) + r" \[(\d+)\]: leader \d+ unchanged, "
                          r"not migrating away from preferred replica")

    def client_log_pos(self):
        try:
            return os.path.getsize(self.load.log_path)
        except OSError:
            return 0

    def stuck_clients(self, since):
        """{client thread: {partition}} that librdkafka logged as kept on a
        broker that is not the leader it knows ("leader N unchanged, not
        migrating away from preferred replica M") since the byte offset since
        of the clients' log: librdkafka 1.7 can stay there for good after two
        Metadata answers name different leaders (librdkafka issues #3399,
        #4976), every Produce or Fetch then failing NOT_LEADER_OR_FOLLOWER."""
        out = collections.defaultdict(set)
        try:
            with open(self.load.log_path, "rb") as f:
                f.seek(since)
                for ln in f.read().decode("utf-8", "replace").splitlines():
                    m = self.STUCK_RE.search(ln)
                    if m:
                        out[m.group(1)].add(int(m.group(2)))
        except OSError:
            pass
        return dict(out)

    def wait_moving(self, counts):
        """Wait until every partition's count (counts() -> {partition: n})
        moved past its value now; returns the partitions that did not."""
        c0 = counts()

        def moving():
            now = counts()
            stalled = [p for p in range(PARTITIONS) if now.get(p, -1) <= c0.get(p, -1)]
            return not stalled, stalled
        ok, stalled, _ = wait_for(moving, PROGRESS_TIMEOUT_S, 0.5)
        return [] if ok else stalled

    def wait_progress(self, what, since):
        """Every partition gets new acknowledgements and new group commits. A
        client that librdkafka logged as stuck on a non-leader for a stalled
        partition is replaced once (a finding, the client's bug); a stall
        that stays is a failure."""
        checks = (("producer", lambda: self.load.acked_by_partition(), "acknowledgement",
                   ("producer",)),
                  ("group", lambda: self.load.committed_snapshot(), "commit by the group",
                   ("consumer-1", "consumer-2")))
        for _who, counts, noun, clients in checks:
            stalled = self.wait_moving(counts)
            if not stalled:
                continue
            stuck = {c: ps & set(stalled) for c, ps in self.stuck_clients(since).items()
                     if c in clients and ps & set(stalled)}
            if stuck:
                self.note(f"after {what}: client(s) stuck on a non-leader after a leader flip"
                          f" (librdkafka 1.7 bug, librdkafka issues #3399/#4976): {stuck};"
                          f" leader named by each broker {self.leader_views(sorted(set(stalled)))};"
                          f" replacing the client(s)")
                for c in stuck:
                    self.load.replace[c].set()
                stalled = self.wait_moving(counts)
                if not stalled:
                    continue
            self.fail(f"after {what}: STALLED: partition(s) {stalled} got no new {noun}"
                      f" in {PROGRESS_TIMEOUT_S:.0f}s after the settle; leader named by each broker"
                      f" {self.leader_views(stalled)}; delivery errors {dict(self.load.failed)};"
                      f" commit errors {dict(self.load.commit_errors)}; fatal {self.load.fatal};"
                      f" stuck clients {self.stuck_clients(since) or 'none'}; "
                      + client_log_digest(self.load.log_path, 3))

    def verify(self, what):
        """Loss / dups / order on a fresh read, group offsets, logs. Returns a short status."""
        acked = self.load.acked_snapshot()
        no_offset = self.load.acked_no_offset_snapshot()
        maxoff = collections.defaultdict(lambda: -1)
        for p, off, _ in acked:
            maxoff[p] = max(maxoff[p], off)
        # An acknowledged offset is below the leader's high watermark; a new
        # leader's may lag for a moment after the settle.
        wait_for(lambda: (all(hw > maxoff[p] for p, hw in high_watermarks(self.c.bootstrap).items()),
                          ""), 15, 0.5)
        committed = self.load.committed_snapshot()
        stored, hw, problems = read_back(self.c.bootstrap)
        for pr in problems:
            self.fail(f"after {what}: {pr}")
        failures, dups, stats = check_log(acked, stored, hw, no_offset)
        if len(no_offset) > self.reported_no_offset:
            new = no_offset[self.reported_no_offset:]
            self.reported_no_offset = len(no_offset)
            self.note(f"after {what}: {len(new)} delivery report(s) without an offset (success"
                      f" reported without the broker's offset), e.g. "
                      + ", ".join(f"p{p} {v.decode()} at {t:.1f}s" for p, v, t in new[:4]))
        for f in failures:
            if f in self.reported:
                continue  # the same damage, seen by an earlier check
            self.reported.add(f)
            if f.startswith("ORDER") and not self.load.idempotence:
                # without idempotence a retried batch may land after later ones
                self.note(f"after {what}: {f} (expected without idempotence)")
            else:
                self.fail(f"after {what}: {f}")
        for p, off in committed.items():
            if off > hw[p][1]:
                self.fail(f"after {what}: GROUP committed offset {off} of p{p} is above the high"
                          f" watermark {hw[p][1]}")
        with self.load.lock:
            regs = self.load.regressions[self.reported_regressions:]
            self.reported_regressions = len(self.load.regressions)
            lost_commits = self.load.lost_commits[self.reported_lost_commits:]
            self.reported_lost_commits = len(self.load.lost_commits)
            conflicts = list(self.load.seen_conflicts)
        for t, p, before, after, node in regs[:5]:
            self.fail(f"after {what}: GROUP committed offset of p{p} went back from {before} to"
                      f" {after} at coordinator node {node} (at {t:.1f}s)")
        if lost_commits:
            ex = "; ".join(f"p{p}: acknowledged {a}, node {n} answered {r} at {t:.1f}s"
                           for t, p, a, r, n in lost_commits[:5])
            self.fail(f"after {what}: GROUP {len(lost_commits)} OffsetFetch answer(s) below a commit"
                      f" acknowledged before it was sent (an acknowledged commit lost or not"
                      f" visible at the coordinator): {ex}")
        if conflicts and len(conflicts) > self.reported_conflicts:
            self.reported_conflicts = len(conflicts)
            self.fail(f"after {what}: the group read two different values at one offset:"
                      f" {conflicts[:3]}")
        for ln in self.new_log_errors():
            self.fail(f"after {what}: log: {ln}")
        for kind, (n, ex) in sorted(self.load.logf.take().items()):
            why = {"MALFORMED": "a response the client could not parse",
                   "OFFSET_RESET": "OFFSET_OUT_OF_RANGE for an offset the consumer had reached,"
                                   " so it reset its position"}[kind]
            self.fail(f"after {what}: CLIENT saw {why}: {n} time(s), e.g. " + " | ".join(ex))
        if dups and dups != self.last_dups:
            self.last_dups = dups
            why = "issue #14" if self.load.idempotence else "no idempotence"
            msg = f"after {what}: DUPLICATES ({why}): " + " | ".join(dups)
            if self.strict_dups:
                self.fail(msg)
            else:
                self.note(msg)
        ndup = sum(int(re.search(r"(\d+) extra", d).group(1)) for d in dups)
        self.last_stats = stats
        return (f"acked {stats['acked']}, stored {stats['stored']}, lost "
                f"{sum(1 for f in failures if f.startswith('LOST'))} partition(s), "
                f"dup copies {ndup}, order "
                f"{'BROKEN' if any(f.startswith('ORDER') for f in failures) else 'ok'}")

    # -- faults

    def moved_off(self, victim, timeout_s):
        """Wait until a broker other than victim lists no partition of the topic
        led by victim. Returns seconds or None."""
        def moved():
            vias = [i for i in self.c.live_brokers() if i != victim]
            if not vias:
                return False, "no other live broker"
            parts = self.partitions(vias[0], TOPIC)
            still = [p for p, v in (parts or {}).items() if v["leader"] == victim]
            return parts is not None and not still, f"still led by {victim}: {still}"
        ok, det, s = wait_for(moved, timeout_s, 0.2)
        return s if ok else None

    def fault(self, kind):
        """Inject one fault; returns a description."""
        if kind == "kill9-leader":
            p = self.rng.randrange(PARTITIONS)
            victim = self.leader_of(p)
            delay = self.rng.uniform(1, 4)
            say(f"fault kill9-leader: kill -9 node {victim} (leader of p{p}), restart in {delay:.1f}s")
            self.c.kill9(victim)
            time.sleep(delay)
            self.check_procs("during kill9-leader")
            self.start_nodes([victim], "kill -9")
            return f"node {victim} (leader of p{p}) down {delay:.1f}s"
        if kind in ("sigstop-leader", "netpart-leader"):
            if kind == "netpart-leader" and self.net is None:
                return None
            p = self.rng.randrange(PARTITIONS)
            victim = self.leader_of(p)
            coord = self.group_coordinator()
            if kind == "netpart-leader" and coord is not None and coord != victim:
                # Cut off the leader that is also the group's coordinator:
                # clients still reach it, so it is asked to take commits it
                # cannot replicate.
                led = [q for q in range(PARTITIONS) if self.leader_of(q) == coord]
                if led:
                    p, victim = self.rng.choice(led), coord
            hold = SESSION_TIMEOUT_S + self.rng.uniform(1, 3)
            t0 = time.monotonic()
            if kind == "sigstop-leader":
                say(f"fault sigstop-leader: SIGSTOP node {victim} (leader of p{p}),"
                    f" at least {hold:.1f}s")
                self.c.sigstop(victim)
            else:
                say(f"fault netpart-leader: cut node {victim} (leader of p{p}"
                    f"{', group coordinator' if victim == coord else ''}) off from the other"
                    f" nodes, at least {hold:.1f}s")
                self.net.cut(self.c, victim)
            moved = self.moved_off(victim, MOVE_TIMEOUT_S)
            if moved is None:
                self.fail(f"{kind}: the leaderships of node {victim} did not move within"
                          f" {MOVE_TIMEOUT_S:.0f}s")
            else:
                say(f"   leaderships moved off node {victim} after {moved:.1f}s")
            rest = hold - (time.monotonic() - t0)
            if rest > 0:
                time.sleep(rest)
            held = time.monotonic() - t0
            if kind == "sigstop-leader":
                self.c.sigcont(victim)
                say(f"   node {victim} SIGCONT after {held:.1f}s")
            else:
                self.net.heal()
                say(f"   partition of node {victim} healed after {held:.1f}s")
            mv = f"moved in {moved:.1f}s" if moved is not None else "NOT moved"
            return f"node {victim} (leader of p{p}) {held:.1f}s, leaderships {mv}"
        if kind == "kill9-controller":
            leader, epoch = self.c.active_controller(timeout_s=30)
            delay = self.rng.uniform(1, 4)
            say(f"fault kill9-controller: kill -9 node {leader} (active controller, epoch {epoch}),"
                f" restart in {delay:.1f}s")
            self.c.kill9(leader)
            time.sleep(delay)
            self.check_procs("during kill9-controller")
            self.start_nodes([leader], "kill -9")
            return f"node {leader} (controller epoch {epoch}) down {delay:.1f}s"
        if kind == "rolling-restart":
            order = list(self.c.ids)
            self.rng.shuffle(order)
            say(f"fault rolling-restart: SIGTERM and start nodes {order} one by one")
            for i in order:
                self.check_procs("during rolling-restart")
                self.stop_node(i)
                self.start_nodes([i], "SIGTERM")
                ok, s = self.settle(f"rolling restart of node {i}")
                if not ok:
                    return f"nodes {order}: STUCK after node {i}"
                say(f"   node {i} back, ISR whole after {s:.1f}s")
            return f"nodes {order}"
        raise ValueError(kind)

    def one(self, n, kind):
        self.fault_failures = []
        acked0 = self.load.n_acked()
        log_pos = self.client_log_pos()
        t0 = time.monotonic()
        try:
            desc = self.fault(kind)
        except Exception as e:  # noqa: BLE001 - a fault that could not be run is a failure
            self.fail(f"{kind}: {type(e).__name__}: {e}")
            desc = "error"
        if desc is None:
            line = f"fault {n:2d} {kind:17s}: SKIPPED: {self.net_reason}"
            say(line)
            self.rows.append(line)
            return True
        self.check_procs(f"after {kind}")
        self.heal_all()
        ok, settle_s = self.settle(kind)
        if ok:
            say(f"   settled: ISR {RF} everywhere after {settle_s:.1f}s")
            self.wait_progress(kind, log_pos)
        status = self.verify(kind)
        if self.problems:
            for pr in self.problems:
                self.fail(f"{kind}: {pr}")
            self.problems = []
        verdict = "ok" if not self.fault_failures else f"FAILED ({len(self.fault_failures)})"
        line = (f"fault {n:2d} {kind:17s}: {desc}; settle {settle_s:.1f}s; "
                f"+{self.load.n_acked() - acked0} acked in {time.monotonic() - t0:.0f}s; {status}"
                f" -> {verdict}")
        say(line)
        self.rows.append(line)
        self.all_failures.extend(self.fault_failures)
        return ok

    def final(self):
        """Stop the load, drain the group, final checks."""
        self.fault_failures = []
        say("final: stopping the producer (flush)")
        self.load.stop_producer()
        hw = high_watermarks(self.c.bootstrap)
        say(f"final: high watermarks {hw}; waiting for the group to commit them")
        def drained():
            got = self.load.committed_snapshot()
            return got == hw, f"committed {got}"
        ok, det, s = wait_for(drained, DRAIN_TIMEOUT_S / 2, 0.5)
        if not ok:
            behind = {p for p in range(PARTITIONS) if self.load.committed_snapshot().get(p) != hw[p]}
            stuck = {c: ps & behind for c, ps in self.stuck_clients(0).items()
                     if c.startswith("consumer") and ps & behind}
            if stuck:
                self.note(f"final: consumer(s) stuck on a non-leader after a leader flip (librdkafka"
                          f" 1.7 bug, librdkafka issues #3399/#4976): {stuck}; replacing them")
                for c in stuck:
                    self.load.replace[c].set()
            ok, det, s2 = wait_for(drained, DRAIN_TIMEOUT_S / 2, 0.5)
            s += s2
        if not ok:
            self.fail(f"final: the group did not reach the high watermarks {hw} in"
                      f" {DRAIN_TIMEOUT_S:.0f}s: {det}")
        else:
            say(f"   group committed every high watermark after {s:.1f}s")
        self.load.stop_consumers()
        status = self.verify("the final settle")
        # the group saw every acknowledged value at its offset
        acked = self.load.acked_snapshot()
        with self.load.lock:
            seen = dict(self.load.seen)
        missing = [(p, off, v) for p, off, v in acked if seen.get((p, off)) != v]
        if missing:
            self.fail(f"final: the group never read {len(missing)} acknowledged record(s) at their"
                      f" offset, e.g. {missing[:5]}")
        # byte-identical replicas
        def same():
            diff = []
            for p in range(PARTITIONS):
                dig = {i: segment_digest(self.c, i, p) for i in self.c.broker_ids}
                if len({d[0] for d in dig.values()}) != 1:
                    diff.append(f"p{p}: " + ", ".join(f"node {i} {d[1]}" for i, d in dig.items()))
            return not diff, diff
        ok, det, s = wait_for(same, 30, 0.5)
        if not ok:
            self.fail("final: replicas' segment files differ: " + "; ".join(det))
        else:
            sizes = [segment_digest(self.c, self.c.broker_ids[0], p)[2] for p in range(PARTITIONS)]
            say(f"   segment files byte-identical on all {RF} replicas of every partition"
                f" ({sum(sizes)} bytes per replica set)")
        verdict = "ok" if not self.fault_failures else f"FAILED ({len(self.fault_failures)})"
        line = (f"final           : {status}; group consumed {self.load.consumed} "
                f"(commits {self.load.commits}); replicas {'identical' if ok else 'DIFFER'} -> {verdict}")
        say(line)
        self.rows.append(line)
        self.all_failures.extend(self.fault_failures)


# --------------------------------------------------------------------------- main

def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--seconds", type=float, default=0,
                    help="run passes over the fault list until this many seconds have gone "
                         "(default 0: one pass)")
    ap.add_argument("--seed", type=int, default=None)
    ap.add_argument("--layout", choices=("combined", "split"), default="combined")
    ap.add_argument("--keep", action="store_true", help="keep the cluster directory on success")
    ap.add_argument("--strict-dups", action="store_true",
                    help="fail on duplicated values (idempotent retries stored twice, issue #14)")
    ap.add_argument("--no-idempotence", action="store_true",
                    help="diagnostic: produce with enable.idempotence=false (still acks=all)")
    ap.add_argument("--faults", default=",".join(FAULTS),
                    help="comma-separated subset/order of the fault list (default: all)")
    args = ap.parse_args()
    faults = [f for f in args.faults.split(",") if f]
    bad = [f for f in faults if f not in FAULTS]
    if bad:
        ap.error(f"unknown fault(s) {bad}; known: {FAULTS}")
    seed = args.seed if args.seed is not None else random.SystemRandom().randrange(1, 1 << 31)
    repro = (f"/usr/bin/python3 tests/chaos/repl_chaos.py --seconds {args.seconds:g} --seed {seed}"
             f" --layout {args.layout}" + (" --strict-dups" if args.strict_dups else "")
             + (" --no-idempotence" if args.no_idempotence else "")
             + (f" --faults {args.faults}" if faults != FAULTS else ""))
    tmp = tempfile.mkdtemp(prefix=f"samsa-repl-chaos-{args.layout}-")
    src, bindir = stage_binaries(tmp)
    print(f"repl chaos: layout {args.layout}, seed {seed}, "
          + (f"{args.seconds:g}s" if args.seconds else "one pass"), flush=True)
    built = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(os.path.getmtime(src["SAMSA_BROKER"])))
    print(f"repl chaos: binaries {src['SAMSA_BROKER']} (built {built}), {src['SAMSA_CLI']}"
          f" (copied to {bindir})", flush=True)

    if args.layout == "combined":
        layout = {"n_combined": 3}
        node_ids = [1, 2, 3]
    else:
        layout = {"controllers": 1, "brokers": 3}
        node_ids = [1, 2, 3, 4]
    net = None
    net_reason = "not in the fault list"
    if "netpart-leader" in faults:
        np_ = NetPartition()
        if np_.probe(node_ids):
            net = np_
            os.environ["SAMSA_BROKER"] = net.wrapper(bindir, os.environ["SAMSA_BROKER"])
            print(f"repl chaos: network partitions with iptables chain {net.chain} and cgroups"
                  f" under {net.cg_dir}", flush=True)
        else:
            net_reason = np_.reason
            print(f"repl chaos: netpart-leader will be SKIPPED: {net_reason}", flush=True)

    sys.path.insert(0, IT_DIR)
    import conftest  # noqa: E402 - after SAMSA_BROKER/SAMSA_CLI point at the copies
    import cluster as harness  # noqa: E402
    import pytest  # noqa: E402

    root = os.path.join(tmp, "cluster")
    os.makedirs(root)
    c = harness.Cluster(root, overrides=OVERRIDES, **layout)
    assert c.ids == node_ids, c.ids
    print(f"repl chaos: cluster {c.cluster_id} in {root}: "
          + ", ".join(f"{i}={c.kinds[i]}" for i in c.ids), flush=True)

    def cleanup():
        if net:
            net.heal()
    atexit.register(cleanup)
    def on_sigterm(*_):
        raise KeyboardInterrupt()
    signal.signal(signal.SIGTERM, on_sigterm)

    run = Run(c, harness, conftest, args.layout, seed, net, args.strict_dups)
    run.net_reason = net_reason
    run.all_failures = []
    run.fault_failures = []
    harness_error = None
    load = Load(c, f"repl-chaos-{seed}", os.path.join(root, "clients.log"),
                idempotence=not args.no_idempotence)
    run.load = load
    t_start = time.monotonic()
    n_faults = 0
    try:
        try:
            c.start_all(timeout_s=START_TIMEOUT_S)
        except pytest.fail.Exception as e:
            raise RuntimeError(f"cluster did not start: {e}") from None
        leader, epoch = c.wait_for_leader(timeout_s=30)
        c.create_topic(TOPIC, partitions=PARTITIONS, rf=RF, timeout_s=30)
        say(f"cluster up: quorum leader {leader} epoch {epoch}; topic {TOPIC} "
            f"({PARTITIONS} partitions, RF {RF}); load starts")
        load.start()
        ok, det, s = wait_for(lambda: (load.committed_total() > 0 and load.n_acked() > 100,
                                       f"acked {load.n_acked()}, committed {load.committed_total()}"),
                              60, 0.5)
        if not ok:
            # A broker problem, not the harness's: say what the clients saw.
            run.fault_failures = []
            refused = collections.Counter(
                m.group(0) for i in c.ids for m in
                re.finditer(r"api key \d+ is not served on the controller listener",
                            c.node(i).log_text()))
            run.fail(f"START: the load did not get going in 60s ({det}); "
                     + client_log_digest(load.log_path)
                     + "".join(f"; nodes' logs: x{n} '{k}'" for k, n in refused.items()))
            run.all_failures.extend(run.fault_failures)
            raise NoLoad()
        ok, s = run.settle("the start")
        if not ok:
            raise RuntimeError("ISR not whole before the first fault: " + "; ".join(run.fault_failures))
        say(f"load running (acked {load.n_acked()}, group committing); ISR {RF} everywhere")
        end = t_start + args.seconds
        passes = 0
        stop = False
        while not stop:
            passes += 1
            for kind in faults:
                if passes > 1 and time.monotonic() >= end:
                    stop = True
                    break
                n_faults += 1
                if not run.one(n_faults, kind):
                    say("!! the cluster did not settle; no further faults")
                    stop = True
                    break
                if load.errors:
                    raise RuntimeError("workload thread failed: " + "; ".join(load.errors))
            if time.monotonic() >= end:
                stop = True
        run.final()
        run.all_failures += [f"harness: {e}" for e in load.errors]
    except NoLoad:
        pass
    except KeyboardInterrupt:
        harness_error = "interrupted"
    except Exception:  # noqa: BLE001 - a harness failure, not an invariant
        harness_error = traceback.format_exc()
    finally:
        load.stop_prod.set()
        load.stop_group.set()
        if net:
            net.heal()
        run.check_procs("before the final shutdown")
        before = {i: len(c.node(i).exit_codes) for i in c.ids}
        try:
            for kind in ("broker", "combined", "controller"):
                group = [b for b in c.nodes.values() if b.kind == kind and b.proc is not None]
                for b in group:
                    b.terminate()
                deadline = time.monotonic() + conftest.STOP_TIMEOUT_S
                for b in group:
                    b.wait_stopped(max(deadline - time.monotonic(), 0.1))
        finally:
            c.kill_all()
        for i in c.ids:
            for rc in c.node(i).exit_codes[before[i]:]:
                if rc != 0:
                    run.problems.append(f"node {i}: final SIGTERM exit status {rc}")
        if net:
            net.remove_cgroups()
    run.all_failures += [f"shutdown: {p}" for p in run.problems]
    for ln in run.new_log_errors():
        run.all_failures.append(f"shutdown: log: {ln}")

    elapsed = time.monotonic() - t_start
    print("\n===== repl chaos summary =====")
    print(f"layout {args.layout}, seed {seed}, {n_faults} fault(s) in {elapsed:.0f}s;"
          f" cluster dir {root}")
    for r in run.rows:
        print("  " + r)
    with load.lock:
        print(f"producer: {load.produced} produced, {len(load.acked)} acked"
              f" (+{len(load.acked_no_offset)} without an offset), delivery errors"
              f" {dict(load.failed) or 0}, undelivered at flush {load.undelivered},"
              f" fatal {load.fatal or 'none'}")
        print(f"group: {load.consumed} consumed, {load.commits} commits, commit errors"
              f" {dict(load.commit_errors) or 0}; monitor {load.monitor_reads} reads,"
              f" errors {dict(load.monitor_errors) or 0}, regressions {len(load.regressions)},"
              f" answers below an acknowledged commit {len(load.lost_commits)},"
              f" rounds with two coordinators {load.split_coordinator_reads};"
              f" records read again {load.redelivered}")
        if load.replacements:
            print("clients replaced (stuck on a non-leader, librdkafka bug): "
                  + ", ".join(f"{k} x{v}" for k, v in sorted(load.replacements.items())))
        if load.client_errors:
            print("client error callbacks: " + ", ".join(f"{k} x{v}" for k, v in
                                                         load.client_errors.most_common(10)))
    print("logs (node kind: ERROR WARN starts):")
    for i in c.ids:
        text = c.node(i).log_text().splitlines()
        ne = sum(1 for ln in text if re.search(r"\bERROR\b", ln))
        nw = sum(1 for ln in text if re.search(r"\bWARN\b", ln))
        print(f"    node {i} {c.node(i).kind:10s} ERROR {ne:4d}  WARN {nw:5d}  starts {c.node(i).starts}")
    if run.findings:
        print(f"findings (report-only{'' if not args.strict_dups else ', failing: --strict-dups'}):")
        for f in run.findings[:20]:
            print("  - " + f[:600])
    passed = not harness_error and not run.all_failures
    if harness_error:
        print(f"HARNESS ERROR:\n{harness_error}")
    if run.all_failures:
        print(f"FAILURES ({len(run.all_failures)}):")
        for f in run.all_failures[:80]:
            print("  - " + f[:800])
    if not passed or args.keep:
        print(f"reproduce: {repro}\ncluster dir kept: {root}")
    else:
        shutil.rmtree(tmp, ignore_errors=True)
    print(f"repl chaos seed {seed}: {'passed' if passed else 'FAILED'}", flush=True)
    if harness_error:
        return 2
    return 0 if passed else 1


if __name__ == "__main__":
    sys.exit(main())
