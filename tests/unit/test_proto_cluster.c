/*
 * test_proto_cluster.c - codecs of the cluster RPCs (KRaft quorum, broker lifecycle,
 * partition reassignment, forwarding), the Raft control records and the metadata records
 * a cluster writes.
 *
 * test_proto.c already round-trips every generated message at every version (fill,
 * encode, decode, compare, all truncations); that only proves the encoder and decoder
 * agree with each other. Here each message is also checked against bytes built by hand,
 * field by field, from Kafka's message specs (order of fields, the versions each exists
 * in, classic int16/int32 lengths vs compact uvarint length+1, nullable markers, a tag
 * section at the end of every struct of a flexible version, tagged fields as tag, size,
 * body): the generated encoder must produce exactly those bytes, and the decoder must read
 * them back into an equal struct with nothing left over. A mistake in a .def file fails
 * here even though it would round-trip. Then hostile input: huge counts, bad tags,
 * truncation, for the new messages.
 */
#include "sm_proto_gen.h"
#include "sm_test.h"

/* ---------------------------------------------------------------- a byte builder */

static uint8_t B[4096]; /* the expected bytes of the vector being built */
static size_t BN;

static void reset(void) { BN = 0; }
static void put(uint64_t v, int n)
{
    for (int i = n - 1; i >= 0; i--)
        B[BN++] = (uint8_t)(v >> (8 * i));
}
static void i8(int v) { put((uint64_t)(int64_t)v, 1); }
static void i16(int v) { put((uint64_t)(int64_t)v, 2); }
static void u16(unsigned v) { put(v, 2); }
static void i32(int64_t v) { put((uint64_t)v, 4); }
static void i64(int64_t v) { put((uint64_t)v, 8); }
static void f64(double d)
{
    uint64_t u;
    memcpy(&u, &d, 8);
    put(u, 8);
}
static void uv(uint32_t v) /* unsigned varint */
{
    while (v >= 0x80) {
        B[BN++] = (uint8_t)(v | 0x80);
        v >>= 7;
    }
    B[BN++] = (uint8_t)v;
}
static void raw(const void *p, size_t n)
{
    if (n)
        memcpy(B + BN, p, n);
    BN += n;
}
/* classic string: int16 length, -1 = null */
static void str(const char *s)
{
    if (!s) {
        i16(-1);
        return;
    }
    i16((int)strlen(s));
    raw(s, strlen(s));
}
/* compact string: uvarint length+1, 0 = null */
static void cstr(const char *s)
{
    if (!s) {
        uv(0);
        return;
    }
    uv((uint32_t)strlen(s) + 1);
    raw(s, strlen(s));
}
static void cbytes(const void *p, int n) { n < 0 ? uv(0) : (uv((uint32_t)n + 1), raw(p, (size_t)n)); }
static void arr(int n) { i32(n); }                  /* classic array count, -1 = null */
static void carr(int n) { uv((uint32_t)(n + 1)); } /* compact array count, 0 = null */
static void uuid(uint8_t k)
{
    for (int i = 0; i < 16; i++)
        B[BN++] = k;
}
static void notags(void) { uv(0); } /* an empty tag section */
/* A tagged field: tag, then its size (patched by tag_end; bodies here are < 128 bytes). */
static size_t tag_at;
static void tag_begin(uint32_t tag)
{
    uv(tag);
    tag_at = BN++;
}
static void tag_end(void)
{
    size_t n = BN - tag_at - 1;
    SM_ASSERT(n < 128);
    B[tag_at] = (uint8_t)n;
}

static sm_uuid_t U(uint8_t k)
{
    sm_uuid_t u;
    memset(u.b, k, 16);
    return u;
}

#define ONE(obj, field, elem) ((obj).field = &(elem), (obj).field##_count = 1)
#define MANY(obj, field, array) ((obj).field = (array), (obj).field##_count = (int32_t)SM_ARRAY_LEN(array))
#define NONE(obj, field) ((obj).field = NULL, (obj).field##_count = 0)
#define NUL(obj, field) ((obj).field = NULL, (obj).field##_count = -1)

static void hexdump(const char *what, const uint8_t *p, size_t n)
{
    fprintf(stderr, "   %s (%zu):", what, n);
    for (size_t i = 0; i < n; i++)
        fprintf(stderr, "%s%02x", i % 32 ? " " : "\n     ", p[i]);
    fprintf(stderr, "\n");
}

static int nvectors;

/*
 * The message m (kind/key, version v) must encode to exactly B[0..BN), and B must decode to
 * a message equal to m, using every byte; every proper prefix of B must be a parse error.
 */
static void vec(const char *what, sm_proto_kind_t kind, int16_t key, int16_t v, const void *m)
{
    const sm_proto_msg_t *d = sm_proto_msg(kind, key);
    CHECK(d != NULL);
    if (!d)
        return;
    nvectors++;
    sm_wbuf_t w;
    sm_wbuf_init(&w);
    d->encode(&w, v, m);
    bool same = w.len == BN && memcmp(w.mem, B, BN) == 0;
    if (!same) {
        fprintf(stderr, "vector %s (%s v%d): encoding differs from the spec bytes\n", what, d->name,
                v);
        hexdump("spec", B, BN);
        hexdump("ours", w.mem, w.len);
    }
    CHECK(same);

    sm_arena_t a;
    sm_arena_init(&a);
    sm_rd_t r;
    sm_rd_init(&r, B, BN);
    void *m2 = sm_arena_alloc(&a, d->size);
    sm_err_t err = d->decode(&r, &a, v, m2);
    bool ok = err == SM_OK && sm_rd_remaining(&r) == 0 && d->test_equal(m, m2);
    if (!ok)
        fprintf(stderr, "vector %s (%s v%d): decode err %d, %zu bytes left\n", what, d->name, v,
                err, sm_rd_remaining(&r));
    CHECK(ok);
    int accepted = 0;
    for (size_t n = 0; n < BN; n++) {
        sm_rd_init(&r, B, n);
        if (d->decode(&r, &a, v, m2) != SM_ERR_PARSE)
            accepted++;
    }
    if (accepted)
        fprintf(stderr, "vector %s: %d truncations accepted\n", what, accepted);
    CHECK_EQ(accepted, 0);
    sm_arena_free(&a);
    sm_wbuf_free(&w);
}

#define REQ(what, key, v, m) vec(what, SM_PROTO_REQUEST, key, v, m)
#define RSP(what, key, v, m) vec(what, SM_PROTO_RESPONSE, key, v, m)

/* ---------------------------------------------------------------- the API table */

/* Every field present in version v set (generated test_fill), encoded, decoded back equal with
 * nothing left over, re-encoded to the same bytes. (test_proto.c does this for every message;
 * here it runs for the new APIs even if that list changes.) */
static void roundtrip(const sm_proto_msg_t *d, int16_t v)
{
    if (!d)
        return;
    sm_arena_t a;
    sm_arena_init(&a);
    sm_wbuf_t w1, w2;
    sm_wbuf_init(&w1);
    sm_wbuf_init(&w2);
    void *m = sm_arena_alloc(&a, d->size), *m2 = sm_arena_alloc(&a, d->size);
    d->test_fill(m, &a, v);
    d->encode(&w1, v, m);
    sm_rd_t r;
    sm_rd_init(&r, w1.mem, w1.len);
    bool ok = d->decode(&r, &a, v, m2) == SM_OK && sm_rd_remaining(&r) == 0 && d->test_equal(m, m2);
    if (ok) {
        d->encode(&w2, v, m2);
        ok = w1.len == w2.len && memcmp(w1.mem, w2.mem, w1.len) == 0;
    }
    if (!ok)
        fprintf(stderr, "   round trip failed: %s v%d\n", d->name, v);
    CHECK(ok);
    sm_wbuf_free(&w1);
    sm_wbuf_free(&w2);
    sm_arena_free(&a);
}

