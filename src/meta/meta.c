/*
 * meta.c - the single-voter controller: validates metadata changes, turns
 * them into metadata records, commits them to the metadata log and publishes
 * the next image (see meta.h).
 *
 * Every operation follows the same path, under the controller lock:
 *
 *   validate against the current image
 *        |  (error -> nothing written)
 *        v
 *   encode records (recs_t)  --validate_only-->  done
 *        v
 *   commit: sm_meta_log_commit (proposed to the metadata quorum; committed once
 *   durable and past its high watermark: meta_quorum.c)
 *        v
 *   apply the same bytes through sm_meta_delta_replay, freeze the image
 *        v
 *   publish: swap m->image under img_lock, call the listener(old, new),
 *   drop the controller's reference to the old image
 *
 * Invariant: the published image always equals "replay of the whole log", so
 * a restart rebuilds exactly what readers saw. If applying committed records
 * fails (which would mean the controller wrote a record its own replay
 * rejects: a bug), the controller stops accepting changes (m->failed).
 *
 * Locks: `lock` serialises operations and listener calls; `img_lock` only
 * guards the image pointer so readers never wait for an fsync.
 */
#define _GNU_SOURCE
#include "meta.h"
#include "placement.h"

#include "log.h"
#include "meta_delta.h"
#include "meta_image_int.h"
#include "meta_log.h"
#include "meta_internal.h"
#include "meta_snapshot.h"
#include "brokers.h"
#include "sm_proto_gen.h"

#include <inttypes.h>
#include <stdio.h>
#include <time.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define TAG "meta"
#define METADATA_VERSION_LEVEL 19 /* Kafka 3.7-IV4 */
#define CONTROLLER_EPOCH 0        /* replay's placeholder; the quorum's epoch replaces it */
#define MAX_PARTITIONS 100000     /* per topic; a limit on everything */

static __thread sm_meta_fail_t t_last_fail;

sm_meta_fail_t sm_meta_last_fail(void) { return t_last_fail; }

static sm_err_t fail(sm_meta_fail_t why, sm_err_t rc, char *errmsg, size_t errlen,
                     const char *fmt, ...) __attribute__((format(printf, 5, 6)));
static sm_err_t fail(sm_meta_fail_t why, sm_err_t rc, char *errmsg, size_t errlen,
                     const char *fmt, ...)
{
    t_last_fail = why;
    if (errmsg && errlen) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(errmsg, errlen, fmt, ap);
        va_end(ap);
    }
    return rc;
}

static void add_topic_rec(recs_t *r, const char *name, const sm_uuid_t *id)
{
    sm_topic_record_t t;
    sm_topic_record_init(&t);
    t.name = sm_str(name);
    t.topic_id = *id;
    RECS_ADD(r, SM_METADATA_TOPIC_RECORD, 0, sm_topic_record, &t);
}

static void add_partition_rec(recs_t *r, const sm_uuid_t *id, int32_t p, int32_t *replicas,
                              int nreplicas)
{
    sm_partition_record_t pr;
    sm_partition_record_init(&pr);
    pr.partition_id = p;
    pr.topic_id = *id;
    pr.replicas = replicas;
    pr.replicas_count = nreplicas;
    pr.isr = replicas;
    pr.isr_count = nreplicas;
    pr.removing_replicas_count = 0;
    pr.adding_replicas_count = 0;
    pr.leader = replicas[0];
    pr.leader_epoch = 0;
    pr.partition_epoch = 0;
    RECS_ADD(r, SM_METADATA_PARTITION_RECORD, 0, sm_partition_record, &pr);
}

void sm_meta_add_config_rec(recs_t *r, int8_t type, const char *resource, const char *key,
                            const char *value)
{
    sm_config_record_t c;
    sm_config_record_init(&c);
    c.resource_type = type;
    c.resource_name = sm_str(resource);
    c.name = sm_str(key);
    c.value = sm_str(value); /* NULL -> null = delete */
    RECS_ADD(r, SM_METADATA_CONFIG_RECORD, 0, sm_config_record, &c);
}

static void add_config_rec(recs_t *r, const char *topic, const char *key, const char *value)
{
    sm_meta_add_config_rec(r, 2 /* TOPIC */, topic, key, value);
}

/* ----------------------------------------------------------- publishing */

sm_meta_image_t *sm_meta_image_get(sm_meta_t *m)
{
    pthread_mutex_lock(&m->img_lock);
    sm_meta_image_t *img = sm_meta_image_keep(m->image);
    pthread_mutex_unlock(&m->img_lock);
    return img;
}

/* Under m->lock: make img current and tell the listener. Takes img's ref. */
static void publish(sm_meta_t *m, sm_meta_image_t *img)
{
    pthread_mutex_lock(&m->img_lock);
    sm_meta_image_t *old = m->image;
    m->image = img;
    pthread_mutex_unlock(&m->img_lock);
    if (m->listener)
        m->listener(m->listener_ctx, old, img);
    sm_meta_image_put(old);
}

/* Under m->lock: apply every committed record the quorum queued (on the
 * active controller: its own commits; elsewhere: what the leader wrote) and
 * publish one new image for them. */
static void quorum_notify(void *ctx);

typedef struct apply_ctx {
    sm_meta_t *m;
    sm_meta_delta_t *d;
    int64_t skip_to; /* records at or below: already in the image (its snapshot) */
} apply_ctx_t;

static sm_err_t apply_cb(void *ctx, int64_t offset, int32_t epoch, const uint8_t *value,
                         size_t len, const char **why)
{
    apply_ctx_t *a = ctx;
    if (offset <= a->skip_to)
        return SM_OK;
    a->m->last_epoch = epoch;
    a->m->snap_pending += (int64_t)len;
    return sm_meta_delta_replay(a->d, offset, value, len, why);
}

/* Under m->lock: the quorum replaced this node's log with the leader's
 * snapshot ending at end: the image becomes that snapshot's. */
