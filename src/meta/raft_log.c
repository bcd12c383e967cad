/*
 * raft_log.c - sm_raft_log_ops_t over a storage partition log (raft_log.h).
 */
#include "raft_log.h"

#include "batch.h"
#include "buf.h"
#include "log.h"
#include "meta_log.h"
#include "sm_proto_gen.h"
#include "meta_snapshot.h"
#include "storage/file.h"

#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>

#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define TAG "raft"
#define MAX_VOTERS 16

struct sm_raft_storage_log {
    sm_log_t *log;
    char *dir; /* the partition directory: snapshots live there too */
    sm_raft_offset_epoch_t latest; /* newest complete snapshot (epoch -1: none) */
    int part_fd;                   /* a snapshot being fetched (-1: none) */
    char *part_path;
    sm_raft_offset_epoch_t part_id;
    int64_t part_len;
    int32_t voters[MAX_VOTERS];
    int nvoters;
    uint8_t *rbuf; /* the last read's bytes, valid until the next call */
    size_t rcap;
    uint8_t *wbuf; /* scratch for follower appends (the log patches in place) */
    size_t wcap;
};

sm_err_t sm_raft_storage_log_open(const char *parent_dir, int64_t segment_bytes,
                                  const int32_t *voters, int nvoters, sm_raft_storage_log_t **out)
{
    if (nvoters < 0 || nvoters > MAX_VOTERS)
        return SM_ERR_INVALID;
    sm_raft_storage_log_t *l = sm_xcalloc(1, sizeof *l);
    memcpy(l->voters, voters, sizeof *voters * (size_t)nvoters);
    l->nvoters = nvoters;
    sm_log_config_t cfg;
    sm_log_config_default(&cfg);
    if (segment_bytes > 0)
        cfg.segment_bytes = segment_bytes;
    cfg.retention_ms = -1; /* snapshots, not retention, bound the metadata log */
    cfg.retention_bytes = -1;
    cfg.cache_window_bytes = 0;
    char *dir = sm_xasprintf("%s/%s", parent_dir, SM_META_LOG_DIR_NAME);
    sm_err_t rc = sm_log_open(dir, SM_META_LOG_DIR_NAME, &cfg, &l->log);
    if (rc != SM_OK) {
        free(dir);
        free(l);
        return rc;
    }
    l->dir = dir;
    l->part_fd = -1;
    l->latest = (sm_raft_offset_epoch_t){-1, -1};
    sm_snapshot_id_t sid;
    if (sm_meta_snapshot_newest(dir, &sid))
        l->latest = (sm_raft_offset_epoch_t){sid.epoch, sid.end_offset};
    *out = l;
    return SM_OK;
}

void sm_raft_storage_log_close(sm_raft_storage_log_t *l)
{
    if (!l)
        return;
    sm_log_close(l->log);
    if (l->part_fd >= 0) {
        sm_file_close(l->part_fd);
        (void)sm_file_unlink(l->part_path);
    }
    free(l->part_path);
    free(l->dir);
    free(l->rbuf);
    free(l->wbuf);
    free(l);
}

sm_log_t *sm_raft_storage_log_log(sm_raft_storage_log_t *l) { return l->log; }

static int32_t op_last_epoch(void *ctx)
{
    sm_raft_storage_log_t *l = ctx;
    int32_t e;
    int64_t end;
    if (sm_log_epoch_end_offset(l->log, INT32_MAX, &e, &end) != SM_OK || e < 0) {
        /* nothing retained: the log continues the snapshot it starts at */
        if (l->latest.epoch >= 0 && l->latest.end_offset == sm_log_start_offset(l->log))
            return l->latest.epoch;
        return 0;
    }
    return e;
}

/* One LeaderChangeMessage control record (Kafka's control record key:
 * version 0, type LEADER_CHANGE). */
static void encode_leader_change(sm_raft_storage_log_t *l, sm_wbuf_t *w, int32_t epoch,
                                 int32_t leader_id, int64_t base)
{
    sm_leader_change_message_t m;
    sm_leader_change_message_init(&m);
    sm_leader_change_message_voter_t v[MAX_VOTERS];
    for (int i = 0; i < l->nvoters; i++) {
        sm_leader_change_message_voter_init(&v[i]);
        v[i].voter_id = l->voters[i];
    }
    m.leader_id = leader_id;
    m.voters = v;
    m.voters_count = l->nvoters;
    m.granting_voters = v;
    m.granting_voters_count = l->nvoters;
    sm_wbuf_t value;
    sm_wbuf_init(&value);
    sm_leader_change_message_encode(&value, 0, &m);
    uint8_t key[4] = {0, 0, 0, SM_CONTROL_LEADER_CHANGE};
    sm_record_in_t rec = {.key = key, .key_len = 4, .value = value.mem,
                          .value_len = (int32_t)value.len, .timestamp = sm_now_wall_ms()};
    sm_batch_params_t bp = {.base_offset = base, .leader_epoch = epoch,
                            .attributes = SM_BATCH_ATTR_CONTROL, .producer_id = -1,
                            .producer_epoch = -1, .base_sequence = -1};
    sm_batch_encode(w, &bp, &rec, 1);
    sm_wbuf_free(&value);
}

