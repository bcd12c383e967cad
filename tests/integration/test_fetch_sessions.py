"""Incremental fetch sessions (KIP-227) over the raw wire, Fetch v11.

A full fetch with epoch 0 creates a session; incremental fetches carry only
changed partitions and get back only partitions with news; wrong epochs and
unknown sessions are refused; forgotten partitions leave the session; epoch
-1 closes it."""

import struct

from confluent_kafka import Producer

from conftest import (Reader, WireConn, confluent_create_topic, enc_array, enc_str,
                      parse_record_batches, unique_topic, wait_until)

FETCH = 1


def fetch_v11(conn, session_id, epoch, parts, forgotten=(), max_wait_ms=0):
    """parts: [(topic, partition, offset)]; forgotten: [(topic, [partitions])]."""
    by_topic = {}
    for t, p, off in parts:
        by_topic.setdefault(t, []).append(struct.pack(">iiqqi", p, -1, off, -1, 1 << 20))
    topics = [enc_str(t) + enc_array(ps) for t, ps in by_topic.items()]
    forg = [enc_str(t) + enc_array([struct.pack(">i", p) for p in ps]) for t, ps in forgotten]
    body = (struct.pack(">iiiibii", -1, max_wait_ms, 1, 1 << 24, 0, session_id, epoch)
            + enc_array(topics) + enc_array(forg) + enc_str(""))
    r = Reader(conn.request(FETCH, 11, body))
    r.i32()  # throttle
    err = r.i16()
    sid = r.i32()

    def partition():
        idx, perr, hw, _lso, _start = r.i32(), r.i16(), r.i64(), r.i64(), r.i64()
        r.array(lambda: (r.i64(), r.i64()))
        r.i32()
        records = r.bytes_() or b""
        return idx, perr, hw, len(parse_record_batches(records)) if records else 0

    resp = r.array(lambda: (r.string(), r.array(partition)))
    got = {(t, p[0]): p for t, ps in (resp or []) for p in ps}
    return err, sid, got


def produce(bootstrap, topic, partition, n):
    p = Producer({"bootstrap.servers": bootstrap, "linger.ms": 0})
    for i in range(n):
        p.produce(topic, value=b"v%d" % i, partition=partition)
    assert p.flush(30) == 0


def test_incremental_fetch_session(broker):
    topic = unique_topic("fsess")
    confluent_create_topic(broker.bootstrap, topic, 2)
    produce(broker.bootstrap, topic, 0, 3)
    c = WireConn(broker.port)
    try:
        # Full fetch creating a session: every partition is in the answer.
        err, sid, got = fetch_v11(c, 0, 0, [(topic, 0, 0), (topic, 1, 0)])
        assert err == 0 and sid != 0
        assert got[(topic, 0)][2] == 3 and got[(topic, 0)][3] >= 1
        assert (topic, 1) in got

        # Incremental, position moved on p0, nothing new anywhere: empty answer.
        err, sid2, got = fetch_v11(c, sid, 1, [(topic, 0, 3)])
        assert (err, sid2) == (0, sid)
        assert got == {}, got

        # New data on p1 only: only p1 comes back, with its records.
        produce(broker.bootstrap, topic, 1, 2)
        err, _, got = fetch_v11(c, sid, 2, [])
        assert err == 0 and list(got) == [(topic, 1)] and got[(topic, 1)][2] == 2

        # Replaying an epoch is refused; so is an unknown session.
        err, _, _ = fetch_v11(c, sid, 2, [])
        assert err == 71  # INVALID_FETCH_SESSION_EPOCH
        err, _, _ = fetch_v11(c, 987654, 1, [])
        assert err == 70  # FETCH_SESSION_ID_NOT_FOUND

        # Forget p1: later data on it is no longer reported.
        err, _, got = fetch_v11(c, sid, 3, [(topic, 1, 2)], forgotten=[(topic, [1])])
        assert err == 0
        produce(broker.bootstrap, topic, 1, 1)
        err, _, got = fetch_v11(c, sid, 4, [])
        assert err == 0 and (topic, 1) not in got

        # Epoch -1 closes the session; the fetch is a plain full fetch.
        err, sid3, got = fetch_v11(c, sid, -1, [(topic, 0, 0)])
        assert (err, sid3) == (0, 0) and got[(topic, 0)][2] == 3
        err, _, _ = fetch_v11(c, sid, 5, [])
        assert err == 70
    finally:
        c.close()


def test_session_long_poll_wakes_on_append(broker):
    topic = unique_topic("fsess-lp")
    confluent_create_topic(broker.bootstrap, topic, 1)
    c = WireConn(broker.port, timeout_s=20)
    try:
        err, sid, _ = fetch_v11(c, 0, 0, [(topic, 0, 0)])
        assert err == 0 and sid != 0
        # Park an incremental fetch for up to 10 s, then produce: it must
        # come back with the record well before its deadline.
        body_parts = [(topic, 0, 0)]
        import threading
        import time
        t0 = time.monotonic()
        threading.Timer(0.3, produce, args=(broker.bootstrap, topic, 0, 1)).start()
        err, _, got = fetch_v11(c, sid, 1, body_parts, max_wait_ms=10000)
        assert err == 0 and got[(topic, 0)][2] == 1
        assert time.monotonic() - t0 < 8, "long poll was not woken by the append"
    finally:
        c.close()