static void reload_snapshot_locked(sm_meta_t *m, int64_t end)
{
    char err[512];
    sm_meta_image_t *img = NULL;
    sm_snapshot_id_t id;
    if (sm_meta_snapshot_load(m->snap_dir, m->cluster_id, &img, &id, err, sizeof err) != SM_OK ||
        id.end_offset != end) {
        SM_ERROR(TAG, "cannot load the snapshot %" PRId64 " fetched from the leader: %s; "
                      "refusing further metadata changes",
                 end, err);
        if (img)
            sm_meta_image_put(img);
        m->failed = true;
        return;
    }
    m->last_epoch = id.epoch;
    m->snap_pending = 0;
    __atomic_store_n(&m->snap_written, id.end_offset, __ATOMIC_RELEASE);
    SM_INFO(TAG, "metadata image replaced by the leader's snapshot %" PRId64 "-%d: %d topic(s), "
                 "%d broker(s)",
            id.end_offset, id.epoch, img->ntopics, img->nbrokers);
    publish(m, img);
}

void sm_meta_catch_up_locked(sm_meta_t *m)
{
    int64_t reload_end;
    if (sm_meta_log_take_reload(m->log, &reload_end))
        reload_snapshot_locked(m, reload_end);
    int32_t epoch;
    int32_t leader = sm_meta_log_leader(m->log, &epoch);
    apply_ctx_t a = {m, sm_meta_delta_new(m->image, m->cluster_id, leader, epoch),
                     m->image->offset};
    sm_meta_delta_t *d;
    sm_err_t rc;
    int n = sm_meta_log_drain(m->log, apply_cb, &a, &rc);
    d = a.d;
    if (rc != SM_OK && !m->failed) {
        SM_ERROR(TAG, "a committed metadata record does not apply; refusing further "
                      "metadata changes");
        m->failed = true;
    }
    if (n == 0 && leader == m->image->controller_id && epoch == m->image->epoch) {
        sm_meta_delta_free(d);
        return;
    }
    publish(m, sm_meta_delta_freeze(d));
    if (m->snap_pending >= m->cfg->metadata_snapshot_bytes)
        quorum_notify(m); /* the applier writes the snapshot, off this thread */
}

void sm_meta_lock(sm_meta_t *m)
{
    pthread_mutex_lock(&m->lock);
    sm_meta_catch_up_locked(m);
}

/* Under m->lock: commit recs through the quorum, then apply and publish them. */
sm_err_t sm_meta_commit_locked(sm_meta_t *m, recs_t *r, char *errmsg, size_t errlen)
{
    if (m->failed)
        return fail(SM_META_FAIL_STORAGE, SM_ERR_CLOSED, errmsg, errlen,
                    "the controller stopped after an earlier internal error");
    sm_meta_log_rec_t *lr = sm_xcalloc((size_t)r->n, sizeof *lr);
    size_t start = 0;
    for (int i = 0; i < r->n; i++) {
        lr[i].value = r->buf.mem + start;
        lr[i].len = r->ends[i] - start;
        start = r->ends[i];
    }
    int64_t base;
    sm_err_t rc = sm_meta_log_commit(m->log, lr, r->n, sm_now_wall_ms(), m->commit_timeout_ms,
                                     &base);
    free(lr);
    if (rc == SM_ERR_CLOSED)
        return fail(SM_META_FAIL_NOT_CONTROLLER, rc, errmsg, errlen,
                    "node %d is not the active controller", m->node_id);
    if (rc == SM_ERR_AGAIN)
        return fail(SM_META_FAIL_TIMEOUT, rc, errmsg, errlen,
                    "the metadata quorum did not commit the change within %d ms (no majority "
                    "of controllers reachable?)", m->commit_timeout_ms);
    if (rc)
        return fail(SM_META_FAIL_STORAGE, rc, errmsg, errlen,
                    "cannot write the metadata log: %s", sm_err_str(rc));
    sm_meta_catch_up_locked(m);
    if (m->failed)
        return fail(SM_META_FAIL_STORAGE, SM_ERR_CORRUPT, errmsg, errlen,
                    "internal error: a committed record does not apply");
    return SM_OK;
}

/* ----------------------------------------------------------- open/close */

static void register_self(sm_meta_t *m, recs_t *r)
{
    const sm_config_t *c = m->cfg;
    sm_register_broker_record_t b;
    sm_register_broker_record_init(&b);
    b.broker_id = m->node_id;
    sm_uuid_random(&b.incarnation_id);
    b.broker_epoch = sm_meta_log_end_offset(m->log) + r->n;
    int n = c->nadvertised;
    sm_register_broker_record_broker_endpoint_t *eps = sm_xcalloc((size_t)n + 1, sizeof *eps);
    for (int i = 0; i < n; i++) {
        sm_register_broker_record_broker_endpoint_init(&eps[i]);
        eps[i].name = sm_str(c->advertised[i].name);
        eps[i].host = sm_str(c->advertised[i].host);
        eps[i].port = (uint16_t)c->advertised[i].port;
        eps[i].security_protocol = (int16_t)c->advertised[i].protocol;
    }
    b.end_points = eps;
    b.end_points_count = n;
    sm_register_broker_record_broker_feature_t feat;
    sm_register_broker_record_broker_feature_init(&feat);
    feat.name = sm_str("metadata.version");
    feat.min_supported_version = 1;
    feat.max_supported_version = METADATA_VERSION_LEVEL;
    b.features = &feat;
    b.features_count = 1;
    b.rack = sm_str(c->rack);
    b.fenced = false;
    b.in_controlled_shutdown = false;
    b.log_dirs_count = 0;
    RECS_ADD(r, SM_METADATA_REGISTER_BROKER_RECORD, 1, sm_register_broker_record, &b);
    free(eps);
}

/* Records the first active controller of a new cluster writes. */
static void bootstrap_records(sm_meta_t *m, recs_t *r)
{
    if (m->image->metadata_version == 0) {
        sm_feature_level_record_t f;
        sm_feature_level_record_init(&f);
        f.name = sm_str("metadata.version");
        f.feature_level = METADATA_VERSION_LEVEL;
        RECS_ADD(r, SM_METADATA_FEATURE_LEVEL_RECORD, 0, sm_feature_level_record, &f);
    }
}

/* Under m->lock: this node just became the active controller (of epoch):
 * broker sessions start afresh, and a new cluster gets its first records. */
static void become_active(sm_meta_t *m, int32_t epoch)
{
    m->active_epoch = epoch;
    sm_brokers_free(m->liveness); /* every registered broker gets a full session */
    m->liveness = NULL;
    SM_INFO(TAG, "node %d is the active controller (epoch %d); metadata at offset %" PRId64,
            m->node_id, epoch, m->image->offset);
    recs_t r;
    recs_init(&r);
    bootstrap_records(m, &r);
    if (m->self_managed)
        register_self(m, &r);
    if (r.n) {
        char err[256];
        if (sm_meta_commit_locked(m, &r, err, sizeof err) != SM_OK)
            SM_WARN(TAG, "node %d: first records of epoch %d not written: %s", m->node_id, epoch,
                    err);
    }
    recs_free(&r);
}

