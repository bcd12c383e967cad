/*
 * cleaner.c - log compaction of one partition log (see cleaner.h and
 * docs/STORAGE.md, "Compaction").
 *
 * A cleaning pass, as Kafka's Cleaner.doClean:
 *  1. Window: the dirty part starts at the cleaner checkpoint and ends at
 *     the first uncleanable offset: the caller's bound (last stable offset,
 *     <= high watermark), the active segment, the first segment younger than
 *     min.compaction.lag.ms. Segments are snapshotted (referenced) under mu.
 *  2. Offset map over the dirty part: key -> latest offset, skipping control
 *     batches and aborted transactions' batches (an aborted value must not
 *     hide the committed one before it). When the map fills, the pass cleans
 *     only up to the last offset it holds (end = latest + 1).
 *  3. Every segment from the log start with a base below end is rewritten,
 *     in groups whose total size fits one segment, keeping a record when it
 *     is the latest of its key (or past end), dropping keyless records,
 *     aborted data, tombstones and markers whose delete horizon passed
 *     (KIP-534: the first cleaning that keeps a tombstone or a marker of a
 *     transaction with no data left stamps its batch with attribute bit 6
 *     and baseTimestamp = now + delete.retention.ms; a later cleaning after
 *     that time drops it). A marker is dropped only once no batch of its
 *     transaction remains (tracked across the whole pass, which sees every
 *     batch from the log start in order). The batch ending at an active
 *     producer's last offset is kept, emptied if need be (RETAIN_EMPTY).
 *  4. Each group's output is written to <base>.{log,index,timeindex,
 *     txnindex}.cleaned and synced, then swapped in (swap_group): the
 *     .cleaned files are renamed to .swap (.log last: its rename is the
 *     commit point) and the directory synced; under the log's mutexes the
 *     old segments are renamed to .deleted, the .swap files to their final
 *     names, the directory synced and the segment list updated; the
 *     .deleted files are unlinked afterwards. Recovery (log_load.c) deletes
 *     .cleaned files, completes a committed swap, and deletes .deleted
 *     files. So that recovery knows which old segments a swap replaces, a
 *     cleaned segment always ends exactly where the next segment starts: if
 *     its last records were dropped it ends with an empty batch (no records,
 *     no producer) whose last offset is the group's last offset.
 *
 * Readers never see a half-swapped list: the list changes under mu in one
 * step, and slices already handed out pin the old files, which stay
 * readable after the rename and unlink.
 */
#define _GNU_SOURCE
#include "cleaner_internal.h"

#include "compress.h"
#include "crc32c.h"
#include "file.h"
#include "../core/log.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* ------------------------------------------------------------ throttle */

/* Kafka's Throttler: sleep so that bytes / elapsed stays under the rate. */
void sm_cleaner_throttle(throttle_t *t, int64_t n)
{
    t->bytes += n;
    if (t->rate <= 0)
        return;
    for (;;) {
        int64_t due_us = t->start_us + t->bytes * 1000000 / t->rate, now = sm_now_mono_us();
        if (now >= due_us || (t->stop && __atomic_load_n(t->stop, __ATOMIC_RELAXED)))
            return;
        int64_t us = SM_MIN(due_us - now, 100000);
        struct timespec ts = {.tv_sec = us / 1000000, .tv_nsec = (us % 1000000) * 1000};
        nanosleep(&ts, NULL);
    }
}
/* ------------------------------------------------------------ reading */

