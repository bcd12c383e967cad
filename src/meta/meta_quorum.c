/*
 * meta_quorum.c - the metadata log behind meta_log.h: the KRaft quorum of
 * src/raft over a storage partition log (raft_log.c), hosted on a thread of
 * its own.
 *
 * The quorum thread runs one event loop that owns the sm_raft_t object, its
 * timer, and one node-to-node connection (src/env/peer.c) per other voter.
 * Everything that touches the raft object happens there:
 *
 *   other threads                     quorum thread
 *   ─────────────                     ─────────────
 *   sm_meta_log_commit ──post──►  propose ─┐
 *   sm_meta_log_deliver ─post──►  step ────┤ after every call (host duty):
 *   (inbound Vote, Fetch, ...)    tick ────┤  1. quorum-state save, durable
 *                                          │  2. outbox: requests to peers,
 *                                          │     responses to waiting RPCs
 *                                          │  3. view (leader, epoch, hw)
 *   drain ◄── queue of committed ◄─────────┘     under mu; notify()
 *             records (copies)
 *
 * The committed callback copies every record between the old and the new
 * high watermark into a queue, so the image is built only from committed
 * records, on every node, by whoever drains (the controller lock).
 */
#include "meta_log.h"

#include "batch.h"
#include "buf.h"
#include "log.h"
#include "loop.h"
#include "peer.h"
#include "quorum_state.h"
#include "raft.h"
#include "raft_log.h"
#include "raft_wire.h"
#include "storage/file.h"

#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define TAG "quorum"
#define MAX_PENDING_IN 4096 /* inbound quorum RPCs waiting for an answer */

/* Versions this node speaks to its peers (all flexible: header v2 / v1). */
#define VOTE_VERSION 2
#define EPOCH_VERSION 1
#define FETCH_VERSION 16
#define FETCH_SNAPSHOT_VERSION 0

typedef struct committed_rec {
    int64_t offset;
    int32_t epoch; /* of its batch */
    uint8_t *value;
    size_t len;
} committed_rec_t;

typedef struct pending_in { /* an inbound RPC the quorum has not answered yet */
    int64_t corr;
    int64_t deadline_ms;
    sm_meta_log_reply_fn reply;
    void *ctx;
} pending_in_t;

typedef struct voter_peer {
    int32_t id;
    char *host;
    int port;
    sm_peer_t *peer; /* quorum thread; NULL for this node */
} voter_peer_t;

typedef struct proposal { /* a commit handed to the quorum thread */
    sm_meta_log_t *l;
    uint8_t *bytes;
    size_t len;
    int32_t count;
    int64_t offset; /* result: first offset, or SM_RAFT_NOT_LEADER / REJECTED */
    int32_t epoch;  /* the epoch it was proposed in */
    bool done;
} proposal_t;

struct sm_meta_log {
    /* ---- quorum thread only (after open) */
    sm_raft_storage_log_t *rlog;
    sm_raft_t *raft;
    char *qs_dir;
    char *cluster_id;
    uint64_t rng;
    int32_t node_id;
    voter_peer_t *voters;
    int nvoters;
    sm_loop_t *loop;
    bool thread_running;
    uint64_t timer_id;
    int64_t timer_at;
    int64_t next_corr;
    pending_in_t *pend;
    int npend, cappend;
    uint64_t sweep_timer;
    int32_t request_timeout_ms;
    bool stopping; /* the loop is being stopped */
    void (*notify)(void *ctx);
    bool was_active; /* what the last notify reported (under mu) */
    int64_t applied_end; /* records below: applied from a snapshot, not queued (mu) */
    int64_t reload_end;  /* a fetched snapshot replaced the log: reload (-1: no; mu) */
    int64_t max_log_bytes; /* metadata.max.retention.bytes (-1: keep everything) */
    void *notify_ctx;

