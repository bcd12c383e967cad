/* test_raft_wire.c - election messages on Kafka's wire (src/raft/raft_wire.c):
 * every request and response round-trips at every version, a pre-vote needs
 * Vote v2, and a hostile or misdirected request (another partition, another
 * cluster, another voter, too many candidates, truncated bytes) is refused
 * with the Kafka code to answer, never accepted. */
#include "raft_wire.h"
#include "sm_proto_gen.h"
#include "sm_test.h"

#include <string.h>

static sm_err_t roundtrip_req(const sm_raft_msg_t *in, int16_t version, const char *cid_send,
                              const char *cid_recv, int32_t self, sm_raft_msg_t *out, int16_t *kerr)
{
    sm_wbuf_t w;
    sm_wbuf_init(&w);
    int16_t key;
    sm_err_t rc = sm_raft_wire_encode_request(in, cid_send, version, &key, &w);
    if (rc == SM_OK) {
        sm_arena_t a;
        sm_arena_init(&a);
        sm_rd_t r;
        sm_rd_init(&r, w.mem, w.len);
        rc = sm_raft_wire_decode_request(key, version, &r, &a, self, cid_recv, out, kerr);
        sm_arena_free(&a);
    }
    sm_wbuf_free(&w);
    return rc;
}

static void test_vote(void)
{
    sm_raft_msg_t m = {.kind = SM_RAFT_MSG_VOTE, .from = 2, .to = 1};
    m.u.vote.candidate_epoch = 7;
    m.u.vote.candidate_id = 2;
    m.u.vote.last_offset_epoch = 6;
    m.u.vote.last_offset = 1234;
    for (int16_t v = 0; v <= 2; v++) {
        sm_raft_msg_t out;
        int16_t kerr;
        CHECK_EQ(roundtrip_req(&m, v, "CID", "CID", 1, &out, &kerr), SM_OK);
        CHECK(out.kind == SM_RAFT_MSG_VOTE && out.from == 2 && out.to == 1);
        CHECK(out.u.vote.candidate_epoch == 7 && out.u.vote.candidate_id == 2);
        CHECK(out.u.vote.last_offset_epoch == 6 && out.u.vote.last_offset == 1234);
        CHECK(!out.u.vote.pre_vote);
    }
    m.u.vote.pre_vote = true;
    sm_raft_msg_t out;
    int16_t kerr;
    CHECK_EQ(roundtrip_req(&m, 1, "CID", "CID", 1, &out, &kerr), SM_ERR_UNSUPPORTED);
    CHECK_EQ(roundtrip_req(&m, 2, "CID", "CID", 1, &out, &kerr), SM_OK);
    CHECK(out.u.vote.pre_vote);
    /* another cluster; a vote meant for voter 3 reaching voter 1 */
    CHECK_EQ(roundtrip_req(&m, 2, "OTHER", "CID", 1, &out, &kerr), SM_ERR_INVALID);
    CHECK_EQ(kerr, 104);
    CHECK_EQ(roundtrip_req(&m, 2, "CID", "CID", 3, &out, &kerr), SM_ERR_INVALID);
    CHECK_EQ(kerr, 42);
    /* v0 has no voter id: accepted */
    m.u.vote.pre_vote = false;
    CHECK_EQ(roundtrip_req(&m, 0, "CID", "CID", 3, &out, &kerr), SM_OK);

    /* the response, granted and refused, carries the request's pre-vote flag */
    sm_raft_msg_t req = m;
    req.u.vote.pre_vote = true;
    for (int16_t v = 0; v <= 2; v++) {
        sm_raft_msg_t resp = {.kind = SM_RAFT_MSG_VOTE_RESP, .from = 1, .to = 2};
        resp.u.vote_resp.leader_id = 3;
        resp.u.vote_resp.leader_epoch = 7;
        resp.u.vote_resp.vote_granted = v != 1;
        sm_wbuf_t w;
        sm_wbuf_init(&w);
        CHECK_EQ(sm_raft_wire_encode_response(&resp, v, &w), SM_OK);
        sm_arena_t a;
        sm_arena_init(&a);
        sm_rd_t r;
        sm_rd_init(&r, w.mem, w.len);
        sm_raft_msg_t got;
        CHECK_EQ(sm_raft_wire_decode_response(&req, v, &r, &a, &got), SM_OK);
        CHECK(got.kind == SM_RAFT_MSG_VOTE_RESP && got.from == 1 && got.to == 2);
        CHECK(got.u.vote_resp.leader_id == 3 && got.u.vote_resp.leader_epoch == 7);
        CHECK(got.u.vote_resp.vote_granted == (v != 1) && got.u.vote_resp.pre_vote);
        /* truncated: never a success */
        sm_rd_init(&r, w.mem, w.len / 2);
        CHECK(sm_raft_wire_decode_response(&req, v, &r, &a, &got) != SM_OK);
        sm_arena_free(&a);
        sm_wbuf_free(&w);
    }
}

