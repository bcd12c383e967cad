/* test_storage.c - the partition log: append/read across rolls, read
 * limits, timestamps, clean reopen without a scan, crash recovery with torn
 * and garbage tails, index rebuild, truncation/retention/DeleteRecords, and
 * concurrent appends with a concurrent reader. */
#define _GNU_SOURCE
#include "batch.h"
#include "file.h"
#include "storage/log.h"
#include "sm_test.h"
#include "sm_test_fs.h"

#include <dirent.h>
#include <fcntl.h>
#include <pthread.h>
#include <sys/stat.h>
#include <unistd.h>

static char root[256];


static void copy_dir(const char *from, const char *to)
{
    mkdir(to, 0755);
    DIR *d = opendir(from);
    struct dirent *de;
    while ((de = readdir(d))) {
        if (de->d_name[0] == '.')
            continue;
        char a[512], b[512];
        snprintf(a, sizeof a, "%s/%s", from, de->d_name);
        snprintf(b, sizeof b, "%s/%s", to, de->d_name);
        int in = open(a, O_RDONLY), out = open(b, O_WRONLY | O_CREAT | O_TRUNC, 0644);
        char buf[65536];
        ssize_t n;
        while ((n = read(in, buf, sizeof buf)) > 0)
            if (write(out, buf, (size_t)n) != n)
                abort();
        close(in);
        close(out);
    }
    closedir(d);
}

static char *path_in(const char *dir, const char *name)
{
    static char p[1024];
    snprintf(p, sizeof p, "%s/%s", dir, name);
    return p;
}

static int64_t file_size(const char *p)
{
    struct stat st;
    return stat(p, &st) == 0 ? st.st_size : -1;
}

static int count_files(const char *dir, const char *suffix)
{
    DIR *d = opendir(dir);
    int n = 0;
    struct dirent *de;
    while ((de = readdir(d))) {
        size_t l = strlen(de->d_name), s = strlen(suffix);
        if (l > s && strcmp(de->d_name + l - s, suffix) == 0)
            n++;
    }
    closedir(d);
    return n;
}

/* One batch of n records, record i timestamp ts + i, value of vlen bytes. */
static void make_batch(sm_wbuf_t *w, int n, int64_t ts, int vlen)
{
    static __thread uint8_t val[4096]; /* per thread: the concurrency test appends from several */
    memset(val, 'v', sizeof val);
    sm_record_in_t recs[16];
    for (int i = 0; i < n; i++)
        recs[i] = (sm_record_in_t){.key = "key", .key_len = 3, .value = val,
                                   .value_len = vlen, .timestamp = ts + i};
    sm_batch_params_t bp = {.leader_epoch = -1, .producer_id = -1, .producer_epoch = -1,
                            .base_sequence = -1};
    sm_batch_encode(w, &bp, recs, n);
}

static sm_err_t append_one(sm_log_t *log, int n, int64_t ts, int vlen, sm_append_info_t *ai)
{
    sm_wbuf_t w;
    sm_wbuf_init(&w);
    make_batch(&w, n, ts, vlen);
    sm_err_t err = sm_log_append(log, w.mem, w.len, 3, 1000000, ai);
    sm_wbuf_free(&w);
    return err;
}

static sm_log_config_t small_cfg(void)
{
    sm_log_config_t c;
    sm_log_config_default(&c);
    c.segment_bytes = 2000;
    c.index_interval_bytes = 150;
    return c;
}

/* Read the slice bytes and check they are valid whole batches; returns the
 * number of batches and fills the first batch's header. */
static int slice_check(const sm_log_slice_t *s, sm_batch_info_t *first, int64_t *last_offset)
{
    if (s->len <= 0)
        return 0;
    uint8_t *buf = malloc((size_t)s->len);
    ssize_t got = pread(s->fd, buf, (size_t)s->len, s->file_pos);
    int nb = -1;
    int32_t nr;
    const char *why;
    if (got == s->len && sm_batches_validate(buf, (size_t)s->len, &nb, &nr, &why) == SM_OK) {
        if (sm_batch_header_parse(buf, (size_t)s->len, first) != SM_OK)
            nb = -1;
        size_t pos = 0;
        sm_batch_info_t b;
        while (pos < (size_t)s->len && sm_batch_header_parse(buf + pos, s->len - pos, &b) == SM_OK) {
            *last_offset = sm_batch_last_offset(&b);
            pos += (size_t)sm_batch_total_size(&b);
        }
    } else {
        nb = -1;
    }
    free(buf);
    return nb;
}

