/* test_batch.c - record batch v2: encode/validate round trip, every field
 * corrupted, truncation at every length, patches, record iteration; the
 * record walk of sm_batch_validate() case by case (every rejection, edge
 * cases that must pass) and against the reference decoder (batch_ref.h) on
 * random valid and mutated batches. */
#include "batch.h"
#include "batch_ref.h"
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

/* ------------------------------------------------ the record walk, by case */

/*
 * Records are written in a small notation, tokens separated by spaces:
 *   0c        one byte, two hex digits
 *   z-1       a zigzag varint/varlong of the (64-bit) value
 *   u300      an unsigned varint of the raw value
 *   r5        5 filler bytes
 *   [ ... ]   a record: its zigzag length varint is computed from what is
 *             between the brackets
 * so "[00 z0 z0 z-1 z0 z0]" is the smallest record: attributes 0,
 * timestampDelta 0, offsetDelta 0, null key, empty value, no headers.
 */
static void spec_put(sm_wbuf_t *w, const char *spec)
{
    size_t open = SIZE_MAX;
    const char *s = spec;
    while (*s) {
        if (*s == ' ') {
            s++;
            continue;
        }
        char *e;
        if (*s == '[') {
            SM_ASSERT(open == SIZE_MAX); /* records do not nest */
            open = w->len;
            s++;
        } else if (*s == ']') {
            SM_ASSERT(open != SIZE_MAX);
            size_t body = w->len - open;
            uint8_t *copy = malloc(body ? body : 1);
            if (body)
                memcpy(copy, w->mem + open, body);
            w->len = open;
            sm_wbuf_varint(w, (int32_t)body);
            sm_wbuf_bytes(w, copy, body);
            free(copy);
            open = SIZE_MAX;
            s++;
        } else if (*s == 'z') {
            sm_wbuf_varlong(w, strtoll(s + 1, &e, 10));
            s = e;
        } else if (*s == 'u') {
            sm_wbuf_uvarint(w, strtoull(s + 1, &e, 10));
            s = e;
        } else if (*s == 'r') {
            long n = strtol(s + 1, &e, 10);
            for (long i = 0; i < n; i++)
                sm_wbuf_u8(w, 'x');
            s = e;
        } else {
            unsigned long b = strtoul(s, &e, 16);
            SM_ASSERT(e == s + 2 && b < 256);
            sm_wbuf_u8(w, (uint8_t)b);
            s = e;
        }
    }
    SM_ASSERT(open == SIZE_MAX);
}

/* A batch (in a fresh exact-size buffer, so ASan sees overreads) around
 * the given record bytes, claiming count records, with a good CRC. */
static uint8_t *wrap_records(const uint8_t *recs, size_t n, int32_t count, size_t *len)
{
    sm_wbuf_t w;
    sm_wbuf_init(&w);
    sm_wbuf_i64(&w, 0);
    sm_wbuf_i32(&w, (int32_t)(SM_BATCH_HEADER_SIZE - SM_BATCH_LOG_OVERHEAD + n));
    sm_wbuf_i32(&w, -1);
    sm_wbuf_i8(&w, SM_BATCH_MAGIC);
    sm_wbuf_u32(&w, 0);
    sm_wbuf_i16(&w, 0);
    sm_wbuf_i32(&w, count - 1);
    sm_wbuf_i64(&w, 1000);
    sm_wbuf_i64(&w, 1000);
    sm_wbuf_i64(&w, -1);
    sm_wbuf_i16(&w, -1);
    sm_wbuf_i32(&w, -1);
    sm_wbuf_i32(&w, count);
    sm_wbuf_bytes(&w, recs, n);
    uint32_t crc = sm_crc32c(0, w.mem + SM_BATCH_OFF_ATTRIBUTES, w.len - SM_BATCH_OFF_ATTRIBUTES);
    w.mem[17] = (uint8_t)(crc >> 24);
    w.mem[18] = (uint8_t)(crc >> 16);
    w.mem[19] = (uint8_t)(crc >> 8);
    w.mem[20] = (uint8_t)crc;
    uint8_t *p = malloc(w.len);
    memcpy(p, w.mem, w.len);
    *len = w.len;
    sm_wbuf_free(&w);
    return p;
}

