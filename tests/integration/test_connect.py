"""samsa-connect (Kafka Connect standalone worker) driven as a Connect user would.

Every test starts its own bin/samsa-connect on a free port against the module's
broker, talks to it with plain HTTP (http.client) and checks what reached the topics
and files with confluent-kafka. Workers are stopped by pid: SIGTERM (must exit 0 in a
bounded time) or SIGKILL where a test says so; their logs must hold no sanitizer
report or crash.

Guarantees tested (docs/CONNECT.md, "Delivery guarantees"):
  - graceful restart of the worker: a file -> topic -> file pipeline of 100,000 lines
    ends with every line exactly once in the topic and in the sink file, in order;
  - kill -9 of the worker: no line is lost, and lines only repeat as replays of a
    contiguous range that had been acknowledged (source) or flushed (sink) but whose
    offsets were not stored yet: the output, with later repeats dropped, is the input.
"""

import http.client
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import tempfile
import threading
import time

import pytest

from conftest import REPO, confluent_create_topic, free_ports, unique_topic, wait_until

CONNECT_BIN = os.environ.get("SAMSA_CONNECT", os.path.join(REPO, "bin", "samsa-connect"))
PLUGIN_SRC = os.path.join(REPO, "tests", "integration", "connect_plugin", "test_plugin.c")
PLUGIN_INCLUDE = os.path.join(REPO, "src", "connect")
BAD_LOG_RE = re.compile(r"AddressSanitizer|LeakSanitizer|ThreadSanitizer|runtime error:"
                        r"|Segmentation fault|Assertion .* failed")

# One partition per auto-created topic, so record order is the file's order.
BROKER_CONFIG = {"num.partitions": "1"}

FILE_SOURCE = "org.apache.kafka.connect.file.FileStreamSourceConnector"
FILE_SINK = "org.apache.kafka.connect.file.FileStreamSinkConnector"
STRING_CONV = "org.apache.kafka.connect.storage.StringConverter"
JSON_CONV = "org.apache.kafka.connect.json.JsonConverter"
BYTES_CONV = "org.apache.kafka.connect.converters.ByteArrayConverter"


# --------------------------------------------------------------------------- worker

class Worker:
    """One samsa-connect process (restartable) with a fixed port, config and offset file."""

    def __init__(self, workdir, bootstrap, props=None):
        self.workdir = workdir
        self.port = free_ports(1)[0]
        self.log_path = os.path.join(workdir, "connect.log")
        self.props_path = os.path.join(workdir, "worker.properties")
        self.offsets_path = os.path.join(workdir, "offsets.json")
        self.proc = None
        self.exit_codes = []
        p = {
            "bootstrap.servers": bootstrap,
            "key.converter": STRING_CONV,
            "value.converter": STRING_CONV,
            "offset.storage.file.filename": self.offsets_path,
            "offset.flush.interval.ms": "500",
            "listeners": f"http://127.0.0.1:{self.port}",
            # A worker killed -9 leaves its consumers in their groups until this expires.
            "consumer.session.timeout.ms": "6000",
            "consumer.heartbeat.interval.ms": "1000",
        }
        p.update(props or {})
        with open(self.props_path, "w") as f:
            for k, v in p.items():
                f.write(f"{k}={v}\n")

    def start(self, *connector_files, expect_ready=True):
        assert self.proc is None
        if not os.access(CONNECT_BIN, os.X_OK):
            pytest.fail(f"{CONNECT_BIN} missing (run `make build`)")
        log = open(self.log_path, "ab")
        log.write(f"=== start: {CONNECT_BIN} {self.props_path} {' '.join(connector_files)}\n".encode())
        log.flush()
        self.proc = subprocess.Popen([CONNECT_BIN, self.props_path, *connector_files], stdout=log,
                                     stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                     cwd=self.workdir)
        log.close()
        if expect_ready:
            wait_until(self._ready, timeout_s=30, what=f"samsa-connect /health on {self.port}")
        return self

    def _ready(self):
        if self.proc.poll() is not None:
            raise AssertionError(f"samsa-connect exited {self.proc.returncode}:\n{self.log_tail()}")
        try:
            return self.req("GET", "/health")[0] == 200
        except OSError:
            return False

    def stop(self, timeout_s=60):
        if self.proc is None:
            return None
        self.proc.send_signal(signal.SIGTERM)
        try:
            rc = self.proc.wait(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            rc = f"hung {timeout_s}s after SIGTERM"
        self.proc = None
        self.exit_codes.append(rc)
        return rc

    def kill9(self):
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait()
        self.proc = None

    def req(self, method, path, body=None, raw=None, timeout=60):
        """(status, parsed JSON body or None)."""
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=timeout)
        try:
            data = raw if raw is not None else (json.dumps(body) if body is not None else None)
            headers = {"Content-Type": "application/json"} if data is not None else {}
            conn.request(method, path, body=data, headers=headers)
            r = conn.getresponse()
            text = r.read()
            return r.status, (json.loads(text) if text else None)
        finally:
            conn.close()

    def ok(self, method, path, body=None, status=200):
        st, doc = self.req(method, path, body)
        assert st == status, f"{method} {path} -> {st} {doc}"
        return doc

    def status(self, name):
        return self.ok("GET", f"/connectors/{name}/status")

    def wait_state(self, name, conn_state, task_states=None, timeout_s=30):
        def check():
            s = self.status(name)
            if s["connector"]["state"] != conn_state:
                return False
            if task_states is not None and [t["state"] for t in s["tasks"]] != task_states:
                return False
            return s
        return wait_until(check, timeout_s=timeout_s, what=f"{name} {conn_state} {task_states}")

    def log_text(self):
        try:
            with open(self.log_path, "rb") as f:
                return f.read().decode("utf-8", "replace")
        except FileNotFoundError:
            return ""

    def log_tail(self, n=60):
        return "\n".join(self.log_text().splitlines()[-n:])


