"""Storage engine through the wire: durability, recovery, retention, DeleteRecords,
topic configs and timestamps, driven by stock clients (confluent-kafka, kafka-python)
and, for APIs those client versions lack (DeleteRecords, IncrementalAlterConfigs),
hand-built requests from conftest's wire codec.

Every wait is a bounded poll. Files are inspected in the broker's data dir, the way
an operator would: segments, Kafka's checkpoint files and the clean-shutdown marker.
The 10,000-partition test lives in test_storage_scale.py.
"""

import glob
import os
import struct
import threading
import time

import pytest
from confluent_kafka import Consumer, KafkaError, Producer, TopicPartition

from conftest import (Reader, WireConn, confluent_admin, confluent_consume_partitions,
                      confluent_create_topic, enc_array, enc_str, unique_topic, wait_until)

KERR_OFFSET_OUT_OF_RANGE = 1
KERR_UNKNOWN_TOPIC_OR_PARTITION = 3
KERR_INVALID_CONFIG = 40
KERR_INVALID_REQUEST = 42
KERR_POLICY_VIOLATION = 44

RES_TOPIC, RES_BROKER = 2, 4
OP_SET, OP_DELETE, OP_APPEND, OP_SUBTRACT = 0, 1, 2, 3


# --------------------------------------------------------------------------- raw admin requests

def delete_records(port, topic, offsets):
    """DeleteRecords v1: {partition: offset} -> {partition: (error, low_watermark)}."""
    body = enc_array([enc_str(topic) + enc_array(
        [struct.pack(">iq", p, o) for p, o in offsets.items()])]) + struct.pack(">i", 5000)
    c = WireConn(port)
    try:
        r = Reader(c.request(21, 1, body))
    finally:
        c.close()
    r.i32()
    out = {}
    for _ in range(r.i32()):
        r.string()
        for _ in range(r.i32()):
            p, low, err = r.i32(), r.i64(), r.i16()
            out[p] = (err, low)
    return out


def incremental_alter(port, res_type, name, ops, validate_only=False):
    """IncrementalAlterConfigs v0: ops [(key, op, value)] -> (error, message)."""
    cfgs = [enc_str(k) + struct.pack(">b", op) + enc_str(v) for k, op, v in ops]
    body = enc_array([struct.pack(">b", res_type) + enc_str(name) + enc_array(cfgs)])
    body += struct.pack(">b", 1 if validate_only else 0)
    c = WireConn(port)
    try:
        r = Reader(c.request(44, 0, body))
    finally:
        c.close()
    r.i32()
    (res,) = r.array(lambda: (r.i16(), r.string(), r.i8(), r.string()))
    return res[0], res[1]


def alter_configs(port, res_type, name, kv, validate_only=False):
    """Legacy AlterConfigs v1 (replaces every override): kv {key: value}."""
    cfgs = [enc_str(k) + enc_str(v) for k, v in kv.items()]
    body = enc_array([struct.pack(">b", res_type) + enc_str(name) + enc_array(cfgs)])
    body += struct.pack(">b", 1 if validate_only else 0)
    c = WireConn(port)
    try:
        r = Reader(c.request(33, 1, body))
    finally:
        c.close()
    r.i32()
    (res,) = r.array(lambda: (r.i16(), r.string(), r.i8(), r.string()))
    return res[0], res[1]


def topic_configs(bootstrap, topic):
    """{key: (value, source)} from DescribeConfigs (confluent admin)."""
    from confluent_kafka.admin import ConfigResource
    admin = confluent_admin(bootstrap)
    res = ConfigResource(ConfigResource.Type.TOPIC, topic)
    entries = admin.describe_configs([res])[res].result(timeout=10)
    return {k: (e.value, e.source) for k, e in entries.items()}


# --------------------------------------------------------------------------- helpers

def produce(bootstrap, topic, n, partition=0, size=100, tag="m", acks="all", extra=None):
    """n messages, one record batch each (so segment limits apply per message)."""
    conf = {"bootstrap.servers": bootstrap, "acks": acks, "linger.ms": 0,
            "batch.num.messages": 1}
    conf.update(extra or {})
    p = Producer(conf)
    errs = []
    for i in range(n):
        p.produce(topic, key=f"{tag}{i}".encode(), value=(f"{tag}{i}-".encode() * size)[:size],
                  partition=partition, on_delivery=lambda e, m: errs.append(e) if e else None)
        if i % 1000 == 999:
            p.poll(0)
    assert p.flush(30) == 0, "messages undelivered after 30s"
    assert not errs, f"delivery errors: {errs[:3]}"


