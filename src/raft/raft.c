/*
 * raft.c - KRaft's Raft for __cluster_metadata-0: states and transitions, the
 * persistence gate, the outbox and the API. The election messages (Vote,
 * PreVote, Begin/EndQuorumEpoch) are handled in raft_election.c; replication
 * (Fetch, high watermark, proposals, snapshots) in raft_repl.c.
 *
 *  any state --(message with a higher epoch)--> UNATTACHED(e) or FOLLOWER(e, leader)
 *                                                            [raft_observe_epoch]
 *
 *      vote granted: stays UNATTACHED(voted)     fetch timeout (voter) [raft_follower_tick]
 *      [raft_grant_vote]                     +----------------------------------------+
 *           |                                |                                        |
 *           v                                v                                        |
 *   +------------+ election timeout  +-------------+ majority of   +-----------+      |
 *   | UNATTACHED |------------------>| PROSPECTIVE |-------------->| CANDIDATE |      |
 *   |            | [become_          |  (pre-vote, |  pre-votes    | (epoch+1, |      |
 *   |            |  prospective]     |   same      | [become_      |  voted    |      |
 *   |            |<------------------|   epoch)    |  candidate]   |  self)    |      |
 *   +------------+ majority rejected +-------------+               +-----------+      |
 *     |     ^     or timeout [become_unattached]   ^  timeout: back off, then  |      |
 *     |     |                                      +-- UNATTACHED(voted self) -+      |
 *     |     | EndQuorumEpoch from its leader           [become_unattached]     |      |
 *     |     | [raft_on_end_epoch -> become_unattached]                majority |      |
 *     |     |                                                         votes    v      |
 *     |  +----------+   BeginQuorumEpoch, or a leader named in   +--------+           |
 *     +->| FOLLOWER |<-- any answer at its epoch [become_follower]| LEADER |           |
 *        +----------+   (from UNATTACHED, PROSPECTIVE, CANDIDATE)+--------+           |
 *             |                                   [become_leader] |                   |
 *             +-----------------------------------------------------------------------+
 *                                    sm_raft_resign or check quorum lost   |
 *                                    [become_resigned]                     v
 *                                                               +----------+
 *                  election timeout [become_prospective] <------| RESIGNED |
 *                                                               +----------+
 * FOLLOWER has one sub-state: when the leader answers a fetch with a SnapshotId it
 * fetches that snapshot by position instead of the log (raft_on_fetch_resp sets
 * snap_fetching; raft_on_fetch_snapshot_resp installs it and goes back to the log).
 * Observers (not in controller.quorum.voters) only ever are UNATTACHED (probing a
 * random voter with Fetch to learn the leader) or FOLLOWER.
 * Without pre_vote, UNATTACHED and RESIGNED go straight to CANDIDATE.
 *
 * Invariants (SM_ASSERT): epoch never decreases; voted_id changes only from
 * NO_ID within an epoch; a node is LEADER only of an epoch it voted itself in;
 * the outbox is drained and the save acknowledged before the next call.
 * Safety rules: a real vote is granted at most once per epoch, only to a voter
 * whose (last epoch, end offset) is at least ours, only when no leader is known,
 * and the grant leaves the node only after (epoch, votedId) is durable.
 */
#include "raft_internal.h"

#include "log.h"

#include <stdlib.h>
#include <string.h>

const char *sm_raft_state_name(sm_raft_state_t s)
{
    switch (s) {
    case SM_RAFT_UNATTACHED: return "Unattached";
    case SM_RAFT_PROSPECTIVE: return "Prospective";
    case SM_RAFT_CANDIDATE: return "Candidate";
    case SM_RAFT_LEADER: return "Leader";
    case SM_RAFT_FOLLOWER: return "Follower";
    case SM_RAFT_RESIGNED: return "Resigned";
    }
    return "?";
}

const char *sm_raft_msg_kind_name(sm_raft_msg_kind_t k)
{
    switch (k) {
    case SM_RAFT_MSG_VOTE: return "Vote";
    case SM_RAFT_MSG_VOTE_RESP: return "VoteResponse";
    case SM_RAFT_MSG_BEGIN_EPOCH: return "BeginQuorumEpoch";
    case SM_RAFT_MSG_BEGIN_EPOCH_RESP: return "BeginQuorumEpochResponse";
    case SM_RAFT_MSG_END_EPOCH: return "EndQuorumEpoch";
    case SM_RAFT_MSG_END_EPOCH_RESP: return "EndQuorumEpochResponse";
    case SM_RAFT_MSG_FETCH: return "Fetch";
    case SM_RAFT_MSG_FETCH_RESP: return "FetchResponse";
    case SM_RAFT_MSG_FETCH_SNAPSHOT: return "FetchSnapshot";
    case SM_RAFT_MSG_FETCH_SNAPSHOT_RESP: return "FetchSnapshotResponse";
    }
    return "?";
}

