/* test_storage_crash.c - the partition log through the fault-injecting file
 * layer (sm_file_set_ops):
 *  - a crash after every file operation of a workload that rolls segments,
 *    flushes, moves the log start and truncates (the Nth operation is torn
 *    when it is a write, every later one fails, the log is abandoned, then
 *    reopened with the real file system): the log always opens, everything
 *    flushed before the crash is there, every batch served validates and
 *    offsets are contiguous;
 *  - an I/O error at the Nth write, then the workload goes on: the same
 *    invariants, and the log keeps working;
 *  - disk full for a while: appends fail with SM_ERR_NOSPC, reads go on,
 *    writes resume when space returns, nothing is lost;
 *  - a failed fsync: the log refuses appends until a repair flush succeeds;
 *  - group commit: many waiters, one fsync;
 *  - the segment file cache: fds bounded, eviction under a held slice;
 *  - Kafka's checkpoint files and the clean-shutdown marker. */
#define _GNU_SOURCE
#include "batch.h"
#include "file.h"
#include "segfiles.h"
#include "storage/log.h"
#include "sm_test.h"
#include "sm_test_fs.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <pthread.h>
#include <sched.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/stat.h>
#include <unistd.h>

static char root[256];

/* ------------------------------------------------------------ fault layer */

enum { MODE_OFF, MODE_CRASH, MODE_ERROR, MODE_NOSPC };
static int mode;
static long op_count, fail_at; /* operations counted; the one that fails */
static bool crashed;
static long sync_count;
static bool fail_next_sync;

static bool hit(void)
{
    if (mode == MODE_OFF)
        return false;
    if (crashed)
        return true;
    return ++op_count == fail_at;
}

static int f_open(const char *path, int flags, mode_t m)
{
    if ((flags & (O_CREAT | O_WRONLY | O_RDWR)) && crashed) {
        errno = EIO;
        return -1;
    }
    return open(path, flags, m);
}
static ssize_t f_pwrite(int fd, const void *buf, size_t n, off_t off)
{
    if (mode == MODE_NOSPC) {
        errno = ENOSPC;
        return -1;
    }
    if (hit()) {
        if (mode == MODE_CRASH && !crashed) {
            crashed = true; /* torn: half of it lands, then the machine stops */
            if (n > 1)
                (void)pwrite(fd, buf, n / 2, off);
        }
        if (mode == MODE_ERROR && n > 1 && (op_count & 1))
            return pwrite(fd, buf, n / 2, off); /* short write; the retry fails below */
        errno = EIO;
        return -1;
    }
    return pwrite(fd, buf, n, off);
}
static int f_fdatasync(int fd)
{
    sync_count++;
    if (fail_next_sync) {
        fail_next_sync = false;
        errno = EIO;
        return -1;
    }
    if (hit()) {
        crashed = mode == MODE_CRASH;
        errno = EIO;
        return -1;
    }
    return fdatasync(fd);
}
static int f_fsync(int fd)
{
    if (hit()) {
        crashed = mode == MODE_CRASH;
        errno = EIO;
        return -1;
    }
    return fsync(fd);
}
static int f_ftruncate(int fd, off_t len)
{
    if (hit()) {
        crashed = mode == MODE_CRASH;
        errno = EIO;
        return -1;
    }
    return ftruncate(fd, len);
}
static int f_rename(const char *a, const char *b)
{
    if (hit()) {
        crashed = mode == MODE_CRASH;
        errno = EIO;
        return -1;
    }
    return rename(a, b);
}
static int f_unlink(const char *p)
{
    if (hit()) {
        crashed = mode == MODE_CRASH;
        errno = EIO;
        return -1;
    }
    return unlink(p);
}

static sm_file_ops_t fault_ops;
static void faults_on(int m, long at)
{
    fault_ops = *sm_file_os_ops();
    fault_ops.open = f_open;
    fault_ops.pwrite = f_pwrite;
    fault_ops.fdatasync = f_fdatasync;
    fault_ops.fsync = f_fsync;
    fault_ops.ftruncate = f_ftruncate;
    fault_ops.rename = f_rename;
    fault_ops.unlink = f_unlink;
    mode = m;
    op_count = 0;
    fail_at = at;
    crashed = false;
    sm_file_set_ops(&fault_ops);
}
static void faults_off(void)
{
    mode = MODE_OFF;
    crashed = false;
    sm_file_set_ops(NULL);
}

