/*
 * peer.c - the node-to-node client (see peer.h for the state machine and
 * the rules).
 *
 * Two lists, both in request order: `queue` holds requests not yet fully
 * written (the head may be partly written), `flight` those written and
 * waiting for their response. A request moves from one to the other when
 * its last byte is written, so a lost connection fails exactly the flight
 * list and resends the queue whole on the next connection.
 *
 * Re-entrancy: callbacks run with depth > 0. A callback may call
 * sm_peer_send (appends to the queue) or sm_peer_free (sets free_pending);
 * every loop that delivers checks free_pending after each callback, and the
 * entry points (I/O, timers) finish the free once depth is back to 0.
 */
#define _GNU_SOURCE
#include "peer.h"
#include "log.h"
#include "net.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#define TICK_MS 50

typedef struct preq {
    struct preq *next;
    int32_t corr;
    int resp_hv;
    uint8_t *frame;
    size_t len, sent;
    int64_t deadline_ms;
    sm_peer_resp_fn fn;
    void *ctx;
} preq_t;

typedef struct plist {
    preq_t *head, *tail;
    int n;
} plist_t;

enum { ST_IDLE, ST_CONNECTING, ST_READY, ST_BACKOFF };

struct sm_peer {
    sm_loop_t *loop;
    char *host;
    int port;
    char name[300];
    char *client_id;
    sm_peer_config_t cfg;
    int state;
    int fd;
    uint32_t events; /* what fd is watched for */
    plist_t queue, flight;
    int32_t next_corr;
    int32_t backoff_ms; /* the next reconnect delay */
    uint64_t rng;
    uint64_t conn_timer; /* reconnect (BACKOFF) or connect timeout (CONNECTING) */
    uint64_t tick_timer; /* deadline scan while anything is outstanding */
    /* the response being read */
    uint8_t hdr[4];
    int hdr_have;
    uint8_t *in;
    int32_t in_len, in_have;
    int depth;
    bool closing, free_pending;
};

static void plist_push(plist_t *l, preq_t *r)
{
    r->next = NULL;
    if (l->tail)
        l->tail->next = r;
    else
        l->head = r;
    l->tail = r;
    l->n++;
}

static preq_t *plist_pop(plist_t *l)
{
    preq_t *r = l->head;
    if (r) {
        l->head = r->next;
        if (!l->head)
            l->tail = NULL;
        l->n--;
        r->next = NULL;
    }
    return r;
}

/* Hand r's outcome to its owner and free r. */
static void deliver(sm_peer_t *p, preq_t *r, sm_err_t err, const uint8_t *body, size_t len)
{
    p->depth++;
    r->fn(r->ctx, err, body, len);
    p->depth--;
    free(r->frame);
    free(r);
}

/* Fail every request of l (detached first: callbacks may queue new ones). */
static void fail_all(sm_peer_t *p, plist_t *l, sm_err_t err)
{
    plist_t mine = *l;
    *l = (plist_t){0};
    preq_t *r;
    while ((r = plist_pop(&mine)))
        deliver(p, r, err, NULL, 0);
}

static uint32_t jitter_pct(sm_peer_t *p)
{
    /* xorshift64: 80..120 % */
    p->rng ^= p->rng << 13;
    p->rng ^= p->rng >> 7;
    p->rng ^= p->rng << 17;
    return 80 + (uint32_t)(p->rng % 41);
}

static void start_connect(sm_peer_t *p);
static void io_cb(void *ctx, uint32_t events);
static void tick_cb(void *arg);

static void really_free(sm_peer_t *p)
{
    if (p->conn_timer)
        sm_loop_timer_cancel(p->loop, p->conn_timer);
    if (p->tick_timer)
        sm_loop_timer_cancel(p->loop, p->tick_timer);
    p->conn_timer = p->tick_timer = 0;
    if (p->fd >= 0) {
        sm_loop_unwatch(p->loop, p->fd);
        close(p->fd);
        p->fd = -1;
    }
    fail_all(p, &p->flight, SM_ERR_CLOSED);
    fail_all(p, &p->queue, SM_ERR_CLOSED);
    free(p->in);
    free(p->host);
    free(p->client_id);
    free(p);
}

