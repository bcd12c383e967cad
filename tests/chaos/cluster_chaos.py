#!/usr/bin/python3
"""Chaos test of a Samsa KRaft cluster (`make chaos`; not part of `make test`).

    /usr/bin/python3 tests/chaos/cluster_chaos.py [--seconds N] [--seed S]
                                                  [--layout combined|split] [--keep]

Starts a cluster with the integration harness (tests/integration/cluster.py):
layout "combined" = 3 combined nodes (broker,controller), layout "split" = 3
controller-only + 3 broker-only nodes. For --seconds it injects a seeded
random schedule of faults, one at a time, with a pause of 1-5 s after each:

  kill9       kill -9 a random node, restart it 1-5 s later
  sigstop     SIGSTOP a random node for 1-6 s, then SIGCONT
  sigterm     SIGTERM a random node (its exit status must be 0), restart it
  kill9x2     kill -9 two controllers at once (quorum lost), restart both 1-5 s later

A fault is over (its node(s) serving again) before the next begins, so at most
two nodes are ever down at once. Meanwhile two workload threads run:

  creator     CreateTopics (raw, v4, 1-3 partitions, rf 1) through a random
              live broker every 1-4 s; each create is recorded as acked
              (error 0), failed (an error answer) or unknown (no answer)
  producer    confluent_kafka Producer (acks=all, enable.idempotence=false,
              message.timeout.ms=10000): ~50 small keyed messages a second to
              the acked topics; every successful delivery report is recorded
              as (topic, partition, offset, value)

Then everything is healed (SIGCONT, start what is down), the script waits for
an agreed quorum leader and every broker unfenced in every broker's Metadata,
and checks:

  (a) every acked topic is in every broker's Metadata with the partition count
      it was created with, every partition led;
  (b) every broker lists the same topic set, and every node (DescribeQuorum
      through `samsa --format json cluster quorum`) the same leader and epoch;
  (c) every acked message reads back at its recorded partition and offset with
      its value;
  (d) no node exited without being killed by this script (also: no restart that
      failed to serve, every SIGTERM exit status 0, including the final
      shutdown), and no ERROR (or sanitizer) line in any node's log that is not
      listed in EXPLAINED_ERRORS below; ERROR/WARN counts per node are printed.

Convergence for (a)/(b) is given a bounded wait after the heal; what is checked is
the state after it. Exit 0 when all hold, 1 (with the seed and the cluster's
directory, kept for the logs) otherwise, 2 on a harness error.

Binaries: $SAMSA_BROKER / $SAMSA_CLI (default bin/samsa-broker, bin/samsa) are
copied to a temporary directory first, so a rebuild during the run does not
change what runs.
"""

import argparse
import collections
import os
import random
import re
import shutil
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

FAULT_WEIGHTS = [("kill9", 3), ("sigstop", 3), ("sigterm", 2), ("kill9x2", 1)]
START_TIMEOUT_S = 60.0
HEAL_TIMEOUT_S = 90.0
CONVERGE_TIMEOUT_S = 30.0

T0 = time.monotonic()


def say(msg):
    print(f"[{time.monotonic() - T0:7.1f}s] {msg}", flush=True)


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
            sys.exit(f"chaos: {path} is missing (make build)")
        dst = os.path.join(bindir, os.path.basename(path))
        shutil.copy2(path, dst)
        os.environ[var] = dst
    return src


# --------------------------------------------------------------------------- workload

