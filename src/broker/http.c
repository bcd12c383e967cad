/*
 * http.c - the metrics listener's HTTP/1.1 server (see http.h for the
 * limits it enforces).
 *
 * One connection's life:
 *
 *   accept ──> READING ──(blank line)──> WRITING ──(all sent)──> LINGER ──> closed
 *                 │  too large / malformed: 400       │ write timeout   │ EOF or 1 s
 *                 │  read timeout: 408                 └──> closed       └──> closed
 *                 └──> WRITING (error reply)
 *
 * LINGER half-closes the socket and drains what the client still sends, so
 * that closing with unread bytes (a body, a pipelined request) does not
 * reset the connection before the client read the response.
 *
 * Threads: everything runs on the server's own loop thread (sm_loop), except
 * sm_http_open/start/close (the broker's main thread) and sm_http_parse
 * (pure).
 */
#define _GNU_SOURCE
#include "http.h"
#include "log.h"
#include "loop.h"
#include "net.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#define LINGER_MS 1000

enum { H_READING, H_WRITING, H_LINGER };

typedef struct hconn {
    struct sm_http_server *s;
    int fd;
    int state;
    char peer[64];
    char in[SM_HTTP_MAX_REQUEST + 1];
    size_t in_len;
    char *out;
    size_t out_len, out_pos;
    uint64_t timer;
    struct hconn *prev, *next; /* accept order: oldest first */
} hconn_t;

struct sm_http_server {
    sm_loop_t *loop;
    int fd;
    bool started;
    sm_http_fn fn;
    void *ctx;
    hconn_t *head, *tail;
    int nconns;
};

/* ------------------------------------------------------------ parsing */

static bool is_tchar(char ch)
{
    return (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') ||
           (ch && strchr("!#$%&'*+-.^_`|~", ch));
}

sm_http_parse_t sm_http_parse(const char *buf, size_t len, sm_http_req_t *out)
{
    memset(out, 0, sizeof *out);
    const char *end = memmem(buf, len, "\r\n\r\n", 4);
    if (!end)
        return SM_HTTP_INCOMPLETE;
    /* request line: method SP target SP HTTP/1.x CRLF */
    const char *p = buf, *line_end = memmem(buf, (size_t)(end - buf) + 2, "\r\n", 2);
    const char *m = p;
    while (p < line_end && is_tchar(*p))
        p++;
    if (p == m || p >= line_end || *p != ' ')
        return SM_HTTP_BAD;
    out->method = m;
    out->method_len = (size_t)(p - m);
    const char *t = ++p;
    while (p < line_end && *p != ' ') {
        if ((unsigned char)*p <= 0x20 || (unsigned char)*p >= 0x7f)
            return SM_HTTP_BAD;
        p++;
    }
    if (p == t || p >= line_end || *t != '/')
        return SM_HTTP_BAD;
    const char *q = memchr(t, '?', (size_t)(p - t));
    out->path = t;
    out->path_len = (size_t)((q ? q : p) - t);
    p++;
    if ((size_t)(line_end - p) != 8 || memcmp(p, "HTTP/1.", 7) != 0 || (p[7] != '0' && p[7] != '1'))
        return SM_HTTP_BAD;
    /* header fields: name ":" value CRLF, no control characters */
    p = line_end + 2;
    while (p < end + 2) {
        const char *le = memmem(p, (size_t)(end + 2 - p), "\r\n", 2);
        if (!le)
            return SM_HTTP_BAD;
        const char *n = p;
        while (p < le && is_tchar(*p))
            p++;
        if (p == n || p >= le || *p != ':')
            return SM_HTTP_BAD;
        for (; p < le; p++)
            if (((unsigned char)*p < 0x20 && *p != '\t') || *p == 0x7f)
                return SM_HTTP_BAD;
        p = le + 2;
    }
    out->head = out->method_len == 4 && memcmp(out->method, "HEAD", 4) == 0;
    return SM_HTTP_DONE;
}

/* ------------------------------------------------------------ connections */

static void hconn_io(void *ctx, uint32_t events);
static void hconn_error(hconn_t *c, int status, const char *why);

static void hconn_close(hconn_t *c)
{
    sm_http_server_t *s = c->s;
    sm_loop_unwatch(s->loop, c->fd);
    close(c->fd);
    if (c->timer)
        sm_loop_timer_cancel(s->loop, c->timer);
    if (c->prev)
        c->prev->next = c->next;
    else
        s->head = c->next;
    if (c->next)
        c->next->prev = c->prev;
    else
        s->tail = c->prev;
    s->nconns--;
    free(c->out);
    free(c);
}

static void hconn_timeout(void *arg)
{
    hconn_t *c = arg;
    c->timer = 0;
    if (c->state == H_READING) {
        hconn_error(c, 408, "request not complete in time"); /* best effort, then close */
        return;
    }
    hconn_close(c);
}

static void hconn_linger(hconn_t *c)
{
    c->state = H_LINGER;
    shutdown(c->fd, SHUT_WR);
    if (c->timer)
        sm_loop_timer_cancel(c->s->loop, c->timer);
    c->timer = sm_loop_timer(c->s->loop, sm_now_mono_ms() + LINGER_MS, hconn_timeout, c);
    if (sm_loop_rewatch(c->s->loop, c->fd, EPOLLIN | EPOLLRDHUP, hconn_io, c) != SM_OK)
        hconn_close(c);
}

/* Send what the socket takes; LINGER when done. */
static void hconn_write(hconn_t *c)
{
    while (c->out_pos < c->out_len) {
        ssize_t n = send(c->fd, c->out + c->out_pos, c->out_len - c->out_pos, MSG_NOSIGNAL);
        if (n > 0) {
            c->out_pos += (size_t)n;
            continue;
        }
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
            if (sm_loop_rewatch(c->s->loop, c->fd, EPOLLOUT, hconn_io, c) != SM_OK)
                hconn_close(c);
            return;
        }
        hconn_close(c);
        return;
    }
    hconn_linger(c);
}

