"""10,000 partitions on one broker: they are created, serve reads and writes, survive
a graceful restart and a kill -9, and the broker's open file descriptors stay bounded
by the segment file cache (SAMSA_MAX_OPEN_SEGMENTS, here 500 segments = 1,500 fds),
not by the partition count.

Start-up time is printed (pytest -s shows it) but never asserted: the benchmark in
bench/storage_bench.sh measures it properly.
"""

import os
import random
import time

import pytest
from confluent_kafka import Producer

from conftest import confluent_consume_partitions, unique_topic, wait_until

NPART = 10000
BUDGET = 500


def open_fds(pid):
    return len(os.listdir(f"/proc/{pid}/fd"))


def rss_kb(pid):
    with open(f"/proc/{pid}/status") as f:
        for ln in f:
            if ln.startswith("VmRSS:"):
                return int(ln.split()[1])
    return 0


def started_ms(broker, start_no):
    """The broker's own 'started in X ms' line of the given start."""
    text = broker.log_text().split(f"=== start #{start_no}:")[-1]
    for ln in text.splitlines():
        if "started in" in ln:
            return float(ln.split("started in")[1].split("ms")[0])
    return None


@pytest.mark.serial  # heavy: run.sh runs it alone, after the parallel batch
def test_ten_thousand_partitions(broker_factory, monkeypatch):
    monkeypatch.setenv("SAMSA_MAX_OPEN_SEGMENTS", str(BUDGET))
    b = broker_factory(overrides={"num.partitions": "1"})
    topic = unique_topic("scale")
    from confluent_kafka.admin import AdminClient, NewTopic
    # creating 10,000 logs takes seconds on a loaded machine: generous socket timeout
    admin = AdminClient({"bootstrap.servers": b.bootstrap, "socket.timeout.ms": 120000})
    rss0 = rss_kb(b.proc.pid)
    t0 = time.monotonic()
    fs = admin.create_topics([NewTopic(topic, num_partitions=NPART, replication_factor=1)],
                             operation_timeout=60, request_timeout=60)
    fs[topic].result(timeout=120)
    wait_until(lambda: len(admin.list_topics(topic, timeout=10).topics[topic].partitions) == NPART,
               60, what="metadata with 10,000 partitions")
    print(f"\ncreated {NPART} partitions in {time.monotonic() - t0:.1f}s; broker RSS grew by"
          f" {(rss_kb(b.proc.pid) - rss0) * 1024 // NPART} bytes per partition")

    # write to every partition once (one batch each), then more to a sample
    p = Producer({"bootstrap.servers": b.bootstrap, "acks": "1", "linger.ms": 20,
                  "queue.buffering.max.messages": 200000})
    for i in range(NPART):
        p.produce(topic, value=f"p{i}".encode(), partition=i)
        if i % 2000 == 0:
            p.poll(0)
    sample = random.Random(7).sample(range(NPART), 50)
    for i in sample:
        p.produce(topic, value=f"second-{i}".encode(), partition=i)
    assert p.flush(60) == 0
    fds = open_fds(b.proc.pid)
    print(f"open fds after writing every partition: {fds}")
    assert fds < 3 * BUDGET + 300, f"{fds} fds open: the segment file cache is not bounding them"

    got = confluent_consume_partitions(b.bootstrap, topic, sample, 2 * len(sample), timeout_s=60)
    for i in sample:
        assert [m.value() for m in got[i]] == [f"p{i}".encode(), f"second-{i}".encode()]

    b.restart()
    ms = started_ms(b, 2)
    print(f"graceful restart with {NPART} partitions: broker started in {ms} ms,"
          f" RSS {rss_kb(b.proc.pid) // 1024} MB ({rss_kb(b.proc.pid) * 1024 // NPART} bytes per"
          " partition, everything included)")
    assert open_fds(b.proc.pid) < 3 * BUDGET + 300
    got = confluent_consume_partitions(b.bootstrap, topic, sample[:10], 20, timeout_s=60)
    assert all(len(v) == 2 for v in got.values())

    b.kill9()
    b.start()
    ms = started_ms(b, 3)
    print(f"restart after kill -9 with {NPART} partitions: broker started in {ms} ms")
    other = random.Random(8).sample(range(NPART), 20)
    got = confluent_consume_partitions(b.bootstrap, topic, other, 20, timeout_s=60)
    assert all([m.value() for m in got[i]] == [f"p{i}".encode()] for i in other)