    /* ---- shared, under mu */
    pthread_mutex_t mu;
    pthread_cond_t cv;
    committed_rec_t *q; /* committed records not yet drained */
    size_t qhead, qlen, qcap;
    int64_t hw;
    int64_t end_offset;
    int32_t leader, epoch;
    sm_raft_state_t state;
    int64_t epoch_start; /* leader: end offset right after its LeaderChange */
    sm_err_t fatal;
    sm_raft_describe_t desc;
    bool closing;
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

static void set_fatal(sm_meta_log_t *l, sm_err_t rc)
{
    pthread_mutex_lock(&l->mu);
    if (!l->fatal)
        l->fatal = rc;
    pthread_cond_broadcast(&l->cv);
    pthread_mutex_unlock(&l->mu);
}

/* ------------------------------------------------------------ committed */

static void queue_push(sm_meta_log_t *l, int64_t off, int32_t epoch, const uint8_t *v, size_t len)
{
    if (l->qhead + l->qlen == l->qcap) {
        if (l->qhead > 0) {
            memmove(l->q, l->q + l->qhead, l->qlen * sizeof *l->q);
            l->qhead = 0;
        }
        if (l->qlen == l->qcap) {
            l->qcap = l->qcap ? 2 * l->qcap : 256;
            l->q = sm_xrealloc(l->q, l->qcap * sizeof *l->q);
        }
    }
    uint8_t *copy = sm_xmalloc(len ? len : 1);
    memcpy(copy, v, len);
    l->q[l->qhead + l->qlen++] = (committed_rec_t){off, epoch, copy, len};
}

/* Records of one batch into the queue (under mu); control batches skipped. */
static sm_err_t queue_batch(sm_meta_log_t *l, const uint8_t *p, size_t len,
                            const sm_batch_info_t *info, int64_t from, int64_t to,
                            const char **why)
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
        int64_t off = info->base_offset + rec.offset_delta;
        if (off < from || off >= to)
            continue;
        if (!rec.value) {
            *why = "metadata record without a value";
            return SM_ERR_CORRUPT;
        }
        queue_push(l, off, info->leader_epoch, rec.value, (size_t)rec.value_len);
    }
    if (rc != SM_ERR_NOT_FOUND) {
        *why = "malformed record in metadata batch";
        return rc;
    }
    return SM_OK;
}

/* Raft listener: [old_hw, new_hw) is committed: queue its records. */
static void on_committed(void *ctx, int64_t old_hw, int64_t new_hw)
{
    sm_meta_log_t *l = ctx;
    const sm_raft_log_ops_t *ops = &sm_raft_storage_log_ops;
    /* What a loaded snapshot covers is not read again. */
    int64_t off = old_hw > l->applied_end ? old_hw : l->applied_end;
    pthread_mutex_lock(&l->mu);
    while (off < new_hw && !l->fatal) {
        const uint8_t *bytes;
        size_t len;
        sm_err_t rc = ops->read(l->rlog, off, 1 << 20, &bytes, &len);
        if (rc != SM_OK || len == 0) {
            SM_ERROR(TAG, "%s: cannot read the metadata log at offset %" PRId64 ": %s", l->qs_dir,
                     off, rc ? sm_err_str(rc) : "no batch");
            l->fatal = rc ? rc : SM_ERR_CORRUPT;
            break;
        }
        size_t at = 0;
        while (at < len && off < new_hw) {
            sm_batch_info_t info;
            const char *why = NULL;
            rc = sm_batch_validate(bytes + at, len - at, &info, &why);
            if (rc == SM_OK && info.base_offset > off) {
                why = "batch offsets are not contiguous";
                rc = SM_ERR_CORRUPT;
            }
            if (rc == SM_OK && sm_batch_last_offset(&info) >= off)
                rc = queue_batch(l, bytes + at, (size_t)sm_batch_total_size(&info), &info, off,
                                 new_hw, &why);
            if (rc != SM_OK) {
                SM_ERROR(TAG, "%s: offset %" PRId64 ": %s", l->qs_dir, off,
                         why ? why : sm_err_str(rc));
                l->fatal = rc == SM_ERR_PARSE ? SM_ERR_CORRUPT : rc;
                break;
            }
            if (sm_batch_last_offset(&info) >= off)
                off = sm_batch_last_offset(&info) + 1;
            at += (size_t)sm_batch_total_size(&info);
        }
    }
    if (!l->fatal)
        l->hw = new_hw;
    pthread_cond_broadcast(&l->cv);
    pthread_mutex_unlock(&l->mu);
}

/* Raft listener (a follower): the leader's snapshot replaced the log. The
 * records still queued are older than it; whoever applies reloads the image
 * from the snapshot file (sm_meta_log_take_reload). */
