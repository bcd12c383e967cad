/*
 * meta.h - cluster metadata: the immutable metadata image that readers hold,
 * and the controller that changes metadata by appending records to the
 * metadata log (__cluster_metadata-0) and publishing a new image.
 *
 * Principle: readers never lock the metadata. They take a reference to the
 * current image (sm_meta_image_get), read it as long as they like, and drop
 * it (sm_meta_image_put). The controller builds each new image from the old
 * one plus the records it has just made durable, then swaps the pointer.
 * Topics are shared between images (refcounted), so a change copies only the
 * topics it touches.
 *
 * The metadata log is Kafka's KRaft log format: ordinary segment files of
 * magic-2 record batches; each record has a null key and a value of
 *   uvarint frame version (1) | uvarint record type | uvarint record version
 *   | the record's flexible encoding
 * (the records of /work/shared/kafka-protocol/metadata, generated codecs in
 * sm_proto_gen.h). Replaying the log from the start rebuilds the image, so
 * topic ids and every setting survive restarts. The live path applies the
 * very bytes it wrote, through the same function replay uses.
 *
 * Dynamic broker configs (BROKER ConfigRecords, resource name "" for the
 * cluster default or a node id) are kept in the image as sorted key/value
 * lists per resource (sm_meta_image_dynamic gives the layers for a node);
 * they sit between topic overrides and the static broker config.
 *
 * Quorum: this is a single-voter controller: "commit" = append locally and
 * fsync (meta_log.h). A Raft quorum replaces only that step later.
 *
 * Threads: sm_meta_image_get/put and the image accessors run on any thread.
 * The sm_meta_* operations may run on any thread; they serialise on the
 * controller lock and block on fsync, so the broker calls them from a
 * background worker or accepts that latency on its loop thread.
 */
#ifndef SM_META_H
#define SM_META_H

#include "config.h"
#include "hmap.h"
#include "proto.h"
#include "ref.h"
#include "sm_common.h"
#include "storage/log.h" /* sm_log_config_t */
#include "uuid.h"

typedef sm_config_kv_t sm_topic_kv_t; /* { char *key, *value; } */

typedef struct sm_partition_meta {
    int32_t partition, leader, leader_epoch, partition_epoch;
    int32_t *replicas;
    int nreplicas;
    int32_t *isr;
    int nisr;
    /* a reassignment in progress (replicas holds old and new): the
     * replicas being added and those to be removed when they are in sync */
    int32_t *adding, *removing;
    int nadding, nremoving;
} sm_partition_meta_t;

typedef struct sm_topic_meta {
    sm_ref_t ref; /* shared by the images that contain it */
    char *name;
    sm_uuid_t id;
    bool internal; /* __consumer_offsets, __transaction_state (by name, as Kafka) */
    int32_t npartitions;
    sm_partition_meta_t *partitions; /* index == partition id */
    sm_topic_kv_t *configs;          /* overrides set on the topic, sorted by key */
    int nconfigs;
} sm_topic_meta_t;

typedef struct sm_endpoint {
    char *name; /* listener name */
    char *host;
    int32_t port;
    int16_t security_protocol;
} sm_endpoint_t;

typedef struct sm_broker_meta {
    int32_t id;
    char *host; /* of the first endpoint (the broker's client listener) */
    int32_t port;
    char *rack; /* NULL if none */
    sm_endpoint_t *endpoints;
    int nendpoints;
    int64_t epoch; /* offset of its registration record */
    bool fenced;
    bool in_controlled_shutdown;
} sm_broker_meta_t;

/* Dynamic broker configs of one BROKER config resource: node -1 is the
 * cluster-wide default (resource name ""), else a node id. */
typedef struct sm_meta_broker_configs {
    int32_t node;
    sm_config_kv_t *kv; /* sorted by key; values never NULL */
    int n;
} sm_meta_broker_configs_t;

typedef struct sm_meta_image {
    sm_ref_t ref;
    int64_t offset;         /* offset of the last record applied; -1 = empty */
    int32_t epoch;          /* controller (leader) epoch */
    const char *cluster_id;
    int32_t controller_id;
    int16_t metadata_version; /* FeatureLevelRecord metadata.version, 0 if none */
    int64_t next_producer_id; /* from ProducerIdsRecord; 0 if none */
    sm_broker_meta_t *brokers; /* sorted by id */
    int nbrokers;
    sm_topic_meta_t **topics; /* sorted by name */
    int ntopics;
    sm_hmap_t by_name; /* name -> sm_topic_meta_t* */
    sm_hmap_t by_id;   /* 16-byte id -> sm_topic_meta_t* */
    sm_meta_broker_configs_t *broker_configs; /* sorted by node (-1 first); none empty */
    int nbroker_configs;
    /* controllers that registered (ControllerRegistration): id and their
     * CONTROLLER endpoints, in a broker-shaped entry (no rack), sorted by id */
    sm_broker_meta_t *controllers;
    int ncontrollers;
} sm_meta_image_t;

