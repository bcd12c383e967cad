/*
 * segment.c - segment files, the header scanner, index maintenance and the
 * per-segment half of recovery; see segment.h for the invariants.
 *
 * Threads: functions taking sm_segment_t * run under the owning log's
 * mutex (they pin the segment's files for the duration of their I/O),
 * except the free function (runs wherever the last reference drops). The
 * scanner and sm_segment_locate use only an fd of pinned files and values
 * copied under the mutex: any thread.
 */
#define _GNU_SOURCE
#include "segment.h"

#include "file.h"
#include "../core/log.h"

#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* ------------------------------------------------------------- scanner */

void sm_seg_scan_init(sm_seg_scan_t *sc, int fd, int64_t pos, int64_t end)
{
    sc->fd = fd;
    sc->pos = pos;
    sc->end = end;
    sc->buf_pos = pos;
    sc->buf_len = 0;
    sc->last_total = 0;
}

sm_err_t sm_seg_scan_next(sm_seg_scan_t *sc, sm_batch_info_t *b, int64_t *pos)
{
    *pos = sc->pos;
    if (sc->pos >= sc->end)
        return SM_ERR_NOT_FOUND;
    if (sc->end - sc->pos < SM_BATCH_HEADER_SIZE)
        return SM_ERR_CORRUPT;
    /* Refill when the header is not wholly inside the buffer. */
    if (sc->pos < sc->buf_pos ||
        sc->pos + SM_BATCH_HEADER_SIZE > sc->buf_pos + (int64_t)sc->buf_len) {
        int64_t chunk = sc->last_total > (int64_t)sizeof sc->buf / 2 ? SM_BATCH_HEADER_SIZE
                                                                     : (int64_t)sizeof sc->buf;
        size_t want = (size_t)SM_MIN(chunk, sc->end - sc->pos), got;
        sm_err_t err = sm_file_pread(sc->fd, sc->buf, want, sc->pos, &got);
        if (err)
            return err;
        sc->buf_pos = sc->pos;
        sc->buf_len = got;
        if (got < SM_BATCH_HEADER_SIZE)
            return SM_ERR_CORRUPT; /* file shorter than we were told */
    }
    const uint8_t *p = sc->buf + (sc->pos - sc->buf_pos);
    if (sm_batch_header_parse(p, SM_BATCH_HEADER_SIZE, b) != SM_OK)
        return SM_ERR_CORRUPT;
    if (b->batch_length < SM_BATCH_HEADER_SIZE - SM_BATCH_LOG_OVERHEAD ||
        sm_batch_total_size(b) > sc->end - sc->pos || b->last_offset_delta < 0)
        return SM_ERR_CORRUPT;
    sc->pos += sm_batch_total_size(b);
    sc->last_total = sm_batch_total_size(b);
    return SM_OK;
}

/* ------------------------------------------------------------- lifecycle */

char *sm_segment_path(const char *dir, int64_t base_offset)
{
    return sm_xasprintf("%s/%020" PRId64, dir, base_offset);
}

static void segment_free(sm_ref_t *ref)
{
    sm_segment_t *seg = (sm_segment_t *)((char *)ref - offsetof(sm_segment_t, ref));
    sm_segfiles_forget(seg);
    sm_index_close(&seg->oidx);
    sm_index_close(&seg->tidx);
    free(seg->path);
    free(seg);
}

static int32_t max_entries(int32_t segment_index_bytes, sm_index_kind_t kind)
{
    int32_t n = segment_index_bytes / (int32_t)sm_index_entry_size(kind);
    return n > 0 ? n : 1;
}

static sm_segment_t *segment_new(const char *dir, int64_t base_offset, int32_t segment_index_bytes)
{
    sm_segment_t *seg = sm_xcalloc(1, sizeof *seg);
    sm_ref_init(&seg->ref, segment_free);
    seg->base_offset = base_offset;
    seg->end_offset = base_offset;
    seg->max_ts = -1;
    seg->max_ts_offset = base_offset;
    seg->roll_base_ms = -1;
    seg->path = sm_segment_path(dir, base_offset);
    sm_index_init(&seg->oidx, SM_INDEX_OFFSET, max_entries(segment_index_bytes, SM_INDEX_OFFSET));
    sm_index_init(&seg->tidx, SM_INDEX_TIME, max_entries(segment_index_bytes, SM_INDEX_TIME));
    return seg;
}