void sm_raft_config_defaults(sm_raft_config_t *c)
{
    memset(c, 0, sizeof(*c));
    c->node_id = SM_RAFT_NO_ID;
    c->election_timeout_ms = 1000;
    c->fetch_timeout_ms = 2000;
    c->election_backoff_max_ms = 1000;
    c->request_timeout_ms = 2000;
    c->append_linger_ms = 25;
    c->retry_backoff_ms = 20;
    c->fetch_max_wait_ms = 500;
    c->fetch_max_bytes = 1 << 20;
    c->pre_vote = true;
    c->initial.epoch = 0;
    c->initial.voted_id = SM_RAFT_NO_ID;
    c->initial.leader_id = SM_RAFT_NO_ID;
}

/* ------------------------------------------------------------ helpers */

raft_replica_t *raft_voter(sm_raft_t *r, int32_t id)
{
    for (int32_t i = 0; i < r->n_voters; i++)
        if (r->voters[i].id == id)
            return &r->voters[i];
    return NULL;
}

int32_t raft_majority(const sm_raft_t *r) { return r->n_voters / 2 + 1; }

int64_t raft_rand_range(sm_raft_t *r, int64_t lo, int64_t hi)
{
    if (hi <= lo)
        return lo;
    uint64_t x = r->env.rand(r->env.rand_ctx);
    return lo + (int64_t)(x % (uint64_t)(hi - lo + 1));
}

int64_t raft_fetch_deadline(sm_raft_t *r, int64_t now)
{
    int64_t t = r->cfg.fetch_timeout_ms;
    return now + t + raft_rand_range(r, 0, t / 8);
}

/* Kafka randomizes the election timeout in [timeout, 2 * timeout). */
int64_t raft_election_timeout(sm_raft_t *r)
{
    int64_t t = r->cfg.election_timeout_ms;
    return raft_rand_range(r, t, 2 * t - 1);
}

static void raft_mark_dirty(sm_raft_t *r)
{
    if (r->epoch != r->saved.epoch || r->voted_id != r->saved.voted_id ||
        r->leader_id != r->saved.leader_id)
        r->save_pending = true;
}

sm_raft_msg_t *raft_out(sm_raft_t *r, sm_raft_msg_kind_t kind, int32_t to, int64_t corr)
{
    SM_ASSERT(r->out_n < SM_RAFT_OUTBOX_CAP);
    sm_raft_msg_t *m = &r->outbox[r->out_n++];
    memset(m, 0, sizeof(*m));
    m->kind = kind;
    m->from = r->cfg.node_id;
    m->to = to;
    m->corr = corr ? corr : ++r->next_corr;
    return m;
}

void raft_set_hw(sm_raft_t *r, int64_t hw)
{
    if (hw <= r->hw)
        return;
    int64_t old = r->hw;
    r->hw = hw;
    if (r->env.listener.committed)
        r->env.listener.committed(r->env.listener.ctx, old, hw);
}

static void raft_notify_leader(sm_raft_t *r)
{
    if (r->env.listener.leader_change)
        r->env.listener.leader_change(r->env.listener.ctx, r->leader_id, r->epoch);
}

static void raft_reset_replicas(sm_raft_t *r)
{
    for (int32_t i = 0; i < r->n_voters; i++) {
        raft_replica_t *v = &r->voters[i];
        int32_t id = v->id;
        memset(v, 0, sizeof(*v));
        v->id = id;
        v->end_offset = -1;
        v->last_fetch_ms = v->last_caught_up_ms = v->prev_fetch_ms = -1;
    }
    r->n_observers = 0;
}

static void raft_clear_timers(sm_raft_t *r)
{
    r->election_deadline_ms = RAFT_NEVER;
    r->fetch_deadline_ms = RAFT_NEVER;
    r->flush_deadline_ms = RAFT_NEVER;
    r->check_quorum_deadline_ms = RAFT_NEVER;
    r->epoch_resend_ms = RAFT_NEVER;
    r->fetch_inflight = false;
    r->next_fetch_ms = RAFT_NEVER;
    r->snap_fetching = false;
}

