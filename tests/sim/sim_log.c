/*
 * sim_log.c - in-memory metadata log with a durable prefix; see sim_log.h.
 */
#include "sim_log.h"

#include <stdlib.h>
#include <string.h>

#define SIM_MAGIC 0x53494D42u

typedef struct sim_hdr {
    uint32_t magic;
    int32_t count;
    int64_t base;
    int32_t epoch;
    int32_t control;
    uint32_t data_len;
    uint32_t sum;
} sim_hdr_t;

_Static_assert(sizeof(sim_hdr_t) == 32, "sim batch header is 32 bytes");

static uint64_t fnv(uint64_t h, const void *p, size_t n)
{
    const uint8_t *s = p;
    for (size_t i = 0; i < n; i++) {
        h ^= s[i];
        h *= 1099511628211ull;
    }
    return h;
}

static uint64_t batch_sum(const sim_hdr_t *h, const uint8_t *data)
{
    sim_hdr_t z = *h;
    z.sum = 0;
    uint64_t x = fnv(14695981039346656037ull, &z, sizeof(z));
    return fnv(x, data, h->data_len);
}

void sim_log_init(sim_log_t *l)
{
    memset(l, 0, sizeof(*l));
    l->snap_id = l->pend_id = l->start_snap = (sm_raft_offset_epoch_t){-1, -1};
}

void sim_log_free(sim_log_t *l)
{
    free(l->buf);
    free(l->b);
    free(l->snap);
    for (int32_t i = 0; i < l->n_older; i++)
        free(l->older[i].bytes);
    free(l->pend);
    memset(l, 0, sizeof(*l));
}

int64_t sim_log_end(const sim_log_t *l)
{
    return l->n ? l->b[l->n - 1].base + l->b[l->n - 1].count : 0;
}

int64_t sim_log_durable_end(const sim_log_t *l)
{
    return l->n_durable ? l->b[l->n_durable - 1].base + l->b[l->n_durable - 1].count : 0;
}

static void set_len(sim_log_t *l, int32_t n)
{
    l->n = n;
    l->len = n ? l->b[n - 1].pos + l->b[n - 1].len : 0;
    if (l->n_durable > n)
        l->n_durable = n;
}

void sim_log_crash(sim_log_t *l, int32_t keep_unsynced)
{
    int32_t n = l->n_durable + (keep_unsynced > 0 ? keep_unsynced : 0);
    set_len(l, n < l->n ? n : l->n);
    l->n_durable = l->n;
    l->pend_len = 0; /* a .part snapshot is deleted at start-up */
    l->pend_id = (sm_raft_offset_epoch_t){-1, -1};
}

/* Index of the batch holding offset, or -1. */
static int32_t find(const sim_log_t *l, int64_t offset)
{
    int32_t lo = 0, hi = l->n - 1;
    while (lo <= hi) {
        int32_t mid = (lo + hi) / 2;
        const sim_batch_t *b = &l->b[mid];
        if (offset < b->base)
            hi = mid - 1;
        else if (offset >= b->base + b->count)
            lo = mid + 1;
        else
            return mid;
    }
    return -1;
}

const sim_batch_t *sim_log_batch_at(const sim_log_t *l, int64_t offset, bool durable_only)
{
    int32_t i = find(l, offset);
    if (i < 0 || (durable_only && i >= l->n_durable))
        return NULL;
    return &l->b[i];
}

static void push(sim_log_t *l, const sim_hdr_t *h, const uint8_t *data)
{
    size_t need = sizeof(*h) + h->data_len;
    if (l->len + need > l->cap) {
        l->cap = (l->len + need) * 2 + 256;
        l->buf = sm_xrealloc(l->buf, l->cap);
    }
    if (l->n == l->cap_b) {
        l->cap_b = l->cap_b ? l->cap_b * 2 : 64;
        l->b = sm_xrealloc(l->b, sizeof(*l->b) * (size_t)l->cap_b);
    }
    sim_batch_t *b = &l->b[l->n++];
    b->base = h->base;
    b->count = h->count;
    b->epoch = h->epoch;
    b->pos = l->len;
    b->len = need;
    b->hash = batch_sum(h, data);
    memcpy(l->buf + l->len, h, sizeof(*h));
    if (h->data_len)
        memcpy(l->buf + l->len + sizeof(*h), data, h->data_len);
    l->len += need;
    l->appends++;
}

