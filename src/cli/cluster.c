/*
 * cluster.c - `samsa cluster info`: cluster id, controller, brokers with
 * their advertised listener and rack, and the API version ranges the broker
 * we reached supports; `samsa cluster health`: a summary of each broker's
 * metrics.listener (/health and /metrics, docs/METRICS.md).
 *
 * Cluster id, controller and brokers come from librdkafka's Metadata; racks
 * from DescribeCluster and the API table from ApiVersions come over the
 * project's wire client (librdkafka 2.0.2 exposes neither). Health is read
 * over plain HTTP/1.1 GETs (a blocking socket with the --timeout bound).
 * Main thread only.
 */
#define _GNU_SOURCE
#include "admin_wire.h"
#include "cli.h"
#include "json.h"
#include "out.h"

#include <errno.h>
#include <netdb.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

static void cluster_usage(FILE *f)
{
    fprintf(f, "usage: samsa cluster info\n"
               "  Cluster id, controller, brokers (id, host:port, rack) and the API versions\n"
               "  supported by the broker samsa connected to.\n"
               "usage: samsa cluster health [--metrics-url URL]...\n"
               "  Each broker's metrics.listener: reachable, ready, under-replicated and\n"
               "  offline partitions, active controller, connections, total consumer group\n"
               "  lag. --metrics-url http://host:port (repeatable; default\n"
               "  http://<first bootstrap host>:9644). Exit 0 when every broker is reachable\n"
               "  and ready with no under-replicated or offline partitions, else 1.\n"
               "usage: samsa cluster quorum [--replication]\n"
               "  The metadata quorum (DescribeQuorum), as kafka-metadata-quorum.sh describe\n"
               "  --status shows it: leader, epoch, high watermark, voters and observers;\n"
               "  --replication lists each voter and observer with its log end offset, lag\n"
               "  and last fetch and caught-up times.\n"
               "usage: samsa cluster elect-leaders [--type preferred|unclean] [--topic T\n"
               "                                   [--partition P]]\n"
               "  Leader elections (ElectLeaders), as kafka-leader-election.sh runs them.\n"
               "  With --type preferred (the default) each partition's first replica leads\n"
               "  again when it is in sync; with --type unclean a partition without a\n"
               "  leader gets one, even from outside the ISR (records only the old ISR had\n"
               "  are lost). Without --topic: every partition.\n"
               "usage: samsa cluster reassign --plan FILE [--verify | --cancel]\n"
               "  Move partitions' replicas (AlterPartitionReassignments) as the plan says,\n"
               "  in kafka-reassign-partitions.sh's JSON: {\"version\":1,\"partitions\":\n"
               "  [{\"topic\":\"t\",\"partition\":0,\"replicas\":[1,2,3]}, ...]}. New replicas\n"
               "  copy the log and join the ISR, then the old ones are dropped. --verify\n"
               "  tells which moves are done; --cancel stops the ones in progress.\n"
               "usage: samsa cluster log-dirs [--topic T]...\n"
               "  Each broker's log dirs (DescribeLogDirs): size of every replica and its\n"
               "  lag behind the high watermark, as kafka-log-dirs.sh --describe prints it.\n"
               "usage: samsa cluster reassignments\n"
               "  The moves in progress (ListPartitionReassignments): replicas, adding,\n"
               "  removing.\n");
}

static int cmp_broker(const void *x, const void *y)
{
    return ((const rd_kafka_metadata_broker_t *)x)->id -
           ((const rd_kafka_metadata_broker_t *)y)->id;
}

/* Rack of broker id from a DescribeCluster response (NULL if unknown). */
static const char *rack_of(const sm_describe_cluster_response_t *dc, int32_t id, char *buf,
                           size_t len)
{
    for (int i = 0; dc && i < dc->brokers_count; i++)
        if (dc->brokers[i].broker_id == id && dc->brokers[i].rack.len >= 0) {
            snprintf(buf, len, "%.*s", dc->brokers[i].rack.len, dc->brokers[i].rack.ptr);
            return buf;
        }
    return NULL;
}

