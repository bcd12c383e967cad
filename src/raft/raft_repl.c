/*
 * raft_repl.c - replication by pull for the metadata log: the leader's side of
 * Fetch (validation against the leader-epoch cache, DivergingEpoch, long poll,
 * per-replica state, high watermark, check quorum, linger flush), the
 * follower's side (fetch loop, truncation, high watermark), observers' leader
 * discovery, proposals, and KIP-630 snapshots on the wire (SnapshotId in a fetch
 * answer, FetchSnapshot served and fetched by position, install on the follower).
 *
 * High watermark (leader): the largest offset that a majority of voters has
 * durably: the leader counts its own flushed offset, a follower the offset it
 * fetches from (followers flush before fetching again). It only moves past the
 * start of the leader's epoch (its LEADER_CHANGE record), so an entry of an
 * older epoch is never committed by counting replicas alone, and it never goes
 * back. Follower: max(own hw, min(leader hw, own flushed end)).
 */
#include "raft_internal.h"

#include "log.h"

#include <string.h>

#define LOG_OPS(r) ((r)->env.log)
#define LOG_CTX(r) ((r)->env.log_ctx)

/* ------------------------------------------------------------ leader */

static raft_replica_t *raft_observer(sm_raft_t *r, int32_t id, int64_t now)
{
    for (int32_t i = 0; i < r->n_observers; i++)
        if (r->observers[i].id == id)
            return &r->observers[i];
    raft_replica_t *o;
    if (r->n_observers < SM_RAFT_MAX_OBSERVERS) {
        o = &r->observers[r->n_observers++];
    } else { /* full: forget the one heard from longest ago */
        o = &r->observers[0];
        for (int32_t i = 1; i < r->n_observers; i++)
            if (r->observers[i].last_fetch_ms < o->last_fetch_ms)
                o = &r->observers[i];
        SM_WARN(RAFT_TAG, "node %d: observer table full; forgetting %d for %d",
                r->cfg.node_id, o->id, id);
    }
    memset(o, 0, sizeof(*o));
    o->id = id;
    o->end_offset = -1;
    o->last_fetch_ms = o->last_caught_up_ms = o->prev_fetch_ms = -1;
    SM_UNUSED(now);
    return o;
}

static sm_raft_msg_t *raft_fetch_reply(sm_raft_t *r, const sm_raft_msg_t *req, int16_t err)
{
    sm_raft_msg_t *m = raft_out(r, SM_RAFT_MSG_FETCH_RESP, req->from, req->corr);
    m->u.fetch_resp.error = err;
    m->u.fetch_resp.high_watermark = r->state == SM_RAFT_LEADER ? r->hw : -1;
    m->u.fetch_resp.log_start_offset = LOG_OPS(r)->start_offset(LOG_CTX(r));
    m->u.fetch_resp.diverging = (sm_raft_offset_epoch_t){-1, -1};
    m->u.fetch_resp.snapshot_id = (sm_raft_offset_epoch_t){-1, -1};
    bool known = r->state == SM_RAFT_LEADER || r->state == SM_RAFT_FOLLOWER;
    m->u.fetch_resp.current_leader.leader_id = known ? r->leader_id : SM_RAFT_NO_ID;
    m->u.fetch_resp.current_leader.leader_epoch = r->epoch;
    return m;
}

