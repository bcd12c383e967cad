/*
 * rest.c - the Kafka Connect REST API on libmicrohttpd (listeners, default
 * http://:8083): routing, request bodies, JSON responses and errors.
 *
 * Every response body is JSON; errors are Connect's {"error_code": N, "message": ...}
 * with Kafka's statuses: 404 for an unknown connector, task, plugin or path, 405 for a
 * known path with another method, 409 for a connector that already exists, 400 for bad
 * JSON or a bad config, 413 for a body over CN_MAX_BODY, 500 when a Kafka request
 * failed. Limits against hostile clients: CN_MAX_BODY per body (refused from its
 * Content-Length before reading when it says so), at most CN_REST_MAX_CONNS connections,
 * CN_REST_TIMEOUT_S idle timeout, JSON nesting bounded by jansson's parser depth.
 *
 * Threads: libmicrohttpd runs CN_REST_THREADS threads with their own epoll loops;
 * handlers call the herder (which serializes operations on its mutex).
 */
#define _GNU_SOURCE
#include "cn.h"

#include <arpa/inet.h>
#include <microhttpd.h>
#include <netdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#define CN_REST_THREADS 2
#define CN_REST_MAX_CONNS 128
#define CN_REST_TIMEOUT_S 60
#define CN_MAX_SEGS 8

struct cn_rest {
    cn_worker_t *w;
    struct MHD_Daemon *d;
    cn_logger_t *log;
};

typedef struct req {
    char *body;
    size_t len, cap;
    bool too_large;
} req_t;

static enum MHD_Result send_json(struct MHD_Connection *conn, int status, json_t *body)
{
    struct MHD_Response *resp;
    if (body) {
        char *text = json_dumps(body, JSON_COMPACT | JSON_ENCODE_ANY);
        json_decref(body);
        if (!text) {
            text = strdup("{\"error_code\":500,\"message\":\"cannot encode the response\"}");
            status = 500;
        }
        resp = MHD_create_response_from_buffer(strlen(text), text, MHD_RESPMEM_MUST_FREE);
        MHD_add_response_header(resp, "Content-Type", "application/json");
    } else {
        resp = MHD_create_response_from_buffer(0, (void *)"", MHD_RESPMEM_PERSISTENT);
    }
    enum MHD_Result r = MHD_queue_response(conn, (unsigned)status, resp);
    MHD_destroy_response(resp);
    return r;
}

static enum MHD_Result send_error(struct MHD_Connection *conn, int status, const char *msg)
{
    return send_json(conn, status, cn_error(status, "%s", msg));
}

static const char *arg(struct MHD_Connection *conn, const char *key)
{
    return MHD_lookup_connection_value(conn, MHD_GET_ARGUMENT_KIND, key);
}

static bool arg_true(struct MHD_Connection *conn, const char *key, bool dflt)
{
    const char *v = arg(conn, key);
    if (!v)
        return dflt;
    return strcasecmp(v, "true") == 0;
}

typedef struct expand {
    bool status, info;
} expand_t;

static enum MHD_Result expand_it(void *cls, enum MHD_ValueKind kind, const char *key, const char *value)
{
    (void)kind;
    expand_t *e = cls;
    if (key && strcmp(key, "expand") == 0 && value) {
        if (strcmp(value, "status") == 0)
            e->status = true;
        else if (strcmp(value, "info") == 0)
            e->info = true;
    }
    return MHD_YES;
}

/* Parse the request body as JSON; NULL after sending a 400. */
static json_t *body_json(struct MHD_Connection *conn, req_t *r, enum MHD_Result *res)
{
    json_error_t je;
    if (!r->len) {
        *res = send_error(conn, 400, "Request body is missing; a JSON document is expected");
        return NULL;
    }
    json_t *j = json_loadb(r->body, r->len, JSON_DECODE_ANY, &je);
    if (!j) {
        char msg[400];
        snprintf(msg, sizeof msg, "Invalid JSON in the request body: %s (line %d, column %d)", je.text, je.line,
                 je.column);
        *res = send_error(conn, 400, msg);
    }
    return j;
}

