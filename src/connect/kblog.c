/*
 * kblog.c - a log kept in a compacted Kafka topic (Kafka's KafkaBasedLog): the
 * distributed worker's config, offset and status topics.
 *
 * At open the topic is created when missing (cleanup.policy=compact, the given
 * partitions and replication factor), a consumer with no group is assigned every
 * partition from the beginning and a reader thread hands each record, in offset
 * order per partition, to the owner's apply callback. read_to_end() asks the broker
 * for the high watermarks and waits until the reader has consumed up to them, so a
 * caller sees every record written before the call (including its own writes).
 * Writes go through an idempotent producer (acks=all) with Kafka's partitioner for
 * keyed records (murmur2), so a key lands in the partition a Java worker would use.
 *
 * Threads: the reader thread calls apply (the owner locks what apply touches);
 * send/read_to_end may be called from any thread.
 */
#define _GNU_SOURCE
#include "cn.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define KB_TIMEOUT_MS 15000

struct cn_kblog {
    char *topic;
    cn_logger_t *log;
    rd_kafka_t *consumer, *producer;
    cn_kblog_apply_fn apply;
    void *arg;
    int npart;
    int64_t *pos; /* next offset to read per partition (under mu) */
    pthread_mutex_t mu;
    pthread_cond_t cv;
    volatile int stop;
    pthread_t thread;
    bool thread_started;
};

/* One synchronous send: the delivery reports count down pending. */
typedef struct kb_wait {
    int pending;
    rd_kafka_resp_err_t err;
} kb_wait_t;

static void kb_log_cb(const rd_kafka_t *rk, int level, const char *fac, const char *buf)
{
    cn_kblog_t *kb = rd_kafka_opaque(rk);
    cn_logf(kb ? kb->log : NULL, level <= 4 ? SAMSA_LOG_WARN : SAMSA_LOG_DEBUG, "rdkafka %s: %s", fac, buf);
}

static void kb_dr_cb(rd_kafka_t *rk, const rd_kafka_message_t *m, void *opaque)
{
    (void)rk;
    cn_kblog_t *kb = opaque;
    kb_wait_t *w = m->_private;
    if (!w) {
        if (m->err)
            CN_WARN(kb->log, "%s: a record was not written: %s", kb->topic, rd_kafka_err2str(m->err));
        return;
    }
    pthread_mutex_lock(&kb->mu);
    if (m->err && !w->err)
        w->err = m->err;
    w->pending--;
    pthread_cond_broadcast(&kb->cv);
    pthread_mutex_unlock(&kb->mu);
}

/* Create the topic unless it exists. 0, or -1 with err. */
static int ensure_topic(cn_worker_t *w, const char *topic, int partitions, int rf, char *err, size_t len)
{
    /* Metadata of all topics: asking for this one could auto-create it with the
     * broker's defaults (not compacted, num.partitions). */
    const rd_kafka_metadata_t *md = NULL;
    pthread_mutex_lock(&w->admin_mu);
    rd_kafka_resp_err_t e = rd_kafka_metadata(w->admin, 1, NULL, &md, KB_TIMEOUT_MS);
    pthread_mutex_unlock(&w->admin_mu);
    bool exists = false;
    for (int i = 0; e == RD_KAFKA_RESP_ERR_NO_ERROR && i < md->topic_cnt; i++)
        if (strcmp(md->topics[i].topic, topic) == 0 && md->topics[i].err == 0 && md->topics[i].partition_cnt > 0)
            exists = true;
    if (md)
        rd_kafka_metadata_destroy(md);
    if (e) {
        snprintf(err, len, "cannot read the topics of the cluster: %s", rd_kafka_err2str(e));
        return -1;
    }
    if (exists)
        return 0;
    char e2[512];
    rd_kafka_NewTopic_t *nt = rd_kafka_NewTopic_new(topic, partitions, rf, e2, sizeof e2);
    if (!nt) {
        snprintf(err, len, "topic %s: %s", topic, e2);
        return -1;
    }
    rd_kafka_NewTopic_set_config(nt, "cleanup.policy", "compact");
    rd_kafka_queue_t *q = rd_kafka_queue_new(w->admin);
    rd_kafka_AdminOptions_t *o = rd_kafka_AdminOptions_new(w->admin, RD_KAFKA_ADMIN_OP_CREATETOPICS);
    rd_kafka_AdminOptions_set_request_timeout(o, KB_TIMEOUT_MS, e2, sizeof e2);
    rd_kafka_CreateTopics(w->admin, &nt, 1, o, q);
    rd_kafka_event_t *ev = rd_kafka_queue_poll(q, KB_TIMEOUT_MS + 2000);
    int rc = 0;
    if (!ev) {
        snprintf(err, len, "creating topic %s: timed out", topic);
        rc = -1;
    } else if (rd_kafka_event_error(ev)) {
        snprintf(err, len, "creating topic %s: %s", topic, rd_kafka_event_error_string(ev));
        rc = -1;
    } else {
        size_t n = 0;
        const rd_kafka_topic_result_t **res =
            rd_kafka_CreateTopics_result_topics(rd_kafka_event_CreateTopics_result(ev), &n);
        for (size_t i = 0; i < n; i++) {
            rd_kafka_resp_err_t te = rd_kafka_topic_result_error(res[i]);
            if (te && te != RD_KAFKA_RESP_ERR_TOPIC_ALREADY_EXISTS) {
                snprintf(err, len, "creating topic %s: %s", topic, rd_kafka_topic_result_error_string(res[i]));
                rc = -1;
            }
        }
    }
    if (ev)
        rd_kafka_event_destroy(ev);
    rd_kafka_AdminOptions_destroy(o);
    rd_kafka_queue_destroy(q);
    rd_kafka_NewTopic_destroy(nt);
    return rc;
}