static void on_snapshot_loaded(void *ctx, sm_raft_offset_epoch_t id)
{
    sm_meta_log_t *l = ctx;
    pthread_mutex_lock(&l->mu);
    for (size_t i = 0; i < l->qlen; i++)
        free(l->q[l->qhead + i].value);
    l->qhead = l->qlen = 0;
    l->reload_end = id.end_offset;
    if (id.end_offset > l->applied_end)
        l->applied_end = id.end_offset;
    pthread_mutex_unlock(&l->mu);
    if (l->notify)
        l->notify(l->notify_ctx);
}

int64_t sm_meta_log_start(sm_meta_log_t *l)
{
    return sm_log_start_offset(sm_raft_storage_log_log(l->rlog));
}

bool sm_meta_log_take_reload(sm_meta_log_t *l, int64_t *end_offset)
{
    pthread_mutex_lock(&l->mu);
    bool r = l->reload_end >= 0;
    if (r) {
        *end_offset = l->reload_end;
        l->reload_end = -1;
    }
    pthread_mutex_unlock(&l->mu);
    return r;
}

typedef struct snap_taken {
    sm_meta_log_t *l;
    int64_t end;
    int32_t epoch;
} snap_taken_t;

static void snapshot_taken_task(void *arg)
{
    snap_taken_t *t = arg;
    if (!t->l->stopping)
        sm_raft_storage_log_snapshot_taken(t->l->rlog, t->end, t->epoch, t->l->max_log_bytes);
    free(t);
}

void sm_meta_log_snapshot_taken(sm_meta_log_t *l, int64_t end_offset, int32_t epoch)
{
    snap_taken_t *t = sm_xcalloc(1, sizeof *t);
    *t = (snap_taken_t){l, end_offset, epoch};
    sm_loop_post(l->loop, snapshot_taken_task, t);
}

static void on_leader_change(void *ctx, int32_t leader_id, int32_t epoch)
{
    sm_meta_log_t *l = ctx;
    if (leader_id == l->node_id)
        SM_INFO(TAG, "node %d leads the metadata quorum in epoch %d", l->node_id, epoch);
    else if (leader_id >= 0)
        SM_INFO(TAG, "node %d: metadata quorum leader is node %d in epoch %d", l->node_id,
                leader_id, epoch);
    else
        SM_INFO(TAG, "node %d: no metadata quorum leader in epoch %d", l->node_id, epoch);
}

/* ------------------------------------------------------------ host I/O */

static voter_peer_t *voter(sm_meta_log_t *l, int32_t id)
{
    for (int i = 0; i < l->nvoters; i++)
        if (l->voters[i].id == id)
            return &l->voters[i];
    return NULL;
}

static void quorum_io(sm_meta_log_t *l);
static void arm_timer(sm_meta_log_t *l);

typedef struct outbound {
    sm_meta_log_t *l;
    sm_raft_msg_t req;
    int16_t version;
} outbound_t;

static void on_peer_response(void *ctx, sm_err_t err, const uint8_t *body, size_t len)
{
    outbound_t *o = ctx;
    sm_meta_log_t *l = o->l;
    if (err == SM_OK && l->raft && !l->stopping) {
        sm_arena_t a;
        sm_arena_init(&a);
        sm_rd_t rd;
        sm_rd_init(&rd, body, len);
        sm_raft_msg_t resp;
        if (sm_raft_wire_decode_response(&o->req, o->version, &rd, &a, &resp) == SM_OK) {
            resp.from = o->req.to;
            resp.to = l->node_id;
            resp.corr = o->req.corr;
            sm_raft_step(l->raft, sm_now_mono_ms(), &resp);
            quorum_io(l);
        } else {
            SM_WARN(TAG, "node %d: bad %s response from node %d", l->node_id,
                    sm_raft_msg_kind_name(o->req.kind), o->req.to);
        }
        sm_arena_free(&a);
    }
    free(o);
}

