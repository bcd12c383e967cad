/*
 * framer.h - cuts a byte stream into size-prefixed frames (Kafka's
 * framing: int32 big-endian size, then that many bytes), one connection's
 * input state.
 *
 * The framer never allocates what a size prefix merely promises: a frame
 * body grows with the bytes that actually arrived (doubling), unless a
 * recycled buffer of the right size is at hand in the pool. Sizes outside
 * [min_size, max_size] are an error before anything is allocated.
 *
 * Two ways in:
 *  - sm_framer_feed(): bytes that were read elsewhere (a shared read
 *    buffer); complete frames come out one at a time;
 *  - sm_framer_direct()/sm_framer_direct_done(): while a large frame is
 *    in progress, the caller reads its remainder straight into it.
 * Frames handed out are bufpool buffers owned by the caller (release with
 * sm_buf_release). Owned by one thread.
 */
#ifndef SM_FRAMER_H
#define SM_FRAMER_H

#include "bufpool.h"
#include "sm_common.h"

#include <stddef.h>
#include <stdint.h>

#define SM_FRAMER_DIRECT_MIN (32 * 1024) /* remainders this large are read directly */

typedef struct sm_framer {
    sm_bufpool_t *pool;  /* borrowed; may be NULL */
    int32_t min_size, max_size;
    uint8_t hdr[4];      /* size prefix bytes seen so far */
    int hdr_have;
    uint8_t *part;       /* body being assembled (bufpool buffer) or NULL */
    int32_t part_len, part_have, part_cap;
    bool last_big;       /* the last frame begun was large */
    int32_t bad_size;    /* the size that made feed/direct fail */
} sm_framer_t;

void sm_framer_init(sm_framer_t *f, sm_bufpool_t *pool, int32_t min_size, int32_t max_size);
/* Drop a partial frame (buffer back to the pool). */
void sm_framer_reset(sm_framer_t *f);

/* Consume up to n bytes of p, stopping right after the first frame that
 * completes: *frame and *len receive it (else *frame is NULL). *used says how
 * many bytes were consumed. Returns SM_ERR_PARSE for a size prefix out of
 * range (f->bad_size holds it; the stream is unusable after that). */
sm_err_t sm_framer_feed(sm_framer_t *f, const uint8_t *p, size_t n, size_t *used, uint8_t **frame,
                        int32_t *len) SM_MUST_CHECK;

/* If a large frame is in progress, where to read its next bytes: returns
 * true with *dst and *room set (room grows as bytes arrive). */
bool sm_framer_direct(sm_framer_t *f, uint8_t **dst, size_t *room);
/* n bytes were read into *dst; *frame and *len as in feed. */
void sm_framer_direct_done(sm_framer_t *f, size_t n, uint8_t **frame, int32_t *len);

/* How much to read through a shared buffer next: after a large frame only a
 * little (the next prefix), so the next large body is read directly instead
 * of being copied out of the shared buffer. */
static inline size_t sm_framer_want(const sm_framer_t *f, size_t shared_size)
{
    return f->last_big ? SM_MIN(shared_size, (size_t)4096) : shared_size;
}

/* True if part of a frame has arrived. */
static inline bool sm_framer_partial(const sm_framer_t *f) { return f->hdr_have > 0; }

#endif
