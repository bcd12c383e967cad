#!/usr/bin/env python3
"""Replication benchmark (issue #13): what replicated partitions cost and how
fast they recover, on this machine, in one run.

    /usr/bin/python3 bench/repl_bench.py [--quick] [--pairs N] [--json FILE] [--keep]

Uses the integration harness (tests/integration/cluster.py) on loopback with a
private copy of bin/samsa-broker and bin/samsa (a rebuild during the run cannot
mix binaries); every process is stopped by pid at the end.

Measures, side by side:
 1. produce throughput: `samsa perf produce` (librdkafka, 1 KiB messages,
    6 partitions, linger 5 ms) with acks=all to an RF=3 topic on 3 combined
    nodes (min.insync.replicas=2), against acks=1 to an RF=1 topic on 1 node;
    and acks=1 to the RF=3 topic (what waiting for the ISR costs on the same
    three nodes); in turn, N rounds (3; --quick 1); medians and the ratio
    (goal >= 70%). All processes share this machine's cores and disk.
 2. end-to-end latency at 2,000 msgs/s, acks=all, RF=3 (`samsa perf e2e`,
    produce to consume through the high watermark): p50 / p99 / p99.9 (goal
    p99 < 5 ms), with the RF=1 acks=1 single node beside it.
 3. failover: a producer (confluent-kafka, acks=all, retry.backoff.ms 20)
    writes to partition 0 every 5 ms; kill -9 of its leader; the time from the
    kill to the first acknowledgement of a record produced after the kill.
    Once with Kafka's default broker.session.timeout.ms (9000 ms, heartbeat
    2000 ms) and once with 1500 / 250 ms (a dead broker is noticed only
    through its missing heartbeats, as in Kafka). Rounds: 3 (--quick 1).
 4. follower catch-up: one follower is stopped (SIGTERM), 1 GiB (--quick
    128 MiB) is produced acks=all to an RF=3 topic of 6 partitions, the
    follower restarts; the time from its start to the ISR holding all three
    replicas of every partition again, and the catch-up rate.
"""

import argparse
import json
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
IT_DIR = os.path.join(REPO, "tests", "integration")


def snapshot_bins(root):
    d = os.path.join(root, "bin")
    os.makedirs(d, exist_ok=True)
    for env, name in (("SAMSA_BROKER", "samsa-broker"), ("SAMSA_CLI", "samsa")):
        src = os.environ.get(env) or os.path.join(REPO, "bin", name)
        dst = os.path.join(d, name)
        shutil.copy2(src, dst)
        os.environ[env] = dst
    return os.path.join(d, "samsa")


def perf(cli, args, timeout=900):
    r = subprocess.run([cli, "--format", "json", "perf"] + args, capture_output=True, text=True,
                       timeout=timeout)
    if r.returncode != 0:
        raise RuntimeError(f"samsa perf {args}: {r.returncode} {r.stderr[-2000:]}")
    return json.loads(r.stdout.strip().splitlines()[-1])


def med(v):
    return statistics.median(v) if v else float("nan")


class Run:
    def __init__(self, root, quick, keep):
        self.root, self.quick, self.keep = root, quick, keep
        self.made = []

    def cluster(self, n, overrides=None, controllers=0):
        """n combined nodes, or (controllers > 0) that many controller-only
        nodes and n broker-only ones."""
        import cluster as H
        d = tempfile.mkdtemp(prefix=f"c{n}-", dir=self.root)
        props = {"min.insync.replicas": "2" if n >= 3 else "1",
                 "offsets.topic.replication.factor": str(min(n, 3)),
                 "log.retention.bytes": "-1"}
        props.update(overrides or {})
        c = H.Cluster(d, 0 if controllers else n, controllers=controllers,
                      brokers=n if controllers else 0, overrides=props)
        self.made.append(c)
        c.start_all()
        return c

    def done(self, c):
        c.finish(False)
        self.made.remove(c)
        if not self.keep:
            shutil.rmtree(c.root, ignore_errors=True)

    def close(self):
        for c in list(self.made):
            try:
                c.finish(True)
            except Exception as e:  # noqa: BLE001 - best effort on the way out
                print("cleanup:", e)


