/*
 * raft_election.c - the election side of the quorum: Vote and PreVote (KIP-996)
 * on both ends, BeginQuorumEpoch and EndQuorumEpoch on both ends. The states
 * and transitions these handlers drive are drawn at the top of raft.c.
 *
 * Vote rules: a real vote is granted at most once per epoch, to a voter whose
 * (last epoch, end offset) is at least ours, only when no leader is known; it
 * leaves the node only after the host saved (epoch, votedId) (the outbox is held
 * until then). A pre-vote changes nothing and is refused only by a node that
 * believes in a live leader.
 */
#include "raft_internal.h"

#include "log.h"

#include <string.h>


/* KIP-996: a pre-vote is refused only by a leader, or by a follower that has
 * fetched from its leader successfully (and so has reason to believe in it). A
 * follower of a leader it never reached grants, so that voters which time out
 * on a dead leader at different moments still form a majority. */
static bool raft_leader_alive(const sm_raft_t *r)
{
    return r->state == SM_RAFT_LEADER || (r->state == SM_RAFT_FOLLOWER && r->fetched_ok);
}

static void raft_vote_reply(sm_raft_t *r, const sm_raft_msg_t *req, int16_t err, bool granted)
{
    sm_raft_msg_t *m = raft_out(r, SM_RAFT_MSG_VOTE_RESP, req->from, req->corr);
    m->u.vote_resp.error = err;
    m->u.vote_resp.leader_id = raft_leader_known(r) ? r->leader_id : SM_RAFT_NO_ID;
    m->u.vote_resp.leader_epoch = r->epoch;
    m->u.vote_resp.vote_granted = granted;
    m->u.vote_resp.pre_vote = req->u.vote.pre_vote;
}

void raft_on_vote(sm_raft_t *r, int64_t now, const sm_raft_msg_t *m)
{
    const int32_t cand = m->u.vote.candidate_id, cepoch = m->u.vote.candidate_epoch;
    if (!r->voter || cand != m->from || !raft_voter(r, cand)) {
        SM_WARN(RAFT_TAG, "node %d: Vote from %d for candidate %d: not a voter pair",
                r->cfg.node_id, m->from, cand);
        raft_vote_reply(r, m, SM_RAFT_ERR_INCONSISTENT_VOTER_SET, false);
        return;
    }
    if (cepoch < 0 || m->u.vote.last_offset < 0 || m->u.vote.last_offset_epoch < 0 ||
        m->u.vote.last_offset_epoch > cepoch) {
        SM_WARN(RAFT_TAG, "node %d: malformed Vote from %d (epoch %d, last %d@%lld)",
                r->cfg.node_id, cand, cepoch, m->u.vote.last_offset_epoch,
                (long long)m->u.vote.last_offset);
        raft_vote_reply(r, m, SM_RAFT_ERR_INVALID_REQUEST, false);
        return;
    }
    if (cepoch < r->epoch) {
        raft_vote_reply(r, m, SM_RAFT_ERR_FENCED_LEADER_EPOCH, false);
        return;
    }
    int32_t my_last = r->env.log->last_epoch(r->env.log_ctx);
    int64_t my_end = r->env.log->end_offset(r->env.log_ctx);
    bool log_ok = m->u.vote.last_offset_epoch > my_last ||
                  (m->u.vote.last_offset_epoch == my_last && m->u.vote.last_offset >= my_end);
    /* A higher epoch is news whatever the request: move to it, without a vote
     * (KIP-996 likewise). Otherwise a node that reached an epoch the others never
     * saw (a candidate that lost, say) could never be elected nor follow: its
     * pre-votes would be refused by voters following a leader of a lower epoch,
     * and it ignores that leader's lower epoch (found by sim_raft seed 25485). */
    if (cepoch > r->epoch)
        raft_become_unattached(r, now, cepoch, SM_RAFT_NO_ID, raft_election_timeout(r));
    if (m->u.vote.pre_vote) {
        /* Pre-vote for cepoch + 1: no vote is cast, nothing else changes; grant if
         * we do not believe in a live leader and the log is fine. */
        bool grant = log_ok && !raft_leader_alive(r) && cand != r->cfg.node_id;
        raft_vote_reply(r, m, SM_RAFT_ERR_NONE, grant);
        return;
    }
    bool grant = log_ok && !raft_leader_known(r) &&
                 (r->voted_id == SM_RAFT_NO_ID || r->voted_id == cand) &&
                 r->state != SM_RAFT_CANDIDATE && r->state != SM_RAFT_RESIGNED;
    if (grant) {
        /* raft_grant_vote: the vote is made durable before the reply leaves
         * (the outbox is held until the host acknowledges the save). */
        raft_become_unattached(r, now, r->epoch, cand, raft_election_timeout(r));
        SM_INFO(RAFT_TAG, "node %d: votes for %d in epoch %d", r->cfg.node_id, cand, r->epoch);
    }
    raft_vote_reply(r, m, SM_RAFT_ERR_NONE, grant);
}