#define NBATCH 120
static int64_t bases[NBATCH], lasts[NBATCH];

/* Fill a log with NBATCH batches of 1..4 records, batch i timestamps
 * 10000 + 100 * i. */
static void fill(sm_log_t *log)
{
    for (int i = 0; i < NBATCH; i++) {
        sm_append_info_t ai;
        CHECK_EQ(append_one(log, 1 + i % 4, 10000 + 100 * i, 20 + (i * 37) % 200, &ai), SM_OK);
        bases[i] = ai.base_offset;
        lasts[i] = ai.last_offset;
        if (i > 0 && ai.base_offset != lasts[i - 1] + 1)
            CHECK(!"offsets not contiguous");
        CHECK_EQ(ai.records, 1 + i % 4);
        CHECK_EQ(ai.log_append_time, -1);
    }
}

/* Every offset reads back the batch that contains it. */
static void check_all_offsets(sm_log_t *log)
{
    int bad = 0;
    int64_t end = SM_MIN(sm_log_end_offset(log), lasts[NBATCH - 1] + 1);
    int b = 0;
    for (int64_t off = sm_log_start_offset(log); off < end; off++) {
        while (lasts[b] < off)
            b++;
        sm_log_slice_t s;
        sm_batch_info_t first;
        int64_t last;
        if (sm_log_read(log, off, INT64_MAX, 1, true, &s) != SM_OK) {
            bad++;
            continue;
        }
        if (slice_check(&s, &first, &last) != 1 || first.base_offset != bases[b] ||
            sm_batch_last_offset(&first) != lasts[b] || first.leader_epoch != 3)
            bad++;
        sm_ref_release(s.ref);
    }
    CHECK_EQ(bad, 0);
}

static void test_round_trip(void)
{
    char dir[300];
    snprintf(dir, sizeof dir, "%s/rt-0", root);
    sm_log_config_t c = small_cfg();
    sm_log_t *log;
    CHECK_EQ(sm_log_open(dir, "rt-0", &c, &log), SM_OK);
    CHECK_EQ(sm_log_end_offset(log), 0);
    sm_log_slice_t s;
    CHECK_EQ(sm_log_read(log, 0, INT64_MAX, 1000, true, &s), SM_OK);
    CHECK_EQ(s.len, 0);
    CHECK_EQ(sm_log_read(log, 1, INT64_MAX, 1000, true, &s), SM_ERR_RANGE);
    fill(log);
    CHECK_EQ(sm_log_end_offset(log), lasts[NBATCH - 1] + 1);
    CHECK(sm_log_segment_count(log) >= 5);
    CHECK_EQ(count_files(dir, ".log"), sm_log_segment_count(log));
    check_all_offsets(log);

    /* big max_bytes: whole batches, only from one segment */
    int64_t off = 0;
    int slices = 0;
    while (off < sm_log_end_offset(log)) {
        sm_batch_info_t first;
        int64_t last = -1;
        CHECK_EQ(sm_log_read(log, off, INT64_MAX, 1 << 20, false, &s), SM_OK);
        CHECK(s.len > 0 && s.len <= 2000 + 1000);
        CHECK(slice_check(&s, &first, &last) > 0);
        CHECK_EQ(first.base_offset, off);
        sm_ref_release(s.ref);
        off = last + 1;
        slices++;
    }
    CHECK_EQ(slices, sm_log_segment_count(log));
    CHECK_EQ(sm_log_read(log, sm_log_end_offset(log) + 1, INT64_MAX, 100, true, &s), SM_ERR_RANGE);
    CHECK_EQ(sm_log_read(log, -1, INT64_MAX, 100, true, &s), SM_ERR_RANGE);

    /* max_bytes and min_one */
    sm_batch_info_t first;
    int64_t last;
    CHECK_EQ(sm_log_read(log, bases[5], INT64_MAX, 10, false, &s), SM_OK);
    CHECK_EQ(s.len, 0);
    CHECK_EQ(sm_log_read(log, bases[5], INT64_MAX, 10, true, &s), SM_OK);
    CHECK_EQ(slice_check(&s, &first, &last), 1);
    sm_ref_release(s.ref);
    /* max_offset (high watermark) stops before the batch reaching it */
    CHECK_EQ(sm_log_read(log, bases[5], bases[7], 1 << 20, true, &s), SM_OK);
    CHECK(slice_check(&s, &first, &last) >= 1);
    CHECK(last < bases[7]);
    sm_ref_release(s.ref);
    CHECK_EQ(sm_log_read(log, bases[5], bases[5] + 1, 1 << 20, true, &s), SM_OK);
    CHECK_EQ(s.len, lasts[5] == bases[5] ? s.len : 0);
    sm_ref_release(s.ref);

    /* a slice outlives close */
    CHECK_EQ(sm_log_read(log, bases[NBATCH - 1], INT64_MAX, 1 << 20, true, &s), SM_OK);
    sm_log_close(log);
    CHECK_EQ(slice_check(&s, &first, &last), 1);
    CHECK_EQ(first.base_offset, bases[NBATCH - 1]);
    sm_ref_release(s.ref);
}

