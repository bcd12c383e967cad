"""Internal topics cannot be deleted: deleting __consumer_offsets would strand
every consumer group (regression found with the CLI)."""

import pytest
from confluent_kafka import KafkaError, KafkaException
from confluent_kafka.admin import AdminClient


def test_delete_consumer_offsets_is_refused(broker):
    admin = AdminClient({"bootstrap.servers": broker.bootstrap})
    fut = admin.delete_topics(["__consumer_offsets"], operation_timeout=10)["__consumer_offsets"]
    with pytest.raises(KafkaException) as ei:
        fut.result(30)
    assert ei.value.args[0].code() == KafkaError.TOPIC_EXCEPTION
    md = admin.list_topics(timeout=10)
    assert "__consumer_offsets" in md.topics
