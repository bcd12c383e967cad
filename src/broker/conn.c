/*
 * conn.c - client connections: read frames, dispatch, answer in order.
 *
 * Input: bytes are read into a 64 KiB buffer; every complete frame is copied
 * into its own allocation (the request keeps it while parked) and larger
 * frames are read straight into their allocation. The size prefix is checked
 * against socket.request.max.bytes before anything is allocated.
 *
 * Output: requests sit in a FIFO in arrival order. A request whose handler
 * called sm_req_done() is DONE; the loop sends DONE requests from the head
 * only, so responses leave in request order (Kafka's per-connection
 * ordering guarantee). Memory parts go out with send(), file splices with
 * sendfile(). While more than max_inflight requests wait, reading pauses
 * (backpressure, no unbounded queues).
 *
 * Lifetime: the connection holds one reference for being open and each
 * request one more, so a request parked on another thread can finish after
 * the socket closed; its response is then dropped.
 */
#define _GNU_SOURCE
#include "conn.h"
#include "dispatch.h"
#include "log.h"
#include "server.h"
#include "sm_proto_gen.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/sendfile.h>
#include <sys/socket.h>
#include <unistd.h>

#define RBUF_SIZE 65536
#define MAX_INFLIGHT 128

enum { REQ_PENDING = 0, REQ_DONE, REQ_FAILED };

struct sm_conn {
    sm_ref_t ref;
    sm_server_t *srv;
    sm_loop_t *loop;
    int fd;
    char peer[64];
    bool closed;
    bool reading;      /* EPOLLIN armed */
    bool want_write;   /* EPOLLOUT armed */
    /* input */
    uint8_t *rbuf;
    size_t rlen;       /* bytes in rbuf */
    uint8_t *big;      /* frame being read directly (larger than rbuf) */
    int32_t big_len, big_have;
    /* requests */
    sm_req_t *head, *tail;
    int nreq;
    /* output progress of the head request */
    size_t out_mem;
    int out_splice;
    int64_t out_splice_pos;
    bool flush_scheduled;
};

static int g_conn_count;
static int g_inflight;

int sm_conn_count(void) { return __atomic_load_n(&g_conn_count, __ATOMIC_RELAXED); }
int sm_conn_inflight(void) { return __atomic_load_n(&g_inflight, __ATOMIC_RELAXED); }

static void conn_io(void *ctx, uint32_t events);
static void conn_flush(sm_conn_t *c);

static void conn_free(sm_ref_t *r)
{
    sm_conn_t *c = (sm_conn_t *)r;
    free(c->rbuf);
    free(c->big);
    free(c);
    __atomic_fetch_sub(&g_conn_count, 1, __ATOMIC_RELAXED);
}

static void req_free(sm_req_t *req)
{
    __atomic_fetch_sub(&g_inflight, 1, __ATOMIC_RELAXED);
    sm_arena_free(&req->arena);
    sm_wbuf_free(&req->resp);
    free(req->frame);
    sm_ref_release(&req->conn->ref);
    free(req);
}

static void conn_close(sm_conn_t *c, const char *why)
{
    if (c->closed)
        return;
    if (why)
        SM_INFO("net", "closing connection from %s: %s", c->peer, why);
    c->closed = true;
    sm_loop_unwatch(c->loop, c->fd);
    close(c->fd);
    c->fd = -1;
    /* Free finished requests now; parked ones free themselves when done. */
    conn_flush(c);
    sm_ref_release(&c->ref);
}

static void update_events(sm_conn_t *c)
{
    if (c->closed)
        return;
    bool want_read = c->nreq < MAX_INFLIGHT;
    bool want_write = c->want_write;
    uint32_t ev = (want_read ? EPOLLIN : 0) | (want_write ? EPOLLOUT : 0) | EPOLLRDHUP;
    if (sm_loop_rewatch(c->loop, c->fd, ev, conn_io, c) != SM_OK)
        conn_close(c, "epoll failure");
    c->reading = want_read;
}

const char *sm_req_peer(const sm_req_t *req) { return req->conn->peer; }

