"""__consumer_offsets is created on first use, not at start-up (src/coord/group_coord.c,
section "__consumer_offsets"), as Kafka does.

Why it matters: creating its 50 partitions was most of an empty broker's start-up.
What is checked, with stock clients and raw requests:
  - a fresh broker has no __consumer_offsets directory and Metadata does not list
    it; ListGroups (empty) and DescribeGroups (Dead) answer without creating it
    (admin clients send a FindCoordinator before DescribeGroups, and that creates
    it, as in Kafka); FindCoordinator for a transactional id does not create it;
  - a confluent-kafka group subscribes, consumes and commits on a fresh broker;
    then the topic exists with its 50 partitions; a restart loads it at start-up
    and keeps the commit;
  - the first FindCoordinator waits for the creation and answers NONE rather
    than COORDINATOR_NOT_AVAILABLE (librdkafka would retry that only about a
    second later); several first FindCoordinators racing on both event loops
    (v0, v1, v2) all get the coordinator and the topic is created once;
  - another group API arriving first (Heartbeat) answers COORDINATOR_NOT_AVAILABLE
    and starts the creation;
  - a kafka-python group works on a fresh broker, and offsets.topic.num.partitions
    sets the partition count.
Waits are bounded polls (conftest.wait_until), never bare sleeps.
"""

import os
import struct
import threading

import pytest
from confluent_kafka import Consumer, Producer, TopicPartition

from conftest import (Reader, WireConn, confluent_admin, confluent_create_topic, enc_str,
                      unique_topic, wait_until)

TOPIC = "__consumer_offsets"
FIND_COORDINATOR, HEARTBEAT, DESCRIBE_GROUPS = 10, 12, 15
NONE, COORDINATOR_NOT_AVAILABLE, UNKNOWN_MEMBER_ID = 0, 15, 25


# --------------------------------------------------------------------------- helpers

def offsets_dirs(broker):
    return sorted(d for d in os.listdir(broker.data_dir) if d.startswith(TOPIC + "-"))


def metadata_partitions(bootstrap):
    """Partitions of __consumer_offsets in Metadata, None if it is not listed."""
    t = confluent_admin(bootstrap).list_topics(timeout=10).topics.get(TOPIC)
    return None if t is None else len(t.partitions)


def find_coordinator(port, key, version=1, key_type=0):
    """Raw FindCoordinator v0-v2 -> (error, node_id, port)."""
    body = enc_str(key)
    if version >= 1:
        body += struct.pack(">b", key_type)
    c = WireConn(port, timeout_s=30)
    try:
        r = Reader(c.request(FIND_COORDINATOR, version, body))
    finally:
        c.close()
    if version >= 1:
        r.i32()  # throttle
    err = r.i16()
    if version >= 1:
        r.string()  # error message
    node, _host, cport = r.i32(), r.string(), r.i32()
    return err, node, cport


def heartbeat(port, group):
    """Raw Heartbeat v0 for a member that does not exist -> error code."""
    c = WireConn(port)
    try:
        r = Reader(c.request(HEARTBEAT, 0, enc_str(group) + struct.pack(">i", 1) + enc_str("m")))
    finally:
        c.close()
    return r.i16()


def describe_group(port, group):
    """Raw DescribeGroups v0 of one group -> (error, state, member count)."""
    c = WireConn(port)
    try:
        r = Reader(c.request(DESCRIBE_GROUPS, 0, struct.pack(">i", 1) + enc_str(group)))
    finally:
        c.close()
    assert r.i32() == 1
    err, _gid, state, _ptype, _proto = r.i16(), r.string(), r.string(), r.string(), r.string()
    return err, state, r.i32()


def produce(bootstrap, topic, n, partitions):
    p = Producer({"bootstrap.servers": bootstrap, "linger.ms": 5})
    for i in range(n):
        p.produce(topic, value=str(i).encode(), partition=i % partitions)
    assert p.flush(30) == 0, "producer did not deliver everything"


def assert_absent(broker):
    assert offsets_dirs(broker) == [], f"{TOPIC} created early: {offsets_dirs(broker)[:3]}..."
    assert metadata_partitions(broker.bootstrap) is None, f"Metadata lists {TOPIC}"


# --------------------------------------------------------------------------- tests

def test_fresh_broker_has_no_offsets_topic(broker):
    assert_absent(broker)
    assert "will be created by the first group request" in broker.log_text()
    # Looking at groups does not create it: there are none. (Admin clients
    # describe a group after a FindCoordinator, which does create it, as in
    # Kafka; DescribeGroups itself does not, hence the raw request.)
    admin = confluent_admin(broker.bootstrap)
    assert admin.list_groups(timeout=10) == []
    from kafka import KafkaAdminClient
    kadmin = KafkaAdminClient(bootstrap_servers=broker.bootstrap)
    try:
        assert kadmin.list_consumer_groups() == []
    finally:
        kadmin.close()
    assert describe_group(broker.port, "nobody") == (NONE, "Dead", 0)
    # Nor does a transactional id's coordinator lookup (another topic's business).
    assert find_coordinator(broker.port, "txn-1", key_type=1)[0] == NONE
    # Nor does producing and consuming without a group.
    topic = unique_topic("plain")
    confluent_create_topic(broker.bootstrap, topic, 1)
    produce(broker.bootstrap, topic, 3, 1)
    assert_absent(broker)
    assert "first group request: creating" not in broker.log_text()


