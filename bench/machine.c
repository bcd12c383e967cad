/*
 * machine.c - the machine's own limits, measured in the same run as the
 * broker benchmarks so results can be read as fractions of them
 * (bench/run.sh builds it with the system compiler; no project code).
 *
 *   machine tcp SECONDS          loopback TCP bandwidth: one sender thread
 *                                writes 1 MiB chunks, the main thread reads;
 *                                prints "tcp_mb_per_sec=N"
 *   machine write DIR MIB        sequential 1 MiB writes to a new file in DIR,
 *                                twice: buffered (page cache), then with an
 *                                fdatasync every 16 MiB and at the end;
 *                                prints "write_mb_per_sec=N" and
 *                                "write_sync_mb_per_sec=N"
 *   machine pagecache DIR MIB    sequential 1 MiB writes of MIB to a new file,
 *                                twice: with Samsa's write-behind pattern
 *                                (every 16 MiB: sync_file_range WRITE of the
 *                                new 16 MiB, posix_fadvise DONTNEED of the
 *                                range 32 MiB behind the end), then plain;
 *                                prints "writebehind_mb_per_sec=N" and
 *                                "write_plain_mb_per_sec=N". Where fresh
 *                                page-cache pages are expensive (a VM whose
 *                                free pages go back to the host), the first
 *                                reuses its pages and the second cannot.
 *   machine fsync DIR COUNT      COUNT times: append 4 KiB, fdatasync;
 *                                prints "fsync_us_p50=N fsync_us_p99=N
 *                                fsync_us_max=N"
 *
 * Output is key=value lines on stdout; errors go to stderr with exit 1.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define CHUNK (1 << 20)

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int die(const char *what)
{
    fprintf(stderr, "machine: %s: %s\n", what, strerror(errno));
    exit(1);
}

/* ---- loopback TCP */

typedef struct sender {
    int fd;
    double until;
} sender_t;

static void *send_main(void *arg)
{
    sender_t *s = arg;
    char *buf = malloc(CHUNK);
    memset(buf, 'x', CHUNK);
    while (now_s() < s->until) {
        ssize_t n = write(s->fd, buf, CHUNK);
        if (n < 0 && errno != EINTR)
            break;
    }
    shutdown(s->fd, SHUT_WR);
    free(buf);
    return NULL;
}

static int bench_tcp(double secs)
{
    int ls = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t al = sizeof a;
    if (ls < 0 || bind(ls, (struct sockaddr *)&a, sizeof a) || listen(ls, 1) ||
        getsockname(ls, (struct sockaddr *)&a, &al))
        return die("listen");
    int cs = socket(AF_INET, SOCK_STREAM, 0);
    if (cs < 0 || connect(cs, (struct sockaddr *)&a, sizeof a))
        return die("connect");
    int ss = accept(ls, NULL, NULL);
    if (ss < 0)
        return die("accept");
    sender_t s = {cs, now_s() + secs};
    pthread_t t;
    pthread_create(&t, NULL, send_main, &s);
    char *buf = malloc(CHUNK);
    double start = now_s();
    int64_t total = 0;
    for (;;) {
        ssize_t n = read(ss, buf, CHUNK);
        if (n > 0)
            total += n;
        else if (n == 0 || errno != EINTR)
            break;
    }
    double el = now_s() - start;
    pthread_join(t, NULL);
    printf("tcp_mb_per_sec=%.1f\n", (double)total / el / 1e6);
    free(buf);
    close(ss);
    close(cs);
    close(ls);
    return 0;
}

/* ---- sequential write, and page-cache reuse (log.cache.window.bytes) */

typedef enum write_mode {
    WRITE_PLAIN,  /* buffered writes, nothing else */
    WRITE_SYNC,   /* fdatasync every 16 MiB and at the end */
    WRITE_BEHIND, /* Samsa's write-behind: every 16 MiB, start writeback of
                     the new 16 MiB and drop the 16 MiB that end 32 MiB
                     behind the end */
} write_mode_t;

/* MIB x 1 MiB to a new file in dir; returns MB/s. */
static double write_file(const char *dir, int mib, write_mode_t mode)
{
    char path[4096];
    snprintf(path, sizeof path, "%s/machine-write-%d.tmp", dir, (int)getpid());
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0)
        die(path);
    char *buf = malloc(CHUNK);
    memset(buf, 'w', CHUNK);
    const off_t step = 16 * (off_t)CHUNK, window = 2 * step;
    double start = now_s();
    for (int i = 0; i < mib; i++) {
        if (write(fd, buf, CHUNK) != CHUNK)
            die("write");
        off_t end = (off_t)(i + 1) * CHUNK;
        if (end % step != 0)
            continue;
        if (mode == WRITE_SYNC && fdatasync(fd))
            die("fdatasync");
        if (mode == WRITE_BEHIND) {
            sync_file_range(fd, end - step, step, SYNC_FILE_RANGE_WRITE);
            if (end > window)
                posix_fadvise(fd, end - window - step, step, POSIX_FADV_DONTNEED);
        }
    }
    if (mode == WRITE_SYNC && fdatasync(fd))
        die("fdatasync");
    double el = now_s() - start;
    close(fd);
    unlink(path);
    free(buf);
    return (double)mib * CHUNK / el / 1e6;
}

static int bench_write(const char *dir, int mib)
{
    printf("write_mb_per_sec=%.1f\n", write_file(dir, mib, WRITE_PLAIN));
    printf("write_sync_mb_per_sec=%.1f\n", write_file(dir, mib, WRITE_SYNC));
    return 0;
}

static int bench_pagecache(const char *dir, int mib)
{
    printf("writebehind_mb_per_sec=%.1f\n", write_file(dir, mib, WRITE_BEHIND));
    printf("write_plain_mb_per_sec=%.1f\n", write_file(dir, mib, WRITE_PLAIN));
    return 0;
}

/* ---- fsync latency */

static int cmp_d(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static int bench_fsync(const char *dir, int count)
{
    char path[4096];
    snprintf(path, sizeof path, "%s/machine-fsync-%d.tmp", dir, (int)getpid());
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0)
        return die(path);
    char buf[4096];
    memset(buf, 'f', sizeof buf);
    double *lat = calloc((size_t)count, sizeof *lat);
    for (int i = 0; i < count; i++) {
        double t0 = now_s();
        if (write(fd, buf, sizeof buf) != (ssize_t)sizeof buf || fdatasync(fd))
            return die("write/fdatasync");
        lat[i] = (now_s() - t0) * 1e6;
    }
    qsort(lat, (size_t)count, sizeof *lat, cmp_d);
    printf("fsync_us_p50=%.0f\nfsync_us_p99=%.0f\nfsync_us_max=%.0f\n", lat[count / 2],
           lat[(int)((count - 1) * 0.99)], lat[count - 1]);
    free(lat);
    close(fd);
    unlink(path);
    return 0;
}

int main(int argc, char **argv)
{
    if (argc == 3 && !strcmp(argv[1], "tcp"))
        return bench_tcp(atof(argv[2]));
    if (argc == 4 && !strcmp(argv[1], "write"))
        return bench_write(argv[2], atoi(argv[3]));
    if (argc == 4 && !strcmp(argv[1], "pagecache"))
        return bench_pagecache(argv[2], atoi(argv[3]));
    if (argc == 4 && !strcmp(argv[1], "fsync"))
        return bench_fsync(argv[2], atoi(argv[3]));
    fprintf(stderr, "usage: machine tcp SECONDS | write DIR MIB | fsync DIR COUNT\n");
    return 2;
}
