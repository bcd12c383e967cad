"""Dynamic broker configs: AlterConfigs / IncrementalAlterConfigs on BROKER
resources (this node's id, or "" for the cluster-wide default).

What must hold:
  - a dynamic change (log.segment.bytes, log.retention.ms, ...) reaches the
    logs of existing topics without a restart (segments roll at the new size,
    old segments are deleted at the new retention), and survives a restart;
  - DescribeConfigs reports the dynamic values with their sources
    (DYNAMIC_BROKER_CONFIG = 2, DYNAMIC_DEFAULT_BROKER_CONFIG = 3), read_only
    false for dynamic keys, synonyms in Kafka's order; topic configs inherit
    them (topic override -> per-broker -> cluster default -> static -> default);
  - static keys are refused with INVALID_CONFIG ("Cannot update these configs
    dynamically"), bad values with INVALID_CONFIG naming the key, and
    validate_only changes nothing.

Clients: confluent_kafka AdminClient.alter_configs (legacy AlterConfigs; the
2.0.2 binding has no incremental_alter_configs), kafka-python's
KafkaAdminClient.alter_configs, and raw wire requests where a client cannot
express the request (resource name "", synonyms).
"""
import glob
import os
import struct
import time

import pytest
from confluent_kafka import Consumer, Producer, TopicPartition

from conftest import (Reader, WireConn, confluent_admin, confluent_create_topic, enc_array,
                      enc_str, unique_topic, wait_until)

KERR_INVALID_CONFIG = 40
RES_TOPIC, RES_BROKER = 2, 4
OP_SET, OP_DELETE = 0, 1
SRC_TOPIC, SRC_DYN_BROKER, SRC_DYN_DEFAULT, SRC_STATIC, SRC_DEFAULT = 1, 2, 3, 4, 5


# --------------------------------------------------------------------------- wire helpers

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
    """Legacy AlterConfigs v1 (replaces the resource's dynamic configs): kv {key: value}."""
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


def describe(port, res_type, name, keys=None):
    """DescribeConfigs v1 with synonyms -> (error, {key: entry}); entry is a dict with
    value, read_only, source, synonyms [(name, value, source)]."""
    names = struct.pack(">i", -1) if keys is None else enc_array([enc_str(k) for k in keys])
    body = enc_array([struct.pack(">b", res_type) + enc_str(name) + names])
    body += struct.pack(">b", 1)  # include_synonyms
    c = WireConn(port)
    try:
        r = Reader(c.request(32, 1, body))
    finally:
        c.close()
    r.i32()

    def entry():
        k, v, ro, src, _sens = r.string(), r.string(), r.i8(), r.i8(), r.i8()
        syn = r.array(lambda: (r.string(), r.string(), r.i8()))
        return k, {"value": v, "read_only": bool(ro), "source": src, "synonyms": syn}

    def result():
        err, _msg, _t, _n = r.i16(), r.string(), r.i8(), r.string()
        return err, dict(r.array(entry))

    (res,) = r.array(result)
    return res


# --------------------------------------------------------------------------- helpers

def produce(bootstrap, topic, n, size=200, tag="m"):
    """n messages, one record batch each (so segment limits apply per message)."""
    p = Producer({"bootstrap.servers": bootstrap, "acks": "all", "linger.ms": 0,
                  "batch.num.messages": 1})
    errs = []
    for i in range(n):
        p.produce(topic, key=f"{tag}{i}".encode(), value=(f"{tag}{i}-".encode() * size)[:size],
                  partition=0, on_delivery=lambda e, m: errs.append(e) if e else None)
    assert p.flush(30) == 0, "messages undelivered after 30s"
    assert not errs, f"delivery errors: {errs[:3]}"


def segment_files(broker, topic, partition=0):
    return sorted(glob.glob(os.path.join(broker.data_dir, f"{topic}-{partition}", "*.log")))


def low_watermark(bootstrap, topic):
    c = Consumer({"bootstrap.servers": bootstrap, "group.id": "dyn-wm"})
    try:
        return c.get_watermark_offsets(TopicPartition(topic, 0), timeout=10)[0]
    finally:
        c.close()


def source_int(s):
    return int(getattr(s, "value", s))


# --------------------------------------------------------------------------- tests