/* Versions of each new API, as Kafka 4.0 defines them. */
static void test_api_versions(void)
{
    enum { C = SM_API_LISTENER_CONTROLLER, BC = SM_API_LISTENER_BROKER | SM_API_LISTENER_CONTROLLER };
    static const struct {
        int16_t key, min, max, flex;
        const char *name;
        uint8_t listeners;
    } apis[] = {
        {SM_API_ELECT_LEADERS, 0, 2, 2, "ElectLeaders", BC},
        {SM_API_ALTER_PARTITION_REASSIGNMENTS, 0, 0, 0, "AlterPartitionReassignments", BC},
        {SM_API_LIST_PARTITION_REASSIGNMENTS, 0, 0, 0, "ListPartitionReassignments", BC},
        {SM_API_VOTE, 0, 2, 0, "Vote", C},
        {SM_API_BEGIN_QUORUM_EPOCH, 0, 1, 1, "BeginQuorumEpoch", C},
        {SM_API_END_QUORUM_EPOCH, 0, 1, 1, "EndQuorumEpoch", C},
        {SM_API_DESCRIBE_QUORUM, 0, 2, 0, "DescribeQuorum", BC},
        {SM_API_ALTER_PARTITION, 0, 3, 0, "AlterPartition", C},
        {SM_API_UPDATE_FEATURES, 0, 2, 0, "UpdateFeatures", BC},
        {SM_API_ENVELOPE, 0, 0, 0, "Envelope", C},
        {SM_API_FETCH_SNAPSHOT, 0, 1, 0, "FetchSnapshot", C},
        {SM_API_BROKER_REGISTRATION, 0, 4, 0, "BrokerRegistration", C},
        {SM_API_BROKER_HEARTBEAT, 0, 1, 0, "BrokerHeartbeat", C},
        {SM_API_UNREGISTER_BROKER, 0, 0, 0, "UnregisterBroker", BC},
        {SM_API_CONTROLLER_REGISTRATION, 0, 0, 0, "ControllerRegistration", C},
        {SM_API_ADD_RAFT_VOTER, 0, 0, 0, "AddRaftVoter", BC},
        {SM_API_REMOVE_RAFT_VOTER, 0, 0, 0, "RemoveRaftVoter", BC},
        {SM_API_UPDATE_RAFT_VOTER, 0, 0, 0, "UpdateRaftVoter", C},
    };
    static const int16_t keys[] = {43, 45, 46, 52, 53, 54, 55, 56, 57, 58, 59, 62, 63, 64, 70, 80, 81, 82};
    for (size_t i = 0; i < SM_ARRAY_LEN(apis); i++) {
        CHECK_EQ(apis[i].key, keys[i]);
        const sm_api_desc_t *d = sm_api_desc(apis[i].key);
        CHECK(d != NULL);
        if (!d)
            continue;
        CHECK(strcmp(d->name, apis[i].name) == 0);
        CHECK_EQ(d->min_version, apis[i].min);
        CHECK_EQ(d->max_version, apis[i].max);
        CHECK_EQ(d->flexible_from, apis[i].flex);
        CHECK_EQ(d->listeners, apis[i].listeners);
        CHECK(sm_proto_msg(SM_PROTO_REQUEST, apis[i].key) != NULL);
        CHECK(sm_proto_msg(SM_PROTO_RESPONSE, apis[i].key) != NULL);
        CHECK_EQ(sm_request_header_version(apis[i].key, apis[i].max), apis[i].max >= apis[i].flex ? 2 : 1);
        for (int16_t v = apis[i].min; v <= apis[i].max; v++) {
            roundtrip(sm_proto_msg(SM_PROTO_REQUEST, apis[i].key), v);
            roundtrip(sm_proto_msg(SM_PROTO_RESPONSE, apis[i].key), v);
        }
    }
    CHECK_EQ(sm_api_desc(SM_API_PRODUCE)->listeners, 0); /* not stated in produce.def */
    /* Raft control record types (Kafka's ControlRecordType) */
    CHECK_EQ(SM_CONTROL_LEADER_CHANGE, 2);
    CHECK_EQ(SM_CONTROL_SNAPSHOT_HEADER, 3);
    CHECK_EQ(SM_CONTROL_SNAPSHOT_FOOTER, 4);
    CHECK_EQ(SM_CONTROL_KRAFT_VERSION, 5);
    CHECK_EQ(SM_CONTROL_KRAFT_VOTERS, 6);
    const sm_proto_msg_t *lc = sm_proto_msg(SM_PROTO_CONTROL, SM_CONTROL_LEADER_CHANGE);
    CHECK(lc && strcmp(lc->name, "LeaderChangeMessage") == 0 && lc->kind == SM_PROTO_CONTROL);
    CHECK(sm_proto_msg(SM_PROTO_CONTROL, 0) == NULL); /* ABORT: a txn marker, not here */
    /* metadata record types a cluster writes */
    CHECK_EQ(SM_METADATA_UNREGISTER_BROKER_RECORD, 1);
    CHECK_EQ(SM_METADATA_FENCE_BROKER_RECORD, 7);
    CHECK_EQ(SM_METADATA_UNFENCE_BROKER_RECORD, 8);
    CHECK_EQ(SM_METADATA_BROKER_REGISTRATION_CHANGE_RECORD, 17);
    CHECK_EQ(SM_METADATA_ACCESS_CONTROL_ENTRY_RECORD, 18);
    CHECK_EQ(SM_METADATA_BEGIN_TRANSACTION_RECORD, 23);
    CHECK_EQ(SM_METADATA_REGISTER_CONTROLLER_RECORD, 27);
    for (int t = 0; t <= 27; t++) /* every type but the retired 6, 13 and 16 */
        CHECK((sm_proto_msg(SM_PROTO_RECORD, (int16_t)t) != NULL) == (t != 6 && t != 13 && t != 16));
}

/* ---------------------------------------------------------------- KRaft quorum RPCs */

#define META "__cluster_metadata"

static void test_vote(void)
{
    /* VoteRequest: flexible in every version; v1 adds VoterId and two directory ids,
     * v2 the PreVote flag at the end of the partition. */
    for (int16_t v = 0; v <= 2; v++) {
        sm_vote_request_partition_data_t p;
        sm_vote_request_partition_data_init(&p);
        p.partition_index = 0;
        p.replica_epoch = 5;
        p.replica_id = 1;
        p.last_offset_epoch = 4;
        p.last_offset = 100;
        if (v >= 1) {
            p.replica_directory_id = U(0x11);
            p.voter_directory_id = U(0x22);
        }
        if (v >= 2)
            p.pre_vote = true;
        sm_vote_request_topic_data_t t;
        sm_vote_request_topic_data_init(&t);
        t.topic_name = sm_str(META);
        ONE(t, partitions, p);
        sm_vote_request_t m;
        sm_vote_request_init(&m);
        CHECK_EQ(m.voter_id, -1);
        CHECK_EQ(m.cluster_id.len, -1);
        m.cluster_id = sm_str("c");
        if (v >= 1)
            m.voter_id = 2;
        ONE(m, topics, t);

        reset();
        cstr("c");
        if (v >= 1)
            i32(2);
        carr(1);
        cstr(META);
        carr(1);
        i32(0), i32(5), i32(1);
        if (v >= 1)
            uuid(0x11), uuid(0x22);
        i32(4), i64(100);
        if (v >= 2)
            i8(1);
        notags(); /* partition */
        notags(); /* topic */
        notags(); /* request */
        REQ("vote", SM_API_VOTE, v, &m);
    }

    /* VoteResponse v1: NodeEndpoints is tagged field 0 of the top level (port uint16) */
    sm_vote_response_partition_data_t p;
    sm_vote_response_partition_data_init(&p);
    p.leader_id = 1;
    p.leader_epoch = 5;
    p.vote_granted = true;
    sm_vote_response_topic_data_t t;
    sm_vote_response_topic_data_init(&t);
    t.topic_name = sm_str(META);
    ONE(t, partitions, p);
    sm_vote_response_node_endpoint_t e = {.node_id = 1, .host = sm_str("h"), .port = 65000};
    sm_vote_response_t m;
    sm_vote_response_init(&m);
    ONE(m, topics, t);
    ONE(m, node_endpoints, e);
    reset();
    i16(0);
    carr(1), cstr(META);
    carr(1), i32(0), i16(0), i32(1), i32(5), i8(1), notags();
    notags();
    uv(1);
    tag_begin(0);
    carr(1), i32(1), cstr("h"), u16(65000), notags();
    tag_end();
    RSP("vote response", SM_API_VOTE, 1, &m);
    /* v0 has no tagged NodeEndpoints: the same struct without them */
    NONE(m, node_endpoints);
    BN -= 1 + 2 + 10; /* drop count, tag header and the 10-byte body */
    notags();
    RSP("vote response v0", SM_API_VOTE, 0, &m);
}

