"""confluent-kafka-python (librdkafka) against samsa-broker, unchanged.

Covers: AdminClient create/list/delete topics; a keyed, header-carrying
produce with every codec librdkafka offers (none/gzip/snappy/lz4/zstd, each
checked on the wire with a raw Fetch); group-less consumption with assign()
that must give back every key, value, header and timestamp byte-identical in
offset order per partition; watermarks (earliest/latest) and offsets_for_times
(ListOffsets by timestamp); an idempotent producer (InitProducerId +
sequence numbers); and a produce to an unknown partition.
"""

import time

import pytest
from confluent_kafka import KafkaError, KafkaException, Producer, TopicPartition

from conftest import (CODEC_IDS, codecs_served, confluent_consume_partitions,
                      confluent_create_topic, confluent_topic_names, unique_topic, wait_until)

CODECS = ["none", "gzip", "snappy", "lz4", "zstd"]
PARTITIONS = 4
PER_CODEC = 40


def expected_messages(base_ts):
    """(partition, key, value, headers, timestamp) in production order; the
    timestamps grow in that order, so they grow with offsets in each partition."""
    out = []
    seq = 0
    for codec in CODECS:
        for i in range(PER_CODEC):
            key = f"{codec}-key-{i}".encode()
            # compressible text + every byte value, so compression always pays
            value = (f"{codec} value {i} ünïcödé " * 20).encode() + bytes(range(256))
            headers = [("codec", codec.encode()), ("i", str(i).encode()),
                       ("bin", b"\x00\xff\x7f\x80"), ("dup", b"first"), ("dup", b"second"),
                       ("empty", b"")]
            out.append((seq % PARTITIONS, key, value, headers, base_ts + seq * 10, codec))
            seq += 1
    return out


def produce_all(bootstrap, topic, msgs, extra_conf=None):
    """Produce msgs with one producer per codec; returns {(partition, offset): msg}."""
    acked = {}
    errors = []
    for codec in CODECS:
        conf = {"bootstrap.servers": bootstrap, "compression.type": codec,
                "linger.ms": 20, "acks": "all", "message.timeout.ms": 30000}
        conf.update(extra_conf or {})
        p = Producer(conf)

        def on_delivery(err, m, msg=None):
            if err is not None:
                errors.append((msg[5], err))
            else:
                acked[(m.partition(), m.offset())] = msg

        for msg in (m for m in msgs if m[5] == codec):
            part, key, value, headers, ts, _ = msg
            p.produce(topic, value=value, key=key, headers=headers, partition=part,
                      timestamp=ts, on_delivery=lambda err, m, msg=msg: on_delivery(err, m, msg))
        left = p.flush(30)
        assert left == 0, f"{left} messages with codec {codec} still undelivered after 30s"
    assert not errors, f"delivery errors: {errors[:5]}"
    assert len(acked) == len(msgs), "two messages were acknowledged with the same offset"
    return acked


def check_consumed(got, msgs):
    """got: {partition: [Message]} must equal msgs in production order per
    partition, with contiguous offsets from 0."""
    for part in range(PARTITIONS):
        want = [m for m in msgs if m[0] == part]
        have = got[part]
        assert [m.offset() for m in have] == list(range(len(want))), (
            f"partition {part}: offsets {[m.offset() for m in have][:10]}... not 0..{len(want)-1}")
        for w, h in zip(want, have):
            where = f"partition {part} offset {h.offset()} ({w[5]})"
            assert h.key() == w[1], where + ": key differs"
            assert h.value() == w[2], where + ": value differs"
            assert h.headers() == w[3], where + f": headers {h.headers()} != {w[3]}"
            ts_type, ts = h.timestamp()
            assert ts == w[4], where + f": timestamp {ts} (type {ts_type}) != {w[4]}"


