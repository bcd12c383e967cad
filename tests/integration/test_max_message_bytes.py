"""max.message.bytes is a topic config: a topic override is enforced (and can
be raised above the broker's message.max.bytes), and changes apply live."""

from confluent_kafka import KafkaError, Producer
from confluent_kafka.admin import AdminClient, ConfigResource, NewTopic

from conftest import unique_topic


def produce_one(bootstrap, topic, size):
    p = Producer({"bootstrap.servers": bootstrap, "message.max.bytes": 4_000_000,
                  "compression.type": "none", "linger.ms": 0})
    res = []
    p.produce(topic, value=b"x" * size, on_delivery=lambda err, m: res.append(err))
    p.flush(30)
    return res[0]


def test_topic_max_message_bytes(broker):
    admin = AdminClient({"bootstrap.servers": broker.bootstrap})
    small, big = unique_topic("mmb-small"), unique_topic("mmb-big")
    futs = admin.create_topics([
        NewTopic(small, 1, 1, config={"max.message.bytes": "2000"}),
        NewTopic(big, 1, 1, config={"max.message.bytes": "3000000"})])
    for f in futs.values():
        f.result(30)
    err = produce_one(broker.bootstrap, small, 5000)
    assert err is not None and err.code() == KafkaError.MSG_SIZE_TOO_LARGE
    assert produce_one(broker.bootstrap, small, 500) is None
    # Above the broker-wide message.max.bytes (1 MB default), allowed by the topic.
    assert produce_one(broker.bootstrap, big, 2_000_000) is None
    # Raise the small topic's limit live.
    res = ConfigResource(ConfigResource.Type.TOPIC, small, set_config={"max.message.bytes": "10000"})
    admin.alter_configs([res])[res].result(30)
    assert produce_one(broker.bootstrap, small, 5000) is None
