#!/usr/bin/env python3
"""Multi-node KRaft cluster benchmark: controller failover and metadata propagation.

Run with Debian's Python (the integration harness imports pytest):

    /usr/bin/python3 bench/cluster_bench.py [--quick] [--json FILE] [--keep]

Uses the integration harness (tests/integration/cluster.py, class Cluster) to
run 3-node combined clusters (process.roles=broker,controller) on loopback,
under a fresh temporary directory, with a private copy of bin/samsa-broker and
bin/samsa (so a rebuild of bin/ during the run cannot mix binaries). Every
process is stopped by pid at the end, also on failure or Ctrl-C.

What it measures, in one run:

 1. Controller failover, N rounds (7; --quick 3) per quorum-timeout setting
    ("default": election 1000 ms / fetch 2000 ms; "fast": 500 / 1000):
    find the active controller, kill -9 it, then, from the instant before the
    kill (time.monotonic()):
      - leader_lost_s: the first survivor stops naming the dead leader;
      - new_leader_s:  the first survivor reports a NEW quorum leader (another
                       node, higher epoch) in DescribeQuorum on its own
                       CONTROLLER listener (not forwarded, its own view);
      - agreed_s:      both survivors report that same leader and epoch;
      - create_ok_s:   a CreateTopics of a fresh 1-partition topic sent to a
                       survivor (the lower id) first answers error 0;
      - single_create_s: ONE CreateTopics with timeout_ms 30000, sent to the
                       same survivor right after the kill, answers error 0
                       (what a client with a long request timeout sees).
    DescribeQuorum is polled every 10 ms with a raw v0 request on a kept-open
    connection (the `samsa cluster quorum` CLI costs ~17 ms a call, which would
    be the resolution). CreateTopics is probed with overlapping attempts: a new
    attempt (fresh topic name, timeout_ms 1000) every 25 ms while fewer than 64
    are in flight, because an attempt that a survivor forwards to the dead
    controller blocks for its whole timeout before answering NOT_CONTROLLER;
    41 NOT_CONTROLLER / 7 REQUEST_TIMED_OUT are the expected retriable answers.
    Then the killed node is restarted and the round waits (bounded) until its
    broker side logs that it is registered and unfenced again (Metadata alone
    cannot tell: the dead incarnation stays listed until its session expires on
    the new controller, and the restarted process is refused with
    DUPLICATE_BROKER_REGISTRATION until then), every node lists 3 brokers, it
    is a caught-up follower in the leader's DescribeQuorum and all controllers
    agree on the leader (rejoin_s); then 1 s of quiet before the next kill.

 2. Propagation: a fresh cluster with all 3 nodes up; T topics x P partitions,
    RF 1 (10 x 1,000 = 10,000; --quick 10 x 100), sent one CreateTopics after
    another to the node Metadata names as controller (what a stock admin client
    does). Measured from sending the first CreateTopics until EVERY node's
    Metadata lists all those partitions with a leader (leader >= 0); also each
    CreateTopics round trip and each node's own completion time. Metadata is
    polled (v4, allow_auto_topic_creation=false, only the topics a node still
    lacks) every 10 ms per round of the three nodes.

Output: markdown tables on stdout; raw samples as JSON (--json, default
build/bench/cluster-results.json), including a summary of WARN/ERROR lines in
every node's broker.log (during the run, and during the final shutdown).

Every wait is bounded (a clear error names what did not happen); a global
watchdog ends the run if it exceeds --max-minutes.
"""

import argparse
import collections
import contextlib
import hashlib
import json
import os
import platform
import re
import shutil
import signal
import statistics
import struct
import subprocess
import sys
import tempfile
import threading
import time

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
IT_DIR = os.path.join(REPO, "tests", "integration")
DEFAULT_JSON = os.path.join(REPO, "build", "bench", "cluster-results.json")

SETTINGS = [
    ("default", {"controller.quorum.election.timeout.ms": "1000",
                 "controller.quorum.fetch.timeout.ms": "2000"}),
    ("fast", {"controller.quorum.election.timeout.ms": "500",
              "controller.quorum.fetch.timeout.ms": "1000"}),
]

QUORUM_POLL_S = 0.010          # DescribeQuorum polling interval
CREATE_PROBE_EVERY_S = 0.025   # a new CreateTopics attempt this often during failover
CREATE_PROBE_MAX_INFLIGHT = 64
CREATE_PROBE_TIMEOUT_MS = 1000  # the broker's forward timeout floor is 1000 ms
SINGLE_CREATE_TIMEOUT_MS = 30000  # one more CreateTopics sent at the kill, as a stock client
FAILOVER_TIMEOUT_S = 30.0      # leader + create must both happen within this
REJOIN_TIMEOUT_S = 90.0
SETTLE_S = 1.0                 # steady state before each kill
META_POLL_S = 0.010            # Metadata polling interval (propagation)

ERR_NONE, ERR_REQUEST_TIMED_OUT, ERR_NOT_CONTROLLER = 0, 7, 41

# Filled in main() after the binaries are snapshotted and sys.path is set.
H = None   # tests/integration/cluster.py
CF = None  # tests/integration/conftest.py


class BenchError(Exception):
    """A bounded wait ran out or the cluster misbehaved; the message says which."""


def log(msg):
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


