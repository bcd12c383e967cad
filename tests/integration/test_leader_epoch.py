"""OffsetForLeaderEpoch over the raw wire (v2): the end offset of an epoch
comes from the partition's leader-epoch cache."""

import struct

from confluent_kafka import Producer

from conftest import Reader, WireConn, confluent_create_topic, enc_array, enc_str, unique_topic


def offset_for_epoch(conn, topic, partition, epoch, current_epoch=-1):
    body = enc_array([enc_str(topic) + enc_array([struct.pack(">iii", partition, current_epoch,
                                                              epoch)])])
    r = Reader(conn.request(23, 2, body))
    r.i32()
    topics = r.array(lambda: (r.string(), r.array(lambda: (r.i16(), r.i32(), r.i32(), r.i64()))))
    return topics[0][1][0]  # (error, partition, leader_epoch, end_offset)


def test_offset_for_leader_epoch(broker):
    topic = unique_topic("ofle")
    confluent_create_topic(broker.bootstrap, topic, 1)
    p = Producer({"bootstrap.servers": broker.bootstrap})
    for i in range(3):
        p.produce(topic, value=b"x", partition=0)
    assert p.flush(30) == 0
    c = WireConn(broker.port)
    try:
        assert offset_for_epoch(c, topic, 0, 0) == (0, 0, 0, 3)
        # A later epoch than any known: the largest epoch <= it, ending at the log end.
        assert offset_for_epoch(c, topic, 0, 5) == (0, 0, 0, 3)
        # The caller believes in a newer leader epoch than ours.
        assert offset_for_epoch(c, topic, 0, 0, current_epoch=7)[0] == 75  # UNKNOWN_LEADER_EPOCH
        assert offset_for_epoch(c, topic + "-nope", 0, 0)[0] == 3  # UNKNOWN_TOPIC_OR_PARTITION
    finally:
        c.close()
