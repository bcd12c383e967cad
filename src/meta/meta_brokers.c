/*
 * meta_brokers.c - the controller's side of the broker lifecycle: the
 * BrokerRegistration, BrokerHeartbeat and UnregisterBroker requests and
 * session expiry, turned into metadata records.
 *
 * brokers.c decides (the state machine drawn in brokers.h); this file writes
 * what it decides to the metadata log, in one commit each:
 *   register        RegisterBrokerRecord (fenced), epoch = its offset
 *   unfence         UnfenceBrokerRecord, and leaders for the partitions that
 *                   had none and keep this broker in their ISR
 *   fence / expire  FenceBrokerRecord, and PartitionChangeRecords taking the
 *                   broker out of every ISR it is in (unless it is the last
 *                   member) and giving its leaderships to the next in-sync,
 *                   unfenced replica (or none: the partition is offline)
 *   begin shutdown  BrokerRegistrationChangeRecord (in controlled shutdown),
 *                   the same leader moves; the heartbeat that sees its
 *                   metadata reach that commit is told to shut down
 *   unregister      UnregisterBrokerRecord
 * The broker this process is (combined mode) registers itself at start and
 * is not tracked: it lives exactly as long as the controller does.
 *
 * Threads: any, serialised on the controller lock like every metadata
 * change (the broker runs them on its controller thread).
 */
#include "brokers.h"
#include "log.h"
#include "meta_internal.h"
#include "raft.h"

#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#define TAG "meta"
#define KERR_INCONSISTENT_CLUSTER_ID 104
#define KERR_DUPLICATE_BROKER_REGISTRATION 101
#define KERR_KAFKA_STORAGE_ERROR 56
#define KERR_INVALID_REQUEST 42
#define KERR_NOT_CONTROLLER 41

/* The session tracker, made on first use from the image's registrations
 * (a controller that just started gives every broker a full session). */
static sm_brokers_t *liveness(sm_meta_t *m)
{
    if (!m->liveness) {
        m->liveness = sm_brokers_new(m->cfg->broker_session_timeout_ms);
        int64_t now = sm_now_mono_ms();
        for (int i = 0; i < m->image->nbrokers; i++) {
            const sm_broker_meta_t *b = &m->image->brokers[i];
            if (!(m->self_managed && b->id == m->node_id))
                sm_brokers_restore(m->liveness, b->id, b->epoch, b->fenced, now);
        }
    }
    return m->liveness;
}

/* The Kafka code for a failed commit. */
static int16_t commit_kerr(void)
{
    sm_meta_fail_t f = sm_meta_last_fail();
    return f == SM_META_FAIL_NOT_CONTROLLER ? KERR_NOT_CONTROLLER
           : f == SM_META_FAIL_TIMEOUT      ? 7  /* REQUEST_TIMED_OUT */
                                            : KERR_KAFKA_STORAGE_ERROR;
}

int16_t sm_meta_commit_unlock(sm_meta_t *m, recs_t *r, int changes, const char *what)
{
    sm_err_t rc = SM_OK;
    char why[256] = "";
    if (changes)
        rc = sm_meta_commit_locked(m, r, why, sizeof why);
    recs_free(r);
    pthread_mutex_unlock(&m->lock);
    if (rc == SM_OK)
        return 0;
    SM_WARN(TAG, "%s: metadata change failed: %s", what, why);
    return commit_kerr();
}

static bool usable(const sm_meta_image_t *img, int32_t id, int32_t leaving)
{
    if (id == leaving)
        return false;
    const sm_broker_meta_t *b = sm_meta_image_broker(img, id);
    return b && !b->fenced && !b->in_controlled_shutdown;
}

static bool contains(const int32_t *v, int n, int32_t id)
{
    for (int i = 0; i < n; i++)
        if (v[i] == id)
            return true;
    return false;
}

/* unclean.leader.election.enable for the topic (its override, else the
 * broker's setting). */
static bool unclean_allowed(const sm_meta_t *m, const sm_topic_meta_t *tm)
{
    const char *v = sm_meta_topic_config(tm, "unclean.leader.election.enable");
    return v ? strcmp(v, "true") == 0 : m->cfg->unclean_leader_election_enable;
}

/* A usable replica outside the ISR for an unclean election (-1: none); the
 * records only the old ISR had are lost, which is logged. */
