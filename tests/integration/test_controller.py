"""Metadata changes asked for by clients (CreateTopics, CreatePartitions,
DeleteTopics, and Metadata requests that auto-create topics) run on the
broker's controller thread, not on the event loop
that read them, and a new topic's partitions are opened without holding the
partition table's write lock. So a client creating thousands of partitions
(seconds of directory and file creation) holds up nobody else: connections on
the same event loop and produce requests on every loop are served while it
runs. And a CreateTopics naming hundreds of thousands of topics is answered
in one pass (duplicate names are found by sorting, not by comparing every
pair). A deleted partition's directory is renamed to "<dir>.<hex>-delete" at
once, so a topic created again under the same name keeps its files when the
old partition's last reference (a parked fetch, say) lets go; leftovers of
such renames are removed at the next start.

Raw wire clients (conftest.WireConn), so the test sees exactly which request
was answered when.
"""

import os
import select
import struct

import pytest
from conftest import (Reader, WireConn, confluent_create_topic, enc_array, enc_bytes, enc_str,
                      record_batch, unique_topic, wait_until)

API_PRODUCE, API_METADATA = 0, 3
API_CREATE_TOPICS, API_CREATE_PARTITIONS, API_DELETE_TOPICS = 19, 37, 20
INVALID_PARTITIONS, INVALID_REQUEST = 37, 42


def create_topics_body(topics, timeout_ms=120000):
    """CreateTopics v4 body; topics: [(name, num_partitions)]."""
    items = [enc_str(name) + struct.pack(">ih", n, 1) + enc_array([]) + enc_array([])
             for name, n in topics]
    return enc_array(items) + struct.pack(">ib", timeout_ms, 0)


def read_create_topics(payload):
    """CreateTopics v4 response -> [(name, error_code)]."""
    r = Reader(payload)
    r.i32()  # throttle
    out = []
    for _ in range(r.i32()):
        name = r.string()
        err = r.i16()
        r.string()  # message (nullable)
        out.append((name, err))
    return out


def produce_body(topic, batch):
    body = enc_str(None) + struct.pack(">hi", 1, 15000)
    return body + enc_array([enc_str(topic) + enc_array([struct.pack(">i", 0) + enc_bytes(batch)])])


def produce_error(payload):
    r = Reader(payload)
    r.i32()  # topics
    r.string()
    r.i32()  # partitions
    r.i32()  # index
    return r.i16()


def readable(sock):
    return bool(select.select([sock], [], [], 0)[0])


def served_meanwhile(broker, creator, send):
    """Send a slow request on creator (send(conn) -> correlation id), then,
    round after round, produce once on each of six other connections until
    its answer is readable. Returns (answer payload, produce round trips per
    connection finished before it arrived). Six connections: more than the
    broker's event loops (it deals connections out in turn), so some share
    the creator's loop and every loop has one."""
    busy = unique_topic("busy")
    confluent_create_topic(broker.bootstrap, busy, 1)
    others = [WireConn(broker.port) for _ in range(6)]
    batch = record_batch([(b"k", b"v", [])])
    try:
        corr = send(creator)
        served = [0] * len(others)
        while not readable(creator.sock):
            for i, c in enumerate(others):
                assert produce_error(c.request(API_PRODUCE, 3, produce_body(busy, batch))) == 0
                served[i] += 1
                if readable(creator.sock):
                    break
        rcorr, payload = creator.recv()
        print(f"produce round trips while the request ran: {served}")
        assert rcorr == corr
        return payload, served
    finally:
        for c in others:
            c.close()


def test_wide_create_topics_does_not_stall_other_clients(broker):
    wide = unique_topic("wide")
    nparts = 2000
    creator = WireConn(broker.port, timeout_s=120)
    batch = record_batch([(b"k", b"v", [])])
    try:
        payload, served = served_meanwhile(broker, creator, lambda c: c.send(
            API_CREATE_TOPICS, 4, create_topics_body([(wide, nparts)])))
        assert read_create_topics(payload) == [(wide, 0)]
        assert min(served) >= 3, (
            f"produce round trips per connection while {nparts} partitions were created: "
            f"{served}; a connection sharing the creator's event loop, or all of them, stalled")
        # The new topic's last partition takes writes right away.
        body = enc_str(None) + struct.pack(">hi", 1, 15000) + enc_array(
            [enc_str(wide) + enc_array([struct.pack(">i", nparts - 1) + enc_bytes(batch)])])
        assert produce_error(creator.request(API_PRODUCE, 3, body)) == 0
    finally:
        creator.close()


