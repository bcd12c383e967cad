/*
 * txn_records.c - sm_txn_meta_t helpers and the __transaction_state record
 * format (see txn_records.h). The schemas come from the generated codecs
 * (txn_records.def); this file adds Kafka's int16 version prefixes and maps
 * between the grouped-by-topic wire layout and the sorted partition list.
 */
#include "txn_records.h"

#include <stdlib.h>
#include <string.h>

static const char *const k_state_names[SM_TXN_NSTATES] = {
    "Empty",          "Ongoing",       "PrepareCommit", "PrepareAbort",
    "CompleteCommit", "CompleteAbort", "Dead",          "PrepareEpochFence",
};

const char *sm_txn_state_name(sm_txn_state_t s)
{
    return (unsigned)s < SM_TXN_NSTATES ? k_state_names[s] : "Unknown";
}

int sm_txn_state_parse(const char *name, size_t len)
{
    for (int i = 0; i < SM_TXN_NSTATES; i++)
        if (strlen(k_state_names[i]) == len && memcmp(k_state_names[i], name, len) == 0)
            return i;
    return -1;
}

/* ------------------------------------------------------------ partitions */

void sm_txn_meta_copy(sm_txn_meta_t *dst, const sm_txn_meta_t *src)
{
    *dst = *src;
    dst->tps = NULL;
    if (src->ntps > 0) {
        dst->tps = sm_xcalloc((size_t)src->ntps, sizeof *dst->tps);
        for (int32_t i = 0; i < src->ntps; i++) {
            dst->tps[i].topic = sm_xstrndup(src->tps[i].topic, strlen(src->tps[i].topic));
            dst->tps[i].partition = src->tps[i].partition;
        }
    }
}

void sm_txn_meta_clear_tps(sm_txn_meta_t *m)
{
    for (int32_t i = 0; i < m->ntps; i++)
        free(m->tps[i].topic);
    free(m->tps);
    m->tps = NULL;
    m->ntps = 0;
}

void sm_txn_meta_free(sm_txn_meta_t *m)
{
    if (m)
        sm_txn_meta_clear_tps(m);
}

static int tp_cmp(const char *topic, size_t len, int32_t part, const sm_txn_tp_t *b)
{
    size_t blen = strlen(b->topic);
    int c = memcmp(topic, b->topic, len < blen ? len : blen);
    if (c)
        return c;
    if (len != blen)
        return len < blen ? -1 : 1;
    return part < b->partition ? -1 : part > b->partition;
}