/* ------------------------------------------------------------------ image */

typedef struct sm_meta sm_meta_t;

/* A new reference to the current image; never NULL after sm_meta_open. */
sm_meta_image_t *sm_meta_image_get(sm_meta_t *m);
void sm_meta_image_put(sm_meta_image_t *img);
static inline sm_meta_image_t *sm_meta_image_keep(sm_meta_image_t *img)
{
    sm_ref_keep(&img->ref);
    return img;
}

/* Lookups; results are borrowed from img (valid while the caller holds it). */
const sm_topic_meta_t *sm_meta_image_topic(const sm_meta_image_t *img, const char *name,
                                           size_t namelen);
const sm_topic_meta_t *sm_meta_image_topic_by_id(const sm_meta_image_t *img, const sm_uuid_t *id);
const sm_broker_meta_t *sm_meta_image_broker(const sm_meta_image_t *img, int32_t id);
/* The endpoint of broker b for a listener name, or NULL. */
const sm_endpoint_t *sm_meta_broker_endpoint(const sm_broker_meta_t *b, const char *listener);
/* The dynamic broker config layers that apply to node_id (its own and the
 * cluster default), borrowed from img. */
void sm_meta_image_dynamic(const sm_meta_image_t *img, int32_t node_id, sm_config_dynamic_t *out);
/* True when two layer sets hold the same keys and values. */
bool sm_meta_dynamic_equal(const sm_config_dynamic_t *a, const sm_config_dynamic_t *b);
/* A topic's override for key, or NULL. */
const char *sm_meta_topic_config(const sm_topic_meta_t *t, const char *key);

/* Kafka's rules for a topic name: 1..249 chars of [a-zA-Z0-9._-], not "."
 * or "..". SM_ERR_INVALID with Kafka's message otherwise. Any thread. */
SM_MUST_CHECK sm_err_t sm_meta_topic_name_check(const char *name, size_t len, char *err,
                                                size_t errlen);
/* True for Kafka's internal topic names. */
bool sm_meta_topic_is_internal(const char *name);

/* ------------------------------------------------------------- controller */

/*
 * Open the metadata log at <metadata.log.dir or first log dir>/__cluster_metadata-0,
 * replay it into the first image, and (first start) write FeatureLevelRecord
 * metadata.version; on every start, register this broker (RegisterBrokerRecord
 * with its advertised listeners, unfenced). cluster_id is copied. Errors:
 * SM_ERR_IO / SM_ERR_CORRUPT (with file and position logged). Call at startup.
 */
SM_MUST_CHECK sm_err_t sm_meta_open(const sm_config_t *cfg, const char *cluster_id,
                                    sm_meta_t **out);
/* Close the log and drop the controller's image reference (readers' refs stay valid). */
void sm_meta_close(sm_meta_t *m);

/* ---- the broker lifecycle on the controller (meta_brokers.c, brokers.h).
 * Each returns 0 or a Kafka error code; times are monotonic ms. */
typedef struct sm_meta_listener_reg {
    sm_str_t name, host;
    uint16_t port;
    int16_t security_protocol;
} sm_meta_listener_reg_t;
typedef struct sm_meta_broker_reg {
    int32_t id;
    const char *cluster_id; /* NUL-terminated; NULL skips the check */
    sm_uuid_t incarnation;
    const sm_meta_listener_reg_t *listeners;
    int nlisteners;
    sm_str_t rack; /* len -1: none */
} sm_meta_broker_reg_t;
typedef struct sm_broker_hb_reply sm_broker_hb_reply_t;
int16_t sm_meta_broker_register(sm_meta_t *m, const sm_meta_broker_reg_t *reg, int64_t now_ms,
                                int64_t *epoch_out);
int16_t sm_meta_broker_heartbeat(sm_meta_t *m, int32_t id, int64_t epoch, int64_t metadata_offset,
                                 bool want_fence, bool want_shutdown, int64_t now_ms,
                                 sm_broker_hb_reply_t *reply);
/* ControllerRegistration from a voter: its endpoints become part of the
 * metadata (RegisterControllerRecord) unless already there. Kafka code. */
int16_t sm_meta_controller_register(sm_meta_t *m, int32_t id, const sm_meta_listener_reg_t *ls,
                                    int n);