def stats(xs):
    xs = [x for x in xs if x is not None]
    if not xs:
        return {"n": 0, "median": None, "min": None, "max": None}
    return {"n": len(xs), "median": statistics.median(xs), "min": min(xs), "max": max(xs),
            "mean": statistics.fmean(xs)}


def bounded(pred, timeout_s, what, interval_s=0.02):
    """Poll pred() until truthy (returned); BenchError naming `what` on timeout."""
    deadline = time.monotonic() + timeout_s
    last = None
    while True:
        try:
            last = pred()
            if last:
                return last
        except Exception as e:  # noqa: BLE001 - reported on timeout
            last = e
        if time.monotonic() >= deadline:
            raise BenchError(f"timed out after {timeout_s:.0f}s waiting for {what}; last: {last!r}")
        time.sleep(interval_s)


# --------------------------------------------------------------------------- raw wire helpers

# The wire helpers are conftest's (CF, imported in main() once the binaries
# are staged): the compact encodings of flexible versions.

def _read_uvarint(buf, pos):
    return CF.dec_uvarint(buf, pos)


def _skip_tags(buf, pos):
    return CF.skip_tagged_fields(buf, pos)


_META_TOPIC = b"__cluster_metadata"


def dq_body():
    """DescribeQuorum v0 (flexible): topics [ {name, partitions [ {index 0} ]} ]."""
    u = CF.enc_uvarint
    return (u(2) + u(len(_META_TOPIC) + 1) + _META_TOPIC
            + u(2) + struct.pack(">i", 0) + b"\x00"   # partition 0, its tags
            + b"\x00"                                  # topic tags
            + b"\x00")                                 # request tags


API_DESCRIBE_QUORUM = 55


class QuorumProbe:
    """Raw DescribeQuorum v0 to one node's CONTROLLER listener on a kept-open
    connection: that node's own view (requests on the CONTROLLER listener are
    never forwarded). ask() -> (leader_id, leader_epoch); raises on errors."""

    def __init__(self, port):
        self.port = port
        self.conn = None

    def ask(self):
        if self.conn is None:
            self.conn = CF.WireConn(self.port, timeout_s=1.0, client_id="samsa-cluster-bench")
        try:
            buf = self.conn.request(API_DESCRIBE_QUORUM, 0, dq_body(), flexible=True)
        except Exception:
            self.close()
            raise
        pos = _skip_tags(buf, 0)                       # response header v1
        (err,) = struct.unpack_from(">h", buf, pos)
        pos += 2
        if err:
            raise RuntimeError(f"DescribeQuorum error {err}")
        nt, pos = _read_uvarint(buf, pos)
        if nt - 1 < 1:
            raise RuntimeError("DescribeQuorum: no topic in the response")
        slen, pos = _read_uvarint(buf, pos)
        pos += slen - 1
        npart, pos = _read_uvarint(buf, pos)
        if npart - 1 < 1:
            raise RuntimeError("DescribeQuorum: no partition in the response")
        _idx, perr, leader, epoch = struct.unpack_from(">ihii", buf, pos)
        if perr:
            raise RuntimeError(f"DescribeQuorum partition error {perr}")
        return leader, epoch

    def close(self):
        if self.conn is not None:
            try:
                self.conn.close()
            except OSError:
                pass
            self.conn = None


def metadata_v4(port, topics, timeout_s=10.0):
    """Metadata v4 for the named topics with allow_auto_topic_creation=false
    (v1, as cluster.metadata_raw sends, auto-creates named topics when the
    broker has auto.create.topics.enable=true, which the harness sets).
    Returns {"controller": id, "topics": {name: (error, n_partitions,
    n_with_leader, {partition: leader})}} (the leader map only when
    `leaders` partitions are few, to keep the parse cheap)."""
    body = CF.enc_array([CF.enc_str(t) for t in topics]) + b"\x00"
    c = CF.WireConn(port, timeout_s=timeout_s, client_id="samsa-cluster-bench")
    try:
        buf = c.request(3, 4, body)
    finally:
        c.close()
    unpack = struct.unpack_from
    pos = 4  # throttle
    (nb,) = unpack(">i", buf, pos)
    pos += 4
    for _ in range(nb):
        pos += 4                                    # node id
        (hl,) = unpack(">h", buf, pos)
        pos += 2 + hl + 4                           # host, port
        (rl,) = unpack(">h", buf, pos)
        pos += 2 + max(rl, 0)                       # rack
    (cl,) = unpack(">h", buf, pos)
    pos += 2 + max(cl, 0)                           # cluster id
    (controller, nt) = unpack(">ii", buf, pos)
    pos += 8
    out = {}
    for _ in range(nt):
        (terr, nl) = unpack(">hh", buf, pos)
        pos += 4
        name = buf[pos:pos + nl].decode()
        pos += nl + 1                               # name, is_internal
        (np_,) = unpack(">i", buf, pos)
        pos += 4
        led = 0
        leaders = {} if np_ <= 16 else None
        for _ in range(max(np_, 0)):
            (_perr, idx, leader, nrep) = unpack(">hiii", buf, pos)
            pos += 14 + 4 * nrep
            (nisr,) = unpack(">i", buf, pos)
            pos += 4 + 4 * nisr
            if leader >= 0:
                led += 1
            if leaders is not None:
                leaders[idx] = leader
        out[name] = (terr, max(np_, 0), led, leaders)
    return {"controller": controller, "topics": out}