/* Moving to a new epoch forgets the vote; within an epoch a vote is never changed. */
static void raft_set_epoch(sm_raft_t *r, int32_t epoch)
{
    SM_ASSERT(epoch >= r->epoch);
    if (epoch > r->epoch) {
        r->epoch = epoch;
        r->voted_id = SM_RAFT_NO_ID;
        r->leader_id = SM_RAFT_NO_ID;
        r->abandoned_leader = SM_RAFT_NO_ID;
    }
}

/* ------------------------------------------------------------ transitions */

void raft_become_unattached(sm_raft_t *r, int64_t now, int32_t epoch, int32_t voted,
                            int64_t timeout_ms)
{
    bool had_leader = r->leader_id != SM_RAFT_NO_ID;
    raft_set_epoch(r, epoch);
    if (voted != SM_RAFT_NO_ID) {
        SM_ASSERT(r->voted_id == SM_RAFT_NO_ID || r->voted_id == voted);
        r->voted_id = voted;
    }
    r->leader_id = SM_RAFT_NO_ID;
    r->state = SM_RAFT_UNATTACHED;
    raft_clear_timers(r);
    raft_reset_replicas(r);
    if (r->voter)
        r->election_deadline_ms = now + timeout_ms;
    else
        r->next_fetch_ms = now; /* observers probe a voter for the leader */
    raft_mark_dirty(r);
    if (had_leader)
        raft_notify_leader(r);
    SM_DEBUG(RAFT_TAG, "node %d: Unattached epoch %d voted %d", r->cfg.node_id, r->epoch,
             r->voted_id);
}

void raft_become_follower(sm_raft_t *r, int64_t now, int32_t epoch, int32_t leader)
{
    SM_ASSERT(leader != r->cfg.node_id);
    if (epoch == r->epoch) {
        SM_ASSERT(r->state != SM_RAFT_LEADER && r->state != SM_RAFT_RESIGNED);
        if (r->state == SM_RAFT_FOLLOWER && r->leader_id == leader)
            return;
    }
    raft_set_epoch(r, epoch);
    r->leader_id = leader;
    r->state = SM_RAFT_FOLLOWER;
    r->fetched_ok = false;
    raft_clear_timers(r);
    raft_reset_replicas(r);
    r->fetch_deadline_ms = raft_fetch_deadline(r, now);
    r->next_fetch_ms = now;
    raft_mark_dirty(r);
    raft_notify_leader(r);
    SM_INFO(RAFT_TAG, "node %d: Follower of %d in epoch %d", r->cfg.node_id, leader, epoch);
}

static void raft_send_vote_requests(sm_raft_t *r, bool pre_vote)
{
    r->round_corr = ++r->next_corr;
    for (int32_t i = 0; i < r->n_voters; i++) {
        raft_replica_t *v = &r->voters[i];
        if (v->id == r->cfg.node_id)
            continue;
        sm_raft_msg_t *m = raft_out(r, SM_RAFT_MSG_VOTE, v->id, r->round_corr);
        m->u.vote.candidate_epoch = r->epoch; /* a pre-vote asks for epoch + 1 */
        m->u.vote.candidate_id = r->cfg.node_id;
        m->u.vote.last_offset_epoch = r->env.log->last_epoch(r->env.log_ctx);
        m->u.vote.last_offset = r->env.log->end_offset(r->env.log_ctx);
        m->u.vote.pre_vote = pre_vote;
    }
}

void raft_become_leader(sm_raft_t *r, int64_t now)
{
    SM_ASSERT(r->state == SM_RAFT_CANDIDATE && r->voted_id == r->cfg.node_id);
    r->state = SM_RAFT_LEADER;
    r->leader_id = r->cfg.node_id;
    raft_clear_timers(r);
    raft_reset_replicas(r);
    raft_mark_dirty(r);
    SM_INFO(RAFT_TAG, "node %d: Leader of epoch %d", r->cfg.node_id, r->epoch);
    raft_leader_start(r, now);
    raft_notify_leader(r);
}