/* Make [pos, pos + n) readable in the window. */
static sm_err_t reader_fill(reader_t *r, size_t n)
{
    if (r->pos >= r->buf_pos && r->pos + (int64_t)n <= r->buf_pos + (int64_t)r->len)
        return SM_OK;
    size_t want = SM_MAX(n, (size_t)READ_CHUNK);
    if ((int64_t)want > r->size - r->pos)
        want = (size_t)(r->size - r->pos);
    if (want < n)
        return SM_ERR_CORRUPT;
    if (want > r->cap) {
        r->cap = want;
        r->buf = sm_xrealloc(r->buf, r->cap);
    }
    size_t got;
    sm_err_t err = sm_file_pread(r->fd, r->buf, want, r->pos, &got);
    if (err)
        return err;
    if (got < n)
        return SM_ERR_CORRUPT;
    r->buf_pos = r->pos;
    r->len = got;
    *r->bytes_read += (int64_t)got;
    sm_cleaner_throttle(r->th, (int64_t)got);
    return SM_OK;
}

/* Next batch: SM_OK with *p (valid until the next call), SM_ERR_NOT_FOUND
 * at the end. */
sm_err_t sm_cleaner_reader_next(reader_t *r, sm_batch_info_t *b, const uint8_t **p)
{
    if (r->pos >= r->size)
        return SM_ERR_NOT_FOUND;
    sm_err_t err = reader_fill(r, SM_BATCH_HEADER_SIZE);
    if (err)
        return err;
    const uint8_t *h = r->buf + (r->pos - r->buf_pos);
    if (sm_batch_header_parse(h, SM_BATCH_HEADER_SIZE, b) != SM_OK ||
        b->batch_length < SM_BATCH_HEADER_SIZE - SM_BATCH_LOG_OVERHEAD ||
        sm_batch_total_size(b) > SM_SEGMENT_MAX_BATCH_BYTES || b->last_offset_delta < 0)
        return SM_ERR_CORRUPT;
    size_t total = (size_t)sm_batch_total_size(b);
    if ((err = reader_fill(r, total)))
        return err;
    *p = r->buf + (r->pos - r->buf_pos);
    r->pos += (int64_t)total;
    return SM_OK;
}

/* The batch with its records in clear: the batch itself when uncompressed,
 * else a decompressed copy (*owned, free() it) whose header says so. */
sm_err_t sm_cleaner_batch_plain(const uint8_t *p, const sm_batch_info_t *b, uint8_t **owned,
                            const uint8_t **view, size_t *view_len)
{
    size_t total = (size_t)sm_batch_total_size(b);
    int codec = b->attributes & SM_BATCH_ATTR_COMPRESSION_MASK;
    *owned = NULL;
    if (codec == SM_CODEC_NONE || b->record_count == 0) {
        *view = p;
        *view_len = total;
        return SM_OK;
    }
    uint8_t *out;
    size_t outlen;
    sm_err_t err = sm_decompress_headroom((sm_codec_t)codec, p + SM_BATCH_HEADER_SIZE,
                                          total - SM_BATCH_HEADER_SIZE,
                                          SM_SEGMENT_MAX_BATCH_BYTES, SM_BATCH_HEADER_SIZE, &out,
                                          &outlen);
    if (err)
        return err;
    memcpy(out, p, SM_BATCH_HEADER_SIZE);
    put32(out + SM_BATCH_OFF_LENGTH,
          (uint32_t)(outlen + SM_BATCH_HEADER_SIZE - SM_BATCH_LOG_OVERHEAD));
    put16(out + SM_BATCH_OFF_ATTRIBUTES,
          (uint16_t)((uint16_t)b->attributes & ~SM_BATCH_ATTR_COMPRESSION_MASK));
    *owned = out;
    *view = out;
    *view_len = outlen + SM_BATCH_HEADER_SIZE;
    return SM_OK;
}

/* Control record type of a control batch (0 abort, 1 commit), -1 unknown
 * or empty. */
int sm_cleaner_control_type(const uint8_t *view, size_t len)
{
    sm_record_iter_t it;
    sm_record_t rec;
    if (sm_record_iter_init(&it, view, len) != SM_OK || sm_record_iter_next(&it, &rec) != SM_OK ||
        !rec.key || rec.key_len < 4)
        return -1;
    return rd16(rec.key + 2);
}
/* ------------------------------------------------------------ transactions */

