/*
 * txn_records.h - what the transaction coordinator keeps for one
 * transactional id (sm_txn_meta_t), and its record in __transaction_state,
 * in Kafka's exact format so Kafka's tools can read the topic:
 *
 *   key   = int16 0 | TransactionLogKey v0 (TransactionalId)
 *   value = int16 v | TransactionLogValue v (ProducerId, ProducerEpoch,
 *           TransactionTimeoutMs, TransactionStatus, TransactionPartitions
 *           grouped by topic (null when Empty), LastUpdate and Start
 *           timestamps; v1 adds the tagged PreviousProducerId,
 *           NextProducerId and ClientTransactionVersion of KIP-890)
 *   value = null: the id expired and was removed (a tombstone)
 *
 * v0 is written unless a KIP-890 field differs from its default (client
 * transaction version 2, or a previous/next producer id), which only v1 can
 * carry. Both are read. Key versions other than 0 are skipped on load.
 *
 * The last producer epoch (KIP-360's retry check) is memory only, as in
 * Kafka: a loaded id has none.
 *
 * Pure functions; any thread.
 */
#ifndef SM_TXN_RECORDS_H
#define SM_TXN_RECORDS_H

#include "arena.h"
#include "coord_records.h"
#include "sm_common.h"

/* Kafka's TransactionState, with its on-disk codes. */
typedef enum sm_txn_state {
    SM_TXN_EMPTY = 0,
    SM_TXN_ONGOING = 1,
    SM_TXN_PREPARE_COMMIT = 2,
    SM_TXN_PREPARE_ABORT = 3,
    SM_TXN_COMPLETE_COMMIT = 4,
    SM_TXN_COMPLETE_ABORT = 5,
    SM_TXN_DEAD = 6,
    SM_TXN_PREPARE_EPOCH_FENCE = 7,
} sm_txn_state_t;

#define SM_TXN_NSTATES 8

/* Kafka's state names (DescribeTransactions, ListTransactions filters). */
const char *sm_txn_state_name(sm_txn_state_t s);
/* The state of a name, -1 if none. */
int sm_txn_state_parse(const char *name, size_t len);

/* One partition of a transaction. */
typedef struct sm_txn_tp {
    char *topic; /* owned by the sm_txn_meta_t holding it */
    int32_t partition;
} sm_txn_tp_t;

/* The durable state of one transactional id (the fields of its record)
 * plus the memory-only last epoch. tps is sorted (topic, partition), no
 * duplicates, owned. */
typedef struct sm_txn_meta {
    int64_t producer_id;
    int64_t prev_producer_id; /* KIP-890: the id before an epoch overflow, -1 */
    int64_t next_producer_id; /* KIP-890: the id the next completion moves to, -1 */
    int16_t producer_epoch;   /* -1: none yet */
    int16_t last_epoch;       /* memory only: epoch before the last bump, -1 */
    int32_t timeout_ms;
    sm_txn_state_t state;
    sm_txn_tp_t *tps;
    int32_t ntps;
    int64_t start_ms;  /* txn start (wall), -1 when none */
    int64_t update_ms; /* last update (wall) */
    int16_t client_version; /* 0/1: transactions v1; 2: KIP-890 v2 */
} sm_txn_meta_t;

/* Deep copy (dst's old content is not freed). */
void sm_txn_meta_copy(sm_txn_meta_t *dst, const sm_txn_meta_t *src);
void sm_txn_meta_free(sm_txn_meta_t *m);
/* Does m hold (topic, partition)? */
bool sm_txn_meta_has(const sm_txn_meta_t *m, const char *topic, int32_t partition);
/* Add (topic, partition) keeping the order; false if it was there. */
bool sm_txn_meta_add(sm_txn_meta_t *m, const char *topic, size_t topic_len, int32_t partition);
/* Drop every partition. */
void sm_txn_meta_clear_tps(sm_txn_meta_t *m);

/* The record of txn_id with m's state (m == NULL: tombstone), in a. */
void sm_txn_record_encode(sm_arena_t *a, const char *txn_id, size_t id_len, const sm_txn_meta_t *m,
                          sm_coord_kv_t *out);

/* Decode a record: *id points into key (or a); *tombstone for a null value;
 * else *out is filled (tps malloc'd: sm_txn_meta_free it), last_epoch -1.
 * SM_ERR_NOT_FOUND for a key version this coordinator does not keep (skip),
 * SM_ERR_PARSE / SM_ERR_UNSUPPORTED for bad bytes, an unknown value version
 * or state code. */
SM_MUST_CHECK sm_err_t sm_txn_record_decode(const uint8_t *key, int32_t key_len,
                                            const uint8_t *value, int32_t value_len,
                                            sm_arena_t *a, sm_str_t *id, bool *tombstone,
                                            sm_txn_meta_t *out);

#endif
