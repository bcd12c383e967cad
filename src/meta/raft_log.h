/*
 * raft_log.h - the metadata log as the Raft quorum sees it: an
 * sm_raft_log_ops_t (src/raft/raft.h) over a partition log of src/storage,
 * so __cluster_metadata-0 uses the same segments, indexes, recovery,
 * truncation and leader-epoch cache as every topic partition.
 *
 * Batches are Kafka's record batches (magic 2): a leader append is one
 * batch whose records are the proposed metadata records (the log stamps the
 * base offset and the leader epoch), or a control batch holding a
 * LeaderChangeMessage; a follower appends the leader's bytes as they are,
 * batch by batch, with their own offsets and epochs, after checking every
 * batch (CRC, framing, contiguous offsets, epochs that never go back): bad
 * bytes from a peer append nothing. Snapshots (meta_snapshot.h) sit in
 * the same directory: the newest is served with FetchSnapshot, a fetched
 * one is checked whole, installed and the log restarts at its end.
 *
 * Threads: one owner (the controller's thread); the storage log locks itself.
 */
#ifndef SM_META_RAFT_LOG_H
#define SM_META_RAFT_LOG_H

#include "raft.h"
#include "sm_common.h"
#include "storage/log.h"

typedef struct sm_raft_storage_log sm_raft_storage_log_t;

extern const sm_raft_log_ops_t sm_raft_storage_log_ops;

/* Open (creating) <parent_dir>/__cluster_metadata-0 with segment_bytes
 * segments. The voters listed go into LeaderChangeMessage records. */
SM_MUST_CHECK sm_err_t sm_raft_storage_log_open(const char *parent_dir, int64_t segment_bytes,
                                                const int32_t *voters, int nvoters,
                                                sm_raft_storage_log_t **out);
void sm_raft_storage_log_close(sm_raft_storage_log_t *l);
/* The storage log underneath (for replay and tools). */
sm_log_t *sm_raft_storage_log_log(sm_raft_storage_log_t *l);
/* This node wrote snapshot end_offset-epoch (meta_snapshot.c): serve it to
 * followers, and when the log exceeds max_log_bytes (-1: never) move the
 * log start to it. The raft thread. */
void sm_raft_storage_log_snapshot_taken(sm_raft_storage_log_t *l, int64_t end_offset,
                                        int32_t epoch, int64_t max_log_bytes);

#endif
