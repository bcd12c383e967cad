/*
 * rk.c - librdkafka plumbing for the samsa tool: handle creation with the
 * global options applied, bounded waits that fail fast when no broker can be
 * reached, metadata and watermark look-ups.
 *
 * Why the waits poll in short steps: librdkafka retries connections forever
 * and reports "all brokers down" only through the error callback, which runs
 * from rd_kafka_poll(). A CLI must instead give up with a one-line reason, so
 * every wait here alternates a short wait with rd_kafka_poll(rk, 0) and
 * stops at --timeout or as soon as the callback says no broker is reachable.
 * librdkafka's own log lines are shown only with -v. Main thread only (the
 * callbacks run inside rd_kafka_poll on the main thread).
 */
#include "cli.h"

#include <stdlib.h>
#include <string.h>

static void rk_log_cb(const rd_kafka_t *rk, int level, const char *fac, const char *buf)
{
    if (cli_g.verbose)
        fprintf(stderr, "samsa: rdkafka %d %s: %s\n", level, fac, buf);
}

static void rk_error_cb(rd_kafka_t *rk, int err, const char *reason, void *opaque)
{
    cli_rk_t *c = opaque;
    if (!c)
        return;
    if ((err == RD_KAFKA_RESP_ERR__ALL_BROKERS_DOWN || err == RD_KAFKA_RESP_ERR__TRANSPORT) &&
        !c->conn_err_ms)
        c->conn_err_ms = sm_now_mono_ms();
    if (err == RD_KAFKA_RESP_ERR__ALL_BROKERS_DOWN || rd_kafka_fatal_error(rk, NULL, 0)) {
        c->all_down = 1;
        /* Keep the more useful transport reason if we already have one. */
        if (!c->fatal[0] || err != RD_KAFKA_RESP_ERR__ALL_BROKERS_DOWN)
            snprintf(c->fatal, sizeof c->fatal, "%s", reason);
    } else if (err == RD_KAFKA_RESP_ERR__TRANSPORT || err == RD_KAFKA_RESP_ERR__RESOLVE ||
               err == RD_KAFKA_RESP_ERR__AUTHENTICATION) {
        snprintf(c->fatal, sizeof c->fatal, "%s", reason);
    }
    cli_debug("rdkafka error %s: %s", rd_kafka_err2name(err), reason);
}

static bool conf_set(rd_kafka_conf_t *conf, const char *k, const char *v)
{
    char errstr[512];
    if (rd_kafka_conf_set(conf, k, v, errstr, sizeof errstr) != RD_KAFKA_CONF_OK) {
        cli_fail("client property %s=%s: %s", k, v, errstr);
        return false;
    }
    return true;
}

bool cli_rk_new(cli_rk_t *c, rd_kafka_type_t type, const char *const *extra,
                void (*conf_hook)(rd_kafka_conf_t *conf, void *arg), void *arg)
{
    memset(c, 0, sizeof *c);
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    char tmo[32];
    snprintf(tmo, sizeof tmo, "%d", cli_g.timeout_ms);
    if (!conf_set(conf, "bootstrap.servers", cli_g.brokers) ||
        !conf_set(conf, "client.id", "samsa") ||
        !conf_set(conf, "socket.timeout.ms", tmo))
        goto fail;
    for (int i = 0; extra && extra[i]; i += 2)
        if (!conf_set(conf, extra[i], extra[i + 1]))
            goto fail;
    for (int i = 0; i < cli_g.nrk_props; i++) {
        char *kv = sm_xstrdup(cli_g.rk_props[i]), *k, *v;
        bool ok = cli_split_kv(kv, &k, &v) && conf_set(conf, k, v);
        if (!strchr(cli_g.rk_props[i], '='))
            cli_fail("-X expects key=value, got '%s'", cli_g.rk_props[i]);
        free(kv);
        if (!ok)
            goto fail;
    }
    rd_kafka_conf_set_log_cb(conf, rk_log_cb);
    rd_kafka_conf_set_error_cb(conf, rk_error_cb);
    rd_kafka_conf_set_opaque(conf, c);
    if (conf_hook)
        conf_hook(conf, arg);
    char errstr[512];
    c->rk = rd_kafka_new(type, conf, errstr, sizeof errstr);
    if (!c->rk) {
        cli_fail("cannot create client: %s", errstr);
        goto fail;
    }
    return true;
fail:
    if (!c->rk)
        rd_kafka_conf_destroy(conf);
    return false;
}

