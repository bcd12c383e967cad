/* test_storage_cache.c - write-behind (log.cache.window.bytes, log_cache.c):
 * when an append asks for a pass, which ranges get their writeback started
 * and which get dropped from the page cache (recorded through the file
 * seam), that a pass is asked for once per half window, that rolls finish
 * the previous segment, and - with the real system calls - that dropped
 * pages really leave the page cache while the window stays. The data
 * directory lives under the current directory (the build tree), not /tmp,
 * which may be a tmpfs where nothing can be dropped. */
#define _GNU_SOURCE
#include "batch.h"
#include "file.h"
#include "storage/log.h"
#include "sm_test.h"
#include "sm_test_fs.h"

#include <dirent.h>
#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <unistd.h>

#define KB 1024
#define WINDOW (256 * KB)
#define PAGE 4096

static char root[256];


/* ------------------------------------------------ recording file seam */

typedef struct range {
    int fd;
    int64_t off, len;
} range_t;

static range_t wb[4096], dr[4096];
static int nwb, ndr;

static int rec_writeback(int fd, off_t off, off_t len)
{
    if (nwb < 4096)
        wb[nwb++] = (range_t){fd, off, len};
    return sm_file_os_ops()->writeback(fd, off, len);
}

static int rec_drop(int fd, off_t off, off_t len)
{
    if (ndr < 4096)
        dr[ndr++] = (range_t){fd, off, len};
    return sm_file_os_ops()->drop_cache(fd, off, len);
}

static sm_file_ops_t rec_ops;

static sm_err_t append_kb(sm_log_t *log, int kb, sm_append_info_t *ai)
{
    static uint8_t val[8 * KB];
    memset(val, 'w', sizeof val);
    sm_record_in_t r = {.value = val, .value_len = kb * KB - 100, .timestamp = 1000};
    sm_batch_params_t bp = {.leader_epoch = -1, .producer_id = -1, .producer_epoch = -1,
                            .base_sequence = -1};
    sm_wbuf_t w;
    sm_wbuf_init(&w);
    sm_batch_encode(&w, &bp, &r, 1);
    sm_err_t err = sm_log_append(log, w.mem, w.len, 0, 1000000, ai);
    sm_wbuf_free(&w);
    return err;
}

static sm_log_t *open_log(const char *name, int64_t window, int64_t segment_bytes)
{
    char dir[400];
    snprintf(dir, sizeof dir, "%s/%s", root, name);
    sm_log_config_t c;
    sm_log_config_default(&c);
    c.cache_window_bytes = window;
    c.segment_bytes = segment_bytes;
    sm_log_t *log = NULL;
    CHECK_EQ(sm_log_open(dir, name, &c, &log), SM_OK);
    return log;
}

/* The ranges a sequence of passes produced over one segment: writebacks
 * contiguous from 0, page aligned, never past the data; drops never
 * within a window of the end as it was at that pass. */
static void test_ranges(void)
{
    nwb = ndr = 0;
    rec_ops = *sm_file_os_ops();
    rec_ops.writeback = rec_writeback;
    rec_ops.drop_cache = rec_drop;
    sm_file_set_ops(&rec_ops);
    sm_log_t *log = open_log("wb-0", WINDOW, 1 << 30);

    int passes = 0, due_without_pass = 0;
    int64_t size = 0, wb_end = 0, last_drop_end = 0;
    bool bad_wb = false, bad_drop = false;
    for (int i = 0; i < 1024; i++) { /* 1024 x 3 KB = 3 MB, 12 windows */
        sm_append_info_t ai;
        CHECK_EQ(append_kb(log, 3, &ai), SM_OK);
        size += 3 * KB;
        if (!ai.write_behind_due)
            continue;
        /* skip every third pass: the log must not ask again meanwhile */
        if (i % 3 == 0) {
            for (int j = 0; j < 50; j++) {
                CHECK_EQ(append_kb(log, 3, &ai), SM_OK);
                size += 3 * KB;
                due_without_pass += ai.write_behind_due;
            }
        }
        int w0 = nwb, d0 = ndr;
        sm_log_write_behind(log);
        passes++;
        for (int k = w0; k < nwb; k++) {
            if (wb[k].off != wb_end || wb[k].off % PAGE || wb[k].len % PAGE ||
                wb[k].off + wb[k].len > size)
                bad_wb = true;
            wb_end = wb[k].off + wb[k].len;
        }
        for (int k = d0; k < ndr; k++) {
            if (dr[k].off % PAGE || dr[k].off + dr[k].len > size - WINDOW ||
                dr[k].off > last_drop_end)
                bad_drop = true;
            last_drop_end = dr[k].off + dr[k].len;
        }
    }
    CHECK(!bad_wb);
    CHECK(!bad_drop);
    CHECK_EQ(due_without_pass, 0);
    /* once per half window, give or take the skipped passes' extra bytes */
    CHECK(passes >= 3 * 1024 * KB / (WINDOW / 2) / 2);
    CHECK(passes <= 3 * 1024 * KB / (WINDOW / 2) + 1);
    CHECK(wb_end >= size - WINDOW / 2 - 3 * KB * 51);
    CHECK(last_drop_end >= size - WINDOW - WINDOW / 2 - 3 * KB * 51);
    CHECK(last_drop_end > 0);
    sm_log_close(log);

    /* rolls: the pass after a roll finishes the previous segment (drops up
     * to a window before its end) and starts on the new one */
    nwb = ndr = 0;
    log = open_log("roll-0", WINDOW, 1024 * KB);
    int rolls_seen = 0;
    for (int i = 0; i < 900; i++) { /* ~2.6 MB: two rolls */
        sm_append_info_t ai;
        CHECK_EQ(append_kb(log, 3, &ai), SM_OK);
        if (ai.write_behind_due)
            sm_log_write_behind(log);
    }
    /* fds differ per segment; every segment but the active one got a drop
     * reaching at least to 1 MB - window - page */
    int fds[8], nfds = 0;
    int64_t reach[8] = {0};
    for (int k = 0; k < ndr; k++) {
        int f = 0;
        while (f < nfds && fds[f] != dr[k].fd)
            f++;
        if (f == nfds && nfds < 8)
            fds[nfds++] = dr[k].fd;
        if (f < 8 && dr[k].off + dr[k].len > reach[f])
            reach[f] = dr[k].off + dr[k].len;
    }
    CHECK(sm_log_segment_count(log) == 3);
    CHECK(nfds >= 2);
    for (int f = 0; f + 1 < nfds; f++) {
        rolls_seen++;
        CHECK(reach[f] >= 1024 * KB - WINDOW - 4 * KB - PAGE);
        CHECK(reach[f] <= 1024 * KB + 4 * KB - WINDOW);
    }
    CHECK(rolls_seen >= 1);
    sm_log_close(log);
    sm_file_set_ops(NULL);

    /* window 0: never asks */
    log = open_log("off-0", 0, 1 << 30);
    int asked = 0;
    for (int i = 0; i < 400; i++) {
        sm_append_info_t ai;
        CHECK_EQ(append_kb(log, 3, &ai), SM_OK);
        asked += ai.write_behind_due;
    }
    CHECK_EQ(asked, 0);
    sm_log_close(log);
}

