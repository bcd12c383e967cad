/*
 * main.c - samsa-connect: a Kafka Connect worker in standalone or distributed mode.
 *
 *   samsa-connect config/connect-standalone.properties [connector.properties|.json ...]
 *   samsa-connect config/connect-distributed.properties      (group.id set: dist.c)
 *
 * Distributed start-up: worker config, plugins, the admin client, the internal
 * topics (created when missing and read to their end), the herder thread that joins
 * the group, then the REST server; GET /health answers 200 once the first
 * assignment was applied.
 *
 * Start-up order (as Kafka's ConnectStandalone): worker config, plugins (built-ins and
 * plugin.path), the offset file, the admin client, the REST server, then the
 * connectors named on the command line (a connector that cannot be created stops the
 * worker with status 1). GET /health answers 200 once all of that is done.
 * SIGTERM/SIGINT stop it gracefully: REST first, then every task (sources flush their
 * producers and store offsets, sinks flush and commit), then exit status 0.
 *
 * Main thread only; signals are blocked in every thread and taken by sigwait here.
 */
#define _GNU_SOURCE
#include "cn.h"

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static void usage(void)
{
    fprintf(stderr,
            "usage: samsa-connect [--version] worker.properties [connector.properties|connector.json ...]\n"
            "  A Kafka Connect worker: standalone mode, or distributed mode when the worker\n"
            "  properties set group.id (docs/CONNECT.md).\n");
}

static void admin_log_cb(const rd_kafka_t *rk, int level, const char *fac, const char *buf)
{
    (void)rk;
    cn_logf(cn_logger("samsa.connect.admin"), level <= 4 ? SAMSA_LOG_WARN : SAMSA_LOG_DEBUG, "rdkafka %s: %s",
            fac, buf);
}

static rd_kafka_t *make_admin(cn_worker_t *w, char *err, size_t len)
{
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    json_t *ap = cn_config_with_prefix(w->cfg.props, "admin.");
    bool ok = rd_kafka_conf_set(conf, "bootstrap.servers", w->cfg.bootstrap, err, len) == RD_KAFKA_CONF_OK &&
              rd_kafka_conf_set(conf, "client.id", "connect-admin", err, len) == RD_KAFKA_CONF_OK &&
              cn_rk_conf_apply(conf, ap, err, len);
    json_decref(ap);
    if (!ok) {
        rd_kafka_conf_destroy(conf);
        return NULL;
    }
    rd_kafka_conf_set_log_cb(conf, admin_log_cb);
    rd_kafka_t *rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, err, len);
    if (!rk)
        rd_kafka_conf_destroy(conf);
    return rk;
}

static void set_worker_id(cn_worker_t *w)
{
    const char *host = cn_cfg_str(w->cfg.props, "rest.advertised.host.name");
    char hn[256] = "";
    if (!host || !*host)
        host = w->cfg.listen_host;
    if (!host || !*host) {
        if (gethostname(hn, sizeof hn - 1) != 0)
            snprintf(hn, sizeof hn, "localhost");
        host = hn;
    }
    int64_t port = w->cfg.listen_port;
    cn_cfg_i64(w->cfg.props, "rest.advertised.port", port, &port);
    snprintf(w->cfg.worker_id, sizeof w->cfg.worker_id, "%s:%lld", host, (long long)port);
}

/* Distributed mode: connectors come from the config topic, never the command line. */
static int run_distributed(cn_worker_t *w, int argc, sigset_t *sigs)
{
    char err[2048];
    if (argc > 2) {
        CN_ERROR(w->log, "Distributed mode takes only the worker properties; create connectors over REST");
        return 1;
    }
    CN_INFO(w->log, "Kafka Connect distributed worker %s initializing (bootstrap.servers=%s, group.id=%s)",
            CN_VERSION, w->cfg.bootstrap, cn_cfg_str(w->cfg.props, "group.id"));
    w->plugins = cn_plugins_new(w->cfg.plugin_path);
    w->admin = make_admin(w, err, sizeof err);
    if (!w->admin) {
        CN_ERROR(w->log, "Cannot create the admin client: %s", err);
        return 1;
    }
    /* The worker id (status and the REST URL the other workers forward to) comes from
     * the configured port: the group needs it before the REST server runs. */
    set_worker_id(w);
    w->herder = cn_herder_new(w);
    int rc = 0;
    cn_rest_t *rest = NULL;
    w->dist = cn_dist_start(w, err, sizeof err);
    if (!w->dist) {
        CN_ERROR(w->log, "Cannot start the distributed herder: %s", err);
        rc = 1;
    } else if (!(rest = cn_rest_start(w, err, sizeof err))) {
        CN_ERROR(w->log, "Failed to start the REST server: %s", err);
        rc = 1;
    } else {
        CN_INFO(w->log, "Kafka Connect started (worker %s)", w->cfg.worker_id);
        int sig = 0;
        sigwait(sigs, &sig);
        CN_INFO(w->log, "Kafka Connect stopping (signal %d)", sig);
    }
    cn_rest_stop(rest);
    cn_dist_stop(w->dist);
    w->dist = NULL;
    cn_herder_free(w->herder);
    if (w->offsets && cn_offsets_flush(w->offsets, err, sizeof err) != 0)
        CN_ERROR(w->log, "Failed to flush offsets: %s", err);
    cn_offsets_close(w->offsets);
    rd_kafka_destroy(w->admin);
    cn_plugins_free(w->plugins);
    cn_worker_config_free(&w->cfg);
    CN_INFO(w->log, "Kafka Connect stopped");
    return rc;
}

