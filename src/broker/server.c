/*
 * server.c - broker lifecycle and the table of hosted partitions.
 *
 * Threads: the main thread runs loop 0, which also accepts connections
 * and handles SIGTERM/SIGINT through a signalfd; loops 1..N-1 run on their
 * own threads; accepted sockets are handed out round-robin with
 * sm_loop_post. Background workers (num.io.threads) run slow work (fsync,
 * deletion) off the loops.
 *
 * Partitions: the controller publishes metadata images; the listener
 * reconcile() opens a log for every partition of the new image this broker
 * hosts and drops partitions whose topic disappeared. The table is guarded
 * by a rwlock; lookups hand out references, and a deleted partition's log
 * is destroyed (directory removed) when its last reference goes.
 *
 * Shutdown: stop accepting, wait (bounded) until every in-flight request is
 * answered, stop the loops, close coordinators and logs (flush + clean
 * marker), close the metadata log.
 */
#define _GNU_SOURCE
#include "server.h"
#include "pid_block.h"
#include "txn_coord.h"
#include "txn_markers.h"
#include "compress.h"
#include "conn.h"
#include "group_coord.h"
#include "hmap.h"
#include "http.h"
#include "metrics.h"
#include "log.h"
#include "loop.h"
#include "meta.h"
#include "ctl_channel.h"
#include "lifecycle.h"
#include "ctl_register.h"
#include "forward.h"
#include "cleaner_mgr.h"
#include "repl/fetcher.h"
#include "meta_props.h"
#include "net.h"
#include "storage/dirlock.h"
#include "storage/log.h"

#include <inttypes.h>

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/signalfd.h>
#include <unistd.h>

typedef struct sm_topic_slot {
    char *name;
    sm_uuid_t id;
    int32_t npartitions;
    sm_partition_t **parts;
} sm_topic_slot_t;

typedef struct sm_bg_task {
    struct sm_bg_task *next;
    void (*fn)(void *);
    void *arg;
} sm_bg_task_t;

/* A FIFO of tasks served by a fixed set of threads. */
typedef struct workq {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    sm_bg_task_t *head, *tail;
    bool stop;
    pthread_t *threads;
    int n;
} workq_t;

typedef struct sm_listen {
    sm_server_t *srv;
    int fd;
    char *name;
    int port;
    bool controller; /* named in controller.listener.names */
    bool deferred;   /* not accepting until the metadata caught up */
} sm_listen_t;

struct sm_server {
    sm_config_t *cfg;
    char cluster_id[64];
    sm_meta_t *meta;
    sm_ctl_channel_t *ctlch;    /* to the active controller (multi-node quorums) */
    sm_lifecycle_t *lifecycle;  /* this broker's registration and heartbeats */
    sm_ctl_register_t *ctlreg;  /* this controller's ControllerRegistration */
    sm_repl_t *repl;            /* follower fetchers and the ISR check (src/repl) */
    sm_group_coord_t *groups;
    sm_pid_block_t *pids;       /* producer ids for InitProducerId (pid_block.h) */
    sm_txn_coord_t *txn;        /* transaction coordinator (src/coord/txn_coord.h) */
    sm_txn_markers_writer_t *markers; /* its marker writer (txn_markers.c) */
    sm_cleaner_mgr_t *cleaner;  /* log cleaner threads (cleaner_mgr.c), NULL when disabled */
    int nloops;
    sm_loop_t **loops;
    int next_loop;
    sm_listen_t *listens;
    int nlistens;
    int sigfd;
    bool shutdown_begun; /* loop 0: SIGTERM seen (controlled shutdown may run first) */
    bool stopping;       /* atomic: listeners closed, new requests dropped */
    int64_t stop_deadline_ms;
    /* hosted partitions */
    pthread_rwlock_t parts_lock;
    sm_hmap_t topics_by_name; /* name -> sm_topic_slot_t */
    sm_hmap_t topics_by_id;   /* 16 raw bytes -> sm_topic_slot_t */
    workq_t bg;  /* background workers: fsync, deletions, loading, write-behind */
    workq_t ctl; /* one thread: metadata changes asked for by clients, in order */
    /* periodic log maintenance (flush.ms, retention) */
    int maint_running; /* atomic: a pass is queued or running */
    int expire_queued; /* atomic: a broker-session expiry pass is queued */
    int64_t next_rebalance_ms; /* controller thread: next preferred-leader pass */
    int64_t next_retention_ms;
    /* the .lock of every log dir (and metadata.log.dir), held until close */
    int *dir_locks;
    int ndir_locks;
    sm_fetch_state_t *fetch; /* purgatories and fetch sessions */
    sm_conn_stats_t conn_stats;
    /* metrics.listener */
    sm_metrics_t *metrics;
    sm_http_server_t *http;
    int ready; /* atomic: 0 starting, 1 serving, 2 shutting down */
};

const sm_config_t *sm_server_config(const sm_server_t *srv) { return srv->cfg; }
sm_ctl_channel_t *sm_server_ctl_channel(sm_server_t *srv) { return srv->ctlch; }
sm_meta_t *sm_server_meta(sm_server_t *srv) { return srv->meta; }
sm_group_coord_t *sm_server_groups(sm_server_t *srv) { return srv->groups; }
sm_pid_block_t *sm_server_pids(sm_server_t *srv) { return srv->pids; }
sm_txn_coord_t *sm_server_txn(sm_server_t *srv) { return srv->txn; }
sm_txn_markers_writer_t *sm_server_txn_markers(sm_server_t *srv) { return srv->markers; }
int32_t sm_server_node_id(const sm_server_t *srv) { return srv->cfg->node_id; }
int sm_server_nloops(const sm_server_t *srv) { return srv->nloops; }
sm_loop_t *sm_server_loop(const sm_server_t *srv, int i) { return srv->loops[i]; }
const char *sm_server_cluster_id(const sm_server_t *srv) { return srv->cluster_id; }
sm_fetch_state_t *sm_server_fetch(sm_server_t *srv) { return srv->fetch; }
sm_conn_stats_t *sm_server_conn_stats(sm_server_t *srv) { return &srv->conn_stats; }
sm_metrics_t *sm_server_metrics(sm_server_t *srv) { return srv->metrics; }