static int32_t unclean_pick(const sm_meta_t *m, const sm_topic_meta_t *tm, int32_t p,
                            int32_t leaving)
{
    const sm_partition_meta_t *pm = &tm->partitions[p];
    if (!unclean_allowed(m, tm))
        return -1;
    for (int i = 0; i < pm->nreplicas; i++)
        if (usable(m->image, pm->replicas[i], leaving)) {
            SM_WARN(TAG, "%s-%d: unclean leader election: broker %d, not in the ISR, leads; "
                         "records only the old ISR had are lost",
                    tm->name, p, pm->replicas[i]);
            return pm->replicas[i];
        }
    return -1;
}

/* PartitionChangeRecords moving every leadership of `gone` to another
 * in-sync, usable replica and taking it out of the ISRs (never emptying
 * one); with no such replica the partition has no leader, unless unclean
 * election is enabled for the topic. *moved counts leaderships moved or
 * lost. */
static void add_moves_off(const sm_meta_t *m, int32_t gone, recs_t *r, int *moved)
{
    const sm_meta_image_t *img = m->image;
    int32_t *isr = NULL;
    int cap = 0;
    for (int t = 0; t < img->ntopics; t++) {
        const sm_topic_meta_t *tm = img->topics[t];
        for (int32_t p = 0; p < tm->npartitions; p++) {
            const sm_partition_meta_t *pm = &tm->partitions[p];
            bool leads = pm->leader == gone, in_isr = contains(pm->isr, pm->nisr, gone);
            if (!leads && !in_isr)
                continue;
            if (pm->nisr + 1 > cap) {
                cap = pm->nisr + 1;
                isr = sm_xrealloc(isr, sizeof *isr * (size_t)cap);
            }
            int n = 0;
            for (int i = 0; i < pm->nisr; i++)
                if (pm->isr[i] != gone)
                    isr[n++] = pm->isr[i];
            sm_partition_change_record_t c;
            sm_partition_change_record_init(&c);
            c.topic_id = tm->id;
            c.partition_id = p;
            if (n > 0) { /* the last in-sync replica stays in the ISR, as in Kafka */
                c.isr = isr;
                c.isr_count = n;
            }
            if (leads) {
                c.leader = -1;
                for (int i = 0; i < pm->nreplicas && c.leader == -1; i++)
                    if (contains(isr, n, pm->replicas[i]) && usable(img, pm->replicas[i], gone))
                        c.leader = pm->replicas[i];
                if (c.leader == -1 && (c.leader = unclean_pick(m, tm, p, gone)) >= 0) {
                    isr[0] = c.leader;
                    c.isr = isr;
                    c.isr_count = 1;
                }
                (*moved)++;
            }
            if (c.isr_count <= 0 && !leads)
                continue;
            RECS_ADD(r, SM_METADATA_PARTITION_CHANGE_RECORD, 0, sm_partition_change_record, &c);
        }
    }
    free(isr);
}

/* Leaders for offline partitions whose ISR holds `back` (or, with unclean
 * election enabled, that `back` is a replica of). */
static void add_leaders_for(const sm_meta_t *m, int32_t back, recs_t *r, int *elected)
{
    const sm_meta_image_t *img = m->image;
    for (int t = 0; t < img->ntopics; t++) {
        const sm_topic_meta_t *tm = img->topics[t];
        for (int32_t p = 0; p < tm->npartitions; p++) {
            const sm_partition_meta_t *pm = &tm->partitions[p];
            if (pm->leader >= 0)
                continue;
            bool clean = contains(pm->isr, pm->nisr, back);
            if (!clean && !(contains(pm->replicas, pm->nreplicas, back) && unclean_allowed(m, tm)))
                continue;
            sm_partition_change_record_t c;
            sm_partition_change_record_init(&c);
            c.topic_id = tm->id;
            c.partition_id = p;
            c.leader = back;
            int32_t only[1] = {back};
            if (!clean) {
                SM_WARN(TAG, "%s-%d: unclean leader election: broker %d, not in the ISR, leads; "
                             "records only the old ISR had are lost",
                        tm->name, p, back);
                c.isr = only;
                c.isr_count = 1;
            }
            RECS_ADD(r, SM_METADATA_PARTITION_CHANGE_RECORD, 0, sm_partition_change_record, &c);
            (*elected)++;
        }
    }
}

