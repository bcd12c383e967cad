/* test_batch.c - record batch v2: encode/validate round trip, every field
 * corrupted, truncation at every length, patches, record iteration. */
#include "batch.h"
#include "crc32c.h"
#include "sm_test.h"

/* Encode a batch of n records; record i has key "k<i>" (null for i == 1),
 * value of i*3 bytes, and i % 3 headers. */
static void make_batch(sm_wbuf_t *w, int n, int64_t ts0)
{
    static char keys[64][16];
    static uint8_t vals[64][200];
    static sm_record_header_t hdrs[3] = {
        {(const uint8_t *)"h0", 2, (const uint8_t *)"v0", 2},
        {(const uint8_t *)"h1", 2, NULL, -1},
        {(const uint8_t *)"", 0, (const uint8_t *)"", 0},
    };
    sm_record_in_t recs[64];
    for (int i = 0; i < n; i++) {
        snprintf(keys[i], sizeof keys[i], "k%d", i);
        memset(vals[i], 'a' + i % 26, sizeof vals[i]);
        recs[i] = (sm_record_in_t){
            .key = i == 1 ? NULL : keys[i],
            .key_len = i == 1 ? -1 : (int32_t)strlen(keys[i]),
            .value = vals[i],
            .value_len = i * 3,
            .timestamp = ts0 + i * 10,
            .nheaders = i % 3,
            .headers = hdrs,
        };
    }
    sm_batch_params_t bp = {.base_offset = 0, .leader_epoch = -1, .producer_id = -1,
                            .producer_epoch = -1, .base_sequence = -1};
    sm_batch_encode(w, &bp, recs, n);
}

static void test_round_trip(void)
{
    sm_wbuf_t w;
    sm_wbuf_init(&w);
    make_batch(&w, 5, 1000);
    sm_batch_info_t b;
    const char *why = NULL;
    CHECK_EQ(sm_batch_validate(w.mem, w.len, &b, &why), SM_OK);
    CHECK_EQ(b.magic, 2);
    CHECK_EQ(b.record_count, 5);
    CHECK_EQ(b.last_offset_delta, 4);
    CHECK_EQ(b.base_timestamp, 1000);
    CHECK_EQ(b.max_timestamp, 1040);
    CHECK_EQ(b.producer_id, -1);
    CHECK_EQ(sm_batch_total_size(&b), w.len);
    CHECK_EQ(b.crc, sm_crc32c(0, w.mem + 21, w.len - 21));

    sm_record_iter_t it;
    sm_record_t r;
    CHECK_EQ(sm_record_iter_init(&it, w.mem, w.len), SM_OK);
    int i = 0;
    sm_err_t err;
    while ((err = sm_record_iter_next(&it, &r)) == SM_OK) {
        CHECK_EQ(r.offset_delta, i);
        CHECK_EQ(r.timestamp_delta, i * 10);
        CHECK_EQ(r.value_len, i * 3);
        CHECK_EQ(r.header_count, i % 3);
        if (i == 1) {
            CHECK(r.key == NULL);
            CHECK_EQ(r.key_len, -1);
        } else {
            char k[16];
            snprintf(k, sizeof k, "k%d", i);
            CHECK(r.key_len == (int32_t)strlen(k) && memcmp(r.key, k, strlen(k)) == 0);
        }
        sm_rd_t hr;
        sm_rd_init(&hr, r.headers, r.headers_len);
        sm_record_header_t h;
        int nh = 0;
        while (sm_record_header_next(&hr, &h) == SM_OK)
            nh++;
        CHECK_EQ(nh, i % 3);
        i++;
    }
    CHECK_EQ(err, SM_ERR_NOT_FOUND);
    CHECK_EQ(i, 5);

    /* several batches back to back */
    make_batch(&w, 1, 5);
    make_batch(&w, 60, 7);
    int nb;
    int32_t nr;
    CHECK_EQ(sm_batches_validate(w.mem, w.len, &nb, &nr, &why), SM_OK);
    CHECK_EQ(nb, 3);
    CHECK_EQ(nr, 66);
    CHECK_EQ(sm_batches_validate(w.mem, 0, &nb, &nr, &why), SM_ERR_INVALID);
    /* trailing garbage after the last batch */
    CHECK(sm_batches_validate(w.mem, w.len - 1, &nb, &nr, &why) != SM_OK);
    sm_wbuf_free(&w);
}

