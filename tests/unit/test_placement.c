/* test_placement.c - replica placement (src/meta/placement.c): distinct,
 * unfenced replicas; racks spread; leaders and replicas balanced; the
 * follower pairs vary; too few brokers refused; deterministic for a seed. */
#include "placement.h"
#include "sm_test.h"

#include <string.h>

static sm_place_broker_t B[12];

static int nb(int n, const char *const *racks)
{
    for (int i = 0; i < n; i++)
        B[i] = (sm_place_broker_t){.id = 100 + i, .rack = racks ? racks[i] : NULL};
    return n;
}

static int idx(int32_t id) { return id - 100; }

/* Every partition's replicas are distinct unfenced brokers. */
static bool valid(const int32_t *out, int parts, int rf, int n)
{
    for (int p = 0; p < parts; p++)
        for (int a = 0; a < rf; a++) {
            int32_t id = out[p * rf + a];
            if (idx(id) < 0 || idx(id) >= n || B[idx(id)].fenced)
                return false;
            for (int b = 0; b < a; b++)
                if (out[p * rf + b] == id)
                    return false;
        }
    return true;
}

static void test_single_broker(void)
{
    int n = nb(1, NULL);
    int32_t out[8];
    char err[256];
    CHECK_EQ(sm_place_replicas(B, n, 0, 8, 1, 7, 3, out, err, sizeof err), SM_OK);
    for (int p = 0; p < 8; p++)
        CHECK_EQ(out[p], 100);
    CHECK_EQ(sm_place_replicas(B, n, 0, 1, 2, 0, 0, out, err, sizeof err), SM_ERR_INVALID);
    CHECK(strstr(err, "replication factor of 2") != NULL);
    CHECK_EQ(sm_place_replicas(B, n, 0, 1, 0, 0, 0, out, err, sizeof err), SM_ERR_INVALID);
}

static void test_balance_without_racks(void)
{
    int n = nb(5, NULL);
    enum { P = 100, RF = 3 };
    int32_t out[P * RF];
    char err[256];
    CHECK_EQ(sm_place_replicas(B, n, 0, P, RF, 2, 1, out, err, sizeof err), SM_OK);
    CHECK(valid(out, P, RF, n));
    int leaders[5] = {0}, replicas[5] = {0};
    for (int p = 0; p < P; p++) {
        leaders[idx(out[p * RF])]++;
        for (int r = 0; r < RF; r++)
            replicas[idx(out[p * RF + r])]++;
    }
    for (int i = 0; i < n; i++) {
        CHECK_EQ(leaders[i], P / n); /* 100 partitions over 5 brokers: 20 each */
        CHECK(replicas[i] >= 58 && replicas[i] <= 62);
    }
    /* the follower sets vary: a broker's partitions are followed by all others */
    bool pair[5][5] = {{false}};
    for (int p = 0; p < P; p++)
        for (int r = 1; r < RF; r++)
            pair[idx(out[p * RF])][idx(out[p * RF + r])] = true;
    for (int a = 0; a < n; a++)
        for (int b = 0; b < n; b++)
            if (a != b)
                CHECK(pair[a][b]);
}

static void test_racks_spread(void)
{
    static const char *const racks[] = {"a", "a", "a", "b", "b", "c"};
    int n = nb(6, racks);
    enum { P = 60, RF = 3 };
    int32_t out[P * RF];
    char err[256];
    CHECK_EQ(sm_place_replicas(B, n, 0, P, RF, 5, 9, out, err, sizeof err), SM_OK);
    CHECK(valid(out, P, RF, n));
    int spread = 0;
    for (int p = 0; p < P; p++) {
        const char *r0 = B[idx(out[p * RF])].rack, *r1 = B[idx(out[p * RF + 1])].rack,
                   *r2 = B[idx(out[p * RF + 2])].rack;
        spread += strcmp(r0, r1) && strcmp(r0, r2) && strcmp(r1, r2);
    }
    CHECK_EQ(spread, P); /* 3 racks, rf 3: every partition on all three */
    /* rf above the number of racks: every rack used, then any broker */
    enum { RF4 = 4 };
    int32_t out4[P * RF4];
    CHECK_EQ(sm_place_replicas(B, n, 0, P, RF4, 1, 0, out4, err, sizeof err), SM_OK);
    CHECK(valid(out4, P, RF4, n));
    int all_racks = 0;
    for (int p = 0; p < P; p++) {
        bool seen[3] = {false};
        for (int r = 0; r < RF4; r++)
            seen[B[idx(out4[p * RF4 + r])].rack[0] - 'a'] = true;
        all_racks += seen[0] && seen[1] && seen[2];
    }
    CHECK_EQ(all_racks, P);
}

static void test_fenced_brokers_get_nothing(void)
{
    int n = nb(4, NULL);
    B[1].fenced = true;
    B[3].fenced = true;
    enum { P = 20 };
    int32_t out[P * 2];
    char err[256];
    CHECK_EQ(sm_place_replicas(B, n, 0, P, 2, 0, 0, out, err, sizeof err), SM_OK);
    CHECK(valid(out, P, 2, n));
    CHECK_EQ(sm_place_replicas(B, n, 0, P, 3, 0, 0, out, err, sizeof err), SM_ERR_INVALID);
    B[1].fenced = B[3].fenced = false;
}

static void test_deterministic_and_continues(void)
{
    int n = nb(4, NULL);
    int32_t a[10 * 2], b[10 * 2], tail[4 * 2];
    char err[256];
    CHECK_EQ(sm_place_replicas(B, n, 0, 10, 2, 3, 5, a, err, sizeof err), SM_OK);
    CHECK_EQ(sm_place_replicas(B, n, 0, 10, 2, 3, 5, b, err, sizeof err), SM_OK);
    CHECK(memcmp(a, b, sizeof a) == 0);
    /* growing a topic (CreatePartitions) places partitions 6..9 as a whole run would */
    CHECK_EQ(sm_place_replicas(B, n, 6, 4, 2, 3, 5, tail, err, sizeof err), SM_OK);
    CHECK(memcmp(tail, &a[6 * 2], sizeof tail) == 0);
}

int main(void)
{
    RUN(test_single_broker);
    RUN(test_balance_without_racks);
    RUN(test_racks_spread);
    RUN(test_fenced_brokers_get_nothing);
    RUN(test_deterministic_and_continues);
    TEST_MAIN_END();
}