static void test_begin_and_end(void)
{
    sm_raft_msg_t b = {.kind = SM_RAFT_MSG_BEGIN_EPOCH, .from = 3, .to = 1};
    b.u.begin.leader_id = 3;
    b.u.begin.leader_epoch = 9;
    sm_raft_msg_t e = {.kind = SM_RAFT_MSG_END_EPOCH, .from = 3, .to = 1};
    e.u.end.leader_id = 3;
    e.u.end.leader_epoch = 9;
    e.u.end.n_preferred = 2;
    e.u.end.preferred[0] = 2;
    e.u.end.preferred[1] = 1;
    for (int16_t v = 0; v <= 1; v++) {
        sm_raft_msg_t out;
        int16_t kerr;
        CHECK_EQ(roundtrip_req(&b, v, "CID", "CID", 1, &out, &kerr), SM_OK);
        CHECK(out.kind == SM_RAFT_MSG_BEGIN_EPOCH && out.from == 3);
        CHECK(out.u.begin.leader_id == 3 && out.u.begin.leader_epoch == 9);
        CHECK_EQ(roundtrip_req(&e, v, "CID", "CID", 1, &out, &kerr), SM_OK);
        CHECK(out.kind == SM_RAFT_MSG_END_EPOCH && out.u.end.leader_epoch == 9);
        CHECK(out.u.end.n_preferred == 2 && out.u.end.preferred[0] == 2 &&
              out.u.end.preferred[1] == 1);
        /* responses, including a top-level error */
        sm_raft_msg_t resp = {.kind = SM_RAFT_MSG_BEGIN_EPOCH_RESP};
        resp.u.epoch_resp.error = 74;
        resp.u.epoch_resp.leader_id = 3;
        resp.u.epoch_resp.leader_epoch = 10;
        sm_wbuf_t w;
        sm_wbuf_init(&w);
        CHECK_EQ(sm_raft_wire_encode_response(&resp, v, &w), SM_OK);
        sm_arena_t a;
        sm_arena_init(&a);
        sm_rd_t r;
        sm_rd_init(&r, w.mem, w.len);
        sm_raft_msg_t got;
        CHECK_EQ(sm_raft_wire_decode_response(&b, v, &r, &a, &got), SM_OK);
        CHECK(got.kind == SM_RAFT_MSG_BEGIN_EPOCH_RESP && got.u.epoch_resp.error == 74 &&
              got.u.epoch_resp.leader_epoch == 10 && got.from == 1 && got.to == 3);
        sm_arena_free(&a);
        sm_wbuf_free(&w);
    }
}

