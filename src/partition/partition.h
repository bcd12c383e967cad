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
 *              become_leader(epoch)               become_follower(leader, epoch)
 *     NONE ───────────────────────► LEADER ◄───────────────────────────────► FOLLOWER
 *       └───────────────────────────────────────────────────────────────────────▲
 *                            become_follower(leader, epoch)
 *
 * Today every hosted partition has one replica, this broker, which leads it:
 * the in-sync replica set is the leader alone, so the high watermark is the
 * log end offset (sm_partition_high_watermark). Replication (#13) keeps a
 * follower set and moves the high watermark as the ISR acknowledges.
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
#include "uuid.h"

typedef enum sm_replica_role {
    SM_ROLE_NONE = 0,
    SM_ROLE_LEADER,
    SM_ROLE_FOLLOWER,
} sm_replica_role_t;

typedef struct sm_partition sm_partition_t;

/* What a partition calls back into the broker for. Any thread. */
typedef struct sm_partition_hooks {
    /* after every successful append: wake fetches waiting on p */
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
    bool deleted;         /* atomic: the topic was deleted; appends refused */
    sm_partition_hooks_t hooks;
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

/* ---- replica state transitions (from the metadata image) */
void sm_partition_become_leader(sm_partition_t *p, int32_t self_id, int32_t leader_epoch);
void sm_partition_become_follower(sm_partition_t *p, int32_t leader_id, int32_t leader_epoch);
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

/* ---- the data path */

/* Append already-validated batches as leader (tagged with the leader epoch)
 * and call the appended hook. SM_ERR_CLOSED if the partition was deleted;
 * SM_ERR_INVALID if this replica does not lead it (NOT_LEADER_OR_FOLLOWER). */
sm_err_t sm_partition_append(sm_partition_t *p, uint8_t *batches, size_t len,
                             sm_append_info_t *out) SM_MUST_CHECK;
/* Whole batches from offset, at most max_bytes (min_one: at least one batch
 * even if larger), never past the high watermark. See sm_log_read. */
sm_err_t sm_partition_read(sm_partition_t *p, int64_t offset, int32_t max_bytes, bool min_one,
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

/* The write-behind pass the write_behind_due hook asked for (background). */
void sm_partition_write_behind(sm_partition_t *p);

#endif
