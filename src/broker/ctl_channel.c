/*
 * ctl_channel.c - requests to the active controller (ctl_channel.h).
 *
 * One loop thread. A call is posted to it, then:
 *
 *   WAIT ──(a quorum leader is known)──► SENT ──(answer)──► done: fn(OK, body)
 *    ▲  └──(deadline)──► done: fn(AGAIN)   │
 *    └────(connection lost or attempt timed out, time left)┘
 *
 * A call queued towards a controller that refuses connections (it died)
 * gives up after an eighth of controller.quorum.request.timeout.ms and goes
 * to the next leader the node hears of; one written to a live connection
 * waits for its answer until the deadline (it is never sent twice).
 */
#include "ctl_channel.h"

#include "log.h"
#include "peer.h"
#include "proto.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define TAG "ctlch"
#define RETRY_MS 50
#define SHORT_ATTEMPT_MIN_MS 200

typedef struct call {
    sm_ctl_channel_t *ch;
    int16_t key, version;
    uint8_t *body;
    size_t len;
    int64_t deadline_ms;
    sm_ctl_resp_fn fn;
    void *ctx;
    struct call *next; /* waiting list */
} call_t;

typedef struct ctl_peer {
    int32_t id;
    char *host;
    int port;
    sm_peer_t *peer; /* made on first use */
} ctl_peer_t;

struct sm_ctl_channel {
    sm_loop_t *loop;
    sm_meta_t *meta;
    int32_t node_id;
    int32_t attempt_ms;
    ctl_peer_t *peers;
    int npeers;
    call_t *waiting; /* calls with no leader to go to yet */
    uint64_t retry_timer;
    bool stopping;
    uint64_t seed;
};

static void finish(call_t *c, sm_err_t err, const uint8_t *body, size_t len)
{
    c->fn(c->ctx, err, body, len);
    free(c->body);
    free(c);
}

static ctl_peer_t *leader_peer(sm_ctl_channel_t *ch)
{
    int32_t epoch;
    int32_t leader = sm_meta_quorum_leader(ch->meta, &epoch);
    for (int i = 0; leader >= 0 && i < ch->npeers; i++) {
        ctl_peer_t *p = &ch->peers[i];
        if (p->id != leader)
            continue;
        if (!p->peer) {
            char client_id[64];
            snprintf(client_id, sizeof client_id, "samsa-broker-%d", ch->node_id);
            sm_peer_config_t pc = {.client_id = client_id, .backoff_ms = 50,
                                   .backoff_max_ms = 500, .connect_timeout_ms = ch->attempt_ms,
                                   .seed = ch->seed + (uint64_t)i};
            p->peer = sm_peer_new(ch->loop, p->host, p->port, &pc);
        }
        return p;
    }
    return NULL;
}

static void try_send(call_t *c);

static void retry_waiting(void *arg)
{
    sm_ctl_channel_t *ch = arg;
    ch->retry_timer = 0;
    call_t *list = ch->waiting;
    ch->waiting = NULL;
    while (list) {
        call_t *c = list;
        list = c->next;
        try_send(c);
    }
}

static void park(call_t *c)
{
    sm_ctl_channel_t *ch = c->ch;
    c->next = ch->waiting;
    ch->waiting = c;
    if (!ch->retry_timer)
        ch->retry_timer = sm_loop_timer(ch->loop, sm_now_mono_ms() + RETRY_MS, retry_waiting, ch);
}

static void on_response(void *ctx, sm_err_t err, const uint8_t *body, size_t len)
{
    call_t *c = ctx;
    if (err == SM_OK || c->ch->stopping) {
        finish(c, err, body, len);
        return;
    }
    /* Lost or late: the controller may have died or moved; go again while
     * the deadline allows (the next attempt picks the leader afresh). */
    if (sm_now_mono_ms() + RETRY_MS < c->deadline_ms && (err == SM_ERR_AGAIN || err == SM_ERR_CLOSED))
        park(c);
    else
        finish(c, err, NULL, 0);
}

