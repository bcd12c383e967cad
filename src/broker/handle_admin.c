/*
 * handle_admin.c - topic administration and configs: CreateTopics,
 * DeleteTopics, CreatePartitions, DescribeConfigs, and InitProducerId.
 *
 * Every change goes through the controller (src/meta), which appends it to
 * the metadata log, fsyncs, publishes a new image and, through the server's
 * listener, opens or removes partition logs before returning - so when the
 * response leaves, the change is durable and visible. Runs on the
 * connection's loop thread (the controller call blocks it briefly; the
 * controller serialises concurrent admin calls).
 */
#include "handler_util.h"
#include "handlers.h"
#include "pid_block.h"
#include "log.h"
#include "meta.h"
#include "server.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/statvfs.h>

/* Kafka error code for the controller's last failure on this thread. */
static int16_t meta_kerr(sm_err_t err)
{
    switch (sm_meta_last_fail()) {
    case SM_META_FAIL_TOPIC_NAME: return KERR_INVALID_TOPIC_EXCEPTION;
    case SM_META_FAIL_TOPIC_EXISTS: return KERR_TOPIC_ALREADY_EXISTS;
    case SM_META_FAIL_UNKNOWN_TOPIC: return KERR_UNKNOWN_TOPIC_OR_PARTITION;
    case SM_META_FAIL_PARTITIONS: return KERR_INVALID_PARTITIONS;
    case SM_META_FAIL_REPLICATION_FACTOR: return KERR_INVALID_REPLICATION_FACTOR;
    case SM_META_FAIL_CONFIG: return KERR_INVALID_CONFIG;
    case SM_META_FAIL_DELETION_DISABLED: return 73; /* TOPIC_DELETION_DISABLED */
    case SM_META_FAIL_STORAGE: return KERR_KAFKA_STORAGE_ERROR;
    case SM_META_FAIL_NOT_CONTROLLER: return KERR_NOT_CONTROLLER;
    case SM_META_FAIL_TIMEOUT: return KERR_REQUEST_TIMED_OUT;
    case SM_META_FAIL_NONE: break;
    }
    return err == SM_ERR_EXISTS      ? KERR_TOPIC_ALREADY_EXISTS
           : err == SM_ERR_NOT_FOUND ? KERR_UNKNOWN_TOPIC_OR_PARTITION
           : err == SM_ERR_INVALID   ? KERR_INVALID_REQUEST
                                     : KERR_UNKNOWN_SERVER_ERROR;
}

static sm_str_t msg_dup(sm_req_t *req, const char *s)
{
    return s && *s ? sm_str(sm_arena_strndup(&req->arena, s, strlen(s))) : (sm_str_t){NULL, -1};
}

/* CreateTopics, CreatePartitions and DeleteTopics are decoded on the event
 * loop and carried out on the controller thread (sm_req_on_controller), one
 * request after another: a topic of thousands of partitions takes seconds
 * of directory and file creation, which must hold up neither the loop's
 * other connections nor the background workers. */

