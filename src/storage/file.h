/*
 * file.h - the storage layer's seam to the OS file API.
 *
 * Every file operation of src/storage goes through the sm_file_ops_t table,
 * so a fault-injection layer (tests, simulator) can replace it with
 * sm_file_set_ops() to return I/O errors, short or torn writes and ENOSPC.
 * The wrappers turn errno into sm_err_t (ENOSPC/EDQUOT -> SM_ERR_NOSPC,
 * anything else -> SM_ERR_IO), retry EINTR and short transfers, and log
 * failures with the path or fd. Any thread; the table must be set before
 * any log is opened.
 */
#ifndef SM_STORAGE_FILE_H
#define SM_STORAGE_FILE_H

#include "sm_common.h"

#include <sys/types.h>
#include <sys/uio.h>

typedef struct sm_file_ops {
    int (*open)(const char *path, int flags, mode_t mode);
    int (*close)(int fd);
    ssize_t (*pread)(int fd, void *buf, size_t n, off_t off);
    ssize_t (*pwrite)(int fd, const void *buf, size_t n, off_t off);
    int (*fdatasync)(int fd);
    int (*fsync)(int fd);
    int (*ftruncate)(int fd, off_t len);
    int (*fstat_size)(int fd, off_t *size);
    int (*unlink)(const char *path);
    int (*rename)(const char *from, const char *to);
    int (*mkdir)(const char *path, mode_t mode);
    int (*rmdir)(const char *path);
    /* Page-cache hints (write-behind, log_cache.c): start writeback of a
     * range without waiting; drop a range's clean pages from the cache. */
    int (*writeback)(int fd, off_t off, off_t len);
    int (*drop_cache)(int fd, off_t off, off_t len);
} sm_file_ops_t;

/* Replace the operations (NULL restores the real ones). Returns the old. */
const sm_file_ops_t *sm_file_set_ops(const sm_file_ops_t *ops);
/* The real operations, for a wrapper layer to delegate to. */
const sm_file_ops_t *sm_file_os_ops(void);

/* Open path with O_CLOEXEC added; *fd on success. */
SM_MUST_CHECK sm_err_t sm_file_open(const char *path, int flags, int *fd);
void sm_file_close(int fd);
/* Read up to n bytes at off; *got < n only at end of file. */
SM_MUST_CHECK sm_err_t sm_file_pread(int fd, void *buf, size_t n, int64_t off, size_t *got);
/* Write all n bytes at off. */
SM_MUST_CHECK sm_err_t sm_file_pwrite(int fd, const void *buf, size_t n, int64_t off);
SM_MUST_CHECK sm_err_t sm_file_datasync(int fd);
SM_MUST_CHECK sm_err_t sm_file_truncate(int fd, int64_t len);
SM_MUST_CHECK sm_err_t sm_file_size(int fd, int64_t *size);
/* Start writing back the dirty pages of [off, off + len) now, without
 * waiting for the I/O (sync_file_range with SYNC_FILE_RANGE_WRITE only).
 * Never with a WAIT flag: those advance the open file's writeback-error
 * cursor, so a later fdatasync on the same fd could report success after
 * an I/O error. A hint: failures are logged at debug level and ignored. */
void sm_file_writeback_start(int fd, int64_t off, int64_t len);
/* Drop the clean, idle pages of [off, off + len) from the page cache
 * (posix_fadvise DONTNEED; dirty pages and pages under writeback stay).
 * A hint, like sm_file_writeback_start. */
void sm_file_cache_drop(int fd, int64_t off, int64_t len);
/* Unlink; a missing file is not an error. */
sm_err_t sm_file_unlink(const char *path); /* failures are logged; callers may ignore */
SM_MUST_CHECK sm_err_t sm_file_rename(const char *from, const char *to);
/* mkdir -p; existing directories are fine. */
SM_MUST_CHECK sm_err_t sm_file_mkdirs(const char *path);
SM_MUST_CHECK sm_err_t sm_file_rmdir(const char *path);
/* fsync a directory so renames, creations and unlinks in it are durable. */
SM_MUST_CHECK sm_err_t sm_file_sync_dir(const char *path);
/* Write data to path atomically: path.tmp, fsync, rename, fsync dir. */
SM_MUST_CHECK sm_err_t sm_file_write_atomic(const char *dir, const char *name, const void *data,
                                            size_t len);

#endif