static sm_err_t op_append(void *ctx, const sm_raft_append_t *a, int64_t *base_out)
{
    sm_raft_storage_log_t *l = ctx;
    if (a->count < 1 || a->epoch < op_last_epoch(l))
        return SM_ERR_INVALID;
    int64_t base = sm_log_end_offset(l->log);
    sm_wbuf_t w;
    sm_wbuf_init(&w);
    sm_err_t rc;
    if (a->control_type == SM_RAFT_CONTROL_LEADER_CHANGE) {
        encode_leader_change(l, &w, a->epoch, a->leader_id, base);
    } else {
        /* data: one whole record batch of `count` records (the controller
         * encodes its metadata records so); the log stamps offset and epoch */
        sm_batch_info_t info;
        const char *why = NULL;
        if (!a->data || sm_batch_validate(a->data, a->len, &info, &why) != SM_OK ||
            sm_batch_total_size(&info) != (int64_t)a->len || info.record_count != a->count) {
            SM_WARN(TAG, "refusing a proposal that is not one batch of %d records: %s",
                    a->count, why ? why : "size or count mismatch");
            return SM_ERR_INVALID;
        }
        sm_wbuf_reserve(&w, a->len);
        memcpy(w.mem, a->data, a->len);
        w.len = a->len;
    }
    sm_append_info_t info;
    rc = sm_log_append(l->log, w.mem, w.len, a->epoch, sm_now_wall_ms(), &info);
    sm_wbuf_free(&w);
    if (rc == SM_OK)
        *base_out = info.base_offset;
    return rc;
}

static sm_err_t op_append_fetched(void *ctx, const uint8_t *bytes, size_t len)
{
    sm_raft_storage_log_t *l = ctx;
    /* Check everything first: a bad batch from the peer appends nothing. */
    int64_t expect = sm_log_end_offset(l->log);
    int32_t epoch = op_last_epoch(l);
    size_t at = 0;
    while (at < len) {
        sm_batch_info_t info;
        const char *why = NULL;
        sm_err_t rc = sm_batch_validate(bytes + at, len - at, &info, &why);
        if (rc != SM_OK) {
            SM_WARN(TAG, "fetched metadata batch at byte %zu refused: %s", at, why ? why : "");
            return rc == SM_ERR_PARSE ? SM_ERR_PARSE : SM_ERR_CORRUPT;
        }
        if (info.base_offset != expect || info.leader_epoch < epoch)
            return SM_ERR_RANGE;
        expect = sm_batch_last_offset(&info) + 1;
        epoch = info.leader_epoch;
        at += (size_t)sm_batch_total_size(&info);
    }
    if (len > l->wcap) {
        l->wcap = len;
        l->wbuf = sm_xrealloc(l->wbuf, l->wcap);
    }
    memcpy(l->wbuf, bytes, len);
    at = 0;
    while (at < len) {
        sm_batch_info_t info;
        sm_err_t rc = sm_batch_header_parse(l->wbuf + at, len - at, &info);
        if (rc != SM_OK)
            return rc;
        size_t n = (size_t)sm_batch_total_size(&info);
        sm_append_info_t ai;
        rc = sm_log_append(l->log, l->wbuf + at, n, info.leader_epoch, sm_now_wall_ms(), &ai);
        if (rc != SM_OK)
            return rc;
        SM_ASSERT(ai.base_offset == info.base_offset); /* checked contiguous above */
        at += n;
    }
    return SM_OK;
}

static sm_err_t op_read(void *ctx, int64_t offset, size_t max_bytes, const uint8_t **bytes,
                        size_t *len)
{
    sm_raft_storage_log_t *l = ctx;
    sm_log_slice_t sl;
    int32_t max = max_bytes > INT32_MAX ? INT32_MAX : (int32_t)max_bytes;
    sm_err_t rc = sm_log_read(l->log, offset, INT64_MAX, max, true, &sl);
    if (rc != SM_OK)
        return rc;
    *bytes = NULL;
    *len = 0;
    if (sl.len > 0) {
        if ((size_t)sl.len > l->rcap) {
            l->rcap = (size_t)sl.len;
            l->rbuf = sm_xrealloc(l->rbuf, l->rcap);
        }
        ssize_t got = pread(sl.fd, l->rbuf, (size_t)sl.len, (off_t)sl.file_pos);
        sm_ref_release(sl.ref);
        if (got != sl.len)
            return SM_ERR_IO;
        *bytes = l->rbuf;
        *len = (size_t)sl.len;
    } else if (sl.ref) {
        sm_ref_release(sl.ref);
    }
    return SM_OK;
}

