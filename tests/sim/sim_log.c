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

void sim_log_init(sim_log_t *l) { memset(l, 0, sizeof(*l)); }

void sim_log_free(sim_log_t *l)
{
    free(l->buf);
    free(l->b);
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
    if (offset < 0)
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

static int64_t op_start(void *ctx) { return (void)ctx, 0; }
static int64_t op_end(void *ctx) { return sim_log_end(ctx); }
static int64_t op_flushed(void *ctx) { return sim_log_durable_end(ctx); }

static sm_raft_offset_epoch_t op_end_for_epoch(void *ctx, int32_t epoch)
{
    sim_log_t *l = ctx;
    for (int32_t i = l->n - 1; i >= 0; i--) {
        if (l->b[i].epoch <= epoch) {
            int64_t end = i + 1 < l->n ? l->b[i + 1].base : sim_log_end(l);
            return (sm_raft_offset_epoch_t){l->b[i].epoch, end};
        }
    }
    return (sm_raft_offset_epoch_t){0, 0};
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
};
