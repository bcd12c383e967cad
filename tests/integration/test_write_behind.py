"""Write-behind (log.cache.window.bytes): with a window far smaller than what is
produced, most of the log is written back early and dropped from the page cache
while the broker runs. Stock clients must not notice: every message reads back
byte-identical and in order (from disk for the old part, from the cache for the
tail), segments roll and the data
survives a restart. Whether pages really leave the page cache is checked
with mincore() by tests/unit/test_storage_cache.c (here the drops race the
writeback, so residency is not asserted).
"""

import hashlib
import os
import glob

import pytest
from confluent_kafka import Producer

from conftest import confluent_consume_partitions, confluent_create_topic, unique_topic

WINDOW = 64 * 1024


def payload(i):
    # distinct, incompressible-ish content so a misplaced byte is caught
    return hashlib.sha256(str(i).encode()).digest() * 32  # 1 KB


@pytest.mark.broker_config(**{"log.cache.window.bytes": str(WINDOW),
                              "log.segment.bytes": str(4 * 1024 * 1024)})
def test_small_window_reads_back_everything(broker):
    topic = unique_topic("wb")
    confluent_create_topic(broker.bootstrap, topic, 2)
    n = 12000  # ~12 MB over 2 partitions: ~90 windows, a few segment rolls
    p = Producer({"bootstrap.servers": broker.bootstrap, "linger.ms": 5, "acks": "all"})
    for i in range(n):
        p.produce(topic, key=str(i).encode(), value=payload(i), partition=i % 2)
        if i % 1000 == 0:
            p.poll(0)
    assert p.flush(60) == 0

    def check(got):
        for part in (0, 1):
            msgs = got[part]
            assert len(msgs) == n // 2
            for j, m in enumerate(msgs):
                i = 2 * j + part
                assert m.offset() == j
                assert m.key() == str(i).encode()
                assert m.value() == payload(i), f"partition {part} offset {j} differs"

    check(confluent_consume_partitions(broker.bootstrap, topic, [0, 1], n, timeout_s=60))
    segs = glob.glob(os.path.join(broker.data_dir, f"{topic}-0", "*.log"))
    assert len(segs) >= 2, segs
    broker.restart()
    check(confluent_consume_partitions(broker.bootstrap, topic, [0, 1], n, timeout_s=60))
    assert not broker.bad_log_lines()


@pytest.mark.broker_config(**{"log.cache.window.bytes": "0"})
def test_window_zero_is_accepted(broker):
    topic = unique_topic("wb0")
    confluent_create_topic(broker.bootstrap, topic, 1)
    p = Producer({"bootstrap.servers": broker.bootstrap})
    for i in range(200):
        p.produce(topic, value=payload(i))
    assert p.flush(30) == 0
    got = confluent_consume_partitions(broker.bootstrap, topic, [0], 200)
    assert [m.value() for m in got[0]] == [payload(i) for i in range(200)]