static int cmp_first(const void *x, const void *y)
{
    const sm_log_aborted_t *a = x, *b = y;
    return a->first_offset < b->first_offset ? -1 : a->first_offset > b->first_offset;
}

/* Entries with a marker at or past from, sorted by first offset. */
static void txn_init(txn_state_t *t, const sm_log_aborted_t *all, int n, int64_t from)
{
    memset(t, 0, sizeof *t);
    t->aborted = sm_xmalloc((size_t)(n > 0 ? n : 1) * sizeof *t->aborted);
    for (int i = 0; i < n; i++)
        if (all[i].last_offset >= from)
            t->aborted[t->naborted++] = all[i];
    qsort(t->aborted, (size_t)t->naborted, sizeof *t->aborted, cmp_first);
}

static void txn_free(txn_state_t *t)
{
    free(t->aborted);
    free(t->ab);
    free(t->committed);
    free(t->kept);
}

static void txn_consume(txn_state_t *t, int64_t upto)
{
    while (t->next < t->naborted && t->aborted[t->next].first_offset <= upto) {
        const sm_log_aborted_t *a = &t->aborted[t->next++];
        int i = 0;
        while (i < t->nab && t->ab[i].a.pid != a->pid)
            i++;
        if (i == t->nab) {
            if (t->nab == t->ab_cap) {
                t->ab_cap = t->ab_cap ? t->ab_cap * 2 : 8;
                t->ab = sm_xrealloc(t->ab, (size_t)t->ab_cap * sizeof *t->ab);
            }
            t->nab++;
        }
        t->ab[i] = (ongoing_t){.a = *a, .observed = false};
    }
}

static bool set_remove(int64_t *v, int *n, int64_t x)
{
    for (int i = 0; i < *n; i++)
        if (v[i] == x) {
            v[i] = v[--*n];
            return true;
        }
    return false;
}

/* A data batch: true when it belongs to an aborted transaction. */
bool sm_cleaner_txn_on_batch(txn_state_t *t, const sm_batch_info_t *b)
{
    txn_consume(t, sm_batch_last_offset(b));
    if (!(b->attributes & SM_BATCH_ATTR_TRANSACTIONAL))
        return false;
    for (int i = 0; i < t->nab; i++)
        if (t->ab[i].a.pid == b->producer_id) {
            t->ab[i].observed = true;
            return true;
        }
    for (int i = 0; i < t->ncommitted; i++)
        if (t->committed[i] == b->producer_id)
            return false;
    if (t->ncommitted == t->committed_cap) {
        t->committed_cap = t->committed_cap ? t->committed_cap * 2 : 8;
        t->committed = sm_xrealloc(t->committed, (size_t)t->committed_cap * sizeof *t->committed);
    }
    t->committed[t->ncommitted++] = b->producer_id;
    return false;
}

/* A control batch: true when no batch of its transaction is left, so the
 * marker may go once its delete horizon passed. An abort marker whose data
 * was seen keeps its .txnindex entry. */
bool sm_cleaner_txn_on_control(txn_state_t *t, const sm_batch_info_t *b, int type)
{
    txn_consume(t, sm_batch_last_offset(b));
    if (b->record_count == 0)
        return true;
    if (type == 0) {
        for (int i = 0; i < t->nab; i++) {
            if (t->ab[i].a.pid != b->producer_id)
                continue;
            ongoing_t o = t->ab[i];
            t->ab[i] = t->ab[--t->nab];
            if (!o.observed)
                return true;
            if (t->nkept == t->kept_cap) {
                t->kept_cap = t->kept_cap ? t->kept_cap * 2 : 8;
                t->kept = sm_xrealloc(t->kept, (size_t)t->kept_cap * sizeof *t->kept);
            }
            t->kept[t->nkept++] = o.a;
            return false;
        }
        return true;
    }
    if (type == 1)
        return !set_remove(t->committed, &t->ncommitted, b->producer_id);
    return false;
}
/* ------------------------------------------------------------ the pass */

