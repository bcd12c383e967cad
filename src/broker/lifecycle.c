/*
 * lifecycle.c - a broker's registration and heartbeats (lifecycle.h).
 * Every function below except the public ones runs on the channel's loop.
 */
#include "lifecycle.h"

#include "arena.h"
#include "buf.h"
#include "kerr.h"
#include "log.h"
#include "sm_proto_gen.h"
#include "uuid.h"

#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define TAG "lifecycle"
#define REGISTRATION_VERSION 2
#define HEARTBEAT_VERSION 0
#define METADATA_VERSION_MAX 19
#define FAST_HEARTBEAT_MS 100
#define KERR_STALE_BROKER_EPOCH 77
#define KERR_DUPLICATE_BROKER_REGISTRATION 101
#define KERR_INCONSISTENT_CLUSTER_ID 104
#define KERR_BROKER_ID_NOT_REGISTERED 109

typedef enum { LC_START, LC_REGISTERED, LC_SHUTTING_DOWN, LC_STOPPED } lc_state_t;

struct sm_lifecycle {
    const sm_config_t *cfg;
    sm_meta_t *meta;
    sm_ctl_channel_t *ch;
    sm_loop_t *loop;
    char *cluster_id;
    sm_uuid_t incarnation;
    lc_state_t state;
    int64_t epoch;
    bool in_flight;
    bool fenced_known; /* a heartbeat answered since registration */
    bool fenced;
    bool stopped;      /* atomic: no new requests */
    int16_t last_err;  /* to log a failure once, not every interval */
    uint64_t timer;
    int64_t shutdown_deadline;
    void (*shutdown_done)(void *arg);
    void *shutdown_arg;
    void (*caught_up)(void *arg); /* once, then NULL */
    void *caught_up_arg;
};

static void schedule(sm_lifecycle_t *lc, int32_t in_ms);

static void note_error(sm_lifecycle_t *lc, const char *what, int16_t err, sm_err_t io)
{
    if (err == lc->last_err)
        return;
    lc->last_err = err;
    if (err == KERR_INCONSISTENT_CLUSTER_ID)
        SM_ERROR(TAG, "broker %d: the controller belongs to another cluster (this node was "
                      "formatted for %s); check controller.quorum.voters and the cluster id",
                 lc->cfg->node_id, lc->cluster_id);
    else if (err)
        SM_INFO(TAG, "broker %d: %s answered with error %d; trying again", lc->cfg->node_id, what,
                err);
    else
        SM_INFO(TAG, "broker %d: %s: no controller answered (%s); trying again", lc->cfg->node_id,
                what, sm_err_str(io));
}

static void shutdown_finished(sm_lifecycle_t *lc)
{
    lc->state = LC_STOPPED;
    if (lc->timer)
        sm_loop_timer_cancel(lc->loop, lc->timer);
    lc->timer = 0;
    void (*done)(void *) = lc->shutdown_done;
    lc->shutdown_done = NULL;
    if (done)
        done(lc->shutdown_arg);
}

/* The error code of a controller's answer (body, len) decoded into r of
 * type sm_<name>_t, or -1 when none came (io) or it was malformed (logged).
 * The answer has no strings or arrays, so r needs no arena once decoded. */
