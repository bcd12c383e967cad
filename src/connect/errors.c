/*
 * errors.c - a task's error handling, as Kafka Connect's errors.* keys define it
 * (RetryWithToleranceOperator, LogReporter, DeadLetterQueueReporter):
 *
 *   errors.tolerance=none|all           none: the first failed record fails the task;
 *                                       all: failed records are skipped (and reported)
 *   errors.retry.timeout=ms             how long a retriable operation is retried
 *                                       (0: never, -1: forever)
 *   errors.retry.delay.max.ms=ms        cap of the exponential backoff (from 300 ms)
 *   errors.log.enable, errors.log.include.messages
 *   errors.deadletterqueue.topic.name   sinks: where skipped records go, as consumed
 *   errors.deadletterqueue.topic.replication.factor   used when the worker creates it
 *   errors.deadletterqueue.context.headers.enable     add the __connect.errors.* headers
 *
 * As in Kafka, a failure that is not tolerated is neither logged as a skipped record nor
 * sent to the dead letter queue: it fails the task, whose trace says why. The DLQ
 * producer is the task's own (one task thread uses it); its records are flushed before
 * the sink commits offsets, so a committed record is in the sink or in the DLQ.
 */
#define _GNU_SOURCE
#include "smt.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#define HDR "__connect.errors."

static void errh_log_cb(const rd_kafka_t *rk, int level, const char *fac, const char *buf)
{
    cn_errh_t *e = rd_kafka_opaque(rk);
    cn_logf(e ? e->log : NULL, level <= 4 ? SAMSA_LOG_WARN : SAMSA_LOG_DEBUG, "rdkafka dlq %s: %s", fac, buf);
}

static void dlq_dr_cb(rd_kafka_t *rk, const rd_kafka_message_t *m, void *opaque)
{
    (void)rk;
    cn_errh_t *e = opaque;
    if (m->err) {
        e->failures++;
        CN_ERROR(e->log, "%s: could not write a record to the dead letter queue %s: %s", e->task_name,
                 e->dlq_topic, rd_kafka_err2str(m->err));
    } else {
        e->dlq_sent++;
    }
}

/* Create the DLQ topic (1 partition) unless it exists. */
static bool dlq_create_topic(cn_errh_t *e, char *err, size_t err_len)
{
    char why[512];
    rd_kafka_NewTopic_t *nt = rd_kafka_NewTopic_new(e->dlq_topic, 1, e->dlq_rf, why, sizeof why);
    if (!nt) {
        snprintf(err, err_len, "dead letter queue topic %s: %s", e->dlq_topic, why);
        return false;
    }
    rd_kafka_queue_t *q = rd_kafka_queue_new(e->dlq);
    rd_kafka_AdminOptions_t *opts = rd_kafka_AdminOptions_new(e->dlq, RD_KAFKA_ADMIN_OP_CREATETOPICS);
    rd_kafka_AdminOptions_set_operation_timeout(opts, 15000, NULL, 0);
    rd_kafka_AdminOptions_set_request_timeout(opts, 20000, NULL, 0);
    rd_kafka_CreateTopics(e->dlq, &nt, 1, opts, q);
    rd_kafka_event_t *ev = rd_kafka_queue_poll(q, 30000);
    bool ok = false;
    if (!ev) {
        snprintf(err, err_len, "timed out creating the dead letter queue topic %s", e->dlq_topic);
    } else if (rd_kafka_event_error(ev)) {
        snprintf(err, err_len, "creating the dead letter queue topic %s: %s", e->dlq_topic,
                 rd_kafka_event_error_string(ev));
    } else {
        size_t n;
        const rd_kafka_topic_result_t **res =
            rd_kafka_CreateTopics_result_topics(rd_kafka_event_CreateTopics_result(ev), &n);
        rd_kafka_resp_err_t te = n ? rd_kafka_topic_result_error(res[0]) : RD_KAFKA_RESP_ERR_NO_ERROR;
        ok = te == RD_KAFKA_RESP_ERR_NO_ERROR || te == RD_KAFKA_RESP_ERR_TOPIC_ALREADY_EXISTS;
        if (!ok)
            snprintf(err, err_len, "creating the dead letter queue topic %s: %s", e->dlq_topic,
                     rd_kafka_topic_result_error_string(res[0]) ? rd_kafka_topic_result_error_string(res[0])
                                                                : rd_kafka_err2str(te));
        else if (te == RD_KAFKA_RESP_ERR_NO_ERROR)
            CN_INFO(e->log, "%s: created the dead letter queue topic %s", e->task_name, e->dlq_topic);
    }
    if (ev)
        rd_kafka_event_destroy(ev);
    rd_kafka_AdminOptions_destroy(opts);
    rd_kafka_queue_destroy(q);
    rd_kafka_NewTopic_destroy(nt);
    return ok;
}

