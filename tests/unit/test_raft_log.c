/* test_raft_log.c - the metadata log as Raft's log (src/meta/raft_log.c) over
 * a real storage partition log: leader appends (data and LeaderChange control
 * batches), reads, a follower appending the leader's bytes verbatim, bad
 * bytes refused whole, truncation, the leader-epoch cache, durability across
 * a reopen; and a single-voter quorum electing itself and committing
 * proposals on it. */
#include "batch.h"
#include "buf.h"
#include "raft.h"
#include "raft_log.h"
#include "sm_test.h"

#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static char g_dir[256];

static void dir_for(char *out, size_t n, const char *name)
{
    snprintf(out, n, "%s/%s", g_dir, name);
}

/* One batch of n records ("r0".."rN") as a proposal carries it. */
static void make_batch(sm_wbuf_t *w, int n)
{
    sm_record_in_t recs[8];
    char vals[8][8];
    for (int i = 0; i < n; i++) {
        snprintf(vals[i], sizeof vals[i], "r%d", i);
        recs[i] = (sm_record_in_t){.key = NULL, .key_len = -1, .value = vals[i],
                                   .value_len = (int32_t)strlen(vals[i]), .timestamp = 1};
    }
    sm_batch_params_t bp = {.base_offset = 0, .leader_epoch = -1, .attributes = 0,
                            .producer_id = -1, .producer_epoch = -1, .base_sequence = -1};
    sm_batch_encode(w, &bp, recs, n);
}

static sm_err_t append_data(sm_raft_storage_log_t *l, int32_t epoch, int n, int64_t *base)
{
    sm_wbuf_t w;
    sm_wbuf_init(&w);
    make_batch(&w, n);
    sm_raft_append_t a = {.epoch = epoch, .count = n, .data = w.mem, .len = w.len,
                          .control_type = SM_RAFT_CONTROL_NONE};
    sm_err_t rc = sm_raft_storage_log_ops.append(l, &a, base);
    sm_wbuf_free(&w);
    return rc;
}

static void test_leader_and_follower(void)
{
    const sm_raft_log_ops_t *ops = &sm_raft_storage_log_ops;
    int32_t voters[] = {1, 2, 3};
    char d1[300], d2[300];
    dir_for(d1, sizeof d1, "leader");
    dir_for(d2, sizeof d2, "follower");
    sm_raft_storage_log_t *ld, *fl;
    CHECK_EQ(sm_raft_storage_log_open(d1, 0, voters, 3, &ld), SM_OK);
    CHECK_EQ(sm_raft_storage_log_open(d2, 0, voters, 3, &fl), SM_OK);
    CHECK_EQ(ops->end_offset(ld), 0);
    CHECK_EQ(ops->last_epoch(ld), 0);

    /* epoch 1: a leader change, then 3 records; epoch 2: leader change, 2 records */
    int64_t base;
    sm_raft_append_t lc = {.epoch = 1, .count = 1, .control_type = SM_RAFT_CONTROL_LEADER_CHANGE,
                           .leader_id = 1};
    CHECK_EQ(ops->append(ld, &lc, &base), SM_OK);
    CHECK_EQ(base, 0);
    CHECK_EQ(append_data(ld, 1, 3, &base), SM_OK);
    CHECK_EQ(base, 1);
    lc.epoch = 2;
    CHECK_EQ(ops->append(ld, &lc, &base), SM_OK);
    CHECK_EQ(base, 4);
    CHECK_EQ(append_data(ld, 2, 2, &base), SM_OK);
    CHECK_EQ(ops->end_offset(ld), 7);
    CHECK_EQ(ops->last_epoch(ld), 2);
    /* an older epoch, a count that does not match the batch: refused */
    CHECK_EQ(append_data(ld, 1, 1, &base), SM_ERR_INVALID);
    sm_wbuf_t w;
    sm_wbuf_init(&w);
    make_batch(&w, 2);
    sm_raft_append_t bad = {.epoch = 2, .count = 5, .data = w.mem, .len = w.len,
                            .control_type = SM_RAFT_CONTROL_NONE};
    CHECK_EQ(ops->append(ld, &bad, &base), SM_ERR_INVALID);
    sm_wbuf_free(&w);
    CHECK_EQ(ops->end_offset(ld), 7);

    /* the leader-epoch cache */
    sm_raft_offset_epoch_t e = ops->end_offset_for_epoch(ld, 1);
    CHECK(e.epoch == 1 && e.end_offset == 4);
    e = ops->end_offset_for_epoch(ld, 2);
    CHECK(e.epoch == 2 && e.end_offset == 7);
    e = ops->end_offset_for_epoch(ld, 0);
    CHECK(e.epoch == 0 && e.end_offset == 0);

    /* the follower takes the leader's bytes as they are */
    const uint8_t *bytes;
    size_t len;
    CHECK_EQ(ops->read(ld, 0, 1 << 20, &bytes, &len), SM_OK);
    CHECK(len > 0);
    uint8_t *copy = malloc(len);
    memcpy(copy, bytes, len);
    /* bad bytes append nothing: a flipped byte inside the last batch */
    copy[len - 1] ^= 0x55;
    CHECK_EQ(ops->append_fetched(fl, copy, len), SM_ERR_CORRUPT);
    CHECK_EQ(ops->end_offset(fl), 0);
    copy[len - 1] ^= 0x55;
    /* a batch that does not start at the follower's end: refused */
    sm_batch_info_t first;
    CHECK_EQ(sm_batch_header_parse(copy, len, &first), SM_OK);
    size_t first_len = (size_t)sm_batch_total_size(&first);
    CHECK_EQ(ops->append_fetched(fl, copy + first_len, len - first_len), SM_ERR_RANGE);
    CHECK_EQ(ops->append_fetched(fl, copy, len), SM_OK);
    CHECK_EQ(ops->end_offset(fl), 7);
    CHECK_EQ(ops->last_epoch(fl), 2);
    e = ops->end_offset_for_epoch(fl, 1);
    CHECK(e.epoch == 1 && e.end_offset == 4);
    const uint8_t *fb;
    size_t flen;
    CHECK_EQ(ops->read(fl, 0, 1 << 20, &fb, &flen), SM_OK);
    CHECK(flen == len && memcmp(fb, copy, len) == 0); /* byte for byte */
    free(copy);

    /* truncation (a diverging follower) drops whole batches from the offset */
    CHECK_EQ(ops->truncate(fl, 4), SM_OK);
    CHECK_EQ(ops->end_offset(fl), 4);
    CHECK_EQ(ops->last_epoch(fl), 1);
    CHECK_EQ(ops->read(fl, 4, 1 << 20, &fb, &flen), SM_OK);
    CHECK_EQ(flen, 0);

    /* durability: flushed, closed, reopened */
    CHECK_EQ(ops->flush(ld), SM_OK);
    CHECK_EQ(ops->flushed_offset(ld), 7);
    sm_raft_storage_log_close(ld);
    CHECK_EQ(sm_raft_storage_log_open(d1, 0, voters, 3, &ld), SM_OK);
    CHECK_EQ(ops->end_offset(ld), 7);
    CHECK_EQ(ops->last_epoch(ld), 2);
    e = ops->end_offset_for_epoch(ld, 1);
    CHECK(e.epoch == 1 && e.end_offset == 4);
    sm_raft_storage_log_close(ld);
    sm_raft_storage_log_close(fl);
}