static void send_request(sm_meta_log_t *l, const sm_raft_msg_t *m)
{
    voter_peer_t *v = voter(l, m->to);
    if (!v || !v->peer) {
        SM_DEBUG(TAG, "node %d: no connection to node %d for %s", l->node_id, m->to,
                 sm_raft_msg_kind_name(m->kind));
        return;
    }
    int16_t version = m->kind == SM_RAFT_MSG_VOTE             ? VOTE_VERSION
                      : m->kind == SM_RAFT_MSG_FETCH          ? FETCH_VERSION
                      : m->kind == SM_RAFT_MSG_FETCH_SNAPSHOT ? FETCH_SNAPSHOT_VERSION
                                                              : EPOCH_VERSION;
    int16_t key;
    sm_wbuf_t w;
    sm_wbuf_init(&w);
    if (sm_raft_wire_encode_request(m, l->cluster_id, version, &key, &w) != SM_OK) {
        SM_WARN(TAG, "node %d: cannot encode %s", l->node_id, sm_raft_msg_kind_name(m->kind));
        sm_wbuf_free(&w);
        return;
    }
    outbound_t *o = sm_xcalloc(1, sizeof *o);
    o->l = l;
    o->req = *m;
    o->version = version;
    int64_t timeout = l->request_timeout_ms;
    if (m->kind == SM_RAFT_MSG_FETCH)
        timeout += SM_RAFT_FETCH_MAX_WAIT_MS; /* the leader parks an empty fetch */
    if (sm_peer_send(v->peer, key, version, 2, 1, w.mem, w.len, timeout, on_peer_response, o) !=
        SM_OK)
        free(o); /* too many outstanding: raft retries on its own timers */
    sm_wbuf_free(&w);
}

static void send_response(sm_meta_log_t *l, const sm_raft_msg_t *m)
{
    for (int i = 0; i < l->npend; i++) {
        if (l->pend[i].corr != m->corr)
            continue;
        pending_in_t p = l->pend[i];
        l->pend[i] = l->pend[--l->npend];
        p.reply(p.ctx, m);
        return;
    }
    SM_DEBUG(TAG, "node %d: %s for a request that is gone", l->node_id,
             sm_raft_msg_kind_name(m->kind));
}

static bool is_response(sm_raft_msg_kind_t k)
{
    return k == SM_RAFT_MSG_VOTE_RESP || k == SM_RAFT_MSG_BEGIN_EPOCH_RESP ||
           k == SM_RAFT_MSG_END_EPOCH_RESP || k == SM_RAFT_MSG_FETCH_RESP ||
           k == SM_RAFT_MSG_FETCH_SNAPSHOT_RESP;
}

static bool active_locked(const sm_meta_log_t *l);

/* After every call into the raft object: save, send, publish the view. */
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
            SM_ERROR(TAG, "%s/%s: cannot write the quorum state: %s; the quorum stops", l->qs_dir,
                     SM_QUORUM_STATE_FILE, sm_err_str(rc));
            set_fatal(l, rc);
            return; /* the save is not acknowledged: nothing that needs it leaves */
        }
        sm_raft_save_done(l->raft, &s);
    }
    sm_raft_msg_t m;
    while (sm_raft_outbox_next(l->raft, &m)) {
        if (is_response(m.kind))
            send_response(l, &m);
        else
            send_request(l, &m);
    }
    pthread_mutex_lock(&l->mu);
    int32_t old_leader = l->leader, old_epoch = l->epoch;
    sm_raft_state_t old_state = l->state;
    l->state = sm_raft_state(l->raft);
    l->leader = sm_raft_leader(l->raft);
    l->epoch = sm_raft_epoch(l->raft);
    l->end_offset = sm_raft_storage_log_ops.end_offset(l->rlog);
    if (l->state == SM_RAFT_LEADER && (old_state != SM_RAFT_LEADER || old_epoch != l->epoch))
        l->epoch_start = l->end_offset; /* just past its LeaderChange record */
    sm_raft_describe(l->raft, &l->desc);
    /* Becoming active (the epoch's LeaderChange committed) is a change too. */
    bool changed = old_leader != l->leader || old_epoch != l->epoch || old_state != l->state ||
                   l->was_active != active_locked(l);
    l->was_active = active_locked(l);
    bool wake = changed || l->qlen > 0;
    if (changed)
        pthread_cond_broadcast(&l->cv);
    pthread_mutex_unlock(&l->mu);
    if (wake && l->notify)
        l->notify(l->notify_ctx);
    arm_timer(l);
}

static void on_timer(void *arg)
{
    sm_meta_log_t *l = arg;
    l->timer_id = 0;
    if (l->stopping)
        return;
    sm_raft_tick(l->raft, sm_now_mono_ms());
    quorum_io(l);
}

static void arm_timer(sm_meta_log_t *l)
{
    int64_t at = sm_raft_next_deadline(l->raft);
    if (l->timer_id && at == l->timer_at)
        return;
    if (l->timer_id)
        sm_loop_timer_cancel(l->loop, l->timer_id);
    l->timer_at = at;
    l->timer_id = sm_loop_timer(l->loop, at, on_timer, l);
}