/* A pre-vote round failed (majority refused, or timed out): go back to the leader
 * we timed out on, if any, to find out whether it lives (answers to the others
 * named it); otherwise wait a random backoff and try again. */
void raft_prospective_lost(sm_raft_t *r, int64_t now)
{
    if (r->abandoned_leader != SM_RAFT_NO_ID && r->abandoned_leader != r->cfg.node_id)
        raft_become_follower(r, now, r->epoch, r->abandoned_leader);
    else
        raft_become_unattached(r, now, r->epoch, SM_RAFT_NO_ID,
                               raft_rand_range(r, r->cfg.retry_backoff_ms,
                                               r->cfg.election_backoff_max_ms));
}

static int32_t raft_count(const sm_raft_t *r, bool granted)
{
    int32_t n = 0;
    for (int32_t i = 0; i < r->n_voters; i++)
        n += granted ? r->voters[i].granted : r->voters[i].rejected;
    return n;
}

void raft_on_vote_resp(sm_raft_t *r, int64_t now, const sm_raft_msg_t *m)
{
    const int32_t lepoch = m->u.vote_resp.leader_epoch, lid = m->u.vote_resp.leader_id;
    if (lepoch > r->epoch) {
        raft_observe_epoch(r, now, lepoch, lid);
        return;
    }
    raft_replica_t *v = raft_voter(r, m->from);
    if (!r->voter || !v || m->from == r->cfg.node_id)
        return;
    /* A voter names the leader of our epoch: follow it, unless it is the leader we
     * just timed out on, or ourselves (a voter still following our previous life,
     * e.g. after we resigned or restarted): then it counts as an answer. */
    if (lepoch == r->epoch && lid != SM_RAFT_NO_ID && lid != r->abandoned_leader &&
        lid != r->cfg.node_id &&
        (r->state == SM_RAFT_PROSPECTIVE || r->state == SM_RAFT_CANDIDATE)) {
        raft_observe_epoch(r, now, lepoch, lid); /* a leader exists: follow it */
        return;
    }
    bool want_pre = r->state == SM_RAFT_PROSPECTIVE, want_vote = r->state == SM_RAFT_CANDIDATE;
    if (m->corr != r->round_corr || (!want_pre && !want_vote) ||
        m->u.vote_resp.pre_vote != want_pre)
        return; /* late, duplicated or from another round */
    if (want_vote && lepoch != r->epoch)
        return;
    if (m->u.vote_resp.vote_granted && m->u.vote_resp.error == SM_RAFT_ERR_NONE)
        v->granted = true;
    else
        v->rejected = true;
    if (raft_count(r, true) >= raft_majority(r)) {
        if (want_pre)
            raft_become_candidate(r, now);
        else
            raft_become_leader(r, now);
    } else if (want_pre && raft_count(r, false) >= raft_majority(r)) {
        raft_prospective_lost(r, now);
    }
}

static void raft_epoch_reply(sm_raft_t *r, const sm_raft_msg_t *req, sm_raft_msg_kind_t kind,
                             int16_t err)
{
    sm_raft_msg_t *m = raft_out(r, kind, req->from, req->corr);
    m->u.epoch_resp.error = err;
    m->u.epoch_resp.leader_id = raft_leader_known(r) ? r->leader_id : SM_RAFT_NO_ID;
    m->u.epoch_resp.leader_epoch = r->epoch;
}