# --------------------------------------------------------------------------- failover

class CreateProber:
    """Overlapping CreateTopics attempts against one node until one succeeds.
    Times are seconds after t0 (time.monotonic() just before the kill)."""

    def __init__(self, port, prefix, t0, deadline):
        self.port, self.prefix, self.t0, self.deadline = port, prefix, t0, deadline
        self.lock = threading.Lock()
        self.attempts = []          # (start_s, end_s, error code or exception text)
        self.success = None         # (end_s, topic)
        self.inflight = 0
        self.done = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True, name="create-prober")

    def start(self):
        self.thread.start()
        return self

    def _attempt(self, n):
        topic = f"{self.prefix}-a{n}"
        start = time.monotonic()
        try:
            res = H.create_topics_raw(self.port, [(topic, 1, 1)],
                                      timeout_ms=CREATE_PROBE_TIMEOUT_MS,
                                      socket_timeout_s=CREATE_PROBE_TIMEOUT_MS / 1000 + 5)
            outcome = res.get(topic, (None, "topic missing from the response"))[0]
        except Exception as e:  # noqa: BLE001 - recorded
            outcome = f"{type(e).__name__}: {e}"
        end = time.monotonic()
        with self.lock:
            self.inflight -= 1
            self.attempts.append((round(start - self.t0, 4), round(end - self.t0, 4), outcome))
            if outcome == ERR_NONE and (self.success is None or end - self.t0 < self.success[0]):
                self.success = (end - self.t0, topic)

    def _run(self):
        n = 0
        try:
            while time.monotonic() < self.deadline:
                with self.lock:
                    if self.success is not None:
                        break
                    launch = self.inflight < CREATE_PROBE_MAX_INFLIGHT
                    if launch:
                        self.inflight += 1
                if launch:
                    n += 1
                    threading.Thread(target=self._attempt, args=(n,), daemon=True).start()
                time.sleep(CREATE_PROBE_EVERY_S)
            # let the attempts still in flight answer (each is bounded by its socket timeout)
            drain_until = time.monotonic() + CREATE_PROBE_TIMEOUT_MS / 1000 + 6
            while time.monotonic() < drain_until:
                with self.lock:
                    if self.inflight == 0:
                        break
                time.sleep(0.02)
        finally:
            self.done.set()

    def summary(self):
        with self.lock:
            outcomes = collections.Counter(str(a[2]) for a in self.attempts)
            slow = [a for a in self.attempts if a[1] - a[0] > 0.5]
            return {"attempts": len(self.attempts), "outcomes": dict(outcomes),
                    "unanswered": self.inflight,
                    "slowest_attempt_s": max((a[1] - a[0] for a in self.attempts), default=None),
                    "attempts_over_500ms": len(slow),
                    "success_topic": self.success[1] if self.success else None,
                    "samples": sorted(self.attempts)[:400]}


_UNFENCED = b"is unfenced: serving as a member of the cluster"
_FENCED = b" is fenced ("


def broker_unfenced(c, node_id):
    """This node's broker side says (its own log, since its latest start) that
    it is registered and unfenced, and has not said fenced since. Metadata
    alone cannot tell: after a kill -9 the dead incarnation's registration
    stays listed (unfenced) until its session expires on the controller, so
    "3 brokers in Metadata" holds while the restarted process is still being
    refused (DUPLICATE_BROKER_REGISTRATION) and is no member of the cluster."""
    b = c.nodes[node_id]
    with open(b.log_path, "rb") as f:
        f.seek(b._start_offset)
        text = f.read()
    return text.rfind(_UNFENCED) > text.rfind(_FENCED)


def steady_state(c, timeout_s=REJOIN_TIMEOUT_S):
    """Every node up; each broker registered and unfenced by its own account
    (its log) and listed by every node's Metadata; one agreed quorum leader,
    every other voter a caught-up follower of it. Returns (leader, epoch)."""
    deadline = time.monotonic() + timeout_s

    def left():
        return max(deadline - time.monotonic(), 1.0)

    try:
        bounded(lambda: all(broker_unfenced(c, i) for i in c.broker_ids), left(),
                "every broker to log that it is registered and unfenced since its latest start",
                interval_s=0.02)
    except BenchError as e:
        raise BenchError(f"{e} (not yet: nodes"
                         f" {[i for i in c.broker_ids if not broker_unfenced(c, i)]})") from None
    c.wait_for_brokers(len(c.broker_ids), timeout_s=left())
    leader, epoch = c.wait_for_leader(timeout_s=left())

    def followers_caught_up():
        q = c.quorum(leader)
        if q["leader_id"] != leader:
            return False
        reps = {r["id"]: r for r in q["replicas"]}
        return all(i in reps and reps[i]["role"] == "follower" and reps[i]["lag"] == 0
                   for i in c.controller_ids if i != leader)
    bounded(followers_caught_up, left(), f"voters caught-up followers of leader {leader}",
            interval_s=0.1)
    return c.wait_for_leader(timeout_s=left())


