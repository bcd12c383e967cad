/*
 * producer_state.c - producer ids, sequences and transactions of one
 * partition (see producer_state.h for the rules and the snapshot format).
 */
#include "producer_state.h"
#include "buf.h"
#include "crc32c.h"
#include "file.h"
#include "log.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define SNAPSHOT_VERSION 1
#define SNAPSHOT_ENTRY_BYTES (8 + 2 + 4 + 8 + 4 + 8 + 4 + 8)
#define SNAPSHOT_MAX_BYTES ((size_t)256 << 20)

void sm_pstate_init(sm_pstate_t *ps)
{
    memset(ps, 0, sizeof *ps);
    sm_hmap_init(&ps->producers);
}

static void free_producers(sm_pstate_t *ps)
{
    for (sm_hmap_entry_t *e = NULL; (e = sm_hmap_next(&ps->producers, e));)
        free(e->value);
    sm_hmap_free(&ps->producers);
    sm_hmap_init(&ps->producers);
}

void sm_pstate_free(sm_pstate_t *ps)
{
    free_producers(ps);
    sm_hmap_free(&ps->producers);
    free(ps->open);
    free(ps->unrepl);
    memset(ps, 0, sizeof *ps);
}

void sm_pstate_reset(sm_pstate_t *ps, int64_t offset)
{
    free_producers(ps);
    ps->nopen = 0;
    ps->nunrepl = 0;
    ps->end_offset = offset;
}

sm_producer_t *sm_pstate_get(const sm_pstate_t *ps, int64_t pid)
{
    return sm_hmap_get(&ps->producers, (const char *)&pid, sizeof pid);
}

int sm_pstate_count(const sm_pstate_t *ps) { return (int)ps->producers.count; }

static sm_producer_t *producer_add(sm_pstate_t *ps, int64_t pid)
{
    sm_producer_t *pr = sm_xcalloc(1, sizeof *pr);
    pr->pid = pid;
    pr->epoch = -1;
    pr->coordinator_epoch = -1;
    pr->txn_first_offset = -1;
    pr->last_offset = -1;
    sm_hmap_put(&ps->producers, (const char *)&pid, sizeof pid, pr);
    return pr;
}

static void producer_del(sm_pstate_t *ps, int64_t pid)
{
    free(sm_hmap_del(&ps->producers, (const char *)&pid, sizeof pid));
}

/* Kafka's sequence arithmetic: sequences wrap from INT32_MAX to 0. */
static int32_t seq_add(int32_t seq, int32_t delta)
{
    if (seq > INT32_MAX - delta)
        return delta - (INT32_MAX - seq) - 1;
    return seq + delta;
}

static bool in_sequence(int32_t last_seq, int32_t next_seq)
{
    return next_seq == last_seq + 1 || (next_seq == 0 && last_seq == INT32_MAX);
}

