/*
 * conn.c - client connections: read frames, dispatch, answer in order,
 * close idle connections.
 *
 * Input: each loop owns one 256 KiB read buffer (conn_loop_t.rbuf), so one
 * read(2) can bring in many small frames, and an idle connection holds no
 * buffer at all. The framer (src/env/framer.h) cuts the stream: each
 * complete frame gets its own buffer (the request keeps it, possibly parked
 * on another thread); a frame that does not arrive whole grows with the
 * bytes that actually arrived (a hostile size prefix costs nothing), and
 * large remainders are read straight into it. Large frame buffers are
 * recycled per loop (bufpool.h). The 4-byte size prefix is checked against
 * socket.request.max.bytes before anything is allocated. Reading pauses while MAX_INFLIGHT requests or
 * MAX_INFLIGHT_BYTES of frames are queued (backpressure, no unbounded
 * queues); bytes already read when the limit hits wait in c->stash.
 *
 * Output: requests sit in a FIFO in arrival order. A request whose handler
 * called sm_req_done() is DONE; the loop sends DONE requests from the head
 * only, so responses leave in request order (Kafka's per-connection
 * ordering guarantee). The memory parts of consecutive DONE responses go
 * out together in one writev-style sendmsg; file splices go out with
 * sendfile(2), with MSG_MORE on the memory bytes just before them.
 * Completions are coalesced: sm_req_done() queues the connection's embedded
 * flush task (no allocation), which runs once after the loop's current batch
 * of events, however many requests finished in it.
 *
 * Idle connections: each loop keeps its connections in least-recently-
 * active order; a sweep timer closes those with no traffic and no request
 * in flight for connections.max.idle.ms (Kafka's rule).
 *
 * Lifetime: the connection holds one reference for being open, each request
 * one more, and a queued flush task one more, so a request parked on
 * another thread can finish after the socket closed; its response is then
 * dropped. Everything here runs on the connection's loop thread except
 * sm_req_done()/sm_req_fail() (any thread) and the counters.
 */
#define _GNU_SOURCE
#include "conn.h"
#include "bufpool.h"
#include "dispatch.h"
#include "framer.h"
#include "log.h"
#include "metrics.h"
#include "server.h"
#include "sm_proto_gen.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/sendfile.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

#define RBUF_SIZE (256 * 1024)        /* per loop */
#define MAX_INFLIGHT 128              /* queued requests per connection */
#define MAX_INFLIGHT_BYTES (64 << 20) /* queued frame bytes per connection */
#define MAX_IOV 64                    /* response pieces per sendmsg */
#define READ_ROUNDS 16                /* reads per readiness event (fairness) */
#define POOL_MIN (64 * 1024)          /* frames this large are recycled per loop */
#define POOL_BUFS 8
#define POOL_BYTES (32 << 20)
#define POOL_IDLE_MS 5000             /* pooled frames freed after this long unused */
#define REQ_KEEP_RESP (64 * 1024)     /* recycle requests whose response buffer is this small */
/* Finished requests are recycled per loop with their arena's first block and
 * response buffer (malloc/free were a quarter of the instructions per small
 * request). Not under AddressSanitizer, which should see every free. */
#if defined(__SANITIZE_ADDRESS__)
#define REQ_CACHE 0
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define REQ_CACHE 0
#endif
#endif
#ifndef REQ_CACHE
#define REQ_CACHE 128 /* = MAX_INFLIGHT: one connection's full pipeline */
#endif

enum { REQ_PENDING = 0, REQ_DONE, REQ_FAILED };

/* Per-loop state of the connection layer (sm_loop_local). Loop thread. */
typedef struct conn_loop {
    sm_server_t *srv;
    sm_loop_t *loop;
    uint8_t *rbuf;
    sm_bufpool_t *frames;           /* recycled large frame buffers */
    sm_req_t *free_reqs;            /* recycled requests (linked by next) */
    int nfree_reqs;
    int64_t last_req_ms;            /* last request: caches are trimmed when quiet */
    sm_conn_t *lru_head, *lru_tail; /* least recently active first */
    uint64_t sweep_timer;
    int nconns;
    int64_t idle_ms;
    sm_metrics_t *metrics;
    sm_loop_metrics_t *lm; /* this loop's request counters */
} conn_loop_t;

