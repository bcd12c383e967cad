/* test_peer.c - the node-to-node client (src/env/peer.c) against a small
 * Kafka-framed server running on the same event loop: pipelined requests
 * answered in order, flexible headers, a server that closes, one that never
 * answers, none at all, a response out of order, an oversized response, the
 * queue limit, and freeing the peer from inside a callback. */
#define _GNU_SOURCE
#include "loop.h"
#include "net.h"
#include "peer.h"
#include "sm_test.h"

#include <errno.h>
#include <stdint.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

enum { ECHO, SILENT, CLOSE_AFTER, BAD_CORR, HUGE };

typedef struct server {
    sm_loop_t *loop;
    int lfd, port;
    int mode;
    int close_after; /* CLOSE_AFTER: close after this many requests on a connection */
    int flexible;    /* answer with response header v1 (one empty tag byte) */
    int cfd;
    uint8_t buf[1 << 20];
    size_t have;
    int seen; /* requests on the current connection */
    int total;
} server_t;

static sm_loop_t *L;
static server_t S;

static uint32_t be32(const uint8_t *b)
{
    return (uint32_t)b[0] << 24 | (uint32_t)b[1] << 16 | (uint32_t)b[2] << 8 | b[3];
}

static void put32(uint8_t *b, uint32_t v)
{
    b[0] = (uint8_t)(v >> 24), b[1] = (uint8_t)(v >> 16), b[2] = (uint8_t)(v >> 8), b[3] = (uint8_t)v;
}

static void server_close_conn(server_t *s)
{
    if (s->cfd >= 0) {
        sm_loop_unwatch(s->loop, s->cfd);
        close(s->cfd);
        s->cfd = -1;
    }
    s->have = 0;
    s->seen = 0;
}

/* Answer one request frame (size prefix stripped). */
static void server_answer(server_t *s, const uint8_t *req, size_t len)
{
    s->seen++;
    s->total++;
    if (s->mode == SILENT)
        return;
    if (s->mode == CLOSE_AFTER && s->seen >= s->close_after) {
        server_close_conn(s);
        return;
    }
    uint32_t corr = be32(req + 4);
    size_t idlen = (size_t)(req[8] << 8 | req[9]);
    size_t off = 10 + idlen + (s->flexible ? 1 : 0); /* header v2 adds a tag byte */
    size_t blen = len - off;
    uint8_t out[4096];
    size_t n = 4;
    put32(out + n, s->mode == BAD_CORR ? corr + 7 : corr);
    n += 4;
    if (s->flexible)
        out[n++] = 0;
    memcpy(out + n, req + off, blen);
    n += blen;
    put32(out, s->mode == HUGE ? (uint32_t)(200 << 20) : (uint32_t)(n - 4));
    ssize_t w = send(s->cfd, out, s->mode == HUGE ? 8 : n, MSG_NOSIGNAL);
    (void)w;
}

static void server_io(void *ctx, uint32_t events)
{
    server_t *s = ctx;
    (void)events;
    for (;;) {
        ssize_t n = recv(s->cfd, s->buf + s->have, sizeof s->buf - s->have, 0);
        if (n <= 0) {
            if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
                return;
            server_close_conn(s);
            return;
        }
        s->have += (size_t)n;
        size_t pos = 0;
        while (s->have - pos >= 4) {
            size_t len = be32(s->buf + pos);
            if (s->have - pos - 4 < len)
                break;
            server_answer(s, s->buf + pos + 4, len);
            if (s->cfd < 0)
                return;
            pos += 4 + len;
        }
        memmove(s->buf, s->buf + pos, s->have - pos);
        s->have -= pos;
    }
}

static void server_accept(void *ctx, uint32_t events)
{
    server_t *s = ctx;
    (void)events;
    int fd;
    char peer[64];
    while (sm_net_accept(s->lfd, &fd, peer, sizeof peer) == SM_OK) {
        server_close_conn(s); /* one connection at a time */
        s->cfd = fd;
        if (sm_loop_watch(s->loop, fd, EPOLLIN, server_io, s) != SM_OK)
            close(fd);
    }
}

static void server_start(int mode)
{
    S.loop = L;
    S.mode = mode;
    S.cfd = -1;
    S.have = S.seen = S.total = 0;
    S.flexible = 0;
    if (sm_net_listen("127.0.0.1", 0, 16, &S.lfd, &S.port) != SM_OK ||
        sm_loop_watch(L, S.lfd, EPOLLIN, server_accept, &S) != SM_OK) {
        fprintf(stderr, "cannot start the test server\n");
        exit(1);
    }
}