static void create_topics_run(sm_req_t *req, void *msgp)
{
    sm_create_topics_request_t msg = *(sm_create_topics_request_t *)msgp;
    sm_meta_t *meta = sm_server_meta(req->srv);
    bool *dup = sm_names_duplicated(req, msg.topics ? &msg.topics[0].name : NULL,
                                    sizeof *msg.topics, msg.topics_count);
    sm_create_topics_response_t resp;
    sm_create_topics_response_init(&resp);
    SM_NEW_ARRAY(req, sm_create_topics_response_creatable_topic_result, msg.topics_count,
                 resp.topics);
    resp.topics_count = msg.topics_count;
    for (int32_t i = 0; i < msg.topics_count; i++) {
        sm_create_topics_request_creatable_topic_t *t = &msg.topics[i];
        sm_create_topics_response_creatable_topic_result_t *r = &resp.topics[i];
        r->name = t->name;
        char *name = sm_req_str(req, t->name);
        /* Duplicate names in one request are all refused, as Kafka does. */
        if (dup[i]) {
            r->error_code = KERR_INVALID_REQUEST;
            r->error_message = sm_str("Create topics request contains duplicate topic names");
            continue;
        }
        bool cfg_nul = false;
        for (int32_t c = 0; c < t->configs_count; c++)
            cfg_nul |= sm_str_has_nul(t->configs[c].name) || sm_str_has_nul(t->configs[c].value);
        if (sm_str_has_nul(t->name) || cfg_nul) {
            r->error_code = cfg_nul ? KERR_INVALID_CONFIG : KERR_INVALID_TOPIC_EXCEPTION;
            r->error_message = sm_str(cfg_nul ? "config names and values may not hold NUL bytes"
                                              : "topic names may not hold NUL bytes");
            continue;
        }
        if (t->assignments_count > 0) {
            /* One broker: manual assignments must name only this node. */
            int32_t self = sm_server_node_id(req->srv);
            bool ok = true;
            for (int32_t a = 0; a < t->assignments_count; a++)
                for (int32_t b = 0; b < t->assignments[a].broker_ids_count; b++)
                    ok &= t->assignments[a].broker_ids[b] == self;
            if (!ok || t->num_partitions != -1 || t->replication_factor != -1) {
                r->error_code = KERR_INVALID_REPLICA_ASSIGNMENT;
                r->error_message = sm_str("replica assignment names unknown brokers");
                continue;
            }
            t->num_partitions = t->assignments_count;
        }
        sm_topic_kv_t *cfgs = SM_ARENA_NEW(&req->arena, sm_topic_kv_t,
                                           t->configs_count > 0 ? t->configs_count : 1);
        int ncfg = 0;
        for (int32_t c = 0; c < t->configs_count; c++) {
            if (t->configs[c].value.len < 0)
                continue; /* null value = use the default */
            cfgs[ncfg].key = sm_req_str(req, t->configs[c].name);
            cfgs[ncfg].value = sm_req_str(req, t->configs[c].value);
            ncfg++;
        }
        char errmsg[512] = "";
        sm_uuid_t id;
        memset(&id, 0, sizeof id);
        sm_err_t err = sm_meta_create_topic(meta, name, t->num_partitions, t->replication_factor,
                                            cfgs, ncfg, msg.validate_only, &id, errmsg,
                                            sizeof errmsg);
        if (err != SM_OK) {
            r->error_code = meta_kerr(err);
            r->error_message = msg_dup(req, errmsg);
            continue;
        }
        r->topic_id = id;
        /* Report what was created (v5+). */
        sm_meta_image_t *img = sm_meta_image_get(meta);
        const sm_topic_meta_t *tm = sm_meta_image_topic(img, name, strlen(name));
        const sm_config_t *bcfg = sm_server_config(req->srv);
        r->num_partitions = tm ? tm->npartitions
                               : (t->num_partitions > 0 ? t->num_partitions : bcfg->num_partitions);
        r->replication_factor =
            tm && tm->npartitions > 0 ? (int16_t)tm->partitions[0].nreplicas : 1;
        r->configs_count = -1;
        sm_meta_image_put(img);
        if (!msg.validate_only)
            SM_INFO("admin", "created topic %s (%d partitions) for %s", name, r->num_partitions,
                    sm_req_peer(req));
    }
    SM_RESPOND(create_topics_response, req, &resp);
}

SM_HANDLER_ON_CONTROLLER(sm_handle_create_topics, create_topics_request,
                         create_topics_run)

static void delete_topics_run(sm_req_t *req, void *msgp)
{
    sm_delete_topics_request_t msg = *(sm_delete_topics_request_t *)msgp;
    sm_meta_t *meta = sm_server_meta(req->srv);
    sm_delete_topics_response_t resp;
    sm_delete_topics_response_init(&resp);
    int32_t n = req->api_version >= 6 ? msg.topics_count : msg.topic_names_count;
    if (n < 0)
        n = 0;
    SM_NEW_ARRAY(req, sm_delete_topics_response_deletable_topic_result, n, resp.responses);
    resp.responses_count = n;
    for (int32_t i = 0; i < n; i++) {
        sm_delete_topics_response_deletable_topic_result_t *r = &resp.responses[i];
        sm_str_t name_s;
        const sm_uuid_t *id = NULL;
        if (req->api_version >= 6) {
            name_s = msg.topics[i].name;
            static const sm_uuid_t zero;
            if (memcmp(msg.topics[i].topic_id.b, zero.b, 16) != 0)
                id = &msg.topics[i].topic_id;
            r->topic_id = msg.topics[i].topic_id;
        } else {
            name_s = msg.topic_names[i];
        }
        r->name = name_s;
        if (sm_str_has_nul(name_s)) {
            r->error_code = KERR_UNKNOWN_TOPIC_OR_PARTITION; /* no topic has such a name */
            continue;
        }
        char *name = name_s.len >= 0 ? sm_req_str(req, name_s) : NULL;
        if (!name && id) {
            sm_meta_image_t *img = sm_meta_image_get(meta);
            const sm_topic_meta_t *tm = sm_meta_image_topic_by_id(img, id);
            if (tm) {
                name = sm_arena_strndup(&req->arena, tm->name, strlen(tm->name));
                r->name = sm_str(name);
            }
            sm_meta_image_put(img);
            if (!name) {
                r->error_code = KERR_UNKNOWN_TOPIC_ID;
                continue;
            }
        }
        if (name && sm_meta_topic_is_internal(name)) {
            /* Deleting __consumer_offsets would strand every group. */
            r->error_code = KERR_INVALID_TOPIC_EXCEPTION;
            r->error_message = sm_str("Internal topics cannot be deleted");
            continue;
        }
        char errmsg[512] = "";
        sm_err_t err = sm_meta_delete_topic(meta, name ? name : "", id, errmsg, sizeof errmsg);
        if (err != SM_OK) {
            r->error_code = meta_kerr(err);
            if (id && r->error_code == KERR_UNKNOWN_TOPIC_OR_PARTITION)
                r->error_code = KERR_UNKNOWN_TOPIC_ID;
            r->error_message = msg_dup(req, errmsg);
            continue;
        }
        SM_INFO("admin", "deleted topic %s for %s", name, sm_req_peer(req));
    }
    SM_RESPOND(delete_topics_response, req, &resp);
}