static void test_begin_end_quorum_epoch(void)
{
    /* BeginQuorumEpoch v0 is classic (int16 strings, int32 counts, no tag sections) */
    sm_begin_quorum_epoch_request_partition_data_t p;
    sm_begin_quorum_epoch_request_partition_data_init(&p);
    p.leader_id = 1;
    p.leader_epoch = 5;
    sm_begin_quorum_epoch_request_topic_data_t t;
    sm_begin_quorum_epoch_request_topic_data_init(&t);
    t.topic_name = sm_str(META);
    ONE(t, partitions, p);
    sm_begin_quorum_epoch_request_t m;
    sm_begin_quorum_epoch_request_init(&m);
    ONE(m, topics, t);
    reset();
    str(NULL); /* null cluster id */
    arr(1), str(META);
    arr(1), i32(0), i32(1), i32(5);
    REQ("begin quorum epoch v0", SM_API_BEGIN_QUORUM_EPOCH, 0, &m);

    /* v1: flexible, VoterId, VoterDirectoryId, LeaderEndpoints */
    p.voter_directory_id = U(0x33);
    m.voter_id = 2;
    m.cluster_id = sm_str("c");
    sm_begin_quorum_epoch_request_leader_endpoint_t le = {sm_str("CONTROLLER"), sm_str("h"), 9093};
    ONE(m, leader_endpoints, le);
    reset();
    cstr("c"), i32(2);
    carr(1), cstr(META);
    carr(1), i32(0), uuid(0x33), i32(1), i32(5), notags();
    notags();
    carr(1), cstr("CONTROLLER"), cstr("h"), u16(9093), notags();
    notags();
    REQ("begin quorum epoch v1", SM_API_BEGIN_QUORUM_EPOCH, 1, &m);

    sm_begin_quorum_epoch_response_partition_data_t rp = {.partition_index = 0, .error_code = 0,
                                                          .leader_id = 1, .leader_epoch = 5};
    sm_begin_quorum_epoch_response_topic_data_t rt = {sm_str(META), &rp, 1};
    sm_begin_quorum_epoch_response_t r;
    sm_begin_quorum_epoch_response_init(&r);
    ONE(r, topics, rt);
    reset();
    i16(0), arr(1), str(META), arr(1), i32(0), i16(0), i32(1), i32(5);
    RSP("begin quorum epoch response v0", SM_API_BEGIN_QUORUM_EPOCH, 0, &r);

    /* EndQuorumEpoch v0: PreferredSuccessors []int32; v1: PreferredCandidates structs */
    int32_t succ[] = {2, 3};
    sm_end_quorum_epoch_request_partition_data_t ep;
    sm_end_quorum_epoch_request_partition_data_init(&ep);
    ep.leader_id = 1;
    ep.leader_epoch = 5;
    MANY(ep, preferred_successors, succ);
    sm_end_quorum_epoch_request_topic_data_t et = {sm_str(META), &ep, 1};
    sm_end_quorum_epoch_request_t em;
    sm_end_quorum_epoch_request_init(&em);
    em.cluster_id = sm_str("c");
    ONE(em, topics, et);
    reset();
    str("c"), arr(1), str(META), arr(1), i32(0), i32(1), i32(5), arr(2), i32(2), i32(3);
    REQ("end quorum epoch v0", SM_API_END_QUORUM_EPOCH, 0, &em);

    NONE(ep, preferred_successors);
    sm_end_quorum_epoch_request_replica_info_t ri = {2, U(0x44)};
    ONE(ep, preferred_candidates, ri);
    reset();
    cstr("c"), carr(1), cstr(META), carr(1), i32(0), i32(1), i32(5);
    carr(1), i32(2), uuid(0x44), notags();
    notags(), notags();
    carr(0); /* no leader endpoints */
    notags();
    REQ("end quorum epoch v1", SM_API_END_QUORUM_EPOCH, 1, &em);
}

static void test_describe_quorum(void)
{
    sm_describe_quorum_request_partition_data_t qp = {0};
    sm_describe_quorum_request_topic_data_t qt = {sm_str(META), &qp, 1};
    sm_describe_quorum_request_t q;
    sm_describe_quorum_request_init(&q);
    ONE(q, topics, qt);
    reset();
    carr(1), cstr(META), carr(1), i32(0), notags(), notags(), notags();
    REQ("describe quorum", SM_API_DESCRIBE_QUORUM, 0, &q);

    for (int16_t v = 0; v <= 2; v++) {
        /* ReplicaState is one shared struct for CurrentVoters and Observers */
        sm_describe_quorum_response_replica_state_t voters[2], obs;
        for (int i = 0; i < 2; i++) {
            sm_describe_quorum_response_replica_state_init(&voters[i]);
            voters[i].replica_id = 1 + i;
            voters[i].log_end_offset = 100 - i;
            if (v >= 1) {
                voters[i].last_fetch_timestamp = 1000 + i;
                voters[i].last_caught_up_timestamp = 900 + i;
            }
            if (v >= 2)
                voters[i].replica_directory_id = U((uint8_t)(0x50 + i));
        }
        sm_describe_quorum_response_replica_state_init(&obs);
        obs.replica_id = 7;
        obs.log_end_offset = 50;
        CHECK_EQ(obs.last_fetch_timestamp, -1);
        sm_describe_quorum_response_partition_data_t p;
        sm_describe_quorum_response_partition_data_init(&p);
        p.leader_id = 1;
        p.leader_epoch = 5;
        p.high_watermark = 99;
        MANY(p, current_voters, voters);
        ONE(p, observers, obs);
        sm_describe_quorum_response_topic_data_t t = {sm_str(META), &p, 1};
        sm_describe_quorum_response_listener_t l = {sm_str("CONTROLLER"), sm_str("h"), 9093};
        sm_describe_quorum_response_node_t n = {1, &l, 1};
        sm_describe_quorum_response_t m;
        sm_describe_quorum_response_init(&m);
        ONE(m, topics, t);
        if (v >= 2) {
            m.error_message = sm_str(NULL);
            p.error_message = sm_str(NULL);
            ONE(m, nodes, n);
        }
        reset();
        i16(0);
        if (v >= 2)
            cstr(NULL);
        carr(1), cstr(META), carr(1), i32(0), i16(0);
        if (v >= 2)
            cstr(NULL);
        i32(1), i32(5), i64(99);
        carr(2);
        for (int i = 0; i < 2; i++) {
            i32(1 + i);
            if (v >= 2)
                uuid((uint8_t)(0x50 + i));
            i64(100 - i);
            if (v >= 1)
                i64(1000 + i), i64(900 + i);
            notags();
        }
        carr(1), i32(7);
        if (v >= 2)
            uuid(0);
        i64(50);
        if (v >= 1)
            i64(-1), i64(-1);
        notags();
        notags(), notags(); /* partition, topic */
        if (v >= 2)
            carr(1), i32(1), carr(1), cstr("CONTROLLER"), cstr("h"), u16(9093), notags(), notags();
        notags();
        RSP("describe quorum response", SM_API_DESCRIBE_QUORUM, v, &m);
    }
}