@pytest.mark.broker_config(**{"auto.create.topics.enable": "true", "num.partitions": "8"})
def test_metadata_auto_creating_many_topics_does_not_stall_other_clients(broker):
    """Metadata v4 naming 250 unknown topics with auto-creation allowed: they
    are created (2,000 partitions) on the controller thread and the answer
    lists them all, while the other connections keep producing."""
    prefix = unique_topic("auto")
    names = [f"{prefix}-{i:03d}" for i in range(250)]
    body = enc_array([enc_str(n) for n in names]) + struct.pack(">b", 1)
    creator = WireConn(broker.port, timeout_s=120)
    try:
        payload, served = served_meanwhile(broker, creator,
                                           lambda c: c.send(API_METADATA, 4, body))
    finally:
        creator.close()
    r = Reader(payload)
    r.i32()  # throttle
    for _ in range(r.i32()):  # brokers: node, host, port, rack
        r.i32()
        r.string()
        r.i32()
        r.string()
    r.string()  # cluster id
    r.i32()  # controller
    got = {}
    for _ in range(r.i32()):
        err = r.i16()
        name = r.string()
        r.i8()  # internal
        nparts = r.i32()
        for _ in range(nparts):  # error, index, leader, replicas, isr
            r.i16()
            r.i32()
            r.i32()
            for _ in range(r.i32()):
                r.i32()
            for _ in range(r.i32()):
                r.i32()
        got[name] = (err, nparts)
    assert got == {n: (0, 8) for n in names}
    assert min(served) >= 3, f"produce round trips per connection meanwhile: {served}"


def test_create_topics_with_many_names_and_a_duplicate(broker):
    """200,000 topics in one request: every one invalid (0 partitions) except
    for the name given twice, which is refused as a duplicate (both times).
    A pairwise duplicate check would compare 2 * 10^10 pairs and not answer
    within the client's timeout."""
    n = 200_000
    prefix = unique_topic("many")
    topics = [(f"{prefix}-{i:06d}", 0) for i in range(n)]
    dup = f"{prefix}-dup"
    topics[1000] = (dup, 3)
    topics[150000] = (dup, 3)
    c = WireConn(broker.port, timeout_s=60)
    try:
        got = read_create_topics(c.request(API_CREATE_TOPICS, 4, create_topics_body(topics)))
    finally:
        c.close()
    assert len(got) == n
    assert got[1000] == (dup, INVALID_REQUEST) and got[150000] == (dup, INVALID_REQUEST)
    others = {err for i, (_, err) in enumerate(got) if i not in (1000, 150000)}
    assert others == {INVALID_PARTITIONS}
    # Nothing was created, and the broker still takes a new topic.
    ok = unique_topic("after-many")
    c = WireConn(broker.port)
    try:
        assert read_create_topics(c.request(API_CREATE_TOPICS, 4,
                                            create_topics_body([(ok, 2)]))) == [(ok, 0)]
    finally:
        c.close()


def test_create_partitions_and_delete_topics_on_the_controller(broker):
    """The other two requests that moved to the controller thread: answered,
    with their effects visible to the next request."""
    t = unique_topic("grow")
    c = WireConn(broker.port, timeout_s=60)
    try:
        assert read_create_topics(c.request(API_CREATE_TOPICS, 4,
                                            create_topics_body([(t, 1)]))) == [(t, 0)]
        # CreatePartitions v1: topics [name, count, assignments (null)], timeout, validate_only
        body = enc_array([enc_str(t) + struct.pack(">ii", 4, -1)]) + struct.pack(">ib", 30000, 0)
        r = Reader(c.request(API_CREATE_PARTITIONS, 1, body))
        r.i32()
        assert r.i32() == 1 and r.string() == t and r.i16() == 0
        batch = record_batch([(b"k", b"v", [])])
        body = enc_str(None) + struct.pack(">hi", 1, 15000) + enc_array(
            [enc_str(t) + enc_array([struct.pack(">i", 3) + enc_bytes(batch)])])
        assert produce_error(c.request(API_PRODUCE, 3, body)) == 0
        # DeleteTopics v1; afterwards a produce to the topic fails.
        r = Reader(c.request(API_DELETE_TOPICS, 1, enc_array([enc_str(t)]) + struct.pack(">i", 30000)))
        r.i32()
        assert r.i32() == 1 and r.string() == t and r.i16() == 0
        assert produce_error(c.request(API_PRODUCE, 3, body)) != 0
    finally:
        c.close()


