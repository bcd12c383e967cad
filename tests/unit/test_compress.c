/* test_compress.c - the batch codecs and record lookups inside one batch.
 *
 * Codecs: round trip of every codec at sizes around their block sizes;
 * foreign framings built by hand with the codec libraries the way other
 * clients write them (raw and xerial snappy with several, empty and
 * concatenated chunks; LZ4 frames with content size, block and content
 * checksums, big and linked blocks, skippable and concatenated frames;
 * zstd with and without content size, several and skippable frames; gzip
 * members back to back and zlib streams); truncation at every length;
 * every byte of the input damaged (checked frames must fail, none may
 * crash); the max_out bound (exact size passes, one byte less fails, bombs
 * stop early, a raw snappy block claiming 4 GiB allocates nothing).
 * Lookups: batches with out-of-order and negative-delta timestamps in every
 * codec, LogAppendTime, ties, empty and malformed batches, and real batches
 * written by librdkafka (kcat) in each codec. */
#include "batch.h"
#include "batch_find.h"
#include "batch_rewrite.h"
#include "compress.h"
#include "crc32c.h"
#include "sm_test.h"

#define CHECK_OK(e) CHECK_EQ((e), SM_OK)

#include <lz4frame.h>
#include <snappy-c.h>
#include <zlib.h>
#include <zstd.h>

static const sm_codec_t k_codecs[] = {SM_CODEC_NONE, SM_CODEC_GZIP, SM_CODEC_SNAPPY, SM_CODEC_LZ4,
                                      SM_CODEC_ZSTD};

/* Deterministic test data: half text-like (compressible), half noise. */
static uint8_t *make_data(size_t n, uint32_t seed)
{
    uint8_t *p = malloc(n ? n : 1);
    uint32_t x = seed * 2654435761u + 1;
    for (size_t i = 0; i < n; i++) {
        x = x * 1103515245u + 12345u;
        p[i] = (i / 1000) % 2 ? (uint8_t)(x >> 16) : (uint8_t)("kafka samsa record "[i % 19]);
    }
    return p;
}

/* Decompress and compare with want; returns the error. */
static sm_err_t dec_eq(sm_codec_t c, const uint8_t *src, size_t len, size_t max_out,
                       const uint8_t *want, size_t want_len)
{
    uint8_t *out = NULL;
    size_t outlen = 99;
    sm_err_t err = sm_decompress(c, src, len, max_out, &out, &outlen);
    if (err) {
        CHECK(out == NULL);
        CHECK_EQ(outlen, 0);
        return err;
    }
    CHECK(out != NULL);
    CHECK_EQ(outlen, want_len);
    CHECK(outlen == want_len && (want_len == 0 || memcmp(out, want, want_len) == 0));
    free(out);
    return err;
}

static void test_round_trip(void)
{
    static const size_t sizes[] = {0, 1, 17, 4096, 32768, 32769, 65536, 65537, 200000, 1 << 20};
    for (size_t ci = 0; ci < SM_ARRAY_LEN(k_codecs); ci++) {
        sm_codec_t c = k_codecs[ci];
        for (size_t si = 0; si < SM_ARRAY_LEN(sizes); si++) {
            size_t n = sizes[si];
            uint8_t *data = make_data(n, (uint32_t)si);
            uint8_t *z;
            size_t zlen;
            CHECK_EQ(sm_compress(c, data, n, &z, &zlen), SM_OK);
            CHECK_EQ(dec_eq(c, z, zlen, n, data, n), SM_OK);
            CHECK_EQ(dec_eq(c, z, zlen, SIZE_MAX, data, n), SM_OK);
            if (n > 0)
                CHECK_EQ(dec_eq(c, z, zlen, n - 1, data, n), SM_ERR_TOO_LARGE);
            /* With headroom: the data lands behind it; the limit excludes it. */
            uint8_t *h = NULL;
            size_t hl = 0;
            CHECK_EQ(sm_decompress_headroom(c, z, zlen, n, 61, &h, &hl), SM_OK);
            CHECK_EQ(hl, n);
            CHECK(h != NULL && (n == 0 || memcmp(h + 61, data, n) == 0));
            free(h);
            if (n > 0)
                CHECK_EQ(sm_decompress_headroom(c, z, zlen, n - 1, 61, &h, &hl), SM_ERR_TOO_LARGE);
            free(z);
            free(data);
        }
    }
    CHECK(strcmp(sm_codec_name(SM_CODEC_ZSTD), "zstd") == 0);
    CHECK(strcmp(sm_codec_name((sm_codec_t)9), "unknown") == 0);
}

static void test_unknown_codec(void)
{
    uint8_t *out;
    size_t outlen;
    const uint8_t in[4] = {1, 2, 3, 4};
    CHECK_EQ(sm_decompress((sm_codec_t)5, in, 4, 100, &out, &outlen), SM_ERR_UNSUPPORTED);
    CHECK_EQ(sm_decompress((sm_codec_t)7, in, 4, 100, &out, &outlen), SM_ERR_UNSUPPORTED);
    CHECK_EQ(sm_compress((sm_codec_t)6, in, 4, &out, &outlen), SM_ERR_UNSUPPORTED);
    /* Empty compressed input is never a valid stream. */
    for (int c = 1; c <= 4; c++)
        CHECK_EQ(sm_decompress((sm_codec_t)c, in, 0, 100, &out, &outlen), SM_ERR_CORRUPT);
    CHECK_EQ(sm_decompress(SM_CODEC_NONE, in, 0, 100, &out, &outlen), SM_OK);
    CHECK_EQ(outlen, 0);
    free(out);
}

/* ------------------------------------------------------------- snappy */

static void put_be32(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)(v >> 24);
    p[1] = (uint8_t)(v >> 16);
    p[2] = (uint8_t)(v >> 8);
    p[3] = (uint8_t)v;
}

static size_t xerial_header(uint8_t *p)
{
    static const uint8_t h[16] = {0x82, 'S', 'N', 'A', 'P', 'P', 'Y', 0, 0, 0, 0, 1, 0, 0, 0, 1};
    memcpy(p, h, 16);
    return 16;
}

/* Append one xerial chunk holding data[0..n) as a raw snappy block. */
static size_t xerial_chunk(uint8_t *p, const uint8_t *data, size_t n)
{
    size_t clen = snappy_max_compressed_length(n);
    CHECK_EQ(snappy_compress((const char *)data, n, (char *)p + 4, &clen), SNAPPY_OK);
    put_be32(p, (uint32_t)clen);
    return 4 + clen;
}

