/*
 * test_raft_files.c - the KRaft layer's durable files: the quorum-state file
 * (src/raft/quorum_state.h) and the KIP-630 snapshot file names
 * (src/raft/snapshot_name.h).
 *
 * quorum-state: the exact bytes Kafka writes for v0 and v1, files written by Kafka read
 * back, every kind of damage refused with the file, line and column named, the write
 * sequence (tmp, fdatasync, rename, directory fsync) checked operation by operation, and a
 * failure at each step leaving the previous state readable.
 */
#define _GNU_SOURCE /* memmem */
#include "file.h"
#include "quorum_state.h"
#include "snapshot_name.h"
#include "sm_test.h"
#include "sm_test_fs.h"
#include "uuid.h"

#include <fcntl.h>

static const sm_raft_fs_t real_fs = {sm_file_open,     sm_file_close, sm_file_pread,
                                     sm_file_pwrite,   sm_file_datasync, sm_file_size,
                                     sm_file_rename,   sm_file_sync_dir, sm_file_unlink};

/* ---------------------------------------------------------------- format */

static void test_format(void)
{
    sm_quorum_state_t s;
    sm_quorum_state_init(&s);
    CHECK_EQ(s.leader_id, -1);
    CHECK_EQ(s.voted_id, -1);
    CHECK_EQ(s.leader_epoch, 0);
    s.leader_id = 1;
    s.leader_epoch = 5;
    sm_wbuf_t w;
    sm_wbuf_init(&w);
    sm_quorum_state_format(&s, 1, &w);
    static const char v1[] = "{\"leaderId\":1,\"leaderEpoch\":5,\"votedId\":-1,"
                             "\"votedDirectoryId\":\"AAAAAAAAAAAAAAAAAAAAAA\",\"data_version\":1}";
    CHECK(w.len == strlen(v1) && memcmp(w.mem, v1, w.len) == 0);

    /* v0 with a null voter list, then with voters and a cluster id that needs escaping */
    sm_wbuf_reset(&w);
    sm_quorum_state_format(&s, 0, &w);
    static const char v0_null[] = "{\"clusterId\":\"\",\"leaderId\":1,\"leaderEpoch\":5,\"votedId\":-1,"
                                  "\"appliedOffset\":0,\"currentVoters\":null,\"data_version\":0}";
    CHECK(w.len == strlen(v0_null) && memcmp(w.mem, v0_null, w.len) == 0);
    int32_t voters[] = {1, 2, 3};
    s.current_voters = voters;
    s.current_voters_count = 3;
    s.cluster_id = "q\"c";
    s.voted_id = 2;
    sm_wbuf_reset(&w);
    sm_quorum_state_format(&s, 0, &w);
    static const char v0[] = "{\"clusterId\":\"q\\\"c\",\"leaderId\":1,\"leaderEpoch\":5,\"votedId\":2,"
                             "\"appliedOffset\":0,\"currentVoters\":[{\"voterId\":1},{\"voterId\":2},"
                             "{\"voterId\":3}],\"data_version\":0}";
    CHECK(w.len == strlen(v0) && memcmp(w.mem, v0, w.len) == 0);
    sm_wbuf_free(&w);
}

/* The Uuid text form agrees with src/meta/uuid.c's (Kafka's Uuid.toString). */
static void test_uuid_text(void)
{
    for (int i = 0; i < 200; i++) {
        sm_quorum_state_t s, r;
        sm_quorum_state_init(&s);
        sm_uuid_random(&s.voted_directory_id);
        if (i == 0)
            memset(s.voted_directory_id.b, 0xff, 16);
        s.voted_id = 3;
        s.leader_epoch = 9;
        sm_wbuf_t w;
        sm_wbuf_init(&w);
        sm_quorum_state_format(&s, 1, &w);
        char text[SM_UUID_STR_LEN + 1];
        sm_uuid_to_str(&s.voted_directory_id, text);
        char want[64];
        snprintf(want, sizeof want, "\"votedDirectoryId\":\"%s\"", text);
        CHECK(memmem(w.mem, w.len, want, strlen(want)) != NULL);
        char why[256];
        CHECK_EQ(sm_quorum_state_parse((const char *)w.mem, w.len, "x", &r, why, sizeof why), SM_OK);
        CHECK(memcmp(r.voted_directory_id.b, s.voted_directory_id.b, 16) == 0);
        sm_quorum_state_free(&r);
        sm_wbuf_free(&w);
    }
}

