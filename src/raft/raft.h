/*
 * raft.h - the KRaft quorum for the metadata log __cluster_metadata-0, as a pure,
 * deterministic state machine.
 *
 * The object never does I/O and never reads a clock: the host passes the time
 * (ms) into every call, gives it a log (sm_raft_log_t vtable), an RNG and a
 * listener, and after every call (sm_raft_new included) it
 *   1. performs the pending quorum-state save, if any (sm_raft_save_pending /
 *      sm_raft_save_done), durably (write tmp, fsync, rename), and only then
 *   2. drains the outbox (sm_raft_outbox_next) and sends the messages.
 * The outbox is held back while a save is pending, so a vote grant, a vote for
 * itself, or an acknowledgement of a new leader never leaves the node before the
 * (epoch, votedId, leaderId) it depends on is durable. Calling step/tick/propose
 * again before doing 1 and 2 is a programmer error (SM_ASSERT).
 *
 * Messages are structs mirroring Kafka's RPC fields (Vote incl. PreVote from
 * KIP-996, BeginQuorumEpoch, EndQuorumEpoch, Fetch, FetchSnapshot and their
 * responses); the wire adapter (src/broker, later) maps them to the generated
 * codecs. Record bytes in a FetchResponse and chunks in a FetchSnapshotResponse
 * are borrowed views into the log, valid until the next call into this object.
 *
 * Threading: one object is owned by one thread (the controller's loop); it has
 * no globals, so a simulator runs many in one process.
 * Design and state machine: docs/RAFT.md and the drawing at the top of raft.c.
 */
#ifndef SM_RAFT_H
#define SM_RAFT_H

#include "sm_common.h"

/* Limits (principle 8): voters come from controller.quorum.voters. */
#define SM_RAFT_MAX_VOTERS 15
#define SM_RAFT_MAX_OBSERVERS 32 /* tracked by the leader for DescribeQuorum */
#define SM_RAFT_OUTBOX_CAP (2 * (SM_RAFT_MAX_VOTERS + SM_RAFT_MAX_OBSERVERS) + 8)
#define SM_RAFT_NO_ID (-1)

/* Kafka wire error codes the quorum RPCs carry (values are Kafka's). */
enum {
    SM_RAFT_ERR_NONE = 0,
    SM_RAFT_ERR_OFFSET_OUT_OF_RANGE = 1,
    SM_RAFT_ERR_NOT_LEADER_OR_FOLLOWER = 6,
    SM_RAFT_ERR_INVALID_REQUEST = 42,
    SM_RAFT_ERR_FENCED_LEADER_EPOCH = 74,
    SM_RAFT_ERR_UNKNOWN_LEADER_EPOCH = 75,
    SM_RAFT_ERR_INCONSISTENT_VOTER_SET = 94,
    SM_RAFT_ERR_SNAPSHOT_NOT_FOUND = 98,
    SM_RAFT_ERR_POSITION_OUT_OF_RANGE = 99,
};

/* Control record types (Kafka's ControlRecordType). */
#define SM_RAFT_CONTROL_NONE (-1)
#define SM_RAFT_CONTROL_LEADER_CHANGE 2

typedef enum sm_raft_state {
    SM_RAFT_UNATTACHED = 0, /* no leader known in this epoch (may have voted) */
    SM_RAFT_PROSPECTIVE,    /* asking for pre-votes, epoch unchanged (KIP-996) */
    SM_RAFT_CANDIDATE,      /* epoch bumped, voted for itself, asking for votes */
    SM_RAFT_LEADER,
    SM_RAFT_FOLLOWER,       /* knows the leader of its epoch; fetches from it */
    SM_RAFT_RESIGNED,       /* a leader that stepped down; waits for the next one */
} sm_raft_state_t;

const char *sm_raft_state_name(sm_raft_state_t s);

/* ---------------------------------------------------------------- messages */

typedef enum sm_raft_msg_kind {
    SM_RAFT_MSG_VOTE = 1,
    SM_RAFT_MSG_VOTE_RESP,
    SM_RAFT_MSG_BEGIN_EPOCH,
    SM_RAFT_MSG_BEGIN_EPOCH_RESP,
    SM_RAFT_MSG_END_EPOCH,
    SM_RAFT_MSG_END_EPOCH_RESP,
    SM_RAFT_MSG_FETCH,
    SM_RAFT_MSG_FETCH_RESP,
    SM_RAFT_MSG_FETCH_SNAPSHOT,
    SM_RAFT_MSG_FETCH_SNAPSHOT_RESP,
} sm_raft_msg_kind_t;

