/*
 * segment.h - one log segment: <base>.log with its .index and .timeindex
 * (formats in index.h and batch.h), plus the batch-header scanner that the
 * read path, recovery and index rebuilds share.
 *
 * A segment is refcounted: the log holds one reference while the segment is
 * in its list. Its files are opened on demand through the segment file
 * cache (segfiles.h): code that does I/O pins them (sm_segfiles_pin) and
 * every slice handed to a reader holds a pin, so an fd outlives rolls,
 * truncation, deletion and eviction from the cache (deleted files are
 * unlinked by name; the space is freed when the last pin closes the fd).
 *
 * Invariants (under the owning log's mutex): bytes [0, size) of the .log
 * are whole batches with increasing offsets >= base_offset; index entries
 * point at batch starts below size; end_offset is the offset after the
 * last batch; max_ts/max_ts_offset describe the batch with the largest
 * maxTimestamp (used for the time index, retention and ListOffsets -3).
 * Relative offsets and positions are int32, so a segment never grows past
 * INT32_MAX bytes or offsets.
 */
#ifndef SM_STORAGE_SEGMENT_H
#define SM_STORAGE_SEGMENT_H

#include "batch.h"
#include "index.h"
#include "ref.h"
#include "segfiles.h"
#include "sm_common.h"

/* Largest batch recovery will read into memory to validate (a limit on
 * everything: a corrupt length must not make us allocate gigabytes). */
#define SM_SEGMENT_MAX_BATCH_BYTES (256 * 1024 * 1024)
#define SM_SEGMENT_SCAN_BUF 4096

struct sm_segment {
    sm_ref_t ref;
    int64_t base_offset;
    int64_t size;            /* bytes of whole, published batches */
    int64_t end_offset;      /* offset after the last batch (base_offset if empty) */
    int64_t max_ts;          /* largest batch maxTimestamp; -1 if none */
    int64_t max_ts_offset;   /* last offset of the batch with max_ts */
    int64_t roll_base_ms;    /* log.roll.ms counts from here; -1 = first append */
    int64_t bytes_since_index;
    sm_index_t oidx, tidx;
    char *path;              /* "<dir>/<20-digit base offset>", no suffix */
    /* segment file cache (segfiles.c), guarded by its mutex */
    sm_segfiles_t *files;    /* open files, or NULL when closed */
    struct sm_segment *lru_prev, *lru_next;
};

/* Header scanner over [pos, end) of a .log fd; buffers up to
 * SM_SEGMENT_SCAN_BUF bytes per pread, or only a header when batches are
 * larger than half the buffer (so scanning big batches reads ~61 bytes
 * each, not 4 KiB). Lives on the caller's stack. */
typedef struct sm_seg_scan {
    int fd;
    int64_t pos, end;
    int64_t buf_pos;
    size_t buf_len;
    int64_t last_total; /* size of the previous batch */
    uint8_t buf[SM_SEGMENT_SCAN_BUF];
} sm_seg_scan_t;

void sm_seg_scan_init(sm_seg_scan_t *sc, int fd, int64_t pos, int64_t end);
/* Next batch header: SM_OK with *pos = its position (the scanner moves past
 * it); SM_ERR_NOT_FOUND at end; SM_ERR_CORRUPT if the bytes at *pos are not
 * a whole magic-2 batch inside [pos, end); SM_ERR_IO. Any thread. */
SM_MUST_CHECK sm_err_t sm_seg_scan_next(sm_seg_scan_t *sc, sm_batch_info_t *b, int64_t *pos);

/* "<dir>/<20-digit base>" */
char *sm_segment_path(const char *dir, int64_t base_offset);

/* Pin the segment's files (segfiles.h); under the owning log's mutex. */
static inline sm_err_t sm_segment_pin(sm_segment_t *seg, sm_segfiles_t **out)
{
    return sm_segfiles_pin(seg, false, out, NULL);
}

/* Create a new empty segment (files truncated if they exist). */
SM_MUST_CHECK sm_err_t sm_segment_create(const char *dir, int64_t base_offset,
                                         int32_t segment_index_bytes, sm_segment_t **out);