SM_HANDLER_ON_CONTROLLER(sm_handle_delete_topics, delete_topics_request,
                         delete_topics_run)

static void create_partitions_run(sm_req_t *req, void *msgp)
{
    sm_create_partitions_request_t msg = *(sm_create_partitions_request_t *)msgp;
    sm_meta_t *meta = sm_server_meta(req->srv);
    sm_create_partitions_response_t resp;
    sm_create_partitions_response_init(&resp);
    SM_NEW_ARRAY(req, sm_create_partitions_response_create_partitions_topic_result,
                 msg.topics_count, resp.results);
    resp.results_count = msg.topics_count;
    for (int32_t i = 0; i < msg.topics_count; i++) {
        sm_create_partitions_request_create_partitions_topic_t *t = &msg.topics[i];
        sm_create_partitions_response_create_partitions_topic_result_t *r = &resp.results[i];
        r->name = t->name;
        if (sm_str_has_nul(t->name)) {
            r->error_code = KERR_UNKNOWN_TOPIC_OR_PARTITION; /* no topic has such a name */
            continue;
        }
        char errmsg[512] = "";
        sm_err_t err = sm_meta_create_partitions(meta, sm_req_str(req, t->name), t->count,
                                                 msg.validate_only, errmsg, sizeof errmsg);
        if (err != SM_OK) {
            r->error_code = meta_kerr(err);
            r->error_message = msg_dup(req, errmsg);
        }
    }
    SM_RESPOND(create_partitions_response, req, &resp);
}

SM_HANDLER_ON_CONTROLLER(sm_handle_create_partitions, create_partitions_request,
                         create_partitions_run)

/* ------------------------------------------------------------ ElectLeaders */

/* ElectLeaders (43): preferred or unclean leader elections, decided and
 * committed by the active controller (sm_meta_elect_leaders). v0 has no
 * election type (preferred). Null TopicPartitions: every partition, and the
 * answer lists the elections made, as Kafka's does. */
static void elect_leaders_run(sm_req_t *req, void *msgp)
{
    const sm_elect_leaders_request_t *msg = msgp;
    sm_elect_leaders_response_t resp;
    sm_elect_leaders_response_init(&resp);
    int8_t type = req->api_version >= 1 ? msg->election_type : 0;
    sm_meta_t *meta = sm_server_meta(req->srv);
    if (msg->topic_partitions_count < 0) {
        sm_meta_election_t *done = NULL;
        int n = 0;
        resp.error_code = sm_meta_elect_leaders(meta, type, NULL, 0, &done, &n);
        SM_NEW_ARRAY(req, sm_elect_leaders_response_replica_election_result, n,
                     resp.replica_election_results);
        for (int i = 0; i < n; i++) {
            sm_elect_leaders_response_replica_election_result_t *rt = NULL;
            for (int32_t k = 0; k < resp.replica_election_results_count && !rt; k++)
                if (strcmp(resp.replica_election_results[k].topic.ptr, done[i].topic) == 0)
                    rt = &resp.replica_election_results[k];
            if (!rt) {
                rt = &resp.replica_election_results[resp.replica_election_results_count++];
                rt->topic = sm_str(sm_arena_strndup(&req->arena, done[i].topic, strlen(done[i].topic)));
                SM_NEW_ARRAY(req, sm_elect_leaders_response_partition_result, n,
                             rt->partition_result);
            }
            sm_elect_leaders_response_partition_result_t *pr =
                &rt->partition_result[rt->partition_result_count++];
            pr->partition_id = done[i].partition;
        }
        sm_meta_elections_free(done, n);
        SM_RESPOND(elect_leaders_response, req, &resp);
        return;
    }
    int n = 0;
    for (int32_t t = 0; t < msg->topic_partitions_count; t++)
        n += SM_MAX(msg->topic_partitions[t].partitions_count, 0);
    sm_meta_election_t *e = SM_ARENA_NEW(&req->arena, sm_meta_election_t, n ? n : 1);
    int k = 0;
    for (int32_t t = 0; t < msg->topic_partitions_count; t++)
        for (int32_t j = 0; j < msg->topic_partitions[t].partitions_count; j++, k++)
            e[k] = (sm_meta_election_t){
                .topic = sm_str_has_nul(msg->topic_partitions[t].topic)
                             ? ""
                             : sm_req_str(req, msg->topic_partitions[t].topic),
                .partition = msg->topic_partitions[t].partitions[j]};
    resp.error_code = sm_meta_elect_leaders(meta, type, e, n, NULL, NULL);
    SM_NEW_ARRAY(req, sm_elect_leaders_response_replica_election_result,
                 msg->topic_partitions_count, resp.replica_election_results);
    resp.replica_election_results_count = msg->topic_partitions_count;
    k = 0;
    for (int32_t t = 0; t < msg->topic_partitions_count; t++) {
        sm_elect_leaders_response_replica_election_result_t *rt =
            &resp.replica_election_results[t];
        rt->topic = msg->topic_partitions[t].topic;
        int32_t np = SM_MAX(msg->topic_partitions[t].partitions_count, 0);
        SM_NEW_ARRAY(req, sm_elect_leaders_response_partition_result, np, rt->partition_result);
        rt->partition_result_count = np;
        for (int32_t j = 0; j < np; j++, k++) {
            sm_elect_leaders_response_partition_result_t *pr = &rt->partition_result[j];
            pr->partition_id = e[k].partition;
            pr->error_code = resp.error_code ? resp.error_code : e[k].error;
            if (pr->error_code == 84)
                pr->error_message = sm_str("Leader election not needed for topic partition.");
            else if (pr->error_code == 80)
                pr->error_message = sm_str("The preferred leader is not in sync or not alive.");
            else if (pr->error_code == 83)
                pr->error_message = sm_str("No replica of the partition is alive.");
        }
    }
    SM_RESPOND(elect_leaders_response, req, &resp);
}