static const char *status_text(int status)
{
    switch (status) {
    case 200: return "OK";
    case 400: return "Bad Request";
    case 404: return "Not Found";
    case 405: return "Method Not Allowed";
    case 408: return "Request Timeout";
    case 500: return "Internal Server Error";
    case 503: return "Service Unavailable";
    default: return "Unknown";
    }
}

/* Queue a response (body taken over) and start sending it. */
static void hconn_reply(hconn_t *c, int status, const char *ctype, char *body, size_t len,
                        bool head)
{
    char hdr[256];
    int n = snprintf(hdr, sizeof hdr,
                     "HTTP/1.1 %d %s\r\nContent-Type: %s\r\nContent-Length: %zu\r\n%s"
                     "Connection: close\r\n\r\n",
                     status, status_text(status), ctype, len,
                     status == 405 ? "Allow: GET, HEAD\r\n" : "");
    size_t blen = head ? 0 : len;
    c->out = sm_xmalloc((size_t)n + blen);
    memcpy(c->out, hdr, (size_t)n);
    if (blen)
        memcpy(c->out + n, body, blen);
    free(body);
    c->out_len = (size_t)n + blen;
    c->out_pos = 0;
    c->state = H_WRITING;
    if (c->timer)
        sm_loop_timer_cancel(c->s->loop, c->timer);
    c->timer = sm_loop_timer(c->s->loop, sm_now_mono_ms() + SM_HTTP_WRITE_TIMEOUT_MS, hconn_timeout,
                             c);
    hconn_write(c);
}

static void hconn_error(hconn_t *c, int status, const char *why)
{
    SM_DEBUG("http", "%s: %d: %s", c->peer, status, why);
    char *body = sm_xasprintf("%s\n", why);
    hconn_reply(c, status, "text/plain; charset=utf-8", body, strlen(body), false);
}

static void hconn_request(hconn_t *c, const sm_http_req_t *rq)
{
    bool get = rq->method_len == 3 && memcmp(rq->method, "GET", 3) == 0;
    if (!get && !rq->head) {
        hconn_error(c, 405, "only GET and HEAD are served");
        return;
    }
    char path[SM_HTTP_MAX_REQUEST + 1];
    memcpy(path, rq->path, rq->path_len);
    path[rq->path_len] = 0;
    sm_http_reply_t r = {404, "text/plain; charset=utf-8", NULL, 0};
    c->s->fn(c->s->ctx, path, &r);
    if (!r.body) {
        r.body = sm_xasprintf("%s\n", status_text(r.status));
        r.len = strlen(r.body);
    }
    hconn_reply(c, r.status, r.content_type, r.body, r.len, rq->head);
}

