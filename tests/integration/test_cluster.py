"""A multi-node KRaft cluster driven by stock clients and fault injection.

Each test starts its own cluster (tests/integration/cluster.py, `cluster`
fixture): three combined nodes (process.roles=broker,controller, all three
voters) unless it asks for three controller-only plus three broker-only
nodes. Every node has broker.session.timeout.ms=3000 and
broker.heartbeat.interval.ms=500, so fencing is quick.

What is checked, one test each:
  (a) every broker is seen by stock clients from every node's bootstrap:
      confluent-kafka, kafka-python and kafkajs agree on ids, addresses and
      the cluster id formatted into the nodes;
  (b) a topic created through one node is in every node's Metadata within
      seconds, its RF=1 leaders spread over the brokers, data produced is
      stored on (and only served by) each partition's leader and reads back;
  (c) kill -9 of the active controller: the survivors agree on a new leader
      with a higher epoch within 10 s, creation works through a survivor, and
      the killed node restarts, catches up as a follower and is a broker again;
  (d) with 2 of 3 controllers down, CreateTopics fails cleanly (an error
      answer within its 5 s timeout, raw and through confluent); once one is
      back a new creation succeeds and all nodes agree on the topic list;
  (e) a SIGSTOPped broker misses heartbeats, is fenced (gone from the other
      nodes' Metadata, leads nothing) and comes back after SIGCONT;
  (f) a rolling restart (SIGTERM, start, one node at a time) keeps creation
      and Metadata working; topics and data from before remain;
  (g) 3 controllers + 3 brokers: brokers see each other (not the
      controllers), admin requests sent to a broker are forwarded and
      succeed, the brokers are the quorum's observers.

Semantics taken from Kafka: a timed-out create may still commit later, so
(d) asserts nothing about the topic whose creation failed; Metadata's
controller id as clients see it is a broker (clients send admin requests
there); a fenced broker's RF=1 partitions have no leader until it returns.
"""

import json
import os
import shutil
import subprocess
import time

import pytest
from cluster import RETRIABLE_CREATE_ERRORS, create_topics_raw
from conftest import (REPO, confluent_admin, confluent_consume_partitions, confluent_create_topic,
                      raw_fetch_batches, unique_topic, wait_until)

pytestmark = pytest.mark.cluster

NODE_DIR = os.path.join(REPO, "tests", "integration", "node")
ERR_UNKNOWN_TOPIC_OR_PARTITION, ERR_NOT_LEADER_OR_FOLLOWER = 3, 6


# --------------------------------------------------------------------------- helpers

def produce_per_partition(bootstrap, topic, partitions, per_partition, timeout_s=30):
    """Write per_partition messages ("<p>-<i>") to each partition with
    confluent's Producer (acks=all); every delivery must succeed."""
    from confluent_kafka import Producer
    p = Producer({"bootstrap.servers": bootstrap, "acks": "all", "linger.ms": 5,
                  "message.timeout.ms": timeout_s * 1000})
    errors = []

    def delivered(err, _msg):
        if err is not None:
            errors.append(err)
    for part in range(partitions):
        for i in range(per_partition):
            p.produce(topic, value=f"{part}-{i}".encode(), partition=part, on_delivery=delivered)
    left = p.flush(timeout_s)
    assert left == 0 and not errors, f"produce to {topic}: {left} undelivered, errors {errors[:5]}"


def check_read_back(bootstrap, topic, partitions, per_partition):
    got = confluent_consume_partitions(bootstrap, topic, list(range(partitions)),
                                       partitions * per_partition)
    for part, msgs in got.items():
        assert [m.value().decode() for m in msgs] == [f"{part}-{i}" for i in range(per_partition)]


def leaders_seen(cluster, node_id, topic):
    t = cluster.metadata(node_id, [topic])["topics"][topic]
    return {p: v["leader"] for p, v in t["partitions"].items()}


def expected_brokers(cluster):
    return {i: ("127.0.0.1", cluster.node(i).port) for i in cluster.broker_ids}


def wait_topic_lists_agree(cluster, must_have, timeout_s=15):
    """Every live broker lists the same (non-internal) topics, including must_have."""
    def agree():
        views = {i: frozenset(cluster.topics_seen(i)) for i in cluster.live_brokers()}
        return len(set(views.values())) == 1 and set(must_have) <= next(iter(views.values()))
    wait_until(agree, timeout_s, interval_s=0.2,
               what=f"every node's topic list to agree and hold {sorted(must_have)}")


# --------------------------------------------------------------------------- (a)

def test_stock_clients_see_every_broker(cluster):
    from kafka import KafkaAdminClient
    want = expected_brokers(cluster)
    for i in cluster.broker_ids:
        bootstrap = cluster.node(i).bootstrap
        md = confluent_admin(bootstrap).list_topics(timeout=10)
        assert {b.id: (b.host, b.port) for b in md.brokers.values()} == want, f"via node {i}"
        assert md.cluster_id == cluster.cluster_id
        assert md.controller_id in want, f"controller {md.controller_id} is not a broker"

        admin = KafkaAdminClient(bootstrap_servers=bootstrap, client_id="samsa-it-cluster",
                                 request_timeout_ms=10000)
        try:
            d = admin.describe_cluster()
        finally:
            admin.close()
        assert {b["node_id"]: (b["host"], b["port"]) for b in d["brokers"]} == want, f"via {i}"
        assert d["cluster_id"] == cluster.cluster_id