/* Validate with both the walk and the reference; they must agree on the
 * error and the reason. Returns the walk's verdict. */
static sm_err_t validate_both(const uint8_t *p, size_t len, const char **why)
{
    sm_batch_info_t b, rb;
    const char *w1 = NULL, *w2 = NULL;
    sm_err_t e1 = sm_batch_validate(p, len, &b, &w1);
    sm_err_t e2 = ref_batch_validate(p, len, &rb, &w2);
    CHECK_EQ(e1, e2);
    if (e1 != SM_OK || e2 != SM_OK) {
        CHECK(w1 != NULL && w2 != NULL && strcmp(w1, w2) == 0);
        if (w1 && w2 && strcmp(w1, w2) != 0)
            fprintf(stderr, "  walk says \"%s\", reference \"%s\"\n", w1, w2);
    }
    *why = w1;
    return e1;
}

#define TAIL 1 /* the case is about the end of the batch: no records after it */

typedef struct walk_case {
    const char *name;
    int32_t count;
    const char *spec;
    sm_err_t err;
    const char *why;
    int flags;
} walk_case_t;

static const walk_case_t walk_cases[] = {
    /* accepted */
    {"smallest record", 1, "[00 z0 z0 z-1 z0 z0]", SM_OK, NULL, 0},
    {"null key, 100-byte value", 1, "[00 z0 z0 z-1 z100 r100 z0]", SM_OK, NULL, 0},
    {"empty key and value", 1, "[00 z0 z0 z0 z0 z0]", SM_OK, NULL, 0},
    {"null value (tombstone)", 1, "[00 z0 z0 z3 r3 z-1 z0]", SM_OK, NULL, 0},
    {"any attributes", 1, "[ff z0 z0 z-1 z0 z0]", SM_OK, NULL, 0},
    {"two records", 2, "[00 z0 z0 z-1 z1 r1 z0] [00 z5 z1 z2 r2 z0 z0]", SM_OK, NULL, 0},
    {"2-byte value length", 1, "[00 z0 z0 z-1 z8191 r8191 z0]", SM_OK, NULL, 0},
    {"3-byte value length", 1, "[00 z0 z0 z-1 z8192 r8192 z0]", SM_OK, NULL, 0},
    {"2-byte timestampDelta", 1, "[00 z-8000 z0 z-1 z0 z0]", SM_OK, NULL, 0},
    {"10-byte timestampDelta", 1, "[00 z-9223372036854775808 z0 z-1 z0 z0]", SM_OK, NULL, 0},
    {"10-byte timestampDelta, max", 1, "[00 z9223372036854775807 z0 z-1 z0 z0]", SM_OK, NULL, 0},
    {"5-byte offsetDelta (padded 0)", 1, "[00 z0 80 80 80 80 00 z-1 z0 z0]", SM_OK, NULL, 0},
    {"5-byte key length (padded 2)", 1, "[00 z0 z0 84 80 80 80 00 r2 z0 z0]", SM_OK, NULL, 0},
    {"5-byte null key (padded -1)", 1, "[00 z0 z0 81 80 80 80 00 z0 z0]", SM_OK, NULL, 0},
    {"10-byte timestampDelta (padded 0)", 1, "[00 80 80 80 80 80 80 80 80 80 00 z0 z-1 z0 z0]",
     SM_OK, NULL, 0},
    {"2-byte record length (padded)", 1, "8c 00 00 z0 z0 z-1 z0 z0", SM_OK, NULL, 0},
    {"headers, null header value", 1, "[00 z0 z0 z-1 z0 z3 z1 r1 z-1 z0 z0 z2 r2 z3 r3]", SM_OK,
     NULL, 0},
    /* record length */
    {"record length varint truncated", 1, "80", SM_ERR_PARSE, "bad record length varint", TAIL},
    {"record length varint 6 bytes", 1, "80 80 80 80 80 00 [00 z0 z0 z-1 z0 z0]", SM_ERR_PARSE,
     "bad record length varint", 0},
    {"record length varint 5th byte > 0x0f", 1, "80 80 80 80 10 [00 z0 z0 z-1 z0 z0]",
     SM_ERR_PARSE, "bad record length varint", 0},
    {"record length negative", 1, "z-1 00 z0 z0 z-1 z0 z0", SM_ERR_PARSE,
     "record length beyond batch end", 0},
    {"record length most negative", 1, "ff ff ff ff 0f 00 z0 z0 z-1 z0 z0", SM_ERR_PARSE,
     "record length beyond batch end", 0},
    {"record length past batch end", 1, "z7 00 z0 z0 z-1 z0 z0", SM_ERR_PARSE,
     "record length beyond batch end", TAIL},
    {"record length huge", 1, "fe ff ff ff 0f 00 z0 z0 z-1 z0 z0", SM_ERR_PARSE,
     "record length beyond batch end", 0},
    {"fewer records than the count", 2, "[00 z0 z0 z-1 z0 z0]", SM_ERR_PARSE,
     "bad record length varint", TAIL},
    /* attributes, timestampDelta, offsetDelta */
    {"empty record", 1, "[]", SM_ERR_PARSE, "truncated record header", 0},
    {"attributes only", 1, "[00]", SM_ERR_PARSE, "truncated record header", 0},
    {"timestampDelta truncated", 1, "[00 80]", SM_ERR_PARSE, "truncated record header", 0},
    {"timestampDelta 11 bytes", 1, "[00 80 80 80 80 80 80 80 80 80 80 00 z0 z-1 z0 z0]",
     SM_ERR_PARSE, "truncated record header", 0},
    {"timestampDelta 10th byte > 1", 1, "[00 80 80 80 80 80 80 80 80 80 02 z0 z-1 z0 z0]",
     SM_ERR_PARSE, "truncated record header", 0},
    {"offsetDelta missing", 1, "[00 z0]", SM_ERR_PARSE, "truncated record header", 0},
    {"offsetDelta truncated", 1, "[00 z0 80]", SM_ERR_PARSE, "truncated record header", 0},
    {"offsetDelta 6 bytes", 1, "[00 z0 80 80 80 80 80 00 z-1 z0 z0]", SM_ERR_PARSE,
     "truncated record header", 0},
    {"offsetDelta 5th byte > 0x0f", 1, "[00 z0 80 80 80 80 10 z-1 z0 z0]", SM_ERR_PARSE,
     "truncated record header", 0},
    {"offsetDelta not the index", 1, "[00 z0 z1 z-1 z0 z0]", SM_ERR_INVALID,
     "record offsetDelta out of sequence", 0},
    {"offsetDelta -1", 1, "[00 z0 z-1 z-1 z0 z0]", SM_ERR_INVALID,
     "record offsetDelta out of sequence", 0},
    {"second offsetDelta repeats", 2, "[00 z0 z0 z-1 z0 z0] [00 z0 z0 z-1 z0 z0]",
     SM_ERR_INVALID, "record offsetDelta out of sequence", 0},
    {"offsetDelta wrong and key bad: framing first", 1, "[00 z0 z7 z-2 z0 z0]", SM_ERR_PARSE,
     "bad record key", 0},
    {"offsetDelta wrong and length off: framing first", 1, "[00 z0 z7 z-1 z0 z0 00]",
     SM_ERR_PARSE, "record length does not match its fields", 0},
    /* key */
    {"key length missing", 1, "[00 z0 z0]", SM_ERR_PARSE, "bad record key", 0},
    {"key length -2", 1, "[00 z0 z0 z-2 z0 z0]", SM_ERR_PARSE, "bad record key", 0},
    {"key length most negative", 1, "[00 z0 z0 ff ff ff ff 0f z0 z0]", SM_ERR_PARSE,
     "bad record key", 0},
    {"key past record end", 1, "[00 z0 z0 z5 r4] [00 z0 z1 z-1 z0 z0]", SM_ERR_PARSE,
     "bad record key", TAIL},
    {"key past record end, more after", 1, "[00 z0 z0 z5 r4] r60", SM_ERR_PARSE,
     "bad record key", 0},
    {"key length huge", 1, "[00 z0 z0 fe ff ff ff 0f z0 z0]", SM_ERR_PARSE, "bad record key", 0},
    {"key length 6 bytes", 1, "[00 z0 z0 80 80 80 80 80 00 z0 z0]", SM_ERR_PARSE,
     "bad record key", 0},
    {"key length truncated", 1, "[00 z0 z0 80]", SM_ERR_PARSE, "bad record key", 0},
    /* value */
    {"value length missing", 1, "[00 z0 z0 z-1]", SM_ERR_PARSE, "bad record value", 0},
    {"value length -2", 1, "[00 z0 z0 z-1 z-2 z0]", SM_ERR_PARSE, "bad record value", 0},
    {"value past record end", 1, "[00 z0 z0 z-1 z100 r99]", SM_ERR_PARSE, "bad record value",
     0},
    {"value past record end by the header count", 1, "[00 z0 z0 z-1 z3 r1 z0]", SM_ERR_PARSE,
     "bad record value", 0},
    {"value length truncated", 1, "[00 z0 z0 z-1 80]", SM_ERR_PARSE, "bad record value", 0},
    {"value length 5th byte > 0x0f", 1, "[00 z0 z0 z-1 80 80 80 80 10 z0]", SM_ERR_PARSE,
     "bad record value", 0},
    /* headers */
    {"header count missing", 1, "[00 z0 z0 z-1 z0]", SM_ERR_PARSE, "bad record header count",
     0},
    {"header count negative", 1, "[00 z0 z0 z-1 z0 z-1]", SM_ERR_PARSE,
     "bad record header count", 0},
    {"header count truncated", 1, "[00 z0 z0 z-1 z0 80]", SM_ERR_PARSE,
     "bad record header count", 0},
    {"header count 6 bytes", 1, "[00 z0 z0 z-1 z0 80 80 80 80 80 00]", SM_ERR_PARSE,
     "bad record header count", 0},
    {"more headers than bytes", 1, "[00 z0 z0 z-1 z0 z2 z1 r1 z-1]", SM_ERR_PARSE,
     "bad record header", 0},
    {"huge header count", 1, "[00 z0 z0 z-1 z0 fe ff ff ff 07 z0 z0]", SM_ERR_PARSE,
     "bad record header", 0},
    {"header key null", 1, "[00 z0 z0 z-1 z0 z1 z-1 z0]", SM_ERR_PARSE, "bad record header", 0},
    {"header key -3", 1, "[00 z0 z0 z-1 z0 z1 z-3 z0]", SM_ERR_PARSE, "bad record header", 0},
    {"header key past record end", 1, "[00 z0 z0 z-1 z0 z1 z4 r3]", SM_ERR_PARSE,
     "bad record header", 0},
    {"header key length truncated", 1, "[00 z0 z0 z-1 z0 z1 80]", SM_ERR_PARSE,
     "bad record header", 0},
    {"header value missing", 1, "[00 z0 z0 z-1 z0 z1 z1 r1]", SM_ERR_PARSE, "bad record header",
     0},
    {"header value -2", 1, "[00 z0 z0 z-1 z0 z1 z1 r1 z-2]", SM_ERR_PARSE, "bad record header",
     0},
    {"header value past record end", 1, "[00 z0 z0 z-1 z0 z1 z1 r1 z3 r2]", SM_ERR_PARSE,
     "bad record header", 0},
    {"header value length 6 bytes", 1, "[00 z0 z0 z-1 z0 z1 z0 80 80 80 80 80 00]",
     SM_ERR_PARSE, "bad record header", 0},
    /* record length against its fields, and the batch end */
    {"record longer than its fields", 1, "[00 z0 z0 z-1 z0 z0 00]", SM_ERR_PARSE,
     "record length does not match its fields", 0},
    {"record longer than its fields by a header", 1, "[00 z0 z0 z-1 z0 z0 z0 z0]",
     SM_ERR_PARSE, "record length does not match its fields", 0},
    {"record shorter than its fields", 1, "z5 00 z0 z0 z-1 z0 z0", SM_ERR_PARSE,
     "bad record header count", 0},
    {"bytes left after the last record", 1, "[00 z0 z0 z-1 z0 z0] 00", SM_ERR_PARSE,
     "bytes left after the last record", TAIL},
    {"a whole record left over", 1, "[00 z0 z0 z-1 z0 z0] [00 z0 z1 z-1 z0 z0]", SM_ERR_PARSE,
     "bytes left after the last record", TAIL},
};

