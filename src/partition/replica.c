/*
 * replica.c - a partition's replication state: the leader's view of its
 * followers, the high watermark, the ISR proposals it makes to the
 * controller, acks=all waiters; and the follower's side of a fetch (see
 * partition.h, "replication", and docs/ARCHITECTURE.md, "Replication").
 *
 * Locking: p->rmu guards the replica set, the followers' states, the
 * proposal in flight and the waiter list. Nothing else is locked under it
 * except the log's own mutex (through sm_log_end_offset / epoch lookups,
 * which are leaves). Waiters are completed after rmu is released.
 */
#include "partition.h"
#include "batch.h"
#include "log.h"
#include "storage/log.h"

#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#define KERR_NOT_LEADER 6
#define KERR_TIMED_OUT 7
#define KERR_NOT_ENOUGH_AFTER 20
/* an AlterPartition the controller never answered is forgotten after this */
#define PROPOSAL_STALE_MS 30000

static int32_t *dup_ids(const int32_t *v, int n)
{
    int32_t *d = sm_xmalloc(sizeof *d * (size_t)(n > 0 ? n : 1));
    if (n > 0)
        memcpy(d, v, sizeof *d * (size_t)n);
    return d;
}

static bool has(const int32_t *v, int n, int32_t id)
{
    for (int i = 0; i < n; i++)
        if (v[i] == id)
            return true;
    return false;
}

static sm_replica_info_t *follower(sm_partition_t *p, int32_t id)
{
    for (int i = 0; i < p->nfollowers; i++)
        if (p->followers[i].id == id)
            return &p->followers[i];
    return NULL;
}

static bool is_solo(const sm_partition_t *p)
{
    return __atomic_load_n(&p->solo, __ATOMIC_SEQ_CST);
}

int64_t sm_partition_high_watermark(const sm_partition_t *p)
{
    if (is_solo(p))
        return sm_log_end_offset(p->log);
    return __atomic_load_n(&p->hw, __ATOMIC_ACQUIRE);
}

static void set_hw(sm_partition_t *p, int64_t hw)
{
    __atomic_store_n(&p->hw, hw, __ATOMIC_RELEASE);
    sm_log_set_high_watermark(p->log, hw);
}

/* Take the waiters the high watermark now covers (or all of them with
 * all_kerr >= 0) off the list; under rmu. */
static sm_hw_waiter_t *take_waiters(sm_partition_t *p, int64_t hw, int all_kerr)
{
    sm_hw_waiter_t *done = NULL, **pp = &p->hw_waiters;
    while (*pp) {
        sm_hw_waiter_t *w = *pp;
        if (all_kerr >= 0 || w->target <= hw) {
            *pp = w->next;
            w->next = done;
            done = w;
        } else {
            pp = &w->next;
        }
    }
    return done;
}

static void finish_waiters(sm_partition_t *p, sm_hw_waiter_t *list, int kerr)
{
    while (list) {
        sm_hw_waiter_t *next = list->next;
        int16_t k = (int16_t)kerr;
        if (kerr < 0) /* reached: answered per Kafka's rule on the ISR at that moment */
            k = __atomic_load_n(&p->isr_size, __ATOMIC_RELAXED) <
                        __atomic_load_n(&p->min_insync_replicas, __ATOMIC_RELAXED)
                    ? KERR_NOT_ENOUGH_AFTER
                    : 0;
        list->done(list, k);
        list = next;
    }
}

/* Leader, not solo: the smallest log end over the ISR and the members a
 * proposal in flight adds. Moves the high watermark up only. Under rmu;
 * returns true when it moved. */
static bool recompute_hw(sm_partition_t *p)
{
    int64_t hw = sm_log_end_offset(p->log);
    for (int i = 0; i < p->nfollowers; i++) {
        const sm_replica_info_t *f = &p->followers[i];
        bool counts = has(p->isr, p->nisr, f->id) ||
                      (p->nisr_pending >= 0 && has(p->isr_pending, p->nisr_pending, f->id));
        if (counts && f->leo < hw)
            hw = f->leo;
    }
    if (hw > __atomic_load_n(&p->hw, __ATOMIC_RELAXED)) {
        set_hw(p, hw);
        return true;
    }
    return false;
}

static void after_hw_move(sm_partition_t *p, sm_hw_waiter_t *ready)
{
    finish_waiters(p, ready, -1);
    if (p->hooks.appended)
        p->hooks.appended(p->hooks.ctx, p);
}

