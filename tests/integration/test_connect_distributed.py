"""samsa-connect in distributed mode: three workers in one group against one broker.

Each test starts its own workers (bin/samsa-connect with group.id set) on free ports,
with internal topics of its own, drives them over plain HTTP as a Connect user would,
and stops them by pid (SIGTERM, or SIGKILL where the test says so). Checked here:

  - the internal topics are created compacted with Kafka's partition counts, and hold
    Kafka's record formats (connector-/task-/commit-/target-state- keys, the offsets
    topic's ["<connector>",{partition}] keys, status-connector-/status-task- keys);
  - a connector created through one worker is seen, with its status, through another;
  - writes sent to a worker that is not the leader are forwarded to it;
  - kill -9 of a worker running tasks: within the session timeout plus a rebalance,
    its tasks show another worker_id and the file -> topic -> file pipeline carries
    on: every input line reaches the output (at least once; duplicates counted);
  - a restart of every worker keeps the connectors (read back from the config topic)
    and the source offsets (no copy from the start again).
"""

import json
import os
import signal
import threading
import time

import pytest

from conftest import confluent_create_topic, unique_topic, wait_until
from test_connect import BAD_LOG_RE, STRING_CONV, Worker, read_lines  # noqa: F401 (fixtures' helpers)

BROKER_CONFIG = {"num.partitions": "1", "group.initial.rebalance.delay.ms": "500"}

FILE_SOURCE = "org.apache.kafka.connect.file.FileStreamSourceConnector"
FILE_SINK = "org.apache.kafka.connect.file.FileStreamSinkConnector"
CONFLICT = 409  # a write that met a rebalance: Kafka answers 409 too; the test retries


def dist_props(group, prefix, protocol=None, session_ms=6000):
    p = {
        "group.id": group,
        "config.storage.topic": f"{prefix}-configs",
        "offset.storage.topic": f"{prefix}-offsets",
        "status.storage.topic": f"{prefix}-status",
        "config.storage.replication.factor": "1",
        "offset.storage.replication.factor": "1",
        "status.storage.replication.factor": "1",
        "session.timeout.ms": str(session_ms),
        "heartbeat.interval.ms": "1000",
        "rebalance.timeout.ms": "20000",
        "offset.flush.interval.ms": "500",
        # Work of a departed worker waits this long for it to come back (cooperative).
        "scheduled.rebalance.max.delay.ms": "2000",
    }
    if protocol:
        p["connect.protocol"] = protocol
    return p


@pytest.fixture
def cluster(request, module_broker, tmp_path):
    """factory(n) -> [Worker] started in one group with fresh internal topics. Teardown
    stops every worker by pid and checks exit statuses and logs."""
    made = []

    def make(n=3, protocol=None, session_ms=6000):
        group, prefix = unique_topic("connect-cluster"), unique_topic("connect")
        ws = []
        for i in range(n):
            d = tmp_path / f"w{i}"
            d.mkdir()
            w = Worker(str(d), module_broker.bootstrap, dist_props(group, prefix, protocol, session_ms))
            w.internal_prefix = prefix
            made.append(w)
            ws.append(w)
        for w in ws:
            w.start(expect_ready=False)
        for w in ws:
            wait_until(w._ready, timeout_s=60, what=f"worker {w.port} healthy")
        return ws

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
    failed = any(getattr(getattr(request.node, "rep_" + p, None), "failed", False) for p in ("setup", "call"))
    if failed or problems:
        for w in made:
            print(f"\n----- samsa-connect log tail ({w.log_path}) -----\n{w.log_tail(80)}\n-----")
    assert not problems, "\n".join(problems)


def write_retrying(w, method, path, body=None, want=(200, 201, 202, 204), timeout_s=60):
    """A REST write, retried while the group rebalances (409)."""
    def attempt():
        st, doc = w.req(method, path, body)
        if st == CONFLICT and "rebalance" in (doc or {}).get("message", ""):
            return False
        assert st in want, f"{method} {path} -> {st} {doc}"
        return (st, doc)
    return wait_until(attempt, timeout_s=timeout_s, interval_s=0.3, what=f"{method} {path}")


