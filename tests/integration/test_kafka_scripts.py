"""Kafka's own command-line scripts (<repo>/kafka/bin/kafka-*.sh) against a live broker.

Each script is run through its wrapper in the Kafka-shaped directory, with Kafka's
flags, the way a runbook runs it, and judged by its exit status and by Kafka's output
formats (docs/KAFKA_SCRIPTS.md). Covered: kafka-topics (create, list, describe, alter
partitions, delete), kafka-configs (alter/describe topic configs), console producer and
consumer (keys, formatter properties, groups), kafka-consumer-groups (list, describe
offsets/members/state, reset-offsets dry run and execute, delete), kafka-get-offsets,
kafka-delete-records (offset JSON file), kafka-dump-log on the broker's own segment,
kafka-storage (random-uuid, format, info), kafka-broker-api-versions, both perf tests,
--command-config, and the scripts for features Samsa does not have yet (exit 1 with a
clear message). Waits are bounded (subprocess timeouts and wait_until), never bare sleeps.
"""

import json
import os
import re
import subprocess
import tempfile

import pytest

from conftest import REPO, confluent_create_topic, unique_topic, wait_until

KAFKA_BIN = os.path.join(REPO, "kafka", "bin")
RUN_TIMEOUT_S = 90


def script(name):
    path = os.path.join(KAFKA_BIN, name)
    if not os.access(path, os.X_OK):
        pytest.fail(f"{path} missing (run `make build`)")
    return path


def run(name, *args, stdin=None, timeout=RUN_TIMEOUT_S):
    env = dict(os.environ)
    env.pop("SAMSA_CLI", None)
    return subprocess.run([script(name)] + [str(a) for a in args], input=stdin,
                          capture_output=True, text=True, timeout=timeout, env=env)


def ok(name, *args, **kw):
    r = run(name, *args, **kw)
    assert r.returncode == 0, (f"{name} {' '.join(map(str, args))} exited {r.returncode}\n"
                               f"stdout: {r.stdout[-2000:]}\nstderr: {r.stderr[-2000:]}")
    return r


def topics(b, *args, **kw):
    return ok("kafka-topics.sh", "--bootstrap-server", b.bootstrap, *args, **kw)


def produce(b, topic, lines, *extra):
    return ok("kafka-console-producer.sh", "--bootstrap-server", b.bootstrap, "--topic", topic,
              *extra, stdin="".join(l + "\n" for l in lines))


def get_offsets(b, *args):
    out = ok("kafka-get-offsets.sh", "--bootstrap-server", b.bootstrap, *args).stdout
    res = {}
    for line in out.splitlines():
        t, p, o = line.rsplit(":", 2)
        res[(t, int(p))] = int(o)
    return res


def table(out):
    """Rows of a Kafka kafka-consumer-groups table (header first), split on blanks."""
    return [l.split() for l in out.splitlines() if l.strip()]


# ------------------------------------------------------------------ layout


def test_distribution_layout():
    for name in ["kafka-topics.sh", "kafka-configs.sh", "kafka-consumer-groups.sh",
                 "kafka-console-producer.sh", "kafka-console-consumer.sh",
                 "kafka-get-offsets.sh", "kafka-delete-records.sh", "kafka-dump-log.sh",
                 "kafka-storage.sh", "kafka-metadata-quorum.sh", "kafka-leader-election.sh",
                 "kafka-reassign-partitions.sh", "kafka-transactions.sh", "kafka-acls.sh",
                 "kafka-producer-perf-test.sh", "kafka-consumer-perf-test.sh",
                 "kafka-broker-api-versions.sh", "kafka-log-dirs.sh"]:
        assert os.access(os.path.join(KAFKA_BIN, name), os.X_OK), name


def test_wrapper_found_through_symlink(module_broker):
    # a symlink to a script (as tools that wrap a Kafka install make) still finds samsa
    d = tempfile.mkdtemp(prefix="kafka-link-")
    link = os.path.join(d, "kafka-topics.sh")
    os.symlink(script("kafka-topics.sh"), link)
    r = subprocess.run([link, "--bootstrap-server", module_broker.bootstrap, "--list"],
                       capture_output=True, text=True, timeout=RUN_TIMEOUT_S)
    assert r.returncode == 0, r.stderr


