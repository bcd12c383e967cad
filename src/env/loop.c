/*
 * loop.c - epoll event loop; see loop.h.
 *
 * Timers are a binary min-heap ordered by (deadline, id); cancelled timers
 * are tombstoned and dropped when they reach the top. Posted tasks go into a
 * mutex-protected singly linked queue drained after each epoll_wait.
 */
#define _GNU_SOURCE
#include "loop.h"
#include "log.h"

#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <unistd.h>

typedef struct sm_watch {
    int fd;
    sm_io_fn fn;
    void *ctx;
} sm_watch_t;

typedef struct sm_task {
    struct sm_task *next;
    sm_task_fn fn;
    void *arg;
} sm_task_t;

typedef struct sm_timer {
    int64_t when_ms;
    uint64_t id;
    sm_task_fn fn;
    void *arg;
} sm_timer_t;

struct sm_loop {
    int id;
    int epfd;
    int evfd;
    int stop; /* atomic */
    pthread_t thread;
    bool has_thread;
    /* fd -> watch, indexed by fd */
    sm_watch_t **watches;
    int nwatches;
    /* posted tasks */
    pthread_mutex_t mu;
    sm_task_t *head, *tail;
    int wake_pending; /* atomic: eventfd already written */
    /* timers */
    sm_timer_t *heap;
    int nheap, capheap;
    uint64_t next_timer_id;
    uint64_t *cancelled;
    int ncancelled, capcancelled;
    sm_task_fn before_sleep;
    void *before_sleep_arg;
};

static __thread sm_loop_t *tls_loop;

sm_loop_t *sm_loop_current(void) { return tls_loop; }
int sm_loop_id(const sm_loop_t *l) { return l->id; }

sm_loop_t *sm_loop_new(int id)
{
    sm_loop_t *l = sm_xcalloc(1, sizeof *l);
    l->id = id;
    l->epfd = epoll_create1(EPOLL_CLOEXEC);
    l->evfd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (l->epfd < 0 || l->evfd < 0) {
        SM_ERROR("loop", "loop %d: epoll/eventfd: %s", id, strerror(errno));
        abort();
    }
    pthread_mutex_init(&l->mu, NULL);
    struct epoll_event ev = {.events = EPOLLIN, .data.ptr = NULL};
    if (epoll_ctl(l->epfd, EPOLL_CTL_ADD, l->evfd, &ev) != 0)
        abort();
    l->next_timer_id = 1;
    return l;
}

void sm_loop_free(sm_loop_t *l)
{
    if (!l)
        return;
    close(l->epfd);
    close(l->evfd);
    for (int i = 0; i < l->nwatches; i++)
        free(l->watches[i]);
    free(l->watches);
    sm_task_t *t = l->head;
    while (t) {
        sm_task_t *n = t->next;
        free(t);
        t = n;
    }
    free(l->heap);
    free(l->cancelled);
    pthread_mutex_destroy(&l->mu);
    free(l);
}

static sm_err_t ctl(sm_loop_t *l, int op, int fd, uint32_t events, sm_io_fn fn, void *ctx)
{
    if (fd >= l->nwatches) {
        int n = l->nwatches ? l->nwatches : 64;
        while (n <= fd)
            n *= 2;
        l->watches = sm_xrealloc(l->watches, sizeof(*l->watches) * (size_t)n);
        memset(l->watches + l->nwatches, 0, sizeof(*l->watches) * (size_t)(n - l->nwatches));
        l->nwatches = n;
    }
    sm_watch_t *w = l->watches[fd];
    if (!w) {
        w = sm_xcalloc(1, sizeof *w);
        l->watches[fd] = w;
    }
    w->fd = fd;
    w->fn = fn;
    w->ctx = ctx;
    struct epoll_event ev = {.events = events, .data.ptr = w};
    if (epoll_ctl(l->epfd, op, fd, &ev) != 0) {
        SM_ERROR("loop", "epoll_ctl fd %d: %s", fd, strerror(errno));
        return SM_ERR_IO;
    }
    return SM_OK;
}

sm_err_t sm_loop_watch(sm_loop_t *l, int fd, uint32_t events, sm_io_fn fn, void *ctx)
{
    return ctl(l, EPOLL_CTL_ADD, fd, events, fn, ctx);
}

sm_err_t sm_loop_rewatch(sm_loop_t *l, int fd, uint32_t events, sm_io_fn fn, void *ctx)
{
    return ctl(l, EPOLL_CTL_MOD, fd, events, fn, ctx);
}

void sm_loop_unwatch(sm_loop_t *l, int fd)
{
    epoll_ctl(l->epfd, EPOLL_CTL_DEL, fd, NULL);
    if (fd < l->nwatches && l->watches[fd]) {
        /* Keep the struct (events already fetched may point at it) but disarm. */
        l->watches[fd]->fn = NULL;
        l->watches[fd]->ctx = NULL;
    }
}