void raft_become_candidate(sm_raft_t *r, int64_t now)
{
    SM_ASSERT(r->voter);
    raft_set_epoch(r, r->epoch + 1);
    r->voted_id = r->cfg.node_id;
    r->state = SM_RAFT_CANDIDATE;
    raft_clear_timers(r);
    raft_reset_replicas(r);
    raft_voter(r, r->cfg.node_id)->granted = true;
    r->election_deadline_ms = now + raft_election_timeout(r);
    raft_mark_dirty(r);
    SM_INFO(RAFT_TAG, "node %d: Candidate in epoch %d", r->cfg.node_id, r->epoch);
    if (raft_majority(r) <= 1)
        raft_become_leader(r, now);
    else
        raft_send_vote_requests(r, false);
}

void raft_become_prospective(sm_raft_t *r, int64_t now)
{
    SM_ASSERT(r->voter);
    if (!r->cfg.pre_vote) {
        raft_become_candidate(r, now);
        return;
    }
    bool had_leader = r->leader_id != SM_RAFT_NO_ID;
    if (r->state == SM_RAFT_FOLLOWER)
        r->abandoned_leader = r->leader_id;
    r->state = SM_RAFT_PROSPECTIVE;
    r->leader_id = SM_RAFT_NO_ID;
    raft_clear_timers(r);
    raft_reset_replicas(r);
    raft_voter(r, r->cfg.node_id)->granted = true;
    r->election_deadline_ms = now + raft_election_timeout(r);
    raft_mark_dirty(r);
    if (had_leader)
        raft_notify_leader(r);
    SM_DEBUG(RAFT_TAG, "node %d: Prospective in epoch %d", r->cfg.node_id, r->epoch);
    if (raft_majority(r) <= 1)
        raft_become_candidate(r, now);
    else
        raft_send_vote_requests(r, true);
}

static void raft_send_end_epoch(sm_raft_t *r, int64_t now)
{
    for (int32_t i = 0; i < r->n_voters; i++) {
        raft_replica_t *v = &r->voters[i];
        if (v->id == r->cfg.node_id || v->epoch_acked)
            continue;
        sm_raft_msg_t *m = raft_out(r, SM_RAFT_MSG_END_EPOCH, v->id, 0);
        m->u.end.leader_id = r->cfg.node_id;
        m->u.end.leader_epoch = r->epoch;
        m->u.end.n_preferred = r->n_preferred;
        memcpy(m->u.end.preferred, r->preferred, sizeof(r->preferred));
    }
    r->epoch_resend_ms = now + r->cfg.request_timeout_ms;
}

void raft_become_resigned(sm_raft_t *r, int64_t now)
{
    SM_ASSERT(r->state == SM_RAFT_LEADER);
    /* Preferred candidates: the voters that had fetched furthest, best first. */
    r->n_preferred = 0;
    for (int32_t i = 0; i < r->n_voters; i++)
        if (r->voters[i].id != r->cfg.node_id)
            r->preferred[r->n_preferred++] = r->voters[i].id;
    for (int32_t i = 1; i < r->n_preferred; i++)
        for (int32_t j = i; j > 0; j--) {
            int64_t a = raft_voter(r, r->preferred[j - 1])->end_offset;
            int64_t b = raft_voter(r, r->preferred[j])->end_offset;
            if (a >= b)
                break;
            int32_t t = r->preferred[j];
            r->preferred[j] = r->preferred[j - 1];
            r->preferred[j - 1] = t;
        }
    raft_leader_complete_parked(r, now, false); /* answer parked fetches before going */
    r->state = SM_RAFT_RESIGNED;
    raft_clear_timers(r);
    raft_reset_replicas(r);
    r->election_deadline_ms = now + raft_election_timeout(r);
    SM_INFO(RAFT_TAG, "node %d: Resigned in epoch %d", r->cfg.node_id, r->epoch);
    raft_send_end_epoch(r, now);
    raft_notify_leader(r);
}

