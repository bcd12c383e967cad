/*
 * txn_markers.h - writes a transaction's COMMIT/ABORT markers to its
 * partitions for the transaction coordinator (txn_markers.c).
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
/* After the loops stopped and sm_txn_markers_stop. */
void sm_txn_markers_free(sm_txn_markers_writer_t *w);

#endif
