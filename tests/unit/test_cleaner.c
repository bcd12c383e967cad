/* test_cleaner.c - the log cleaner (src/storage/cleaner.c, offset_map.c)
 * on generated logs:
 *  - keys x updates x tombstones x transactions (committed and aborted,
 *    with their markers), several segments: after a cleaning exactly the
 *    latest record of every key remains below the cleaned end, aborted
 *    records are gone, offsets are kept, everything past the cleaned end is
 *    untouched, tombstones and markers stay until their delete horizon and
 *    go after it, and the log reopens and reads back the same;
 *  - a producer's last batch is kept (empty) while the producer is active;
 *  - compressed batches are cleaned and keep their codec;
 *  - a dedupe buffer too small for the dirty part cleans in several passes
 *    to the same result;
 *  - a crash at every file operation of a cleaning round (the operation
 *    fails, every later one fails too, unsynced file data is dropped), then
 *    a reopen: each cleaned group holds either its old or its new content,
 *    the latest value of every key is what it was, and a later cleaning
 *    reaches the same final state as an uninterrupted one;
 *  - the offset map itself and the cleaner checkpoint file. */
#define _GNU_SOURCE
#include "batch.h"
#include "cleaner.h"
#include "compress.h"
#include "crc32c.h"
#include "file.h"
#include "offset_map.h"
#include "storage/log.h"
#include "sm_test.h"
#include "sm_test_fs.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/stat.h>
#include <unistd.h>

static char root[256];

/* ------------------------------------------------------------ writing */

static sm_log_config_t small_config(void)
{
    sm_log_config_t c;
    sm_log_config_default(&c);
    c.segment_bytes = 1500;
    c.index_interval_bytes = 200;
    return c;
}

/* One batch of n records with keys "k<key+i>" (or no key when key < 0),
 * values v[i] (NULL: tombstone). */
static void encode(sm_wbuf_t *w, int key, const char *const *v, int n, int64_t ts, int64_t pid,
                   int16_t epoch, int32_t seq, int16_t attrs)
{
    char keys[16][16];
    sm_record_in_t recs[16];
    for (int i = 0; i < n; i++) {
        snprintf(keys[i], sizeof keys[i], "k%d", key + i);
        recs[i] = (sm_record_in_t){.key = key >= 0 ? keys[i] : NULL,
                                   .key_len = key >= 0 ? (int32_t)strlen(keys[i]) : -1,
                                   .value = v[i],
                                   .value_len = v[i] ? (int32_t)strlen(v[i]) : -1,
                                   .timestamp = ts + i};
    }
    sm_batch_params_t bp = {.leader_epoch = -1, .producer_id = pid, .producer_epoch = epoch,
                            .base_sequence = seq, .attributes = attrs};
    sm_batch_encode(w, &bp, recs, n);
}

/* Compress the records of the batch in w with codec (header fixed up). */
static void compress_batch(sm_wbuf_t *w, sm_codec_t codec)
{
    uint8_t *z;
    size_t zlen;
    if (sm_compress(codec, w->mem + SM_BATCH_HEADER_SIZE, w->len - SM_BATCH_HEADER_SIZE, &z,
                    &zlen) != SM_OK)
        abort();
    w->len = SM_BATCH_HEADER_SIZE;
    sm_wbuf_bytes(w, z, zlen);
    free(z);
    uint8_t *h = w->mem;
    uint32_t len = (uint32_t)(w->len - 12);
    h[8] = (uint8_t)(len >> 24), h[9] = (uint8_t)(len >> 16), h[10] = (uint8_t)(len >> 8),
    h[11] = (uint8_t)len;
    h[22] = (uint8_t)((h[22] & ~7) | codec);
    uint32_t crc = sm_crc32c(0, h + 21, w->len - 21);
    h[17] = (uint8_t)(crc >> 24), h[18] = (uint8_t)(crc >> 16), h[19] = (uint8_t)(crc >> 8),
    h[20] = (uint8_t)crc;
}

static int64_t append(sm_log_t *log, sm_wbuf_t *w)
{
    sm_append_info_t ai;
    sm_err_t err = sm_log_append(log, w->mem, w->len, 1, 1000, &ai);
    CHECK_EQ(err, SM_OK);
    sm_wbuf_reset(w);
    return err ? -1 : ai.base_offset;
}

static int64_t put(sm_log_t *log, int key, const char *value, int64_t ts)
{
    sm_wbuf_t w;
    sm_wbuf_init(&w);
    const char *v[1] = {value};
    encode(&w, key, v, 1, ts, -1, -1, -1, 0);
    int64_t off = append(log, &w);
    sm_wbuf_free(&w);
    return off;
}

/* A COMMIT (commit) or ABORT marker of pid. */
static int64_t marker(sm_log_t *log, int64_t pid, int16_t epoch, bool commit, int64_t ts)
{
    uint8_t key[4] = {0, 0, 0, commit ? 1 : 0}, val[6] = {0, 0, 0, 0, 0, 7};
    sm_record_in_t r = {.key = key, .key_len = 4, .value = val, .value_len = 6, .timestamp = ts};
    sm_batch_params_t bp = {.leader_epoch = -1, .producer_id = pid, .producer_epoch = epoch,
                            .base_sequence = -1,
                            .attributes = SM_BATCH_ATTR_TRANSACTIONAL | SM_BATCH_ATTR_CONTROL};
    sm_wbuf_t w;
    sm_wbuf_init(&w);
    sm_batch_encode(&w, &bp, &r, 1);
    int64_t off = append(log, &w);
    sm_wbuf_free(&w);
    return off;
}

/* ------------------------------------------------------------ reading */

typedef struct rec {
    int64_t offset;
    int key;          /* -1 none */
    char value[24];   /* "" with tombstone set */
    bool tombstone, control, empty_batch, horizon;
    int codec;
    int64_t pid;
} rec_t;