static void test_fetch_snapshot(void)
{
    /* v1: ClusterId is tagged field 0 of the request, ReplicaDirectoryId tagged field 0 of
     * the partition; SnapshotId is a nested struct with its own tag section. */
    sm_fetch_snapshot_request_partition_snapshot_t p;
    sm_fetch_snapshot_request_partition_snapshot_init(&p);
    p.current_leader_epoch = 5;
    p.snapshot_id.end_offset = 100;
    p.snapshot_id.epoch = 4;
    p.position = 8192;
    p.replica_directory_id = U(0x66);
    sm_fetch_snapshot_request_topic_snapshot_t t = {sm_str(META), &p, 1};
    sm_fetch_snapshot_request_t m;
    sm_fetch_snapshot_request_init(&m);
    CHECK_EQ(m.max_bytes, 0x7fffffff);
    m.cluster_id = sm_str("c");
    m.replica_id = 2;
    m.max_bytes = 1 << 20;
    ONE(m, topics, t);
    reset();
    i32(2), i32(1 << 20);
    carr(1), cstr(META), carr(1);
    i32(0), i32(5), i64(100), i32(4), notags(), i64(8192);
    uv(1), tag_begin(0), uuid(0x66), tag_end();
    notags();
    uv(1), tag_begin(0), cstr("c"), tag_end();
    REQ("fetch snapshot v1", SM_API_FETCH_SNAPSHOT, 1, &m);
    /* v0: the partition's directory id does not exist (not even tagged) */
    p.replica_directory_id = U(0);
    BN = 0;
    i32(2), i32(1 << 20);
    carr(1), cstr(META), carr(1);
    i32(0), i32(5), i64(100), i32(4), notags(), i64(8192), notags();
    notags();
    uv(1), tag_begin(0), cstr("c"), tag_end();
    REQ("fetch snapshot v0", SM_API_FETCH_SNAPSHOT, 0, &m);

    /* response: CurrentLeader is tagged field 0 of the partition, after the records */
    static const uint8_t chunk[] = {1, 2, 3};
    sm_fetch_snapshot_response_partition_snapshot_t rp;
    sm_fetch_snapshot_response_partition_snapshot_init(&rp);
    CHECK_EQ(rp.unaligned_records.len, 0); /* not nullable: starts empty */
    rp.snapshot_id.end_offset = 100;
    rp.snapshot_id.epoch = 4;
    rp.current_leader.leader_id = 1;
    rp.current_leader.leader_epoch = 5;
    rp.size = 3000;
    rp.position = 8192;
    rp.unaligned_records.ptr = chunk;
    rp.unaligned_records.len = 3;
    sm_fetch_snapshot_response_topic_snapshot_t rt = {sm_str(META), &rp, 1};
    sm_fetch_snapshot_response_t r;
    sm_fetch_snapshot_response_init(&r);
    ONE(r, topics, rt);
    reset();
    i32(0), i16(0), carr(1), cstr(META), carr(1);
    i32(0), i16(0), i64(100), i32(4), notags(), i64(3000), i64(8192), cbytes(chunk, 3);
    uv(1), tag_begin(0), i32(1), i32(5), notags(), tag_end();
    notags(), notags();
    RSP("fetch snapshot response", SM_API_FETCH_SNAPSHOT, 0, &r);
    /* a default CurrentLeader (0, 0: the spec gives no defaults) is not written */
    rp.current_leader.leader_id = 0;
    rp.current_leader.leader_epoch = 0;
    rp.unaligned_records.len = 0;
    reset();
    i32(0), i16(0), carr(1), cstr(META), carr(1);
    i32(0), i16(0), i64(100), i32(4), notags(), i64(3000), i64(8192), cbytes(NULL, 0), notags();
    notags(), notags();
    RSP("fetch snapshot response, no leader", SM_API_FETCH_SNAPSHOT, 0, &r);
}

/* Fetch v12-17 carries the Raft fields; check them against the spec bytes. */
static void test_fetch_raft_fields(void)
{
    sm_fetch_request_fetch_partition_t p;
    sm_fetch_request_fetch_partition_init(&p);
    p.partition = 0;
    p.current_leader_epoch = 5;
    p.fetch_offset = 100;
    p.last_fetched_epoch = 4;
    p.log_start_offset = 0;
    p.partition_max_bytes = 1 << 20;
    p.replica_directory_id = U(0x12);
    sm_fetch_request_fetch_topic_t t;
    sm_fetch_request_fetch_topic_init(&t);
    t.topic_id = U(0x34);
    ONE(t, partitions, p);
    sm_fetch_request_t m;
    sm_fetch_request_init(&m);
    m.cluster_id = sm_str("c");
    m.replica_state.replica_id = 2;
    m.replica_state.replica_epoch = 42;
    m.max_wait_ms = 500;
    m.min_bytes = 1;
    ONE(m, topics, t);
    reset();
    /* v17: no ReplicaId (tagged ReplicaState instead) */
    i32(500), i32(1), i32(0x7fffffff), i8(0), i32(0), i32(-1);
    carr(1), uuid(0x34), carr(1);
    i32(0), i32(5), i64(100), i32(4), i64(0), i32(1 << 20);
    uv(1), tag_begin(0), uuid(0x12), tag_end();
    notags();
    carr(0), cstr("");
    uv(2);
    tag_begin(0), cstr("c"), tag_end();
    tag_begin(1), i32(2), i64(42), notags(), tag_end();
    REQ("fetch v17", SM_API_FETCH, 17, &m);

    /* v16 response: DivergingEpoch, CurrentLeader, SnapshotId (tags 0-2 of the partition)
     * and NodeEndpoints (tag 0 of the response, int32 port, nullable rack) */
    sm_fetch_response_partition_data_t rp;
    sm_fetch_response_partition_data_init(&rp);
    rp.high_watermark = 100;
    rp.last_stable_offset = 100;
    rp.log_start_offset = 0;
    rp.diverging_epoch.epoch = 3;
    rp.diverging_epoch.end_offset = 90;
    rp.current_leader.leader_id = 1;
    rp.current_leader.leader_epoch = 5;
    rp.snapshot_id.end_offset = 80;
    rp.snapshot_id.epoch = 2;
    sm_fetch_response_fetchable_topic_response_t rt;
    sm_fetch_response_fetchable_topic_response_init(&rt);
    rt.topic_id = U(0x34);
    ONE(rt, partitions, rp);
    sm_fetch_response_node_endpoint_t ne = {1, sm_str("h"), 9092, sm_str(NULL)};
    sm_fetch_response_t r;
    sm_fetch_response_init(&r);
    ONE(r, responses, rt);
    ONE(r, node_endpoints, ne);
    reset();
    i32(0), i16(0), i32(0);
    carr(1), uuid(0x34), carr(1);
    i32(0), i16(0), i64(100), i64(100), i64(0);
    carr(0);   /* aborted transactions: empty */
    i32(-1);   /* preferred read replica */
    cbytes(NULL, -1); /* null records */
    uv(3);
    tag_begin(0), i32(3), i64(90), notags(), tag_end();
    tag_begin(1), i32(1), i32(5), notags(), tag_end();
    tag_begin(2), i64(80), i32(2), notags(), tag_end();
    notags();
    uv(1), tag_begin(0), carr(1), i32(1), cstr("h"), i32(9092), cstr(NULL), notags(), tag_end();
    RSP("fetch response v16", SM_API_FETCH, 16, &r);
}

/* ---------------------------------------------------------------- broker lifecycle */

static void test_broker_registration(void)
{
    for (int16_t v = 0; v <= 4; v++) {
        sm_broker_registration_request_listener_t l = {sm_str("PLAINTEXT"), sm_str("h"), 9092, 0};
        sm_broker_registration_request_feature_t f = {sm_str("metadata.version"), 1, 21};
        sm_uuid_t dirs[] = {U(0x78)};
        sm_broker_registration_request_t m;
        sm_broker_registration_request_init(&m);
        CHECK_EQ(m.previous_broker_epoch, -1);
        m.broker_id = 1;
        m.cluster_id = sm_str("cid");
        m.incarnation_id = U(0x77);
        ONE(m, listeners, l);
        ONE(m, features, f);
        m.rack = sm_str(v == 0 ? NULL : "r1");
        if (v >= 1)
            m.is_migrating_zk_broker = false;
        if (v >= 2)
            MANY(m, log_dirs, dirs);
        if (v >= 3)
            m.previous_broker_epoch = 41;
        reset();
        i32(1), cstr("cid"), uuid(0x77);
        carr(1), cstr("PLAINTEXT"), cstr("h"), u16(9092), i16(0), notags();
        carr(1), cstr("metadata.version"), i16(1), i16(21), notags();
        cstr(v == 0 ? NULL : "r1");
        if (v >= 1)
            i8(0);
        if (v >= 2)
            carr(1), uuid(0x78);
        if (v >= 3)
            i64(41);
        notags();
        REQ("broker registration", SM_API_BROKER_REGISTRATION, v, &m);
    }
    sm_broker_registration_response_t r;
    sm_broker_registration_response_init(&r);
    CHECK_EQ(r.broker_epoch, -1);
    r.broker_epoch = 42;
    reset();
    i32(0), i16(0), i64(42), notags();
    RSP("broker registration response", SM_API_BROKER_REGISTRATION, 4, &r);
}

