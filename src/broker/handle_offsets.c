/*
 * handle_offsets.c - ListOffsets and OffsetForLeaderEpoch.
 *
 * ListOffsets special timestamps: -1 latest (high watermark), -2 earliest
 * (log start), -3 max timestamp (KIP-734), -4 earliest local (= earliest,
 * no tiered storage), -5 latest tiered (= -1 offset, nothing tiered).
 * Other timestamps use the log's time index. Runs on the loop thread.
 */
#include "handler_util.h"
#include "handlers.h"
#include "server.h"
#include "storage/log.h"
#include "batch_find.h"

#include <stdlib.h>
#include <unistd.h>

/* The storage indexes find the batch; Kafka answers with a record. Read the
 * batch holding `offset` and look inside it (decompressing if needed): the
 * first record with timestamp >= ts, or (max == true) the record with the
 * largest timestamp. Leaves *offset and *timestamp alone if anything fails. */
static void refine_in_batch(sm_partition_t *p, bool max, int64_t ts, int64_t *offset,
                            int64_t *timestamp)
{
    sm_log_slice_t sl;
    if (sm_partition_read(p, *offset, 1, true, &sl) != SM_OK)
        return;
    if (sl.len <= 0) {
        sm_ref_release(sl.ref);
        return;
    }
    uint8_t *buf = sm_xmalloc((size_t)sl.len);
    ssize_t n = pread(sl.fd, buf, (size_t)sl.len, (off_t)sl.file_pos);
    if (n == sl.len) {
        int64_t o, t;
        sm_err_t err = max ? sm_batch_find_max_timestamp(buf, (size_t)n, &o, &t)
                           : sm_batch_find_timestamp(buf, (size_t)n, ts, &o, &t);
        /* DeleteRecords may have moved the log start inside this batch:
         * never answer with an offset below it. */
        if (err == SM_OK) {
            *offset = SM_MAX(o, sm_partition_log_start(p));
            *timestamp = t;
        }
    }
    free(buf);
    sm_ref_release(sl.ref);
}

static void list_one(sm_partition_t *p, int8_t isolation,
                     const sm_list_offsets_request_list_offsets_partition_t *rq,
                     sm_list_offsets_response_list_offsets_partition_response_t *out)
{
    out->error_code = sm_partition_role(p) != SM_ROLE_LEADER
                          ? KERR_NOT_LEADER_OR_FOLLOWER
                          : sm_partition_epoch_check(p, rq->current_leader_epoch);
    if (out->error_code)
        return;
    out->leader_epoch = sm_partition_leader_epoch(p);
    sm_err_t err = SM_OK;
    switch (rq->timestamp) {
    case -1: /* LATEST: what consumers can read (read_committed: the LSO) */
        out->offset = isolation == 1 ? sm_partition_lso(p) : sm_partition_high_watermark(p);
        break;
    case -2:
    case -4:
        out->offset = sm_partition_log_start(p);
        break;
    case -5:
        out->offset = -1;
        break;
    case -3:
        err = sm_partition_max_timestamp(p, &out->offset, &out->timestamp);
        if (err == SM_OK)
            refine_in_batch(p, true, 0, &out->offset, &out->timestamp);
        break;
    default:
        err = sm_partition_offset_for_timestamp(p, rq->timestamp, &out->offset, &out->timestamp);
        if (err == SM_OK)
            refine_in_batch(p, false, rq->timestamp, &out->offset, &out->timestamp);
        break;
    }
    if (err == SM_ERR_NOT_FOUND) {
        out->offset = -1;
        out->timestamp = -1;
    } else if (err != SM_OK) {
        out->error_code = sm_kerr_from(err);
    }
}