/* ---------------------------------------------------------------- parse */

static void test_parse_kafka_files(void)
{
    char why[256];
    sm_quorum_state_t s;
    /* as Kafka 3.7 wrote it */
    static const char v0[] = "{\"clusterId\":\"\",\"leaderId\":1,\"leaderEpoch\":2,\"votedId\":-1,"
                             "\"appliedOffset\":0,\"currentVoters\":[{\"voterId\":1},{\"voterId\":2},"
                             "{\"voterId\":3}],\"data_version\":0}";
    CHECK_EQ(sm_quorum_state_parse(v0, strlen(v0), "qs", &s, why, sizeof why), SM_OK);
    CHECK_EQ(s.data_version, 0);
    CHECK_EQ(s.leader_id, 1);
    CHECK_EQ(s.leader_epoch, 2);
    CHECK_EQ(s.voted_id, -1);
    CHECK(s.cluster_id && strcmp(s.cluster_id, "") == 0);
    CHECK_EQ(s.current_voters_count, 3);
    CHECK(s.current_voters_count == 3 && s.current_voters[2] == 3);
    sm_quorum_state_free(&s);
    CHECK(s.cluster_id == NULL && s.current_voters_count == -1);

    /* as Kafka 3.9 writes it, a candidate that voted for itself */
    static const char v1[] = "{\"leaderId\":-1,\"leaderEpoch\":7,\"votedId\":3,"
                             "\"votedDirectoryId\":\"x8TDhGyiT3qzWNgS2ojd9g\",\"data_version\":1}";
    CHECK_EQ(sm_quorum_state_parse(v1, strlen(v1), "qs", &s, why, sizeof why), SM_OK);
    CHECK_EQ(s.data_version, 1);
    CHECK_EQ(s.leader_id, -1);
    CHECK_EQ(s.leader_epoch, 7);
    CHECK_EQ(s.voted_id, 3);
    sm_uuid_t want;
    CHECK_EQ(sm_uuid_parse("x8TDhGyiT3qzWNgS2ojd9g", 22, &want), SM_OK);
    CHECK(memcmp(s.voted_directory_id.b, want.b, 16) == 0);
    sm_quorum_state_free(&s);

    /* pretty-printed, members in another order, unknown members ignored */
    static const char pretty[] = "{\n  \"data_version\": 1,\n  \"votedId\": -1,\n  \"extra\": [1, {}],\n"
                                 "  \"leaderEpoch\": 0,\n  \"leaderId\": -1,\n"
                                 "  \"votedDirectoryId\": \"AAAAAAAAAAAAAAAAAAAAAA\"\n}\n";
    CHECK_EQ(sm_quorum_state_parse(pretty, strlen(pretty), "qs", &s, why, sizeof why), SM_OK);
    CHECK_EQ(s.leader_epoch, 0);
    sm_quorum_state_free(&s);
    /* v1 files may carry v0's members (ignored), and v0 null voters */
    static const char mixed[] = "{\"clusterId\":\"x\",\"leaderId\":2,\"leaderEpoch\":3,\"votedId\":-1,"
                                "\"votedDirectoryId\":\"AAAAAAAAAAAAAAAAAAAAAA\",\"currentVoters\":7,"
                                "\"data_version\":1}";
    CHECK_EQ(sm_quorum_state_parse(mixed, strlen(mixed), "qs", &s, why, sizeof why), SM_OK);
    CHECK(s.cluster_id == NULL);
    sm_quorum_state_free(&s);
    static const char null_voters[] = "{\"clusterId\":\"\",\"leaderId\":-1,\"leaderEpoch\":0,"
                                      "\"votedId\":-1,\"appliedOffset\":0,\"currentVoters\":null,"
                                      "\"data_version\":0}";
    CHECK_EQ(sm_quorum_state_parse(null_voters, strlen(null_voters), "qs", &s, why, sizeof why), SM_OK);
    CHECK_EQ(s.current_voters_count, -1);
    sm_quorum_state_free(&s);
}

