/* test_storage_faults.c - the partition log under injected I/O faults via
 * the sm_file_ops_t seam: disk full and torn writes on append, failing
 * fsync, and memory held by idle partitions. */
#define _GNU_SOURCE
#include "batch.h"
#include "file.h"
#include "storage/log.h"
#include "sm_test.h"
#include "sm_test_fs.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <malloc.h>
#include <sys/stat.h>
#include <unistd.h>

static char root[256];

/* Fault plan for the next pwrite larger than 100 bytes (a .log append, not
 * an index entry): FAULT_NOSPC fails it; FAULT_TORN writes the first 50
 * bytes, returns short, and fails the retry with EIO. */
enum { FAULT_NONE, FAULT_NOSPC, FAULT_TORN, FAULT_EIO_NEXT };
static int fault, fail_sync;
static ssize_t faulty_pwrite(int fd, const void *buf, size_t n, off_t off)
{
    if (n > 100 && fault == FAULT_NOSPC) {
        fault = FAULT_NONE;
        errno = ENOSPC;
        return -1;
    }
    if (n > 100 && fault == FAULT_TORN) {
        fault = FAULT_EIO_NEXT;
        return pwrite(fd, buf, 50, off);
    }
    if (fault == FAULT_EIO_NEXT) {
        fault = FAULT_NONE;
        errno = EIO;
        return -1;
    }
    return pwrite(fd, buf, n, off);
}
static int faulty_fdatasync(int fd)
{
    if (fail_sync) {
        errno = EIO;
        return -1;
    }
    return fdatasync(fd);
}

static sm_err_t append_one(sm_log_t *log, int n, sm_append_info_t *ai)
{
    static uint8_t val[300];
    sm_record_in_t recs[8];
    for (int i = 0; i < n; i++)
        recs[i] = (sm_record_in_t){.key = "k", .key_len = 1, .value = val, .value_len = 200,
                                   .timestamp = 1000 + i};
    sm_batch_params_t bp = {.leader_epoch = -1, .producer_id = -1, .producer_epoch = -1,
                            .base_sequence = -1};
    sm_wbuf_t w;
    sm_wbuf_init(&w);
    sm_batch_encode(&w, &bp, recs, n);
    sm_err_t err = sm_log_append(log, w.mem, w.len, 0, 5000, ai);
    sm_wbuf_free(&w);
    return err;
}

static int64_t active_size(const char *dir)
{
    int64_t best = -1;
    char bestname[256] = "";
    DIR *d = opendir(dir);
    struct dirent *de;
    while ((de = readdir(d))) {
        size_t l = strlen(de->d_name);
        if (l == 24 && strcmp(de->d_name + 20, ".log") == 0 && strcmp(de->d_name, bestname) > 0)
            snprintf(bestname, sizeof bestname, "%s", de->d_name);
    }
    closedir(d);
    char p[600];
    snprintf(p, sizeof p, "%s/%s", dir, bestname);
    struct stat st;
    if (stat(p, &st) == 0)
        best = st.st_size;
    return best;
}

static void test_write_faults(void)
{
    char dir[300];
    snprintf(dir, sizeof dir, "%s/faults-0", root);
    sm_log_config_t c;
    sm_log_config_default(&c);
    sm_log_t *log;
    CHECK_EQ(sm_log_open(dir, "faults-0", &c, &log), SM_OK);
    sm_file_ops_t ops = *sm_file_os_ops();
    ops.pwrite = faulty_pwrite;
    ops.fdatasync = faulty_fdatasync;
    sm_file_set_ops(&ops);
    sm_append_info_t ai;
    CHECK_EQ(append_one(log, 2, &ai), SM_OK);
    int64_t size = active_size(dir);

    /* disk full: error, nothing written, offsets unchanged */
    fault = FAULT_NOSPC;
    CHECK_EQ(append_one(log, 3, &ai), SM_ERR_NOSPC);
    CHECK_EQ(sm_log_end_offset(log), 2);
    CHECK_EQ(active_size(dir), size);

    /* torn write (half lands, then EIO): the file is cut back */
    fault = FAULT_TORN;
    CHECK_EQ(append_one(log, 3, &ai), SM_ERR_IO);
    CHECK_EQ(fault, FAULT_NONE);
    CHECK_EQ(sm_log_end_offset(log), 2);
    CHECK_EQ(active_size(dir), size);

    /* the log keeps working and offsets stay contiguous */
    CHECK_EQ(append_one(log, 3, &ai), SM_OK);
    CHECK_EQ(ai.base_offset, 2);
    CHECK_EQ(ai.last_offset, 4);

    /* fsync failure: flush reports it; close does not claim a clean
     * shutdown, so the next open recovers (and finds the data intact) */
    fail_sync = 1;
    CHECK_EQ(sm_log_flush(log), SM_ERR_IO);
    CHECK_EQ(sm_log_unflushed_messages(log), 5);
    sm_log_close(log);
    fail_sync = 0;
    sm_file_set_ops(NULL);
    char state[400];
    snprintf(state, sizeof state, "%s/samsa-log-state", dir);
    FILE *f = fopen(state, "r");
    char buf[256] = "";
    if (f) {
        size_t n = fread(buf, 1, sizeof buf - 1, f);
        buf[n] = 0;
        fclose(f);
    }
    CHECK(strstr(buf, "clean_shutdown 1") == NULL);
    CHECK_EQ(sm_log_open(dir, "faults-0", &c, &log), SM_OK);
    CHECK_EQ(sm_log_end_offset(log), 5);
    CHECK_EQ(sm_log_destroy(log), SM_OK);
}

/* Idle partitions: open many small logs and measure heap growth. */
static void test_idle_memory(void)
{
    enum { N = 200 };
    sm_log_t *logs[N];
    sm_log_config_t c;
    sm_log_config_default(&c);
    struct mallinfo2 before = mallinfo2();
    int ok = 0;
    for (int i = 0; i < N; i++) {
        char dir[300];
        snprintf(dir, sizeof dir, "%s/idle-%d", root, i);
        if (sm_log_open(dir, "idle", &c, &logs[i]) == SM_OK)
            ok++;
    }
    CHECK_EQ(ok, N);
    struct mallinfo2 after = mallinfo2();
    size_t per = (after.uordblks - before.uordblks) / N;
    fprintf(stderr, "idle partition heap: %zu bytes\n", per);
    CHECK(per < 10 * 1024);
    for (int i = 0; i < N; i++)
        CHECK_EQ(sm_log_destroy(logs[i]), SM_OK);
}

int main(void)
{
    snprintf(root, sizeof root, "/tmp/samsa-test-faults-%d", (int)getpid());
    mkdir(root, 0755);
    RUN(test_write_faults);
    RUN(test_idle_memory);
    if (!sm_test_failed && !getenv("KEEP"))
        sm_test_rm_rf(root); /* the log dir's checkpoint files are left in it */
    TEST_MAIN_END();
}
