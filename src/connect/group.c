/*
 * group.c - the distributed worker's group membership over the Kafka protocol:
 * FindCoordinator, JoinGroup (protocol type "connect"), SyncGroup, Heartbeat and
 * LeaveGroup on one blocking socket to the group coordinator, with the project's
 * generated codecs (src/proto, linked through the samsa library).
 *
 * librdkafka's consumer always joins with protocol type "consumer" and its own
 * assignors, so the Connect protocol needs a client of its own; this one is small
 * because a worker has one request in flight at a time, from the herder thread:
 *
 *   (no member id) --JoinGroup--> MEMBER_ID_REQUIRED: retry with the given id
 *   JoinGroup --> generation, leader, members' metadata (the leader's only)
 *   leader: assign(members) --> SyncGroup with every member's assignment
 *   others: SyncGroup with none --> own assignment
 *   then Heartbeat every heartbeat.interval.ms; REBALANCE_IN_PROGRESS means join
 *   again; UNKNOWN_MEMBER_ID / ILLEGAL_GENERATION forget the member id first;
 *   NOT_COORDINATOR / COORDINATOR_NOT_AVAILABLE or a socket error reconnect.
 *
 * Versions: FindCoordinator v2, JoinGroup v5, SyncGroup v3, Heartbeat v3,
 * LeaveGroup v3 (classic encodings, supported by Samsa and Kafka brokers).
 * Input from the broker is untrusted: the response size is capped and the
 * generated decoders bound every length. Herder thread only.
 */
#define _GNU_SOURCE
#include "cn.h"

#include "sm_proto_gen.h"

#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#define GRP_MAX_RESPONSE (16 * 1024 * 1024)
#define GRP_IO_TIMEOUT_MS 15000

struct cn_group {
    char *bootstrap, *group_id, *client_id;
    int session_ms, rebalance_ms;
    int fd;
    int32_t corr;
    char member_id[512];
    int32_t generation;
    cn_logger_t *log;
    volatile int *cancel; /* set by the owner: a blocked call gives up (shutdown) */
};

void cn_group_set_cancel(cn_group_t *g, volatile int *flag) { g->cancel = flag; }

cn_group_t *cn_group_new(const char *bootstrap, const char *group_id, const char *client_id, int session_ms,
                         int rebalance_ms)
{
    cn_group_t *g = calloc(1, sizeof *g);
    if (!g)
        abort();
    g->bootstrap = strdup(bootstrap);
    g->group_id = strdup(group_id);
    g->client_id = strdup(client_id);
    g->session_ms = session_ms;
    g->rebalance_ms = rebalance_ms;
    g->fd = -1;
    g->generation = -1;
    g->log = cn_logger("samsa.connect.group");
    return g;
}

static void disconnect(cn_group_t *g)
{
    if (g->fd >= 0)
        close(g->fd);
    g->fd = -1;
}

void cn_group_free(cn_group_t *g)
{
    if (!g)
        return;
    disconnect(g);
    free(g->bootstrap);
    free(g->group_id);
    free(g->client_id);
    free(g);
}

const char *cn_group_member_id(cn_group_t *g) { return g->member_id; }
int32_t cn_group_generation(cn_group_t *g) { return g->generation; }

/* A connection to the coordinator (sends time out; reads are polled). */
static int dial(const char *host, int port, char *err, size_t len)
{
    char ps[16];
    snprintf(ps, sizeof ps, "%d", port);
    int fd = cn_dial(host, ps, GRP_IO_TIMEOUT_MS, false, err, len);
    if (fd >= 0) {
        int one = 1;
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    }
    return fd;
}

/* "host:port" or "PLAINTEXT://host:port" (default port 9092). */
static void split_hostport(const char *s, char *host, size_t hlen, int *port)
{
    if (strncmp(s, "PLAINTEXT://", 12) == 0)
        s += 12;
    *port = 9092;
    const char *colon = strrchr(s, ':');
    if (s[0] == '[') {
        const char *rb = strchr(s, ']');
        snprintf(host, hlen, "%.*s", rb ? (int)(rb - s - 1) : 0, s + 1);
        colon = rb && rb[1] == ':' ? rb + 1 : NULL;
    } else {
        snprintf(host, hlen, "%.*s", colon ? (int)(colon - s) : (int)strlen(s), s);
    }
    if (colon)
        *port = atoi(colon + 1);
}