/* Parse the request header and hand the request to its handler. */
static void conn_dispatch(sm_conn_t *c, uint8_t *frame, int32_t len)
{
    sm_rd_t r;
    sm_rd_init(&r, frame, (size_t)len);
    int16_t key = sm_rd_i16(&r);
    int16_t ver = sm_rd_i16(&r);
    int32_t corr = sm_rd_i32(&r);
    if (r.err) {
        free(frame);
        conn_close(c, "request header truncated");
        return;
    }
    const sm_dispatch_t *d = sm_dispatch_lookup(key);
    if (!d) {
        free(frame);
        char why[96];
        snprintf(why, sizeof why, "unsupported api key %d (version %d)", key, ver);
        conn_close(c, why);
        return;
    }
    bool version_ok = ver >= d->min_version && ver <= d->max_version;
    if (!version_ok && key != SM_API_API_VERSIONS) {
        free(frame);
        char why[96];
        snprintf(why, sizeof why, "unsupported version %d of api key %d", ver, key);
        conn_close(c, why);
        return;
    }
    sm_req_t *req = sm_xcalloc(1, sizeof *req);
    __atomic_fetch_add(&g_inflight, 1, __ATOMIC_RELAXED);
    req->srv = c->srv;
    req->conn = c;
    sm_ref_keep(&c->ref);
    req->api_key = key;
    req->api_version = ver;
    req->correlation_id = corr;
    req->frame = frame;
    req->received_us = sm_now_mono_us();
    req->client_id = (sm_str_t){NULL, -1};
    sm_arena_init(&req->arena);
    sm_wbuf_init(&req->resp);
    if (c->tail)
        c->tail->next = req;
    else
        c->head = req;
    c->tail = req;
    c->nreq++;

    int16_t resp_hv = 0;
    if (version_ok) {
        int16_t hv = sm_request_header_version(key, ver);
        int16_t idlen = sm_rd_i16(&r);
        if (idlen >= 0)
            req->client_id = (sm_str_t){(const char *)sm_rd_take(&r, (size_t)idlen), idlen};
        else if (idlen != -1)
            r.err = SM_ERR_PARSE;
        if (hv >= 2) {
            uint32_t ntags = sm_rd_uvarint(&r);
            for (uint32_t i = 0; i < ntags && !r.err; i++) {
                sm_rd_uvarint(&r);
                uint32_t sz = sm_rd_uvarint(&r);
                sm_rd_take(&r, sz);
            }
        }
        if (r.err) {
            sm_req_fail(req, "malformed request header");
            return;
        }
        resp_hv = sm_response_header_version(key, ver);
    }
    req->body = r;
    sm_wbuf_reserve(&req->resp, 4);
    sm_wbuf_i32(&req->resp, corr);
    if (resp_hv >= 1)
        sm_wbuf_u8(&req->resp, 0); /* empty tagged fields */
    SM_TRACE("net", "%s: api %d v%d corr %d", c->peer, key, ver, corr);
    d->handler(req);
}

/* Consume complete frames from rbuf. Returns false if the connection closed. */
static bool conn_parse(sm_conn_t *c)
{
    size_t pos = 0;
    int32_t max = sm_server_config(c->srv)->socket_request_max_bytes;
    while (!c->closed && c->nreq < MAX_INFLIGHT && c->rlen - pos >= 4) {
        const uint8_t *p = c->rbuf + pos;
        int32_t size = (int32_t)(((uint32_t)p[0] << 24) | ((uint32_t)p[1] << 16) |
                                 ((uint32_t)p[2] << 8) | p[3]);
        if (size < 8 || size > max) {
            char why[128];
            snprintf(why, sizeof why, "invalid request size %d (socket.request.max.bytes=%d)", size,
                     max);
            conn_close(c, why);
            return false;
        }
        if ((size_t)size > RBUF_SIZE - 4) {
            /* Large frame: read the rest straight into its own buffer. */
            c->big = sm_xmalloc((size_t)size);
            c->big_len = size;
            size_t have = SM_MIN(c->rlen - pos - 4, (size_t)size);
            memcpy(c->big, p + 4, have);
            c->big_have = (int32_t)have;
            pos += 4 + have;
            break;
        }
        if (c->rlen - pos - 4 < (size_t)size)
            break;
        uint8_t *frame = sm_xmalloc((size_t)size);
        memcpy(frame, p + 4, (size_t)size);
        pos += 4 + (size_t)size;
        conn_dispatch(c, frame, size);
    }
    if (c->closed)
        return false;
    if (pos > 0) {
        memmove(c->rbuf, c->rbuf + pos, c->rlen - pos);
        c->rlen -= pos;
    }
    return true;
}