void sm_partition_set_replicas(sm_partition_t *p, int32_t self_id, int32_t leader_id,
                               int32_t leader_epoch, int32_t partition_epoch,
                               const int32_t *replicas, int nreplicas, const int32_t *isr,
                               int nisr, int64_t now_ms)
{
    pthread_mutex_lock(&p->rmu);
    bool was_leader = sm_partition_role(p) == SM_ROLE_LEADER;
    int32_t old_epoch = sm_partition_leader_epoch(p);
    bool leader = leader_id == self_id;
    bool new_term = !was_leader || old_epoch != leader_epoch;
    p->self_id = self_id;
    /* the replica set and the followers' states (kept across ISR changes
     * of the same leadership, fresh for a new one) */
    sm_replica_info_t *old = p->followers;
    int nold = p->nfollowers;
    p->followers = sm_xcalloc((size_t)(nreplicas > 0 ? nreplicas : 1), sizeof *p->followers);
    p->nfollowers = 0;
    for (int i = 0; i < nreplicas; i++) {
        if (replicas[i] == self_id)
            continue;
        sm_replica_info_t *f = &p->followers[p->nfollowers++];
        const sm_replica_info_t *prev = NULL;
        for (int j = 0; j < nold && !new_term && !prev; j++)
            if (old[j].id == replicas[i])
                prev = &old[j];
        if (prev) {
            *f = *prev;
        } else {
            /* Kafka gives ISR members a full lag window from the moment
             * this broker leads */
            *f = (sm_replica_info_t){.id = replicas[i], .leo = -1, .last_fetch_ms = -1,
                                     .leader_leo_at_fetch = -1, .last_caught_up_ms = now_ms,
                                     .broker_epoch = -1};
        }
    }
    free(old);
    free(p->replicas);
    free(p->isr);
    p->replicas = dup_ids(replicas, nreplicas);
    p->nreplicas = nreplicas;
    p->isr = dup_ids(isr, nisr);
    p->nisr = nisr;
    if (partition_epoch != p->partition_epoch || new_term)
        p->nisr_pending = -1; /* the proposal was decided (or is moot) */
    p->partition_epoch = partition_epoch;
    __atomic_store_n(&p->isr_size, nisr, __ATOMIC_RELAXED);

    sm_hw_waiter_t *lost = NULL, *ready = NULL;
    bool moved = false;
    if (leader) {
        bool solo = nisr == 1 && isr[0] == self_id;
        if (!solo && is_solo(p)) {
            /* leaving solo: everything appended so far was committed */
            __atomic_store_n(&p->solo, false, __ATOMIC_SEQ_CST);
            int64_t end = sm_log_end_offset(p->log);
            if (end > __atomic_load_n(&p->hw, __ATOMIC_RELAXED))
                set_hw(p, end);
        } else if (solo && !is_solo(p)) {
            set_hw(p, sm_log_end_offset(p->log));
            __atomic_store_n(&p->solo, true, __ATOMIC_SEQ_CST);
            moved = true;
        }
        __atomic_store_n(&p->leader_epoch, leader_epoch, __ATOMIC_RELAXED);
        __atomic_store_n(&p->leader_id, self_id, __ATOMIC_RELAXED);
        __atomic_store_n(&p->role, SM_ROLE_LEADER, __ATOMIC_RELEASE);
        if (!solo)
            moved |= recompute_hw(p); /* a shrink may let it move */
        ready = take_waiters(p, sm_partition_high_watermark(p), -1);
    } else {
        if (is_solo(p)) {
            int64_t end = sm_log_end_offset(p->log);
            set_hw(p, end);
            __atomic_store_n(&p->solo, false, __ATOMIC_SEQ_CST);
        }
        __atomic_store_n(&p->leader_epoch, leader_epoch, __ATOMIC_RELAXED);
        __atomic_store_n(&p->leader_id, leader_id, __ATOMIC_RELAXED);
        __atomic_store_n(&p->role, SM_ROLE_FOLLOWER, __ATOMIC_RELEASE);
        lost = take_waiters(p, 0, KERR_NOT_LEADER);
    }
    pthread_mutex_unlock(&p->rmu);
    finish_waiters(p, lost, KERR_NOT_LEADER);
    if (moved || ready)
        after_hw_move(p, ready);
}