/* At the end of an entry point: finish a free asked for by a callback. */
static bool gone(sm_peer_t *p)
{
    if (p->free_pending && p->depth == 0) {
        p->free_pending = false;
        really_free(p);
        return true;
    }
    return p->free_pending;
}

static void arm_tick(sm_peer_t *p)
{
    if (!p->tick_timer && (p->queue.n || p->flight.n))
        p->tick_timer = sm_loop_timer(p->loop, sm_now_mono_ms() + TICK_MS, tick_cb, p);
}

static void set_watch(sm_peer_t *p, uint32_t events)
{
    if (p->fd < 0 || events == p->events)
        return;
    if (sm_loop_rewatch(p->loop, p->fd, events, io_cb, p) == SM_OK)
        p->events = events;
}

static void reconnect_cb(void *arg)
{
    sm_peer_t *p = arg;
    p->conn_timer = 0;
    if (p->state != ST_BACKOFF)
        return;
    p->state = ST_IDLE;
    if (p->queue.n)
        start_connect(p);
}

/* Wait before the next attempt; the delay doubles up to the maximum. */
static void backoff(sm_peer_t *p)
{
    p->state = ST_BACKOFF;
    int64_t delay = (int64_t)p->backoff_ms * jitter_pct(p) / 100;
    p->backoff_ms = SM_MIN(p->backoff_ms * 2, p->cfg.backoff_max_ms);
    if (p->conn_timer)
        sm_loop_timer_cancel(p->loop, p->conn_timer);
    p->conn_timer = sm_loop_timer(p->loop, sm_now_mono_ms() + delay, reconnect_cb, p);
}

/* Close the connection: written requests get err (the timed-out ones
 * SM_ERR_AGAIN when now_ms >= 0), queued ones wait for the next connection. */
static void drop_conn(sm_peer_t *p, const char *why, sm_err_t err, int64_t now_ms)
{
    if (p->fd >= 0) {
        SM_DEBUG("peer", "%s: connection closed: %s", p->name, why);
        sm_loop_unwatch(p->loop, p->fd);
        close(p->fd);
        p->fd = -1;
    }
    p->events = 0;
    free(p->in);
    p->in = NULL;
    p->hdr_have = p->in_len = p->in_have = 0;
    if (p->queue.head)
        p->queue.head->sent = 0; /* a partial write died with the connection */
    if (p->conn_timer) {
        sm_loop_timer_cancel(p->loop, p->conn_timer);
        p->conn_timer = 0;
    }
    backoff(p);
    plist_t lost = p->flight;
    p->flight = (plist_t){0};
    preq_t *r;
    while ((r = plist_pop(&lost)) && !p->free_pending)
        deliver(p, r, now_ms >= 0 && r->deadline_ms <= now_ms ? SM_ERR_AGAIN : err, NULL, 0);
    if (r) { /* freed by a callback: the rest are failed by the free */
        plist_push(&p->flight, r);
        while ((r = plist_pop(&lost)))
            plist_push(&p->flight, r);
    }
}

/* Write what the socket takes. */
static void write_some(sm_peer_t *p)
{
    while (p->queue.head) {
        preq_t *r = p->queue.head;
        ssize_t n = send(p->fd, r->frame + r->sent, r->len - r->sent, MSG_NOSIGNAL);
        if (n < 0) {
            if (errno == EAGAIN || errno == EWOULDBLOCK) {
                set_watch(p, EPOLLIN | EPOLLOUT);
                return;
            }
            if (errno == EINTR)
                continue;
            drop_conn(p, strerror(errno), SM_ERR_CLOSED, -1);
            return;
        }
        r->sent += (size_t)n;
        if (r->sent == r->len)
            plist_push(&p->flight, plist_pop(&p->queue));
    }
    set_watch(p, EPOLLIN);
}

static bool skip_uvarint(const uint8_t *b, size_t len, size_t *off, uint32_t *out)
{
    uint32_t v = 0;
    for (int shift = 0; shift < 35; shift += 7) {
        if (*off >= len)
            return false;
        uint8_t c = b[(*off)++];
        v |= (uint32_t)(c & 0x7f) << shift;
        if (!(c & 0x80)) {
            *out = v;
            return true;
        }
    }
    return false;
}