/* Counting pread wrapper to prove a clean reopen does not scan the log. */
static int64_t pread_bytes;
static ssize_t counting_pread(int fd, void *buf, size_t n, off_t off)
{
    ssize_t r = pread(fd, buf, n, off);
    if (r > 0)
        __atomic_add_fetch(&pread_bytes, r, __ATOMIC_RELAXED);
    return r;
}

static void test_reopen_clean(void)
{
    char dir[300];
    snprintf(dir, sizeof dir, "%s/rt-0", root);
    sm_log_config_t c = small_cfg();
    sm_file_ops_t ops = *sm_file_os_ops();
    ops.pread = counting_pread;
    sm_file_set_ops(&ops);
    pread_bytes = 0;
    sm_log_t *log;
    CHECK_EQ(sm_log_open(dir, "rt-0", &c, &log), SM_OK);
    sm_file_set_ops(NULL);
    int64_t total = sm_log_size_bytes(log);
    fprintf(stderr, "clean reopen read %lld of %lld bytes\n", (long long)pread_bytes,
            (long long)total);
    CHECK(pread_bytes < total / 4);
    CHECK_EQ(sm_log_end_offset(log), lasts[NBATCH - 1] + 1);
    check_all_offsets(log);
    sm_append_info_t ai;
    CHECK_EQ(append_one(log, 2, 50000, 10, &ai), SM_OK);
    CHECK_EQ(ai.base_offset, lasts[NBATCH - 1] + 1);
    CHECK_EQ(sm_log_truncate_to(log, ai.base_offset), SM_OK);
    CHECK_EQ(sm_log_end_offset(log), ai.base_offset);
    sm_log_close(log);
}

static void test_timestamps(void)
{
    char dir[300];
    snprintf(dir, sizeof dir, "%s/rt-0", root);
    sm_log_config_t c = small_cfg();
    sm_log_t *log;
    CHECK_EQ(sm_log_open(dir, "rt-0", &c, &log), SM_OK);
    int64_t off, ts;
    /* exact batch start */
    CHECK_EQ(sm_log_offset_for_timestamp(log, 10000 + 100 * 50, &off, &ts), SM_OK);
    CHECK_EQ(off, bases[50]);
    CHECK_EQ(ts, 10000 + 100 * 50);
    /* inside a batch: batch 51 has 4 records with ts 15100..15103 */
    CHECK_EQ(sm_log_offset_for_timestamp(log, 10000 + 100 * 51 + 2, &off, &ts), SM_OK);
    CHECK_EQ(off, bases[51] + 2);
    CHECK_EQ(ts, 10000 + 100 * 51 + 2);
    /* between batches -> next batch */
    CHECK_EQ(sm_log_offset_for_timestamp(log, 10000 + 100 * 70 + 50, &off, &ts), SM_OK);
    CHECK_EQ(off, bases[71]);
    CHECK_EQ(sm_log_offset_for_timestamp(log, 0, &off, &ts), SM_OK);
    CHECK_EQ(off, 0);
    int bad = 0;
    for (int i = 0; i < NBATCH; i++)
        if (sm_log_offset_for_timestamp(log, 10000 + 100 * i, &off, &ts) != SM_OK || off != bases[i])
            bad++;
    CHECK_EQ(bad, 0);
    CHECK_EQ(sm_log_offset_for_timestamp(log, 10000 + 100 * NBATCH, &off, &ts), SM_ERR_NOT_FOUND);
    /* max timestamp is the last record of the last batch */
    CHECK_EQ(sm_log_max_timestamp(log, &off, &ts), SM_OK);
    CHECK_EQ(off, lasts[NBATCH - 1]);
    CHECK_EQ(ts, 10000 + 100 * (NBATCH - 1) + (lasts[NBATCH - 1] - bases[NBATCH - 1]));
    /* a batch in the past with a larger timestamp wins, at its record */
    sm_append_info_t ai;
    CHECK_EQ(append_one(log, 3, 900000, 10, &ai), SM_OK);
    CHECK_EQ(append_one(log, 1, 20000, 10, &ai), SM_OK);
    CHECK_EQ(sm_log_max_timestamp(log, &off, &ts), SM_OK);
    CHECK_EQ(off, ai.base_offset - 1);
    CHECK_EQ(ts, 900002);
    CHECK_EQ(sm_log_truncate_to(log, lasts[NBATCH - 1] + 1), SM_OK);
    CHECK_EQ(sm_log_max_timestamp(log, &off, &ts), SM_OK);
    CHECK_EQ(off, lasts[NBATCH - 1]);
    sm_log_close(log);
}

