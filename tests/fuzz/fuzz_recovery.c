/*
 * fuzz_recovery.c - libFuzzer target for segment loading and crash recovery.
 *
 * Input: the bytes of a partition's first segment file. They are written as
 * <tmp>/fuzz-0/00000000000000000000.log (no state file, so the whole segment
 * is recovered), the log is opened, every offset is read back, one batch is
 * appended, the log is closed and reopened cleanly, then destroyed.
 * Oracle, besides the sanitizers: recovery keeps exactly a prefix of whole
 * valid batches (every slice re-validates and covers the offset asked for),
 * the append gets the old end offset, and the clean reopen agrees.
 * Built with clang -fsanitize=fuzzer and, with any compiler, as
 * fuzz_recovery_replay that replays tests/fuzz/corpus/recovery in ctest.
 */
#define _GNU_SOURCE
#include "batch.h"
#include "../core/log.h"
#include "storage/file.h"
#include "storage/log.h"

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

static void must(bool cond, const char *what)
{
    if (!cond) {
        fprintf(stderr, "fuzz_recovery: %s\n", what);
        abort();
    }
}

static char tmp_root[64];
static sm_file_ops_t fast_ops;

/* Durability is not under test here; skipping fsync makes runs ~100x faster. */
static int no_sync(int fd)
{
    (void)fd;
    return 0;
}

static void setup_once(void)
{
    if (tmp_root[0])
        return;
    snprintf(tmp_root, sizeof tmp_root, "/tmp/samsa-fuzz-recovery-XXXXXX");
    must(mkdtemp(tmp_root) != NULL, "mkdtemp");
    sm_log_set_level(SM_LOG_ERROR); /* recovery warns on every bad input */
    fast_ops = *sm_file_os_ops();
    fast_ops.fsync = no_sync;
    fast_ops.fdatasync = no_sync;
    sm_file_set_ops(&fast_ops);
}

/* Re-read and validate the slice; returns its last offset. */
static int64_t check_slice(const sm_log_slice_t *s, int64_t offset)
{
    uint8_t *buf = malloc((size_t)s->len);
    must(pread(s->fd, buf, (size_t)s->len, s->file_pos) == s->len, "slice pread");
    int nb;
    int32_t nr;
    const char *why;
    must(sm_batches_validate(buf, (size_t)s->len, &nb, &nr, &why) == SM_OK, "slice invalid");
    sm_batch_info_t b;
    must(sm_batch_header_parse(buf, (size_t)s->len, &b) == SM_OK, "slice header");
    must(b.base_offset <= offset && sm_batch_last_offset(&b) >= offset, "slice misses offset");
    size_t pos = 0;
    int64_t last = -1;
    while (pos < (size_t)s->len) {
        must(sm_batch_header_parse(buf + pos, s->len - pos, &b) == SM_OK, "slice walk");
        last = sm_batch_last_offset(&b);
        pos += (size_t)sm_batch_total_size(&b);
    }
    free(buf);
    return last;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    setup_once();
    char dir[128], path[192];
    snprintf(dir, sizeof dir, "%s/fuzz-0", tmp_root);
    mkdir(dir, 0755);
    snprintf(path, sizeof path, "%s/00000000000000000000.log", dir);
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    must(fd >= 0, "create segment");
    must(write(fd, data, size) == (ssize_t)size, "write segment");
    close(fd);

    sm_log_config_t cfg;
    sm_log_config_default(&cfg);
    cfg.index_interval_bytes = 64; /* many index entries from small inputs */
    sm_log_t *log;
    must(sm_log_open(dir, "fuzz-0", &cfg, &log) == SM_OK, "open");
    int64_t end = sm_log_end_offset(log);
    must(sm_log_start_offset(log) == 0 && end >= 0, "offsets");
    for (int64_t off = 0; off < end;) {
        sm_log_slice_t s;
        must(sm_log_read(log, off, INT64_MAX, 1 << 20, true, &s) == SM_OK, "read");
        must(s.len > 0, "empty slice inside the log");
        off = check_slice(&s, off) + 1;
        sm_ref_release(s.ref);
    }

    sm_wbuf_t w;
    sm_wbuf_init(&w);
    sm_record_in_t rec = {.key = "k", .key_len = 1, .value = "v", .value_len = 1, .timestamp = 1};
    sm_batch_params_t bp = {.leader_epoch = -1, .producer_id = -1, .producer_epoch = -1,
                            .base_sequence = -1};
    sm_batch_encode(&w, &bp, &rec, 1);
    sm_append_info_t ai;
    must(sm_log_append(log, w.mem, w.len, 0, 1000, &ai) == SM_OK, "append");
    must(ai.base_offset == end, "append offset");
    sm_wbuf_free(&w);
    sm_log_close(log);

    must(sm_log_open(dir, "fuzz-0", &cfg, &log) == SM_OK, "reopen");
    must(sm_log_end_offset(log) == end + 1, "reopen end offset");
    must(sm_log_destroy(log) == SM_OK, "destroy");
    return 0;
}