# ------------------------------------------------------------------ topics and configs


def test_topics_lifecycle(module_broker):
    b = module_broker
    t = unique_topic("kt")
    r = topics(b, "--create", "--topic", t, "--partitions", 3, "--replication-factor", 1,
               "--config", "retention.ms=3600000")
    assert r.stdout == f"Created topic {t}.\n"
    r = run("kafka-topics.sh", "--bootstrap-server", b.bootstrap, "--create", "--topic", t)
    assert r.returncode == 1 and "already exists" in r.stderr
    topics(b, "--create", "--topic", t, "--if-not-exists")

    assert t in topics(b, "--list").stdout.splitlines()

    out = topics(b, "--describe", "--topic", t).stdout.splitlines()
    assert re.fullmatch(rf"Topic: {t}\tTopicId: [A-Za-z0-9_-]{{22}}\tPartitionCount: 3\t"
                        rf"ReplicationFactor: 1\tConfigs: .*retention\.ms=3600000.*", out[0]), out
    assert out[1:] == [f"\tTopic: {t}\tPartition: {p}\tLeader: 1\tReplicas: 1\tIsr: 1"
                       for p in range(3)]

    topics(b, "--alter", "--topic", t, "--partitions", 5)
    out = topics(b, "--describe", "--topic", t).stdout
    assert "PartitionCount: 5" in out and f"\tTopic: {t}\tPartition: 4\tLeader: 1" in out

    # nothing under-replicated or unavailable on a healthy single node
    assert topics(b, "--describe", "--under-replicated-partitions").stdout == ""
    assert topics(b, "--describe", "--unavailable-partitions").stdout == ""

    topics(b, "--delete", "--topic", t)
    wait_until(lambda: t not in topics(b, "--list").stdout.splitlines(), what="topic deleted")
    r = run("kafka-topics.sh", "--bootstrap-server", b.bootstrap, "--describe", "--topic", t)
    assert r.returncode == 1 and "does not exist" in r.stderr
    topics(b, "--delete", "--topic", t, "--if-exists")


def test_topics_usage_errors(module_broker):
    r = run("kafka-topics.sh", "--bootstrap-server", module_broker.bootstrap)
    assert r.returncode != 0 and "exactly one action" in r.stderr
    r = run("kafka-topics.sh", "--list")
    assert r.returncode == 1 and "bootstrap-server" in r.stderr
    r = run("kafka-topics.sh", "--bootstrap-server", module_broker.bootstrap, "--create",
            "--topic", "x", "--replica-assignment", "1:2")
    assert r.returncode == 1 and "not supported by Samsa yet" in r.stderr


def test_configs_alter_describe(module_broker):
    b = module_broker
    t = unique_topic("kc")
    topics(b, "--create", "--topic", t, "--partitions", 1)
    base = ["kafka-configs.sh", "--bootstrap-server", b.bootstrap]
    r = ok(*base, "--entity-type", "topics", "--entity-name", t, "--alter",
           "--add-config", "retention.ms=86400000,cleanup.policy=[compact,delete]")
    assert r.stdout == f"Completed updating config for topic {t}.\n"
    out = ok(*base, "--entity-type", "topics", "--entity-name", t, "--describe").stdout
    lines = out.splitlines()
    assert lines[0] == f"Dynamic configs for topic {t} are:"
    assert ("  retention.ms=86400000 sensitive=false "
            "synonyms={DYNAMIC_TOPIC_CONFIG:retention.ms=86400000}") in lines
    assert any(l.startswith("  cleanup.policy=compact,delete sensitive=false") for l in lines)

    ok(*base, "--topic", t, "--alter", "--delete-config", "cleanup.policy")
    out = ok(*base, "--topic", t, "--describe").stdout
    assert "cleanup.policy" not in out and "retention.ms=86400000" in out
    out = ok(*base, "--topic", t, "--describe", "--all").stdout
    assert out.startswith(f"All configs for topic {t} are:\n")
    assert "  cleanup.policy=delete sensitive=false" in out

    out = ok(*base, "--entity-type", "brokers", "--entity-name", "1", "--describe").stdout
    assert out.startswith("Dynamic configs for broker 1 are:\n")

    r = run(*base, "--entity-type", "users", "--entity-name", "alice", "--describe")
    assert r.returncode == 1 and "not supported by Samsa yet" in r.stderr


