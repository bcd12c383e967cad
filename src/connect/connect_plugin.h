/*
 * connect_plugin.h - the C ABI between samsa-connect and its connector plugins.
 *
 * A plugin is a shared object on the worker's plugin.path (or code compiled into
 * the worker: the built-in FileStream connectors use this same ABI). It exports
 *
 *     const samsa_connect_plugin_t *const *samsa_connect_plugins(uint32_t runtime_abi);
 *
 * which returns a NULL-terminated array of connector descriptions that live as long
 * as the shared object is loaded (the worker never unloads it). runtime_abi is the
 * worker's SAMSA_CONNECT_ABI_VERSION; a plugin built for another major version should
 * return NULL. Each description carries the ABI version it was built with
 * (abi_version) and its own size (struct_size): the worker refuses descriptions of
 * another major version and reads only the fields that a smaller struct_size covers,
 * so fields can be appended in later minor versions without breaking older plugins.
 *
 * The model is Kafka Connect's, reduced to what C needs:
 *  - a connector (the description) validates its configuration and splits it into at
 *    most tasks.max task configurations (task_configs);
 *  - a source task is started with its configuration, then polled: each poll hands
 *    zero or more records to the worker through ctx->rt->emit(), each with a source
 *    partition and a source offset (small JSON objects, like Kafka's Map<String,?>).
 *    The worker produces them and stores the offset of a record only once the broker
 *    acknowledged it and every record emitted before it; on start a task reads its
 *    last stored offset with ctx->rt->offset();
 *  - a sink task is started, handed batches of records (put), and asked to make what
 *    it was handed durable (flush); the worker commits the consumer offsets of those
 *    records only after flush returned success.
 *
 * Threads: every call on one task comes from that task's own thread, one at a time;
 * different tasks of one plugin run on different threads at once, so a plugin keeps
 * its state in the task object it returns, not in globals. task_configs and validate
 * may run on any thread.
 *
 * Ownership: every pointer the worker passes (configs, records, values, strings) is
 * borrowed for the duration of the call only; copy what you keep. emit() copies the
 * record before it returns. Strings are NUL-terminated UTF-8.
 *
 * Errors: functions return 0 on success and a negative value on failure, after
 * writing a one-line reason into err[0..err_len) where one is passed (the worker shows
 * it as the task's "trace" in GET /connectors/{c}/status and marks the task FAILED).
 */
#ifndef SAMSA_CONNECT_PLUGIN_H
#define SAMSA_CONNECT_PLUGIN_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Major version in the high 16 bits, minor in the low 16. */
#define SAMSA_CONNECT_ABI_VERSION 0x00010000u
#define SAMSA_CONNECT_ABI_MAJOR(v) ((v) >> 16)

#define SAMSA_CONNECT_EXPORT __attribute__((visibility("default")))
/* The symbol the worker looks up in each shared object. */
#define SAMSA_CONNECT_ENTRY "samsa_connect_plugins"

typedef enum samsa_connect_type {
    SAMSA_CONNECT_SOURCE = 1,
    SAMSA_CONNECT_SINK = 2,
} samsa_connect_type_t;

/* One configuration entry. */
typedef struct samsa_connect_kv {
    const char *key;
    const char *value;
} samsa_connect_kv_t;

/* A configuration: n entries, keys unique. */
typedef struct samsa_connect_config {
    const samsa_connect_kv_t *entries;
    size_t n;
} samsa_connect_config_t;

/* The value of key in cfg, or NULL when absent. */
static inline const char *samsa_connect_config_get(const samsa_connect_config_t *cfg,
                                                   const char *key)
{
    for (size_t i = 0; i < cfg->n; i++) {
        const char *a = cfg->entries[i].key, *b = key;
        while (*a && *a == *b)
            a++, b++;
        if (*a == *b)
            return cfg->entries[i].value;
    }
    return 0;
}

