/*
 * crc32c.h - CRC-32C (Castagnoli, reflected polynomial 0x82F63B78), the
 * checksum of Kafka record batches (magic 2).
 *
 * The hardware paths use the SSE4.2 crc32 instruction, and carry-less
 * multiplication (VPCLMULQDQ) for long inputs, when the CPU has them
 * (checked once at run time); otherwise a slicing-by-8 table runs. All give
 * identical results. Pure computation, no I/O: any thread.
 */
#ifndef SM_CRC32C_H
#define SM_CRC32C_H

#include <stddef.h>
#include <stdint.h>

/* Continue a CRC-32C over len bytes. Start with crc = 0; the value returned
 * for one call is the finished checksum, and feeding it back as crc for the
 * next chunk gives the checksum of the concatenation:
 *   sm_crc32c(sm_crc32c(0, a, na), b, nb) == sm_crc32c(0, a||b, na + nb)
 * Test vector: sm_crc32c(0, "123456789", 9) == 0xE3069283. */
uint32_t sm_crc32c(uint32_t crc, const void *data, size_t len);

/* The portable table implementation, exposed so tests can compare the two
 * paths; sm_crc32c() picks the fastest available. */
uint32_t sm_crc32c_sw(uint32_t crc, const void *data, size_t len);

/* True if sm_crc32c() uses the SSE4.2 instruction on this machine. */
int sm_crc32c_hw_available(void);

/* Which path sm_crc32c() takes here: "vpclmulqdq" (carry-less multiply
 * folding on AVX-512, for inputs of 512 bytes and more), "sse4.2" or
 * "table". */
const char *sm_crc32c_path(void);

/* Tests and benchmarks: make sm_crc32c() take the named path ("vpclmulqdq",
 * "sse4.2", "table"; NULL = the fastest again). False if this CPU lacks
 * it. Not for use while other threads checksum. */
int sm_crc32c_use(const char *path);

#endif