static int cluster_info(void)
{
    cli_rk_t k;
    if (!cli_rk_new(&k, RD_KAFKA_PRODUCER, NULL, NULL, NULL))
        return CLI_EXIT_FAIL;
    const struct rd_kafka_metadata *md;
    if (!cli_rk_metadata(&k, NULL, &md)) {
        cli_rk_destroy(&k);
        return CLI_EXIT_FAIL;
    }
    char *cluster_id = rd_kafka_clusterid(k.rk, cli_g.timeout_ms);
    int32_t controller = rd_kafka_controllerid(k.rk, cli_g.timeout_ms);

    cli_wire_t w;
    sm_arena_t a;
    sm_arena_init(&a);
    sm_describe_cluster_response_t *dc = NULL;
    bool have_wire = cli_wire_connect(&w, cli_g.brokers);
    if (have_wire && w.max_ver[SM_API_DESCRIBE_CLUSTER] >= 0) {
        int16_t v;
        sm_describe_cluster_request_t req;
        sm_describe_cluster_request_init(&req);
        void *resp;
        if (cli_wire_version(&w, SM_API_DESCRIBE_CLUSTER, 0, 1, &v) &&
            cli_wire_call(&w, SM_API_DESCRIBE_CLUSTER, v, &req, &a, &resp)) {
            dc = resp;
            if (dc->error_code) {
                cli_warn("DescribeCluster: %s", cli_kafka_err_name(dc->error_code));
                dc = NULL;
            }
        }
    }
    rd_kafka_metadata_broker_t *bs = calloc((size_t)md->broker_cnt + 1, sizeof *bs);
    memcpy(bs, md->brokers, sizeof *bs * (size_t)md->broker_cnt);
    qsort(bs, (size_t)md->broker_cnt, sizeof *bs, cmp_broker);
    char rack[256];
    if (cli_g.format == CLI_FMT_JSON) {
        cli_json_t j;
        cli_json_init(&j, stdout);
        cli_json_obj_begin(&j);
        cli_json_kstr(&j, "cluster_id", cluster_id);
        cli_json_kint(&j, "controller", controller);
        cli_json_key(&j, "brokers");
        cli_json_arr_begin(&j);
        for (int i = 0; i < md->broker_cnt; i++) {
            cli_json_obj_begin(&j);
            cli_json_kint(&j, "id", bs[i].id);
            cli_json_kstr(&j, "host", bs[i].host);
            cli_json_kint(&j, "port", bs[i].port);
            cli_json_kstr(&j, "rack", rack_of(dc, bs[i].id, rack, sizeof rack));
            cli_json_kbool(&j, "controller", bs[i].id == controller);
            cli_json_obj_end(&j);
        }
        cli_json_arr_end(&j);
        if (have_wire) {
            cli_json_kstr(&j, "api_versions_from", w.peer);
            cli_json_key(&j, "api_versions");
            cli_json_arr_begin(&j);
            for (int i = 0; i < w.versions->api_keys_count; i++) {
                const sm_api_versions_response_api_version_t *v = &w.versions->api_keys[i];
                const sm_api_desc_t *d = sm_api_desc(v->api_key);
                cli_json_obj_begin(&j);
                cli_json_kint(&j, "key", v->api_key);
                cli_json_kstr(&j, "name", d ? d->name : NULL);
                cli_json_kint(&j, "min", v->min_version);
                cli_json_kint(&j, "max", v->max_version);
                cli_json_obj_end(&j);
            }
            cli_json_arr_end(&j);
        }
        cli_json_obj_end(&j);
        cli_json_done(&j);
    } else {
        printf("Cluster ID:  %s\nController:  %d\n\nBROKERS\n", cluster_id ? cluster_id : "-",
               controller);
        cli_table_t t;
        cli_table_init(&t, 4);
        cli_table_cell(&t, "ID");
        cli_table_cell(&t, "HOST");
        cli_table_cell(&t, "PORT");
        cli_table_cell(&t, "RACK");
        for (int i = 0; i < md->broker_cnt; i++) {
            const char *r = rack_of(dc, bs[i].id, rack, sizeof rack);
            cli_table_cell(&t, "%d%s", bs[i].id, bs[i].id == controller ? "*" : "");
            cli_table_cell(&t, "%s", bs[i].host);
            cli_table_cell(&t, "%d", bs[i].port);
            cli_table_cell(&t, "%s", r ? r : "-");
        }
        cli_table_print(&t, stdout);
        cli_table_free(&t);
        if (have_wire) {
            printf("\nAPI VERSIONS (%s)\n", w.peer);
            cli_table_init(&t, 4);
            cli_table_cell(&t, "KEY");
            cli_table_cell(&t, "NAME");
            cli_table_cell(&t, "MIN");
            cli_table_cell(&t, "MAX");
            for (int i = 0; i < w.versions->api_keys_count; i++) {
                const sm_api_versions_response_api_version_t *v = &w.versions->api_keys[i];
                const sm_api_desc_t *d = sm_api_desc(v->api_key);
                cli_table_cell(&t, "%d", v->api_key);
                cli_table_cell(&t, "%s", d ? d->name : "?");
                cli_table_cell(&t, "%d", v->min_version);
                cli_table_cell(&t, "%d", v->max_version);
            }
            cli_table_print(&t, stdout);
            cli_table_free(&t);
        }
    }
    free(bs);
    if (have_wire)
        cli_wire_close(&w);
    sm_arena_free(&a);
    if (cluster_id)
        rd_kafka_mem_free(k.rk, cluster_id);
    rd_kafka_metadata_destroy(md);
    cli_rk_destroy(&k);
    return CLI_EXIT_OK;
}

/* ------------------------------------------------------------ health */

#define HTTP_MAX_BYTES (256 << 20)

/* GET path from host:port; the status code, and the body (malloc'ed) in
 * *body. Returns false (with why) when the broker cannot be reached or the
 * answer is not HTTP. */
bool cli_http_get(const char *host, const char *port, const char *path, int *status,
                     char **body, char *why, size_t whylen)
{
    *body = NULL;
    struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM}, *ai = NULL;
    int rc = getaddrinfo(host, port, &hints, &ai);
    if (rc != 0) {
        snprintf(why, whylen, "%s: %s", host, gai_strerror(rc));
        return false;
    }
    int fd = -1;
    snprintf(why, whylen, "cannot connect");
    for (struct addrinfo *p = ai; p && fd < 0; p = p->ai_next) {
        fd = socket(p->ai_family, p->ai_socktype | SOCK_CLOEXEC, p->ai_protocol);
        if (fd < 0)
            continue;
        struct timeval tv = {cli_g.timeout_ms / 1000, (cli_g.timeout_ms % 1000) * 1000};
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
        setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
        if (connect(fd, p->ai_addr, p->ai_addrlen) != 0) {
            snprintf(why, whylen, "connect: %s", strerror(errno));
            close(fd);
            fd = -1;
        }
    }
    freeaddrinfo(ai);
    if (fd < 0)
        return false;
    char req[512];
    int n = snprintf(req, sizeof req, "GET %s HTTP/1.1\r\nHost: %s:%s\r\nConnection: close\r\n\r\n",
                     path, host, port);
    if (send(fd, req, (size_t)n, MSG_NOSIGNAL) != n) {
        snprintf(why, whylen, "send: %s", strerror(errno));
        close(fd);
        return false;
    }
    size_t len = 0, cap = 64 * 1024;
    char *buf = malloc(cap);
    for (;;) {
        if (len + 1 >= cap) {
            if (cap >= HTTP_MAX_BYTES)
                break;
            buf = realloc(buf, cap *= 2);
        }
        ssize_t r = recv(fd, buf + len, cap - len - 1, 0);
        if (r > 0) {
            len += (size_t)r;
            continue;
        }
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0) {
            snprintf(why, whylen, "recv: %s", strerror(errno));
            free(buf);
            close(fd);
            return false;
        }
        break;
    }
    close(fd);
    buf[len] = 0;
    char *eoh = strstr(buf, "\r\n\r\n");
    if (strncmp(buf, "HTTP/1.", 7) != 0 || !eoh || sscanf(buf + 8, " %d", status) != 1) {
        snprintf(why, whylen, "not an HTTP answer");
        free(buf);
        return false;
    }
    size_t hl = (size_t)(eoh + 4 - buf);
    memmove(buf, eoh + 4, len - hl + 1);
    *body = buf;
    return true;
}

typedef struct health {
    char url[300];
    bool reachable, ready;
    char reason[128];
    double urp, offline, active, conns, lag;
    bool healthy;
} health_t;

/* Sum of the samples of metric name (any labels) in a Prometheus text page. */
static double prom_sum(const char *page, const char *name, bool *found)
{
    double sum = 0;
    size_t nl = strlen(name);
    *found = false;
    for (const char *l = page; l && *l; l = strchr(l, '\n') ? strchr(l, '\n') + 1 : NULL) {
        if (*l == '#' || strncmp(l, name, nl) != 0 || (l[nl] != ' ' && l[nl] != '{'))
            continue;
        const char *v = l + nl;
        if (*v == '{') {
            v = strchr(v, '}');
            if (!v)
                continue;
            v++;
        }
        sum += strtod(v, NULL);
        *found = true;
    }
    return sum;
}

