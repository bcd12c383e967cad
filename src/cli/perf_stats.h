/*
 * perf_stats.h - counters and a latency histogram for `samsa perf`.
 *
 * The histogram is log-linear over microseconds: values below 64 us have
 * their own bucket, above that every power of two is split into 64
 * sub-buckets, so any recorded value is reported within 1/64 (~1.6%) of the
 * truth, from 1 us to days, in a fixed 18 KB table with O(1) recording and
 * no allocation on the hot path. Percentiles report a bucket's upper bound
 * (never under-state latency). Single thread: the perf loops record from
 * librdkafka callbacks served on the main thread.
 */
#ifndef SM_CLI_PERF_STATS_H
#define SM_CLI_PERF_STATS_H

#include <stdbool.h>
#include <stdint.h>

#define PERF_HIST_SUB 64
#define PERF_HIST_BUCKETS (PERF_HIST_SUB + 40 * PERF_HIST_SUB)

typedef struct perf_hist {
    uint64_t count;
    uint64_t max_us;
    double sum_us;
    uint64_t b[PERF_HIST_BUCKETS];
} perf_hist_t;

void perf_hist_record(perf_hist_t *h, uint64_t us);
/* Value at quantile q (0..1), in microseconds; 0 when empty. */
uint64_t perf_hist_quantile(const perf_hist_t *h, double q);

/* Running totals and the once-a-second progress line. */
typedef struct perf_stats {
    const char *what;       /* "produce", "consume", "e2e" */
    int64_t start_us;
    int64_t msgs, bytes, errors;
    /* last progress line */
    int64_t last_us, last_msgs, last_bytes;
    perf_hist_t *lat;       /* may be NULL (consume has no latency) */
    bool txn;               /* transactional produce: report txns too */
    int64_t txns;           /* committed transactions */
} perf_stats_t;

void perf_stats_init(perf_stats_t *s, const char *what, perf_hist_t *lat);
/* Print a progress line to stderr if a second has passed since the last. */
void perf_stats_tick(perf_stats_t *s, int64_t now_us);
/* Final summary to stdout (table or JSON per --format). extra_kv: optional
 * "key", "value" string pairs printed too (NULL-terminated). */
void perf_stats_summary(perf_stats_t *s, int64_t now_us, const char *const *extra_kv);

#endif