def test_admin_produce_consume_all_codecs_offsets_delete(broker):
    topic = unique_topic("cfl")
    admin = confluent_create_topic(broker.bootstrap, topic, PARTITIONS)

    md = admin.list_topics(topic=topic, timeout=10).topics[topic]
    assert sorted(md.partitions) == list(range(PARTITIONS))

    # Creating it again must fail with TOPIC_ALREADY_EXISTS (36).
    from confluent_kafka.admin import NewTopic
    fs = admin.create_topics([NewTopic(topic, num_partitions=1, replication_factor=1)],
                             request_timeout=15)
    with pytest.raises(KafkaException) as ei:
        fs[topic].result(timeout=15)
    assert ei.value.args[0].code() == KafkaError.TOPIC_ALREADY_EXISTS, str(ei.value)

    base_ts = int(time.time() * 1000) - 3_600_000
    msgs = expected_messages(base_ts)
    acked = produce_all(broker.bootstrap, topic, msgs)

    # Each codec made it to the broker as such, and is served back as stored.
    seen = codecs_served(broker.port, topic, range(PARTITIONS))
    assert seen == {CODEC_IDS[c] for c in CODECS}, f"codecs seen on the wire: {sorted(seen)}"

    got = confluent_consume_partitions(broker.bootstrap, topic, range(PARTITIONS), len(msgs))
    check_consumed(got, msgs)
    for part, ms in got.items():
        for m in ms:
            assert acked[(part, m.offset())][1] == m.key(), "delivery report offset mismatch"

    # Earliest / latest and ListOffsets by timestamp, with a group-less consumer.
    from confluent_kafka import Consumer
    c = Consumer({"bootstrap.servers": broker.bootstrap, "group.id": "unused"})
    try:
        for part in range(PARTITIONS):
            n = len(got[part])
            lo, hi = c.get_watermark_offsets(TopicPartition(topic, part), timeout=10)
            assert (lo, hi) == (0, n), f"partition {part} watermarks {(lo, hi)} != (0, {n})"
        queries, want = [], []
        for part in range(PARTITIONS):
            for m in got[part][::7]:
                ts = m.timestamp()[1]
                queries += [TopicPartition(topic, part, ts), TopicPartition(topic, part, ts - 5)]
                want += [m.offset(), m.offset()]
            last_ts = got[part][-1].timestamp()[1]
            queries.append(TopicPartition(topic, part, last_ts + 1))
            want.append(-1)  # no message that late: "end"
            queries.append(TopicPartition(topic, part, 0))
            want.append(0)
        res = []
        for q in queries:  # one partition per call keeps failures legible
            r = c.offsets_for_times([q], timeout=10)[0]
            assert r.error is None, f"offsets_for_times {q}: {r.error}"
            res.append(r.offset)
        bad = [(q.partition, q.offset, w, r) for q, w, r in zip(queries, want, res) if w != r]
        assert not bad, f"offsets_for_times (partition, ts, want, got): {bad[:10]}"
    finally:
        c.close()

    # Delete and see it gone.
    admin.delete_topics([topic], operation_timeout=30)[topic].result(timeout=30)
    wait_until(lambda: topic not in confluent_topic_names(broker.bootstrap), 30,
               what=f"{topic} to disappear from metadata")


def test_idempotent_producer(broker):
    topic = unique_topic("cfl-idem")
    confluent_create_topic(broker.bootstrap, topic, 2)
    p = Producer({"bootstrap.servers": broker.bootstrap, "enable.idempotence": True,
                  "linger.ms": 5, "compression.type": "lz4"})
    errs = []
    for i in range(200):
        p.produce(topic, key=str(i).encode(), value=b"v%d" % i, partition=i % 2,
                  on_delivery=lambda e, m: errs.append(e) if e else None)
    assert p.flush(30) == 0, "idempotent producer did not finish within 30s"
    assert not errs, f"idempotent delivery errors: {errs[:3]}"
    got = confluent_consume_partitions(broker.bootstrap, topic, [0, 1], 200)
    for part in (0, 1):
        assert [m.value() for m in got[part]] == [b"v%d" % i for i in range(part, 200, 2)]


def test_produce_to_unknown_partition_fails_cleanly(broker):
    topic = unique_topic("cfl-badpart")
    confluent_create_topic(broker.bootstrap, topic, 1)
    p = Producer({"bootstrap.servers": broker.bootstrap, "message.timeout.ms": 5000})
    errs = []
    try:  # librdkafka fails it either at once or in the delivery report
        p.produce(topic, value=b"x", partition=7, on_delivery=lambda e, m: errs.append(e))
    except KafkaException as e:
        errs.append(e.args[0])
    p.produce(topic, value=b"ok", partition=0, on_delivery=lambda e, m: errs.append(e))
    assert p.flush(20) == 0
    assert len(errs) == 2, errs
    assert errs[0] is not None and errs[0].code() == KafkaError._UNKNOWN_PARTITION, errs
    assert errs[1] is None, errs
    got = confluent_consume_partitions(broker.bootstrap, topic, [0], 1)
    assert got[0][0].value() == b"ok"