/* Each case alone (its last record at the batch end, checked carefully),
 * then, unless TAIL, followed by good records (so that it is checked by the
 * fast path, WALK_SLOP bytes or more before the end). */
static void test_walk_cases(void)
{
    for (size_t c = 0; c < SM_ARRAY_LEN(walk_cases); c++) {
        const walk_case_t *k = &walk_cases[c];
        for (int variant = 0; variant < 2; variant++) {
            if (variant == 1 && (k->flags & TAIL))
                continue;
            sm_wbuf_t w;
            sm_wbuf_init(&w);
            spec_put(&w, k->spec);
            int32_t count = k->count;
            if (variant == 1) {
                for (int j = 0; j < 4; j++) {
                    char more[64];
                    snprintf(more, sizeof more, "[00 z0 z%d z-1 z10 r10 z0]", count++);
                    spec_put(&w, more);
                }
            }
            size_t len;
            uint8_t *p = wrap_records(w.mem, w.len, count, &len);
            const char *why = NULL;
            sm_err_t err = validate_both(p, len, &why);
            bool ok = err == k->err &&
                      (k->err == SM_OK ? why == NULL : why && strcmp(why, k->why) == 0);
            CHECK(ok);
            if (!ok)
                fprintf(stderr, "  case \"%s\" (variant %d): got %s \"%s\"\n", k->name, variant,
                        sm_err_str(err), why ? why : "");
            free(p);
            sm_wbuf_free(&w);
        }
    }
}

