/*
 * compress.c - gzip, snappy (xerial-framed and raw), lz4 (frame) and zstd
 * for Kafka record batches, over zlib, libsnappy, liblz4 and libzstd.
 *
 * Every decoder writes into one growing output buffer (struct obuf) whose
 * capacity never exceeds max_out + 1: the extra byte is a guard, so "the
 * decoder produced a byte past max_out" is seen without trusting any size
 * the input declares, and a bomb costs at most max_out + 1 bytes of memory
 * (plus the codec's own window: at most 128 MiB for zstd, 4 MiB for lz4,
 * 32 KiB for gzip). Decoders report SM_ERR_CORRUPT for anything they
 * reject and for input that ends inside a stream, which is why each loop
 * tells "needs more output room" (grow and go on) from "needs more input"
 * (truncated).
 *
 * The framings (see compress.h for who writes which) are decoded here; the
 * xerial snappy layout, the only one no library handles, is:
 *    0  magic 82 53 4E 41 50 50 59 00   ("\x82SNAPPY\0")
 *    8  int32 version (1), 12 int32 compatible version (1), big-endian
 *   16  chunks: int32 big-endian length n, then n bytes of one raw snappy
 *       block; a chunk may also be the 16-byte header of a further stream
 *       (concatenated streams), recognised by the magic.
 */
#include "compress.h"

#include <lz4frame.h>
#include <snappy-c.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>
#include <zstd.h>

static const uint8_t k_xerial_magic[8] = {0x82, 'S', 'N', 'A', 'P', 'P', 'Y', 0};
#define XERIAL_HEADER_SIZE 16
#define XERIAL_BLOCK_SIZE (32 * 1024) /* snappy-java's default chunk */

const char *sm_codec_name(sm_codec_t codec)
{
    switch (codec) {
    case SM_CODEC_NONE: return "none";
    case SM_CODEC_GZIP: return "gzip";
    case SM_CODEC_SNAPPY: return "snappy";
    case SM_CODEC_LZ4: return "lz4";
    case SM_CODEC_ZSTD: return "zstd";
    }
    return "unknown";
}

/* ------------------------------------------------------- output buffer */

struct obuf {
    uint8_t *p;
    size_t len, cap; /* len counts the headroom too */
    size_t head;     /* bytes reserved in front for the caller */
    size_t limit;    /* head + max_out; cap never exceeds limit + 1 */
};

static void obuf_init(struct obuf *o, size_t max_out, size_t headroom)
{
    /* Keep limit + 1 and doubling far from overflow. */
    headroom = SM_MIN(headroom, SIZE_MAX / 8);
    o->p = headroom ? sm_xmalloc(headroom) : NULL;
    o->len = o->cap = o->head = headroom;
    o->limit = SM_MIN(max_out, SIZE_MAX / 8) + headroom;
}

/* Make room for at least one more byte, aiming for hint bytes in total.
 * SM_ERR_TOO_LARGE once the output already passed the limit. */
static sm_err_t obuf_room(struct obuf *o, size_t hint)
{
    if (o->len > o->limit)
        return SM_ERR_TOO_LARGE;
    if (o->len < o->cap)
        return SM_OK;
    size_t want = SM_MAX(SM_MAX(o->cap * 2, hint), (size_t)4096);
    want = SM_MIN(want, o->limit + 1);
    o->p = sm_xrealloc(o->p, want);
    o->cap = want;
    return SM_OK;
}

/* Hand the buffer to the caller (never NULL, even when empty). */
static sm_err_t obuf_finish(struct obuf *o, uint8_t **out, size_t *outlen)
{
    if (o->len > o->limit) {
        free(o->p);
        return SM_ERR_TOO_LARGE;
    }
    *out = o->p ? o->p : sm_xmalloc(1);
    *outlen = o->len - o->head;
    return SM_OK;
}

/* A first guess of the output size: compressed batches are rarely more
 * than 4x smaller, and a guess only saves reallocations. */
static size_t guess_size(size_t len)
{
    return len < SIZE_MAX / 8 ? len * 4 : len;
}