int16_t sm_pstate_check(const sm_pstate_t *ps, const sm_batch_info_t *b, bool *dup,
                        int64_t *dup_first, int64_t *dup_last)
{
    *dup = false;
    const sm_producer_t *pr = sm_pstate_get(ps, b->producer_id);
    int16_t cur_epoch = pr ? pr->epoch : -1;
    bool transactional = (b->attributes & SM_BATCH_ATTR_TRANSACTIONAL) != 0;
    if (b->producer_epoch < 0)
        return SM_PS_INVALID_PRODUCER_EPOCH;
    /* a retry of one of the last batches: answered with its offsets */
    if (pr && b->producer_epoch == cur_epoch) {
        int32_t last_seq = seq_add(b->base_sequence, b->last_offset_delta);
        for (int i = 0; i < pr->nbatches; i++) {
            const sm_pbatch_t *m = &pr->batches[i];
            if (m->first_seq == b->base_sequence && m->last_seq == last_seq) {
                *dup = true;
                *dup_first = m->first_offset;
                *dup_last = m->last_offset;
                return 0;
            }
        }
    }
    if (b->producer_epoch < cur_epoch) /* a zombie */
        return SM_PS_INVALID_PRODUCER_EPOCH;
    if (b->base_sequence < 0)
        return SM_PS_OUT_OF_ORDER_SEQUENCE;
    if (b->producer_epoch != cur_epoch) {
        /* a new epoch (or a producer we do not know) starts at sequence 0 */
        if (b->base_sequence != 0)
            return cur_epoch >= 0 ? SM_PS_OUT_OF_ORDER_SEQUENCE : SM_PS_UNKNOWN_PRODUCER_ID;
    } else if (pr->nbatches > 0) {
        if (!in_sequence(pr->batches[pr->nbatches - 1].last_seq, b->base_sequence))
            return SM_PS_OUT_OF_ORDER_SEQUENCE;
    }
    /* (a known epoch with no batch left - only markers, or state restored
     * without sequences - accepts any sequence, as Kafka does) */
    if (!transactional && pr && pr->txn_first_offset >= 0)
        return SM_PS_INVALID_TXN_STATE;
    return 0;
}

int sm_pstate_marker_type(const uint8_t *batch, size_t len, int32_t *coordinator_epoch)
{
    sm_record_iter_t it;
    sm_record_t rec;
    *coordinator_epoch = -1;
    if (sm_record_iter_init(&it, batch, len) != SM_OK || sm_record_iter_next(&it, &rec) != SM_OK)
        return -1;
    if (!rec.key || rec.key_len < 4)
        return -1;
    sm_rd_t rd;
    sm_rd_init(&rd, rec.key, (size_t)rec.key_len);
    int16_t version = sm_rd_i16(&rd);
    int16_t type = sm_rd_i16(&rd);
    if (rd.err || version < 0 || (type != 0 && type != 1))
        return -1;
    if (rec.value && rec.value_len >= 6) {
        sm_rd_init(&rd, rec.value, (size_t)rec.value_len);
        (void)sm_rd_i16(&rd);
        *coordinator_epoch = sm_rd_i32(&rd);
    }
    return type;
}

static void txn_push(sm_ptxn_t **arr, int *n, int *cap, sm_ptxn_t t)
{
    if (*n == *cap) {
        *cap = *cap ? *cap * 2 : 8;
        *arr = sm_xrealloc(*arr, (size_t)*cap * sizeof **arr);
    }
    /* keep the order by first offset (appends arrive in order; a snapshot
     * load may not) */
    int i = *n;
    while (i > 0 && (*arr)[i - 1].first_offset > t.first_offset) {
        (*arr)[i] = (*arr)[i - 1];
        i--;
    }
    (*arr)[i] = t;
    (*n)++;
}

static void open_remove(sm_pstate_t *ps, int64_t pid)
{
    for (int i = 0; i < ps->nopen; i++) {
        if (ps->open[i].pid == pid) {
            memmove(&ps->open[i], &ps->open[i + 1], (size_t)(ps->nopen - i - 1) * sizeof *ps->open);
            ps->nopen--;
            return;
        }
    }
}

int64_t sm_pstate_first_unstable(const sm_pstate_t *ps)
{
    int64_t first = -1;
    if (ps->nopen > 0)
        first = ps->open[0].first_offset;
    if (ps->nunrepl > 0 && (first < 0 || ps->unrepl[0].first_offset < first))
        first = ps->unrepl[0].first_offset;
    return first;
}

void sm_pstate_hw_moved(sm_pstate_t *ps, int64_t hw)
{
    int k = 0;
    for (int i = 0; i < ps->nunrepl; i++)
        if (ps->unrepl[i].marker_offset >= hw)
            ps->unrepl[k++] = ps->unrepl[i];
    ps->nunrepl = k;
}

