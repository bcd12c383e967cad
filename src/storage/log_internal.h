/*
 * log_internal.h - the sm_log struct and helpers shared by the files that
 * implement the partition log (log.c: open/append/read/close; log_flush.c:
 * flush, group commit and repair after a failed fsync; log_load.c: loading
 * and recovery; log_admin.c: truncation, deletion, retention, timestamp
 * lookups; log_epoch.c: the leader-epoch cache; logdir.c: per-log-dir
 * checkpoints and the clean-shutdown marker). Not for use outside
 * src/storage.
 *
 * Locking: mu guards every field below except those marked atomic, which
 * are written under mu and may be read without it. flush_mu serializes
 * flushes and writes of the state file; lock order is flush_mu, then mu,
 * then the segment file cache mutex or a log dir's mutex (both leaves). File I/O that may
 * be slow (fsync, reads of batch data) runs outside mu on pinned files.
 */
#ifndef SM_STORAGE_LOG_INTERNAL_H
#define SM_STORAGE_LOG_INTERNAL_H

#include "../core/histo.h"
#include "log.h"
#include "segment.h"

#include <pthread.h>

#define SM_LOG_STATE_FILE "samsa-log-state"
#define SM_LOG_EPOCH_FILE "leader-epoch-checkpoint"

typedef struct sm_logdir sm_logdir_t;

typedef struct sm_epoch_entry {
    int32_t epoch;
    int64_t start_offset;
} sm_epoch_entry_t;

struct sm_log {
    pthread_mutex_t mu;
    pthread_mutex_t flush_mu;
    char *dir;
    char *name;
    sm_log_config_t cfg;
    sm_segment_t **segs; /* ordered by base offset; last is active; never empty */
    int nsegs, segs_cap;
    int64_t start_offset;   /* atomic */
    int64_t end_offset;     /* atomic */
    int64_t recovery_point; /* batches below it are durable; atomic */
    int64_t high_watermark; /* kept for the partition layer and checkpointed; -1 none; atomic */
    int64_t state_rp;       /* recovery point in the state file; flush_mu */
    int64_t unflushed;      /* records appended since the last flush; atomic */
    int64_t last_flush_ms;  /* wall clock */
    uint64_t trunc_gen;     /* bumped by truncation, so a flush in flight
                               does not raise the recovery point past it */
    bool dirty;             /* changed since opened or last fully synced */
    bool closed;
    bool loaded;            /* open finished (the log dir may read offsets); atomic */
    /* A flush failed (fsync error): appends are refused with this error
     * until a repair flush succeeds (log_flush.c). Reads go on. atomic. */
    sm_err_t failed;
    /* group commit: waiters for durability, ordered by arrival; one
     * flusher at a time works the queue (log_flush.c) */
    sm_log_waiter_t *waiters, *waiters_tail;
    bool flusher_active;
    /* leader-epoch cache (log_epoch.c): entries with increasing epochs and
     * start offsets */
    sm_epoch_entry_t *epochs;
    int nepochs, epochs_cap;
    bool epochs_dirty;      /* not yet written to leader-epoch-checkpoint */
    /* membership of the log dir (logdir.c); NULL when the directory name is
     * not "<topic>-<partition>" */
    sm_logdir_t *ldir;
    /* write-behind (log_cache.c): in the segment with base offset wb_base,
     * writeback was started below wb_started and the cache dropped below
     * wb_dropped; wb_queued while a sm_log_write_behind call is owed */
    int64_t wb_base, wb_started, wb_dropped;
    bool wb_queued;
    /* aborted-transaction index (log_txn.c): every segment's .txnindex
     * entries, ordered by last offset */
    sm_log_aborted_t *aborted;
    int naborted, aborted_cap;
    char *topic;
    int32_t partition;
    /* log cleaner (cleaner.c): the cleaner checkpoint (-1 none), the wall
     * time of the last cleaning (-1 none), and whether one runs; atomics */
    int64_t cleaner_offset;
    int64_t last_clean_ms;
    bool cleaning;
    sm_histo_t *flush_histo; /* fsync latency (metrics), owned by the caller; may be NULL */
};

static inline sm_segment_t *sm_log_active(sm_log_t *log)
{
    return log->segs[log->nsegs - 1];
}

/* Load every segment's .txnindex (log_txn.c), dropping entries at or past
 * the log end. Before the log is shared. */
void sm_log_aborted_load(sm_log_t *log);
/* Forget entries whose marker is at or past new_end (truncation); rewrites
 * the affected files. Under mu. */
