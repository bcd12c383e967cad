"""metrics.listener: /metrics (Prometheus text format) and /health, and `samsa cluster health`.

Every broker the harness starts gets its own metrics port (conftest.Broker.metrics_port),
so brokers started in parallel never share 9644. Each scrape here is parsed strictly:
every line is a # HELP / # TYPE line or a valid sample of a family typed before it, and
histograms are cumulative with +Inf == _count. The numbers are checked against what the
test did (messages and bytes in/out, request and latency counts, per-partition log
sizes against the segment files on disk, consumer group lag, errors per API). Hostile
HTTP clients (garbage, an oversized head, slowloris connections, more connections than
the server keeps) must not stop other scrapes. docs/METRICS.md lists the metrics.
"""

import json
import math
import os
import re
import socket
import struct
import subprocess
import time
import urllib.error
import urllib.request

import pytest

from conftest import (BROKER_BIN, REPO, WireConn, confluent_create_topic, enc_array, enc_str,
                      free_ports, record_batch, unique_topic, wait_until)

SAMSA = os.environ.get("SAMSA_CLI", os.path.join(REPO, "bin", "samsa"))

# ----------------------------------------------------------------- scraping and parsing

NAME = r"[a-zA-Z_:][a-zA-Z0-9_:]*"
LABEL = r'[a-zA-Z_][a-zA-Z0-9_]*="(?:[^"\\\n]|\\[\\"n])*"'
SAMPLE_RE = re.compile(rf"^({NAME})(?:\{{((?:{LABEL})(?:,{LABEL})*)?\}})? (\S+)$")
LABEL_RE = re.compile(r'([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\\n]|\\[\\"n])*)"')
HELP_RE = re.compile(rf"^# HELP ({NAME}) .+$")
TYPE_RE = re.compile(rf"^# TYPE ({NAME}) (counter|gauge|histogram|summary|untyped)$")


def http(url, method="GET", timeout=10):
    """(status, headers, body) of one request."""
    req = urllib.request.Request(url, method=method)
    try:
        with urllib.request.urlopen(req, timeout=timeout) as r:
            return r.status, dict(r.headers), r.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, dict(e.headers), e.read().decode()


def parse_metrics(text):
    """Strict parse of the text format: {(name, frozenset(labels)): value}, and the
    families' types. Fails the test on any line that is not valid."""
    types, samples, seen_families = {}, {}, []
    assert text.endswith("\n"), "the page must end with a newline"
    for n, line in enumerate(text.split("\n")[:-1], 1):
        where = f"line {n}: {line!r}"
        if line.startswith("#"):
            m = HELP_RE.match(line) or TYPE_RE.match(line)
            assert m, f"bad comment line, {where}"
            if line.startswith("# TYPE"):
                assert m.group(1) not in types, f"family typed twice, {where}"
                types[m.group(1)] = m.group(2)
                seen_families.append(m.group(1))
            continue
        m = SAMPLE_RE.match(line)
        assert m, f"not a valid sample, {where}"
        name, labels, value = m.group(1), m.group(2) or "", m.group(3)
        fam = name
        for suffix in ("_bucket", "_sum", "_count"):
            if name.endswith(suffix) and types.get(name[: -len(suffix)]) == "histogram":
                fam = name[: -len(suffix)]
        assert fam in types, f"sample of a family without # TYPE, {where}"
        assert seen_families[-1] == fam, f"family {fam} not contiguous, {where}"
        v = float(value)  # also accepts +Inf / NaN spellings Prometheus knows
        assert not math.isnan(v), where
        key = (name, frozenset(LABEL_RE.findall(labels)))
        assert key not in samples, f"duplicate series, {where}"
        samples[key] = v
    # histograms: cumulative buckets, +Inf == _count
    for fam, t in types.items():
        if t != "histogram":
            continue
        series = {}
        for (name, labels), v in samples.items():
            if name == fam + "_bucket":
                rest = frozenset(kv for kv in labels if kv[0] != "le")
                le = dict(labels)["le"]
                series.setdefault(rest, []).append((math.inf if le == "+Inf" else float(le), v))
        for rest, buckets in series.items():
            buckets.sort()
            counts = [c for _, c in buckets]
            assert counts == sorted(counts), f"{fam}{dict(rest)} buckets not cumulative"
            assert buckets[-1][0] == math.inf, f"{fam}{dict(rest)} has no +Inf bucket"
            assert samples[(fam + "_count", rest)] == counts[-1], f"{fam}{dict(rest)}: +Inf != _count"
            assert (fam + "_sum", rest) in samples
    return samples, types


