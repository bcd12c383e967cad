"""The transaction admin tools: `samsa txn ...`, kafka-transactions.sh, the
DescribeProducers / DescribeTransactions / ListTransactions APIs behind them,
and dump-log of the transaction files (.txnindex, producer .snapshot).

Tests marked `needs_coordinator` drive a confluent_kafka transactional
producer, so they need the transaction coordinator wired into the broker
(EndTxn served); until then they are skipped. The others need only the
partition's producer state (an idempotent producer) or files on disk.
"""
import json
import os
import struct
import subprocess

import pytest

from conftest import REPO, raw_api_versions, unique_topic, wait_until, confluent_create_topic

SAMSA = os.environ.get("SAMSA_CLI", os.path.join(REPO, "bin", "samsa"))
KAFKA_TXN = os.path.join(REPO, "kafka", "bin", "kafka-transactions.sh")
RUN_TIMEOUT_S = 90

KAFKA_PRODUCERS_HEADER = ["ProducerId", "ProducerEpoch", "LatestCoordinatorEpoch",
                          "LastSequence", "LastTimestamp", "CurrentTransactionStartOffset"]


def run(*args, bootstrap=None):
    cmd = [SAMSA] + (["-b", bootstrap] if bootstrap else []) + [str(a) for a in args]
    env = dict(os.environ)
    env.pop("SAMSA_BROKERS", None)
    return subprocess.run(cmd, capture_output=True, text=True, timeout=RUN_TIMEOUT_S, env=env)


def ok(*args, **kw):
    r = run(*args, **kw)
    assert r.returncode == 0, (args, r.stdout[-2000:], r.stderr[-2000:])
    return r


def ok_json(*args, bootstrap):
    return json.loads(ok("--format", "json", *args, bootstrap=bootstrap).stdout)


def kafka_txn(bootstrap, *args):
    """kafka-transactions.sh through `samsa kafka` (what the wrapper script runs)."""
    cmd = [SAMSA, "kafka", "kafka-transactions.sh", "--", "--bootstrap-server", bootstrap]
    return subprocess.run(cmd + [str(a) for a in args], capture_output=True, text=True,
                          timeout=RUN_TIMEOUT_S)


def kafka_rows(out):
    """Kafka's tool's table: every cell padded and followed by a tab."""
    return [[c.strip() for c in line.split("\t")[:-1]] for line in out.splitlines()]


def idempotent_produce(bootstrap, topic, n, partition=0):
    from confluent_kafka import Producer
    p = Producer({"bootstrap.servers": bootstrap, "enable.idempotence": True})
    for i in range(n):
        p.produce(topic, key=b"k", value=b"v%d" % i, partition=partition)
    assert p.flush(30) == 0


def coordinator_served(broker):
    return 26 in raw_api_versions(broker.port)  # EndTxn


needs_coordinator = pytest.mark.usefixtures("require_coordinator")


@pytest.fixture
def require_coordinator(module_broker):
    if not coordinator_served(module_broker):
        pytest.skip("the transaction coordinator is not wired into the broker yet")


def txn_producer(bootstrap, txn_id):
    from confluent_kafka import Producer
    p = Producer({"bootstrap.servers": bootstrap, "transactional.id": txn_id,
                  "transaction.timeout.ms": 60000})
    p.init_transactions(30)
    return p


# ------------------------------------------------------------ no coordinator needed


def test_describe_producers_idempotent(module_broker):
    b = module_broker.bootstrap
    t = unique_topic("dp")
    confluent_create_topic(b, t, 2)
    idempotent_produce(b, t, 5)
    rows = ok_json("txn", "describe-producers", "--topic", t, "--partition", 0, bootstrap=b)
    assert len(rows) == 1, rows
    p = rows[0]
    assert p["producer_id"] >= 0 and p["producer_epoch"] == 0
    assert p["last_sequence"] == 4
    assert p["coordinator_epoch"] == -1
    assert p["current_txn_start_offset"] is None
    assert p["last_timestamp"] > 0
    # the table
    out = ok("txn", "describe-producers", "--topic", t, "--partition", 0, bootstrap=b).stdout
    lines = out.splitlines()
    assert lines[0].split() == ["PRODUCER-ID", "EPOCH", "COORDINATOR-EPOCH", "LAST-SEQUENCE",
                                "LAST-TIMESTAMP", "TXN-START-OFFSET"]
    assert lines[1].split()[0] == str(p["producer_id"]) and lines[1].split()[-1] == "None"
    # the other partition has no producers
    assert ok_json("txn", "describe-producers", "--topic", t, "--partition", 1,
                   bootstrap=b) == []
    # Kafka's tool: same data, Kafka's headers and tab-separated columns
    r = kafka_txn(b, "describe-producers", "--topic", t, "--partition", 0)
    assert r.returncode == 0, r.stderr
    k = kafka_rows(r.stdout)
    assert k[0] == KAFKA_PRODUCERS_HEADER
    assert k[1] == [str(p["producer_id"]), "0", "-1", "4", str(p["last_timestamp"]), "None"]


