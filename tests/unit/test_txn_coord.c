/*
 * test_txn_coord.c - the transaction coordinator (src/coord/txn_coord.h)
 * over real partitions of __transaction_state on a temp dir, led by this
 * node alone (solo ISR: a write is replicated when appended), with a fake
 * host: a producer-id counter, a fake clock and a marker writer that
 * records every call and answers at once or holds the answer.
 */
#include "log.h"
#include "partition/partition.h"
#include "sm_test.h"
#include "sm_test_fs.h"
#include "txn_coord.h"

#include <stdlib.h>
#include <string.h>

#define NPARTS 3
#define STATE SM_TXN_COORD_TOPIC

typedef struct marker_call {
    int64_t pid;
    int16_t epoch;
    bool committed;
    int32_t coord_epoch;
    int32_t n;
    char first_topic[64];
} marker_call_t;

typedef struct fake {
    char dir[256];
    sm_partition_t *parts[NPARTS];
    int32_t leader_epoch;
    int64_t now;
    int64_t next_pid;
    bool hold;           /* keep write_markers answers for later */
    int16_t marker_err;  /* answer every partition with this */
    marker_call_t calls[64];
    int ncalls;
    void (*held_done)(void *, const int16_t *);
    void *held_arg;
    int32_t held_n;
    bool gone_topic;     /* topic "gone" exists? */
} fake_t;

static fake_t F;

static sm_partition_t *h_state_partition(void *ctx, int32_t part)
{
    fake_t *f = ctx;
    if (part < 0 || part >= NPARTS || !f->parts[part])
        return NULL;
    sm_partition_keep(f->parts[part]);
    return f->parts[part];
}

static int32_t h_topic_partitions(void *ctx, const char *topic)
{
    fake_t *f = ctx;
    if (!strcmp(topic, STATE))
        return NPARTS;
    if (!strcmp(topic, "t1") || !strcmp(topic, "t2"))
        return 4;
    if (!strcmp(topic, "gone"))
        return f->gone_topic ? 4 : -1;
    if (!strcmp(topic, "__consumer_offsets"))
        return 50;
    return -1;
}

static int16_t h_alloc(void *ctx, int64_t *pid)
{
    fake_t *f = ctx;
    *pid = f->next_pid++;
    return 0;
}

static int32_t h_offsets_count(void *ctx)
{
    SM_UNUSED(ctx);
    return 50;
}

static void h_write_markers(void *ctx, const sm_txn_markers_t *m,
                            void (*done)(void *arg, const int16_t *errs), void *arg)
{
    fake_t *f = ctx;
    marker_call_t *c = &f->calls[f->ncalls++ % 64];
    c->pid = m->producer_id;
    c->epoch = m->producer_epoch;
    c->committed = m->committed;
    c->coord_epoch = m->coordinator_epoch;
    c->n = m->npartitions;
    snprintf(c->first_topic, sizeof c->first_topic, "%s",
             m->npartitions ? m->partitions[0].topic : "");
    if (f->hold) {
        f->held_done = done;
        f->held_arg = arg;
        f->held_n = m->npartitions;
        return;
    }
    int16_t errs[64];
    for (int i = 0; i < 64; i++)
        errs[i] = f->marker_err;
    done(arg, errs);
}

static void release_held(int16_t err)
{
    int16_t errs[64];
    for (int i = 0; i < 64; i++)
        errs[i] = err;
    void (*d)(void *, const int16_t *) = F.held_done;
    F.held_done = NULL;
    if (d)
        d(F.held_arg, errs);
}

static int64_t h_now(void *ctx)
{
    return ((fake_t *)ctx)->now;
}

static sm_txn_host_t host(void)
{
    sm_txn_host_t h = {.state_partition = h_state_partition,
                       .topic_partitions = h_topic_partitions,
                       .alloc_producer_id = h_alloc,
                       .offsets_partition_count = h_offsets_count,
                       .write_markers = h_write_markers,
                       .now_ms = h_now,
                       .ctx = &F};
    return h;
}

static void parts_open(void)
{
    sm_log_config_t lcfg;
    sm_log_config_default(&lcfg);
    for (int i = 0; i < NPARTS; i++) {
        F.parts[i] = sm_partition_open(F.dir, STATE, i, NULL, &lcfg, NULL);
        CHECK(F.parts[i] != NULL);
        int32_t me = 1;
        sm_partition_set_replicas(F.parts[i], 1, 1, F.leader_epoch, 0, &me, 1, &me, 1, 0);
    }
}

static void parts_close(void)
{
    for (int i = 0; i < NPARTS; i++) {
        if (F.parts[i])
            sm_partition_put(F.parts[i]);
        F.parts[i] = NULL;
    }
}

