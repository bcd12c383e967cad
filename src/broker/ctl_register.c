/*
 * ctl_register.c - a controller of a multi-node quorum tells the active
 * controller how to reach it (ControllerRegistration, KIP-919), so its
 * CONTROLLER endpoint is in the metadata: DescribeCluster with
 * endpointType=2 and DescribeQuorum v2 list it.
 *
 *   tick every 200 ms: in the image? ──yes──► check again in 5 s
 *                      │ no, nothing in flight
 *                      ▼
 *                     send ControllerRegistration (the answer only ends "in flight")
 *
 * Runs on the controller channel's loop; the endpoint is this node's entry
 * of controller.quorum.voters under its first controller listener's name.
 */
#include "ctl_register.h"

#include "arena.h"
#include "buf.h"
#include "kerr.h"
#include "log.h"
#include "sm_proto_gen.h"

#include <stdlib.h>
#include <string.h>

#define TAG "ctlreg"
#define RETRY_MS 200
#define CHECK_MS 5000
#define VERSION 0

struct sm_ctl_register {
    const sm_config_t *cfg;
    sm_meta_t *meta;
    sm_ctl_channel_t *ch;
    sm_loop_t *loop;
    const char *listener;  /* first controller listener's name */
    const sm_voter_t *self; /* this node's voter entry */
    sm_uuid_t incarnation;
    bool in_flight;
    bool stopped; /* atomic */
    int16_t last_err;
};

static void schedule(sm_ctl_register_t *r, int32_t in_ms);

static bool registered(sm_ctl_register_t *r)
{
    sm_meta_image_t *img = sm_meta_image_get(r->meta);
    bool ok = false;
    for (int i = 0; i < img->ncontrollers && !ok; i++) {
        const sm_broker_meta_t *c = &img->controllers[i];
        ok = c->id == r->cfg->node_id && c->nendpoints == 1 &&
             strcmp(c->endpoints[0].name, r->listener) == 0 &&
             strcmp(c->endpoints[0].host, r->self->host) == 0 &&
             c->endpoints[0].port == r->self->port;
    }
    sm_meta_image_put(img);
    return ok;
}

static void on_answer(void *ctx, sm_err_t io, const uint8_t *body, size_t len)
{
    sm_ctl_register_t *r = ctx;
    r->in_flight = false;
    if (__atomic_load_n(&r->stopped, __ATOMIC_ACQUIRE))
        return;
    int16_t err = -1;
    if (io == SM_OK) {
        sm_controller_registration_response_t resp;
        sm_controller_registration_response_init(&resp);
        sm_arena_t a;
        sm_arena_init(&a);
        sm_rd_t rd;
        sm_rd_init(&rd, body, len);
        if (sm_controller_registration_response_decode(&rd, &a, VERSION, &resp) == SM_OK)
            err = resp.error_code;
        sm_arena_free(&a);
    }
    if (err == KERR_NONE) {
        if (r->last_err)
            SM_INFO(TAG, "controller %d registered its endpoint", r->cfg->node_id);
        r->last_err = 0;
        return; /* the tick checks the image */
    }
    if (err != r->last_err && err != KERR_NOT_CONTROLLER && err != -1)
        SM_WARN(TAG, "controller %d: ControllerRegistration answered with error %d",
                r->cfg->node_id, err);
    r->last_err = err;
}

static void send_registration(sm_ctl_register_t *r)
{
    sm_controller_registration_request_listener_t l;
    sm_controller_registration_request_listener_init(&l);
    l.name = sm_str(r->listener);
    l.host = sm_str(r->self->host);
    l.port = (uint16_t)r->self->port;
    l.security_protocol = SM_SECPROTO_PLAINTEXT;
    sm_controller_registration_request_feature_t f;
    sm_controller_registration_request_feature_init(&f);
    f.name = sm_str("metadata.version");
    f.min_supported_version = 1;
    f.max_supported_version = 19;
    sm_controller_registration_request_t m;
    sm_controller_registration_request_init(&m);
    m.controller_id = r->cfg->node_id;
    m.incarnation_id = r->incarnation;
    m.listeners = &l;
    m.listeners_count = 1;
    m.features = &f;
    m.features_count = 1;
    sm_wbuf_t w;
    sm_wbuf_init(&w);
    sm_controller_registration_request_encode(&w, VERSION, &m);
    r->in_flight = true;
    sm_ctl_channel_call(r->ch, SM_API_CONTROLLER_REGISTRATION, VERSION, w.mem, w.len,
                        r->cfg->quorum_request_timeout_ms, on_answer, r);
    sm_wbuf_free(&w);
}

static void tick(void *arg)
{
    sm_ctl_register_t *r = arg;
    if (__atomic_load_n(&r->stopped, __ATOMIC_ACQUIRE))
        return;
    if (registered(r)) {
        schedule(r, CHECK_MS);
        return;
    }
    if (!r->in_flight)
        send_registration(r);
    schedule(r, RETRY_MS);
}

static void schedule(sm_ctl_register_t *r, int32_t in_ms)
{
    sm_loop_timer(r->loop, sm_now_mono_ms() + in_ms, tick, r);
}

static void start_task(void *arg) { schedule(arg, 0); }

sm_ctl_register_t *sm_ctl_register_start(const sm_config_t *cfg, sm_meta_t *meta,
                                         sm_ctl_channel_t *ch)
{
    const sm_voter_t *self = NULL;
    for (int i = 0; i < cfg->nvoters; i++)
        if (cfg->voters[i].id == cfg->node_id)
            self = &cfg->voters[i];
    const char *name = NULL;
    for (int i = 0; i < cfg->nlisteners && !name; i++)
        if (cfg->listeners[i].controller)
            name = cfg->listeners[i].name;
    if (!self || !name || !ch)
        return NULL;
    sm_ctl_register_t *r = sm_xcalloc(1, sizeof *r);
    r->cfg = cfg;
    r->meta = meta;
    r->ch = ch;
    r->loop = sm_ctl_channel_loop(ch);
    r->listener = name;
    r->self = self;
    r->last_err = -2;
    sm_uuid_random(&r->incarnation);
    sm_loop_post(r->loop, start_task, r);
    return r;
}

void sm_ctl_register_stop(sm_ctl_register_t *r)
{
    if (r)
        __atomic_store_n(&r->stopped, true, __ATOMIC_RELEASE);
}

void sm_ctl_register_free(sm_ctl_register_t *r) { free(r); }