def all_running(w, name, ntasks, avoid=None):
    s = w.status(name)
    if s["connector"]["state"] != "RUNNING" or len(s["tasks"]) != ntasks:
        return False
    ids = [s["connector"]["worker_id"]] + [t["worker_id"] for t in s["tasks"]]
    if any(t["state"] != "RUNNING" for t in s["tasks"]):
        return False
    if avoid and avoid in ids:
        return False
    return s


def worker_id(w):
    return f"127.0.0.1:{w.port}"


def leader_of(ws):
    """The worker whose last join made it the leader (from the workers' logs)."""
    def find():
        roles = {}
        for w in ws:
            joins = [ln for ln in w.log_text().splitlines() if "Joined group" in ln]
            roles[w] = joins[-1] if joins else ""
        gens = {r.split(" generation ")[1].split()[0] for r in roles.values() if " generation " in r}
        leaders = [w for w, r in roles.items() if " as leader " in r]
        return leaders[0] if len(gens) == 1 and len(leaders) == 1 else None
    return wait_until(find, timeout_s=60, interval_s=0.2, what="one leader in one generation")


def consume_topic(bootstrap, topic, timeout_s=20):
    """Every (key, value) of every partition of topic up to the high watermarks."""
    from confluent_kafka import Consumer, TopicPartition
    c = Consumer({"bootstrap.servers": bootstrap, "group.id": unique_topic("g"), "enable.auto.commit": False})
    try:
        md = c.list_topics(topic, timeout=10).topics[topic]
        out = []
        for p in md.partitions:
            lo, hi = c.get_watermark_offsets(TopicPartition(topic, p), timeout=10)
            if hi <= lo:
                continue
            c.assign([TopicPartition(topic, p, lo)])
            got = 0
            deadline = time.monotonic() + timeout_s
            while got < hi - lo and time.monotonic() < deadline:
                for m in c.consume(1000, timeout=0.5):
                    if not m.error():
                        out.append((m.key(), m.value()))
                        got += 1
        return out, len(md.partitions)
    finally:
        c.close()


def topic_config(bootstrap, topic):
    from confluent_kafka.admin import AdminClient, ConfigResource
    a = AdminClient({"bootstrap.servers": bootstrap})
    r = ConfigResource(ConfigResource.Type.TOPIC, topic)
    return {k: v.value for k, v in a.describe_configs([r])[r].result(timeout=20).items()}


