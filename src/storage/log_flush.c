/*
 * log_flush.c - making a partition log durable: sm_log_flush, the group
 * commit queue, and repair after a failed fsync.
 *
 * Flush: under mu, pin the segments from the one holding the recovery
 * point to the active one and write their pending index entries; outside
 * mu, fdatasync them (the sealed ones' index files too); then raise the
 * recovery point. The state file is rewritten only when the recovery point
 * moves into another segment (recovery works a segment at a time), so a
 * flush per acks=all produce costs one fdatasync.
 *
 * Group commit: waiters (sm_log_waiter_t, owned by the caller) queue under
 * mu. The first waiter that finds no flusher running tells its caller to
 * start one (on a background thread); the flusher takes the end offset,
 * fsyncs once, completes every waiter whose target is covered, and goes
 * round again while waiters remain. Appends that arrive during an fsync
 * are all covered by the next one, so N concurrent producers cost about
 * two fsyncs, not N.
 *
 * Failure: after a failed fsync Linux may have dropped the dirty pages
 * (marking them clean), so a later successful fsync proves nothing about
 * them. The log enters the failed state (appends refused with the error,
 * reads go on, waiters get the error). The next flush - the broker's
 * maintenance pass calls one every second while the log is failed -
 * re-reads the unflushed tail batch by batch, validates each and writes it
 * again at the same position before the fsync; on success the state
 * clears and appends resume. A tail that no longer validates stays failed
 * (recovery at the next start truncates it). Nothing below the recovery
 * point is touched, so acknowledged-after-fsync data is never at risk.
 */
#define _GNU_SOURCE
#include "log_internal.h"

#include "file.h"
#include "../core/log.h"

#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

int64_t sm_log_unflushed_messages(sm_log_t *log)
{
    return __atomic_load_n(&log->unflushed, __ATOMIC_RELAXED);
}

int64_t sm_log_durable_offset(sm_log_t *log)
{
    return __atomic_load_n(&log->recovery_point, __ATOMIC_ACQUIRE);
}

sm_err_t sm_log_failed(sm_log_t *log)
{
    return __atomic_load_n(&log->failed, __ATOMIC_ACQUIRE);
}

bool sm_log_sync_required(sm_log_t *log)
{
    pthread_mutex_lock(&log->mu);
    bool req = log->cfg.flush_messages != INT64_MAX && log->unflushed >= log->cfg.flush_messages;
    pthread_mutex_unlock(&log->mu);
    return req;
}

bool sm_log_flush_due(sm_log_t *log, int64_t now_ms)
{
    sm_log_checkpoint_dirs_maybe(now_ms);
    pthread_mutex_lock(&log->mu);
    bool due = log->unflushed > 0 &&
               ((log->cfg.flush_ms != INT64_MAX && now_ms - log->last_flush_ms >= log->cfg.flush_ms) ||
                log->unflushed >= log->cfg.flush_messages);
    /* A sealed segment not yet synced: Kafka flushes on roll. */
    if (log->recovery_point < sm_log_active(log)->base_offset)
        due = true;
    if (log->failed)
        due = true;
    pthread_mutex_unlock(&log->mu);
    return due;
}

/* Rewrite the batches of [from, size) of one segment from the file (each
 * re-validated) so the next fsync really covers them. Any thread, on
 * pinned files; flush_mu held (no truncation meanwhile). */
static sm_err_t rewrite_tail(const char *name, int fd, int64_t from, int64_t size)
{
    sm_seg_scan_t sc;
    sm_seg_scan_init(&sc, fd, from, size);
    sm_batch_info_t b;
    int64_t pos;
    uint8_t *buf = NULL;
    size_t cap = 0;
    sm_err_t err;
    while ((err = sm_seg_scan_next(&sc, &b, &pos)) == SM_OK) {
        size_t total = (size_t)sm_batch_total_size(&b), got;
        if (total > SM_SEGMENT_MAX_BATCH_BYTES) {
            err = SM_ERR_CORRUPT;
            break;
        }
        if (total > cap)
            buf = sm_xrealloc(buf, cap = total);
        const char *why = NULL;
        sm_batch_info_t vb;
        if ((err = sm_file_pread(fd, buf, total, pos, &got)))
            break;
        if (got != total || sm_batch_validate_stored(buf, total, &vb, &why) != SM_OK) {
            SM_ERROR("storage", "%s: unflushed batch at position %" PRId64
                     " no longer validates after a failed fsync (%s); restart to recover",
                     name, pos, why ? why : "short read");
            err = SM_ERR_CORRUPT;
            break;
        }
        if ((err = sm_file_pwrite(fd, buf, total, pos)))
            break;
    }
    free(buf);
    return err == SM_ERR_NOT_FOUND ? SM_OK : err;
}