/* Inbound RPCs the quorum never answered (it ignores what it cannot use). */
static void sweep(void *arg)
{
    sm_meta_log_t *l = arg;
    int64_t now = sm_now_mono_ms();
    for (int i = 0; i < l->npend;) {
        if (l->pend[i].deadline_ms <= now) {
            pending_in_t p = l->pend[i];
            l->pend[i] = l->pend[--l->npend];
            p.reply(p.ctx, NULL);
        } else {
            i++;
        }
    }
    l->sweep_timer = sm_loop_timer(l->loop, now + 500, sweep, l);
}

/* ------------------------------------------------------------ tasks */

typedef struct inbound {
    sm_meta_log_t *l;
    sm_raft_msg_t msg;
    sm_meta_log_reply_fn reply;
    void *ctx;
} inbound_t;

static void inbound_task(void *arg)
{
    inbound_t *in = arg;
    sm_meta_log_t *l = in->l;
    if (l->stopping || l->npend >= MAX_PENDING_IN) {
        if (!l->stopping)
            SM_WARN(TAG, "node %d: %d quorum requests waiting; dropping one", l->node_id,
                    l->npend);
        in->reply(in->ctx, NULL);
        free(in);
        return;
    }
    if (l->npend == l->cappend) {
        l->cappend = l->cappend ? 2 * l->cappend : 32;
        l->pend = sm_xrealloc(l->pend, sizeof *l->pend * (size_t)l->cappend);
    }
    int64_t now = sm_now_mono_ms();
    in->msg.corr = ++l->next_corr;
    in->msg.to = l->node_id;
    l->pend[l->npend++] =
        (pending_in_t){in->msg.corr, now + l->request_timeout_ms + SM_RAFT_FETCH_MAX_WAIT_MS,
                       in->reply, in->ctx};
    sm_raft_step(l->raft, now, &in->msg);
    quorum_io(l);
    free(in);
}

void sm_meta_log_deliver(sm_meta_log_t *l, const sm_raft_msg_t *msg, sm_meta_log_reply_fn reply,
                         void *ctx)
{
    inbound_t *in = sm_xcalloc(1, sizeof *in);
    in->l = l;
    in->msg = *msg;
    in->reply = reply;
    in->ctx = ctx;
    sm_loop_post(l->loop, inbound_task, in);
}

static void propose_task(void *arg)
{
    proposal_t *p = arg;
    sm_meta_log_t *l = p->l;
    int64_t off = SM_RAFT_NOT_LEADER;
    if (!l->stopping) {
        off = sm_raft_propose(l->raft, sm_now_mono_ms(), p->bytes, p->len, p->count);
        quorum_io(l);
    }
    pthread_mutex_lock(&l->mu);
    p->offset = off;
    p->epoch = l->epoch;
    p->done = true;
    pthread_cond_broadcast(&l->cv);
    pthread_mutex_unlock(&l->mu);
}

static void resign_task(void *arg)
{
    sm_meta_log_t *l = arg;
    if (!l->stopping && sm_raft_state(l->raft) == SM_RAFT_LEADER) {
        sm_raft_resign(l->raft, sm_now_mono_ms());
        quorum_io(l);
    }
}

static void start_task(void *arg)
{
    sm_meta_log_t *l = arg;
    quorum_io(l);
    l->sweep_timer = sm_loop_timer(l->loop, sm_now_mono_ms() + 500, sweep, l);
}

/* ------------------------------------------------------------ API */

static void timespec_in(struct timespec *ts, int ms)
{
    clock_gettime(CLOCK_REALTIME, ts);
    ts->tv_sec += ms / 1000;
    ts->tv_nsec += (long)(ms % 1000) * 1000000L;
    if (ts->tv_nsec >= 1000000000L) {
        ts->tv_sec++;
        ts->tv_nsec -= 1000000000L;
    }
}

