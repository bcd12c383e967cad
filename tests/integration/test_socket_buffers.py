"""socket.send.buffer.bytes / socket.receive.buffer.bytes: a positive value
becomes SO_SNDBUF / SO_RCVBUF of every accepted client connection (as in
Kafka); Samsa's default, -1, leaves both to the kernel's TCP autotuning
(docs/CONFIGURATION.md says why). Read back with `ss -tm`, which shows the
kernel's doubled values (rb, tb) of the broker's end of the connection."""

import re
import subprocess

import pytest

from conftest import WireConn


def broker_side_skmem(port):
    """(rb, tb) of every established socket on the broker's port."""
    out = subprocess.run(["ss", "-tmnH", "state", "established", f"( sport = :{port} )"],
                         capture_output=True, text=True, check=True).stdout
    found = [(int(a), int(b)) for a, b in re.findall(r"skmem:\(r\d+,rb(\d+),t\d+,tb(\d+)", out)]
    assert found, f"no broker-side socket in ss output: {out!r}"
    return found


def served(c):
    assert c.request(18, 0, b"")[:2] == b"\x00\x00"  # ApiVersions v0: no error


@pytest.mark.broker_config(**{"socket.receive.buffer.bytes": "50000",
                              "socket.send.buffer.bytes": "30000"})
def test_configured_buffers_are_applied(broker):
    c = WireConn(broker.port)
    try:
        served(c)
        # the kernel doubles what is set
        assert set(broker_side_skmem(broker.port)) == {(100000, 60000)}
    finally:
        c.close()


def test_default_leaves_buffers_to_the_kernel(broker):
    c = WireConn(broker.port)
    try:
        served(c)
        for rb, tb in broker_side_skmem(broker.port):
            assert rb != 100000 and rb >= 65536, rb  # tcp_rmem's default, not a fixed size
    finally:
        c.close()