/* A peer told us about (epoch, leader). Returns true if our state changed. */
bool raft_observe_epoch(sm_raft_t *r, int64_t now, int32_t epoch, int32_t leader)
{
    if (epoch < r->epoch || epoch < 0)
        return false;
    if (leader == r->cfg.node_id) {
        /* Only we can be the leader we are told about: a stale echo. */
        if (epoch > r->epoch)
            SM_WARN(RAFT_TAG, "node %d: told it leads epoch %d above its %d; ignored",
                    r->cfg.node_id, epoch, r->epoch);
        return false;
    }
    if (leader != SM_RAFT_NO_ID && !raft_voter(r, leader)) {
        SM_WARN(RAFT_TAG, "node %d: leader %d of epoch %d is not a voter; ignored",
                r->cfg.node_id, leader, epoch);
        return false;
    }
    if (epoch > r->epoch) {
        if (leader != SM_RAFT_NO_ID)
            raft_become_follower(r, now, epoch, leader);
        else
            raft_become_unattached(r, now, epoch, SM_RAFT_NO_ID, raft_election_timeout(r));
        return true;
    }
    if (leader == SM_RAFT_NO_ID || r->leader_id != SM_RAFT_NO_ID)
        return false;
    if (r->state == SM_RAFT_LEADER || r->state == SM_RAFT_RESIGNED)
        return false;
    raft_become_follower(r, now, epoch, leader);
    return true;
}

/* ------------------------------------------------------------ API */

sm_raft_t *sm_raft_new(const sm_raft_config_t *c, const sm_raft_env_t *env, int64_t now_ms)
{
    if (c->n_voters < 1 || c->n_voters > SM_RAFT_MAX_VOTERS || c->node_id < 0 ||
        c->election_timeout_ms < 1 || c->fetch_timeout_ms < 1 || c->request_timeout_ms < 1 ||
        c->append_linger_ms < 0 || c->fetch_max_bytes < 1 || c->election_backoff_max_ms < 0 ||
        c->retry_backoff_ms < 0 || c->fetch_max_wait_ms < 0 || c->initial.epoch < 0 ||
        c->initial.epoch >= INT32_MAX - 1 || !env ||
        !env->log || !env->rand ||
        (env->log->snapshot_latest && (!env->log->snapshot_read || !env->log->snapshot_write ||
                                       !env->log->snapshot_install))) {
        SM_ERROR(RAFT_TAG, "node %d: bad raft config", c->node_id);
        return NULL;
    }
    sm_raft_t *r = sm_xcalloc(1, sizeof(*r));
    r->cfg = *c;
    r->env = *env;
    r->n_voters = c->n_voters;
    /* Correlation ids start at random so a previous incarnation's late answers
     * do not match this one's requests. */
    r->next_corr = (int64_t)(env->rand(env->rand_ctx) >> 16);
    for (int32_t i = 0; i < c->n_voters; i++) {
        for (int32_t j = 0; j < i; j++)
            if (c->voters[j] == c->voters[i]) {
                SM_ERROR(RAFT_TAG, "node %d: voter %d listed twice", c->node_id, c->voters[i]);
                free(r);
                return NULL;
            }
        r->voters[i].id = c->voters[i];
        if (c->voters[i] == c->node_id)
            r->voter = true;
    }
    raft_reset_replicas(r);
    raft_clear_timers(r);
    r->epoch = c->initial.epoch;
    r->voted_id = c->initial.voted_id;
    r->leader_id = c->initial.leader_id;
    r->saved = c->initial;
    r->abandoned_leader = SM_RAFT_NO_ID;
    int32_t leader = r->leader_id;
    if (leader == c->node_id && r->voter) {
        /* We led this epoch before the restart: never lead it again. */
        r->state = SM_RAFT_RESIGNED;
        r->election_deadline_ms = now_ms + raft_election_timeout(r);
    } else if (leader != SM_RAFT_NO_ID && leader != c->node_id &&
               (!r->voter || raft_voter(r, leader))) {
        r->state = SM_RAFT_UNATTACHED; /* become_follower asserts on same-epoch moves */
        r->leader_id = SM_RAFT_NO_ID;
        raft_become_follower(r, now_ms, r->epoch, leader);
    } else {
        r->leader_id = SM_RAFT_NO_ID;
        raft_become_unattached(r, now_ms, r->epoch, SM_RAFT_NO_ID, raft_election_timeout(r));
    }
    if (r->voter && r->n_voters == 1) {
        /* The only voter need not wait for anyone (Kafka's client goes
         * straight to candidate too): the first tick elects it. */
        r->election_deadline_ms = now_ms;
    }
    SM_INFO(RAFT_TAG, "node %d: started %s in epoch %d (voted %d, leader %d, log end %lld)",
            c->node_id, sm_raft_state_name(r->state), r->epoch, r->voted_id, r->leader_id,
            (long long)env->log->end_offset(env->log_ctx));
    return r;
}

