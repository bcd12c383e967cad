/*
 * file.c - the OS file seam; see file.h. The ops table pointer is read with
 * an atomic load so sm_file_set_ops() from a test thread is safe. Any thread.
 */
#define _GNU_SOURCE
#include "file.h"

#include "../core/log.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static int os_fstat_size(int fd, off_t *size)
{
    struct stat st;
    if (fstat(fd, &st) < 0)
        return -1;
    *size = st.st_size;
    return 0;
}

static int os_open(const char *path, int flags, mode_t mode)
{
    return open(path, flags, mode);
}

static int os_writeback(int fd, off_t off, off_t len)
{
    return sync_file_range(fd, off, len, SYNC_FILE_RANGE_WRITE);
}

static int os_drop_cache(int fd, off_t off, off_t len)
{
    int e = posix_fadvise(fd, off, len, POSIX_FADV_DONTNEED);
    if (e) {
        errno = e;
        return -1;
    }
    return 0;
}

static const sm_file_ops_t os_ops = {
    .open = os_open,
    .close = close,
    .pread = pread,
    .pwrite = pwrite,
    .fdatasync = fdatasync,
    .fsync = fsync,
    .ftruncate = ftruncate,
    .fstat_size = os_fstat_size,
    .unlink = unlink,
    .rename = rename,
    .mkdir = mkdir,
    .rmdir = rmdir,
    .writeback = os_writeback,
    .drop_cache = os_drop_cache,
};

static const sm_file_ops_t *cur_ops = &os_ops;

static inline const sm_file_ops_t *ops(void)
{
    return __atomic_load_n(&cur_ops, __ATOMIC_ACQUIRE);
}

const sm_file_ops_t *sm_file_set_ops(const sm_file_ops_t *o)
{
    return __atomic_exchange_n(&cur_ops, o ? o : &os_ops, __ATOMIC_ACQ_REL);
}

const sm_file_ops_t *sm_file_os_ops(void)
{
    return &os_ops;
}

static sm_err_t errno_err(int e)
{
    return (e == ENOSPC || e == EDQUOT) ? SM_ERR_NOSPC : SM_ERR_IO;
}

sm_err_t sm_file_open(const char *path, int flags, int *fd)
{
    int r;
    do
        r = ops()->open(path, flags | O_CLOEXEC, 0644);
    while (r < 0 && errno == EINTR);
    if (r < 0) {
        int e = errno;
        if (e == ENOENT)
            return SM_ERR_NOT_FOUND;
        SM_ERROR("storage", "open %s: %s", path, strerror(e));
        return errno_err(e);
    }
    *fd = r;
    return SM_OK;
}

void sm_file_close(int fd)
{
    if (fd >= 0)
        ops()->close(fd);
}

sm_err_t sm_file_pread(int fd, void *buf, size_t n, int64_t off, size_t *got)
{
    size_t done = 0;
    while (done < n) {
        ssize_t r = ops()->pread(fd, (char *)buf + done, n - done, (off_t)(off + (int64_t)done));
        if (r < 0) {
            if (errno == EINTR)
                continue;
            SM_ERROR("storage", "pread fd %d at %lld: %s", fd, (long long)off, strerror(errno));
            return errno_err(errno);
        }
        if (r == 0)
            break;
        done += (size_t)r;
    }
    *got = done;
    return SM_OK;
}

sm_err_t sm_file_pwrite(int fd, const void *buf, size_t n, int64_t off)
{
    size_t done = 0;
    while (done < n) {
        ssize_t r = ops()->pwrite(fd, (const char *)buf + done, n - done,
                                  (off_t)(off + (int64_t)done));
        if (r < 0) {
            if (errno == EINTR)
                continue;
            SM_ERROR("storage", "pwrite fd %d at %lld: %s", fd, (long long)off, strerror(errno));
            return errno_err(errno);
        }
        if (r == 0) {
            SM_ERROR("storage", "pwrite fd %d at %lld wrote nothing", fd, (long long)off);
            return SM_ERR_IO;
        }
        done += (size_t)r;
    }
    return SM_OK;
}

void sm_file_writeback_start(int fd, int64_t off, int64_t len)
{
    if (len > 0 && ops()->writeback(fd, (off_t)off, (off_t)len) < 0)
        SM_DEBUG("storage", "sync_file_range fd %d [%lld, +%lld): %s", fd, (long long)off,
                 (long long)len, strerror(errno));
}