static void test_snappy_framings(void)
{
    size_t n = 100000;
    uint8_t *data = make_data(n, 7);
    uint8_t *z = malloc(2 * snappy_max_compressed_length(n) + 1000);
    size_t zl;

    /* Raw block, as librdkafka-based clients send it. */
    zl = snappy_max_compressed_length(n);
    CHECK_EQ(snappy_compress((const char *)data, n, (char *)z, &zl), SNAPPY_OK);
    CHECK_EQ(dec_eq(SM_CODEC_SNAPPY, z, zl, n, data, n), SM_OK);
    CHECK_EQ(dec_eq(SM_CODEC_SNAPPY, z, zl, n - 1, data, n), SM_ERR_TOO_LARGE);

    /* Xerial with uneven chunks, an empty chunk in the middle. */
    zl = xerial_header(z);
    zl += xerial_chunk(z + zl, data, 10000);
    put_be32(z + zl, 0);
    zl += 4;
    zl += xerial_chunk(z + zl, data + 10000, 60000);
    zl += xerial_chunk(z + zl, data + 70000, n - 70000);
    CHECK_EQ(dec_eq(SM_CODEC_SNAPPY, z, zl, n, data, n), SM_OK);
    CHECK_EQ(dec_eq(SM_CODEC_SNAPPY, z, zl, n - 1, data, n), SM_ERR_TOO_LARGE);

    /* Two xerial streams back to back. */
    zl = xerial_header(z);
    zl += xerial_chunk(z + zl, data, 5000);
    zl += xerial_header(z + zl);
    zl += xerial_chunk(z + zl, data + 5000, n - 5000);
    CHECK_EQ(dec_eq(SM_CODEC_SNAPPY, z, zl, n, data, n), SM_OK);

    /* Header only: empty content. Header cut short: corrupt. */
    zl = xerial_header(z);
    CHECK_EQ(dec_eq(SM_CODEC_SNAPPY, z, zl, n, data, 0), SM_OK);
    CHECK_EQ(dec_eq(SM_CODEC_SNAPPY, z, 12, n, data, 0), SM_ERR_CORRUPT);

    /* Bad chunk lengths: short, past the end, "negative", partial length. */
    zl = xerial_header(z);
    zl += xerial_chunk(z + zl, data, 1000);
    size_t first = zl;
    CHECK_EQ(dec_eq(SM_CODEC_SNAPPY, z, first - 1, n, data, 1000), SM_ERR_CORRUPT);
    put_be32(z + 16, (uint32_t)(first - 16 - 4 + 1));
    CHECK_EQ(dec_eq(SM_CODEC_SNAPPY, z, first, n, data, 1000), SM_ERR_CORRUPT);
    put_be32(z + 16, 0x80000010u);
    CHECK_EQ(dec_eq(SM_CODEC_SNAPPY, z, first, n, data, 1000), SM_ERR_CORRUPT);
    CHECK_EQ(dec_eq(SM_CODEC_SNAPPY, z, 18, n, data, 0), SM_ERR_CORRUPT);

    /* A raw block claiming ~4 GiB in its length varint: refused before any
     * allocation (TOO_LARGE under a small limit). */
    const uint8_t huge[] = {0xfe, 0xff, 0xff, 0xff, 0x0f, 0x00};
    CHECK_EQ(dec_eq(SM_CODEC_SNAPPY, huge, sizeof huge, 1 << 20, data, 0), SM_ERR_TOO_LARGE);
    /* And with room allowed, the missing content is caught. */
    CHECK_EQ(dec_eq(SM_CODEC_SNAPPY, huge, 5, (size_t)1 << 33, data, 0), SM_ERR_CORRUPT);
    /* Garbage raw block. */
    const uint8_t junk[] = {0x0a, 0xff, 0xff, 0xff};
    CHECK_EQ(dec_eq(SM_CODEC_SNAPPY, junk, sizeof junk, 100, data, 0), SM_ERR_CORRUPT);
    free(z);
    free(data);
}

/* ---------------------------------------------------------------- lz4 */

static size_t lz4_frame(uint8_t *dst, size_t cap, const uint8_t *src, size_t n, int size_id,
                        int linked, int content_size, int block_ck, int content_ck)
{
    LZ4F_preferences_t prefs;
    memset(&prefs, 0, sizeof prefs);
    prefs.frameInfo.blockSizeID = (LZ4F_blockSizeID_t)size_id;
    prefs.frameInfo.blockMode = linked ? LZ4F_blockLinked : LZ4F_blockIndependent;
    prefs.frameInfo.contentSize = content_size ? n : 0;
    prefs.frameInfo.blockChecksumFlag = block_ck ? LZ4F_blockChecksumEnabled : LZ4F_noBlockChecksum;
    prefs.frameInfo.contentChecksumFlag =
        content_ck ? LZ4F_contentChecksumEnabled : LZ4F_noContentChecksum;
    size_t r = LZ4F_compressFrame(dst, cap, src, n, &prefs);
    CHECK(!LZ4F_isError(r));
    return LZ4F_isError(r) ? 0 : r;
}

static void test_lz4_framings(void)
{
    size_t n = 300000;
    uint8_t *data = make_data(n, 3);
    size_t cap = 2 * n + 4096;
    uint8_t *z = malloc(cap);
    static const int ids[] = {LZ4F_max64KB, LZ4F_max256KB, LZ4F_max1MB, LZ4F_max4MB};
    for (int v = 0; v < 64; v++) {
        size_t zl = lz4_frame(z, cap, data, n, ids[v % 4], (v >> 2) & 1, (v >> 3) & 1,
                              (v >> 4) & 1, (v >> 5) & 1);
        CHECK_EQ(dec_eq(SM_CODEC_LZ4, z, zl, n, data, n), SM_OK);
        CHECK_EQ(dec_eq(SM_CODEC_LZ4, z, zl, n - 1, data, n), SM_ERR_TOO_LARGE);
    }

    /* Two frames back to back, the second with content size, plus a
     * skippable frame (magic 0x184D2A50, int32 LE size) in front. */
    size_t zl = 0;
    const uint8_t skip[12] = {0x50, 0x2a, 0x4d, 0x18, 4, 0, 0, 0, 1, 2, 3, 4};
    memcpy(z, skip, sizeof skip);
    zl = sizeof skip;
    zl += lz4_frame(z + zl, cap - zl, data, 1000, LZ4F_max64KB, 0, 0, 0, 0);
    zl += lz4_frame(z + zl, cap - zl, data + 1000, n - 1000, LZ4F_max64KB, 0, 1, 1, 1);
    CHECK_EQ(dec_eq(SM_CODEC_LZ4, z, zl, n, data, n), SM_OK);
    /* Trailing garbage after a complete frame. */
    z[zl] = 0x77;
    CHECK_EQ(dec_eq(SM_CODEC_LZ4, z, zl + 1, n, data, n), SM_ERR_CORRUPT);

    /* Checksums are honoured: damage the content checksum (last 4 bytes)
     * and, in another frame, a byte of the first block's data. */
    zl = lz4_frame(z, cap, data, 5000, LZ4F_max64KB, 0, 0, 0, 1);
    z[zl - 1] ^= 0x40;
    CHECK_EQ(dec_eq(SM_CODEC_LZ4, z, zl, n, data, 5000), SM_ERR_CORRUPT);
    zl = lz4_frame(z, cap, data, 5000, LZ4F_max64KB, 0, 0, 1, 0);
    z[7 + 4 + 10] ^= 0x40; /* magic, FLG, BD, HC, block size, then data */
    CHECK_EQ(dec_eq(SM_CODEC_LZ4, z, zl, n, data, 5000), SM_ERR_CORRUPT);
    /* A damaged header checksum. */
    zl = lz4_frame(z, cap, data, 5000, LZ4F_max64KB, 0, 0, 0, 0);
    z[6] ^= 1;
    CHECK_EQ(dec_eq(SM_CODEC_LZ4, z, zl, n, data, 5000), SM_ERR_CORRUPT);
    free(z);
    free(data);
}

