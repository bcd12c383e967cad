/*
 * partition.h - one hosted partition's replica state, between the API
 * handlers (and coordinators) above and its log (src/storage) below.
 *
 * A partition owns its log and the state replication is built on: its role
 * (leader, follower, or none), the leader epoch, and the high watermark. The
 * handlers and the group coordinator read and write through these functions,
 * never through the log directly, so the rules live in one place: appends
 * only on the leader and tagged with its epoch; reads bounded by the high
 * watermark; epoch checks of KIP-320. What the partition needs from the
 * broker (wake long-polling fetches after an append, schedule write-behind
 * on a background worker) it gets as hooks at creation, so this layer knows
 * nothing of the server and runs as is under the simulator.
 *
 * Replica state machine (transitions from metadata image deltas; see
 * docs/ARCHITECTURE.md, "A hosted partition's replica state"):
 *
 *          set_replicas(leader = self)          set_replicas(leader = other)
 *     NONE ───────────────────────► LEADER ◄───────────────────────────────► FOLLOWER
 *       └───────────────────────────────────────────────────────────────────────▲
 *                          set_replicas(leader = other or none)
 *
 * A leader whose ISR is itself alone is "solo" (high watermark = log end);
 * a new leader epoch resets what it knows of its followers.
 *
 * A partition whose ISR is the leader alone is "solo": its high watermark
 * is the log end offset. Otherwise the leader moves the high watermark as
 * the ISR's fetches show they have the records (replica.c).
 *
 * Threads: every function may run on any thread (the log locks itself; role,
 * epoch and flags are atomics). Lifetime: refcounted; the last put closes
 * the log (or, for a deleted partition, removes its files).
 */
#ifndef SM_PARTITION_H
#define SM_PARTITION_H

#include "ref.h"
#include "sm_common.h"
#include "storage/log.h"
#include "storage/cleaner.h"
#include "producer_state.h"
#include "uuid.h"

#include <pthread.h>

typedef enum sm_replica_role {
    SM_ROLE_NONE = 0,
    SM_ROLE_LEADER,
    SM_ROLE_FOLLOWER,
} sm_replica_role_t;

typedef struct sm_partition sm_partition_t;

/* The leader's view of one follower (replica.c). */
typedef struct sm_replica_info {
    int32_t id;
    int64_t leo;               /* its log end: the offset of its last fetch; -1 unknown */
    int64_t last_fetch_ms;     /* monotonic time of its last fetch; -1 never */
    int64_t leader_leo_at_fetch; /* our log end when it last fetched */
    int64_t last_caught_up_ms; /* last time it had everything we had (Kafka's
                                  lastCaughtUpTimeMs); the ISR drops it after
                                  replica.lag.time.max.ms without */
    int64_t broker_epoch;      /* its registration epoch when it last fetched (-1
                                  unknown): an ISR proposal carries it, so the
                                  controller refuses a member that restarted since
                                  (it may have lost what it had; KIP-903) */
} sm_replica_info_t;

/* An acks=all produce waiting for the high watermark to pass target
 * (replica.c). The memory is the caller's until done() runs, exactly once,
 * on whatever thread moved the high watermark, lost the leadership or
 * expired it; kerr is 0, NOT_ENOUGH_REPLICAS_AFTER_APPEND (20),
 * NOT_LEADER_OR_FOLLOWER (6) or REQUEST_TIMED_OUT (7). */
typedef struct sm_hw_waiter sm_hw_waiter_t;
struct sm_hw_waiter {
    sm_hw_waiter_t *next; /* private */
    int64_t target;
    int64_t deadline_ms;  /* monotonic */
    void (*done)(sm_hw_waiter_t *w, int16_t kerr);
};

/* What a partition calls back into the broker for. Any thread. */
typedef struct sm_partition_hooks {
    /* after every successful append, and when the high watermark moves:
     * wake fetches waiting on p */
    void (*appended)(void *ctx, sm_partition_t *p);
    /* the log asks for a write-behind pass: run sm_partition_write_behind(p)
     * on a background worker, then put the reference passed along */
    void (*write_behind_due)(void *ctx, sm_partition_t *p);
    void *ctx;
} sm_partition_hooks_t;