def failover_round(c, setting, rnd):
    old, epoch = steady_state(c)
    time.sleep(SETTLE_S)
    survivors = [i for i in c.controller_ids if i != old]
    target = min(i for i in survivors if c.nodes[i].is_broker)
    probes = {i: QuorumProbe(c.node(i).controller_port) for i in survivors}
    # the survivors' views right before the kill (and the probe connections opened)
    before = {i: p.ask() for i, p in probes.items()}
    if any(v != (old, epoch) for v in before.values()):
        raise BenchError(f"survivors disagree before the kill: {before} vs {(old, epoch)}")

    log(f"  {setting} round {rnd}: kill -9 active controller {old} (epoch {epoch});"
        f" probing CreateTopics via {target}")
    t0 = time.monotonic()
    c.kill9(old)
    t_killed = time.monotonic() - t0
    prober = CreateProber(c.node(target).port, f"fo-{setting}-{rnd}-{os.getpid()}",
                          t0, t0 + FAILOVER_TIMEOUT_S).start()
    # what a client with a long request timeout sees: ONE CreateTopics sent at the kill
    single = {}

    def one_create():
        topic = f"fo-{setting}-{rnd}-{os.getpid()}-single"
        try:
            res = H.create_topics_raw(c.node(target).port, [(topic, 1, 1)],
                                      timeout_ms=SINGLE_CREATE_TIMEOUT_MS)
            single["error"] = res.get(topic, (None, "missing from the response"))[0]
        except Exception as e:  # noqa: BLE001 - recorded
            single["error"] = f"{type(e).__name__}: {e}"
        single["answer_s"] = time.monotonic() - t0
    single_th = threading.Thread(target=one_create, daemon=True, name="single-create")
    single_th.start()

    lost, seen, agreed, errors, polls = {}, {}, None, collections.Counter(), 0
    views = {}
    deadline = t0 + FAILOVER_TIMEOUT_S
    while True:
        for i, p in probes.items():
            try:
                v = p.ask()
            except Exception as e:  # noqa: BLE001 - counted
                errors[f"{type(e).__name__}: {e}"[:120]] += 1
                continue
            now = time.monotonic() - t0
            views[i] = v
            if i not in lost and v[0] != old:
                lost[i] = now
            if i not in seen and v[0] >= 0 and v[0] != old and v[1] > epoch:
                seen[i] = (now, v[0], v[1])
        polls += 1
        if agreed is None and len(seen) == len(probes):
            cur = {views[i] for i in probes}
            if len(cur) == 1 and next(iter(cur))[0] >= 0:
                agreed = (time.monotonic() - t0,) + next(iter(cur))
        if agreed is not None and prober.done.is_set():
            break
        if time.monotonic() >= deadline:
            for p in probes.values():
                p.close()
            prober.done.wait(10)
            raise BenchError(
                f"{setting} round {rnd}: after kill -9 of {old} within {FAILOVER_TIMEOUT_S:.0f}s:"
                f" survivors' views {views} (new leader seen {seen}, agreed {agreed});"
                f" CreateTopics via {target}: {prober.summary()['outcomes']}; probe errors"
                f" {dict(errors)}")
        time.sleep(QUORUM_POLL_S)
    for p in probes.values():
        p.close()
    single_th.join(SINGLE_CREATE_TIMEOUT_MS / 1000 + 15)
    if single_th.is_alive():
        raise BenchError(f"{setting} round {rnd}: the single CreateTopics sent at the kill"
                         f" did not answer within {SINGLE_CREATE_TIMEOUT_MS / 1000 + 15:.0f}s")

    cs = prober.summary()
    if prober.success is None:
        raise BenchError(f"{setting} round {rnd}: no CreateTopics via node {target} succeeded"
                         f" within {FAILOVER_TIMEOUT_S:.0f}s: {cs['outcomes']}")
    new_leader, new_epoch = agreed[1], agreed[2]
    # where did the topic created during the failover land?
    placed = None
    try:
        md = metadata_v4(c.node(target).port, [cs["success_topic"]])
        placed = md["topics"][cs["success_topic"]][3]
    except Exception as e:  # noqa: BLE001 - informational only
        placed = f"{type(e).__name__}: {e}"

    # restart the killed node; wait until it is a caught-up voter and a broker again
    t_r = time.monotonic()
    c.start(old)
    t_serving = time.monotonic() - t_r
    steady_state(c)
    rejoin = time.monotonic() - t_r

    r = {
        "round": rnd, "killed": old, "old_epoch": epoch, "kill_call_s": t_killed,
        "new_leader": new_leader, "new_epoch": new_epoch,
        "leader_lost_s": min(lost.values()) if lost else None,
        "leader_lost_per_survivor_s": lost,
        "new_leader_s": min(s[0] for s in seen.values()),
        "new_leader_per_survivor_s": {i: s[0] for i, s in seen.items()},
        "agreed_s": agreed[0],
        "create_ok_s": prober.success[0],
        "create_via": target, "create_via_is_new_leader": target == new_leader,
        "single_create_s": single["answer_s"] if single["error"] == ERR_NONE else None,
        "single_create": single,
        "create_topic_leaders": placed,
        "create_topic_on_killed_node": isinstance(placed, dict) and old in placed.values(),
        "create_probe": cs,
        "quorum_polls": polls,
        "quorum_poll_errors": dict(errors),
        "restart_serving_s": t_serving, "rejoin_s": rejoin,
    }
    log(f"    new leader {new_leader} (epoch {new_epoch}) seen at {r['new_leader_s']:.3f}s,"
        f" agreed {r['agreed_s']:.3f}s; CreateTopics ok at {r['create_ok_s']:.3f}s"
        f" ({cs['attempts']} attempts: {cs['outcomes']}); rejoined in {rejoin:.1f}s")
    return r