def test_command_config(module_broker, tmp_path):
    props = tmp_path / "client.properties"
    props.write_text("# a Java client's file\nclient.id=runbook\n"
                     "key.serializer=org.apache.kafka.common.serialization.StringSerializer\n"
                     "request.timeout.ms=20000\nssl.endpoint.identification.algorithm=https\n"
                     "some.java.only.key=1\n")
    r = ok("kafka-topics.sh", "--bootstrap-server", module_broker.bootstrap,
           "--command-config", str(props), "--list")
    assert "ignoring Java-only client property 'some.java.only.key'" in r.stderr
    assert "key.serializer" not in r.stderr


# ------------------------------------------------------------------ console tools


def test_console_produce_consume_keys(module_broker):
    b = module_broker
    t = unique_topic("kcc")
    topics(b, "--create", "--topic", t, "--partitions", 1)
    produce(b, t, ["k1:v1", "k2:v2"], "--property", "parse.key=true",
            "--property", "key.separator=:")
    produce(b, t, ["plain"])
    r = ok("kafka-console-consumer.sh", "--bootstrap-server", b.bootstrap, "--topic", t,
           "--from-beginning", "--max-messages", 3, "--property", "print.key=true",
           "--property", "key.separator=|")
    assert r.stdout.splitlines() == ["k1|v1", "k2|v2", "null|plain"]
    assert "Processed a total of 3 messages" in r.stderr

    r = ok("kafka-console-consumer.sh", "--bootstrap-server", b.bootstrap, "--topic", t,
           "--partition", 0, "--offset", 1, "--max-messages", 2,
           "--property", "print.partition=true", "--property", "print.offset=true",
           "--property", "print.timestamp=true", "--property", "print.headers=true",
           "--property", "print.key=true")
    lines = r.stdout.splitlines()
    assert re.fullmatch(r"CreateTime:\d+\tPartition:0\tOffset:1\tNO_HEADERS\tk2\tv2",
                        lines[0]), lines
    assert lines[1].endswith("\tOffset:2\tNO_HEADERS\tnull\tplain")

    # without --from-beginning nothing old is read; --timeout-ms ends it
    r = ok("kafka-console-consumer.sh", "--bootstrap-server", b.bootstrap, "--topic", t,
           "--timeout-ms", 1500)
    assert r.stdout == "" and "Processed a total of 0 messages" in r.stderr

    # a line without the separator is an error, as in Kafka
    r = run("kafka-console-producer.sh", "--bootstrap-server", b.bootstrap, "--topic", t,
            "--property", "parse.key=true", "--property", "key.separator=:", stdin="nosep\n")
    assert r.returncode == 1 and "No key separator found on line number 1" in r.stderr


def test_console_headers(module_broker):
    b = module_broker
    t = unique_topic("kch")
    topics(b, "--create", "--topic", t, "--partitions", 1)
    produce(b, t, ["h1:a,h2:b\tkey\tvalue"], "--property", "parse.headers=true",
            "--property", "parse.key=true")
    r = ok("kafka-console-consumer.sh", "--bootstrap-server", b.bootstrap, "--topic", t,
           "--from-beginning", "--max-messages", 1, "--property", "print.headers=true",
           "--property", "print.key=true")
    assert r.stdout == "h1:a,h2:b\tkey\tvalue\n"


# ------------------------------------------------------------------ consumer groups