def test_dynamic_segment_bytes_applies_live_reports_sources_and_survives_restart(broker):
    from confluent_kafka.admin import ConfigResource

    port, node = broker.port, str(broker.node_id)
    topic = unique_topic("dyn")
    confluent_create_topic(broker.bootstrap, topic, 1)
    produce(broker.bootstrap, topic, 10)
    before = len(segment_files(broker, topic))
    assert before == 1, segment_files(broker, topic)

    # per-broker dynamic config through the confluent AdminClient (AlterConfigs)
    admin = confluent_admin(broker.bootstrap)
    res = ConfigResource(ConfigResource.Type.BROKER, node,
                         set_config={"log.segment.bytes": "2000"})
    admin.alter_configs([res])[res].result(timeout=30)

    err, cfg = describe(port, RES_BROKER, node)
    assert err == 0
    e = cfg["log.segment.bytes"]
    assert (e["value"], e["source"], e["read_only"]) == ("2000", SRC_DYN_BROKER, False), e
    assert e["synonyms"][0] == ("log.segment.bytes", "2000", SRC_DYN_BROKER), e
    assert cfg["node.id"]["read_only"] is True
    assert cfg["log.dirs"]["read_only"] is True
    assert cfg["log.retention.ms"]["read_only"] is False

    # the topic inherits it (no override of its own)
    err, tcfg = describe(port, RES_TOPIC, topic, ["segment.bytes"])
    assert err == 0
    assert tcfg["segment.bytes"]["value"] == "2000"
    assert tcfg["segment.bytes"]["source"] == SRC_DYN_BROKER
    assert ("log.segment.bytes", "2000", SRC_DYN_BROKER) in tcfg["segment.bytes"]["synonyms"]
    # ... as confluent's describe shows too
    tres = ConfigResource(ConfigResource.Type.TOPIC, topic)
    entries = admin.describe_configs([tres])[tres].result(timeout=10)
    assert entries["segment.bytes"].value == "2000"
    assert source_int(entries["segment.bytes"].source) == SRC_DYN_BROKER

    # the open partition log rolls at the new size without a restart
    produce(broker.bootstrap, topic, 60, tag="small")
    assert len(segment_files(broker, topic)) >= before + 3, segment_files(broker, topic)

    # cluster-wide default (resource name ""): below the per-broker value in precedence
    err, msg = incremental_alter(port, RES_BROKER, "", [("log.segment.bytes", OP_SET, "1000000"),
                                                       ("log.retention.ms", OP_SET, "3600000")])
    assert err == 0, msg
    err, dcfg = describe(port, RES_BROKER, "")
    assert err == 0
    assert {k: (v["value"], v["source"]) for k, v in dcfg.items()} == {
        "log.segment.bytes": ("1000000", SRC_DYN_DEFAULT),
        "log.retention.ms": ("3600000", SRC_DYN_DEFAULT)}
    err, cfg = describe(port, RES_BROKER, node, ["log.segment.bytes"])
    syn = cfg["log.segment.bytes"]["synonyms"]
    assert [s[2] for s in syn] == [SRC_DYN_BROKER, SRC_DYN_DEFAULT], syn
    err, tcfg = describe(port, RES_TOPIC, topic, ["segment.bytes", "retention.ms"])
    assert tcfg["segment.bytes"]["value"] == "2000"  # the per-broker value still wins
    assert (tcfg["retention.ms"]["value"], tcfg["retention.ms"]["source"]) == (
        "3600000", SRC_DYN_DEFAULT)

    # survives a restart, and still applies to the log after it
    broker.restart()
    err, cfg = describe(port, RES_BROKER, node, ["log.segment.bytes", "log.retention.ms"])
    assert (cfg["log.segment.bytes"]["value"], cfg["log.segment.bytes"]["source"]) == (
        "2000", SRC_DYN_BROKER)
    assert (cfg["log.retention.ms"]["value"], cfg["log.retention.ms"]["source"]) == (
        "3600000", SRC_DYN_DEFAULT)
    n = len(segment_files(broker, topic))
    produce(broker.bootstrap, topic, 30, tag="after")
    assert len(segment_files(broker, topic)) >= n + 2, "dynamic segment size lost on restart"

    # delete the per-broker value: the cluster default takes over
    err, msg = incremental_alter(port, RES_BROKER, node, [("log.segment.bytes", OP_DELETE, "")])
    assert err == 0, msg
    err, tcfg = describe(port, RES_TOPIC, topic, ["segment.bytes"])
    assert (tcfg["segment.bytes"]["value"], tcfg["segment.bytes"]["source"]) == (
        "1000000", SRC_DYN_DEFAULT)
    # a topic override beats every broker layer
    err, msg = incremental_alter(port, RES_TOPIC, topic, [("segment.bytes", OP_SET, "500000")])
    assert err == 0, msg
    err, tcfg = describe(port, RES_TOPIC, topic, ["segment.bytes"])
    assert (tcfg["segment.bytes"]["value"], tcfg["segment.bytes"]["source"]) == (
        "500000", SRC_TOPIC)
    # legacy AlterConfigs with nothing: the cluster defaults are all removed
    err, msg = alter_configs(port, RES_BROKER, "", {})
    assert err == 0, msg
    err, dcfg = describe(port, RES_BROKER, "")
    assert dcfg == {}
    err, cfg = describe(port, RES_BROKER, node, ["log.retention.ms"])
    assert cfg["log.retention.ms"]["source"] in (SRC_STATIC, SRC_DEFAULT)