bool sm_server_ready(sm_server_t *srv, const char **reason)
{
    int r = __atomic_load_n(&srv->ready, __ATOMIC_ACQUIRE);
    *reason = r == 0 ? "starting" : r == 2 ? "shutting down" : "ok";
    return r == 1;
}

/* ------------------------------------------------------------ partitions */

static sm_partition_t *slot_get(sm_topic_slot_t *t, int32_t index)
{
    if (!t || index < 0 || index >= t->npartitions || !t->parts[index])
        return NULL;
    sm_partition_t *p = t->parts[index];
    sm_ref_keep(&p->ref);
    return p;
}

sm_partition_t *sm_server_partition(sm_server_t *srv, const char *topic, size_t topic_len,
                                    int32_t index)
{
    pthread_rwlock_rdlock(&srv->parts_lock);
    sm_partition_t *p = slot_get(sm_hmap_get(&srv->topics_by_name, topic, topic_len), index);
    pthread_rwlock_unlock(&srv->parts_lock);
    return p;
}

sm_partition_t *sm_server_partition_by_id(sm_server_t *srv, const sm_uuid_t *topic_id,
                                          int32_t index)
{
    pthread_rwlock_rdlock(&srv->parts_lock);
    sm_partition_t *p =
        slot_get(sm_hmap_get(&srv->topics_by_id, (const char *)topic_id->b, 16), index);
    pthread_rwlock_unlock(&srv->parts_lock);
    return p;
}

/* Background worker: the log's write-behind pass (log.cache.window.bytes). */
static void write_behind_task(void *arg)
{
    sm_partition_t *p = arg;
    sm_partition_write_behind(p);
    sm_partition_put(p);
}

/* The partition layer's hooks into the broker (partition.h). */
static void hook_appended(void *ctx, sm_partition_t *p) { sm_fetch_notify_append(ctx, p); }
static void hook_write_behind(void *ctx, sm_partition_t *p)
{
    sm_server_background(ctx, write_behind_task, p);
}

/* A numeric topic config (override, else the broker's dynamic or static
 * default); fallback if it does not resolve. dyn: the image's dynamic
 * broker config layers for this node (or NULL). */
static int32_t topic_int_config(const sm_config_t *cfg, const sm_config_dynamic_t *dyn,
                                const sm_topic_meta_t *t, const char *key, int32_t fallback)
{
    char buf[32];
    sm_config_source_t src;
    if (sm_topic_config_resolve_dynamic(cfg, dyn, key, t->configs, t->nconfigs, buf, sizeof buf,
                                        &src, NULL) != SM_OK || !buf[0])
        return fallback;
    return (int32_t)strtol(buf, NULL, 10);
}

static void topic_str_config(const sm_config_t *cfg, const sm_config_dynamic_t *dyn,
                             const sm_topic_meta_t *t, const char *key, char *buf, size_t size)
{
    sm_config_source_t src;
    if (sm_topic_config_resolve_dynamic(cfg, dyn, key, t->configs, t->nconfigs, buf, size, &src,
                                        NULL) != SM_OK)
        buf[0] = '\0';
}

/* compression.type -> -1 (producer: keep what was sent) or a codec. */
static int32_t compression_of(const char *name)
{
    static const char *const names[] = {"uncompressed", "gzip", "snappy", "lz4", "zstd"};
    for (int32_t i = 0; i < (int32_t)SM_ARRAY_LEN(names); i++)
        if (strcmp(name, names[i]) == 0)
            return i;
    return -1;
}

/* The topic settings the produce path reads from the partition. */
static void apply_topic_limits(const sm_config_t *cfg, const sm_config_dynamic_t *dyn,
                               const sm_topic_meta_t *t, sm_partition_t *p)
{
    char buf[128];
    topic_str_config(cfg, dyn, t, "compression.type", buf, sizeof buf);
    int32_t codec = compression_of(buf);
    int32_t level = SM_COMPRESS_LEVEL_DEFAULT;
    if (codec == SM_CODEC_GZIP)
        level = topic_int_config(cfg, dyn, t, "compression.gzip.level", -1);
    else if (codec == SM_CODEC_LZ4)
        level = topic_int_config(cfg, dyn, t, "compression.lz4.level", 9);
    else if (codec == SM_CODEC_ZSTD)
        level = topic_int_config(cfg, dyn, t, "compression.zstd.level", 3);
    __atomic_store_n(&p->compression_level, level, __ATOMIC_RELAXED);
    __atomic_store_n(&p->compression, codec, __ATOMIC_RELAXED);
    topic_str_config(cfg, dyn, t, "cleanup.policy", buf, sizeof buf);
    __atomic_store_n(&p->compacted, strstr(buf, "compact") != NULL, __ATOMIC_RELAXED);
    __atomic_store_n(&p->max_message_bytes,
                     topic_int_config(cfg, dyn, t, "max.message.bytes", cfg->message_max_bytes),
                     __ATOMIC_RELAXED);
    __atomic_store_n(&p->min_insync_replicas,
                     topic_int_config(cfg, dyn, t, "min.insync.replicas",
                                      cfg->min_insync_replicas),
                     __ATOMIC_RELAXED);
}

/* cleanup.policy and the cleaner's topic settings (cleaner_mgr.c). */
static void apply_topic_cleanup(const sm_config_t *cfg, const sm_config_dynamic_t *dyn,
                                const sm_topic_meta_t *t, sm_partition_t *p)
{
    char buf[128];
    sm_partition_cleanup_t c = {.delete_ = true, .min_dirty_ratio = 0.5,
                                .max_lag_ms = INT64_MAX, .delete_retention_ms = 86400000};
    if (sm_topic_config_resolve_dynamic(cfg, dyn, "cleanup.policy", t->configs, t->nconfigs, buf,
                                        sizeof buf, NULL, NULL) == SM_OK) {
        c.compact = strstr(buf, "compact") != NULL;
        c.delete_ = strstr(buf, "delete") != NULL;
    }
    if (sm_topic_config_resolve_dynamic(cfg, dyn, "min.cleanable.dirty.ratio", t->configs,
                                        t->nconfigs, buf, sizeof buf, NULL, NULL) == SM_OK &&
        buf[0])
        c.min_dirty_ratio = strtod(buf, NULL);
    struct {
        const char *key;
        int64_t *out;
    } longs[] = {{"min.compaction.lag.ms", &c.min_lag_ms},
                 {"max.compaction.lag.ms", &c.max_lag_ms},
                 {"delete.retention.ms", &c.delete_retention_ms},
                 {"segment.bytes", &c.segment_bytes}};
    c.segment_bytes = 1073741824;
    for (size_t i = 0; i < SM_ARRAY_LEN(longs); i++)
        if (sm_topic_config_resolve_dynamic(cfg, dyn, longs[i].key, t->configs, t->nconfigs, buf,
                                            sizeof buf, NULL, NULL) == SM_OK && buf[0])
            *longs[i].out = strtoll(buf, NULL, 10);
    sm_partition_set_cleanup(p, &c);
}