def test_consumer_groups(module_broker):
    b = module_broker
    t = unique_topic("kg")
    g = "kgroup-" + t
    topics(b, "--create", "--topic", t, "--partitions", 2)
    # keyed, so the records land in both partitions every time (unkeyed ones may all go to
    # one partition, and the group then has no offset for the other)
    produce(b, t, [f"k{i}:m{i}" for i in range(10)], "--property", "parse.key=true",
            "--property", "key.separator=:")
    assert all(n > 0 for n in get_offsets(b, "--topic", t).values())
    r = ok("kafka-console-consumer.sh", "--bootstrap-server", b.bootstrap, "--topic", t,
           "--group", g, "--from-beginning", "--max-messages", 10)
    assert len(r.stdout.splitlines()) == 10

    gb = ["kafka-consumer-groups.sh", "--bootstrap-server", b.bootstrap]
    assert g in ok(*gb, "--list").stdout.splitlines()
    out = ok(*gb, "--list", "--state").stdout
    assert table(out)[0] == ["GROUP", "STATE"] and [g, "Empty"] in table(out)

    r = ok(*gb, "--describe", "--group", g)
    assert f"Consumer group '{g}' has no active members." in r.stderr
    rows = table(r.stdout)
    assert rows[0] == ["GROUP", "TOPIC", "PARTITION", "CURRENT-OFFSET", "LOG-END-OFFSET", "LAG",
                       "CONSUMER-ID", "HOST", "CLIENT-ID"]
    assert r.stdout.startswith("\nGROUP ")
    ends = get_offsets(b, "--topic", t)
    assert sorted(rows[1:]) == sorted([g, t, str(p), str(ends[(t, p)]), str(ends[(t, p)]), "0",
                                       "-", "-", "-"] for p in range(2))

    # dry run (the default, with Kafka's warning) changes nothing
    r = ok(*gb, "--group", g, "--reset-offsets", "--to-earliest", "--topic", t)
    assert r.stdout.startswith("WARN: No action will be performed")
    assert table(r.stdout.split("\n", 1)[1])[0] == ["GROUP", "TOPIC", "PARTITION", "NEW-OFFSET"]
    r = ok(*gb, "--group", g, "--reset-offsets", "--to-earliest", "--topic", t, "--dry-run")
    assert sorted(table(r.stdout)[1:]) == [[g, t, "0", "0"], [g, t, "1", "0"]]
    rows = table(ok(*gb, "--describe", "--group", g).stdout)
    assert all(row[5] == "0" for row in rows[1:])

    r = ok(*gb, "--group", g, "--reset-offsets", "--to-earliest", "--topic", t, "--execute")
    assert sorted(table(r.stdout)[1:]) == [[g, t, "0", "0"], [g, t, "1", "0"]]
    rows = table(ok(*gb, "--describe", "--group", g).stdout)
    assert sorted((row[2], row[3], row[5]) for row in rows[1:]) == sorted(
        (str(p), "0", str(ends[(t, p)])) for p in range(2))

    # --to-offset is clamped into the log; --shift-by moves from the committed offset
    r = ok(*gb, "--group", g, "--reset-offsets", "--to-offset", 10 ** 9, "--topic", f"{t}:0",
           "--execute")
    assert table(r.stdout)[1] == [g, t, "0", str(ends[(t, 0)])]
    r = ok(*gb, "--group", g, "--reset-offsets", "--shift-by", -1, "--topic", f"{t}:0",
           "--dry-run")
    assert table(r.stdout)[1] == [g, t, "0", str(max(ends[(t, 0)] - 1, 0))]
    r = ok(*gb, "--group", g, "--reset-offsets", "--to-latest", "--all-topics", "--execute")
    assert sorted(table(r.stdout)[1:]) == sorted(
        [g, t, str(p), str(ends[(t, p)])] for p in range(2))
    r = ok(*gb, "--group", g, "--reset-offsets", "--to-datetime", "2000-01-01T00:00:00.000",
           "--topic", t, "--dry-run")
    assert sorted(table(r.stdout)[1:]) == [[g, t, "0", "0"], [g, t, "1", "0"]]

    out = ok(*gb, "--describe", "--group", g, "--state").stdout
    assert table(out)[0][:2] == ["GROUP", "COORDINATOR"] and "Empty" in out

    r = run(*gb, "--describe", "--group", "no-such-group-" + t)
    assert f"Consumer group 'no-such-group-{t}' does not exist." in r.stderr

    r = ok(*gb, "--delete", "--group", g)
    assert r.stdout == f"Deletion of requested consumer groups ('{g}') was successful.\n"
    assert g not in ok(*gb, "--list").stdout.splitlines()


