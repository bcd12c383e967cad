/*
 * raft_wire.c - election messages on Kafka's wire (see raft_wire.h).
 */
#include "raft_wire.h"
#include "sm_proto_gen.h"

#include <string.h>

#define KERR_INVALID_REQUEST 42
#define KERR_UNKNOWN_TOPIC_OR_PARTITION 3
#define KERR_INCONSISTENT_CLUSTER_ID 104
#define KERR_CLUSTER_AUTHORIZATION_FAILED 31

/* Kafka's fixed id of the metadata topic: Uuid(0, 1). */
static const sm_uuid_t META_TOPIC_ID = {{0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1}};

static bool one_meta_partition(sm_str_t topic, int32_t nparts, int32_t index)
{
    return sm_str_eq(topic, SM_RAFT_TOPIC) && nparts == 1 && index == 0;
}

static bool cluster_ok(sm_str_t got, const char *want)
{
    return got.len < 0 || !want || sm_str_eq(got, want); /* null: not checked (Kafka too) */
}

sm_err_t sm_raft_wire_encode_request(const sm_raft_msg_t *m, const char *cluster_id,
                                     int16_t version, int16_t *api_key, sm_wbuf_t *w)
{
    sm_str_t cid = cluster_id ? sm_str(cluster_id) : (sm_str_t){NULL, -1};
    switch (m->kind) {
    case SM_RAFT_MSG_VOTE: {
        if (m->u.vote.pre_vote && version < 2)
            return SM_ERR_UNSUPPORTED;
        sm_vote_request_partition_data_t p;
        sm_vote_request_partition_data_init(&p);
        p.partition_index = 0;
        p.replica_epoch = m->u.vote.candidate_epoch;
        p.replica_id = m->u.vote.candidate_id;
        p.last_offset_epoch = m->u.vote.last_offset_epoch;
        p.last_offset = m->u.vote.last_offset;
        p.pre_vote = m->u.vote.pre_vote;
        sm_vote_request_topic_data_t t;
        sm_vote_request_topic_data_init(&t);
        t.topic_name = sm_str(SM_RAFT_TOPIC);
        t.partitions = &p;
        t.partitions_count = 1;
        sm_vote_request_t r;
        sm_vote_request_init(&r);
        r.cluster_id = cid;
        r.voter_id = m->to;
        r.topics = &t;
        r.topics_count = 1;
        sm_vote_request_encode(w, version, &r);
        *api_key = SM_API_VOTE;
        return SM_OK;
    }
    case SM_RAFT_MSG_BEGIN_EPOCH: {
        sm_begin_quorum_epoch_request_partition_data_t p;
        sm_begin_quorum_epoch_request_partition_data_init(&p);
        p.leader_id = m->u.begin.leader_id;
        p.leader_epoch = m->u.begin.leader_epoch;
        sm_begin_quorum_epoch_request_topic_data_t t;
        sm_begin_quorum_epoch_request_topic_data_init(&t);
        t.topic_name = sm_str(SM_RAFT_TOPIC);
        t.partitions = &p;
        t.partitions_count = 1;
        sm_begin_quorum_epoch_request_t r;
        sm_begin_quorum_epoch_request_init(&r);
        r.cluster_id = cid;
        r.voter_id = m->to;
        r.topics = &t;
        r.topics_count = 1;
        sm_begin_quorum_epoch_request_encode(w, version, &r);
        *api_key = SM_API_BEGIN_QUORUM_EPOCH;
        return SM_OK;
    }
    case SM_RAFT_MSG_END_EPOCH: {
        int n = m->u.end.n_preferred;
        if (n < 0 || n > SM_RAFT_MAX_VOTERS)
            return SM_ERR_INVALID;
        sm_end_quorum_epoch_request_replica_info_t cand[SM_RAFT_MAX_VOTERS];
        int32_t succ[SM_RAFT_MAX_VOTERS];
        for (int i = 0; i < n; i++) {
            sm_end_quorum_epoch_request_replica_info_init(&cand[i]);
            cand[i].candidate_id = succ[i] = m->u.end.preferred[i];
        }
        sm_end_quorum_epoch_request_partition_data_t p;
        sm_end_quorum_epoch_request_partition_data_init(&p);
        p.leader_id = m->u.end.leader_id;
        p.leader_epoch = m->u.end.leader_epoch;
        p.preferred_successors = succ;
        p.preferred_successors_count = version == 0 ? n : 0;
        p.preferred_candidates = cand;
        p.preferred_candidates_count = version >= 1 ? n : 0;
        sm_end_quorum_epoch_request_topic_data_t t;
        sm_end_quorum_epoch_request_topic_data_init(&t);
        t.topic_name = sm_str(SM_RAFT_TOPIC);
        t.partitions = &p;
        t.partitions_count = 1;
        sm_end_quorum_epoch_request_t r;
        sm_end_quorum_epoch_request_init(&r);
        r.cluster_id = cid;
        r.topics = &t;
        r.topics_count = 1;
        sm_end_quorum_epoch_request_encode(w, version, &r);
        *api_key = SM_API_END_QUORUM_EPOCH;
        return SM_OK;
    }
    case SM_RAFT_MSG_FETCH: {
        if (version < 12 || version > 17)
            return SM_ERR_UNSUPPORTED; /* the quorum needs LastFetchedEpoch */
        sm_fetch_request_fetch_partition_t p;
        sm_fetch_request_fetch_partition_init(&p);
        p.partition = 0;
        p.current_leader_epoch = m->u.fetch.current_leader_epoch;
        p.fetch_offset = m->u.fetch.fetch_offset;
        p.last_fetched_epoch = m->u.fetch.last_fetched_epoch;
        p.partition_max_bytes = m->u.fetch.max_bytes;
        sm_fetch_request_fetch_topic_t t;
        sm_fetch_request_fetch_topic_init(&t);
        t.topic = sm_str(SM_RAFT_TOPIC);
        t.topic_id = META_TOPIC_ID;
        t.partitions = &p;
        t.partitions_count = 1;
        sm_fetch_request_t r;
        sm_fetch_request_init(&r);
        r.cluster_id = cid;
        r.replica_id = m->u.fetch.replica_id;
        r.replica_state.replica_id = m->u.fetch.replica_id;
        r.max_wait_ms = SM_RAFT_FETCH_MAX_WAIT_MS;
        r.min_bytes = 0;
        r.max_bytes = m->u.fetch.max_bytes;
        r.topics = &t;
        r.topics_count = 1;
        sm_fetch_request_encode(w, version, &r);
        *api_key = SM_API_FETCH;
        return SM_OK;
    }
    case SM_RAFT_MSG_FETCH_SNAPSHOT: {
        sm_fetch_snapshot_request_partition_snapshot_t p;
        sm_fetch_snapshot_request_partition_snapshot_init(&p);
        p.partition = 0;
        p.current_leader_epoch = m->u.fetch_snapshot.current_leader_epoch;
        p.snapshot_id.end_offset = m->u.fetch_snapshot.snapshot_id.end_offset;
        p.snapshot_id.epoch = m->u.fetch_snapshot.snapshot_id.epoch;
        p.position = m->u.fetch_snapshot.position;
        sm_fetch_snapshot_request_topic_snapshot_t t;
        sm_fetch_snapshot_request_topic_snapshot_init(&t);
        t.name = sm_str(SM_RAFT_TOPIC);
        t.partitions = &p;
        t.partitions_count = 1;
        sm_fetch_snapshot_request_t r;
        sm_fetch_snapshot_request_init(&r);
        r.cluster_id = cid;
        r.replica_id = m->u.fetch_snapshot.replica_id;
        r.max_bytes = m->u.fetch_snapshot.max_bytes;
        r.topics = &t;
        r.topics_count = 1;
        sm_fetch_snapshot_request_encode(w, version, &r);
        *api_key = SM_API_FETCH_SNAPSHOT;
        return SM_OK;
    }
    default:
        return SM_ERR_INVALID;
    }
}

