/*
 * sim_log.h - the simulator's in-memory metadata log and disk: implements
 * sm_raft_log_ops_t over one byte buffer of self-describing batches, with a
 * durable prefix (what fsync reached). A crash keeps the durable batches plus,
 * when the disk "tears", a random prefix of the unsynced ones (a write that
 * reached the platter without its fsync); everything else is lost.
 *
 * Batch framing (native endian, simulator only): a 32-byte header
 *   magic u32 'SIMB' | count i32 | base i64 | epoch i32 | control i32 |
 *   data_len u32 | checksum u32 (FNV-1a of header-with-zero-sum + data)
 * followed by data_len bytes. read() returns views into the buffer; they stay
 * valid until the next append (which may move the buffer).
 */
#ifndef SIM_LOG_H
#define SIM_LOG_H

#include "raft.h"

typedef struct sim_batch {
    int64_t base;
    int32_t count, epoch;
    size_t pos, len; /* bytes in buf */
    uint64_t hash;   /* identity of the batch, for the checkers */
} sim_batch_t;

#define SIM_LOG_MAX_RETAIN 4

typedef struct sim_log sim_log_t;
/* Called before a truncation so the simulator can check it (never below a
 * committed entry). */
typedef void (*sim_log_truncate_hook)(void *ctx, const sim_log_t *log, int64_t offset);

struct sim_log {
    uint8_t *buf;
    size_t len, cap;
    sim_batch_t *b;
    int32_t n, cap_b;
    int32_t n_durable; /* batches [0, n_durable) survive a crash */
    /* Snapshots: batches [0, start_idx) are covered by the latest snapshot and no
     * longer readable (their metadata stays for the checkers). A snapshot's bytes
     * list its batches' (base, count, epoch, hash); it is durable once made. */
    int32_t start_idx;
    int64_t start_offset;
    sm_raft_offset_epoch_t snap_id; /* the latest snapshot; epoch -1: none */
    uint8_t *snap;
    size_t snap_len;
    /* Retention: up to `retain` older snapshots stay readable (oldest first) and
     * the log start only moves to the oldest of them, so a follower that lags by
     * less than that catches up from the log, and a snapshot transfer survives
     * the next few snapshots. retain 0: the log start moves to each snapshot. */
    int32_t retain, n_older;
    struct sim_snap {
        sm_raft_offset_epoch_t id;
        uint8_t *bytes;
        size_t len;
    } older[SIM_LOG_MAX_RETAIN];
    sm_raft_offset_epoch_t start_snap; /* the snapshot the log start sits at */
    sm_raft_offset_epoch_t pend_id; /* snapshot being fetched (.part) */
    uint8_t *pend;
    size_t pend_len, pend_cap;
    sim_log_truncate_hook on_install; /* called before a snapshot replaces the log */
    sim_log_truncate_hook on_truncate;
    void *hook_ctx;
    int64_t appends, flushes;
};

extern const sm_raft_log_ops_t sim_log_ops;

void sim_log_init(sim_log_t *l);
void sim_log_free(sim_log_t *l);
/* Crash: keep the durable batches plus keep_unsynced more (clamped). */
void sim_log_crash(sim_log_t *l, int32_t keep_unsynced);
int64_t sim_log_end(const sim_log_t *l);
int64_t sim_log_durable_end(const sim_log_t *l);
/* Host: snapshot the committed state up to end_offset (rounded down to a batch
 * boundary, and to the durable end) and move the log start to it, or with
 * retain > 0 to the oldest retained snapshot. Returns the snapshot's end offset,
 * or -1 if there is nothing newer than the latest snapshot. */
/* True if a snapshot with this id is kept (the latest or a retained one). */
bool sim_log_has_snapshot(const sim_log_t *l, sm_raft_offset_epoch_t id);
int64_t sim_log_snapshot_create(sim_log_t *l, int64_t end_offset);
/* The batch holding offset, or NULL; durable_only: only a durable batch. */
const sim_batch_t *sim_log_batch_at(const sim_log_t *l, int64_t offset, bool durable_only);

#endif
