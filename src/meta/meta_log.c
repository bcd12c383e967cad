/*
 * meta_log.c - the local metadata log (see meta_log.h for the contract).
 *
 * On disk: <parent>/__cluster_metadata-0/<20-digit base offset>.log, each a
 * sequence of magic-2 batches with contiguous offsets; the next segment's
 * base offset is the previous one's end. Every record has a null key and a
 * metadata record as value. No index files: the log is read front to back
 * once at start, and only appended to afterwards.
 *
 * In memory: only the active segment's fd, its size and the end offset.
 * File I/O goes through the storage seam (file.h) so fault-injection tests
 * apply here too. Controller thread only.
 */
#include "meta_log.h"

#include "batch.h"
#include "buf.h"
#include "file.h"
#include "log.h"

#include <dirent.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define TAG "meta"

struct sm_meta_log {
    char *dir;
    int64_t segment_bytes;
    int fd;              /* active segment */
    char *active_path;
    int64_t active_size;
    int64_t end_offset;
};

static char *segment_path(const char *dir, int64_t base)
{
    return sm_xasprintf("%s/%020" PRId64 ".log", dir, base);
}

static int cmp_i64(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return x < y ? -1 : x > y;
}

/* Base offsets of the segment files in dir, sorted. */
static sm_err_t list_segments(const char *dir, int64_t **bases, int *n)
{
    DIR *dp = opendir(dir);
    if (!dp) {
        SM_ERROR(TAG, "cannot list %s", dir);
        return SM_ERR_IO;
    }
    int64_t *v = NULL;
    int cnt = 0;
    struct dirent *de;
    while ((de = readdir(dp))) {
        const char *nm = de->d_name;
        if (strlen(nm) != 24 || strcmp(nm + 20, ".log") != 0)
            continue;
        bool digits = true;
        for (int i = 0; i < 20; i++)
            digits &= nm[i] >= '0' && nm[i] <= '9';
        if (!digits)
            continue;
        v = sm_xrealloc(v, sizeof *v * (size_t)(cnt + 1));
        v[cnt++] = strtoll(nm, NULL, 10);
    }
    closedir(dp);
    if (cnt > 1)
        qsort(v, (size_t)cnt, sizeof *v, cmp_i64);
    *bases = v;
    *n = cnt;
    return SM_OK;
}

/* Feed every record of one validated batch to fn. */
static sm_err_t replay_batch(const uint8_t *p, size_t len, const sm_batch_info_t *info,
                             sm_meta_log_record_fn fn, void *ctx, const char **why)
{
    if (info->attributes & SM_BATCH_ATTR_CONTROL)
        return SM_OK; /* Raft control records (leader change, snapshot markers) */
    sm_record_iter_t it;
    sm_err_t rc = sm_record_iter_init(&it, p, len);
    if (rc) {
        *why = "compressed or malformed metadata batch";
        return rc;
    }
    sm_record_t rec;
    while ((rc = sm_record_iter_next(&it, &rec)) == SM_OK) {
        if (!rec.value) {
            *why = "metadata record without a value";
            return SM_ERR_CORRUPT;
        }
        if ((rc = fn(ctx, info->base_offset + rec.offset_delta, rec.value, (size_t)rec.value_len,
                     why)))
            return rc;
    }
    if (rc != SM_ERR_NOT_FOUND) {
        *why = "malformed record in metadata batch";
        return rc;
    }
    return SM_OK;
}

