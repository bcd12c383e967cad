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
    int fd;             /* -1 when not open */
    uint8_t kind;       /* sm_index_kind_t */
    int32_t ndisk;      /* entries in the file */
    int32_t npending;   /* entries in pending[] not yet written */
    int32_t max_entries;
    sm_index_entry_t *pending; /* SM_INDEX_PENDING slots, NULL until needed */
    sm_index_entry_t last;     /* newest entry; valid when count > 0 */
} sm_index_t;

/* A copy of an index's state for lock-free lookups. */
typedef struct sm_index_snap {
    int fd;
    uint8_t kind;
    int32_t ndisk, npending;
    sm_index_entry_t pending[SM_INDEX_PENDING];
} sm_index_snap_t;

static inline int32_t sm_index_count(const sm_index_t *ix) { return ix->ndisk + ix->npending; }
static inline bool sm_index_full(const sm_index_t *ix) { return sm_index_count(ix) >= ix->max_entries; }
static inline size_t sm_index_entry_size(sm_index_kind_t k) { return k == SM_INDEX_OFFSET ? 8 : 12; }

/* Open (creating if missing) the index file at path. *existed tells whether
 * it was already there. Fails with SM_ERR_CORRUPT if the file size is not a
 * whole number of entries (the fd stays open, so the caller can reset it). */
SM_MUST_CHECK sm_err_t sm_index_open(sm_index_t *ix, const char *path, sm_index_kind_t kind,
                                     int32_t max_entries, bool *existed);
void sm_index_close(sm_index_t *ix);
/* Read entry i (disk or pending). */
SM_MUST_CHECK sm_err_t sm_index_get(const sm_index_t *ix, int32_t i, sm_index_entry_t *e);
/* Append an entry if its key is larger than the last one (else ignored). */
SM_MUST_CHECK sm_err_t sm_index_append(sm_index_t *ix, int64_t key, int32_t value);
/* Write pending entries to the file (no fsync). */
SM_MUST_CHECK sm_err_t sm_index_write_pending(sm_index_t *ix);
/* Keep only the first n entries (n <= count). */
SM_MUST_CHECK sm_err_t sm_index_truncate(sm_index_t *ix, int32_t n);
/* Drop every entry and empty the file (rebuild from scratch). */
SM_MUST_CHECK sm_err_t sm_index_reset(sm_index_t *ix);
/* Number of leading entries whose key < key_limit (for truncation). */
SM_MUST_CHECK sm_err_t sm_index_count_below(const sm_index_t *ix, int64_t key_limit, int32_t *n);
/* Free the pending buffer when it is empty (sealed segments). */
void sm_index_release_buffer(sm_index_t *ix);
/* fdatasync the file (pending entries are written first by the caller). */
SM_MUST_CHECK sm_err_t sm_index_sync(sm_index_t *ix);

void sm_index_snapshot(const sm_index_t *ix, sm_index_snap_t *s);
/* Largest entry with key <= key. SM_ERR_NOT_FOUND if none (or the index
 * was truncated under the snapshot). Any thread. */
SM_MUST_CHECK sm_err_t sm_index_snap_lookup(const sm_index_snap_t *s, int64_t key,
                                            sm_index_entry_t *e);

#endif
