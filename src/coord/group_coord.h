/*
 * group_coord.h - the group coordinator: every consumer group of this
 * broker, their committed offsets, and their durable home in the internal
 * topic __consumer_offsets.
 *
 * Role: the API handlers (src/broker/handle_group.c) call the functions
 * below; each takes the coordinator mutex, looks the group up (creating it
 * for a JoinGroup or a simple OffsetCommit), feeds the event to the group
 * state machine (group.h) and makes any resulting state durable by appending
 * records to __consumer_offsets partition
 *     abs(java_hashCode(group_id)) % offsets.topic.num.partitions
 * before answering. __consumer_offsets is created on first use, as Kafka
 * does: at open the coordinator replays every partition of an existing topic
 * to rebuild groups and offsets, but a broker whose topic does not exist yet
 * starts without it (no 50 partitions before it listens). The first group
 * request creates it through the controller (sm_meta_create_internal_topic,
 * cleanup.policy=compact) on the server's controller thread, exactly once; a
 * FindCoordinator waits for that (sm_group_coord_await_topic), other group
 * calls answer COORDINATOR_NOT_AVAILABLE meanwhile. ListGroups and
 * DescribeGroups never create it: without the topic there are no groups.
 *
 * Threads: one mutex guards all groups, offsets and partition bookkeeping;
 * handler calls run on loop threads, timers on the coordinator's own timer
 * thread (sm_group_coord_tick). Parked JoinGroup/SyncGroup requests are
 * answered through their sm_group_waiter_t callbacks with the mutex held, on
 * whichever thread completes them; callbacks must only encode and finish the
 * request. Appends to __consumer_offsets are made with the mutex held so the
 * log order equals the order of the in-memory changes.
 *
 * Bounding __consumer_offsets without compaction: each partition counts the
 * bytes appended since it was last restated; once that exceeds
 * max(offsets.topic.segment.bytes, size of the last snapshot) the timer
 * thread appends a snapshot - the metadata and offsets of every live group of
 * that partition - and moves the log start offset to the snapshot's first
 * offset (sm_log_delete_records), so the segments before it are deleted.
 * Replaying from the log start thus always yields the full state, and a
 * partition holds about two segments plus twice its live state. (Deletion
 * works on whole segments, so restating more often would free nothing.)
 *
 * Error codes returned here are Kafka error codes (SM_KERR_* in group.h).
 */
#ifndef SM_GROUP_COORD_H
#define SM_GROUP_COORD_H

#include "arena.h"
#include "group.h"
#include "sm_common.h"

typedef struct sm_group_coord sm_group_coord_t;
typedef struct sm_partition sm_partition_t;
typedef struct sm_meta sm_meta_t;
typedef struct sm_config sm_config_t;

/* What the coordinator needs from the broker hosting it - a small interface
 * from the layer above, so src/coord depends only on the partition and
 * metadata layers (and the simulator can host it). Any thread. */
typedef struct sm_coord_host {
    /* Partition `part` of __consumer_offsets if this broker hosts it: a new
     * reference (sm_partition_put it), or NULL. */
    sm_partition_t *(*offsets_partition)(void *ctx, int32_t part);
    /* The metadata controller and image source. */
    sm_meta_t *(*meta)(void *ctx);
    /* Run fn(arg) on the thread that makes metadata changes, in turn. */
    void (*on_controller)(void *ctx, void (*fn)(void *arg), void *arg);
    void *ctx;
} sm_coord_host_t;

#define SM_GROUP_COORD_TOPIC "__consumer_offsets"

/* The __consumer_offsets partition of group_id (-1 while the topic does
 * not exist): its leader is the group's coordinator. */
int32_t sm_group_coord_partition_of(sm_group_coord_t *c, const char *group_id);

/* Settings, taken from the broker config at open (see sm_group_coord_open). */
typedef struct sm_group_coord_config {
    int32_t num_partitions;         /* offsets.topic.num.partitions */
    int16_t replication_factor;     /* offsets.topic.replication.factor */
    int32_t segment_bytes;          /* offsets.topic.segment.bytes */
    int64_t retention_ms;           /* offsets.retention.minutes */
    int64_t retention_check_ms;     /* offsets.retention.check.interval.ms */
    int32_t metadata_max_bytes;     /* offset.metadata.max.bytes */
    int64_t snapshot_min_bytes;     /* restate after this much growth (segment bytes) */
    sm_group_limits_t limits;
} sm_group_coord_config_t;

