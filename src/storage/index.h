/*
 * index.h - a sparse segment index: Kafka's .index (offset -> file position)
 * and .timeindex (timestamp -> offset) files.
 *
 * File format, big-endian, entries sorted by key, no header:
 *   .index      8 bytes: int32 relative offset, int32 position in the .log
 *   .timeindex 12 bytes: int64 timestamp, int32 relative offset
 * Both are modelled as (key int64, value int32) pairs: for the offset index
 * key = relative offset and value = position; for the time index key =
 * timestamp and value = relative offset. Keys strictly increase.
 *
 * Storage choice: no mmap and no preallocation. New entries collect in a
 * small in-memory buffer (at most SM_INDEX_PENDING entries, allocated on
 * first use) and are appended to the file with pwrite when it fills, when
 * the segment rolls and on flush/close. Lookups binary-search the file with
 * pread (page cache) plus the buffer, so an idle partition holds no index
 * memory and a sealed segment costs only its file descriptors.
 *
 * Threads: mutation runs under the owning log's mutex. Lookups run outside
 * it on an sm_index_snap_t copied under the mutex: entries below the
 * snapshot's disk count are never rewritten except by truncation.
 * Memory: an idle index is 40 bytes (no buffer, no fd: the file is opened
 * on demand through the segment file cache, segfiles.h).
 */
#ifndef SM_STORAGE_INDEX_H
#define SM_STORAGE_INDEX_H

#include "sm_common.h"

#define SM_INDEX_PENDING 32

typedef enum sm_index_kind {
    SM_INDEX_OFFSET = 0, /* 8-byte entries */
    SM_INDEX_TIME = 1,   /* 12-byte entries */
} sm_index_kind_t;

typedef struct sm_index_entry {
    int64_t key;
    int32_t value;
} sm_index_entry_t;

typedef struct sm_index {
    uint8_t kind;       /* sm_index_kind_t */
    int32_t ndisk;      /* entries in the file */
    int32_t npending;   /* entries in pending[] not yet written */
    int32_t max_entries;
    sm_index_entry_t *pending; /* SM_INDEX_PENDING slots, NULL until needed */
    sm_index_entry_t last;     /* newest entry; valid when count > 0 */
} sm_index_t;

/* A copy of an index's state for lock-free lookups; fd belongs to files the
 * caller has pinned (segfiles.h) for as long as it looks up. */
typedef struct sm_index_snap {
    int fd;
    uint8_t kind;
    int32_t ndisk, npending;
    sm_index_entry_t pending[SM_INDEX_PENDING];
} sm_index_snap_t;

static inline int32_t sm_index_count(const sm_index_t *ix) { return ix->ndisk + ix->npending; }
static inline bool sm_index_full(const sm_index_t *ix) { return sm_index_count(ix) >= ix->max_entries; }
static inline size_t sm_index_entry_size(sm_index_kind_t k) { return k == SM_INDEX_OFFSET ? 8 : 12; }

/* The index does not own its file: every function doing I/O takes the fd
 * of the pinned segment files (segfiles.h), so the file may be closed and
 * reopened by the fd cache between calls. */

/* An empty index of the given kind. */
void sm_index_init(sm_index_t *ix, sm_index_kind_t kind, int32_t max_entries);
/* Read the entry count and the last entry from the file at fd. Fails with
 * SM_ERR_CORRUPT if the size is not a whole number of entries. */
SM_MUST_CHECK sm_err_t sm_index_load(sm_index_t *ix, int fd);
/* Free the pending buffer (entries not written are lost). */
void sm_index_close(sm_index_t *ix);
/* Read entry i (disk or pending). */
SM_MUST_CHECK sm_err_t sm_index_get(const sm_index_t *ix, int fd, int32_t i, sm_index_entry_t *e);
/* Append an entry if its key is larger than the last one (else ignored). */
SM_MUST_CHECK sm_err_t sm_index_append(sm_index_t *ix, int fd, int64_t key, int32_t value);
/* Write pending entries to the file (no fsync). */
SM_MUST_CHECK sm_err_t sm_index_write_pending(sm_index_t *ix, int fd);
/* Keep only the first n entries (n <= count). */
SM_MUST_CHECK sm_err_t sm_index_truncate(sm_index_t *ix, int fd, int32_t n);
/* Drop every entry and empty the file (rebuild from scratch). */
SM_MUST_CHECK sm_err_t sm_index_reset(sm_index_t *ix, int fd);
/* Free the pending buffer when it is empty (sealed segments). */
void sm_index_release_buffer(sm_index_t *ix);

void sm_index_snapshot(const sm_index_t *ix, int fd, sm_index_snap_t *s);
/* Largest entry with key <= key. SM_ERR_NOT_FOUND if none (or the index
 * was truncated under the snapshot). Any thread. */
SM_MUST_CHECK sm_err_t sm_index_snap_lookup(const sm_index_snap_t *s, int64_t key,
                                            sm_index_entry_t *e);

#endif