static rd_kafka_t *dlq_producer(cn_errh_t *e, cn_task_t *t, char *err, size_t err_len)
{
    char cid[400];
    snprintf(cid, sizeof cid, "connector-dlq-producer-%s", t->name);
    rd_kafka_conf_t *conf = cn_task_client_conf(t, "producer", cid, NULL, err, err_len);
    if (!conf)
        return NULL;
    rd_kafka_conf_set_dr_msg_cb(conf, dlq_dr_cb);
    rd_kafka_conf_set_log_cb(conf, errh_log_cb);
    rd_kafka_conf_set_opaque(conf, e);
    rd_kafka_t *rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, err, err_len);
    if (!rk)
        rd_kafka_conf_destroy(conf);
    return rk;
}

bool cn_errh_init(cn_errh_t *e, cn_task_t *t, bool sink, cn_logger_t *log, char *err, size_t err_len)
{
    memset(e, 0, sizeof *e);
    json_t *c = t->conn_config;
    e->log = log;
    e->task = t;
    e->task_id = t->id;
    snprintf(e->task_name, sizeof e->task_name, "%s", t->name);
    snprintf(e->conn_name, sizeof e->conn_name, "%s", cn_cfg_str(c, "name") ? cn_cfg_str(c, "name") : "");
    const char *tol = cn_cfg_str(c, "errors.tolerance");
    e->tolerate_all = tol && strcasecmp(tol, "all") == 0;
    int64_t rf = 3;
    if (!cn_cfg_bool(c, "errors.log.enable", false, &e->log_errors) ||
        !cn_cfg_bool(c, "errors.log.include.messages", false, &e->log_messages) ||
        !cn_cfg_bool(c, "errors.deadletterqueue.context.headers.enable", false, &e->dlq_headers) ||
        !cn_cfg_i64(c, "errors.retry.timeout", 0, &e->retry_timeout_ms) ||
        !cn_cfg_i64(c, "errors.retry.delay.max.ms", 60000, &e->retry_delay_max_ms) ||
        !cn_cfg_i64(c, "errors.deadletterqueue.topic.replication.factor", 3, &rf)) {
        snprintf(err, err_len, "invalid errors.* configuration");
        return false;
    }
    e->dlq_rf = (int)rf;
    const char *dlq = cn_cfg_str(c, "errors.deadletterqueue.topic.name");
    if (!sink || !dlq || !*dlq)
        return true;
    if (!(e->dlq_topic = strdup(dlq)))
        abort();
    if (!(e->dlq = dlq_producer(e, t, err, err_len)))
        return false;
    /* The broker may still be starting: creating the topic is retried like any
     * retriable operation, and at least a few times. */
    cn_retry_t rt;
    cn_retry_start(&rt, e);
    for (int attempt = 0;; attempt++) {
        if (dlq_create_topic(e, err, err_len))
            return true;
        CN_WARN(log, "%s: %s", e->task_name, err);
        if (cn_task_wanted(t) == 's')
            return false;
        if (!cn_retry_again(&rt, t)) {
            if (attempt >= 2)
                return false;
            cn_task_wait(t, 500);
        }
    }
}

const char *cn_converter_class(const cn_converter_t *cv)
{
    switch (cv->kind) {
    case CN_CONV_JSON: return cn_converter_classes[0];
    case CN_CONV_STRING: return cn_converter_classes[1];
    case CN_CONV_BYTES: return cn_converter_classes[2];
    }
    return "converter";
}

void cn_errh_free(cn_errh_t *e)
{
    if (e->dlq) {
        rd_kafka_flush(e->dlq, 10000);
        rd_kafka_destroy(e->dlq);
    }
    free(e->dlq_topic);
    memset(e, 0, sizeof *e);
}

static void add_hdr(rd_kafka_headers_t *h, const char *name, const char *value)
{
    char key[128];
    snprintf(key, sizeof key, HDR "%s", name);
    rd_kafka_header_add(h, key, -1, value, -1);
}

