/*
 * task_sink.c - a sink task's thread: consume the connector's topics in the consumer
 * group "connect-<connector>", convert records, hand them to the plugin (put), and
 * commit consumer offsets only after the plugin flushed what it was handed.
 *
 * Offsets: after each put the task notes, per partition, the offset after the last
 * record put. Every offset.flush.interval.ms, before partitions are revoked in a
 * rebalance, and at a graceful stop, it calls the plugin's flush and, only if that
 * succeeded, commits those offsets synchronously. A record is therefore committed only
 * once the sink made it durable: at least once after a crash (the records put since
 * the last commit are delivered again), exactly once across a graceful restart.
 *
 * Pause keeps the consumer in its group (librdkafka heartbeats on its own thread) but
 * pauses every assigned partition, also those assigned while paused.
 *
 * Transforms (smt.c) run after the converters and before put; a record a transform
 * drops (Filter) is committed like any other.
 *
 * Errors (errors.c): a conversion or transform error skips the record under
 * errors.tolerance=all (logged, sent to the dead letter queue if one is set, its
 * offset committed like any other) and fails the task otherwise; a put or flush error
 * fails the task without committing.
 */
#define _GNU_SOURCE
#include "cn.h"
#include "smt.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define SINK_MAX_BATCH 500

typedef struct cn_sink {
    cn_task_t *t; /* not used once closing: the task may be freed before a reaper is done */
    char name[300];
    cn_worker_t *w;
    cn_ctx_t ctx;
    cn_logger_t *log;
    rd_kafka_t *rk;
    const samsa_connect_plugin_t *plugin;
    void *task;
    cn_converter_t key_conv, value_conv;
    cn_chain_t *chain; /* transforms (smt.c) */
    cn_errh_t eh;      /* errors.* and the dead letter queue (errors.c) */
    bool paused;
    bool closing; /* the plugin task was stopped: no more flushes */
    rd_kafka_topic_partition_list_t *current; /* next offset to commit per partition */
    bool dirty;                               /* current changed since the last commit */
    char fatal[2048];
    int64_t put_count, skipped, filtered;
} cn_sink_t;

static void log_cb(const rd_kafka_t *rk, int level, const char *fac, const char *buf)
{
    cn_sink_t *s = rd_kafka_opaque(rk);
    cn_logf(s ? s->log : NULL, level <= 4 ? SAMSA_LOG_WARN : SAMSA_LOG_DEBUG, "rdkafka %s: %s", fac, buf);
}

static void error_cb(rd_kafka_t *rk, int err, const char *reason, void *opaque)
{
    cn_sink_t *s = opaque;
    char fatal[512];
    if (err == RD_KAFKA_RESP_ERR__FATAL && rd_kafka_fatal_error(rk, fatal, sizeof fatal)) {
        if (!s->fatal[0])
            snprintf(s->fatal, sizeof s->fatal, "consumer fatal error: %s", fatal);
        return;
    }
    CN_DEBUG(s->log, "consumer %s: %s", rd_kafka_err2name((rd_kafka_resp_err_t)err), reason);
}