def watermarks(bootstrap, topic, partition=0):
    c = Consumer({"bootstrap.servers": bootstrap, "group.id": "wm"})
    try:
        return c.get_watermark_offsets(TopicPartition(topic, partition), timeout=10)
    finally:
        c.close()


def segment_files(broker, topic, partition=0):
    return sorted(glob.glob(os.path.join(broker.data_dir, f"{topic}-{partition}", "*.log")))


def read_checkpoint(path):
    with open(path) as f:
        lines = f.read().splitlines()
    assert lines[0] == "0", f"{path}: version line {lines[0]!r}"
    n = int(lines[1])
    assert len(lines) == 2 + n, f"{path}: count {n} but {len(lines) - 2} entries"
    out = {}
    for ln in lines[2:]:
        t, p, o = ln.split(" ")
        out[(t, int(p))] = int(o)
    return out


# --------------------------------------------------------------------------- configs

def test_topic_config_changes_apply_live_and_survive_restart(broker):
    topic = unique_topic("cfg")
    confluent_create_topic(broker.bootstrap, topic, 1)
    port = broker.port

    # invalid values and keys: INVALID_CONFIG with a message naming the key
    err, msg = incremental_alter(port, RES_TOPIC, topic, [("retention.ms", OP_SET, "soon")])
    assert err == KERR_INVALID_CONFIG and "retention.ms" in msg, (err, msg)
    err, msg = incremental_alter(port, RES_TOPIC, topic, [("no.such.key", OP_SET, "1")])
    assert err == KERR_INVALID_CONFIG and "no.such.key" in msg, (err, msg)
    err, msg = incremental_alter(port, RES_TOPIC, topic, [("retention.ms", OP_APPEND, "1")])
    assert err == KERR_INVALID_CONFIG, (err, msg)
    err, _ = incremental_alter(port, RES_TOPIC, "no-such-topic", [("retention.ms", OP_SET, "1")])
    assert err == KERR_UNKNOWN_TOPIC_OR_PARTITION
    err, _ = incremental_alter(port, RES_TOPIC, topic, [("retention.ms", OP_SET, "1"),
                                                       ("retention.ms", OP_SET, "2")])
    assert err == KERR_INVALID_REQUEST

    # validate_only changes nothing
    err, _ = incremental_alter(port, RES_TOPIC, topic, [("retention.ms", OP_SET, "1234")],
                               validate_only=True)
    assert err == 0
    assert topic_configs(broker.bootstrap, topic)["retention.ms"][0] == "604800000"

    # SET, APPEND on a list key, then legacy AlterConfigs replacing everything
    err, msg = incremental_alter(port, RES_TOPIC, topic, [("retention.ms", OP_SET, "3600000"),
                                                         ("cleanup.policy", OP_APPEND, "compact"),
                                                         ("flush.messages", OP_SET, "1")])
    assert err == 0, msg
    cfgs = topic_configs(broker.bootstrap, topic)
    assert cfgs["retention.ms"][0] == "3600000"
    assert cfgs["cleanup.policy"][0] == "delete,compact"
    err, msg = incremental_alter(port, RES_TOPIC, topic, [("cleanup.policy", OP_SUBTRACT, "compact")])
    assert err == 0, msg
    assert topic_configs(broker.bootstrap, topic)["cleanup.policy"][0] == "delete"

    err, msg = alter_configs(port, RES_TOPIC, topic, {"retention.ms": "7200000",
                                                      "segment.bytes": "1048576"})
    assert err == 0, msg
    cfgs = topic_configs(broker.bootstrap, topic)
    assert cfgs["retention.ms"][0] == "7200000"
    assert cfgs["segment.bytes"][0] == "1048576"
    assert cfgs["flush.messages"][0] != "1", "legacy AlterConfigs must drop unnamed overrides"
    err, _ = alter_configs(port, RES_TOPIC, topic, {"segment.bytes": "1"})
    assert err == KERR_INVALID_CONFIG

    # a live change reaches the log: segment.bytes small -> the next appends roll
    before = len(segment_files(broker, topic))
    err, _ = incremental_alter(port, RES_TOPIC, topic, [("segment.bytes", OP_SET, "2000")])
    assert err == 0
    produce(broker.bootstrap, topic, 60, size=200)
    assert len(segment_files(broker, topic)) >= before + 3, segment_files(broker, topic)

    broker.restart()
    cfgs = topic_configs(broker.bootstrap, topic)
    assert cfgs["retention.ms"][0] == "7200000"
    assert cfgs["segment.bytes"][0] == "2000"
    n = len(segment_files(broker, topic))
    produce(broker.bootstrap, topic, 30, size=200, tag="after")
    assert len(segment_files(broker, topic)) >= n + 2, "segment.bytes lost across the restart"