/* ---------------------------------------------------------------- gzip */

static sm_err_t gzip_decompress(const uint8_t *src, size_t len, struct obuf *o)
{
    if (len == 0)
        return SM_ERR_CORRUPT;
    z_stream zs;
    memset(&zs, 0, sizeof zs);
    /* 15 + 32: largest window, detect a gzip or zlib header. */
    if (inflateInit2(&zs, 15 + 32) != Z_OK)
        return SM_ERR_NOMEM;
    sm_err_t err = SM_OK;
    const uint8_t *in = src;
    size_t in_left = len;
    for (;;) {
        if ((err = obuf_room(o, guess_size(len))) != SM_OK)
            break;
        /* zlib counts in uInt: feed at most 1 GiB per call. */
        uInt in_now = (uInt)SM_MIN(in_left, (size_t)1 << 30);
        uInt out_room = (uInt)SM_MIN(o->cap - o->len, (size_t)1 << 30);
        zs.next_in = (Bytef *)in;
        zs.avail_in = in_now;
        zs.next_out = o->p + o->len;
        zs.avail_out = out_room;
        int rc = inflate(&zs, Z_NO_FLUSH);
        in += in_now - zs.avail_in;
        in_left -= in_now - zs.avail_in;
        o->len += out_room - zs.avail_out;
        if (rc == Z_STREAM_END) {
            if (in_left == 0)
                break;
            /* Another gzip member follows (Java's GZIPInputStream and
             * gunzip both read concatenated members). */
            if (inflateReset(&zs) != Z_OK) {
                err = SM_ERR_CORRUPT;
                break;
            }
            continue;
        }
        if (rc == Z_OK)
            continue;
        if (rc == Z_BUF_ERROR && zs.avail_out == 0)
            continue; /* only output room was missing */
        /* Z_BUF_ERROR with room left: the input ended inside the stream. */
        err = rc == Z_MEM_ERROR ? SM_ERR_NOMEM : SM_ERR_CORRUPT;
        break;
    }
    inflateEnd(&zs);
    if (!err && o->len > o->limit)
        err = SM_ERR_TOO_LARGE;
    return err;
}

static sm_err_t gzip_compress(const uint8_t *src, size_t len, int level, struct obuf *o)
{
    z_stream zs;
    memset(&zs, 0, sizeof zs);
    /* 15 + 16: a gzip header and trailer rather than zlib's. */
    if (deflateInit2(&zs, level, Z_DEFLATED, 15 + 16, 8,
                     Z_DEFAULT_STRATEGY) != Z_OK)
        return SM_ERR_NOMEM;
    const uint8_t *in = src;
    size_t in_left = len;
    int rc;
    do {
        if (o->len == o->cap) {
            uLong bound = deflateBound(&zs, (uLong)SM_MIN(len, (size_t)1 << 30));
            size_t want = SM_MAX(o->cap * 2, (size_t)bound + 64);
            o->p = sm_xrealloc(o->p, want);
            o->cap = want;
        }
        uInt in_now = (uInt)SM_MIN(in_left, (size_t)1 << 30);
        uInt out_room = (uInt)SM_MIN(o->cap - o->len, (size_t)1 << 30);
        zs.next_in = (Bytef *)in;
        zs.avail_in = in_now;
        zs.next_out = o->p + o->len;
        zs.avail_out = out_room;
        rc = deflate(&zs, in_now == in_left ? Z_FINISH : Z_NO_FLUSH);
        in += in_now - zs.avail_in;
        in_left -= in_now - zs.avail_in;
        o->len += out_room - zs.avail_out;
    } while (rc == Z_OK || rc == Z_BUF_ERROR);
    deflateEnd(&zs);
    return rc == Z_STREAM_END ? SM_OK : SM_ERR_INVALID;
}

/* -------------------------------------------------------------- snappy */

static uint32_t be32(const uint8_t *p)
{
    return ((uint32_t)p[0] << 24) | ((uint32_t)p[1] << 16) | ((uint32_t)p[2] << 8) | p[3];
}