def test_describe_producers_errors(module_broker):
    b = module_broker.bootstrap
    t = unique_topic("dpe")
    confluent_create_topic(b, t, 1)
    r = run("txn", "describe-producers", "--topic", "no-such-" + t, "--partition", 0,
            bootstrap=b)
    assert r.returncode == 1 and "nknown topic" in r.stderr, r.stderr
    # asked of the broker directly: the partition answers UNKNOWN_TOPIC_OR_PARTITION
    for topic, part in (("no-such-" + t, 0), (t, 7)):
        r = run("txn", "describe-producers", "--topic", topic, "--partition", part,
                "--broker-id", 1, bootstrap=b)
        assert r.returncode == 1, r.stdout
        assert "failed to describe producers" in r.stderr and "nknown topic" in r.stderr, \
            r.stderr


def test_list_and_find_hanging_without_transactions(module_broker):
    b = module_broker.bootstrap
    t = unique_topic("fh")
    confluent_create_topic(b, t, 1)
    idempotent_produce(b, t, 3)
    # ListTransactions is answered (empty, or the ids of other tests)
    assert isinstance(ok_json("txn", "list", bootstrap=b), list)
    r = kafka_txn(b, "list")
    assert r.returncode == 0, r.stderr
    assert kafka_rows(r.stdout)[0] == ["TransactionalId", "Coordinator", "ProducerId",
                                       "TransactionState"]
    # an idempotent producer has no open transaction: nothing hangs
    assert ok_json("txn", "find-hanging", "--topic", t, "--max-transaction-timeout", 0,
                   bootstrap=b) == []
    # the whole broker's partitions (other tests' results may be listed)
    assert isinstance(ok_json("txn", "find-hanging", "--broker-id", 1, bootstrap=b), list)
    r = kafka_txn(b, "find-hanging", "--topic", t)
    assert r.returncode == 0, r.stderr
    assert kafka_rows(r.stdout) == [["Topic", "Partition", "ProducerId", "ProducerEpoch",
                                     "CoordinatorEpoch", "StartOffset", "LastTimestamp",
                                     "Duration(min)"]]


def test_usage_errors(module_broker):
    b = module_broker.bootstrap
    cases = [
        (["txn", "describe"], "--transactional-id"),
        (["txn", "describe-producers", "--topic", "x"], "--partition"),
        (["txn", "abort", "--topic", "x", "--partition", 0], "--start-offset"),
        (["txn", "abort", "--topic", "x", "--partition", 0, "--producer-id", 5],
         "--producer-epoch"),
        (["txn", "abort", "--topic", "x", "--partition", 0, "--producer-id", 5,
          "--producer-epoch", 0], "--coordinator-epoch"),
        (["txn", "find-hanging"], "--broker-id"),
        (["txn", "find-hanging", "--broker-id", 1, "--partition", 0], "--topic"),
        (["txn", "nope"], "unknown verb"),
    ]
    for args, word in cases:
        r = run(*args, bootstrap=b)
        assert r.returncode == 2 and word in r.stderr, (args, r.stderr)
    r = kafka_txn(b)
    assert r.returncode == 2 and "command is required" in r.stderr
    r = kafka_txn(b, "frobnicate")
    assert r.returncode == 2 and "invalid choice" in r.stderr
    r = kafka_txn(b, "abort", "--topic", "x", "--partition", 0)
    assert r.returncode == 2
    assert "describe-producers --topic T --partition N" in ok("txn", "--help").stdout


def test_abort_start_offset_without_open_transaction(module_broker):
    b = module_broker.bootstrap
    t = unique_topic("ab")
    confluent_create_topic(b, t, 1)
    idempotent_produce(b, t, 2)
    r = run("txn", "abort", "--topic", t, "--partition", 0, "--start-offset", 0, bootstrap=b)
    assert r.returncode == 1
    assert f"could not find any open transactions starting at offset 0 on partition {t}-0" \
        in r.stderr


