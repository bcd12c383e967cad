"""Log compaction (issue #15) with real clients: a compacted topic of 200
keys x 25 updates plus tombstones is reduced by the broker's log cleaner to
about one record per key; a consumer from the beginning sees the latest
value of every live key and nothing for deleted keys, before and after a
restart; aborted transactional values on a compacted topic are removed by
cleaning and never come back."""
import glob
import os
import json
import re
import subprocess
import time
import urllib.request
import uuid

import pytest
from confluent_kafka import Consumer, Producer, TopicPartition
from confluent_kafka.admin import NewTopic

from conftest import SAMSA_CLI, confluent_admin, unique_topic, wait_until

BROKER_CONFIG = {
    "log.cleaner.backoff.ms": "200",
    "log.cleaner.threads": "1",
    "transaction.abort.timed.out.transaction.cleanup.interval.ms": "500",
}

TOPIC_CONFIG = {
    "cleanup.policy": "compact",
    "segment.bytes": "16384",
    "segment.ms": "100",
    "min.cleanable.dirty.ratio": "0.01",
    "delete.retention.ms": "1000",
}

KEYS, UPDATES = 200, 25


@pytest.fixture
def cbroker(broker_factory):
    return broker_factory(overrides=BROKER_CONFIG)


def create_compacted(b, topic, extra=None):
    cfg = dict(TOPIC_CONFIG)
    cfg.update(extra or {})
    admin = confluent_admin(b.bootstrap)
    fs = admin.create_topics([NewTopic(topic, num_partitions=1, replication_factor=1,
                                       config=cfg)], operation_timeout=30, request_timeout=30)
    fs[topic].result(timeout=30)
    wait_until(lambda: topic in admin.list_topics(timeout=5).topics and
               admin.list_topics(timeout=5).topics[topic].partitions[0].leader >= 0,
               30, what=f"topic {topic}")


def read_all(b, topic, isolation="read_uncommitted", timeout_s=20):
    """Every record from the beginning up to the high watermark, as (offset,
    key, value) in order."""
    c = Consumer({"bootstrap.servers": b.bootstrap, "group.id": "g-" + uuid.uuid4().hex[:8],
                  "enable.auto.commit": False, "enable.partition.eof": True,
                  "isolation.level": isolation, "fetch.wait.max.ms": 100})
    out = []
    try:
        c.assign([TopicPartition(topic, 0, 0)])
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            m = c.poll(0.2)
            if m is None:
                continue
            if m.error():
                if m.error().code() == -191:  # _PARTITION_EOF: caught up
                    return out
                continue
            out.append((m.offset(), m.key(), m.value()))
        raise AssertionError(f"no end of partition within {timeout_s}s ({len(out)} read)")
    finally:
        c.close()


def latest(records):
    """What a consumer that applies records in order ends with (tombstones delete)."""
    state = {}
    for _, k, v in records:
        if v is None:
            state.pop(k, None)
        else:
            state[k] = v
    return state


def log_bytes(b, topic):
    return sum(os.path.getsize(p) for p in glob.glob(os.path.join(b.data_dir, f"{topic}-0", "*.log")))


