/*
 * config.h - broker configuration (Kafka's server.properties keys) and topic
 * configuration (Kafka's per-topic keys with their broker-level synonyms).
 *
 * Role: sm_config_load() reads a Java-properties file, applies command-line
 * overrides ("key=value", like Kafka's --override), checks every known key
 * against its definition (type, range, allowed values) and fills sm_config_t
 * with typed values. Every key a user set is also kept verbatim in
 * sm_config_t.set so DescribeConfigs can report each broker config with its
 * value and source (STATIC_BROKER_CONFIG when set, DEFAULT_CONFIG otherwise).
 *
 * Invariants of a loaded sm_config_t (sm_config_load returned SM_OK):
 *  - node_id >= 0, at least one role, at least one log dir;
 *  - listeners have unique upper-case names and a security protocol each;
 *  - a controller has its controller listener(s) among listeners and is one
 *    of the voters (Samsa derives "node.id@controller-listener" when
 *    controller.quorum.voters is empty);
 *  - advertised listeners never include controller listeners;
 *  - the log retention / roll / flush durations are already resolved with
 *    Kafka's precedence (ms over minutes over hours; -1 = unlimited).
 * The struct is immutable after loading and may be read from any thread.
 *
 * Topic configs: sm_topic_config_defs[] lists every Kafka topic config key
 * with its type, validator, default and broker synonyms (the broker keys whose
 * value is the topic default, in precedence order). The resolver gives the
 * effective value of a topic config and where it came from.
 * Implemented in src/conf/config.c (broker keys) and src/meta/topic_config.c.
 */
#ifndef SM_CONFIG_H
#define SM_CONFIG_H

#include "sm_common.h"

#include <stddef.h>
#include <stdint.h>

/* Value types, as Kafka's ConfigDef names them (DescribeConfigs reports them). */
typedef enum sm_config_type {
    SM_CONFIG_BOOLEAN = 1,
    SM_CONFIG_STRING = 2,
    SM_CONFIG_INT = 3,
    SM_CONFIG_SHORT = 4,
    SM_CONFIG_LONG = 5,
    SM_CONFIG_DOUBLE = 6,
    SM_CONFIG_LIST = 7,
    SM_CONFIG_CLASS = 8,
    SM_CONFIG_PASSWORD = 9,
} sm_config_type_t;

/* Where a value came from; numbered like DescribeConfigs' ConfigSource. */
typedef enum sm_config_source {
    SM_CONFIG_SOURCE_UNKNOWN = 0,
    SM_CONFIG_SOURCE_TOPIC = 1,         /* DYNAMIC_TOPIC_CONFIG */
    SM_CONFIG_SOURCE_DYNAMIC_BROKER = 2, /* DYNAMIC_BROKER_CONFIG (this node) */
    SM_CONFIG_SOURCE_DYNAMIC_DEFAULT = 3, /* DYNAMIC_DEFAULT_BROKER_CONFIG (cluster) */
    SM_CONFIG_SOURCE_STATIC_BROKER = 4, /* STATIC_BROKER_CONFIG */
    SM_CONFIG_SOURCE_DEFAULT = 5,       /* DEFAULT_CONFIG */
} sm_config_source_t;

/* One config key's definition. Range checks apply to INT/SHORT/LONG/DOUBLE;
 * choices (NULL-terminated) to STRING, and to each element of a LIST. */
typedef struct sm_config_def {
    const char *key;
    sm_config_type_t type;
    const char *dflt;             /* default as text; NULL = null (unset) */
    double min, max;              /* inclusive; only when has_range */
    bool has_range;
    bool nullable_empty;          /* "" is accepted as null for numbers */
    const char *const *choices;   /* allowed values, or NULL */
    bool choices_nocase;          /* compare choices case-insensitively */
    const char *doc;              /* one line, for DescribeConfigs / docs */
} sm_config_def_t;

/* Check a textual value against a definition. On failure returns
 * SM_ERR_INVALID with a message naming the key and the value. Any thread. */