static void conn_read(sm_conn_t *c)
{
    for (int rounds = 0; rounds < 16 && !c->closed && c->nreq < MAX_INFLIGHT; rounds++) {
        ssize_t n;
        if (c->big) {
            n = read(c->fd, c->big + c->big_have, (size_t)(c->big_len - c->big_have));
            if (n > 0) {
                c->big_have += (int32_t)n;
                if (c->big_have == c->big_len) {
                    uint8_t *frame = c->big;
                    int32_t len = c->big_len;
                    c->big = NULL;
                    c->big_len = c->big_have = 0;
                    conn_dispatch(c, frame, len);
                }
                continue;
            }
        } else {
            n = read(c->fd, c->rbuf + c->rlen, RBUF_SIZE - c->rlen);
            if (n > 0) {
                c->rlen += (size_t)n;
                if (!conn_parse(c))
                    return;
                continue;
            }
        }
        if (n == 0) {
            conn_close(c, c->rlen || c->big ? "peer closed mid-frame" : NULL);
            return;
        }
        if (errno == EAGAIN || errno == EWOULDBLOCK)
            return;
        if (errno == EINTR)
            continue;
        char why[96];
        snprintf(why, sizeof why, "read: %s", strerror(errno));
        conn_close(c, why);
        return;
    }
}

/* Send as much of req's response as the socket takes.
 * Returns 1 when fully sent, 0 if the socket is full, -1 on error. */
static int conn_send(sm_conn_t *c, sm_req_t *req)
{
    sm_wbuf_t *w = &req->resp;
    for (;;) {
        size_t mem_end = c->out_splice < w->nsplices ? w->splices[c->out_splice].at : w->len;
        if (c->out_mem < mem_end) {
            int flags = MSG_NOSIGNAL | (c->out_splice < w->nsplices ? MSG_MORE : 0);
            ssize_t n = send(c->fd, w->mem + c->out_mem, mem_end - c->out_mem, flags);
            if (n < 0) {
                if (errno == EAGAIN || errno == EWOULDBLOCK)
                    return 0;
                if (errno == EINTR)
                    continue;
                return -1;
            }
            c->out_mem += (size_t)n;
            continue;
        }
        if (c->out_splice < w->nsplices) {
            sm_splice_t *s = &w->splices[c->out_splice];
            off_t off = (off_t)(s->off + c->out_splice_pos);
            ssize_t n = sendfile(c->fd, s->fd, &off, (size_t)(s->len - c->out_splice_pos));
            if (n < 0) {
                if (errno == EAGAIN || errno == EWOULDBLOCK)
                    return 0;
                if (errno == EINTR)
                    continue;
                return -1;
            }
            if (n == 0) {
                SM_ERROR("net", "%s: segment file shorter than the promised response", c->peer);
                return -1;
            }
            c->out_splice_pos += n;
            if (c->out_splice_pos == s->len) {
                c->out_splice++;
                c->out_splice_pos = 0;
            }
            continue;
        }
        return 1;
    }
}

