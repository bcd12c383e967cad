"""Transactions on a 3-node cluster (issue #14's "done when"): the broker
that coordinates a transaction is killed -9 in the middle of it.

__transaction_state is replicated (RF 3), so the coordinator moves to the
partition's new leader, which reloads the transaction from the log. Either
the same producer commits what it wrote before the crash (its writes were
acknowledged by every in-sync replica), or a new instance with the same
transactional.id fences it and the open transaction is aborted. In both
cases read_committed consumers see whole transactions only, and the killed
broker, once back, holds the same log as the others."""
import struct

from confluent_kafka import Consumer, Producer

from conftest import Reader, WireConn, enc_str, unique_topic, wait_until

OVERRIDES = {"transaction.abort.timed.out.transaction.cleanup.interval.ms": "500",
             # the suite's single-node default is 1; here the coordinator's
             # log must survive a broker
             "transaction.state.log.replication.factor": "3",
             "offsets.topic.replication.factor": "3"}


def coordinator_of(cluster, txn_id):
    """FindCoordinator v1 (TRANSACTION) asked of a live broker -> node id."""
    found = {}

    def ask():
        for i in cluster.live_brokers():
            try:
                c = WireConn(cluster.node(i).port, timeout_s=3)
                try:
                    r = Reader(c.request(10, 1, enc_str(txn_id) + struct.pack(">b", 1)))
                finally:
                    c.close()
            except OSError:
                continue
            r.i32()
            err = r.i16()
            r.string()
            node = r.i32()
            if err == 0 and node in cluster.live_brokers():
                found["node"] = node
                return True
        return False

    wait_until(ask, timeout_s=60, what=f"the coordinator of {txn_id}")
    return found["node"]


def producer(bootstrap, txn_id):
    p = Producer({"bootstrap.servers": bootstrap, "transactional.id": txn_id,
                  "transaction.timeout.ms": 120000, "message.timeout.ms": 120000})
    p.init_transactions(60)
    return p


def read_committed(bootstrap, topic, partitions, expect, timeout_s=60):
    c = Consumer({"bootstrap.servers": bootstrap, "group.id": unique_topic("g"),
                  "auto.offset.reset": "earliest", "enable.auto.commit": False,
                  "isolation.level": "read_committed"})
    from confluent_kafka import TopicPartition
    c.assign([TopicPartition(topic, p, 0) for p in range(partitions)])
    got = []
    try:
        import time
        deadline = time.monotonic() + timeout_s
        while len(got) < expect and time.monotonic() < deadline:
            m = c.poll(0.5)
            if m is None or m.error():
                continue
            got.append(m.value())
        # nothing beyond what was expected arrives
        end = time.monotonic() + 2
        while time.monotonic() < end:
            m = c.poll(0.2)
            if m is not None and not m.error():
                got.append(m.value())
    finally:
        c.close()
    return got


def send(p, topic, prefix, n, partitions):
    for i in range(n):
        p.produce(topic, value=b"%s-%d" % (prefix, i), partition=i % partitions)
    assert p.flush(60) == 0


def test_coordinator_killed_mid_transaction(cluster_factory):
    cluster = cluster_factory(overrides=OVERRIDES)
    topic = unique_topic("txn3")
    cluster.create_topic(topic, partitions=3, rf=3)
    tid = unique_topic("tid")
    p = producer(cluster.bootstrap, tid)
    p.begin_transaction()
    send(p, topic, b"one", 30, 3)
    p.commit_transaction(60)

    # a transaction in flight when its coordinator dies: the same producer
    # commits it through the coordinator's successor
    p.begin_transaction()
    send(p, topic, b"two", 30, 3)
    victim = coordinator_of(cluster, tid)
    cluster.kill9(victim)
    p.commit_transaction(120)
    successor = coordinator_of(cluster, tid)
    assert successor != victim

    # the next one dies again, uncommitted: a new instance fences the old
    # producer and the open transaction is aborted
    p.begin_transaction()
    send(p, topic, b"three", 30, 3)
    cluster.start(victim)
    cluster.wait_for_brokers(3, timeout_s=60)
    victim2 = coordinator_of(cluster, tid)
    cluster.kill9(victim2)
    p2 = producer(cluster.live_bootstrap(), tid)
    p2.begin_transaction()
    send(p2, topic, b"four", 30, 3)
    p2.commit_transaction(120)

    want = sorted([b"one-%d" % i for i in range(30)] + [b"two-%d" % i for i in range(30)] +
                  [b"four-%d" % i for i in range(30)])
    got = read_committed(cluster.live_bootstrap(), topic, 3, len(want))
    assert sorted(got) == want, f"{len(got)} read, {len(want)} expected"

    # the killed broker comes back and serves the same committed view
    cluster.start(victim2)
    cluster.wait_for_brokers(3, timeout_s=60)
    got = read_committed(cluster.node(victim2).bootstrap, topic, 3, len(want))
    assert sorted(got) == want
