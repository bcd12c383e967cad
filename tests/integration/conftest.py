"""Integration-test harness: real samsa-broker processes driven by stock Kafka clients.

Role: every test here starts its own bin/samsa-broker on two free loopback ports
(PLAINTEXT and CONTROLLER) with a private temp config and data dir, talks to it
with an unmodified client (kcat, confluent-kafka-python, kafka-python, raw
sockets) and tears it down.  Invariants the fixture enforces on every broker:
  - readiness is a bounded poll (process alive, "serving" logged, port accepts);
    never a bare sleep;
  - every graceful stop (SIGTERM) must end with exit status 0 within a bound;
  - the broker's log (stdout+stderr of all its runs, appended to one file) must
    contain no "ERROR" line and no sanitizer report;
  - when a test fails, the tail of that log is printed to help the integrator.

Also here, so test modules can `from conftest import ...`:
  - small polling helpers (wait_until) and unique topic names;
  - a tiny hand-written Kafka wire codec (struct.pack) used by test_bad_input.py
    and to look at record batches as the broker serves them (codec attribute),
    written from the protocol guide, independent of the project's C code.

Multi-node clusters (`cluster` and `cluster_factory` fixtures) are built from
Broker objects by tests/integration/cluster.py.

Environment knobs: SAMSA_BROKER (broker binary, default <repo>/bin/samsa-broker),
SAMSA_CLI (the samsa tool, default <repo>/bin/samsa, for `storage format`),
SAMSA_IT_LOG_LEVEL (passed to the broker as SAMSA_LOG_LEVEL), SAMSA_IT_START_TIMEOUT
(seconds, default 60: sanitizer builds start slowly).
"""

import os
import re
import shutil
import signal
import socket
import struct
import subprocess
import tempfile
import time
import uuid

import pytest

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
BROKER_BIN = os.environ.get("SAMSA_BROKER", os.path.join(REPO, "bin", "samsa-broker"))
SAMSA_CLI = os.environ.get("SAMSA_CLI", os.path.join(REPO, "bin", "samsa"))
START_TIMEOUT_S = float(os.environ.get("SAMSA_IT_START_TIMEOUT", "60"))
STOP_TIMEOUT_S = 30.0

# A log line is bad if the broker logged at ERROR level or a sanitizer spoke.
BAD_LOG_RE = re.compile(
    r"\bERROR\b|AddressSanitizer|LeakSanitizer|ThreadSanitizer|UndefinedBehaviorSanitizer"
    r"|runtime error:|Segmentation fault|Assertion .* failed")


# --------------------------------------------------------------------------- helpers

def wait_until(pred, timeout_s=30.0, interval_s=0.05, what="condition"):
    """Poll pred() until it returns a truthy value (returned) or timeout_s passes
    (AssertionError naming `what` and the last value/exception)."""
    deadline = time.monotonic() + timeout_s
    last = None
    while True:
        try:
            last = pred()
            if last:
                return last
        except Exception as e:  # noqa: BLE001 - reported below if we time out
            last = e
        if time.monotonic() >= deadline:
            raise AssertionError(f"timed out after {timeout_s}s waiting for {what}; last: {last!r}")
        time.sleep(interval_s)


def unique_topic(prefix="t"):
    """A topic name no other test (or earlier run) uses."""
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


def free_ports(n):
    """n distinct free TCP ports on 127.0.0.1 (held open together while picking)."""
    socks = []
    try:
        for _ in range(n):
            s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            s.bind(("127.0.0.1", 0))
            socks.append(s)
        return [s.getsockname()[1] for s in socks]
    finally:
        for s in socks:
            s.close()


def port_accepts(port, timeout_s=0.5):
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=timeout_s):
            return True
    except OSError:
        return False


# --------------------------------------------------------------------------- broker