static void test_truncation(void)
{
    sm_wbuf_t w;
    sm_wbuf_init(&w);
    make_batch(&w, 7, 0);
    int failures = 0;
    for (size_t len = 0; len < w.len; len++) {
        /* a fresh copy of exactly len bytes so ASan catches overreads */
        uint8_t *p = malloc(len ? len : 1);
        memcpy(p, w.mem, len);
        sm_batch_info_t b;
        const char *why = NULL;
        sm_err_t err = sm_batch_validate(p, len, &b, &why);
        if (err == SM_OK || why == NULL)
            failures++;
        int nb;
        int32_t nr;
        if (sm_batches_validate(p, len, &nb, &nr, &why) == SM_OK)
            failures++;
        if (sm_batch_header_parse(p, len, &b) == SM_OK && len < SM_BATCH_HEADER_SIZE)
            failures++;
        free(p);
    }
    CHECK_EQ(failures, 0);
    sm_wbuf_free(&w);
}

/* Recompute the CRC after editing a field inside the CRC-covered range, so
 * the value check (not the CRC) must catch it. */
static void fix_crc(uint8_t *p, size_t len)
{
    uint32_t c = sm_crc32c(0, p + 21, len - 21);
    p[17] = (uint8_t)(c >> 24);
    p[18] = (uint8_t)(c >> 16);
    p[19] = (uint8_t)(c >> 8);
    p[20] = (uint8_t)c;
}

static sm_err_t validate_copy(const sm_wbuf_t *w, void (*edit)(uint8_t *, size_t), bool crc)
{
    uint8_t *p = malloc(w->len);
    memcpy(p, w->mem, w->len);
    edit(p, w->len);
    if (crc)
        fix_crc(p, w->len);
    sm_batch_info_t b;
    const char *why = NULL;
    sm_err_t err = sm_batch_validate(p, w->len, &b, &why);
    if (err != SM_OK && !why)
        err = 99; /* every failure must say why */
    free(p);
    return err;
}

static void e_len_small(uint8_t *p, size_t n) { p[8] = p[9] = p[10] = 0; p[11] = 10; (void)n; }
static void e_len_big(uint8_t *p, size_t n) { p[11] += 1; (void)n; }
static void e_len_neg(uint8_t *p, size_t n) { p[8] = 0x80; (void)n; }
static void e_magic1(uint8_t *p, size_t n) { p[16] = 1; (void)n; }
static void e_magic3(uint8_t *p, size_t n) { p[16] = 3; (void)n; }
static void e_crc(uint8_t *p, size_t n) { p[17] ^= 1; (void)n; }
static void e_attr_codec(uint8_t *p, size_t n) { p[22] |= 7; (void)n; }
static void e_lod(uint8_t *p, size_t n) { p[26] += 1; (void)n; }
static void e_lod_neg(uint8_t *p, size_t n) { p[23] = 0xff; (void)n; }
static void e_count(uint8_t *p, size_t n) { p[60] += 1; (void)n; }
static void e_count_zero(uint8_t *p, size_t n) { p[57] = p[58] = p[59] = p[60] = 0; p[23] = p[24] = p[25] = p[26] = 0xff; (void)n; }
static void e_payload(uint8_t *p, size_t n) { p[n - 3] ^= 0x40; }
static void e_ts(uint8_t *p, size_t n) { p[40] ^= 1; (void)n; }
/* first record's length varint (one byte, zigzag): make it 1 larger */
static void e_rec_len(uint8_t *p, size_t n) { p[61] += 2; (void)n; }
/* first record's offsetDelta: record = len, attrs, tsDelta(0), offsetDelta */
static void e_rec_odelta(uint8_t *p, size_t n) { p[64] = 2; (void)n; }

