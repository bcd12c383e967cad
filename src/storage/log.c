/*
 * log.c - the partition log: open, append, read, flush and close (see
 * log.h for the contract, log_internal.h for the locking, log_load.c for
 * recovery, log_admin.c for truncation/retention/timestamp lookups).
 *
 * Append holds mu while it writes: offsets are assigned, the bytes written
 * with one pwrite, the indexes updated, and only then are the segment size
 * and log end offset published. Readers copy (segment, size, index
 * snapshot) under mu and do their preads outside it, so a reader never sees
 * bytes past a published size and never waits for another reader's I/O.
 * Flush copies the segments to sync under mu and fsyncs outside it.
 */
#define _GNU_SOURCE
#include "log_internal.h"

#include "file.h"
#include "../core/log.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void sm_log_config_default(sm_log_config_t *c)
{
    memset(c, 0, sizeof *c);
    c->segment_bytes = 1073741824;
    c->segment_ms = 7LL * 24 * 3600 * 1000;
    c->index_interval_bytes = 4096;
    c->segment_index_bytes = 10485760;
    c->flush_messages = INT64_MAX;
    c->flush_ms = INT64_MAX;
    c->retention_bytes = -1;
    c->retention_ms = 604800000;
    c->log_append_time = false;
}

/* Clamp values the format cannot represent (positions are int32). */
static void config_sanitize(sm_log_config_t *c)
{
    if (c->segment_bytes < SM_BATCH_HEADER_SIZE)
        c->segment_bytes = SM_BATCH_HEADER_SIZE;
    if (c->segment_bytes > INT32_MAX)
        c->segment_bytes = INT32_MAX;
    if (c->index_interval_bytes < 0)
        c->index_interval_bytes = 0;
    if (c->segment_index_bytes < 12)
        c->segment_index_bytes = 12;
    if (c->segment_ms <= 0)
        c->segment_ms = INT64_MAX;
    if (c->flush_messages <= 0)
        c->flush_messages = 1;
}

/* ------------------------------------------------------------ segments */