class Workload:
    """The creator and producer threads and what they recorded."""

    def __init__(self, cluster, harness, seed):
        self.cluster = cluster
        self.h = harness
        self.seed = seed
        self.stop_ev = threading.Event()
        self.lock = threading.Lock()
        # name -> {"partitions", "status": acked|failed|unknown, "detail", "via"}
        self.topics = collections.OrderedDict()
        self.acked_msgs = []          # (topic, partition, offset, value bytes)
        self.failed_msgs = collections.Counter()   # error name -> count
        self.produced = 0
        self.undelivered_at_end = 0
        self.errors = []              # exceptions inside the workload threads
        self.threads = [threading.Thread(target=self._guard, args=(self._creator, "creator"),
                                         name="creator", daemon=True),
                        threading.Thread(target=self._guard, args=(self._producer, "producer"),
                                         name="producer", daemon=True)]

    def start(self):
        for t in self.threads:
            t.start()

    def stop(self):
        self.stop_ev.set()
        for t in self.threads:
            t.join(timeout=60)
            if t.is_alive():
                self.errors.append(f"workload thread {t.name} did not stop within 60 s")

    def acked_topics(self):
        with self.lock:
            return [(n, t["partitions"]) for n, t in self.topics.items() if t["status"] == "acked"]

    def _guard(self, fn, name):
        try:
            fn()
        except Exception:  # noqa: BLE001 - reported as a harness error
            self.errors.append(f"workload thread {name}: {traceback.format_exc()}")

    def _creator(self):
        rng = random.Random(self.seed * 7919 + 1)
        n = 0
        while not self.stop_ev.is_set():
            live = self.cluster.live_brokers()
            if live:
                n += 1
                name = f"chaos-{self.seed}-{n}"
                parts = rng.randint(1, 3)
                via = rng.choice(live)
                with self.lock:
                    self.topics[name] = {"partitions": parts, "status": "unknown",
                                         "detail": "pending", "via": via}
                try:
                    res = self.h.create_topics_raw(self.cluster.node(via).port,
                                                   [(name, parts, 1)], timeout_ms=5000)
                    err, msg = res.get(name, (None, "topic missing from the answer"))
                    status = "acked" if err == 0 else "failed"
                    detail = f"via node {via}: error {err} {msg or ''}".strip()
                except Exception as e:  # noqa: BLE001 - no answer: outcome unknown
                    status, detail = "unknown", f"via node {via}: {type(e).__name__}: {e}"
                with self.lock:
                    self.topics[name].update(status=status, detail=detail)
            self.stop_ev.wait(rng.uniform(1.0, 4.0))

    def _producer(self):
        from confluent_kafka import Producer
        rng = random.Random(self.seed * 7919 + 2)
        p = Producer({"bootstrap.servers": self.cluster.bootstrap, "acks": "all",
                      "enable.idempotence": False, "message.timeout.ms": 10000,
                      "linger.ms": 5, "client.id": "samsa-chaos", "log_level": 0})

        def delivered(err, msg):
            if err is None:
                with self.lock:
                    self.acked_msgs.append((msg.topic(), msg.partition(), msg.offset(), msg.value()))
            else:
                with self.lock:
                    self.failed_msgs[err.name()] += 1
        seq = 0
        while not self.stop_ev.is_set():
            topics = self.acked_topics()
            for _ in range(10 if topics else 0):
                topic, _parts = rng.choice(topics)
                seq += 1
                try:
                    p.produce(topic, key=f"k{rng.randrange(16)}".encode(),
                              value=f"{topic}#{seq}".encode(), on_delivery=delivered)
                    self.produced += 1
                except BufferError:
                    break
            p.poll(0)  # delivery reports; poll(t) returns early when it served one
            self.stop_ev.wait(0.2)
        self.undelivered_at_end = p.flush(20)


# --------------------------------------------------------------------------- faults