def test_internal_topics_and_record_formats(cluster, module_broker, tmp_path):
    """Topics made compacted with Kafka's partition counts; configs, offsets and
    statuses in Kafka's key and value formats; reads on any worker, writes forwarded."""
    bs = module_broker.bootstrap
    # A longer session than the kill test's: no worker may drop out under load here.
    ws = cluster(3, session_ms=15000)
    prefix = ws[0].internal_prefix
    src = tmp_path / "in.txt"
    src.write_text("".join(f"line-{i}\n" for i in range(10)))
    topic = unique_topic("dist")
    cfg = {"connector.class": FILE_SOURCE, "tasks.max": "1", "file": str(src), "topic": topic}
    # Created through every worker in turn: at least two of them are not the leader.
    for i, w in enumerate(ws):
        st, info = write_retrying(w, "POST", "/connectors", {"name": f"src{i}", "config": cfg})
        assert st == 201 and info["name"] == f"src{i}", info
    for w in ws:
        assert sorted(w.ok("GET", "/connectors")) == ["src0", "src1", "src2"]
    for i in range(3):
        s = wait_until(lambda: all_running(ws[(i + 1) % 3], f"src{i}", 1), timeout_s=60, what=f"src{i} running")
        assert s["tasks"][0]["worker_id"] in {worker_id(w) for w in ws}
    # Incremental cooperative rebalancing (the default): the rebalances that gave the
    # new connectors to workers left the running tasks alone.
    starts = sum(w.log_text().count("Starting task src0-0") for w in ws)
    assert starts == 1, f"src0-0 was started {starts} times"
    # An explicit forwarded write: a reconfiguration sent to a worker that is not the
    # leader is done by the leader (only the leader writes the config topic).
    leader = leader_of(ws)
    follower = next(w for w in ws if w is not leader)
    st, info = write_retrying(follower, "PUT", "/connectors/src0/config", dict(cfg, **{"batch.size": "100"}))
    assert st == 200 and info["config"]["batch.size"] == "100", info
    assert leader.ok("GET", "/connectors/src0/config")["batch.size"] == "100"
    wait_until(lambda: all_running(ws[0], "src0", 1), timeout_s=60, what="src0 running again")
    # Duplicate names are refused through any worker (forwarded to the leader).
    for w in ws:
        st, doc = write_retrying(w, "POST", "/connectors", {"name": "src0", "config": cfg}, want=(409,))
    # Pause / resume through every worker.
    for w in ws:
        assert write_retrying(w, "PUT", "/connectors/src1/pause")[0] == 202
        wait_until(lambda: ws[0].status("src1")["connector"]["state"] == "PAUSED", timeout_s=30, what="paused")
        assert write_retrying(w, "PUT", "/connectors/src1/resume")[0] == 202
        wait_until(lambda: all_running(ws[2], "src1", 1), timeout_s=30, what="resumed")
    wait_until(lambda: len(consume_topic(bs, topic)[0]) >= 30, timeout_s=60, what="30 records")

    # A task restart sent to a worker that does not run the task is done by the one
    # that does; a connector restart with includeTasks goes through the config topic.
    owner = ws[0].status("src0")["tasks"][0]["worker_id"]
    owner_w = next(w for w in ws if worker_id(w) == owner)
    other = next(w for w in ws if w is not owner_w)
    n0 = owner_w.log_text().count("Restarting task src0-0")
    assert write_retrying(other, "POST", "/connectors/src0/tasks/0/restart")[0] == 204
    assert owner_w.log_text().count("Restarting task src0-0") == n0 + 1
    st, doc = write_retrying(other, "POST", "/connectors/src0/restart?includeTasks=true")
    assert st == 202 and doc["tasks"][0]["state"] == "RESTARTING", doc
    wait_until(lambda: owner_w.log_text().count("Restarting task src0-0") == n0 + 2, timeout_s=30,
               what="the restart request carried out by the task's worker")
    wait_until(lambda: all_running(ws[1], "src0", 1), timeout_s=30, what="src0 running after the restarts")

    # Offsets (KIP-875) through any worker: stop, read, rewind to the start, resume:
    # the task, wherever it starts, reads the offsets topic and copies the file again.
    size = src.stat().st_size
    t_owner = next(w for w in ws if worker_id(w) == ws[1].status("src1")["tasks"][0]["worker_id"])
    assert write_retrying(ws[0], "PUT", "/connectors/src1/stop")[0] == 204
    wait_until(lambda: ws[1].status("src1")["connector"]["state"] == "STOPPED" and not ws[1].status("src1")["tasks"],
               timeout_s=30, what="src1 STOPPED")
    wait_until(lambda: "Stopped task src1-0" in t_owner.log_text(), timeout_s=30, what="src1-0 stopped")
    assert ws[2].ok("GET", "/connectors/src1/offsets")["offsets"] == [
        {"partition": {"filename": str(src)}, "offset": {"position": size}}]
    st, doc = write_retrying(ws[1], "PATCH", "/connectors/src1/offsets",
                             {"offsets": [{"partition": {"filename": str(src)}, "offset": {"position": 0}}]})
    assert st == 200 and "altered successfully" in doc["message"], doc
    assert ws[0].ok("GET", "/connectors/src1/offsets")["offsets"][0]["offset"] == {"position": 0}
    before = len(consume_topic(bs, topic)[0])
    assert write_retrying(ws[2], "PUT", "/connectors/src1/resume")[0] == 202
    wait_until(lambda: all_running(ws[0], "src1", 1), timeout_s=60, what="src1 running again")
    wait_until(lambda: len(consume_topic(bs, topic)[0]) >= before + 10, timeout_s=60, what="the file copied again")
    # Refused while running, through any worker (the leader decides).
    st, doc = write_retrying(ws[1], "DELETE", "/connectors/src1/offsets", want=(400,))
    assert "STOPPED" in doc["message"]
    assert write_retrying(ws[1], "DELETE", "/connectors/src2")[0] == 204
    wait_until(lambda: ws[0].req("GET", "/connectors/src2")[0] == 404, timeout_s=30, what="src2 gone")

    for name, parts in ((f"{prefix}-configs", 1), (f"{prefix}-offsets", 25), (f"{prefix}-status", 5)):
        assert topic_config(bs, name)["cleanup.policy"] == "compact"
        assert consume_topic(bs, name)[1] == parts
    recs, _ = consume_topic(bs, f"{prefix}-configs")
    keys = [k.decode() for k, _ in recs]
    assert "connector-src0" in keys and "task-src0-0" in keys and "commit-src0" in keys
    assert "target-state-src1" in keys
    by_key = {k.decode(): (json.loads(v) if v is not None else None) for k, v in recs}
    assert by_key["connector-src0"]["properties"]["file"] == str(src)
    assert by_key["task-src0-0"]["properties"]["topic"] == topic
    assert by_key["commit-src0"] == {"tasks": 1}
    assert by_key["target-state-src1"]["state"] == "STARTED"
    assert by_key["connector-src2"] is None  # the tombstone of the delete
    # Offsets: the JsonConverter form of ["<connector>",{partition}] -> {offset}.
    wait_until(lambda: any(json.loads(k)[0] == "src0" for k, _ in consume_topic(bs, f"{prefix}-offsets")[0]),
               timeout_s=30, what="src0's offsets")
    offs = [(json.loads(k), json.loads(v)) for k, v in consume_topic(bs, f"{prefix}-offsets")[0] if v]
    mine = [o for k, o in offs if k == ["src0", {"filename": str(src)}]]
    assert mine and mine[-1]["position"] == src.stat().st_size
    assert ws[2].ok("GET", "/connectors/src0/offsets")["offsets"] == [
        {"partition": {"filename": str(src)}, "offset": {"position": src.stat().st_size}}]
    st_recs, _ = consume_topic(bs, f"{prefix}-status")
    st = {k.decode(): json.loads(v) for k, v in st_recs if v}
    assert st["status-task-src0-0"]["state"] in ("RUNNING", "UNASSIGNED")
    assert st["status-connector-src0"]["worker_id"] in {worker_id(w) for w in ws}
    assert isinstance(st["status-task-src0-0"]["generation"], int)


