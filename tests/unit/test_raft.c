/*
 * test_raft.c - targeted cases for src/raft that the simulator reaches only by
 * chance: every bad input from a peer gets an error answer (never an assert),
 * the vote rules, the persistence gate, a single-voter leader committing, and
 * DivergingEpoch. Uses the simulator's in-memory log (tests/sim/sim_log.c).
 */
#include "raft.h"
#include "sim_log.h"
#include "sm_test.h"

#include "log.h"

typedef struct harness {
    sim_log_t log;
    uint64_t rng;
    sm_raft_t *r;
    sm_raft_msg_t out[64];
    int n_out;
    int64_t committed_to;
} harness_t;

static uint64_t h_rand(void *ctx)
{
    uint64_t *s = ctx;
    *s = *s * 6364136223846793005ull + 1442695040888963407ull;
    return *s >> 11;
}

static void h_committed(void *ctx, int64_t old_hw, int64_t new_hw)
{
    (void)old_hw;
    ((harness_t *)ctx)->committed_to = new_hw;
}

static void h_start(harness_t *h, int32_t node, int n_voters)
{
    memset(h, 0, sizeof(*h));
    sim_log_init(&h->log);
    h->rng = 42;
    sm_raft_config_t c;
    sm_raft_config_defaults(&c);
    c.node_id = node;
    c.n_voters = n_voters;
    for (int i = 0; i < n_voters; i++)
        c.voters[i] = i + 1;
    sm_raft_env_t env = {.log = &sim_log_ops, .log_ctx = &h->log, .rand = h_rand,
                         .rand_ctx = &h->rng};
    env.listener.committed = h_committed;
    env.listener.ctx = h;
    h->r = sm_raft_new(&c, &env, 0);
}

/* The host's duty after each call: save, then collect the outbox. */
static void h_io(harness_t *h)
{
    sm_raft_quorum_state_t qs;
    if (sm_raft_save_pending(h->r, &qs))
        sm_raft_save_done(h->r, &qs);
    h->n_out = 0;
    while (h->n_out < 64 && sm_raft_outbox_next(h->r, &h->out[h->n_out]))
        h->n_out++;
}

static void h_step(harness_t *h, int64_t now, const sm_raft_msg_t *m)
{
    sm_raft_step(h->r, now, m);
    h_io(h);
}

static void h_free(harness_t *h)
{
    sm_raft_free(h->r);
    sim_log_free(&h->log);
}

static sm_raft_msg_t vote(int32_t from, int32_t to, int32_t epoch, int32_t last_epoch,
                          int64_t last_offset, bool pre)
{
    sm_raft_msg_t m = {.kind = SM_RAFT_MSG_VOTE, .from = from, .to = to, .corr = 7};
    m.u.vote.candidate_epoch = epoch;
    m.u.vote.candidate_id = from;
    m.u.vote.last_offset_epoch = last_epoch;
    m.u.vote.last_offset = last_offset;
    m.u.vote.pre_vote = pre;
    return m;
}

