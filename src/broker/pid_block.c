/*
 * pid_block.c - producer id blocks (see pid_block.h).
 */
#include "pid_block.h"
#include "ctl_channel.h"
#include "kerr.h"
#include "log.h"
#include "meta.h"
#include "server.h"
#include "sm_proto_gen.h"

#include <pthread.h>
#include <stdlib.h>
#include <time.h>

#define TAG "pids"
#define ALLOCATE_TIMEOUT_MS 10000

typedef struct pid_waiter {
    struct pid_waiter *next;
    sm_pid_fn fn;
    void *arg;
} pid_waiter_t;

struct sm_pid_block {
    sm_server_t *srv;
    pthread_mutex_t mu;
    int64_t next, end; /* ids [next, end) are ours */
    pid_waiter_t *waiters, **tail;
    bool fetching;
};

sm_pid_block_t *sm_pid_block_new(sm_server_t *srv)
{
    sm_pid_block_t *b = sm_xcalloc(1, sizeof *b);
    b->srv = srv;
    pthread_mutex_init(&b->mu, NULL);
    b->tail = &b->waiters;
    return b;
}

static pid_waiter_t *take_waiters(sm_pid_block_t *b)
{
    pid_waiter_t *w = b->waiters;
    b->waiters = NULL;
    b->tail = &b->waiters;
    return w;
}

void sm_pid_block_free(sm_pid_block_t *b)
{
    if (!b)
        return;
    pthread_mutex_lock(&b->mu);
    pid_waiter_t *w = take_waiters(b);
    pthread_mutex_unlock(&b->mu);
    while (w) {
        pid_waiter_t *n = w->next;
        w->fn(w->arg, KERR_COORDINATOR_NOT_AVAILABLE, -1);
        free(w);
        w = n;
    }
    pthread_mutex_destroy(&b->mu);
    free(b);
}

static void fetch_block(sm_pid_block_t *b);

/* A block arrived (first >= 0) or could not be had: serve the waiters. */
static void block_done(sm_pid_block_t *b, int16_t kerr, int64_t first, int32_t len)
{
    pthread_mutex_lock(&b->mu);
    b->fetching = false;
    if (kerr == 0 && first >= 0 && len > 0) {
        b->next = first;
        b->end = first + len;
        SM_INFO(TAG, "producer ids %lld..%lld allocated to this broker", (long long)first,
                (long long)(first + len - 1));
    }
    pid_waiter_t *w = take_waiters(b);
    pid_waiter_t *later = NULL, **ltail = &later;
    /* hand out ids in arrival order; those the block cannot cover wait for
     * the next one */
    pid_waiter_t *serve = NULL, **stail = &serve;
    while (w) {
        pid_waiter_t *n = w->next;
        w->next = NULL;
        if (kerr != 0 || b->next < b->end) {
            *stail = w;
            stail = &w->next;
        } else {
            *ltail = w;
            ltail = &w->next;
        }
        w = n;
    }
    if (later) {
        *b->tail = later;
        b->tail = ltail;
    }
    bool refetch = later && !b->fetching;
    if (refetch)
        b->fetching = true;
    /* ids for the served ones, under the lock */
    int64_t *ids = NULL;
    int n = 0;
    for (pid_waiter_t *s = serve; s; s = s->next)
        n++;
    if (n > 0 && kerr == 0) {
        ids = sm_xmalloc((size_t)n * sizeof *ids);
        for (int i = 0; i < n; i++)
            ids[i] = b->next++;
    }
    pthread_mutex_unlock(&b->mu);
    int i = 0;
    while (serve) {
        pid_waiter_t *nx = serve->next;
        if (kerr == 0)
            serve->fn(serve->arg, 0, ids[i++]);
        else
            serve->fn(serve->arg, kerr, -1);
        free(serve);
        serve = nx;
    }
    free(ids);
    if (refetch)
        fetch_block(b);
}

/* Controller thread, on the active controller itself. */
static void allocate_local(void *arg)
{
    sm_pid_block_t *b = arg;
    sm_meta_t *m = sm_server_meta(b->srv);
    int64_t first = -1;
    sm_err_t err = sm_meta_allocate_producer_ids(m, sm_server_node_id(b->srv), SM_PID_BLOCK_SIZE,
                                                 &first);
    if (err != SM_OK)
        SM_WARN(TAG, "could not allocate producer ids: %s", sm_err_str(err));
    block_done(b, err == SM_OK ? 0 : KERR_COORDINATOR_NOT_AVAILABLE, first, SM_PID_BLOCK_SIZE);
}