/*
 * Start the coordinator: if __consumer_offsets exists, load every partition
 * (its partition count, not offsets.topic.num.partitions, places the groups);
 * if not, leave it to the first group request. Start the timer thread. Call
 * after the server's partitions are available (after the metadata listener
 * is set) and its background workers run. Partitions that cannot be read yet
 * are retried by the timer thread; their groups answer
 * COORDINATOR_LOAD_IN_PROGRESS meanwhile. Start-up thread.
 */
SM_MUST_CHECK sm_err_t sm_group_coord_open(const sm_config_t *broker_cfg,
                                           const sm_coord_host_t *host, sm_group_coord_t **out);
/* Graceful shutdown, first step: answer every parked JoinGroup/SyncGroup
 * now (NOT_COORDINATOR, so clients look the coordinator up again), stop the
 * timers, and refuse later requests with NOT_COORDINATOR. Group state on
 * disk is untouched (members come back after a restart). Call when the
 * broker starts draining requests, so parked requests do not hold the drain.
 * Any thread; idempotent. */
void sm_group_coord_shutdown(sm_group_coord_t *c);
/* Shut down (if not done yet), wait for a creation of __consumer_offsets
 * in progress, and free everything. Call before the partitions are closed,
 * after the controller thread finished its queue. No other call may run during
 * or after it. */
void sm_group_coord_close(sm_group_coord_t *c);

/* Run every timer due at now (sessions, rebalances, offset expiry,
 * snapshots, loading). The timer thread calls it; tests may too. Returns
 * the next mono deadline. Any thread. */
int64_t sm_group_coord_tick(sm_group_coord_t *c);

/* ------------------------------------------------ handler-facing calls */
/* All: any thread (take the mutex). group ids are NUL-terminated. */

/* Can this broker serve group_id right now? NONE, COORDINATOR_LOAD_IN_PROGRESS
 * (its partition is not loaded yet), COORDINATOR_NOT_AVAILABLE
 * (__consumer_offsets does not exist yet: this starts its creation, like
 * every group call below except describe and list) or NOT_COORDINATOR
 * (shutting down). */
int16_t sm_group_coord_status(sm_group_coord_t *c, const char *group_id);

/* A caller parked until __consumer_offsets exists. Lives in the caller's
 * memory (a request arena) until on_ready has been called. */
typedef struct sm_group_coord_ready sm_group_coord_ready_t;
struct sm_group_coord_ready {
    /* Called once, on the controller thread, without the coordinator mutex
     * (it may call the coordinator again), when the topic was created and
     * loaded or its creation failed; either way the caller asks
     * sm_group_coord_status what to answer. */
    void (*on_ready)(sm_group_coord_ready_t *r);
    sm_group_coord_ready_t *next; /* coordinator-private */
};
/* FindCoordinator for a group: if __consumer_offsets does not exist yet,
 * start its creation (once, however many callers race) and park r: returns
 * true, and r->on_ready will be called - maybe before this returns, so the
 * caller must not touch what on_ready answers after a true. Returns false
 * when the caller should answer now: the topic exists, the broker is
 * stopping, or the last creation failed less than a second ago. */
bool sm_group_coord_await_topic(sm_group_coord_t *c, sm_group_coord_ready_t *r);

/* JoinGroup / SyncGroup: the answer goes to w (maybe before returning). */
void sm_group_coord_join(sm_group_coord_t *c, const char *group_id,
                         const sm_group_join_args_t *a, sm_group_waiter_t *w);
void sm_group_coord_sync(sm_group_coord_t *c, const char *group_id,
                         const sm_group_sync_args_t *a, sm_group_waiter_t *w);
int16_t sm_group_coord_heartbeat(sm_group_coord_t *c, const char *group_id,
                                 const char *member_id, const char *instance_id,
                                 int32_t generation);

typedef struct sm_group_leaver {
    const char *member_id;   /* "" with instance_id: remove that static member */
    const char *instance_id; /* NULL if none */
    int16_t error;           /* out */
} sm_group_leaver_t;
/* LeaveGroup; per-member errors in m[i].error; returns the group-level error. */
int16_t sm_group_coord_leave(sm_group_coord_t *c, const char *group_id, sm_group_leaver_t *m,
                             int32_t n);

typedef struct sm_group_commit_part {
    const char *topic;
    size_t topic_len;
    int32_t partition;
    int64_t offset;
    int32_t leader_epoch;   /* -1 if unknown */
    const char *metadata;   /* NULL = null (stored as "") */
    size_t metadata_len;
    int64_t expire_ms;      /* wall-clock expiry (OffsetCommit v2-4 retention), -1 */
    int16_t error;          /* out */
} sm_group_commit_part_t;
/* OffsetCommit: validates the member/generation, then each partition
 * (unknown topic/partition, metadata too large), appends the good ones in
 * one batch and applies them once it is durable. Errors per part. */