static void test_vote_rules(void)
{
    harness_t h;
    h_start(&h, 1, 3);
    CHECK(h.r != NULL);
    CHECK_EQ(sm_raft_state(h.r), SM_RAFT_UNATTACHED);

    /* A grant is held back until the vote is saved. */
    sm_raft_msg_t m = vote(2, 1, 1, 0, 0, false);
    sm_raft_step(h.r, 10, &m);
    sm_raft_quorum_state_t qs;
    sm_raft_msg_t out;
    CHECK(sm_raft_save_pending(h.r, &qs));
    CHECK_EQ(qs.epoch, 1);
    CHECK_EQ(qs.voted_id, 2);
    CHECK(!sm_raft_outbox_next(h.r, &out));
    sm_raft_save_done(h.r, &qs);
    CHECK(sm_raft_outbox_next(h.r, &out));
    CHECK_EQ(out.kind, SM_RAFT_MSG_VOTE_RESP);
    CHECK(out.u.vote_resp.vote_granted);
    CHECK_EQ(out.corr, 7);

    /* One vote per epoch; a duplicate request from the same candidate is granted again. */
    m = vote(3, 1, 1, 0, 0, false);
    h_step(&h, 11, &m);
    CHECK_EQ(h.n_out, 1);
    CHECK(!h.out[0].u.vote_resp.vote_granted);
    m = vote(2, 1, 1, 0, 0, false);
    h_step(&h, 12, &m);
    CHECK(h.out[0].u.vote_resp.vote_granted);

    /* Unknown voter, candidate id not the sender, epoch in the past, bad offsets. */
    m = vote(9, 1, 5, 0, 0, false);
    h_step(&h, 13, &m);
    CHECK_EQ(h.out[0].u.vote_resp.error, SM_RAFT_ERR_INCONSISTENT_VOTER_SET);
    m = vote(2, 1, 5, 0, 0, false);
    m.u.vote.candidate_id = 3;
    h_step(&h, 13, &m);
    CHECK_EQ(h.out[0].u.vote_resp.error, SM_RAFT_ERR_INCONSISTENT_VOTER_SET);
    m = vote(3, 1, 0, 0, 0, false);
    h_step(&h, 14, &m);
    CHECK_EQ(h.out[0].u.vote_resp.error, SM_RAFT_ERR_FENCED_LEADER_EPOCH);
    CHECK_EQ(h.out[0].u.vote_resp.leader_epoch, 1);
    m = vote(3, 1, 4, 0, -5, false);
    h_step(&h, 15, &m);
    CHECK_EQ(h.out[0].u.vote_resp.error, SM_RAFT_ERR_INVALID_REQUEST);
    m = vote(3, 1, 4, 9, 5, false); /* last epoch above the candidate's epoch */
    h_step(&h, 15, &m);
    CHECK_EQ(h.out[0].u.vote_resp.error, SM_RAFT_ERR_INVALID_REQUEST);
    CHECK_EQ(sm_raft_epoch(h.r), 1);

    /* Pre-vote at our epoch: no state change, granted (no leader known, log fine). */
    m = vote(3, 1, 1, 0, 0, true);
    h_step(&h, 16, &m);
    CHECK(h.out[0].u.vote_resp.vote_granted);
    CHECK(h.out[0].u.vote_resp.pre_vote);
    CHECK_EQ(sm_raft_epoch(h.r), 1);

    /* A pre-vote from a higher epoch moves us to it (no vote), then is judged. */
    harness_t f;
    h_start(&f, 1, 3);
    sm_raft_msg_t b = {.kind = SM_RAFT_MSG_BEGIN_EPOCH, .from = 2, .to = 1};
    b.u.begin.leader_id = 2;
    b.u.begin.leader_epoch = 4;
    h_step(&f, 1, &b);
    CHECK_EQ(sm_raft_state(f.r), SM_RAFT_FOLLOWER);
    m = vote(3, 1, 6, 0, 0, true);
    h_step(&f, 2, &m);
    CHECK_EQ(sm_raft_epoch(f.r), 6);
    CHECK_EQ(sm_raft_state(f.r), SM_RAFT_UNATTACHED);
    CHECK(f.out[0].u.vote_resp.vote_granted);
    h_free(&f);

    /* A candidate whose log is behind ours is refused, though the epoch moves on. */
    sm_raft_append_t a = {.epoch = 1, .count = 1, .data = "x", .len = 1,
                          .control_type = SM_RAFT_CONTROL_NONE};
    int64_t base;
    CHECK_EQ(sim_log_ops.append(&h.log, &a, &base), SM_OK);
    m = vote(3, 1, 2, 0, 0, false);
    h_step(&h, 17, &m);
    CHECK(!h.out[0].u.vote_resp.vote_granted);
    CHECK_EQ(sm_raft_epoch(h.r), 2);
    m = vote(3, 1, 2, 1, 1, false); /* now up to date */
    h_step(&h, 18, &m);
    CHECK(h.out[0].u.vote_resp.vote_granted);

    /* An epoch that would overflow the next election is dropped. */
    m = vote(3, 1, INT32_MAX, 1, 1, false);
    h_step(&h, 19, &m);
    CHECK_EQ(h.n_out, 0);
    CHECK_EQ(sm_raft_epoch(h.r), 2);
    sm_raft_msg_t fr = {.kind = SM_RAFT_MSG_FETCH_RESP, .from = 3, .to = 1};
    fr.u.fetch_resp.records_len = 100; /* bytes missing */
    fr.u.fetch_resp.current_leader.leader_epoch = 2;
    h_step(&h, 19, &fr);
    CHECK_EQ(h.n_out, 0);

    /* Misaddressed and unknown kinds are ignored. */
    m = vote(3, 2, 3, 1, 1, false);
    h_step(&h, 19, &m);
    CHECK_EQ(h.n_out, 0);
    m.to = 1;
    m.kind = (sm_raft_msg_kind_t)99;
    h_step(&h, 19, &m);
    CHECK_EQ(h.n_out, 0);
    h_free(&h);
}

