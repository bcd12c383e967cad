/*
 * forward.c - requests for the controller that reach a node which is not
 * the active controller are carried out by the one that is, as Kafka's
 * brokers forward CreateTopics, AlterConfigs and the like (KIP-590).
 *
 * Two paths, both over the controller channel (ctl_channel.h):
 *  - a client's admin request (CreateTopics, DeleteTopics, ...) is sent on
 *    as it came, same API key, version and body bytes, and the controller's
 *    response body is handed back to the client under the client's own
 *    correlation id; if no controller answers in time the request is
 *    carried out here after all, which answers with the API's own
 *    NOT_CONTROLLER / REQUEST_TIMED_OUT error, and the client retries;
 *  - topics this node creates for itself (auto.create.topics.enable,
 *    __consumer_offsets) are asked for with a CreateTopics request of our
 *    own (sm_meta_set_forwarder), waited for on the thread that asked.
 *
 * Requests that came in on a CONTROLLER listener are never forwarded: a
 * client that talks to a controller directly gets NOT_CONTROLLER from the
 * wrong one and finds the right one itself.
 */
#include "forward.h"

#include "ctl_channel.h"
#include "dispatch.h"
#include "handler_util.h"
#include "kerr.h"
#include "log.h"
#include "meta.h"
#include "server.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define TAG "forward"
#define FORWARD_TIMEOUT_MS 30000 /* at most */
#define DEFAULT_TIMEOUT_MS 10000
#define MIN_TIMEOUT_MS 1000
#define CREATE_VERSION 7

typedef struct fwd {
    sm_req_t *req;
    void *msg;
    sm_ctl_fn run;
} fwd_t;

static void on_forwarded(void *ctx, sm_err_t err, const uint8_t *body, size_t len)
{
    fwd_t *f = ctx;
    sm_req_t *req = f->req;
    if (err != SM_OK) {
        /* Nobody answered: answer here (NOT_CONTROLLER or a timeout). */
        SM_DEBUG(TAG, "api %d: the active controller did not answer (%s); answering here",
                 req->api_key, sm_err_str(err));
        sm_req_run_on_controller(req, f->msg, f->run);
        return;
    }
    sm_wbuf_bytes(&req->resp, body, len);
    sm_req_done(req);
}

/* How long the controller may take: the request's own timeout where it has
 * one (the client waits that long for the operation), else a default. */
static int32_t forward_timeout(const sm_req_t *req, const void *msg)
{
    int32_t t = DEFAULT_TIMEOUT_MS;
    switch (req->api_key) {
    case SM_API_CREATE_TOPICS:
        t = ((const sm_create_topics_request_t *)msg)->timeout_ms;
        break;
    case SM_API_DELETE_TOPICS:
        t = ((const sm_delete_topics_request_t *)msg)->timeout_ms;
        break;
    case SM_API_CREATE_PARTITIONS:
        t = ((const sm_create_partitions_request_t *)msg)->timeout_ms;
        break;
    default:
        break;
    }
    return t < MIN_TIMEOUT_MS ? MIN_TIMEOUT_MS : t > FORWARD_TIMEOUT_MS ? FORWARD_TIMEOUT_MS : t;
}

bool sm_req_forward(sm_req_t *req, const uint8_t *raw, size_t len, void *msg, sm_ctl_fn run)
{
    sm_ctl_channel_t *ch = sm_server_ctl_channel(req->srv);
    sm_meta_t *meta = sm_server_meta(req->srv);
    if (!ch || sm_req_scope(req) == SM_SCOPE_CONTROLLER || sm_meta_is_active(meta))
        return false;
    /* No quorum leader known (an election, or no majority): NOT_CONTROLLER
     * now, from here; the client retries. */
    if (sm_meta_quorum_leader(meta, NULL) < 0)
        return false;
    fwd_t *f = SM_ARENA_NEW(&req->arena, fwd_t, 1);
    *f = (fwd_t){req, msg, run};
    sm_ctl_channel_call(ch, req->api_key, req->api_version, raw, len, forward_timeout(req, msg),
                        on_forwarded, f);
    return true;
}

/* ------------------------------------------------ topics for this node */

typedef struct waiter {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    bool done;
    sm_err_t err;
    uint8_t *body;
    size_t len;
} waiter_t;