def test_compaction_keeps_latest_value_per_key(cbroker):
    topic = unique_topic("compact")
    create_compacted(cbroker, topic)
    p = Producer({"bootstrap.servers": cbroker.bootstrap, "compression.type": "lz4",
                  "linger.ms": 5})
    expected = {}
    for u in range(UPDATES):
        for k in range(KEYS):
            key, value = f"key-{k}".encode(), f"value-{k}-{u}".encode()
            p.produce(topic, key=key, value=value)
            expected[key] = value
        p.flush(30)
    deleted = [f"key-{k}".encode() for k in range(0, KEYS, 10)]
    for key in deleted:
        p.produce(topic, key=key, value=None)
        expected.pop(key)
    p.flush(30)
    # rolls the last data segment (segment.ms) so that it becomes cleanable
    time.sleep(0.2)
    for i in range(20):
        p.produce(topic, key=f"filler-{i}".encode(), value=b"x")
        p.flush(30)
        time.sleep(0.02)
    for i in range(20):
        expected[f"filler-{i}".encode()] = b"x"
    total = KEYS * UPDATES + len(deleted) + 20

    def reduced():
        recs = read_all(cbroker, topic)
        return recs if len(recs) <= KEYS + len(deleted) + 40 else None
    recs = wait_until(reduced, 90, interval_s=0.5, what="the cleaner to reduce the log")
    assert len(recs) < total
    # 5,000 lz4-compressed records took about 100 KB before cleaning
    assert log_bytes(cbroker, topic) < 30000
    offsets = [o for o, _, _ in recs]
    assert offsets == sorted(set(offsets)), "offsets must stay in order"
    assert offsets[-1] == total - 1, "the last offset is kept"
    state = latest(recs)
    assert state == expected
    for key in deleted:
        assert key not in state

    # tombstones go once delete.retention.ms passed since the first cleaning
    def tombstones_gone():
        r = read_all(cbroker, topic)
        return r if not any(v is None for _, _, v in r) else None
    recs = wait_until(tombstones_gone, 60, interval_s=0.5, what="tombstones to be removed")
    assert latest(recs) == expected

    # the metrics show the cleaning
    text = urllib.request.urlopen(cbroker.metrics_url + "/metrics", timeout=10).read().decode()
    lbl = f'{{topic="{topic}",partition="0"}}'
    last = re.search(r"samsa_log_cleaner_last_clean_time_ms" + re.escape(lbl) + r" (-?\d+)", text)
    ratio = re.search(r"samsa_log_cleaner_dirty_ratio" + re.escape(lbl) + r" ([0-9.]+)", text)
    assert last and int(last.group(1)) > 0, text[-2000:]
    assert ratio and 0 <= float(ratio.group(1)) <= 1
    # and `samsa topic describe --metrics-url` shows them
    out = subprocess.run([SAMSA_CLI, "-b", cbroker.bootstrap, "topic", "describe", topic,
                          "--metrics-url", cbroker.metrics_url], capture_output=True, text=True,
                         timeout=30)
    assert out.returncode == 0, out.stderr
    assert "DIRTY" in out.stdout and "LAST-CLEANED" in out.stdout, out.stdout
    out = subprocess.run([SAMSA_CLI, "-b", cbroker.bootstrap, "--format", "json", "topic",
                          "describe", topic, "--metrics-url", cbroker.metrics_url],
                         capture_output=True, text=True, timeout=30)
    assert out.returncode == 0, out.stderr
    part = json.loads(out.stdout)[0]["partitions"][0]
    assert part["last_clean_ms"] > 0 and 0 <= float(part["dirty_ratio"]) <= 1

    cbroker.restart()
    recs2 = read_all(cbroker, topic)
    assert latest(recs2) == expected
    assert [o for o, _, _ in recs2] == [o for o, _, _ in recs]
    # the log keeps working after a restart: appends and another cleaning
    p2 = Producer({"bootstrap.servers": cbroker.bootstrap})
    for k in range(KEYS):
        key = f"key-{k}".encode()
        if key in expected:
            p2.produce(topic, key=key, value=b"again")
            expected[key] = b"again"
    p2.flush(30)
    wait_until(lambda: latest(read_all(cbroker, topic)) == expected, 30, interval_s=0.5,
               what="the new values")


