/*
 * log.c - the partition log: open, append, read and close (see log.h for
 * the contract, log_internal.h for the locking, log_flush.c for flushes and
 * group commit, log_load.c for recovery, log_admin.c for
 * truncation/retention/timestamp lookups).
 *
 * Append holds mu while it writes: offsets are assigned, the bytes written
 * with one pwrite, the indexes updated, and only then are the segment size
 * and log end offset published. Readers copy (segment, size, index
 * snapshot) under mu, pin the segment's files, and do their preads
 * outside it, so a reader never sees bytes past a published size and never
 * waits for another reader's I/O.
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

sm_err_t sm_log_state_write(sm_log_t *log, int64_t start, int64_t rp)
{
    char buf[160];
    int n = snprintf(buf, sizeof buf,
                     "samsa-log-state 2\nlog_start_offset %" PRId64 "\nrecovery_point %" PRId64
                     "\n",
                     start, rp);
    sm_err_t err = sm_file_write_atomic(log->dir, SM_LOG_STATE_FILE, buf, (size_t)n);
    if (!err)
        log->state_rp = rp;
    if (err)
        SM_ERROR("storage", "%s: writing %s/%s failed: %s", log->name, log->dir,
                 SM_LOG_STATE_FILE, sm_err_str(err));
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
    log->high_watermark = -1;
    log->cleaner_offset = -1;
    log->last_clean_ms = -1;
    sm_log_hint_t hint;
    sm_logdir_attach(log, &hint);
    if (hint.have_cleaner)
        log->cleaner_offset = hint.cleaner;
    sm_log_epochs_load(log);
    if ((err = sm_log_load(log, &hint))) {
        SM_ERROR("storage", "%s: cannot open log in %s: %s", log->name, dir, sm_err_str(err));
        for (int i = 0; i < log->nsegs; i++)
            sm_segment_release(log->segs[i]);
        log->nsegs = 0;
        goto fail;
    }
    /* after the load: it reads the .txnindex of every segment found and
     * keeps the entries below the log end */
    sm_log_aborted_load(log);
    sm_log_epochs_truncate_end(log, log->end_offset);
    sm_log_epochs_truncate_start(log, log->start_offset);
    sm_log_write_behind_init(log);
    if (hint.have_hw)
        log->high_watermark = SM_MIN(hint.hw, log->end_offset);
    __atomic_store_n(&log->loaded, true, __ATOMIC_RELEASE);
    *out = log;
    return SM_OK;
fail:
    sm_logdir_detach(log, false, 0, 0, 0, false);
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

static void log_free(sm_log_t *log)
{
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
}