def test_kafkajs_sees_every_broker(cluster):
    node = shutil.which("node")
    if not node or not os.path.isdir(os.path.join(NODE_DIR, "node_modules", "kafkajs")):
        pytest.skip("node or tests/integration/node/node_modules (npm ci) missing")
    want = expected_brokers(cluster)
    for i in cluster.broker_ids:
        r = subprocess.run([node, "cluster_describe.mjs", cluster.node(i).bootstrap],
                           cwd=NODE_DIR, capture_output=True, text=True, timeout=60)
        assert r.returncode == 0, r.stderr
        d = json.loads(r.stdout)
        assert {b["nodeId"]: (b["host"], b["port"]) for b in d["brokers"]} == want, f"via {i}"
        assert d["clusterId"] == cluster.cluster_id


# --------------------------------------------------------------------------- (b)

def test_topic_created_on_one_node_is_seen_by_all_and_serves_data(cluster):
    a, b, c = cluster.broker_ids
    topic = unique_topic("cl")
    assert create_topics_raw(cluster.node(a).port, [(topic, 6, 1)])[topic][0] == 0
    leaders = cluster.wait_for_topic(topic, 6, timeout_s=5, via=[b, c])
    for i in (a, b, c):
        assert leaders_seen(cluster, i, topic) == leaders, f"node {i} disagrees on leaders"
    assert set(leaders.values()) == {a, b, c}, f"RF=1 leaders not spread: {leaders}"

    per = 20
    produce_per_partition(cluster.bootstrap, topic, 6, per)
    for part, leader in leaders.items():
        err, hw, _ = raw_fetch_batches(cluster.node(leader).port, topic, part)
        assert (err, hw) == (0, per), f"{topic}-{part} on its leader {leader}"
        for other in {a, b, c} - {leader}:
            err, _, _ = raw_fetch_batches(cluster.node(other).port, topic, part)
            assert err in (ERR_UNKNOWN_TOPIC_OR_PARTITION, ERR_NOT_LEADER_OR_FOLLOWER), (
                f"{topic}-{part} fetched from non-leader {other}: error {err}")
    check_read_back(cluster.bootstrap, topic, 6, per)


# --------------------------------------------------------------------------- (c)

def test_active_controller_killed_new_leader_and_rejoin(cluster):
    old, epoch = cluster.wait_for_leader()
    cluster.kill9(old)
    new, new_epoch = cluster.wait_for_leader(timeout_s=10, exclude={old}, min_epoch=epoch)
    assert new != old and new_epoch > epoch

    survivor = next(i for i in cluster.live_brokers() if i != new)
    topic = unique_topic("failover")
    cluster.create_topic(topic, 3, via=survivor, timeout_s=15)

    restarted_ms = int(time.time() * 1000)
    cluster.start(old)

    def caught_up_follower():
        leader, _ = cluster.active_controller()
        reps = {r["id"]: r for r in cluster.quorum(leader)["replicas"]}
        r = reps.get(old)
        return (r is not None and r["role"] == "follower" and r["lag"] == 0
                and r["last_fetch_timestamp"] >= restarted_ms - 1000)
    wait_until(caught_up_follower, 20, interval_s=0.2,
               what=f"node {old} a caught-up follower in the leader's DescribeQuorum")
    cluster.wait_for_leader(timeout_s=10)  # the restarted node agrees on the leader
    cluster.wait_for_brokers(3, timeout_s=20)
    cluster.wait_for_topic(topic, 3, timeout_s=10, via=[old])  # it has what it missed


# --------------------------------------------------------------------------- (d)

def test_no_quorum_creation_fails_cleanly_then_recovers(cluster):
    from confluent_kafka import KafkaException
    from confluent_kafka.admin import NewTopic
    leader, _ = cluster.wait_for_leader()
    follower_a, follower_b = [i for i in cluster.controller_ids if i != leader]
    cluster.kill9(leader)
    cluster.kill9(follower_a)
    survivor = follower_b

    # raw: an error answer, not a hang, within the request's own timeout
    doomed = unique_topic("noquorum")
    t0 = time.monotonic()
    err, msg = create_topics_raw(cluster.node(survivor).port, [(doomed, 1, 1)],
                                 timeout_ms=5000)[doomed]
    took = time.monotonic() - t0
    assert err in RETRIABLE_CREATE_ERRORS, f"CreateTopics without a quorum: error {err} {msg}"
    assert took < 5 + 3, f"CreateTopics without a quorum answered after {took:.1f}s"

    # a stock client gets an error too, bounded by its request timeout
    doomed2 = unique_topic("noquorum")
    admin = confluent_admin(cluster.node(survivor).bootstrap)
    t0 = time.monotonic()
    fs = admin.create_topics([NewTopic(doomed2, num_partitions=1, replication_factor=1)],
                             request_timeout=5, operation_timeout=5)
    with pytest.raises(KafkaException):
        fs[doomed2].result(timeout=30)
    assert time.monotonic() - t0 < 5 + 10

    # one controller back: a quorum of two again, creation works
    cluster.start(follower_a)
    cluster.wait_for_leader(timeout_s=15)
    fresh = unique_topic("quorate")
    cluster.create_topic(fresh, 3, via=survivor, timeout_s=20)
    wait_topic_lists_agree(cluster, {fresh})

    # and the third: all three agree
    cluster.start(leader)
    cluster.wait_for_brokers(3, timeout_s=20)
    wait_topic_lists_agree(cluster, {fresh})