static sm_txn_coord_config_t test_cfg(void)
{
    sm_txn_coord_config_t cfg;
    sm_txn_coord_config_default(&cfg);
    cfg.max_timeout_ms = 60000;
    return cfg;
}

static sm_txn_coord_t *coord_open(void)
{
    sm_txn_coord_config_t cfg = test_cfg();
    sm_txn_host_t h = host();
    sm_txn_coord_t *c = NULL;
    CHECK(sm_txn_coord_open(&cfg, &h, &c) == SM_OK);
    return c;
}

static void setup(void)
{
    memset(&F, 0, sizeof F);
    const char *tmp = getenv("TMPDIR");
    snprintf(F.dir, sizeof F.dir, "%s/test_txn.XXXXXX", tmp && *tmp ? tmp : "/tmp");
    if (!mkdtemp(F.dir)) {
        perror("mkdtemp");
        exit(2);
    }
    F.now = 1000000;
    F.next_pid = 1000;
    F.leader_epoch = 5;
    parts_open();
}

static void teardown(void)
{
    parts_close();
    sm_test_rm_rf(F.dir);
}

/* ------------------------------------------------------------ op helpers */

static int ndone;
static void init_done(sm_txn_init_t *op) { SM_UNUSED(op); ndone++; }
static void add_done(sm_txn_add_t *op) { SM_UNUSED(op); ndone++; }
static void end_done(sm_txn_end_t *op) { SM_UNUSED(op); ndone++; }

static sm_txn_init_t init_pid(sm_txn_coord_t *c, const char *id, int32_t timeout, int64_t pid,
                              int16_t epoch)
{
    sm_txn_init_t op = {.transactional_id = id, .id_len = id ? strlen(id) : 0,
                        .timeout_ms = timeout, .producer_id = pid, .producer_epoch = epoch,
                        .done = init_done};
    int before = ndone;
    sm_txn_coord_init_producer(c, &op);
    CHECK_EQ(ndone, before + 1); /* solo ISR: answered before returning */
    return op;
}

static int16_t add_parts(sm_txn_coord_t *c, const char *id, int64_t pid, int16_t epoch,
                         const char *topic, int32_t p0, int32_t n, int16_t tv, bool verify,
                         int16_t *errs)
{
    sm_txn_add_part_t parts[8];
    for (int32_t i = 0; i < n; i++)
        parts[i] = (sm_txn_add_part_t){.topic = topic, .partition = p0 + i, .error = -99};
    sm_txn_add_t op = {.transactional_id = id, .id_len = strlen(id), .producer_id = pid,
                       .producer_epoch = epoch, .verify_only = verify, .client_version = tv,
                       .parts = parts, .nparts = n, .done = add_done};
    int before = ndone;
    sm_txn_coord_add_partitions(c, &op);
    CHECK_EQ(ndone, before + 1);
    for (int32_t i = 0; errs && i < n; i++)
        errs[i] = parts[i].error;
    return op.error;
}

static sm_txn_end_t end_txn(sm_txn_coord_t *c, const char *id, int64_t pid, int16_t epoch,
                            bool commit, int16_t tv)
{
    sm_txn_end_t op = {.transactional_id = id, .id_len = strlen(id), .producer_id = pid,
                       .producer_epoch = epoch, .committed = commit, .client_version = tv,
                       .done = end_done};
    int before = ndone;
    sm_txn_coord_end(c, &op);
    CHECK_EQ(ndone, before + 1);
    return op;
}

static sm_txn_desc_t desc(sm_txn_coord_t *c, const char *id, sm_arena_t *a)
{
    sm_txn_desc_t d;
    sm_txn_coord_describe(c, id, strlen(id), a, &d);
    return d;
}

static bool state_is(sm_txn_coord_t *c, const char *id, const char *state)
{
    sm_arena_t a;
    sm_arena_init(&a);
    sm_txn_desc_t d = desc(c, id, &a);
    bool ok = d.error == 0 && strcmp(d.state, state) == 0;
    if (!ok)
        fprintf(stderr, "  %s: state %s (error %d), expected %s\n", id, d.state, d.error, state);
    sm_arena_free(&a);
    return ok;
}

/* ------------------------------------------------------------ tests */