/* ------------------------------------------------------------ helpers */


/* A batch of n records whose values encode (tag, i) so content is checked,
 * padded to val_pad bytes. */
static int val_pad;
static sm_err_t append_tagged(sm_log_t *log, int tag, int n, sm_append_info_t *ai)
{
    static __thread char vals[8][2048];
    sm_record_in_t recs[8];
    for (int i = 0; i < n; i++) {
        int len = snprintf(vals[i], sizeof vals[i], "v-%d-%d", tag, i);
        if (len < val_pad) {
            memset(vals[i] + len + 1, 'p', (size_t)(val_pad - len - 1));
            len = val_pad;
        }
        recs[i] = (sm_record_in_t){.key = "k", .key_len = 1, .value = vals[i],
                                   .value_len = (size_t)len, .timestamp = 1000 + tag};
    }
    sm_batch_params_t bp = {.leader_epoch = -1, .producer_id = -1, .producer_epoch = -1,
                            .base_sequence = -1};
    sm_wbuf_t w;
    sm_wbuf_init(&w);
    sm_batch_encode(&w, &bp, recs, n);
    sm_err_t err = sm_log_append(log, w.mem, w.len, 3, 5000 + tag, ai);
    sm_wbuf_free(&w);
    return err;
}

/* Read every batch from the log start to the end; each must validate and
 * offsets must be contiguous. Returns the number of batches, -1 on a
 * violation. tags[offset - start] gets the tag of each offset's record. */
static int read_all(sm_log_t *log, int *tags, int ntags)
{
    int64_t off = sm_log_start_offset(log), end = sm_log_end_offset(log);
    int batches = 0;
    while (off < end) {
        sm_log_slice_t sl;
        if (sm_log_read(log, off, INT64_MAX, 1 << 20, true, &sl) != SM_OK || sl.len == 0)
            return -1;
        uint8_t *buf = malloc((size_t)sl.len);
        ssize_t got = pread(sl.fd, buf, (size_t)sl.len, sl.file_pos);
        sm_ref_release(sl.ref);
        if (got != sl.len) {
            free(buf);
            return -1;
        }
        size_t pos = 0;
        while (pos < (size_t)sl.len) {
            sm_batch_info_t b;
            const char *why;
            if (sm_batch_header_parse(buf + pos, (size_t)sl.len - pos, &b) != SM_OK ||
                sm_batch_validate(buf + pos, (size_t)sm_batch_total_size(&b), &b, &why) != SM_OK) {
                free(buf);
                return -1;
            }
            if (b.base_offset > off) { /* a gap */
                free(buf);
                return -1;
            }
            sm_record_iter_t it;
            sm_record_t r;
            if (sm_record_iter_init(&it, buf + pos, (size_t)sm_batch_total_size(&b)) == SM_OK)
                while (sm_record_iter_next(&it, &r) == SM_OK) {
                    int64_t o = b.base_offset + r.offset_delta;
                    int tag = -1;
                    if (r.value && sscanf((const char *)r.value, "v-%d-", &tag) == 1 && o >= 0 &&
                        o - sm_log_start_offset(log) < ntags && o >= sm_log_start_offset(log))
                        tags[o - sm_log_start_offset(log)] = tag;
                }
            off = sm_batch_last_offset(&b) + 1;
            pos += (size_t)sm_batch_total_size(&b);
            batches++;
        }
        free(buf);
    }
    return batches;
}

/* The workload: small segments (a roll every few appends), flushes, a
 * DeleteRecords and a truncation. Records which offsets are durable
 * (append OK, then a flush OK) and their tags. */
typedef struct expect {
    int64_t durable_end; /* offsets below were flushed successfully */
    int tag_at[256];     /* tag of each offset */
    int64_t start;       /* log start after the last successful DeleteRecords */
} expect_t;

static void workload(sm_log_t *log, expect_t *ex)
{
    int64_t next = sm_log_end_offset(log);
    for (int t = 0; t < 24; t++) {
        sm_append_info_t ai;
        int n = 1 + t % 3;
        if (append_tagged(log, t, n, &ai) == SM_OK) {
            for (int64_t o = ai.base_offset; o <= ai.last_offset && o < 256; o++)
                ex->tag_at[o] = t;
            next = ai.last_offset + 1;
        }
        if (t % 4 == 3 && sm_log_flush(log) == SM_OK)
            ex->durable_end = SM_MAX(ex->durable_end, sm_log_durable_offset(log));
        if (t == 10 && sm_log_delete_records(log, 3) == SM_OK)
            ex->start = 3;
        if (t == 17 && sm_log_truncate_to(log, next - 1) == SM_OK) {
            next = sm_log_end_offset(log);
            if (ex->durable_end > next)
                ex->durable_end = next;
        }
    }
}

