/*
 * offsets.h - a group's committed offsets: a hash table keyed by
 * (topic, partition) holding what OffsetCommit stored (offset, leader epoch,
 * metadata string, commit and optional explicit expiry timestamps).
 *
 * Pure data structure, no locking: the coordinator's mutex guards it. The
 * table owns copies of every string. Memory is bounded by the number of
 * distinct partitions a group commits (one entry each) and by
 * offset.metadata.max.bytes per entry, checked before sm_offset_table_put.
 */
#ifndef SM_OFFSETS_H
#define SM_OFFSETS_H

#include "sm_common.h"

typedef struct sm_offset_entry sm_offset_entry_t;
struct sm_offset_entry {
    sm_offset_entry_t *next; /* hash chain */
    char *topic;             /* NUL-terminated copy */
    size_t topic_len;
    int32_t partition;
    int64_t offset;
    int32_t leader_epoch; /* -1 if unknown */
    char *metadata;       /* never NULL ("" for none) */
    size_t metadata_len;
    int64_t commit_ms;    /* wall clock */
    int64_t expire_ms;    /* explicit expiry (old OffsetCommit v2-4 retention), -1 if none */
};

typedef struct sm_offset_table {
    sm_offset_entry_t **buckets;
    uint32_t nbuckets; /* power of two, 0 before the first put */
    uint32_t count;
} sm_offset_table_t;

typedef struct sm_offset_value {
    int64_t offset;
    int32_t leader_epoch;
    const char *metadata; /* may be NULL (stored as "") */
    size_t metadata_len;
    int64_t commit_ms;
    int64_t expire_ms;
} sm_offset_value_t;

void sm_offset_table_init(sm_offset_table_t *t);
void sm_offset_table_free(sm_offset_table_t *t);

/* Insert or overwrite (topic, partition). */
void sm_offset_table_put(sm_offset_table_t *t, const char *topic, size_t topic_len,
                         int32_t partition, const sm_offset_value_t *v);
/* Borrowed entry, valid until the next put/del/free; NULL if absent. */
sm_offset_entry_t *sm_offset_table_get(const sm_offset_table_t *t, const char *topic,
                                       size_t topic_len, int32_t partition);
/* Remove; returns true if it was there. */
bool sm_offset_table_del(sm_offset_table_t *t, const char *topic, size_t topic_len,
                         int32_t partition);

/* All entries sorted by (topic, partition), in a malloc'ed array the caller
 * frees; *n receives the count. Entries are borrowed (see _get). */
sm_offset_entry_t **sm_offset_table_sorted(const sm_offset_table_t *t, uint32_t *n);

#endif
