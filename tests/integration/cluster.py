"""Multi-node harness: a Samsa cluster of several samsa-broker processes on loopback.

Role: builds on conftest.Broker (one process, its ports, config, data dir, log)
to run a KRaft cluster whose nodes vote over the network: either N combined
nodes (process.roles=broker,controller) or separate controller-only and
broker-only nodes, with one cluster id formatted into every node's log dirs
before its first start. Tests use it through the `cluster` and
`cluster_factory` fixtures (conftest.py) and drive it with fault injection:
kill -9, SIGSTOP/SIGCONT, SIGTERM and restart, one node at a time.

Layout under the root directory: node-<id>/{server.properties, broker.log,
data/}. Node ids: combined nodes first (1..n), then controller-only, then
broker-only nodes, numbered on. Every controller-capable node is a voter
(controller.quorum.voters lists them all); broker-only nodes are observers.

Invariants:
  - every port is picked before any config is written (a voter must know
    every other voter's CONTROLLER port);
  - all nodes are launched before any is waited for, because none may serve
    before a quorum exists;
  - readiness is the node's own (conftest: "serving" logged and its port
    accepts: PLAINTEXT, or CONTROLLER on a controller-only node), then, for
    start_all(), every broker listed in every live broker's Metadata;
  - processes are only ever signalled by their own pid; finish() resumes
    paused nodes, stops brokers before controllers, and checks exit statuses
    and logs as conftest does for single brokers.

What it asks of a node, read from the outside: Metadata (v1, raw) for the
brokers, controller id and partition leaders it knows; DescribeQuorum through
`samsa cluster quorum --format json` for the quorum's leader, epoch and
replicas; CreateTopics (v4, raw) to send an admin request to one given node.
Raw requests go to exactly the node named, where a stock client would pick
its own.
"""

import json
import os
import struct
import subprocess
import time

from conftest import (SAMSA_CLI, START_TIMEOUT_S, STOP_TIMEOUT_S, Broker, Reader, WireConn,
                      _finish_broker, enc_array, enc_str, free_ports, wait_until)

# Kafka error codes the cluster tests look for.
ERR_NONE = 0
ERR_REQUEST_TIMED_OUT = 7
ERR_TOPIC_ALREADY_EXISTS = 36
ERR_NOT_CONTROLLER = 41
RETRIABLE_CREATE_ERRORS = (ERR_REQUEST_TIMED_OUT, ERR_NOT_CONTROLLER)

API_METADATA, API_CREATE_TOPICS = 3, 19

# Every node of a harness cluster gets these (overridable): a broker that
# stops heartbeating is fenced after 3 s, so fencing tests stay short.
CLUSTER_DEFAULTS = {
    "broker.session.timeout.ms": "3000",
    "broker.heartbeat.interval.ms": "500",
}


# --------------------------------------------------------------------------- raw requests

def metadata_raw(port, topics=None, timeout_s=5.0):
    """Metadata v1 to 127.0.0.1:port (all topics when topics is None) ->
    {"brokers": {id: (host, port)}, "controller": id,
     "topics": {name: {"error": code, "internal": bool,
                       "partitions": {index: {"error", "leader", "replicas", "isr"}}}}}."""
    body = struct.pack(">i", -1) if topics is None else enc_array([enc_str(t) for t in topics])
    c = WireConn(port, timeout_s=timeout_s, client_id="samsa-it-cluster")
    try:
        r = Reader(c.request(API_METADATA, 1, body))
    finally:
        c.close()
    brokers = {}
    for _ in range(r.i32()):
        node, host, bport = r.i32(), r.string(), r.i32()
        r.string()  # rack
        brokers[node] = (host, bport)
    controller = r.i32()
    out = {}
    for _ in range(r.i32()):
        terr, name, internal = r.i16(), r.string(), r.i8()
        parts = {}
        for _ in range(r.i32()):
            perr, index, leader = r.i16(), r.i32(), r.i32()
            replicas, isr = r.array(r.i32), r.array(r.i32)
            parts[index] = {"error": perr, "leader": leader, "replicas": replicas, "isr": isr}
        out[name] = {"error": terr, "internal": bool(internal), "partitions": parts}
    return {"brokers": brokers, "controller": controller, "topics": out}


