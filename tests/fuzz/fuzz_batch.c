/*
 * fuzz_batch.c - libFuzzer target for record batch parsing and validation.
 *
 * Input: arbitrary bytes, treated as a Produce records blob. Runs the header
 * parser, single-batch and whole-blob validation and the record iterator.
 * Oracle, besides the sanitizers: a batch that validates fits the input, its
 * record iterator yields exactly recordCount records with offsetDelta ==
 * index, and the blob validator agrees with walking the batches one by one.
 * sm_batch_validate() gives the same error and reason as the plain reference
 * decoder of tests/unit/batch_ref.h, on the input and on a copy whose first
 * batch has its CRC made good (random bytes almost never pass the CRC, and
 * the records are only walked behind it).
 * Built with clang -fsanitize=fuzzer and, with any compiler, as
 * fuzz_batch_replay that replays tests/fuzz/corpus/batch in ctest.
 */
#include "../unit/batch_ref.h"
#include "batch.h"

#include <stdio.h>
#include <stdlib.h>

static void must(bool cond, const char *what)
{
    if (!cond) {
        fprintf(stderr, "fuzz_batch: %s\n", what);
        abort();
    }
}

/* The fast record walk and the reference agree on p[0, len). */
static void same_as_reference(const uint8_t *p, size_t len)
{
    sm_batch_info_t b, rb;
    const char *why = NULL, *rwhy = NULL;
    sm_err_t err = sm_batch_validate(p, len, &b, &why);
    sm_err_t rerr = ref_batch_validate(p, len, &rb, &rwhy);
    must(err == rerr, "walk and reference disagree");
    if (err != SM_OK)
        must(why && rwhy && strcmp(why, rwhy) == 0, "walk and reference give other reasons");
}

/* The first batch of the input with its CRC recomputed, in an exact-size
 * copy; then the same checks as on the input. */
static void with_good_crc(const uint8_t *p, size_t size)
{
    sm_batch_info_t h;
    if (sm_batch_header_parse(p, size, &h) != SM_OK || h.batch_length < 0)
        return;
    int64_t total = sm_batch_total_size(&h);
    if (total < SM_BATCH_HEADER_SIZE || (uint64_t)total > size)
        return;
    uint8_t *q = malloc((size_t)total);
    memcpy(q, p, (size_t)total);
    uint32_t crc = sm_crc32c(0, q + SM_BATCH_OFF_ATTRIBUTES,
                             (size_t)total - SM_BATCH_OFF_ATTRIBUTES);
    q[SM_BATCH_OFF_CRC] = (uint8_t)(crc >> 24);
    q[SM_BATCH_OFF_CRC + 1] = (uint8_t)(crc >> 16);
    q[SM_BATCH_OFF_CRC + 2] = (uint8_t)(crc >> 8);
    q[SM_BATCH_OFF_CRC + 3] = (uint8_t)crc;
    same_as_reference(q, (size_t)total);
    sm_batch_info_t b;
    if (sm_batch_validate(q, (size_t)total, &b, NULL) == SM_OK &&
        (b.attributes & SM_BATCH_ATTR_COMPRESSION_MASK) == 0) {
        sm_record_iter_t it;
        must(sm_record_iter_init(&it, q, (size_t)total) == SM_OK, "iterator refused");
        sm_record_t r;
        int32_t n = 0;
        while (sm_record_iter_next(&it, &r) == SM_OK)
            must(r.offset_delta == n++, "offset delta");
        must(n == b.record_count && sm_rd_remaining(&it.rd) == 0, "iterator disagrees");
    }
    free(q);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    /* Copy into an exact-size buffer so ASan flags any read past the end. */
    uint8_t *p = calloc(1, size ? size : 1);
    if (size)
        memcpy(p, data, size);
    sm_batch_info_t h;
    if (sm_batch_header_parse(p, size, &h) == SM_OK)
        must(size >= SM_BATCH_HEADER_SIZE && h.magic == 2, "header parsed from short input");

    size_t pos = 0;
    int walked = 0;
    int64_t walked_records = 0;
    bool all_ok = size > 0;
    while (pos < size) {
        sm_batch_info_t b;
        const char *why = NULL;
        same_as_reference(p + pos, size - pos);
        sm_err_t err = sm_batch_validate(p + pos, size - pos, &b, &why);
        if (err != SM_OK) {
            must(why != NULL, "failure without a reason");
            all_ok = false;
            break;
        }
        int64_t total = sm_batch_total_size(&b);
        must(total >= SM_BATCH_HEADER_SIZE && (uint64_t)total <= size - pos, "batch size");
        must(b.record_count == b.last_offset_delta + 1, "record count");
        sm_record_iter_t it;
        err = sm_record_iter_init(&it, p + pos, (size_t)total);
        if ((b.attributes & SM_BATCH_ATTR_COMPRESSION_MASK) == 0) {
            must(err == SM_OK, "iterator refused a valid batch");
            sm_record_t r;
            int32_t n = 0;
            while ((err = sm_record_iter_next(&it, &r)) == SM_OK) {
                must(r.offset_delta == n, "offset delta");
                must(r.key_len >= -1 && r.value_len >= -1, "lengths");
                sm_rd_t hr;
                sm_rd_init(&hr, r.headers, r.headers_len);
                sm_record_header_t hd;
                int32_t nh = 0;
                while (sm_record_header_next(&hr, &hd) == SM_OK)
                    nh++;
                must(nh == r.header_count, "header count");
                n++;
            }
            must(err == SM_ERR_NOT_FOUND && n == b.record_count, "records iterated");
        } else {
            must(err == SM_ERR_UNSUPPORTED, "iterator on compressed batch");
        }
        walked++;
        walked_records += b.record_count;
        pos += (size_t)total;
    }
    int nb = 0;
    int32_t nr = 0;
    const char *why = NULL;
    sm_err_t err = sm_batches_validate(p, size, &nb, &nr, &why);
    if (all_ok && walked_records <= INT32_MAX)
        must(err == SM_OK && nb == walked && nr == walked_records, "blob validator disagrees");
    else
        must(err != SM_OK && why != NULL, "blob validator accepted a bad blob");
    with_good_crc(p, size);
    free(p);
    return 0;
}
