/*
 * buf.h - big-endian/varint reader over borrowed bytes, and the growable
 * response writer that can splice file ranges (for sendfile) between its
 * memory bytes.
 *
 * Reader (sm_rd_t): a cursor over bytes it does not own. Every getter checks
 * bounds; on underflow or a malformed varint it sets r->err (sticky) and
 * returns 0, so decoders read straight through and check r->err once.
 *
 * Writer (sm_wbuf_t): one contiguous, growable memory buffer plus an ordered
 * list of file splices. A splice says "at this point of the memory stream,
 * send len bytes of fd from offset off". The wire output is
 *     mem[0..s0.at) file(s0) mem[s0.at..s1.at) file(s1) ... mem[..len)
 * so record data reaches the socket with sendfile(2) and is never copied
 * through user space. Each splice holds a reference (sm_ref_t) that keeps
 * the file open until the splice is sent or the writer is freed.
 * Owned by one thread.
 */
#ifndef SM_BUF_H
#define SM_BUF_H

#include "ref.h"
#include "sm_common.h"

#include <string.h>

/* ---------------------------------------------------------------- reader */

typedef struct sm_rd {
    const uint8_t *p;   /* next byte */
    const uint8_t *end; /* one past the last byte */
    const uint8_t *start;
    int err; /* sticky: 0 or an sm_err_t (SM_ERR_PARSE) */
} sm_rd_t;

static inline void sm_rd_init(sm_rd_t *r, const void *data, size_t len)
{
    r->start = r->p = (const uint8_t *)data;
    r->end = r->p + len;
    r->err = 0;
}

static inline size_t sm_rd_remaining(const sm_rd_t *r) { return (size_t)(r->end - r->p); }
static inline size_t sm_rd_offset(const sm_rd_t *r) { return (size_t)(r->p - r->start); }

static inline bool sm_rd_need(sm_rd_t *r, size_t n)
{
    if (SM_UNLIKELY(r->err || (size_t)(r->end - r->p) < n)) {
        r->err = SM_ERR_PARSE;
        r->p = r->end;
        return false;
    }
    return true;
}

static inline uint8_t sm_rd_u8(sm_rd_t *r)
{
    if (!sm_rd_need(r, 1))
        return 0;
    return *r->p++;
}
static inline int8_t sm_rd_i8(sm_rd_t *r) { return (int8_t)sm_rd_u8(r); }

static inline uint16_t sm_rd_u16(sm_rd_t *r)
{
    if (!sm_rd_need(r, 2))
        return 0;
    uint16_t v = (uint16_t)((r->p[0] << 8) | r->p[1]);
    r->p += 2;
    return v;
}
static inline int16_t sm_rd_i16(sm_rd_t *r) { return (int16_t)sm_rd_u16(r); }

static inline uint32_t sm_rd_u32(sm_rd_t *r)
{
    if (!sm_rd_need(r, 4))
        return 0;
    uint32_t v = ((uint32_t)r->p[0] << 24) | ((uint32_t)r->p[1] << 16) |
                 ((uint32_t)r->p[2] << 8) | r->p[3];
    r->p += 4;
    return v;
}
static inline int32_t sm_rd_i32(sm_rd_t *r) { return (int32_t)sm_rd_u32(r); }

static inline uint64_t sm_rd_u64(sm_rd_t *r)
{
    uint64_t hi = sm_rd_u32(r);
    return (hi << 32) | sm_rd_u32(r);
}
static inline int64_t sm_rd_i64(sm_rd_t *r) { return (int64_t)sm_rd_u64(r); }

static inline double sm_rd_f64(sm_rd_t *r)
{
    uint64_t u = sm_rd_u64(r);
    double d;
    memcpy(&d, &u, sizeof d);
    return d;
}

/* Multi-byte varint decoding, out of line; the inline versions below take
 * the one-byte case (most record lengths, deltas and counts) without a call. */
uint32_t sm_rd_uvarint_slow(sm_rd_t *r);
uint64_t sm_rd_uvarlong_slow(sm_rd_t *r);

/* Unsigned LEB128 varint, at most 5 bytes (32-bit). One- and two-byte
 * encodings (values below 16384: record lengths, deltas, sizes) inline. */
static inline uint32_t sm_rd_uvarint(sm_rd_t *r)
{
    if (SM_LIKELY(!r->err && r->end - r->p >= 2)) {
        uint32_t b0 = r->p[0];
        if (!(b0 & 0x80)) {
            r->p += 1;
            return b0;
        }
        uint32_t b1 = r->p[1];
        if (!(b1 & 0x80)) {
            r->p += 2;
            return (b0 & 0x7f) | (b1 << 7);
        }
    }
    return sm_rd_uvarint_slow(r);
}

/* Unsigned LEB128 varint, at most 10 bytes (64-bit). */
static inline uint64_t sm_rd_uvarlong(sm_rd_t *r)
{
    if (SM_LIKELY(!r->err && r->p < r->end && !(*r->p & 0x80)))
        return *r->p++;
    return sm_rd_uvarlong_slow(r);
}

/* Zigzag signed varints. */
static inline int32_t sm_rd_varint(sm_rd_t *r)
{
    uint32_t u = sm_rd_uvarint(r);
    return (int32_t)((u >> 1) ^ (~(u & 1) + 1));
}

static inline int64_t sm_rd_varlong(sm_rd_t *r)
{
    uint64_t u = sm_rd_uvarlong(r);
    return (int64_t)((u >> 1) ^ (~(u & 1) + 1));
}