struct sm_conn {
    sm_ref_t ref;
    sm_server_t *srv;
    sm_loop_t *loop;
    conn_loop_t *cl;
    int fd;
    char peer[64];
    const char *listener; /* name of the listener it was accepted on */
    uint8_t scope;        /* SM_SCOPE_CONTROLLER on a controller listener, else BROKER */
    bool closed;
    bool reading;      /* EPOLLIN armed */
    bool want_write;   /* EPOLLOUT armed */
    sm_framer_t in;    /* a frame in progress */
    uint8_t *stash;    /* bytes read but not parsed (backpressure) */
    size_t stash_len;
    /* requests */
    sm_req_t *head, *tail;
    int nreq;
    int64_t inflight_bytes;
    /* output progress of the head request */
    size_t out_mem;
    int out_splice;
    int64_t out_splice_pos;
    sm_loop_task_t flush_task;
    /* idle tracking */
    int64_t active_ms;
    sm_conn_t *lru_prev, *lru_next;
};


int sm_conn_count(sm_server_t *srv)
{
    return __atomic_load_n(&sm_server_conn_stats(srv)->conns, __ATOMIC_RELAXED);
}
int sm_conn_inflight(sm_server_t *srv)
{
    return __atomic_load_n(&sm_server_conn_stats(srv)->inflight, __ATOMIC_RELAXED);
}

static void conn_io(void *ctx, uint32_t events);
static void conn_flush(sm_conn_t *c);
static void conn_close(sm_conn_t *c, const char *why);
static bool conn_resume(sm_conn_t *c);

/* ------------------------------------------------------------ per loop */

static void lru_unlink(conn_loop_t *cl, sm_conn_t *c)
{
    if (c->lru_prev)
        c->lru_prev->lru_next = c->lru_next;
    else
        cl->lru_head = c->lru_next;
    if (c->lru_next)
        c->lru_next->lru_prev = c->lru_prev;
    else
        cl->lru_tail = c->lru_prev;
    c->lru_prev = c->lru_next = NULL;
}

static void lru_append(conn_loop_t *cl, sm_conn_t *c)
{
    c->lru_prev = cl->lru_tail;
    c->lru_next = NULL;
    if (cl->lru_tail)
        cl->lru_tail->lru_next = c;
    else
        cl->lru_head = c;
    cl->lru_tail = c;
}

/* Traffic on c: it becomes the most recently active. */
static void conn_touch(sm_conn_t *c)
{
    c->active_ms = sm_now_mono_ms();
    if (c->cl->lru_tail != c) {
        lru_unlink(c->cl, c);
        lru_append(c->cl, c);
    }
}

static int64_t sweep_period_ms(const conn_loop_t *cl)
{
    return SM_MAX(SM_MIN(cl->idle_ms / 4, 1000), 10);
}

static void req_cache_trim(conn_loop_t *cl)
{
    while (cl->free_reqs) {
        sm_req_t *req = cl->free_reqs;
        cl->free_reqs = req->next;
        sm_arena_free(&req->arena);
        sm_wbuf_free(&req->resp);
        free(req);
    }
    cl->nfree_reqs = 0;
}

static void idle_sweep(void *arg)
{
    conn_loop_t *cl = arg;
    cl->sweep_timer = 0;
    int64_t now = sm_now_mono_ms();
    sm_conn_t *c = cl->lru_head;
    while (c && now - c->active_ms >= cl->idle_ms) {
        sm_conn_t *next = c->lru_next;
        if (c->nreq == 0) {
            char why[96];
            snprintf(why, sizeof why, "idle for %lld ms (connections.max.idle.ms)",
                     (long long)(now - c->active_ms));
            conn_close(c, why);
        }
        c = next;
    }
    /* Recycled memory goes back after a quiet spell: a burst must not pin it. */
    if (sm_bufpool_bytes(cl->frames) > 0 && now - sm_bufpool_last_use_ms(cl->frames) > POOL_IDLE_MS)
        sm_bufpool_trim(cl->frames);
    if (cl->nfree_reqs > 0 && now - cl->last_req_ms > POOL_IDLE_MS)
        req_cache_trim(cl);
    if (cl->nconns > 0 || sm_bufpool_bytes(cl->frames) > 0 || cl->nfree_reqs > 0)
        cl->sweep_timer =
            sm_loop_timer(sm_loop_current(), now + sweep_period_ms(cl), idle_sweep, cl);
}

