"""samsa-connect's Single Message Transforms, predicates and error handling, driven
over REST as a Kafka Connect user would (fixtures from test_connect.py):

  - a file source with HoistField + InsertField + InsertHeader + RegexRouter lands
    struct records (with their schema) in the routed topic;
  - a sink with Filter + HasHeaderKey predicate (and a negated TopicNameMatches)
    writes only the records it should;
  - a poison record (invalid JSON for a JsonConverter sink) goes to the dead letter
    queue with Kafka's __connect.errors.* headers while the rest reach the sink file;
    with errors.tolerance=none the task is FAILED with a trace;
  - an invalid transform config is refused at create and by config/validate, naming
    the key.
"""

import json

from conftest import unique_topic, wait_until
from test_connect import (  # noqa: F401  (workers is a fixture)
    BROKER_CONFIG, FILE_SINK, JSON_CONV, STRING_CONV, consume_all, file_sink, file_source,
    produce, read_lines, workers)

T = "org.apache.kafka.connect.transforms."


def test_source_chain_hoist_insert_route(workers, module_broker, tmp_path):
    bs = module_broker.bootstrap
    src = tmp_path / "in.txt"
    lines = ["alpha", "beta", "gamma"]
    src.write_text("".join(l + "\n" for l in lines))
    base = unique_topic("smtsrc")
    raw, routed = f"{base}-raw", f"{base}-routed"
    w = workers().start()
    cfg = file_source("chain", str(src), raw, **{
        "value.converter": JSON_CONV, "value.converter.schemas.enable": "true",
        "transforms": "hoist,insert,hdr,route",
        "transforms.hoist.type": T + "HoistField$Value", "transforms.hoist.field": "line",
        "transforms.insert.type": "InsertField$Value",
        "transforms.insert.static.field": "origin", "transforms.insert.static.value": "file",
        "transforms.insert.topic.field": "src_topic",
        "transforms.hdr.type": "InsertHeader", "transforms.hdr.header": "via",
        "transforms.hdr.value.literal": "samsa",
        "transforms.route.type": T + "RegexRouter",
        "transforms.route.regex": "(.*)-raw", "transforms.route.replacement": "$1-routed"})
    st, doc = w.req("POST", "/connectors", cfg)
    assert st == 201, doc
    got = consume_all(bs, routed, expect=3)
    schema = {"type": "struct", "optional": False, "fields": [
        # Kafka's order: topic, partition, offset, timestamp, then the static field
        {"field": "line", "type": "string", "optional": False},
        {"field": "src_topic", "type": "string", "optional": True},
        {"field": "origin", "type": "string", "optional": True}]}
    assert [json.loads(m.value()) for m in got] == [
        {"schema": schema, "payload": {"line": l, "origin": "file", "src_topic": raw}} for l in lines]
    assert all(m.headers() == [("via", b"samsa")] for m in got)
    # nothing went to the unrouted topic, and the connector reports the routed one
    topics = w.ok("GET", "/connectors/chain/topics")["chain"]["topics"]
    assert topics == [routed]


def test_sink_filter_with_predicates(workers, module_broker, tmp_path):
    bs = module_broker.bootstrap
    topic = unique_topic("smtsink")
    produce(bs, topic, [(None, b"keep-1", None), (None, b"drop-1", [("skip", b"yes")]),
                        (None, b"keep-2", [("other", b"x")]), (None, b"drop-2", [("skip", None)]),
                        (None, b"keep-3", None)])
    w = workers().start()
    out = tmp_path / "out.txt"
    cfg = file_sink("filtered", str(out), topic, **{
        "transforms": "drop,never",
        "transforms.drop.type": T + "Filter", "transforms.drop.predicate": "hasSkip",
        # negated: applies to records whose topic does NOT match, i.e. none here
        "transforms.never.type": "Filter", "transforms.never.predicate": "mine",
        "transforms.never.negate": "true",
        "predicates": "hasSkip,mine",
        "predicates.hasSkip.type": T + "predicates.HasHeaderKey", "predicates.hasSkip.name": "skip",
        "predicates.mine.type": "TopicNameMatches", "predicates.mine.pattern": "smtsink.*"})
    assert w.req("POST", "/connectors", cfg)[0] == 201
    wait_until(lambda: len(read_lines(out)) >= 3, what="the kept records")
    w.wait_state("filtered", "RUNNING", ["RUNNING"])
    assert read_lines(out) == ["keep-1", "keep-2", "keep-3"]


