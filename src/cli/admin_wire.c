/*
 * admin_wire.c - the blocking one-socket Kafka client (see admin_wire.h).
 *
 * Why blocking: the tool sends a handful of requests and waits for each; a
 * plain socket with SO_RCVTIMEO/SO_SNDTIMEO bounds every wait by --timeout
 * with no event loop. Input from the broker is untrusted: the response size
 * is capped (CLI_WIRE_MAX_RESPONSE), the correlation id must match, and the
 * generated decoders bound every length. Main thread only.
 */
#include "admin_wire.h"

#include "cli.h"

#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

const char *cli_kafka_err_name(int16_t code)
{
    return rd_kafka_err2str((rd_kafka_resp_err_t)code);
}

/* Non-blocking connect bounded by --timeout, then back to blocking with
 * send/receive timeouts. Returns the fd or -1 with *why set. */
static int dial(const char *host, int port, const char **why)
{
    char portstr[16];
    snprintf(portstr, sizeof portstr, "%d", port);
    struct addrinfo hints = {0}, *res = NULL;
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_family = AF_UNSPEC;
    int gai = getaddrinfo(host, portstr, &hints, &res);
    if (gai) {
        *why = gai_strerror(gai);
        return -1;
    }
    int fd = -1;
    *why = "no address";
    for (struct addrinfo *ai = res; ai; ai = ai->ai_next) {
        fd = socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
        if (fd < 0) {
            *why = strerror(errno);
            continue;
        }
        int rc = connect(fd, ai->ai_addr, ai->ai_addrlen);
        if (rc < 0 && errno == EINPROGRESS) {
            struct pollfd p = {.fd = fd, .events = POLLOUT};
            rc = poll(&p, 1, cli_g.timeout_ms);
            if (rc == 0) {
                errno = ETIMEDOUT;
                rc = -1;
            } else if (rc > 0) {
                int soerr = 0;
                socklen_t l = sizeof soerr;
                getsockopt(fd, SOL_SOCKET, SO_ERROR, &soerr, &l);
                errno = soerr;
                rc = soerr ? -1 : 0;
            }
        }
        if (rc == 0)
            break;
        *why = strerror(errno);
        close(fd);
        fd = -1;
    }
    freeaddrinfo(res);
    if (fd < 0)
        return -1;
    int flags = fcntl(fd, F_GETFL);
    fcntl(fd, F_SETFL, flags & ~O_NONBLOCK);
    struct timeval tv = {.tv_sec = cli_g.timeout_ms / 1000,
                         .tv_usec = (cli_g.timeout_ms % 1000) * 1000};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    return fd;
}

static bool write_all(int fd, const uint8_t *p, size_t n)
{
    while (n) {
        ssize_t k = send(fd, p, n, MSG_NOSIGNAL);
        if (k < 0 && errno == EINTR)
            continue;
        if (k <= 0)
            return false;
        p += k;
        n -= (size_t)k;
    }
    return true;
}

static bool read_all(int fd, uint8_t *p, size_t n)
{
    while (n) {
        ssize_t k = recv(fd, p, n, 0);
        if (k < 0 && errno == EINTR)
            continue;
        if (k == 0)
            errno = ECONNRESET;
        if (k <= 0)
            return false;
        p += k;
        n -= (size_t)k;
    }
    return true;
}

/* Send one request and read the matching response body (after the header)
 * into the arena. */
