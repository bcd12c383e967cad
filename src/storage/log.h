/*
 * log.h - the partition log: an ordered list of segments in Kafka's on-disk
 * format, in <log.dirs>/<topic>-<partition>/:
 *   <20-digit base offset>.log        record batches (magic 2) back to back,
 *                                     stored exactly as received with
 *                                     baseOffset / leader epoch filled in
 *   <20-digit base offset>.index      sparse offset index, 8-byte entries
 *                                     (int32 relative offset, int32 position)
 *   <20-digit base offset>.timeindex  sparse time index, 12-byte entries
 *                                     (int64 timestamp, int32 relative offset)
 *   samsa-log-state                   exact log start offset and recovery
 *                                     point (docs/STORAGE.md)
 *   leader-epoch-checkpoint           Kafka's leader-epoch cache file
 * and, in the log dir that holds the partition directories (logdir.c),
 * Kafka's recovery-point-offset-checkpoint, log-start-offset-checkpoint and
 * the .kafka_cleanshutdown marker.
 *
 * Invariants: segments are contiguous and ordered by base offset; only the
 * last (active) segment grows; every byte below a segment's published size
 * is a whole, validated batch; the log end offset is published only after
 * the bytes that carry it are written, so readers never see a torn batch.
 *
 * Threads: every function is thread-safe (one mutex per log; file I/O for
 * reads and fsync happen outside it). sm_log_flush() may run on a
 * background thread. Slices pin the segment's files, so their fd stays open
 * after a roll, truncation, deletion, eviction from the fd cache or
 * sm_log_close().
 *
 * Errors: a failed write (EIO, ENOSPC) leaves the log as it was and fails
 * that append only; a failed fsync puts the log in a failed state where
 * appends get the error until a later flush rewrites and syncs the unflushed
 * tail (the maintenance pass retries every second). Reads keep working.
 */
#ifndef SM_STORAGE_LOG_H
#define SM_STORAGE_LOG_H

#include "ref.h"
#include "sm_common.h"

typedef struct sm_log_config {
    int64_t segment_bytes;        /* log.segment.bytes, default 1073741824 */
    int64_t segment_ms;           /* log.roll.ms, default 7 days */
    int32_t index_interval_bytes; /* index.interval.bytes, 4096 */
    int32_t segment_index_bytes;  /* segment.index.bytes, 10485760 */
    int64_t flush_messages;       /* flush.messages, default INT64_MAX (never forced);
                                     the log counts records, the broker decides */
    int64_t flush_ms;             /* flush.ms, default INT64_MAX */
    int64_t retention_bytes;      /* -1 = unlimited */
    int64_t retention_ms;         /* 604800000; -1 = unlimited */
    bool log_append_time;         /* message.timestamp.type=LogAppendTime */
    int64_t cache_window_bytes;   /* log.cache.window.bytes: newest bytes of the active
                                     segment left to the page cache; older ones are
                                     written back early and dropped (log_cache.c);
                                     0 = leave it all to the kernel */
} sm_log_config_t;

/* Fill c with Kafka's defaults. */
void sm_log_config_default(sm_log_config_t *c);

typedef struct sm_log sm_log_t;

typedef struct sm_append_info {
    int64_t base_offset, last_offset;
    int64_t log_append_time; /* -1 if CreateTime */
    int64_t log_start_offset;
    int32_t records;
    bool write_behind_due; /* call sm_log_write_behind() on a background worker */
} sm_append_info_t;

/* A byte range of a segment file holding whole batches. fd stays valid until
 * the caller drops ref with sm_ref_release() (ref is NULL when len == 0). */
typedef struct sm_log_slice {
    int fd;
    int64_t file_pos;
    int32_t len;
    sm_ref_t *ref;
    int64_t next_offset; /* after the last batch in the slice (metrics) */
} sm_log_slice_t;

/* Open (creating dir if missing) the log in dir; name ("topic-0") tags log
 * lines. Loads the segments; without a clean shutdown it recovers: every
 * batch from the segment holding the recovery point to the end is validated
 * (sm_batch_validate), the log is truncated at the first bad byte (logging
 * file, offset and bytes dropped) and the indexes of those segments are
 * rebuilt. Indexes that are missing or fail a sanity check are rebuilt in
 * any case. cfg is copied. */
