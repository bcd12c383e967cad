/*
 * snapshot_name.h - file names of KRaft snapshots (KIP-630), as Kafka's Snapshots.java
 * makes them, in the metadata partition's directory:
 *
 *   00000000000000012345-0000000007.checkpoint          a complete snapshot: every record
 *                                                        below end offset 12345, whose last
 *                                                        record has epoch 7
 *   00000000000000012345-0000000007-<any>.checkpoint.part   being written (Kafka adds a
 *                                                        random part after the epoch);
 *                                                        deleted at start-up
 *   00000000000000012345-0000000007.checkpoint.deleted  renamed before deletion; deleted at
 *                                                        start-up
 *
 * The end offset has 20 digits and the epoch 10, zero-padded. Pure functions: any thread.
 */
#ifndef SM_RAFT_SNAPSHOT_NAME_H
#define SM_RAFT_SNAPSHOT_NAME_H

#include "sm_common.h"

#define SM_SNAPSHOT_SUFFIX ".checkpoint"
#define SM_SNAPSHOT_PART_SUFFIX ".checkpoint.part"
#define SM_SNAPSHOT_DELETED_SUFFIX ".checkpoint.deleted"
/* Longest name sm_snapshot_name_format makes without a unique part, with its NUL. */
#define SM_SNAPSHOT_NAME_MAX (20 + 1 + 10 + sizeof SM_SNAPSHOT_DELETED_SUFFIX)

typedef enum sm_snapshot_kind {
    SM_SNAPSHOT_COMPLETE, /* .checkpoint */
    SM_SNAPSHOT_PARTIAL,  /* .checkpoint.part */
    SM_SNAPSHOT_DELETED,  /* .checkpoint.deleted */
} sm_snapshot_kind_t;

typedef struct sm_snapshot_id {
    int64_t end_offset; /* >= 0 */
    int32_t epoch;      /* >= 0 */
} sm_snapshot_id_t;

/*
 * Write the file name of snapshot id with the suffix of kind into buf (cap bytes with the
 * NUL). For SM_SNAPSHOT_PARTIAL, `unique` (may be NULL) goes between the epoch and the
 * suffix after a '-', as Kafka's temporary files have it. Returns the name's length, or 0
 * if it does not fit or id is negative.
 */
size_t sm_snapshot_name_format(char *buf, size_t cap, sm_snapshot_id_t id, sm_snapshot_kind_t kind,
                               const char *unique);

/*
 * Parse a file name (no directory part). true with *id and *kind if it is a snapshot
 * file name; false for any other file (segments, indexes, quorum-state, a malformed
 * snapshot name: wrong digit counts, a sign, an offset or epoch out of range).
 */
bool sm_snapshot_name_parse(const char *name, sm_snapshot_id_t *id, sm_snapshot_kind_t *kind);

#endif
