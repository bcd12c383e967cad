/*
 * hmap.h - string-keyed hash map (chained, power-of-two buckets, FNV-1a).
 * Keys are copied; values are borrowed pointers. Not thread-safe: the owner
 * locks around it.
 */
#ifndef SM_HMAP_H
#define SM_HMAP_H

#include "sm_common.h"

typedef struct sm_hmap_entry {
    struct sm_hmap_entry *next;
    uint64_t hash;
    size_t klen;
    void *value;
    char key[]; /* NUL-terminated copy */
} sm_hmap_entry_t;

typedef struct sm_hmap {
    sm_hmap_entry_t **buckets;
    size_t nbuckets; /* power of two, or 0 */
    size_t count;
} sm_hmap_t;

void sm_hmap_init(sm_hmap_t *m);
void sm_hmap_free(sm_hmap_t *m); /* frees entries, not values */
void *sm_hmap_get(const sm_hmap_t *m, const char *key, size_t klen);
/* Insert or replace; returns the previous value or NULL. */
void *sm_hmap_put(sm_hmap_t *m, const char *key, size_t klen, void *value);
/* Remove; returns the removed value or NULL. */
void *sm_hmap_del(sm_hmap_t *m, const char *key, size_t klen);

/* Iterate: for (sm_hmap_entry_t *e = NULL; (e = sm_hmap_next(m, e));) */
sm_hmap_entry_t *sm_hmap_next(const sm_hmap_t *m, sm_hmap_entry_t *prev);

#endif
