/*
 * meta_log.h - the metadata log __cluster_metadata-0 as the controller uses
 * it (internal to src/meta): a KRaft quorum (src/raft) over a storage
 * partition log (raft_log.c), run on its own thread with its own event loop
 * and node-to-node connections to the other voters (meta_quorum.c).
 *
 * What the rest of src/meta sees:
 *   - committed records, in offset order, queued for whoever applies them
 *     (sm_meta_log_drain): on every node, voters and observers alike, the
 *     image is built only from what the quorum committed, never from what
 *     this node merely wrote;
 *   - sm_meta_log_commit on the active controller: propose, wait until the
 *     quorum's high watermark passes the batch, return (the records are then
 *     in the queue, so the caller applies them by draining);
 *   - the quorum's view (leader, epoch, describe) for the API edge.
 *
 * Recovery is the storage log's: a torn tail left by a crash is cut off; a
 * corrupt batch below the high watermark stops the quorum (the error names
 * the offset), because silently dropping committed metadata would lose
 * topics. A failed quorum-state write stops it too.
 *
 * Threads: every function may be called from any thread; commit and drain
 * are serialised by the caller (the controller lock).
 */
#ifndef SM_META_LOG_H
#define SM_META_LOG_H

#include "sm_common.h"

#define SM_META_LOG_DIR_NAME "__cluster_metadata-0"

typedef struct sm_meta_log sm_meta_log_t;
typedef struct sm_raft_msg sm_raft_msg_t;
typedef struct sm_raft_describe sm_raft_describe_t;

/* Called for every committed record by sm_meta_log_drain, in offset order
 * (epoch: the leader epoch of its batch). A
 * non-OK return stops the drain with that error; *why describes it. */
typedef sm_err_t (*sm_meta_log_record_fn)(void *ctx, int64_t offset, int32_t epoch,
                                          const uint8_t *value, size_t len, const char **why);

typedef struct sm_meta_log_voter {
    int32_t id;
    const char *host;
    int port;
} sm_meta_log_voter_t;

typedef struct sm_meta_log_config {
    const char *parent_dir;  /* <dir>/__cluster_metadata-0 */
    int64_t segment_bytes;   /* roll beyond this size */
    int32_t node_id;
    const char *cluster_id;
    const sm_meta_log_voter_t *voters; /* controller.quorum.voters */
    int nvoters;
    int32_t election_timeout_ms, fetch_timeout_ms, election_backoff_max_ms, request_timeout_ms,
        append_linger_ms, retry_backoff_ms;
    /* Records below this offset are already applied (the image was loaded
     * from a snapshot ending there): they are not queued again. */
    int64_t applied_end;
    /* metadata.max.retention.bytes: past this size the log starts at the
     * newest snapshot (-1: keep the whole log). */
    int64_t max_log_bytes;
    /* From the quorum thread, after committed records were queued or the
     * leader changed: wake whoever applies them. */
    void (*notify)(void *ctx);
    void *notify_ctx;
} sm_meta_log_config_t;

/* Open (creating) the log, start the quorum thread and return. The quorum
 * elects and commits in the background; sm_meta_log_wait_active waits for
 * this node to lead (a single voter elects itself at once). */
SM_MUST_CHECK sm_err_t sm_meta_log_open(const sm_meta_log_config_t *c, sm_meta_log_t **out);
void sm_meta_log_close(sm_meta_log_t *l);

/* This node wrote a snapshot ending at end_offset (last record's epoch):
 * the quorum serves it to followers behind the log start and may move the
 * log start to it. Any thread. */
void sm_meta_log_snapshot_taken(sm_meta_log_t *l, int64_t end_offset, int32_t epoch);
/* The metadata log's start offset (0, or the snapshot it was trimmed to). */
int64_t sm_meta_log_start(sm_meta_log_t *l);
/* A follower installed the leader's snapshot: true once, with its end
 * offset; the caller reloads its image from the snapshot file. Any thread. */
bool sm_meta_log_take_reload(sm_meta_log_t *l, int64_t *end_offset);

/* Graceful stop of a leader: hand leadership over (EndQuorumEpoch) and give
 * the messages up to wait_ms to leave. Any thread. */
void sm_meta_log_resign(sm_meta_log_t *l, int wait_ms);

/* True when this node is the quorum leader and its epoch's first record
 * (LeaderChange) is committed, so everything committed before is queued:
 * drain, and the image is current. *epoch gets the quorum epoch. */
bool sm_meta_log_active(sm_meta_log_t *l, int32_t *epoch);
/* Wait up to timeout_ms for sm_meta_log_active (or a fatal error). */
sm_err_t sm_meta_log_wait_active(sm_meta_log_t *l, int timeout_ms);

/* The leader this node knows of (SM_RAFT_NO_ID = -1 if none) and the epoch. */
int32_t sm_meta_log_leader(sm_meta_log_t *l, int32_t *epoch);
int32_t sm_meta_log_epoch(sm_meta_log_t *l);
/* The offset the next record gets (this node's log end). */
int64_t sm_meta_log_end_offset(sm_meta_log_t *l);
/* The quorum's high watermark as this node knows it. */
int64_t sm_meta_log_high_watermark(sm_meta_log_t *l);
/* The quorum's state as of its last event (per-replica details only on the leader). */
void sm_meta_log_describe(sm_meta_log_t *l, sm_raft_describe_t *out);
/* A fatal error stopped the quorum (SM_OK if none). */
sm_err_t sm_meta_log_failed(sm_meta_log_t *l);

/* Apply queued committed records through fn, in order; returns how many were
 * applied (they leave the queue whatever fn returns; *rc gets fn's first
 * error, the rest are still passed). Serialised by the caller. */
int sm_meta_log_drain(sm_meta_log_t *l, sm_meta_log_record_fn fn, void *ctx, sm_err_t *rc);

/* One record value to append (borrowed for the call). */
typedef struct sm_meta_log_rec {
    const uint8_t *value;
    size_t len;
} sm_meta_log_rec_t;

/* Active controller only: commit n (> 0) records as one batch (timestamps =
 * now_ms). Returns SM_OK once the quorum committed it (it is then queued:
 * drain to apply); SM_ERR_CLOSED when this node is not (or stopped being)
 * the active controller; SM_ERR_AGAIN when timeout_ms passed first (the batch
 * may still commit later, whole, as in Kafka); SM_ERR_IO etc. when the
 * quorum failed. *base_offset gets the first record's offset. */
SM_MUST_CHECK sm_err_t sm_meta_log_commit(sm_meta_log_t *l, const sm_meta_log_rec_t *recs, int n,
                                          int64_t now_ms, int timeout_ms, int64_t *base_offset);

/* Quorum RPCs that reached this node (Vote, BeginQuorumEpoch, EndQuorumEpoch,
 * Fetch of __cluster_metadata-0), already decoded by raft_wire. The answer
 * comes later through reply(ctx, resp) on the quorum thread (resp's byte
 * views are valid only during the call); resp is NULL when the quorum will
 * not answer (stopping, or no answer within the request timeout): drop the
 * request. msg is copied. Any thread. */
typedef void (*sm_meta_log_reply_fn)(void *ctx, const sm_raft_msg_t *resp);
void sm_meta_log_deliver(sm_meta_log_t *l, const sm_raft_msg_t *msg, sm_meta_log_reply_fn reply,
                         void *ctx);

#endif
