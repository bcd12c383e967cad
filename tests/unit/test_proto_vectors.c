/*
 * test_proto_vectors.c - request encodings made by two independent Kafka client
 * implementations (kafkajs 2.x for the classic versions, @platformatic/kafka for
 * the flexible ones), captured once from their request encoders. Each must
 * decode with the generated decoder of its API and version, consume every byte,
 * and re-encode to the identical bytes. This catches errors a round trip
 * through our own encoder cannot: a field in the wrong order or version range,
 * a wrong nullable/compact/tagged rule.
 *
 * Left out on purpose, because the capturing client deviates from the spec
 * there (checked against the spec): @platformatic/kafka Metadata v11 (sends
 * IncludeClusterAuthorizedOperations, which exists only in v8-v10), Fetch v12
 * (sends forgotten topics as UUIDs, which start in v13) and DescribeConfigs v2
 * (sends IncludeDocumentation, which starts in v3).
 */
#include "sm_proto_gen.h"
#include "sm_test.h"

typedef struct {
    const char *source;
    int16_t key, version;
    const char *what;
    const char *hex;
} vector_t;

static const vector_t vectors[] = {
    {"kafkajs 2.x", 1, 0, "fetch",
     "ffffffff000001f400000001000000010004746573740000000100000000000000000000006400100000"},
    {"kafkajs 2.x", 1, 1, "fetch",
     "ffffffff000001f400000001000000010004746573740000000100000000000000000000006400100000"},
    {"kafkajs 2.x", 1, 2, "fetch",
     "ffffffff000001f400000001000000010004746573740000000100000000000000000000006400100000"},
    {"kafkajs 2.x", 1, 3, "fetch",
     "ffffffff000001f40000000100100000000000010004746573740000000100000000000000000000006400100000"},
    {"kafkajs 2.x", 1, 4, "fetch",
     "ffffffff000001f4000000010010000001000000010004746573740000000100000000000000000000006400100000"},
    {"kafkajs 2.x", 1, 5, "fetch",
     "ffffffff000001f400000001001000000100000001000474657374000000010000000000000000000000640000000000"
     "00000000100000"},
    {"kafkajs 2.x", 1, 6, "fetch",
     "ffffffff000001f400000001001000000100000001000474657374000000010000000000000000000000640000000000"
     "00000000100000"},
    {"kafkajs 2.x", 1, 7, "fetch",
     "ffffffff000001f400000001001000000100000000ffffffff0000000100047465737400000001000000000000000000"
     "00006400000000000000000010000000000000"},
    {"kafkajs 2.x", 1, 8, "fetch",
     "ffffffff000001f400000001001000000100000000ffffffff0000000100047465737400000001000000000000000000"
     "00006400000000000000000010000000000000"},
    {"kafkajs 2.x", 1, 9, "fetch",
     "ffffffff000001f400000001001000000100000000ffffffff0000000100047465737400000001000000000000000300"
     "0000000000006400000000000000000010000000000000"},
    {"kafkajs 2.x", 1, 10, "fetch",
     "ffffffff000001f400000001001000000100000000ffffffff0000000100047465737400000001000000000000000300"
     "0000000000006400000000000000000010000000000000"},
    {"kafkajs 2.x", 1, 11, "fetch",
     "ffffffff000001f400000001001000000100000000ffffffff0000000100047465737400000001000000000000000300"
     "00000000000064000000000000000000100000000000000000"},
    {"kafkajs 2.x", 3, 0, "metadata",
     "0000000200047465737400056f74686572"},
    {"kafkajs 2.x", 3, 1, "metadata",
     "0000000200047465737400056f74686572"},
    {"kafkajs 2.x", 3, 2, "metadata",
     "0000000200047465737400056f74686572"},
    {"kafkajs 2.x", 3, 3, "metadata",
     "0000000200047465737400056f74686572"},
    {"kafkajs 2.x", 3, 4, "metadata",
     "0000000200047465737400056f7468657200"},
    {"kafkajs 2.x", 3, 5, "metadata",
     "0000000200047465737400056f7468657200"},
    {"kafkajs 2.x", 3, 6, "metadata",
     "0000000200047465737400056f7468657200"},
    {"kafkajs 2.x", 0, 0, "produce",
     "ffff0000753000000001000474657374000000010000000000000020000000000000000000000014a4cdab3a00000000"
     "00016b0000000568656c6c6f"},
    {"kafkajs 2.x", 0, 1, "produce",
     "ffff0000753000000001000474657374000000010000000000000020000000000000000000000014a4cdab3a00000000"
     "00016b0000000568656c6c6f"},
    {"kafkajs 2.x", 0, 2, "produce",
     "ffff0000753000000001000474657374000000010000000000000028ffffffffffffffff0000001caa1f677901000000"
     "018bcfe56800000000016b0000000568656c6c6f"},
    {"kafkajs 2.x", 0, 3, "produce",
     "00027478ffff000075300000000100047465737400000001000000000000004e00000000000000000000004200000000"
     "0269cf85b00010000000000000018bcfe568000000018bcfe56800ffffffffffffffff00000000000000000001200000"
     "00026b0a68656c6c6f0202680278"},
    {"kafkajs 2.x", 0, 4, "produce",
     "00027478ffff000075300000000100047465737400000001000000000000004e00000000000000000000004200000000"
     "0269cf85b00010000000000000018bcfe568000000018bcfe56800ffffffffffffffff00000000000000000001200000"
     "00026b0a68656c6c6f0202680278"},
    {"kafkajs 2.x", 0, 5, "produce",
     "00027478ffff000075300000000100047465737400000001000000000000004e00000000000000000000004200000000"
     "0269cf85b00010000000000000018bcfe568000000018bcfe56800ffffffffffffffff00000000000000000001200000"
     "00026b0a68656c6c6f0202680278"},
    {"kafkajs 2.x", 0, 6, "produce",
     "00027478ffff000075300000000100047465737400000001000000000000004e00000000000000000000004200000000"
     "0269cf85b00010000000000000018bcfe568000000018bcfe56800ffffffffffffffff00000000000000000001200000"
     "00026b0a68656c6c6f0202680278"},
    {"kafkajs 2.x", 0, 7, "produce",
     "00027478ffff000075300000000100047465737400000001000000000000004e00000000000000000000004200000000"
     "0269cf85b00010000000000000018bcfe568000000018bcfe56800ffffffffffffffff00000000000000000001200000"
     "00026b0a68656c6c6f0202680278"},
    {"kafkajs 2.x", 2, 0, "listOffsets",
     "ffffffff000000010004746573740000000100000002fffffffffffffffe00000001"},
    {"kafkajs 2.x", 2, 1, "listOffsets",
     "ffffffff000000010004746573740000000100000002fffffffffffffffe"},
    {"kafkajs 2.x", 2, 2, "listOffsets",
     "ffffffff01000000010004746573740000000100000002fffffffffffffffe"},
    {"kafkajs 2.x", 2, 3, "listOffsets",
     "ffffffff01000000010004746573740000000100000002fffffffffffffffe"},
    {"kafkajs 2.x", 19, 0, "createTopics",
     "0000000100036e6577000000030001000000010000000000000002000000010000000200000001000e636c65616e7570"
     "2e706f6c6963790007636f6d7061637400001388"},
    {"kafkajs 2.x", 19, 1, "createTopics",
     "0000000100036e6577000000030001000000010000000000000002000000010000000200000001000e636c65616e7570"
     "2e706f6c6963790007636f6d706163740000138801"},
    {"kafkajs 2.x", 19, 2, "createTopics",
     "0000000100036e6577000000030001000000010000000000000002000000010000000200000001000e636c65616e7570"
     "2e706f6c6963790007636f6d706163740000138801"},
    {"kafkajs 2.x", 19, 3, "createTopics",
     "0000000100036e6577000000030001000000010000000000000002000000010000000200000001000e636c65616e7570"
     "2e706f6c6963790007636f6d706163740000138801"},
    {"kafkajs 2.x", 20, 0, "deleteTopics",
     "0000000200016100016200001388"},
    {"kafkajs 2.x", 20, 1, "deleteTopics",
     "0000000200016100016200001388"},
    {"kafkajs 2.x", 37, 0, "createPartitions",
     "000000010004746573740000000400000002000000010000000100000001000000020000138800"},
    {"kafkajs 2.x", 37, 1, "createPartitions",
     "000000010004746573740000000400000002000000010000000100000001000000020000138800"},
    {"kafkajs 2.x", 32, 0, "describeConfigs",
     "000000010200047465737400000001000c726574656e74696f6e2e6d73"},
    {"kafkajs 2.x", 32, 1, "describeConfigs",
     "000000010200047465737400000001000c726574656e74696f6e2e6d7301"},
    {"kafkajs 2.x", 32, 2, "describeConfigs",
     "000000010200047465737400000001000c726574656e74696f6e2e6d7301"},
    {"kafkajs 2.x", 33, 0, "alterConfigs",
     "000000010200047465737400000001000c726574656e74696f6e2e6d7300043130303000"},
    {"kafkajs 2.x", 33, 1, "alterConfigs",
     "000000010200047465737400000001000c726574656e74696f6e2e6d7300043130303000"},
    {"kafkajs 2.x", 21, 0, "deleteRecords",
     "000000010004746573740000000100000000000000000000000a00001388"},
    {"kafkajs 2.x", 21, 1, "deleteRecords",
     "000000010004746573740000000100000000000000000000000a00001388"},
    {"kafkajs 2.x", 22, 0, "initProducerId",
     "000274780000ea60"},
    {"kafkajs 2.x", 22, 1, "initProducerId",
     "000274780000ea60"},
    {"kafkajs 2.x", 10, 0, "findCoordinator",
     "00026731"},
    {"kafkajs 2.x", 10, 1, "findCoordinator",
     "0002673100"},
    {"kafkajs 2.x", 10, 2, "findCoordinator",
     "0002673100"},
    {"kafkajs 2.x", 11, 0, "joinGroup",
     "000267310000753000000008636f6e73756d657200000001000572616e67650000001000010000000100047465737400"
     "000000"},
    {"kafkajs 2.x", 11, 1, "joinGroup",
     "00026731000075300000ea6000000008636f6e73756d657200000001000572616e676500000010000100000001000474"
     "65737400000000"},
    {"kafkajs 2.x", 11, 2, "joinGroup",
     "00026731000075300000ea6000000008636f6e73756d657200000001000572616e676500000010000100000001000474"
     "65737400000000"},
    {"kafkajs 2.x", 11, 3, "joinGroup",
     "00026731000075300000ea6000000008636f6e73756d657200000001000572616e676500000010000100000001000474"
     "65737400000000"},
    {"kafkajs 2.x", 11, 4, "joinGroup",
     "00026731000075300000ea6000000008636f6e73756d657200000001000572616e676500000010000100000001000474"
     "65737400000000"},
    {"kafkajs 2.x", 11, 5, "joinGroup",
     "00026731000075300000ea6000000004696e73740008636f6e73756d657200000001000572616e676500000010000100"
     "00000100047465737400000000"},
    {"kafkajs 2.x", 14, 0, "syncGroup",
     "000267310000000500026d310000000100026d3100000003000102"},
    {"kafkajs 2.x", 14, 1, "syncGroup",
     "000267310000000500026d310000000100026d3100000003000102"},
    {"kafkajs 2.x", 14, 2, "syncGroup",
     "000267310000000500026d310000000100026d3100000003000102"},
    {"kafkajs 2.x", 14, 3, "syncGroup",
     "000267310000000500026d310004696e73740000000100026d3100000003000102"},
    {"kafkajs 2.x", 12, 0, "heartbeat",
     "000267310000000500026d31"},
    {"kafkajs 2.x", 12, 1, "heartbeat",
     "000267310000000500026d31"},
    {"kafkajs 2.x", 12, 2, "heartbeat",
     "000267310000000500026d31"},
    {"kafkajs 2.x", 12, 3, "heartbeat",
     "000267310000000500026d310004696e7374"},
    {"kafkajs 2.x", 13, 0, "leaveGroup",
     "0002673100026d31"},
    {"kafkajs 2.x", 13, 1, "leaveGroup",
     "0002673100026d31"},
    {"kafkajs 2.x", 13, 2, "leaveGroup",
     "0002673100026d31"},
    {"kafkajs 2.x", 13, 3, "leaveGroup",
     "000267310000000100026d310004696e7374"},
    {"kafkajs 2.x", 8, 0, "offsetCommit",
     "00026731000000010004746573740000000100000000000000000000002a00026d64"},
    {"kafkajs 2.x", 8, 1, "offsetCommit",
     "000267310000000500026d31000000010004746573740000000100000000000000000000002a000001a20111f9c70002"
     "6d64"},
    {"kafkajs 2.x", 8, 2, "offsetCommit",
     "000267310000000500026d31ffffffffffffffff000000010004746573740000000100000000000000000000002a0002"
     "6d64"},
    {"kafkajs 2.x", 8, 3, "offsetCommit",
     "000267310000000500026d31ffffffffffffffff000000010004746573740000000100000000000000000000002a0002"
     "6d64"},
    {"kafkajs 2.x", 8, 4, "offsetCommit",
     "000267310000000500026d31ffffffffffffffff000000010004746573740000000100000000000000000000002a0002"
     "6d64"},
    {"kafkajs 2.x", 8, 5, "offsetCommit",
     "000267310000000500026d31000000010004746573740000000100000000000000000000002a00026d64"},
    {"kafkajs 2.x", 9, 1, "offsetFetch",
     "0002673100000001000474657374000000020000000000000001"},
    {"kafkajs 2.x", 9, 2, "offsetFetch",
     "0002673100000001000474657374000000020000000000000001"},
    {"kafkajs 2.x", 9, 3, "offsetFetch",
     "0002673100000001000474657374000000020000000000000001"},
    {"kafkajs 2.x", 9, 4, "offsetFetch",
     "0002673100000001000474657374000000020000000000000001"},
    {"kafkajs 2.x", 15, 0, "describeGroups",
     "000000020002673100026732"},
    {"kafkajs 2.x", 15, 1, "describeGroups",
     "000000020002673100026732"},
    {"kafkajs 2.x", 15, 2, "describeGroups",
     "000000020002673100026732"},
    {"kafkajs 2.x", 16, 0, "listGroups",
     ""},
    {"kafkajs 2.x", 16, 1, "listGroups",
     ""},
    {"kafkajs 2.x", 16, 2, "listGroups",
     ""},
    {"kafkajs 2.x", 42, 0, "deleteGroups",
     "000000020002673100026732"},
    {"kafkajs 2.x", 42, 1, "deleteGroups",
     "000000020002673100026732"},
    {"kafkajs 2.x", 17, 0, "saslHandshake",
     "0005504c41494e"},
    {"kafkajs 2.x", 17, 1, "saslHandshake",
     "0005504c41494e"},
    {"kafkajs 2.x", 24, 0, "addPartitionsToTxn",
     "000274780000000000000007000100000001000474657374000000020000000000000001"},
    {"kafkajs 2.x", 24, 1, "addPartitionsToTxn",
     "000274780000000000000007000100000001000474657374000000020000000000000001"},
    {"kafkajs 2.x", 25, 0, "addOffsetsToTxn",
     "000274780000000000000007000100026731"},
    {"kafkajs 2.x", 25, 1, "addOffsetsToTxn",
     "000274780000000000000007000100026731"},
    {"kafkajs 2.x", 26, 0, "endTxn",
     "000274780000000000000007000101"},
    {"kafkajs 2.x", 26, 1, "endTxn",
     "000274780000000000000007000101"},
    {"kafkajs 2.x", 28, 0, "txnOffsetCommit",
     "000274780002673100000000000000070001000000010004746573740000000100000000000000000000002a00026d64"},
    {"kafkajs 2.x", 28, 1, "txnOffsetCommit",
     "000274780002673100000000000000070001000000010004746573740000000100000000000000000000002a00026d64"},
    {"kafkajs 2.x", 18, 0, "apiVersions",
     ""},
    {"kafkajs 2.x", 18, 1, "apiVersions",
     ""},
    {"kafkajs 2.x", 18, 2, "apiVersions",
     ""},
    {"@platformatic/kafka", 18, 3, "api-versions-v3",
     "13706c6174666f726d617469632d6b61666b6106312e302e3000"},
    {"@platformatic/kafka", 18, 4, "api-versions-v4",
     "13706c6174666f726d617469632d6b61666b6106312e302e3000"},
    {"@platformatic/kafka", 3, 9, "metadata-v9",
     "03057465737400066f746865720001000100"},
    {"@platformatic/kafka", 3, 10, "metadata-v10",
     "030000000000000000000000000000000005746573740000000000000000000000000000000000066f74686572000100"
     "0100"},
    {"@platformatic/kafka", 3, 12, "metadata-v12",
     "030000000000000000000000000000000005746573740000000000000000000000000000000000066f74686572000101"
     "00"},
    {"@platformatic/kafka", 0, 9, "produce-v9",
     "037478ffff0000753002057465737402000000014b00000000000000000000003e0000000002b1e26b7b001000000000"
     "0000018bcfe568000000018bcfe56800ffffffffffffffff0000000000000000000118000000026b0a68656c6c6f0000"
     "0000"},
    {"@platformatic/kafka", 0, 10, "produce-v10",
     "037478ffff0000753002057465737402000000014b00000000000000000000003e0000000002b1e26b7b001000000000"
     "0000018bcfe568000000018bcfe56800ffffffffffffffff0000000000000000000118000000026b0a68656c6c6f0000"
     "0000"},
    {"@platformatic/kafka", 0, 11, "produce-v11",
     "037478ffff0000753002057465737402000000014b00000000000000000000003e0000000002b1e26b7b001000000000"
     "0000018bcfe568000000018bcfe56800ffffffffffffffff0000000000000000000118000000026b0a68656c6c6f0000"
     "0000"},
    {"@platformatic/kafka", 1, 13, "fetch-v13",
     "ffffffff000001f40000000103200000010000000700000002020102030405060708090a0b0c0d0e0f10020000000000"
     "000003000000000000006400000002ffffffffffffffff001000000000020102030405060708090a0b0c0d0e0f100300"
     "0000040000000500067261636b3100"},
    {"@platformatic/kafka", 1, 14, "fetch-v14",
     "ffffffff000001f40000000103200000010000000700000002020102030405060708090a0b0c0d0e0f10020000000000"
     "000003000000000000006400000002ffffffffffffffff001000000000020102030405060708090a0b0c0d0e0f100300"
     "0000040000000500067261636b3100"},
    {"@platformatic/kafka", 1, 15, "fetch-v15",
     "000001f40000000103200000010000000700000002020102030405060708090a0b0c0d0e0f1002000000000000000300"
     "0000000000006400000002ffffffffffffffff001000000000020102030405060708090a0b0c0d0e0f10030000000400"
     "00000500067261636b3100"},
    {"@platformatic/kafka", 1, 16, "fetch-v16",
     "000001f40000000103200000010000000700000002020102030405060708090a0b0c0d0e0f1002000000000000000300"
     "0000000000006400000002ffffffffffffffff001000000000020102030405060708090a0b0c0d0e0f10030000000400"
     "00000500067261636b3100"},
    {"@platformatic/kafka", 1, 17, "fetch-v17",
     "000001f40000000103200000010000000700000002020102030405060708090a0b0c0d0e0f1002000000000000000300"
     "0000000000006400000002ffffffffffffffff001000000000020102030405060708090a0b0c0d0e0f10030000000400"
     "00000500067261636b3100"},
    {"@platformatic/kafka", 2, 5, "list-offsets-v5",
     "ffffffff0100000001000474657374000000010000000000000001ffffffffffffffff"},
    {"@platformatic/kafka", 2, 6, "list-offsets-v6",
     "ffffffff01020574657374020000000000000001ffffffffffffffff000000"},
    {"@platformatic/kafka", 2, 7, "list-offsets-v7",
     "ffffffff01020574657374020000000000000001ffffffffffffffff000000"},
    {"@platformatic/kafka", 2, 8, "list-offsets-v8",
     "ffffffff01020574657374020000000000000001ffffffffffffffff000000"},
    {"@platformatic/kafka", 2, 9, "list-offsets-v9",
     "ffffffff01020574657374020000000000000001ffffffffffffffff000000"},
    {"@platformatic/kafka", 10, 4, "find-coordinator-v4",
     "000303673103673200"},
    {"@platformatic/kafka", 10, 5, "find-coordinator-v5",
     "000303673103673200"},
    {"@platformatic/kafka", 10, 6, "find-coordinator-v6",
     "000303673103673200"},
    {"@platformatic/kafka", 22, 3, "init-producer-id-v3",
     "0374780000ea600000000000000007000100"},
    {"@platformatic/kafka", 22, 4, "init-producer-id-v4",
     "0374780000ea600000000000000007000100"},
    {"@platformatic/kafka", 22, 5, "init-producer-id-v5",
     "0374780000ea600000000000000007000100"},
    {"@platformatic/kafka", 12, 4, "heartbeat-v4",
     "03673100000005036d3105696e737400"},
    {"@platformatic/kafka", 11, 6, "join-group-v6",
     "036731000075300000ea60036d3105696e737409636f6e73756d6572020672616e6765040001020000"},
    {"@platformatic/kafka", 11, 7, "join-group-v7",
     "036731000075300000ea60036d3105696e737409636f6e73756d6572020672616e6765040001020000"},
    {"@platformatic/kafka", 11, 8, "join-group-v8",
     "036731000075300000ea60036d3105696e737409636f6e73756d6572020672616e676504000102000477687900"},
    {"@platformatic/kafka", 11, 9, "join-group-v9",
     "036731000075300000ea60036d3105696e737409636f6e73756d6572020672616e676504000102000477687900"},
    {"@platformatic/kafka", 14, 4, "sync-group-v4",
     "03673100000005036d3105696e737402036d310309080000"},
    {"@platformatic/kafka", 14, 5, "sync-group-v5",
     "03673100000005036d3105696e737409636f6e73756d65720672616e676502036d310309080000"},
    {"@platformatic/kafka", 8, 8, "offset-commit-v8",
     "03673100000005036d3105696e73740205746573740200000000000000000000002a00000003036d64000000"},
    {"@platformatic/kafka", 8, 9, "offset-commit-v9",
     "03673100000005036d3105696e73740205746573740200000000000000000000002a00000003036d64000000"},
    {"@platformatic/kafka", 9, 8, "offset-fetch-v8",
     "0203673102057465737403000000000000000100000100"},
    {"@platformatic/kafka", 9, 9, "offset-fetch-v9",
     "02036731036d310000000302057465737403000000000000000100000100"},
    {"@platformatic/kafka", 19, 7, "create-topics-v7",
     "02046e6577ffffffffffff020000000003000000010000000200020f636c65616e75702e706f6c69637908636f6d7061"
     "63740000000027100100"},
    {"@platformatic/kafka", 20, 6, "delete-topics-v6",
     "02046f6c640102030405060708090a0b0c0d0e0f10000000271000"},
    {"@platformatic/kafka", 60, 0, "describe-cluster-v0",
     "0100"},
    {"@platformatic/kafka", 60, 1, "describe-cluster-v1",
     "010100"},
    {"@platformatic/kafka", 15, 5, "describe-groups-v5",
     "030367310367320100"},
    {"@platformatic/kafka", 13, 4, "leave-group-v4",
     "03673102036d3105696e73740000"},
    {"@platformatic/kafka", 13, 5, "leave-group-v5",
     "03673102036d3105696e7374046279650000"},
    {"@platformatic/kafka", 23, 4, "offset-for-leader-epoch-v4",
     "ffffffff02057465737402000000000000000500000004000000"},
    {"@platformatic/kafka", 32, 3, "describe-configs-v3",
     "000000010200047465737400000001000c726574656e74696f6e2e6d730101"},
    {"@platformatic/kafka", 32, 4, "describe-configs-v4",
     "02020574657374020d726574656e74696f6e2e6d7300010100"},
    {"@platformatic/kafka", 37, 2, "create-partitions-v2",
     "020574657374000000040202000000010000000027100000"},
    {"@platformatic/kafka", 37, 3, "create-partitions-v3",
     "020574657374000000040202000000010000000027100000"},
    {"@platformatic/kafka", 16, 4, "list-groups-v4",
     "0207537461626c6500"},
    {"@platformatic/kafka", 16, 5, "list-groups-v5",
     "0207537461626c650208636c617373696300"},
    {"@platformatic/kafka", 42, 2, "delete-groups-v2",
     "0203673100"},
    {"@platformatic/kafka", 21, 2, "delete-records-v2",
     "020574657374020000000000000000000000050000000003e800"},
    {"@platformatic/kafka", 44, 1, "incremental-alter-configs-v1",
     "02020574657374020d726574656e74696f6e2e6d7300023100000000"},
    {"@platformatic/kafka", 33, 2, "alter-configs-v2",
     "02020574657374020d726574656e74696f6e2e6d73023100000000"},
    {"@platformatic/kafka", 35, 2, "describe-log-dirs-v2",
     "0205746573740300000000000000010000"},
    {"@platformatic/kafka", 35, 3, "describe-log-dirs-v3",
     "0205746573740300000000000000010000"},
    {"@platformatic/kafka", 35, 4, "describe-log-dirs-v4",
     "0205746573740300000000000000010000"},
    {"@platformatic/kafka", 61, 0, "describe-producers-v0",
     "02057465737402000000000000"},
    {"@platformatic/kafka", 47, 0, "offset-delete-v0",
     "00026731000000010004746573740000000100000000"},
    {"@platformatic/kafka", 25, 1, "add-offsets-to-txn-v1",
     "000274780000000000000007000100026731"},
    {"@platformatic/kafka", 25, 2, "add-offsets-to-txn-v2",
     "000274780000000000000007000100026731"},
    {"@platformatic/kafka", 25, 3, "add-offsets-to-txn-v3",
     "0374780000000000000007000103673100"},
    {"@platformatic/kafka", 25, 4, "add-offsets-to-txn-v4",
     "0374780000000000000007000103673100"},
    {"@platformatic/kafka", 26, 3, "end-txn-v3",
     "037478000000000000000700010100"},
    {"@platformatic/kafka", 26, 4, "end-txn-v4",
     "037478000000000000000700010100"},
    {"@platformatic/kafka", 28, 3, "txn-offset-commit-v3",
     "0374780367310000000000000007000100000005036d3105696e73740205746573740200000000000000000000002a00"
     "000003036d64000000"},
    {"@platformatic/kafka", 28, 4, "txn-offset-commit-v4",
     "0374780367310000000000000007000100000005036d3105696e73740205746573740200000000000000000000002a00"
     "000003036d64000000"},
    {"@platformatic/kafka", 24, 3, "add-partitions-to-txn-v3",
     "037478000000000000000700010205746573740300000000000000010000"},
};

