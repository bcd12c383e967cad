/*
 * fetch_session.h - incremental fetch sessions (KIP-227).
 *
 * A session remembers the partitions a client fetches, so later requests
 * only name partitions whose fetch position changed and responses only
 * carry partitions with news (records, a moved high watermark / last stable
 * offset / log start, or an error). The cache is broker-wide, bounded by
 * max.incremental.fetch.session.cache.slots (least recently used sessions
 * idle for 2 minutes are evicted first), and guarded by one mutex: each
 * call copies what the fetch needs, so no pointer into a session escapes.
 *
 *   session_id 0, epoch -1  sessionless full fetch
 *   session_id 0, epoch  0  full fetch that creates a session
 *   session_id S, epoch -1  close S, sessionless full fetch
 *   session_id S, epoch  0  close S, full fetch that creates a new session
 *   session_id S, epoch  N  incremental fetch on S (N must be S's next epoch)
 */
#ifndef SM_FETCH_SESSION_H
#define SM_FETCH_SESSION_H

#include "proto.h"
#include "sm_common.h"

typedef struct sm_fsess_cache sm_fsess_cache_t;

/* One partition of a session, as the fetch path sees it. */
typedef struct sm_fsess_part {
    sm_uuid_t topic_id;
    char topic[256];
    int32_t partition;
    int64_t fetch_offset;
    int32_t max_bytes;
    int32_t current_leader_epoch;
    int32_t last_fetched_epoch; /* replica fetches: divergence check */
    /* what the client last saw, to decide if the partition is news */
    int64_t last_hw, last_lso, last_start;
} sm_fsess_part_t;

/* Open a new session holding parts (copied); returns its id (> 0) or 0 if
 * no slot could be had (the fetch then stays sessionless). Any thread. */
int32_t sm_fsess_create(sm_fsess_cache_t *c, const sm_fsess_part_t *parts, int nparts, int64_t now_ms);
void sm_fsess_close(sm_fsess_cache_t *c, int32_t id);

/* Incremental fetch: check the epoch, apply changed and forgotten partitions,
 * bump the epoch, and return a malloc'ed copy of all the session's
 * partitions. Returns SM_ERR_NOT_FOUND (no such session) or SM_ERR_INVALID
 * (wrong epoch). Any thread. */
sm_err_t sm_fsess_update(sm_fsess_cache_t *c, int32_t id, int32_t epoch, const sm_fsess_part_t *changed, int nchanged,
                         const sm_fsess_part_t *forgotten, int nforgotten, int64_t now_ms,
                         sm_fsess_part_t **all, int *nall) SM_MUST_CHECK;

/* Remember what was sent for one partition (no-op if gone). Any thread. */
void sm_fsess_sent(sm_fsess_cache_t *c, int32_t id, const sm_fsess_part_t *p);

/* A broker's session cache, bounded by slots sessions
 * (max.incremental.fetch.session.cache.slots). Owned by the server. */
sm_fsess_cache_t *sm_fsess_cache_new(int slots);
void sm_fsess_cache_free(sm_fsess_cache_t *c);

#endif