static int partition_count(rd_kafka_t *rk, const char *topic, char *err, size_t len)
{
    for (int attempt = 0; attempt < 30; attempt++) {
        const rd_kafka_metadata_t *md = NULL;
        rd_kafka_resp_err_t e = rd_kafka_metadata(rk, 1, NULL, &md, KB_TIMEOUT_MS);
        int n = -1;
        for (int i = 0; e == 0 && i < md->topic_cnt; i++)
            if (strcmp(md->topics[i].topic, topic) == 0 && md->topics[i].err == 0)
                n = md->topics[i].partition_cnt;
        if (md)
            rd_kafka_metadata_destroy(md);
        if (n > 0)
            return n;
        struct timespec ts = {0, 200 * 1000000L};
        nanosleep(&ts, NULL);
    }
    snprintf(err, len, "topic %s has no partitions in the metadata", topic);
    return -1;
}

static void *reader_main(void *arg)
{
    cn_kblog_t *kb = arg;
    while (!kb->stop) {
        rd_kafka_message_t *m = rd_kafka_consumer_poll(kb->consumer, 200);
        if (!m)
            continue;
        if (m->err == RD_KAFKA_RESP_ERR__PARTITION_EOF) {
            pthread_mutex_lock(&kb->mu);
            if (m->partition >= 0 && m->partition < kb->npart && m->offset > kb->pos[m->partition])
                kb->pos[m->partition] = m->offset;
            pthread_cond_broadcast(&kb->cv);
            pthread_mutex_unlock(&kb->mu);
        } else if (m->err) {
            CN_DEBUG(kb->log, "%s: consumer: %s", kb->topic, rd_kafka_message_errstr(m));
        } else {
            kb->apply(kb->arg, m->key, m->key_len, m->payload, m->len, m->partition, m->offset);
            pthread_mutex_lock(&kb->mu);
            if (m->partition >= 0 && m->partition < kb->npart)
                kb->pos[m->partition] = m->offset + 1;
            pthread_cond_broadcast(&kb->cv);
            pthread_mutex_unlock(&kb->mu);
        }
        rd_kafka_message_destroy(m);
    }
    return NULL;
}