static void small_config(sm_log_config_t *c)
{
    sm_log_config_default(c);
    c->segment_bytes = 300; /* about three batches */
    c->index_interval_bytes = 60;
    c->retention_ms = -1;
}

/* Reopen after a crash and check the invariants. */
static void check_recovered(const char *dir, const expect_t *ex, long step)
{
    sm_log_config_t c;
    small_config(&c);
    sm_log_t *log;
    sm_err_t err = sm_log_open(dir, "crash-0", &c, &log);
    CHECK_EQ(err, SM_OK);
    if (err) {
        fprintf(stderr, "  (crash at step %ld: open failed)\n", step);
        return;
    }
    int tags[256];
    for (int i = 0; i < 256; i++)
        tags[i] = -2;
    int nb = read_all(log, tags, 256);
    CHECK(nb >= 0);
    int64_t start = sm_log_start_offset(log), end = sm_log_end_offset(log);
    bool lost = false;
    for (int64_t o = SM_MAX(start, ex->start); o < ex->durable_end && o < 256; o++)
        if (o >= end || tags[o - start] != ex->tag_at[o])
            lost = true;
    CHECK(!lost);
    if (nb < 0 || lost)
        fprintf(stderr, "  (crash at step %ld: batches %d, [%" PRId64 ", %" PRId64
                "), durable end %" PRId64 ")\n", step, nb, start, end, ex->durable_end);
    /* and it keeps working: the new batch reads back, before and after a
     * clean reopen */
    sm_append_info_t ai;
    CHECK_EQ(append_tagged(log, 99, 2, &ai), SM_OK);
    CHECK_EQ(ai.base_offset, end);
    CHECK_EQ(sm_log_flush(log), SM_OK);
    for (int round = 0; round < 2; round++) {
        for (int i = 0; i < 256; i++)
            tags[i] = -2;
        start = sm_log_start_offset(log);
        bool ok = read_all(log, tags, 256) >= 0 && end + 1 - start < 256 &&
                  tags[end - start] == 99 && tags[end + 1 - start] == 99;
        CHECK(ok);
        if (!ok)
            fprintf(stderr, "  (crash at step %ld: appended batch unreadable, round %d)\n", step,
                    round);
        sm_log_close(log);
        if (round == 0 && sm_log_open(dir, "crash-0", &c, &log) != SM_OK) {
            CHECK(!"reopen failed");
            return;
        }
    }
}

/* ------------------------------------------------------------ tests */

/* Count the operations of a clean run, then crash after each one. */
static void test_crash_at_every_step(void)
{
    char dir[300];
    snprintf(dir, sizeof dir, "%s/crashroot/crash-0", root);
    sm_log_config_t c;
    small_config(&c);
    expect_t ex;
    memset(&ex, 0, sizeof ex);

    sm_test_rm_rf(dir);
    sm_log_t *log;
    faults_on(MODE_CRASH, -1); /* never fails: just counts */
    CHECK_EQ(sm_log_open(dir, "crash-0", &c, &log), SM_OK);
    workload(log, &ex);
    long total = op_count;
    sm_log_close(log);
    faults_off();
    CHECK(total > 30);
    fprintf(stderr, "workload: %ld file operations\n", total);

    for (long step = 1; step <= total; step++) {
        sm_test_rm_rf(dir);
        memset(&ex, 0, sizeof ex);
        faults_on(MODE_CRASH, step);
        if (sm_log_open(dir, "crash-0", &c, &log) == SM_OK) {
            workload(log, &ex);
            sm_log_close(log); /* every write fails now: nothing more lands */
        }
        faults_off();
        check_recovered(dir, &ex, step);
    }
    sm_test_rm_rf(dir);
}

/* An I/O error (sometimes after a short write) at the Nth write; the
 * workload goes on, then a clean reopen. */
