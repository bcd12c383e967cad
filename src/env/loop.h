/*
 * loop.h - one epoll event loop per thread, with cross-thread task posting
 * and one-shot timers.
 *
 * Every connection, timer and posted task belongs to exactly one loop and
 * runs on that loop's thread. Other threads talk to a loop only through
 * sm_loop_post(), which queues a task and wakes the loop through an eventfd.
 * This file (with net.c and the storage file seam) is where the OS is used.
 */
#ifndef SM_LOOP_H
#define SM_LOOP_H

#include "sm_common.h"

#include <stdint.h>

typedef struct sm_loop sm_loop_t;

/* I/O callback: events is an EPOLLIN/EPOLLOUT/EPOLLERR/EPOLLHUP mask. */
typedef void (*sm_io_fn)(void *ctx, uint32_t events);
typedef void (*sm_task_fn)(void *arg);

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

/* One-shot timer at monotonic time when_ms; returns an id for cancel.
 * Loop thread only. */
uint64_t sm_loop_timer(sm_loop_t *l, int64_t when_ms, sm_task_fn fn, void *arg);
void sm_loop_timer_cancel(sm_loop_t *l, uint64_t id);

/* Called after each batch of events, before sleeping (flush point).
 * Loop thread only. */
void sm_loop_set_before_sleep(sm_loop_t *l, sm_task_fn fn, void *arg);

/* Run until sm_loop_stop(). sm_loop_run_thread starts a thread for it. */
void sm_loop_run(sm_loop_t *l);
sm_err_t sm_loop_start_thread(sm_loop_t *l) SM_MUST_CHECK;
void sm_loop_join(sm_loop_t *l);
/* Ask the loop to return from sm_loop_run after the current iteration. Any thread. */
void sm_loop_stop(sm_loop_t *l);

#endif
