/*
 * loop.h - one epoll event loop per thread, with cross-thread task posting
 * and one-shot timers.
 *
 * Every connection, timer and posted task belongs to exactly one loop and
 * runs on that loop's thread. Other threads talk to a loop only through
 * sm_loop_post() / sm_loop_post_task(), which queue a task and wake the loop
 * through an eventfd (written at most once per wake-up). This file (with
 * net.c and the storage file seam) is where the OS is used.
 *
 * Order of one iteration: due timers, before_sleep hook, epoll_wait, I/O
 * callbacks, posted tasks. Tasks posted from the loop's own thread (a
 * handler finishing a request) therefore run after the current batch of
 * I/O events, which is what lets the connection layer coalesce several
 * responses into one write.
 */
#ifndef SM_LOOP_H
#define SM_LOOP_H

#include "sm_common.h"

#include <stdint.h>

typedef struct sm_loop sm_loop_t;

/* I/O callback: events is an EPOLLIN/EPOLLOUT/EPOLLERR/EPOLLHUP mask. */
typedef void (*sm_io_fn)(void *ctx, uint32_t events);
typedef void (*sm_task_fn)(void *arg);

/* A task an object embeds so it can be posted without an allocation, at
 * most once at a time: posting it while it is queued is a no-op (the
 * pending run covers both). Initialise with sm_loop_task_init(); the object
 * must stay alive while the task is queued (hold a reference for it). */
typedef struct sm_loop_task {
    struct sm_loop_task *next;
    sm_task_fn fn;
    void *arg;
    int queued;  /* atomic: 1 while in a queue */
    bool owned;  /* allocated by sm_loop_post, freed after it runs */
} sm_loop_task_t;

sm_loop_t *sm_loop_new(int id);
void sm_loop_free(sm_loop_t *l);
int sm_loop_id(const sm_loop_t *l);

/* The loop running on the calling thread, or NULL. */
sm_loop_t *sm_loop_current(void);

/* Register/modify/remove interest in fd. Loop thread only. */
sm_err_t sm_loop_watch(sm_loop_t *l, int fd, uint32_t events, sm_io_fn fn, void *ctx) SM_MUST_CHECK;
sm_err_t sm_loop_rewatch(sm_loop_t *l, int fd, uint32_t events, sm_io_fn fn, void *ctx) SM_MUST_CHECK;
void sm_loop_unwatch(sm_loop_t *l, int fd);

/* Run fn(arg) on l's thread soon. Any thread. Never fails (allocation aborts). */
void sm_loop_post(sm_loop_t *l, sm_task_fn fn, void *arg);

/* Intrusive posting (no allocation). Any thread. */
void sm_loop_task_init(sm_loop_task_t *t, sm_task_fn fn, void *arg);
/* Queue t on l unless it is already queued. Returns true if this call
 * queued it (and false if a run was already pending). The flag is cleared
 * just before fn runs, so a post from inside fn queues it again. */
bool sm_loop_post_task(sm_loop_t *l, sm_loop_task_t *t);

/* One-shot timer at monotonic time when_ms; returns a non-zero id for
 * cancel. Timers due at the same time run in creation order.
 * Loop thread only. */
uint64_t sm_loop_timer(sm_loop_t *l, int64_t when_ms, sm_task_fn fn, void *arg);
/* Cancel a pending timer in O(log n); ids of timers that already ran or
 * were cancelled are ignored (ids are never reused). Loop thread only. */
void sm_loop_timer_cancel(sm_loop_t *l, uint64_t id);
/* Pending timers (tests and diagnostics). Loop thread only. */
int sm_loop_timer_count(const sm_loop_t *l);

/* Called after each batch of events, before sleeping (flush point).
 * Loop thread only. */
void sm_loop_set_before_sleep(sm_loop_t *l, sm_task_fn fn, void *arg);

/* One pointer of per-loop state for a subsystem above the loop (the
 * connection layer keeps its read buffer and idle list there); free_fn
 * runs in sm_loop_free. Loop thread only (or before the thread starts). */
void *sm_loop_local(const sm_loop_t *l);
void sm_loop_set_local(sm_loop_t *l, void *p, void (*free_fn)(void *p));

/* Run until sm_loop_stop(). sm_loop_run_thread starts a thread for it. */
void sm_loop_run(sm_loop_t *l);
sm_err_t sm_loop_start_thread(sm_loop_t *l) SM_MUST_CHECK;
void sm_loop_join(sm_loop_t *l);
/* Ask the loop to return from sm_loop_run after the current iteration. Any thread. */
void sm_loop_stop(sm_loop_t *l);
/* Clear a stop so sm_loop_run can serve the loop again: for tests and
 * simulations that drive a loop in steps (run until a condition, look,
 * run again). Only on the thread that runs the loop, while it is not
 * running. */
void sm_loop_resume(sm_loop_t *l);

#endif
