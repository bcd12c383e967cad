"""Broker lifecycle on the controller (issue #12): BrokerRegistration,
BrokerHeartbeat and UnregisterBroker over the CONTROLLER listener, spoken by a
hand-written client playing broker 2 of a cluster whose controller (and
broker 1) is a real samsa-broker.

What it proves, the way the cluster's brokers will use it: a registered
broker stays fenced (invisible to clients, given no partitions) until its
heartbeat says it caught up; then it is unfenced, shows in Metadata and gets
replicas and leaderships of new topics; when its heartbeats stop for
broker.session.timeout.ms it is fenced, its leaderships move to the other
in-sync replica and it leaves the ISRs; a controlled shutdown moves leaders
first and tells the broker when it may stop; stale epochs, duplicate ids and
a wrong cluster id are refused; everything survives a controller restart.
"""

import os
import struct
import subprocess
import time
import uuid

import pytest
from confluent_kafka import Producer

from conftest import (REPO, Reader, WireConn, confluent_create_topic, enc_uvarint, unique_topic,
                      wait_until)

SAMSA = os.path.join(REPO, "bin", "samsa")

# Replication factor 2 here exercises the controller's placement and leader
# moves (and real followers since issue #13).
pytestmark = pytest.mark.broker_config(**{"broker.session.timeout.ms": "1500"})


def cstr(s):
    b = s.encode() if isinstance(s, str) else s
    return enc_uvarint(len(b) + 1) + b


def carray(items):
    return enc_uvarint(len(items) + 1) + b"".join(items)


def cluster_id(broker):
    with open(os.path.join(broker.data_dir, "meta.properties")) as f:
        for line in f:
            if line.startswith("cluster.id="):
                return line.strip().split("=", 1)[1]
    raise AssertionError("no cluster.id")


def flex_request(port, key, version, body):
    c = WireConn(port)
    try:
        payload = c.request(key, version, body, flexible=True)
    finally:
        c.close()
    r = Reader(payload)
    assert r.i8() == 0  # response header v1: no tagged fields
    return r


def register(broker, node_id, incarnation, cid=None, port=39999, rack=None):
    listener = cstr("PLAINTEXT") + cstr("127.0.0.1") + struct.pack(">Hh", port, 0) + b"\x00"
    feature = cstr("metadata.version") + struct.pack(">hh", 1, 21) + b"\x00"
    body = (struct.pack(">i", node_id) + cstr(cid or cluster_id(broker)) + incarnation.bytes
            + carray([listener]) + carray([feature])
            + (cstr(rack) if rack else enc_uvarint(0)) + b"\x00")
    r = flex_request(broker.controller_port, 62, 0, body)
    r.i32()
    return r.i16(), r.i64()


def heartbeat(broker, node_id, epoch, offset, want_fence=False, want_shutdown=False):
    body = struct.pack(">iqq??", node_id, epoch, offset, want_fence, want_shutdown) + b"\x00"
    r = flex_request(broker.controller_port, 63, 0, body)
    r.i32()
    err = r.i16()
    caught_up, fenced, shutdown = r.i8(), r.i8(), r.i8()
    return err, bool(caught_up), bool(fenced), bool(shutdown)


def unregister(broker, node_id):
    r = flex_request(broker.controller_port, 64, 0, struct.pack(">i", node_id) + b"\x00")
    r.i32()
    return r.i16()


def metadata(broker, topics=None):
    """Metadata v1 on the client listener -> (broker ids, {partition: (leader, replicas, isr)})."""
    body = struct.pack(">i", -1) if topics is None else (
        struct.pack(">i", len(topics)) + b"".join(struct.pack(">h", len(t)) + t.encode()
                                                   for t in topics))
    c = WireConn(broker.port)
    try:
        r = Reader(c.request(3, 1, body))
    finally:
        c.close()
    ids = set()
    for _ in range(r.i32()):
        ids.add(r.i32())
        r.string(), r.i32(), r.string()
    r.i32()
    parts = {}
    for _ in range(r.i32()):
        r.i16()
        name = r.string()
        r.i8()
        for _ in range(r.i32()):
            r.i16()
            p, leader = r.i32(), r.i32()
            replicas, isr = r.array(r.i32), r.array(r.i32)
            parts[(name, p)] = (leader, sorted(replicas), sorted(isr))
    return ids, parts