def run_failover(root, setting, overrides, rounds, clusters):
    c = H.Cluster(os.path.join(root, f"failover-{setting}"), overrides=overrides)
    clusters.append(c)
    log(f"failover/{setting}: starting 3 combined nodes ({overrides}) under {c.root}")
    c.start_all()
    c.create_topic(f"warmup-{setting}", 3, timeout_s=30)   # the cluster works end to end
    # the raw DescribeQuorum probe agrees with the CLI (harness) view
    leader, epoch = steady_state(c)
    for i in c.controller_ids:
        raw = QuorumProbe(c.node(i).controller_port)
        try:
            got = raw.ask()
        finally:
            raw.close()
        cli = c.quorum(i)
        if got != (cli["leader_id"], cli["leader_epoch"]):
            raise BenchError(f"raw DescribeQuorum on node {i} says {got}, CLI says"
                             f" {(cli['leader_id'], cli['leader_epoch'])}")
    out = {"overrides": overrides, "nodes": c.ids, "rounds": []}
    for rnd in range(1, rounds + 1):
        out["rounds"].append(failover_round(c, setting, rnd))
    for k in ("leader_lost_s", "new_leader_s", "agreed_s", "create_ok_s", "single_create_s",
              "rejoin_s"):
        out[k] = stats([r[k] for r in out["rounds"]])
    return c, out


# --------------------------------------------------------------------------- propagation

def run_propagation(root, n_topics, per_topic, clusters, timeout_s):
    c = H.Cluster(os.path.join(root, "propagation"))
    clusters.append(c)
    log(f"propagation: starting 3 combined nodes under {c.root}")
    c.start_all()
    steady_state(c)
    md = metadata_v4(c.node(c.broker_ids[0]).port, [])
    target = md["controller"]
    if target not in c.nodes or not c.nodes[target].is_broker:
        target = c.broker_ids[0]
    leader, _ = c.wait_for_leader()
    topics = [f"prop-{i:02d}-{os.getpid()}" for i in range(n_topics)]
    total = n_topics * per_topic
    log(f"propagation: {n_topics} x {per_topic} partitions (RF 1) via node {target}"
        f" (quorum leader {leader}); waiting for every node's Metadata")

    sent = {}       # topic -> (send_s, answer_s, error, message)
    t0 = time.monotonic()
    request_timeout_ms = int(min(max(per_topic * 60, 30000), 300000))
    failed = []

    def sender():
        for t in topics:
            s = time.monotonic() - t0
            try:
                res = H.create_topics_raw(c.node(target).port, [(t, per_topic, 1)],
                                          timeout_ms=request_timeout_ms)
                err, msg = res.get(t, (None, "missing from the response"))
            except Exception as e:  # noqa: BLE001 - recorded
                err, msg = None, f"{type(e).__name__}: {e}"
            sent[t] = (s, time.monotonic() - t0, err, msg)
            if err not in (ERR_NONE, ERR_REQUEST_TIMED_OUT):
                failed.append((t, err, msg))

    th = threading.Thread(target=sender, daemon=True, name="create-sender")
    th.start()
    pending = {i: set(topics) for i in c.broker_ids}
    node_done, topic_done = {}, {i: {} for i in c.broker_ids}
    last_seen = {}
    polls, poll_errors = 0, collections.Counter()
    deadline = t0 + timeout_s
    while pending and not failed:
        for i in list(pending):
            ask = sorted(pending[i])
            try:
                got = metadata_v4(c.node(i).port, ask)["topics"]
            except Exception as e:  # noqa: BLE001 - counted
                poll_errors[f"{type(e).__name__}: {e}"[:120]] += 1
                continue
            now = time.monotonic() - t0
            for t in ask:
                v = got.get(t)
                if v is not None:
                    last_seen[(i, t)] = v[:3]
                if v is not None and v[0] == 0 and v[1] == per_topic and v[2] == per_topic:
                    topic_done[i][t] = now
                    pending[i].discard(t)
            if not pending[i]:
                node_done[i] = now
                del pending[i]
        polls += 1
        if not pending:
            break
        if time.monotonic() >= deadline:
            raise BenchError(
                f"propagation: not every node lists all {total} partitions led within"
                f" {timeout_s:.0f}s; still missing {{node: topics}}"
                f" { {i: len(p) for i, p in pending.items()} }; examples"
                f" { {k: v for k, v in list(last_seen.items())[:6]} }; CreateTopics answers"
                f" { {t: v[2:] for t, v in sent.items()} }; poll errors {dict(poll_errors)}")
        time.sleep(META_POLL_S)
    th.join(max(deadline - time.monotonic(), 1.0) + request_timeout_ms / 1000 + 10)
    if failed:
        raise BenchError(f"propagation: CreateTopics failed: {failed}")
    if th.is_alive():
        raise BenchError("propagation: a CreateTopics did not answer in time")
    all_done = max(node_done.values())
    rtts = [v[1] - v[0] for v in sent.values()]
    last_answer = max(v[1] for v in sent.values())
    lag_after_answer = {t: max(topic_done[i][t] for i in topic_done) - sent[t][1] for t in topics}
    out = {
        "topics": n_topics, "partitions_per_topic": per_topic, "partitions": total,
        "replication_factor": 1, "sent_to": target, "quorum_leader": leader,
        "request_timeout_ms": request_timeout_ms,
        "all_nodes_complete_s": all_done,
        "node_complete_s": node_done,
        "last_create_answer_s": last_answer,
        "after_last_answer_s": all_done - last_answer,
        "create_rtt_s": stats(rtts),
        "create_rtt_sum_s": sum(rtts),
        "creates": {t: {"send_s": v[0], "answer_s": v[1], "rtt_s": v[1] - v[0], "error": v[2],
                        "message": v[3]} for t, v in sent.items()},
        "topic_visible_s": topic_done,
        "topic_visible_everywhere_after_answer_s": stats(list(lag_after_answer.values())),
        "metadata_polls": polls, "metadata_poll_errors": dict(poll_errors),
        "partitions_per_s": total / all_done if all_done > 0 else None,
    }
    # leaders spread (from the controller's view): a sanity figure
    try:
        got = metadata_v4(c.node(target).port, topics[:1])["topics"][topics[0]]
        out["first_topic_check"] = got[:3]
    except Exception as e:  # noqa: BLE001
        out["first_topic_check"] = str(e)
    log(f"propagation: everything led on every node at {all_done:.3f}s (last CreateTopics"
        f" answer at {last_answer:.3f}s; {polls} polling rounds)")
    return c, out