const char *sm_raft_msg_kind_name(sm_raft_msg_kind_t k);

typedef struct sm_raft_leader_ref { /* Kafka's CurrentLeader{LeaderId, LeaderEpoch} */
    int32_t leader_id;              /* SM_RAFT_NO_ID if unknown */
    int32_t leader_epoch;
} sm_raft_leader_ref_t;

typedef struct sm_raft_offset_epoch { /* DivergingEpoch / SnapshotId: epoch -1 = absent */
    int32_t epoch;
    int64_t end_offset;
} sm_raft_offset_epoch_t;

typedef struct sm_raft_msg {
    sm_raft_msg_kind_t kind;
    int32_t from, to; /* node ids */
    int64_t corr;     /* request's correlation id, echoed in its response */
    union {
        struct { /* VoteRequest (v2: PreVote) */
            int32_t candidate_epoch; /* for a pre-vote: the epoch it would take */
            int32_t candidate_id;
            int32_t last_offset_epoch;
            int64_t last_offset; /* log end offset */
            bool pre_vote;
        } vote;
        struct { /* VoteResponse */
            int16_t error;
            int32_t leader_id, leader_epoch; /* the voter's view */
            bool vote_granted;
            bool pre_vote;
        } vote_resp;
        struct { /* BeginQuorumEpochRequest */
            int32_t leader_id, leader_epoch;
        } begin;
        struct { /* EndQuorumEpochRequest */
            int32_t leader_id, leader_epoch;
            int32_t n_preferred;
            int32_t preferred[SM_RAFT_MAX_VOTERS]; /* PreferredCandidates, best first */
        } end;
        struct { /* Begin/EndQuorumEpochResponse */
            int16_t error;
            int32_t leader_id, leader_epoch;
        } epoch_resp;
        struct { /* FetchRequest for __cluster_metadata-0 */
            int32_t replica_id;
            int32_t current_leader_epoch;
            int64_t fetch_offset;
            int32_t last_fetched_epoch;
            int32_t max_bytes;
        } fetch;
        struct { /* FetchResponse partition */
            int16_t error;
            int64_t high_watermark; /* -1 when not the leader */
            int64_t log_start_offset;
            sm_raft_offset_epoch_t diverging; /* DivergingEpoch */
            sm_raft_offset_epoch_t snapshot_id; /* SnapshotId: fetch it */
            sm_raft_leader_ref_t current_leader;
            const uint8_t *records; /* borrowed from the leader's log */
            size_t records_len;
        } fetch_resp;
        struct { /* FetchSnapshotRequest */
            int32_t replica_id, current_leader_epoch;
            sm_raft_offset_epoch_t snapshot_id;
            int64_t position;
            int32_t max_bytes;
        } fetch_snapshot;
        struct { /* FetchSnapshotResponse */
            int16_t error;
            sm_raft_leader_ref_t current_leader;
            sm_raft_offset_epoch_t snapshot_id;
            int64_t size, position;
            const uint8_t *bytes;
            size_t len;
        } fetch_snapshot_resp;
    } u;
} sm_raft_msg_t;

/* ---------------------------------------------------------------- the log */

/* One append by the leader: opaque records taking `count` offsets, or a control
 * record built by the log adapter (LEADER_CHANGE carries leader_id and voters). */
typedef struct sm_raft_append {
    int32_t epoch;
    int32_t count;
    const void *data; /* borrowed for the call; NULL for a control record */
    size_t len;
    int32_t control_type; /* SM_RAFT_CONTROL_NONE or SM_RAFT_CONTROL_LEADER_CHANGE */
    int32_t leader_id;
} sm_raft_append_t;

/* The metadata log as Raft needs it, implemented by the partition log adapter
 * (src/storage, later) and by the simulator's in-memory log. Offsets are Kafka
 * offsets; epochs start at 1 (0 = "before any epoch"). Bytes read and written by
 * read/append_fetched are self-describing whole batches (offsets and epoch inside,
 * like Kafka's record batches), so they pass leader -> follower verbatim. */