static bool roundtrip(cli_wire_t *w, int16_t key, int16_t version, const void *req,
                      sm_arena_t *a, sm_rd_t *body)
{
    sm_wbuf_t b;
    sm_wbuf_init(&b);
    size_t at = sm_wbuf_reserve(&b, 4);
    sm_request_header_t h;
    sm_request_header_init(&h);
    h.request_api_key = key;
    h.request_api_version = version;
    h.correlation_id = ++w->corr;
    h.client_id = sm_str("samsa");
    sm_request_header_encode(&b, sm_request_header_version(key, version), &h);
    sm_request_encode_any(&b, key, version, req);
    sm_wbuf_patch_i32(&b, at, (int32_t)(b.len - 4));
    bool ok = write_all(w->fd, b.mem, b.len);
    sm_wbuf_free(&b);
    const char *api = sm_api_desc(key) ? sm_api_desc(key)->name : "request";
    if (!ok) {
        cli_fail("%s to %s: send failed: %s", api, w->peer, strerror(errno));
        return false;
    }
    uint8_t szb[4];
    if (!read_all(w->fd, szb, 4)) {
        cli_fail("%s to %s: no response: %s", api, w->peer,
                 errno == EAGAIN ? "timed out" : strerror(errno));
        return false;
    }
    int32_t size = (int32_t)(((uint32_t)szb[0] << 24) | ((uint32_t)szb[1] << 16) |
                             ((uint32_t)szb[2] << 8) | szb[3]);
    if (size < 4 || size > CLI_WIRE_MAX_RESPONSE) {
        cli_fail("%s to %s: bad response size %d", api, w->peer, size);
        return false;
    }
    uint8_t *buf = sm_arena_alloc(a, (size_t)size);
    if (!read_all(w->fd, buf, (size_t)size)) {
        cli_fail("%s to %s: truncated response: %s", api, w->peer,
                 errno == EAGAIN ? "timed out" : strerror(errno));
        return false;
    }
    sm_rd_init(body, buf, (size_t)size);
    sm_response_header_t rh;
    if (sm_response_header_decode(body, a, sm_response_header_version(key, version), &rh) ||
        body->err) {
        cli_fail("%s to %s: malformed response header", api, w->peer);
        return false;
    }
    if (rh.correlation_id != h.correlation_id) {
        cli_fail("%s to %s: correlation id %d, expected %d", api, w->peer, rh.correlation_id,
                 h.correlation_id);
        return false;
    }
    return true;
}

bool cli_wire_call(cli_wire_t *w, int16_t key, int16_t version, const void *req, sm_arena_t *a,
                   void **resp)
{
    sm_rd_t body;
    if (!roundtrip(w, key, version, req, a, &body))
        return false;
    sm_err_t err = sm_response_decode_any(key, version, &body, a, resp);
    if (err != SM_OK) {
        cli_fail("%s v%d from %s: cannot decode response at byte %zu (%s)",
                 sm_api_desc(key) ? sm_api_desc(key)->name : "?", version, w->peer,
                 sm_rd_offset(&body), sm_err_str(err));
        return false;
    }
    return true;
}

/* ApiVersions: try v3; a broker that does not know v3 answers in v0 format
 * with UNSUPPORTED_VERSION (35), then we ask again with v0. */
static bool learn_versions(cli_wire_t *w)
{
    for (int i = 0; i < CLI_WIRE_MAX_KEYS; i++)
        w->min_ver[i] = w->max_ver[i] = -1;
    sm_api_versions_request_t req;
    sm_api_versions_request_init(&req);
    req.client_software_name = sm_str("samsa-cli");
    req.client_software_version = sm_str("0.1.0");
    int16_t versions[] = {3, 0};
    for (size_t vi = 0; vi < SM_ARRAY_LEN(versions); vi++) {
        sm_rd_t body;
        if (!roundtrip(w, SM_API_API_VERSIONS, versions[vi], &req, &w->arena, &body))
            return false;
        sm_rd_t peek = body;
        int16_t ec = sm_rd_i16(&peek);
        if (ec == 35 && versions[vi] != 0)
            continue;
        sm_api_versions_response_t *r = SM_ARENA_NEW(&w->arena, sm_api_versions_response_t, 1);
        if (sm_api_versions_response_decode(&body, &w->arena, versions[vi], r) != SM_OK) {
            cli_fail("ApiVersions from %s: malformed response", w->peer);
            return false;
        }
        if (r->error_code) {
            cli_fail("ApiVersions from %s: %s", w->peer, cli_kafka_err_name(r->error_code));
            return false;
        }
        for (int i = 0; i < r->api_keys_count; i++) {
            int16_t k = r->api_keys[i].api_key;
            if (k >= 0 && k < CLI_WIRE_MAX_KEYS) {
                w->min_ver[k] = r->api_keys[i].min_version;
                w->max_ver[k] = r->api_keys[i].max_version;
            }
        }
        w->versions = r;
        return true;
    }
    cli_fail("ApiVersions from %s: no common version", w->peer);
    return false;
}