int sm_log_seg_find(sm_log_t *log, int64_t offset)
{
    int lo = 0, hi = log->nsegs; /* first segment with base > offset */
    while (lo < hi) {
        int mid = lo + (hi - lo) / 2;
        if (log->segs[mid]->base_offset <= offset)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo > 0 ? lo - 1 : 0;
}

void sm_log_seg_push(sm_log_t *log, sm_segment_t *seg)
{
    if (log->nsegs == log->segs_cap) {
        log->segs_cap = log->segs_cap ? log->segs_cap * 2 : 2;
        log->segs = sm_xrealloc(log->segs, sizeof *log->segs * (size_t)log->segs_cap);
    }
    log->segs[log->nsegs++] = seg;
}

void sm_log_segs_remove(sm_log_t *log, int from, int n, sm_segment_t **out)
{
    SM_ASSERT(from >= 0 && n >= 0 && from + n <= log->nsegs);
    for (int i = 0; i < n; i++) {
        sm_segment_t *seg = log->segs[from + i];
        if (sm_segment_mark_deleted(seg) != SM_OK)
            SM_WARN("storage", "%s: could not rename %s for deletion", log->name, seg->path);
        out[i] = seg;
    }
    memmove(log->segs + from, log->segs + from + n,
            sizeof *log->segs * (size_t)(log->nsegs - from - n));
    log->nsegs -= n;
}

void sm_log_segs_finish_delete(sm_segment_t **segs, int n)
{
    for (int i = 0; i < n; i++) {
        sm_segment_unlink_deleted(segs[i]->path);
        sm_segment_release(segs[i]);
    }
}

/* ------------------------------------------------------------ state */

sm_err_t sm_log_state_write(sm_log_t *log, int64_t start, int64_t rp, bool clean)
{
    char buf[160];
    int n = snprintf(buf, sizeof buf,
                     "samsa-log-state 1\nlog_start_offset %" PRId64 "\nrecovery_point %" PRId64
                     "\nclean_shutdown %d\n",
                     start, rp, clean ? 1 : 0);
    sm_err_t err = sm_file_write_atomic(log->dir, SM_LOG_STATE_FILE, buf, (size_t)n);
    if (!err)
        log->state_rp = rp;
    if (err)
        SM_ERROR("storage", "%s: writing %s/%s failed: %s", log->name, log->dir,
                 SM_LOG_STATE_FILE, sm_err_str(err));
    return err;
}

/* Before the first write after opening a cleanly closed log, record that
 * the log is dirty, so a crash from now on triggers recovery. Takes
 * flush_mu; must be called without mu. */
static sm_err_t mark_dirty(sm_log_t *log)
{
    if (!__atomic_load_n(&log->state_clean, __ATOMIC_ACQUIRE))
        return SM_OK;
    sm_err_t err = SM_OK;
    pthread_mutex_lock(&log->flush_mu);
    if (log->state_clean) {
        pthread_mutex_lock(&log->mu);
        int64_t start = log->start_offset, rp = log->recovery_point;
        pthread_mutex_unlock(&log->mu);
        err = sm_log_state_write(log, start, rp, false);
        if (!err)
            __atomic_store_n(&log->state_clean, false, __ATOMIC_RELEASE);
    }
    pthread_mutex_unlock(&log->flush_mu);
    return err;
}

/* ------------------------------------------------------------ open/close */

sm_err_t sm_log_open(const char *dir, const char *name, const sm_log_config_t *cfg,
                     sm_log_t **out)
{
    sm_err_t err = sm_file_mkdirs(dir);
    if (err)
        return err;
    sm_log_t *log = sm_xcalloc(1, sizeof *log);
    pthread_mutex_init(&log->mu, NULL);
    pthread_mutex_init(&log->flush_mu, NULL);
    log->dir = sm_xstrdup(dir);
    log->name = sm_xstrdup(name ? name : dir);
    log->cfg = *cfg;
    config_sanitize(&log->cfg);
    log->last_flush_ms = sm_now_wall_ms();
    if ((err = sm_log_load(log))) {
        SM_ERROR("storage", "%s: cannot open log in %s: %s", log->name, dir, sm_err_str(err));
        log->state_clean = false;
        for (int i = 0; i < log->nsegs; i++)
            sm_segment_release(log->segs[i]);
        log->nsegs = 0;
        goto fail;
    }
    *out = log;
    return SM_OK;
fail:
    pthread_mutex_destroy(&log->mu);
    pthread_mutex_destroy(&log->flush_mu);
    free(log->segs);
    free(log->dir);
    free(log->name);
    free(log);
    return err;
}

static void log_free(sm_log_t *log)
{
    for (int i = 0; i < log->nsegs; i++)
        sm_segment_release(log->segs[i]);
    pthread_mutex_destroy(&log->mu);
    pthread_mutex_destroy(&log->flush_mu);
    free(log->segs);
    free(log->dir);
    free(log->name);
    free(log);
}

void sm_log_close(sm_log_t *log)
{
    if (!log)
        return;
    sm_err_t err = sm_log_flush(log);
    pthread_mutex_lock(&log->flush_mu);
    pthread_mutex_lock(&log->mu);
    log->closed = true;
    int64_t start = log->start_offset, end = log->end_offset;
    if (!err) /* the flush may have had nothing to do: index entries still need to land */
        err = sm_segment_sync_indexes(sm_log_active(log));
    pthread_mutex_unlock(&log->mu);
    if (!err)
        err = sm_log_state_write(log, start, end, true);
    if (err)
        SM_WARN("storage", "%s: closed without a clean-shutdown mark (%s); next open recovers",
                log->name, sm_err_str(err));
    pthread_mutex_unlock(&log->flush_mu);
    log_free(log);
}

/* ------------------------------------------------------------ append */

static bool should_roll(const sm_log_t *log, const sm_segment_t *seg, size_t len,
                        int64_t noffsets, int64_t now_ms)
{
    if (seg->size == 0)
        return false;
    if (seg->size + (int64_t)len > log->cfg.segment_bytes)
        return true;
    if (sm_index_full(&seg->oidx) || sm_index_full(&seg->tidx))
        return true;
    if (seg->roll_base_ms >= 0 && now_ms - seg->roll_base_ms > log->cfg.segment_ms)
        return true;
    return log->end_offset + noffsets - 1 - seg->base_offset > INT32_MAX;
}

/* Seal the active segment and start a new one at the log end. Under mu. */
static sm_err_t roll(sm_log_t *log)
{
    sm_segment_t *old = sm_log_active(log), *seg;
    sm_err_t err = sm_segment_seal(old);
    if (!err)
        err = sm_segment_create(log->dir, log->end_offset, log->cfg.segment_index_bytes, &seg);
    if (err) {
        SM_ERROR("storage", "%s: roll at offset %" PRId64 " failed: %s", log->name,
                 log->end_offset, sm_err_str(err));
        return err;
    }
    sm_log_seg_push(log, seg);
    SM_DEBUG("storage", "%s: rolled segment at offset %" PRId64 " (previous %" PRId64
             " bytes)", log->name, log->end_offset, old->size);
    return SM_OK;
}

/* Header of a batch already checked by check_framing(). */
static void batch_at(const uint8_t *p, size_t len, sm_batch_info_t *b)
{
    sm_err_t err = sm_batch_header_parse(p, len, b);
    SM_ASSERT(err == SM_OK);
}

/* Walk the batches' framing; the caller validated them but the log must
 * never write something it cannot read back. */
static sm_err_t check_framing(const uint8_t *p, size_t len, int64_t *noffsets, int64_t *nrecords)
{
    size_t pos = 0;
    *noffsets = 0;
    *nrecords = 0;
    if (len == 0 || len > INT32_MAX)
        return len ? SM_ERR_TOO_LARGE : SM_ERR_INVALID;
    while (pos < len) {
        sm_batch_info_t b;
        if (sm_batch_header_parse(p + pos, len - pos, &b) != SM_OK ||
            b.batch_length < SM_BATCH_HEADER_SIZE - SM_BATCH_LOG_OVERHEAD ||
            sm_batch_total_size(&b) > (int64_t)(len - pos) || b.last_offset_delta < 0)
            return SM_ERR_INVALID;
        *noffsets += (int64_t)b.last_offset_delta + 1;
        *nrecords += b.record_count;
        pos += (size_t)sm_batch_total_size(&b);
    }
    return SM_OK;
}

sm_err_t sm_log_append(sm_log_t *log, uint8_t *batches, size_t len, int32_t leader_epoch,
                       int64_t now_ms, sm_append_info_t *out)
{
    int64_t noffsets, nrecords;
    sm_err_t err = check_framing(batches, len, &noffsets, &nrecords);
    if (err)
        return err;
    if ((err = mark_dirty(log)))
        return err;
    /* Patches that need no log state happen before taking the lock; the
     * LogAppendTime one recomputes a CRC. */
    bool lat;
    pthread_mutex_lock(&log->mu);
    lat = log->cfg.log_append_time;
    pthread_mutex_unlock(&log->mu);
    for (size_t pos = 0; pos < len;) {
        sm_batch_info_t b;
        batch_at(batches + pos, len - pos, &b);
        sm_batch_set_leader_epoch(batches + pos, leader_epoch);
        if (lat)
            sm_batch_set_log_append_time(batches + pos, now_ms);
        pos += (size_t)sm_batch_total_size(&b);
    }

    pthread_mutex_lock(&log->mu);
    if (log->closed) {
        pthread_mutex_unlock(&log->mu);
        return SM_ERR_CLOSED;
    }
    sm_segment_t *seg = sm_log_active(log);
    if (should_roll(log, seg, len, noffsets, now_ms)) {
        if ((err = roll(log)))
            goto unlock;
        seg = sm_log_active(log);
    }
    int64_t base = log->end_offset, next = base;
    for (size_t pos = 0; pos < len;) {
        sm_batch_info_t b;
        batch_at(batches + pos, len - pos, &b);
        sm_batch_set_base_offset(batches + pos, next);
        next += (int64_t)b.last_offset_delta + 1;
        pos += (size_t)sm_batch_total_size(&b);
    }
    if ((err = sm_file_pwrite(seg->fd, batches, len, seg->size))) {
        /* Cut off whatever part landed so the file stays whole batches. */
        if (sm_file_truncate(seg->fd, seg->size) != SM_OK)
            SM_ERROR("storage", "%s: %s.log may hold a partial batch after a failed write",
                     log->name, seg->path);
        SM_ERROR("storage", "%s: append at offset %" PRId64 " failed: %s", log->name, base,
                 sm_err_str(err));
        goto unlock;
    }
    if (seg->roll_base_ms < 0) {
        sm_batch_info_t b;
        batch_at(batches, len, &b);
        seg->roll_base_ms = b.max_timestamp >= 0 ? b.max_timestamp : now_ms;
    }
    for (size_t pos = 0; pos < len;) {
        sm_batch_info_t b;
        batch_at(batches + pos, len - pos, &b);
        if ((err = sm_segment_note_batch(seg, &b, seg->size + (int64_t)pos,
                                         log->cfg.index_interval_bytes)))
            SM_WARN("storage", "%s: index update failed at offset %" PRId64 ": %s", log->name,
                    b.base_offset, sm_err_str(err));
        pos += (size_t)sm_batch_total_size(&b);
    }
    err = SM_OK; /* the data is written; a lost index entry only slows reads */
    seg->size += (int64_t)len;
    seg->end_offset = next;
    __atomic_store_n(&log->end_offset, next, __ATOMIC_RELEASE);
    int64_t unflushed = __atomic_add_fetch(&log->unflushed, nrecords, __ATOMIC_RELAXED);
    bool need_flush = unflushed >= log->cfg.flush_messages;
    if (out) {
        out->base_offset = base;
        out->last_offset = next - 1;
        out->log_append_time = lat ? now_ms : -1;
        out->log_start_offset = log->start_offset;
        out->records = (int32_t)nrecords;
    }
    pthread_mutex_unlock(&log->mu);
    if (need_flush)
        err = sm_log_flush(log);
    return err;
unlock:
    pthread_mutex_unlock(&log->mu);
    return err;
}

/* ------------------------------------------------------------ read */

sm_err_t sm_log_read(sm_log_t *log, int64_t offset, int64_t max_offset, int32_t max_bytes,
                     bool min_one, sm_log_slice_t *out)
{
    memset(out, 0, sizeof *out);
    out->fd = -1;
    int64_t after_base = INT64_MIN; /* retry in the segment after this base */
    for (;;) {
        pthread_mutex_lock(&log->mu);
        if (offset < log->start_offset || offset > log->end_offset) {
            pthread_mutex_unlock(&log->mu);
            return SM_ERR_RANGE;
        }
        if (offset == log->end_offset) {
            pthread_mutex_unlock(&log->mu);
            return SM_OK;
        }
        int i = sm_log_seg_find(log, offset);
        while (i < log->nsegs && log->segs[i]->base_offset <= after_base)
            i++;
        if (i == log->nsegs) {
            pthread_mutex_unlock(&log->mu);
            return SM_OK;
        }
        sm_segment_t *seg = sm_segment_keep(log->segs[i]);
        int64_t size = seg->size;
        sm_index_snap_t snap;
        sm_index_snapshot(&seg->oidx, &snap);
        pthread_mutex_unlock(&log->mu);

        sm_seg_scan_t sc;
        sm_batch_info_t b;
        int64_t pos;
        sm_err_t err = sm_segment_locate(seg->fd, seg->base_offset, size, &snap, offset, &sc, &b,
                                         &pos);
        if (err == SM_ERR_NOT_FOUND) {
            /* offset lies past this segment's data (a gap): next segment */
            after_base = seg->base_offset;
            sm_segment_release(seg);
            continue;
        }
        if (err) {
            SM_ERROR("storage", "%s: reading %s.log at offset %" PRId64 ": %s", log->name,
                     seg->path, offset, sm_err_str(err));
            sm_segment_release(seg);
            return err;
        }
        int64_t total = sm_batch_total_size(&b);
        if (sm_batch_last_offset(&b) >= max_offset || (total > max_bytes && !min_one)) {
            sm_segment_release(seg);
            return SM_OK;
        }
        int64_t len = total, npos;
        while (sm_seg_scan_next(&sc, &b, &npos) == SM_OK) {
            if (sm_batch_last_offset(&b) >= max_offset ||
                len + sm_batch_total_size(&b) > max_bytes)
                break;
            len += sm_batch_total_size(&b);
        }
        out->fd = seg->fd;
        out->file_pos = pos;
        out->len = (int32_t)len;
        out->ref = &seg->ref;
        return SM_OK;
    }
}

/* ------------------------------------------------------------ queries */

int64_t sm_log_start_offset(sm_log_t *log)
{
    return __atomic_load_n(&log->start_offset, __ATOMIC_ACQUIRE);
}

int64_t sm_log_end_offset(sm_log_t *log)
{
    return __atomic_load_n(&log->end_offset, __ATOMIC_ACQUIRE);
}

int64_t sm_log_size_bytes(sm_log_t *log)
{
    pthread_mutex_lock(&log->mu);
    int64_t total = 0;
    for (int i = 0; i < log->nsegs; i++)
        total += log->segs[i]->size;
    pthread_mutex_unlock(&log->mu);
    return total;
}

int sm_log_segment_count(sm_log_t *log)
{
    pthread_mutex_lock(&log->mu);
    int n = log->nsegs;
    pthread_mutex_unlock(&log->mu);
    return n;
}

void sm_log_set_config(sm_log_t *log, const sm_log_config_t *cfg)
{
    sm_log_config_t c = *cfg;
    config_sanitize(&c);
    pthread_mutex_lock(&log->mu);
    log->cfg = c;
    pthread_mutex_unlock(&log->mu);
}

/* ------------------------------------------------------------ flush */

int64_t sm_log_unflushed_messages(sm_log_t *log)
{
    return __atomic_load_n(&log->unflushed, __ATOMIC_RELAXED);
}

bool sm_log_flush_due(sm_log_t *log, int64_t now_ms)
{
    pthread_mutex_lock(&log->mu);
    bool due = log->unflushed > 0 && log->cfg.flush_ms != INT64_MAX &&
               now_ms - log->last_flush_ms >= log->cfg.flush_ms;
    /* A sealed segment not yet synced: Kafka flushes on roll. */
    if (log->recovery_point < sm_log_active(log)->base_offset)
        due = true;
    pthread_mutex_unlock(&log->mu);
    return due;
}

sm_err_t sm_log_flush(sm_log_t *log)
{
    sm_err_t err = SM_OK;
    pthread_mutex_lock(&log->flush_mu);
    pthread_mutex_lock(&log->mu);
    int64_t target = log->end_offset, unflushed = log->unflushed;
    uint64_t gen = log->trunc_gen;
    if (target <= log->recovery_point && unflushed == 0) {
        pthread_mutex_unlock(&log->mu);
        pthread_mutex_unlock(&log->flush_mu);
        return SM_OK;
    }
    /* From the segment holding the last durable offset: when the recovery
     * point sits exactly at a roll, the sealed segment's index files were
     * written after its data was synced and still need their fsync. */
    int from = sm_log_seg_find(log, SM_MAX(log->recovery_point - 1, 0)), n = log->nsegs - from;
    sm_segment_t **segs = sm_xcalloc((size_t)n, sizeof *segs);
    for (int i = 0; i < n; i++) {
        segs[i] = sm_segment_keep(log->segs[from + i]);
        /* pending entries go to the file now, under mu (appenders add more) */
        if (!err)
            err = sm_index_write_pending(&segs[i]->oidx);
        if (!err)
            err = sm_index_write_pending(&segs[i]->tidx);
    }
    pthread_mutex_unlock(&log->mu);

    /* The active segment's indexes need no fsync: recovery rescans the
     * segment holding the recovery point and rebuilds them. A sealed
     * segment's indexes are trusted once the recovery point passes it. */
    for (int i = 0; i < n && !err; i++) {
        err = sm_segment_sync_log(segs[i]);
        if (!err && i < n - 1)
            err = sm_index_sync(&segs[i]->oidx);
        if (!err && i < n - 1)
            err = sm_index_sync(&segs[i]->tidx);
    }
    for (int i = 0; i < n; i++)
        sm_segment_release(segs[i]);
    free(segs);
    if (err) {
        SM_ERROR("storage", "%s: flush failed: %s", log->name, sm_err_str(err));
        pthread_mutex_unlock(&log->flush_mu);
        return err;
    }

    pthread_mutex_lock(&log->mu);
    if (gen == log->trunc_gen && target > log->recovery_point)
        log->recovery_point = target;
    int64_t left = log->unflushed - unflushed;
    log->unflushed = left > 0 ? left : 0;
    log->last_flush_ms = sm_now_wall_ms();
    int64_t start = log->start_offset, rp = log->recovery_point;
    /* Recovery works a segment at a time, so the state file only needs a
     * new recovery point when it enters another segment: most flushes
     * (acks=all, flush.messages) cost one fdatasync and no state write. */
    bool persist = log->state_clean || log->segs[sm_log_seg_find(log, rp)]->base_offset !=
                                           log->segs[sm_log_seg_find(log, log->state_rp)]->base_offset;
    pthread_mutex_unlock(&log->mu);
    if (persist) {
        err = sm_log_state_write(log, start, rp, false);
        if (!err)
            __atomic_store_n(&log->state_clean, false, __ATOMIC_RELEASE);
    }
    pthread_mutex_unlock(&log->flush_mu);
    return err;
}