# --------------------------------------------------------------------------- (e)

def test_broker_missing_heartbeats_is_fenced_and_returns(cluster):
    topic = unique_topic("fence")
    leaders = cluster.create_topic(topic, 6)
    controller, _ = cluster.wait_for_leader()
    candidates = [i for i in cluster.broker_ids if i != controller]
    victim = next((i for i in candidates if i in leaders.values()), candidates[0])
    others = [i for i in cluster.broker_ids if i != victim]

    cluster.sigstop(victim)
    # session timeout 3 s: gone from the others' Metadata soon after
    cluster.wait_for_brokers(len(others), timeout_s=15, via=others, expect=set(others))

    def leads_nothing():
        return all(victim not in leaders_seen(cluster, i, topic).values() for i in others)
    wait_until(leads_nothing, 10, interval_s=0.2,
               what=f"fenced broker {victim} to lead no partition of {topic}")

    cluster.sigcont(victim)
    cluster.wait_for_brokers(3, timeout_s=20)
    cluster.wait_for_topic(topic, 6, timeout_s=15)  # every partition led again, on every node


# --------------------------------------------------------------------------- (f)

def test_rolling_restart_keeps_metadata_and_topics(cluster):
    first = unique_topic("roll")
    cluster.create_topic(first, 3)
    per = 10
    produce_per_partition(cluster.bootstrap, first, 3, per)
    created = [first]
    for i in cluster.ids:
        rc = cluster.stop(i)
        assert rc == 0, f"node {i} graceful stop exited {rc}"
        during = unique_topic(f"roll-down{i}")
        cluster.create_topic(during, 3, via=cluster.live_brokers()[0], timeout_s=20)
        created.append(during)
        cluster.start(i)
        cluster.wait_for_brokers(3, timeout_s=30)
        after = unique_topic(f"roll-up{i}")
        cluster.create_topic(after, 3, via=i, timeout_s=20)  # through the restarted node
        created.append(after)
    wait_topic_lists_agree(cluster, set(created))
    for t in created:
        cluster.wait_for_topic(t, 3, timeout_s=10)
    check_read_back(cluster.bootstrap, first, 3, per)


# --------------------------------------------------------------------------- (g)

@pytest.mark.cluster_config(controllers=3, brokers=3)
def test_separate_controllers_and_brokers(cluster):
    assert cluster.controller_ids == [1, 2, 3] and cluster.broker_ids == [4, 5, 6]
    brokers = {4, 5, 6}
    cluster.wait_for_brokers(3, timeout_s=10, expect=brokers)
    for i in cluster.broker_ids:
        md = cluster.metadata(i)
        assert md["controller"] in brokers, (
            f"node {i}'s Metadata names controller {md['controller']}, which clients cannot reach")
    leader, epoch = cluster.wait_for_leader()
    assert leader in {1, 2, 3}

    # forwarded: CreateTopics to a broker-only node
    topic = unique_topic("fwd")
    err, msg = create_topics_raw(cluster.node(4).port, [(topic, 6, 1)])[topic]
    assert err == 0, f"CreateTopics through broker 4: error {err} {msg}"
    leaders = cluster.wait_for_topic(topic, 6, timeout_s=10)
    assert set(leaders.values()) <= brokers
    produce_per_partition(cluster.bootstrap, topic, 6, 5)
    check_read_back(cluster.bootstrap, topic, 6, 5)

    # a stock client's admin path (to Metadata's controller id) works too
    confluent_create_topic(cluster.bootstrap, unique_topic("fwd-confluent"), 3)

    # the quorum: voters 1-3, the brokers observe it; a broker answers for it
    def observed():
        q = cluster.quorum(leader)
        roles = {r["id"]: r["role"] for r in q["replicas"]}
        voters = {i for i, r in roles.items() if r != "observer"}
        observers = {i for i, r in roles.items() if r == "observer"}
        return voters == {1, 2, 3} and brokers <= observers
    wait_until(observed, 10, interval_s=0.2, what="voters 1-3 and observers 4-6 in DescribeQuorum")
    q4 = cluster.quorum(4)
    assert (q4["leader_id"], q4["leader_epoch"]) == (leader, epoch)