sm_err_t sm_segment_create(const char *dir, int64_t base_offset, int32_t segment_index_bytes,
                           sm_segment_t **out)
{
    sm_segment_t *seg = segment_new(dir, base_offset, segment_index_bytes);
    sm_segfiles_t *f;
    sm_err_t err = sm_segfiles_pin(seg, true, &f, NULL);
    if (err) {
        sm_segment_release(seg);
        return err;
    }
    sm_segfiles_release(f);
    *out = seg;
    return SM_OK;
}

/* Cheap checks Kafka also makes on load: entries within the segment, keys
 * in order at both ends. A full check would read every entry. */
static bool indexes_sane(sm_segment_t *seg, const sm_segfiles_t *f)
{
    sm_index_entry_t first, last;
    int32_t n = sm_index_count(&seg->oidx);
    if (n > 0) {
        if (sm_index_get(&seg->oidx, f->oidx_fd, 0, &first) ||
            sm_index_get(&seg->oidx, f->oidx_fd, n - 1, &last))
            return false;
        /* the first batch (relative offset 0) is never indexed, so a last
         * key of 0 means a zero-filled (preallocated or torn) file */
        if (first.key < 0 || last.key <= 0 || last.key < first.key || first.value < 0 ||
            last.value < first.value || last.value >= seg->size)
            return false;
    }
    n = sm_index_count(&seg->tidx);
    if (n > 0) {
        if (sm_index_get(&seg->tidx, f->tidx_fd, 0, &first) ||
            sm_index_get(&seg->tidx, f->tidx_fd, n - 1, &last))
            return false;
        if (last.key < first.key || first.value < 0 || last.value < first.value)
            return false;
    }
    /* An empty time index next to a non-empty offset index means the time
     * index was lost; rebuild both. */
    if (sm_index_count(&seg->oidx) > 0 && sm_index_count(&seg->tidx) == 0)
        return false;
    return true;
}

sm_err_t sm_segment_load(const char *dir, int64_t base_offset, int32_t segment_index_bytes,
                         sm_segment_t **out, bool *indexes_ok)
{
    sm_segment_t *seg = segment_new(dir, base_offset, segment_index_bytes);
    sm_segfiles_t *f = NULL;
    bool created = false, ok = true;
    sm_err_t err = sm_segfiles_pin(seg, false, &f, &created);
    if (err)
        goto fail;
    if ((err = sm_file_size(f->log_fd, &seg->size)))
        goto fail;
    if (seg->size > INT32_MAX) {
        SM_ERROR("storage", "%s.log: %" PRId64 " bytes, larger than a segment can be", seg->path,
                 seg->size);
        err = SM_ERR_CORRUPT;
        goto fail;
    }
    if (created)
        ok = false;
    err = sm_index_load(&seg->oidx, f->oidx_fd);
    if (!err)
        err = sm_index_load(&seg->tidx, f->tidx_fd);
    if (err == SM_ERR_CORRUPT) {
        ok = false;
        err = SM_OK;
    }
    if (err)
        goto fail;
    if (ok)
        ok = indexes_sane(seg, f);
    if (ok && sm_index_count(&seg->tidx) > 0) {
        seg->max_ts = seg->tidx.last.key;
        seg->max_ts_offset = base_offset + seg->tidx.last.value;
    }
    sm_segfiles_release(f);
    *indexes_ok = ok;
    *out = seg;
    return SM_OK;
fail:
    sm_segfiles_release(f);
    sm_segment_release(seg);
    return err;
}

/* ------------------------------------------------------------- indexing */

sm_err_t sm_segment_note_batch(sm_segment_t *seg, const sm_segfiles_t *f, const sm_batch_info_t *b,
                               int64_t pos, int32_t index_interval_bytes)
{
    int64_t last = sm_batch_last_offset(b);
    if (b->max_timestamp > seg->max_ts) {
        seg->max_ts = b->max_timestamp;
        seg->max_ts_offset = last;
    }
    if (seg->bytes_since_index > index_interval_bytes) {
        sm_err_t err = sm_index_append(&seg->oidx, f->oidx_fd, last - seg->base_offset, (int32_t)pos);
        if (!err && seg->max_ts >= 0)
            err = sm_index_append(&seg->tidx, f->tidx_fd, seg->max_ts,
                                  (int32_t)(seg->max_ts_offset - seg->base_offset));
        if (err)
            return err;
        seg->bytes_since_index = 0;
    }
    seg->bytes_since_index += sm_batch_total_size(b);
    seg->end_offset = last + 1;
    return SM_OK;
}