typedef struct recs {
    rec_t *v;
    int n, cap;
    int64_t start, end;
    bool ok;
} recs_t;

static void recs_push(recs_t *r, rec_t x)
{
    if (r->n == r->cap) {
        r->cap = r->cap ? r->cap * 2 : 64;
        r->v = realloc(r->v, (size_t)r->cap * sizeof *r->v);
    }
    r->v[r->n++] = x;
}

/* Every record from the log start (empty batches as one entry with
 * empty_batch set); ok is false if a batch does not validate or offsets go
 * back. */
static recs_t read_all(sm_log_t *log)
{
    recs_t r = {.ok = true, .start = sm_log_start_offset(log), .end = sm_log_end_offset(log)};
    int64_t off = r.start, prev = -1;
    while (off < r.end) {
        sm_log_slice_t sl;
        if (sm_log_read(log, off, INT64_MAX, 1 << 20, true, &sl) != SM_OK || sl.len == 0) {
            r.ok = false;
            break;
        }
        uint8_t *buf = malloc((size_t)sl.len);
        ssize_t got = pread(sl.fd, buf, (size_t)sl.len, sl.file_pos);
        sm_ref_release(sl.ref);
        if (got != sl.len) {
            free(buf);
            r.ok = false;
            break;
        }
        for (size_t pos = 0; pos < (size_t)sl.len;) {
            sm_batch_info_t b;
            const char *why = NULL;
            if (sm_batch_validate_stored(buf + pos, (size_t)sl.len - pos, &b, &why) != SM_OK ||
                b.base_offset <= prev) {
                fprintf(stderr, "bad batch at %" PRId64 ": %s\n", b.base_offset,
                        why ? why : "offset order");
                r.ok = false;
                break;
            }
            size_t total = (size_t)sm_batch_total_size(&b);
            int codec = b.attributes & 7;
            uint8_t *plain = buf + pos, *owned = NULL;
            size_t plen = total;
            if (codec && b.record_count > 0) {
                size_t outlen;
                if (sm_decompress_headroom(codec, buf + pos + 61, total - 61, 1 << 24, 61, &owned,
                                           &outlen) != SM_OK) {
                    r.ok = false;
                    break;
                }
                memcpy(owned, buf + pos, 61);
                uint32_t l = (uint32_t)(outlen + 49);
                owned[8] = (uint8_t)(l >> 24), owned[9] = (uint8_t)(l >> 16),
                owned[10] = (uint8_t)(l >> 8), owned[11] = (uint8_t)l;
                owned[22] &= (uint8_t)~7;
                plain = owned;
                plen = outlen + 61;
            }
            rec_t base = {.control = b.attributes & SM_BATCH_ATTR_CONTROL,
                          .horizon = b.attributes & SM_BATCH_ATTR_DELETE_HORIZON,
                          .codec = codec, .pid = b.producer_id, .key = -1};
            if (b.record_count == 0) {
                rec_t x = base;
                x.offset = sm_batch_last_offset(&b);
                x.empty_batch = true;
                recs_push(&r, x);
            }
            sm_record_iter_t it;
            sm_record_t rc;
            if (b.record_count > 0 && sm_record_iter_init(&it, plain, plen) == SM_OK)
                while (sm_record_iter_next(&it, &rc) == SM_OK) {
                    rec_t x = base;
                    x.offset = b.base_offset + rc.offset_delta;
                    if (rc.key && !x.control)
                        sscanf((const char *)rc.key, "k%d", &x.key);
                    x.tombstone = !rc.value;
                    if (rc.value && !x.control)
                        snprintf(x.value, sizeof x.value, "%.*s", (int)rc.value_len,
                                 (const char *)rc.value);
                    recs_push(&r, x);
                }
            free(owned);
            prev = sm_batch_last_offset(&b);
            off = prev + 1;
            pos += total;
        }
        if (!r.ok)
            break;
    }
    return r;
}

/* An empty batch without a producer: what ends a cleaned segment whose
 * last records were dropped (where it lies depends on how segments were
 * grouped). */
static bool terminator(const rec_t *x) { return x->empty_batch && x->pid < 0; }

static bool recs_equal_ex(const recs_t *a, const recs_t *b, int64_t lo, int64_t hi, bool skip_term)
{
    int i = 0, j = 0;
    for (;;) {
        while (i < a->n && (a->v[i].offset < lo || a->v[i].offset >= hi ||
                            (skip_term && terminator(&a->v[i]))))
            i++;
        while (j < b->n && (b->v[j].offset < lo || b->v[j].offset >= hi ||
                            (skip_term && terminator(&b->v[j]))))
            j++;
        if (i == a->n || j == b->n)
            return i == a->n && j == b->n;
        const rec_t *x = &a->v[i++], *y = &b->v[j++];
        if (x->offset != y->offset || x->key != y->key || x->tombstone != y->tombstone ||
            x->control != y->control || x->empty_batch != y->empty_batch ||
            strcmp(x->value, y->value) != 0)
            return false;
    }
}

static bool recs_equal(const recs_t *a, const recs_t *b, int64_t lo, int64_t hi)
{
    return recs_equal_ex(a, b, lo, hi, false);
}

/* The latest value of every key among non-control records (what a
 * consumer ends with): into latest[key] ("" when deleted or never). */
static void latest_values(const recs_t *r, char latest[][24], int nkeys)
{
    for (int k = 0; k < nkeys; k++)
        latest[k][0] = '\0';
    for (int i = 0; i < r->n; i++) {
        const rec_t *x = &r->v[i];
        if (x->control || x->empty_batch || x->key < 0 || x->key >= nkeys)
            continue;
        if (strncmp(x->value, "ABORTED", 7) == 0)
            continue; /* a read_committed consumer drops these */
        snprintf(latest[x->key], 24, "%s", x->tombstone ? "" : x->value);
    }
}

