/*
 * partition.c - a hosted partition's replica state over its log (see
 * partition.h for the state machine and the rules).
 */
#include "partition.h"
#include "log.h"
#include "batch.h"

#include <inttypes.h>
#include <string.h>
#include <unistd.h>

#include <stdio.h>
#include <stdlib.h>

static void partition_free(sm_ref_t *r)
{
    sm_partition_t *p = (sm_partition_t *)r;
    if (p->log) {
        if (!sm_partition_deleted(p) && sm_log_failed(p->log) == SM_OK) {
            /* a snapshot at the log end spares the next start a replay */
            if (sm_pstate_snapshot_write(&p->pstate, sm_log_dir(p->log)) == SM_OK)
                sm_pstate_snapshots_prune(sm_log_dir(p->log), INT64_MAX, 2);
        }
        if (sm_partition_role(p) == SM_ROLE_LEADER)
            sm_log_set_high_watermark(p->log, sm_partition_high_watermark(p));
        if (sm_partition_deleted(p)) {
            if (sm_log_destroy(p->log) != SM_OK)
                SM_WARN("partition", "%s: could not remove the deleted partition's files", p->name);
        } else {
            sm_log_close(p->log);
        }
    }
    sm_pstate_free(&p->pstate);
    sm_hmap_free(&p->verify_guards);
    pthread_mutex_destroy(&p->amu);
    pthread_mutex_destroy(&p->rmu);
    free(p->replicas);
    free(p->isr);
    free(p->isr_pending);
    free(p->followers);
    free(p->topic);
    free(p->name);
    free(p);
}

sm_partition_t *sm_partition_open(const char *log_dir, const char *topic, int32_t index,
                                  const sm_uuid_t *topic_id, const sm_log_config_t *cfg,
                                  const sm_partition_hooks_t *hooks)
{
    sm_partition_t *p = sm_xcalloc(1, sizeof *p);
    sm_ref_init(&p->ref, partition_free);
    p->topic = sm_xstrdup(topic);
    p->index = index;
    if (topic_id)
        p->topic_id = *topic_id;
    p->name = sm_xasprintf("%s-%d", topic, index);
    p->leader_id = -1;
    p->role = SM_ROLE_NONE;
    p->nisr_pending = -1;
    pthread_mutex_init(&p->rmu, NULL);
    pthread_mutex_init(&p->amu, NULL);
    sm_pstate_init(&p->pstate);
    sm_hmap_init(&p->verify_guards);
    p->first_unstable = -1;
    p->cleanup = (sm_partition_cleanup_t){.delete_ = true, .min_dirty_ratio = 0.5,
                                          .max_lag_ms = INT64_MAX,
                                          .delete_retention_ms = 86400000,
                                          .segment_bytes = cfg->segment_bytes};
    p->clean_horizon_ms = INT64_MAX;
    p->producer_expiration_ms = 86400000;
    p->compression = -1; /* producer */
    if (hooks)
        p->hooks = *hooks;
    char *dir = sm_xasprintf("%s/%s", log_dir, p->name);
    sm_err_t err = sm_log_open(dir, p->name, cfg, &p->log);
    free(dir);
    if (err != SM_OK) {
        SM_ERROR("partition", "%s: cannot open partition log: %s", p->name, sm_err_str(err));
        p->log = NULL;
        sm_partition_put(p);
        return NULL;
    }
    int64_t hw = sm_log_high_watermark(p->log);
    p->hw = hw >= 0 ? hw : sm_log_start_offset(p->log);
    if (sm_partition_rebuild_producers(p) != SM_OK) {
        SM_ERROR("partition", "%s: cannot rebuild the producer state", p->name);
        sm_partition_put(p);
        return NULL;
    }
    return p;
}

void sm_partition_keep(sm_partition_t *p) { sm_ref_keep(&p->ref); }

void sm_partition_put(sm_partition_t *p)
{
    if (p)
        sm_ref_release(&p->ref);
}

/* ------------------------------------------------------------ transitions */