static void test_record_bytes(void)
{
    /* v0 by hand: Kafka's layout, so Kafka's tools decode our records */
    sm_txn_meta_t m = {.producer_id = 7, .prev_producer_id = -1, .next_producer_id = -1,
                       .producer_epoch = 3, .last_epoch = -1, .timeout_ms = 60000,
                       .state = SM_TXN_ONGOING, .start_ms = 100, .update_ms = 200};
    CHECK(sm_txn_meta_add(&m, "b", 1, 2));
    CHECK(sm_txn_meta_add(&m, "a", 1, 1));
    CHECK(sm_txn_meta_add(&m, "b", 1, 0));
    CHECK(!sm_txn_meta_add(&m, "a", 1, 1));
    sm_arena_t a;
    sm_arena_init(&a);
    sm_coord_kv_t kv;
    sm_txn_record_encode(&a, "tx", 2, &m, &kv);
    static const uint8_t key[] = {0, 0, 0, 2, 't', 'x'};
    CHECK_EQ(kv.key_len, (int)sizeof key);
    CHECK(memcmp(kv.key, key, sizeof key) == 0);
    sm_wbuf_t w;
    sm_wbuf_init(&w);
    sm_wbuf_i16(&w, 0);
    sm_wbuf_i64(&w, 7);
    sm_wbuf_i16(&w, 3);
    sm_wbuf_i32(&w, 60000);
    sm_wbuf_i8(&w, 1);
    sm_wbuf_i32(&w, 2); /* topics a, b */
    sm_wbuf_i16(&w, 1);
    sm_wbuf_bytes(&w, "a", 1);
    sm_wbuf_i32(&w, 1);
    sm_wbuf_i32(&w, 1);
    sm_wbuf_i16(&w, 1);
    sm_wbuf_bytes(&w, "b", 1);
    sm_wbuf_i32(&w, 2);
    sm_wbuf_i32(&w, 0);
    sm_wbuf_i32(&w, 2);
    sm_wbuf_i64(&w, 200);
    sm_wbuf_i64(&w, 100);
    CHECK_EQ(kv.value_len, (long long)w.len);
    CHECK(kv.value_len == (int32_t)w.len && memcmp(kv.value, w.mem, w.len) == 0);
    /* round trip of v0 and of v1 (KIP-890 fields) */
    sm_str_t id;
    bool tomb;
    sm_txn_meta_t back;
    CHECK(sm_txn_record_decode(kv.key, kv.key_len, kv.value, kv.value_len, &a, &id, &tomb,
                               &back) == SM_OK);
    CHECK(!tomb && sm_str_eq(id, "tx"));
    CHECK_EQ(back.producer_id, 7);
    CHECK_EQ(back.ntps, 3);
    CHECK(back.ntps == 3 && !strcmp(back.tps[0].topic, "a") && back.tps[2].partition == 2);
    CHECK_EQ(back.start_ms, 100);
    sm_txn_meta_free(&back);
    m.client_version = 2;
    m.next_producer_id = 99;
    sm_txn_record_encode(&a, "tx", 2, &m, &kv);
    CHECK_EQ(kv.value[1], 1); /* v1 */
    CHECK(sm_txn_record_decode(kv.key, kv.key_len, kv.value, kv.value_len, &a, &id, &tomb,
                               &back) == SM_OK);
    CHECK_EQ(back.client_version, 2);
    CHECK_EQ(back.next_producer_id, 99);
    CHECK_EQ(back.prev_producer_id, -1);
    sm_txn_meta_free(&back);
    /* Empty: null partitions */
    m.state = SM_TXN_EMPTY;
    m.client_version = 0;
    m.next_producer_id = -1;
    sm_txn_record_encode(&a, "tx", 2, &m, &kv);
    CHECK_EQ(kv.value_len, 2 + 8 + 2 + 4 + 1 + 4 + 8 + 8);
    sm_txn_record_encode(&a, "tx", 2, NULL, &kv);
    CHECK_EQ(kv.value_len, -1);
    CHECK(sm_txn_record_decode(kv.key, kv.key_len, NULL, -1, &a, &id, &tomb, &back) == SM_OK);
    CHECK(tomb);
    sm_wbuf_free(&w);
    sm_txn_meta_free(&m);
    sm_arena_free(&a);
}