static void test_corruption(void)
{
    sm_wbuf_t w;
    sm_wbuf_init(&w);
    make_batch(&w, 4, 100);
    CHECK_EQ(validate_copy(&w, e_len_small, false), SM_ERR_PARSE);
    CHECK_EQ(validate_copy(&w, e_len_big, false), SM_ERR_PARSE);
    CHECK_EQ(validate_copy(&w, e_len_neg, false), SM_ERR_PARSE);
    CHECK_EQ(validate_copy(&w, e_magic1, false), SM_ERR_UNSUPPORTED);
    CHECK_EQ(validate_copy(&w, e_magic3, false), SM_ERR_INVALID);
    CHECK_EQ(validate_copy(&w, e_crc, false), SM_ERR_CORRUPT);
    CHECK_EQ(validate_copy(&w, e_payload, false), SM_ERR_CORRUPT);
    CHECK_EQ(validate_copy(&w, e_ts, false), SM_ERR_CORRUPT);
    CHECK_EQ(validate_copy(&w, e_attr_codec, true), SM_ERR_INVALID);
    CHECK_EQ(validate_copy(&w, e_lod, true), SM_ERR_INVALID);
    CHECK_EQ(validate_copy(&w, e_lod_neg, true), SM_ERR_INVALID);
    CHECK_EQ(validate_copy(&w, e_count, true), SM_ERR_INVALID);
    CHECK_EQ(validate_copy(&w, e_count_zero, true), SM_ERR_INVALID);
    CHECK_EQ(validate_copy(&w, e_rec_len, true), SM_ERR_PARSE);
    CHECK_EQ(validate_copy(&w, e_rec_odelta, true), SM_ERR_INVALID);
    /* every single-bit flip anywhere is detected (CRC or a range check) */
    int undetected = 0;
    for (size_t i = 0; i < w.len; i++) {
        if (i < 8 || (i >= 12 && i < 16))
            continue; /* baseOffset and leader epoch are outside the CRC by design */
        for (int bit = 0; bit < 8; bit++) {
            w.mem[i] ^= (uint8_t)(1 << bit);
            sm_batch_info_t b;
            if (sm_batch_validate(w.mem, w.len, &b, NULL) == SM_OK)
                undetected++;
            w.mem[i] ^= (uint8_t)(1 << bit);
        }
    }
    CHECK_EQ(undetected, 0);
    /* magic 0/1 through the blob validator */
    int nb;
    int32_t nr;
    const char *why;
    w.mem[16] = 1;
    CHECK_EQ(sm_batches_validate(w.mem, w.len, &nb, &nr, &why), SM_ERR_UNSUPPORTED);
    w.mem[16] = 0;
    CHECK_EQ(sm_batches_validate(w.mem, w.len, &nb, &nr, &why), SM_ERR_UNSUPPORTED);
    sm_wbuf_free(&w);
}

static void test_patches(void)
{
    sm_wbuf_t w;
    sm_wbuf_init(&w);
    make_batch(&w, 3, 500);
    sm_batch_info_t b;
    sm_batch_set_base_offset(w.mem, 0x123456789LL);
    sm_batch_set_leader_epoch(w.mem, 77);
    CHECK_EQ(sm_batch_validate(w.mem, w.len, &b, NULL), SM_OK);
    CHECK_EQ(b.base_offset, 0x123456789LL);
    CHECK_EQ(b.leader_epoch, 77);
    CHECK_EQ(sm_batch_last_offset(&b), 0x123456789LL + 2);
    sm_batch_set_log_append_time(w.mem, 99999);
    CHECK_EQ(sm_batch_validate(w.mem, w.len, &b, NULL), SM_OK);
    CHECK_EQ(b.max_timestamp, 99999);
    CHECK(b.attributes & SM_BATCH_ATTR_LOG_APPEND_TIME);
    CHECK_EQ(b.base_timestamp, 500);
    sm_wbuf_free(&w);
}

/* A compressed batch: records are opaque, only the header is checked. */
static void test_compressed_opaque(void)
{
    sm_wbuf_t w;
    sm_wbuf_init(&w);
    make_batch(&w, 2, 1);
    w.mem[22] |= SM_COMPRESSION_ZSTD; /* records now "compressed" garbage */
    fix_crc(w.mem, w.len);
    sm_batch_info_t b;
    CHECK_EQ(sm_batch_validate(w.mem, w.len, &b, NULL), SM_OK);
    sm_record_iter_t it;
    CHECK_EQ(sm_record_iter_init(&it, w.mem, w.len), SM_ERR_UNSUPPORTED);
    sm_wbuf_free(&w);
}

int main(void)
{
    RUN(test_round_trip);
    RUN(test_truncation);
    RUN(test_corruption);
    RUN(test_patches);
    RUN(test_compressed_opaque);
    TEST_MAIN_END();
}
