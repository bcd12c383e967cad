/*
 * coord_records.h - the records the group coordinator keeps in
 * __consumer_offsets, in Kafka's exact format, and the partitioning of
 * groups over that topic.
 *
 * Record format (as Kafka writes them, so tools that read the topic work):
 *   offset commit:  key   = int16 1 | OffsetCommitKey v1 (group, topic, partition)
 *                   value = int16 3 | OffsetCommitValue v3 (offset, leaderEpoch,
 *                           metadata, commitTimestamp), or int16 1 | v1 when an
 *                           explicit expire timestamp exists; null = deleted
 *   group metadata: key   = int16 2 | GroupMetadataKey v2 (group)
 *                   value = int16 3 | GroupMetadataValue v3 (protocolType,
 *                           generation, protocol, leader, currentStateTimestamp,
 *                           members with instance ids, subscriptions and
 *                           assignments); null = group deleted
 * Key versions 0 and 1 are offset commits, 2 is group metadata; anything else
 * (e.g. a newer coordinator's records) is skipped on load. Values of any
 * version the generated codecs know are read.
 *
 * Pure functions; any thread.
 */
#ifndef SM_COORD_RECORDS_H
#define SM_COORD_RECORDS_H

#include "arena.h"
#include "batch.h"
#include "buf.h"
#include "group.h"
#include "sm_proto_gen.h"

/* Kafka's partitioning of groups: Utils.abs(groupId.hashCode()) % n, where
 * hashCode is Java's String.hashCode over UTF-16 code units (the UTF-8 bytes
 * are decoded; each byte of a malformed sequence counts as one U+FFFD, close
 * to Java's decoder, which may merge a truncated sequence into one). */
int32_t sm_coord_partition_for(const char *group_id, size_t len, int32_t nparts);

/* Encoded key and value of one record; built in an arena. value_len -1 = tombstone. */
typedef struct sm_coord_kv {
    uint8_t *key;
    int32_t key_len;
    uint8_t *value;
    int32_t value_len;
} sm_coord_kv_t;

/* Offset commit record (v == NULL: tombstone). */
void sm_coord_record_offset(sm_arena_t *a, const char *group, const char *topic,
                            size_t topic_len, int32_t partition, const sm_offset_value_t *v,
                            sm_coord_kv_t *out);
/* Group metadata record of g as it stands (tombstone if `tombstone`). */
void sm_coord_record_group(sm_arena_t *a, const sm_group_t *g, bool tombstone, sm_coord_kv_t *out);

typedef enum sm_coord_record_kind {
    SM_COORD_REC_OFFSET = 1,
    SM_COORD_REC_GROUP = 2,
} sm_coord_record_kind_t;

/* One decoded record; views point into the record bytes or the arena. */
typedef struct sm_coord_record {
    sm_coord_record_kind_t kind;
    sm_str_t group;
    sm_str_t topic;    /* offsets */
    int32_t partition; /* offsets */
    bool tombstone;
    sm_offset_commit_value_t offset; /* offsets, unless tombstone */
    sm_group_metadata_value_t meta;  /* groups, unless tombstone */
} sm_coord_record_t;

/* Decode one record's key and value. SM_ERR_NOT_FOUND for a key version this
 * coordinator does not keep (skip it), SM_ERR_PARSE / SM_ERR_UNSUPPORTED for
 * bad bytes or an unknown value version. */
SM_MUST_CHECK sm_err_t sm_coord_record_decode(const uint8_t *key, int32_t key_len,
                                              const uint8_t *value, int32_t value_len,
                                              sm_arena_t *a, sm_coord_record_t *out);

#endif