static void server_stop(void)
{
    server_close_conn(&S);
    sm_loop_unwatch(L, S.lfd);
    close(S.lfd);
}

/* ------------------------------------------------------------ running */

typedef struct result {
    int calls;
    sm_err_t err;
    char body[64];
    size_t len;
} result_t;

static void on_resp(void *ctx, sm_err_t err, const uint8_t *body, size_t len)
{
    result_t *r = ctx;
    r->calls++;
    r->err = err;
    r->len = len;
    if (body && len < sizeof r->body)
        memcpy(r->body, body, len);
}

static bool (*until_fn)(void);
static int64_t until_deadline;

static void until_check(void *arg)
{
    (void)arg;
    if (until_fn() || sm_now_mono_ms() > until_deadline)
        sm_loop_stop(L);
    else
        sm_loop_timer(L, sm_now_mono_ms() + 2, until_check, NULL);
}

/* Run the loop until pred() holds (true) or timeout_ms passes (false). */
static bool run_until(bool (*pred)(void), int timeout_ms)
{
    until_fn = pred;
    until_deadline = sm_now_mono_ms() + timeout_ms;
    sm_loop_timer(L, sm_now_mono_ms() + 1, until_check, NULL);
    sm_loop_resume(L);
    sm_loop_run(L);
    return pred();
}

#define N 200
static result_t R[N];
static int ndone(void)
{
    int n = 0;
    for (int i = 0; i < N; i++)
        n += R[i].calls;
    return n;
}
static bool all_done(void) { return ndone() == N; }
static bool first_done(void) { return R[0].calls > 0; }
static bool three_done(void) { return R[0].calls && R[1].calls && R[2].calls; }

static void send_one(sm_peer_t *p, int i, int hv, int64_t timeout_ms)
{
    char body[32];
    int n = snprintf(body, sizeof body, "req-%d", i);
    sm_err_t e = sm_peer_send(p, 18, 3, hv, hv == 2 ? 1 : 0, (const uint8_t *)body, (size_t)n,
                              timeout_ms, on_resp, &R[i]);
    CHECK_EQ(e, SM_OK);
}

static void test_pipelined_in_order(void)
{
    memset(R, 0, sizeof R);
    server_start(ECHO);
    sm_peer_t *p = sm_peer_new(L, "127.0.0.1", S.port, NULL);
    for (int i = 0; i < N; i++)
        send_one(p, i, 1, 5000);
    CHECK(run_until(all_done, 5000));
    int ok = 0;
    for (int i = 0; i < N; i++) {
        char want[32];
        int n = snprintf(want, sizeof want, "req-%d", i);
        ok += R[i].calls == 1 && R[i].err == SM_OK && R[i].len == (size_t)n &&
              memcmp(R[i].body, want, (size_t)n) == 0;
    }
    CHECK_EQ(ok, N);
    CHECK(sm_peer_connected(p));
    CHECK_EQ(sm_peer_outstanding(p), 0);
    /* flexible headers both ways: the peer writes the tag byte and skips it */
    memset(R, 0, sizeof R);
    S.flexible = 1;
    send_one(p, 0, 2, 5000);
    CHECK(run_until(first_done, 5000));
    CHECK_EQ(R[0].err, SM_OK);
    CHECK(R[0].len == 5 && memcmp(R[0].body, "req-0", 5) == 0);
    sm_peer_free(p);
    server_stop();
}

static void test_server_closes_then_reconnect(void)
{
    memset(R, 0, sizeof R);
    server_start(CLOSE_AFTER);
    S.close_after = 3; /* reads 3 requests, answers 2, closes on the third */
    sm_peer_t *p = sm_peer_new(L, "127.0.0.1", S.port, NULL);
    for (int i = 0; i < 3; i++)
        send_one(p, i, 1, 5000);
    CHECK(run_until(three_done, 5000));
    CHECK_EQ(R[0].err, SM_OK);
    CHECK_EQ(R[1].err, SM_OK);
    CHECK_EQ(R[2].err, SM_ERR_CLOSED); /* written, never answered */
    /* the next request goes out on a new connection */
    S.mode = ECHO;
    memset(R, 0, sizeof R);
    send_one(p, 0, 1, 5000);
    CHECK(run_until(first_done, 5000));
    CHECK_EQ(R[0].err, SM_OK);
    sm_peer_free(p);
    server_stop();
}

