/*
 * handle_records.c - DeleteRecords (v0-2): move partitions' log start
 * offsets forward.
 *
 * Per partition: offset -1 means "up to the high watermark"; an offset
 * below 0 otherwise, or above the high watermark, is OFFSET_OUT_OF_RANGE;
 * an offset at or below the current log start changes nothing and reports
 * the current start. Topics whose cleanup.policy lacks "delete" refuse
 * with POLICY_VIOLATION, as Kafka does. The answer's low_watermark is the
 * log start offset after the call. Fetches below it then get
 * OFFSET_OUT_OF_RANGE and consumers reset by their auto.offset.reset.
 *
 * sm_log_delete_records() persists the new start (state file, fsync) and
 * deletes the segments now wholly below it, so the work runs on a
 * background worker: the handler decodes on the loop thread, parks the
 * request and answers it from the worker (sm_req_done is callable from any
 * thread; the request and its arena live until then). One broker holds
 * every replica, so timeout_ms (the wait for followers) is not needed.
 */
#include "handler_util.h"
#include "handlers.h"
#include "log.h"
#include "meta.h"
#include "server.h"
#include "storage/log.h"

#include <string.h>

typedef struct delete_job {
    sm_req_t *req;
    sm_delete_records_request_t msg;
} delete_job_t;

/* Does the topic's effective cleanup.policy allow deletion? */
static bool policy_allows_delete(sm_server_t *srv, const char *topic)
{
    sm_meta_image_t *img = sm_meta_image_get(sm_server_meta(srv));
    const sm_topic_meta_t *t = sm_meta_image_topic(img, topic, strlen(topic));
    bool ok = true;
    if (t) {
        char buf[128];
        sm_config_source_t src;
        sm_config_dynamic_t dyn;
        sm_meta_image_dynamic(img, sm_server_node_id(srv), &dyn);
        if (sm_topic_config_resolve_dynamic(sm_server_config(srv), &dyn, "cleanup.policy",
                                            t->configs, t->nconfigs, buf, sizeof buf, &src,
                                            NULL) == SM_OK)
            ok = strstr(buf, "delete") != NULL;
    }
    sm_meta_image_put(img);
    return ok;
}

static void delete_one(sm_req_t *req, const char *topic, bool policy_ok,
                       const sm_delete_records_request_delete_records_partition_t *rq,
                       sm_delete_records_response_delete_records_partition_result_t *out)
{
    out->partition_index = rq->partition_index;
    out->low_watermark = -1;
    sm_partition_t *p = sm_server_partition(req->srv, topic, strlen(topic), rq->partition_index);
    if (!p) {
        out->error_code = KERR_UNKNOWN_TOPIC_OR_PARTITION;
        return;
    }
    if (!policy_ok || sm_partition_role(p) != SM_ROLE_LEADER) {
        out->error_code = policy_ok ? KERR_NOT_LEADER_OR_FOLLOWER : KERR_POLICY_VIOLATION;
        sm_partition_put(p);
        return;
    }
    int64_t hw = sm_partition_high_watermark(p);
    int64_t target = rq->offset == -1 ? hw : rq->offset;
    if (target < 0 || target > hw) {
        out->error_code = KERR_OFFSET_OUT_OF_RANGE;
        out->low_watermark = sm_partition_log_start(p);
        sm_partition_put(p);
        return;
    }
    sm_err_t err = sm_partition_delete_records(p, target);
    if (err != SM_OK) {
        SM_WARN("admin", "%s: DeleteRecords to offset %lld failed: %s", p->name,
                (long long)target, sm_err_str(err));
        out->error_code = err == SM_ERR_RANGE ? KERR_OFFSET_OUT_OF_RANGE : sm_kerr_from(err);
    } else {
        SM_INFO("admin", "%s: records before offset %lld deleted", p->name, (long long)target);
    }
    out->low_watermark = sm_partition_log_start(p);
    sm_partition_put(p);
}

/* Background worker: do the deletions, answer the request. */
static void delete_run(void *arg)
{
    delete_job_t *job = arg;
    sm_req_t *req = job->req;
    const sm_delete_records_request_t *msg = &job->msg;
    sm_delete_records_response_t resp;
    sm_delete_records_response_init(&resp);
    SM_NEW_ARRAY(req, sm_delete_records_response_delete_records_topic_result, msg->topics_count,
                 resp.topics);
    resp.topics_count = SM_MAX(msg->topics_count, 0);
    for (int32_t i = 0; i < msg->topics_count; i++) {
        const sm_delete_records_request_delete_records_topic_t *rt = &msg->topics[i];
        sm_delete_records_response_delete_records_topic_result_t *tr = &resp.topics[i];
        tr->name = rt->name;
        int32_t n = SM_MAX(rt->partitions_count, 0);
        SM_NEW_ARRAY(req, sm_delete_records_response_delete_records_partition_result, n,
                     tr->partitions);
        tr->partitions_count = n;
        const char *topic = sm_req_str(req, rt->name);
        bool policy_ok = policy_allows_delete(req->srv, topic);
        for (int32_t j = 0; j < n; j++) {
            if (sm_str_has_nul(rt->name)) { /* cut at the NUL it would name another topic */
                tr->partitions[j].partition_index = rt->partitions[j].partition_index;
                tr->partitions[j].low_watermark = -1;
                tr->partitions[j].error_code = KERR_UNKNOWN_TOPIC_OR_PARTITION;
                continue;
            }
            delete_one(req, topic, policy_ok, &rt->partitions[j], &tr->partitions[j]);
        }
    }
    SM_RESPOND(delete_records_response, req, &resp);
}

void sm_handle_delete_records(sm_req_t *req)
{
    delete_job_t *job = SM_ARENA_NEW(&req->arena, delete_job_t, 1);
    SM_DECODE_OR_FAIL(delete_records_request, req, &job->msg);
    job->req = req;
    sm_server_background(req->srv, delete_run, job);
}