def test_consumer_groups_live_member(module_broker):
    b = module_broker
    t = unique_topic("kgl")
    g = "kgl-" + t
    topics(b, "--create", "--topic", t, "--partitions", 1)
    produce(b, t, ["a", "b"])
    p = subprocess.Popen([script("kafka-console-consumer.sh"), "--bootstrap-server",
                          b.bootstrap, "--topic", t, "--group", g, "--from-beginning"],
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        gb = ["kafka-consumer-groups.sh", "--bootstrap-server", b.bootstrap]

        def stable():
            out = run(*gb, "--describe", "--group", g, "--members").stdout
            return len(table(out)) == 2 and table(out)[1][-1] == "1"

        wait_until(stable, timeout_s=30, what="console consumer joined")
        rows = table(ok(*gb, "--describe", "--group", g, "--members", "--verbose").stdout)
        assert rows[0] == ["GROUP", "CONSUMER-ID", "HOST", "CLIENT-ID", "#PARTITIONS",
                           "ASSIGNMENT"]
        assert rows[1][0] == g and rows[1][-1] == f"{t}(0)"
        rows = table(ok(*gb, "--describe", "--group", g).stdout)
        assert rows[1][:3] == [g, t, "0"] and rows[1][6] != "-"

        r = run(*gb, "--group", g, "--reset-offsets", "--to-earliest", "--topic", t,
                "--execute")
        assert r.returncode == 1 and "can only be reset if the group" in r.stderr
        assert "Stable" in r.stderr
    finally:
        p.terminate()
        p.communicate(timeout=30)


# ------------------------------------------------------------------ offsets and records


def test_get_offsets_and_delete_records(module_broker, tmp_path):
    b = module_broker
    t = unique_topic("kdr")
    topics(b, "--create", "--topic", t, "--partitions", 2)
    produce(b, t, [f"v{i}" for i in range(6)], "--producer-property", "partitioner=random")
    ends = get_offsets(b, "--topic", t)
    assert set(ends) == {(t, 0), (t, 1)} and sum(ends.values()) == 6
    r = ok("kafka-get-offsets.sh", "--bootstrap-server", b.bootstrap, "--topic", t)
    assert r.stdout == "".join(f"{t}:{p}:{ends[(t, p)]}\n" for p in range(2))
    assert get_offsets(b, "--topic", t, "--time", -2) == {(t, 0): 0, (t, 1): 0}
    assert get_offsets(b, "--topic-partitions", f"{t}:1") == {(t, 1): ends[(t, 1)]}
    assert get_offsets(b, "--topic", t, "--partitions", "0") == {(t, 0): ends[(t, 0)]}

    p = 0 if ends[(t, 0)] >= 2 else 1
    f = tmp_path / "offsets.json"
    f.write_text(json.dumps({"partitions": [{"topic": t, "partition": p, "offset": 2}],
                             "version": 1}))
    r = ok("kafka-delete-records.sh", "--bootstrap-server", b.bootstrap,
           "--offset-json-file", str(f))
    assert r.stdout == ("Executing records delete operation\n"
                        "Records delete operation completed:\n"
                        f"partition: {t}-{p}\tlow_watermark: 2\n")
    assert get_offsets(b, "--topic", t, "--time", "earliest")[(t, p)] == 2

    f.write_text("{not json")
    r = run("kafka-delete-records.sh", "--bootstrap-server", b.bootstrap,
            "--offset-json-file", str(f))
    assert r.returncode == 1 and "offset JSON" in r.stderr


def test_dump_log(module_broker):
    b = module_broker
    t = unique_topic("kdl")
    topics(b, "--create", "--topic", t, "--partitions", 1)
    produce(b, t, ["k:hello", "k2:world"], "--property", "parse.key=true",
            "--property", "key.separator=:")
    seg = os.path.join(b.data_dir, f"{t}-0", "00000000000000000000.log")
    wait_until(lambda: os.path.exists(seg) and os.path.getsize(seg) > 0, what="segment")
    r = ok("kafka-dump-log.sh", "--files", seg)
    assert r.stdout.startswith(f"Dumping {seg}\n")
    assert re.search(r"^baseOffset: 0 lastOffset: \d+ count: \d+ .*crcValid: true", r.stdout,
                     re.M)
    assert "payload:" not in r.stdout
    r = ok("kafka-dump-log.sh", "--files", seg, "--print-data-log")
    assert re.search(r"^\| offset: 0 CreateTime: \d+ keySize: 1 valueSize: 5 .*key: k "
                     r"payload: hello$", r.stdout, re.M), r.stdout
    r = ok("kafka-dump-log.sh", "--files", seg, "--deep-iteration")
    assert "| offset: 1 " in r.stdout and "payload:" not in r.stdout
    r = run("kafka-dump-log.sh")
    assert r.returncode == 1 and "files" in r.stderr


def test_storage(tmp_path):
    r = ok("kafka-storage.sh", "random-uuid")
    cid = r.stdout.strip()
    assert re.fullmatch(r"[A-Za-z0-9_-]{22}", cid)
    d1, d2 = tmp_path / "d1", tmp_path / "d2"
    cfg = tmp_path / "server.properties"
    cfg.write_text("process.roles=broker,controller\nnode.id=7\n"
                   "controller.quorum.voters=7@127.0.0.1:1\n"
                   "listeners=PLAINTEXT://127.0.0.1:1,CONTROLLER://127.0.0.1:2\n"
                   "controller.listener.names=CONTROLLER\n"
                   f"log.dirs={d1},{d2}\n")
    r = ok("kafka-storage.sh", "format", "-t", cid, "-c", str(cfg))
    assert r.stdout.splitlines() == [f"Formatting {d} with cluster.id {cid} and node.id 7."
                                     for d in (d1, d2)]
    props = (d1 / "meta.properties").read_text()
    assert f"cluster.id={cid}" in props and "node.id=7" in props
    r = run("kafka-storage.sh", "format", "--cluster-id", cid, "--config", str(cfg))
    assert r.returncode == 1 and "already formatted" in r.stderr
    r = ok("kafka-storage.sh", "format", "-t", cid, "-c", str(cfg), "--ignore-formatted")
    assert r.stdout == "All of the log directories are already formatted.\n"
    r = ok("kafka-storage.sh", "info", "-c", str(cfg))
    assert f"Found log directory:\n  {d1}\n" in r.stdout
    assert f"cluster.id={cid}" in r.stdout
    r = run("kafka-storage.sh", "format", "-c", str(cfg))
    assert r.returncode == 1 and "cluster-id" in r.stderr


# ------------------------------------------------------------------ cluster


def test_broker_api_versions(module_broker):
    out = ok("kafka-broker-api-versions.sh", "--bootstrap-server", module_broker.bootstrap).stdout
    lines = out.splitlines()
    assert lines[0] == f"{module_broker.bootstrap} (id: 1 rack: null) -> ("
    assert re.fullmatch(r"\tProduce\(0\): \d+ to \d+ \[usable: \d+\],", lines[1]), lines[1]
    assert any(re.fullmatch(r"\tApiVersions\(18\): \d+ to \d+ \[usable: \d+\],", l)
               for l in lines)
    assert lines[-1] == ")" and not lines[-2].endswith(",")


def test_perf_tests(module_broker):
    b = module_broker
    t = unique_topic("kperf")
    topics(b, "--create", "--topic", t, "--partitions", 2)
    r = ok("kafka-producer-perf-test.sh", "--topic", t, "--num-records", 500,
           "--record-size", 100, "--throughput", -1,
           "--producer-props", f"bootstrap.servers={b.bootstrap}", "acks=1")
    assert re.fullmatch(r"500 records sent, [\d.]+ records/sec \([\d.]+ MB/sec\), [\d.]+ ms avg "
                        r"latency, [\d.]+ ms max latency, \d+ ms 50th, \d+ ms 95th, \d+ ms 99th, "
                        r"\d+ ms 99\.9th\.\n", r.stdout), r.stdout
    r = ok("kafka-consumer-perf-test.sh", "--bootstrap-server", b.bootstrap, "--topic", t,
           "--messages", 500, "--timeout", 20000)
    lines = r.stdout.splitlines()
    assert lines[0] == ("start.time, end.time, data.consumed.in.MB, MB.sec, "
                        "data.consumed.in.nMsg, nMsg.sec, rebalance.time.ms, fetch.time.ms, "
                        "fetch.MB.sec, fetch.nMsg.sec")
    f = lines[1].split(", ")
    assert len(f) == 10 and f[4] == "500", lines
    assert re.fullmatch(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d:\d{3}", f[0])
    assert abs(float(f[2]) - 500 * 100 / 1024 / 1024) < 0.001


# ------------------------------------------------------------------ not supported yet


def test_metadata_quorum_describe(module_broker):
    r = run("kafka-metadata-quorum.sh", "--bootstrap-server", module_broker.bootstrap,
            "describe", "--status")
    assert r.returncode == 0, r.stderr
    fields = dict(line.split(":", 1) for line in r.stdout.splitlines())
    fields = {k: v.strip() for k, v in fields.items()}
    assert list(fields) == ["ClusterId", "LeaderId", "LeaderEpoch", "HighWatermark",
                            "MaxFollowerLag", "MaxFollowerLagTimeMs", "CurrentVoters",
                            "CurrentObservers"]
    assert fields["LeaderId"] == "1" and fields["CurrentVoters"] == "[1]"
    assert int(fields["HighWatermark"]) > 0 and fields["MaxFollowerLag"] == "0"
    with open(os.path.join(module_broker.data_dir, "meta.properties")) as f:
        assert f"cluster.id={fields['ClusterId']}\n" in f.read()
    r = run("kafka-metadata-quorum.sh", "--bootstrap-controller",
            f"127.0.0.1:{module_broker.controller_port}", "describe", "--replication")
    assert r.returncode == 0, r.stderr
    lines = r.stdout.splitlines()
    assert lines[0].split("\t") == ["NodeId", "LogEndOffset", "Lag", "LastFetchTimestamp",
                                     "LastCaughtUpTimestamp", "Status"]
    row = lines[1].split("\t")
    assert row[0] == "1" and row[2] == "0" and row[5] == "Leader"
    assert int(row[1]) >= int(fields["HighWatermark"])  # the leader's end: the HW, or past it
    r = run("kafka-metadata-quorum.sh", "--bootstrap-server", module_broker.bootstrap, "describe")
    assert r.returncode == 2  # one of --status / --replication is required
    r = run("kafka-metadata-quorum.sh", "--bootstrap-server", module_broker.bootstrap,
            "add-controller")
    assert r.returncode == 1 and "not supported by Samsa yet" in r.stderr


def test_leader_election_single_node(module_broker):
    # One replica per partition: the preferred replica already leads.
    t = unique_topic("elect")
    confluent_create_topic(module_broker.bootstrap, t, 2)
    r = run("kafka-leader-election.sh", "--bootstrap-server", module_broker.bootstrap,
            "--election-type", "preferred", "--topic", t)
    assert r.returncode == 0, r.stderr
    assert r.stdout == f"Valid replica already elected for partitions {t}-0, {t}-1\n"
    r = run("kafka-leader-election.sh", "--bootstrap-server", module_broker.bootstrap,
            "--election-type", "preferred", "--all-topic-partitions")
    assert r.returncode == 0 and r.stdout == "", (r.stdout, r.stderr)


@pytest.mark.parametrize("name,args", [
    ("kafka-reassign-partitions.sh", ["--reassignment-json-file", "r.json", "--generate"]),
    ("kafka-acls.sh", ["--list"]),
])
def test_unsupported_scripts(module_broker, name, args):
    r = run(name, "--bootstrap-server", module_broker.bootstrap, *args)
    assert r.returncode == 1
    assert r.stderr.startswith(f"{name}: not supported by Samsa yet: ")
    assert r.stdout == ""
