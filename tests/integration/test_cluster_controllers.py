"""
Controllers register their CONTROLLER endpoints with the active controller
(ControllerRegistration, KIP-919) and DescribeCluster lists them with
EndpointType 2, as `kafka-cluster.sh`/AdminClient with --bootstrap-controller
expect; brokers are EndpointType 1.
"""
import struct

import pytest

from conftest import WireConn, dec_compact_str, dec_uvarint, skip_tagged_fields, wait_until

pytestmark = pytest.mark.cluster

API_DESCRIBE_CLUSTER = 60


def describe_cluster_v1(port, endpoint_type):
    """-> (error, endpoint_type, controller_id, {id: (host, port)})"""
    c = WireConn(port)
    try:
        body = struct.pack(">?b", False, endpoint_type) + b"\x00"
        buf = c.request(API_DESCRIBE_CLUSTER, 1, body, flexible=True)
    finally:
        c.close()
    pos = skip_tagged_fields(buf, 0)  # response header v1
    _throttle, err = struct.unpack_from(">ih", buf, pos)
    pos += 6
    _msg, pos = dec_compact_str(buf, pos)
    etype = struct.unpack_from(">b", buf, pos)[0]
    pos += 1
    _cid, pos = dec_compact_str(buf, pos)
    controller = struct.unpack_from(">i", buf, pos)[0]
    pos += 4
    n, pos = dec_uvarint(buf, pos)
    nodes = {}
    for _ in range(max(n - 1, 0)):
        node = struct.unpack_from(">i", buf, pos)[0]
        pos += 4
        host, pos = dec_compact_str(buf, pos)
        nport = struct.unpack_from(">i", buf, pos)[0]
        pos += 4
        _rack, pos = dec_compact_str(buf, pos)
        pos = skip_tagged_fields(buf, pos)
        nodes[node] = (host, nport)
    return err, etype, controller, nodes


@pytest.mark.cluster_config(controllers=3, brokers=3)
def test_controllers_register_and_describe_cluster_lists_them(cluster):
    leader, _ = cluster.wait_for_leader()
    want = {i: ("127.0.0.1", cluster.node(i).controller_port) for i in cluster.controller_ids}
    broker = cluster.node(cluster.broker_ids[0])

    def controllers_seen():
        err, etype, controller, nodes = describe_cluster_v1(broker.port, 2)
        return err == 0 and etype == 2 and nodes == want and controller in want

    wait_until(controllers_seen, timeout_s=15, what="DescribeCluster(controllers) listing all 3")
    logs = "".join(cluster.node(i).log_text() for i in cluster.controller_ids)
    for i in cluster.controller_ids:
        assert f"controller {i} registered" in logs, f"no registration of controller {i} logged"
    err, etype, _controller, nodes = describe_cluster_v1(broker.port, 1)
    assert (err, etype) == (0, 1) and set(nodes) == set(cluster.broker_ids)
    err, _etype, _controller, nodes = describe_cluster_v1(broker.port, 3)
    assert err == 115 and not nodes  # UNSUPPORTED_ENDPOINT_TYPE

    # The registrations are metadata: a restarted controller still sees them all.
    other = next(i for i in cluster.controller_ids if i != leader)
    cluster.restart(other)
    wait_until(controllers_seen, timeout_s=15, what="controllers after a restart")


def _replica_states(buf, pos):
    n, pos = dec_uvarint(buf, pos)
    ids = []
    for _ in range(max(n - 1, 0)):
        ids.append(struct.unpack_from(">i", buf, pos)[0])
        pos += 4 + 16 + 8 + 8 + 8  # id, directory id, log end, last fetch, last caught up
        pos = skip_tagged_fields(buf, pos)
    return ids, pos


def describe_quorum_v2_nodes(port):
    """DescribeQuorum v2 of __cluster_metadata-0 -> (voter ids, {node: [(name, host, port)]})."""
    topic = b"__cluster_metadata"
    body = (b"\x02" + bytes([len(topic) + 1]) + topic
            + b"\x02" + struct.pack(">i", 0) + b"\x00"  # one partition, its tags
            + b"\x00"  # topic tags
            + b"\x00")  # request tags
    c = WireConn(port)
    try:
        buf = c.request(55, 2, body, flexible=True)
    finally:
        c.close()
    pos = skip_tagged_fields(buf, 0)
    pos += 2  # error code
    _msg, pos = dec_compact_str(buf, pos)
    nt, pos = dec_uvarint(buf, pos)
    voters = []
    for _ in range(max(nt - 1, 0)):
        _name, pos = dec_compact_str(buf, pos)
        np_, pos = dec_uvarint(buf, pos)
        for _ in range(max(np_ - 1, 0)):
            pos += 4 + 2
            _m, pos = dec_compact_str(buf, pos)
            pos += 4 + 4 + 8
            voters, pos = _replica_states(buf, pos)
            _obs, pos = _replica_states(buf, pos)
            pos = skip_tagged_fields(buf, pos)
        pos = skip_tagged_fields(buf, pos)
    nn, pos = dec_uvarint(buf, pos)
    nodes = {}
    for _ in range(max(nn - 1, 0)):
        node = struct.unpack_from(">i", buf, pos)[0]
        pos += 4
        nl, pos = dec_uvarint(buf, pos)
        ls = []
        for _ in range(max(nl - 1, 0)):
            name, pos = dec_compact_str(buf, pos)
            host, pos = dec_compact_str(buf, pos)
            lport = struct.unpack_from(">H", buf, pos)[0]
            pos += 2
            pos = skip_tagged_fields(buf, pos)
            ls.append((name, host, lport))
        pos = skip_tagged_fields(buf, pos)
        nodes[node] = ls
    return sorted(voters), nodes


def test_describe_quorum_v2_lists_every_voters_endpoint(cluster):
    cluster.wait_for_leader()
    want = {i: [("CONTROLLER", "127.0.0.1", cluster.node(i).controller_port)]
            for i in cluster.controller_ids}
    port = cluster.node(cluster.broker_ids[0]).port

    def all_nodes():
        voters, nodes = describe_quorum_v2_nodes(port)
        return voters == sorted(cluster.controller_ids) and nodes == want

    wait_until(all_nodes, timeout_s=15, what="DescribeQuorum v2 naming every voter's endpoint")
