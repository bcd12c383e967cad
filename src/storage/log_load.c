/*
 * log_load.c - opening a partition directory: listing segments, reading the
 * state file and crash recovery.
 *
 * State file (samsa-log-state, text, replaced atomically):
 *     samsa-log-state 2
 *     log_start_offset <int64>
 *     recovery_point <int64>
 * (version 1 also had a clean_shutdown line, now ignored: clean shutdown is
 * the log dir's .kafka_cleanshutdown marker, logdir.c). The file is exact:
 * rewritten when the recovery point enters another segment, on truncation
 * and when the log start moves. Without it the log falls back on the log
 * dir's checkpoint files, and without those on "recover everything".
 *
 * Clean (the log dir says so, and the active segment's end offset equals
 * the checkpointed recovery point): nothing is scanned except the active
 * segment's tail after its last offset-index entry.
 *
 * Recovery (otherwise): segments wholly below the recovery point are
 * trusted; from the segment holding the recovery point to the end the
 * indexes are rebuilt from the batch headers, every batch at or above the
 * recovery point is validated (sm_batch_validate: so the data read is the
 * unflushed tail, not whole segments), the
 * leader-epoch cache learns the epochs seen, and the log is cut at the
 * first bad byte. Segments after a cut are deleted (they would leave a
 * hole). Trusted segments whose indexes are missing or fail the sanity
 * check are rebuilt from the batch headers.
 * Runs on the thread calling sm_log_open(), before the log is shared.
 */
#define _GNU_SOURCE
#include "log_internal.h"

#include "file.h"
#include "../core/log.h"

#include <dirent.h>
#include <fcntl.h>
#include <unistd.h>
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void sm_log_state_read(const char *dir, const char *name, int64_t *start, int64_t *rp,
                       bool *found)
{
    *found = false;
    *start = 0;
    *rp = 0;
    char *path = sm_xasprintf("%s/%s", dir, SM_LOG_STATE_FILE);
    FILE *f = fopen(path, "re");
    if (!f) {
        free(path);
        return;
    }
    int version = 0, fields = 0;
    long long s = 0, r = 0;
    char line[128];
    while (fgets(line, sizeof line, f)) {
        if (sscanf(line, "samsa-log-state %d", &version) == 1)
            fields |= 1;
        else if (sscanf(line, "log_start_offset %lld", &s) == 1)
            fields |= 2;
        else if (sscanf(line, "recovery_point %lld", &r) == 1)
            fields |= 4;
    }
    fclose(f);
    if (fields != 7 || (version != 1 && version != 2) || s < 0 || r < 0) {
        SM_WARN("storage", "%s: %s unreadable; recovering the whole log", name, path);
        free(path);
        return;
    }
    free(path);
    *start = s;
    *rp = r;
    *found = true;
}

/* Is name "<20 digits><suffix>"? Sets *base. */
static bool parse_segment_name(const char *name, const char *suffix, int64_t *base)
{
    size_t n = strlen(name), sl = strlen(suffix);
    if (n != 20 + sl || strcmp(name + 20, suffix) != 0)
        return false;
    int64_t v = 0;
    for (int i = 0; i < 20; i++) {
        if (name[i] < '0' || name[i] > '9')
            return false;
        if (v > (INT64_MAX - 9) / 10)
            return false;
        v = v * 10 + (name[i] - '0');
    }
    *base = v;
    return true;
}

static int cmp_i64(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return x < y ? -1 : x > y;
}

typedef struct i64vec {
    int64_t *v;
    int n, cap;
} i64vec_t;

static void vec_push(i64vec_t *x, int64_t v)
{
    if (x->n == x->cap) {
        x->cap = x->cap ? x->cap * 2 : 8;
        x->v = sm_xrealloc(x->v, sizeof *x->v * (size_t)x->cap);
    }
    x->v[x->n++] = v;
}

static const char *const seg_files[] = {".log", ".index", ".timeindex", ".txnindex"};

static bool has_suffix(const char *nm, const char *suffix)
{
    size_t n = strlen(nm), sl = strlen(suffix);
    return n > sl && strcmp(nm + n - sl, suffix) == 0;
}

