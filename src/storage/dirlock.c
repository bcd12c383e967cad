/*
 * dirlock.c - the `.lock` file of a log directory (see dirlock.h).
 */
#include "dirlock.h"
#include "file.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/file.h>
#include <unistd.h>

sm_err_t sm_dirlock_acquire(const char *dir, int *fd_out, char *err, size_t errlen)
{
    *fd_out = -1;
    if (sm_file_mkdirs(dir) != SM_OK) {
        snprintf(err, errlen, "cannot create log directory %s", dir);
        return SM_ERR_IO;
    }
    char path[4096];
    if (snprintf(path, sizeof path, "%s/%s", dir, SM_DIRLOCK_FILE) >= (int)sizeof path) {
        snprintf(err, errlen, "log directory path too long: %s", dir);
        return SM_ERR_INVALID;
    }
    int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
    if (fd < 0) {
        snprintf(err, errlen, "cannot open %s: %s", path, strerror(errno));
        return SM_ERR_IO;
    }
    if (flock(fd, LOCK_EX | LOCK_NB) < 0) {
        int e = errno;
        close(fd);
        if (e == EWOULDBLOCK) {
            snprintf(err, errlen,
                     "%s is in use by another broker (%s is locked); each broker needs log "
                     "directories of its own",
                     dir, path);
            return SM_ERR_EXISTS;
        }
        snprintf(err, errlen, "cannot lock %s: %s", path, strerror(e));
        return SM_ERR_IO;
    }
    *fd_out = fd;
    return SM_OK;
}

void sm_dirlock_release(int fd)
{
    if (fd < 0)
        return;
    flock(fd, LOCK_UN);
    close(fd);
}
