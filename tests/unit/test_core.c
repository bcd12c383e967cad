/* test_core.c - buffers, varints and arena. */
#include "arena.h"
#include "buf.h"
#include "sm_test.h"

static void test_varints(void)
{
    int64_t vals[] = {0, 1, -1, 63, -64, 64, 300, -300, 2147483647LL, -2147483648LL,
                      INT64_MAX, INT64_MIN};
    sm_wbuf_t w;
    sm_wbuf_init(&w);
    for (size_t i = 0; i < SM_ARRAY_LEN(vals); i++)
        sm_wbuf_varlong(&w, vals[i]);
    sm_wbuf_varint(&w, -5);
    sm_wbuf_uvarint(&w, 0xffffffffu);
    sm_rd_t r;
    sm_rd_init(&r, w.mem, w.len);
    for (size_t i = 0; i < SM_ARRAY_LEN(vals); i++)
        CHECK_EQ(sm_rd_varlong(&r), vals[i]);
    CHECK_EQ(sm_rd_varint(&r), -5);
    CHECK_EQ(sm_rd_uvarint(&r), 0xffffffffu);
    CHECK_EQ(r.err, 0);
    CHECK_EQ(sm_rd_remaining(&r), 0);
    sm_rd_u8(&r);
    CHECK(r.err != 0);
    /* over-long varint is an error */
    uint8_t bad[6] = {0xff, 0xff, 0xff, 0xff, 0xff, 0x01};
    sm_rd_init(&r, bad, sizeof bad);
    sm_rd_uvarint(&r);
    CHECK(r.err != 0);
    sm_wbuf_free(&w);
}

static void test_fixed(void)
{
    sm_wbuf_t w;
    sm_wbuf_init(&w);
    size_t at = sm_wbuf_reserve(&w, 4);
    sm_wbuf_i16(&w, -2);
    sm_wbuf_i64(&w, 0x0102030405060708LL);
    sm_wbuf_patch_i32(&w, at, 12345);
    sm_wbuf_splice(&w, 7, 100, 50, NULL);
    sm_wbuf_u8(&w, 9);
    CHECK_EQ(sm_wbuf_total(&w), 4 + 2 + 8 + 50 + 1);
    CHECK_EQ(w.nsplices, 1);
    CHECK_EQ(w.splices[0].at, 14);
    sm_rd_t r;
    sm_rd_init(&r, w.mem, w.len);
    CHECK_EQ(sm_rd_i32(&r), 12345);
    CHECK_EQ(sm_rd_i16(&r), -2);
    CHECK_EQ(sm_rd_i64(&r), 0x0102030405060708LL);
    sm_wbuf_free(&w);
}

static void test_arena(void)
{
    sm_arena_t a;
    sm_arena_init(&a);
    char *s = sm_arena_sprintf(&a, "%s-%d", "topic", 3);
    CHECK(strcmp(s, "topic-3") == 0);
    void *big = sm_arena_alloc(&a, 1 << 20);
    CHECK(big != NULL);
    sm_arena_reset(&a);
    int *x = SM_ARENA_NEW(&a, int, 10);
    CHECK_EQ(x[9], 0);
    sm_arena_free(&a);
}

/* Every boundary of the inline one/two-byte paths against the slow path. */
static void test_varint_fast_paths(void)
{
    uint32_t vals[] = {0, 1, 127, 128, 255, 300, 16383, 16384, 2097151, 2097152, 0x7fffffff,
                       0xffffffffu};
    for (size_t i = 0; i < SM_ARRAY_LEN(vals); i++) {
        sm_wbuf_t w;
        sm_wbuf_init(&w);
        sm_wbuf_uvarint(&w, vals[i]);
        for (size_t cut = 0; cut <= w.len; cut++) {
            sm_rd_t r;
            sm_rd_init(&r, w.mem, cut);
            uint32_t v = sm_rd_uvarint(&r);
            if (cut == w.len) {
                CHECK_EQ(v, vals[i]);
                CHECK_EQ(r.err, 0);
                CHECK_EQ(sm_rd_remaining(&r), 0);
            } else {
                CHECK(r.err != 0); /* truncated at every shorter length */
            }
        }
        sm_wbuf_free(&w);
    }
    /* A value followed by more bytes: the fast path must not read past it. */
    uint8_t two[3] = {0x05, 0xac, 0x02};
    sm_rd_t r;
    sm_rd_init(&r, two, sizeof two);
    CHECK_EQ(sm_rd_uvarint(&r), 5);
    CHECK_EQ(sm_rd_uvarint(&r), 300);
    CHECK_EQ(r.err, 0);
}

static void test_edit_distance(void)
{
    CHECK_EQ(sm_edit_distance("num.partitions", "num.partitions", 3), 0);
    CHECK_EQ(sm_edit_distance("num.partition", "num.partitions", 3), 1);
    CHECK_EQ(sm_edit_distance("log.retention.hour", "log.retention.hours", 3), 1);
    CHECK_EQ(sm_edit_distance("kitten", "sitting", 3), 3);
    CHECK_EQ(sm_edit_distance("", "abc", 3), 3);
    /* beyond the limit: limit + 1, whatever the true distance */
    CHECK_EQ(sm_edit_distance("kitten", "sitting", 2), 3);
    CHECK_EQ(sm_edit_distance("a", "abcdefgh", 2), 3);
    char long_key[200];
    memset(long_key, 'x', sizeof long_key - 1);
    long_key[sizeof long_key - 1] = 0;
    CHECK_EQ(sm_edit_distance(long_key, long_key, 2), 3);
}

int main(void)
{
    RUN(test_edit_distance);
    RUN(test_varint_fast_paths);
    RUN(test_varints);
    RUN(test_fixed);
    RUN(test_arena);
    TEST_MAIN_END();
}