static void test_error_at_nth_write(void)
{
    char dir[300];
    snprintf(dir, sizeof dir, "%s/errroot/crash-0", root);
    sm_log_config_t c;
    small_config(&c);
    for (long step = 1; step <= 120; step += 3) {
        sm_test_rm_rf(dir);
        expect_t ex;
        memset(&ex, 0, sizeof ex);
        sm_log_t *log;
        faults_on(MODE_ERROR, step);
        if (sm_log_open(dir, "crash-0", &c, &log) == SM_OK) {
            workload(log, &ex);
            faults_off();
            /* a failed fsync leaves the log failed until a flush repairs it */
            if (sm_log_flush(log) != SM_OK)
                fprintf(stderr, "  (step %ld: repair flush failed)\n", step);
            CHECK_EQ(sm_log_failed(log), SM_OK);
            int tags[256];
            CHECK(read_all(log, tags, 256) >= 0);
            sm_log_close(log);
        }
        faults_off();
        check_recovered(dir, &ex, step);
    }
    sm_test_rm_rf(dir);
}

static void test_disk_full_then_space_returns(void)
{
    char dir[300];
    snprintf(dir, sizeof dir, "%s/full/full-0", root);
    sm_log_config_t c;
    small_config(&c);
    sm_log_t *log;
    CHECK_EQ(sm_log_open(dir, "full-0", &c, &log), SM_OK);
    sm_append_info_t ai;
    for (int t = 0; t < 5; t++)
        CHECK_EQ(append_tagged(log, t, 2, &ai), SM_OK);
    int64_t end = sm_log_end_offset(log);
    faults_on(MODE_NOSPC, 0);
    for (int t = 5; t < 15; t++) /* some of these roll: creating files fails too */
        CHECK_EQ(append_tagged(log, t, 2, &ai), SM_ERR_NOSPC);
    CHECK_EQ(sm_log_end_offset(log), end);
    int tags[256];
    CHECK_EQ(read_all(log, tags, 256) > 0, 1); /* reads go on */
    CHECK_EQ(tags[end - 1], 4);
    faults_off();
    for (int t = 15; t < 25; t++)
        CHECK_EQ(append_tagged(log, t, 2, &ai), SM_OK);
    CHECK_EQ(sm_log_end_offset(log), end + 20);
    CHECK_EQ(sm_log_flush(log), SM_OK);
    CHECK(read_all(log, tags, 256) > 0);
    CHECK_EQ(tags[end], 15);
    sm_log_close(log);
    CHECK_EQ(sm_log_open(dir, "full-0", &c, &log), SM_OK);
    CHECK_EQ(sm_log_end_offset(log), end + 20);
    CHECK_EQ(sm_log_destroy(log), SM_OK);
}

static void test_failed_fsync_blocks_appends_until_repaired(void)
{
    char dir[300];
    snprintf(dir, sizeof dir, "%s/fsync/fs-0", root);
    sm_log_config_t c;
    small_config(&c);
    c.segment_bytes = 1 << 20;
    sm_log_t *log;
    CHECK_EQ(sm_log_open(dir, "fs-0", &c, &log), SM_OK);
    sm_append_info_t ai;
    CHECK_EQ(append_tagged(log, 1, 3, &ai), SM_OK);
    faults_on(MODE_OFF, 0);
    sm_file_set_ops(&fault_ops);
    fail_next_sync = true;
    CHECK_EQ(sm_log_flush(log), SM_ERR_IO);
    CHECK_EQ(sm_log_failed(log), SM_ERR_IO);
    CHECK_EQ(append_tagged(log, 2, 1, &ai), SM_ERR_IO);
    CHECK(sm_log_flush_due(log, 0));
    CHECK_EQ(sm_log_durable_offset(log), 0);
    CHECK_EQ(sm_log_flush(log), SM_OK); /* rewrites the tail, syncs */
    CHECK_EQ(sm_log_failed(log), SM_OK);
    CHECK_EQ(sm_log_durable_offset(log), 3);
    CHECK_EQ(append_tagged(log, 3, 1, &ai), SM_OK);
    CHECK_EQ(ai.base_offset, 3);
    faults_off();
    CHECK_EQ(sm_log_destroy(log), SM_OK);
}

typedef struct counter {
    sm_log_waiter_t w;
    int *done;
    sm_err_t err;
} counter_t;
static void count_done(sm_log_waiter_t *w, sm_err_t err)
{
    counter_t *c = (counter_t *)w;
    c->err = err;
    (*c->done)++;
}