SM_HANDLER_ON_CONTROLLER(sm_handle_elect_leaders, elect_leaders_request, elect_leaders_run)

/* ------------------------------------------------------------ reassignment */

static const int32_t k_no_replicas[1] = {-1}; /* an empty (not null) list */

/* AlterPartitionReassignments (45), on the active controller
 * (sm_meta_alter_reassignments; meta_reassign.c draws the states). */
static void alter_reassignments_run(sm_req_t *req, void *msgp)
{
    const sm_alter_partition_reassignments_request_t *msg = msgp;
    sm_alter_partition_reassignments_response_t resp;
    sm_alter_partition_reassignments_response_init(&resp);
    int n = 0;
    for (int32_t t = 0; t < msg->topics_count; t++)
        n += SM_MAX(msg->topics[t].partitions_count, 0);
    sm_meta_reassignment_t *e = SM_ARENA_NEW(&req->arena, sm_meta_reassignment_t, n ? n : 1);
    int k = 0;
    for (int32_t t = 0; t < msg->topics_count; t++) {
        const char *name = sm_str_has_nul(msg->topics[t].name)
                               ? ""
                               : sm_req_str(req, msg->topics[t].name);
        for (int32_t j = 0; j < msg->topics[t].partitions_count; j++, k++) {
            const sm_alter_partition_reassignments_request_reassignable_partition_t *rp =
                &msg->topics[t].partitions[j];
            e[k] = (sm_meta_reassignment_t){
                .topic = name,
                .partition = rp->partition_index,
                .replicas = rp->replicas_count >= 0 ? (rp->replicas ? rp->replicas : k_no_replicas)
                                                    : NULL,
                .nreplicas = SM_MAX(rp->replicas_count, 0)};
        }
    }
    resp.error_code = sm_meta_alter_reassignments(sm_server_meta(req->srv), e, n);
    SM_NEW_ARRAY(req, sm_alter_partition_reassignments_response_reassignable_topic_response,
                 msg->topics_count, resp.responses);
    resp.responses_count = msg->topics_count;
    k = 0;
    for (int32_t t = 0; t < msg->topics_count; t++) {
        sm_alter_partition_reassignments_response_reassignable_topic_response_t *rt =
            &resp.responses[t];
        rt->name = msg->topics[t].name;
        int32_t np = SM_MAX(msg->topics[t].partitions_count, 0);
        SM_NEW_ARRAY(req, sm_alter_partition_reassignments_response_reassignable_partition_response,
                     np, rt->partitions);
        rt->partitions_count = np;
        for (int32_t j = 0; j < np; j++, k++) {
            rt->partitions[j].partition_index = e[k].partition;
            rt->partitions[j].error_code = resp.error_code ? resp.error_code : e[k].error;
            if (e[k].message && !resp.error_code)
                rt->partitions[j].error_message = sm_str(e[k].message);
        }
    }
    SM_RESPOND(alter_partition_reassignments_response, req, &resp);
}

SM_HANDLER_ON_CONTROLLER(sm_handle_alter_reassignments, alter_partition_reassignments_request,
                         alter_reassignments_run)