static sm_clean_params_t params(int64_t now_ms)
{
    return (sm_clean_params_t){.first_dirty = -1,
                               .first_uncleanable = INT64_MAX,
                               .delete_retention_ms = 1000,
                               .now_ms = now_ms,
                               .segment_bytes = 1500};
}

/* ------------------------------------------------------------ the workload */

#define NKEYS 30
#define PID_COMMIT 100
#define PID_ABORT 200

/* Keys x updates x tombstones x transactions. Returns the offset after
 * which nothing is cleanable (the active segment's base, after a roll). */
static void generate(sm_log_t *log, int rounds)
{
    char v[24];
    sm_wbuf_t w;
    sm_wbuf_init(&w);
    int64_t ts = 10000;
    for (int round = 0; round < rounds; round++) {
        for (int k = 0; k < NKEYS; k++) {
            snprintf(v, sizeof v, "v%d-%d", k, round);
            put(log, k, v, ts++);
        }
        if (round == 2) {
            /* a committed transaction over keys 0..4, overwritten later */
            const char *vals[5] = {"TXN-0", "TXN-1", "TXN-2", "TXN-3", "TXN-4"};
            encode(&w, 0, vals, 5, ts++, PID_COMMIT, 0, 0, SM_BATCH_ATTR_TRANSACTIONAL);
            append(log, &w);
            marker(log, PID_COMMIT, 0, true, ts++);
            /* an aborted one over keys 10..14: must never shadow anything */
            const char *ab[5] = {"ABORTED-0", "ABORTED-1", "ABORTED-2", "ABORTED-3", "ABORTED-4"};
            encode(&w, 10, ab, 5, ts++, PID_ABORT, 0, 0, SM_BATCH_ATTR_TRANSACTIONAL);
            int64_t first = append(log, &w);
            int64_t m = marker(log, PID_ABORT, 0, false, ts++);
            sm_log_aborted_t a = {.pid = PID_ABORT, .first_offset = first, .last_offset = m,
                                  .last_stable_offset = m + 1};
            CHECK_EQ(sm_log_add_aborted(log, &a), SM_OK);
        }
        if (round == 4) { /* a keyless record: dropped by the cleaner */
            const char *nv[1] = {"nokey"};
            encode(&w, -1, nv, 1, ts++, -1, -1, -1, 0);
            append(log, &w);
        }
    }
    /* the last update of keys 20..24 is an aborted transaction */
    const char *ab[5] = {"ABORTED-a", "ABORTED-b", "ABORTED-c", "ABORTED-d", "ABORTED-e"};
    encode(&w, 20, ab, 5, ts++, PID_ABORT, 1, 0, SM_BATCH_ATTR_TRANSACTIONAL);
    int64_t first = append(log, &w);
    int64_t m = marker(log, PID_ABORT, 1, false, ts++);
    sm_log_aborted_t a = {.pid = PID_ABORT, .first_offset = first, .last_offset = m,
                          .last_stable_offset = m + 1};
    CHECK_EQ(sm_log_add_aborted(log, &a), SM_OK);
    /* tombstones for keys 25..29 */
    for (int k = 25; k < NKEYS; k++)
        put(log, k, NULL, ts++);
    /* an active segment holding only newer records of other keys */
    sm_wbuf_free(&w);
    for (int i = 0; i < 40; i++)
        put(log, 1000 + i, "tail-value-padding-xx", ts++);
}

/* Below end, only the latest record of each key (by offset among
 * non-aborted data records), no keyless or aborted records; tombstones
 * according to expect_tombstones; at or past end, the records of before. */
static void check_cleaned(const recs_t *before, const recs_t *after, int64_t end,
                          bool expect_tombstones)
{
    CHECK(after->ok);
    CHECK_EQ(after->start, before->start);
    CHECK_EQ(after->end, before->end);
    CHECK(recs_equal(before, after, end, INT64_MAX));
    /* latest non-aborted offset of every key below end */
    int64_t latest[2000];
    for (int k = 0; k < 2000; k++)
        latest[k] = -1;
    for (int i = 0; i < before->n; i++) {
        const rec_t *x = &before->v[i];
        if (x->offset < end && x->key >= 0 && x->key < 2000 && !x->control &&
            strncmp(x->value, "ABORTED", 7) != 0)
            latest[x->key] = x->offset;
    }
    int kept_per_key[2000] = {0};
    for (int i = 0; i < after->n; i++) {
        const rec_t *x = &after->v[i];
        if (x->offset >= end || x->control || x->empty_batch)
            continue;
        CHECK(x->key >= 0);
        CHECK(strncmp(x->value, "ABORTED", 7) != 0);
        if (x->key < 0 || x->key >= 2000)
            continue;
        kept_per_key[x->key]++;
        CHECK_EQ(x->offset, latest[x->key]);
        if (x->tombstone)
            CHECK(expect_tombstones);
        /* the record is the one that was at that offset */
        bool found = false;
        for (int j = 0; j < before->n; j++)
            if (before->v[j].offset == x->offset && before->v[j].key == x->key)
                found = strcmp(before->v[j].value, x->value) == 0;
        CHECK(found);
    }
    for (int k = 0; k < 2000; k++) {
        if (latest[k] < 0)
            continue;
        bool tomb = false;
        for (int j = 0; j < before->n; j++)
            if (before->v[j].offset == latest[k])
                tomb = before->v[j].tombstone;
        CHECK_EQ(kept_per_key[k], tomb && !expect_tombstones ? 0 : 1);
    }
}

