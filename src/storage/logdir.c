/*
 * logdir.c - what a log dir (a directory holding <topic>-<partition>
 * directories, one entry of log.dirs) keeps about all its logs: Kafka's
 * checkpoint files and clean-shutdown marker.
 *
 * Files in the log dir (Kafka's formats, text, each replaced atomically:
 * tmp, fsync, rename, fsync dir):
 *     recovery-point-offset-checkpoint   "0\n<n>\n" then "<topic> <partition> <offset>\n" x n
 *     log-start-offset-checkpoint        same layout
 *     replication-offset-checkpoint      same layout: the partitions' high
 *                                        watermarks (set by src/partition)
 *     cleaner-offset-checkpoint          same layout: where each compacted
 *                                        log's dirty part starts (cleaner.c);
 *                                        rewritten after every cleaning
 *     .kafka_cleanshutdown               exists only after a clean shutdown
 *
 * Registry: one sm_logdir_t per directory, created by the first log that
 * opens in it and kept for the life of the process. It maps "topic-N" to an
 * entry: the open log (if any) and, for logs not open, the values they
 * closed with.
 *
 * Clean shutdown without 10,000 fsyncs: closing a log writes its pending
 * index entries but syncs nothing. When the last open log of the dir
 * closes, the dir calls syncfs() once (every file of the file system is
 * then on disk), writes both checkpoint files with the logs' end offsets as
 * recovery points, and only then the marker. When the first log of a dir
 * opens, the marker is read and deleted (dir fsynced) before that log can
 * change anything, so "marker present" always means "nothing was written
 * since the last complete sync". A log is opened as clean only if the
 * marker was there and it is listed in the recovery-point checkpoint (and
 * the loader also checks that its end offset equals that checkpoint). A log
 * that closes cleanly and reopens in the same process is clean too.
 *
 * Periodic checkpoints (sm_log_checkpoint_dirs, every 60 s through
 * sm_log_flush_due) write the open logs' durable recovery points and log
 * start offsets, as Kafka does; the per-partition samsa-log-state file
 * stays the exact source (it is written whenever these move past a segment
 * boundary, on truncation and on DeleteRecords), and the checkpoints are
 * what a log falls back on when it has none (e.g. a directory written by
 * Kafka).
 *
 * Locking: the registry mutex guards the list of dirs; each dir's mutex
 * guards its fields and is a leaf: nothing is locked while holding it (the
 * logs' offsets are read atomically), so a log may call in while holding
 * its own mutexes (truncation does). Any thread.
 */
#define _GNU_SOURCE
#include "log_internal.h"

#include "file.h"
#include "hmap.h"
#include "buf.h"
#include "cleaner.h"
#include "../core/log.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define RP_FILE "recovery-point-offset-checkpoint"
#define START_FILE "log-start-offset-checkpoint"
#define HW_FILE "replication-offset-checkpoint"
#define CLEANER_FILE "cleaner-offset-checkpoint"
#define CLEAN_FILE ".kafka_cleanshutdown"
#define CHECKPOINT_INTERVAL_MS 60000

typedef struct entry {
    char *topic;
    int32_t partition;
    sm_log_t *log;        /* open log, or NULL */
    bool have_rp, have_start, have_hw, have_cleaner;
    int64_t cleaner;      /* cleaner-offset-checkpoint */
    int64_t hw;           /* high watermark (replication-offset-checkpoint) */
    int64_t rp_durable;   /* recovery point known to be on disk */
    int64_t rp_clean;     /* end offset at a clean close (durable after syncfs) */
    int64_t start;
    bool trusted;         /* closed cleanly (or listed at a clean start) */
} entry_t;

struct sm_logdir {
    struct sm_logdir *next;
    char *path;
    pthread_mutex_t mu;
    int nopen;
    bool unclean_close;   /* a log closed without a clean state since the last start */
    sm_hmap_t entries;    /* "topic-partition" -> entry_t */
};

