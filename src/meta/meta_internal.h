/*
 * meta_internal.h - what the controller's files share (src/meta only): the
 * controller object, record lists and the commit step.
 */
#ifndef SM_META_INTERNAL_H
#define SM_META_INTERNAL_H

#include "buf.h"
#include "meta.h"
#include "meta_delta.h"
#include "meta_log.h"
#include "sm_proto_gen.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

typedef struct sm_brokers sm_brokers_t;

struct sm_meta {
    pthread_mutex_t lock;
    pthread_mutex_t img_lock;
    sm_meta_image_t *image; /* guarded by img_lock for readers, lock for writers */
    sm_meta_log_t *log;
    const sm_config_t *cfg;  /* borrowed; outlives m */
    char *cluster_id;
    int32_t node_id;
    sm_meta_listener_fn listener;
    void *listener_ctx;
    sm_meta_forward_create_fn forward_create; /* topic creation on another node's behalf */
    /* snapshots (meta_snapshot.c): applier thread, or under lock */
    char *snap_dir;            /* the metadata log's partition directory */
    int64_t snap_pending;      /* record bytes applied since the last snapshot */
    int32_t last_epoch;        /* leader epoch of the last record applied */
    int64_t snap_written;      /* end offset of the newest snapshot (0: none) */
    void *forward_ctx;
    bool failed;
    sm_brokers_t *liveness; /* registered brokers' sessions (brokers.h) */
    /* Single voter that is also the broker (make run): it registers itself
     * with a record at start and is not tracked by heartbeats. In a cluster
     * every broker registers and heartbeats, the controller's own included. */
    bool self_managed;
    int32_t active_epoch;  /* the quorum epoch this node last became active in */
    int commit_timeout_ms; /* a commit not majority-acknowledged by then fails */
    /* the applier thread: applies what the quorum commits (meta.c) */
    pthread_t applier;
    bool applier_running;
    pthread_mutex_t apply_mu;
    pthread_cond_t apply_cv;
    bool apply_pending, apply_stop;
};

/* Take the controller lock and apply what the quorum committed since. */
void sm_meta_lock(sm_meta_t *m);
/* Under m->lock: apply queued committed records, publish an image. */
void sm_meta_catch_up_locked(sm_meta_t *m);

/* ---------------------------------------------------------- record lists */

/* Record values built in one buffer; ends[i] is where record i stops. */
typedef struct recs {
    sm_wbuf_t buf;
    size_t *ends;
    int n, cap;
} recs_t;

static inline void recs_init(recs_t *r) { memset(r, 0, sizeof *r); sm_wbuf_init(&r->buf); }
static inline void recs_free(recs_t *r)
{
    sm_wbuf_free(&r->buf);
    free(r->ends);
}
static inline void recs_begin(recs_t *r, int type, int version)
{
    sm_wbuf_uvarint(&r->buf, SM_META_FRAME_VERSION);
    sm_wbuf_uvarint(&r->buf, (uint64_t)type);
    sm_wbuf_uvarint(&r->buf, (uint64_t)version);
}
static inline void recs_end(recs_t *r)
{
    if (r->n == r->cap) {
        r->cap = r->cap ? r->cap * 2 : 16;
        r->ends = sm_xrealloc(r->ends, sizeof *r->ends * (size_t)r->cap);
    }
    r->ends[r->n++] = r->buf.len;
}
#define RECS_ADD(r, TYPE, ver, fn, msg)                                                            \
    do {                                                                                           \
        recs_begin((r), (TYPE), (ver));                                                            \
        fn##_encode(&(r)->buf, (ver), (msg));                                                      \
        recs_end(r);                                                                               \
    } while (0)

/* A ConfigRecord (resource type 2 topic, 4 broker; value NULL deletes). */
void sm_meta_add_config_rec(recs_t *r, int8_t type, const char *resource, const char *key,
                            const char *value);

/* A RegisterControllerRecord restating controller c (its endpoints). */
void sm_meta_add_controller_rec(recs_t *r, const sm_broker_meta_t *c);

/* Append r's records to the metadata log, make them durable, apply them and
 * publish the new image. Caller holds m->lock. */
sm_err_t sm_meta_commit_locked(sm_meta_t *m, recs_t *r, char *errmsg, size_t errlen);

/* Reassignment (meta_reassign.c): with the partition's ISR about to be isr,
 * add the record that completes its reassignment if every target replica is
 * in it; true when added. Under the metadata lock. */
bool sm_meta_reassign_try_complete(recs_t *r, const sm_meta_image_t *img,
                                   const sm_topic_meta_t *tm, int32_t p, const int32_t *isr,
                                   int nisr);

/* Commit r if it holds changes, free it and release the metadata lock;
 * 0, or the Kafka error of the failed commit (logged with what). */
int16_t sm_meta_commit_unlock(sm_meta_t *m, recs_t *r, int changes, const char *what);

#endif
