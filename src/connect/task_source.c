/*
 * task_source.c - a source task's thread: poll the plugin, convert and produce its
 * records with an idempotent producer, and store source offsets that are safe.
 *
 * Which offsets are safe (Kafka's SubmittedRecords): every emitted record joins a
 * FIFO in emit order. The producer's delivery report marks a record acknowledged (or
 * failed). An offset commit pops the acknowledged prefix of the FIFO and stores, per
 * source partition, the offset of the last popped record. So a stored offset never
 * covers a record the broker has not acknowledged, nor one emitted after a record
 * still in flight: after any crash the task resumes at or before the first record
 * the topic lacks.
 *
 *  - graceful stop (PUT /stop, DELETE, restart, SIGTERM): polling stops, the producer
 *    is flushed (bounded by max(offset.flush.timeout.ms, 30 s)), then the final commit
 *    stores the offset of the last record: the next start resumes exactly after it,
 *    so the topic holds every record exactly once across the restart;
 *  - kill -9: the records acknowledged since the last commit (at most
 *    offset.flush.interval.ms of them) are sent again on restart: at least once, with
 *    duplicates only from that window, in order (the idempotent producer keeps each
 *    partition's order and never duplicates within one producer session).
 *
 * Transforms (smt.c) run on each emitted record before the converters; a record that
 * a transform drops, or that fails under errors.tolerance=all (errors.c), counts as
 * processed: its offset may be stored.
 *
 * The FIFO is drained every offset.flush.interval.ms and at stop. Delivery reports run
 * inside rd_kafka_poll/flush on this thread, so the FIFO needs no lock.
 */
#define _GNU_SOURCE
#include "cn.h"
#include "smt.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

typedef struct submitted {
    struct submitted *next;
    const char *partition; /* interned in src->partitions; NULL: no offset */
    char *offset;          /* JSON text in text[] below, or NULL */
    int acked;             /* 0 in flight, 1 acknowledged, -1 failed */
    char text[];           /* the offset, allocated with the entry (one malloc per record) */
} submitted_t;

typedef struct cn_source {
    cn_task_t *t;
    cn_worker_t *w;
    cn_ctx_t ctx;
    cn_logger_t *log;
    rd_kafka_t *rk;
    cn_converter_t key_conv, value_conv;
    cn_chain_t *chain; /* transforms (smt.c) */
    cn_errh_t eh;      /* errors.* (errors.c) */
    submitted_t *head, *tail;
    char **partitions;
    size_t npartitions, cap_partitions;
    char fatal[2048];
    bool abandoned; /* a record was dropped because the task is stopping */
    char last_topic[256];
    char **topics_known; /* topics whose metadata was fetched (see warm_topic) */
    size_t ntopics_known;
    int64_t emitted, acked, skipped, filtered;
} cn_source_t;

static const char *intern(cn_source_t *s, const char *p)
{
    if (!p)
        return NULL;
    for (size_t i = 0; i < s->npartitions; i++)
        if (strcmp(s->partitions[i], p) == 0)
            return s->partitions[i];
    if (s->npartitions == s->cap_partitions) {
        s->cap_partitions = s->cap_partitions ? s->cap_partitions * 2 : 8;
        s->partitions = realloc(s->partitions, s->cap_partitions * sizeof *s->partitions);
        if (!s->partitions)
            abort();
    }
    return s->partitions[s->npartitions++] = strdup(p);
}

static submitted_t *submit(cn_source_t *s, const char *partition, const char *offset)
{
    const char *part = offset ? intern(s, partition) : NULL;
    size_t olen = part ? strlen(offset) + 1 : 0;
    submitted_t *e = malloc(sizeof *e + olen);
    if (!e)
        abort();
    e->next = NULL;
    e->acked = 0;
    e->partition = part;
    e->offset = part ? memcpy(e->text, offset, olen) : NULL;
    if (s->tail)
        s->tail->next = e;
    else
        s->head = e;
    s->tail = e;
    return e;
}