bool sm_pstate_apply(sm_pstate_t *ps, const sm_batch_info_t *b, const uint8_t *batch, size_t len,
                     sm_log_aborted_t *aborted)
{
    int64_t last_offset = b->base_offset + b->last_offset_delta;
    if (last_offset + 1 > ps->end_offset)
        ps->end_offset = last_offset + 1;
    if (b->producer_id < 0)
        return false;
    sm_producer_t *pr = sm_pstate_get(ps, b->producer_id);
    if (!pr)
        pr = producer_add(ps, b->producer_id);
    if (b->producer_epoch > pr->epoch) {
        pr->epoch = b->producer_epoch;
        pr->nbatches = 0; /* sequences restart with the epoch */
    }
    pr->last_timestamp = b->max_timestamp;
    pr->last_offset = last_offset;
    bool transactional = (b->attributes & SM_BATCH_ATTR_TRANSACTIONAL) != 0;
    if (b->attributes & SM_BATCH_ATTR_CONTROL) {
        int32_t coord_epoch;
        int type = batch ? sm_pstate_marker_type(batch, len, &coord_epoch) : -1;
        if (type < 0 || !transactional)
            return false;
        pr->coordinator_epoch = coord_epoch;
        int64_t first = pr->txn_first_offset >= 0 ? pr->txn_first_offset : b->base_offset;
        if (pr->txn_first_offset >= 0) {
            open_remove(ps, pr->pid);
            txn_push(&ps->unrepl, &ps->nunrepl, &ps->unrepl_cap,
                     (sm_ptxn_t){.pid = pr->pid, .first_offset = first,
                                 .marker_offset = b->base_offset});
        }
        pr->txn_first_offset = -1;
        if (type == 0 && aborted) {
            aborted->pid = pr->pid;
            aborted->first_offset = first;
            aborted->last_offset = b->base_offset;
            /* the LSO once this transaction is done: the next unstable
             * offset (ignoring replication), else past the marker */
            int64_t lso = ps->nopen > 0 ? ps->open[0].first_offset : b->base_offset + 1;
            aborted->last_stable_offset = lso;
            return true;
        }
        return false;
    }
    /* a data batch */
    if (pr->nbatches == SM_PSTATE_BATCHES) {
        memmove(&pr->batches[0], &pr->batches[1], (SM_PSTATE_BATCHES - 1) * sizeof pr->batches[0]);
        pr->nbatches--;
    }
    if (b->base_sequence >= 0)
        pr->batches[pr->nbatches++] = (sm_pbatch_t){
            .first_seq = b->base_sequence,
            .last_seq = seq_add(b->base_sequence, b->last_offset_delta),
            .first_offset = b->base_offset,
            .last_offset = last_offset,
        };
    if (transactional && pr->txn_first_offset < 0) {
        pr->txn_first_offset = b->base_offset;
        txn_push(&ps->open, &ps->nopen, &ps->open_cap,
                 (sm_ptxn_t){.pid = pr->pid, .first_offset = b->base_offset, .marker_offset = -1});
    }
    return false;
}

int sm_pstate_expire(sm_pstate_t *ps, int64_t now_ms, int64_t expiration_ms)
{
    int n = 0;
    for (sm_hmap_entry_t *e = sm_hmap_next(&ps->producers, NULL); e;) {
        sm_producer_t *pr = e->value;
        e = sm_hmap_next(&ps->producers, e);
        if (pr->txn_first_offset < 0 && now_ms - pr->last_timestamp >= expiration_ms) {
            producer_del(ps, pr->pid);
            n++;
        }
    }
    return n;
}

void sm_pstate_log_start_moved(sm_pstate_t *ps, int64_t log_start)
{
    for (sm_hmap_entry_t *e = sm_hmap_next(&ps->producers, NULL); e;) {
        sm_producer_t *pr = e->value;
        e = sm_hmap_next(&ps->producers, e);
        if (pr->txn_first_offset < 0 && pr->last_offset < log_start)
            producer_del(ps, pr->pid);
    }
    if (ps->end_offset < log_start)
        ps->end_offset = log_start;
}

