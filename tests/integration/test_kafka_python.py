"""kafka-python 2.0.2 (pure Python, its own protocol code) against samsa-broker.

kafka-python probes the broker's version from the ApiVersions it answers and
picks request versions from that, exactly as in the field (no api_version
pinned).  Covers KafkaAdminClient create/list/delete; KafkaProducer with keys,
headers, explicit partitions and timestamps for every codec whose Python
module is installed (none/gzip always; snappy/lz4/zstd via python3-snappy,
python3-lz4, python3-zstandard), each checked on the wire; KafkaConsumer
without a group (assign + seek_to_beginning) reading everything back
byte-identical in offset order; beginning/end offsets and offsets_for_times;
the same records after a broker restart.
"""

import time

import pytest
from kafka import KafkaAdminClient, KafkaConsumer, KafkaProducer, TopicPartition
from kafka import codec as kcodec
from kafka.admin import NewTopic
from kafka.errors import TopicAlreadyExistsError

from conftest import CODEC_IDS, codecs_served, unique_topic, wait_until

AVAILABLE = {"none": True, "gzip": kcodec.has_gzip(), "snappy": kcodec.has_snappy(),
             "lz4": kcodec.has_lz4(), "zstd": kcodec.has_zstd()}
CODECS = [c for c, ok in AVAILABLE.items() if ok]
PARTITIONS = 3
PER_CODEC = 30


def test_compression_modules_present():
    missing = [c for c, ok in AVAILABLE.items() if not ok]
    if missing:
        pytest.skip(f"kafka-python codecs without their Python module: {missing}"
                    " (scripts/deps.sh installs python3-snappy, python3-lz4, python3-zstandard)")


def admin_client(bootstrap):
    return KafkaAdminClient(bootstrap_servers=bootstrap, client_id="samsa-it-kpy",
                            request_timeout_ms=20000)


def consume_assigned(bootstrap, topic, partitions, expected, timeout_s=30):
    c = KafkaConsumer(bootstrap_servers=bootstrap, group_id=None, enable_auto_commit=False,
                      auto_offset_reset="earliest", fetch_max_wait_ms=100,
                      request_timeout_ms=20000)
    try:
        tps = [TopicPartition(topic, p) for p in partitions]
        c.assign(tps)
        c.seek_to_beginning(*tps)
        got = {p: [] for p in partitions}
        n = 0
        deadline = time.monotonic() + timeout_s
        while n < expected:
            assert time.monotonic() < deadline, (
                f"kafka-python consumed {n}/{expected} in {timeout_s}s:"
                f" { {p: len(v) for p, v in got.items()} }")
            for tp, recs in c.poll(timeout_ms=200).items():
                got[tp.partition] += recs
                n += len(recs)
        return got, c
    except BaseException:
        c.close()
        raise


