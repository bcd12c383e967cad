/* test_brokers.c - broker liveness on the controller (src/meta/brokers.c):
 * registration fenced until caught up, session expiry, WantFence, duplicate
 * ids, stale epochs, controlled shutdown, re-registration after a restart,
 * and a randomized run checking the state machine's invariants. */
#include "brokers.h"
#include "sm_test.h"

#include <string.h>

static const uint8_t INC_A[16] = {1}, INC_B[16] = {2};

static void test_register_then_unfence(void)
{
    sm_brokers_t *t = sm_brokers_new(9000);
    sm_broker_hb_reply_t r;
    CHECK_EQ(sm_brokers_register(t, 1, INC_A, 40, 0), 0);
    sm_broker_state_t s;
    CHECK(sm_brokers_state(t, 1, &s) && s == SM_BROKER_FENCED);
    /* behind its own registration record: not caught up, stays fenced */
    CHECK_EQ(sm_brokers_heartbeat(t, 1, 40, 39, false, false, 100, &r), SM_BROKER_ACT_NONE);
    CHECK(!r.is_caught_up && r.is_fenced && !r.should_shutdown && r.error == 0);
    /* caught up: unfenced */
    CHECK_EQ(sm_brokers_heartbeat(t, 1, 40, 40, false, false, 200, &r), SM_BROKER_ACT_UNFENCE);
    CHECK(r.is_caught_up && !r.is_fenced);
    CHECK_EQ(sm_brokers_heartbeat(t, 1, 40, 41, false, false, 300, &r), SM_BROKER_ACT_NONE);
    CHECK(!r.is_fenced);
    /* the metadata offset reported never goes back */
    CHECK_EQ(sm_brokers_heartbeat(t, 1, 40, 10, false, false, 400, &r), SM_BROKER_ACT_NONE);
    CHECK(r.is_caught_up);
    /* a stale epoch or an unknown id are refused and change nothing */
    CHECK_EQ(sm_brokers_heartbeat(t, 1, 39, 50, false, false, 500, &r), SM_BROKER_ACT_NONE);
    CHECK_EQ(r.error, 77);
    CHECK_EQ(sm_brokers_heartbeat(t, 7, 1, 50, false, false, 500, &r), SM_BROKER_ACT_NONE);
    CHECK_EQ(r.error, 109);
    CHECK(sm_brokers_state(t, 1, &s) && s == SM_BROKER_UNFENCED);
    sm_brokers_free(t);
}

static void test_session_expiry_and_want_fence(void)
{
    sm_brokers_t *t = sm_brokers_new(9000);
    sm_broker_hb_reply_t r;
    int32_t out[4];
    CHECK_EQ(sm_brokers_register(t, 1, INC_A, 5, 0), 0);
    CHECK_EQ(sm_brokers_register(t, 2, INC_B, 6, 0), 0);
    CHECK_EQ(sm_brokers_heartbeat(t, 1, 5, 6, false, false, 1000, &r), SM_BROKER_ACT_UNFENCE);
    CHECK_EQ(sm_brokers_heartbeat(t, 2, 6, 6, false, false, 1000, &r), SM_BROKER_ACT_UNFENCE);
    CHECK_EQ(sm_brokers_expire(t, 9999, out, 4), 0); /* 8999 ms since: alive */
    CHECK_EQ(sm_brokers_heartbeat(t, 2, 6, 7, false, false, 9000, &r), SM_BROKER_ACT_NONE);
    CHECK_EQ(sm_brokers_expire(t, 10000, out, 4), 1); /* broker 1: 9000 ms of silence */
    CHECK_EQ(out[0], 1);
    CHECK_EQ(sm_brokers_expire(t, 10001, out, 4), 0); /* fenced once */
    /* it comes back: caught up, unfenced again */
    CHECK_EQ(sm_brokers_heartbeat(t, 1, 5, 9, false, false, 10500, &r), SM_BROKER_ACT_UNFENCE);
    /* WantFence (a broker whose log dirs failed) */
    CHECK_EQ(sm_brokers_heartbeat(t, 1, 5, 9, true, false, 10600, &r), SM_BROKER_ACT_FENCE);
    CHECK(r.is_fenced);
    CHECK_EQ(sm_brokers_heartbeat(t, 1, 5, 9, true, false, 10700, &r), SM_BROKER_ACT_NONE);
    CHECK(r.is_fenced);
    sm_brokers_free(t);
}

static void test_duplicate_and_restart(void)
{
    sm_brokers_t *t = sm_brokers_new(9000);
    sm_broker_hb_reply_t r;
    CHECK_EQ(sm_brokers_register(t, 3, INC_A, 10, 0), 0);
    CHECK_EQ(sm_brokers_heartbeat(t, 3, 10, 10, false, false, 100, &r), SM_BROKER_ACT_UNFENCE);
    /* another process claims id 3 while the first is alive */
    CHECK_EQ(sm_brokers_register(t, 3, INC_B, 20, 200), 101);
    /* the same process re-registering (a restart that kept its incarnation) is fine */
    CHECK_EQ(sm_brokers_register(t, 3, INC_A, 30, 300), 0);
    sm_broker_state_t s;
    CHECK(sm_brokers_state(t, 3, &s) && s == SM_BROKER_FENCED);
    /* the old epoch is stale now */
    CHECK_EQ(sm_brokers_heartbeat(t, 3, 10, 40, false, false, 400, &r), SM_BROKER_ACT_NONE);
    CHECK_EQ(r.error, 77);
    /* once the old one's session ran out, a new incarnation may take the id */
    CHECK_EQ(sm_brokers_heartbeat(t, 3, 30, 40, false, false, 500, &r), SM_BROKER_ACT_UNFENCE);
    CHECK_EQ(sm_brokers_register(t, 3, INC_B, 50, 500 + 9000), 0);
    CHECK_EQ(sm_brokers_unregister(t, 3), 0);
    CHECK_EQ(sm_brokers_unregister(t, 3), 109);
    sm_brokers_free(t);
}

