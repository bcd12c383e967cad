/*
 * group.h - one consumer group under Kafka's classic group protocol: its
 * members, generation and the rebalance state machine (drawn in group.c).
 *
 * The state machine is pure: no locks, no I/O, no clock of its own. Callers
 * (the coordinator, or a unit test with a fake clock) feed it events -
 * sm_group_join/sync/heartbeat/leave and sm_group_tick - each with the current
 * time, and it answers through the waiters the caller handed in and through
 * the env's store() hook when the group's metadata must be made durable.
 *
 * Waiters: a JoinGroup or SyncGroup may have to wait for other members, so
 * its answer goes to a caller-owned sm_group_waiter_t (in the broker: one per
 * parked request). Every waiter handed to the group is answered exactly once:
 * immediately, when the rebalance completes, when the member is removed or
 * replaced, or by sm_group_unload(). Callbacks run on the caller's thread
 * inside the group call and must not call back into the group.
 *
 * Errors returned or passed to waiters are Kafka wire error codes (int16):
 * this module IS the protocol's state machine, so the codes are its
 * vocabulary (SM_KERR_* below).
 *
 * Time: sm_group_time_t carries a monotonic clock for deadlines (sessions,
 * rebalance and join delays) and the wall clock for the timestamps that are
 * persisted (state change time, used by offset expiry after a restart).
 *
 * Threads: a group is touched by one thread at a time (the coordinator holds
 * its mutex around every call).
 */
#ifndef SM_GROUP_H
#define SM_GROUP_H

#include "offsets.h"
#include "sm_common.h"

/* Kafka error codes the coordinator produces. */
enum {
    SM_KERR_NONE = 0,
    SM_KERR_UNKNOWN_SERVER_ERROR = -1,
    SM_KERR_UNKNOWN_TOPIC_OR_PARTITION = 3,
    SM_KERR_OFFSET_METADATA_TOO_LARGE = 12,
    SM_KERR_COORDINATOR_LOAD_IN_PROGRESS = 14,
    SM_KERR_COORDINATOR_NOT_AVAILABLE = 15,
    SM_KERR_NOT_COORDINATOR = 16,
    SM_KERR_ILLEGAL_GENERATION = 22,
    SM_KERR_INCONSISTENT_GROUP_PROTOCOL = 23,
    SM_KERR_INVALID_GROUP_ID = 24,
    SM_KERR_UNKNOWN_MEMBER_ID = 25,
    SM_KERR_INVALID_SESSION_TIMEOUT = 26,
    SM_KERR_REBALANCE_IN_PROGRESS = 27,
    SM_KERR_UNSUPPORTED_VERSION = 35,
    SM_KERR_INVALID_REQUEST = 42,
    SM_KERR_NON_EMPTY_GROUP = 68,
    SM_KERR_GROUP_ID_NOT_FOUND = 69,
    SM_KERR_MEMBER_ID_REQUIRED = 79,
    SM_KERR_GROUP_MAX_SIZE_REACHED = 81,
    SM_KERR_FENCED_INSTANCE_ID = 82,
    SM_KERR_GROUP_SUBSCRIBED_TO_TOPIC = 86,
    SM_KERR_UNSTABLE_OFFSET_COMMIT = 88,
};

typedef enum sm_group_state {
    SM_GROUP_EMPTY = 0,
    SM_GROUP_PREPARING_REBALANCE,
    SM_GROUP_COMPLETING_REBALANCE,
    SM_GROUP_STABLE,
    SM_GROUP_DEAD,
} sm_group_state_t;

/* Kafka's name of a state ("PreparingRebalance"...), as DescribeGroups and
 * ListGroups report it. */
const char *sm_group_state_name(sm_group_state_t s);
/* Parse a state name case-insensitively; -1 if unknown. */
int sm_group_state_parse(const char *name, size_t len);

typedef struct sm_group_time {
    int64_t mono_ms; /* deadlines */
    int64_t wall_ms; /* persisted timestamps */
} sm_group_time_t;

typedef struct sm_group sm_group_t;
typedef struct sm_group_member sm_group_member_t;
typedef struct sm_group_waiter sm_group_waiter_t;

/* One protocol a member supports, e.g. {"range", <subscription bytes>}. */
typedef struct sm_group_protocol {
    char *name;
    uint8_t *meta;
    int32_t meta_len;
} sm_group_protocol_t;