#define REFUSE(code)                                                                               \
    do {                                                                                           \
        *kerr = (code);                                                                            \
        return SM_ERR_INVALID;                                                                     \
    } while (0)

/* The request's cluster id is ours (or absent) and it names exactly
 * __cluster_metadata-0 (Vote, BeginQuorumEpoch, EndQuorumEpoch share the
 * shape); otherwise answer with the Kafka code. */
#define CHECK_CLUSTER_AND_PARTITION(r)                                                             \
    do {                                                                                           \
        if (!cluster_ok((r).cluster_id, cluster_id))                                               \
            REFUSE(KERR_INCONSISTENT_CLUSTER_ID);                                                  \
        if ((r).topics_count != 1 ||                                                               \
            !one_meta_partition((r).topics[0].topic_name, (r).topics[0].partitions_count,          \
                                (r).topics[0].partitions_count == 1                                \
                                    ? (r).topics[0].partitions[0].partition_index                  \
                                    : -1))                                                         \
            REFUSE(KERR_UNKNOWN_TOPIC_OR_PARTITION);                                               \
    } while (0)

sm_err_t sm_raft_wire_decode_request(int16_t api_key, int16_t version, sm_rd_t *body,
                                     sm_arena_t *a, int32_t self_id, const char *cluster_id,
                                     sm_raft_msg_t *out, int16_t *kerr)
{
    memset(out, 0, sizeof *out);
    *kerr = 0;
    out->to = self_id;
    switch (api_key) {
    case SM_API_VOTE: {
        sm_vote_request_t r;
        sm_vote_request_init(&r);
        if (sm_vote_request_decode(body, a, version, &r) != SM_OK || body->err)
            return SM_ERR_PARSE;
        CHECK_CLUSTER_AND_PARTITION(r);
        if (version >= 1 && r.voter_id >= 0 && r.voter_id != self_id)
            REFUSE(KERR_INVALID_REQUEST); /* meant for another voter */
        const sm_vote_request_partition_data_t *p = &r.topics[0].partitions[0];
        out->kind = SM_RAFT_MSG_VOTE;
        out->from = p->replica_id;
        out->u.vote.candidate_epoch = p->replica_epoch;
        out->u.vote.candidate_id = p->replica_id;
        out->u.vote.last_offset_epoch = p->last_offset_epoch;
        out->u.vote.last_offset = p->last_offset;
        out->u.vote.pre_vote = version >= 2 && p->pre_vote;
        return SM_OK;
    }
    case SM_API_BEGIN_QUORUM_EPOCH: {
        sm_begin_quorum_epoch_request_t r;
        sm_begin_quorum_epoch_request_init(&r);
        if (sm_begin_quorum_epoch_request_decode(body, a, version, &r) != SM_OK || body->err)
            return SM_ERR_PARSE;
        CHECK_CLUSTER_AND_PARTITION(r);
        if (version >= 1 && r.voter_id >= 0 && r.voter_id != self_id)
            REFUSE(KERR_INVALID_REQUEST);
        const sm_begin_quorum_epoch_request_partition_data_t *p = &r.topics[0].partitions[0];
        out->kind = SM_RAFT_MSG_BEGIN_EPOCH;
        out->from = p->leader_id;
        out->u.begin.leader_id = p->leader_id;
        out->u.begin.leader_epoch = p->leader_epoch;
        return SM_OK;
    }
    case SM_API_END_QUORUM_EPOCH: {
        sm_end_quorum_epoch_request_t r;
        sm_end_quorum_epoch_request_init(&r);
        if (sm_end_quorum_epoch_request_decode(body, a, version, &r) != SM_OK || body->err)
            return SM_ERR_PARSE;
        CHECK_CLUSTER_AND_PARTITION(r);
        const sm_end_quorum_epoch_request_partition_data_t *p = &r.topics[0].partitions[0];
        int n = version >= 1 ? p->preferred_candidates_count : p->preferred_successors_count;
        if (n < 0)
            n = 0;
        if (n > SM_RAFT_MAX_VOTERS)
            REFUSE(KERR_INVALID_REQUEST); /* more candidates than a quorum can have */
        out->kind = SM_RAFT_MSG_END_EPOCH;
        out->from = p->leader_id;
        out->u.end.leader_id = p->leader_id;
        out->u.end.leader_epoch = p->leader_epoch;
        out->u.end.n_preferred = n;
        for (int i = 0; i < n; i++)
            out->u.end.preferred[i] = version >= 1 ? p->preferred_candidates[i].candidate_id
                                                   : p->preferred_successors[i];
        return SM_OK;
    }
    case SM_API_FETCH: {
        sm_fetch_request_t r;
        sm_fetch_request_init(&r);
        if (version < 12)
            REFUSE(KERR_INVALID_REQUEST); /* the quorum needs LastFetchedEpoch */
        if (sm_fetch_request_decode(body, a, version, &r) != SM_OK || body->err)
            return SM_ERR_PARSE;
        if (!cluster_ok(r.cluster_id, cluster_id))
            REFUSE(KERR_INCONSISTENT_CLUSTER_ID);
        bool ours = r.topics_count == 1 && r.topics[0].partitions_count == 1 &&
                    r.topics[0].partitions[0].partition == 0 &&
                    (version >= 13 ? memcmp(r.topics[0].topic_id.b, META_TOPIC_ID.b, 16) == 0
                                   : sm_str_eq(r.topics[0].topic, SM_RAFT_TOPIC));
        if (!ours)
            REFUSE(KERR_UNKNOWN_TOPIC_OR_PARTITION);
        const sm_fetch_request_fetch_partition_t *p = &r.topics[0].partitions[0];
        int32_t replica = version >= 15 ? r.replica_state.replica_id : r.replica_id;
        if (replica < 0 || p->fetch_offset < 0 || p->partition_max_bytes < 0)
            REFUSE(KERR_INVALID_REQUEST); /* a consumer, or nonsense offsets */
        out->kind = SM_RAFT_MSG_FETCH;
        out->from = replica;
        out->u.fetch.replica_id = replica;
        out->u.fetch.current_leader_epoch = p->current_leader_epoch;
        out->u.fetch.fetch_offset = p->fetch_offset;
        out->u.fetch.last_fetched_epoch = p->last_fetched_epoch;
        out->u.fetch.max_bytes = p->partition_max_bytes;
        return SM_OK;
    }
    case SM_API_FETCH_SNAPSHOT: {
        sm_fetch_snapshot_request_t r;
        sm_fetch_snapshot_request_init(&r);
        if (sm_fetch_snapshot_request_decode(body, a, version, &r) != SM_OK || body->err)
            return SM_ERR_PARSE;
        if (!cluster_ok(r.cluster_id, cluster_id))
            REFUSE(KERR_INCONSISTENT_CLUSTER_ID);
        if (r.topics_count != 1 || !one_meta_partition(r.topics[0].name,
                                                       r.topics[0].partitions_count,
                                                       r.topics[0].partitions_count == 1
                                                           ? r.topics[0].partitions[0].partition
                                                           : -1))
            REFUSE(KERR_UNKNOWN_TOPIC_OR_PARTITION);
        const sm_fetch_snapshot_request_partition_snapshot_t *p = &r.topics[0].partitions[0];
        if (r.replica_id < 0 || p->position < 0 || r.max_bytes < 0 ||
            p->snapshot_id.end_offset < 0 || p->snapshot_id.epoch < 0)
            REFUSE(KERR_INVALID_REQUEST);
        out->kind = SM_RAFT_MSG_FETCH_SNAPSHOT;
        out->from = r.replica_id;
        out->u.fetch_snapshot.replica_id = r.replica_id;
        out->u.fetch_snapshot.current_leader_epoch = p->current_leader_epoch;
        out->u.fetch_snapshot.snapshot_id =
            (sm_raft_offset_epoch_t){p->snapshot_id.epoch, p->snapshot_id.end_offset};
        out->u.fetch_snapshot.position = p->position;
        out->u.fetch_snapshot.max_bytes = r.max_bytes;
        return SM_OK;
    }
    default:
        REFUSE(KERR_INVALID_REQUEST);
    }
}