static void test_broker_heartbeat(void)
{
    sm_uuid_t offline[] = {U(0x79)};
    sm_broker_heartbeat_request_t m;
    sm_broker_heartbeat_request_init(&m);
    m.broker_id = 1;
    m.broker_epoch = 42;
    m.current_metadata_offset = 100;
    m.want_shut_down = true;
    MANY(m, offline_log_dirs, offline);
    reset();
    i32(1), i64(42), i64(100), i8(0), i8(1);
    uv(1), tag_begin(0), carr(1), uuid(0x79), tag_end();
    REQ("broker heartbeat v1", SM_API_BROKER_HEARTBEAT, 1, &m);
    NONE(m, offline_log_dirs);
    reset();
    i32(1), i64(42), i64(100), i8(0), i8(1), notags();
    REQ("broker heartbeat v0", SM_API_BROKER_HEARTBEAT, 0, &m);

    sm_broker_heartbeat_response_t r;
    sm_broker_heartbeat_response_init(&r);
    CHECK(r.is_fenced); /* default true */
    r.is_caught_up = true;
    r.is_fenced = false;
    reset();
    i32(0), i16(0), i8(1), i8(0), i8(0), notags();
    RSP("broker heartbeat response", SM_API_BROKER_HEARTBEAT, 1, &r);
}

static void test_unregister_and_controller_registration(void)
{
    sm_unregister_broker_request_t u = {.broker_id = 3};
    reset();
    i32(3), notags();
    REQ("unregister broker", SM_API_UNREGISTER_BROKER, 0, &u);
    sm_unregister_broker_response_t ur;
    sm_unregister_broker_response_init(&ur);
    ur.error_code = 69; /* BROKER_ID_NOT_REGISTERED */
    ur.error_message = sm_str(NULL);
    reset();
    i32(0), i16(69), cstr(NULL), notags();
    RSP("unregister broker response", SM_API_UNREGISTER_BROKER, 0, &ur);

    sm_controller_registration_request_listener_t l = {sm_str("CONTROLLER"), sm_str("h"), 9093, 0};
    sm_controller_registration_request_feature_t f = {sm_str("kraft.version"), 0, 1};
    sm_controller_registration_request_t c;
    sm_controller_registration_request_init(&c);
    c.controller_id = 3000;
    c.incarnation_id = U(0x7a);
    c.zk_migration_ready = true;
    ONE(c, listeners, l);
    ONE(c, features, f);
    reset();
    i32(3000), uuid(0x7a), i8(1);
    carr(1), cstr("CONTROLLER"), cstr("h"), u16(9093), i16(0), notags();
    carr(1), cstr("kraft.version"), i16(0), i16(1), notags();
    notags();
    REQ("controller registration", SM_API_CONTROLLER_REGISTRATION, 0, &c);
    sm_controller_registration_response_t cr;
    sm_controller_registration_response_init(&cr);
    cr.throttle_time_ms = 7;
    cr.error_message = sm_str("x");
    reset();
    i32(7), i16(0), cstr("x"), notags();
    RSP("controller registration response", SM_API_CONTROLLER_REGISTRATION, 0, &cr);
}

static void test_alter_partition(void)
{
    for (int16_t v = 0; v <= 3; v++) {
        int32_t isr[] = {1, 2};
        sm_alter_partition_request_broker_state_t bs[2] = {{1, 42}, {2, 43}};
        sm_alter_partition_request_partition_data_t p;
        sm_alter_partition_request_partition_data_init(&p);
        p.leader_epoch = 5;
        p.partition_epoch = 7;
        if (v <= 2)
            MANY(p, new_isr, isr);
        else
            MANY(p, new_isr_with_epochs, bs);
        if (v >= 1)
            p.leader_recovery_state = 1;
        sm_alter_partition_request_topic_data_t t;
        sm_alter_partition_request_topic_data_init(&t);
        if (v <= 1)
            t.topic_name = sm_str("t");
        else
            t.topic_id = U(0x7b);
        ONE(t, partitions, p);
        sm_alter_partition_request_t m;
        sm_alter_partition_request_init(&m);
        m.broker_id = 1;
        m.broker_epoch = 42;
        ONE(m, topics, t);
        reset();
        i32(1), i64(42), carr(1);
        if (v <= 1)
            cstr("t");
        else
            uuid(0x7b);
        carr(1), i32(0), i32(5);
        if (v <= 2)
            carr(2), i32(1), i32(2);
        else
            carr(2), i32(1), i64(42), notags(), i32(2), i64(43), notags();
        if (v >= 1)
            i8(1);
        i32(7), notags();
        notags(), notags();
        REQ("alter partition", SM_API_ALTER_PARTITION, v, &m);
    }
    int32_t isr[] = {1, 2};
    sm_alter_partition_response_partition_data_t rp;
    sm_alter_partition_response_partition_data_init(&rp);
    rp.leader_id = 1;
    rp.leader_epoch = 5;
    MANY(rp, isr, isr);
    rp.partition_epoch = 8;
    sm_alter_partition_response_topic_data_t rt;
    sm_alter_partition_response_topic_data_init(&rt);
    rt.topic_id = U(0x7b);
    ONE(rt, partitions, rp);
    sm_alter_partition_response_t r;
    sm_alter_partition_response_init(&r);
    ONE(r, topics, rt);
    reset();
    i32(0), i16(0), carr(1), uuid(0x7b), carr(1);
    i32(0), i16(0), i32(1), i32(5), carr(2), i32(1), i32(2), i8(0), i32(8), notags();
    notags(), notags();
    RSP("alter partition response", SM_API_ALTER_PARTITION, 2, &r);
}

/* ---------------------------------------------------------------- admin RPCs */

static void test_elect_leaders(void)
{
    int32_t parts[] = {0, 1};
    sm_elect_leaders_request_topic_partitions_t tp = {sm_str("t"), parts, 2};
    sm_elect_leaders_request_t m;
    sm_elect_leaders_request_init(&m);
    CHECK_EQ(m.timeout_ms, 60000);
    ONE(m, topic_partitions, tp);
    reset();
    arr(1), str("t"), arr(2), i32(0), i32(1), i32(60000); /* v0: no ElectionType */
    REQ("elect leaders v0", SM_API_ELECT_LEADERS, 0, &m);
    m.election_type = 1; /* unclean */
    reset();
    i8(1), arr(1), str("t"), arr(2), i32(0), i32(1), i32(60000);
    REQ("elect leaders v1", SM_API_ELECT_LEADERS, 1, &m);
    NUL(m, topic_partitions); /* all partitions */
    reset();
    i8(1), carr(-1), i32(60000), notags();
    REQ("elect leaders v2", SM_API_ELECT_LEADERS, 2, &m);

    sm_elect_leaders_response_partition_result_t pr = {0, 84, sm_str(NULL)};
    sm_elect_leaders_response_replica_election_result_t er = {sm_str("t"), &pr, 1};
    sm_elect_leaders_response_t r;
    sm_elect_leaders_response_init(&r);
    ONE(r, replica_election_results, er);
    reset();
    i32(0), i16(0), arr(1), str("t"), arr(1), i32(0), i16(84), str(NULL);
    RSP("elect leaders response v1", SM_API_ELECT_LEADERS, 1, &r);
    reset();
    i32(0), i16(0), carr(1), cstr("t"), carr(1), i32(0), i16(84), cstr(NULL), notags(), notags();
    notags();
    RSP("elect leaders response v2", SM_API_ELECT_LEADERS, 2, &r);
    reset();
    i32(0), arr(1), str("t"), arr(1), i32(0), i16(84), str(NULL); /* v0: no top-level error */
    RSP("elect leaders response v0", SM_API_ELECT_LEADERS, 0, &r);
}