/* "http://host:port[/...]" -> host, port. */
bool cli_split_url(const char *url, char *host, size_t hlen, char *port, size_t plen)
{
    if (strncmp(url, "http://", 7) != 0)
        return false;
    const char *h = url + 7, *end = h + strcspn(h, "/"), *colon;
    if (*h == '[') {
        const char *close = memchr(h, ']', (size_t)(end - h));
        if (!close || close[1] != ':')
            return false;
        snprintf(host, hlen, "%.*s", (int)(close - h - 1), h + 1);
        colon = close + 1;
    } else {
        colon = memrchr(h, ':', (size_t)(end - h));
        if (!colon)
            return false;
        snprintf(host, hlen, "%.*s", (int)(colon - h), h);
    }
    snprintf(port, plen, "%.*s", (int)(end - colon - 1), colon + 1);
    return *host && *port;
}

static void health_check(health_t *h)
{
    char host[256], port[16], why[256] = "";
    int status = 0;
    char *body = NULL;
    snprintf(h->reason, sizeof h->reason, "unreachable");
    if (!cli_split_url(h->url, host, sizeof host, port, sizeof port)) {
        snprintf(h->reason, sizeof h->reason, "bad URL (expected http://host:port)");
        return;
    }
    if (!cli_http_get(host, port, "/health", &status, &body, why, sizeof why)) {
        snprintf(h->reason, sizeof h->reason, "unreachable: %s", why);
        return;
    }
    h->reachable = true;
    h->ready = status == 200;
    const char *r = strstr(body, "\"reason\":\"");
    if (r)
        snprintf(h->reason, sizeof h->reason, "%.*s", (int)strcspn(r + 10, "\""), r + 10);
    else
        snprintf(h->reason, sizeof h->reason, "HTTP %d", status);
    free(body);
    if (!cli_http_get(host, port, "/metrics", &status, &body, why, sizeof why) || status != 200) {
        snprintf(h->reason, sizeof h->reason, "/metrics: %s", *why ? why : "not 200");
        h->ready = false;
        free(body);
        return;
    }
    bool f1, f2, f3, f4, f5;
    h->urp = prom_sum(body, "kafka_server_replicamanager_underreplicatedpartitions", &f1);
    h->offline = prom_sum(body, "kafka_controller_kafkacontroller_offlinepartitionscount", &f2);
    h->active = prom_sum(body, "kafka_controller_kafkacontroller_activecontrollercount", &f3);
    h->conns = prom_sum(body, "kafka_server_socketservermetrics_connection_count", &f4);
    h->lag = prom_sum(body, "kafka_consumergroup_lag", &f5);
    free(body);
    if (!(f1 && f2 && f3 && f4)) {
        snprintf(h->reason, sizeof h->reason, "/metrics lacks the health metrics");
        return;
    }
    h->healthy = h->ready && h->urp == 0 && h->offline == 0;
}

static int cluster_health(int argc, char **argv)
{
    static const cli_opt_t opts[] = {{"metrics-url", 1, 'm'}, {0}};
    cli_args_t a;
    cli_args_init(&a, "cluster health", argc - 1, argv + 1);
    const char **urls = calloc((size_t)argc + 1, sizeof *urls);
    int nurls = 0, c;
    while ((c = cli_getopt(&a, opts)) != -1) {
        if (c == 'm') {
            urls[nurls++] = a.arg;
        } else if (c == 'h') {
            cluster_usage(stdout);
            free(urls);
            return CLI_EXIT_OK;
        } else if (c == 0) {
            free(urls);
            return cli_usage_fail(a.cmd, "unexpected argument '%s'", a.arg);
        } else {
            free(urls);
            return CLI_EXIT_USAGE;
        }
    }
    char dflt[300];
    if (nurls == 0) {
        /* http://<first bootstrap host>:9644 */
        const char *b = cli_g.brokers;
        size_t blen = strcspn(b, ",");
        const char *colon = b[0] == '[' ? memchr(b, ']', blen) : memrchr(b, ':', blen);
        size_t hlen = colon ? (size_t)(colon - b) + (b[0] == '[') : blen;
        snprintf(dflt, sizeof dflt, "http://%.*s:9644", (int)hlen, b);
        urls[nurls++] = dflt;
    }
    health_t *hs = calloc((size_t)nurls, sizeof *hs);
    bool all = true;
    double lag = 0;
    for (int i = 0; i < nurls; i++) {
        snprintf(hs[i].url, sizeof hs[i].url, "%s", urls[i]);
        health_check(&hs[i]);
        all = all && hs[i].healthy;
        lag += hs[i].lag;
    }
    if (cli_g.format == CLI_FMT_JSON) {
        cli_json_t j;
        cli_json_init(&j, stdout);
        cli_json_obj_begin(&j);
        cli_json_kbool(&j, "healthy", all);
        cli_json_kint(&j, "group_lag", (int64_t)lag);
        cli_json_key(&j, "brokers");
        cli_json_arr_begin(&j);
        for (int i = 0; i < nurls; i++) {
            const health_t *h = &hs[i];
            cli_json_obj_begin(&j);
            cli_json_kstr(&j, "metrics_url", h->url);
            cli_json_kbool(&j, "reachable", h->reachable);
            cli_json_kbool(&j, "ready", h->ready);
            cli_json_kstr(&j, "reason", h->reason);
            cli_json_kint(&j, "under_replicated_partitions", (int64_t)h->urp);
            cli_json_kint(&j, "offline_partitions", (int64_t)h->offline);
            cli_json_kint(&j, "active_controller_count", (int64_t)h->active);
            cli_json_kint(&j, "connections", (int64_t)h->conns);
            cli_json_kint(&j, "group_lag", (int64_t)h->lag);
            cli_json_kbool(&j, "healthy", h->healthy);
            cli_json_obj_end(&j);
        }
        cli_json_arr_end(&j);
        cli_json_obj_end(&j);
        cli_json_done(&j);
    } else {
        cli_table_t t;
        cli_table_init(&t, 9);
        const char *hdr[] = {"METRICS URL", "REACHABLE",   "READY",     "UNDER-REPLICATED",
                             "OFFLINE",     "CONTROLLER", "CONNECTIONS", "GROUP LAG", "STATUS"};
        for (size_t i = 0; i < SM_ARRAY_LEN(hdr); i++)
            cli_table_cell(&t, "%s", hdr[i]);
        for (int i = 0; i < nurls; i++) {
            const health_t *h = &hs[i];
            cli_table_cell(&t, "%s", h->url);
            cli_table_cell(&t, "%s", h->reachable ? "yes" : "no");
            cli_table_cell(&t, "%s", h->ready ? "yes" : "no");
            if (!h->reachable) {
                for (int k = 0; k < 5; k++)
                    cli_table_cell(&t, "-");
            } else {
                cli_table_cell(&t, "%.0f", h->urp);
                cli_table_cell(&t, "%.0f", h->offline);
                cli_table_cell(&t, "%s", h->active > 0 ? "active" : "-");
                cli_table_cell(&t, "%.0f", h->conns);
                cli_table_cell(&t, "%.0f", h->lag);
            }
            cli_table_cell(&t, "%s", h->healthy ? "healthy" : h->reason);
        }
        cli_table_print(&t, stdout);
        cli_table_free(&t);
        printf("\nCluster: %s (total consumer group lag %.0f)\n", all ? "HEALTHY" : "NOT HEALTHY",
               lag);
    }
    free(hs);
    free(urls);
    return all ? CLI_EXIT_OK : CLI_EXIT_FAIL;
}

