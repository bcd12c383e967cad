/*
 * test_group.c - the classic group state machine (src/coord/group.c) driven
 * with fake members and a fake clock: joins (KIP-394 member ids, initial
 * delay), protocol selection, sync and assignment hand-out, heartbeats,
 * session and rebalance timeouts, generation fencing, static membership
 * (rejoin without rebalance, fencing of the old instance), leave, cooperative
 * rejoin, commit checks; plus the offsets table, __consumer_offsets record
 * round trips and Kafka's group partitioning.
 */
#include "coord_records.h"
#include "log.h"
#include "group.h"
#include "offsets.h"
#include "sm_test.h"

/* ------------------------------------------------------------ fakes */

typedef struct fake_waiter {
    sm_group_waiter_t w;
    int calls;      /* answers received (must end at most 1 per hand-in) */
    bool is_join;
    int16_t error;
    int32_t generation;
    char member_id[128];
    char leader[128];
    char protocol[32];
    int nmembers;   /* leader's member list size, -1 if not given */
    bool skip;
    char assignment[64];
} fake_waiter_t;

static void on_join(sm_group_waiter_t *w, const sm_group_t *g, const sm_group_join_result_t *r)
{
    fake_waiter_t *f = (fake_waiter_t *)w;
    f->calls++;
    f->is_join = true;
    f->error = r->error;
    f->generation = r->generation;
    snprintf(f->member_id, sizeof f->member_id, "%s", r->member_id ? r->member_id : "");
    snprintf(f->leader, sizeof f->leader, "%s", r->leader_id ? r->leader_id : "");
    snprintf(f->protocol, sizeof f->protocol, "%s", r->protocol_name ? r->protocol_name : "");
    f->nmembers = r->with_members && g ? g->nmembers : -1;
    f->skip = r->skip_assignment;
}

static void on_sync(sm_group_waiter_t *w, const sm_group_t *g, int16_t err, const uint8_t *b,
                    int32_t len)
{
    fake_waiter_t *f = (fake_waiter_t *)w;
    (void)g;
    f->calls++;
    f->is_join = false;
    f->error = err;
    snprintf(f->assignment, sizeof f->assignment, "%.*s", b ? (int)len : 0, b ? (const char *)b : "");
}

static void waiter_reset(fake_waiter_t *f)
{
    memset(f, 0, sizeof *f);
    f->w.on_join = on_join;
    f->w.on_sync = on_sync;
    f->nmembers = -1;
}

static int nstores;
static int16_t store_error;
static int16_t fake_store(void *ctx, sm_group_t *g, sm_group_time_t now)
{
    (void)ctx, (void)g, (void)now;
    nstores++;
    return store_error;
}

static sm_group_time_t T; /* the fake clock */
static void advance(int64_t ms)
{
    T.mono_ms += ms;
    T.wall_ms += ms;
}

static sm_group_env_t make_env(int32_t initial_delay)
{
    sm_group_env_t env = {
        .limits = {.min_session_timeout_ms = 6000,
                   .max_session_timeout_ms = 1800000,
                   .initial_rebalance_delay_ms = initial_delay,
                   .max_size = 100,
                   .new_member_join_timeout_ms = 300000},
        .store = fake_store,
        .rng = 42,
    };
    T.mono_ms = 1000000;
    T.wall_ms = 1700000000000;
    nstores = 0;
    store_error = 0;
    return env;
}

/* A fake consumer. */
typedef struct member {
    char id[128];
    const char *instance;
    int32_t generation;
    fake_waiter_t jw, sw;
    const char *protos[2];
    const char *meta;
} member_t;

static void join(sm_group_t *g, member_t *m, bool v4)
{
    sm_group_protocol_t p[2];
    int n = 0;
    for (int i = 0; i < 2 && m->protos[i]; i++) {
        p[n].name = (char *)m->protos[i];
        p[n].meta = (uint8_t *)(m->meta ? m->meta : "sub");
        p[n].meta_len = (int32_t)strlen(m->meta ? m->meta : "sub");
        n++;
    }
    sm_group_join_args_t a = {.member_id = m->id,
                              .instance_id = m->instance,
                              .client_id = "client",
                              .client_host = "/127.0.0.1",
                              .session_timeout_ms = 10000,
                              .rebalance_timeout_ms = 30000,
                              .protocol_type = "consumer",
                              .protocols = p,
                              .nprotocols = n,
                              .require_known_member_id = v4};
    waiter_reset(&m->jw);
    sm_group_join(g, &a, T, &m->jw.w);
}

/* Join answered: adopt the id and generation. */
static void adopt(member_t *m)
{
    snprintf(m->id, sizeof m->id, "%s", m->jw.member_id);
    m->generation = m->jw.generation;
}

static void sync_(sm_group_t *g, member_t *m, const sm_group_assignment_t *as, int n)
{
    sm_group_sync_args_t a = {.member_id = m->id,
                              .instance_id = m->instance,
                              .generation = m->generation,
                              .assignments = as,
                              .nassignments = n};
    waiter_reset(&m->sw);
    sm_group_sync(g, &a, T, &m->sw.w);
}