static void test_reassignments(void)
{
    int32_t reps[] = {1, 2, 3};
    sm_alter_partition_reassignments_request_reassignable_partition_t ps[2] = {
        {0, reps, 3}, {1, NULL, -1} /* null replicas: cancel */};
    sm_alter_partition_reassignments_request_reassignable_topic_t t = {sm_str("t"), ps, 2};
    sm_alter_partition_reassignments_request_t m;
    sm_alter_partition_reassignments_request_init(&m);
    ONE(m, topics, t);
    reset();
    i32(60000), carr(1), cstr("t"), carr(2);
    i32(0), carr(3), i32(1), i32(2), i32(3), notags();
    i32(1), carr(-1), notags();
    notags(), notags();
    REQ("alter partition reassignments", SM_API_ALTER_PARTITION_REASSIGNMENTS, 0, &m);
    sm_alter_partition_reassignments_response_reassignable_partition_response_t pr[2] = {
        {0, 0, sm_str(NULL)}, {1, 85, sm_str("none")}};
    sm_alter_partition_reassignments_response_reassignable_topic_response_t tr = {sm_str("t"), pr, 2};
    sm_alter_partition_reassignments_response_t r;
    sm_alter_partition_reassignments_response_init(&r);
    r.error_message = sm_str(NULL);
    ONE(r, responses, tr);
    reset();
    i32(0), i16(0), cstr(NULL), carr(1), cstr("t"), carr(2);
    i32(0), i16(0), cstr(NULL), notags(), i32(1), i16(85), cstr("none"), notags();
    notags(), notags();
    RSP("alter partition reassignments response", SM_API_ALTER_PARTITION_REASSIGNMENTS, 0, &r);

    sm_list_partition_reassignments_request_t l;
    sm_list_partition_reassignments_request_init(&l);
    CHECK_EQ(l.topics_count, -1); /* default null: all */
    reset();
    i32(60000), carr(-1), notags();
    REQ("list partition reassignments", SM_API_LIST_PARTITION_REASSIGNMENTS, 0, &l);
    int32_t rep[] = {1, 2, 4}, add[] = {4}, rem[] = {3};
    sm_list_partition_reassignments_response_ongoing_partition_reassignment_t op = {
        0, rep, 3, add, 1, rem, 1};
    sm_list_partition_reassignments_response_ongoing_topic_reassignment_t ot = {sm_str("t"), &op, 1};
    sm_list_partition_reassignments_response_t lr;
    sm_list_partition_reassignments_response_init(&lr);
    lr.error_message = sm_str(NULL);
    ONE(lr, topics, ot);
    reset();
    i32(0), i16(0), cstr(NULL), carr(1), cstr("t"), carr(1), i32(0);
    carr(3), i32(1), i32(2), i32(4), carr(1), i32(4), carr(1), i32(3), notags();
    notags(), notags();
    RSP("list partition reassignments response", SM_API_LIST_PARTITION_REASSIGNMENTS, 0, &lr);
}

static void test_envelope(void)
{
    static const uint8_t inner[] = {0, 19, 0, 7, 0, 0, 0, 1}, ip[] = {127, 0, 0, 1};
    sm_envelope_request_t m;
    sm_envelope_request_init(&m);
    m.request_data = (sm_bytes_t){inner, sizeof inner};
    m.request_principal = (sm_bytes_t){NULL, -1};
    m.client_host_address = (sm_bytes_t){ip, 4};
    reset();
    cbytes(inner, sizeof inner), cbytes(NULL, -1), cbytes(ip, 4), notags();
    REQ("envelope", SM_API_ENVELOPE, 0, &m);
    sm_envelope_response_t r;
    sm_envelope_response_init(&r);
    CHECK_EQ(r.response_data.len, -1);
    r.error_code = 41; /* NOT_CONTROLLER */
    reset();
    cbytes(NULL, -1), i16(41), notags();
    RSP("envelope response", SM_API_ENVELOPE, 0, &r);
}

static void test_update_features(void)
{
    for (int16_t v = 0; v <= 2; v++) {
        sm_update_features_request_feature_update_key_t k;
        sm_update_features_request_feature_update_key_init(&k);
        CHECK_EQ(k.upgrade_type, 1);
        k.feature = sm_str("metadata.version");
        k.max_version_level = 20;
        if (v == 0)
            k.allow_downgrade = true;
        else
            k.upgrade_type = 2;
        sm_update_features_request_t m;
        sm_update_features_request_init(&m);
        CHECK_EQ(m.timeout_ms, 60000);
        ONE(m, feature_updates, k);
        if (v >= 1)
            m.validate_only = true;
        reset();
        i32(60000), carr(1), cstr("metadata.version"), i16(20);
        v == 0 ? i8(1) : i8(2);
        notags();
        if (v >= 1)
            i8(1);
        notags();
        REQ("update features", SM_API_UPDATE_FEATURES, v, &m);

        sm_update_features_response_updatable_feature_result_t fr = {sm_str("metadata.version"), 0,
                                                                     sm_str(NULL)};
        sm_update_features_response_t r;
        sm_update_features_response_init(&r);
        r.error_message = sm_str(NULL);
        if (v <= 1)
            ONE(r, results, fr);
        reset();
        i32(0), i16(0), cstr(NULL);
        if (v <= 1)
            carr(1), cstr("metadata.version"), i16(0), cstr(NULL), notags();
        notags();
        RSP("update features response", SM_API_UPDATE_FEATURES, v, &r);
    }
}

static void test_raft_voters(void)
{
    sm_add_raft_voter_request_listener_t l = {sm_str("CONTROLLER"), sm_str("h"), 9093};
    sm_add_raft_voter_request_t a;
    sm_add_raft_voter_request_init(&a);
    a.cluster_id = sm_str("c");
    a.timeout_ms = 30000;
    a.voter_id = 4;
    a.voter_directory_id = U(0x7c);
    ONE(a, listeners, l);
    reset();
    cstr("c"), i32(30000), i32(4), uuid(0x7c);
    carr(1), cstr("CONTROLLER"), cstr("h"), u16(9093), notags();
    notags();
    REQ("add raft voter", SM_API_ADD_RAFT_VOTER, 0, &a);
    sm_add_raft_voter_response_t ar;
    sm_add_raft_voter_response_init(&ar);
    ar.error_message = sm_str(NULL);
    reset();
    i32(0), i16(0), cstr(NULL), notags();
    RSP("add raft voter response", SM_API_ADD_RAFT_VOTER, 0, &ar);

    sm_remove_raft_voter_request_t rm;
    sm_remove_raft_voter_request_init(&rm);
    rm.cluster_id = sm_str(NULL);
    rm.voter_id = 4;
    rm.voter_directory_id = U(0x7c);
    reset();
    cstr(NULL), i32(4), uuid(0x7c), notags();
    REQ("remove raft voter", SM_API_REMOVE_RAFT_VOTER, 0, &rm);

    sm_update_raft_voter_request_listener_t ul = {sm_str("CONTROLLER"), sm_str("h"), 9093};
    sm_update_raft_voter_request_t u;
    sm_update_raft_voter_request_init(&u);
    u.cluster_id = sm_str("c");
    u.current_leader_epoch = 5;
    u.voter_id = 4;
    u.voter_directory_id = U(0x7c);
    ONE(u, listeners, ul);
    u.k_raft_version_feature.min_supported_version = 0;
    u.k_raft_version_feature.max_supported_version = 1;
    reset();
    cstr("c"), i32(5), i32(4), uuid(0x7c);
    carr(1), cstr("CONTROLLER"), cstr("h"), u16(9093), notags();
    i16(0), i16(1), notags(); /* the KRaftVersionFeature struct */
    notags();
    REQ("update raft voter", SM_API_UPDATE_RAFT_VOTER, 0, &u);
    /* the response's CurrentLeader is a tagged struct (defaults -1, -1, "", 0) */
    sm_update_raft_voter_response_t ur;
    sm_update_raft_voter_response_init(&ur);
    CHECK_EQ(ur.current_leader.leader_id, -1);
    reset();
    i32(0), i16(0), notags();
    RSP("update raft voter response, no leader", SM_API_UPDATE_RAFT_VOTER, 0, &ur);
    ur.error_code = 6; /* NOT_LEADER_OR_FOLLOWER */
    ur.current_leader.leader_id = 1;
    ur.current_leader.leader_epoch = 5;
    ur.current_leader.host = sm_str("h");
    ur.current_leader.port = 9093;
    reset();
    i32(0), i16(6), uv(1), tag_begin(0), i32(1), i32(5), cstr("h"), i32(9093), notags(), tag_end();
    RSP("update raft voter response", SM_API_UPDATE_RAFT_VOTER, 0, &ur);
}

