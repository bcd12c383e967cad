/*
 * cleaner_group.c - one group of the log cleaner's pass (see cleaner.c):
 * adjacent old segments rewritten into one cleaned segment (the record and
 * batch retention rules, re-encoding, the indexes) and swapped in
 * crash-safely (.cleaned -> .swap -> final names; docs/STORAGE.md).
 * Cleaner thread; the log's mutexes are held only for the swap.
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

static const char *const suffixes[F_COUNT] = {".log", ".index", ".timeindex", ".txnindex"};

/* ---- the output of one group */

typedef struct out_seg {
    int fd[F_COUNT];
    char *path[F_COUNT]; /* "<dir>/<base><suffix>" (no .cleaned) */
    int64_t base, pos, next_offset;
    int64_t max_ts, max_ts_offset, bytes_since_index;
    int64_t last_okey, last_tkey;
    int32_t last_epoch; /* leader epoch of the last batch read (for the end batch) */
    char *dir;          /* the log's directory when the group started (owned) */
    sm_wbuf_t data, oidx, tidx, txn;
} out_seg_t;

static void out_init(out_seg_t *o, const char *dir, int64_t base)
{
    memset(o, 0, sizeof *o);
    for (int i = 0; i < F_COUNT; i++) {
        o->fd[i] = -1;
        o->path[i] = sm_xasprintf("%s/%020" PRId64 "%s", dir, base, suffixes[i]);
    }
    o->base = base;
    o->next_offset = base;
    o->max_ts = -1;
    o->max_ts_offset = base;
    o->last_okey = -1;
    o->last_tkey = INT64_MIN;
    o->last_epoch = -1;
    sm_wbuf_init(&o->data);
    sm_wbuf_init(&o->oidx);
    sm_wbuf_init(&o->tidx);
    sm_wbuf_init(&o->txn);
}

static char *with(const char *path, const char *suffix)
{
    return sm_xasprintf("%s%s", path, suffix);
}

static void out_close(out_seg_t *o)
{
    for (int i = 0; i < F_COUNT; i++)
        if (o->fd[i] >= 0) {
            sm_file_close(o->fd[i]);
            o->fd[i] = -1;
        }
}

/* Drop the output (before the commit point). */
static void out_discard(out_seg_t *o)
{
    out_close(o);
    for (int i = 0; i < F_COUNT; i++) {
        char *p = with(o->path[i], ".cleaned");
        (void)sm_file_unlink(p);
        free(p);
        p = with(o->path[i], ".swap");
        (void)sm_file_unlink(p);
        free(p);
    }
}

static void out_free(out_seg_t *o)
{
    out_close(o);
    for (int i = 0; i < F_COUNT; i++)
        free(o->path[i]);
    free(o->dir);
    sm_wbuf_free(&o->data);
    sm_wbuf_free(&o->oidx);
    sm_wbuf_free(&o->tidx);
    sm_wbuf_free(&o->txn);
}

static sm_err_t out_open(out_seg_t *o)
{
    for (int i = 0; i < F_COUNT; i++) {
        char *p = with(o->path[i], ".cleaned");
        sm_err_t err = sm_file_open(p, O_RDWR | O_CREAT | O_TRUNC, &o->fd[i]);
        free(p);
        if (err)
            return err;
    }
    return SM_OK;
}

static sm_err_t out_flush_data(cleaning_t *c, out_seg_t *o)
{
    if (o->data.len == 0)
        return SM_OK;
    sm_err_t err = sm_file_pwrite(o->fd[F_LOG], o->data.mem, o->data.len, o->pos - (int64_t)o->data.len);
    c->r->bytes_written += (int64_t)o->data.len;
    sm_cleaner_throttle(&c->th, (int64_t)o->data.len);
    sm_wbuf_reset(&o->data);
    return err;
}

static void index_entry(sm_wbuf_t *w, bool time, int64_t key, int32_t value)
{
    if (time)
        sm_wbuf_i64(w, key);
    else
        sm_wbuf_i32(w, (int32_t)key);
    sm_wbuf_i32(w, value);
}