static rd_kafka_t *make_client(cn_kblog_t *kb, cn_worker_t *w, rd_kafka_type_t type, const char *prefix,
                               char *err, size_t len)
{
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    char cid[400];
    snprintf(cid, sizeof cid, "%s-%s", w->cfg.worker_id, kb->topic);
    json_t *extra = cn_config_with_prefix(w->cfg.props, prefix);
    bool ok = rd_kafka_conf_set(conf, "bootstrap.servers", w->cfg.bootstrap, err, len) == RD_KAFKA_CONF_OK &&
              rd_kafka_conf_set(conf, "client.id", cid, err, len) == RD_KAFKA_CONF_OK;
    if (ok && type == RD_KAFKA_PRODUCER)
        ok = rd_kafka_conf_set(conf, "enable.idempotence", "true", err, len) == RD_KAFKA_CONF_OK &&
             rd_kafka_conf_set(conf, "partitioner", "murmur2_random", err, len) == RD_KAFKA_CONF_OK &&
             rd_kafka_conf_set(conf, "linger.ms", "1", err, len) == RD_KAFKA_CONF_OK;
    if (ok && type == RD_KAFKA_CONSUMER)
        /* A group.id only because librdkafka's consumer wants one for assign();
         * partitions are assigned, never subscribed, and nothing is committed. */
        ok = rd_kafka_conf_set(conf, "group.id", "samsa-connect-internal-reader", err, len) == RD_KAFKA_CONF_OK &&
             rd_kafka_conf_set(conf, "enable.partition.eof", "true", err, len) == RD_KAFKA_CONF_OK &&
             rd_kafka_conf_set(conf, "enable.auto.commit", "false", err, len) == RD_KAFKA_CONF_OK &&
             rd_kafka_conf_set(conf, "fetch.wait.max.ms", "100", err, len) == RD_KAFKA_CONF_OK;
    ok = ok && cn_rk_conf_apply(conf, extra, err, len);
    json_decref(extra);
    if (!ok) {
        rd_kafka_conf_destroy(conf);
        return NULL;
    }
    rd_kafka_conf_set_log_cb(conf, kb_log_cb);
    rd_kafka_conf_set_opaque(conf, kb);
    if (type == RD_KAFKA_PRODUCER)
        rd_kafka_conf_set_dr_msg_cb(conf, kb_dr_cb);
    rd_kafka_t *rk = rd_kafka_new(type, conf, err, len);
    if (!rk)
        rd_kafka_conf_destroy(conf);
    return rk;
}

cn_kblog_t *cn_kblog_open(cn_worker_t *w, const char *topic, int partitions, int rf, cn_kblog_apply_fn apply,
                          void *arg, char *err, size_t len)
{
    if (ensure_topic(w, topic, partitions, rf, err, len) != 0)
        return NULL;
    cn_kblog_t *kb = calloc(1, sizeof *kb);
    if (!kb)
        abort();
    kb->topic = strdup(topic);
    kb->log = cn_logger("samsa.connect.kblog");
    kb->apply = apply;
    kb->arg = arg;
    pthread_mutex_init(&kb->mu, NULL);
    pthread_condattr_t a;
    pthread_condattr_init(&a);
    pthread_condattr_setclock(&a, CLOCK_MONOTONIC);
    pthread_cond_init(&kb->cv, &a);
    pthread_condattr_destroy(&a);
    if (!(kb->producer = make_client(kb, w, RD_KAFKA_PRODUCER, "producer.", err, len)) ||
        !(kb->consumer = make_client(kb, w, RD_KAFKA_CONSUMER, "consumer.", err, len)))
        goto fail;
    kb->npart = partition_count(kb->consumer, topic, err, len);
    if (kb->npart < 0)
        goto fail;
    kb->pos = calloc((size_t)kb->npart, sizeof *kb->pos);
    if (!kb->pos)
        abort();
    rd_kafka_topic_partition_list_t *l = rd_kafka_topic_partition_list_new(kb->npart);
    for (int p = 0; p < kb->npart; p++)
        rd_kafka_topic_partition_list_add(l, topic, p)->offset = RD_KAFKA_OFFSET_BEGINNING;
    rd_kafka_resp_err_t e = rd_kafka_assign(kb->consumer, l);
    rd_kafka_topic_partition_list_destroy(l);
    if (e) {
        snprintf(err, len, "%s: assign: %s", topic, rd_kafka_err2str(e));
        goto fail;
    }
    if (pthread_create(&kb->thread, NULL, reader_main, kb) != 0) {
        snprintf(err, len, "%s: cannot start the reader thread", topic);
        goto fail;
    }
    kb->thread_started = true;
    if (cn_kblog_read_to_end(kb, 60000) != 0) {
        snprintf(err, len, "%s: could not read the topic to its end", topic);
        goto fail;
    }
    CN_INFO(kb->log, "Read %s to its end (%d partition(s))", topic, kb->npart);
    return kb;
fail:
    cn_kblog_close(kb);
    return NULL;
}

void cn_kblog_close(cn_kblog_t *kb)
{
    if (!kb)
        return;
    kb->stop = 1;
    if (kb->thread_started)
        pthread_join(kb->thread, NULL);
    if (kb->producer) {
        rd_kafka_flush(kb->producer, 10000);
        rd_kafka_destroy(kb->producer);
    }
    if (kb->consumer) {
        rd_kafka_consumer_close(kb->consumer);
        rd_kafka_destroy(kb->consumer);
    }
    free(kb->pos);
    free(kb->topic);
    pthread_mutex_destroy(&kb->mu);
    pthread_cond_destroy(&kb->cv);
    free(kb);
}