static pthread_mutex_t reg_mu = PTHREAD_MUTEX_INITIALIZER;
static sm_logdir_t *dirs;
static int64_t next_checkpoint_ms; /* atomic */

/* "topic-N" -> topic, N. */
static bool parse_name(const char *base, char **topic, int32_t *partition)
{
    const char *dash = strrchr(base, '-');
    if (!dash || dash == base || !dash[1])
        return false;
    long v = 0;
    for (const char *p = dash + 1; *p; p++) {
        if (*p < '0' || *p > '9' || v > INT32_MAX / 10)
            return false;
        v = v * 10 + (*p - '0');
    }
    *topic = sm_xstrndup(base, (size_t)(dash - base));
    *partition = (int32_t)v;
    return true;
}

static entry_t *entry_get(sm_logdir_t *d, const char *topic, int32_t partition, bool create)
{
    char key[512];
    int n = snprintf(key, sizeof key, "%s-%d", topic, partition);
    if (n < 0 || n >= (int)sizeof key)
        return NULL;
    entry_t *e = sm_hmap_get(&d->entries, key, (size_t)n);
    if (!e && create) {
        e = sm_xcalloc(1, sizeof *e);
        e->topic = sm_xstrdup(topic);
        e->partition = partition;
        sm_hmap_put(&d->entries, key, (size_t)n, e);
    }
    return e;
}

static void entries_clear(sm_logdir_t *d)
{
    for (sm_hmap_entry_t *h = NULL; (h = sm_hmap_next(&d->entries, h));) {
        entry_t *e = h->value;
        free(e->topic);
        free(e);
    }
    sm_hmap_free(&d->entries);
    sm_hmap_init(&d->entries);
}

/* Read one checkpoint file into the entries; which = 0 recovery point, 1
 * log start, 2 high watermark, 3 cleaner offset. A damaged file is ignored as a whole
 * (logged). */
static void read_checkpoint(sm_logdir_t *d, const char *name, int which, bool trusted)
{
    char *path = sm_xasprintf("%s/%s", d->path, name);
    FILE *f = fopen(path, "re");
    if (!f) {
        free(path);
        return;
    }
    int version = -1, n = -1;
    char line[600];
    bool bad = !fgets(line, sizeof line, f) || sscanf(line, "%d", &version) != 1 || version != 0 ||
               !fgets(line, sizeof line, f) || sscanf(line, "%d", &n) != 1 || n < 0;
    int i = 0;
    for (; !bad && i < n; i++) {
        char topic[256];
        int part;
        long long off;
        if (!fgets(line, sizeof line, f) || sscanf(line, "%255s %d %lld", topic, &part, &off) != 3 ||
            part < 0 || off < 0) {
            bad = true;
            break;
        }
        entry_t *e = entry_get(d, topic, part, true);
        if (!e)
            continue;
        if (which == 0) {
            e->have_rp = true;
            e->rp_durable = e->rp_clean = off;
            e->trusted = trusted;
        } else if (which == 1) {
            e->have_start = true;
            e->start = off;
        } else if (which == 3) {
            e->have_cleaner = true;
            e->cleaner = off;
        } else {
            e->have_hw = true;
            e->hw = off;
        }
    }
    fclose(f);
    if (bad) {
        SM_WARN("storage", "%s: damaged at entry %d; ignoring it (logs recover from their own "
                "state files)", path, i);
        for (sm_hmap_entry_t *h = NULL; (h = sm_hmap_next(&d->entries, h));) {
            entry_t *e = h->value;
            if (which == 0)
                e->have_rp = e->trusted = false;
            else if (which == 1)
                e->have_start = false;
            else if (which == 3)
                e->have_cleaner = false;
            else
                e->have_hw = false;
        }
    }
    free(path);
}

/* Write both checkpoint files. final: the shutdown write (closed clean
 * entries report their end offset). Under d->mu. */