class Scrape:
    def __init__(self, broker):
        status, headers, body = http(broker.metrics_url + "/metrics")
        assert status == 200, body
        assert headers["Content-Type"].startswith("text/plain; version=0.0.4"), headers
        self.text = body
        self.samples, self.types = parse_metrics(body)

    def get(self, name, default=None, **labels):
        want = frozenset((k, str(v)) for k, v in labels.items())
        return self.samples.get((name, want), default)

    def sum(self, name, **labels):
        want = {(k, str(v)) for k, v in labels.items()}
        return sum(v for (n, ls), v in self.samples.items() if n == name and want <= ls)


def scrape(broker):
    return Scrape(broker)


def samsa(*args, timeout=60):
    return subprocess.run([SAMSA, *map(str, args)], capture_output=True, text=True, timeout=timeout)


def segment_bytes(broker, topic, partition):
    d = os.path.join(broker.data_dir, f"{topic}-{partition}")
    return sum(os.path.getsize(os.path.join(d, f)) for f in os.listdir(d) if f.endswith(".log"))


# ----------------------------------------------------------------- tests


def test_scrape_is_valid_text_format_with_every_family(broker):
    s = scrape(broker)
    for fam, t in {
        "kafka_server_brokertopicmetrics_bytesin_total": "counter",
        "kafka_server_brokertopicmetrics_messagesin_total": "counter",
        "kafka_server_brokertopicmetrics_bytesout_total": "counter",
        "kafka_server_brokertopicmetrics_messagesout_total": "counter",
        "kafka_network_requestmetrics_requests_total": "counter",
        "kafka_network_requestmetrics_errors_total": "counter",
        "kafka_network_requestmetrics_totaltime_ms": "histogram",
        "kafka_network_requestmetrics_totaltime_ms_quantile": "gauge",
        "kafka_server_delayedoperationpurgatory_purgatorysize": "gauge",
        "kafka_log_log_size": "gauge",
        "kafka_log_log_numlogsegments": "gauge",
        "kafka_log_log_logendoffset": "gauge",
        "kafka_server_replicamanager_underreplicatedpartitions": "gauge",
        "kafka_controller_kafkacontroller_offlinepartitionscount": "gauge",
        "kafka_controller_kafkacontroller_activecontrollercount": "gauge",
        "kafka_consumergroup_lag": "gauge",
        "kafka_server_socketservermetrics_connection_count": "gauge",
        "process_resident_memory_bytes": "gauge",
        "kafka_log_logflushstats_logflushrateandtimems": "histogram",
    }.items():
        assert s.types.get(fam) == t, f"{fam}: {s.types.get(fam)}"
    # a single node: truthfully nothing under-replicated or offline, and it is the controller
    assert s.get("kafka_server_replicamanager_underreplicatedpartitions") == 0
    assert s.get("kafka_controller_kafkacontroller_offlinepartitionscount") == 0
    assert s.get("kafka_controller_kafkacontroller_activecontrollercount") == 1
    assert s.get("process_resident_memory_bytes") > 1 << 20
    for op in ("Fetch", "Produce"):
        assert s.get("kafka_server_delayedoperationpurgatory_purgatorysize", delayedOperation=op) == 0