/* Flush the plugin, then commit current offsets. false on a flush error (fatal set). */
static bool flush_and_commit(cn_sink_t *s)
{
    if (!s->dirty)
        return true;
    char err[1024] = "";
    if (s->plugin->sink_flush(s->task, &s->ctx.base, err, sizeof err) != 0) {
        if (!s->fatal[0])
            snprintf(s->fatal, sizeof s->fatal, "flush failed: %s", err[0] ? err : "(no reason given)");
        return false;
    }
    /* Records sent to the dead letter queue must be there before their offsets commit. */
    if (!cn_errh_flush(&s->eh, err, sizeof err)) {
        if (!s->fatal[0])
            snprintf(s->fatal, sizeof s->fatal, "%s", err);
        return false;
    }
    if (s->current->cnt == 0) {
        s->dirty = false;
        return true;
    }
    /* Commit and wait at most offset.flush.timeout.ms: with no coordinator (broker
     * down) a stop must not hang on it; the offsets are committed again next time. */
    rd_kafka_queue_t *q = rd_kafka_queue_new(s->rk);
    rd_kafka_resp_err_t rc = rd_kafka_commit_queue(s->rk, s->current, q, NULL, NULL);
    if (!rc) {
        rd_kafka_event_t *ev = NULL;
        int64_t deadline = cn_now_ms() + s->w->cfg.offset_flush_timeout_ms;
        while (!ev && cn_now_ms() < deadline) {
            ev = rd_kafka_queue_poll(q, 100);
            if (ev && rd_kafka_event_type(ev) != RD_KAFKA_EVENT_OFFSET_COMMIT) {
                rd_kafka_event_destroy(ev);
                ev = NULL;
            }
        }
        rc = ev ? rd_kafka_event_error(ev) : RD_KAFKA_RESP_ERR__TIMED_OUT;
        if (ev)
            rd_kafka_event_destroy(ev);
    }
    rd_kafka_queue_destroy(q);
    if (rc) {
        /* Not fatal: the next commit covers these offsets too (Kafka logs and goes on). */
        CN_WARN(s->log, "%s: offset commit failed: %s", s->name, rd_kafka_err2str(rc));
        return true;
    }
    s->dirty = false;
    CN_DEBUG(s->log, "%s: committed offsets of %d partition(s)", s->name, s->current->cnt);
    return true;
}

static void rebalance_cb(rd_kafka_t *rk, rd_kafka_resp_err_t err, rd_kafka_topic_partition_list_t *parts,
                         void *opaque)
{
    cn_sink_t *s = opaque;
    if (s->closing) {
        rd_kafka_assign(rk, NULL);
        return;
    }
    if (err == RD_KAFKA_RESP_ERR__ASSIGN_PARTITIONS) {
        rd_kafka_assign(rk, parts);
        for (int i = 0; i < parts->cnt; i++)
            cn_task_topic_active(s->t, parts->elems[i].topic);
        if (s->paused)
            rd_kafka_pause_partitions(rk, parts);
        CN_INFO(s->log, "%s: assigned %d partition(s)", s->name, parts->cnt);
    } else {
        flush_and_commit(s);
        for (int i = 0; i < parts->cnt; i++)
            rd_kafka_topic_partition_list_del(s->current, parts->elems[i].topic, parts->elems[i].partition);
        rd_kafka_assign(rk, NULL);
        CN_INFO(s->log, "%s: revoked %d partition(s)", s->name, parts->cnt);
    }
}

static bool conv_init(cn_sink_t *s, cn_converter_t *cv, const char *which, bool is_key, char *err, size_t len)
{
    char key[64], prefix[80];
    snprintf(key, sizeof key, "%s.converter", which);
    snprintf(prefix, sizeof prefix, "%s.converter.", which);
    json_t *cc = s->t->conn_config, *wc = s->w->cfg.props;
    const char *cls = cn_cfg_str(cc, key);
    json_t *props = cn_config_with_prefix(cls ? cc : wc, prefix);
    if (!cls)
        cls = cn_cfg_str(wc, key);
    bool ok = cn_converter_init(cv, cls, props, is_key, err, len);
    json_decref(props);
    return ok;
}

static rd_kafka_t *make_consumer(cn_sink_t *s, char *err, size_t len)
{
    char cid[400], group[400];
    snprintf(cid, sizeof cid, "connector-consumer-%s", s->name);
    snprintf(group, sizeof group, "connect-%s", cn_cfg_str(s->t->conn_config, "name"));
    /* librdkafka prefetches up to 64 MB per consumer by default, all of it held when
     * the sink is slower than the topic; 16 MB keeps a sink fed (bench/connect_bench.py
     * runs at the same rate with either) for a quarter of that. consumer.* and
     * consumer.override.* may set it back. */
    const char *const defaults[] = {"group.id", group, "enable.auto.commit", "false",
                                    "enable.auto.offset.store", "false",
                                    "auto.offset.reset", "earliest",
                                    "queued.max.messages.kbytes", "16384", NULL};
    rd_kafka_conf_t *conf = cn_task_client_conf(s->t, "consumer", cid, defaults, err, len);
    if (!conf)
        return NULL;
    rd_kafka_conf_set_rebalance_cb(conf, rebalance_cb);
    rd_kafka_conf_set_error_cb(conf, error_cb);
    rd_kafka_conf_set_log_cb(conf, log_cb);
    rd_kafka_conf_set_opaque(conf, s);
    rd_kafka_t *rk = rd_kafka_new(RD_KAFKA_CONSUMER, conf, err, len);
    if (!rk) {
        rd_kafka_conf_destroy(conf);
        return NULL;
    }
    rd_kafka_poll_set_consumer(rk);
    return rk;
}