static void test_init_and_fence(void)
{
    setup();
    sm_txn_coord_t *c = coord_open();
    sm_txn_init_t r = init_pid(c, "app-1", 30000, -1, -1);
    CHECK_EQ(r.error, 0);
    CHECK_EQ(r.out_producer_id, 1000);
    CHECK_EQ(r.out_producer_epoch, 0);
    CHECK(state_is(c, "app-1", "Empty"));
    /* a second producer with the same id fences the first */
    sm_txn_init_t r2 = init_pid(c, "app-1", 30000, -1, -1);
    CHECK_EQ(r2.error, 0);
    CHECK_EQ(r2.out_producer_id, 1000);
    CHECK_EQ(r2.out_producer_epoch, 1);
    CHECK_EQ(add_parts(c, "app-1", 1000, 0, "t1", 0, 1, 1, false, NULL),
             SM_TXN_KERR_PRODUCER_FENCED);
    CHECK_EQ(sm_txn_kerr_for_version(24, 1, SM_TXN_KERR_PRODUCER_FENCED),
             SM_TXN_KERR_INVALID_PRODUCER_EPOCH);
    CHECK_EQ(sm_txn_kerr_for_version(24, 2, SM_TXN_KERR_PRODUCER_FENCED),
             SM_TXN_KERR_PRODUCER_FENCED);
    /* KIP-360: the fenced producer's expected epoch is refused; the
     * current one's bumps */
    CHECK_EQ(init_pid(c, "app-1", 30000, 1000, 0).error, SM_TXN_KERR_PRODUCER_FENCED);
    r = init_pid(c, "app-1", 30000, 1000, 1);
    CHECK_EQ(r.error, 0);
    CHECK_EQ(r.out_producer_epoch, 2);
    /* a retry of that call (its answer lost) gets the same epoch */
    r = init_pid(c, "app-1", 30000, 1000, 1);
    CHECK_EQ(r.error, 0);
    CHECK_EQ(r.out_producer_epoch, 2);
    CHECK_EQ(init_pid(c, "app-1", 30000, 555, 2).error, SM_TXN_KERR_PRODUCER_FENCED);
    /* bad timeouts, empty id, idempotent producer */
    CHECK_EQ(init_pid(c, "app-1", 0, -1, -1).error, SM_TXN_KERR_INVALID_TRANSACTION_TIMEOUT);
    CHECK_EQ(init_pid(c, "app-1", 60001, -1, -1).error, SM_TXN_KERR_INVALID_TRANSACTION_TIMEOUT);
    CHECK_EQ(init_pid(c, "", 1000, -1, -1).error, SM_TXN_KERR_INVALID_REQUEST);
    r = init_pid(c, NULL, 0, -1, -1);
    CHECK_EQ(r.error, 0);
    CHECK_EQ(r.out_producer_id, 1001);
    CHECK_EQ(r.out_producer_epoch, 0);
    /* unknown ids and wrong producer ids */
    CHECK_EQ(add_parts(c, "nobody", 1000, 0, "t1", 0, 1, 1, false, NULL),
             SM_TXN_KERR_INVALID_PRODUCER_ID_MAPPING);
    CHECK_EQ(add_parts(c, "app-1", 999, 2, "t1", 0, 1, 1, false, NULL),
             SM_TXN_KERR_INVALID_PRODUCER_ID_MAPPING);
    CHECK_EQ(end_txn(c, "nobody", 1, 0, true, 1).error, SM_TXN_KERR_INVALID_PRODUCER_ID_MAPPING);
    CHECK_EQ(end_txn(c, "app-1", 1000, 2, true, 1).error, SM_TXN_KERR_INVALID_TXN_STATE);
    sm_txn_coord_close(c);
    teardown();
}