/* ------------------------------------------------------------ snapshots */

static void snapshot_name(char *buf, size_t n, int64_t offset)
{
    snprintf(buf, n, "%020" PRId64 ".snapshot", offset);
}

sm_err_t sm_pstate_snapshot_write(const sm_pstate_t *ps, const char *dir)
{
    sm_wbuf_t w;
    sm_wbuf_init(&w);
    sm_wbuf_i16(&w, SNAPSHOT_VERSION);
    sm_wbuf_u32(&w, 0); /* CRC, filled below */
    sm_wbuf_i32(&w, (int32_t)ps->producers.count);
    for (sm_hmap_entry_t *e = NULL; (e = sm_hmap_next(&ps->producers, e));) {
        const sm_producer_t *pr = e->value;
        const sm_pbatch_t *last = pr->nbatches ? &pr->batches[pr->nbatches - 1] : NULL;
        sm_wbuf_i64(&w, pr->pid);
        sm_wbuf_i16(&w, pr->epoch);
        sm_wbuf_i32(&w, last ? last->last_seq : -1);
        sm_wbuf_i64(&w, last ? last->last_offset : pr->last_offset);
        sm_wbuf_i32(&w, last ? (int32_t)(last->last_offset - last->first_offset) : 0);
        sm_wbuf_i64(&w, pr->last_timestamp);
        sm_wbuf_i32(&w, pr->coordinator_epoch);
        sm_wbuf_i64(&w, pr->txn_first_offset);
    }
    uint32_t crc = sm_crc32c(0, w.mem + 6, w.len - 6);
    w.mem[2] = (uint8_t)(crc >> 24);
    w.mem[3] = (uint8_t)(crc >> 16);
    w.mem[4] = (uint8_t)(crc >> 8);
    w.mem[5] = (uint8_t)crc;
    char name[64];
    snapshot_name(name, sizeof name, ps->end_offset);
    sm_err_t err = sm_file_write_atomic(dir, name, w.mem, w.len);
    sm_wbuf_free(&w);
    return err;
}

/* Offsets of the snapshot files in dir, ascending. */
static int64_t *list_snapshots(const char *dir, int *n)
{
    *n = 0;
    DIR *d = opendir(dir);
    if (!d)
        return NULL;
    int64_t *offs = NULL;
    int cap = 0;
    struct dirent *de;
    while ((de = readdir(d))) {
        size_t len = strlen(de->d_name);
        if (len != 20 + 9 || strcmp(de->d_name + 20, ".snapshot") != 0)
            continue;
        char *end;
        long long v = strtoll(de->d_name, &end, 10);
        if (end != de->d_name + 20 || v < 0)
            continue;
        if (*n == cap) {
            cap = cap ? cap * 2 : 8;
            offs = sm_xrealloc(offs, (size_t)cap * sizeof *offs);
        }
        offs[(*n)++] = v;
    }
    closedir(d);
    for (int i = 1; i < *n; i++) /* few files: insertion sort */
        for (int j = i; j > 0 && offs[j - 1] > offs[j]; j--) {
            int64_t t = offs[j];
            offs[j] = offs[j - 1];
            offs[j - 1] = t;
        }
    return offs;
}

static void snapshot_delete(const char *dir, int64_t offset)
{
    char name[64];
    snapshot_name(name, sizeof name, offset);
    char *path = sm_xasprintf("%s/%s", dir, name);
    (void)sm_file_unlink(path);
    free(path);
}