# --------------------------------------------------------------------------- logs

_TS = re.compile(r"^\d{4}-\d\d-\d\dT[\d:.]+Z\s+")
_NUM = re.compile(r"\d+")
_LEVEL = re.compile(r"\b(WARN|ERROR)\b")


def log_offsets(c):
    return {i: os.path.getsize(b.log_path) if os.path.exists(b.log_path) else 0
            for i, b in c.nodes.items()}


def log_summary(c, start=None, end=None):
    """{node: {"WARN": n, "ERROR": n, "kinds": {normalised line: count}}} for
    the byte range [start, end) of each node's broker.log."""
    out = {}
    for i, b in c.nodes.items():
        lo = (start or {}).get(i, 0)
        hi = (end or {}).get(i)
        try:
            with open(b.log_path, "rb") as f:
                f.seek(lo)
                data = f.read() if hi is None else f.read(max(hi - lo, 0))
        except FileNotFoundError:
            continue
        counts = collections.Counter()
        kinds = collections.Counter()
        examples = {}
        for line in data.decode("utf-8", "replace").splitlines():
            m = _LEVEL.search(line[:40])
            if not m:
                continue
            counts[m.group(1)] += 1
            key = _NUM.sub("N", _TS.sub("", line))[:160]
            kinds[key] += 1
            examples.setdefault(key, line[:300])
        out[i] = {"WARN": counts["WARN"], "ERROR": counts["ERROR"],
                  "kinds": dict(kinds.most_common(25)),
                  "examples": [examples[k] for k, _ in kinds.most_common(25)]}
    return out


# --------------------------------------------------------------------------- report

def fmt_s(x):
    return "-" if x is None else f"{x:.3f}"