static void test_group_commit_one_fsync(void)
{
    char dir[300];
    snprintf(dir, sizeof dir, "%s/gc/gc-0", root);
    sm_log_config_t c;
    sm_log_config_default(&c);
    c.flush_messages = 1;
    sm_log_t *log;
    CHECK_EQ(sm_log_open(dir, "gc-0", &c, &log), SM_OK);
    sm_append_info_t ai;
    /* inline flush (no deferral): durable at once */
    CHECK_EQ(append_tagged(log, 0, 1, &ai), SM_OK);
    CHECK_EQ(sm_log_durable_offset(log), 1);

    sm_log_defer_flush(true);
    int done = 0;
    counter_t w[8];
    for (int i = 0; i < 8; i++) {
        CHECK_EQ(append_tagged(log, i + 1, 1, &ai), SM_OK);
        CHECK(sm_log_sync_required(log));
        w[i] = (counter_t){.w = {.target = ai.last_offset + 1, .done = count_done},
                           .done = &done, .err = -1};
        sm_log_wait_t r = sm_log_wait_durable(log, &w[i].w);
        CHECK_EQ(r, i == 0 ? SM_LOG_WAIT_START : SM_LOG_WAIT_QUEUED);
    }
    sm_log_defer_flush(false);
    CHECK_EQ(sm_log_durable_offset(log), 1);
    faults_on(MODE_OFF, 0);
    sm_file_set_ops(&fault_ops);
    sync_count = 0;
    sm_log_run_flusher(log);
    faults_off();
    CHECK_EQ(done, 8);
    CHECK_EQ(sync_count, 1); /* eight appends, one fdatasync */
    for (int i = 0; i < 8; i++)
        CHECK_EQ(w[i].err, SM_OK);
    CHECK_EQ(sm_log_durable_offset(log), 9);
    counter_t late = {.w = {.target = 9, .done = count_done}, .done = &done};
    CHECK_EQ(sm_log_wait_durable(log, &late.w), SM_LOG_WAIT_DURABLE);
    CHECK_EQ(sm_log_destroy(log), SM_OK);
}

/* Group commit with real threads: each appends and waits for its records
 * to be durable; whoever is told to start the flusher runs it. */
typedef struct gc_waiter {
    sm_log_waiter_t w;
    int done;     /* atomic */
    sm_err_t err;
} gc_waiter_t;
static void gc_done(sm_log_waiter_t *w, sm_err_t err)
{
    gc_waiter_t *g = (gc_waiter_t *)w;
    g->err = err;
    __atomic_store_n(&g->done, 1, __ATOMIC_RELEASE);
}
static sm_log_t *gc_log;
static int gc_failures;
static void *gc_thread(void *arg)
{
    int id = (int)(intptr_t)arg;
    sm_log_defer_flush(true);
    for (int i = 0; i < 150; i++) {
        sm_append_info_t ai;
        if (append_tagged(gc_log, id * 1000 + i, 1, &ai) != SM_OK) {
            __atomic_add_fetch(&gc_failures, 1, __ATOMIC_RELAXED);
            continue;
        }
        gc_waiter_t g = {.w = {.target = ai.last_offset + 1, .done = gc_done}};
        sm_log_wait_t r = sm_log_wait_durable(gc_log, &g.w);
        if (r == SM_LOG_WAIT_START)
            sm_log_run_flusher(gc_log);
        while (r != SM_LOG_WAIT_DURABLE && !__atomic_load_n(&g.done, __ATOMIC_ACQUIRE))
            sched_yield();
        if (g.err != SM_OK || sm_log_durable_offset(gc_log) < g.w.target)
            __atomic_add_fetch(&gc_failures, 1, __ATOMIC_RELAXED);
    }
    sm_log_defer_flush(false);
    return NULL;
}

static void test_group_commit_threads(void)
{
    char dir[300];
    snprintf(dir, sizeof dir, "%s/gct/gct-0", root);
    sm_log_config_t c;
    sm_log_config_default(&c);
    c.flush_messages = 1;
    c.segment_bytes = 4096; /* rolls while flushes run */
    CHECK_EQ(sm_log_open(dir, "gct-0", &c, &gc_log), SM_OK);
    pthread_t th[4];
    for (int i = 0; i < 4; i++)
        pthread_create(&th[i], NULL, gc_thread, (void *)(intptr_t)(i + 1));
    for (int i = 0; i < 4; i++)
        pthread_join(th[i], NULL);
    CHECK_EQ(gc_failures, 0);
    CHECK_EQ(sm_log_end_offset(gc_log), 600);
    CHECK_EQ(sm_log_durable_offset(gc_log), 600);
    int tags[600];
    CHECK_EQ(read_all(gc_log, tags, 600) > 0, 1);
    sm_log_close(gc_log);
}