static sm_err_t op_truncate(void *ctx, int64_t offset)
{
    sm_raft_storage_log_t *l = ctx;
    if (offset < sm_log_start_offset(l->log))
        return SM_ERR_RANGE;
    return sm_log_truncate_to(l->log, offset);
}

static sm_err_t op_flush(void *ctx) { return sm_log_flush(((sm_raft_storage_log_t *)ctx)->log); }
static int64_t op_start(void *ctx) { return sm_log_start_offset(((sm_raft_storage_log_t *)ctx)->log); }
static int64_t op_end(void *ctx) { return sm_log_end_offset(((sm_raft_storage_log_t *)ctx)->log); }
static int64_t op_flushed(void *ctx)
{
    return sm_log_durable_offset(((sm_raft_storage_log_t *)ctx)->log);
}

static sm_raft_offset_epoch_t op_end_for_epoch(void *ctx, int32_t epoch)
{
    sm_raft_storage_log_t *l = ctx;
    int32_t e;
    int64_t end;
    if (sm_log_epoch_end_offset(l->log, epoch, &e, &end) != SM_OK || e < 0) {
        /* older than anything retained: the snapshot at the log start */
        int64_t start = sm_log_start_offset(l->log);
        if (l->latest.epoch >= 0 && l->latest.epoch <= epoch && l->latest.end_offset == start)
            return (sm_raft_offset_epoch_t){l->latest.epoch, start};
        return (sm_raft_offset_epoch_t){0, start};
    }
    return (sm_raft_offset_epoch_t){e, end};
}

/* ------------------------------------------------------------- snapshots */

static char *snapshot_path(const sm_raft_storage_log_t *l, sm_raft_offset_epoch_t id)
{
    char name[SM_SNAPSHOT_NAME_MAX + 8];
    sm_snapshot_name_format(name, sizeof name, (sm_snapshot_id_t){id.end_offset, id.epoch},
                            SM_SNAPSHOT_COMPLETE, NULL);
    return sm_xasprintf("%s/%s", l->dir, name);
}

static sm_raft_offset_epoch_t op_snap_latest(void *ctx)
{
    return ((sm_raft_storage_log_t *)ctx)->latest;
}

static sm_err_t op_snap_read(void *ctx, sm_raft_offset_epoch_t id, int64_t position,
                             size_t max_bytes, const uint8_t **bytes, size_t *len, int64_t *size)
{
    sm_raft_storage_log_t *l = ctx;
    char *path = snapshot_path(l, id);
    int fd;
    sm_err_t rc = sm_file_open(path, O_RDONLY | O_CLOEXEC, &fd);
    free(path);
    if (rc)
        return SM_ERR_NOT_FOUND; /* replaced by a newer one meanwhile */
    rc = sm_file_size(fd, size);
    if (rc == SM_OK && position > *size)
        rc = SM_ERR_RANGE;
    size_t want = 0;
    if (rc == SM_OK) {
        want = (size_t)(*size - position) < max_bytes ? (size_t)(*size - position) : max_bytes;
        if (want > l->rcap) {
            l->rcap = want;
            l->rbuf = sm_xrealloc(l->rbuf, l->rcap);
        }
        size_t got = 0;
        rc = want ? sm_file_pread(fd, l->rbuf, want, position, &got) : SM_OK;
        if (rc == SM_OK && got != want)
            rc = SM_ERR_IO;
    }
    sm_file_close(fd);
    if (rc == SM_OK) {
        *bytes = l->rbuf;
        *len = want;
    }
    return rc;
}