bool sm_partition_follower_fetched(sm_partition_t *p, int32_t replica, int64_t broker_epoch,
                                   int64_t fetch_offset, int64_t now_ms)
{
    pthread_mutex_lock(&p->rmu);
    sm_replica_info_t *f = follower(p, replica);
    if (!f || sm_partition_role(p) != SM_ROLE_LEADER) {
        pthread_mutex_unlock(&p->rmu);
        return false;
    }
    int64_t end = sm_log_end_offset(p->log);
    /* Kafka's rule: caught up now if it has our whole log; else caught up
     * as of its previous fetch if it now has what we had then */
    if (fetch_offset >= end)
        f->last_caught_up_ms = now_ms;
    else if (f->leader_leo_at_fetch >= 0 && fetch_offset >= f->leader_leo_at_fetch &&
             f->last_fetch_ms > f->last_caught_up_ms)
        f->last_caught_up_ms = f->last_fetch_ms;
    f->leo = fetch_offset;
    f->broker_epoch = broker_epoch;
    f->last_fetch_ms = now_ms;
    f->leader_leo_at_fetch = end;
    sm_hw_waiter_t *ready = NULL;
    bool moved = false;
    if (!is_solo(p)) {
        moved = recompute_hw(p);
        if (moved)
            ready = take_waiters(p, __atomic_load_n(&p->hw, __ATOMIC_RELAXED), -1);
    }
    pthread_mutex_unlock(&p->rmu);
    if (moved)
        after_hw_move(p, ready);
    return true;
}

bool sm_partition_diverging(sm_partition_t *p, int32_t last_fetched_epoch, int64_t fetch_offset,
                            int32_t *div_epoch, int64_t *div_end)
{
    if (last_fetched_epoch < 0)
        return false;
    int32_t e;
    int64_t end;
    if (sm_log_epoch_end_offset(p->log, last_fetched_epoch, &e, &end) != SM_OK) {
        /* we know no epoch that old: the follower keeps nothing we cannot
         * vouch for */
        e = -1;
        end = sm_log_start_offset(p->log);
    }
    if (e == last_fetched_epoch && end >= fetch_offset)
        return false;
    *div_epoch = e;
    *div_end = end;
    return true;
}

/* The offset where our current leader epoch began (followers must reach it
 * before joining the ISR: then they truncated whatever an older leader left
 * them). */
static int64_t epoch_start(sm_partition_t *p, int32_t epoch)
{
    int32_t e;
    int64_t end;
    if (epoch <= 0 || sm_log_epoch_end_offset(p->log, epoch - 1, &e, &end) != SM_OK)
        return sm_log_start_offset(p->log);
    return end;
}

bool sm_partition_isr_proposal(sm_partition_t *p, int64_t now_ms, int64_t lag_ms,
                               int32_t *isr_out, int64_t *epochs_out, int *nisr_out,
                               int32_t *leader_epoch, int32_t *partition_epoch)
{
    pthread_mutex_lock(&p->rmu);
    bool ok = false;
    if (sm_partition_role(p) != SM_ROLE_LEADER || sm_partition_deleted(p))
        goto out;
    if (now_ms < p->isr_retry_after_ms)
        goto out;
    if (p->nisr_pending >= 0) {
        if (now_ms - p->isr_pending_since_ms < PROPOSAL_STALE_MS)
            goto out;
        p->nisr_pending = -1;
    }
    int32_t epoch = sm_partition_leader_epoch(p);
    int64_t hw = sm_partition_high_watermark(p);
    int64_t from = epoch_start(p, epoch);
    int n = 0;
    for (int i = 0; i < p->nreplicas; i++) {
        int32_t id = p->replicas[i];
        if (id == p->self_id) {
            if (epochs_out)
                epochs_out[n] = -1;
            isr_out[n++] = id;
            continue;
        }
        const sm_replica_info_t *f = follower(p, id);
        if (!f)
            continue;
        /* in: caught up within the lag; joining: fetching now (a dead
         * broker's last fetch may have reached the high watermark) and at
         * the high watermark, past the start of our epoch */
        bool keep = has(p->isr, p->nisr, id)
                        ? now_ms - f->last_caught_up_ms <= lag_ms
                        : f->leo >= 0 && f->leo >= hw && f->leo >= from &&
                              f->last_fetch_ms >= 0 && now_ms - f->last_fetch_ms <= lag_ms / 2;
        if (keep) {
            if (epochs_out)
                epochs_out[n] = f->broker_epoch;
            isr_out[n++] = id;
        }
    }
    bool same = n == p->nisr;
    for (int i = 0; i < n && same; i++)
        same = has(p->isr, p->nisr, isr_out[i]);
    if (same)
        goto out;
    if (is_solo(p) && n > 1) {
        /* Members are being added: the controller may commit them before
         * this leader hears of it, so acks=all must wait for them from now
         * on (a record acknowledged by the solo leader alone would be
         * missing on a member that then wins an election). The fences pair
         * with the one in sm_partition_wait_hw: an append that still saw
         * solo is below the log end read here. */
        __atomic_store_n(&p->solo, false, __ATOMIC_SEQ_CST);
        __atomic_thread_fence(__ATOMIC_SEQ_CST);
        int64_t end = sm_log_end_offset(p->log);
        if (end > __atomic_load_n(&p->hw, __ATOMIC_RELAXED))
            set_hw(p, end);
    }
    free(p->isr_pending);
    p->isr_pending = dup_ids(isr_out, n);
    p->nisr_pending = n;
    p->isr_pending_since_ms = now_ms;
    *nisr_out = n;
    *leader_epoch = epoch;
    *partition_epoch = p->partition_epoch;
    ok = true;
out:
    pthread_mutex_unlock(&p->rmu);
    return ok;
}

