#!/usr/bin/env python3
"""Consumer-group benchmarks (issue #4): rebalance time for 10 members and
offset commits per second, against a real samsa-broker started here.

Run with Debian's Python (confluent-kafka): /usr/bin/python3 bench/groups_bench.py
It rewrites the "## Consumer groups" section of docs/PERFORMANCE.md.
Figures are medians of repeated runs; never used as test assertions."""

import os
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time

from confluent_kafka import Consumer, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BROKER = os.environ.get("SAMSA_BROKER", os.path.join(REPO, "bin", "samsa-broker"))
RUNS = int(os.environ.get("GROUPS_BENCH_RUNS", "5"))


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_broker(workdir, delay_ms):
    port, cport = free_port(), free_port()
    args = [BROKER, os.path.join(REPO, "config", "server.properties"),
            "--override", f"log.dirs={workdir}/data",
            "--override", f"listeners=PLAINTEXT://127.0.0.1:{port},CONTROLLER://127.0.0.1:{cport}",
            "--override", f"advertised.listeners=PLAINTEXT://127.0.0.1:{port}",
            "--override", f"controller.quorum.voters=1@127.0.0.1:{cport}",
            "--override", f"metrics.listener=http://127.0.0.1:{free_port()}",
            "--override", f"group.initial.rebalance.delay.ms={delay_ms}"]
    log = open(os.path.join(workdir, "broker.log"), "w")
    proc = subprocess.Popen(args, stdout=log, stderr=log)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return proc, f"127.0.0.1:{port}"
        except OSError:
            time.sleep(0.02)
    proc.kill()
    raise RuntimeError("broker did not start")


def rebalance_time(bootstrap, topic, members=10):
    """Seconds from the first subscribe until every member holds an assignment
    and together they cover every partition exactly once."""
    group = f"g-{time.monotonic_ns()}"
    consumers = [Consumer({"bootstrap.servers": bootstrap, "group.id": group,
                           "session.timeout.ms": 10000, "enable.auto.commit": False})
                 for _ in range(members)]
    assigned = [set() for _ in range(members)]
    stop = threading.Event()

    def run(i):
        c = consumers[i]

        def on_assign(_c, parts):
            assigned[i] = {p.partition for p in parts}

        c.subscribe([topic], on_assign=on_assign)
        while not stop.is_set():
            c.poll(0.05)

    t0 = time.monotonic()
    threads = [threading.Thread(target=run, args=(i,)) for i in range(members)]
    for t in threads:
        t.start()
    elapsed = None
    while time.monotonic() - t0 < 60:
        sets = list(assigned)
        if all(sets) and sum(len(s) for s in sets) == 20 and len(set().union(*sets)) == 20:
            elapsed = time.monotonic() - t0
            break
        time.sleep(0.005)
    stop.set()
    for t in threads:
        t.join()
    for c in consumers:
        c.close()
    return elapsed


def commits_per_second(bootstrap, topic, n=3000, asynchronous=False):
    c = Consumer({"bootstrap.servers": bootstrap, "group.id": f"c-{time.monotonic_ns()}",
                  "enable.auto.commit": False})
    tp = [TopicPartition(topic, 0, 0)]
    c.assign(tp)
    t0 = time.monotonic()
    for i in range(n):
        c.commit(offsets=[TopicPartition(topic, i % 20, i + 1)], asynchronous=asynchronous)
        if asynchronous and i % 200 == 0:
            c.poll(0)
    if asynchronous:
        # Wait until the last commit is visible.
        while c.committed([TopicPartition(topic, (n - 1) % 20)], timeout=10)[0].offset != n:
            c.poll(0.01)
    dt = time.monotonic() - t0
    c.close()
    return n / dt


def main():
    results = {}
    for delay in (0, 3000):
        workdir = tempfile.mkdtemp(prefix="samsa-groups-bench-")
        proc, bs = start_broker(workdir, delay)
        try:
            admin = AdminClient({"bootstrap.servers": bs})
            admin.create_topics([NewTopic("gb", 20, 1)])["gb"].result(30)
            times = [rebalance_time(bs, "gb") for _ in range(RUNS if delay == 0 else 2)]
            results[f"rebalance_{delay}"] = times
            if delay == 0:
                results["sync_commits"] = [commits_per_second(bs, "gb") for _ in range(3)]
                results["async_commits"] = [commits_per_second(bs, "gb", 20000, True)
                                            for _ in range(3)]
        finally:
            proc.send_signal(signal.SIGTERM)
            proc.wait(30)
            shutil.rmtree(workdir, ignore_errors=True)

    med = lambda xs: statistics.median([x for x in xs if x is not None]) if any(
        x is not None for x in xs) else float("nan")
    cpu = open("/proc/cpuinfo").read()
    model = re.search(r"model name\s*:\s*(.*)", cpu)
    section = f"""## Consumer groups

Measured by `bench/groups_bench.py` ({time.strftime('%Y-%m-%d')}, {os.cpu_count()} cores,
{model.group(1) if model else 'unknown CPU'}), confluent-kafka-python (librdkafka 2.0.2) against one
samsa-broker on loopback; a topic of 20 partitions.

| what | median | runs |
| --- | --- | --- |
| rebalance, 10 members, first subscribe to all assigned (group.initial.rebalance.delay.ms=0) | {med(results['rebalance_0']) * 1000:.0f} ms | {len(results['rebalance_0'])} |
| same with Kafka's default delay (3000 ms) | {med(results['rebalance_3000']) * 1000:.0f} ms | {len(results['rebalance_3000'])} |
| synchronous offset commits (one in flight) | {med(results['sync_commits']):,.0f} commits/s | 3 |
| asynchronous offset commits (pipelined) | {med(results['async_commits']):,.0f} commits/s | 3 |

Where the time goes: with a delay of 0, the first member's generation completes alone and the
nine others are admitted in the next generation, which waits until every member has rejoined,
i.e. until the first member's next heartbeat (librdkafka's heartbeat.interval.ms, 3 s). With
Kafka's default delay, the coordinator waits 3 s and, because members joined during that window,
extends the wait once more (as Kafka's delayed initial join does), then completes one generation
with all ten. Every commit is appended to `__consumer_offsets` before it is answered.
"""
    path = os.path.join(REPO, "docs", "PERFORMANCE.md")
    doc = open(path).read()
    doc = re.sub(r"## Consumer groups\n.*?(?=\n## |\Z)", section.rstrip() + "\n", doc, flags=re.S)
    open(path, "w").write(doc)
    print(section)


if __name__ == "__main__":
    sys.exit(main())