def test_describe_transactions_unknown_id(module_broker):
    b = module_broker.bootstrap
    r = run("txn", "describe", "--transactional-id", unique_topic("nosuchtxn"), bootstrap=b)
    assert r.returncode == 1
    # no coordinator yet: COORDINATOR_NOT_AVAILABLE; with one: no such id
    assert "failed to describe transaction state" in r.stderr or "coordinator" in r.stderr, \
        r.stderr


def test_dump_log_producer_snapshot(broker):
    b = broker.bootstrap
    t = unique_topic("snap")
    confluent_create_topic(b, t, 1)
    idempotent_produce(b, t, 5)
    pid = ok_json("txn", "describe-producers", "--topic", t, "--partition", 0,
                  bootstrap=b)[0]["producer_id"]
    broker.stop()  # a clean stop writes the producer state snapshot
    d = os.path.join(broker.data_dir, f"{t}-0")
    snaps = sorted(f for f in os.listdir(d) if f.endswith(".snapshot"))
    assert snaps, os.listdir(d)
    path = os.path.join(d, snaps[-1])
    out = ok("dump-log", path).stdout
    assert "version: 1" in out and "crcValid: true" in out and "count: 1" in out, out
    assert (f"producerId: {pid} producerEpoch: 0 coordinatorEpoch: -1 "
            f"currentTxnFirstOffset: -1") in out, out
    assert "lastSequence: 4 lastOffset: 4" in out, out
    doc = json.loads(ok("--format", "json", "dump-log", path).stdout)
    assert doc[0]["type"] == "snapshot" and doc[0]["crc_valid"] is True
    assert doc[0]["producers"][0]["producer_id"] == pid
    assert doc[0]["producers"][0]["last_sequence"] == 4
    assert doc[0]["problems"] == []
    # a damaged snapshot: CRC mismatch reported, exit 1
    data = bytearray(open(path, "rb").read())
    data[-1] ^= 0xFF
    bad = os.path.join(d, "00000000000000000999.snapshot")
    open(bad, "wb").write(bytes(data))
    r = run("dump-log", bad)
    assert r.returncode == 1 and "crcValid: false" in r.stdout and "CRC-32C mismatch" in r.stdout


def test_dump_log_txnindex(tmp_path):
    entry = struct.Struct(">hqqqq")
    path = tmp_path / "00000000000000000000.txnindex"
    path.write_bytes(entry.pack(0, 7, 0, 9, 3) + entry.pack(0, 8, 12, 20, 12))
    out = ok("dump-log", str(path)).stdout
    assert ("version: 0 producerId: 7 firstOffset: 0 lastOffset: 9 lastStableOffset: 3"
            in out), out
    assert "version: 0 producerId: 8 firstOffset: 12 lastOffset: 20 lastStableOffset: 12" in out
    doc = json.loads(ok("--format", "json", "dump-log", str(path)).stdout)
    assert doc[0]["type"] == "txnindex"
    assert doc[0]["aborted_transactions"][1] == {"version": 0, "producer_id": 8,
                                                 "first_offset": 12, "last_offset": 20,
                                                 "last_stable_offset": 12}
    # a torn tail is a problem at its position
    path.write_bytes(entry.pack(0, 7, 0, 9, 3) + b"\x00\x00\x01")
    r = run("dump-log", str(path))
    assert r.returncode == 1 and "at position 34: torn entry" in r.stdout, r.stdout


# ------------------------------------------------------------ with the coordinator