static void add_fence(recs_t *r, int32_t id, int64_t epoch)
{
    sm_fence_broker_record_t f;
    sm_fence_broker_record_init(&f);
    f.id = id;
    f.epoch = epoch;
    RECS_ADD(r, SM_METADATA_FENCE_BROKER_RECORD, 0, sm_fence_broker_record, &f);
}

int16_t sm_meta_broker_register(sm_meta_t *m, const sm_meta_broker_reg_t *reg, int64_t now_ms,
                                int64_t *epoch_out)
{
    *epoch_out = -1;
    if (reg->cluster_id && strcmp(reg->cluster_id, m->cluster_id) != 0) {
        SM_WARN(TAG, "broker %d registered with cluster id %s, this cluster is %s: refused",
                reg->id, reg->cluster_id, m->cluster_id);
        return KERR_INCONSISTENT_CLUSTER_ID;
    }
    if (reg->id < 0 || reg->nlisteners < 0 || reg->nlisteners > 64)
        return KERR_INVALID_REQUEST;
    if (m->self_managed && reg->id == m->node_id)
        return KERR_DUPLICATE_BROKER_REGISTRATION; /* this process is that broker */
    if (!sm_meta_is_active(m))
        return KERR_NOT_CONTROLLER; /* the broker asks the next controller it hears of */
    sm_meta_lock(m);
    int64_t epoch = sm_meta_log_end_offset(m->log);
    int16_t err = sm_brokers_register(liveness(m), reg->id, reg->incarnation.b, epoch, now_ms);
    if (err) {
        pthread_mutex_unlock(&m->lock);
        return err;
    }
    sm_register_broker_record_t b;
    sm_register_broker_record_init(&b);
    b.broker_id = reg->id;
    b.incarnation_id = reg->incarnation;
    b.broker_epoch = epoch;
    sm_register_broker_record_broker_endpoint_t *eps =
        sm_xcalloc((size_t)reg->nlisteners + 1, sizeof *eps);
    for (int i = 0; i < reg->nlisteners; i++) {
        sm_register_broker_record_broker_endpoint_init(&eps[i]);
        eps[i].name = reg->listeners[i].name;
        eps[i].host = reg->listeners[i].host;
        eps[i].port = reg->listeners[i].port;
        eps[i].security_protocol = reg->listeners[i].security_protocol;
    }
    b.end_points = eps;
    b.end_points_count = reg->nlisteners;
    b.rack = reg->rack;
    b.fenced = true;
    b.in_controlled_shutdown = false;
    recs_t r;
    recs_init(&r);
    RECS_ADD(&r, SM_METADATA_REGISTER_BROKER_RECORD, 1, sm_register_broker_record, &b);
    char why[256];
    sm_err_t rc = sm_meta_commit_locked(m, &r, why, sizeof why);
    recs_free(&r);
    free(eps);
    if (rc != SM_OK) {
        sm_brokers_unregister(m->liveness, reg->id);
        pthread_mutex_unlock(&m->lock);
        SM_WARN(TAG, "registration of broker %d failed: %s", reg->id, why);
        return commit_kerr();
    }
    pthread_mutex_unlock(&m->lock);
    SM_INFO(TAG, "broker %d registered (epoch %" PRId64 "), fenced until it catches up", reg->id,
            epoch);
    *epoch_out = epoch;
    return 0;
}