def test_produce_consume_moves_counters(broker):
    from confluent_kafka import Consumer, Producer, TopicPartition

    topic = unique_topic("m")
    confluent_create_topic(broker.bootstrap, topic, 2)
    before = scrape(broker)
    p = Producer({"bootstrap.servers": broker.bootstrap, "linger.ms": 5})
    n0, n1 = 120, 45
    for i in range(n0):
        p.produce(topic, value=b"v" * 50, key=str(i).encode(), partition=0)
    for i in range(n1):
        p.produce(topic, value=b"w" * 20, partition=1)
    assert p.flush(30) == 0
    s = scrape(broker)
    assert s.get("kafka_server_brokertopicmetrics_messagesin_total", topic=topic) == n0 + n1
    size0, size1 = segment_bytes(broker, topic, 0), segment_bytes(broker, topic, 1)
    # batches are stored exactly as received: bytes in == bytes in the segment files
    assert s.get("kafka_server_brokertopicmetrics_bytesin_total", topic=topic) == size0 + size1
    assert s.get("kafka_log_log_size", topic=topic, partition=0) == size0
    assert s.get("kafka_log_log_size", topic=topic, partition=1) == size1
    assert s.get("kafka_log_log_numlogsegments", topic=topic, partition=0) == 1
    assert s.get("kafka_log_log_logendoffset", topic=topic, partition=0) == n0
    assert s.get("kafka_log_log_logendoffset", topic=topic, partition=1) == n1
    assert s.get("kafka_log_log_logstartoffset", topic=topic, partition=1) == 0
    req = "kafka_network_requestmetrics_requests_total"
    lat = "kafka_network_requestmetrics_totaltime_ms_count"
    assert s.get(req, request="Produce") > before.get(req, request="Produce")
    assert s.get(lat, request="Produce") >= s.get(req, request="Produce") - 1  # counted together
    assert s.get(lat, request="Produce") > before.get(lat, request="Produce")
    assert s.get("kafka_network_requestmetrics_totaltime_ms_quantile",
                 request="Produce", quantile="0.99") > 0
    assert s.get("kafka_server_brokertopicmetrics_bytesout_total", topic=topic) == 0

    c = Consumer({"bootstrap.servers": broker.bootstrap, "group.id": unique_topic("g"),
                  "enable.auto.commit": False})
    c.assign([TopicPartition(topic, 0, 0), TopicPartition(topic, 1, 0)])
    got, deadline = 0, time.monotonic() + 30
    while got < n0 + n1 and time.monotonic() < deadline:
        m = c.poll(0.5)
        if m is not None and not m.error():
            got += 1
    c.close()
    assert got == n0 + n1
    s2 = scrape(broker)
    assert s2.get("kafka_server_brokertopicmetrics_bytesout_total", topic=topic) >= size0 + size1
    assert s2.get("kafka_server_brokertopicmetrics_messagesout_total", topic=topic) >= n0 + n1
    assert s2.get(req, request="Fetch") > s.get(req, request="Fetch")
    assert s2.get(lat, request="Fetch") > s.get(lat, request="Fetch")


def test_consumer_group_lag(broker):
    from confluent_kafka import Consumer, Producer

    topic, group = unique_topic("lag"), unique_topic("grp")
    confluent_create_topic(broker.bootstrap, topic, 1)
    p = Producer({"bootstrap.servers": broker.bootstrap})
    for i in range(10):
        p.produce(topic, value=b"x%d" % i)
    assert p.flush(30) == 0
    c = Consumer({"bootstrap.servers": broker.bootstrap, "group.id": group,
                  "auto.offset.reset": "earliest", "enable.auto.commit": False})
    c.subscribe([topic])
    got, deadline = 0, time.monotonic() + 30
    while got < 10 and time.monotonic() < deadline:
        m = c.poll(0.5)
        if m is not None and not m.error():
            got += 1
    assert got == 10
    c.commit(asynchronous=False)
    c.close()
    assert scrape(broker).get("kafka_consumergroup_lag", group=group, topic=topic, partition=0) == 0
    for i in range(7):
        p.produce(topic, value=b"y%d" % i)
    assert p.flush(30) == 0
    assert scrape(broker).get("kafka_consumergroup_lag", group=group, topic=topic, partition=0) == 7
    r = samsa("-b", broker.bootstrap, "--format", "json", "cluster", "health",
              "--metrics-url", broker.metrics_url)
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout)["group_lag"] == 7


def test_errors_per_api(broker):
    topic = unique_topic("nope")
    before = scrape(broker).get("kafka_network_requestmetrics_errors_total", 0,
                                request="Produce", error="UNKNOWN_TOPIC_OR_PARTITION")
    w = WireConn(broker.port)
    # Produce v3 to a topic that does not exist (Produce never auto-creates)
    batch = record_batch([(None, b"v", [])])
    body = (struct.pack(">h", -1) + struct.pack(">hi", 1, 5000) +
            enc_array([enc_str(topic) + enc_array([struct.pack(">i", 0) +
                                                   struct.pack(">i", len(batch)) + batch])]))
    w.request(0, 3, body)
    # a malformed request: the connection is closed, and it counts as INVALID_REQUEST
    w.send(3, 1, b"\xff\xff\xff")  # Metadata v1 with a truncated topics array
    assert w.closed_by_peer()
    w.close()
    s = scrape(broker)
    assert s.get("kafka_network_requestmetrics_errors_total", request="Produce",
                 error="UNKNOWN_TOPIC_OR_PARTITION") == before + 1
    wait_until(lambda: scrape(broker).get("kafka_network_requestmetrics_errors_total", 0,
                                          request="Metadata", error="INVALID_REQUEST") == 1,
               what="the malformed Metadata request counted")


