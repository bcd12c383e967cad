"""Malformed and hostile input on the wire: the broker survives, answers what
Kafka answers, and keeps serving real clients with earlier data intact.

Requests are built here by hand (struct.pack, see conftest's wire helpers),
independent of the project's C codecs.  One broker serves the whole module
(message.max.bytes lowered to 100000 for the too-large case); every case ends
with `assert_still_served`: a confluent Producer appends a marker and a
group-less Consumer reads every partition to its end, checking that the seed
data written at module start is still there, byte for byte, as a prefix.

Expected behaviours (Apache Kafka's):
  - garbage, negative or > socket.request.max.bytes frame sizes, unknown API
    keys, unsupported versions of non-ApiVersions requests: the broker closes
    the connection (it may not answer them);
  - a truncated frame followed by a close: nothing but the close;
  - ApiVersions with a version the broker does not know (KIP-511): a v0
    response, error 35 UNSUPPORTED_VERSION, listing the supported versions;
  - Produce of a batch whose CRC is wrong: CORRUPT_MESSAGE (2) for that
    partition, nothing appended;
  - Produce of a batch larger than message.max.bytes: MESSAGE_TOO_LARGE (10).
"""

import socket
import struct
import time

import pytest
from confluent_kafka import KafkaError, Producer, TopicPartition
from confluent_kafka import Consumer
from confluent_kafka.admin import AdminClient, ConfigResource

from conftest import (Reader, WireConn, raw_produce, confluent_consume_partitions, confluent_create_topic,
                      enc_array, enc_bytes, enc_str, enc_uvarint, raw_api_versions,
                      record_batch, unique_topic, wait_until)

BROKER_CONFIG = {"message.max.bytes": "100000"}
SEED_TOPIC = unique_topic("bad-seed")
SEED_N = 30

API_PRODUCE, API_METADATA, API_APIVERSIONS = 0, 3, 18
UNSUPPORTED_VERSION, CORRUPT_MESSAGE, MESSAGE_TOO_LARGE = 35, 2, 10


@pytest.fixture(scope="module")
def seeded(module_broker):
    """The module's broker with SEED_TOPIC (2 partitions) holding SEED_N messages."""
    confluent_create_topic(module_broker.bootstrap, SEED_TOPIC, 2)
    p = Producer({"bootstrap.servers": module_broker.bootstrap, "acks": "all",
                  "compression.type": "snappy", "linger.ms": 5})
    for i in range(SEED_N):
        p.produce(SEED_TOPIC, key=b"seed-%d" % i, value=b"seed value %d" % i * 9,
                  headers=[("h", b"%d" % i)], partition=i % 2)
    assert p.flush(30) == 0
    got = confluent_consume_partitions(module_broker.bootstrap, SEED_TOPIC, [0, 1], SEED_N)
    module_broker.seed = {part: [(m.key(), m.value(), m.headers()) for m in ms]
                          for part, ms in got.items()}
    return module_broker


def assert_still_served(b, label):
    """A real client is served and every earlier message is intact."""
    marker = f"after-{label}-{time.monotonic_ns()}".encode()
    p = Producer({"bootstrap.servers": b.bootstrap, "acks": "all", "message.timeout.ms": 20000})
    errs = []
    p.produce(SEED_TOPIC, key=b"marker", value=marker, partition=0,
              on_delivery=lambda e, m: errs.append(e))
    assert p.flush(25) == 0 and errs == [None], f"after {label}: produce failed: {errs}"
    c = Consumer({"bootstrap.servers": b.bootstrap, "group.id": "unused"})
    try:
        hws = [c.get_watermark_offsets(TopicPartition(SEED_TOPIC, q), timeout=10)[1]
               for q in (0, 1)]
    finally:
        c.close()
    got = confluent_consume_partitions(b.bootstrap, SEED_TOPIC, [0, 1], sum(hws))
    for part in (0, 1):
        have = [(m.key(), m.value(), m.headers()) for m in got[part]]
        assert have[:len(b.seed[part])] == b.seed[part], (
            f"after {label}: seed data of partition {part} changed")
        assert [m.offset() for m in got[part]] == list(range(len(have))), (
            f"after {label}: partition {part} offsets not contiguous")
    assert got[0][-1].value() == marker, f"after {label}: marker not at the end of partition 0"


# ---------------------------------------------------------------- framing-level garbage

def header(api_key, version, corr=1, client_id="bad-input"):
    return struct.pack(">hhi", api_key, version, corr) + enc_str(client_id)


def frame(payload):
    return struct.pack(">i", len(payload)) + payload