/* Answer a validated fetch with records from its offset (maybe none). */
static void raft_fetch_answer(sm_raft_t *r, const sm_raft_msg_t *req)
{
    sm_raft_msg_t *m = raft_fetch_reply(r, req, SM_RAFT_ERR_NONE);
    int64_t off = req->u.fetch.fetch_offset;
    if (off < LOG_OPS(r)->start_offset(LOG_CTX(r)) && LOG_OPS(r)->snapshot_latest) {
        /* A snapshot moved the log start past a parked fetch. */
        m->u.fetch_resp.snapshot_id = LOG_OPS(r)->snapshot_latest(LOG_CTX(r));
        return;
    }
    if (off >= LOG_OPS(r)->end_offset(LOG_CTX(r)))
        return;
    size_t max = (size_t)SM_MIN(SM_MAX(req->u.fetch.max_bytes, 1), r->cfg.fetch_max_bytes);
    const uint8_t *bytes = NULL;
    size_t len = 0;
    sm_err_t err = LOG_OPS(r)->read(LOG_CTX(r), off, max, &bytes, &len);
    if (err != SM_OK) {
        SM_ERROR(RAFT_TAG, "node %d: reading the log at %lld for %d: %s", r->cfg.node_id,
                 (long long)off, req->from, sm_err_str(err));
        return;
    }
    m->u.fetch_resp.records = bytes;
    m->u.fetch_resp.records_len = len;
}

void raft_leader_complete_parked(sm_raft_t *r, int64_t now, bool expired_only)
{
    for (int32_t pass = 0; pass < 2; pass++) {
        raft_replica_t *set = pass ? r->observers : r->voters;
        int32_t n = pass ? r->n_observers : r->n_voters;
        for (int32_t i = 0; i < n; i++) {
            raft_replica_t *p = &set[i];
            if (!p->parked || (expired_only && now < p->park_deadline_ms))
                continue;
            p->parked = false;
            raft_fetch_answer(r, &p->parked_req);
        }
    }
}

void raft_leader_update_hw(sm_raft_t *r, int64_t now)
{
    int64_t offs[SM_RAFT_MAX_VOTERS];
    int32_t n = r->n_voters;
    for (int32_t i = 0; i < n; i++)
        offs[i] = r->voters[i].id == r->cfg.node_id ? LOG_OPS(r)->flushed_offset(LOG_CTX(r))
                                                   : r->voters[i].end_offset;
    for (int32_t i = 1; i < n; i++) /* descending insertion sort; n <= 15 */
        for (int32_t j = i; j > 0 && offs[j - 1] < offs[j]; j--) {
            int64_t t = offs[j];
            offs[j] = offs[j - 1];
            offs[j - 1] = t;
        }
    int64_t majority_offset = offs[raft_majority(r) - 1];
    if (majority_offset > r->epoch_start_offset && majority_offset > r->hw) {
        raft_set_hw(r, majority_offset);
        raft_leader_complete_parked(r, now, false); /* followers learn the new hw */
    }
}

static void raft_send_begin_epoch(sm_raft_t *r, int64_t now)
{
    for (int32_t i = 0; i < r->n_voters; i++) {
        raft_replica_t *v = &r->voters[i];
        if (v->id == r->cfg.node_id || v->epoch_acked)
            continue;
        sm_raft_msg_t *m = raft_out(r, SM_RAFT_MSG_BEGIN_EPOCH, v->id, 0);
        m->u.begin.leader_id = r->cfg.node_id;
        m->u.begin.leader_epoch = r->epoch;
    }
    r->epoch_resend_ms = now + SM_MAX(r->cfg.election_timeout_ms / 2, 1);
}

static int64_t raft_check_quorum_window(const sm_raft_t *r)
{
    return (int64_t)r->cfg.fetch_timeout_ms * 3 / 2;
}

void raft_leader_start(sm_raft_t *r, int64_t now)
{
    r->epoch_start_offset = LOG_OPS(r)->end_offset(LOG_CTX(r));
    sm_raft_append_t a = {.epoch = r->epoch,
                          .count = 1,
                          .control_type = SM_RAFT_CONTROL_LEADER_CHANGE,
                          .leader_id = r->cfg.node_id};
    int64_t base = -1;
    sm_err_t err = LOG_OPS(r)->append(LOG_CTX(r), &a, &base);
    if (err != SM_OK) {
        SM_ERROR(RAFT_TAG, "node %d: appending LEADER_CHANGE for epoch %d: %s; resigning",
                 r->cfg.node_id, r->epoch, sm_err_str(err));
        raft_become_resigned(r, now);
        return;
    }
    SM_ASSERT(base == r->epoch_start_offset);
    r->flush_deadline_ms = now + r->cfg.append_linger_ms;
    r->check_quorum_deadline_ms = now + raft_check_quorum_window(r);
    raft_send_begin_epoch(r, now);
}