static void test_commit_abort(void)
{
    setup();
    sm_txn_coord_t *c = coord_open();
    sm_txn_init_t r = init_pid(c, "app", 30000, -1, -1);
    int64_t pid = r.out_producer_id;
    int16_t errs[8];
    CHECK_EQ(add_parts(c, "app", pid, 0, "t1", 0, 2, 1, false, errs), 0);
    CHECK_EQ(errs[0], 0);
    CHECK_EQ(errs[1], 0);
    CHECK(state_is(c, "app", "Ongoing"));
    int64_t end0 = sm_partition_log_end(F.parts[0]) + sm_partition_log_end(F.parts[1]) +
                   sm_partition_log_end(F.parts[2]);
    /* present partitions: no write */
    CHECK_EQ(add_parts(c, "app", pid, 0, "t1", 1, 1, 1, false, NULL), 0);
    CHECK_EQ(sm_partition_log_end(F.parts[0]) + sm_partition_log_end(F.parts[1]) +
                 sm_partition_log_end(F.parts[2]),
             end0);
    sm_txn_add_part_t off;
    sm_txn_add_t ao = {.transactional_id = "app", .id_len = 3, .producer_id = pid,
                       .producer_epoch = 0, .client_version = 1, .parts = &off,
                       .done = add_done};
    sm_txn_coord_add_offsets(c, &ao, "grp", 3);
    CHECK_EQ(ao.error, 0);
    CHECK(!strcmp(off.topic, "__consumer_offsets"));
    CHECK_EQ(off.partition, sm_coord_partition_for("grp", 3, 50));
    sm_arena_t a;
    sm_arena_init(&a);
    sm_txn_desc_t d = desc(c, "app", &a);
    CHECK_EQ(d.ntps, 3);
    CHECK_EQ(d.start_ms, F.now);
    CHECK_EQ(d.timeout_ms, 30000);

    /* commit with markers held: PrepareCommit until they are written */
    F.hold = true;
    sm_txn_end_t e = end_txn(c, "app", pid, 0, true, 1);
    CHECK_EQ(e.error, 0);
    CHECK_EQ(F.ncalls, 1);
    CHECK(F.calls[0].committed);
    CHECK_EQ(F.calls[0].n, 3);
    CHECK_EQ(F.calls[0].pid, pid);
    CHECK_EQ(F.calls[0].epoch, 0);
    CHECK_EQ(F.calls[0].coord_epoch, 5);
    CHECK(state_is(c, "app", "PrepareCommit"));
    CHECK_EQ(init_pid(c, "app", 30000, -1, -1).error, SM_TXN_KERR_CONCURRENT_TRANSACTIONS);
    CHECK_EQ(add_parts(c, "app", pid, 0, "t2", 0, 1, 1, false, NULL),
             SM_TXN_KERR_CONCURRENT_TRANSACTIONS);
    CHECK_EQ(end_txn(c, "app", pid, 0, true, 1).error, SM_TXN_KERR_CONCURRENT_TRANSACTIONS);
    CHECK_EQ(end_txn(c, "app", pid, 0, false, 1).error, SM_TXN_KERR_INVALID_TXN_STATE);
    /* a failed marker is retried after the backoff */
    release_held(SM_TXN_KERR_NOT_LEADER_OR_FOLLOWER);
    CHECK(state_is(c, "app", "PrepareCommit"));
    F.hold = false;
    sm_txn_coord_tick(c);
    CHECK_EQ(F.ncalls, 1); /* backoff not over */
    F.now += 200;
    sm_txn_coord_tick(c);
    CHECK_EQ(F.ncalls, 2);
    CHECK(state_is(c, "app", "CompleteCommit"));
    d = desc(c, "app", &a);
    CHECK_EQ(d.ntps, 0);
    /* idempotent retry; wrong decision */
    CHECK_EQ(end_txn(c, "app", pid, 0, true, 1).error, 0);
    CHECK_EQ(end_txn(c, "app", pid, 0, false, 1).error, SM_TXN_KERR_INVALID_TXN_STATE);

    /* next transaction: abort */
    CHECK_EQ(add_parts(c, "app", pid, 0, "t2", 3, 1, 1, false, NULL), 0);
    CHECK(state_is(c, "app", "Ongoing"));
    e = end_txn(c, "app", pid, 0, false, 1);
    CHECK_EQ(e.error, 0);
    CHECK_EQ(F.ncalls, 3);
    CHECK(!F.calls[2].committed);
    CHECK_EQ(F.calls[2].n, 1);
    CHECK(!strcmp(F.calls[2].first_topic, "t2"));
    CHECK(state_is(c, "app", "CompleteAbort"));
    CHECK_EQ(end_txn(c, "app", pid, 0, false, 1).error, 0);
    CHECK_EQ(end_txn(c, "app", pid, 0, true, 1).error, SM_TXN_KERR_INVALID_TXN_STATE);

    /* markers to a deleted topic are dropped, the commit completes */
    CHECK_EQ(add_parts(c, "app", pid, 0, "gone", 0, 1, 1, false, NULL), 0);
    F.marker_err = SM_TXN_KERR_UNKNOWN_TOPIC_OR_PARTITION;
    CHECK_EQ(end_txn(c, "app", pid, 0, true, 1).error, 0);
    CHECK(state_is(c, "app", "CompleteCommit"));
    F.marker_err = 0;
    sm_arena_free(&a);
    sm_txn_coord_close(c);
    teardown();
}