SM_MUST_CHECK sm_err_t sm_config_def_check(const sm_config_def_t *d, const char *value, char *err,
                                           size_t errlen);

/* ------------------------------------------------------------ broker config */

typedef enum sm_security_protocol {
    SM_SECPROTO_PLAINTEXT = 0,
    SM_SECPROTO_SSL = 1,
    SM_SECPROTO_SASL_PLAINTEXT = 2,
    SM_SECPROTO_SASL_SSL = 3,
} sm_security_protocol_t;

typedef struct sm_listener {
    char *name;             /* upper case, e.g. "PLAINTEXT", "CONTROLLER" */
    char *host;             /* "" = all interfaces (bind) */
    int32_t port;           /* 0 = ephemeral (bind only) */
    sm_security_protocol_t protocol;
    bool controller;        /* named in controller.listener.names */
} sm_listener_t;

typedef struct sm_voter {
    int32_t id;
    char *host;
    int32_t port;
} sm_voter_t;

typedef struct sm_config_kv {
    char *key;
    char *value;
} sm_config_kv_t;

typedef struct sm_config {
    /* identity and roles */
    int32_t node_id;
    bool role_broker, role_controller;
    char *rack;                          /* broker.rack, NULL if unset */

    /* networking */
    sm_listener_t *listeners;            /* what to bind */
    int nlisteners;
    sm_listener_t *advertised;           /* what brokers register (no controller listeners) */
    int nadvertised;
    char **controller_listener_names;
    int ncontroller_listener_names;
    char *inter_broker_listener_name;
    sm_voter_t *voters;
    int nvoters;
    int32_t num_network_threads;         /* event-loop threads; 0 = one per core */
    int32_t num_io_threads;              /* background workers (fsync, unlink) */
    int32_t fetch_session_cache_slots;   /* max.incremental.fetch.session.cache.slots */
    int32_t broker_session_timeout_ms;   /* broker.session.timeout.ms (controller) */
    int32_t broker_heartbeat_interval_ms; /* broker.heartbeat.interval.ms */
    /* controller.quorum.*.ms: the metadata quorum's timers (docs/RAFT.md) */
    int32_t quorum_election_timeout_ms, quorum_fetch_timeout_ms, quorum_election_backoff_max_ms,
        quorum_request_timeout_ms, quorum_append_linger_ms, quorum_retry_backoff_ms;
    int32_t queued_max_requests;
    int32_t socket_request_max_bytes;
    int32_t socket_send_buffer_bytes;
    int32_t socket_receive_buffer_bytes;
    int32_t socket_listen_backlog_size;
    int64_t connections_max_idle_ms;
    int32_t max_connections;
    int32_t max_connections_per_ip;
    char *metrics_host;                  /* metrics.listener host ("" = any); NULL if off */
    int32_t metrics_port;                /* metrics.listener port (0 = ephemeral); -1 = off */

    /* logs */
    char **log_dirs;
    int nlog_dirs;
    char *metadata_log_dir;              /* NULL = first log dir */
    int32_t num_partitions;
    int16_t default_replication_factor;
    bool auto_create_topics_enable;
    bool delete_topic_enable;
    int32_t message_max_bytes;
    int32_t log_segment_bytes;
    int64_t log_roll_ms;                 /* resolved: log.roll.ms or hours */
    int64_t log_roll_jitter_ms;          /* resolved */
    int64_t log_retention_ms;            /* resolved; -1 = unlimited */
    int64_t log_retention_bytes;
    int64_t log_retention_check_interval_ms;
    int64_t log_flush_interval_messages;
    int64_t log_flush_interval_ms;       /* resolved; INT64_MAX = never */
    int32_t log_index_interval_bytes;
    int32_t log_index_size_max_bytes;
    int64_t log_segment_delete_delay_ms;
    bool log_message_timestamp_create_time; /* log.message.timestamp.type */
    char *log_cleanup_policy;            /* "delete", "compact" or "compact,delete" */
    bool log_preallocate;
    char *compression_type;
    int32_t min_insync_replicas;
    int32_t num_recovery_threads_per_data_dir;
    int32_t replica_fetch_max_bytes;
    int64_t replica_lag_time_max_ms;     /* replica.lag.time.max.ms */
    int32_t replica_fetch_wait_max_ms;
    int32_t replica_fetch_min_bytes;
    int32_t replica_fetch_response_max_bytes;
    int32_t replica_fetch_backoff_ms;
    int32_t replica_socket_timeout_ms;
    bool unclean_leader_election_enable;
    bool auto_leader_rebalance_enable;
    int64_t leader_imbalance_check_interval_ms; /* leader.imbalance.check.interval.seconds */
    int32_t fetch_max_bytes;

    /* group coordinator and internal topics */
    int32_t offsets_topic_num_partitions;
    int16_t offsets_topic_replication_factor;
    int32_t offsets_topic_segment_bytes;
    int32_t offsets_retention_minutes;
    int64_t offsets_retention_check_interval_ms;
    int32_t offsets_commit_timeout_ms;
    int32_t offset_metadata_max_bytes;
    int32_t group_initial_rebalance_delay_ms;
    int32_t group_min_session_timeout_ms;
    int32_t group_max_session_timeout_ms;
    int32_t group_max_size;
    int32_t transaction_state_log_num_partitions;
    int16_t transaction_state_log_replication_factor;
    int32_t transaction_max_timeout_ms;
    int32_t transactional_id_expiration_ms;
    int32_t producer_id_expiration_ms;
    bool transaction_partition_verification_enable;

    /* metadata log */
    int32_t metadata_log_segment_bytes;
    int64_t metadata_snapshot_bytes;
    int64_t metadata_max_retention_bytes; /* metadata.max.retention.bytes */     /* metadata.log.max.record.bytes.between.snapshots */
    int64_t metadata_log_segment_ms;

    /* every key the user set (file, then overrides; last one wins), in the
     * order first seen; includes unknown keys */
    sm_config_kv_t *set;
    int nset;
} sm_config_t;

