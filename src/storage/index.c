/*
 * index.c - sparse offset/time index files; see index.h for the format and
 * the storage choice (pread/pwrite plus a small pending buffer, no mmap).
 * The fd of every call belongs to segment files pinned by the caller.
 */
#define _GNU_SOURCE
#include "index.h"

#include "file.h"
#include "../core/log.h"

#include <fcntl.h>
#include <stdlib.h>
#include <string.h>

static void encode(sm_index_kind_t kind, const sm_index_entry_t *e, uint8_t *p)
{
    uint64_t k = (uint64_t)e->key;
    uint32_t v = (uint32_t)e->value;
    int n = 0;
    if (kind == SM_INDEX_TIME) {
        for (int i = 7; i >= 0; i--)
            p[n++] = (uint8_t)(k >> (i * 8));
    } else {
        for (int i = 3; i >= 0; i--)
            p[n++] = (uint8_t)((uint32_t)k >> (i * 8));
    }
    for (int i = 3; i >= 0; i--)
        p[n++] = (uint8_t)(v >> (i * 8));
}

static void decode(sm_index_kind_t kind, const uint8_t *p, sm_index_entry_t *e)
{
    uint64_t k = 0;
    int n = 0;
    if (kind == SM_INDEX_TIME) {
        for (int i = 0; i < 8; i++)
            k = (k << 8) | p[n++];
        e->key = (int64_t)k;
    } else {
        uint32_t k32 = 0;
        for (int i = 0; i < 4; i++)
            k32 = (k32 << 8) | p[n++];
        e->key = (int32_t)k32;
    }
    uint32_t v = 0;
    for (int i = 0; i < 4; i++)
        v = (v << 8) | p[n++];
    e->value = (int32_t)v;
}

/* Entry i of a (fd, ndisk, pending) view. */
static sm_err_t view_get(int fd, sm_index_kind_t kind, int32_t ndisk,
                         const sm_index_entry_t *pending, int32_t i, sm_index_entry_t *e)
{
    if (i >= ndisk) {
        *e = pending[i - ndisk];
        return SM_OK;
    }
    uint8_t buf[12];
    size_t esz = sm_index_entry_size(kind), got;
    sm_err_t err = sm_file_pread(fd, buf, esz, (int64_t)i * (int64_t)esz, &got);
    if (err)
        return err;
    if (got != esz)
        return SM_ERR_NOT_FOUND; /* truncated under us */
    decode(kind, buf, e);
    return SM_OK;
}

/* Index of the first entry with key > key (upper bound), in [0, n]. */
static sm_err_t view_upper_bound(int fd, sm_index_kind_t kind, int32_t ndisk,
                                 const sm_index_entry_t *pending, int32_t n, int64_t key,
                                 int32_t *out)
{
    int32_t lo = 0, hi = n;
    while (lo < hi) {
        int32_t mid = lo + (hi - lo) / 2;
        sm_index_entry_t e;
        sm_err_t err = view_get(fd, kind, ndisk, pending, mid, &e);
        if (err)
            return err;
        if (e.key <= key)
            lo = mid + 1;
        else
            hi = mid;
    }
    *out = lo;
    return SM_OK;
}

void sm_index_init(sm_index_t *ix, sm_index_kind_t kind, int32_t max_entries)
{
    memset(ix, 0, sizeof *ix);
    ix->kind = (uint8_t)kind;
    ix->max_entries = max_entries > 0 ? max_entries : 1;
}

sm_err_t sm_index_load(sm_index_t *ix, int fd)
{
    int64_t size;
    sm_err_t err = sm_file_size(fd, &size);
    if (err)
        return err;
    ix->npending = 0;
    ix->ndisk = 0;
    memset(&ix->last, 0, sizeof ix->last);
    size_t esz = sm_index_entry_size(ix->kind);
    if (size % (int64_t)esz != 0 || size / (int64_t)esz > INT32_MAX)
        return SM_ERR_CORRUPT;
    int32_t n = (int32_t)(size / (int64_t)esz);
    if (n > 0) {
        err = view_get(fd, ix->kind, n, NULL, n - 1, &ix->last);
        if (err)
            return err == SM_ERR_NOT_FOUND ? SM_ERR_CORRUPT : err;
    }
    ix->ndisk = n;
    return SM_OK;
}

