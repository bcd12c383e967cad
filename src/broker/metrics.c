/*
 * metrics.c - counters, the /metrics page and the /health answers (see
 * metrics.h for where each number lives and docs/METRICS.md for the list).
 *
 * Rendering: one pass per metric family, because Prometheus' text format
 * wants a family's samples together under its # HELP and # TYPE lines.
 * Partitions are collected once (references taken under the partition
 * table's read lock, sm_server_partitions) and sorted by topic and index,
 * so per-topic sums come from consecutive entries.
 *
 * Threads: the counters are written from event loops and any other thread
 * (see metrics.h); rendering and the HTTP handler run on the metrics
 * listener's own thread.
 */
#define _GNU_SOURCE
#include "metrics.h"
#include "conn.h"
#include "dispatch.h"
#include "group_coord.h"
#include "kerr.h"
#include "meta.h"
#include "request.h"
#include "server.h"
#include "storage/log.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

struct sm_metrics {
    int nloops;
    sm_loop_metrics_t *loops;
    uint64_t errors[SM_METRICS_MAX_API][SM_METRICS_NERR]; /* [api][code + 1] */
    sm_histo_t flush;
    int produce_parked;
};

sm_metrics_t *sm_metrics_new(int nloops)
{
    sm_metrics_t *m = sm_xcalloc(1, sizeof *m);
    m->nloops = nloops;
    m->loops = sm_xcalloc((size_t)nloops, sizeof *m->loops);
    return m;
}

void sm_metrics_free(sm_metrics_t *m)
{
    if (!m)
        return;
    free(m->loops);
    free(m);
}

sm_loop_metrics_t *sm_metrics_loop(sm_metrics_t *m, int loop_id)
{
    return m && loop_id >= 0 && loop_id < m->nloops ? &m->loops[loop_id] : NULL;
}

void sm_metrics_error(sm_metrics_t *m, int16_t api, int16_t code)
{
    if (!m || api < 0 || api >= SM_METRICS_MAX_API || code == 0)
        return;
    int i = code >= -1 && code < SM_METRICS_NERR - 1 ? code + 1 : 0;
    __atomic_fetch_add(&m->errors[api][i], 1, __ATOMIC_RELAXED);
}

void sm_req_count_error(void *arg, int16_t error_code)
{
    sm_req_t *req = arg;
    sm_metrics_error(sm_server_metrics(req->srv), req->api_key, error_code);
}

sm_histo_t *sm_metrics_flush_histo(sm_metrics_t *m) { return &m->flush; }

void sm_metrics_produce_parked(sm_metrics_t *m, int delta)
{
    if (m)
        __atomic_fetch_add(&m->produce_parked, delta, __ATOMIC_RELAXED);
}