/* A connector config from a JSON object, checked against the URL's name. */
static json_t *config_for(struct MHD_Connection *conn, json_t *obj, const char *name, enum MHD_Result *res)
{
    char err[300];
    json_t *cfg = cn_config_normalize(obj, err, sizeof err);
    if (!cfg) {
        *res = send_error(conn, 400, err);
        return NULL;
    }
    const char *included = cn_cfg_str(cfg, "name");
    if (included && strcmp(included, name) != 0) {
        char msg[1200];
        snprintf(msg, sizeof msg, "Connector name configuration (%s) doesn't match connector name in the URL (%s)",
                 included, name);
        json_decref(cfg);
        *res = send_error(conn, 400, msg);
        return NULL;
    }
    json_object_set_new(cfg, "name", json_string(name));
    return cfg;
}

static bool is(const char *a, const char *b) { return a && strcmp(a, b) == 0; }

/* ------------------------------------------------ distributed mode: forwarding */

typedef struct qs {
    char *buf;
    size_t len, cap;
} qs_t;

static void qs_add(qs_t *q, const char *s, bool encode)
{
    for (; *s; s++) {
        if (q->len + 4 > q->cap) {
            q->cap = q->cap ? q->cap * 2 : 256;
            q->buf = realloc(q->buf, q->cap);
            if (!q->buf)
                abort();
        }
        unsigned char c = (unsigned char)*s;
        bool plain = !encode || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                     strchr("-._~", c);
        if (plain)
            q->buf[q->len++] = (char)c;
        else
            q->len += (size_t)sprintf(q->buf + q->len, "%%%02X", c);
    }
    if (q->buf)
        q->buf[q->len] = 0;
}

static enum MHD_Result qs_arg(void *cls, enum MHD_ValueKind kind, const char *key, const char *value)
{
    (void)kind;
    qs_t *q = cls;
    qs_add(q, q->len && strchr(q->buf, '?') ? "&" : "?", false);
    qs_add(q, key, true);
    if (value) {
        qs_add(q, "=", false);
        qs_add(q, value, true);
    }
    return MHD_YES;
}

/* Send the request as it came to base (the leader or a task's owner) and relay the
 * answer. A worker that received a forwarded request and is not the one it was
 * meant for answers 409 rather than forwarding again. */
static enum MHD_Result forward(cn_rest_t *rs, struct MHD_Connection *conn, const char *base, const char *url,
                               const char *method, req_t *r)
{
    if (MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "X-Samsa-Forwarded"))
        return send_error(conn, 409, "Cannot complete request because of a conflicting operation (e.g. worker rebalance)");
    /* Re-encode each path segment: names may hold characters that need it. */
    qs_t q = {0};
    char path[2048];
    snprintf(path, sizeof path, "%s", url);
    char *save = NULL;
    for (char *tok = strtok_r(path, "/", &save); tok; tok = strtok_r(NULL, "/", &save)) {
        qs_add(&q, "/", false);
        qs_add(&q, tok, true);
    }
    if (!q.len)
        qs_add(&q, "/", false);
    MHD_get_connection_values(conn, MHD_GET_ARGUMENT_KIND, qs_arg, &q);
    char *resp = NULL, err[512];
    CN_DEBUG(rs->log, "Forwarding %s %s to %s", method, q.buf, base);
    int st = cn_http_forward(base, method, q.buf, r->len ? r->body : NULL, r->len, &resp, err, sizeof err);
    free(q.buf);
    if (st < 0) {
        char msg[700];
        snprintf(msg, sizeof msg, "Error trying to forward REST request: %s", err);
        return send_error(conn, 500, msg);
    }
    struct MHD_Response *mr;
    if (resp) {
        mr = MHD_create_response_from_buffer(strlen(resp), resp, MHD_RESPMEM_MUST_FREE);
        MHD_add_response_header(mr, "Content-Type", "application/json");
    } else {
        mr = MHD_create_response_from_buffer(0, (void *)"", MHD_RESPMEM_PERSISTENT);
    }
    enum MHD_Result res = MHD_queue_response(conn, (unsigned)st, mr);
    MHD_destroy_response(mr);
    return res;
}