def create_topics_raw(port, topics, timeout_ms=15000, socket_timeout_s=None):
    """CreateTopics v4 to 127.0.0.1:port; topics: [(name, partitions, replication_factor)].
    Returns {name: (error_code, error_message)}. The socket waits timeout_ms
    plus 10 s: a node must answer (even with an error) within its request timeout."""
    items = [enc_str(name) + struct.pack(">ih", n, rf) + enc_array([]) + enc_array([])
             for name, n, rf in topics]
    body = enc_array(items) + struct.pack(">ib", timeout_ms, 0)
    wait_s = socket_timeout_s if socket_timeout_s is not None else timeout_ms / 1000 + 10
    c = WireConn(port, timeout_s=wait_s, client_id="samsa-it-cluster")
    try:
        r = Reader(c.request(API_CREATE_TOPICS, 4, body))
    finally:
        c.close()
    r.i32()  # throttle
    out = {}
    for _ in range(r.i32()):
        name, err, msg = r.string(), r.i16(), r.string()
        out[name] = (err, msg)
    return out


def quorum_cli(port, timeout_s=3):
    """`samsa cluster quorum --format json` against 127.0.0.1:port ->
    {"leader_id", "leader_epoch", "high_watermark",
     "replicas": [{"id", "role": leader|follower|observer, "log_end_offset", "lag",
                   "last_fetch_timestamp", "last_caught_up_timestamp"}]}.
    RuntimeError when the tool fails (node down, no quorum, ...)."""
    cmd = [SAMSA_CLI, "-b", f"127.0.0.1:{port}", "--format", "json",
           "--timeout", f"{timeout_s}s", "cluster", "quorum"]
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout_s + 10)
    if r.returncode != 0:
        raise RuntimeError(f"samsa cluster quorum on :{port} exited {r.returncode}: "
                           f"{r.stderr.strip()}")
    return json.loads(r.stdout)


def new_cluster_id():
    r = subprocess.run([SAMSA_CLI, "storage", "random-uuid"], capture_output=True, text=True,
                       timeout=30)
    assert r.returncode == 0, f"samsa storage random-uuid: {r.stderr}"
    return r.stdout.strip()


# --------------------------------------------------------------------------- cluster