void raft_leader_tick(sm_raft_t *r, int64_t now)
{
    if (now >= r->flush_deadline_ms) {
        sm_err_t err = LOG_OPS(r)->flush(LOG_CTX(r));
        if (err != SM_OK) {
            SM_ERROR(RAFT_TAG, "node %d: flushing the metadata log: %s; retrying",
                     r->cfg.node_id, sm_err_str(err));
            r->flush_deadline_ms = now + r->cfg.retry_backoff_ms;
        } else {
            r->flush_deadline_ms = RAFT_NEVER;
            raft_leader_update_hw(r, now);
        }
    }
    if (now >= r->check_quorum_deadline_ms) {
        int32_t heard = 0;
        for (int32_t i = 0; i < r->n_voters; i++) {
            raft_replica_t *v = &r->voters[i];
            heard += v->id == r->cfg.node_id || v->fetched_since_check;
            v->fetched_since_check = false;
        }
        if (heard < raft_majority(r)) {
            SM_WARN(RAFT_TAG, "node %d: heard from %d of %d voters in %lld ms; resigning epoch %d",
                    r->cfg.node_id, heard, r->n_voters, (long long)raft_check_quorum_window(r),
                    r->epoch);
            raft_become_resigned(r, now);
            return;
        }
        r->check_quorum_deadline_ms = now + raft_check_quorum_window(r);
    }
    if (now >= r->epoch_resend_ms)
        raft_send_begin_epoch(r, now);
    raft_leader_complete_parked(r, now, true);
}