typedef struct {
    const char *text;
    const char *why; /* the whole expected message after "qs: " */
} bad_state_t;

static void test_parse_refused(void)
{
    static const bad_state_t bad[] = {
        {"", "line 1, column 1: not valid JSON: expected a value, found end of input"},
        {"{\"leaderId\":1,", "line 1, column 15: not valid JSON: expected a member name (a string), "
                         "found end of input"},
        {"[]", "line 1, column 1: expected a JSON object, found an array"},
        {"{}", "line 1, column 1: missing field \"data_version\""},
        {"{\"data_version\":2}", "line 1, column 17: unknown data_version 2 (this build reads 0 and 1)"},
        {"{\"data_version\":\"1\"}", "line 1, column 17: field \"data_version\" must be an integer, not a "
                                   "string"},
        {"{\"data_version\":1.5}", "line 1, column 17: field \"data_version\" must be an integer"},
        {"{\"data_version\":1,\"leaderId\":1,\"leaderEpoch\":2,\"votedId\":-1}",
         "line 1, column 1: missing field \"votedDirectoryId\" (required in data_version 1)"},
        {"{\"data_version\":1,\"leaderId\":1,\"votedId\":-1,\"votedDirectoryId\":\"AAAAAAAAAAAAAAAAAAAAAA\"}",
         "line 1, column 1: missing field \"leaderEpoch\" (required in data_version 1)"},
        {"{\"data_version\":1,\"leaderId\":1,\"leaderEpoch\":-1,\"votedId\":-1}",
         "line 1, column 46: field \"leaderEpoch\" is -1, outside [0, 2147483647]"},
        {"{\"data_version\":1,\"leaderId\":2147483648,\"leaderEpoch\":1,\"votedId\":-1}",
         "line 1, column 30: field \"leaderId\" is 2147483648, outside [-1, 2147483647]"},
        {"{\"data_version\":1,\"leaderId\":-2,\"leaderEpoch\":1,\"votedId\":-1}",
         "line 1, column 30: field \"leaderId\" is -2, outside [-1, 2147483647]"},
        {"{\"data_version\":1,\"leaderId\":1,\"leaderEpoch\":1,\"votedId\":null}",
         "line 1, column 58: field \"votedId\" must be an integer, not a null"},
        {"{\"data_version\":1,\"leaderId\":1,\"leaderEpoch\":1,\"votedId\":-1,\"votedDirectoryId\":\"AAAA\"}",
         "line 1, column 80: field \"votedDirectoryId\" is not a Kafka Uuid (22 characters of URL-safe "
         "base64)"},
        {"{\"data_version\":1,\"leaderId\":1,\"leaderId\":2,\"leaderEpoch\":1,\"votedId\":-1}",
         "line 1, column 43: field \"leaderId\" appears twice"},
        {"{\"data_version\":0,\"clusterId\":\"\",\"leaderId\":1,\"leaderEpoch\":1,\"votedId\":-1,"
         "\"appliedOffset\":0}",
         "line 1, column 1: missing field \"currentVoters\" (required in data_version 0)"},
        {"{\"data_version\":0,\"leaderId\":1,\"leaderEpoch\":1,\"votedId\":-1,\"appliedOffset\":0,"
         "\"currentVoters\":[]}",
         "line 1, column 1: missing field \"clusterId\" (required in data_version 0)"},
        {"{\"data_version\":0,\"clusterId\":\"\",\"leaderId\":1,\"leaderEpoch\":1,\"votedId\":-1,"
         "\"appliedOffset\":0,\"currentVoters\":[1]}",
         "line 1, column 111: each of \"currentVoters\" must be an object, not a number"},
        {"{\"data_version\":0,\"clusterId\":\"\",\"leaderId\":1,\"leaderEpoch\":1,\"votedId\":-1,"
         "\"appliedOffset\":0,\"currentVoters\":[{\"id\":1}]}",
         "line 1, column 111: missing field \"voterId\" (required in data_version 0)"},
        {"{\"data_version\":0,\"clusterId\":\"\",\"leaderId\":1,\"leaderEpoch\":1,\"votedId\":-1,"
         "\"appliedOffset\":0,\"currentVoters\":{}}",
         "line 1, column 110: field \"currentVoters\" must be an array or null, not an object"},
        {"{\n\"data_version\":1,\n\"leaderId\":1,\n\"leaderEpoch\":1 x\n}",
         "line 4, column 17: not valid JSON: expected ',' or '}' in an object, found 'x'"},
    };
    for (size_t i = 0; i < SM_ARRAY_LEN(bad); i++) {
        sm_quorum_state_t s;
        char why[256], want[300];
        snprintf(want, sizeof want, "qs: %s", bad[i].why);
        sm_err_t rc = sm_quorum_state_parse(bad[i].text, strlen(bad[i].text), "qs", &s, why, sizeof why);
        bool ok = rc == SM_ERR_CORRUPT && strcmp(why, want) == 0;
        if (!ok)
            fprintf(stderr, "   %zu: rc %d\n     got  %s\n     want %s\n", i, rc, why, want);
        CHECK(ok);
        CHECK(s.cluster_id == NULL && s.current_voters == NULL); /* nothing leaks */
    }
    /* a message cut to a small buffer stays NUL-terminated */
    sm_quorum_state_t s;
    char tiny[12];
    CHECK_EQ(sm_quorum_state_parse("{}", 2, "quorum-state", &s, tiny, sizeof tiny), SM_ERR_CORRUPT);
    CHECK(strlen(tiny) == sizeof tiny - 1);
    /* too big */
    size_t big = SM_QUORUM_STATE_MAX_BYTES + 1;
    char *huge = malloc(big);
    memset(huge, ' ', big);
    char why[256];
    CHECK_EQ(sm_quorum_state_parse(huge, big, "qs", &s, why, sizeof why), SM_ERR_CORRUPT);
    CHECK(strstr(why, "more than") != NULL);
    free(huge);
}