static void test_silent_server_times_out(void)
{
    memset(R, 0, sizeof R);
    server_start(SILENT);
    sm_peer_t *p = sm_peer_new(L, "127.0.0.1", S.port, NULL);
    int64_t t0 = sm_now_mono_ms();
    send_one(p, 0, 1, 150);
    CHECK(run_until(first_done, 5000));
    CHECK_EQ(R[0].err, SM_ERR_AGAIN);
    CHECK(sm_now_mono_ms() - t0 >= 150);
    CHECK(!sm_peer_connected(p)); /* a late answer would be out of order: dropped */
    sm_peer_free(p);
    server_stop();
}

static void test_nobody_listening(void)
{
    memset(R, 0, sizeof R);
    server_start(ECHO);
    int port = S.port;
    server_stop(); /* the port is now closed */
    sm_peer_config_t cfg = {.backoff_ms = 10, .backoff_max_ms = 40};
    sm_peer_t *p = sm_peer_new(L, "127.0.0.1", port, &cfg);
    send_one(p, 0, 1, 300);
    CHECK(run_until(first_done, 5000));
    CHECK_EQ(R[0].err, SM_ERR_AGAIN);
    CHECK_EQ(sm_peer_outstanding(p), 0);
    sm_peer_free(p);
}

static void test_bad_responses(void)
{
    memset(R, 0, sizeof R);
    server_start(BAD_CORR);
    sm_peer_t *p = sm_peer_new(L, "127.0.0.1", S.port, NULL);
    send_one(p, 0, 1, 5000);
    CHECK(run_until(first_done, 5000));
    CHECK_EQ(R[0].err, SM_ERR_CORRUPT);
    sm_peer_free(p);
    server_stop();

    memset(R, 0, sizeof R);
    server_start(HUGE);
    p = sm_peer_new(L, "127.0.0.1", S.port, NULL);
    send_one(p, 0, 1, 5000);
    CHECK(run_until(first_done, 5000));
    CHECK_EQ(R[0].err, SM_ERR_TOO_LARGE);
    sm_peer_free(p);
    server_stop();
}

static void test_queue_limit(void)
{
    memset(R, 0, sizeof R);
    server_start(SILENT);
    sm_peer_config_t cfg = {.max_queued = 4};
    sm_peer_t *p = sm_peer_new(L, "127.0.0.1", S.port, &cfg);
    for (int i = 0; i < 4; i++)
        send_one(p, i, 1, 5000);
    CHECK_EQ(sm_peer_send(p, 18, 3, 1, 0, (const uint8_t *)"x", 1, 5000, on_resp, &R[4]),
             SM_ERR_AGAIN);
    CHECK_EQ(sm_peer_outstanding(p), 4);
    sm_peer_free(p); /* all four answered SM_ERR_CLOSED */
    int closed = 0;
    for (int i = 0; i < 4; i++)
        closed += R[i].calls == 1 && R[i].err == SM_ERR_CLOSED;
    CHECK_EQ(closed, 4);
    CHECK_EQ(R[4].calls, 0);
    server_stop();
}

static sm_peer_t *freed_in_cb;
static void free_from_cb(void *ctx, sm_err_t err, const uint8_t *body, size_t len)
{
    on_resp(ctx, err, body, len);
    sm_peer_free(freed_in_cb);
}

static void test_free_inside_callback(void)
{
    memset(R, 0, sizeof R);
    server_start(CLOSE_AFTER);
    S.close_after = 2; /* answers the first, then closes */
    freed_in_cb = sm_peer_new(L, "127.0.0.1", S.port, NULL);
    CHECK_EQ(sm_peer_send(freed_in_cb, 18, 3, 1, 0, (const uint8_t *)"a", 1, 5000, free_from_cb,
                          &R[0]),
             SM_OK);
    for (int i = 1; i < 5; i++)
        send_one(freed_in_cb, i, 1, 5000);
    CHECK(run_until(first_done, 5000));
    CHECK_EQ(R[0].err, SM_OK);
    int closed = 0;
    for (int i = 1; i < 5; i++)
        closed += R[i].calls == 1 && R[i].err == SM_ERR_CLOSED;
    CHECK_EQ(closed, 4); /* failed by the free, exactly once each */
    server_stop();
}

int main(void)
{
    L = sm_loop_new(0);
    RUN(test_pipelined_in_order);
    RUN(test_server_closes_then_reconnect);
    RUN(test_silent_server_times_out);
    RUN(test_nobody_listening);
    RUN(test_bad_responses);
    RUN(test_queue_limit);
    RUN(test_free_inside_callback);
    sm_loop_free(L);
    TEST_MAIN_END();
}
