/*
 * worker.c - the worker's Kafka plumbing shared by tasks and REST calls: applying
 * client configs, the Kafka cluster id (GET /), and the consumer-group admin requests
 * behind a sink connector's offsets endpoints (KIP-875): OffsetFetch, OffsetCommit and
 * OffsetDelete, DeleteGroups, through librdkafka's admin API.
 *
 * One admin handle (a producer instance, never producing) serves all of them; requests
 * are serialized by w->admin_mu and each waits at most CN_ADMIN_TIMEOUT_MS.
 */
#define _GNU_SOURCE
#include "cn.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define CN_ADMIN_TIMEOUT_MS 15000

int64_t cn_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

void cn_deadline_ts(struct timespec *ts, int64_t ms)
{
    clock_gettime(CLOCK_MONOTONIC, ts);
    ts->tv_sec += ms / 1000;
    ts->tv_nsec += (ms % 1000) * 1000000L;
    if (ts->tv_nsec >= 1000000000L) {
        ts->tv_sec++;
        ts->tv_nsec -= 1000000000L;
    }
}

int64_t cn_wall_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

bool cn_rk_conf_apply(rd_kafka_conf_t *conf, json_t *props, char *err, size_t err_len)
{
    const char *k;
    json_t *v;
    json_object_foreach(props, k, v) {
        if (!json_is_string(v))
            continue;
        char e[512];
        if (rd_kafka_conf_set(conf, k, json_string_value(v), e, sizeof e) != RD_KAFKA_CONF_OK) {
            snprintf(err, err_len, "client property %s=%s: %s", k, json_string_value(v), e);
            return false;
        }
    }
    return true;
}

rd_kafka_conf_t *cn_task_client_conf(cn_task_t *t, const char *role, const char *client_id,
                                     const char *const *defaults, char *err, size_t err_len)
{
    char wprefix[32], cprefix[48];
    snprintf(wprefix, sizeof wprefix, "%s.", role);
    snprintf(cprefix, sizeof cprefix, "%s.override.", role);
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    bool ok = rd_kafka_conf_set(conf, "bootstrap.servers", t->w->cfg.bootstrap, err, err_len) == RD_KAFKA_CONF_OK &&
              rd_kafka_conf_set(conf, "client.id", client_id, err, err_len) == RD_KAFKA_CONF_OK;
    for (size_t i = 0; ok && defaults && defaults[i]; i += 2)
        ok = rd_kafka_conf_set(conf, defaults[i], defaults[i + 1], err, err_len) == RD_KAFKA_CONF_OK;
    if (ok) {
        json_t *wp = cn_config_with_prefix(t->w->cfg.props, wprefix);
        json_t *cp = cn_config_with_prefix(t->conn_config, cprefix);
        ok = cn_rk_conf_apply(conf, wp, err, err_len) && cn_rk_conf_apply(conf, cp, err, err_len);
        json_decref(wp);
        json_decref(cp);
    }
    if (!ok) {
        rd_kafka_conf_destroy(conf);
        return NULL;
    }
    return conf;
}

const char *cn_worker_cluster_id(cn_worker_t *w)
{
    pthread_mutex_lock(&w->admin_mu);
    if (!w->cluster_id[0] && w->admin) {
        char *id = rd_kafka_clusterid(w->admin, 2000);
        if (id) {
            snprintf(w->cluster_id, sizeof w->cluster_id, "%s", id);
            rd_kafka_mem_free(w->admin, id);
        }
    }
    pthread_mutex_unlock(&w->admin_mu);
    return w->cluster_id[0] ? w->cluster_id : NULL;
}

/* Run one admin request: fn starts it on q; returns the result event or NULL with err. */
static rd_kafka_event_t *admin_wait(cn_worker_t *w, rd_kafka_queue_t *q, char *err, size_t err_len)
{
    rd_kafka_event_t *ev = rd_kafka_queue_poll(q, CN_ADMIN_TIMEOUT_MS + 2000);
    if (!ev) {
        snprintf(err, err_len, "timed out waiting for the broker");
        return NULL;
    }
    if (rd_kafka_event_error(ev)) {
        snprintf(err, err_len, "%s", rd_kafka_event_error_string(ev));
        rd_kafka_event_destroy(ev);
        return NULL;
    }
    (void)w;
    return ev;
}

static rd_kafka_AdminOptions_t *admin_options(cn_worker_t *w, rd_kafka_admin_op_t op)
{
    rd_kafka_AdminOptions_t *o = rd_kafka_AdminOptions_new(w->admin, op);
    char e[256];
    rd_kafka_AdminOptions_set_request_timeout(o, CN_ADMIN_TIMEOUT_MS, e, sizeof e);
    return o;
}