/* ---------------------------------------------------------------- files */

/* A file-system table that records every operation and can fail the Nth. */
static char oplog[1024];
static int op_count, fail_at = -1;

static bool step(const char *what, const char *path)
{
    const char *base = path ? strrchr(path, '/') : NULL;
    size_t n = strlen(oplog);
    snprintf(oplog + n, sizeof oplog - n, "%s%s%s%s", n ? " " : "", what, base ? ":" : "",
             base ? base + 1 : "");
    return op_count++ == fail_at;
}
static sm_err_t rec_open(const char *path, int flags, int *fd)
{
    if (step((flags & O_ACCMODE) == O_RDONLY ? "open-r" : "open-w", path))
        return SM_ERR_IO;
    return sm_file_open(path, flags, fd);
}
static void rec_close(int fd)
{
    (void)step("close", NULL);
    sm_file_close(fd);
}
static sm_err_t rec_pread(int fd, void *b, size_t n, int64_t off, size_t *got)
{
    return step("pread", NULL) ? SM_ERR_IO : sm_file_pread(fd, b, n, off, got);
}
static sm_err_t rec_pwrite(int fd, const void *b, size_t n, int64_t off)
{
    if (step("pwrite", NULL)) {
        sm_err_t torn = sm_file_pwrite(fd, b, n / 2, off); /* half of it lands */
        (void)torn;
        return SM_ERR_NOSPC;
    }
    return sm_file_pwrite(fd, b, n, off);
}
static sm_err_t rec_datasync(int fd) { return step("datasync", NULL) ? SM_ERR_IO : sm_file_datasync(fd); }
static sm_err_t rec_size(int fd, int64_t *size) { return step("size", NULL) ? SM_ERR_IO : sm_file_size(fd, size); }
static sm_err_t rec_rename(const char *from, const char *to)
{
    return step("rename", from) ? SM_ERR_IO : sm_file_rename(from, to);
}
static sm_err_t rec_sync_dir(const char *path) { return step("syncdir", NULL) ? SM_ERR_IO : sm_file_sync_dir(path); }
static sm_err_t rec_unlink(const char *path) { return step("unlink", path) ? SM_ERR_IO : sm_file_unlink(path); }
static const sm_raft_fs_t rec_fs = {rec_open,     rec_close, rec_pread,  rec_pwrite,  rec_datasync,
                                    rec_size,     rec_rename, rec_sync_dir, rec_unlink};

