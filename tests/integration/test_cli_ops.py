"""bin/samsa: the operations added and the bugs fixed for issue #11, against a
live samsa-broker (one per module unless a test needs its own).

Covered:
  - consume -o N beyond the log: a warning naming the partition, the offset
    and the log's end, then the partition from its beginning;
  - config get broker ID for a broker that is not in the cluster: at once;
  - consume -f with an unknown field: usage error naming the field;
  - consume -g when the broker goes away: unreachable + commit failed, exit 1;
  - topic delete-records, group delete-offsets, offsets (earliest / latest /
    by time), produce tombstones / headers / timestamps and its -F input
    format, dump-log decoding of __consumer_offsets and __cluster_metadata,
    the total lag of group describe, per-verb help, and the bash / zsh / fish
    completion files against the verbs the tool's own help lists.
Waits are bounded (subprocess timeouts, wait_until polls), never bare sleeps.
"""

import json
import os
import re
import signal
import subprocess
import time

import pytest

from conftest import REPO, unique_topic, wait_until, free_ports
from test_cli import SAMSA, run, ok, js, fails, read_line


def produce(b, topic, lines, *args):
    ok("produce", topic, *args, bootstrap=b, stdin="".join(l + "\n" for l in lines))


def consume_all(b, topic, *args):
    """Every message of topic as JSON objects (reads to the end and exits)."""
    out = ok("--format", "json", "consume", topic, "-e", *args, bootstrap=b).stdout
    return [json.loads(l) for l in out.splitlines() if l.strip()]


# ------------------------------------------------------------------ bug 1

def test_consume_offset_out_of_range_warns(module_broker):
    b = module_broker.bootstrap
    t = unique_topic("oor")
    ok("topic", "create", t, "-p", "1", bootstrap=b)
    produce(b, t, [str(i) for i in range(10)])
    r = ok("consume", t, "-o", "100", "-e", bootstrap=b, timeout=60)
    assert r.stdout.split() == [str(i) for i in range(10)]  # from the beginning
    assert re.search(rf"samsa: warning: {t} \[0\]: offset 100 is out of range "
                     r"\(log ends at 10\); starting from the beginning \(offset 0\)",
                     r.stderr), r.stderr
    # in range: no warning, starts there
    r = ok("consume", t, "-o", "7", "-e", bootstrap=b, timeout=60)
    assert r.stdout.split() == ["7", "8", "9"] and "warning" not in r.stderr


# ------------------------------------------------------------------ bug 2

def test_config_get_unknown_broker_fails_at_once(module_broker):
    b = module_broker.bootstrap
    t0 = time.monotonic()
    r = fails("config", "get", "broker", "2", bootstrap=b)
    assert time.monotonic() - t0 < 5, "must not wait for the request timeout"
    assert "broker 2 is not in the cluster" in r.stderr
    assert ok("--format", "json", "config", "get", "broker", "1", bootstrap=b).stdout


# ------------------------------------------------------------------ bug 3

@pytest.mark.parametrize("fmt,field", [("%Z", "%Z"), ("%v %q\\n", "%q"), ("100%", "%")])
def test_consume_unknown_format_field_is_usage_error(fmt, field):
    # Usage errors are found before any broker is contacted.
    r = fails("-b", "127.0.0.1:1", "consume", "t", "-f", fmt, code=2)
    assert f"unknown format field '{field}'" in r.stderr, r.stderr


# ------------------------------------------------------------------ bug 4

def test_group_consume_reports_broker_gone(broker):
    """consume -g while its broker stops: it must not hang or leave silently;
    it says the broker is unreachable and the commit failed (exit 1)."""
    b = broker.bootstrap
    t, g = unique_topic("gone"), unique_topic("grp")
    ok("topic", "create", t, "-p", "1", bootstrap=b)
    produce(b, t, ["hi"])
    proc = subprocess.Popen([SAMSA, "-b", b, "--timeout", "3s", "consume", t, "-g", g,
                             "-n", "5"], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        assert read_line(proc, 60) == "hi"
        t0 = time.monotonic()
        assert broker.stop() == 0
        try:
            rc = proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            pytest.fail("consume -g still running 60 s after its broker stopped")
        err = proc.stderr.read().decode()
        assert rc == 1, (rc, err)
        assert "cannot reach any broker" in err and "commit failed" in err, err
        assert f"group '{g}' not committed" in err, err
        assert time.monotonic() - t0 < 45
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    # And against the stopped broker's port from the start: fast, one line.
    t0 = time.monotonic()
    r = fails("--timeout", "3s", "consume", t, "-g", g, bootstrap=b, timeout=60)
    assert "cannot reach any broker" in r.stderr
    assert time.monotonic() - t0 < 20