static void dr_cb(rd_kafka_t *rk, const rd_kafka_message_t *m, void *opaque)
{
    (void)rk;
    cn_source_t *s = opaque;
    submitted_t *e = m->_private;
    if (!e)
        return;
    if (m->err && s->eh.tolerate_all) {
        /* KIP-779: under errors.tolerance=all a record the producer could not write is
         * reported and skipped; its offset counts as processed. */
        char why[512], unused[8];
        snprintf(why, sizeof why, "Failed to produce a record to %s: %s", rd_kafka_topic_name(m->rkt),
                 rd_kafka_err2str(m->err));
        cn_err_rec_t er = {.topic = rd_kafka_topic_name(m->rkt), .partition = m->partition, .offset = -1};
        cn_errh_report(&s->eh, "KAFKA_PRODUCE", "org.apache.kafka.clients.producer.KafkaProducer", why, &er,
                       unused, sizeof unused);
        e->acked = 1;
        s->skipped++;
    } else if (m->err) {
        e->acked = -1;
        if (!s->fatal[0])
            snprintf(s->fatal, sizeof s->fatal, "Failed to produce a record to %s: %s",
                     rd_kafka_topic_name(m->rkt), rd_kafka_err2str(m->err));
    } else {
        e->acked = 1;
        s->acked++;
    }
}

static void error_cb(rd_kafka_t *rk, int err, const char *reason, void *opaque)
{
    cn_source_t *s = opaque;
    char fatal[512];
    if (err == RD_KAFKA_RESP_ERR__FATAL && rd_kafka_fatal_error(rk, fatal, sizeof fatal)) {
        if (!s->fatal[0])
            snprintf(s->fatal, sizeof s->fatal, "producer fatal error: %s", fatal);
        return;
    }
    CN_DEBUG(s->log, "producer %s: %s", rd_kafka_err2name((rd_kafka_resp_err_t)err), reason);
}

static void log_cb(const rd_kafka_t *rk, int level, const char *fac, const char *buf)
{
    cn_source_t *s = rd_kafka_opaque(rk);
    cn_logf(s ? s->log : NULL, level <= 4 ? SAMSA_LOG_WARN : SAMSA_LOG_DEBUG, "rdkafka %s: %s", fac, buf);
}

/* Pop the acknowledged prefix and store its offsets, then flush the file. */
static void commit_offsets(cn_source_t *s)
{
    json_t *latest = json_object(); /* partition text -> offset text (borrowed) */
    submitted_t *popped = NULL, **ptail = &popped;
    while (s->head && s->head->acked == 1) {
        submitted_t *e = s->head;
        s->head = e->next;
        if (!s->head)
            s->tail = NULL;
        e->next = NULL;
        *ptail = e;
        ptail = &e->next;
        /* only the last of a run of one partition matters (partitions are interned:
         * pointers compare); a source usually has one, so this is one set per commit */
        bool run_ends = !s->head || s->head->acked != 1 || s->head->partition != e->partition;
        if (e->partition && e->offset && run_ends)
            json_object_set_new(latest, e->partition, json_string(e->offset));
    }
    size_t n = json_object_size(latest);
    const char *k;
    json_t *v;
    json_object_foreach(latest, k, v) {
        json_t *p = json_loads(k, 0, NULL), *o = json_loads(json_string_value(v), 0, NULL);
        if (json_is_object(p) && json_is_object(o))
            cn_offsets_put(s->w->offsets, s->t->conn_config ? cn_cfg_str(s->t->conn_config, "name") : "", p, o);
        else
            CN_WARN(s->log, "%s: source partition %s or offset %s is not a JSON object; not stored",
                    s->t->name, k, json_string_value(v));
        json_decref(p);
        json_decref(o);
    }
    json_decref(latest);
    while (popped) {
        submitted_t *e = popped;
        popped = e->next;
        free(e);
    }
    if (n) {
        char err[512];
        if (cn_offsets_flush(s->w->offsets, err, sizeof err) != 0)
            CN_ERROR(s->log, "%s: failed to flush offsets: %s", s->t->name, err);
        else
            CN_DEBUG(s->log, "%s: committed offsets of %zu source partition(s)", s->t->name, n);
    }
}