/* Finish a swap of cleaned segments that a crash interrupted (cleaner.c):
 * "<base>.log.swap" exists, so the cleaned files were synced and the swap
 * was decided. The swapped segment ends exactly where the segment after
 * the replaced group starts, so every other segment with a base inside
 * [base, its end) is one it replaces: delete those, move the .swap files to
 * their names (over the old segment's files of the same base), and sync the
 * directory. logs is updated. */
static sm_err_t finish_swap(sm_log_t *log, int64_t base, i64vec_t *logs)
{
    char *p = sm_xasprintf("%s/%020" PRId64 ".log.swap", log->dir, base);
    int fd;
    sm_err_t err = sm_file_open(p, O_RDONLY, &fd);
    free(p);
    if (err)
        return err;
    int64_t size, end = base;
    if ((err = sm_file_size(fd, &size))) {
        sm_file_close(fd);
        return err;
    }
    sm_seg_scan_t sc;
    sm_seg_scan_init(&sc, fd, 0, size);
    sm_batch_info_t b;
    int64_t pos;
    while ((err = sm_seg_scan_next(&sc, &b, &pos)) == SM_OK)
        end = sm_batch_last_offset(&b) + 1;
    sm_file_close(fd);
    if (err != SM_ERR_NOT_FOUND && err != SM_ERR_CORRUPT)
        return err;
    err = SM_OK;
    SM_WARN("storage", "%s: completing the swap of cleaned segment %020" PRId64
            " (offsets up to %" PRId64 ") that a crash interrupted", log->name, base, end);
    int k = 0;
    for (int i = 0; i < logs->n; i++) {
        int64_t x = logs->v[i];
        if (x > base && x < end) {
            for (size_t j = 0; j < SM_ARRAY_LEN(seg_files); j++) {
                char *q = sm_xasprintf("%s/%020" PRId64 "%s", log->dir, x, seg_files[j]);
                (void)sm_file_unlink(q);
                free(q);
            }
            continue;
        }
        logs->v[k++] = x;
    }
    logs->n = k;
    for (size_t j = 1; j <= SM_ARRAY_LEN(seg_files) && !err; j++) { /* the .log last */
        const char *sfx = seg_files[j % SM_ARRAY_LEN(seg_files)];
        char *from = sm_xasprintf("%s/%020" PRId64 "%s.swap", log->dir, base, sfx);
        char *to = sm_xasprintf("%s/%020" PRId64 "%s", log->dir, base, sfx);
        err = access(from, F_OK) == 0 ? sm_file_rename(from, to) : SM_OK;
        free(from);
        free(to);
    }
    if (!err)
        err = sm_file_sync_dir(log->dir);
    if (err)
        return err;
    bool listed = false;
    for (int i = 0; i < logs->n; i++)
        listed |= logs->v[i] == base;
    if (!listed)
        vec_push(logs, base);
    return SM_OK;
}

/* One pass over the directory: segment base offsets (sorted) into *logs;
 * leftovers of interrupted deletions and state-file temporaries deleted;
 * the cleaner's unfinished output (*.cleaned, and .swap files without a
 * .log.swap) deleted and its decided swaps completed (finish_swap); index
 * files whose .log is missing (orphans) deleted. */