/* --------------------------------------------------------------- zstd */

static void test_zstd_framings(void)
{
    size_t n = 150000;
    uint8_t *data = make_data(n, 11);
    size_t cap = 2 * ZSTD_compressBound(n) + 64;
    uint8_t *z = malloc(cap);

    /* One-shot frames carry their content size; two of them back to back
     * with a skippable frame between. */
    size_t zl = ZSTD_compress(z, cap, data, 60000, 1);
    CHECK(!ZSTD_isError(zl));
    /* skippable frame: magic 0x184D2A53 and size, both little-endian */
    const uint8_t skip[12] = {0x53, 0x2a, 0x4d, 0x18, 4, 0, 0, 0, 'm', 'e', 't', 'a'};
    memcpy(z + zl, skip, sizeof skip);
    zl += sizeof skip;
    size_t second = ZSTD_compress(z + zl, cap - zl, data + 60000, n - 60000, 19);
    CHECK(!ZSTD_isError(second));
    zl += second;
    CHECK_EQ(dec_eq(SM_CODEC_ZSTD, z, zl, n, data, n), SM_OK);
    CHECK_EQ(dec_eq(SM_CODEC_ZSTD, z, zl, n - 1, data, n), SM_ERR_TOO_LARGE);
    /* Cut inside the second frame, and trailing garbage. */
    CHECK_EQ(dec_eq(SM_CODEC_ZSTD, z, zl - 3, n, data, n), SM_ERR_CORRUPT);
    memset(z + zl, 0x5a, 8);
    CHECK_EQ(dec_eq(SM_CODEC_ZSTD, z, zl + 8, n, data, n), SM_ERR_CORRUPT);

    /* A frame with a checksum: a damaged byte in the data is caught. */
    ZSTD_CCtx *cctx = ZSTD_createCCtx();
    ZSTD_CCtx_setParameter(cctx, ZSTD_c_checksumFlag, 1);
    ZSTD_CCtx_setParameter(cctx, ZSTD_c_contentSizeFlag, 0);
    zl = ZSTD_compress2(cctx, z, cap, data, n);
    ZSTD_freeCCtx(cctx);
    CHECK(!ZSTD_isError(zl));
    CHECK_EQ(dec_eq(SM_CODEC_ZSTD, z, zl, n, data, n), SM_OK);
    z[zl - 2] ^= 0x10;
    CHECK_EQ(dec_eq(SM_CODEC_ZSTD, z, zl, n, data, n), SM_ERR_CORRUPT);
    free(z);
    free(data);
}

/* --------------------------------------------------------------- gzip */

static void test_gzip_framings(void)
{
    size_t n = 80000;
    uint8_t *data = make_data(n, 5);
    uint8_t *a, *b;
    size_t al, bl;
    CHECK_EQ(sm_compress(SM_CODEC_GZIP, data, 30000, &a, &al), SM_OK);
    CHECK_EQ(sm_compress(SM_CODEC_GZIP, data + 30000, n - 30000, &b, &bl), SM_OK);
    uint8_t *z = malloc(al + bl + 16);
    memcpy(z, a, al);
    memcpy(z + al, b, bl);
    /* Two members back to back read as one stream. */
    CHECK_EQ(dec_eq(SM_CODEC_GZIP, z, al + bl, n, data, n), SM_OK);
    CHECK_EQ(dec_eq(SM_CODEC_GZIP, z, al + bl, n - 1, data, n), SM_ERR_TOO_LARGE);
    /* Cut in the second member's header; garbage after the last member. */
    CHECK_EQ(dec_eq(SM_CODEC_GZIP, z, al + 5, n, data, n), SM_ERR_CORRUPT);
    memset(z + al + bl, 0x33, 16);
    CHECK_EQ(dec_eq(SM_CODEC_GZIP, z, al + bl + 16, n, data, n), SM_ERR_CORRUPT);
    /* The trailer's CRC32 is checked. */
    memcpy(z, a, al);
    z[al - 8] ^= 1;
    CHECK_EQ(dec_eq(SM_CODEC_GZIP, z, al, n, data, 30000), SM_ERR_CORRUPT);
    free(a);
    free(b);

    /* A zlib stream (header detection takes it too). */
    uLongf zlen = compressBound((uLong)n);
    uint8_t *zz = malloc(zlen);
    CHECK_EQ(compress2(zz, &zlen, data, (uLong)n, 6), Z_OK);
    CHECK_EQ(dec_eq(SM_CODEC_GZIP, zz, zlen, n, data, n), SM_OK);
    /* Raw deflate without any header is not a gzip stream. */
    CHECK_EQ(dec_eq(SM_CODEC_GZIP, zz + 2, zlen - 6, n, data, n), SM_ERR_CORRUPT);
    free(zz);
    free(z);
    free(data);
}

/* ------------------------------------------------- truncation, damage */

static void test_truncation(void)
{
    size_t n = 3000;
    uint8_t *data = make_data(n, 13);
    for (int c = 1; c <= 4; c++) {
        uint8_t *z;
        size_t zl;
        CHECK_EQ(sm_compress((sm_codec_t)c, data, n, &z, &zl), SM_OK);
        int bad = 0;
        for (size_t cut = 0; cut < zl; cut++) {
            uint8_t *cp = malloc(cut ? cut : 1); /* exact size for ASan */
            memcpy(cp, z, cut);
            uint8_t *out;
            size_t outlen;
            sm_err_t err = sm_decompress((sm_codec_t)c, cp, cut, n, &out, &outlen);
            if (err == SM_OK) {
                /* Only xerial snappy can end cleanly early (a header alone
                 * or whole chunks), and then it yields a prefix. */
                if (c != SM_CODEC_SNAPPY || outlen >= n || memcmp(out, data, outlen) != 0)
                    bad++;
                free(out);
            } else if (err != SM_ERR_CORRUPT &&
                       !(c == SM_CODEC_SNAPPY && cut < 8 && err == SM_ERR_TOO_LARGE)) {
                /* (a cut xerial magic reads as a raw block whose length
                 * varint, 0x82 'S' = 10626, is over the limit) */
                bad++;
            }
            free(cp);
        }
        if (bad)
            fprintf(stderr, "codec %d: %d bad cuts\n", c, bad);
        CHECK_EQ(bad, 0);
        free(z);
    }
    free(data);
}