static int count_fds(void)
{
    int n = 0;
    DIR *d = opendir("/proc/self/fd");
    while (d && readdir(d))
        n++;
    if (d)
        closedir(d);
    return n;
}

static void test_fd_cache_bounds_open_files(void)
{
    enum { N = 40 };
    int old = sm_segfiles_set_budget(5);
    int base_fds = count_fds();
    sm_log_config_t c;
    sm_log_config_default(&c);
    sm_log_t *logs[N];
    sm_append_info_t ai;
    for (int i = 0; i < N; i++) {
        char dir[300];
        snprintf(dir, sizeof dir, "%s/fdc/fdc-%d", root, i);
        CHECK_EQ(sm_log_open(dir, "fdc", &c, &logs[i]), SM_OK);
        CHECK_EQ(append_tagged(logs[i], i, 2, &ai), SM_OK);
    }
    CHECK(sm_segfiles_open_count() <= 5);
    CHECK(count_fds() <= base_fds + 3 * 5 + 2);
    /* a slice pins its fd across eviction */
    sm_log_slice_t sl;
    CHECK_EQ(sm_log_read(logs[0], 0, INT64_MAX, 1 << 20, true, &sl), SM_OK);
    for (int i = 1; i < N; i++) { /* touch the others: logs[0] is evicted */
        int tags[4];
        CHECK(read_all(logs[i], tags, 4) == 1);
        CHECK_EQ(tags[1], i);
    }
    uint8_t buf[512];
    CHECK_EQ(pread(sl.fd, buf, (size_t)sl.len, sl.file_pos), sl.len);
    sm_batch_info_t b;
    const char *why;
    CHECK_EQ(sm_batch_validate(buf, (size_t)sl.len, &b, &why), SM_OK);
    sm_ref_release(sl.ref);
    CHECK(count_fds() <= base_fds + 3 * 5 + 2);
    for (int i = 0; i < N; i++)
        sm_log_close(logs[i]);
    sm_segfiles_set_budget(old);
}

static char *slurp(const char *path)
{
    static char buf[4096];
    FILE *f = fopen(path, "r");
    if (!f)
        return NULL;
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    buf[n] = 0;
    fclose(f);
    return buf;
}

