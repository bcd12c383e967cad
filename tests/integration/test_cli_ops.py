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


# ------------------------------------------------------------------ 5: delete-records

def test_topic_delete_records(module_broker):
    b = module_broker.bootstrap
    t = unique_topic("dr")
    ok("topic", "create", t, "-p", "2", bootstrap=b)
    produce(b, t, [str(i) for i in range(10)], "-p", "0")
    produce(b, t, [str(i) for i in range(6)], "-p", "1")
    r = ok("topic", "delete-records", t, "--partition", "0", "--offset", "4", bootstrap=b)
    assert r.stdout.split()[3:] == [t, "0", "4"], r.stdout   # table: new low watermark
    res = js("topic", "delete-records", t, "-p", "0:7,1:end", bootstrap=b)
    got = {(x["partition"], x["low_watermark"]) for x in res}
    assert got == {(0, 7), (1, 6)}, res
    d = js("topic", "describe", t, bootstrap=b)[0]
    assert [(p["start_offset"], p["end_offset"]) for p in d["partitions"]] == [(7, 10), (6, 6)]
    assert [m["value"] for m in consume_all(b, t, "-p", "0")] == ["7", "8", "9"]
    # beyond the end: a per-partition error, exit 1
    r = fails("topic", "delete-records", t, "-p", "0:99", bootstrap=b)
    assert f"{t} [0]" in r.stderr
    fails("topic", "delete-records", t, "--partition", "0", bootstrap=b, code=2)
    fails("topic", "delete-records", t, bootstrap=b, code=2)
    fails("topic", "delete-records", unique_topic("none"), "--offset", "1", bootstrap=b)


# ------------------------------------------------------------------ 6: delete-offsets

def test_group_delete_offsets(module_broker):
    b = module_broker.bootstrap
    t, g = unique_topic("do"), unique_topic("grp")
    ok("topic", "create", t, "-p", "2", bootstrap=b)
    produce(b, t, ["a", "b"], "-p", "0")
    produce(b, t, ["c"], "-p", "1")
    ok("consume", t, "-g", g, "-n", "3", bootstrap=b)

    def committed():
        return {(p["topic"], p["partition"]): p["committed_offset"]
                for p in js("group", "describe", g, bootstrap=b)[0]["partitions"]}

    wait_until(lambda: committed() == {(t, 0): 2, (t, 1): 1}, 30, what="commits")
    res = js("group", "delete-offsets", g, f"{t}:1", bootstrap=b)
    assert res == [{"topic": t, "partition": 1, "error": None}]
    assert committed() == {(t, 0): 2}
    r = ok("group", "delete-offsets", g, t, bootstrap=b)
    assert "deleted" in r.stdout
    assert committed() == {}
    fails("group", "delete-offsets", g, bootstrap=b, code=2)
    fails("group", "delete-offsets", g, unique_topic("none"), bootstrap=b)


# ------------------------------------------------------------------ 7: offsets

def test_offsets_earliest_latest_and_by_time(module_broker):
    b = module_broker.bootstrap
    t = unique_topic("offs")
    ok("topic", "create", t, "-p", "2", bootstrap=b)
    # Timestamps given explicitly (produce --timestamp, item 8) so the
    # time look-up has known answers.
    produce(b, t, ["a", "b", "c"], "-p", "0", "--timestamp", "1700000000000")
    produce(b, t, ["d"], "-p", "0", "--timestamp", "1700000100000")
    ok("topic", "delete-records", t, "-p", "0:1", bootstrap=b)
    res = js("offsets", t, bootstrap=b)
    assert [(x["partition"], x["earliest"], x["latest"]) for x in res] == [(0, 1, 4), (1, 0, 0)]
    res = js("offsets", t, "--time", "1700000050000", "-p", "0", bootstrap=b)
    assert res == [{"topic": t, "partition": 0, "earliest": 1, "latest": 4,
                    "time": "1700000050000", "offset": 3}]
    res = js("offsets", t, "--time", "2023-11-14T22:13:20Z", "-p", "0", bootstrap=b)
    assert res[0]["offset"] == 1       # 1700000000000 ms, first left after delete-records
    assert js("offsets", t, "--time", "2100-01-01", "-p", "0", bootstrap=b)[0]["offset"] is None
    assert js("offsets", t, "--time", "latest", "-p", "0", bootstrap=b)[0]["offset"] == 4
    assert js("offsets", t, "--time", "earliest", "-p", "0", bootstrap=b)[0]["offset"] == 1
    r = ok("offsets", t, "--time", "latest", bootstrap=b)
    assert r.stdout.splitlines()[0].split() == ["TOPIC", "PARTITION", "EARLIEST", "LATEST",
                                                "OFFSET@latest"]
    assert r.stdout.splitlines()[1].split() == [t, "0", "1", "4", "4"]
    fails("offsets", bootstrap=b, code=2)
    fails("offsets", t, "--time", "someday", bootstrap=b, code=2)
    fails("offsets", unique_topic("none"), bootstrap=b)