int16_t sm_meta_broker_heartbeat(sm_meta_t *m, int32_t id, int64_t epoch, int64_t metadata_offset,
                                 bool want_fence, bool want_shutdown, int64_t now_ms,
                                 sm_broker_hb_reply_t *reply)
{
    if (!sm_meta_is_active(m)) {
        *reply = (sm_broker_hb_reply_t){.error = KERR_NOT_CONTROLLER, .is_fenced = true};
        return KERR_NOT_CONTROLLER;
    }
    sm_meta_lock(m);
    sm_broker_action_t act = sm_brokers_heartbeat(liveness(m), id, epoch, metadata_offset,
                                                  want_fence, want_shutdown, now_ms, reply);
    if (act == SM_BROKER_ACT_NONE || reply->error) {
        pthread_mutex_unlock(&m->lock);
        return reply->error;
    }
    recs_t r;
    recs_init(&r);
    int moved = 0;
    const char *what = "";
    switch (act) {
    case SM_BROKER_ACT_UNFENCE: {
        sm_unfence_broker_record_t u;
        sm_unfence_broker_record_init(&u);
        u.id = id;
        u.epoch = epoch;
        RECS_ADD(&r, SM_METADATA_UNFENCE_BROKER_RECORD, 0, sm_unfence_broker_record, &u);
        add_leaders_for(m, id, &r, &moved);
        what = "unfenced";
        break;
    }
    case SM_BROKER_ACT_FENCE:
        add_fence(&r, id, epoch);
        add_moves_off(m, id, &r, &moved);
        what = reply->should_shutdown ? "shut down (controlled)" : "fenced at its request";
        break;
    case SM_BROKER_ACT_BEGIN_SHUTDOWN: {
        sm_broker_registration_change_record_t c;
        sm_broker_registration_change_record_init(&c);
        c.broker_id = id;
        c.broker_epoch = epoch;
        c.fenced = -1;
        c.in_controlled_shutdown = 1;
        RECS_ADD(&r, SM_METADATA_BROKER_REGISTRATION_CHANGE_RECORD, 1,
                 sm_broker_registration_change_record, &c);
        add_moves_off(m, id, &r, &moved);
        what = "in controlled shutdown";
        break;
    }
    case SM_BROKER_ACT_NONE:
        break;
    }
    char why[256];
    sm_err_t rc = sm_meta_commit_locked(m, &r, why, sizeof why);
    recs_free(&r);
    if (rc == SM_OK && act == SM_BROKER_ACT_BEGIN_SHUTDOWN)
        sm_brokers_shutdown_offset(m->liveness, id, m->image->offset);
    pthread_mutex_unlock(&m->lock);
    if (rc != SM_OK) {
        SM_WARN(TAG, "broker %d: metadata change failed: %s", id, why);
        reply->error = commit_kerr();
        return reply->error;
    }
    SM_INFO(TAG, "broker %d %s (%d partition leadership(s) %s)", id, what, moved,
            act == SM_BROKER_ACT_UNFENCE ? "elected" : "moved or lost");
    return 0;
}

int sm_meta_brokers_expire(sm_meta_t *m, int64_t now_ms)
{
    int32_t ids[64];
    if (!sm_meta_is_active(m))
        return 0; /* only the active controller keeps broker sessions */
    sm_meta_lock(m);
    int n = sm_brokers_expire(liveness(m), now_ms, ids, 64);
    int fenced = 0;
    for (int i = 0; i < n; i++) {
        const sm_broker_meta_t *b = sm_meta_image_broker(m->image, ids[i]);
        if (!b || b->fenced)
            continue;
        recs_t r;
        recs_init(&r);
        int moved = 0;
        add_fence(&r, ids[i], b->epoch);
        add_moves_off(m, ids[i], &r, &moved);
        char why[256];
        sm_err_t rc = sm_meta_commit_locked(m, &r, why, sizeof why);
        recs_free(&r);
        if (rc == SM_OK) {
            fenced++;
            SM_WARN(TAG, "broker %d fenced: no heartbeat for %" PRId64 " ms (%d partition "
                         "leadership(s) moved or lost)",
                    ids[i], (int64_t)m->cfg->broker_session_timeout_ms, moved);
        } else {
            SM_WARN(TAG, "broker %d: fencing failed: %s", ids[i], why);
        }
    }
    pthread_mutex_unlock(&m->lock);
    return fenced;
}

int16_t sm_meta_broker_unregister(sm_meta_t *m, int32_t id)
{
    sm_meta_lock(m);
    const sm_broker_meta_t *b = sm_meta_image_broker(m->image, id);
    if (!b || (m->self_managed && id == m->node_id)) {
        pthread_mutex_unlock(&m->lock);
        return b ? KERR_INVALID_REQUEST : 109; /* BROKER_ID_NOT_REGISTERED */
    }
    recs_t r;
    recs_init(&r);
    int moved = 0;
    if (!b->fenced) {
        add_fence(&r, id, b->epoch);
        add_moves_off(m, id, &r, &moved);
    }
    sm_unregister_broker_record_t u;
    sm_unregister_broker_record_init(&u);
    u.broker_id = id;
    u.broker_epoch = b->epoch;
    RECS_ADD(&r, SM_METADATA_UNREGISTER_BROKER_RECORD, 0, sm_unregister_broker_record, &u);
    char why[256];
    sm_err_t rc = sm_meta_commit_locked(m, &r, why, sizeof why);
    recs_free(&r);
    if (rc == SM_OK && m->liveness)
        sm_brokers_unregister(m->liveness, id);
    pthread_mutex_unlock(&m->lock);
    if (rc != SM_OK)
        return commit_kerr();
    SM_INFO(TAG, "broker %d unregistered", id);
    return 0;
}

