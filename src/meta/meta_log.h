/*
 * meta_log.h - the metadata log __cluster_metadata-0 as the controller uses
 * it (internal to src/meta): replayed at open, appended to by commits.
 *
 * A commit returns once its records are committed by the metadata quorum:
 * appended to the log, fsync'ed and past the quorum's high watermark
 * (meta_quorum.c runs the KRaft quorum of src/raft over a storage partition
 * log, raft_log.c). A failed commit leaves the quorum stopped: later commits
 * fail until a restart, which replays the log (the quorum then commits what
 * it holds, as Raft does).
 *
 * Recovery is the storage log's: a torn tail left by a crash is cut off;
 * a corrupt batch before the end stops the open with SM_ERR_CORRUPT naming
 * the offset, because silently dropping committed metadata would lose topics.
 *
 * Not thread-safe: the controller serialises calls under its lock.
 */
#ifndef SM_META_LOG_H
#define SM_META_LOG_H

#include "sm_common.h"

#define SM_META_LOG_DIR_NAME "__cluster_metadata-0"

typedef struct sm_meta_log sm_meta_log_t;

/* Called for every record during open, in offset order. A non-OK return
 * stops the open with that error; *why describes it. */
typedef sm_err_t (*sm_meta_log_record_fn)(void *ctx, int64_t offset, const uint8_t *value,
                                          size_t len, const char **why);

/* Open (creating) <parent_dir>/__cluster_metadata-0, replay every record
 * through fn, and start the quorum of `voters` (today: this node alone) from
 * its quorum-state file, elected in a new epoch. segment_bytes: roll to a
 * new segment beyond this size. */
SM_MUST_CHECK sm_err_t sm_meta_log_open(const char *parent_dir, int64_t segment_bytes,
                                        int32_t node_id, const int32_t *voters, int nvoters,
                                        sm_meta_log_record_fn fn, void *ctx,
                                        sm_meta_log_t **out);
/* The quorum's (controller) epoch. */
int32_t sm_meta_log_epoch(const sm_meta_log_t *l);

/* The offset the next record gets. */
int64_t sm_meta_log_end_offset(const sm_meta_log_t *l);

/* One record value to append (borrowed for the call). */
typedef struct sm_meta_log_rec {
    const uint8_t *value;
    size_t len;
} sm_meta_log_rec_t;

/* Commit n (> 0) records as one batch (timestamps = now_ms): proposed to
 * the quorum, durable and committed when this returns SM_OK; *base_offset
 * gets the first record's offset. */
SM_MUST_CHECK sm_err_t sm_meta_log_commit(sm_meta_log_t *l, const sm_meta_log_rec_t *recs, int n,
                                          int64_t now_ms, int64_t *base_offset);

void sm_meta_log_close(sm_meta_log_t *l);

#endif