static bool wanted_partition(const sm_list_partition_reassignments_request_t *msg,
                             const char *topic, int32_t p)
{
    if (msg->topics_count < 0)
        return true;
    for (int32_t t = 0; t < msg->topics_count; t++) {
        const sm_str_t *n = &msg->topics[t].name;
        if (n->len < 0 || (size_t)n->len != strlen(topic) ||
            memcmp(n->ptr, topic, (size_t)n->len) != 0)
            continue;
        for (int32_t j = 0; j < msg->topics[t].partition_indexes_count; j++)
            if (msg->topics[t].partition_indexes[j] == p)
                return true;
    }
    return false;
}

static int32_t *arena_ints(sm_req_t *req, const int32_t *v, int n)
{
    int32_t *o = SM_ARENA_NEW(&req->arena, int32_t, n > 0 ? n : 1);
    if (n > 0)
        memcpy(o, v, sizeof *o * (size_t)n);
    return o;
}

/* ListPartitionReassignments (46): the moves in progress, from this node's
 * metadata image (every node follows the metadata log). */
void sm_handle_list_reassignments(sm_req_t *req)
{
    sm_list_partition_reassignments_request_t msg;
    SM_DECODE_OR_FAIL(list_partition_reassignments_request, req, &msg);
    sm_list_partition_reassignments_response_t resp;
    sm_list_partition_reassignments_response_init(&resp);
    sm_meta_image_t *img = sm_meta_image_get(sm_server_meta(req->srv));
    SM_NEW_ARRAY(req, sm_list_partition_reassignments_response_ongoing_topic_reassignment,
                 img->ntopics, resp.topics);
    for (int i = 0; i < img->ntopics; i++) {
        const sm_topic_meta_t *tm = img->topics[i];
        sm_list_partition_reassignments_response_ongoing_topic_reassignment_t *rt = NULL;
        for (int32_t p = 0; p < tm->npartitions; p++) {
            const sm_partition_meta_t *pm = &tm->partitions[p];
            if ((pm->nadding == 0 && pm->nremoving == 0) || !wanted_partition(&msg, tm->name, p))
                continue;
            if (!rt) {
                rt = &resp.topics[resp.topics_count++];
                rt->name = sm_str(sm_arena_strndup(&req->arena, tm->name, strlen(tm->name)));
                SM_NEW_ARRAY(req,
                             sm_list_partition_reassignments_response_ongoing_partition_reassignment,
                             tm->npartitions, rt->partitions);
            }
            sm_list_partition_reassignments_response_ongoing_partition_reassignment_t *op =
                &rt->partitions[rt->partitions_count++];
            op->partition_index = p;
            op->replicas = arena_ints(req, pm->replicas, pm->nreplicas);
            op->replicas_count = pm->nreplicas;
            op->adding_replicas = arena_ints(req, pm->adding, pm->nadding);
            op->adding_replicas_count = pm->nadding;
            op->removing_replicas = arena_ints(req, pm->removing, pm->nremoving);
            op->removing_replicas_count = pm->nremoving;
        }
    }
    sm_meta_image_put(img);
    SM_RESPOND(list_partition_reassignments_response, req, &resp);
}

/* ------------------------------------------------------------ DescribeLogDirs */

static bool log_dir_wanted(const sm_describe_log_dirs_request_t *msg, const sm_partition_t *p)
{
    if (msg->topics_count < 0)
        return true;
    for (int32_t t = 0; t < msg->topics_count; t++) {
        const sm_str_t *n = &msg->topics[t].topic;
        if (n->len < 0 || (size_t)n->len != strlen(p->topic) ||
            memcmp(n->ptr, p->topic, (size_t)n->len) != 0)
            continue;
        for (int32_t j = 0; j < msg->topics[t].partitions_count; j++)
            if (msg->topics[t].partitions[j] == p->index)
                return true;
    }
    return false;
}

/* DescribeLogDirs (35): this broker's log dirs and the replicas in them:
 * size, and the lag of the log end behind the high watermark (a follower's
 * distance from what is committed), as kafka-log-dirs.sh shows them. Samsa
 * keeps every partition in the first log dir. */