void sm_meta_add_controller_rec(recs_t *r, const sm_broker_meta_t *c)
{
    sm_register_controller_record_t rec;
    sm_register_controller_record_init(&rec);
    rec.controller_id = c->id;
    sm_register_controller_record_controller_endpoint_t *eps =
        sm_xcalloc((size_t)c->nendpoints + 1, sizeof *eps);
    for (int i = 0; i < c->nendpoints; i++) {
        sm_register_controller_record_controller_endpoint_init(&eps[i]);
        eps[i].name = sm_str(c->endpoints[i].name);
        eps[i].host = sm_str(c->endpoints[i].host);
        eps[i].port = (uint16_t)c->endpoints[i].port;
        eps[i].security_protocol = c->endpoints[i].security_protocol;
    }
    rec.end_points = eps;
    rec.end_points_count = c->nendpoints;
    RECS_ADD(r, SM_METADATA_REGISTER_CONTROLLER_RECORD, 0, sm_register_controller_record, &rec);
    free(eps);
}

/* Same id and the same endpoints, in order. */
static bool same_controller(const sm_broker_meta_t *a, const sm_broker_meta_t *b)
{
    if (a->id != b->id || a->nendpoints != b->nendpoints)
        return false;
    for (int i = 0; i < a->nendpoints; i++)
        if (strcmp(a->endpoints[i].name, b->endpoints[i].name) != 0 ||
            strcmp(a->endpoints[i].host, b->endpoints[i].host) != 0 ||
            a->endpoints[i].port != b->endpoints[i].port ||
            a->endpoints[i].security_protocol != b->endpoints[i].security_protocol)
            return false;
    return true;
}

int16_t sm_meta_controller_register(sm_meta_t *m, int32_t id, const sm_meta_listener_reg_t *ls,
                                    int n)
{
    if (id < 0 || n < 1 || n > 64)
        return KERR_INVALID_REQUEST;
    bool voter = false;
    for (int i = 0; i < m->cfg->nvoters; i++)
        voter |= m->cfg->voters[i].id == id;
    if (!voter)
        return KERR_INVALID_REQUEST; /* only the quorum's voters are controllers here */
    if (!sm_meta_is_active(m))
        return KERR_NOT_CONTROLLER;
    sm_broker_meta_t want = {.id = id, .epoch = -1};
    sm_endpoint_t *eps = sm_xcalloc((size_t)n, sizeof *eps);
    for (int i = 0; i < n; i++)
        eps[i] = (sm_endpoint_t){.name = sm_xstrndup(ls[i].name.ptr ? ls[i].name.ptr : "",
                                                     (size_t)SM_MAX(ls[i].name.len, 0)),
                                 .host = sm_xstrndup(ls[i].host.ptr ? ls[i].host.ptr : "",
                                                     (size_t)SM_MAX(ls[i].host.len, 0)),
                                 .port = ls[i].port,
                                 .security_protocol = ls[i].security_protocol};
    want.endpoints = eps;
    want.nendpoints = n;
    sm_meta_lock(m);
    bool known = false;
    for (int i = 0; i < m->image->ncontrollers && !known; i++)
        known = same_controller(&m->image->controllers[i], &want);
    int16_t err = 0;
    if (!known) {
        recs_t r;
        recs_init(&r);
        sm_meta_add_controller_rec(&r, &want);
        char why[256];
        if (sm_meta_commit_locked(m, &r, why, sizeof why) != SM_OK) {
            SM_WARN(TAG, "registration of controller %d failed: %s", id, why);
            err = commit_kerr();
        } else {
            SM_INFO(TAG, "controller %d registered (%d endpoint(s))", id, n);
        }
        recs_free(&r);
    }
    pthread_mutex_unlock(&m->lock);
    for (int i = 0; i < n; i++) {
        free(eps[i].name);
        free(eps[i].host);
    }
    free(eps);
    return err;
}