struct sm_partition {
    sm_ref_t ref;
    char *topic;          /* owned */
    int32_t index;
    sm_uuid_t topic_id;
    char *name;           /* "topic-index", for logs */
    sm_log_t *log;        /* owned; thread-safe. Read it through the functions below. */
    int32_t leader_epoch; /* atomic */
    int32_t leader_id;    /* atomic: the leader's node id, -1 if none */
    int32_t role;         /* atomic: sm_replica_role_t */
    int32_t max_message_bytes; /* topic max.message.bytes (updated live) */
    int32_t min_insync_replicas; /* topic min.insync.replicas (updated live) */
    int32_t isr_size;          /* in-sync replicas, from the image (updated live) */
    int32_t compression;       /* topic compression.type: -1 producer, else the codec (live) */
    int32_t compression_level; /* that codec's compression.<codec>.level (live) */
    bool compacted;            /* cleanup.policy has compact: keyless records refused (live) */
    bool deleted;         /* atomic: the topic was deleted; appends refused */
    /* replication (replica.c), under rmu */
    pthread_mutex_t rmu;
    int32_t self_id;
    int32_t *replicas, nreplicas;
    int32_t *isr, nisr;
    int32_t partition_epoch;
    sm_replica_info_t *followers; /* one per replica but self (leader only) */
    int nfollowers;
    int32_t *isr_pending;  /* ISR asked of the controller, not yet in the image */
    int32_t nisr_pending;  /* -1: no AlterPartition in flight */
    int64_t isr_pending_since_ms;
    int64_t isr_retry_after_ms; /* after a refusal */
    sm_hw_waiter_t *hw_waiters;
    int64_t hw;            /* atomic: the high watermark (unused while solo) */
    bool solo;             /* atomic: leader with an ISR of itself alone: hw = log end */
    sm_partition_hooks_t hooks;
    /* producers (producer_state.h): appends, truncations and the producer
     * state change together under amu (taken before the log's own mutex,
     * never while holding rmu) */
    pthread_mutex_t amu;
    sm_pstate_t pstate;
    int64_t first_unstable;     /* atomic mirror of the producer state's (-1 none) */
    int64_t snapshot_base;      /* active segment base at the last producer snapshot */
    int64_t producer_expiration_ms; /* producer.id.expiration.ms */
    /* KIP-890 verification (transaction.partition.verification.enable):
     * pid (8 bytes) -> guard (uint64_t, never 0) of a producer the
     * coordinator is being asked about; a marker for it removes it. amu. */
    bool verify_txn;
    sm_hmap_t verify_guards;
    uint64_t next_guard;
    /* log cleaning (cleanup.policy and its settings, from the topic's
     * config; under rmu) and what the last cleaning left (atomics) */
    struct sm_partition_cleanup {
        bool compact, delete_;      /* cleanup.policy */
        double min_dirty_ratio;     /* min.cleanable.dirty.ratio */
        int64_t min_lag_ms, max_lag_ms; /* min/max.compaction.lag.ms */
        int64_t delete_retention_ms;    /* delete.retention.ms */
        int64_t segment_bytes;          /* cleaned segments' size limit */
    } cleanup;
    int64_t clean_horizon_ms; /* earliest delete horizon in the log (INT64_MAX none) */
    /* metrics (relaxed atomics, summed per topic when scraped) */
    uint64_t bytes_in, msgs_in;   /* appended by produce */
    uint64_t bytes_out, msgs_out; /* sent by fetch */
};

/* Open (or create) the partition's log in dir/<topic>-<index> with cfg and
 * wrap it, as a replica with no role yet. NULL (logged) if the log cannot be
 * opened. */
sm_partition_t *sm_partition_open(const char *log_dir, const char *topic, int32_t index,
                                  const sm_uuid_t *topic_id, const sm_log_config_t *cfg,
                                  const sm_partition_hooks_t *hooks);
void sm_partition_keep(sm_partition_t *p);
void sm_partition_put(sm_partition_t *p);

/* ---- replica state transitions: sm_partition_set_replicas (below), from
 * the metadata image */
/* The topic is gone: appends are refused from now on and the directory
 * moves aside (removed when the last reference goes). */
void sm_partition_mark_deleted(sm_partition_t *p);

static inline sm_replica_role_t sm_partition_role(const sm_partition_t *p)
{
    return (sm_replica_role_t)__atomic_load_n(&p->role, __ATOMIC_ACQUIRE);
}
static inline int32_t sm_partition_leader_epoch(const sm_partition_t *p)
{
    return __atomic_load_n(&p->leader_epoch, __ATOMIC_RELAXED);
}
static inline bool sm_partition_deleted(const sm_partition_t *p)
{
    return __atomic_load_n(&p->deleted, __ATOMIC_ACQUIRE);
}