static sm_err_t op_snap_write(void *ctx, sm_raft_offset_epoch_t id, int64_t position,
                              const uint8_t *bytes, size_t len)
{
    sm_raft_storage_log_t *l = ctx;
    if (position == 0) {
        if (l->part_fd >= 0) {
            sm_file_close(l->part_fd);
            (void)sm_file_unlink(l->part_path);
            l->part_fd = -1;
        }
        free(l->part_path);
        char name[SM_SNAPSHOT_NAME_MAX + 32];
        char unique[24];
        snprintf(unique, sizeof unique, "%08x", (unsigned)(sm_now_mono_us() & 0xffffffffu));
        sm_snapshot_name_format(name, sizeof name, (sm_snapshot_id_t){id.end_offset, id.epoch},
                                SM_SNAPSHOT_PARTIAL, unique);
        l->part_path = sm_xasprintf("%s/%s", l->dir, name);
        sm_err_t rc = sm_file_open(l->part_path, O_CREAT | O_TRUNC | O_WRONLY | O_CLOEXEC,
                                   &l->part_fd);
        if (rc) {
            l->part_fd = -1;
            return rc;
        }
        l->part_id = id;
        l->part_len = 0;
    }
    if (l->part_fd < 0 || l->part_id.end_offset != id.end_offset ||
        l->part_id.epoch != id.epoch || position != l->part_len)
        return SM_ERR_INVALID; /* chunks come in order, of one snapshot */
    sm_err_t rc = len ? sm_file_pwrite(l->part_fd, bytes, len, position) : SM_OK;
    if (rc == SM_OK)
        l->part_len += (int64_t)len;
    return rc;
}

static sm_err_t op_snap_install(void *ctx, sm_raft_offset_epoch_t id)
{
    sm_raft_storage_log_t *l = ctx;
    if (l->part_fd < 0 || l->part_id.end_offset != id.end_offset || l->part_id.epoch != id.epoch)
        return SM_ERR_INVALID;
    /* The bytes must be a whole snapshot before anything is dropped. */
    uint8_t *buf = sm_xmalloc((size_t)l->part_len + 1);
    size_t got = 0;
    int rfd;
    sm_err_t rc = sm_file_open(l->part_path, O_RDONLY | O_CLOEXEC, &rfd);
    if (rc == SM_OK) {
        rc = sm_file_pread(rfd, buf, (size_t)l->part_len, 0, &got);
        sm_file_close(rfd);
    }
    const char *why = NULL;
    if (rc == SM_OK && (got != (size_t)l->part_len || !sm_meta_snapshot_valid(buf, got, &why))) {
        SM_WARN(TAG, "fetched snapshot %" PRId64 "-%d refused: %s", id.end_offset, id.epoch,
                why ? why : "short");
        rc = SM_ERR_CORRUPT;
    }
    free(buf);
    if (rc == SM_OK)
        rc = sm_file_datasync(l->part_fd);
    sm_file_close(l->part_fd);
    l->part_fd = -1;
    char *final_path = snapshot_path(l, id);
    if (rc == SM_OK)
        rc = sm_file_rename(l->part_path, final_path);
    if (rc == SM_OK)
        rc = sm_file_sync_dir(l->dir);
    free(final_path);
    if (rc != SM_OK) {
        (void)sm_file_unlink(l->part_path);
        return rc;
    }
    rc = sm_log_reset(l->log, id.end_offset);
    if (rc != SM_OK)
        return rc;
    l->latest = id;
    SM_INFO(TAG, "%s: installed the leader's snapshot %" PRId64 "-%d; the log restarts there",
            l->dir, id.end_offset, id.epoch);
    return SM_OK;
}

void sm_raft_storage_log_snapshot_taken(sm_raft_storage_log_t *l, int64_t end_offset,
                                        int32_t epoch, int64_t max_log_bytes)
{
    if (end_offset > l->latest.end_offset)
        l->latest = (sm_raft_offset_epoch_t){epoch, end_offset};
    /* Retention: past max_log_bytes, the log starts at the latest snapshot
     * (whole segments below it go); followers behind it fetch the snapshot. */
    if (max_log_bytes < 0 || sm_log_size_bytes(l->log) <= max_log_bytes)
        return;
    int64_t start = l->latest.end_offset;
    if (start > sm_log_start_offset(l->log) && start <= sm_log_end_offset(l->log) &&
        sm_log_delete_records(l->log, start) == SM_OK)
        SM_INFO(TAG, "%s: log start moved to the snapshot at %" PRId64, l->dir, start);
}

const sm_raft_log_ops_t sm_raft_storage_log_ops = {
    .append = op_append,
    .append_fetched = op_append_fetched,
    .read = op_read,
    .truncate = op_truncate,
    .flush = op_flush,
    .start_offset = op_start,
    .end_offset = op_end,
    .flushed_offset = op_flushed,
    .last_epoch = op_last_epoch,
    .end_offset_for_epoch = op_end_for_epoch,
    .snapshot_latest = op_snap_latest,
    .snapshot_read = op_snap_read,
    .snapshot_write = op_snap_write,
    .snapshot_install = op_snap_install,
};
