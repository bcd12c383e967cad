/*
 * meta_quorum.c - the metadata log behind meta_log.h, run through the KRaft
 * quorum (src/raft) over a storage partition log (raft_log.c).
 *
 * Open: the storage log __cluster_metadata-0 recovers like any partition log
 * (a torn tail after a crash is cut off); every committed batch is replayed
 * through the caller's function (control batches such as LeaderChange are
 * skipped); the quorum starts from its quorum-state file and, as the only
 * voter, elects itself at once: a new epoch, whose LeaderChange record is
 * committed before the controller takes requests.
 *
 * Commit: the records become one batch proposed to the quorum; the quorum
 * appends it, flushes (fdatasync) and moves its high watermark past it; only
 * then does commit return. The quorum-state file is written (tmp, fsync,
 * rename, fsync dir) before any message that depends on it could leave.
 *
 * Today the quorum has one voter, this node (controller.quorum.voters of one
 * entry, the single-node mode): a quorum of several voters needs the
 * network side (raft_wire.c over the node-to-node client) and is refused at
 * open with a clear message. Not thread-safe: the controller serialises calls
 * under its lock.
 */
#include "meta_log.h"

#include "batch.h"
#include "buf.h"
#include "log.h"
#include "quorum_state.h"
#include "raft.h"
#include "raft_log.h"
#include "storage/file.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define TAG "meta"
#define MAX_DRIVE_STEPS 1000

struct sm_meta_log {
    sm_raft_storage_log_t *rlog;
    sm_raft_t *raft;
    char *qs_dir; /* the log's directory, where quorum-state lives */
    uint64_t rng;
    sm_err_t io_err; /* a failed quorum-state write: the quorum cannot go on */
};

static const sm_raft_fs_t qs_fs = {sm_file_open,     sm_file_close, sm_file_pread,
                                   sm_file_pwrite,   sm_file_datasync, sm_file_size,
                                   sm_file_rename,   sm_file_sync_dir, sm_file_unlink};

static uint64_t rnd(void *ctx)
{
    uint64_t *s = ctx;
    *s ^= *s << 13;
    *s ^= *s >> 7;
    *s ^= *s << 17;
    return *s;
}

/* The host's duty after every call into the quorum: make the pending
 * quorum state durable, then send the outbox (one voter: nobody to send to). */
static void quorum_io(sm_meta_log_t *l)
{
    sm_raft_quorum_state_t s;
    if (sm_raft_save_pending(l->raft, &s)) {
        sm_quorum_state_t q;
        sm_quorum_state_init(&q);
        q.leader_id = s.leader_id;
        q.leader_epoch = s.epoch;
        q.voted_id = s.voted_id;
        sm_err_t rc = sm_quorum_state_write(&qs_fs, l->qs_dir, &q, 1);
        sm_quorum_state_free(&q);
        if (rc != SM_OK) {
            SM_ERROR(TAG, "%s/%s: cannot write the quorum state: %s", l->qs_dir,
                     SM_QUORUM_STATE_FILE, sm_err_str(rc));
            l->io_err = rc;
            return; /* the save is not acknowledged: nothing that needs it leaves */
        }
        sm_raft_save_done(l->raft, &s);
    }
    sm_raft_msg_t m;
    while (sm_raft_outbox_next(l->raft, &m))
        SM_DEBUG(TAG, "quorum: no peer to send %s to (single voter)", sm_raft_msg_kind_name(m.kind));
}

/* Tick the quorum until its high watermark reaches target (or it is not the
 * leader, or a save failed). */
static sm_err_t drive_until(sm_meta_log_t *l, int64_t target)
{
    for (int i = 0; i < MAX_DRIVE_STEPS; i++) {
        quorum_io(l);
        if (l->io_err)
            return l->io_err;
        if (sm_raft_state(l->raft) == SM_RAFT_LEADER && sm_raft_committed(l->raft) >= target)
            return SM_OK;
        sm_raft_tick(l->raft, sm_now_mono_ms());
    }
    quorum_io(l);
    SM_ERROR(TAG, "metadata quorum: %s in epoch %d, high watermark %" PRId64 " short of %" PRId64,
             sm_raft_state_name(sm_raft_state(l->raft)), sm_raft_epoch(l->raft),
             sm_raft_committed(l->raft), target);
    return SM_ERR_IO;
}

