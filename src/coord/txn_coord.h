/*
 * txn_coord.h - the transaction coordinator: every transactional id whose
 * __transaction_state partition this node leads, the state machine of its
 * transactions, and their durable home in that internal topic.
 *
 * Role: the API handlers (InitProducerId, AddPartitionsToTxn, AddOffsetsToTxn,
 * EndTxn, DescribeTransactions, ListTransactions, FindCoordinator with key
 * type 1) are thin adapters over the calls below. An id lives in partition
 *     abs(java_hashCode(transactional_id)) % partitions of __transaction_state
 * and the leader of that partition is its coordinator; the leader epoch of
 * the partition is the coordinator epoch sent with the markers.
 *
 * A transaction (Kafka's TransactionState; codes as on disk):
 *
 *                 InitProducerId (epoch bump or new producer id)
 *        +------------------------------------------------------------+
 *        v                                                            |
 *   Empty(0) --AddPartitions/AddOffsets--> Ongoing(1) --EndTxn(commit)--> PrepareCommit(2)
 *     |  ^                                  | |  ^  \                          |
 *     |  |                                  | |  |   \--EndTxn(abort)-----> PrepareAbort(3)
 *     |  |  (InitProducerId on Ongoing, or  | |  more partitions               |    ^
 *     |  |   the txn timed out: the epoch   | |                                |    |
 *     |  |   is bumped to fence the old     | +--> PrepareEpochFence(7) -------+----+
 *     |  |   producer; memory only)         |      (never written; becomes PrepareAbort
 *     |  |                                  |       with the bumped epoch)
 *     |  |        markers written to every partition, then:
 *     |  +-- InitProducerId --  CompleteCommit(4) <--- PrepareCommit
 *     |  +-- InitProducerId --  CompleteAbort(5)  <--- PrepareAbort
 *     |          Complete* --AddPartitions--> Ongoing (a new transaction)
 *     |          KIP-890 v2: Empty/Complete* --EndTxn(abort)--> PrepareAbort (epoch bump)
 *     +--> Dead(6): Empty/Complete* idle for transactional.id.expiration.ms: a tombstone
 *
 * Durability (Kafka's rule): a change is first appended to the id's
 * partition as a record (txn_records.h) and waits until the partition's
 * high watermark covers it (the ISR has it); only then does the in-memory
 * state change and the caller get its answer. While a write is in flight
 * the id has a pending transition and other calls on it get
 * CONCURRENT_TRANSACTIONS. A write that fails leaves the state as it was.
 *
 * Completion of a transaction: EndTxn writes PrepareCommit/PrepareAbort and
 * answers; then markers go to every partition of the transaction through the
 * host (write_markers: local appends or WriteTxnMarkers to their leaders);
 * partitions whose marker failed are retried after a backoff until they
 * succeed, their topic is gone, or this node stops coordinating the id; then
 * CompleteCommit/CompleteAbort is written and the partitions are forgotten.
 * A coordinator that loads a partition (start-up, failover) resumes this
 * for every id it finds in PrepareCommit/PrepareAbort; Ongoing ones are
 * left to time out.
 *
 * KIP-890 transactions v2 (client version 2, EndTxn v5+): every EndTxn bumps
 * the producer epoch (in the Prepare record); when the epoch is exhausted
 * the Prepare record carries a next producer id, which the Complete record
 * moves to with epoch 0. EndTxn answers the producer id and epoch to use.
 *
 * Bounding __transaction_state without compaction: like the group
 * coordinator (group_coord.h), each partition counts the bytes appended since
 * its last restatement; past max(transaction.state.log.segment.bytes, last
 * restatement) the tick appends the current record of every id of the
 * partition and, once the ISR has it, moves the log start to its first
 * offset (delete-records). Replay from the log start yields the full state.
 * (Compaction, issue #15, would make this unnecessary.)
 *
 * Threads: one mutex guards everything. The handler calls run on any thread
 * and never block on replication: calls that write take a caller-owned op
 * whose done callback runs exactly once - before the call returns when no
 * write is needed, else on the thread that moved the high watermark (or the
 * marker writer's thread) - always without the coordinator mutex held, so it
 * may call the coordinator again. Host callbacks are called without the
 * mutex too, except state_partition, topic_partitions and now_ms.
 *
 * Error codes here are Kafka's (SM_TXN_KERR_*). A few of them depend on the
 * request version in Kafka (PRODUCER_FENCED is INVALID_PRODUCER_EPOCH for old
 * clients): see sm_txn_kerr_for_version.
 */
#ifndef SM_TXN_COORD_H
#define SM_TXN_COORD_H

#include "arena.h"
#include "sm_common.h"
#include "txn_records.h"