/* The fast path reads past a record's end into the rest of the batch (at
 * most 36 bytes, the slack it requires: see batch.c). An empty record
 * followed by the longest fields that can be read before a length check
 * stops the walk, cut at every length: under ASan, a slack requirement
 * that is too small shows up here as a read past the end of the buffer. */
static void test_walk_slack(void)
{
    static const char *const reach = "00"                            /* attributes */
                                     " 80 80 80 80 80 80 80 80 80 00" /* timestampDelta */
                                     " 80 80 80 80 00"                /* offsetDelta 0 */
                                     " 81 80 80 80 00"                /* key null */
                                     " 81 80 80 80 00"                /* value null */
                                     " 82 80 80 80 00"                /* 1 header */
                                     " 80 80 80 80 00"                /* header key "" */
                                     " 00 00 00 00";                  /* to 40 bytes */
    sm_wbuf_t all;
    sm_wbuf_init(&all);
    spec_put(&all, reach);
    CHECK_EQ(all.len, 40);
    for (size_t cut = 0; cut <= all.len; cut++) {
        sm_wbuf_t w;
        sm_wbuf_init(&w);
        spec_put(&w, "z0");
        sm_wbuf_bytes(&w, all.mem, cut);
        size_t len;
        uint8_t *p = wrap_records(w.mem, w.len, 1, &len);
        const char *why = NULL;
        CHECK_EQ(validate_both(p, len, &why), SM_ERR_PARSE);
        CHECK(why && strcmp(why, "truncated record header") == 0);
        free(p);
        sm_wbuf_free(&w);
    }
    sm_wbuf_free(&all);
}