static int16_t hb(sm_group_t *g, member_t *m)
{
    return sm_group_heartbeat(g, m->id, m->instance, m->generation, T);
}

static void member_init(member_t *m, const char *instance)
{
    memset(m, 0, sizeof *m);
    m->instance = instance;
    m->protos[0] = "range";
    m->generation = -1;
}

/* Bring two members to Stable; a is leader. Assignments "A" and "B". */
static void make_stable_pair(sm_group_t *g, member_t *a, member_t *b)
{
    join(g, a, false);
    if (a->jw.calls)
        adopt(a);
    join(g, b, false);
    if (a->jw.calls) /* a's join was answered already: it must rejoin */
        join(g, a, false);
    advance(3000); /* the initial delay, if any */
    sm_group_tick(g, T);
    adopt(a);
    adopt(b);
    sm_group_assignment_t as[2] = {{a->id, (const uint8_t *)"A", 1}, {b->id, (const uint8_t *)"B", 1}};
    sync_(g, b, NULL, 0);
    sync_(g, a, as, 2);
}

/* ------------------------------------------------------------ tests */

static void test_kip394_and_initial_delay(void)
{
    sm_group_env_t env = make_env(3000);
    sm_group_t *g = sm_group_new("g1", &env, T);
    member_t a;
    member_init(&a, NULL);
    join(g, &a, true);
    CHECK_EQ(a.jw.calls, 1);
    CHECK_EQ(a.jw.error, SM_KERR_MEMBER_ID_REQUIRED);
    CHECK(strncmp(a.jw.member_id, "client-", 7) == 0);
    CHECK_EQ(g->npending, 1);
    CHECK_EQ(g->state, SM_GROUP_EMPTY);
    adopt(&a);
    join(g, &a, true);
    CHECK_EQ(a.jw.calls, 0); /* parked for the initial delay */
    CHECK_EQ(g->state, SM_GROUP_PREPARING_REBALANCE);
    CHECK_EQ(g->npending, 0);
    advance(2000);
    sm_group_tick(g, T);
    CHECK_EQ(a.jw.calls, 0);
    /* A second member arrives during the delay: the delay is extended. */
    member_t b;
    member_init(&b, NULL);
    join(g, &b, false);
    advance(1000);
    sm_group_tick(g, T);
    CHECK_EQ(a.jw.calls, 0);
    CHECK_EQ(b.jw.calls, 0);
    advance(3000);
    sm_group_tick(g, T);
    CHECK_EQ(a.jw.calls, 1);
    CHECK_EQ(b.jw.calls, 1);
    CHECK_EQ(a.jw.error, 0);
    CHECK_EQ(a.jw.generation, 1);
    CHECK_EQ(g->state, SM_GROUP_COMPLETING_REBALANCE);
    /* Exactly one leader, and only it gets the member list. */
    CHECK(strcmp(a.jw.leader, b.jw.leader) == 0);
    bool a_leads = strcmp(a.jw.leader, a.id) == 0;
    CHECK_EQ(a_leads ? a.jw.nmembers : b.jw.nmembers, 2);
    CHECK_EQ(a_leads ? b.jw.nmembers : a.jw.nmembers, -1);
    CHECK(strcmp(a.jw.protocol, "range") == 0);
    sm_group_free(g);
}