int64_t sm_meta_last_offset(sm_meta_t *m)
{
    sm_meta_image_t *img = sm_meta_image_get(m);
    int64_t o = img->offset;
    sm_meta_image_put(img);
    return o;
}

void sm_meta_describe_quorum(sm_meta_t *m, int64_t now_mono_ms, int64_t now_wall_ms,
                             sm_meta_quorum_t *out)
{
    memset(out, 0, sizeof *out);
    sm_raft_describe_t d;
    sm_meta_log_describe(m->log, &d);
    out->leader_id = d.leader_id;
    out->leader_epoch = d.epoch;
    out->high_watermark = d.high_watermark;
    /* The quorum's own times are monotonic: shown as wall clock. */
    for (int i = 0; i < d.n_voters && i < (int)SM_ARRAY_LEN(out->voters); i++) {
        const sm_raft_replica_desc_t *v = &d.voters[i];
        int64_t f = v->last_fetch_ms >= 0 ? now_wall_ms - (now_mono_ms - v->last_fetch_ms) : -1;
        int64_t c = v->last_caught_up_ms >= 0 ? now_wall_ms - (now_mono_ms - v->last_caught_up_ms)
                                              : -1;
        if (v->id == d.leader_id) /* the leader itself: its log end, now */
            f = c = now_wall_ms;
        out->voters[out->nvoters++] = (sm_meta_quorum_replica_t){v->id, v->end_offset, f, c};
    }
    for (int i = 0; i < d.n_observers && out->nobservers < (int)SM_ARRAY_LEN(out->observers);
         i++) {
        const sm_raft_replica_desc_t *o = &d.observers[i];
        int64_t f = o->last_fetch_ms >= 0 ? now_wall_ms - (now_mono_ms - o->last_fetch_ms) : -1;
        int64_t c = o->last_caught_up_ms >= 0 ? now_wall_ms - (now_mono_ms - o->last_caught_up_ms)
                                              : -1;
        out->observers[out->nobservers++] = (sm_meta_quorum_replica_t){o->id, o->end_offset, f, c};
    }
    if (!m->self_managed || d.leader_id != m->node_id)
        return;
    /* make run's single node: brokers that registered by RPC (tests playing
     * a broker) show as observers from their heartbeats */
    pthread_mutex_lock(&m->lock);
    sm_broker_seen_t seen[256];
    int n = sm_brokers_list(liveness(m), seen, 256);
    for (int i = 0; i < n && out->nobservers < (int)SM_ARRAY_LEN(out->observers); i++) {
        int64_t age = now_mono_ms - seen[i].last_contact_ms;
        int64_t at = now_wall_ms - (age > 0 ? age : 0);
        bool caught_up =
            seen[i].metadata_offset >= 0 && seen[i].metadata_offset + 1 >= d.high_watermark;
        out->observers[out->nobservers++] = (sm_meta_quorum_replica_t){
            seen[i].id, seen[i].metadata_offset >= 0 ? seen[i].metadata_offset + 1 : -1, at,
            caught_up ? at : -1};
    }
    pthread_mutex_unlock(&m->lock);
}

/* ------------------------------------------------------------ AlterPartition */

static int16_t check_isr_change(const sm_meta_image_t *img, int32_t broker_id,
                                const sm_meta_isr_change_t *c, const sm_partition_meta_t **out)
{
    const sm_topic_meta_t *tm = sm_meta_image_topic_by_id(img, &c->topic_id);
    if (!tm)
        return 100; /* UNKNOWN_TOPIC_ID */
    if (c->partition < 0 || c->partition >= tm->npartitions)
        return 3; /* UNKNOWN_TOPIC_OR_PARTITION */
    const sm_partition_meta_t *pm = &tm->partitions[c->partition];
    *out = pm;
    if (pm->leader != broker_id)
        return 6; /* NOT_LEADER_OR_FOLLOWER */
    if (c->leader_epoch != pm->leader_epoch)
        return 74; /* FENCED_LEADER_EPOCH */
    if (c->partition_epoch != pm->partition_epoch)
        return 108; /* INVALID_UPDATE_VERSION */
    if (c->nisr <= 0 || !contains(c->isr, c->nisr, broker_id))
        return 42; /* INVALID_REQUEST */
    for (int i = 0; i < c->nisr; i++) {
        if (!contains(pm->replicas, pm->nreplicas, c->isr[i]) || contains(c->isr, i, c->isr[i]))
            return 42;
        if (!contains(pm->isr, pm->nisr, c->isr[i]) && !usable(img, c->isr[i], -1))
            return 107; /* INELIGIBLE_REPLICA */
        /* a member the leader saw fetching under another registration
         * (it restarted since, and may have lost records): KIP-903 */
        if (!contains(pm->isr, pm->nisr, c->isr[i]) && c->isr_epochs && c->isr_epochs[i] >= 0 &&
            sm_meta_image_broker(img, c->isr[i])->epoch != c->isr_epochs[i])
            return 107;
    }
    return 0;
}