static void test_damage(void)
{
    /* Every byte of each compressed form flipped in turn: the decoders
     * must fail cleanly or return at most max_out bytes; frames with a
     * checksum over the content (gzip: CRC32 + ISIZE) only pass with the
     * original content. */
    size_t n = 2000;
    uint8_t *data = make_data(n, 17);
    for (int c = 1; c <= 4; c++) {
        uint8_t *z;
        size_t zl;
        CHECK_EQ(sm_compress((sm_codec_t)c, data, n, &z, &zl), SM_OK);
        int bad = 0, accepted = 0;
        for (size_t i = 0; i < zl; i++) {
            for (int bit = 0; bit < 8; bit += 3) {
                uint8_t *cp = malloc(zl);
                memcpy(cp, z, zl);
                cp[i] ^= (uint8_t)(1u << bit);
                uint8_t *out;
                size_t outlen;
                sm_err_t err = sm_decompress((sm_codec_t)c, cp, zl, 2 * n, &out, &outlen);
                if (err == SM_OK) {
                    accepted++;
                    if (outlen > 2 * n)
                        bad++;
                    /* gzip's CRC32 and ISIZE cover the content: a flip can
                     * only pass in unchecked places (FTEXT, MTIME, XFL, OS,
                     * the final byte's padding bits), with the same output */
                    if (c == SM_CODEC_GZIP && (outlen != n || memcmp(out, data, n) != 0))
                        bad++;
                    free(out);
                } else if (err != SM_ERR_CORRUPT && err != SM_ERR_TOO_LARGE) {
                    fprintf(stderr, "codec %d byte %zu bit %d: %s\n", c, i, bit, sm_err_str(err));
                    bad++;
                }
                free(cp);
            }
        }
        CHECK_EQ(bad, 0);
        if (c == SM_CODEC_GZIP)
            CHECK(accepted <= 8 * 3);
        free(z);
    }
    free(data);
}

static void test_bombs(void)
{
    /* 64 MiB of zeros shrinks to a few KiB in every codec; a 1 MiB limit
     * stops each decoder without inflating the rest. */
    size_t n = (size_t)64 << 20;
    uint8_t *zeros = calloc(1, n);
    for (int c = 0; c <= 4; c++) {
        uint8_t *z;
        size_t zl;
        CHECK_EQ(sm_compress((sm_codec_t)c, zeros, n, &z, &zl), SM_OK);
        if (c != SM_CODEC_NONE) /* snappy tops out near 21:1 */
            CHECK(zl < n / (c == SM_CODEC_SNAPPY ? 16 : 100));
        uint8_t *out = (uint8_t *)1;
        size_t outlen = 1;
        CHECK_EQ(sm_decompress((sm_codec_t)c, z, zl, 1 << 20, &out, &outlen), SM_ERR_TOO_LARGE);
        CHECK(out == NULL);
        CHECK_EQ(dec_eq((sm_codec_t)c, z, zl, n, zeros, n), SM_OK);
        free(z);
    }
    free(zeros);
}

/* ------------------------------------------------------------ batches */

/* Build a batch the way a Java producer does: baseTimestamp = the first
 * record's timestamp (later deltas may be negative), records compressed
 * with codec, CRC over the result. Record i: key "k<i>", value "value-<i>"
 * repeated, one header on odd records. */
static size_t build_batch(uint8_t **out, sm_codec_t codec, int64_t base_offset,
                          const int64_t *ts, int n)
{
    sm_wbuf_t recs;
    sm_wbuf_init(&recs);
    int64_t max_ts = ts[0];
    for (int i = 0; i < n; i++) {
        char key[16], val[200];
        int kl = snprintf(key, sizeof key, "k%d", i);
        int vl = 0;
        for (int r = 0; r <= i % 5; r++)
            vl += snprintf(val + vl, sizeof val - (size_t)vl, "value-%d;", i);
        sm_wbuf_t body;
        sm_wbuf_init(&body);
        sm_wbuf_i8(&body, 0);
        sm_wbuf_varlong(&body, ts[i] - ts[0]);
        sm_wbuf_varint(&body, i);
        sm_wbuf_varint(&body, kl);
        sm_wbuf_bytes(&body, key, (size_t)kl);
        sm_wbuf_varint(&body, vl);
        sm_wbuf_bytes(&body, val, (size_t)vl);
        sm_wbuf_varint(&body, i % 2);
        if (i % 2) {
            sm_wbuf_varint(&body, 1);
            sm_wbuf_bytes(&body, "h", 1);
            sm_wbuf_varint(&body, 2);
            sm_wbuf_bytes(&body, "hv", 2);
        }
        sm_wbuf_varint(&recs, (int32_t)body.len);
        sm_wbuf_bytes(&recs, body.mem, body.len);
        sm_wbuf_free(&body);
        max_ts = SM_MAX(max_ts, ts[i]);
    }
    uint8_t *z;
    size_t zl;
    SM_ASSERT(sm_compress(codec, recs.mem, recs.len, &z, &zl) == SM_OK);
    sm_wbuf_free(&recs);

    sm_wbuf_t w;
    sm_wbuf_init(&w);
    sm_wbuf_i64(&w, base_offset);
    sm_wbuf_i32(&w, (int32_t)(SM_BATCH_HEADER_SIZE - SM_BATCH_LOG_OVERHEAD + zl));
    sm_wbuf_i32(&w, -1);
    sm_wbuf_i8(&w, 2);
    sm_wbuf_u32(&w, 0); /* crc, below */
    sm_wbuf_i16(&w, (int16_t)codec);
    sm_wbuf_i32(&w, n - 1);
    sm_wbuf_i64(&w, ts[0]);
    sm_wbuf_i64(&w, max_ts);
    sm_wbuf_i64(&w, -1);
    sm_wbuf_i16(&w, -1);
    sm_wbuf_i32(&w, -1);
    sm_wbuf_i32(&w, n);
    sm_wbuf_bytes(&w, z, zl);
    free(z);
    uint32_t crc = sm_crc32c(0, w.mem + SM_BATCH_OFF_ATTRIBUTES, w.len - SM_BATCH_OFF_ATTRIBUTES);
    put_be32(w.mem + SM_BATCH_OFF_CRC, crc);
    size_t len = w.len;
    *out = sm_xmalloc(len);
    memcpy(*out, w.mem, len);
    sm_wbuf_free(&w);
    return len;
}

static void test_find_timestamp(void)
{
    /* Out of order, a timestamp below the base (negative delta), a tie
     * for the maximum. */
    static const int64_t ts[] = {1000, 500, 3000, 2000, 3000, 100};
    int n = (int)SM_ARRAY_LEN(ts);
    for (size_t ci = 0; ci < SM_ARRAY_LEN(k_codecs); ci++) {
        sm_codec_t c = k_codecs[ci];
        uint8_t *b;
        size_t len = build_batch(&b, c, 7000, ts, n);
        const char *why = NULL;
        sm_batch_info_t info;
        CHECK_EQ(sm_batch_validate(b, len, &info, &why), SM_OK);
        int64_t off = -1, t = -1;
        /* first record with timestamp >= target, in batch order */
        CHECK_EQ(sm_batch_find_timestamp(b, len, 0, &off, &t), SM_OK);
        CHECK_EQ(off, 7000);
        CHECK_EQ(t, 1000);
        CHECK_EQ(sm_batch_find_timestamp(b, len, 1000, &off, &t), SM_OK);
        CHECK_EQ(off, 7000);
        CHECK_EQ(sm_batch_find_timestamp(b, len, 1001, &off, &t), SM_OK);
        CHECK_EQ(off, 7002);
        CHECK_EQ(t, 3000);
        CHECK_EQ(sm_batch_find_timestamp(b, len, 2500, &off, &t), SM_OK);
        CHECK_EQ(off, 7002);
        CHECK_EQ(sm_batch_find_timestamp(b, len, 3000, &off, &t), SM_OK);
        CHECK_EQ(off, 7002);
        off = t = -1;
        CHECK_EQ(sm_batch_find_timestamp(b, len, 3001, &off, &t), SM_ERR_NOT_FOUND);
        CHECK_EQ(off, -1);
        /* the largest timestamp, first of the tie */
        CHECK_EQ(sm_batch_find_max_timestamp(b, len, &off, &t), SM_OK);
        CHECK_EQ(off, 7002);
        CHECK_EQ(t, 3000);
        /* len beyond the batch is fine (a segment read) */
        uint8_t *more = malloc(len + 100);
        memcpy(more, b, len);
        memset(more + len, 0xee, 100);
        CHECK_EQ(sm_batch_find_timestamp(more, len + 100, 1500, &off, &t), SM_OK);
        CHECK_EQ(off, 7002);
        free(more);

        /* LogAppendTime: every record has the batch maxTimestamp. */
        sm_batch_set_log_append_time(b, 9000);
        CHECK_EQ(sm_batch_validate(b, len, &info, &why), SM_OK);
        CHECK_EQ(sm_batch_find_timestamp(b, len, 1001, &off, &t), SM_OK);
        CHECK_EQ(off, 7000);
        CHECK_EQ(t, 9000);
        CHECK_EQ(sm_batch_find_timestamp(b, len, 9001, &off, &t), SM_ERR_NOT_FOUND);
        CHECK_EQ(sm_batch_find_max_timestamp(b, len, &off, &t), SM_OK);
        CHECK_EQ(off, 7000);
        CHECK_EQ(t, 9000);
        free(b);
    }
}