sm_err_t sm_meta_log_open(const sm_meta_log_config_t *c, sm_meta_log_t **out)
{
    if (c->nvoters < 1 || c->nvoters > SM_RAFT_MAX_VOTERS) {
        SM_ERROR(TAG, "controller.quorum.voters names %d voters (1 to %d supported)", c->nvoters,
                 SM_RAFT_MAX_VOTERS);
        return SM_ERR_INVALID;
    }
    sm_meta_log_t *l = sm_xcalloc(1, sizeof *l);
    pthread_mutex_init(&l->mu, NULL);
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_cond_init(&l->cv, &ca);
    pthread_condattr_destroy(&ca);
    l->node_id = c->node_id;
    l->cluster_id = sm_xstrdup(c->cluster_id ? c->cluster_id : "");
    l->qs_dir = sm_xasprintf("%s/%s", c->parent_dir, SM_META_LOG_DIR_NAME);
    l->rng = ((uint64_t)sm_now_mono_us() ^ ((uint64_t)c->node_id << 40)) * 0x9e3779b97f4a7c15ull | 1;
    l->request_timeout_ms = c->request_timeout_ms > 0 ? c->request_timeout_ms : 2000;
    l->notify = c->notify;
    l->notify_ctx = c->notify_ctx;
    l->applied_end = c->applied_end;
    l->reload_end = -1;
    l->max_log_bytes = c->max_log_bytes;
    l->leader = SM_RAFT_NO_ID;
    l->nvoters = c->nvoters;
    l->voters = sm_xcalloc((size_t)c->nvoters, sizeof *l->voters);
    int32_t ids[SM_RAFT_MAX_VOTERS];
    for (int i = 0; i < c->nvoters; i++) {
        l->voters[i].id = ids[i] = c->voters[i].id;
        l->voters[i].host = sm_xstrdup(c->voters[i].host ? c->voters[i].host : "localhost");
        l->voters[i].port = c->voters[i].port;
    }
    sm_err_t rc =
        sm_raft_storage_log_open(c->parent_dir, c->segment_bytes, ids, c->nvoters, &l->rlog);
    if (rc != SM_OK)
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
    sm_raft_config_t rc_;
    sm_raft_config_defaults(&rc_);
    rc_.node_id = c->node_id;
    rc_.n_voters = c->nvoters;
    memcpy(rc_.voters, ids, sizeof *ids * (size_t)c->nvoters);
    if (c->election_timeout_ms > 0)
        rc_.election_timeout_ms = c->election_timeout_ms;
    if (c->fetch_timeout_ms > 0)
        rc_.fetch_timeout_ms = c->fetch_timeout_ms;
    if (c->election_backoff_max_ms > 0)
        rc_.election_backoff_max_ms = c->election_backoff_max_ms;
    if (c->request_timeout_ms > 0)
        rc_.request_timeout_ms = c->request_timeout_ms;
    if (c->retry_backoff_ms > 0)
        rc_.retry_backoff_ms = c->retry_backoff_ms;
    /* A commit is answered after its fsync: with one voter, no linger. */
    rc_.append_linger_ms = c->nvoters == 1 ? 0 : (c->append_linger_ms >= 0 ? c->append_linger_ms : 0);
    rc_.initial = rc == SM_OK ? (sm_raft_quorum_state_t){q.leader_epoch, q.voted_id, q.leader_id}
                              : (sm_raft_quorum_state_t){0, SM_RAFT_NO_ID, SM_RAFT_NO_ID};
    sm_quorum_state_free(&q);
    sm_raft_env_t env = {.log = &sm_raft_storage_log_ops,
                         .log_ctx = l->rlog,
                         .rand = rnd,
                         .rand_ctx = &l->rng,
                         .listener = {.committed = on_committed,
                                      .leader_change = on_leader_change,
                                      .snapshot_loaded = on_snapshot_loaded,
                                      .ctx = l}};
    l->raft = sm_raft_new(&rc_, &env, sm_now_mono_ms());
    if (!l->raft) {
        rc = SM_ERR_INVALID;
        goto fail;
    }
    l->loop = sm_loop_new(1000 + c->node_id);
    char client_id[64];
    snprintf(client_id, sizeof client_id, "samsa-quorum-%d", c->node_id);
    sm_peer_config_t pc = {.client_id = client_id, .backoff_ms = 50, .backoff_max_ms = 500,
                           .connect_timeout_ms = l->request_timeout_ms, .seed = l->rng};
    for (int i = 0; i < l->nvoters; i++)
        if (l->voters[i].id != c->node_id)
            l->voters[i].peer = sm_peer_new(l->loop, l->voters[i].host, l->voters[i].port, &pc);
    sm_loop_post(l->loop, start_task, l);
    if ((rc = sm_loop_start_thread(l->loop)) != SM_OK)
        goto fail;
    l->thread_running = true;
    SM_INFO(TAG, "%s: metadata quorum of %d voter(s) started as node %d (%s), log end %" PRId64,
            l->qs_dir, l->nvoters, c->node_id, sm_raft_is_voter(l->raft) ? "voter" : "observer",
            sm_raft_storage_log_ops.end_offset(l->rlog));
    *out = l;
    return SM_OK;
fail:
    sm_meta_log_close(l);
    return rc;
}

