"""Consumer groups end to end: the classic group protocol and committed offsets
(src/coord, src/broker/handle_group.c) driven by stock clients.

What is checked:
  - confluent-kafka (librdkafka) eager (range, roundrobin) and cooperative-sticky
    groups: members join, leave and crash (a subprocess consumer killed with
    SIGKILL) and the partitions are reassigned to the survivors; after every poll
    round no partition is owned by two live members;
  - commit-after-processing gives at-least-once: a successor starts exactly at
    the last committed offsets, nothing before them is redelivered, nothing after
    them is lost;
  - committed offsets and the group survive a broker restart;
  - a static member (group.instance.id) that restarts gets its old assignment
    back without a rebalance (the other member sees no revocation);
  - kafka-python consumer groups and its admin client: list, describe, delete
    groups report the right states; committed offsets are fetched back;
  - a commit for an unknown topic fails with UNKNOWN_TOPIC_OR_PARTITION and a
    too-large metadata string with OFFSET_METADATA_TOO_LARGE.
Waits are bounded polls (conftest.wait_until / poll_until below), never bare sleeps.
"""

import json
import os
import subprocess
import sys
import threading
import time

import pytest
from confluent_kafka import Consumer, KafkaError, KafkaException, Producer, TopicPartition

from conftest import confluent_admin, confluent_create_topic, unique_topic, wait_until

SESSION_MS = 6000  # the broker's default group.min.session.timeout.ms
PARTITIONS = 6


# --------------------------------------------------------------------------- helpers

def make_topic(bootstrap, partitions=PARTITIONS):
    topic = unique_topic("grp")
    confluent_create_topic(bootstrap, topic, partitions)
    return topic


def produce(bootstrap, topic, n, partitions=PARTITIONS, start=0):
    """n messages, value = str(i), round-robin over partitions; returns
    {partition: [values in order]}."""
    p = Producer({"bootstrap.servers": bootstrap, "linger.ms": 5})
    sent = {q: [] for q in range(partitions)}
    for i in range(start, start + n):
        q = i % partitions
        p.produce(topic, value=str(i).encode(), partition=q)
        sent[q].append(str(i))
    assert p.flush(30) == 0, "producer did not deliver everything"
    return sent


def consumer_conf(bootstrap, group, strategy="range", **extra):
    conf = {"bootstrap.servers": bootstrap, "group.id": group,
            "partition.assignment.strategy": strategy,
            "session.timeout.ms": SESSION_MS, "heartbeat.interval.ms": 500,
            "auto.offset.reset": "earliest", "enable.auto.commit": False,
            "fetch.wait.max.ms": 100, "topic.metadata.refresh.interval.ms": 2000}
    conf.update(extra)
    return conf


class Member:
    """An in-process confluent consumer that records what it owns and reads."""

    def __init__(self, bootstrap, group, topic, strategy="range", **extra):
        self.c = Consumer(consumer_conf(bootstrap, group, strategy, **extra))
        self.cooperative = strategy == "cooperative-sticky"
        self.assigns = 0
        self.revokes = 0
        self.messages = []  # (partition, offset, value)
        self.closed = False
        self.c.subscribe([topic], on_assign=self._on_assign, on_revoke=self._on_revoke,
                         on_lost=self._on_revoke)

    def _on_assign(self, c, parts):
        self.assigns += 1

    def _on_revoke(self, c, parts):
        self.revokes += 1

    def poll(self, timeout=0.05):
        m = self.c.poll(timeout)
        if m is not None and m.error() is None:
            self.messages.append((m.partition(), m.offset(), m.value().decode()))
        return m

    def owned(self):
        return set() if self.closed else {tp.partition for tp in self.c.assignment()}

    def close(self):
        """Leave the group (a static member: just go). librdkafka 2.0.2's
        close() can hang for good when it meets a cooperative rebalance in
        flight (fixed upstream in 2.4, librdkafka #4527), so a cooperative
        member unsubscribes first and polls until it has given its
        partitions back, which takes that path away. (Not the others:
        unsubscribing makes a static member leave, which close does not.)
        The close is bounded either way, so a hang fails this test instead
        of stalling the whole run."""
        if self.closed:
            return
        if self.cooperative:
            self.c.unsubscribe()
            deadline = time.monotonic() + 15
            while self.c.assignment() and time.monotonic() < deadline:
                self.poll()
        t = threading.Thread(target=self.c.close, daemon=True)
        t.start()
        t.join(60)
        assert not t.is_alive(), "consumer close() did not return within 60 s"
        self.closed = True


