/*
 * log_admin.c - the partition log's less frequent operations: truncation
 * (replication), DeleteRecords, retention, destroy, and the timestamp
 * lookups of ListOffsets.
 *
 * Operations that remove segments rename their files to *.deleted under
 * mu (so the base offset can be reused at once) and unlink them after
 * releasing it; readers holding a slice keep the open fd. Every function
 * here is thread-safe; lock order flush_mu then mu (log_internal.h).
 */
#define _GNU_SOURCE
#include "log_internal.h"

#include "file.h"
#include "../core/log.h"

#include <dirent.h>
#include <sys/random.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ------------------------------------------------------------ truncation */

/* restart: drop everything and restart the log empty at offset, wherever
 * offset lies (a follower that installs a snapshot ending there). */
static sm_err_t truncate_impl(sm_log_t *log, int64_t offset, bool restart)
{
    sm_err_t err = SM_OK;
    sm_segment_t **gone = NULL;
    int ngone = 0;
    pthread_mutex_lock(&log->flush_mu);
    pthread_mutex_lock(&log->mu);
    if (log->closed) {
        err = SM_ERR_CLOSED;
        goto unlock;
    }
    if (offset < 0 || (!restart && offset >= log->end_offset))
        goto unlock;
    log->trunc_gen++;
    int i = sm_log_seg_find(log, offset);
    sm_segment_t *seg = log->segs[i];
    int64_t pos = seg->size, new_end = seg->end_offset;
    if (!restart && offset >= seg->base_offset) {
        sm_segfiles_t *f;
        if ((err = sm_segment_pin(seg, &f)))
            goto unlock;
        sm_index_snap_t snap;
        sm_index_snapshot(&seg->oidx, f->oidx_fd, &snap);
        sm_seg_scan_t sc;
        sm_batch_info_t b;
        err = sm_segment_locate(f->log_fd, seg->base_offset, seg->size, &snap, offset, &sc, &b, &pos);
        sm_segfiles_release(f);
        if (err == SM_OK)
            new_end = b.base_offset;
        else if (err != SM_ERR_NOT_FOUND)
            goto unlock;
        err = SM_OK;
    }
    gone = sm_xcalloc((size_t)log->nsegs, sizeof *gone);
    if (restart || offset < seg->base_offset || new_end < log->start_offset) {
        /* Nothing of the log survives: restart empty at offset. The new
         * first segment exists before the old ones go, so a failure leaves
         * the log as it was. A segment already based at offset is reused
         * (emptied) rather than created over. */
        int keep = -1;
        for (int k = 0; k < log->nsegs; k++)
            if (log->segs[k]->base_offset == offset)
                keep = k;
        sm_segment_t *fresh = NULL;
        if (keep < 0 &&
            (err = sm_segment_create(log->dir, offset, log->cfg.segment_index_bytes, &fresh))) {
            SM_ERROR("storage", "%s: cannot create segment at %" PRId64 " for truncation: %s",
                     log->name, offset, sm_err_str(err));
            goto unlock;
        }
        if (keep >= 0 && (err = sm_segment_truncate(log->segs[keep], 0))) {
            __atomic_store_n(&log->failed, err, __ATOMIC_RELEASE);
            goto unlock;
        }
        if (keep >= 0) {
            ngone = log->nsegs - keep - 1;
            sm_log_segs_remove(log, keep + 1, ngone, gone);
            sm_log_segs_remove(log, 0, keep, gone + ngone);
            ngone += keep;
        } else {
            ngone = log->nsegs;
            sm_log_segs_remove(log, 0, ngone, gone);
            sm_log_seg_push(log, fresh);
        }
        __atomic_store_n(&log->start_offset, offset, __ATOMIC_RELEASE);
        new_end = offset;
    } else {
        if ((err = sm_segment_truncate(seg, pos))) {
            /* the file may be cut while the indexes are not: stop appends
             * until a restart recovers the segment */
            __atomic_store_n(&log->failed, err, __ATOMIC_RELEASE);
            goto unlock;
        }
        ngone = log->nsegs - i - 1;
        sm_log_segs_remove(log, i + 1, ngone, gone);
        new_end = seg->end_offset;
    }
    SM_INFO("storage", "%s: truncated to offset %" PRId64 " (requested %" PRId64 "), %d segment(s) removed",
            log->name, new_end, offset, ngone);
    __atomic_store_n(&log->end_offset, new_end, __ATOMIC_RELEASE);
    if (log->recovery_point > new_end)
        __atomic_store_n(&log->recovery_point, new_end, __ATOMIC_RELEASE);
    log->dirty = true;
    /* a reset log has no epochs: its history is the snapshot's */
    sm_log_epochs_truncate_end(log, restart ? INT64_MIN : new_end);
    sm_log_aborted_truncate(log, restart ? INT64_MIN : new_end);
    if (new_end == log->start_offset)
        sm_log_epochs_truncate_start(log, log->start_offset);
    /* Persist while still holding mu: no append may land above the new end
     * while the state file or the log dir's checkpoint still claims the old
     * recovery point (recovery trusts the larger of the two). */
    err = sm_log_state_write(log, log->start_offset, log->recovery_point);
    if (!err)
        err = sm_logdir_checkpoint(log);
unlock:
    pthread_mutex_unlock(&log->mu);
    pthread_mutex_unlock(&log->flush_mu);
    sm_log_segs_finish_delete(gone, ngone);
    free(gone);
    return err;
}

