/*
 * log_epoch.c - the leader-epoch cache of a partition log and Kafka's
 * leader-epoch-checkpoint file.
 *
 * The cache maps each leader epoch to the first offset written in it:
 * entries have strictly increasing epochs and non-decreasing start
 * offsets. An append in a newer epoch adds an entry; truncation drops the
 * entries at or after the new end; moving the log start clamps the first
 * entries to it (the last entry below the start survives, moved up).
 *
 * File format (Kafka's, text, replaced atomically):
 *     0                     version
 *     <n>                   number of entries
 *     <epoch> <start>       n lines
 * Written by the flush that makes the new entry durable (fsync), or at close
 * without its own fsync (the log dir syncs the file system before it
 * writes the clean-shutdown marker). A missing or unreadable file means an
 * empty cache; recovery adds the epochs of the batches it scans.
 */
#define _GNU_SOURCE
#include "log_internal.h"

#include "file.h"
#include "../core/log.h"

#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void push(sm_log_t *log, int32_t epoch, int64_t start)
{
    if (log->nepochs == log->epochs_cap) {
        log->epochs_cap = log->epochs_cap ? log->epochs_cap * 2 : 1;
        log->epochs = sm_xrealloc(log->epochs, sizeof *log->epochs * (size_t)log->epochs_cap);
    }
    log->epochs[log->nepochs].epoch = epoch;
    log->epochs[log->nepochs].start_offset = start;
    log->nepochs++;
}

void sm_log_epochs_load(sm_log_t *log)
{
    char *path = sm_xasprintf("%s/%s", log->dir, SM_LOG_EPOCH_FILE);
    FILE *f = fopen(path, "re");
    if (!f) {
        free(path);
        return;
    }
    int version = -1, n = -1, got = 0;
    bool bad = fscanf(f, "%d %d", &version, &n) != 2 || version != 0 || n < 0 || n > 1000000;
    for (int i = 0; !bad && i < n; i++) {
        int epoch;
        long long start;
        if (fscanf(f, "%d %lld", &epoch, &start) != 2 || epoch < 0 || start < 0 ||
            (log->nepochs > 0 && (epoch <= log->epochs[log->nepochs - 1].epoch ||
                                  start < log->epochs[log->nepochs - 1].start_offset))) {
            bad = true;
            break;
        }
        push(log, epoch, start);
        got++;
    }
    fclose(f);
    if (bad) {
        SM_WARN("storage", "%s: %s unreadable after %d entries; the epoch cache restarts from "
                "what recovery sees", log->name, path, got);
        log->nepochs = 0;
        log->epochs_dirty = true;
    }
    free(path);
}

void sm_log_epochs_assign(sm_log_t *log, int32_t epoch, int64_t offset)
{
    if (epoch < 0)
        return;
    if (log->nepochs > 0) {
        sm_epoch_entry_t *last = &log->epochs[log->nepochs - 1];
        if (epoch <= last->epoch)
            return;
        if (offset < last->start_offset)
            return; /* would break the order; never happens for appends */
    }
    push(log, epoch, offset);
    log->epochs_dirty = true;
}

void sm_log_epochs_truncate_end(sm_log_t *log, int64_t end)
{
    int n = log->nepochs;
    while (n > 0 && log->epochs[n - 1].start_offset >= end)
        n--;
    if (n != log->nepochs) {
        log->nepochs = n;
        log->epochs_dirty = true;
    }
}

void sm_log_epochs_truncate_start(sm_log_t *log, int64_t start)
{
    int drop = 0;
    while (drop + 1 < log->nepochs && log->epochs[drop + 1].start_offset <= start)
        drop++;
    if (drop) {
        memmove(log->epochs, log->epochs + drop, sizeof *log->epochs * (size_t)(log->nepochs - drop));
        log->nepochs -= drop;
        log->epochs_dirty = true;
    }
    if (log->nepochs > 0 && log->epochs[0].start_offset < start) {
        log->epochs[0].start_offset = start;
        log->epochs_dirty = true;
    }
}

sm_err_t sm_log_epochs_persist(sm_log_t *log, bool sync)
{
    pthread_mutex_lock(&log->mu);
    if (!log->epochs_dirty) {
        pthread_mutex_unlock(&log->mu);
        return SM_OK;
    }
    size_t cap = 32 + (size_t)log->nepochs * 34, n = 0;
    char *buf = sm_xmalloc(cap);
    n += (size_t)snprintf(buf + n, cap - n, "0\n%d\n", log->nepochs);
    for (int i = 0; i < log->nepochs; i++)
        n += (size_t)snprintf(buf + n, cap - n, "%d %" PRId64 "\n", log->epochs[i].epoch,
                              log->epochs[i].start_offset);
    log->epochs_dirty = false;
    pthread_mutex_unlock(&log->mu);
    sm_err_t err;
    if (sync) {
        err = sm_file_write_atomic(log->dir, SM_LOG_EPOCH_FILE, buf, n);
    } else {
        /* tmp + rename without fsync: the log dir's syncfs makes it durable
         * before the clean-shutdown marker exists */
        char *tmp = sm_xasprintf("%s/%s.tmp", log->dir, SM_LOG_EPOCH_FILE);
        char *dst = sm_xasprintf("%s/%s", log->dir, SM_LOG_EPOCH_FILE);
        int fd;
        err = sm_file_open(tmp, O_WRONLY | O_CREAT | O_TRUNC, &fd);
        if (!err) {
            err = sm_file_pwrite(fd, buf, n, 0);
            sm_file_close(fd);
        }
        if (!err)
            err = sm_file_rename(tmp, dst);
        free(tmp);
        free(dst);
    }
    free(buf);
    if (err) {
        pthread_mutex_lock(&log->mu);
        log->epochs_dirty = true;
        pthread_mutex_unlock(&log->mu);
        SM_WARN("storage", "%s: writing %s failed: %s", log->name, SM_LOG_EPOCH_FILE,
                sm_err_str(err));
    }
    return err;
}

sm_err_t sm_log_epoch_end_offset(sm_log_t *log, int32_t epoch, int32_t *epoch_out,
                                 int64_t *end_offset)
{
    pthread_mutex_lock(&log->mu);
    int i = log->nepochs - 1;
    while (i >= 0 && log->epochs[i].epoch > epoch)
        i--;
    sm_err_t err = SM_OK;
    if (i < 0) {
        err = SM_ERR_NOT_FOUND;
    } else {
        *epoch_out = log->epochs[i].epoch;
        *end_offset = i + 1 < log->nepochs ? log->epochs[i + 1].start_offset : log->end_offset;
    }
    pthread_mutex_unlock(&log->mu);
    return err;
}
