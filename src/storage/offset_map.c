/*
 * offset_map.c - see offset_map.h. The digest is SipHash-2-4 with its
 * 128-bit output variant (Aumasson and Bernstein), written here from the
 * published description. Runs on one cleaner thread.
 */
#define _GNU_SOURCE
#include "offset_map.h"

#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>

#define ROTL(x, b) (uint64_t)(((x) << (b)) | ((x) >> (64 - (b))))
#define SIPROUND                                                                                   \
    do {                                                                                           \
        v0 += v1;                                                                                  \
        v1 = ROTL(v1, 13);                                                                         \
        v1 ^= v0;                                                                                  \
        v0 = ROTL(v0, 32);                                                                         \
        v2 += v3;                                                                                  \
        v3 = ROTL(v3, 16);                                                                         \
        v3 ^= v2;                                                                                  \
        v0 += v3;                                                                                  \
        v3 = ROTL(v3, 21);                                                                         \
        v3 ^= v0;                                                                                  \
        v2 += v1;                                                                                  \
        v1 = ROTL(v1, 17);                                                                         \
        v1 ^= v2;                                                                                  \
        v2 = ROTL(v2, 32);                                                                         \
    } while (0)

static uint64_t le64(const uint8_t *p)
{
    uint64_t v;
    memcpy(&v, p, 8);
#if __BYTE_ORDER__ == __ORDER_BIG_ENDIAN__
    v = __builtin_bswap64(v);
#endif
    return v;
}

static void siphash128(uint64_t k0, uint64_t k1, const uint8_t *in, size_t len, uint64_t *h0,
                       uint64_t *h1)
{
    uint64_t v0 = 0x736f6d6570736575ULL ^ k0, v1 = 0x646f72616e646f6dULL ^ k1;
    uint64_t v2 = 0x6c7967656e657261ULL ^ k0, v3 = 0x7465646279746573ULL ^ k1;
    v1 ^= 0xee;
    size_t n = len & ~(size_t)7;
    for (size_t i = 0; i < n; i += 8) {
        uint64_t m = le64(in + i);
        v3 ^= m;
        SIPROUND;
        SIPROUND;
        v0 ^= m;
    }
    uint64_t b = (uint64_t)len << 56;
    for (size_t i = 0; i < (len & 7); i++)
        b |= (uint64_t)in[n + i] << (8 * i);
    v3 ^= b;
    SIPROUND;
    SIPROUND;
    v0 ^= b;
    v2 ^= 0xee;
    SIPROUND;
    SIPROUND;
    SIPROUND;
    SIPROUND;
    *h0 = v0 ^ v1 ^ v2 ^ v3;
    v1 ^= 0xdd;
    SIPROUND;
    SIPROUND;
    SIPROUND;
    SIPROUND;
    *h1 = v0 ^ v1 ^ v2 ^ v3;
}

void sm_offset_map_init(sm_offset_map_t *m, size_t bytes)
{
    memset(m, 0, sizeof *m);
    m->nslots = bytes / SM_OFFSET_MAP_SLOT_BYTES;
    if (m->nslots < 16)
        m->nslots = 16;
    m->slots = sm_xmalloc(m->nslots * sizeof *m->slots);
    m->max_used = (size_t)((double)m->nslots * 0.9);
    sm_offset_map_clear(m);
}

void sm_offset_map_free(sm_offset_map_t *m)
{
    free(m->slots);
    m->slots = NULL;
    m->nslots = 0;
}

void sm_offset_map_clear(sm_offset_map_t *m)
{
    memset(m->slots, 0xff, m->nslots * sizeof *m->slots); /* offset -1 = empty */
    m->used = 0;
    m->latest_offset = -1;
    m->probes = 0;
    uint64_t k[2];
    if (getrandom(k, sizeof k, 0) != (ssize_t)sizeof k) { /* no entropy: still a fine hash */
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        k[0] = (uint64_t)ts.tv_nsec * 0x9e3779b97f4a7c15ULL ^ (uint64_t)(uintptr_t)m;
        k[1] = (uint64_t)ts.tv_sec ^ 0xc2b2ae3d27d4eb4fULL;
    }
    m->k0 = k[0];
    m->k1 = k[1];
}

/* The slot holding (h0, h1) or the empty slot where it would go. */
static sm_offset_slot_t *find(const sm_offset_map_t *m, uint64_t h0, uint64_t h1, uint64_t *probes)
{
    size_t i = (size_t)(h0 % m->nslots);
    for (;;) {
        sm_offset_slot_t *s = &m->slots[i];
        (*probes)++;
        if (s->offset < 0 || (s->h0 == h0 && s->h1 == h1))
            return s;
        if (++i == m->nslots)
            i = 0;
    }
}

void sm_offset_map_put(sm_offset_map_t *m, const void *key, size_t len, int64_t offset)
{
    uint64_t h0, h1;
    siphash128(m->k0, m->k1, key, len, &h0, &h1);
    sm_offset_slot_t *s = find(m, h0, h1, &m->probes);
    if (s->offset < 0) {
        SM_ASSERT(m->used < m->nslots - 1);
        s->h0 = h0;
        s->h1 = h1;
        s->offset = offset;
        m->used++;
    } else if (offset > s->offset) {
        s->offset = offset;
    }
    if (offset > m->latest_offset)
        m->latest_offset = offset;
}

int64_t sm_offset_map_get(const sm_offset_map_t *m, const void *key, size_t len)
{
    uint64_t h0, h1, probes = 0;
    siphash128(m->k0, m->k1, key, len, &h0, &h1);
    sm_offset_slot_t *s = find(m, h0, h1, &probes);
    return s->offset;
}