bool sm_cleaner_stopping(const cleaning_t *c)
{
    return c->p->stop && __atomic_load_n(c->p->stop, __ATOMIC_RELAXED);
}

/* Pin the files of a snapshot segment if it is still in the log. */
sm_err_t sm_cleaner_pin_member(sm_log_t *log, sm_segment_t *seg, sm_segfiles_t **f)
{
    pthread_mutex_lock(&log->mu);
    sm_err_t err = SM_ERR_AGAIN;
    if (!log->closed) {
        int i = sm_log_seg_find(log, seg->base_offset);
        if (log->segs[i] == seg)
            err = sm_segment_pin(seg, f);
    }
    pthread_mutex_unlock(&log->mu);
    return err;
}

void sm_cleaner_reader_start(cleaning_t *c, int fd, int64_t size)
{
    c->rd.fd = fd;
    c->rd.pos = 0;
    c->rd.size = size;
    c->rd.len = 0;
    c->rd.buf_pos = 0;
    c->rd.th = &c->th;
    c->rd.bytes_read = &c->r->bytes_read;
}

/* Step 2: the offset map over [first_dirty, first_uncleanable). Sets
 * c->end: where the map stops (after the last offset it holds when it
 * filled up, else after the last batch below first_uncleanable). */
static sm_err_t build_map(cleaning_t *c, int64_t first_dirty, int64_t first_uncleanable)
{
    txn_state_t t;
    txn_init(&t, c->aborted, c->naborted, first_dirty);
    sm_offset_map_clear(c->map);
    int64_t scanned_end = first_dirty;
    bool full = false, done = false;
    sm_err_t err = SM_OK;
    for (int s = 0; s < c->nsegs && !done; s++) {
        int64_t seg_end = s + 1 < c->nsegs ? c->segs[s + 1].base : c->next_base;
        if (seg_end <= first_dirty)
            continue;
        sm_segfiles_t *f;
        if ((err = sm_cleaner_pin_member(c->log, c->segs[s].seg, &f)))
            break;
        sm_cleaner_reader_start(c, f->log_fd, c->segs[s].size);
        sm_batch_info_t b;
        const uint8_t *p;
        while (!done && (err = sm_cleaner_reader_next(&c->rd, &b, &p)) == SM_OK) {
            if (sm_cleaner_stopping(c)) {
                err = SM_ERR_CLOSED;
                break;
            }
            int64_t last = sm_batch_last_offset(&b);
            if (last >= first_uncleanable) {
                done = true;
                break;
            }
            if (last < first_dirty) {
                txn_consume(&t, last);
                continue;
            }
            uint8_t *owned = NULL;
            const uint8_t *view;
            size_t vlen;
            bool control = b.attributes & SM_BATCH_ATTR_CONTROL;
            if (!control && sm_cleaner_txn_on_batch(&t, &b)) {
                scanned_end = last + 1; /* aborted: nothing to map */
                continue;
            }
            if ((err = sm_cleaner_batch_plain(p, &b, &owned, &view, &vlen)))
                break;
            if (control) {
                sm_cleaner_txn_on_control(&t, &b, sm_cleaner_control_type(view, vlen));
            } else {
                sm_record_iter_t it;
                sm_record_t rec;
                if ((err = sm_record_iter_init(&it, view, vlen)) == SM_OK) {
                    while ((err = sm_record_iter_next(&it, &rec)) == SM_OK) {
                        int64_t off = b.base_offset + rec.offset_delta;
                        if (!rec.key || off < first_dirty)
                            continue;
                        if (sm_offset_map_full(c->map)) {
                            full = done = true;
                            break;
                        }
                        sm_offset_map_put(c->map, rec.key, (size_t)rec.key_len, off);
                    }
                    if (err == SM_ERR_NOT_FOUND)
                        err = SM_OK;
                }
            }
            free(owned);
            if (err)
                break;
            if (!full)
                scanned_end = last + 1;
        }
        if (err == SM_ERR_NOT_FOUND) { /* the end of the segment */
            err = SM_OK;
            if (seg_end <= first_uncleanable)
                scanned_end = seg_end; /* a gap at its end belongs to it */
            else
                done = true;
        }
        sm_segfiles_release(f);
        if (err)
            break;
    }
    txn_free(&t);
    if (err) {
        if (err != SM_ERR_CLOSED && err != SM_ERR_AGAIN)
            SM_ERROR("storage", "%s: cleaner: building the offset map failed: %s", c->log->name,
                     sm_err_str(err));
        return err;
    }
    c->r->map_full = full;
    c->r->map_keys = (int64_t)c->map->used;
    c->end = full ? c->map->latest_offset + 1 : scanned_end;
    if (c->end < first_dirty)
        c->end = first_dirty;
    return SM_OK;
}
/* The first uncleanable offset (under mu). */
static int64_t uncleanable(sm_log_t *log, const sm_clean_params_t *p)
{
    int64_t fu = SM_MIN(p->first_uncleanable, sm_log_active(log)->base_offset);
    if (p->min_compaction_lag_ms > 0) {
        for (int i = 0; i < log->nsegs - 1; i++)
            if (log->segs[i]->max_ts > p->now_ms - p->min_compaction_lag_ms) {
                fu = SM_MIN(fu, log->segs[i]->base_offset);
                break;
            }
    }
    return fu;
}