static void check_active_locked(sm_meta_t *m)
{
    int32_t epoch;
    if (sm_meta_log_active(m->log, &epoch) && epoch != m->active_epoch)
        become_active(m, epoch);
}

static void quorum_notify(void *ctx)
{
    sm_meta_t *m = ctx;
    pthread_mutex_lock(&m->apply_mu);
    m->apply_pending = true;
    pthread_cond_signal(&m->apply_cv);
    pthread_mutex_unlock(&m->apply_mu);
}

/* Applier thread: write a snapshot of img (its last record has epoch) and
 * drop the older ones. The log itself is kept (see docs/RAFT.md). */
static void take_snapshot(sm_meta_t *m, sm_meta_image_t *img, int32_t epoch)
{
    char err[512];
    int64_t bytes = 0, t0 = sm_now_mono_us();
    if (sm_meta_snapshot_write(m->snap_dir, img, epoch, &bytes, err, sizeof err) != SM_OK) {
        SM_WARN(TAG, "metadata snapshot at offset %" PRId64 " not written: %s", img->offset + 1,
                err);
        return;
    }
    sm_snapshot_id_t id = {img->offset + 1, epoch};
    int removed = sm_meta_snapshot_clean(m->snap_dir, id, sm_meta_log_start(m->log));
    __atomic_store_n(&m->snap_written, id.end_offset, __ATOMIC_RELEASE);
    sm_meta_log_snapshot_taken(m->log, id.end_offset, epoch);
    SM_INFO(TAG, "metadata snapshot %" PRId64 "-%d written: %d topic(s), %d broker(s), %" PRId64
                 " bytes in %.1f ms (%d older file(s) removed)",
            id.end_offset, epoch, img->ntopics, img->nbrokers, bytes,
            (double)(sm_now_mono_us() - t0) / 1000.0, removed);
}

/* The applier: publishes what the quorum commits (what other controllers
 * wrote, on followers and brokers) and notices leadership. */
static void *applier_main(void *arg)
{
    sm_meta_t *m = arg;
    pthread_setname_np(pthread_self(), "samsa-meta");
    pthread_mutex_lock(&m->apply_mu);
    while (!m->apply_stop) {
        if (!m->apply_pending) {
            pthread_cond_wait(&m->apply_cv, &m->apply_mu);
            continue;
        }
        m->apply_pending = false;
        pthread_mutex_unlock(&m->apply_mu);
        pthread_mutex_lock(&m->lock);
        sm_meta_catch_up_locked(m);
        check_active_locked(m);
        sm_meta_image_t *snap = NULL;
        int32_t snap_epoch = m->last_epoch;
        if (m->snap_pending >= m->cfg->metadata_snapshot_bytes && !m->failed &&
            m->image->offset >= 0) {
            snap = sm_meta_image_keep(m->image);
            m->snap_pending = 0;
        }
        pthread_mutex_unlock(&m->lock);
        if (snap) {
            take_snapshot(m, snap, snap_epoch);
            sm_meta_image_put(snap);
        }
        pthread_mutex_lock(&m->apply_mu);
    }
    pthread_mutex_unlock(&m->apply_mu);
    return NULL;
}

sm_err_t sm_meta_open(const sm_config_t *cfg, const char *cluster_id, sm_meta_t **out)
{
    sm_meta_t *m = sm_xcalloc(1, sizeof *m);
    pthread_mutex_init(&m->lock, NULL);
    pthread_mutex_init(&m->img_lock, NULL);
    pthread_mutex_init(&m->apply_mu, NULL);
    pthread_cond_init(&m->apply_cv, NULL);
    m->cfg = cfg;
    m->cluster_id = sm_xstrdup(cluster_id ? cluster_id : "");
    m->node_id = cfg->node_id;
    m->active_epoch = -1;
    bool single = cfg->nvoters == 1 && cfg->voters[0].id == cfg->node_id;
    m->self_managed = single && cfg->role_broker;
    int ft = cfg->quorum_fetch_timeout_ms > 0 ? cfg->quorum_fetch_timeout_ms : 2000;
    m->commit_timeout_ms = 2 * ft > 5000 ? 2 * ft : 5000;
    const char *dir = cfg->metadata_log_dir ? cfg->metadata_log_dir : cfg->log_dirs[0];
    m->snap_dir = sm_xasprintf("%s/__cluster_metadata-0", dir);
    {
        char err[512];
        sm_snapshot_id_t sid;
        int64_t t0 = sm_now_mono_us();
        sm_err_t src = sm_meta_snapshot_load(m->snap_dir, m->cluster_id, &m->image, &sid, err,
                                             sizeof err);
        if (src == SM_OK) {
            m->last_epoch = sid.epoch;
            m->snap_written = sid.end_offset;
            sm_meta_snapshot_clean(m->snap_dir, sid, -1); /* partial files of a crash */
            SM_INFO(TAG, "metadata snapshot %" PRId64 "-%d loaded in %.1f ms: %d topic(s), %d "
                         "broker(s); replaying the log after it",
                    sid.end_offset, sid.epoch, (double)(sm_now_mono_us() - t0) / 1000.0,
                    m->image->ntopics, m->image->nbrokers);
        } else if (src != SM_ERR_NOT_FOUND) {
            SM_ERROR(TAG, "cannot load the metadata snapshot: %s", err);
            m->image = sm_meta_delta_freeze(sm_meta_delta_new(NULL, m->cluster_id, -1, 0));
            sm_meta_close(m);
            return SM_ERR_CORRUPT;
        } else {
            m->image = sm_meta_delta_freeze(sm_meta_delta_new(NULL, m->cluster_id, -1, 0));
        }
    }
    sm_meta_log_voter_t *voters = sm_xcalloc((size_t)cfg->nvoters + 1, sizeof *voters);
    for (int i = 0; i < cfg->nvoters; i++)
        voters[i] = (sm_meta_log_voter_t){cfg->voters[i].id, cfg->voters[i].host,
                                          cfg->voters[i].port};
    sm_meta_log_config_t lc = {
        .parent_dir = dir,
        .segment_bytes = cfg->metadata_log_segment_bytes,
        .node_id = m->node_id,
        .cluster_id = m->cluster_id,
        .voters = voters,
        .nvoters = cfg->nvoters,
        .election_timeout_ms = cfg->quorum_election_timeout_ms,
        .fetch_timeout_ms = cfg->quorum_fetch_timeout_ms,
        .election_backoff_max_ms = cfg->quorum_election_backoff_max_ms,
        .request_timeout_ms = cfg->quorum_request_timeout_ms,
        .append_linger_ms = cfg->quorum_append_linger_ms,
        .retry_backoff_ms = cfg->quorum_retry_backoff_ms,
        .notify = quorum_notify,
        .notify_ctx = m,
        .applied_end = m->image->offset + 1,
        .max_log_bytes = cfg->metadata_max_retention_bytes,
    };
    sm_err_t rc = sm_meta_log_open(&lc, &m->log);
    free(voters);
    if (rc) {
        sm_meta_close(m);
        return rc;
    }
    int64_t log_start = sm_meta_log_start(m->log);
    if (log_start > m->image->offset + 1) {
        /* The records between the image and the log start are gone: the
         * snapshot they were trimmed behind is missing. */
        SM_ERROR(TAG, "%s: the metadata log starts at offset %" PRId64 " but no snapshot reaches "
                      "it (the newest ends at %" PRId64 "); restore the snapshot, or empty this "
                      "directory so the node fetches the metadata from the quorum's leader",
                 m->snap_dir, log_start, m->image->offset + 1);
        sm_meta_close(m);
        return SM_ERR_CORRUPT;
    }
    if (single && cfg->role_controller) {
        /* The only voter elects itself at once; the image is the whole
         * committed log before the node serves anything. */
        rc = sm_meta_log_wait_active(m->log, 60000);
        if (rc != SM_OK) {
            SM_ERROR(TAG, "the metadata quorum (this node alone) did not start: %s",
                     sm_err_str(rc));
            sm_meta_close(m);
            return rc;
        }
        pthread_mutex_lock(&m->lock);
        sm_meta_catch_up_locked(m);
        SM_INFO(TAG, "metadata replayed to offset %" PRId64 ": %d topic(s), %d broker(s)",
                m->image->offset, m->image->ntopics, m->image->nbrokers);
        if (!m->failed)
            check_active_locked(m);
        bool failed = m->failed || m->image->metadata_version == 0;
        pthread_mutex_unlock(&m->lock);
        if (failed) {
            SM_ERROR(TAG, "the metadata log could not be applied or written");
            sm_meta_close(m);
            return SM_ERR_CORRUPT;
        }
    }
    if (pthread_create(&m->applier, NULL, applier_main, m) != 0) {
        sm_meta_close(m);
        return SM_ERR_IO;
    }
    m->applier_running = true;
    *out = m;
    return SM_OK;
}