static bool conv_init(cn_source_t *s, cn_converter_t *cv, const char *which, bool is_key, char *err,
                      size_t err_len)
{
    char key[64], prefix[80];
    snprintf(key, sizeof key, "%s.converter", which);
    snprintf(prefix, sizeof prefix, "%s.converter.", which);
    json_t *cc = s->t->conn_config, *wc = s->w->cfg.props;
    const char *cls = cn_cfg_str(cc, key);
    json_t *props = cn_config_with_prefix(cls ? cc : wc, prefix);
    if (!cls)
        cls = cn_cfg_str(wc, key);
    bool ok = cn_converter_init(cv, cls, props, is_key, err, err_len);
    json_decref(props);
    return ok;
}

/* A record failed at stage: skip it (its offset counts as processed) when errors are
 * tolerated, else fail the task (fatal set, -1). */
static int source_failed(cn_source_t *s, const samsa_connect_source_record_t *rec, const char *stage,
                         const char *cls, const char *why)
{
    char *text = s->eh.log_messages && rec->value.data ? strndup(rec->value.data, rec->value.len) : NULL;
    cn_err_rec_t er = {.topic = rec->topic, .partition = rec->kafka_partition, .offset = -1, .text = text};
    bool tolerated = cn_errh_report(&s->eh, stage, cls, why, &er, s->fatal, sizeof s->fatal);
    free(text);
    if (!tolerated)
        return -1;
    submit(s, rec->source_partition, rec->source_offset)->acked = 1;
    s->skipped++;
    return 0;
}

static int emit_converted(cn_source_t *s, const samsa_connect_source_record_t *rec);

/* Run the transform chain, then convert and produce what it returns. */
int cn_source_emit(cn_source_t *s, const samsa_connect_source_record_t *rec)
{
    if (!rec->topic || !*rec->topic) {
        snprintf(s->fatal, sizeof s->fatal, "a source record has no topic");
        return -1;
    }
    if (!cn_chain_size(s->chain))
        return emit_converted(s, rec);
    char err[1024];
    bool bad_key;
    cn_record_t r;
    /* A record without a timestamp is stamped at emit, as the producer would. */
    if (cn_record_init(&r, rec->topic, rec->kafka_partition, -1, rec->timestamp_ms > 0 ? rec->timestamp_ms : cn_wall_ms(),
                       &rec->key, &rec->value, rec->headers, rec->header_count, &bad_key, err, sizeof err) != 0)
        return source_failed(s, rec, bad_key ? "KEY_CONVERTER" : "VALUE_CONVERTER",
                             cn_converter_class(bad_key ? &s->key_conv : &s->value_conv), err);
    const char *cls = "";
    int rc = cn_chain_apply(s->chain, &r, &cls, err, sizeof err);
    if (rc <= 0) {
        cn_record_free(&r);
        if (rc < 0)
            return source_failed(s, rec, "TRANSFORMATION", cls, err);
        /* Filtered out: processed, so its offset may be stored. */
        submit(s, rec->source_partition, rec->source_offset)->acked = 1;
        s->filtered++;
        return 0;
    }
    if (!*r.topic) {
        cn_record_free(&r);
        return source_failed(s, rec, "TRANSFORMATION", "", "a transform left the record without a topic");
    }
    cn_value_t k, v;
    if (cn_record_export(&r, &k, &v, err, sizeof err) != 0) {
        cn_record_free(&r);
        return source_failed(s, rec, "TRANSFORMATION", cls, err);
    }
    samsa_connect_source_record_t out = *rec;
    out.topic = r.topic;
    out.kafka_partition = r.partition;
    out.timestamp_ms = r.timestamp_ms;
    out.key = k.v;
    out.value = v.v;
    out.headers = r.view;
    out.header_count = r.nhdrs;
    rc = emit_converted(s, &out);
    cn_value_free(&k);
    cn_value_free(&v);
    cn_record_free(&r);
    return rc;
}