static void test_sync_and_heartbeat(void)
{
    sm_group_env_t env = make_env(0);
    sm_group_t *g = sm_group_new("g", &env, T);
    member_t a, b;
    member_init(&a, NULL);
    member_init(&b, NULL);
    join(g, &a, false);
    CHECK_EQ(a.jw.calls, 1); /* delay 0: completes at once */
    CHECK_EQ(g->generation, 1);
    adopt(&a);
    join(g, &b, false); /* new member: rebalance; a must rejoin */
    CHECK_EQ(g->state, SM_GROUP_PREPARING_REBALANCE);
    CHECK_EQ(b.jw.calls, 0);
    adopt(&b);
    CHECK_EQ(hb(g, &a), SM_KERR_REBALANCE_IN_PROGRESS);
    join(g, &a, false);
    CHECK_EQ(a.jw.calls, 1);
    CHECK_EQ(b.jw.calls, 1);
    adopt(&a);
    adopt(&b);
    CHECK_EQ(a.generation, 2);
    CHECK_EQ(g->state, SM_GROUP_COMPLETING_REBALANCE);
    /* Follower syncs first and waits for the leader. */
    member_t *leader = strcmp(a.jw.leader, a.id) == 0 ? &a : &b;
    member_t *follower = leader == &a ? &b : &a;
    sync_(g, follower, NULL, 0);
    CHECK_EQ(follower->sw.calls, 0);
    CHECK_EQ(sm_group_commit_check(g, follower->generation, follower->id, NULL),
             SM_KERR_REBALANCE_IN_PROGRESS);
    sm_group_assignment_t as[2] = {{a.id, (const uint8_t *)"A", 1}, {b.id, (const uint8_t *)"B", 1}};
    int stores = nstores;
    sync_(g, leader, as, 2);
    CHECK_EQ(nstores, stores + 1);
    CHECK_EQ(g->state, SM_GROUP_STABLE);
    CHECK_EQ(a.sw.calls, 1);
    CHECK_EQ(b.sw.calls, 1);
    CHECK(strcmp(a.sw.assignment, "A") == 0);
    CHECK(strcmp(b.sw.assignment, "B") == 0);
    CHECK_EQ(hb(g, &a), SM_KERR_NONE);
    /* Fencing. */
    member_t old = a;
    old.generation = 1;
    CHECK_EQ(hb(g, &old), SM_KERR_ILLEGAL_GENERATION);
    CHECK_EQ(sm_group_heartbeat(g, "nobody", NULL, 2, T), SM_KERR_UNKNOWN_MEMBER_ID);
    CHECK_EQ(sm_group_commit_check(g, 1, a.id, NULL), SM_KERR_ILLEGAL_GENERATION);
    CHECK_EQ(sm_group_commit_check(g, 2, "nobody", NULL), SM_KERR_UNKNOWN_MEMBER_ID);
    CHECK_EQ(sm_group_commit_check(g, 2, a.id, NULL), SM_KERR_NONE);
    CHECK_EQ(sm_group_commit_check(g, -1, "", NULL), SM_KERR_UNKNOWN_MEMBER_ID);
    sync_(g, &old, NULL, 0);
    CHECK_EQ(old.sw.error, SM_KERR_ILLEGAL_GENERATION);
    /* A stable follower rejoining with the same metadata: no rebalance. */
    join(g, follower, false);
    CHECK_EQ(follower->jw.calls, 1);
    CHECK_EQ(follower->jw.generation, 2);
    CHECK_EQ(g->state, SM_GROUP_STABLE);
    sm_group_free(g);
}

static void test_session_timeout(void)
{
    sm_group_env_t env = make_env(0);
    sm_group_t *g = sm_group_new("g", &env, T);
    member_t a, b;
    member_init(&a, NULL);
    member_init(&b, NULL);
    make_stable_pair(g, &a, &b);
    CHECK_EQ(g->state, SM_GROUP_STABLE);
    CHECK_EQ(g->nmembers, 2);
    /* a heartbeats, b goes silent. */
    for (int i = 0; i < 4; i++) {
        advance(3000);
        CHECK(hb(g, &a) == SM_KERR_NONE || hb(g, &a) == SM_KERR_REBALANCE_IN_PROGRESS);
        sm_group_tick(g, T);
    }
    CHECK_EQ(g->nmembers, 1);
    CHECK(sm_group_find_member(g, b.id) == NULL);
    CHECK_EQ(g->state, SM_GROUP_PREPARING_REBALANCE);
    CHECK_EQ(hb(g, &b), SM_KERR_UNKNOWN_MEMBER_ID);
    join(g, &a, false);
    CHECK_EQ(a.jw.calls, 1);
    CHECK_EQ(a.jw.generation, 3);
    CHECK_EQ(a.jw.nmembers, 1);
    /* a dies too: the group empties and the empty generation is stored. */
    adopt(&a);
    int stores = nstores;
    advance(10001);
    sm_group_tick(g, T);
    CHECK_EQ(g->nmembers, 0);
    CHECK_EQ(g->state, SM_GROUP_EMPTY);
    CHECK_EQ(g->generation, 4);
    CHECK(nstores > stores);
    sm_group_free(g);
}

static void test_rebalance_timeout_removes_laggard(void)
{
    sm_group_env_t env = make_env(0);
    sm_group_t *g = sm_group_new("g", &env, T);
    member_t a, b, c;
    member_init(&a, NULL);
    member_init(&b, NULL);
    member_init(&c, NULL);
    make_stable_pair(g, &a, &b);
    join(g, &c, false); /* rebalance: a rejoins, b never does (but heartbeats) */
    adopt(&c);
    join(g, &a, false);
    CHECK_EQ(a.jw.calls, 0);
    for (int i = 0; i < 10; i++) {
        advance(3000);
        hb(g, &b);
        sm_group_tick(g, T);
    }
    advance(1000);
    sm_group_tick(g, T); /* 31 s: past the 30 s rebalance timeout */
    CHECK_EQ(a.jw.calls, 1);
    CHECK_EQ(c.jw.calls, 1);
    CHECK_EQ(g->nmembers, 2);
    CHECK(sm_group_find_member(g, b.id) == NULL);
    CHECK_EQ(hb(g, &b), SM_KERR_UNKNOWN_MEMBER_ID);
    sm_group_free(g);
}