void sm_index_close(sm_index_t *ix)
{
    free(ix->pending);
    ix->pending = NULL;
    ix->npending = 0;
}

sm_err_t sm_index_get(const sm_index_t *ix, int fd, int32_t i, sm_index_entry_t *e)
{
    SM_ASSERT(i >= 0 && i < sm_index_count(ix));
    return view_get(fd, ix->kind, ix->ndisk, ix->pending, i, e);
}

sm_err_t sm_index_write_pending(sm_index_t *ix, int fd)
{
    if (ix->npending == 0)
        return SM_OK;
    uint8_t buf[SM_INDEX_PENDING * 12];
    size_t esz = sm_index_entry_size(ix->kind);
    for (int32_t i = 0; i < ix->npending; i++)
        encode(ix->kind, &ix->pending[i], buf + (size_t)i * esz);
    sm_err_t err = sm_file_pwrite(fd, buf, (size_t)ix->npending * esz,
                                  (int64_t)ix->ndisk * (int64_t)esz);
    if (err)
        return err;
    ix->ndisk += ix->npending;
    ix->npending = 0;
    return SM_OK;
}

sm_err_t sm_index_append(sm_index_t *ix, int fd, int64_t key, int32_t value)
{
    if (sm_index_count(ix) > 0 && key <= ix->last.key)
        return SM_OK;
    if (sm_index_full(ix))
        return SM_OK; /* the log rolls before this matters; never overflow */
    if (!ix->pending)
        ix->pending = sm_xmalloc(sizeof(sm_index_entry_t) * SM_INDEX_PENDING);
    if (ix->npending == SM_INDEX_PENDING) {
        sm_err_t err = sm_index_write_pending(ix, fd);
        if (err)
            return err;
    }
    ix->pending[ix->npending].key = key;
    ix->pending[ix->npending].value = value;
    ix->npending++;
    ix->last.key = key;
    ix->last.value = value;
    return SM_OK;
}

sm_err_t sm_index_truncate(sm_index_t *ix, int fd, int32_t n)
{
    SM_ASSERT(n >= 0 && n <= sm_index_count(ix));
    if (n >= ix->ndisk) {
        ix->npending = n - ix->ndisk;
    } else {
        sm_err_t err = sm_file_truncate(fd, (int64_t)n * (int64_t)sm_index_entry_size(ix->kind));
        if (err)
            return err;
        ix->ndisk = n;
        ix->npending = 0;
    }
    if (n > 0)
        return sm_index_get(ix, fd, n - 1, &ix->last);
    memset(&ix->last, 0, sizeof ix->last);
    return SM_OK;
}

sm_err_t sm_index_reset(sm_index_t *ix, int fd)
{
    sm_err_t err = sm_file_truncate(fd, 0);
    if (err)
        return err;
    ix->ndisk = 0;
    ix->npending = 0;
    memset(&ix->last, 0, sizeof ix->last);
    return SM_OK;
}

void sm_index_release_buffer(sm_index_t *ix)
{
    if (ix->npending == 0) {
        free(ix->pending);
        ix->pending = NULL;
    }
}

void sm_index_snapshot(const sm_index_t *ix, int fd, sm_index_snap_t *s)
{
    s->fd = fd;
    s->kind = ix->kind;
    s->ndisk = ix->ndisk;
    s->npending = ix->npending;
    if (ix->npending)
        memcpy(s->pending, ix->pending, sizeof(sm_index_entry_t) * (size_t)ix->npending);
}

sm_err_t sm_index_snap_lookup(const sm_index_snap_t *s, int64_t key, sm_index_entry_t *e)
{
    int32_t n = s->ndisk + s->npending, ub = 0;
    sm_err_t err;
    /* The newest entries are the likeliest targets (consumers near the end):
     * check the in-memory ones before touching the file. */
    if (s->npending && s->pending[0].key <= key) {
        err = view_upper_bound(-1, s->kind, 0, s->pending, s->npending, key, &ub);
        *e = s->pending[ub - 1];
        return err;
    }
    err = view_upper_bound(s->fd, s->kind, s->ndisk, s->pending, n, key, &ub);
    if (err)
        return err;
    if (ub == 0)
        return SM_ERR_NOT_FOUND;
    return view_get(s->fd, s->kind, s->ndisk, s->pending, ub - 1, e);
}