int cli_cluster_quorum(bool replication)
{
    cli_wire_t w;
    if (!cli_wire_connect(&w, cli_g.brokers))
        return CLI_EXIT_FAIL;
    sm_arena_t a;
    sm_arena_init(&a);
    int rc = CLI_EXIT_FAIL;
    int16_t v;
    if (!cli_wire_version(&w, SM_API_DESCRIBE_QUORUM, 0, 2, &v))
        goto out;
    sm_describe_quorum_request_t req;
    sm_describe_quorum_request_init(&req);
    sm_describe_quorum_request_partition_data_t part;
    sm_describe_quorum_request_partition_data_init(&part);
    part.partition_index = 0;
    sm_describe_quorum_request_topic_data_t topic;
    sm_describe_quorum_request_topic_data_init(&topic);
    topic.topic_name = sm_str("__cluster_metadata");
    topic.partitions = &part;
    topic.partitions_count = 1;
    req.topics = &topic;
    req.topics_count = 1;
    void *respv;
    if (!cli_wire_call(&w, SM_API_DESCRIBE_QUORUM, v, &req, &a, &respv))
        goto out;
    const sm_describe_quorum_response_t *resp = respv;
    if (resp->error_code || resp->topics_count < 1 || resp->topics[0].partitions_count < 1) {
        cli_fail("DescribeQuorum: %s", cli_kafka_err_name(resp->error_code));
        goto out;
    }
    const sm_describe_quorum_response_partition_data_t *q = &resp->topics[0].partitions[0];
    if (q->error_code) {
        cli_fail("DescribeQuorum: %s", cli_kafka_err_name(q->error_code));
        goto out;
    }
    int64_t now = sm_now_wall_ms();
    if (cli_g.format == CLI_FMT_JSON) {
        printf("{\"leader_id\":%d,\"leader_epoch\":%d,\"high_watermark\":%lld,\"replicas\":[",
               q->leader_id, q->leader_epoch, (long long)q->high_watermark);
        for (int k = 0; k < 2; k++) {
            const sm_describe_quorum_response_replica_state_t *r =
                k ? q->observers : q->current_voters;
            int n = k ? q->observers_count : q->current_voters_count;
            for (int i = 0; i < n; i++)
                printf("%s{\"id\":%d,\"role\":\"%s\",\"log_end_offset\":%lld,\"lag\":%lld,"
                       "\"last_fetch_timestamp\":%lld,\"last_caught_up_timestamp\":%lld}",
                       k || i ? "," : "", r[i].replica_id,
                       k ? "observer" : r[i].replica_id == q->leader_id ? "leader" : "follower",
                       (long long)r[i].log_end_offset,
                       (long long)SM_MAX(q->high_watermark - r[i].log_end_offset, 0),
                       (long long)r[i].last_fetch_timestamp,
                       (long long)r[i].last_caught_up_timestamp);
        }
        printf("]}\n");
    } else if (!replication) {
        /* kafka-metadata-quorum.sh describe --status */
        int64_t max_lag = 0, max_lag_ms = 0;
        for (int i = 0; i < q->current_voters_count; i++) {
            const sm_describe_quorum_response_replica_state_t *r = &q->current_voters[i];
            if (r->replica_id == q->leader_id)
                continue; /* followers' lag */
            max_lag = SM_MAX(max_lag, q->high_watermark - r->log_end_offset);
            if (r->last_caught_up_timestamp >= 0)
                max_lag_ms = SM_MAX(max_lag_ms, now - r->last_caught_up_timestamp);
        }
        /* the cluster id comes from DescribeCluster on the same connection */
        const char *cid = "-";
        int16_t dv;
        void *dcv;
        sm_describe_cluster_request_t dreq;
        sm_describe_cluster_request_init(&dreq);
        if (w.max_ver[SM_API_DESCRIBE_CLUSTER] >= 0 &&
            cli_wire_version(&w, SM_API_DESCRIBE_CLUSTER, 0, 1, &dv) &&
            cli_wire_call(&w, SM_API_DESCRIBE_CLUSTER, dv, &dreq, &a, &dcv)) {
            const sm_describe_cluster_response_t *dc = dcv;
            if (dc->cluster_id.len > 0)
                cid = sm_arena_strndup(&a, dc->cluster_id.ptr, (size_t)dc->cluster_id.len);
        }
        printf("ClusterId:              %s\n", cid);
        printf("LeaderId:               %d\n", q->leader_id);
        printf("LeaderEpoch:            %d\n", q->leader_epoch);
        printf("HighWatermark:          %lld\n", (long long)q->high_watermark);
        printf("MaxFollowerLag:         %lld\n", (long long)max_lag);
        printf("MaxFollowerLagTimeMs:   %lld\n", (long long)max_lag_ms);
        printf("CurrentVoters:          [");
        for (int i = 0; i < q->current_voters_count; i++)
            printf("%s%d", i ? "," : "", q->current_voters[i].replica_id);
        printf("]\nCurrentObservers:       [");
        for (int i = 0; i < q->observers_count; i++)
            printf("%s%d", i ? "," : "", q->observers[i].replica_id);
        printf("]\n");
    } else {
        /* kafka-metadata-quorum.sh describe --replication */
        printf("NodeId\tLogEndOffset\tLag\tLastFetchTimestamp\tLastCaughtUpTimestamp\tStatus\n");
        for (int k = 0; k < 2; k++) {
            const sm_describe_quorum_response_replica_state_t *r =
                k ? q->observers : q->current_voters;
            int n = k ? q->observers_count : q->current_voters_count;
            for (int i = 0; i < n; i++)
                printf("%d\t%lld\t%lld\t%lld\t%lld\t%s\n", r[i].replica_id,
                       (long long)r[i].log_end_offset,
                       (long long)SM_MAX(q->high_watermark - r[i].log_end_offset, 0),
                       (long long)r[i].last_fetch_timestamp,
                       (long long)r[i].last_caught_up_timestamp,
                       k ? "Observer" : r[i].replica_id == q->leader_id ? "Leader" : "Follower");
        }
    }
    rc = CLI_EXIT_OK;
out:
    cli_wire_close(&w);
    sm_arena_free(&a);
    return rc;
}