void sm_raft_free(sm_raft_t *r) { free(r); }

static void raft_enter(sm_raft_t *r)
{
    /* The host must have saved and sent everything from the previous call. */
    SM_ASSERT(!r->save_pending && r->out_rd == r->out_n);
    r->out_n = r->out_rd = 0;
}

static bool raft_epoch_sane(int32_t e) { return e >= 0 && e < INT32_MAX - 1; }

/* Field checks common to every handler: epochs in range (an epoch near
 * INT32_MAX would overflow the next election), byte ranges present. Returns
 * false for a message to drop. */
static bool raft_msg_sane(const sm_raft_msg_t *m)
{
    switch (m->kind) {
    case SM_RAFT_MSG_VOTE: return raft_epoch_sane(m->u.vote.candidate_epoch);
    case SM_RAFT_MSG_VOTE_RESP: return raft_epoch_sane(m->u.vote_resp.leader_epoch);
    case SM_RAFT_MSG_BEGIN_EPOCH: return raft_epoch_sane(m->u.begin.leader_epoch);
    case SM_RAFT_MSG_END_EPOCH: return raft_epoch_sane(m->u.end.leader_epoch);
    case SM_RAFT_MSG_BEGIN_EPOCH_RESP:
    case SM_RAFT_MSG_END_EPOCH_RESP: return raft_epoch_sane(m->u.epoch_resp.leader_epoch);
    case SM_RAFT_MSG_FETCH: return raft_epoch_sane(m->u.fetch.current_leader_epoch);
    case SM_RAFT_MSG_FETCH_RESP:
        return raft_epoch_sane(m->u.fetch_resp.current_leader.leader_epoch) &&
               (m->u.fetch_resp.records || !m->u.fetch_resp.records_len);
    case SM_RAFT_MSG_FETCH_SNAPSHOT: return raft_epoch_sane(m->u.fetch_snapshot.current_leader_epoch);
    case SM_RAFT_MSG_FETCH_SNAPSHOT_RESP:
        return raft_epoch_sane(m->u.fetch_snapshot_resp.current_leader.leader_epoch) &&
               (m->u.fetch_snapshot_resp.bytes || !m->u.fetch_snapshot_resp.len);
    }
    return true; /* unknown kinds are reported by the dispatcher */
}

void sm_raft_step(sm_raft_t *r, int64_t now, const sm_raft_msg_t *m)
{
    raft_enter(r);
    if (m->to != r->cfg.node_id || m->from < 0 || m->from == r->cfg.node_id) {
        SM_WARN(RAFT_TAG, "node %d: %s from %d to %d misaddressed; ignored", r->cfg.node_id,
                sm_raft_msg_kind_name(m->kind), m->from, m->to);
        return;
    }
    if (!raft_msg_sane(m)) {
        SM_WARN(RAFT_TAG, "node %d: malformed %s from %d (epoch out of range or bytes "
                "missing); ignored", r->cfg.node_id, sm_raft_msg_kind_name(m->kind), m->from);
        return;
    }
    switch (m->kind) {
    case SM_RAFT_MSG_VOTE: raft_on_vote(r, now, m); break;
    case SM_RAFT_MSG_VOTE_RESP: raft_on_vote_resp(r, now, m); break;
    case SM_RAFT_MSG_BEGIN_EPOCH: raft_on_begin_epoch(r, now, m); break;
    case SM_RAFT_MSG_END_EPOCH: raft_on_end_epoch(r, now, m); break;
    case SM_RAFT_MSG_BEGIN_EPOCH_RESP:
    case SM_RAFT_MSG_END_EPOCH_RESP: raft_on_epoch_resp(r, now, m); break;
    case SM_RAFT_MSG_FETCH: raft_on_fetch(r, now, m); break;
    case SM_RAFT_MSG_FETCH_RESP: raft_on_fetch_resp(r, now, m); break;
    case SM_RAFT_MSG_FETCH_SNAPSHOT: raft_on_fetch_snapshot(r, now, m); break;
    case SM_RAFT_MSG_FETCH_SNAPSHOT_RESP: raft_on_fetch_snapshot_resp(r, now, m); break;
    default:
        SM_WARN(RAFT_TAG, "node %d: unknown message kind %d from %d; ignored", r->cfg.node_id,
                (int)m->kind, m->from);
    }
}

