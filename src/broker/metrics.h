/*
 * metrics.h - the broker's metrics: cheap counters on the hot paths, and
 * the Prometheus text rendering of /metrics and the /health answers
 * (served by the metrics.listener HTTP server, http.h). docs/METRICS.md
 * lists every metric.
 *
 * Where each number lives (nothing here takes a lock or allocates on the
 * produce or fetch path):
 *  - requests and their latency per API: per event loop
 *    (sm_loop_metrics_t), written only by that loop's thread with plain
 *    relaxed load/store pairs, summed over the loops at scrape time;
 *  - bytes and messages in/out: relaxed atomic counters in each
 *    sm_partition_t, summed per topic at scrape time;
 *  - errors per API and error code, fsync latency, the produce purgatory:
 *    broker-wide relaxed atomics (errors are rare; fsyncs are slow anyway);
 *  - everything else (log sizes, offsets, group lag, under-replicated and
 *    offline partitions, connections, RSS) is read from its owner when
 *    scraped.
 * A scrape runs on the HTTP server's own thread, so rendering 10,000
 * partitions never holds up an event loop; it takes the partition table's
 * read lock only to collect references.
 */
#ifndef SM_METRICS_H
#define SM_METRICS_H

#include "histo.h"
#include "http.h"
#include "sm_common.h"

#define SM_METRICS_MAX_API 96 /* API keys counted (Kafka's are below 96) */
#define SM_METRICS_NERR 130   /* error codes -1 .. 127; others count as -1 */

typedef struct sm_server sm_server_t;
typedef struct sm_metrics sm_metrics_t;

/* One event loop's request counters; written by that loop's thread only. */
typedef struct sm_loop_metrics {
    uint64_t requests[SM_METRICS_MAX_API];
    sm_histo_t latency[SM_METRICS_MAX_API]; /* receipt to last response byte sent */
} sm_loop_metrics_t;

sm_metrics_t *sm_metrics_new(int nloops);
void sm_metrics_free(sm_metrics_t *m);

/* The counters of loop loop_id, or NULL for another thread's loop id. */
sm_loop_metrics_t *sm_metrics_loop(sm_metrics_t *m, int loop_id);

/* A request of api finished after latency_us. The loop's thread only. */
static inline void sm_loop_metrics_request(sm_loop_metrics_t *lm, int16_t api, int64_t latency_us)
{
    if (api < 0 || api >= SM_METRICS_MAX_API)
        return;
    uint64_t *n = &lm->requests[api];
    __atomic_store_n(n, __atomic_load_n(n, __ATOMIC_RELAXED) + 1, __ATOMIC_RELAXED);
    sm_histo_record_us_1w(&lm->latency[api], latency_us);
}

/* A response of api carried error code (non-zero). Any thread. */
void sm_metrics_error(sm_metrics_t *m, int16_t api, int16_t code);
/* The fsync latency histogram the partition logs record into. */
sm_histo_t *sm_metrics_flush_histo(sm_metrics_t *m);
/* A produce request started (+1) or stopped (-1) waiting for an fsync. Any thread. */
void sm_metrics_produce_parked(sm_metrics_t *m, int delta);

/* The whole /metrics page in Prometheus' text format (version 0.0.4);
 * malloc'ed, *len gets its length. Any thread except an event loop's (it
 * walks every partition and group). */
char *sm_metrics_render(sm_server_t *srv, size_t *len);

/* The HTTP handler of metrics.listener (an sm_http_fn; ctx is the server):
 * /metrics, /health, /health/live, /health/ready; 404 otherwise. */
void sm_metrics_http(void *ctx, const char *path, sm_http_reply_t *out);

/* Kafka's name of a wire error code ("UNKNOWN_TOPIC_OR_PARTITION"), or
 * NULL if this broker never returns it. Any thread. */
const char *sm_metrics_error_name(int16_t code);

#endif