static void test_timeout_and_init_abort(void)
{
    setup();
    sm_txn_coord_t *c = coord_open();
    sm_txn_init_t r = init_pid(c, "slow", 1000, -1, -1);
    int64_t pid = r.out_producer_id;
    CHECK_EQ(add_parts(c, "slow", pid, 0, "t1", 0, 1, 1, false, NULL), 0);
    F.now += 5000; /* past its timeout, before the abort pass */
    sm_txn_coord_tick(c);
    CHECK(state_is(c, "slow", "Ongoing"));
    F.now += 6000;
    sm_txn_coord_tick(c);
    CHECK(state_is(c, "slow", "CompleteAbort"));
    CHECK_EQ(F.ncalls, 1);
    CHECK(!F.calls[0].committed);
    CHECK_EQ(F.calls[0].epoch, 1); /* the zombie is fenced */
    CHECK_EQ(add_parts(c, "slow", pid, 0, "t1", 0, 1, 1, false, NULL),
             SM_TXN_KERR_PRODUCER_FENCED);
    CHECK_EQ(end_txn(c, "slow", pid, 0, true, 1).error, SM_TXN_KERR_PRODUCER_FENCED);

    /* InitProducerId on an ongoing transaction aborts it first */
    r = init_pid(c, "busy", 30000, -1, -1);
    int64_t pid2 = r.out_producer_id;
    CHECK_EQ(add_parts(c, "busy", pid2, 0, "t1", 2, 1, 1, false, NULL), 0);
    F.hold = true;
    CHECK_EQ(init_pid(c, "busy", 30000, -1, -1).error, SM_TXN_KERR_CONCURRENT_TRANSACTIONS);
    CHECK(state_is(c, "busy", "PrepareAbort"));
    CHECK_EQ(init_pid(c, "busy", 30000, -1, -1).error, SM_TXN_KERR_CONCURRENT_TRANSACTIONS);
    release_held(0);
    F.hold = false;
    CHECK(state_is(c, "busy", "CompleteAbort"));
    r = init_pid(c, "busy", 30000, -1, -1);
    CHECK_EQ(r.error, 0);
    CHECK_EQ(r.out_producer_id, pid2);
    CHECK_EQ(r.out_producer_epoch, 2);

    /* ids idle past transactional.id.expiration.ms are removed */
    F.now += 604800000LL + 3600000LL;
    sm_txn_coord_tick(c);
    sm_arena_t a;
    sm_arena_init(&a);
    CHECK_EQ(desc(c, "slow", &a).error, SM_TXN_KERR_TRANSACTIONAL_ID_NOT_FOUND);
    CHECK_EQ(desc(c, "busy", &a).error, SM_TXN_KERR_TRANSACTIONAL_ID_NOT_FOUND);
    sm_txn_coord_close(c);
    c = coord_open(); /* the tombstones hold after a reload */
    CHECK_EQ(desc(c, "slow", &a).error, SM_TXN_KERR_TRANSACTIONAL_ID_NOT_FOUND);
    sm_arena_free(&a);
    sm_txn_coord_close(c);
    teardown();
}

static void test_v2_and_verify(void)
{
    setup();
    sm_txn_coord_t *c = coord_open();
    sm_txn_init_t r = init_pid(c, "v2", 30000, -1, -1);
    int64_t pid = r.out_producer_id;
    int16_t errs[8];
    /* KIP-890 part 1: verification before a transactional write */
    CHECK_EQ(add_parts(c, "v2", pid, 0, "t1", 0, 1, 2, true, errs), 0);
    CHECK_EQ(errs[0], SM_TXN_KERR_TRANSACTION_ABORTABLE);
    CHECK_EQ(add_parts(c, "v2", pid, 0, "t1", 0, 1, 2, false, NULL), 0);
    CHECK_EQ(add_parts(c, "v2", pid, 0, "t1", 0, 2, 2, true, errs), 0);
    CHECK_EQ(errs[0], 0);
    CHECK_EQ(errs[1], SM_TXN_KERR_TRANSACTION_ABORTABLE);
    CHECK_EQ(add_parts(c, "v2", pid, 1, "t1", 0, 1, 2, true, errs), SM_TXN_KERR_PRODUCER_FENCED);
    CHECK_EQ(errs[0], SM_TXN_KERR_PRODUCER_FENCED);
    CHECK_EQ(add_parts(c, "v2", pid + 1, 0, "t1", 0, 1, 2, true, errs),
             SM_TXN_KERR_INVALID_PRODUCER_ID_MAPPING);
    /* v2 EndTxn bumps the epoch and tells the producer */
    sm_txn_end_t e = end_txn(c, "v2", pid, 0, true, 2);
    CHECK_EQ(e.error, 0);
    CHECK_EQ(e.out_producer_id, pid);
    CHECK_EQ(e.out_producer_epoch, 1);
    CHECK_EQ(F.calls[0].epoch, 1); /* markers carry the new epoch */
    CHECK(state_is(c, "v2", "CompleteCommit"));
    /* a retry with the old epoch succeeds without another bump */
    e = end_txn(c, "v2", pid, 0, true, 2);
    CHECK_EQ(e.error, 0);
    CHECK_EQ(e.out_producer_epoch, 1);
    CHECK_EQ(end_txn(c, "v2", pid, 0, false, 2).error, SM_TXN_KERR_INVALID_TXN_STATE);
    /* v2: abort with no partitions bumps too */
    e = end_txn(c, "v2", pid, 1, false, 2);
    CHECK_EQ(e.error, 0);
    CHECK_EQ(e.out_producer_epoch, 2);
    CHECK(state_is(c, "v2", "CompleteAbort"));
    CHECK_EQ(end_txn(c, "v2", pid, 5, false, 2).error, SM_TXN_KERR_PRODUCER_FENCED);
    sm_txn_coord_close(c);
    teardown();
}

