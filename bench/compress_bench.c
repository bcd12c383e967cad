/*
 * compress_bench.c - what a topic's compression.type costs the broker
 * (issue #15): CPU time per GB of produced batches for the produce path's
 * passthrough (validation only: what compression.type=producer does) and
 * for re-framing in another codec (validation + decompression when the
 * producer compressed + compression in the topic's codec).
 *
 *   build/bench/compress_bench [MB_PER_RUN] [RUNS]
 *
 * Batches of 16 records of 1 KB JSON-like values (keys "user-N"), as a
 * producer with linger would send them. Each case runs RUNS times over
 * MB_PER_RUN of records; the median is reported as CPU seconds per GB of
 * records (uncompressed size, whatever codec the producer used) and as a
 * multiple of the passthrough measured in the same run, plus the stored
 * size as a fraction of the uncompressed records.
 */
#include "batch.h"
#include "batch_rewrite.h"
#include "compress.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define RECS_PER_BATCH 16
#define VALUE_BYTES 1024

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

/* One batch of JSON-like records (varying numbers, repeated field names). */
static void make_batch(sm_wbuf_t *w, uint32_t seed)
{
    static char keys[RECS_PER_BATCH][32];
    static char vals[RECS_PER_BATCH][VALUE_BYTES + 1];
    sm_record_in_t recs[RECS_PER_BATCH];
    uint32_t x = seed * 2654435761u + 17;
    for (int i = 0; i < RECS_PER_BATCH; i++) {
        x = x * 1103515245u + 12345u;
        snprintf(keys[i], sizeof keys[i], "user-%u", x % 100000);
        size_t n = 0;
        while (n < VALUE_BYTES - 80) {
            x = x * 1103515245u + 12345u;
            n += (size_t)snprintf(vals[i] + n, VALUE_BYTES + 1 - n,
                                  "{\"id\":%u,\"amount\":%u.%02u,\"city\":\"c%u\",\"ok\":%s},",
                                  x % 1000000, (x >> 8) % 10000, x % 100, (x >> 16) % 50,
                                  (x & 1) ? "true" : "false");
        }
        memset(vals[i] + n, ' ', VALUE_BYTES - n);
        recs[i] = (sm_record_in_t){.key = keys[i], .key_len = (int32_t)strlen(keys[i]),
                                   .value = vals[i], .value_len = VALUE_BYTES,
                                   .timestamp = 1700000000000LL + i};
    }
    sm_batch_params_t bp = {.base_offset = 0, .leader_epoch = -1, .producer_id = -1,
                            .producer_epoch = -1, .base_sequence = -1};
    sm_batch_encode(w, &bp, recs, RECS_PER_BATCH);
}

typedef struct input {
    uint8_t *mem;
    size_t len;
    size_t raw_len; /* uncompressed size of the same batches */
} input_t;

/* MB of batches in codec `from` (re-framed from the plain ones). */
static input_t make_input(size_t mb, sm_codec_t from)
{
    sm_wbuf_t all;
    sm_wbuf_init(&all);
    size_t raw = 0;
    for (uint32_t s = 0; raw < mb << 20; s++) {
        sm_wbuf_t one;
        sm_wbuf_init(&one);
        make_batch(&one, s);
        raw += one.len;
        sm_batch_info_t b;
        if (sm_batch_header_parse(one.mem, one.len, &b) != SM_OK ||
            sm_batch_recompress(one.mem, &b, from, SM_COMPRESS_LEVEL_DEFAULT, 1 << 24, &all) !=
                SM_OK) {
            fprintf(stderr, "compress_bench: could not build the input\n");
            exit(1);
        }
        sm_wbuf_free(&one);
    }
    input_t in = {.mem = all.mem, .len = all.len, .raw_len = raw};
    return in;
}

/* One pass: validate every batch, and re-frame it unless to < 0. Returns
 * CPU seconds; *out_bytes the stored size. */
static double pass(const input_t *in, int to, int level, size_t *out_bytes)
{
    sm_wbuf_t w;
    sm_wbuf_init(&w);
    double t0 = now_s();
    size_t stored = 0;
    for (size_t at = 0; at < in->len;) {
        sm_batch_info_t b;
        const char *why;
        if (sm_batch_validate(in->mem + at, in->len - at, &b, &why) != SM_OK) {
            fprintf(stderr, "compress_bench: invalid batch: %s\n", why);
            exit(1);
        }
        size_t total = (size_t)sm_batch_total_size(&b);
        if (to >= 0) {
            sm_wbuf_reset(&w);
            if (sm_batch_recompress(in->mem + at, &b, (sm_codec_t)to, level, 1 << 24, &w) !=
                SM_OK) {
                fprintf(stderr, "compress_bench: recompress failed\n");
                exit(1);
            }
            stored += w.len;
        } else {
            stored += total;
        }
        at += total;
    }
    double t = now_s() - t0;
    sm_wbuf_free(&w);
    *out_bytes = stored;
    return t;
}

int main(int argc, char **argv)
{
    size_t mb = argc > 1 ? (size_t)atoi(argv[1]) : 128;
    int runs = argc > 2 ? atoi(argv[2]) : 5;
    if (mb < 1 || runs < 1 || runs > 99) {
        fprintf(stderr, "usage: compress_bench [MB_PER_RUN] [RUNS]\n");
        return 2;
    }
    struct {
        sm_codec_t from;
        int to; /* -1: passthrough */
        int level;
        const char *label;
    } cases[] = {
        {SM_CODEC_NONE, -1, 0, "none, passthrough (compression.type=producer)"},
        {SM_CODEC_NONE, SM_CODEC_LZ4, 1, "none -> lz4 (level 1)"},
        {SM_CODEC_NONE, SM_CODEC_LZ4, 9, "none -> lz4 (level 9, the default)"},
        {SM_CODEC_NONE, SM_CODEC_SNAPPY, 0, "none -> snappy"},
        {SM_CODEC_NONE, SM_CODEC_ZSTD, 3, "none -> zstd (level 3, the default)"},
        {SM_CODEC_NONE, SM_CODEC_GZIP, -1, "none -> gzip (level -1 = 6, the default)"},
        {SM_CODEC_LZ4, -1, 0, "lz4, passthrough"},
        {SM_CODEC_LZ4, SM_CODEC_ZSTD, 3, "lz4 -> zstd"},
        {SM_CODEC_ZSTD, SM_CODEC_NONE, 0, "zstd -> uncompressed"},
    };
    printf("compress_bench: %zu MB of 16 x 1 KB-record batches per run, %d runs, CPU time\n", mb,
           runs);
    printf("%-48s %12s %10s %10s\n", "case", "CPU s/GB", "x passthr", "stored");
    double base = 0;
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
        input_t in = make_input(mb, cases[c].from);
        double t[99];
        size_t stored = 0;
        for (int r = 0; r < runs; r++)
            t[r] = pass(&in, cases[c].to, cases[c].level, &stored);
        qsort(t, (size_t)runs, sizeof t[0], cmp_double);
        double per_gb = t[runs / 2] * (double)(1u << 30) / (double)in.raw_len;
        if (c == 0)
            base = per_gb;
        printf("%-48s %12.3f %10.1f %9.1f%%\n", cases[c].label, per_gb, per_gb / base,
               100.0 * (double)stored / (double)in.raw_len);
        free(in.mem);
    }
    return 0;
}