void sm_partition_mark_deleted(sm_partition_t *p)
{
    /* The directory moves aside now: a topic of the same name may be
     * created before the last reference lets go. */
    if (p->log && sm_log_retire(p->log) != SM_OK)
        SM_WARN("partition", "%s: deleted partition's directory not moved aside", p->name);
    __atomic_store_n(&p->deleted, true, __ATOMIC_RELEASE);
    sm_partition_fail_hw_waiters(p, 3); /* UNKNOWN_TOPIC_OR_PARTITION */
}

/* ------------------------------------------------------------ data path */

/* After an append: metrics and hooks (amu released). */
static void appended(sm_partition_t *p, size_t len, const sm_append_info_t *out)
{
    __atomic_fetch_add(&p->bytes_in, (uint64_t)len, __ATOMIC_RELAXED);
    __atomic_fetch_add(&p->msgs_in, (uint64_t)(out->last_offset - out->base_offset + 1),
                       __ATOMIC_RELAXED);
    if (p->hooks.appended)
        p->hooks.appended(p->hooks.ctx, p);
    if (out->write_behind_due && p->hooks.write_behind_due) {
        sm_partition_keep(p); /* the hook's task puts it */
        p->hooks.write_behind_due(p->hooks.ctx, p);
    }
}

/* Append batches as leader with amu held, then record them in the producer
 * state (and the aborted-transaction index). */
static sm_err_t leader_append_locked(sm_partition_t *p, uint8_t *batches, size_t len,
                                     sm_append_info_t *out)
{
    sm_err_t err =
        sm_log_append(p->log, batches, len, sm_partition_leader_epoch(p), sm_now_wall_ms(), out);
    if (err == SM_OK)
        err = sm_partition_record_batches(p, batches, len);
    return err;
}

/* client: a producer's batches, checked against the producer state; else
 * the broker's own (a coordinator's transactional offsets), only recorded. */
/* Has pid an open transaction here at this epoch? (amu) */
static bool txn_open_locked(sm_partition_t *p, int64_t pid, int16_t epoch)
{
    const sm_producer_t *pr = sm_pstate_get(&p->pstate, pid);
    return pr && pr->txn_first_offset >= 0 && pr->epoch == epoch;
}

bool sm_partition_txn_verify_begin(sm_partition_t *p, int64_t pid, int16_t epoch,
                                   uint64_t *guard)
{
    *guard = 0;
    if (!__atomic_load_n(&p->verify_txn, __ATOMIC_RELAXED) || pid < 0)
        return false;
    pthread_mutex_lock(&p->amu);
    bool need = !txn_open_locked(p, pid, epoch);
    if (need) {
        *guard = ++p->next_guard;
        sm_hmap_put(&p->verify_guards, (const char *)&pid, sizeof pid, (void *)(uintptr_t)*guard);
    }
    pthread_mutex_unlock(&p->amu);
    return need;
}

void sm_partition_txn_verify_cancel(sm_partition_t *p, int64_t pid, uint64_t guard)
{
    if (guard == 0)
        return;
    pthread_mutex_lock(&p->amu);
    if ((uintptr_t)sm_hmap_get(&p->verify_guards, (const char *)&pid, sizeof pid) ==
        (uintptr_t)guard)
        sm_hmap_del(&p->verify_guards, (const char *)&pid, sizeof pid);
    pthread_mutex_unlock(&p->amu);
}

/* A transactional data batch that would open pid's transaction here: is it
 * allowed? (amu) Verification off: yes. On: only with the guard recorded by
 * sm_partition_txn_verify_begin, which is consumed. */
static bool txn_start_allowed_locked(sm_partition_t *p, const sm_batch_info_t *b, uint64_t guard)
{
    if (!(b->attributes & SM_BATCH_ATTR_TRANSACTIONAL) || (b->attributes & SM_BATCH_ATTR_CONTROL) ||
        !__atomic_load_n(&p->verify_txn, __ATOMIC_RELAXED) ||
        txn_open_locked(p, b->producer_id, b->producer_epoch))
        return true;
    int64_t pid = b->producer_id;
    uintptr_t have = (uintptr_t)sm_hmap_get(&p->verify_guards, (const char *)&pid, sizeof pid);
    if (guard == 0 || have != (uintptr_t)guard)
        return false;
    sm_hmap_del(&p->verify_guards, (const char *)&pid, sizeof pid);
    return true;
}