static void test_static_membership(void)
{
    sm_group_env_t env = make_env(0);
    sm_group_t *g = sm_group_new("g", &env, T);
    member_t a, b;
    member_init(&a, "inst-a");
    member_init(&b, "inst-b");
    make_stable_pair(g, &a, &b);
    CHECK_EQ(g->state, SM_GROUP_STABLE);
    CHECK(strncmp(a.id, "inst-a-", 7) == 0);
    int32_t gen = g->generation;
    /* inst-b restarts: joins without a member id, same metadata. */
    member_t b2;
    member_init(&b2, "inst-b");
    join(g, &b2, true);
    CHECK_EQ(b2.jw.calls, 1);
    CHECK_EQ(b2.jw.error, SM_KERR_NONE);
    CHECK_EQ(b2.jw.generation, gen); /* no rebalance */
    CHECK_EQ(g->state, SM_GROUP_STABLE);
    CHECK(strcmp(b2.jw.member_id, b.id) != 0);
    adopt(&b2);
    sync_(g, &b2, NULL, 0);
    CHECK_EQ(b2.sw.error, SM_KERR_NONE);
    CHECK(strcmp(b2.sw.assignment, "B") == 0); /* the old assignment */
    /* The old incarnation is fenced everywhere. */
    CHECK_EQ(hb(g, &b), SM_KERR_FENCED_INSTANCE_ID);
    sync_(g, &b, NULL, 0);
    CHECK_EQ(b.sw.error, SM_KERR_FENCED_INSTANCE_ID);
    CHECK_EQ(sm_group_commit_check(g, gen, b.id, "inst-b"), SM_KERR_FENCED_INSTANCE_ID);
    CHECK_EQ(sm_group_leave(g, b.id, "inst-b", T), SM_KERR_FENCED_INSTANCE_ID);
    join(g, &b, false);
    CHECK_EQ(b.jw.error, SM_KERR_FENCED_INSTANCE_ID);
    CHECK_EQ(hb(g, &b2), SM_KERR_NONE);
    /* The static leader restarting gets the member list and skip_assignment. */
    member_t a2;
    member_init(&a2, "inst-a");
    join(g, &a2, true);
    CHECK_EQ(a2.jw.error, SM_KERR_NONE);
    CHECK(a2.jw.skip);
    CHECK_EQ(a2.jw.nmembers, 2);
    CHECK(strcmp(a2.jw.leader, a2.jw.member_id) == 0);
    CHECK_EQ(g->state, SM_GROUP_STABLE);
    CHECK_EQ(g->generation, gen);
    /* Static members that miss a rebalance keep their place until their
     * session expires. */
    adopt(&a2);
    member_t c;
    member_init(&c, NULL);
    join(g, &c, false);
    CHECK_EQ(g->state, SM_GROUP_PREPARING_REBALANCE);
    join(g, &a2, false);
    advance(9000);
    hb(g, &b2);
    sm_group_tick(g, T);
    join(g, &b2, false);
    CHECK_EQ(a2.jw.calls, 1);
    CHECK_EQ(g->nmembers, 3);
    /* Administrative removal by instance id. */
    adopt(&a2);
    adopt(&b2);
    adopt(&c);
    CHECK_EQ(sm_group_leave(g, "", "inst-b", T), SM_KERR_NONE);
    CHECK_EQ(g->nmembers, 2);
    CHECK_EQ(sm_group_leave(g, "", "inst-zzz", T), SM_KERR_UNKNOWN_MEMBER_ID);
    sm_group_free(g);
}

static void test_leave_and_parked_answers(void)
{
    sm_group_env_t env = make_env(0);
    sm_group_t *g = sm_group_new("g", &env, T);
    member_t a, b;
    member_init(&a, NULL);
    member_init(&b, NULL);
    make_stable_pair(g, &a, &b);
    /* b rejoins with new metadata (rebalance); a leaves: b completes alone. */
    b.meta = "sub2";
    join(g, &b, false);
    CHECK_EQ(g->state, SM_GROUP_PREPARING_REBALANCE);
    CHECK_EQ(sm_group_leave(g, a.id, NULL, T), SM_KERR_NONE);
    CHECK_EQ(b.jw.calls, 1);
    CHECK_EQ(b.jw.nmembers, 1); /* b leads now */
    CHECK_EQ(sm_group_leave(g, a.id, NULL, T), SM_KERR_UNKNOWN_MEMBER_ID);
    adopt(&b);
    /* b syncs then leaves while its SyncGroup is parked? It is the leader,
     * so its sync completes at once. */
    sync_(g, &b, NULL, 0);
    CHECK_EQ(b.sw.calls, 1);
    CHECK_EQ(g->state, SM_GROUP_STABLE);
    CHECK_EQ(sm_group_leave(g, b.id, NULL, T), SM_KERR_NONE);
    CHECK_EQ(g->state, SM_GROUP_EMPTY);
    CHECK_EQ(sm_group_commit_check(g, -1, "", NULL), SM_KERR_NONE);
    sm_group_free(g);

    /* Unload answers parked requests exactly once. */
    env = make_env(3000);
    g = sm_group_new("g2", &env, T);
    member_init(&a, NULL);
    join(g, &a, false);
    CHECK_EQ(a.jw.calls, 0);
    sm_group_unload(g, SM_KERR_NOT_COORDINATOR);
    CHECK_EQ(a.jw.calls, 1);
    CHECK_EQ(a.jw.error, SM_KERR_NOT_COORDINATOR);
    CHECK_EQ(g->state, SM_GROUP_DEAD);
    sm_group_free(g);
}