typedef struct sm_txn_coord sm_txn_coord_t;
typedef struct sm_partition sm_partition_t;
typedef struct sm_meta sm_meta_t;
typedef struct sm_config sm_config_t;

#define SM_TXN_COORD_TOPIC "__transaction_state"

/* Kafka error codes the transaction coordinator answers. */
enum {
    SM_TXN_KERR_NONE = 0,
    SM_TXN_KERR_UNKNOWN_SERVER_ERROR = -1,
    SM_TXN_KERR_UNKNOWN_TOPIC_OR_PARTITION = 3,
    SM_TXN_KERR_NOT_LEADER_OR_FOLLOWER = 6,
    SM_TXN_KERR_REQUEST_TIMED_OUT = 7,
    SM_TXN_KERR_COORDINATOR_LOAD_IN_PROGRESS = 14,
    SM_TXN_KERR_COORDINATOR_NOT_AVAILABLE = 15,
    SM_TXN_KERR_NOT_COORDINATOR = 16,
    SM_TXN_KERR_NOT_ENOUGH_REPLICAS = 19,
    SM_TXN_KERR_NOT_ENOUGH_REPLICAS_AFTER_APPEND = 20,
    SM_TXN_KERR_UNSUPPORTED_VERSION = 35,
    SM_TXN_KERR_INVALID_REQUEST = 42,
    SM_TXN_KERR_UNSUPPORTED_FOR_MESSAGE_FORMAT = 43,
    SM_TXN_KERR_INVALID_PRODUCER_EPOCH = 47,
    SM_TXN_KERR_INVALID_TXN_STATE = 48,
    SM_TXN_KERR_INVALID_PRODUCER_ID_MAPPING = 49,
    SM_TXN_KERR_INVALID_TRANSACTION_TIMEOUT = 50,
    SM_TXN_KERR_CONCURRENT_TRANSACTIONS = 51,
    SM_TXN_KERR_TRANSACTION_COORDINATOR_FENCED = 52,
    SM_TXN_KERR_KAFKA_STORAGE_ERROR = 56,
    SM_TXN_KERR_PRODUCER_FENCED = 90,
    SM_TXN_KERR_TRANSACTIONAL_ID_NOT_FOUND = 105,
    SM_TXN_KERR_TRANSACTION_ABORTABLE = 120,
};

/* Kafka's answer for an old client: PRODUCER_FENCED becomes
 * INVALID_PRODUCER_EPOCH for InitProducerId < v4, AddPartitionsToTxn < v2,
 * AddOffsetsToTxn < v2, EndTxn < v2 (api_key: 22, 24, 25, 26). */
int16_t sm_txn_kerr_for_version(int16_t api_key, int16_t version, int16_t kerr);

/* The partitions and their markers handed to the host. */
typedef struct sm_txn_markers {
    const char *transactional_id;
    int64_t producer_id;
    int16_t producer_epoch;
    bool committed;            /* COMMIT (true) or ABORT marker */
    int32_t coordinator_epoch; /* WriteTxnMarkers' CoordinatorEpoch */
    const sm_txn_tp_t *partitions;
    int32_t npartitions;
} sm_txn_markers_t;

/* What the coordinator needs from the broker hosting it. */
typedef struct sm_txn_host {
    /* Partition `part` of __transaction_state if hosted here: a new reference
     * (sm_partition_put it), or NULL. Any thread; called with the mutex. */
    sm_partition_t *(*state_partition)(void *ctx, int32_t part);
    /* Metadata: creating __transaction_state and reading partition counts.
     * May return NULL (tests): then topic_partitions must be set. */
    sm_meta_t *(*meta)(void *ctx);
    /* Optional: partitions of topic in the current metadata, -1 if it does
     * not exist. NULL: read from meta's image. Called with the mutex. */
    int32_t (*topic_partitions)(void *ctx, const char *topic);
    /* Run fn(arg) on the thread that makes metadata changes, in turn. */
    void (*on_controller)(void *ctx, void (*fn)(void *arg), void *arg);
    /* A fresh producer id (the broker's blocks of ids); a Kafka error code.
     * Called without the mutex; may block briefly. */
    int16_t (*alloc_producer_id)(void *ctx, int64_t *pid);
    /* Partitions of __consumer_offsets (AddOffsetsToTxn places the group). */
    int32_t (*offsets_partition_count)(void *ctx);
    /* Write m's markers (local appends or WriteTxnMarkers RPCs); call
     * done(arg, errs) exactly once, on any thread, when every partition was
     * written or failed: errs[i] is partition i's Kafka error code. m and
     * its arrays stay valid until done returns. */
    void (*write_markers)(void *ctx, const sm_txn_markers_t *m,
                          void (*done)(void *arg, const int16_t *errs), void *arg);
    /* Optional wall clock in ms (NULL: sm_now_wall_ms); tests drive time. */
    int64_t (*now_ms)(void *ctx);
    void *ctx;
} sm_txn_host_t;

