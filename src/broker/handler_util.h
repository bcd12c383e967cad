/*
 * handler_util.h - small helpers shared by the API handlers.
 */
#ifndef SM_HANDLER_UTIL_H
#define SM_HANDLER_UTIL_H

#include "kerr.h"
#include "request.h"
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

/* Encode the response body and finish the request. */
#define SM_RESPOND(name, req, msg)                                                          \
    do {                                                                                    \
        sm_##name##_encode(&(req)->resp, (req)->api_version, (msg));                        \
        sm_req_done(req);                                                                   \
    } while (0)

/* Arena array of n initialised elements of a generated struct type. */
#define SM_NEW_ARRAY(req, type, n, out)                                                     \
    do {                                                                                    \
        (out) = SM_ARENA_NEW(&(req)->arena, type##_t, (n) > 0 ? (n) : 1);                   \
        for (int32_t _i = 0; _i < (int32_t)(n); _i++)                                       \
            type##_init(&(out)[_i]);                                                        \
    } while (0)

/* NUL-terminated arena copy of a wire string ("" for null). */
static inline char *sm_req_str(sm_req_t *req, sm_str_t s)
{
    return sm_arena_strndup(&req->arena, s.ptr ? s.ptr : "", s.len > 0 ? (size_t)s.len : 0);
}

#endif
