"""
A hostile or confused peer on a controller's CONTROLLER listener must not
disturb the quorum: quorum RPCs from another cluster, from a node that is not
a voter, with absurd epochs or offsets, or cut short, get a Kafka error (or a
clean disconnect) and a log line, and the quorum keeps its leader and epoch and
keeps committing.
"""
import struct

import pytest

from cluster import create_topics_raw
from conftest import Reader, WireConn, enc_str, unique_topic

pytestmark = pytest.mark.cluster

API_FETCH, API_BEGIN_EPOCH, API_END_EPOCH = 1, 53, 54
INCONSISTENT_VOTER_SET, INCONSISTENT_CLUSTER_ID = 94, 104


def begin_epoch_v0(cluster_id, leader_id, epoch, topic="__cluster_metadata", partition=0):
    part = struct.pack(">iii", partition, leader_id, epoch)
    topics = struct.pack(">i", 1) + enc_str(topic) + struct.pack(">i", 1) + part
    return enc_str(cluster_id) + topics


def end_epoch_v0(cluster_id, leader_id, epoch, preferred=()):
    part = struct.pack(">iii", 0, leader_id, epoch) + struct.pack(">i", len(preferred))
    part += b"".join(struct.pack(">i", p) for p in preferred)
    topics = struct.pack(">i", 1) + enc_str("__cluster_metadata") + struct.pack(">i", 1) + part
    return enc_str(cluster_id) + topics


def epoch_response_v0(payload):
    """(top-level error, [(partition error, leader id, leader epoch)])."""
    r = Reader(payload)
    top = r.i16()
    out = []
    for _ in range(r.i32()):
        r.string()
        for _ in range(r.i32()):
            r.i32()  # partition index
            out.append((r.i16(), r.i32(), r.i32()))
    return top, out


def quorum_view(cluster):
    leader, epoch = cluster.wait_for_leader()
    return leader, epoch


def test_hostile_quorum_rpcs_do_not_move_the_quorum(cluster):
    leader, epoch = quorum_view(cluster)
    follower = next(i for i in cluster.controller_ids if i != leader)
    target = cluster.node(follower)

    def ask(api, version, body):
        c = WireConn(target.controller_port, client_id="hostile-peer")
        try:
            return c.request(api, version, body)
        finally:
            c.close()

    # Another cluster's leader announcing itself: refused by cluster id.
    top, _ = epoch_response_v0(ask(API_BEGIN_EPOCH, 0,
                                   begin_epoch_v0("AAAAAAAAAAAAAAAAAAAAAA", leader, epoch + 1000)))
    assert top == INCONSISTENT_CLUSTER_ID

    # A node that is not a voter claiming leadership of a far-future epoch.
    top, parts = epoch_response_v0(ask(API_BEGIN_EPOCH, 0,
                                       begin_epoch_v0(cluster.cluster_id, 77, epoch + 1000)))
    assert top == INCONSISTENT_VOTER_SET or (parts and parts[0][0] == INCONSISTENT_VOTER_SET), \
        (top, parts)

    # Resigning on behalf of a leader that is not a voter.
    top, parts = epoch_response_v0(ask(API_END_EPOCH, 0,
                                       end_epoch_v0(cluster.cluster_id, 77, epoch + 1000)))
    assert top == INCONSISTENT_VOTER_SET or (parts and parts[0][0] == INCONSISTENT_VOTER_SET), \
        (top, parts)

    # An unknown partition of the metadata topic, and a topic that has no quorum.
    top, parts = epoch_response_v0(ask(API_BEGIN_EPOCH, 0,
                                       begin_epoch_v0(cluster.cluster_id, leader, epoch,
                                                      partition=5)))
    assert top != 0 or (parts and parts[0][0] != 0), (top, parts)
    top, parts = epoch_response_v0(ask(API_BEGIN_EPOCH, 0,
                                       begin_epoch_v0(cluster.cluster_id, leader, epoch,
                                                      topic="orders")))
    assert top != 0 or (parts and parts[0][0] != 0), (top, parts)

    # Cut short: the connection is closed, nothing else happens.
    for api, version, body in ((API_BEGIN_EPOCH, 0, begin_epoch_v0(cluster.cluster_id, 1, 1)[:9]),
                               (API_END_EPOCH, 0, b"\x00"),
                               (API_BEGIN_EPOCH, 0, b"\xff" * 40)):
        c = WireConn(target.controller_port, client_id="hostile-peer")
        try:
            c.send(api, version, body)
            assert c.closed_by_peer(), f"api {api}: a malformed body was answered"
        finally:
            c.close()

    # The quorum did not move: same leader, same epoch, seen from every voter,
    # and it still commits.
    for i in cluster.controller_ids:
        q = cluster.quorum(i)
        assert (q["leader_id"], q["leader_epoch"]) == (leader, epoch), (i, q)
    name = unique_topic("after-hostile")
    err, msg = create_topics_raw(cluster.node(cluster.broker_ids[0]).port, [(name, 1, 1)])[name]
    assert err == 0, (err, msg)
    assert target.proc.poll() is None
    log = target.log_text()
    assert "malformed" in log or "refus" in log, "no log line for the hostile requests"