void sm_handle_describe_log_dirs(sm_req_t *req)
{
    sm_describe_log_dirs_request_t msg;
    SM_DECODE_OR_FAIL(describe_log_dirs_request, req, &msg);
    sm_describe_log_dirs_response_t resp;
    sm_describe_log_dirs_response_init(&resp);
    const sm_config_t *cfg = sm_server_config(req->srv);
    SM_NEW_ARRAY(req, sm_describe_log_dirs_response_describe_log_dirs_result, cfg->nlog_dirs,
                 resp.results);
    resp.results_count = cfg->nlog_dirs;
    size_t n = 0;
    sm_partition_t **parts = sm_server_partitions(req->srv, &n);
    for (int d = 0; d < cfg->nlog_dirs; d++) {
        sm_describe_log_dirs_response_describe_log_dirs_result_t *r = &resp.results[d];
        r->log_dir = sm_str(cfg->log_dirs[d]);
        struct statvfs vfs;
        if (statvfs(cfg->log_dirs[d], &vfs) == 0) {
            r->total_bytes = (int64_t)vfs.f_blocks * (int64_t)vfs.f_frsize;
            r->usable_bytes = (int64_t)vfs.f_bavail * (int64_t)vfs.f_frsize;
        } else {
            r->error_code = KERR_KAFKA_STORAGE_ERROR;
        }
        if (d > 0)
            continue; /* partitions live in the first dir */
        SM_NEW_ARRAY(req, sm_describe_log_dirs_response_describe_log_dirs_topic, (int32_t)n,
                     r->topics);
        for (size_t i = 0; i < n; i++) {
            sm_partition_t *p = parts[i];
            if (!log_dir_wanted(&msg, p))
                continue;
            sm_describe_log_dirs_response_describe_log_dirs_topic_t *t = NULL;
            for (int32_t k = 0; k < r->topics_count && !t; k++)
                if (strcmp(r->topics[k].name.ptr, p->topic) == 0)
                    t = &r->topics[k];
            if (!t) {
                t = &r->topics[r->topics_count++];
                t->name = sm_str(sm_arena_strndup(&req->arena, p->topic, strlen(p->topic)));
                SM_NEW_ARRAY(req, sm_describe_log_dirs_response_describe_log_dirs_partition,
                             (int32_t)n, t->partitions);
            }
            sm_describe_log_dirs_response_describe_log_dirs_partition_t *pp =
                &t->partitions[t->partitions_count++];
            pp->partition_index = p->index;
            pp->partition_size = sm_partition_size_bytes(p);
            pp->offset_lag =
                SM_MAX(sm_partition_high_watermark(p) - sm_partition_log_end(p), (int64_t)0);
        }
    }
    for (size_t i = 0; i < n; i++)
        sm_partition_put(parts[i]);
    free(parts);
    SM_RESPOND(describe_log_dirs_response, req, &resp);
}

/* ------------------------------------------------------------ DescribeConfigs */

enum { RESOURCE_TOPIC = 2, RESOURCE_BROKER = 4, RESOURCE_BROKER_LOGGER = 8 };

static bool key_wanted(const sm_describe_configs_request_describe_configs_resource_t *res,
                       const char *key)
{
    if (res->configuration_keys_count < 0)
        return true;
    for (int32_t i = 0; i < res->configuration_keys_count; i++)
        if (sm_str_eq(res->configuration_keys[i], key))
            return true;
    return false;
}

typedef sm_describe_configs_response_describe_configs_resource_result_t config_entry_t;

typedef sm_describe_configs_response_describe_configs_synonym_t synonym_t;

/* Append the synonyms of broker key k in Kafka's order: dynamic per-broker,
 * dynamic cluster default, static (the default is left to the caller). */
static int add_broker_synonyms(synonym_t *out, int ns, const sm_config_t *bcfg,
                               const sm_config_dynamic_t *dyn, const char *k)
{
    const sm_config_kv_t *layer[2] = {dyn->node, dyn->cluster};
    int nlayer[2] = {dyn->nnode, dyn->ncluster};
    sm_config_source_t lsrc[2] = {SM_CONFIG_SOURCE_DYNAMIC_BROKER,
                                  SM_CONFIG_SOURCE_DYNAMIC_DEFAULT};
    for (int l = 0; l < 2; l++)
        for (int i = 0; i < nlayer[l]; i++)
            if (strcmp(layer[l][i].key, k) == 0) {
                sm_describe_configs_response_describe_configs_synonym_init(&out[ns]);
                out[ns].name = sm_str(layer[l][i].key);
                out[ns].value = sm_str(layer[l][i].value);
                out[ns].source = (int8_t)lsrc[l];
                ns++;
            }
    sm_config_source_t bs;
    const char *v = sm_config_get(bcfg, k, &bs);
    if (v && bs == SM_CONFIG_SOURCE_STATIC_BROKER) {
        sm_describe_configs_response_describe_configs_synonym_init(&out[ns]);
        out[ns].name = sm_str(k);
        out[ns].value = sm_str(v);
        out[ns].source = SM_CONFIG_SOURCE_STATIC_BROKER;
        ns++;
    }
    return ns;
}

/* Topic configs: override, then the dynamic broker layers of this node, then
 * server.properties, then the default; synonyms list every layer that sets
 * the key or one of its broker synonyms. Values borrowed from the image are
 * copied into the request arena (the image is released before the reply). */
