"""bin/samsa (the command-line tool) against a live samsa-broker, and offline.

Every command is run as a subprocess, the way an operator runs it, and judged by
its exit status, its stdout (mostly the --format json form, parsed) and the
one-line reason on stderr when it fails.  Covered:
  - help at every level, bad arguments (exit 2), unreachable brokers (exit 1,
    fast, one line), unknown topics and groups (exit 1, never a crash);
  - topic create/list/describe/alter/delete, including configs and errors;
  - produce (keys, headers, partition, codecs) and consume (formats, offsets
    beginning/end/N/-N/@time, counts, JSON, several topics);
  - groups: consume -g commits, describe (lag), list, reset-offsets (dry run
    and every mode), delete;
  - config get/set/delete for topics and brokers;
  - cluster info against meta.properties;
  - storage format/info/random-uuid (offline);
  - dump-log on segments written here by hand (valid, corrupt CRC, torn tail,
    wrong index) and on the broker's own files;
  - perf produce/consume/e2e (idempotent, transactional, both isolation levels) and
    perf mock-cluster;
  - the bash completion script.
Waits are bounded (subprocess timeouts), never bare sleeps.
"""

import json
import os
import select
import signal
import socket
import struct
import subprocess
import tempfile
import time

import pytest

from conftest import REPO, unique_topic, wait_until, free_ports

SAMSA = os.environ.get("SAMSA_CLI", os.path.join(REPO, "bin", "samsa"))
COMPLETION = os.path.join(REPO, "scripts", "samsa-completion.bash")
RUN_TIMEOUT_S = 90


def run(*args, bootstrap=None, stdin=None, timeout=RUN_TIMEOUT_S, env=None):
    """Run bin/samsa; returns CompletedProcess with text stdout/stderr."""
    cmd = [SAMSA]
    if bootstrap:
        cmd += ["-b", bootstrap]
    cmd += [str(a) for a in args]
    e = dict(os.environ)
    e.pop("SAMSA_BROKERS", None)
    if env:
        e.update(env)
    return subprocess.run(cmd, input=stdin, capture_output=True, text=True, timeout=timeout,
                          env=e)


def ok(*args, **kw):
    r = run(*args, **kw)
    assert r.returncode == 0, (f"samsa {' '.join(map(str, args))} exited {r.returncode}\n"
                               f"stdout: {r.stdout[-2000:]}\nstderr: {r.stderr[-2000:]}")
    return r


def js(*args, **kw):
    """Run with --format json and parse stdout."""
    return json.loads(ok("--format", "json", *args, **kw).stdout)


def fails(*args, code=1, **kw):
    """The command must fail with `code` and a one-line 'samsa: error:' reason."""
    r = run(*args, **kw)
    assert r.returncode == code, (f"samsa {' '.join(map(str, args))}: expected exit {code}, "
                                  f"got {r.returncode}\nstdout: {r.stdout}\nstderr: {r.stderr}")
    errs = [l for l in r.stderr.splitlines() if l.startswith("samsa: error:")]
    assert errs, f"no 'samsa: error:' line in stderr: {r.stderr!r}"
    assert "Segmentation" not in r.stderr and "Assertion" not in r.stderr
    return r


def closed_port():
    """A local port nobody listens on."""
    return free_ports(1)[0]


# ------------------------------------------------------------------ offline: help & usage

NOUN_VERBS = {
    "topic": ["create", "list", "describe", "alter", "delete"],
    "group": ["list", "describe", "reset-offsets", "delete"],
    "config": ["get", "set", "delete"],
    "cluster": ["info"],
    "storage": ["format", "info", "random-uuid"],
    "perf": ["produce", "consume", "e2e", "mock-cluster"],
}


def test_help_at_every_level():
    assert "usage: samsa" in ok("--help").stdout
    for noun, verbs in NOUN_VERBS.items():
        assert "usage:" in ok(noun, "--help").stdout, noun
        for v in verbs:
            assert "usage:" in ok(noun, v, "--help").stdout, (noun, v)
    for noun in ("produce", "consume", "dump-log"):
        assert "usage:" in ok(noun, "--help").stdout, noun
    assert "samsa" in ok("version").stdout


@pytest.mark.parametrize("args", [
    [],
    ["frobnicate"],
    ["topic"],
    ["topic", "explode"],
    ["topic", "create"],
    ["topic", "create", "t", "-p", "x"],
    ["topic", "create", "t", "-p", "0"],
    ["topic", "create", "t", "-c", "novalue"],
    ["topic", "create", "t", "--bogus"],
    ["topic", "alter", "t"],
    ["topic", "describe"],
    ["--format", "xml", "topic", "list"],
    ["--timeout", "soon", "topic", "list"],
    ["-X", "noequals", "topic", "list"],
    ["produce"],
    ["produce", "t", "--acks", "7"],
    ["produce", "t", "-z", "brotli"],
    ["produce", "t", "-H", "noequals"],
    ["consume"],
    ["consume", "t", "-o", "sometime"],
    ["consume", "t", "-n", "-3"],
    ["consume", "t", "-g", "g", "-p", "0"],
    ["group", "describe"],
    ["group", "reset-offsets", "g", "--topic", "t"],
    ["group", "reset-offsets", "g", "--to-earliest"],
    ["group", "reset-offsets", "g", "--topic", "t", "--to-earliest", "--to-latest"],
    ["group", "reset-offsets", "g", "--topic", "t", "--to-datetime", "yesterday"],
    ["config", "get", "queue", "x"],
    ["config", "get", "broker", "one"],
    ["config", "set", "topic", "t"],
    ["config", "set", "topic", "t", "noequals"],
    ["config", "delete", "topic", "t", "k=v"],
    ["storage", "format"],
    ["dump-log"],
    ["perf", "produce"],
    ["perf", "produce", "t", "--size", "big"],
])
def test_bad_arguments_exit_2(args):
    fails(*args, code=2)