/* The three responses share one partition shape. */
/* Errors about the request as a whole (another cluster, a malformed or
 * misaddressed request) go in the top-level ErrorCode with no topics, as
 * Kafka answers them; the others in the one partition. */
static bool request_level_error(int16_t err)
{
    return err == KERR_INCONSISTENT_CLUSTER_ID || err == KERR_INVALID_REQUEST ||
           err == KERR_CLUSTER_AUTHORIZATION_FAILED;
}

#define FILL_RESPONSE(prefix, R, P, T, err, lid, lep)                                              \
    do {                                                                                           \
        prefix##_partition_data_init(&(P));                                                        \
        (P).error_code = (err);                                                                    \
        (P).leader_id = (lid);                                                                     \
        (P).leader_epoch = (lep);                                                                  \
        prefix##_topic_data_init(&(T));                                                            \
        (T).topic_name = sm_str(SM_RAFT_TOPIC);                                                    \
        (T).partitions = &(P);                                                                     \
        (T).partitions_count = 1;                                                                  \
        prefix##_init(&(R));                                                                       \
        (R).topics = &(T);                                                                         \
        (R).topics_count = 1;                                                                      \
        if (request_level_error(err)) {                                                            \
            (R).error_code = (err);                                                                \
            (R).topics_count = 0;                                                                  \
        }                                                                                          \
    } while (0)