/* Broker config definitions, sorted by key; used by sm_config_load and by
 * DescribeConfigs to list every broker config. */
extern const sm_config_def_t sm_broker_config_defs[];
extern const size_t sm_broker_config_ndefs;
const sm_config_def_t *sm_broker_config_def(const char *key);
/* The known key closest to an unknown one (a likely typo), or NULL. */
const char *sm_broker_config_suggest(const char *key);

/*
 * Load configuration. path may be NULL (defaults only). overrides are
 * "key=value" strings applied after the file. On error returns SM_ERR_IO
 * (file unreadable), SM_ERR_PARSE (syntax, with file:line) or SM_ERR_INVALID
 * (bad value, naming the key and value, or an inconsistent combination), with
 * the message in err, and *out is left empty (safe to sm_config_free).
 * Unknown keys are logged at WARN and kept in out->set. Any thread.
 */
SM_MUST_CHECK sm_err_t sm_config_load(const char *path, char **overrides, int noverrides,
                                      sm_config_t *out, char *err, size_t errlen);
void sm_config_free(sm_config_t *c);

/* The textual value of a broker config key as in effect: the set value, or
 * the definition's default (NULL when null). *source (if not NULL) is
 * STATIC_BROKER when set, DEFAULT otherwise, UNKNOWN for an unknown key that
 * was not set. Borrowed from c / the static table. Any thread. */
const char *sm_config_get(const sm_config_t *c, const char *key, sm_config_source_t *source);
/* True if the user set this key (file or override). */
bool sm_config_is_set(const sm_config_t *c, const char *key);

/* The listener a broker advertises for a listener name, or NULL. */
const sm_listener_t *sm_config_advertised(const sm_config_t *c, const char *name);
const char *sm_security_protocol_name(sm_security_protocol_t p);

/* ------------------------------------------------------------- topic config */

/* A broker key that supplies a topic config's default, and the factor that
 * converts the broker value to the topic's unit (e.g. hours -> ms). */