/* The active controller answered AllocateProducerIds. */
static void on_allocated(void *ctx, sm_err_t io, const uint8_t *body, size_t len)
{
    sm_pid_block_t *b = ctx;
    sm_allocate_producer_ids_response_t r;
    sm_allocate_producer_ids_response_init(&r);
    int16_t kerr = KERR_COORDINATOR_NOT_AVAILABLE;
    if (io == SM_OK) {
        sm_arena_t a;
        sm_arena_init(&a);
        sm_rd_t rd;
        sm_rd_init(&rd, body, len);
        if (sm_allocate_producer_ids_response_decode(&rd, &a, 0, &r) == SM_OK)
            kerr = r.error_code ? r.error_code : 0;
        else
            SM_WARN(TAG, "malformed AllocateProducerIds response");
        sm_arena_free(&a);
    }
    if (kerr)
        SM_WARN(TAG, "AllocateProducerIds failed: error %d", kerr);
    block_done(b, kerr ? KERR_COORDINATOR_NOT_AVAILABLE : 0, r.producer_id_start,
               r.producer_id_len);
}

static void fetch_block(sm_pid_block_t *b)
{
    sm_server_t *srv = b->srv;
    sm_meta_t *m = sm_server_meta(srv);
    sm_ctl_channel_t *ch = sm_server_ctl_channel(srv);
    if (!ch || sm_meta_is_active(m)) {
        sm_server_controller(srv, allocate_local, b);
        return;
    }
    sm_allocate_producer_ids_request_t q;
    sm_allocate_producer_ids_request_init(&q);
    q.broker_id = sm_server_node_id(srv);
    sm_meta_image_t *img = sm_meta_image_get(m);
    const sm_broker_meta_t *self = sm_meta_image_broker(img, q.broker_id);
    q.broker_epoch = self ? self->epoch : -1;
    sm_meta_image_put(img);
    sm_wbuf_t w;
    sm_wbuf_init(&w);
    sm_allocate_producer_ids_request_encode(&w, 0, &q);
    sm_ctl_channel_call(ch, SM_API_ALLOCATE_PRODUCER_IDS, 0, w.mem, w.len, ALLOCATE_TIMEOUT_MS,
                        on_allocated, b);
    sm_wbuf_free(&w);
}

void sm_pid_get(sm_pid_block_t *b, sm_pid_fn fn, void *arg)
{
    pthread_mutex_lock(&b->mu);
    if (b->next < b->end) {
        int64_t id = b->next++;
        pthread_mutex_unlock(&b->mu);
        fn(arg, 0, id);
        return;
    }
    pid_waiter_t *w = sm_xcalloc(1, sizeof *w);
    w->fn = fn;
    w->arg = arg;
    *b->tail = w;
    b->tail = &w->next;
    bool start = !b->fetching;
    b->fetching = true;
    pthread_mutex_unlock(&b->mu);
    if (start)
        fetch_block(b);
}

typedef struct sync_wait {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    bool done;
    int16_t kerr;
    int64_t pid;
    int refs;
} sync_wait_t;

static void sync_release(sync_wait_t *s)
{
    pthread_mutex_lock(&s->mu);
    bool last = --s->refs == 0;
    pthread_mutex_unlock(&s->mu);
    if (last) {
        pthread_mutex_destroy(&s->mu);
        pthread_cond_destroy(&s->cv);
        free(s);
    }
}

static void sync_done(void *arg, int16_t kerr, int64_t pid)
{
    sync_wait_t *s = arg;
    pthread_mutex_lock(&s->mu);
    s->done = true;
    s->kerr = kerr;
    s->pid = pid;
    pthread_cond_signal(&s->cv);
    pthread_mutex_unlock(&s->mu);
    sync_release(s);
}

int16_t sm_pid_get_sync(sm_pid_block_t *b, int64_t *pid, int32_t timeout_ms)
{
    sync_wait_t *s = sm_xcalloc(1, sizeof *s);
    pthread_mutex_init(&s->mu, NULL);
    pthread_cond_init(&s->cv, NULL);
    s->refs = 2;
    sm_pid_get(b, sync_done, s);
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    ts.tv_sec += timeout_ms / 1000;
    ts.tv_nsec += (long)(timeout_ms % 1000) * 1000000L;
    if (ts.tv_nsec >= 1000000000L) {
        ts.tv_sec++;
        ts.tv_nsec -= 1000000000L;
    }
    pthread_mutex_lock(&s->mu);
    while (!s->done)
        if (pthread_cond_timedwait(&s->cv, &s->mu, &ts) != 0)
            break;
    int16_t kerr = s->done ? s->kerr : KERR_COORDINATOR_NOT_AVAILABLE;
    *pid = s->done ? s->pid : -1;
    pthread_mutex_unlock(&s->mu);
    sync_release(s);
    return kerr;
}