def test_health_endpoints_and_bad_requests(broker):
    base = broker.metrics_url
    assert http(base + "/health/live")[0] == 200
    status, _, body = http(base + "/health/ready")
    assert (status, body) == (200, "ready\n")
    status, headers, body = http(base + "/health")
    assert status == 200 and headers["Content-Type"] == "application/json"
    h = json.loads(body)
    assert h["live"] is True and h["ready"] is True and h["reason"] == "ok"
    assert http(base + "/nope")[0] == 404
    assert http(base + "/metrics?x=1")[0] == 200  # query strings are ignored
    status, headers, _ = http(base + "/metrics", method="POST")
    assert status == 405 and headers.get("Allow") == "GET, HEAD"
    status, headers, body = http(base + "/metrics", method="HEAD")
    assert status == 200 and body == "" and int(headers["Content-Length"]) > 1000

    def raw(data):
        with socket.create_connection(("127.0.0.1", broker.metrics_port), timeout=10) as s:
            s.sendall(data)
            out = b""
            while True:
                chunk = s.recv(65536)
                if not chunk:
                    return out
                out += chunk

    assert raw(b"garbage\r\n\r\n").startswith(b"HTTP/1.1 400 ")
    assert raw(b"GET /metrics HTTP/2.0\r\n\r\n").startswith(b"HTTP/1.1 400 ")
    assert raw(b"GET /metrics HTTP/1.1\r\nno colon here\r\n\r\n").startswith(b"HTTP/1.1 400 ")
    assert raw(b"GET /metrics HTTP/1.1\r\nX: " + b"a" * 20000 + b"\r\n\r\n").startswith(
        b"HTTP/1.1 400 ")


def test_hostile_http_clients_do_not_stop_scrapes(broker):
    port = broker.metrics_port
    # slowloris: heads that never finish, more of them than the server keeps
    slow = []
    for i in range(80):
        s = socket.create_connection(("127.0.0.1", port), timeout=10)
        s.sendall(b"GET /metrics HTTP/1.1\r\nHost: x\r\n")
        slow.append(s)
    garbage = socket.create_connection(("127.0.0.1", port), timeout=10)
    garbage.sendall(os.urandom(4096))
    huge = socket.create_connection(("127.0.0.1", port), timeout=10)
    huge.sendall(b"GET / HTTP/1.1\r\n" + b"X-Big: " + b"b" * 9000)
    for _ in range(5):
        t0 = time.monotonic()
        s = scrape(broker)
        assert time.monotonic() - t0 < 5
        assert s.get("kafka_controller_kafkacontroller_activecontrollercount") == 1
        assert http(broker.metrics_url + "/health/ready")[0] == 200
    # the oversized head was answered and closed, the slowloris ones time out (5 s)
    huge.settimeout(10)
    assert huge.recv(100).startswith(b"HTTP/1.1 400")
    def closed(s):  # a 408 answer may come first, then EOF
        s.settimeout(0.01)
        try:
            while s.recv(4096):
                pass
            return True
        except socket.timeout:
            return False
        except ConnectionError:
            return True

    def all_closed():
        return all(closed(s) for s in slow[-10:])
    wait_until(all_closed, timeout_s=15, what="slowloris connections closed by the read timeout")
    for s in slow + [garbage, huge]:
        s.close()
    assert scrape(broker).get("kafka_server_socketservermetrics_connection_count") == 0


def test_connection_count(broker):
    conns = [WireConn(broker.port) for _ in range(3)]
    wait_until(lambda: scrape(broker).get("kafka_server_socketservermetrics_connection_count") == 3,
               what="3 connections counted")
    for c in conns:
        c.close()
    wait_until(lambda: scrape(broker).get("kafka_server_socketservermetrics_connection_count") == 0,
               what="connections gone")


