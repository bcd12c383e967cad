"""Many pipelined requests on one connection: answered in order, none lost.

More requests than the per-connection in-flight limit arrive in one write, so
the broker pauses parsing with complete frames still buffered; it must resume
once responses leave (regression: it used to wait for more socket input)."""

import struct

from conftest import Reader, WireConn


def test_pipelined_requests_beyond_inflight_limit(broker):
    c = WireConn(broker.port, timeout_s=20)
    try:
        frames = b""
        n = 600
        for corr in range(1, n + 1):
            msg = struct.pack(">hhi", 18, 0, corr) + struct.pack(">h", 4) + b"pipe"
            frames += struct.pack(">i", len(msg)) + msg
        c.send_raw(frames)
        for corr in range(1, n + 1):
            rcorr, payload = c.recv()
            assert rcorr == corr
            assert Reader(payload).i16() == 0
    finally:
        c.close()