/* A hand-built VoteRequest for another topic, and one with two partitions. */
static void test_foreign_partitions(void)
{
    for (int which = 0; which < 2; which++) {
        sm_vote_request_partition_data_t p[2];
        sm_vote_request_partition_data_init(&p[0]);
        sm_vote_request_partition_data_init(&p[1]);
        p[1].partition_index = 1;
        sm_vote_request_topic_data_t t;
        sm_vote_request_topic_data_init(&t);
        t.topic_name = sm_str(which == 0 ? "orders" : SM_RAFT_TOPIC);
        t.partitions = p;
        t.partitions_count = which == 0 ? 1 : 2;
        sm_vote_request_t req;
        sm_vote_request_init(&req);
        req.topics = &t;
        req.topics_count = 1;
        sm_wbuf_t w;
        sm_wbuf_init(&w);
        sm_vote_request_encode(&w, 2, &req);
        sm_arena_t a;
        sm_arena_init(&a);
        sm_rd_t r;
        sm_rd_init(&r, w.mem, w.len);
        sm_raft_msg_t out;
        int16_t kerr = 0;
        CHECK_EQ(sm_raft_wire_decode_request(SM_API_VOTE, 2, &r, &a, 1, "CID", &out, &kerr),
                 SM_ERR_INVALID);
        CHECK_EQ(kerr, 3);
        /* and every truncation of it fails cleanly */
        for (size_t cut = 0; cut < w.len; cut++) {
            sm_rd_init(&r, w.mem, cut);
            CHECK(sm_raft_wire_decode_request(SM_API_VOTE, 2, &r, &a, 1, "CID", &out, &kerr) !=
                  SM_OK);
        }
        sm_arena_free(&a);
        sm_wbuf_free(&w);
    }
    /* an EndQuorumEpoch naming more candidates than a quorum can have */
    sm_end_quorum_epoch_request_replica_info_t c[20];
    for (int i = 0; i < 20; i++) {
        sm_end_quorum_epoch_request_replica_info_init(&c[i]);
        c[i].candidate_id = i;
    }
    sm_end_quorum_epoch_request_partition_data_t p;
    sm_end_quorum_epoch_request_partition_data_init(&p);
    p.preferred_candidates = c;
    p.preferred_candidates_count = 20;
    sm_end_quorum_epoch_request_topic_data_t t;
    sm_end_quorum_epoch_request_topic_data_init(&t);
    t.topic_name = sm_str(SM_RAFT_TOPIC);
    t.partitions = &p;
    t.partitions_count = 1;
    sm_end_quorum_epoch_request_t req;
    sm_end_quorum_epoch_request_init(&req);
    req.topics = &t;
    req.topics_count = 1;
    sm_wbuf_t w;
    sm_wbuf_init(&w);
    sm_end_quorum_epoch_request_encode(&w, 1, &req);
    sm_arena_t a;
    sm_arena_init(&a);
    sm_rd_t r;
    sm_rd_init(&r, w.mem, w.len);
    sm_raft_msg_t out;
    int16_t kerr = 0;
    CHECK_EQ(sm_raft_wire_decode_request(SM_API_END_QUORUM_EPOCH, 1, &r, &a, 1, NULL, &out, &kerr),
             SM_ERR_INVALID);
    CHECK_EQ(kerr, 42);
    sm_arena_free(&a);
    sm_wbuf_free(&w);
}

