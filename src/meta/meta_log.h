/*
 * meta_log.h - the local metadata log: __cluster_metadata-0 as Kafka segment
 * files (<20-digit base offset>.log of magic-2 batches), read back at start
 * and appended to by the controller (internal to src/meta).
 *
 * This is the single-voter "commit" step: a batch is committed once it is
 * written and fdatasync'ed here. A Raft quorum will wrap this log (append
 * locally, replicate, commit at the majority's offset) without changing the
 * controller, which only calls sm_meta_log_commit.
 *
 * Recovery: batches are validated (CRC, framing, contiguous offsets) while
 * replaying. Bad bytes in the last batch of the last segment are a torn write
 * from a crash: the segment is truncated there (logged with file and
 * position). Bad bytes anywhere else mean the log is damaged and open fails
 * with SM_ERR_CORRUPT naming the file and position, because silently dropping
 * committed metadata would lose topics.
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

/* Open (creating) <parent_dir>/__cluster_metadata-0 and replay every record
 * through fn. segment_bytes: roll to a new segment beyond this size. */
SM_MUST_CHECK sm_err_t sm_meta_log_open(const char *parent_dir, int64_t segment_bytes,
                                        sm_meta_log_record_fn fn, void *ctx,
                                        sm_meta_log_t **out);

/* The offset the next record gets. */
int64_t sm_meta_log_end_offset(const sm_meta_log_t *l);

/* One record value to append (borrowed for the call). */
typedef struct sm_meta_log_rec {
    const uint8_t *value;
    size_t len;
} sm_meta_log_rec_t;

/* Append n (> 0) records as one batch (leader epoch = epoch, timestamps =
 * now_ms) and make it durable. *base_offset gets the first record's offset.
 * On failure the segment is cut back to its previous size and the end offset
 * is unchanged, so the caller may retry. */
SM_MUST_CHECK sm_err_t sm_meta_log_commit(sm_meta_log_t *l, int32_t epoch,
                                          const sm_meta_log_rec_t *recs, int n, int64_t now_ms,
                                          int64_t *base_offset);

void sm_meta_log_close(sm_meta_log_t *l);

#endif
