/*
 * crc32c.c - CRC-32C with a carry-less multiply path (AVX-512 VPCLMULQDQ)
 * for long inputs, an SSE4.2 path and a slicing-by-8 fallback.
 *
 * Slicing-by-8: table[k][b] is the CRC contribution of byte b followed by k
 * zero bytes, so eight input bytes fold into the running CRC with eight
 * lookups and no dependency chain between them. The tables (8 KB) are built
 * once on first use under pthread_once.
 *
 * The hardware path feeds 8 bytes per crc32 instruction after aligning the
 * pointer; it is selected once, on first call, with __builtin_cpu_supports.
 * One crc32 instruction has a latency of three cycles but the CPU can start
 * one every cycle, so a single chain runs at a third of the possible speed.
 * Inputs of at least three blocks are therefore cut into rounds of three
 * consecutive blocks of CRC_BLOCK bytes, checksummed as three independent
 * chains (the first continuing the running CRC, the other two from zero)
 * and joined: the CRC register is linear, so the state after A B C is
 * Z2(a) ^ Z1(b) ^ c, where a, b, c are the three chains' states and Zk
 * means "then feed k blocks of zero bytes". Z1 and Z2 are fixed linear maps
 * on 32 bits, applied with four 256-entry tables each (built once from the
 * maps' effect on the 32 unit vectors). On 1 MB batches this is about three
 * times the single chain's speed (docs/PERFORMANCE.md).
 * Any thread.
 */
#include "crc32c.h"

#include <pthread.h>
#include <string.h>

#if defined(__x86_64__) || defined(__i386__)
#include <nmmintrin.h>
#define SM_CRC_HAVE_X86 1
#else
#define SM_CRC_HAVE_X86 0
#endif

#define SM_CRC32C_POLY 0x82F63B78u /* reflected Castagnoli polynomial */

static uint32_t crc_table[8][256];
static pthread_once_t crc_table_once = PTHREAD_ONCE_INIT;

static void crc_table_build(void)
{
    for (uint32_t b = 0; b < 256; b++) {
        uint32_t c = b;
        for (int k = 0; k < 8; k++)
            c = (c >> 1) ^ (SM_CRC32C_POLY & (0u - (c & 1)));
        crc_table[0][b] = c;
    }
    for (uint32_t b = 0; b < 256; b++) {
        uint32_t c = crc_table[0][b];
        for (int k = 1; k < 8; k++) {
            c = crc_table[0][c & 0xff] ^ (c >> 8);
            crc_table[k][b] = c;
        }
    }
}