class Chaos:
    def __init__(self, cluster, harness, conftest, layout, seed):
        self.c = cluster
        self.h = harness
        self.ct = conftest
        self.layout = layout
        self.rng = random.Random(seed)
        self.kinds = collections.Counter()
        self.problems = []      # (d): crashes, failed restarts, bad exit statuses
        self.max_down = 0

    # -- process bookkeeping (only this thread signals nodes)

    def check_procs(self, when):
        """A node whose process ended although this script did not kill or stop it."""
        for i, b in self.c.nodes.items():
            if b.proc is None:
                continue
            rc = b.proc.poll()
            if rc is not None:
                b.proc, b.paused = None, False
                self.problems.append(f"node {i} exited by itself with status {rc} ({when})")
                say(f"!! node {i} exited by itself with status {rc}; log tail:\n{b.log_tail(30)}")

    def down(self):
        return [i for i in self.c.ids if not self.c.is_up(i)]

    def note_down(self):
        d = len(self.down())
        self.max_down = max(self.max_down, d)
        if self.layout == "combined" and d > 2:
            self.problems.append(f"harness: {d} nodes down at once (limit 2)")

    def start_nodes(self, ids, why):
        """Launch all, then wait for each to serve (bounded)."""
        for i in ids:
            self.c.node(i).launch()
        for i in ids:
            b = self.c.node(i)
            t0 = time.monotonic()
            try:
                b.wait_ready(START_TIMEOUT_S)
            except self.ct.pytest.fail.Exception as e:
                # wait_ready kills a node that does not serve in time, and sets
                # proc None when it exited during startup
                b.proc, b.paused = None, False
                first = str(e).splitlines()[0]
                self.problems.append(f"node {i}: restart after {why} failed: {first}")
                say(f"!! node {i}: restart after {why} failed: {e}")
                continue
            say(f"   node {i} serving again ({time.monotonic() - t0:.1f}s)")

    def stop_node(self, i):
        rc = self.c.stop(i)
        if rc != 0:
            self.problems.append(f"node {i}: SIGTERM exit status {rc}")
            say(f"!! node {i}: SIGTERM exit status {rc}; log tail:\n{self.c.node(i).log_tail(30)}")
        return rc

    # -- one fault

    def inject(self):
        kind = self.rng.choices([k for k, _ in FAULT_WEIGHTS], [w for _, w in FAULT_WEIGHTS])[0]
        up = [i for i in self.c.ids if self.c.is_up(i)]
        if kind == "kill9x2":
            ctrls = [i for i in self.c.controller_ids if i in up]
            if len(ctrls) < 2:
                kind = "kill9"
        if kind == "kill9x2":
            victims = sorted(self.rng.sample(ctrls, 2))
            delay = self.rng.uniform(1, 5)
            say(f"fault kill9x2: kill -9 controllers {victims} (quorum lost), back in {delay:.1f}s")
            for i in victims:
                self.c.kill9(i)
            self.note_down()
            time.sleep(delay)
            self.check_procs("during kill9x2")
            self.start_nodes(victims, "kill -9")
        else:
            victim = self.rng.choice(up)
            if kind == "kill9":
                delay = self.rng.uniform(1, 5)
                say(f"fault kill9: kill -9 node {victim}, restart in {delay:.1f}s")
                self.c.kill9(victim)
                self.note_down()
                time.sleep(delay)
                self.check_procs("during kill9")
                self.start_nodes([victim], "kill -9")
            elif kind == "sigstop":
                delay = self.rng.uniform(1, 6)
                say(f"fault sigstop: SIGSTOP node {victim} for {delay:.1f}s")
                self.c.sigstop(victim)
                self.note_down()
                time.sleep(delay)
                self.c.sigcont(victim)
                say(f"   node {victim} SIGCONT")
            else:
                delay = self.rng.uniform(0.5, 3)
                say(f"fault sigterm: SIGTERM node {victim}, restart {delay:.1f}s after it exits")
                t0 = time.monotonic()
                rc = self.stop_node(victim)
                say(f"   node {victim} exited {rc} after {time.monotonic() - t0:.1f}s")
                self.note_down()
                time.sleep(delay)
                self.check_procs("during sigterm")
                self.start_nodes([victim], "SIGTERM")
        self.kinds[kind] += 1

    def run(self, seconds):
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            self.check_procs("between faults")
            self.inject()
            self.check_procs("after a fault")
            time.sleep(self.rng.uniform(1, 5))

    # -- heal

    def heal(self):
        self.check_procs("before the heal")
        for i, b in self.c.nodes.items():
            if b.proc is not None and b.paused:
                self.c.sigcont(i)
        dead = [i for i in self.c.ids if self.c.node(i).proc is None]
        if dead:
            say(f"heal: starting nodes {dead}")
            self.start_nodes(dead, "the heal")


