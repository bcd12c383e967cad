/*
 * coord_internal.h - the coordinator object shared by group_coord.c (API,
 * timers, lifecycle) and coord_store.c (durability: appends, loading,
 * snapshots, offset expiry). Not for use outside src/coord.
 *
 * Everything here is guarded by sm_group_coord.mu unless noted.
 */
#ifndef SM_COORD_INTERNAL_H
#define SM_COORD_INTERNAL_H

#include "coord_records.h"
#include "group_coord.h"
#include "hmap.h"

#include <pthread.h>

/* Bookkeeping for one __consumer_offsets partition. */
typedef struct sm_coord_part {
    bool loaded;                  /* replayed; its groups may be served */
    int64_t bytes_since_snapshot; /* appended since the last restatement */
    int64_t snapshot_bytes;       /* size of the last restatement */
} sm_coord_part_t;

/* Does __consumer_offsets exist? (group_coord.c draws the transitions.) */
typedef enum sm_coord_topic {
    SM_COORD_TOPIC_ABSENT,   /* not created; no group can exist */
    SM_COORD_TOPIC_CREATING, /* a background worker is creating it */
    SM_COORD_TOPIC_PRESENT,  /* exists: partitions load (or are loaded) */
} sm_coord_topic_t;

/* An offset committed inside a transaction (TxnOffsetCommit): in the log,
 * not visible until the transaction's COMMIT marker (coord_txn.c). */
typedef struct sm_coord_txn_offset {
    int64_t pid;
    int32_t part;          /* __consumer_offsets partition */
    char *group;           /* owned */
    char *topic;           /* owned */
    size_t topic_len;
    int32_t partition;
    sm_offset_value_t v;   /* metadata owned */
} sm_coord_txn_offset_t;

struct sm_group_coord {
    sm_coord_host_t host;
    sm_group_coord_config_t cfg;
    pthread_mutex_t mu;
    pthread_cond_t cv;       /* wakes the timer thread */
    pthread_t timer;
    bool timer_started;
    bool stopping;
    int64_t wake_at_ms;      /* mono time the timer thread sleeps until (INT64_MIN: awake) */
    int64_t event_next_ms;   /* earliest deadline events created since the last tick */
    sm_hmap_t groups;        /* group id -> sm_group_t* (owned) */
    sm_group_env_t env;      /* shared by all groups; env.ctx = this */
    sm_coord_part_t *parts;  /* cfg.num_partitions */
    int32_t nunloaded;       /* led partitions still to load */
    int64_t next_expiry_ms;  /* mono time of the next offset-expiry pass */
    sm_coord_topic_t topic;  /* __consumer_offsets' existence */
    sm_group_coord_ready_t *topic_waiters; /* parked until CREATING ends */
    bool create_busy;        /* a creation task is queued or running (close waits) */
    pthread_cond_t idle_cv;  /* signalled when create_busy turns false */
    int64_t create_retry_ms; /* mono: after a failed creation, no new try before */
    sm_coord_txn_offset_t *txn; /* pending transactional offsets */
    int32_t ntxn, txn_cap;
};

sm_group_time_t sm_coord_now(void);

/* The group's partition is loaded? (mutex held) */
bool sm_coord_part_ready(const sm_group_coord_t *c, int32_t part);

/* Append records to a __consumer_offsets partition as one batch and wait for
 * the append to finish; SM_OK once durable in the log. Mutex held. */
SM_MUST_CHECK sm_err_t sm_coord_append(sm_group_coord_t *c, int32_t part,
                                       const sm_coord_kv_t *kvs, int32_t n);

/* The same as one transactional batch of producer pid/epoch. */
SM_MUST_CHECK sm_err_t sm_coord_append_txn(sm_group_coord_t *c, int32_t part,
                                           const sm_coord_kv_t *kvs, int32_t n, int64_t pid,
                                           int16_t epoch);

/* Transactional offsets (coord_txn.c), mutex held: remember one; end a
 * producer's transaction on a partition (commit: the offsets become the
 * group's); is any pending on part (restatement waits); drop all. */
void sm_coord_txn_add(sm_group_coord_t *c, int64_t pid, int32_t part, const char *group,
                      size_t group_len, const char *topic, size_t topic_len, int32_t partition,
                      const sm_offset_value_t *v);
void sm_coord_txn_end(sm_group_coord_t *c, int32_t part, int64_t pid, bool commit,
                      sm_group_time_t now);
bool sm_coord_txn_pending(const sm_group_coord_t *c, int32_t part);
/* Does a transaction hold an offset of group for topic-partition? */
bool sm_coord_txn_pending_offset(const sm_group_coord_t *c, const char *group, const char *topic,
                                 size_t topic_len, int32_t partition);
void sm_coord_txn_clear(sm_group_coord_t *c, int32_t part);

/* env->store: persist g's metadata record. Returns a Kafka error code. */
int16_t sm_coord_store_group(void *ctx, sm_group_t *g, sm_group_time_t now);

/* This node leads partition part of __consumer_offsets, so it coordinates
 * the groups placed there. Mutex held. */
bool sm_coord_part_led(sm_group_coord_t *c, int32_t part);

/* Replay every partition this node leads and has not loaded; unload the
 * ones it no longer leads. Mutex held. */
void sm_coord_load_pending(sm_group_coord_t *c, sm_group_time_t now);

/* Offset expiry and removal of empty groups. Mutex held. */
void sm_coord_expire(sm_group_coord_t *c, sm_group_time_t now);

/* Restate partitions that have grown past their threshold. Mutex held. */
void sm_coord_maybe_snapshot(sm_group_coord_t *c);

/* Remove g from the map and free it (after answering its waiters). */
void sm_coord_group_drop(sm_group_coord_t *c, sm_group_t *g, int16_t error);

/* New, empty group registered in the map. */
sm_group_t *sm_coord_group_create(sm_group_coord_t *c, const char *id, size_t len,
                                  sm_group_time_t now);

#endif