static size_t unhex(const char *hex, uint8_t *out)
{
    size_t n = strlen(hex) / 2;
    for (size_t i = 0; i < n; i++) {
        unsigned v;
        sscanf(hex + 2 * i, "%2x", &v);
        out[i] = (uint8_t)v;
    }
    return n;
}

static void test_client_vectors(void)
{
    static uint8_t buf[8192];
    for (size_t i = 0; i < SM_ARRAY_LEN(vectors); i++) {
        const vector_t *t = &vectors[i];
        size_t len = unhex(t->hex, buf);
        sm_arena_t a;
        sm_arena_init(&a);
        sm_rd_t r;
        sm_rd_init(&r, buf, len);
        void *m;
        sm_err_t err = sm_request_decode_any(t->key, t->version, &r, &a, &m);
        bool ok = err == SM_OK && sm_rd_remaining(&r) == 0;
        if (ok) {
            sm_wbuf_t w;
            sm_wbuf_init(&w);
            sm_request_encode_any(&w, t->key, t->version, m);
            ok = w.len == len && (len == 0 || memcmp(w.mem, buf, len) == 0);
            sm_wbuf_free(&w);
        }
        if (!ok)
            fprintf(stderr, "vector %s %s v%d: err %d, %zu bytes left\n", t->source, t->what,
                    t->version, err, sm_rd_remaining(&r));
        CHECK(ok);
        sm_arena_free(&a);
    }
}