/* Append one batch (whole, CRC set) to the output, indexing it as
 * sm_segment_note_batch does. */
static sm_err_t out_batch(cleaning_t *c, out_seg_t *o, const uint8_t *p, size_t len)
{
    sm_batch_info_t b;
    sm_err_t err = sm_batch_header_parse(p, len, &b);
    SM_ASSERT(err == SM_OK && (size_t)sm_batch_total_size(&b) == len);
    int64_t last = sm_batch_last_offset(&b);
    if (o->pos + (int64_t)len > INT32_MAX || last - o->base > INT32_MAX)
        return SM_ERR_TOO_LARGE;
    if (b.max_timestamp > o->max_ts) {
        o->max_ts = b.max_timestamp;
        o->max_ts_offset = last;
    }
    if (o->bytes_since_index > c->index_interval) {
        if (last - o->base > o->last_okey) {
            index_entry(&o->oidx, false, last - o->base, (int32_t)o->pos);
            o->last_okey = last - o->base;
        }
        if (o->max_ts >= 0 && o->max_ts > o->last_tkey) {
            index_entry(&o->tidx, true, o->max_ts, (int32_t)(o->max_ts_offset - o->base));
            o->last_tkey = o->max_ts;
        }
        o->bytes_since_index = 0;
    }
    o->bytes_since_index += (int64_t)len;
    sm_wbuf_bytes(&o->data, p, len);
    o->pos += (int64_t)len;
    o->next_offset = last + 1;
    c->r->records_kept += b.record_count;
    if (o->data.len >= WRITE_CHUNK)
        return out_flush_data(c, o);
    return SM_OK;
}

/* An empty batch (Kafka's writeEmptyHeader): no records, the header of b
 * (offsets, producer, attributes but the codec) kept. */
static void empty_batch(uint8_t *h, const sm_batch_info_t *b, int16_t attributes, int64_t base_ts,
                        int64_t max_ts)
{
    memset(h, 0, SM_BATCH_HEADER_SIZE);
    put64(h + SM_BATCH_OFF_BASE_OFFSET, (uint64_t)b->base_offset);
    put32(h + SM_BATCH_OFF_LENGTH, SM_BATCH_HEADER_SIZE - SM_BATCH_LOG_OVERHEAD);
    put32(h + SM_BATCH_OFF_LEADER_EPOCH, (uint32_t)b->leader_epoch);
    h[SM_BATCH_OFF_MAGIC] = SM_BATCH_MAGIC;
    put16(h + SM_BATCH_OFF_ATTRIBUTES,
          (uint16_t)((uint16_t)attributes & ~SM_BATCH_ATTR_COMPRESSION_MASK));
    put32(h + SM_BATCH_OFF_LAST_OFFSET_DELTA, (uint32_t)b->last_offset_delta);
    put64(h + SM_BATCH_OFF_BASE_TIMESTAMP, (uint64_t)base_ts);
    put64(h + SM_BATCH_OFF_MAX_TIMESTAMP, (uint64_t)max_ts);
    put64(h + 43, (uint64_t)b->producer_id);
    put16(h + 51, (uint16_t)b->producer_epoch);
    put32(h + 53, (uint32_t)b->base_sequence);
    put32(h + SM_BATCH_OFF_RECORD_COUNT, 0);
    put32(h + SM_BATCH_OFF_CRC,
          sm_crc32c(0, h + SM_BATCH_OFF_ATTRIBUTES, SM_BATCH_HEADER_SIZE - SM_BATCH_OFF_ATTRIBUTES));
}

