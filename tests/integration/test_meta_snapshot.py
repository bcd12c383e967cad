"""
Metadata snapshots (KIP-630 checkpoint files of the metadata image): a node
writes one after metadata.log.max.record.bytes.between.snapshots of records,
starts from the newest and replays only the log after it. Records the
snapshot covers are not replayed again, so anything a snapshot forgot would be
missing after a restart: the tests below restart and compare.
"""
import glob
import os
import re
import subprocess

from cluster import metadata_raw
from conftest import BROKER_BIN, SAMSA_CLI, unique_topic, wait_until

SNAP = {"metadata.log.max.record.bytes.between.snapshots": "1"}  # after every change


def cli(b, *args):
    r = subprocess.run([SAMSA_CLI, "-b", b.bootstrap, *args], capture_output=True, text=True,
                       timeout=30)
    assert r.returncode == 0, f"samsa {' '.join(args)}: {r.stderr}"
    return r.stdout


def checkpoints(b):
    return sorted(glob.glob(os.path.join(b.data_dir, "__cluster_metadata-0", "*.checkpoint")))


def state(b):
    """What the image holds, as clients and the tool see it."""
    md = metadata_raw(b.port)
    brokers, topics = md["brokers"], md["topics"]
    out = {"brokers": sorted(brokers), "topics": {}}
    for name in sorted(topics):
        if name.startswith("__"):
            continue
        out["topics"][name] = (topics[name], cli(b, "config", "get", "topic", name, "--changed"))
    out["broker_configs"] = cli(b, "config", "get", "broker", "1", "--changed")
    return out


def test_restart_from_snapshot_restores_everything(broker_factory):
    b = broker_factory(overrides=SNAP)
    keep, gone, grown = unique_topic("keep"), unique_topic("gone"), unique_topic("grown")
    cli(b, "topic", "create", keep, "-p", "3", "-c", "retention.ms=1234", "-c",
        "cleanup.policy=compact")
    cli(b, "topic", "create", gone, "-p", "1")
    cli(b, "topic", "create", grown, "-p", "1")
    cli(b, "topic", "alter", grown, "--partitions", "4")
    cli(b, "topic", "delete", gone)
    cli(b, "config", "set", "broker", "1", "log.retention.bytes=987654")
    wait_until(lambda: checkpoints(b), what="a snapshot file")
    before = state(b)
    assert set(before["topics"]) == {keep, grown}
    b.stop()
    snaps = checkpoints(b)
    assert len(snaps) == 1, f"older snapshots are removed: {snaps}"
    end = int(re.match(r"(\d{20})-(\d{10})\.checkpoint", os.path.basename(snaps[0])).group(1))
    assert end > 0
    b.start()
    assert re.search(r"metadata snapshot \d+-\d+ loaded", b.log_text())
    after = state(b)
    assert after == before


def test_corrupt_snapshot_stops_start_with_a_clear_message(broker_factory):
    b = broker_factory(overrides=SNAP)
    cli(b, "topic", "create", unique_topic("t"), "-p", "1")
    wait_until(lambda: checkpoints(b), what="a snapshot file")
    b.stop()
    snap = checkpoints(b)[-1]
    with open(snap, "r+b") as f:
        f.seek(30)
        f.write(b"\xde\xad\xbe\xef")
    cmd = [BROKER_BIN, b.config_path]
    for k, v in b.overrides.items():
        cmd += ["--override", f"{k}={v}"]
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=60, cwd=b.workdir)
    assert r.returncode != 0
    out = r.stdout + r.stderr
    assert "cannot load the metadata snapshot" in out and os.path.basename(snap) in out, out
    # The operator's way out: remove the bad snapshot; the log is complete.
    os.unlink(snap)
    b.start()
    assert len(metadata_raw(b.port)["topics"]) >= 1


def test_node_far_behind_catches_up_from_the_leaders_snapshot(cluster_factory):
    """With the log trimmed to the newest snapshot after every change, a node
    that was down while topics were created finds the leader's log starting
    past its own end: it fetches the snapshot (FetchSnapshot), installs it and
    continues from there."""
    from cluster import create_topics_raw
    c = cluster_factory(n_combined=3, overrides={
        "metadata.log.max.record.bytes.between.snapshots": "1",
        "metadata.max.retention.bytes": "1",
        "metadata.log.segment.bytes": "2048",
    })
    leader, _ = c.wait_for_leader()
    late = next(i for i in c.ids if i != leader)
    c.stop(late)
    live = [i for i in c.ids if i != late]
    names = [unique_topic("while-away") for _ in range(12)]
    for name in names:
        err, msg = create_topics_raw(c.node(live[0]).port, [(name, 2, 1)])[name]
        assert err == 0, (name, err, msg)
    leader_node = c.node(c.wait_for_leader(exclude=(late,))[0])
    wait_until(lambda: "log start moved to the snapshot" in leader_node.log_text(),
               what="the leader trimming its metadata log")
    c.start(late)
    node = c.node(late)
    wait_until(lambda: "installed the leader's snapshot" in node.log_text(), timeout_s=30,
               what="the late node installing the leader's snapshot")
    wait_until(lambda: set(names) <= set(metadata_raw(node.port)["topics"]), timeout_s=30,
               what="every topic on the late node")
    # and it keeps following: a topic created now reaches it too
    after = unique_topic("after")
    err, msg = create_topics_raw(c.node(live[0]).port, [(after, 1, 1)])[after]
    assert err == 0, (err, msg)
    wait_until(lambda: after in metadata_raw(node.port)["topics"], timeout_s=15,
               what="a new topic on the late node")


def test_trimmed_log_without_its_snapshot_is_refused(broker_factory):
    """The log was trimmed behind a snapshot; with that snapshot gone the
    records before the log start are lost, and the node says so instead of
    starting with a partial image."""
    b = broker_factory(overrides={**SNAP, "metadata.max.retention.bytes": "1",
                                  "metadata.log.segment.bytes": "1024"})
    for _ in range(8):
        cli(b, "topic", "create", unique_topic("t"), "-p", "2")
    wait_until(lambda: "log start moved to the snapshot" in b.log_text(),
               what="the metadata log trimmed behind a snapshot")
    b.stop()
    for snap in checkpoints(b):
        os.unlink(snap)
    cmd = [BROKER_BIN, b.config_path]
    for k, v in b.overrides.items():
        cmd += ["--override", f"{k}={v}"]
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=60, cwd=b.workdir)
    out = r.stdout + r.stderr
    assert r.returncode != 0 and "no snapshot reaches it" in out, out