/* Open an existing segment. *indexes_ok is false when an index file was
 * missing, had a partial entry or failed the sanity check against the log
 * size; the caller then rebuilds (sm_segment_rebuild). Sets max_ts from the
 * time index; end_offset is unknown until sm_segment_load_tail/rebuild. */
SM_MUST_CHECK sm_err_t sm_segment_load(const char *dir, int64_t base_offset,
                                       int32_t segment_index_bytes, sm_segment_t **out,
                                       bool *indexes_ok);

static inline sm_segment_t *sm_segment_keep(sm_segment_t *s)
{
    sm_ref_keep(&s->ref);
    return s;
}
static inline void sm_segment_release(sm_segment_t *s)
{
    if (s)
        sm_ref_release(&s->ref);
}

/* Compute end_offset, max_ts and bytes_since_index of a segment whose
 * indexes are trusted: start at the last offset-index entry and scan the
 * headers after it. SM_ERR_CORRUPT if the tail does not parse. */
SM_MUST_CHECK sm_err_t sm_segment_load_tail(sm_segment_t *seg);

/* Rebuild both indexes by scanning the whole .log. Offsets must increase
 * (they may jump: compacted logs have gaps). With validate (crash
 * recovery) every batch
 * whose base offset is >= validate_from is read and checked with
 * sm_batch_validate; batches below it (already durable: below the recovery
 * point) only have their framing checked, which costs one small read per
 * batch instead of reading the data. Without validate only the framing is
 * checked. The .log is truncated at the
 * first bad byte; *dropped gets the bytes removed, *validated (may be NULL)
 * the bytes read and validated.
 * on_batch (may be NULL) sees every batch kept (recovery rebuilds the
 * leader-epoch cache from it). name tags log lines. */
SM_MUST_CHECK sm_err_t sm_segment_rebuild(sm_segment_t *seg, const char *name, bool validate,
                                          int64_t validate_from, int32_t index_interval_bytes,
                                          int64_t *dropped, int64_t *validated,
                                          void (*on_batch)(void *ctx, const sm_batch_info_t *b),
                                          void *ctx);

/* Record the batch just written at pos in the indexes (every
 * index_interval_bytes) and the max timestamp; f is the pinned files. */
SM_MUST_CHECK sm_err_t sm_segment_note_batch(sm_segment_t *seg, const sm_segfiles_t *f,
                                             const sm_batch_info_t *b, int64_t pos,
                                             int32_t index_interval_bytes);
/* The segment stops being active: final time-index entry, pending entries
 * written. Also used at a clean close of the active segment (Kafka adds the
 * final time-index entry then too), so a clean open knows its max
 * timestamp without a scan. */
SM_MUST_CHECK sm_err_t sm_segment_seal(sm_segment_t *seg);
/* Write pending index entries (under the mutex). */
SM_MUST_CHECK sm_err_t sm_segment_write_indexes(sm_segment_t *seg);
/* Write pending index entries and fdatasync both index files. */
SM_MUST_CHECK sm_err_t sm_segment_sync_indexes(sm_segment_t *seg);

/* Position of the batch containing offset (the first batch whose last
 * offset >= offset), using an index snapshot taken under the mutex and a
 * header scan limited to size. SM_ERR_NOT_FOUND if no batch in [0, size)
 * reaches offset. sc is left just after the found batch. Any thread. */
SM_MUST_CHECK sm_err_t sm_segment_locate(int fd, int64_t base_offset, int64_t size,
                                         const sm_index_snap_t *oidx, int64_t offset,
                                         sm_seg_scan_t *sc, sm_batch_info_t *b, int64_t *pos);

/* Cut the segment at pos (a batch start): .log, index entries, end_offset
 * and max_ts are brought back consistent. */
SM_MUST_CHECK sm_err_t sm_segment_truncate(sm_segment_t *seg, int64_t pos);

/* Rename the files to "<name>.deleted" (fast, under the mutex) so a new
 * segment can reuse the base offset; sm_segment_unlink_deleted() removes
 * them later outside the mutex. */
SM_MUST_CHECK sm_err_t sm_segment_mark_deleted(sm_segment_t *seg);
void sm_segment_unlink_deleted(const char *path);

#endif