/* Many records: offsetDeltas of 1 to 4 bytes (zigzag 2i >= 2^21 from
 * i = 2^20), all through the fast path but the last few. */
static void test_walk_many_records(void)
{
    const int32_t n = (1 << 20) + 1000;
    sm_wbuf_t w;
    sm_wbuf_init(&w);
    for (int32_t i = 0; i < n; i++) {
        int od = sm_uvarint_size((uint64_t)i << 1);
        sm_wbuf_varint(&w, 5 + od); /* attrs, ts, offsetDelta, key, value, headers */
        sm_wbuf_u8(&w, 0);
        sm_wbuf_varlong(&w, i % 3);
        sm_wbuf_varint(&w, i);
        sm_wbuf_varint(&w, -1);
        sm_wbuf_varint(&w, 0);
        sm_wbuf_varint(&w, 0);
    }
    size_t len;
    uint8_t *p = wrap_records(w.mem, w.len, n, &len);
    const char *why = NULL;
    CHECK_EQ(validate_both(p, len, &why), SM_OK);
    /* the same with the count one too high: runs out at the very end */
    free(p);
    p = wrap_records(w.mem, w.len, n + 1, &len);
    CHECK_EQ(validate_both(p, len, &why), SM_ERR_PARSE);
    free(p);
    sm_wbuf_free(&w);
}

/* ------------------------------------------ the record walk, differential */