class Cluster:
    """Several samsa-broker processes forming one cluster.

    Cluster(root, n_combined=3)                    3 nodes, broker,controller
    Cluster(root, controllers=3, brokers=3)        ids 1-3 controller-only,
                                                   ids 4-6 broker-only
    (n_combined defaults to 3 when neither controllers nor brokers is given,
    else to 0; the kinds may be mixed.) overrides: server.properties keys for
    every node, over CLUSTER_DEFAULTS.

    Attributes: .root, .cluster_id, .voters (the controller.quorum.voters
    string), .nodes {id: conftest.Broker} with .kind "combined" | "controller"
    | "broker", .ids, .controller_ids, .broker_ids.
    """

    def __init__(self, root, n_combined=None, controllers=0, brokers=0, overrides=None,
                 cluster_id=None):
        if n_combined is None:
            n_combined = 0 if (controllers or brokers) else 3
        kinds = ["combined"] * n_combined + ["controller"] * controllers + ["broker"] * brokers
        assert n_combined + controllers >= 1, "a cluster needs at least one controller"
        assert n_combined + brokers >= 1, "a cluster needs at least one broker"
        self.root = root
        self.cluster_id = cluster_id or new_cluster_id()
        ports = free_ports(3 * len(kinds))
        node_ports = {i + 1: tuple(ports[3 * i:3 * i + 3]) for i in range(len(kinds))}
        self.kinds = {i + 1: k for i, k in enumerate(kinds)}
        self.voters = ",".join(f"{i}@127.0.0.1:{node_ports[i][1]}"
                               for i, k in self.kinds.items() if k != "broker")
        props = dict(CLUSTER_DEFAULTS)
        props.update(overrides or {})
        roles = {"combined": "broker,controller", "controller": "controller", "broker": "broker"}
        self.nodes = {}
        for i, kind in self.kinds.items():
            b = Broker(os.path.join(root, f"node-{i}"), overrides=props, node_id=i,
                       roles=roles[kind], voters=self.voters, ports=node_ports[i],
                       cluster_id=self.cluster_id)
            b.kind = kind
            self.nodes[i] = b
        self.ids = sorted(self.nodes)
        self.controller_ids = [i for i in self.ids if self.nodes[i].is_controller]
        self.broker_ids = [i for i in self.ids if self.nodes[i].is_broker]

    # -- addressing

    def node(self, node_id):
        return self.nodes[node_id]

    @property
    def bootstrap(self):
        """Every broker-capable node's PLAINTEXT address, comma separated."""
        return ",".join(self.nodes[i].bootstrap for i in self.broker_ids)

    def is_up(self, node_id):
        """Running and not paused."""
        b = self.nodes[node_id]
        return b.proc is not None and not b.paused

    def live_brokers(self, exclude=()):
        return [i for i in self.broker_ids if self.is_up(i) and i not in exclude]

    def live_controllers(self, exclude=()):
        return [i for i in self.controller_ids if self.is_up(i) and i not in exclude]

    def live_bootstrap(self, exclude=()):
        return ",".join(self.nodes[i].bootstrap for i in self.live_brokers(exclude))

    # -- lifecycle

    def start_all(self, timeout_s=START_TIMEOUT_S, wait_brokers=True):
        """Launch every node that is not running, then wait for each to serve
        and (wait_brokers) for every live broker's Metadata to list them all."""
        launched = [b for b in self.nodes.values() if b.proc is None]
        for b in launched:
            b.launch()
        deadline = time.monotonic() + timeout_s
        for b in launched:
            b.wait_ready(max(deadline - time.monotonic(), 1.0))
        if wait_brokers:
            self.wait_for_brokers(len(self.broker_ids), timeout_s=30)
        return self

    def start(self, node_id, timeout_s=START_TIMEOUT_S):
        """Start one stopped or killed node on its old ports and data; wait until it serves."""
        return self.nodes[node_id].launch().wait_ready(timeout_s)

    def stop(self, node_id, timeout_s=STOP_TIMEOUT_S):
        """SIGTERM (graceful); returns the exit status (finish() checks it was 0)."""
        return self.nodes[node_id].stop(timeout_s)

    def restart(self, node_id):
        rc = self.stop(node_id)
        assert rc == 0, (f"node {node_id}: graceful stop exited {rc}; log tail:\n"
                         f"{self.nodes[node_id].log_tail()}")
        return self.start(node_id)

    def kill9(self, node_id):
        """SIGKILL by pid, as a crash would."""
        self.nodes[node_id].kill9()

    def sigstop(self, node_id):
        """SIGSTOP by pid: the node hangs (no heartbeats, no votes, no answers)."""
        self.nodes[node_id].pause()

    def sigcont(self, node_id):
        self.nodes[node_id].resume()

    def kill_all(self):
        """SIGKILL every running node by pid (an emergency exit, no checks)."""
        for b in self.nodes.values():
            b.kill9()

    def finish(self, failed=False):
        """Teardown: resume paused nodes, SIGTERM broker-only nodes, then
        combined nodes, then controller-only nodes (each group at once, one
        shared bound), SIGKILL what hangs, and return the problems conftest's
        checks find (non-zero graceful exits, ERROR lines in a log)."""
        try:
            for kind in ("broker", "combined", "controller"):
                group = [b for b in self.nodes.values() if b.kind == kind and b.proc is not None]
                for b in group:
                    b.terminate()
                deadline = time.monotonic() + STOP_TIMEOUT_S
                for b in group:
                    b.wait_stopped(max(deadline - time.monotonic(), 0.1))
        finally:
            self.kill_all()
        problems = []
        for i in self.ids:
            problems += [f"node {i}: {p}" for p in _finish_broker(self.nodes[i], failed)]
        return problems

    # -- what the nodes say

    def metadata(self, node_id, topics=None, timeout_s=5.0):
        """Raw Metadata v1 from exactly this broker (see metadata_raw)."""
        return metadata_raw(self.nodes[node_id].port, topics, timeout_s)

    def brokers_seen(self, node_id):
        """The broker ids this broker's Metadata lists."""
        return set(self.metadata(node_id)["brokers"])

    def topics_seen(self, node_id, internal=False):
        md = self.metadata(node_id)["topics"]
        return {t for t, v in md.items() if v["error"] == 0 and (internal or not v["internal"])}

    def wait_for_brokers(self, n, timeout_s=30, via=None, expect=None):
        """Wait until the Metadata of each node in via (default: every live
        broker) lists n brokers (or exactly the id set expect). Returns
        {via id: set of broker ids}."""
        via = list(via) if via is not None else self.live_brokers()
        assert via, "no live broker to ask"

        def agreed():
            seen = {i: self.brokers_seen(i) for i in via}
            ok = all((s == set(expect)) if expect is not None else len(s) == n
                     for s in seen.values())
            return seen if ok else False
        return wait_until(agreed, timeout_s, interval_s=0.2,
                          what=f"{expect or n} brokers in Metadata from nodes {via}")

    def wait_for_topic(self, topic, partitions, timeout_s=10, via=None):
        """Wait until every node in via (default every live broker) lists topic
        with all its partitions led; returns {partition: leader} from the first."""
        via = list(via) if via is not None else self.live_brokers()

        def led():
            leaders = None
            for i in via:
                t = self.metadata(i, [topic])["topics"].get(topic)
                if (t is None or t["error"] != 0 or len(t["partitions"]) != partitions
                        or any(p["leader"] < 0 for p in t["partitions"].values())):
                    return False
                if leaders is None:
                    leaders = {p: v["leader"] for p, v in t["partitions"].items()}
            return leaders
        return wait_until(led, timeout_s, interval_s=0.1,
                          what=f"topic {topic} with {partitions} led partitions on nodes {via}")

    def create_topic(self, topic, partitions=3, rf=1, via=None, timeout_s=20,
                     request_timeout_ms=5000):
        """CreateTopics to one broker (default the first live one), retrying
        the retriable NOT_CONTROLLER / REQUEST_TIMED_OUT until timeout_s (and
        taking TOPIC_ALREADY_EXISTS after such a retry as success: the
        earlier attempt committed late); then wait until every live broker
        shows it led. Returns {partition: leader}."""
        via = via if via is not None else self.live_brokers()[0]
        port = self.nodes[via].port
        retried = [False]

        def created():
            err, msg = create_topics_raw(port, [(topic, partitions, rf)],
                                         request_timeout_ms)[topic]
            if err == ERR_NONE or (err == ERR_TOPIC_ALREADY_EXISTS and retried[0]):
                return True
            if err in RETRIABLE_CREATE_ERRORS:
                retried[0] = True
                return False
            raise AssertionError(f"CreateTopics {topic} via node {via}: error {err} {msg}")
        wait_until(created, timeout_s, interval_s=0.25, what=f"CreateTopics {topic} via node {via}")
        return self.wait_for_topic(topic, partitions, timeout_s)

    def quorum(self, node_id, timeout_s=3):
        """DescribeQuorum as this node answers it (controller listener when it
        has one, else PLAINTEXT): see quorum_cli."""
        b = self.nodes[node_id]
        return quorum_cli(b.controller_port or b.port, timeout_s)

    def active_controller(self, timeout_s=15):
        """(leader id, epoch) of the metadata quorum, from the first live
        controller that reports a live leader."""
        def ask():
            for i in self.live_controllers():
                try:
                    q = self.quorum(i)
                except (RuntimeError, ValueError, subprocess.TimeoutExpired):
                    continue
                if q["leader_id"] >= 0 and self.is_up(q["leader_id"]):
                    return q["leader_id"], q["leader_epoch"]
            return False
        return wait_until(ask, timeout_s, interval_s=0.2, what="an active controller")

    def wait_for_leader(self, timeout_s=15, exclude=(), min_epoch=-1):
        """Wait until every live controller reports the same live leader, not
        in exclude, with an epoch above min_epoch; returns (leader, epoch)."""
        def agreed():
            views = {i: self.quorum(i) for i in self.live_controllers()}
            got = {(q["leader_id"], q["leader_epoch"]) for q in views.values()}
            if len(got) != 1:
                return False
            leader, epoch = got.pop()
            if leader < 0 or leader in exclude or not self.is_up(leader) or epoch <= min_epoch:
                return False
            return leader, epoch
        return wait_until(agreed, timeout_s, interval_s=0.2,
                          what=f"one leader (not {set(exclude) or '-'}, epoch > {min_epoch})"
                               f" agreed by controllers {self.live_controllers()}")

    def __repr__(self):
        return f"<Cluster {self.cluster_id} {self.kinds} root={self.root}>"