int cli_elect_leaders(const char *script, int8_t type, const char *topic, int32_t partition)
{
    cli_wire_t w;
    if (!cli_wire_connect(&w, cli_g.brokers))
        return CLI_EXIT_FAIL;
    sm_arena_t a;
    sm_arena_init(&a);
    int rc = CLI_EXIT_FAIL;
    int16_t v;
    if (!cli_wire_version(&w, SM_API_ELECT_LEADERS, type ? 1 : 0, 2, &v))
        goto out;
    sm_elect_leaders_request_t req;
    sm_elect_leaders_request_init(&req);
    req.election_type = type;
    req.timeout_ms = 30000;
    sm_elect_leaders_request_topic_partitions_t tp;
    sm_elect_leaders_request_topic_partitions_init(&tp);
    int32_t parts[1] = {partition};
    int32_t *all = NULL;
    if (topic) {
        tp.topic = sm_str(topic);
        if (partition >= 0) {
            tp.partitions = parts;
            tp.partitions_count = 1;
        } else {
            /* every partition of the topic, from Metadata */
            int16_t mv;
            void *mrv;
            sm_metadata_request_t mreq;
            sm_metadata_request_init(&mreq);
            sm_metadata_request_metadata_request_topic_t mt;
            sm_metadata_request_metadata_request_topic_init(&mt);
            mt.name = sm_str(topic);
            mreq.topics = &mt;
            mreq.topics_count = 1;
            if (!cli_wire_version(&w, SM_API_METADATA, 4, 9, &mv) ||
                !cli_wire_call(&w, SM_API_METADATA, mv, &mreq, &a, &mrv))
                goto out;
            const sm_metadata_response_t *md = mrv;
            int n = md->topics_count == 1 && md->topics[0].error_code == 0
                        ? md->topics[0].partitions_count
                        : 0;
            if (n <= 0) {
                cli_fail("%s: no such topic: %s", script, topic);
                goto out;
            }
            all = sm_xcalloc((size_t)n, sizeof *all);
            for (int i = 0; i < n; i++)
                all[i] = i;
            tp.partitions = all;
            tp.partitions_count = n;
        }
        req.topic_partitions = &tp;
        req.topic_partitions_count = 1;
    } else {
        req.topic_partitions_count = -1; /* null: all */
    }
    void *respv;
    if (!cli_wire_call(&w, SM_API_ELECT_LEADERS, v, &req, &a, &respv))
        goto out_free;
    const sm_elect_leaders_response_t *resp = respv;
    if (resp->error_code) {
        cli_fail("%s: ElectLeaders: %s", script, cli_kafka_err_name(resp->error_code));
        goto out_free;
    }
    const char *kind = type ? "UNCLEAN" : "PREFERRED";
    bool failed = false;
    /* elected, then not needed, then errors, as Kafka's tool prints them */
    for (int pass = 0; pass < 3; pass++) {
        bool any = false;
        for (int32_t t = 0; t < resp->replica_election_results_count; t++) {
            const sm_elect_leaders_response_replica_election_result_t *r =
                &resp->replica_election_results[t];
            for (int32_t k = 0; k < r->partition_result_count; k++) {
                const sm_elect_leaders_response_partition_result_t *pr = &r->partition_result[k];
                int cls = pr->error_code == 0 ? 0 : pr->error_code == 84 ? 1 : 2;
                if (cls != pass)
                    continue;
                if (pass == 2) {
                    printf("Error completing leader election (%s) for partition: %.*s-%d: %s\n",
                           kind, r->topic.len, r->topic.ptr, pr->partition_id,
                           cli_kafka_err_name(pr->error_code));
                    failed = true;
                    continue;
                }
                if (!any && pass == 0)
                    printf("Successfully completed leader election (%s) for partitions ", kind);
                else if (!any)
                    printf("Valid replica already elected for partitions ");
                printf("%s%.*s-%d", any ? ", " : "", r->topic.len, r->topic.ptr,
                       pr->partition_id);
                any = true;
            }
        }
        if (any)
            printf("\n");
    }
    rc = failed ? CLI_EXIT_FAIL : CLI_EXIT_OK;
out_free:
    free(all);
out:
    cli_wire_close(&w);
    sm_arena_free(&a);
    return rc;
}

static int cluster_elect(int argc, char **argv)
{
    enum { O_TYPE = 256, O_TOPIC, O_PARTITION };
    static const cli_opt_t opts[] = {{"type", 1, O_TYPE},
                                     {"topic", 1, O_TOPIC},
                                     {"partition", 1, O_PARTITION},
                                     {NULL, 0, 0}};
    cli_args_t a;
    cli_args_init(&a, "cluster elect-leaders", argc - 1, argv + 1);
    int8_t type = 0;
    const char *topic = NULL;
    int32_t partition = -1;
    int c;
    while ((c = cli_getopt(&a, opts)) != -1) {
        if (c == '?')
            return CLI_EXIT_USAGE;
        if (c == 'h') {
            cluster_usage(stdout);
            return CLI_EXIT_OK;
        }
        if (c == O_TYPE && strcmp(a.arg, "preferred") == 0)
            type = 0;
        else if (c == O_TYPE && strcmp(a.arg, "unclean") == 0)
            type = 1;
        else if (c == O_TOPIC)
            topic = a.arg;
        else if (c == O_PARTITION)
            partition = atoi(a.arg);
        else
            return cli_usage_fail(a.cmd, "unexpected argument '%s'", a.arg);
    }
    if (partition >= 0 && !topic)
        return cli_usage_fail(a.cmd, "--partition needs --topic");
    return cli_elect_leaders("samsa cluster elect-leaders", type, topic, partition);
}