@pytest.fixture
def workers(request, module_broker, tmp_path):
    """factory(props=None, bootstrap=None) -> Worker (not started; the module's broker
    unless bootstrap names another). Teardown stops every worker by
    pid and checks clean exits and logs."""
    made = []

    def make(props=None, bootstrap=None):
        d = tempfile.mkdtemp(prefix="samsa-connect-", dir=tmp_path)
        w = Worker(d, bootstrap or module_broker.bootstrap, props)
        made.append(w)
        return w

    yield make
    problems = []
    for w in made:
        w.stop()
        bad = [rc for rc in w.exit_codes if rc != 0]
        if bad:
            problems.append(f"worker {w.port}: graceful stops exited {bad}")
        crash = [ln for ln in w.log_text().splitlines() if BAD_LOG_RE.search(ln)]
        if crash:
            problems.append(f"worker {w.port} log:\n  " + "\n  ".join(crash[:20]))
    failed = any(getattr(getattr(request.node, "rep_" + p, None), "failed", False)
                 for p in ("setup", "call"))
    if failed or problems:
        for w in made:
            print(f"\n----- samsa-connect log tail ({w.log_path}) -----\n{w.log_tail()}\n-----")
    assert not problems, "\n".join(problems)


# --------------------------------------------------------------------------- kafka helpers

def consume_all(bootstrap, topic, expect=None, timeout_s=60):
    """Every record of partition 0 of topic as confluent Message objects, read until the
    high watermark (and, when expect is given, until at least that many arrived)."""
    from confluent_kafka import Consumer, KafkaException, TopicPartition
    c = Consumer({"bootstrap.servers": bootstrap, "group.id": unique_topic("g"),
                  "enable.auto.commit": False, "auto.offset.reset": "earliest"})
    try:
        c.assign([TopicPartition(topic, 0, 0)])
        out = []
        deadline = time.monotonic() + timeout_s
        hi = None
        while time.monotonic() < deadline:
            batch = c.consume(10000, timeout=0.5)
            out.extend(m for m in batch if not m.error())
            if batch and hi is not None and len(out) < hi:
                continue
            try:
                hi = c.get_watermark_offsets(TopicPartition(topic, 0), timeout=10)[1]
            except KafkaException:  # the topic is not there yet
                time.sleep(0.1)
                continue
            if len(out) >= hi and (expect is None or len(out) >= expect):
                return out
        raise AssertionError(f"{topic}: only {len(out)} records after {timeout_s}s (wanted {expect})")
    finally:
        c.close()


def high_watermark(bootstrap, topic):
    from confluent_kafka import Consumer, TopicPartition
    c = Consumer({"bootstrap.servers": bootstrap, "group.id": unique_topic("g")})
    try:
        return c.get_watermark_offsets(TopicPartition(topic, 0), timeout=10)[1]
    finally:
        c.close()


def produce(bootstrap, topic, records):
    """records: (key, value, headers) tuples; waits for every acknowledgement."""
    from confluent_kafka import Producer
    p = Producer({"bootstrap.servers": bootstrap, "enable.idempotence": True})
    for k, v, h in records:
        p.produce(topic, key=k, value=v, headers=h)
    assert p.flush(30) == 0


def read_lines(path):
    try:
        with open(path, "rb") as f:
            return f.read().decode().splitlines()
    except FileNotFoundError:
        return []


def file_source(name, path, topic, **extra):
    cfg = {"connector.class": FILE_SOURCE, "tasks.max": "1", "file": path, "topic": topic}
    cfg.update(extra)
    return {"name": name, "config": cfg}


def file_sink(name, path, topics, **extra):
    cfg = {"connector.class": FILE_SINK, "tasks.max": "1", "file": path, "topics": topics}
    cfg.update(extra)
    return {"name": name, "config": cfg}


# --------------------------------------------------------------------------- tests

