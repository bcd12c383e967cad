/*
 * raft_fs.h - the file operations the KRaft layer's durable files need (the quorum-state
 * file, snapshots), as a table the caller provides.
 *
 * src/raft includes only src/core and src/proto, so it does not call the storage layer's
 * file seam itself; the signatures below are exactly those of src/storage/file.h, so the
 * broker passes
 *
 *     static const sm_raft_fs_t fs = {sm_file_open, sm_file_close, sm_file_pread,
 *                                     sm_file_pwrite, sm_file_datasync, sm_file_size,
 *                                     sm_file_rename, sm_file_sync_dir, sm_file_unlink};
 *
 * and fault injection through sm_file_set_ops() reaches these files too; a simulator passes
 * its own table. Every function returns SM_OK or an sm_err_t (open: SM_ERR_NOT_FOUND for a
 * missing file); see src/storage/file.h for the exact contract of each.
 */
#ifndef SM_RAFT_FS_H
#define SM_RAFT_FS_H

#include "sm_common.h"

#include <stddef.h>

typedef struct sm_raft_fs {
    sm_err_t (*open)(const char *path, int flags, int *fd); /* O_* flags of <fcntl.h> */
    void (*close)(int fd);
    sm_err_t (*pread)(int fd, void *buf, size_t n, int64_t off, size_t *got);
    sm_err_t (*pwrite)(int fd, const void *buf, size_t n, int64_t off); /* all n bytes */
    sm_err_t (*datasync)(int fd);
    sm_err_t (*size)(int fd, int64_t *size);
    sm_err_t (*rename)(const char *from, const char *to);
    sm_err_t (*sync_dir)(const char *path);
    sm_err_t (*unlink)(const char *path); /* a missing file is not an error */
} sm_raft_fs_t;

#endif