# --------------------------------------------------------------------------- checks

def wait_for(pred, timeout_s, interval_s=0.5):
    """Poll pred() -> (ok, detail) until ok or timeout; returns the last (ok, detail)."""
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            ok, detail = pred()
        except Exception as e:  # noqa: BLE001 - kept as the detail
            ok, detail = False, f"{type(e).__name__}: {e}"
        if ok or time.monotonic() >= deadline:
            return ok, detail
        time.sleep(interval_s)


def check_topics(cluster, acked):
    """(a): acked topics everywhere with their partition count, all led."""
    bad = []
    for i in cluster.broker_ids:
        md = cluster.metadata(i)["topics"]
        for name, parts in acked:
            t = md.get(name)
            if t is None or t["error"] != 0:
                bad.append(f"node {i}: acked topic {name} "
                           f"{'missing' if t is None else 'error %d' % t['error']}")
            elif len(t["partitions"]) != parts:
                bad.append(f"node {i}: acked topic {name} has {len(t['partitions'])} partitions,"
                           f" created with {parts}")
            else:
                unled = [p for p, v in t["partitions"].items() if v["leader"] < 0]
                if unled:
                    bad.append(f"node {i}: acked topic {name} partitions {unled} have no leader")
    return not bad, bad


def check_agreement(cluster):
    """(b): same topic set on every broker, same quorum leader/epoch on every node."""
    bad = []
    views = {i: frozenset(cluster.topics_seen(i, internal=True)) for i in cluster.broker_ids}
    if len(set(views.values())) != 1:
        union = frozenset().union(*views.values())
        for i, v in views.items():
            if v != union:
                bad.append(f"node {i} lacks topics {sorted(union - v)}")
    quorum = {}
    for i in cluster.ids:
        q = cluster.quorum(i)
        quorum[i] = (q["leader_id"], q["leader_epoch"])
    if len(set(quorum.values())) != 1 or next(iter(quorum.values()))[0] < 0:
        bad.append(f"quorum (leader, epoch) per node: {quorum}")
    return not bad, (bad or [f"quorum (leader, epoch) {next(iter(quorum.values()))}"
                             f" on all {len(quorum)} nodes; {len(next(iter(views.values())))}"
                             f" topics on all {len(views)} brokers"])