@needs_coordinator
def test_committed_transaction_tools(module_broker):
    b = module_broker.bootstrap
    t = unique_topic("txc")
    txn_id = unique_topic("tid")
    confluent_create_topic(b, t, 2)
    p = txn_producer(b, txn_id)
    p.begin_transaction()
    for i in range(3):
        p.produce(t, value=b"m%d" % i, partition=0)
    p.commit_transaction(30)

    def listed():
        return [x for x in ok_json("txn", "list", bootstrap=b)
                if x["transactional_id"] == txn_id]
    wait_until(lambda: listed() and listed()[0]["state"] == "CompleteCommit", 30,
               what="CompleteCommit in txn list")
    lst = listed()[0]
    assert lst["coordinator"] == 1
    assert ok_json("txn", "list", "--state", "Ongoing", bootstrap=b) == [] or all(
        x["transactional_id"] != txn_id
        for x in ok_json("txn", "list", "--state", "Ongoing", bootstrap=b))
    assert [x["transactional_id"] for x in ok_json(
        "txn", "list", "--producer-id", lst["producer_id"], bootstrap=b)] == [txn_id]

    d = ok_json("txn", "describe", "--transactional-id", txn_id, bootstrap=b)[0]
    assert d["state"] == "CompleteCommit" and d["producer_id"] == lst["producer_id"]
    assert d["coordinator"] == 1 and d["timeout_ms"] == 60000
    r = kafka_txn(b, "describe", "--transactional-id", txn_id)
    assert r.returncode == 0, r.stderr
    k = kafka_rows(r.stdout)
    assert k[0][:5] == ["CoordinatorId", "TransactionalId", "ProducerId", "ProducerEpoch",
                        "TransactionState"]
    assert k[1][1] == txn_id and k[1][4] == "CompleteCommit"

    prods = ok_json("txn", "describe-producers", "--topic", t, "--partition", 0, bootstrap=b)
    mine = [x for x in prods if x["producer_id"] == lst["producer_id"]]
    assert mine and mine[0]["current_txn_start_offset"] is None
    assert mine[0]["coordinator_epoch"] >= 0  # set by the COMMIT marker

    seg = os.path.join(module_broker.data_dir, f"{t}-0", "00000000000000000000.log")
    out = ok("dump-log", "--deep", seg).stdout
    assert "endTxnMarker: COMMIT coordinatorEpoch:" in out, out
    assert "isTransactional: true isControl: true" in out
    assert f"producerId: {lst['producer_id']}" in out
    p.flush(5)


@needs_coordinator
def test_ongoing_transaction_abort(module_broker):
    b = module_broker.bootstrap
    t = unique_topic("txa")
    txn_id = unique_topic("tida")
    confluent_create_topic(b, t, 1)
    p = txn_producer(b, txn_id)
    p.begin_transaction()
    p.produce(t, value=b"open", partition=0)
    assert p.flush(30) == 0

    d = ok_json("txn", "describe", "--transactional-id", txn_id, bootstrap=b)[0]
    assert d["state"] == "Ongoing" and d["partitions"] == f"{t}-0"
    assert d["start_time_ms"] is not None and d["duration_ms"] >= 0
    prods = ok_json("txn", "describe-producers", "--topic", t, "--partition", 0, bootstrap=b)
    assert [x["current_txn_start_offset"] for x in prods] == [0]
    # the coordinator still expects a marker there: not hanging
    assert ok_json("txn", "find-hanging", "--topic", t, "--max-transaction-timeout", 0,
                   bootstrap=b) == []

    # abort it by hand, the way an operator ends a hanging transaction
    r = kafka_txn(b, "abort", "--topic", t, "--partition", 0, "--start-offset", 0)
    assert r.returncode == 0, r.stderr
    prods = ok_json("txn", "describe-producers", "--topic", t, "--partition", 0, bootstrap=b)
    assert [x["current_txn_start_offset"] for x in prods] == [None]
    d = os.path.join(module_broker.data_dir, f"{t}-0")
    out = ok("dump-log", "--deep", os.path.join(d, "00000000000000000000.log")).stdout
    assert "endTxnMarker: ABORT" in out, out
    txnidx = os.path.join(d, "00000000000000000000.txnindex")
    wait_until(lambda: os.path.exists(txnidx) and os.path.getsize(txnidx) >= 34, 10,
               what="the aborted transaction in the .txnindex")
    out = ok("dump-log", txnidx).stdout
    assert f"producerId: {prods[0]['producer_id']} firstOffset: 0 lastOffset: 1" in out, out
    try:
        p.abort_transaction(30)  # the coordinator's own ABORT after ours is harmless
    except Exception:
        pass


def test_describe_producers_on_every_replica(cluster):
    # Kafka answers DescribeProducers from any replica's log (leader or
    # follower): kafka-transactions.sh describe-producers --broker-id N
    t = unique_topic("dpr")
    cluster.create_topic(t, partitions=1, rf=3)
    from confluent_kafka import Producer
    p = Producer({"bootstrap.servers": cluster.bootstrap, "enable.idempotence": True,
                  "acks": "all"})
    for i in range(5):
        p.produce(t, value=b"v%d" % i, partition=0)
    assert p.flush(30) == 0
    for node in cluster.broker_ids:
        def seq():
            rows = ok_json("txn", "describe-producers", "--topic", t, "--partition", 0,
                           "--broker-id", node, bootstrap=cluster.bootstrap)
            return [r["last_sequence"] for r in rows]
        wait_until(lambda: seq() == [4], 30, what=f"producer state on broker {node}")
        r = kafka_txn(cluster.bootstrap, "find-hanging", "--broker-id", node)
        assert r.returncode == 0 and len(kafka_rows(r.stdout)) == 1, (r.stdout, r.stderr)