@pytest.mark.parametrize("protocol", ["sessioned", "eager"])
def test_kill9_moves_tasks_and_restart_keeps_connectors_and_offsets(cluster, module_broker, tmp_path, protocol):
    """connect.protocol=sessioned (Kafka's default: incremental cooperative
    rebalancing) and eager."""
    bs = module_broker.bootstrap
    ws = cluster(3, protocol)
    topic = unique_topic("pipe")
    confluent_create_topic(bs, topic, 3)
    src, out = tmp_path / "in.txt", tmp_path / "out.txt"
    src.write_text("")
    src_cfg = {"connector.class": FILE_SOURCE, "tasks.max": "1", "file": str(src), "topic": topic}
    sink_cfg = {"connector.class": FILE_SINK, "tasks.max": "3", "file": str(out), "topics": topic,
                "consumer.override.session.timeout.ms": "6000",
                "consumer.override.heartbeat.interval.ms": "1000"}
    write_retrying(ws[0], "PUT", "/connectors/pipe-in/config", src_cfg)
    write_retrying(ws[1], "PUT", "/connectors/pipe-out/config", sink_cfg)
    wait_until(lambda: all_running(ws[2], "pipe-in", 1), timeout_s=60, what="source running")
    wait_until(lambda: all_running(ws[2], "pipe-out", 3), timeout_s=60, what="sink running")

    written = []
    stop_writing = threading.Event()

    def writer():
        i = 0
        while not stop_writing.is_set():
            with open(src, "a") as f:
                for _ in range(50):
                    f.write(f"line-{i}\n")
                    written.append(f"line-{i}")
                    i += 1
            time.sleep(0.05)

    t = threading.Thread(target=writer)
    t.start()
    try:
        wait_until(lambda: len(read_lines(out)) >= 500, timeout_s=60, what="500 lines through the pipeline")
        # Kill -9 the worker that runs the source task (it also runs sink tasks or
        # connectors), never the one we read through.
        owner = ws[2].status("pipe-in")["tasks"][0]["worker_id"]
        victim = next(w for w in ws if worker_id(w) == owner)
        survivors = [w for w in ws if w is not victim]
        victim.kill9()
        t_kill = time.monotonic()
        s_in = wait_until(lambda: all_running(survivors[0], "pipe-in", 1, avoid=owner), timeout_s=60,
                          what="the source task on another worker")
        wait_until(lambda: all_running(survivors[1], "pipe-out", 3, avoid=owner), timeout_s=60,
                   what="the sink tasks on the other workers")
        moved_after = time.monotonic() - t_kill
        assert s_in["tasks"][0]["worker_id"] in {worker_id(w) for w in survivors}
        n_after_kill = len(written)
        wait_until(lambda: len(written) >= n_after_kill + 500, timeout_s=30, what="more input")
    finally:
        stop_writing.set()
        t.join()
    want = set(written)
    wait_until(lambda: want <= set(read_lines(out)), timeout_s=90,
               what=f"all {len(want)} lines in the output")
    got = read_lines(out)
    dups = len(got) - len(set(got))
    print(f"\n{protocol}: kill -9: tasks moved in {moved_after:.1f}s; {len(want)} lines, {dups} duplicate(s)")
    assert set(got) == want  # nothing lost, nothing invented

    # Restart of every worker: connectors come back from the config topic, the source
    # resumes from its stored offset (no copy from the start).
    victim.start(expect_ready=False)
    wait_until(victim._ready, timeout_s=60, what="the killed worker back")
    wait_until(lambda: all_running(ws[0] if victim is not ws[0] else ws[1], "pipe-out", 3), timeout_s=60,
               what="sink after the rejoin")
    before = len(read_lines(out))
    for w in ws:
        # Bounded even when the stop finds the worker waiting in a rebalance.
        t0 = time.monotonic()
        assert w.stop() == 0
        assert time.monotonic() - t0 < 30, f"worker {w.port} took {time.monotonic() - t0:.1f}s to stop"
    for w in ws:
        w.start(expect_ready=False)
    for w in ws:
        wait_until(w._ready, timeout_s=60, what=f"worker {w.port} back")
    assert sorted(ws[0].ok("GET", "/connectors")) == ["pipe-in", "pipe-out"]
    assert ws[1].ok("GET", "/connectors/pipe-out/config")["tasks.max"] == "3"
    wait_until(lambda: all_running(ws[1], "pipe-in", 1), timeout_s=60, what="source after restart")
    wait_until(lambda: all_running(ws[2], "pipe-out", 3), timeout_s=60, what="sink after restart")
    with open(src, "a") as f:
        for i in range(100):
            f.write(f"after-{i}\n")
    wait_until(lambda: sum(1 for ln in read_lines(out) if ln.startswith("after-")) >= 100, timeout_s=60,
               what="the lines appended after the restart")
    final = read_lines(out)
    again = len(final) - before - 100
    print(f"{protocol}: restart: {again} line(s) repeated after a graceful restart of all workers")
    # A copy from the start would repeat every earlier line; a graceful stop stores
    # exact offsets, so at most a few in-flight records may repeat.
    assert again < len(want) // 10, f"{again} of {len(want)} lines copied again after the restart"
    assert final.count("line-0") == got.count("line-0")