static void stop_task(void *arg)
{
    sm_meta_log_t *l = arg;
    l->stopping = true;
    if (l->timer_id)
        sm_loop_timer_cancel(l->loop, l->timer_id);
    if (l->sweep_timer)
        sm_loop_timer_cancel(l->loop, l->sweep_timer);
    for (int i = 0; i < l->npend; i++)
        l->pend[i].reply(l->pend[i].ctx, NULL);
    l->npend = 0;
    for (int i = 0; i < l->nvoters; i++) {
        sm_peer_free(l->voters[i].peer);
        l->voters[i].peer = NULL;
    }
    sm_loop_stop(l->loop);
}

void sm_meta_log_resign(sm_meta_log_t *l, int wait_ms)
{
    if (!l || !l->thread_running)
        return;
    pthread_mutex_lock(&l->mu);
    bool leader = l->state == SM_RAFT_LEADER && l->nvoters > 1;
    pthread_mutex_unlock(&l->mu);
    if (!leader)
        return;
    sm_loop_post(l->loop, resign_task, l);
    struct timespec ts = {.tv_sec = 0, .tv_nsec = (long)wait_ms * 1000000L};
    nanosleep(&ts, NULL);
}

void sm_meta_log_close(sm_meta_log_t *l)
{
    if (!l)
        return;
    if (l->thread_running) {
        sm_loop_post(l->loop, stop_task, l);
        sm_loop_join(l->loop);
    }
    pthread_mutex_lock(&l->mu);
    l->closing = true;
    pthread_cond_broadcast(&l->cv);
    pthread_mutex_unlock(&l->mu);
    if (l->loop)
        sm_loop_free(l->loop);
    sm_raft_free(l->raft);
    sm_raft_storage_log_close(l->rlog);
    for (int i = 0; i < l->nvoters; i++)
        free(l->voters[i].host);
    free(l->voters);
    for (size_t i = 0; i < l->qlen; i++)
        free(l->q[l->qhead + i].value);
    free(l->q);
    free(l->pend);
    free(l->qs_dir);
    free(l->cluster_id);
    pthread_mutex_destroy(&l->mu);
    pthread_cond_destroy(&l->cv);
    free(l);
}

static bool active_locked(const sm_meta_log_t *l)
{
    return l->state == SM_RAFT_LEADER && l->leader == l->node_id && l->hw >= l->epoch_start &&
           l->epoch_start > 0 && !l->fatal;
}

bool sm_meta_log_active(sm_meta_log_t *l, int32_t *epoch)
{
    pthread_mutex_lock(&l->mu);
    bool a = active_locked(l);
    if (epoch)
        *epoch = l->epoch;
    pthread_mutex_unlock(&l->mu);
    return a;
}

sm_err_t sm_meta_log_wait_active(sm_meta_log_t *l, int timeout_ms)
{
    struct timespec ts;
    timespec_in(&ts, timeout_ms);
    pthread_mutex_lock(&l->mu);
    int w = 0;
    while (!active_locked(l) && !l->fatal && !l->closing && w == 0)
        w = pthread_cond_timedwait(&l->cv, &l->mu, &ts);
    sm_err_t rc = active_locked(l) ? SM_OK : l->fatal ? l->fatal : SM_ERR_AGAIN;
    pthread_mutex_unlock(&l->mu);
    return rc;
}

int32_t sm_meta_log_leader(sm_meta_log_t *l, int32_t *epoch)
{
    pthread_mutex_lock(&l->mu);
    int32_t id = l->leader;
    if (epoch)
        *epoch = l->epoch;
    pthread_mutex_unlock(&l->mu);
    return id;
}

int32_t sm_meta_log_epoch(sm_meta_log_t *l)
{
    int32_t e;
    sm_meta_log_leader(l, &e);
    return e;
}

int64_t sm_meta_log_end_offset(sm_meta_log_t *l)
{
    pthread_mutex_lock(&l->mu);
    int64_t v = l->end_offset;
    pthread_mutex_unlock(&l->mu);
    return v;
}