static void on_create_answer(void *ctx, sm_err_t err, const uint8_t *body, size_t len)
{
    waiter_t *w = ctx;
    pthread_mutex_lock(&w->mu);
    w->err = err;
    if (err == SM_OK) {
        w->body = sm_xmalloc(len ? len : 1);
        if (len)
            memcpy(w->body, body, len);
        w->len = len;
    }
    w->done = true;
    pthread_cond_signal(&w->cv);
    pthread_mutex_unlock(&w->mu);
}

static sm_err_t forward_create(void *ctx, const char *name, int32_t partitions, int16_t rf,
                               const sm_topic_kv_t *configs, int nconfigs, char *errmsg,
                               size_t errlen)
{
    sm_ctl_channel_t *ch = ctx;
    sm_create_topics_request_creatable_topic_config_t *cs =
        sm_xcalloc((size_t)nconfigs + 1, sizeof *cs);
    for (int i = 0; i < nconfigs; i++) {
        sm_create_topics_request_creatable_topic_config_init(&cs[i]);
        cs[i].name = sm_str(configs[i].key);
        cs[i].value = sm_str(configs[i].value);
    }
    sm_create_topics_request_creatable_topic_t t;
    sm_create_topics_request_creatable_topic_init(&t);
    t.name = sm_str(name);
    t.num_partitions = partitions;
    t.replication_factor = rf;
    t.configs = cs;
    t.configs_count = nconfigs;
    sm_create_topics_request_t m;
    sm_create_topics_request_init(&m);
    m.topics = &t;
    m.topics_count = 1;
    m.timeout_ms = DEFAULT_TIMEOUT_MS;
    sm_wbuf_t wb;
    sm_wbuf_init(&wb);
    sm_create_topics_request_encode(&wb, CREATE_VERSION, &m);
    free(cs);
    waiter_t w = {.done = false};
    pthread_mutex_init(&w.mu, NULL);
    pthread_cond_init(&w.cv, NULL);
    sm_ctl_channel_call(ch, SM_API_CREATE_TOPICS, CREATE_VERSION, wb.mem, wb.len,
                        DEFAULT_TIMEOUT_MS, on_create_answer, &w);
    sm_wbuf_free(&wb);
    pthread_mutex_lock(&w.mu);
    while (!w.done)
        pthread_cond_wait(&w.cv, &w.mu);
    pthread_mutex_unlock(&w.mu);
    pthread_mutex_destroy(&w.mu);
    pthread_cond_destroy(&w.cv);
    if (w.err != SM_OK) {
        snprintf(errmsg, errlen, "no active controller answered (%s)", sm_err_str(w.err));
        return SM_ERR_AGAIN;
    }
    sm_create_topics_response_t r;
    sm_create_topics_response_init(&r);
    sm_arena_t a;
    sm_arena_init(&a);
    sm_rd_t rd;
    sm_rd_init(&rd, w.body, w.len);
    sm_err_t rc;
    if (sm_create_topics_response_decode(&rd, &a, CREATE_VERSION, &r) != SM_OK ||
        r.topics_count != 1) {
        snprintf(errmsg, errlen, "malformed CreateTopics response from the controller");
        rc = SM_ERR_CORRUPT;
    } else {
        int16_t e = r.topics[0].error_code;
        const sm_str_t *em = &r.topics[0].error_message;
        snprintf(errmsg, errlen, "%.*s", em->len > 0 ? (int)em->len : 0, em->ptr ? em->ptr : "");
        rc = e == KERR_NONE                   ? SM_OK
             : e == KERR_TOPIC_ALREADY_EXISTS ? SM_ERR_EXISTS
             : e == KERR_NOT_CONTROLLER || e == KERR_REQUEST_TIMED_OUT ? SM_ERR_AGAIN
                                                                        : SM_ERR_INVALID;
        if (rc != SM_OK && !errmsg[0])
            snprintf(errmsg, errlen, "the controller answered with error %d", e);
    }
    sm_arena_free(&a);
    free(w.body);
    return rc;
}

void sm_forward_install(sm_server_t *srv)
{
    sm_ctl_channel_t *ch = sm_server_ctl_channel(srv);
    if (ch)
        sm_meta_set_forwarder(sm_server_meta(srv), forward_create, ch);
}