/* The replica's role and epoch from the image's partition record. */
static void apply_replica_state(sm_server_t *srv, sm_partition_t *p, const sm_partition_meta_t *pm)
{
    sm_partition_set_replicas(p, srv->cfg->node_id, pm->leader, pm->leader_epoch,
                              pm->partition_epoch, pm->replicas, pm->nreplicas, pm->isr, pm->nisr,
                              sm_now_mono_ms());
}

static sm_partition_t *partition_open(sm_server_t *srv, const sm_config_dynamic_t *dyn,
                                      const sm_topic_meta_t *t, int32_t index)
{
    sm_log_config_t lc;
    sm_meta_topic_log_config_dynamic(srv->cfg, dyn, t->configs, t->nconfigs, &lc);
    sm_partition_hooks_t hooks = {.appended = hook_appended,
                                  .write_behind_due = hook_write_behind,
                                  .ctx = srv};
    sm_partition_t *p =
        sm_partition_open(srv->cfg->log_dirs[0], t->name, index, &t->id, &lc, &hooks);
    if (!p)
        return NULL;
    apply_topic_limits(srv->cfg, dyn, t, p);
    apply_topic_cleanup(srv->cfg, dyn, t, p);
    p->producer_expiration_ms = srv->cfg->producer_id_expiration_ms;
    p->verify_txn = srv->cfg->transaction_partition_verification_enable;
    apply_replica_state(srv, p, &t->partitions[index]);
    sm_log_set_flush_histo(p->log, sm_metrics_flush_histo(srv->metrics));
    return p;
}

static void slot_free(sm_topic_slot_t *s, bool deleted)
{
    for (int32_t i = 0; i < s->npartitions; i++) {
        if (s->parts[i]) {
            if (deleted)
                sm_partition_mark_deleted(s->parts[i]);
            sm_partition_put(s->parts[i]);
        }
    }
    free(s->parts);
    free(s->name);
    free(s);
}

/* A partition reconcile() opens after it released parts_lock. */
typedef struct pending_open {
    sm_topic_slot_t *slot;
    const sm_topic_meta_t *t;
    int32_t index;
    sm_partition_t *p;
} pending_open_t;

/* Metadata listener: make the partition table match the new image.
 * Runs on whichever thread published the image, under the controller lock
 * (so reconciles never overlap, and only they add or free topic slots).
 * Opening a new partition creates its directory and files, which can take
 * milliseconds each on a busy file system: that happens after the write
 * lock is released, so produce and fetch on other partitions go on while
 * thousands are created; lookups of a partition still being opened find
 * none (UNKNOWN_TOPIC_OR_PARTITION, which clients retry), and the request
 * that created the topic is answered only after all of them are open. */