static int count(const recs_t *r, bool (*pred)(const rec_t *))
{
    int n = 0;
    for (int i = 0; i < r->n; i++)
        n += pred(&r->v[i]);
    return n;
}
static bool is_marker(const rec_t *x) { return x->control; }
static bool is_tombstone(const rec_t *x) { return x->tombstone && !x->control; }
static bool is_horizon_tombstone(const rec_t *x) { return x->tombstone && x->horizon; }

static void test_clean_generated_log(void)
{
    char dir[512];
    snprintf(dir, sizeof dir, "%s/gen", root);
    sm_log_config_t c = small_config();
    sm_log_t *log;
    CHECK_EQ(sm_log_open(dir, "gen", &c, &log), SM_OK);
    generate(log, 6);
    CHECK(sm_log_segment_count(log) > 5);
    recs_t before = read_all(log);
    CHECK(before.ok);
    int64_t active = sm_log_active_base(log);

    sm_offset_map_t map;
    sm_offset_map_init(&map, 1 << 20);
    sm_clean_params_t p = params(50000);
    sm_clean_result_t res;
    CHECK_EQ(sm_log_clean(log, &map, &p, &res), SM_OK);
    CHECK_EQ(res.end_offset, active);
    CHECK(!res.map_full);
    CHECK(res.groups > 0);
    CHECK(res.bytes_written < res.bytes_read);
    CHECK_EQ(sm_log_cleaner_offset(log), active);
    recs_t after = read_all(log);
    check_cleaned(&before, &after, active, true);
    /* tombstones carry their delete horizon; markers stay: the abort
     * markers' data was there, the commit marker's data too */
    CHECK_EQ(count(&after, is_tombstone), 5);
    CHECK_EQ(count(&after, is_horizon_tombstone), 5);
    CHECK_EQ(count(&after, is_marker), 3);
    CHECK_EQ(res.next_horizon_ms, 51000);

    /* reopen: the same records */
    sm_log_close(log);
    CHECK_EQ(sm_log_open(dir, "gen", &c, &log), SM_OK);
    recs_t reopened = read_all(log);
    CHECK(recs_equal(&after, &reopened, INT64_MIN, INT64_MAX));
    CHECK_EQ(reopened.end, before.end);

    /* second pass before the horizon: nothing new to dedupe (the map covers
     * nothing); clean everything again from the start */
    p = params(50500);
    p.first_dirty = before.start;
    CHECK_EQ(sm_log_clean(log, &map, &p, &res), SM_OK);
    recs_t second = read_all(log);
    check_cleaned(&before, &second, active, true);
    /* the markers whose data is gone got their horizon now; tombstones kept */
    CHECK_EQ(count(&second, is_tombstone), 5);
    CHECK_EQ(count(&second, is_marker), 3);

    /* past every horizon: tombstones and markers go */
    p = params(60000);
    p.first_dirty = before.start;
    CHECK_EQ(sm_log_clean(log, &map, &p, &res), SM_OK);
    recs_t third = read_all(log);
    check_cleaned(&before, &third, active, false);
    CHECK_EQ(count(&third, is_tombstone), 0);
    CHECK_EQ(count(&third, is_marker), 0);
    CHECK_EQ(res.next_horizon_ms, INT64_MAX);

    /* what a consumer ends with never changed */
    char lb[2000][24], la[2000][24];
    latest_values(&before, lb, 2000);
    latest_values(&third, la, 2000);
    for (int k = 0; k < 2000; k++)
        CHECK(strcmp(lb[k], la[k]) == 0);
    CHECK(strcmp(la[12], "v12-5") == 0);
    CHECK(strcmp(la[22], "v22-5") == 0); /* its aborted update never shadows it */
    CHECK(strcmp(la[27], "") == 0);

    /* appends go on after cleaning; reopen once more */
    put(log, 5, "after", 99999);
    recs_t fin = read_all(log);
    sm_log_close(log);
    CHECK_EQ(sm_log_open(dir, "gen", &c, &log), SM_OK);
    recs_t fin2 = read_all(log);
    CHECK(recs_equal(&fin, &fin2, INT64_MIN, INT64_MAX));
    sm_log_close(log);
    sm_offset_map_free(&map);
    free(before.v), free(after.v), free(reopened.v), free(second.v), free(third.v);
    free(fin.v), free(fin2.v);
}

/* The last batch of an active producer stays, emptied; the cleaner does
 * not go past first_uncleanable; min.compaction.lag holds young segments. */
static void test_producer_state_and_bounds(void)
{
    char dir[512];
    snprintf(dir, sizeof dir, "%s/prod", root);
    sm_log_config_t c = small_config();
    sm_log_t *log;
    CHECK_EQ(sm_log_open(dir, "prod", &c, &log), SM_OK);
    sm_wbuf_t w;
    sm_wbuf_init(&w);
    const char *v[3] = {"p0", "p1", "p2"};
    encode(&w, 0, v, 3, 1000, 77, 3, 40, 0); /* idempotent producer 77 */
    int64_t pb = append(log, &w);
    for (int i = 0; i < 60; i++)
        put(log, i % 5, "later-value-xxxxxxxxxxx", 2000 + i);
    sm_wbuf_free(&w);
    sm_clean_producer_t prod = {.pid = 77, .last_offset = pb + 2};
    sm_offset_map_t map;
    sm_offset_map_init(&map, 1 << 16);
    sm_clean_params_t p = params(5000);
    p.producers = &prod;
    p.nproducers = 1;
    sm_clean_result_t res;
    CHECK_EQ(sm_log_clean(log, &map, &p, &res), SM_OK);
    recs_t r = read_all(log);
    CHECK(r.ok);
    CHECK(r.n > 0 && r.v[0].empty_batch && r.v[0].pid == 77 && r.v[0].offset == pb + 2);
    CHECK_EQ(res.batches_emptied, 1);
    free(r.v);

    /* first_uncleanable and min.compaction.lag.ms bound the window */
    sm_clean_window_t win;
    sm_log_clean_window(log, sm_log_cleaner_offset(log), INT64_MAX, 0, 5000, &win);
    CHECK(win.clean_bytes > 0);
    CHECK_EQ(win.dirty_bytes, 0);
    for (int i = 0; i < 60; i++)
        put(log, i % 5, "newer-value-xxxxxxxxxxx", 3000 + i);
    sm_log_clean_window(log, sm_log_cleaner_offset(log), INT64_MAX, 0, 5000, &win);
    CHECK(win.dirty_bytes > 0);
    int64_t co = sm_log_cleaner_offset(log);
    p = params(5000);
    p.first_dirty = co;
    p.first_uncleanable = co + 10;
    CHECK_EQ(sm_log_clean(log, &map, &p, &res), SM_OK);
    CHECK(res.end_offset <= co + 10);
    p.first_uncleanable = INT64_MAX;
    p.first_dirty = sm_log_cleaner_offset(log);
    p.min_compaction_lag_ms = 4000; /* every dirty segment is younger than that */
    int64_t before = sm_log_cleaner_offset(log);
    CHECK_EQ(sm_log_clean(log, &map, &p, &res), SM_OK);
    CHECK_EQ(res.groups, 0);
    CHECK_EQ(sm_log_cleaner_offset(log), before);
    sm_log_close(log);
    sm_offset_map_free(&map);
}