sm_err_t sm_log_truncate_to(sm_log_t *log, int64_t offset)
{
    return truncate_impl(log, offset, false);
}

sm_err_t sm_log_reset(sm_log_t *log, int64_t offset)
{
    return truncate_impl(log, offset, true);
}

/* ------------------------------------------------------------ deletion */

/* Remove leading segments that lie wholly below the log start (never the
 * active one), persist the state, unlink. Called with flush_mu and mu held;
 * releases mu. */
static sm_err_t drop_below_start(sm_log_t *log, int *deleted)
{
    int n = 0;
    while (n + 1 < log->nsegs && log->segs[n + 1]->base_offset <= log->start_offset)
        n++;
    sm_segment_t **gone = n ? sm_xcalloc((size_t)n, sizeof *gone) : NULL;
    sm_log_segs_remove(log, 0, n, gone);
    int64_t start = log->start_offset, rp = log->recovery_point;
    sm_log_epochs_truncate_start(log, start);
    log->dirty = true;
    pthread_mutex_unlock(&log->mu);
    sm_err_t err = sm_log_state_write(log, start, rp);
    sm_log_segs_finish_delete(gone, n);
    free(gone);
    if (deleted)
        *deleted = n;
    return err;
}

sm_err_t sm_log_delete_records(sm_log_t *log, int64_t new_start)
{
    pthread_mutex_lock(&log->flush_mu);
    pthread_mutex_lock(&log->mu);
    sm_err_t err = SM_OK;
    if (log->closed || new_start > log->end_offset || new_start <= log->start_offset) {
        err = log->closed ? SM_ERR_CLOSED : new_start > log->end_offset ? SM_ERR_RANGE : SM_OK;
        pthread_mutex_unlock(&log->mu);
        pthread_mutex_unlock(&log->flush_mu);
        return err;
    }
    __atomic_store_n(&log->start_offset, new_start, __ATOMIC_RELEASE);
    SM_INFO("storage", "%s: log start offset moved to %" PRId64, log->name, new_start);
    err = drop_below_start(log, NULL);
    pthread_mutex_unlock(&log->flush_mu);
    return err;
}