class Broker:
    """One samsa-broker process (restartable) on fixed ports and a fixed data dir.

    Attributes: .port, .controller_port, .metrics_port (metrics.listener) and
    .metrics_url ("http://127.0.0.1:PORT"), .bootstrap ("127.0.0.1:PORT"), .data_dir,
    .config_path, .log_path, .proc (Popen or None), .exit_codes (one per stop).

    By default a complete single-node cluster (process.roles=broker,controller,
    the node its own only voter). For multi-node clusters (tests/integration/
    cluster.py) the keyword-only arguments make other kinds of node:
      roles       "broker,controller", "controller" (only the CONTROLLER
                  listener: .port and .bootstrap are None) or "broker" (only
                  PLAINTEXT: .controller_port is None; voters required);
      voters      the controller.quorum.voters string (default: this node alone);
      ports       (plaintext, controller, metrics) chosen by the caller, who
                  needs every voter's port before writing any config;
      cluster_id  run `samsa storage format --cluster-id ID --ignore-formatted`
                  before the first start, so all nodes share one cluster id.
    Readiness waits on .ready_port: PLAINTEXT, or CONTROLLER on a controller-only node.
    """

    def __init__(self, workdir, overrides=None, config_path=None, node_id=1, *,
                 roles="broker,controller", voters=None, ports=None, cluster_id=None):
        self.workdir = workdir
        self.roles = roles
        self.is_broker = "broker" in roles.split(",")
        self.is_controller = "controller" in roles.split(",")
        assert self.is_broker or self.is_controller, f"bad process.roles {roles!r}"
        self.port, self.controller_port, self.metrics_port = ports or free_ports(3)
        if not self.is_broker:
            self.port = None
        if not self.is_controller:
            self.controller_port = None
            assert voters, "a broker-only node needs the controllers' voters string"
        self.ready_port = self.port if self.is_broker else self.controller_port
        self.bootstrap = f"127.0.0.1:{self.port}" if self.is_broker else None
        self.metrics_url = f"http://127.0.0.1:{self.metrics_port}"
        self.data_dir = os.path.join(workdir, "data")
        self.log_path = os.path.join(workdir, "broker.log")
        self.node_id = node_id
        self.cluster_id = cluster_id
        self._formatted = False
        self.proc = None
        self.paused = False
        self.exit_codes = []
        self.starts = 0
        self._start_offset = 0
        # Tests that deliberately provoke ERROR-level logs may set this.
        self.allow_error_log = False
        os.makedirs(self.data_dir, exist_ok=True)
        listeners = []
        if self.is_broker:
            listeners.append(f"PLAINTEXT://127.0.0.1:{self.port}")
        if self.is_controller:
            listeners.append(f"CONTROLLER://127.0.0.1:{self.controller_port}")
        net = {
            "node.id": str(node_id),
            "process.roles": roles,
            "listeners": ",".join(listeners),
        }
        if self.is_broker:
            net["advertised.listeners"] = f"PLAINTEXT://127.0.0.1:{self.port}"
        net.update({
            "controller.listener.names": "CONTROLLER",
            "listener.security.protocol.map": "PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT",
            "controller.quorum.voters": voters or f"{node_id}@127.0.0.1:{self.controller_port}",
            "log.dirs": self.data_dir,
            # its own HTTP port: parallel brokers must never share 9644
            "metrics.listener": self.metrics_url,
        })
        if config_path is None:
            # Our own config: a small single-node broker, fast group rebalances.
            props = dict(net)
            props.update({
                "num.partitions": "3",
                "auto.create.topics.enable": "true",
                "offsets.topic.replication.factor": "1",
                "transaction.state.log.replication.factor": "1",
                "transaction.state.log.min.isr": "1",
                "group.initial.rebalance.delay.ms": "0",
            })
            props.update(overrides or {})
            self.config_path = os.path.join(workdir, "server.properties")
            with open(self.config_path, "w") as f:
                f.write("# written by tests/integration/conftest.py\n")
                for k, v in props.items():
                    f.write(f"{k}={v}\n")
            self.overrides = {}
        else:
            # Someone else's config file (make run's): keep it, move only the
            # ports and data dir with --override (never bind 9092 in tests).
            self.config_path = config_path
            self.overrides = dict(net)
            self.overrides.update(overrides or {})

    # -- lifecycle

    def format_storage(self):
        """`samsa storage format` this node's directories with self.cluster_id
        (--ignore-formatted: a directory formatted before is left alone)."""
        cmd = [SAMSA_CLI, "storage", "format", "-c", self.config_path,
               "--cluster-id", self.cluster_id, "--ignore-formatted"]
        for k, v in self.overrides.items():
            cmd += ["--override", f"{k}={v}"]
        r = subprocess.run(cmd, capture_output=True, text=True, timeout=60)
        if r.returncode != 0:
            pytest.fail(f"{' '.join(cmd)} exited {r.returncode}:\n{r.stdout}{r.stderr}")
        self._formatted = True

    def start(self):
        """Launch and wait (bounded) until serving; pytest.fail otherwise."""
        self.launch()
        return self.wait_ready()

    def launch(self):
        """Spawn the process without waiting: nodes of a multi-node cluster
        are launched together, since none may serve before a quorum exists."""
        assert self.proc is None, "broker already running"
        if not os.access(BROKER_BIN, os.X_OK):
            pytest.fail(f"broker binary {BROKER_BIN} missing (run `make build`)")
        if self.cluster_id and not self._formatted:
            self.format_storage()
        cmd = [BROKER_BIN, self.config_path]
        for k, v in self.overrides.items():
            cmd += ["--override", f"{k}={v}"]
        env = dict(os.environ)
        if os.environ.get("SAMSA_IT_LOG_LEVEL"):
            env["SAMSA_LOG_LEVEL"] = os.environ["SAMSA_IT_LOG_LEVEL"]
        self.starts += 1
        log = open(self.log_path, "ab")
        log.write(f"=== start #{self.starts}: {' '.join(cmd)}\n".encode())
        log.flush()
        self._start_offset = log.tell()
        self.proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT,
                                     stdin=subprocess.DEVNULL, cwd=self.workdir, env=env)
        self.paused = False
        log.close()
        return self

    def is_ready(self):
        """True once this run logged "serving" and .ready_port accepts;
        _BrokerDied if the process exited."""
        rc = self.proc.poll()
        if rc is not None:
            raise _BrokerDied(rc)
        with open(self.log_path, "rb") as f:
            f.seek(self._start_offset)
            if b"serving" not in f.read():
                return False
        return port_accepts(self.ready_port)

    def wait_ready(self, timeout_s=START_TIMEOUT_S):
        assert self.proc is not None, "broker not launched"
        where = self.bootstrap or f"controller 127.0.0.1:{self.controller_port}"
        deadline = time.monotonic() + timeout_s
        while True:
            try:
                if self.is_ready():
                    return self
            except _BrokerDied as e:
                self.proc = None
                pytest.fail(f"samsa-broker exited with status {e.rc} during startup;"
                            f" log tail:\n{self.log_tail()}")
            if time.monotonic() > deadline:
                self.kill9()
                pytest.fail(f"samsa-broker not serving on {where} after"
                            f" {timeout_s}s; log tail:\n{self.log_tail()}")
            time.sleep(0.05)

    def terminate(self):
        """Send SIGTERM (after SIGCONT if paused) without waiting."""
        if self.proc is None:
            return
        if self.paused:
            self.resume()
        self.proc.send_signal(signal.SIGTERM)

    def stop(self, timeout_s=STOP_TIMEOUT_S):
        """SIGTERM, wait (bounded), record and return the exit status; the
        fixture later asserts every recorded status is 0."""
        if self.proc is None:
            return None
        self.terminate()
        return self.wait_stopped(timeout_s)

    def wait_stopped(self, timeout_s=STOP_TIMEOUT_S):
        """Wait for the exit terminate() asked for; record and return its status."""
        if self.proc is None:
            return None
        try:
            rc = self.proc.wait(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            rc = "hung (no exit %ss after SIGTERM; killed)" % timeout_s
        self.proc = None
        self.paused = False
        self.exit_codes.append(rc)
        return rc

    def restart(self):
        """Graceful stop (must exit 0) and start again on the same ports and data."""
        rc = self.stop()
        assert rc == 0, f"graceful stop exited {rc}; log tail:\n{self.log_tail()}"
        return self.start()

    def kill9(self):
        """SIGKILL, as a crash would; not counted as a graceful stop."""
        if self.proc is None:
            return
        self.proc.kill()
        self.proc.wait()
        self.proc = None
        self.paused = False

    def pause(self):
        """SIGSTOP: the process hangs (no heartbeats, no answers) but lives."""
        assert self.proc is not None, "broker not running"
        self.proc.send_signal(signal.SIGSTOP)
        self.paused = True

    def resume(self):
        """SIGCONT after pause()."""
        assert self.proc is not None, "broker not running"
        self.proc.send_signal(signal.SIGCONT)
        self.paused = False

    # -- logs

    def log_text(self):
        try:
            with open(self.log_path, "rb") as f:
                return f.read().decode("utf-8", "replace")
        except FileNotFoundError:
            return ""

    def log_tail(self, n=80):
        return "\n".join(self.log_text().splitlines()[-n:])

    def bad_log_lines(self):
        return [ln for ln in self.log_text().splitlines() if BAD_LOG_RE.search(ln)]

    def __repr__(self):
        return f"<Broker {self.node_id} {self.roles} {self.bootstrap} data={self.data_dir}>"


class _BrokerDied(Exception):
    def __init__(self, rc):
        super().__init__(rc)
        self.rc = rc


def _finish_broker(b, failed):
    """Teardown: stop, then check exit statuses and the log."""
    b.stop()
    problems = []
    bad_rc = [rc for rc in b.exit_codes if rc != 0]
    if bad_rc:
        problems.append(f"broker graceful stop(s) did not exit 0: {bad_rc}")
    bad = b.bad_log_lines()
    if bad and not b.allow_error_log:
        problems.append("broker log has ERROR/sanitizer lines:\n  " + "\n  ".join(bad[:20]))
    if failed or problems:
        print(f"\n----- samsa-broker log tail ({b.log_path}) -----\n{b.log_tail()}\n-----")
    return problems


@pytest.hookimpl(hookwrapper=True, tryfirst=True)
def pytest_runtest_makereport(item, call):
    # Remember each phase's report on the item so fixtures know if the test failed.
    outcome = yield
    rep = outcome.get_result()
    setattr(item, "rep_" + rep.when, rep)


def _test_failed(node):
    return any(getattr(getattr(node, "rep_" + w, None), "failed", False)
               for w in ("setup", "call"))


def _make_broker(request, overrides=None, config_path=None, node_id=1):
    workdir = tempfile.mkdtemp(prefix="samsa-it-")
    b = Broker(workdir, overrides=overrides, config_path=config_path, node_id=node_id)
    b.start()
    return b, workdir


def _broker_fixture(request, overrides=None, config_path=None):
    b, workdir = _make_broker(request, overrides, config_path)
    yield b
    failed = _test_failed(request.node)
    problems = _finish_broker(b, failed)
    if not failed and not problems:
        shutil.rmtree(workdir, ignore_errors=True)
    assert not problems, "\n".join(problems)


@pytest.fixture
def broker(request):
    """A fresh broker for one test. Overrides: @pytest.mark.broker_config(key=value, ...)."""
    m = request.node.get_closest_marker("broker_config")
    yield from _broker_fixture(request, overrides=(m.kwargs if m else None))


@pytest.fixture(scope="module")
def module_broker(request):
    """One broker shared by a module's tests. Overrides: a module-level
    `BROKER_CONFIG = {...}` dict."""
    overrides = getattr(request.module, "BROKER_CONFIG", None)
    b, workdir = _make_broker(request, overrides)
    yield b
    failed = any(_test_failed(i) for i in request.session.items
                 if i.module is request.module)
    problems = _finish_broker(b, failed)
    if not failed and not problems:
        shutil.rmtree(workdir, ignore_errors=True)
    assert not problems, "\n".join(problems)


@pytest.fixture
def broker_factory(request):
    """Start brokers from a given config file and overrides:
    factory(config_path=..., overrides={...}, node_id=1)."""
    made = []

    def make(config_path=None, overrides=None, node_id=1):
        b, workdir = _make_broker(request, overrides, config_path, node_id)
        made.append((b, workdir))
        return b

    yield make
    failed = _test_failed(request.node)
    all_problems = []
    for b, workdir in made:
        problems = _finish_broker(b, failed)
        all_problems += problems
        if not failed and not problems:
            shutil.rmtree(workdir, ignore_errors=True)
    assert not all_problems, "\n".join(all_problems)


@pytest.fixture
def cluster_factory(request):
    """Make multi-node clusters (tests/integration/cluster.py), torn down after
    the test: factory(n_combined=3, controllers=0, brokers=0, overrides=None,
    start=True) -> Cluster. Teardown stops every node by pid and checks exit
    statuses and logs as for `broker`."""
    from cluster import Cluster
    made = []

    def make(n_combined=None, controllers=0, brokers=0, overrides=None, start=True):
        root = tempfile.mkdtemp(prefix="samsa-it-cluster-")
        c = Cluster(root, n_combined=n_combined, controllers=controllers, brokers=brokers,
                    overrides=overrides)
        made.append(c)
        if start:
            c.start_all()
        return c

    yield make
    failed = _test_failed(request.node)
    problems = []
    for c in made:
        p = c.finish(failed)
        problems += p
        if not failed and not p:
            shutil.rmtree(c.root, ignore_errors=True)
    assert not problems, "\n".join(problems)


@pytest.fixture
def cluster(request, cluster_factory):
    """A started cluster for one test: 3 combined nodes unless the test says
    @pytest.mark.cluster_config(n_combined=..., controllers=..., brokers=...,
    overrides={...})."""
    m = request.node.get_closest_marker("cluster_config")
    return cluster_factory(**(m.kwargs if m else {}))


def pytest_configure(config):
    config.addinivalue_line("markers", "broker_config(**kv): server.properties overrides for `broker`")
    config.addinivalue_line(
        "markers", "cluster: starts a multi-node cluster (several samsa-broker processes,"
                   " tests/integration/cluster.py); deselect with -m 'not cluster'")
    config.addinivalue_line(
        "markers", "cluster_config(n_combined=, controllers=, brokers=, overrides=): the layout"
                   " and server.properties overrides of the `cluster` fixture")
    config.addinivalue_line(
        "markers", "serial: run.sh runs this test alone, after the parallel (pytest-xdist) batch;"
                   " for heavy-load or scale tests that starve, or are starved by, their neighbours")


# --------------------------------------------------------------------------- client helpers

def confluent_admin(bootstrap):
    from confluent_kafka.admin import AdminClient
    return AdminClient({"bootstrap.servers": bootstrap, "socket.timeout.ms": 10000})


def confluent_create_topic(bootstrap, topic, partitions, timeout_s=30):
    """Create a topic with confluent's AdminClient and wait until its metadata
    shows every partition with a leader."""
    from confluent_kafka.admin import NewTopic
    admin = confluent_admin(bootstrap)
    fs = admin.create_topics([NewTopic(topic, num_partitions=partitions, replication_factor=1)],
                             operation_timeout=timeout_s, request_timeout=timeout_s)
    fs[topic].result(timeout=timeout_s)

    def ready():
        md = admin.list_topics(timeout=5)
        t = md.topics.get(topic)
        return (t is not None and t.error is None and len(t.partitions) == partitions
                and all(p.leader >= 0 for p in t.partitions.values()))
    wait_until(ready, timeout_s, what=f"metadata of new topic {topic}")
    return admin


def confluent_topic_names(bootstrap):
    admin = confluent_admin(bootstrap)
    return set(admin.list_topics(timeout=10).topics)


def confluent_consume_partitions(bootstrap, topic, partitions, expected_count, timeout_s=30,
                                 extra_conf=None):
    """Read `expected_count` messages from the beginning of the given partitions
    with assign() (no consumer group). Returns {partition: [Message, ...]}."""
    from confluent_kafka import Consumer, TopicPartition, OFFSET_BEGINNING
    conf = {"bootstrap.servers": bootstrap, "group.id": "unused-" + uuid.uuid4().hex[:6],
            "enable.auto.commit": False, "enable.auto.offset.store": False,
            "enable.partition.eof": False, "fetch.wait.max.ms": 100}
    conf.update(extra_conf or {})
    c = Consumer(conf)
    try:
        c.assign([TopicPartition(topic, p, OFFSET_BEGINNING) for p in partitions])
        got = {p: [] for p in partitions}
        n = 0
        deadline = time.monotonic() + timeout_s
        while n < expected_count:
            assert time.monotonic() < deadline, (
                f"consumed {n}/{expected_count} from {topic} within {timeout_s}s:"
                f" { {p: len(v) for p, v in got.items()} }")
            m = c.poll(0.2)
            if m is None:
                continue
            assert m.error() is None, f"consumer error: {m.error()}"
            got[m.partition()].append(m)
            n += 1
        # Nothing beyond what we expect should show up.
        extra = c.poll(0.5)
        assert extra is None or extra.error() is not None, (
            f"unexpected extra message at {extra.partition()}@{extra.offset()}")
        return got
    finally:
        c.close()


# --------------------------------------------------------------------------- raw Kafka wire codec
# Just enough of the classic (non-flexible) encoding for hand-built requests.

def enc_str(s):
    if s is None:
        return struct.pack(">h", -1)
    b = s.encode() if isinstance(s, str) else s
    return struct.pack(">h", len(b)) + b


def enc_bytes(b):
    if b is None:
        return struct.pack(">i", -1)
    return struct.pack(">i", len(b)) + b


def enc_array(items):
    return struct.pack(">i", len(items)) + b"".join(items)


def enc_uvarint(n):
    out = bytearray()
    while True:
        b = n & 0x7F
        n >>= 7
        if n:
            out.append(b | 0x80)
        else:
            out.append(b)
            return bytes(out)


def enc_varint(n):
    return enc_uvarint((n << 1) ^ (n >> 63))  # zigzag


def dec_uvarint(buf, pos):
    shift = result = 0
    while True:
        b = buf[pos]
        pos += 1
        result |= (b & 0x7F) << shift
        if not b & 0x80:
            return result, pos
        shift += 7


def dec_compact_str(buf, pos):
    """Compact (flexible-version) nullable string at pos -> (str or None, pos)."""
    n, pos = dec_uvarint(buf, pos)
    if n == 0:
        return None, pos
    return buf[pos:pos + n - 1].decode(), pos + n - 1


def skip_tagged_fields(buf, pos):
    """Skip a tagged-field section at pos -> pos after it."""
    n, pos = dec_uvarint(buf, pos)
    for _ in range(n):
        _tag, pos = dec_uvarint(buf, pos)
        size, pos = dec_uvarint(buf, pos)
        pos += size
    return pos


def dec_varint(buf, pos):
    u, pos = dec_uvarint(buf, pos)
    return (u >> 1) ^ -(u & 1), pos


def _crc32c_table():
    tab = []
    for i in range(256):
        c = i
        for _ in range(8):
            c = (c >> 1) ^ 0x82F63B78 if c & 1 else c >> 1
        tab.append(c)
    return tab


_CRC32C = _crc32c_table()


def crc32c(data):
    c = 0xFFFFFFFF
    for b in data:
        c = _CRC32C[(c ^ b) & 0xFF] ^ (c >> 8)
    return c ^ 0xFFFFFFFF


def record_batch(records, base_timestamp_ms=None, attributes=0, corrupt_crc=False,
                 producer_id=-1, producer_epoch=-1, base_sequence=-1):
    """An uncompressed magic-2 record batch. records: [(key, value, [(hkey, hval)])].
    attributes 0x10 marks it transactional."""
    ts = int(time.time() * 1000) if base_timestamp_ms is None else base_timestamp_ms
    body = b""
    for i, (k, v, hdrs) in enumerate(records):
        r = struct.pack(">b", 0) + enc_varint(0) + enc_varint(i)
        r += enc_varint(-1) if k is None else enc_varint(len(k)) + k
        r += enc_varint(-1) if v is None else enc_varint(len(v)) + v
        r += enc_varint(len(hdrs))
        for hk, hv in hdrs:
            hkb = hk.encode()
            r += enc_varint(len(hkb)) + hkb
            r += enc_varint(-1) if hv is None else enc_varint(len(hv)) + hv
        body += enc_varint(len(r)) + r
    # after the crc: attributes .. records
    after_crc = struct.pack(">hiqqqhii", attributes, len(records) - 1, ts, ts, producer_id,
                            producer_epoch, base_sequence, len(records)) + body
    crc = crc32c(after_crc)
    if corrupt_crc:
        crc ^= 0xDEADBEEF
    # partitionLeaderEpoch, magic, crc
    after_len = struct.pack(">ibI", -1, 2, crc) + after_crc
    return struct.pack(">qi", 0, len(after_len)) + after_len


def parse_record_batches(data):
    """Split a Fetch records blob into batch headers:
    [{base_offset, last_offset_delta, attributes, codec, count, base_timestamp,
    max_timestamp, magic, crc_ok}].
    A trailing partial batch (allowed in Fetch responses) is ignored."""
    out = []
    pos = 0
    while pos + 12 <= len(data):
        base_offset, blen = struct.unpack_from(">qi", data, pos)
        end = pos + 12 + blen
        if end > len(data):
            break
        magic = data[pos + 16]
        if magic == 2:
            crc, attrs, lod = struct.unpack_from(">Ihi", data, pos + 17)
            count = struct.unpack_from(">i", data, pos + 57)[0]
            base_ts, max_ts = struct.unpack_from(">qq", data, pos + 27)
            out.append({"base_offset": base_offset, "last_offset_delta": lod,
                        "attributes": attrs, "codec": attrs & 7, "count": count,
                        "base_timestamp": base_ts, "max_timestamp": max_ts,
                        "magic": magic, "crc_ok": crc32c(data[pos + 21:end]) == crc})
        else:
            out.append({"base_offset": base_offset, "magic": magic})
        pos = end
    return out


def raw_produce(port, topic, partition, batch, version, acks=-1, transactional_id=None):
    """One Produce (classic versions 3-8) -> (error_code, base_offset, error_message)."""
    body = enc_str(transactional_id) + struct.pack(">hi", acks, 15000)
    body += enc_array([enc_str(topic) + enc_array([struct.pack(">i", partition) + enc_bytes(batch)])])
    c = WireConn(port)
    try:
        r = Reader(c.request(0, version, body))
    finally:
        c.close()
    result = None
    for _ in range(r.i32()):
        t = r.string()
        for _ in range(r.i32()):
            p, err, base = r.i32(), r.i16(), r.i64()
            r.i64()  # log_append_time
            if version >= 5:
                r.i64()  # log_start_offset
            msg = None
            if version >= 8:
                r.array(lambda: (r.i32(), r.string()))
                msg = r.string()
            if t == topic and p == partition:
                result = (err, base, msg)
    r.i32()  # throttle
    assert result is not None, f"Produce response lacks {topic}-{partition}"
    return result


class WireConn:
    """A blocking socket speaking Kafka framing: send(api_key, version, body) and
    recv() -> (correlation_id, payload)."""

    def __init__(self, port, timeout_s=10.0, client_id="samsa-it-raw"):
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=timeout_s)
        self.client_id = client_id
        self.corr = 0

    def close(self):
        self.sock.close()

    def send_raw(self, data):
        self.sock.sendall(data)

    def header(self, api_key, version, corr, flexible=False):
        h = struct.pack(">hhi", api_key, version, corr) + enc_str(self.client_id)
        return h + (b"\x00" if flexible else b"")

    def send(self, api_key, version, body, flexible=False):
        self.corr += 1
        msg = self.header(api_key, version, self.corr, flexible) + body
        self.sock.sendall(struct.pack(">i", len(msg)) + msg)
        return self.corr

    def recv_exact(self, n):
        buf = b""
        while len(buf) < n:
            chunk = self.sock.recv(n - len(buf))
            if not chunk:
                raise ConnectionError(f"closed by broker after {len(buf)}/{n} bytes")
            buf += chunk
        return buf

    def recv(self):
        (size,) = struct.unpack(">i", self.recv_exact(4))
        payload = self.recv_exact(size)
        (corr,) = struct.unpack_from(">i", payload, 0)
        return corr, payload[4:]

    def request(self, api_key, version, body, flexible=False):
        corr = self.send(api_key, version, body, flexible)
        rcorr, payload = self.recv()
        assert rcorr == corr, f"correlation id {rcorr} != {corr}"
        return payload

    def closed_by_peer(self, timeout_s=10.0):
        """True once the broker closes the connection (EOF/RST); False if it
        sends bytes instead; AssertionError if neither happens in timeout_s."""
        self.sock.settimeout(timeout_s)
        try:
            data = self.sock.recv(65536)
        except (ConnectionResetError, BrokenPipeError):
            return True
        except socket.timeout:
            raise AssertionError(f"broker neither answered nor closed within {timeout_s}s")
        return data == b""