void sm_log_aborted_truncate(sm_log_t *log, int64_t new_end);
/* The cleaner replaced the segments holding markers in [lo, hi): forget the
 * entries there and insert a[0..n) (sorted, inside [lo, hi)). The files are
 * already in place. Under mu. */
void sm_log_aborted_replace(sm_log_t *log, int64_t lo, int64_t hi, const sm_log_aborted_t *a,
                            int n);

/* Index of the segment holding offset: the last with base <= offset (0 if
 * offset is below every base). Under mu. */
int sm_log_seg_find(sm_log_t *log, int64_t offset);
/* Append seg to the list (takes over the caller's reference). Under mu. */
void sm_log_seg_push(sm_log_t *log, sm_segment_t *seg);
/* Remove segments [from, from + n) from the list, renaming their files to
 * *.deleted; their references move to out[] (caller finishes with
 * sm_log_segs_finish_delete outside mu). Under mu. */
void sm_log_segs_remove(sm_log_t *log, int from, int n, sm_segment_t **out);
void sm_log_segs_finish_delete(sm_segment_t **segs, int n);

/* Write the state file (log start, recovery point). Caller holds flush_mu
 * (and may hold mu). */
SM_MUST_CHECK sm_err_t sm_log_state_write(sm_log_t *log, int64_t start, int64_t rp);
/* Read it; *found false if missing or unreadable (logged). */
void sm_log_state_read(const char *dir, const char *name, int64_t *start, int64_t *rp,
                       bool *found);

/* Load segments and recover (log_load.c); fills segs, offsets. hint: what
 * the log dir's checkpoints say about this log (logdir.c). */
typedef struct sm_log_hint {
    bool clean;          /* the log dir was shut down cleanly with this log */
    bool have_rp, have_start, have_hw;
    int64_t rp, start;   /* checkpointed recovery point / log start offset */
    int64_t hw;          /* checkpointed high watermark (replication-offset-checkpoint) */
    bool have_cleaner;
    int64_t cleaner;     /* cleaner-offset-checkpoint */
} sm_log_hint_t;
SM_MUST_CHECK sm_err_t sm_log_load(sm_log_t *log, const sm_log_hint_t *hint);

/* Write-behind marks of a freshly loaded log: start at the end of the
 * active segment (what was there before is not this process's to drop).
 * Before the log is shared (log_cache.c). */
void sm_log_write_behind_init(sm_log_t *log);
/* After an append to seg (under mu): whether a write-behind pass is owed;
 * marks it queued (log_cache.c). */
bool sm_log_write_behind_check(sm_log_t *log, const sm_segment_t *seg);

/* ---- leader epochs (log_epoch.c) */
/* Read leader-epoch-checkpoint (missing or unreadable = empty, logged). */
void sm_log_epochs_load(sm_log_t *log);
/* Note that offset starts epoch (ignored unless epoch is newer). Under mu. */
void sm_log_epochs_assign(sm_log_t *log, int32_t epoch, int64_t offset);
/* Forget entries at or after end (truncation). Under mu. */
void sm_log_epochs_truncate_end(sm_log_t *log, int64_t end);
/* Move entries below the new log start up to it. Under mu. */
void sm_log_epochs_truncate_start(sm_log_t *log, int64_t start);
/* Write the file if dirty; sync = fsync it (else the log dir syncs the
 * file system at shutdown). Holds flush_mu; takes mu briefly. */
SM_MUST_CHECK sm_err_t sm_log_epochs_persist(sm_log_t *log, bool sync);

/* ---- log dir membership (logdir.c) */
/* Join the log dir that holds log->dir (parsing topic and partition from
 * its name) and fill *hint from the dir's checkpoints. */
void sm_logdir_attach(sm_log_t *log, sm_log_hint_t *hint);
/* Leave it: clean = every byte below end is written (not necessarily
 * synced: the dir syncs the file system before it writes its
 * clean-shutdown marker). removed = the log was deleted. */
void sm_logdir_detach(sm_log_t *log, bool clean, int64_t start, int64_t durable_rp, int64_t end,
                      bool removed);

/* Rewrite the checkpoint files of log's dir now (truncation lowered the
 * recovery point: the file must not keep a higher one). Any locks held. */
SM_MUST_CHECK sm_err_t sm_logdir_checkpoint(sm_log_t *log);
/* Rewrite the log dir's cleaner-offset-checkpoint with every log's cleaner
 * offset (after a cleaning). Any locks held. */
SM_MUST_CHECK sm_err_t sm_logdir_cleaner_checkpoint(sm_log_t *log);
/* sm_log_checkpoint_dirs() when its interval has passed (logdir.c). */
void sm_log_checkpoint_dirs_maybe(int64_t now_ms);

#endif