SM_MUST_CHECK sm_err_t sm_log_open(const char *dir, const char *name, const sm_log_config_t *cfg,
                                   sm_log_t **out);

/* Append len bytes of batches (already validated by the caller with
 * sm_batches_validate; framing is re-checked). Patches each batch in place:
 * consecutive base offsets, leader_epoch, and LogAppendTime = now_ms if
 * configured. Writes them verbatim with one write, updates the indexes and
 * rolls the segment first when it is full (segment_bytes, index full) or
 * older than segment_ms. Forces a flush when flush_messages is reached,
 * unless this thread deferred that with sm_log_defer_flush(true). A failed
 * write returns SM_ERR_NOSPC / SM_ERR_IO and changes nothing; a log in the
 * failed state (see Errors above) refuses appends with its error. */
SM_MUST_CHECK sm_err_t sm_log_append(sm_log_t *log, uint8_t *batches, size_t len,
                                     int32_t leader_epoch, int64_t now_ms, sm_append_info_t *out);

/* A follower's append of batches fetched from its leader: they keep the
 * leader's base offsets, leader epochs and timestamps (nothing is patched;
 * the leader-epoch cache follows the batches' epochs). The first batch must
 * start at the log end and each the next offset, epochs never decreasing:
 * else SM_ERR_RANGE and nothing is written. The caller validated them
 * (sm_batch_validate). Otherwise as sm_log_append. */
SM_MUST_CHECK sm_err_t sm_log_append_replica(sm_log_t *log, uint8_t *batches, size_t len,
                                             int64_t now_ms, sm_append_info_t *out);

/* The high watermark the partition layer keeps in the log so that the log
 * dir checkpoints it (replication-offset-checkpoint) with the other
 * offsets: at open, the checkpointed value (at most the log end) or -1 if
 * none. Any thread. */
int64_t sm_log_high_watermark(sm_log_t *log);
void sm_log_set_high_watermark(sm_log_t *log, int64_t hw);

/* ---- the aborted-transaction index (log_txn.c): Kafka's per-segment
 * "<base offset>.txnindex" files of 34-byte entries (int16 version 0,
 * int64 producerId, int64 firstOffset, int64 lastOffset, int64
 * lastStableOffset), one per aborted transaction, in the segment that holds
 * its ABORT marker. read_committed fetches send the entries overlapping
 * what they return so consumers drop the aborted records. */
typedef struct sm_log_aborted {
    int64_t pid;
    int64_t first_offset;
    int64_t last_offset;        /* the ABORT marker's offset */
    int64_t last_stable_offset; /* the LSO once it was aborted */
} sm_log_aborted_t;
/* Add an entry (the marker is already in the log) to the active segment's
 * .txnindex, synced before returning. Entries must come in marker order;
 * one whose marker is not past the last entry's is ignored (SM_OK), so a
 * replay after a crash may add them again. Any thread. */
SM_MUST_CHECK sm_err_t sm_log_add_aborted(sm_log_t *log, const sm_log_aborted_t *a);
/* The entries with last_offset >= from and first_offset < upto, in marker
 * order, into a malloc'ed array (*out; NULL when none). Any thread. */
int sm_log_aborted_txns(sm_log_t *log, int64_t from, int64_t upto, sm_log_aborted_t **out);
/* The log's directory. */
const char *sm_log_dir(const sm_log_t *log);
/* Base offset of the active segment. */
int64_t sm_log_active_base(sm_log_t *log);

/* Write-behind (log_cache.c): start writeback of the active segment's bytes
 * appended since the last call and drop from the page cache what lies more
 * than cache_window_bytes behind its end (and finish off a segment that was
 * rolled since). Only page-cache hints: durability is still decided by
 * sm_log_flush. An append reports write_behind_due once per half window;
 * the caller runs this on a background worker (the syscalls may wait for
 * the block layer). Any thread. */