static sm_err_t list_dir(sm_log_t *log, i64vec_t *logs)
{
    DIR *d = opendir(log->dir);
    if (!d) {
        SM_ERROR("storage", "%s: opendir %s failed", log->name, log->dir);
        return SM_ERR_IO;
    }
    i64vec_t idx = {0}, tidx = {0}, swaps = {0};
    struct dirent *de;
    sm_err_t err = SM_OK;
    while ((de = readdir(d))) {
        const char *nm = de->d_name;
        int64_t base;
        size_t len = strlen(nm);
        if (parse_segment_name(nm, ".log.swap", &base)) {
            vec_push(&swaps, base);
        } else if (has_suffix(nm, ".cleaned")) {
            char *p = sm_xasprintf("%s/%s", log->dir, nm);
            (void)sm_file_unlink(p);
            free(p);
        } else if (parse_segment_name(nm, ".log", &base)) {
            vec_push(logs, base);
        } else if (parse_segment_name(nm, ".index", &base)) {
            vec_push(&idx, base);
        } else if (parse_segment_name(nm, ".timeindex", &base)) {
            vec_push(&tidx, base);
        } else if ((len > 8 && strcmp(nm + len - 8, ".deleted") == 0) ||
                   strcmp(nm, SM_LOG_STATE_FILE ".tmp") == 0 ||
                   strcmp(nm, SM_LOG_EPOCH_FILE ".tmp") == 0) {
            char *p = sm_xasprintf("%s/%s", log->dir, nm);
            (void)sm_file_unlink(p);
            free(p);
        }
    }
    closedir(d);
    for (int i = 0; i < swaps.n && !err; i++)
        err = finish_swap(log, swaps.v[i], logs);
    /* .swap files of a swap that was not decided (no .log.swap) */
    if (!err && (d = opendir(log->dir))) {
        while ((de = readdir(d))) {
            if (!has_suffix(de->d_name, ".swap"))
                continue;
            char *p = sm_xasprintf("%s/%s", log->dir, de->d_name);
            (void)sm_file_unlink(p);
            free(p);
        }
        closedir(d);
    }
    free(swaps.v);
    if (err) {
        free(idx.v);
        free(tidx.v);
        SM_ERROR("storage", "%s: cannot complete an interrupted swap of cleaned segments: %s",
                 log->name, sm_err_str(err));
        return err;
    }
    if (logs->n > 1)
        qsort(logs->v, (size_t)logs->n, sizeof *logs->v, cmp_i64);
    for (int k = 0; k < 2; k++) {
        i64vec_t *x = k ? &tidx : &idx;
        for (int i = 0; i < x->n; i++) {
            if (bsearch(&x->v[i], logs->v, (size_t)logs->n, sizeof *logs->v, cmp_i64))
                continue;
            char *p = sm_xasprintf("%s/%020" PRId64 "%s", log->dir, x->v[i],
                                   k ? ".timeindex" : ".index");
            SM_INFO("storage", "%s: removing orphan index %s", log->name, p);
            (void)sm_file_unlink(p);
            free(p);
        }
    }
    free(idx.v);
    free(tidx.v);
    return SM_OK;
}

/* Drop segments [from, nsegs) during load (after a cut or an overlap). */
static void drop_tail(sm_log_t *log, int from, const char *why)
{
    int n = log->nsegs - from;
    if (n <= 0)
        return;
    SM_WARN("storage", "%s: deleting %d segment(s) from offset %" PRId64 ": %s", log->name, n,
            log->segs[from]->base_offset, why);
    sm_segment_t **gone = sm_xcalloc((size_t)n, sizeof *gone);
    sm_log_segs_remove(log, from, n, gone);
    sm_log_segs_finish_delete(gone, n);
    free(gone);
}

static void note_epoch(void *ctx, const sm_batch_info_t *b)
{
    sm_log_epochs_assign(ctx, b->leader_epoch, b->base_offset);
}