void sm_loop_post(sm_loop_t *l, sm_task_fn fn, void *arg)
{
    sm_task_t *t = sm_xmalloc(sizeof *t);
    t->next = NULL;
    t->fn = fn;
    t->arg = arg;
    pthread_mutex_lock(&l->mu);
    if (l->tail)
        l->tail->next = t;
    else
        __atomic_store_n(&l->head, t, __ATOMIC_RELEASE); /* peeked unlocked by the loop */
    l->tail = t;
    pthread_mutex_unlock(&l->mu);
    if (tls_loop != l && !__atomic_exchange_n(&l->wake_pending, 1, __ATOMIC_ACQ_REL)) {
        uint64_t one = 1;
        ssize_t w = write(l->evfd, &one, sizeof one);
        (void)w;
    }
}

static void run_posted(sm_loop_t *l)
{
    __atomic_store_n(&l->wake_pending, 0, __ATOMIC_RELEASE);
    for (;;) {
        pthread_mutex_lock(&l->mu);
        sm_task_t *t = l->head;
        __atomic_store_n(&l->head, NULL, __ATOMIC_RELEASE);
        l->tail = NULL;
        pthread_mutex_unlock(&l->mu);
        if (!t)
            return;
        while (t) {
            sm_task_t *n = t->next;
            t->fn(t->arg);
            free(t);
            t = n;
        }
    }
}

/* ---- timers: binary heap */

static bool timer_less(const sm_timer_t *a, const sm_timer_t *b)
{
    return a->when_ms < b->when_ms || (a->when_ms == b->when_ms && a->id < b->id);
}

static void heap_swap(sm_timer_t *h, int i, int j)
{
    sm_timer_t t = h[i];
    h[i] = h[j];
    h[j] = t;
}

uint64_t sm_loop_timer(sm_loop_t *l, int64_t when_ms, sm_task_fn fn, void *arg)
{
    if (l->nheap == l->capheap) {
        l->capheap = l->capheap ? l->capheap * 2 : 16;
        l->heap = sm_xrealloc(l->heap, sizeof(sm_timer_t) * (size_t)l->capheap);
    }
    uint64_t id = l->next_timer_id++;
    int i = l->nheap++;
    l->heap[i] = (sm_timer_t){when_ms, id, fn, arg};
    while (i > 0 && timer_less(&l->heap[i], &l->heap[(i - 1) / 2])) {
        heap_swap(l->heap, i, (i - 1) / 2);
        i = (i - 1) / 2;
    }
    return id;
}

void sm_loop_timer_cancel(sm_loop_t *l, uint64_t id)
{
    if (!id)
        return;
    for (int i = 0; i < l->nheap; i++) {
        if (l->heap[i].id == id) {
            l->heap[i].fn = NULL; /* tombstone */
            return;
        }
    }
}

static void heap_pop(sm_loop_t *l)
{
    l->heap[0] = l->heap[--l->nheap];
    int i = 0;
    for (;;) {
        int a = 2 * i + 1, b = a + 1, m = i;
        if (a < l->nheap && timer_less(&l->heap[a], &l->heap[m]))
            m = a;
        if (b < l->nheap && timer_less(&l->heap[b], &l->heap[m]))
            m = b;
        if (m == i)
            break;
        heap_swap(l->heap, i, m);
        i = m;
    }
}

static int run_timers(sm_loop_t *l)
{
    int64_t now = sm_now_mono_ms();
    while (l->nheap > 0) {
        sm_timer_t t = l->heap[0];
        if (t.fn && t.when_ms > now)
            return (int)SM_MIN(t.when_ms - now, 1000);
        heap_pop(l);
        if (t.fn)
            t.fn(t.arg);
    }
    return 1000;
}

void sm_loop_set_before_sleep(sm_loop_t *l, sm_task_fn fn, void *arg)
{
    l->before_sleep = fn;
    l->before_sleep_arg = arg;
}

void sm_loop_run(sm_loop_t *l)
{
    tls_loop = l;
    struct epoll_event evs[128];
    while (!__atomic_load_n(&l->stop, __ATOMIC_ACQUIRE)) {
        int timeout = run_timers(l);
        if (__atomic_load_n(&l->head, __ATOMIC_ACQUIRE))
            timeout = 0;
        if (l->before_sleep)
            l->before_sleep(l->before_sleep_arg);
        int n = epoll_wait(l->epfd, evs, 128, timeout);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            SM_ERROR("loop", "loop %d: epoll_wait: %s", l->id, strerror(errno));
            break;
        }
        for (int i = 0; i < n; i++) {
            sm_watch_t *w = evs[i].data.ptr;
            if (!w) {
                uint64_t v;
                ssize_t r = read(l->evfd, &v, sizeof v);
                (void)r;
                continue;
            }
            if (w->fn)
                w->fn(w->ctx, evs[i].events);
        }
        run_posted(l);
    }
    run_posted(l);
    tls_loop = NULL;
}

static void *loop_main(void *arg)
{
    sm_loop_run(arg);
    return NULL;
}

sm_err_t sm_loop_start_thread(sm_loop_t *l)
{
    if (pthread_create(&l->thread, NULL, loop_main, l) != 0)
        return SM_ERR_IO;
    l->has_thread = true;
    return SM_OK;
}

void sm_loop_join(sm_loop_t *l)
{
    if (l->has_thread) {
        pthread_join(l->thread, NULL);
        l->has_thread = false;
    }
}

static void noop(void *arg) { (void)arg; }

void sm_loop_stop(sm_loop_t *l)
{
    __atomic_store_n(&l->stop, 1, __ATOMIC_RELEASE);
    sm_loop_post(l, noop, NULL);
}