sm_err_t sm_log_flush(sm_log_t *log)
{
    sm_err_t err = SM_OK;
    pthread_mutex_lock(&log->flush_mu);
    pthread_mutex_lock(&log->mu);
    int64_t target = log->end_offset, unflushed = log->unflushed, rp0 = log->recovery_point;
    uint64_t gen = log->trunc_gen;
    sm_err_t failed = log->failed;
    if (!failed && target <= log->recovery_point && unflushed == 0) {
        pthread_mutex_unlock(&log->mu);
        if (log->epochs_dirty)
            err = sm_log_epochs_persist(log, true);
        pthread_mutex_unlock(&log->flush_mu);
        return err;
    }
    /* From the segment holding the last durable offset: when the recovery
     * point sits exactly at a roll, the sealed segment's index files were
     * written after its data was synced and still need their fsync. */
    int from = sm_log_seg_find(log, SM_MAX(log->recovery_point - 1, 0)), n = log->nsegs - from;
    sm_segfiles_t **files = sm_xcalloc((size_t)n, sizeof *files);
    int64_t *bases = sm_xcalloc((size_t)n, sizeof *bases), *sizes = sm_xcalloc((size_t)n, sizeof *sizes);
    int npinned = 0;
    for (int i = 0; i < n && !err; i++) {
        sm_segment_t *seg = log->segs[from + i];
        if ((err = sm_segment_pin(seg, &files[i])))
            break;
        npinned++;
        bases[i] = seg->base_offset;
        sizes[i] = seg->size;
        /* pending entries go to the file now, under mu (appenders add more) */
        err = sm_index_write_pending(&seg->oidx, files[i]->oidx_fd);
        if (!err)
            err = sm_index_write_pending(&seg->tidx, files[i]->tidx_fd);
    }
    /* where the unflushed data starts in the first segment (repair only) */
    int64_t repair_from = 0;
    if (!err && failed && rp0 > bases[0]) {
        sm_segment_t *seg = log->segs[from];
        sm_index_snap_t snap;
        sm_index_snapshot(&seg->oidx, files[0]->oidx_fd, &snap);
        pthread_mutex_unlock(&log->mu);
        sm_seg_scan_t sc;
        sm_batch_info_t b;
        sm_err_t e = sm_segment_locate(files[0]->log_fd, bases[0], sizes[0], &snap, rp0, &sc, &b,
                                       &repair_from);
        if (e == SM_ERR_NOT_FOUND)
            repair_from = sizes[0];
        else if (e)
            err = e;
        pthread_mutex_lock(&log->mu);
    }
    pthread_mutex_unlock(&log->mu);

    if (!err && failed) {
        SM_WARN("storage", "%s: flush after a failed fsync: rewriting the unflushed tail from "
                "offset %" PRId64, log->name, rp0);
        for (int i = 0; i < npinned && !err; i++)
            err = rewrite_tail(log->name, files[i]->log_fd, i == 0 ? repair_from : 0, sizes[i]);
    }
    /* The active segment's indexes need no fsync: recovery rescans the
     * segment holding the recovery point and rebuilds them. A sealed
     * segment's indexes are trusted once the recovery point passes it. */
    int64_t sync_start_us = sm_now_mono_us();
    for (int i = 0; i < npinned && !err; i++) {
        err = sm_file_datasync(files[i]->log_fd);
        if (!err && i < n - 1)
            err = sm_file_datasync(files[i]->oidx_fd);
        if (!err && i < n - 1)
            err = sm_file_datasync(files[i]->tidx_fd);
    }
    if (log->flush_histo && npinned > 0)
        sm_histo_record_us(log->flush_histo, sm_now_mono_us() - sync_start_us);
    for (int i = 0; i < npinned; i++)
        sm_segfiles_release(files[i]);
    free(files);
    free(bases);
    free(sizes);
    if (!err && log->epochs_dirty)
        err = sm_log_epochs_persist(log, true);
    if (err) {
        pthread_mutex_lock(&log->mu);
        if (!log->failed)
            SM_ERROR("storage", "%s: flush failed: %s; appends refused until a flush succeeds",
                     log->name, sm_err_str(err));
        __atomic_store_n(&log->failed, err, __ATOMIC_RELEASE);
        pthread_mutex_unlock(&log->mu);
        pthread_mutex_unlock(&log->flush_mu);
        return err;
    }

    pthread_mutex_lock(&log->mu);
    if (gen == log->trunc_gen && target > log->recovery_point)
        __atomic_store_n(&log->recovery_point, target, __ATOMIC_RELEASE);
    int64_t left = log->unflushed - unflushed;
    log->unflushed = left > 0 ? left : 0;
    log->last_flush_ms = sm_now_wall_ms();
    int64_t start = log->start_offset, rp = log->recovery_point;
    /* Recovery works a segment at a time, so the state file only needs a
     * new recovery point when it enters another segment: most flushes
     * (acks=all, flush.messages) cost one fdatasync and no state write. */
    bool persist = log->segs[sm_log_seg_find(log, rp)]->base_offset !=
                   log->segs[sm_log_seg_find(log, log->state_rp)]->base_offset;
    if (failed)
        SM_INFO("storage", "%s: flush succeeded again; appends resume", log->name);
    __atomic_store_n(&log->failed, SM_OK, __ATOMIC_RELEASE);
    pthread_mutex_unlock(&log->mu);
    if (persist)
        err = sm_log_state_write(log, start, rp);
    pthread_mutex_unlock(&log->flush_mu);
    return err;
}