def test_broker_configs_static_refused_dynamic_validated(broker):
    port = broker.port
    node = "1"
    err, msg = incremental_alter(port, RES_BROKER, node, [("log.dirs", OP_SET, "/tmp/x")])
    assert err in (KERR_INVALID_CONFIG, KERR_INVALID_REQUEST) and "dynamically" in msg, (err, msg)
    err, msg = incremental_alter(port, RES_BROKER, node, [("log.retention.ms", OP_SET, "soon")])
    assert err == KERR_INVALID_CONFIG, (err, msg)
    err, msg = incremental_alter(port, RES_BROKER, node, [("log.retention.ms", OP_SET, "1000")],
                                 validate_only=True)
    assert err == 0, msg
    err, msg = alter_configs(port, RES_BROKER, node, {"node.id": "7"})
    assert err in (KERR_INVALID_CONFIG, KERR_INVALID_REQUEST) and msg, (err, msg)
    err, msg = incremental_alter(port, RES_BROKER, "99", [("log.retention.ms", OP_SET, "1000")])
    assert err == KERR_INVALID_REQUEST, (err, msg)


# --------------------------------------------------------------------------- retention

@pytest.mark.broker_config(**{"log.retention.check.interval.ms": "500"})
def test_retention_deletes_segments_and_moves_log_start(broker):
    topic = unique_topic("ret")
    confluent_create_topic(broker.bootstrap, topic, 1)
    err, msg = incremental_alter(broker.port, RES_TOPIC, topic, [("segment.bytes", OP_SET, "4096")])
    assert err == 0, msg
    produce(broker.bootstrap, topic, 400, size=100)
    nseg = len(segment_files(broker, topic))
    assert nseg >= 5, f"expected several segments, got {nseg}"
    assert watermarks(broker.bootstrap, topic) == (0, 400)

    # size-based first: keep about 8 KB
    err, msg = incremental_alter(broker.port, RES_TOPIC, topic,
                                 [("retention.bytes", OP_SET, "8192")])
    assert err == 0, msg
    low = wait_until(lambda: watermarks(broker.bootstrap, topic)[0] or None, 20,
                     what="retention.bytes to move the log start")
    assert 0 < low < 400
    assert len(segment_files(broker, topic)) < nseg

    # time-based: everything but the active segment goes
    err, msg = incremental_alter(broker.port, RES_TOPIC, topic, [("retention.ms", OP_SET, "1")])
    assert err == 0, msg
    wait_until(lambda: len(segment_files(broker, topic)) == 1, 20, what="time retention")
    low2, high = watermarks(broker.bootstrap, topic)
    assert high == 400 and low < high and low2 >= low
    # a consumer from the beginning gets only what is left, from the new start
    got = confluent_consume_partitions(broker.bootstrap, topic, [0], high - low2)[0]
    assert got[0].offset() == low2 and got[-1].offset() == 399

    broker.restart()
    assert watermarks(broker.bootstrap, topic) == (low2, 400)
    ckpt = read_checkpoint(os.path.join(broker.data_dir, "log-start-offset-checkpoint"))
    assert ckpt[(topic, 0)] >= low2


# --------------------------------------------------------------------------- DeleteRecords

