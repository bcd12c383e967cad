/*
 * handle_txn.c - the partition side of transactions: WriteTxnMarkers, the
 * request a transaction coordinator sends to partition leaders to end a
 * transaction there with a COMMIT or ABORT control batch.
 *
 * Each marker is appended through the partition layer, which checks the
 * producer and coordinator epochs and closes the producer's transaction on
 * that partition (an ABORT also goes into the aborted-transaction index).
 * The answer waits, like acks=all, until every written marker is below its
 * partition's high watermark: a coordinator that sees success may forget
 * the transaction, so the markers must survive a leader change. On
 * __consumer_offsets the group coordinator also makes the transaction's
 * offsets visible (commit) or drops them (abort).
 *
 * Loop thread; the answer may go out from whichever thread moves the last
 * high watermark.
 */
#include "group_coord.h"
#include "handler_util.h"
#include "handlers.h"
#include "kerr.h"
#include "log.h"
#include "server.h"
#include "txn_coord.h"

#include <string.h>

#define MARKER_REPLICATION_TIMEOUT_MS 30000

typedef struct markers_park {
    sm_req_t *req;
    sm_write_txn_markers_response_t resp;
    int pending; /* atomic: waits + 1 while the handler runs */
} markers_park_t;

typedef struct marker_wait {
    sm_hw_waiter_t w; /* first member */
    markers_park_t *park;
    int16_t *error_code;
} marker_wait_t;

static void markers_release(markers_park_t *park)
{
    if (__atomic_sub_fetch(&park->pending, 1, __ATOMIC_ACQ_REL) == 0)
        SM_RESPOND(write_txn_markers_response, park->req, &park->resp);
}

static void marker_replicated(sm_hw_waiter_t *w, int16_t kerr)
{
    marker_wait_t *mw = (marker_wait_t *)w;
    if (kerr && kerr != KERR_NOT_ENOUGH_REPLICAS_AFTER_APPEND)
        *mw->error_code = kerr;
    markers_release(mw->park);
}

/* One marker on one partition; the error (0 when written) or a wait. */
static int16_t write_one(markers_park_t *park, const sm_write_txn_markers_request_writable_txn_marker_t *mk,
                         sm_str_t topic, int32_t index, int16_t *error_code)
{
    sm_req_t *req = park->req;
    if (topic.len <= 0)
        return KERR_UNKNOWN_TOPIC_OR_PARTITION;
    sm_partition_t *p = sm_server_partition(req->srv, topic.ptr, (size_t)topic.len, index);
    if (!p)
        return KERR_UNKNOWN_TOPIC_OR_PARTITION;
    sm_append_info_t info;
    int16_t kerr = 0;
    sm_err_t err = sm_partition_write_marker(p, mk->producer_id, mk->producer_epoch,
                                             mk->transaction_result, mk->coordinator_epoch, &info,
                                             &kerr);
    if (err == SM_OK) {
        if (topic.len == (int32_t)strlen(SM_GROUP_COORD_TOPIC) &&
            memcmp(topic.ptr, SM_GROUP_COORD_TOPIC, (size_t)topic.len) == 0 &&
            sm_server_groups(req->srv))
            sm_group_coord_txn_complete(sm_server_groups(req->srv), index, mk->producer_id,
                                        mk->transaction_result);
        marker_wait_t *mw = SM_ARENA_NEW(&req->arena, marker_wait_t, 1);
        memset(mw, 0, sizeof *mw);
        mw->w.done = marker_replicated;
        mw->w.target = info.last_offset + 1;
        mw->w.deadline_ms = sm_now_mono_ms() + MARKER_REPLICATION_TIMEOUT_MS;
        mw->park = park;
        mw->error_code = error_code;
        __atomic_add_fetch(&park->pending, 1, __ATOMIC_ACQ_REL);
        if (sm_partition_wait_hw(p, &mw->w))
            __atomic_sub_fetch(&park->pending, 1, __ATOMIC_ACQ_REL); /* never the last */
    } else if (!kerr) {
        SM_WARN("txn", "%s: marker for producer %lld not written: %s", p->name,
                (long long)mk->producer_id, sm_err_str(err));
        kerr = sm_kerr_from(err);
    }
    sm_partition_put(p);
    return kerr;
}

