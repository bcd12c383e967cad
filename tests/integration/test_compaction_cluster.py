"""Log compaction on a 3-node cluster (issue #15: compaction "must work on the
cluster"). Every replica cleans its own copy of a compacted partition; the
leader is killed -9 after cleaning, a follower takes over and serves the
latest value of every key; more updates go to the new leader; the old leader
comes back and fetches over the new leader's compacted range (offsets with
gaps). In the end every replica's log, decoded from its files, gives the same
latest value per key as the producer's own record of what it wrote, and no
value for deleted keys."""
import glob
import json
import os
import subprocess
import time

from confluent_kafka import Producer
from confluent_kafka.admin import NewTopic

from conftest import SAMSA_CLI, confluent_admin, unique_topic, wait_until
from test_compaction import TOPIC_CONFIG, latest, read_all

OVERRIDES = {"log.cleaner.backoff.ms": "200", "log.cleaner.threads": "1"}
KEYS, UPDATES = 100, 20


def seg_files(node, topic):
    return sorted(glob.glob(os.path.join(node.data_dir, f"{topic}-0", "*.log")))


def log_bytes(node, topic):
    return sum(os.path.getsize(p) for p in seg_files(node, topic))


def decoded(node, topic):
    """(offset, key, value) of every record in the node's segment files (offline)."""
    r = subprocess.run([SAMSA_CLI, "dump-log", "--print-data", "--format", "json"] +
                       seg_files(node, topic), capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    out = []
    for doc in json.loads(r.stdout):  # one document per file
        for batch in doc["batches"]:
            if batch["is_control"]:
                continue
            for rec in batch["records"]:
                key = rec["key"].encode() if rec["key_size"] >= 0 else None
                val = rec["payload"].encode() if rec["value_size"] >= 0 else None
                out.append((rec["offset"], key, val))
    return sorted(out)


def produce_round(p, topic, expected, rounds, tag, deletes=()):
    for u in range(rounds):
        for k in range(KEYS):
            key, value = f"key-{k}".encode(), f"{tag}-{k}-{u}".encode()
            p.produce(topic, key=key, value=value)
            expected[key] = value
        assert p.flush(60) == 0
    for key in deletes:
        p.produce(topic, key=key, value=None)
        expected.pop(key, None)
    assert p.flush(60) == 0


def roll(p, topic, expected, n=10):
    """segment.ms is 100 ms: a few spaced records roll the last data segment
    so that it becomes cleanable."""
    time.sleep(0.2)
    for i in range(n):
        p.produce(topic, key=f"filler-{i}".encode(), value=b"x")
        expected[f"filler-{i}".encode()] = b"x"
        assert p.flush(60) == 0
        time.sleep(0.02)


def test_compaction_on_three_replicas_across_failover(cluster_factory):
    cluster = cluster_factory(overrides=OVERRIDES)
    topic = unique_topic("compact3")
    admin = confluent_admin(cluster.bootstrap)
    admin.create_topics([NewTopic(topic, num_partitions=1, replication_factor=3,
                                  config=dict(TOPIC_CONFIG, **{"min.insync.replicas": "2"}))],
                        operation_timeout=30, request_timeout=30)[topic].result(timeout=30)
    leaders = cluster.wait_for_topic(topic, 1, timeout_s=30)
    p = Producer({"bootstrap.servers": cluster.bootstrap, "acks": "all", "linger.ms": 5,
                  "enable.idempotence": True})
    expected = {}
    deleted = [f"key-{k}".encode() for k in range(0, KEYS, 10)]
    produce_round(p, topic, expected, UPDATES, "a", deletes=deleted)
    roll(p, topic, expected)
    written = KEYS * UPDATES + len(deleted) + 10

    # every replica cleans its own copy: each log shrinks well below what was written
    nodes = [cluster.node(i) for i in cluster.live_brokers()]
    full = written * 20  # each record takes more than 20 bytes in a batch
    sizes = {}

    def compacted():
        sizes.update({n.data_dir: log_bytes(n, topic) for n in nodes})
        return all(v < full / 3 for v in sizes.values())
    try:
        wait_until(compacted, 60, what="every replica compacted")
    except AssertionError:
        raise AssertionError(f"not every replica compacted: > {full} bytes written, now {sizes}")

    # the leader dies; a follower serves the compacted log
    leader = leaders[0]
    cluster.kill9(leader)
    # the new leader's high watermark catches up with what it holds a moment after
    # it takes over (its followers' next fetches): until then a read may stop short
    got = []

    def served_all():
        got[:] = read_all_via(cluster.live_bootstrap(), topic)
        return latest(got) == expected
    wait_until(served_all, 30, what="the new leader serving every acknowledged value")
    assert len(got) < written / 3, f"{len(got)} records served of {written} written"

    # more updates to the new leader, cleaned again; the old leader comes back
    # and fetches over the new leader's compacted range
    p2 = Producer({"bootstrap.servers": cluster.live_bootstrap(), "acks": "all",
                   "linger.ms": 5, "enable.idempotence": True})
    produce_round(p2, topic, expected, 5, "b", deletes=[b"key-1", b"key-2"])
    roll(p2, topic, expected)
    cluster.start(leader)
    cluster.wait_for_brokers(3, timeout_s=60)

    def full_isr():
        for i in cluster.live_brokers():
            part = cluster.metadata(i, [topic])["topics"][topic]["partitions"][0]
            if sorted(part["isr"]) != sorted(cluster.live_brokers()):
                return False
        return True
    wait_until(full_isr, 60, what="the restarted replica back in the ISR")
    wait_until(served_all, 30, what="every acknowledged value served after the return")

    # every replica's files, decoded offline after a clean stop, give the same
    # latest state; no deleted key has a value
    for i in list(cluster.live_brokers()):
        cluster.stop(i)
    for n in nodes:
        recs = decoded(n, topic)
        assert latest(recs) == expected, f"replica in {n.data_dir}"
        offsets = [r[0] for r in recs]
        assert offsets == sorted(set(offsets))


class _B:
    def __init__(self, bootstrap):
        self.bootstrap = bootstrap


def read_all_via(bootstrap, topic):
    deadline = time.monotonic() + 60
    while True:
        try:
            return read_all(_B(bootstrap), topic, timeout_s=20)
        except AssertionError:
            if time.monotonic() > deadline:
                raise