def test_poison_record_goes_to_dlq_and_none_fails(workers, module_broker, tmp_path):
    bs = module_broker.bootstrap
    topic, dlq = unique_topic("poison"), unique_topic("dlq")
    produce(bs, topic, [(b"k0", b'{"a":1}', None), (b"k1", b"2", None),
                        (b"k2", b"not json{", [("orig", b"h")]), (b"k3", b'"x"', None)])
    w = workers().start()
    out = tmp_path / "out.txt"
    cfg = file_sink("dlqsink", str(out), topic, **{
        "value.converter": JSON_CONV, "value.converter.schemas.enable": "false",
        "key.converter": STRING_CONV,
        "errors.tolerance": "all", "errors.log.enable": "true", "errors.log.include.messages": "true",
        "errors.deadletterqueue.topic.name": dlq,
        "errors.deadletterqueue.topic.replication.factor": "1",
        "errors.deadletterqueue.context.headers.enable": "true"})
    assert w.req("POST", "/connectors", cfg)[0] == 201
    wait_until(lambda: len(read_lines(out)) >= 3, what="the good records in the sink file")
    assert read_lines(out) == ['{"a":1}', "2", "x"]
    got = consume_all(bs, dlq, expect=1)
    assert len(got) == 1
    m = got[0]
    assert m.key() == b"k2" and m.value() == b"not json{"
    h = {}
    for k, v in m.headers():
        h[k] = v.decode() if v is not None else None
    assert h["orig"] == "h"  # the original headers are kept
    assert h["__connect.errors.topic"] == topic
    assert h["__connect.errors.partition"] == "0"
    assert h["__connect.errors.offset"] == "2"
    assert h["__connect.errors.connector.name"] == "dlqsink"
    assert h["__connect.errors.task.id"] == "0"
    assert h["__connect.errors.stage"] == "VALUE_CONVERTER"
    assert h["__connect.errors.class.name"] == JSON_CONV
    assert h["__connect.errors.exception.class.name"] == "org.apache.kafka.connect.errors.DataException"
    assert "Converting byte[] to Kafka Connect data failed" in h["__connect.errors.exception.message"]
    assert h["__connect.errors.exception.stacktrace"]
    assert "Error encountered in task dlqsink-0. Executing stage 'VALUE_CONVERTER'" in w.log_text()

    # The same topic with errors.tolerance=none: the task fails on the poison record.
    out2 = tmp_path / "out2.txt"
    strict = file_sink("strict", str(out2), topic, **{
        "value.converter": JSON_CONV, "value.converter.schemas.enable": "false"})
    assert w.req("POST", "/connectors", strict)[0] == 201
    s = w.wait_state("strict", "RUNNING", ["FAILED"])
    trace = s["tasks"][0]["trace"]
    assert "Tolerance exceeded in error handler" in trace and "VALUE_CONVERTER" in trace
    # A transform failure is a failure too: ExtractField on a non-struct, tolerated -> DLQ.
    out3 = tmp_path / "out3.txt"
    xf = file_sink("xfail", str(out3), topic, **{
        "value.converter": JSON_CONV, "value.converter.schemas.enable": "false",
        "errors.tolerance": "all", "errors.deadletterqueue.topic.name": dlq,
        "errors.deadletterqueue.topic.replication.factor": "1",
        "errors.deadletterqueue.context.headers.enable": "true",
        "transforms": "ex", "transforms.ex.type": "ExtractField$Value", "transforms.ex.field": "a"})
    assert w.req("POST", "/connectors", xf)[0] == 201
    wait_until(lambda: len(read_lines(out3)) >= 1, what="the extracted field")
    got = consume_all(bs, dlq, expect=4)  # + the poison record and two non-maps
    stages = sorted(dict(m.headers())["__connect.errors.stage"].decode() for m in got[1:])
    assert stages == ["TRANSFORMATION", "TRANSFORMATION", "VALUE_CONVERTER"]
    assert read_lines(out3) == ["1"]