static void append_raw(const char *path, const void *data, size_t n)
{
    int fd = open(path, O_WRONLY | O_APPEND);
    CHECK(fd >= 0 && write(fd, data, n) == (ssize_t)n);
    close(fd);
}

static char *last_log_file(const char *dir)
{
    static char best[512];
    best[0] = 0;
    DIR *d = opendir(dir);
    struct dirent *de;
    while ((de = readdir(d))) {
        size_t l = strlen(de->d_name);
        if (l == 24 && strcmp(de->d_name + 20, ".log") == 0) {
            char p[512];
            snprintf(p, sizeof p, "%s/%s", dir, de->d_name);
            if (strcmp(p, best) > 0)
                strcpy(best, p);
        }
    }
    closedir(d);
    return best;
}

/* A crash is simulated by copying the files of an open log (no close, so no
 * clean-shutdown mark) and damaging the copy's tail. */
static void test_crash_recovery(void)
{
    char dir[300], crash[300];
    snprintf(dir, sizeof dir, "%s/cr-0", root);
    sm_log_config_t c = small_cfg();
    sm_log_t *log;
    CHECK_EQ(sm_log_open(dir, "cr-0", &c, &log), SM_OK);
    fill(log);
    CHECK_EQ(sm_log_flush(log), SM_OK);
    int64_t end = sm_log_end_offset(log);
    sm_append_info_t ai;
    /* unflushed data after the recovery point, still intact in the copy */
    CHECK_EQ(append_one(log, 2, 70000, 30, &ai), SM_OK);
    int64_t end2 = sm_log_end_offset(log);

    /* 1: garbage appended to the tail */
    snprintf(crash, sizeof crash, "%s/crash1-0", root);
    copy_dir(dir, crash);
    CHECK_EQ(file_size(path_in(crash, "samsa-log-state")) > 0, 1);
    char garbage[333];
    for (size_t i = 0; i < sizeof garbage; i++)
        garbage[i] = (char)(i * 7 + 1);
    char *tail = last_log_file(crash);
    int64_t tail_size = file_size(tail);
    append_raw(tail, garbage, sizeof garbage);
    sm_log_t *rec;
    CHECK_EQ(sm_log_open(crash, "crash1-0", &c, &rec), SM_OK);
    CHECK_EQ(sm_log_end_offset(rec), end2);
    CHECK_EQ(file_size(tail), tail_size);
    CHECK_EQ(append_one(rec, 1, 80000, 5, &ai), SM_OK);
    CHECK_EQ(ai.base_offset, end2);
    sm_log_slice_t s;
    sm_batch_info_t first;
    int64_t last;
    CHECK_EQ(sm_log_read(rec, end2, INT64_MAX, 1 << 20, true, &s), SM_OK);
    CHECK_EQ(slice_check(&s, &first, &last), 1);
    sm_ref_release(s.ref);
    check_all_offsets(rec);
    sm_log_close(rec);

    /* 2: torn last batch (half written) plus a stale index entry pointing
     * into it: the batch goes, the log continues at its base offset */
    snprintf(crash, sizeof crash, "%s/crash2-0", root);
    copy_dir(dir, crash);
    tail = last_log_file(crash);
    CHECK_EQ(truncate(tail, file_size(tail) - 20), 0);
    CHECK_EQ(sm_log_open(crash, "crash2-0", &c, &rec), SM_OK);
    CHECK_EQ(sm_log_end_offset(rec), end);
    CHECK_EQ(append_one(rec, 3, 80000, 5, &ai), SM_OK);
    CHECK_EQ(ai.base_offset, end);
    check_all_offsets(rec);
    sm_log_close(rec);
    /* and a clean reopen of the repaired copy keeps it */
    CHECK_EQ(sm_log_open(crash, "crash2-0", &c, &rec), SM_OK);
    CHECK_EQ(sm_log_end_offset(rec), end + 3);
    sm_log_close(rec);

    /* 3: a flipped byte inside the unflushed batch (CRC) */
    snprintf(crash, sizeof crash, "%s/crash3-0", root);
    copy_dir(dir, crash);
    tail = last_log_file(crash);
    int fd = open(tail, O_RDWR);
    char ch;
    CHECK(pread(fd, &ch, 1, file_size(tail) - 5) == 1);
    ch ^= 0x55;
    CHECK(pwrite(fd, &ch, 1, file_size(tail) - 5) == 1);
    close(fd);
    CHECK_EQ(sm_log_open(crash, "crash3-0", &c, &rec), SM_OK);
    CHECK_EQ(sm_log_end_offset(rec), end);
    sm_log_close(rec);

    /* 4: no state file at all: the whole log is validated, nothing lost */
    snprintf(crash, sizeof crash, "%s/crash4-0", root);
    copy_dir(dir, crash);
    unlink(path_in(crash, "samsa-log-state"));
    CHECK_EQ(sm_log_open(crash, "crash4-0", &c, &rec), SM_OK);
    CHECK_EQ(sm_log_end_offset(rec), end2);
    check_all_offsets(rec);
    sm_log_close(rec);

    /* 5: corruption in the middle of an old unflushed segment drops the
     * later segments (they would leave a hole) */
    snprintf(crash, sizeof crash, "%s/crash5-0", root);
    copy_dir(dir, crash);
    unlink(path_in(crash, "samsa-log-state"));
    char seg2[64];
    snprintf(seg2, sizeof seg2, "%020lld.log", 0LL);
    fd = open(path_in(crash, seg2), O_RDWR);
    CHECK(pwrite(fd, "XXXX", 4, 500) == 4); /* inside the records of batch 3 */
    close(fd);
    CHECK_EQ(sm_log_open(crash, "crash5-0", &c, &rec), SM_OK);
    CHECK(sm_log_end_offset(rec) < 10);
    CHECK_EQ(sm_log_segment_count(rec), 1);
    CHECK_EQ(count_files(crash, ".log"), 1);
    CHECK_EQ(append_one(rec, 1, 1, 1, &ai), SM_OK);
    CHECK_EQ(ai.base_offset, sm_log_end_offset(rec) - 1);
    sm_log_close(rec);

    sm_log_close(log);
}