typedef struct sm_raft_log_ops {
    /* Leader append; *base_offset = first offset taken. Not durable until flush. */
    sm_err_t (*append)(void *ctx, const sm_raft_append_t *a, int64_t *base_offset);
    /* Follower append of bytes read from the leader; they must start at end_offset.
     * Bad bytes from the peer are SM_ERR_CORRUPT/SM_ERR_PARSE/SM_ERR_RANGE. */
    sm_err_t (*append_fetched)(void *ctx, const uint8_t *bytes, size_t len);
    /* Whole batches from `offset` up to max_bytes (at least one batch if any);
     * the view is valid until the next mutation of the log. */
    sm_err_t (*read)(void *ctx, int64_t offset, size_t max_bytes, const uint8_t **bytes,
                     size_t *len);
    /* Drop every entry at or above offset (never below the log start). */
    sm_err_t (*truncate)(void *ctx, int64_t offset);
    /* Make every appended byte durable (synchronous here; see docs/RAFT.md). */
    sm_err_t (*flush)(void *ctx);
    int64_t (*start_offset)(void *ctx);
    int64_t (*end_offset)(void *ctx);     /* LEO, durable or not */
    int64_t (*flushed_offset)(void *ctx); /* durable end */
    int32_t (*last_epoch)(void *ctx);     /* epoch of the last entry, 0 if empty */
    /* Leader-epoch cache: the largest epoch <= epoch present in the log and the
     * offset where it ends (start of the next epoch, or LEO); (0, start) if none. */
    sm_raft_offset_epoch_t (*end_offset_for_epoch)(void *ctx, int32_t epoch);

    /* Snapshots (KIP-630); all four NULL = no snapshots. A snapshot id is
     * {end_offset (exclusive), epoch of the entry at end_offset - 1}. The host
     * makes snapshots of committed state itself and moves the log start to the
     * latest one; the log start always sits at a snapshot's end. */
    sm_raft_offset_epoch_t (*snapshot_latest)(void *ctx); /* epoch -1: none */
    /* A chunk of snapshot id from position: SM_ERR_NOT_FOUND if id is not (or no
     * longer) there, SM_ERR_RANGE if position > size. The view is valid until the
     * next call into the log. */
    sm_err_t (*snapshot_read)(void *ctx, sm_raft_offset_epoch_t id, int64_t position,
                              size_t max_bytes, const uint8_t **bytes, size_t *len,
                              int64_t *size);
    /* Follower: write a chunk of a snapshot being fetched (position 0 starts a new
     * one, like Kafka's <end>-<epoch>.checkpoint.part); chunks come in order. */
    sm_err_t (*snapshot_write)(void *ctx, sm_raft_offset_epoch_t id, int64_t position,
                               const uint8_t *bytes, size_t len);
    /* Follower: the snapshot is complete: make it durable, drop the whole log and
     * restart it at id.end_offset. Bad snapshot bytes are SM_ERR_CORRUPT. */
    sm_err_t (*snapshot_install)(void *ctx, sm_raft_offset_epoch_t id);
} sm_raft_log_ops_t;

/* ---------------------------------------------------------------- environment */

typedef struct sm_raft_listener {
    /* The high watermark moved from old_hw to new_hw: entries [old_hw, new_hw) are
     * committed; read them from the log. Called inside step/tick/propose. */
    void (*committed)(void *ctx, int64_t old_hw, int64_t new_hw);
    /* A new leader (or none: SM_RAFT_NO_ID) for epoch. */
    void (*leader_change)(void *ctx, int32_t leader_id, int32_t epoch);
    /* A follower installed the leader's snapshot id: reload the state from it
     * (the log now starts at id.end_offset; the hw is at least there). */
    void (*snapshot_loaded)(void *ctx, sm_raft_offset_epoch_t id);
    void *ctx;
} sm_raft_listener_t;

typedef struct sm_raft_env {
    const sm_raft_log_ops_t *log;
    void *log_ctx;
    uint64_t (*rand)(void *ctx); /* uniformly random 64 bits */
    void *rand_ctx;
    sm_raft_listener_t listener; /* optional: NULL callbacks are skipped */
} sm_raft_env_t;

/* Kafka's quorum-state file contents (QuorumStateData: leaderId, leaderEpoch, votedId). */
typedef struct sm_raft_quorum_state {
    int32_t epoch;
    int32_t voted_id;
    int32_t leader_id;
} sm_raft_quorum_state_t;

