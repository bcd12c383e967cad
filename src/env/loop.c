/*
 * loop.c - epoll event loop; see loop.h.
 *
 * Timers: a binary min-heap ordered by (deadline, sequence) over slots in a
 * slot array. A timer id is (generation << 32 | slot + 1), and each slot
 * remembers its heap position, so cancel removes the entry in O(log n)
 * instead of scanning or leaving tombstones (a loop with thousands of parked
 * fetches cancels one timer per answered fetch). A slot's generation grows
 * each time it is freed, so stale ids never match.
 *
 * Posted tasks: two FIFO queues of sm_loop_task_t. Tasks posted on the
 * loop's own thread go to an unlocked local queue (no mutex, no eventfd);
 * other threads use a mutex-protected remote queue and wake the loop with
 * one eventfd write per wake-up (wake_pending). Queues are drained after
 * each batch of I/O events, one generation at a time: a task posting itself
 * again runs in the next iteration, so it cannot starve I/O.
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

typedef struct sm_timer {
    int64_t when_ms;
    uint64_t seq;   /* creation order: ties run first-created first */
    sm_task_fn fn;
    void *arg;
    int heap_pos;   /* index in heap, -1 when the slot is free */
    uint32_t gen;   /* bumped when the slot is freed */
    int next_free;  /* free-list link, -1 = end */
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
    /* posted tasks: local (loop thread, unlocked) and remote (mutex) */
    sm_loop_task_t *lhead, *ltail;
    pthread_mutex_t mu;
    sm_loop_task_t *rhead, *rtail; /* rhead is peeked unlocked (atomic) */
    int wake_pending;              /* atomic: eventfd already written */
    /* timers */
    sm_timer_t *slots;
    int nslots, capslots, free_slot;
    int *heap; /* slot indices */
    int nheap, capheap;
    uint64_t next_seq;
    sm_task_fn before_sleep;
    void *before_sleep_arg;
    void *local;
    void (*local_free)(void *);
};

static __thread sm_loop_t *tls_loop;

static bool run_posted(sm_loop_t *l);

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
    l->free_slot = -1;
    return l;
}

static void free_tasks(sm_loop_task_t *t)
{
    while (t) {
        sm_loop_task_t *n = t->next;
        if (t->owned)
            free(t);
        t = n;
    }
}

void sm_loop_free(sm_loop_t *l)
{
    if (!l)
        return;
    /* Teardown runs on this thread as if it were the loop's (the loop has
     * stopped): tasks still queued run, then the subsystem's state is freed
     * (it may answer parked requests and close connections, which queues
     * more tasks), then those run. */
    sm_loop_t *prev = tls_loop;
    tls_loop = l;
    for (int i = 0; i < 64 && run_posted(l); i++)
        ;
    if (l->local_free)
        l->local_free(l->local);
    for (int i = 0; i < 64 && run_posted(l); i++)
        ;
    tls_loop = prev;
    close(l->epfd);
    close(l->evfd);
    for (int i = 0; i < l->nwatches; i++)
        free(l->watches[i]);
    free(l->watches);
    free_tasks(l->lhead);
    free_tasks(l->rhead);
    free(l->slots);
    free(l->heap);
    pthread_mutex_destroy(&l->mu);
    free(l);
}

void *sm_loop_local(const sm_loop_t *l) { return l->local; }