static void test_records_iter(void)
{
    static const int64_t ts[] = {50, 40, 60, 70, 10, 80, 90};
    int n = (int)SM_ARRAY_LEN(ts);
    for (size_t ci = 0; ci < SM_ARRAY_LEN(k_codecs); ci++) {
        uint8_t *b;
        size_t len = build_batch(&b, k_codecs[ci], 42, ts, n);
        sm_batch_records_t br;
        CHECK_EQ(sm_batch_records_open(&br, b, len, 1 << 20), SM_OK);
        CHECK_EQ(br.info.record_count, n);
        CHECK_EQ(br.info.attributes & 7, k_codecs[ci]); /* the caller's view is unchanged */
        sm_record_t rec;
        int i = 0;
        sm_err_t err;
        while ((err = sm_batch_records_next(&br, &rec)) == SM_OK) {
            char key[16];
            snprintf(key, sizeof key, "k%d", i);
            CHECK_EQ(rec.key_len, (int32_t)strlen(key));
            CHECK(rec.key && memcmp(rec.key, key, strlen(key)) == 0);
            CHECK(rec.value_len > 0 && memcmp(rec.value, "value-", 6) == 0);
            CHECK_EQ(rec.header_count, i % 2);
            CHECK_EQ(sm_batch_records_offset(&br, &rec), 42 + i);
            CHECK_EQ(sm_batch_records_timestamp(&br, &rec), ts[i]);
            i++;
        }
        CHECK_EQ(err, SM_ERR_NOT_FOUND);
        CHECK_EQ(i, n);
        sm_batch_records_close(&br);
        sm_batch_records_close(&br); /* harmless twice */
        /* A limit below the inflated size. */
        if (k_codecs[ci] != SM_CODEC_NONE)
            CHECK_EQ(sm_batch_records_open(&br, b, len, 20), SM_ERR_TOO_LARGE);
        free(b);
    }
}

static void test_bad_batches(void)
{
    static const int64_t ts[] = {5, 6, 7};
    for (size_t ci = 0; ci < SM_ARRAY_LEN(k_codecs); ci++) {
        sm_codec_t c = k_codecs[ci];
        uint8_t *b;
        size_t len = build_batch(&b, c, 0, ts, 3);
        int64_t off, t;
        /* Shorter than the batch: every prefix fails, none crashes. */
        int bad = 0;
        for (size_t cut = 0; cut < len; cut++) {
            uint8_t *cp = malloc(cut ? cut : 1);
            memcpy(cp, b, cut);
            sm_err_t e1 = sm_batch_find_timestamp(cp, cut, 0, &off, &t);
            sm_err_t e2 = sm_batch_find_max_timestamp(cp, cut, &off, &t);
            if (e1 == SM_OK || e2 == SM_OK || e1 == SM_ERR_NOT_FOUND)
                bad++;
            free(cp);
        }
        CHECK_EQ(bad, 0);
        /* More records claimed than present. */
        uint8_t *cp = malloc(len);
        memcpy(cp, b, len);
        put_be32(cp + SM_BATCH_OFF_RECORD_COUNT, 4);
        CHECK_EQ(sm_batch_find_max_timestamp(cp, len, &off, &t), SM_ERR_PARSE);
        CHECK_EQ(sm_batch_find_timestamp(cp, len, 100, &off, &t), SM_ERR_PARSE);
        /* Zero records: nothing to find. */
        put_be32(cp + SM_BATCH_OFF_RECORD_COUNT, 0);
        CHECK_EQ(sm_batch_find_max_timestamp(cp, len, &off, &t), SM_ERR_NOT_FOUND);
        CHECK_EQ(sm_batch_find_timestamp(cp, len, 0, &off, &t), SM_ERR_NOT_FOUND);
        /* Old magic, unknown codec. */
        memcpy(cp, b, len);
        cp[SM_BATCH_OFF_MAGIC] = 1;
        CHECK_EQ(sm_batch_find_timestamp(cp, len, 0, &off, &t), SM_ERR_UNSUPPORTED);
        memcpy(cp, b, len);
        cp[SM_BATCH_OFF_ATTRIBUTES + 1] = (uint8_t)((cp[SM_BATCH_OFF_ATTRIBUTES + 1] & ~7) | 6);
        CHECK_EQ(sm_batch_find_timestamp(cp, len, 0, &off, &t), SM_ERR_UNSUPPORTED);
        /* Damaged compressed payload (its first byte: a magic or header). */
        if (c != SM_CODEC_NONE) {
            memcpy(cp, b, len);
            cp[SM_BATCH_HEADER_SIZE] ^= 0xff;
            CHECK_EQ(sm_batch_find_timestamp(cp, len, 0, &off, &t), SM_ERR_CORRUPT);
        }
        free(cp);
        free(b);
    }
}

/* ------------------------------------------- batches from librdkafka */

/* One batch per codec as stored by a Samsa broker after `kcat -P -z CODEC
 * -K:` (librdkafka 2.x) produced keys "k<i>" and values
 * "value-<codec>-<i>-<i*i>" for i = 1..12. Real foreign framings: raw
 * snappy (no xerial header), an LZ4 frame with 64 KiB independent blocks
 * and no content size, a zstd frame without content size, plain gzip. */