const char *sm_metrics_error_name(int16_t code)
{
    switch (code) {
#define E(x) case KERR_##x: return #x;
    E(UNKNOWN_SERVER_ERROR) E(NONE) E(OFFSET_OUT_OF_RANGE) E(CORRUPT_MESSAGE)
    E(UNKNOWN_TOPIC_OR_PARTITION) E(INVALID_FETCH_SIZE) E(LEADER_NOT_AVAILABLE)
    E(NOT_LEADER_OR_FOLLOWER) E(REQUEST_TIMED_OUT) E(MESSAGE_TOO_LARGE)
    E(OFFSET_METADATA_TOO_LARGE) E(COORDINATOR_LOAD_IN_PROGRESS) E(COORDINATOR_NOT_AVAILABLE)
    E(NOT_COORDINATOR) E(INVALID_TOPIC_EXCEPTION) E(RECORD_LIST_TOO_LARGE)
    E(NOT_ENOUGH_REPLICAS) E(INVALID_REQUIRED_ACKS) E(ILLEGAL_GENERATION)
    E(INCONSISTENT_GROUP_PROTOCOL) E(INVALID_GROUP_ID) E(UNKNOWN_MEMBER_ID)
    E(INVALID_SESSION_TIMEOUT) E(REBALANCE_IN_PROGRESS) E(INVALID_COMMIT_OFFSET_SIZE)
    E(TOPIC_AUTHORIZATION_FAILED) E(CLUSTER_AUTHORIZATION_FAILED) E(INVALID_TIMESTAMP)
    E(UNSUPPORTED_SASL_MECHANISM) E(UNSUPPORTED_VERSION) E(TOPIC_ALREADY_EXISTS)
    E(INVALID_PARTITIONS) E(INVALID_REPLICATION_FACTOR) E(INVALID_REPLICA_ASSIGNMENT)
    E(INVALID_CONFIG) E(NOT_CONTROLLER) E(INVALID_REQUEST) E(UNSUPPORTED_FOR_MESSAGE_FORMAT)
    E(POLICY_VIOLATION) E(OUT_OF_ORDER_SEQUENCE_NUMBER) E(DUPLICATE_SEQUENCE_NUMBER)
    E(INVALID_PRODUCER_EPOCH) E(INVALID_TXN_STATE) E(INVALID_PRODUCER_ID_MAPPING)
    E(INVALID_TRANSACTION_TIMEOUT) E(CONCURRENT_TRANSACTIONS) E(TRANSACTION_COORDINATOR_FENCED)
    E(KAFKA_STORAGE_ERROR) E(LOG_DIR_NOT_FOUND) E(UNKNOWN_PRODUCER_ID)
    E(REASSIGNMENT_IN_PROGRESS) E(INVALID_RECORD) E(NON_EMPTY_GROUP) E(GROUP_ID_NOT_FOUND)
    E(FETCH_SESSION_ID_NOT_FOUND) E(INVALID_FETCH_SESSION_EPOCH) E(FENCED_LEADER_EPOCH)
    E(UNKNOWN_LEADER_EPOCH) E(OFFSET_NOT_AVAILABLE) E(MEMBER_ID_REQUIRED)
    E(GROUP_MAX_SIZE_REACHED) E(FENCED_INSTANCE_ID) E(UNSTABLE_OFFSET_COMMIT)
    E(UNKNOWN_TOPIC_ID) E(INCONSISTENT_TOPIC_ID) E(TRANSACTIONAL_ID_AUTHORIZATION_FAILED)
    E(STALE_BROKER_EPOCH) E(PRODUCER_FENCED) E(TRANSACTIONAL_ID_NOT_FOUND)
#undef E
    default: return NULL;
    }
}

/* ------------------------------------------------------------ text output */

typedef struct out {
    char *p;
    size_t len, cap;
} out_t;