/* A whole response frame arrived. Returns false if the connection was
 * dropped or the peer freed. */
static bool on_frame(sm_peer_t *p, uint8_t *buf, int32_t len)
{
    int32_t corr = (int32_t)((uint32_t)buf[0] << 24 | (uint32_t)buf[1] << 16 |
                             (uint32_t)buf[2] << 8 | buf[3]);
    preq_t *r = p->flight.head;
    if (!r || r->corr != corr) {
        SM_WARN("peer", "%s: response with correlation id %d, expected %d: closing", p->name, corr,
                r ? r->corr : -1);
        drop_conn(p, "response out of order", SM_ERR_CORRUPT, -1);
        return false;
    }
    size_t off = 4;
    if (r->resp_hv >= 1) {
        uint32_t ntags, tag, size;
        bool ok = skip_uvarint(buf, (size_t)len, &off, &ntags);
        for (uint32_t i = 0; ok && i < ntags; i++) {
            ok = skip_uvarint(buf, (size_t)len, &off, &tag) &&
                 skip_uvarint(buf, (size_t)len, &off, &size) && size <= (size_t)len - off;
            if (ok)
                off += size;
        }
        if (!ok) {
            SM_WARN("peer", "%s: malformed response header: closing", p->name);
            drop_conn(p, "malformed response header", SM_ERR_CORRUPT, -1);
            return false;
        }
    }
    plist_pop(&p->flight);
    deliver(p, r, SM_OK, buf + off, (size_t)len - off);
    return !p->free_pending;
}

/* Read and dispatch whole frames until the socket is empty. */
static void read_some(sm_peer_t *p)
{
    uint8_t chunk[65536];
    for (;;) {
        ssize_t n = recv(p->fd, chunk, sizeof chunk, 0);
        if (n == 0) {
            drop_conn(p, "closed by the peer", SM_ERR_CLOSED, -1);
            return;
        }
        if (n < 0) {
            if (errno == EAGAIN || errno == EWOULDBLOCK)
                return;
            if (errno == EINTR)
                continue;
            drop_conn(p, strerror(errno), SM_ERR_CLOSED, -1);
            return;
        }
        size_t pos = 0;
        while (pos < (size_t)n) {
            if (p->hdr_have < 4) {
                size_t take = SM_MIN(4 - (size_t)p->hdr_have, (size_t)n - pos);
                memcpy(p->hdr + p->hdr_have, chunk + pos, take);
                p->hdr_have += (int)take;
                pos += take;
                if (p->hdr_have < 4)
                    break;
                int32_t size = (int32_t)((uint32_t)p->hdr[0] << 24 | (uint32_t)p->hdr[1] << 16 |
                                         (uint32_t)p->hdr[2] << 8 | p->hdr[3]);
                if (size < 4 || size > p->cfg.max_response_bytes) {
                    SM_WARN("peer", "%s: response of %d bytes (limit %d): closing", p->name, size,
                            p->cfg.max_response_bytes);
                    drop_conn(p, "bad response size", size < 4 ? SM_ERR_CORRUPT : SM_ERR_TOO_LARGE,
                              -1);
                    return;
                }
                p->in_len = size;
                p->in_have = 0;
                p->in = sm_xmalloc((size_t)size);
            }
            size_t take = SM_MIN((size_t)(p->in_len - p->in_have), (size_t)n - pos);
            memcpy(p->in + p->in_have, chunk + pos, take);
            p->in_have += (int32_t)take;
            pos += take;
            if (p->in_have == p->in_len) {
                uint8_t *frame = p->in;
                int32_t len = p->in_len;
                p->in = NULL;
                p->hdr_have = p->in_len = p->in_have = 0;
                bool alive = on_frame(p, frame, len);
                free(frame);
                if (!alive || p->fd < 0)
                    return;
            }
        }
    }
}

static void on_connected(sm_peer_t *p)
{
    if (p->conn_timer) {
        sm_loop_timer_cancel(p->loop, p->conn_timer);
        p->conn_timer = 0;
    }
    p->state = ST_READY;
    p->backoff_ms = p->cfg.backoff_ms;
    SM_DEBUG("peer", "%s: connected", p->name);
    write_some(p);
}