void sm_handle_write_txn_markers(sm_req_t *req)
{
    sm_write_txn_markers_request_t msg;
    SM_DECODE_OR_FAIL(write_txn_markers_request, req, &msg);
    markers_park_t *park = SM_ARENA_NEW(&req->arena, markers_park_t, 1);
    memset(park, 0, sizeof *park);
    park->req = req;
    park->pending = 1;
    sm_write_txn_markers_response_t *resp = &park->resp;
    sm_write_txn_markers_response_init(resp);
    SM_NEW_ARRAY(req, sm_write_txn_markers_response_writable_txn_marker_result,
                 msg.markers_count, resp->markers);
    resp->markers_count = msg.markers_count;
    for (int32_t i = 0; i < msg.markers_count; i++) {
        const sm_write_txn_markers_request_writable_txn_marker_t *mk = &msg.markers[i];
        sm_write_txn_markers_response_writable_txn_marker_result_t *mr = &resp->markers[i];
        mr->producer_id = mk->producer_id;
        SM_NEW_ARRAY(req, sm_write_txn_markers_response_writable_txn_marker_topic_result,
                     mk->topics_count, mr->topics);
        mr->topics_count = mk->topics_count;
        for (int32_t t = 0; t < mk->topics_count; t++) {
            const sm_write_txn_markers_request_writable_txn_marker_topic_t *tp = &mk->topics[t];
            sm_write_txn_markers_response_writable_txn_marker_topic_result_t *tr = &mr->topics[t];
            tr->name = tp->name;
            SM_NEW_ARRAY(req, sm_write_txn_markers_response_writable_txn_marker_partition_result,
                         tp->partition_indexes_count, tr->partitions);
            tr->partitions_count = tp->partition_indexes_count;
            for (int32_t k = 0; k < tp->partition_indexes_count; k++) {
                tr->partitions[k].partition_index = tp->partition_indexes[k];
                int16_t *ec = &tr->partitions[k].error_code;
                int16_t e = write_one(park, mk, tp->name, tp->partition_indexes[k], ec);
                if (e)
                    *ec = e;
            }
        }
    }
    markers_release(park);
}

/* ------------------------------------------------------------ coordinator calls */

/* Thin adapters over the transaction coordinator (txn_coord.h): each op
 * lives in the request arena; its done callback answers, on whatever thread
 * finished the durable write. */

static sm_txn_coord_t *txn(sm_req_t *req) { return sm_server_txn(req->srv); }

static int16_t kerr_v(sm_req_t *req, int16_t kerr)
{
    return sm_txn_kerr_for_version(req->api_key, req->api_version, kerr);
}

/* InitProducerId with a transactional id. */
static void init_done(sm_txn_init_t *op)
{
    sm_req_t *req = op->arg;
    sm_init_producer_id_response_t resp;
    sm_init_producer_id_response_init(&resp);
    resp.error_code = kerr_v(req, op->error);
    if (!op->error) {
        resp.producer_id = op->out_producer_id;
        resp.producer_epoch = op->out_producer_epoch;
    }
    SM_RESPOND(init_producer_id_response, req, &resp);
}

void sm_txn_init_producer_id(sm_req_t *req, const sm_init_producer_id_request_t *msg)
{
    if (!txn(req)) {
        sm_init_producer_id_response_t resp;
        sm_init_producer_id_response_init(&resp);
        resp.error_code = KERR_COORDINATOR_NOT_AVAILABLE;
        SM_RESPOND(init_producer_id_response, req, &resp);
        return;
    }
    sm_txn_init_t *op = SM_ARENA_NEW(&req->arena, sm_txn_init_t, 1);
    memset(op, 0, sizeof *op);
    op->transactional_id = msg->transactional_id.ptr;
    op->id_len = (size_t)msg->transactional_id.len;
    op->timeout_ms = msg->transaction_timeout_ms;
    op->producer_id = msg->producer_id;
    op->producer_epoch = msg->producer_epoch;
    op->done = init_done;
    op->arg = req;
    sm_txn_coord_init_producer(txn(req), op);
}

/* AddPartitionsToTxn: v0-3 one transaction from its producer; v4+ a batch
 * of transactions (from brokers, verify_only). One op per transaction; the
 * answer goes when the last is done. */
typedef struct add_txn {
    sm_txn_add_t op;
    struct add_park *park;
    int index; /* v4+: results_by_transaction[index]; -1: v3 form */
    const sm_add_partitions_to_txn_request_add_partitions_to_txn_topic_t *topics;
    int32_t topics_count;
} add_txn_t;

typedef struct add_park {
    sm_req_t *req;
    sm_add_partitions_to_txn_response_t resp;
    int pending;
} add_park_t;

static void add_park_release(add_park_t *park)
{
    if (__atomic_sub_fetch(&park->pending, 1, __ATOMIC_ACQ_REL) == 0)
        SM_RESPOND(add_partitions_to_txn_response, park->req, &park->resp);
}