int16_t sm_meta_broker_unregister(sm_meta_t *m, int32_t id);
/* AlterPartition: a partition leader's ISR change (one entry per
 * partition). Each entry is checked as Kafka's controller does (the sender
 * leads it, the leader and partition epochs are current, the new ISR holds
 * the leader and only its replicas, members it adds are unfenced and not
 * shutting down); the accepted ones are committed together as
 * PartitionChangeRecords. Returns a request-level Kafka error (NOT_CONTROLLER,
 * or the commit's failure); per-entry errors and the resulting state go in
 * the entries. */
typedef struct sm_meta_isr_change {
    sm_uuid_t topic_id;
    int32_t partition, leader_epoch, partition_epoch;
    const int32_t *isr;
    const int64_t *isr_epochs;      /* each member's broker epoch (v3), -1 unknown; NULL: none */
    int nisr;
    int16_t error;                  /* out */
    int32_t out_leader, out_leader_epoch, out_partition_epoch; /* out, when error is 0 */
} sm_meta_isr_change_t;
int16_t sm_meta_alter_partition(sm_meta_t *m, int32_t broker_id, sm_meta_isr_change_t *ch, int n);
/* ElectLeaders. type 0 (PREFERRED): the first replica leads if it is in the
 * ISR and usable (ELECTION_NOT_NEEDED when it already leads,
 * PREFERRED_LEADER_NOT_AVAILABLE when it cannot). Type 1 (UNCLEAN): a
 * partition without a leader gets an ISR member, else any usable replica
 * (ELECTION_NOT_NEEDED when it has a leader, ELIGIBLE_LEADERS_NOT_AVAILABLE
 * when none is usable). e[i].topic NULL: every partition is considered and
 * only the elections made are reported (through *done / *ndone; free with
 * sm_meta_elections_free).
 * Committed together. Returns a request-level Kafka error. */
typedef struct sm_meta_election {
    const char *topic;   /* NUL-terminated */
    int32_t partition;
    int16_t error;       /* out */
} sm_meta_election_t;
int16_t sm_meta_elect_leaders(sm_meta_t *m, int8_t type, sm_meta_election_t *e, int n,
                              sm_meta_election_t **done, int *ndone);
/* auto.leader.rebalance.enable: preferred-leader elections for every
 * partition whose first replica is in sync and usable but does not lead.
 * Returns how many were moved. Active controller only; call periodically. */
int sm_meta_rebalance_leaders(sm_meta_t *m);
/* AlterPartitionReassignments (meta_reassign.c): move each partition's
 * replicas to `replicas` (NULL: cancel the move in progress). Per-entry
 * errors: UNKNOWN_TOPIC_OR_PARTITION, INVALID_REPLICA_ASSIGNMENT (with a
 * message), NO_REASSIGNMENT_IN_PROGRESS. Returns a request-level error. */
typedef struct sm_meta_reassignment {
    const char *topic; /* NUL-terminated */
    int32_t partition;
    const int32_t *replicas;
    int nreplicas;
    int16_t error;       /* out */
    const char *message; /* out, static, or NULL */
} sm_meta_reassignment_t;
int16_t sm_meta_alter_reassignments(sm_meta_t *m, sm_meta_reassignment_t *e, int n);
void sm_meta_elections_free(sm_meta_election_t *e, int n);
/* Fence the brokers whose session expired (their leaderships move);
 * returns how many. Call periodically. */
int sm_meta_brokers_expire(sm_meta_t *m, int64_t now_ms);
/* Offset of the last record applied to the current image. */
int64_t sm_meta_last_offset(sm_meta_t *m);

/* DescribeQuorum of the metadata log, from the active controller's view:
 * leader, epoch, high watermark, the voters and the observers (brokers)
 * with their end offsets and last-fetch / caught-up times (wall ms, -1 if
 * unknown). Observers beyond max_observers are left out. */
typedef struct sm_meta_quorum_replica {
    int32_t id;
    int64_t end_offset;
    int64_t last_fetch_ms, last_caught_up_ms;
} sm_meta_quorum_replica_t;
typedef struct sm_meta_quorum {
    int32_t leader_id, leader_epoch;
    int64_t high_watermark;
    sm_meta_quorum_replica_t voters[16];
    int nvoters;
    sm_meta_quorum_replica_t observers[256];
    int nobservers;
} sm_meta_quorum_t;
void sm_meta_describe_quorum(sm_meta_t *m, int64_t now_mono_ms, int64_t now_wall_ms,
                             sm_meta_quorum_t *out);

