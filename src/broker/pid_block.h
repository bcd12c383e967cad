/*
 * pid_block.h - this broker's block of producer ids (KIP-730).
 *
 * InitProducerId needs a fresh producer id; committing one metadata record
 * per producer would make every producer start cost a controller round trip
 * and an fsync. Instead the broker takes ids from a block of
 * SM_PID_BLOCK_SIZE that the active controller hands out
 * (AllocateProducerIds, a ProducerIdsRecord in the metadata log), and asks
 * for the next block when this one runs out. On the active controller
 * itself the block is allocated directly on the controller thread.
 *
 * Threads: any; callbacks run on whatever thread finished the block fetch
 * (or inline when an id is at hand).
 */
#ifndef SM_PID_BLOCK_H
#define SM_PID_BLOCK_H

#include "sm_common.h"

#define SM_PID_BLOCK_SIZE 1000

typedef struct sm_server sm_server_t;
typedef struct sm_pid_block sm_pid_block_t;

/* kerr 0 with a new producer id, or a Kafka error (COORDINATOR_NOT_AVAILABLE
 * when no block could be had). */
typedef void (*sm_pid_fn)(void *arg, int16_t kerr, int64_t pid);

sm_pid_block_t *sm_pid_block_new(sm_server_t *srv);
/* Answers waiters still queued with COORDINATOR_NOT_AVAILABLE. */
void sm_pid_block_free(sm_pid_block_t *b);
/* A fresh producer id for fn (inline if one is at hand). */
void sm_pid_get(sm_pid_block_t *b, sm_pid_fn fn, void *arg);
/* Synchronous variant for threads that may block (not loop threads):
 * waits up to timeout_ms. */
int16_t sm_pid_get_sync(sm_pid_block_t *b, int64_t *pid, int32_t timeout_ms);

#endif