/* A request's view of the leader epoch against ours (KIP-320): -1 skips the
 * check (0); an older one is fenced (-1: FENCED_LEADER_EPOCH at the API
 * edge), a newer one unknown to us (1: UNKNOWN_LEADER_EPOCH). */
static inline int sm_partition_epoch_cmp(const sm_partition_t *p, int32_t current_leader_epoch)
{
    int32_t ours = sm_partition_leader_epoch(p);
    if (current_leader_epoch < 0 || current_leader_epoch == ours)
        return 0;
    return current_leader_epoch < ours ? -1 : 1;
}

/* ---- replication (replica.c)
 *
 * Leader: followers' fetches report their log ends; the high watermark is
 * the smallest log end over the ISR (and ISR members being added), never
 * moving down. acks=all produces wait on it. The ISR changes only through
 * the controller: the leader proposes (sm_partition_isr_proposal), the
 * controller commits a PartitionChangeRecord and the image brings it back
 * (sm_partition_set_replicas).
 * Follower: appends what the leader sent with the leader's offsets, truncates
 * where its log diverged from the leader's, and keeps the high watermark at
 * min(leader's, own log end). */

/* The image's view of the partition: replica set, ISR, leader, epochs.
 * Moves the role (become_leader / become_follower) and fails acks=all
 * waiters when leadership is lost. */
void sm_partition_set_replicas(sm_partition_t *p, int32_t self_id, int32_t leader_id,
                               int32_t leader_epoch, int32_t partition_epoch,
                               const int32_t *replicas, int nreplicas, const int32_t *isr,
                               int nisr, int64_t now_ms);
/* Leader: follower `replica` fetched from fetch_offset at now_ms. Updates its
 * state and the high watermark (waking waiters). Returns false if replica is
 * not one of ours (the caller answers NOT_LEADER_OR_FOLLOWER... or ignores). */
bool sm_partition_follower_fetched(sm_partition_t *p, int32_t replica, int64_t broker_epoch,
                                   int64_t fetch_offset, int64_t now_ms);
/* Leader: is the follower's log diverging (KIP-320/KIP-595 style check on
 * last_fetched_epoch)? Then *div_epoch / *div_end say where our log ends for
 * the largest epoch <= last_fetched_epoch, and the follower truncates there. */
bool sm_partition_diverging(sm_partition_t *p, int32_t last_fetched_epoch, int64_t fetch_offset,
                            int32_t *div_epoch, int64_t *div_end);
/* Leader: the ISR this partition should have now (members caught up within
 * lag_ms stay, followers at the high watermark join). True (and the
 * proposal, leader epoch and partition epoch filled; the proposal is marked
 * in flight) when it differs from the current ISR and no change is in
 * flight. isr_out (and epochs_out, each member's broker epoch as of its
 * last fetch, -1 unknown; may be NULL) have room for nreplicas entries. A
 * solo leader proposing members stops being solo at once: from then on the
 * high watermark waits for them too. */
bool sm_partition_isr_proposal(sm_partition_t *p, int64_t now_ms, int64_t lag_ms,
                               int32_t *isr_out, int64_t *epochs_out, int *nisr_out,
                               int32_t *leader_epoch, int32_t *partition_epoch);
/* The controller refused or did not answer: the proposal is dropped; the
 * next one comes no earlier than retry_after_ms (monotonic). */
void sm_partition_isr_proposal_failed(sm_partition_t *p, int64_t retry_after_ms);
/* acks=all: call w->done once the high watermark reaches w->target (0 if
 * already there: returns true and does not call done). */
bool sm_partition_wait_hw(sm_partition_t *p, sm_hw_waiter_t *w);
/* Answer every waiter with kerr (the partition is going away). */
void sm_partition_fail_hw_waiters(sm_partition_t *p, int16_t kerr);
/* Answer waiters past their deadline with REQUEST_TIMED_OUT. */
void sm_partition_expire_hw_waiters(sm_partition_t *p, int64_t now_ms);

/* Follower: what one partition of a fetch response from the leader said. */
typedef struct sm_fetched_part {
    int16_t error;
    int64_t high_watermark, log_start_offset;
    int32_t diverging_epoch;   /* -1: none */
    int64_t diverging_end;
    uint8_t *records;          /* batches (the buffer is the caller's, patched in place) */
    size_t len;
} sm_fetched_part_t;
/* Follower: apply a fetch response partition (for the leader epoch the fetch
 * was sent under): truncate on divergence, append the batches with the
 * leader's offsets, move the high watermark. SM_OK; SM_ERR_AGAIN when the
 * partition is no longer following that leader epoch (dropped);
 * SM_ERR_CORRUPT when a batch fails validation (nothing appended);
 * SM_ERR_RANGE when the records do not continue our log; or the storage
 * error. */