void sm_raft_tick(sm_raft_t *r, int64_t now)
{
    raft_enter(r);
    switch (r->state) {
    case SM_RAFT_UNATTACHED:
        if (!r->voter) {
            raft_observer_probe(r, now);
        } else if (now >= r->election_deadline_ms) {
            raft_become_prospective(r, now);
        }
        break;
    case SM_RAFT_PROSPECTIVE:
        if (now >= r->election_deadline_ms) /* no majority either way */
            raft_prospective_lost(r, now);
        break;
    case SM_RAFT_CANDIDATE:
        if (now >= r->election_deadline_ms) {
            /* Lost or split: back off randomly, then pre-vote again. */
            raft_become_unattached(r, now, r->epoch, r->voted_id,
                                   raft_rand_range(r, 0, r->cfg.election_backoff_max_ms));
        }
        break;
    case SM_RAFT_LEADER: raft_leader_tick(r, now); break;
    case SM_RAFT_FOLLOWER: raft_follower_tick(r, now); break;
    case SM_RAFT_RESIGNED:
        if (now >= r->election_deadline_ms)
            raft_become_prospective(r, now);
        else if (now >= r->epoch_resend_ms)
            raft_send_end_epoch(r, now);
        break;
    }
}

int64_t sm_raft_next_deadline(const sm_raft_t *r)
{
    int64_t d = r->election_deadline_ms;
    d = SM_MIN(d, r->epoch_resend_ms);
    d = SM_MIN(d, raft_repl_deadline(r));
    return d;
}

void sm_raft_resign(sm_raft_t *r, int64_t now)
{
    raft_enter(r);
    if (r->state != SM_RAFT_LEADER)
        return;
    raft_become_resigned(r, now);
}

int64_t sm_raft_committed(const sm_raft_t *r) { return r->hw; }
sm_raft_state_t sm_raft_state(const sm_raft_t *r) { return r->state; }
int32_t sm_raft_epoch(const sm_raft_t *r) { return r->epoch; }
int32_t sm_raft_leader(const sm_raft_t *r)
{
    return raft_leader_known(r) ? r->leader_id : SM_RAFT_NO_ID;
}
bool sm_raft_is_voter(const sm_raft_t *r) { return r->voter; }

bool sm_raft_save_pending(const sm_raft_t *r, sm_raft_quorum_state_t *out)
{
    if (!r->save_pending)
        return false;
    out->epoch = r->epoch;
    out->voted_id = r->voted_id;
    out->leader_id = r->leader_id;
    return true;
}

void sm_raft_save_done(sm_raft_t *r, const sm_raft_quorum_state_t *saved)
{
    SM_ASSERT(saved->epoch == r->epoch && saved->voted_id == r->voted_id &&
              saved->leader_id == r->leader_id);
    r->saved = *saved;
    r->save_pending = false;
}

bool sm_raft_outbox_next(sm_raft_t *r, sm_raft_msg_t *out)
{
    if (r->save_pending || r->out_rd >= r->out_n)
        return false;
    *out = r->outbox[r->out_rd++];
    return true;
}

void sm_raft_describe(const sm_raft_t *r, sm_raft_describe_t *out)
{
    memset(out, 0, sizeof(*out));
    out->node_id = r->cfg.node_id;
    out->leader_id = sm_raft_leader(r);
    out->epoch = r->epoch;
    out->state = r->state;
    out->high_watermark = r->hw;
    out->n_voters = r->n_voters;
    bool leader = r->state == SM_RAFT_LEADER;
    for (int32_t i = 0; i < r->n_voters; i++) {
        const raft_replica_t *v = &r->voters[i];
        sm_raft_replica_desc_t *d = &out->voters[i];
        d->id = v->id;
        d->end_offset = leader ? v->end_offset : -1;
        d->last_fetch_ms = leader ? v->last_fetch_ms : -1;
        d->last_caught_up_ms = leader ? v->last_caught_up_ms : -1;
        if (leader && v->id == r->cfg.node_id)
            d->end_offset = r->env.log->flushed_offset(r->env.log_ctx);
    }
    out->n_observers = leader ? r->n_observers : 0;
    for (int32_t i = 0; i < out->n_observers; i++) {
        const raft_replica_t *o = &r->observers[i];
        out->observers[i] = (sm_raft_replica_desc_t){o->id, o->end_offset, o->last_fetch_ms,
                                                     o->last_caught_up_ms};
    }
}
