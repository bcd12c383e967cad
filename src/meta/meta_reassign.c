/*
 * meta_reassign.c - partition reassignment, as Kafka's KRaft controller does
 * it (KIP-455): AlterPartitionReassignments starts (or cancels) moving a
 * partition's replicas to a target set; the image then holds the union of
 * the old and the target replicas with AddingReplicas / RemovingReplicas,
 * the new replicas fetch and join the ISR, and once every target replica
 * is in sync the controller completes the move: replicas = target, the ISR
 * cut to the target, a leader from the target if the old one is leaving.
 * Brokers drop (and delete) the replicas they no longer host.
 *
 *   none ──AlterPartitionReassignments(target)──► in progress
 *     ▲      replicas = target + the old ones not in it,      │
 *     │      adding = target - old, removing = old - target   │ AlterPartition: target ⊆ ISR
 *     │                                                       ▼
 *     └────── cancel (replicas null): back to the old ──── completed: replicas = target
 *
 * Everything runs on the active controller under the metadata lock and is
 * committed as PartitionChangeRecords.
 */
#include "meta_internal.h"
#include "log.h"

#include <string.h>

#define TAG "meta"
#define KERR_NOT_CONTROLLER 41
#define KERR_INVALID_REPLICA_ASSIGNMENT 39
#define KERR_NO_REASSIGNMENT_IN_PROGRESS 85
#define KERR_UNKNOWN_TOPIC_OR_PARTITION 3

static bool has(const int32_t *v, int n, int32_t id)
{
    for (int i = 0; i < n; i++)
        if (v[i] == id)
            return true;
    return false;
}

/* The replicas the partition had before the reassignment in progress (all of
 * them when none is). */
static int original(const sm_partition_meta_t *pm, int32_t *out)
{
    int n = 0;
    for (int i = 0; i < pm->nreplicas; i++)
        if (!has(pm->adding, pm->nadding, pm->replicas[i]))
            out[n++] = pm->replicas[i];
    return n;
}

/* The target of the reassignment in progress. */
static int target_of(const sm_partition_meta_t *pm, int32_t *out)
{
    int n = 0;
    for (int i = 0; i < pm->nreplicas; i++)
        if (!has(pm->removing, pm->nremoving, pm->replicas[i]))
            out[n++] = pm->replicas[i];
    return n;
}

static bool usable_broker(const sm_meta_image_t *img, int32_t id)
{
    const sm_broker_meta_t *b = sm_meta_image_broker(img, id);
    return b && !b->fenced && !b->in_controlled_shutdown;
}

/* A record that ends the move at `to` (completion or cancellation): the ISR
 * cut to it (kept non-empty), a new leader from it if the current one is
 * not in it. False when no member of `to` is in the ISR (not yet). */
static bool add_finish(recs_t *r, const sm_meta_image_t *img, const sm_topic_meta_t *tm,
                       int32_t p, const int32_t *isr, int nisr, const int32_t *to, int nto)
{
    const sm_partition_meta_t *pm = &tm->partitions[p];
    int32_t *nisr_v = sm_xcalloc((size_t)(nisr > 0 ? nisr : 1), sizeof *nisr_v);
    int k = 0;
    for (int i = 0; i < nisr; i++)
        if (has(to, nto, isr[i]))
            nisr_v[k++] = isr[i];
    if (k == 0) {
        free(nisr_v);
        return false;
    }
    sm_partition_change_record_t c;
    sm_partition_change_record_init(&c);
    c.topic_id = tm->id;
    c.partition_id = p;
    c.replicas = (int32_t *)to;
    c.replicas_count = nto;
    c.isr = nisr_v;
    c.isr_count = k;
    c.adding_replicas_count = 0;
    c.removing_replicas_count = 0;
    if (!has(to, nto, pm->leader)) {
        c.leader = -1;
        for (int i = 0; i < nto && c.leader < 0; i++)
            if (has(nisr_v, k, to[i]) && usable_broker(img, to[i]))
                c.leader = to[i];
    }
    RECS_ADD(r, SM_METADATA_PARTITION_CHANGE_RECORD, 0, sm_partition_change_record, &c);
    free(nisr_v);
    return true;
}

bool sm_meta_reassign_try_complete(recs_t *r, const sm_meta_image_t *img,
                                   const sm_topic_meta_t *tm, int32_t p, const int32_t *isr,
                                   int nisr)
{
    const sm_partition_meta_t *pm = &tm->partitions[p];
    if (pm->nadding == 0 && pm->nremoving == 0)
        return false;
    int32_t *to = sm_xcalloc((size_t)pm->nreplicas + 1, sizeof *to);
    int nto = target_of(pm, to);
    bool all = nto > 0;
    for (int i = 0; i < nto && all; i++)
        all = has(isr, nisr, to[i]);
    bool done = all && add_finish(r, img, tm, p, isr, nisr, to, nto);
    if (done)
        SM_INFO(TAG, "%s-%d: reassignment completed (%d replica(s))", tm->name, p, nto);
    free(to);
    return done;
}