# ------------------------------------------------------------------ 10: total lag

def test_group_describe_total_lag(module_broker):
    b = module_broker.bootstrap
    t, g = unique_topic("lag"), unique_topic("grp")
    ok("topic", "create", t, "-p", "2", bootstrap=b)
    produce(b, t, ["a"], "-p", "0")
    produce(b, t, ["b"], "-p", "1")
    ok("consume", t, "-g", g, "-n", "2", bootstrap=b)
    produce(b, t, ["c", "d", "e"], "-p", "0")
    produce(b, t, ["f"], "-p", "1")
    d = js("group", "describe", g, bootstrap=b)[0]
    assert sorted(p["lag"] for p in d["partitions"]) == [1, 3]
    assert d["total_lag"] == 4
    assert "Total lag: 4" in ok("group", "describe", g, bootstrap=b).stdout


# ------------------------------------------------------------------ 11: per-verb help

def noun_verbs():
    """{noun: [verbs]} as `samsa --help` lists them ("topic create|list|...")."""
    out = {}
    for line in ok("--help").stdout.splitlines():
        m = re.match(r"^  ([a-z][a-z-]*) ([a-z][a-z-]*(?:\|[a-z][a-z-]*)+)", line)
        if m:
            out[m.group(1)] = m.group(2).split("|")
    return out


def test_per_verb_help():
    nv = noun_verbs()
    assert {"topic", "group", "config", "storage", "perf"} <= set(nv)
    assert "delete-records" in nv["topic"] and "delete-offsets" in nv["group"]
    for noun, verbs in nv.items():
        if noun == "cluster":
            continue  # one verb: its noun help is the verb's help
        for v in verbs:
            out = ok(noun, v, "--help").stdout
            first = out.splitlines()[0]
            if noun == "perf":
                assert first.startswith("usage: samsa perf"), out
                continue
            assert first.startswith(f"usage: samsa {noun} {v}"), (noun, v, out)
            # only this verb: no other verb's synopsis line
            for other in verbs:
                if other != v and not other.startswith(v) and not v.startswith(other):
                    assert not re.search(rf"^  {other}\b", out, re.M), (noun, v, other, out)
    for cmd in (["offsets"], ["produce"], ["consume"], ["dump-log"]):
        assert ok(*cmd, "--help").stdout.startswith(f"usage: samsa {cmd[0]}")


# ------------------------------------------------------------------ 8: produce

def test_produce_tombstones_headers_timestamps(module_broker):
    b = module_broker.bootstrap
    t = unique_topic("tomb")
    ok("topic", "create", t, "-p", "1", bootstrap=b)
    produce(b, t, ["a:1", "b:"], "-K", ":")                  # "b:" is an empty value
    produce(b, t, ["c:", ":d"], "-K", ":", "-Z")             # null value; null key
    produce(b, t, ["e"], "-H", "h1=x", "-H", "h2=", "--timestamp", "2023-11-14T22:13:20Z")
    ms = consume_all(b, t)
    assert [(m["key"], m["value"]) for m in ms] == [
        ("a", "1"), ("b", ""), ("c", None), (None, "d"), (None, "e")]
    assert ms[4]["headers"] == [{"key": "h1", "value": "x"}, {"key": "h2", "value": ""}]
    assert ms[4]["timestamp"] == 1700000000000
    # the null shows in the text formats as length -1
    r = ok("consume", t, "-e", "-o", "2", "-n", "1", "-f", "%k %S\\n", bootstrap=b)
    assert r.stdout == "c -1\n"