void sm_partition_isr_proposal_failed(sm_partition_t *p, int64_t retry_after_ms)
{
    pthread_mutex_lock(&p->rmu);
    p->nisr_pending = -1;
    p->isr_retry_after_ms = retry_after_ms;
    /* an expansion of a lone leader was refused: it is alone again */
    if (sm_partition_role(p) == SM_ROLE_LEADER && p->nisr == 1 && p->isr[0] == p->self_id &&
        !is_solo(p)) {
        set_hw(p, sm_log_end_offset(p->log));
        __atomic_store_n(&p->solo, true, __ATOMIC_SEQ_CST);
    }
    pthread_mutex_unlock(&p->rmu);
}

bool sm_partition_wait_hw(sm_partition_t *p, sm_hw_waiter_t *w)
{
    __atomic_thread_fence(__ATOMIC_SEQ_CST); /* the append before the solo check */
    if (sm_partition_high_watermark(p) >= w->target)
        return true;
    pthread_mutex_lock(&p->rmu);
    if (sm_partition_role(p) != SM_ROLE_LEADER) {
        pthread_mutex_unlock(&p->rmu);
        w->done(w, KERR_NOT_LEADER);
        return false;
    }
    if (sm_partition_high_watermark(p) >= w->target) {
        pthread_mutex_unlock(&p->rmu);
        return true;
    }
    w->next = p->hw_waiters;
    p->hw_waiters = w;
    pthread_mutex_unlock(&p->rmu);
    return false;
}

void sm_partition_fail_hw_waiters(sm_partition_t *p, int16_t kerr)
{
    pthread_mutex_lock(&p->rmu);
    sm_hw_waiter_t *all = take_waiters(p, 0, kerr);
    pthread_mutex_unlock(&p->rmu);
    finish_waiters(p, all, kerr);
}

void sm_partition_expire_hw_waiters(sm_partition_t *p, int64_t now_ms)
{
    pthread_mutex_lock(&p->rmu);
    sm_hw_waiter_t *late = NULL, **pp = &p->hw_waiters;
    while (*pp) {
        sm_hw_waiter_t *w = *pp;
        if (w->deadline_ms <= now_ms) {
            *pp = w->next;
            w->next = late;
            late = w;
        } else {
            pp = &w->next;
        }
    }
    pthread_mutex_unlock(&p->rmu);
    finish_waiters(p, late, KERR_TIMED_OUT);
}

/* ------------------------------------------------------------ follower */

int32_t sm_partition_last_epoch(sm_partition_t *p)
{
    int32_t e;
    int64_t end;
    if (sm_log_epoch_end_offset(p->log, INT32_MAX, &e, &end) != SM_OK)
        return -1;
    return e;
}

/* Truncate the follower's log to offset (never past its end); the high
 * watermark follows it down if it has to (logged: only an unclean
 * election makes a leader ask for that). */