static void test_controlled_shutdown(void)
{
    sm_brokers_t *t = sm_brokers_new(9000);
    sm_broker_hb_reply_t r;
    CHECK_EQ(sm_brokers_register(t, 1, INC_A, 5, 0), 0);
    CHECK_EQ(sm_brokers_heartbeat(t, 1, 5, 5, false, false, 10, &r), SM_BROKER_ACT_UNFENCE);
    CHECK_EQ(sm_brokers_heartbeat(t, 1, 5, 6, false, true, 20, &r), SM_BROKER_ACT_BEGIN_SHUTDOWN);
    CHECK(!r.should_shutdown && !r.is_fenced);
    /* leaders not moved yet (no shutdown offset): keep waiting */
    CHECK_EQ(sm_brokers_heartbeat(t, 1, 5, 7, false, true, 30, &r), SM_BROKER_ACT_NONE);
    CHECK(!r.should_shutdown);
    sm_brokers_shutdown_offset(t, 1, 12);
    CHECK_EQ(sm_brokers_heartbeat(t, 1, 5, 11, false, true, 40, &r), SM_BROKER_ACT_NONE);
    CHECK(!r.should_shutdown);
    CHECK_EQ(sm_brokers_heartbeat(t, 1, 5, 12, false, true, 50, &r), SM_BROKER_ACT_FENCE);
    CHECK(r.should_shutdown && r.is_fenced);
    /* a fenced broker that wants to stop may stop at once */
    CHECK_EQ(sm_brokers_register(t, 2, INC_B, 60, 60), 0);
    CHECK_EQ(sm_brokers_heartbeat(t, 2, 60, 0, false, true, 70, &r), SM_BROKER_ACT_NONE);
    CHECK(r.should_shutdown);
    sm_brokers_free(t);
}

/* Random heartbeats, silences and shutdowns for many brokers: the actions
 * always match the state change, and only caught-up brokers are unfenced. */
static void test_random_invariants(void)
{
    uint64_t x = 88172645463325252ull;
    sm_brokers_t *t = sm_brokers_new(1000);
    enum { NB = 8 };
    int64_t epoch[NB], offset = 100;
    for (int b = 0; b < NB; b++) {
        uint8_t inc[16] = {(uint8_t)b};
        epoch[b] = offset++;
        CHECK_EQ(sm_brokers_register(t, b, inc, epoch[b], 0), 0);
    }
    int bad = 0;
    for (int64_t now = 1; now < 200000; now += 37) {
        x ^= x << 13, x ^= x >> 7, x ^= x << 17;
        int b = (int)(x % NB);
        sm_broker_state_t before, after;
        sm_brokers_state(t, b, &before);
        if ((x >> 8) % 5 == 0) { /* silence: let sessions expire */
            int32_t out[NB];
            int k = sm_brokers_expire(t, now + 1000, out, NB);
            for (int i = 0; i < k; i++) {
                sm_brokers_state(t, out[i], &after);
                bad += after != SM_BROKER_FENCED;
            }
            continue;
        }
        int64_t md = offset - (int64_t)((x >> 16) % 4);
        bool wf = (x >> 24) % 13 == 0, ws = (x >> 28) % 17 == 0;
        sm_broker_hb_reply_t r;
        sm_broker_action_t a = sm_brokers_heartbeat(t, b, epoch[b], md, wf, ws, now, &r);
        sm_brokers_state(t, b, &after);
        bad += a == SM_BROKER_ACT_UNFENCE && (before != SM_BROKER_FENCED ||
                                               after != SM_BROKER_UNFENCED || !r.is_caught_up);
        bad += a == SM_BROKER_ACT_FENCE && after != SM_BROKER_FENCED && after != SM_BROKER_SHUTDOWN_NOW;
        bad += a == SM_BROKER_ACT_BEGIN_SHUTDOWN && after != SM_BROKER_CONTROLLED_SHUTDOWN;
        bad += a == SM_BROKER_ACT_NONE && before != after &&
               !(before == SM_BROKER_FENCED && after == SM_BROKER_SHUTDOWN_NOW);
        bad += r.is_fenced != (after == SM_BROKER_FENCED || after == SM_BROKER_SHUTDOWN_NOW);
        if (after == SM_BROKER_CONTROLLED_SHUTDOWN && (x >> 40) % 3 == 0)
            sm_brokers_shutdown_offset(t, b, offset);
        if (after == SM_BROKER_SHUTDOWN_NOW) { /* it restarts */
            uint8_t inc[16] = {(uint8_t)b, (uint8_t)now};
            epoch[b] = offset;
            bad += sm_brokers_register(t, b, inc, epoch[b], now) != 0;
        }
        offset++;
    }
    CHECK_EQ(bad, 0);
    sm_brokers_free(t);
}

int main(void)
{
    RUN(test_register_then_unfence);
    RUN(test_session_expiry_and_want_fence);
    RUN(test_duplicate_and_restart);
    RUN(test_controlled_shutdown);
    RUN(test_random_invariants);
    TEST_MAIN_END();
}