/* At sm_loop_free (shutdown, after the loops stopped): close what is still
 * open so nothing leaks. */
static void conn_loop_free(void *p)
{
    conn_loop_t *cl = p;
    sm_fetch_loop_drain(cl->srv, cl->loop); /* parked fetches answered: their requests can go */
    while (cl->lru_head) {
        sm_conn_t *c = cl->lru_head;
        lru_unlink(cl, c);
        c->cl = NULL;
        if (!c->closed) {
            c->closed = true;
            close(c->fd);
            c->fd = -1;
            conn_flush(c);
            sm_ref_release(&c->ref);
        }
    }
    req_cache_trim(cl);
    sm_bufpool_free(cl->frames);
    free(cl->rbuf);
    free(cl);
}

static conn_loop_t *conn_loop_get(sm_server_t *srv, sm_loop_t *l)
{
    conn_loop_t *cl = sm_loop_local(l);
    if (!cl) {
        cl = sm_xcalloc(1, sizeof *cl);
        cl->srv = srv;
        cl->loop = l;
        cl->rbuf = sm_xmalloc(RBUF_SIZE);
        cl->frames = sm_bufpool_new(POOL_BUFS, POOL_BYTES, POOL_MIN);
        cl->idle_ms = sm_server_config(srv)->connections_max_idle_ms;
        cl->metrics = sm_server_metrics(srv);
        cl->lm = sm_metrics_loop(cl->metrics, sm_loop_id(l));
        sm_loop_set_local(l, cl, conn_loop_free);
    }
    return cl;
}

/* ------------------------------------------------------------ lifetime */

static void conn_free(sm_ref_t *r)
{
    sm_conn_t *c = (sm_conn_t *)r;
    c->in.pool = NULL; /* any thread: plain free */
    sm_framer_reset(&c->in);
    free(c->stash);
    __atomic_fetch_sub(&sm_server_conn_stats(c->srv)->conns, 1, __ATOMIC_RELAXED);
    free(c);
}

/* A zeroed request with an empty arena and response; recycled if one is at
 * hand. Loop thread. */
static sm_req_t *req_new(conn_loop_t *cl)
{
    sm_req_t *req = cl ? cl->free_reqs : NULL;
    if (cl)
        cl->last_req_ms = sm_now_mono_ms();
    if (req) {
        cl->free_reqs = req->next;
        cl->nfree_reqs--;
        req->next = NULL;
        return req;
    }
    req = sm_xcalloc(1, sizeof *req);
    sm_arena_init(&req->arena);
    sm_wbuf_init(&req->resp);
    return req;
}

/* Loop thread (or the tearing-down thread, with c->cl NULL). */
static void req_free(sm_req_t *req)
{
    sm_conn_t *c = req->conn;
    __atomic_fetch_sub(&sm_server_conn_stats(c->srv)->inflight, 1, __ATOMIC_RELAXED);
    conn_loop_t *cl = c->cl;
    sm_buf_release(cl ? cl->frames : NULL, req->frame);
    if (cl && cl->nfree_reqs < REQ_CACHE && req->resp.cap <= REQ_KEEP_RESP) {
        sm_arena_reset(&req->arena);
        sm_wbuf_reset(&req->resp);
        sm_arena_t arena = req->arena;
        sm_wbuf_t resp = req->resp;
        memset(req, 0, sizeof *req);
        req->arena = arena;
        req->resp = resp;
        req->next = cl->free_reqs;
        cl->free_reqs = req;
        cl->nfree_reqs++;
    } else {
        sm_arena_free(&req->arena);
        sm_wbuf_free(&req->resp);
        free(req);
    }
    sm_ref_release(&c->ref); /* last: may free c */
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
    if (c->cl) {
        lru_unlink(c->cl, c);
        c->cl->nconns--;
    }
    sm_framer_reset(&c->in);
    free(c->stash);
    c->stash = NULL;
    c->stash_len = 0;
    /* Free finished requests now; parked ones free themselves when done. */
    sm_ref_keep(&c->ref);
    conn_flush(c);
    sm_ref_release(&c->ref); /* the "open" reference */
    sm_ref_release(&c->ref);
}