void sm_handle_list_offsets(sm_req_t *req)
{
    sm_list_offsets_request_t msg;
    SM_DECODE_OR_FAIL(list_offsets_request, req, &msg);
    sm_list_offsets_response_t resp;
    sm_list_offsets_response_init(&resp);
    SM_NEW_ARRAY(req, sm_list_offsets_response_list_offsets_topic_response, msg.topics_count,
                 resp.topics);
    resp.topics_count = msg.topics_count;
    for (int32_t i = 0; i < msg.topics_count; i++) {
        sm_list_offsets_request_list_offsets_topic_t *rt = &msg.topics[i];
        sm_list_offsets_response_list_offsets_topic_response_t *tr = &resp.topics[i];
        tr->name = rt->name;
        SM_NEW_ARRAY(req, sm_list_offsets_response_list_offsets_partition_response,
                     rt->partitions_count, tr->partitions);
        tr->partitions_count = rt->partitions_count;
        for (int32_t j = 0; j < rt->partitions_count; j++) {
            sm_list_offsets_response_list_offsets_partition_response_t *out = &tr->partitions[j];
            out->partition_index = rt->partitions[j].partition_index;
            sm_partition_t *p =
                rt->name.len > 0 ? sm_server_partition(req->srv, rt->name.ptr,
                                                       (size_t)rt->name.len,
                                                       out->partition_index)
                                 : NULL;
            if (!p) {
                out->error_code = KERR_UNKNOWN_TOPIC_OR_PARTITION;
                continue;
            }
            list_one(p, msg.isolation_level, &rt->partitions[j], out);
            sm_partition_put(p);
        }
    }
    SM_RESPOND(list_offsets_response, req, &resp);
}

void sm_handle_offset_for_leader_epoch(sm_req_t *req)
{
    sm_offset_for_leader_epoch_request_t msg;
    SM_DECODE_OR_FAIL(offset_for_leader_epoch_request, req, &msg);
    sm_offset_for_leader_epoch_response_t resp;
    sm_offset_for_leader_epoch_response_init(&resp);
    SM_NEW_ARRAY(req, sm_offset_for_leader_epoch_response_offset_for_leader_topic_result,
                 msg.topics_count, resp.topics);
    resp.topics_count = msg.topics_count;
    for (int32_t i = 0; i < msg.topics_count; i++) {
        sm_offset_for_leader_epoch_request_offset_for_leader_topic_t *rt = &msg.topics[i];
        sm_offset_for_leader_epoch_response_offset_for_leader_topic_result_t *tr =
            &resp.topics[i];
        tr->topic = rt->topic;
        SM_NEW_ARRAY(req, sm_offset_for_leader_epoch_response_epoch_end_offset,
                     rt->partitions_count, tr->partitions);
        tr->partitions_count = rt->partitions_count;
        for (int32_t j = 0; j < rt->partitions_count; j++) {
            const sm_offset_for_leader_epoch_request_offset_for_leader_partition_t *rq =
                &rt->partitions[j];
            sm_offset_for_leader_epoch_response_epoch_end_offset_t *out = &tr->partitions[j];
            out->partition = rq->partition;
            sm_partition_t *p =
                rt->topic.len > 0 ? sm_server_partition(req->srv, rt->topic.ptr,
                                                        (size_t)rt->topic.len, rq->partition)
                                  : NULL;
            if (!p) {
                out->error_code = KERR_UNKNOWN_TOPIC_OR_PARTITION;
                continue;
            }
            out->error_code = sm_partition_role(p) != SM_ROLE_LEADER
                                  ? KERR_NOT_LEADER_OR_FOLLOWER
                                  : sm_partition_epoch_check(p, rq->current_leader_epoch);
            /* The leader-epoch cache answers: the largest epoch <= the one
             * asked and where the next epoch starts (the log end for the
             * latest); UNDEFINED (-1, -1) when it has no such epoch. */
            if (!out->error_code) {
                int32_t e = -1;
                int64_t end = -1;
                sm_err_t err = sm_partition_epoch_end_offset(p, rq->leader_epoch, &e, &end);
                if (err == SM_OK) {
                    out->leader_epoch = e;
                    out->end_offset = end;
                } else if (err != SM_ERR_NOT_FOUND) {
                    out->error_code = sm_kerr_from(err);
                }
            }
            sm_partition_put(p);
        }
    }
    SM_RESPOND(offset_for_leader_epoch_response, req, &resp);
}
