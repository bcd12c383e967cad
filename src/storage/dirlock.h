/*
 * dirlock.h - one process per log directory.
 *
 * Kafka keeps a `.lock` file in every log directory locked for the life of
 * the broker, so a second broker pointed at the same directory refuses to
 * start instead of writing beside the first (two writers interleave appends
 * to the same segment and metadata log and corrupt both). Samsa does the
 * same with flock(2) on `<dir>/.lock`: the lock belongs to the open file, so
 * it also keeps two nodes of one process (the simulator) apart, and the
 * kernel drops it when the process dies, so a crash leaves nothing to clean.
 */
#ifndef SM_DIRLOCK_H
#define SM_DIRLOCK_H

#include "sm_common.h"

#include <stddef.h>

#define SM_DIRLOCK_FILE ".lock"

/* Create dir if needed and lock <dir>/.lock without waiting. On success
 * *fd_out holds the lock until sm_dirlock_release. SM_ERR_EXISTS if another
 * process (or open file) holds it, SM_ERR_IO otherwise; err says which, in
 * words for the operator. Any thread. */
sm_err_t sm_dirlock_acquire(const char *dir, int *fd_out, char *err, size_t errlen) SM_MUST_CHECK;

/* Unlock and close (fd < 0 is a no-op). The file stays, as Kafka's does. */
void sm_dirlock_release(int fd);

#endif
