"""Internal topics cannot be deleted: deleting __consumer_offsets would strand
every consumer group (regression found with the CLI). The topic is created by
the first group use (test_lazy_offsets_topic.py), so deletion is refused both
before it exists and after."""

import pytest
from confluent_kafka import Consumer, KafkaError, KafkaException, TopicPartition
from confluent_kafka.admin import AdminClient

from conftest import confluent_create_topic, unique_topic


def refuse_delete(admin):
    fut = admin.delete_topics(["__consumer_offsets"], operation_timeout=10)["__consumer_offsets"]
    with pytest.raises(KafkaException) as ei:
        fut.result(30)
    assert ei.value.args[0].code() == KafkaError.TOPIC_EXCEPTION


def test_delete_consumer_offsets_is_refused(broker):
    admin = AdminClient({"bootstrap.servers": broker.bootstrap})
    refuse_delete(admin)
    assert "__consumer_offsets" not in admin.list_topics(timeout=10).topics
    # A group's first lookup creates it.
    topic = unique_topic("int")
    confluent_create_topic(broker.bootstrap, topic, 1)
    c = Consumer({"bootstrap.servers": broker.bootstrap, "group.id": unique_topic("g")})
    try:
        assert c.committed([TopicPartition(topic, 0)], timeout=15)[0].offset < 0
    finally:
        c.close()
    refuse_delete(admin)
    md = admin.list_topics(timeout=10)
    assert "__consumer_offsets" in md.topics