void sm_log_write_behind(sm_log_t *log);

/* Slice of whole batches starting at the batch that contains offset, from
 * one segment, holding only batches whose last offset is < max_offset (the
 * caller passes the high watermark, or INT64_MAX), at most max_bytes except
 * that with min_one the first batch is returned whole even if larger
 * (KIP-74). offset == end offset -> SM_OK with len 0. offset below the log
 * start or above the end -> SM_ERR_RANGE. Uses the offset index then a short
 * scan of batch headers with pread. */
SM_MUST_CHECK sm_err_t sm_log_read(sm_log_t *log, int64_t offset, int64_t max_offset,
                                   int32_t max_bytes, bool min_one, sm_log_slice_t *out);

int64_t sm_log_start_offset(sm_log_t *log);
/* Log end offset: the next offset to assign. */
int64_t sm_log_end_offset(sm_log_t *log);
/* Bytes in all segments. */
int64_t sm_log_size_bytes(sm_log_t *log);
int sm_log_segment_count(sm_log_t *log);

/* First batch whose maxTimestamp >= ts (time index, then a scan): *offset
 * is max(its base offset, log start), *timestamp its maxTimestamp.
 * SM_ERR_NOT_FOUND if no batch qualifies. */
SM_MUST_CHECK sm_err_t sm_log_offset_for_timestamp(sm_log_t *log, int64_t ts, int64_t *offset,
                                                   int64_t *timestamp);
/* ListOffsets MAX_TIMESTAMP (-3): the record with the largest timestamp
 * (the exact record for uncompressed CreateTime batches, else the batch's
 * base offset). SM_ERR_NOT_FOUND on an empty log. */
SM_MUST_CHECK sm_err_t sm_log_max_timestamp(sm_log_t *log, int64_t *offset, int64_t *timestamp);

/* fdatasync every segment written since the last flush (and their indexes),
 * then persist the new recovery point. Runs its fsyncs outside the log
 * mutex; any thread, typically a background worker. In the failed state it
 * first rewrites the unflushed tail from the file (each batch re-validated)
 * so that the fsync really covers it, and clears the state on success. */
SM_MUST_CHECK sm_err_t sm_log_flush(sm_log_t *log);
/* Records appended since the last completed flush. */
int64_t sm_log_unflushed_messages(sm_log_t *log);
/* Offsets below this are on stable storage. */
int64_t sm_log_durable_offset(sm_log_t *log);
/* True when the broker's periodic flusher should call sm_log_flush: flush_ms
 * has passed with data unflushed, flush_messages is reached, a sealed
 * segment is not synced yet, or the log is in the failed state. Also writes
 * the log dirs' checkpoint files when their interval is due (see
 * sm_log_checkpoint_dirs). */
bool sm_log_flush_due(sm_log_t *log, int64_t now_ms);
/* SM_OK, or the error that put the log in the failed state. */
sm_err_t sm_log_failed(sm_log_t *log);

/* Appends made by the calling thread skip the inline flush.messages flush
 * (the caller runs group commit instead: sm_log_wait_durable). */
void sm_log_defer_flush(bool defer);
/* True when the topic's flush policy (flush.messages) wants the records
 * appended so far on disk before they are acknowledged. */
bool sm_log_sync_required(sm_log_t *log);

/* Group commit. A waiter asks to be told when every offset below target is
 * durable (or the flush that should make it so failed). The memory is the
 * caller's until done() runs; done() runs exactly once, on the thread
 * running sm_log_run_flusher(). */
typedef struct sm_log_waiter sm_log_waiter_t;
struct sm_log_waiter {
    sm_log_waiter_t *next; /* private to the log */
    int64_t target;
    void (*done)(sm_log_waiter_t *w, sm_err_t err);
};
typedef enum sm_log_wait {
    SM_LOG_WAIT_DURABLE = 0, /* already durable: not queued, done() not called */
    SM_LOG_WAIT_QUEUED = 1,  /* queued behind a running flusher */
    SM_LOG_WAIT_START = 2,   /* queued: the caller must run sm_log_run_flusher()
                                (on a background thread) */
} sm_log_wait_t;
sm_log_wait_t sm_log_wait_durable(sm_log_t *log, sm_log_waiter_t *w);
/* Flush until no waiter is left, completing waiters after each fsync: all
 * appends that arrived while one fsync ran share the next one. Background
 * thread; the caller keeps log alive during the call. */