/* Distributed mode: writes go to the leader, a task restart to the task's owner. */
static bool maybe_forward(cn_rest_t *rs, struct MHD_Connection *conn, char **seg, int n, const char *url,
                          const char *method, req_t *r, enum MHD_Result *res)
{
    cn_dist_t *d = rs->w->dist;
    if (!d || n < 1 || !is(seg[0], "connectors") || is(method, "GET") || is(method, "HEAD"))
        return false;
    char base[400];
    if (n == 5 && is(seg[2], "tasks") && is(seg[4], "restart")) {
        char *end;
        long id = strtol(seg[3], &end, 10);
        if (*end || id < 0 || !cn_dist_task_owner_url(d, seg[1], (int)id, base, sizeof base))
            return false;
        *res = forward(rs, conn, base, url, method, r);
        return true;
    }
    bool leader;
    if (!cn_dist_leader_url(d, base, sizeof base, &leader)) {
        if (leader)
            return false;
        *res = send_error(conn, 409, "Cannot complete request because of a conflicting operation (e.g. worker rebalance)");
        return true;
    }
    *res = forward(rs, conn, base, url, method, r);
    return true;
}

static enum MHD_Result route(cn_rest_t *rs, struct MHD_Connection *conn, const char *url, const char *m,
                             req_t *r)
{
    cn_herder_t *h = rs->w->herder;
    char path[2048];
    snprintf(path, sizeof path, "%s", url);
    char *seg[CN_MAX_SEGS + 1];
    int n = 0;
    char *save = NULL;
    for (char *tok = strtok_r(path, "/", &save); tok; tok = strtok_r(NULL, "/", &save)) {
        if (n == CN_MAX_SEGS)
            return send_error(conn, 404, "HTTP 404 Not Found");
        seg[n++] = tok;
    }
    seg[n] = NULL;
    json_t *out = NULL, *body = NULL;
    enum MHD_Result res = MHD_YES;
    int st = 0;
    if (maybe_forward(rs, conn, seg, n, url, m, r, &res))
        return res;
    bool get = is(m, "GET"), put = is(m, "PUT"), post = is(m, "POST"), del = is(m, "DELETE"),
         patch = is(m, "PATCH");

#define BODY()                                                                                     \
    do {                                                                                           \
        if (!(body = body_json(conn, r, &res)))                                                    \
            return res;                                                                            \
    } while (0)
#define METHOD_NOT_ALLOWED() return send_error(conn, 405, "HTTP 405 Method Not Allowed")

    if (n == 0) {
        if (!get)
            METHOD_NOT_ALLOWED();
        const char *cid = cn_worker_cluster_id(rs->w);
        return send_json(conn, 200, json_pack("{s:s, s:s, s:o}", "version", CN_VERSION, "commit", "samsa",
                                              "kafka_cluster_id", cid ? json_string(cid) : json_null()));
    }
    if (n == 1 && is(seg[0], "health")) {
        if (!get)
            METHOD_NOT_ALLOWED();
        if (rs->w->started)
            return send_json(conn, 200, json_pack("{s:s, s:s}", "status", "healthy", "message",
                                                  "Worker has completed startup and is ready to handle requests."));
        return send_json(conn, 503, json_pack("{s:s, s:s}", "status", "starting", "message",
                                              "Worker is still starting up."));
    }
    if (is(seg[0], "connectors")) {
        if (n == 1) {
            if (get) {
                expand_t e = {0};
                MHD_get_connection_values(conn, MHD_GET_ARGUMENT_KIND, expand_it, &e);
                st = cn_h_list(h, e.status, e.info, &out);
            } else if (post) {
                BODY();
                json_t *name = json_object_get(body, "name"), *cfg_in = json_object_get(body, "config");
                json_t *init = json_object_get(body, "initial_state");
                if (!json_is_object(body) || !json_is_object(cfg_in)) {
                    json_decref(body);
                    return send_error(conn, 400, "The request body must be a JSON object with a 'config' object");
                }
                char nm[1024];
                const char *raw = json_is_string(name) ? json_string_value(name) : "";
                while (*raw == ' ' || *raw == '\t')
                    raw++;
                snprintf(nm, sizeof nm, "%s", raw);
                for (size_t l = strlen(nm); l && (nm[l - 1] == ' ' || nm[l - 1] == '\t');)
                    nm[--l] = 0;
                if (!nm[0]) {
                    json_decref(body);
                    return send_error(conn, 400, "Connector name must not be empty");
                }
                json_t *cfg = config_for(conn, cfg_in, nm, &res);
                if (!cfg) {
                    json_decref(body);
                    return res;
                }
                st = cn_h_put_config(h, nm, cfg, json_is_string(init) ? json_string_value(init) : NULL, false, &out);
                json_decref(cfg);
            } else {
                METHOD_NOT_ALLOWED();
            }
            goto reply;
        }
        const char *c = seg[1];
        const char *what = n >= 3 ? seg[2] : NULL;
        if (n == 2) {
            if (get)
                st = cn_h_info(h, c, &out);
            else if (del)
                st = cn_h_delete(h, c, &out);
            else
                METHOD_NOT_ALLOWED();
        } else if (n == 3 && is(what, "config")) {
            if (get)
                st = cn_h_config(h, c, &out);
            else if (put || patch) {
                BODY();
                if (!json_is_object(body)) {
                    json_decref(body);
                    return send_error(conn, 400, "The request body must be a JSON object of configuration keys");
                }
                if (put) {
                    json_t *cfg = config_for(conn, body, c, &res);
                    if (!cfg) {
                        json_decref(body);
                        return res;
                    }
                    st = cn_h_put_config(h, c, cfg, NULL, true, &out);
                    json_decref(cfg);
                } else {
                    /* PATCH: null removes a key (KIP-477), other values become strings. */
                    json_t *p = json_object();
                    const char *k;
                    json_t *v;
                    char err[300] = "";
                    json_object_foreach(body, k, v) {
                        if (json_is_null(v)) {
                            json_object_set_new(p, k, json_null());
                            continue;
                        }
                        json_t *one = json_pack("{s:O}", k, v);
                        json_t *norm = cn_config_normalize(one, err, sizeof err);
                        json_decref(one);
                        if (!norm)
                            break;
                        json_object_update(p, norm);
                        json_decref(norm);
                    }
                    if (err[0]) {
                        json_decref(p);
                        json_decref(body);
                        return send_error(conn, 400, err);
                    }
                    st = cn_h_patch_config(h, c, p, &out);
                    json_decref(p);
                }
            } else
                METHOD_NOT_ALLOWED();
        } else if (n == 3 && is(what, "status")) {
            if (!get)
                METHOD_NOT_ALLOWED();
            st = cn_h_status(h, c, &out);
        } else if (n == 3 && is(what, "restart")) {
            if (!post)
                METHOD_NOT_ALLOWED();
            st = cn_h_restart(h, c, arg_true(conn, "includeTasks", false), arg_true(conn, "onlyFailed", false), &out);
        } else if (n == 3 && (is(what, "pause") || is(what, "resume") || is(what, "stop"))) {
            if (!put)
                METHOD_NOT_ALLOWED();
            st = is(what, "pause") ? cn_h_pause(h, c, &out)
                 : is(what, "resume") ? cn_h_resume(h, c, &out)
                                      : cn_h_stop(h, c, &out);
        } else if (n == 3 && (is(what, "tasks") || is(what, "tasks-config"))) {
            if (!get)
                METHOD_NOT_ALLOWED();
            st = cn_h_tasks(h, c, is(what, "tasks-config"), &out);
        } else if (n == 5 && is(what, "tasks") && is(seg[4], "status")) {
            if (!get)
                METHOD_NOT_ALLOWED();
            st = cn_h_task_status(h, c, seg[3], &out);
        } else if (n == 5 && is(what, "tasks") && is(seg[4], "restart")) {
            if (!post)
                METHOD_NOT_ALLOWED();
            st = cn_h_task_restart(h, c, seg[3], &out);
        } else if (n == 3 && is(what, "offsets")) {
            if (get)
                st = cn_h_offsets(h, c, &out);
            else if (patch) {
                BODY();
                if (!json_is_object(body)) {
                    json_decref(body);
                    return send_error(conn, 400, "Partitions / offsets need to be provided for an alter offsets request");
                }
                st = cn_h_offsets_alter(h, c, body, &out);
            } else if (del)
                st = cn_h_offsets_reset(h, c, &out);
            else
                METHOD_NOT_ALLOWED();
        } else if (n == 3 && is(what, "topics")) {
            if (!get)
                METHOD_NOT_ALLOWED();
            st = cn_h_topics(h, c, false, &out);
        } else if (n == 4 && is(what, "topics") && is(seg[3], "reset")) {
            if (!put)
                METHOD_NOT_ALLOWED();
            st = cn_h_topics(h, c, true, &out);
        } else {
            return send_error(conn, 404, "HTTP 404 Not Found");
        }
        goto reply;
    }
    if (is(seg[0], "connector-plugins")) {
        if (n == 1) {
            if (!get)
                METHOD_NOT_ALLOWED();
            return send_json(conn, 200, cn_plugins_list(rs->w->plugins, arg_true(conn, "connectorsOnly", true)));
        }
        if (n == 3 && is(seg[2], "config")) {
            if (!get)
                METHOD_NOT_ALLOWED();
            st = cn_h_plugin_config(h, seg[1], &out);
            goto reply;
        }
        if (n == 4 && is(seg[2], "config") && is(seg[3], "validate")) {
            if (!put)
                METHOD_NOT_ALLOWED();
            BODY();
            char err[300];
            json_t *cfg = cn_config_normalize(body, err, sizeof err);
            if (!cfg) {
                json_decref(body);
                return send_error(conn, 400, err);
            }
            st = cn_h_validate(h, seg[1], cfg, &out);
            json_decref(cfg);
            goto reply;
        }
        return send_error(conn, 404, "HTTP 404 Not Found");
    }
    if (n >= 2 && n <= 3 && is(seg[0], "admin") && is(seg[1], "loggers")) {
        if (n == 2) {
            if (!get)
                METHOD_NOT_ALLOWED();
            return send_json(conn, 200, cn_log_list());
        }
        if (get) {
            json_t *l = cn_log_get(seg[2]);
            if (!l) {
                char msg[600];
                snprintf(msg, sizeof msg, "Logger %s not found.", seg[2]);
                return send_error(conn, 404, msg);
            }
            return send_json(conn, 200, l);
        }
        if (!put)
            METHOD_NOT_ALLOWED();
        BODY();
        const char *lv = json_string_value(json_object_get(body, "level"));
        if (!lv) {
            json_decref(body);
            return send_error(conn, 400, "Desired 'level' parameter was not specified in request.");
        }
        int level = cn_log_level_parse(lv);
        if (level < 0) {
            char msg[300];
            snprintf(msg, sizeof msg, "invalid log level '%.200s'.", lv);
            json_decref(body);
            return send_error(conn, 404, msg);
        }
        json_t *affected = cn_log_set(seg[2], level);
        CN_INFO(rs->log, "Set level of logger %s to %s", seg[2], lv);
        json_decref(body);
        const char *scope = arg(conn, "scope");
        if (scope && strcasecmp(scope, "cluster") == 0) {
            json_decref(affected);
            return send_json(conn, 204, NULL);
        }
        return send_json(conn, 200, affected);
    }
    return send_error(conn, 404, "HTTP 404 Not Found");

reply:
    json_decref(body);
    return send_json(conn, st, out);
#undef BODY
#undef METHOD_NOT_ALLOWED
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *conn, const char *url, const char *method,
                                  const char *version, const char *upload_data, size_t *upload_data_size,
                                  void **con_cls)
{
    (void)version;
    cn_rest_t *rs = cls;
    req_t *r = *con_cls;
    if (!r) {
        r = calloc(1, sizeof *r);
        if (!r)
            return MHD_NO;
        *con_cls = r;
        const char *cl = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, MHD_HTTP_HEADER_CONTENT_LENGTH);
        if (cl && strtoull(cl, NULL, 10) > CN_MAX_BODY) {
            r->too_large = true;
            return send_error(conn, 413, "Request body is larger than 1048576 bytes");
        }
        return MHD_YES;
    }
    if (*upload_data_size) {
        size_t n = *upload_data_size;
        *upload_data_size = 0;
        if (r->too_large || r->len + n > CN_MAX_BODY) {
            r->too_large = true;
            return MHD_YES;
        }
        if (r->len + n > r->cap) {
            size_t cap = r->cap ? r->cap : 4096;
            while (cap < r->len + n)
                cap *= 2;
            char *b = realloc(r->body, cap);
            if (!b)
                return MHD_NO;
            r->body = b;
            r->cap = cap;
        }
        memcpy(r->body + r->len, upload_data, n);
        r->len += n;
        return MHD_YES;
    }
    if (r->too_large)
        return send_error(conn, 413, "Request body is larger than 1048576 bytes");
    CN_DEBUG(rs->log, "%s %s (%zu byte body)", method, url, r->len);
    return route(rs, conn, url, method, r);
}