/* Compressed batches are cleaned into batches of the same codec. */
static void test_compressed_batches(void)
{
    char dir[512];
    snprintf(dir, sizeof dir, "%s/zip", root);
    sm_log_config_t c = small_config();
    sm_log_t *log;
    CHECK_EQ(sm_log_open(dir, "zip", &c, &log), SM_OK);
    sm_codec_t codecs[4] = {SM_CODEC_GZIP, SM_CODEC_SNAPPY, SM_CODEC_LZ4, SM_CODEC_ZSTD};
    sm_wbuf_t w;
    sm_wbuf_init(&w);
    for (int round = 0; round < 8; round++) {
        char vb[8][24];
        const char *v[8];
        for (int i = 0; i < 8; i++) {
            snprintf(vb[i], sizeof vb[i], "z%d-%d", round * 8 + i, round);
            v[i] = round == 7 && i == 3 ? NULL : vb[i];
        }
        encode(&w, (round % 2) * 4, v, 8, 1000 + round, -1, -1, -1, 0);
        compress_batch(&w, codecs[round % 4]);
        append(log, &w);
    }
    for (int i = 0; i < 30; i++)
        put(log, 100 + i, "tail-value-xxxxxxxxxxxxxxx", 5000);
    sm_wbuf_free(&w);
    recs_t before = read_all(log);
    CHECK(before.ok);
    sm_offset_map_t map;
    sm_offset_map_init(&map, 1 << 16);
    sm_clean_params_t p = params(9000);
    sm_clean_result_t res;
    CHECK_EQ(sm_log_clean(log, &map, &p, &res), SM_OK);
    recs_t after = read_all(log);
    check_cleaned(&before, &after, res.end_offset, true);
    int compressed = 0;
    for (int i = 0; i < after.n; i++)
        compressed += after.v[i].codec != 0;
    CHECK(compressed > 0);
    sm_log_close(log);
    sm_offset_map_free(&map);
    free(before.v), free(after.v);
}

/* A map too small for the dirty part: several passes, same result. */
static void test_small_map_cleans_in_passes(void)
{
    char dir[512];
    snprintf(dir, sizeof dir, "%s/small", root);
    sm_log_config_t c = small_config();
    sm_log_t *log;
    CHECK_EQ(sm_log_open(dir, "small", &c, &log), SM_OK);
    generate(log, 6);
    recs_t before = read_all(log);
    int64_t active = sm_log_active_base(log);
    sm_offset_map_t map;
    sm_offset_map_init(&map, 20 * SM_OFFSET_MAP_SLOT_BYTES); /* 18 keys */
    sm_clean_params_t p = params(50000);
    sm_clean_result_t res;
    int passes = 0;
    do {
        p.first_dirty = sm_log_cleaner_offset(log);
        CHECK_EQ(sm_log_clean(log, &map, &p, &res), SM_OK);
        passes++;
    } while (res.map_full && passes < 50);
    CHECK(passes > 1);
    CHECK_EQ(sm_log_cleaner_offset(log), active);
    /* one more full pass from the start with a big map: the final state */
    sm_offset_map_free(&map);
    sm_offset_map_init(&map, 1 << 20);
    p.first_dirty = before.start;
    CHECK_EQ(sm_log_clean(log, &map, &p, &res), SM_OK);
    recs_t after = read_all(log);
    check_cleaned(&before, &after, active, true);
    sm_log_close(log);
    sm_offset_map_free(&map);
    free(before.v), free(after.v);
}

/* A follower appends what a cleaned leader serves (gaps, thinned and empty
 * batches, terminators) and recovery validates it all after a crash. */