static int64_t read_file(const char *p, uint8_t *buf, size_t cap)
{
    int fd = open(p, O_RDONLY);
    if (fd < 0)
        return -1;
    ssize_t n = read(fd, buf, cap);
    close(fd);
    return n;
}

static void test_index_rebuild(void)
{
    char dir[300];
    snprintf(dir, sizeof dir, "%s/rt-0", root);
    char name_i[64], name_t[64];
    snprintf(name_i, sizeof name_i, "%020lld.index", 0LL);
    snprintf(name_t, sizeof name_t, "%020lld.timeindex", 0LL);
    static uint8_t before_i[65536], before_t[65536], after[65536];
    int64_t ni = read_file(path_in(dir, name_i), before_i, sizeof before_i);
    int64_t nt = read_file(path_in(dir, name_t), before_t, sizeof before_t);
    CHECK(ni > 0 && ni % 8 == 0);
    CHECK(nt > 0 && nt % 12 == 0);
    unlink(path_in(dir, name_i));
    unlink(path_in(dir, name_t));
    sm_log_config_t c = small_cfg();
    sm_log_t *log;
    CHECK_EQ(sm_log_open(dir, "rt-0", &c, &log), SM_OK);
    CHECK_EQ(read_file(path_in(dir, name_i), after, sizeof after), ni);
    CHECK(memcmp(after, before_i, (size_t)ni) == 0);
    CHECK_EQ(read_file(path_in(dir, name_t), after, sizeof after), nt);
    CHECK(memcmp(after, before_t, (size_t)nt) == 0);
    check_all_offsets(log);
    sm_log_close(log);
    /* a zero-filled index (as Kafka preallocates them) is rebuilt */
    int zfd = open(path_in(dir, name_i), O_WRONLY | O_TRUNC);
    static const uint8_t zeros[800];
    CHECK(zfd >= 0 && write(zfd, zeros, sizeof zeros) == (ssize_t)sizeof zeros);
    close(zfd);
    CHECK_EQ(sm_log_open(dir, "rt-0", &c, &log), SM_OK);
    CHECK_EQ(read_file(path_in(dir, name_i), after, sizeof after), ni);
    CHECK(memcmp(after, before_i, (size_t)ni) == 0);
    sm_log_close(log);
    /* a corrupt index (partial entry) is rebuilt as well */
    append_raw(path_in(dir, name_i), "abc", 3);
    CHECK_EQ(sm_log_open(dir, "rt-0", &c, &log), SM_OK);
    CHECK_EQ(file_size(path_in(dir, name_i)), ni);
    check_all_offsets(log);
    sm_log_close(log);
}

