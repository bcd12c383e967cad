/*
 * bufpool.h - byte buffers that remember their capacity, and a small pool
 * that recycles the large ones.
 *
 * Why: a producer sends ~1 MiB frames back to back. Allocating each frame
 * fresh and freeing it after the append makes glibc hand the memory back
 * to the kernel (heap trim / munmap) and fault it in again, zeroed, for the
 * next frame - measured at a third of the broker's CPU on 1 KB produce.
 * Recycling a few large buffers keeps their pages mapped.
 *
 * A buffer is malloc'ed memory with a 16-byte header holding its capacity;
 * the pointer handed out is just after the header (16-byte aligned). Every
 * buffer from sm_buf_new/sm_buf_grow must be released with sm_buf_release.
 *
 * The pool keeps at most max_bufs buffers of at least min_size bytes and at
 * most max_bytes in total; sm_bufpool_trim() frees them all (after a quiet
 * period, so a burst does not pin memory forever). A pool belongs to one
 * thread (one event loop); the buffers themselves may be passed around.
 */
#ifndef SM_BUFPOOL_H
#define SM_BUFPOOL_H

#include "sm_common.h"

#include <stddef.h>
#include <stdint.h>

typedef struct sm_bufpool sm_bufpool_t;

sm_bufpool_t *sm_bufpool_new(int max_bufs, size_t max_bytes, size_t min_size);
void sm_bufpool_free(sm_bufpool_t *p);
/* Free every pooled buffer. */
void sm_bufpool_trim(sm_bufpool_t *p);
/* Bytes currently pooled, and monotonic ms of the last take (0 = never). */
size_t sm_bufpool_bytes(const sm_bufpool_t *p);
int64_t sm_bufpool_last_use_ms(const sm_bufpool_t *p);

/* A buffer of at least size bytes: a pooled one if one fits (capacity up
 * to 4x size), else a fresh allocation of exactly size. p may be NULL. */
uint8_t *sm_buf_new(sm_bufpool_t *p, size_t size);
/* Only a pooled buffer (or NULL): for callers that must not allocate yet. */
uint8_t *sm_bufpool_take(sm_bufpool_t *p, size_t size);
/* Resize (contents kept, like realloc); b may be NULL. */
uint8_t *sm_buf_grow(uint8_t *b, size_t cap);
size_t sm_buf_cap(const uint8_t *b);
/* Back to the pool if it is large and there is room, else freed. p and b
 * may be NULL. */
void sm_buf_release(sm_bufpool_t *p, uint8_t *b);

#endif