/* ------------------------------------------------------------ reassignment */

typedef struct plan_entry {
    const char *topic;
    int32_t partition;
    int32_t *replicas;
    int nreplicas;
} plan_entry_t;

/* Read a kafka-reassign-partitions.sh plan; n entries in the arena. */
static plan_entry_t *read_plan(const char *script, const char *path, sm_arena_t *a, int *n)
{
    FILE *f = fopen(path, "re");
    if (!f) {
        cli_fail("%s: cannot read %s: %s", script, path, strerror(errno));
        return NULL;
    }
    char *text = NULL;
    size_t len = 0, cap = 0;
    char buf[4096];
    size_t got;
    while ((got = fread(buf, 1, sizeof buf, f)) > 0) {
        if (len + got > cap) {
            cap = (len + got) * 2;
            text = sm_xrealloc(text, cap);
        }
        memcpy(text + len, buf, got);
        len += got;
    }
    fclose(f);
    const sm_json_t *root = NULL;
    sm_json_err_t jerr;
    plan_entry_t *out = NULL;
    if (sm_json_parse(text ? text : "", len, a, &root, &jerr) != SM_OK) {
        cli_fail("%s: %s:%d:%d: %s", script, path, jerr.line, jerr.col, jerr.msg);
        goto done;
    }
    const sm_json_t *parts = sm_json_member(root, "partitions");
    if (!parts || parts->type != SM_JSON_ARRAY) {
        cli_fail("%s: %s: no \"partitions\" array", script, path);
        goto done;
    }
    out = SM_ARENA_NEW(a, plan_entry_t, parts->count ? parts->count : 1);
    *n = 0;
    for (const sm_json_t *e = parts->child; e; e = e->next) {
        const sm_json_t *t = sm_json_member(e, "topic"), *p = sm_json_member(e, "partition"),
                        *r = sm_json_member(e, "replicas");
        if (!t || t->type != SM_JSON_STRING || !p || !p->is_int || !r ||
            r->type != SM_JSON_ARRAY) {
            cli_fail("%s: %s: each partition needs \"topic\", \"partition\" and "
                     "\"replicas\"",
                     script, path);
            out = NULL;
            goto done;
        }
        plan_entry_t *pe = &out[(*n)++];
        pe->topic = t->str;
        pe->partition = (int32_t)p->i;
        pe->replicas = SM_ARENA_NEW(a, int32_t, r->count ? r->count : 1);
        pe->nreplicas = 0;
        for (const sm_json_t *x = r->child; x; x = x->next) {
            if (!x->is_int) {
                cli_fail("%s: %s: replicas are broker ids", script, path);
                out = NULL;
                goto done;
            }
            pe->replicas[pe->nreplicas++] = (int32_t)x->i;
        }
    }
done:
    free(text);
    return out;
}

/* The moves in progress (ListPartitionReassignments); NULL on failure. */
static const sm_list_partition_reassignments_response_t *list_moves(cli_wire_t *w, sm_arena_t *a)
{
    int16_t v;
    if (!cli_wire_version(w, SM_API_LIST_PARTITION_REASSIGNMENTS, 0, 0, &v))
        return NULL;
    sm_list_partition_reassignments_request_t req;
    sm_list_partition_reassignments_request_init(&req);
    req.topics_count = -1;
    void *rv;
    if (!cli_wire_call(w, SM_API_LIST_PARTITION_REASSIGNMENTS, v, &req, a, &rv))
        return NULL;
    const sm_list_partition_reassignments_response_t *r = rv;
    if (r->error_code) {
        cli_fail("ListPartitionReassignments: %s", cli_kafka_err_name(r->error_code));
        return NULL;
    }
    return r;
}

static bool in_progress(const sm_list_partition_reassignments_response_t *l, const char *topic,
                        int32_t p)
{
    for (int32_t t = 0; t < l->topics_count; t++) {
        if ((size_t)l->topics[t].name.len != strlen(topic) ||
            memcmp(l->topics[t].name.ptr, topic, strlen(topic)) != 0)
            continue;
        for (int32_t k = 0; k < l->topics[t].partitions_count; k++)
            if (l->topics[t].partitions[k].partition_index == p)
                return true;
    }
    return false;
}

static void print_ints(const int32_t *v, int32_t n)
{
    printf("[");
    for (int32_t i = 0; i < n; i++)
        printf("%s%d", i ? "," : "", v[i]);
    printf("]");
}

