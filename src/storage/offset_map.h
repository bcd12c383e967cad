/*
 * offset_map.h - the log cleaner's dedupe map: record key -> the largest
 * offset seen for it in the dirty part of a log (Kafka's SkimpyOffsetMap).
 *
 * Keys are not stored: each slot holds a 128-bit keyed digest of the key
 * (SipHash-2-4 with 128-bit output, key drawn at random for every map) and
 * an offset, 24 bytes. An accidental collision (two keys, one digest) would
 * drop a live record, so the digest is wide enough that it never happens in
 * practice (about n^2 / 2^129 for n keys), and keyed so that producers cannot
 * craft colliding keys. Open addressing with linear probing; the map is
 * "full" at 90 % of its slots (Kafka's log.cleaner.io.buffer.load.factor),
 * and the cleaner then stops filling it and cleans only up to that point.
 *
 * Sized by log.cleaner.dedupe.buffer.size (divided among the cleaner
 * threads): slots = bytes / 24. Not thread-safe: one cleaner thread owns it.
 */
#ifndef SM_STORAGE_OFFSET_MAP_H
#define SM_STORAGE_OFFSET_MAP_H

#include "sm_common.h"

#define SM_OFFSET_MAP_SLOT_BYTES 24

typedef struct sm_offset_slot {
    uint64_t h0, h1;
    int64_t offset; /* -1: empty */
} sm_offset_slot_t;

typedef struct sm_offset_map {
    sm_offset_slot_t *slots;
    size_t nslots, used, max_used;
    uint64_t k0, k1;      /* digest key */
    int64_t latest_offset; /* largest offset put, -1 if none */
    uint64_t probes;       /* statistics */
} sm_offset_map_t;

/* A map using about bytes of memory (at least 16 slots). */
void sm_offset_map_init(sm_offset_map_t *m, size_t bytes);
void sm_offset_map_free(sm_offset_map_t *m);
/* Forget every entry and draw a new digest key. */
void sm_offset_map_clear(sm_offset_map_t *m);
/* True when no more keys may be added (90 % of the slots used). */
static inline bool sm_offset_map_full(const sm_offset_map_t *m) { return m->used >= m->max_used; }
/* Record offset for key (replacing a smaller one). The caller checks
 * sm_offset_map_full() first; a put into a full map of a new key asserts. */
void sm_offset_map_put(sm_offset_map_t *m, const void *key, size_t len, int64_t offset);
/* The offset recorded for key, or -1. */
int64_t sm_offset_map_get(const sm_offset_map_t *m, const void *key, size_t len);

#endif