static int32_t last_epoch(void *ctx)
{
    sim_log_t *l = ctx;
    return l->n ? l->b[l->n - 1].epoch : 0;
}

static sm_err_t op_append(void *ctx, const sm_raft_append_t *a, int64_t *base)
{
    sim_log_t *l = ctx;
    if (a->count < 1 || a->epoch < last_epoch(l))
        return SM_ERR_INVALID;
    uint8_t ctl[4];
    sim_hdr_t h = {SIM_MAGIC, a->count, sim_log_end(l), a->epoch, a->control_type, 0, 0};
    const uint8_t *data = a->data;
    if (a->control_type != SM_RAFT_CONTROL_NONE) { /* LeaderChange: the leader's id */
        memcpy(ctl, &a->leader_id, 4);
        data = ctl;
        h.data_len = 4;
    } else {
        h.data_len = (uint32_t)a->len;
    }
    h.sum = (uint32_t)batch_sum(&h, data);
    *base = h.base;
    push(l, &h, data);
    return SM_OK;
}

static sm_err_t op_append_fetched(void *ctx, const uint8_t *bytes, size_t len)
{
    sim_log_t *l = ctx;
    /* Validate everything first: a bad batch from the peer appends nothing. */
    int64_t expect = sim_log_end(l);
    int32_t epoch = last_epoch(l);
    size_t at = 0;
    while (at < len) {
        sim_hdr_t h;
        if (len - at < sizeof(h))
            return SM_ERR_PARSE;
        memcpy(&h, bytes + at, sizeof(h));
        if (h.magic != SIM_MAGIC || h.count < 1 || h.data_len > len - at - sizeof(h))
            return SM_ERR_CORRUPT;
        if ((uint32_t)batch_sum(&h, bytes + at + sizeof(h)) != h.sum)
            return SM_ERR_CORRUPT;
        if (h.base != expect || h.epoch < epoch)
            return SM_ERR_RANGE;
        expect += h.count;
        epoch = h.epoch;
        at += sizeof(h) + h.data_len;
    }
    at = 0;
    while (at < len) {
        sim_hdr_t h;
        memcpy(&h, bytes + at, sizeof(h));
        push(l, &h, bytes + at + sizeof(h));
        at += sizeof(h) + h.data_len;
    }
    return SM_OK;
}

static sm_err_t op_read(void *ctx, int64_t offset, size_t max, const uint8_t **bytes, size_t *len)
{
    sim_log_t *l = ctx;
    if (offset < l->start_offset)
        return SM_ERR_RANGE;
    int32_t i = find(l, offset);
    if (i < 0)
        return SM_ERR_RANGE;
    size_t start = l->b[i].pos, end = start + l->b[i].len;
    for (int32_t j = i + 1; j < l->n && l->b[j].pos + l->b[j].len - start <= max; j++)
        end = l->b[j].pos + l->b[j].len;
    *bytes = l->buf + start;
    *len = end - start;
    return SM_OK;
}

static sm_err_t op_truncate(void *ctx, int64_t offset)
{
    sim_log_t *l = ctx;
    if (offset < l->start_offset)
        return SM_ERR_RANGE;
    if (offset >= sim_log_end(l))
        return SM_OK;
    if (l->on_truncate)
        l->on_truncate(l->hook_ctx, l, offset);
    int32_t i = find(l, offset);
    set_len(l, i < 0 ? l->n : i); /* a batch holding offset goes whole */
    return SM_OK;
}

static sm_err_t op_flush(void *ctx)
{
    sim_log_t *l = ctx;
    l->n_durable = l->n;
    l->flushes++;
    return SM_OK;
}

static int64_t op_start(void *ctx) { return ((sim_log_t *)ctx)->start_offset; }
static int64_t op_end(void *ctx) { return sim_log_end(ctx); }
static int64_t op_flushed(void *ctx) { return sim_log_durable_end(ctx); }

/* Like a real log's leader-epoch cache, it only knows the retained batches and
 * the latest snapshot's id, not the epochs the snapshot covered. */