/* Pages resident in [off, off + len) of path, out of the total. */
static int resident_pages(const char *path, int64_t off, int64_t len, int *total)
{
    int fd = open(path, O_RDONLY);
    struct stat st;
    fstat(fd, &st);
    void *m = mmap(NULL, (size_t)st.st_size, PROT_READ, MAP_SHARED, fd, 0);
    close(fd);
    if (m == MAP_FAILED)
        return -1;
    int64_t np = (st.st_size + PAGE - 1) / PAGE;
    unsigned char *vec = malloc((size_t)np);
    int n = -1;
    if (mincore(m, (size_t)st.st_size, vec) == 0) {
        n = 0;
        *total = 0;
        for (int64_t p = off / PAGE; p < (off + len) / PAGE && p < np; p++) {
            n += vec[p] & 1;
            (*total)++;
        }
    }
    free(vec);
    munmap(m, (size_t)st.st_size);
    return n;
}

/* With the real system calls: after a flush (pages clean), a pass drops
 * what lies a window behind the end and leaves the window alone. */
static void test_real_drop(void)
{
    sm_log_t *log = open_log("real-0", WINDOW, 1 << 30);
    sm_append_info_t ai;
    for (int i = 0; i < 200; i++) /* 800 KB */
        CHECK_EQ(append_kb(log, 4, &ai), SM_OK);
    /* appends alone ask for passes; run none yet, make everything clean */
    CHECK_EQ(sm_log_flush(log), SM_OK);
    sm_log_write_behind(log);
    char path[600];
    snprintf(path, sizeof path, "%s/real-0/00000000000000000000.log", root);
    struct stat st;
    CHECK_EQ(stat(path, &st), 0);
    int64_t size = st.st_size;
    int total = 0;
    int behind = resident_pages(path, 0, size - WINDOW - PAGE, &total);
    CHECK(total > 100);
    CHECK_EQ(behind, 0);
    if (behind != 0) {
        struct statfs sf;
        if (statfs(root, &sf) == 0)
            fprintf(stderr, "  (file system type 0x%lx: posix_fadvise DONTNEED dropped nothing;"
                            " tmpfs is 0x01021994 and cannot drop)\n", (unsigned long)sf.f_type);
    }
    int wtotal = 0;
    int window = resident_pages(path, size - WINDOW + PAGE, WINDOW - 2 * PAGE, &wtotal);
    CHECK(wtotal > 50);
    CHECK_EQ(window, wtotal);
    /* the data still reads back (from disk) */
    sm_log_slice_t s;
    CHECK_EQ(sm_log_read(log, 0, INT64_MAX, 1 << 20, true, &s), SM_OK);
    uint8_t *buf = malloc((size_t)s.len);
    CHECK_EQ(pread(s.fd, buf, (size_t)s.len, s.file_pos), s.len);
    int nb = 0;
    int32_t nr = 0;
    const char *why = NULL;
    CHECK_EQ(sm_batches_validate(buf, (size_t)s.len, &nb, &nr, &why), SM_OK);
    CHECK(nb > 100);
    free(buf);
    sm_ref_release(s.ref);
    sm_log_close(log);
}

int main(void)
{
    snprintf(root, sizeof root, "samsa-test-cache-%d", (int)getpid());
    mkdir(root, 0755);
    RUN(test_ranges);
    RUN(test_real_drop);
    if (!sm_test_failed && !getenv("KEEP"))
        sm_test_rm_rf(root);
    TEST_MAIN_END();
}