def check_disjoint(members, extra=None):
    """No partition is owned by two live members right now."""
    seen = {}
    owners = [(f"m{i}", m.owned()) for i, m in enumerate(members)] + list(extra or [])
    for name, parts in owners:
        for p in parts:
            assert p not in seen, f"partition {p} owned by both {seen[p]} and {name}: {owners}"
            seen[p] = name


def poll_until(members, pred, timeout_s=45.0, what="condition", extra=lambda: []):
    """Poll every live member in turn (checking disjoint ownership of the
    in-process members after each round) until pred() holds; bounded. extra()
    lists (name, partitions) of out-of-process members for the messages only:
    what a child reports lags behind it, so it cannot join the check."""
    deadline = time.monotonic() + timeout_s
    while True:
        for m in members:
            if not m.closed:
                m.poll()
        check_disjoint([m for m in members if not m.closed])
        if pred():
            return
        assert time.monotonic() < deadline, (
            f"timed out after {timeout_s}s waiting for {what};"
            f" owned: {[sorted(m.owned()) for m in members]} extra: {extra()}")


def covers_all(members, n=PARTITIONS, extra=lambda: []):
    parts = [m.owned() for m in members if not m.closed] + [p for _, p in extra()]
    return set().union(*parts) == set(range(n)) and all(parts)


CHILD = r"""
import json, sys
from confluent_kafka import Consumer
conf = json.loads(sys.argv[1])
c = Consumer(conf)
c.subscribe([sys.argv[2]])
last = None
while True:
    c.poll(0.05)
    a = sorted(tp.partition for tp in c.assignment())
    if a != last:
        print(json.dumps(a), flush=True)
        last = a
"""