static void test_epoch_rpcs_bad_input(void)
{
    harness_t h;
    h_start(&h, 1, 3);
    sm_raft_msg_t m = {.kind = SM_RAFT_MSG_BEGIN_EPOCH, .from = 7, .to = 1};
    m.u.begin.leader_id = 7;
    m.u.begin.leader_epoch = 3;
    h_step(&h, 1, &m);
    CHECK_EQ(h.out[0].kind, SM_RAFT_MSG_BEGIN_EPOCH_RESP);
    CHECK_EQ(h.out[0].u.epoch_resp.error, SM_RAFT_ERR_INCONSISTENT_VOTER_SET);
    m.from = m.u.begin.leader_id = 2;
    h_step(&h, 2, &m);
    CHECK_EQ(h.out[0].u.epoch_resp.error, SM_RAFT_ERR_NONE);
    CHECK_EQ(sm_raft_state(h.r), SM_RAFT_FOLLOWER);
    CHECK_EQ(sm_raft_leader(h.r), 2);
    CHECK_EQ(sm_raft_epoch(h.r), 3);
    m.u.begin.leader_epoch = 2; /* stale leader */
    h_step(&h, 3, &m);
    CHECK_EQ(h.out[0].u.epoch_resp.error, SM_RAFT_ERR_FENCED_LEADER_EPOCH);
    /* The follower fetches from its leader. */
    sm_raft_tick(h.r, 3);
    h_io(&h);
    CHECK_EQ(h.n_out, 1);
    CHECK_EQ(h.out[0].kind, SM_RAFT_MSG_FETCH);
    CHECK_EQ(h.out[0].to, 2);

    sm_raft_msg_t e = {.kind = SM_RAFT_MSG_END_EPOCH, .from = 2, .to = 1};
    e.u.end.leader_id = 2;
    e.u.end.leader_epoch = 3;
    e.u.end.n_preferred = 1000; /* malformed count */
    h_step(&h, 4, &e);
    CHECK_EQ(h.out[0].u.epoch_resp.error, SM_RAFT_ERR_INCONSISTENT_VOTER_SET);
    CHECK_EQ(sm_raft_state(h.r), SM_RAFT_FOLLOWER);
    e.u.end.n_preferred = 1;
    e.u.end.preferred[0] = 1;
    h_step(&h, 5, &e);
    CHECK_EQ(h.out[0].u.epoch_resp.error, SM_RAFT_ERR_NONE);
    CHECK_EQ(sm_raft_state(h.r), SM_RAFT_UNATTACHED);
    /* Preferred first: the election starts after retry_backoff (20 ms), not ~1 s. */
    CHECK(sm_raft_next_deadline(h.r) <= 5 + 20);
    sm_raft_tick(h.r, 25);
    h_io(&h);
    CHECK_EQ(sm_raft_state(h.r), SM_RAFT_PROSPECTIVE);
    CHECK_EQ(h.n_out, 2);
    CHECK(h.out[0].u.vote.pre_vote);
    CHECK_EQ(h.out[0].u.vote.candidate_epoch, 3); /* its epoch; it asks for 4 */
    CHECK_EQ(sm_raft_epoch(h.r), 3); /* pre-vote does not bump the epoch */
    h_free(&h);
}

