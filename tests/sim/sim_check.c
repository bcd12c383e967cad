/*
 * sim_check.c - the simulator's invariants (listed at the top of sim_raft.c and
 * in docs/RAFT.md): checked after every event (sim_check_all), when a message
 * leaves a node, when a node saves its quorum state, and when its log truncates
 * or installs a snapshot. The first violation is recorded with sim_fail.
 */
#include "sim.h"

#include "sm_common.h"

#include <stdarg.h>
#include <string.h>

void sim_fail(sim_t *s, const char *fmt, ...)
{
    if (s->failed)
        return;
    s->failed = true;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(s->fail, sizeof(s->fail), fmt, ap);
    va_end(ap);
}

static void note_leader(sim_t *s, int32_t epoch, int32_t id)
{
    if (epoch >= s->epoch_cap) {
        int32_t cap = SM_MAX(epoch + 1, s->epoch_cap * 2);
        s->epoch_leader = sm_xrealloc(s->epoch_leader, sizeof(int32_t) * (size_t)cap);
        memset(s->epoch_leader + s->epoch_cap, 0, sizeof(int32_t) * (size_t)(cap - s->epoch_cap));
        s->epoch_cap = cap;
    }
    if (s->epoch_leader[epoch] == 0) {
        s->epoch_leader[epoch] = id;
        TRACE(s, "node %d leads epoch %d", id, epoch);
        /* Leader completeness: a new leader holds every committed entry. */
        const sim_log_t *log = &s->nodes[id - 1].log;
        for (int64_t off = 0; off < s->ref_len; off++) {
            const sim_batch_t *b = sim_log_batch_at(log, off, false);
            if (!b || b->hash != s->ref_hash[off]) {
                sim_fail(s, "node %d leads epoch %d without committed offset %" PRId64, id, epoch,
                     off);
                break;
            }
        }
    } else if (s->epoch_leader[epoch] != id) {
        sim_fail(s, "two leaders in epoch %d: %d and %d", epoch, s->epoch_leader[epoch], id);
    }
}

static void note_vote(sim_t *s, node_t *nd, int32_t epoch, int32_t cand)
{
    if (epoch >= nd->vote_cap) {
        int32_t cap = SM_MAX(epoch + 1, nd->vote_cap * 2);
        nd->vote_for = sm_xrealloc(nd->vote_for, sizeof(int32_t) * (size_t)cap);
        memset(nd->vote_for + nd->vote_cap, 0, sizeof(int32_t) * (size_t)(cap - nd->vote_cap));
        nd->vote_cap = cap;
    }
    if (nd->vote_for[epoch] == 0)
        nd->vote_for[epoch] = cand;
    else if (nd->vote_for[epoch] != cand)
        sim_fail(s, "node %d granted votes to %d and %d in epoch %d", nd->id, nd->vote_for[epoch],
             cand, epoch);
}

static void ref_push(sim_t *s, int32_t epoch, uint64_t hash, int32_t commit_epoch)
{
    if (s->ref_len == s->ref_cap) {
        s->ref_cap = s->ref_cap ? s->ref_cap * 2 : 256;
        s->ref_epoch = sm_xrealloc(s->ref_epoch, sizeof(int32_t) * (size_t)s->ref_cap);
        s->ref_commit_epoch =
            sm_xrealloc(s->ref_commit_epoch, sizeof(int32_t) * (size_t)s->ref_cap);
        s->ref_hash = sm_xrealloc(s->ref_hash, sizeof(uint64_t) * (size_t)s->ref_cap);
    }
    s->ref_commit_epoch[s->ref_len] = commit_epoch;
    s->ref_epoch[s->ref_len] = epoch;
    s->ref_hash[s->ref_len++] = hash;
}

/* Truncation hook. A node never drops an entry below its own hw. It may drop a
 * committed entry it has not seen committed only on the word of a stale leader
 * (Raft allows a follower outside the committing majority that): once it is at
 * the epoch in which the entry was committed or later, every leader it can
 * hear holds that entry (leader completeness), so dropping it is a violation. */
void sim_check_truncate(void *ctx, const sim_log_t *log, int64_t offset)
{
    node_t *nd = ctx;
    sim_t *s = nd->sim;
    int32_t ep = nd->r ? sm_raft_epoch(nd->r) : 0;
    if (nd->r && offset < sm_raft_committed(nd->r))
        sim_fail(s, "node %d truncates to %" PRId64 ", below its hw %" PRId64, nd->id, offset,
                 sm_raft_committed(nd->r));
    int64_t end = SM_MIN(sim_log_end(log), s->ref_len);
    for (int64_t off = offset; off < end; off++) {
        const sim_batch_t *b = sim_log_batch_at(log, off, false);
        if (b && b->hash == s->ref_hash[off] && b->epoch == s->ref_epoch[off] &&
            ep >= s->ref_commit_epoch[off]) {
            sim_fail(s, "node %d in epoch %d truncates to %" PRId64 ", dropping offset %" PRId64
                     " committed in epoch %d", nd->id, ep, offset, off, s->ref_commit_epoch[off]);
            return;
        }
    }
    TRACE(s, "node %d truncates its log to %" PRId64, nd->id, offset);
}