/* Replay one segment; on a torn tail of the last segment, truncate it. */
static sm_err_t replay_segment(sm_meta_log_t *l, const char *path, int fd, bool last,
                               int64_t *expect, sm_meta_log_record_fn fn, void *ctx,
                               int64_t *size_out)
{
    int64_t size;
    sm_err_t rc = sm_file_size(fd, &size);
    if (rc)
        return rc;
    int64_t pos = 0;
    uint8_t *buf = NULL;
    size_t cap = 0;
    const char *why = NULL;
    while (pos < size) {
        int64_t left = size - pos;
        uint8_t hdr[SM_BATCH_LOG_OVERHEAD];
        size_t got;
        int64_t total = -1;
        sm_batch_info_t info;
        if (left >= SM_BATCH_LOG_OVERHEAD) {
            if ((rc = sm_file_pread(fd, hdr, sizeof hdr, pos, &got)) || got != sizeof hdr)
                goto io_fail;
            sm_rd_t rd;
            sm_rd_init(&rd, hdr, sizeof hdr);
            sm_rd_i64(&rd);
            total = (int64_t)sm_rd_i32(&rd) + SM_BATCH_LOG_OVERHEAD;
        }
        if (total < SM_BATCH_HEADER_SIZE || total > left) {
            why = left < SM_BATCH_LOG_OVERHEAD ? "partial batch header" : "batch length past end";
            total = left;
            goto bad;
        }
        if ((size_t)total > cap) {
            cap = (size_t)total;
            buf = sm_xrealloc(buf, cap);
        }
        if ((rc = sm_file_pread(fd, buf, (size_t)total, pos, &got)) || got != (size_t)total)
            goto io_fail;
        if (sm_batch_validate(buf, (size_t)total, &info, &why) != SM_OK)
            goto bad;
        if (info.base_offset != *expect) {
            why = "batch offsets are not contiguous";
            goto bad;
        }
        if ((rc = replay_batch(buf, (size_t)total, &info, fn, ctx, &why))) {
            SM_ERROR(TAG, "%s: position %" PRId64 " offset %" PRId64 ": %s", path, pos,
                     info.base_offset, why ? why : sm_err_str(rc));
            free(buf);
            return rc;
        }
        *expect = sm_batch_last_offset(&info) + 1;
        pos += total;
        continue;
    bad:
        if (last && pos + total >= size) {
            SM_WARN(TAG, "%s: torn batch at position %" PRId64 " (%s); truncating %" PRId64
                         " bytes left by an interrupted write",
                    path, pos, why, size - pos);
            if ((rc = sm_file_truncate(fd, pos)) || (rc = sm_file_datasync(fd)))
                goto io_fail;
            size = pos;
            break;
        }
        SM_ERROR(TAG, "%s: corrupt batch at position %" PRId64 ": %s", path, pos, why);
        free(buf);
        return SM_ERR_CORRUPT;
    }
    free(buf);
    *size_out = size;
    return SM_OK;
io_fail:
    SM_ERROR(TAG, "%s: read failed at position %" PRId64, path, pos);
    free(buf);
    return rc ? rc : SM_ERR_IO;
}

sm_err_t sm_meta_log_open(const char *parent_dir, int64_t segment_bytes, sm_meta_log_record_fn fn,
                          void *ctx, sm_meta_log_t **out)
{
    sm_meta_log_t *l = sm_xcalloc(1, sizeof *l);
    l->dir = sm_xasprintf("%s/%s", parent_dir, SM_META_LOG_DIR_NAME);
    l->segment_bytes = segment_bytes > 0 ? segment_bytes : INT64_MAX;
    l->fd = -1;
    int64_t *bases = NULL;
    int nseg = 0;
    sm_err_t rc;
    if ((rc = sm_file_mkdirs(l->dir)) || (rc = list_segments(l->dir, &bases, &nseg)))
        goto fail;
    int64_t expect = nseg ? bases[0] : 0;
    for (int i = 0; i < nseg; i++) {
        char *path = segment_path(l->dir, bases[i]);
        int fd;
        if (bases[i] != expect) {
            SM_ERROR(TAG, "%s: segment starts at offset %" PRId64 " but the log ends at %" PRId64,
                     path, bases[i], expect);
            free(path);
            rc = SM_ERR_CORRUPT;
            goto fail;
        }
        if ((rc = sm_file_open(path, O_RDWR, &fd))) {
            free(path);
            goto fail;
        }
        int64_t size = 0;
        rc = replay_segment(l, path, fd, i == nseg - 1, &expect, fn, ctx, &size);
        if (rc || i < nseg - 1) {
            sm_file_close(fd);
            free(path);
            if (rc)
                goto fail;
            continue;
        }
        l->fd = fd;
        l->active_path = path;
        l->active_size = size;
    }
    l->end_offset = expect;
    if (l->fd < 0) {
        l->active_path = segment_path(l->dir, expect);
        if ((rc = sm_file_open(l->active_path, O_RDWR | O_CREAT, &l->fd)) ||
            (rc = sm_file_sync_dir(l->dir)))
            goto fail;
    }
    free(bases);
    SM_INFO(TAG, "%s: opened, %d segment(s), end offset %" PRId64, l->dir, nseg ? nseg : 1,
            l->end_offset);
    *out = l;
    return SM_OK;
fail:
    free(bases);
    sm_meta_log_close(l);
    return rc;
}

