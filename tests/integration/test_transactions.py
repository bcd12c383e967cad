"""Transactions (issue #14) with real clients: librdkafka's transactional
producer (confluent-kafka), read_committed and read_uncommitted consumers,
zombie fencing, consume-transform-produce with send_offsets_to_transaction,
the coordinator's timeout abort, and a broker killed mid-transaction."""
import time

import pytest
from confluent_kafka import Consumer, KafkaException, Producer, TopicPartition

from conftest import confluent_create_topic, unique_topic, wait_until

BROKER_CONFIG = {
    # the coordinator's timeout pass runs often enough for a short test
    "transaction.abort.timed.out.transaction.cleanup.interval.ms": "500",
}


@pytest.fixture
def tbroker(broker_factory):
    return broker_factory(overrides=BROKER_CONFIG)


def txn_producer(b, txn_id, **extra):
    conf = {"bootstrap.servers": b.bootstrap, "transactional.id": txn_id,
            "transaction.timeout.ms": 60000}
    conf.update(extra)
    p = Producer(conf)
    p.init_transactions(30)
    return p


def consume_all(b, topic, isolation, partitions=1, expect=None, timeout_s=15, group=None):
    """Values read from the beginning with the given isolation level (until
    `expect` values arrived or nothing new came for 2 s)."""
    c = Consumer({"bootstrap.servers": b.bootstrap, "group.id": group or unique_topic("g"),
                  "auto.offset.reset": "earliest", "enable.auto.commit": False,
                  "isolation.level": isolation})
    c.assign([TopicPartition(topic, i, 0) for i in range(partitions)])
    out = []
    deadline = time.time() + timeout_s
    quiet_until = time.time() + 2
    try:
        while time.time() < deadline:
            m = c.poll(0.2)
            if m is None:
                if expect is None and time.time() > quiet_until:
                    break
                if expect is not None and len(out) >= expect and time.time() > quiet_until:
                    break
                continue
            if m.error():
                continue
            out.append(m.value())
            quiet_until = time.time() + 1
    finally:
        c.close()
    return out


def test_commit_and_abort(tbroker):
    topic = unique_topic("txn")
    confluent_create_topic(tbroker.bootstrap, topic, 2)
    p = txn_producer(tbroker, unique_topic("tid"))
    p.begin_transaction()
    for i in range(10):
        p.produce(topic, value=b"c1-%d" % i, partition=i % 2)
    p.commit_transaction(30)
    p.begin_transaction()
    for i in range(7):
        p.produce(topic, value=b"a-%d" % i, partition=i % 2)
    p.flush(10)
    p.abort_transaction(30)
    p.begin_transaction()
    for i in range(5):
        p.produce(topic, value=b"c2-%d" % i, partition=i % 2)
    p.commit_transaction(30)
    committed = consume_all(tbroker, topic, "read_committed", partitions=2, expect=15)
    assert sorted(committed) == sorted([b"c1-%d" % i for i in range(10)] +
                                       [b"c2-%d" % i for i in range(5)])
    everything = consume_all(tbroker, topic, "read_uncommitted", partitions=2, expect=22)
    assert len(everything) == 22  # the aborted records are in the log
    assert b"a-3" in everything


def test_open_transaction_holds_back_read_committed(tbroker):
    topic = unique_topic("txn-lso")
    confluent_create_topic(tbroker.bootstrap, topic, 1)
    p = txn_producer(tbroker, unique_topic("tid"))
    plain = Producer({"bootstrap.servers": tbroker.bootstrap})
    plain.produce(topic, value=b"before", partition=0)
    plain.flush(10)
    p.begin_transaction()
    p.produce(topic, value=b"open", partition=0)
    p.flush(10)
    plain.produce(topic, value=b"after", partition=0)
    plain.flush(10)
    # the LSO stops at the open transaction's first record: "after" waits too
    assert consume_all(tbroker, topic, "read_committed") == [b"before"]
    assert consume_all(tbroker, topic, "read_uncommitted") == [b"before", b"open", b"after"]
    p.commit_transaction(30)
    assert consume_all(tbroker, topic, "read_committed", expect=3) == [b"before", b"open", b"after"]


def test_zombie_is_fenced(tbroker):
    topic = unique_topic("txn-zombie")
    confluent_create_topic(tbroker.bootstrap, topic, 1)
    tid = unique_topic("tid")
    old = txn_producer(tbroker, tid)
    old.begin_transaction()
    old.produce(topic, value=b"zombie", partition=0)
    old.flush(10)
    new = txn_producer(tbroker, tid)  # bumps the epoch, aborts the open transaction
    new.begin_transaction()
    new.produce(topic, value=b"fresh", partition=0)
    new.commit_transaction(30)
    with pytest.raises(KafkaException) as ei:
        old.produce(topic, value=b"zombie-2", partition=0)
        old.commit_transaction(10)
    err = ei.value.args[0]
    assert err.fatal() or "fenced" in str(err).lower(), str(err)
    assert consume_all(tbroker, topic, "read_committed", expect=1) == [b"fresh"]


