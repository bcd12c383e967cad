"""Several client listeners: each connection is told the advertised endpoint
of the listener it came in on (Metadata, FindCoordinator), as Kafka does, so
clients bootstrapped through either listener stay on it."""

import struct

from confluent_kafka import Consumer, Producer, TopicPartition

from conftest import Reader, WireConn, enc_str, free_ports, unique_topic, wait_until


def two_listeners(broker):
    """Restart broker with PLAINTEXT (127.0.0.1) and EXTERNAL (advertised as
    localhost) client listeners; returns the EXTERNAL port."""
    (ext,) = free_ports(1)
    broker.stop()
    keys = {
        "listeners": f"PLAINTEXT://127.0.0.1:{broker.port},EXTERNAL://127.0.0.1:{ext},"
                     f"CONTROLLER://127.0.0.1:{broker.controller_port}",
        "advertised.listeners": f"PLAINTEXT://127.0.0.1:{broker.port},EXTERNAL://localhost:{ext}",
        "listener.security.protocol.map":
            "PLAINTEXT:PLAINTEXT,EXTERNAL:PLAINTEXT,CONTROLLER:PLAINTEXT",
    }
    with open(broker.config_path) as f:
        lines = [l for l in f if l.split("=", 1)[0].strip() not in keys]
    lines += [f"{k}={v}\n" for k, v in keys.items()]
    with open(broker.config_path, "w") as f:
        f.writelines(lines)
    broker.start()
    return ext


def metadata_brokers(port):
    """Metadata v1 (no topics) -> [(node_id, host, port)]."""
    c = WireConn(port)
    try:
        r = Reader(c.request(3, 1, struct.pack(">i", 0)))
    finally:
        c.close()
    out = []
    for _ in range(r.i32()):
        node, host, p = r.i32(), r.string(), r.i32()
        r.string()  # rack
        out.append((node, host, p))
    return out


def coordinator(port):
    """FindCoordinator v1 for a group -> (host, port)."""
    c = WireConn(port)
    try:
        r = Reader(c.request(10, 1, enc_str("listeners-group") + struct.pack(">b", 0)))
    finally:
        c.close()
    r.i32()  # throttle
    err = r.i16()
    r.string()  # message
    r.i32()  # node
    host, p = r.string(), r.i32()
    assert err == 0, err
    return host, p


def test_each_listener_gets_its_own_endpoint(broker):
    ext = two_listeners(broker)
    assert metadata_brokers(broker.port) == [(1, "127.0.0.1", broker.port)]
    assert metadata_brokers(ext) == [(1, "localhost", ext)]
    # FindCoordinator parks until __consumer_offsets exists; then the same rule.
    assert wait_until(lambda: coordinator(ext), 30, what="a coordinator") == ("localhost", ext)
    assert coordinator(broker.port) == ("127.0.0.1", broker.port)
    # A real client bootstrapped through EXTERNAL produces and reads back.
    t = unique_topic("ext")
    p = Producer({"bootstrap.servers": f"localhost:{ext}", "message.timeout.ms": 20000})
    errs = []
    p.produce(t, value=b"via EXTERNAL", partition=0, on_delivery=lambda e, m: errs.append(e))
    assert p.flush(25) == 0 and errs == [None]
    c = Consumer({"bootstrap.servers": f"localhost:{ext}", "group.id": "ext-readers",
                  "enable.auto.commit": False})
    try:
        c.assign([TopicPartition(t, 0, 0)])
        m = wait_until(lambda: c.poll(0.2), 20, interval_s=0, what="the message")
        assert m.error() is None and m.value() == b"via EXTERNAL"
    finally:
        c.close()
