/*
 * cn.h - samsa-connect's internal interfaces: the worker, its logger table, worker
 * configuration, plugin registry, converters, offset store, herder (connectors and
 * tasks) and REST server. See docs/CONNECT.md for the user's view.
 *
 * Threads (who owns what):
 *  - main thread: start-up, connector files from the command line, the signal wait,
 *    shut-down;
 *  - REST threads (libmicrohttpd's pool): each request takes the herder's mutex for
 *    the whole operation, so connector state changes are serialized as in Kafka's
 *    StandaloneHerder (a synchronized class);
 *  - one thread per task (task_source.c, task_sink.c): it owns its Kafka client and
 *    the plugin's task object; the herder talks to it only through the task's own
 *    mutex and condition variable (target state, stop flag) and joins it to stop it.
 *    A task thread never takes the herder's mutex, so joining under it cannot deadlock.
 * The offset store and the logger table have their own mutexes and may be used from
 * any thread.
 *
 * JSON documents are jansson objects (reference counted; json_decref frees). Connector
 * configurations are JSON objects whose values are all strings, in insertion order.
 */
#ifndef SM_CN_H
#define SM_CN_H

#include "connect_plugin.h"

#include <jansson.h>
#include <librdkafka/rdkafka.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <time.h>

#define CN_VERSION "3.8.0-samsa"
#define CN_MAX_BODY (1u << 20) /* REST request bodies above this are refused (413) */

/* ------------------------------------------------------------------ logging (log.c) */

typedef struct cn_logger cn_logger_t;