int cli_reassign(const char *script, cli_reassign_mode_t mode, const char *plan_path)
{
    cli_wire_t w;
    if (!cli_wire_connect(&w, cli_g.brokers))
        return CLI_EXIT_FAIL;
    sm_arena_t a;
    sm_arena_init(&a);
    int rc = CLI_EXIT_FAIL;
    int n = 0;
    plan_entry_t *plan = NULL;
    if (mode != CLI_REASSIGN_LIST && !(plan = read_plan(script, plan_path, &a, &n)))
        goto out;
    if (mode == CLI_REASSIGN_LIST || mode == CLI_REASSIGN_VERIFY) {
        const sm_list_partition_reassignments_response_t *l = list_moves(&w, &a);
        if (!l)
            goto out;
        if (mode == CLI_REASSIGN_LIST) {
            if (l->topics_count == 0)
                printf("No partition reassignments found.\n");
            else
                printf("Current partition reassignments:\n");
            for (int32_t t = 0; t < l->topics_count; t++)
                for (int32_t k = 0; k < l->topics[t].partitions_count; k++) {
                    const sm_list_partition_reassignments_response_ongoing_partition_reassignment_t
                        *op = &l->topics[t].partitions[k];
                    printf("%.*s-%d: replicas: ", l->topics[t].name.len, l->topics[t].name.ptr,
                           op->partition_index);
                    print_ints(op->replicas, op->replicas_count);
                    printf(". adding: ");
                    print_ints(op->adding_replicas, op->adding_replicas_count);
                    printf(". removing: ");
                    print_ints(op->removing_replicas, op->removing_replicas_count);
                    printf(".\n");
                }
            rc = CLI_EXIT_OK;
            goto out;
        }
        printf("Status of partition reassignment:\n");
        bool all = true;
        for (int i = 0; i < n; i++) {
            bool busy = in_progress(l, plan[i].topic, plan[i].partition);
            all &= !busy;
            printf("Reassignment of partition %s-%d is %s.\n", plan[i].topic, plan[i].partition,
                   busy ? "still in progress" : "completed");
        }
        rc = all ? CLI_EXIT_OK : CLI_EXIT_FAIL;
        goto out;
    }
    /* execute or cancel */
    int16_t v;
    if (!cli_wire_version(&w, SM_API_ALTER_PARTITION_REASSIGNMENTS, 0, 0, &v))
        goto out;
    sm_alter_partition_reassignments_request_t req;
    sm_alter_partition_reassignments_request_init(&req);
    req.timeout_ms = 30000;
    req.topics = SM_ARENA_NEW(&a, sm_alter_partition_reassignments_request_reassignable_topic_t,
                              n ? n : 1);
    for (int i = 0; i < n; i++) {
        sm_alter_partition_reassignments_request_reassignable_topic_t *t = NULL;
        for (int32_t k = 0; k < req.topics_count && !t; k++)
            if (strcmp(req.topics[k].name.ptr, plan[i].topic) == 0)
                t = &req.topics[k];
        if (!t) {
            t = &req.topics[req.topics_count++];
            sm_alter_partition_reassignments_request_reassignable_topic_init(t);
            t->name = sm_str(plan[i].topic);
            t->partitions = SM_ARENA_NEW(
                &a, sm_alter_partition_reassignments_request_reassignable_partition_t, n);
        }
        sm_alter_partition_reassignments_request_reassignable_partition_t *p =
            &t->partitions[t->partitions_count++];
        sm_alter_partition_reassignments_request_reassignable_partition_init(p);
        p->partition_index = plan[i].partition;
        if (mode == CLI_REASSIGN_EXECUTE) {
            p->replicas = plan[i].replicas;
            p->replicas_count = plan[i].nreplicas;
        } else {
            p->replicas = NULL;
            p->replicas_count = -1;
        }
    }
    void *rv;
    if (!cli_wire_call(&w, SM_API_ALTER_PARTITION_REASSIGNMENTS, v, &req, &a, &rv))
        goto out;
    const sm_alter_partition_reassignments_response_t *r = rv;
    if (r->error_code) {
        cli_fail("%s: AlterPartitionReassignments: %s", script, cli_kafka_err_name(r->error_code));
        goto out;
    }
    bool failed = false;
    for (int32_t t = 0; t < r->responses_count; t++)
        for (int32_t k = 0; k < r->responses[t].partitions_count; k++) {
            const sm_alter_partition_reassignments_response_reassignable_partition_response_t
                *pr = &r->responses[t].partitions[k];
            if (!pr->error_code)
                continue;
            failed = true;
            printf("Error %s partition %.*s-%d: %s%s%.*s\n",
                   mode == CLI_REASSIGN_EXECUTE ? "reassigning" : "cancelling the reassignment of",
                   r->responses[t].name.len, r->responses[t].name.ptr, pr->partition_index,
                   cli_kafka_err_name(pr->error_code), pr->error_message.len > 0 ? ": " : "",
                   SM_MAX(pr->error_message.len, 0), pr->error_message.ptr ? pr->error_message.ptr
                                                                         : "");
        }
    if (!failed)
        printf(mode == CLI_REASSIGN_EXECUTE
                   ? "Successfully started partition reassignments for %d partition(s)\n"
                   : "Successfully cancelled partition reassignments for %d partition(s)\n",
               n);
    rc = failed ? CLI_EXIT_FAIL : CLI_EXIT_OK;
out:
    cli_wire_close(&w);
    sm_arena_free(&a);
    return rc;
}

/* ------------------------------------------------------------ log dirs */

static bool csv_has(const char *csv, const char *s, size_t len)
{
    if (!csv)
        return true;
    const char *p = csv;
    while (*p) {
        const char *e = strchr(p, ',');
        size_t n = e ? (size_t)(e - p) : strlen(p);
        if (n == len && memcmp(p, s, n) == 0)
            return true;
        if (!e)
            break;
        p = e + 1;
    }
    return false;
}

int cli_log_dirs(const char *script, const char *topics_csv, const char *brokers_csv)
{
    cli_wire_t w;
    if (!cli_wire_connect(&w, cli_g.brokers))
        return CLI_EXIT_FAIL;
    sm_arena_t a;
    sm_arena_init(&a);
    int rc = CLI_EXIT_FAIL;
    int16_t mv;
    void *mrv;
    sm_metadata_request_t mreq;
    sm_metadata_request_init(&mreq);
    mreq.topics_count = 0; /* brokers only */
    if (!cli_wire_version(&w, SM_API_METADATA, 4, 9, &mv) ||
        !cli_wire_call(&w, SM_API_METADATA, mv, &mreq, &a, &mrv))
        goto out;
    const sm_metadata_response_t *md = mrv;
    cli_wire_close(&w);
    w.fd = -1;
    printf("Querying brokers for log directories information\n");
    char ids[1024] = "";
    size_t idl = 0;
    sm_wbuf_t out;
    sm_wbuf_init(&out);
#define PUT(lit) sm_wbuf_bytes(&out, lit, sizeof(lit) - 1)
    PUT("{\"version\":1,\"brokers\":[");
    int nb = 0;
    rc = CLI_EXIT_OK;
    for (int32_t i = 0; i < md->brokers_count; i++) {
        const sm_metadata_response_metadata_response_broker_t *b = &md->brokers[i];
        char idbuf[16];
        int il = snprintf(idbuf, sizeof idbuf, "%d", b->node_id);
        if (!csv_has(brokers_csv, idbuf, (size_t)il))
            continue;
        char *host = sm_arena_strndup(&a, b->host.ptr, (size_t)SM_MAX(b->host.len, 0));
        cli_wire_t bw;
        if (!cli_wire_connect_one(&bw, host, b->port)) {
            rc = CLI_EXIT_FAIL;
            continue;
        }
        int16_t v;
        void *rv;
        sm_describe_log_dirs_request_t req;
        sm_describe_log_dirs_request_init(&req);
        req.topics_count = -1;
        if (!cli_wire_version(&bw, SM_API_DESCRIBE_LOG_DIRS, 0, 4, &v) ||
            !cli_wire_call(&bw, SM_API_DESCRIBE_LOG_DIRS, v, &req, &a, &rv)) {
            cli_wire_close(&bw);
            rc = CLI_EXIT_FAIL;
            continue;
        }
        cli_wire_close(&bw);
        const sm_describe_log_dirs_response_t *r = rv;
        idl += (size_t)snprintf(ids + idl, sizeof ids - idl, "%s%d", nb ? "," : "", b->node_id);
        char tmp[512];
        int tl = snprintf(tmp, sizeof tmp, "%s{\"broker\":%d,\"logDirs\":[", nb++ ? "," : "",
                          b->node_id);
        sm_wbuf_bytes(&out, tmp, (size_t)tl);
        for (int32_t d = 0; d < r->results_count; d++) {
            const sm_describe_log_dirs_response_describe_log_dirs_result_t *ld = &r->results[d];
            if (d)
                PUT(",");
            PUT("{\"logDir\":");
            sm_json_write_str(&out, ld->log_dir.ptr, (size_t)SM_MAX(ld->log_dir.len, 0));
            if (ld->error_code) {
                const char *en = cli_kafka_err_name(ld->error_code);
                PUT(",\"error\":");
                sm_json_write_str(&out, en, strlen(en));
            } else {
                PUT(",\"error\":null");
            }
            PUT(",\"partitions\":[");
            int np = 0;
            for (int32_t t = 0; t < ld->topics_count; t++) {
                const sm_describe_log_dirs_response_describe_log_dirs_topic_t *tp = &ld->topics[t];
                if (!csv_has(topics_csv, tp->name.ptr, (size_t)SM_MAX(tp->name.len, 0)))
                    continue;
                for (int32_t k = 0; k < tp->partitions_count; k++) {
                    const sm_describe_log_dirs_response_describe_log_dirs_partition_t *pp =
                        &tp->partitions[k];
                    char name[400];
                    int nl = snprintf(name, sizeof name, "%.*s-%d", tp->name.len, tp->name.ptr,
                                      pp->partition_index);
                    if (np++)
                        PUT(",");
                    PUT("{\"partition\":");
                    sm_json_write_str(&out, name, (size_t)SM_MIN(nl, (int)sizeof name - 1));
                    tl = snprintf(tmp, sizeof tmp,
                                  ",\"size\":%lld,\"offsetLag\":%lld,\"isFuture\":%s}",
                                  (long long)pp->partition_size, (long long)pp->offset_lag,
                                  pp->is_future_key ? "true" : "false");
                    sm_wbuf_bytes(&out, tmp, (size_t)tl);
                }
            }
            PUT("]}");
        }
        PUT("]}");
    }
    PUT("]}\n");
#undef PUT
    printf("Received log directory information from brokers %s\n", ids);
    fwrite(out.mem, 1, out.len, stdout);
    sm_wbuf_free(&out);
out:
    if (w.fd >= 0)
        cli_wire_close(&w);
    sm_arena_free(&a);
    return rc;
}