class Reader:
    """Cursor over a classic-encoded response body."""

    def __init__(self, buf):
        self.buf, self.pos = buf, 0

    def _un(self, fmt):
        v = struct.unpack_from(fmt, self.buf, self.pos)
        self.pos += struct.calcsize(fmt)
        return v[0]

    def i8(self):
        return self._un(">b")

    def i16(self):
        return self._un(">h")

    def i32(self):
        return self._un(">i")

    def i64(self):
        return self._un(">q")

    def string(self):
        n = self.i16()
        if n < 0:
            return None
        s = self.buf[self.pos:self.pos + n].decode()
        self.pos += n
        return s

    def bytes_(self):
        n = self.i32()
        if n < 0:
            return None
        b = self.buf[self.pos:self.pos + n]
        self.pos += n
        return b

    def array(self, fn):
        n = self.i32()
        return None if n < 0 else [fn() for _ in range(n)]


def raw_api_versions(port):
    """ApiVersions v0 -> {api_key: (min, max)}."""
    c = WireConn(port)
    try:
        r = Reader(c.request(18, 0, b""))
        err = r.i16()
        assert err == 0, f"ApiVersions v0 error {err}"
        return dict((k, (lo, hi)) for k, lo, hi in r.array(lambda: (r.i16(), r.i16(), r.i16())))
    finally:
        c.close()


