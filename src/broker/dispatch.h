/*
 * dispatch.h - the one ApiKey-indexed table of supported APIs:
 * {api key, min version, max version, handler}. ApiVersions is answered from
 * it, and the connection layer rejects keys and versions it does not list.
 */
#ifndef SM_DISPATCH_H
#define SM_DISPATCH_H

#include "request.h"

typedef struct sm_dispatch {
    int16_t api_key;
    int16_t min_version, max_version;
    sm_handler_fn handler;
} sm_dispatch_t;

/* Entry for api_key, or NULL if unsupported. Any thread. */
const sm_dispatch_t *sm_dispatch_lookup(int16_t api_key);
/* All entries, in api key order. */
const sm_dispatch_t *sm_dispatch_table(int *count);

#endif
