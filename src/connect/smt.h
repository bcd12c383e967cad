/*
 * smt.h - Single Message Transforms, predicates and error handling of samsa-connect
 * (Kafka Connect's org.apache.kafka.connect.transforms.* and the errors.* keys).
 *
 * A record under transformation is a cn_record_t: its key and value are jansson
 * values (strings, numbers, objects for structs and maps; json null for null) with
 * an optional Connect schema each (the JsonConverter's schema form), its headers and
 * its topic, partition, offset and timestamp. A chain (cn_chain_t) is built once per
 * task from the connector's config (transforms=..., predicates=...) and applied to
 * each record: in source tasks between the plugin's emit and the converters, in sink
 * tasks between the converters and the plugin's put. Chains are immutable after
 * creation and used by one task thread.
 *
 * Error handling (errors.c): cn_errh_t holds one task's errors.* settings, the dead
 * letter queue producer of a sink and the retry policy.
 */
#ifndef SM_CN_SMT_H
#define SM_CN_SMT_H

#include "cn.h"

/* One header; value NULL is a header without a value. */
typedef struct cn_hdr {
    char *key;
    char *value;
    size_t len;
} cn_hdr_t;

typedef struct cn_record {
    char *topic;
    int32_t partition;    /* -1: unknown (source records: the partitioner picks) */
    int64_t offset;       /* -1 for source records */
    int64_t timestamp_ms; /* -1: none */
    json_t *key, *value;  /* never NULL: json null for a null key/value */
    json_t *key_schema, *value_schema; /* NULL: schemaless */
    bool key_bytes, value_bytes;       /* a top-level BYTES value (raw bytes in a json string) */
    cn_hdr_t *hdrs;
    size_t nhdrs, cap_hdrs;
    samsa_connect_header_t *view; /* cn_record_export's header array */
} cn_record_t;

/* Build a record from Connect values (borrowed; copied). -1 with err when a JSON-kind
 * value or a schema is not valid JSON; *bad_key tells which side failed. */
int cn_record_init(cn_record_t *r, const char *topic, int32_t partition, int64_t offset, int64_t ts,
                   const samsa_connect_value_t *key, const samsa_connect_value_t *value,
                   const samsa_connect_header_t *hdrs, size_t nhdrs, bool *bad_key, char *err,
                   size_t err_len);
/* The record's key and value as owned Connect values, and r->view/r->nhdrs as the
 * header array (valid until the record changes or is freed). -1 with err (and nothing
 * to free) when a value cannot be written as JSON text (a non-UTF-8 string inside). */
int cn_record_export(cn_record_t *r, cn_value_t *key, cn_value_t *value, char *err, size_t err_len);
void cn_record_free(cn_record_t *r);
/* Header helpers (used by the transforms and tests). */
void cn_record_add_header(cn_record_t *r, const char *key, const void *value, size_t len);
const cn_hdr_t *cn_record_header(const cn_record_t *r, const char *key);

typedef struct cn_chain cn_chain_t;

/* Build the transform chain of a connector config. An empty chain when transforms is
 * unset. NULL on an invalid configuration, with bad_key (e.g. "transforms.a.regex")
 * and err (Kafka's "Invalid value ... for configuration ...") filled. */
cn_chain_t *cn_chain_new(json_t *config, char *bad_key, size_t key_len, char *err, size_t err_len);
void cn_chain_free(cn_chain_t *c);
size_t cn_chain_size(const cn_chain_t *c);
/* Apply every transform in order (those whose predicate, after negate, holds).
 * 1: keep the record, 0: a transform dropped it, -1: failure with err and *cls set to
 * the failing transform's class name (valid while the chain lives). */
int cn_chain_apply(cn_chain_t *c, cn_record_t *r, const char **cls, char *err, size_t err_len);

/* Base64 of n bytes (malloc'ed, NUL-terminated), as the JsonConverter writes bytes. */
char *cn_base64_encode(const void *p, size_t n, size_t *out_len);

/* Append every transform and predicate class to a GET /connector-plugins array. */
void cn_smt_plugins_list(json_t *a);

/* -------------------------------------------------------------- errors (errors.c) */

typedef struct cn_errh {
    cn_logger_t *log;
    cn_task_t *task; /* for stoppable retries; only used from the task's thread */
    char task_name[300];
    char conn_name[256];
    int task_id;
    bool tolerate_all, log_errors, log_messages;
    int64_t retry_timeout_ms;   /* errors.retry.timeout: 0 no retries, -1 forever */
    int64_t retry_delay_max_ms; /* errors.retry.delay.max.ms */
    char *dlq_topic;            /* sinks: errors.deadletterqueue.topic.name, or NULL */
    int dlq_rf;
    bool dlq_headers;
    rd_kafka_t *dlq; /* the DLQ producer */
    int64_t failures, dlq_sent;
} cn_errh_t;

/* What an error report says about the record that failed. */
typedef struct cn_err_rec {
    const char *topic;
    int32_t partition;
    int64_t offset;
    const void *key, *value; /* the original record's bytes (sinks) */
    size_t key_len, value_len;
    rd_kafka_headers_t *hdrs; /* the original headers (borrowed), or NULL */
    const char *text;         /* a description for errors.log.include.messages */
} cn_err_rec_t;

/* Read the errors.* keys of conn_config; for a sink with a DLQ topic, create the topic
 * when missing and the DLQ producer. false with err. */
bool cn_errh_init(cn_errh_t *e, cn_task_t *t, bool sink, cn_logger_t *log, char *err, size_t err_len);
void cn_errh_free(cn_errh_t *e);
/* The class name of a converter (for error reports). */
const char *cn_converter_class(const cn_converter_t *cv);
/* A record failed at stage (KEY_CONVERTER, VALUE_CONVERTER, TRANSFORMATION, ...) in
 * class cls with message msg: log it (errors.log.enable), send it to the DLQ (sinks).
 * true when tolerated (skip the record); false with fatal filled (fail the task). */
bool cn_errh_report(cn_errh_t *e, const char *stage, const char *cls, const char *msg,
                    const cn_err_rec_t *rec, char *fatal, size_t fatal_len);
/* Wait until the DLQ producer delivered what it was given (before offsets commit).
 * false when a DLQ record could not be written. */
bool cn_errh_flush(cn_errh_t *e, char *err, size_t err_len);

/* Retries with exponential backoff (300 ms doubling, capped at errors.retry.delay.max.ms)
 * within errors.retry.timeout. */
typedef struct cn_retry {
    int64_t deadline; /* -1: forever */
    int64_t delay_ms, max_ms;
    int attempts;
} cn_retry_t;
void cn_retry_start(cn_retry_t *r, const cn_errh_t *e);
/* Sleep before the next attempt (woken early when the task must stop) and return true,
 * or false when the time is up, retries are off, or the task is stopping (t may be NULL). */
bool cn_retry_again(cn_retry_t *r, cn_task_t *t);

#endif