void raft_on_fetch(sm_raft_t *r, int64_t now, const sm_raft_msg_t *m)
{
    const int32_t cle = m->u.fetch.current_leader_epoch;
    if (r->state != SM_RAFT_LEADER) {
        int16_t err = cle > r->epoch   ? SM_RAFT_ERR_UNKNOWN_LEADER_EPOCH
                      : cle < r->epoch ? SM_RAFT_ERR_FENCED_LEADER_EPOCH
                                       : SM_RAFT_ERR_NOT_LEADER_OR_FOLLOWER;
        raft_fetch_reply(r, m, err);
        return;
    }
    if (m->u.fetch.replica_id != m->from) {
        SM_WARN(RAFT_TAG, "node %d: Fetch from %d names replica %d; refused", r->cfg.node_id,
                m->from, m->u.fetch.replica_id);
        raft_fetch_reply(r, m, SM_RAFT_ERR_INVALID_REQUEST);
        return;
    }
    if (cle != r->epoch) {
        raft_fetch_reply(r, m, cle < r->epoch ? SM_RAFT_ERR_FENCED_LEADER_EPOCH
                                              : SM_RAFT_ERR_UNKNOWN_LEADER_EPOCH);
        return;
    }
    const int64_t off = m->u.fetch.fetch_offset;
    const int32_t lfe = m->u.fetch.last_fetched_epoch;
    if (off < 0 || lfe < 0 || lfe > r->epoch) {
        SM_WARN(RAFT_TAG, "node %d: Fetch from %d with offset %lld, last fetched epoch %d "
                "(epoch %d); refused", r->cfg.node_id, m->from, (long long)off, lfe, r->epoch);
        raft_fetch_reply(r, m, SM_RAFT_ERR_INVALID_REQUEST);
        return;
    }
    raft_replica_t *rep = raft_voter(r, m->from);
    bool voter = rep != NULL;
    if (!rep)
        rep = raft_observer(r, m->from, now);
    rep->fetched_since_check = true;
    rep->epoch_acked = true;
    const int64_t start = LOG_OPS(r)->start_offset(LOG_CTX(r));
    sm_raft_offset_epoch_t oe = {lfe, off};
    bool diverged = false;
    if (off >= start) {
        oe = LOG_OPS(r)->end_offset_for_epoch(LOG_CTX(r), lfe);
        diverged = oe.epoch != lfe || off > oe.end_offset;
    }
    if (off < start || (diverged && oe.end_offset < start)) {
        /* KIP-630: what the follower needs is gone from the log: send it the
         * latest snapshot's id; it fetches the snapshot, then the log after it. */
        sm_raft_offset_epoch_t snap = {-1, -1};
        if (LOG_OPS(r)->snapshot_latest)
            snap = LOG_OPS(r)->snapshot_latest(LOG_CTX(r));
        if (snap.epoch < 0) {
            SM_ERROR(RAFT_TAG, "node %d: Fetch from %d at %lld below the log start %lld and "
                     "no snapshot", r->cfg.node_id, m->from, (long long)off, (long long)start);
            raft_fetch_reply(r, m, SM_RAFT_ERR_OFFSET_OUT_OF_RANGE);
            return;
        }
        sm_raft_msg_t *resp = raft_fetch_reply(r, m, SM_RAFT_ERR_NONE);
        resp->u.fetch_resp.snapshot_id = snap;
        return;
    }
    if (diverged) {
        sm_raft_msg_t *resp = raft_fetch_reply(r, m, SM_RAFT_ERR_NONE);
        resp->u.fetch_resp.diverging = oe;
        return;
    }
    int64_t leo = LOG_OPS(r)->end_offset(LOG_CTX(r));
    rep->end_offset = off;
    rep->last_fetch_ms = now;
    if (off >= leo)
        rep->last_caught_up_ms = now;
    else if (rep->prev_fetch_ms >= 0 && off >= rep->leo_at_prev_fetch)
        rep->last_caught_up_ms = SM_MAX(rep->last_caught_up_ms, rep->prev_fetch_ms);
    rep->prev_fetch_ms = now;
    rep->leo_at_prev_fetch = leo;
    rep->parked = false; /* a newer fetch replaces the parked one */
    int64_t hw_before = r->hw;
    if (voter)
        raft_leader_update_hw(r, now);
    if (off >= leo && r->hw == hw_before && r->cfg.fetch_max_wait_ms > 0) {
        rep->parked = true; /* long poll: answered on new data, a new hw, or time */
        rep->parked_req = *m;
        rep->park_deadline_ms = now + r->cfg.fetch_max_wait_ms;
        return;
    }
    raft_fetch_answer(r, m);
}

/* Leader: a chunk of a snapshot (FetchSnapshot, chunked by position). */
void raft_on_fetch_snapshot(sm_raft_t *r, int64_t now, const sm_raft_msg_t *m)
{
    SM_UNUSED(now);
    const int32_t cle = m->u.fetch_snapshot.current_leader_epoch;
    const sm_raft_offset_epoch_t id = m->u.fetch_snapshot.snapshot_id;
    sm_raft_msg_t *resp = raft_out(r, SM_RAFT_MSG_FETCH_SNAPSHOT_RESP, m->from, m->corr);
    resp->u.fetch_snapshot_resp.current_leader.leader_id = sm_raft_leader(r);
    resp->u.fetch_snapshot_resp.current_leader.leader_epoch = r->epoch;
    resp->u.fetch_snapshot_resp.snapshot_id = id;
    resp->u.fetch_snapshot_resp.position = m->u.fetch_snapshot.position;
    int16_t err = SM_RAFT_ERR_NONE;
    if (r->state != SM_RAFT_LEADER)
        err = cle > r->epoch   ? SM_RAFT_ERR_UNKNOWN_LEADER_EPOCH
              : cle < r->epoch ? SM_RAFT_ERR_FENCED_LEADER_EPOCH
                               : SM_RAFT_ERR_NOT_LEADER_OR_FOLLOWER;
    else if (cle != r->epoch)
        err = cle < r->epoch ? SM_RAFT_ERR_FENCED_LEADER_EPOCH : SM_RAFT_ERR_UNKNOWN_LEADER_EPOCH;
    else if (m->u.fetch_snapshot.replica_id != m->from || m->u.fetch_snapshot.position < 0 ||
             id.epoch < 0 || id.end_offset < 0)
        err = SM_RAFT_ERR_INVALID_REQUEST;
    else if (!LOG_OPS(r)->snapshot_read)
        err = SM_RAFT_ERR_SNAPSHOT_NOT_FOUND;
    if (err != SM_RAFT_ERR_NONE) {
        resp->u.fetch_snapshot_resp.error = err;
        return;
    }
    size_t max = (size_t)SM_MIN(SM_MAX(m->u.fetch_snapshot.max_bytes, 1), r->cfg.fetch_max_bytes);
    const uint8_t *bytes = NULL;
    size_t len = 0;
    int64_t size = 0;
    sm_err_t e = LOG_OPS(r)->snapshot_read(LOG_CTX(r), id, m->u.fetch_snapshot.position, max,
                                           &bytes, &len, &size);
    if (e != SM_OK) {
        resp->u.fetch_snapshot_resp.error = e == SM_ERR_RANGE ? SM_RAFT_ERR_POSITION_OUT_OF_RANGE
                                                              : SM_RAFT_ERR_SNAPSHOT_NOT_FOUND;
        return;
    }
    resp->u.fetch_snapshot_resp.size = size;
    resp->u.fetch_snapshot_resp.bytes = bytes;
    resp->u.fetch_snapshot_resp.len = len;
}