static void test_delete_and_retention(void)
{
    char dir[300];
    snprintf(dir, sizeof dir, "%s/del-0", root);
    sm_log_config_t c = small_cfg();
    sm_log_t *log;
    CHECK_EQ(sm_log_open(dir, "del-0", &c, &log), SM_OK);
    fill(log);
    int nseg = sm_log_segment_count(log);
    sm_log_slice_t held;
    CHECK_EQ(sm_log_read(log, 0, INT64_MAX, 100, true, &held), SM_OK);
    CHECK_EQ(sm_log_delete_records(log, bases[40]), SM_OK);
    CHECK_EQ(sm_log_start_offset(log), bases[40]);
    CHECK(sm_log_segment_count(log) < nseg);
    sm_log_slice_t s;
    CHECK_EQ(sm_log_read(log, bases[40] - 1, INT64_MAX, 100, true, &s), SM_ERR_RANGE);
    CHECK_EQ(sm_log_read(log, bases[40], INT64_MAX, 100, true, &s), SM_OK);
    sm_ref_release(s.ref);
    CHECK_EQ(sm_log_delete_records(log, sm_log_end_offset(log) + 1), SM_ERR_RANGE);
    /* the deleted segment is still readable through the slice held */
    sm_batch_info_t first;
    int64_t last;
    CHECK_EQ(slice_check(&held, &first, &last), 1);
    CHECK_EQ(first.base_offset, 0);
    sm_ref_release(held.ref);
    CHECK_EQ(count_files(dir, ".deleted"), 0);
    /* the start offset survives a reopen */
    sm_log_close(log);
    CHECK_EQ(sm_log_open(dir, "del-0", &c, &log), SM_OK);
    CHECK_EQ(sm_log_start_offset(log), bases[40]);
    /* offset for timestamp never answers below the start */
    int64_t off, ts;
    CHECK_EQ(sm_log_offset_for_timestamp(log, 0, &off, &ts), SM_OK);
    CHECK_EQ(off, bases[40]);

    /* retention by size keeps at most retention_bytes (+ the active seg) */
    int deleted = 0;
    c.retention_bytes = 3000;
    sm_log_set_config(log, &c);
    CHECK_EQ(sm_log_enforce_retention(log, 1000000, &deleted), SM_OK);
    CHECK(deleted > 0);
    CHECK(sm_log_size_bytes(log) <= 3000 + 2000);
    CHECK(sm_log_start_offset(log) > bases[40]);
    check_all_offsets(log);
    /* retention by time: everything sealed is older than 1 hour */
    c.retention_bytes = -1;
    c.retention_ms = 3600 * 1000;
    sm_log_set_config(log, &c);
    CHECK_EQ(sm_log_enforce_retention(log, 100000000, &deleted), SM_OK);
    CHECK_EQ(sm_log_segment_count(log), 1);
    CHECK_EQ(sm_log_end_offset(log), lasts[NBATCH - 1] + 1);

    /* truncate below the start: restart empty there */
    CHECK_EQ(sm_log_truncate_to(log, 5), SM_OK);
    CHECK_EQ(sm_log_start_offset(log), 5);
    CHECK_EQ(sm_log_end_offset(log), 5);
    sm_append_info_t ai;
    CHECK_EQ(append_one(log, 2, 1, 1, &ai), SM_OK);
    CHECK_EQ(ai.base_offset, 5);
    CHECK_EQ(sm_log_destroy(log), SM_OK);
    CHECK(access(dir, F_OK) != 0);
}