/* ------------------------------------------------------------ group commit */

sm_log_wait_t sm_log_wait_durable(sm_log_t *log, sm_log_waiter_t *w)
{
    pthread_mutex_lock(&log->mu);
    if (w->target <= log->recovery_point && !log->failed) {
        pthread_mutex_unlock(&log->mu);
        return SM_LOG_WAIT_DURABLE;
    }
    w->next = NULL;
    if (log->waiters_tail)
        log->waiters_tail->next = w;
    else
        log->waiters = w;
    log->waiters_tail = w;
    sm_log_wait_t r = SM_LOG_WAIT_QUEUED;
    if (!log->flusher_active) {
        log->flusher_active = true;
        r = SM_LOG_WAIT_START;
    }
    pthread_mutex_unlock(&log->mu);
    return r;
}

void sm_log_run_flusher(sm_log_t *log)
{
    for (;;) {
        pthread_mutex_lock(&log->mu);
        if (!log->waiters) {
            log->flusher_active = false;
            pthread_mutex_unlock(&log->mu);
            return;
        }
        pthread_mutex_unlock(&log->mu);

        /* One fsync for everything appended so far. */
        sm_err_t err = sm_log_flush(log);

        /* Complete the covered waiters (all of them on failure). */
        sm_log_waiter_t *done = NULL, **dtail = &done;
        pthread_mutex_lock(&log->mu);
        int64_t rp = log->recovery_point;
        sm_log_waiter_t **pp = &log->waiters, *last = NULL;
        while (*pp) {
            sm_log_waiter_t *w = *pp;
            if (err || w->target <= rp) {
                *pp = w->next;
                w->next = NULL;
                *dtail = w;
                dtail = &w->next;
            } else {
                last = w;
                pp = &w->next;
            }
        }
        log->waiters_tail = last;
        pthread_mutex_unlock(&log->mu);
        while (done) {
            sm_log_waiter_t *w = done;
            done = w->next;
            w->done(w, err);
        }
    }
}