int64_t sm_meta_log_high_watermark(sm_meta_log_t *l)
{
    pthread_mutex_lock(&l->mu);
    int64_t v = l->hw;
    pthread_mutex_unlock(&l->mu);
    return v;
}

void sm_meta_log_describe(sm_meta_log_t *l, sm_raft_describe_t *out)
{
    pthread_mutex_lock(&l->mu);
    *out = l->desc;
    pthread_mutex_unlock(&l->mu);
}

sm_err_t sm_meta_log_failed(sm_meta_log_t *l)
{
    pthread_mutex_lock(&l->mu);
    sm_err_t rc = l->fatal;
    pthread_mutex_unlock(&l->mu);
    return rc;
}

int sm_meta_log_drain(sm_meta_log_t *l, sm_meta_log_record_fn fn, void *ctx, sm_err_t *rc)
{
    *rc = SM_OK;
    pthread_mutex_lock(&l->mu);
    committed_rec_t *batch = NULL;
    size_t n = l->qlen;
    if (n) {
        batch = sm_xmalloc(n * sizeof *batch);
        memcpy(batch, l->q + l->qhead, n * sizeof *batch);
        l->qhead = l->qlen = 0;
    }
    pthread_mutex_unlock(&l->mu);
    for (size_t i = 0; i < n; i++) {
        const char *why = NULL;
        sm_err_t r = fn(ctx, batch[i].offset, batch[i].epoch, batch[i].value, batch[i].len, &why);
        if (r != SM_OK && *rc == SM_OK) {
            SM_ERROR(TAG, "%s: committed record at offset %" PRId64 " does not apply: %s",
                     l->qs_dir, batch[i].offset, why ? why : sm_err_str(r));
            *rc = r;
        }
        free(batch[i].value);
    }
    free(batch);
    return (int)n;
}

sm_err_t sm_meta_log_commit(sm_meta_log_t *l, const sm_meta_log_rec_t *recs, int n,
                            int64_t now_ms, int timeout_ms, int64_t *base_offset)
{
    SM_ASSERT(n > 0);
    int32_t epoch;
    if (!sm_meta_log_active(l, &epoch))
        return sm_meta_log_failed(l) ? sm_meta_log_failed(l) : SM_ERR_CLOSED;
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
    proposal_t *p = sm_xcalloc(1, sizeof *p);
    p->l = l;
    p->bytes = w.mem;
    p->len = w.len;
    p->count = n;
    sm_loop_post(l->loop, propose_task, p);
    struct timespec ts;
    timespec_in(&ts, timeout_ms);
    sm_err_t rc = SM_OK;
    pthread_mutex_lock(&l->mu);
    int wr = 0;
    while (!p->done && !l->closing && wr == 0)
        wr = pthread_cond_timedwait(&l->cv, &l->mu, &ts);
    /* The quorum thread owns p until done (propose never blocks, so this
     * wait is short); after close joined the thread it never runs. */
    while (!p->done && !l->closing)
        pthread_cond_wait(&l->cv, &l->mu);
    int64_t off = p->done ? p->offset : SM_RAFT_NOT_LEADER;
    if (off == SM_RAFT_NOT_LEADER) {
        rc = SM_ERR_CLOSED;
    } else if (off < 0) {
        rc = SM_ERR_INVALID;
    } else {
        int64_t target = off + n;
        wr = 0;
        while (l->hw < target && !l->fatal && !l->closing && l->epoch == p->epoch &&
               l->state == SM_RAFT_LEADER && wr == 0)
            wr = pthread_cond_timedwait(&l->cv, &l->mu, &ts);
        if (l->hw >= target)
            rc = SM_OK;
        else if (l->fatal)
            rc = l->fatal;
        else if (l->closing || l->epoch != p->epoch || l->state != SM_RAFT_LEADER)
            rc = SM_ERR_CLOSED;
        else
            rc = SM_ERR_AGAIN;
    }
    pthread_mutex_unlock(&l->mu);
    if (rc == SM_OK)
        *base_offset = off;
    else if (off < 0)
        SM_WARN(TAG, "metadata quorum refused a batch of %d records (%s)", n,
                off == SM_RAFT_NOT_LEADER ? "not the leader" : "rejected");
    else
        SM_WARN(TAG, "metadata batch at offset %" PRId64 " not committed: %s", off,
                rc == SM_ERR_AGAIN ? "timed out waiting for a majority" : sm_err_str(rc));
    sm_wbuf_free(&w);
    free(p);
    return rc;
}