void sm_meta_close(sm_meta_t *m)
{
    if (!m)
        return;
    if (m->applier_running) {
        pthread_mutex_lock(&m->apply_mu);
        m->apply_stop = true;
        pthread_cond_signal(&m->apply_cv);
        pthread_mutex_unlock(&m->apply_mu);
        pthread_join(m->applier, NULL);
    }
    sm_meta_log_close(m->log);
    sm_meta_image_put(m->image);
    pthread_mutex_destroy(&m->lock);
    pthread_mutex_destroy(&m->img_lock);
    pthread_mutex_destroy(&m->apply_mu);
    pthread_cond_destroy(&m->apply_cv);
    sm_brokers_free(m->liveness);
    free(m->snap_dir);
    free(m->cluster_id);
    free(m);
}

void sm_meta_quorum_deliver(sm_meta_t *m, const sm_raft_msg_t *msg,
                            void (*reply)(void *ctx, const sm_raft_msg_t *resp), void *ctx)
{
    sm_meta_log_deliver(m->log, msg, reply, ctx);
}

int32_t sm_meta_quorum_leader(sm_meta_t *m, int32_t *epoch)
{
    return sm_meta_log_leader(m->log, epoch);
}

bool sm_meta_is_active(sm_meta_t *m) { return sm_meta_log_active(m->log, NULL); }

void sm_meta_resign(sm_meta_t *m) { sm_meta_log_resign(m->log, 100); }

bool sm_meta_self_managed(const sm_meta_t *m) { return m->self_managed; }

void sm_meta_set_listener(sm_meta_t *m, sm_meta_listener_fn fn, void *ctx)
{
    pthread_mutex_lock(&m->lock);
    m->listener = fn;
    m->listener_ctx = ctx;
    if (fn)
        fn(ctx, NULL, m->image);
    pthread_mutex_unlock(&m->lock);
}

/* ------------------------------------------------------------ operations */

/* Kafka rejects names that equal an existing one once '.' and '_' are
 * treated alike (they map to the same metric name). */
static const sm_topic_meta_t *colliding_topic(const sm_meta_image_t *img, const char *name)
{
    for (int i = 0; i < img->ntopics; i++) {
        const char *a = img->topics[i]->name, *b = name;
        while (*a && *b && (*a == *b || ((*a == '.' || *a == '_') && (*b == '.' || *b == '_'))))
            a++, b++;
        if (!*a && !*b)
            return img->topics[i];
    }
    return NULL;
}

static sm_err_t check_configs(const sm_topic_kv_t *configs, int n, char *errmsg, size_t errlen)
{
    for (int i = 0; i < n; i++) {
        char why[256];
        if (!configs[i].key || sm_topic_config_validate(configs[i].key, configs[i].value, why,
                                                        sizeof why) != SM_OK)
            return fail(SM_META_FAIL_CONFIG, SM_ERR_INVALID, errmsg, errlen, "%s",
                        configs[i].key ? why : "config with a null name");
        for (int k = 0; k < i; k++)
            if (strcmp(configs[k].key, configs[i].key) == 0)
                return fail(SM_META_FAIL_CONFIG, SM_ERR_INVALID, errmsg, errlen,
                            "Duplicate config key %s", configs[i].key);
    }
    return SM_OK;
}

/* Replica lists for partitions [first, first + count) of a new or grown
 * topic (rf <= unfenced brokers, checked by the callers): placement.c over
 * the image's brokers, rotated from a random start. *out is count * rf
 * broker ids (malloc'd). */
