/*
 * fetcher.h - the follower side of partition replication, and the leader's
 * ISR upkeep: one event loop thread ("samsa-repl") per broker.
 *
 * Follower: for every hosted partition this broker follows, the fetcher
 * keeps one node-to-node connection (src/env/peer.h) per leader broker and
 * runs a loop of Fetch requests (v15) on it (Kafka's ReplicaFetcherThread,
 * with num.replica.fetchers = 1): ReplicaState = this broker and its
 * registration epoch, per partition (by topic id) the log
 * end as fetch offset, the epoch of the newest batch as LastFetchedEpoch and
 * the leader epoch it follows. The leader long-polls
 * (replica.fetch.wait.max.ms); each answer is applied by the partition layer
 * (sm_partition_follower_apply: truncate on a diverging epoch, append with
 * the leader's offsets, move the high watermark), and the next fetch goes
 * out at once. A partition whose fetch failed pauses for
 * replica.fetch.backoff.ms (an error from the leader: until the metadata
 * says who leads now).
 *
 *   image change ──► refresh (loop task): partitions grouped by leader;
 *                    a source per leader broker, its peer at the leader's
 *                    inter-broker listener
 *   source idle ──► Fetch ──► apply each partition ──► Fetch ...
 *
 * Leader: every replica.lag.time.max.ms / 2 (at most 500 ms) the ISR check
 * asks each led partition for an ISR proposal (members that fell behind
 * out, followers at the high watermark in) and sends the proposals in one
 * AlterPartition (v3: each member with the broker epoch it fetched under) to
 * the active controller through the controller
 * channel; the controller's PartitionChangeRecord comes back in the image.
 *
 * Threads: the fetcher's state belongs to its loop; sm_repl_refresh may be
 * called from any thread.
 */
#ifndef SM_REPL_FETCHER_H
#define SM_REPL_FETCHER_H

#include "conf/config.h"
#include "meta.h"
#include "partition/partition.h"

typedef struct sm_repl sm_repl_t;

typedef struct sm_repl_hooks {
    /* every hosted partition, each with a new reference; *n the count */
    sm_partition_t **(*partitions)(void *ctx, size_t *n);
    /* send a request to the active controller (sm_ctl_channel_call) */
    void (*ctl_call)(void *ctx, int16_t api_key, int16_t api_version, const uint8_t *body,
                     size_t len, int32_t timeout_ms,
                     void (*fn)(void *fctx, sm_err_t err, const uint8_t *body, size_t len),
                     void *fctx);
    void *ctx;
} sm_repl_hooks_t;

/* Start the thread. NULL if it cannot start (logged). */
sm_repl_t *sm_repl_start(const sm_config_t *cfg, sm_meta_t *meta, const sm_repl_hooks_t *hooks);
/* The partitions or their leaders changed: regroup (coalesced). Any thread. */
void sm_repl_refresh(sm_repl_t *r);
/* Stop fetching and join the thread. NULL is fine. */
void sm_repl_stop(sm_repl_t *r);

#endif