static void reconcile(void *ctx, const sm_meta_image_t *old_img, const sm_meta_image_t *img)
{
    sm_server_t *srv = ctx;
    /* Dynamic broker configs (this node's and the cluster default) sit
     * under every topic's overrides: when they changed, every open
     * partition gets its settings recomputed. */
    sm_config_dynamic_t dyn, old_dyn;
    sm_meta_image_dynamic(img, srv->cfg->node_id, &dyn);
    bool dyn_changed = false;
    if (old_img) {
        sm_meta_image_dynamic(old_img, srv->cfg->node_id, &old_dyn);
        dyn_changed = !sm_meta_dynamic_equal(&dyn, &old_dyn);
    }
    pending_open_t *todo = NULL;
    size_t ntodo = 0, captodo = 0;
    sm_partition_t **dropped = NULL;
    size_t ndropped = 0;
    pthread_rwlock_wrlock(&srv->parts_lock);
    /* Topics gone (or re-created with another id): drop them. */
    sm_hmap_entry_t *e = NULL;
    sm_topic_slot_t **gone = NULL;
    size_t ngone = 0;
    while ((e = sm_hmap_next(&srv->topics_by_name, e))) {
        sm_topic_slot_t *s = e->value;
        const sm_topic_meta_t *t = sm_meta_image_topic(img, s->name, strlen(s->name));
        if (!t || memcmp(t->id.b, s->id.b, 16) != 0) {
            gone = sm_xrealloc(gone, sizeof *gone * (ngone + 1));
            gone[ngone++] = s;
        }
    }
    for (size_t i = 0; i < ngone; i++) {
        sm_hmap_del(&srv->topics_by_name, gone[i]->name, strlen(gone[i]->name));
        sm_hmap_del(&srv->topics_by_id, (const char *)gone[i]->id.b, 16);
    }
    /* New topics and partitions. */
    for (int i = 0; i < img->ntopics; i++) {
        const sm_topic_meta_t *t = img->topics[i];
        sm_topic_slot_t *s = sm_hmap_get(&srv->topics_by_name, t->name, strlen(t->name));
        if (!s) {
            s = sm_xcalloc(1, sizeof *s);
            s->name = sm_xstrdup(t->name);
            s->id = t->id;
            sm_hmap_put(&srv->topics_by_name, s->name, strlen(s->name), s);
            sm_hmap_put(&srv->topics_by_id, (const char *)s->id.b, 16, s);
        }
        if (s->npartitions < t->npartitions) {
            s->parts = sm_xrealloc(s->parts, sizeof(*s->parts) * (size_t)t->npartitions);
            for (int32_t j = s->npartitions; j < t->npartitions; j++)
                s->parts[j] = NULL;
            s->npartitions = t->npartitions;
        }
        /* Topic metadata objects are shared between images while unchanged:
         * a different object means its configs (or partitions) may have
         * changed, so apply the topic's storage settings live. */
        const sm_topic_meta_t *old_t =
            old_img ? sm_meta_image_topic(old_img, t->name, strlen(t->name)) : NULL;
        bool reconfigure = (old_t && old_t != t) || dyn_changed;
        sm_log_config_t lc;
        if (reconfigure)
            sm_meta_topic_log_config_dynamic(srv->cfg, &dyn, t->configs, t->nconfigs, &lc);
        for (int32_t j = 0; j < t->npartitions; j++) {
            const sm_partition_meta_t *pm = &t->partitions[j];
            bool replica = false;
            for (int r = 0; r < pm->nreplicas && !replica; r++)
                replica = pm->replicas[r] == srv->cfg->node_id;
            if (!s->parts[j] && replica) {
                if (ntodo == captodo) {
                    captodo = captodo ? 2 * captodo : 64;
                    todo = sm_xrealloc(todo, sizeof *todo * captodo);
                }
                todo[ntodo++] = (pending_open_t){s, t, j, NULL};
            } else if (s->parts[j] && !replica) {
                /* reassigned away: the replica goes, files and all */
                dropped = sm_xrealloc(dropped, sizeof *dropped * (ndropped + 1));
                dropped[ndropped++] = s->parts[j];
                s->parts[j] = NULL;
            } else if (s->parts[j]) {
                apply_replica_state(srv, s->parts[j], &t->partitions[j]);
                if (reconfigure) {
                    sm_log_set_config(s->parts[j]->log, &lc);
                    apply_topic_limits(srv->cfg, &dyn, t, s->parts[j]);
                    apply_topic_cleanup(srv->cfg, &dyn, t, s->parts[j]);
                }
            }
        }
    }
    pthread_rwlock_unlock(&srv->parts_lock);
    /* Deleted topics' files go (with their last reference) outside the lock. */
    for (size_t i = 0; i < ngone; i++) {
        SM_INFO("server", "topic %s deleted", gone[i]->name);
        slot_free(gone[i], true);
    }
    free(gone);
    for (size_t i = 0; i < ndropped; i++) {
        SM_INFO("server", "%s: no longer a replica here; deleting it", dropped[i]->name);
        sm_partition_mark_deleted(dropped[i]);
        sm_partition_put(dropped[i]);
    }
    free(dropped);
    if (!ntodo) {
        sm_repl_refresh(srv->repl);
        if (srv->txn)
            sm_txn_coord_wake(srv->txn);
        return;
    }
    for (size_t i = 0; i < ntodo; i++)
        todo[i].p = partition_open(srv, &dyn, todo[i].t, todo[i].index);
    pthread_rwlock_wrlock(&srv->parts_lock);
    for (size_t i = 0; i < ntodo; i++) {
        sm_partition_t **slot = &todo[i].slot->parts[todo[i].index];
        if (!*slot) {
            *slot = todo[i].p;
        } else if (todo[i].p) { /* cannot happen while reconciles are serialized */
            sm_partition_put(todo[i].p);
        }
    }
    pthread_rwlock_unlock(&srv->parts_lock);
    free(todo);
    sm_repl_refresh(srv->repl);
    if (srv->txn)
        sm_txn_coord_wake(srv->txn);
}

/* ------------------------------------------------------------ background */

static void *workq_main(void *arg)
{
    workq_t *q = arg;
    pthread_mutex_lock(&q->mu);
    for (;;) {
        while (!q->head && !q->stop)
            pthread_cond_wait(&q->cv, &q->mu);
        sm_bg_task_t *t = q->head;
        if (!t)
            break;
        q->head = t->next;
        if (!q->head)
            q->tail = NULL;
        pthread_mutex_unlock(&q->mu);
        t->fn(t->arg);
        free(t);
        pthread_mutex_lock(&q->mu);
    }
    pthread_mutex_unlock(&q->mu);
    return NULL;
}

static void workq_init(workq_t *q)
{
    pthread_mutex_init(&q->mu, NULL);
    pthread_cond_init(&q->cv, NULL);
}

static void workq_start(workq_t *q, int nthreads)
{
    q->n = nthreads;
    q->threads = sm_xcalloc((size_t)nthreads, sizeof *q->threads);
    for (int i = 0; i < nthreads; i++)
        pthread_create(&q->threads[i], NULL, workq_main, q);
}

static void workq_post(workq_t *q, void (*fn)(void *arg), void *arg)
{
    sm_bg_task_t *t = sm_xmalloc(sizeof *t);
    t->next = NULL;
    t->fn = fn;
    t->arg = arg;
    pthread_mutex_lock(&q->mu);
    if (q->tail)
        q->tail->next = t;
    else
        q->head = t;
    q->tail = t;
    pthread_cond_signal(&q->cv);
    pthread_mutex_unlock(&q->mu);
}

/* Let the threads finish what is queued, then join them. */
static void workq_stop(workq_t *q)
{
    pthread_mutex_lock(&q->mu);
    q->stop = true;
    pthread_cond_broadcast(&q->cv);
    pthread_mutex_unlock(&q->mu);
    for (int i = 0; i < q->n; i++)
        pthread_join(q->threads[i], NULL);
    free(q->threads);
    q->threads = NULL;
    q->n = 0;
}

void sm_server_background(sm_server_t *srv, void (*fn)(void *arg), void *arg)
{
    workq_post(&srv->bg, fn, arg);
}

void sm_server_controller(sm_server_t *srv, void (*fn)(void *arg), void *arg)
{
    workq_post(&srv->ctl, fn, arg);
}

/* Background worker, once at start-up: directories of deleted partitions
 * whose removal a stop or crash interrupted. */
static void remove_retired_task(void *arg)
{
    sm_server_t *srv = arg;
    for (int i = 0; i < srv->cfg->nlog_dirs; i++)
        sm_log_remove_retired(srv->cfg->log_dirs[i]);
}

/* ------------------------------------------------------------ maintenance */

/* One maintenance pass, on a background worker: flush logs whose flush.ms
 * elapsed and, every log.retention.check.interval.ms, delete segments past
 * retention. Partitions are collected under the read lock and worked on
 * outside it. */
