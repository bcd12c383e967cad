/*
 * handler_util.h - small helpers shared by the API handlers.
 */
#ifndef SM_HANDLER_UTIL_H
#define SM_HANDLER_UTIL_H

#include "kerr.h"
#include "partition/partition.h"
#include "request.h"

#include <string.h>
#include "sm_proto_gen.h"

/* Decode req's body into msg (type sm_<name>_t) or fail the request and
 * return from the handler. */
#define SM_DECODE_OR_FAIL(name, req, msg)                                                   \
    do {                                                                                    \
        if (sm_##name##_decode(&(req)->body, &(req)->arena, (req)->api_version, (msg)) !=   \
            SM_OK) {                                                                        \
            sm_req_fail((req), "malformed " #name);                                         \
            return;                                                                         \
        }                                                                                   \
    } while (0)

/* Encode the response body, count its error codes (metrics) and finish the request. */
#define SM_RESPOND(name, req, msg)                                                          \
    do {                                                                                    \
        sm_##name##_encode(&(req)->resp, (req)->api_version, (msg));                        \
        sm_##name##_errors((msg), sm_req_count_error, (req));                               \
        sm_req_done(req);                                                                   \
    } while (0)

/* Arena array of n initialised elements of a generated struct type. */
#define SM_NEW_ARRAY(req, type, n, out)                                                     \
    do {                                                                                    \
        (out) = SM_ARENA_NEW(&(req)->arena, type##_t, (n) > 0 ? (n) : 1);                   \
        for (int32_t _i = 0; _i < (int32_t)(n); _i++)                                       \
            type##_init(&(out)[_i]);                                                        \
    } while (0)

/* True if a wire string holds a NUL byte. The broker keeps identifiers
 * (topic, group, member and instance ids, protocol names, config names and
 * values) as C strings, so such a string would be cut at the NUL and could
 * name another object ("a\0b" -> "a"); handlers refuse those with a Kafka
 * error instead. Opaque values (committed offset metadata, client ids,
 * record keys, values and headers) keep their length and may hold any byte. */
static inline bool sm_str_has_nul(sm_str_t s)
{
    return s.len > 0 && memchr(s.ptr, 0, (size_t)s.len) != NULL;
}

/* KIP-320 leader epoch check of a request against the partition's, as a
 * Kafka error code. */
static inline int16_t sm_partition_epoch_check(const sm_partition_t *p, int32_t current_leader_epoch)
{
    int c = sm_partition_epoch_cmp(p, current_leader_epoch);
    return c == 0 ? KERR_NONE : c < 0 ? KERR_FENCED_LEADER_EPOCH : KERR_UNKNOWN_LEADER_EPOCH;
}

/* NUL-terminated arena copy of a wire string ("" for null). */
static inline char *sm_req_str(sm_req_t *req, sm_str_t s)
{
    return sm_arena_strndup(&req->arena, s.ptr ? s.ptr : "", s.len > 0 ? (size_t)s.len : 0);
}

/* This broker's address as the client should use it: the advertised
 * listener named like the one the request came in on (Kafka answers each
 * listener with its own endpoint), else the first advertised listener (a
 * request on a listener that is not advertised). Any thread. */
void sm_req_self_endpoint(sm_req_t *req, sm_str_t *host, int32_t *port);

/* Run fn(req, msg) on the controller thread (sm_server_controller): for
 * requests that change metadata, whose commits wait for the metadata log's
 * fsync and may create or delete thousands of files. msg must live in the
 * request's arena. Call from the handler, as its last step. */
typedef void (*sm_ctl_fn)(sm_req_t *req, void *msg);
void sm_req_on_controller(sm_req_t *req, void *msg, sm_ctl_fn fn);
/* The same from any thread, never forwarded (forward.c's fallback). */
void sm_req_run_on_controller(sm_req_t *req, void *msg, sm_ctl_fn fn);
/* Like sm_req_on_controller for a metadata change: on a node that is not
 * the active controller it is forwarded to the one that is (forward.h);
 * raw is the request body as received. */
void sm_req_change_metadata(sm_req_t *req, const sm_rd_t *raw, void *msg, sm_ctl_fn fn);

/* Define handler(req): decode request type sm_<name>_t into the arena, then
 * run(req, msg) on the controller thread, or forward the request to the
 * active controller when this node is not it. */
#define SM_HANDLER_ON_CONTROLLER(handler, name, run)                                        \
    void handler(sm_req_t *req)                                                             \
    {                                                                                       \
        sm_rd_t raw_ = req->body;                                                           \
        sm_##name##_t *msg_ = SM_ARENA_NEW(&req->arena, sm_##name##_t, 1);                  \
        SM_DECODE_OR_FAIL(name, req, msg_);                                                 \
        sm_req_change_metadata(req, &raw_, msg_, run);                                      \
    }

/* dup[i] = names[i] appears more than once among the n names, where names[i]
 * is the sm_str_t at (char *)names + i * stride (a field of an array of
 * structs). Sorts, so a million names cost milliseconds. Arena memory. */
bool *sm_names_duplicated(sm_req_t *req, const sm_str_t *names, size_t stride, int32_t n);

#endif