/* Append one record of id with m (as an older coordinator would have). */
static void put_record(int32_t part, const char *id, const sm_txn_meta_t *m)
{
    sm_arena_t a;
    sm_arena_init(&a);
    sm_coord_kv_t kv;
    sm_txn_record_encode(&a, id, strlen(id), m, &kv);
    sm_record_in_t rec = {.key = kv.key, .key_len = kv.key_len, .value = kv.value,
                          .value_len = kv.value_len, .timestamp = F.now};
    sm_batch_params_t bp = {.leader_epoch = -1, .producer_id = -1, .producer_epoch = -1,
                            .base_sequence = -1};
    sm_wbuf_t w;
    sm_wbuf_init(&w);
    sm_batch_encode(&w, &bp, &rec, 1);
    sm_append_info_t info;
    CHECK(sm_partition_append(F.parts[part], w.mem, w.len, &info) == SM_OK);
    sm_wbuf_free(&w);
    sm_arena_free(&a);
}

static void test_reload_and_failover(void)
{
    setup();
    sm_txn_coord_t *c = coord_open();
    char id[32];
    int64_t pids[12];
    for (int i = 0; i < 12; i++) {
        snprintf(id, sizeof id, "id-%d", i);
        pids[i] = init_pid(c, id, 20000 + i, -1, -1).out_producer_id;
        if (i % 3 >= 1)
            CHECK_EQ(add_parts(c, id, pids[i], 0, "t1", i % 4, 1, 1, false, NULL), 0);
        if (i % 3 == 2)
            CHECK_EQ(end_txn(c, id, pids[i], 0, i % 2 == 0, 1).error, 0);
    }
    /* a crash after PrepareCommit: the markers never finish here */
    int64_t cp = init_pid(c, "crash", 30000, -1, -1).out_producer_id;
    CHECK_EQ(add_parts(c, "crash", cp, 0, "t2", 0, 3, 1, false, NULL), 0);
    F.hold = true;
    CHECK_EQ(end_txn(c, "crash", cp, 0, true, 1).error, 0);
    release_held(SM_TXN_KERR_REQUEST_TIMED_OUT);
    F.hold = false;
    CHECK(state_is(c, "crash", "PrepareCommit"));

    /* list / describe */
    sm_arena_t a;
    sm_arena_init(&a);
    sm_str_t states[] = {sm_str("Ongoing"), sm_str("Bogus")};
    sm_txn_list_filter_t f = {.states = states, .nstates = 2, .min_duration_ms = -1};
    sm_txn_listing_t *l;
    int32_t n, nunk;
    sm_str_t *unk;
    CHECK_EQ(sm_txn_coord_list(c, &f, &a, &l, &n, &unk, &nunk), 0);
    CHECK_EQ(n, 4); /* ids 1, 4, 7, 10 */
    CHECK_EQ(nunk, 1);
    CHECK(nunk == 1 && sm_str_eq(unk[0], "Bogus"));
    int64_t want = pids[4];
    sm_txn_list_filter_t f2 = {.producer_ids = &want, .nproducer_ids = 1, .min_duration_ms = -1};
    CHECK_EQ(sm_txn_coord_list(c, &f2, &a, &l, &n, &unk, &nunk), 0);
    CHECK(n == 1 && !strcmp(l[0].transactional_id, "id-4") && !strcmp(l[0].state, "Ongoing"));
    sm_txn_list_filter_t all = {.min_duration_ms = -1};
    CHECK_EQ(sm_txn_coord_list(c, &all, &a, &l, &n, &unk, &nunk), 0);
    CHECK_EQ(n, 13);

    /* remember every id's state, then close and reopen on the same logs */
    sm_txn_desc_t before[12];
    for (int i = 0; i < 12; i++) {
        snprintf(id, sizeof id, "id-%d", i);
        before[i] = desc(c, id, &a);
        CHECK_EQ(before[i].error, 0);
    }
    sm_txn_coord_close(c);
    parts_close();
    F.leader_epoch = 6; /* a new leader epoch: a new coordinator epoch */
    parts_open();
    int calls0 = F.ncalls;
    c = coord_open();
    for (int i = 0; i < 12; i++) {
        snprintf(id, sizeof id, "id-%d", i);
        sm_txn_desc_t d = desc(c, id, &a);
        CHECK_EQ(d.error, 0);
        CHECK(!strcmp(d.state, before[i].state));
        CHECK_EQ(d.producer_id, before[i].producer_id);
        CHECK_EQ(d.producer_epoch, before[i].producer_epoch);
        CHECK_EQ(d.timeout_ms, 20000 + i);
        CHECK_EQ(d.start_ms, before[i].start_ms);
        CHECK_EQ(d.ntps, before[i].ntps);
    }
    /* the prepared commit was completed by the new coordinator */
    CHECK_EQ(F.ncalls, calls0 + 1);
    CHECK(F.calls[calls0].committed);
    CHECK_EQ(F.calls[calls0].n, 3);
    CHECK_EQ(F.calls[calls0].coord_epoch, 6);
    CHECK(state_is(c, "crash", "CompleteCommit"));
    /* an Ongoing one survives and can still commit */
    CHECK_EQ(end_txn(c, "id-1", pids[1], 0, true, 1).error, 0);
    CHECK(state_is(c, "id-1", "CompleteCommit"));

    /* leadership lost: NOT_COORDINATOR; regained: loaded again */
    int32_t other = 2;
    int32_t part1 = sm_coord_partition_for("id-1", 4, NPARTS);
    sm_partition_set_replicas(F.parts[part1], 1, 2, 7, 1, &other, 1, &other, 1, 0);
    CHECK_EQ(sm_txn_coord_status(c, "id-1", 4, NULL), SM_TXN_KERR_NOT_COORDINATOR);
    sm_txn_coord_tick(c);
    CHECK_EQ(end_txn(c, "id-1", pids[1], 0, true, 1).error, SM_TXN_KERR_NOT_COORDINATOR);
    int32_t me = 1;
    sm_partition_set_replicas(F.parts[part1], 1, 1, 8, 2, &me, 1, &me, 1, 0);
    CHECK_EQ(sm_txn_coord_status(c, "id-1", 4, NULL),
             SM_TXN_KERR_COORDINATOR_LOAD_IN_PROGRESS);
    sm_txn_coord_tick(c);
    CHECK_EQ(sm_txn_coord_status(c, "id-1", 4, NULL), 0);
    CHECK(state_is(c, "id-1", "CompleteCommit"));
    sm_txn_coord_close(c);

    /* epoch exhaustion: a new producer id, epoch 0 (record written as an
     * older coordinator would have) */
    sm_txn_meta_t m = {.producer_id = 77, .prev_producer_id = -1, .next_producer_id = -1,
                       .producer_epoch = INT16_MAX - 1, .last_epoch = -1, .timeout_ms = 1000,
                       .state = SM_TXN_COMPLETE_COMMIT, .start_ms = 5, .update_ms = F.now};
    put_record(sm_coord_partition_for("old", 3, NPARTS), "old", &m);
    c = coord_open();
    CHECK(state_is(c, "old", "CompleteCommit"));
    sm_txn_init_t r = init_pid(c, "old", 1000, -1, -1);
    CHECK_EQ(r.error, 0);
    CHECK(r.out_producer_id != 77 && r.out_producer_id >= 1000);
    CHECK_EQ(r.out_producer_epoch, 0);
    sm_arena_free(&a);
    sm_txn_coord_close(c);
    teardown();
}

