"""sarama (Go) idempotent producer against samsa-broker.

Builds tests/integration/go/sarama_idempotent (a SyncProducer with
Producer.Idempotent, acks=all, one open request per connection) once per
source version against Debian's golang-github-shopify-sarama-dev (sarama 1.22,
GOPATH mode, offline), runs it against a fresh broker and checks with a
confluent-kafka consumer that the log holds exactly the messages sent, in
order, each once. The second case kills the broker with SIGKILL mid-run and
starts it again: sarama retries what was unanswered with the same producer id
and sequence, so every acknowledged message must be in the log exactly once.

Go and sarama come from scripts/deps.sh (golang-go,
golang-github-shopify-sarama-dev); if they are missing the tests fail, they
do not skip."""
import fcntl
import hashlib
import os
import subprocess
import tempfile
import threading

import pytest

from conftest import REPO, confluent_consume_partitions, confluent_create_topic, unique_topic

GO_SRC = os.path.join(REPO, "tests", "integration", "go", "sarama_idempotent")
GOPATH_DEBIAN = "/usr/share/gocode"
SARAMA_SRC = os.path.join(GOPATH_DEBIAN, "src", "github.com", "Shopify", "sarama")
# Binaries are cached by a hash of the program's source, so an edited program is
# rebuilt and parallel pytest workers share one build (under a file lock).
CACHE_DIR = os.path.join(tempfile.gettempdir(), "samsa-it-go")


def _go_env(gopath_tmp):
    env = dict(os.environ)
    env.update({
        # Debian ships Go libraries as source under /usr/share/gocode: GOPATH
        # mode, no module proxy, nothing fetched.
        "GO111MODULE": "off",
        "GOPATH": f"{GOPATH_DEBIAN}:{gopath_tmp}",
        "GOCACHE": os.path.join(CACHE_DIR, "gocache"),
        "GOPROXY": "off",
        "GOFLAGS": "",
    })
    return env