static sm_err_t produce_impl(sm_partition_t *p, uint8_t *batches, size_t len,
                             sm_append_info_t *out, int16_t *kerr, bool *duplicate, bool client,
                             uint64_t guard)
{
    *kerr = 0;
    *duplicate = false;
    if (sm_partition_deleted(p))
        return SM_ERR_CLOSED;
    if (sm_partition_role(p) != SM_ROLE_LEADER) {
        *kerr = 6; /* NOT_LEADER_OR_FOLLOWER */
        return SM_ERR_INVALID;
    }
    /* Does any batch carry a producer id? (the header walk is cheap) */
    bool producers = false;
    int nbatches = 0;
    for (size_t at = 0; at + SM_BATCH_HEADER_SIZE <= len;) {
        sm_batch_info_t b;
        if (sm_batch_header_parse(batches + at, len - at, &b) != SM_OK || b.batch_length < 0)
            break;
        producers |= b.producer_id >= 0;
        nbatches++;
        at += (size_t)sm_batch_total_size(&b);
    }
    pthread_mutex_lock(&p->amu);
    /* leadership may have gone while we waited for amu */
    if (sm_partition_role(p) != SM_ROLE_LEADER) {
        pthread_mutex_unlock(&p->amu);
        *kerr = 6;
        return SM_ERR_INVALID;
    }
    sm_err_t err = SM_OK;
    if (!producers || !client) {
        err = leader_append_locked(p, batches, len, out);
    } else {
        /* batch by batch: each is checked against the state the previous
         * one left */
        bool any = false;
        size_t at = 0;
        for (int i = 0; i < nbatches && err == SM_OK; i++) {
            sm_batch_info_t b;
            if (sm_batch_header_parse(batches + at, len - at, &b) != SM_OK) {
                err = SM_ERR_CORRUPT;
                break;
            }
            size_t blen = (size_t)sm_batch_total_size(&b);
            if (b.producer_id >= 0) {
                bool dup = false;
                int64_t dfirst = 0, dlast = 0;
                int16_t k = sm_pstate_check(&p->pstate, &b, &dup, &dfirst, &dlast);
                if (!k && !dup && !txn_start_allowed_locked(p, &b, guard))
                    k = SM_PS_INVALID_TXN_STATE;
                if (k) {
                    SM_DEBUG("partition", "%s: batch of producer %" PRId64 " epoch %d seq %d "
                                          "refused (error %d)",
                             p->name, b.producer_id, b.producer_epoch, b.base_sequence, k);
                    *kerr = k;
                    err = SM_ERR_INVALID;
                    break;
                }
                if (dup) {
                    if (!any) {
                        memset(out, 0, sizeof *out);
                        out->base_offset = dfirst;
                        out->last_offset = dlast;
                        out->log_append_time = -1;
                        out->log_start_offset = sm_log_start_offset(p->log);
                    }
                    *duplicate = !any && nbatches == 1;
                    at += blen;
                    continue;
                }
            }
            sm_append_info_t one;
            err = leader_append_locked(p, batches + at, blen, &one);
            if (err == SM_OK) {
                if (!any)
                    *out = one;
                else
                    out->last_offset = one.last_offset, out->records += one.records,
                    out->write_behind_due |= one.write_behind_due;
                any = true;
            }
            at += blen;
        }
        if (!any && err == SM_OK) { /* all duplicates */
            pthread_mutex_unlock(&p->amu);
            *duplicate = true;
            return SM_OK;
        }
        if (any && err != SM_OK) /* part went in: the hooks still run */
            appended(p, len, out);
    }
    pthread_mutex_unlock(&p->amu);
    if (err == SM_OK)
        appended(p, len, out);
    return err;
}

sm_err_t sm_partition_produce(sm_partition_t *p, uint8_t *batches, size_t len,
                              sm_append_info_t *out, int16_t *kerr, bool *duplicate,
                              uint64_t guard)
{
    return produce_impl(p, batches, len, out, kerr, duplicate, true, guard);
}