def test_cluster_health_cli(broker):
    r = samsa("-b", broker.bootstrap, "cluster", "health", "--metrics-url", broker.metrics_url)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "HEALTHY" in r.stdout and broker.metrics_url in r.stdout
    r = samsa("-b", broker.bootstrap, "--format", "json", "cluster", "health",
              "--metrics-url", broker.metrics_url)
    assert r.returncode == 0, r.stderr
    h = json.loads(r.stdout)
    assert h["healthy"] is True
    (b,) = h["brokers"]
    assert b["reachable"] and b["ready"] and b["under_replicated_partitions"] == 0
    assert b["offline_partitions"] == 0 and b["active_controller_count"] == 1
    assert b["connections"] >= 0
    # a second URL nobody serves: not healthy, exit 1
    (dead,) = free_ports(1)
    r = samsa("-b", broker.bootstrap, "--format", "json", "--timeout", "3s", "cluster", "health",
              "--metrics-url", broker.metrics_url, "--metrics-url", f"http://127.0.0.1:{dead}")
    assert r.returncode == 1, r.stdout + r.stderr
    h = json.loads(r.stdout)
    assert h["healthy"] is False and [x["reachable"] for x in h["brokers"]] == [True, False]
    r = samsa("cluster", "health", "--metrics-url", "ftp://x")
    assert r.returncode == 1 and "bad URL" in r.stdout


def test_two_brokers_each_with_its_own_metrics_port(broker_factory):
    a = broker_factory()
    b = broker_factory(node_id=2)
    assert a.metrics_port != b.metrics_port
    for br, node in ((a, 1), (b, 2)):
        status, _, body = http(br.metrics_url + "/health")
        assert status == 200 and json.loads(body)["node_id"] == node
        assert scrape(br).get("kafka_controller_kafkacontroller_activecontrollercount") == 1


def _run_broker_expect_failure(tmp_path, **overrides):
    port, cport = free_ports(2)
    props = {"listeners": f"PLAINTEXT://127.0.0.1:{port},CONTROLLER://127.0.0.1:{cport}",
             "controller.quorum.voters": f"1@127.0.0.1:{cport}",
             "log.dirs": str(tmp_path / "data")}
    props.update(overrides)
    cmd = [BROKER_BIN]
    for k, v in props.items():
        cmd += ["--override", f"{k}={v}"]
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=60)
    return r.returncode, r.stdout + r.stderr


def test_metrics_listener_bind_conflict_is_a_startup_error(tmp_path):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen(1)
        taken = s.getsockname()[1]
        rc, out = _run_broker_expect_failure(tmp_path, **{"metrics.listener":
                                                          f"http://127.0.0.1:{taken}"})
    assert rc != 0
    assert "metrics.listener" in out and str(taken) in out, out


def test_metrics_listener_bad_value(tmp_path):
    rc, out = _run_broker_expect_failure(tmp_path, **{"metrics.listener": "127.0.0.1:9"})
    assert rc != 0 and "metrics.listener" in out, out


@pytest.mark.broker_config(**{"metrics.listener": ""})
def test_metrics_listener_empty_disables_it(broker):
    assert "metrics.listener serving" not in broker.log_text()
    with pytest.raises(OSError):
        socket.create_connection(("127.0.0.1", broker.metrics_port), timeout=2).close()


def test_grafana_dashboard_queries_exported_metrics(broker):
    path = os.path.join(REPO, "docs", "grafana-dashboard.json")
    with open(path) as f:
        dash = json.load(f)
    assert dash["title"] and isinstance(dash["panels"], list) and dash.get("schemaVersion")
    exprs = [t["expr"] for p in dash["panels"] for t in p.get("targets", [])]
    assert len(exprs) >= 10
    s = scrape(broker)
    exported = set(s.types) | {n for n, _ in s.samples}
    used = set()
    for e in exprs:
        used |= set(re.findall(r"\b((?:kafka|process)_[a-z0-9_]+)", e))
    missing = sorted(u for u in used if u not in exported)
    assert not missing, f"dashboard queries metrics the broker does not export: {missing}"
    for want in ("bytesin", "bytesout", "requests_total", "totaltime_ms_bucket", "errors_total",
                 "purgatorysize", "log_size", "consumergroup_lag", "connection_count",
                 "resident_memory", "logflushrateandtimems"):
        assert any(want in u for u in used), f"no panel shows {want}"