def wait_isr_all(c, topic, parts, size, timeout_s, via):
    from conftest import wait_until

    def ok():
        t = c.metadata(via, [topic])["topics"].get(topic)
        return t is not None and all(len(t["partitions"][p]["isr"]) == size for p in range(parts))
    wait_until(ok, timeout_s, interval_s=0.05, what=f"ISR of {size} on {topic}")


def bench_throughput(run, cli, pairs, n_msgs):
    kinds = ("rf3_acks_all", "rf1_acks_1", "rf3_acks_1")
    rows = {k: [] for k in kinds}
    lat = {k: [] for k in kinds}
    for i in range(pairs):
        for kind in kinds:
            c = run.cluster(3 if kind.startswith("rf3") else 1)
            topic = f"tp-{kind}-{i}"
            c.create_topic(topic, partitions=6, rf=3 if kind.startswith("rf3") else 1)
            if kind.startswith("rf3"):
                wait_isr_all(c, topic, 6, 3, 30, c.broker_ids[0])
            out = perf(cli, ["produce", topic, "-b", c.bootstrap, "-n", str(n_msgs), "-s", "1024",
                             "--acks", "all" if kind.endswith("all") else "1"])
            rows[kind].append(out["mb_per_sec"])
            lat[kind].append(out.get("latency_ms", {}).get("p99", float("nan")))
            print(f"  produce {kind} pair {i}: {out['mb_per_sec']:.1f} MB/s "
                  f"({out['msgs_per_sec']:.0f} msgs/s, errors {out['errors']})", flush=True)
            run.done(c)
    a, b = med(rows["rf3_acks_all"]), med(rows["rf1_acks_1"])
    return {"rf3_acks_all_mb_s": rows["rf3_acks_all"], "rf1_acks_1_mb_s": rows["rf1_acks_1"],
            "rf3_acks_1_mb_s": rows["rf3_acks_1"], "median_rf3": a, "median_rf1": b,
            "median_rf3_acks_1": med(rows["rf3_acks_1"]), "ratio": a / b if b else float("nan")}


def bench_e2e(run, cli, n_msgs):
    res = {}
    for kind in ("rf3_acks_all", "rf1_acks_1"):
        c = run.cluster(3 if kind.startswith("rf3") else 1)
        topic = f"e2e-{kind}"
        c.create_topic(topic, partitions=1, rf=3 if kind.startswith("rf3") else 1)
        if kind.startswith("rf3"):
            wait_isr_all(c, topic, 1, 3, 30, c.broker_ids[0])
        out = perf(cli, ["e2e", topic, "-b", c.bootstrap, "-n", str(n_msgs), "--rate", "2000",
                         "-s", "100", "--acks", "all" if kind.startswith("rf3") else "1"])
        res[kind] = out["latency_ms"]
        print(f"  e2e {kind}: p50 {out['latency_ms']['p50']:.2f} ms, p99 "
              f"{out['latency_ms']['p99']:.2f} ms, p99.9 {out['latency_ms']['p99_9']:.2f} ms",
              flush=True)
        run.done(c)
    return res


def bench_failover(run, rounds, session_ms, heartbeat_ms):
    from confluent_kafka import Producer
    times = []
    for r in range(rounds):
        # a dedicated controller: the kill takes a partition leader only
        # (in combined mode it may also take the active controller, and the
        # new one first waits out the dead broker's whole session)
        c = run.cluster(3, {"broker.session.timeout.ms": str(session_ms),
                            "broker.heartbeat.interval.ms": str(heartbeat_ms)}, controllers=1)
        topic = f"fo-{r}"
        c.create_topic(topic, partitions=1, rf=3)
        via = c.broker_ids[0]
        wait_isr_all(c, topic, 1, 3, 30, via)
        leader = c.metadata(via, [topic])["topics"][topic]["partitions"][0]["leader"]
        p = Producer({"bootstrap.servers": c.bootstrap, "acks": "all", "linger.ms": 0,
                      "retry.backoff.ms": 20, "message.timeout.ms": 60000,
                      "topic.metadata.refresh.interval.ms": 100,
                      "reconnect.backoff.max.ms": 100})
        acked = []
        p.produce(topic, b"warm", partition=0,
                  on_delivery=lambda e, m: acked.append((time.monotonic(), e)))
        p.flush(10)
        t_kill = None
        first = None
        c.kill9(leader)
        t_kill = time.monotonic()
        deadline = t_kill + 60
        while first is None and time.monotonic() < deadline:
            sent_at = time.monotonic()
            p.produce(topic, b"after", partition=0,
                      on_delivery=lambda e, m, s=sent_at: acked.append((time.monotonic(), e, s)))
            p.poll(0.005)
            for a in acked:
                if len(a) == 3 and a[1] is None and a[2] >= t_kill:
                    first = a[0]
                    break
        p.flush(30)
        if first is None:
            raise RuntimeError("no acknowledgement within 60 s after the kill")
        times.append(first - t_kill)
        print(f"  failover (session {session_ms} ms) round {r}: {first - t_kill:.2f} s",
              flush=True)
        run.done(c)
    return {"session_ms": session_ms, "heartbeat_ms": heartbeat_ms, "seconds": times,
            "median_s": med(times)}