sm_err_t sm_partition_append(sm_partition_t *p, uint8_t *batches, size_t len,
                             sm_append_info_t *out)
{
    sm_append_info_t info;
    int16_t kerr;
    bool dup;
    return produce_impl(p, batches, len, out ? out : &info, &kerr, &dup, false, 0);
}

sm_err_t sm_partition_write_marker(sm_partition_t *p, int64_t pid, int16_t epoch, bool commit,
                                   int32_t coordinator_epoch, sm_append_info_t *out,
                                   int16_t *kerr)
{
    *kerr = 0;
    if (sm_partition_deleted(p))
        return SM_ERR_CLOSED;
    /* key: int16 version 0, int16 type (0 ABORT, 1 COMMIT); value: int16
     * version 0, int32 coordinator epoch */
    uint8_t key[4] = {0, 0, 0, commit ? 1 : 0};
    uint8_t value[6] = {0, 0, (uint8_t)(coordinator_epoch >> 24), (uint8_t)(coordinator_epoch >> 16),
                        (uint8_t)(coordinator_epoch >> 8), (uint8_t)coordinator_epoch};
    sm_record_in_t rec = {.key = key, .key_len = 4, .value = value, .value_len = 6,
                          .timestamp = sm_now_wall_ms()};
    sm_batch_params_t bp = {.base_offset = 0, .leader_epoch = -1,
                            .attributes = SM_BATCH_ATTR_TRANSACTIONAL | SM_BATCH_ATTR_CONTROL,
                            .producer_id = pid, .producer_epoch = epoch, .base_sequence = -1};
    sm_wbuf_t w;
    sm_wbuf_init(&w);
    sm_batch_encode(&w, &bp, &rec, 1);
    pthread_mutex_lock(&p->amu);
    sm_err_t err = SM_OK;
    const sm_producer_t *pr = sm_pstate_get(&p->pstate, pid);
    if (sm_partition_role(p) != SM_ROLE_LEADER) {
        *kerr = 6;
        err = SM_ERR_INVALID;
    } else if (pr && epoch < pr->epoch) {
        *kerr = SM_PS_INVALID_PRODUCER_EPOCH;
        err = SM_ERR_INVALID;
    } else if (pr && coordinator_epoch < pr->coordinator_epoch) {
        *kerr = SM_PS_TXN_COORDINATOR_FENCED;
        err = SM_ERR_INVALID;
    } else {
        err = leader_append_locked(p, w.mem, w.len, out);
        /* the transaction ended here: a verification still in flight for
         * it must not let a late write open a new one */
        sm_hmap_del(&p->verify_guards, (const char *)&pid, sizeof pid);
    }
    pthread_mutex_unlock(&p->amu);
    if (err == SM_OK)
        appended(p, w.len, out);
    sm_wbuf_free(&w);
    return err;
}

int64_t sm_partition_lso(sm_partition_t *p)
{
    int64_t hw = sm_partition_high_watermark(p);
    if (__atomic_load_n(&p->first_unstable, __ATOMIC_ACQUIRE) < 0)
        return hw;
    pthread_mutex_lock(&p->amu);
    sm_pstate_hw_moved(&p->pstate, hw);
    int64_t fu = sm_pstate_first_unstable(&p->pstate);
    __atomic_store_n(&p->first_unstable, fu, __ATOMIC_RELEASE);
    pthread_mutex_unlock(&p->amu);
    return fu >= 0 && fu < hw ? fu : hw;
}

int sm_partition_aborted_txns(sm_partition_t *p, int64_t from, int64_t upto,
                              sm_log_aborted_t **out)
{
    return sm_log_aborted_txns(p->log, from, upto, out);
}

void sm_partition_each_producer(sm_partition_t *p,
                                void (*fn)(void *arg, const sm_producer_t *pr), void *arg)
{
    pthread_mutex_lock(&p->amu);
    for (sm_hmap_entry_t *e = NULL; (e = sm_hmap_next(&p->pstate.producers, e));)
        fn(arg, e->value);
    pthread_mutex_unlock(&p->amu);
}