static void maintenance_pass(void *arg)
{
    sm_server_t *srv = arg;
    int64_t now_mono = sm_now_mono_ms();
    bool retention = now_mono >= srv->next_retention_ms;
    if (retention)
        srv->next_retention_ms = now_mono + srv->cfg->log_retention_check_interval_ms;
    size_t n;
    sm_partition_t **parts = sm_server_partitions(srv, &n);
    int64_t now = sm_now_wall_ms();
    for (size_t i = 0; i < n; i++) {
        sm_partition_maintain(parts[i], now, retention);
        sm_partition_put(parts[i]);
    }
    free(parts);
    __atomic_store_n(&srv->maint_running, 0, __ATOMIC_RELEASE);
}

/* Controller thread: fence the brokers whose heartbeats stopped. */
static void expire_brokers_task(void *arg)
{
    sm_server_t *srv = arg;
    int64_t now = sm_now_mono_ms();
    sm_meta_brokers_expire(srv->meta, now);
    /* auto.leader.rebalance.enable: leaderships back to preferred replicas */
    if (srv->cfg->auto_leader_rebalance_enable && now >= srv->next_rebalance_ms) {
        if (srv->next_rebalance_ms)
            sm_meta_rebalance_leaders(srv->meta);
        srv->next_rebalance_ms = now + srv->cfg->leader_imbalance_check_interval_ms;
    }
    __atomic_store_n(&srv->expire_queued, 0, __ATOMIC_RELEASE);
}

/* Loop 0 timer, every second: queue a maintenance pass unless one runs, and
 * (on a controller) a broker-session expiry pass. */
static void maintenance_tick(void *arg)
{
    sm_server_t *srv = arg;
    if (srv->stopping)
        return;
    if (!__atomic_exchange_n(&srv->maint_running, 1, __ATOMIC_ACQ_REL))
        sm_server_background(srv, maintenance_pass, srv);
    if (srv->cfg->role_controller && !__atomic_exchange_n(&srv->expire_queued, 1, __ATOMIC_ACQ_REL))
        sm_server_controller(srv, expire_brokers_task, srv);
    sm_loop_timer(srv->loops[0], sm_now_mono_ms() + 1000, maintenance_tick, srv);
}

sm_partition_t **sm_server_partitions(sm_server_t *srv, size_t *n_out)
{
    pthread_rwlock_rdlock(&srv->parts_lock);
    size_t n = 0, cap = 64;
    sm_partition_t **parts = sm_xmalloc(sizeof *parts * cap);
    for (sm_hmap_entry_t *e = NULL; (e = sm_hmap_next(&srv->topics_by_name, e));) {
        sm_topic_slot_t *s = e->value;
        for (int32_t i = 0; i < s->npartitions; i++) {
            if (!s->parts[i])
                continue;
            if (n == cap)
                parts = sm_xrealloc(parts, sizeof *parts * (cap *= 2));
            sm_ref_keep(&s->parts[i]->ref);
            parts[n++] = s->parts[i];
        }
    }
    pthread_rwlock_unlock(&srv->parts_lock);
    *n_out = n;
    return parts;
}

/* ------------------------------------------------------------ accepting */

typedef struct handoff {
    sm_server_t *srv;
    int fd;
    const char *listener; /* the listener's name; lives as long as the config */
    bool controller;      /* accepted on a controller listener */
    char peer[64];
} handoff_t;

static void handoff_run(void *arg)
{
    handoff_t *h = arg;
    sm_conn_start(h->srv, sm_loop_current(), h->fd, h->peer, h->listener, h->controller);
    free(h);
}

static void on_accept(void *ctx, uint32_t events)
{
    sm_listen_t *ls = ctx;
    (void)events;
    sm_server_t *srv = ls->srv;
    for (int i = 0; i < 64; i++) {
        handoff_t *h = sm_xmalloc(sizeof *h);
        h->srv = srv;
        h->listener = ls->name;
        h->controller = ls->controller;
        sm_err_t err = sm_net_accept(ls->fd, &h->fd, h->peer, sizeof h->peer);
        if (err != SM_OK) {
            free(h);
            return;
        }
        sm_net_set_buffers(h->fd, srv->cfg->socket_send_buffer_bytes,
                           srv->cfg->socket_receive_buffer_bytes);
        sm_loop_t *l = srv->loops[srv->next_loop++ % srv->nloops];
        sm_loop_post(l, handoff_run, h);
    }
}

/* ------------------------------------------------------------ lifecycle */

static int cpu_count(void)
{
    long n = sysconf(_SC_NPROCESSORS_ONLN);
    return n > 0 ? (int)n : 1;
}

/* The group coordinator's view of this broker (group_coord.h). */
static sm_partition_t *host_offsets_partition(void *ctx, int32_t part)
{
    return sm_server_partition(ctx, SM_GROUP_COORD_TOPIC, sizeof SM_GROUP_COORD_TOPIC - 1, part);
}
static sm_meta_t *host_meta(void *ctx) { return sm_server_meta(ctx); }
static void host_on_controller(void *ctx, void (*fn)(void *), void *arg)
{
    sm_server_controller(ctx, fn, arg);
}

/* The transaction coordinator's view of this broker (txn_coord.h). */
static sm_partition_t *txn_host_state_partition(void *ctx, int32_t part)
{
    return sm_server_partition(ctx, SM_TXN_COORD_TOPIC, sizeof SM_TXN_COORD_TOPIC - 1, part);
}
static int16_t txn_host_alloc_pid(void *ctx, int64_t *pid)
{
    sm_server_t *srv = ctx;
    return sm_pid_get_sync(srv->pids, pid, 10000);
}
static int32_t txn_host_offsets_partitions(void *ctx)
{
    sm_server_t *srv = ctx;
    sm_meta_image_t *img = sm_meta_image_get(srv->meta);
    const sm_topic_meta_t *t =
        sm_meta_image_topic(img, SM_GROUP_COORD_TOPIC, sizeof SM_GROUP_COORD_TOPIC - 1);
    int32_t n = t ? t->npartitions : srv->cfg->offsets_topic_num_partitions;
    sm_meta_image_put(img);
    return n;
}
static void txn_host_write_markers(void *ctx, const sm_txn_markers_t *m,
                                   void (*done)(void *arg, const int16_t *errs), void *arg)
{
    sm_server_t *srv = ctx;
    sm_txn_markers_write(srv->markers, m, done, arg);
}

