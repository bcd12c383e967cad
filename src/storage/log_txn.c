/*
 * log_txn.c - the aborted-transaction index: each segment's .txnindex file
 * (see log.h for the entry format), mirrored in memory for fetches.
 *
 * Aborts are rare, so each entry is one small O_APPEND write and an
 * fdatasync; the memory copy (all segments' entries, ordered by marker
 * offset) answers read_committed fetches without touching the files. The
 * files exist so the index survives a restart and so Kafka's tools find
 * what they expect beside each segment; they are renamed and deleted with
 * their segment (segment.c) and cut on truncation (below). Entries lost in
 * a crash are added again by the partition layer, which replays the log
 * from its last producer snapshot.
 */
#include "log_internal.h"
#include "file.h"
#include "../core/log.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define ENTRY_BYTES 34
#define ENTRY_VERSION 0

static void put64(uint8_t *p, int64_t v)
{
    for (int i = 7; i >= 0; i--) {
        p[i] = (uint8_t)v;
        v = (int64_t)((uint64_t)v >> 8);
    }
}

static int64_t get64(const uint8_t *p)
{
    uint64_t v = 0;
    for (int i = 0; i < 8; i++)
        v = (v << 8) | p[i];
    return (int64_t)v;
}

static void encode(uint8_t *p, const sm_log_aborted_t *a)
{
    p[0] = 0;
    p[1] = ENTRY_VERSION;
    put64(p + 2, a->pid);
    put64(p + 10, a->first_offset);
    put64(p + 18, a->last_offset);
    put64(p + 26, a->last_stable_offset);
}

static void push(sm_log_t *log, const sm_log_aborted_t *a)
{
    if (log->naborted == log->aborted_cap) {
        log->aborted_cap = log->aborted_cap ? log->aborted_cap * 2 : 8;
        log->aborted = sm_xrealloc(log->aborted, (size_t)log->aborted_cap * sizeof *log->aborted);
    }
    log->aborted[log->naborted++] = *a;
}

static char *index_path(const sm_segment_t *seg) { return sm_xasprintf("%s.txnindex", seg->path); }

/* Rewrite seg's file with the in-memory entries whose marker lies in
 * [lo, hi); remove it when there are none. */
static void rewrite(sm_log_t *log, const sm_segment_t *seg, int64_t lo, int64_t hi)
{
    char *path = index_path(seg);
    uint8_t *buf = sm_xmalloc((size_t)(log->naborted > 0 ? log->naborted : 1) * ENTRY_BYTES);
    size_t len = 0;
    for (int i = 0; i < log->naborted; i++)
        if (log->aborted[i].last_offset >= lo && log->aborted[i].last_offset < hi) {
            encode(buf + len, &log->aborted[i]);
            len += ENTRY_BYTES;
        }
    if (len == 0) {
        (void)sm_file_unlink(path);
    } else {
        const char *slash = strrchr(path, '/');
        if (sm_file_write_atomic(log->dir, slash ? slash + 1 : path, buf, len) != SM_OK)
            SM_WARN("storage", "%s: could not rewrite %s", log->name, path);
    }
    free(buf);
    free(path);
}

void sm_log_aborted_load(sm_log_t *log)
{
    int64_t end = log->end_offset;
    for (int s = 0; s < log->nsegs; s++) {
        const sm_segment_t *seg = log->segs[s];
        char *path = index_path(seg);
        int fd = open(path, O_RDONLY | O_CLOEXEC);
        if (fd < 0) {
            free(path);
            continue;
        }
        struct stat st;
        bool cut = false;
        if (fstat(fd, &st) == 0 && st.st_size > 0) {
            size_t n = (size_t)st.st_size / ENTRY_BYTES;
            cut = (size_t)st.st_size % ENTRY_BYTES != 0;
            uint8_t *buf = sm_xmalloc(n * ENTRY_BYTES + 1);
            if (pread(fd, buf, n * ENTRY_BYTES, 0) == (ssize_t)(n * ENTRY_BYTES)) {
                for (size_t i = 0; i < n; i++) {
                    const uint8_t *p = buf + i * ENTRY_BYTES;
                    sm_log_aborted_t a = {.pid = get64(p + 2),
                                          .first_offset = get64(p + 10),
                                          .last_offset = get64(p + 18),
                                          .last_stable_offset = get64(p + 26)};
                    bool ok = p[0] == 0 && p[1] == ENTRY_VERSION && a.last_offset < end &&
                              a.last_offset >= seg->base_offset && a.first_offset <= a.last_offset &&
                              (log->naborted == 0 ||
                               log->aborted[log->naborted - 1].last_offset < a.last_offset);
                    if (ok)
                        push(log, &a);
                    else
                        cut = true;
                }
            }
            free(buf);
        }
        close(fd);
        if (cut) {
            SM_WARN("storage", "%s: %s had entries past the log end or torn; rewritten",
                    log->name, path);
            int64_t hi = s + 1 < log->nsegs ? log->segs[s + 1]->base_offset : INT64_MAX;
            rewrite(log, seg, seg->base_offset, hi);
        }
        free(path);
    }
}