static const uint8_t k_rdkafka_gzip[223] = {
    0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0xd3, 0x00, 0x00, 0x00, 0x00,
    0x02, 0xf5, 0x50, 0x49, 0x21, 0x00, 0x01, 0x00, 0x00, 0x00, 0x0b, 0x00, 0x00, 0x01, 0xa2, 0x01,
    0x2a, 0x38, 0x98, 0x00, 0x00, 0x01, 0xa2, 0x01, 0x2a, 0x38, 0x98, 0xff, 0xff, 0xff, 0xff, 0xff,
    0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x00, 0x00, 0x00, 0x0c, 0x1f, 0x8b, 0x08,
    0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x03, 0x55, 0xcf, 0x31, 0x0b, 0xc2, 0x40, 0x0c, 0x86, 0xe1,
    0x0f, 0x09, 0x45, 0x44, 0x44, 0x44, 0x9c, 0xc4, 0xc1, 0xb9, 0x91, 0xe6, 0x9a, 0xbb, 0x5e, 0x7f,
    0x8e, 0x83, 0x48, 0x89, 0x83, 0x8b, 0x0e, 0xfe, 0x7a, 0xef, 0x3a, 0xa5, 0x90, 0xe9, 0x79, 0xef,
    0x02, 0x69, 0x01, 0x90, 0xc9, 0xf9, 0x7b, 0x7f, 0x7d, 0x1e, 0xfc, 0xfc, 0x4d, 0x6f, 0x16, 0x16,
    0xb4, 0xc0, 0x8a, 0x2c, 0x78, 0x0e, 0xac, 0x95, 0x89, 0xac, 0xf7, 0xdc, 0xf3, 0x88, 0x1b, 0xd0,
    0x90, 0xe9, 0xc5, 0xb1, 0xb2, 0xa4, 0xea, 0x6b, 0xb2, 0xe8, 0x3d, 0x72, 0x88, 0xd5, 0x37, 0x64,
    0xc9, 0x7b, 0xe2, 0x7e, 0x7e, 0xbf, 0x25, 0x1b, 0xbc, 0x0f, 0xac, 0xf3, 0xfe, 0x1d, 0x59, 0xf6,
    0x9e, 0x39, 0x69, 0xf5, 0x3d, 0xd9, 0xe8, 0x7d, 0xe4, 0x2c, 0x50, 0xe0, 0xd0, 0x98, 0x74, 0x57,
    0x7f, 0x55, 0x57, 0xa6, 0xab, 0xe9, 0x58, 0x92, 0x2c, 0x52, 0xb9, 0x38, 0xcc, 0xbf, 0x4e, 0x25,
    0x85, 0x45, 0x0a, 0x2c, 0xaa, 0xf8, 0x03, 0x4a, 0xa8, 0x33, 0x59, 0x26, 0x01, 0x00, 0x00,
};
static const uint8_t k_rdkafka_snappy[263] = {
    0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0xfb, 0x00, 0x00, 0x00, 0x00,
    0x02, 0x80, 0x48, 0x11, 0xa8, 0x00, 0x02, 0x00, 0x00, 0x00, 0x0b, 0x00, 0x00, 0x01, 0xa2, 0x01,
    0x2a, 0x39, 0x04, 0x00, 0x00, 0x01, 0xa2, 0x01, 0x2a, 0x39, 0x04, 0xff, 0xff, 0xff, 0xff, 0xff,
    0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x00, 0x00, 0x00, 0x0c, 0xbe, 0x02, 0x7c,
    0x30, 0x00, 0x00, 0x00, 0x04, 0x6b, 0x31, 0x20, 0x76, 0x61, 0x6c, 0x75, 0x65, 0x2d, 0x73, 0x6e,
    0x61, 0x70, 0x70, 0x79, 0x2d, 0x31, 0x2d, 0x31, 0x00, 0x30, 0x00, 0x00, 0x02, 0x04, 0x6b, 0x32,
    0x36, 0x19, 0x00, 0x08, 0x32, 0x2d, 0x34, 0x01, 0x19, 0x0c, 0x04, 0x04, 0x6b, 0x33, 0x36, 0x19,
    0x00, 0x30, 0x33, 0x2d, 0x39, 0x00, 0x32, 0x00, 0x00, 0x06, 0x04, 0x6b, 0x34, 0x22, 0x76, 0x2e,
    0x4b, 0x00, 0x0c, 0x34, 0x2d, 0x31, 0x36, 0x01, 0x1a, 0x0c, 0x08, 0x04, 0x6b, 0x35, 0x36, 0x1a,
    0x00, 0x0c, 0x35, 0x2d, 0x32, 0x35, 0x01, 0x1a, 0x0c, 0x0a, 0x04, 0x6b, 0x36, 0x36, 0x1a, 0x00,
    0x08, 0x36, 0x2d, 0x33, 0x05, 0x34, 0x0c, 0x0c, 0x04, 0x6b, 0x37, 0x36, 0x1a, 0x00, 0x08, 0x37,
    0x2d, 0x34, 0x05, 0x68, 0x0c, 0x0e, 0x04, 0x6b, 0x38, 0x36, 0x1a, 0x00, 0x0c, 0x38, 0x2d, 0x36,
    0x34, 0x01, 0x4e, 0x0c, 0x10, 0x04, 0x6b, 0x39, 0x36, 0x1a, 0x00, 0x38, 0x39, 0x2d, 0x38, 0x31,
    0x00, 0x38, 0x00, 0x00, 0x12, 0x06, 0x6b, 0x31, 0x30, 0x26, 0x76, 0x2e, 0x9d, 0x00, 0x14, 0x31,
    0x30, 0x2d, 0x31, 0x30, 0x30, 0x01, 0x1d, 0x10, 0x14, 0x06, 0x6b, 0x31, 0x31, 0x3a, 0x1d, 0x00,
    0x0c, 0x31, 0x2d, 0x31, 0x32, 0x05, 0x3a, 0x10, 0x16, 0x06, 0x6b, 0x31, 0x32, 0x3a, 0x1d, 0x00,
    0x14, 0x32, 0x2d, 0x31, 0x34, 0x34, 0x00,
};
static const uint8_t k_rdkafka_lz4[261] = {
    0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0xf9, 0x00, 0x00, 0x00, 0x00,
    0x02, 0xda, 0x7c, 0x19, 0x77, 0x00, 0x03, 0x00, 0x00, 0x00, 0x0b, 0x00, 0x00, 0x01, 0xa2, 0x01,
    0x2a, 0x39, 0x6f, 0x00, 0x00, 0x01, 0xa2, 0x01, 0x2a, 0x39, 0x6f, 0xff, 0xff, 0xff, 0xff, 0xff,
    0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x00, 0x00, 0x00, 0x0c, 0x04, 0x22, 0x4d,
    0x18, 0x60, 0x40, 0x82, 0xb9, 0x00, 0x00, 0x00, 0xf7, 0x0e, 0x2a, 0x00, 0x00, 0x00, 0x04, 0x6b,
    0x31, 0x1a, 0x76, 0x61, 0x6c, 0x75, 0x65, 0x2d, 0x6c, 0x7a, 0x34, 0x2d, 0x31, 0x2d, 0x31, 0x00,
    0x2a, 0x00, 0x00, 0x02, 0x04, 0x6b, 0x32, 0x16, 0x00, 0x30, 0x32, 0x2d, 0x34, 0x16, 0x00, 0x47,
    0x04, 0x04, 0x6b, 0x33, 0x16, 0x00, 0xc6, 0x33, 0x2d, 0x39, 0x00, 0x2c, 0x00, 0x00, 0x06, 0x04,
    0x6b, 0x34, 0x1c, 0x42, 0x00, 0x40, 0x34, 0x2d, 0x31, 0x36, 0x17, 0x00, 0x47, 0x08, 0x04, 0x6b,
    0x35, 0x17, 0x00, 0x40, 0x35, 0x2d, 0x32, 0x35, 0x17, 0x00, 0x47, 0x0a, 0x04, 0x6b, 0x36, 0x17,
    0x00, 0x31, 0x36, 0x2d, 0x33, 0x2e, 0x00, 0x47, 0x0c, 0x04, 0x6b, 0x37, 0x17, 0x00, 0x31, 0x37,
    0x2d, 0x34, 0x5c, 0x00, 0x47, 0x0e, 0x04, 0x6b, 0x38, 0x17, 0x00, 0x40, 0x38, 0x2d, 0x36, 0x34,
    0x45, 0x00, 0x47, 0x10, 0x04, 0x6b, 0x39, 0x17, 0x00, 0xe6, 0x39, 0x2d, 0x38, 0x31, 0x00, 0x32,
    0x00, 0x00, 0x12, 0x06, 0x6b, 0x31, 0x30, 0x20, 0x8b, 0x00, 0x60, 0x31, 0x30, 0x2d, 0x31, 0x30,
    0x30, 0x1a, 0x00, 0x58, 0x14, 0x06, 0x6b, 0x31, 0x31, 0x1a, 0x00, 0x41, 0x31, 0x2d, 0x31, 0x32,
    0x34, 0x00, 0x58, 0x16, 0x06, 0x6b, 0x31, 0x32, 0x1a, 0x00, 0x60, 0x32, 0x2d, 0x31, 0x34, 0x34,
    0x00, 0x00, 0x00, 0x00, 0x00,
};
static const uint8_t k_rdkafka_zstd[218] = {
    0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0xce, 0x00, 0x00, 0x00, 0x00,
    0x02, 0x01, 0x09, 0x8a, 0xef, 0x00, 0x04, 0x00, 0x00, 0x00, 0x0b, 0x00, 0x00, 0x01, 0xa2, 0x01,
    0x2a, 0x39, 0xdd, 0x00, 0x00, 0x01, 0xa2, 0x01, 0x2a, 0x39, 0xdd, 0xff, 0xff, 0xff, 0xff, 0xff,
    0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x00, 0x00, 0x00, 0x0c, 0x28, 0xb5, 0x2f,
    0xfd, 0x00, 0x58, 0xa5, 0x04, 0x00, 0xa2, 0x08, 0x1b, 0x1d, 0x60, 0x65, 0xd3, 0x01, 0x00, 0x47,
    0xb6, 0x92, 0x51, 0x01, 0x00, 0x80, 0xf2, 0xb6, 0xde, 0x24, 0x89, 0x5c, 0xdf, 0x06, 0xe5, 0x80,
    0x38, 0x12, 0x91, 0x68, 0x4b, 0x74, 0x29, 0x45, 0xbc, 0xef, 0x9e, 0x28, 0xf1, 0xbb, 0xff, 0x27,
    0x42, 0xb4, 0xd8, 0x94, 0xee, 0x74, 0x46, 0x7a, 0xa2, 0x43, 0x8b, 0xfd, 0xe3, 0xb5, 0xd2, 0x0c,
    0xa8, 0xfc, 0x3c, 0x69, 0x85, 0x85, 0x76, 0x9c, 0x34, 0x82, 0x62, 0xac, 0x54, 0xda, 0xa0, 0x39,
    0x37, 0x4d, 0x9a, 0xa0, 0x5d, 0xaa, 0x6e, 0x5c, 0x60, 0x1a, 0x6a, 0x97, 0x2e, 0x33, 0x4c, 0x9a,
    0xa1, 0xef, 0xd2, 0x02, 0xad, 0xd2, 0xfb, 0x76, 0x48, 0x22, 0x01, 0x7e, 0x4c, 0x20, 0x0d, 0x00,
    0xc5, 0xd3, 0xda, 0x2a, 0x01, 0x11, 0x00, 0xe0, 0x34, 0x08, 0x34, 0x9f, 0xa7, 0xe6, 0x69, 0x28,
    0xc0, 0x04, 0x58, 0x04, 0x30, 0x01, 0x16, 0x01, 0x4c, 0x80, 0x45, 0x00, 0x13, 0x60, 0x91, 0x9d,
    0x3c, 0x01, 0x23, 0x01, 0x26, 0xc0, 0x1a, 0x2a, 0x37, 0x9d,
};