/* Follower: the next chunk of the leader's snapshot; the last one installs it. */
void raft_on_fetch_snapshot_resp(sm_raft_t *r, int64_t now, const sm_raft_msg_t *m)
{
    const sm_raft_leader_ref_t cl = m->u.fetch_snapshot_resp.current_leader;
    if (cl.leader_epoch > r->epoch) {
        raft_observe_epoch(r, now, cl.leader_epoch, cl.leader_id);
        return;
    }
    if (r->state != SM_RAFT_FOLLOWER || !r->snap_fetching || m->from != r->leader_id ||
        !r->fetch_inflight || m->corr != r->fetch_corr)
        return; /* late or duplicated */
    r->fetch_inflight = false;
    const int16_t err = m->u.fetch_snapshot_resp.error;
    const int64_t pos = m->u.fetch_snapshot_resp.position, size = m->u.fetch_snapshot_resp.size;
    const size_t len = m->u.fetch_snapshot_resp.len;
    const sm_raft_offset_epoch_t id = m->u.fetch_snapshot_resp.snapshot_id;
    if (err == SM_RAFT_ERR_SNAPSHOT_NOT_FOUND || err == SM_RAFT_ERR_POSITION_OUT_OF_RANGE) {
        /* The leader moved on to a newer snapshot: fetch again to learn it. */
        r->snap_fetching = false;
        r->next_fetch_ms = now;
        return;
    }
    if (err != SM_RAFT_ERR_NONE) {
        r->next_fetch_ms = now + r->cfg.retry_backoff_ms;
        return;
    }
    if (id.epoch != r->snap_id.epoch || id.end_offset != r->snap_id.end_offset ||
        pos != r->snap_pos || size < pos || (int64_t)len > size - pos ||
        (len == 0 && pos < size)) {
        SM_WARN(RAFT_TAG, "node %d: FetchSnapshot answer from %d does not fit (snapshot %d@%lld "
                "position %lld size %lld len %zu); starting over", r->cfg.node_id, m->from,
                id.epoch, (long long)id.end_offset, (long long)pos, (long long)size, len);
        r->snap_fetching = false;
        r->next_fetch_ms = now + r->cfg.retry_backoff_ms;
        return;
    }
    r->fetch_deadline_ms = raft_fetch_deadline(r, now);
    r->fetched_ok = true;
    sm_err_t e = LOG_OPS(r)->snapshot_write(LOG_CTX(r), id, pos, m->u.fetch_snapshot_resp.bytes,
                                            len);
    if (e == SM_OK && pos + (int64_t)len == size) {
        e = LOG_OPS(r)->snapshot_install(LOG_CTX(r), id);
        if (e == SM_OK) {
            SM_INFO(RAFT_TAG, "node %d: installed snapshot %d@%lld from leader %d",
                    r->cfg.node_id, id.epoch, (long long)id.end_offset, m->from);
            r->snap_fetching = false;
            if (r->env.listener.snapshot_loaded)
                r->env.listener.snapshot_loaded(r->env.listener.ctx, id);
            if (id.end_offset > r->hw)
                r->hw = id.end_offset; /* a snapshot holds committed entries only */
            r->next_fetch_ms = now;
            return;
        }
    }
    if (e != SM_OK) {
        SM_WARN(RAFT_TAG, "node %d: snapshot %d@%lld from %d refused: %s", r->cfg.node_id,
                id.epoch, (long long)id.end_offset, m->from, sm_err_str(e));
        r->snap_fetching = false;
        r->next_fetch_ms = now + r->cfg.retry_backoff_ms;
        return;
    }
    r->snap_pos = pos + (int64_t)len;
    r->next_fetch_ms = now;
}