sm_err_t sm_raft_wire_encode_response(const sm_raft_msg_t *m, int16_t version, sm_wbuf_t *w)
{
    switch (m->kind) {
    case SM_RAFT_MSG_VOTE_RESP: {
        sm_vote_response_t r;
        sm_vote_response_partition_data_t p;
        sm_vote_response_topic_data_t t;
        FILL_RESPONSE(sm_vote_response, r, p, t, m->u.vote_resp.error, m->u.vote_resp.leader_id,
                      m->u.vote_resp.leader_epoch);
        p.vote_granted = m->u.vote_resp.vote_granted;
        sm_vote_response_encode(w, version, &r);
        return SM_OK;
    }
    case SM_RAFT_MSG_BEGIN_EPOCH_RESP: {
        sm_begin_quorum_epoch_response_t r;
        sm_begin_quorum_epoch_response_partition_data_t p;
        sm_begin_quorum_epoch_response_topic_data_t t;
        FILL_RESPONSE(sm_begin_quorum_epoch_response, r, p, t, m->u.epoch_resp.error,
                      m->u.epoch_resp.leader_id, m->u.epoch_resp.leader_epoch);
        sm_begin_quorum_epoch_response_encode(w, version, &r);
        return SM_OK;
    }
    case SM_RAFT_MSG_END_EPOCH_RESP: {
        sm_end_quorum_epoch_response_t r;
        sm_end_quorum_epoch_response_partition_data_t p;
        sm_end_quorum_epoch_response_topic_data_t t;
        FILL_RESPONSE(sm_end_quorum_epoch_response, r, p, t, m->u.epoch_resp.error,
                      m->u.epoch_resp.leader_id, m->u.epoch_resp.leader_epoch);
        sm_end_quorum_epoch_response_encode(w, version, &r);
        return SM_OK;
    }
    case SM_RAFT_MSG_FETCH_RESP: {
        if (version < 12 || version > 17)
            return SM_ERR_UNSUPPORTED;
        sm_fetch_response_partition_data_t p;
        sm_fetch_response_partition_data_init(&p);
        p.partition_index = 0;
        p.error_code = m->u.fetch_resp.error;
        p.high_watermark = m->u.fetch_resp.high_watermark;
        p.log_start_offset = m->u.fetch_resp.log_start_offset;
        p.diverging_epoch.epoch = m->u.fetch_resp.diverging.epoch;
        p.diverging_epoch.end_offset = m->u.fetch_resp.diverging.end_offset;
        p.current_leader.leader_id = m->u.fetch_resp.current_leader.leader_id;
        p.current_leader.leader_epoch = m->u.fetch_resp.current_leader.leader_epoch;
        p.snapshot_id.epoch = m->u.fetch_resp.snapshot_id.epoch;
        p.snapshot_id.end_offset = m->u.fetch_resp.snapshot_id.end_offset;
        p.aborted_transactions_count = -1;
        p.records.ptr = m->u.fetch_resp.records;
        p.records.len = (int32_t)m->u.fetch_resp.records_len;
        p.records.fd = -1;
        p.records.ref = NULL;
        sm_fetch_response_fetchable_topic_response_t t;
        sm_fetch_response_fetchable_topic_response_init(&t);
        t.topic = sm_str(SM_RAFT_TOPIC);
        t.topic_id = META_TOPIC_ID;
        t.partitions = &p;
        t.partitions_count = 1;
        sm_fetch_response_t r;
        sm_fetch_response_init(&r);
        r.responses = &t;
        r.responses_count = 1;
        if (request_level_error(p.error_code)) {
            r.error_code = p.error_code;
            r.responses_count = 0;
        }
        sm_fetch_response_encode(w, version, &r);
        return SM_OK;
    }
    case SM_RAFT_MSG_FETCH_SNAPSHOT_RESP: {
        const typeof(m->u.fetch_snapshot_resp) *f = &m->u.fetch_snapshot_resp;
        sm_fetch_snapshot_response_partition_snapshot_t p;
        sm_fetch_snapshot_response_partition_snapshot_init(&p);
        p.index = 0;
        p.error_code = f->error;
        p.snapshot_id.end_offset = f->snapshot_id.end_offset;
        p.snapshot_id.epoch = f->snapshot_id.epoch;
        p.current_leader.leader_id = f->current_leader.leader_id;
        p.current_leader.leader_epoch = f->current_leader.leader_epoch;
        p.size = f->size;
        p.position = f->position;
        p.unaligned_records.ptr = f->bytes;
        p.unaligned_records.len = (int32_t)f->len;
        p.unaligned_records.fd = -1;
        p.unaligned_records.ref = NULL;
        sm_fetch_snapshot_response_topic_snapshot_t t;
        sm_fetch_snapshot_response_topic_snapshot_init(&t);
        t.name = sm_str(SM_RAFT_TOPIC);
        t.partitions = &p;
        t.partitions_count = 1;
        sm_fetch_snapshot_response_t r;
        sm_fetch_snapshot_response_init(&r);
        r.topics = &t;
        r.topics_count = 1;
        if (request_level_error(f->error)) {
            r.error_code = f->error;
            r.topics_count = 0;
        }
        sm_fetch_snapshot_response_encode(w, version, &r);
        return SM_OK;
    }
    default:
        return SM_ERR_INVALID;
    }
}