sm_err_t sm_segment_seal(sm_segment_t *seg)
{
    sm_segfiles_t *f;
    sm_err_t err = sm_segment_pin(seg, &f);
    if (err)
        return err;
    if (seg->max_ts >= 0 && (sm_index_count(&seg->tidx) == 0 || seg->max_ts > seg->tidx.last.key)) {
        /* Room is reserved implicitly: a full time index rolled us already,
         * so make space for this last entry by allowing one more. */
        if (sm_index_full(&seg->tidx))
            seg->tidx.max_entries++;
        err = sm_index_append(&seg->tidx, f->tidx_fd, seg->max_ts,
                              (int32_t)(seg->max_ts_offset - seg->base_offset));
    }
    if (!err)
        err = sm_index_write_pending(&seg->oidx, f->oidx_fd);
    if (!err)
        err = sm_index_write_pending(&seg->tidx, f->tidx_fd);
    if (!err) { /* a sealed segment never buffers again: give the memory back */
        sm_index_release_buffer(&seg->oidx);
        sm_index_release_buffer(&seg->tidx);
    }
    sm_segfiles_release(f);
    return err;
}

sm_err_t sm_segment_write_indexes(sm_segment_t *seg)
{
    if (seg->oidx.npending == 0 && seg->tidx.npending == 0)
        return SM_OK;
    sm_segfiles_t *f;
    sm_err_t err = sm_segment_pin(seg, &f);
    if (err)
        return err;
    err = sm_index_write_pending(&seg->oidx, f->oidx_fd);
    if (!err)
        err = sm_index_write_pending(&seg->tidx, f->tidx_fd);
    sm_segfiles_release(f);
    return err;
}

sm_err_t sm_segment_sync_indexes(sm_segment_t *seg)
{
    sm_segfiles_t *f;
    sm_err_t err = sm_segment_pin(seg, &f);
    if (err)
        return err;
    err = sm_index_write_pending(&seg->oidx, f->oidx_fd);
    if (!err)
        err = sm_index_write_pending(&seg->tidx, f->tidx_fd);
    if (!err)
        err = sm_file_datasync(f->oidx_fd);
    if (!err)
        err = sm_file_datasync(f->tidx_fd);
    sm_segfiles_release(f);
    return err;
}

/* Scan after the last offset-index entry: end offset, max timestamp,
 * bytes since the last index entry, roll base. */
static sm_err_t load_tail(sm_segment_t *seg, const sm_segfiles_t *f)
{
    int64_t pos = 0;
    if (sm_index_count(&seg->oidx) > 0)
        pos = seg->oidx.last.value;
    sm_seg_scan_t sc;
    sm_seg_scan_init(&sc, f->log_fd, pos, seg->size);
    sm_batch_info_t b;
    int64_t bpos;
    sm_err_t err;
    seg->end_offset = seg->base_offset;
    seg->bytes_since_index = 0;
    while ((err = sm_seg_scan_next(&sc, &b, &bpos)) == SM_OK) {
        if (b.base_offset < seg->base_offset)
            return SM_ERR_CORRUPT;
        if (b.max_timestamp > seg->max_ts) {
            seg->max_ts = b.max_timestamp;
            seg->max_ts_offset = sm_batch_last_offset(&b);
        }
        seg->end_offset = sm_batch_last_offset(&b) + 1;
        if (bpos > pos || pos == 0)
            seg->bytes_since_index += sm_batch_total_size(&b);
        if (seg->roll_base_ms < 0 && bpos == 0)
            seg->roll_base_ms = b.max_timestamp;
    }
    if (err != SM_ERR_NOT_FOUND)
        return err;
    if (seg->roll_base_ms < 0 && seg->size > 0) {
        sm_seg_scan_init(&sc, f->log_fd, 0, seg->size);
        if (sm_seg_scan_next(&sc, &b, &bpos) == SM_OK)
            seg->roll_base_ms = b.max_timestamp;
    }
    return SM_OK;
}

sm_err_t sm_segment_load_tail(sm_segment_t *seg)
{
    sm_segfiles_t *f;
    sm_err_t err = sm_segment_pin(seg, &f);
    if (err)
        return err;
    err = load_tail(seg, f);
    sm_segfiles_release(f);
    return err;
}