static uint64_t rng_state;
static uint64_t rnd(void) /* xorshift64*: reproducible from the seed */
{
    rng_state ^= rng_state >> 12;
    rng_state ^= rng_state << 25;
    rng_state ^= rng_state >> 27;
    return rng_state * 2685821657736338717ULL;
}
static uint32_t rnd_below(uint32_t n) { return (uint32_t)(rnd() % n); }

/* An unsigned varint of v, sometimes padded with continuation bytes up to
 * max bytes (non-canonical but valid: the walk must accept it). */
static void put_uv_any(sm_wbuf_t *w, uint64_t v, int max)
{
    int need = sm_uvarint_size(v);
    int n = need < max && rnd_below(16) == 0 ? need + 1 + (int)rnd_below((uint32_t)(max - need))
                                             : need;
    for (int i = 0; i < n; i++) {
        uint8_t b = (uint8_t)(v & 0x7f);
        v >>= 7;
        sm_wbuf_u8(w, i < n - 1 ? b | 0x80 : b);
    }
}
static void put_zz32(sm_wbuf_t *w, int32_t v)
{
    put_uv_any(w, (uint32_t)(((uint32_t)v << 1) ^ (uint32_t)(v >> 31)), 5);
}
static void put_zz64(sm_wbuf_t *w, int64_t v)
{
    put_uv_any(w, ((uint64_t)v << 1) ^ (uint64_t)(v >> 63), 10);
}

static int32_t rnd_len(bool nullable)
{
    switch (rnd_below(10)) {
    case 0:
        return nullable ? -1 : 0;
    case 1:
        return 0;
    case 2:
        return 60 + (int32_t)rnd_below(200); /* 2-byte lengths */
    case 3:
        return rnd_below(8) == 0 ? 8000 + (int32_t)rnd_below(2000) : 1; /* 3 bytes */
    default:
        return (int32_t)rnd_below(20);
    }
}

static void put_bytes_field(sm_wbuf_t *w, int32_t len)
{
    put_zz32(w, len);
    for (int32_t i = 0; i < len; i++)
        sm_wbuf_u8(w, (uint8_t)rnd());
}

/* Random valid records region of n records. */
static void gen_records(sm_wbuf_t *w, int32_t n)
{
    sm_wbuf_t body;
    sm_wbuf_init(&body);
    for (int32_t i = 0; i < n; i++) {
        sm_wbuf_reset(&body);
        sm_wbuf_u8(&body, (uint8_t)rnd());
        static const int64_t ts[] = {0, 1, -1, 63, 64, -8193, 100000, INT64_MIN, INT64_MAX};
        put_zz64(&body, rnd_below(3) ? (int64_t)rnd_below(50) : ts[rnd_below(9)]);
        put_zz32(&body, i);
        put_bytes_field(&body, rnd_len(true));
        put_bytes_field(&body, rnd_len(true));
        int32_t nh = rnd_below(3) ? 0 : (int32_t)rnd_below(5);
        put_zz32(&body, nh);
        for (int32_t h = 0; h < nh; h++) {
            put_bytes_field(&body, rnd_len(false) % 30);
            put_bytes_field(&body, rnd_len(true) % 30);
        }
        put_zz32(w, (int32_t)body.len);
        sm_wbuf_bytes(w, body.mem, body.len);
    }
    sm_wbuf_free(&body);
}

/* One random edit of the records region (bytes shift, truncate, grow). */
static void mutate(sm_wbuf_t *w, int32_t *count)
{
    static const uint8_t special[] = {0x00, 0x01, 0x02, 0x03, 0x7e, 0x7f, 0x80, 0x81, 0xfe, 0xff};
    size_t at = w->len ? rnd_below((uint32_t)w->len) : 0;
    switch (rnd_below(8)) {
    case 0: /* flip a bit */
        if (w->len)
            w->mem[at] ^= (uint8_t)(1 << rnd_below(8));
        break;
    case 1: /* a special byte: sign, continuation, null */
        if (w->len)
            w->mem[at] = special[rnd_below(SM_ARRAY_LEN(special))];
        break;
    case 2: /* a random byte */
        if (w->len)
            w->mem[at] = (uint8_t)rnd();
        break;
    case 3: /* insert a byte */
        sm_wbuf_u8(w, 0);
        memmove(w->mem + at + 1, w->mem + at, w->len - 1 - at);
        w->mem[at] = special[rnd_below(SM_ARRAY_LEN(special))];
        break;
    case 4: /* delete a byte */
        if (w->len) {
            memmove(w->mem + at, w->mem + at + 1, w->len - at - 1);
            w->len--;
        }
        break;
    case 5: /* truncate */
        w->len = at;
        break;
    case 6: /* count off by one either way (lastOffsetDelta follows) */
        *count += rnd_below(2) ? 1 : -1;
        if (*count < 1)
            *count = 2;
        break;
    default: /* trailing bytes */
        for (uint32_t i = 1 + rnd_below(4); i > 0; i--)
            sm_wbuf_u8(w, (uint8_t)rnd());
        break;
    }
}