sm_err_t sm_log_enforce_retention(sm_log_t *log, int64_t now_ms, int *deleted)
{
    if (deleted)
        *deleted = 0;
    pthread_mutex_lock(&log->flush_mu);
    pthread_mutex_lock(&log->mu);
    if (log->closed) {
        pthread_mutex_unlock(&log->mu);
        pthread_mutex_unlock(&log->flush_mu);
        return SM_ERR_CLOSED;
    }
    int64_t total = 0;
    for (int i = 0; i < log->nsegs; i++)
        total += log->segs[i]->size;
    int n = 0;
    const sm_log_config_t *c = &log->cfg;
    while (n + 1 < log->nsegs) {
        sm_segment_t *s = log->segs[n];
        bool by_time = c->retention_ms >= 0 && s->max_ts >= 0 && now_ms - s->max_ts > c->retention_ms;
        bool by_size = c->retention_bytes >= 0 && total - s->size >= c->retention_bytes;
        if (!by_time && !by_size)
            break;
        total -= s->size;
        n++;
    }
    if (n == 0) {
        pthread_mutex_unlock(&log->mu);
        pthread_mutex_unlock(&log->flush_mu);
        return SM_OK;
    }
    int64_t new_start = log->segs[n]->base_offset;
    if (new_start > log->start_offset)
        __atomic_store_n(&log->start_offset, new_start, __ATOMIC_RELEASE);
    SM_INFO("storage", "%s: retention deletes %d segment(s); log start offset %" PRId64,
            log->name, n, log->start_offset);
    sm_err_t err = drop_below_start(log, deleted);
    pthread_mutex_unlock(&log->flush_mu);
    return err;
}

/* Remove a partition directory: its files (it has no subdirectories),
 * then itself. */
static sm_err_t remove_dir(const char *dir)
{
    sm_err_t err = SM_OK;
    DIR *d = opendir(dir);
    if (d) {
        struct dirent *de;
        while ((de = readdir(d))) {
            if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
                continue;
            char *p = sm_xasprintf("%s/%s", dir, de->d_name);
            sm_err_t e = sm_file_unlink(p);
            if (e && !err)
                err = e;
            free(p);
        }
        closedir(d);
    }
    sm_err_t e = sm_file_rmdir(dir);
    return err ? err : e;
}

#define DELETE_SUFFIX "-delete"

sm_err_t sm_log_retire(sm_log_t *log)
{
    uint8_t rnd[16];
    char hex[33];
    if (getrandom(rnd, sizeof rnd, 0) != (ssize_t)sizeof rnd) {
        uint64_t t = (uint64_t)sm_now_mono_us() ^ (uint64_t)(uintptr_t)log;
        memcpy(rnd, &t, 8);
        memcpy(rnd + 8, &t, 8);
    }
    for (int i = 0; i < 16; i++)
        snprintf(hex + 2 * i, 3, "%02x", rnd[i]);
    pthread_mutex_lock(&log->flush_mu);
    pthread_mutex_lock(&log->mu);
    char *to = sm_xasprintf("%s.%s" DELETE_SUFFIX, log->dir, hex);
    sm_err_t err = sm_file_rename(log->dir, to);
    if (err == SM_OK) {
        char *parent = sm_xstrdup(log->dir);
        char *slash = strrchr(parent, '/');
        if (slash && slash != parent)
            *slash = '\0';
        if (sm_file_sync_dir(slash ? parent : ".") != SM_OK)
            SM_WARN("storage", "%s: syncing %s after the rename failed", log->name, parent);
        free(parent);
        SM_INFO("storage", "%s: directory moved aside for deletion (%s)", log->name, to);
        free(log->dir);
        log->dir = to;
    } else {
        SM_WARN("storage", "%s: cannot move %s aside: %s", log->name, log->dir, sm_err_str(err));
        free(to);
    }
    /* The log dir's checkpoints forget it now, not when the last reference
     * goes: by then a new log of the same name may be listed there. */
    sm_logdir_detach(log, true, 0, 0, 0, true);
    pthread_mutex_unlock(&log->mu);
    pthread_mutex_unlock(&log->flush_mu);
    return err;
}

