/*
 * producer_state.h - what a partition knows of the producers writing to it:
 * the idempotence and transaction bookkeeping Kafka keeps in its
 * ProducerStateManager.
 *
 * Per producer id: its epoch, the metadata of its last 5 batches (first and
 * last sequence, first and last offset: a retried batch is found here and
 * answered with its original offsets instead of being stored twice), the
 * timestamp of its last write (expiry), the epoch of the transaction
 * coordinator that wrote its last marker, and the first offset of its open
 * transaction (-1 if none).
 *
 * Per partition: the open transactions ordered by first offset, and the
 * completed ones whose marker is not yet below the high watermark; the
 * smallest first offset over both is the first unstable offset, and the
 * last stable offset (LSO) is min(it, high watermark). read_committed
 * consumers read below the LSO.
 *
 * Transaction state of a producer on one partition:
 *
 *                 transactional batch                COMMIT/ABORT marker
 *     (no txn) ───────────────────────────► OPEN ─────────────────────────► (no txn)
 *        ▲        first offset recorded      │        aborted: an entry for the
 *        └───── non-transactional batch ◄────┘ refused (INVALID_TXN_STATE)
 *                                                     aborted-transaction index
 *
 * The leader checks every batch (sm_pstate_check) before appending it and
 * records it after (sm_pstate_apply); followers and recovery only apply.
 *
 * Snapshots: Kafka's producer snapshot file format, "<20-digit offset>.snapshot"
 * in the partition directory: int16 version (1), uint32 CRC-32C of what
 * follows, int32 count, then per producer: int64 producerId, int16 epoch,
 * int32 lastSequence, int64 lastOffset, int32 offsetDelta (lastSequence -
 * firstSequence of the last batch), int64 timestamp, int32 coordinatorEpoch,
 * int64 currentTxnFirstOffset. A snapshot at offset N holds the state after
 * every batch below N; the state at any later offset is the snapshot plus a
 * replay of the log from N.
 *
 * Not thread-safe: the partition serialises access (its append mutex).
 */
#ifndef SM_PRODUCER_STATE_H
#define SM_PRODUCER_STATE_H

#include "batch.h"
#include "hmap.h"
#include "sm_common.h"
#include "storage/log.h"

#define SM_PSTATE_BATCHES 5 /* retried batches recognised per producer (Kafka's 5) */

/* Kafka error codes the checks answer (the partition layer sits below the
 * broker's error table). */
enum {
    SM_PS_OUT_OF_ORDER_SEQUENCE = 45,
    SM_PS_INVALID_PRODUCER_EPOCH = 47,
    SM_PS_INVALID_TXN_STATE = 48,
    SM_PS_TXN_COORDINATOR_FENCED = 52,
    SM_PS_UNKNOWN_PRODUCER_ID = 59,
    SM_PS_INVALID_RECORD = 87,
};

typedef struct sm_pbatch {
    int32_t first_seq, last_seq;
    int64_t first_offset, last_offset;
} sm_pbatch_t;

typedef struct sm_producer {
    int64_t pid;
    int16_t epoch;
    int32_t coordinator_epoch; /* -1 none */
    int64_t txn_first_offset;  /* first offset of the open transaction, -1 none */
    int64_t last_timestamp;    /* max timestamp of its last batch (expiry) */
    int64_t last_offset;       /* last offset it wrote (data or marker), -1 none */
    int nbatches;              /* oldest first */
    sm_pbatch_t batches[SM_PSTATE_BATCHES];
} sm_producer_t;

/* A transaction's span on this partition. */
typedef struct sm_ptxn {
    int64_t pid;
    int64_t first_offset;
    int64_t marker_offset; /* completed ones: where the marker is */
} sm_ptxn_t;

/* Aborted transactions are sm_log_aborted_t (storage/log.h). */

typedef struct sm_pstate {
    sm_hmap_t producers;  /* 8-byte pid -> sm_producer_t* (owned) */
    sm_ptxn_t *open;      /* ordered by first offset */
    int nopen, open_cap;
    sm_ptxn_t *unrepl;    /* completed, marker at or above the high watermark */
    int nunrepl, unrepl_cap;
    int64_t end_offset;   /* the state covers every batch below this */
} sm_pstate_t;

void sm_pstate_init(sm_pstate_t *ps);
void sm_pstate_free(sm_pstate_t *ps);
/* Forget everything; the state now stands at offset (empty log there). */
void sm_pstate_reset(sm_pstate_t *ps, int64_t offset);

sm_producer_t *sm_pstate_get(const sm_pstate_t *ps, int64_t pid);
int sm_pstate_count(const sm_pstate_t *ps);

/* The leader's check of one batch from a producer (b parsed; pid >= 0) before
 * it is appended. Returns 0 to append it; a Kafka error code to refuse it;
 * or 0 with *dup set when the batch is one of the producer's last 5 (a
 * retry): then *dup_first / *dup_last are its original offsets and nothing
 * is appended. */
int16_t sm_pstate_check(const sm_pstate_t *ps, const sm_batch_info_t *b, bool *dup,
                        int64_t *dup_first, int64_t *dup_last);

/* The marker type of a control batch (0 ABORT, 1 COMMIT; -1 when it is not a
 * transaction marker) and the coordinator epoch from its value. The batch
 * bytes are whole and uncompressed (control batches are never compressed). */
int sm_pstate_marker_type(const uint8_t *batch, size_t len, int32_t *coordinator_epoch);

/* Record a batch written at b->base_offset (leader, follower and replay
 * alike). batch/len are its bytes, needed for control batches. When an
 * abort marker completes a transaction, *aborted is filled and true returned
 * (the caller adds it to the aborted-transaction index). */
bool sm_pstate_apply(sm_pstate_t *ps, const sm_batch_info_t *b, const uint8_t *batch, size_t len,
                     sm_log_aborted_t *aborted);

/* The first offset of an open or not-yet-replicated transaction, or -1. */
int64_t sm_pstate_first_unstable(const sm_pstate_t *ps);
/* The high watermark moved: completed transactions whose marker is below it
 * stop holding the LSO back. */
void sm_pstate_hw_moved(sm_pstate_t *ps, int64_t hw);

/* Drop producers whose last write is older than now - expiration_ms and
 * that have no open transaction (producer.id.expiration.ms). Returns how
 * many went. */
int sm_pstate_expire(sm_pstate_t *ps, int64_t now_ms, int64_t expiration_ms);
/* Drop producers whose last offset is below log_start (their data is gone;
 * retention or DeleteRecords), except those with an open transaction. */
void sm_pstate_log_start_moved(sm_pstate_t *ps, int64_t log_start);

/* ---- snapshot files */

/* Write dir/<end_offset>.snapshot (temporary file, fsync, rename). */
SM_MUST_CHECK sm_err_t sm_pstate_snapshot_write(const sm_pstate_t *ps, const char *dir);
/* Load the newest snapshot at or below max_offset, replacing the state
 * (end_offset = its offset). Snapshots that fail to parse are deleted and the
 * next older one tried. SM_ERR_NOT_FOUND when none is usable (the state is
 * then reset to 0 and the caller replays from the log start). */
SM_MUST_CHECK sm_err_t sm_pstate_snapshot_load(sm_pstate_t *ps, const char *dir,
                                               int64_t max_offset);
/* Delete snapshots above max_offset (a truncated log) and all but the newest
 * `keep` at or below it. */
void sm_pstate_snapshots_prune(const char *dir, int64_t max_offset, int keep);

#endif