/* Index of the first element >= (topic, part). */
static int32_t tp_lower(const sm_txn_meta_t *m, const char *topic, size_t len, int32_t part)
{
    int32_t lo = 0, hi = m->ntps;
    while (lo < hi) {
        int32_t mid = lo + (hi - lo) / 2;
        if (tp_cmp(topic, len, part, &m->tps[mid]) > 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo;
}

bool sm_txn_meta_has(const sm_txn_meta_t *m, const char *topic, int32_t partition)
{
    size_t len = strlen(topic);
    int32_t i = tp_lower(m, topic, len, partition);
    return i < m->ntps && tp_cmp(topic, len, partition, &m->tps[i]) == 0;
}

bool sm_txn_meta_add(sm_txn_meta_t *m, const char *topic, size_t topic_len, int32_t partition)
{
    int32_t i = tp_lower(m, topic, topic_len, partition);
    if (i < m->ntps && tp_cmp(topic, topic_len, partition, &m->tps[i]) == 0)
        return false;
    m->tps = sm_xrealloc(m->tps, sizeof *m->tps * (size_t)(m->ntps + 1));
    memmove(&m->tps[i + 1], &m->tps[i], sizeof *m->tps * (size_t)(m->ntps - i));
    m->tps[i].topic = sm_xstrndup(topic, topic_len);
    m->tps[i].partition = partition;
    m->ntps++;
    return true;
}

/* ------------------------------------------------------------ encoding */

static void finish(sm_arena_t *a, sm_wbuf_t *w, uint8_t **out, int32_t *out_len)
{
    *out = sm_arena_alloc(a, w->len ? w->len : 1);
    memcpy(*out, w->mem, w->len);
    *out_len = (int32_t)w->len;
}

void sm_txn_record_encode(sm_arena_t *a, const char *txn_id, size_t id_len, const sm_txn_meta_t *m,
                          sm_coord_kv_t *out)
{
    sm_wbuf_t w;
    sm_wbuf_init(&w);
    sm_transaction_log_key_t k;
    sm_transaction_log_key_init(&k);
    k.transactional_id = sm_str_n(txn_id, (int32_t)id_len);
    sm_wbuf_i16(&w, 0);
    sm_transaction_log_key_encode(&w, 0, &k);
    finish(a, &w, &out->key, &out->key_len);
    out->value = NULL;
    out->value_len = -1;
    if (m) {
        sm_wbuf_reset(&w);
        sm_transaction_log_value_t v;
        sm_transaction_log_value_init(&v);
        v.producer_id = m->producer_id;
        v.previous_producer_id = m->prev_producer_id;
        v.next_producer_id = m->next_producer_id;
        v.producer_epoch = m->producer_epoch;
        v.transaction_timeout_ms = m->timeout_ms;
        v.transaction_status = (int8_t)m->state;
        v.transaction_last_update_timestamp_ms = m->update_ms;
        v.transaction_start_timestamp_ms = m->start_ms;
        v.client_transaction_version = m->client_version;
        /* Kafka writes null partitions for Empty, else one entry per topic. */
        if (m->state == SM_TXN_EMPTY) {
            v.transaction_partitions = NULL;
            v.transaction_partitions_count = -1;
        } else {
            int32_t ntopics = 0;
            for (int32_t i = 0; i < m->ntps; i++)
                ntopics += i == 0 || strcmp(m->tps[i].topic, m->tps[i - 1].topic) != 0;
            v.transaction_partitions = SM_ARENA_NEW(
                a, sm_transaction_log_value_partitions_schema_t, ntopics ? ntopics : 1);
            v.transaction_partitions_count = ntopics;
            int32_t t = -1;
            for (int32_t i = 0; i < m->ntps; i++) {
                if (i == 0 || strcmp(m->tps[i].topic, m->tps[i - 1].topic) != 0) {
                    t++;
                    sm_transaction_log_value_partitions_schema_t *ps = &v.transaction_partitions[t];
                    sm_transaction_log_value_partitions_schema_init(ps);
                    ps->topic = sm_str(m->tps[i].topic);
                    int32_t n = 0;
                    while (i + n < m->ntps && strcmp(m->tps[i + n].topic, m->tps[i].topic) == 0)
                        n++;
                    ps->partition_ids = SM_ARENA_NEW(a, int32_t, n);
                    ps->partition_ids_count = 0;
                }
                sm_transaction_log_value_partitions_schema_t *ps = &v.transaction_partitions[t];
                ps->partition_ids[ps->partition_ids_count++] = m->tps[i].partition;
            }
        }
        int16_t ver = (m->client_version >= 2 || m->prev_producer_id != -1 ||
                       m->next_producer_id != -1)
                          ? 1
                          : 0;
        sm_wbuf_i16(&w, ver);
        sm_transaction_log_value_encode(&w, ver, &v);
        finish(a, &w, &out->value, &out->value_len);
    }
    sm_wbuf_free(&w);
}

/* ------------------------------------------------------------ decoding */

sm_err_t sm_txn_record_decode(const uint8_t *key, int32_t key_len, const uint8_t *value,
                              int32_t value_len, sm_arena_t *a, sm_str_t *id, bool *tombstone,
                              sm_txn_meta_t *out)
{
    memset(out, 0, sizeof *out);
    *tombstone = false;
    if (!key || key_len < 2)
        return SM_ERR_PARSE;
    sm_rd_t r;
    sm_rd_init(&r, key, (size_t)key_len);
    int16_t kv = sm_rd_i16(&r);
    if (kv != 0)
        return SM_ERR_NOT_FOUND;
    sm_transaction_log_key_t k;
    sm_err_t err = sm_transaction_log_key_decode(&r, a, kv, &k);
    if (err)
        return err;
    if (k.transactional_id.len <= 0)
        return SM_ERR_PARSE;
    *id = k.transactional_id;
    if (!value || value_len < 0) {
        *tombstone = true;
        return SM_OK;
    }
    sm_rd_init(&r, value, (size_t)value_len);
    int16_t vv = sm_rd_i16(&r);
    if (r.err)
        return SM_ERR_PARSE;
    if (vv < 0 || vv > 1)
        return SM_ERR_UNSUPPORTED;
    sm_transaction_log_value_t v;
    err = sm_transaction_log_value_decode(&r, a, vv, &v);
    if (err)
        return err;
    if (v.transaction_status < 0 || v.transaction_status >= SM_TXN_NSTATES)
        return SM_ERR_PARSE;
    out->producer_id = v.producer_id;
    out->prev_producer_id = v.previous_producer_id;
    out->next_producer_id = v.next_producer_id;
    out->producer_epoch = v.producer_epoch;
    out->last_epoch = -1;
    out->timeout_ms = v.transaction_timeout_ms;
    out->state = (sm_txn_state_t)v.transaction_status;
    out->start_ms = v.transaction_start_timestamp_ms;
    out->update_ms = v.transaction_last_update_timestamp_ms;
    out->client_version = v.client_transaction_version;
    for (int32_t t = 0; t < v.transaction_partitions_count; t++) {
        const sm_transaction_log_value_partitions_schema_t *ps = &v.transaction_partitions[t];
        if (ps->topic.len < 0) {
            sm_txn_meta_free(out);
            return SM_ERR_PARSE;
        }
        for (int32_t i = 0; i < ps->partition_ids_count; i++)
            (void)sm_txn_meta_add(out, ps->topic.ptr, (size_t)ps->topic.len,
                                  ps->partition_ids[i]);
    }
    return SM_OK;
}