int16_t sm_meta_alter_partition(sm_meta_t *m, int32_t broker_id, sm_meta_isr_change_t *ch, int n)
{
    if (!sm_meta_is_active(m))
        return KERR_NOT_CONTROLLER;
    sm_meta_lock(m);
    recs_t r;
    recs_init(&r);
    int changes = 0;
    for (int i = 0; i < n; i++) {
        sm_meta_isr_change_t *c = &ch[i];
        const sm_partition_meta_t *pm = NULL;
        c->error = check_isr_change(m->image, broker_id, c, &pm);
        if (c->error)
            continue;
        c->out_leader = pm->leader;
        c->out_leader_epoch = pm->leader_epoch;
        c->out_partition_epoch = pm->partition_epoch;
        bool same = c->nisr == pm->nisr;
        for (int k = 0; k < c->nisr && same; k++)
            same = contains(pm->isr, pm->nisr, c->isr[k]);
        if (same)
            continue;
        sm_partition_change_record_t pc;
        sm_partition_change_record_init(&pc);
        pc.topic_id = c->topic_id;
        pc.partition_id = c->partition;
        pc.isr = (int32_t *)c->isr;
        pc.isr_count = c->nisr;
        RECS_ADD(&r, SM_METADATA_PARTITION_CHANGE_RECORD, 0, sm_partition_change_record, &pc);
        c->out_partition_epoch++;
        changes++;
        /* a reassignment whose target is now in sync completes */
        const sm_topic_meta_t *tm = sm_meta_image_topic_by_id(m->image, &c->topic_id);
        if (sm_meta_reassign_try_complete(&r, m->image, tm, c->partition, c->isr, c->nisr))
            c->out_partition_epoch++;
    }
    char what[64];
    snprintf(what, sizeof what, "AlterPartition from broker %d", broker_id);
    int16_t kerr = sm_meta_commit_unlock(m, &r, changes, what);
    if (kerr)
        return kerr;
    if (changes)
        SM_INFO(TAG, "AlterPartition from broker %d: %d ISR change(s) committed", broker_id,
                changes);
    return 0;
}

/* ------------------------------------------------------------ ElectLeaders */

#define KERR_PREFERRED_LEADER_NOT_AVAILABLE 80
#define KERR_ELIGIBLE_LEADERS_NOT_AVAILABLE 83
#define KERR_ELECTION_NOT_NEEDED 84

/* The leader an election of `type` gives pm (-1 and *err when none). */
static int32_t elect_one(const sm_meta_t *m, const sm_topic_meta_t *tm, int32_t p, int8_t type,
                         bool *unclean, int16_t *err)
{
    const sm_partition_meta_t *pm = &tm->partitions[p];
    *unclean = false;
    if (type == 0) {
        int32_t pref = pm->nreplicas > 0 ? pm->replicas[0] : -1;
        if (pref >= 0 && pm->leader == pref) {
            *err = KERR_ELECTION_NOT_NEEDED;
            return -1;
        }
        if (pref < 0 || !contains(pm->isr, pm->nisr, pref) || !usable(m->image, pref, -1)) {
            *err = KERR_PREFERRED_LEADER_NOT_AVAILABLE;
            return -1;
        }
        *err = 0;
        return pref;
    }
    if (pm->leader >= 0) {
        *err = KERR_ELECTION_NOT_NEEDED;
        return -1;
    }
    for (int i = 0; i < pm->nreplicas; i++)
        if (contains(pm->isr, pm->nisr, pm->replicas[i]) && usable(m->image, pm->replicas[i], -1)) {
            *err = 0;
            return pm->replicas[i];
        }
    for (int i = 0; i < pm->nreplicas; i++)
        if (usable(m->image, pm->replicas[i], -1)) {
            *err = 0;
            *unclean = true;
            return pm->replicas[i];
        }
    *err = KERR_ELIGIBLE_LEADERS_NOT_AVAILABLE;
    return -1;
}