CLOSE_CASES = {
    "http_get": b"GET / HTTP/1.1\r\nHost: samsa\r\n\r\n",  # size 0x47455420 > max
    "negative_size": struct.pack(">i", -1) + b"\x00" * 16,
    "min_negative_size": struct.pack(">i", -(2 ** 31)) + b"\x00" * 16,
    "huge_size": struct.pack(">i", (1 << 30) + 12345),  # > socket.request.max.bytes
    "size_smaller_than_header": frame(b"\x00\x12\x00"),
    "garbage_body": frame(b"\xff" * 64),
    "unknown_api_key": frame(header(32000, 0)),
    "negative_api_key": frame(header(-7, 0)),
    "metadata_unsupported_version": frame(header(API_METADATA, 999) + b"\x00" * 8),
    "bad_client_id_length": frame(struct.pack(">hhih", API_METADATA, 1, 1, 5000) + b"ab"),
}


@pytest.mark.parametrize("case", sorted(CLOSE_CASES))
def test_malformed_frame_closes_connection(seeded, case):
    c = WireConn(seeded.port)
    try:
        c.send_raw(CLOSE_CASES[case])
        assert c.closed_by_peer(timeout_s=15), (
            f"{case}: broker answered a malformed request instead of closing the connection")
    finally:
        c.close()
    assert_still_served(seeded, case)


def test_truncated_frame_then_close(seeded):
    body = header(API_METADATA, 1) + struct.pack(">i", -1)
    full = frame(body)
    for cut in (1, 3, 4, 7, len(full) - 1):
        s = socket.create_connection(("127.0.0.1", seeded.port), timeout=10)
        s.sendall(full[:cut])
        s.close()
    # and one that stays open half-sent while a real client is served
    s = socket.create_connection(("127.0.0.1", seeded.port), timeout=10)
    try:
        s.sendall(struct.pack(">i", 100000) + b"\x00\x03\x00\x01")
        assert_still_served(seeded, "half-sent frame pending")
    finally:
        s.close()
    assert_still_served(seeded, "truncated frames")


def test_many_connections_opened_and_dropped(seeded):
    socks = [socket.create_connection(("127.0.0.1", seeded.port), timeout=10) for _ in range(50)]
    for i, s in enumerate(socks):
        if i % 2:
            s.sendall(frame(header(API_APIVERSIONS, 0, corr=i)))
        s.close()
    assert_still_served(seeded, "50 dropped connections")


# ---------------------------------------------------------------- ApiVersions (KIP-511)

def test_api_versions_unsupported_version(seeded):
    c = WireConn(seeded.port)
    try:
        # A client newer than the broker: header v2 (flexible), ApiVersions v99 body
        # (compact client_software_name/version, tagged fields) the broker cannot know.
        body = enc_uvarint(len(b"samsa-it") + 1) + b"samsa-it" + enc_uvarint(4) + b"9.9" + b"\x00"
        payload = c.request(API_APIVERSIONS, 99, body, flexible=True)
        r = Reader(payload)  # response header v0 (corr id already consumed), body v0
        err = r.i16()
        assert err == UNSUPPORTED_VERSION, f"ApiVersions v99: error {err}, want 35"
        keys = {k: (lo, hi) for k, lo, hi in r.array(lambda: (r.i16(), r.i16(), r.i16()))}
        assert API_APIVERSIONS in keys and keys[API_APIVERSIONS][0] == 0, (
            f"ApiVersions range in the v0 fallback: {keys.get(API_APIVERSIONS)}")
        assert keys[API_APIVERSIONS][1] >= 3, "KIP-511 brokers support ApiVersions v3"
        for k in (0, 1, 2, 3):  # Produce, Fetch, ListOffsets, Metadata
            assert k in keys, f"api key {k} not listed: {sorted(keys)}"
        # The connection stays usable: a v0 request on it is answered normally.
        r = Reader(c.request(API_APIVERSIONS, 0, b""))
        assert r.i16() == 0
        assert {k for k, _, _ in r.array(lambda: (r.i16(), r.i16(), r.i16()))} == set(keys)
    finally:
        c.close()
    assert_still_served(seeded, "ApiVersions v99")


def test_api_versions_v3_flexible(seeded):
    c = WireConn(seeded.port)
    try:
        body = enc_uvarint(9) + b"samsa-it" + enc_uvarint(4) + b"1.0" + b"\x00"
        payload = c.request(API_APIVERSIONS, 3, body, flexible=True)
    finally:
        c.close()
    # ApiVersions responses always use header v0, so the body starts right here.
    r = Reader(payload)
    assert r.i16() == 0, "ApiVersions v3 error"
    n, r.pos = _uvarint(payload, r.pos)
    keys = {}
    for _ in range(n - 1):
        k, lo, hi = r.i16(), r.i16(), r.i16()
        tags, r.pos = _uvarint(payload, r.pos)
        assert tags == 0, f"unexpected tagged fields in api key {k}"
        keys[k] = (lo, hi)
    assert keys[API_APIVERSIONS][1] >= 3 and 0 in keys and 1 in keys, keys


def _uvarint(buf, pos):
    from conftest import dec_uvarint
    return dec_uvarint(buf, pos)