static void io_cb(void *ctx, uint32_t events)
{
    sm_peer_t *p = ctx;
    if (p->state == ST_CONNECTING) {
        int soerr = 0;
        socklen_t sl = sizeof soerr;
        if (getsockopt(p->fd, SOL_SOCKET, SO_ERROR, &soerr, &sl) < 0)
            soerr = errno;
        if (soerr) {
            SM_DEBUG("peer", "%s: connect failed: %s", p->name, strerror(soerr));
            drop_conn(p, strerror(soerr), SM_ERR_CLOSED, -1);
        } else {
            on_connected(p);
        }
        gone(p);
        return;
    }
    if (p->state != ST_READY)
        return;
    if (events & (EPOLLIN | EPOLLHUP | EPOLLERR | EPOLLRDHUP))
        read_some(p);
    if (!p->free_pending && p->fd >= 0 && (events & EPOLLOUT))
        write_some(p);
    gone(p);
}

static void connect_timeout_cb(void *arg)
{
    sm_peer_t *p = arg;
    p->conn_timer = 0;
    if (p->state == ST_CONNECTING) {
        SM_DEBUG("peer", "%s: connect timed out", p->name);
        drop_conn(p, "connect timed out", SM_ERR_CLOSED, -1);
        gone(p);
    }
}

static void start_connect(sm_peer_t *p)
{
    int fd = -1;
    sm_err_t err = sm_net_connect(p->host, p->port, &fd);
    if (err != SM_OK && err != SM_ERR_AGAIN) {
        backoff(p);
        return;
    }
    p->fd = fd;
    p->events = EPOLLIN | EPOLLOUT;
    if (sm_loop_watch(p->loop, fd, p->events, io_cb, p) != SM_OK) {
        close(fd);
        p->fd = -1;
        backoff(p);
        return;
    }
    if (err == SM_OK) {
        on_connected(p);
        return;
    }
    p->state = ST_CONNECTING;
    p->conn_timer = sm_loop_timer(p->loop, sm_now_mono_ms() + p->cfg.connect_timeout_ms,
                                  connect_timeout_cb, p);
}

/* Every TICK_MS while requests are outstanding: expire the late ones. */
static void tick_cb(void *arg)
{
    sm_peer_t *p = arg;
    p->tick_timer = 0;
    int64_t now = sm_now_mono_ms();
    /* Queued (never written): drop the late ones, keep the order of the rest. */
    plist_t keep = {0}, late = {0};
    preq_t *r;
    bool head_partial = p->queue.head && p->queue.head->sent > 0;
    while ((r = plist_pop(&p->queue))) {
        bool partial = head_partial && keep.n == 0 && late.n == 0;
        plist_push(r->deadline_ms <= now && !partial ? &late : &keep, r);
    }
    p->queue = keep;
    while ((r = plist_pop(&late)) && !p->free_pending)
        deliver(p, r, SM_ERR_AGAIN, NULL, 0);
    if (r) {
        plist_push(&p->queue, r);
        while ((r = plist_pop(&late)))
            plist_push(&p->queue, r);
    }
    /* Written: a late answer would arrive out of turn, so the connection goes. */
    bool late_flight = false;
    for (preq_t *f = p->flight.head; f && !p->free_pending; f = f->next)
        late_flight |= f->deadline_ms <= now;
    if (late_flight && !p->free_pending)
        drop_conn(p, "request timed out", SM_ERR_CLOSED, now);
    if (gone(p))
        return;
    arm_tick(p);
}