@pytest.mark.broker_config(**{"log.retention.check.interval.ms": "300"})
def test_dynamic_retention_ms_deletes_old_segments_of_existing_topic(broker):
    topic = unique_topic("dynret")
    confluent_create_topic(broker.bootstrap, topic, 1)
    err, msg = incremental_alter(broker.port, RES_TOPIC, topic,
                                 [("segment.bytes", OP_SET, "2000")])
    assert err == 0, msg
    produce(broker.bootstrap, topic, 40)
    assert len(segment_files(broker, topic)) >= 3
    time.sleep(1.0)  # the segments must be older than the retention set next
    assert low_watermark(broker.bootstrap, topic) == 0, "deleted before retention changed"

    # cluster-wide default: every topic without an override now keeps 500 ms
    err, msg = incremental_alter(broker.port, RES_BROKER, "", [("log.retention.ms", OP_SET, "500")])
    assert err == 0, msg
    wait_until(lambda: low_watermark(broker.bootstrap, topic) > 0, timeout_s=30,
               what="old segments deleted after the dynamic retention change")


def test_static_keys_and_bad_values_refused(broker):
    port, node = broker.port, str(broker.node_id)
    for key, value in [("log.dirs", "/tmp/x"), ("num.partitions", "3"),
                       ("log.retention.hours", "1"), ("node.id", "7")]:
        err, msg = incremental_alter(port, RES_BROKER, node, [(key, OP_SET, value)])
        assert err == KERR_INVALID_CONFIG, (key, err, msg)
        assert "Cannot update these configs dynamically" in msg and key in msg, msg
        err, msg = alter_configs(port, RES_BROKER, "", {key: value})
        assert err == KERR_INVALID_CONFIG and "dynamically" in msg, (key, err, msg)
    err, msg = incremental_alter(port, RES_BROKER, node, [("log.retention.ms", OP_SET, "soon")])
    assert err == KERR_INVALID_CONFIG and "log.retention.ms" in msg, (err, msg)
    err, msg = incremental_alter(port, RES_BROKER, node, [("log.cleanup.policy", OP_SET, "shred")])
    assert err == KERR_INVALID_CONFIG and "log.cleanup.policy" in msg, (err, msg)

    # validate_only passes a good change and stores nothing
    err, msg = incremental_alter(port, RES_BROKER, node, [("log.retention.ms", OP_SET, "1000")],
                                 validate_only=True)
    assert err == 0, msg
    err, cfg = describe(port, RES_BROKER, node, ["log.retention.ms"])
    assert cfg["log.retention.ms"]["source"] in (SRC_STATIC, SRC_DEFAULT)

    # one bad key refuses the whole resource
    err, msg = incremental_alter(port, RES_BROKER, node, [("log.retention.ms", OP_SET, "1000"),
                                                         ("log.dirs", OP_SET, "/x")])
    assert err == KERR_INVALID_CONFIG
    err, cfg = describe(port, RES_BROKER, node, ["log.retention.ms"])
    assert cfg["log.retention.ms"]["source"] in (SRC_STATIC, SRC_DEFAULT)


def test_kafka_python_alter_broker_config(broker):
    from kafka.admin import ConfigResource, ConfigResourceType, KafkaAdminClient

    admin = KafkaAdminClient(bootstrap_servers=broker.bootstrap)
    try:
        node = str(broker.node_id)
        resp = admin.alter_configs([ConfigResource(ConfigResourceType.BROKER, node,
                                                   configs={"log.roll.ms": "3600000"})])
        assert [r[0] for r in resp.resources] == [0], resp
        resp = admin.alter_configs([ConfigResource(ConfigResourceType.BROKER, node,
                                                   configs={"num.io.threads": "4"})])
        assert [r[0] for r in resp.resources] == [KERR_INVALID_CONFIG], resp
    finally:
        admin.close()
    err, cfg = describe(broker.port, RES_BROKER, node, ["log.roll.ms"])
    assert (cfg["log.roll.ms"]["value"], cfg["log.roll.ms"]["source"]) == (
        "3600000", SRC_DYN_BROKER)
    err, tcfg = describe(broker.port, RES_TOPIC, "__no_such_topic__", ["segment.ms"])
    assert err != 0