static void test_follower_copies_cleaned_log(void)
{
    char dir[512], fdir[512], state[600];
    snprintf(dir, sizeof dir, "%s/leader", root);
    snprintf(fdir, sizeof fdir, "%s/follower", root);
    sm_log_config_t c = small_config();
    sm_log_t *log, *fol;
    CHECK_EQ(sm_log_open(dir, "leader", &c, &log), SM_OK);
    generate(log, 6);
    sm_offset_map_t map;
    sm_offset_map_init(&map, 1 << 20);
    sm_clean_params_t p = params(50000);
    sm_clean_result_t res;
    CHECK_EQ(sm_log_clean(log, &map, &p, &res), SM_OK);
    recs_t want = read_all(log);
    c.segment_bytes = 900; /* other segment boundaries than the leader's */
    CHECK_EQ(sm_log_open(fdir, "follower", &c, &fol), SM_OK);
    int64_t off = sm_log_start_offset(log);
    while (off < sm_log_end_offset(log)) {
        sm_log_slice_t sl;
        CHECK_EQ(sm_log_read(log, off, INT64_MAX, 700, true, &sl), SM_OK);
        if (sl.len == 0)
            break;
        uint8_t *buf = malloc((size_t)sl.len);
        CHECK_EQ(pread(sl.fd, buf, (size_t)sl.len, sl.file_pos), sl.len);
        sm_ref_release(sl.ref);
        for (size_t pos = 0; pos < (size_t)sl.len;) { /* validated as the follower does */
            sm_batch_info_t b;
            CHECK_EQ(sm_batch_validate_stored(buf + pos, (size_t)sl.len - pos, &b, NULL), SM_OK);
            pos += (size_t)sm_batch_total_size(&b);
        }
        sm_append_info_t ai;
        CHECK_EQ(sm_log_append_replica(fol, buf, (size_t)sl.len, 1000, &ai), SM_OK);
        free(buf);
        off = sl.next_offset;
    }
    CHECK_EQ(sm_log_end_offset(fol), sm_log_end_offset(log));
    recs_t got = read_all(fol);
    CHECK(recs_equal(&want, &got, INT64_MIN, INT64_MAX));
    sm_log_close(fol);
    /* without its state file the follower recovers (validates) everything */
    snprintf(state, sizeof state, "%s/samsa-log-state", fdir);
    CHECK_EQ(unlink(state), 0);
    CHECK_EQ(sm_log_open(fdir, "follower", &c, &fol), SM_OK);
    recs_t again = read_all(fol);
    CHECK(recs_equal(&want, &again, INT64_MIN, INT64_MAX));
    CHECK_EQ(sm_log_end_offset(fol), sm_log_end_offset(log));
    sm_log_close(fol);
    sm_log_close(log);
    sm_offset_map_free(&map);
    free(want.v), free(got.v), free(again.v);
}

static void test_offset_map(void)
{
    sm_offset_map_t m;
    sm_offset_map_init(&m, 1000 * SM_OFFSET_MAP_SLOT_BYTES);
    CHECK_EQ(m.nslots, 1000);
    char k[32];
    for (int i = 0; i < 800; i++) {
        snprintf(k, sizeof k, "key-%d", i);
        CHECK(!sm_offset_map_full(&m));
        sm_offset_map_put(&m, k, strlen(k), i);
    }
    for (int i = 0; i < 800; i++) {
        snprintf(k, sizeof k, "key-%d", i);
        sm_offset_map_put(&m, k, strlen(k), 10000 + i); /* updates, no new slots */
    }
    CHECK_EQ(m.used, 800);
    for (int i = 0; i < 800; i++) {
        snprintf(k, sizeof k, "key-%d", i);
        CHECK_EQ(sm_offset_map_get(&m, k, strlen(k)), 10000 + i);
    }
    CHECK_EQ(sm_offset_map_get(&m, "nope", 4), -1);
    CHECK_EQ(sm_offset_map_get(&m, "", 0), -1);
    for (int i = 800; !sm_offset_map_full(&m); i++) {
        snprintf(k, sizeof k, "key-%d", i);
        sm_offset_map_put(&m, k, strlen(k), i);
    }
    CHECK_EQ(m.used, 900);
    CHECK_EQ(m.latest_offset, 10799);
    sm_offset_map_clear(&m);
    CHECK_EQ(m.used, 0);
    CHECK_EQ(sm_offset_map_get(&m, "key-1", 5), -1);
    sm_offset_map_free(&m);
}

/* The cleaner checkpoint lands in the log dir in Kafka's format and comes
 * back at the next open. */
static void test_checkpoint_file(void)
{
    char ld[512], dir[600], path[700];
    snprintf(ld, sizeof ld, "%s/ldir", root);
    snprintf(dir, sizeof dir, "%s/compacted-3", ld);
    sm_log_config_t c = small_config();
    sm_log_t *log;
    CHECK_EQ(sm_log_open(dir, "compacted-3", &c, &log), SM_OK);
    for (int i = 0; i < 80; i++)
        put(log, i % 7, "value-for-the-checkpoint-test", 1000 + i);
    sm_offset_map_t map;
    sm_offset_map_init(&map, 1 << 16);
    sm_clean_params_t p = params(5000);
    sm_clean_result_t res;
    CHECK_EQ(sm_log_clean(log, &map, &p, &res), SM_OK);
    int64_t co = sm_log_cleaner_offset(log);
    CHECK(co > 0);
    snprintf(path, sizeof path, "%s/cleaner-offset-checkpoint", ld);
    FILE *f = fopen(path, "r");
    CHECK(f != NULL);
    char want[128], got[256] = {0};
    snprintf(want, sizeof want, "0\n1\ncompacted 3 %" PRId64 "\n", co);
    if (f) {
        size_t n = fread(got, 1, sizeof got - 1, f);
        got[n] = '\0';
        fclose(f);
    }
    CHECK(strcmp(got, want) == 0);
    sm_log_close(log);
    CHECK_EQ(sm_log_open(dir, "compacted-3", &c, &log), SM_OK);
    CHECK_EQ(sm_log_cleaner_offset(log), co);
    sm_log_close(log);
    sm_offset_map_free(&map);
}

/* ------------------------------------------------------------ crashes */

/* Every mutating file operation counts; at the Nth the machine "stops":
 * that operation fails (a write lands half), every later one fails, and
 * afterwards the data written to each file since its last fdatasync/fsync
 * is cut off (the page cache is lost). */
typedef struct tracked {
    char path[600];
    int fd;
    int64_t synced;
    bool dirty;
} tracked_t;
static tracked_t tracked[256];
static int ntracked;
static long op_count, fail_at;
static bool crashed, faults;