uint32_t sm_crc32c_sw(uint32_t crc, const void *data, size_t len)
{
    pthread_once(&crc_table_once, crc_table_build);
    const uint8_t *p = data;
    uint32_t c = ~crc;
    while (len && ((uintptr_t)p & 7)) {
        c = crc_table[0][(c ^ *p++) & 0xff] ^ (c >> 8);
        len--;
    }
    while (len >= 8) {
        /* Little-endian assembly of the 8 bytes keeps this byte-order free. */
        uint32_t lo = c ^ ((uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 |
                           (uint32_t)p[3] << 24);
        c = crc_table[7][lo & 0xff] ^ crc_table[6][(lo >> 8) & 0xff] ^
            crc_table[5][(lo >> 16) & 0xff] ^ crc_table[4][lo >> 24] ^ crc_table[3][p[4]] ^
            crc_table[2][p[5]] ^ crc_table[1][p[6]] ^ crc_table[0][p[7]];
        p += 8;
        len -= 8;
    }
    while (len--)
        c = crc_table[0][(c ^ *p++) & 0xff] ^ (c >> 8);
    return ~c;
}

#if SM_CRC_HAVE_X86
#if defined(__x86_64__)
#define CRC_BLOCK 1024 /* bytes per chain per round; a multiple of 8 */

/* zero_tab[k][j][b]: the state reached from (b << 8j) after feeding
 * (k + 1) * CRC_BLOCK zero bytes. */
static uint32_t zero_tab[2][4][256];
static pthread_once_t zero_tab_once = PTHREAD_ONCE_INIT;

__attribute__((target("sse4.2"))) static uint32_t feed_zeros(uint32_t c, size_t n)
{
    uint64_t c64 = c;
    for (size_t i = 0; i < n; i += 8)
        c64 = _mm_crc32_u64(c64, 0);
    return (uint32_t)c64;
}

static void zero_tab_build(void)
{
    for (int k = 0; k < 2; k++) {
        uint32_t unit[32]; /* the map's image of each unit vector */
        for (int bit = 0; bit < 32; bit++)
            unit[bit] = feed_zeros(1u << bit, (size_t)(k + 1) * CRC_BLOCK);
        for (int j = 0; j < 4; j++)
            for (uint32_t b = 0; b < 256; b++) {
                uint32_t v = 0;
                for (int bit = 0; bit < 8; bit++)
                    if (b & (1u << bit))
                        v ^= unit[8 * j + bit];
                zero_tab[k][j][b] = v;
            }
    }
}

static inline uint32_t zeros_apply(const uint32_t t[4][256], uint32_t x)
{
    return t[0][x & 0xff] ^ t[1][(x >> 8) & 0xff] ^ t[2][(x >> 16) & 0xff] ^ t[3][x >> 24];
}
#endif

__attribute__((target("sse4.2"))) static uint32_t crc32c_hw(uint32_t crc, const void *data,
                                                              size_t len)
{
    const uint8_t *p = data;
    uint32_t c = ~crc;
    while (len && ((uintptr_t)p & 7)) {
        c = _mm_crc32_u8(c, *p++);
        len--;
    }
#if defined(__x86_64__)
    if (len >= 3 * CRC_BLOCK)
        pthread_once(&zero_tab_once, zero_tab_build);
    while (len >= 3 * CRC_BLOCK) {
        uint64_t a = c, b = 0, d = 0;
        for (size_t i = 0; i < CRC_BLOCK; i += 8) {
            uint64_t va, vb, vd;
            memcpy(&va, p + i, 8);
            memcpy(&vb, p + CRC_BLOCK + i, 8);
            memcpy(&vd, p + 2 * CRC_BLOCK + i, 8);
            a = _mm_crc32_u64(a, va);
            b = _mm_crc32_u64(b, vb);
            d = _mm_crc32_u64(d, vd);
        }
        c = zeros_apply(zero_tab[1], (uint32_t)a) ^ zeros_apply(zero_tab[0], (uint32_t)b) ^
            (uint32_t)d;
        p += 3 * CRC_BLOCK;
        len -= 3 * CRC_BLOCK;
    }
    uint64_t c64 = c;
    while (len >= 8) {
        uint64_t v;
        memcpy(&v, p, 8);
        c64 = _mm_crc32_u64(c64, v);
        p += 8;
        len -= 8;
    }
    c = (uint32_t)c64;
#endif
    while (len >= 4) {
        uint32_t v;
        memcpy(&v, p, 4);
        c = _mm_crc32_u32(c, v);
        p += 4;
        len -= 4;
    }
    while (len--)
        c = _mm_crc32_u8(c, *p++);
    return ~c;
}
#endif

#if SM_CRC_HAVE_X86 && defined(__x86_64__)
/*
 * Carry-less multiply folding (VPCLMULQDQ on 512-bit registers), for CPUs
 * with AVX-512: the message is cut into 128-bit lanes, and a lane's
 * polynomial A (its first byte's low bit the highest power) is moved D bits
 * forward by multiplying it with x^D modulo P, in two 64x32-bit products
 * that stay below 128 bits, then added (xor) to the lane D bits later. The
 * CRC register's start state is xored into the first 32 bits, which is the
 * same as starting from it. When one lane is left, the crc32 instruction
 * finishes it from state zero and then the tail.
 *
 * Bit order: a lane loaded little-endian holds x^(127-k) at bit k. Its low
 * half Q0 carries x^64..x^127, its high half Q1 x^0..x^63, so A = Q0 x^64 +
 * Q1 and A x^D = Q0 x^(64+D) + Q1 x^D. A 64-bit operand with x^e at bit
 * 63-e multiplied by another such operand gives x^(126-m) at bit m, one
 * power short of the lane order, so each constant is x^(n-1) mod P instead
 * of x^n mod P: for distance D, the low constant is x^(63+D) mod P and the
 * high one x^(D-1) mod P. They are computed here, at first use, from the
 * polynomial itself.
 *
 * Four registers of four lanes each take 256 bytes a round (D = 2048), so
 * the multiplier's latency is hidden; they are then folded into one
 * (D = 512), 64 bytes at a time while that much is left, and its four lanes
 * into the last (D = 384, 256, 128). On 1 MB inputs this is about twice the
 * three-chain crc32 path on this project's machines (docs/PERFORMANCE.md).
 */
#include <immintrin.h>

#define VX_MIN 512 /* shorter inputs take the crc32 path */

static uint64_t vx_k[5][2]; /* D = 2048, 512, 384, 256, 128: {low, high} */
static pthread_once_t vx_once = PTHREAD_ONCE_INIT;

/* x^n mod P, P = x^32 + 0x1EDC6F41 (Castagnoli), bit e = x^e. */
static uint32_t xpow_mod(unsigned n)
{
    uint32_t r = 1;
    while (n--)
        r = (r << 1) ^ ((r & 0x80000000u) ? 0x1EDC6F41u : 0);
    return r;
}

/* x^e at bit 63 - e. */
static uint64_t vx_operand(uint32_t k)
{
    uint64_t r = 0;
    for (int e = 0; e < 32; e++)
        if (k & (1u << e))
            r |= 1ull << (63 - e);
    return r;
}

static void vx_build(void)
{
    static const unsigned dist[5] = {2048, 512, 384, 256, 128};
    for (int i = 0; i < 5; i++) {
        vx_k[i][0] = vx_operand(xpow_mod(63 + dist[i]));
        vx_k[i][1] = vx_operand(xpow_mod(dist[i] - 1));
    }
}

#define VX_TARGET __attribute__((target("sse4.2,pclmul,avx512f,vpclmulqdq")))

VX_TARGET static inline __m512i vx_fold(__m512i a, __m512i k, __m512i next)
{
    return _mm512_ternarylogic_epi64(_mm512_clmulepi64_epi128(a, k, 0x00),
                                     _mm512_clmulepi64_epi128(a, k, 0x11), next, 0x96);
}

VX_TARGET static inline __m128i vx_fold128(__m128i a, int ki)
{
    __m128i k = _mm_set_epi64x((long long)vx_k[ki][1], (long long)vx_k[ki][0]);
    return _mm_xor_si128(_mm_clmulepi64_si128(a, k, 0x00), _mm_clmulepi64_si128(a, k, 0x11));
}

VX_TARGET static uint32_t crc32c_vx(uint32_t crc, const void *data, size_t len)
{
    if (len < VX_MIN)
        return crc32c_hw(crc, data, len);
    pthread_once(&vx_once, vx_build);
    const uint8_t *p = data;
    __m512i k2048 = _mm512_broadcast_i32x4(
        _mm_set_epi64x((long long)vx_k[0][1], (long long)vx_k[0][0]));
    __m512i k512 = _mm512_broadcast_i32x4(
        _mm_set_epi64x((long long)vx_k[1][1], (long long)vx_k[1][0]));
    __m512i x0 = _mm512_loadu_si512(p), x1 = _mm512_loadu_si512(p + 64);
    __m512i x2 = _mm512_loadu_si512(p + 128), x3 = _mm512_loadu_si512(p + 192);
    x0 = _mm512_xor_si512(x0, _mm512_zextsi128_si512(_mm_cvtsi32_si128((int)~crc)));
    p += 256;
    len -= 256;
    while (len >= 256) {
        x0 = vx_fold(x0, k2048, _mm512_loadu_si512(p));
        x1 = vx_fold(x1, k2048, _mm512_loadu_si512(p + 64));
        x2 = vx_fold(x2, k2048, _mm512_loadu_si512(p + 128));
        x3 = vx_fold(x3, k2048, _mm512_loadu_si512(p + 192));
        p += 256;
        len -= 256;
    }
    x1 = vx_fold(x0, k512, x1);
    x2 = vx_fold(x1, k512, x2);
    x3 = vx_fold(x2, k512, x3);
    while (len >= 64) {
        x3 = vx_fold(x3, k512, _mm512_loadu_si512(p));
        p += 64;
        len -= 64;
    }
    __m128i a = _mm512_extracti32x4_epi32(x3, 3);
    a = _mm_xor_si128(a, vx_fold128(_mm512_extracti32x4_epi32(x3, 0), 2));
    a = _mm_xor_si128(a, vx_fold128(_mm512_extracti32x4_epi32(x3, 1), 3));
    a = _mm_xor_si128(a, vx_fold128(_mm512_extracti32x4_epi32(x3, 2), 4));
    uint64_t c = _mm_crc32_u64(0, (uint64_t)_mm_cvtsi128_si64(a));
    c = _mm_crc32_u64(c, (uint64_t)_mm_extract_epi64(a, 1));
    return crc32c_hw(~(uint32_t)c, p, len);
}
#endif

typedef uint32_t (*crc_fn_t)(uint32_t, const void *, size_t);
static crc_fn_t crc_impl; /* resolved on first call; benign race (same value) */

static crc_fn_t crc_resolve(void)
{
#if SM_CRC_HAVE_X86
    __builtin_cpu_init();
#if defined(__x86_64__)
    if (__builtin_cpu_supports("sse4.2") && __builtin_cpu_supports("pclmul") &&
        __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("vpclmulqdq"))
        return crc32c_vx;
#endif
    if (__builtin_cpu_supports("sse4.2"))
        return crc32c_hw;
#endif
    return sm_crc32c_sw;
}

int sm_crc32c_hw_available(void)
{
    return crc_resolve() != sm_crc32c_sw;
}

static crc_fn_t crc_current(void)
{
    crc_fn_t f = __atomic_load_n(&crc_impl, __ATOMIC_RELAXED);
    return f ? f : crc_resolve();
}

int sm_crc32c_use(const char *path)
{
    crc_fn_t best = crc_resolve(), f = NULL;
    if (!path)
        f = best;
    else if (strcmp(path, "table") == 0)
        f = sm_crc32c_sw;
#if SM_CRC_HAVE_X86
    else if (strcmp(path, "sse4.2") == 0 && best != sm_crc32c_sw)
        f = crc32c_hw;
#if defined(__x86_64__)
    else if (strcmp(path, "vpclmulqdq") == 0 && best == crc32c_vx)
        f = crc32c_vx;
#endif
#endif
    if (!f)
        return 0;
    __atomic_store_n(&crc_impl, f, __ATOMIC_RELAXED);
    return 1;
}

const char *sm_crc32c_path(void)
{
    crc_fn_t f = crc_current();
#if SM_CRC_HAVE_X86 && defined(__x86_64__)
    if (f == crc32c_vx)
        return "vpclmulqdq";
#endif
    return f == sm_crc32c_sw ? "table" : "sse4.2";
}

uint32_t sm_crc32c(uint32_t crc, const void *data, size_t len)
{
    crc_fn_t f = __atomic_load_n(&crc_impl, __ATOMIC_RELAXED);
    if (__builtin_expect(!f, 0)) {
        f = crc_resolve();
        __atomic_store_n(&crc_impl, f, __ATOMIC_RELAXED);
    }
    return f(crc, data, len);
}