static void on_completed(void *cls, struct MHD_Connection *conn, void **con_cls,
                         enum MHD_RequestTerminationCode toe)
{
    (void)cls;
    (void)conn;
    (void)toe;
    req_t *r = *con_cls;
    if (r) {
        free(r->body);
        free(r);
        *con_cls = NULL;
    }
}

static void mhd_log(void *cls, const char *fmt, va_list ap)
{
    cn_rest_t *rs = cls;
    char buf[512];
    vsnprintf(buf, sizeof buf, fmt, ap);
    size_t n = strlen(buf);
    while (n && buf[n - 1] == '\n')
        buf[--n] = 0;
    CN_DEBUG(rs->log, "http: %s", buf);
}

cn_rest_t *cn_rest_start(cn_worker_t *w, char *err, size_t err_len)
{
    cn_rest_t *rs = calloc(1, sizeof *rs);
    if (!rs)
        abort();
    rs->w = w;
    rs->log = cn_logger("samsa.connect.rest");
    struct sockaddr_storage ss;
    memset(&ss, 0, sizeof ss);
    unsigned flags = MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_EPOLL | MHD_USE_ERROR_LOG;
    const char *host = w->cfg.listen_host;
    if (!*host) {
        struct sockaddr_in *in = (struct sockaddr_in *)&ss;
        in->sin_family = AF_INET;
        in->sin_addr.s_addr = htonl(INADDR_ANY);
        in->sin_port = htons((uint16_t)w->cfg.listen_port);
    } else {
        struct addrinfo hints = {0}, *ai = NULL;
        hints.ai_socktype = SOCK_STREAM;
        hints.ai_flags = AI_PASSIVE;
        char port[16];
        snprintf(port, sizeof port, "%d", w->cfg.listen_port);
        int rc = getaddrinfo(host, port, &hints, &ai);
        if (rc != 0 || !ai) {
            snprintf(err, err_len, "listeners: cannot resolve %s: %s", host, gai_strerror(rc));
            free(rs);
            return NULL;
        }
        memcpy(&ss, ai->ai_addr, ai->ai_addrlen);
        if (ai->ai_family == AF_INET6)
            flags |= MHD_USE_IPv6;
        freeaddrinfo(ai);
    }
    rs->d = MHD_start_daemon(flags, (uint16_t)w->cfg.listen_port, NULL, NULL, on_request, rs,
                             MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&ss,
                             MHD_OPTION_THREAD_POOL_SIZE, (unsigned)CN_REST_THREADS,
                             MHD_OPTION_CONNECTION_LIMIT, (unsigned)CN_REST_MAX_CONNS,
                             MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)CN_REST_TIMEOUT_S,
                             MHD_OPTION_NOTIFY_COMPLETED, on_completed, rs,
                             MHD_OPTION_EXTERNAL_LOGGER, mhd_log, rs,
                             MHD_OPTION_LISTENING_ADDRESS_REUSE, (unsigned)1,
                             MHD_OPTION_END);
    if (!rs->d) {
        snprintf(err, err_len, "cannot listen on http://%s:%d (address in use?)", host, w->cfg.listen_port);
        free(rs);
        return NULL;
    }
    const union MHD_DaemonInfo *info = MHD_get_daemon_info(rs->d, MHD_DAEMON_INFO_BIND_PORT);
    if (info && info->port)
        w->cfg.listen_port = info->port;
    CN_INFO(rs->log, "REST server listening at http://%s:%d/", *host ? host : "0.0.0.0", w->cfg.listen_port);
    return rs;
}

void cn_rest_stop(cn_rest_t *rs)
{
    if (!rs)
        return;
    MHD_stop_daemon(rs->d);
    free(rs);
}