static sm_err_t write_checkpoints(sm_logdir_t *d, bool final)
{
    size_t cap = 64 + d->entries.count * 300, n1 = 0, n2 = 0, n3 = 0;
    char *rp = sm_xmalloc(cap), *st = sm_xmalloc(cap), *hwb = sm_xmalloc(cap);
    int c1 = 0, c2 = 0, c3 = 0;
    for (sm_hmap_entry_t *h = NULL; (h = sm_hmap_next(&d->entries, h));) {
        entry_t *e = h->value;
        int64_t r, s, hw;
        bool hr, hs, hh;
        if (e->log && __atomic_load_n(&e->log->loaded, __ATOMIC_ACQUIRE)) {
            r = sm_log_durable_offset(e->log);
            s = sm_log_start_offset(e->log);
            hw = sm_log_high_watermark(e->log);
            hr = hs = true;
            hh = hw >= 0;
        } else {
            r = final && e->trusted ? e->rp_clean : e->rp_durable;
            s = e->start;
            hw = e->hw;
            hr = e->have_rp;
            hs = e->have_start;
            hh = e->have_hw;
        }
        if (hh) {
            n3 += (size_t)snprintf(hwb + 64 + n3, cap - 64 - n3, "%s %d %" PRId64 "\n", e->topic,
                                   e->partition, hw);
            c3++;
        }
        if (hr) {
            n1 += (size_t)snprintf(rp + 64 + n1, cap - 64 - n1, "%s %d %" PRId64 "\n", e->topic,
                                   e->partition, r);
            c1++;
        }
        if (hs) {
            n2 += (size_t)snprintf(st + 64 + n2, cap - 64 - n2, "%s %d %" PRId64 "\n", e->topic,
                                   e->partition, s);
            c2++;
        }
    }
    /* the header goes right before the lines */
    char h1[64], h2[64], h3[64];
    int l1 = snprintf(h1, sizeof h1, "0\n%d\n", c1), l2 = snprintf(h2, sizeof h2, "0\n%d\n", c2);
    int l3 = snprintf(h3, sizeof h3, "0\n%d\n", c3);
    memcpy(rp + 64 - l1, h1, (size_t)l1);
    memcpy(st + 64 - l2, h2, (size_t)l2);
    memcpy(hwb + 64 - l3, h3, (size_t)l3);
    sm_err_t err = sm_file_write_atomic(d->path, RP_FILE, rp + 64 - l1, n1 + (size_t)l1);
    if (!err)
        err = sm_file_write_atomic(d->path, START_FILE, st + 64 - l2, n2 + (size_t)l2);
    if (!err)
        err = sm_file_write_atomic(d->path, HW_FILE, hwb + 64 - l3, n3 + (size_t)l3);
    free(rp);
    free(st);
    free(hwb);
    if (err)
        SM_WARN("storage", "%s: writing checkpoint files failed: %s", d->path, sm_err_str(err));
    return err;
}

/* syncfs on the dir's file system: every file written so far is durable. */
static sm_err_t sync_filesystem(const char *path)
{
    int fd;
    sm_err_t err = sm_file_open(path, O_RDONLY | O_DIRECTORY, &fd);
    if (err)
        return err;
    int r = syncfs(fd);
    int e = errno;
    sm_file_close(fd);
    if (r < 0) {
        SM_ERROR("storage", "syncfs %s: %s", path, strerror(e));
        return e == ENOSPC ? SM_ERR_NOSPC : SM_ERR_IO;
    }
    return SM_OK;
}

static sm_logdir_t *dir_get(const char *path)
{
    pthread_mutex_lock(&reg_mu);
    sm_logdir_t *d = dirs;
    while (d && strcmp(d->path, path) != 0)
        d = d->next;
    if (!d) {
        d = sm_xcalloc(1, sizeof *d);
        d->path = sm_xstrdup(path);
        pthread_mutex_init(&d->mu, NULL);
        sm_hmap_init(&d->entries);
        d->next = dirs;
        dirs = d;
    }
    pthread_mutex_unlock(&reg_mu);
    return d;
}