@pytest.mark.parametrize("args", [
    ["topic", "list"],
    ["topic", "describe", "x"],
    ["topic", "create", "x"],
    ["topic", "delete", "x"],
    ["cluster", "info"],
    ["group", "list"],
    ["group", "describe", "g"],
    ["config", "get", "topic", "x"],
    ["config", "set", "topic", "x", "retention.ms=1"],
    ["consume", "x", "-e"],
    ["perf", "consume", "x"],
])
def test_unreachable_broker_fails_fast(args):
    t0 = time.monotonic()
    r = fails("-b", f"127.0.0.1:{closed_port()}", "--timeout", "5s", *args)
    assert "cannot" in r.stderr, r.stderr
    assert time.monotonic() - t0 < 20, "should give up quickly"


def test_produce_unreachable_broker():
    r = fails("-b", f"127.0.0.1:{closed_port()}", "--timeout", "3s", "produce", "x",
              stdin="a\n")
    assert "cannot reach" in r.stderr


def test_brokers_from_environment():
    port = closed_port()
    r = run("topic", "list", "--timeout", "3s", env={"SAMSA_BROKERS": f"127.0.0.1:{port}"})
    assert r.returncode == 1 and f"127.0.0.1:{port}" in r.stderr


# ------------------------------------------------------------------ topics

def test_topic_lifecycle(broker):
    b = broker.bootstrap
    t = unique_topic("cli")
    ok("topic", "create", t, "-p", "3", "-r", "1", "-c", "retention.ms=3600000",
       "-c", "cleanup.policy=delete", bootstrap=b)
    names = [x["name"] for x in js("topic", "list", bootstrap=b)]
    assert t in names
    assert t in ok("topic", "list", bootstrap=b).stdout

    d = js("topic", "describe", t, bootstrap=b)
    assert len(d) == 1 and d[0]["name"] == t
    parts = d[0]["partitions"]
    assert [p["partition"] for p in parts] == [0, 1, 2]
    for p in parts:
        assert p["leader"] == broker.node_id
        assert p["replicas"] == [broker.node_id] and p["isr"] == [broker.node_id]
        assert p["start_offset"] == 0 and p["end_offset"] == 0
    assert d[0]["configs"].get("retention.ms") == "3600000"
    text = ok("topic", "describe", t, bootstrap=b).stdout
    assert "retention.ms=3600000" in text and "PARTITION" in text

    # already exists: error, unless --if-not-exists
    r = fails("topic", "create", t, bootstrap=b)
    assert t in r.stderr
    ok("topic", "create", t, "--if-not-exists", bootstrap=b)
    # bad config value / unknown config are the broker's to refuse
    fails("topic", "create", unique_topic("bad"), "-c", "retention.ms=notanumber", bootstrap=b)

    ok("topic", "alter", t, "-p", "5", bootstrap=b)
    d = js("topic", "describe", t, bootstrap=b)
    assert len(d[0]["partitions"]) == 5
    fails("topic", "alter", t, "-p", "2", bootstrap=b)  # cannot shrink

    ok("topic", "delete", t, bootstrap=b)
    wait_until(lambda: t not in [x["name"] for x in js("topic", "list", bootstrap=b)],
               what="topic gone from list")
    fails("topic", "delete", t, bootstrap=b)
    ok("topic", "delete", t, "--if-exists", bootstrap=b)
    r = fails("topic", "describe", t, bootstrap=b)
    assert "does not exist" in r.stderr
    fails("topic", "alter", t, "-p", "9", bootstrap=b)
    # broker-side refusals are relayed per topic
    r = fails("topic", "create", unique_topic("rf"), "-r", "3", bootstrap=b)
    assert "replication factor" in r.stderr or "replicate" in r.stderr
    r = fails("topic", "create", "bad name!", bootstrap=b)
    assert "illegal" in r.stderr or "invalid" in r.stderr.lower()
    r = fails("topic", "create", unique_topic("cfg"), "-c", "no.such.config=1", bootstrap=b)
    assert "no.such.config" in r.stderr
    # internal topics are protected, as kafka-topics does
    r = fails("topic", "delete", "__consumer_offsets", bootstrap=b)
    assert "internal" in r.stderr


def test_topic_list_hides_internal_topics(broker):
    b = broker.bootstrap
    t = unique_topic("vis")
    ok("topic", "create", t, "-p", "1", bootstrap=b)
    shown = [x["name"] for x in js("topic", "list", bootstrap=b)]
    assert t in shown and not any(n.startswith("__") for n in shown)
    every = [x["name"] for x in js("topic", "list", "--all", bootstrap=b)]
    assert set(shown) <= set(every)


def test_describe_several_topics_one_missing(broker):
    b = broker.bootstrap
    t = unique_topic("d")
    ok("topic", "create", t, "-p", "2", bootstrap=b)
    r = run("--format", "json", "topic", "describe", t, "missing-" + t, bootstrap=b)
    assert r.returncode == 1 and "does not exist" in r.stderr
    d = json.loads(r.stdout)
    assert [x["name"] for x in d] == [t]


# ------------------------------------------------------------------ produce & consume

def consume_json(b, *args):
    out = ok("--format", "json", "consume", *args, bootstrap=b).stdout
    return [json.loads(l) for l in out.splitlines() if l.strip()]