int16_t sm_meta_alter_reassignments(sm_meta_t *m, sm_meta_reassignment_t *e, int n)
{
    if (!sm_meta_is_active(m))
        return KERR_NOT_CONTROLLER;
    sm_meta_lock(m);
    const sm_meta_image_t *img = m->image;
    recs_t r;
    recs_init(&r);
    int changes = 0;
    for (int i = 0; i < n; i++) {
        sm_meta_reassignment_t *a = &e[i];
        const sm_topic_meta_t *tm = sm_meta_image_topic(img, a->topic, strlen(a->topic));
        if (!tm || a->partition < 0 || a->partition >= tm->npartitions) {
            a->error = KERR_UNKNOWN_TOPIC_OR_PARTITION;
            continue;
        }
        const sm_partition_meta_t *pm = &tm->partitions[a->partition];
        bool moving = pm->nadding > 0 || pm->nremoving > 0;
        int32_t *orig = sm_xcalloc((size_t)pm->nreplicas + 1, sizeof *orig);
        int norig = original(pm, orig);
        if (!a->replicas) { /* cancel */
            if (!moving) {
                a->error = KERR_NO_REASSIGNMENT_IN_PROGRESS;
            } else if (!add_finish(&r, img, tm, a->partition, pm->isr, pm->nisr, orig, norig)) {
                a->error = KERR_INVALID_REPLICA_ASSIGNMENT;
                a->message = "no replica of the original assignment is in sync";
            } else {
                SM_INFO(TAG, "%s-%d: reassignment cancelled", tm->name, a->partition);
                changes++;
            }
            free(orig);
            continue;
        }
        a->error = 0;
        for (int k = 0; k < a->nreplicas && !a->error; k++) {
            if (has(a->replicas, k, a->replicas[k])) {
                a->error = KERR_INVALID_REPLICA_ASSIGNMENT;
                a->message = "the replica list names a broker twice";
            } else if (!sm_meta_image_broker(img, a->replicas[k])) {
                a->error = KERR_INVALID_REPLICA_ASSIGNMENT;
                a->message = "the replica list names a broker that is not registered";
            }
        }
        if (!a->error && a->nreplicas <= 0) {
            a->error = KERR_INVALID_REPLICA_ASSIGNMENT;
            a->message = "the replica list is empty";
        }
        if (a->error) {
            free(orig);
            continue;
        }
        /* replicas = target, then the original ones leaving */
        int32_t *all = sm_xcalloc((size_t)(a->nreplicas + norig) + 1, sizeof *all);
        int32_t *adding = sm_xcalloc((size_t)a->nreplicas + 1, sizeof *adding);
        int32_t *removing = sm_xcalloc((size_t)norig + 1, sizeof *removing);
        int nall = 0, nadd = 0, nrem = 0;
        for (int k = 0; k < a->nreplicas; k++) {
            all[nall++] = a->replicas[k];
            if (!has(orig, norig, a->replicas[k]))
                adding[nadd++] = a->replicas[k];
        }
        for (int k = 0; k < norig; k++)
            if (!has(a->replicas, a->nreplicas, orig[k])) {
                all[nall++] = orig[k];
                removing[nrem++] = orig[k];
            }
        sm_partition_change_record_t c;
        sm_partition_change_record_init(&c);
        c.topic_id = tm->id;
        c.partition_id = a->partition;
        c.replicas = all;
        c.replicas_count = nall;
        c.adding_replicas = adding;
        c.adding_replicas_count = nadd;
        c.removing_replicas = removing;
        c.removing_replicas_count = nrem;
        bool all_in_sync = true;
        for (int k = 0; k < a->nreplicas && all_in_sync; k++)
            all_in_sync = has(pm->isr, pm->nisr, a->replicas[k]);
        if (nadd == 0 && nrem == 0 && !moving) {
            /* the same set (perhaps reordered): the order is the
             * preference, nothing moves */
            c.adding_replicas_count = c.removing_replicas_count = 0;
            RECS_ADD(&r, SM_METADATA_PARTITION_CHANGE_RECORD, 0, sm_partition_change_record, &c);
        } else if (all_in_sync &&
                   add_finish(&r, img, tm, a->partition, pm->isr, pm->nisr, a->replicas,
                              a->nreplicas)) {
            SM_INFO(TAG, "%s-%d: reassignment done at once (the target is in sync)", tm->name,
                    a->partition);
        } else {
            RECS_ADD(&r, SM_METADATA_PARTITION_CHANGE_RECORD, 0, sm_partition_change_record, &c);
            SM_INFO(TAG, "%s-%d: reassignment started: adding %d, removing %d replica(s)",
                    tm->name, a->partition, nadd, nrem);
        }
        changes++;
        free(all);
        free(adding);
        free(removing);
        free(orig);
    }
    return sm_meta_commit_unlock(m, &r, changes, "AlterPartitionReassignments");
}