void sm_logdir_attach(sm_log_t *log, sm_log_hint_t *hint)
{
    memset(hint, 0, sizeof *hint);
    char buf[PATH_MAX];
    snprintf(buf, sizeof buf, "%s", log->dir);
    size_t len = strlen(buf);
    while (len > 1 && buf[len - 1] == '/')
        buf[--len] = '\0';
    char *slash = strrchr(buf, '/');
    const char *base = slash ? slash + 1 : buf;
    if (!parse_name(base, &log->topic, &log->partition))
        return;
    if (slash == buf)
        snprintf(buf, sizeof buf, "/");
    else if (slash)
        *slash = '\0';
    else
        snprintf(buf, sizeof buf, ".");
    sm_logdir_t *d = dir_get(buf);
    pthread_mutex_lock(&d->mu);
    if (d->nopen == 0) {
        /* First log of this dir (in this process, or since all closed):
         * load the checkpoints and consume the clean-shutdown marker before
         * any log here can change. */
        char *marker = sm_xasprintf("%s/%s", d->path, CLEAN_FILE);
        bool clean = access(marker, F_OK) == 0;
        entries_clear(d);
        read_checkpoint(d, RP_FILE, 0, clean);
        read_checkpoint(d, START_FILE, 1, clean);
        read_checkpoint(d, HW_FILE, 2, clean);
        read_checkpoint(d, CLEANER_FILE, 3, clean);
        d->unclean_close = false;
        if (clean) {
            if (sm_file_unlink(marker) != SM_OK || sm_file_sync_dir(d->path) != SM_OK) {
                SM_WARN("storage", "%s: cannot remove the clean-shutdown marker; every log "
                        "here will be recovered", d->path);
                for (sm_hmap_entry_t *h = NULL; (h = sm_hmap_next(&d->entries, h));)
                    ((entry_t *)h->value)->trusted = false;
            }
        }
        free(marker);
    }
    d->nopen++;
    entry_t *e = entry_get(d, log->topic, log->partition, true);
    if (e) {
        hint->clean = e->trusted;
        hint->have_rp = e->have_rp;
        hint->rp = e->trusted ? e->rp_clean : e->rp_durable;
        hint->have_start = e->have_start;
        hint->start = e->start;
        hint->have_hw = e->have_hw;
        hint->hw = e->hw;
        hint->have_cleaner = e->have_cleaner;
        hint->cleaner = e->cleaner;
        e->log = log;
        e->trusted = false;
    }
    log->ldir = d;
    pthread_mutex_unlock(&d->mu);
}

void sm_logdir_detach(sm_log_t *log, bool clean, int64_t start, int64_t durable_rp, int64_t end,
                      bool removed)
{
    sm_logdir_t *d = log->ldir;
    if (!d)
        return;
    pthread_mutex_lock(&d->mu);
    entry_t *e = entry_get(d, log->topic, log->partition, false);
    if (e && removed) {
        char key[512];
        int n = snprintf(key, sizeof key, "%s-%d", log->topic, log->partition);
        sm_hmap_del(&d->entries, key, (size_t)n);
        free(e->topic);
        free(e);
    } else if (e) {
        e->log = NULL;
        e->have_rp = e->have_start = true;
        e->rp_durable = durable_rp;
        e->rp_clean = clean ? end : durable_rp;
        e->start = start;
        int64_t hw = sm_log_high_watermark(log);
        e->have_hw = hw >= 0;
        e->hw = hw;
        int64_t co = sm_log_cleaner_offset(log);
        if (co >= 0) {
            e->have_cleaner = true;
            e->cleaner = co;
        }
        e->trusted = clean;
        if (!clean)
            d->unclean_close = true;
    }
    log->ldir = NULL;
    if (--d->nopen == 0) {
        /* Shutdown of this dir: one syncfs makes every closed log durable,
         * then the checkpoints, then the marker. */
        sm_err_t err = sync_filesystem(d->path);
        if (err) {
            for (sm_hmap_entry_t *h = NULL; (h = sm_hmap_next(&d->entries, h));)
                ((entry_t *)h->value)->trusted = false;
        }
        sm_err_t cerr = write_checkpoints(d, err == SM_OK);
        if (!err && !cerr && !d->unclean_close) {
            const char *content = "{\"version\":0,\"broker_epoch\":-1}";
            err = sm_file_write_atomic(d->path, CLEAN_FILE, content, strlen(content));
            if (err)
                SM_WARN("storage", "%s: cannot write the clean-shutdown marker: %s", d->path,
                        sm_err_str(err));
        } else {
            SM_WARN("storage", "%s: not marked clean (%s); the next start recovers its logs",
                    d->path, d->unclean_close ? "a log closed after an error" : "sync failed");
        }
    }
    pthread_mutex_unlock(&d->mu);
}