static void out_printf(out_t *o, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void out_printf(out_t *o, const char *fmt, ...)
{
    for (;;) {
        va_list ap;
        va_start(ap, fmt);
        int n = vsnprintf(o->p + o->len, o->cap - o->len, fmt, ap);
        va_end(ap);
        SM_ASSERT(n >= 0);
        if ((size_t)n < o->cap - o->len) {
            o->len += (size_t)n;
            return;
        }
        o->cap = SM_MAX(o->cap * 2, o->len + (size_t)n + 1);
        o->p = sm_xrealloc(o->p, o->cap);
    }
}

/* A label value with \ " and newline escaped (topic names cannot carry
 * them, group ids can). Into a small static-size buffer per call site. */
static const char *esc(const char *s, char *buf, size_t cap)
{
    size_t k = 0;
    for (; *s && k + 3 < cap; s++) {
        if (*s == '\\' || *s == '"') {
            buf[k++] = '\\';
            buf[k++] = *s;
        } else if (*s == '\n') {
            buf[k++] = '\\';
            buf[k++] = 'n';
        } else {
            buf[k++] = *s;
        }
    }
    buf[k] = 0;
    return buf;
}

static void family(out_t *o, const char *name, const char *type, const char *help)
{
    out_printf(o, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

/* name_bucket/_sum/_count of h, labels ("" or `k="v",`) before le. */
static void histo_samples(out_t *o, const char *name, const char *labels, const sm_histo_t *h)
{
    uint64_t cum = 0;
    for (int i = 0; i < SM_HISTO_NBUCKETS; i++) {
        cum += h->buckets[i];
        out_printf(o, "%s_bucket{%sle=\"%s\"} %llu\n", name, labels,
                   i < SM_HISTO_NBUCKETS - 1 ? sm_histo_edges_ms_text[i] : "+Inf",
                   (unsigned long long)cum);
    }
    size_t ll = strlen(labels);
    /* labels without the trailing comma for _sum/_count */
    out_printf(o, "%s_sum%s%.*s%s %.3f\n", name, ll ? "{" : "", ll ? (int)ll - 1 : 0, labels,
               ll ? "}" : "", (double)h->sum_us / 1000.0);
    out_printf(o, "%s_count%s%.*s%s %llu\n", name, ll ? "{" : "", ll ? (int)ll - 1 : 0, labels,
               ll ? "}" : "", (unsigned long long)cum);
}

/* ------------------------------------------------------------ families */

static int part_cmp(const void *a, const void *b)
{
    const sm_partition_t *x = *(sm_partition_t *const *)a, *y = *(sm_partition_t *const *)b;
    int c = strcmp(x->topic, y->topic);
    return c ? c : (x->index > y->index) - (x->index < y->index);
}

typedef enum { T_BYTES_IN, T_MSGS_IN, T_BYTES_OUT, T_MSGS_OUT } topic_stat_t;

static uint64_t part_stat(sm_partition_t *p, topic_stat_t s)
{
    switch (s) {
    case T_BYTES_IN: return __atomic_load_n(&p->bytes_in, __ATOMIC_RELAXED);
    case T_MSGS_IN: return __atomic_load_n(&p->msgs_in, __ATOMIC_RELAXED);
    case T_BYTES_OUT: return __atomic_load_n(&p->bytes_out, __ATOMIC_RELAXED);
    default: return __atomic_load_n(&p->msgs_out, __ATOMIC_RELAXED);
    }
}

static void topic_family(out_t *o, sm_partition_t **parts, size_t n, const char *name,
                         const char *help, topic_stat_t s)
{
    family(o, name, "counter", help);
    for (size_t i = 0; i < n;) {
        uint64_t sum = 0;
        size_t j = i;
        for (; j < n && strcmp(parts[j]->topic, parts[i]->topic) == 0; j++)
            sum += part_stat(parts[j], s);
        out_printf(o, "%s{topic=\"%s\"} %llu\n", name, parts[i]->topic, (unsigned long long)sum);
        i = j;
    }
}

typedef enum { P_SIZE, P_SEGMENTS, P_END, P_START } part_gauge_t;

static void partition_family(out_t *o, sm_partition_t **parts, size_t n, const char *name,
                             const char *help, part_gauge_t g)
{
    family(o, name, "gauge", help);
    for (size_t i = 0; i < n; i++) {
        const sm_partition_t *pp = parts[i];
        long long v = g == P_SIZE       ? (long long)sm_partition_size_bytes(pp)
                      : g == P_SEGMENTS ? (long long)sm_partition_segment_count(pp)
                      : g == P_END      ? (long long)sm_partition_log_end(pp)
                                        : (long long)sm_partition_log_start(pp);
        out_printf(o, "%s{topic=\"%s\",partition=\"%d\"} %lld\n", name, parts[i]->topic,
                   parts[i]->index, v);
    }
}

/* The log cleaner, per compacted partition: its dirty ratio (what
 * min.cleanable.dirty.ratio is compared with) and when it was last cleaned,
 * and Kafka's max_dirty_percent over them. */
static void cleaner_families(out_t *o, sm_partition_t **parts, size_t n)
{
    int64_t now = sm_now_wall_ms();
    double *ratio = sm_xcalloc(n + 1, sizeof *ratio);
    double max = 0;
    for (size_t i = 0; i < n; i++) {
        sm_partition_cleanup_t c;
        sm_partition_get_cleanup(parts[i], &c);
        ratio[i] = -1;
        if (!c.compact)
            continue;
        sm_clean_window_t w;
        sm_partition_clean_window(parts[i], now, &w);
        int64_t total = w.clean_bytes + w.dirty_bytes;
        ratio[i] = total > 0 ? (double)w.dirty_bytes / (double)total : 0;
        max = ratio[i] > max ? ratio[i] : max;
    }
    family(o, "kafka_log_logcleanermanager_max_dirty_percent", "gauge",
           "Largest dirty ratio of the compacted partitions here, in percent");
    out_printf(o, "kafka_log_logcleanermanager_max_dirty_percent %.1f\n", max * 100);
    family(o, "samsa_log_cleaner_dirty_ratio", "gauge",
           "Compacted partitions: bytes written since the last cleaning over the cleanable bytes");
    for (size_t i = 0; i < n; i++)
        if (ratio[i] >= 0)
            out_printf(o, "samsa_log_cleaner_dirty_ratio{topic=\"%s\",partition=\"%d\"} %.4f\n",
                       parts[i]->topic, parts[i]->index, ratio[i]);
    family(o, "samsa_log_cleaner_last_clean_time_ms", "gauge",
           "Compacted partitions: wall-clock time of the last cleaning (ms since the epoch; -1 "
           "none since the broker started)");
    for (size_t i = 0; i < n; i++)
        if (ratio[i] >= 0)
            out_printf(o, "samsa_log_cleaner_last_clean_time_ms{topic=\"%s\",partition=\"%d\"} "
                          "%lld\n",
                       parts[i]->topic, parts[i]->index,
                       (long long)sm_log_last_clean_ms(parts[i]->log));
    family(o, "samsa_log_cleaner_offset", "gauge",
           "Compacted partitions: the cleaner checkpoint (first dirty offset; -1 never cleaned)");
    for (size_t i = 0; i < n; i++)
        if (ratio[i] >= 0)
            out_printf(o, "samsa_log_cleaner_offset{topic=\"%s\",partition=\"%d\"} %lld\n",
                       parts[i]->topic, parts[i]->index,
                       (long long)sm_log_cleaner_offset(parts[i]->log));
    free(ratio);
}

static void request_families(out_t *o, sm_metrics_t *m)
{
    /* sum the loops */
    uint64_t *reqs = sm_xcalloc(SM_METRICS_MAX_API, sizeof *reqs);
    sm_histo_t *lat = sm_xcalloc(SM_METRICS_MAX_API, sizeof *lat);
    for (int l = 0; l < m->nloops; l++) {
        for (int a = 0; a < SM_METRICS_MAX_API; a++) {
            reqs[a] += __atomic_load_n(&m->loops[l].requests[a], __ATOMIC_RELAXED);
            sm_histo_add_snapshot(&lat[a], &m->loops[l].latency[a]);
        }
    }
    int nd;
    const sm_dispatch_t *d = sm_dispatch_table(&nd);
    family(o, "kafka_network_requestmetrics_requests_total", "counter",
           "Requests answered (or dropped with their connection), per API");
    for (int i = 0; i < nd; i++) {
        const sm_api_desc_t *a = sm_api_desc(d[i].api_key);
        if (a && d[i].api_key < SM_METRICS_MAX_API)
            out_printf(o, "kafka_network_requestmetrics_requests_total{request=\"%s\"} %llu\n",
                       a->name, (unsigned long long)reqs[d[i].api_key]);
    }
    family(o, "kafka_network_requestmetrics_totaltime_ms", "histogram",
           "Time from a request's arrival to the last byte of its response sent, in ms, per API");
    for (int i = 0; i < nd; i++) {
        const sm_api_desc_t *a = sm_api_desc(d[i].api_key);
        if (!a || d[i].api_key >= SM_METRICS_MAX_API)
            continue;
        char labels[96];
        snprintf(labels, sizeof labels, "request=\"%s\",", a->name);
        histo_samples(o, "kafka_network_requestmetrics_totaltime_ms", labels, &lat[d[i].api_key]);
    }
    family(o, "kafka_network_requestmetrics_totaltime_ms_quantile", "gauge",
           "Request total time quantiles in ms, estimated from the histogram's buckets, per API");
    static const struct { const char *q; double v; } qs[] = {
        {"0.5", 0.5}, {"0.99", 0.99}, {"0.999", 0.999}};
    for (int i = 0; i < nd; i++) {
        const sm_api_desc_t *a = sm_api_desc(d[i].api_key);
        if (!a || d[i].api_key >= SM_METRICS_MAX_API)
            continue;
        for (size_t k = 0; k < SM_ARRAY_LEN(qs); k++)
            out_printf(o,
                       "kafka_network_requestmetrics_totaltime_ms_quantile{request=\"%s\","
                       "quantile=\"%s\"} %.3f\n",
                       a->name, qs[k].q, sm_histo_quantile_ms(&lat[d[i].api_key], qs[k].v));
    }
    family(o, "kafka_network_requestmetrics_errors_total", "counter",
           "Error codes in responses (each partition's or group's error counts), and malformed "
           "requests (INVALID_REQUEST), per API and error");
    for (int i = 0; i < nd; i++) {
        const sm_api_desc_t *a = sm_api_desc(d[i].api_key);
        if (!a || d[i].api_key >= SM_METRICS_MAX_API)
            continue;
        for (int e = 0; e < SM_METRICS_NERR; e++) {
            uint64_t v = __atomic_load_n(&m->errors[d[i].api_key][e], __ATOMIC_RELAXED);
            if (!v)
                continue;
            const char *en = sm_metrics_error_name((int16_t)(e - 1));
            char other[32];
            if (!en) {
                snprintf(other, sizeof other, "ERROR_%d", e - 1);
                en = other;
            }
            out_printf(o, "kafka_network_requestmetrics_errors_total{request=\"%s\",error=\"%s\"} %llu\n",
                       a->name, en, (unsigned long long)v);
        }
    }
    free(reqs);
    free(lat);
}

/* Under-replicated (ISR smaller than the replicas, of partitions led here),
 * offline (no live leader) and the active controller, from the current
 * metadata image. */
static void cluster_families(out_t *o, sm_server_t *srv)
{
    sm_meta_image_t *img = sm_meta_image_get(sm_server_meta(srv));
    int32_t self = sm_server_node_id(srv);
    long urp = 0, offline = 0, leaders = 0, parts = 0;
    for (int i = 0; i < img->ntopics; i++) {
        const sm_topic_meta_t *t = img->topics[i];
        for (int32_t j = 0; j < t->npartitions; j++) {
            const sm_partition_meta_t *pm = &t->partitions[j];
            parts++;
            const sm_broker_meta_t *b = pm->leader >= 0 ? sm_meta_image_broker(img, pm->leader) : NULL;
            if (!b || b->fenced)
                offline++;
            if (pm->leader == self) {
                leaders++;
                if (pm->nisr < pm->nreplicas)
                    urp++;
            }
        }
    }
    bool active = sm_server_config(srv)->role_controller && img->controller_id == self;
    family(o, "kafka_server_replicamanager_underreplicatedpartitions", "gauge",
           "Partitions led by this broker whose ISR is smaller than their replica set");
    out_printf(o, "kafka_server_replicamanager_underreplicatedpartitions %ld\n", urp);
    family(o, "kafka_server_replicamanager_leadercount", "gauge", "Partitions led by this broker");
    out_printf(o, "kafka_server_replicamanager_leadercount %ld\n", leaders);
    family(o, "kafka_controller_kafkacontroller_activecontrollercount", "gauge",
           "1 if this node is the active controller, else 0");
    out_printf(o, "kafka_controller_kafkacontroller_activecontrollercount %d\n", active ? 1 : 0);
    family(o, "kafka_controller_kafkacontroller_offlinepartitionscount", "gauge",
           "Partitions without a live leader (reported by the active controller; 0 elsewhere)");
    out_printf(o, "kafka_controller_kafkacontroller_offlinepartitionscount %ld\n",
               active ? offline : 0);
    family(o, "kafka_controller_kafkacontroller_globalpartitioncount", "gauge",
           "Partitions in the cluster metadata");
    out_printf(o, "kafka_controller_kafkacontroller_globalpartitioncount %ld\n", parts);
    family(o, "kafka_controller_kafkacontroller_globaltopiccount", "gauge",
           "Topics in the cluster metadata");
    out_printf(o, "kafka_controller_kafkacontroller_globaltopiccount %d\n", img->ntopics);
    sm_meta_image_put(img);
}

/* Consumer group lag: log end offset minus committed offset, per group and
 * committed partition this broker hosts. */
static void lag_family(out_t *o, sm_server_t *srv)
{
    family(o, "kafka_consumergroup_lag", "gauge",
           "Log end offset minus the group's committed offset, per group and partition");
    sm_group_coord_t *gc = sm_server_groups(srv);
    if (!gc)
        return;
    sm_arena_t a;
    sm_arena_init(&a);
    sm_group_listing_t *groups = NULL;
    int32_t ngroups = 0;
    if (sm_group_coord_list(gc, 0, &a, &groups, &ngroups) != KERR_NONE)
        ngroups = 0;
    for (int32_t g = 0; g < ngroups; g++) {
        sm_group_fetch_part_t *parts = NULL;
        int32_t n = 0;
        if (sm_group_coord_fetch_all(gc, groups[g].group_id, false, &a, &parts, &n) != KERR_NONE)
            continue;
        char gid[512];
        esc(groups[g].group_id, gid, sizeof gid);
        for (int32_t i = 0; i < n; i++) {
            if (parts[i].error || parts[i].offset < 0)
                continue;
            sm_partition_t *p =
                sm_server_partition(srv, parts[i].topic, strlen(parts[i].topic), parts[i].partition);
            if (!p)
                continue;
            int64_t lag = sm_partition_high_watermark(p) - parts[i].offset;
            sm_partition_put(p);
            out_printf(o, "kafka_consumergroup_lag{group=\"%s\",topic=\"%s\",partition=\"%d\"} %lld\n",
                       gid, parts[i].topic, parts[i].partition, (long long)(lag > 0 ? lag : 0));
        }
    }
    sm_arena_free(&a);
}

static void process_families(out_t *o)
{
    long pages_total = 0, pages_res = 0;
    FILE *f = fopen("/proc/self/statm", "r");
    if (f) {
        if (fscanf(f, "%ld %ld", &pages_total, &pages_res) != 2)
            pages_total = pages_res = 0;
        fclose(f);
    }
    long page = sysconf(_SC_PAGESIZE);
    family(o, "process_resident_memory_bytes", "gauge", "Resident set size (/proc/self/statm)");
    out_printf(o, "process_resident_memory_bytes %lld\n", (long long)pages_res * page);
    family(o, "process_virtual_memory_bytes", "gauge", "Virtual memory size (/proc/self/statm)");
    out_printf(o, "process_virtual_memory_bytes %lld\n", (long long)pages_total * page);
}

char *sm_metrics_render(sm_server_t *srv, size_t *len)
{
    sm_metrics_t *m = sm_server_metrics(srv);
    out_t o = {sm_xmalloc(64 * 1024), 0, 64 * 1024};
    o.p[0] = 0;
    size_t n = 0;
    sm_partition_t **parts = sm_server_partitions(srv, &n);
    qsort(parts, n, sizeof *parts, part_cmp);

    topic_family(&o, parts, n, "kafka_server_brokertopicmetrics_bytesin_total",
                 "Record batch bytes appended by produce requests, per topic", T_BYTES_IN);
    topic_family(&o, parts, n, "kafka_server_brokertopicmetrics_messagesin_total",
                 "Records appended by produce requests, per topic", T_MSGS_IN);
    topic_family(&o, parts, n, "kafka_server_brokertopicmetrics_bytesout_total",
                 "Record batch bytes sent in fetch responses, per topic", T_BYTES_OUT);
    topic_family(&o, parts, n, "kafka_server_brokertopicmetrics_messagesout_total",
                 "Offsets sent in fetch responses (records, counting whole batches from the "
                 "fetch offset), per topic", T_MSGS_OUT);
    partition_family(&o, parts, n, "kafka_log_log_size", "Bytes in the partition's segments",
                     P_SIZE);
    partition_family(&o, parts, n, "kafka_log_log_numlogsegments",
                     "Segments of the partition's log", P_SEGMENTS);
    partition_family(&o, parts, n, "kafka_log_log_logendoffset",
                     "Offset the next appended record gets", P_END);
    partition_family(&o, parts, n, "kafka_log_log_logstartoffset",
                     "First offset still in the log", P_START);
    cleaner_families(&o, parts, n);
    for (size_t i = 0; i < n; i++)
        sm_partition_put(parts[i]);
    free(parts);

    request_families(&o, m);
    family(&o, "kafka_server_delayedoperationpurgatory_purgatorysize", "gauge",
           "Requests waiting: fetches long-polling for data, produces waiting for an fsync");
    out_printf(&o, "kafka_server_delayedoperationpurgatory_purgatorysize{delayedOperation=\"Fetch\"} %d\n",
               sm_fetch_purgatory_size(srv));
    out_printf(&o, "kafka_server_delayedoperationpurgatory_purgatorysize{delayedOperation=\"Produce\"} %d\n",
               __atomic_load_n(&m->produce_parked, __ATOMIC_RELAXED));
    cluster_families(&o, srv);
    lag_family(&o, srv);
    family(&o, "kafka_server_socketservermetrics_connection_count", "gauge",
           "Open client connections (all listeners)");
    out_printf(&o, "kafka_server_socketservermetrics_connection_count %d\n", sm_conn_count(srv));
    process_families(&o);
    sm_histo_t fl = {0};
    sm_histo_add_snapshot(&fl, &m->flush);
    family(&o, "kafka_log_logflushstats_logflushrateandtimems", "histogram",
           "Duration of each partition log flush's fdatasync calls, in ms");
    histo_samples(&o, "kafka_log_logflushstats_logflushrateandtimems", "", &fl);
    *len = o.len;
    return o.p;
}

/* ------------------------------------------------------------ HTTP */

void sm_metrics_http(void *ctx, const char *path, sm_http_reply_t *out)
{
    sm_server_t *srv = ctx;
    const char *reason = NULL;
    bool ready = sm_server_ready(srv, &reason);
    out->content_type = "text/plain; charset=utf-8";
    if (strcmp(path, "/metrics") == 0) {
        out->status = 200;
        out->content_type = "text/plain; version=0.0.4; charset=utf-8";
        out->body = sm_metrics_render(srv, &out->len);
    } else if (strcmp(path, "/health/live") == 0) {
        out->status = 200;
        out->body = sm_xstrdup("live\n");
    } else if (strcmp(path, "/health/ready") == 0) {
        out->status = ready ? 200 : 503;
        out->body = ready ? sm_xstrdup("ready\n") : sm_xasprintf("not ready: %s\n", reason);
    } else if (strcmp(path, "/health") == 0) {
        out->status = ready ? 200 : 503;
        out->content_type = "application/json";
        out->body = sm_xasprintf("{\"live\":true,\"ready\":%s,\"reason\":\"%s\",\"node_id\":%d}\n",
                                 ready ? "true" : "false", ready ? "ok" : reason,
                                 sm_server_node_id(srv));
    } else {
        out->status = 404;
        out->body = sm_xasprintf("not found; try /metrics, /health, /health/live or /health/ready\n");
        return;
    }
    if (out->body && !out->len)
        out->len = strlen(out->body);
}