void sm_group_coord_commit(sm_group_coord_t *c, const char *group_id, int32_t generation,
                           const char *member_id, const char *instance_id,
                           sm_group_commit_part_t *parts, int32_t n);

/* TxnOffsetCommit: as sm_group_coord_commit, but the offsets are written as
 * a transactional batch of producer pid/epoch and become the group's only
 * when the transaction commits (sm_group_coord_txn_complete). generation
 * -1 skips the member check (clients before KIP-447). */
void sm_group_coord_txn_commit(sm_group_coord_t *c, const char *group_id, int64_t pid,
                               int16_t epoch, int32_t generation, const char *member_id,
                               const char *instance_id, sm_group_commit_part_t *parts, int32_t n);
/* A COMMIT (commit) or ABORT marker of producer pid was written to
 * partition part of __consumer_offsets: its pending offsets there become
 * visible or go. */
void sm_group_coord_txn_complete(sm_group_coord_t *c, int32_t part, int64_t pid, bool commit);

typedef struct sm_group_fetch_part {
    const char *topic;      /* in: NUL-terminated; out (fetch all): arena copy */
    int32_t partition;
    int64_t offset;         /* out: -1 if none */
    int32_t leader_epoch;   /* out */
    const char *metadata;   /* out: arena copy, "" if none; may hold NUL bytes */
    size_t metadata_len;    /* out: its length (bytes, not up to a NUL) */
    int16_t error;          /* out */
} sm_group_fetch_part_t;
/* OffsetFetch of the listed partitions; returns the group-level error.
 * require_stable (OffsetFetch v7+, read_committed consumers): a partition
 * whose offset a transaction still holds answers UNSTABLE_OFFSET_COMMIT
 * (the consumer retries) instead of the older committed offset. */
int16_t sm_group_coord_fetch(sm_group_coord_t *c, const char *group_id, sm_group_fetch_part_t *p,
                             int32_t n, bool require_stable, sm_arena_t *a);
/* OffsetFetch of every committed partition, sorted by topic then partition. */
int16_t sm_group_coord_fetch_all(sm_group_coord_t *c, const char *group_id, bool require_stable,
                                 sm_arena_t *a, sm_group_fetch_part_t **out, int32_t *n);

typedef struct sm_group_desc_member {
    const char *member_id, *instance_id, *client_id, *client_host;
    size_t client_id_len; /* client_id may hold NUL bytes */
    const uint8_t *metadata;
    int32_t metadata_len;
    const uint8_t *assignment;
    int32_t assignment_len;
} sm_group_desc_member_t;

typedef struct sm_group_desc {
    int16_t error;
    const char *state;         /* "Dead" for an unknown group */
    const char *protocol_type; /* "" if none */
    const char *protocol;      /* selected protocol when Stable, else "" */
    sm_group_desc_member_t *members;
    int32_t nmembers;
} sm_group_desc_t;
/* DescribeGroups of one group; everything copied into a. Without
 * __consumer_offsets: Dead, error NONE (and the topic is not created). */
void sm_group_coord_describe(sm_group_coord_t *c, const char *group_id, sm_arena_t *a,
                             sm_group_desc_t *out);

typedef struct sm_group_listing {
    const char *group_id;
    const char *protocol_type;
    const char *state;
} sm_group_listing_t;
/* ListGroups; state_mask has bit (1 << sm_group_state_t) set for the states
 * to list (0 = all). Copied into a. Without __consumer_offsets: none, error
 * NONE (and the topic is not created). */
int16_t sm_group_coord_list(sm_group_coord_t *c, uint32_t state_mask, sm_arena_t *a,
                            sm_group_listing_t **out, int32_t *n);

/* DeleteGroups of one group: NONE, GROUP_ID_NOT_FOUND, NON_EMPTY_GROUP, ... */
int16_t sm_group_coord_delete(sm_group_coord_t *c, const char *group_id);

typedef struct sm_group_offset_del {
    const char *topic; /* NUL-terminated */
    int32_t partition;
    int16_t error;     /* out */
} sm_group_offset_del_t;
/* OffsetDelete; per-partition errors; returns the group-level error. */
int16_t sm_group_coord_offset_delete(sm_group_coord_t *c, const char *group_id,
                                     sm_group_offset_del_t *p, int32_t n);

/* Expose the configuration in effect (FindCoordinator, tests). */
const sm_group_coord_config_t *sm_group_coord_config(const sm_group_coord_t *c);

#endif