/* ---------------------------------------------------------------- records */

static void test_control_records(void)
{
    for (int16_t v = 0; v <= 1; v++) {
        sm_leader_change_message_voter_t voters[3], granting;
        for (int i = 0; i < 3; i++) {
            sm_leader_change_message_voter_init(&voters[i]);
            voters[i].voter_id = 1 + i;
            if (v >= 1)
                voters[i].voter_directory_id = U((uint8_t)(0x80 + i));
        }
        granting = voters[0];
        sm_leader_change_message_t m;
        sm_leader_change_message_init(&m);
        m.version = v;
        m.leader_id = 1;
        MANY(m, voters, voters);
        ONE(m, granting_voters, granting);
        reset();
        i16(v), i32(1), carr(3);
        for (int i = 0; i < 3; i++) {
            i32(1 + i);
            if (v >= 1)
                uuid((uint8_t)(0x80 + i));
            notags();
        }
        carr(1), i32(1);
        if (v >= 1)
            uuid(0x80);
        notags();
        notags();
        vec("leader change", SM_PROTO_CONTROL, SM_CONTROL_LEADER_CHANGE, v, &m);
    }
    sm_snapshot_header_record_t h = {.version = 0, .last_contained_log_timestamp = 1700000000000LL};
    reset();
    i16(0), i64(1700000000000LL), notags();
    vec("snapshot header", SM_PROTO_CONTROL, SM_CONTROL_SNAPSHOT_HEADER, 0, &h);
    sm_snapshot_footer_record_t f = {0};
    reset();
    i16(0), notags();
    vec("snapshot footer", SM_PROTO_CONTROL, SM_CONTROL_SNAPSHOT_FOOTER, 0, &f);
    sm_k_raft_version_record_t kv = {0, 1};
    reset();
    i16(0), i16(1), notags();
    vec("kraft version", SM_PROTO_CONTROL, SM_CONTROL_KRAFT_VERSION, 0, &kv);

    sm_voters_record_endpoint_t ep = {sm_str("CONTROLLER"), sm_str("h"), 9093};
    sm_voters_record_voter_t vo;
    sm_voters_record_voter_init(&vo);
    vo.voter_id = 1;
    vo.voter_directory_id = U(0x81);
    ONE(vo, endpoints, ep);
    vo.k_raft_version_feature.min_supported_version = 0;
    vo.k_raft_version_feature.max_supported_version = 1;
    sm_voters_record_t vr;
    sm_voters_record_init(&vr);
    ONE(vr, voters, vo);
    reset();
    i16(0), carr(1), i32(1), uuid(0x81);
    carr(1), cstr("CONTROLLER"), cstr("h"), u16(9093), notags();
    i16(0), i16(1), notags();
    notags();
    notags();
    vec("voters", SM_PROTO_CONTROL, SM_CONTROL_KRAFT_VOTERS, 0, &vr);
}

#define REC(what, type, v, m) vec(what, SM_PROTO_RECORD, type, v, m)

static void test_metadata_records(void)
{
    sm_fence_broker_record_t fb = {1, 42};
    reset();
    i32(1), i64(42), notags();
    REC("fence broker", SM_METADATA_FENCE_BROKER_RECORD, 0, &fb);
    sm_unfence_broker_record_t ub = {1, 42};
    REC("unfence broker", SM_METADATA_UNFENCE_BROKER_RECORD, 0, &ub);
    sm_unregister_broker_record_t ur = {1, 42};
    REC("unregister broker", SM_METADATA_UNREGISTER_BROKER_RECORD, 0, &ur);

    /* BrokerRegistrationChangeRecord: everything but id and epoch is tagged */
    sm_uuid_t dirs[] = {U(0x90)};
    sm_broker_registration_change_record_t bc;
    sm_broker_registration_change_record_init(&bc);
    bc.broker_id = 1;
    bc.broker_epoch = 42;
    bc.fenced = -1; /* unfenced */
    bc.in_controlled_shutdown = 1;
    MANY(bc, log_dirs, dirs);
    reset();
    i32(1), i64(42), uv(3);
    tag_begin(0), i8(-1), tag_end();
    tag_begin(1), i8(1), tag_end();
    tag_begin(2), carr(1), uuid(0x90), tag_end();
    REC("broker registration change", SM_METADATA_BROKER_REGISTRATION_CHANGE_RECORD, 2, &bc);
    NONE(bc, log_dirs);
    bc.in_controlled_shutdown = 0;
    reset();
    i32(1), i64(42), uv(1), tag_begin(0), i8(-1), tag_end();
    REC("broker registration change v0", SM_METADATA_BROKER_REGISTRATION_CHANGE_RECORD, 0, &bc);

    sm_register_controller_record_controller_endpoint_t ce = {sm_str("CONTROLLER"), sm_str("h"),
                                                              9093, 0};
    sm_register_controller_record_controller_feature_t cf = {sm_str("kraft.version"), 0, 1};
    sm_register_controller_record_t rc;
    sm_register_controller_record_init(&rc);
    rc.controller_id = 3000;
    rc.incarnation_id = U(0x91);
    ONE(rc, end_points, ce);
    ONE(rc, features, cf);
    reset();
    i32(3000), uuid(0x91), i8(0);
    carr(1), cstr("CONTROLLER"), cstr("h"), u16(9093), i16(0), notags();
    carr(1), cstr("kraft.version"), i16(0), i16(1), notags();
    notags();
    REC("register controller", SM_METADATA_REGISTER_CONTROLLER_RECORD, 0, &rc);

    sm_begin_transaction_record_t bt;
    sm_begin_transaction_record_init(&bt);
    CHECK_EQ(bt.name.len, -1);
    reset();
    notags();
    REC("begin transaction, no name", SM_METADATA_BEGIN_TRANSACTION_RECORD, 0, &bt);
    bt.name = sm_str("create topics");
    reset();
    uv(1), tag_begin(0), cstr("create topics"), tag_end();
    REC("begin transaction", SM_METADATA_BEGIN_TRANSACTION_RECORD, 0, &bt);
    sm_end_transaction_record_t et;
    sm_end_transaction_record_init(&et);
    reset();
    notags();
    REC("end transaction", SM_METADATA_END_TRANSACTION_RECORD, 0, &et);

    sm_client_quota_record_entity_data_t ent = {sm_str("user"), sm_str(NULL)};
    sm_client_quota_record_t cq;
    sm_client_quota_record_init(&cq);
    ONE(cq, entity, ent);
    cq.key = sm_str("producer_byte_rate");
    cq.value = 1024.5;
    reset();
    carr(1), cstr("user"), cstr(NULL), notags(), cstr("producer_byte_rate"), f64(1024.5), i8(0);
    notags();
    REC("client quota", SM_METADATA_CLIENT_QUOTA_RECORD, 0, &cq);

    sm_access_control_entry_record_t ace;
    sm_access_control_entry_record_init(&ace);
    ace.id = U(0x92);
    ace.resource_type = 2;
    ace.resource_name = sm_str("t");
    ace.pattern_type = 3;
    ace.principal = sm_str("User:a");
    ace.host = sm_str("*");
    ace.operation = 3;
    ace.permission_type = 3;
    reset();
    uuid(0x92), i8(2), cstr("t"), i8(3), cstr("User:a"), cstr("*"), i8(3), i8(3), notags();
    REC("acl", SM_METADATA_ACCESS_CONTROL_ENTRY_RECORD, 0, &ace);
}

/* ---------------------------------------------------------------- hostile input */

static sm_err_t decode_bytes(sm_proto_kind_t kind, int16_t key, int16_t v, const uint8_t *p,
                             size_t n, sm_arena_t *a, size_t *left)
{
    const sm_proto_msg_t *d = sm_proto_msg(kind, key);
    SM_ASSERT(d);
    sm_rd_t r;
    sm_rd_init(&r, p, n);
    void *m = sm_arena_alloc(a, d->size);
    sm_err_t err = d->decode(&r, a, v, m);
    if (left)
        *left = sm_rd_remaining(&r);
    return err;
}