/* ------------------------------------------------------------ producer state */

sm_err_t sm_partition_record_batches(sm_partition_t *p, const uint8_t *batches, size_t len)
{
    sm_err_t err = SM_OK;
    for (size_t at = 0; at + SM_BATCH_HEADER_SIZE <= len;) {
        sm_batch_info_t b;
        if (sm_batch_header_parse(batches + at, len - at, &b) != SM_OK || b.batch_length < 0)
            break;
        size_t blen = (size_t)sm_batch_total_size(&b);
        if (blen > len - at)
            break;
        sm_log_aborted_t ab;
        if (sm_pstate_apply(&p->pstate, &b, batches + at, blen, &ab)) {
            sm_err_t e = sm_log_add_aborted(p->log, &ab);
            if (e != SM_OK && err == SM_OK)
                err = e;
        }
        at += blen;
    }
    if (len > 0 && p->pstate.end_offset < sm_log_end_offset(p->log))
        p->pstate.end_offset = sm_log_end_offset(p->log);
    __atomic_store_n(&p->first_unstable, sm_pstate_first_unstable(&p->pstate), __ATOMIC_RELEASE);
    return err;
}

/* Replay the log from the producer state's end to the log end. amu held
 * (or the partition not shared yet). */
static sm_err_t replay(sm_partition_t *p)
{
    int64_t end = sm_log_end_offset(p->log);
    int64_t at = SM_MAX(p->pstate.end_offset, sm_log_start_offset(p->log));
    uint8_t *buf = NULL;
    size_t cap = 0;
    sm_err_t err = SM_OK;
    int64_t replayed = 0;
    while (at < end) {
        sm_log_slice_t sl;
        err = sm_log_read(p->log, at, INT64_MAX, 1 << 20, true, &sl);
        if (err != SM_OK || sl.len <= 0) {
            sm_ref_release(sl.ref);
            break;
        }
        if ((size_t)sl.len > cap) {
            cap = (size_t)sl.len;
            buf = sm_xrealloc(buf, cap);
        }
        ssize_t got = pread(sl.fd, buf, (size_t)sl.len, sl.file_pos);
        int64_t next = sl.next_offset;
        sm_ref_release(sl.ref);
        if (got != sl.len) {
            err = SM_ERR_IO;
            break;
        }
        err = sm_partition_record_batches(p, buf, (size_t)got);
        if (err != SM_OK)
            break;
        replayed += got;
        if (next <= at)
            break;
        at = next;
    }
    free(buf);
    p->pstate.end_offset = end;
    if (replayed > 0)
        SM_INFO("partition", "%s: producer state rebuilt from %" PRId64 " bytes of log, %d "
                             "producer(s)",
                p->name, replayed, sm_pstate_count(&p->pstate));
    return err;
}

sm_err_t sm_partition_rebuild_producers(sm_partition_t *p)
{
    const char *dir = sm_log_dir(p->log);
    int64_t end = sm_log_end_offset(p->log);
    sm_pstate_snapshots_prune(dir, end, INT32_MAX); /* snapshots past a cut log are wrong */
    if (sm_pstate_snapshot_load(&p->pstate, dir, end) != SM_OK)
        sm_pstate_reset(&p->pstate, sm_log_start_offset(p->log));
    sm_pstate_log_start_moved(&p->pstate, sm_log_start_offset(p->log));
    p->snapshot_base = sm_log_active_base(p->log);
    sm_err_t err = replay(p);
    __atomic_store_n(&p->first_unstable, sm_pstate_first_unstable(&p->pstate), __ATOMIC_RELEASE);
    return err;
}

sm_err_t sm_partition_read(sm_partition_t *p, int64_t offset, int32_t max_bytes, bool min_one,
                           sm_log_slice_t *out)
{
    return sm_log_read(p->log, offset, sm_partition_high_watermark(p), max_bytes, min_one, out);
}

