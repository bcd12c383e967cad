"""Topic administration through stock admin clients: CreateTopics (validate
only, bad names, bad replication factor), CreatePartitions, DescribeConfigs
and DescribeCluster."""

import pytest
from confluent_kafka import KafkaError, KafkaException, Producer
from confluent_kafka.admin import AdminClient, ConfigResource, NewPartitions, NewTopic
from kafka.admin import KafkaAdminClient

from conftest import unique_topic, wait_until


def err_code(fut):
    with pytest.raises(KafkaException) as ei:
        fut.result(30)
    return ei.value.args[0].code()


def test_create_validate_only_and_errors(broker):
    admin = AdminClient({"bootstrap.servers": broker.bootstrap})
    t = unique_topic("adm-val")
    admin.create_topics([NewTopic(t, 3, 1)], validate_only=True)[t].result(30)
    assert t not in admin.list_topics(timeout=10).topics
    assert err_code(admin.create_topics([NewTopic("bad/name", 1, 1)])["bad/name"]) == \
        KafkaError.TOPIC_EXCEPTION
    t2 = unique_topic("adm-rf")
    assert err_code(admin.create_topics([NewTopic(t2, 1, 3)])[t2]) == \
        KafkaError.INVALID_REPLICATION_FACTOR
    t3 = unique_topic("adm-cfg")
    assert err_code(admin.create_topics(
        [NewTopic(t3, 1, 1, config={"retention.ms": "banana"})])[t3]) == KafkaError.INVALID_CONFIG
    assert err_code(admin.create_topics([NewTopic(t3, 0, 1)])[t3]) == KafkaError.INVALID_PARTITIONS


def test_create_partitions(broker):
    admin = AdminClient({"bootstrap.servers": broker.bootstrap})
    t = unique_topic("adm-parts")
    admin.create_topics([NewTopic(t, 2, 1)])[t].result(30)
    admin.create_partitions([NewPartitions(t, 5)])[t].result(30)
    wait_until(lambda: len(admin.list_topics(t, timeout=10).topics[t].partitions) == 5,
               what="5 partitions visible")
    p = Producer({"bootstrap.servers": broker.bootstrap, "topic.metadata.refresh.interval.ms": 100})
    res = []
    p.produce(t, value=b"to the new partition", partition=4,
              on_delivery=lambda e, m: res.append((e, m.partition(), m.offset())))
    p.flush(30)
    assert res == [(None, 4, 0)]
    # Fewer partitions than now is refused.
    assert err_code(admin.create_partitions([NewPartitions(t, 3)])[t]) == \
        KafkaError.INVALID_PARTITIONS


def test_describe_configs_topic_and_broker(broker):
    admin = AdminClient({"bootstrap.servers": broker.bootstrap})
    t = unique_topic("adm-desc")
    admin.create_topics([NewTopic(t, 1, 1, config={"retention.ms": "12345",
                                                   "cleanup.policy": "delete"})])[t].result(30)
    res = ConfigResource(ConfigResource.Type.TOPIC, t)
    cfg = admin.describe_configs([res])[res].result(30)
    assert cfg["retention.ms"].value == "12345"
    assert cfg["retention.ms"].source == 1  # DYNAMIC_TOPIC_CONFIG
    assert cfg["segment.bytes"].source in (4, 5)  # static broker or default
    assert "max.message.bytes" in cfg and "min.insync.replicas" in cfg
    bres = ConfigResource(ConfigResource.Type.BROKER, "1")
    bcfg = admin.describe_configs([bres])[bres].result(30)
    assert bcfg["node.id"].value == "1"
    assert "log.dirs" in bcfg


def test_describe_cluster_kafka_python(broker):
    admin = KafkaAdminClient(bootstrap_servers=broker.bootstrap)
    try:
        d = admin.describe_cluster()
        assert d["controller_id"] == 1
        assert [b["node_id"] for b in d["brokers"]] == [1]
        assert d["brokers"][0]["port"] == broker.port
        assert d["cluster_id"]
    finally:
        admin.close()


def test_describe_cluster_wire_v1(broker):
    """DescribeCluster v1 (flexible) over the raw wire."""
    import struct
    from conftest import WireConn, dec_uvarint

    c = WireConn(broker.port)
    try:
        body = b"\x00" + b"\x01" + b"\x00"  # include ops=false, endpoint_type=1, no tags
        buf = c.request(60, 1, body, flexible=True)
    finally:
        c.close()
    pos = 1  # response header v1: empty tagged fields
    throttle, err = struct.unpack_from(">ih", buf, pos)
    pos += 6
    n, pos = dec_uvarint(buf, pos)  # error message (compact nullable)
    pos += max(n - 1, 0)
    (endpoint_type,) = struct.unpack_from(">b", buf, pos)
    pos += 1
    n, pos = dec_uvarint(buf, pos)
    cluster_id = buf[pos:pos + n - 1].decode()
    pos += n - 1
    (controller,) = struct.unpack_from(">i", buf, pos)
    pos += 4
    nb, pos = dec_uvarint(buf, pos)
    (node_id,) = struct.unpack_from(">i", buf, pos)
    pos += 4
    n, pos = dec_uvarint(buf, pos)
    host = buf[pos:pos + n - 1].decode()
    pos += n - 1
    (port,) = struct.unpack_from(">i", buf, pos)
    assert (err, endpoint_type, controller, nb - 1, node_id, host, port) == \
        (0, 1, 1, 1, 1, "127.0.0.1", broker.port)
    assert len(cluster_id) == 22