/* DescribeQuorum on the leader: sane offsets and timestamps. */
static void check_describe(sim_t *s, node_t *nd)
{
    sm_raft_describe_t d;
    sm_raft_describe(nd->r, &d);
    int64_t leo = sim_log_end(&nd->log);
    if (d.leader_id != nd->id || d.high_watermark > leo || d.n_voters != s->n_voters ||
        d.n_observers > s->n_obs)
        sim_fail(s, "describe on leader %d: leader %d hw %" PRId64 " voters %d observers %d",
             nd->id, d.leader_id, d.high_watermark, d.n_voters, d.n_observers);
    for (int i = 0; i < d.n_voters + d.n_observers; i++) {
        const sm_raft_replica_desc_t *v = i < d.n_voters ? &d.voters[i]
                                                         : &d.observers[i - d.n_voters];
        if (v->end_offset > leo || v->last_fetch_ms > s->now ||
            v->last_caught_up_ms > v->last_fetch_ms ||
            (i >= d.n_voters && (v->id <= s->n_voters || v->id > s->n)))
            sim_fail(s, "describe on leader %d: replica %d end %" PRId64 " fetch %" PRId64
                 " caught up %" PRId64, nd->id, v->id, v->end_offset, v->last_fetch_ms,
                 v->last_caught_up_ms);
    }
}

/* A snapshot replaces a follower's log: never on a leader, never dropping a
 * committed entry above the snapshot; entries below are re-verified. */
void sim_check_install(void *ctx, const sim_log_t *log, int64_t end)
{
    node_t *nd = ctx;
    sim_t *s = nd->sim;
    if (nd->r && sm_raft_state(nd->r) == SM_RAFT_LEADER)
        sim_fail(s, "leader %d installs a snapshot", nd->id);
    sim_check_truncate(ctx, log, end);
    nd->verified = 0;
    s->installs++;
    TRACE(s, "node %d installs a snapshot ending at %" PRId64, nd->id, end);
}


void sim_check_all(sim_t *s)
{
    for (int i = 0; i < s->n && !s->failed; i++) {
        node_t *nd = &s->nodes[i];
        if (!nd->up)
            continue;
        sm_raft_t *r = nd->r;
        int32_t ep = sm_raft_epoch(r);
        int64_t hw = sm_raft_committed(r);
        if (ep < nd->epoch_seen)
            sim_fail(s, "node %d epoch went back from %d to %d", nd->id, nd->epoch_seen, ep);
        nd->epoch_seen = ep;
        if (ep > s->max_epoch)
            s->max_epoch = ep;
        if (ep != nd->durable.epoch)
            sim_fail(s, "node %d runs epoch %d but its durable epoch is %d", nd->id, ep,
                 nd->durable.epoch);
        if (hw < nd->hw_seen)
            sim_fail(s, "node %d high watermark went back from %" PRId64 " to %" PRId64, nd->id,
                 nd->hw_seen, hw);
        nd->hw_seen = hw;
        if (sm_raft_state(r) == SM_RAFT_LEADER) {
            note_leader(s, ep, nd->id);
            check_describe(s, nd);
        }
        if (nd->log.start_offset > 0 &&
            (nd->log.start_snap.end_offset != nd->log.start_offset ||
             !sim_log_has_snapshot(&nd->log, nd->log.start_snap)))
            sim_fail(s, "node %d log starts at %" PRId64 " but no snapshot it keeps ends there",
                 nd->id, nd->log.start_offset);
        if (hw > sim_log_end(&nd->log))
            sim_fail(s, "node %d hw %" PRId64 " beyond its log end %" PRId64, nd->id, hw,
                 sim_log_end(&nd->log));
        for (int64_t off = nd->verified; off < hw && !s->failed; off++) {
            const sim_batch_t *b = sim_log_batch_at(&nd->log, off, false);
            if (!b) {
                sim_fail(s, "node %d has no entry at committed offset %" PRId64, nd->id, off);
            } else if (off < s->ref_len) {
                if (b->hash != s->ref_hash[off] || b->epoch != s->ref_epoch[off])
                    sim_fail(s, "node %d committed offset %" PRId64 " (epoch %d) differs from the "
                         "cluster's (epoch %d)", nd->id, off, b->epoch, s->ref_epoch[off]);
            } else {
                ref_push(s, b->epoch, b->hash, ep);
            }
        }
        if (hw > nd->verified)
            nd->verified = hw;
    }
    if (s->failed || s->ref_len == 0)
        return;
    /* The committed offset is durable on a majority of voters. */
    int64_t last = s->ref_len - 1;
    int32_t have = 0;
    for (int i = 0; i < s->n_voters; i++) {
        const sim_batch_t *b = sim_log_batch_at(&s->nodes[i].log, last, true);
        have += b && b->hash == s->ref_hash[last];
    }
    if (have < sim_majority(s))
        sim_fail(s, "committed offset %" PRId64 " is durable on %d voters only (majority %d)",
             s->ref_len, have, sim_majority(s));
    /* Liveness probe: a proposal made after the heal is committed everywhere. */
    if (s->healed && s->probe_offset >= 0 && s->ref_len > s->probe_offset) {
        if (s->ref_hash[s->probe_offset] != s->probe_hash) {
            s->probe_offset = -1; /* that proposal lost its leader; the next one counts */
            return;
        }
        for (int i = 0; i < s->n; i++)
            if (s->nodes[i].up && sm_raft_committed(s->nodes[i].r) <= s->probe_offset)
                return;
        s->done = true;
    }
}

