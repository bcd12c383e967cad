"""`make run`'s config (config/server.properties) starts a working broker.

The file is used as shipped; only the ports, the voters naming the controller
port, and the data dir move (with --override, as Kafka allows), so a test never
binds 9092 or writes ./data.  kcat then produces and consumes on it.
"""

import json
import os
import subprocess

import pytest

from conftest import REPO, unique_topic

CONFIG = os.path.join(REPO, "config", "server.properties")


def read_props(path):
    props = {}
    with open(path) as f:
        for line in f:
            line = line.strip()
            if line and not line.startswith(("#", "!")) and "=" in line:
                k, v = line.split("=", 1)
                props[k.strip()] = v.strip()
    return props


def test_make_run_config_serves_kcat(broker_factory):
    if not os.path.exists(CONFIG):
        pytest.fail(f"{CONFIG} is missing (make run needs it)")
    props = read_props(CONFIG)
    assert "9092" in props.get("listeners", "9092"), (
        f"make run should listen on localhost:9092; listeners={props.get('listeners')}")
    b = broker_factory(config_path=CONFIG, node_id=int(props.get("node.id", "1")))
    topic = unique_topic("makerun")
    base = ["kcat", "-b", b.bootstrap, "-X", "socket.timeout.ms=10000"]
    lines = [f"k{i}\tmake-run value {i}" for i in range(20)]
    # auto-creation may be off in the shipped config: create via the first produce
    # only if it is on, otherwise with partition-less metadata + AdminClient.
    if props.get("auto.create.topics.enable", "true").lower() == "false":
        from conftest import confluent_create_topic
        confluent_create_topic(b.bootstrap, topic, 1)
    r = subprocess.run(base + ["-P", "-t", topic, "-p", "0", "-K", "\t"],
                       input=("\n".join(lines) + "\n").encode(), capture_output=True, timeout=60)
    assert r.returncode == 0, f"kcat -P failed: {r.stderr.decode(errors='replace')[-2000:]}"
    r = subprocess.run(base + ["-C", "-t", topic, "-p", "0", "-o", "beginning", "-e", "-J"],
                       capture_output=True, timeout=60)
    assert r.returncode == 0, f"kcat -C failed: {r.stderr.decode(errors='replace')[-2000:]}"
    recs = [json.loads(x) for x in r.stdout.decode().splitlines() if x.strip()]
    assert [(x["offset"], x["key"], x["payload"]) for x in recs] == [
        (i, f"k{i}", f"make-run value {i}") for i in range(20)]
    # The broker wrote under our temp dir, not ./data.
    assert any(n.startswith(topic) for n in os.listdir(b.data_dir)), (
        f"no {topic}-* partition dir in {b.data_dir}: {os.listdir(b.data_dir)}")