int sm_log_remove_retired(const char *log_dir)
{
    DIR *d = opendir(log_dir);
    if (!d)
        return 0;
    int n = 0;
    size_t sl = strlen(DELETE_SUFFIX);
    struct dirent *de;
    while ((de = readdir(d))) {
        /* "<topic>-<partition>.<32 hex digits>-delete", nothing else */
        const char *nm = de->d_name;
        size_t len = strlen(nm);
        if (len < sl + 34 || strcmp(nm + len - sl, DELETE_SUFFIX) != 0 || nm[len - sl - 33] != '.')
            continue;
        bool hex = true;
        for (size_t i = len - sl - 32; i < len - sl && hex; i++)
            hex = (nm[i] >= '0' && nm[i] <= '9') || (nm[i] >= 'a' && nm[i] <= 'f');
        if (!hex)
            continue;
        char *p = sm_xasprintf("%s/%s", log_dir, de->d_name);
        if (remove_dir(p) == SM_OK) {
            SM_INFO("storage", "removed %s, left by a topic deletion", p);
            n++;
        } else {
            SM_WARN("storage", "cannot remove %s, left by a topic deletion", p);
        }
        free(p);
    }
    closedir(d);
    return n;
}

sm_err_t sm_log_destroy(sm_log_t *log)
{
    pthread_mutex_lock(&log->flush_mu);
    pthread_mutex_lock(&log->mu);
    log->closed = true;
    pthread_mutex_unlock(&log->mu);
    pthread_mutex_unlock(&log->flush_mu);
    sm_err_t err = remove_dir(log->dir);
    SM_INFO("storage", "%s: log deleted (%s)", log->name, log->dir);
    sm_logdir_detach(log, true, 0, 0, 0, true);
    for (int i = 0; i < log->nsegs; i++)
        sm_segment_release(log->segs[i]);
    pthread_mutex_destroy(&log->mu);
    pthread_mutex_destroy(&log->flush_mu);
    free(log->segs);
    free(log->epochs);
    free(log->aborted);
    free(log->topic);
    free(log->dir);
    free(log->name);
    free(log);
    return err;
}

/* ------------------------------------------------------------ timestamps */

/* Read the batch at pos (total bytes) and find, among its records, the
 * first whose timestamp satisfies ts >= target (exact == false) or
 * ts == target (exact). Only for uncompressed CreateTime batches; else
 * reports the base offset. Any thread (fd only). */
static void refine_record(int fd, int64_t pos, const sm_batch_info_t *b, int64_t target,
                          bool exact, int64_t *offset, int64_t *ts)
{
    *offset = b->base_offset;
    *ts = b->max_timestamp;
    if ((b->attributes & (SM_BATCH_ATTR_COMPRESSION_MASK | SM_BATCH_ATTR_LOG_APPEND_TIME)) ||
        sm_batch_total_size(b) > SM_SEGMENT_MAX_BATCH_BYTES)
        return;
    size_t total = (size_t)sm_batch_total_size(b), got;
    uint8_t *buf = sm_xmalloc(total);
    sm_record_iter_t it;
    if (sm_file_pread(fd, buf, total, pos, &got) == SM_OK && got == total &&
        sm_record_iter_init(&it, buf, total) == SM_OK) {
        sm_record_t r;
        while (sm_record_iter_next(&it, &r) == SM_OK) {
            int64_t rts = b->base_timestamp + r.timestamp_delta;
            if (exact ? rts == target : rts >= target) {
                *offset = b->base_offset + r.offset_delta;
                *ts = rts;
                break;
            }
        }
    }
    free(buf);
}