def test_produce_input_format(module_broker):
    b = module_broker.bootstrap
    t = unique_topic("infmt")
    ok("topic", "create", t, "-p", "1", bootstrap=b)
    lines = ["1700000000000|a=1,b=2|k1|v1",
             "|c=3|k2|v|2",                 # no timestamp: --timestamp; '|' kept in the value
             "not matching",
             "2024-01-01T00:00:00Z|||"]     # empty key and value, no headers
    r = run("produce", t, "-F", "%T|%h|%k|%v", "--timestamp", "1600000000000", "-H", "g=0",
            bootstrap=b, stdin="".join(l + "\n" for l in lines))
    assert r.returncode == 1, r.stderr                     # a skipped line is a failure
    assert "line 3 does not match" in r.stderr and "produced 3 messages" in r.stderr
    ms = consume_all(b, t)
    assert [(m["timestamp"], m["key"], m["value"]) for m in ms] == [
        (1700000000000, "k1", "v1"), (1600000000000, "k2", "v|2"), (1704067200000, "", "")]
    hk = lambda m: [(h["key"], h["value"]) for h in m["headers"]]
    assert hk(ms[0]) == [("g", "0"), ("a", "1"), ("b", "2")]
    assert hk(ms[1]) == [("g", "0"), ("c", "3")] and hk(ms[2]) == [("g", "0")]
    # -Z with -F: empty fields are nulls (a tombstone)
    produce(b, t, ["k3="], "-F", "%k=%v", "-Z")
    assert (consume_all(b, t)[-1]["key"], consume_all(b, t)[-1]["value"]) == ("k3", None)
    for bad in ("%k%v", "%x|%v", "%v|%v"):
        r = fails("produce", t, "-F", bad, bootstrap=b, code=2)
        assert "-F" in r.stderr
    fails("produce", t, "--timestamp", "noon", bootstrap=b, code=2)
    fails("produce", t, "-F", "%k|%v", "-K", ":", bootstrap=b, code=2)


# ------------------------------------------------------------------ 9: dump-log decoders

def dump_records(path, *flags):
    """Every record object of a dump-log --format json of one file."""
    doc = js("dump-log", path, *flags)
    return [r for f in doc for bt in f.get("batches", []) for r in bt.get("records", [])]


def test_dump_log_decodes_internal_topics(module_broker, tmp_path):
    b = module_broker.bootstrap
    t, g = unique_topic("dec"), unique_topic("grp")
    ok("topic", "create", t, "-p", "1", bootstrap=b)
    produce(b, t, ["a", "b", "c"])
    ok("consume", t, "-g", g, "-n", "3", bootstrap=b)
    data = module_broker.data_dir

    def offsets_records():
        out = []
        for d in sorted(os.listdir(data)):
            if d.startswith("__consumer_offsets-"):
                for f in sorted(os.listdir(os.path.join(data, d))):
                    p = os.path.join(data, d, f)
                    if f.endswith(".log") and os.path.getsize(p) > 0:
                        out += [(p, r) for r in dump_records(p)]
        return out

    def commits():
        return [(p, r) for p, r in offsets_records()
                if r.get("offset_commit", {}).get("group") == g]

    found = wait_until(commits, 30, what="the group's commit in __consumer_offsets")
    path, rec = found[-1]
    assert rec["offset_commit"] == {"group": g, "topic": t, "partition": 0}
    v = rec["value"]
    assert v["offset"] == 3 and v["metadata"] == "" and v["commit_timestamp"] > 1_600_000_000_000
    gm = [r for _, r in offsets_records() if r.get("group_metadata", {}).get("group") == g]
    assert gm, "no group metadata record"
    with_members = [r["value"] for r in gm if r["value"] and r["value"]["members"]]
    assert with_members, gm
    gv = with_members[0]
    assert gv["protocol_type"] == "consumer" and gv["generation"] >= 1
    assert gv["leader"] in [m["member_id"] for m in gv["members"]]
    assert gv["members"][0]["client_id"] == "samsa"
    # text form
    out = ok("dump-log", path).stdout
    assert f"offset_commit: {{group: {g}, topic: {t}, partition: 0}} value: {{" in out
    # a copy with an ordinary name: decoded only with the flag
    plain = tmp_path / "00000000000000000000.log"
    plain.write_bytes(open(path, "rb").read())
    assert not any("offset_commit" in r for r in dump_records(str(plain)))
    assert any(r.get("offset_commit", {}).get("group") == g
               for r in dump_records(str(plain), "--offsets-decoder"))

    # the metadata log: record type names with their fields
    mdir = os.path.join(data, "__cluster_metadata-0")
    mlog = [os.path.join(mdir, f) for f in sorted(os.listdir(mdir)) if f.endswith(".log")]
    recs = [r for p in mlog for r in dump_records(p)]
    # the quorum's control records: a LeaderChange at the start of every epoch
    leader_changes = [r for r in recs if r.get("control") == "LeaderChange"]
    assert leader_changes and leader_changes[0]["leader_id"] == 1
    assert leader_changes[0]["voters"] == [1]
    byname = {}
    for r in recs:
        if "control" not in r:
            byname.setdefault(r["record"]["type"], []).append(r["record"]["data"])
    topic = [d for d in byname["TopicRecord"] if d["Name"] == t]
    assert len(topic) == 1
    parts = [d for d in byname["PartitionRecord"] if d["TopicId"] == topic[0]["TopicId"]]
    assert [(p["PartitionId"], p["Leader"], p["Replicas"], p["Isr"]) for p in parts] == [
        (0, 1, [1], [1])]
    brokers = byname["RegisterBrokerRecord"]
    assert brokers and brokers[0]["BrokerId"] == 1
    assert brokers[0]["EndPoints"][0]["Port"] == module_broker.port
    assert any(d["Name"] == "metadata.version" for d in byname["FeatureLevelRecord"])
    out = ok("dump-log", mlog[0]).stdout
    assert "record: {type: RegisterBrokerRecord" in out and "BrokerId: 1" in out
    assert "LeaderChange: {leaderId: 1, voters: [1]}" in out
    (tmp_path / "m").mkdir()
    mplain = tmp_path / "m" / "00000000000000000000.log"
    mplain.write_bytes(open(mlog[0], "rb").read())
    assert not any("record" in r for r in dump_records(str(mplain)))
    assert any(r.get("record", {}).get("type") == "RegisterBrokerRecord"
               for r in dump_records(str(mplain), "--cluster-metadata-decoder"))
    fails("dump-log", str(plain), "--offsets-decoder", "--cluster-metadata-decoder", code=2)