typedef struct sm_config_synonym {
    const char *key;
    int64_t factor;    /* 1, 60000 (minutes->ms) or 3600000 (hours->ms) */
} sm_config_synonym_t;

typedef struct sm_topic_config_def {
    sm_config_def_t def;                 /* key, type, Kafka default, validator */
    sm_config_synonym_t synonyms[3];     /* precedence order; key NULL ends */
} sm_topic_config_def_t;

extern const sm_topic_config_def_t sm_topic_config_defs[];
extern const size_t sm_topic_config_ndefs;
const sm_topic_config_def_t *sm_topic_config_def(const char *key);

/* SM_ERR_NOT_FOUND for an unknown key ("Unknown topic config name: x"),
 * SM_ERR_INVALID for a bad value (naming key and value). Any thread. */
SM_MUST_CHECK sm_err_t sm_topic_config_validate(const char *key, const char *value, char *err,
                                                size_t errlen);

/* The effective value of a topic config: the topic's override if present
 * (source TOPIC), else the first synonym the broker config sets (source
 * STATIC_BROKER, value converted to the topic's unit), else the broker's
 * default for the synonym converted / the topic default (source DEFAULT).
 * The value is written to buf (NUL-terminated; "" for null). *synonym_key, if
 * not NULL, gets the broker key that supplied it (or NULL). Unknown key ->
 * SM_ERR_NOT_FOUND. overrides are (key,value) pairs (sm_topic_kv_t-shaped). */
SM_MUST_CHECK sm_err_t sm_topic_config_resolve(const sm_config_t *broker, const char *key,
                                               const sm_config_kv_t *overrides, int noverrides,
                                               char *buf, size_t buflen,
                                               sm_config_source_t *source,
                                               const char **synonym_key);

/* ------------------------------------------------- dynamic broker configs */

/* The dynamic broker config layers (set at run time with AlterConfigs on a
 * BROKER resource and kept in the metadata log; see meta.h): this node's
 * overrides and the cluster-wide defaults, each sorted by key. Borrowed
 * from a metadata image. Either list may be empty; a NULL layers pointer
 * means "no dynamic configs". */
typedef struct sm_config_dynamic {
    const sm_config_kv_t *node; /* DYNAMIC_BROKER_CONFIG */
    int nnode;
    const sm_config_kv_t *cluster; /* DYNAMIC_DEFAULT_BROKER_CONFIG */
    int ncluster;
} sm_config_dynamic_t;

/* True for the broker keys Samsa lets operators change at run time: the
 * broker defaults of topic configs (log.retention.ms, log.segment.bytes,
 * message.max.bytes, ...), which Kafka's DynamicLogConfig makes dynamic and
 * which Samsa applies to open partition logs. Any thread. */
bool sm_config_is_dynamic(const char *key);

/* A broker key's value in effect: this node's dynamic value, else the
 * cluster's dynamic default, else the static value (server.properties),
 * else the definition's default, with the matching source (UNKNOWN for an
 * unknown key nobody set). Borrowed from dyn / c. Any thread. */
const char *sm_config_get_dynamic(const sm_config_t *c, const sm_config_dynamic_t *dyn,
                                  const char *key, sm_config_source_t *source);

/* sm_topic_config_resolve with the dynamic layers: topic override, then for
 * each synonym in precedence order its dynamic per-broker, dynamic default
 * and static value (Kafka's merged broker config), then the default. dyn
 * may be NULL. */
SM_MUST_CHECK sm_err_t sm_topic_config_resolve_dynamic(
    const sm_config_t *broker, const sm_config_dynamic_t *dyn, const char *key,
    const sm_config_kv_t *overrides, int noverrides, char *buf, size_t buflen,
    sm_config_source_t *source, const char **synonym_key);

/* The distinct directories the node writes: every log.dirs entry, then
 * metadata.log.dir when it is another one. Up to max go to dirs (borrowed
 * from cfg); returns how many. */
int sm_config_dirs(const sm_config_t *cfg, const char **dirs, int max);

#endif
