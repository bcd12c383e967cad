/*
 * sim.h - the simulator's shared types (events, nodes, the run) and the
 * checkers' entry points. sim_raft.c drives the run (event queue, network,
 * disk faults, scenarios); sim_check.c holds the invariants. See sim_raft.c's
 * top comment and docs/RAFT.md.
 */
#ifndef SIM_H
#define SIM_H

#include "raft.h"
#include "sim_log.h"

#include <inttypes.h>
#include <stdio.h>

#define MAX_NODES 8
#define NEVER INT64_MAX
#define LIVENESS_MS 30000

enum { EV_DELIVER, EV_TICK, EV_PROPOSE, EV_FAULT, EV_RESTART, EV_SNAPSHOT };
enum {
    A_CRASH_LEADER,
    A_CRASH_ALL,
    A_RESTART_ALL,
    A_ISOLATE_LEADER,
    A_HEAL_NET,
    A_PARTITION_MINORITY,
    A_RANDOM,
    A_CRASH_LEADER_TORN,
    A_ISOLATE_FOLLOWER,
    A_HEAL,
};
enum {
    SC_INITIAL_ELECTION,
    SC_LEADER_FAILURE,
    SC_ALL_KILLED,
    SC_OLD_LEADER_PARTITIONED,
    SC_MAJORITY_PROGRESS,
    SC_BACK_TO_BACK,
    SC_UNSYNCED_LOSS,
    SC_SNAPSHOT_CATCH_UP,
    SC_CHAOS,
    SC_COUNT
};

typedef struct ev {
    int64_t at;
    uint64_t seq;
    int kind, node, arg;
    uint32_t inc;
    sm_raft_msg_t msg;
    uint8_t *rec;
} ev_t;

typedef struct sim sim_t;

typedef struct node {
    sim_t *sim;
    int32_t id;
    bool voter, up;
    uint32_t inc;
    sm_raft_t *r;
    sim_log_t log;
    sm_raft_quorum_state_t durable;
    int64_t tick_at, tick_now, ticks_same;
    uint64_t rng;
    int64_t hw_seen, verified;
    int32_t epoch_seen;
    int32_t *vote_for; /* [epoch] candidate granted, 0 = none */
    int32_t vote_cap;
} node_t;

struct sim {
    uint64_t seed, rng;
    bool verbose;
    int64_t now, end_ms, heal_ms;
    uint64_t seq, events;
    int scenario;
    int n_voters, n_obs, n;
    node_t nodes[MAX_NODES];
    ev_t **heap;
    size_t hn, hcap;
    bool link_down[MAX_NODES][MAX_NODES];
    int drop_pm, dup_pm, delay_min, delay_max, crash_save_pm;
    bool torn, healed, done;
    int32_t *epoch_leader;
    int32_t epoch_cap;
    int32_t *ref_epoch;
    int32_t *ref_commit_epoch; /* epoch of the node that first saw it committed */
    uint64_t *ref_hash;
    int64_t ref_len, ref_cap;
    int propose_gap_ms;
    int64_t probe_offset; /* a proposal after the heal, to see commit */
    uint64_t probe_hash;
    uint64_t payload_seq;
    int64_t proposals, accepted, crashes, max_epoch, snapshots, installs;
    int snapshot_gap_ms; /* 0: this seed makes no snapshots */
    int64_t snapshot_min_new; /* offsets committed since the last snapshot to make one */
    bool failed;
    char fail[400];
    uint64_t digest; /* of every event: a replay must reproduce it exactly */
};

/* Record the first violation (later ones are dropped); the run stops. */
void sim_fail(sim_t *s, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#define TRACE(s, ...)                                                                  \
    do {                                                                               \
        if ((s)->verbose) {                                                            \
            fprintf(stderr, "[t=%" PRId64 "] ", (s)->now);                             \
            fprintf(stderr, __VA_ARGS__);                                              \
            fputc('\n', stderr);                                                       \
        }                                                                              \
    } while (0)

static inline int32_t sim_majority(const sim_t *s) { return s->n_voters / 2 + 1; }

/* sim_check.c: after every event */
void sim_check_all(sim_t *s);
/* before a message leaves nd: a granted vote must be durable, one per epoch */
void sim_check_send(sim_t *s, node_t *nd, const sm_raft_msg_t *m);
/* before the host saves qs for nd: durable epoch and vote rules */
void sim_check_save(sim_t *s, node_t *nd, const sm_raft_quorum_state_t *qs);
/* sim_log hooks (ctx = node_t *) */
void sim_check_truncate(void *ctx, const sim_log_t *log, int64_t offset);
void sim_check_install(void *ctx, const sim_log_t *log, int64_t end);
void sim_trace_msg(sim_t *s, const sm_raft_msg_t *m, node_t *to);

#endif