sm_err_t sm_partition_follower_apply(sm_partition_t *p, int32_t leader_epoch,
                                     const sm_fetched_part_t *f);
/* Follower: the epoch of the newest batch in our log (last_fetched_epoch);
 * -1 when empty. */
int32_t sm_partition_last_epoch(sm_partition_t *p);

/* ---- the data path */

/* Append already-validated batches as leader (tagged with the leader epoch)
 * and call the appended hook. SM_ERR_CLOSED if the partition was deleted;
 * SM_ERR_INVALID if this replica does not lead it (NOT_LEADER_OR_FOLLOWER).
 * For the broker's own writes (coordinators): batches carrying a producer
 * id (transactional offsets) are recorded in the producer state, not
 * checked. */
sm_err_t sm_partition_append(sm_partition_t *p, uint8_t *batches, size_t len,
                             sm_append_info_t *out) SM_MUST_CHECK;
/* Produce's append: as sm_partition_append, and *kerr says why a batch was
 * refused (SM_ERR_INVALID): NOT_LEADER_OR_FOLLOWER (6), or the producer
 * checks' OUT_OF_ORDER_SEQUENCE_NUMBER, INVALID_PRODUCER_EPOCH,
 * UNKNOWN_PRODUCER_ID, INVALID_TXN_STATE (nothing of the request is
 * appended then... except batches before the refused one when several
 * producer batches come in one request). A retried batch (one of its
 * producer's last 5) is not appended again: SM_OK with its original offsets
 * in out and *duplicate set. */
sm_err_t sm_partition_produce(sm_partition_t *p, uint8_t *batches, size_t len,
                              sm_append_info_t *out, int16_t *kerr,
                              bool *duplicate, uint64_t guard) SM_MUST_CHECK;
/* KIP-890 part 1: before a transactional write from producer pid (epoch)
 * that has no open transaction on this partition, the leader asks the
 * transaction coordinator whether the partition was added to the producer's
 * ongoing transaction. Returns true (and a fresh *guard) when that question
 * is needed; false when the producer already has its transaction open here
 * at this epoch, or verification is off. The append then passes the guard
 * to sm_partition_produce: a transactional batch that would start a
 * transaction is refused (INVALID_TXN_STATE) unless its guard is still the
 * one recorded, so a marker written between the question and the append
 * (the transaction ended meanwhile) makes the late write fail instead of
 * opening a transaction nobody will ever close (the hanging transaction). */
bool sm_partition_txn_verify_begin(sm_partition_t *p, int64_t pid, int16_t epoch,
                                   uint64_t *guard);
/* The coordinator said no (or could not be asked): forget the guard, unless
 * a newer one replaced it. */
void sm_partition_txn_verify_cancel(sm_partition_t *p, int64_t pid, uint64_t guard);
/* WriteTxnMarkers: append a COMMIT or ABORT control batch for producer
 * pid/epoch (as leader) and complete its transaction here. *kerr as
 * sm_partition_produce, plus INVALID_PRODUCER_EPOCH for an older epoch and
 * TRANSACTION_COORDINATOR_FENCED (52) for an older coordinator epoch. */
sm_err_t sm_partition_write_marker(sm_partition_t *p, int64_t pid, int16_t epoch, bool commit,
                                   int32_t coordinator_epoch, sm_append_info_t *out,
                                   int16_t *kerr) SM_MUST_CHECK;
/* The last stable offset: below it every transaction is decided and
 * replicated (= the high watermark without open transactions). */
int64_t sm_partition_lso(sm_partition_t *p);
/* Aborted transactions overlapping [from, upto) for a read_committed fetch
 * (see sm_log_aborted_txns). */
int sm_partition_aborted_txns(sm_partition_t *p, int64_t from, int64_t upto,
                              sm_log_aborted_t **out);
/* Internal to src/partition (amu held): record appended batches in the
 * producer state and the aborted-transaction index; rebuild the producer
 * state from the newest usable snapshot and the log after it (open,
 * truncation). */
sm_err_t sm_partition_record_batches(sm_partition_t *p, const uint8_t *batches, size_t len);
sm_err_t sm_partition_rebuild_producers(sm_partition_t *p);
/* DescribeProducers: call fn for every producer with state here. */
void sm_partition_each_producer(sm_partition_t *p,
                                void (*fn)(void *arg, const sm_producer_t *pr), void *arg);