void sim_check_send(sim_t *s, node_t *nd, const sm_raft_msg_t *m)
{
    if (m->kind != SM_RAFT_MSG_VOTE_RESP || !m->u.vote_resp.vote_granted ||
        m->u.vote_resp.pre_vote)
        return;
    if (nd->durable.epoch != m->u.vote_resp.leader_epoch || nd->durable.voted_id != m->to)
        sim_fail(s, "node %d grants %d a vote in epoch %d but its durable state is epoch %d "
             "voted %d", nd->id, m->to, m->u.vote_resp.leader_epoch, nd->durable.epoch,
             nd->durable.voted_id);
    note_vote(s, nd, m->u.vote_resp.leader_epoch, m->to);
}

void sim_check_save(sim_t *s, node_t *nd, const sm_raft_quorum_state_t *qs)
{
    if (qs->epoch < nd->durable.epoch)
        sim_fail(s, "node %d saves epoch %d below its durable %d", nd->id, qs->epoch,
             nd->durable.epoch);
    if (qs->epoch == nd->durable.epoch && nd->durable.voted_id != SM_RAFT_NO_ID &&
        qs->voted_id != nd->durable.voted_id)
        sim_fail(s, "node %d changes its durable vote in epoch %d from %d to %d", nd->id,
             qs->epoch, nd->durable.voted_id, qs->voted_id);
}

void sim_trace_msg(sim_t *s, const sm_raft_msg_t *m, node_t *to)
{
    char b[200] = "";
    switch (m->kind) {
    case SM_RAFT_MSG_VOTE:
        snprintf(b, sizeof(b), "epoch %d last %d@%" PRId64 "%s", m->u.vote.candidate_epoch,
                 m->u.vote.last_offset_epoch, m->u.vote.last_offset,
                 m->u.vote.pre_vote ? " pre" : "");
        break;
    case SM_RAFT_MSG_VOTE_RESP:
        snprintf(b, sizeof(b), "err %d epoch %d leader %d %s%s", m->u.vote_resp.error,
                 m->u.vote_resp.leader_epoch, m->u.vote_resp.leader_id,
                 m->u.vote_resp.vote_granted ? "granted" : "refused",
                 m->u.vote_resp.pre_vote ? " pre" : "");
        break;
    case SM_RAFT_MSG_FETCH:
        snprintf(b, sizeof(b), "epoch %d offset %" PRId64 " last epoch %d",
                 m->u.fetch.current_leader_epoch, m->u.fetch.fetch_offset,
                 m->u.fetch.last_fetched_epoch);
        break;
    case SM_RAFT_MSG_FETCH_RESP:
        snprintf(b, sizeof(b), "err %d leader %d@%d hw %" PRId64 " bytes %zu diverging %d@%" PRId64,
                 m->u.fetch_resp.error, m->u.fetch_resp.current_leader.leader_id,
                 m->u.fetch_resp.current_leader.leader_epoch, m->u.fetch_resp.high_watermark,
                 m->u.fetch_resp.records_len, m->u.fetch_resp.diverging.epoch,
                 m->u.fetch_resp.diverging.end_offset);
        break;
    default: break;
    }
    TRACE(s, "deliver %d -> %d %s %s (to: %s epoch %d)", m->from, m->to,
          sm_raft_msg_kind_name(m->kind), b, sm_raft_state_name(sm_raft_state(to->r)),
          sm_raft_epoch(to->r));
}