/* Settings (sm_txn_coord_config_from_broker reads the broker's keys). */
typedef struct sm_txn_coord_config {
    int32_t num_partitions;      /* transaction.state.log.num.partitions (50) */
    int16_t replication_factor;  /* transaction.state.log.replication.factor (3) */
    int32_t min_isr;             /* transaction.state.log.min.isr (2) */
    int32_t segment_bytes;       /* transaction.state.log.segment.bytes (104857600) */
    int32_t max_timeout_ms;      /* transaction.max.timeout.ms (900000) */
    int64_t id_expiration_ms;    /* transactional.id.expiration.ms (604800000) */
    int64_t abort_interval_ms;   /* transaction.abort.timed.out.transaction.cleanup.interval.ms (10000) */
    int64_t remove_interval_ms;  /* transaction.remove.expired.transaction.cleanup.interval.ms (3600000) */
    int64_t write_timeout_ms;    /* a __transaction_state write waits this long for the ISR (30000) */
    int64_t marker_backoff_ms;   /* retry of failed markers (100, doubling to 5000) */
    int64_t restate_min_bytes;   /* restatement threshold (segment_bytes) */
} sm_txn_coord_config_t;

void sm_txn_coord_config_default(sm_txn_coord_config_t *cfg);
/* Defaults, then the broker's keys (those in its config table). */
void sm_txn_coord_config_from_broker(const sm_config_t *bc, sm_txn_coord_config_t *cfg);

/* Start: if __transaction_state exists, load the partitions led here; else
 * the first transactional call creates it (on the controller thread, as the
 * group coordinator creates __consumer_offsets). No thread is started: call
 * sm_txn_coord_start_timer, or sm_txn_coord_tick yourself. cfg and host are
 * copied. Start-up thread. */
SM_MUST_CHECK sm_err_t sm_txn_coord_open(const sm_txn_coord_config_t *cfg,
                                         const sm_txn_host_t *host, sm_txn_coord_t **out);
/* A timer thread that runs sm_txn_coord_tick (stopped by shutdown/close). */
SM_MUST_CHECK sm_err_t sm_txn_coord_start_timer(sm_txn_coord_t *c);
/* Refuse new calls (NOT_COORDINATOR), stop the timer. Any thread; idempotent. */
void sm_txn_coord_shutdown(sm_txn_coord_t *c);
/* Shut down, fail this coordinator's waits on __transaction_state, wait for
 * every outstanding callback (write_markers must call its done; a topic
 * creation in progress must finish) and free. Before the partitions close. */
void sm_txn_coord_close(sm_txn_coord_t *c);

/* Load partitions newly led here (and unload lost ones), abort timed-out
 * transactions, expire idle ids, retry markers, restate grown partitions.
 * Returns the wall-clock time (host clock) of the next thing due. Any
 * thread; the timer thread or the broker calls it. */
int64_t sm_txn_coord_tick(sm_txn_coord_t *c);
/* Leadership of __transaction_state partitions changed: wake the timer to
 * load/unload now. Any thread. */
void sm_txn_coord_wake(sm_txn_coord_t *c);

/* ------------------------------------------------ FindCoordinator */

/* Can this node coordinate txn_id now? NONE, COORDINATOR_LOAD_IN_PROGRESS,
 * NOT_COORDINATOR (another node leads its partition, or shutting down), or
 * COORDINATOR_NOT_AVAILABLE (the topic does not exist yet: this starts its
 * creation). *part (may be NULL) gets its partition, -1 while absent. */
int16_t sm_txn_coord_status(sm_txn_coord_t *c, const char *txn_id, size_t len, int32_t *part);

/* A FindCoordinator parked until __transaction_state exists (caller's memory
 * until on_ready runs, once, on the controller thread, without the mutex). */
typedef struct sm_txn_ready sm_txn_ready_t;
struct sm_txn_ready {
    void (*on_ready)(sm_txn_ready_t *r);
    sm_txn_ready_t *next; /* private */
};
/* Start creating the topic if absent and park r: true (on_ready will run,
 * maybe before this returns); false: answer now (exists, stopping, or the
 * last creation failed under a second ago). */
bool sm_txn_coord_await_topic(sm_txn_coord_t *c, sm_txn_ready_t *r);

/* ------------------------------------------------ InitProducerId */