int64_t sm_raft_propose(sm_raft_t *r, int64_t now, const void *data, size_t len, int32_t count)
{
    SM_ASSERT(!r->save_pending && r->out_rd == r->out_n);
    r->out_n = r->out_rd = 0;
    if (r->state != SM_RAFT_LEADER)
        return SM_RAFT_NOT_LEADER;
    if (count < 1 || len > (size_t)r->cfg.fetch_max_bytes || (!data && len)) {
        SM_WARN(RAFT_TAG, "node %d: proposal of %zu bytes, %d records refused", r->cfg.node_id,
                len, count);
        return SM_RAFT_REJECTED;
    }
    sm_raft_append_t a = {.epoch = r->epoch,
                          .count = count,
                          .data = data,
                          .len = len,
                          .control_type = SM_RAFT_CONTROL_NONE,
                          .leader_id = r->cfg.node_id};
    int64_t base = -1;
    sm_err_t err = LOG_OPS(r)->append(LOG_CTX(r), &a, &base);
    if (err != SM_OK) {
        SM_ERROR(RAFT_TAG, "node %d: appending a proposal: %s", r->cfg.node_id, sm_err_str(err));
        return SM_RAFT_REJECTED;
    }
    if (r->flush_deadline_ms == RAFT_NEVER)
        r->flush_deadline_ms = now + r->cfg.append_linger_ms;
    raft_leader_complete_parked(r, now, false);
    return base;
}

/* ------------------------------------------------------------ follower, observer */

static void raft_send_fetch_snapshot(sm_raft_t *r, int64_t now)
{
    sm_raft_msg_t *m = raft_out(r, SM_RAFT_MSG_FETCH_SNAPSHOT, r->leader_id, 0);
    m->u.fetch_snapshot.replica_id = r->cfg.node_id;
    m->u.fetch_snapshot.current_leader_epoch = r->epoch;
    m->u.fetch_snapshot.snapshot_id = r->snap_id;
    m->u.fetch_snapshot.position = r->snap_pos;
    m->u.fetch_snapshot.max_bytes = r->cfg.fetch_max_bytes;
    r->fetch_corr = m->corr;
    r->fetch_inflight = true;
    r->fetch_sent_ms = now;
    r->next_fetch_ms = RAFT_NEVER;
}