/* Borrow n bytes; returns NULL (and sets err) if fewer remain. */
static inline const uint8_t *sm_rd_take(sm_rd_t *r, size_t n)
{
    if (!sm_rd_need(r, n))
        return NULL;
    const uint8_t *p = r->p;
    r->p += n;
    return p;
}

/* ---------------------------------------------------------------- writer */

typedef struct sm_splice {
    size_t at;      /* position in the memory stream where the file bytes go */
    int fd;         /* borrowed; kept open by ref */
    int64_t off;    /* file offset */
    int64_t len;    /* bytes of file */
    sm_ref_t *ref;  /* reference held by the splice (may be NULL) */
} sm_splice_t;

typedef struct sm_wbuf {
    uint8_t *mem;
    size_t len, cap;
    sm_splice_t *splices;
    int nsplices, splices_cap;
    int64_t splice_bytes; /* sum of splice lengths */
} sm_wbuf_t;

void sm_wbuf_init(sm_wbuf_t *w);
/* Release splice references and memory. */
void sm_wbuf_free(sm_wbuf_t *w);
/* Empty the writer (releases splice refs), keeping capacity. */
void sm_wbuf_reset(sm_wbuf_t *w);
/* Total wire length: memory bytes plus spliced file bytes. */
static inline int64_t sm_wbuf_total(const sm_wbuf_t *w) { return (int64_t)w->len + w->splice_bytes; }

void sm_wbuf_grow(sm_wbuf_t *w, size_t extra);
static inline uint8_t *sm_wbuf_space(sm_wbuf_t *w, size_t n)
{
    if (SM_UNLIKELY(w->cap - w->len < n))
        sm_wbuf_grow(w, n);
    return w->mem + w->len;
}

static inline void sm_wbuf_bytes(sm_wbuf_t *w, const void *p, size_t n)
{
    if (n == 0)
        return;
    memcpy(sm_wbuf_space(w, n), p, n);
    w->len += n;
}
static inline void sm_wbuf_u8(sm_wbuf_t *w, uint8_t v) { *sm_wbuf_space(w, 1) = v; w->len++; }
static inline void sm_wbuf_i8(sm_wbuf_t *w, int8_t v) { sm_wbuf_u8(w, (uint8_t)v); }
static inline void sm_wbuf_u16(sm_wbuf_t *w, uint16_t v)
{
    uint8_t *p = sm_wbuf_space(w, 2);
    p[0] = (uint8_t)(v >> 8);
    p[1] = (uint8_t)v;
    w->len += 2;
}
static inline void sm_wbuf_i16(sm_wbuf_t *w, int16_t v) { sm_wbuf_u16(w, (uint16_t)v); }
static inline void sm_wbuf_u32(sm_wbuf_t *w, uint32_t v)
{
    uint8_t *p = sm_wbuf_space(w, 4);
    p[0] = (uint8_t)(v >> 24);
    p[1] = (uint8_t)(v >> 16);
    p[2] = (uint8_t)(v >> 8);
    p[3] = (uint8_t)v;
    w->len += 4;
}
static inline void sm_wbuf_i32(sm_wbuf_t *w, int32_t v) { sm_wbuf_u32(w, (uint32_t)v); }
static inline void sm_wbuf_u64(sm_wbuf_t *w, uint64_t v)
{
    sm_wbuf_u32(w, (uint32_t)(v >> 32));
    sm_wbuf_u32(w, (uint32_t)v);
}
static inline void sm_wbuf_i64(sm_wbuf_t *w, int64_t v) { sm_wbuf_u64(w, (uint64_t)v); }
static inline void sm_wbuf_f64(sm_wbuf_t *w, double d)
{
    uint64_t u;
    memcpy(&u, &d, sizeof u);
    sm_wbuf_u64(w, u);
}
void sm_wbuf_uvarint(sm_wbuf_t *w, uint64_t v);
static inline void sm_wbuf_varint(sm_wbuf_t *w, int32_t v)
{
    sm_wbuf_uvarint(w, (uint32_t)(((uint32_t)v << 1) ^ (uint32_t)(v >> 31)));
}
static inline void sm_wbuf_varlong(sm_wbuf_t *w, int64_t v)
{
    sm_wbuf_uvarint(w, ((uint64_t)v << 1) ^ (uint64_t)(v >> 63));
}
/* Bytes an unsigned varint takes. */
int sm_uvarint_size(uint64_t v);

/* Reserve n bytes to patch later; returns their position. */
static inline size_t sm_wbuf_reserve(sm_wbuf_t *w, size_t n)
{
    size_t at = w->len;
    memset(sm_wbuf_space(w, n), 0, n);
    w->len += n;
    return at;
}
static inline void sm_wbuf_patch_i32(sm_wbuf_t *w, size_t at, int32_t v)
{
    uint8_t *p = w->mem + at;
    uint32_t u = (uint32_t)v;
    p[0] = (uint8_t)(u >> 24);
    p[1] = (uint8_t)(u >> 16);
    p[2] = (uint8_t)(u >> 8);
    p[3] = (uint8_t)u;
}

/* Append a file range at the current position; takes a new reference on ref
 * (if not NULL) that is dropped when the writer is reset or freed. */
void sm_wbuf_splice(sm_wbuf_t *w, int fd, int64_t off, int64_t len, sm_ref_t *ref);

#endif