/* Per-topic results of one transaction, from op->parts in request order. */
static sm_add_partitions_to_txn_response_add_partitions_to_txn_topic_result_t *
add_results(sm_req_t *req, const add_txn_t *at, int16_t all_err)
{
    sm_add_partitions_to_txn_response_add_partitions_to_txn_topic_result_t *tr = NULL;
    SM_NEW_ARRAY(req, sm_add_partitions_to_txn_response_add_partitions_to_txn_topic_result,
                 at->topics_count, tr);
    int32_t k = 0;
    for (int32_t t = 0; t < at->topics_count; t++) {
        tr[t].name = at->topics[t].name;
        SM_NEW_ARRAY(req, sm_add_partitions_to_txn_response_add_partitions_to_txn_partition_result,
                     at->topics[t].partitions_count, tr[t].results_by_partition);
        tr[t].results_by_partition_count = at->topics[t].partitions_count;
        for (int32_t i = 0; i < at->topics[t].partitions_count; i++, k++) {
            tr[t].results_by_partition[i].partition_index = at->topics[t].partitions[i];
            int16_t e = all_err ? all_err : at->op.parts[k].error;
            tr[t].results_by_partition[i].partition_error_code = kerr_v(req, e);
        }
    }
    return tr;
}

static void add_done(sm_txn_add_t *op)
{
    add_txn_t *at = (add_txn_t *)op;
    add_park_t *park = at->park;
    sm_req_t *req = park->req;
    if (at->index < 0) {
        park->resp.results_by_topic_v3_and_below = add_results(req, at, 0);
        park->resp.results_by_topic_v3_and_below_count = at->topics_count;
    } else {
        sm_add_partitions_to_txn_response_add_partitions_to_txn_result_t *r =
            &park->resp.results_by_transaction[at->index];
        r->topic_results = add_results(req, at, 0);
        r->topic_results_count = at->topics_count;
    }
    add_park_release(park);
}

static void add_start(add_park_t *park, add_txn_t *at, sm_str_t txn_id, int64_t pid,
                      int16_t epoch, bool verify_only)
{
    sm_req_t *req = park->req;
    int32_t n = 0;
    for (int32_t t = 0; t < at->topics_count; t++)
        n += at->topics[t].partitions_count;
    at->op.parts = SM_ARENA_NEW(&req->arena, sm_txn_add_part_t, n > 0 ? n : 1);
    int32_t k = 0;
    for (int32_t t = 0; t < at->topics_count; t++) {
        char *topic = sm_arena_strndup(&req->arena, at->topics[t].name.ptr ? at->topics[t].name.ptr : "",
                                       at->topics[t].name.len > 0 ? (size_t)at->topics[t].name.len : 0);
        for (int32_t i = 0; i < at->topics[t].partitions_count; i++, k++) {
            at->op.parts[k].topic = topic;
            at->op.parts[k].partition = at->topics[t].partitions[i];
            at->op.parts[k].error = 0;
        }
    }
    at->op.nparts = n;
    at->op.transactional_id = txn_id.ptr ? txn_id.ptr : "";
    at->op.id_len = txn_id.len > 0 ? (size_t)txn_id.len : 0;
    at->op.producer_id = pid;
    at->op.producer_epoch = epoch;
    at->op.verify_only = verify_only;
    at->op.client_version = req->api_version >= 5 ? 2 : 1;
    at->op.done = add_done;
    at->op.arg = park;
    __atomic_add_fetch(&park->pending, 1, __ATOMIC_ACQ_REL);
    sm_txn_coord_add_partitions(txn(req), &at->op);
}