static void raft_send_fetch(sm_raft_t *r, int64_t now, int32_t to)
{
    if (r->snap_fetching && r->state == SM_RAFT_FOLLOWER) {
        raft_send_fetch_snapshot(r, now);
        return;
    }
    if (LOG_OPS(r)->flushed_offset(LOG_CTX(r)) < LOG_OPS(r)->end_offset(LOG_CTX(r))) {
        sm_err_t err = LOG_OPS(r)->flush(LOG_CTX(r)); /* report only durable offsets */
        if (err != SM_OK) {
            SM_ERROR(RAFT_TAG, "node %d: flush before fetch: %s", r->cfg.node_id,
                     sm_err_str(err));
            r->next_fetch_ms = now + r->cfg.retry_backoff_ms;
            return;
        }
    }
    sm_raft_msg_t *m = raft_out(r, SM_RAFT_MSG_FETCH, to, 0);
    m->u.fetch.replica_id = r->cfg.node_id;
    m->u.fetch.current_leader_epoch = r->epoch;
    m->u.fetch.fetch_offset = LOG_OPS(r)->end_offset(LOG_CTX(r));
    m->u.fetch.last_fetched_epoch = LOG_OPS(r)->last_epoch(LOG_CTX(r));
    m->u.fetch.max_bytes = r->cfg.fetch_max_bytes;
    r->fetch_corr = m->corr;
    r->fetch_inflight = true;
    r->fetch_sent_ms = now;
    r->next_fetch_ms = RAFT_NEVER;
}

void raft_observer_probe(sm_raft_t *r, int64_t now)
{
    if (r->fetch_inflight && now - r->fetch_sent_ms >= r->cfg.request_timeout_ms) {
        r->fetch_inflight = false;
        r->next_fetch_ms = now;
    }
    if (r->fetch_inflight || now < r->next_fetch_ms)
        return;
    int32_t to = r->voters[raft_rand_range(r, 0, r->n_voters - 1)].id;
    raft_send_fetch(r, now, to);
}

void raft_follower_tick(sm_raft_t *r, int64_t now)
{
    if (now >= r->fetch_deadline_ms) {
        SM_INFO(RAFT_TAG, "node %d: no answer from leader %d of epoch %d in %d ms",
                r->cfg.node_id, r->leader_id, r->epoch, r->cfg.fetch_timeout_ms);
        if (r->voter)
            raft_become_prospective(r, now);
        else
            raft_become_unattached(r, now, r->epoch, SM_RAFT_NO_ID, 0);
        return;
    }
    if (r->fetch_inflight && now - r->fetch_sent_ms >= r->cfg.request_timeout_ms) {
        r->fetch_inflight = false;
        r->next_fetch_ms = now;
    }
    if (!r->fetch_inflight && now >= r->next_fetch_ms)
        raft_send_fetch(r, now, r->leader_id);
}