void sm_file_cache_drop(int fd, int64_t off, int64_t len)
{
    if (len > 0 && ops()->drop_cache(fd, (off_t)off, (off_t)len) < 0)
        SM_DEBUG("storage", "posix_fadvise DONTNEED fd %d [%lld, +%lld): %s", fd,
                 (long long)off, (long long)len, strerror(errno));
}

sm_err_t sm_file_datasync(int fd)
{
    int r;
    do
        r = ops()->fdatasync(fd);
    while (r < 0 && errno == EINTR);
    if (r < 0) {
        SM_ERROR("storage", "fdatasync fd %d: %s", fd, strerror(errno));
        return errno_err(errno);
    }
    return SM_OK;
}

sm_err_t sm_file_truncate(int fd, int64_t len)
{
    int r;
    do
        r = ops()->ftruncate(fd, (off_t)len);
    while (r < 0 && errno == EINTR);
    if (r < 0) {
        SM_ERROR("storage", "ftruncate fd %d to %lld: %s", fd, (long long)len, strerror(errno));
        return errno_err(errno);
    }
    return SM_OK;
}

sm_err_t sm_file_size(int fd, int64_t *size)
{
    off_t s;
    if (ops()->fstat_size(fd, &s) < 0) {
        SM_ERROR("storage", "fstat fd %d: %s", fd, strerror(errno));
        return SM_ERR_IO;
    }
    *size = (int64_t)s;
    return SM_OK;
}

sm_err_t sm_file_unlink(const char *path)
{
    if (ops()->unlink(path) < 0 && errno != ENOENT) {
        SM_ERROR("storage", "unlink %s: %s", path, strerror(errno));
        return SM_ERR_IO;
    }
    return SM_OK;
}

sm_err_t sm_file_rename(const char *from, const char *to)
{
    if (ops()->rename(from, to) < 0) {
        SM_ERROR("storage", "rename %s -> %s: %s", from, to, strerror(errno));
        return errno_err(errno);
    }
    return SM_OK;
}

sm_err_t sm_file_mkdirs(const char *path)
{
    char buf[PATH_MAX];
    size_t n = strlen(path);
    if (n == 0 || n >= sizeof buf)
        return SM_ERR_INVALID;
    memcpy(buf, path, n + 1);
    for (size_t i = 1; i <= n; i++) {
        if (buf[i] != '/' && buf[i] != '\0')
            continue;
        char c = buf[i];
        buf[i] = '\0';
        if (ops()->mkdir(buf, 0755) < 0 && errno != EEXIST) {
            SM_ERROR("storage", "mkdir %s: %s", buf, strerror(errno));
            return errno_err(errno);
        }
        buf[i] = c;
    }
    return SM_OK;
}

sm_err_t sm_file_rmdir(const char *path)
{
    if (ops()->rmdir(path) < 0 && errno != ENOENT) {
        SM_ERROR("storage", "rmdir %s: %s", path, strerror(errno));
        return SM_ERR_IO;
    }
    return SM_OK;
}

sm_err_t sm_file_sync_dir(const char *path)
{
    int fd;
    sm_err_t err = sm_file_open(path, O_RDONLY | O_DIRECTORY, &fd);
    if (err)
        return err;
    int r;
    do
        r = ops()->fsync(fd);
    while (r < 0 && errno == EINTR);
    int e = errno;
    sm_file_close(fd);
    if (r < 0) {
        SM_ERROR("storage", "fsync dir %s: %s", path, strerror(e));
        return errno_err(e);
    }
    return SM_OK;
}

sm_err_t sm_file_write_atomic(const char *dir, const char *name, const void *data, size_t len)
{
    char tmp[PATH_MAX], dst[PATH_MAX];
    if (snprintf(tmp, sizeof tmp, "%s/%s.tmp", dir, name) >= (int)sizeof tmp ||
        snprintf(dst, sizeof dst, "%s/%s", dir, name) >= (int)sizeof dst)
        return SM_ERR_INVALID;
    int fd;
    sm_err_t err = sm_file_open(tmp, O_WRONLY | O_CREAT | O_TRUNC, &fd);
    if (err)
        return err;
    err = sm_file_pwrite(fd, data, len, 0);
    if (!err)
        err = sm_file_datasync(fd);
    sm_file_close(fd);
    if (!err)
        err = sm_file_rename(tmp, dst);
    if (!err)
        err = sm_file_sync_dir(dir);
    if (err)
        (void)sm_file_unlink(tmp);
    return err;
}