void sm_handle_add_partitions_to_txn(sm_req_t *req)
{
    sm_add_partitions_to_txn_request_t msg;
    SM_DECODE_OR_FAIL(add_partitions_to_txn_request, req, &msg);
    add_park_t *park = SM_ARENA_NEW(&req->arena, add_park_t, 1);
    memset(park, 0, sizeof *park);
    park->req = req;
    park->pending = 1;
    sm_add_partitions_to_txn_response_init(&park->resp);
    if (req->api_version < 4) {
        add_txn_t *at = SM_ARENA_NEW(&req->arena, add_txn_t, 1);
        memset(at, 0, sizeof *at);
        at->park = park;
        at->index = -1;
        at->topics = msg.v3_and_below_topics;
        at->topics_count = msg.v3_and_below_topics_count;
        if (!txn(req)) {
            at->op.parts = NULL;
            park->resp.results_by_topic_v3_and_below =
                add_results(req, at, KERR_COORDINATOR_NOT_AVAILABLE);
            park->resp.results_by_topic_v3_and_below_count = at->topics_count;
        } else {
            add_start(park, at, msg.v3_and_below_transactional_id, msg.v3_and_below_producer_id,
                      msg.v3_and_below_producer_epoch, false);
        }
        add_park_release(park);
        return;
    }
    SM_NEW_ARRAY(req, sm_add_partitions_to_txn_response_add_partitions_to_txn_result,
                 msg.transactions_count, park->resp.results_by_transaction);
    park->resp.results_by_transaction_count = msg.transactions_count;
    if (!txn(req)) {
        park->resp.error_code = KERR_COORDINATOR_NOT_AVAILABLE;
        park->resp.results_by_transaction_count = 0;
        add_park_release(park);
        return;
    }
    for (int32_t i = 0; i < msg.transactions_count; i++) {
        const sm_add_partitions_to_txn_request_add_partitions_to_txn_transaction_t *tx =
            &msg.transactions[i];
        park->resp.results_by_transaction[i].transactional_id = tx->transactional_id;
        add_txn_t *at = SM_ARENA_NEW(&req->arena, add_txn_t, 1);
        memset(at, 0, sizeof *at);
        at->park = park;
        at->index = i;
        at->topics = tx->topics;
        at->topics_count = tx->topics_count;
        add_start(park, at, tx->transactional_id, tx->producer_id, tx->producer_epoch,
                  tx->verify_only);
    }
    add_park_release(park);
}

/* AddOffsetsToTxn */
typedef struct offsets_op {
    sm_txn_add_t op;
    sm_txn_add_part_t part;
    sm_req_t *req;
} offsets_op_t;

static void add_offsets_done(sm_txn_add_t *op)
{
    offsets_op_t *oo = (offsets_op_t *)op;
    sm_add_offsets_to_txn_response_t resp;
    sm_add_offsets_to_txn_response_init(&resp);
    resp.error_code = kerr_v(oo->req, op->error ? op->error : oo->part.error);
    SM_RESPOND(add_offsets_to_txn_response, oo->req, &resp);
}

void sm_handle_add_offsets_to_txn(sm_req_t *req)
{
    sm_add_offsets_to_txn_request_t msg;
    SM_DECODE_OR_FAIL(add_offsets_to_txn_request, req, &msg);
    if (!txn(req)) {
        sm_add_offsets_to_txn_response_t resp;
        sm_add_offsets_to_txn_response_init(&resp);
        resp.error_code = KERR_COORDINATOR_NOT_AVAILABLE;
        SM_RESPOND(add_offsets_to_txn_response, req, &resp);
        return;
    }
    offsets_op_t *oo = SM_ARENA_NEW(&req->arena, offsets_op_t, 1);
    memset(oo, 0, sizeof *oo);
    oo->req = req;
    oo->op.transactional_id = msg.transactional_id.ptr ? msg.transactional_id.ptr : "";
    oo->op.id_len = msg.transactional_id.len > 0 ? (size_t)msg.transactional_id.len : 0;
    oo->op.producer_id = msg.producer_id;
    oo->op.producer_epoch = msg.producer_epoch;
    oo->op.client_version = 1;
    oo->op.parts = &oo->part;
    oo->op.nparts = 1;
    oo->op.done = add_offsets_done;
    oo->op.arg = oo;
    sm_txn_coord_add_offsets(txn(req), &oo->op, msg.group_id.ptr ? msg.group_id.ptr : "",
                             msg.group_id.len > 0 ? (size_t)msg.group_id.len : 0);
}

/* EndTxn */
static void end_done(sm_txn_end_t *op)
{
    sm_req_t *req = op->arg;
    sm_end_txn_response_t resp;
    sm_end_txn_response_init(&resp);
    resp.error_code = kerr_v(req, op->error);
    if (!op->error && req->api_version >= 5) {
        resp.producer_id = op->out_producer_id;
        resp.producer_epoch = op->out_producer_epoch;
    }
    SM_RESPOND(end_txn_response, req, &resp);
}

