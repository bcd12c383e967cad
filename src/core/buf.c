/*
 * buf.c - varints and the growable writer; see buf.h. Owned by one thread.
 */
#include "buf.h"

#include <stdlib.h>

uint32_t sm_rd_uvarint_slow(sm_rd_t *r)
{
    uint32_t v = 0;
    for (int shift = 0; shift < 35; shift += 7) {
        if (!sm_rd_need(r, 1))
            return 0;
        uint8_t b = *r->p++;
        if (shift == 28 && (b & 0xf0)) {
            r->err = SM_ERR_PARSE;
            return 0;
        }
        v |= (uint32_t)(b & 0x7f) << shift;
        if (!(b & 0x80))
            return v;
    }
    r->err = SM_ERR_PARSE;
    return 0;
}

uint64_t sm_rd_uvarlong_slow(sm_rd_t *r)
{
    uint64_t v = 0;
    for (int shift = 0; shift < 70; shift += 7) {
        if (!sm_rd_need(r, 1))
            return 0;
        uint8_t b = *r->p++;
        if (shift == 63 && (b & 0xfe)) {
            r->err = SM_ERR_PARSE;
            return 0;
        }
        v |= (uint64_t)(b & 0x7f) << shift;
        if (!(b & 0x80))
            return v;
    }
    r->err = SM_ERR_PARSE;
    return 0;
}

int sm_uvarint_size(uint64_t v)
{
    int n = 1;
    while (v >= 0x80) {
        v >>= 7;
        n++;
    }
    return n;
}

void sm_wbuf_uvarint(sm_wbuf_t *w, uint64_t v)
{
    uint8_t *p = sm_wbuf_space(w, 10);
    size_t n = 0;
    while (v >= 0x80) {
        p[n++] = (uint8_t)(v | 0x80);
        v >>= 7;
    }
    p[n++] = (uint8_t)v;
    w->len += n;
}

void sm_wbuf_init(sm_wbuf_t *w)
{
    memset(w, 0, sizeof *w);
}

void sm_wbuf_grow(sm_wbuf_t *w, size_t extra)
{
    size_t cap = w->cap ? w->cap : 256;
    while (cap - w->len < extra)
        cap *= 2;
    w->mem = sm_xrealloc(w->mem, cap);
    w->cap = cap;
}

void sm_wbuf_reset(sm_wbuf_t *w)
{
    for (int i = 0; i < w->nsplices; i++)
        sm_ref_release(w->splices[i].ref);
    w->nsplices = 0;
    w->splice_bytes = 0;
    w->len = 0;
}

void sm_wbuf_free(sm_wbuf_t *w)
{
    sm_wbuf_reset(w);
    free(w->mem);
    free(w->splices);
    memset(w, 0, sizeof *w);
}

void sm_wbuf_splice(sm_wbuf_t *w, int fd, int64_t off, int64_t len, sm_ref_t *ref)
{
    if (len <= 0)
        return;
    if (w->nsplices == w->splices_cap) {
        w->splices_cap = w->splices_cap ? w->splices_cap * 2 : 8;
        w->splices = sm_xrealloc(w->splices, sizeof(sm_splice_t) * (size_t)w->splices_cap);
    }
    sm_splice_t *s = &w->splices[w->nsplices++];
    s->at = w->len;
    s->fd = fd;
    s->off = off;
    s->len = len;
    s->ref = sm_ref_keep(ref);
    w->splice_bytes += len;
}