/* The first record for a topic waits for the topic's metadata, as the Java producer's
 * send() does (max.block.ms). librdkafka would otherwise queue it and, when the topic
 * appeared while its first metadata request was in flight, look the topic up only at
 * its next 1 s timer: a second of nothing at the start of every source task. */
static void warm_topic(cn_source_t *s, const char *topic)
{
    for (size_t i = 0; i < s->ntopics_known; i++)
        if (strcmp(s->topics_known[i], topic) == 0)
            return;
    char **grown = realloc(s->topics_known, (s->ntopics_known + 1) * sizeof *grown);
    char *copy = strdup(topic);
    if (!grown || !copy)
        abort();
    s->topics_known = grown;
    s->topics_known[s->ntopics_known++] = copy;
    rd_kafka_topic_t *rkt = rd_kafka_topic_new(s->rk, topic, NULL);
    const struct rd_kafka_metadata *md = NULL;
    if (rkt && rd_kafka_metadata(s->rk, 0, rkt, &md, 5000) == RD_KAFKA_RESP_ERR_NO_ERROR)
        rd_kafka_metadata_destroy(md);
    if (rkt)
        rd_kafka_topic_destroy(rkt);
}

static int emit_converted(cn_source_t *s, const samsa_connect_source_record_t *rec)
{
    char err[1024];
    char *kb = NULL, *vb = NULL;
    size_t kl = 0, vl = 0;
    if (cn_convert_from_connect(&s->key_conv, &rec->key, &kb, &kl, err, sizeof err) != 0)
        return source_failed(s, rec, "KEY_CONVERTER", cn_converter_class(&s->key_conv), err);
    /* String and bytes converters hand the plugin's bytes over unchanged: librdkafka
     * copies them into its message (one allocation instead of our copy, its message
     * and two frees). Otherwise the converted buffer is ours and librdkafka frees it. */
    int vflags = RD_KAFKA_MSG_F_FREE;
    if ((s->value_conv.kind == CN_CONV_STRING || s->value_conv.kind == CN_CONV_BYTES) &&
        (rec->value.kind == SAMSA_VALUE_STRING || rec->value.kind == SAMSA_VALUE_BYTES)) {
        vb = (char *)rec->value.data;
        vl = rec->value.len;
        vflags = RD_KAFKA_MSG_F_COPY;
    } else if (cn_convert_from_connect(&s->value_conv, &rec->value, &vb, &vl, err, sizeof err) != 0) {
        free(kb);
        return source_failed(s, rec, "VALUE_CONVERTER", cn_converter_class(&s->value_conv), err);
    }
    char *vown = vflags == RD_KAFKA_MSG_F_FREE ? vb : NULL; /* ours to free on failure */
    if (strncmp(s->last_topic, rec->topic, sizeof s->last_topic) != 0) {
        cn_task_topic_active(s->t, rec->topic);
        snprintf(s->last_topic, sizeof s->last_topic, "%s", rec->topic);
        warm_topic(s, rec->topic);
    }
    submitted_t *e = submit(s, rec->source_partition, rec->source_offset);
    cn_retry_t retry;
    cn_retry_start(&retry, &s->eh);
    for (;;) {
        rd_kafka_headers_t *hdrs = NULL;
        if (rec->header_count) {
            hdrs = rd_kafka_headers_new(rec->header_count);
            for (size_t i = 0; i < rec->header_count; i++)
                rd_kafka_header_add(hdrs, rec->headers[i].key, -1, rec->headers[i].value,
                                    rec->headers[i].value ? (ssize_t)rec->headers[i].len : 0);
        }
        rd_kafka_resp_err_t rc = rd_kafka_producev(
            s->rk, RD_KAFKA_V_TOPIC(rec->topic),
            RD_KAFKA_V_PARTITION(rec->kafka_partition >= 0 ? rec->kafka_partition : RD_KAFKA_PARTITION_UA),
            RD_KAFKA_V_MSGFLAGS(vflags), RD_KAFKA_V_VALUE(vb, vl), RD_KAFKA_V_KEY(kb, kl),
            RD_KAFKA_V_HEADERS(hdrs), RD_KAFKA_V_TIMESTAMP(rec->timestamp_ms > 0 ? rec->timestamp_ms : 0),
            RD_KAFKA_V_OPAQUE(e), RD_KAFKA_V_END);
        if (rc == RD_KAFKA_RESP_ERR_NO_ERROR)
            break;
        if (hdrs)
            rd_kafka_headers_destroy(hdrs);
        if (rc == RD_KAFKA_RESP_ERR__QUEUE_FULL && !s->fatal[0]) {
            if (cn_task_wanted(s->t) == 's') {
                /* Stopping while the queue stays full (no broker): drop the record; it
                 * stays unacknowledged, so its offset is never stored and it is read
                 * again at the next start. */
                free(vown);
                free(kb);
                s->abandoned = true;
                return -1;
            }
            rd_kafka_poll(s->rk, 50); /* let acknowledgements drain the queue */
            continue;
        }
        if (!s->fatal[0] && cn_retry_again(&retry, s->t)) {
            CN_WARN(s->log, "%s: producing to %s failed (%s); retrying", s->t->name, rec->topic, rd_kafka_err2str(rc));
            continue;
        }
        free(vown);
        free(kb);
        if (!s->fatal[0] && s->eh.tolerate_all) {
            snprintf(err, sizeof err, "Failed to produce to %s: %s", rec->topic, rd_kafka_err2str(rc));
            cn_err_rec_t er = {.topic = rec->topic, .partition = rec->kafka_partition, .offset = -1};
            cn_errh_report(&s->eh, "KAFKA_PRODUCE", "org.apache.kafka.clients.producer.KafkaProducer", err, &er,
                           s->fatal, sizeof s->fatal);
            e->acked = 1; /* KIP-779: skipped, processed */
            s->skipped++;
            return 0;
        }
        e->acked = -1;
        if (!s->fatal[0])
            snprintf(s->fatal, sizeof s->fatal, "Failed to produce to %s: %s", rec->topic, rd_kafka_err2str(rc));
        return -1;
    }
    free(kb); /* librdkafka copies keys; the value it copied (F_COPY) or frees (F_FREE) */
    s->emitted++;
    return 0;
}