def test_consume_transform_produce(tbroker):
    src, dst = unique_topic("ctp-in"), unique_topic("ctp-out")
    confluent_create_topic(tbroker.bootstrap, src, 1)
    confluent_create_topic(tbroker.bootstrap, dst, 1)
    plain = Producer({"bootstrap.servers": tbroker.bootstrap})
    for i in range(20):
        plain.produce(src, value=b"%d" % i, partition=0)
    plain.flush(10)
    group = unique_topic("ctp-g")
    c = Consumer({"bootstrap.servers": tbroker.bootstrap, "group.id": group,
                  "auto.offset.reset": "earliest", "enable.auto.commit": False,
                  "isolation.level": "read_committed"})
    c.subscribe([src])
    p = txn_producer(tbroker, unique_topic("tid"))
    got = []
    deadline = time.time() + 30
    while len(got) < 10 and time.time() < deadline:
        m = c.poll(0.5)
        if m is not None and not m.error():
            got.append(m)
    assert len(got) >= 10
    batch = got[:10]
    p.begin_transaction()
    for m in batch:
        p.produce(dst, value=b"x" + m.value(), partition=0)
    p.send_offsets_to_transaction([TopicPartition(src, 0, batch[-1].offset() + 1)],
                                  c.consumer_group_metadata(), 30)
    # not visible before the commit: a read_uncommitted consumer sees no
    # offset; a read_committed one (OffsetFetch require_stable) is told the
    # offset is unstable (UNSTABLE_OFFSET_COMMIT) and keeps asking, as Kafka
    # answers while a transaction holds the group's offset
    ru = Consumer({"bootstrap.servers": tbroker.bootstrap, "group.id": group,
                   "enable.auto.commit": False, "isolation.level": "read_uncommitted"})
    assert ru.committed([TopicPartition(src, 0)], 10)[0].offset < 0
    with pytest.raises(KafkaException) as e:
        c.committed([TopicPartition(src, 0)], 3)
    assert "Timed out" in str(e.value)
    p.commit_transaction(30)
    wait_until(lambda: ru.committed([TopicPartition(src, 0)], 10)[0].offset == 10, 15,
               what="transactional offsets visible after commit (read_uncommitted)")
    ru.close()
    wait_until(lambda: c.committed([TopicPartition(src, 0)], 10)[0].offset == 10, 15,
               what="transactional offsets visible after commit")
    # an aborted transaction's offsets never become the group's
    p.begin_transaction()
    p.produce(dst, value=b"nope", partition=0)
    p.send_offsets_to_transaction([TopicPartition(src, 0, 20)], c.consumer_group_metadata(), 30)
    p.abort_transaction(30)
    time.sleep(0.5)
    assert c.committed([TopicPartition(src, 0)], 10)[0].offset == 10
    c.close()
    assert consume_all(tbroker, dst, "read_committed", expect=10) == \
        [b"x%d" % i for i in range(10)]


def test_coordinator_aborts_a_timed_out_transaction(tbroker):
    topic = unique_topic("txn-timeout")
    confluent_create_topic(tbroker.bootstrap, topic, 1)
    p = txn_producer(tbroker, unique_topic("tid"), **{"transaction.timeout.ms": 2000})
    p.begin_transaction()
    p.produce(topic, value=b"left-open", partition=0)
    p.flush(10)
    plain = Producer({"bootstrap.servers": tbroker.bootstrap})
    plain.produce(topic, value=b"later", partition=0)
    plain.flush(10)
    # the coordinator aborts it after 2 s: the LSO moves past it
    wait_until(lambda: consume_all(tbroker, topic, "read_committed") == [b"later"], 20,
               what="timed-out transaction aborted by the coordinator")


def test_broker_killed_mid_transaction(tbroker):
    topic = unique_topic("txn-crash")
    confluent_create_topic(tbroker.bootstrap, topic, 1)
    tid = unique_topic("tid")
    p = txn_producer(tbroker, tid)
    p.begin_transaction()
    p.produce(topic, value=b"committed", partition=0)
    p.commit_transaction(30)
    p.begin_transaction()
    for i in range(50):
        p.produce(topic, value=b"partial-%d" % i, partition=0)
    p.flush(10)
    tbroker.kill9()
    tbroker.start()
    # a new instance with the same id aborts what was open and carries on
    p2 = txn_producer(tbroker, tid)
    p2.begin_transaction()
    p2.produce(topic, value=b"after-crash", partition=0)
    p2.commit_transaction(30)
    got = consume_all(tbroker, topic, "read_committed", expect=2)
    assert got == [b"committed", b"after-crash"]
