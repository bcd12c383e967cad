"""Hostile input on the wire, beyond test_bad_input.py's malformed requests:
floods of garbage, sizes that promise more than arrives, truncation at every
byte of a request, every API at an unknown version, array counts that claim
billions of elements, lying record batches, frames dribbled a byte at a
time, many connections opened and dropped, and idle connections.

Each case runs against a fresh broker (the `broker` fixture, which also
fails the test on any ERROR or sanitizer line in the broker's log and on a
non-zero exit at shutdown) and ends with `assert_served`: a real client
(confluent_kafka) produces a message and reads it back.

What the broker must do (Apache Kafka's behaviour): close connections that
send what it cannot parse, never allocate what a size or count merely
claims, keep serving everyone else, and answer a frame that arrives slowly
as if it had arrived at once.
"""

import os
import random
import socket
import struct
import time

import pytest
from confluent_kafka import Consumer, Producer, TopicPartition

from conftest import (Reader, WireConn, confluent_create_topic, enc_array, enc_bytes, enc_str,
                      enc_uvarint, raw_api_versions, record_batch, unique_topic, wait_until)

API_PRODUCE, API_FETCH, API_METADATA, API_APIVERSIONS = 0, 1, 3, 18
CORRUPT_MESSAGE = 2


# ---------------------------------------------------------------- helpers

def assert_served(b, label):
    """A stock client can produce to a new topic and read the message back."""
    topic = unique_topic("hostile-ok")
    value = f"served after {label}".encode()
    p = Producer({"bootstrap.servers": b.bootstrap, "acks": "all", "message.timeout.ms": 20000})
    errs = []
    p.produce(topic, value=value, partition=0, on_delivery=lambda e, m: errs.append(e))
    assert p.flush(25) == 0 and errs == [None], f"after {label}: produce failed: {errs}"
    c = Consumer({"bootstrap.servers": b.bootstrap, "group.id": "unused",
                  "enable.auto.commit": False})
    try:
        c.assign([TopicPartition(topic, 0, 0)])
        got = wait_until(lambda: c.poll(0.2), 20, interval_s=0,
                         what=f"the message produced after {label}")
        assert got.error() is None and got.value() == value, f"after {label}: read {got}"
    finally:
        c.close()


def header(api_key, version, corr=1, client_id="hostile"):
    return struct.pack(">hhi", api_key, version, corr) + enc_str(client_id)


def frame(payload):
    return struct.pack(">i", len(payload)) + payload


def proc_kb(pid, field):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    raise AssertionError(f"{field} missing from /proc/{pid}/status")


def sanitized(pid):
    """True under a sanitizer runtime (its allocator's quarantine and shadow
    memory make RSS and VmSize meaningless for the broker's own bounds)."""
    with open(f"/proc/{pid}/maps") as f:
        maps = f.read()
    return any(lib in maps for lib in ("libasan", "libtsan", "libubsan"))


def expect_closed(port, data, label, timeout_s=15):
    c = WireConn(port)
    try:
        c.send_raw(data)
        assert c.closed_by_peer(timeout_s), f"{label}: broker answered instead of closing"
    finally:
        c.close()


def metadata_v1(topics):
    return enc_array([enc_str(t) for t in topics])


# ---------------------------------------------------------------- garbage

def test_random_garbage_streams(broker):
    """Random bytes, as a whole frame body and as a raw stream, on many
    connections: each is closed or left waiting for more, none crashes it."""
    rng = random.Random(6)
    socks = []
    for i in range(60):
        blob = bytes(rng.getrandbits(8) for _ in range(rng.randrange(1, 3000)))
        s = socket.create_connection(("127.0.0.1", broker.port), timeout=10)
        if i % 3 == 0:
            s.sendall(frame(blob))  # a plausible size with a garbage body
        elif i % 3 == 1:
            s.sendall(frame(struct.pack(">hh", rng.choice([0, 1, 3, 18]), rng.randrange(0, 13))
                            + blob))  # a real API key and version, garbage after
        else:
            s.sendall(blob)
        socks.append(s)
    for s in socks:
        s.close()
    assert_served(broker, "garbage streams")


# ---------------------------------------------------------------- sizes

def test_sizes_at_the_limits(broker):
    # socket.request.max.bytes is 104857600 by default: one more is refused
    # at once, before anything is allocated.
    expect_closed(broker.port, struct.pack(">i", 104857601) + b"\x00" * 8, "max+1")
    for size in (0, 1, 7, -8, -(2 ** 31), 2 ** 31 - 1):
        expect_closed(broker.port, struct.pack(">i", size) + b"\x00" * 16, f"size {size}")
    assert_served(broker, "sizes at the limits")