def read_back(cluster, acked_msgs, timeout_s=90):
    """(c): read every partition holding an acked message from the beginning up
    to its high watermark; compare. Returns a list of problems."""
    from confluent_kafka import OFFSET_BEGINNING, Consumer, KafkaError, TopicPartition
    want = {}
    for topic, part, off, value in acked_msgs:
        want[(topic, part, off)] = value
    tps = sorted({(t, p) for t, p, _ in want})
    if not tps:
        return []
    c = Consumer({"bootstrap.servers": cluster.bootstrap, "group.id": "samsa-chaos-verify",
                  "enable.auto.commit": False, "enable.auto.offset.store": False,
                  "enable.partition.eof": True, "fetch.wait.max.ms": 100, "log_level": 0})
    problems = []
    try:
        hw = {}
        for t, p in tps:
            lo, hi = c.get_watermark_offsets(TopicPartition(t, p), timeout=10)
            hw[(t, p)] = (lo, hi)
        c.assign([TopicPartition(t, p, OFFSET_BEGINNING) for t, p in tps])
        got = {}
        remaining = {tp for tp in tps if hw[tp][1] > 0}
        deadline = time.monotonic() + timeout_s
        while remaining and time.monotonic() < deadline:
            for m in c.consume(1000, 1.0):
                tp = (m.topic(), m.partition())
                if m.error():
                    if m.error().code() == KafkaError._PARTITION_EOF:
                        remaining.discard(tp)
                    else:
                        problems.append(f"consume {tp}: {m.error()}")
                    continue
                got[(m.topic(), m.partition(), m.offset())] = m.value()
                if m.offset() >= hw[tp][1] - 1:
                    remaining.discard(tp)
        if remaining:
            problems.append(f"partitions not read to their high watermark in {timeout_s}s:"
                            f" {sorted(remaining)[:10]}")
    finally:
        c.close()
    lost = collections.defaultdict(list)
    for (t, p, off), value in sorted(want.items()):
        have = got.get((t, p, off))
        if have == value:
            continue
        lo, hi = hw[(t, p)]
        if have is None:
            why = ("beyond the high watermark %d" % hi if off >= hi else
                   "below the log start %d" % lo if off < lo else "not returned")
            lost[(t, p)].append(f"offset {off} {value!r}: {why}")
        else:
            lost[(t, p)].append(f"offset {off}: expected {value!r}, read {have!r}")
    for (t, p), items in lost.items():
        problems.append(f"{t}-{p} (log start {hw[(t, p)][0]}, hw {hw[(t, p)][1]}):"
                        f" {len(items)} acked message(s) wrong: " + "; ".join(items[:5])
                        + (" ..." if len(items) > 5 else ""))
    return problems


def log_report(cluster, bad_re):
    """Per node: ERROR / WARN / other bad-line counts; the unexplained ERROR lines."""
    unexplained = []
    explained = collections.Counter()
    warn_kinds = collections.Counter()
    rows = []
    for i in cluster.ids:
        text = cluster.node(i).log_text().splitlines()
        errors = [ln for ln in text if re.search(r"\bERROR\b", ln)]
        warns = [ln for ln in text if re.search(r"\bWARN\b", ln)]
        other_bad = [ln for ln in text if bad_re.search(ln) and ln not in errors]
        rows.append((i, cluster.node(i).kind, len(errors), len(warns), len(other_bad),
                     cluster.node(i).starts))
        for ln in warns:
            body = re.sub(r"^\S+\s+WARN\s+", "", ln)
            warn_kinds[re.sub(r"\d+", "N", body)[:110]] += 1
        for ln in errors + other_bad:
            why = next((w for rx, w in EXPLAINED_ERRORS if re.search(rx, ln)), None)
            if why:
                explained[why] += 1
            else:
                unexplained.append(f"node {i}: {ln}")
    return rows, unexplained, explained, warn_kinds


# --------------------------------------------------------------------------- main