def print_tables(res):
    print()
    print(f"## Cluster benchmark ({'quick' if res['params']['quick'] else 'full'}), "
          f"{res['meta']['git_commit'][:10]}{' (dirty)' if res['meta']['git_dirty'] else ''}, "
          f"{res['meta']['nproc']} cores")
    bins = res["meta"].get("binaries", {}).get("samsa-broker")
    if bins:
        print()
        print(f"samsa-broker {bins['source']} built {bins['mtime']}, sha256 {bins['sha256'][:12]}")
    fo = res.get("failover") or {}
    if fo:
        print()
        print("### Controller failover (3 combined nodes, kill -9 the active controller)")
        print()
        print("Seconds from kill -9. election/fetch = controller.quorum.election.timeout.ms /"
              " fetch.timeout.ms.")
        print()
        print("| setting | election/fetch ms | metric | n | median | min | max |")
        print("|---|---|---|---:|---:|---:|---:|")
        labels = [("leader_lost_s", "a survivor stops naming the dead leader"),
                  ("new_leader_s", "a survivor reports a NEW quorum leader"),
                  ("agreed_s", "both survivors agree on it"),
                  ("create_ok_s", "CreateTopics via a survivor succeeds (retried)"),
                  ("single_create_s", "one CreateTopics (timeout 30 s) sent at the kill answers"
                                      " OK (n = rounds where it did)"),
                  ("rejoin_s", "(restart of the killed node until it is an unfenced broker"
                               " and a caught-up voter again)")]
        for setting, d in fo.items():
            ov = d["overrides"]
            em = (f"{ov['controller.quorum.election.timeout.ms']}/"
                  f"{ov['controller.quorum.fetch.timeout.ms']}")
            for k, label in labels:
                s = d[k]
                print(f"| {setting} | {em} | {label} | {s['n']} | {fmt_s(s['median'])} |"
                      f" {fmt_s(s['min'])} | {fmt_s(s['max'])} |")
        print()
        print("Per round (s): new leader / retried CreateTopics ok / single CreateTopics"
              " answered (error if not 0) (via node; * = via the new leader)")
        print()
        for setting, d in fo.items():
            cells = []
            for r in d["rounds"]:
                sc = r["single_create"]
                single = f"{sc['answer_s']:.2f}" + ("" if sc["error"] == 0 else f"!{sc['error']}")
                cells.append(f"{r['new_leader_s']:.2f}/{r['create_ok_s']:.2f}/{single}"
                             f"({r['create_via']}{'*' if r['create_via_is_new_leader'] else ''})")
            print(f"- {setting}: " + ", ".join(cells))
            errs = collections.Counter(str(r["single_create"]["error"]) for r in d["rounds"]
                                       if r["single_create"]["error"] != 0)
            if errs:
                print(f"  (the single CreateTopics answered an error instead of succeeding in"
                      f" {sum(errs.values())}/{len(d['rounds'])} rounds: {dict(errs)})")
            splits = sum(1 for r in d["rounds"] if r["new_epoch"] - r["old_epoch"] > 1)
            print(f"  (elections that needed more than one epoch, e.g. a split vote:"
                  f" {splits}/{len(d['rounds'])})")
            on_killed = sum(1 for r in d["rounds"] if r["create_topic_on_killed_node"])
            print(f"  (the RF 1 topic created first after the kill was placed on the killed,"
                  f" not yet fenced node in {on_killed}/{len(d['rounds'])} rounds)")
    pr = res.get("propagation")
    if pr:
        print()
        print(f"### Metadata propagation ({pr['topics']} topics x {pr['partitions_per_topic']:,}"
              f" partitions = {pr['partitions']:,}, RF 1, sent to node {pr['sent_to']})")
        print()
        print("| metric | seconds |")
        print("|---|---:|")
        print(f"| first CreateTopics sent -> every node lists all partitions led |"
              f" {pr['all_nodes_complete_s']:.3f} |")
        for i, t in sorted(pr["node_complete_s"].items()):
            print(f"| ... node {i} complete | {t:.3f} |")
        print(f"| last CreateTopics answered | {pr['last_create_answer_s']:.3f} |")
        print(f"| last answer -> visible everywhere | {pr['after_last_answer_s']:.3f} |")
        r = pr["create_rtt_s"]
        print(f"| CreateTopics round trip ({pr['partitions_per_topic']:,} partitions):"
              f" median / min / max | {r['median']:.3f} / {r['min']:.3f} / {r['max']:.3f} |")
        print(f"| sum of CreateTopics round trips | {pr['create_rtt_sum_s']:.3f} |")
        v = pr["topic_visible_everywhere_after_answer_s"]
        print(f"| per topic: its answer -> led on every node: median / max |"
              f" {v['median']:.3f} / {v['max']:.3f} |")
        print()
        print(f"Throughput: {pr['partitions_per_s']:.0f} partitions/s end to end.")
    logs = res.get("logs") or {}
    if logs:
        print()
        print("### WARN/ERROR lines in broker.log (run / final shutdown)")
        print()
        print("| cluster | node | WARN | ERROR | shutdown WARN | shutdown ERROR |")
        print("|---|---:|---:|---:|---:|---:|")
        for name, d in logs.items():
            for i in sorted(d["run"], key=int):
                a, b = d["run"][i], d["shutdown"].get(i, {"WARN": 0, "ERROR": 0})
                print(f"| {name} | {i} | {a['WARN']} | {a['ERROR']} | {b['WARN']} | {b['ERROR']} |")
        kinds = collections.Counter()
        for d in logs.values():
            for part in ("run", "shutdown"):
                for nd in d[part].values():
                    kinds.update(nd["kinds"])
        if kinds:
            print()
            print("Most frequent (numbers as N):")
            print()
            for k, n in kinds.most_common(12):
                print(f"- {n} x `{k}`")
    if res.get("harness_problems"):
        print()
        print("Harness teardown problems:")
        for p in res["harness_problems"]:
            print(f"- {p.splitlines()[0]}")
    print()


# --------------------------------------------------------------------------- main

