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
#include "cleaner.h"

#include "compress.h"
#include "crc32c.h"
#include "file.h"
#include "log_internal.h"
#include "../core/log.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define READ_CHUNK (1 << 20)
#define WRITE_CHUNK (1 << 20)

enum { F_LOG, F_INDEX, F_TIMEINDEX, F_TXNINDEX, F_COUNT };
static const char *const suffixes[F_COUNT] = {".log", ".index", ".timeindex", ".txnindex"};

static uint16_t rd16(const uint8_t *p) { return (uint16_t)((p[0] << 8) | p[1]); }
static void put16(uint8_t *p, uint16_t v)
{
    p[0] = (uint8_t)(v >> 8);
    p[1] = (uint8_t)v;
}
static void put32(uint8_t *p, uint32_t v)
{
    put16(p, (uint16_t)(v >> 16));
    put16(p + 2, (uint16_t)v);
}
static void put64(uint8_t *p, uint64_t v)
{
    put32(p, (uint32_t)(v >> 32));
    put32(p + 4, (uint32_t)v);
}

/* ------------------------------------------------------------ throttle */

typedef struct throttle {
    int64_t rate, bytes, start_us;
    const int *stop;
} throttle_t;

/* Kafka's Throttler: sleep so that bytes / elapsed stays under the rate. */
static void throttle(throttle_t *t, int64_t n)
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

/* Sequential reader of whole batches of one .log through a window buffer. */
typedef struct reader {
    int fd;
    int64_t pos, size;
    uint8_t *buf;
    size_t cap, len;
    int64_t buf_pos;
    throttle_t *th;
    int64_t *bytes_read;
} reader_t;

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
    throttle(r->th, (int64_t)got);
    return SM_OK;
}

/* Next batch: SM_OK with *p (valid until the next call), SM_ERR_NOT_FOUND
 * at the end. */
static sm_err_t reader_next(reader_t *r, sm_batch_info_t *b, const uint8_t **p)
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
static sm_err_t batch_plain(const uint8_t *p, const sm_batch_info_t *b, uint8_t **owned,
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
static int control_type(const uint8_t *view, size_t len)
{
    sm_record_iter_t it;
    sm_record_t rec;
    if (sm_record_iter_init(&it, view, len) != SM_OK || sm_record_iter_next(&it, &rec) != SM_OK ||
        !rec.key || rec.key_len < 4)
        return -1;
    return rd16(rec.key + 2);
}

/* ------------------------------------------------------------ transactions */

/* Kafka's CleanedTransactionMetadata: which batches belong to aborted
 * transactions, and whether a marker may go. One per pass (map building
 * has its own), fed every batch in offset order. */
typedef struct ongoing {
    sm_log_aborted_t a;
    bool observed; /* a batch of it was seen in this pass */
} ongoing_t;

typedef struct txn_state {
    sm_log_aborted_t *aborted; /* sorted by first offset */
    int naborted, next;
    ongoing_t *ab;
    int nab, ab_cap;
    int64_t *committed; /* producers with data seen and no marker yet */
    int ncommitted, committed_cap;
    sm_log_aborted_t *kept; /* entries for the cleaned .txnindex */
    int nkept, kept_cap;
} txn_state_t;

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
static bool txn_on_batch(txn_state_t *t, const sm_batch_info_t *b)
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
static bool txn_on_control(txn_state_t *t, const sm_batch_info_t *b, int type)
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

typedef struct snap_seg {
    sm_segment_t *seg;
    int64_t base, size;
} snap_seg_t;

typedef struct cleaning {
    sm_log_t *log;
    const sm_clean_params_t *p;
    sm_clean_result_t *r;
    sm_offset_map_t *map;
    snap_seg_t *segs; /* base < first uncleanable, from the log start */
    int nsegs;
    int64_t next_base; /* base of the segment after the snapshot */
    int64_t end;       /* records at or past it are kept as they are */
    int32_t index_interval;
    throttle_t th;
    reader_t rd;
    sm_log_aborted_t *aborted;
    int naborted;
} cleaning_t;

static bool stopping(const cleaning_t *c)
{
    return c->p->stop && __atomic_load_n(c->p->stop, __ATOMIC_RELAXED);
}

/* Pin the files of a snapshot segment if it is still in the log. */
static sm_err_t pin_member(sm_log_t *log, sm_segment_t *seg, sm_segfiles_t **f)
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

static void reader_start(cleaning_t *c, int fd, int64_t size)
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
        if ((err = pin_member(c->log, c->segs[s].seg, &f)))
            break;
        reader_start(c, f->log_fd, c->segs[s].size);
        sm_batch_info_t b;
        const uint8_t *p;
        while (!done && (err = reader_next(&c->rd, &b, &p)) == SM_OK) {
            if (stopping(c)) {
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
            if (!control && txn_on_batch(&t, &b)) {
                scanned_end = last + 1; /* aborted: nothing to map */
                continue;
            }
            if ((err = batch_plain(p, &b, &owned, &view, &vlen)))
                break;
            if (control) {
                txn_on_control(&t, &b, control_type(view, vlen));
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
    throttle(&c->th, (int64_t)o->data.len);
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
    sm_err_t err = batch_plain(p, b, &owned, &view, &vlen);
    if (err)
        goto out;
    bool can_discard, discard_records;
    if (control) {
        can_discard = txn_on_control(t, b, control_type(view, vlen));
        discard_records = can_discard && has_h && horizon <= prm->now_ms;
    } else {
        can_discard = txn_on_batch(t, b);
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
static sm_err_t clean_group(cleaning_t *c, txn_state_t *t, int from, int to)
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
        if ((err = pin_member(c->log, c->segs[s].seg, &f)))
            break;
        reader_start(c, f->log_fd, c->segs[s].size);
        sm_batch_info_t b;
        const uint8_t *p;
        while ((err = reader_next(&c->rd, &b, &p)) == SM_OK) {
            if (stopping(c)) {
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
        err = clean_group(&c, &t, i, j);
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