sm_err_t sm_partition_read_below(sm_partition_t *p, int64_t offset, int64_t max_offset,
                                 int32_t max_bytes, bool min_one, sm_log_slice_t *out)
{
    int64_t hw = sm_partition_high_watermark(p);
    return sm_log_read(p->log, offset, SM_MIN(hw, max_offset), max_bytes, min_one, out);
}

sm_err_t sm_partition_read_local(sm_partition_t *p, int64_t offset, int32_t max_bytes,
                                 bool min_one, sm_log_slice_t *out)
{
    return sm_log_read(p->log, offset, INT64_MAX, max_bytes, min_one, out);
}

int64_t sm_partition_log_start(const sm_partition_t *p) { return sm_log_start_offset(p->log); }
int64_t sm_partition_log_end(const sm_partition_t *p) { return sm_log_end_offset(p->log); }
int64_t sm_partition_size_bytes(const sm_partition_t *p) { return sm_log_size_bytes(p->log); }
int sm_partition_segment_count(const sm_partition_t *p) { return sm_log_segment_count(p->log); }

sm_err_t sm_partition_delete_records(sm_partition_t *p, int64_t new_start)
{
    if (new_start > sm_partition_high_watermark(p))
        return SM_ERR_RANGE;
    return sm_log_delete_records(p->log, new_start);
}

sm_err_t sm_partition_epoch_end_offset(sm_partition_t *p, int32_t epoch, int32_t *epoch_out,
                                       int64_t *end_out)
{
    return sm_log_epoch_end_offset(p->log, epoch, epoch_out, end_out);
}

sm_err_t sm_partition_offset_for_timestamp(sm_partition_t *p, int64_t ts, int64_t *offset,
                                           int64_t *timestamp)
{
    return sm_log_offset_for_timestamp(p->log, ts, offset, timestamp);
}

sm_err_t sm_partition_max_timestamp(sm_partition_t *p, int64_t *offset, int64_t *timestamp)
{
    return sm_log_max_timestamp(p->log, offset, timestamp);
}

bool sm_partition_sync_required(sm_partition_t *p) { return sm_log_sync_required(p->log); }

sm_log_wait_t sm_partition_wait_durable(sm_partition_t *p, sm_log_waiter_t *w)
{
    return sm_log_wait_durable(p->log, w);
}

void sm_partition_run_flusher(sm_partition_t *p) { sm_log_run_flusher(p->log); }

void sm_partition_write_behind(sm_partition_t *p) { sm_log_write_behind(p->log); }

/* A producer snapshot whenever a segment rolled since the last one (so a
 * crash replays at most about a segment), expiry of idle producers, and
 * producers whose data retention removed. */
static void maintain_producers(sm_partition_t *p, int64_t now_wall_ms)
{
    if (sm_partition_deleted(p))
        return;
    int64_t base = sm_log_active_base(p->log);
    pthread_mutex_lock(&p->amu);
    sm_pstate_log_start_moved(&p->pstate, sm_log_start_offset(p->log));
    int expired = sm_pstate_expire(&p->pstate, now_wall_ms, p->producer_expiration_ms);
    if (expired > 0)
        SM_DEBUG("partition", "%s: %d idle producer(s) expired", p->name, expired);
    if (base != p->snapshot_base) {
        if (sm_pstate_snapshot_write(&p->pstate, sm_log_dir(p->log)) == SM_OK) {
            p->snapshot_base = base;
            sm_pstate_snapshots_prune(sm_log_dir(p->log), INT64_MAX, 2);
        } else {
            SM_WARN("partition", "%s: producer snapshot not written", p->name);
        }
    }
    pthread_mutex_unlock(&p->amu);
}