/* Unfenced brokers the active controller has not heard from since it took
 * over are left out of a placement when enough others can take it: right
 * after a failover a dead broker is still unfenced until its session
 * expires, and a partition placed on it would have no leader. */
static void skip_unheard(const sm_meta_t *m, sm_place_broker_t *b, int n, int rf)
{
    sm_broker_seen_t seen[256];
    int ns = m->liveness ? sm_brokers_list(m->liveness, seen, 256) : 0;
    int usable = 0;
    bool *unheard = sm_xcalloc((size_t)n + 1, sizeof *unheard);
    for (int i = 0; i < n; i++) {
        /* this node's own broker is alive by definition; with no session
         * tracker yet (just took over) nobody else has been heard */
        bool self = b[i].id == m->node_id && m->cfg->role_broker;
        unheard[i] = !self && !m->liveness;
        for (int k = 0; k < ns && !self; k++)
            if (seen[k].id == b[i].id && !seen[k].heard)
                unheard[i] = true;
        usable += !b[i].fenced && !unheard[i];
    }
    if (usable >= rf)
        for (int i = 0; i < n; i++)
            b[i].fenced |= unheard[i];
    free(unheard);
}

static void pick_replicas(const sm_meta_t *m, const sm_meta_image_t *img, int32_t first,
                          int32_t count, int rf, int32_t **out)
{
    sm_place_broker_t *b = sm_xcalloc((size_t)img->nbrokers + 1, sizeof *b);
    for (int i = 0; i < img->nbrokers; i++)
        b[i] = (sm_place_broker_t){.id = img->brokers[i].id, .rack = img->brokers[i].rack,
                                   .fenced = img->brokers[i].fenced};
    skip_unheard(m, b, img->nbrokers, rf);
    uint8_t rnd[8];
    sm_uuid_t u;
    sm_uuid_random(&u);
    memcpy(rnd, u.b, sizeof rnd);
    uint32_t start = (uint32_t)rnd[0] | (uint32_t)rnd[1] << 8 | (uint32_t)rnd[2] << 16;
    uint32_t shift = (uint32_t)rnd[4] | (uint32_t)rnd[5] << 8;
    *out = sm_xcalloc((size_t)(count > 0 ? count : 1) * (size_t)rf, sizeof **out);
    char err[256];
    sm_err_t rc = sm_place_replicas(b, img->nbrokers, first, count, rf, start, shift, *out, err,
                                    sizeof err);
    SM_ASSERT(rc == SM_OK); /* rf was checked against the unfenced brokers */
    free(b);
}

static sm_err_t create_locked(sm_meta_t *m, const char *name, int32_t partitions, int16_t rf,
                              const sm_topic_kv_t *configs, int nconfigs, bool validate_only,
                              bool cap_rf, sm_uuid_t *id_out, char *errmsg, size_t errlen)
{
    const sm_meta_image_t *img = m->image;
    size_t len = name ? strlen(name) : 0;
    sm_err_t rc;
    if ((rc = sm_meta_topic_name_check(name ? name : "", len, errmsg, errlen)))
        return fail(SM_META_FAIL_TOPIC_NAME, rc, NULL, 0, "%s", "");
    if (strcmp(name, "__cluster_metadata") == 0) /* its directory is the metadata log's */
        return fail(SM_META_FAIL_TOPIC_NAME, SM_ERR_INVALID, errmsg, errlen,
                    "Topic name __cluster_metadata is reserved for the cluster metadata log");
    const sm_topic_meta_t *old = sm_meta_image_topic(img, name, len);
    if (old) {
        if (id_out)
            *id_out = old->id;
        return fail(SM_META_FAIL_TOPIC_EXISTS, SM_ERR_EXISTS, errmsg, errlen,
                    "Topic '%s' already exists.", name);
    }
    const sm_topic_meta_t *coll = colliding_topic(img, name);
    if (coll)
        return fail(SM_META_FAIL_TOPIC_NAME, SM_ERR_INVALID, errmsg, errlen,
                    "Topic '%s' collides with existing topic: %s", name, coll->name);
    if (partitions == -1)
        partitions = m->cfg->num_partitions;
    if (partitions < 1 || partitions > MAX_PARTITIONS)
        return fail(SM_META_FAIL_PARTITIONS, SM_ERR_INVALID, errmsg, errlen,
                    "Number of partitions was set to an invalid value %d (must be 1..%d).",
                    partitions, MAX_PARTITIONS);
    if (rf == -1)
        rf = m->cfg->default_replication_factor;
    int live = 0;
    for (int i = 0; i < img->nbrokers; i++)
        live += !img->brokers[i].fenced;
    if (cap_rf && rf > live && live > 0) {
        SM_WARN(TAG, "internal topic %s: replication factor %d capped at %d broker(s)", name, rf,
                live);
        rf = (int16_t)live;
    }
    if (rf < 1)
        return fail(SM_META_FAIL_REPLICATION_FACTOR, SM_ERR_INVALID, errmsg, errlen,
                    "Replication factor must be larger than 0, or -1 to use the default value.");
    if (rf > live)
        return fail(SM_META_FAIL_REPLICATION_FACTOR, SM_ERR_INVALID, errmsg, errlen,
                    "Unable to replicate the partition %d time(s): The target replication factor "
                    "of %d cannot be reached because only %d broker(s) are registered.",
                    rf, rf, live);
    if ((rc = check_configs(configs, nconfigs, errmsg, errlen)))
        return rc;
    sm_uuid_t id;
    do
        sm_uuid_random(&id);
    while (sm_meta_image_topic_by_id(img, &id));
    if (id_out)
        *id_out = id;
    if (validate_only)
        return SM_OK;

    recs_t r;
    recs_init(&r);
    add_topic_rec(&r, name, &id);
    for (int i = 0; i < nconfigs; i++)
        add_config_rec(&r, name, configs[i].key, configs[i].value);
    int32_t *replicas;
    pick_replicas(m, img, 0, partitions, rf, &replicas);
    for (int32_t p = 0; p < partitions; p++)
        add_partition_rec(&r, &id, p, &replicas[(size_t)p * (size_t)rf], rf);
    free(replicas);
    rc = sm_meta_commit_locked(m, &r, errmsg, errlen);
    recs_free(&r);
    if (rc == SM_OK) {
        char idstr[SM_UUID_STR_LEN + 1];
        SM_INFO(TAG, "created topic %s (id %s, %d partition(s), replication factor %d)", name,
                sm_uuid_to_str(&id, idstr), partitions, rf);
    }
    return rc;
}