static rd_kafka_t *make_producer(cn_source_t *s, char *err, size_t err_len)
{
    char cid[400];
    snprintf(cid, sizeof cid, "connector-producer-%s", s->t->name);
    static const char *const defaults[] = {"enable.idempotence", "true", NULL};
    rd_kafka_conf_t *conf = cn_task_client_conf(s->t, "producer", cid, defaults, err, err_len);
    if (!conf)
        return NULL;
    rd_kafka_conf_set_dr_msg_cb(conf, dr_cb);
    rd_kafka_conf_set_error_cb(conf, error_cb);
    rd_kafka_conf_set_log_cb(conf, log_cb);
    rd_kafka_conf_set_opaque(conf, s);
    rd_kafka_t *rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, err, err_len);
    if (!rk)
        rd_kafka_conf_destroy(conf);
    return rk;
}

void *cn_source_task_main(void *arg)
{
    cn_task_t *t = arg;
    cn_source_t *s = calloc(1, sizeof *s);
    if (!s)
        abort();
    s->t = t;
    s->w = t->w;
    const char *conn_name = cn_cfg_str(t->conn_config, "name");
    cn_ctx_init(&s->ctx, CN_CTX_SOURCE, t->w, conn_name, t->plugin);
    s->ctx.task = t;
    s->ctx.src = s;
    s->log = s->ctx.log;
    const samsa_connect_plugin_t *plugin = t->plugin;
    char err[1024] = "";
    void *task = NULL;
    bool started = false;
    char bad_key[400];

    if (!cn_errh_init(&s->eh, t, false, s->log, err, sizeof err) ||
        !(s->chain = cn_chain_new(t->conn_config, bad_key, sizeof bad_key, err, sizeof err)) ||
        !conv_init(s, &s->key_conv, "key", true, err, sizeof err) ||
        !conv_init(s, &s->value_conv, "value", false, err, sizeof err) ||
        !(s->rk = make_producer(s, err, sizeof err))) {
        cn_task_set_state(t, CN_FAILED, err);
        CN_ERROR(s->log, "%s failed to start: %s", t->name, err);
        goto out;
    }
    samsa_connect_config_t pc = cn_plugin_config(t->config);
    int rc = plugin->task_start(&s->ctx.base, &pc, &task, err, sizeof err);
    cn_plugin_config_free(&pc);
    if (rc != 0) {
        cn_task_set_state(t, CN_FAILED, err[0] ? err : "task_start failed");
        CN_ERROR(s->log, "%s failed to start: %s", t->name, err);
        goto out;
    }
    started = true;
    CN_INFO(s->log, "%s source task finished initialization and start", t->name);
    int64_t interval = t->w->cfg.offset_flush_interval_ms, last_commit = cn_now_ms();
    cn_state_t shown = CN_UNASSIGNED;
    for (;;) {
        char want = cn_task_wanted(t);
        if (want == 's')
            break;
        cn_state_t st = want == 'p' ? CN_PAUSED : CN_RUNNING;
        if (st != shown) {
            cn_task_set_state(t, st, NULL);
            shown = st;
        }
        if (want == 'p') {
            rd_kafka_poll(s->rk, 0);
            cn_task_wait(t, 100);
        } else {
            err[0] = 0;
            rc = plugin->source_poll(task, &s->ctx.base, err, sizeof err);
            if (rc != 0 && s->abandoned && !s->fatal[0])
                break; /* stopping with a full queue: not a failure */
            if (rc != 0 || s->fatal[0]) {
                const char *why = s->fatal[0] ? s->fatal : err[0] ? err : "source_poll failed";
                cn_task_set_state(t, CN_FAILED, why);
                CN_ERROR(s->log, "%s is being killed and will not recover until manually restarted: %s",
                         t->name, why);
                break;
            }
            rd_kafka_poll(s->rk, 0);
        }
        if (s->fatal[0]) {
            cn_task_set_state(t, CN_FAILED, s->fatal);
            CN_ERROR(s->log, "%s is being killed and will not recover until manually restarted: %s", t->name,
                     s->fatal);
            break;
        }
        if (cn_now_ms() - last_commit >= interval) {
            commit_offsets(s);
            last_commit = cn_now_ms();
        }
    }
out:
    if (s->rk) {
        int64_t tmo = t->w->cfg.offset_flush_timeout_ms;
        if (tmo < 30000)
            tmo = 30000;
        rd_kafka_resp_err_t fe = rd_kafka_flush(s->rk, (int)tmo);
        if (fe)
            CN_WARN(s->log, "%s: %s while flushing the producer; unacknowledged records will be sent again",
                    t->name, rd_kafka_err2str(fe));
        commit_offsets(s);
    }
    if (started)
        plugin->task_stop(task, &s->ctx.base);
    if (s->rk)
        rd_kafka_destroy(s->rk);
    CN_INFO(s->log, "%s: stopped after %lld record(s) (%lld acknowledged, %lld skipped, %lld filtered)", t->name,
            (long long)s->emitted, (long long)s->acked, (long long)s->skipped, (long long)s->filtered);
    cn_chain_free(s->chain);
    cn_errh_free(&s->eh);
    for (size_t i = 0; i < s->ntopics_known; i++)
        free(s->topics_known[i]);
    free(s->topics_known);
    while (s->head) {
        submitted_t *e = s->head;
        s->head = e->next;
        free(e);
    }
    for (size_t i = 0; i < s->npartitions; i++)
        free(s->partitions[i]);
    free(s->partitions);
    cn_ctx_done(&s->ctx);
    free(s);
    return NULL;
}