sm_err_t sm_log_load(sm_log_t *log, const sm_log_hint_t *hint)
{
    int64_t st_start, st_rp;
    bool st_found;
    sm_log_state_read(log->dir, log->name, &st_start, &st_rp, &st_found);

    i64vec_t logs = {0};
    sm_err_t err = list_dir(log, &logs);
    if (err)
        return err;
    int64_t *bases = logs.v;
    int nbases = logs.n;
    bool *idx_ok = sm_xcalloc((size_t)nbases + 1, sizeof *idx_ok);
    for (int i = 0; i < nbases; i++) {
        sm_segment_t *seg;
        if ((err = sm_segment_load(log->dir, bases[i], log->cfg.segment_index_bytes, &seg,
                                   &idx_ok[i])))
            goto out;
        sm_log_seg_push(log, seg);
    }

    if (log->nsegs == 0) {
        sm_segment_t *seg;
        int64_t base = st_found ? st_start : hint->have_start ? hint->start : 0;
        if ((err = sm_segment_create(log->dir, base, log->cfg.segment_index_bytes, &seg)))
            goto out;
        sm_log_seg_push(log, seg);
        idx_ok[0] = true;
    }

    /* Clean only if the active segment ends where the clean shutdown said. */
    bool clean = hint->clean && hint->have_rp && idx_ok[log->nsegs - 1];
    if (clean) {
        sm_segment_t *act = sm_log_active(log);
        err = sm_segment_load_tail(act);
        if (err && err != SM_ERR_CORRUPT)
            goto out;
        if (err || act->end_offset != hint->rp) {
            SM_WARN("storage", "%s: %s.log does not end where the clean shutdown left it "
                    "(offset %" PRId64 ", checkpoint %" PRId64 "); recovering", log->name,
                    act->path, err ? (int64_t)-1 : act->end_offset, hint->rp);
            clean = false;
        }
        err = SM_OK;
    }
    /* Both the state file and the checkpoint hold recovery points that
     * were durable when written (truncation rewrites both before it
     * returns), so the larger is a safe lower bound of what is on disk. */
    int64_t rp_hint = st_found ? st_rp : 0;
    if (hint->have_rp && hint->rp > rp_hint)
        rp_hint = hint->rp;
    int recover_from = clean ? log->nsegs : sm_log_seg_find(log, rp_hint);
    if (!clean && !st_found && !hint->have_rp)
        recover_from = 0;
    int64_t scanned = 0, dropped_total = 0, validated = 0;
    for (int i = 0; i < log->nsegs; i++) {
        sm_segment_t *seg = log->segs[i];
        bool validate = i >= recover_from;
        bool last = i == log->nsegs - 1;
        if (!validate && idx_ok[i] && last) {
            err = sm_segment_load_tail(seg);
            if (err == SM_ERR_CORRUPT) {
                SM_WARN("storage", "%s: %s.log tail unreadable; recovering it", log->name,
                        seg->path);
                validate = true;
                idx_ok[i] = false;
            } else if (err) {
                goto out;
            }
        }
        if (validate || !idx_ok[i]) {
            int64_t dropped;
            if (!validate)
                SM_INFO("storage", "%s: rebuilding indexes of %s", log->name, seg->path);
            if ((err = sm_segment_rebuild(seg, log->name, validate, clean ? INT64_MAX : rp_hint,
                                          log->cfg.index_interval_bytes, &dropped, &validated,
                                          validate ? note_epoch : NULL, log)))
                goto out;
            /* Indexes rebuilt from the recovery point on need no fsync: a
             * crash before the recovery point passes them rebuilds them
             * again, and the flush that moves it past a sealed segment
             * syncs that segment's indexes. Trusted segments get no such
             * second chance. (With 10,000 recovered logs this saves 20,000
             * fsyncs at start-up.) */
            if (!validate && (err = sm_segment_sync_indexes(seg)))
                goto out;
            scanned += seg->size + dropped;
            dropped_total += dropped;
            if (dropped > 0 && !last) {
                drop_tail(log, i + 1, "they follow a truncated segment");
                break;
            }
        } else if (!last) {
            seg->end_offset = log->segs[i + 1]->base_offset;
        }
        if (!last && (validate ? seg->end_offset != log->segs[i + 1]->base_offset
                               : seg->end_offset > log->segs[i + 1]->base_offset)) {
            drop_tail(log, i + 1, "they do not continue the previous segment");
            break;
        }
    }
    if (!clean && dropped_total > 0)
        SM_WARN("storage", "%s: recovery scanned %" PRId64 " bytes (validated %" PRId64
                " unflushed), dropped %" PRId64, log->name, scanned, validated, dropped_total);
    else if (!clean && scanned > 0)
        SM_INFO("storage", "%s: recovery scanned %" PRId64 " bytes (validated %" PRId64
                " unflushed), nothing dropped", log->name, scanned, validated);

    int64_t end = sm_log_active(log)->end_offset;
    int64_t start = st_found ? st_start : hint->have_start ? hint->start : log->segs[0]->base_offset;
    start = SM_MAX(start, log->segs[0]->base_offset);
    start = SM_MIN(start, end);
    log->start_offset = start;
    log->end_offset = end;
    log->recovery_point = clean ? end : SM_MIN(rp_hint, end);
    log->state_rp = st_found ? st_rp : 0;
    /* A recovered log has unsynced bytes in rebuilt indexes and maybe a cut
     * file: the next close must write them out. */
    log->dirty = !clean;
    SM_DEBUG("storage", "%s: loaded %d segment(s), offsets [%" PRId64 ", %" PRId64 ")%s",
             log->name, log->nsegs, start, end, clean ? "" : " after recovery");
out:
    free(bases);
    free(idx_ok);
    return err;
}