void sm_meta_set_forwarder(sm_meta_t *m, sm_meta_forward_create_fn fn, void *ctx)
{
    pthread_mutex_lock(&m->lock);
    m->forward_create = fn;
    m->forward_ctx = ctx;
    pthread_mutex_unlock(&m->lock);
}

/* Wait (bounded) until this node's image has topic name; its id to id_out. */
static sm_err_t await_topic(sm_meta_t *m, const char *name, sm_uuid_t *id_out, int timeout_ms)
{
    int64_t deadline = sm_now_mono_ms() + timeout_ms;
    for (;;) {
        sm_meta_lock(m);
        const sm_topic_meta_t *t = sm_meta_image_topic(m->image, name, strlen(name));
        if (t && id_out)
            *id_out = t->id;
        pthread_mutex_unlock(&m->lock);
        if (t)
            return SM_OK;
        if (sm_now_mono_ms() >= deadline)
            return SM_ERR_AGAIN;
        struct timespec ts = {0, 5 * 1000 * 1000};
        nanosleep(&ts, NULL);
    }
}

/* Not the active controller, and a forwarder set: the topic is created by
 * the active controller, then awaited here. Returns false to go local. */
static bool create_forwarded(sm_meta_t *m, const char *name, int32_t partitions, int16_t rf,
                             const sm_topic_kv_t *configs, int nconfigs, sm_uuid_t *id_out,
                             char *errmsg, size_t errlen, sm_err_t *rc)
{
    pthread_mutex_lock(&m->lock);
    sm_meta_forward_create_fn fwd = m->forward_create;
    void *ctx = m->forward_ctx;
    pthread_mutex_unlock(&m->lock);
    if (!fwd || sm_meta_is_active(m))
        return false;
    *rc = fwd(ctx, name, partitions, rf, configs, nconfigs, errmsg, errlen);
    if (*rc == SM_OK || *rc == SM_ERR_EXISTS) {
        sm_err_t w = await_topic(m, name, id_out, m->commit_timeout_ms);
        if (w != SM_OK) {
            snprintf(errmsg, errlen, "topic %s was created but has not reached this node yet",
                     name);
            *rc = w;
        }
    }
    t_last_fail = *rc == SM_OK            ? SM_META_FAIL_NONE
                  : *rc == SM_ERR_EXISTS  ? SM_META_FAIL_TOPIC_EXISTS
                  : *rc == SM_ERR_AGAIN   ? SM_META_FAIL_TIMEOUT
                                          : SM_META_FAIL_CONFIG;
    return true;
}

sm_err_t sm_meta_create_topic(sm_meta_t *m, const char *name, int32_t partitions,
                              int16_t replication_factor, const sm_topic_kv_t *configs,
                              int nconfigs, bool validate_only, sm_uuid_t *id_out, char *errmsg,
                              size_t errlen)
{
    t_last_fail = SM_META_FAIL_NONE;
    sm_meta_lock(m);
    sm_err_t rc = create_locked(m, name, partitions, replication_factor, configs, nconfigs,
                                validate_only, false, id_out, errmsg, errlen);
    pthread_mutex_unlock(&m->lock);
    return rc;
}

sm_err_t sm_meta_auto_create_topic(sm_meta_t *m, const char *name, char *errmsg, size_t errlen)
{
    t_last_fail = SM_META_FAIL_NONE;
    sm_err_t rc;
    if (create_forwarded(m, name, -1, -1, NULL, 0, NULL, errmsg, errlen, &rc))
        return rc;
    return sm_meta_create_topic(m, name, -1, -1, NULL, 0, false, NULL, errmsg, errlen);
}

/* An internal topic's replication factor, capped at the unfenced brokers
 * this node knows of (-1: the default). */
static int16_t capped_rf(sm_meta_t *m, int16_t rf)
{
    if (rf == -1)
        rf = (int16_t)m->cfg->default_replication_factor;
    sm_meta_image_t *img = sm_meta_image_get(m);
    int live = 0;
    for (int i = 0; i < img->nbrokers; i++)
        live += !img->brokers[i].fenced;
    sm_meta_image_put(img);
    if (live > 0 && rf > live)
        rf = (int16_t)live;
    return rf;
}

sm_err_t sm_meta_create_internal_topic(sm_meta_t *m, const char *name, int32_t partitions,
                                       int16_t replication_factor, const sm_topic_kv_t *configs,
                                       int nconfigs, sm_uuid_t *id_out)
{
    char err[512];
    t_last_fail = SM_META_FAIL_NONE;
    sm_err_t rc;
    if (create_forwarded(m, name, partitions, capped_rf(m, replication_factor), configs, nconfigs,
                         id_out, err, sizeof err, &rc)) {
        if (rc == SM_ERR_EXISTS)
            return SM_OK;
        if (rc)
            SM_WARN(TAG, "cannot create internal topic %s through the controller: %s", name, err);
        return rc;
    }
    sm_meta_lock(m);
    rc = create_locked(m, name, partitions, replication_factor, configs, nconfigs, false, true,
                       id_out, err, sizeof err);
    pthread_mutex_unlock(&m->lock);
    if (rc == SM_ERR_EXISTS)
        return SM_OK;
    if (rc)
        SM_ERROR(TAG, "cannot create internal topic %s: %s", name, err);
    return rc;
}

/* The topic named name, or with id when name is NULL. */
static const sm_topic_meta_t *find_topic(const sm_meta_image_t *img, const char *name,
                                         const sm_uuid_t *id)
{
    if (name && !*name)
        name = NULL; /* DeleteTopics v6+ sends an empty/null name with an id */
    const sm_topic_meta_t *t = name ? sm_meta_image_topic(img, name, strlen(name))
                                    : id ? sm_meta_image_topic_by_id(img, id) : NULL;
    if (t && name && id && !sm_uuid_is_zero(*id) && !sm_uuid_eq(&t->id, id))
        return NULL;
    return t;
}