/* Lock every log dir, and the metadata log's dir when it is another one,
 * before anything in them is read or written (dirlock.h). */
static sm_err_t lock_dirs(sm_server_t *srv, const sm_config_t *cfg, char *err, size_t errlen)
{
    const char **dirs = sm_xcalloc((size_t)cfg->nlog_dirs + 1, sizeof *dirs);
    int n = sm_config_dirs(cfg, dirs, cfg->nlog_dirs + 1);
    srv->dir_locks = sm_xcalloc((size_t)n + 1, sizeof *srv->dir_locks);
    sm_err_t rc = SM_OK;
    for (int i = 0; i < n && rc == SM_OK; i++) {
        rc = sm_dirlock_acquire(dirs[i], &srv->dir_locks[srv->ndir_locks], err, errlen);
        if (rc == SM_OK)
            srv->ndir_locks++;
    }
    free(dirs);
    return rc;
}

sm_err_t sm_server_open(sm_config_t *cfg, sm_server_t **out)
{
    /* Block SIGTERM/SIGINT before any thread exists so every thread inherits
     * the mask and the signals are only seen through loop 0's signalfd. */
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGINT);
    pthread_sigmask(SIG_BLOCK, &set, NULL);
    signal(SIGPIPE, SIG_IGN);

    sm_server_t *srv = sm_xcalloc(1, sizeof *srv);
    srv->cfg = cfg;
    srv->sigfd = -1;
    pthread_rwlock_init(&srv->parts_lock, NULL);
    sm_hmap_init(&srv->topics_by_name);
    sm_hmap_init(&srv->topics_by_id);
    workq_init(&srv->bg);
    workq_init(&srv->ctl);
    srv->nloops = cfg->num_network_threads > 0 ? cfg->num_network_threads : cpu_count();
    srv->metrics = sm_metrics_new(srv->nloops); /* before partitions open: they record fsyncs */

    char err[512];
    if (lock_dirs(srv, cfg, err, sizeof err) != SM_OK) {
        SM_ERROR("server", "%s", err);
        goto fail;
    }
    for (int i = 0; i < cfg->nlog_dirs; i++) {
        char cid[64] = "";
        if (sm_meta_props_ensure(cfg->log_dirs[i], cfg->node_id, i ? srv->cluster_id : NULL, cid,
                                 err, sizeof err) != SM_OK) {
            SM_ERROR("server", "log dir %s: %s", cfg->log_dirs[i], err);
            goto fail;
        }
        if (i == 0)
            snprintf(srv->cluster_id, sizeof srv->cluster_id, "%s", cid);
    }
    if (sm_meta_open(cfg, srv->cluster_id, &srv->meta) != SM_OK) {
        SM_ERROR("server", "cannot open the metadata log");
        goto fail;
    }
    sm_meta_set_listener(srv->meta, reconcile, srv);
    sm_meta_image_t *img = sm_meta_image_get(srv->meta);
    reconcile(srv, NULL, img);
    sm_meta_image_put(img);

    srv->loops = sm_xcalloc((size_t)srv->nloops, sizeof *srv->loops);
    for (int i = 0; i < srv->nloops; i++)
        srv->loops[i] = sm_loop_new(i);
    srv->fetch = sm_fetch_new(srv->nloops, cfg->fetch_session_cache_slots);
    srv->pids = sm_pid_block_new(srv);
    workq_start(&srv->bg, cfg->num_io_threads > 0 ? cfg->num_io_threads : 2);
    workq_start(&srv->ctl, 1);
    sm_server_background(srv, remove_retired_task, srv);
    srv->cleaner = sm_cleaner_mgr_start(srv);

    sm_coord_host_t host = {.offsets_partition = host_offsets_partition,
                            .meta = host_meta,
                            .on_controller = host_on_controller,
                            .ctx = srv};
    if (sm_group_coord_open(cfg, &host, &srv->groups) != SM_OK) {
        SM_ERROR("server", "cannot start the group coordinator");
        goto fail;
    }
    if (cfg->role_broker) {
        srv->markers = sm_txn_markers_new(srv);
        sm_txn_host_t th = {.state_partition = txn_host_state_partition,
                            .meta = host_meta,
                            .on_controller = host_on_controller,
                            .alloc_producer_id = txn_host_alloc_pid,
                            .offsets_partition_count = txn_host_offsets_partitions,
                            .write_markers = txn_host_write_markers,
                            .ctx = srv};
        sm_txn_coord_config_t tc;
        sm_txn_coord_config_from_broker(cfg, &tc);
        if (sm_txn_coord_open(&tc, &th, &srv->txn) != SM_OK ||
            sm_txn_coord_start_timer(srv->txn) != SM_OK) {
            SM_ERROR("server", "cannot start the transaction coordinator");
            goto fail;
        }
    }

    srv->listens = sm_xcalloc((size_t)cfg->nlisteners, sizeof *srv->listens);
    for (int i = 0; i < cfg->nlisteners; i++) {
        const sm_listener_t *l = &cfg->listeners[i];
        sm_listen_t *ls = &srv->listens[srv->nlistens];
        if (sm_net_listen(l->host, l->port, cfg->socket_listen_backlog_size, &ls->fd, &ls->port) !=
            SM_OK) {
            SM_ERROR("server", "listener %s (%s:%d) could not be bound", l->name, l->host, l->port);
            goto fail;
        }
        ls->name = l->name;
        ls->controller = l->controller;
        ls->srv = srv;
        srv->nlistens++;
        /* On a node of a multi-node cluster, clients are accepted only once
         * its metadata has caught up (start_serving_clients): a broker
         * answering from an image that is behind would tell clients that
         * existing topics do not exist. The port is bound meanwhile, so
         * connections wait in the backlog. */
        ls->deferred = !ls->controller && !sm_meta_self_managed(srv->meta) && cfg->role_broker;
        if (!ls->deferred && sm_loop_watch(srv->loops[0], ls->fd, EPOLLIN, on_accept, ls) != SM_OK)
            goto fail;
    }
    if (cfg->metrics_port >= 0) {
        int port = 0;
        if (sm_http_open(cfg->metrics_host, cfg->metrics_port, sm_metrics_http, srv, &srv->http,
                         &port) != SM_OK) {
            SM_ERROR("server", "metrics.listener (http://%s:%d) could not be bound",
                     cfg->metrics_host, cfg->metrics_port);
            goto fail;
        }
        SM_INFO("server", "metrics.listener serving /metrics and /health on http://%s:%d",
                cfg->metrics_host, port);
    }
    *out = srv;
    return SM_OK;
