/* test_loop_tasks.c - the event loop's intrusive tasks (coalescing, re-posting
 * from inside the task, posting from other threads) and timer cancellation
 * checked against a simple reference model under random operations. */
#include "loop.h"
#include "sm_test.h"

#include <pthread.h>
#include <stdint.h>
#include <time.h>

static sm_loop_t *L;

/* ---- intrusive tasks */

typedef struct counter {
    sm_loop_task_t task;
    int runs;
    int repost; /* times to post itself again from inside */
} counter_t;

static void counter_run(void *arg)
{
    counter_t *c = arg;
    c->runs++;
    if (c->repost > 0) {
        c->repost--;
        CHECK(sm_loop_post_task(L, &c->task)); /* cleared before running: queues again */
    }
}

static void stop_loop(void *arg)
{
    (void)arg;
    sm_loop_stop(L);
}

static void test_coalesce(void)
{
    L = sm_loop_new(0);
    counter_t c = {0};
    sm_loop_task_init(&c.task, counter_run, &c);
    CHECK(sm_loop_post_task(L, &c.task));
    CHECK(!sm_loop_post_task(L, &c.task)); /* already queued: one run covers both */
    CHECK(!sm_loop_post_task(L, &c.task));
    sm_loop_timer(L, sm_now_mono_ms() + 20, stop_loop, NULL);
    sm_loop_run(L);
    CHECK_EQ(c.runs, 1);

    /* A task posting itself from inside runs again, once per post (a
     * stopped loop does not restart, so use a fresh one). */
    sm_loop_free(L);
    L = sm_loop_new(0);
    c.runs = 0;
    c.repost = 3;
    sm_loop_task_init(&c.task, counter_run, &c);
    CHECK(sm_loop_post_task(L, &c.task));
    sm_loop_timer(L, sm_now_mono_ms() + 20, stop_loop, NULL);
    sm_loop_run(L);
    CHECK_EQ(c.runs, 4);
    sm_loop_free(L);
}

/* Several threads post the same intrusive task many times: every post is
 * followed by at least one run (no lost wake-up), and runs never exceed
 * posts. */
typedef struct shared {
    sm_loop_task_t task;
    int runs;      /* loop thread only */
    int posted;    /* atomic */
    int seen;      /* atomic: posts observed by the last run */
} shared_t;

static shared_t S;

static void shared_run(void *arg)
{
    shared_t *s = arg;
    s->runs++;
    __atomic_store_n(&s->seen, __atomic_load_n(&s->posted, __ATOMIC_ACQUIRE), __ATOMIC_RELEASE);
}

static void *poster(void *arg)
{
    (void)arg;
    for (int i = 0; i < 20000; i++) {
        __atomic_fetch_add(&S.posted, 1, __ATOMIC_ACQ_REL);
        sm_loop_post_task(L, &S.task);
    }
    return NULL;
}

static void test_cross_thread(void)
{
    L = sm_loop_new(1);
    sm_loop_task_init(&S.task, shared_run, &S);
    CHECK(sm_loop_start_thread(L) == SM_OK);
    pthread_t t[3];
    for (int i = 0; i < 3; i++)
        pthread_create(&t[i], NULL, poster, NULL);
    for (int i = 0; i < 3; i++)
        pthread_join(t[i], NULL);
    /* Bounded wait for the last post to be covered by a run. */
    for (int i = 0; i < 5000 && __atomic_load_n(&S.seen, __ATOMIC_ACQUIRE) != 60000; i++) {
        struct timespec ts = {0, 1000000};
        nanosleep(&ts, NULL);
    }
    CHECK_EQ(__atomic_load_n(&S.seen, __ATOMIC_ACQUIRE), 60000);
    sm_loop_stop(L);
    sm_loop_join(L);
    CHECK(S.runs >= 1 && S.runs <= 60000);
    sm_loop_free(L);
}

/* ---- timers against a reference model */

#define NT 2000
static uint64_t ids[NT];
static int64_t when[NT];
static bool live[NT];
static int fired_order[NT];
static int nfired;

static void timer_fired(void *arg)
{
    int i = (int)(intptr_t)arg;
    CHECK(live[i]);
    live[i] = false;
    fired_order[nfired++] = i;
}

static void test_timer_model(void)
{
    L = sm_loop_new(2);
    uint64_t seed = 12345;
    int64_t base = sm_now_mono_ms() + 5;
    for (int i = 0; i < NT; i++) {
        seed = seed * 6364136223846793005ULL + 1442695040888963407ULL;
        when[i] = base + (int64_t)((seed >> 33) % 40); /* many equal deadlines */
        ids[i] = sm_loop_timer(L, when[i], timer_fired, (void *)(intptr_t)i);
        CHECK(ids[i] != 0);
        live[i] = true;
        /* cancel a random earlier one now and then (some twice) */
        if (i > 0 && (seed >> 20) % 3 == 0) {
            int j = (int)((seed >> 40) % (uint64_t)i);
            sm_loop_timer_cancel(L, ids[j]);
            live[j] = false;
        }
    }
    int expect = 0;
    for (int i = 0; i < NT; i++)
        expect += live[i];
    CHECK_EQ(sm_loop_timer_count(L), expect);
    sm_loop_timer_cancel(L, 0);                          /* ignored */
    sm_loop_timer_cancel(L, ((uint64_t)99 << 32) | 1);   /* wrong generation: ignored */
    CHECK_EQ(sm_loop_timer_count(L), expect);
    sm_loop_timer(L, base + 100, stop_loop, NULL);
    sm_loop_run(L);
    CHECK_EQ(nfired, expect);
    /* Fired in (deadline, creation) order. */
    for (int k = 1; k < nfired; k++) {
        int a = fired_order[k - 1], b = fired_order[k];
        CHECK(when[a] < when[b] || (when[a] == when[b] && a < b));
    }
    /* Ids of fired timers are stale: cancelling them must not hit new timers
     * that reuse the slots. */
    uint64_t fresh = sm_loop_timer(L, sm_now_mono_ms() + 1000000, timer_fired, (void *)0);
    for (int i = 0; i < NT; i++)
        sm_loop_timer_cancel(L, ids[i]);
    CHECK_EQ(sm_loop_timer_count(L), 1);
    sm_loop_timer_cancel(L, fresh);
    CHECK_EQ(sm_loop_timer_count(L), 0);
    sm_loop_free(L);
}

int main(void)
{
    RUN(test_coalesce);
    RUN(test_cross_thread);
    RUN(test_timer_model);
    TEST_MAIN_END();
}