def test_produce_consume_keys_headers_format(broker):
    b = broker.bootstrap
    t = unique_topic("pc")
    ok("topic", "create", t, "-p", "1", bootstrap=b)
    r = ok("produce", t, "-k", ":", "-H", "src=cli", "-H", "n=1", bootstrap=b,
           stdin="k1:hello\nk2:wörld with spaces\nnokey\n:emptykey\n")
    assert "produced 4 messages" in r.stderr
    msgs = consume_json(b, t, "-e")
    assert [m["offset"] for m in msgs] == [0, 1, 2, 3]
    assert [(m["key"], m["value"]) for m in msgs] == [
        ("k1", "hello"), ("k2", "wörld with spaces"), (None, "nokey"), ("", "emptykey")]
    for m in msgs:
        assert m["topic"] == t and m["partition"] == 0
        assert m["headers"] == [{"key": "src", "value": "cli"}, {"key": "n", "value": "1"}]
        assert m["timestamp"] > 1_000_000_000_000
    out = ok("consume", t, "-e", "-f", r"%t|%p|%o|%k|%K|%v|%S|%h|%%\n", bootstrap=b).stdout
    lines = out.splitlines()
    assert lines[0] == f"{t}|0|0|k1|2|hello|5|src=cli,n=1|%"
    assert lines[2] == f"{t}|0|2||-1|nokey|5|src=cli,n=1|%"
    # default: the value per line
    assert ok("consume", t, "-e", bootstrap=b).stdout.splitlines() == [
        "hello", "wörld with spaces", "nokey", "emptykey"]


def test_consume_offsets_and_count(broker):
    b = broker.bootstrap
    t = unique_topic("off")
    ok("topic", "create", t, "-p", "1", bootstrap=b)
    ok("produce", t, bootstrap=b, stdin="".join(f"m{i}\n" for i in range(10)))
    vals = lambda *a: ok("consume", t, *a, bootstrap=b).stdout.splitlines()
    assert vals("-e") == [f"m{i}" for i in range(10)]
    assert vals("-e", "-o", "beginning") == [f"m{i}" for i in range(10)]
    assert vals("-e", "-o", "7") == ["m7", "m8", "m9"]
    assert vals("-e", "-o", "-2") == ["m8", "m9"]
    assert vals("-e", "-o", "end") == []
    assert vals("-n", "3") == ["m0", "m1", "m2"]
    assert vals("-n", "2", "-o", "5") == ["m5", "m6"]
    # @timestamp: everything is newer than an hour ago, nothing is from the future
    hour_ago = int(time.time() * 1000) - 3600_000
    assert len(vals("-e", "-o", f"@{hour_ago}")) == 10
    assert vals("-e", "-o", "@2999-01-01T00:00:00Z") == []
    assert len(vals("-e", "-o", "@2000-01-01")) == 10


def test_produce_to_partition_and_codecs(broker):
    b = broker.bootstrap
    t = unique_topic("part")
    ok("topic", "create", t, "-p", "3", bootstrap=b)
    for p, codec in ((0, "none"), (1, "gzip"), (2, "zstd"), (2, "lz4"), (1, "snappy")):
        ok("produce", t, "-p", p, "-z", codec, "--acks", "1", bootstrap=b,
           stdin="".join(f"{codec}-{i} {'x' * 200}\n" for i in range(20)))
    msgs = consume_json(b, t, "-e")
    by_part = {}
    for m in msgs:
        by_part.setdefault(m["partition"], []).append(m["value"].split()[0])
    assert by_part[0] == [f"none-{i}" for i in range(20)]
    assert by_part[1] == [f"gzip-{i}" for i in range(20)] + [f"snappy-{i}" for i in range(20)]
    assert by_part[2] == [f"zstd-{i}" for i in range(20)] + [f"lz4-{i}" for i in range(20)]
    only1 = consume_json(b, t, "-e", "-p", "1")
    assert {m["partition"] for m in only1} == {1} and len(only1) == 40
    d = js("topic", "describe", t, bootstrap=b)[0]
    assert [p["end_offset"] for p in d["partitions"]] == [20, 40, 40]
    fails("produce", t, "-p", "3", bootstrap=b, stdin="x\n")
    fails("consume", t, "-p", "7", "-e", bootstrap=b)


def test_consume_several_topics(broker):
    b = broker.bootstrap
    t1, t2 = unique_topic("a"), unique_topic("b")
    for t in (t1, t2):
        ok("topic", "create", t, "-p", "2", bootstrap=b)
        ok("produce", t, bootstrap=b, stdin=f"{t}-1\n{t}-2\n")
    msgs = consume_json(b, t1, t2, "-e")
    assert sorted(m["value"] for m in msgs) == sorted([f"{t1}-1", f"{t1}-2", f"{t2}-1", f"{t2}-2"])


def test_produce_consume_unknown_topic(broker):
    b = broker.bootstrap
    t = unique_topic("nope")
    r = fails("produce", t, bootstrap=b, stdin="x\n")
    assert "does not exist" in r.stderr
    r = fails("consume", t, "-e", bootstrap=b)
    assert "does not exist" in r.stderr
    assert t not in [x["name"] for x in js("topic", "list", bootstrap=b)]


# ------------------------------------------------------------------ groups

def group_offsets(b, g):
    d = js("group", "describe", g, bootstrap=b)[0]
    return {(p["topic"], p["partition"]): p for p in d["partitions"]}, d