def test_aborted_values_never_come_back(cbroker):
    topic = unique_topic("compact-txn")
    create_compacted(cbroker, topic)
    p = Producer({"bootstrap.servers": cbroker.bootstrap, "transactional.id": "tx-" + topic,
                  "transaction.timeout.ms": 60000})
    p.init_transactions(30)
    expected = {}
    for round_ in range(6):
        p.begin_transaction()
        for k in range(50):
            key, value = f"k{k}".encode(), f"committed-{k}-{round_}".encode()
            p.produce(topic, key=key, value=value)
            expected[key] = value
        p.commit_transaction(30)
        p.begin_transaction()
        for k in range(50):
            p.produce(topic, key=f"k{k}".encode(), value=b"ABORTED")
        p.flush(30)
        p.abort_transaction(30)
    # more committed data rolls the segments holding the aborted records
    time.sleep(0.2)
    for i in range(10):
        p.begin_transaction()
        p.produce(topic, key=f"f{i}".encode(), value=b"filler")
        p.commit_transaction(30)
        expected[f"f{i}".encode()] = b"filler"
        time.sleep(0.02)

    committed = read_all(cbroker, topic, "read_committed")
    assert latest(committed) == expected
    # read_uncommitted saw the aborted values until the cleaner removed them
    # (it is fast enough that this test cannot look before it runs)

    def cleaned():
        recs = read_all(cbroker, topic)
        return recs if not any(v == b"ABORTED" for _, _, v in recs) else None
    recs = wait_until(cleaned, 90, interval_s=0.5, what="aborted records to be cleaned away")
    assert len(recs) < 6 * 50, "duplicates were removed as well"
    assert latest(recs) == expected
    assert latest(read_all(cbroker, topic, "read_committed")) == expected

    cbroker.restart()
    for iso in ("read_committed", "read_uncommitted"):
        recs = read_all(cbroker, topic, iso)
        assert not any(v == b"ABORTED" for _, _, v in recs)
        assert latest(recs) == expected
    # the transactional producer id still works after cleaning and a restart
    p2 = Producer({"bootstrap.servers": cbroker.bootstrap, "transactional.id": "tx-" + topic})
    p2.init_transactions(30)
    p2.begin_transaction()
    p2.produce(topic, key=b"k0", value=b"after-restart")
    p2.commit_transaction(30)
    expected[b"k0"] = b"after-restart"
    assert latest(read_all(cbroker, topic, "read_committed")) == expected


def test_consumer_offsets_compacted_and_reloaded(broker_factory):
    """__consumer_offsets is compact: with small segments its partition is
    cleaned down to the latest commit per group/partition, and the group
    coordinator still loads the committed offsets after a restart (it
    replays the partition from its start; the gaps are fine)."""
    b = broker_factory(overrides=dict(BROKER_CONFIG, **{
        "offsets.topic.segment.bytes": "2048", "offsets.topic.num.partitions": "1"}))
    topic = unique_topic("src")
    admin = confluent_admin(b.bootstrap)
    admin.create_topics([NewTopic(topic, num_partitions=1, replication_factor=1)])[topic].result(30)
    p = Producer({"bootstrap.servers": b.bootstrap})
    for i in range(300):
        p.produce(topic, value=b"v%d" % i)
    p.flush(30)
    group = "g-" + uuid.uuid4().hex[:8]
    c = Consumer({"bootstrap.servers": b.bootstrap, "group.id": group,
                  "enable.auto.commit": False, "auto.offset.reset": "earliest"})
    c.subscribe([topic])
    committed = 0
    deadline = time.monotonic() + 60
    while committed < 300 and time.monotonic() < deadline:
        m = c.poll(0.5)
        if m is None or m.error():
            continue
        c.commit(message=m, asynchronous=False)  # one commit record per message
        committed = m.offset() + 1
    c.close()
    assert committed == 300
    offsets_dir = os.path.join(b.data_dir, "__consumer_offsets-0")

    def cleaned():
        return os.path.exists(os.path.join(b.data_dir, "cleaner-offset-checkpoint")) and \
            "__consumer_offsets 0" in open(os.path.join(b.data_dir,
                                                        "cleaner-offset-checkpoint")).read()
    wait_until(cleaned, 60, interval_s=0.5, what="__consumer_offsets to be cleaned")
    assert sum(os.path.getsize(f) for f in glob.glob(os.path.join(offsets_dir, "*.log"))) < 300 * 60

    b.restart()
    c = Consumer({"bootstrap.servers": b.bootstrap, "group.id": group,
                  "enable.auto.commit": False})
    try:
        got = wait_until(lambda: c.committed([TopicPartition(topic, 0)], timeout=5)[0].offset
                         == 300 and 300, 30, what="the committed offset after a restart")
        assert got == 300
    finally:
        c.close()