void sm_log_checkpoint_dirs(void)
{
    pthread_mutex_lock(&reg_mu);
    sm_logdir_t *list = dirs;
    pthread_mutex_unlock(&reg_mu);
    /* dirs are never freed and only pushed at the head: walking from a
     * snapshot of the head is safe without the registry lock */
    for (sm_logdir_t *d = list; d; d = d->next) {
        pthread_mutex_lock(&d->mu);
        if (d->nopen > 0)
            (void)write_checkpoints(d, false);
        pthread_mutex_unlock(&d->mu);
    }
}

sm_err_t sm_logdir_checkpoint(sm_log_t *log)
{
    sm_logdir_t *d = log->ldir;
    if (!d)
        return SM_OK;
    pthread_mutex_lock(&d->mu);
    sm_err_t err = write_checkpoints(d, false);
    pthread_mutex_unlock(&d->mu);
    return err;
}

sm_err_t sm_logdir_cleaner_checkpoint(sm_log_t *log)
{
    sm_logdir_t *d = log->ldir;
    if (!d)
        return SM_OK;
    pthread_mutex_lock(&d->mu);
    sm_wbuf_t w;
    sm_wbuf_init(&w);
    int count = 0;
    for (sm_hmap_entry_t *h = NULL; (h = sm_hmap_next(&d->entries, h));) {
        entry_t *e = h->value;
        int64_t off = e->have_cleaner ? e->cleaner : -1;
        if (e->log)
            off = sm_log_cleaner_offset(e->log);
        if (off >= 0)
            count++;
    }
    char line[600];
    int n = snprintf(line, sizeof line, "0\n%d\n", count);
    sm_wbuf_bytes(&w, line, (size_t)n);
    for (sm_hmap_entry_t *h = NULL; (h = sm_hmap_next(&d->entries, h));) {
        entry_t *e = h->value;
        int64_t off = e->have_cleaner ? e->cleaner : -1;
        if (e->log)
            off = sm_log_cleaner_offset(e->log);
        if (off < 0)
            continue;
        n = snprintf(line, sizeof line, "%s %d %" PRId64 "\n", e->topic, e->partition, off);
        if (n > 0 && n < (int)sizeof line)
            sm_wbuf_bytes(&w, line, (size_t)n);
    }
    sm_err_t err = sm_file_write_atomic(d->path, CLEANER_FILE, w.mem, w.len);
    sm_wbuf_free(&w);
    pthread_mutex_unlock(&d->mu);
    if (err)
        SM_WARN("storage", "%s: writing %s failed: %s", d->path, CLEANER_FILE, sm_err_str(err));
    return err;
}

void sm_log_checkpoint_dirs_maybe(int64_t now_ms)
{
    int64_t due = __atomic_load_n(&next_checkpoint_ms, __ATOMIC_RELAXED);
    if (due == 0) {
        __atomic_compare_exchange_n(&next_checkpoint_ms, &due, now_ms + CHECKPOINT_INTERVAL_MS,
                                    false, __ATOMIC_RELAXED, __ATOMIC_RELAXED);
        return;
    }
    if (now_ms < due)
        return;
    if (__atomic_compare_exchange_n(&next_checkpoint_ms, &due, now_ms + CHECKPOINT_INTERVAL_MS,
                                    false, __ATOMIC_RELAXED, __ATOMIC_RELAXED))
        sm_log_checkpoint_dirs();
}