/* Append the decoding of one raw snappy block. */
static sm_err_t snappy_block(const uint8_t *src, size_t len, struct obuf *o)
{
    size_t n;
    if (snappy_uncompressed_length((const char *)src, len, &n) != SNAPPY_OK)
        return SM_ERR_CORRUPT;
    if (n > o->limit - o->len)
        return SM_ERR_TOO_LARGE;
    if (o->cap - o->len < n) {
        size_t want = SM_MIN(SM_MAX(o->cap * 2, o->len + n), o->limit + 1);
        o->p = sm_xrealloc(o->p, want);
        o->cap = want;
    }
    size_t got = n;
    if (n == 0) /* nothing to write; still check the block is well formed */
        return snappy_validate_compressed_buffer((const char *)src, len) == SNAPPY_OK
                   ? SM_OK
                   : SM_ERR_CORRUPT;
    if (snappy_uncompress((const char *)src, len, (char *)o->p + o->len, &got) != SNAPPY_OK ||
        got != n)
        return SM_ERR_CORRUPT;
    o->len += n;
    return SM_OK;
}

static bool is_xerial(const uint8_t *p, size_t len)
{
    return len >= sizeof k_xerial_magic && memcmp(p, k_xerial_magic, sizeof k_xerial_magic) == 0;
}

static sm_err_t snappy_decompress(const uint8_t *src, size_t len, struct obuf *o)
{
    if (len == 0)
        return SM_ERR_CORRUPT;
    if (!is_xerial(src, len))
        return snappy_block(src, len, o); /* raw block (librdkafka, sarama) */
    size_t pos = 0;
    while (pos < len) {
        if (is_xerial(src + pos, len - pos)) {
            /* A (further) stream header; the versions are not checked:
             * every writer uses 1 and readers ignore them too. */
            if (len - pos < XERIAL_HEADER_SIZE)
                return SM_ERR_CORRUPT;
            pos += XERIAL_HEADER_SIZE;
            continue;
        }
        if (len - pos < 4)
            return SM_ERR_CORRUPT;
        uint32_t n = be32(src + pos);
        pos += 4;
        if (n > len - pos) /* also rejects "negative" lengths */
            return SM_ERR_CORRUPT;
        if (n == 0)
            continue;
        sm_err_t err = snappy_block(src + pos, n, o);
        if (err)
            return err;
        pos += n;
    }
    return SM_OK;
}

static sm_err_t snappy_compress_xerial(const uint8_t *src, size_t len, struct obuf *o)
{
    size_t nblocks = len / XERIAL_BLOCK_SIZE + 1;
    size_t bound = XERIAL_HEADER_SIZE +
                   nblocks * (4 + snappy_max_compressed_length(XERIAL_BLOCK_SIZE));
    o->p = sm_xmalloc(bound);
    o->cap = bound;
    memcpy(o->p, k_xerial_magic, sizeof k_xerial_magic);
    static const uint8_t versions[8] = {0, 0, 0, 1, 0, 0, 0, 1};
    memcpy(o->p + 8, versions, sizeof versions);
    o->len = XERIAL_HEADER_SIZE;
    for (size_t at = 0; at < len; at += XERIAL_BLOCK_SIZE) {
        size_t chunk = SM_MIN(len - at, (size_t)XERIAL_BLOCK_SIZE);
        size_t clen = o->cap - o->len - 4;
        if (snappy_compress((const char *)src + at, chunk, (char *)o->p + o->len + 4, &clen) !=
            SNAPPY_OK)
            return SM_ERR_INVALID;
        o->p[o->len] = (uint8_t)(clen >> 24);
        o->p[o->len + 1] = (uint8_t)(clen >> 16);
        o->p[o->len + 2] = (uint8_t)(clen >> 8);
        o->p[o->len + 3] = (uint8_t)clen;
        o->len += 4 + clen;
    }
    return SM_OK;
}

/* ----------------------------------------------------------------- lz4 */

