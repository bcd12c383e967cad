/*
 * cleaner_bench.c - how fast the log cleaner compacts a partition (issue
 * #15): MB/s of log read and deduplicated by sm_log_clean, against the
 * machine's own rate for the same I/O (reading the same segment files and
 * writing a copy with one fsync), measured in the same run.
 *
 *   build/bench/cleaner_bench [MB] [UPDATES_PER_KEY] [RUNS] [DIR]
 *
 * The log: MB of batches of 16 records with 1 KB values and keys drawn from
 * MB*1024/UPDATES_PER_KEY keys (so about one record in UPDATES_PER_KEY
 * survives), segment.bytes 32 MB, uncompressed. Every run builds a fresh log
 * (DIR, default /tmp), then times the copy reference and one cleaning of
 * everything below the active segment (the rate is of the segments' bytes;
 * the cleaner reads them twice: the key map, then the copy) (dedupe buffer 128 MB, Kafka's
 * log.cleaner.dedupe.buffer.size default, no I/O limit). Files are in the page
 * cache for both (the machine has the memory): the figure is the cleaner's
 * CPU path plus its writes and fsyncs, not the disk's read speed.
 * Prints one line per run and the medians, with the ratio cleaner / copy.
 */
#include "batch.h"
#include "cleaner.h"
#include "log.h"
#include "offset_map.h"

#include <dirent.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define RECS_PER_BATCH 16
#define VALUE_BYTES 1024
#define SEGMENT_BYTES (32 << 20)

static double wall_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static void rm_rf(const char *dir)
{
    DIR *d = opendir(dir);
    if (!d)
        return;
    struct dirent *e;
    char p[1024];
    while ((e = readdir(d))) {
        if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, ".."))
            continue;
        snprintf(p, sizeof p, "%s/%s", dir, e->d_name);
        struct stat st;
        if (lstat(p, &st) == 0 && S_ISDIR(st.st_mode))
            rm_rf(p);
        else
            unlink(p);
    }
    closedir(d);
    rmdir(dir);
}

/* Fill log with mb MB of keyed 1 KB records (keys uniform over nkeys). */
static int fill(sm_log_t *log, size_t mb, uint32_t nkeys)
{
    static char vals[RECS_PER_BATCH][VALUE_BYTES];
    char keys[RECS_PER_BATCH][24];
    sm_record_in_t recs[RECS_PER_BATCH];
    sm_wbuf_t w;
    sm_wbuf_init(&w);
    uint32_t x = 12345;
    size_t written = 0;
    int64_t ts = 1700000000000LL;
    while (written < mb << 20) {
        for (int i = 0; i < RECS_PER_BATCH; i++) {
            x = x * 1103515245u + 12345u;
            snprintf(keys[i], sizeof keys[i], "key-%u", (x >> 4) % nkeys);
            for (int j = 0; j < VALUE_BYTES; j += 64)
                snprintf(vals[i] + j, 64, "{\"v\":%u,\"n\":%d}", x + (uint32_t)j, i);
            recs[i] = (sm_record_in_t){.key = keys[i], .key_len = (int32_t)strlen(keys[i]),
                                       .value = vals[i], .value_len = VALUE_BYTES,
                                       .timestamp = ts++};
        }
        sm_batch_params_t bp = {.leader_epoch = -1, .producer_id = -1, .producer_epoch = -1,
                                .base_sequence = -1};
        sm_wbuf_reset(&w);
        sm_batch_encode(&w, &bp, recs, RECS_PER_BATCH);
        sm_append_info_t ai;
        if (sm_log_append(log, w.mem, w.len, 0, ts, &ai) != SM_OK) {
            sm_wbuf_free(&w);
            return -1;
        }
        written += w.len;
    }
    sm_wbuf_free(&w);
    return sm_log_flush(log) == SM_OK ? 0 : -1;
}

/* The reference: read every .log file of dir whose base offset is below
 * active and write a copy into one file, fsync'ed. Returns bytes copied. */
