/*
 * request.h - one in-flight Kafka request, and the contract every API
 * handler follows.
 *
 * Life of a request (framework side, src/broker/conn.c):
 *   1. the connection's loop thread reads a whole frame (size checked against
 *      socket.request.max.bytes before anything is allocated), parses the
 *      request header and creates an sm_req_t with its own arena;
 *   2. it writes the response header into req->resp and calls the handler
 *      from the dispatch table (src/broker/dispatch.c);
 *   3. the handler decodes req->body with the generated decoder for
 *      req->api_version, does its work and encodes the response body into
 *      req->resp, then calls sm_req_done(req) exactly once - right away, or
 *      later from any thread (long-poll fetch, acks=all, JoinGroup);
 *   4. the loop thread sends responses strictly in request order per
 *      connection, then frees the request (arena included).
 *
 * A handler that finds the body malformed calls sm_req_fail(req, why): the
 * connection is closed with one log line and no response is sent, as Kafka
 * does. If the connection dies while a request is parked, sm_req_done() still
 * must be called; the response is then dropped.
 */
#ifndef SM_REQUEST_H
#define SM_REQUEST_H

#include "arena.h"
#include "buf.h"
#include "proto.h"
#include "sm_common.h"

typedef struct sm_server sm_server_t;
typedef struct sm_conn sm_conn_t;
typedef struct sm_req sm_req_t;

struct sm_req {
    sm_server_t *srv;      /* broker-wide state; outlives every request */
    sm_conn_t *conn;       /* owning connection (refcounted by the request) */
    int16_t api_key;
    int16_t api_version;
    int32_t correlation_id;
    sm_str_t client_id;    /* view into the frame, valid for the request's life */
    sm_rd_t body;          /* request body, after the header */
    sm_arena_t arena;      /* per-request memory: decoded request, response structs */
    sm_wbuf_t resp;        /* response frame being built (size + header written already) */
    int64_t received_us;   /* monotonic time the frame was complete */
    /* framework-private */
    uint8_t *frame;        /* owned frame bytes */
    sm_req_t *next;        /* in the connection's FIFO */
    int state;
    int64_t deadline_ms;   /* for parked requests (fetch long poll, acks wait) */
    void *park_ctx;        /* handler-private state while parked */
};

/* Handler signature. Runs on the connection's loop thread. */
typedef void (*sm_handler_fn)(sm_req_t *req);

/* Finish a request whose response body is now in req->resp. Any thread. */
void sm_req_done(sm_req_t *req);

/* Malformed request: close the connection with one log line naming the peer,
 * API and why; no response. Any thread; counts as done. */
void sm_req_fail(sm_req_t *req, const char *why);

/* Count one error code of req's response in the errors-per-API metric
 * (an sm_proto_err_fn; arg is the sm_req_t). Any thread. */
void sm_req_count_error(void *req, int16_t error_code);

/* Log prefix helper: "peer=1.2.3.4:5678 client=rdkafka". Loop thread. */
const char *sm_req_peer(const sm_req_t *req);

/* Name of the listener the request's connection came in on ("PLAINTEXT",
 * "EXTERNAL", ...). Any thread while the request lives. */
const char *sm_req_listener(const sm_req_t *req);

/* SM_SCOPE_CONTROLLER if the connection came in on a controller listener
 * (controller.listener.names), else SM_SCOPE_BROKER (dispatch.h). Any thread
 * while the request lives. */
uint8_t sm_req_scope(const sm_req_t *req);

#endif