def test_root_health_plugins_and_validation(workers):
    w = workers().start()
    root = w.ok("GET", "/")
    assert root["version"] and root["kafka_cluster_id"]
    assert w.ok("GET", "/health") == {
        "status": "healthy", "message": "Worker has completed startup and is ready to handle requests."}

    plugins = w.ok("GET", "/connector-plugins")
    assert {"class": FILE_SOURCE, "type": "source"}.items() <= plugins[0].items() or \
        any(p["class"] == FILE_SOURCE and p["type"] == "source" for p in plugins)
    assert any(p["class"] == FILE_SINK and p["type"] == "sink" for p in plugins)
    assert all(p["type"] in ("source", "sink") for p in plugins)
    everything = w.ok("GET", "/connector-plugins?connectorsOnly=false")
    assert any(p["class"] == JSON_CONV and p["type"] == "converter" for p in everything)

    defs = w.ok("GET", "/connector-plugins/FileStreamSource/config")
    assert {d["name"] for d in defs} == {"file", "topic", "batch.size"}
    batch = next(d for d in defs if d["name"] == "batch.size")
    assert batch["type"] == "INT" and batch["default_value"] == "2000"
    assert w.req("GET", "/connector-plugins/NoSuchConnector/config")[0] == 404

    good = {"connector.class": "FileStreamSource", "name": "v", "topic": "t", "file": "/tmp/x"}
    v = w.ok("PUT", "/connector-plugins/FileStreamSourceConnector/config/validate", good)
    assert v["name"] == FILE_SOURCE and v["error_count"] == 0
    assert "Common" in v["groups"]
    assert {c["definition"]["name"] for c in v["configs"]} >= {"name", "connector.class", "tasks.max",
                                                               "file", "topic", "batch.size"}
    bad = {"connector.class": FILE_SOURCE, "name": "v", "batch.size": "lots", "tasks.max": "0"}
    v = w.ok("PUT", f"/connector-plugins/{FILE_SOURCE}/config/validate", bad)
    errs = {c["value"]["name"]: c["value"]["errors"] for c in v["configs"] if c["value"]["errors"]}
    assert v["error_count"] == 3, errs
    assert errs["topic"] == ['Missing required configuration "topic" which has no default value.']
    assert "Not a number of type INT" in errs["batch.size"][0]
    assert "Value must be at least 1" in errs["tasks.max"][0]
    sink_v = w.ok("PUT", "/connector-plugins/FileStreamSink/config/validate",
                  {"connector.class": "FileStreamSink", "name": "s"})
    assert sink_v["error_count"] == 2  # neither topics nor topics.regex
    st, doc = w.req("PUT", "/connector-plugins/Nope/config/validate", {"name": "x"})
    assert st == 400 and "Failed to find any class" in doc["message"]


def test_connector_lifecycle_over_rest(workers, module_broker, tmp_path):
    w = workers().start()
    topic = unique_topic("life")
    src = tmp_path / "in.txt"
    src.write_text("".join(f"a{i}\n" for i in range(10)))

    st, info = w.req("POST", "/connectors", file_source("life", str(src), topic))
    assert st == 201, info
    assert info["name"] == "life" and info["type"] == "source"
    assert info["config"]["name"] == "life" and info["tasks"] == [{"connector": "life", "task": 0}]
    st, doc = w.req("POST", "/connectors", file_source("life", str(src), topic))
    assert st == 409 and doc == {"error_code": 409, "message": "Connector life already exists"}

    assert w.ok("GET", "/connectors") == ["life"]
    exp = w.ok("GET", "/connectors?expand=status&expand=info")
    assert set(exp["life"]) == {"status", "info"}
    assert w.ok("GET", "/connectors/life")["config"]["topic"] == topic
    assert w.ok("GET", "/connectors/life/config")["file"] == str(src)
    w.wait_state("life", "RUNNING", ["RUNNING"])
    tasks = w.ok("GET", "/connectors/life/tasks")
    assert tasks[0]["id"] == {"connector": "life", "task": 0} and tasks[0]["config"]["topic"] == topic
    assert list(w.ok("GET", "/connectors/life/tasks-config")) == ["life-0"]
    ts = w.ok("GET", "/connectors/life/tasks/0/status")
    assert ts["id"] == 0 and ts["state"] == "RUNNING" and ts["worker_id"] == f"127.0.0.1:{w.port}"
    assert w.req("GET", "/connectors/life/tasks/7/status")[0] == 404
    assert len(consume_all(module_broker.bootstrap, topic, expect=10)) == 10
    assert w.ok("GET", "/connectors/life/topics") == {"life": {"topics": [topic]}}

    # pause: nothing more is read; resume: the rest arrives
    assert w.req("PUT", "/connectors/life/pause")[0] == 202
    w.wait_state("life", "PAUSED", ["PAUSED"])
    with open(src, "a") as f:
        f.write("".join(f"b{i}\n" for i in range(5)))
    time.sleep(1.0)  # a check that nothing moves while paused, not a wait for progress
    assert high_watermark(module_broker.bootstrap, topic) == 10
    assert w.req("PUT", "/connectors/life/resume")[0] == 202
    w.wait_state("life", "RUNNING", ["RUNNING"])
    assert len(consume_all(module_broker.bootstrap, topic, expect=15)) == 15

    # reconfigure: PUT (200 for an existing connector) and PATCH (null removes a key)
    cfg = dict(w.ok("GET", "/connectors/life/config"), **{"batch.size": "3"})
    st, doc = w.req("PUT", "/connectors/life/config", cfg)
    assert st == 200 and doc["config"]["batch.size"] == "3"
    st, doc = w.req("PATCH", "/connectors/life/config", {"batch.size": None, "tasks.max": 1})
    assert st == 200 and "batch.size" not in doc["config"] and doc["config"]["tasks.max"] == "1"
    st, doc = w.req("PUT", "/connectors/life/config", dict(cfg, name="other"))
    assert st == 400 and "doesn't match connector name in the URL" in doc["message"]
    w.wait_state("life", "RUNNING", ["RUNNING"])

    # restarts
    assert w.req("POST", "/connectors/life/restart")[0] == 204
    st, doc = w.req("POST", "/connectors/life/restart?includeTasks=true&onlyFailed=false")
    assert st == 202 and doc["connector"]["state"] == "RESTARTING"
    assert doc["tasks"][0]["state"] == "RESTARTING"
    w.wait_state("life", "RUNNING", ["RUNNING"])
    st, doc = w.req("POST", "/connectors/life/restart?includeTasks=true&onlyFailed=true")
    assert st == 202 and doc["connector"]["state"] == "RUNNING" and doc["tasks"][0]["state"] == "RUNNING"
    assert w.req("POST", "/connectors/life/tasks/0/restart")[0] == 204
    assert w.req("POST", "/connectors/life/tasks/3/restart")[0] == 404
    w.wait_state("life", "RUNNING", ["RUNNING"])
    # no restart re-sent anything: offsets were stored on each task stop
    assert high_watermark(module_broker.bootstrap, topic) == 15

    # offsets (KIP-875): readable any time, changeable only when STOPPED
    offs = w.ok("GET", "/connectors/life/offsets")
    size = os.path.getsize(src)
    assert offs == {"offsets": [{"partition": {"filename": str(src)}, "offset": {"position": size}}]}
    st, doc = w.req("PATCH", "/connectors/life/offsets", {"offsets": offs["offsets"]})
    assert st == 400 and doc["message"].startswith("Connectors must be in the STOPPED state")
    assert w.req("DELETE", "/connectors/life/offsets")[0] == 400
    assert w.req("PUT", "/connectors/life/stop")[0] == 204
    s = w.wait_state("life", "STOPPED", [])
    assert s["tasks"] == []
    assert w.ok("GET", "/connectors/life")["tasks"] == []
    assert w.ok("GET", "/connectors/life/tasks") == []
    # rewind to line b0 (after the 10 "aN" lines: 3 bytes each)
    patch = {"offsets": [{"partition": {"filename": str(src)}, "offset": {"position": 30}}]}
    assert w.ok("PATCH", "/connectors/life/offsets", patch) == {
        "message": "The offsets for this connector have been altered successfully"}
    assert w.ok("GET", "/connectors/life/offsets")["offsets"][0]["offset"] == {"position": 30}
    assert w.req("PATCH", "/connectors/life/offsets", {"offsets": []})[0] == 400
    assert w.req("PUT", "/connectors/life/resume")[0] == 202
    w.wait_state("life", "RUNNING", ["RUNNING"])
    recs = consume_all(module_broker.bootstrap, topic, expect=20)
    assert [m.value() for m in recs[15:]] == [f"b{i}".encode() for i in range(5)]

    # reset: everything again from the start of the file
    assert w.req("PUT", "/connectors/life/stop")[0] == 204
    w.wait_state("life", "STOPPED", [])
    assert w.ok("DELETE", "/connectors/life/offsets") == {
        "message": "The offsets for this connector have been reset successfully"}
    assert w.ok("GET", "/connectors/life/offsets") == {"offsets": []}
    assert w.req("PUT", "/connectors/life/resume")[0] == 202
    assert len(consume_all(module_broker.bootstrap, topic, expect=35)) == 35

    # a connector created STOPPED (KIP-980), then deleted
    st, doc = w.req("POST", "/connectors", dict(file_source("idle", str(src), topic), initial_state="STOPPED"))
    assert st == 201 and doc["tasks"] == []
    w.wait_state("idle", "STOPPED", [])
    assert w.req("POST", "/connectors", dict(file_source("x", str(src), topic), initial_state="SLEEPY"))[0] == 400

    assert w.req("DELETE", "/connectors/life")[0] == 204
    assert w.req("DELETE", "/connectors/idle")[0] == 204
    st, doc = w.req("GET", "/connectors/life")
    assert st == 404 and doc == {"error_code": 404, "message": "Connector life not found"}
    assert w.ok("GET", "/connectors") == []