static void test_checkpoints_and_clean_marker(void)
{
    char ld[300], dir[400], path[500];
    snprintf(ld, sizeof ld, "%s/ckpt", root);
    sm_log_config_t c;
    sm_log_config_default(&c);
    sm_log_t *a, *b;
    snprintf(dir, sizeof dir, "%s/orders-0", ld);
    CHECK_EQ(sm_log_open(dir, "orders-0", &c, &a), SM_OK);
    snprintf(dir, sizeof dir, "%s/orders-1", ld);
    CHECK_EQ(sm_log_open(dir, "orders-1", &c, &b), SM_OK);
    sm_append_info_t ai;
    for (int i = 0; i < 3; i++)
        CHECK_EQ(append_tagged(a, i, 2, &ai), SM_OK);
    CHECK_EQ(append_tagged(b, 7, 1, &ai), SM_OK);
    CHECK_EQ(sm_log_delete_records(a, 2), SM_OK);
    CHECK_EQ(sm_log_flush(a), SM_OK);
    sm_log_checkpoint_dirs(); /* periodic write while open */
    snprintf(path, sizeof path, "%s/recovery-point-offset-checkpoint", ld);
    char *s = slurp(path);
    CHECK(s && strstr(s, "orders 0 6\n") && strstr(s, "orders 1 0\n") && !strncmp(s, "0\n2\n", 4));
    snprintf(path, sizeof path, "%s/.kafka_cleanshutdown", ld);
    CHECK(access(path, F_OK) != 0);
    sm_log_close(a);
    CHECK(access(path, F_OK) != 0); /* b is still open */
    sm_log_close(b);
    CHECK(access(path, F_OK) == 0);
    snprintf(path, sizeof path, "%s/recovery-point-offset-checkpoint", ld);
    s = slurp(path);
    CHECK(s && strstr(s, "orders 0 6\n") && strstr(s, "orders 1 1\n"));
    snprintf(path, sizeof path, "%s/log-start-offset-checkpoint", ld);
    s = slurp(path);
    CHECK(s && strstr(s, "orders 0 2\n") && strstr(s, "orders 1 0\n"));
    snprintf(path, sizeof path, "%s/orders-0/leader-epoch-checkpoint", ld);
    s = slurp(path);
    CHECK(s && !strcmp(s, "0\n1\n3 2\n")); /* epoch 3 from offset 0, moved up to the start */

    /* reopen: the marker is consumed, the logs are clean and intact */
    snprintf(dir, sizeof dir, "%s/orders-0", ld);
    CHECK_EQ(sm_log_open(dir, "orders-0", &c, &a), SM_OK);
    snprintf(path, sizeof path, "%s/.kafka_cleanshutdown", ld);
    CHECK(access(path, F_OK) != 0);
    CHECK_EQ(sm_log_start_offset(a), 2);
    CHECK_EQ(sm_log_end_offset(a), 6);
    int32_t ep;
    int64_t eo;
    CHECK_EQ(sm_log_epoch_end_offset(a, 5, &ep, &eo), SM_OK);
    CHECK_EQ(ep, 3);
    CHECK_EQ(eo, 6);
    CHECK_EQ(sm_log_epoch_end_offset(a, 1, &ep, &eo), SM_ERR_NOT_FOUND);
    /* without a state file the log start comes from the checkpoint */
    sm_log_close(a);
    snprintf(path, sizeof path, "%s/orders-0/samsa-log-state", ld);
    unlink(path);
    CHECK_EQ(sm_log_open(dir, "orders-0", &c, &a), SM_OK);
    CHECK_EQ(sm_log_start_offset(a), 2);
    CHECK_EQ(sm_log_end_offset(a), 6);
    sm_log_close(a);
}

static long long pread_bytes;
static ssize_t counting_pread(int fd, void *buf, size_t n, off_t off)
{
    ssize_t r = pread(fd, buf, n, off);
    if (r > 0)
        pread_bytes += r;
    return r;
}