int cn_kblog_partitions(cn_kblog_t *kb) { return kb->npart; }

int cn_kblog_read_to_end(cn_kblog_t *kb, int timeout_ms)
{
    int64_t deadline = cn_now_ms() + timeout_ms;
    int64_t *hi = calloc((size_t)kb->npart, sizeof *hi);
    if (!hi)
        abort();
    int rc = 0;
    for (int p = 0; p < kb->npart && rc == 0; p++) {
        int64_t lo;
        rd_kafka_resp_err_t e;
        while ((e = rd_kafka_query_watermark_offsets(kb->consumer, kb->topic, p, &lo, &hi[p], 5000)) != 0) {
            if (cn_now_ms() >= deadline) {
                CN_WARN(kb->log, "%s [%d]: cannot read the end offset: %s", kb->topic, p, rd_kafka_err2str(e));
                rc = -1;
                break;
            }
        }
    }
    pthread_mutex_lock(&kb->mu);
    for (int p = 0; p < kb->npart && rc == 0; p++) {
        while (kb->pos[p] < hi[p]) {
            int64_t left = deadline - cn_now_ms();
            if (left <= 0) {
                rc = -1;
                break;
            }
            struct timespec ts;
            cn_deadline_ts(&ts, left < 100 ? left : 100);
            pthread_cond_timedwait(&kb->cv, &kb->mu, &ts);
        }
    }
    pthread_mutex_unlock(&kb->mu);
    free(hi);
    return rc;
}

static rd_kafka_resp_err_t produce(cn_kblog_t *kb, const char *key, const char *val, size_t vlen, kb_wait_t *w)
{
    for (int tries = 0;; tries++) {
        rd_kafka_resp_err_t e = rd_kafka_producev(
            kb->producer, RD_KAFKA_V_TOPIC(kb->topic), RD_KAFKA_V_KEY(key, strlen(key)),
            RD_KAFKA_V_VALUE((void *)val, val ? vlen : 0), RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY),
            RD_KAFKA_V_OPAQUE(w), RD_KAFKA_V_END);
        if (e != RD_KAFKA_RESP_ERR__QUEUE_FULL || tries > 100)
            return e;
        rd_kafka_poll(kb->producer, 50);
    }
}

int cn_kblog_send(cn_kblog_t *kb, size_t n, const char *const *keys, const char *const *vals, bool wait,
                  char *err, size_t len)
{
    /* On the heap: after a timeout the reports may still arrive, so it is leaked
     * then (only when the broker is gone) rather than left dangling. */
    kb_wait_t *wp = calloc(1, sizeof *wp);
    if (!wp)
        abort();
#define w (*wp)
    for (size_t i = 0; i < n; i++) {
        if (wait) {
            pthread_mutex_lock(&kb->mu);
            w.pending++;
            pthread_mutex_unlock(&kb->mu);
        }
        rd_kafka_resp_err_t e = produce(kb, keys[i], vals[i], vals[i] ? strlen(vals[i]) : 0, wait ? &w : NULL);
        if (e) {
            pthread_mutex_lock(&kb->mu);
            if (wait)
                w.pending--;
            if (!w.err)
                w.err = e;
            pthread_mutex_unlock(&kb->mu);
            break;
        }
    }
    rd_kafka_poll(kb->producer, 0);
    int rc = 0;
    if (!wait) {
        if (w.err) {
            snprintf(err, len, "%s: %s", kb->topic, rd_kafka_err2str(w.err));
            rc = -1;
        }
        free(wp);
        return rc;
    }
    /* Delivery reports run inside rd_kafka_poll on whichever thread polls; we poll
     * until ours arrived (another thread's poll may deliver them too). */
    int64_t deadline = cn_now_ms() + 30000;
    for (;;) {
        pthread_mutex_lock(&kb->mu);
        int pending = w.pending;
        pthread_mutex_unlock(&kb->mu);
        if (pending <= 0)
            break;
        if (cn_now_ms() >= deadline) {
            snprintf(err, len, "%s: timed out waiting for the broker", kb->topic);
            return -1; /* wp leaked on purpose, see above */
        }
        rd_kafka_poll(kb->producer, 20);
    }
    if (w.err) {
        snprintf(err, len, "%s: %s", kb->topic, rd_kafka_err2str(w.err));
        rc = -1;
    }
#undef w
    free(wp);
    return rc;
}