sm_err_t sm_meta_delete_topic(sm_meta_t *m, const char *name, const sm_uuid_t *id_or_NULL,
                              char *errmsg, size_t errlen)
{
    t_last_fail = SM_META_FAIL_NONE;
    if (!m->cfg->delete_topic_enable)
        return fail(SM_META_FAIL_DELETION_DISABLED, SM_ERR_UNSUPPORTED, errmsg, errlen,
                    "Topic deletion is disabled (delete.topic.enable=false).");
    sm_meta_lock(m);
    sm_err_t rc;
    const sm_topic_meta_t *t = find_topic(m->image, name, id_or_NULL);
    if (!t) {
        char idstr[SM_UUID_STR_LEN + 1] = "";
        if (id_or_NULL)
            sm_uuid_to_str(id_or_NULL, idstr);
        rc = fail(SM_META_FAIL_UNKNOWN_TOPIC, SM_ERR_NOT_FOUND, errmsg, errlen,
                  "This server does not host this topic: %s", name && *name ? name : idstr);
    } else {
        recs_t r;
        recs_init(&r);
        sm_remove_topic_record_t rt;
        sm_remove_topic_record_init(&rt);
        rt.topic_id = t->id;
        char *tname = sm_xstrdup(t->name); /* t dies with the old image */
        RECS_ADD(&r, SM_METADATA_REMOVE_TOPIC_RECORD, 0, sm_remove_topic_record, &rt);
        rc = sm_meta_commit_locked(m, &r, errmsg, errlen);
        recs_free(&r);
        if (rc == SM_OK)
            SM_INFO(TAG, "deleted topic %s", tname);
        free(tname);
    }
    pthread_mutex_unlock(&m->lock);
    return rc;
}

sm_err_t sm_meta_create_partitions(sm_meta_t *m, const char *name, int32_t new_total,
                                   bool validate_only, char *errmsg, size_t errlen)
{
    t_last_fail = SM_META_FAIL_NONE;
    sm_meta_lock(m);
    sm_err_t rc = SM_OK;
    const sm_topic_meta_t *t = name ? sm_meta_image_topic(m->image, name, strlen(name)) : NULL;
    if (!t) {
        rc = fail(SM_META_FAIL_UNKNOWN_TOPIC, SM_ERR_NOT_FOUND, errmsg, errlen,
                  "This server does not host this topic: %s", name ? name : "(null)");
    } else if (new_total == t->npartitions) {
        rc = fail(SM_META_FAIL_PARTITIONS, SM_ERR_INVALID, errmsg, errlen,
                  "Topic already has %d partitions.", t->npartitions);
    } else if (new_total < t->npartitions) {
        rc = fail(SM_META_FAIL_PARTITIONS, SM_ERR_INVALID, errmsg, errlen,
                  "Topic currently has %d partitions, which is higher than the requested %d.",
                  t->npartitions, new_total);
    } else if (new_total > MAX_PARTITIONS) {
        rc = fail(SM_META_FAIL_PARTITIONS, SM_ERR_INVALID, errmsg, errlen,
                  "Requested %d partitions; the limit is %d.", new_total, MAX_PARTITIONS);
    } else if (!validate_only) {
        /* same replication factor as the existing partitions */
        int rf = t->npartitions ? t->partitions[0].nreplicas : 1;
        if (rf < 1)
            rf = 1;
        int live = 0;
        for (int i = 0; i < m->image->nbrokers; i++)
            live += !m->image->brokers[i].fenced;
        if (rf > live) {
            rc = fail(SM_META_FAIL_REPLICATION_FACTOR, SM_ERR_INVALID, errmsg, errlen,
                      "Unable to replicate the new partitions %d time(s): only %d broker(s) "
                      "are registered.", rf, live);
            goto out;
        }
        int32_t *replicas;
        recs_t r;
        recs_init(&r);
        pick_replicas(m, m->image, t->npartitions, new_total - t->npartitions, rf, &replicas);
        for (int32_t p = t->npartitions; p < new_total; p++)
            add_partition_rec(&r, &t->id, p,
                              &replicas[(size_t)(p - t->npartitions) * (size_t)rf], rf);
        free(replicas);
        int32_t before = t->npartitions;
        rc = sm_meta_commit_locked(m, &r, errmsg, errlen);
        recs_free(&r);
        if (rc == SM_OK)
            SM_INFO(TAG, "topic %s: partitions %d -> %d", name, before, new_total);
    }
out:
    pthread_mutex_unlock(&m->lock);
    return rc;
}

static bool in_set(const sm_topic_kv_t *set, int n, const char *key)
{
    for (int i = 0; i < n; i++)
        if (strcmp(set[i].key, key) == 0)
            return true;
    return false;
}

sm_err_t sm_meta_alter_topic_configs(sm_meta_t *m, const char *name, const sm_topic_kv_t *set,
                                     int nset, const char *const *del, int ndel, bool replace_all,
                                     bool validate_only, char *errmsg, size_t errlen)
{
    t_last_fail = SM_META_FAIL_NONE;
    sm_err_t rc = check_configs(set, nset, errmsg, errlen);
    if (rc)
        return rc;
    for (int i = 0; i < ndel; i++) {
        if (!del[i] || !sm_topic_config_def(del[i]))
            return fail(SM_META_FAIL_CONFIG, SM_ERR_INVALID, errmsg, errlen,
                        "Unknown topic config name: %s", del[i] ? del[i] : "(null)");
        if (in_set(set, nset, del[i]))
            return fail(SM_META_FAIL_CONFIG, SM_ERR_INVALID, errmsg, errlen,
                        "Config %s is both set and deleted", del[i]);
    }
    sm_meta_lock(m);
    const sm_topic_meta_t *t = name ? sm_meta_image_topic(m->image, name, strlen(name)) : NULL;
    if (!t) {
        rc = fail(SM_META_FAIL_UNKNOWN_TOPIC, SM_ERR_NOT_FOUND, errmsg, errlen,
                  "This server does not host this topic: %s", name ? name : "(null)");
        goto out;
    }
    recs_t r;
    recs_init(&r);
    for (int i = 0; i < nset; i++) {
        const char *cur = sm_meta_topic_config(t, set[i].key);
        if (!cur || strcmp(cur, set[i].value) != 0)
            add_config_rec(&r, name, set[i].key, set[i].value);
    }
    for (int i = 0; i < ndel; i++)
        if (sm_meta_topic_config(t, del[i]))
            add_config_rec(&r, name, del[i], NULL);
    if (replace_all)
        for (int i = 0; i < t->nconfigs; i++)
            if (!in_set(set, nset, t->configs[i].key))
                add_config_rec(&r, name, t->configs[i].key, NULL);
    if (r.n && !validate_only) {
        rc = sm_meta_commit_locked(m, &r, errmsg, errlen);
        if (rc == SM_OK)
            SM_INFO(TAG, "topic %s: %d config change(s)", name, r.n);
    }
    recs_free(&r);
out:
    pthread_mutex_unlock(&m->lock);
    return rc;
}