void sm_log_aborted_truncate(sm_log_t *log, int64_t new_end)
{
    int keep = 0;
    while (keep < log->naborted && log->aborted[keep].last_offset < new_end)
        keep++;
    if (keep == log->naborted)
        return;
    log->naborted = keep;
    /* the segments that held the dropped entries are gone or cut at
     * new_end; the one holding new_end keeps what lies below it */
    for (int s = 0; s < log->nsegs; s++) {
        const sm_segment_t *seg = log->segs[s];
        int64_t hi = s + 1 < log->nsegs ? log->segs[s + 1]->base_offset : INT64_MAX;
        if (hi > new_end || new_end == INT64_MIN)
            rewrite(log, seg, seg->base_offset, hi);
    }
}

void sm_log_aborted_replace(sm_log_t *log, int64_t lo, int64_t hi, const sm_log_aborted_t *a,
                            int n)
{
    int from = 0;
    while (from < log->naborted && log->aborted[from].last_offset < lo)
        from++;
    int to = from;
    while (to < log->naborted && log->aborted[to].last_offset < hi)
        to++;
    int total = log->naborted - (to - from) + n;
    if (total > log->aborted_cap) {
        log->aborted_cap = total;
        log->aborted = sm_xrealloc(log->aborted, (size_t)total * sizeof *log->aborted);
    }
    memmove(log->aborted + from + n, log->aborted + to,
            (size_t)(log->naborted - to) * sizeof *log->aborted);
    if (n > 0)
        memcpy(log->aborted + from, a, (size_t)n * sizeof *a);
    log->naborted = total;
}

sm_err_t sm_log_add_aborted(sm_log_t *log, const sm_log_aborted_t *a)
{
    pthread_mutex_lock(&log->mu);
    if (log->naborted > 0 && log->aborted[log->naborted - 1].last_offset >= a->last_offset) {
        pthread_mutex_unlock(&log->mu);
        return SM_OK; /* already there (a replay) */
    }
    /* the segment holding the marker: the last one starting at or below it */
    int s = sm_log_seg_find(log, a->last_offset);
    char *path = index_path(log->segs[s]);
    sm_err_t err = SM_OK;
    uint8_t buf[ENTRY_BYTES];
    encode(buf, a);
    int fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0644);
    if (fd < 0 || write(fd, buf, sizeof buf) != (ssize_t)sizeof buf || fdatasync(fd) != 0) {
        SM_WARN("storage", "%s: could not write %s: %s", log->name, path, strerror(errno));
        err = SM_ERR_IO;
    }
    if (fd >= 0)
        close(fd);
    free(path);
    push(log, a); /* served from memory even if the file failed (replay re-adds it) */
    pthread_mutex_unlock(&log->mu);
    return err;
}

int sm_log_aborted_txns(sm_log_t *log, int64_t from, int64_t upto, sm_log_aborted_t **out)
{
    *out = NULL;
    pthread_mutex_lock(&log->mu);
    int n = 0;
    for (int i = 0; i < log->naborted; i++) {
        const sm_log_aborted_t *a = &log->aborted[i];
        if (a->last_offset < from || a->first_offset >= upto)
            continue;
        if (!*out)
            *out = sm_xmalloc((size_t)(log->naborted - i) * sizeof **out);
        (*out)[n++] = *a;
    }
    pthread_mutex_unlock(&log->mu);
    return n;
}

const char *sm_log_dir(const sm_log_t *log) { return log->dir; }

int64_t sm_log_active_base(sm_log_t *log)
{
    pthread_mutex_lock(&log->mu);
    int64_t b = sm_log_active(log)->base_offset;
    pthread_mutex_unlock(&log->mu);
    return b;
}