fail:
    sm_server_close(srv);
    return SM_ERR_IO;
}

static void check_drained(void *arg);

/* Loop 0: the deferred client listeners start accepting. */
static void accept_clients(void *arg)
{
    sm_server_t *srv = arg;
    if (srv->stopping)
        return;
    int n = 0;
    for (int i = 0; i < srv->nlistens; i++) {
        sm_listen_t *ls = &srv->listens[i];
        if (!ls->deferred || ls->fd < 0)
            continue;
        ls->deferred = false;
        if (sm_loop_watch(srv->loops[0], ls->fd, EPOLLIN, on_accept, ls) != SM_OK)
            SM_ERROR("server", "listener %s: cannot watch for connections", ls->name);
        else
            n++;
    }
    if (n)
        SM_INFO("server", "broker %d caught up with the metadata log (offset %" PRId64
                          "): accepting clients",
                srv->cfg->node_id, sm_meta_last_offset(srv->meta));
}

/* Controller channel thread: the controller says this broker caught up. */
static void start_serving_clients(void *arg)
{
    sm_server_t *srv = arg;
    sm_loop_post(srv->loops[0], accept_clients, srv);
}

bool sm_server_stopping(const sm_server_t *srv)
{
    return __atomic_load_n(&srv->stopping, __ATOMIC_ACQUIRE);
}

/* Posted to each loop at shutdown. */
static void drain_fetches(void *srv) { sm_fetch_loop_drain(srv, sm_loop_current()); }

static void close_listeners(void *arg);

/* Channel thread: the controller let this broker go (or the wait ended). */
static void controlled_shutdown_done(void *arg)
{
    sm_server_t *srv = arg;
    sm_loop_post(srv->loops[0], close_listeners, srv);
}

static void begin_shutdown(sm_server_t *srv)
{
    if (srv->shutdown_begun)
        return;
    srv->shutdown_begun = true;
    __atomic_store_n(&srv->ready, 2, __ATOMIC_RELEASE); /* /health/ready: 503 */
    if (srv->lifecycle) {
        /* Controlled shutdown first, while still serving everything (the
         * controller may be this very node, and the quorum's followers
         * fetch from it): the controller moves this broker's leaderships
         * off, clients follow them. */
        int32_t t = srv->cfg->broker_session_timeout_ms;
        sm_lifecycle_shutdown(srv->lifecycle, t < 5000 ? t : 5000, controlled_shutdown_done, srv);
        return;
    }
    close_listeners(srv);
}

static void close_listeners(void *arg)
{
    sm_server_t *srv = arg;
    if (srv->stopping)
        return;
    __atomic_store_n(&srv->stopping, true, __ATOMIC_RELEASE);
    /* A quorum leader hands over now, while its peers can still reach it,
     * so the others elect at once instead of after a fetch timeout. */
    if (srv->meta && !sm_meta_self_managed(srv->meta))
        sm_meta_resign(srv->meta);
    SM_INFO("server", "shutting down: no new connections, answering in-flight requests");
    /* Requests read from now on are dropped (sm_server_stopping), so clients
     * that keep polling cannot hold the drain open; fetches parked in the
     * purgatories are answered now with what they have instead of at their
     * deadline. */
    for (int i = 0; i < srv->nloops; i++)
        sm_loop_post(srv->loops[i], drain_fetches, srv);
    /* Produce requests parked for acks=all are answered NOT_LEADER_OR_FOLLOWER:
     * this broker's leaderships have moved (controlled shutdown) or are about to
     * go, and its followers no longer fetch, so the high watermark would not move
     * before the drain's deadline. Left parked they ended in a dropped connection
     * 5 s later, while an idempotent producer had already sent its next batch to
     * the new leader: the new leader, lacking the earlier batch, answered
     * OUT_OF_ORDER_SEQUENCE_NUMBER and librdkafka failed fatally. Answered now,
     * the producer retries the batch at the new leader first. */
    size_t nparts = 0;
    sm_partition_t **parts = sm_server_partitions(srv, &nparts);
    for (size_t i = 0; i < nparts; i++) {
        sm_partition_fail_hw_waiters(parts[i], 6 /* NOT_LEADER_OR_FOLLOWER */);
        sm_partition_put(parts[i]);
    }
    free(parts);
    /* Parked JoinGroup/SyncGroup requests would otherwise hold the drain. */
    sm_group_coord_shutdown(srv->groups);
    if (srv->txn)
        sm_txn_coord_shutdown(srv->txn);
    for (int i = 0; i < srv->nlistens; i++) {
        if (!srv->listens[i].deferred)
            sm_loop_unwatch(srv->loops[0], srv->listens[i].fd);
        close(srv->listens[i].fd);
        srv->listens[i].fd = -1;
    }
    srv->stop_deadline_ms = sm_now_mono_ms() + 5000;
    check_drained(srv);
}

static void check_drained(void *arg)
{
    sm_server_t *srv = arg;
    if (sm_conn_inflight(srv) == 0 || sm_now_mono_ms() >= srv->stop_deadline_ms) {
        if (sm_conn_inflight(srv) > 0)
            SM_WARN("server", "%d requests still in flight at shutdown", sm_conn_inflight(srv));
        for (int i = 0; i < srv->nloops; i++)
            sm_loop_stop(srv->loops[i]);
        return;
    }
    sm_loop_timer(srv->loops[0], sm_now_mono_ms() + 10, check_drained, srv);
}

static void on_signal(void *ctx, uint32_t events)
{
    sm_server_t *srv = ctx;
    (void)events;
    struct signalfd_siginfo si;
    while (read(srv->sigfd, &si, sizeof si) == sizeof si)
        SM_INFO("server", "received signal %u", si.ssi_signo);
    begin_shutdown(srv);
}