static bool io_all(cn_group_t *g, uint8_t *p, size_t n, bool wr, int timeout_ms)
{
    int fd = g->fd;
    int64_t deadline = cn_now_ms() + timeout_ms;
    while (n) {
        if (g->cancel && *g->cancel) {
            errno = ECANCELED;
            return false;
        }
        struct pollfd pfd = {.fd = fd, .events = wr ? POLLOUT : POLLIN};
        int64_t left = deadline - cn_now_ms();
        if (left <= 0) {
            errno = ETIMEDOUT;
            return false;
        }
        int r = poll(&pfd, 1, (int)(left < 500 ? left : 500));
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            continue;
        ssize_t k = wr ? send(fd, p, n, MSG_NOSIGNAL) : recv(fd, p, n, 0);
        if (k < 0 && (errno == EINTR || errno == EAGAIN))
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

/* One request, its response decoded into *resp (in a). false with err. */
static bool call(cn_group_t *g, int16_t key, int16_t version, const void *req, sm_arena_t *a, void **resp,
                 int timeout_ms, char *err, size_t len)
{
    if (g->fd < 0) {
        snprintf(err, len, "not connected");
        return false;
    }
    sm_wbuf_t b;
    sm_wbuf_init(&b);
    size_t at = sm_wbuf_reserve(&b, 4);
    sm_request_header_t h;
    sm_request_header_init(&h);
    h.request_api_key = key;
    h.request_api_version = version;
    h.correlation_id = ++g->corr;
    h.client_id = sm_str(g->client_id);
    sm_request_header_encode(&b, sm_request_header_version(key, version), &h);
    sm_request_encode_any(&b, key, version, req);
    sm_wbuf_patch_i32(&b, at, (int32_t)(b.len - 4));
    bool ok = io_all(g, b.mem, b.len, true, GRP_IO_TIMEOUT_MS);
    sm_wbuf_free(&b);
    uint8_t szb[4];
    if (!ok || !io_all(g, szb, 4, false, timeout_ms)) {
        snprintf(err, len, "api %d: %s", key, strerror(errno));
        disconnect(g);
        return false;
    }
    int32_t size = (int32_t)(((uint32_t)szb[0] << 24) | ((uint32_t)szb[1] << 16) | ((uint32_t)szb[2] << 8) | szb[3]);
    if (size < 4 || size > GRP_MAX_RESPONSE) {
        snprintf(err, len, "api %d: bad response size %d", key, size);
        disconnect(g);
        return false;
    }
    uint8_t *buf = sm_arena_alloc(a, (size_t)size);
    if (!io_all(g, buf, (size_t)size, false, GRP_IO_TIMEOUT_MS)) {
        snprintf(err, len, "api %d: truncated response: %s", key, strerror(errno));
        disconnect(g);
        return false;
    }
    sm_rd_t body;
    sm_rd_init(&body, buf, (size_t)size);
    sm_response_header_t rh;
    if (sm_response_header_decode(&body, a, sm_response_header_version(key, version), &rh) || body.err ||
        rh.correlation_id != h.correlation_id ||
        sm_response_decode_any(key, version, &body, a, resp) != SM_OK) {
        snprintf(err, len, "api %d: malformed response", key);
        disconnect(g);
        return false;
    }
    return true;
}

/* Connect to a bootstrap broker, find the coordinator and connect to it. */
static bool connect_coordinator(cn_group_t *g, char *err, size_t len)
{
    disconnect(g);
    char *list = strdup(g->bootstrap), *save = NULL;
    for (char *tok = strtok_r(list, ",", &save); tok && g->fd < 0; tok = strtok_r(NULL, ",", &save)) {
        while (*tok == ' ')
            tok++;
        char host[256];
        int port;
        split_hostport(tok, host, sizeof host, &port);
        g->fd = dial(host, port, err, len);
    }
    free(list);
    if (g->fd < 0)
        return false;
    sm_arena_t a;
    sm_arena_init(&a);
    sm_find_coordinator_request_t req;
    sm_find_coordinator_request_init(&req);
    req.key = sm_str(g->group_id);
    req.key_type = 0;
    sm_find_coordinator_response_t *r = NULL;
    bool ok = call(g, SM_API_FIND_COORDINATOR, 2, &req, &a, (void **)&r, GRP_IO_TIMEOUT_MS, err, len);
    if (ok && r->error_code) {
        snprintf(err, len, "FindCoordinator: error %d", r->error_code);
        ok = false;
    }
    char host[256] = "";
    int port = 0;
    if (ok) {
        snprintf(host, sizeof host, "%.*s", r->host.len > 0 ? r->host.len : 0, r->host.ptr ? r->host.ptr : "");
        port = r->port;
    }
    sm_arena_free(&a);
    disconnect(g);
    if (!ok)
        return false;
    g->fd = dial(host, port, err, len);
    if (g->fd < 0)
        return false;
    CN_DEBUG(g->log, "group %s: coordinator %s:%d", g->group_id, host, port);
    return true;
}

static char *str_dup(sm_str_t s)
{
    if (s.len < 0 || !s.ptr)
        return strdup("");
    return strndup(s.ptr, (size_t)s.len);
}

int cn_group_join(cn_group_t *g, const char *protocol, const char *metadata, cn_group_assign_fn assign, void *arg,
                  cn_group_result_t *out, char *err, size_t len)
{
    memset(out, 0, sizeof *out);
    if (g->fd < 0 && !connect_coordinator(g, err, len))
        return -1;
    sm_arena_t a;
    sm_arena_init(&a);
    int rc = -1;
    sm_join_group_response_t *jr = NULL;
    for (int attempt = 0; attempt < 3; attempt++) {
        sm_join_group_request_t req;
        sm_join_group_request_init(&req);
        req.group_id = sm_str(g->group_id);
        req.session_timeout_ms = g->session_ms;
        req.rebalance_timeout_ms = g->rebalance_ms;
        req.member_id = sm_str(g->member_id);
        req.protocol_type = sm_str("connect");
        sm_join_group_request_join_group_request_protocol_t proto;
        sm_join_group_request_join_group_request_protocol_init(&proto);
        proto.name = sm_str(protocol);
        proto.metadata.ptr = (const uint8_t *)metadata;
        proto.metadata.len = (int32_t)strlen(metadata);
        req.protocols = &proto;
        req.protocols_count = 1;
        if (!call(g, SM_API_JOIN_GROUP, 5, &req, &a, (void **)&jr, g->rebalance_ms + 10000, err, len))
            goto done;
        if (jr->error_code == 79 /* MEMBER_ID_REQUIRED */) {
            snprintf(g->member_id, sizeof g->member_id, "%.*s", jr->member_id.len, jr->member_id.ptr);
            continue;
        }
        break;
    }
    if (jr->error_code) {
        snprintf(err, len, "JoinGroup: %s", rd_kafka_err2name((rd_kafka_resp_err_t)jr->error_code));
        if (jr->error_code == 25 || jr->error_code == 22) /* UNKNOWN_MEMBER_ID, ILLEGAL_GENERATION */
            g->member_id[0] = 0;
        if (jr->error_code == 16 || jr->error_code == 15 || jr->error_code == 14)
            disconnect(g);
        goto done;
    }
    snprintf(g->member_id, sizeof g->member_id, "%.*s", jr->member_id.len, jr->member_id.ptr);
    g->generation = jr->generation_id;
    char *leader = str_dup(jr->leader);
    out->leader = strcmp(leader, g->member_id) == 0;
    out->generation = jr->generation_id;
    snprintf(out->leader_id, sizeof out->leader_id, "%s", leader);
    free(leader);

    sm_sync_group_request_t sreq;
    sm_sync_group_request_init(&sreq);
    sreq.group_id = sm_str(g->group_id);
    sreq.generation_id = g->generation;
    sreq.member_id = sm_str(g->member_id);
    char **blobs = NULL, **ids = NULL, **metas = NULL;
    int nm = 0;
    if (out->leader) {
        nm = jr->members_count;
        ids = calloc((size_t)nm + 1, sizeof *ids);
        metas = calloc((size_t)nm + 1, sizeof *metas);
        blobs = calloc((size_t)nm + 1, sizeof *blobs);
        if (!ids || !metas || !blobs)
            abort();
        for (int i = 0; i < nm; i++) {
            ids[i] = str_dup(jr->members[i].member_id);
            metas[i] = jr->members[i].metadata.len > 0
                           ? strndup((const char *)jr->members[i].metadata.ptr, (size_t)jr->members[i].metadata.len)
                           : strdup("");
        }
        assign(arg, nm, (const char *const *)ids, (const char *const *)metas, blobs);
        sreq.assignments = SM_ARENA_NEW(&a, sm_sync_group_request_sync_group_request_assignment_t, (size_t)nm);
        sreq.assignments_count = nm;
        for (int i = 0; i < nm; i++) {
            sreq.assignments[i].member_id = sm_str(ids[i]);
            sreq.assignments[i].assignment.ptr = (const uint8_t *)blobs[i];
            sreq.assignments[i].assignment.len = blobs[i] ? (int32_t)strlen(blobs[i]) : 0;
        }
    }
    sm_sync_group_response_t *sr = NULL;
    bool ok = call(g, SM_API_SYNC_GROUP, 3, &sreq, &a, (void **)&sr, g->rebalance_ms + 10000, err, len);
    for (int i = 0; blobs && i < nm; i++) {
        free(blobs[i]);
        free(ids[i]);
        free(metas[i]);
    }
    free(blobs);
    free(ids);
    free(metas);
    if (!ok)
        goto done;
    if (sr->error_code) {
        snprintf(err, len, "SyncGroup: %s", rd_kafka_err2name((rd_kafka_resp_err_t)sr->error_code));
        if (sr->error_code == 25 || sr->error_code == 22)
            g->member_id[0] = 0;
        goto done;
    }
    out->assignment = sr->assignment.len > 0 ? strndup((const char *)sr->assignment.ptr, (size_t)sr->assignment.len)
                                             : strdup("");
    rc = 0;
done:
    sm_arena_free(&a);
    return rc;
}

int cn_group_heartbeat(cn_group_t *g)
{
    char err[256];
    if (g->fd < 0)
        return -1;
    sm_arena_t a;
    sm_arena_init(&a);
    sm_heartbeat_request_t req;
    sm_heartbeat_request_init(&req);
    req.group_id = sm_str(g->group_id);
    req.generation_id = g->generation;
    req.member_id = sm_str(g->member_id);
    sm_heartbeat_response_t *r = NULL;
    int rc = -1;
    if (call(g, SM_API_HEARTBEAT, 3, &req, &a, (void **)&r, GRP_IO_TIMEOUT_MS, err, sizeof err)) {
        switch (r->error_code) {
        case 0: rc = 0; break;
        case 27: rc = 1; break; /* REBALANCE_IN_PROGRESS */
        case 25:                /* UNKNOWN_MEMBER_ID */
        case 22:                /* ILLEGAL_GENERATION */
            g->member_id[0] = 0;
            rc = 1;
            break;
        default:
            CN_WARN(g->log, "group %s: heartbeat: %s", g->group_id,
                    rd_kafka_err2name((rd_kafka_resp_err_t)r->error_code));
            disconnect(g);
            rc = -1;
        }
    } else {
        CN_WARN(g->log, "group %s: heartbeat failed: %s", g->group_id, err);
    }
    sm_arena_free(&a);
    return rc;
}

void cn_group_leave(cn_group_t *g)
{
    char err[256];
    if (!g->member_id[0])
        return;
    /* Leaving is part of shutting down: not cancelled, and worth a new connection
     * when a cancelled JoinGroup dropped the old one (the others then rebalance at
     * once instead of after our session timeout). */
    volatile int *cancel = g->cancel;
    g->cancel = NULL;
    if (g->fd < 0 && !connect_coordinator(g, err, sizeof err)) {
        g->cancel = cancel;
        return;
    }
    sm_arena_t a;
    sm_arena_init(&a);
    sm_leave_group_request_t req;
    sm_leave_group_request_init(&req);
    req.group_id = sm_str(g->group_id);
    sm_leave_group_request_member_identity_t m;
    sm_leave_group_request_member_identity_init(&m);
    m.member_id = sm_str(g->member_id);
    req.members = &m;
    req.members_count = 1;
    void *r = NULL;
    if (!call(g, SM_API_LEAVE_GROUP, 3, &req, &a, &r, 5000, err, sizeof err))
        CN_DEBUG(g->log, "group %s: leave failed: %s", g->group_id, err);
    sm_arena_free(&a);
    g->member_id[0] = 0;
    g->cancel = cancel;
}
