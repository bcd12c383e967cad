/*
 * bufpool.c - see bufpool.h. The pool is a short unsorted array searched
 * linearly for the smallest buffer that fits (it holds a handful).
 */
#include "bufpool.h"

#include <stdlib.h>
#include <string.h>

#define HDR 16

struct sm_bufpool {
    uint8_t **bufs;
    int n, max_bufs;
    size_t bytes, max_bytes, min_size;
    int64_t last_use_ms;
};

static size_t cap_of(const uint8_t *b)
{
    size_t cap;
    memcpy(&cap, b - HDR, sizeof cap);
    return cap;
}

size_t sm_buf_cap(const uint8_t *b) { return cap_of(b); }

uint8_t *sm_buf_grow(uint8_t *b, size_t cap)
{
    uint8_t *base = sm_xrealloc(b ? b - HDR : NULL, cap + HDR);
    memcpy(base, &cap, sizeof cap);
    return base + HDR;
}

sm_bufpool_t *sm_bufpool_new(int max_bufs, size_t max_bytes, size_t min_size)
{
    sm_bufpool_t *p = sm_xcalloc(1, sizeof *p);
    p->bufs = sm_xcalloc((size_t)max_bufs, sizeof *p->bufs);
    p->max_bufs = max_bufs;
    p->max_bytes = max_bytes;
    p->min_size = min_size;
    return p;
}

void sm_bufpool_trim(sm_bufpool_t *p)
{
    for (int i = 0; i < p->n; i++)
        free(p->bufs[i] - HDR);
    p->n = 0;
    p->bytes = 0;
}

void sm_bufpool_free(sm_bufpool_t *p)
{
    if (!p)
        return;
    sm_bufpool_trim(p);
    free(p->bufs);
    free(p);
}

size_t sm_bufpool_bytes(const sm_bufpool_t *p) { return p->bytes; }
int64_t sm_bufpool_last_use_ms(const sm_bufpool_t *p) { return p->last_use_ms; }

uint8_t *sm_bufpool_take(sm_bufpool_t *p, size_t size)
{
    if (!p || size < p->min_size)
        return NULL;
    int best = -1;
    for (int i = 0; i < p->n; i++) {
        size_t cap = cap_of(p->bufs[i]);
        if (cap >= size && cap / 4 <= size && (best < 0 || cap < cap_of(p->bufs[best])))
            best = i;
    }
    if (best < 0)
        return NULL;
    uint8_t *b = p->bufs[best];
    p->bufs[best] = p->bufs[--p->n];
    p->bytes -= cap_of(b);
    p->last_use_ms = sm_now_mono_ms();
    return b;
}

uint8_t *sm_buf_new(sm_bufpool_t *p, size_t size)
{
    uint8_t *b = sm_bufpool_take(p, size);
    return b ? b : sm_buf_grow(NULL, size);
}

void sm_buf_release(sm_bufpool_t *p, uint8_t *b)
{
    if (!b)
        return;
    size_t cap = cap_of(b);
    if (p && cap >= p->min_size && cap <= p->max_bytes) {
        if (p->n == p->max_bufs || p->bytes + cap > p->max_bytes) {
            /* Full: evict the smallest if this one is larger (large frames
             * are the expensive ones to fault in again). */
            int small = -1;
            for (int i = 0; i < p->n; i++)
                if (small < 0 || cap_of(p->bufs[i]) < cap_of(p->bufs[small]))
                    small = i;
            if (small >= 0 && cap_of(p->bufs[small]) < cap &&
                p->bytes - cap_of(p->bufs[small]) + cap <= p->max_bytes) {
                uint8_t *old = p->bufs[small];
                p->bytes -= cap_of(old);
                free(old - HDR);
                p->bufs[small] = b;
                p->bytes += cap;
                return;
            }
        } else {
            p->bufs[p->n++] = b;
            p->bytes += cap;
            return;
        }
    }
    free(b - HDR);
}
