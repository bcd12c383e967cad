/*
 * histo.h - a fixed-bucket latency histogram for metrics: cheap to record
 * on hot paths, read at scrape time by another thread.
 *
 * Buckets are the Prometheus-style 1-2.5-5 series in milliseconds
 * (0.05 ms .. 30 s, then +Inf); values are recorded in microseconds. The
 * bucket edges are what /metrics reports as `le`, and quantiles (p50, p99,
 * p99.9) are estimated from the buckets by linear interpolation, as
 * Prometheus' histogram_quantile() does, so a quantile is exact to within
 * its bucket.
 *
 * Threads: every field is read and written with relaxed atomics.
 * sm_histo_record_us() may run on any thread (one lock-prefixed add per
 * field); sm_histo_record_us_1w() is for a histogram with a single writer
 * thread (a per-event-loop histogram) and uses plain load/store pairs, no
 * lock prefix. Readers take a snapshot, which is consistent per field only.
 */
#ifndef SM_HISTO_H
#define SM_HISTO_H

#include "sm_common.h"

#define SM_HISTO_NBUCKETS 19 /* 18 finite edges + +Inf */

typedef struct sm_histo {
    uint64_t buckets[SM_HISTO_NBUCKETS]; /* not cumulative */
    uint64_t sum_us;
} sm_histo_t;

/* The upper edges of the finite buckets, in microseconds and as the
 * millisecond text /metrics prints ("0.05", ..., "30000"). */
extern const int64_t sm_histo_edges_us[SM_HISTO_NBUCKETS - 1];
extern const char *const sm_histo_edges_ms_text[SM_HISTO_NBUCKETS - 1];

static inline int sm_histo_bucket(int64_t us)
{
    int i = 0;
    while (i < SM_HISTO_NBUCKETS - 1 && us > sm_histo_edges_us[i])
        i++;
    return i;
}

/* Record one value; any thread. */
static inline void sm_histo_record_us(sm_histo_t *h, int64_t us)
{
    if (us < 0)
        us = 0;
    __atomic_fetch_add(&h->buckets[sm_histo_bucket(us)], 1, __ATOMIC_RELAXED);
    __atomic_fetch_add(&h->sum_us, (uint64_t)us, __ATOMIC_RELAXED);
}

/* Record one value from the histogram's only writer thread. */
static inline void sm_histo_record_us_1w(sm_histo_t *h, int64_t us)
{
    if (us < 0)
        us = 0;
    uint64_t *b = &h->buckets[sm_histo_bucket(us)];
    __atomic_store_n(b, __atomic_load_n(b, __ATOMIC_RELAXED) + 1, __ATOMIC_RELAXED);
    __atomic_store_n(&h->sum_us, __atomic_load_n(&h->sum_us, __ATOMIC_RELAXED) + (uint64_t)us,
                     __ATOMIC_RELAXED);
}

/* into += a relaxed snapshot of from. Any thread. */
void sm_histo_add_snapshot(sm_histo_t *into, const sm_histo_t *from);
/* Number of values recorded. */
uint64_t sm_histo_count(const sm_histo_t *h);
/* The q-quantile (0 < q <= 1) in milliseconds, interpolated within its
 * bucket; 0 when empty; the last finite edge when it falls in +Inf. */
double sm_histo_quantile_ms(const sm_histo_t *h, double q);

#endif