def sha256(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def git(*args):
    try:
        return subprocess.run(["git", "-C", REPO] + list(args), capture_output=True, text=True,
                              timeout=20).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return ""


def snapshot_binaries(root):
    """Copy the broker and CLI into root/bin (unless SAMSA_BROKER / SAMSA_CLI
    are set) so a rebuild of bin/ mid-run cannot mix versions."""
    os.makedirs(os.path.join(root, "bin"), exist_ok=True)
    info = {}
    for env, name in (("SAMSA_BROKER", "samsa-broker"), ("SAMSA_CLI", "samsa")):
        src = os.environ.get(env) or os.path.join(REPO, "bin", name)
        if not os.access(src, os.X_OK):
            raise BenchError(f"{src} is missing or not executable (build it first)")
        dst = os.path.join(root, "bin", name)
        shutil.copy2(src, dst)
        os.environ[env] = dst
        st = os.stat(src)
        info[name] = {"source": src, "mtime": time.strftime("%Y-%m-%dT%H:%M:%S",
                                                             time.localtime(st.st_mtime)),
                      "sha256": sha256(dst)}
    return info


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true",
                    help="3 failover rounds per setting and 1,000 partitions")
    ap.add_argument("--json", default=DEFAULT_JSON, help=f"raw samples (default {DEFAULT_JSON})")
    ap.add_argument("--rounds", type=int, help="failover rounds per setting (default 7, quick 3)")
    ap.add_argument("--topics", type=int, default=10, help="propagation: topics (default 10)")
    ap.add_argument("--partitions", type=int,
                    help="propagation: partitions in total (default 10000, quick 1000)")
    ap.add_argument("--only", choices=("failover", "propagation"), help="run one part only")
    ap.add_argument("--keep", action="store_true", help="keep the temporary directory")
    ap.add_argument("--max-minutes", type=float, default=None,
                    help="global watchdog (default 15, quick 6)")
    args = ap.parse_args()
    rounds = args.rounds or (3 if args.quick else 7)
    total = args.partitions or (1000 if args.quick else 10000)
    n_topics = max(1, args.topics)
    per_topic = max(1, total // n_topics)
    max_minutes = args.max_minutes or (6 if args.quick else 15)

    root = tempfile.mkdtemp(prefix="samsa-cluster-bench-")
    clusters, finished = [], set()
    res = {"params": {"quick": args.quick, "rounds": rounds, "topics": n_topics,
                      "partitions_per_topic": per_topic, "quorum_poll_s": QUORUM_POLL_S,
                      "create_probe_every_s": CREATE_PROBE_EVERY_S,
                      "create_probe_timeout_ms": CREATE_PROBE_TIMEOUT_MS,
                      "create_probe_max_inflight": CREATE_PROBE_MAX_INFLIGHT,
                      "metadata_poll_s": META_POLL_S, "settle_s": SETTLE_S},
           "meta": {"git_commit": git("rev-parse", "HEAD"),
                    "git_dirty": bool(git("status", "--porcelain", "--untracked-files=no")),
                    "nproc": os.cpu_count(), "python": platform.python_version(),
                    "host": platform.platform(), "loadavg_start": os.getloadavg(),
                    "started": time.strftime("%Y-%m-%dT%H:%M:%S%z"), "root": root},
           "failover": {}, "logs": {}, "harness_problems": []}
    failed = False

    def on_signal(signum, _frame):
        raise BenchError(f"stopped by signal {signum}"
                         + (" (watchdog: --max-minutes exceeded)" if signum == signal.SIGALRM
                            else ""))
    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGALRM, on_signal)
    signal.alarm(int(max_minutes * 60))

    def close_cluster(name, c):
        """Summarise the logs, stop every node by pid (harness), summarise the shutdown."""
        if id(c) in finished:
            return
        mid, run_part = None, {}
        try:
            mid = log_offsets(c)
            run_part = log_summary(c, end=mid)
        except Exception as e:  # noqa: BLE001 - never skip the teardown for a summary
            log(f"log summary of {name}: {type(e).__name__}: {e}")
        problems = []
        try:
            # the harness prints log tails on failure: keep stdout for the tables
            with contextlib.redirect_stdout(sys.stderr):
                problems = c.finish(failed=failed)
        finally:
            c.kill_all()
            finished.add(id(c))
            res["harness_problems"] += [f"{name}: {p}" for p in problems]
            try:
                res["logs"][name] = {"run": run_part,
                                     "shutdown": log_summary(c, start=mid) if mid else {}}
            except Exception as e:  # noqa: BLE001
                log(f"log summary of {name}: {type(e).__name__}: {e}")

    t_start = time.monotonic()
    try:
        res["meta"]["binaries"] = snapshot_binaries(root)
        sys.path.insert(0, IT_DIR)
        global H, CF
        import cluster as H  # noqa: E402 - after SAMSA_BROKER/SAMSA_CLI are set
        import conftest as CF  # noqa: E402
        log(f"cluster bench: root {root}; rounds {rounds}; propagation {n_topics} x {per_topic}")
        if args.only in (None, "failover"):
            for setting, overrides in SETTINGS:
                c, out = run_failover(root, setting, overrides, rounds, clusters)
                res["failover"][setting] = out
                close_cluster(f"failover-{setting}", c)
        if args.only in (None, "propagation"):
            c, out = run_propagation(root, n_topics, per_topic, clusters,
                                     timeout_s=max(120.0, total * 0.06))
            res["propagation"] = out
            close_cluster("propagation", c)
    except BaseException as e:  # noqa: BLE001 - pytest.fail from the harness is a BaseException
        failed = True
        res["error"] = f"{type(e).__name__}: {e}"
        log(f"FAILED: {res['error']}")
    finally:
        signal.alarm(0)
        for c in clusters:
            name = os.path.basename(c.root)
            try:
                close_cluster(name, c)
            except BaseException as e:  # noqa: BLE001
                log(f"teardown of {name}: {type(e).__name__}: {e}")
                try:
                    c.kill_all()
                except BaseException:  # noqa: BLE001
                    pass
        res["meta"]["loadavg_end"] = os.getloadavg()
        res["meta"]["elapsed_s"] = time.monotonic() - t_start
        if args.json:
            os.makedirs(os.path.dirname(os.path.abspath(args.json)), exist_ok=True)
            with open(args.json, "w") as f:
                json.dump(res, f, indent=1, default=str)
            log(f"raw samples written to {args.json}")
        if failed or args.keep:
            log(f"node directories and logs kept in {root}")
        else:
            shutil.rmtree(root, ignore_errors=True)
    print_tables(res)
    if failed:
        print(f"FAILED: {res['error']}")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