void sm_handle_end_txn(sm_req_t *req)
{
    sm_end_txn_request_t msg;
    SM_DECODE_OR_FAIL(end_txn_request, req, &msg);
    if (!txn(req)) {
        sm_end_txn_response_t resp;
        sm_end_txn_response_init(&resp);
        resp.error_code = KERR_COORDINATOR_NOT_AVAILABLE;
        SM_RESPOND(end_txn_response, req, &resp);
        return;
    }
    sm_txn_end_t *op = SM_ARENA_NEW(&req->arena, sm_txn_end_t, 1);
    memset(op, 0, sizeof *op);
    op->transactional_id = msg.transactional_id.ptr ? msg.transactional_id.ptr : "";
    op->id_len = msg.transactional_id.len > 0 ? (size_t)msg.transactional_id.len : 0;
    op->producer_id = msg.producer_id;
    op->producer_epoch = msg.producer_epoch;
    op->committed = msg.committed;
    op->client_version = req->api_version >= 5 ? 2 : 1;
    op->done = end_done;
    op->arg = req;
    sm_txn_coord_end(txn(req), op);
}

/* TxnOffsetCommit: to the group coordinator, which holds the offsets until
 * the transaction's marker reaches the group's __consumer_offsets
 * partition. (The marker write waits for replication; so the offsets, which
 * precede it in the log, are replicated by the time they are visible.) */
void sm_handle_txn_offset_commit(sm_req_t *req)
{
    sm_txn_offset_commit_request_t msg;
    SM_DECODE_OR_FAIL(txn_offset_commit_request, req, &msg);
    sm_txn_offset_commit_response_t resp;
    sm_txn_offset_commit_response_init(&resp);
    int32_t total = 0;
    for (int32_t t = 0; t < msg.topics_count; t++)
        total += msg.topics[t].partitions_count;
    sm_group_commit_part_t *parts =
        SM_ARENA_NEW(&req->arena, sm_group_commit_part_t, total > 0 ? total : 1);
    int32_t k = 0;
    for (int32_t t = 0; t < msg.topics_count; t++) {
        for (int32_t i = 0; i < msg.topics[t].partitions_count; i++) {
            const sm_txn_offset_commit_request_txn_offset_commit_request_partition_t *pp =
                &msg.topics[t].partitions[i];
            sm_group_commit_part_t *p = &parts[k++];
            memset(p, 0, sizeof *p);
            p->topic = msg.topics[t].name.ptr ? msg.topics[t].name.ptr : "";
            p->topic_len = msg.topics[t].name.len > 0 ? (size_t)msg.topics[t].name.len : 0;
            p->partition = pp->partition_index;
            p->offset = pp->committed_offset;
            p->leader_epoch = pp->committed_leader_epoch;
            p->metadata = pp->committed_metadata.len >= 0 ? pp->committed_metadata.ptr : NULL;
            p->metadata_len =
                pp->committed_metadata.len > 0 ? (size_t)pp->committed_metadata.len : 0;
            if (!p->metadata && pp->committed_metadata.len >= 0)
                p->metadata = "";
            p->expire_ms = -1;
        }
    }
    sm_group_coord_t *c = sm_server_groups(req->srv);
    const char *group = sm_arena_strndup(&req->arena, msg.group_id.ptr ? msg.group_id.ptr : "",
                                         msg.group_id.len > 0 ? (size_t)msg.group_id.len : 0);
    if (!c) {
        for (int32_t i = 0; i < total; i++)
            parts[i].error = KERR_COORDINATOR_NOT_AVAILABLE;
    } else {
        const char *member = sm_arena_strndup(&req->arena, msg.member_id.ptr ? msg.member_id.ptr : "",
                                              msg.member_id.len > 0 ? (size_t)msg.member_id.len : 0);
        const char *instance =
            msg.group_instance_id.len >= 0
                ? sm_arena_strndup(&req->arena, msg.group_instance_id.ptr,
                                   (size_t)msg.group_instance_id.len)
                : NULL;
        sm_group_coord_txn_commit(c, group, msg.producer_id, msg.producer_epoch,
                                  msg.generation_id, member, instance, parts, total);
    }
    SM_NEW_ARRAY(req, sm_txn_offset_commit_response_txn_offset_commit_response_topic,
                 msg.topics_count, resp.topics);
    resp.topics_count = msg.topics_count;
    k = 0;
    for (int32_t t = 0; t < msg.topics_count; t++) {
        resp.topics[t].name = msg.topics[t].name;
        SM_NEW_ARRAY(req, sm_txn_offset_commit_response_txn_offset_commit_response_partition,
                     msg.topics[t].partitions_count, resp.topics[t].partitions);
        resp.topics[t].partitions_count = msg.topics[t].partitions_count;
        for (int32_t i = 0; i < msg.topics[t].partitions_count; i++, k++) {
            resp.topics[t].partitions[i].partition_index = parts[k].partition;
            resp.topics[t].partitions[i].error_code = parts[k].error;
        }
    }
    SM_RESPOND(txn_offset_commit_response, req, &resp);
}