/* The first partition error of a list, or 0. */
static rd_kafka_resp_err_t partitions_error(const rd_kafka_topic_partition_list_t *l, char *err,
                                            size_t err_len)
{
    for (int i = 0; l && i < l->cnt; i++)
        if (l->elems[i].err) {
            snprintf(err, err_len, "%s [%d]: %s", l->elems[i].topic, l->elems[i].partition,
                     rd_kafka_err2str(l->elems[i].err));
            return l->elems[i].err;
        }
    return RD_KAFKA_RESP_ERR_NO_ERROR;
}

int cn_group_offsets_list(cn_worker_t *w, const char *group, json_t **out, char *err, size_t err_len)
{
    *out = NULL;
    pthread_mutex_lock(&w->admin_mu);
    rd_kafka_queue_t *q = rd_kafka_queue_new(w->admin);
    rd_kafka_ListConsumerGroupOffsets_t *req = rd_kafka_ListConsumerGroupOffsets_new(group, NULL);
    rd_kafka_AdminOptions_t *opt = admin_options(w, RD_KAFKA_ADMIN_OP_LISTCONSUMERGROUPOFFSETS);
    rd_kafka_ListConsumerGroupOffsets(w->admin, &req, 1, opt, q);
    rd_kafka_event_t *ev = admin_wait(w, q, err, err_len);
    int rc = -1;
    if (ev) {
        const rd_kafka_ListConsumerGroupOffsets_result_t *res = rd_kafka_event_ListConsumerGroupOffsets_result(ev);
        size_t n = 0;
        const rd_kafka_group_result_t **groups = rd_kafka_ListConsumerGroupOffsets_result_groups(res, &n);
        const rd_kafka_error_t *ge = n ? rd_kafka_group_result_error(groups[0]) : NULL;
        if (!n) {
            snprintf(err, err_len, "no result for group %s", group);
        } else if (ge && rd_kafka_error_code(ge) != RD_KAFKA_RESP_ERR_GROUP_ID_NOT_FOUND) {
            snprintf(err, err_len, "%s", rd_kafka_error_string(ge));
        } else {
            const rd_kafka_topic_partition_list_t *l = ge ? NULL : rd_kafka_group_result_partitions(groups[0]);
            json_t *a = json_array();
            for (int i = 0; l && i < l->cnt; i++) {
                const rd_kafka_topic_partition_t *p = &l->elems[i];
                if (p->err || p->offset < 0)
                    continue;
                json_array_append_new(a, json_pack("{s:{s:s, s:i}, s:{s:I}}", "partition", "kafka_topic",
                                                   p->topic, "kafka_partition", p->partition, "offset",
                                                   "kafka_offset", (json_int_t)p->offset));
            }
            *out = a;
            rc = 0;
        }
        rd_kafka_event_destroy(ev);
    }
    rd_kafka_ListConsumerGroupOffsets_destroy(req);
    rd_kafka_AdminOptions_destroy(opt);
    rd_kafka_queue_destroy(q);
    pthread_mutex_unlock(&w->admin_mu);
    return rc;
}