def test_admin_produce_consume_all_codecs_offsets_delete(broker):
    topic = unique_topic("kpy")
    admin = admin_client(broker.bootstrap)
    try:
        admin.create_topics([NewTopic(topic, num_partitions=PARTITIONS, replication_factor=1)],
                            timeout_ms=20000)
        wait_until(lambda: topic in admin.list_topics(), 20, what=f"{topic} listed")
        with pytest.raises(TopicAlreadyExistsError):
            admin.create_topics([NewTopic(topic, num_partitions=1, replication_factor=1)],
                                timeout_ms=20000)

        base_ts = int(time.time() * 1000) - 7_200_000
        msgs = []  # (partition, key, value, headers, ts, codec) in production order
        seq = 0
        for codec in CODECS:
            p = KafkaProducer(bootstrap_servers=broker.bootstrap, acks="all", linger_ms=20,
                              compression_type=None if codec == "none" else codec,
                              request_timeout_ms=20000)
            futs = []
            for i in range(PER_CODEC):
                m = (seq % PARTITIONS, f"{codec}-k{i}".encode(),
                     (f"kafka-python {codec} #{i} " * 25).encode() + bytes(range(256)),
                     [("codec", codec.encode()), ("n", str(i).encode()), ("bin", b"\x00\xfe"),
                      ("dup", b"a"), ("dup", b"b")],
                     base_ts + seq * 10, codec)
                msgs.append(m)
                futs.append(p.send(topic, key=m[1], value=m[2], headers=m[3], partition=m[0],
                                   timestamp_ms=m[4]))
                seq += 1
            p.flush(timeout=30)
            for f in futs:
                md = f.get(timeout=30)
                assert md.topic == topic
            p.close(timeout=10)

        seen = codecs_served(broker.port, topic, range(PARTITIONS))
        assert seen == {CODEC_IDS[c] for c in CODECS}, f"codecs on the wire: {sorted(seen)}"

        got, c = consume_assigned(broker.bootstrap, topic, range(PARTITIONS), len(msgs))
        try:
            for part in range(PARTITIONS):
                want = [m for m in msgs if m[0] == part]
                have = got[part]
                assert [r.offset for r in have] == list(range(len(want))), (
                    f"partition {part} offsets {[r.offset for r in have][:10]}...")
                for w, r in zip(want, have):
                    where = f"partition {part} offset {r.offset} ({w[5]})"
                    assert r.key == w[1], where + ": key"
                    assert r.value == w[2], where + ": value"
                    assert list(r.headers) == w[3], where + f": headers {r.headers}"
                    assert r.timestamp == w[4], where + f": timestamp {r.timestamp} != {w[4]}"

            tps = [TopicPartition(topic, p) for p in range(PARTITIONS)]
            begin, end = c.beginning_offsets(tps), c.end_offsets(tps)
            for tp in tps:
                n = len(got[tp.partition])
                assert (begin[tp], end[tp]) == (0, n), f"{tp}: begin/end {begin[tp]}/{end[tp]} != 0/{n}"
            for part in range(PARTITIONS):
                tp = TopicPartition(topic, part)
                for r in got[part][::5]:
                    for q in (r.timestamp, r.timestamp - 3):
                        res = c.offsets_for_times({tp: q})[tp]
                        assert res is not None and res.offset == r.offset, (
                            f"offsets_for_times({tp}, {q}) = {res}, want offset {r.offset}")
                last = got[part][-1].timestamp
                assert c.offsets_for_times({tp: last + 1})[tp] is None, "lookup past the end"
        finally:
            c.close()

        # A graceful restart keeps the topic and every record as it was.
        admin.close()
        broker.restart()
        admin = admin_client(broker.bootstrap)
        assert topic in admin.list_topics(), f"{topic} missing after restart"
        again, c = consume_assigned(broker.bootstrap, topic, range(PARTITIONS), len(msgs))
        c.close()
        for part in range(PARTITIONS):
            assert ([(r.offset, r.key, r.value, list(r.headers), r.timestamp) for r in again[part]]
                    == [(r.offset, r.key, r.value, list(r.headers), r.timestamp) for r in got[part]]), (
                f"partition {part} differs after restart")

        admin.delete_topics([topic], timeout_ms=20000)
        wait_until(lambda: topic not in admin.list_topics(), 30, what=f"{topic} gone")
    finally:
        admin.close()


def test_auto_created_topic_via_producer(broker):
    """auto.create.topics.enable=true (the harness sets it; num.partitions=3):
    a producer's Metadata request for an unknown topic creates it."""
    topic = unique_topic("kpy-auto")
    p = KafkaProducer(bootstrap_servers=broker.bootstrap, acks=1, request_timeout_ms=20000,
                      max_block_ms=30000)
    md = p.send(topic, key=b"k", value=b"hello").get(timeout=30)
    p.close(timeout=10)
    assert md.offset == 0
    got, c = consume_assigned(broker.bootstrap, topic, [md.partition], 1)
    c.close()
    assert got[md.partition][0].value == b"hello"
    admin = admin_client(broker.bootstrap)
    try:
        desc = admin.describe_topics([topic])
        assert len(desc[0]["partitions"]) == 3, desc
    finally:
        admin.close()