class ChildMember:
    """A consumer in a subprocess (so it can be killed); reports its assignment."""

    def __init__(self, bootstrap, group, topic, strategy="range"):
        conf = consumer_conf(bootstrap, group, strategy)
        self.proc = subprocess.Popen([sys.executable, "-c", CHILD, json.dumps(conf), topic],
                                     stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
        self.assignment = set()
        self.alive = True
        self.t = threading.Thread(target=self._read, daemon=True)
        self.t.start()

    def _read(self):
        for line in self.proc.stdout:
            self.assignment = set(json.loads(line))

    def owned(self):
        return [("child", self.assignment)] if self.alive else []

    def kill(self):
        self.proc.kill()
        self.proc.wait()
        self.alive = False


def committed(bootstrap, group, topic, partitions=PARTITIONS):
    c = Consumer({"bootstrap.servers": bootstrap, "group.id": group})
    try:
        res = c.committed([TopicPartition(topic, p) for p in range(partitions)], timeout=15)
        return {tp.partition: tp.offset for tp in res}
    finally:
        c.close()


# --------------------------------------------------------------------------- eager and cooperative

@pytest.mark.parametrize("strategy", ["range", "roundrobin", "cooperative-sticky"])
def test_join_leave_reassigns(broker, strategy):
    topic = make_topic(broker.bootstrap)
    group = unique_topic("g")
    a = Member(broker.bootstrap, group, topic, strategy)
    poll_until([a], lambda: a.owned() == set(range(PARTITIONS)), what="a owns everything")
    b = Member(broker.bootstrap, group, topic, strategy)
    poll_until([a, b], lambda: covers_all([a, b]), what="a and b share the partitions")
    c = Member(broker.bootstrap, group, topic, strategy)
    poll_until([a, b, c], lambda: covers_all([a, b, c]), what="three members share")
    assert all(len(m.owned()) == 2 for m in (a, b, c)), [m.owned() for m in (a, b, c)]
    if strategy == "cooperative-sticky":
        # Incremental: nobody lost everything while c joined.
        assert a.revokes == 0 or a.owned()
    b.close()  # LeaveGroup
    poll_until([a, c], lambda: covers_all([a, c]), what="a and c take over b's partitions")
    a.close()
    poll_until([c], lambda: c.owned() == set(range(PARTITIONS)), what="c owns everything")
    c.close()


@pytest.mark.parametrize("strategy", ["range", "cooperative-sticky"])
def test_crashed_member_is_replaced(broker, strategy):
    topic = make_topic(broker.bootstrap)
    group = unique_topic("g")
    child = ChildMember(broker.bootstrap, group, topic, strategy)
    wait_until(lambda: child.assignment == set(range(PARTITIONS)), 45, what="child owns all")
    a = Member(broker.bootstrap, group, topic, strategy)
    poll_until([a], lambda: covers_all([a], extra=child.owned) and child.assignment != set(range(PARTITIONS)),
               what="a and the child share", extra=child.owned)
    child.kill()  # no LeaveGroup: only the session timeout can tell
    poll_until([a], lambda: a.owned() == set(range(PARTITIONS)), timeout_s=SESSION_MS / 1000 + 40,
               what="a takes over the crashed member's partitions")
    a.close()


# --------------------------------------------------------------------------- offsets

def test_commit_after_processing_is_at_least_once(broker):
    topic = make_topic(broker.bootstrap)
    group = unique_topic("g")
    sent = produce(broker.bootstrap, topic, 600)
    a = Member(broker.bootstrap, group, topic)
    # Process and commit about half of each partition, then stop without
    # committing what was read after that (a crash after processing).
    poll_until([a], lambda: len(a.messages) >= 300, what="a read 300 messages")
    last = {}
    for p, off, _ in a.messages:
        last[p] = max(last.get(p, -1), off)
    commit = {p: off + 1 for p, off in last.items()}
    a.c.commit(offsets=[TopicPartition(topic, p, o) for p, o in commit.items()], asynchronous=False)
    a.messages.clear()
    a.close()
    assert committed(broker.bootstrap, group, topic) == {p: commit.get(p, -1001) for p in range(PARTITIONS)}

    b = Member(broker.bootstrap, group, topic)
    poll_until([b], lambda: len(b.messages) >= 600 - sum(commit.values()),
               what="b reads everything after the commits")
    first = {}
    got = {p: [] for p in range(PARTITIONS)}
    for p, off, v in b.messages:
        first.setdefault(p, off)
        got[p].append(v)
    for p in range(PARTITIONS):
        start = commit.get(p, 0)
        assert first.get(p, start) == start, f"partition {p}: resumed at {first.get(p)}, committed {start}"
        assert got[p] == sent[p][start:], f"partition {p}: lost or duplicated after the commit"
    b.close()


def test_offsets_survive_restart(broker):
    topic = make_topic(broker.bootstrap)
    group = unique_topic("g")
    produce(broker.bootstrap, topic, 60)
    a = Member(broker.bootstrap, group, topic)
    poll_until([a], lambda: len(a.messages) >= 60, what="a read everything")
    a.c.commit(offsets=[TopicPartition(topic, p, 10 - p) for p in range(PARTITIONS)],
               asynchronous=False)
    a.close()
    # Commit metadata strings too (kafka-python can; this confluent-kafka cannot).
    from kafka import KafkaConsumer
    from kafka import TopicPartition as KTP
    from kafka.structs import OffsetAndMetadata
    kc = KafkaConsumer(bootstrap_servers=broker.bootstrap, group_id=group, enable_auto_commit=False)
    kc.commit({KTP(topic, p): OffsetAndMetadata(10 - p, "meta-%d" % p) for p in range(PARTITIONS)})
    kc.close()
    before = committed(broker.bootstrap, group, topic)
    assert before == {p: 10 - p for p in range(PARTITIONS)}
    broker.restart()
    assert committed(broker.bootstrap, group, topic) == before
    # Metadata survives too (kafka-python shows it).
    from kafka import KafkaAdminClient
    admin = KafkaAdminClient(bootstrap_servers=broker.bootstrap)
    offs = admin.list_consumer_group_offsets(group)
    assert {tp.partition: (om.offset, om.metadata) for tp, om in offs.items()} == \
        {p: (10 - p, "meta-%d" % p) for p in range(PARTITIONS)}
    admin.close()
    # And the group resumes from them.
    b = Member(broker.bootstrap, group, topic)
    poll_until([b], lambda: len(b.messages) >= 60 - sum(before.values()), what="b resumes")
    assert min(off for p, off, _ in b.messages if p == 5) == 5
    b.close()


def test_commit_errors(broker):
    from kafka import KafkaConsumer
    from kafka import TopicPartition as KTP
    from kafka.errors import OffsetMetadataTooLargeError
    from kafka.structs import OffsetAndMetadata

    topic = make_topic(broker.bootstrap, 2)
    group = unique_topic("g")
    c = Consumer({"bootstrap.servers": broker.bootstrap, "group.id": group})
    try:
        with pytest.raises(KafkaException) as ei:
            c.commit(offsets=[TopicPartition(topic, 7, 5)], asynchronous=False)
        assert ei.value.args[0].code() == KafkaError.UNKNOWN_TOPIC_OR_PART, ei.value
        res = c.commit(offsets=[TopicPartition(topic, 1, 5)], asynchronous=False)
        assert [tp.offset for tp in res] == [5]
    finally:
        c.close()
    kc = KafkaConsumer(bootstrap_servers=broker.bootstrap, group_id=group, enable_auto_commit=False)
    try:
        with pytest.raises(OffsetMetadataTooLargeError):
            kc.commit({KTP(topic, 0): OffsetAndMetadata(5, "x" * 5000)})
        kc.commit({KTP(topic, 0): OffsetAndMetadata(6, "y" * 4096)})
        assert kc.committed(KTP(topic, 0)) == 6
    finally:
        kc.close()
    assert committed(broker.bootstrap, group, topic, 2) == {0: 6, 1: 5}


# --------------------------------------------------------------------------- static membership

def test_static_member_restart_no_rebalance(broker):
    topic = make_topic(broker.bootstrap)
    group = unique_topic("g")
    extra = {"session.timeout.ms": 20000}
    a = Member(broker.bootstrap, group, topic, **extra, **{"group.instance.id": "inst-a"})
    poll_until([a], lambda: a.owned() == set(range(PARTITIONS)), what="a owns everything")
    b = Member(broker.bootstrap, group, topic, **extra, **{"group.instance.id": "inst-b"})
    poll_until([a, b], lambda: covers_all([a, b]), what="a and b share")
    poll_until([a, b], lambda: a.assigns >= 2 and b.assigns >= 1, what="callbacks settle")
    a_parts = a.owned()
    b_revokes, b_assigns = b.revokes, b.assigns
    a.close()  # a static member leaves no LeaveGroup behind
    a2 = Member(broker.bootstrap, group, topic, **extra, **{"group.instance.id": "inst-a"})
    poll_until([a2, b], lambda: a2.owned() == a_parts, what="a2 gets a's old partitions back")
    # Let b heartbeat for a while: a rebalance would reach it now.
    deadline = time.monotonic() + 3
    poll_until([a2, b], lambda: time.monotonic() > deadline, what="heartbeats")
    assert (b.revokes, b.assigns) == (b_revokes, b_assigns), "b saw a rebalance"
    a2.close()
    b.close()


# --------------------------------------------------------------------------- kafka-python and admin

def test_kafka_python_group_and_admin(broker):
    from kafka import KafkaAdminClient, KafkaConsumer
    from kafka.errors import GroupIdNotFoundError, NoError, NonEmptyGroupError

    topic = make_topic(broker.bootstrap, 3)
    group = unique_topic("g")
    produce(broker.bootstrap, topic, 30, partitions=3)
    c = KafkaConsumer(topic, bootstrap_servers=broker.bootstrap, group_id=group,
                      auto_offset_reset="earliest", enable_auto_commit=False,
                      session_timeout_ms=SESSION_MS, heartbeat_interval_ms=500,
                      consumer_timeout_ms=500)
    got = []
    wait_until(lambda: got.extend(m.value for m in c) or len(got) >= 30, 45, interval_s=0,
               what="kafka-python reads 30 messages")
    c.commit()
    admin = KafkaAdminClient(bootstrap_servers=broker.bootstrap)
    assert (group, "consumer") in admin.list_consumer_groups()
    desc = admin.describe_consumer_groups([group])[0]
    assert desc.state == "Stable" and len(desc.members) == 1 and desc.protocol == "range"
    assert desc.members[0].client_host.startswith("/127.0.0.1")
    offs = admin.list_consumer_group_offsets(group)
    assert sorted((tp.partition, om.offset) for tp, om in offs.items()) == [(0, 10), (1, 10), (2, 10)]
    assert dict(admin.delete_consumer_groups([group]))[group] is NonEmptyGroupError
    c.close()  # LeaveGroup: the group empties
    wait_until(lambda: admin.describe_consumer_groups([group])[0].state == "Empty", 30,
               what="group Empty after the member left")
    assert dict(admin.delete_consumer_groups([group]))[group] is NoError
    assert group not in [g for g, _ in admin.list_consumer_groups()]
    assert admin.describe_consumer_groups([group])[0].state == "Dead"
    assert dict(admin.delete_consumer_groups([group]))[group] is GroupIdNotFoundError
    admin.close()


def test_confluent_list_groups_states(broker):
    topic = make_topic(broker.bootstrap, 2)
    group = unique_topic("g")
    a = Member(broker.bootstrap, group, topic, "roundrobin")
    poll_until([a], lambda: a.owned() == {0, 1}, what="a owns everything")
    admin = confluent_admin(broker.bootstrap)
    gs = admin.list_groups(group, timeout=10)
    assert len(gs) == 1 and gs[0].state == "Stable" and gs[0].protocol == "roundrobin"
    assert gs[0].protocol_type == "consumer" and len(gs[0].members) == 1
    assert gs[0].members[0].assignment  # the leader's assignment bytes
    all_ids = {g.id for g in admin.list_groups(timeout=10)}
    assert group in all_ids
    a.close()
    wait_until(lambda: admin.list_groups(group, timeout=10)[0].state == "Empty", 30,
               what="Empty after leave")


# --------------------------------------------------------------------------- __consumer_offsets

def java_partition(group_id, n=50):
    """Kafka's partitioning: Utils.abs(groupId.hashCode()) % n."""
    h = 0
    b = group_id.encode("utf-16-be")
    for i in range(0, len(b), 2):
        h = (h * 31 + int.from_bytes(b[i:i + 2], "big")) & 0xFFFFFFFF
    if h >= 2 ** 31:
        h -= 2 ** 32
    return 0 if h == -2 ** 31 else abs(h) % n


@pytest.mark.broker_config(**{"offsets.topic.segment.bytes": "4096"})
def test_offsets_topic_stays_bounded(broker):
    topic = make_topic(broker.bootstrap, 3)
    group = unique_topic("g")
    part_dir = os.path.join(broker.data_dir, "__consumer_offsets-%d" % java_partition(group))
    c = Consumer({"bootstrap.servers": broker.bootstrap, "group.id": group})
    for i in range(300):
        c.commit(offsets=[TopicPartition(topic, p, i * 10 + p) for p in range(3)], asynchronous=False)
    c.close()
    assert os.path.isdir(part_dir), f"group {group} should live in {part_dir}"

    def bounded():
        logs = [f for f in os.listdir(part_dir) if f.endswith(".log")]
        size = sum(os.path.getsize(os.path.join(part_dir, f)) for f in logs)
        return (len(logs) <= 4 and size < 32 * 1024) and (len(logs), size)
    # ~300 commit batches (>100 KB) went in; snapshots keep a few segments.
    wait_until(bounded, 30, what=f"{part_dir} restated to a few small segments")
    broker.restart()
    assert committed(broker.bootstrap, group, topic, 3) == {p: 2990 + p for p in range(3)}


@pytest.mark.broker_config(**{"offsets.retention.minutes": "1",
                              "offsets.retention.check.interval.ms": "500"})
def test_empty_group_offsets_expire(broker):
    """offsets.retention.minutes after a group empties, its offsets and the
    group itself go away; a group with a live member keeps its offsets."""
    topic = make_topic(broker.bootstrap, 2)
    gone, kept = unique_topic("g"), unique_topic("g")
    a = Member(broker.bootstrap, gone, topic)
    poll_until([a], lambda: a.owned() == {0, 1}, what="a owns everything")
    a.c.commit(offsets=[TopicPartition(topic, 0, 3)], asynchronous=False)
    a.close()
    b = Member(broker.bootstrap, kept, topic)
    poll_until([b], lambda: b.owned() == {0, 1}, what="b owns everything")
    b.c.commit(offsets=[TopicPartition(topic, 0, 4)], asynchronous=False)
    from kafka import KafkaAdminClient
    admin = KafkaAdminClient(bootstrap_servers=broker.bootstrap)
    assert admin.describe_consumer_groups([gone])[0].state == "Empty"
    poll_until([b], lambda: admin.describe_consumer_groups([gone])[0].state == "Dead",
               timeout_s=150, what="the empty group expires")
    assert committed(broker.bootstrap, gone, topic, 2) == {0: -1001, 1: -1001}
    assert committed(broker.bootstrap, kept, topic, 2)[0] == 4
    b.close()
    admin.close()


def test_group_survives_restart_without_rebalance(broker):
    """The generation and assignment are durable: members that keep running
    across a broker restart carry on (heartbeats accepted) with no rebalance."""
    topic = make_topic(broker.bootstrap, 4)
    group = unique_topic("g")
    extra = {"session.timeout.ms": 20000}
    a = Member(broker.bootstrap, group, topic, **extra)
    b = Member(broker.bootstrap, group, topic, **extra)
    poll_until([a, b], lambda: covers_all([a, b], 4), what="a and b share")
    settle = time.monotonic() + 2
    poll_until([a, b], lambda: time.monotonic() > settle, what="settle")
    counts = [(m.assigns, m.revokes) for m in (a, b)]
    owned = [m.owned() for m in (a, b)]
    broker.restart()
    from kafka import KafkaAdminClient
    admin = KafkaAdminClient(bootstrap_servers=broker.bootstrap)
    desc = admin.describe_consumer_groups([group])[0]
    assert desc.state == "Stable" and len(desc.members) == 2, desc
    admin.close()
    # Several heartbeat rounds after the restart.
    settle = time.monotonic() + 4
    poll_until([a, b], lambda: time.monotonic() > settle, what="heartbeats after restart")
    assert [(m.assigns, m.revokes) for m in (a, b)] == counts, "the restart caused a rebalance"
    assert [m.owned() for m in (a, b)] == owned
    a.close()
    b.close()