def test_promised_huge_frames_cost_only_what_arrives(broker):
    """100 connections each promise a 100 MB frame and send 64 KB of it:
    the broker must hold roughly what arrived, not what was promised (a
    broker that allocates the declared size would map 10 GB)."""
    pid = broker.proc.pid
    rss0, vm0 = proc_kb(pid, "VmRSS"), proc_kb(pid, "VmSize")
    socks = []
    chunk = b"\x00\x03\x00\x01" + b"\x00" * (64 * 1024 - 4)
    for _ in range(100):
        s = socket.create_connection(("127.0.0.1", broker.port), timeout=10)
        s.sendall(struct.pack(">i", 100 * 1024 * 1024) + chunk)
        socks.append(s)
    # Once the broker has read what was sent, nothing more is coming.
    assert_served(broker, "100 promised 100 MB frames pending")
    rss1, vm1 = proc_kb(pid, "VmRSS"), proc_kb(pid, "VmSize")
    if sanitized(pid):
        rss1, vm1 = rss0, vm0
    assert vm1 - vm0 < 1024 * 1024, f"virtual memory grew {vm1 - vm0} kB for 6.4 MB received"
    assert rss1 - rss0 < 256 * 1024, f"RSS grew {rss1 - rss0} kB for 6.4 MB received"
    for s in socks:
        s.close()
    assert_served(broker, "promised huge frames")


# ---------------------------------------------------------------- truncation

def test_truncated_at_every_byte(broker):
    """A Produce request cut at every byte, then the connection closed."""
    topic = unique_topic("trunc")
    body = enc_str(None) + struct.pack(">hi", 1, 5000)
    body += enc_array([enc_str(topic) + enc_array(
        [struct.pack(">i", 0) + enc_bytes(record_batch([(b"k", b"v" * 40, [])]))])])
    full = frame(header(API_PRODUCE, 3) + body)
    for cut in range(1, len(full)):
        s = socket.create_connection(("127.0.0.1", broker.port), timeout=10)
        s.sendall(full[:cut])
        s.close()
    assert_served(broker, "truncated produce frames")


def test_frame_shorter_than_its_contents(broker):
    """A complete frame whose body ends in the middle of a field (the size
    prefix is honest, the request is not): the connection is closed."""
    body = enc_str(None) + struct.pack(">hi", 1, 5000) + struct.pack(">i", 1) + enc_str("t")
    body += struct.pack(">i", 1) + struct.pack(">i", 0) + struct.pack(">i", 5000) + b"short"
    expect_closed(broker.port, frame(header(API_PRODUCE, 3) + body), "records longer than frame")
    expect_closed(broker.port, frame(header(API_METADATA, 1) + struct.pack(">i", 2) + enc_str("a")),
                  "array shorter than its count")
    assert_served(broker, "short frames")


# ---------------------------------------------------------------- keys and versions

def test_every_api_at_unknown_versions(broker):
    versions = raw_api_versions(broker.port)
    for key, (lo, hi) in sorted(versions.items()):
        if key == API_APIVERSIONS:
            continue
        for v in (hi + 1, 32767, -1) + ((lo - 1,) if lo > 0 else ()):
            expect_closed(broker.port, frame(header(key, v) + b"\x00" * 32),
                          f"api {key} version {v}")
    for key in (-1, -32768, max(versions) + 1, 1000, 32767):
        expect_closed(broker.port, frame(header(key, 0) + b"\x00" * 8), f"api key {key}")
    assert_served(broker, "unknown keys and versions")


def test_every_api_with_garbage_body(broker):
    """Every supported API at every supported version with an empty body and
    with bodies of 0xff and 0x7fffffff words, each on its own connection:
    answered or closed (or parked: a garbage request may be valid), never a
    crash, and the broker keeps serving."""
    import selectors
    versions = raw_api_versions(broker.port)
    sel = selectors.DefaultSelector()
    socks = []
    for key, (lo, hi) in sorted(versions.items()):
        for v in range(lo, hi + 1):
            for body in (b"", b"\xff" * 64, b"\x7f\xff\xff\xff" * 8):
                s = socket.create_connection(("127.0.0.1", broker.port), timeout=10)
                # b"\x00" is an empty tag section if this version's header is flexible
                s.sendall(frame(header(key, v) + b"\x00" + body))
                s.setblocking(False)
                sel.register(s, selectors.EVENT_READ)
                socks.append(s)
    # Wait (bounded) for each connection to be answered or closed; parked
    # requests simply stay open until we close them.
    pending, deadline = len(socks), time.monotonic() + 20
    while pending and time.monotonic() < deadline:
        for key_, _ in sel.select(timeout=0.5):
            try:
                data = key_.fileobj.recv(65536)
            except (ConnectionResetError, BlockingIOError):
                data = b""
            if not data:
                sel.unregister(key_.fileobj)
                pending -= 1
    sel.close()
    for s in socks:
        s.close()
    assert broker.proc.poll() is None, "the broker died"
    assert_served(broker, "garbage bodies for every API")