static sm_err_t follower_truncate(sm_partition_t *p, int64_t offset)
{
    int64_t end = sm_log_end_offset(p->log);
    if (offset >= end)
        return SM_OK;
    int64_t hw = __atomic_load_n(&p->hw, __ATOMIC_RELAXED);
    if (offset < hw) {
        SM_WARN("partition", "%s: the leader's log diverges below our high watermark %" PRId64
                             "; truncating to %" PRId64 " (unclean leader election?)",
                p->name, hw, offset);
        set_hw(p, offset);
    }
    SM_INFO("partition", "%s: truncating from %" PRId64 " to %" PRId64 " to match the leader",
            p->name, end, offset);
    pthread_mutex_lock(&p->amu);
    sm_err_t err = sm_log_truncate_to(p->log, offset);
    if (err == SM_OK)
        err = sm_partition_rebuild_producers(p);
    pthread_mutex_unlock(&p->amu);
    return err;
}

sm_err_t sm_partition_follower_apply(sm_partition_t *p, int32_t leader_epoch,
                                     const sm_fetched_part_t *f)
{
    if (sm_partition_role(p) != SM_ROLE_FOLLOWER || sm_partition_leader_epoch(p) != leader_epoch ||
        sm_partition_deleted(p))
        return SM_ERR_AGAIN;
    int64_t end = sm_log_end_offset(p->log);
    sm_err_t err = SM_OK;
    if (f->error == 1) { /* OFFSET_OUT_OF_RANGE */
        if (f->log_start_offset >= 0 && end < f->log_start_offset) {
            SM_INFO("partition", "%s: behind the leader's log start %" PRId64 "; starting over "
                                 "there", p->name, f->log_start_offset);
            set_hw(p, f->log_start_offset);
            pthread_mutex_lock(&p->amu);
            err = sm_log_reset(p->log, f->log_start_offset);
            if (err == SM_OK)
                err = sm_partition_rebuild_producers(p);
            pthread_mutex_unlock(&p->amu);
            return err;
        }
        /* ahead of the leader: keep what it committed (and what we know
         * was committed), drop the rest and fetch again */
        int64_t to = SM_MAX(f->high_watermark, __atomic_load_n(&p->hw, __ATOMIC_RELAXED));
        return follower_truncate(p, SM_MIN(to, end));
    }
    if (f->error)
        return SM_ERR_INVALID;
    if (f->diverging_epoch >= 0 || f->diverging_end >= 0) {
        /* truncate to where both logs agree: the leader's end of that epoch,
         * or ours if earlier; when every epoch we have is newer than it,
         * nothing of ours is vouched for (Kafka's endOffsetFor gives the
         * start of our first, newer, epoch) */
        int64_t to = f->diverging_end;
        int32_t e;
        int64_t mine;
        if (f->diverging_epoch >= 0) {
            if (sm_log_epoch_end_offset(p->log, f->diverging_epoch, &e, &mine) != SM_OK)
                mine = sm_log_start_offset(p->log);
            if (mine < to)
                to = mine;
        }
        return follower_truncate(p, SM_MAX(to, sm_log_start_offset(p->log)));
    }
    if (f->len > 0) {
        /* every batch checked before anything is written */
        size_t at = 0;
        while (at < f->len) {
            sm_batch_info_t info;
            const char *why = NULL;
            sm_err_t rc = sm_batch_validate_stored(f->records + at, f->len - at, &info, &why);
            if (rc != SM_OK) {
                SM_WARN("partition", "%s: batch from the leader refused at byte %zu: %s", p->name,
                        at, why ? why : sm_err_str(rc));
                return SM_ERR_CORRUPT;
            }
            at += (size_t)sm_batch_total_size(&info);
        }
        sm_append_info_t ai;
        pthread_mutex_lock(&p->amu);
        err = sm_log_append_replica(p->log, f->records, f->len, sm_now_wall_ms(), &ai);
        if (err == SM_OK)
            err = sm_partition_record_batches(p, f->records, f->len);
        pthread_mutex_unlock(&p->amu);
        if (err != SM_OK)
            return err;
        __atomic_fetch_add(&p->bytes_in, (uint64_t)f->len, __ATOMIC_RELAXED);
        end = sm_log_end_offset(p->log);
    }
    int64_t hw = SM_MIN(f->high_watermark, end);
    if (hw > __atomic_load_n(&p->hw, __ATOMIC_RELAXED))
        set_hw(p, hw);
    if (f->log_start_offset > sm_log_start_offset(p->log) && f->log_start_offset <= end &&
        f->log_start_offset <= __atomic_load_n(&p->hw, __ATOMIC_RELAXED)) {
        if (sm_log_delete_records(p->log, f->log_start_offset) != SM_OK)
            SM_WARN("partition", "%s: could not follow the leader's log start %" PRId64, p->name,
                    f->log_start_offset);
    }
    return SM_OK;
}