static void test_fetch(void)
{
    sm_raft_msg_t f = {.kind = SM_RAFT_MSG_FETCH, .from = 4, .to = 1};
    f.u.fetch.replica_id = 4;
    f.u.fetch.current_leader_epoch = 9;
    f.u.fetch.fetch_offset = 777;
    f.u.fetch.last_fetched_epoch = 8;
    f.u.fetch.max_bytes = 1 << 20;
    for (int16_t v = 12; v <= 17; v++) {
        sm_raft_msg_t out;
        int16_t kerr;
        CHECK_EQ(roundtrip_req(&f, v, "CID", "CID", 1, &out, &kerr), SM_OK);
        CHECK(out.kind == SM_RAFT_MSG_FETCH && out.from == 4 && out.u.fetch.replica_id == 4);
        CHECK(out.u.fetch.current_leader_epoch == 9 && out.u.fetch.fetch_offset == 777);
        CHECK(out.u.fetch.last_fetched_epoch == 8 && out.u.fetch.max_bytes == (1 << 20));
        /* the response carries records and the raft fields */
        const uint8_t recs[] = "0123456789abcdef";
        sm_raft_msg_t resp = {.kind = SM_RAFT_MSG_FETCH_RESP, .from = 1, .to = 4};
        resp.u.fetch_resp.high_watermark = 790;
        resp.u.fetch_resp.log_start_offset = 100;
        resp.u.fetch_resp.diverging = (sm_raft_offset_epoch_t){7, 760};
        resp.u.fetch_resp.snapshot_id = (sm_raft_offset_epoch_t){-1, -1};
        resp.u.fetch_resp.current_leader = (sm_raft_leader_ref_t){1, 9};
        resp.u.fetch_resp.records = recs;
        resp.u.fetch_resp.records_len = 16;
        sm_wbuf_t w;
        sm_wbuf_init(&w);
        CHECK_EQ(sm_raft_wire_encode_response(&resp, v, &w), SM_OK);
        sm_arena_t a;
        sm_arena_init(&a);
        sm_rd_t r;
        sm_rd_init(&r, w.mem, w.len);
        sm_raft_msg_t got;
        CHECK_EQ(sm_raft_wire_decode_response(&f, v, &r, &a, &got), SM_OK);
        CHECK(got.kind == SM_RAFT_MSG_FETCH_RESP && got.from == 1 && got.to == 4);
        CHECK(got.u.fetch_resp.high_watermark == 790 && got.u.fetch_resp.log_start_offset == 100);
        CHECK(got.u.fetch_resp.diverging.epoch == 7 && got.u.fetch_resp.diverging.end_offset == 760);
        CHECK(got.u.fetch_resp.snapshot_id.epoch == -1);
        CHECK(got.u.fetch_resp.current_leader.leader_id == 1 &&
              got.u.fetch_resp.current_leader.leader_epoch == 9);
        CHECK(got.u.fetch_resp.records_len == 16 &&
              memcmp(got.u.fetch_resp.records, recs, 16) == 0);
        sm_arena_free(&a);
        sm_wbuf_free(&w);
    }
    /* too old a version to carry LastFetchedEpoch; a consumer's fetch */
    sm_raft_msg_t out;
    int16_t kerr;
    CHECK_EQ(roundtrip_req(&f, 11, "CID", "CID", 1, &out, &kerr), SM_ERR_UNSUPPORTED);
    f.u.fetch.replica_id = -1;
    CHECK_EQ(roundtrip_req(&f, 13, "CID", "CID", 1, &out, &kerr), SM_ERR_INVALID);
    CHECK_EQ(kerr, 42);
    /* a fetch of an ordinary topic reaching the quorum */
    sm_fetch_request_fetch_partition_t p;
    sm_fetch_request_fetch_partition_init(&p);
    sm_fetch_request_fetch_topic_t t;
    sm_fetch_request_fetch_topic_init(&t);
    t.topic = sm_str("orders");
    t.topic_id.b[0] = 9;
    t.partitions = &p;
    t.partitions_count = 1;
    sm_fetch_request_t req;
    sm_fetch_request_init(&req);
    req.replica_id = 4;
    req.replica_state.replica_id = 4;
    req.topics = &t;
    req.topics_count = 1;
    for (int16_t v = 12; v <= 17; v++) {
        sm_wbuf_t w;
        sm_wbuf_init(&w);
        sm_fetch_request_encode(&w, v, &req);
        sm_arena_t a;
        sm_arena_init(&a);
        sm_rd_t r;
        sm_rd_init(&r, w.mem, w.len);
        kerr = 0;
        CHECK_EQ(sm_raft_wire_decode_request(SM_API_FETCH, v, &r, &a, 1, NULL, &out, &kerr),
                 SM_ERR_INVALID);
        CHECK_EQ(kerr, 3);
        sm_arena_free(&a);
        sm_wbuf_free(&w);
    }
}

int main(void)
{
    RUN(test_fetch);
    RUN(test_vote);
    RUN(test_begin_and_end);
    RUN(test_foreign_partitions);
    TEST_MAIN_END();
}
