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
    TEST_MAIN_END();
}