static int cluster_log_dirs(int argc, char **argv)
{
    enum { O_TOPIC = 256 };
    static const cli_opt_t opts[] = {{"topic", 1, O_TOPIC}, {NULL, 0, 0}};
    cli_args_t a;
    cli_args_init(&a, "cluster log-dirs", argc - 1, argv + 1);
    char *topics = NULL;
    size_t tl = 0;
    int c;
    while ((c = cli_getopt(&a, opts)) != -1) {
        if (c == '?')
            return CLI_EXIT_USAGE;
        if (c == 'h') {
            cluster_usage(stdout);
            return CLI_EXIT_OK;
        }
        if (c != O_TOPIC) {
            free(topics);
            return cli_usage_fail(a.cmd, "unexpected argument '%s'", a.arg);
        }
        topics = sm_xrealloc(topics, tl + strlen(a.arg) + 2);
        tl += (size_t)sprintf(topics + tl, "%s%s", tl ? "," : "", a.arg);
    }
    int rc = cli_log_dirs("samsa cluster log-dirs", topics, NULL);
    free(topics);
    return rc;
}

static int cluster_reassign(int argc, char **argv, bool list)
{
    enum { O_PLAN = 256, O_VERIFY, O_CANCEL };
    static const cli_opt_t opts[] = {{"plan", 1, O_PLAN},
                                     {"verify", 0, O_VERIFY},
                                     {"cancel", 0, O_CANCEL},
                                     {NULL, 0, 0}};
    cli_args_t a;
    cli_args_init(&a, list ? "cluster reassignments" : "cluster reassign", argc - 1, argv + 1);
    const char *plan = NULL;
    cli_reassign_mode_t mode = list ? CLI_REASSIGN_LIST : CLI_REASSIGN_EXECUTE;
    int c;
    while ((c = cli_getopt(&a, opts)) != -1) {
        if (c == '?')
            return CLI_EXIT_USAGE;
        if (c == 'h') {
            cluster_usage(stdout);
            return CLI_EXIT_OK;
        }
        if (c == O_PLAN && !list)
            plan = a.arg;
        else if (c == O_VERIFY && !list)
            mode = CLI_REASSIGN_VERIFY;
        else if (c == O_CANCEL && !list)
            mode = CLI_REASSIGN_CANCEL;
        else
            return cli_usage_fail(a.cmd, "unexpected argument '%s'", a.arg);
    }
    if (!list && !plan)
        return cli_usage_fail(a.cmd, "--plan FILE is required");
    return cli_reassign(list ? "samsa cluster reassignments" : "samsa cluster reassign", mode,
                        plan);
}

int cli_cmd_cluster(int argc, char **argv)
{
    int rc0 = cli_noun_start("cluster", cluster_usage, argc, argv);
    if (rc0 >= 0)
        return rc0;
    if (strcmp(argv[0], "info") == 0 || strcmp(argv[0], "describe") == 0) {
        int rc = cli_verb_no_args("cluster info", cluster_usage, argc, argv);
        return rc >= 0 ? rc : cluster_info();
    }
    if (strcmp(argv[0], "health") == 0)
        return cluster_health(argc, argv);
    if (strcmp(argv[0], "elect-leaders") == 0)
        return cluster_elect(argc, argv);
    if (strcmp(argv[0], "reassign") == 0)
        return cluster_reassign(argc, argv, false);
    if (strcmp(argv[0], "log-dirs") == 0)
        return cluster_log_dirs(argc, argv);
    if (strcmp(argv[0], "reassignments") == 0)
        return cluster_reassign(argc, argv, true);
    if (strcmp(argv[0], "quorum") == 0) {
        bool repl = false;
        for (int i = 1; i < argc; i++) {
            if (cli_is_help(argv[i])) {
                cluster_usage(stdout);
                return CLI_EXIT_OK;
            }
            if (strcmp(argv[i], "--replication") == 0)
                repl = true;
            else if (strcmp(argv[i], "--status") != 0)
                return cli_usage_fail("cluster quorum", "unexpected argument '%s'", argv[i]);
        }
        return cli_cluster_quorum(repl);
    }
    return cli_usage_fail("cluster", "unknown verb '%s'", argv[0]);
}