/* Feed every record of one batch to fn. */
static sm_err_t replay_batch(const uint8_t *p, size_t len, const sm_batch_info_t *info,
                             sm_meta_log_record_fn fn, void *ctx, const char **why)
{
    if (info->attributes & SM_BATCH_ATTR_CONTROL)
        return SM_OK; /* LeaderChange and other quorum control records */
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

/* Every batch from the log start to its end, in order. */
static sm_err_t replay(sm_meta_log_t *l, const char *dir, sm_meta_log_record_fn fn, void *ctx)
{
    const sm_raft_log_ops_t *ops = &sm_raft_storage_log_ops;
    int64_t off = ops->start_offset(l->rlog), end = ops->end_offset(l->rlog);
    while (off < end) {
        const uint8_t *bytes;
        size_t len;
        sm_err_t rc = ops->read(l->rlog, off, 1 << 20, &bytes, &len);
        if (rc != SM_OK || len == 0) {
            SM_ERROR(TAG, "%s: cannot read the metadata log at offset %" PRId64 ": %s", dir, off,
                     rc ? sm_err_str(rc) : "no batch");
            return rc ? rc : SM_ERR_CORRUPT;
        }
        size_t at = 0;
        while (at < len) {
            sm_batch_info_t info;
            const char *why = NULL;
            rc = sm_batch_validate(bytes + at, len - at, &info, &why);
            if (rc == SM_OK && info.base_offset != off && sm_batch_last_offset(&info) >= off) {
                why = "batch offsets are not contiguous";
                rc = SM_ERR_CORRUPT;
            }
            if (rc == SM_OK && sm_batch_last_offset(&info) >= off)
                rc = replay_batch(bytes + at, (size_t)sm_batch_total_size(&info), &info, fn, ctx,
                                  &why);
            if (rc != SM_OK) {
                SM_ERROR(TAG, "%s: offset %" PRId64 ": %s", dir, off, why ? why : sm_err_str(rc));
                return rc == SM_ERR_PARSE || rc == SM_ERR_CORRUPT ? SM_ERR_CORRUPT : rc;
            }
            if (sm_batch_last_offset(&info) >= off)
                off = sm_batch_last_offset(&info) + 1;
            at += (size_t)sm_batch_total_size(&info);
        }
    }
    return SM_OK;
}

sm_err_t sm_meta_log_open(const char *parent_dir, int64_t segment_bytes, int32_t node_id,
                          const int32_t *voters, int nvoters, sm_meta_log_record_fn fn, void *ctx,
                          sm_meta_log_t **out)
{
    if (nvoters != 1 || voters[0] != node_id) {
        SM_ERROR(TAG, "controller.quorum.voters names %d voter(s): a quorum of several "
                      "controllers is not supported yet; run one combined node (its own id as the "
                      "only voter)",
                 nvoters);
        return SM_ERR_UNSUPPORTED;
    }
    sm_meta_log_t *l = sm_xcalloc(1, sizeof *l);
    l->qs_dir = sm_xasprintf("%s/%s", parent_dir, SM_META_LOG_DIR_NAME);
    l->rng = (uint64_t)sm_now_mono_us() * 0x9e3779b97f4a7c15ull | 1;
    sm_err_t rc = sm_raft_storage_log_open(parent_dir, segment_bytes, voters, nvoters, &l->rlog);
    if (rc != SM_OK)
        goto fail;
    if ((rc = replay(l, l->qs_dir, fn, ctx)) != SM_OK)
        goto fail;
    sm_quorum_state_t q;
    sm_quorum_state_init(&q);
    char why[256] = "";
    rc = sm_quorum_state_read(&qs_fs, l->qs_dir, &q, why, sizeof why);
    if (rc != SM_OK && rc != SM_ERR_NOT_FOUND) {
        SM_ERROR(TAG, "%s", why);
        sm_quorum_state_free(&q);
        goto fail;
    }
    sm_raft_config_t c;
    sm_raft_config_defaults(&c);
    c.node_id = node_id;
    c.n_voters = nvoters;
    memcpy(c.voters, voters, sizeof *voters * (size_t)nvoters);
    c.append_linger_ms = 0; /* a commit is answered after its fsync, not a linger later */
    if (rc == SM_OK) {
        c.initial.epoch = q.leader_epoch;
        c.initial.voted_id = q.voted_id;
        c.initial.leader_id = q.leader_id;
    } else {
        c.initial = (sm_raft_quorum_state_t){0, SM_RAFT_NO_ID, SM_RAFT_NO_ID};
    }
    sm_quorum_state_free(&q);
    sm_raft_env_t env = {.log = &sm_raft_storage_log_ops, .log_ctx = l->rlog, .rand = rnd,
                         .rand_ctx = &l->rng};
    l->raft = sm_raft_new(&c, &env, sm_now_mono_ms());
    if (!l->raft) {
        rc = SM_ERR_INVALID;
        goto fail;
    }
    /* elected, and the new epoch's LeaderChange committed */
    if ((rc = drive_until(l, sm_raft_storage_log_ops.end_offset(l->rlog) + 1)) != SM_OK)
        goto fail;
    SM_INFO(TAG, "%s: opened; metadata quorum leader in epoch %d, end offset %" PRId64,
            l->qs_dir, sm_raft_epoch(l->raft), sm_meta_log_end_offset(l));
    *out = l;
    return SM_OK;
fail:
    sm_meta_log_close(l);
    return rc;
}

int64_t sm_meta_log_end_offset(const sm_meta_log_t *l)
{
    return sm_raft_storage_log_ops.end_offset(l->rlog);
}

int32_t sm_meta_log_epoch(const sm_meta_log_t *l) { return sm_raft_epoch(l->raft); }

sm_err_t sm_meta_log_commit(sm_meta_log_t *l, const sm_meta_log_rec_t *recs, int n, int64_t now_ms,
                            int64_t *base_offset)
{
    SM_ASSERT(n > 0);
    if (l->io_err)
        return l->io_err;
    sm_record_in_t *in = sm_xcalloc((size_t)n, sizeof *in);
    for (int i = 0; i < n; i++)
        in[i] = (sm_record_in_t){.key = NULL, .key_len = -1, .value = recs[i].value,
                                 .value_len = (int32_t)recs[i].len, .timestamp = now_ms};
    sm_batch_params_t bp = {.base_offset = 0, .leader_epoch = -1, .attributes = 0,
                            .producer_id = -1, .producer_epoch = -1, .base_sequence = -1};
    sm_wbuf_t w;
    sm_wbuf_init(&w);
    sm_batch_encode(&w, &bp, in, n);
    free(in);
    int64_t off = sm_raft_propose(l->raft, sm_now_mono_ms(), w.mem, w.len, n);
    sm_wbuf_free(&w);
    if (off < 0) {
        SM_ERROR(TAG, "metadata quorum refused a batch of %d records (%s)", n,
                 off == SM_RAFT_NOT_LEADER ? "not the leader" : "rejected");
        quorum_io(l);
        return off == SM_RAFT_NOT_LEADER ? SM_ERR_CLOSED : SM_ERR_IO;
    }
    sm_err_t rc = drive_until(l, off + n);
    if (rc != SM_OK)
        return rc;
    *base_offset = off;
    return SM_OK;
}

void sm_meta_log_close(sm_meta_log_t *l)
{
    if (!l)
        return;
    sm_raft_free(l->raft);
    sm_raft_storage_log_close(l->rlog);
    free(l->qs_dir);
    free(l);
}