static void try_send(call_t *c)
{
    sm_ctl_channel_t *ch = c->ch;
    int64_t now = sm_now_mono_ms();
    if (ch->stopping) {
        finish(c, SM_ERR_CLOSED, NULL, 0);
        return;
    }
    if (now >= c->deadline_ms) {
        finish(c, SM_ERR_AGAIN, NULL, 0);
        return;
    }
    ctl_peer_t *p = leader_peer(ch);
    if (!p) {
        park(c);
        return;
    }
    int64_t t = c->deadline_ms - now;
    /* A controller that refused the last connection (it just died): a short
     * attempt, so the call moves to the next leader as soon as the node
     * hears of one instead of waiting behind a dead peer (queued requests
     * are not written while the peer backs off, so giving up on one never
     * duplicates it). Otherwise the whole deadline: a request written to a
     * busy controller is waited for, not sent again (a CreateTopics sent
     * twice would answer TOPIC_ALREADY_EXISTS); a lost connection still ends
     * the attempt at once (SM_ERR_CLOSED). */
    if (sm_peer_unreachable(p->peer)) {
        int32_t attempt = ch->attempt_ms / 8;
        if (attempt < SHORT_ATTEMPT_MIN_MS)
            attempt = SHORT_ATTEMPT_MIN_MS;
        if (t > attempt)
            t = attempt;
    }
    if (sm_peer_send(p->peer, c->key, c->version, sm_request_header_version(c->key, c->version),
                     sm_response_header_version(c->key, c->version), c->body, c->len, t,
                     on_response, c) != SM_OK)
        park(c); /* its queue is full: later */
}

static void call_task(void *arg) { try_send(arg); }

void sm_ctl_channel_call(sm_ctl_channel_t *ch, int16_t api_key, int16_t api_version,
                         const uint8_t *body, size_t len, int32_t timeout_ms, sm_ctl_resp_fn fn,
                         void *ctx)
{
    call_t *c = sm_xcalloc(1, sizeof *c);
    c->ch = ch;
    c->key = api_key;
    c->version = api_version;
    c->body = sm_xmalloc(len ? len : 1);
    if (len)
        memcpy(c->body, body, len);
    c->len = len;
    c->deadline_ms = sm_now_mono_ms() + (timeout_ms > 0 ? timeout_ms : 1);
    c->fn = fn;
    c->ctx = ctx;
    sm_loop_post(ch->loop, call_task, c);
}

sm_loop_t *sm_ctl_channel_loop(sm_ctl_channel_t *ch) { return ch->loop; }

sm_ctl_channel_t *sm_ctl_channel_new(const sm_config_t *cfg, sm_meta_t *meta)
{
    if (cfg->nvoters <= 0)
        return NULL;
    sm_ctl_channel_t *ch = sm_xcalloc(1, sizeof *ch);
    ch->meta = meta;
    ch->node_id = cfg->node_id;
    ch->attempt_ms = cfg->quorum_request_timeout_ms > 0 ? cfg->quorum_request_timeout_ms : 2000;
    ch->seed = (uint64_t)sm_now_mono_ms() * 2654435761u + (uint64_t)cfg->node_id;
    ch->npeers = cfg->nvoters;
    ch->peers = sm_xcalloc((size_t)ch->npeers, sizeof *ch->peers);
    for (int i = 0; i < ch->npeers; i++) {
        ch->peers[i].id = cfg->voters[i].id;
        ch->peers[i].host = sm_xstrdup(cfg->voters[i].host);
        ch->peers[i].port = cfg->voters[i].port;
    }
    ch->loop = sm_loop_new(2000 + cfg->node_id);
    if (sm_loop_start_thread(ch->loop) != SM_OK) {
        SM_ERROR(TAG, "cannot start the controller channel's thread");
        sm_loop_free(ch->loop);
        for (int i = 0; i < ch->npeers; i++)
            free(ch->peers[i].host);
        free(ch->peers);
        free(ch);
        return NULL;
    }
    return ch;
}

static void stop_task(void *arg)
{
    sm_ctl_channel_t *ch = arg;
    ch->stopping = true;
    if (ch->retry_timer)
        sm_loop_timer_cancel(ch->loop, ch->retry_timer);
    ch->retry_timer = 0;
    while (ch->waiting) {
        call_t *c = ch->waiting;
        ch->waiting = c->next;
        finish(c, SM_ERR_CLOSED, NULL, 0);
    }
    for (int i = 0; i < ch->npeers; i++) {
        sm_peer_free(ch->peers[i].peer); /* in-flight calls get SM_ERR_CLOSED */
        ch->peers[i].peer = NULL;
    }
    sm_loop_stop(ch->loop);
}

void sm_ctl_channel_free(sm_ctl_channel_t *ch)
{
    if (!ch)
        return;
    sm_loop_post(ch->loop, stop_task, ch);
    sm_loop_join(ch->loop);
    sm_loop_free(ch->loop);
    for (int i = 0; i < ch->npeers; i++)
        free(ch->peers[i].host);
    free(ch->peers);
    free(ch);
}