def test_errors_and_bad_input_never_crash(workers, tmp_path):
    w = workers().start()
    for method, path in [("GET", "/connectors/nope"), ("GET", "/connectors/nope/status"),
                         ("PUT", "/connectors/nope/pause"), ("DELETE", "/connectors/nope"),
                         ("GET", "/connectors/nope/offsets"), ("POST", "/connectors/nope/restart")]:
        st, doc = w.req(method, path)
        assert st == 404 and doc["error_code"] == 404, (method, path, doc)
    assert w.req("GET", "/no/such/path") == (404, {"error_code": 404, "message": "HTTP 404 Not Found"})
    assert w.req("DELETE", "/connectors")[0] == 405
    assert w.req("POST", "/connectors/x/status")[0] == 405

    st, doc = w.req("POST", "/connectors", raw=b'{"name": "x", "config": {')
    assert st == 400 and doc["error_code"] == 400
    assert w.req("POST", "/connectors", raw=b"")[0] == 400
    assert w.req("POST", "/connectors", raw=b"[1,2,3]")[0] == 400
    assert w.req("POST", "/connectors", {"name": "x", "config": {"file": ["a"]}})[0] == 400
    assert w.req("POST", "/connectors", {"name": " ", "config": {}})[0] == 400
    st, doc = w.req("POST", "/connectors", {"name": "x", "config": {"topic": "t"}})
    assert st == 400 and "contains no connector type" in doc["message"]
    st, doc = w.req("POST", "/connectors", {"name": "x", "config": {"connector.class": "Nope"}})
    assert st == 400 and doc["message"].startswith("Connector configuration is invalid")
    st, doc = w.req("POST", "/connectors", file_source("x", "/tmp/f", ""))
    assert st == 400 and "topic" in doc["message"]
    assert w.req("POST", "/connectors", raw=b"[" * 100000 + b"]" * 100000)[0] in (400, 413)
    # Over 1 MiB: refused from its Content-Length before it is read, or once a chunked
    # body passes the limit.
    with socket.create_connection(("127.0.0.1", w.port), timeout=10) as s:
        s.sendall(b"POST /connectors HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                  b"Content-Length: 2097152\r\n\r\n")
        assert s.recv(4096).startswith(b"HTTP/1.1 413")
    conn = http.client.HTTPConnection("127.0.0.1", w.port, timeout=30)
    conn.request("POST", "/connectors", body=iter([b"x" * 65536] * 32), encode_chunked=True,
                 headers={"Content-Type": "application/json"})
    r = conn.getresponse()
    assert r.status == 413 and json.loads(r.read())["error_code"] == 413
    conn.close()
    assert w.req("PUT", "/connectors/x/config", raw="\u00e9t\u00e9".encode("latin-1"))[0] == 400
    assert w.req("PUT", "/admin/loggers/root", {"level": "LOUD"})[0] == 404
    assert w.req("PUT", "/admin/loggers/root", {})[0] == 400

    # raw garbage, a huge request line, a half request: each connection fails alone
    for junk in [b"\x00\x01\x02garbage\r\n\r\n", b"GET /" + b"a" * 100000 + b" HTTP/1.1\r\n\r\n",
                 b"POST /connectors HTTP/1.1\r\nContent-Length: 10\r\n\r\n{"]:
        with socket.create_connection(("127.0.0.1", w.port), timeout=5) as s:
            s.settimeout(1)  # the half request gets no answer: it waits for its body
            try:
                s.sendall(junk)
                s.shutdown(socket.SHUT_WR)
                s.recv(4096)
            except OSError:
                pass
    assert w.req("GET", "/health")[0] == 200
    assert w.ok("GET", "/connectors") == []


def test_bad_worker_or_connector_file_stops_startup(workers, tmp_path):
    w = workers({"value.converter": "org.example.NoSuchConverter"})
    w.start(expect_ready=False)
    assert w.proc.wait(timeout=30) == 1
    w.proc = None
    assert "Invalid value org.example.NoSuchConverter for configuration value.converter" in w.log_text()
    bad = tmp_path / "bad.properties"
    bad.write_text("name=bad\nconnector.class=FileStreamSource\n")  # no topic
    w2 = workers()
    w2.start(str(bad), expect_ready=False)
    assert w2.proc.wait(timeout=30) == 1
    w2.proc = None
    assert "Stopping after connector error" in w2.log_text()
    assert 'Missing required configuration "topic"' in w2.log_text()


@pytest.mark.broker_config(**{"num.partitions": "1"})
def test_stop_is_bounded_when_the_broker_is_gone(workers, broker, tmp_path):
    """Offsets pending (a long flush interval) and the only broker killed -9: SIGTERM
    still ends the worker in seconds with status 0 (the commit and the group leave
    give up after their timeouts)."""
    src, out = tmp_path / "in.txt", tmp_path / "out.txt"
    src.write_text("".join(f"l{i}\n" for i in range(100)))
    topic = unique_topic("gone")
    w = workers({"offset.flush.interval.ms": "600000"}, bootstrap=broker.bootstrap).start()
    assert w.req("POST", "/connectors", file_source("s", str(src), topic))[0] == 201
    assert w.req("POST", "/connectors", file_sink("k", str(out), topic))[0] == 201
    wait_until(lambda: high_watermark(broker.bootstrap, topic) == 100, what="100 records in the topic")
    w.wait_state("k", "RUNNING", ["RUNNING"])
    wait_until(lambda: "assigned 1 partition" in w.log_text(), what="the sink's assignment")
    broker.kill9()
    t0 = time.monotonic()
    assert w.stop(timeout_s=60) == 0
    assert time.monotonic() - t0 < 30
    # Whatever the sink had consumed was written by its final flush, whole lines only.
    assert read_lines(out) == [f"l{i}" for i in range(len(read_lines(out)))]


def test_admin_loggers(workers):
    w = workers().start()
    loggers = w.ok("GET", "/admin/loggers")
    assert loggers["root"]["level"] == "INFO"
    affected = w.ok("PUT", "/admin/loggers/samsa.connect", {"level": "DEBUG"})
    assert "samsa.connect" in affected and "samsa.connect.herder" in affected
    assert w.ok("GET", "/admin/loggers/samsa.connect.herder")["level"] == "DEBUG"
    assert w.ok("GET", "/admin/loggers/samsa.connect.herder")["last_modified"] > 0
    assert w.req("GET", "/admin/loggers/no.such.logger")[0] == 404
    w.ok("GET", "/connectors")
    wait_until(lambda: "GET /connectors" in w.log_text(), timeout_s=10, what="a DEBUG line of the rest logger")
    assert w.req("PUT", "/admin/loggers/samsa.connect?scope=cluster", {"level": "INFO"})[0] == 204


def test_sink_offsets_alter_and_reset(workers, module_broker, tmp_path):
    topic = unique_topic("sinkoff")
    produce(module_broker.bootstrap, topic, [(None, f"v{i}".encode(), None) for i in range(20)])
    out = tmp_path / "sink.txt"
    w = workers().start()
    assert w.req("POST", "/connectors", file_sink("snk", str(out), topic))[0] == 201
    wait_until(lambda: len(read_lines(out)) == 20, what="20 lines in the sink file")
    assert read_lines(out) == [f"v{i}" for i in range(20)]

    def committed():
        o = w.ok("GET", "/connectors/snk/offsets")["offsets"]
        return o and o[0]["offset"]["kafka_offset"] == 20 and o
    offs = wait_until(committed, what="sink offsets committed")
    assert offs[0]["partition"] == {"kafka_topic": topic, "kafka_partition": 0}
    assert w.ok("GET", "/connectors/snk/topics") == {"snk": {"topics": [topic]}}

    assert w.req("PUT", "/connectors/snk/stop")[0] == 204
    w.wait_state("snk", "STOPPED", [])
    patch = {"offsets": [{"partition": {"kafka_topic": topic, "kafka_partition": 0},
                          "offset": {"kafka_offset": 15}}]}
    assert w.ok("PATCH", "/connectors/snk/offsets", patch)["message"].endswith("altered successfully")
    assert w.ok("GET", "/connectors/snk/offsets")["offsets"][0]["offset"] == {"kafka_offset": 15}
    bad = {"offsets": [{"partition": {"kafka_topic": topic}, "offset": {"kafka_offset": 1}}]}
    assert w.req("PATCH", "/connectors/snk/offsets", bad)[0] == 400
    assert w.req("PUT", "/connectors/snk/resume")[0] == 202
    wait_until(lambda: len(read_lines(out)) == 25, what="5 replayed lines")
    assert read_lines(out)[20:] == [f"v{i}" for i in range(15, 20)]

    assert w.req("PUT", "/connectors/snk/stop")[0] == 204
    w.wait_state("snk", "STOPPED", [])
    assert w.ok("DELETE", "/connectors/snk/offsets")["message"].endswith("reset successfully")
    assert w.ok("GET", "/connectors/snk/offsets") == {"offsets": []}
    assert w.req("PUT", "/connectors/snk/resume")[0] == 202
    wait_until(lambda: len(read_lines(out)) == 45, what="all 20 lines again after the reset")


def test_sink_tasks_share_partitions_of_a_regex(workers, module_broker, tmp_path):
    """tasks.max=2 sink tasks in one consumer group over topics.regex: the four
    partitions of two matching topics are split between them, every record is written
    once, and a pause/resume with two members keeps it so."""
    bs = module_broker.bootstrap
    prefix = unique_topic("rx")
    topics = [f"{prefix}-a", f"{prefix}-b"]
    for t in topics:
        confluent_create_topic(bs, t, 2)
    produce(bs, topics[0], [(f"k{i}".encode(), f"a{i}".encode(), None) for i in range(100)])
    produce(bs, topics[1], [(f"k{i}".encode(), f"b{i}".encode(), None) for i in range(100)])
    out = tmp_path / "rx.txt"
    w = workers().start()
    cfg = {"connector.class": "FileStreamSink", "tasks.max": "2", "file": str(out),
           "topics.regex": re.escape(prefix) + "-[ab]"}
    st, info = w.req("POST", "/connectors", {"name": "rx", "config": cfg})
    assert st == 201 and len(info["tasks"]) == 2
    w.wait_state("rx", "RUNNING", ["RUNNING", "RUNNING"])
    wait_until(lambda: len(read_lines(out)) >= 200, timeout_s=60, what="200 lines")
    want = sorted([f"a{i}" for i in range(100)] + [f"b{i}" for i in range(100)])
    assert sorted(read_lines(out)) == want
    assert sorted(w.ok("GET", "/connectors/rx/topics")["rx"]["topics"]) == topics
    assert w.req("PUT", "/connectors/rx/pause")[0] == 202
    w.wait_state("rx", "PAUSED", ["PAUSED", "PAUSED"])
    produce(bs, topics[0], [(b"late", b"late", None)])
    time.sleep(1.0)  # a check that nothing moves while paused, not a wait for progress
    assert len(read_lines(out)) == 200
    assert w.req("PUT", "/connectors/rx/resume")[0] == 202
    wait_until(lambda: len(read_lines(out)) == 201, timeout_s=30, what="the late line")
    assert w.req("DELETE", "/connectors/rx")[0] == 204


def test_converters_round_trip(workers, module_broker, tmp_path):
    bs = module_broker.bootstrap
    src = tmp_path / "in.txt"
    lines = ["hello", "w\u00f6rld", '{"not": "parsed"}']
    src.write_text("".join(l + "\n" for l in lines))
    w = workers().start()
    expect = {
        (JSON_CONV, "true"): [json.dumps({"schema": {"type": "string", "optional": False}, "payload": l},
                                         separators=(",", ":"), ensure_ascii=False) for l in lines],
        (JSON_CONV, "false"): [json.dumps(l, ensure_ascii=False) for l in lines],
        (STRING_CONV, "true"): lines,
        (BYTES_CONV, "true"): lines,
    }
    for i, ((conv, schemas), want) in enumerate(expect.items()):
        topic = unique_topic(f"conv{i}")
        cfg = file_source(f"src{i}", str(src), topic, **{"value.converter": conv,
                                                          "value.converter.schemas.enable": schemas})
        assert w.req("POST", "/connectors", cfg)[0] == 201
        got = consume_all(bs, topic, expect=3)
        assert [m.value().decode() for m in got] == want, conv
        assert all(m.key() is None for m in got)
        # and back: a sink with the same converter writes the original lines
        out = tmp_path / f"out{i}.txt"
        sink = file_sink(f"snk{i}", str(out), topic, **{"value.converter": conv,
                                                        "value.converter.schemas.enable": schemas})
        assert w.req("POST", "/connectors", sink)[0] == 201
        wait_until(lambda: len(read_lines(out)) == 3, what=f"round trip through {conv}")
        assert read_lines(out) == lines, conv

    # JSON with a struct schema (written by any Kafka Connect producer) into the file sink
    topic = unique_topic("structs")
    env = {"schema": {"type": "struct", "optional": False, "fields": [
        {"field": "id", "type": "int32", "optional": False},
        {"field": "b", "type": "bytes", "optional": True}]},
        "payload": {"id": 7, "b": "AAE="}}
    produce(bs, topic, [(b"k", json.dumps(env).encode(), [("h", b"v")]),
                        (None, None, None),
                        (None, b"not json", None),
                        (None, json.dumps({"payload": 1}).encode(), None),
                        (None, json.dumps({"schema": {"type": "bytes"}, "payload": "aGk="}).encode(), None)])
    out = tmp_path / "structs.txt"
    strict = file_sink("strict", str(out), topic, **{"value.converter": JSON_CONV,
                                                      "value.converter.schemas.enable": "true",
                                                      "key.converter": STRING_CONV})
    assert w.req("POST", "/connectors", strict)[0] == 201
    s = w.wait_state("strict", "RUNNING", ["FAILED"])
    assert "Converting byte[] to Kafka Connect data failed" in s["tasks"][0]["trace"]
    assert read_lines(out) == []  # a failed task commits nothing, writes nothing after flush
    tolerant = dict(strict["config"], **{"errors.tolerance": "all", "errors.log.enable": "true"})
    assert w.req("PUT", "/connectors/strict/config", tolerant)[0] == 200
    w.wait_state("strict", "RUNNING", ["RUNNING"])
    wait_until(lambda: len(read_lines(out)) == 3, what="the convertible records")
    assert read_lines(out) == ['{"id":7,"b":"AAE="}', "null", "hi"]
    # a failed task restarted with onlyFailed recovers once its input is fixed
    st, doc = w.req("POST", "/connectors/strict/restart?includeTasks=true&onlyFailed=true")
    assert st == 202 and doc["tasks"][0]["state"] == "RUNNING"


def test_plugin_shared_object_from_plugin_path(workers, module_broker, tmp_path):
    cc = shutil.which("cc") or shutil.which("gcc")
    if not cc:
        pytest.skip("no C compiler")
    good, bad = tmp_path / "plugins" / "counter", tmp_path / "plugins" / "bad"
    good.mkdir(parents=True)
    bad.mkdir(parents=True)
    for out, extra in [(good / "libcounter.so", []), (bad / "libbad.so", ["-DBAD_ABI"])]:
        subprocess.run([cc, "-shared", "-fPIC", "-O1", "-Wall", "-Werror", f"-I{PLUGIN_INCLUDE}", *extra,
                        "-o", str(out), PLUGIN_SRC], check=True, timeout=120)
    w = workers({"plugin.path": str(tmp_path / "plugins")}).start()
    classes = {p["class"]: p for p in w.ok("GET", "/connector-plugins")}
    assert classes["com.example.connect.CounterSourceConnector"] == {
        "class": "com.example.connect.CounterSourceConnector", "type": "source", "version": "0.1"}
    assert classes["com.example.connect.RecordingSinkConnector"]["type"] == "sink"
    assert len(classes) == 6  # 4 built-ins (FileStream, JDBC) + 2; the bad ABI's classes were refused
    assert "ABI version 0x20000" in w.log_text()

    st, doc = w.req("POST", "/connectors", {"name": "neg", "config": {
        "connector.class": "Counter", "topic": "t", "count": "-1"}})
    assert st == 400 and "count must not be negative" in doc["message"]

    topic = unique_topic("counter")
    cfg = {"connector.class": "Counter", "topic": topic, "count": "50", "tag": "x",
           "key.converter": STRING_CONV, "value.converter": JSON_CONV}
    assert w.req("POST", "/connectors", {"name": "cnt", "config": cfg})[0] == 201
    recs = consume_all(module_broker.bootstrap, topic, expect=50)
    assert len(recs) == 50
    assert recs[0].key() == b"k0"
    v = json.loads(recs[3].value())
    assert v["payload"] == {"n": 3, "tag": "x"} and v["schema"]["type"] == "struct"
    assert recs[3].headers() == [("source", b"counter"), ("seq", b"3"), ("empty", None)]

    out = tmp_path / "recorded.txt"
    sink = {"connector.class": "com.example.connect.RecordingSinkConnector", "topics": topic,
            "file": str(out), "key.converter": STRING_CONV, "value.converter": JSON_CONV}
    assert w.req("POST", "/connectors", {"name": "rec", "config": sink})[0] == 201
    wait_until(lambda: len(read_lines(out)) == 50, what="50 recorded records")
    first = read_lines(out)[0].split("|")
    assert first[:4] == [topic, "0", "0", "string:k0"]
    assert first[4] == 'json:{"n":0,"tag":"x"}'
    assert json.loads(first[5])["type"] == "struct"
    assert first[6] == "source=counter,seq=0,empty="

    # offsets went through the ABI: a restarted worker goes on at 50, not at 0. (In
    # standalone mode connectors made over REST do not outlive the worker, as in Kafka:
    # it comes back with the connector from a file.)
    w.stop()
    again = tmp_path / "cnt.properties"
    again.write_text("".join(f"{k}={v}\n" for k, v in dict(cfg, name="cnt", count="80").items()))
    w.start(str(again))
    assert w.ok("GET", "/connectors") == ["cnt"]
    recs = consume_all(module_broker.bootstrap, topic, expect=80)
    assert [json.loads(m.value())["payload"]["n"] for m in recs] == list(range(80))


def _pipeline_setup(workers, module_broker, tmp_path, n_lines):
    topic = unique_topic("pipe")
    src, out = tmp_path / "input.txt", tmp_path / "output.txt"
    lines = [f"line-{i:06d}-{'x' * (i % 17)}" for i in range(n_lines)]
    w = workers()
    files = []
    for name, cfg in [("source", file_source("pipe-src", str(src), topic, **{"batch.size": "5000"})),
                      ("sink", file_sink("pipe-sink", str(out), topic))]:
        path = tmp_path / f"{name}.json"
        path.write_text(json.dumps(cfg))
        files.append(str(path))
    return topic, src, out, lines, w, files


def _append(path, lines):
    with open(path, "a") as f:
        f.write("".join(l + "\n" for l in lines))


@pytest.mark.timeout(240)
def test_pipeline_exactly_once_across_graceful_restart(workers, module_broker, tmp_path):
    n = 100_000
    topic, src, out, lines, w, files = _pipeline_setup(workers, module_broker, tmp_path, n)
    _append(src, lines[:40_000])
    w.start(*files)
    wait_until(lambda: len(read_lines(out)) >= 10_000, timeout_s=60, what="the pipeline to start flowing")
    _append(src, lines[40_000:70_000])
    assert w.stop() == 0  # mid-run: the source has more to read, the sink more to write
    mid = len(read_lines(out))
    assert 10_000 <= mid <= 70_000
    _append(src, lines[70_000:])
    w.start(*files)  # connectors come back from the same files, offsets from the offset file
    wait_until(lambda: len(read_lines(out)) >= n, timeout_s=90, what=f"{n} lines in the sink file")
    time.sleep(1.5)  # a check that nothing more arrives, not a wait for progress
    got = read_lines(out)
    assert len(got) == n and got == lines
    assert high_watermark(module_broker.bootstrap, topic) == n
    assert w.stop() == 0
    doc = json.load(open(w.offsets_path))
    assert doc["offsets"]["pipe-src"][0]["offset"]["position"] == os.path.getsize(src)


def committed_offset(bootstrap, group, topic):
    from confluent_kafka import Consumer, TopicPartition
    c = Consumer({"bootstrap.servers": bootstrap, "group.id": group, "enable.auto.commit": False})
    try:
        return max(0, c.committed([TopicPartition(topic, 0)], timeout=10)[0].offset)
    finally:
        c.close()


@pytest.mark.timeout(240)
def test_pipeline_at_least_once_across_kill9(workers, module_broker, tmp_path):
    """kill -9 of the worker mid-run. Exactly what comes again is accounted for: the
    source re-sends the lines after its stored position P (those acknowledged since are
    duplicated in the topic) and the sink re-writes the records after its committed
    offset C (those flushed since are duplicated in the file). Nothing is lost."""
    n = 100_000
    bs = module_broker.bootstrap
    topic, src, out, lines, w, files = _pipeline_setup(workers, module_broker, tmp_path, n)
    # The file grows while the worker runs (2,000 lines every 50 ms), so the kill lands
    # with records in flight, acknowledged but not yet stored, and put but not committed.
    written_in = [0]
    stop_writing = threading.Event()

    def writer():
        while written_in[0] < n and not stop_writing.is_set():
            _append(src, lines[written_in[0]:written_in[0] + 2000])
            written_in[0] += 2000
            time.sleep(0.05)
    t = threading.Thread(target=writer)
    _append(src, lines[:2000])
    written_in[0] = 2000
    w.start(*files)
    t.start()
    try:
        wait_until(lambda: len(read_lines(out)) >= 20_000 and os.path.exists(w.offsets_path),
                   timeout_s=60, what="the pipeline to flow and the first offsets stored")
        w.kill9()
    finally:
        stop_writing.set()
        t.join()

    # What survived the kill: the stored source position, the topic, the committed sink
    # offset and the whole lines of the sink file.
    pos = json.load(open(w.offsets_path))["offsets"]["pipe-src"][0]["offset"]["position"]
    sizes, k = 0, 0
    while k < n and sizes + len(lines[k]) + 1 <= pos:
        sizes += len(lines[k]) + 1
        k += 1
    assert sizes == pos, "the stored position is not at a line boundary"
    hw = wait_until(lambda: (lambda a: time.sleep(0.3) or (a == high_watermark(bs, topic) and a))(
        high_watermark(bs, topic)), what="the topic to settle after the kill")
    assert hw >= k, "a stored source offset covers a record the topic lacks"
    committed = committed_offset(bs, "connect-pipe-sink", topic)
    written = len(read_lines(out))
    assert committed <= written <= hw
    print(f"at kill: source position covers {k} lines, topic has {hw}, sink committed {committed},"
          f" sink file has {written}")

    _append(src, lines[written_in[0]:])
    w.start(*files)
    final_topic = hw + (n - k)
    final_file = written + (final_topic - committed)
    wait_until(lambda: high_watermark(bs, topic) >= final_topic and len(read_lines(out)) >= final_file,
               timeout_s=120, what=f"{final_topic} records and {final_file} lines")
    time.sleep(1.5)  # a check that nothing more arrives, not a wait for progress
    assert high_watermark(bs, topic) == final_topic
    index = {l: i for i, l in enumerate(lines)}
    for name, seq in [("sink file", read_lines(out)),
                      ("topic", [m.value().decode() for m in consume_all(bs, topic)])]:
        # No loss; each line is either the next new one or part of a replay of earlier
        # lines, and a replay goes forward in input order.
        prev, top, first = -1, -1, []
        for line in seq:
            assert line in index, f"{name}: {line!r} is not an input line"
            i = index[line]
            assert i == prev + 1 or i <= top, f"{name}: {line} after {lines[prev]} skips lines"
            if i > top:
                first.append(line)
                top = i
            prev = i
        assert first == lines, f"{name}: deduplicated output differs from the input"
    assert len(read_lines(out)) == final_file