sm_err_t sm_log_offset_for_timestamp(sm_log_t *log, int64_t ts, int64_t *offset,
                                     int64_t *timestamp)
{
    int64_t after_base = INT64_MIN;
    for (;;) {
        pthread_mutex_lock(&log->mu);
        int64_t start = log->start_offset;
        int i = sm_log_seg_find(log, start);
        while (i < log->nsegs &&
               (log->segs[i]->max_ts < ts || log->segs[i]->base_offset <= after_base))
            i++;
        if (i == log->nsegs) {
            pthread_mutex_unlock(&log->mu);
            return SM_ERR_NOT_FOUND;
        }
        sm_segment_t *seg = log->segs[i];
        sm_segfiles_t *f;
        sm_err_t err = sm_segment_pin(seg, &f);
        if (err) {
            pthread_mutex_unlock(&log->mu);
            return err;
        }
        int64_t size = seg->size, base = seg->base_offset;
        sm_index_snap_t osnap, tsnap;
        sm_index_snapshot(&seg->oidx, f->oidx_fd, &osnap);
        sm_index_snapshot(&seg->tidx, f->tidx_fd, &tsnap);
        pthread_mutex_unlock(&log->mu);

        /* time index -> an offset at or before the answer -> its position */
        int64_t from = SM_MAX(start, base);
        sm_index_entry_t te;
        /* The time index maps a timestamp to the last offset of a batch
         * whose max timestamp reached it; the entry at or below ts points
         * before the answer (entries are added when the max grows). */
        if (sm_index_snap_lookup(&tsnap, ts, &te) == SM_OK)
            from = SM_MAX(from, base + te.value);
        sm_seg_scan_t sc;
        sm_batch_info_t b;
        int64_t pos;
        err = sm_segment_locate(f->log_fd, base, size, &osnap, from, &sc, &b, &pos);
        /* Batches before the time-index hit all have maxTimestamp < ts, so
         * the scan starts at the batch holding `from`. */
        while (err == SM_OK && b.max_timestamp < ts)
            err = sm_seg_scan_next(&sc, &b, &pos);
        if (err == SM_OK) {
            refine_record(f->log_fd, pos, &b, ts, false, offset, timestamp);
            *offset = SM_MAX(*offset, start);
            sm_segfiles_release(f);
            return SM_OK;
        }
        after_base = base;
        sm_segfiles_release(f);
        if (err != SM_ERR_NOT_FOUND)
            return err;
    }
}

sm_err_t sm_log_max_timestamp(sm_log_t *log, int64_t *offset, int64_t *timestamp)
{
    pthread_mutex_lock(&log->mu);
    int64_t start = log->start_offset;
    sm_segment_t *best = NULL;
    for (int i = sm_log_seg_find(log, start); i < log->nsegs; i++) {
        sm_segment_t *s = log->segs[i];
        if (s->size > 0 && s->max_ts >= 0 && (!best || s->max_ts > best->max_ts))
            best = s;
    }
    if (!best) {
        pthread_mutex_unlock(&log->mu);
        return SM_ERR_NOT_FOUND;
    }
    sm_segment_t *seg = best;
    sm_segfiles_t *f;
    sm_err_t err = sm_segment_pin(seg, &f);
    if (err) {
        pthread_mutex_unlock(&log->mu);
        return err;
    }
    int64_t size = seg->size, max_ts = seg->max_ts, target = seg->max_ts_offset;
    int64_t base = seg->base_offset;
    sm_index_snap_t snap;
    sm_index_snapshot(&seg->oidx, f->oidx_fd, &snap);
    pthread_mutex_unlock(&log->mu);

    sm_seg_scan_t sc;
    sm_batch_info_t b;
    int64_t pos;
    err = sm_segment_locate(f->log_fd, base, size, &snap, target, &sc, &b, &pos);
    if (err == SM_OK && b.max_timestamp != max_ts) {
        /* the remembered offset is stale (e.g. after truncation): scan */
        sm_seg_scan_init(&sc, f->log_fd, 0, size);
        while ((err = sm_seg_scan_next(&sc, &b, &pos)) == SM_OK && b.max_timestamp != max_ts)
            ;
    }
    if (err == SM_OK) {
        refine_record(f->log_fd, pos, &b, max_ts, true, offset, timestamp);
        *offset = SM_MAX(*offset, start);
    }
    sm_segfiles_release(f);
    return err;
}