static int64_t clamp_dirty(sm_log_t *log, int64_t first_dirty)
{
    /* a checkpoint outside the log (truncated, deleted records, never
     * cleaned) restarts from the log start, as Kafka does */
    if (first_dirty < log->start_offset || first_dirty > log->end_offset)
        return log->start_offset;
    return first_dirty;
}

sm_err_t sm_log_clean(sm_log_t *log, sm_offset_map_t *map, const sm_clean_params_t *p,
                      sm_clean_result_t *r)
{
    memset(r, 0, sizeof *r);
    r->next_horizon_ms = INT64_MAX;
    if (__atomic_exchange_n(&log->cleaning, true, __ATOMIC_ACQ_REL))
        return SM_ERR_AGAIN;
    cleaning_t c = {.log = log, .p = p, .r = r, .map = map};
    c.th = (throttle_t){.rate = p->io_bytes_per_sec, .start_us = sm_now_mono_us(), .stop = p->stop};
    sm_err_t err = SM_OK;
    int64_t first_dirty, fu;
    pthread_mutex_lock(&log->mu);
    if (log->closed) {
        pthread_mutex_unlock(&log->mu);
        __atomic_store_n(&log->cleaning, false, __ATOMIC_RELEASE);
        return SM_ERR_CLOSED;
    }
    c.index_interval = log->cfg.index_interval_bytes;
    first_dirty = clamp_dirty(log, p->first_dirty);
    fu = uncleanable(log, p);
    c.segs = sm_xcalloc((size_t)log->nsegs, sizeof *c.segs);
    for (int i = 0; i < log->nsegs - 1 && log->segs[i]->base_offset < fu; i++) {
        c.segs[i] = (snap_seg_t){.seg = sm_segment_keep(log->segs[i]),
                                 .base = log->segs[i]->base_offset,
                                 .size = log->segs[i]->size};
        c.nsegs = i + 1;
        c.next_base = log->segs[i + 1]->base_offset;
    }
    pthread_mutex_unlock(&log->mu);
    r->first_dirty = r->end_offset = first_dirty;
    if (c.nsegs == 0 || (first_dirty >= fu && !p->rewrite_clean))
        goto done;
    c.naborted = sm_log_aborted_txns(log, INT64_MIN, INT64_MAX, &c.aborted);
    if (first_dirty < fu) {
        if ((err = build_map(&c, first_dirty, SM_MIN(fu, c.next_base))))
            goto done;
        if (c.end <= first_dirty && !p->rewrite_clean)
            goto done;
    } else { /* only the clean part, for its expired tombstones and markers */
        sm_offset_map_clear(map);
        c.end = first_dirty;
    }
    SM_INFO("storage", "%s: cleaning offsets [%" PRId64 ", %" PRId64 ") with %" PRId64
            " keys mapped%s", log->name, first_dirty, c.end, r->map_keys,
            r->map_full ? " (offset map full)" : "");
    txn_state_t t;
    txn_init(&t, c.aborted, c.naborted, INT64_MIN);
    int64_t max_bytes = SM_MAX(p->segment_bytes, (int64_t)SM_BATCH_HEADER_SIZE);
    for (int i = 0; i < c.nsegs && c.segs[i].base < c.end && !err;) {
        int j = i + 1;
        int64_t size = c.segs[i].size;
        while (j < c.nsegs && c.segs[j].base < c.end && size + c.segs[j].size <= max_bytes &&
               (j + 1 < c.nsegs ? c.segs[j + 1].base : c.next_base) - 1 - c.segs[i].base <=
                   INT32_MAX) {
            size += c.segs[j].size;
            j++;
        }
        err = sm_cleaner_clean_group(&c, &t, i, j);
        i = j;
    }
    txn_free(&t);
    if (!err) {
        r->end_offset = c.end;
        __atomic_store_n(&log->cleaner_offset, c.end, __ATOMIC_RELEASE);
        __atomic_store_n(&log->last_clean_ms, p->now_ms, __ATOMIC_RELEASE);
        if (sm_logdir_cleaner_checkpoint(log) != SM_OK) /* logged; written again next time */
            r->checkpoint_failed = true;
        SM_INFO("storage", "%s: cleaned %d segment(s) into %d: %" PRId64 " bytes read, %" PRId64
                " written, %" PRId64 " of %" PRId64 " records kept", log->name, r->segments_in,
                r->groups, r->bytes_read, r->bytes_written, r->records_kept, r->records_read);
    }
done:
    for (int i = 0; i < c.nsegs; i++)
        sm_segment_release(c.segs[i].seg);
    free(c.segs);
    free(c.aborted);
    free(c.rd.buf);
    __atomic_store_n(&log->cleaning, false, __ATOMIC_RELEASE);
    return err;
}

