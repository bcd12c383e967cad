/*
 * log_cache.c - write-behind: how much of a partition's freshly written
 * data stays in the page cache.
 *
 * Left alone, every byte appended stays in the page cache as a dirty page
 * until the kernel's flusher writes it back (after dirty_expire, or when
 * the dirty limits are hit), and then as a clean page until memory runs
 * short. A broker taking 1 GB/s therefore asks the kernel for 1 GB/s of
 * fresh pages. Where free memory is cheap that costs little; in a VM whose
 * free pages are handed back to the host (virtio-balloon free page
 * reporting, as on the development machines) every fresh page is a host
 * page fault, and writing into new page-cache pages runs at a fifth of the
 * speed of writing into recycled ones (docs/PERFORMANCE.md measures both).
 * The dirty backlog also makes every later fsync (acks=all with a flush
 * policy, the metadata log, start-up) wait behind it.
 *
 * So each partition keeps only the newest cache_window_bytes of its active
 * segment to the kernel's discretion. Every half window appended, a pass
 * (sm_log_write_behind, on a background worker):
 *   1. starts writeback of the bytes appended since the previous pass
 *      (sync_file_range SYNC_FILE_RANGE_WRITE: queue the I/O, do not wait);
 *   2. drops from the page cache the range that ends a whole window behind
 *      the segment's end (posix_fadvise DONTNEED). Its writeback was started
 *      at least one pass earlier, so it is normally clean by now; pages
 *      still dirty or under writeback are skipped by the kernel, and the
 *      next pass tries the previous half window again before moving on.
 * Freed pages go straight back to the allocator, and the next appends
 * reuse them while they are still backed. Consumers at the tail (within
 * the window) read from the cache as before; readers further behind read
 * from disk, which puts the pages back into the cache for the readers after
 * them (the pass only drops ranges just behind the writer, never again).
 *
 * Durability does not change: these are hints. No WAIT flag is ever given
 * to sync_file_range (see sm_file_writeback_start): waiting there would
 * consume the file's writeback-error state and could let a later fdatasync
 * report success after an I/O error. fsync (sm_log_flush) stays the only
 * thing that makes a byte durable.
 *
 * When the active segment rolls, the next pass finishes the previous one:
 * writeback of its last bytes, and the drop of all but its last window.
 *
 * Locking: the log's mu while reading and updating the wb_* fields and
 * pinning segment files; the syscalls run outside it on the pinned fds.
 */
#define _GNU_SOURCE
#include "log_internal.h"

#include "file.h"
#include "../core/log.h"

#include <inttypes.h>

#define PAGE_BYTES 4096

static int64_t page_floor(int64_t v)
{
    return v & ~(int64_t)(PAGE_BYTES - 1);
}

void sm_log_write_behind_init(sm_log_t *log)
{
    sm_segment_t *seg = sm_log_active(log);
    log->wb_base = seg->base_offset;
    log->wb_started = log->wb_dropped = page_floor(seg->size);
    log->wb_queued = false;
}

bool sm_log_write_behind_check(sm_log_t *log, const sm_segment_t *seg)
{
    int64_t window = log->cfg.cache_window_bytes;
    if (window <= 0 || log->wb_queued)
        return false;
    int64_t half = window / 2 > PAGE_BYTES ? window / 2 : PAGE_BYTES;
    int64_t started = seg->base_offset == log->wb_base ? log->wb_started : 0;
    if (seg->size - started < half)
        return false;
    log->wb_queued = true;
    return true;
}

/* The new marks after a pass over a segment of size bytes. */
static int64_t started_mark(int64_t size, int64_t started)
{
    return page_floor(size) > started ? page_floor(size) : started;
}

static int64_t dropped_mark(int64_t size, int64_t dropped, int64_t window)
{
    int64_t to = page_floor(size - window);
    return to > dropped ? to : dropped;
}

/* The work of one segment: writeback of [started, size), then the drop of
 * [dropped - half window, size - window). */
static void write_behind_range(int fd, int64_t size, int64_t started, int64_t dropped,
                               int64_t window)
{
    int64_t to = started_mark(size, started);
    if (to > started)
        sm_file_writeback_start(fd, started, to - started);
    int64_t drop_to = dropped_mark(size, dropped, window);
    /* one half window of retry: pages that were still under writeback
     * when the previous pass came by */
    int64_t drop_from = page_floor(dropped - window / 2 > 0 ? dropped - window / 2 : 0);
    if (drop_to > drop_from)
        sm_file_cache_drop(fd, drop_from, drop_to - drop_from);
}

void sm_log_write_behind(sm_log_t *log)
{
    sm_segfiles_t *cur = NULL, *prev = NULL;
    int64_t window, size, started, dropped;
    int64_t prev_size = 0, prev_started = 0, prev_dropped = 0;

    pthread_mutex_lock(&log->mu);
    log->wb_queued = false;
    window = log->cfg.cache_window_bytes;
    if (log->closed || window <= 0) {
        pthread_mutex_unlock(&log->mu);
        return;
    }
    sm_segment_t *seg = sm_log_active(log);
    size = seg->size;
    if (seg->base_offset == log->wb_base) {
        /* truncation may have shortened the segment below the marks */
        started = log->wb_started < size ? log->wb_started : page_floor(size);
        dropped = log->wb_dropped < size ? log->wb_dropped : page_floor(size);
    } else {
        /* a roll since the last pass: finish the previous segment if it is
         * still in the list */
        int i = sm_log_seg_find(log, log->wb_base);
        sm_segment_t *old = log->segs[i];
        if (old != seg && old->base_offset == log->wb_base && sm_segment_pin(old, &prev) == SM_OK) {
            prev_size = old->size;
            prev_started = log->wb_started;
            prev_dropped = log->wb_dropped;
        }
        started = dropped = 0;
    }
    if (sm_segment_pin(seg, &cur) == SM_OK) {
        log->wb_base = seg->base_offset;
        log->wb_started = started_mark(size, started);
        log->wb_dropped = dropped_mark(size, dropped, window);
    } else {
        cur = NULL; /* logged by the pin; the next append asks again */
    }
    pthread_mutex_unlock(&log->mu);

    if (prev) {
        write_behind_range(prev->log_fd, prev_size, prev_started, prev_dropped, window);
        sm_segfiles_release(prev);
    }
    if (cur) {
        write_behind_range(cur->log_fd, size, started, dropped, window);
        sm_segfiles_release(cur);
    }
}
