/*
 * histo.c - fixed-bucket latency histogram (see histo.h). No I/O.
 */
#include "histo.h"

const int64_t sm_histo_edges_us[SM_HISTO_NBUCKETS - 1] = {
    50,     100,     250,     500,     1000,    2500,    5000,     10000,    25000,
    50000,  100000,  250000,  500000,  1000000, 2500000, 5000000,  10000000, 30000000,
};
const char *const sm_histo_edges_ms_text[SM_HISTO_NBUCKETS - 1] = {
    "0.05", "0.1", "0.25", "0.5",  "1",    "2.5",  "5",     "10",    "25",
    "50",   "100", "250",  "500",  "1000", "2500", "5000",  "10000", "30000",
};

void sm_histo_add_snapshot(sm_histo_t *into, const sm_histo_t *from)
{
    for (int i = 0; i < SM_HISTO_NBUCKETS; i++)
        into->buckets[i] += __atomic_load_n(&from->buckets[i], __ATOMIC_RELAXED);
    into->sum_us += __atomic_load_n(&from->sum_us, __ATOMIC_RELAXED);
}

uint64_t sm_histo_count(const sm_histo_t *h)
{
    uint64_t n = 0;
    for (int i = 0; i < SM_HISTO_NBUCKETS; i++)
        n += __atomic_load_n(&h->buckets[i], __ATOMIC_RELAXED);
    return n;
}

double sm_histo_quantile_ms(const sm_histo_t *h, double q)
{
    uint64_t total = sm_histo_count(h);
    if (total == 0)
        return 0;
    if (q <= 0)
        q = 0;
    if (q > 1)
        q = 1;
    double rank = q * (double)total;
    uint64_t cum = 0;
    for (int i = 0; i < SM_HISTO_NBUCKETS; i++) {
        uint64_t n = __atomic_load_n(&h->buckets[i], __ATOMIC_RELAXED);
        if (n > 0 && (double)(cum + n) >= rank) {
            if (i == SM_HISTO_NBUCKETS - 1)
                return (double)sm_histo_edges_us[i - 1] / 1000.0;
            double lo = i ? (double)sm_histo_edges_us[i - 1] : 0, hi = (double)sm_histo_edges_us[i];
            double frac = (rank - (double)cum) / (double)n;
            if (frac < 0)
                frac = 0;
            return (lo + (hi - lo) * frac) / 1000.0;
        }
        cum += n;
    }
    return (double)sm_histo_edges_us[SM_HISTO_NBUCKETS - 2] / 1000.0;
}