static void hconn_read(hconn_t *c)
{
    for (;;) {
        if (c->state == H_LINGER) {
            char sink[4096];
            ssize_t n = read(c->fd, sink, sizeof sink);
            if (n > 0)
                continue;
            if (n < 0 && errno == EINTR)
                continue;
            if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
                return;
            hconn_close(c);
            return;
        }
        size_t room = SM_HTTP_MAX_REQUEST - c->in_len;
        if (room == 0) {
            hconn_error(c, 400, "request head too large");
            return;
        }
        ssize_t n = read(c->fd, c->in + c->in_len, room);
        if (n == 0) {
            hconn_close(c);
            return;
        }
        if (n < 0) {
            if (errno == EINTR)
                continue;
            if (errno != EAGAIN && errno != EWOULDBLOCK)
                hconn_close(c);
            return;
        }
        c->in_len += (size_t)n;
        sm_http_req_t rq;
        sm_http_parse_t r = sm_http_parse(c->in, c->in_len, &rq);
        if (r == SM_HTTP_BAD) {
            hconn_error(c, 400, "malformed request");
            return;
        }
        if (r == SM_HTTP_DONE) {
            hconn_request(c, &rq);
            return;
        }
    }
}

static void hconn_io(void *ctx, uint32_t events)
{
    hconn_t *c = ctx;
    if (c->state == H_WRITING) {
        if (events & (EPOLLERR | EPOLLHUP))
            hconn_close(c);
        else if (events & EPOLLOUT)
            hconn_write(c);
        return;
    }
    hconn_read(c);
}

static void on_accept(void *ctx, uint32_t events)
{
    sm_http_server_t *s = ctx;
    (void)events;
    for (int i = 0; i < 16; i++) {
        int fd;
        char peer[64];
        if (sm_net_accept(s->fd, &fd, peer, sizeof peer) != SM_OK)
            return;
        if (s->nconns >= SM_HTTP_MAX_CONNS) {
            /* Make room: the oldest connection still sending its request. */
            hconn_t *old = s->head;
            while (old && old->state != H_READING)
                old = old->next;
            if (!old) {
                close(fd);
                continue;
            }
            SM_INFO("http", "too many metrics connections: closing %s (oldest incomplete request)",
                    old->peer);
            hconn_close(old);
        }
        hconn_t *c = sm_xcalloc(1, sizeof *c);
        c->s = s;
        c->fd = fd;
        snprintf(c->peer, sizeof c->peer, "%s", peer);
        if (sm_loop_watch(s->loop, fd, EPOLLIN | EPOLLRDHUP, hconn_io, c) != SM_OK) {
            close(fd);
            free(c);
            continue;
        }
        c->prev = s->tail;
        if (s->tail)
            s->tail->next = c;
        else
            s->head = c;
        s->tail = c;
        s->nconns++;
        c->timer =
            sm_loop_timer(s->loop, sm_now_mono_ms() + SM_HTTP_READ_TIMEOUT_MS, hconn_timeout, c);
    }
}

/* ------------------------------------------------------------ lifecycle */

sm_err_t sm_http_open(const char *host, int port, sm_http_fn fn, void *ctx,
                      sm_http_server_t **out, int *port_out)
{
    sm_http_server_t *s = sm_xcalloc(1, sizeof *s);
    s->fn = fn;
    s->ctx = ctx;
    if (sm_net_listen(host, port, 64, &s->fd, port_out) != SM_OK) {
        free(s);
        return SM_ERR_IO;
    }
    s->loop = sm_loop_new(-1);
    *out = s;
    return SM_OK;
}

sm_err_t sm_http_start(sm_http_server_t *s)
{
    if (sm_loop_watch(s->loop, s->fd, EPOLLIN, on_accept, s) != SM_OK)
        return SM_ERR_IO;
    if (sm_loop_start_thread(s->loop) != SM_OK)
        return SM_ERR_IO;
    s->started = true;
    return SM_OK;
}

void sm_http_close(sm_http_server_t *s)
{
    if (!s)
        return;
    if (s->started) {
        sm_loop_stop(s->loop);
        sm_loop_join(s->loop);
    }
    while (s->head)
        hconn_close(s->head);
    close(s->fd);
    sm_loop_free(s->loop);
    free(s);
}