/* ------------------------------------------------- dynamic broker configs */

/* The node a BROKER resource name denotes: "" = -1 (cluster default), else
 * a decimal id; false when it is neither. */
static bool broker_resource_node(const char *name, int32_t *node)
{
    if (!name || !*name) {
        *node = -1;
        return true;
    }
    int64_t v = 0;
    for (const char *p = name; *p; p++) {
        if (*p < '0' || *p > '9' || p - name >= 10)
            return false;
        v = v * 10 + (*p - '0');
    }
    if (v > INT32_MAX)
        return false;
    *node = (int32_t)v;
    return true;
}

static sm_err_t check_broker_key(const char *key, const char *value, char *errmsg, size_t errlen)
{
    if (!key)
        return fail(SM_META_FAIL_CONFIG, SM_ERR_INVALID, errmsg, errlen,
                    "config with a null name");
    const sm_config_def_t *d = sm_broker_config_def(key);
    if (!d)
        return fail(SM_META_FAIL_CONFIG, SM_ERR_INVALID, errmsg, errlen,
                    "Unknown broker config name: %s", key);
    if (!sm_config_is_dynamic(key))
        return fail(SM_META_FAIL_CONFIG, SM_ERR_INVALID, errmsg, errlen,
                    "Cannot update these configs dynamically: %s (a static broker config in "
                    "Samsa: set it in server.properties and restart)",
                    key);
    char why[256];
    if (value && sm_config_def_check(d, value, why, sizeof why) != SM_OK)
        return fail(SM_META_FAIL_CONFIG, SM_ERR_INVALID, errmsg, errlen, "%s", why);
    return SM_OK;
}

sm_err_t sm_meta_alter_broker_configs(sm_meta_t *m, const char *resource_name,
                                      const sm_config_kv_t *set, int nset,
                                      const char *const *del, int ndel, bool replace_all,
                                      bool validate_only, char *errmsg, size_t errlen)
{
    t_last_fail = SM_META_FAIL_NONE;
    int32_t node;
    if (!broker_resource_node(resource_name, &node))
        return fail(SM_META_FAIL_CONFIG, SM_ERR_INVALID, errmsg, errlen,
                    "Broker resource name must be empty (cluster default) or a node id: %s",
                    resource_name);
    for (int i = 0; i < nset; i++) {
        sm_err_t rc = check_broker_key(set[i].key, set[i].value, errmsg, errlen);
        if (rc)
            return rc;
        if (!set[i].value)
            return fail(SM_META_FAIL_CONFIG, SM_ERR_INVALID, errmsg, errlen,
                        "Null value not supported for %s", set[i].key);
        for (int k = 0; k < i; k++)
            if (strcmp(set[k].key, set[i].key) == 0)
                return fail(SM_META_FAIL_CONFIG, SM_ERR_INVALID, errmsg, errlen,
                            "Duplicate config key %s", set[i].key);
    }
    for (int i = 0; i < ndel; i++) {
        sm_err_t rc = check_broker_key(del[i], NULL, errmsg, errlen);
        if (rc)
            return rc;
        if (in_set(set, nset, del[i]))
            return fail(SM_META_FAIL_CONFIG, SM_ERR_INVALID, errmsg, errlen,
                        "Config %s is both set and deleted", del[i]);
    }
    sm_meta_lock(m);
    const sm_meta_broker_configs_t *cur = NULL;
    for (int i = 0; i < m->image->nbroker_configs && !cur; i++)
        if (m->image->broker_configs[i].node == node)
            cur = &m->image->broker_configs[i];
    const char *res = resource_name ? resource_name : "";
    recs_t r;
    recs_init(&r);
    for (int i = 0; i < nset; i++) {
        const char *v = NULL;
        for (int k = 0; cur && k < cur->n && !v; k++)
            if (strcmp(cur->kv[k].key, set[i].key) == 0)
                v = cur->kv[k].value;
        if (!v || strcmp(v, set[i].value) != 0)
            sm_meta_add_config_rec(&r, 4 /* BROKER */, res, set[i].key, set[i].value);
    }
    for (int i = 0; i < ndel; i++)
        for (int k = 0; cur && k < cur->n; k++)
            if (strcmp(cur->kv[k].key, del[i]) == 0)
                sm_meta_add_config_rec(&r, 4, res, del[i], NULL);
    if (replace_all)
        for (int k = 0; cur && k < cur->n; k++)
            if (!in_set(set, nset, cur->kv[k].key))
                sm_meta_add_config_rec(&r, 4, res, cur->kv[k].key, NULL);
    sm_err_t rc = SM_OK;
    if (r.n && !validate_only) {
        rc = sm_meta_commit_locked(m, &r, errmsg, errlen);
        if (rc == SM_OK)
            SM_INFO(TAG, "broker configs %s: %d dynamic change(s)",
                    node < 0 ? "<cluster default>" : res, r.n);
    }
    recs_free(&r);
    pthread_mutex_unlock(&m->lock);
    return rc;
}

sm_err_t sm_meta_allocate_producer_ids(sm_meta_t *m, int32_t broker_id, int32_t count,
                                       int64_t *first)
{
    t_last_fail = SM_META_FAIL_NONE;
    if (count < 1)
        return SM_ERR_INVALID;
    char err[256];
    sm_meta_lock(m);
    int64_t start = m->image->next_producer_id;
    sm_producer_ids_record_t p;
    sm_producer_ids_record_init(&p);
    p.broker_id = broker_id;
    const sm_broker_meta_t *b = sm_meta_image_broker(m->image, broker_id);
    p.broker_epoch = b ? b->epoch : -1;
    p.next_producer_id = start + count;
    recs_t r;
    recs_init(&r);
    RECS_ADD(&r, SM_METADATA_PRODUCER_IDS_RECORD, 0, sm_producer_ids_record, &p);
    sm_err_t rc = sm_meta_commit_locked(m, &r, err, sizeof err);
    recs_free(&r);
    pthread_mutex_unlock(&m->lock);
    if (rc == SM_OK)
        *first = start;
    return rc;
}