static void test_rdkafka_batches(void)
{
    static const struct {
        const char *name;
        const uint8_t *b;
        size_t len;
    } v[] = {
        {"gzip", k_rdkafka_gzip, sizeof k_rdkafka_gzip},
        {"snappy", k_rdkafka_snappy, sizeof k_rdkafka_snappy},
        {"lz4", k_rdkafka_lz4, sizeof k_rdkafka_lz4},
        {"zstd", k_rdkafka_zstd, sizeof k_rdkafka_zstd},
    };
    for (size_t i = 0; i < SM_ARRAY_LEN(v); i++) {
        const uint8_t *b = v[i].b;
        size_t len = v[i].len;
        sm_batch_info_t info;
        const char *why = NULL;
        CHECK_EQ(sm_batch_validate(b, len, &info, &why), SM_OK);
        CHECK_EQ(info.attributes & 7, (int)i + 1);
        CHECK_EQ(info.record_count, 12);
        const uint8_t *payload = b + SM_BATCH_HEADER_SIZE;
        if (i + 1 == SM_CODEC_SNAPPY)
            CHECK(payload[0] != 0x82); /* raw block, not xerial */
        if (i + 1 == SM_CODEC_LZ4) {
            CHECK_EQ(payload[4] & 0x08, 0);    /* FLG: no content size */
            CHECK_EQ(payload[4] & 0x20, 0x20); /* independent blocks */
        }
        if (i + 1 == SM_CODEC_ZSTD)
            CHECK_EQ(payload[4] & 0xe0, 0); /* FHD: no content size field */

        sm_batch_records_t br;
        CHECK_EQ(sm_batch_records_open(&br, b, len, 1 << 20), SM_OK);
        sm_record_t rec;
        int n = 0;
        int64_t max_ts = INT64_MIN;
        while (sm_batch_records_next(&br, &rec) == SM_OK) {
            n++;
            char key[16], val[64];
            snprintf(key, sizeof key, "k%d", n);
            snprintf(val, sizeof val, "value-%s-%d-%d", v[i].name, n, n * n);
            CHECK(rec.key_len == (int32_t)strlen(key) && memcmp(rec.key, key, strlen(key)) == 0);
            CHECK(rec.value_len == (int32_t)strlen(val) &&
                  memcmp(rec.value, val, strlen(val)) == 0);
            CHECK_EQ(sm_batch_records_offset(&br, &rec), n - 1);
            max_ts = SM_MAX(max_ts, sm_batch_records_timestamp(&br, &rec));
        }
        sm_batch_records_close(&br);
        CHECK_EQ(n, 12);
        CHECK_EQ(max_ts, info.max_timestamp);
        int64_t off, t;
        CHECK_EQ(sm_batch_find_timestamp(b, len, info.base_timestamp, &off, &t), SM_OK);
        CHECK_EQ(off, 0);
        CHECK_EQ(sm_batch_find_max_timestamp(b, len, &off, &t), SM_OK);
        CHECK_EQ(t, info.max_timestamp);
        CHECK_EQ(sm_batch_find_timestamp(b, len, info.max_timestamp + 1, &off, &t),
                 SM_ERR_NOT_FOUND);
    }
}

