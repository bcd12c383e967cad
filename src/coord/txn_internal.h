/*
 * txn_internal.h - the transaction coordinator object shared by txn_coord.c
 * (state machine, API) and txn_store.c (loading, timers, restatement, topic
 * creation, lifecycle). Not for use outside src/coord.
 *
 * Everything here is guarded by sm_txn_coord.mu unless noted.
 */
#ifndef SM_TXN_INTERNAL_H
#define SM_TXN_INTERNAL_H

#include "hmap.h"
#include "meta.h"
#include "partition/partition.h"
#include "txn_coord.h"

#include <pthread.h>

#define TXN_TAG "txn"

/* One transactional id. */
typedef struct sm_txn {
    char *id; /* owned, NUL-terminated; len bytes */
    size_t len;
    int32_t part;             /* its __transaction_state partition */
    sm_txn_meta_t m;          /* the durable state (memory only: m.last_epoch) */
    bool pending;             /* a write for this id is in flight */
    sm_txn_state_t pending_state;
    /* Prepare*: the markers still to write */
    sm_txn_meta_t mk;         /* partitions without a marker yet (tps only) */
    bool mk_active;           /* markers are being written for m */
    bool mk_inflight;         /* a write_markers call is outstanding */
    bool complete_due;        /* markers done; the Complete record is to (re)try */
    int64_t mk_retry_ms;      /* host clock: next try */
    int64_t mk_backoff_ms;
} sm_txn_t;

/* Bookkeeping for one __transaction_state partition. */
typedef struct sm_txn_part {
    bool loaded;
    int32_t coord_epoch;   /* leader epoch at load: the coordinator epoch */
    uint64_t gen;          /* load generation: ops of an older one are void */
    int32_t npending;      /* writes in flight */
    int64_t bytes_since;   /* appended since the last restatement */
    int64_t snapshot_bytes;
    int64_t restate_start; /* a restatement waits for the ISR: its first offset, -1 */
    int64_t restate_end;
} sm_txn_part_t;

typedef enum sm_txn_topic {
    SM_TXN_TOPIC_ABSENT,
    SM_TXN_TOPIC_CREATING,
    SM_TXN_TOPIC_PRESENT,
} sm_txn_topic_t;

typedef struct sm_txn_act {
    void (*fn)(sm_txn_coord_t *c, void *arg);
    void *arg;
} sm_txn_act_t;

/* Things to do once the mutex is released. */
typedef struct sm_txn_acts {
    sm_txn_act_t *v;
    int n, cap;
} sm_txn_acts_t;

typedef enum sm_txn_wkind {
    SM_TXN_W_INIT,      /* InitProducerId: Empty with a bumped epoch / new id */
    SM_TXN_W_ADD,       /* AddPartitions/AddOffsets: Ongoing */
    SM_TXN_W_END,       /* EndTxn: Prepare*, then markers */
    SM_TXN_W_FENCE,     /* coordinator abort: PrepareAbort with a fenced epoch */
    SM_TXN_W_COMPLETE,  /* markers written: Complete* */
    SM_TXN_W_TOMBSTONE, /* expired id removed */
} sm_txn_wkind_t;

/* A write waiting for the ISR. */
typedef struct sm_txn_wop {
    sm_hw_waiter_t w; /* first: the waiter is the op */
    sm_txn_coord_t *c;
    char *id;
    size_t len;
    int32_t part;
    uint64_t gen;
    sm_txn_wkind_t kind;
    sm_txn_meta_t transit; /* the state once durable */
    void *user;            /* the caller's op, or NULL */
} sm_txn_wop_t;

struct sm_txn_coord {
    sm_txn_host_t host;
    sm_txn_coord_config_t cfg;
    pthread_mutex_t mu;
    pthread_cond_t cv;      /* wakes the timer thread */
    pthread_cond_t idle_cv; /* inflight / create_busy changed */
    pthread_t timer;
    bool timer_started;
    bool timer_wake;
    bool stopping;
    sm_hmap_t txns;         /* id -> sm_txn_t* (owned) */
    sm_txn_part_t *parts;   /* nparts (the topic's count once it exists) */
    int32_t nparts;
    sm_txn_topic_t topic;
    sm_txn_ready_t *topic_waiters;
    bool create_busy;
    int64_t create_retry_ms; /* mono */
    int64_t inflight;        /* write and marker ops not yet finished */
    uint64_t next_gen;
    int64_t next_abort_ms, next_remove_ms; /* host clock */
};

int64_t sm_txn_now(sm_txn_coord_t *c);
void sm_txn_acts_push(sm_txn_acts_t *a, void (*fn)(sm_txn_coord_t *, void *), void *arg);
void sm_txn_acts_run(sm_txn_coord_t *c, sm_txn_acts_t *a);
void sm_txn_inflight_done(sm_txn_coord_t *c);

sm_txn_t *sm_txn_get(sm_txn_coord_t *c, const char *id, size_t len);
sm_txn_t *sm_txn_create(sm_txn_coord_t *c, const char *id, size_t len, int32_t part);
void sm_txn_drop(sm_txn_coord_t *c, sm_txn_t *t);
bool sm_txn_part_led(sm_txn_coord_t *c, int32_t part, int32_t *epoch);
int32_t sm_txn_topic_partitions(sm_txn_coord_t *c, const char *topic);

int16_t sm_txn_append(sm_txn_coord_t *c, int32_t part, const sm_coord_kv_t *kvs, int32_t n,
                      int64_t *base_out, int64_t *end_out);
int16_t sm_txn_write_locked(sm_txn_coord_t *c, sm_txn_t *t, sm_txn_meta_t *transit,
                            sm_txn_wkind_t kind, void *user, sm_txn_acts_t *acts);
int16_t sm_txn_fence_locked(sm_txn_coord_t *c, sm_txn_t *t, void *user, sm_txn_acts_t *acts);
void sm_txn_markers_begin(sm_txn_coord_t *c, sm_txn_t *t, sm_txn_acts_t *acts);
void sm_txn_markers_retry_locked(sm_txn_coord_t *c, sm_txn_t *t, int64_t now,
                                 sm_txn_acts_t *acts);

/* txn_store.c */
void sm_txn_topic_want_locked(sm_txn_coord_t *c);
void sm_txn_wake_locked(sm_txn_coord_t *c);

#endif