def test_invalid_transform_config_is_refused(workers, tmp_path):
    w = workers().start()
    everything = w.ok("GET", "/connector-plugins?connectorsOnly=false")
    kinds = {p["class"]: p["type"] for p in everything}
    assert kinds[T + "InsertField$Value"] == "transformation"
    assert kinds[T + "RegexRouter"] == "transformation"
    assert kinds[T + "predicates.TopicNameMatches"] == "predicate"
    assert sum(1 for t in kinds.values() if t == "transformation") == 24
    assert sum(1 for t in kinds.values() if t == "predicate") == 3
    base = file_source("bad", str(tmp_path / "f"), "t")["config"]
    cases = [
        ({"transforms": "x"}, "transforms.x.type"),
        ({"transforms": "x", "transforms.x.type": "InsertField"}, "transforms.x.type"),
        ({"transforms": "x", "transforms.x.type": "RegexRouter", "transforms.x.regex": "(",
          "transforms.x.replacement": "y"}, "transforms.x.regex"),
        ({"transforms": "x", "transforms.x.type": "Filter", "transforms.x.predicate": "p"},
         "transforms.x.predicate"),
        ({"transforms": "x", "transforms.x.type": "Cast$Value", "transforms.x.spec": "a:money"},
         "transforms.x.spec"),
        ({"predicates": "p", "predicates.p.type": "TopicNameMatches"}, "predicates.p.pattern"),
    ]
    for extra, key in cases:
        cfg = dict(base, **extra)
        st, doc = w.req("POST", "/connectors", {"name": "bad", "config": cfg})
        assert st == 400 and doc["error_code"] == 400 and key in doc["message"], (extra, doc)
        st, doc = w.req("PUT", f"/connector-plugins/{base['connector.class']}/config/validate",
                        dict(cfg, name="bad"))
        assert st == 200 and doc["error_count"] == 1, doc
        errs = {c["value"]["name"]: c["value"]["errors"] for c in doc["configs"] if c["value"]["errors"]}
        assert list(errs) == [key], errs
    assert w.ok("GET", "/connectors") == []
    # a sink whose DLQ is one of its own topics is refused too
    st, doc = w.req("POST", "/connectors", file_sink("s", str(tmp_path / "o"), "a,b", **{
        "errors.deadletterqueue.topic.name": "b"}))
    assert st == 400 and "The DLQ topic 'b' may not be included" in doc["message"], doc


def test_source_produce_failure_retried_then_failed_or_skipped(workers, module_broker, tmp_path):
    """A record the producer refuses (larger than message.max.bytes) is retried with
    backoff for errors.retry.timeout, then fails the task (tolerance none) or is skipped
    while the other lines flow (tolerance all)."""
    import time
    bs = module_broker.bootstrap
    src = tmp_path / "in.txt"
    src.write_text("small-1\n" + "x" * 5000 + "\nsmall-2\n")
    w = workers().start()
    topic = unique_topic("bigsrc")
    cfg = file_source("big", str(src), topic, **{
        "producer.override.message.max.bytes": "1000",
        "errors.retry.timeout": "1500", "errors.retry.delay.max.ms": "400"})
    t0 = time.monotonic()
    assert w.req("POST", "/connectors", cfg)[0] == 201
    s = w.wait_state("big", "RUNNING", ["FAILED"])
    took = time.monotonic() - t0
    assert "Failed to produce" in s["tasks"][0]["trace"], s
    assert took >= 1.4, took  # it retried for errors.retry.timeout first
    # backoff 300, 400, 400, (400 cut to the deadline) ms: at least 3 retries logged
    assert w.log_text().count(f"producing to {topic} failed") >= 3, w.log_tail()

    topic2 = unique_topic("bigsrc-all")
    cfg2 = file_source("big2", str(src), topic2, **{
        "producer.override.message.max.bytes": "1000", "errors.tolerance": "all",
        "errors.log.enable": "true"})
    assert w.req("POST", "/connectors", cfg2)[0] == 201
    got = consume_all(bs, topic2, expect=2)
    assert [m.value() for m in got] == [b"small-1", b"small-2"]
    w.wait_state("big2", "RUNNING", ["RUNNING"])
    assert "Executing stage 'KAFKA_PRODUCE'" in w.log_text()
