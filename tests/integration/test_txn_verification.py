"""KIP-890 part 1 (issue #14): before a transactional write opens a
transaction on a partition, the leader asks the transaction coordinator
whether the partition is in the producer's ongoing transaction.

Wire-level: a transactional batch for a partition never added to the
transaction, and a late write after the transaction was aborted, are both
refused (INVALID_TXN_STATE) and leave the last stable offset free; with
`transaction.partition.verification.enable=false` the same late write is
accepted and hangs the partition's LSO, which is the hole the check closes."""
import struct

import pytest

from conftest import (Reader, WireConn, enc_array, enc_str, raw_produce, record_batch,
                      unique_topic, wait_until, confluent_create_topic)

INVALID_TXN_STATE = 48


def init_pid(port, txn_id):
    """InitProducerId v1 for txn_id (retried while the coordinator loads)."""
    out = {}

    def attempt():
        c = WireConn(port)
        try:
            r = Reader(c.request(22, 1, enc_str(txn_id) + struct.pack(">i", 60000)))
        finally:
            c.close()
        r.i32()
        err, pid, epoch = r.i16(), r.i64(), r.i16()
        out.update(err=err, pid=pid, epoch=epoch)
        return err == 0

    wait_until(attempt, timeout_s=30, what=f"InitProducerId for {txn_id}")
    return out["pid"], out["epoch"]


def add_partitions(port, txn_id, pid, epoch, topic, partitions):
    """AddPartitionsToTxn v2 -> {partition: error}."""
    body = enc_str(txn_id) + struct.pack(">qh", pid, epoch)
    body += enc_array([enc_str(topic) + enc_array([struct.pack(">i", p) for p in partitions])])
    c = WireConn(port)
    try:
        r = Reader(c.request(24, 2, body))
    finally:
        c.close()
    r.i32()
    res = {}
    for _ in range(r.i32()):
        r.string()
        for _ in range(r.i32()):
            p, e = r.i32(), r.i16()
            res[p] = e
    return res


def end_txn(port, txn_id, pid, epoch, commit):
    body = enc_str(txn_id) + struct.pack(">qhb", pid, epoch, 1 if commit else 0)
    c = WireConn(port)
    try:
        r = Reader(c.request(26, 2, body))
    finally:
        c.close()
    r.i32()
    return r.i16()


def txn_batch(pid, epoch, seq, value):
    return record_batch([(b"k", value, [])], attributes=0x10, producer_id=pid,
                        producer_epoch=epoch, base_sequence=seq)


def list_offsets(port, topic, partition, isolation):
    """ListOffsets v2 LATEST with the isolation level -> offset."""
    body = struct.pack(">ib", -1, isolation)
    body += enc_array([enc_str(topic) + enc_array([struct.pack(">iq", partition, -1)])])
    c = WireConn(port)
    try:
        r = Reader(c.request(2, 2, body))
    finally:
        c.close()
    r.i32()
    for _ in range(r.i32()):
        r.string()
        for _ in range(r.i32()):
            p, err, ts, off = r.i32(), r.i16(), r.i64(), r.i64()
            assert err == 0, f"ListOffsets error {err}"
            return off
    raise AssertionError("no ListOffsets answer")


def run_late_write(b, topic):
    """A transaction writes, is aborted, then a late write from the same
    producer and epoch arrives. Returns the late write's error."""
    port = b.port
    tid = unique_topic("tid")
    pid, epoch = init_pid(port, tid)
    assert add_partitions(port, tid, pid, epoch, topic, [0]) == {0: 0}
    err, base, _ = raw_produce(port, topic, 0, txn_batch(pid, epoch, 0, b"in-txn"), 8,
                               transactional_id=tid)
    assert err == 0
    assert end_txn(port, tid, pid, epoch, False) == 0
    # the abort marker lands; then the delayed write shows up
    wait_until(lambda: list_offsets(port, topic, 0, 1) == list_offsets(port, topic, 0, 0),
               timeout_s=15, what="abort marker written")
    err, _, _ = raw_produce(port, topic, 0, txn_batch(pid, epoch, 1, b"late"), 8,
                            transactional_id=tid)
    return err


def test_write_to_a_partition_not_in_the_transaction_is_refused(broker):
    topic = unique_topic("kip890")
    confluent_create_topic(broker.bootstrap, topic, 2)
    tid = unique_topic("tid")
    pid, epoch = init_pid(broker.port, tid)
    assert add_partitions(broker.port, tid, pid, epoch, topic, [0]) == {0: 0}
    # partition 1 was never added
    err, base, _ = raw_produce(broker.port, topic, 1, txn_batch(pid, epoch, 0, b"x"), 8,
                               transactional_id=tid)
    assert err == INVALID_TXN_STATE
    end = list_offsets(broker.port, topic, 1, 0)
    assert end == 0 and list_offsets(broker.port, topic, 1, 1) == 0
    # partition 0 was: accepted, and the LSO waits for the transaction
    err, base, _ = raw_produce(broker.port, topic, 0, txn_batch(pid, epoch, 0, b"y"), 8,
                               transactional_id=tid)
    assert err == 0 and base == 0
    assert list_offsets(broker.port, topic, 0, 1) == 0
    assert end_txn(broker.port, tid, pid, epoch, True) == 0
    wait_until(lambda: list_offsets(broker.port, topic, 0, 1) == 2, timeout_s=15,
               what="LSO past the commit marker")


def test_late_write_after_abort_is_refused(broker):
    topic = unique_topic("kip890-late")
    confluent_create_topic(broker.bootstrap, topic, 1)
    assert run_late_write(broker, topic) == INVALID_TXN_STATE
    # nothing was opened: the LSO is the log end
    assert list_offsets(broker.port, topic, 0, 1) == list_offsets(broker.port, topic, 0, 0)


def test_without_verification_the_late_write_hangs_the_lso(broker_factory):
    b = broker_factory(overrides={"transaction.partition.verification.enable": "false"})
    topic = unique_topic("kip890-off")
    confluent_create_topic(b.bootstrap, topic, 1)
    assert run_late_write(b, topic) == 0
    end = list_offsets(b.port, topic, 0, 0)
    assert list_offsets(b.port, topic, 0, 1) < end  # a transaction nobody will close
