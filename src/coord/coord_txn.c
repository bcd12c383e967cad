/*
 * coord_txn.c - offsets committed inside transactions (TxnOffsetCommit).
 *
 * A transactional producer that consumes, transforms and produces commits
 * its input offsets as part of its transaction: the records go into the
 * group's __consumer_offsets partition as a transactional batch of the
 * producer, and only the transaction's COMMIT marker (WriteTxnMarkers, or
 * the marker met while replaying the partition) makes them the group's
 * committed offsets; an ABORT drops them. Until then they wait here. The
 * list is short-lived and small (one entry per partition a transaction
 * consumed), so a flat array does.
 *
 * Everything under the coordinator mutex.
 */
#include "coord_internal.h"
#include "log.h"

#include <stdlib.h>
#include <string.h>

static void entry_free(sm_coord_txn_offset_t *t)
{
    free(t->group);
    free(t->topic);
    free((void *)t->v.metadata);
}

void sm_coord_txn_add(sm_group_coord_t *c, int64_t pid, int32_t part, const char *group,
                      size_t group_len, const char *topic, size_t topic_len, int32_t partition,
                      const sm_offset_value_t *v)
{
    sm_coord_txn_offset_t *t = NULL;
    for (int32_t i = 0; i < c->ntxn; i++) {
        sm_coord_txn_offset_t *x = &c->txn[i];
        if (x->pid == pid && x->part == part && x->partition == partition &&
            x->topic_len == topic_len && memcmp(x->topic, topic, topic_len) == 0 &&
            strlen(x->group) == group_len && memcmp(x->group, group, group_len) == 0) {
            entry_free(x);
            t = x;
            break;
        }
    }
    if (!t) {
        if (c->ntxn == c->txn_cap) {
            c->txn_cap = c->txn_cap ? c->txn_cap * 2 : 16;
            c->txn = sm_xrealloc(c->txn, (size_t)c->txn_cap * sizeof *c->txn);
        }
        t = &c->txn[c->ntxn++];
    }
    memset(t, 0, sizeof *t);
    t->pid = pid;
    t->part = part;
    t->group = sm_xstrndup(group, group_len);
    t->topic = sm_xstrndup(topic, topic_len);
    t->topic_len = topic_len;
    t->partition = partition;
    t->v = *v;
    char *md = sm_xmalloc(v->metadata_len + 1);
    if (v->metadata_len)
        memcpy(md, v->metadata, v->metadata_len);
    md[v->metadata_len] = 0;
    t->v.metadata = md;
}

void sm_coord_txn_end(sm_group_coord_t *c, int32_t part, int64_t pid, bool commit,
                      sm_group_time_t now)
{
    int32_t k = 0, applied = 0;
    for (int32_t i = 0; i < c->ntxn; i++) {
        sm_coord_txn_offset_t *t = &c->txn[i];
        if (t->pid != pid || t->part != part) {
            c->txn[k++] = *t;
            continue;
        }
        if (commit) {
            sm_group_t *g = sm_hmap_get(&c->groups, t->group, strlen(t->group));
            if (!g)
                g = sm_coord_group_create(c, t->group, strlen(t->group), now);
            sm_offset_table_put(&g->offsets, t->topic, t->topic_len, t->partition, &t->v);
            applied++;
        }
        entry_free(t);
    }
    c->ntxn = k;
    if (applied)
        SM_DEBUG("coord", "%s-%d: transaction of producer %lld committed %d offset(s)",
                 SM_GROUP_COORD_TOPIC, part, (long long)pid, applied);
}

bool sm_coord_txn_pending(const sm_group_coord_t *c, int32_t part)
{
    for (int32_t i = 0; i < c->ntxn; i++)
        if (c->txn[i].part == part)
            return true;
    return false;
}

bool sm_coord_txn_pending_offset(const sm_group_coord_t *c, const char *group, const char *topic,
                                 size_t topic_len, int32_t partition)
{
    for (int32_t i = 0; i < c->ntxn; i++) {
        const sm_coord_txn_offset_t *x = &c->txn[i];
        if (x->partition == partition && x->topic_len == topic_len &&
            memcmp(x->topic, topic, topic_len) == 0 && strcmp(x->group, group) == 0)
            return true;
    }
    return false;
}

void sm_coord_txn_clear(sm_group_coord_t *c, int32_t part)
{
    int32_t k = 0;
    for (int32_t i = 0; i < c->ntxn; i++) {
        if (part < 0 || c->txn[i].part == part)
            entry_free(&c->txn[i]);
        else
            c->txn[k++] = c->txn[i];
    }
    c->ntxn = k;
    if (part < 0) {
        free(c->txn);
        c->txn = NULL;
        c->txn_cap = 0;
    }
}
