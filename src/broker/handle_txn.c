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

/* InitProducerId with a transactional id: the transaction coordinator. */
void sm_txn_init_producer_id(sm_req_t *req, const sm_init_producer_id_request_t *msg)
{
    (void)msg;
    sm_init_producer_id_response_t resp;
    sm_init_producer_id_response_init(&resp);
    resp.error_code = KERR_COORDINATOR_NOT_AVAILABLE;
    SM_RESPOND(init_producer_id_response, req, &resp);
}