def test_delete_records_moves_log_start_and_consumers_reset(broker):
    topic = unique_topic("dr")
    confluent_create_topic(broker.bootstrap, topic, 2)
    produce(broker.bootstrap, topic, 100, partition=0)
    produce(broker.bootstrap, topic, 10, partition=1)

    res = delete_records(broker.port, topic, {0: 40, 1: -1})
    assert res == {0: (0, 40), 1: (0, 10)}, res
    assert watermarks(broker.bootstrap, topic, 0) == (40, 100)
    assert watermarks(broker.bootstrap, topic, 1) == (10, 10)
    # lower than the start: nothing changes; beyond the end: OFFSET_OUT_OF_RANGE
    assert delete_records(broker.port, topic, {0: 20})[0] == (0, 40)
    assert delete_records(broker.port, topic, {0: 101})[0][0] == KERR_OFFSET_OUT_OF_RANGE
    assert delete_records(broker.port, topic, {7: 1})[7][0] == KERR_UNKNOWN_TOPIC_OR_PARTITION

    # a consumer positioned below the start gets OFFSET_OUT_OF_RANGE ...
    c = Consumer({"bootstrap.servers": broker.bootstrap, "group.id": "dr-err",
                  "auto.offset.reset": "error", "enable.auto.commit": False})
    try:
        c.assign([TopicPartition(topic, 0, 10)])

        def out_of_range():
            m = c.poll(0.2)
            return m is not None and m.error() is not None and \
                m.error().code() == KafkaError._AUTO_OFFSET_RESET
        wait_until(out_of_range, 20, what="OFFSET_OUT_OF_RANGE for a fetch below the log start")
    finally:
        c.close()
    # ... and one with auto.offset.reset=earliest resets to the new start
    c = Consumer({"bootstrap.servers": broker.bootstrap, "group.id": "dr-reset",
                  "auto.offset.reset": "earliest", "enable.auto.commit": False})
    try:
        c.assign([TopicPartition(topic, 0, 10)])
        m = wait_until(lambda: (lambda x: x if x is not None and x.error() is None else None)(
            c.poll(0.2)), 20, what="a message after the reset")
        assert m.offset() == 40
    finally:
        c.close()

    broker.restart()
    assert watermarks(broker.bootstrap, topic, 0) == (40, 100)

    # compacted topics refuse, as Kafka does
    ct = unique_topic("drc")
    confluent_create_topic(broker.bootstrap, ct, 1)
    err, msg = incremental_alter(broker.port, RES_TOPIC, ct, [("cleanup.policy", OP_SET, "compact")])
    assert err == 0, msg
    produce(broker.bootstrap, ct, 5)
    assert delete_records(broker.port, ct, {0: 2})[0][0] == KERR_POLICY_VIOLATION


# --------------------------------------------------------------------------- crash safety

@pytest.mark.serial  # three producers at full speed: alone, so others' timeouts hold
def test_kill9_under_acks_all_with_flush_messages_1_loses_nothing(broker):
    topic = unique_topic("k9")
    admin = confluent_create_topic(broker.bootstrap, topic, 2)
    err, msg = incremental_alter(broker.port, RES_TOPIC, topic, [("flush.messages", OP_SET, "1")])
    assert err == 0, msg
    acked = {0: set(), 1: set()}
    lock = threading.Lock()
    stop = threading.Event()

    def load(worker):
        p = Producer({"bootstrap.servers": broker.bootstrap, "acks": "all", "linger.ms": 0,
                      "retries": 0, "message.timeout.ms": 5000,
                      "max.in.flight.requests.per.connection": 5})

        def cb(e, m):
            if e is None:
                with lock:
                    acked[m.partition()].add((m.offset(), m.value()))
        i = 0
        while not stop.is_set():
            try:
                p.produce(topic, value=f"w{worker}-{i}".encode(), partition=i % 2, on_delivery=cb)
            except BufferError:
                p.poll(0.01)
                continue
            i += 1
            p.poll(0)
        p.flush(6)

    threads = [threading.Thread(target=load, args=(w,)) for w in range(3)]
    for t in threads:
        t.start()
    wait_until(lambda: sum(len(v) for v in acked.values()) >= 1500, 60,
               what="1500 acknowledged messages")
    broker.kill9()
    stop.set()
    for t in threads:
        t.join(30)
    broker.start()
    with lock:
        want = {p: dict((o, v) for o, v in s) for p, s in acked.items()}
    for p in (0, 1):
        low, high = watermarks(broker.bootstrap, topic, p)
        assert high >= max(want[p]) + 1, f"partition {p}: end {high} below acked {max(want[p])}"
        got = confluent_consume_partitions(broker.bootstrap, topic, [p], high - low)[p]
        by_off = {m.offset(): m.value() for m in got}
        missing = [o for o in want[p] if by_off.get(o) != want[p][o]]
        assert not missing, f"partition {p}: {len(missing)} acknowledged messages lost: {missing[:5]}"
    # and the log keeps accepting writes after recovery
    produce(broker.bootstrap, topic, 10, tag="post")


def test_garbage_tail_is_truncated_and_log_keeps_accepting(broker):
    topic = unique_topic("gt")
    confluent_create_topic(broker.bootstrap, topic, 1)
    produce(broker.bootstrap, topic, 50)
    assert broker.stop() == 0
    seg = segment_files(broker, topic)[-1]
    good = os.path.getsize(seg)
    with open(seg, "ab") as f:
        f.write(b"\x00\x00\x00\x00\x00\x00\x00\x33\x00\x00\x01\x00garbage!" * 40)
    broker.start()
    assert os.path.getsize(seg) == good, "the garbage tail was not truncated"
    assert "truncating" in broker.log_text()
    assert watermarks(broker.bootstrap, topic) == (0, 50)
    produce(broker.bootstrap, topic, 20, tag="more")
    got = confluent_consume_partitions(broker.bootstrap, topic, [0], 70)[0]
    assert [m.offset() for m in got] == list(range(70))
    assert got[50].key() == b"more0"