def raw_fetch_batches(port, topic, partition, offset=0, max_bytes=16 << 20):
    """Fetch v4 one partition from `offset`; returns (error_code, high_watermark,
    [batch header dicts]) so tests can see how the broker stored/serves batches
    (e.g. the compression codec the client used)."""
    body = struct.pack(">iiiib", -1, 0, 0, max_bytes, 0)
    body += enc_array([enc_str(topic) + enc_array([struct.pack(">iqi", partition, offset, max_bytes)])])
    c = WireConn(port)
    try:
        r = Reader(c.request(1, 4, body))
    finally:
        c.close()
    r.i32()  # throttle
    result = None
    for _ in range(r.i32()):
        t = r.string()
        for _ in range(r.i32()):
            p, err, hw, _lso = r.i32(), r.i16(), r.i64(), r.i64()
            r.array(lambda: (r.i64(), r.i64()))
            records = r.bytes_() or b""
            if t == topic and p == partition:
                result = (err, hw, parse_record_batches(records))
    assert result is not None, f"Fetch response lacks {topic}-{partition}"
    return result


def codecs_served(port, topic, partitions):
    """The set of compression codec ids of all batches in the given partitions,
    read with raw Fetch requests up to each partition's high watermark."""
    seen = set()
    for p in partitions:
        offset, hw = 0, None
        for _ in range(10000):
            err, hw, batches = raw_fetch_batches(port, topic, p, offset)
            assert err == 0, f"raw Fetch {topic}-{p}@{offset} error {err}"
            if offset >= hw:
                break
            assert batches, f"raw Fetch {topic}-{p}@{offset} returned no batch below hw {hw}"
            for b in batches:
                assert b.get("magic") == 2, f"{topic}-{p}: batch with magic {b.get('magic')}"
                assert b["crc_ok"], f"{topic}-{p}: served batch at {b['base_offset']} fails CRC"
                seen.add(b["codec"])
                offset = max(offset, b["base_offset"] + b["last_offset_delta"] + 1)
    return seen


CODEC_IDS = {"none": 0, "gzip": 1, "snappy": 2, "lz4": 3, "zstd": 4}