void sm_log_close(sm_log_t *log)
{
    if (!log)
        return;
    sm_err_t err = SM_OK;
    /* Without a log dir nobody syncs the file system for us: flush. */
    if (!log->ldir)
        err = sm_log_flush(log);
    pthread_mutex_lock(&log->flush_mu);
    pthread_mutex_lock(&log->mu);
    log->closed = true;
    int64_t start = log->start_offset, end = log->end_offset, rp = log->recovery_point;
    bool dirty = log->dirty;
    if (!err && __atomic_load_n(&log->failed, __ATOMIC_ACQUIRE))
        err = log->failed;
    /* Pending index entries go to the files; the data and the indexes are
     * synced by the log dir's syncfs before it writes the clean marker. */
    if (!err && dirty)
        err = sm_segment_write_indexes(sm_log_active(log));
    pthread_mutex_unlock(&log->mu);
    if (!err)
        err = sm_log_epochs_persist(log, !log->ldir);
    if (err)
        SM_WARN("storage", "%s: closed without a clean-shutdown mark (%s); next open recovers",
                log->name, sm_err_str(err));
    pthread_mutex_unlock(&log->flush_mu);
    sm_logdir_detach(log, err == SM_OK, start, rp, end, false);
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

static __thread bool t_defer_flush;

void sm_log_defer_flush(bool defer)
{
    t_defer_flush = defer;
}

/* The append itself. replica: the batches carry their offsets and epochs
 * from the leader (kept as they are, the first must start at the log end);
 * else they are the leader's own, patched with leader_epoch and offsets. */
static sm_err_t log_append(sm_log_t *log, uint8_t *batches, size_t len, int32_t leader_epoch,
                           int64_t now_ms, bool replica, sm_append_info_t *out)
{
    int64_t noffsets, nrecords;
    sm_err_t err = check_framing(batches, len, &noffsets, &nrecords);
    if (err)
        return err;
    if ((err = __atomic_load_n(&log->failed, __ATOMIC_ACQUIRE)))
        return err;
    /* Patches that need no log state happen before taking the lock; the
     * LogAppendTime one recomputes a CRC. */
    bool lat;
    pthread_mutex_lock(&log->mu);
    lat = log->cfg.log_append_time && !replica;
    pthread_mutex_unlock(&log->mu);
    for (size_t pos = 0; !replica && pos < len;) {
        sm_batch_info_t b;
        batch_at(batches + pos, len - pos, &b);
        sm_batch_set_leader_epoch(batches + pos, leader_epoch);
        if (lat)
            sm_batch_set_log_append_time(batches + pos, now_ms);
        pos += (size_t)sm_batch_total_size(&b);
    }

    pthread_mutex_lock(&log->mu);
    if (log->closed || log->failed) {
        err = log->closed ? SM_ERR_CLOSED : log->failed;
        pthread_mutex_unlock(&log->mu);
        return err;
    }
    if (replica) {
        /* at or after the log end, each batch after the previous one (a
         * compacted leader's log has gaps), epochs never going down */
        int64_t expect = log->end_offset;
        int32_t last_epoch = log->nepochs ? log->epochs[log->nepochs - 1].epoch : -1;
        for (size_t pos = 0; pos < len;) {
            sm_batch_info_t b;
            batch_at(batches + pos, len - pos, &b);
            if (b.base_offset < expect || b.leader_epoch < last_epoch) {
                pthread_mutex_unlock(&log->mu);
                return SM_ERR_RANGE;
            }
            expect = b.base_offset + b.last_offset_delta + 1;
            last_epoch = b.leader_epoch;
            pos += (size_t)sm_batch_total_size(&b);
        }
        noffsets = expect - log->end_offset; /* the span, gaps included */
    }
    sm_segment_t *seg = sm_log_active(log);
    if (should_roll(log, seg, len, noffsets, now_ms)) {
        if ((err = roll(log)))
            goto unlock;
        seg = sm_log_active(log);
    }
    log->dirty = true;
    sm_segfiles_t *f;
    if ((err = sm_segment_pin(seg, &f))) {
        SM_ERROR("storage", "%s: cannot open %s.log for append: %s", log->name, seg->path,
                 sm_err_str(err));
        goto unlock;
    }
    int64_t base = log->end_offset, next = base;
    for (size_t pos = 0; pos < len;) { /* a replica's batches already carry these */
        sm_batch_info_t b;
        batch_at(batches + pos, len - pos, &b);
        if (!replica)
            sm_batch_set_base_offset(batches + pos, next);
        else if (pos == 0)
            base = b.base_offset;
        next = (replica ? b.base_offset : next) + (int64_t)b.last_offset_delta + 1;
        pos += (size_t)sm_batch_total_size(&b);
    }
    if ((err = sm_file_pwrite(f->log_fd, batches, len, seg->size))) {
        /* Cut off whatever part landed so the file stays whole batches. If
         * even that fails, the bytes past seg->size are never read (readers
         * stop at the published size), the next append overwrites them and
         * recovery would cut them. */
        if (sm_file_truncate(f->log_fd, seg->size) != SM_OK)
            SM_WARN("storage", "%s: %s.log may hold a partial batch after a failed write",
                    log->name, seg->path);
        SM_ERROR("storage", "%s: append at offset %" PRId64 " failed: %s", log->name, base,
                 sm_err_str(err));
        sm_segfiles_release(f);
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
        if ((err = sm_segment_note_batch(seg, f, &b, seg->size + (int64_t)pos,
                                         log->cfg.index_interval_bytes)))
            SM_WARN("storage", "%s: index update failed at offset %" PRId64 ": %s", log->name,
                    b.base_offset, sm_err_str(err));
        pos += (size_t)sm_batch_total_size(&b);
    }
    sm_segfiles_release(f);
    err = SM_OK; /* the data is written; a lost index entry only slows reads */
    if (replica) {
        for (size_t pos = 0; pos < len;) {
            sm_batch_info_t b;
            batch_at(batches + pos, len - pos, &b);
            if (b.leader_epoch >= 0)
                sm_log_epochs_assign(log, b.leader_epoch, b.base_offset);
            pos += (size_t)sm_batch_total_size(&b);
        }
    } else if (leader_epoch >= 0) {
        sm_log_epochs_assign(log, leader_epoch, base);
    }
    seg->size += (int64_t)len;
    seg->end_offset = next;
    __atomic_store_n(&log->end_offset, next, __ATOMIC_RELEASE);
    int64_t unflushed = __atomic_add_fetch(&log->unflushed, nrecords, __ATOMIC_RELAXED);
    bool need_flush = !t_defer_flush && unflushed >= log->cfg.flush_messages;
    if (out) {
        out->base_offset = base;
        out->last_offset = next - 1;
        out->log_append_time = lat ? now_ms : -1;
        out->log_start_offset = log->start_offset;
        out->records = (int32_t)nrecords;
        out->write_behind_due = sm_log_write_behind_check(log, seg);
    }
    pthread_mutex_unlock(&log->mu);
    if (need_flush)
        err = sm_log_flush(log);
    return err;
unlock:
    pthread_mutex_unlock(&log->mu);
    return err;
}

sm_err_t sm_log_append(sm_log_t *log, uint8_t *batches, size_t len, int32_t leader_epoch,
                       int64_t now_ms, sm_append_info_t *out)
{
    return log_append(log, batches, len, leader_epoch, now_ms, false, out);
}

sm_err_t sm_log_append_replica(sm_log_t *log, uint8_t *batches, size_t len, int64_t now_ms,
                               sm_append_info_t *out)
{
    return log_append(log, batches, len, -1, now_ms, true, out);
}

int64_t sm_log_high_watermark(sm_log_t *log)
{
    return __atomic_load_n(&log->high_watermark, __ATOMIC_ACQUIRE);
}

void sm_log_set_high_watermark(sm_log_t *log, int64_t hw)
{
    __atomic_store_n(&log->high_watermark, hw, __ATOMIC_RELEASE);
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
        sm_segment_t *seg = log->segs[i];
        sm_segfiles_t *f;
        sm_err_t err = sm_segment_pin(seg, &f);
        if (err) {
            SM_ERROR("storage", "%s: cannot open %s.log to read: %s", log->name, seg->path,
                     sm_err_str(err));
            pthread_mutex_unlock(&log->mu);
            return err;
        }
        int64_t size = seg->size, base = seg->base_offset;
        sm_index_snap_t snap;
        sm_index_snapshot(&seg->oidx, f->oidx_fd, &snap);
        pthread_mutex_unlock(&log->mu);

        sm_seg_scan_t sc;
        sm_batch_info_t b;
        int64_t pos;
        err = sm_segment_locate(f->log_fd, base, size, &snap, offset, &sc, &b, &pos);
        if (err == SM_ERR_NOT_FOUND) {
            /* offset lies past this segment's data (a gap): next segment */
            after_base = base;
            sm_segfiles_release(f);
            continue;
        }
        if (err) {
            SM_ERROR("storage", "%s: reading segment %" PRId64 " at offset %" PRId64 ": %s",
                     log->name, base, offset, sm_err_str(err));
            sm_segfiles_release(f);
            return err;
        }
        int64_t total = sm_batch_total_size(&b);
        if (sm_batch_last_offset(&b) >= max_offset || (total > max_bytes && !min_one)) {
            sm_segfiles_release(f);
            return SM_OK;
        }
        int64_t len = total, npos, last = sm_batch_last_offset(&b);
        while (sm_seg_scan_next(&sc, &b, &npos) == SM_OK) {
            if (sm_batch_last_offset(&b) >= max_offset ||
                len + sm_batch_total_size(&b) > max_bytes)
                break;
            len += sm_batch_total_size(&b);
            last = sm_batch_last_offset(&b);
        }
        out->next_offset = last + 1;
        out->fd = f->log_fd;
        out->file_pos = pos;
        out->len = (int32_t)len;
        out->ref = &f->ref; /* the pin moves to the slice */
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

void sm_log_set_flush_histo(sm_log_t *log, sm_histo_t *h) { log->flush_histo = h; }

void sm_log_set_config(sm_log_t *log, const sm_log_config_t *cfg)
{
    sm_log_config_t c = *cfg;
    config_sanitize(&c);
    pthread_mutex_lock(&log->mu);
    log->cfg = c;
    pthread_mutex_unlock(&log->mu);
}

