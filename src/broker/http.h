/*
 * http.h - a minimal HTTP/1.1 server for the broker's metrics.listener
 * (/metrics, /health): GET and HEAD only, one request per connection.
 *
 * It runs on its own event loop thread (src/env/loop.h), so a scrape that
 * walks 10,000 partitions never stalls a Kafka connection, and a hostile
 * HTTP client can only hold HTTP resources, which are limited:
 *  - a request (line and headers) larger than SM_HTTP_MAX_REQUEST bytes is
 *    answered 400 and closed; a body is never read;
 *  - the request must be complete within SM_HTTP_READ_TIMEOUT_MS of the
 *    accept (slowloris), else 408 and close; a response must be taken by the
 *    client within SM_HTTP_WRITE_TIMEOUT_MS, else the connection is closed;
 *  - at most SM_HTTP_MAX_CONNS connections: one more closes the oldest that
 *    has not sent a whole request yet (or is refused when all are busy);
 *  - malformed requests get 400, methods other than GET/HEAD 405, unknown
 *    paths 404 (decided by the handler); every response closes.
 */
#ifndef SM_HTTP_H
#define SM_HTTP_H

#include "sm_common.h"

#include <stddef.h>

#define SM_HTTP_MAX_REQUEST 8192
#define SM_HTTP_READ_TIMEOUT_MS 5000
#define SM_HTTP_WRITE_TIMEOUT_MS 10000
#define SM_HTTP_MAX_CONNS 64

/* A parsed request line; views into the request buffer. */
typedef struct sm_http_req {
    const char *method; /* "GET", "HEAD", ... */
    size_t method_len;
    const char *path;   /* the target without its query string, starting with '/' */
    size_t path_len;
    bool head;          /* HEAD: headers only */
} sm_http_req_t;

typedef enum sm_http_parse {
    SM_HTTP_INCOMPLETE = 0, /* no blank line yet */
    SM_HTTP_DONE = 1,       /* a well-formed request line and headers */
    SM_HTTP_BAD = -1,       /* malformed: answer 400 */
} sm_http_parse_t;

/* Parse an HTTP/1.x request head from buf[0..len). Pure; any thread. */
sm_http_parse_t sm_http_parse(const char *buf, size_t len, sm_http_req_t *out);

/* What a handler answers: body is malloc'ed (or NULL) and freed by the server. */
typedef struct sm_http_reply {
    int status;
    const char *content_type; /* static string */
    char *body;
    size_t len;
} sm_http_reply_t;

/* Called on the HTTP thread for each GET/HEAD; path is NUL-terminated. */
typedef void (*sm_http_fn)(void *ctx, const char *path, sm_http_reply_t *out);

typedef struct sm_http_server sm_http_server_t;

/* Bind host:port (port 0 = ephemeral; *port_out gets the bound port).
 * Serving starts with sm_http_start. Any thread. */
SM_MUST_CHECK sm_err_t sm_http_open(const char *host, int port, sm_http_fn fn, void *ctx,
                                    sm_http_server_t **out, int *port_out);
/* Start the server's thread. */
SM_MUST_CHECK sm_err_t sm_http_start(sm_http_server_t *s);
/* Stop the thread (if started), close every connection and the socket. */
void sm_http_close(sm_http_server_t *s);

#endif