static sm_err_t lz4_decompress(const uint8_t *src, size_t len, struct obuf *o)
{
    if (len == 0)
        return SM_ERR_CORRUPT;
    LZ4F_dctx *dctx;
    if (LZ4F_isError(LZ4F_createDecompressionContext(&dctx, LZ4F_VERSION)))
        return SM_ERR_NOMEM;
    sm_err_t err = SM_OK;
    size_t pos = 0;
    for (;;) {
        if ((err = obuf_room(o, guess_size(len))) != SM_OK)
            break;
        size_t room = o->cap - o->len, in_now = len - pos;
        size_t r = LZ4F_decompress(dctx, o->p + o->len, &room, src + pos, &in_now, NULL);
        if (LZ4F_isError(r)) {
            err = SM_ERR_CORRUPT;
            break;
        }
        pos += in_now;
        o->len += room;
        if (in_now == 0 && room == 0) {
            err = SM_ERR_CORRUPT; /* no progress with room and input left */
            break;
        }
        if (r == 0 && pos == len)
            break; /* last frame complete; a new frame may follow otherwise */
        if (pos == len && o->len < o->cap) {
            err = SM_ERR_CORRUPT; /* wants more input: truncated */
            break;
        }
    }
    LZ4F_freeDecompressionContext(dctx);
    if (!err && o->len > o->limit)
        err = SM_ERR_TOO_LARGE;
    return err;
}

static sm_err_t lz4_compress(const uint8_t *src, size_t len, int level, struct obuf *o)
{
    /* Kafka's Java producer: 64 KiB independent blocks, no content size,
     * no checksums beyond the header's. */
    LZ4F_preferences_t prefs;
    memset(&prefs, 0, sizeof prefs);
    prefs.frameInfo.blockSizeID = LZ4F_max64KB;
    prefs.frameInfo.blockMode = LZ4F_blockIndependent;
    prefs.compressionLevel = level;
    size_t bound = LZ4F_compressFrameBound(len, &prefs);
    o->p = sm_xmalloc(bound);
    o->cap = bound;
    size_t n = LZ4F_compressFrame(o->p, bound, src, len, &prefs);
    if (LZ4F_isError(n))
        return SM_ERR_INVALID;
    o->len = n;
    return SM_OK;
}

/* ---------------------------------------------------------------- zstd */

static sm_err_t zstd_decompress(const uint8_t *src, size_t len, struct obuf *o)
{
    if (len == 0)
        return SM_ERR_CORRUPT;
    ZSTD_DCtx *dctx = ZSTD_createDCtx();
    if (!dctx)
        return SM_ERR_NOMEM;
    /* The default window limit (2^27) stays: producers at high levels
     * without a pledged size declare large windows for small data. */
    sm_err_t err = SM_OK;
    ZSTD_inBuffer in = {src, len, 0};
    for (;;) {
        if ((err = obuf_room(o, guess_size(len))) != SM_OK)
            break;
        ZSTD_outBuffer out = {o->p, o->cap, o->len};
        size_t in_before = in.pos, out_before = out.pos;
        size_t r = ZSTD_decompressStream(dctx, &out, &in);
        o->len = out.pos;
        if (ZSTD_isError(r)) {
            err = SM_ERR_CORRUPT;
            break;
        }
        if (r == 0 && in.pos == in.size)
            break; /* last frame decoded and flushed */
        if (in.pos == in_before && out.pos == out_before) {
            err = SM_ERR_CORRUPT; /* no progress with room and input left */
            break;
        }
        if (in.pos == in.size && out.pos < out.size) {
            err = SM_ERR_CORRUPT; /* wants more input: truncated */
            break;
        }
    }
    ZSTD_freeDCtx(dctx);
    if (!err && o->len > o->limit)
        err = SM_ERR_TOO_LARGE;
    return err;
}

