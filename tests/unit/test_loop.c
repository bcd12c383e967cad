/* test_loop.c - event loop: timers in deadline order, cancellation,
 * cross-thread posting, and the hash map. */
#include "hmap.h"
#include "loop.h"
#include "sm_test.h"

#include <pthread.h>
#include <stdio.h>

static int order[8];
static int norder;
static sm_loop_t *L;

static void record(void *arg)
{
    order[norder++] = (int)(intptr_t)arg;
}

static void stop_loop(void *arg)
{
    (void)arg;
    sm_loop_stop(L);
}

static void test_timers(void)
{
    L = sm_loop_new(0);
    int64_t now = sm_now_mono_ms();
    sm_loop_timer(L, now + 30, record, (void *)3);
    sm_loop_timer(L, now + 10, record, (void *)1);
    uint64_t id = sm_loop_timer(L, now + 15, record, (void *)99);
    sm_loop_timer(L, now + 20, record, (void *)2);
    sm_loop_timer_cancel(L, id);
    sm_loop_timer(L, now + 40, stop_loop, NULL);
    sm_loop_run(L);
    CHECK_EQ(norder, 3);
    CHECK_EQ(order[0], 1);
    CHECK_EQ(order[1], 2);
    CHECK_EQ(order[2], 3);
    CHECK(sm_now_mono_ms() - now >= 40);
    sm_loop_free(L);
}

static int posted;

static void count(void *arg)
{
    (void)arg;
    posted++; /* loop thread only: no race */
    if (posted == 4000)
        sm_loop_stop(L);
}

static void *poster(void *arg)
{
    (void)arg;
    for (int i = 0; i < 1000; i++)
        sm_loop_post(L, count, NULL);
    return NULL;
}

static void test_post(void)
{
    L = sm_loop_new(1);
    CHECK(sm_loop_start_thread(L) == SM_OK);
    pthread_t t[4];
    for (int i = 0; i < 4; i++)
        pthread_create(&t[i], NULL, poster, NULL);
    for (int i = 0; i < 4; i++)
        pthread_join(t[i], NULL);
    sm_loop_join(L);
    CHECK_EQ(posted, 4000);
    sm_loop_free(L);
}

static void test_hmap(void)
{
    sm_hmap_t m;
    sm_hmap_init(&m);
    char key[32];
    for (int i = 0; i < 1000; i++) {
        snprintf(key, sizeof key, "topic-%d", i);
        CHECK(sm_hmap_put(&m, key, strlen(key), (void *)(intptr_t)(i + 1)) == NULL);
    }
    CHECK_EQ(m.count, 1000);
    CHECK_EQ((intptr_t)sm_hmap_get(&m, "topic-500", 9), 501);
    CHECK_EQ((intptr_t)sm_hmap_del(&m, "topic-500", 9), 501);
    CHECK(sm_hmap_get(&m, "topic-500", 9) == NULL);
    int n = 0;
    for (sm_hmap_entry_t *e = NULL; (e = sm_hmap_next(&m, e));)
        n++;
    CHECK_EQ(n, 999);
    sm_hmap_free(&m);
}

int main(void)
{
    RUN(test_timers);
    RUN(test_post);
    RUN(test_hmap);
    TEST_MAIN_END();
}