void sm_loop_set_local(sm_loop_t *l, void *p, void (*free_fn)(void *p))
{
    l->local = p;
    l->local_free = free_fn;
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

/* ---- posted tasks */

void sm_loop_task_init(sm_loop_task_t *t, sm_task_fn fn, void *arg)
{
    memset(t, 0, sizeof *t);
    t->fn = fn;
    t->arg = arg;
}

static void enqueue(sm_loop_t *l, sm_loop_task_t *t)
{
    t->next = NULL;
    if (tls_loop == l) {
        /* Own thread: runs after this batch of events; no lock, no wake-up. */
        if (l->ltail)
            l->ltail->next = t;
        else
            l->lhead = t;
        l->ltail = t;
        return;
    }
    pthread_mutex_lock(&l->mu);
    if (l->rtail)
        l->rtail->next = t;
    else
        __atomic_store_n(&l->rhead, t, __ATOMIC_RELEASE);
    l->rtail = t;
    pthread_mutex_unlock(&l->mu);
    if (!__atomic_exchange_n(&l->wake_pending, 1, __ATOMIC_ACQ_REL)) {
        uint64_t one = 1;
        ssize_t w = write(l->evfd, &one, sizeof one);
        (void)w;
    }
}

void sm_loop_post(sm_loop_t *l, sm_task_fn fn, void *arg)
{
    sm_loop_task_t *t = sm_xmalloc(sizeof *t);
    sm_loop_task_init(t, fn, arg);
    t->owned = true;
    t->queued = 1;
    enqueue(l, t);
}

bool sm_loop_post_task(sm_loop_t *l, sm_loop_task_t *t)
{
    if (__atomic_exchange_n(&t->queued, 1, __ATOMIC_ACQ_REL))
        return false;
    enqueue(l, t);
    return true;
}

static bool has_posted(sm_loop_t *l)
{
    return l->lhead || __atomic_load_n(&l->rhead, __ATOMIC_ACQUIRE);
}

static void run_list(sm_loop_task_t *t)
{
    while (t) {
        sm_loop_task_t *n = t->next;
        if (t->owned) {
            t->fn(t->arg);
            free(t);
        } else {
            sm_task_fn fn = t->fn;
            void *arg = t->arg;
            /* Clear first: fn may post the task again (or free its owner). */
            __atomic_store_n(&t->queued, 0, __ATOMIC_RELEASE);
            fn(arg);
        }
        t = n;
    }
}

/* Run one generation of posted tasks; returns false if there were none. */
static bool run_posted(sm_loop_t *l)
{
    __atomic_store_n(&l->wake_pending, 0, __ATOMIC_RELEASE);
    sm_loop_task_t *local = l->lhead;
    l->lhead = l->ltail = NULL;
    sm_loop_task_t *remote = NULL;
    if (__atomic_load_n(&l->rhead, __ATOMIC_ACQUIRE)) {
        pthread_mutex_lock(&l->mu);
        remote = l->rhead;
        __atomic_store_n(&l->rhead, NULL, __ATOMIC_RELEASE);
        l->rtail = NULL;
        pthread_mutex_unlock(&l->mu);
    }
    if (!local && !remote)
        return false;
    run_list(local);
    run_list(remote);
    return true;
}

/* ---- timers: binary heap of slot indices */

static bool timer_less(const sm_loop_t *l, int a, int b)
{
    const sm_timer_t *x = &l->slots[l->heap[a]], *y = &l->slots[l->heap[b]];
    return x->when_ms < y->when_ms || (x->when_ms == y->when_ms && x->seq < y->seq);
}

static void heap_set(sm_loop_t *l, int pos, int slot)
{
    l->heap[pos] = slot;
    l->slots[slot].heap_pos = pos;
}

static void heap_swap(sm_loop_t *l, int i, int j)
{
    int a = l->heap[i], b = l->heap[j];
    heap_set(l, i, b);
    heap_set(l, j, a);
}

static void sift_up(sm_loop_t *l, int i)
{
    while (i > 0 && timer_less(l, i, (i - 1) / 2)) {
        heap_swap(l, i, (i - 1) / 2);
        i = (i - 1) / 2;
    }
}

static void sift_down(sm_loop_t *l, int i)
{
    for (;;) {
        int a = 2 * i + 1, b = a + 1, m = i;
        if (a < l->nheap && timer_less(l, a, m))
            m = a;
        if (b < l->nheap && timer_less(l, b, m))
            m = b;
        if (m == i)
            return;
        heap_swap(l, i, m);
        i = m;
    }
}

/* Remove the heap entry at pos and free its slot. */
static void heap_remove(sm_loop_t *l, int pos)
{
    int slot = l->heap[pos];
    int last = --l->nheap;
    if (pos != last) {
        heap_set(l, pos, l->heap[last]);
        sift_down(l, pos);
        sift_up(l, pos);
    }
    sm_timer_t *t = &l->slots[slot];
    t->heap_pos = -1;
    t->fn = NULL;
    t->arg = NULL;
    t->gen++;
    t->next_free = l->free_slot;
    l->free_slot = slot;
}

uint64_t sm_loop_timer(sm_loop_t *l, int64_t when_ms, sm_task_fn fn, void *arg)
{
    int slot = l->free_slot;
    if (slot >= 0) {
        l->free_slot = l->slots[slot].next_free;
    } else {
        if (l->nslots == l->capslots) {
            l->capslots = l->capslots ? l->capslots * 2 : 16;
            l->slots = sm_xrealloc(l->slots, sizeof(sm_timer_t) * (size_t)l->capslots);
            l->heap = sm_xrealloc(l->heap, sizeof(int) * (size_t)l->capslots);
            l->capheap = l->capslots;
        }
        slot = l->nslots++;
        l->slots[slot].gen = 1;
    }
    sm_timer_t *t = &l->slots[slot];
    t->when_ms = when_ms;
    t->seq = l->next_seq++;
    t->fn = fn;
    t->arg = arg;
    t->next_free = -1;
    int pos = l->nheap++;
    heap_set(l, pos, slot);
    sift_up(l, pos);
    return ((uint64_t)t->gen << 32) | (uint64_t)(slot + 1);
}

void sm_loop_timer_cancel(sm_loop_t *l, uint64_t id)
{
    if (!id)
        return;
    int64_t slot = (int64_t)(id & 0xffffffffu) - 1;
    uint32_t gen = (uint32_t)(id >> 32);
    if (slot < 0 || slot >= l->nslots)
        return;
    sm_timer_t *t = &l->slots[slot];
    if (t->gen != gen || t->heap_pos < 0)
        return;
    heap_remove(l, t->heap_pos);
}

int sm_loop_timer_count(const sm_loop_t *l) { return l->nheap; }

/* Run due timers; returns the epoll timeout until the next one. */
static int run_timers(sm_loop_t *l)
{
    int64_t now = sm_now_mono_ms();
    while (l->nheap > 0) {
        sm_timer_t *t = &l->slots[l->heap[0]];
        if (t->when_ms > now)
            return (int)SM_MIN(t->when_ms - now, 1000);
        sm_task_fn fn = t->fn;
        void *arg = t->arg;
        heap_remove(l, 0);
        fn(arg);
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
        if (l->before_sleep)
            l->before_sleep(l->before_sleep_arg);
        if (has_posted(l))
            timeout = 0;
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
    /* Drain what was posted before the stop (bounded: tasks that keep
     * re-posting themselves are not run forever). */
    for (int i = 0; i < 64 && run_posted(l); i++)
        ;
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

void sm_loop_resume(sm_loop_t *l)
{
    __atomic_store_n(&l->stop, 0, __ATOMIC_RELEASE);
}

static void noop(void *arg) { (void)arg; }

void sm_loop_stop(sm_loop_t *l)
{
    __atomic_store_n(&l->stop, 1, __ATOMIC_RELEASE);
    sm_loop_post(l, noop, NULL);
}