void sm_log_clean_window(sm_log_t *log, int64_t first_dirty, int64_t first_uncleanable,
                         int64_t min_compaction_lag_ms, int64_t now_ms, sm_clean_window_t *w)
{
    memset(w, 0, sizeof *w);
    w->oldest_dirty_ms = -1;
    sm_clean_params_t p = {.first_uncleanable = first_uncleanable,
                           .min_compaction_lag_ms = min_compaction_lag_ms,
                           .now_ms = now_ms};
    pthread_mutex_lock(&log->mu);
    w->first_dirty = clamp_dirty(log, first_dirty);
    /* Kafka counts whole segments: the first uncleanable segment is the one
     * holding the first uncleanable offset */
    int64_t fu = uncleanable(log, &p);
    w->first_uncleanable = log->segs[sm_log_seg_find(log, fu)]->base_offset;
    for (int i = 0; i < log->nsegs; i++) {
        const sm_segment_t *s = log->segs[i];
        int64_t end = i + 1 < log->nsegs ? log->segs[i + 1]->base_offset : log->end_offset;
        if (end <= w->first_dirty)
            w->clean_bytes += s->size;
        else if (s->base_offset < w->first_uncleanable) {
            w->dirty_bytes += s->size;
            if (w->oldest_dirty_ms < 0)
                w->oldest_dirty_ms = s->max_ts;
        }
    }
    pthread_mutex_unlock(&log->mu);
}

int64_t sm_log_cleaner_offset(sm_log_t *log)
{
    return __atomic_load_n(&log->cleaner_offset, __ATOMIC_ACQUIRE);
}

int64_t sm_log_last_clean_ms(sm_log_t *log)
{
    return __atomic_load_n(&log->last_clean_ms, __ATOMIC_ACQUIRE);
}
