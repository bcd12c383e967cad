/* test_crc32c.c - CRC-32C known vectors, hardware vs table path, chaining. */
#include "crc32c.h"
#include "sm_test.h"

/* n pseudo-random bytes (a fixed sequence per seed); the caller frees. */
static uint8_t *random_bytes(size_t n, uint32_t seed)
{
    uint8_t *data = malloc(n);
    for (size_t i = 0; i < n; i++) {
        seed = seed * 1103515245u + 12345u;
        data[i] = (uint8_t)(seed >> 16);
    }
    return data;
}

static void test_vectors(void)
{
    CHECK_EQ(sm_crc32c(0, "123456789", 9), 0xE3069283u);
    CHECK_EQ(sm_crc32c_sw(0, "123456789", 9), 0xE3069283u);
    CHECK_EQ(sm_crc32c(0, "", 0), 0);
    uint8_t buf[32];
    memset(buf, 0, sizeof buf); /* RFC 3720 B.4 test patterns */
    CHECK_EQ(sm_crc32c(0, buf, 32), 0x8A9136AAu);
    memset(buf, 0xff, sizeof buf);
    CHECK_EQ(sm_crc32c(0, buf, 32), 0x62A8AB43u);
    for (int i = 0; i < 32; i++)
        buf[i] = (uint8_t)i;
    CHECK_EQ(sm_crc32c(0, buf, 32), 0x46DD794Eu);
    CHECK_EQ(sm_crc32c_sw(0, buf, 32), 0x46DD794Eu);
    for (int i = 0; i < 32; i++)
        buf[i] = (uint8_t)(31 - i);
    CHECK_EQ(sm_crc32c(0, buf, 32), 0x113FDB5Cu);
    fprintf(stderr, "crc32c path: %s\n", sm_crc32c_path());
}

/* Inputs long enough for the three-chain rounds (3 KiB each): every length
 * around the round boundaries, odd alignments, a running CRC carried in,
 * and 1 MiB, against the table path. */
static void test_long_inputs(void)
{
    size_t n = (1 << 20) + 64;
    uint8_t *data = random_bytes(n, 777);
    int bad = 0;
    const size_t round = 3 * 1024;
    for (size_t k = 1; k <= 3; k++)
        for (size_t len = k * round - 20; len < k * round + 20; len++)
            for (size_t off = 0; off < 9; off += 4)
                if (sm_crc32c(0x1234567u, data + off, len) != sm_crc32c_sw(0x1234567u, data + off, len))
                    bad++;
    CHECK_EQ(bad, 0);
    CHECK_EQ(sm_crc32c(0, data + 3, (1 << 20)), sm_crc32c_sw(0, data + 3, (1 << 20)));
    CHECK_EQ(sm_crc32c(0, data, n), sm_crc32c_sw(0, data, n));
    /* chaining across a round boundary */
    CHECK_EQ(sm_crc32c(sm_crc32c(0, data, 5000), data + 5000, 20000),
             sm_crc32c_sw(0, data, 25000));
    uint32_t before = sm_crc32c(0, data, 100000);
    data[50000] ^= 1;
    CHECK(sm_crc32c(0, data, 100000) != before);
    free(data);
}

static void test_paths_agree(void)
{
    static uint8_t data[4096 + 16];
    uint32_t x = 12345;
    for (size_t i = 0; i < sizeof data; i++) {
        x = x * 1103515245u + 12345u;
        data[i] = (uint8_t)(x >> 16);
    }
    int bad = 0;
    /* every alignment and many lengths, so head/body/tail loops all run */
    for (size_t off = 0; off < 16; off++)
        for (size_t len = 0; len < 300; len += 7)
            if (sm_crc32c(0, data + off, len) != sm_crc32c_sw(0, data + off, len))
                bad++;
    CHECK_EQ(bad, 0);
    CHECK_EQ(sm_crc32c(0, data, 4096), sm_crc32c_sw(0, data, 4096));
    /* chaining equals one pass, both paths */
    for (size_t cut = 0; cut <= 100; cut += 9) {
        CHECK_EQ(sm_crc32c(sm_crc32c(0, data, cut), data + cut, 1000 - cut),
                 sm_crc32c(0, data, 1000));
        CHECK_EQ(sm_crc32c_sw(sm_crc32c_sw(0, data, cut), data + cut, 1000 - cut),
                 sm_crc32c(0, data, 1000));
    }
    /* a single flipped bit changes the checksum */
    uint32_t before = sm_crc32c(0, data, 512);
    data[100] ^= 0x10;
    CHECK(sm_crc32c(0, data, 512) != before);
}

/* The folding path (inputs of 512 bytes and more where the CPU has
 * VPCLMULQDQ): every length from just below its threshold through several
 * 256-byte rounds, each 64-byte step of the one-register loop and each
 * tail, at odd offsets and with a running CRC, against the table path. */
static void test_folding_lengths(void)
{
    size_t n = 8192 + 256; /* the longest case: 256 * 32 + 70 bytes at offset 3 */
    uint8_t *data = random_bytes(n, 4242);
    int bad = 0;
    static const uint32_t seeds[] = {0, 0xDEADBEEFu, 0xFFFFFFFFu};
    for (size_t len = 480; len <= 1600; len++)
        for (size_t off = 0; off < 16; off += 5)
            for (size_t s = 0; s < 3; s++)
                if (sm_crc32c(seeds[s], data + off, len) != sm_crc32c_sw(seeds[s], data + off, len))
                    bad++;
    for (size_t k = 2; k <= 32; k++)
        for (size_t len = 256 * k - 70; len <= 256 * k + 70; len += 3)
            if (sm_crc32c(7, data + 3, len) != sm_crc32c_sw(7, data + 3, len))
                bad++;
    CHECK_EQ(bad, 0);
    /* all-zero and all-ones inputs: the start state alone decides */
    memset(data, 0, n);
    CHECK_EQ(sm_crc32c(0, data, 4096), sm_crc32c_sw(0, data, 4096));
    CHECK_EQ(sm_crc32c(0x55555555u, data, 4096), sm_crc32c_sw(0x55555555u, data, 4096));
    memset(data, 0xff, n);
    CHECK_EQ(sm_crc32c(0, data, 4099), sm_crc32c_sw(0, data, 4099));
    /* one flipped bit in each lane of a round changes the result */
    uint32_t clean = sm_crc32c(0, data, 1024);
    for (size_t b = 0; b < 1024; b += 16) {
        data[b] ^= 0x80;
        if (sm_crc32c(0, data, 1024) == clean)
            bad++;
        data[b] ^= 0x80;
    }
    CHECK_EQ(bad, 0);
    free(data);
}

int main(void)
{
    /* Every path this CPU has. */
    static const char *paths[] = {"table", "sse4.2", "vpclmulqdq"};
    for (int i = 0; i < 3; i++) {
        if (!sm_crc32c_use(paths[i])) {
            fprintf(stderr, "crc32c path %s: not on this CPU\n", paths[i]);
            continue;
        }
        RUN(test_vectors);
        RUN(test_paths_agree);
        RUN(test_long_inputs);
        RUN(test_folding_lengths);
    }
    sm_crc32c_use(NULL);
    TEST_MAIN_END();
}