static sm_raft_offset_epoch_t op_end_for_epoch(void *ctx, int32_t epoch)
{
    sim_log_t *l = ctx;
    for (int32_t i = l->n - 1; i >= l->start_idx; i--) {
        if (l->b[i].epoch <= epoch) {
            int64_t end = i + 1 < l->n ? l->b[i + 1].base : sim_log_end(l);
            return (sm_raft_offset_epoch_t){l->b[i].epoch, end};
        }
    }
    if (l->start_snap.epoch >= 0 && l->start_snap.epoch <= epoch)
        return (sm_raft_offset_epoch_t){l->start_snap.epoch, l->start_offset};
    return (sm_raft_offset_epoch_t){0, 0};
}

/* ---- snapshots: bytes are a header then one record per covered batch */

typedef struct sim_snap_rec {
    int64_t base;
    int32_t count, epoch;
    uint64_t hash;
} sim_snap_rec_t;

#define SNAP_MAGIC 0x534E4150u

int64_t sim_log_snapshot_create(sim_log_t *l, int64_t end_offset)
{
    int64_t limit = SM_MIN(end_offset, sim_log_durable_end(l));
    int32_t k = 0; /* batches [0, k) fit below limit */
    for (int32_t i = l->n - 1; i >= 0; i--)
        if (l->b[i].base + l->b[i].count <= limit) {
            k = i + 1;
            break;
        }
    if (k <= l->start_idx || l->b[k - 1].base + l->b[k - 1].count <= l->snap_id.end_offset)
        return -1; /* nothing newer than the latest snapshot */
    size_t len = 8 + (size_t)k * sizeof(sim_snap_rec_t);
    uint8_t *p = sm_xmalloc(len);
    uint32_t hdr[2] = {SNAP_MAGIC, (uint32_t)k};
    memcpy(p, hdr, 8);
    for (int32_t i = 0; i < k; i++) {
        sim_snap_rec_t rec = {l->b[i].base, l->b[i].count, l->b[i].epoch, l->b[i].hash};
        memcpy(p + 8 + (size_t)i * sizeof(rec), &rec, sizeof(rec));
    }
    if (l->snap_id.epoch >= 0 && l->retain > 0) {
        if (l->n_older == SM_MIN(l->retain, SIM_LOG_MAX_RETAIN)) { /* drop the oldest */
            free(l->older[0].bytes);
            memmove(&l->older[0], &l->older[1], sizeof(l->older[0]) * (size_t)(l->n_older - 1));
            l->n_older--;
        }
        l->older[l->n_older++] = (struct sim_snap){l->snap_id, l->snap, l->snap_len};
    } else {
        free(l->snap);
    }
    l->snap = p;
    l->snap_len = len;
    l->snap_id = (sm_raft_offset_epoch_t){l->b[k - 1].epoch, l->b[k - 1].base + l->b[k - 1].count};
    sm_raft_offset_epoch_t to = l->n_older ? l->older[0].id : l->snap_id;
    if (l->retain > 0 && !l->n_older)
        to = (sm_raft_offset_epoch_t){-1, -1}; /* the first snapshot: keep the whole log */
    if (to.epoch >= 0 && to.end_offset > l->start_offset) {
        int32_t i = find(l, to.end_offset);
        l->start_idx = i < 0 ? l->n : i;
        SM_ASSERT(l->start_idx == l->n || l->b[l->start_idx].base == to.end_offset);
        l->start_offset = to.end_offset;
        l->start_snap = to;
    }
    return l->snap_id.end_offset;
}
bool sim_log_has_snapshot(const sim_log_t *l, sm_raft_offset_epoch_t id)
{
    if (id.epoch < 0)
        return false;
    if (id.epoch == l->snap_id.epoch && id.end_offset == l->snap_id.end_offset)
        return true;
    for (int32_t i = 0; i < l->n_older; i++)
        if (id.epoch == l->older[i].id.epoch && id.end_offset == l->older[i].id.end_offset)
            return true;
    return false;
}

static sm_raft_offset_epoch_t op_snap_latest(void *ctx) { return ((sim_log_t *)ctx)->snap_id; }