# ---------------------------------------------------------------- huge counts

HUGE_COUNTS = {
    # Metadata v1: topics array claiming 2^31-1 entries, nothing after.
    "metadata_topics": (API_METADATA, 1, struct.pack(">i", 2 ** 31 - 1)),
    # Produce v3: topic_data claiming 2^31-1 topics.
    "produce_topics": (API_PRODUCE, 3, enc_str(None) + struct.pack(">hii", 1, 1000, 2 ** 31 - 1)),
    # Produce v3: one topic whose partitions claim 2^31-1 entries.
    "produce_partitions": (API_PRODUCE, 3, enc_str(None) + struct.pack(">hii", 1, 1000, 1)
                           + enc_str("t") + struct.pack(">i", 2 ** 31 - 1)),
    # Fetch v4: topics claiming 2^31-1.
    "fetch_topics": (API_FETCH, 4, struct.pack(">iiiibi", -1, 0, 0, 1 << 20, 0, 2 ** 31 - 1)),
    # Fetch v4: a string longer than the frame.
    "fetch_topic_name": (API_FETCH, 4, struct.pack(">iiiibi", -1, 0, 0, 1 << 20, 0, 1)
                         + struct.pack(">h", 32767) + b"abc"),
}


@pytest.mark.parametrize("case", sorted(HUGE_COUNTS))
def test_huge_array_counts(broker, case):
    key, ver, body = HUGE_COUNTS[case]
    rss0 = proc_kb(broker.proc.pid, "VmRSS")
    for _ in range(20):
        expect_closed(broker.port, frame(header(key, ver) + body), case)
    if not sanitized(broker.proc.pid):
        assert proc_kb(broker.proc.pid, "VmRSS") - rss0 < 64 * 1024, f"{case}: RSS grew"
    assert_served(broker, case)


def test_flexible_compact_counts(broker):
    """Flexible versions: compact arrays and strings with varint lengths up
    to 2^32-1, and a varint that never ends."""
    versions = raw_api_versions(broker.port)
    hi = versions[API_METADATA][1]
    if hi < 9:
        pytest.skip("broker has no flexible Metadata")
    hdr = header(API_METADATA, 9) + b"\x00"
    for body in (enc_uvarint(2 ** 32 - 1), enc_uvarint(2 ** 31),
                 b"\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff",
                 enc_uvarint(2) + enc_uvarint(2 ** 32 - 1) + b"x"):
        expect_closed(broker.port, frame(hdr + body), f"compact body {body[:6].hex()}")
    # A header whose tag section claims 2^32-1 tags.
    expect_closed(broker.port, frame(header(API_METADATA, 9) + enc_uvarint(2 ** 32 - 1)),
                  "header tags")
    assert_served(broker, "flexible counts")


# ---------------------------------------------------------------- lying batches

def produce_raw(port, topic, batch, version=3):
    body = enc_str(None) + struct.pack(">hi", -1, 15000)
    body += enc_array([enc_str(topic) + enc_array([struct.pack(">i", 0) + enc_bytes(batch)])])
    c = WireConn(port)
    try:
        r = Reader(c.request(API_PRODUCE, version, body))
    finally:
        c.close()
    r.i32()  # topics
    r.string()
    r.i32()  # partitions
    r.i32()  # partition index
    return r.i16()


def test_lying_record_batches(broker):
    topic = unique_topic("lies")
    confluent_create_topic(broker.bootstrap, topic, 1)
    assert produce_raw(broker.port, topic, record_batch([(b"k", b"ok", [])])) == 0
    good = bytearray(record_batch([(b"k", b"value", []), (b"k2", b"value2", [])]))
    cases = {}
    b = bytearray(good)
    b[8:12] = struct.pack(">i", len(good) + 1000)  # batchLength beyond the bytes
    cases["length_beyond"] = bytes(b)
    b = bytearray(good)
    b[8:12] = struct.pack(">i", 10)  # batchLength too small for a header
    cases["length_tiny"] = bytes(b)
    b = bytearray(good)
    b[16] = 7  # unknown magic
    cases["magic_7"] = bytes(b)
    b = bytearray(good)
    b[21] ^= 0x01  # any byte under the CRC
    cases["crc"] = bytes(b)
    cases["truncated_tail"] = bytes(good[:-5])
    cases["two_plus_garbage"] = bytes(good) + b"\x01\x02\x03"
    for name, batch in cases.items():
        err = produce_raw(broker.port, topic, batch)
        assert err != 0, f"{name}: a lying batch was accepted"
    # Nothing but the first good batch was appended.
    c = Consumer({"bootstrap.servers": broker.bootstrap, "group.id": "unused"})
    try:
        lo, hi = c.get_watermark_offsets(TopicPartition(topic, 0), timeout=10)
    finally:
        c.close()
    assert (lo, hi) == (0, 1), f"watermarks after lying batches: {(lo, hi)}"
    assert_served(broker, "lying batches")