/* Config value types, named as Kafka's ConfigDef.Type (the REST API shows the name). */
typedef enum samsa_connect_config_type {
    SAMSA_CONFIG_BOOLEAN = 1,
    SAMSA_CONFIG_STRING,
    SAMSA_CONFIG_INT,
    SAMSA_CONFIG_SHORT,
    SAMSA_CONFIG_LONG,
    SAMSA_CONFIG_DOUBLE,
    SAMSA_CONFIG_LIST,
    SAMSA_CONFIG_CLASS,
    SAMSA_CONFIG_PASSWORD,
} samsa_connect_config_type_t;

typedef enum samsa_connect_importance {
    SAMSA_IMPORTANCE_HIGH = 1,
    SAMSA_IMPORTANCE_MEDIUM,
    SAMSA_IMPORTANCE_LOW,
} samsa_connect_importance_t;

/* One key a connector understands. The worker checks each key a user sets against
 * these (type, required, non_empty) before anything starts, and shows them in
 * PUT /connector-plugins/{p}/config/validate. */
typedef struct samsa_connect_config_def {
    const char *name;
    samsa_connect_config_type_t type;
    const char *default_value; /* NULL: no default */
    int required;              /* no default and must be set */
    int non_empty;             /* when set, must not be the empty string */
    samsa_connect_importance_t importance;
    const char *documentation;
} samsa_connect_config_def_t;

/*
 * A key or value as Connect data. kind says how data[0..len) reads:
 *  NULL    no value (a tombstone); data is NULL.
 *  STRING  UTF-8 text.
 *  BYTES   raw bytes.
 *  JSON    the JSON text of any other value: a number, a boolean, an array, an object
 *          (a struct or a map). Converters turn it into the record's bytes.
 * schema, when not NULL, is the Connect schema of the value as JSON text, in the
 * JsonConverter's schema form ({"type":"string","optional":false}); NULL is
 * schemaless. The JsonConverter with schemas.enable=true writes it in the envelope.
 */
typedef enum samsa_connect_kind {
    SAMSA_VALUE_NULL = 0,
    SAMSA_VALUE_STRING = 1,
    SAMSA_VALUE_BYTES = 2,
    SAMSA_VALUE_JSON = 3,
} samsa_connect_kind_t;

typedef struct samsa_connect_value {
    samsa_connect_kind_t kind;
    const char *data;
    size_t len;
    const char *schema;
} samsa_connect_value_t;

typedef struct samsa_connect_header {
    const char *key;
    const void *value; /* NULL: a header without a value */
    size_t len;
} samsa_connect_header_t;

/* A record a source task emits. */
typedef struct samsa_connect_source_record {
    const char *source_partition; /* JSON object text, e.g. {"filename":"/tmp/in.txt"} */
    const char *source_offset;    /* JSON object text, e.g. {"position":4096} */
    const char *topic;
    int32_t kafka_partition;      /* -1: the producer's partitioner picks */
    samsa_connect_value_t key;
    samsa_connect_value_t value;
    const samsa_connect_header_t *headers;
    size_t header_count;
    int64_t timestamp_ms; /* -1: the time of emit */
} samsa_connect_source_record_t;

/* A record a sink task is handed. */
typedef struct samsa_connect_sink_record {
    const char *topic;
    int32_t kafka_partition;
    int64_t kafka_offset;
    int64_t timestamp_ms; /* -1 when the record has none */
    samsa_connect_value_t key;
    samsa_connect_value_t value;
    const samsa_connect_header_t *headers;
    size_t header_count;
} samsa_connect_sink_record_t;

typedef struct samsa_connect_context samsa_connect_context_t;

/* Log levels for rt->log (Kafka's names). */
typedef enum samsa_connect_log_level {
    SAMSA_LOG_TRACE = 0,
    SAMSA_LOG_DEBUG,
    SAMSA_LOG_INFO,
    SAMSA_LOG_WARN,
    SAMSA_LOG_ERROR,
} samsa_connect_log_level_t;

