"""Durability across broker restarts, seen through stock clients.

After a graceful restart (SIGTERM, exit 0, start on the same data dir) every
topic, its partition count, every acknowledged message (keys, values, headers,
timestamps, offsets) and the offset bounds are intact, and new messages
continue the offsets.  After kill -9 (a process crash: the OS keeps the page
cache, so nothing acknowledged may be lost) the broker recovers the same way.
Deleted topics stay deleted across a restart.
"""

from confluent_kafka import Consumer, Producer, TopicPartition

from conftest import (confluent_admin, confluent_consume_partitions, confluent_create_topic,
                      confluent_topic_names, unique_topic, wait_until)


def produce(bootstrap, topic, partitions, n, tag, codec="none"):
    p = Producer({"bootstrap.servers": bootstrap, "acks": "all", "linger.ms": 5,
                  "compression.type": codec})
    errs = []
    sent = []
    for i in range(n):
        m = (i % partitions, f"{tag}-k{i}".encode(), f"{tag}-v{i}".encode() * 7,
             [("tag", tag.encode()), ("i", str(i).encode())])
        sent.append(m)
        p.produce(topic, key=m[1], value=m[2], headers=m[3], partition=m[0],
                  on_delivery=lambda e, msg: errs.append(e) if e else None)
    assert p.flush(30) == 0, f"{tag}: messages undelivered after 30s"
    assert not errs, f"{tag}: delivery errors {errs[:3]}"
    return sent


def snapshot(bootstrap, topic, partitions, total):
    got = confluent_consume_partitions(bootstrap, topic, range(partitions), total)
    return {p: [(m.offset(), m.key(), m.value(), m.headers(), m.timestamp())
                for m in ms] for p, ms in got.items()}


def watermarks(bootstrap, topic, partitions):
    c = Consumer({"bootstrap.servers": bootstrap, "group.id": "unused"})
    try:
        return [c.get_watermark_offsets(TopicPartition(topic, p), timeout=10)
                for p in range(partitions)]
    finally:
        c.close()


def check_topics(bootstrap, expected):
    md = confluent_admin(bootstrap).list_topics(timeout=10)
    for topic, parts in expected.items():
        t = md.topics.get(topic)
        assert t is not None and t.error is None, f"{topic} missing after restart: {t}"
        assert len(t.partitions) == parts, f"{topic}: {len(t.partitions)} partitions, want {parts}"


def test_graceful_restart_keeps_topics_and_data(broker):
    a, b = unique_topic("rs-a"), unique_topic("rs-b")
    confluent_create_topic(broker.bootstrap, a, 3)
    confluent_create_topic(broker.bootstrap, b, 1)
    produce(broker.bootstrap, a, 3, 300, "a1", codec="zstd")
    produce(broker.bootstrap, b, 1, 50, "b1")
    before_a = snapshot(broker.bootstrap, a, 3, 300)
    before_b = snapshot(broker.bootstrap, b, 1, 50)
    wm_a = watermarks(broker.bootstrap, a, 3)

    broker.restart()

    check_topics(broker.bootstrap, {a: 3, b: 1})
    assert watermarks(broker.bootstrap, a, 3) == wm_a, "watermarks changed across restart"
    assert snapshot(broker.bootstrap, a, 3, 300) == before_a, f"{a} data changed across restart"
    assert snapshot(broker.bootstrap, b, 1, 50) == before_b, f"{b} data changed across restart"

    # Appends continue after the recovered end, and survive a second restart.
    produce(broker.bootstrap, a, 3, 30, "a2")
    after = snapshot(broker.bootstrap, a, 3, 330)
    for p in range(3):
        assert after[p][:len(before_a[p])] == before_a[p]
        assert [o for o, *_ in after[p]] == list(range(len(after[p]))), f"partition {p} offsets"
    broker.restart()
    assert snapshot(broker.bootstrap, a, 3, 330) == after


def test_kill9_keeps_acknowledged_data(broker):
    topic = unique_topic("rs-k9")
    confluent_create_topic(broker.bootstrap, topic, 2)
    produce(broker.bootstrap, topic, 2, 200, "k9", codec="gzip")
    before = snapshot(broker.bootstrap, topic, 2, 200)

    broker.kill9()
    broker.start()

    check_topics(broker.bootstrap, {topic: 2})
    assert snapshot(broker.bootstrap, topic, 2, 200) == before, "acked data changed after kill -9"
    produce(broker.bootstrap, topic, 2, 20, "k9b")
    snap = snapshot(broker.bootstrap, topic, 2, 220)
    for p in range(2):
        assert [o for o, *_ in snap[p]] == list(range(len(snap[p]))), f"partition {p} offsets"


def test_deleted_topic_stays_deleted_after_restart(broker):
    keep, gone = unique_topic("rs-keep"), unique_topic("rs-gone")
    admin = confluent_create_topic(broker.bootstrap, keep, 1)
    confluent_create_topic(broker.bootstrap, gone, 2)
    produce(broker.bootstrap, gone, 2, 10, "g")
    admin.delete_topics([gone], operation_timeout=30)[gone].result(timeout=30)
    wait_until(lambda: gone not in confluent_topic_names(broker.bootstrap), 30,
               what=f"{gone} gone")
    broker.restart()
    names = confluent_topic_names(broker.bootstrap)
    assert keep in names and gone not in names, f"after restart: {sorted(names)}"
    # The name is free again: re-create it empty.
    confluent_create_topic(broker.bootstrap, gone, 1)
    assert watermarks(broker.bootstrap, gone, 1) == [(0, 0)], "re-created topic is not empty"