/* ------------------------------------------------------------ raft on it */

static uint64_t rnd(void *ctx)
{
    uint64_t *s = ctx;
    *s = *s * 6364136223846793005ull + 1442695040888963407ull;
    return *s >> 11;
}

static int64_t g_committed;
static void on_committed(void *ctx, int64_t old_hw, int64_t new_hw)
{
    (void)ctx;
    (void)old_hw;
    g_committed = new_hw;
}

/* The host's duty after every call: the save, then the outbox. */
static void host_io(sm_raft_t *r, sm_raft_quorum_state_t *durable)
{
    sm_raft_quorum_state_t s;
    if (sm_raft_save_pending(r, &s)) {
        *durable = s;
        sm_raft_save_done(r, &s);
    }
    sm_raft_msg_t m;
    while (sm_raft_outbox_next(r, &m))
        ; /* one voter: nobody to send to */
}

static void test_single_voter_quorum(void)
{
    char d[300];
    dir_for(d, sizeof d, "quorum");
    int32_t voters[] = {1};
    sm_raft_storage_log_t *l;
    CHECK_EQ(sm_raft_storage_log_open(d, 0, voters, 1, &l), SM_OK);
    uint64_t seed = 7;
    sm_raft_config_t c;
    sm_raft_config_defaults(&c);
    c.node_id = 1;
    c.n_voters = 1;
    c.voters[0] = 1;
    sm_raft_env_t env = {.log = &sm_raft_storage_log_ops, .log_ctx = l, .rand = rnd,
                         .rand_ctx = &seed, .listener = {.committed = on_committed}};
    sm_raft_t *r = sm_raft_new(&c, &env, 0);
    CHECK(r != NULL);
    sm_raft_quorum_state_t durable = {0, -1, -1};
    int64_t now = 0;
    /* the only voter elects itself on its first ticks, without waiting out
     * an election timeout (a single node starts in milliseconds) */
    for (int i = 0; i < 5 && sm_raft_state(r) != SM_RAFT_LEADER; i++) {
        host_io(r, &durable);
        sm_raft_tick(r, now);
    }
    host_io(r, &durable);
    CHECK_EQ(sm_raft_state(r), SM_RAFT_LEADER);
    CHECK_EQ(durable.leader_id, 1);
    int32_t epoch = sm_raft_epoch(r);
    CHECK(epoch >= 1);
    sm_wbuf_t w;
    sm_wbuf_init(&w);
    make_batch(&w, 3);
    int64_t off = sm_raft_propose(r, now, w.mem, w.len, 3);
    sm_wbuf_free(&w);
    CHECK(off >= 1); /* after the LeaderChange record */
    host_io(r, &durable);
    for (int i = 0; i < 40 && g_committed < off + 3; i++) {
        now += 10;
        sm_raft_tick(r, now);
        host_io(r, &durable);
    }
    CHECK_EQ(g_committed, off + 3);
    CHECK_EQ(sm_raft_committed(r), off + 3);
    /* what was committed is durable in the storage log */
    CHECK(sm_raft_storage_log_ops.flushed_offset(l) >= off + 3);
    sm_raft_free(r);
    sm_raft_storage_log_close(l);
    /* a restart finds it all */
    CHECK_EQ(sm_raft_storage_log_open(d, 0, voters, 1, &l), SM_OK);
    CHECK_EQ(sm_raft_storage_log_ops.end_offset(l), off + 3);
    CHECK_EQ(sm_raft_storage_log_ops.last_epoch(l), epoch);
    sm_raft_storage_log_close(l);
}

int main(void)
{
    snprintf(g_dir, sizeof g_dir, "/tmp/samsa-test-raftlog-%d", (int)getpid());
    RUN(test_leader_and_follower);
    RUN(test_single_voter_quorum);
    char cmd[300];
    snprintf(cmd, sizeof cmd, "rm -rf %s", g_dir);
    if (system(cmd) != 0)
        fprintf(stderr, "could not remove %s\n", g_dir);
    TEST_MAIN_END();
}