static void test_hostile(void)
{
    sm_arena_t a;
    sm_arena_init(&a);
    size_t before = a.total;

    /* huge compact counts: topics of a Vote request, voters of DescribeQuorum, uuids of a
     * BrokerRegistration (each needs 16 bytes: 4 remaining bytes cannot hold 2) */
    reset();
    cstr("c"), uv(0xfffffff0u);
    CHECK_EQ(decode_bytes(SM_PROTO_REQUEST, SM_API_VOTE, 2, B, BN, &a, NULL), SM_ERR_PARSE);
    reset();
    i16(0), cstr(NULL), carr(1), cstr(META), carr(1), i32(0), i16(0), cstr(NULL), i32(1), i32(5);
    i64(99), uv(0x7fffffff), i32(0), i32(0);
    CHECK_EQ(decode_bytes(SM_PROTO_RESPONSE, SM_API_DESCRIBE_QUORUM, 2, B, BN, &a, NULL),
             SM_ERR_PARSE);
    reset();
    i32(1), cstr("cid"), uuid(1), carr(0), carr(0), cstr(NULL), i8(0), carr(2), i32(0);
    CHECK_EQ(decode_bytes(SM_PROTO_REQUEST, SM_API_BROKER_REGISTRATION, 2, B, BN, &a, NULL),
             SM_ERR_PARSE);
    /* classic int32 counts: ElectLeaders v1 and BeginQuorumEpoch v0 */
    reset();
    i8(0), arr(0x7fffffff), str("t");
    CHECK_EQ(decode_bytes(SM_PROTO_REQUEST, SM_API_ELECT_LEADERS, 1, B, BN, &a, NULL), SM_ERR_PARSE);
    reset();
    str(NULL), arr(1), str(META), arr(-5);
    CHECK_EQ(decode_bytes(SM_PROTO_REQUEST, SM_API_BEGIN_QUORUM_EPOCH, 0, B, BN, &a, NULL),
             SM_ERR_PARSE);
    /* null where the spec does not allow it: BeginQuorumEpoch v0 topics */
    reset();
    str(NULL), arr(-1);
    CHECK_EQ(decode_bytes(SM_PROTO_REQUEST, SM_API_BEGIN_QUORUM_EPOCH, 0, B, BN, &a, NULL),
             SM_ERR_PARSE);
    /* ...but null Replicas in a reassignment is a cancellation */
    reset();
    i32(1000), carr(1), cstr("t"), carr(1), i32(0), carr(-1), notags(), notags(), notags();
    size_t left = 99;
    CHECK_EQ(decode_bytes(SM_PROTO_REQUEST, SM_API_ALTER_PARTITION_REASSIGNMENTS, 0, B, BN, &a,
                          &left),
             SM_OK);
    CHECK_EQ(left, 0);
    CHECK(a.total - before < 64 * 1024); /* no count made the decoders allocate much */

    /* tagged fields: a size larger than what remains, a known tag whose body is malformed
     * (BrokerHeartbeat's OfflineLogDirs claiming 3 uuids in 17 bytes), a body longer than
     * its field (left-over bytes inside a tag are refused), and an unknown tag (skipped) */
    reset();
    i32(1), i64(42), i64(100), i8(0), i8(0), uv(1), uv(0), uv(100), carr(1), uuid(1);
    CHECK_EQ(decode_bytes(SM_PROTO_REQUEST, SM_API_BROKER_HEARTBEAT, 1, B, BN, &a, NULL),
             SM_ERR_PARSE);
    reset();
    i32(1), i64(42), i64(100), i8(0), i8(0), uv(1), tag_begin(0), carr(3), uuid(1), tag_end();
    CHECK_EQ(decode_bytes(SM_PROTO_REQUEST, SM_API_BROKER_HEARTBEAT, 1, B, BN, &a, NULL),
             SM_ERR_PARSE);
    reset();
    i32(1), i64(42), i64(100), i8(0), i8(0), uv(1), tag_begin(7), raw("xyz", 3), tag_end();
    left = 99;
    CHECK_EQ(decode_bytes(SM_PROTO_REQUEST, SM_API_BROKER_HEARTBEAT, 1, B, BN, &a, &left), SM_OK);
    CHECK_EQ(left, 0);
    /* tagged field 0 of a VoteResponse v1 with a truncated endpoint inside */
    reset();
    i16(0), carr(0), uv(1), tag_begin(0), carr(1), i32(1), cstr("h"), tag_end();
    CHECK_EQ(decode_bytes(SM_PROTO_RESPONSE, SM_API_VOTE, 1, B, BN, &a, NULL), SM_ERR_PARSE);
    /* a varint of more than 5 bytes as a compact string length */
    reset();
    uv(0xffffffffu);
    B[BN - 1] |= 0x80;
    B[BN++] = 0x01;
    CHECK_EQ(decode_bytes(SM_PROTO_REQUEST, SM_API_VOTE, 0, B, BN, &a, NULL), SM_ERR_PARSE);
    /* a string length past the end of the buffer */
    reset();
    cstr("c"), carr(1), uv(200), raw("abc", 3);
    CHECK_EQ(decode_bytes(SM_PROTO_REQUEST, SM_API_VOTE, 0, B, BN, &a, NULL), SM_ERR_PARSE);
    /* a negative records length other than null (classic -1 is null, -2 is garbage) in a
     * FetchSnapshot response, where the records are not nullable at all */
    reset();
    i32(0), i16(0), carr(1), cstr(META), carr(1), i32(0), i16(0), i64(1), i32(1), notags();
    i64(3), i64(0), cbytes(NULL, -1), notags(), notags(), notags();
    CHECK_EQ(decode_bytes(SM_PROTO_RESPONSE, SM_API_FETCH_SNAPSHOT, 0, B, BN, &a, NULL),
             SM_ERR_PARSE);

    /* every new message: random bytes never crash and never read past the buffer (the
     * sanitizer builds check the latter); a decoder either fails or accounts for bytes */
    uint32_t seed = 12345;
    int ok = 0, bad = 0;
    for (size_t i = 0; i < sm_proto_msgs_count; i++) {
        const sm_proto_msg_t *d = &sm_proto_msgs[i];
        if (!(d->kind == SM_PROTO_CONTROL || d->key == 43 || d->key == 45 || d->key == 46 ||
              (d->key >= 52 && d->key <= 59) || (d->key >= 62 && d->key <= 64) || d->key == 70 ||
              (d->key >= 80 && d->key <= 82)))
            continue;
        for (int16_t v = d->min_version; v <= d->max_version; v++)
            for (int round = 0; round < 200; round++) {
                uint8_t buf[96];
                size_t n = (size_t)(round % 96);
                for (size_t k = 0; k < n; k++) {
                    seed = seed * 1103515245u + 12345u;
                    buf[k] = (uint8_t)(seed >> 16);
                    if (round % 3 == 0 && (buf[k] & 0x80))
                        buf[k] &= 0x03; /* many small counts and lengths */
                }
                sm_arena_reset(&a);
                sm_rd_t r;
                sm_rd_init(&r, buf, n);
                void *m = sm_arena_alloc(&a, d->size);
                sm_err_t err = d->decode(&r, &a, v, m);
                if (err == SM_OK)
                    ok++;
                else if (err == SM_ERR_PARSE)
                    bad++;
                else
                    CHECK(!"unexpected error");
            }
    }
    fprintf(stderr, "   random input: %d decoded, %d refused\n", ok, bad);
    CHECK(bad > 0);
    sm_arena_free(&a);
}

int main(void)
{
    RUN(test_api_versions);
    RUN(test_vote);
    RUN(test_begin_end_quorum_epoch);
    RUN(test_describe_quorum);
    RUN(test_fetch_snapshot);
    RUN(test_fetch_raft_fields);
    RUN(test_broker_registration);
    RUN(test_broker_heartbeat);
    RUN(test_unregister_and_controller_registration);
    RUN(test_alter_partition);
    RUN(test_elect_leaders);
    RUN(test_reassignments);
    RUN(test_envelope);
    RUN(test_update_features);
    RUN(test_raft_voters);
    RUN(test_control_records);
    RUN(test_metadata_records);
    RUN(test_hostile);
    fprintf(stderr, "   %d spec vectors\n", nvectors);
    TEST_MAIN_END();
}