typedef struct sm_raft_config {
    int32_t node_id;
    int32_t n_voters;
    int32_t voters[SM_RAFT_MAX_VOTERS]; /* controller.quorum.voters ids */
    int32_t election_timeout_ms;        /* 1000 */
    int32_t fetch_timeout_ms;           /* 2000 */
    int32_t election_backoff_max_ms;    /* 1000 */
    int32_t request_timeout_ms;         /* 2000 */
    int32_t append_linger_ms;           /* 25: the leader flushes this long after an append */
    int32_t retry_backoff_ms;           /* 20 */
    int32_t fetch_max_wait_ms;          /* 500: how long the leader parks an empty fetch */
    int32_t fetch_max_bytes;            /* 1 MiB */
    bool pre_vote;                      /* true: PreVote before a vote (KIP-996) */
    /* The durable state loaded at start (epoch 0 / NO_ID for a new node). */
    sm_raft_quorum_state_t initial;
} sm_raft_config_t;

/* Fill Kafka's defaults (ids and voters left empty). */
void sm_raft_config_defaults(sm_raft_config_t *c);

typedef struct sm_raft sm_raft_t;

/* ---------------------------------------------------------------- API */

/* A node starts from its durable quorum state (config->initial) and its log: as
 * Follower if the durable leader is another voter, Resigned if it led that epoch
 * itself, Unattached otherwise (keeping its durable vote). A node not in voters
 * is an observer. Returns NULL on a bad config (logged). The env is copied; the
 * log and RNG contexts it points to must outlive the object. */
sm_raft_t *sm_raft_new(const sm_raft_config_t *config, const sm_raft_env_t *env, int64_t now_ms);
void sm_raft_free(sm_raft_t *r);

/* One message from a peer. Bad input is answered with an error or ignored with a
 * log line, never asserted. */
void sm_raft_step(sm_raft_t *r, int64_t now_ms, const sm_raft_msg_t *msg);
/* Timers: elections, fetch timeouts, retries, linger flush, parked fetches. */
void sm_raft_tick(sm_raft_t *r, int64_t now_ms);
/* The earliest time tick must be called (for the host's timer). */
int64_t sm_raft_next_deadline(const sm_raft_t *r);

#define SM_RAFT_NOT_LEADER (-1)
#define SM_RAFT_REJECTED (-2) /* too large, or the log refused it (logged) */
/* Leader only: append opaque records taking `count` offsets; returns the first
 * offset, SM_RAFT_NOT_LEADER, or SM_RAFT_REJECTED. Committed once the high
 * watermark passes it (listener.committed). */
int64_t sm_raft_propose(sm_raft_t *r, int64_t now_ms, const void *data, size_t len,
                        int32_t count);
/* Graceful resignation (leader only): EndQuorumEpoch with preferred candidates. */
void sm_raft_resign(sm_raft_t *r, int64_t now_ms);

int64_t sm_raft_committed(const sm_raft_t *r); /* high watermark */
sm_raft_state_t sm_raft_state(const sm_raft_t *r);
int32_t sm_raft_epoch(const sm_raft_t *r);
int32_t sm_raft_leader(const sm_raft_t *r);
bool sm_raft_is_voter(const sm_raft_t *r);

/* Host I/O after every call: the save first, then the outbox. */
bool sm_raft_save_pending(const sm_raft_t *r, sm_raft_quorum_state_t *out);
void sm_raft_save_done(sm_raft_t *r, const sm_raft_quorum_state_t *saved);
/* Next message to send, or false (nothing left, or a save is pending). Byte views
 * in the message (records, snapshot chunks) stay valid until the next call into
 * this object or its log. */
bool sm_raft_outbox_next(sm_raft_t *r, sm_raft_msg_t *out);

/* DescribeQuorum (KIP-836 timestamps). */
typedef struct sm_raft_replica_desc {
    int32_t id;
    int64_t end_offset;        /* -1 unknown */
    int64_t last_fetch_ms;     /* -1 never */
    int64_t last_caught_up_ms; /* -1 never */
} sm_raft_replica_desc_t;

typedef struct sm_raft_describe {
    int32_t node_id, leader_id, epoch;
    sm_raft_state_t state;
    int64_t high_watermark;
    int32_t n_voters, n_observers;
    sm_raft_replica_desc_t voters[SM_RAFT_MAX_VOTERS];
    sm_raft_replica_desc_t observers[SM_RAFT_MAX_OBSERVERS];
} sm_raft_describe_t;

/* Fills out; the per-replica fields are only known on the leader. */
void sm_raft_describe(const sm_raft_t *r, sm_raft_describe_t *out);

#endif