void cli_rk_destroy(cli_rk_t *c)
{
    if (c->rk)
        rd_kafka_destroy(c->rk);
    c->rk = NULL;
}

static int unreachable(cli_rk_t *c)
{
    return cli_fail("cannot reach any broker in '%s'%s%s", cli_g.brokers, c->fatal[0] ? ": " : "",
                    c->fatal);
}

rd_kafka_event_t *cli_rk_wait(cli_rk_t *c, rd_kafka_queue_t *q, const char *what)
{
    int64_t deadline = sm_now_mono_ms() + cli_g.timeout_ms + 1000;
    while (sm_now_mono_ms() < deadline) {
        rd_kafka_event_t *ev = rd_kafka_queue_poll(q, 100);
        if (ev)
            return ev;
        rd_kafka_poll(c->rk, 0);
        if (c->all_down) {
            unreachable(c);
            return NULL;
        }
    }
    cli_fail("%s: timed out after %d ms", what, cli_g.timeout_ms);
    return NULL;
}

bool cli_rk_metadata(cli_rk_t *c, const char *topic, const struct rd_kafka_metadata **md)
{
    /* Ask for all topics even when one is wanted: a request naming the
     * topic could make a broker with auto.create.topics.enable create it,
     * and describing a topic must never create it. */
    (void)topic;
    int64_t deadline = sm_now_mono_ms() + cli_g.timeout_ms;
    rd_kafka_resp_err_t err;
    do {
        err = rd_kafka_metadata(c->rk, 1, NULL, md, 250);
        if (err == RD_KAFKA_RESP_ERR_NO_ERROR)
            return true;
        rd_kafka_poll(c->rk, 0);
        if (c->all_down) {
            unreachable(c);
            return false;
        }
    } while ((err == RD_KAFKA_RESP_ERR__TRANSPORT || err == RD_KAFKA_RESP_ERR__TIMED_OUT) &&
             sm_now_mono_ms() < deadline);
    if (err == RD_KAFKA_RESP_ERR__TRANSPORT || err == RD_KAFKA_RESP_ERR__TIMED_OUT)
        unreachable(c);
    else
        cli_fail("metadata request failed: %s", rd_kafka_err2str(err));
    return false;
}

const rd_kafka_metadata_topic_t *cli_md_topic(const struct rd_kafka_metadata *md,
                                              const char *topic)
{
    for (int i = 0; i < md->topic_cnt; i++)
        if (strcmp(md->topics[i].topic, topic) == 0)
            return &md->topics[i];
    return NULL;
}

bool cli_rk_probe(cli_rk_t *c)
{
    const struct rd_kafka_metadata *md = NULL;
    if (rd_kafka_metadata(c->rk, 0, NULL, &md, 1000) != RD_KAFKA_RESP_ERR_NO_ERROR)
        return false;
    rd_kafka_metadata_destroy(md);
    return true;
}

rd_kafka_AdminOptions_t *cli_rk_admin_opts(cli_rk_t *c, rd_kafka_admin_op_t op)
{
    rd_kafka_AdminOptions_t *o = rd_kafka_AdminOptions_new(c->rk, op);
    char errstr[256];
    if (rd_kafka_AdminOptions_set_request_timeout(o, cli_g.timeout_ms, errstr, sizeof errstr))
        cli_debug("request timeout: %s", errstr);
    if (op == RD_KAFKA_ADMIN_OP_CREATETOPICS || op == RD_KAFKA_ADMIN_OP_DELETETOPICS ||
        op == RD_KAFKA_ADMIN_OP_CREATEPARTITIONS)
        if (rd_kafka_AdminOptions_set_operation_timeout(o, cli_g.timeout_ms, errstr,
                                                        sizeof errstr))
            cli_debug("operation timeout: %s", errstr);
    return o;
}

bool cli_rk_watermarks(cli_rk_t *c, const char *topic, int32_t partition, int64_t *lo,
                       int64_t *hi)
{
    rd_kafka_resp_err_t err =
        rd_kafka_query_watermark_offsets(c->rk, topic, partition, lo, hi, cli_g.timeout_ms);
    if (err) {
        cli_debug("watermarks %s-%d: %s", topic, partition, rd_kafka_err2str(err));
        *lo = *hi = -1;
        return false;
    }
    return true;
}
