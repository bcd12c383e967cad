"""Idempotent producers (issue #14): the broker checks every batch's producer
id, epoch and sequence, stores a retried batch once, and keeps that knowledge
across restarts and crashes.

Wire tests build batches by hand so they control producer id, epoch and
sequence; the client tests use librdkafka's idempotent producer."""
import struct
import time

import pytest
from confluent_kafka import Consumer, Producer, TopicPartition

from conftest import (Reader, WireConn, confluent_create_topic, raw_fetch_batches, raw_produce,
                      record_batch, unique_topic)

API_INIT_PRODUCER_ID = 22
OUT_OF_ORDER, INVALID_EPOCH, UNKNOWN_PRODUCER = 45, 47, 59


def init_producer_id(port, txn_id=None, timeout_ms=60000):
    """InitProducerId v1 -> (error, producer id, epoch)."""
    from conftest import enc_str
    c = WireConn(port)
    try:
        r = Reader(c.request(API_INIT_PRODUCER_ID, 1, enc_str(txn_id) + struct.pack(">i", timeout_ms)))
    finally:
        c.close()
    r.i32()  # throttle
    return r.i16(), r.i64(), r.i16()


def batch(pid, epoch, seq, n=1, tag="v"):
    recs = [(b"k%d" % (seq + i), f"{tag}-{seq + i}".encode(), []) for i in range(n)]
    return record_batch(recs, producer_id=pid, producer_epoch=epoch, base_sequence=seq)


def log_end(port, topic):
    err, _hw, bs = raw_fetch_batches(port, topic, 0)
    assert err == 0
    return sum(b["count"] for b in bs), bs


@pytest.fixture
def topic(broker):
    t = unique_topic("idem")
    confluent_create_topic(broker.bootstrap, t, 1)
    return t


def test_same_batch_twice_is_stored_once(broker, topic):
    err, pid, epoch = init_producer_id(broker.port)
    assert err == 0 and pid >= 0 and epoch == 0
    b0 = batch(pid, epoch, 0, n=3)
    assert raw_produce(broker.port, topic, 0, b0, 7)[:2] == (0, 0)
    b1 = batch(pid, epoch, 3, n=2)
    assert raw_produce(broker.port, topic, 0, b1, 7)[:2] == (0, 3)
    # retries of both (the client did not see the answers): original offsets, no new records
    assert raw_produce(broker.port, topic, 0, b1, 7)[:2] == (0, 3)
    assert raw_produce(broker.port, topic, 0, b0, 7)[:2] == (0, 0)
    count, bs = log_end(broker.port, topic)
    assert count == 5 and len(bs) == 2
    # and the next batch in sequence still goes in after them
    assert raw_produce(broker.port, topic, 0, batch(pid, epoch, 5), 7)[:2] == (0, 5)


def test_sequence_gap_is_refused(broker, topic):
    err, pid, epoch = init_producer_id(broker.port)
    assert raw_produce(broker.port, topic, 0, batch(pid, epoch, 0, n=2), 7)[0] == 0
    err, base, _ = raw_produce(broker.port, topic, 0, batch(pid, epoch, 5), 7)
    assert err == OUT_OF_ORDER and base == -1
    assert log_end(broker.port, topic)[0] == 2
    # the right next sequence is accepted
    assert raw_produce(broker.port, topic, 0, batch(pid, epoch, 2), 7)[:2] == (0, 2)


def test_old_epoch_is_fenced_and_new_epoch_restarts_at_zero(broker, topic):
    err, pid, _ = init_producer_id(broker.port)
    assert raw_produce(broker.port, topic, 0, batch(pid, 3, 0), 7)[0] == 0
    assert raw_produce(broker.port, topic, 0, batch(pid, 3, 1), 7)[0] == 0
    assert raw_produce(broker.port, topic, 0, batch(pid, 2, 2), 7)[0] == INVALID_EPOCH
    # a new epoch must start at sequence 0
    assert raw_produce(broker.port, topic, 0, batch(pid, 4, 7), 7)[0] == OUT_OF_ORDER
    assert raw_produce(broker.port, topic, 0, batch(pid, 4, 0), 7)[:2] == (0, 2)
    assert raw_produce(broker.port, topic, 0, batch(pid, 3, 2), 7)[0] == INVALID_EPOCH
    assert log_end(broker.port, topic)[0] == 3