/* Whole batches from offset, at most max_bytes (min_one: at least one batch
 * even if larger), never past the high watermark. See sm_log_read. */
sm_err_t sm_partition_read(sm_partition_t *p, int64_t offset, int32_t max_bytes, bool min_one,
                           sm_log_slice_t *out) SM_MUST_CHECK;
/* The same, never past max_offset (read_committed: the last stable offset). */
sm_err_t sm_partition_read_below(sm_partition_t *p, int64_t offset, int64_t max_offset,
                                 int32_t max_bytes, bool min_one,
                                 sm_log_slice_t *out) SM_MUST_CHECK;
/* The same up to the log end, past the high watermark: for the replica's
 * own use (a coordinator replaying its partition, followers' fetches). */
sm_err_t sm_partition_read_local(sm_partition_t *p, int64_t offset, int32_t max_bytes,
                                 bool min_one, sm_log_slice_t *out) SM_MUST_CHECK;
/* The high watermark: what every in-sync replica has; consumers read below it. */
int64_t sm_partition_high_watermark(const sm_partition_t *p);
int64_t sm_partition_log_start(const sm_partition_t *p);
int64_t sm_partition_log_end(const sm_partition_t *p);
/* DeleteRecords: move the log start to new_start (<= high watermark). */
sm_err_t sm_partition_delete_records(sm_partition_t *p, int64_t new_start) SM_MUST_CHECK;
/* OffsetForLeaderEpoch: the end offset of epoch (see sm_log_epoch_end_offset). */
sm_err_t sm_partition_epoch_end_offset(sm_partition_t *p, int32_t epoch, int32_t *epoch_out,
                                       int64_t *end_out) SM_MUST_CHECK;
/* ListOffsets by timestamp and MAX_TIMESTAMP (see the sm_log_ functions). */
sm_err_t sm_partition_offset_for_timestamp(sm_partition_t *p, int64_t ts, int64_t *offset,
                                           int64_t *timestamp) SM_MUST_CHECK;
sm_err_t sm_partition_max_timestamp(sm_partition_t *p, int64_t *offset,
                                    int64_t *timestamp) SM_MUST_CHECK;
int64_t sm_partition_size_bytes(const sm_partition_t *p);
int sm_partition_segment_count(const sm_partition_t *p);

/* ---- durability (the produce path's acknowledgement point) */

/* True when the topic's flush policy wants appended records on disk before
 * they are acknowledged. */
bool sm_partition_sync_required(sm_partition_t *p);
/* Group commit on the partition's log: see sm_log_wait_durable. */
sm_log_wait_t sm_partition_wait_durable(sm_partition_t *p, sm_log_waiter_t *w);
void sm_partition_run_flusher(sm_partition_t *p);

/* The periodic pass (background worker, every second): flush if flush.ms
 * is due, and with retention, delete segments past retention.ms /
 * retention.bytes. Failures are logged; the next pass retries. */
void sm_partition_maintain(sm_partition_t *p, int64_t now_wall_ms, bool retention);

/* ---- log cleaning (driven by the broker's cleaner threads) */
typedef struct sm_partition_cleanup sm_partition_cleanup_t;
/* The topic's cleanup settings (on open and on every config change). */
void sm_partition_set_cleanup(sm_partition_t *p, const sm_partition_cleanup_t *c);
void sm_partition_get_cleanup(sm_partition_t *p, sm_partition_cleanup_t *out);
/* What cleaning the log would cover now (sm_log_clean_window): the dirty
 * part runs from the cleaner checkpoint to the first uncleanable offset
 * (min of the last stable offset, the high watermark, the active segment
 * and min.compaction.lag.ms). Any thread. */
void sm_partition_clean_window(sm_partition_t *p, int64_t now_ms, sm_clean_window_t *w);
/* Clean the partition's log (sm_log_clean) with its own settings: only
 * committed data (below the last stable offset and the high watermark) is
 * cleaned, and the last batch of every producer with state is kept. Leader
 * and followers clean their logs each on their own, as Kafka's replicas do.
 * Cleaner thread. */
sm_err_t sm_partition_clean(sm_partition_t *p, sm_offset_map_t *map, int64_t now_ms,
                            int64_t io_bytes_per_sec, const int *stop,
                            sm_clean_result_t *out) SM_MUST_CHECK;

/* The write-behind pass the write_behind_due hook asked for (background). */
void sm_partition_write_behind(sm_partition_t *p);

#endif