static void conn_flush(sm_conn_t *c)
{
    bool sent_any = false;
    while (c->head && c->head->state != REQ_PENDING) {
        sm_req_t *req = c->head;
        if (!c->closed && req->state == REQ_DONE) {
            int rc = conn_send(c, req);
            if (rc < 0) {
                char why[96];
                snprintf(why, sizeof why, "write: %s", strerror(errno));
                sm_ref_keep(&c->ref);
                conn_close(c, why);
                sm_ref_release(&c->ref);
                return;
            }
            if (rc == 0) {
                if (!c->want_write) {
                    c->want_write = true;
                    update_events(c);
                }
                return;
            }
        }
        c->head = req->next;
        if (!c->head)
            c->tail = NULL;
        c->nreq--;
        c->out_mem = 0;
        c->out_splice = 0;
        c->out_splice_pos = 0;
        sent_any = true;
        req_free(req);
        if (c->closed && !c->head)
            return; /* req_free may have dropped the last reference */
    }
    if (c->closed)
        return;
    if (c->want_write || (sent_any && !c->reading)) {
        c->want_write = false;
        update_events(c);
    }
    /* Complete frames may wait in rbuf since a backpressure pause: the
     * socket may hold nothing more, so no EPOLLIN would ever bring them. */
    if (sent_any && c->rlen >= 4 && c->nreq < MAX_INFLIGHT && !c->big)
        conn_parse(c);
}

static void conn_io(void *ctx, uint32_t events)
{
    sm_conn_t *c = ctx;
    sm_ref_keep(&c->ref);
    if (events & EPOLLOUT)
        conn_flush(c);
    if (!c->closed && (events & (EPOLLIN | EPOLLERR | EPOLLHUP | EPOLLRDHUP)))
        conn_read(c);
    if (!c->closed)
        conn_flush(c);
    /* At the in-flight limit, stop polling for input until responses leave. */
    if (!c->closed && c->reading && c->nreq >= MAX_INFLIGHT)
        update_events(c);
    sm_ref_release(&c->ref);
}

void sm_conn_start(sm_server_t *srv, sm_loop_t *l, int fd, const char *peer)
{
    sm_conn_t *c = sm_xcalloc(1, sizeof *c);
    sm_ref_init(&c->ref, conn_free);
    __atomic_fetch_add(&g_conn_count, 1, __ATOMIC_RELAXED);
    c->srv = srv;
    c->loop = l;
    c->fd = fd;
    snprintf(c->peer, sizeof c->peer, "%s", peer);
    c->rbuf = sm_xmalloc(RBUF_SIZE);
    c->reading = true;
    if (sm_loop_watch(l, fd, EPOLLIN | EPOLLRDHUP, conn_io, c) != SM_OK) {
        close(fd);
        sm_ref_release(&c->ref);
        return;
    }
    SM_DEBUG("net", "accepted connection from %s on loop %d", peer, sm_loop_id(l));
}


/* ---- completion, possibly from another thread */

/* Posted task: flush a connection after a completion; owns one reference. */
static void flush_posted(void *arg)
{
    sm_conn_t *c = arg;
    conn_flush(c);
    sm_ref_release(&c->ref);
}

static void req_finish(sm_req_t *req, int state)
{
    /* Patch the frame size now: the response is complete. */
    if (state == REQ_DONE && req->resp.len >= 4)
        sm_wbuf_patch_i32(&req->resp, 0, (int32_t)(sm_wbuf_total(&req->resp) - 4));
    __atomic_store_n(&req->state, state, __ATOMIC_RELEASE);
    /* Never flush inline: the caller may be the handler running inside
     * conn_parse(). The posted task runs after this epoll batch. */
    sm_conn_t *c = req->conn;
    sm_ref_keep(&c->ref);
    sm_loop_post(c->loop, flush_posted, c);
}

void sm_req_done(sm_req_t *req) { req_finish(req, REQ_DONE); }

/* Posted task: close a connection after a failed request; owns one reference. */
static void fail_posted(void *arg)
{
    sm_conn_t *c = arg;
    conn_close(c, "malformed request");
    sm_ref_release(&c->ref);
}

void sm_req_fail(sm_req_t *req, const char *why)
{
    sm_conn_t *c = req->conn;
    SM_WARN("net", "%s: api %d v%d corr %d: %s", c->peer, req->api_key, req->api_version,
            req->correlation_id, why);
    sm_ref_keep(&c->ref);
    __atomic_store_n(&req->state, REQ_FAILED, __ATOMIC_RELEASE);
    sm_loop_post(c->loop, fail_posted, c);
}