def test_group_commit_describe_reset_delete(broker):
    b = broker.bootstrap
    t, g = unique_topic("g"), unique_topic("grp")
    ok("topic", "create", t, "-p", "2", bootstrap=b)
    ok("produce", t, "-p", "0", bootstrap=b, stdin="".join(f"a{i}\n" for i in range(6)))
    ok("produce", t, "-p", "1", bootstrap=b, stdin="".join(f"b{i}\n" for i in range(4)))

    first = ok("consume", t, "-g", g, "-e", bootstrap=b).stdout.splitlines()
    assert sorted(first) == sorted([f"a{i}" for i in range(6)] + [f"b{i}" for i in range(4)])
    offs, d = group_offsets(b, g)
    assert d["state"] in ("Empty", "EMPTY") and d["members"] == []
    assert offs[(t, 0)]["committed_offset"] == 6 and offs[(t, 0)]["lag"] == 0
    assert offs[(t, 1)]["committed_offset"] == 4 and offs[(t, 1)]["end_offset"] == 4
    assert g in [x["group"] for x in js("group", "list", bootstrap=b)]
    assert g in ok("group", "list", bootstrap=b).stdout
    text = ok("group", "describe", g, bootstrap=b).stdout
    assert "LAG" in text and t in text

    # committed offsets are used: nothing new to read
    assert ok("consume", t, "-g", g, "-e", bootstrap=b).stdout == ""
    ok("produce", t, "-p", "1", bootstrap=b, stdin="b4\n")
    offs, _ = group_offsets(b, g)
    assert offs[(t, 1)]["lag"] == 1
    assert ok("consume", t, "-g", g, "-e", bootstrap=b).stdout.splitlines() == ["b4"]

    # dry run changes nothing
    plan = js("group", "reset-offsets", g, "--topic", t, "--to-earliest", bootstrap=b)
    assert plan["executed"] is False
    assert {p["partition"]: p["new_offset"] for p in plan["partitions"]} == {0: 0, 1: 0}
    assert group_offsets(b, g)[0][(t, 0)]["committed_offset"] == 6
    assert "dry run" in ok("group", "reset-offsets", g, "--topic", t, "--to-latest",
                           bootstrap=b).stdout

    def reset(*mode):
        js("group", "reset-offsets", g, *mode, "--execute", bootstrap=b)
        o, _ = group_offsets(b, g)
        return o[(t, 0)]["committed_offset"], o[(t, 1)]["committed_offset"]

    assert reset("--topic", t, "--to-earliest") == (0, 0)
    assert reset("--topic", f"{t}:1", "--to-latest") == (0, 5)
    assert reset("--topic", t, "--to-offset", "3") == (3, 3)
    assert reset("--topic", t, "--to-offset", "99") == (6, 5)      # clamped to the end
    assert reset("--all-topics", "--shift-by", "-2") == (4, 3)
    assert reset("--topic", t, "--shift-by", "-100") == (0, 0)     # clamped to the start
    assert reset("--topic", t, "--to-datetime", "2999-01-01T00:00:00Z") == (6, 5)
    assert reset("--topic", t, "--to-datetime", "2000-01-01T00:00:00Z") == (0, 0)
    assert reset("--topic", t, "--by-duration", "1h") == (0, 0)
    assert reset("--topic", t, "--by-duration", "0s") == (6, 5)
    # after a reset to offset 4 on partition 0, the group reads from there
    reset("--topic", f"{t}:0", "--to-offset", "4")
    assert sorted(ok("consume", t, "-g", g, "-e", bootstrap=b).stdout.splitlines()) == ["a4", "a5"]

    fails("group", "reset-offsets", g, "--topic", "missing-" + t, "--to-earliest", bootstrap=b)
    fails("group", "reset-offsets", g, "--topic", f"{t}:9", "--to-earliest", bootstrap=b)

    r = ok("group", "delete", g, bootstrap=b)
    assert g in r.stdout
    r = fails("group", "describe", g, bootstrap=b)
    assert "does not exist" in r.stderr or g in r.stderr
    fails("group", "delete", g, bootstrap=b)


def test_group_reset_refused_while_active(broker):
    b = broker.bootstrap
    t, g = unique_topic("act"), unique_topic("grp")
    ok("topic", "create", t, "-p", "1", bootstrap=b)
    ok("produce", t, bootstrap=b, stdin="x\n")
    cmd = [SAMSA, "-b", b, "consume", t, "-g", g]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        assert read_line(proc, 60) == "x"   # joined and consuming
        wait_until(lambda: js("group", "describe", g, bootstrap=b)[0]["members"],
                   what="member visible")
        r = fails("group", "reset-offsets", g, "--topic", t, "--to-earliest", "--execute",
                  bootstrap=b)
        assert "stop its consumers" in r.stderr
        d = js("group", "describe", g, bootstrap=b)[0]
        assert d["state"].lower() == "stable" and len(d["members"]) == 1
        assert d["partitions"][0]["member_id"] == d["members"][0]["member_id"]
        assert d["members"][0]["assignment"] == [{"topic": t, "partition": 0}]
        text = ok("group", "describe", g, bootstrap=b).stdout
        assert "ASSIGNMENT" in text and f"{t}-0" in text
        fails("group", "delete", g, bootstrap=b)   # non-empty group
    finally:
        proc.send_signal(signal.SIGINT)
        try:
            rc = proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            proc.kill()
            rc = proc.wait()
        assert rc == 0, proc.stderr.read()
    d = js("group", "describe", g, bootstrap=b)[0]
    assert d["partitions"][0]["committed_offset"] == 1  # committed on SIGINT


def read_line(proc, timeout_s):
    """One line of proc's (binary) stdout, waiting at most timeout_s."""
    buf = b""
    deadline = time.monotonic() + timeout_s
    fd = proc.stdout.fileno()
    while b"\n" not in buf:
        left = deadline - time.monotonic()
        assert left > 0, f"no line from {proc.args} within {timeout_s}s (got {buf!r})"
        r, _, _ = select.select([fd], [], [], left)
        if r:
            chunk = os.read(fd, 4096)
            assert chunk, f"{proc.args} closed stdout (exit {proc.poll()})"
            buf += chunk
    return buf.split(b"\n", 1)[0].decode()