struct sm_group_member {
    char *id;
    char *instance_id; /* group.instance.id of a static member, or NULL */
    char *client_id;      /* may hold NUL bytes: client_id_len is its length */
    size_t client_id_len;
    char *client_host;
    int32_t session_timeout_ms;
    int32_t rebalance_timeout_ms;
    sm_group_protocol_t *protocols; /* in the member's order of preference */
    int32_t nprotocols;
    uint8_t *assignment; /* from the leader's SyncGroup; may be NULL (empty) */
    int32_t assignment_len;
    sm_group_waiter_t *join_waiter; /* parked JoinGroup, or NULL */
    sm_group_waiter_t *sync_waiter; /* parked SyncGroup, or NULL */
    int64_t last_seen_ms;           /* mono: last heartbeat/join/sync answered */
    int64_t joined_ms;              /* mono: when this member first joined */
    bool is_new;                    /* joined during the current rebalance */
    bool pending_sync;              /* owes a SyncGroup for this generation */
};

/* The result of a JoinGroup. Views valid during the callback only. */
typedef struct sm_group_join_result {
    int16_t error;
    int32_t generation;         /* -1 on error */
    const char *member_id;      /* the member's id (generated ones included) */
    const char *protocol_type;  /* NULL if none */
    const char *protocol_name;  /* NULL if none */
    const char *leader_id;      /* NULL if none */
    bool skip_assignment;       /* static leader rejoining a stable group (v9+) */
    bool with_members;          /* leader: list the group (sm_group_members_for_leader) */
} sm_group_join_result_t;

/* A parked request. The group calls exactly one of on_join / on_sync, once,
 * for each time the waiter was handed in. */
struct sm_group_waiter {
    void (*on_join)(sm_group_waiter_t *w, const sm_group_t *g, const sm_group_join_result_t *res);
    void (*on_sync)(sm_group_waiter_t *w, const sm_group_t *g, int16_t error,
                    const uint8_t *assignment, int32_t assignment_len);
    void *arg;
};

typedef struct sm_group_limits {
    int32_t min_session_timeout_ms;     /* group.min.session.timeout.ms (6000) */
    int32_t max_session_timeout_ms;     /* group.max.session.timeout.ms (1800000) */
    int32_t initial_rebalance_delay_ms; /* group.initial.rebalance.delay.ms (3000) */
    int32_t max_size;                   /* group.max.size (members + pending) */
    int32_t new_member_join_timeout_ms; /* how long a new member's parked join lives (300000) */
} sm_group_limits_t;

/* What a group needs from its owner. Shared by all groups of a coordinator. */
typedef struct sm_group_env {
    sm_group_limits_t limits;
    void *ctx;
    /* Make the group's metadata durable (GroupMetadata record); returns a
     * Kafka error code. NULL = nothing to persist (tests). */
    int16_t (*store)(void *ctx, sm_group_t *g, sm_group_time_t now);
    uint64_t rng; /* xorshift state for member ids; seed non-zero */
} sm_group_env_t;

struct sm_group {
    char *id;
    sm_group_state_t state;
    int64_t state_wall_ms;  /* wall time of the last state change (persisted) */
    int32_t generation;
    char *protocol_type;    /* set by the first member; NULL for offset-only groups */
    char *protocol_name;    /* selected protocol of this generation, or NULL */
    char *leader_id;        /* NULL if no members */
    sm_group_member_t **members;
    int32_t nmembers, members_cap;
    char **pending_ids;     /* KIP-394: ids handed out with MEMBER_ID_REQUIRED */
    int64_t *pending_deadline_ms;
    int32_t npending, pending_cap;
    /* PreparingRebalance: when the join phase ends (or the initial delay step). */
    int64_t join_deadline_ms;
    bool initial_join;               /* this join phase is group.initial.rebalance.delay */
    bool new_member_added;           /* a member arrived during the initial delay */
    int32_t initial_remaining_ms;    /* rebalance time left after the current delay */
    /* CompletingRebalance/Stable: members with pending_sync must sync by this. */
    int64_t sync_deadline_ms;
    sm_group_env_t *env;
    sm_offset_table_t offsets; /* committed offsets (maintained by the coordinator) */
    int32_t partition;         /* __consumer_offsets partition holding this group */
    /* The last GroupMetadata value written to (or loaded from) the log, kept
     * by the coordinator to restate it in snapshots; NULL if none. */
    uint8_t *stored_value;
    int32_t stored_len;
};