static bool hit(void)
{
    if (!faults)
        return false;
    if (crashed)
        return true;
    if (++op_count == fail_at) {
        crashed = true;
        return true;
    }
    return false;
}
static tracked_t *by_fd(int fd)
{
    for (int i = ntracked - 1; i >= 0; i--)
        if (tracked[i].fd == fd)
            return &tracked[i];
    return NULL;
}
static int f_open(const char *path, int flags, mode_t m)
{
    bool writes = flags & (O_CREAT | O_WRONLY | O_RDWR | O_TRUNC);
    if (writes && hit()) {
        errno = EIO;
        return -1;
    }
    int fd = open(path, flags, m);
    if (fd >= 0 && faults && ntracked < 256) {
        tracked_t *t = &tracked[ntracked++];
        snprintf(t->path, sizeof t->path, "%s", path);
        t->fd = fd;
        struct stat st;
        t->synced = fstat(fd, &st) == 0 ? st.st_size : 0;
        t->dirty = (flags & O_TRUNC) != 0;
        if (flags & O_TRUNC)
            t->synced = 0;
    }
    return fd;
}
static int f_close(int fd)
{
    tracked_t *t = by_fd(fd);
    if (t)
        t->fd = -1;
    return close(fd);
}
static ssize_t f_pwrite(int fd, const void *buf, size_t n, off_t off)
{
    tracked_t *t = by_fd(fd);
    if (t)
        t->dirty = true;
    if (hit()) {
        if (op_count == fail_at && n > 1)
            (void)pwrite(fd, buf, n / 2, off); /* torn */
        errno = EIO;
        return -1;
    }
    return pwrite(fd, buf, n, off);
}
static int f_sync(int fd)
{
    if (hit()) {
        errno = EIO;
        return -1;
    }
    tracked_t *t = by_fd(fd);
    if (t) {
        struct stat st;
        if (fstat(fd, &st) == 0)
            t->synced = st.st_size;
        t->dirty = false;
    }
    return 0; /* durability is modelled above; a real fsync only costs time */
}
static int f_ftruncate(int fd, off_t len)
{
    tracked_t *t = by_fd(fd);
    if (t)
        t->dirty = true;
    if (hit()) {
        errno = EIO;
        return -1;
    }
    return ftruncate(fd, len);
}
static int f_rename(const char *a, const char *b)
{
    if (hit()) {
        errno = EIO;
        return -1;
    }
    int r = rename(a, b);
    if (r == 0)
        for (int i = 0; i < ntracked; i++)
            if (strcmp(tracked[i].path, a) == 0)
                snprintf(tracked[i].path, sizeof tracked[i].path, "%s", b);
    return r;
}
static int f_unlink(const char *p)
{
    if (hit()) {
        errno = EIO;
        return -1;
    }
    return unlink(p);
}
static sm_file_ops_t fault_ops;

static void faults_on(long at)
{
    fault_ops = *sm_file_os_ops();
    fault_ops.open = f_open;
    fault_ops.close = f_close;
    fault_ops.pwrite = f_pwrite;
    fault_ops.fdatasync = f_sync;
    fault_ops.fsync = f_sync;
    fault_ops.ftruncate = f_ftruncate;
    fault_ops.rename = f_rename;
    fault_ops.unlink = f_unlink;
    op_count = 0;
    fail_at = at;
    crashed = false;
    ntracked = 0;
    faults = true;
    sm_file_set_ops(&fault_ops);
}

/* Stop the faults; with a crash, drop what was not synced. */
static void faults_off(void)
{
    faults = false;
    sm_file_set_ops(NULL);
    if (!crashed)
        return;
    for (int i = 0; i < ntracked; i++) {
        if (!tracked[i].dirty)
            continue;
        struct stat st;
        if (stat(tracked[i].path, &st) == 0 && st.st_size > tracked[i].synced)
            (void)truncate(tracked[i].path, tracked[i].synced);
    }
}

static void copy_dir(const char *from, const char *to)
{
    sm_test_rm_rf(to);
    mkdir(to, 0755);
    DIR *d = opendir(from);
    struct dirent *de;
    while (d && (de = readdir(d))) {
        if (de->d_name[0] == '.')
            continue;
        char a[700], b[700];
        snprintf(a, sizeof a, "%s/%s", from, de->d_name);
        snprintf(b, sizeof b, "%s/%s", to, de->d_name);
        FILE *in = fopen(a, "rb"), *out = fopen(b, "wb");
        char buf[8192];
        size_t n;
        while (in && out && (n = fread(buf, 1, sizeof buf, in)) > 0)
            fwrite(buf, 1, n, out);
        if (in)
            fclose(in);
        if (out)
            fclose(out);
    }
    if (d)
        closedir(d);
}

static int count_suffix(const char *dir, const char *suffix)
{
    DIR *d = opendir(dir);
    int n = 0;
    struct dirent *de;
    while (d && (de = readdir(d))) {
        size_t l = strlen(de->d_name), s = strlen(suffix);
        n += l > s && strcmp(de->d_name + l - s, suffix) == 0;
    }
    if (d)
        closedir(d);
    return n;
}

/* group_bytes: the cleaned segments' size limit; above the log's 700
 * bytes, several old segments go into one cleaned segment. */