bool cli_wire_connect_one(cli_wire_t *w, const char *host, int port)
{
    memset(w, 0, sizeof *w);
    sm_arena_init(&w->arena);
    snprintf(w->peer, sizeof w->peer, "%s:%d", host, port);
    const char *why;
    w->fd = dial(host, port, &why);
    if (w->fd < 0) {
        cli_fail("cannot connect to %s: %s", w->peer, why);
        cli_wire_close(w);
        return false;
    }
    if (!learn_versions(w)) {
        cli_wire_close(w);
        return false;
    }
    return true;
}

/* Split "host:port" / "[v6]:port" / "host" (port 9092). */
static bool split_hostport(const char *s, char *host, size_t hlen, int *port)
{
    const char *colon;
    *port = 9092;
    if (s[0] == '[') {
        const char *rb = strchr(s, ']');
        if (!rb)
            return false;
        snprintf(host, hlen, "%.*s", (int)(rb - s - 1), s + 1);
        colon = rb[1] == ':' ? rb + 1 : NULL;
    } else {
        colon = strrchr(s, ':');
        snprintf(host, hlen, "%.*s", colon ? (int)(colon - s) : (int)strlen(s), s);
    }
    if (colon) {
        int32_t p;
        if (!cli_parse_i32(colon + 1, 1, 65535, &p))
            return false;
        *port = p;
    }
    return host[0] != 0;
}

bool cli_wire_connect(cli_wire_t *w, const char *brokers)
{
    char *list = sm_xstrdup(brokers), *save = NULL;
    char lastwhy[512] = "no brokers given";
    memset(w, 0, sizeof *w);
    w->fd = -1;
    for (char *tok = strtok_r(list, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
        while (*tok == ' ')
            tok++;
        if (strncmp(tok, "PLAINTEXT://", 12) == 0)
            tok += 12;
        char host[256];
        int port;
        if (!split_hostport(tok, host, sizeof host, &port)) {
            snprintf(lastwhy, sizeof lastwhy, "bad broker address '%s'", tok);
            continue;
        }
        const char *why;
        int fd = dial(host, port, &why);
        if (fd < 0) {
            snprintf(lastwhy, sizeof lastwhy, "%s:%d: %s", host, port, why);
            continue;
        }
        sm_arena_init(&w->arena);
        w->fd = fd;
        snprintf(w->peer, sizeof w->peer, "%s:%d", host, port);
        free(list);
        if (!learn_versions(w)) {
            cli_wire_close(w);
            return false;
        }
        return true;
    }
    free(list);
    cli_fail("cannot reach any broker in '%s': %s", brokers, lastwhy);
    return false;
}

void cli_wire_close(cli_wire_t *w)
{
    if (w->fd >= 0)
        close(w->fd);
    w->fd = -1;
    sm_arena_free(&w->arena);
}

bool cli_wire_version(cli_wire_t *w, int16_t key, int16_t lo, int16_t hi, int16_t *out)
{
    const sm_api_desc_t *d = sm_api_desc(key);
    const char *name = d ? d->name : "?";
    if (key < 0 || key >= CLI_WIRE_MAX_KEYS || w->max_ver[key] < 0 || !d) {
        cli_fail("broker %s does not support %s (api key %d)", w->peer, name, key);
        return false;
    }
    int16_t v = SM_MIN(SM_MIN(hi, d->max_version), w->max_ver[key]);
    if (v < lo || v < w->min_ver[key] || v < d->min_version) {
        cli_fail("broker %s supports %s v%d-%d, samsa needs v%d-%d", w->peer, name,
                 w->min_ver[key], w->max_ver[key], lo, hi);
        return false;
    }
    *out = v;
    return true;
}