def test_checkpoint_files_and_clean_marker(broker):
    topic = unique_topic("ck")
    confluent_create_topic(broker.bootstrap, topic, 3)
    for p in range(3):
        produce(broker.bootstrap, topic, 10 * (p + 1), partition=p)
    delete_records(broker.port, topic, {2: 5})
    marker = os.path.join(broker.data_dir, ".kafka_cleanshutdown")
    assert not os.path.exists(marker), "marker must be gone while the broker runs"
    assert broker.stop() == 0
    assert os.path.exists(marker)
    rp = read_checkpoint(os.path.join(broker.data_dir, "recovery-point-offset-checkpoint"))
    st = read_checkpoint(os.path.join(broker.data_dir, "log-start-offset-checkpoint"))
    assert [rp[(topic, p)] for p in range(3)] == [10, 20, 30]
    assert [st[(topic, p)] for p in range(3)] == [0, 0, 5]
    for p in range(3):
        ep = open(os.path.join(broker.data_dir, f"{topic}-{p}", "leader-epoch-checkpoint")).read()
        lines = ep.splitlines()
        assert lines[0] == "0" and int(lines[1]) == len(lines) - 2 >= 1, ep
        assert lines[2].split(" ")[1] == ("5" if p == 2 else "0"), ep
    broker.start()
    assert not os.path.exists(marker)
    assert "recovery scanned" not in broker.log_text().split("=== start #2")[-1], \
        "a clean restart must not scan"
    assert watermarks(broker.bootstrap, topic, 2) == (5, 30)


# --------------------------------------------------------------------------- timestamps

def test_log_append_time_and_offsets_for_times(broker):
    ct, lat = unique_topic("ct"), unique_topic("lat")
    confluent_create_topic(broker.bootstrap, ct, 1)
    confluent_create_topic(broker.bootstrap, lat, 1)
    err, msg = incremental_alter(broker.port, RES_TOPIC, lat,
                                 [("message.timestamp.type", OP_SET, "LogAppendTime")])
    assert err == 0, msg
    base = 1_600_000_000_000
    for topic in (ct, lat):
        p = Producer({"bootstrap.servers": broker.bootstrap, "acks": "all", "linger.ms": 0,
                      "batch.num.messages": 1})
        for i in range(200):
            p.produce(topic, value=b"x" * 300, timestamp=base + i * 1000)
            p.poll(0)
        assert p.flush(30) == 0
    before = int(time.time() * 1000) - 60_000

    got = confluent_consume_partitions(broker.bootstrap, ct, [0], 200)[0]
    assert [m.timestamp()[1] for m in got] == [base + i * 1000 for i in range(200)]
    got = confluent_consume_partitions(broker.bootstrap, lat, [0], 200)[0]
    assert all(m.timestamp()[0] == 2 and m.timestamp()[1] >= before for m in got), \
        "LogAppendTime topic must serve broker timestamps"

    c = Consumer({"bootstrap.servers": broker.bootstrap, "group.id": "oft"})
    try:
        for i in (0, 1, 57, 199):
            (tp,) = c.offsets_for_times([TopicPartition(ct, 0, base + i * 1000)], timeout=10)
            assert tp.offset == i, f"timestamp of record {i} -> offset {tp.offset}"
        (tp,) = c.offsets_for_times([TopicPartition(ct, 0, base + 57 * 1000 - 1)], timeout=10)
        assert tp.offset == 57
        (tp,) = c.offsets_for_times([TopicPartition(ct, 0, base + 10 ** 9)], timeout=10)
        assert tp.offset == -1, "a timestamp after every record has no offset"
        (tp,) = c.offsets_for_times([TopicPartition(lat, 0, before)], timeout=10)
        assert tp.offset == 0
    finally:
        c.close()
    broker.restart()  # and again through the indexes loaded from disk
    c = Consumer({"bootstrap.servers": broker.bootstrap, "group.id": "oft2"})
    try:
        (tp,) = c.offsets_for_times([TopicPartition(ct, 0, base + 123 * 1000)], timeout=10)
        assert tp.offset == 123
    finally:
        c.close()
