/*
 * fuzz_decompress.c - libFuzzer target for the batch codecs and the
 * record lookups inside one batch.
 *
 * Input: byte 0 selects the mode, the rest is the payload.
 *   bits 0-2  codec (0 none, 1 gzip, 2 snappy, 3 lz4, 4 zstd, 5-7 unknown)
 *   bit 3     clear: decompress the payload with that codec;
 *             set:   the payload is one record batch (the codec bits are
 *                    ignored; the batch's attributes choose).
 * Oracles, besides the sanitizers:
 *   decompress: only CORRUPT / TOO_LARGE errors (UNSUPPORTED exactly for
 *     unknown codecs); a success returns at most max_out bytes, decodes the
 *     same under max_out = its size, fails TOO_LARGE one byte below, and
 *     survives a compress/decompress round trip unchanged.
 *   batch: the record iterator, find_max_timestamp and find_timestamp
 *     agree: the first record holding the maximum is what find_timestamp
 *     returns for that timestamp, nothing is found above it, and the
 *     iterator's own first-match for the first record's timestamp matches.
 * Seeds in tests/fuzz/corpus/decompress were made with sm_compress (each
 * codec, small and 100 KiB inputs), a hand-built raw snappy block, batches
 * in each codec, plain and LogAppendTime, real librdkafka batches
 * (batch-rdkafka-*, as in test_compress.c), plus what two 5-minute
 * libFuzzer runs added (merged with -merge=1). Built with clang
 * -fsanitize=fuzzer and, with any compiler, as fuzz_decompress_replay that
 * replays the corpus in ctest.
 */
#include "batch_find.h"
#include "compress.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define FUZZ_MAX_OUT ((size_t)1 << 20)

static void must(bool cond, const char *what)
{
    if (!cond) {
        fprintf(stderr, "fuzz_decompress: %s\n", what);
        abort();
    }
}

static void fuzz_codec(sm_codec_t c, const uint8_t *p, size_t n)
{
    uint8_t *out = NULL;
    size_t outlen = 0;
    sm_err_t err = sm_decompress(c, p, n, FUZZ_MAX_OUT, &out, &outlen);
    if (c > SM_CODEC_ZSTD) {
        must(err == SM_ERR_UNSUPPORTED && out == NULL, "unknown codec accepted");
        return;
    }
    if (err != SM_OK) {
        must(err == SM_ERR_CORRUPT || err == SM_ERR_TOO_LARGE, "unexpected error code");
        must(out == NULL && outlen == 0, "output left on failure");
        return;
    }
    must(out != NULL && outlen <= FUZZ_MAX_OUT, "output over the limit");

    /* The bound is exact. */
    uint8_t *again;
    size_t againlen;
    must(sm_decompress(c, p, n, outlen, &again, &againlen) == SM_OK && againlen == outlen &&
             memcmp(again, out, outlen) == 0,
         "not reproducible at max_out = its size");
    free(again);
    if (outlen > 0)
        must(sm_decompress(c, p, n, outlen - 1, &again, &againlen) == SM_ERR_TOO_LARGE,
             "limit one byte short not enforced");

    /* Round trip through our own encoder. */
    uint8_t *z;
    size_t zlen;
    must(sm_compress(c, out, outlen, &z, &zlen) == SM_OK, "compress failed");
    must(sm_decompress(c, z, zlen, outlen, &again, &againlen) == SM_OK && againlen == outlen &&
             memcmp(again, out, outlen) == 0,
         "round trip changed the data");
    free(again);
    free(z);
    free(out);
}

static void fuzz_batch(const uint8_t *p, size_t n)
{
    sm_batch_records_t br;
    int64_t first_ts = 0;
    int64_t first_match_off = 0;
    bool have_first = false, walked_ok = false;
    if (sm_batch_records_open(&br, p, n, SM_BATCH_FIND_MAX_OUT) == SM_OK) {
        sm_record_t rec;
        sm_err_t err;
        int32_t count = 0;
        while ((err = sm_batch_records_next(&br, &rec)) == SM_OK) {
            int64_t t = sm_batch_records_timestamp(&br, &rec);
            if (!have_first) {
                have_first = true;
                first_ts = t;
                first_match_off = sm_batch_records_offset(&br, &rec);
            }
            count++;
        }
        walked_ok = err == SM_ERR_NOT_FOUND;
        if (walked_ok)
            must(count == br.info.record_count, "record count");
        sm_batch_records_close(&br);
    }

    int64_t moff = 0, mts = 0;
    sm_err_t merr = sm_batch_find_max_timestamp(p, n, &moff, &mts);
    if (!walked_ok) {
        must(merr != SM_OK, "max found in a batch the iterator rejects");
        return;
    }
    if (!have_first) {
        must(merr == SM_ERR_NOT_FOUND, "max found in an empty batch");
        return;
    }
    must(merr == SM_OK, "max not found in a good batch");
    int64_t off = 0, ts = 0;
    must(sm_batch_find_timestamp(p, n, mts, &off, &ts) == SM_OK && off == moff && ts == mts,
         "find(max) is not the first maximum");
    if (mts < INT64_MAX)
        must(sm_batch_find_timestamp(p, n, mts + 1, &off, &ts) == SM_ERR_NOT_FOUND,
             "found above the maximum");
    /* No record precedes the first: it answers for its own timestamp. */
    must(sm_batch_find_timestamp(p, n, first_ts, &off, &ts) == SM_OK, "first record not found");
    must(off == first_match_off && ts == first_ts, "first record not the first match");
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size == 0)
        return 0;
    /* Copy into an exact-size buffer so ASan flags any read past the end. */
    size_t n = size - 1;
    uint8_t *p = malloc(n ? n : 1);
    if (n)
        memcpy(p, data + 1, n);
    if (data[0] & 0x08)
        fuzz_batch(p, n);
    else
        fuzz_codec((sm_codec_t)(data[0] & 0x07), p, n);
    free(p);
    return 0;
}