def test_confluent_group_creates_topic_and_commit_survives_restart(broker):
    assert_absent(broker)
    topic = unique_topic("lazy")
    confluent_create_topic(broker.bootstrap, topic, 2)
    produce(broker.bootstrap, topic, 10, 2)
    group = unique_topic("g")
    c = Consumer({"bootstrap.servers": broker.bootstrap, "group.id": group,
                  "auto.offset.reset": "earliest", "enable.auto.commit": False,
                  "fetch.wait.max.ms": 100})
    c.subscribe([topic])
    got = []

    def read_all():
        m = c.poll(0.2)
        if m is not None and m.error() is None:
            got.append(m)
        return len(got) >= 10
    wait_until(read_all, 60, interval_s=0, what="the group consumes 10 messages")
    c.commit(asynchronous=False)
    c.close()
    assert len(offsets_dirs(broker)) == 50
    assert metadata_partitions(broker.bootstrap) == 50
    log = broker.log_text()
    assert log.count("first group request: creating " + TOPIC) == 1
    assert f"{TOPIC} ready for the first group: 50 partitions" in log

    broker.restart()
    # Loaded at start-up, as before lazy creation.
    last_start = broker.log_text().split("=== start #2")[-1]
    assert f"group coordinator up: 50 partitions of {TOPIC}" in last_start
    assert "first group request" not in last_start
    c = Consumer({"bootstrap.servers": broker.bootstrap, "group.id": group})
    try:
        res = c.committed([TopicPartition(topic, p) for p in range(2)], timeout=15)
    finally:
        c.close()
    assert {tp.partition: tp.offset for tp in res} == {0: 5, 1: 5}


def test_first_find_coordinator_waits_for_creation(broker):
    """Parked, not COORDINATOR_NOT_AVAILABLE: a client's first lookup succeeds."""
    assert_absent(broker)
    err, node, port = find_coordinator(broker.port, unique_topic("g"), version=0)
    assert (err, node, port) == (NONE, broker.node_id, broker.port)
    # Answered only once the topic was there.
    assert len(offsets_dirs(broker)) == 50
    assert metadata_partitions(broker.bootstrap) == 50


def test_concurrent_first_find_coordinators_create_once(broker):
    assert_absent(broker)
    n = 8
    barrier = threading.Barrier(n)
    results, errors = [None] * n, []
    conns = [WireConn(broker.port, timeout_s=30) for _ in range(n)]  # spread over both loops

    def lookup(i):
        version = i % 3
        body = enc_str(f"race-{i}") + (struct.pack(">b", 0) if version else b"")
        try:
            barrier.wait(10)
            r = Reader(conns[i].request(FIND_COORDINATOR, version, body))
            if version:
                r.i32()
            err = r.i16()
            if version:
                r.string()
            results[i] = (err, r.i32(), r.string(), r.i32())
        except Exception as e:  # noqa: BLE001 - reported below
            errors.append(e)
    threads = [threading.Thread(target=lookup, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    for c in conns:
        c.close()
    assert not errors, errors
    assert all(r == (NONE, broker.node_id, "127.0.0.1", broker.port) for r in results), results
    log = broker.log_text()
    assert log.count("first group request: creating " + TOPIC) == 1
    assert log.count(f"created topic {TOPIC} ") == 1
    assert len(offsets_dirs(broker)) == 50


def test_other_group_api_first_starts_creation(broker):
    assert_absent(broker)
    group = unique_topic("g")
    # No topic yet: not available; the client would look the coordinator up again.
    assert heartbeat(broker.port, group) == COORDINATOR_NOT_AVAILABLE
    wait_until(lambda: metadata_partitions(broker.bootstrap) == 50, 30,
               what=f"{TOPIC} created after a Heartbeat")
    wait_until(lambda: heartbeat(broker.port, group) == UNKNOWN_MEMBER_ID, 30,
               what="the coordinator serves the group")
    assert find_coordinator(broker.port, group)[0] == NONE
    assert broker.log_text().count("first group request: creating " + TOPIC) == 1


@pytest.mark.broker_config(**{"offsets.topic.num.partitions": "5"})
def test_kafka_python_group_on_fresh_broker(broker):
    from kafka import KafkaAdminClient, KafkaConsumer

    assert_absent(broker)
    topic = unique_topic("kpy")
    confluent_create_topic(broker.bootstrap, topic, 3)
    produce(broker.bootstrap, topic, 12, 3)
    group = unique_topic("g")
    c = KafkaConsumer(topic, bootstrap_servers=broker.bootstrap, group_id=group,
                      auto_offset_reset="earliest", enable_auto_commit=False,
                      consumer_timeout_ms=500)
    got = []
    try:
        wait_until(lambda: got.extend(m.value for m in c) or len(got) >= 12, 60, interval_s=0,
                   what="kafka-python reads 12 messages")
        c.commit()
    finally:
        c.close()
    assert offsets_dirs(broker) == [f"{TOPIC}-{p}" for p in range(5)]
    assert metadata_partitions(broker.bootstrap) == 5
    admin = KafkaAdminClient(bootstrap_servers=broker.bootstrap)
    try:
        offs = admin.list_consumer_group_offsets(group)
    finally:
        admin.close()
    assert sorted((tp.partition, om.offset) for tp, om in offs.items()) == [(0, 4), (1, 4), (2, 4)]
