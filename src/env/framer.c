/*
 * framer.c - see framer.h.
 *
 * State: hdr_have < 4 while the size prefix is incomplete; once it is,
 * part_len is the body size, part_have the bytes of it received, part_cap
 * the room in part (never more than part_len, so a finished body is
 * exactly its size).
 */
#include "framer.h"

#include <string.h>

#define PART_MIN 4096

void sm_framer_init(sm_framer_t *f, sm_bufpool_t *pool, int32_t min_size, int32_t max_size)
{
    memset(f, 0, sizeof *f);
    f->pool = pool;
    f->min_size = min_size;
    f->max_size = max_size;
}

void sm_framer_reset(sm_framer_t *f)
{
    sm_buf_release(f->pool, f->part);
    f->part = NULL;
    f->part_len = f->part_have = f->part_cap = 0;
    f->hdr_have = 0;
}

/* The prefix is complete: check it and start the body. */
static sm_err_t begin(sm_framer_t *f, const uint8_t *p)
{
    int32_t size = (int32_t)(((uint32_t)p[0] << 24) | ((uint32_t)p[1] << 16) |
                             ((uint32_t)p[2] << 8) | p[3]);
    if (size < f->min_size || size > f->max_size) {
        f->bad_size = size;
        return SM_ERR_PARSE;
    }
    f->hdr_have = 4;
    f->part_len = size;
    f->part_have = 0;
    f->last_big = size >= SM_FRAMER_DIRECT_MIN;
    /* A recycled buffer costs nothing to take whole; fresh memory is only
     * allocated as bytes arrive (reserve). */
    f->part = sm_bufpool_take(f->pool, (size_t)size);
    f->part_cap = f->part ? size : 0;
    return SM_OK;
}

/* Room for want more body bytes, growing with what arrived. */
static void reserve(sm_framer_t *f, int32_t want)
{
    int64_t need = (int64_t)f->part_have + want;
    if (need <= f->part_cap)
        return;
    int64_t cap = SM_MAX((int64_t)f->part_cap * 2, (int64_t)PART_MIN);
    cap = SM_MAX(cap, need);
    cap = SM_MIN(cap, (int64_t)f->part_len);
    f->part = sm_buf_grow(f->part, (size_t)cap);
    f->part_cap = (int32_t)cap;
}

/* The body is complete: hand it out and start over. */
static void finish(sm_framer_t *f, uint8_t **frame, int32_t *len)
{
    *frame = f->part;
    *len = f->part_len;
    f->part = NULL;
    f->part_len = f->part_have = f->part_cap = 0;
    f->hdr_have = 0;
}

sm_err_t sm_framer_feed(sm_framer_t *f, const uint8_t *p, size_t n, size_t *used, uint8_t **frame,
                        int32_t *len)
{
    size_t pos = 0;
    *frame = NULL;
    *len = 0;
    while (pos < n) {
        if (f->hdr_have < 4) {
            if (f->hdr_have == 0 && n - pos >= 4) {
                /* Fast path: the prefix, and maybe the whole frame, in p. */
                sm_err_t err = begin(f, p + pos);
                if (err) {
                    *used = pos + 4; /* like the slow path: the prefix was consumed */
                    return err;
                }
                pos += 4;
                size_t size = (size_t)f->part_len;
                if (n - pos >= size) {
                    if (!f->part) {
                        f->part = sm_buf_new(NULL, size);
                        f->part_cap = f->part_len;
                    }
                    memcpy(f->part, p + pos, size);
                    pos += size;
                    finish(f, frame, len);
                    *used = pos;
                    return SM_OK;
                }
                continue;
            }
            size_t take = SM_MIN((size_t)(4 - f->hdr_have), n - pos);
            memcpy(f->hdr + f->hdr_have, p + pos, take);
            f->hdr_have += (int)take;
            pos += take;
            if (f->hdr_have == 4) {
                f->hdr_have = 0; /* begin() sets it once the size is accepted */
                sm_err_t err = begin(f, f->hdr);
                if (err) {
                    f->hdr_have = 4;
                    *used = pos;
                    return err;
                }
            }
            continue;
        }
        size_t take = SM_MIN((size_t)(f->part_len - f->part_have), n - pos);
        reserve(f, (int32_t)take);
        memcpy(f->part + f->part_have, p + pos, take);
        f->part_have += (int32_t)take;
        pos += take;
        if (f->part_have == f->part_len) {
            finish(f, frame, len);
            break;
        }
    }
    *used = pos;
    return SM_OK;
}

bool sm_framer_direct(sm_framer_t *f, uint8_t **dst, size_t *room)
{
    if (f->hdr_have < 4 || f->part_len - f->part_have < SM_FRAMER_DIRECT_MIN)
        return false;
    /* Doubling with what arrived, at most 4 MiB a read; a recycled buffer
     * already has it all. */
    int32_t left = f->part_len - f->part_have;
    int32_t want = SM_MIN(left, SM_MIN(SM_MAX(f->part_have, 64 * 1024), 4 << 20));
    reserve(f, want);
    *dst = f->part + f->part_have;
    *room = (size_t)SM_MIN(f->part_cap - f->part_have, left);
    return true;
}

void sm_framer_direct_done(sm_framer_t *f, size_t n, uint8_t **frame, int32_t *len)
{
    *frame = NULL;
    *len = 0;
    f->part_have += (int32_t)n;
    if (f->part_have == f->part_len)
        finish(f, frame, len);
}