static sm_err_t snapshot_parse(sm_pstate_t *ps, const uint8_t *data, size_t len)
{
    sm_rd_t rd;
    sm_rd_init(&rd, data, len);
    int16_t version = sm_rd_i16(&rd);
    uint32_t crc = sm_rd_u32(&rd);
    if (rd.err || version != SNAPSHOT_VERSION)
        return SM_ERR_UNSUPPORTED;
    if (sm_crc32c(0, data + 6, len - 6) != crc)
        return SM_ERR_CORRUPT;
    int32_t count = sm_rd_i32(&rd);
    if (rd.err || count < 0 || (size_t)count * SNAPSHOT_ENTRY_BYTES != sm_rd_remaining(&rd))
        return SM_ERR_PARSE;
    for (int32_t i = 0; i < count; i++) {
        int64_t pid = sm_rd_i64(&rd);
        sm_producer_t *pr = sm_pstate_get(ps, pid);
        if (!pr)
            pr = producer_add(ps, pid);
        pr->epoch = sm_rd_i16(&rd);
        int32_t last_seq = sm_rd_i32(&rd);
        int64_t last_offset = sm_rd_i64(&rd);
        int32_t delta = sm_rd_i32(&rd);
        pr->last_timestamp = sm_rd_i64(&rd);
        pr->coordinator_epoch = sm_rd_i32(&rd);
        pr->txn_first_offset = sm_rd_i64(&rd);
        pr->last_offset = last_offset;
        pr->nbatches = 0;
        if (last_seq >= 0 && delta >= 0) {
            int64_t fs = (int64_t)last_seq - delta;
            int32_t first_seq = (int32_t)(fs < 0 ? fs + (int64_t)INT32_MAX + 1 : fs); /* wrapped */
            pr->batches[pr->nbatches++] = (sm_pbatch_t){.first_seq = first_seq,
                                                        .last_seq = last_seq,
                                                        .first_offset = last_offset - delta,
                                                        .last_offset = last_offset};
        }
        if (pr->txn_first_offset >= 0)
            txn_push(&ps->open, &ps->nopen, &ps->open_cap,
                     (sm_ptxn_t){.pid = pid, .first_offset = pr->txn_first_offset,
                                 .marker_offset = -1});
    }
    return rd.err ? SM_ERR_PARSE : SM_OK;
}

sm_err_t sm_pstate_snapshot_load(sm_pstate_t *ps, const char *dir, int64_t max_offset)
{
    int n;
    int64_t *offs = list_snapshots(dir, &n);
    sm_err_t result = SM_ERR_NOT_FOUND;
    for (int i = n - 1; i >= 0; i--) {
        if (offs[i] > max_offset)
            continue;
        char name[64];
        snapshot_name(name, sizeof name, offs[i]);
        char *path = sm_xasprintf("%s/%s", dir, name);
        sm_err_t err = SM_ERR_IO;
        int fd = open(path, O_RDONLY | O_CLOEXEC);
        struct stat st;
        if (fd >= 0 && fstat(fd, &st) == 0 && st.st_size >= 10 &&
            (size_t)st.st_size <= SNAPSHOT_MAX_BYTES) {
            uint8_t *data = sm_xmalloc((size_t)st.st_size);
            if (pread(fd, data, (size_t)st.st_size, 0) == st.st_size) {
                sm_pstate_reset(ps, offs[i]);
                err = snapshot_parse(ps, data, (size_t)st.st_size);
            }
            free(data);
        }
        if (fd >= 0)
            close(fd);
        if (err == SM_OK) {
            ps->end_offset = offs[i];
            free(path);
            result = SM_OK;
            break;
        }
        SM_WARN("pstate", "%s: unusable producer snapshot (%s), deleted", path, sm_err_str(err));
        (void)sm_file_unlink(path);
        free(path);
    }
    free(offs);
    if (result != SM_OK)
        sm_pstate_reset(ps, 0);
    return result;
}

void sm_pstate_snapshots_prune(const char *dir, int64_t max_offset, int keep)
{
    int n;
    int64_t *offs = list_snapshots(dir, &n);
    int kept = 0;
    for (int i = n - 1; i >= 0; i--) {
        if (offs[i] > max_offset || kept >= keep)
            snapshot_delete(dir, offs[i]);
        else
            kept++;
    }
    free(offs);
}