static void test_truncate_across_segments(void)
{
    char dir[300];
    snprintf(dir, sizeof dir, "%s/tr-0", root);
    sm_log_config_t c = small_cfg();
    sm_log_t *log;
    CHECK_EQ(sm_log_open(dir, "tr-0", &c, &log), SM_OK);
    fill(log);
    /* truncate into the middle of a batch: the whole batch goes */
    CHECK_EQ(sm_log_truncate_to(log, bases[30] + (lasts[30] > bases[30] ? 1 : 0)), SM_OK);
    CHECK_EQ(sm_log_end_offset(log), bases[30]);
    CHECK_EQ(count_files(dir, ".log"), sm_log_segment_count(log));
    sm_append_info_t ai;
    for (int i = 30; i < NBATCH; i++) {
        CHECK_EQ(append_one(log, 1 + i % 4, 10000 + 100 * i, 20 + (i * 37) % 200, &ai), SM_OK);
        CHECK_EQ(ai.base_offset, bases[i]);
    }
    check_all_offsets(log);
    int64_t off, ts;
    CHECK_EQ(sm_log_offset_for_timestamp(log, 10000 + 100 * 29, &off, &ts), SM_OK);
    CHECK_EQ(off, bases[29]);
    sm_log_close(log);
    CHECK_EQ(sm_log_open(dir, "tr-0", &c, &log), SM_OK);
    check_all_offsets(log);
    sm_log_close(log);
}

static void test_log_append_time(void)
{
    char dir[300];
    snprintf(dir, sizeof dir, "%s/lat-0", root);
    sm_log_config_t c = small_cfg();
    c.log_append_time = true;
    c.flush_messages = 1; /* also exercises the forced flush */
    sm_log_t *log;
    CHECK_EQ(sm_log_open(dir, "lat-0", &c, &log), SM_OK);
    sm_wbuf_t w;
    sm_wbuf_init(&w);
    make_batch(&w, 3, 5, 10);
    sm_append_info_t ai;
    CHECK_EQ(sm_log_append(log, w.mem, w.len, 9, 777777, &ai), SM_OK);
    CHECK_EQ(ai.log_append_time, 777777);
    CHECK_EQ(sm_log_unflushed_messages(log), 0);
    sm_log_slice_t s;
    sm_batch_info_t first;
    int64_t last;
    CHECK_EQ(sm_log_read(log, 0, INT64_MAX, 1 << 20, true, &s), SM_OK);
    CHECK_EQ(slice_check(&s, &first, &last), 1);
    CHECK_EQ(first.max_timestamp, 777777);
    CHECK(first.attributes & SM_BATCH_ATTR_LOG_APPEND_TIME);
    CHECK_EQ(first.leader_epoch, 9);
    sm_ref_release(s.ref);
    int64_t off, ts;
    CHECK_EQ(sm_log_max_timestamp(log, &off, &ts), SM_OK);
    CHECK_EQ(off, 0);
    CHECK_EQ(ts, 777777);
    /* bad framing is refused, nothing written */
    CHECK_EQ(sm_log_append(log, w.mem, w.len - 1, 9, 1, &ai), SM_ERR_INVALID);
    CHECK_EQ(sm_log_end_offset(log), 3);
    sm_wbuf_free(&w);
    CHECK_EQ(sm_log_destroy(log), SM_OK);
}

/* ---- concurrency: 4 appenders and a reader checking every slice */

#define NTHREADS 4
#define PER_THREAD 400
static sm_log_t *conc_log;
static int64_t ranges[NTHREADS][PER_THREAD][2];
static int stop_reader, reader_bad, reader_reads;