static sm_raft_msg_t fetch(int32_t from, int32_t epoch, int64_t off, int32_t lfe)
{
    sm_raft_msg_t m = {.kind = SM_RAFT_MSG_FETCH, .from = from, .to = 1, .corr = 3};
    m.u.fetch.replica_id = from;
    m.u.fetch.current_leader_epoch = epoch;
    m.u.fetch.fetch_offset = off;
    m.u.fetch.last_fetched_epoch = lfe;
    m.u.fetch.max_bytes = 1 << 20;
    return m;
}

static void test_single_voter_leader_and_fetch(void)
{
    harness_t h;
    h_start(&h, 1, 1);
    CHECK_EQ(sm_raft_propose(h.r, 0, "a", 1, 1), SM_RAFT_NOT_LEADER);
    h_io(&h);
    /* the only voter does not wait out an election timeout: its first tick
     * (at start time) elects it, as Kafka's client does */
    int64_t t = sm_raft_next_deadline(h.r);
    CHECK_EQ(t, 0);
    sm_raft_tick(h.r, t);
    h_io(&h);
    CHECK_EQ(sm_raft_state(h.r), SM_RAFT_LEADER);
    CHECK_EQ(sm_raft_epoch(h.r), 1);
    CHECK_EQ(sim_log_end(&h.log), 1); /* LEADER_CHANGE */
    CHECK_EQ(sm_raft_committed(h.r), 0);
    int64_t off = sm_raft_propose(h.r, t, "abc", 3, 2);
    h_io(&h);
    CHECK_EQ(off, 1);
    CHECK_EQ(sm_raft_committed(h.r), 0); /* not flushed yet (linger) */
    sm_raft_tick(h.r, sm_raft_next_deadline(h.r));
    h_io(&h);
    CHECK_EQ(sm_raft_committed(h.r), 3);
    CHECK_EQ(h.committed_to, 3);
    int32_t ep = sm_raft_epoch(h.r);

    /* Bad fetches from an observer (node 5). */
    sm_raft_msg_t m = fetch(5, ep, -1, 0);
    h_step(&h, t + 100, &m);
    CHECK_EQ(h.out[0].u.fetch_resp.error, SM_RAFT_ERR_INVALID_REQUEST);
    m = fetch(5, ep, 0, ep + 3);
    h_step(&h, t + 100, &m);
    CHECK_EQ(h.out[0].u.fetch_resp.error, SM_RAFT_ERR_INVALID_REQUEST);
    m = fetch(5, ep - 1, 0, 0);
    h_step(&h, t + 100, &m);
    CHECK_EQ(h.out[0].u.fetch_resp.error, SM_RAFT_ERR_FENCED_LEADER_EPOCH);
    CHECK_EQ(h.out[0].u.fetch_resp.current_leader.leader_id, 1);
    m = fetch(5, ep + 1, 0, 0);
    h_step(&h, t + 100, &m);
    CHECK_EQ(h.out[0].u.fetch_resp.error, SM_RAFT_ERR_UNKNOWN_LEADER_EPOCH);
    m = fetch(5, ep, 0, 0);
    m.u.fetch.replica_id = 6;
    h_step(&h, t + 100, &m);
    CHECK_EQ(h.out[0].u.fetch_resp.error, SM_RAFT_ERR_INVALID_REQUEST);

    /* A good fetch gets the records and the high watermark. */
    m = fetch(5, ep, 0, 0);
    h_step(&h, t + 100, &m);
    CHECK_EQ(h.out[0].u.fetch_resp.error, SM_RAFT_ERR_NONE);
    CHECK(h.out[0].u.fetch_resp.records_len > 0);
    CHECK_EQ(h.out[0].u.fetch_resp.high_watermark, 3);
    CHECK_EQ(h.out[0].u.fetch_resp.diverging.epoch, -1);
    /* An offset past the leader's end in its epoch: DivergingEpoch{1, 3}. */
    m = fetch(5, ep, 7, ep);
    h_step(&h, t + 100, &m);
    CHECK_EQ(h.out[0].u.fetch_resp.diverging.epoch, 1);
    CHECK_EQ(h.out[0].u.fetch_resp.diverging.end_offset, 3);
    /* Caught up: the fetch is parked and answered when the wait expires. */
    m = fetch(5, ep, 3, ep);
    h_step(&h, t + 100, &m);
    CHECK_EQ(h.n_out, 0);
    CHECK(sm_raft_next_deadline(h.r) <= t + 600);
    sm_raft_tick(h.r, t + 600);
    h_io(&h);
    CHECK_EQ(h.n_out, 1);
    CHECK_EQ(h.out[0].u.fetch_resp.records_len, 0);

    sm_raft_describe_t d;
    sm_raft_describe(h.r, &d);
    CHECK_EQ(d.leader_id, 1);
    CHECK_EQ(d.n_observers, 1);
    CHECK_EQ(d.observers[0].id, 5);
    CHECK_EQ(d.observers[0].end_offset, 3);
    CHECK_EQ(d.observers[0].last_caught_up_ms, t + 100);

    /* FetchSnapshot: bad requests are answered, not asserted. */
    sm_raft_msg_t fs = {.kind = SM_RAFT_MSG_FETCH_SNAPSHOT, .from = 5, .to = 1};
    h_step(&h, t + 700, &fs);
    CHECK_EQ(h.out[0].u.fetch_snapshot_resp.error, SM_RAFT_ERR_FENCED_LEADER_EPOCH);
    fs.u.fetch_snapshot.current_leader_epoch = ep;
    fs.u.fetch_snapshot.replica_id = 5;
    fs.u.fetch_snapshot.snapshot_id = (sm_raft_offset_epoch_t){1, 3};
    h_step(&h, t + 700, &fs);
    CHECK_EQ(h.out[0].u.fetch_snapshot_resp.error, SM_RAFT_ERR_SNAPSHOT_NOT_FOUND);
    fs.u.fetch_snapshot.position = -1;
    h_step(&h, t + 700, &fs);
    CHECK_EQ(h.out[0].u.fetch_snapshot_resp.error, SM_RAFT_ERR_INVALID_REQUEST);

    /* The host snapshots up to 3: a fetch below the log start gets the SnapshotId,
     * and the snapshot is served in chunks by position. */
    CHECK_EQ(sim_log_snapshot_create(&h.log, 3), 3);
    m = fetch(5, ep, 0, 0);
    h_step(&h, t + 710, &m);
    CHECK_EQ(h.out[0].u.fetch_resp.snapshot_id.epoch, 1);
    CHECK_EQ(h.out[0].u.fetch_resp.snapshot_id.end_offset, 3);
    CHECK_EQ(h.out[0].u.fetch_resp.records_len, 0);
    fs.u.fetch_snapshot.position = 0;
    fs.u.fetch_snapshot.max_bytes = 10;
    h_step(&h, t + 720, &fs);
    CHECK_EQ(h.out[0].u.fetch_snapshot_resp.error, SM_RAFT_ERR_NONE);
    CHECK_EQ(h.out[0].u.fetch_snapshot_resp.len, 10);
    CHECK(h.out[0].u.fetch_snapshot_resp.size > 10);
    fs.u.fetch_snapshot.position = 1 << 20;
    h_step(&h, t + 720, &fs);
    CHECK_EQ(h.out[0].u.fetch_snapshot_resp.error, SM_RAFT_ERR_POSITION_OUT_OF_RANGE);
    /* A follower at the log start with the snapshot's epoch is in line (caught
     * up, so its fetch is parked); with a wrong epoch it is sent the snapshot. */
    m = fetch(5, ep, 3, 1);
    h_step(&h, t + 730, &m);
    CHECK_EQ(h.n_out, 0);
    m = fetch(5, ep, 3, 0);
    h_step(&h, t + 730, &m);
    CHECK_EQ(h.out[0].u.fetch_resp.snapshot_id.end_offset, 3);

    /* Resigning: a single voter is leader again in the next epoch. */
    sm_raft_resign(h.r, t + 800);
    h_io(&h);
    CHECK_EQ(sm_raft_state(h.r), SM_RAFT_RESIGNED);
    sm_raft_tick(h.r, sm_raft_next_deadline(h.r));
    h_io(&h);
    CHECK_EQ(sm_raft_state(h.r), SM_RAFT_LEADER);
    CHECK_EQ(sm_raft_epoch(h.r), ep + 1);
    h_free(&h);
}

