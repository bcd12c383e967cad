/*
 * dispatch.h - the one ApiKey-indexed table of supported APIs:
 * {api key, min version, max version, handler}. ApiVersions is answered from
 * it, and the connection layer rejects keys and versions it does not list.
 */
#ifndef SM_DISPATCH_H
#define SM_DISPATCH_H

#include "request.h"

/* Which listeners serve an API, as Kafka's message definitions say
 * ("listeners": broker, controller). A connection accepted on a listener
 * named in controller.listener.names is a controller connection: it gets
 * only the controller's APIs, and ApiVersions there lists only those. */
enum {
    SM_SCOPE_BROKER = 1,
    SM_SCOPE_CONTROLLER = 2,
    SM_SCOPE_BOTH = SM_SCOPE_BROKER | SM_SCOPE_CONTROLLER,
};

typedef struct sm_dispatch {
    int16_t api_key;
    int16_t min_version, max_version;
    sm_handler_fn handler;
    uint8_t scope; /* SM_SCOPE_* */
} sm_dispatch_t;

/* Entry for api_key, or NULL if unsupported. Any thread. */
const sm_dispatch_t *sm_dispatch_lookup(int16_t api_key);
/* All entries, in api key order. */
const sm_dispatch_t *sm_dispatch_table(int *count);

#endif