int cn_group_offsets_alter(cn_worker_t *w, const char *group, json_t *offsets, char *err, size_t err_len)
{
    rd_kafka_topic_partition_list_t *alter = rd_kafka_topic_partition_list_new(4);
    rd_kafka_topic_partition_list_t *del = rd_kafka_topic_partition_list_new(4);
    size_t i;
    json_t *e;
    json_array_foreach(offsets, i, e) {
        json_t *p = json_object_get(e, "partition"), *o = json_object_get(e, "offset");
        const char *topic = json_string_value(json_object_get(p, "kafka_topic"));
        int part = (int)json_integer_value(json_object_get(p, "kafka_partition"));
        if (!o || json_is_null(o))
            rd_kafka_topic_partition_list_add(del, topic, part);
        else
            rd_kafka_topic_partition_list_add(alter, topic, part)->offset =
                json_integer_value(json_object_get(o, "kafka_offset"));
    }
    int rc = 0;
    pthread_mutex_lock(&w->admin_mu);
    rd_kafka_queue_t *q = rd_kafka_queue_new(w->admin);
    if (alter->cnt) {
        rd_kafka_AlterConsumerGroupOffsets_t *req = rd_kafka_AlterConsumerGroupOffsets_new(group, alter);
        rd_kafka_AdminOptions_t *opt = admin_options(w, RD_KAFKA_ADMIN_OP_ALTERCONSUMERGROUPOFFSETS);
        rd_kafka_AlterConsumerGroupOffsets(w->admin, &req, 1, opt, q);
        rd_kafka_event_t *ev = admin_wait(w, q, err, err_len);
        rc = -1;
        if (ev) {
            size_t n = 0;
            const rd_kafka_group_result_t **g = rd_kafka_AlterConsumerGroupOffsets_result_groups(
                rd_kafka_event_AlterConsumerGroupOffsets_result(ev), &n);
            const rd_kafka_error_t *ge = n ? rd_kafka_group_result_error(g[0]) : NULL;
            if (ge)
                snprintf(err, err_len, "%s", rd_kafka_error_string(ge));
            else if (n && !partitions_error(rd_kafka_group_result_partitions(g[0]), err, err_len))
                rc = 0;
            rd_kafka_event_destroy(ev);
        }
        rd_kafka_AlterConsumerGroupOffsets_destroy(req);
        rd_kafka_AdminOptions_destroy(opt);
    }
    if (rc == 0 && del->cnt) {
        rd_kafka_DeleteConsumerGroupOffsets_t *req = rd_kafka_DeleteConsumerGroupOffsets_new(group, del);
        rd_kafka_AdminOptions_t *opt = admin_options(w, RD_KAFKA_ADMIN_OP_DELETECONSUMERGROUPOFFSETS);
        rd_kafka_DeleteConsumerGroupOffsets(w->admin, &req, 1, opt, q);
        rd_kafka_event_t *ev = admin_wait(w, q, err, err_len);
        rc = -1;
        if (ev) {
            size_t n = 0;
            const rd_kafka_group_result_t **g = rd_kafka_DeleteConsumerGroupOffsets_result_groups(
                rd_kafka_event_DeleteConsumerGroupOffsets_result(ev), &n);
            const rd_kafka_error_t *ge = n ? rd_kafka_group_result_error(g[0]) : NULL;
            if (ge && rd_kafka_error_code(ge) != RD_KAFKA_RESP_ERR_GROUP_ID_NOT_FOUND)
                snprintf(err, err_len, "%s", rd_kafka_error_string(ge));
            else {
                rc = 0;
                /* A partition the group never committed is fine to "delete". */
                const rd_kafka_topic_partition_list_t *l = ge ? NULL : rd_kafka_group_result_partitions(g[0]);
                for (int k = 0; l && k < l->cnt; k++)
                    if (l->elems[k].err && l->elems[k].err != RD_KAFKA_RESP_ERR_UNKNOWN_TOPIC_OR_PART) {
                        snprintf(err, err_len, "%s [%d]: %s", l->elems[k].topic, l->elems[k].partition,
                                 rd_kafka_err2str(l->elems[k].err));
                        rc = -1;
                    }
            }
            rd_kafka_event_destroy(ev);
        }
        rd_kafka_DeleteConsumerGroupOffsets_destroy(req);
        rd_kafka_AdminOptions_destroy(opt);
    }
    rd_kafka_queue_destroy(q);
    pthread_mutex_unlock(&w->admin_mu);
    rd_kafka_topic_partition_list_destroy(alter);
    rd_kafka_topic_partition_list_destroy(del);
    return rc;
}

int cn_group_delete(cn_worker_t *w, const char *group, char *err, size_t err_len)
{
    pthread_mutex_lock(&w->admin_mu);
    rd_kafka_queue_t *q = rd_kafka_queue_new(w->admin);
    rd_kafka_DeleteGroup_t *req = rd_kafka_DeleteGroup_new(group);
    rd_kafka_AdminOptions_t *opt = admin_options(w, RD_KAFKA_ADMIN_OP_DELETEGROUPS);
    rd_kafka_DeleteGroups(w->admin, &req, 1, opt, q);
    rd_kafka_event_t *ev = admin_wait(w, q, err, err_len);
    int rc = -1;
    if (ev) {
        size_t n = 0;
        const rd_kafka_group_result_t **g = rd_kafka_DeleteGroups_result_groups(rd_kafka_event_DeleteGroups_result(ev), &n);
        const rd_kafka_error_t *ge = n ? rd_kafka_group_result_error(g[0]) : NULL;
        if (ge && rd_kafka_error_code(ge) != RD_KAFKA_RESP_ERR_GROUP_ID_NOT_FOUND)
            snprintf(err, err_len, "%s", rd_kafka_error_string(ge));
        else
            rc = 0;
        rd_kafka_event_destroy(ev);
    }
    rd_kafka_DeleteGroup_destroy(req);
    rd_kafka_AdminOptions_destroy(opt);
    rd_kafka_queue_destroy(q);
    pthread_mutex_unlock(&w->admin_mu);
    return rc;
}