/* A follower that is told to load a snapshot fetches it chunk by chunk,
 * installs it, then fetches the log after it. */
static void test_follower_installs_snapshot(void)
{
    /* The leader: single voter 1, with a snapshot at 3. */
    harness_t l;
    h_start(&l, 1, 1);
    sm_raft_tick(l.r, sm_raft_next_deadline(l.r));
    h_io(&l);
    CHECK_EQ(sm_raft_propose(l.r, 2000, "abcdef", 6, 2), 1);
    h_io(&l);
    sm_raft_tick(l.r, 2100);
    h_io(&l);
    CHECK_EQ(sm_raft_committed(l.r), 3);
    CHECK_EQ(sim_log_snapshot_create(&l.log, 3), 3);
    CHECK_EQ(sm_raft_propose(l.r, 2100, "gh", 2, 1), 3);
    h_io(&l);
    sm_raft_tick(l.r, 2200);
    h_io(&l);

    /* The observer: node 5 (not a voter), learns the leader by probing. */
    harness_t o;
    h_start(&o, 5, 1);
    sm_raft_tick(o.r, 2200);
    h_io(&o);
    int rounds = 0;
    int64_t now = 2200;
    while (o.n_out > 0 && rounds++ < 50) {
        sm_raft_msg_t req = o.out[0];
        CHECK_EQ(req.to, 1);
        h_step(&l, now, &req);
        if (l.n_out == 0) { /* parked: caught up */
            break;
        }
        sm_raft_msg_t resp = l.out[0];
        now += 1;
        h_step(&o, now, &resp);
        if (o.n_out == 0) {
            sm_raft_tick(o.r, now);
            h_io(&o);
        }
    }
    CHECK_EQ(sm_raft_state(o.r), SM_RAFT_FOLLOWER);
    CHECK_EQ(sm_raft_leader(o.r), 1);
    CHECK_EQ(o.log.start_offset, 3);
    CHECK_EQ(o.log.snap_id.end_offset, 3);
    CHECK_EQ(sim_log_end(&o.log), 4);
    CHECK(sm_raft_committed(o.r) >= 3);
    h_free(&o);
    h_free(&l);
}

static void test_bad_config(void)
{
    sm_raft_config_t c;
    sm_raft_config_defaults(&c);
    c.node_id = 1;
    c.n_voters = 2;
    c.voters[0] = c.voters[1] = 1;
    sim_log_t log;
    sim_log_init(&log);
    uint64_t rng = 1;
    sm_raft_env_t env = {.log = &sim_log_ops, .log_ctx = &log, .rand = h_rand, .rand_ctx = &rng};
    CHECK(sm_raft_new(&c, &env, 0) == NULL);
    c.n_voters = 0;
    CHECK(sm_raft_new(&c, &env, 0) == NULL);
}

int main(void)
{
    sm_log_set_level(SM_LOG_ERROR);
    RUN(test_vote_rules);
    RUN(test_epoch_rpcs_bad_input);
    RUN(test_single_voter_leader_and_fetch);
    RUN(test_follower_installs_snapshot);
    RUN(test_bad_config);
    TEST_MAIN_END();
}