/* Root level from SAMSA_LOG_LEVEL (default INFO). Main thread, before anything else. */
void cn_log_init(void);
/* The logger named name, registered on first use (never freed). Any thread. */
cn_logger_t *cn_logger(const char *name);
bool cn_log_enabled(const cn_logger_t *lg, int level);
void cn_logf(cn_logger_t *lg, int level, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
void cn_logv(cn_logger_t *lg, int level, const char *fmt, va_list ap);
/* "TRACE".."ERROR", "FATAL" (as ERROR), "OFF": a level, or -1. Case-insensitive. */
int cn_log_level_parse(const char *s);
/* GET /admin/loggers: {"name":{"level":"INFO","last_modified":ms|null}, ...} (new ref). */
json_t *cn_log_list(void);
/* GET /admin/loggers/{name}: the logger's entry, or NULL when unknown (new ref). */
json_t *cn_log_get(const char *name);
/* PUT /admin/loggers/{ns}: set ns and every logger under it (ns + "."), creating ns.
 * Returns the array of affected names (new ref). */
json_t *cn_log_set(const char *ns, int level);

#define CN_LOG_OFF 5
#define CN_TRACE(lg, ...) cn_logf((lg), SAMSA_LOG_TRACE, __VA_ARGS__)
#define CN_DEBUG(lg, ...) cn_logf((lg), SAMSA_LOG_DEBUG, __VA_ARGS__)
#define CN_INFO(lg, ...) cn_logf((lg), SAMSA_LOG_INFO, __VA_ARGS__)
#define CN_WARN(lg, ...) cn_logf((lg), SAMSA_LOG_WARN, __VA_ARGS__)
#define CN_ERROR(lg, ...) cn_logf((lg), SAMSA_LOG_ERROR, __VA_ARGS__)

/* ------------------------------------------------------------ properties (props.c) */

/* Parse Java .properties text into a new JSON object of strings (comments, '=' ':' or
 * whitespace separators, backslash continuations and escapes). Never fails on
 * content; NULL only when out of memory. */
json_t *cn_props_parse(const char *text, size_t len);
/* Read a whole file (at most 16 MiB) into a NUL-terminated malloc'ed buffer. NULL and
 * err filled on failure. */
char *cn_read_file(const char *path, size_t *len_out, char *err, size_t err_len);
/* A connector file from the command line: .json ({"name","config"} like POST
 * /connectors, or a bare config object) or .properties. New config object with
 * "name" set, or NULL with err. */
json_t *cn_connector_file_load(const char *path, char *err, size_t err_len);
/* Convert a JSON object whose values are strings, numbers, booleans or null (dropped)
 * into a config object of strings (new ref); NULL when a value is an array/object. */
json_t *cn_config_normalize(json_t *obj, char *err, size_t err_len);

/* ----------------------------------------------------------- worker config (config.c) */

typedef struct cn_worker_config {
    json_t *props;           /* every key the file set (strings) */
    const char *bootstrap;   /* bootstrap.servers */
    const char *offset_file; /* offset.storage.file.filename */
    int64_t offset_flush_interval_ms;
    int64_t offset_flush_timeout_ms;
    int64_t task_shutdown_timeout_ms; /* task.shutdown.graceful.timeout.ms */
    const char *plugin_path;
    char listen_host[256]; /* "" = any address */
    int listen_port;
    char worker_id[300];   /* host:port shown in status */
    bool distributed;      /* group.id is set: distributed mode */
} cn_worker_config_t;

/* Load and check a worker properties file. false with err on a missing required key
 * or a bad value (the message names the key). */
bool cn_worker_config_load(cn_worker_config_t *c, const char *path, char *err, size_t err_len);
void cn_worker_config_free(cn_worker_config_t *c);
/* Keys with prefix (e.g. "producer.") with the prefix removed, from obj (new ref). */
json_t *cn_config_with_prefix(json_t *obj, const char *prefix);
/* A string config value or NULL. */
const char *cn_cfg_str(json_t *obj, const char *key);
/* Integer/boolean config values with a default; false when present but malformed. */
bool cn_cfg_i64(json_t *obj, const char *key, int64_t dflt, int64_t *out);
bool cn_cfg_bool(json_t *obj, const char *key, bool dflt, bool *out);

/* ------------------------------------------------------ converters (convert.c) */

typedef enum cn_conv_kind {
    CN_CONV_STRING = 1, /* org.apache.kafka.connect.storage.StringConverter */
    CN_CONV_BYTES,      /* org.apache.kafka.connect.converters.ByteArrayConverter */
    CN_CONV_JSON,       /* org.apache.kafka.connect.json.JsonConverter */
} cn_conv_kind_t;

typedef struct cn_converter {
    cn_conv_kind_t kind;
    bool schemas_enable;
    bool is_key;
} cn_converter_t;

/* A converted value that owns its memory. */
typedef struct cn_value {
    samsa_connect_value_t v;
    char *buf;    /* owns v.data when not NULL */
    char *schema; /* owns v.schema when not NULL */
} cn_value_t;

/* Names of the converter classes (NULL-terminated), for GET /connector-plugins. */
extern const char *const cn_converter_classes[];
/* Configure a converter from its class name and its own keys (e.g. "schemas.enable",
 * already stripped of "value.converter."). false with err for an unknown class. */
bool cn_converter_init(cn_converter_t *cv, const char *class_name, json_t *props, bool is_key,
                       char *err, size_t err_len);
/* Connect data -> record bytes. *out is malloc'ed (NULL for a null record key/value).
 * 0 or -1 with err (Kafka's DataException). Any thread. */
int cn_convert_from_connect(const cn_converter_t *cv, const samsa_connect_value_t *v,
                            char **out, size_t *out_len, char *err, size_t err_len);
/* Record bytes (data NULL: a null key/value) -> Connect data in *out. 0 or -1 with err. */
int cn_convert_to_connect(const cn_converter_t *cv, const void *data, size_t len, cn_value_t *out,
                          char *err, size_t err_len);
void cn_value_free(cn_value_t *v);

/* ----------------------------------------------------------- plugins (plugins.c) */

typedef struct cn_plugins cn_plugins_t;

/* Register the built-in connectors, then every shared object found in plugin_path
 * (comma-separated directories or .so files; directories are searched one level
 * deep and in their subdirectories). A shared object that fails to load is logged
 * and skipped, as Kafka does. */
cn_plugins_t *cn_plugins_new(const char *plugin_path);
void cn_plugins_free(cn_plugins_t *p);
/* Look up a connector by its class name, a declared alias, its simple name (the part
 * after the last '.'), or its simple name without the "Connector" suffix. */
const samsa_connect_plugin_t *cn_plugins_find(cn_plugins_t *p, const char *name);
/* GET /connector-plugins: [{"class","type","version"}] (new ref). */
json_t *cn_plugins_list(cn_plugins_t *p, bool connectors_only);
/* All connector class names joined by ", " (for error messages; malloc'ed). */
char *cn_plugins_names(cn_plugins_t *p);
/* The built-in FileStream connectors (file_connectors.c). */
extern const samsa_connect_plugin_t cn_file_source_plugin;
extern const samsa_connect_plugin_t cn_file_sink_plugin;
/* The built-in JDBC connectors for SQLite and PostgreSQL (jdbc_source.c, jdbc_sink.c). */
extern const samsa_connect_plugin_t cn_jdbc_source_plugin;
extern const samsa_connect_plugin_t cn_jdbc_sink_plugin;

/* --------------------------------------------------------- offset store (offsets.c) */

typedef struct cn_offsets cn_offsets_t;
typedef struct cn_worker cn_worker_t;
typedef struct cn_dist cn_dist_t;

/* Open the standalone offset file (created on first flush). NULL with err when it
 * exists but cannot be read or parsed. */
cn_offsets_t *cn_offsets_open(const char *path, char *err, size_t err_len);
/* Distributed mode: the same interface over the offsets topic (offset.storage.topic),
 * records keyed ["<connector>",{partition}] with the offset object as JSON value
 * (Kafka's JsonConverter form without schemas); get() reads the topic to its end
 * first, so a task moved from another worker resumes at that worker's last flush;
 * flush() writes what changed and waits for the broker's acknowledgement. */
typedef struct cn_kblog cn_kblog_t;
cn_offsets_t *cn_offsets_open_topic(cn_worker_t *w, const char *topic, int partitions, int rf, char *err,
                                    size_t err_len);
void cn_offsets_close(cn_offsets_t *o);
/* The offset of a source partition (JSON object) of connector conn (new ref or NULL). */
json_t *cn_offsets_get(cn_offsets_t *o, const char *conn, json_t *partition);
/* Set (offset an object) or remove (offset NULL) one partition's offset in memory. */
void cn_offsets_put(cn_offsets_t *o, const char *conn, json_t *partition, json_t *offset);
/* Remove every offset of conn in memory. */
void cn_offsets_reset(cn_offsets_t *o, const char *conn);
/* [{"partition":{...},"offset":{...}}, ...] of conn (new ref). */
json_t *cn_offsets_list(cn_offsets_t *o, const char *conn);
/* Write the file durably (temp file, fsync, rename, fsync of the directory) if it
 * changed since the last flush. 0 or -1 with err. */
int cn_offsets_flush(cn_offsets_t *o, char *err, size_t err_len);

/* ------------------------------------------------------------ herder (herder.c) */

typedef enum cn_state {
    CN_UNASSIGNED = 0,
    CN_RUNNING,
    CN_PAUSED,
    CN_STOPPED,
    CN_FAILED,
    CN_RESTARTING,
} cn_state_t;
const char *cn_state_name(cn_state_t s);

typedef enum cn_target {
    CN_TARGET_STARTED = 0,
    CN_TARGET_PAUSED,
    CN_TARGET_STOPPED,
} cn_target_t;

typedef struct cn_connector cn_connector_t;

/* One task: created and joined by the herder, run by its own thread. */
typedef struct cn_task {
    cn_worker_t *w;
    cn_connector_t *conn; /* outlives the task: the herder joins tasks before freeing it */
    const samsa_connect_plugin_t *plugin;
    int id;
    char name[300];       /* "<connector>-<id>", as Kafka's ConnectorTaskId */
    json_t *config;       /* task config (strings); immutable while the thread runs */
    json_t *conn_config;  /* the connector's config at start (new ref, immutable) */
    pthread_t thread;
    bool thread_started;
    pthread_mutex_t mu; /* guards everything below */
    pthread_cond_t cv;
    bool want_pause;
    bool want_stop;
    cn_state_t state;
    char *trace; /* why FAILED (malloc'ed) */
} cn_task_t;

/* Task threads (task_source.c, task_sink.c). */
void *cn_source_task_main(void *task);
void *cn_sink_task_main(void *task);
/* Called by a task thread: set its state (and trace for FAILED). */
void cn_task_set_state(cn_task_t *t, cn_state_t s, const char *trace);
/* Called by a task thread: record a topic as active for its connector. */
void cn_task_topic_active(cn_task_t *t, const char *topic);
/* Wait on the task's condition variable at most ms (returns early on a change). */
void cn_task_wait(cn_task_t *t, int64_t ms);
/* Snapshot of the wanted state: 's'top, 'p'ause or 'r'un. */
char cn_task_wanted(cn_task_t *t);

typedef struct cn_herder cn_herder_t;

cn_herder_t *cn_herder_new(cn_worker_t *w);
/* Stop every task (flushing sources and sinks) and free everything. Main thread. */
void cn_herder_free(cn_herder_t *h);

/* REST operations: each returns an HTTP status and sets *out to the body (a new ref,
 * or NULL for no body). Errors are Connect's {"error_code","message"}. */
int cn_h_list(cn_herder_t *h, bool expand_status, bool expand_info, json_t **out);
int cn_h_put_config(cn_herder_t *h, const char *name, json_t *config, const char *initial_state,
                    bool allow_replace, json_t **out);
int cn_h_patch_config(cn_herder_t *h, const char *name, json_t *patch, json_t **out);
int cn_h_info(cn_herder_t *h, const char *name, json_t **out);
int cn_h_config(cn_herder_t *h, const char *name, json_t **out);
int cn_h_status(cn_herder_t *h, const char *name, json_t **out);
int cn_h_restart(cn_herder_t *h, const char *name, bool include_tasks, bool only_failed,
                 json_t **out);
int cn_h_pause(cn_herder_t *h, const char *name, json_t **out);
int cn_h_resume(cn_herder_t *h, const char *name, json_t **out);
int cn_h_stop(cn_herder_t *h, const char *name, json_t **out);
int cn_h_tasks(cn_herder_t *h, const char *name, bool legacy_map, json_t **out);
/* One entry of GET /connectors/{c}/tasks: {"id":{"connector","task"},"config"} appended to
 * the array out, or (legacy_map) "<c>-<i>": config set in the object out. */
void cn_tasks_json_add(json_t *out, bool legacy_map, const char *name, size_t i, json_t *tc);
/* PATCH /connectors/{c}/config: a copy of config with patch's keys set, null ones removed
 * (new ref). */
json_t *cn_config_patched(json_t *config, json_t *patch);
/* POST /connectors' initial_state (RUNNING, PAUSED, STOPPED, any case; NULL: RUNNING). */
bool cn_parse_initial_state(const char *s, cn_target_t *target);
/* A task id from a REST path ("0".."1000000"), or -1. */
int cn_parse_task_id(const char *s);
int cn_h_task_status(cn_herder_t *h, const char *name, const char *task, json_t **out);
int cn_h_task_restart(cn_herder_t *h, const char *name, const char *task, json_t **out);
int cn_h_topics(cn_herder_t *h, const char *name, bool reset, json_t **out);
int cn_h_offsets(cn_herder_t *h, const char *name, json_t **out);
int cn_h_offsets_alter(cn_herder_t *h, const char *name, json_t *body, json_t **out);
int cn_h_offsets_reset(cn_herder_t *h, const char *name, json_t **out);
int cn_h_delete(cn_herder_t *h, const char *name, json_t **out);
int cn_h_validate(cn_herder_t *h, const char *plugin, json_t *config, json_t **out);
int cn_h_plugin_config(cn_herder_t *h, const char *plugin, json_t **out);

/* {"error_code": status, "message": ...} (new ref). */
json_t *cn_error(int status, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* ------------------------------------------------------- validation (validate.c) */

/* Validate a connector config as PUT /connector-plugins/{p}/config/validate does:
 * Connect's ConfigInfos ({"name","error_count","groups","configs"}) as a new ref.
 * plugin may be NULL (unknown class: reported on connector.class). */
json_t *cn_validate(cn_worker_t *w, const samsa_connect_plugin_t *plugin, json_t *config,
                    int *error_count);
/* The definitions part only (GET /connector-plugins/{p}/config). */
json_t *cn_plugin_config_defs(const samsa_connect_plugin_t *plugin);
/* "Connector configuration is invalid and contains the following N error(s):..." for
 * a ConfigInfos with errors (malloc'ed). */
char *cn_validate_message(json_t *infos, int error_count);

/* ------------------------------------------------------------ plugin contexts (ctx.c) */

typedef enum cn_ctx_kind {
    CN_CTX_CONFIG = 1, /* validate and task_configs */
    CN_CTX_SOURCE,
    CN_CTX_SINK,
} cn_ctx_kind_t;

struct cn_source;

/* The context a plugin sees; base must stay first. */
typedef struct cn_ctx {
    samsa_connect_context_t base;
    cn_ctx_kind_t kind;
    cn_logger_t *log;
    cn_worker_t *w;
    const char *conn_name;
    cn_task_t *task;          /* source and sink */
    struct cn_source *src;    /* source */
    json_t *errors;           /* config: {"key":["message",...]} */
    json_t *task_configs;     /* config: [ {...}, ... ] */
    char *offset_text;        /* source: the last string rt->offset returned */
} cn_ctx_t;

extern const samsa_connect_runtime_t cn_runtime;
void cn_ctx_init(cn_ctx_t *c, cn_ctx_kind_t kind, cn_worker_t *w, const char *conn_name,
                 const samsa_connect_plugin_t *plugin);
void cn_ctx_done(cn_ctx_t *c);
/* The source side of emit (task_source.c). */
int cn_source_emit(struct cn_source *s, const samsa_connect_source_record_t *rec);

/* A config object as a plugin config: entries borrow obj's strings (valid while obj is
 * unchanged); free with cn_plugin_config_free. */
samsa_connect_config_t cn_plugin_config(json_t *obj);
void cn_plugin_config_free(samsa_connect_config_t *c);

/* ------------------------------------------------------------- worker (worker.c) */

struct cn_worker {
    cn_worker_config_t cfg;
    cn_plugins_t *plugins;
    cn_offsets_t *offsets;
    cn_herder_t *herder;
    cn_dist_t *dist; /* distributed mode (group.id set), else NULL */
    cn_logger_t *log;
    rd_kafka_t *admin; /* a producer handle used for admin requests and the cluster id */
    pthread_mutex_t admin_mu;
    char cluster_id[128];
    volatile int started; /* set once start-up finished (GET /health) */
};

/* Apply a prefix-stripped client config object ("producer.", "consumer.", overrides)
 * onto conf. false with err naming the key. */
bool cn_rk_conf_apply(rd_kafka_conf_t *conf, json_t *props, char *err, size_t err_len);
/* A task's client configuration, layered as Kafka Connect does: bootstrap.servers and
 * client.id, then defaults (key, value, ..., NULL), then the worker's "<role>." keys,
 * then the connector's "<role>.override." keys (role "producer" or "consumer").
 * NULL with err naming the key. Task threads. */
rd_kafka_conf_t *cn_task_client_conf(cn_task_t *t, const char *role, const char *client_id,
                                     const char *const *defaults, char *err, size_t err_len);
/* Kafka cluster id (cached), or NULL when no broker answered yet. Any thread. */
const char *cn_worker_cluster_id(cn_worker_t *w);
/* Admin operations for sink connectors' consumer groups (worker.c): offsets as
 * Connect's [{"partition":{"kafka_topic","kafka_partition"},"offset":{"kafka_offset"}}]. */
int cn_group_offsets_list(cn_worker_t *w, const char *group, json_t **out, char *err,
                          size_t err_len);
int cn_group_offsets_alter(cn_worker_t *w, const char *group, json_t *offsets, char *err,
                           size_t err_len);
int cn_group_delete(cn_worker_t *w, const char *group, char *err, size_t err_len);

/* ----------------------------------------------- compacted topic logs (kblog.c) */

/* A record read from the topic (val NULL: a tombstone), on the reader thread. */
typedef void (*cn_kblog_apply_fn)(void *arg, const void *key, size_t klen, const void *val, size_t vlen,
                                  int32_t partition, int64_t offset);
/* Create topic (compacted) if missing, start reading it from the beginning and wait
 * until everything there was applied. NULL with err. */
cn_kblog_t *cn_kblog_open(cn_worker_t *w, const char *topic, int partitions, int rf, cn_kblog_apply_fn apply,
                          void *arg, char *err, size_t err_len);
void cn_kblog_close(cn_kblog_t *kb);
int cn_kblog_partitions(cn_kblog_t *kb);
/* Wait until every record written before the call was applied. 0 or -1 (timeout). */
int cn_kblog_read_to_end(cn_kblog_t *kb, int timeout_ms);
/* Write n records (string keys; a NULL value is a tombstone); with wait, return once
 * the broker acknowledged all of them. 0 or -1 with err. Any thread. */
int cn_kblog_send(cn_kblog_t *kb, size_t n, const char *const *keys, const char *const *vals, bool wait,
                  char *err, size_t err_len);

/* --------------------------------------------- group membership (group.c) */

typedef struct cn_group cn_group_t;
typedef struct cn_group_result {
    bool leader;
    int32_t generation;
    char leader_id[512];
    char *assignment; /* this member's assignment bytes (malloc'ed, NUL-terminated) */
} cn_group_result_t;
/* Leader only: fill out[i] (malloc'ed text) for each of the n members. */
typedef void (*cn_group_assign_fn)(void *arg, int n, const char *const *member_ids, const char *const *metadata,
                                   char **out);
cn_group_t *cn_group_new(const char *bootstrap, const char *group_id, const char *client_id, int session_ms,
                         int rebalance_ms);
void cn_group_free(cn_group_t *g);
/* JoinGroup + SyncGroup (protocol type "connect"). 0, or -1 with err (join again). */
int cn_group_join(cn_group_t *g, const char *protocol, const char *metadata, cn_group_assign_fn assign, void *arg,
                  cn_group_result_t *out, char *err, size_t err_len);
/* 0 fine, 1 the group rebalances (join again), -1 connection trouble (join again). */
int cn_group_heartbeat(cn_group_t *g);
void cn_group_leave(cn_group_t *g);
const char *cn_group_member_id(cn_group_t *g);
/* A call blocked on the coordinator (a JoinGroup waits for the whole group) returns
 * -1 soon after *flag becomes non-zero: shutdown does not wait for a rebalance. */
void cn_group_set_cancel(cn_group_t *g, volatile int *flag);

/* ------------------------------------------------- distributed herder (dist.c) */

/* Create the internal topics, read them, and start the herder thread that joins the
 * group. NULL with err. Main thread. */
cn_dist_t *cn_dist_start(cn_worker_t *w, char *err, size_t err_len);
/* Leave the group, stop every task, close the topics. Main thread. */
void cn_dist_stop(cn_dist_t *d);
/* True once the first assignment was applied (GET /health). */
bool cn_dist_ready(cn_dist_t *d);
/* REST forwarding: should this request go to the leader? Sets url (the leader's REST
 * base, "http://host:port") and returns true when this worker is not the leader;
 * false and url "" when there is no leader yet. */
bool cn_dist_leader_url(cn_dist_t *d, char *url, size_t len, bool *is_leader);
/* A task's owner's REST base URL; false when unassigned or this worker. */
bool cn_dist_task_owner_url(cn_dist_t *d, const char *conn, int task, char *url, size_t len);
/* Task threads: publish a task's state to the status topic. */
void cn_dist_task_status(cn_dist_t *d, const char *conn, int task, cn_state_t s, const char *trace);
/* The REST operations in distributed mode (same contracts as cn_h_*). */
int cn_d_list(cn_dist_t *d, bool expand_status, bool expand_info, json_t **out);
int cn_d_put_config(cn_dist_t *d, const char *name, json_t *config, const char *initial_state,
                    bool allow_replace, json_t **out);
int cn_d_patch_config(cn_dist_t *d, const char *name, json_t *patch, json_t **out);
int cn_d_info(cn_dist_t *d, const char *name, json_t **out);
int cn_d_config(cn_dist_t *d, const char *name, json_t **out);
int cn_d_status(cn_dist_t *d, const char *name, json_t **out);
int cn_d_restart(cn_dist_t *d, const char *name, bool include_tasks, bool only_failed, json_t **out);
int cn_d_target(cn_dist_t *d, const char *name, cn_target_t target, json_t **out);
int cn_d_tasks(cn_dist_t *d, const char *name, bool legacy_map, json_t **out);
int cn_d_task_status(cn_dist_t *d, const char *name, const char *task, json_t **out);
int cn_d_task_restart(cn_dist_t *d, const char *name, const char *task, json_t **out);
int cn_d_offsets(cn_dist_t *d, const char *name, json_t **out);
int cn_d_offsets_alter(cn_dist_t *d, const char *name, json_t *body, json_t **out);
int cn_d_offsets_reset(cn_dist_t *d, const char *name, json_t **out);
int cn_d_delete(cn_dist_t *d, const char *name, json_t **out);

/* Herder hooks for dist.c (herder.c). Make the local connector name run exactly the
 * tasks i with mine[i] (n = size of task_configs), with these configs and target;
 * config NULL removes it. Returns nothing; task threads report their own states. */
void cn_herder_reconcile(cn_herder_t *h, const char *name, json_t *config, cn_target_t target, json_t *task_configs,
                         const bool *mine);
/* Stop every local task (eager rebalance: before joining again). */
void cn_herder_stop_all(cn_herder_t *h);
/* Restart the local task conn-id if it runs here (and, with only_failed, is FAILED).
 * true when it runs here. */
bool cn_herder_restart_local(cn_herder_t *h, const char *conn, int id, bool only_failed);
/* Shared by standalone and distributed modes (herder.c). */
int cn_h_sink_offsets(cn_herder_t *h, const char *name, json_t *config, bool alter, bool reset, json_t *body,
                      json_t **out);
bool cn_config_is_sink(cn_worker_t *w, json_t *config);

/* ---------------------------------------------------------------- REST (rest.c) */

typedef struct cn_rest cn_rest_t;
/* Forward a request to another worker's REST API (base "http://host:port"): the
 * status and body (malloc'ed text, may be NULL). -1 with err when unreachable. */
/* A TCP connection to host:port (each address in turn), close-on-exec, with a send
 * timeout and, if recv_timeout, the same receive timeout. -1 with err. */
int cn_dial(const char *host, const char *port, int timeout_ms, bool recv_timeout, char *err,
            size_t len);
int cn_http_forward(const char *base, const char *method, const char *path_and_query, const char *body,
                    size_t body_len, char **resp_body, char *err, size_t err_len);
cn_rest_t *cn_rest_start(cn_worker_t *w, char *err, size_t err_len);
void cn_rest_stop(cn_rest_t *r);

/* Monotonic milliseconds. */
int64_t cn_now_ms(void);
/* ms from now on CLOCK_MONOTONIC, for pthread_cond_timedwait on the condition variables
 * of this program (all set to CLOCK_MONOTONIC). */
void cn_deadline_ts(struct timespec *ts, int64_t ms);
/* Wall-clock milliseconds. */
int64_t cn_wall_ms(void);

#endif
