/*
 * server.h - broker-wide state shared by every event-loop thread, and the
 * lookup of the partitions it hosts (src/partition).
 *
 * Threads: the server owns N event-loop threads (src/env/loop.h); each
 * connection belongs to one loop. Everything reachable from sm_server_t is
 * either immutable after start-up (config), refcounted and immutable
 * (metadata images), or internally locked (partitions, logs, coordinators).
 */
#ifndef SM_SERVER_H
#define SM_SERVER_H

#include "config.h"
#include "kerr.h"
#include "log.h"
#include "proto.h"
#include "ref.h"
#include "sm_common.h"
#include "partition/partition.h"

#include <pthread.h>

typedef struct sm_log sm_log_t;
typedef struct sm_meta sm_meta_t;
typedef struct sm_group_coord sm_group_coord_t;
typedef struct sm_append_info sm_append_info_t;

typedef struct sm_server sm_server_t;

/* Look a hosted partition up by topic name; returns a new reference or NULL.
 * Any thread. */
sm_partition_t *sm_server_partition(sm_server_t *srv, const char *topic, size_t topic_len,
                                    int32_t index);
sm_partition_t *sm_server_partition_by_id(sm_server_t *srv, const sm_uuid_t *topic_id,
                                          int32_t index);

/* Broker-wide accessors. */
const sm_config_t *sm_server_config(const sm_server_t *srv);
sm_meta_t *sm_server_meta(sm_server_t *srv);
/* The line to the active controller (NULL on a lone node). */
typedef struct sm_ctl_channel sm_ctl_channel_t;
sm_ctl_channel_t *sm_server_ctl_channel(sm_server_t *srv);
sm_group_coord_t *sm_server_groups(sm_server_t *srv);
typedef struct sm_pid_block sm_pid_block_t;
sm_pid_block_t *sm_server_pids(sm_server_t *srv);
/* The transaction coordinator (NULL until started, or on a controller-only node). */
typedef struct sm_txn_coord sm_txn_coord_t;
sm_txn_coord_t *sm_server_txn(sm_server_t *srv);
/* Its marker writer, which also verifies transactional writes (KIP-890);
 * NULL on a controller-only node. */
typedef struct sm_txn_markers_writer sm_txn_markers_writer_t;
sm_txn_markers_writer_t *sm_server_txn_markers(sm_server_t *srv);
int32_t sm_server_node_id(const sm_server_t *srv);
typedef struct sm_metrics sm_metrics_t;
sm_metrics_t *sm_server_metrics(sm_server_t *srv);

/* Every hosted partition, each with a new reference (sm_partition_put
 * them, free the array); *n gets the count. Any thread. */
sm_partition_t **sm_server_partitions(sm_server_t *srv, size_t *n);

/* Ready to serve: listeners bound, metadata loaded, loops running and not
 * shutting down. Otherwise *reason says why ("starting", "shutting down").
 * Any thread. */
bool sm_server_ready(sm_server_t *srv, const char **reason);

/* Run fn(arg) on a background worker thread (fsync, deletions, loading). */
void sm_server_background(sm_server_t *srv, void (*fn)(void *arg), void *arg);

/* Run fn(arg) on the controller thread: one thread that runs the metadata
 * changes clients ask for (CreateTopics, CreatePartitions, DeleteTopics) one
 * after the other, so creating thousands of partitions' files blocks neither
 * an event loop nor the background workers that flush and write back. */
void sm_server_controller(sm_server_t *srv, void (*fn)(void *arg), void *arg);

/* ---- lifecycle (main.c) and framework hooks */

typedef struct sm_loop sm_loop_t;

/* Build the server from a loaded config: format/check the data dirs, open
 * the metadata log, open every hosted partition, bind the listeners.
 * Main thread. */
sm_err_t sm_server_open(sm_config_t *cfg, sm_server_t **out) SM_MUST_CHECK;
/* Serve until SIGTERM/SIGINT, then shut down gracefully. Main thread. */
void sm_server_run(sm_server_t *srv);
void sm_server_close(sm_server_t *srv);

int sm_server_nloops(const sm_server_t *srv);
sm_loop_t *sm_server_loop(const sm_server_t *srv, int i);
const char *sm_server_cluster_id(const sm_server_t *srv);
/* True once a graceful shutdown began: connections stop taking new
 * requests. Any thread. */
bool sm_server_stopping(const sm_server_t *srv);

/* Called after every successful append to wake long-polling fetches.
 * Any thread. Implemented by the fetch purgatory (handle_fetch.c). */
void sm_fetch_notify_append(sm_server_t *srv, sm_partition_t *p);
/* The fetch path's state (a purgatory per loop, the fetch session cache),
 * owned by the server: made before the loops run, freed after they stop. */
typedef struct sm_fetch_state sm_fetch_state_t;
sm_fetch_state_t *sm_fetch_new(int nloops, int session_slots);
void sm_fetch_free(sm_fetch_state_t *f);
sm_fetch_state_t *sm_server_fetch(sm_server_t *srv);
/* Fetches parked (long polling) on every loop. Any thread. */
int sm_fetch_purgatory_size(sm_server_t *srv);

/* Connection and in-flight request counts of one server (conn.c keeps them
 * with relaxed atomics). */
typedef struct sm_conn_stats {
    int conns;
    int inflight;
} sm_conn_stats_t;
sm_conn_stats_t *sm_server_conn_stats(sm_server_t *srv);

#endif
