/*
 * txn_markers.h - writes a transaction's COMMIT/ABORT markers to its
 * partitions for the transaction coordinator, and asks coordinators to
 * verify transactional writes for partition leaders (txn_markers.c).
 */
#ifndef SM_TXN_MARKERS_H
#define SM_TXN_MARKERS_H

#include "txn_coord.h"

typedef struct sm_server sm_server_t;
typedef struct sm_txn_markers_writer sm_txn_markers_writer_t;

sm_txn_markers_writer_t *sm_txn_markers_new(sm_server_t *srv);
/* The host's write_markers (txn_coord.h): done(arg, errs) exactly once. */
void sm_txn_markers_write(sm_txn_markers_writer_t *w, const sm_txn_markers_t *m,
                          void (*done)(void *arg, const int16_t *errs), void *arg);
/* Shutdown: answer every outstanding write now (NOT_COORDINATOR) and refuse
 * new ones the same way; what is still in flight finishes unobserved. */
void sm_txn_markers_stop(sm_txn_markers_writer_t *w);
/* KIP-890 part 1: ask the coordinator of a transactional id whether the
 * partitions are in its producer's ongoing transaction (AddPartitionsToTxn
 * verify_only): the local coordinator directly, another broker's with an
 * AddPartitionsToTxn v4 request. Every parts[i].error comes back NONE (in
 * the transaction), TRANSACTION_ABORTABLE (not), or the coordinator's
 * error (NOT_COORDINATOR, COORDINATOR_NOT_AVAILABLE, INVALID_PRODUCER_EPOCH,
 * ...). The caller's strings and parts live until done(v), called exactly
 * once on any thread. */
typedef struct sm_txn_verify sm_txn_verify_t;
struct sm_txn_verify {
    const char *transactional_id;
    size_t id_len;
    int64_t producer_id;
    int16_t producer_epoch;
    sm_txn_add_part_t *parts;
    int32_t nparts;
    void (*done)(sm_txn_verify_t *v);
    void *arg;
    /* private */
    sm_txn_add_t op;
    sm_txn_markers_writer_t *w;
    int32_t coordinator;
};
void sm_txn_markers_verify(sm_txn_markers_writer_t *w, sm_txn_verify_t *v);
/* After the loops stopped and sm_txn_markers_stop. */
void sm_txn_markers_free(sm_txn_markers_writer_t *w);

#endif