# ------------------------------------------------------------------ 12: completions

COMPLETIONS = {sh: os.path.join(REPO, "scripts", f"samsa-completion.{sh}")
               for sh in ("bash", "zsh", "fish")}


def help_nouns_and_verbs():
    """{noun: {verbs}} from the tool's own help: nouns from `samsa --help`,
    verbs from each `samsa NOUN --help` (its "  verb ..." lines, "<a|b>"
    alternatives and "samsa NOUN verb" synopses)."""
    nouns = []
    for line in ok("--help").stdout.splitlines():
        m = re.match(r"^  ([a-z][a-z-]*)\b", line)
        if m and m.group(1) not in ("version",):
            nouns.append(m.group(1))
    out = {}
    for n in nouns:
        text = ok(n, "--help").stdout
        verbs = set()
        for line in text.splitlines():
            # "  verb ARG...", "  verb [-x]", "  verb    description", "  get topic NAME"
            # (not a description line that happens to start in lower case)
            m = re.match(r"^  ([a-z][a-z-]*)(?=$| {2,}| [A-Z\[(<-]| topic | broker )", line)
            if m:
                verbs.add(m.group(1))
            for alt in re.findall(rf"samsa {n} <([a-z0-9-]+(?:\|[a-z0-9-]+)+)>", line):
                verbs |= set(alt.split("|"))
            for v in re.findall(rf"samsa {n} ([a-z][a-z-]*)", line):
                verbs.add(v)
        out[n] = verbs
    return out


def test_completion_files_cover_every_verb():
    nv = help_nouns_and_verbs()
    assert {"topic", "produce", "consume", "group", "offsets", "config", "cluster", "storage",
            "dump-log", "perf"} <= set(nv), nv
    assert {"delete-records"} <= nv["topic"] and {"delete-offsets"} <= nv["group"]
    assert {"produce", "consume", "e2e", "mock-cluster"} <= nv["perf"]
    for sh, path in COMPLETIONS.items():
        text = open(path).read()
        words = set(re.findall(r"[A-Za-z][A-Za-z0-9-]*", text))
        for noun, verbs in nv.items():
            assert noun in words, f"{sh} completion lacks command {noun}"
            for v in verbs:
                assert v in words, f"{sh} completion lacks '{noun} {v}'"
        # every long option of the verb-less commands
        for cmd in ("produce", "consume", "offsets", "dump-log"):
            for opt in re.findall(r"--[a-z][a-z-]+", ok(cmd, "--help").stdout):
                assert (opt in text or opt[2:] in words), f"{sh} completion lacks {cmd} {opt}"
    # make install puts all three in place
    mk = open(os.path.join(REPO, "Makefile")).read()
    for sh in COMPLETIONS:
        assert f"scripts/samsa-completion.{sh}" in mk


def test_bash_completion_new_verbs():
    from test_cli import complete
    assert "offsets" in complete([""])
    assert {"delete-offsets"} == complete(["group", "delete-o"])
    assert {"delete-records"} == complete(["topic", "delete-"])
    assert {"--offsets-decoder"} == complete(["dump-log", "--off"])
    assert {"--null-empty"} == complete(["produce", "t", "--null"])
    assert {"earliest", "latest"} == complete(["offsets", "t", "--time", ""])


def test_make_install_completions(tmp_path):
    r = subprocess.run(["make", "-n", "install", f"DESTDIR={tmp_path}", "PREFIX=/usr"],
                       cwd=REPO, capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    assert f"{tmp_path}/usr/share/zsh/site-functions/_samsa" in r.stdout
    assert f"{tmp_path}/usr/share/fish/vendor_completions.d/samsa.fish" in r.stdout