def test_registration_heartbeats_fencing_and_leader_moves(broker):
    inc = uuid.uuid4()
    err, epoch = register(broker, 2, inc)
    assert err == 0 and epoch > 0
    # fenced until caught up: clients do not see it
    assert metadata(broker)[0] == {1}
    assert heartbeat(broker, 2, epoch, epoch - 1) == (0, False, True, False)
    assert metadata(broker)[0] == {1}
    assert heartbeat(broker, 2, epoch, epoch) == (0, True, False, False)
    assert metadata(broker)[0] == {1, 2}
    # the quorum shows broker 2 as an observer at the metadata offset it reported
    q = subprocess.run([SAMSA, "-b", broker.bootstrap, "cluster", "quorum", "--replication"],
                       capture_output=True, text=True, timeout=30)
    assert q.returncode == 0, q.stderr
    rows = [line.split("\t") for line in q.stdout.splitlines()[1:]]
    assert [r[0] for r in rows] == ["1", "2"]
    assert rows[0][5] == "Leader" and rows[1][5] == "Observer"
    assert int(rows[1][1]) == epoch + 1  # the offset after the last one it applied

    # refused: a stale epoch, the id taken by another live process, the
    # controller's own id, a foreign cluster id
    assert heartbeat(broker, 2, epoch - 1, epoch)[0] == 77   # STALE_BROKER_EPOCH
    assert register(broker, 2, uuid.uuid4())[0] == 101       # DUPLICATE_BROKER_REGISTRATION
    assert register(broker, 1, uuid.uuid4())[0] == 101
    assert register(broker, 3, uuid.uuid4(), cid="AAAAAAAAAAAAAAAAAAAAAA")[0] == 104
    assert heartbeat(broker, 7, 1, 1)[0] == 109               # BROKER_ID_NOT_REGISTERED

    # new topics are placed on both live brokers; broker 2 leads some partitions
    topic = unique_topic("life")
    confluent_create_topic(broker.bootstrap, topic, 4)  # replication factor: default 1
    from confluent_kafka.admin import AdminClient, NewTopic
    rf2 = unique_topic("life2")
    admin = AdminClient({"bootstrap.servers": broker.bootstrap})
    fs = admin.create_topics([NewTopic(rf2, num_partitions=6, replication_factor=2)])
    fs[rf2].result(30)
    parts = metadata(broker, [rf2])[1]
    assert len(parts) == 6
    assert all(reps == [1, 2] and isr == [1, 2] for _l, reps, isr in parts.values())
    leaders = [leader for leader, _r, _i in parts.values()]
    assert leaders.count(2) == 3 and leaders.count(1) == 3  # striped evenly

    # keep broker 2 alive for a while, then let its session run out
    for _ in range(3):
        assert heartbeat(broker, 2, epoch, epoch)[0] == 0
        time.sleep(0.3)
    wait_until(lambda: metadata(broker)[0] == {1}, timeout_s=15, what="broker 2 fenced")
    parts = wait_until(lambda: (lambda p: p if all(v[0] == 1 for v in p.values()) else None)(
        metadata(broker, [rf2])[1]), timeout_s=10, what="leaders moved to broker 1")
    assert all(isr == [1] and reps == [1, 2] for _l, reps, isr in parts.values())
    assert "broker 2 fenced: no heartbeat" in broker.log_text()

    # every partition takes writes again, on broker 1
    p = Producer({"bootstrap.servers": broker.bootstrap, "acks": "all"})
    delivered = []
    for part in range(6):
        p.produce(rf2, b"after-failover", partition=part,
                  on_delivery=lambda e, m: delivered.append(e))
    p.flush(30)
    assert delivered == [None] * 6

    # it comes back: unfenced, seen again (leaders stay where they are)
    assert heartbeat(broker, 2, epoch, epoch) == (0, True, False, False)
    assert metadata(broker)[0] == {1, 2}

    # controlled shutdown: told to wait until the metadata it must see is applied
    err, caught, fenced, stop = heartbeat(broker, 2, epoch, epoch, want_shutdown=True)
    assert (err, fenced, stop) == (0, False, False)
    err, caught, fenced, stop = heartbeat(broker, 2, epoch, 1 << 40, want_shutdown=True)
    assert (err, fenced, stop) == (0, True, True)
    assert metadata(broker)[0] == {1}

    # the controller restarts: registrations, fencing and partition state are
    # in the metadata log
    broker.restart()
    assert metadata(broker)[0] == {1}
    after = metadata(broker, [rf2])[1]
    assert after == parts
    err, epoch2 = register(broker, 2, inc)
    assert err == 0 and epoch2 > epoch
    assert heartbeat(broker, 2, epoch2, epoch2)[1:3] == (True, False)
    assert metadata(broker)[0] == {1, 2}
    assert unregister(broker, 2) == 0
    assert metadata(broker)[0] == {1}
    assert unregister(broker, 2) == 109


def test_lifecycle_apis_are_not_served_to_clients(broker):
    """BrokerRegistration and BrokerHeartbeat belong to the controller listener."""
    c = WireConn(broker.port)
    try:
        c.send(63, 0, struct.pack(">iqq??", 2, 1, 1, False, False) + b"\x00", flexible=True)
        assert c.closed_by_peer()
    finally:
        c.close()
    assert "api key 63 is not served on the client listener PLAINTEXT" in broker.log_text()