static bool can_read(const sm_conn_t *c)
{
    return c->nreq < MAX_INFLIGHT && c->inflight_bytes < MAX_INFLIGHT_BYTES;
}

static void update_events(sm_conn_t *c)
{
    if (c->closed)
        return;
    bool want_read = can_read(c) && !c->stash;
    /* RDHUP only while reading: level-triggered, it would spin otherwise. */
    uint32_t ev = (want_read ? EPOLLIN | EPOLLRDHUP : 0) | (c->want_write ? EPOLLOUT : 0);
    if (sm_loop_rewatch(c->loop, c->fd, ev, conn_io, c) != SM_OK)
        conn_close(c, "epoll failure");
    c->reading = want_read;
}

const char *sm_req_peer(const sm_req_t *req) { return req->conn->peer; }

const char *sm_req_listener(const sm_req_t *req) { return req->conn->listener; }
uint8_t sm_req_scope(const sm_req_t *req) { return req->conn->scope; }

/* ------------------------------------------------------------ input */

/* Parse the request header and hand the request to its handler. Takes
 * ownership of frame (a bufpool buffer). */
static void conn_dispatch(sm_conn_t *c, uint8_t *frame, int32_t len)
{
    if (SM_UNLIKELY(sm_server_stopping(c->srv))) {
        /* Shutting down: what was read before is answered, nothing new is
         * started (a polling client would otherwise keep the drain open);
         * the connection closes when the loops stop. */
        sm_buf_release(c->cl->frames, frame);
        return;
    }
    sm_rd_t r;
    sm_rd_init(&r, frame, (size_t)len);
    int16_t key = sm_rd_i16(&r);
    int16_t ver = sm_rd_i16(&r);
    int32_t corr = sm_rd_i32(&r);
    if (r.err) {
        sm_buf_release(c->cl->frames, frame);
        conn_close(c, "request header truncated");
        return;
    }
    const sm_dispatch_t *d = sm_dispatch_lookup(key);
    if (d && !(d->scope & c->scope)) {
        /* Kafka closes the connection too: the API is not enabled there. */
        sm_buf_release(c->cl->frames, frame);
        char why[128];
        snprintf(why, sizeof why, "api key %d is not served on the %s listener %s", key,
                 c->scope == SM_SCOPE_CONTROLLER ? "controller" : "client", c->listener);
        conn_close(c, why);
        return;
    }
    if (!d) {
        sm_buf_release(c->cl->frames, frame);
        char why[96];
        snprintf(why, sizeof why, "unsupported api key %d (version %d)", key, ver);
        conn_close(c, why);
        return;
    }
    bool version_ok = ver >= d->min_version && ver <= d->max_version;
    if (!version_ok && key != SM_API_API_VERSIONS) {
        sm_buf_release(c->cl->frames, frame);
        char why[96];
        snprintf(why, sizeof why, "unsupported version %d of api key %d", ver, key);
        conn_close(c, why);
        return;
    }
    sm_req_t *req = req_new(c->cl);
    __atomic_fetch_add(&sm_server_conn_stats(c->srv)->inflight, 1, __ATOMIC_RELAXED);
    req->srv = c->srv;
    req->conn = c;
    sm_ref_keep(&c->ref);
    req->api_key = key;
    req->api_version = ver;
    req->correlation_id = corr;
    req->frame = frame;
    req->body = r; /* end = frame + len, which pop_head uses to count bytes */
    req->received_us = sm_now_mono_us();
    req->client_id = (sm_str_t){NULL, -1};
    if (c->tail)
        c->tail->next = req;
    else
        c->head = req;
    c->tail = req;
    c->nreq++;
    c->inflight_bytes += len;

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

/* Consume bytes: complete frames are dispatched, a trailing partial frame
 * stays in the framer. Stops early on close or backpressure; returns the
 * bytes consumed. */
static size_t conn_consume(sm_conn_t *c, const uint8_t *p, size_t n)
{
    size_t pos = 0;
    while (pos < n && !c->closed && can_read(c)) {
        size_t used;
        uint8_t *frame;
        int32_t len;
        sm_err_t err = sm_framer_feed(&c->in, p + pos, n - pos, &used, &frame, &len);
        pos += used;
        if (err) {
            char why[128];
            snprintf(why, sizeof why, "invalid request size %d (socket.request.max.bytes=%d)",
                     c->in.bad_size, c->in.max_size);
            conn_close(c, why);
            break;
        }
        if (frame)
            conn_dispatch(c, frame, len);
    }
    return pos;
}

/* Keep bytes the backpressure limit left unparsed. */
static void conn_stash(sm_conn_t *c, const uint8_t *p, size_t n)
{
    uint8_t *s = sm_xmalloc(c->stash_len + n);
    if (c->stash_len)
        memcpy(s, c->stash, c->stash_len);
    memcpy(s + c->stash_len, p, n);
    free(c->stash);
    c->stash = s;
    c->stash_len += n;
}

/* Parse stashed bytes after requests drained. False if closed. */
static bool conn_resume(sm_conn_t *c)
{
    if (!c->stash || c->closed)
        return !c->closed;
    uint8_t *s = c->stash;
    size_t len = c->stash_len;
    c->stash = NULL;
    c->stash_len = 0;
    size_t used = conn_consume(c, s, len);
    if (!c->closed && used < len)
        conn_stash(c, s + used, len - used);
    free(s);
    return !c->closed;
}

static void conn_read(sm_conn_t *c)
{
    uint8_t *rbuf = c->cl->rbuf;
    for (int rounds = 0; rounds < READ_ROUNDS && !c->closed && can_read(c) && !c->stash;
         rounds++) {
        ssize_t n;
        uint8_t *dst;
        size_t room;
        if (sm_framer_direct(&c->in, &dst, &room)) {
            /* The rest of a large frame: straight into it, up to its end. */
            n = read(c->fd, dst, room);
            if (n > 0) {
                conn_touch(c);
                uint8_t *frame;
                int32_t len;
                sm_framer_direct_done(&c->in, (size_t)n, &frame, &len);
                if (frame)
                    conn_dispatch(c, frame, len);
                continue;
            }
        } else {
            /* After a large frame, the next one is likely large too: read
             * only its prefix through the shared buffer, so its body is read
             * straight into its own buffer instead of being copied out of
             * rbuf (memcpy was 12% of the broker's CPU on 1 KB produce). */
            size_t want = sm_framer_want(&c->in, RBUF_SIZE);
            n = read(c->fd, rbuf, want);
            if (n > 0) {
                conn_touch(c);
                size_t used = conn_consume(c, rbuf, (size_t)n);
                if (c->closed)
                    return;
                if (used < (size_t)n) {
                    conn_stash(c, rbuf + used, (size_t)n - used);
                    update_events(c); /* stop reading until requests drain */
                    return;
                }
                if ((size_t)n < want)
                    return; /* drained the socket (level-triggered: more comes as an event) */
                continue;
            }
        }
        if (n == 0) {
            conn_close(c, sm_framer_partial(&c->in) ? "peer closed mid-frame" : NULL);
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
    if (!c->closed && c->reading && !can_read(c))
        update_events(c);
}

/* ------------------------------------------------------------ output */

/* The head request is finished: unlink and free it. */
static void pop_head(sm_conn_t *c)
{
    sm_req_t *req = c->head;
    c->head = req->next;
    if (!c->head)
        c->tail = NULL;
    c->nreq--;
    c->inflight_bytes -= (int64_t)(req->body.end - req->frame);
    c->out_mem = 0;
    c->out_splice = 0;
    c->out_splice_pos = 0;
    if (c->cl && c->cl->lm) { /* metrics: on the loop thread only */
        sm_loop_metrics_request(c->cl->lm, req->api_key, sm_now_mono_us() - req->received_us);
        if (__atomic_load_n(&req->state, __ATOMIC_RELAXED) == REQ_FAILED)
            sm_metrics_error(c->cl->metrics, req->api_key, KERR_INVALID_REQUEST);
    }
    req_free(req);
}

static bool req_is_done(sm_req_t *req)
{
    return __atomic_load_n(&req->state, __ATOMIC_ACQUIRE) != REQ_PENDING;
}

/* Send what the socket takes from the DONE requests at the head.
 * Returns 1 if everything ready was sent, 0 if the socket is full, -1 on a
 * socket error. Frees sent and failed requests as it goes. */
static int conn_send(sm_conn_t *c, bool *sent_any)
{
    for (;;) {
        /* Failed requests (connection closing) and empty acks=0 answers. */
        while (c->head && req_is_done(c->head) &&
               (__atomic_load_n(&c->head->state, __ATOMIC_ACQUIRE) == REQ_FAILED ||
                (c->out_mem == c->head->resp.len && c->out_splice == c->head->resp.nsplices))) {
            pop_head(c);
            *sent_any = true;
        }
        sm_req_t *req = c->head;
        if (!req || !req_is_done(req))
            return 1;
        sm_wbuf_t *w = &req->resp;
        if (c->out_splice < w->nsplices && c->out_mem == w->splices[c->out_splice].at) {
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
                errno = EIO;
                return -1;
            }
            c->out_splice_pos += n;
            if (c->out_splice_pos == s->len) {
                c->out_splice++;
                c->out_splice_pos = 0;
            }
            continue;
        }
        /* Gather memory parts: the head's up to its next splice (or end),
         * then whole following responses up to their first splice. */
        struct iovec iov[MAX_IOV];
        int niov = 0;
        bool more = false;
        size_t from = c->out_mem;
        for (sm_req_t *r = req; r && niov < MAX_IOV && req_is_done(r); r = r->next) {
            if (__atomic_load_n(&r->state, __ATOMIC_ACQUIRE) == REQ_FAILED)
                break; /* popped on the next pass */
            const sm_wbuf_t *rw = &r->resp;
            int sp = r == req ? c->out_splice : 0;
            size_t end = sp < rw->nsplices ? rw->splices[sp].at : rw->len;
            if (end > from)
                iov[niov++] = (struct iovec){rw->mem + from, end - from};
            if (sp < rw->nsplices) {
                more = true; /* file bytes follow at once */
                break;
            }
            from = 0;
        }
        if (niov == 0)
            return 1; /* nothing but splices/empties: handled above */
        struct msghdr mh = {.msg_iov = iov, .msg_iovlen = (size_t)niov};
        ssize_t n = sendmsg(c->fd, &mh, MSG_NOSIGNAL | (more ? MSG_MORE : 0));
        if (n < 0) {
            if (errno == EAGAIN || errno == EWOULDBLOCK)
                return 0;
            if (errno == EINTR)
                continue;
            return -1;
        }
        /* Advance through the requests the bytes covered. */
        size_t left = (size_t)n;
        while (left > 0) {
            sm_req_t *r = c->head;
            sm_wbuf_t *rw = &r->resp;
            size_t end = c->out_splice < rw->nsplices ? rw->splices[c->out_splice].at : rw->len;
            size_t k = SM_MIN(left, end - c->out_mem);
            c->out_mem += k;
            left -= k;
            if (c->out_mem == rw->len && c->out_splice == rw->nsplices) {
                pop_head(c);
                *sent_any = true;
            } else if (c->out_mem == end) {
                break; /* at a splice (left is 0 then) */
            }
        }
        size_t total = 0;
        for (int i = 0; i < niov; i++)
            total += iov[i].iov_len;
        if ((size_t)n < total)
            return 0; /* short write: the socket is full */
    }
}

static void conn_flush(sm_conn_t *c)
{
    /* Every caller holds a reference to c, so popping (which releases the
     * requests' references) cannot free it under us. */
    bool sent_any = false;
    if (c->closed) {
        /* Drop finished responses; parked requests free themselves. */
        while (c->head && req_is_done(c->head))
            pop_head(c);
        return;
    }
    int rc = conn_send(c, &sent_any);
    if (rc < 0) {
        char why[96];
        snprintf(why, sizeof why, "write: %s", strerror(errno));
        conn_close(c, why);
        return;
    }
    if (sent_any)
        conn_touch(c);
    bool want_write = rc == 0;
    bool resume = sent_any && (c->stash || !c->reading) && can_read(c);
    if (want_write != c->want_write || (resume && !c->stash)) {
        c->want_write = want_write;
        update_events(c);
    }
    if (resume && c->stash) {
        /* Frames read before a backpressure pause. */
        if (conn_resume(c) && !c->stash)
            update_events(c);
    }
}

static void conn_io(void *ctx, uint32_t events)
{
    sm_conn_t *c = ctx;
    sm_ref_keep(&c->ref);
    if (events & EPOLLOUT)
        conn_flush(c);
    if (!c->closed && (events & (EPOLLIN | EPOLLERR | EPOLLHUP | EPOLLRDHUP))) {
        if (c->reading)
            conn_read(c); /* reaches the EOF or error itself */
        else if (events & (EPOLLERR | EPOLLHUP))
            conn_close(c, (events & EPOLLERR) ? "socket error" : NULL); /* cannot answer */
    }
    sm_ref_release(&c->ref);
}

/* Flush task: runs on the loop after the batch of events in which one or
 * more requests finished; owns one reference. */
static void flush_task_run(void *arg)
{
    sm_conn_t *c = arg;
    conn_flush(c);
    sm_ref_release(&c->ref);
}

void sm_conn_start(sm_server_t *srv, sm_loop_t *l, int fd, const char *peer,
                   const char *listener, bool controller)
{
    sm_conn_t *c = sm_xcalloc(1, sizeof *c);
    sm_ref_init(&c->ref, conn_free);
    __atomic_fetch_add(&sm_server_conn_stats(srv)->conns, 1, __ATOMIC_RELAXED);
    c->srv = srv;
    c->loop = l;
    c->fd = fd;
    snprintf(c->peer, sizeof c->peer, "%s", peer);
    c->listener = listener;
    c->scope = controller ? SM_SCOPE_CONTROLLER : SM_SCOPE_BROKER;
    sm_loop_task_init(&c->flush_task, flush_task_run, c);
    c->reading = true;
    if (sm_loop_watch(l, fd, EPOLLIN | EPOLLRDHUP, conn_io, c) != SM_OK) {
        close(fd);
        sm_ref_release(&c->ref);
        return;
    }
    conn_loop_t *cl = conn_loop_get(srv, l);
    c->cl = cl;
    sm_framer_init(&c->in, cl->frames, 8, sm_server_config(srv)->socket_request_max_bytes);
    c->active_ms = sm_now_mono_ms();
    lru_append(cl, c);
    cl->nconns++;
    if (!cl->sweep_timer && cl->idle_ms > 0)
        cl->sweep_timer =
            sm_loop_timer(l, c->active_ms + sweep_period_ms(cl), idle_sweep, cl);
    SM_DEBUG("net", "accepted connection from %s on loop %d", peer, sm_loop_id(l));
}

/* ------------------------------------------------------------ completion, any thread */

static void req_finish(sm_req_t *req, int state)
{
    /* Patch the frame size now: the response is complete. */
    if (state == REQ_DONE && req->resp.len >= 4)
        sm_wbuf_patch_i32(&req->resp, 0, (int32_t)(sm_wbuf_total(&req->resp) - 4));
    /* Take what we need from req first: once DONE is published the loop
     * may send and free it. The reference keeps c alive until the flush. */
    sm_conn_t *c = req->conn;
    sm_ref_keep(&c->ref);
    __atomic_store_n(&req->state, state, __ATOMIC_RELEASE);
    /* Never flush inline: the caller may be the handler running inside
     * conn_consume(). The task runs after this batch of events. */
    if (!sm_loop_post_task(c->loop, &c->flush_task))
        sm_ref_release(&c->ref); /* a flush is already queued (holding its own) */
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
    sm_ref_keep(&c->ref); /* for fail_posted */
    __atomic_store_n(&req->state, REQ_FAILED, __ATOMIC_RELEASE);
    /* The failed request is freed by the flush the close performs. */
    sm_loop_post(c->loop, fail_posted, c);
}