static void add_election(recs_t *r, const sm_topic_meta_t *tm, int32_t p, int32_t leader,
                         bool unclean)
{
    sm_partition_change_record_t c;
    sm_partition_change_record_init(&c);
    c.topic_id = tm->id;
    c.partition_id = p;
    c.leader = leader;
    int32_t only[1] = {leader};
    if (unclean) {
        SM_WARN(TAG, "%s-%d: unclean leader election (ElectLeaders): broker %d, not in the ISR, "
                     "leads; records only the old ISR had are lost",
                tm->name, p, leader);
        c.isr = only;
        c.isr_count = 1;
    }
    RECS_ADD(r, SM_METADATA_PARTITION_CHANGE_RECORD, 0, sm_partition_change_record, &c);
}

int16_t sm_meta_elect_leaders(sm_meta_t *m, int8_t type, sm_meta_election_t *e, int n,
                              sm_meta_election_t **done, int *ndone)
{
    if (done) {
        *done = NULL;
        *ndone = 0;
    }
    if (!sm_meta_is_active(m))
        return KERR_NOT_CONTROLLER;
    if (type != 0 && type != 1)
        return 42; /* INVALID_REQUEST */
    sm_meta_lock(m);
    recs_t r;
    recs_init(&r);
    int changes = 0;
    if (e) {
        for (int i = 0; i < n; i++) {
            const sm_topic_meta_t *tm = sm_meta_image_topic(m->image, e[i].topic,
                                                            strlen(e[i].topic));
            if (!tm || e[i].partition < 0 || e[i].partition >= tm->npartitions) {
                e[i].error = 3; /* UNKNOWN_TOPIC_OR_PARTITION */
                continue;
            }
            bool unclean;
            int32_t leader = elect_one(m, tm, e[i].partition, type, &unclean, &e[i].error);
            if (leader >= 0) {
                add_election(&r, tm, e[i].partition, leader, unclean);
                changes++;
            }
        }
    } else if (done) {
        int cap = 0;
        for (int t = 0; t < m->image->ntopics; t++) {
            const sm_topic_meta_t *tm = m->image->topics[t];
            for (int32_t p = 0; p < tm->npartitions; p++) {
                bool unclean;
                int16_t err;
                int32_t leader = elect_one(m, tm, p, type, &unclean, &err);
                if (leader < 0)
                    continue;
                add_election(&r, tm, p, leader, unclean);
                if (*ndone == cap) {
                    cap = cap ? 2 * cap : 16;
                    *done = sm_xrealloc(*done, sizeof **done * (size_t)cap);
                }
                (*done)[(*ndone)++] = (sm_meta_election_t){sm_xstrdup(tm->name), p, 0};
                changes++;
            }
        }
    }
    int16_t kerr = sm_meta_commit_unlock(m, &r, changes, "ElectLeaders");
    if (kerr) {
        if (done) {
            sm_meta_elections_free(*done, *ndone);
            *done = NULL;
            *ndone = 0;
        }
        return kerr;
    }
    if (changes)
        SM_INFO(TAG, "ElectLeaders (%s): %d leader(s) elected", type ? "unclean" : "preferred",
                changes);
    return 0;
}

void sm_meta_elections_free(sm_meta_election_t *e, int n)
{
    for (int i = 0; e && i < n; i++)
        free((char *)e[i].topic);
    free(e);
}

int sm_meta_rebalance_leaders(sm_meta_t *m)
{
    sm_meta_election_t *done = NULL;
    int n = 0;
    if (sm_meta_elect_leaders(m, 0, NULL, 0, &done, &n) != 0)
        return 0;
    sm_meta_elections_free(done, n);
    if (n)
        SM_INFO(TAG, "auto.leader.rebalance.enable: %d partition(s) led by their preferred "
                     "replica again", n);
    return n;
}
