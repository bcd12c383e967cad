/*
 * quorum_state.h - Kafka's `quorum-state` file: the KRaft election state a voter must
 * keep across restarts (its epoch, the leader it knows, the candidate it voted for).
 *
 * It lives in the metadata partition's directory (`<metadata.log.dir>/__cluster_metadata-0/
 * quorum-state`) and is one JSON object, the QuorumStateData message in Kafka's JSON form
 * plus a `data_version` member naming the version it was written at:
 *
 *   v0 (Kafka 2.8-3.8): {"clusterId":"","leaderId":1,"leaderEpoch":5,"votedId":-1,
 *                        "appliedOffset":0,"currentVoters":[{"voterId":1},{"voterId":2}],
 *                        "data_version":0}
 *   v1 (Kafka 3.9+):    {"leaderId":1,"leaderEpoch":5,"votedId":-1,
 *                        "votedDirectoryId":"AAAAAAAAAAAAAAAAAAAAAA","data_version":1}
 *
 * Writing: the JSON goes to `quorum-state.tmp`, which is fdatasync'ed, renamed over
 * `quorum-state`, and the directory fsync'ed, so a crash leaves the old or the new state,
 * never a mix. A vote must be durable before it is granted: call sm_quorum_state_write
 * and only answer the Vote request once it returned SM_OK.
 *
 * Reading is strict: malformed JSON, a missing data_version or a field the version requires,
 * a duplicated field, a wrong type or an out-of-range value is SM_ERR_CORRUPT with a message
 * naming the file, the line and column and what is wrong. Members the version does not use
 * are ignored (as Kafka does).
 *
 * Pure apart from the files it is given through sm_raft_fs_t; any thread, one call at a time
 * per directory.
 */
#ifndef SM_RAFT_QUORUM_STATE_H
#define SM_RAFT_QUORUM_STATE_H

#include "proto.h"
#include "raft_fs.h"
#include "sm_common.h"

#define SM_QUORUM_STATE_FILE "quorum-state"
#define SM_QUORUM_STATE_MAX_BYTES (1 << 20) /* a bigger file is refused as corrupt */

typedef struct sm_quorum_state {
    int16_t data_version;         /* the version read (0 or 1) */
    int32_t leader_id;            /* -1: no known leader */
    int32_t leader_epoch;         /* the current epoch, >= 0 */
    int32_t voted_id;             /* -1: no vote in this epoch */
    sm_uuid_t voted_directory_id; /* v1: the voted candidate's directory id (zero: none) */
    /* v0 only (ignored when writing v1) */
    char *cluster_id;        /* malloc'd; NULL when absent (written as "") */
    int64_t applied_offset;  /* unused by Kafka; written as 0 */
    int32_t *current_voters; /* malloc'd voter ids; count -1 = null */
    int32_t current_voters_count;
} sm_quorum_state_t;

/* A fresh node's state: epoch 0, no leader, no vote, data_version 1. */
void sm_quorum_state_init(sm_quorum_state_t *s);
/* Free the v0 members; s is then as after init. */
void sm_quorum_state_free(sm_quorum_state_t *s);

/*
 * Encode s as the file's JSON at data version `version` (0 or 1, the data_version written)
 * into w, byte for byte as Kafka's writer does (compact, members in schema order,
 * data_version last, no newline).
 */
void sm_quorum_state_format(const sm_quorum_state_t *s, int16_t version, sm_wbuf_t *w);

/*
 * Parse the file's text into *out (init'ed first; free it with sm_quorum_state_free).
 * `file` names the source in error messages. SM_ERR_CORRUPT with why (a NUL-terminated
 * message of at most why_cap bytes, "<file>: line L, column C: ...") on any error.
 */
SM_MUST_CHECK sm_err_t sm_quorum_state_parse(const char *text, size_t len, const char *file,
                                             sm_quorum_state_t *out, char *why, size_t why_cap);

/*
 * Read dir/quorum-state. SM_ERR_NOT_FOUND if there is none (a new voter), SM_ERR_CORRUPT
 * (with why) if it does not parse, SM_ERR_IO/NOSPC from the file operations.
 * A leftover quorum-state.tmp (a crash during a write) is ignored.
 */
SM_MUST_CHECK sm_err_t sm_quorum_state_read(const sm_raft_fs_t *fs, const char *dir,
                                            sm_quorum_state_t *out, char *why, size_t why_cap);

/*
 * Durably replace dir/quorum-state with s at data version `version`: write
 * quorum-state.tmp, fdatasync it, rename it over quorum-state, fsync dir. On failure the
 * old file is intact (or, if the rename happened but the directory sync failed, the new one
 * may or may not survive a crash) and the tmp file is removed.
 */
SM_MUST_CHECK sm_err_t sm_quorum_state_write(const sm_raft_fs_t *fs, const char *dir,
                                             const sm_quorum_state_t *s, int16_t version);

#endif
