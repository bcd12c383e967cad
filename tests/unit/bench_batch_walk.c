/*
 * bench_batch_walk.c - instruction-count driver for sm_batch_validate on
 * uncompressed batches (not a ctest: built on demand with
 * `cmake --build build --target bench_batch_walk`).
 *
 * Builds one ~1 MB batch and validates it N times. Two workloads:
 *   plain    100-byte values, null keys, no headers, timestampDelta 0: what
 *            librdkafka sends for `samsa perf produce` style traffic;
 *   headers  16-byte keys, 100-byte values, two headers (one with a null
 *            value), growing timestampDeltas.
 * Wall time on these shared machines is noise, so measure instructions:
 *   valgrind --tool=callgrind --callgrind-out-file=cg.out \
 *       build/bench/bench_batch_walk plain 20
 *   callgrind_annotate --inclusive=yes cg.out | grep -E 'sm_batch_validate|sm_crc32c'
 * (validate minus crc32c, divided by iterations x records, is the record
 * walk's cost per record). The program prints the record count it used.
 */
#include "batch.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define TARGET_BYTES (1024 * 1024)

static void build(sm_wbuf_t *w, bool headers, int *nrecs)
{
    static uint8_t value[100];
    memset(value, 'v', sizeof value);
    static const sm_record_header_t hdrs[2] = {
        {(const uint8_t *)"trace-id", 8, (const uint8_t *)"0123456789abcdef", 16},
        {(const uint8_t *)"retry", 5, NULL, -1},
    };
    /* Per-record bytes, roughly: lets one encode produce ~1 MB. */
    int per = headers ? 100 + 16 + 8 + 16 + 5 + 16 : 100 + 8;
    int n = TARGET_BYTES / per;
    sm_record_in_t *recs = calloc((size_t)n, sizeof *recs);
    char(*keys)[17] = calloc((size_t)n, sizeof *keys);
    for (int i = 0; i < n; i++) {
        recs[i].value = value;
        recs[i].value_len = (int32_t)sizeof value;
        recs[i].timestamp = 1700000000000LL + (headers ? i / 4 : 0);
        if (headers) {
            snprintf(keys[i], sizeof keys[i], "key-%012d", i);
            recs[i].key = keys[i];
            recs[i].key_len = 16;
            recs[i].nheaders = 2;
            recs[i].headers = hdrs;
        } else {
            recs[i].key = NULL;
            recs[i].key_len = -1;
        }
    }
    sm_batch_params_t bp = {.base_offset = 0, .leader_epoch = -1, .producer_id = 1000,
                            .producer_epoch = 0, .base_sequence = 0};
    sm_batch_encode(w, &bp, recs, n);
    free(recs);
    free(keys);
    *nrecs = n;
}

int main(int argc, char **argv)
{
    if (argc != 3 || (strcmp(argv[1], "plain") && strcmp(argv[1], "headers"))) {
        fprintf(stderr, "usage: %s plain|headers ITERATIONS\n", argv[0]);
        return 2;
    }
    int iters = atoi(argv[2]);
    sm_wbuf_t w;
    sm_wbuf_init(&w);
    int n;
    build(&w, strcmp(argv[1], "headers") == 0, &n);
    int ok = 0;
    for (int i = 0; i < iters; i++) {
        sm_batch_info_t b;
        const char *why = NULL;
        if (sm_batch_validate(w.mem, w.len, &b, &why) == SM_OK)
            ok++;
        else
            fprintf(stderr, "rejected: %s\n", why);
    }
    printf("%s: %d records, %zu bytes, %d/%d validated\n", argv[1], n, w.len, ok, iters);
    sm_wbuf_free(&w);
    return ok == iters ? 0 : 1;
}