/* The one partition of a response: a top-level error wins; a missing or
 * foreign partition is malformed for a quorum peer. */
#define TAKE_PARTITION(r, P)                                                                       \
    do {                                                                                           \
        if ((r).topics_count != 1 || (r).topics[0].partitions_count != 1 ||                        \
            !sm_str_eq((r).topics[0].topic_name, SM_RAFT_TOPIC))                                   \
            return SM_ERR_PARSE;                                                                   \
        (P) = &(r).topics[0].partitions[0];                                                        \
    } while (0)

sm_err_t sm_raft_wire_decode_response(const sm_raft_msg_t *req, int16_t version, sm_rd_t *body,
                                      sm_arena_t *a, sm_raft_msg_t *out)
{
    memset(out, 0, sizeof *out);
    out->from = req->to;
    out->to = req->from;
    out->corr = req->corr;
    switch (req->kind) {
    case SM_RAFT_MSG_VOTE: {
        sm_vote_response_t r;
        sm_vote_response_init(&r);
        if (sm_vote_response_decode(body, a, version, &r) != SM_OK || body->err)
            return SM_ERR_PARSE;
        out->kind = SM_RAFT_MSG_VOTE_RESP;
        out->u.vote_resp.pre_vote = req->u.vote.pre_vote;
        if (r.error_code) {
            out->u.vote_resp.error = r.error_code;
            out->u.vote_resp.leader_id = SM_RAFT_NO_ID;
            return SM_OK;
        }
        const sm_vote_response_partition_data_t *p;
        TAKE_PARTITION(r, p);
        out->u.vote_resp.error = p->error_code;
        out->u.vote_resp.leader_id = p->leader_id;
        out->u.vote_resp.leader_epoch = p->leader_epoch;
        out->u.vote_resp.vote_granted = p->vote_granted;
        return SM_OK;
    }
    case SM_RAFT_MSG_BEGIN_EPOCH:
    case SM_RAFT_MSG_END_EPOCH: {
        int16_t top;
        int16_t perr;
        int32_t lid, lep;
        if (req->kind == SM_RAFT_MSG_BEGIN_EPOCH) {
            sm_begin_quorum_epoch_response_t r;
            sm_begin_quorum_epoch_response_init(&r);
            if (sm_begin_quorum_epoch_response_decode(body, a, version, &r) != SM_OK || body->err)
                return SM_ERR_PARSE;
            top = r.error_code;
            const sm_begin_quorum_epoch_response_partition_data_t *p = NULL;
            if (!top)
                TAKE_PARTITION(r, p);
            perr = p ? p->error_code : 0, lid = p ? p->leader_id : -1, lep = p ? p->leader_epoch : -1;
            out->kind = SM_RAFT_MSG_BEGIN_EPOCH_RESP;
        } else {
            sm_end_quorum_epoch_response_t r;
            sm_end_quorum_epoch_response_init(&r);
            if (sm_end_quorum_epoch_response_decode(body, a, version, &r) != SM_OK || body->err)
                return SM_ERR_PARSE;
            top = r.error_code;
            const sm_end_quorum_epoch_response_partition_data_t *p = NULL;
            if (!top)
                TAKE_PARTITION(r, p);
            perr = p ? p->error_code : 0, lid = p ? p->leader_id : -1, lep = p ? p->leader_epoch : -1;
            out->kind = SM_RAFT_MSG_END_EPOCH_RESP;
        }
        out->u.epoch_resp.error = top ? top : perr;
        out->u.epoch_resp.leader_id = lid;
        out->u.epoch_resp.leader_epoch = lep;
        return SM_OK;
    }
    case SM_RAFT_MSG_FETCH: {
        sm_fetch_response_t r;
        sm_fetch_response_init(&r);
        if (version < 12 || sm_fetch_response_decode(body, a, version, &r) != SM_OK || body->err)
            return SM_ERR_PARSE;
        out->kind = SM_RAFT_MSG_FETCH_RESP;
        out->u.fetch_resp.high_watermark = -1;
        out->u.fetch_resp.diverging = out->u.fetch_resp.snapshot_id = (sm_raft_offset_epoch_t){-1, -1};
        out->u.fetch_resp.current_leader = (sm_raft_leader_ref_t){SM_RAFT_NO_ID, -1};
        if (r.error_code) {
            out->u.fetch_resp.error = r.error_code;
            return SM_OK;
        }
        if (r.responses_count != 1 || r.responses[0].partitions_count != 1 ||
            r.responses[0].partitions[0].partition_index != 0)
            return SM_ERR_PARSE;
        const sm_fetch_response_partition_data_t *p = &r.responses[0].partitions[0];
        out->u.fetch_resp.error = p->error_code;
        out->u.fetch_resp.high_watermark = p->high_watermark;
        out->u.fetch_resp.log_start_offset = p->log_start_offset;
        out->u.fetch_resp.diverging =
            (sm_raft_offset_epoch_t){p->diverging_epoch.epoch, p->diverging_epoch.end_offset};
        out->u.fetch_resp.snapshot_id =
            (sm_raft_offset_epoch_t){p->snapshot_id.epoch, p->snapshot_id.end_offset};
        out->u.fetch_resp.current_leader = (sm_raft_leader_ref_t){p->current_leader.leader_id,
                                                                  p->current_leader.leader_epoch};
        out->u.fetch_resp.records = p->records.len > 0 ? p->records.ptr : NULL;
        out->u.fetch_resp.records_len = p->records.len > 0 ? (size_t)p->records.len : 0;
        return SM_OK;
    }
    case SM_RAFT_MSG_FETCH_SNAPSHOT: {
        sm_fetch_snapshot_response_t r;
        sm_fetch_snapshot_response_init(&r);
        if (sm_fetch_snapshot_response_decode(body, a, version, &r) != SM_OK || body->err)
            return SM_ERR_PARSE;
        typeof(out->u.fetch_snapshot_resp) *f = &out->u.fetch_snapshot_resp;
        out->kind = SM_RAFT_MSG_FETCH_SNAPSHOT_RESP;
        f->snapshot_id = (sm_raft_offset_epoch_t){-1, -1};
        f->current_leader = (sm_raft_leader_ref_t){SM_RAFT_NO_ID, -1};
        if (r.error_code) {
            f->error = r.error_code;
            return SM_OK;
        }
        if (r.topics_count != 1 || r.topics[0].partitions_count != 1 ||
            !sm_str_eq(r.topics[0].name, SM_RAFT_TOPIC) || r.topics[0].partitions[0].index != 0)
            return SM_ERR_PARSE;
        const sm_fetch_snapshot_response_partition_snapshot_t *p = &r.topics[0].partitions[0];
        f->error = p->error_code;
        f->snapshot_id = (sm_raft_offset_epoch_t){p->snapshot_id.epoch, p->snapshot_id.end_offset};
        f->current_leader =
            (sm_raft_leader_ref_t){p->current_leader.leader_id, p->current_leader.leader_epoch};
        f->size = p->size;
        f->position = p->position;
        f->bytes = p->unaligned_records.len > 0 ? p->unaligned_records.ptr : NULL;
        f->len = p->unaligned_records.len > 0 ? (size_t)p->unaligned_records.len : 0;
        return SM_OK;
    }
    default:
        return SM_ERR_INVALID;
    }
}