/* The replica fetcher's hooks (src/repl/fetcher.h). */
static sm_partition_t **repl_partitions(void *ctx, size_t *n)
{
    return sm_server_partitions(ctx, n);
}

static void repl_ctl_call(void *ctx, int16_t api_key, int16_t api_version, const uint8_t *body,
                          size_t len, int32_t timeout_ms,
                          void (*fn)(void *fctx, sm_err_t err, const uint8_t *body, size_t len),
                          void *fctx)
{
    sm_server_t *srv = ctx;
    sm_ctl_channel_call(srv->ctlch, api_key, api_version, body, len, timeout_ms, fn, fctx);
}

void sm_server_run(sm_server_t *srv)
{
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGINT);
    srv->sigfd = signalfd(-1, &set, SFD_NONBLOCK | SFD_CLOEXEC);
    if (srv->sigfd < 0 || sm_loop_watch(srv->loops[0], srv->sigfd, EPOLLIN, on_signal, srv) != SM_OK)
        SM_WARN("server", "signalfd unavailable: %s", strerror(errno));
    for (int i = 1; i < srv->nloops; i++) {
        if (sm_loop_start_thread(srv->loops[i]) != SM_OK) {
            SM_ERROR("server", "cannot start event loop thread %d", i);
            abort();
        }
    }
    char desc[512] = "";
    size_t n = 0;
    for (int i = 0; i < srv->nlistens; i++)
        n += (size_t)snprintf(desc + n, sizeof desc - n, "%s%s://%s:%d", i ? "," : "",
                              srv->listens[i].name, srv->cfg->listeners[i].host,
                              srv->listens[i].port);
    srv->next_retention_ms = sm_now_mono_ms() + srv->cfg->log_retention_check_interval_ms;
    sm_loop_timer(srv->loops[0], sm_now_mono_ms() + 1000, maintenance_tick, srv);
    if (srv->http && sm_http_start(srv->http) != SM_OK)
        SM_WARN("server", "metrics.listener: cannot start its thread");
    if (!sm_meta_self_managed(srv->meta)) {
        srv->ctlch = sm_ctl_channel_new(srv->cfg, srv->meta);
        if (srv->ctlch)
            sm_forward_install(srv);
        if (srv->ctlch && srv->cfg->role_controller)
            srv->ctlreg = sm_ctl_register_start(srv->cfg, srv->meta, srv->ctlch);
        if (srv->ctlch && srv->cfg->role_broker) {
            sm_repl_hooks_t rh = {.partitions = repl_partitions, .ctl_call = repl_ctl_call,
                                  .ctx = srv};
            srv->repl = sm_repl_start(srv->cfg, srv->meta, &rh);
        }
        if (srv->ctlch && srv->cfg->role_broker)
            srv->lifecycle = sm_lifecycle_start(srv->cfg, srv->meta, srv->ctlch, srv->cluster_id,
                                                start_serving_clients, srv);
    }
    __atomic_store_n(&srv->ready, 1, __ATOMIC_RELEASE);
    SM_INFO("server", "samsa broker %d serving on %s (cluster %s, %d event loops)",
            srv->cfg->node_id, desc, srv->cluster_id, srv->nloops);
    sm_loop_run(srv->loops[0]);
    for (int i = 1; i < srv->nloops; i++)
        sm_loop_join(srv->loops[i]);
}

void sm_server_close(sm_server_t *srv)
{
    if (!srv)
        return;
    /* Scrapes read everything below: the metrics listener goes first. */
    sm_http_close(srv->http);
    srv->http = NULL;
    /* A cleaning in progress gives up at its next batch. */
    sm_cleaner_mgr_stop(srv->cleaner);
    srv->cleaner = NULL;
    /* Metadata changes in flight finish first (they open partitions). */
    workq_stop(&srv->ctl);
    /* No more fetching from leaders (the fetcher also calls the controller). */
    sm_repl_stop(srv->repl);
    srv->repl = NULL;
    /* No more calls to the controller; then hand quorum leadership over. */
    sm_lifecycle_stop(srv->lifecycle);
    sm_ctl_register_stop(srv->ctlreg);
    sm_ctl_channel_free(srv->ctlch);
    srv->ctlch = NULL;
    sm_pid_block_free(srv->pids); /* its waiters were answered by the channel */
    srv->pids = NULL;
    sm_ctl_register_free(srv->ctlreg);
    srv->ctlreg = NULL;
    sm_lifecycle_free(srv->lifecycle);
    srv->lifecycle = NULL;
    if (srv->meta)
        sm_meta_resign(srv->meta);
    if (srv->txn) {
        sm_txn_coord_shutdown(srv->txn);
        sm_txn_markers_stop(srv->markers); /* its close waits for them */
        sm_txn_coord_close(srv->txn);
        srv->txn = NULL;
    }
    sm_txn_markers_free(srv->markers);
    srv->markers = NULL;
    if (srv->groups)
        sm_group_coord_close(srv->groups);
    srv->groups = NULL;
    for (int i = 0; i < srv->nlistens; i++)
        if (srv->listens[i].fd >= 0)
            close(srv->listens[i].fd);
    free(srv->listens);
    /* Drop partitions: flush and mark clean. */
    pthread_rwlock_wrlock(&srv->parts_lock);
    sm_hmap_entry_t *e = NULL;
    while ((e = sm_hmap_next(&srv->topics_by_name, e)))
        slot_free(e->value, false);
    sm_hmap_free(&srv->topics_by_name);
    sm_hmap_free(&srv->topics_by_id);
    pthread_rwlock_unlock(&srv->parts_lock);
    if (srv->meta)
        sm_meta_close(srv->meta);
    /* Background workers finish queued work, then exit. */
    workq_stop(&srv->bg);
    for (int i = 0; srv->loops && i < srv->nloops; i++) /* none yet if start-up failed early */
        sm_loop_free(srv->loops[i]);
    sm_fetch_free(srv->fetch);
    srv->fetch = NULL;
    free(srv->loops);
    if (srv->sigfd >= 0)
        close(srv->sigfd);
    /* Last: every file in the dirs is closed and synced by now. */
    for (int i = 0; i < srv->ndir_locks; i++)
        sm_dirlock_release(srv->dir_locks[i]);
    free(srv->dir_locks);
    sm_metrics_free(srv->metrics);
    free(srv);
}