static void reset_ops(int fail)
{
    oplog[0] = '\0';
    op_count = 0;
    fail_at = fail;
}

static bool exists(const char *dir, const char *name)
{
    char p[512];
    snprintf(p, sizeof p, "%s/%s", dir, name);
    return access(p, F_OK) == 0;
}

static void test_files(void)
{
    char dir[] = "/tmp/samsa-test-raft-XXXXXX";
    CHECK(mkdtemp(dir) != NULL);
    char why[512];
    sm_quorum_state_t s, r;

    /* a new voter has no file */
    CHECK_EQ(sm_quorum_state_read(&real_fs, dir, &r, why, sizeof why), SM_ERR_NOT_FOUND);
    CHECK_EQ(r.leader_epoch, 0);

    /* write v1: exactly the write sequence of the header */
    sm_quorum_state_init(&s);
    s.leader_epoch = 3;
    s.voted_id = 2;
    s.voted_directory_id.b[0] = 0xfb;
    reset_ops(-1);
    CHECK_EQ(sm_quorum_state_write(&rec_fs, dir, &s, 1), SM_OK);
    CHECK(strcmp(oplog, "open-w:quorum-state.tmp pwrite datasync close rename:quorum-state.tmp "
                        "syncdir") == 0);
    if (strcmp(oplog, "open-w:quorum-state.tmp pwrite datasync close rename:quorum-state.tmp syncdir"))
        fprintf(stderr, "   ops: %s\n", oplog);
    CHECK(!exists(dir, "quorum-state.tmp"));
    CHECK_EQ(sm_quorum_state_read(&real_fs, dir, &r, why, sizeof why), SM_OK);
    CHECK(r.data_version == 1 && r.leader_epoch == 3 && r.voted_id == 2 && r.leader_id == -1 &&
          r.voted_directory_id.b[0] == 0xfb);
    sm_quorum_state_free(&r);

    /* a failure at each step of the next write leaves the previous state readable, and
     * no tmp file behind when the failure came before the rename */
    sm_quorum_state_t next = s;
    next.leader_epoch = 4;
    next.voted_id = -1;
    next.leader_id = 1;
    for (int f = 0; f < 6; f++) {
        reset_ops(f);
        sm_err_t rc = sm_quorum_state_write(&rec_fs, dir, &next, 1);
        bool renamed = f >= 5; /* ops: open pwrite datasync close rename syncdir */
        CHECK(f == 3 ? rc == SM_OK : rc != SM_OK); /* close cannot fail */
        CHECK(!exists(dir, "quorum-state.tmp"));
        CHECK_EQ(sm_quorum_state_read(&real_fs, dir, &r, why, sizeof why), SM_OK);
        CHECK_EQ(r.leader_epoch, renamed || f == 3 ? 4 : 3);
        sm_quorum_state_free(&r);
        /* put the old state back */
        CHECK_EQ(sm_quorum_state_write(&real_fs, dir, &s, 1), SM_OK);
    }

    /* a tmp file left by a crash is ignored by readers and replaced by the next write */
    char p[512];
    snprintf(p, sizeof p, "%s/quorum-state.tmp", dir);
    FILE *f = fopen(p, "w");
    fputs("{\"half", f);
    fclose(f);
    CHECK_EQ(sm_quorum_state_read(&real_fs, dir, &r, why, sizeof why), SM_OK);
    CHECK_EQ(r.leader_epoch, 3);
    sm_quorum_state_free(&r);
    CHECK_EQ(sm_quorum_state_write(&real_fs, dir, &next, 1), SM_OK);
    CHECK(!exists(dir, "quorum-state.tmp"));

    /* v0 when asked, read back as v0 */
    int32_t voters[] = {1, 2, 3};
    next.current_voters = voters;
    next.current_voters_count = 3;
    CHECK_EQ(sm_quorum_state_write(&real_fs, dir, &next, 0), SM_OK);
    CHECK_EQ(sm_quorum_state_read(&real_fs, dir, &r, why, sizeof why), SM_OK);
    CHECK(r.data_version == 0 && r.leader_epoch == 4 && r.current_voters_count == 3 &&
          r.current_voters[1] == 2 && r.cluster_id && r.cluster_id[0] == 0);
    sm_quorum_state_free(&r);

    /* damage on disk: the error names the file, line and column */
    snprintf(p, sizeof p, "%s/quorum-state", dir);
    f = fopen(p, "w");
    fputs("{\"leaderId\":1,\n\"leaderEpoch\":x}", f);
    fclose(f);
    CHECK_EQ(sm_quorum_state_read(&real_fs, dir, &r, why, sizeof why), SM_ERR_CORRUPT);
    char want[600];
    snprintf(want, sizeof want, "%s: line 2, column 15: not valid JSON: expected a value, found 'x'", p);
    CHECK(strcmp(why, want) == 0);
    if (strcmp(why, want))
        fprintf(stderr, "   got %s\n", why);
    /* an empty file (e.g. a crash of a writer that does not sync) */
    f = fopen(p, "w");
    fclose(f);
    CHECK_EQ(sm_quorum_state_read(&real_fs, dir, &r, why, sizeof why), SM_ERR_CORRUPT);
    CHECK(strstr(why, "line 1, column 1: not valid JSON") != NULL);
    /* I/O errors reading pass through */
    reset_ops(1); /* open-r, size */
    CHECK_EQ(sm_quorum_state_read(&rec_fs, dir, &r, why, sizeof why), SM_ERR_IO);
    CHECK(strcmp(oplog, "open-r:quorum-state size close") == 0);

    sm_test_rm_rf(dir);
}