# ---------------------------------------------------------------- slow and many

def test_frame_dribbled_one_byte_at_a_time(broker):
    c = WireConn(broker.port, timeout_s=30)
    try:
        data = frame(header(API_METADATA, 1, corr=77) + struct.pack(">i", -1))
        for i in range(len(data)):
            c.send_raw(data[i:i + 1])
            time.sleep(0.01)
        corr, payload = c.recv()
        assert corr == 77 and len(payload) > 0
        # Two frames split at awkward points (inside the size prefix).
        two = frame(header(API_APIVERSIONS, 0, corr=78)) + frame(header(API_APIVERSIONS, 0, corr=79))
        for part in (two[:2], two[2:13], two[13:17], two[17:]):
            c.send_raw(part)
            time.sleep(0.05)
        assert c.recv()[0] == 78 and c.recv()[0] == 79
    finally:
        c.close()
    assert_served(broker, "dribbled frames")


def test_slow_loris_connections_do_not_starve_clients(broker):
    """30 connections each trickling a large frame while a real client works."""
    socks = []
    for _ in range(30):
        s = socket.create_connection(("127.0.0.1", broker.port), timeout=10)
        s.sendall(struct.pack(">i", 1 << 20) + b"\x00")
        socks.append(s)
    for round_ in range(5):
        for s in socks:
            s.sendall(b"\x00" * 100)
        assert_served(broker, f"slow loris round {round_}")
    for s in socks:
        s.close()


def test_500_connections_opened_and_dropped(broker):
    pid = broker.proc.pid
    # assert_served's consumer has a group.id, and a group's first lookup
    # creates __consumer_offsets (its partitions' open files): count after.
    assert_served(broker, "a first group lookup")
    fds0 = len(os.listdir(f"/proc/{pid}/fd"))
    rng = random.Random(500)
    req = frame(header(API_APIVERSIONS, 0))
    socks = []
    for i in range(500):
        s = socket.create_connection(("127.0.0.1", broker.port), timeout=10)
        mode = i % 4
        if mode == 1:
            s.sendall(req)  # a request whose answer nobody reads
        elif mode == 2:
            s.sendall(req[:rng.randrange(1, len(req))])  # half a request
        elif mode == 3:
            # reset instead of a clean close
            s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            s.sendall(req * 3)
        socks.append(s)
    rng.shuffle(socks)
    for s in socks:
        s.close()
    assert_served(broker, "500 dropped connections")
    # The broker forgot them all (bounded wait: closes are asynchronous).
    wait_until(lambda: len(os.listdir(f"/proc/{pid}/fd")) < fds0 + 20, 20,
               what="the broker to close the dropped connections' sockets")


def test_pipelined_requests_with_unread_responses_are_bounded(broker):
    """A client pipelines thousands of requests and never reads: the broker
    stops reading it (backpressure) instead of queueing without bound."""
    pid = broker.proc.pid
    rss0 = proc_kb(pid, "VmRSS")
    s = socket.create_connection(("127.0.0.1", broker.port), timeout=10)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    req = frame(header(API_METADATA, 1) + struct.pack(">i", -1))
    s.setblocking(False)
    sent = 0
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        try:
            sent += s.send(req * 256)
        except BlockingIOError:
            break  # the broker stopped reading: backpressure
    assert time.monotonic() < deadline, "the broker kept reading a client that never reads"
    if not sanitized(pid):
        assert proc_kb(pid, "VmRSS") - rss0 < 64 * 1024, "RSS grew with unread responses"
    assert_served(broker, "unread pipelined responses")
    s.close()


# ---------------------------------------------------------------- idle connections

@pytest.mark.broker_config(**{"connections.max.idle.ms": "1000"})
def test_idle_connections_are_closed(broker):
    idle = WireConn(broker.port)
    half = WireConn(broker.port)
    busy = WireConn(broker.port)
    try:
        half.send_raw(struct.pack(">i", 100) + b"\x00\x12")  # a frame never finished
        t0 = time.monotonic()
        # A connection that keeps talking stays open past the idle limit.
        while time.monotonic() - t0 < 2.5:
            r = Reader(busy.request(API_APIVERSIONS, 0, b""))
            assert r.i16() == 0
            time.sleep(0.2)
        # The silent ones are closed (bounded wait, no timing assertion).
        assert idle.closed_by_peer(timeout_s=15), "idle connection not closed"
        assert half.closed_by_peer(timeout_s=15), "connection with a stalled frame not closed"
    finally:
        for c in (idle, half, busy):
            c.close()
    assert_served(broker, "idle connections")