static sm_err_t op_snap_read(void *ctx, sm_raft_offset_epoch_t id, int64_t pos, size_t max,
                             const uint8_t **bytes, size_t *len, int64_t *size)
{
    sim_log_t *l = ctx;
    const uint8_t *p;
    size_t n;
    if (l->snap_id.epoch >= 0 && id.epoch == l->snap_id.epoch &&
        id.end_offset == l->snap_id.end_offset) {
        p = l->snap, n = l->snap_len;
    } else {
        int32_t i = 0;
        while (i < l->n_older && (l->older[i].id.epoch != id.epoch ||
                                  l->older[i].id.end_offset != id.end_offset))
            i++;
        if (i == l->n_older)
            return SM_ERR_NOT_FOUND;
        p = l->older[i].bytes, n = l->older[i].len;
    }
    if (pos < 0 || (size_t)pos > n)
        return SM_ERR_RANGE;
    *bytes = p + pos;
    *len = SM_MIN(max, n - (size_t)pos);
    *size = (int64_t)n;
    return SM_OK;
}

static sm_err_t op_snap_write(void *ctx, sm_raft_offset_epoch_t id, int64_t pos,
                              const uint8_t *bytes, size_t len)
{
    sim_log_t *l = ctx;
    if (pos == 0) {
        l->pend_id = id;
        l->pend_len = 0;
    }
    if (id.epoch != l->pend_id.epoch || id.end_offset != l->pend_id.end_offset ||
        (size_t)pos != l->pend_len)
        return SM_ERR_RANGE;
    if (l->pend_len + len > l->pend_cap) {
        l->pend_cap = (l->pend_len + len) * 2;
        l->pend = sm_xrealloc(l->pend, l->pend_cap);
    }
    if (len)
        memcpy(l->pend + l->pend_len, bytes, len);
    l->pend_len += len;
    return SM_OK;
}

static sm_err_t op_snap_install(void *ctx, sm_raft_offset_epoch_t id)
{
    sim_log_t *l = ctx;
    if (id.epoch != l->pend_id.epoch || id.end_offset != l->pend_id.end_offset ||
        l->pend_len < 8)
        return SM_ERR_CORRUPT;
    uint32_t hdr[2];
    memcpy(hdr, l->pend, 8);
    if (hdr[0] != SNAP_MAGIC || hdr[1] == 0 ||
        l->pend_len != 8 + (size_t)hdr[1] * sizeof(sim_snap_rec_t))
        return SM_ERR_CORRUPT;
    sim_snap_rec_t last;
    memcpy(&last, l->pend + 8 + (size_t)(hdr[1] - 1) * sizeof(last), sizeof(last));
    if (last.epoch != id.epoch || last.base + last.count != id.end_offset)
        return SM_ERR_CORRUPT;
    if (l->on_install)
        l->on_install(l->hook_ctx, l, id.end_offset);
    /* Drop the whole log; the snapshot's batches come back as metadata only. */
    l->n = 0;
    l->len = 0;
    for (uint32_t i = 0; i < hdr[1]; i++) {
        sim_snap_rec_t rec;
        memcpy(&rec, l->pend + 8 + (size_t)i * sizeof(rec), sizeof(rec));
        if (l->n == l->cap_b) {
            l->cap_b = l->cap_b ? l->cap_b * 2 : 64;
            l->b = sm_xrealloc(l->b, sizeof(*l->b) * (size_t)l->cap_b);
        }
        l->b[l->n++] = (sim_batch_t){rec.base, rec.count, rec.epoch, 0, 0, rec.hash};
    }
    l->n_durable = l->start_idx = l->n;
    l->start_offset = id.end_offset;
    free(l->snap);
    for (int32_t i = 0; i < l->n_older; i++)
        free(l->older[i].bytes);
    l->n_older = 0;
    l->snap = l->pend;
    l->snap_len = l->pend_len;
    l->snap_id = id;
    l->start_snap = id;
    l->pend = NULL;
    l->pend_len = l->pend_cap = 0;
    l->pend_id = (sm_raft_offset_epoch_t){-1, -1};
    return SM_OK;
}

const sm_raft_log_ops_t sim_log_ops = {
    .append = op_append,
    .append_fetched = op_append_fetched,
    .read = op_read,
    .truncate = op_truncate,
    .flush = op_flush,
    .start_offset = op_start,
    .end_offset = op_end,
    .flushed_offset = op_flushed,
    .last_epoch = last_epoch,
    .end_offset_for_epoch = op_end_for_epoch,
    .snapshot_latest = op_snap_latest,
    .snapshot_read = op_snap_read,
    .snapshot_write = op_snap_write,
    .snapshot_install = op_snap_install,
};