static void describe_topic(sm_req_t *req, const sm_describe_configs_request_t *msg,
                           const sm_describe_configs_request_describe_configs_resource_t *res,
                           sm_describe_configs_response_describe_configs_result_t *out)
{
    const sm_config_t *bcfg = sm_server_config(req->srv);
    sm_meta_image_t *img = sm_meta_image_get(sm_server_meta(req->srv));
    const sm_topic_meta_t *t =
        sm_meta_image_topic(img, res->resource_name.ptr, (size_t)SM_MAX(res->resource_name.len, 0));
    if (!t) {
        out->error_code = KERR_UNKNOWN_TOPIC_OR_PARTITION;
        out->error_message = sm_str("Topic does not exist");
        sm_meta_image_put(img);
        return;
    }
    sm_config_dynamic_t dyn;
    sm_meta_image_dynamic(img, bcfg->node_id, &dyn);
    config_entry_t *e = SM_ARENA_NEW(&req->arena, config_entry_t, sm_topic_config_ndefs);
    int n = 0;
    for (size_t i = 0; i < sm_topic_config_ndefs; i++) {
        const sm_topic_config_def_t *d = &sm_topic_config_defs[i];
        if (!key_wanted(res, d->def.key))
            continue;
        config_entry_t *c = &e[n++];
        sm_describe_configs_response_describe_configs_resource_result_init(c);
        char buf[512];
        sm_config_source_t src = SM_CONFIG_SOURCE_DEFAULT;
        const char *syn = NULL;
        if (sm_topic_config_resolve_dynamic(bcfg, &dyn, d->def.key, t->configs, t->nconfigs, buf,
                                            sizeof buf, &src, &syn) != SM_OK)
            buf[0] = '\0';
        c->name = sm_str(d->def.key);
        c->value = d->def.dflt == NULL && !buf[0] ? (sm_str_t){NULL, -1}
                                                  : sm_str(sm_arena_strndup(&req->arena, buf,
                                                                            strlen(buf)));
        c->config_source = (int8_t)src;
        c->is_default = src == SM_CONFIG_SOURCE_DEFAULT;
        c->config_type = (int8_t)d->def.type;
        if (msg->include_documentation && d->def.doc)
            c->documentation = sm_str(d->def.doc);
        if (msg->include_synonyms) {
            c->synonyms = SM_ARENA_NEW(&req->arena, synonym_t, 10);
            int ns = 0;
            if (src == SM_CONFIG_SOURCE_TOPIC) {
                sm_describe_configs_response_describe_configs_synonym_init(&c->synonyms[ns]);
                c->synonyms[ns].name = c->name;
                c->synonyms[ns].value = c->value;
                c->synonyms[ns].source = SM_CONFIG_SOURCE_TOPIC;
                ns++;
            }
            for (int s = 0; s < 3 && d->synonyms[s].key; s++)
                ns = add_broker_synonyms(c->synonyms, ns, bcfg, &dyn, d->synonyms[s].key);
            for (int s = 0; s < ns; s++) /* copy: the image is released before the reply */
                c->synonyms[s].value = sm_str(sm_arena_strndup(
                    &req->arena, c->synonyms[s].value.ptr, (size_t)c->synonyms[s].value.len));
            c->synonyms_count = ns;
        }
    }
    out->configs = e;
    out->configs_count = n;
    sm_meta_image_put(img);
}

/* Broker configs. Resource name = this node id: every key with its value in
 * effect (dynamic per-broker, dynamic default, static, default) and source;
 * read_only is false for the keys that can be changed dynamically. Resource
 * name "": the cluster-wide dynamic defaults only, as Kafka reports them. */
static void describe_broker(sm_req_t *req, const sm_describe_configs_request_t *msg,
                            const sm_describe_configs_request_describe_configs_resource_t *res,
                            sm_describe_configs_response_describe_configs_result_t *out)
{
    const sm_config_t *bcfg = sm_server_config(req->srv);
    char self[16];
    snprintf(self, sizeof self, "%d", bcfg->node_id);
    if (res->resource_name.len > 0 && !sm_str_eq(res->resource_name, self)) {
        out->error_code = KERR_INVALID_REQUEST;
        out->error_message = sm_str("Unknown broker id");
        return;
    }
    bool cluster_default = res->resource_name.len <= 0;
    sm_meta_image_t *img = sm_meta_image_get(sm_server_meta(req->srv));
    sm_config_dynamic_t dyn;
    sm_meta_image_dynamic(img, cluster_default ? -1 : bcfg->node_id, &dyn);
    config_entry_t *e = SM_ARENA_NEW(&req->arena, config_entry_t, sm_broker_config_ndefs);
    int n = 0;
    for (size_t i = 0; i < sm_broker_config_ndefs; i++) {
        const sm_config_def_t *d = &sm_broker_config_defs[i];
        if (!key_wanted(res, d->key))
            continue;
        sm_config_source_t src;
        const char *v = sm_config_get_dynamic(bcfg, &dyn, d->key, &src);
        if (cluster_default && src != SM_CONFIG_SOURCE_DYNAMIC_DEFAULT)
            continue;
        config_entry_t *c = &e[n++];
        sm_describe_configs_response_describe_configs_resource_result_init(c);
        c->name = sm_str(d->key);
        bool sensitive = d->type == SM_CONFIG_PASSWORD;
        c->value = v && !sensitive ? sm_str(sm_arena_strndup(&req->arena, v, strlen(v)))
                                   : (sm_str_t){NULL, -1};
        c->is_sensitive = sensitive;
        c->read_only = !sm_config_is_dynamic(d->key);
        c->config_source = (int8_t)src;
        c->is_default = src == SM_CONFIG_SOURCE_DEFAULT;
        c->config_type = (int8_t)d->type;
        if (msg->include_documentation && d->doc)
            c->documentation = sm_str(d->doc);
        if (msg->include_synonyms && src != SM_CONFIG_SOURCE_DEFAULT) {
            c->synonyms = SM_ARENA_NEW(&req->arena, synonym_t, 3);
            int ns = add_broker_synonyms(c->synonyms, 0, bcfg, &dyn, d->key);
            for (int s = 0; s < ns; s++)
                c->synonyms[s].value =
                    sensitive ? (sm_str_t){NULL, -1}
                              : sm_str(sm_arena_strndup(&req->arena, c->synonyms[s].value.ptr,
                                                        (size_t)c->synonyms[s].value.len));
            c->synonyms_count = ns;
        }
    }
    out->configs = e;
    out->configs_count = n;
    sm_meta_image_put(img);
}

