"""kcat (librdkafka 2.0.2 command-line client) against samsa-broker.

kcat has no admin commands, so topics are made with confluent's AdminClient or
by auto-creation (auto.create.topics.enable=true, num.partitions=3 in the
harness config).  Covers: metadata listing (-L), keyed produce with headers to
explicit partitions with every -z codec (each checked on the wire), group-less
partition consumption (-C -p -o beginning -e) giving back keys, values and
headers byte-identical in offset order, offset queries (-Q) for earliest (-2),
latest (-1) and by timestamp, everything intact after a broker restart, and
deletion (through AdminClient).
"""

import json
import subprocess

from conftest import (CODEC_IDS, codecs_served, confluent_admin, confluent_create_topic,
                      confluent_topic_names, unique_topic, wait_until)

CODECS = ["none", "gzip", "snappy", "lz4", "zstd"]
PARTITIONS = 3
PER_RUN = 25
KCAT_TIMEOUT_S = 60


def kcat(bootstrap, *args, stdin=None):
    cmd = ["kcat", "-b", bootstrap, "-X", "socket.timeout.ms=10000", *args]
    r = subprocess.run(cmd, input=stdin, capture_output=True, timeout=KCAT_TIMEOUT_S)
    assert r.returncode == 0, (f"{' '.join(cmd)} exited {r.returncode}\n"
                               f"stderr: {r.stderr.decode(errors='replace')[-3000:]}")
    return r.stdout.decode()


def kcat_produce(bootstrap, topic, partition, codec, lines, headers):
    """lines: [(key, value)] text without tab/newline; headers: [(k, v)] for all."""
    args = ["-P", "-t", topic, "-p", str(partition), "-K", "\t", "-z", codec,
            "-X", "linger.ms=50", "-X", "acks=all"]
    for k, v in headers:
        args += ["-H", f"{k}={v}"]
    data = "".join(f"{k}\t{v}\n" for k, v in lines).encode()
    kcat(bootstrap, *args, stdin=data)


def kcat_consume(bootstrap, topic, partition):
    out = kcat(bootstrap, "-C", "-t", topic, "-p", str(partition), "-o", "beginning", "-e",
               "-J", "-X", "fetch.wait.max.ms=100")
    return [json.loads(line) for line in out.splitlines() if line.strip()]


def kcat_query(bootstrap, topic, partition, ts):
    """kcat -Q: the offset for timestamp ts (-1 latest, -2 earliest)."""
    out = kcat(bootstrap, "-Q", "-t", f"{topic}:{partition}:{ts}").strip()
    # "<topic> [<partition>] offset <n>"
    parts = out.split()
    assert parts[:2] == [topic, f"[{partition}]"] and parts[2] == "offset", f"kcat -Q said {out!r}"
    return int(parts[3])


def test_metadata_listing(broker):
    topic = unique_topic("kcat-md")
    confluent_create_topic(broker.bootstrap, topic, PARTITIONS)
    md = json.loads(kcat(broker.bootstrap, "-L", "-J"))
    assert [b["name"] for b in md["brokers"]] == [broker.bootstrap], md["brokers"]
    topics = {t["topic"]: t for t in md["topics"]}
    assert topic in topics, f"{topic} missing from kcat -L: {sorted(topics)}"
    parts = topics[topic]["partitions"]
    assert sorted(p["partition"] for p in parts) == list(range(PARTITIONS))
    assert all(p["leader"] == 1 for p in parts), parts


def test_produce_consume_all_codecs_query_delete(broker):
    topic = unique_topic("kcat")
    admin = confluent_create_topic(broker.bootstrap, topic, PARTITIONS)

    want = {p: [] for p in range(PARTITIONS)}  # partition -> [(key, value, headers)]
    for ci, codec in enumerate(CODECS):
        for part in range(PARTITIONS):
            lines = [(f"{codec}-p{part}-k{i}", f"kcat {codec} ünï {i} " * 12 + "end")
                     for i in range(PER_RUN)]
            headers = [("codec", codec), ("run", str(ci)), ("dup", "x"), ("dup", "y"),
                       ("empty", "")]
            kcat_produce(broker.bootstrap, topic, part, codec, lines, headers)
            flat = [x for kv in headers for x in kv]
            want[part] += [(k, v, flat) for k, v in lines]

    seen = codecs_served(broker.port, topic, range(PARTITIONS))
    assert seen == {CODEC_IDS[c] for c in CODECS}, f"codecs on the wire: {sorted(seen)}"

    got = {}
    for part in range(PARTITIONS):
        recs = kcat_consume(broker.bootstrap, topic, part)
        got[part] = recs
        assert [r["offset"] for r in recs] == list(range(len(want[part]))), (
            f"partition {part}: offsets {[r['offset'] for r in recs][:10]}... for"
            f" {len(want[part])} messages")
        for w, r in zip(want[part], recs):
            where = f"partition {part} offset {r['offset']}"
            assert r["partition"] == part, where
            assert r["key"] == w[0], where + f": key {r['key']!r}"
            assert r["payload"] == w[1], where + ": payload differs"
            assert r["headers"] == w[2], where + f": headers {r['headers']}"
            assert r["tstype"] == "create", where + f": tstype {r['tstype']}"

    for part in range(PARTITIONS):
        n = len(want[part])
        assert kcat_query(broker.bootstrap, topic, part, -2) == 0, f"earliest of partition {part}"
        assert kcat_query(broker.bootstrap, topic, part, -1) == n, f"latest of partition {part}"
        recs = got[part]
        for r in recs[::10] + [recs[-1]]:
            # first offset whose timestamp >= ts (several may share a millisecond)
            expect = min(x["offset"] for x in recs if x["ts"] >= r["ts"])
            assert kcat_query(broker.bootstrap, topic, part, r["ts"]) == expect, (
                f"kcat -Q {topic}:{part}:{r['ts']}")
        assert kcat_query(broker.bootstrap, topic, part, recs[-1]["ts"] + 1) == -1, (
            "timestamp after the last message should give offset -1 (end)")

    # Everything is still there, unchanged, after a graceful restart.
    broker.restart()
    for part in range(PARTITIONS):
        assert kcat_consume(broker.bootstrap, topic, part) == got[part], (
            f"partition {part} differs after restart")
    admin = confluent_admin(broker.bootstrap)

    admin.delete_topics([topic], operation_timeout=30)[topic].result(timeout=30)
    wait_until(lambda: topic not in confluent_topic_names(broker.bootstrap), 30,
               what=f"{topic} gone")
    md = json.loads(kcat(broker.bootstrap, "-L", "-J"))
    assert topic not in {t["topic"] for t in md["topics"]}


def test_auto_create_on_produce(broker):
    topic = unique_topic("kcat-auto")
    # No -p: librdkafka asks Metadata for the topic, the broker creates it.
    kcat(broker.bootstrap, "-P", "-t", topic, "-K", "\t", "-X", "topic.metadata.refresh.interval.ms=500",
         stdin=b"".join(b"k%d\tv%d\n" % (i, i) for i in range(30)))
    md = confluent_admin(broker.bootstrap).list_topics(topic=topic, timeout=10).topics[topic]
    assert md.error is None and len(md.partitions) == 3, f"auto-created {topic}: {md.partitions}"
    total = []
    for part in range(3):
        total += [(r["key"], r["payload"]) for r in kcat_consume(broker.bootstrap, topic, part)]
    assert sorted(total) == sorted((f"k{i}", f"v{i}") for i in range(30))
