"""Topic compression.type and keyless records on compacted topics (issue #15).

compression.type other than `producer` makes the broker re-frame batches in
the topic's codec (every record validated on the way): the stored batches,
as fetched raw and as found in the segment file, carry the topic's codec,
and every client still reads them. A record without a key sent to a
compacted topic is refused with INVALID_RECORD and a record error naming it
(KIP-467); nothing of the batch is stored."""
import glob
import os
import random
import struct
import subprocess

import pytest
from confluent_kafka import Consumer, KafkaError, KafkaException, Producer
from confluent_kafka.admin import NewTopic

from conftest import (CODEC_IDS, codecs_served, confluent_admin, parse_record_batches,
                      raw_produce, record_batch, unique_topic, wait_until)

INVALID_RECORD = 87


def create(b, topic, partitions=1, **configs):
    admin = confluent_admin(b.bootstrap)
    fs = admin.create_topics([NewTopic(topic, num_partitions=partitions, replication_factor=1,
                                       config={k.replace("_", "."): str(v)
                                               for k, v in configs.items()})],
                             operation_timeout=30, request_timeout=30)
    fs[topic].result(timeout=30)

    def ready():
        t = admin.list_topics(timeout=5).topics.get(topic)
        return t is not None and t.error is None and len(t.partitions) == partitions and \
            all(p.leader >= 0 for p in t.partitions.values())
    wait_until(ready, 30, what=f"metadata of {topic}")


def words(n, seed=7):
    rnd = random.Random(seed)
    vocab = [b"alpha", b"beta", b"gamma", b"delta", b"stream", b"kafka", b"samsa", b"record",
             b"offset", b"broker", b"partition", b"segment"]
    return b" ".join(rnd.choice(vocab) + b"%d" % rnd.randrange(1000) for _ in range(n))


def produce(b, topic, values, codec="none", keys=True, **extra):
    conf = {"bootstrap.servers": b.bootstrap, "compression.type": codec, "linger.ms": 20}
    conf.update(extra)
    p = Producer(conf)
    errors = []
    for i, v in enumerate(values):
        p.produce(topic, key=(b"k%d" % i) if keys else None, value=v, partition=0,
                  on_delivery=lambda err, msg: err and errors.append(err))
    assert p.flush(30) == 0
    return errors


def consume_confluent(b, topic, n):
    c = Consumer({"bootstrap.servers": b.bootstrap, "group.id": unique_topic("g"),
                  "auto.offset.reset": "earliest", "enable.auto.commit": False})
    c.subscribe([topic])
    got = []
    import time
    deadline = time.monotonic() + 30
    while len(got) < n and time.monotonic() < deadline:
        m = c.poll(0.5)
        if m is not None and not m.error():
            got.append(m.value())
    c.close()
    return got


def consume_kafka_python(b, topic, n):
    from kafka import KafkaConsumer
    c = KafkaConsumer(topic, bootstrap_servers=b.bootstrap, auto_offset_reset="earliest",
                      enable_auto_commit=False, consumer_timeout_ms=5000)
    got = [m.value for m in c][:n + 1]
    c.close()
    return got


def consume_kcat(b, topic, n):
    out = subprocess.run(["kcat", "-C", "-b", b.bootstrap, "-t", topic, "-o", "beginning",
                          "-e", "-q", "-c", str(n), "-f", "%s\n"],
                         capture_output=True, timeout=60)
    assert out.returncode == 0, out.stderr
    return out.stdout.splitlines()


def stored_codecs(b, topic):
    """Codec ids of the batches in the partition's segment files on disk."""
    seen = set()
    for path in glob.glob(os.path.join(b.data_dir, f"{topic}-0", "*.log")):
        with open(path, "rb") as f:
            for bt in parse_record_batches(f.read()):
                seen.add(bt["codec"])
    return seen


@pytest.mark.parametrize("topic_codec,sent", [("zstd", "none"), ("gzip", "lz4"),
                                              ("lz4", "snappy"), ("snappy", "zstd"),
                                              ("uncompressed", "gzip")])