/* ------------------------------------------------------------- recovery */

static sm_err_t rebuild(sm_segment_t *seg, const sm_segfiles_t *f, const char *name, bool validate,
                        int64_t validate_from, int32_t index_interval_bytes, int64_t *dropped,
                        int64_t *validated, void (*on_batch)(void *ctx, const sm_batch_info_t *b), void *ctx)
{
    sm_err_t err;
    *dropped = 0;
    if ((err = sm_index_reset(&seg->oidx, f->oidx_fd)) || (err = sm_index_reset(&seg->tidx, f->tidx_fd)))
        return err;
    seg->end_offset = seg->base_offset;
    seg->max_ts = -1;
    seg->max_ts_offset = seg->base_offset;
    seg->bytes_since_index = 0;
    seg->roll_base_ms = -1;

    sm_seg_scan_t sc;
    sm_seg_scan_init(&sc, f->log_fd, 0, seg->size);
    uint8_t *buf = NULL;
    size_t buf_cap = 0;
    sm_batch_info_t b;
    int64_t pos, good = 0;
    const char *why = NULL;
    for (;;) {
        err = sm_seg_scan_next(&sc, &b, &pos);
        if (err == SM_ERR_NOT_FOUND) {
            err = SM_OK;
            break;
        }
        if (err == SM_ERR_CORRUPT) {
            why = "bad batch framing or torn write";
            break;
        }
        if (err)
            goto out;
        /* Offsets must grow; they may jump (a compacted log keeps its
         * offsets, so cleaned segments and what a follower replicates from
         * them have gaps). baseOffset lies outside the CRC, but a segment
         * still has to end exactly where the next one starts (log_load.c),
         * and the cleaner keeps that true. */
        if (b.base_offset < seg->end_offset ||
            sm_batch_last_offset(&b) - seg->base_offset > INT32_MAX) {
            why = "batch offset out of sequence";
            break;
        }
        if (validate && b.base_offset >= validate_from) {
            int64_t total = sm_batch_total_size(&b);
            if (total > SM_SEGMENT_MAX_BATCH_BYTES) {
                why = "batch larger than the recovery limit";
                break;
            }
            if ((size_t)total > buf_cap) {
                buf_cap = (size_t)total;
                buf = sm_xrealloc(buf, buf_cap);
            }
            size_t got;
            if ((err = sm_file_pread(f->log_fd, buf, (size_t)total, pos, &got)))
                goto out;
            sm_batch_info_t vb;
            if (got != (size_t)total) {
                why = "file shorter than its size";
                break;
            }
            if (sm_batch_validate_stored(buf, (size_t)total, &vb, &why) != SM_OK)
                break;
            if (validated)
                *validated += total;
        }
        if (seg->roll_base_ms < 0)
            seg->roll_base_ms = b.max_timestamp;
        if ((err = sm_segment_note_batch(seg, f, &b, pos, index_interval_bytes)))
            goto out;
        if (on_batch)
            on_batch(ctx, &b);
        good = sc.pos;
    }
    if (good < seg->size) {
        *dropped = seg->size - good;
        SM_WARN("storage",
                "%s: %s.log: %s at position %" PRId64 " (offset %" PRId64
                "); truncating, %" PRId64 " bytes dropped",
                name, seg->path, why ? why : "invalid batch", good, seg->end_offset, *dropped);
        if ((err = sm_file_truncate(f->log_fd, good)))
            goto out;
        seg->size = good;
    }
    err = SM_OK;
out:
    free(buf);
    if (!err)
        err = sm_index_write_pending(&seg->oidx, f->oidx_fd);
    if (!err)
        err = sm_index_write_pending(&seg->tidx, f->tidx_fd);
    return err;
}

sm_err_t sm_segment_rebuild(sm_segment_t *seg, const char *name, bool validate,
                            int64_t validate_from, int32_t index_interval_bytes, int64_t *dropped,
                            int64_t *validated, void (*on_batch)(void *ctx, const sm_batch_info_t *b), void *ctx)
{
    sm_segfiles_t *f;
    *dropped = 0;
    sm_err_t err = sm_segment_pin(seg, &f);
    if (err)
        return err;
    err = rebuild(seg, f, name, validate, validate_from, index_interval_bytes, dropped, validated,
                  on_batch, ctx);
    sm_segfiles_release(f);
    return err;
}

