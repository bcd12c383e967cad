/*
 * log_internal.h - the sm_log struct and helpers shared by the files that
 * implement the partition log (log.c: open/append/read/flush/close;
 * log_load.c: loading and recovery; log_admin.c: truncation, deletion,
 * retention, timestamp lookups). Not for use outside src/storage.
 *
 * Locking: mu guards every field below except those marked atomic, which
 * are written under mu and may be read without it. flush_mu serializes
 * flushes and writes of the state file; lock order is flush_mu then mu.
 * File I/O that may be slow (fsync, reads of batch data) runs outside mu on
 * segments kept alive by a reference.
 */
#ifndef SM_STORAGE_LOG_INTERNAL_H
#define SM_STORAGE_LOG_INTERNAL_H

#include "log.h"
#include "segment.h"

#include <pthread.h>

#define SM_LOG_STATE_FILE "samsa-log-state"

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
    int64_t recovery_point; /* batches below it are durable */
    int64_t state_rp;       /* recovery point in the state file; flush_mu */
    int64_t unflushed;      /* records appended since the last flush; atomic */
    int64_t last_flush_ms;  /* wall clock */
    uint64_t trunc_gen;     /* bumped by truncation, so a flush in flight
                               does not raise the recovery point past it */
    bool state_clean;       /* the state file on disk says clean shutdown;
                               atomic */
    bool closed;
};

static inline sm_segment_t *sm_log_active(sm_log_t *log)
{
    return log->segs[log->nsegs - 1];
}

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

/* Write the state file from the current values; clean marks a clean
 * shutdown. Caller holds flush_mu (and may hold mu). */
SM_MUST_CHECK sm_err_t sm_log_state_write(sm_log_t *log, int64_t start, int64_t rp, bool clean);
/* Read it; *found false if missing or unreadable (logged). */
void sm_log_state_read(const char *dir, const char *name, int64_t *start, int64_t *rp,
                       bool *clean, bool *found);

/* Load segments and recover (log_load.c); fills segs, offsets. */
SM_MUST_CHECK sm_err_t sm_log_load(sm_log_t *log);

#endif