static void test_restatement(void)
{
    setup();
    sm_txn_coord_config_t cfg = test_cfg();
    cfg.restate_min_bytes = 4096;
    sm_txn_host_t h = host();
    sm_txn_coord_t *c = NULL;
    CHECK(sm_txn_coord_open(&cfg, &h, &c) == SM_OK);
    int64_t pid = init_pid(c, "busy", 30000, -1, -1).out_producer_id;
    int32_t part = sm_coord_partition_for("busy", 4, NPARTS);
    for (int i = 0; i < 60; i++) {
        CHECK_EQ(add_parts(c, "busy", pid, 0, "t1", i % 4, 1, 1, false, NULL), 0);
        CHECK_EQ(end_txn(c, "busy", pid, 0, i % 2 == 0, 1).error, 0);
    }
    int64_t start0 = sm_partition_log_start(F.parts[part]);
    sm_txn_coord_tick(c); /* restates */
    sm_txn_coord_tick(c); /* moves the log start */
    int64_t start1 = sm_partition_log_start(F.parts[part]);
    CHECK(start1 > start0);
    CHECK_EQ(start1, sm_partition_log_end(F.parts[part]) - 1);
    sm_txn_coord_close(c);
    c = coord_open();
    CHECK(state_is(c, "busy", "CompleteAbort"));
    CHECK_EQ(init_pid(c, "busy", 30000, -1, -1).out_producer_epoch, 1);
    sm_txn_coord_close(c);
    teardown();
}

int main(void)
{
    sm_log_set_level(SM_LOG_WARN);
    RUN(test_record_bytes);
    RUN(test_init_and_fence);
    RUN(test_commit_abort);
    RUN(test_timeout_and_init_abort);
    RUN(test_v2_and_verify);
    RUN(test_reload_and_failover);
    RUN(test_restatement);
    TEST_MAIN_END();
}