def bench_catchup(run, cli, total_mb):
    c = run.cluster(3)
    topic = "catchup"
    c.create_topic(topic, partitions=6, rf=3)
    via = c.broker_ids[0]
    wait_isr_all(c, topic, 6, 3, 30, via)
    victim = c.broker_ids[-1]
    c.stop(victim)
    via = c.live_brokers()[0]
    n = total_mb * 1024
    boot = ",".join(c.node(i).bootstrap for i in c.live_brokers())
    out = perf(cli, ["produce", topic, "-b", boot, "-n", str(n), "-s", "1024", "--acks", "all"])
    print(f"  catch-up: {out['mb_per_sec']:.1f} MB/s produced with the follower down", flush=True)
    t0 = time.monotonic()
    c.start(victim)
    t_up = time.monotonic()
    wait_isr_all(c, topic, 6, 3, 600, via)
    t1 = time.monotonic()
    res = {"mib": total_mb, "rejoin_s_from_start": t1 - t0, "rejoin_s_from_serving": t1 - t_up,
           "catchup_mb_s": total_mb / max(t1 - t_up, 1e-9)}
    print(f"  catch-up of {total_mb} MiB: ISR complete {t1 - t0:.2f} s after the start "
          f"({t1 - t_up:.2f} s after it served; {res['catchup_mb_s']:.0f} MiB/s)", flush=True)
    run.done(c)
    return res


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--pairs", type=int, default=None)
    ap.add_argument("--only", default="throughput,e2e,failover,catchup")
    ap.add_argument("--json", default=None)
    ap.add_argument("--keep", action="store_true")
    a = ap.parse_args()
    root = tempfile.mkdtemp(prefix="samsa-repl-bench-")
    cli = snapshot_bins(root)
    sys.path.insert(0, IT_DIR)
    run = Run(root, a.quick, a.keep)
    only = set(a.only.split(","))
    pairs = a.pairs or (1 if a.quick else 3)
    res = {}
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(1))
    try:
        if "throughput" in only:
            print("== produce throughput: acks=all RF=3 (3 nodes) vs acks=1 RF=1 (1 node)")
            res["throughput"] = bench_throughput(run, cli, pairs, 50000 if a.quick else 500000)
            t = res["throughput"]
            print(f"  medians: RF3 acks=all {t['median_rf3']:.1f} MB/s, RF1 acks=1 "
                  f"{t['median_rf1']:.1f} MB/s, ratio {t['ratio'] * 100:.0f}%", flush=True)
        if "e2e" in only:
            print("== end-to-end latency at 2000 msgs/s")
            res["e2e"] = bench_e2e(run, cli, 6000 if a.quick else 20000)
        if "failover" in only:
            print("== leader failover after kill -9 (to the next acknowledged produce)")
            rounds = 1 if a.quick else 3
            res["failover_default"] = bench_failover(run, rounds, 9000, 2000)
            res["failover_fast"] = bench_failover(run, rounds, 1500, 250)
        if "catchup" in only:
            print("== restarted follower catching up")
            res["catchup"] = bench_catchup(run, cli, 128 if a.quick else 1024)
    finally:
        run.close()
        if not a.keep:
            shutil.rmtree(root, ignore_errors=True)
    if a.json:
        with open(a.json, "w") as f:
            json.dump(res, f, indent=1)
    print(json.dumps(res, indent=1))


if __name__ == "__main__":
    main()
