/*
 * fetch_session.c - the fetch session cache; see fetch_session.h.
 * All functions may run on any thread; one mutex guards the cache.
 */
#include "fetch_session.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#define SESSION_IDLE_EVICT_MS 120000

typedef struct fsess {
    int32_t id;
    int32_t next_epoch;
    int64_t last_used_ms;
    sm_fsess_part_t *parts;
    int nparts, cap;
} fsess_t;

struct sm_fsess_cache {
    pthread_mutex_t mu;
    fsess_t **sessions;
    int nsessions;
    int max_slots;
    uint32_t id_seed;
};

sm_fsess_cache_t *sm_fsess_cache_new(int slots)
{
    sm_fsess_cache_t *c = sm_xcalloc(1, sizeof *c);
    pthread_mutex_init(&c->mu, NULL);
    c->max_slots = slots > 0 ? slots : 0;
    c->id_seed = 0x9e3779b9u;
    return c;
}

void sm_fsess_cache_free(sm_fsess_cache_t *c)
{
    if (!c)
        return;
    for (int i = 0; i < c->nsessions; i++) {
        free(c->sessions[i]->parts);
        free(c->sessions[i]);
    }
    free(c->sessions);
    pthread_mutex_destroy(&c->mu);
    free(c);
}

static int find_idx(sm_fsess_cache_t *c, int32_t id)
{
    for (int i = 0; i < c->nsessions; i++)
        if (c->sessions[i]->id == id)
            return i;
    return -1;
}

static void drop_idx(sm_fsess_cache_t *c, int i)
{
    free(c->sessions[i]->parts);
    free(c->sessions[i]);
    c->sessions[i] = c->sessions[--c->nsessions];
}

static bool same_part(const sm_fsess_part_t *a, const sm_fsess_part_t *b)
{
    if (a->partition != b->partition)
        return false;
    static const sm_uuid_t zero;
    if (memcmp(a->topic_id.b, zero.b, 16) != 0 || memcmp(b->topic_id.b, zero.b, 16) != 0)
        return memcmp(a->topic_id.b, b->topic_id.b, 16) == 0;
    return strcmp(a->topic, b->topic) == 0;
}

static void add_part(fsess_t *s, const sm_fsess_part_t *p)
{
    for (int i = 0; i < s->nparts; i++) {
        if (same_part(&s->parts[i], p)) {
            sm_fsess_part_t keep = s->parts[i];
            s->parts[i] = *p;
            s->parts[i].last_hw = keep.last_hw;
            s->parts[i].last_lso = keep.last_lso;
            s->parts[i].last_start = keep.last_start;
            return;
        }
    }
    if (s->nparts == s->cap) {
        s->cap = s->cap ? s->cap * 2 : 8;
        s->parts = sm_xrealloc(s->parts, sizeof *s->parts * (size_t)s->cap);
    }
    s->parts[s->nparts] = *p;
    s->parts[s->nparts].last_hw = s->parts[s->nparts].last_lso =
        s->parts[s->nparts].last_start = -2; /* never sent: always news */
    s->nparts++;
}

int32_t sm_fsess_create(sm_fsess_cache_t *c, const sm_fsess_part_t *parts, int nparts, int64_t now_ms)
{
    pthread_mutex_lock(&c->mu);
    if (c->nsessions >= c->max_slots) {
        /* Evict the least recently used session if it has been idle long enough. */
        int lru = -1;
        for (int i = 0; i < c->nsessions; i++)
            if (lru < 0 || c->sessions[i]->last_used_ms < c->sessions[lru]->last_used_ms)
                lru = i;
        if (lru >= 0 && now_ms - c->sessions[lru]->last_used_ms >= SESSION_IDLE_EVICT_MS)
            drop_idx(c, lru);
    }
    if (c->nsessions >= c->max_slots) {
        pthread_mutex_unlock(&c->mu);
        return 0;
    }
    int32_t id;
    do {
        c->id_seed = c->id_seed * 1664525u + 1013904223u;
        id = (int32_t)(c->id_seed & 0x7fffffff);
    } while (id == 0 || find_idx(c, id) >= 0);
    fsess_t *s = sm_xcalloc(1, sizeof *s);
    s->id = id;
    s->next_epoch = 1;
    s->last_used_ms = now_ms;
    for (int i = 0; i < nparts; i++)
        add_part(s, &parts[i]);
    c->sessions = sm_xrealloc(c->sessions, sizeof *c->sessions * (size_t)(c->nsessions + 1));
    c->sessions[c->nsessions++] = s;
    pthread_mutex_unlock(&c->mu);
    return id;
}

void sm_fsess_close(sm_fsess_cache_t *c, int32_t id)
{
    pthread_mutex_lock(&c->mu);
    int i = find_idx(c, id);
    if (i >= 0)
        drop_idx(c, i);
    pthread_mutex_unlock(&c->mu);
}

sm_err_t sm_fsess_update(sm_fsess_cache_t *c, int32_t id, int32_t epoch, const sm_fsess_part_t *changed, int nchanged,
                         const sm_fsess_part_t *forgotten, int nforgotten, int64_t now_ms,
                         sm_fsess_part_t **all, int *nall)
{
    pthread_mutex_lock(&c->mu);
    int i = find_idx(c, id);
    if (i < 0) {
        pthread_mutex_unlock(&c->mu);
        return SM_ERR_NOT_FOUND;
    }
    fsess_t *s = c->sessions[i];
    if (epoch != s->next_epoch) {
        pthread_mutex_unlock(&c->mu);
        return SM_ERR_INVALID;
    }
    s->next_epoch = epoch == INT32_MAX ? 1 : epoch + 1;
    s->last_used_ms = now_ms;
    /* As Kafka does: changes first, then forgotten partitions (which win). */
    for (int k = 0; k < nchanged; k++)
        add_part(s, &changed[k]);
    for (int k = 0; k < nforgotten; k++) {
        for (int j = 0; j < s->nparts; j++) {
            if (same_part(&s->parts[j], &forgotten[k])) {
                s->parts[j] = s->parts[--s->nparts];
                break;
            }
        }
    }
    *all = sm_xmalloc(sizeof **all * (size_t)(s->nparts ? s->nparts : 1));
    memcpy(*all, s->parts, sizeof **all * (size_t)s->nparts);
    *nall = s->nparts;
    pthread_mutex_unlock(&c->mu);
    return SM_OK;
}

void sm_fsess_sent(sm_fsess_cache_t *c, int32_t id, const sm_fsess_part_t *p)
{
    pthread_mutex_lock(&c->mu);
    int i = find_idx(c, id);
    if (i >= 0) {
        fsess_t *s = c->sessions[i];
        for (int j = 0; j < s->nparts; j++) {
            if (same_part(&s->parts[j], p)) {
                s->parts[j].last_hw = p->last_hw;
                s->parts[j].last_lso = p->last_lso;
                s->parts[j].last_start = p->last_start;
                break;
            }
        }
    }
    pthread_mutex_unlock(&c->mu);
}