static int64_t copy_segments(const char *dir, int64_t active, const char *dst)
{
    DIR *d = opendir(dir);
    if (!d)
        return -1;
    int out = open(dst, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    if (out < 0) {
        closedir(d);
        return -1;
    }
    static char buf[1 << 20];
    int64_t total = 0;
    struct dirent *e;
    char p[1024];
    while ((e = readdir(d))) {
        size_t n = strlen(e->d_name);
        if (n != 24 || strcmp(e->d_name + 20, ".log") != 0 || atoll(e->d_name) >= active)
            continue;
        snprintf(p, sizeof p, "%s/%s", dir, e->d_name);
        int in = open(p, O_RDONLY);
        if (in < 0)
            continue;
        ssize_t r;
        while ((r = read(in, buf, sizeof buf)) > 0) {
            if (write(out, buf, (size_t)r) != r) {
                total = -1;
                break;
            }
            total += r;
        }
        close(in);
    }
    closedir(d);
    if (fsync(out) != 0)
        total = -1;
    close(out);
    unlink(dst);
    return total;
}

int main(int argc, char **argv)
{
    size_t mb = argc > 1 ? (size_t)atol(argv[1]) : 256;
    int updates = argc > 2 ? atoi(argv[2]) : 25;
    int runs = argc > 3 ? atoi(argv[3]) : 3;
    const char *base = argc > 4 ? argv[4] : "/tmp";
    if (mb < 1 || updates < 1 || runs < 1 || runs > 50) {
        fprintf(stderr, "usage: cleaner_bench [MB] [UPDATES_PER_KEY] [RUNS] [DIR]\n");
        return 2;
    }
    uint32_t nkeys = (uint32_t)(((mb << 20) / (VALUE_BYTES + 40)) / (size_t)updates);
    if (nkeys < 1)
        nkeys = 1;
    double clean_mbs[50], copy_mbs[50], ratio[50];
    printf("log %zu MB, %u keys (~%d updates per key), segment.bytes %d MB, %d runs\n", mb,
           nkeys, updates, SEGMENT_BYTES >> 20, runs);
    for (int r = 0; r < runs; r++) {
        char dir[512], dst[600];
        snprintf(dir, sizeof dir, "%s/cleaner-bench-%d-%d/bench-0", base, (int)getpid(), r);
        char parent[512];
        snprintf(parent, sizeof parent, "%s/cleaner-bench-%d-%d", base, (int)getpid(), r);
        mkdir(parent, 0755);
        sm_log_config_t c;
        sm_log_config_default(&c);
        c.segment_bytes = SEGMENT_BYTES;
        sm_log_t *log;
        if (sm_log_open(dir, "bench-0", &c, &log) != SM_OK || fill(log, mb, nkeys) != 0) {
            fprintf(stderr, "cleaner_bench: cannot build the log in %s\n", dir);
            return 1;
        }
        int64_t active = sm_log_active_base(log);
        snprintf(dst, sizeof dst, "%s/copy.tmp", parent);
        double t0 = wall_s();
        int64_t copied = copy_segments(dir, active, dst);
        double t_copy = wall_s() - t0;

        sm_offset_map_t map;
        sm_offset_map_init(&map, 128u << 20);
        sm_clean_params_t p = {.first_dirty = -1, .first_uncleanable = INT64_MAX,
                               .delete_retention_ms = 86400000, .now_ms = 1700000000000LL,
                               .segment_bytes = SEGMENT_BYTES};
        sm_clean_result_t res;
        t0 = wall_s();
        sm_err_t err = sm_log_clean(log, &map, &p, &res);
        double t_clean = wall_s() - t0;
        sm_offset_map_free(&map);
        sm_log_close(log);
        rm_rf(parent);
        if (err != SM_OK || copied <= 0 || res.bytes_read <= 0) {
            fprintf(stderr, "cleaner_bench: cleaning failed (%d) or nothing to clean\n", (int)err);
            return 1;
        }
        clean_mbs[r] = (double)copied / 1048576.0 / t_clean;
        copy_mbs[r] = (double)copied / 1048576.0 / t_copy;
        ratio[r] = clean_mbs[r] / copy_mbs[r];
        printf("run %d: cleaned %.0f MB -> %.1f MB (%.0f MB read in two passes; %lld of %lld"
               " records kept, %d segments -> %d, %s) in %.2f s: %.0f MB/s, %.0f records/s;"
               " copy %.0f MB/s; ratio %.2f\n",
               r + 1, (double)copied / 1048576.0, (double)res.bytes_written / 1048576.0,
               (double)res.bytes_read / 1048576.0,
               (long long)res.records_kept, (long long)res.records_read, res.segments_in,
               res.groups, res.map_full ? "map full: partial" : "one pass", t_clean,
               clean_mbs[r], (double)res.records_read / t_clean, copy_mbs[r], ratio[r]);
        fflush(stdout);
    }
    qsort(clean_mbs, (size_t)runs, sizeof(double), cmp_double);
    qsort(copy_mbs, (size_t)runs, sizeof(double), cmp_double);
    qsort(ratio, (size_t)runs, sizeof(double), cmp_double);
    printf("median: cleaner %.0f MB/s, copy (read + write + fsync) %.0f MB/s,"
           " cleaner / copy %.2f\n",
           clean_mbs[runs / 2], copy_mbs[runs / 2], ratio[runs / 2]);
    return 0;
}