/* Send the original record to the DLQ, with the error context headers if enabled. */
static void dlq_send(cn_errh_t *e, const char *stage, const char *cls, const char *msg, const cn_err_rec_t *rec)
{
    rd_kafka_headers_t *h = rec->hdrs ? rd_kafka_headers_copy(rec->hdrs) : rd_kafka_headers_new(12);
    if (e->dlq_headers) {
        char num[32];
        add_hdr(h, "topic", rec->topic ? rec->topic : "");
        snprintf(num, sizeof num, "%d", (int)rec->partition);
        add_hdr(h, "partition", num);
        snprintf(num, sizeof num, "%lld", (long long)rec->offset);
        add_hdr(h, "offset", num);
        add_hdr(h, "connector.name", e->conn_name);
        snprintf(num, sizeof num, "%d", e->task_id);
        add_hdr(h, "task.id", num);
        add_hdr(h, "stage", stage);
        add_hdr(h, "class.name", cls);
        bool conv = strstr(stage, "CONVERTER") != NULL;
        add_hdr(h, "exception.class.name", conv || !strcmp(stage, "TRANSFORMATION")
                                               ? "org.apache.kafka.connect.errors.DataException"
                                               : "org.apache.kafka.connect.errors.ConnectException");
        add_hdr(h, "exception.message", msg);
        char *trace;
        if (asprintf(&trace, "%s: %s\n\tat %s (stage %s, task %s)",
                     conv || !strcmp(stage, "TRANSFORMATION") ? "org.apache.kafka.connect.errors.DataException"
                                                             : "org.apache.kafka.connect.errors.ConnectException",
                     msg, cls, stage, e->task_name) >= 0) {
            add_hdr(h, "exception.stacktrace", trace);
            free(trace);
        }
    }
    cn_retry_t rt;
    cn_retry_start(&rt, e);
    /* A full queue (no broker) is waited on, but not forever: the task must stay stoppable. */
    int64_t full_until = cn_now_ms() + 30000;
    for (;;) {
        rd_kafka_resp_err_t rc = rd_kafka_producev(
            e->dlq, RD_KAFKA_V_TOPIC(e->dlq_topic), RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY),
            RD_KAFKA_V_KEY(rec->key, rec->key ? rec->key_len : 0),
            RD_KAFKA_V_VALUE((void *)rec->value, rec->value ? rec->value_len : 0), RD_KAFKA_V_HEADERS(h),
            RD_KAFKA_V_END);
        if (rc == RD_KAFKA_RESP_ERR_NO_ERROR)
            return;
        if (rc == RD_KAFKA_RESP_ERR__QUEUE_FULL && cn_now_ms() < full_until) {
            rd_kafka_poll(e->dlq, 100);
            continue;
        }
        if (rc == RD_KAFKA_RESP_ERR__QUEUE_FULL || !cn_retry_again(&rt, e->task)) {
            rd_kafka_headers_destroy(h);
            e->failures++;
            CN_ERROR(e->log, "%s: could not write a record to the dead letter queue %s: %s", e->task_name,
                     e->dlq_topic, rd_kafka_err2str(rc));
            return;
        }
    }
}

bool cn_errh_report(cn_errh_t *e, const char *stage, const char *cls, const char *msg, const cn_err_rec_t *rec,
                    char *fatal, size_t fatal_len)
{
    if (!e->tolerate_all) {
        snprintf(fatal, fatal_len,
                 "org.apache.kafka.connect.errors.ConnectException: Tolerance exceeded in error handler\n"
                 "Caused by: org.apache.kafka.connect.errors.DataException: %s (stage %s, class %s)",
                 msg, stage, cls);
        return false;
    }
    if (e->log_errors) {
        if (rec->offset >= 0)
            CN_ERROR(e->log,
                     "Error encountered in task %s. Executing stage '%s' with class '%s', where consumed record is "
                     "{topic='%s', partition=%d, offset=%lld}%s%s: %s",
                     e->task_name, stage, cls, rec->topic ? rec->topic : "", (int)rec->partition,
                     (long long)rec->offset, e->log_messages && rec->text ? " = " : "",
                     e->log_messages && rec->text ? rec->text : "", msg);
        else
            CN_ERROR(e->log, "Error encountered in task %s. Executing stage '%s' with class '%s'%s%s: %s",
                     e->task_name, stage, cls, e->log_messages && rec->text ? ", where source record is = " : "",
                     e->log_messages && rec->text ? rec->text : "", msg);
    }
    if (e->dlq)
        dlq_send(e, stage, cls, msg, rec);
    return true;
}

bool cn_errh_flush(cn_errh_t *e, char *err, size_t err_len)
{
    if (!e->dlq)
        return true;
    int64_t before = e->failures;
    rd_kafka_resp_err_t rc = rd_kafka_flush(e->dlq, 30000);
    if (rc) {
        snprintf(err, err_len, "flushing the dead letter queue %s: %s", e->dlq_topic, rd_kafka_err2str(rc));
        return false;
    }
    if (e->failures != before) {
        snprintf(err, err_len, "a record could not be written to the dead letter queue %s", e->dlq_topic);
        return false;
    }
    return true;
}

void cn_retry_start(cn_retry_t *r, const cn_errh_t *e)
{
    r->attempts = 0;
    r->delay_ms = 300;
    r->max_ms = e->retry_delay_max_ms > 0 ? e->retry_delay_max_ms : 60000;
    r->deadline = e->retry_timeout_ms < 0 ? -1 : e->retry_timeout_ms == 0 ? 0 : cn_now_ms() + e->retry_timeout_ms;
}

bool cn_retry_again(cn_retry_t *r, cn_task_t *t)
{
    int64_t now = cn_now_ms();
    if (r->deadline == 0 || (r->deadline > 0 && now >= r->deadline))
        return false;
    if (t && cn_task_wanted(t) == 's')
        return false;
    int64_t d = r->delay_ms < r->max_ms ? r->delay_ms : r->max_ms;
    if (r->deadline > 0 && now + d > r->deadline)
        d = r->deadline - now;
    if (t) {
        cn_task_wait(t, d);
    } else {
        struct timespec ts = {(time_t)(d / 1000), (long)(d % 1000) * 1000000L};
        nanosleep(&ts, NULL);
    }
    r->delay_ms *= 2;
    r->attempts++;
    return true;
}