typedef struct sm_txn_init sm_txn_init_t;
struct sm_txn_init {
    /* in */
    const char *transactional_id; /* NULL: an idempotent producer (a pid, epoch 0) */
    size_t id_len;
    int32_t timeout_ms;
    int64_t producer_id;    /* KIP-360 expected id, -1 = none */
    int16_t producer_epoch; /* KIP-360 expected epoch, -1 = none */
    /* out */
    int16_t error;
    int64_t out_producer_id;
    int16_t out_producer_epoch;
    void (*done)(sm_txn_init_t *op); /* once; see "Threads" */
    void *arg;                       /* the caller's */
};
void sm_txn_coord_init_producer(sm_txn_coord_t *c, sm_txn_init_t *op);

/* ------------------------------------------------ AddPartitionsToTxn, AddOffsetsToTxn */

typedef struct sm_txn_add_part {
    const char *topic; /* NUL-terminated */
    int32_t partition;
    int16_t error;     /* out */
} sm_txn_add_part_t;

typedef struct sm_txn_add sm_txn_add_t;
struct sm_txn_add {
    /* in */
    const char *transactional_id;
    size_t id_len;
    int64_t producer_id;
    int16_t producer_epoch;
    bool verify_only;       /* v4+ from a partition leader (KIP-890 part 1): only check */
    int16_t client_version; /* 2: transactions v2 (v5+ from a leader), else 1 */
    sm_txn_add_part_t *parts;
    int32_t nparts;
    /* out: error of the whole call; every parts[i].error is set too */
    int16_t error;
    void (*done)(sm_txn_add_t *op);
    void *arg;
};
/* AddPartitionsToTxn (every version; v4+ batches call it per transaction).
 * verify_only answers per partition NONE or TRANSACTION_ABORTABLE (not in
 * the ongoing transaction), or the id's error for all. */
void sm_txn_coord_add_partitions(sm_txn_coord_t *c, sm_txn_add_t *op);
/* AddOffsetsToTxn: adds (__consumer_offsets, partitionFor(group_id)); op->parts
 * must point at one sm_txn_add_part_t the coordinator fills. */
void sm_txn_coord_add_offsets(sm_txn_coord_t *c, sm_txn_add_t *op, const char *group_id,
                              size_t group_len);

/* ------------------------------------------------ EndTxn */

typedef struct sm_txn_end sm_txn_end_t;
struct sm_txn_end {
    /* in */
    const char *transactional_id;
    size_t id_len;
    int64_t producer_id;
    int16_t producer_epoch;
    bool committed;
    int16_t client_version; /* 2 for EndTxn v5+ (transactions v2), else 1 */
    /* out */
    int16_t error;
    int64_t out_producer_id;    /* v5+: the id and epoch to use next (-1 on error) */
    int16_t out_producer_epoch;
    void (*done)(sm_txn_end_t *op);
    void *arg;
};
void sm_txn_coord_end(sm_txn_coord_t *c, sm_txn_end_t *op);

/* ------------------------------------------------ Describe / List */

typedef struct sm_txn_desc {
    int16_t error; /* NONE, TRANSACTIONAL_ID_NOT_FOUND, NOT_COORDINATOR, LOAD_IN_PROGRESS */
    const char *state;
    int32_t timeout_ms;
    int64_t start_ms;
    int64_t producer_id;
    int16_t producer_epoch;
    sm_txn_tp_t *tps; /* sorted by topic, partition; in the arena */
    int32_t ntps;
} sm_txn_desc_t;
/* DescribeTransactions of one id; copied into a. */
void sm_txn_coord_describe(sm_txn_coord_t *c, const char *txn_id, size_t len, sm_arena_t *a,
                           sm_txn_desc_t *out);

typedef struct sm_txn_list_filter {
    const sm_str_t *states; /* state names; none = all */
    int32_t nstates;
    const int64_t *producer_ids; /* none = all */
    int32_t nproducer_ids;
    int64_t min_duration_ms; /* KIP-994: running at least this long; -1 = all */
    const char *txn_id_pattern; /* unused (KIP-1152 regex), NULL */
} sm_txn_list_filter_t;

typedef struct sm_txn_listing {
    const char *transactional_id;
    int64_t producer_id;
    const char *state;
} sm_txn_listing_t;
/* ListTransactions over the ids coordinated here. Returns NONE or
 * COORDINATOR_LOAD_IN_PROGRESS; state names not known are returned in
 * *unknown (arena) for UnknownStateFilters. */
int16_t sm_txn_coord_list(sm_txn_coord_t *c, const sm_txn_list_filter_t *f, sm_arena_t *a,
                          sm_txn_listing_t **out, int32_t *n, sm_str_t **unknown,
                          int32_t *nunknown);

/* The settings in effect (tests, FindCoordinator). */
const sm_txn_coord_config_t *sm_txn_coord_config(const sm_txn_coord_t *c);

#endif