/* ---------------------------------------------------------------- snapshot names */

static void test_snapshot_names(void)
{
    char buf[SM_SNAPSHOT_NAME_MAX + 32];
    sm_snapshot_id_t id = {12345, 7}, got;
    sm_snapshot_kind_t kind;
    CHECK_EQ(sm_snapshot_name_format(buf, sizeof buf, id, SM_SNAPSHOT_COMPLETE, NULL), 42);
    CHECK(strcmp(buf, "00000000000000012345-0000000007.checkpoint") == 0);
    CHECK(sm_snapshot_name_parse(buf, &got, &kind));
    CHECK(got.end_offset == 12345 && got.epoch == 7 && kind == SM_SNAPSHOT_COMPLETE);
    CHECK(sm_snapshot_name_format(buf, sizeof buf, id, SM_SNAPSHOT_DELETED, "ignored") > 0);
    CHECK(strcmp(buf, "00000000000000012345-0000000007.checkpoint.deleted") == 0);
    CHECK(sm_snapshot_name_parse(buf, &got, &kind) && kind == SM_SNAPSHOT_DELETED);
    CHECK_EQ(strlen(buf) + 1, SM_SNAPSHOT_NAME_MAX);
    CHECK(sm_snapshot_name_format(buf, sizeof buf, id, SM_SNAPSHOT_PARTIAL, NULL) > 0);
    CHECK(strcmp(buf, "00000000000000012345-0000000007.checkpoint.part") == 0);
    CHECK(sm_snapshot_name_parse(buf, &got, &kind) && kind == SM_SNAPSHOT_PARTIAL);
    CHECK(sm_snapshot_name_format(buf, sizeof buf, id, SM_SNAPSHOT_PARTIAL, "42") > 0);
    CHECK(strcmp(buf, "00000000000000012345-0000000007-42.checkpoint.part") == 0);
    /* Kafka's temporary files: Files.createTempFile(dir, "<id>-", ".checkpoint.part") */
    CHECK(sm_snapshot_name_parse("00000000000000000100-0000000004-8812937736491982131.checkpoint.part",
                                 &got, &kind));
    CHECK(got.end_offset == 100 && got.epoch == 4 && kind == SM_SNAPSHOT_PARTIAL);
    /* extremes */
    sm_snapshot_id_t max = {INT64_MAX, INT32_MAX};
    CHECK(sm_snapshot_name_format(buf, sizeof buf, max, SM_SNAPSHOT_COMPLETE, NULL) > 0);
    CHECK(strcmp(buf, "09223372036854775807-2147483647.checkpoint") == 0);
    CHECK(sm_snapshot_name_parse(buf, &got, &kind) && got.end_offset == INT64_MAX &&
          got.epoch == INT32_MAX);
    sm_snapshot_id_t zero = {0, 0};
    CHECK(sm_snapshot_name_format(buf, sizeof buf, zero, SM_SNAPSHOT_COMPLETE, NULL) > 0);
    CHECK(strcmp(buf, "00000000000000000000-0000000000.checkpoint") == 0);
    /* refused to format */
    sm_snapshot_id_t neg = {-1, 0}, neg_epoch = {0, -1};
    CHECK_EQ(sm_snapshot_name_format(buf, sizeof buf, neg, SM_SNAPSHOT_COMPLETE, NULL), 0);
    CHECK_EQ(sm_snapshot_name_format(buf, sizeof buf, neg_epoch, SM_SNAPSHOT_COMPLETE, NULL), 0);
    CHECK_EQ(sm_snapshot_name_format(buf, 42, id, SM_SNAPSHOT_COMPLETE, NULL), 0); /* no room */
    CHECK_EQ(sm_snapshot_name_format(buf, 43, id, SM_SNAPSHOT_COMPLETE, NULL), 42);
    /* not snapshot names */
    static const char *const no[] = {
        "00000000000000012345.log",
        "quorum-state",
        "leader-epoch-checkpoint",
        ".checkpoint",
        "0000000000000012345-0000000007.checkpoint",     /* 19 digits */
        "000000000000000012345-0000000007.checkpoint",   /* 21 digits */
        "00000000000000012345-000000007.checkpoint",     /* 9-digit epoch */
        "00000000000000012345_0000000007.checkpoint",
        "0000000000000001234a-0000000007.checkpoint",
        "+0000000000000012345-0000000007.checkpoint",
        "00000000000000012345-+000000007.checkpoint",
        "00000000000000012345-0000000007-x.checkpoint",  /* extra part: only partial files */
        "00000000000000012345-0000000007x.checkpoint.part",
        "00000000000000012345-0000000007.checkpoint.tmp",
        "00000000000000012345-0000000007.checkpointx",
        "99999999999999999999-0000000007.checkpoint",    /* offset > int64 */
        "00000000000000012345-2147483648.checkpoint",    /* epoch > int32 */
        "00000000000000012345-0000000007.checkpoint.deleted.part.x",
    };
    for (size_t i = 0; i < SM_ARRAY_LEN(no); i++) {
        bool parsed = sm_snapshot_name_parse(no[i], &got, &kind);
        if (parsed)
            fprintf(stderr, "   accepted %s\n", no[i]);
        CHECK(!parsed);
    }
}

int main(void)
{
    RUN(test_format);
    RUN(test_uuid_text);
    RUN(test_parse_kafka_files);
    RUN(test_parse_refused);
    RUN(test_files);
    RUN(test_snapshot_names);
    TEST_MAIN_END();
}