static void *appender(void *arg)
{
    int t = (int)(intptr_t)arg;
    for (int i = 0; i < PER_THREAD; i++) {
        sm_append_info_t ai;
        sm_wbuf_t w;
        sm_wbuf_init(&w);
        int n = 1 + (i + t) % 3;
        make_batch(&w, n, i, 10 + t);
        if (i % 5 == 0) /* sometimes two batches in one append */
            make_batch(&w, 1, i, 10 + t);
        if (sm_log_append(conc_log, w.mem, w.len, 1, 1000, &ai) != SM_OK)
            ai.base_offset = ai.last_offset = -1;
        sm_wbuf_free(&w);
        ranges[t][i][0] = ai.base_offset;
        ranges[t][i][1] = ai.last_offset;
        if (i % 97 == 0 && sm_log_flush(conc_log) != SM_OK)
            ranges[t][i][0] = -1;
    }
    return NULL;
}

static void *reader(void *arg)
{
    (void)arg;
    uint32_t x = 1;
    while (!__atomic_load_n(&stop_reader, __ATOMIC_ACQUIRE)) {
        int64_t end = sm_log_end_offset(conc_log);
        if (end == 0)
            continue;
        x = x * 1103515245u + 12345u;
        int64_t off = (int64_t)(x >> 8) % end;
        sm_log_slice_t s;
        if (sm_log_read(conc_log, off, INT64_MAX, 5000, true, &s) != SM_OK) {
            reader_bad++;
            continue;
        }
        sm_batch_info_t first;
        int64_t last;
        if (s.len == 0 || slice_check(&s, &first, &last) < 1 || first.base_offset > off ||
            last < off)
            reader_bad++;
        sm_ref_release(s.ref);
        reader_reads++;
    }
    return NULL;
}

static int cmp_range(const void *a, const void *b)
{
    const int64_t *x = a, *y = b;
    return x[0] < y[0] ? -1 : x[0] > y[0];
}

static void test_concurrent(void)
{
    char dir[300];
    snprintf(dir, sizeof dir, "%s/conc-0", root);
    sm_log_config_t c = small_cfg();
    c.segment_bytes = 20000;
    CHECK_EQ(sm_log_open(dir, "conc-0", &c, &conc_log), SM_OK);
    pthread_t th[NTHREADS], rd;
    pthread_create(&rd, NULL, reader, NULL);
    for (int t = 0; t < NTHREADS; t++)
        pthread_create(&th[t], NULL, appender, (void *)(intptr_t)t);
    for (int t = 0; t < NTHREADS; t++)
        pthread_join(th[t], NULL);
    __atomic_store_n(&stop_reader, 1, __ATOMIC_RELEASE);
    pthread_join(rd, NULL);
    CHECK_EQ(reader_bad, 0);
    fprintf(stderr, "concurrent: %d reads checked\n", reader_reads);
    qsort(ranges, NTHREADS * PER_THREAD, sizeof ranges[0][0], cmp_range);
    int64_t expect = 0;
    int bad = 0;
    for (int i = 0; i < NTHREADS * PER_THREAD; i++) {
        int64_t *r = ranges[0][0] + 2 * i;
        if (r[0] != expect || r[1] < r[0])
            bad++;
        expect = r[1] + 1;
    }
    CHECK_EQ(bad, 0);
    CHECK_EQ(sm_log_end_offset(conc_log), expect);
    sm_log_close(conc_log);
    CHECK_EQ(sm_log_open(dir, "conc-0", &c, &conc_log), SM_OK);
    CHECK_EQ(sm_log_end_offset(conc_log), expect);
    sm_log_close(conc_log);
}

int main(void)
{
    snprintf(root, sizeof root, "/tmp/samsa-test-storage-%d", (int)getpid());
    mkdir(root, 0755);
    RUN(test_round_trip);
    RUN(test_reopen_clean);
    RUN(test_timestamps);
    RUN(test_index_rebuild);
    RUN(test_crash_recovery);
    RUN(test_delete_and_retention);
    RUN(test_truncate_across_segments);
    RUN(test_log_append_time);
    RUN(test_concurrent);
    if (!sm_test_failed && !getenv("KEEP"))
        sm_test_rm_rf(root);
    TEST_MAIN_END();
}