void sm_handle_describe_configs(sm_req_t *req)
{
    sm_describe_configs_request_t msg;
    SM_DECODE_OR_FAIL(describe_configs_request, req, &msg);
    sm_describe_configs_response_t resp;
    sm_describe_configs_response_init(&resp);
    SM_NEW_ARRAY(req, sm_describe_configs_response_describe_configs_result, msg.resources_count,
                 resp.results);
    resp.results_count = msg.resources_count;
    for (int32_t i = 0; i < msg.resources_count; i++) {
        const sm_describe_configs_request_describe_configs_resource_t *res = &msg.resources[i];
        sm_describe_configs_response_describe_configs_result_t *out = &resp.results[i];
        out->resource_type = res->resource_type;
        out->resource_name = res->resource_name;
        switch (res->resource_type) {
        case RESOURCE_TOPIC: describe_topic(req, &msg, res, out); break;
        case RESOURCE_BROKER: describe_broker(req, &msg, res, out); break;
        case RESOURCE_BROKER_LOGGER: out->configs_count = 0; break;
        default:
            out->error_code = KERR_INVALID_REQUEST;
            out->error_message = sm_str("Unsupported resource type");
        }
    }
    SM_RESPOND(describe_configs_response, req, &resp);
}

/* ------------------------------------------------------------ InitProducerId */

/* Without a transactional id: a fresh producer id (epoch 0) from this
 * broker's block (pid_block.h), answered on whatever thread has it. With
 * one: the transaction coordinator (handle_txn.c). */
static void init_pid_done(void *arg, int16_t kerr, int64_t pid)
{
    sm_req_t *req = arg;
    sm_init_producer_id_response_t resp;
    sm_init_producer_id_response_init(&resp);
    resp.error_code = kerr;
    if (!kerr) {
        resp.producer_id = pid;
        resp.producer_epoch = 0;
    }
    SM_RESPOND(init_producer_id_response, req, &resp);
}

void sm_handle_init_producer_id(sm_req_t *req)
{
    sm_init_producer_id_request_t msg;
    SM_DECODE_OR_FAIL(init_producer_id_request, req, &msg);
    if (msg.transactional_id.len >= 0) {
        sm_txn_init_producer_id(req, &msg);
        return;
    }
    sm_pid_get(sm_server_pids(req->srv), init_pid_done, req);
}

/* AllocateProducerIds (67), on the active controller: a block for a
 * registered broker of the epoch it names. */
static void allocate_producer_ids_run(sm_req_t *req, void *msgp)
{
    const sm_allocate_producer_ids_request_t *msg = msgp;
    sm_allocate_producer_ids_response_t resp;
    sm_allocate_producer_ids_response_init(&resp);
    sm_meta_t *m = sm_server_meta(req->srv);
    sm_meta_image_t *img = sm_meta_image_get(m);
    const sm_broker_meta_t *b = sm_meta_image_broker(img, msg->broker_id);
    bool known = b && (msg->broker_epoch < 0 || b->epoch == msg->broker_epoch);
    sm_meta_image_put(img);
    int64_t first = -1;
    if (!sm_meta_is_active(m)) {
        resp.error_code = KERR_NOT_CONTROLLER;
    } else if (!known) {
        resp.error_code = KERR_STALE_BROKER_EPOCH;
    } else if (sm_meta_allocate_producer_ids(m, msg->broker_id, SM_PID_BLOCK_SIZE, &first) !=
               SM_OK) {
        resp.error_code = KERR_UNKNOWN_SERVER_ERROR;
    } else {
        resp.producer_id_start = first;
        resp.producer_id_len = SM_PID_BLOCK_SIZE;
    }
    SM_RESPOND(allocate_producer_ids_response, req, &resp);
}

SM_HANDLER_ON_CONTROLLER(sm_handle_allocate_producer_ids, allocate_producer_ids_request,
                         allocate_producer_ids_run)