void sm_log_run_flusher(sm_log_t *log);

/* OffsetForLeaderEpoch from the leader-epoch cache: the largest epoch <=
 * epoch and the offset where the next epoch starts (the log end for the
 * latest). SM_ERR_NOT_FOUND when the cache is empty or epoch is older than
 * its first entry (Kafka answers UNDEFINED then). */
SM_MUST_CHECK sm_err_t sm_log_epoch_end_offset(sm_log_t *log, int32_t epoch, int32_t *epoch_out,
                                               int64_t *end_offset);

/* Write recovery-point-offset-checkpoint and log-start-offset-checkpoint in
 * every log dir with open logs (Kafka's periodic checkpoint). Any thread;
 * sm_log_flush_due() calls it every 60 s by itself. */
void sm_log_checkpoint_dirs(void);

/* Drop every batch from the one containing offset (Kafka truncates whole
 * batches) to the end; no-op if offset >= end. Below the log start the log
 * restarts empty at offset. Persists the recovery point before returning. */
SM_MUST_CHECK sm_err_t sm_log_truncate_to(sm_log_t *log, int64_t offset);
/* Drop every batch and restart the log empty at offset (below, inside or
 * beyond the current log): a follower installing a snapshot that ends there.
 * Persists before returning. */
SM_MUST_CHECK sm_err_t sm_log_reset(sm_log_t *log, int64_t offset);
/* DeleteRecords: move the log start offset to new_start (<= end offset,
 * else SM_ERR_RANGE; lower than the current start is a no-op) and delete the
 * whole segments below it (never the active one). */
SM_MUST_CHECK sm_err_t sm_log_delete_records(sm_log_t *log, int64_t new_start);
/* Delete old sealed segments by retention_ms (segment max timestamp older
 * than now_ms - retention_ms) and retention_bytes; *deleted = segments
 * removed (may be NULL). */
SM_MUST_CHECK sm_err_t sm_log_enforce_retention(sm_log_t *log, int64_t now_ms, int *deleted);

/* Live config change; takes effect for the next append/roll. */
void sm_log_set_config(sm_log_t *log, const sm_log_config_t *cfg);
/* Record the duration of each flush's fsyncs in h (metrics; h outlives the
 * log). Before the log is shared with other threads. */
typedef struct sm_histo sm_histo_t;
void sm_log_set_flush_histo(sm_log_t *log, sm_histo_t *h);
/* Write pending index entries and the leader-epoch file, then leave the log
 * dir; when the last log of a log dir closes, the dir syncs its file
 * system once, writes its checkpoint files and the clean-shutdown marker
 * (so closing 10,000 logs costs a handful of fsyncs, not 10,000). A log
 * whose directory is not "<topic>-<partition>" flushes itself instead. No
 * other thread may use log during or after the call. */
void sm_log_close(sm_log_t *log);
/* Topic deletion, first step, at the moment of deletion: rename the
 * directory to "<dir>.<32 hex digits>-delete" (as Kafka does) and drop the
 * log from its log dir's checkpoints, so a new topic of the same name can
 * be created at once even while requests still hold this log; the files go
 * with sm_log_destroy() when the last of them lets go. Writes to the log
 * still land in the renamed files. Any thread; the log stays usable. */
SM_MUST_CHECK sm_err_t sm_log_retire(sm_log_t *log);

/* Start-up: remove what deletions left behind in log_dir ("*-delete"
 * directories whose removal a crash interrupted). Returns how many. */
int sm_log_remove_retired(const char *log_dir);

/* Close without flushing and remove the directory and its files (topic
 * deletion). Slices handed out stay readable until released. */
SM_MUST_CHECK sm_err_t sm_log_destroy(sm_log_t *log);

#endif