/* What the worker offers a plugin, reached as ctx->rt. */
typedef struct samsa_connect_runtime {
    uint32_t abi_version;
    /* Log one line under the connector's logger (GET|PUT /admin/loggers). */
    void (*log)(samsa_connect_context_t *ctx, samsa_connect_log_level_t level, const char *fmt,
                ...) __attribute__((format(printf, 3, 4)));
    /* Source tasks: the stored offset (JSON object text) of source_partition (JSON
     * object text), or NULL. The string is valid until the next call on this ctx. */
    const char *(*offset)(samsa_connect_context_t *ctx, const char *source_partition);
    /* Source tasks, inside poll: hand one record to the worker, which copies it.
     * 0, or negative when the record was refused (reason logged; a conversion failure
     * under errors.tolerance=none fails the task after poll returns). */
    int (*emit)(samsa_connect_context_t *ctx, const samsa_connect_source_record_t *rec);
    /* task_configs: add one task's configuration (copied). */
    int (*add_task_config)(samsa_connect_context_t *ctx, const samsa_connect_config_t *cfg);
    /* Nonzero once the worker wants the task to stop or pause: a poll that waits for
     * data should return soon after. */
    int (*should_yield)(samsa_connect_context_t *ctx);
    /* Add a validation error to key (validate only; shown by config/validate and
     * refusing the configuration). */
    void (*config_error)(samsa_connect_context_t *ctx, const char *key, const char *message);
} samsa_connect_runtime_t;

/* Every context starts with the runtime's function table. */
struct samsa_connect_context {
    const samsa_connect_runtime_t *rt;
};

/* One connector class. Fields after struct_size may grow in later minor versions. */
typedef struct samsa_connect_plugin {
    uint32_t abi_version; /* SAMSA_CONNECT_ABI_VERSION the plugin was built with */
    uint32_t struct_size; /* sizeof(samsa_connect_plugin_t) as the plugin saw it */
    const char *class_name; /* e.g. "org.apache.kafka.connect.file.FileStreamSourceConnector" */
    const char *const *aliases; /* NULL-terminated; may be NULL */
    const char *version;
    samsa_connect_type_t type;
    const samsa_connect_config_def_t *config_defs;
    size_t config_def_count;

    /* Checks beyond config_defs (optional): report problems with ctx->rt->config_error. */
    void (*validate)(samsa_connect_context_t *ctx, const samsa_connect_config_t *cfg);
    /* Split the connector's configuration into at most max_tasks task configurations
     * with ctx->rt->add_task_config (optional: NULL gives one task with the
     * connector's own configuration). */
    int (*task_configs)(samsa_connect_context_t *ctx, const samsa_connect_config_t *cfg,
                        int max_tasks, char *err, size_t err_len);

    /* Create and start one task. *task_out is passed back to every later call. */
    int (*task_start)(samsa_connect_context_t *ctx, const samsa_connect_config_t *cfg,
                      void **task_out, char *err, size_t err_len);
    /* Source: emit what is ready (at most a batch) and return; when nothing is ready,
     * return after a short wait (the worker yields at least every second). */
    int (*source_poll)(void *task, samsa_connect_context_t *ctx, char *err, size_t err_len);
    /* Sink: take n records (in offset order per partition). */
    int (*sink_put)(void *task, samsa_connect_context_t *ctx,
                    const samsa_connect_sink_record_t *recs, size_t n, char *err, size_t err_len);
    /* Sink: make every record put so far durable; the worker then commits offsets. */
    int (*sink_flush)(void *task, samsa_connect_context_t *ctx, char *err, size_t err_len);
    /* Stop and free the task (after a final flush for sinks). */
    void (*task_stop)(void *task, samsa_connect_context_t *ctx);
} samsa_connect_plugin_t;

typedef const samsa_connect_plugin_t *const *(*samsa_connect_entry_fn)(uint32_t runtime_abi);

#ifdef __cplusplus
}
#endif
#endif
