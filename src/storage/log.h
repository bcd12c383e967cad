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
 *   samsa-log-state                   log start offset, recovery point and
 *                                     the clean-shutdown flag (docs/STORAGE.md)
 *
 * Invariants: segments are contiguous and ordered by base offset; only the
 * last (active) segment grows; every byte below a segment's published size
 * is a whole, validated batch; the log end offset is published only after
 * the bytes that carry it are written, so readers never see a torn batch.
 *
 * Threads: every function is thread-safe (one mutex per log; file I/O for
 * reads and fsync happen outside it). sm_log_flush() may run on a
 * background thread. Slices hold a segment reference, so their fd stays open
 * after a roll, truncation, deletion or sm_log_close().
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
    int64_t flush_messages;       /* flush.messages, default INT64_MAX (never forced) */
    int64_t flush_ms;             /* flush.ms, default INT64_MAX */
    int64_t retention_bytes;      /* -1 = unlimited */
    int64_t retention_ms;         /* 604800000; -1 = unlimited */
    bool log_append_time;         /* message.timestamp.type=LogAppendTime */
} sm_log_config_t;

/* Fill c with Kafka's defaults. */
void sm_log_config_default(sm_log_config_t *c);

typedef struct sm_log sm_log_t;

typedef struct sm_append_info {
    int64_t base_offset, last_offset;
    int64_t log_append_time; /* -1 if CreateTime */
    int64_t log_start_offset;
    int32_t records;
} sm_append_info_t;

/* A byte range of a segment file holding whole batches. fd stays valid until
 * the caller drops ref with sm_ref_release() (ref is NULL when len == 0). */
typedef struct sm_log_slice {
    int fd;
    int64_t file_pos;
    int32_t len;
    sm_ref_t *ref;
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
 * older than segment_ms. Forces a flush when flush_messages is reached. */
SM_MUST_CHECK sm_err_t sm_log_append(sm_log_t *log, uint8_t *batches, size_t len,
                                     int32_t leader_epoch, int64_t now_ms, sm_append_info_t *out);

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
 * mutex; any thread, typically a background worker. */
SM_MUST_CHECK sm_err_t sm_log_flush(sm_log_t *log);
/* Records appended since the last completed flush. */
int64_t sm_log_unflushed_messages(sm_log_t *log);
/* True if flush_ms has passed since the last flush and data is unflushed
 * (for the broker's periodic flusher). */
bool sm_log_flush_due(sm_log_t *log, int64_t now_ms);

/* Drop every batch from the one containing offset (Kafka truncates whole
 * batches) to the end; no-op if offset >= end. Below the log start the log
 * restarts empty at offset. Persists the recovery point before returning. */
SM_MUST_CHECK sm_err_t sm_log_truncate_to(sm_log_t *log, int64_t offset);
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
/* Flush, write pending index entries and the clean-shutdown state, free. No
 * other thread may use log during or after the call. */
void sm_log_close(sm_log_t *log);
/* Close without flushing and remove the directory and its files (topic
 * deletion). Slices handed out stay readable until released. */
SM_MUST_CHECK sm_err_t sm_log_destroy(sm_log_t *log);

#endif
