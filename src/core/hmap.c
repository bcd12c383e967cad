/*
 * hmap.c - see hmap.h.
 */
#include "hmap.h"

#include <stdlib.h>
#include <string.h>

static uint64_t fnv1a(const char *k, size_t n)
{
    uint64_t h = 1469598103934665603ULL;
    for (size_t i = 0; i < n; i++) {
        h ^= (uint8_t)k[i];
        h *= 1099511628211ULL;
    }
    return h;
}

void sm_hmap_init(sm_hmap_t *m) { memset(m, 0, sizeof *m); }

void sm_hmap_free(sm_hmap_t *m)
{
    for (size_t i = 0; i < m->nbuckets; i++) {
        sm_hmap_entry_t *e = m->buckets[i];
        while (e) {
            sm_hmap_entry_t *n = e->next;
            free(e);
            e = n;
        }
    }
    free(m->buckets);
    memset(m, 0, sizeof *m);
}

static sm_hmap_entry_t **find(const sm_hmap_t *m, const char *key, size_t klen, uint64_t h)
{
    if (!m->nbuckets)
        return NULL;
    sm_hmap_entry_t **pp = &m->buckets[h & (m->nbuckets - 1)];
    while (*pp) {
        if ((*pp)->hash == h && (*pp)->klen == klen && memcmp((*pp)->key, key, klen) == 0)
            return pp;
        pp = &(*pp)->next;
    }
    return pp;
}

void *sm_hmap_get(const sm_hmap_t *m, const char *key, size_t klen)
{
    sm_hmap_entry_t **pp = find(m, key, klen, fnv1a(key, klen));
    return pp && *pp ? (*pp)->value : NULL;
}

static void grow(sm_hmap_t *m)
{
    size_t n = m->nbuckets ? m->nbuckets * 2 : 16;
    sm_hmap_entry_t **b = sm_xcalloc(n, sizeof *b);
    for (size_t i = 0; i < m->nbuckets; i++) {
        sm_hmap_entry_t *e = m->buckets[i];
        while (e) {
            sm_hmap_entry_t *next = e->next;
            e->next = b[e->hash & (n - 1)];
            b[e->hash & (n - 1)] = e;
            e = next;
        }
    }
    free(m->buckets);
    m->buckets = b;
    m->nbuckets = n;
}

void *sm_hmap_put(sm_hmap_t *m, const char *key, size_t klen, void *value)
{
    uint64_t h = fnv1a(key, klen);
    sm_hmap_entry_t **pp = find(m, key, klen, h);
    if (pp && *pp) {
        void *old = (*pp)->value;
        (*pp)->value = value;
        return old;
    }
    if (m->count + 1 > m->nbuckets * 3 / 4) {
        grow(m);
        pp = find(m, key, klen, h);
    }
    sm_hmap_entry_t *e = sm_xmalloc(sizeof *e + klen + 1);
    e->next = NULL;
    e->hash = h;
    e->klen = klen;
    e->value = value;
    memcpy(e->key, key, klen);
    e->key[klen] = '\0';
    *pp = e;
    m->count++;
    return NULL;
}

void *sm_hmap_del(sm_hmap_t *m, const char *key, size_t klen)
{
    sm_hmap_entry_t **pp = find(m, key, klen, fnv1a(key, klen));
    if (!pp || !*pp)
        return NULL;
    sm_hmap_entry_t *e = *pp;
    void *v = e->value;
    *pp = e->next;
    free(e);
    m->count--;
    return v;
}

sm_hmap_entry_t *sm_hmap_next(const sm_hmap_t *m, sm_hmap_entry_t *prev)
{
    size_t i = 0;
    if (prev) {
        if (prev->next)
            return prev->next;
        i = (prev->hash & (m->nbuckets - 1)) + 1;
    }
    for (; i < m->nbuckets; i++)
        if (m->buckets[i])
            return m->buckets[i];
    return NULL;
}