static bool subscribe(cn_sink_t *s, char *err, size_t len)
{
    const char *topics = cn_cfg_str(s->t->conn_config, "topics");
    const char *regex = cn_cfg_str(s->t->conn_config, "topics.regex");
    rd_kafka_topic_partition_list_t *l = rd_kafka_topic_partition_list_new(4);
    if (topics && *topics) {
        char *copy = strdup(topics), *save = NULL;
        for (char *tok = strtok_r(copy, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
            while (*tok == ' ')
                tok++;
            size_t n = strlen(tok);
            while (n && tok[n - 1] == ' ')
                tok[--n] = 0;
            if (n)
                rd_kafka_topic_partition_list_add(l, tok, RD_KAFKA_PARTITION_UA);
        }
        free(copy);
    } else if (regex && *regex) {
        char re[1024];
        snprintf(re, sizeof re, "%s%s", regex[0] == '^' ? "" : "^", regex);
        rd_kafka_topic_partition_list_add(l, re, RD_KAFKA_PARTITION_UA);
    }
    rd_kafka_resp_err_t rc = rd_kafka_subscribe(s->rk, l);
    rd_kafka_topic_partition_list_destroy(l);
    if (rc) {
        snprintf(err, len, "subscribe: %s", rd_kafka_err2str(rc));
        return false;
    }
    return true;
}

static void set_paused(cn_sink_t *s, bool pause)
{
    rd_kafka_topic_partition_list_t *a = NULL;
    if (rd_kafka_assignment(s->rk, &a) == RD_KAFKA_RESP_ERR_NO_ERROR && a) {
        if (pause)
            rd_kafka_pause_partitions(s->rk, a);
        else
            rd_kafka_resume_partitions(s->rk, a);
        rd_kafka_topic_partition_list_destroy(a);
    }
    s->paused = pause;
}

/* Note the offset after m as the one to commit for its partition. */
static void track(cn_sink_t *s, const rd_kafka_message_t *m)
{
    const char *topic = rd_kafka_topic_name(m->rkt);
    rd_kafka_topic_partition_t *p = rd_kafka_topic_partition_list_find(s->current, topic, m->partition);
    if (!p)
        p = rd_kafka_topic_partition_list_add(s->current, topic, m->partition);
    p->offset = m->offset + 1;
    s->dirty = true;
}

typedef struct hdrs {
    samsa_connect_header_t *h;
    size_t n;
} hdrs_t;

/* Report a failed record; true when tolerated (skip it), false with fatal set. */
static bool sink_failed(cn_sink_t *s, const rd_kafka_message_t *m, const char *stage, const char *cls,
                        const char *why)
{
    rd_kafka_headers_t *rh = NULL;
    if (rd_kafka_message_headers(m, &rh) != RD_KAFKA_RESP_ERR_NO_ERROR)
        rh = NULL;
    char *text = s->eh.log_messages && m->payload ? strndup(m->payload, m->len) : NULL;
    cn_err_rec_t er = {.topic = rd_kafka_topic_name(m->rkt), .partition = m->partition, .offset = m->offset,
                       .key = m->key, .key_len = m->key_len, .value = m->payload, .value_len = m->len,
                       .hdrs = rh, .text = text};
    bool ok = cn_errh_report(&s->eh, stage, cls, why, &er, s->fatal, sizeof s->fatal);
    free(text);
    if (ok)
        s->skipped++;
    return ok;
}

/* Run the transform chain on r (whose key/value are k/v): 1 keep (r, k, v now the
 * transformed record; xr owns what they point to), 0 dropped or skipped, -1 fail. */
static int sink_transform(cn_sink_t *s, const rd_kafka_message_t *m, samsa_connect_sink_record_t *r,
                          cn_value_t *k, cn_value_t *v, cn_record_t *xr)
{
    char err[1024];
    bool bad_key;
    const char *cls = "";
    if (cn_record_init(xr, r->topic, r->kafka_partition, r->kafka_offset, r->timestamp_ms, &r->key, &r->value,
                       r->headers, r->header_count, &bad_key, err, sizeof err) != 0)
        return sink_failed(s, m, "TRANSFORMATION", "", err) ? 0 : -1;
    int rc = cn_chain_apply(s->chain, xr, &cls, err, sizeof err);
    if (rc <= 0) {
        bool tolerated = rc == 0 || sink_failed(s, m, "TRANSFORMATION", cls, err);
        if (rc == 0)
            s->filtered++;
        cn_record_free(xr);
        return tolerated ? 0 : -1;
    }
    cn_value_t nk, nv;
    if (cn_record_export(xr, &nk, &nv, err, sizeof err) != 0) {
        cn_record_free(xr);
        return sink_failed(s, m, "TRANSFORMATION", cls, err) ? 0 : -1;
    }
    cn_value_free(k);
    cn_value_free(v);
    *k = nk;
    *v = nv;
    r->topic = xr->topic;
    r->kafka_partition = xr->partition;
    r->timestamp_ms = xr->timestamp_ms;
    r->key = k->v;
    r->value = v->v;
    r->headers = xr->view;
    r->header_count = xr->nhdrs;
    return 1;
}

/* Deliver one batch of messages; false when the task must fail (fatal set). */
static bool deliver(cn_sink_t *s, rd_kafka_message_t **msgs, size_t n)
{
    samsa_connect_sink_record_t *recs = calloc(n, sizeof *recs);
    cn_value_t *keys = calloc(n, sizeof *keys), *vals = calloc(n, sizeof *vals);
    hdrs_t *hs = calloc(n, sizeof *hs);
    cn_record_t *xrs = calloc(n, sizeof *xrs);
    if (!recs || !keys || !vals || !hs || !xrs)
        abort();
    size_t k = 0;
    bool ok = true;
    char err[1024];
    for (size_t i = 0; i < n; i++) {
        rd_kafka_message_t *m = msgs[i];
        const char *stage = NULL;
        if (cn_convert_to_connect(&s->key_conv, m->key, m->key_len, &keys[k], err, sizeof err) != 0)
            stage = "KEY_CONVERTER";
        else if (cn_convert_to_connect(&s->value_conv, m->payload, m->len, &vals[k], err, sizeof err) != 0)
            stage = "VALUE_CONVERTER";
        if (stage) {
            cn_value_free(&keys[k]);
            cn_value_free(&vals[k]);
            if (!sink_failed(s, m, stage, cn_converter_class(stage[0] == 'K' ? &s->key_conv : &s->value_conv),
                             err)) {
                ok = false;
                break;
            }
            continue;
        }
        samsa_connect_sink_record_t *r = &recs[k];
        r->topic = rd_kafka_topic_name(m->rkt);
        r->kafka_partition = m->partition;
        r->kafka_offset = m->offset;
        rd_kafka_timestamp_type_t tt;
        r->timestamp_ms = rd_kafka_message_timestamp(m, &tt);
        r->key = keys[k].v;
        r->value = vals[k].v;
        rd_kafka_headers_t *rh = NULL;
        if (rd_kafka_message_headers(m, &rh) == RD_KAFKA_RESP_ERR_NO_ERROR && rh) {
            size_t hc = rd_kafka_header_cnt(rh);
            hs[k].h = calloc(hc ? hc : 1, sizeof *hs[k].h);
            if (!hs[k].h)
                abort();
            for (size_t j = 0; j < hc; j++) {
                const char *name;
                const void *val;
                size_t vl;
                if (rd_kafka_header_get_all(rh, j, &name, &val, &vl) == RD_KAFKA_RESP_ERR_NO_ERROR)
                    hs[k].h[hs[k].n++] = (samsa_connect_header_t){name, val, vl};
            }
            r->headers = hs[k].h;
            r->header_count = hs[k].n;
        }
        if (cn_chain_size(s->chain)) {
            int rc = sink_transform(s, m, r, &keys[k], &vals[k], &xrs[k]);
            if (rc <= 0) {
                cn_value_free(&keys[k]);
                cn_value_free(&vals[k]);
                free(hs[k].h);
                hs[k] = (hdrs_t){0};
                memset(r, 0, sizeof *r);
                if (rc < 0) {
                    ok = false;
                    break;
                }
                continue;
            }
        }
        k++;
    }
    if (ok && k) {
        err[0] = 0;
        if (s->plugin->sink_put(s->task, &s->ctx.base, recs, k, err, sizeof err) != 0) {
            snprintf(s->fatal, sizeof s->fatal, "put failed: %s", err[0] ? err : "(no reason given)");
            ok = false;
        } else {
            s->put_count += (int64_t)k;
        }
    }
    if (ok)
        for (size_t i = 0; i < n; i++)
            track(s, msgs[i]);
    for (size_t i = 0; i < n; i++) {
        cn_value_free(&keys[i]);
        cn_value_free(&vals[i]);
        free(hs[i].h);
        cn_record_free(&xrs[i]);
    }
    free(recs);
    free(keys);
    free(vals);
    free(hs);
    free(xrs);
    return ok;
}

/* Destroy an abandoned consumer and free the rest of its task state. */
static void *sink_reaper(void *arg)
{
    cn_sink_t *s = arg;
    rd_kafka_destroy_flags(s->rk, RD_KAFKA_DESTROY_F_NO_CONSUMER_CLOSE);
    rd_kafka_topic_partition_list_destroy(s->current);
    cn_chain_free(s->chain);
    cn_errh_free(&s->eh);
    cn_ctx_done(&s->ctx);
    free(s);
    return NULL;
}

void *cn_sink_task_main(void *arg)
{
    cn_task_t *t = arg;
    cn_sink_t *s = calloc(1, sizeof *s);
    if (!s)
        abort();
    s->t = t;
    snprintf(s->name, sizeof s->name, "%s", t->name);
    s->w = t->w;
    s->plugin = t->plugin;
    cn_ctx_init(&s->ctx, CN_CTX_SINK, t->w, cn_cfg_str(t->conn_config, "name"), s->plugin);
    s->ctx.task = t;
    s->log = s->ctx.log;
    s->current = rd_kafka_topic_partition_list_new(8);
    char err[1024] = "", bad_key[400];
    bool started = false, failed = false;
    rd_kafka_message_t *msgs[SINK_MAX_BATCH];

    if (!(s->chain = cn_chain_new(t->conn_config, bad_key, sizeof bad_key, err, sizeof err)) ||
        !conv_init(s, &s->key_conv, "key", true, err, sizeof err) ||
        !conv_init(s, &s->value_conv, "value", false, err, sizeof err) ||
        !cn_errh_init(&s->eh, t, true, s->log, err, sizeof err) ||
        !(s->rk = make_consumer(s, err, sizeof err))) {
        cn_task_set_state(t, CN_FAILED, err);
        CN_ERROR(s->log, "%s failed to start: %s", t->name, err);
        goto out;
    }
    samsa_connect_config_t pc = cn_plugin_config(t->config);
    int rc = s->plugin->task_start(&s->ctx.base, &pc, &s->task, err, sizeof err);
    cn_plugin_config_free(&pc);
    if (rc != 0) {
        cn_task_set_state(t, CN_FAILED, err[0] ? err : "task_start failed");
        CN_ERROR(s->log, "%s failed to start: %s", t->name, err);
        goto out;
    }
    started = true;
    if (!subscribe(s, err, sizeof err)) {
        cn_task_set_state(t, CN_FAILED, err);
        failed = true;
        goto out;
    }
    CN_INFO(s->log, "%s sink task finished initialization and start", t->name);
    int64_t interval = t->w->cfg.offset_flush_interval_ms, last_commit = cn_now_ms();
    cn_state_t shown = CN_UNASSIGNED;
    for (;;) {
        char want = cn_task_wanted(t);
        if (want == 's')
            break;
        if ((want == 'p') != s->paused)
            set_paused(s, want == 'p');
        cn_state_t st = s->paused ? CN_PAUSED : CN_RUNNING;
        if (st != shown) {
            cn_task_set_state(t, st, NULL);
            shown = st;
        }
        size_t n = 0;
        rd_kafka_message_t *m = rd_kafka_consumer_poll(s->rk, 100);
        while (m) {
            if (m->err) {
                if (m->err != RD_KAFKA_RESP_ERR__PARTITION_EOF)
                    CN_WARN(s->log, "%s: consumer: %s", t->name, rd_kafka_message_errstr(m));
                rd_kafka_message_destroy(m);
            } else {
                msgs[n++] = m;
            }
            if (n >= SINK_MAX_BATCH)
                break;
            m = rd_kafka_consumer_poll(s->rk, 0);
        }
        bool ok = n == 0 || deliver(s, msgs, n);
        for (size_t i = 0; i < n; i++)
            rd_kafka_message_destroy(msgs[i]);
        if (ok && cn_now_ms() - last_commit >= interval) {
            ok = flush_and_commit(s);
            last_commit = cn_now_ms();
        }
        if (!ok || s->fatal[0]) {
            cn_task_set_state(t, CN_FAILED, s->fatal[0] ? s->fatal : "sink task failed");
            CN_ERROR(s->log, "%s is being killed and will not recover until manually restarted: %s", t->name,
                     s->fatal);
            failed = true;
            break;
        }
    }
out:
    if (started && !failed)
        flush_and_commit(s);
    if (started)
        s->plugin->task_stop(s->task, &s->ctx.base);
    if (s->rk) {
        /* The plugin task is gone: the revocation that close triggers commits nothing. */
        s->closing = true;
        /* Leave the group, but give up after task.shutdown.graceful.timeout.ms: with no
         * coordinator reachable a close would otherwise wait for the session timeout. */
        rd_kafka_queue_t *q = rd_kafka_queue_new(s->rk);
        rd_kafka_error_t *ce = rd_kafka_consumer_close_queue(s->rk, q);
        int64_t deadline = cn_now_ms() + t->w->cfg.task_shutdown_timeout_ms;
        if (ce)
            rd_kafka_error_destroy(ce);
        else
            while (!rd_kafka_consumer_closed(s->rk) && cn_now_ms() < deadline) {
                /* Events, not callbacks: the close may forward ops that a callback
                 * poll cannot serve. A revocation is answered by unassigning. */
                rd_kafka_event_t *ev = rd_kafka_queue_poll(q, 100);
                if (ev && rd_kafka_event_type(ev) == RD_KAFKA_EVENT_REBALANCE)
                    rd_kafka_assign(s->rk, NULL);
                if (ev)
                    rd_kafka_event_destroy(ev);
            }
        bool closed = rd_kafka_consumer_closed(s->rk);
        rd_kafka_queue_destroy(q);
        if (!closed) {
            /* As Kafka abandons a task that does not stop in time: a detached thread
             * finishes destroying the client and frees what the task leaves. */
            CN_WARN(s->log, "%s: the consumer did not leave its group within %lld ms; abandoning it", t->name,
                    (long long)t->w->cfg.task_shutdown_timeout_ms);
            CN_INFO(s->log, "%s: stopped after putting %lld record(s) (%lld skipped)", t->name,
                    (long long)s->put_count, (long long)s->skipped);
            pthread_t reaper;
            pthread_attr_t attr;
            pthread_attr_init(&attr);
            pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
            if (pthread_create(&reaper, &attr, sink_reaper, s) == 0) {
                pthread_attr_destroy(&attr);
                return NULL;
            }
            pthread_attr_destroy(&attr);
        }
        rd_kafka_destroy_flags(s->rk, closed ? 0 : RD_KAFKA_DESTROY_F_NO_CONSUMER_CLOSE);
    }
    CN_INFO(s->log, "%s: stopped after putting %lld record(s) (%lld skipped, %lld filtered)", t->name,
            (long long)s->put_count, (long long)s->skipped, (long long)s->filtered);
    rd_kafka_topic_partition_list_destroy(s->current);
    cn_chain_free(s->chain);
    cn_errh_free(&s->eh);
    cn_ctx_done(&s->ctx);
    free(s);
    return NULL;
}
