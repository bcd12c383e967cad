/* test_crc32c.c - CRC-32C known vectors, hardware vs table path, chaining. */
#include "crc32c.h"
#include "sm_test.h"

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
    fprintf(stderr, "hardware crc32c: %s\n", sm_crc32c_hw_available() ? "yes" : "no");
}

/* Inputs long enough for the three-chain rounds (3 KiB each): every length
 * around the round boundaries, odd alignments, a running CRC carried in,
 * and 1 MiB, against the table path. */
static void test_long_inputs(void)
{
    size_t n = (1 << 20) + 64;
    uint8_t *data = malloc(n);
    uint32_t x = 777;
    for (size_t i = 0; i < n; i++) {
        x = x * 1103515245u + 12345u;
        data[i] = (uint8_t)(x >> 16);
    }
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

int main(void)
{
    RUN(test_vectors);
    RUN(test_paths_agree);
    RUN(test_long_inputs);
    TEST_MAIN_END();
}