/* Arguments of a JoinGroup; strings are NUL-terminated, borrowed for the call. */
typedef struct sm_group_join_args {
    const char *member_id;   /* "" = a member joining for the first time */
    const char *instance_id; /* NULL = dynamic member */
    const char *client_id;
    size_t client_id_len;         /* bytes of client_id; 0 = up to its NUL */
    const char *client_host;
    int32_t session_timeout_ms;
    int32_t rebalance_timeout_ms; /* -1 (v0) = session timeout */
    const char *protocol_type;
    const sm_group_protocol_t *protocols;
    int32_t nprotocols;
    bool require_known_member_id; /* JoinGroup v4+ (KIP-394) */
} sm_group_join_args_t;

typedef struct sm_group_assignment {
    const char *member_id;
    const uint8_t *bytes;
    int32_t len;
} sm_group_assignment_t;

typedef struct sm_group_sync_args {
    const char *member_id;
    const char *instance_id;   /* NULL if none */
    int32_t generation;
    const char *protocol_type; /* NULL = not checked (before v5) */
    const char *protocol_name; /* NULL = not checked */
    const sm_group_assignment_t *assignments; /* only the leader's are used */
    int32_t nassignments;
} sm_group_sync_args_t;

/* Create an Empty group (generation 0). id is copied. */
sm_group_t *sm_group_new(const char *id, sm_group_env_t *env, sm_group_time_t now);
/* Free a group; waiters still parked are answered NOT_COORDINATOR first. */
void sm_group_free(sm_group_t *g);

/* Events. Each may answer waiters and call env->store before returning. */
void sm_group_join(sm_group_t *g, const sm_group_join_args_t *a, sm_group_time_t now,
                   sm_group_waiter_t *w);
void sm_group_sync(sm_group_t *g, const sm_group_sync_args_t *a, sm_group_time_t now,
                   sm_group_waiter_t *w);
int16_t sm_group_heartbeat(sm_group_t *g, const char *member_id, const char *instance_id,
                           int32_t generation, sm_group_time_t now);
/* One member of a LeaveGroup (member_id "" + instance_id removes by instance). */
int16_t sm_group_leave(sm_group_t *g, const char *member_id, const char *instance_id,
                       sm_group_time_t now);
/* Timers: session expiry, join phase end, initial delay, pending members,
 * members that never synced. Returns the next mono deadline (INT64_MAX if
 * none) so a timer thread can sleep until then. */
int64_t sm_group_tick(sm_group_t *g, sm_group_time_t now);

/* May an OffsetCommit with these credentials commit now? (Kafka's rules:
 * generation < 0 with no member id only while Empty; otherwise a current
 * member of this generation, not while CompletingRebalance.) */
int16_t sm_group_commit_check(const sm_group_t *g, int32_t generation, const char *member_id,
                              const char *instance_id);

/* Has committed offset e of g expired at now_wall_ms (offsets.retention)? */
bool sm_group_offset_expired(const sm_group_t *g, const sm_offset_entry_t *e, int64_t retention_ms,
                             int64_t now_wall_ms);

/* Coordinator is giving the group up (shutdown, DeleteGroups): answer every
 * parked waiter with `error` and move to Dead. */
void sm_group_unload(sm_group_t *g, int16_t error);

/* Queries. */
sm_group_member_t *sm_group_find_member(const sm_group_t *g, const char *member_id);
sm_group_member_t *sm_group_find_static(const sm_group_t *g, const char *instance_id);
/* The member's metadata for protocol `name` (NULL, 0 if it has none). */
const uint8_t *sm_group_member_meta(const sm_group_member_t *m, const char *name, int32_t *len);
/* Largest rebalance timeout among the members (the join phase length). */
int32_t sm_group_rebalance_timeout_ms(const sm_group_t *g);
/* A group that holds nothing worth keeping: Empty, no members, no pending
 * members and no offsets. */
bool sm_group_is_disposable(const sm_group_t *g);

/* Replace m's client id with len bytes at id (any bytes, NUL included). */
void sm_group_member_set_client_id(sm_group_member_t *m, const char *id, size_t len);

/* Loading from __consumer_offsets: add a member as stored (state Stable if
 * any). Strings and bytes are copied. */
sm_group_member_t *sm_group_restore_member(sm_group_t *g, const char *member_id,
                                           const char *instance_id, const char *client_id,
                                           const char *client_host, int32_t session_timeout_ms,
                                           int32_t rebalance_timeout_ms, const char *protocol,
                                           const uint8_t *subscription, int32_t sub_len,
                                           const uint8_t *assignment, int32_t assign_len,
                                           sm_group_time_t now);
/* Replace the group's generation metadata as stored (drops all members). */
void sm_group_restore_meta(sm_group_t *g, const char *protocol_type, int32_t generation,
                           const char *protocol_name, const char *leader_id, int64_t state_wall_ms);

#endif