void raft_on_begin_epoch(sm_raft_t *r, int64_t now, const sm_raft_msg_t *m)
{
    const int32_t lid = m->u.begin.leader_id, lepoch = m->u.begin.leader_epoch;
    if (!r->voter || lid != m->from || !raft_voter(r, lid) || lid == r->cfg.node_id) {
        raft_epoch_reply(r, m, SM_RAFT_MSG_BEGIN_EPOCH_RESP, SM_RAFT_ERR_INCONSISTENT_VOTER_SET);
        return;
    }
    if (lepoch < r->epoch) {
        raft_epoch_reply(r, m, SM_RAFT_MSG_BEGIN_EPOCH_RESP, SM_RAFT_ERR_FENCED_LEADER_EPOCH);
        return;
    }
    if (lepoch == r->epoch && (r->state == SM_RAFT_LEADER || r->state == SM_RAFT_RESIGNED ||
                               (r->state == SM_RAFT_FOLLOWER && r->leader_id != lid))) {
        SM_ERROR(RAFT_TAG, "node %d: BeginQuorumEpoch from %d for epoch %d, which %d leads",
                 r->cfg.node_id, lid, lepoch, r->leader_id);
        raft_epoch_reply(r, m, SM_RAFT_MSG_BEGIN_EPOCH_RESP, SM_RAFT_ERR_INVALID_REQUEST);
        return;
    }
    raft_become_follower(r, now, lepoch, lid);
    raft_epoch_reply(r, m, SM_RAFT_MSG_BEGIN_EPOCH_RESP, SM_RAFT_ERR_NONE);
}

void raft_on_end_epoch(sm_raft_t *r, int64_t now, const sm_raft_msg_t *m)
{
    const int32_t lid = m->u.end.leader_id, lepoch = m->u.end.leader_epoch;
    if (!r->voter || lid != m->from || !raft_voter(r, lid) || m->u.end.n_preferred < 0 ||
        m->u.end.n_preferred > SM_RAFT_MAX_VOTERS) {
        raft_epoch_reply(r, m, SM_RAFT_MSG_END_EPOCH_RESP, SM_RAFT_ERR_INCONSISTENT_VOTER_SET);
        return;
    }
    if (lepoch < r->epoch) {
        raft_epoch_reply(r, m, SM_RAFT_MSG_END_EPOCH_RESP, SM_RAFT_ERR_FENCED_LEADER_EPOCH);
        return;
    }
    if (lepoch > r->epoch || (r->state == SM_RAFT_FOLLOWER && r->leader_id == lid)) {
        /* The leader is gone. Preferred candidates time out first, in order
         * (strict exponential backoff); others after a full election timeout. */
        int64_t timeout = raft_election_timeout(r);
        for (int32_t i = 0; i < m->u.end.n_preferred; i++)
            if (m->u.end.preferred[i] == r->cfg.node_id) {
                int64_t b = (int64_t)r->cfg.retry_backoff_ms << (i < 20 ? i : 20);
                timeout = SM_MIN(b, (int64_t)r->cfg.election_backoff_max_ms);
                break;
            }
        int32_t voted = lepoch == r->epoch ? r->voted_id : SM_RAFT_NO_ID;
        raft_become_unattached(r, now, lepoch, voted, timeout);
    }
    raft_epoch_reply(r, m, SM_RAFT_MSG_END_EPOCH_RESP, SM_RAFT_ERR_NONE);
}

void raft_on_epoch_resp(sm_raft_t *r, int64_t now, const sm_raft_msg_t *m)
{
    const int32_t lepoch = m->u.epoch_resp.leader_epoch;
    if (lepoch > r->epoch) {
        raft_observe_epoch(r, now, lepoch, m->u.epoch_resp.leader_id);
        return;
    }
    raft_replica_t *v = raft_voter(r, m->from);
    if (!v || lepoch != r->epoch || m->u.epoch_resp.error != SM_RAFT_ERR_NONE)
        return;
    if ((m->kind == SM_RAFT_MSG_BEGIN_EPOCH_RESP && r->state == SM_RAFT_LEADER) ||
        (m->kind == SM_RAFT_MSG_END_EPOCH_RESP && r->state == SM_RAFT_RESIGNED))
        v->epoch_acked = true;
}
