/*
 * arena.c - see arena.h. Owned by one thread.
 */
#include "arena.h"
#include "sm_common.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct sm_arena_block {
    sm_arena_block_t *next;
    size_t size, used;
    _Alignas(16) unsigned char data[];
};

#define SM_ARENA_BLOCK 16384

void sm_arena_init(sm_arena_t *a)
{
    a->head = NULL;
    a->total = 0;
}

void *sm_arena_alloc(sm_arena_t *a, size_t n)
{
    n = (n + 15) & ~(size_t)15;
    sm_arena_block_t *b = a->head;
    if (!b || b->size - b->used < n) {
        size_t sz = n > SM_ARENA_BLOCK / 2 ? n : SM_ARENA_BLOCK;
        b = sm_xmalloc(sizeof *b + sz);
        b->size = sz;
        b->used = 0;
        b->next = a->head;
        a->head = b;
        a->total += sz;
    }
    void *p = b->data + b->used;
    b->used += n;
    memset(p, 0, n);
    return p;
}

char *sm_arena_strndup(sm_arena_t *a, const char *s, size_t n)
{
    char *p = sm_arena_alloc(a, n + 1);
    memcpy(p, s, n);
    p[n] = '\0';
    return p;
}

char *sm_arena_sprintf(sm_arena_t *a, const char *fmt, ...)
{
    va_list ap;
    char probe[1];
    va_start(ap, fmt);
    int n = vsnprintf(probe, sizeof probe, fmt, ap); /* length only */
    va_end(ap);
    if (n < 0)
        n = 0;
    char *p = sm_arena_alloc(a, (size_t)n + 1);
    va_start(ap, fmt);
    vsnprintf(p, (size_t)n + 1, fmt, ap);
    va_end(ap);
    return p;
}

void sm_arena_reset(sm_arena_t *a)
{
    /* Keep only the smallest standard block to avoid churn. */
    sm_arena_block_t *b = a->head, *keep = NULL;
    while (b) {
        sm_arena_block_t *next = b->next;
        if (!keep && b->size == SM_ARENA_BLOCK) {
            keep = b;
        } else {
            free(b);
        }
        b = next;
    }
    a->head = keep;
    a->total = keep ? keep->size : 0;
    if (keep) {
        keep->next = NULL;
        keep->used = 0;
    }
}

void sm_arena_free(sm_arena_t *a)
{
    sm_arena_block_t *b = a->head;
    while (b) {
        sm_arena_block_t *next = b->next;
        free(b);
        b = next;
    }
    a->head = NULL;
    a->total = 0;
}
