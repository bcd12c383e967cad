/*
 * segfiles.h - the open files of a segment (.log, .index, .timeindex) and
 * the broker-wide cache that bounds how many segments have them open.
 *
 * Why: a broker with 10,000 partitions holds at least 10,000 segments; three
 * fds each would exceed common RLIMIT_NOFILE values. Files are therefore
 * opened lazily and closed when idle: every segment whose files are open
 * sits in one LRU list, and opening one more than the budget closes the
 * least recently used (the budget is a count of segments, 3 fds each).
 *
 * Ownership: sm_segfiles_t is refcounted. The cache holds one reference
 * for a segment whose files are open; every user pins the files
 * (sm_segfiles_pin, a new reference) for as long as it uses the fds, so
 * eviction only drops the cache's reference and the fds close when the
 * last user releases them. A read slice handed to the network layer holds
 * such a reference, so sendfile never meets a closed or reused fd.
 *
 * The files are reopened by path, so a segment may be pinned only while
 * its files still have their names: under the owning log's mutex, while
 * the segment is in the log's list (or before the log is shared). Pins
 * already held stay valid after a rename or unlink.
 *
 * Locking: one cache mutex guards every segment's `files` pointer and LRU
 * links. It is taken after a log's mutex and never the other way round;
 * opening and closing files happen outside it.
 *
 * Budget: SAMSA_MAX_OPEN_SEGMENTS from the environment if set, else three
 * quarters of RLIMIT_NOFILE divided by three (at least 16), or what
 * sm_segfiles_set_budget() sets. Any thread.
 */
#ifndef SM_STORAGE_SEGFILES_H
#define SM_STORAGE_SEGFILES_H

#include "ref.h"
#include "sm_common.h"

typedef struct sm_segment sm_segment_t;

typedef struct sm_segfiles {
    sm_ref_t ref;
    int log_fd, oidx_fd, tidx_fd;
} sm_segfiles_t;

/* Pin seg's files, opening them if they are closed: .log must exist
 * (SM_ERR_NOT_FOUND otherwise); a missing index file is created and
 * reported through *index_created (may be NULL). create: open the .log with
 * O_CREAT|O_TRUNC and truncate the indexes (a new segment). Caller holds the
 * owning log's mutex (or owns the log exclusively). */
SM_MUST_CHECK sm_err_t sm_segfiles_pin(sm_segment_t *seg, bool create, sm_segfiles_t **out,
                                       bool *index_created);
static inline sm_segfiles_t *sm_segfiles_keep(sm_segfiles_t *f)
{
    sm_ref_keep(&f->ref);
    return f;
}
static inline void sm_segfiles_release(sm_segfiles_t *f)
{
    if (f)
        sm_ref_release(&f->ref);
}

/* Drop the cache's reference to seg's files and take it out of the LRU
 * (segment freed, files renamed for deletion). Any thread. */
void sm_segfiles_forget(sm_segment_t *seg);

/* Budget in segments (>= 1); returns the previous one. */
int sm_segfiles_set_budget(int max_open_segments);
/* Segments whose files the cache holds open now. */
int sm_segfiles_open_count(void);

#endif
