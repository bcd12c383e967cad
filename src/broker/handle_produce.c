/*
 * handle_produce.c - Produce: validate client batches and append them
 * verbatim.
 *
 * Per partition: look the partition up, check each batch's size against
 * max.message.bytes (MESSAGE_TOO_LARGE), validate it (magic 2, CRC32C,
 * record count; CORRUPT_MESSAGE / UNSUPPORTED_FOR_MESSAGE_FORMAT), then
 * append. The log patches base offsets in place in the request frame and
 * writes the bytes as received: no per-record work on this path.
 *
 * acks=0 requests get no response (Kafka's contract); if one of their
 * partitions fails, the connection is closed so the producer notices.
 *
 * Runs on the connection's loop thread.
 */
#include "handler_util.h"
#include "handlers.h"
#include "log.h"
#include "server.h"
#include "storage/log.h"
#include "batch.h"

/* THE DURABILITY POINT. A produce may be acknowledged once this returns
 * SM_OK for every partition it wrote:
 *  - acks=0: never answered; acks=1 and acks=-1 (this broker is the only
 *    replica in the ISR, so "all" means this log): answered after the
 *    append reached the page cache, unless the topic's flush policy
 *    (flush.messages / log.flush.interval.messages) says the bytes must be
 *    on disk first - then the log is fdatasync'ed here before answering.
 * Replication (the cluster issue) will add "wait for the ISR" here. */
static sm_err_t produce_make_durable(sm_partition_t *p, int16_t acks, int64_t flush_messages)
{
    if (acks == 0)
        return SM_OK;
    if (flush_messages > 0 && sm_log_unflushed_messages(p->log) >= flush_messages)
        return sm_log_flush(p->log);
    return SM_OK;
}

/* Validate every batch in a partition's records; returns a Kafka error. */
static int16_t check_records(sm_req_t *req, sm_partition_t *p, const sm_records_t *rec,
                             int32_t max_message_bytes)
{
    if (rec->len <= 0)
        return KERR_CORRUPT_MESSAGE;
    const uint8_t *q = rec->ptr;
    size_t left = (size_t)rec->len;
    while (left > 0) {
        sm_batch_info_t info;
        sm_err_t err = sm_batch_header_parse(q, left, &info);
        if (err == SM_ERR_UNSUPPORTED)
            return KERR_UNSUPPORTED_FOR_MESSAGE_FORMAT;
        if (err != SM_OK || info.batch_length < 0)
            return KERR_CORRUPT_MESSAGE;
        int64_t total = sm_batch_total_size(&info);
        if (total > max_message_bytes)
            return KERR_MESSAGE_TOO_LARGE;
        if ((size_t)total > left)
            return KERR_CORRUPT_MESSAGE;
        const char *why = NULL;
        err = sm_batch_validate(q, (size_t)total, &info, &why);
        if (err != SM_OK) {
            SM_WARN("produce", "%s: rejected batch from %s: %s", p->name, sm_req_peer(req),
                    why ? why : sm_err_str(err));
            return err == SM_ERR_UNSUPPORTED ? KERR_UNSUPPORTED_FOR_MESSAGE_FORMAT
                                             : KERR_CORRUPT_MESSAGE;
        }
        q += total;
        left -= (size_t)total;
    }
    return KERR_NONE;
}

void sm_handle_produce(sm_req_t *req)
{
    sm_produce_request_t msg;
    SM_DECODE_OR_FAIL(produce_request, req, &msg);
    const sm_config_t *cfg = sm_server_config(req->srv);
    sm_produce_response_t resp;
    sm_produce_response_init(&resp);
    SM_NEW_ARRAY(req, sm_produce_response_topic_produce_response, msg.topic_data_count,
                 resp.responses);
    resp.responses_count = msg.topic_data_count;
    bool valid_acks = msg.acks == 0 || msg.acks == 1 || msg.acks == -1;
    bool any_error = false;

    for (int32_t i = 0; i < msg.topic_data_count; i++) {
        sm_produce_request_topic_produce_data_t *td = &msg.topic_data[i];
        sm_produce_response_topic_produce_response_t *tr = &resp.responses[i];
        tr->name = td->name;
        SM_NEW_ARRAY(req, sm_produce_response_partition_produce_response,
                     td->partition_data_count, tr->partition_responses);
        tr->partition_responses_count = td->partition_data_count;
        for (int32_t j = 0; j < td->partition_data_count; j++) {
            sm_produce_request_partition_produce_data_t *pd = &td->partition_data[j];
            sm_produce_response_partition_produce_response_t *pr = &tr->partition_responses[j];
            pr->index = pd->index;
            pr->base_offset = -1;
            if (!valid_acks) {
                pr->error_code = KERR_INVALID_REQUIRED_ACKS;
                any_error = true;
                continue;
            }
            sm_partition_t *p = td->name.len > 0
                                    ? sm_server_partition(req->srv, td->name.ptr,
                                                          (size_t)td->name.len, pd->index)
                                    : NULL;
            if (!p) {
                pr->error_code = KERR_UNKNOWN_TOPIC_OR_PARTITION;
                any_error = true;
                continue;
            }
            int16_t kerr = check_records(req, p, &pd->records, cfg->message_max_bytes);
            if (kerr == KERR_NONE) {
                sm_append_info_t info;
                /* The frame is ours: the log patches offsets in place. */
                sm_err_t err = sm_partition_append(req->srv, p, (uint8_t *)pd->records.ptr,
                                                   (size_t)pd->records.len, &info);
                if (err == SM_OK)
                    err = produce_make_durable(p, msg.acks, cfg->log_flush_interval_messages);
                if (err == SM_OK) {
                    pr->base_offset = info.base_offset;
                    pr->log_append_time_ms = info.log_append_time;
                    pr->log_start_offset = info.log_start_offset;
                } else {
                    SM_WARN("produce", "%s: append failed: %s", p->name, sm_err_str(err));
                    kerr = sm_kerr_from(err);
                }
            }
            if (kerr != KERR_NONE) {
                pr->error_code = kerr;
                any_error = true;
            }
            sm_partition_put(p);
        }
    }
    if (msg.acks == 0) {
        if (any_error) {
            sm_req_fail(req, "acks=0 produce failed for a partition");
            return;
        }
        sm_wbuf_reset(&req->resp); /* no response for acks=0 */
        sm_req_done(req);
        return;
    }
    SM_RESPOND(produce_response, req, &resp);
}
