/*
 * perf_stats.c - latency histogram, progress lines and summaries of the perf
 * commands (see perf_stats.h). Main thread only.
 */
#include "perf_stats.h"

#include "cli.h"
#include "out.h"

#include <string.h>

static int bucket_of(uint64_t v)
{
    if (v < PERF_HIST_SUB)
        return (int)v;
    int e = 63 - __builtin_clzll(v); /* >= 6 */
    int sub = (int)((v >> (e - 6)) & (PERF_HIST_SUB - 1));
    int idx = PERF_HIST_SUB + (e - 6) * PERF_HIST_SUB + sub;
    return idx < PERF_HIST_BUCKETS ? idx : PERF_HIST_BUCKETS - 1;
}

/* Largest value that lands in bucket idx. */
static uint64_t bucket_top(int idx)
{
    if (idx < PERF_HIST_SUB)
        return (uint64_t)idx;
    int e = (idx - PERF_HIST_SUB) / PERF_HIST_SUB + 6;
    uint64_t sub = (uint64_t)((idx - PERF_HIST_SUB) % PERF_HIST_SUB);
    return (((uint64_t)PERF_HIST_SUB + sub + 1) << (e - 6)) - 1;
}

void perf_hist_record(perf_hist_t *h, uint64_t us)
{
    h->b[bucket_of(us)]++;
    h->count++;
    h->sum_us += (double)us;
    if (us > h->max_us)
        h->max_us = us;
}

uint64_t perf_hist_quantile(const perf_hist_t *h, double q)
{
    if (!h->count)
        return 0;
    uint64_t rank = (uint64_t)(q * (double)h->count + 0.5);
    if (rank < 1)
        rank = 1;
    if (rank > h->count)
        rank = h->count;
    uint64_t seen = 0;
    for (int i = 0; i < PERF_HIST_BUCKETS; i++) {
        seen += h->b[i];
        if (seen >= rank) {
            uint64_t top = bucket_top(i);
            return top < h->max_us ? top : h->max_us;
        }
    }
    return h->max_us;
}

void perf_stats_init(perf_stats_t *s, const char *what, perf_hist_t *lat)
{
    memset(s, 0, sizeof *s);
    s->what = what;
    s->lat = lat;
    s->start_us = s->last_us = sm_now_mono_us();
}

void perf_stats_tick(perf_stats_t *s, int64_t now_us)
{
    if (now_us - s->last_us < 1000000)
        return;
    double dt = (double)(now_us - s->last_us) / 1e6;
    double rate = (double)(s->msgs - s->last_msgs) / dt;
    double mbs = (double)(s->bytes - s->last_bytes) / dt / (1024.0 * 1024.0);
    fprintf(stderr, "%s: %lld msgs, %.0f msgs/s, %.2f MB/s", s->what, (long long)s->msgs, rate,
            mbs);
    if (s->lat && s->lat->count)
        fprintf(stderr, ", latency avg %.2f ms p99 %.2f ms max %.2f ms",
                s->lat->sum_us / (double)s->lat->count / 1000.0,
                (double)perf_hist_quantile(s->lat, 0.99) / 1000.0,
                (double)s->lat->max_us / 1000.0);
    if (s->errors)
        fprintf(stderr, ", %lld errors", (long long)s->errors);
    fputc('\n', stderr);
    s->last_us = now_us;
    s->last_msgs = s->msgs;
    s->last_bytes = s->bytes;
}

void perf_stats_summary(perf_stats_t *s, int64_t now_us, const char *const *extra_kv)
{
    double secs = (double)(now_us - s->start_us) / 1e6;
    if (secs <= 0)
        secs = 1e-6;
    double rate = (double)s->msgs / secs;
    double mbs = (double)s->bytes / secs / (1024.0 * 1024.0);
    perf_hist_t *h = s->lat;
    double ms[5] = {0};
    if (h && h->count) {
        ms[0] = h->sum_us / (double)h->count / 1000.0;
        ms[1] = (double)perf_hist_quantile(h, 0.50) / 1000.0;
        ms[2] = (double)perf_hist_quantile(h, 0.99) / 1000.0;
        ms[3] = (double)perf_hist_quantile(h, 0.999) / 1000.0;
        ms[4] = (double)h->max_us / 1000.0;
    }
    if (cli_g.format == CLI_FMT_JSON) {
        cli_json_t j;
        cli_json_init(&j, stdout);
        cli_json_obj_begin(&j);
        cli_json_kstr(&j, "test", s->what);
        cli_json_kint(&j, "messages", s->msgs);
        cli_json_kint(&j, "bytes", s->bytes);
        cli_json_kint(&j, "errors", s->errors);
        cli_json_kdouble(&j, "seconds", secs);
        cli_json_kdouble(&j, "msgs_per_sec", rate);
        cli_json_kdouble(&j, "mb_per_sec", mbs);
        if (h) {
            cli_json_key(&j, "latency_ms");
            cli_json_obj_begin(&j);
            cli_json_kint(&j, "count", (int64_t)h->count);
            cli_json_kdouble(&j, "avg", ms[0]);
            cli_json_kdouble(&j, "p50", ms[1]);
            cli_json_kdouble(&j, "p99", ms[2]);
            cli_json_kdouble(&j, "p99_9", ms[3]);
            cli_json_kdouble(&j, "max", ms[4]);
            cli_json_obj_end(&j);
        }
        if (s->txn) {
            cli_json_kint(&j, "transactions", s->txns);
            cli_json_kdouble(&j, "txns_per_sec", (double)s->txns / secs);
        }
        for (int i = 0; extra_kv && extra_kv[i]; i += 2)
            cli_json_kstr(&j, extra_kv[i], extra_kv[i + 1]);
        cli_json_obj_end(&j);
        cli_json_done(&j);
        return;
    }
    printf("%s: %lld messages, %.1f MB in %.2f s: %.0f msgs/s, %.2f MB/s", s->what,
           (long long)s->msgs, (double)s->bytes / (1024.0 * 1024.0), secs, rate, mbs);
    if (s->txn)
        printf(", %lld transactions, %.0f txns/s", (long long)s->txns, (double)s->txns / secs);
    if (s->errors)
        printf(", %lld errors", (long long)s->errors);
    putchar('\n');
    if (h && h->count)
        printf("latency ms: avg %.3f  p50 %.3f  p99 %.3f  p99.9 %.3f  max %.3f  (%llu samples)\n",
               ms[0], ms[1], ms[2], ms[3], ms[4], (unsigned long long)h->count);
    for (int i = 0; extra_kv && extra_kv[i]; i += 2)
        printf("%s: %s\n", extra_kv[i], extra_kv[i + 1]);
}
