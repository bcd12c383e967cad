/*
 * admin_wire.h - a tiny blocking Kafka client over one plain TCP socket, for
 * the admin requests librdkafka 2.0.2 does not expose (ApiVersions,
 * DescribeCluster, IncrementalAlterConfigs) and for raw requests in tools.
 *
 * Framing (Kafka protocol guide): int32 size, then the request header
 * (v1: api_key, api_version, correlation_id, client_id; v2 adds a tagged
 * field section for flexible versions), then the body encoded with the
 * generated codecs. The response is int32 size, header (correlation id, plus
 * tagged fields in v1), body. One request in flight; the correlation id of
 * every response is checked. Each socket wait is bounded by --timeout.
 *
 * Versions: after connecting, ApiVersions (v3, or v0 when the broker says it
 * does not know v3) learns the broker's ranges; cli_wire_call picks the
 * highest version both sides and the caller accept.
 *
 * Ownership: decoded responses (and the bytes their strings point into) live
 * in the caller's arena. Main thread only.
 */
#ifndef SM_CLI_ADMIN_WIRE_H
#define SM_CLI_ADMIN_WIRE_H

#include "sm_proto_gen.h"

#define CLI_WIRE_MAX_KEYS 128
#define CLI_WIRE_MAX_RESPONSE (64 * 1024 * 1024)

typedef struct cli_wire {
    int fd;
    int32_t corr;
    char peer[300];                        /* "host:port" for messages */
    int16_t min_ver[CLI_WIRE_MAX_KEYS];    /* broker's range; max -1 = unsupported */
    int16_t max_ver[CLI_WIRE_MAX_KEYS];
    sm_api_versions_response_t *versions;  /* as decoded (in arena) */
    sm_arena_t arena;                      /* holds versions */
} cli_wire_t;

/* Connect to the first reachable broker of "host:port[,host:port]" and run
 * ApiVersions. Prints the reason and returns false on failure. */
bool cli_wire_connect(cli_wire_t *w, const char *brokers);
/* Connect to one host/port (e.g. the controller from Metadata). */
bool cli_wire_connect_one(cli_wire_t *w, const char *host, int port);
void cli_wire_close(cli_wire_t *w);

/* Version to use for key: the highest in [lo, hi] that the broker and our
 * codecs support; false (with a message) if none. */
bool cli_wire_version(cli_wire_t *w, int16_t key, int16_t lo, int16_t hi, int16_t *out);

/* Send req (the generated request struct of key) at version and decode the
 * response into *resp (allocated in a). false with a message printed on I/O,
 * framing or decode errors. */
bool cli_wire_call(cli_wire_t *w, int16_t key, int16_t version, const void *req, sm_arena_t *a,
                   void **resp);

/* Kafka error code name ("UNKNOWN_TOPIC_OR_PARTITION"); for codes librdkafka
 * knows it also gives the description. */
const char *cli_kafka_err_name(int16_t code);

#endif