static void test_protocol_selection(void)
{
    sm_group_env_t env = make_env(0);
    sm_group_t *g = sm_group_new("g", &env, T);
    member_t a, b, c;
    member_init(&a, NULL);
    member_init(&b, NULL);
    member_init(&c, NULL);
    a.protos[0] = "roundrobin", a.protos[1] = "range";
    b.protos[0] = "range", b.protos[1] = "roundrobin";
    c.protos[0] = "range", c.protos[1] = NULL;
    join(g, &a, false);
    adopt(&a);
    join(g, &b, false);
    join(g, &a, false);
    CHECK_EQ(a.jw.calls, 1);
    CHECK(strcmp(a.jw.protocol, "roundrobin") == 0 || strcmp(a.jw.protocol, "range") == 0);
    adopt(&a);
    adopt(&b);
    /* c supports only range: range is the only candidate now. */
    join(g, &c, false);
    join(g, &a, false);
    join(g, &b, false);
    CHECK_EQ(c.jw.calls, 1);
    CHECK(strcmp(c.jw.protocol, "range") == 0);
    /* A member with no common protocol is refused. */
    member_t d;
    member_init(&d, NULL);
    d.protos[0] = "sticky";
    join(g, &d, false);
    CHECK_EQ(d.jw.error, SM_KERR_INCONSISTENT_GROUP_PROTOCOL);
    /* Bad session timeout. */
    sm_group_join_args_t bad = {.member_id = "", .session_timeout_ms = 10, .protocol_type = "consumer"};
    fake_waiter_t w;
    waiter_reset(&w);
    sm_group_join(g, &bad, T, &w.w);
    CHECK_EQ(w.error, SM_KERR_INVALID_SESSION_TIMEOUT);
    sm_group_free(g);
}

static void test_cooperative_rejoin(void)
{
    /* cooperative-sticky: after a rebalance a member that revoked partitions
     * rejoins at once with new owned-partition metadata; the group runs a
     * second rebalance in which everyone rejoins. */
    sm_group_env_t env = make_env(0);
    sm_group_t *g = sm_group_new("g", &env, T);
    member_t a, b;
    member_init(&a, NULL);
    member_init(&b, NULL);
    a.protos[0] = b.protos[0] = "cooperative-sticky";
    make_stable_pair(g, &a, &b);
    int32_t gen = g->generation;
    CHECK_EQ(g->state, SM_GROUP_STABLE);
    b.meta = "owned:p1";
    join(g, &b, false);
    CHECK_EQ(g->state, SM_GROUP_PREPARING_REBALANCE);
    CHECK_EQ(hb(g, &a), SM_KERR_REBALANCE_IN_PROGRESS);
    /* a may still commit for its generation while the rebalance prepares. */
    CHECK_EQ(sm_group_commit_check(g, gen, a.id, NULL), SM_KERR_NONE);
    a.meta = "owned:p0";
    join(g, &a, false);
    CHECK_EQ(a.jw.calls, 1);
    CHECK_EQ(b.jw.calls, 1);
    CHECK_EQ(a.jw.generation, gen + 1);
    adopt(&a);
    adopt(&b);
    member_t *leader = strcmp(a.jw.leader, a.id) == 0 ? &a : &b;
    sm_group_assignment_t as[2] = {{a.id, (const uint8_t *)"A2", 2}, {b.id, (const uint8_t *)"B2", 2}};
    sync_(g, leader, as, 2);
    member_t *other = leader == &a ? &b : &a;
    sync_(g, other, NULL, 0);
    CHECK_EQ(other->sw.calls, 1);
    CHECK_EQ(g->state, SM_GROUP_STABLE);
    CHECK(strcmp(a.sw.assignment, "A2") == 0);
    sm_group_free(g);
}