int64_t sm_meta_log_end_offset(const sm_meta_log_t *l) { return l->end_offset; }

/* Start a new segment at the end offset (the old one is already durable). */
static sm_err_t roll(sm_meta_log_t *l)
{
    char *path = segment_path(l->dir, l->end_offset);
    int fd;
    sm_err_t rc = sm_file_open(path, O_RDWR | O_CREAT | O_TRUNC, &fd);
    if (rc == SM_OK)
        rc = sm_file_sync_dir(l->dir);
    if (rc) {
        free(path);
        return rc;
    }
    sm_file_close(l->fd);
    free(l->active_path);
    l->fd = fd;
    l->active_path = path;
    l->active_size = 0;
    SM_INFO(TAG, "%s: rolled to a new segment at offset %" PRId64, l->dir, l->end_offset);
    return SM_OK;
}

sm_err_t sm_meta_log_commit(sm_meta_log_t *l, int32_t epoch, const sm_meta_log_rec_t *recs, int n,
                            int64_t now_ms, int64_t *base_offset)
{
    SM_ASSERT(n > 0);
    sm_record_in_t *in = sm_xcalloc((size_t)n, sizeof *in);
    for (int i = 0; i < n; i++) {
        in[i].key = NULL;
        in[i].key_len = -1;
        in[i].value = recs[i].value;
        in[i].value_len = (int32_t)recs[i].len;
        in[i].timestamp = now_ms;
    }
    sm_batch_params_t bp = {.base_offset = l->end_offset,
                            .leader_epoch = epoch,
                            .attributes = 0,
                            .producer_id = -1,
                            .producer_epoch = -1,
                            .base_sequence = -1};
    sm_wbuf_t w;
    sm_wbuf_init(&w);
    sm_batch_encode(&w, &bp, in, n);
    free(in);
    sm_err_t rc = SM_OK;
    if (l->active_size > 0 && l->active_size + (int64_t)w.len > l->segment_bytes)
        rc = roll(l);
    if (rc == SM_OK)
        rc = sm_file_pwrite(l->fd, w.mem, w.len, l->active_size);
    if (rc == SM_OK)
        rc = sm_file_datasync(l->fd);
    if (rc) {
        /* leave no partial batch behind: a later append would follow it */
        SM_ERROR(TAG, "%s: append at offset %" PRId64 " failed: %s", l->active_path,
                 l->end_offset, sm_err_str(rc));
        if (sm_file_truncate(l->fd, l->active_size) != SM_OK)
            SM_ERROR(TAG, "%s: cannot cut back to %" PRId64 " bytes", l->active_path,
                     l->active_size);
        sm_wbuf_free(&w);
        return rc;
    }
    l->active_size += (int64_t)w.len;
    *base_offset = l->end_offset;
    l->end_offset += n;
    sm_wbuf_free(&w);
    return SM_OK;
}

void sm_meta_log_close(sm_meta_log_t *l)
{
    if (!l)
        return;
    if (l->fd >= 0)
        sm_file_close(l->fd);
    free(l->active_path);
    free(l->dir);
    free(l);
}
