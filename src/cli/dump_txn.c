/*
 * dump_txn.c - `samsa dump-log` for the transaction files of a partition
 * directory: the aborted-transaction index (.txnindex) and producer state
 * snapshots (.snapshot).
 *
 * .txnindex (storage/log.h): 34-byte entries, big-endian: int16 version (0),
 * int64 producerId, int64 firstOffset, int64 lastOffset, int64
 * lastStableOffset; one per ABORT marker in the segment. Printed one line
 * per entry as Kafka's kafka-dump-log does.
 *
 * .snapshot (partition/producer_state.h): int16 version (1), uint32
 * CRC-32C of everything after it, int32 count, then per producer int64
 * producerId, int16 epoch, int32 lastSequence, int64 lastOffset, int32
 * offsetDelta, int64 timestamp, int32 coordinatorEpoch, int64
 * currentTxnFirstOffset (46 bytes). The CRC and the count are checked.
 *
 * Files are small (a few entries per producer or aborted transaction), so
 * each is read whole, up to a bound. Problems go to the caller's callback
 * with their file position. Main thread only.
 */
#include "buf.h"
#include "cli.h"
#include "crc32c.h"
#include "dump_decode.h"

#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define TXNINDEX_ENTRY 34
#define SNAPSHOT_HEADER 10
#define SNAPSHOT_ENTRY 46
#define TXN_FILE_MAX (256 << 20)

/* The whole file into a malloc'd buffer; NULL (problem reported) when it
 * is too large or unreadable. */
static uint8_t *read_all(int fd, int64_t size, cli_dump_problem_fn problem, void *arg)
{
    if (size > TXN_FILE_MAX) {
        problem(arg, 0, "file larger than 256MB; not read");
        return NULL;
    }
    uint8_t *buf = sm_xmalloc((size_t)size + 1);
    size_t got = 0;
    while (got < (size_t)size) {
        ssize_t k = pread(fd, buf + got, (size_t)size - got, (off_t)got);
        if (k < 0 && errno == EINTR)
            continue;
        if (k <= 0) {
            problem(arg, (int64_t)got, k < 0 ? strerror(errno) : "file shrank while read");
            free(buf);
            return NULL;
        }
        got += (size_t)k;
    }
    return buf;
}

void cli_dump_txnindex(cli_json_t *j, int fd, int64_t size, cli_dump_problem_fn problem,
                       void *arg)
{
    uint8_t *buf = read_all(fd, size, problem, arg);
    if (j) {
        cli_json_key(j, "aborted_transactions");
        cli_json_arr_begin(j);
    }
    if (buf) {
        sm_rd_t r;
        sm_rd_init(&r, buf, (size_t)size);
        int64_t pos = 0;
        for (; size - pos >= TXNINDEX_ENTRY; pos += TXNINDEX_ENTRY) {
            int16_t version = sm_rd_i16(&r);
            int64_t pid = sm_rd_i64(&r), first = sm_rd_i64(&r), last = sm_rd_i64(&r),
                    lso = sm_rd_i64(&r);
            if (j) {
                cli_json_obj_begin(j);
                cli_json_kint(j, "version", version);
                cli_json_kint(j, "producer_id", pid);
                cli_json_kint(j, "first_offset", first);
                cli_json_kint(j, "last_offset", last);
                cli_json_kint(j, "last_stable_offset", lso);
                cli_json_obj_end(j);
            } else {
                printf("version: %d producerId: %" PRId64 " firstOffset: %" PRId64
                       " lastOffset: %" PRId64 " lastStableOffset: %" PRId64 "\n",
                       version, pid, first, last, lso);
            }
            if (version != 0)
                problem(arg, pos, "unknown entry version");
            else if (first > last)
                problem(arg, pos, "first offset past last offset");
        }
        if (pos < size)
            problem(arg, pos, "torn entry at the end (the file is not a multiple of 34 bytes)");
    }
    if (j)
        cli_json_arr_end(j);
    free(buf);
}

void cli_dump_snapshot(cli_json_t *j, int fd, int64_t size, cli_dump_problem_fn problem,
                       void *arg)
{
    uint8_t *buf = read_all(fd, size, problem, arg);
    if (!buf)
        return;
    if (size < SNAPSHOT_HEADER) {
        problem(arg, 0, "shorter than a snapshot header (10 bytes)");
        free(buf);
        return;
    }
    sm_rd_t r;
    sm_rd_init(&r, buf, (size_t)size);
    int16_t version = sm_rd_i16(&r);
    uint32_t crc = sm_rd_u32(&r);
    int32_t count = sm_rd_i32(&r);
    uint32_t actual = sm_crc32c(0, buf + 6, (size_t)size - 6);
    bool crc_ok = crc == actual;
    if (j) {
        cli_json_kint(j, "version", version);
        cli_json_kint(j, "crc", crc);
        cli_json_kbool(j, "crc_valid", crc_ok);
        cli_json_kint(j, "count", count);
        cli_json_key(j, "producers");
        cli_json_arr_begin(j);
    } else {
        printf("version: %d crc: %u crcValid: %s count: %d\n", version, crc,
               crc_ok ? "true" : "false", count);
    }
    if (version != 1)
        problem(arg, 0, "unknown snapshot version");
    if (!crc_ok)
        problem(arg, 2, "CRC-32C mismatch");
    int64_t pos = SNAPSHOT_HEADER;
    int32_t n = 0;
    for (; size - pos >= SNAPSHOT_ENTRY; pos += SNAPSHOT_ENTRY, n++) {
        int64_t pid = sm_rd_i64(&r);
        int16_t epoch = sm_rd_i16(&r);
        int32_t last_seq = sm_rd_i32(&r);
        int64_t last_off = sm_rd_i64(&r);
        int32_t delta = sm_rd_i32(&r);
        int64_t ts = sm_rd_i64(&r);
        int32_t cepoch = sm_rd_i32(&r);
        int64_t txn_first = sm_rd_i64(&r);
        if (j) {
            cli_json_obj_begin(j);
            cli_json_kint(j, "producer_id", pid);
            cli_json_kint(j, "producer_epoch", epoch);
            cli_json_kint(j, "last_sequence", last_seq);
            cli_json_kint(j, "last_offset", last_off);
            cli_json_kint(j, "offset_delta", delta);
            cli_json_kint(j, "last_timestamp", ts);
            cli_json_kint(j, "coordinator_epoch", cepoch);
            cli_json_kint(j, "current_txn_first_offset", txn_first);
            cli_json_obj_end(j);
        } else {
            printf("producerId: %" PRId64 " producerEpoch: %d coordinatorEpoch: %d "
                   "currentTxnFirstOffset: %" PRId64 " lastTimestamp: %" PRId64
                   " lastSequence: %d lastOffset: %" PRId64 " offsetDelta: %d\n",
                   pid, epoch, cepoch, txn_first, ts, last_seq, last_off, delta);
        }
    }
    if (j)
        cli_json_arr_end(j);
    if (pos < size)
        problem(arg, pos, "torn entry at the end (entries are 46 bytes)");
    if (n != count)
        problem(arg, 6, "count says another number of producers than the file holds");
    free(buf);
}