def test_topic_codec_is_stored_and_read_by_every_client(broker, topic_codec, sent):
    topic = unique_topic("cmp")
    create(broker, topic, compression_type=topic_codec)
    values = [words(40, seed=i) for i in range(200)]
    assert produce(broker, topic, values, codec=sent) == []
    want = 0 if topic_codec == "uncompressed" else CODEC_IDS[topic_codec]
    assert codecs_served(broker.port, topic, [0]) == {want}
    assert stored_codecs(broker, topic) == {want}
    assert consume_confluent(broker, topic, len(values)) == values
    assert consume_kafka_python(broker, topic, len(values)) == values
    assert consume_kcat(broker, topic, len(values)) == values


def test_producer_codec_is_kept_by_default(broker):
    topic = unique_topic("cmp-keep")
    create(broker, topic)
    values = [words(20, seed=i) for i in range(50)]
    assert produce(broker, topic, values, codec="lz4") == []
    assert codecs_served(broker.port, topic, [0]) == {CODEC_IDS["lz4"]}


def test_idempotent_producer_on_a_recompressed_topic(broker):
    topic = unique_topic("cmp-idem")
    create(broker, topic, compression_type="zstd")
    values = [b"v%d" % i for i in range(500)]
    assert produce(broker, topic, values, acks="all", **{"enable.idempotence": True}) == []
    assert codecs_served(broker.port, topic, [0]) == {CODEC_IDS["zstd"]}
    assert consume_confluent(broker, topic, len(values)) == values


def test_compression_level_changes_the_stored_size(broker):
    sizes = {}
    values = [words(400, seed=i) for i in range(100)]
    for level in (1, 9):
        topic = unique_topic("cmp-lvl%d" % level)
        create(broker, topic, compression_type="gzip", **{"compression.gzip.level": level})
        assert produce(broker, topic, values) == []
        assert codecs_served(broker.port, topic, [0]) == {CODEC_IDS["gzip"]}
        assert consume_confluent(broker, topic, len(values)) == values
        sizes[level] = sum(os.path.getsize(p) for p in
                           glob.glob(os.path.join(broker.data_dir, f"{topic}-0", "*.log")))
    assert sizes[9] < sizes[1], sizes


def test_keyless_record_on_a_compacted_topic_is_refused(broker):
    topic = unique_topic("cmp-nokey")
    create(broker, topic, cleanup_policy="compact")
    # the wire: record 2 of 4 has no key -> INVALID_RECORD naming it
    batch = record_batch([(b"a", b"1", []), (b"b", b"2", []), (None, b"3", []), (b"d", b"4", [])])
    err, base, msg = raw_produce(broker.port, topic, 0, batch, 8)
    assert err == INVALID_RECORD and base == -1
    assert msg == "One or more records have been rejected"
    # nothing of that batch was stored; a keyed batch is
    keyed = record_batch([(b"a", b"1", []), (b"b", b"2", [])])
    err, base, _ = raw_produce(broker.port, topic, 0, keyed, 8)
    assert err == 0 and base == 0
    # a real client reports the error for the keyless message only
    errors = produce(broker, topic, [b"x"], keys=False, **{"message.send.max.retries": 0})
    assert len(errors) == 1 and errors[0].code() == KafkaError.INVALID_RECORD, errors
    assert produce(broker, topic, [b"y"]) == []
    assert consume_confluent(broker, topic, 3) == [b"1", b"2", b"y"]


def test_keyless_record_in_a_compressed_batch_is_found(broker):
    topic = unique_topic("cmp-nokey-z")
    create(broker, topic, cleanup_policy="compact,delete")
    errors = produce(broker, topic, [b"x%d" % i for i in range(20)], codec="zstd", keys=False,
                     **{"message.send.max.retries": 0})
    assert errors and all(e.code() == KafkaError.INVALID_RECORD for e in errors)