def fetch_v4_body(topic, offset, max_wait_ms):
    body = struct.pack(">iiiib", -1, max_wait_ms, 1, 1 << 20, 0)
    return body + enc_array([enc_str(topic) + enc_array([struct.pack(">iqi", 0, offset, 1 << 20)])])


def fetch_v4_records(payload):
    """(error_code, high_watermark, record bytes) of the only partition."""
    r = Reader(payload)
    r.i32()  # throttle
    r.i32()  # topics
    r.string()
    r.i32()  # partitions
    r.i32()  # index
    err = r.i16()
    hw = r.i64()
    r.i64()  # last stable offset
    for _ in range(max(r.i32(), 0)):  # aborted transactions
        r.i64()
        r.i64()
    n = r.i32()
    return err, hw, r.buf[r.pos:r.pos + max(n, 0)]


def test_recreated_topic_keeps_its_data_when_old_references_end(broker):
    """A consumer long-polls a topic; the topic is deleted and created again
    under the same name, and written to. When the parked fetch finally lets go
    of the old partition, removing the old partition's files must not touch
    the new partition's (same directory name)."""
    t = unique_topic("again")
    admin = WireConn(broker.port, timeout_s=60)
    poller = WireConn(broker.port, timeout_s=60)
    try:
        assert read_create_topics(admin.request(API_CREATE_TOPICS, 4,
                                                create_topics_body([(t, 1)]))) == [(t, 0)]
        # Parked: nothing to read at offset 0 yet, waits up to 4 s.
        pcorr = poller.send(1, 4, fetch_v4_body(t, 0, 4000))
        r = Reader(admin.request(API_DELETE_TOPICS, 1, enc_array([enc_str(t)]) + struct.pack(">i", 30000)))
        r.i32()
        assert r.i32() == 1 and r.string() == t and r.i16() == 0
        assert read_create_topics(admin.request(API_CREATE_TOPICS, 4,
                                                create_topics_body([(t, 1)]))) == [(t, 0)]
        batch = record_batch([(b"k", b"written to the new topic", [])])
        assert produce_error(admin.request(API_PRODUCE, 3, produce_body(t, batch))) == 0
        rcorr, _ = poller.recv()  # the parked fetch ends (data, error or timeout)
        assert rcorr == pcorr
        err, hw, records = fetch_v4_records(admin.request(1, 4, fetch_v4_body(t, 0, 0)))
        assert err == 0 and hw == 1 and b"written to the new topic" in records
    finally:
        admin.close()
        poller.close()
    # and it is still there after a restart
    broker.restart()
    c = WireConn(broker.port)
    try:
        err, hw, records = fetch_v4_records(c.request(1, 4, fetch_v4_body(t, 0, 0)))
        assert err == 0 and hw == 1 and b"written to the new topic" in records
    finally:
        c.close()


def test_leftovers_of_deletions_are_removed_at_start(broker):
    """A crash between moving a deleted partition aside and removing it leaves
    a "<topic>-<n>.<32 hex>-delete" directory: the next start removes it, and
    nothing else."""
    left = os.path.join(broker.data_dir, "gone-0.0123456789abcdef0123456789abcdef-delete")
    os.makedirs(left)
    with open(os.path.join(left, "00000000000000000000.log"), "wb") as f:
        f.write(b"\0" * 4096)
    # Only that exact form goes: something else that merely ends in -delete stays.
    other = os.path.join(broker.data_dir, "notes-delete")
    os.makedirs(other)
    keep = unique_topic("kept")
    confluent_create_topic(broker.bootstrap, keep, 1)
    broker.restart()
    wait_until(lambda: not os.path.exists(left), 10, what="the -delete directory to go")
    assert os.path.isdir(os.path.join(broker.data_dir, f"{keep}-0"))
    assert os.path.isdir(other)


def test_idempotent_producer_gets_its_id_from_the_controller(broker):
    """InitProducerId (a metadata commit) is answered on the controller
    thread: librdkafka's idempotent producer starts and delivers."""
    from confluent_kafka import Producer
    t = unique_topic("idem")
    confluent_create_topic(broker.bootstrap, t, 1)
    p = Producer({"bootstrap.servers": broker.bootstrap, "enable.idempotence": True,
                  "message.timeout.ms": 20000})
    errs = []
    for i in range(100):
        p.produce(t, value=b"%d" % i, on_delivery=lambda e, m: errs.append(e))
    assert p.flush(25) == 0 and errs == [None] * 100
    c = WireConn(broker.port)
    try:
        err, hw, _ = fetch_v4_records(c.request(1, 4, fetch_v4_body(t, 0, 0)))
        assert err == 0 and hw == 100
    finally:
        c.close()