static void crash_at_every_operation(int64_t group_bytes)
{
    /* directories without a "-<partition>" name: no log dir registry, so
     * an abandoned log does not stay registered */
    char tmpl[512], ref[512], work[512];
    snprintf(tmpl, sizeof tmpl, "%s/crashtmpl", root);
    snprintf(ref, sizeof ref, "%s/crashref", root);
    snprintf(work, sizeof work, "%s/crashwork", root);
    sm_log_config_t c = small_config();
    c.segment_bytes = 700; /* many groups */
    sm_log_t *log;
    CHECK_EQ(sm_log_open(tmpl, "tmpl", &c, &log), SM_OK);
    generate(log, 3);
    CHECK_EQ(sm_log_flush(log), SM_OK);
    recs_t old = read_all(log);
    sm_log_close(log);

    /* the reference: the same cleaning without faults */
    copy_dir(tmpl, ref);
    CHECK_EQ(sm_log_open(ref, "ref", &c, &log), SM_OK);
    sm_offset_map_t map;
    sm_offset_map_init(&map, 1 << 20);
    sm_clean_params_t p = params(50000);
    p.segment_bytes = group_bytes;
    sm_clean_result_t res;
    CHECK_EQ(sm_log_clean(log, &map, &p, &res), SM_OK);
    CHECK(res.groups >= 3);
    if (group_bytes > 700)
        CHECK(res.segments_in > res.groups);
    recs_t neu = read_all(log);
    /* the groups: each cleaned segment replaced [its base, next base) */
    int64_t bounds[256];
    int nb = 0;
    {
        DIR *d = opendir(ref);
        struct dirent *de;
        while (d && (de = readdir(d))) {
            long long b;
            char sfx[16];
            if (sscanf(de->d_name, "%20lld.%15s", &b, sfx) == 2 && strcmp(sfx, "log") == 0 &&
                nb < 256)
                bounds[nb++] = b;
        }
        if (d)
            closedir(d);
        for (int i = 0; i < nb; i++) /* sort */
            for (int j = i + 1; j < nb; j++)
                if (bounds[j] < bounds[i]) {
                    int64_t t = bounds[i];
                    bounds[i] = bounds[j];
                    bounds[j] = t;
                }
    }
    check_cleaned(&old, &neu, res.end_offset, true);
    sm_log_close(log);
    char want[2000][24];
    latest_values(&old, want, 2000);

    int rounds = 0, mixed_groups = 0;
    bool finished = false;
    for (long n = 1; n < 2000 && !finished; n++) {
        copy_dir(tmpl, work);
        CHECK_EQ(sm_log_open(work, "work", &c, &log), SM_OK);
        faults_on(n);
        sm_err_t err = sm_log_clean(log, &map, &p, &res);
        bool crashed_now = crashed;
        faults_off();
        if (!crashed_now) { /* the round ran to the end: past every operation */
            CHECK_EQ(err, SM_OK);
            finished = true;
        }
        /* the crashed process is gone: its log object is abandoned (its
         * fds leak, as a dead process's would close) */
        sm_log_t *rec = NULL;
        CHECK_EQ(sm_log_open(work, "work", &c, &rec), SM_OK);
        if (!rec)
            break;
        recs_t got = read_all(rec);
        CHECK(got.ok);
        CHECK_EQ(got.end, old.end);
        /* per group: old content or new content */
        for (int g = 0; g < nb; g++) {
            int64_t lo = bounds[g], hi = g + 1 < nb ? bounds[g + 1] : INT64_MAX;
            bool is_old = recs_equal(&got, &old, lo, hi), is_new = recs_equal(&got, &neu, lo, hi);
            if (!is_old && !is_new)
                fprintf(stderr, "crash at op %ld: group [%" PRId64 ", %" PRId64
                        ") is neither old nor new\n", n, lo, hi);
            CHECK(is_old || is_new);
            mixed_groups += is_new && !is_old;
        }
        char have[2000][24];
        latest_values(&got, have, 2000);
        int bad = 0;
        for (int k = 0; k < 2000; k++)
            if (strcmp(have[k], want[k]) != 0 && bad++ < 3)
                fprintf(stderr, "  key %d: have '%s' want '%s'\n", k, have[k], want[k]);
        if (bad) {
            fprintf(stderr, "crash at op %ld: %d keys with another latest value\n", n, bad);
        }
        CHECK_EQ(bad, 0);
        CHECK_EQ(count_suffix(work, ".cleaned"), 0);
        CHECK_EQ(count_suffix(work, ".swap"), 0);
        CHECK_EQ(count_suffix(work, ".deleted"), 0);
        /* cleaning again reaches the reference state */
        sm_clean_params_t again = p;
        again.first_dirty = -1;
        CHECK_EQ(sm_log_clean(rec, &map, &again, &res), SM_OK);
        recs_t fin = read_all(rec);
        CHECK(recs_equal_ex(&fin, &neu, INT64_MIN, INT64_MAX, true));
        sm_log_close(rec);
        free(got.v);
        free(fin.v);
        rounds++;
        (void)log; /* abandoned */
    }
    CHECK(finished);
    CHECK(rounds > 50);
    CHECK(mixed_groups > 0); /* some crashes hit after a group was swapped */
    fprintf(stderr, "   %d crash points\n", rounds);
    sm_offset_map_free(&map);
    free(old.v);
    free(neu.v);
}

static void test_crash_at_every_operation(void)
{
    crash_at_every_operation(700);
}

static void test_crash_at_every_operation_merging_segments(void)
{
    crash_at_every_operation(2500);
}

int main(void)
{
    snprintf(root, sizeof root, "/tmp/samsa-test-cleaner-%d", (int)getpid());
    sm_test_rm_rf(root);
    mkdir(root, 0755);
    RUN(test_offset_map);
    RUN(test_clean_generated_log);
    RUN(test_producer_state_and_bounds);
    RUN(test_compressed_batches);
    RUN(test_small_map_cleans_in_passes);
    RUN(test_checkpoint_file);
    RUN(test_follower_copies_cleaned_log);
    RUN(test_crash_at_every_operation);
    RUN(test_crash_at_every_operation_merging_segments);
    sm_test_rm_rf(root);
    TEST_MAIN_END();
}
