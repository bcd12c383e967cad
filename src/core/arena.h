/*
 * arena.h - bump allocator for per-request memory.
 *
 * A request's decoded structures, its response structures and scratch strings
 * all live in one arena that is reset when the response has been encoded.
 * Allocation aborts on OOM; callers bound sizes before allocating (decoders
 * check array counts against the bytes remaining). Owned by one thread.
 */
#ifndef SM_ARENA_H
#define SM_ARENA_H

#include <stddef.h>

typedef struct sm_arena_block sm_arena_block_t;

typedef struct sm_arena {
    sm_arena_block_t *head; /* current block; older blocks chained behind it */
    size_t total;           /* bytes allocated from malloc */
} sm_arena_t;

void sm_arena_init(sm_arena_t *a);
/* Zeroed memory, 8-byte aligned, valid until reset/free. */
void *sm_arena_alloc(sm_arena_t *a, size_t n);
/* Copy of s[0..n) plus a NUL. */
char *sm_arena_strndup(sm_arena_t *a, const char *s, size_t n);
char *sm_arena_sprintf(sm_arena_t *a, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Forget all allocations, keeping the first block for reuse. */
void sm_arena_reset(sm_arena_t *a);
void sm_arena_free(sm_arena_t *a);

#define SM_ARENA_NEW(a, type, n) ((type *)sm_arena_alloc((a), sizeof(type) * (size_t)(n)))

#endif