static void test_completing_rebalance_interrupted(void)
{
    sm_group_env_t env = make_env(0);
    sm_group_t *g = sm_group_new("g", &env, T);
    member_t a, b, c;
    member_init(&a, NULL);
    member_init(&b, NULL);
    member_init(&c, NULL);
    join(g, &a, false);
    adopt(&a);
    join(g, &b, false);
    join(g, &a, false);
    adopt(&a);
    adopt(&b);
    CHECK_EQ(g->state, SM_GROUP_COMPLETING_REBALANCE);
    member_t *leader = strcmp(a.jw.leader, a.id) == 0 ? &a : &b;
    member_t *follower = leader == &a ? &b : &a;
    sync_(g, follower, NULL, 0);
    CHECK_EQ(follower->sw.calls, 0);
    /* A new member arrives before the leader syncs: the parked sync fails
     * with REBALANCE_IN_PROGRESS. */
    join(g, &c, false);
    CHECK_EQ(follower->sw.calls, 1);
    CHECK_EQ(follower->sw.error, SM_KERR_REBALANCE_IN_PROGRESS);
    CHECK_EQ(g->state, SM_GROUP_PREPARING_REBALANCE);
    /* Storage failure during the leader's sync: everyone waiting gets the
     * error and the group rebalances again. */
    join(g, &a, false);
    join(g, &b, false);
    adopt(&a);
    adopt(&b);
    adopt(&c);
    CHECK_EQ(g->state, SM_GROUP_COMPLETING_REBALANCE);
    leader = strcmp(a.jw.leader, a.id) == 0 ? &a : (strcmp(b.jw.leader, b.id) == 0 ? &b : &c);
    store_error = SM_KERR_COORDINATOR_NOT_AVAILABLE;
    sync_(g, leader, NULL, 0);
    CHECK_EQ(leader->sw.error, SM_KERR_COORDINATOR_NOT_AVAILABLE);
    CHECK_EQ(g->state, SM_GROUP_PREPARING_REBALANCE);
    store_error = 0;
    sm_group_free(g);
}

static void test_never_synced(void)
{
    sm_group_env_t env = make_env(0);
    sm_group_t *g = sm_group_new("g", &env, T);
    member_t a, b;
    member_init(&a, NULL);
    member_init(&b, NULL);
    join(g, &a, false);
    adopt(&a);
    join(g, &b, false);
    join(g, &a, false);
    adopt(&a);
    adopt(&b);
    member_t *leader = strcmp(a.jw.leader, a.id) == 0 ? &a : &b;
    member_t *follower = leader == &a ? &b : &a;
    sm_group_assignment_t as[1] = {{leader->id, (const uint8_t *)"L", 1}};
    sync_(g, leader, as, 1);
    CHECK_EQ(g->state, SM_GROUP_STABLE);
    /* The follower heartbeats but never syncs: removed after the rebalance
     * timeout. */
    for (int i = 0; i < 11; i++) {
        advance(3000);
        hb(g, follower);
        hb(g, leader);
        sm_group_tick(g, T);
    }
    CHECK(sm_group_find_member(g, follower->id) == NULL);
    CHECK_EQ(g->state, SM_GROUP_PREPARING_REBALANCE);
    sm_group_free(g);
}

static void test_offsets_table(void)
{
    sm_offset_table_t t;
    sm_offset_table_init(&t);
    char topic[32];
    for (int i = 0; i < 1000; i++) {
        snprintf(topic, sizeof topic, "t%d", i % 7);
        sm_offset_value_t v = {.offset = i, .leader_epoch = 1, .metadata = "m", .metadata_len = 1,
                               .commit_ms = 5, .expire_ms = -1};
        sm_offset_table_put(&t, topic, strlen(topic), i, &v);
    }
    CHECK_EQ(t.count, 1000);
    sm_offset_value_t v = {.offset = 77, .leader_epoch = -1, .metadata = NULL};
    sm_offset_table_put(&t, "t3", 2, 3, &v);
    CHECK_EQ(t.count, 1000);
    sm_offset_entry_t *e = sm_offset_table_get(&t, "t3", 2, 3);
    CHECK(e && e->offset == 77 && e->metadata_len == 0 && strcmp(e->metadata, "") == 0);
    CHECK(sm_offset_table_get(&t, "t4", 2, 3) == NULL);
    CHECK(sm_offset_table_del(&t, "t3", 2, 3));
    CHECK(!sm_offset_table_del(&t, "t3", 2, 3));
    uint32_t n;
    sm_offset_entry_t **s = sm_offset_table_sorted(&t, &n);
    CHECK_EQ(n, 999);
    bool sorted = true;
    for (uint32_t i = 1; i < n; i++) {
        int c = strcmp(s[i - 1]->topic, s[i]->topic);
        if (c > 0 || (c == 0 && s[i - 1]->partition >= s[i]->partition))
            sorted = false;
    }
    CHECK(sorted);
    free(s);
    sm_offset_table_free(&t);
}

static void test_offset_expiry_rule(void)
{
    sm_group_env_t env = make_env(0);
    const int64_t R = 60000; /* retention */
    sm_group_t *g = sm_group_new("g", &env, T);
    sm_offset_value_t v = {.offset = 1, .leader_epoch = -1, .commit_ms = T.wall_ms, .expire_ms = -1};
    sm_offset_table_put(&g->offsets, "t", 1, 0, &v);
    sm_offset_entry_t *e = sm_offset_table_get(&g->offsets, "t", 1, 0);
    /* Offsets-only group (no protocol type): by commit time. */
    CHECK(!sm_group_offset_expired(g, e, R, T.wall_ms + R - 1));
    CHECK(sm_group_offset_expired(g, e, R, T.wall_ms + R));
    /* A consumer group with members never expires its offsets... */
    member_t a;
    member_init(&a, NULL);
    join(g, &a, false);
    adopt(&a);
    CHECK_EQ(g->state, SM_GROUP_COMPLETING_REBALANCE);
    CHECK(!sm_group_offset_expired(g, e, R, T.wall_ms + 10 * R));
    /* ...and once Empty, counts from the time it became Empty, not from the
     * (older) commit. */
    advance(5 * R);
    CHECK_EQ(sm_group_leave(g, a.id, NULL, T), SM_KERR_NONE);
    CHECK_EQ(g->state, SM_GROUP_EMPTY);
    CHECK(!sm_group_offset_expired(g, e, R, T.wall_ms + R - 1));
    CHECK(sm_group_offset_expired(g, e, R, T.wall_ms + R));
    /* An explicit expiry timestamp wins. */
    e->expire_ms = T.wall_ms + 5;
    CHECK(sm_group_offset_expired(g, e, R, T.wall_ms + 5));
    CHECK(!sm_group_offset_expired(g, e, R, T.wall_ms + 4));
    CHECK(!sm_group_is_disposable(g));
    sm_offset_table_free(&g->offsets);
    CHECK(sm_group_is_disposable(g));
    sm_group_free(g);
}

