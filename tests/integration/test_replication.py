"""Replicated partitions on a 3-node cluster (issue #13), with stock clients.

Every test starts three combined nodes (tests/integration/cluster.py) with
min.insync.replicas=2 and replica.lag.time.max.ms=3000 (Kafka's default is
30 s; shorter here so ISR changes show within seconds), and topics of
replication factor 3.

What is checked:
  (a) followers copy the leader's log: after acks=all load the three copies of
      each partition are byte-identical segment files, and the ISR is all three;
  (b) kill -9 of a partition leader under acks=all load: a follower from the
      ISR takes over, no acknowledged record is lost, each partition's records
      keep their order, and the killed node comes back as a follower, catches
      up and rejoins the ISR;
  (c) a stopped follower leaves the ISR after replica.lag.time.max.ms; with
      both followers gone acks=all is refused with NOT_ENOUGH_REPLICAS (and
      acks=1 still works); when they return they catch up and rejoin;
  (d) SIGTERM of a leader (controlled shutdown) moves its leaderships to
      in-sync followers before it stops; producers carry on without loss;
  (e) __consumer_offsets is replicated: a group's committed offsets survive
      kill -9 of its coordinator's node, and the group carries on from them.
"""

import os
import threading
import time

import pytest
from confluent_kafka import Consumer, KafkaError, Producer, TopicPartition

from conftest import raw_produce, record_batch, unique_topic, wait_until
from test_lazy_offsets_topic import find_coordinator

pytestmark = [pytest.mark.cluster,
              pytest.mark.cluster_config(overrides={"min.insync.replicas": "2",
                                                    "replica.lag.time.max.ms": "3000",
                                                    "offsets.topic.num.partitions": "6",
                                                    "offsets.topic.replication.factor": "3"})]


# --------------------------------------------------------------------------- helpers

def partition_state(cluster, topic, via=None):
    """{partition: {"leader", "replicas", "isr"}} from one live broker."""
    via = via if via is not None else cluster.live_brokers()[0]
    t = cluster.metadata(via, [topic])["topics"][topic]
    return t["partitions"]


def wait_isr(cluster, topic, partition, size, timeout_s=30, via=None):
    def ok():
        ps = partition_state(cluster, topic, via).get(partition)
        return ps if ps and len(ps["isr"]) == size and ps["leader"] >= 0 else False
    return wait_until(ok, timeout_s, interval_s=0.2,
                      what=f"{topic}-{partition} with an ISR of {size}")


def segment_bytes(cluster, node_id, topic, partition):
    d = os.path.join(cluster.node(node_id).data_dir, f"{topic}-{partition}")
    out = b""
    for f in sorted(os.listdir(d)):
        if f.endswith(".log"):
            with open(os.path.join(d, f), "rb") as fh:
                out += fh.read()
    return out