void sm_partition_maintain(sm_partition_t *p, int64_t now_wall_ms, bool retention)
{
    maintain_producers(p, now_wall_ms);
    sm_partition_expire_hw_waiters(p, sm_now_mono_ms());
    if (sm_partition_role(p) == SM_ROLE_LEADER) /* for the checkpoint */
        sm_log_set_high_watermark(p->log, sm_partition_high_watermark(p));
    if (sm_log_flush_due(p->log, now_wall_ms) && sm_log_flush(p->log) != SM_OK)
        SM_WARN("partition", "%s: periodic flush failed", p->name);
    int deleted = 0;
    pthread_mutex_lock(&p->rmu);
    bool by_time_size = p->cleanup.delete_; /* compact alone: no retention (Kafka) */
    pthread_mutex_unlock(&p->rmu);
    if (retention && by_time_size && sm_log_enforce_retention(p->log, now_wall_ms, &deleted) != SM_OK)
        SM_WARN("partition", "%s: retention pass failed", p->name);
    if (deleted > 0)
        SM_INFO("partition", "%s: retention deleted %d segment(s), log start now %lld", p->name,
                deleted, (long long)sm_log_start_offset(p->log));
}

/* ------------------------------------------------------------ cleaning */

void sm_partition_set_cleanup(sm_partition_t *p, const sm_partition_cleanup_t *c)
{
    pthread_mutex_lock(&p->rmu);
    p->cleanup = *c;
    pthread_mutex_unlock(&p->rmu);
}

void sm_partition_get_cleanup(sm_partition_t *p, sm_partition_cleanup_t *out)
{
    pthread_mutex_lock(&p->rmu);
    *out = p->cleanup;
    pthread_mutex_unlock(&p->rmu);
}

/* Committed data only: below the last stable offset, itself at most the
 * high watermark (leader or follower alike). */
static int64_t first_uncleanable(sm_partition_t *p)
{
    int64_t lso = sm_partition_lso(p), hw = sm_partition_high_watermark(p);
    return SM_MIN(lso, hw);
}

void sm_partition_clean_window(sm_partition_t *p, int64_t now_ms, sm_clean_window_t *w)
{
    sm_partition_cleanup_t c;
    sm_partition_get_cleanup(p, &c);
    sm_log_clean_window(p->log, sm_log_cleaner_offset(p->log), first_uncleanable(p),
                        c.min_lag_ms, now_ms, w);
}

static int cmp_producer(const void *a, const void *b)
{
    const sm_clean_producer_t *x = a, *y = b;
    return x->pid < y->pid ? -1 : x->pid > y->pid;
}

sm_err_t sm_partition_clean(sm_partition_t *p, sm_offset_map_t *map, int64_t now_ms,
                            int64_t io_bytes_per_sec, const int *stop, sm_clean_result_t *out)
{
    sm_partition_cleanup_t c;
    sm_partition_get_cleanup(p, &c);
    /* the producers with state: their last batch stays */
    pthread_mutex_lock(&p->amu);
    size_t n = 0, cap = p->pstate.producers.count;
    sm_clean_producer_t *prod = sm_xmalloc((cap ? cap : 1) * sizeof *prod);
    for (sm_hmap_entry_t *e = NULL; (e = sm_hmap_next(&p->pstate.producers, e));) {
        const sm_producer_t *pr = e->value;
        if (pr->last_offset >= 0 && n < cap)
            prod[n++] = (sm_clean_producer_t){.pid = pr->pid, .last_offset = pr->last_offset};
    }
    pthread_mutex_unlock(&p->amu);
    qsort(prod, n, sizeof *prod, cmp_producer);
    sm_clean_params_t prm = {
        .first_dirty = sm_log_cleaner_offset(p->log),
        .first_uncleanable = first_uncleanable(p),
        .min_compaction_lag_ms = c.min_lag_ms,
        .delete_retention_ms = c.delete_retention_ms,
        .now_ms = now_ms,
        .io_bytes_per_sec = io_bytes_per_sec,
        .segment_bytes = c.segment_bytes,
        .producers = prod,
        .nproducers = (int)n,
        .stop = stop,
        .rewrite_clean = __atomic_load_n(&p->clean_horizon_ms, __ATOMIC_ACQUIRE) <= now_ms,
    };
    sm_err_t err = sm_log_clean(p->log, map, &prm, out);
    if (err == SM_OK && (out->groups > 0 || prm.rewrite_clean))
        __atomic_store_n(&p->clean_horizon_ms, out->next_horizon_ms, __ATOMIC_RELEASE);
    free(prod);
    return err;
}