static void test_partitioning(void)
{
    /* Values of Java's Math.abs("...".hashCode()) % 50. */
    CHECK_EQ(sm_coord_partition_for("", 0, 50), 0);
    /* "a".hashCode() = 97 */
    CHECK_EQ(sm_coord_partition_for("a", 1, 50), 97 % 50);
    /* "my-group".hashCode() = -1906497762 -> 12 */
    CHECK_EQ(sm_coord_partition_for("my-group", 8, 50), 12);
    /* "polygenelubricants".hashCode() = Integer.MIN_VALUE -> Utils.abs = 0 */
    CHECK_EQ(sm_coord_partition_for("polygenelubricants", 18, 50), 0);
    /* "console-consumer-1".hashCode() = 35782224 -> 24 */
    CHECK_EQ(sm_coord_partition_for("console-consumer-1", 18, 50), 24);
    /* Non-ASCII: "é" (U+00E9) hashes as 233; U+1F600 as its surrogate pair
     * 0xD83D, 0xDE00 -> 55357*31 + 56832 = 1772899. */
    CHECK_EQ(sm_coord_partition_for("\xc3\xa9", 2, 1000), 233);
    CHECK_EQ(sm_coord_partition_for("\xf0\x9f\x98\x80", 4, 10000000), 1772899);
}