/* Spot checks that the decoded values, not only the bytes, are right. */
static void test_client_vector_values(void)
{
    static uint8_t buf[8192];
    for (size_t i = 0; i < SM_ARRAY_LEN(vectors); i++) {
        const vector_t *t = &vectors[i];
        sm_arena_t a;
        sm_arena_init(&a);
        sm_rd_t r;
        sm_rd_init(&r, buf, unhex(t->hex, buf));
        if (t->key == SM_API_JOIN_GROUP && t->version == 9) {
            sm_join_group_request_t q;
            CHECK_EQ(sm_join_group_request_decode(&r, &a, 9, &q), SM_OK);
            CHECK(sm_str_eq(q.group_id, "g1"));
            CHECK_EQ(q.session_timeout_ms, 30000);
            CHECK_EQ(q.rebalance_timeout_ms, 60000);
            CHECK(sm_str_eq(q.group_instance_id, "inst"));
            CHECK_EQ(q.protocols_count, 1);
            CHECK(q.protocols_count == 1 && sm_str_eq(q.protocols[0].name, "range"));
            CHECK(sm_str_eq(q.reason, "why"));
        }
        if (t->key == SM_API_FETCH && t->version == 11) {
            sm_fetch_request_t q;
            CHECK_EQ(sm_fetch_request_decode(&r, &a, 11, &q), SM_OK);
            CHECK_EQ(q.max_wait_ms, 500);
            CHECK_EQ(q.isolation_level, 1);
            CHECK(q.topics_count == 1 && sm_str_eq(q.topics[0].topic, "test"));
            CHECK(q.topics_count == 1 && q.topics[0].partitions_count == 1 &&
                  q.topics[0].partitions[0].fetch_offset == 100 &&
                  q.topics[0].partitions[0].current_leader_epoch == 3);
        }
        if (t->key == SM_API_PRODUCE && t->version == 9) {
            sm_produce_request_t q;
            CHECK_EQ(sm_produce_request_decode(&r, &a, 9, &q), SM_OK);
            CHECK_EQ(q.acks, -1);
            CHECK(sm_str_eq(q.transactional_id, "tx"));
            CHECK(q.topic_data_count == 1 && q.topic_data[0].partition_data_count == 1);
            /* the records are a view of a magic-2 batch */
            const sm_records_t *rec = &q.topic_data[0].partition_data[0].records;
            CHECK(rec->len > 61 && rec->ptr[16] == 2 && rec->fd == -1);
        }
        sm_arena_free(&a);
    }
}

int main(void)
{
    RUN(test_client_vectors);
    RUN(test_client_vector_values);
    TEST_MAIN_END();
}