/* Re-framing a batch in another codec keeps every record and header field;
 * the keyless scan finds the first record without a key in any codec; a
 * damaged compressed section fails cleanly. */
static void test_batch_rewrite(void)
{
    char keys[20][8], vals[20][64];
    sm_record_in_t recs[20];
    for (int i = 0; i < 20; i++) {
        snprintf(keys[i], sizeof keys[i], "k%d", i);
        snprintf(vals[i], sizeof vals[i], "value %d kafka samsa kafka samsa kafka", i);
        recs[i] = (sm_record_in_t){.key = keys[i], .key_len = (int32_t)strlen(keys[i]),
                                   .value = vals[i], .value_len = (int32_t)strlen(vals[i]),
                                   .timestamp = 1700000000000 + i};
    }
    recs[13].key = NULL;
    recs[13].key_len = -1;
    sm_batch_params_t bp = {.base_offset = 0, .leader_epoch = -1, .attributes = 0,
                            .producer_id = 42, .producer_epoch = 3, .base_sequence = 100};
    sm_wbuf_t plain;
    sm_wbuf_init(&plain);
    sm_batch_encode(&plain, &bp, recs, 20);
    sm_batch_info_t pb;
    CHECK_EQ(sm_batch_header_parse(plain.mem, plain.len, &pb), SM_OK);
    int32_t keyless = 0;
    CHECK_EQ(sm_batch_scan(plain.mem, &pb, 1 << 20, &keyless), SM_OK);
    CHECK_EQ(keyless, 13);
    for (size_t c = 0; c < SM_ARRAY_LEN(k_codecs); c++) {
        sm_wbuf_t z;
        sm_wbuf_init(&z);
        CHECK_OK(sm_batch_recompress(plain.mem, &pb, k_codecs[c], SM_COMPRESS_LEVEL_DEFAULT,
                                     1 << 20, &z));
        sm_batch_info_t zb;
        const char *why = NULL;
        CHECK_EQ(sm_batch_validate(z.mem, z.len, &zb, &why), SM_OK);
        CHECK_EQ(zb.attributes & SM_BATCH_ATTR_COMPRESSION_MASK, (int)k_codecs[c]);
        CHECK_EQ(zb.producer_id, 42);
        CHECK_EQ(zb.producer_epoch, 3);
        CHECK_EQ(zb.base_sequence, 100);
        CHECK_EQ(zb.record_count, 20);
        CHECK_EQ(zb.max_timestamp, pb.max_timestamp);
        keyless = 0;
        CHECK_EQ(sm_batch_scan(z.mem, &zb, 1 << 20, &keyless), SM_OK);
        CHECK_EQ(keyless, 13);
        /* back to none: byte for byte the original */
        sm_wbuf_t back;
        sm_wbuf_init(&back);
        CHECK_OK(sm_batch_recompress(z.mem, &zb, SM_CODEC_NONE, SM_COMPRESS_LEVEL_DEFAULT,
                                     1 << 20, &back));
        CHECK_EQ(back.len, plain.len);
        CHECK(back.len == plain.len && memcmp(back.mem, plain.mem, plain.len) == 0);
        sm_wbuf_free(&back);
        if (k_codecs[c] != SM_CODEC_NONE) {
            /* too small a bound, and damage inside the compressed section */
            CHECK_EQ(sm_batch_scan(z.mem, &zb, 16, &keyless), SM_ERR_TOO_LARGE);
            for (size_t at = SM_BATCH_HEADER_SIZE; at < z.len; at += 3) {
                uint8_t saved = z.mem[at];
                z.mem[at] ^= 0x5a;
                sm_wbuf_t o;
                sm_wbuf_init(&o);
                sm_err_t e = sm_batch_recompress(z.mem, &zb, SM_CODEC_NONE,
                                                 SM_COMPRESS_LEVEL_DEFAULT, 1 << 20, &o);
                CHECK(e == SM_OK || e != SM_OK); /* the point: no crash, no leak */
                (void)e;
                sm_wbuf_free(&o);
                z.mem[at] = saved;
            }
        }
        sm_wbuf_free(&z);
    }
    /* levels: gzip 9 is no larger than gzip 1 */
    sm_wbuf_t g1, g9;
    sm_wbuf_init(&g1);
    sm_wbuf_init(&g9);
    CHECK_EQ(sm_batch_recompress(plain.mem, &pb, SM_CODEC_GZIP, 1, 1 << 20, &g1), SM_OK);
    CHECK_EQ(sm_batch_recompress(plain.mem, &pb, SM_CODEC_GZIP, 9, 1 << 20, &g9), SM_OK);
    CHECK(g9.len <= g1.len);
    sm_wbuf_free(&g1);
    sm_wbuf_free(&g9);
    /* sarama's max timestamp -1: the real one is put back, CRC valid */
    for (size_t c = 0; c < SM_ARRAY_LEN(k_codecs); c++) {
        sm_wbuf_t z;
        sm_wbuf_init(&z);
        CHECK_OK(sm_batch_recompress(plain.mem, &pb, k_codecs[c], SM_COMPRESS_LEVEL_DEFAULT,
                                     1 << 20, &z));
        for (int i = 0; i < 8; i++)
            z.mem[SM_BATCH_OFF_MAX_TIMESTAMP + i] = 0xff;
        uint32_t crc = sm_crc32c(0, z.mem + SM_BATCH_OFF_ATTRIBUTES,
                                 z.len - SM_BATCH_OFF_ATTRIBUTES);
        z.mem[SM_BATCH_OFF_CRC] = (uint8_t)(crc >> 24);
        z.mem[SM_BATCH_OFF_CRC + 1] = (uint8_t)(crc >> 16);
        z.mem[SM_BATCH_OFF_CRC + 2] = (uint8_t)(crc >> 8);
        z.mem[SM_BATCH_OFF_CRC + 3] = (uint8_t)crc;
        sm_batch_info_t zb;
        const char *why = NULL;
        CHECK_OK(sm_batch_validate(z.mem, z.len, &zb, &why));
        CHECK_EQ(zb.max_timestamp, -1);
        CHECK_OK(sm_batch_fix_max_timestamp(z.mem, &zb, 1 << 20));
        CHECK_OK(sm_batch_validate(z.mem, z.len, &zb, &why));
        CHECK_EQ(zb.max_timestamp, 1700000000000 + 19);
        sm_wbuf_free(&z);
    }
    /* a truncated record section is refused */
    sm_batch_info_t bad = pb;
    bad.record_count = 21;
    CHECK_EQ(sm_batch_scan(plain.mem, &bad, 1 << 20, &keyless), SM_ERR_PARSE);
    sm_wbuf_free(&plain);
}

int main(void)
{
    RUN(test_round_trip);
    RUN(test_unknown_codec);
    RUN(test_snappy_framings);
    RUN(test_lz4_framings);
    RUN(test_zstd_framings);
    RUN(test_gzip_framings);
    RUN(test_truncation);
    RUN(test_damage);
    RUN(test_bombs);
    RUN(test_find_timestamp);
    RUN(test_records_iter);
    RUN(test_bad_batches);
    RUN(test_rdkafka_batches);
    RUN(test_batch_rewrite);
    TEST_MAIN_END();
}