static void test_records_roundtrip(void)
{
    sm_group_env_t env = make_env(0);
    sm_group_t *g = sm_group_new("grp", &env, T);
    member_t a, b;
    member_init(&a, "inst-a");
    member_init(&b, NULL);
    make_stable_pair(g, &a, &b);
    sm_arena_t ar;
    sm_arena_init(&ar);
    sm_coord_kv_t kv[3];
    sm_offset_value_t v = {.offset = 42, .leader_epoch = 3, .metadata = "meta", .metadata_len = 4,
                           .commit_ms = 1234, .expire_ms = -1};
    sm_coord_record_offset(&ar, "grp", "topic", 5, 7, &v, &kv[0]);
    sm_coord_record_offset(&ar, "grp", "topic", 5, 8, NULL, &kv[1]);
    sm_coord_record_group(&ar, g, false, &kv[2]);
    /* Through a real batch and the record iterator. */
    sm_record_in_t recs[3];
    for (int i = 0; i < 3; i++)
        recs[i] = (sm_record_in_t){kv[i].key, kv[i].key_len, kv[i].value, kv[i].value_len, 1, 0, NULL};
    sm_batch_params_t bp = {0, -1, 0, -1, -1, -1};
    sm_wbuf_t w;
    sm_wbuf_init(&w);
    sm_batch_encode(&w, &bp, recs, 3);
    sm_batch_info_t bi;
    CHECK_EQ(sm_batch_validate(w.mem, w.len, &bi, NULL), SM_OK);
    sm_record_iter_t it;
    CHECK_EQ(sm_record_iter_init(&it, w.mem, w.len), SM_OK);
    sm_record_t rec;
    sm_coord_record_t r;
    CHECK_EQ(sm_record_iter_next(&it, &rec), SM_OK);
    CHECK_EQ(sm_coord_record_decode(rec.key, rec.key_len, rec.value, rec.value_len, &ar, &r), SM_OK);
    CHECK_EQ(r.kind, SM_COORD_REC_OFFSET);
    CHECK(sm_str_eq(r.group, "grp") && sm_str_eq(r.topic, "topic"));
    CHECK_EQ(r.partition, 7);
    CHECK(!r.tombstone);
    CHECK_EQ(r.offset.offset, 42);
    CHECK_EQ(r.offset.leader_epoch, 3);
    CHECK(sm_str_eq(r.offset.metadata, "meta"));
    CHECK_EQ(r.offset.commit_timestamp, 1234);
    CHECK_EQ(sm_record_iter_next(&it, &rec), SM_OK);
    CHECK_EQ(sm_coord_record_decode(rec.key, rec.key_len, rec.value, rec.value_len, &ar, &r), SM_OK);
    CHECK(r.tombstone && r.partition == 8);
    CHECK_EQ(sm_record_iter_next(&it, &rec), SM_OK);
    CHECK_EQ(sm_coord_record_decode(rec.key, rec.key_len, rec.value, rec.value_len, &ar, &r), SM_OK);
    CHECK_EQ(r.kind, SM_COORD_REC_GROUP);
    CHECK(sm_str_eq(r.group, "grp"));
    CHECK(sm_str_eq(r.meta.protocol_type, "consumer"));
    CHECK(sm_str_eq(r.meta.protocol, "range"));
    CHECK_EQ(r.meta.generation, g->generation);
    CHECK(sm_str_eq(r.meta.leader, g->leader_id));
    CHECK_EQ(r.meta.members_count, 2);
    CHECK(sm_str_eq(r.meta.members[0].group_instance_id, "inst-a"));
    CHECK_EQ(r.meta.members[0].assignment.len, 1);
    CHECK_EQ(r.meta.members[0].session_timeout, 10000);
    CHECK_EQ(r.meta.members[0].rebalance_timeout, 30000);
    CHECK_EQ(sm_record_iter_next(&it, &rec), SM_ERR_NOT_FOUND);

    /* Restore into a fresh group: stable, same members and assignments. */
    sm_group_t *h = sm_group_new("grp", &env, T);
    sm_group_restore_meta(h, "consumer", r.meta.generation, "range", g->leader_id, 5);
    for (int32_t i = 0; i < r.meta.members_count; i++) {
        const sm_group_metadata_value_member_metadata_t *m = &r.meta.members[i];
        char *mid = sm_str_dup(&ar, m->member_id), *iid = sm_str_dup(&ar, m->group_instance_id);
        sm_group_restore_member(h, mid, iid, "c", "/h", m->session_timeout, m->rebalance_timeout,
                                "range", m->subscription.ptr, m->subscription.len,
                                m->assignment.ptr, m->assignment.len, T);
    }
    CHECK_EQ(h->state, SM_GROUP_STABLE);
    CHECK(strcmp(h->leader_id, g->leader_id) == 0);
    CHECK_EQ(sm_group_heartbeat(h, a.id, "inst-a", g->generation, T), SM_KERR_NONE);
    member_t a2 = a;
    sync_(h, &a2, NULL, 0);
    CHECK(strcmp(a2.sw.assignment, "A") == 0);

    /* Unknown key versions are skipped, garbage is an error. */
    uint8_t k9[] = {0, 9, 0, 0};
    CHECK_EQ(sm_coord_record_decode(k9, 4, NULL, -1, &ar, &r), SM_ERR_NOT_FOUND);
    uint8_t bad[] = {0, 1, 0, 50, 'x'};
    CHECK(sm_coord_record_decode(bad, 5, NULL, -1, &ar, &r) != SM_OK);
    CHECK(sm_coord_record_decode(bad, 1, NULL, -1, &ar, &r) != SM_OK);

    sm_wbuf_free(&w);
    sm_arena_free(&ar);
    sm_group_free(h);
    sm_group_free(g);
}

static void test_many_groups_bounded(void)
{
    /* 1000 groups of 10 members through a full rebalance; everything is
     * freed (run under ASan/valgrind to see leaks). */
    sm_group_env_t env = make_env(0);
    static member_t m[10];
    for (int k = 0; k < 1000; k++) {
        char id[16];
        snprintf(id, sizeof id, "g%d", k);
        sm_group_t *g = sm_group_new(id, &env, T);
        for (int i = 0; i < 10; i++) {
            member_init(&m[i], NULL);
            join(g, &m[i], true); /* MEMBER_ID_REQUIRED */
            adopt(&m[i]);
            join(g, &m[i], true);
        }
        for (int i = 0; i < 10; i++)
            if (!sm_group_find_member(g, m[i].id)->join_waiter)
                join(g, &m[i], true);
        if (k == 999) {
            CHECK_EQ(g->nmembers, 10);
            CHECK_EQ(g->state, SM_GROUP_COMPLETING_REBALANCE);
        }
        sm_group_unload(g, SM_KERR_NOT_COORDINATOR);
        sm_group_free(g);
    }
}

int main(void)
{
    if (!getenv("SAMSA_LOG_LEVEL"))
        sm_log_set_level(SM_LOG_WARN); /* the group INFO lines drown the report */
    RUN(test_kip394_and_initial_delay);
    RUN(test_sync_and_heartbeat);
    RUN(test_session_timeout);
    RUN(test_rebalance_timeout_removes_laggard);
    RUN(test_static_membership);
    RUN(test_leave_and_parked_answers);
    RUN(test_protocol_selection);
    RUN(test_cooperative_rejoin);
    RUN(test_completing_rebalance_interrupted);
    RUN(test_never_synced);
    RUN(test_offsets_table);
    RUN(test_offset_expiry_rule);
    RUN(test_partitioning);
    RUN(test_records_roundtrip);
    RUN(test_many_groups_bounded);
    TEST_MAIN_END();
}
