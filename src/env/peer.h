/*
 * peer.h - the node-to-node client: one outbound Kafka-protocol connection to
 * another node (a controller or a broker), on an event loop.
 *
 * The cluster's nodes talk to each other with Kafka's own RPCs (Vote,
 * BeginQuorumEpoch, Fetch, BrokerRegistration, BrokerHeartbeat, forwarded
 * admin requests, ...). A peer owns one TCP connection to one address and
 * carries framed requests over it: the caller encodes a request body with
 * the generated codecs, the peer adds the size prefix and request header
 * (API key, version, correlation id, client id, and the tagged-field byte of
 * header v2), writes it, and hands the response body back to the callback
 * when the response with that correlation id arrives. Kafka answers a
 * connection's requests in order, so a response that is not for the oldest
 * request in flight is a protocol error: the connection is closed.
 *
 *       sm_peer_send                        connected
 *   IDLE ──────────► CONNECTING ─────────────────────────► READY
 *    ▲                  │ refused / timed out / error        │ I/O error, EOF, bad or
 *    │                  ▼                                    │ oversized response,
 *    └──── timer ──── BACKOFF ◄──────────────────────────────┘ request timed out
 *          (reconnect.backoff.ms doubling up to reconnect.backoff.max.ms, with jitter)
 *
 * Requests queued while the connection is not READY wait (bounded by
 * max_queued) and are written once it is. When a connection is lost, the
 * requests that were written get SM_ERR_CLOSED (they may or may not have been
 * processed by the peer: the caller decides whether to retry), the ones not
 * yet written stay queued for the next connection. A request not answered by
 * its deadline gets SM_ERR_AGAIN; if it was written, the connection is
 * closed as well (a late answer would be out of order), as Kafka clients do.
 *
 * Threads: a peer and its callbacks belong to the loop it was made on; every
 * function here runs on that loop's thread. A callback may send new
 * requests on the same peer and may free it (the free then completes when
 * the callback returns).
 */
#ifndef SM_ENV_PEER_H
#define SM_ENV_PEER_H

#include "loop.h"
#include "sm_common.h"

#include <stddef.h>
#include <stdint.h>

typedef struct sm_peer sm_peer_t;

typedef struct sm_peer_config {
    const char *client_id;       /* request header client id (e.g. "samsa-node-1") */
    int32_t max_queued;          /* requests queued or in flight at once (default 1024) */
    int32_t max_response_bytes;  /* larger responses close the connection (default 100 MiB) */
    int32_t backoff_ms;          /* reconnect.backoff.ms (default 50) */
    int32_t backoff_max_ms;      /* reconnect.backoff.max.ms (default 1000) */
    int32_t connect_timeout_ms;  /* socket.connection.setup.timeout.ms (default 10000) */
    uint64_t seed;               /* jitter of the backoff (the environment's randomness) */
} sm_peer_config_t;

/* Response callback. err: SM_OK and the response body (after the response
 * header: correlation id, and its tagged fields when resp_header_version is
 * 1), valid only during the call; SM_ERR_CLOSED (connection lost or peer
 * freed; body NULL); SM_ERR_AGAIN (deadline passed); SM_ERR_TOO_LARGE or
 * SM_ERR_CORRUPT (the response broke the framing; the connection was
 * closed). Called exactly once per accepted request. */
typedef void (*sm_peer_resp_fn)(void *ctx, sm_err_t err, const uint8_t *body, size_t len);

/* A peer for host:port on loop l. Nothing happens until the first send.
 * cfg may be NULL (defaults); its strings are copied. Loop thread of l. */
sm_peer_t *sm_peer_new(sm_loop_t *l, const char *host, int port, const sm_peer_config_t *cfg);

/* Close the connection; every request still queued or in flight gets
 * SM_ERR_CLOSED, then the peer is freed (at once, or when the running
 * callback returns). NULL is fine. */
void sm_peer_free(sm_peer_t *p);

/* Queue a request. body (len bytes, copied) is the encoded request body;
 * req_header_version is 1 or 2 (2 adds the empty tagged-field byte of
 * flexible versions), resp_header_version 0 or 1 (1 skips the response
 * header's tagged fields before the body reaches fn). timeout_ms bounds the
 * wait from now. SM_ERR_AGAIN without calling fn when max_queued requests
 * are already outstanding; SM_ERR_INVALID for a bad argument. */
sm_err_t sm_peer_send(sm_peer_t *p, int16_t api_key, int16_t api_version,
                      int req_header_version, int resp_header_version, const uint8_t *body,
                      size_t len, int64_t timeout_ms, sm_peer_resp_fn fn,
                      void *ctx) SM_MUST_CHECK;

/* Requests queued or in flight. */
int sm_peer_outstanding(const sm_peer_t *p);
/* True while the connection is established. */
bool sm_peer_connected(const sm_peer_t *p);
/* True after a failed connection attempt, until the backoff ends: queued
 * requests are not written meanwhile. */
bool sm_peer_unreachable(const sm_peer_t *p);
/* "host:port", for log lines. */
const char *sm_peer_name(const sm_peer_t *p);

#endif