sm_peer_t *sm_peer_new(sm_loop_t *l, const char *host, int port, const sm_peer_config_t *cfg)
{
    sm_peer_t *p = sm_xcalloc(1, sizeof *p);
    p->loop = l;
    p->host = sm_xstrdup(host);
    p->port = port;
    snprintf(p->name, sizeof p->name, "%s:%d", host, port);
    if (cfg)
        p->cfg = *cfg;
    p->client_id = sm_xstrdup(cfg && cfg->client_id ? cfg->client_id : "samsa-node");
    p->cfg.client_id = p->client_id;
    if (p->cfg.max_queued <= 0)
        p->cfg.max_queued = 1024;
    if (p->cfg.max_response_bytes <= 0)
        p->cfg.max_response_bytes = 100 << 20;
    if (p->cfg.backoff_ms <= 0)
        p->cfg.backoff_ms = 50;
    if (p->cfg.backoff_max_ms < p->cfg.backoff_ms)
        p->cfg.backoff_max_ms = SM_MAX(1000, p->cfg.backoff_ms);
    if (p->cfg.connect_timeout_ms <= 0)
        p->cfg.connect_timeout_ms = 10000;
    p->rng = p->cfg.seed ? p->cfg.seed : 0x9e3779b97f4a7c15ull ^ (uint64_t)(uintptr_t)p;
    p->backoff_ms = p->cfg.backoff_ms;
    p->fd = -1;
    p->state = ST_IDLE;
    return p;
}

void sm_peer_free(sm_peer_t *p)
{
    if (!p || p->closing)
        return;
    p->closing = true;
    if (p->depth > 0) {
        p->free_pending = true;
        return;
    }
    really_free(p);
}

sm_err_t sm_peer_send(sm_peer_t *p, int16_t api_key, int16_t api_version,
                      int req_header_version, int resp_header_version, const uint8_t *body,
                      size_t len, int64_t timeout_ms, sm_peer_resp_fn fn, void *ctx)
{
    if (!p || !fn || (req_header_version != 1 && req_header_version != 2) ||
        (resp_header_version != 0 && resp_header_version != 1) || (len && !body))
        return SM_ERR_INVALID;
    if (p->closing)
        return SM_ERR_CLOSED;
    if (p->queue.n + p->flight.n >= p->cfg.max_queued)
        return SM_ERR_AGAIN;
    size_t idlen = strlen(p->client_id);
    size_t hdr = 4 + 2 + 2 + 4 + 2 + idlen + (req_header_version == 2 ? 1 : 0);
    if (len > (size_t)INT32_MAX - hdr)
        return SM_ERR_TOO_LARGE;
    preq_t *r = sm_xcalloc(1, sizeof *r);
    r->corr = p->next_corr;
    p->next_corr = p->next_corr == INT32_MAX ? 0 : p->next_corr + 1;
    r->resp_hv = resp_header_version;
    r->len = hdr + len;
    r->frame = sm_xmalloc(r->len);
    uint8_t *w = r->frame;
    uint32_t size = (uint32_t)(r->len - 4);
    *w++ = (uint8_t)(size >> 24), *w++ = (uint8_t)(size >> 16), *w++ = (uint8_t)(size >> 8);
    *w++ = (uint8_t)size;
    *w++ = (uint8_t)((uint16_t)api_key >> 8), *w++ = (uint8_t)api_key;
    *w++ = (uint8_t)((uint16_t)api_version >> 8), *w++ = (uint8_t)api_version;
    uint32_t c = (uint32_t)r->corr;
    *w++ = (uint8_t)(c >> 24), *w++ = (uint8_t)(c >> 16), *w++ = (uint8_t)(c >> 8), *w++ = (uint8_t)c;
    *w++ = (uint8_t)(idlen >> 8), *w++ = (uint8_t)idlen;
    memcpy(w, p->client_id, idlen);
    w += idlen;
    if (req_header_version == 2)
        *w++ = 0; /* no tagged fields */
    if (len)
        memcpy(w, body, len);
    r->deadline_ms = sm_now_mono_ms() + (timeout_ms > 0 ? timeout_ms : 0);
    r->fn = fn;
    r->ctx = ctx;
    plist_push(&p->queue, r);
    arm_tick(p);
    if (p->state == ST_IDLE)
        start_connect(p);
    else if (p->state == ST_READY && p->queue.head == r)
        write_some(p);
    gone(p); /* a callback run by a failed write may have freed p */
    return SM_OK;
}

int sm_peer_outstanding(const sm_peer_t *p) { return p->queue.n + p->flight.n; }
bool sm_peer_connected(const sm_peer_t *p) { return p->state == ST_READY; }
bool sm_peer_unreachable(const sm_peer_t *p) { return p->state == ST_BACKOFF; }
const char *sm_peer_name(const sm_peer_t *p) { return p->name; }
