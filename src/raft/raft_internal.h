/*
 * raft_internal.h - the sm_raft_t object shared by raft.c (states, transitions,
 * persistence, outbox, API), raft_election.c (Vote, PreVote, Begin/EndQuorumEpoch)
 * and raft_repl.c (fetch, high watermark, proposals, snapshots). Not for use
 * outside src/raft.
 */
#ifndef SM_RAFT_INTERNAL_H
#define SM_RAFT_INTERNAL_H

#include "raft.h"

#define RAFT_TAG "raft"
#define RAFT_NEVER INT64_MAX

/* What this node knows of one peer: leader bookkeeping, election tallies. */
typedef struct raft_replica {
    int32_t id;
    int64_t end_offset;        /* last validated fetch offset (flushed there) or -1 */
    int64_t last_fetch_ms;     /* -1 never */
    int64_t last_caught_up_ms; /* -1 never */
    int64_t prev_fetch_ms;     /* for the caught-up rule (KIP-836) */
    int64_t leo_at_prev_fetch;
    bool fetched_since_check; /* leader's check-quorum window */
    bool epoch_acked;         /* Begin/EndQuorumEpoch answered */
    bool granted, rejected;   /* this election round */
    bool parked;              /* a fetch waits for data (long poll) */
    int64_t park_deadline_ms;
    sm_raft_msg_t parked_req;
} raft_replica_t;

struct sm_raft {
    sm_raft_config_t cfg;
    sm_raft_env_t env;
    bool voter;

    sm_raft_state_t state;
    int32_t epoch, voted_id, leader_id;
    int64_t hw;

    /* persistence gate: the outbox is held while the state differs from saved */
    sm_raft_quorum_state_t saved;
    bool save_pending;

    /* timers (RAFT_NEVER = off) */
    int64_t election_deadline_ms; /* unattached, prospective, candidate, resigned */
    int64_t fetch_deadline_ms;    /* follower: no answer from the leader -> election */
    int64_t round_corr;           /* correlation id of this election round */
    int32_t abandoned_leader;     /* prospective: the leader it timed out on (this epoch) */
    bool fetched_ok;              /* follower: a fetch from the leader succeeded */

    /* follower / observer fetching */
    bool fetch_inflight;
    int64_t fetch_corr, fetch_sent_ms, next_fetch_ms;
    bool snap_fetching; /* fetching the leader's snapshot instead of the log */
    sm_raft_offset_epoch_t snap_id;
    int64_t snap_pos;

    /* leader */
    int64_t epoch_start_offset; /* offset of this epoch's LEADER_CHANGE */
    int64_t flush_deadline_ms;
    int64_t check_quorum_deadline_ms;
    int64_t epoch_resend_ms; /* Begin (leader) / End (resigned) retries */
    int32_t n_preferred;
    int32_t preferred[SM_RAFT_MAX_VOTERS];

    int32_t n_voters, n_observers;
    raft_replica_t voters[SM_RAFT_MAX_VOTERS];
    raft_replica_t observers[SM_RAFT_MAX_OBSERVERS];

    int64_t next_corr;
    int32_t out_n, out_rd;
    sm_raft_msg_t outbox[SM_RAFT_OUTBOX_CAP];
};

/* raft.c */
sm_raft_msg_t *raft_out(sm_raft_t *r, sm_raft_msg_kind_t kind, int32_t to, int64_t corr);
raft_replica_t *raft_voter(sm_raft_t *r, int32_t id);
int32_t raft_majority(const sm_raft_t *r);
int64_t raft_rand_range(sm_raft_t *r, int64_t lo, int64_t hi);
void raft_become_follower(sm_raft_t *r, int64_t now, int32_t epoch, int32_t leader);
void raft_become_unattached(sm_raft_t *r, int64_t now, int32_t epoch, int32_t voted,
                            int64_t timeout_ms);
void raft_become_resigned(sm_raft_t *r, int64_t now);
void raft_become_prospective(sm_raft_t *r, int64_t now);
bool raft_observe_epoch(sm_raft_t *r, int64_t now, int32_t epoch, int32_t leader);
int64_t raft_election_timeout(sm_raft_t *r);
/* When a follower that hears nothing more gives up on its leader: the fetch
 * timeout plus up to an eighth of it at random, so followers of one leader,
 * whose fetches were answered together, do not all stand at the same moment
 * and split the vote (the first to stand is refused pre-votes by the others
 * until they time out too, then wins). */
int64_t raft_fetch_deadline(sm_raft_t *r, int64_t now);
void raft_set_hw(sm_raft_t *r, int64_t hw);

void raft_become_candidate(sm_raft_t *r, int64_t now);
void raft_become_leader(sm_raft_t *r, int64_t now);

static inline bool raft_leader_known(const sm_raft_t *r)
{
    return r->state == SM_RAFT_FOLLOWER || r->state == SM_RAFT_LEADER;
}

/* raft_election.c */
void raft_on_vote(sm_raft_t *r, int64_t now, const sm_raft_msg_t *m);
void raft_on_vote_resp(sm_raft_t *r, int64_t now, const sm_raft_msg_t *m);
void raft_on_begin_epoch(sm_raft_t *r, int64_t now, const sm_raft_msg_t *m);
void raft_on_end_epoch(sm_raft_t *r, int64_t now, const sm_raft_msg_t *m);
void raft_on_epoch_resp(sm_raft_t *r, int64_t now, const sm_raft_msg_t *m);
void raft_prospective_lost(sm_raft_t *r, int64_t now);

/* raft_repl.c */
void raft_on_fetch(sm_raft_t *r, int64_t now, const sm_raft_msg_t *m);
void raft_on_fetch_resp(sm_raft_t *r, int64_t now, const sm_raft_msg_t *m);
void raft_on_fetch_snapshot(sm_raft_t *r, int64_t now, const sm_raft_msg_t *m);
void raft_on_fetch_snapshot_resp(sm_raft_t *r, int64_t now, const sm_raft_msg_t *m);
void raft_leader_start(sm_raft_t *r, int64_t now);
void raft_leader_tick(sm_raft_t *r, int64_t now);
void raft_leader_update_hw(sm_raft_t *r, int64_t now);
void raft_leader_complete_parked(sm_raft_t *r, int64_t now, bool expired_only);
void raft_follower_tick(sm_raft_t *r, int64_t now);
void raft_observer_probe(sm_raft_t *r, int64_t now);
int64_t raft_repl_deadline(const sm_raft_t *r);

#endif
