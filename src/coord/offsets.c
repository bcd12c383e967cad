/*
 * offsets.c - a group's committed offsets table (see offsets.h).
 *
 * Chained hash table, FNV-1a over the topic bytes mixed with the partition,
 * doubled when the load factor passes 1. Sorted iteration copies the entry
 * pointers and sorts them, which is what OffsetFetch-all and the snapshot
 * writer need (grouping by topic). Runs under the coordinator's mutex.
 */
#include "offsets.h"

#include <stdlib.h>
#include <string.h>

static uint32_t offset_hash(const char *topic, size_t len, int32_t partition)
{
    uint32_t h = 2166136261u;
    for (size_t i = 0; i < len; i++) {
        h ^= (uint8_t)topic[i];
        h *= 16777619u;
    }
    h ^= (uint32_t)partition * 0x9e3779b1u;
    h ^= h >> 15;
    return h;
}

void sm_offset_table_init(sm_offset_table_t *t)
{
    t->buckets = NULL;
    t->nbuckets = 0;
    t->count = 0;
}

static void entry_free(sm_offset_entry_t *e)
{
    free(e->topic);
    free(e->metadata);
    free(e);
}

void sm_offset_table_free(sm_offset_table_t *t)
{
    for (uint32_t i = 0; i < t->nbuckets; i++) {
        sm_offset_entry_t *e = t->buckets[i];
        while (e) {
            sm_offset_entry_t *next = e->next;
            entry_free(e);
            e = next;
        }
    }
    free(t->buckets);
    sm_offset_table_init(t);
}

static sm_offset_entry_t **find_slot(const sm_offset_table_t *t, const char *topic, size_t len,
                                     int32_t partition)
{
    if (t->nbuckets == 0)
        return NULL;
    sm_offset_entry_t **pp = &t->buckets[offset_hash(topic, len, partition) & (t->nbuckets - 1)];
    while (*pp) {
        sm_offset_entry_t *e = *pp;
        if (e->partition == partition && e->topic_len == len && memcmp(e->topic, topic, len) == 0)
            return pp;
        pp = &e->next;
    }
    return pp;
}

static void grow(sm_offset_table_t *t)
{
    uint32_t n = t->nbuckets ? t->nbuckets * 2 : 16;
    sm_offset_entry_t **b = sm_xcalloc(n, sizeof *b);
    for (uint32_t i = 0; i < t->nbuckets; i++) {
        sm_offset_entry_t *e = t->buckets[i];
        while (e) {
            sm_offset_entry_t *next = e->next;
            uint32_t h = offset_hash(e->topic, e->topic_len, e->partition) & (n - 1);
            e->next = b[h];
            b[h] = e;
            e = next;
        }
    }
    free(t->buckets);
    t->buckets = b;
    t->nbuckets = n;
}

void sm_offset_table_put(sm_offset_table_t *t, const char *topic, size_t topic_len,
                         int32_t partition, const sm_offset_value_t *v)
{
    if (t->count + 1 > t->nbuckets)
        grow(t);
    sm_offset_entry_t **pp = find_slot(t, topic, topic_len, partition);
    sm_offset_entry_t *e = *pp;
    if (!e) {
        e = sm_xcalloc(1, sizeof *e);
        e->topic = sm_xstrndup(topic, topic_len);
        e->topic_len = topic_len;
        e->partition = partition;
        *pp = e;
        t->count++;
    } else {
        free(e->metadata);
    }
    e->offset = v->offset;
    e->leader_epoch = v->leader_epoch;
    e->metadata = sm_xstrndup(v->metadata ? v->metadata : "", v->metadata ? v->metadata_len : 0);
    e->metadata_len = v->metadata ? v->metadata_len : 0;
    e->commit_ms = v->commit_ms;
    e->expire_ms = v->expire_ms;
}

sm_offset_entry_t *sm_offset_table_get(const sm_offset_table_t *t, const char *topic,
                                       size_t topic_len, int32_t partition)
{
    sm_offset_entry_t **pp = find_slot(t, topic, topic_len, partition);
    return pp ? *pp : NULL;
}

bool sm_offset_table_del(sm_offset_table_t *t, const char *topic, size_t topic_len,
                         int32_t partition)
{
    sm_offset_entry_t **pp = find_slot(t, topic, topic_len, partition);
    if (!pp || !*pp)
        return false;
    sm_offset_entry_t *e = *pp;
    *pp = e->next;
    entry_free(e);
    t->count--;
    return true;
}

static int entry_cmp(const void *a, const void *b)
{
    const sm_offset_entry_t *x = *(sm_offset_entry_t *const *)a;
    const sm_offset_entry_t *y = *(sm_offset_entry_t *const *)b;
    size_t n = SM_MIN(x->topic_len, y->topic_len);
    int c = memcmp(x->topic, y->topic, n);
    if (c)
        return c;
    if (x->topic_len != y->topic_len)
        return x->topic_len < y->topic_len ? -1 : 1;
    return (x->partition > y->partition) - (x->partition < y->partition);
}

sm_offset_entry_t **sm_offset_table_sorted(const sm_offset_table_t *t, uint32_t *n)
{
    sm_offset_entry_t **v = sm_xmalloc(sizeof *v * (t->count ? t->count : 1));
    uint32_t k = 0;
    for (uint32_t i = 0; i < t->nbuckets; i++)
        for (sm_offset_entry_t *e = t->buckets[i]; e; e = e->next)
            v[k++] = e;
    qsort(v, k, sizeof *v, entry_cmp);
    *n = k;
    return v;
}