# ---------------------------------------------------------------- Produce validation

def produce_version(port):
    lo, hi = raw_api_versions(port)[API_PRODUCE]
    for v in (3, 4, 5, 6, 7, 8):  # classic encodings this test speaks
        if lo <= v <= hi:
            return v
    pytest.fail(f"broker's Produce versions {lo}..{hi} include none of 3..8")


def high_watermark(b, topic, partition):
    c = Consumer({"bootstrap.servers": b.bootstrap, "group.id": "unused"})
    try:
        return c.get_watermark_offsets(TopicPartition(topic, partition), timeout=10)[1]
    finally:
        c.close()


def test_produce_corrupt_crc(seeded):
    topic = unique_topic("bad-crc")
    confluent_create_topic(seeded.bootstrap, topic, 1)
    v = produce_version(seeded.port)
    good = record_batch([(b"k0", b"good value", [("h", b"1")]), (b"k1", b"second", [])])
    err, base, msg = raw_produce(seeded.port, topic, 0, good, v)
    assert (err, base) == (0, 0), f"valid hand-built batch refused: error {err} {msg} base {base}"

    bad = record_batch([(b"k2", b"corrupted", [])], corrupt_crc=True)
    err, _, msg = raw_produce(seeded.port, topic, 0, bad, v)
    assert err == CORRUPT_MESSAGE, f"corrupt CRC: error {err} ({msg}), want 2 CORRUPT_MESSAGE"

    # A flipped payload byte (CRC left as computed) is also caught.
    flipped = bytearray(record_batch([(b"k3", b"flip me", [])]))
    flipped[-3] ^= 0x55
    err, _, msg = raw_produce(seeded.port, topic, 0, bytes(flipped), v)
    assert err == CORRUPT_MESSAGE, f"flipped byte: error {err} ({msg}), want 2"

    assert high_watermark(seeded, topic, 0) == 2, "a corrupt batch was appended"
    got = confluent_consume_partitions(seeded.bootstrap, topic, [0], 2)[0]
    assert [(m.key(), m.value()) for m in got] == [(b"k0", b"good value"), (b"k1", b"second")]
    assert got[0].headers() == [("h", b"1")]
    assert_still_served(seeded, "corrupt CRC")


def test_produce_message_too_large(seeded):
    topic = unique_topic("bad-big")
    confluent_create_topic(seeded.bootstrap, topic, 1)
    v = produce_version(seeded.port)
    big = record_batch([(b"big", b"x" * 150000, [])])
    err, _, msg = raw_produce(seeded.port, topic, 0, big, v)
    assert err == MESSAGE_TOO_LARGE, f"150 kB batch: error {err} ({msg}), want 10 MESSAGE_TOO_LARGE"
    # A batch just under the limit is accepted.
    ok = record_batch([(b"ok", b"y" * 90000, [])])
    err, base, msg = raw_produce(seeded.port, topic, 0, ok, v)
    assert (err, base) == (0, 0), f"90 kB batch: error {err} ({msg})"

    # librdkafka sees the same error in its delivery report.
    p = Producer({"bootstrap.servers": seeded.bootstrap, "message.timeout.ms": 15000})
    errs = []
    p.produce(topic, value=b"z" * 150000, partition=0, on_delivery=lambda e, m: errs.append(e))
    assert p.flush(20) == 0
    assert errs and errs[0] is not None and errs[0].code() == KafkaError.MSG_SIZE_TOO_LARGE, errs
    assert high_watermark(seeded, topic, 0) == 1
    assert_still_served(seeded, "message too large")


def test_acks_all_needs_min_insync_replicas(broker):
    """acks=all with fewer in-sync replicas than min.insync.replicas is
    refused before the append (NOT_ENOUGH_REPLICAS, retriable); acks=1 is not
    affected; lowering the setting lets acks=all through."""
    topic = unique_topic("minisr")
    confluent_create_topic(broker.bootstrap, topic, 1)
    admin = AdminClient({"bootstrap.servers": broker.bootstrap})
    res = ConfigResource(ConfigResource.Type.TOPIC, topic, set_config={"min.insync.replicas": "2"})
    admin.alter_configs([res])[res].result(30)
    version = produce_version(broker.port)
    batch = record_batch([(b"k", b"v", [])])
    wait_until(lambda: raw_produce(broker.port, topic, 0, batch, version)[0] == 19,
               what="NOT_ENOUGH_REPLICAS for acks=all with min.insync.replicas=2 and one replica")
    assert high_watermark(broker, topic, 0) == 0, "a refused batch must not be appended"
    res = ConfigResource(ConfigResource.Type.TOPIC, topic, set_config={"min.insync.replicas": "1"})
    admin.alter_configs([res])[res].result(30)
    wait_until(lambda: raw_produce(broker.port, topic, 0, batch, version)[0] == 0,
               what="acks=all accepted again with min.insync.replicas=1")