int main(int argc, char **argv)
{
    if (argc >= 2 && (strcmp(argv[1], "--version") == 0 || strcmp(argv[1], "-v") == 0)) {
        printf("samsa-connect %s (Kafka Connect REST API, plugin ABI %u.%u)\n", CN_VERSION,
               SAMSA_CONNECT_ABI_VERSION >> 16, SAMSA_CONNECT_ABI_VERSION & 0xFFFF);
        return 0;
    }
    if (argc < 2 || argv[1][0] == '-') {
        usage();
        return 2;
    }
    cn_log_init();
    cn_logger_t *log = cn_logger("samsa.connect.worker");

    sigset_t sigs;
    sigemptyset(&sigs);
    sigaddset(&sigs, SIGTERM);
    sigaddset(&sigs, SIGINT);
    pthread_sigmask(SIG_BLOCK, &sigs, NULL);
    signal(SIGPIPE, SIG_IGN);

    static cn_worker_t worker;
    cn_worker_t *w = &worker;
    pthread_mutex_init(&w->admin_mu, NULL);
    w->log = log;
    char err[2048];
    if (!cn_worker_config_load(&w->cfg, argv[1], err, sizeof err)) {
        CN_ERROR(log, "Failed to load worker config %s: %s", argv[1], err);
        return 1;
    }
    if (w->cfg.distributed)
        return run_distributed(w, argc, &sigs);
    CN_INFO(log, "Kafka Connect standalone worker %s initializing (bootstrap.servers=%s, offsets in %s)",
            CN_VERSION, w->cfg.bootstrap, w->cfg.offset_file);
    w->plugins = cn_plugins_new(w->cfg.plugin_path);
    w->offsets = cn_offsets_open(w->cfg.offset_file, err, sizeof err);
    if (!w->offsets) {
        CN_ERROR(log, "Cannot open the offset file: %s", err);
        return 1;
    }
    w->admin = make_admin(w, err, sizeof err);
    if (!w->admin) {
        CN_ERROR(log, "Cannot create the admin client: %s", err);
        return 1;
    }
    w->herder = cn_herder_new(w);
    cn_rest_t *rest = cn_rest_start(w, err, sizeof err);
    if (!rest) {
        CN_ERROR(log, "Failed to start the REST server: %s", err);
        return 1;
    }
    set_worker_id(w);
    int rc = 0;
    for (int i = 2; i < argc; i++) {
        json_t *cfg = cn_connector_file_load(argv[i], err, sizeof err);
        if (!cfg) {
            CN_ERROR(log, "Stopping after connector error: %s", err);
            rc = 1;
            break;
        }
        json_t *out = NULL;
        int st = cn_h_put_config(w->herder, cn_cfg_str(cfg, "name"), cfg, NULL, false, &out);
        if (st >= 300) {
            CN_ERROR(log, "Stopping after connector error: %s: %s", argv[i],
                     json_string_value(json_object_get(out, "message")));
            rc = 1;
        } else {
            CN_INFO(log, "Created connector %s", cn_cfg_str(cfg, "name"));
        }
        json_decref(out);
        json_decref(cfg);
        if (rc)
            break;
    }
    if (rc == 0) {
        w->started = 1;
        CN_INFO(log, "Kafka Connect started (worker %s)", w->cfg.worker_id);
        int sig = 0;
        sigwait(&sigs, &sig);
        CN_INFO(log, "Kafka Connect stopping (signal %d)", sig);
    }
    cn_rest_stop(rest);
    cn_herder_free(w->herder);
    if (cn_offsets_flush(w->offsets, err, sizeof err) != 0)
        CN_ERROR(log, "Failed to flush offsets: %s", err);
    cn_offsets_close(w->offsets);
    rd_kafka_destroy(w->admin);
    cn_plugins_free(w->plugins);
    cn_worker_config_free(&w->cfg);
    CN_INFO(log, "Kafka Connect stopped");
    return rc;
}