def test_unknown_producer_must_start_at_zero(broker, topic):
    err, pid, epoch = init_producer_id(broker.port)
    assert raw_produce(broker.port, topic, 0, batch(pid, epoch, 9), 7)[0] == UNKNOWN_PRODUCER
    assert log_end(broker.port, topic)[0] == 0


def without_max_timestamp(b):
    """The batch with its maxTimestamp field set to -1 (CRC recomputed), as
    sarama 1.22 sends every batch: it never fills the field in."""
    from conftest import crc32c
    b = bytearray(b)
    struct.pack_into(">q", b, 35, -1)
    struct.pack_into(">I", b, 17, crc32c(bytes(b[21:])))
    return bytes(b)


def test_producer_kept_when_the_client_leaves_max_timestamp_unset(broker, topic):
    err, pid, epoch = init_producer_id(broker.port)
    assert raw_produce(broker.port, topic, 0, without_max_timestamp(batch(pid, epoch, 0)), 7)[0] == 0
    time.sleep(2.5)  # two passes of the broker's once-a-second maintenance
    err, base, _ = raw_produce(broker.port, topic, 0, without_max_timestamp(batch(pid, epoch, 1)), 7)
    assert (err, base) == (0, 1)
    # the stored batches carry their real max timestamp, as Kafka stores them
    from conftest import raw_fetch_batches
    err, hw, batches = raw_fetch_batches(broker.port, topic, 0)
    assert err == 0 and len(batches) == 2
    assert all(b["crc_ok"] and b["max_timestamp"] >= b["base_timestamp"] > 0 for b in batches), \
        batches


@pytest.mark.parametrize("how", ["restart", "kill9"])
def test_producer_state_survives_restart_and_crash(broker, topic, how):
    err, pid, epoch = init_producer_id(broker.port)
    sent = []
    for seq in range(0, 40, 4):
        b = batch(pid, epoch, seq, n=4)
        assert raw_produce(broker.port, topic, 0, b, 7)[0] == 0
        sent.append(b)
    if how == "restart":
        broker.restart()
    else:
        broker.kill9()
        broker.start()
    # the last batch retried after the restart: recognised, not stored again
    assert raw_produce(broker.port, topic, 0, sent[-1], 7)[:2] == (0, 36)
    # a gap is still a gap; an old epoch still fenced
    assert raw_produce(broker.port, topic, 0, batch(pid, epoch, 41), 7)[0] == OUT_OF_ORDER
    assert raw_produce(broker.port, topic, 0, batch(pid, epoch, 40), 7)[:2] == (0, 40)
    assert log_end(broker.port, topic)[0] == 41


def test_snapshot_files_are_written(broker, topic):
    err, pid, epoch = init_producer_id(broker.port)
    assert raw_produce(broker.port, topic, 0, batch(pid, epoch, 0), 7)[0] == 0
    broker.stop()
    import glob
    import os
    snaps = glob.glob(os.path.join(broker.data_dir, f"{topic}-0", "*.snapshot"))
    assert snaps, "no producer snapshot at clean shutdown"
    data = open(sorted(snaps)[-1], "rb").read()
    version, _crc, count = struct.unpack_from(">hIi", data, 0)
    assert version == 1 and count == 1
    spid, sepoch, last_seq, last_off = struct.unpack_from(">qhiq", data, 10)
    assert (spid, sepoch, last_seq, last_off) == (pid, epoch, 0, 0)
    broker.start()


def test_librdkafka_idempotent_producer(broker, topic):
    p = Producer({"bootstrap.servers": broker.bootstrap, "enable.idempotence": True,
                  "linger.ms": 5})
    errors = []
    n = 5000
    for i in range(n):
        p.produce(topic, value=b"m%d" % i, partition=0,
                  on_delivery=lambda e, m: e and errors.append(e))
        if i % 1000 == 0:
            p.poll(0)
    assert p.flush(30) == 0
    assert not errors
    c = Consumer({"bootstrap.servers": broker.bootstrap, "group.id": unique_topic("g"),
                  "auto.offset.reset": "earliest", "enable.auto.commit": False})
    try:
        lo, hi = c.get_watermark_offsets(TopicPartition(topic, 0), timeout=10)
        assert hi - lo == n
    finally:
        c.close()