static sm_err_t zstd_compress(const uint8_t *src, size_t len, int level, struct obuf *o)
{
    ZSTD_CCtx *cctx = ZSTD_createCCtx();
    if (!cctx)
        return SM_ERR_NOMEM;
    /* Like zstd-jni's stream in the Java client: level 3, no content size
     * in the frame header (so readers must not depend on one). */
    ZSTD_CCtx_setParameter(cctx, ZSTD_c_compressionLevel, level);
    ZSTD_CCtx_setParameter(cctx, ZSTD_c_contentSizeFlag, 0);
    size_t bound = ZSTD_compressBound(len);
    o->p = sm_xmalloc(bound);
    o->cap = bound;
    size_t n = ZSTD_compress2(cctx, o->p, bound, src, len);
    ZSTD_freeCCtx(cctx);
    if (ZSTD_isError(n))
        return SM_ERR_INVALID;
    o->len = n;
    return SM_OK;
}

/* ----------------------------------------------------------------- API */

sm_err_t sm_decompress_headroom(sm_codec_t codec, const uint8_t *src, size_t len,
                                size_t max_out, size_t headroom, uint8_t **out, size_t *outlen)
{
    *out = NULL;
    *outlen = 0;
    if (codec > SM_CODEC_ZSTD)
        return SM_ERR_UNSUPPORTED;
    struct obuf o;
    obuf_init(&o, max_out, headroom);
    sm_err_t err;
    switch (codec) {
    case SM_CODEC_NONE:
        if (len > o.limit - o.len) {
            err = SM_ERR_TOO_LARGE;
            break;
        }
        o.p = sm_xrealloc(o.p, o.len + len + 1);
        if (len)
            memcpy(o.p + o.len, src, len);
        o.len += len;
        o.cap = o.len + 1;
        err = SM_OK;
        break;
    case SM_CODEC_GZIP: err = gzip_decompress(src, len, &o); break;
    case SM_CODEC_SNAPPY: err = snappy_decompress(src, len, &o); break;
    case SM_CODEC_LZ4: err = lz4_decompress(src, len, &o); break;
    case SM_CODEC_ZSTD: err = zstd_decompress(src, len, &o); break;
    default: err = SM_ERR_UNSUPPORTED; break;
    }
    if (err) {
        free(o.p);
        return err;
    }
    return obuf_finish(&o, out, outlen);
}

sm_err_t sm_decompress(sm_codec_t codec, const uint8_t *src, size_t len, size_t max_out,
                       uint8_t **out, size_t *outlen)
{
    return sm_decompress_headroom(codec, src, len, max_out, 0, out, outlen);
}

sm_err_t sm_compress(sm_codec_t codec, const uint8_t *src, size_t len, uint8_t **out,
                     size_t *outlen)
{
    return sm_compress_level(codec, SM_COMPRESS_LEVEL_DEFAULT, src, len, out, outlen);
}

int sm_compress_level_default(sm_codec_t codec)
{
    switch (codec) {
    case SM_CODEC_GZIP: return Z_DEFAULT_COMPRESSION;
    case SM_CODEC_LZ4: return 0; /* liblz4's fast default, what the clients write */
    case SM_CODEC_ZSTD: return 3;
    default: return 0;
    }
}

sm_err_t sm_compress_level(sm_codec_t codec, int level, const uint8_t *src, size_t len,
                           uint8_t **out, size_t *outlen)
{
    if (level == SM_COMPRESS_LEVEL_DEFAULT)
        level = sm_compress_level_default(codec);
    *out = NULL;
    *outlen = 0;
    struct obuf o;
    obuf_init(&o, SIZE_MAX, 0);
    sm_err_t err;
    switch (codec) {
    case SM_CODEC_NONE:
        o.p = sm_xmalloc(len ? len : 1);
        if (len)
            memcpy(o.p, src, len);
        o.len = len;
        err = SM_OK;
        break;
    case SM_CODEC_GZIP: err = gzip_compress(src, len, level, &o); break;
    case SM_CODEC_SNAPPY: err = snappy_compress_xerial(src, len, &o); break;
    case SM_CODEC_LZ4: err = lz4_compress(src, len, level, &o); break;
    case SM_CODEC_ZSTD: err = zstd_compress(src, len, level, &o); break;
    default: return SM_ERR_UNSUPPORTED;
    }
    if (err) {
        free(o.p);
        return err;
    }
    *out = o.p ? o.p : sm_xmalloc(1);
    *outlen = o.len;
    return SM_OK;
}