def test_group_consumer_exits_when_broker_dies(broker):
    """Ctrl-C must end `consume -g` even when the broker is gone (no hang in
    commit / leave group); a second Ctrl-C exits at once."""
    b = broker.bootstrap
    t, g = unique_topic("die"), unique_topic("grp")
    ok("topic", "create", t, "-p", "1", bootstrap=b)
    ok("produce", t, bootstrap=b, stdin="x\n")
    proc = subprocess.Popen([SAMSA, "-b", b, "--timeout", "3s", "consume", t, "-g", g],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        assert read_line(proc, 60) == "x"
        broker.kill9()
        proc.send_signal(signal.SIGINT)
        try:
            rc = proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.send_signal(signal.SIGINT)
            rc = proc.wait(timeout=10)
        assert rc in (1, 130), rc   # offsets not committed: a failure, not a crash
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    broker.start()


def test_group_unknown(broker):
    b = broker.bootstrap
    r = fails("group", "describe", unique_topic("nogroup"), bootstrap=b)
    assert "does not exist" in r.stderr


# ------------------------------------------------------------------ configs

def config_map(b, kind, name):
    return {c["name"]: c for c in js("config", "get", kind, name, bootstrap=b)}


def supports_alter_configs(b):
    keys = {a["key"] for a in js("cluster", "info", bootstrap=b)["api_versions"]}
    return 33 in keys or 44 in keys


def test_config_get(broker):
    b = broker.bootstrap
    t = unique_topic("cfg")
    ok("topic", "create", t, "-p", "1", "-c", "retention.ms=123456", bootstrap=b)
    cfg = config_map(b, "topic", t)
    assert cfg["retention.ms"]["value"] == "123456"
    assert cfg["retention.ms"]["source"] == "DYNAMIC_TOPIC_CONFIG"
    assert cfg["cleanup.policy"]["default"] is True
    only = js("config", "get", "topic", t, "retention.ms", "segment.bytes", bootstrap=b)
    assert sorted(c["name"] for c in only) == ["retention.ms", "segment.bytes"]
    changed = js("config", "get", "topic", t, "--changed", bootstrap=b)
    assert "retention.ms" in [c["name"] for c in changed]
    assert all(not c["default"] for c in changed)
    assert "retention.ms" in ok("config", "get", "topic", t, bootstrap=b).stdout
    bcfg = config_map(b, "broker", str(broker.node_id))
    assert bcfg["num.partitions"]["value"] == "3"
    fails("config", "get", "topic", "missing-" + t, bootstrap=b)
    r = fails("config", "get", "topic", t, "no.such.config", bootstrap=b)
    assert "no.such.config" in r.stderr


def test_config_set_delete(broker):
    b = broker.bootstrap
    if not supports_alter_configs(b):
        pytest.skip("broker lacks AlterConfigs and IncrementalAlterConfigs")
    t = unique_topic("cfgset")
    ok("topic", "create", t, "-p", "1", bootstrap=b)
    ok("config", "set", "topic", t, "retention.ms=7200000", "max.message.bytes=2000000",
       bootstrap=b)
    cfg = config_map(b, "topic", t)
    assert cfg["retention.ms"]["value"] == "7200000"
    assert cfg["max.message.bytes"]["value"] == "2000000"
    ok("config", "delete", "topic", t, "retention.ms", bootstrap=b)
    cfg = config_map(b, "topic", t)
    assert cfg["retention.ms"]["default"] is True
    assert cfg["max.message.bytes"]["value"] == "2000000"   # untouched
    fails("config", "set", "topic", t, "retention.ms=banana", bootstrap=b)
    fails("config", "set", "topic", "missing-" + t, "retention.ms=1", bootstrap=b)
    bid = str(broker.node_id)
    r = run("config", "set", "broker", bid, "log.retention.ms=86400000", bootstrap=b)
    if r.returncode == 0:
        assert config_map(b, "broker", bid)["log.retention.ms"]["value"] == "86400000"
        ok("config", "delete", "broker", bid, "log.retention.ms", bootstrap=b)
    else:
        # a broker may refuse dynamic broker configs: the reason is relayed on one line
        assert r.returncode == 1 and r.stderr.startswith(f"samsa: error: broker {bid}: ")
    r = fails("config", "set", "broker", "4242", "log.retention.ms=1", bootstrap=b)
    assert "4242" in r.stderr


# ------------------------------------------------------------------ cluster

def test_cluster_info(broker):
    b = broker.bootstrap
    info = js("cluster", "info", bootstrap=b)
    with open(os.path.join(broker.data_dir, "meta.properties")) as f:
        props = dict(l.strip().split("=", 1) for l in f if "=" in l and not l.startswith("#"))
    assert info["cluster_id"] == props["cluster.id"]
    assert info["controller"] == broker.node_id
    assert [(x["id"], x["host"], x["port"]) for x in info["brokers"]] == [
        (broker.node_id, "127.0.0.1", broker.port)]
    keys = {a["key"]: a for a in info["api_versions"]}
    assert keys[18]["name"] == "ApiVersions" and keys[18]["min"] == 0
    assert keys[0]["max"] >= 3
    text = ok("cluster", "info", bootstrap=b).stdout
    assert props["cluster.id"] in text and "ApiVersions" in text


# ------------------------------------------------------------------ storage (offline)

def write_props(path, **kv):
    with open(path, "w") as f:
        for k, v in kv.items():
            f.write(f"{k.replace('_', '.')}={v}\n")


def read_props(path):
    with open(path) as f:
        return dict(l.strip().split("=", 1) for l in f if "=" in l and not l.startswith("#"))


def test_storage_format_info_uuid(tmp_path):
    d1, d2, md = tmp_path / "d1", tmp_path / "d2", tmp_path / "meta"
    cfg = tmp_path / "server.properties"
    write_props(cfg, node_id=7, process_roles="broker,controller",
                listeners="PLAINTEXT://127.0.0.1:19999,CONTROLLER://127.0.0.1:19998",
                controller_listener_names="CONTROLLER",
                controller_quorum_voters="7@127.0.0.1:19998",
                log_dirs=f"{d1},{d2}", metadata_log_dir=str(md))
    cid = ok("storage", "random-uuid").stdout.strip()
    assert len(cid) == 22 and not cid.startswith("-")
    assert ok("storage", "random-uuid").stdout.strip() != cid
    out = js("storage", "format", "-c", cfg, "--cluster-id", cid)
    assert out["cluster_id"] == cid and out["node_id"] == 7
    assert sorted(x["path"] for x in out["directories"]) == sorted(map(str, (d1, d2, md)))
    dir_ids = set()
    for d in (d1, d2, md):
        p = read_props(d / "meta.properties")
        assert p["cluster.id"] == cid and p["node.id"] == "7" and p["version"] == "1"
        dir_ids.add(p["directory.id"])
    assert len(dir_ids) == 3
    # formatting again is refused, and changes nothing
    before = (d1 / "meta.properties").read_text()
    r = fails("storage", "format", "-c", cfg, "--cluster-id", ok("storage", "random-uuid").stdout.strip())
    assert "already formatted" in r.stderr
    assert (d1 / "meta.properties").read_text() == before
    ok("storage", "format", "-c", cfg, "--ignore-formatted")
    assert (d1 / "meta.properties").read_text() == before
    info = js("storage", "info", "-c", cfg)
    assert {x["status"] for x in info["directories"]} == {"formatted"}
    assert {x["cluster_id"] for x in info["directories"]} == {cid}
    # --override moves the dirs, like the broker's
    d3 = tmp_path / "d3"
    out = js("storage", "format", "-c", cfg, "--override", f"log.dirs={d3}",
             "--override", f"metadata.log.dir={d3}")
    assert [x["path"] for x in out["directories"]] == [str(d3)]
    assert len(out["cluster_id"]) == 22
    fails("storage", "format", "-c", cfg, "--cluster-id", "not-a-uuid!")
    fails("storage", "format", "-c", tmp_path / "missing.properties")
    bad = tmp_path / "bad.properties"
    write_props(bad, node_id="minus-one", log_dirs=str(d1))
    fails("storage", "format", "-c", bad)


def test_formatted_dir_is_accepted_by_broker(broker_factory, tmp_path):
    """A directory formatted by `samsa storage format` starts a broker with that cluster id."""
    probe = broker_factory()
    cfg_path, data_dir = probe.config_path, probe.data_dir
    probe.stop()
    cid = ok("storage", "random-uuid").stdout.strip()
    fresh = tmp_path / "data"
    out = js("storage", "format", "-c", cfg_path, "--override", f"log.dirs={fresh}",
             "--cluster-id", cid)
    assert out["cluster_id"] == cid
    assert read_props(fresh / "meta.properties")["cluster.id"] == cid
    assert read_props(os.path.join(data_dir, "meta.properties"))["cluster.id"] != cid


# ------------------------------------------------------------------ dump-log (offline)

def _crc32c_table():
    t = []
    for i in range(256):
        c = i
        for _ in range(8):
            c = (c >> 1) ^ 0x82F63B78 if c & 1 else c >> 1
        t.append(c)
    return t


CRC_TABLE = _crc32c_table()


def crc32c(data):
    c = 0xFFFFFFFF
    for byte in data:
        c = CRC_TABLE[(c ^ byte) & 0xFF] ^ (c >> 8)
    return c ^ 0xFFFFFFFF


def varint(v):
    v = (v << 1) ^ (v >> 63)
    out = bytearray()
    while True:
        b = v & 0x7F
        v >>= 7
        if v:
            out.append(b | 0x80)
        else:
            out.append(b)
            return bytes(out)


def batch(base_offset, records, base_ts=1_700_000_000_000, producer_id=-1, base_seq=-1):
    """A magic-2 uncompressed batch; records: [(key|None, value, [(hk, hv)])]."""
    body = bytearray()
    for i, (k, v, hdrs) in enumerate(records):
        r = bytearray(b"\x00")                  # attributes
        r += varint(i)                           # timestamp delta
        r += varint(i)                           # offset delta
        r += varint(-1) if k is None else varint(len(k)) + k
        r += varint(len(v)) + v
        r += varint(len(hdrs))
        for hk, hv in hdrs:
            r += varint(len(hk)) + hk + varint(len(hv)) + hv
        body += varint(len(r)) + r
    n = len(records)
    after_crc = struct.pack(">hiqqqhii", 0, n - 1, base_ts, base_ts + n - 1, producer_id, 0,
                            base_seq, n) + bytes(body)
    crc = crc32c(after_crc)
    rest = struct.pack(">ibI", 0, 2, crc) + after_crc
    return struct.pack(">qi", base_offset, len(rest)) + rest


def write_segment(d, base, batches):
    name = f"{base:020d}"
    data = b"".join(batches)
    (d / f"{name}.log").write_bytes(data)
    return d / f"{name}.log", data


def test_dump_log_crafted_segment(tmp_path):
    b1 = batch(100, [(b"k0", b"hello", [(b"h", b"1")]), (None, b"world", [])])
    b2 = batch(102, [(b"k2", b"third", [])], producer_id=42, base_seq=7)
    log, data = write_segment(tmp_path, 100, [b1, b2])
    out = js("dump-log", log, "--print-data")
    assert len(out) == 1 and out[0]["type"] == "log" and out[0]["problems"] == []
    bs = out[0]["batches"]
    assert [(x["base_offset"], x["last_offset"], x["count"], x["position"]) for x in bs] == [
        (100, 101, 2, 0), (102, 102, 1, len(b1))]
    assert all(x["crc_valid"] for x in bs) and bs[0]["compression"] == "none"
    assert bs[1]["producer_id"] == 42 and bs[1]["base_sequence"] == 7
    recs = bs[0]["records"]
    assert [(r["offset"], r["key"], r["payload"]) for r in recs] == [
        (100, "k0", "hello"), (101, None, "world")]
    assert recs[0]["headers"] == [{"key": "h", "value": "1"}]
    assert recs[1]["timestamp"] == 1_700_000_000_001
    assert bs[1]["records"][0]["sequence"] == 7
    text = ok("dump-log", log, "--print-data").stdout
    assert "baseOffset: 100 lastOffset: 101 count: 2" in text and "crcValid: true" in text
    assert "payload: hello" in text and "key: k0" in text
    # without --print-data / --deep: batches only
    assert "records" not in js("dump-log", log)[0]["batches"][0]

    # offset index (8-byte entries) and time index (12-byte entries)
    (tmp_path / f"{100:020d}.index").write_bytes(struct.pack(">ii", 0, 0) + struct.pack(">ii", 2, len(b1)))
    (tmp_path / f"{100:020d}.timeindex").write_bytes(struct.pack(">qi", 1_700_000_000_001, 1))
    idx = js("dump-log", tmp_path / f"{100:020d}.index", tmp_path / f"{100:020d}.timeindex")
    assert idx[0]["entries"] == [{"offset": 100, "position": 0}, {"offset": 102, "position": len(b1)}]
    assert idx[0]["problems"] == []
    assert idx[1]["entries"] == [{"timestamp": 1_700_000_000_001, "offset": 101}]
    assert idx[1]["problems"] == []
    # a time index going backwards, or naming a timestamp the batch does not have
    (tmp_path / f"{100:020d}.timeindex").write_bytes(struct.pack(">qi", 1_700_000_000_001, 1) +
                                                      struct.pack(">qi", 1_700_000_000_000, 2))
    r = run("--format", "json", "dump-log", tmp_path / f"{100:020d}.timeindex")
    assert r.returncode == 1
    assert "not above the previous" in json.loads(r.stdout)[0]["problems"][0]["message"]
    (tmp_path / f"{100:020d}.timeindex").write_bytes(struct.pack(">qi", 1_700_000_000_005, 1))
    r = run("--format", "json", "dump-log", tmp_path / f"{100:020d}.timeindex")
    assert r.returncode == 1
    assert "max timestamp" in json.loads(r.stdout)[0]["problems"][0]["message"]


def test_dump_log_detects_damage(tmp_path):
    b1 = batch(0, [(b"a", b"one", [])])
    b2 = batch(1, [(b"b", b"two", [])])
    # flipped byte inside the second batch's records: CRC mismatch
    bad = bytearray(b2)
    bad[-2] ^= 0xFF
    log, _ = write_segment(tmp_path, 0, [b1, bytes(bad)])
    r = run("--format", "json", "dump-log", log)
    assert r.returncode == 1 and "problem" in r.stderr
    bs = json.loads(r.stdout)[0]["batches"]
    assert [x["crc_valid"] for x in bs] == [True, False]
    # torn tail: half a batch after a good one
    torn = tmp_path / "torn"
    torn.mkdir()
    log, _ = write_segment(torn, 0, [b1, b2[: len(b2) // 2]])
    r = run("--format", "json", "dump-log", log)
    assert r.returncode == 1
    f = json.loads(r.stdout)[0]
    assert len(f["batches"]) == 1 and f["problems"][0]["position"] == len(b1)
    assert "torn" in f["problems"][0]["message"] or "left" in f["problems"][0]["message"]
    r = run("dump-log", log)
    assert r.returncode == 1 and f"at position {len(b1)}" in r.stdout
    # index entry pointing into the middle of a batch / at the wrong offset
    good = tmp_path / "good"
    good.mkdir()
    write_segment(good, 0, [b1, b2])
    (good / f"{0:020d}.index").write_bytes(struct.pack(">ii", 1, 5) + b"\x00\x00\x00")
    r = run("--format", "json", "dump-log", good / f"{0:020d}.index")
    assert r.returncode == 1
    probs = json.loads(r.stdout)[0]["problems"]
    assert any("not a batch" in p["message"] for p in probs)
    assert any("partial entry" in p["message"] for p in probs)
    # garbage file types and missing files
    fails("dump-log", tmp_path / "nothing.log")
    fails("dump-log", tmp_path / "x.snapshot")
    # an empty segment is fine
    empty = tmp_path / "empty"
    empty.mkdir()
    log, _ = write_segment(empty, 5, [])
    assert js("dump-log", log)[0]["batches"] == []


def test_dump_log_broker_files(broker):
    b = broker.bootstrap
    t = unique_topic("dump")
    ok("topic", "create", t, "-p", "1", bootstrap=b)
    ok("produce", t, "-k", "=", "-H", "x=y", bootstrap=b,
       stdin="".join(f"k{i}=v{i}\n" for i in range(50)))
    ok("produce", t, "-z", "zstd", bootstrap=b, stdin="".join(f"{'z' * 100}{i}\n" for i in range(200)))
    broker.stop()
    pdir = os.path.join(broker.data_dir, f"{t}-0")
    log = os.path.join(pdir, f"{0:020d}.log")
    out = js("dump-log", log, "--print-data")[0]
    assert out["problems"] == []
    assert all(x["crc_valid"] for x in out["batches"])
    recs = [r for x in out["batches"] for r in x["records"]]
    assert [r["offset"] for r in recs] == list(range(250))
    assert [(r["key"], r["payload"]) for r in recs[:2]] == [("k0", "v0"), ("k1", "v1")]
    assert recs[0]["headers"] == [{"key": "x", "value": "y"}]
    assert recs[-1]["payload"] == "z" * 100 + "199"
    assert "zstd" in {x["compression"] for x in out["batches"]}
    for suffix in (".index", ".timeindex"):
        f = os.path.join(pdir, f"{0:020d}{suffix}")
        if os.path.exists(f):
            assert js("dump-log", f)[0]["problems"] == []
    meta = os.path.join(broker.data_dir, "__cluster_metadata-0", f"{0:020d}.log")
    if os.path.exists(meta):
        m = js("dump-log", meta, "--deep")[0]
        kinds = {r.get("metadata_record") for x in m["batches"] for r in x["records"]}
        assert "TopicRecord" in kinds
    broker.start()


# ------------------------------------------------------------------ perf

def test_perf_produce_consume_e2e(broker):
    b = broker.bootstrap
    t = unique_topic("perf")
    p = js("perf", "produce", t, "-n", 20000, "-s", 64, "--partitions", 2, "--linger", "2ms",
           "--batch-size", "64k", bootstrap=b)
    assert p["messages"] == 20000 and p["errors"] == 0 and p["bytes"] == 20000 * 64
    lat = p["latency_ms"]
    # unpaced: every 16th message is timed
    assert lat["count"] == 20000 // 16 and 0 <= lat["p50"] <= lat["p99"] <= lat["p99_9"] <= lat["max"]
    d = js("topic", "describe", t, bootstrap=b)[0]
    assert len(d["partitions"]) == 2 and sum(x["end_offset"] for x in d["partitions"]) == 20000
    c = js("perf", "consume", t, bootstrap=b)
    assert c["messages"] == 20000 and c["bytes"] == 20000 * 64
    c = js("perf", "consume", t, "-n", 500, bootstrap=b)
    assert c["messages"] == 500
    e = js("perf", "e2e", t, "-n", 300, "--rate", 1000, bootstrap=b)
    assert e["messages"] == 300 and e["latency_ms"]["count"] == 300
    r = ok("perf", "produce", t, "-n", 3000, "--rate", 2000, bootstrap=b)
    assert "msgs/s" in r.stdout and "p99" in r.stdout
    fails("perf", "consume", "missing-" + t, bootstrap=b)


def test_perf_idempotent_and_transactions(broker):
    b = broker.bootstrap
    t = unique_topic("perf-txn")
    p = js("perf", "produce", t, "-n", 55, "-s", 32, "--partitions", 1, "--txn-size", 10,
           bootstrap=b)
    # five transactions of 10 and a last one of 5, each ending in a commit marker
    assert (p["messages"], p["errors"], p["transactions"], p["idempotent"]) == (55, 0, 6, "true")
    assert p["txns_per_sec"] > 0
    d = js("topic", "describe", t, bootstrap=b)[0]
    assert d["partitions"][0]["end_offset"] == 55 + 6
    for iso in ("read_committed", "read_uncommitted"):
        c = js("perf", "consume", t, "--isolation", iso, bootstrap=b)
        assert (c["messages"], c["bytes"], c["errors"]) == (55, 55 * 32, 0), iso
    i = js("perf", "produce", t, "-n", 2000, "-s", 32, "--idempotent", bootstrap=b)
    assert (i["messages"], i["errors"], i["idempotent"]) == (2000, 0, "true")
    assert "transactions" not in i
    r = ok("perf", "produce", t, "-n", 20, "--txn-size", 7, "--transactional-id", "perf-" + t,
           bootstrap=b)
    assert "3 transactions" in r.stdout
    fails("perf", "produce", t, "--txn-size", 0, code=2, bootstrap=b)
    fails("perf", "produce", t, "--idempotent", "--acks", 1, code=2, bootstrap=b)
    fails("perf", "consume", t, "--txn-size", 5, code=2, bootstrap=b)
    fails("perf", "produce", t, "--isolation", "read_committed", code=2, bootstrap=b)
    fails("perf", "consume", t, "--isolation", "dirty", code=2, bootstrap=b)


def test_perf_keys_feed_a_compacted_topic(broker):
    b = broker.bootstrap
    t = unique_topic("perf-keys")
    ok("topic", "create", t, "-p", 1, "-c", "cleanup.policy=compact", bootstrap=b)
    # keyless records are refused by a compacted topic; --keys makes them keyed
    fails("perf", "produce", t, "-n", 10, "-s", 16, bootstrap=b)
    p = js("perf", "produce", t, "-n", 1000, "-s", 16, "--keys", 7, bootstrap=b)
    assert (p["messages"], p["errors"]) == (1000, 0)
    keys = ok("consume", t, "-e", "-f", "%k\\n", bootstrap=b).stdout.splitlines()
    assert len(keys) == 1000
    seen = set(keys)
    assert seen == {f"key-{i}" for i in range(7)}
    fails("perf", "e2e", t, "--keys", 3, code=2, bootstrap=b)
    fails("perf", "produce", t, "--keys", 0, code=2, bootstrap=b)


def test_perf_against_mock_cluster():
    proc = subprocess.Popen([SAMSA, "perf", "mock-cluster", "--topic", "bench", "--partitions", "2"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        bootstrap = read_line(proc, 30).strip()
        assert ":" in bootstrap
        p = js("perf", "produce", "bench", "-n", 5000, bootstrap=bootstrap)
        assert p["messages"] == 5000 and p["errors"] == 0
        c = js("perf", "consume", "bench", "-n", 5000, bootstrap=bootstrap)
        assert c["messages"] == 5000
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            rc = proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            rc = proc.wait()
        assert rc == 0


# ------------------------------------------------------------------ completion

def complete(words):
    """Completions offered for the last word of `samsa <words...>`."""
    line = " ".join(["samsa"] + words)
    script = (f"source {COMPLETION}\n"
              f"COMP_WORDS=(samsa {' '.join(repr(w) if w else repr('') for w in words)})\n"
              f"COMP_CWORD={len(words)}\nCOMP_LINE={line!r}\nCOMP_POINT=${{#COMP_LINE}}\n"
              "_samsa\nprintf '%s\\n' \"${COMPREPLY[@]}\"\n")
    r = subprocess.run(["bash", "-c", script], capture_output=True, text=True, timeout=30)
    assert r.returncode == 0, r.stderr
    return set(r.stdout.split())


def test_completion_script():
    assert subprocess.run(["bash", "-n", COMPLETION]).returncode == 0
    assert {"topic", "produce", "consume", "group", "config", "cluster", "storage",
            "dump-log", "perf"} <= complete([""])
    assert complete(["to"]) == {"topic"}
    assert {"create", "list", "describe", "alter", "delete", "delete-records"} == \
        complete(["topic", ""])
    assert {"reset-offsets"} == complete(["group", "re"])
    assert "--to-earliest" in complete(["group", "reset-offsets", "g", "--to"])
    assert {"topic", "broker"} == complete(["config", "get", ""])
    assert "--print-data" in complete(["dump-log", "--pr"])