@pytest.fixture(scope="module")
def sarama_bin():
    """Path of the built sarama_idempotent program (built at most once per source)."""
    go = "/usr/bin/go"
    assert os.access(go, os.X_OK), (
        "Go is not installed (/usr/bin/go): run scripts/deps.sh (Debian package golang-go)")
    assert os.path.isdir(SARAMA_SRC), (
        f"sarama sources missing ({SARAMA_SRC}): run scripts/deps.sh"
        " (Debian package golang-github-shopify-sarama-dev)")
    h = hashlib.sha256()
    for name in sorted(os.listdir(GO_SRC)):
        if name.endswith(".go"):
            with open(os.path.join(GO_SRC, name), "rb") as f:
                h.update(name.encode() + b"\0" + f.read())
    os.makedirs(CACHE_DIR, exist_ok=True)
    out = os.path.join(CACHE_DIR, f"sarama_idempotent-{h.hexdigest()[:16]}")
    with open(os.path.join(CACHE_DIR, "build.lock"), "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not os.access(out, os.X_OK):
            with tempfile.TemporaryDirectory(prefix="gopath-", dir=CACHE_DIR) as gopath_tmp:
                tmp_out = out + ".tmp"
                r = subprocess.run([go, "build", "-o", tmp_out, "."], cwd=GO_SRC,
                                   env=_go_env(gopath_tmp), capture_output=True, text=True,
                                   timeout=240)
                assert r.returncode == 0, f"go build failed ({r.returncode}):\n{r.stderr}"
                os.replace(tmp_out, out)
    return out


def run_sarama(sarama_bin, broker, topic, n, kill_after=None, timeout_s=90, **opts):
    """Run the program to its end; with kill_after, SIGKILL and restart the broker
    once that many messages were acknowledged. Returns (exit status, acks
    [(partition, offset, value)], stderr, acks seen when the broker was killed)."""
    args = [sarama_bin, "-brokers", broker.bootstrap, "-topic", topic, "-n", str(n)]
    for k, v in opts.items():
        args += [f"-{k}", str(v)]
    proc = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    err_box = []
    err_reader = threading.Thread(target=lambda: err_box.append(proc.stderr.read()), daemon=True)
    err_reader.start()
    # a bounded run even if the program hangs: the watchdog kills it
    timed_out = []
    watchdog = threading.Timer(timeout_s, lambda: (timed_out.append(1), proc.kill()))
    watchdog.start()
    lines, killed_at = [], None
    try:
        for line in proc.stdout:
            lines.append(line)
            if kill_after is not None and killed_at is None and len(lines) >= kill_after:
                broker.kill9()
                killed_at = len(lines)
                broker.start()
        rc = proc.wait(timeout=30)
    finally:
        watchdog.cancel()
        proc.kill()
        err_reader.join(10)
    err = "".join(err_box)
    assert not timed_out, f"sarama_idempotent ran over {timeout_s} s:\n{err}"
    return rc, parse_acks(lines), err, killed_at


def parse_acks(lines):
    """'ack <partition> <offset> <value>' lines -> [(partition, offset, value)]."""
    acks = []
    for line in lines:
        kind, p, o, v = line.split()
        assert kind == "ack", line
        acks.append((int(p), int(o), v))
    return acks


def read_log(broker, topic, partitions):
    """Everything in the topic: {partition: [(offset, value)]}."""
    from confluent_kafka import Consumer, TopicPartition
    c = Consumer({"bootstrap.servers": broker.bootstrap, "group.id": unique_topic("g")})
    try:
        ends = [c.get_watermark_offsets(TopicPartition(topic, p), timeout=10)[1]
                for p in range(partitions)]
    finally:
        c.close()
    got = confluent_consume_partitions(broker.bootstrap, topic, range(partitions), sum(ends))
    return {p: [(m.offset(), m.value().decode()) for m in ms] for p, ms in got.items()}


def check_log(log, acks, partitions, prefix, batch):
    """What must hold whether or not the run finished: message i goes to
    partition i % partitions, each partition holds a gap-free prefix of its
    messages in order at offsets 0.., no value twice, every acknowledged
    message where sarama was told, and beyond those at most the one group
    that was in flight when the program stopped."""
    for p in range(partitions):
        have = [v for _, v in log[p]]
        dups = sorted({v for v in have if have.count(v) > 1})
        assert not dups, f"partition {p}: duplicates {dups[:10]}"
        want = [f"{prefix}-{i}" for i in range(p, p + partitions * len(have), partitions)]
        assert have == want, f"partition {p}: not the messages sent, in order"
        assert [o for o, _ in log[p]] == list(range(len(have))), f"partition {p}: offsets"
    for p, o, v in acks:
        assert o < len(log[p]) and log[p][o][1] == v, (
            f"acknowledged {v} at {p}@{o} but the log has"
            f" {log[p][o][1] if o < len(log[p]) else 'nothing'} there")
    extra = sum(len(x) for x in log.values()) - len(acks)
    assert 0 <= extra <= batch, f"{extra} messages in the log beyond the acknowledged ones"


def finish(rc, acks, err, n):
    """The run must have ended with all n acknowledged. (sarama 1.22 leaves
    every batch's max timestamp at -1; the broker puts the real one back, or
    the producer's state would expire at once: UNKNOWN_PRODUCER_ID.)"""
    assert rc == 0, f"sarama_idempotent exited {rc} after {len(acks)} of {n} acks:\n{err}"
    assert len(acks) == n, f"{len(acks)} acknowledgements for {n} messages"


def test_sarama_idempotent_producer(broker, sarama_bin):
    topic = unique_topic("sarama")
    partitions, n, batch = 3, 600, 7
    confluent_create_topic(broker.bootstrap, topic, partitions)
    # paced to last ~2 s: long enough for the broker's periodic maintenance to
    # run while the producer is active
    rc, acks, err, _ = run_sarama(sarama_bin, broker, topic, n, batch=batch,
                                  partitions=partitions, prefix="s", interval="20ms")
    check_log(read_log(broker, topic, partitions), acks, partitions, "s", batch)
    finish(rc, acks, err, n)
    assert sorted(v for _, _, v in acks) == sorted(f"s-{i}" for i in range(n))


def test_sarama_idempotent_producer_broker_killed_mid_run(broker, sarama_bin):
    topic = unique_topic("sarama-k9")
    partitions, n, batch = 2, 1500, 3
    confluent_create_topic(broker.bootstrap, topic, partitions)
    # SIGKILL soon after the start, while sarama sends back to back (so a
    # request is likely in flight, perhaps appended but unanswered). sarama
    # retries it with the same producer id and sequences until the broker is
    # back (60 x 250 ms outlasts a restart), and the broker, its producer state
    # rebuilt from the log, must store it once.
    rc, acks, err, killed_at = run_sarama(sarama_bin, broker, topic, n, kill_after=90,
                                          batch=batch, partitions=partitions, prefix="k",
                                          retries=60, backoff="250ms")
    check_log(read_log(broker, topic, partitions), acks, partitions, "k", batch)
    finish(rc, acks, err, n)
    assert killed_at is not None, f"the run ended before the kill ({len(acks)} acks)"