/* ------------------------------------------------------------- reading */

sm_err_t sm_segment_locate(int fd, int64_t base_offset, int64_t size, const sm_index_snap_t *oidx,
                           int64_t offset, sm_seg_scan_t *sc, sm_batch_info_t *b, int64_t *pos)
{
    int64_t start = 0;
    sm_index_entry_t e;
    /* Entries hold a batch's last offset: the batch at e.value ends at
     * e.key, so a target equal to it is found there, a larger one after. */
    if (offset - base_offset <= INT32_MAX &&
        sm_index_snap_lookup(oidx, offset - base_offset, &e) == SM_OK && e.value < size)
        start = e.value;
    sm_seg_scan_init(sc, fd, start, size);
    sm_err_t err;
    while ((err = sm_seg_scan_next(sc, b, pos)) == SM_OK) {
        if (sm_batch_last_offset(b) >= offset)
            return SM_OK;
    }
    return err;
}

sm_err_t sm_segment_truncate(sm_segment_t *seg, int64_t pos)
{
    sm_segfiles_t *f;
    sm_err_t err = sm_segment_pin(seg, &f);
    if (err)
        return err;
    if ((err = sm_file_truncate(f->log_fd, pos)))
        goto out;
    seg->size = pos;
    /* Offset-index entries point at batch starts: keep those below pos. */
    int32_t keep = 0, n = sm_index_count(&seg->oidx);
    while (keep < n) { /* short: only entries near the cut differ */
        sm_index_entry_t e;
        int32_t i = n - 1 - keep;
        if ((err = sm_index_get(&seg->oidx, f->oidx_fd, i, &e)))
            goto out;
        if (e.value < pos)
            break;
        keep++;
    }
    if ((err = sm_index_truncate(&seg->oidx, f->oidx_fd, n - keep)))
        goto out;
    /* Find where the data now ends (scan after the last offset-index
     * entry), then drop time entries that point at or beyond it. Entries'
     * values (relative offsets) never decrease, so trim from the back. */
    seg->max_ts = -1;
    seg->max_ts_offset = seg->base_offset;
    if ((err = load_tail(seg, f)))
        goto out;
    int32_t tn = sm_index_count(&seg->tidx);
    while (tn > 0) {
        sm_index_entry_t e;
        if ((err = sm_index_get(&seg->tidx, f->tidx_fd, tn - 1, &e)))
            goto out;
        if (seg->base_offset + e.value < seg->end_offset)
            break;
        tn--;
    }
    if ((err = sm_index_truncate(&seg->tidx, f->tidx_fd, tn)))
        goto out;
    /* Batches up to the last offset-index entry have their max in the time
     * index (an entry is added whenever the max grew at an index point). */
    if (tn > 0 && seg->tidx.last.key > seg->max_ts) {
        seg->max_ts = seg->tidx.last.key;
        seg->max_ts_offset = seg->base_offset + seg->tidx.last.value;
    }
out:
    sm_segfiles_release(f);
    return err;
}

/* ------------------------------------------------------------- deletion */

static const char *const seg_suffixes[] = {".log", ".index", ".timeindex", ".txnindex"};
#define SEG_OPTIONAL_FROM 3 /* suffixes from here on may be absent */

sm_err_t sm_segment_mark_deleted(sm_segment_t *seg)
{
    /* pins held by readers keep their fds; the cache lets go now, so the
     * renamed files are never reopened under their old names */
    sm_segfiles_forget(seg);
    sm_err_t first = SM_OK;
    for (size_t i = 0; i < SM_ARRAY_LEN(seg_suffixes); i++) {
        char from[PATH_MAX], to[PATH_MAX];
        snprintf(from, sizeof from, "%s%s", seg->path, seg_suffixes[i]);
        snprintf(to, sizeof to, "%s%s.deleted", seg->path, seg_suffixes[i]);
        if (i >= SEG_OPTIONAL_FROM && access(from, F_OK) != 0)
            continue;
        sm_err_t err = sm_file_rename(from, to);
        if (err && !first)
            first = err;
    }
    return first;
}

void sm_segment_unlink_deleted(const char *path)
{
    for (size_t i = 0; i < SM_ARRAY_LEN(seg_suffixes); i++) {
        char p[PATH_MAX];
        snprintf(p, sizeof p, "%s%s.deleted", path, seg_suffixes[i]);
        (void)sm_file_unlink(p);
    }
}