void raft_on_fetch_resp(sm_raft_t *r, int64_t now, const sm_raft_msg_t *m)
{
    const sm_raft_leader_ref_t cl = m->u.fetch_resp.current_leader;
    if (cl.leader_epoch > r->epoch || r->state != SM_RAFT_FOLLOWER) {
        bool was_probe = r->state == SM_RAFT_UNATTACHED && !r->voter &&
                         r->fetch_inflight && m->corr == r->fetch_corr;
        if (!raft_observe_epoch(r, now, cl.leader_epoch, cl.leader_id) && was_probe) {
            r->fetch_inflight = false; /* no leader there: ask again later */
            r->next_fetch_ms = now + 10 * (int64_t)r->cfg.retry_backoff_ms;
        }
        return;
    }
    if (m->from != r->leader_id || !r->fetch_inflight || m->corr != r->fetch_corr)
        return; /* late or duplicated */
    r->fetch_inflight = false;
    if (m->u.fetch_resp.error != SM_RAFT_ERR_NONE) {
        SM_DEBUG(RAFT_TAG, "node %d: Fetch from leader %d: error %d", r->cfg.node_id,
                 m->from, m->u.fetch_resp.error);
        r->next_fetch_ms = now + r->cfg.retry_backoff_ms;
        return;
    }
    r->fetch_deadline_ms = raft_fetch_deadline(r, now);
    r->fetched_ok = true;
    const sm_raft_offset_epoch_t div = m->u.fetch_resp.diverging;
    if (div.epoch >= 0) {
        sm_raft_offset_epoch_t mine = LOG_OPS(r)->end_offset_for_epoch(LOG_CTX(r), div.epoch);
        int64_t to = SM_MIN(div.end_offset, mine.end_offset);
        if (to < r->hw || to < 0 || div.epoch > r->epoch) {
            SM_ERROR(RAFT_TAG, "node %d: leader %d says diverging at %d@%lld, below hw %lld; "
                     "not truncating", r->cfg.node_id, m->from, div.epoch,
                     (long long)div.end_offset, (long long)r->hw);
            r->next_fetch_ms = now + r->cfg.retry_backoff_ms;
            return;
        }
        SM_INFO(RAFT_TAG, "node %d: truncating to %lld (diverging epoch %d end %lld)",
                r->cfg.node_id, (long long)to, div.epoch, (long long)div.end_offset);
        sm_err_t err = LOG_OPS(r)->truncate(LOG_CTX(r), to);
        if (err != SM_OK)
            SM_ERROR(RAFT_TAG, "node %d: truncating to %lld: %s", r->cfg.node_id,
                     (long long)to, sm_err_str(err));
        r->next_fetch_ms = err == SM_OK ? now : now + r->cfg.retry_backoff_ms;
        return;
    }
    const sm_raft_offset_epoch_t snap = m->u.fetch_resp.snapshot_id;
    if (snap.epoch >= 0) {
        if (!LOG_OPS(r)->snapshot_write || snap.end_offset < r->hw || snap.epoch > r->epoch) {
            SM_ERROR(RAFT_TAG, "node %d: leader %d sends snapshot %d@%lld (hw %lld); cannot "
                     "load it", r->cfg.node_id, m->from, snap.epoch, (long long)snap.end_offset,
                     (long long)r->hw);
            r->next_fetch_ms = now + r->cfg.request_timeout_ms;
            return;
        }
        SM_INFO(RAFT_TAG, "node %d: fetching snapshot %d@%lld from leader %d", r->cfg.node_id,
                snap.epoch, (long long)snap.end_offset, m->from);
        r->snap_fetching = true;
        r->snap_id = snap;
        r->snap_pos = 0;
        r->next_fetch_ms = now;
        return;
    }
    if (m->u.fetch_resp.records_len > 0) {
        sm_err_t err = LOG_OPS(r)->append_fetched(LOG_CTX(r), m->u.fetch_resp.records,
                                                  m->u.fetch_resp.records_len);
        if (err == SM_OK)
            err = LOG_OPS(r)->flush(LOG_CTX(r));
        if (err != SM_OK) {
            SM_WARN(RAFT_TAG, "node %d: records from leader %d refused: %s", r->cfg.node_id,
                    m->from, sm_err_str(err));
            r->next_fetch_ms = now + r->cfg.retry_backoff_ms;
            return;
        }
    }
    int64_t lhw = m->u.fetch_resp.high_watermark;
    if (lhw >= 0)
        raft_set_hw(r, SM_MIN(lhw, LOG_OPS(r)->flushed_offset(LOG_CTX(r))));
    r->next_fetch_ms = now;
}

int64_t raft_repl_deadline(const sm_raft_t *r)
{
    int64_t d = SM_MIN(r->fetch_deadline_ms, r->flush_deadline_ms);
    d = SM_MIN(d, r->check_quorum_deadline_ms);
    if (r->state == SM_RAFT_FOLLOWER || (r->state == SM_RAFT_UNATTACHED && !r->voter))
        d = SM_MIN(d, r->fetch_inflight ? r->fetch_sent_ms + r->cfg.request_timeout_ms
                                        : r->next_fetch_ms);
    if (r->state == SM_RAFT_LEADER) {
        for (int32_t i = 0; i < r->n_voters; i++)
            if (r->voters[i].parked)
                d = SM_MIN(d, r->voters[i].park_deadline_ms);
        for (int32_t i = 0; i < r->n_observers; i++)
            if (r->observers[i].parked)
                d = SM_MIN(d, r->observers[i].park_deadline_ms);
    }
    return d;
}