static bool producer_last(const sm_clean_params_t *p, int64_t pid, int64_t last_offset)
{
    int lo = 0, hi = p->nproducers;
    while (lo < hi) {
        int mid = lo + (hi - lo) / 2;
        if (p->producers[mid].pid < pid)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo < p->nproducers && p->producers[lo].pid == pid &&
           p->producers[lo].last_offset == last_offset;
}

static void note_horizon(cleaning_t *c, int64_t h)
{
    if (h < c->r->next_horizon_ms)
        c->r->next_horizon_ms = h;
}

/* Step 3 for one batch. */
static sm_err_t clean_batch(cleaning_t *c, txn_state_t *t, out_seg_t *o, const uint8_t *p,
                            const sm_batch_info_t *b, sm_wbuf_t *recs, uint8_t **keep,
                            size_t *keep_cap)
{
    const sm_clean_params_t *prm = c->p;
    bool control = b->attributes & SM_BATCH_ATTR_CONTROL;
    bool has_h = b->attributes & SM_BATCH_ATTR_DELETE_HORIZON;
    int64_t horizon = has_h ? b->base_timestamp : -1;
    int64_t last = sm_batch_last_offset(b);
    uint8_t *owned = NULL;
    const uint8_t *view = p;
    size_t vlen = (size_t)sm_batch_total_size(b);
    sm_err_t err = sm_cleaner_batch_plain(p, b, &owned, &view, &vlen);
    if (err)
        goto out;
    bool can_discard, discard_records;
    if (control) {
        can_discard = sm_cleaner_txn_on_control(t, b, sm_cleaner_control_type(view, vlen));
        discard_records = can_discard && has_h && horizon <= prm->now_ms;
    } else {
        can_discard = sm_cleaner_txn_on_batch(t, b);
        discard_records = can_discard;
    }
    c->r->records_read += b->record_count;
    /* which records stay */
    if ((size_t)b->record_count > *keep_cap) {
        *keep_cap = (size_t)b->record_count;
        *keep = sm_xrealloc(*keep, *keep_cap);
    }
    int32_t kept = 0, tombstones = 0, n = 0;
    sm_record_iter_t it;
    sm_record_t rec;
    if (b->record_count > 0) {
        if ((err = sm_record_iter_init(&it, view, vlen)))
            goto out;
        while ((err = sm_record_iter_next(&it, &rec)) == SM_OK && n < b->record_count) {
            int64_t off = b->base_offset + rec.offset_delta;
            bool k;
            if (discard_records)
                k = false;
            else if (control || off >= c->end)
                k = true;
            else if (!rec.key)
                k = false; /* keyless records have no place in a compacted log */
            else
                k = off >= sm_offset_map_get(c->map, rec.key, (size_t)rec.key_len) &&
                    (rec.value || !has_h || prm->now_ms < horizon);
            (*keep)[n++] = k;
            if (k) {
                kept++;
                if (!rec.value && !control)
                    tombstones++;
            }
        }
        if (err != SM_ERR_NOT_FOUND && err != SM_OK)
            goto out;
        err = SM_OK;
    }
    bool retain_empty = b->producer_id >= 0 && producer_last(prm, b->producer_id, last);
    bool need_h = !has_h && kept > 0 && (tombstones > 0 || (control && can_discard));
    if (kept == b->record_count && !need_h && (kept > 0 || retain_empty)) {
        if (has_h)
            note_horizon(c, horizon);
        err = out_batch(c, o, p, (size_t)sm_batch_total_size(b));
        goto out;
    }
    if (kept == 0) {
        if (!retain_empty)
            goto out;
        uint8_t h[SM_BATCH_HEADER_SIZE];
        empty_batch(h, b, b->attributes, has_h ? horizon : b->max_timestamp, b->max_timestamp);
        c->r->batches_emptied++;
        err = out_batch(c, o, h, sizeof h);
        goto out;
    }
    /* re-encode the kept records */
    int64_t new_base_ts = b->base_timestamp;
    int16_t attrs = b->attributes;
    if (need_h) {
        new_base_ts = prm->now_ms + prm->delete_retention_ms;
        attrs |= SM_BATCH_ATTR_DELETE_HORIZON;
    }
    if (attrs & SM_BATCH_ATTR_DELETE_HORIZON)
        note_horizon(c, new_base_ts);
    sm_wbuf_reset(recs);
    sm_wbuf_reserve(recs, SM_BATCH_HEADER_SIZE);
    if ((err = sm_record_iter_init(&it, view, vlen)))
        goto out;
    for (int32_t i = 0; i < n; i++) {
        const uint8_t *start = it.rd.p;
        if ((err = sm_record_iter_next(&it, &rec)))
            goto out;
        if (!(*keep)[i])
            continue;
        if (new_base_ts == b->base_timestamp) { /* same deltas: the bytes as they are */
            sm_wbuf_bytes(recs, start, (size_t)(it.rd.p - start));
            continue;
        }
        sm_wbuf_t body;
        sm_wbuf_init(&body);
        sm_wbuf_i8(&body, rec.attributes);
        sm_wbuf_varlong(&body, b->base_timestamp + rec.timestamp_delta - new_base_ts);
        sm_wbuf_varint(&body, rec.offset_delta);
        sm_wbuf_varint(&body, rec.key ? rec.key_len : -1);
        if (rec.key)
            sm_wbuf_bytes(&body, rec.key, (size_t)rec.key_len);
        sm_wbuf_varint(&body, rec.value ? rec.value_len : -1);
        if (rec.value)
            sm_wbuf_bytes(&body, rec.value, (size_t)rec.value_len);
        sm_wbuf_varint(&body, rec.header_count);
        sm_wbuf_bytes(&body, rec.headers, rec.headers_len);
        sm_wbuf_varint(recs, (int32_t)body.len);
        sm_wbuf_bytes(recs, body.mem, body.len);
        sm_wbuf_free(&body);
    }
    int codec = b->attributes & SM_BATCH_ATTR_COMPRESSION_MASK;
    if (codec != SM_CODEC_NONE) {
        uint8_t *z;
        size_t zlen;
        if ((err = sm_compress((sm_codec_t)codec, recs->mem + SM_BATCH_HEADER_SIZE,
                               recs->len - SM_BATCH_HEADER_SIZE, &z, &zlen)))
            goto out;
        recs->len = SM_BATCH_HEADER_SIZE;
        sm_wbuf_bytes(recs, z, zlen);
        free(z);
    }
    uint8_t *h = recs->mem;
    memcpy(h, p, SM_BATCH_HEADER_SIZE);
    put32(h + SM_BATCH_OFF_LENGTH, (uint32_t)(recs->len - SM_BATCH_LOG_OVERHEAD));
    put16(h + SM_BATCH_OFF_ATTRIBUTES, (uint16_t)attrs);
    put64(h + SM_BATCH_OFF_BASE_TIMESTAMP, (uint64_t)new_base_ts);
    put32(h + SM_BATCH_OFF_RECORD_COUNT, (uint32_t)kept);
    put32(h + SM_BATCH_OFF_CRC, sm_crc32c(0, h + SM_BATCH_OFF_ATTRIBUTES,
                                          recs->len - SM_BATCH_OFF_ATTRIBUTES));
    err = out_batch(c, o, recs->mem, recs->len);
out:
    free(owned);
    return err;
}

/* Write the indexes and sync all four .cleaned files. */
static sm_err_t out_finish(cleaning_t *c, out_seg_t *o, int64_t group_end,
                           const sm_log_aborted_t *kept, int nkept)
{
    sm_err_t err;
    if (o->next_offset < group_end) {
        /* the cleaned segment must end where the next one starts (recovery
         * learns from it which old segments a swap replaces) */
        sm_batch_info_t e = {.base_offset = group_end - 1, .leader_epoch = o->last_epoch,
                             .producer_id = -1,
                             .producer_epoch = -1, .base_sequence = -1};
        uint8_t h[SM_BATCH_HEADER_SIZE];
        empty_batch(h, &e, 0, -1, -1);
        if ((err = out_batch(c, o, h, sizeof h)))
            return err;
    }
    if ((err = out_flush_data(c, o)))
        return err;
    if (o->max_ts >= 0 && o->max_ts > o->last_tkey) /* the seal entry */
        index_entry(&o->tidx, true, o->max_ts, (int32_t)(o->max_ts_offset - o->base));
    for (int i = 0; i < nkept; i++) {
        uint8_t e[34];
        put16(e, 0);
        put64(e + 2, (uint64_t)kept[i].pid);
        put64(e + 10, (uint64_t)kept[i].first_offset);
        put64(e + 18, (uint64_t)kept[i].last_offset);
        put64(e + 26, (uint64_t)kept[i].last_stable_offset);
        sm_wbuf_bytes(&o->txn, e, sizeof e);
    }
    if ((o->oidx.len && (err = sm_file_pwrite(o->fd[F_INDEX], o->oidx.mem, o->oidx.len, 0))) ||
        (o->tidx.len && (err = sm_file_pwrite(o->fd[F_TIMEINDEX], o->tidx.mem, o->tidx.len, 0))) ||
        (o->txn.len && (err = sm_file_pwrite(o->fd[F_TXNINDEX], o->txn.mem, o->txn.len, 0))))
        return err;
    for (int i = 0; i < F_COUNT; i++)
        if ((err = sm_file_datasync(o->fd[i])))
            return err;
    out_close(o);
    return SM_OK;
}

/* Step 4: swap the cleaned output in for segments [from, to) of the
 * snapshot. */
static sm_err_t swap_group(cleaning_t *c, out_seg_t *o, int from, int to, int64_t group_end,
                           const sm_log_aborted_t *kept, int nkept)
{
    sm_log_t *log = c->log;
    int n = to - from;
    sm_segment_t **gone = sm_xcalloc((size_t)n, sizeof *gone);
    sm_err_t err = SM_OK;
    bool committed = false;
    pthread_mutex_lock(&log->flush_mu);
    pthread_mutex_lock(&log->mu);
    /* the old segments must still be there, unchanged, and not active */
    int at = sm_log_seg_find(log, c->segs[from].base);
    if (log->closed || at + n >= log->nsegs || strcmp(log->dir, o->dir) != 0) {
        err = log->closed ? SM_ERR_CLOSED : SM_ERR_AGAIN;
        goto unlock;
    }
    for (int k = 0; k < n; k++) {
        const sm_segment_t *s = log->segs[at + k];
        if (s != c->segs[from + k].seg || s->size != c->segs[from + k].size) {
            err = SM_ERR_AGAIN;
            goto unlock;
        }
    }
    if (log->segs[at + n]->base_offset != group_end) {
        err = SM_ERR_AGAIN;
        goto unlock;
    }
    /* .cleaned -> .swap, the .log last: its rename commits the swap */
    for (int i = F_COUNT - 1; i >= 0 && !err; i--) {
        char *a = with(o->path[i], ".cleaned"), *b = with(o->path[i], ".swap");
        err = sm_file_rename(a, b);
        free(a);
        free(b);
    }
    if (!err)
        err = sm_file_sync_dir(log->dir);
    if (err)
        goto unlock;
    committed = true;
    /* from here on the swap is decided: recovery completes it */
    for (int k = 0; k < n; k++)
        if ((err = sm_segment_mark_deleted(log->segs[at + k])))
            goto unlock;
    for (int i = 1; i <= F_COUNT && !err; i++) { /* indexes first, the .log last */
        int f = i % F_COUNT;
        char *a = with(o->path[f], ".swap");
        err = sm_file_rename(a, o->path[f]);
        free(a);
    }
    if (!err)
        err = sm_file_sync_dir(log->dir);
    if (err)
        goto unlock;
    sm_segment_t *seg;
    bool idx_ok;
    if ((err = sm_segment_load(log->dir, o->base, log->cfg.segment_index_bytes, &seg, &idx_ok)))
        goto unlock;
    if (!idx_ok) {
        int64_t dropped;
        SM_WARN("storage", "%s: cleaned segment %s has unusable indexes; rebuilding", log->name,
                seg->path);
        err = sm_segment_rebuild(seg, log->name, false, INT64_MAX, log->cfg.index_interval_bytes,
                                 &dropped, NULL, NULL, NULL);
        if (!err)
            err = sm_segment_sync_indexes(seg);
        if (err) {
            sm_segment_release(seg);
            goto unlock;
        }
    }
    seg->end_offset = group_end;
    for (int k = 0; k < n; k++)
        gone[k] = log->segs[at + k];
    log->segs[at] = seg;
    memmove(log->segs + at + 1, log->segs + at + n,
            sizeof *log->segs * (size_t)(log->nsegs - at - n));
    log->nsegs -= n - 1;
    sm_log_aborted_replace(log, o->base, group_end, kept, nkept);
unlock:
    if (err && committed) {
        /* the files are half swapped: stop appends until a restart
         * finishes the swap (log_load.c) */
        SM_ERROR("storage", "%s: swapping cleaned segment %020" PRId64 " failed: %s; the log "
                 "is failed until a restart completes the swap", log->name, o->base,
                 sm_err_str(err));
        __atomic_store_n(&log->failed, err, __ATOMIC_RELEASE);
        n = 0; /* the list still holds the old segments */
    }
    pthread_mutex_unlock(&log->mu);
    pthread_mutex_unlock(&log->flush_mu);
    if (!err)
        sm_log_segs_finish_delete(gone, n);
    free(gone);
    if (err && !committed)
        out_discard(o);
    return err;
}

/* Steps 3-4 for snapshot segments [from, to). */
sm_err_t sm_cleaner_clean_group(cleaning_t *c, txn_state_t *t, int from, int to)
{
    int64_t group_end = to < c->nsegs ? c->segs[to].base : c->next_base;
    out_seg_t o;
    /* the directory may move (topic deletion renames it): the swap checks */
    pthread_mutex_lock(&c->log->mu);
    char *dir = sm_xstrdup(c->log->dir);
    pthread_mutex_unlock(&c->log->mu);
    out_init(&o, dir, c->segs[from].base);
    o.dir = dir;
    int kept_from = t->nkept;
    sm_wbuf_t recs;
    sm_wbuf_init(&recs);
    uint8_t *keep = NULL;
    size_t keep_cap = 0;
    sm_err_t err = out_open(&o);
    for (int s = from; s < to && !err; s++) {
        sm_segfiles_t *f;
        if ((err = sm_cleaner_pin_member(c->log, c->segs[s].seg, &f)))
            break;
        sm_cleaner_reader_start(c, f->log_fd, c->segs[s].size);
        sm_batch_info_t b;
        const uint8_t *p;
        while ((err = sm_cleaner_reader_next(&c->rd, &b, &p)) == SM_OK) {
            if (sm_cleaner_stopping(c)) {
                err = SM_ERR_CLOSED;
                break;
            }
            o.last_epoch = b.leader_epoch;
            if ((err = clean_batch(c, t, &o, p, &b, &recs, &keep, &keep_cap)))
                break;
        }
        if (err == SM_ERR_NOT_FOUND)
            err = SM_OK;
        sm_segfiles_release(f);
    }
    free(keep);
    sm_wbuf_free(&recs);
    if (!err)
        err = out_finish(c, &o, group_end, t->kept + kept_from, t->nkept - kept_from);
    if (!err)
        err = swap_group(c, &o, from, to, group_end, t->kept + kept_from, t->nkept - kept_from);
    else
        out_discard(&o);
    if (err && err != SM_ERR_CLOSED && err != SM_ERR_AGAIN) {
        pthread_mutex_lock(&c->log->mu);
        if (strcmp(c->log->dir, o.dir) != 0)
            err = SM_ERR_AGAIN; /* the topic was deleted under us */
        pthread_mutex_unlock(&c->log->mu);
    }
    if (err && err != SM_ERR_CLOSED && err != SM_ERR_AGAIN)
        SM_ERROR("storage", "%s: cleaning segments %020" PRId64 "..%020" PRId64 " failed: %s",
                 c->log->name, c->segs[from].base, group_end, sm_err_str(err));
    if (!err) {
        c->r->groups++;
        c->r->segments_in += to - from;
    }
    out_free(&o);
    return err;
}