static void copy_file(const char *from, const char *to)
{
    int in = open(from, O_RDONLY), out = open(to, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    char buf[65536];
    ssize_t n;
    while (in >= 0 && out >= 0 && (n = read(in, buf, sizeof buf)) > 0)
        CHECK_EQ(write(out, buf, (size_t)n), n);
    close(in);
    close(out);
}

/* After a crash, recovery reads the unflushed tail, not the whole segment:
 * batches below the recovery point only have their headers read. A batch
 * damaged above the recovery point is cut off with everything after it. */
static void test_recovery_reads_only_the_unflushed_tail(void)
{
    char dir[300], copy[300];
    snprintf(dir, sizeof dir, "%s/tail/tl-0", root);
    sm_log_config_t c;
    sm_log_config_default(&c);
    sm_log_t *log;
    CHECK_EQ(sm_log_open(dir, "tl-0", &c, &log), SM_OK);
    sm_append_info_t ai;
    val_pad = 1000; /* 8 KB batches: headers are a small part of the file */
    for (int t = 0; t < 400; t++)
        CHECK_EQ(append_tagged(log, t, 8, &ai), SM_OK);
    CHECK_EQ(sm_log_flush(log), SM_OK);
    sm_log_checkpoint_dirs(); /* the periodic checkpoint knows the recovery point */
    int64_t durable = sm_log_durable_offset(log);
    for (int t = 400; t < 410; t++)
        CHECK_EQ(append_tagged(log, t, 8, &ai), SM_OK);
    /* "crash": copy the files of the open log next to it */
    snprintf(copy, sizeof copy, "%s/tail/tl-1", root);
    mkdir(copy, 0755);
    const char *files[] = {"00000000000000000000.log", "00000000000000000000.index",
                           "00000000000000000000.timeindex"};
    char a[400], b[400];
    for (int i = 0; i < 3; i++) {
        snprintf(a, sizeof a, "%s/%s", dir, files[i]);
        snprintf(b, sizeof b, "%s/%s", copy, files[i]);
        copy_file(a, b);
    }
    sm_log_close(log);
    struct stat st;
    snprintf(b, sizeof b, "%s/%s", copy, files[0]);
    CHECK_EQ(stat(b, &st), 0);
    /* damage the CRC-covered bytes of the third unflushed batch (offset
     * durable + 16), found by walking the batch lengths */
    int fd = open(b, O_RDWR);
    int64_t pos = 0;
    for (int i = 0; i < 402; i++) {
        uint8_t h[12];
        CHECK_EQ(pread(fd, h, 12, (off_t)pos), 12);
        pos += 12 + (int64_t)((uint32_t)h[8] << 24 | (uint32_t)h[9] << 16 | (uint32_t)h[10] << 8 | h[11]);
    }
    CHECK_EQ(pwrite(fd, "XX", 2, (off_t)(pos + 70)), 2);
    close(fd);
    /* a crash leaves no clean marker, and the checkpoint names tl-1 with the
     * recovery point tl-0 had */
    char ck[400];
    snprintf(ck, sizeof ck, "%s/tail/.kafka_cleanshutdown", root);
    unlink(ck);
    snprintf(ck, sizeof ck, "%s/tail/recovery-point-offset-checkpoint", root);
    FILE *f = fopen(ck, "w");
    fprintf(f, "0\n1\ntl 1 %" PRId64 "\n", durable);
    fclose(f);

    sm_file_ops_t ops = *sm_file_os_ops();
    ops.pread = counting_pread;
    sm_log_t *rec;
    sm_file_set_ops(&ops);
    pread_bytes = 0;
    CHECK_EQ(sm_log_open(copy, "tl-1", &c, &rec), SM_OK);
    sm_file_set_ops(NULL);
    fprintf(stderr, "segment %lld bytes, recovery read %lld bytes\n", (long long)st.st_size,
            pread_bytes);
    CHECK(pread_bytes < st.st_size / 4);
    CHECK_EQ(sm_log_end_offset(rec), durable + 2 * 8); /* cut at the damaged batch */
    int tags[4096];
    CHECK(read_all(rec, tags, 4096) > 0);
    CHECK_EQ(tags[durable + 15], 401);
    sm_log_close(rec);
    val_pad = 0;
}

/* Leftovers are cleaned on open: orphan index files, *.deleted, temps. */
static void test_open_removes_leftovers(void)
{
    char dir[300], p[400];
    snprintf(dir, sizeof dir, "%s/left/left-0", root);
    sm_log_config_t c;
    sm_log_config_default(&c);
    sm_log_t *log;
    CHECK_EQ(sm_log_open(dir, "left-0", &c, &log), SM_OK);
    sm_append_info_t ai;
    CHECK_EQ(append_tagged(log, 1, 2, &ai), SM_OK);
    sm_log_close(log);
    const char *junk[] = {"00000000000000000077.index", "00000000000000000077.timeindex",
                          "00000000000000000005.log.deleted", "leader-epoch-checkpoint.tmp",
                          "samsa-log-state.tmp"};
    for (size_t i = 0; i < SM_ARRAY_LEN(junk); i++) {
        snprintf(p, sizeof p, "%s/%s", dir, junk[i]);
        int fd = open(p, O_WRONLY | O_CREAT, 0644);
        CHECK(fd >= 0);
        close(fd);
    }
    CHECK_EQ(sm_log_open(dir, "left-0", &c, &log), SM_OK);
    for (size_t i = 0; i < SM_ARRAY_LEN(junk); i++) {
        snprintf(p, sizeof p, "%s/%s", dir, junk[i]);
        CHECK(access(p, F_OK) != 0);
    }
    snprintf(p, sizeof p, "%s/00000000000000000000.index", dir);
    CHECK(access(p, F_OK) == 0);
    CHECK_EQ(sm_log_end_offset(log), 2);
    sm_log_close(log);
}

int main(void)
{
    snprintf(root, sizeof root, "/tmp/samsa-test-crash-%d", (int)getpid());
    mkdir(root, 0755);
    RUN(test_crash_at_every_step);
    RUN(test_error_at_nth_write);
    RUN(test_disk_full_then_space_returns);
    RUN(test_failed_fsync_blocks_appends_until_repaired);
    RUN(test_group_commit_one_fsync);
    RUN(test_group_commit_threads);
    RUN(test_fd_cache_bounds_open_files);
    RUN(test_checkpoints_and_clean_marker);
    RUN(test_recovery_reads_only_the_unflushed_tail);
    RUN(test_open_removes_leftovers);
    sm_test_rm_rf(root);
    TEST_MAIN_END();
}