/* Random valid batches, and the same batches edited (with the CRC made
 * good again, so the records are what gets checked): the walk and the
 * reference must agree on the error and the reason every time. */
static void test_walk_differential(void)
{
    uint64_t seed = 0x5eed5a115aULL;
    const char *env = getenv("SM_TEST_SEED");
    if (env)
        seed = strtoull(env, NULL, 0);
    rng_state = seed ? seed : 1;
    fprintf(stderr, "   seed %llu (SM_TEST_SEED)\n", (unsigned long long)seed);
    /* every reason the record walk can give, to show the edits reach them */
    static const char *const reasons[] = {
        "bad record length varint",   "record length beyond batch end",
        "truncated record header",    "record offsetDelta out of sequence",
        "bad record key",             "bad record value",
        "bad record header count",    "bad record header",
        "record length does not match its fields", "bytes left after the last record",
    };
    int seen[SM_ARRAY_LEN(reasons)] = {0};
    int accepted = 0, rejected = 0, disagreed = 0;
    sm_wbuf_t w;
    sm_wbuf_init(&w);
    for (int iter = 0; iter < 20000; iter++) {
        sm_wbuf_reset(&w);
        int32_t count = rnd_below(4) ? 1 + (int32_t)rnd_below(12) : 1 + (int32_t)rnd_below(200);
        gen_records(&w, count);
        int edits = iter % 4 == 0 ? 0 : 1 + (int)rnd_below(3);
        for (int e = 0; e < edits; e++)
            mutate(&w, &count);
        size_t len;
        uint8_t *p = wrap_records(w.mem, w.len, count, &len);
        sm_batch_info_t b, rb;
        const char *w1 = NULL, *w2 = NULL;
        sm_err_t e1 = sm_batch_validate(p, len, &b, &w1);
        sm_err_t e2 = ref_batch_validate(p, len, &rb, &w2);
        if (e1 != e2 || (e1 != SM_OK && (!w1 || !w2 || strcmp(w1, w2) != 0))) {
            if (disagreed++ < 5)
                fprintf(stderr, "  iteration %d: walk %s \"%s\", reference %s \"%s\"\n", iter,
                        sm_err_str(e1), w1 ? w1 : "", sm_err_str(e2), w2 ? w2 : "");
        }
        if (edits == 0)
            CHECK_EQ(e1, SM_OK);
        if (e1 == SM_OK)
            accepted++;
        else
            rejected++;
        for (size_t r = 0; r < SM_ARRAY_LEN(reasons); r++)
            seen[r] += e1 != SM_OK && w1 && strcmp(w1, reasons[r]) == 0;
        free(p);
    }
    sm_wbuf_free(&w);
    CHECK_EQ(disagreed, 0);
    fprintf(stderr, "   %d accepted, %d rejected\n", accepted, rejected);
    CHECK(accepted > 5000 && rejected > 5000);
    for (size_t r = 0; r < SM_ARRAY_LEN(reasons); r++) {
        fprintf(stderr, "   %6d %s\n", seen[r], reasons[r]);
        CHECK(seen[r] > 0);
    }
}

int main(void)
{
    RUN(test_round_trip);
    RUN(test_truncation);
    RUN(test_corruption);
    RUN(test_patches);
    RUN(test_compressed_opaque);
    RUN(test_walk_cases);
    RUN(test_walk_slack);
    RUN(test_walk_many_records);
    RUN(test_walk_differential);
    TEST_MAIN_END();
}