class Load:
    """A confluent producer (acks=all) writing "<n>" values round-robin over
    the partitions until stopped; remembers what was acknowledged, per
    partition in offset order."""

    def __init__(self, bootstrap, topic, partitions, rate_per_s=400, extra=None):
        conf = {"bootstrap.servers": bootstrap, "acks": "all", "linger.ms": 2,
                "message.timeout.ms": 60000, "retry.backoff.ms": 100,
                "topic.metadata.refresh.interval.ms": 500}
        conf.update(extra or {})
        self.p = Producer(conf)
        self.topic, self.partitions, self.rate = topic, partitions, rate_per_s
        self.acked = {}
        self.errors = []
        self.sent = 0
        self.stop_ev = threading.Event()
        self.t = threading.Thread(target=self.run, daemon=True)

    def on_delivery(self, err, msg):
        if err:
            self.errors.append(str(err))
        else:
            self.acked.setdefault(msg.partition(), []).append((msg.offset(), msg.value()))

    def run(self):
        n = 0
        while not self.stop_ev.is_set():
            for _ in range(max(1, self.rate // 50)):
                self.p.produce(self.topic, value=str(n).encode(), partition=n % self.partitions,
                               on_delivery=self.on_delivery)
                n += 1
            self.p.poll(0.02)
        self.sent = n
        self.p.flush(90)

    def __enter__(self):
        self.t.start()
        return self

    def stop(self):
        self.stop_ev.set()
        self.t.join(120)

    def __exit__(self, *a):
        if self.t.is_alive():
            self.stop()

    def total_acked(self):
        return sum(len(v) for v in self.acked.values())


def read_all(bootstrap, topic, partitions, timeout_s=60):
    """Every record of every partition from offset 0 up to the high watermark:
    {partition: [(offset, value)]}."""
    c = Consumer({"bootstrap.servers": bootstrap, "group.id": unique_topic("rd"),
                  "enable.auto.commit": False, "auto.offset.reset": "earliest",
                  "enable.partition.eof": True})
    try:
        c.assign([TopicPartition(topic, p, 0) for p in range(partitions)])
        out = {p: [] for p in range(partitions)}
        eof = set()
        deadline = time.time() + timeout_s
        while len(eof) < partitions and time.time() < deadline:
            m = c.poll(0.5)
            if m is None:
                continue
            if m.error():
                if m.error().code() == KafkaError._PARTITION_EOF:
                    eof.add(m.partition())
                continue
            eof.discard(m.partition())
            out[m.partition()].append((m.offset(), m.value()))
        assert len(eof) == partitions, f"not every partition read to its end: {eof}"
        return out
    finally:
        c.close()


def check_no_loss(load, stored):
    """Every acknowledged (offset, value) is stored at that offset; offsets
    within a partition strictly increase."""
    for p, acked in load.acked.items():
        have = dict(stored.get(p, []))
        missing = [(o, v) for o, v in acked if have.get(o) != v]
        assert not missing, f"partition {p}: {len(missing)} acknowledged record(s) lost, " \
                            f"first {missing[:5]}"
        offs = [o for o, _ in stored[p]]
        assert offs == sorted(set(offs)), f"partition {p}: offsets out of order"


def reassign_tool(bootstrap, tmp_path, topic, replicas):
    """Write a one-partition plan moving topic-0 to replicas; returns run(*args)
    running kafka-reassign-partitions.sh against bootstrap (plan path as
    run.plan)."""
    import json
    import subprocess
    from test_kafka_scripts import script as kafka_script
    plan = tmp_path / "plan.json"
    plan.write_text(json.dumps({"version": 1, "partitions": [
        {"topic": topic, "partition": 0, "replicas": replicas}]}))
    tool = kafka_script("kafka-reassign-partitions.sh")

    def run(*args):
        return subprocess.run([tool, "--bootstrap-server", bootstrap, *args],
                              capture_output=True, text=True, timeout=60)
    run.plan = str(plan)
    return run


# --------------------------------------------------------------------------- tests

def test_followers_copy_the_leaders_log(cluster):
    topic = unique_topic("repl-copy")
    cluster.create_topic(topic, partitions=3, rf=3)
    for p in range(3):
        wait_isr(cluster, topic, p, 3)
    prod = Producer({"bootstrap.servers": cluster.bootstrap, "acks": "all", "linger.ms": 5})
    res = []
    for i in range(3000):
        prod.produce(topic, value=b"x%06d" % i, partition=i % 3,
                     on_delivery=lambda e, m: res.append(e))
    prod.flush(60)
    assert len(res) == 3000 and not any(res), set(str(e) for e in res if e)
    # Followers get the last batches on their next fetch.
    for p in range(3):
        wait_until(lambda: len({segment_bytes(cluster, n, topic, p) for n in cluster.broker_ids}) == 1,
                   15, what=f"identical copies of {topic}-{p}")
        assert len(segment_bytes(cluster, 1, topic, p)) > 1000 * 6
    assert all(len(v["isr"]) == 3 for v in partition_state(cluster, topic).values())
    stored = read_all(cluster.bootstrap, topic, 3)
    assert sum(len(v) for v in stored.values()) == 3000
    # kafka-log-dirs.sh: every broker holds every partition, same size, no lag.
    import json
    import subprocess
    from test_kafka_scripts import script as kafka_script
    r = subprocess.run([kafka_script("kafka-log-dirs.sh"), "--bootstrap-server",
                        cluster.node(1).bootstrap, "--describe", "--topic-list", topic],
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    lines = r.stdout.splitlines()
    assert lines[0] == "Querying brokers for log directories information"
    assert lines[1] == "Received log directory information from brokers 1,2,3"
    doc = json.loads(lines[2])
    sizes = {}
    for b in doc["brokers"]:
        (ld,) = b["logDirs"]
        assert ld["error"] is None and ld["logDir"] == cluster.node(b["broker"]).data_dir
        for p in ld["partitions"]:
            assert p["offsetLag"] == 0 and p["isFuture"] is False
            sizes.setdefault(p["partition"], set()).add(p["size"])
    assert sorted(sizes) == [f"{topic}-{i}" for i in range(3)]
    assert all(len(v) == 1 and v.pop() > 6000 for v in sizes.values()), sizes


def test_leader_kill9_loses_no_acknowledged_record(cluster):
    topic = unique_topic("repl-kill")
    cluster.create_topic(topic, partitions=3, rf=3)
    for p in range(3):
        wait_isr(cluster, topic, p, 3)
    victim = partition_state(cluster, topic)[0]["leader"]
    with Load(cluster.bootstrap, topic, 3) as load:
        wait_until(lambda: load.total_acked() >= 500, 30, what="load under way")
        cluster.kill9(victim)
        survivor = cluster.live_brokers()[0]
        st = wait_until(lambda: (lambda s: s if s[0]["leader"] not in (-1, victim) else False)(
            partition_state(cluster, topic, survivor)), 20, interval_s=0.1,
            what="a new leader for partition 0")
        assert victim not in st[0]["isr"] or len(st[0]["isr"]) == 1
        before = load.total_acked()
        wait_until(lambda: load.total_acked() >= before + 500, 60,
                   what="acknowledged writes after the failover")
        cluster.start(victim)
        for p in range(3):
            wait_isr(cluster, topic, p, 3, timeout_s=60, via=survivor)
        load.stop()
    assert not load.errors, load.errors[:5]
    stored = read_all(cluster.bootstrap, topic, 3)
    check_no_loss(load, stored)
    # The restarted node holds the same log as the others.
    for p in range(3):
        wait_until(lambda: len({segment_bytes(cluster, n, topic, p) for n in cluster.broker_ids}) == 1,
                   30, what=f"identical copies of {topic}-{p} after the restart")


# Stopping two of three combined nodes would stop the quorum too (no
# controller could commit the ISR change): one controller, three brokers.
@pytest.mark.cluster_config(controllers=1, brokers=3,
                            overrides={"min.insync.replicas": "2",
                                       "replica.lag.time.max.ms": "3000",
                                       "offsets.topic.num.partitions": "6"})
def test_isr_shrinks_and_min_insync_refuses_then_recovers(cluster):
    topic = unique_topic("repl-isr")
    cluster.create_topic(topic, partitions=1, rf=3)
    st = wait_isr(cluster, topic, 0, 3)
    leader = st["leader"]
    followers = [n for n in st["replicas"] if n != leader]
    cluster.sigstop(followers[0])
    wait_isr(cluster, topic, 0, 2, timeout_s=30, via=leader)
    # Two in sync still satisfy min.insync.replicas=2.
    p = Producer({"bootstrap.servers": cluster.node(leader).bootstrap, "acks": "all",
                  "message.timeout.ms": 10000})
    res = []
    p.produce(topic, value=b"two in sync", partition=0, on_delivery=lambda e, m: res.append(e))
    p.flush(20)
    assert res == [None]
    cluster.sigstop(followers[1])
    wait_isr(cluster, topic, 0, 1, timeout_s=30, via=leader)
    # NOT_ENOUGH_REPLICAS is retriable: a producer without retries shows it
    p0 = Producer({"bootstrap.servers": cluster.node(leader).bootstrap, "acks": "all",
                   "retries": 0})
    res = []
    p0.produce(topic, value=b"one in sync", partition=0, on_delivery=lambda e, m: res.append(e))
    p0.flush(20)
    assert len(res) == 1 and res[0] is not None and \
        res[0].code() == KafkaError.NOT_ENOUGH_REPLICAS, res
    p1 = Producer({"bootstrap.servers": cluster.node(leader).bootstrap, "acks": "1"})
    res = []
    p1.produce(topic, value=b"acks=1", partition=0, on_delivery=lambda e, m: res.append(e))
    p1.flush(20)
    assert res == [None]
    cluster.sigcont(followers[0])
    cluster.sigcont(followers[1])
    wait_isr(cluster, topic, 0, 3, timeout_s=60, via=leader)
    res = []
    p.produce(topic, value=b"all back", partition=0, on_delivery=lambda e, m: res.append(e))
    p.flush(20)
    assert res == [None]
    wait_until(lambda: len({segment_bytes(cluster, n, topic, 0) for n in cluster.broker_ids}) == 1,
               20, what="identical copies after the followers returned")


def test_controlled_shutdown_moves_leadership_without_loss(cluster):
    topic = unique_topic("repl-term")
    cluster.create_topic(topic, partitions=3, rf=3)
    for p in range(3):
        wait_isr(cluster, topic, p, 3)
    victim = partition_state(cluster, topic)[1]["leader"]
    with Load(cluster.bootstrap, topic, 3) as load:
        wait_until(lambda: load.total_acked() >= 300, 30, what="load under way")
        cluster.stop(victim)  # SIGTERM: controlled shutdown
        survivor = cluster.live_brokers()[0]
        st = partition_state(cluster, topic, survivor)
        assert all(v["leader"] not in (-1, victim) for v in st.values()), st
        before = load.total_acked()
        wait_until(lambda: load.total_acked() >= before + 300, 60,
                   what="acknowledged writes after the shutdown")
        load.stop()
    assert not load.errors, load.errors[:5]
    check_no_loss(load, read_all(cluster.bootstrap, topic, 3))
    cluster.start(victim)
    for p in range(3):
        wait_isr(cluster, topic, p, 3, timeout_s=60)


def test_group_offsets_survive_losing_the_coordinator(cluster):
    topic = unique_topic("repl-grp")
    group = unique_topic("g")
    cluster.create_topic(topic, partitions=2, rf=3)
    prod = Producer({"bootstrap.servers": cluster.bootstrap, "acks": "all"})
    for i in range(100):
        prod.produce(topic, value=b"m%d" % i, partition=i % 2)
    prod.flush(30)
    conf = {"bootstrap.servers": cluster.bootstrap, "group.id": group,
            "auto.offset.reset": "earliest", "enable.auto.commit": False,
            "session.timeout.ms": 6000}
    c = Consumer(conf)
    c.subscribe([topic])
    got = []
    deadline = time.time() + 30
    while len(got) < 60 and time.time() < deadline:
        m = c.poll(0.5)
        if m is not None and not m.error():
            got.append(m)
    assert len(got) >= 60
    c.commit(asynchronous=False)
    committed = {tp.partition: tp.offset for tp in
                 c.committed([TopicPartition(topic, 0), TopicPartition(topic, 1)], timeout=10)}
    c.close()
    # The coordinator: the leader of the group's __consumer_offsets partition.
    err, coord, _ = find_coordinator(cluster.node(cluster.live_brokers()[0]).port, group)
    assert err == 0
    cluster.kill9(coord)
    survivor = cluster.live_brokers()[0]
    boot = ",".join(cluster.node(n).bootstrap for n in cluster.live_brokers())
    c2 = Consumer(dict(conf, **{"bootstrap.servers": boot}))
    try:
        def same():
            got = c2.committed([TopicPartition(topic, 0), TopicPartition(topic, 1)], timeout=5)
            return {tp.partition: tp.offset for tp in got} == committed
        wait_until(same, 60, interval_s=0.5, what="committed offsets from the new coordinator")
        c2.subscribe([topic])
        rest = []
        deadline = time.time() + 40
        while len(rest) < 100 - sum(committed.values()) and time.time() < deadline:
            m = c2.poll(0.5)
            if m is not None and not m.error():
                rest.append(m)
        assert len(rest) == 100 - sum(committed.values())
        assert all(m.offset() >= committed[m.partition()] for m in rest)
    finally:
        c2.close()
    cluster.start(coord)
    assert survivor != coord


def test_preferred_leader_election(cluster):
    import subprocess
    from test_kafka_scripts import script as kafka_script
    topic = unique_topic("repl-elect")
    cluster.create_topic(topic, partitions=1, rf=3)
    st = wait_isr(cluster, topic, 0, 3)
    preferred = st["replicas"][0]
    assert st["leader"] == preferred
    cluster.stop(preferred)  # controlled shutdown: another in-sync replica leads
    survivor = cluster.live_brokers()[0]
    assert partition_state(cluster, topic, survivor)[0]["leader"] not in (-1, preferred)
    cluster.start(preferred)
    wait_isr(cluster, topic, 0, 3, timeout_s=60, via=survivor)
    script = kafka_script("kafka-leader-election.sh")
    r = subprocess.run([script, "--bootstrap-server", cluster.node(survivor).bootstrap,
                        "--election-type", "preferred", "--topic", topic, "--partition", "0"],
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    assert r.stdout == f"Successfully completed leader election (PREFERRED) for partitions " \
                       f"{topic}-0\n"
    wait_until(lambda: partition_state(cluster, topic, survivor)[0]["leader"] == preferred, 10,
               what="the preferred replica leading again")
    r = subprocess.run([script, "--bootstrap-server", cluster.node(survivor).bootstrap,
                        "--election-type", "preferred", "--topic", topic],
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 0 and r.stdout.startswith("Valid replica already elected"), r


@pytest.mark.cluster_config(n_combined=3, brokers=1,
                            overrides={"min.insync.replicas": "2",
                                       "replica.lag.time.max.ms": "3000"})
def test_reassignment_moves_a_replica_to_another_broker(cluster, tmp_path):
    topic = unique_topic("repl-move")
    cluster.create_topic(topic, partitions=1, rf=3)
    st = wait_isr(cluster, topic, 0, 3)
    new = [b for b in cluster.broker_ids if b not in st["replicas"]][0]
    leaving = st["replicas"][0]  # the leader: leadership moves too
    target = [new] + [b for b in st["replicas"] if b != leaving]
    prod = Producer({"bootstrap.servers": cluster.bootstrap, "acks": "all"})
    for i in range(500):
        prod.produce(topic, value=b"before-%d" % i, partition=0)
    prod.flush(30)
    run = reassign_tool(cluster.node(cluster.broker_ids[1]).bootstrap, tmp_path, topic, target)
    plan = run.plan
    r = run("--reassignment-json-file", str(plan), "--execute")
    assert r.returncode == 0, (r.stdout, r.stderr)
    assert "Successfully started partition reassignments" in r.stdout
    wait_until(lambda: run("--reassignment-json-file", str(plan), "--verify").returncode == 0,
               60, interval_s=0.5, what="the reassignment to complete")
    r = run("--reassignment-json-file", str(plan), "--verify")
    assert f"Reassignment of partition {topic}-0 is completed." in r.stdout
    assert run("--list").stdout == "No partition reassignments found.\n"
    # --verify asks the controller; broker `new` learns the result from the
    # metadata log a moment later (brokers' views are eventually consistent)
    wait_until(lambda: partition_state(cluster, topic, new)[0]["replicas"] == target, 10,
               what=f"broker {new} seeing the reassignment's final replicas")
    st = partition_state(cluster, topic, new)[0]
    assert st["replicas"] == target and sorted(st["isr"]) == sorted(target), st
    assert st["leader"] in target
    # The leaving broker drops its copy; the new one holds the same log.
    wait_until(lambda: not os.path.exists(os.path.join(cluster.node(leaving).data_dir,
                                                       f"{topic}-0")), 20,
               what="the old replica's directory gone")
    for i in range(100):
        prod.produce(topic, value=b"after-%d" % i, partition=0)
    prod.flush(30)
    wait_until(lambda: len({segment_bytes(cluster, n, topic, 0) for n in target}) == 1, 20,
               what="identical copies on the new replica set")
    stored = read_all(cluster.bootstrap, topic, 1)
    assert [v for _, v in stored[0]] == [b"before-%d" % i for i in range(500)] + \
        [b"after-%d" % i for i in range(100)]


@pytest.mark.cluster_config(n_combined=3, brokers=1,
                            overrides={"min.insync.replicas": "2",
                                       "replica.lag.time.max.ms": "3000"})
def test_reassignment_in_progress_can_be_cancelled(cluster, tmp_path):
    topic = unique_topic("repl-cancel")
    cluster.create_topic(topic, partitions=1, rf=2)
    st = wait_isr(cluster, topic, 0, 2)
    spare = [b for b in cluster.broker_ids if b not in st["replicas"]][0]
    boot = cluster.node([b for b in cluster.broker_ids if b != spare][0]).bootstrap
    cluster.stop(spare)  # registered but down: it cannot catch up
    target = st["replicas"] + [spare]
    run = reassign_tool(boot, tmp_path, topic, target)
    plan = run.plan
    assert run("--reassignment-json-file", str(plan), "--execute").returncode == 0
    r = run("--list")
    assert r.stdout.startswith("Current partition reassignments:\n") and \
        f"{topic}-0: replicas: [{','.join(map(str, target))}]. adding: [{spare}]. removing: []." \
        in r.stdout, r.stdout
    r = run("--reassignment-json-file", str(plan), "--verify")
    assert r.returncode == 1 and "is still in progress" in r.stdout
    r = run("--reassignment-json-file", str(plan), "--cancel")
    assert r.returncode == 0, (r.stdout, r.stderr)
    assert run("--list").stdout == "No partition reassignments found.\n"
    assert partition_state(cluster, topic, st["replicas"][0])[0]["replicas"] == st["replicas"]
    cluster.start(spare)


def test_hostile_replica_requests_are_refused(cluster):
    """A fetch claiming to be a replica the partition does not have, and ISR
    changes from a broker that does not lead, with stale epochs or naming
    strangers, get Kafka errors; replication carries on."""
    import struct
    from conftest import Reader, WireConn, enc_str, enc_uvarint
    topic = unique_topic("repl-hostile")
    cluster.create_topic(topic, partitions=1, rf=3)
    st = wait_isr(cluster, topic, 0, 3)
    leader = st["leader"]
    # Fetch v4 with ReplicaId 77 (no such replica) at the leader.
    body = struct.pack(">iiiib", 77, 100, 1, 1 << 20, 0) + struct.pack(">i", 1) + \
        enc_str(topic) + struct.pack(">i", 1) + struct.pack(">iqi", 0, 0, 1 << 20)
    c = WireConn(cluster.node(leader).port)
    try:
        r = Reader(c.request(1, 4, body))
    finally:
        c.close()
    r.i32()  # throttle
    assert r.i32() == 1 and r.string() == topic and r.i32() == 1
    assert r.i32() == 0 and r.i16() == 6  # NOT_LEADER_OR_FOLLOWER

    # AlterPartition v0 (flexible) to the active controller.
    def compact_str(s):
        b = s.encode()
        return enc_uvarint(len(b) + 1) + b

    def alter(broker_id, leader_epoch, isr, partition_epoch):
        part = struct.pack(">ii", 0, leader_epoch) + enc_uvarint(len(isr) + 1) + \
            b"".join(struct.pack(">i", i) for i in isr) + struct.pack(">i", partition_epoch) + b"\0"
        b = struct.pack(">iq", broker_id, -1) + enc_uvarint(2) + compact_str(topic) + \
            enc_uvarint(2) + part + b"\0" + b"\0"
        active, _ = cluster.active_controller()
        conn = WireConn(cluster.node(active).controller_port)
        try:
            payload = conn.request(56, 0, b, flexible=True)
        finally:
            conn.close()
        # response header v1 has a tagged-field byte; then throttle, error, topics...
        rr = Reader(payload[1:])
        rr.i32()
        top = rr.i16()
        n_topics = rr.buf[rr.pos] - 1
        assert top == 0 and n_topics == 1
        rr.pos += 1
        name_len = rr.buf[rr.pos] - 1
        rr.pos += 1 + name_len
        rr.pos += 1  # partitions: 1
        rr.i32()     # partition index
        return rr.i16()
    other = next(b for b in st["replicas"] if b != leader)
    assert alter(other, 0, [other], 0) == 6          # not the leader
    assert alter(leader, 999, [leader], 0) == 74     # stale leader epoch: FENCED_LEADER_EPOCH
    assert alter(leader, 0, [leader, 42], 0) in (42, 74, 108)  # a stranger in the ISR
    # Nothing changed: the ISR is whole and acks=all still works.
    assert len(partition_state(cluster, topic)[0]["isr"]) == 3
    prod = Producer({"bootstrap.servers": cluster.bootstrap, "acks": "all"})
    res = []
    prod.produce(topic, value=b"still fine", partition=0, on_delivery=lambda e, m: res.append(e))
    prod.flush(20)
    assert res == [None]


@pytest.mark.cluster_config(n_combined=3, overrides={"replica.lag.time.max.ms": "60000"})
def test_parked_acks_all_produce_is_answered_when_its_leader_stops(cluster):
    """A produce parked for acks=all on a leader that shuts down gets
    NOT_LEADER_OR_FOLLOWER, so the producer retries it at the new leader
    before its later batches. (It used to stay parked until the connection
    was dropped 5 s into the shutdown: an idempotent producer had meanwhile
    sent its next batch to the new leader, which answered
    OUT_OF_ORDER_SEQUENCE_NUMBER, fatal for librdkafka: the replicated chaos
    run with --strict-dups, seed 7, rolling restart.)"""
    topic = unique_topic("parked")
    leaders = cluster.create_topic(topic, partitions=1, rf=3)
    st = wait_isr(cluster, topic, 0, 3)
    leader = leaders[0]
    follower = [b for b in st["replicas"] if b != leader][0]
    # the stopped follower stays in the ISR (lag 60 s): the high watermark cannot move
    cluster.sigstop(follower)
    result = {}

    def produce():
        try:
            result["answer"] = raw_produce(cluster.node(leader).port, topic, 0,
                                           record_batch([(None, b"parked", [])]), 7)
        except Exception as e:  # noqa: BLE001 - reported below
            result["error"] = repr(e)
    th = threading.Thread(target=produce)
    th.start()
    try:
        time.sleep(1.0)
        assert th.is_alive(), f"not parked: {result}"
        t0 = time.monotonic()
        cluster.node(leader).terminate()
        th.join(30)
        waited = time.monotonic() - t0
        assert not th.is_alive()
        assert "answer" in result, f"no answer before the connection closed: {result}"
        assert result["answer"][0] == 6, result  # NOT_LEADER_OR_FOLLOWER
        # answered when the listeners close, right after the controlled shutdown
        # (at most 5 s), not after the drain's own 5 s deadline (~13 s before)
        assert waited < 9, f"answered only after {waited:.1f}s"
    finally:
        cluster.sigcont(follower)
        cluster.node(leader).wait_stopped()
