/*
 * cleaner.h - log compaction (Kafka's log cleaner) of one partition log:
 * keep only the latest record of every key, drop tombstones and
 * transaction markers once they are safe to drop, drop aborted records.
 * The algorithm, the files and the crash-safety argument are in
 * docs/STORAGE.md ("Compaction"); cleaner.c says how the code maps to it.
 *
 * Offsets never change: a cleaned log has gaps. Batches keep their base
 * offset and lastOffsetDelta (so a producer's last sequence survives);
 * those that lose records are re-encoded with the original codec and a new
 * CRC; indexes are rebuilt.
 *
 * Threads: sm_log_clean runs on a cleaner thread and takes the log's locks
 * only for short moments (a snapshot of the segment list, pins, and the
 * swap of cleaned segments into the list), so appends and fetches go on
 * while it reads and writes. At most one cleaning of a log at a time
 * (SM_ERR_AGAIN otherwise). The other functions: any thread.
 */
#ifndef SM_STORAGE_CLEANER_H
#define SM_STORAGE_CLEANER_H

#include "log.h"
#include "offset_map.h"

/* A producer that still has state (not expired): the batch ending at
 * last_offset (its last data batch or marker) is kept, emptied if need be,
 * so that its sequence and epoch survive (Kafka's RETAIN_EMPTY). */
typedef struct sm_clean_producer {
    int64_t pid;
    int64_t last_offset;
} sm_clean_producer_t;

typedef struct sm_clean_params {
    /* first dirty offset: the cleaner checkpoint (clamped to the log) */
    int64_t first_dirty;
    /* the caller's bound: nothing at or past it is cleaned (the last
     * stable offset, itself at most the high watermark); INT64_MAX none.
     * The active segment and segments newer than min_compaction_lag_ms
     * (by their largest timestamp) are never cleaned either. */
    int64_t first_uncleanable;
    int64_t min_compaction_lag_ms;
    int64_t delete_retention_ms; /* tombstones and empty markers kept this long after
                                    the cleaning that first sees them */
    int64_t now_ms;              /* wall clock */
    int64_t io_bytes_per_sec;    /* read + write rate limit; <= 0 none */
    int64_t segment_bytes;       /* largest cleaned segment (groups of old ones) */
    const sm_clean_producer_t *producers; /* sorted by pid; may be NULL */
    int nproducers;
    const int *stop;             /* non-zero: give up soon (SM_ERR_CLOSED); may be NULL */
    bool rewrite_clean;          /* rewrite the cleaned part even when nothing is dirty
                                    (a delete horizon passed) */
} sm_clean_params_t;

typedef struct sm_clean_result {
    int64_t first_dirty;   /* where the dirty range started */
    int64_t end_offset;    /* new cleaner checkpoint: [first_dirty, end) was deduplicated */
    bool map_full;         /* the offset map filled before first_uncleanable */
    bool checkpoint_failed; /* cleaner-offset-checkpoint could not be written (logged) */
    int groups;            /* cleaned segments written */
    int segments_in;       /* old segments replaced */
    int64_t bytes_read, bytes_written;
    int64_t records_read, records_kept, batches_emptied;
    int64_t map_keys;
    int64_t next_horizon_ms; /* earliest delete horizon left in the log (INT64_MAX none):
                                cleaning again after it removes more */
} sm_clean_result_t;

/* Clean log with map (cleared here). first_dirty >= the first uncleanable
 * offset: nothing to do (SM_OK, result->groups 0). Persists the new cleaner
 * checkpoint (cleaner-offset-checkpoint in the log dir) on success. Errors:
 * SM_ERR_AGAIN (another cleaning runs, or the segments changed under it:
 * truncation, retention; nothing changed, try later), SM_ERR_CLOSED (stop
 * asked or log closed), I/O errors (the log is left as it was, or, after
 * the point of no return, in the failed state until a restart completes the
 * swap). Cleaner thread. */
SM_MUST_CHECK sm_err_t sm_log_clean(sm_log_t *log, sm_offset_map_t *map,
                                    const sm_clean_params_t *p, sm_clean_result_t *result);

/* What cleaning would cover now (Kafka's LogToClean): bytes of the segments
 * below first_dirty (clean) and from it to the first uncleanable segment
 * (dirty, the cleanable part); the ratio is dirty / (clean + dirty).
 * oldest_dirty_ms: the largest timestamp of the first dirty segment (-1
 * none), for max.compaction.lag.ms. Any thread. */
typedef struct sm_clean_window {
    int64_t first_dirty, first_uncleanable;
    int64_t clean_bytes, dirty_bytes;
    int64_t oldest_dirty_ms;
} sm_clean_window_t;
void sm_log_clean_window(sm_log_t *log, int64_t first_dirty, int64_t first_uncleanable,
                         int64_t min_compaction_lag_ms, int64_t now_ms, sm_clean_window_t *w);

/* The cleaner checkpoint of the log (-1 if never cleaned) and the wall time
 * of its last completed cleaning (-1 never in this process). Any thread. */
int64_t sm_log_cleaner_offset(sm_log_t *log);
int64_t sm_log_last_clean_ms(sm_log_t *log);

#endif