#define DECODE_REPLY(name, version, what)                                                   \
    ({                                                                                      \
        int16_t e_ = -1;                                                                    \
        sm_##name##_init(&r);                                                               \
        if (io == SM_OK) {                                                                  \
            sm_arena_t a_;                                                                  \
            sm_arena_init(&a_);                                                             \
            sm_rd_t rd_;                                                                    \
            sm_rd_init(&rd_, body, len);                                                    \
            if (sm_##name##_decode(&rd_, &a_, (version), &r) == SM_OK)                      \
                e_ = r.error_code;                                                          \
            else                                                                            \
                SM_WARN(TAG, "broker %d: malformed %s response", lc->cfg->node_id, (what)); \
            sm_arena_free(&a_);                                                             \
        }                                                                                   \
        e_;                                                                                 \
    })

/* ---------------------------------------------------------- registration */

static void on_registered(void *ctx, sm_err_t io, const uint8_t *body, size_t len)
{
    sm_lifecycle_t *lc = ctx;
    lc->in_flight = false;
    if (__atomic_load_n(&lc->stopped, __ATOMIC_ACQUIRE))
        return;
    sm_broker_registration_response_t r;
    int16_t err = DECODE_REPLY(broker_registration_response, REGISTRATION_VERSION, "BrokerRegistration");
    if (lc->state == LC_SHUTTING_DOWN) {
        shutdown_finished(lc); /* never registered: nothing to hand over */
        return;
    }
    if (io == SM_OK && err == KERR_NONE) {
        lc->state = LC_REGISTERED;
        lc->epoch = r.broker_epoch;
        lc->fenced_known = false;
        lc->last_err = 0;
        SM_INFO(TAG, "broker %d registered with the controller (broker epoch %" PRId64 ")",
                lc->cfg->node_id, lc->epoch);
        schedule(lc, 0);
        return;
    }
    note_error(lc, "BrokerRegistration", io == SM_OK ? err : 0, io);
    schedule(lc, lc->cfg->broker_heartbeat_interval_ms);
}

static void send_registration(sm_lifecycle_t *lc)
{
    const sm_config_t *c = lc->cfg;
    sm_broker_registration_request_t m;
    sm_broker_registration_request_init(&m);
    m.broker_id = c->node_id;
    m.cluster_id = sm_str(lc->cluster_id);
    m.incarnation_id = lc->incarnation;
    int n = c->nadvertised;
    sm_broker_registration_request_listener_t *ls = sm_xcalloc((size_t)n + 1, sizeof *ls);
    for (int i = 0; i < n; i++) {
        sm_broker_registration_request_listener_init(&ls[i]);
        ls[i].name = sm_str(c->advertised[i].name);
        ls[i].host = sm_str(c->advertised[i].host);
        ls[i].port = (uint16_t)c->advertised[i].port;
        ls[i].security_protocol = (int16_t)c->advertised[i].protocol;
    }
    m.listeners = ls;
    m.listeners_count = n;
    sm_broker_registration_request_feature_t f;
    sm_broker_registration_request_feature_init(&f);
    f.name = sm_str("metadata.version");
    f.min_supported_version = 1;
    f.max_supported_version = METADATA_VERSION_MAX;
    m.features = &f;
    m.features_count = 1;
    m.rack = c->rack ? sm_str(c->rack) : (sm_str_t){NULL, -1};
    sm_wbuf_t w;
    sm_wbuf_init(&w);
    sm_broker_registration_request_encode(&w, REGISTRATION_VERSION, &m);
    free(ls);
    lc->in_flight = true;
    sm_ctl_channel_call(lc->ch, SM_API_BROKER_REGISTRATION, REGISTRATION_VERSION, w.mem, w.len,
                        lc->cfg->quorum_request_timeout_ms, on_registered, lc);
    sm_wbuf_free(&w);
}

/* ------------------------------------------------------------- heartbeat */

static void on_heartbeat(void *ctx, sm_err_t io, const uint8_t *body, size_t len)
{
    sm_lifecycle_t *lc = ctx;
    lc->in_flight = false;
    if (__atomic_load_n(&lc->stopped, __ATOMIC_ACQUIRE) || lc->state == LC_STOPPED)
        return;
    sm_broker_heartbeat_response_t r;
    int16_t err = DECODE_REPLY(broker_heartbeat_response, HEARTBEAT_VERSION, "BrokerHeartbeat");
    if (io == SM_OK && err == KERR_NONE) {
        lc->last_err = 0;
        if ((!lc->fenced_known || lc->fenced != r.is_fenced) && lc->state != LC_SHUTTING_DOWN)
            SM_INFO(TAG, "broker %d is %s", lc->cfg->node_id,
                    r.is_fenced ? "fenced (catching up with the metadata log)"
                                : "unfenced: serving as a member of the cluster");
        lc->fenced_known = true;
        __atomic_store_n(&lc->fenced, r.is_fenced, __ATOMIC_RELEASE);
        if ((r.is_caught_up || !r.is_fenced) && lc->caught_up) {
            void (*fn)(void *) = lc->caught_up;
            lc->caught_up = NULL;
            fn(lc->caught_up_arg);
        }
        if (lc->state == LC_SHUTTING_DOWN && r.should_shut_down) {
            SM_INFO(TAG, "broker %d: the controller completed its controlled shutdown",
                    lc->cfg->node_id);
            shutdown_finished(lc);
            return;
        }
    } else if (io == SM_OK &&
               (err == KERR_STALE_BROKER_EPOCH || err == KERR_BROKER_ID_NOT_REGISTERED)) {
        /* The controller forgot this session (fenced long ago, unregistered,
         * or a new controller that never saw it): register again. */
        SM_INFO(TAG, "broker %d: heartbeat refused (error %d): registering again",
                lc->cfg->node_id, err);
        if (lc->state == LC_SHUTTING_DOWN) {
            shutdown_finished(lc);
            return;
        }
        lc->state = LC_START;
        __atomic_store_n(&lc->fenced, true, __ATOMIC_RELEASE);
        lc->fenced_known = false;
        schedule(lc, 0);
        return;
    } else {
        note_error(lc, "BrokerHeartbeat", io == SM_OK ? err : 0, io);
    }
    /* Fenced (catching up) or shutting down: ask again soon rather than a
     * whole interval later, so the broker joins (or leaves) promptly. */
    int32_t next = lc->cfg->broker_heartbeat_interval_ms;
    bool hurry = lc->state == LC_SHUTTING_DOWN || (io == SM_OK && err == KERR_NONE && r.is_fenced);
    if (hurry && next > FAST_HEARTBEAT_MS)
        next = FAST_HEARTBEAT_MS;
    schedule(lc, next);
}

static void send_heartbeat(sm_lifecycle_t *lc)
{
    sm_broker_heartbeat_request_t m;
    sm_broker_heartbeat_request_init(&m);
    m.broker_id = lc->cfg->node_id;
    m.broker_epoch = lc->epoch;
    m.current_metadata_offset = sm_meta_last_offset(lc->meta);
    m.want_fence = false;
    m.want_shut_down = lc->state == LC_SHUTTING_DOWN;
    sm_wbuf_t w;
    sm_wbuf_init(&w);
    sm_broker_heartbeat_request_encode(&w, HEARTBEAT_VERSION, &m);
    lc->in_flight = true;
    sm_ctl_channel_call(lc->ch, SM_API_BROKER_HEARTBEAT, HEARTBEAT_VERSION, w.mem, w.len,
                        lc->cfg->quorum_request_timeout_ms, on_heartbeat, lc);
    sm_wbuf_free(&w);
}

/* ------------------------------------------------------------------ tick */

static void tick(void *arg)
{
    sm_lifecycle_t *lc = arg;
    lc->timer = 0;
    if (__atomic_load_n(&lc->stopped, __ATOMIC_ACQUIRE) || lc->state == LC_STOPPED)
        return;
    if (lc->state == LC_SHUTTING_DOWN && sm_now_mono_ms() >= lc->shutdown_deadline) {
        SM_WARN(TAG, "broker %d: controlled shutdown not confirmed in time; stopping anyway",
                lc->cfg->node_id);
        shutdown_finished(lc);
        return;
    }
    if (lc->in_flight) {
        schedule(lc, 50);
        return;
    }
    if (lc->state == LC_START)
        send_registration(lc);
    else
        send_heartbeat(lc);
}

static void schedule(sm_lifecycle_t *lc, int32_t in_ms)
{
    if (lc->timer)
        sm_loop_timer_cancel(lc->loop, lc->timer);
    lc->timer = sm_loop_timer(lc->loop, sm_now_mono_ms() + in_ms, tick, lc);
}

static void start_task(void *arg) { schedule(arg, 0); }

sm_lifecycle_t *sm_lifecycle_start(const sm_config_t *cfg, sm_meta_t *meta, sm_ctl_channel_t *ch,
                                   const char *cluster_id, void (*caught_up)(void *arg),
                                   void *arg)
{
    sm_lifecycle_t *lc = sm_xcalloc(1, sizeof *lc);
    lc->caught_up = caught_up;
    lc->caught_up_arg = arg;
    lc->cfg = cfg;
    lc->meta = meta;
    lc->ch = ch;
    lc->loop = sm_ctl_channel_loop(ch);
    lc->cluster_id = sm_xstrdup(cluster_id);
    sm_uuid_random(&lc->incarnation);
    lc->state = LC_START;
    lc->fenced = true;
    lc->epoch = -1;
    sm_loop_post(lc->loop, start_task, lc);
    return lc;
}

typedef struct shutdown_req {
    sm_lifecycle_t *lc;
    int32_t timeout_ms;
    void (*done)(void *);
    void *arg;
} shutdown_req_t;

static void shutdown_task(void *p)
{
    shutdown_req_t *s = p;
    sm_lifecycle_t *lc = s->lc;
    lc->shutdown_done = s->done;
    lc->shutdown_arg = s->arg;
    lc->shutdown_deadline = sm_now_mono_ms() + s->timeout_ms;
    free(s);
    if (lc->state == LC_STOPPED || lc->state == LC_START) {
        shutdown_finished(lc); /* not registered: nothing to hand over */
        return;
    }
    SM_INFO(TAG, "broker %d: asking the controller for a controlled shutdown", lc->cfg->node_id);
    lc->state = LC_SHUTTING_DOWN;
    schedule(lc, 0);
}

void sm_lifecycle_shutdown(sm_lifecycle_t *lc, int32_t timeout_ms, void (*done)(void *arg),
                           void *arg)
{
    shutdown_req_t *s = sm_xcalloc(1, sizeof *s);
    *s = (shutdown_req_t){lc, timeout_ms, done, arg};
    sm_loop_post(lc->loop, shutdown_task, s);
}

bool sm_lifecycle_unfenced(const sm_lifecycle_t *lc)
{
    return lc && !__atomic_load_n(&lc->fenced, __ATOMIC_ACQUIRE);
}

void sm_lifecycle_stop(sm_lifecycle_t *lc)
{
    if (lc)
        __atomic_store_n(&lc->stopped, true, __ATOMIC_RELEASE);
}

void sm_lifecycle_free(sm_lifecycle_t *lc)
{
    if (!lc)
        return;
    free(lc->cluster_id);
    free(lc);
}