/* ---- the metadata quorum (meta_quorum.c), for the API edge */
typedef struct sm_raft_msg sm_raft_msg_t;
/* Hand a decoded quorum RPC to the quorum thread; reply(ctx, resp) comes
 * later from that thread (resp NULL: no answer, drop the request). */
void sm_meta_quorum_deliver(sm_meta_t *m, const sm_raft_msg_t *msg,
                            void (*reply)(void *ctx, const sm_raft_msg_t *resp), void *ctx);
/* The quorum leader this node knows (-1: none) and its epoch. Any thread. */
int32_t sm_meta_quorum_leader(sm_meta_t *m, int32_t *epoch);
/* True when this node is the active controller (leads the quorum and has
 * applied everything committed before its epoch). Any thread. */
bool sm_meta_is_active(sm_meta_t *m);
/* Hand leadership of the quorum over before a graceful stop. */
void sm_meta_resign(sm_meta_t *m);
/* True for a lone combined node, which registers its own broker in its
 * metadata log; every other broker registers with the active controller
 * over the network (src/broker/lifecycle.c). */
bool sm_meta_self_managed(const sm_meta_t *m);

/* Called after every publish, and once with old_img = NULL from
 * sm_meta_set_listener itself, under the controller lock (so calls are
 * serialised and in order; the callback must not call sm_meta_* operations).
 * The images are borrowed for the call; keep a reference to hold one. */
typedef void (*sm_meta_listener_fn)(void *ctx, const sm_meta_image_t *old_img,
                                    const sm_meta_image_t *new_img);
void sm_meta_set_listener(sm_meta_t *m, sm_meta_listener_fn fn, void *ctx);

/* Why the last sm_meta_* operation on this thread failed, more precisely than
 * its sm_err_t, so the API edge can pick Kafka's error code. */
typedef enum sm_meta_fail {
    SM_META_FAIL_NONE = 0,
    SM_META_FAIL_TOPIC_NAME,         /* INVALID_TOPIC_EXCEPTION */
    SM_META_FAIL_TOPIC_EXISTS,       /* TOPIC_ALREADY_EXISTS */
    SM_META_FAIL_UNKNOWN_TOPIC,      /* UNKNOWN_TOPIC_OR_PARTITION / UNKNOWN_TOPIC_ID */
    SM_META_FAIL_PARTITIONS,         /* INVALID_PARTITIONS */
    SM_META_FAIL_REPLICATION_FACTOR, /* INVALID_REPLICATION_FACTOR */
    SM_META_FAIL_CONFIG,             /* INVALID_CONFIG */
    SM_META_FAIL_DELETION_DISABLED,  /* TOPIC_DELETION_DISABLED */
    SM_META_FAIL_STORAGE,            /* KAFKA_STORAGE_ERROR / UNKNOWN_SERVER_ERROR */
    SM_META_FAIL_NOT_CONTROLLER,     /* NOT_CONTROLLER: another node leads the quorum */
    SM_META_FAIL_TIMEOUT,            /* REQUEST_TIMED_OUT: no majority committed it in time */
} sm_meta_fail_t;
sm_meta_fail_t sm_meta_last_fail(void);

/*
 * Create a topic: TopicRecord, ConfigRecords, one PartitionRecord per
 * partition (leader = this node, epoch 0, replicas = isr = [this node]).
 * partitions -1 = num.partitions, replication_factor -1 =
 * default.replication.factor. Errors (message in errmsg): SM_ERR_EXISTS;
 * SM_ERR_INVALID for a bad name (or one that collides with an existing topic
 * when '.' and '_' are equated), partitions < 1, a replication factor < 1 or
 * above the number of registered brokers, a bad config (naming it); storage
 * errors. validate_only checks without writing. *id_out (may be NULL) gets
 * the topic id (a fresh one when validate_only).
 */
SM_MUST_CHECK sm_err_t sm_meta_create_topic(sm_meta_t *m, const char *name, int32_t partitions,
                                            int16_t replication_factor,
                                            const sm_topic_kv_t *configs, int nconfigs,
                                            bool validate_only, sm_uuid_t *id_out, char *errmsg,
                                            size_t errlen);

/* Create a topic with the defaults because a client named it
 * (auto.create.topics.enable): here on the active controller, else through
 * the forwarder (sm_meta_set_forwarder). Errors as sm_meta_create_topic. */
SM_MUST_CHECK sm_err_t sm_meta_auto_create_topic(sm_meta_t *m, const char *name, char *errmsg,
                                                 size_t errlen);

/* Create an internal topic (e.g. __consumer_offsets) for a coordinator: like
 * sm_meta_create_topic but the replication factor is capped at the number of
 * registered brokers, and an existing topic is success (its id returned). */