def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--seconds", type=float, default=300)
    ap.add_argument("--seed", type=int, default=None)
    ap.add_argument("--layout", choices=("combined", "split"), default="combined")
    ap.add_argument("--keep", action="store_true", help="keep the cluster directory on success")
    ap.add_argument("--override", action="append", default=[], metavar="KEY=VALUE",
                    help="a server.properties key for every node (repeatable)")
    ap.add_argument("--snapshots", action="store_true",
                    help="snapshot after every change and trim the metadata log behind it, so "
                         "restarted nodes catch up with FetchSnapshot")
    args = ap.parse_args()
    overrides = dict(kv.split("=", 1) for kv in args.override)
    if args.snapshots:
        overrides.update({"metadata.log.max.record.bytes.between.snapshots": "1",
                          "metadata.max.retention.bytes": "1",
                          "metadata.log.segment.bytes": "4096"})
    seed = args.seed if args.seed is not None else random.SystemRandom().randrange(1, 1 << 31)
    repro = (f"/usr/bin/python3 tests/chaos/cluster_chaos.py --seconds {args.seconds:g}"
             f" --seed {seed} --layout {args.layout}"
             + (" --snapshots" if args.snapshots else "")
             + "".join(f" --override {kv}" for kv in args.override))
    tmp = tempfile.mkdtemp(prefix=f"samsa-chaos-{args.layout}-")
    src = stage_binaries(tmp)
    print(f"chaos: layout {args.layout}, {args.seconds:g}s, seed {seed}", flush=True)
    built = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(os.path.getmtime(src["SAMSA_BROKER"])))
    print(f"chaos: binaries {src['SAMSA_BROKER']} (built {built}), {src['SAMSA_CLI']}"
          f" (copied to {tmp}/bin)", flush=True)

    sys.path.insert(0, IT_DIR)
    import conftest  # noqa: E402 - after SAMSA_BROKER/SAMSA_CLI point at the copies
    import cluster as harness  # noqa: E402
    import pytest

    root = os.path.join(tmp, "cluster")
    os.makedirs(root)
    if args.layout == "combined":
        c = harness.Cluster(root, n_combined=3, overrides=overrides)
    else:
        c = harness.Cluster(root, controllers=3, brokers=3, overrides=overrides)
    print(f"chaos: cluster {c.cluster_id} in {root}: "
          + ", ".join(f"{i}={c.kinds[i]}" for i in c.ids), flush=True)

    failures = []
    harness_error = None
    chaos = Chaos(c, harness, conftest, args.layout, seed)
    wl = Workload(c, harness, seed)
    recovered_s = None
    summary = {}
    try:
        try:
            c.start_all(timeout_s=START_TIMEOUT_S)
        except pytest.fail.Exception as e:
            raise RuntimeError(f"cluster did not start: {e}") from None
        leader, epoch = c.wait_for_leader(timeout_s=30)
        say(f"cluster up: quorum leader {leader} epoch {epoch}; workload starts")
        wl.start()
        time.sleep(2)
        chaos.run(args.seconds)
        say("chaos over; stopping the workload (flushing the producer)")
        wl.stop()
        failures += [f"harness: {e}" for e in wl.errors]

        say("heal: SIGCONT / start every node")
        t_heal = time.monotonic()
        chaos.heal()
        try:
            c.wait_for_leader(timeout_s=HEAL_TIMEOUT_S)
        except AssertionError as e:
            failures.append(f"no agreed quorum leader {HEAL_TIMEOUT_S}s after the heal: {e}")
        try:
            c.wait_for_brokers(len(c.broker_ids), timeout_s=HEAL_TIMEOUT_S)
        except AssertionError as e:
            failures.append(f"not every broker unfenced after the heal: {e}")
        recovered_s = time.monotonic() - t_heal
        say(f"healed: leader agreed, all {len(c.broker_ids)} brokers in Metadata"
            f" after {recovered_s:.1f}s")

        acked = wl.acked_topics()
        ok_a, det_a = wait_for(lambda: check_topics(c, acked), CONVERGE_TIMEOUT_S)
        ok_b, det_b = wait_for(lambda: check_agreement(c), CONVERGE_TIMEOUT_S)
        converged_s = time.monotonic() - t_heal
        say(f"(a) acked topics everywhere: {'ok' if ok_a else 'BROKEN'}")
        if not ok_a:
            failures += [f"(a) {d}" for d in det_a]
        say(f"(b) agreement: {'ok' if ok_b else 'BROKEN'}: {'; '.join(det_b)[:300]}")
        if not ok_b:
            failures += [f"(b) {d}" for d in det_b]

        with wl.lock:
            msgs = list(wl.acked_msgs)
        rb = read_back(c, msgs)
        say(f"(c) {len(msgs)} acked messages read back: {'ok' if not rb else 'BROKEN'}")
        failures += [f"(c) {p}" for p in rb]

        with wl.lock:
            statuses = collections.Counter(t["status"] for t in wl.topics.values())
            failed_details = collections.Counter(t["detail"][:150] for t in wl.topics.values()
                                                 if t["status"] != "acked")
            not_acked = [n for n, t in wl.topics.items() if t["status"] != "acked"]
        seen = set()
        try:
            seen = c.topics_seen(c.broker_ids[0])
        except Exception:  # noqa: BLE001 - informational only
            pass
        summary.update(statuses=statuses, failed_details=failed_details,
                       committed_anyway=len([n for n in not_acked if n in seen]),
                       msgs=len(msgs), produced=wl.produced, failed_msgs=dict(wl.failed_msgs),
                       undelivered=wl.undelivered_at_end, converged_s=converged_s)
    except KeyboardInterrupt:
        harness_error = "interrupted"
    except Exception:  # noqa: BLE001 - a harness failure, not an invariant
        harness_error = traceback.format_exc()
    finally:
        wl.stop_ev.set()
        # Final shutdown as Cluster.finish does it (brokers, combined, controllers),
        # keeping each exit status.
        chaos.check_procs("before the final shutdown")
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
                    chaos.problems.append(f"node {i}: final SIGTERM exit status {rc}")

    rows, unexplained, explained, warn_kinds = log_report(c, conftest.BAD_LOG_RE)
    failures += [f"(d) {p}" for p in chaos.problems]
    if unexplained:
        failures.append(f"(d) {len(unexplained)} unexplained ERROR/sanitizer log line(s)")

    print("\n===== chaos summary =====")
    print(f"layout {args.layout}, seed {seed}, {args.seconds:g}s of faults; cluster dir {root}")
    print("faults injected: " + (", ".join(f"{k} {chaos.kinds[k]}" for k, _ in FAULT_WEIGHTS)
                                 + f" (total {sum(chaos.kinds.values())}; at most"
                                 f" {chaos.max_down} node(s) down at once)"))
    if summary:
        st = summary["statuses"]
        print(f"topics: {st['acked']} acked, {st['failed']} failed, {st['unknown']} unknown"
              f" (no answer); {summary['committed_anyway']} of the not-acked exist anyway")
        for d, n in summary["failed_details"].most_common(10):
            print(f"    not acked x{n}: {d}")
        print(f"messages: {summary['produced']} produced, {summary['msgs']} acked,"
              f" failed {summary['failed_msgs'] or 0}, undelivered at flush {summary['undelivered']}")
        print(f"recovery after heal: {recovered_s:.1f}s to an agreed leader and all brokers"
              f" unfenced; {summary['converged_s']:.1f}s to the checks (a)+(b) done")
    print("logs (node kind: ERROR WARN other-bad starts):")
    for i, kind, ne, nw, nb, starts in rows:
        print(f"    node {i} {kind:10s} ERROR {ne:4d}  WARN {nw:5d}  other {nb}  starts {starts}")
    if warn_kinds:
        print("most frequent WARN lines (digits as N):")
        for k, n in warn_kinds.most_common(8):
            print(f"    {n:5d}  {k}")
    for why, n in explained.items():
        print(f"    explained ERROR x{n}: {why}")
    if unexplained:
        print("ERROR / sanitizer lines:")
        for ln in unexplained[:60]:
            print("    " + ln)
        if len(unexplained) > 60:
            print(f"    ... {len(unexplained) - 60} more")
    if harness_error:
        print(f"HARNESS ERROR (seed {seed}):\n{harness_error}")
        print(f"reproduce: {repro}\ncluster dir kept: {root}")
        return 2
    if failures:
        print(f"\nRESULT: FAILED (layout {args.layout}, seed {seed}) - {len(failures)} problem(s):")
        for f in failures[:80]:
            print("  - " + f)
        print(f"reproduce: {repro}\ncluster dir kept: {root}")
        return 1
    print(f"\nRESULT: PASSED (layout {args.layout}, seed {seed})")
    if not args.keep:
        shutil.rmtree(tmp, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