SM_MUST_CHECK sm_err_t sm_meta_create_internal_topic(sm_meta_t *m, const char *name,
                                                     int32_t partitions,
                                                     int16_t replication_factor,
                                                     const sm_topic_kv_t *configs, int nconfigs,
                                                     sm_uuid_t *id_out);

/* How a node that is not the active controller creates a topic (the
 * broker sends CreateTopics to the active controller): SM_OK, SM_ERR_EXISTS,
 * SM_ERR_AGAIN (no controller answered in time), SM_ERR_INVALID (refused;
 * message in errmsg). Blocking; called on the thread that asked. */
typedef sm_err_t (*sm_meta_forward_create_fn)(void *ctx, const char *name, int32_t partitions,
                                              int16_t replication_factor,
                                              const sm_topic_kv_t *configs, int nconfigs,
                                              char *errmsg, size_t errlen);
/* With a forwarder, sm_meta_auto_create_topic and
 * sm_meta_create_internal_topic on a node that is not the active controller go through it, then wait
 * (bounded) until the topic reaches this node's image. */
void sm_meta_set_forwarder(sm_meta_t *m, sm_meta_forward_create_fn fn, void *ctx);

/* Delete a topic by name, or by id when name is NULL or "" (if both are given they
 * must agree). RemoveTopicRecord. SM_ERR_NOT_FOUND, SM_ERR_UNSUPPORTED when
 * delete.topic.enable=false. */
SM_MUST_CHECK sm_err_t sm_meta_delete_topic(sm_meta_t *m, const char *name,
                                            const sm_uuid_t *id_or_NULL, char *errmsg,
                                            size_t errlen);

/* Grow a topic to new_total partitions (PartitionRecords for the new ones).
 * SM_ERR_NOT_FOUND; SM_ERR_INVALID when new_total <= current count. */
SM_MUST_CHECK sm_err_t sm_meta_create_partitions(sm_meta_t *m, const char *name,
                                                 int32_t new_total, bool validate_only,
                                                 char *errmsg, size_t errlen);

/* Change a topic's config overrides: set (key, value) pairs, delete keys;
 * replace_all (legacy AlterConfigs) deletes every override not in set.
 * Every key/value is validated first (SM_ERR_INVALID naming it; unknown key
 * -> SM_ERR_INVALID too); SM_ERR_NOT_FOUND for an unknown topic. One
 * ConfigRecord per change (value null = delete). */
SM_MUST_CHECK sm_err_t sm_meta_alter_topic_configs(sm_meta_t *m, const char *name,
                                                   const sm_topic_kv_t *set, int nset,
                                                   const char *const *del, int ndel,
                                                   bool replace_all, bool validate_only,
                                                   char *errmsg, size_t errlen);

/*
 * Change dynamic broker configs (AlterConfigs / IncrementalAlterConfigs on a
 * BROKER resource): resource_name "" = the cluster-wide default, else a
 * decimal node id. Only sm_config_is_dynamic keys are accepted
 * (SM_ERR_INVALID "Cannot update these configs dynamically: k"); values are
 * checked against the broker key's definition (SM_ERR_INVALID naming it).
 * replace_all (legacy AlterConfigs) deletes every dynamic key of the
 * resource not in set. One ConfigRecord (resource type 4) per change;
 * validate_only checks without writing. Any thread (blocks on fsync).
 */
SM_MUST_CHECK sm_err_t sm_meta_alter_broker_configs(sm_meta_t *m, const char *resource_name,
                                                    const sm_config_kv_t *set, int nset,
                                                    const char *const *del, int ndel,
                                                    bool replace_all, bool validate_only,
                                                    char *errmsg, size_t errlen);

/* Reserve count producer ids for broker_id (ProducerIdsRecord, as Kafka's
 * AllocateProducerIds): *first gets the first id of the block. */
SM_MUST_CHECK sm_err_t sm_meta_allocate_producer_ids(sm_meta_t *m, int32_t broker_id,
                                                     int32_t count, int64_t *first);

/* --------------------------------------------------------- topic configs */

/* The partition log settings of a topic: each resolved from its overrides,
 * then the broker config, then Kafka's defaults. Any thread. */
void sm_meta_topic_log_config(const sm_config_t *broker, const sm_topic_kv_t *overrides,
                              int noverrides, sm_log_config_t *out);
/* The same with the dynamic broker layers between the overrides and the
 * static broker config (dyn may be NULL). Any thread. */
void sm_meta_topic_log_config_dynamic(const sm_config_t *broker, const sm_config_dynamic_t *dyn,
                                      const sm_topic_kv_t *overrides, int noverrides,
                                      sm_log_config_t *out);

#endif
