/*
 * coord_store.c - the coordinator's durable side: appending records to
 * __consumer_offsets, replaying partitions at start-up, restating a
 * partition in a snapshot to bound its size, and expiring offsets.
 *
 * Invariant: the in-memory state (groups, offsets, stored metadata) equals
 * the replay of each partition from its log start offset. Offsets are applied
 * only after their append succeeded; group metadata is kept in memory as the
 * exact value bytes last appended (sm_group_t.stored_value), so a snapshot
 * restates what is durable, never a rebalance in flight.
 *
 * Replay: batches are read from the log start with sm_partition_read_local (whole
 * batches), control and compressed batches are skipped, each record is
 * decoded (coord_records.h) and applied: later records override earlier
 * ones, null values delete. A bad record is logged with its partition and
 * offset and skipped.
 *
 * All functions run with the coordinator mutex held (see group_coord.h).
 */
#define _GNU_SOURCE
#include "coord_internal.h"

#include "log.h"
#include "partition/partition.h"
#include "storage/log.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define TOPIC SM_GROUP_COORD_TOPIC
#define TOPIC_LEN (sizeof(TOPIC) - 1)
#define SNAPSHOT_BATCH_BYTES (512 * 1024)

bool sm_coord_part_ready(const sm_group_coord_t *c, int32_t part)
{
    return part >= 0 && part < c->cfg.num_partitions && c->parts[part].loaded;
}

/* ------------------------------------------------------------ append */

static sm_err_t append_batch(sm_group_coord_t *c, int32_t part, const sm_coord_kv_t *kvs,
                             int32_t n, int64_t *base_out, int64_t pid, int16_t epoch)
{
    if (n <= 0)
        return SM_OK;
    sm_partition_t *p = c->host.offsets_partition(c->host.ctx, part);
    if (!p)
        return SM_ERR_NOT_FOUND;
    int64_t ts = sm_now_wall_ms();
    sm_record_in_t *recs = sm_xcalloc((size_t)n, sizeof *recs);
    for (int32_t i = 0; i < n; i++) {
        recs[i].key = kvs[i].key;
        recs[i].key_len = kvs[i].key_len;
        recs[i].value = kvs[i].value;
        recs[i].value_len = kvs[i].value_len;
        recs[i].timestamp = ts;
    }
    sm_batch_params_t bp = {.base_offset = 0,
                            .leader_epoch = -1,
                            .attributes = pid >= 0 ? SM_BATCH_ATTR_TRANSACTIONAL : 0,
                            .producer_id = pid,
                            .producer_epoch = pid >= 0 ? epoch : -1,
                            .base_sequence = -1};
    sm_wbuf_t w;
    sm_wbuf_init(&w);
    sm_batch_encode(&w, &bp, recs, n);
    sm_append_info_t info;
    sm_err_t err = sm_partition_append(p, w.mem, w.len, &info);
    if (err == SM_OK) {
        c->parts[part].bytes_since_snapshot += (int64_t)w.len;
        if (base_out)
            *base_out = info.base_offset;
    } else {
        SM_ERROR("coord", "%s-%d: append of %d records failed: %s", TOPIC, part, n,
                 sm_err_str(err));
    }
    sm_wbuf_free(&w);
    free(recs);
    sm_partition_put(p);
    return err;
}

sm_err_t sm_coord_append(sm_group_coord_t *c, int32_t part, const sm_coord_kv_t *kvs, int32_t n)
{
    return append_batch(c, part, kvs, n, NULL, -1, -1);
}

sm_err_t sm_coord_append_txn(sm_group_coord_t *c, int32_t part, const sm_coord_kv_t *kvs,
                             int32_t n, int64_t pid, int16_t epoch)
{
    return append_batch(c, part, kvs, n, NULL, pid, epoch);
}

int16_t sm_coord_store_group(void *ctx, sm_group_t *g, sm_group_time_t now)
{
    sm_group_coord_t *c = ctx;
    SM_UNUSED(now);
    if (!sm_coord_part_ready(c, g->partition))
        return SM_KERR_NOT_COORDINATOR;
    sm_arena_t a;
    sm_arena_init(&a);
    sm_coord_kv_t kv;
    sm_coord_record_group(&a, g, false, &kv);
    sm_err_t err = sm_coord_append(c, g->partition, &kv, 1);
    if (err == SM_OK) {
        free(g->stored_value);
        g->stored_value = sm_xmalloc((size_t)kv.value_len);
        memcpy(g->stored_value, kv.value, (size_t)kv.value_len);
        g->stored_len = kv.value_len;
    }
    sm_arena_free(&a);
    return err == SM_OK ? SM_KERR_NONE : SM_KERR_COORDINATOR_NOT_AVAILABLE;
}

/* ------------------------------------------------------------ replay */

static void apply_group_value(sm_group_coord_t *c, sm_group_t *g, const sm_group_metadata_value_t *v,
                              const uint8_t *raw, int32_t raw_len, sm_group_time_t now,
                              sm_arena_t *a)
{
    sm_group_restore_meta(g, sm_str_dup(a, v->protocol_type), v->generation,
                          sm_str_dup(a, v->protocol), sm_str_dup(a, v->leader),
                          v->current_state_timestamp >= 0 ? v->current_state_timestamp
                                                          : now.wall_ms);
    for (int32_t i = 0; i < v->members_count; i++) {
        const sm_group_metadata_value_member_metadata_t *m = &v->members[i];
        sm_group_member_t *gm = sm_group_restore_member(
            g, sm_str_dup(a, m->member_id), sm_str_dup(a, m->group_instance_id),
            sm_str_dup(a, m->client_id), sm_str_dup(a, m->client_host), m->session_timeout,
            m->rebalance_timeout, sm_str_dup(a, v->protocol), m->subscription.ptr,
            m->subscription.len, m->assignment.ptr, m->assignment.len, now);
        /* The client id is opaque: keep every byte, NULs included. */
        if (gm && m->client_id.len > 0)
            sm_group_member_set_client_id(gm, m->client_id.ptr, (size_t)m->client_id.len);
    }
    if (v->members_count > 0 && !g->leader_id && g->nmembers > 0)
        g->leader_id = sm_xstrdup(g->members[0]->id);
    free(g->stored_value);
    g->stored_value = sm_xmalloc((size_t)raw_len);
    memcpy(g->stored_value, raw, (size_t)raw_len);
    g->stored_len = raw_len;
    SM_UNUSED(c);
}

static void apply_record(sm_group_coord_t *c, int32_t part, int64_t txn_pid, int64_t offset,
                         const sm_record_t *rec,
                         sm_group_time_t now, sm_arena_t *a)
{
    sm_coord_record_t r;
    sm_err_t err = sm_coord_record_decode(rec->key, rec->key_len, rec->value, rec->value_len, a, &r);
    if (err == SM_ERR_NOT_FOUND)
        return; /* a record kind this coordinator does not keep */
    if (err) {
        SM_WARN("coord", "%s-%d offset %lld: unreadable record skipped (%s)", TOPIC, part,
                (long long)offset, sm_err_str(err));
        return;
    }
    sm_group_t *g = sm_hmap_get(&c->groups, r.group.ptr, (size_t)r.group.len);
    if (g && g->partition != part) {
        SM_WARN("coord", "%s-%d offset %lld: group %s belongs to partition %d, record skipped",
                TOPIC, part, (long long)offset, g->id, g->partition);
        return;
    }
    if (r.kind == SM_COORD_REC_OFFSET && txn_pid >= 0 && !r.tombstone) {
        /* a TxnOffsetCommit: visible once its transaction commits */
        sm_offset_value_t v = {.offset = r.offset.offset,
                               .leader_epoch = r.offset.leader_epoch,
                               .metadata = r.offset.metadata.ptr,
                               .metadata_len = r.offset.metadata.len > 0
                                                   ? (size_t)r.offset.metadata.len
                                                   : 0,
                               .commit_ms = r.offset.commit_timestamp,
                               .expire_ms = r.offset.expire_timestamp};
        sm_coord_txn_add(c, txn_pid, part, r.group.ptr, (size_t)r.group.len, r.topic.ptr,
                         (size_t)r.topic.len, r.partition, &v);
        return;
    }
    if (r.kind == SM_COORD_REC_OFFSET) {
        if (r.tombstone) {
            if (g)
                sm_offset_table_del(&g->offsets, r.topic.ptr, (size_t)r.topic.len, r.partition);
            return;
        }
        if (!g)
            g = sm_coord_group_create(c, r.group.ptr, (size_t)r.group.len, now);
        sm_offset_value_t v = {.offset = r.offset.offset,
                               .leader_epoch = r.offset.leader_epoch,
                               .metadata = r.offset.metadata.ptr,
                               .metadata_len = r.offset.metadata.len > 0
                                                   ? (size_t)r.offset.metadata.len
                                                   : 0,
                               .commit_ms = r.offset.commit_timestamp,
                               .expire_ms = r.offset.expire_timestamp};
        sm_offset_table_put(&g->offsets, r.topic.ptr, (size_t)r.topic.len, r.partition, &v);
        return;
    }
    if (r.tombstone) {
        if (!g)
            return;
        if (g->offsets.count == 0) {
            sm_coord_group_drop(c, g, SM_KERR_NOT_COORDINATOR);
        } else {
            sm_group_restore_meta(g, NULL, 0, NULL, NULL, now.wall_ms);
            free(g->stored_value);
            g->stored_value = NULL;
            g->stored_len = 0;
        }
        return;
    }
    if (!g)
        g = sm_coord_group_create(c, r.group.ptr, (size_t)r.group.len, now);
    apply_group_value(c, g, &r.meta, rec->value, rec->value_len, now, a);
}

/* Replay the batches in buf[0..len); returns bytes consumed and advances *off. */
static size_t replay_buf(sm_group_coord_t *c, int32_t part, const uint8_t *buf, size_t len,
                         int64_t *off, sm_group_time_t now, sm_arena_t *a)
{
    size_t pos = 0;
    while (len - pos >= SM_BATCH_HEADER_SIZE) {
        sm_batch_info_t bi;
        if (sm_batch_header_parse(buf + pos, len - pos, &bi) != SM_OK)
            break;
        int64_t total = sm_batch_total_size(&bi);
        if (total < SM_BATCH_HEADER_SIZE || (size_t)total > len - pos)
            break;
        bool control = bi.attributes & SM_BATCH_ATTR_CONTROL;
        bool compressed = bi.attributes & SM_BATCH_ATTR_COMPRESSION_MASK;
        if (compressed) {
            SM_WARN("coord", "%s-%d offset %lld: compressed batch skipped", TOPIC, part,
                    (long long)bi.base_offset);
        } else if (control) {
            int32_t coord_epoch;
            int type = (bi.attributes & SM_BATCH_ATTR_TRANSACTIONAL)
                           ? sm_pstate_marker_type(buf + pos, (size_t)total, &coord_epoch)
                           : -1;
            if (type >= 0)
                sm_coord_txn_end(c, part, bi.producer_id, type == 1, now);
        } else {
            int64_t txn_pid = (bi.attributes & SM_BATCH_ATTR_TRANSACTIONAL) ? bi.producer_id : -1;
            sm_record_iter_t it;
            if (sm_record_iter_init(&it, buf + pos, (size_t)total) == SM_OK) {
                sm_record_t rec;
                sm_err_t err;
                while ((err = sm_record_iter_next(&it, &rec)) == SM_OK) {
                    apply_record(c, part, txn_pid, bi.base_offset + rec.offset_delta, &rec, now,
                                 a);
                    sm_arena_reset(a);
                }
                if (err != SM_ERR_NOT_FOUND)
                    SM_WARN("coord", "%s-%d offset %lld: malformed batch, rest skipped", TOPIC,
                            part, (long long)bi.base_offset);
            }
        }
        *off = sm_batch_last_offset(&bi) + 1;
        pos += (size_t)total;
    }
    return pos;
}

static sm_err_t load_part(sm_group_coord_t *c, int32_t part, sm_group_time_t now)
{
    sm_partition_t *p = c->host.offsets_partition(c->host.ctx, part);
    if (!p)
        return SM_ERR_AGAIN;
    sm_err_t err = SM_OK;
    int64_t off = sm_partition_log_start(p);
    int64_t end = sm_partition_log_end(p);
    int64_t bytes = 0;
    uint8_t *buf = NULL;
    size_t cap = 0;
    sm_arena_t a;
    sm_arena_init(&a);
    while (off < end) {
        sm_log_slice_t s;
        err = sm_partition_read_local(p, off, 1 << 20, true, &s);
        if (err != SM_OK) {
            SM_ERROR("coord", "%s-%d: read at offset %lld failed: %s", TOPIC, part,
                     (long long)off, sm_err_str(err));
            break;
        }
        if (s.len == 0)
            break;
        if ((size_t)s.len > cap) {
            cap = (size_t)s.len;
            buf = sm_xrealloc(buf, cap);
        }
        size_t got = 0;
        while (got < (size_t)s.len) {
            ssize_t r = pread(s.fd, buf + got, (size_t)s.len - got, s.file_pos + (off_t)got);
            if (r < 0 && errno == EINTR)
                continue;
            if (r <= 0) {
                SM_ERROR("coord", "%s-%d: pread at offset %lld failed", TOPIC, part,
                         (long long)off);
                err = SM_ERR_IO;
                break;
            }
            got += (size_t)r;
        }
        sm_ref_release(s.ref);
        if (err)
            break;
        int64_t before = off;
        size_t used = replay_buf(c, part, buf, got, &off, now, &a);
        bytes += (int64_t)used;
        if (used == 0 || off <= before) {
            SM_ERROR("coord", "%s-%d: no whole batch at offset %lld, stopping the replay", TOPIC,
                     part, (long long)off);
            break;
        }
    }
    free(buf);
    sm_arena_free(&a);
    sm_partition_put(p);
    if (err)
        return err;
    c->parts[part].loaded = true;
    c->parts[part].bytes_since_snapshot = bytes;
    c->parts[part].snapshot_bytes = 0;
    return SM_OK;
}

bool sm_coord_part_led(sm_group_coord_t *c, int32_t part)
{
    sm_partition_t *p = c->host.offsets_partition(c->host.ctx, part);
    if (!p)
        return false;
    bool led = sm_partition_role(p) == SM_ROLE_LEADER && !sm_partition_deleted(p);
    sm_partition_put(p);
    return led;
}

/* This node stopped leading partition part: its groups go (their parked
 * requests answer NOT_COORDINATOR; clients find the new coordinator). */
static int unload_part(sm_group_coord_t *c, int32_t part)
{
    size_t cap = c->groups.count ? c->groups.count : 1, n = 0;
    sm_group_t **gone = sm_xcalloc(cap, sizeof *gone);
    for (sm_hmap_entry_t *e = NULL; (e = sm_hmap_next(&c->groups, e));) {
        sm_group_t *g = e->value;
        if (g->partition == part && n < cap)
            gone[n++] = g;
    }
    for (size_t i = 0; i < n; i++)
        sm_coord_group_drop(c, gone[i], SM_KERR_NOT_COORDINATOR);
    free(gone);
    sm_coord_txn_clear(c, part);
    c->parts[part].loaded = false;
    return (int)n;
}

void sm_coord_load_pending(sm_group_coord_t *c, sm_group_time_t now)
{
    int64_t t0 = sm_now_mono_ms();
    int32_t loaded = 0, pending = 0, released = 0, groups_gone = 0;
    for (int32_t i = 0; i < c->cfg.num_partitions; i++) {
        if (!sm_coord_part_led(c, i)) {
            if (c->parts[i].loaded) {
                groups_gone += unload_part(c, i);
                released++;
            }
            continue;
        }
        if (c->parts[i].loaded)
            continue;
        if (load_part(c, i, now) == SM_OK)
            loaded++;
        else
            pending++;
    }
    c->nunloaded = pending;
    if (loaded)
        SM_INFO("coord", "loaded %d partitions of %s: %zu groups in %lld ms (%d still to load)",
                loaded, TOPIC, c->groups.count, (long long)(sm_now_mono_ms() - t0), c->nunloaded);
    if (released)
        SM_INFO("coord", "no longer leads %d partitions of %s: %d groups handed over", released,
                TOPIC, groups_gone);
}

/* ------------------------------------------------------------ snapshots */

typedef struct kv_batch {
    sm_coord_kv_t *kvs;
    int32_t n, cap;
    size_t bytes;
} kv_batch_t;

static void kv_push(kv_batch_t *b, const sm_coord_kv_t *kv)
{
    if (b->n == b->cap) {
        b->cap = b->cap ? b->cap * 2 : 64;
        b->kvs = sm_xrealloc(b->kvs, sizeof *b->kvs * (size_t)b->cap);
    }
    b->kvs[b->n++] = *kv;
    b->bytes += (size_t)kv->key_len + (size_t)(kv->value_len > 0 ? kv->value_len : 0) + 16;
}

static sm_err_t kv_flush(sm_group_coord_t *c, int32_t part, kv_batch_t *b, int64_t *first_base)
{
    int64_t base = -1;
    sm_err_t err = append_batch(c, part, b->kvs, b->n, &base, -1, -1);
    if (err == SM_OK && b->n && *first_base < 0)
        *first_base = base;
    b->n = 0;
    b->bytes = 0;
    return err;
}

/* Restate partition `part`: every live group's metadata and offsets, then
 * move the log start to the first restated offset. */
static sm_err_t snapshot_part(sm_group_coord_t *c, int32_t part)
{
    sm_partition_t *p = c->host.offsets_partition(c->host.ctx, part);
    if (!p)
        return SM_ERR_NOT_FOUND;
    int64_t end_before = sm_partition_log_end(p);
    int64_t first_base = -1, total = 0;
    sm_err_t err = SM_OK;
    kv_batch_t b = {0};
    sm_arena_t a;
    sm_arena_init(&a);
    for (sm_hmap_entry_t *e = NULL; err == SM_OK && (e = sm_hmap_next(&c->groups, e));) {
        sm_group_t *g = e->value;
        if (g->partition != part)
            continue;
        if (g->stored_value) {
            sm_coord_kv_t kv;
            sm_coord_record_group(&a, g, true, &kv); /* the key */
            kv.value = g->stored_value;
            kv.value_len = g->stored_len;
            kv_push(&b, &kv);
        }
        uint32_t n;
        sm_offset_entry_t **v = sm_offset_table_sorted(&g->offsets, &n);
        for (uint32_t i = 0; i < n; i++) {
            sm_offset_value_t ov = {.offset = v[i]->offset,
                                    .leader_epoch = v[i]->leader_epoch,
                                    .metadata = v[i]->metadata,
                                    .metadata_len = v[i]->metadata_len,
                                    .commit_ms = v[i]->commit_ms,
                                    .expire_ms = v[i]->expire_ms};
            sm_coord_kv_t kv;
            sm_coord_record_offset(&a, g->id, v[i]->topic, v[i]->topic_len, v[i]->partition, &ov,
                                   &kv);
            kv_push(&b, &kv);
        }
        free(v);
        if (b.bytes >= SNAPSHOT_BATCH_BYTES) {
            total += (int64_t)b.bytes;
            err = kv_flush(c, part, &b, &first_base);
            sm_arena_reset(&a);
        }
    }
    if (err == SM_OK && b.n) {
        total += (int64_t)b.bytes;
        err = kv_flush(c, part, &b, &first_base);
    }
    free(b.kvs);
    sm_arena_free(&a);
    if (err == SM_OK) {
        int64_t new_start = first_base >= 0 ? first_base : end_before;
        err = sm_partition_delete_records(p, new_start);
        if (err == SM_OK) {
            c->parts[part].snapshot_bytes = total;
            c->parts[part].bytes_since_snapshot = total;
            SM_INFO("coord", "%s-%d: restated %lld bytes, log start now %lld", TOPIC, part,
                    (long long)total, (long long)new_start);
        }
    }
    sm_partition_put(p);
    return err;
}

void sm_coord_maybe_snapshot(sm_group_coord_t *c)
{
    for (int32_t i = 0; i < c->cfg.num_partitions; i++) {
        sm_coord_part_t *cp = &c->parts[i];
        if (!cp->loaded || sm_coord_txn_pending(c, i)) /* restating would drop them */
            continue;
        int64_t grown = cp->bytes_since_snapshot - cp->snapshot_bytes;
        if (grown < SM_MAX(c->cfg.snapshot_min_bytes, cp->snapshot_bytes))
            continue;
        sm_err_t err = snapshot_part(c, i);
        if (err)
            SM_WARN("coord", "%s-%d: snapshot failed: %s", TOPIC, i, sm_err_str(err));
    }
}

/* ------------------------------------------------------------ expiry */

static bool offset_expired(const sm_group_coord_t *c, const sm_group_t *g,
                           const sm_offset_entry_t *e, int64_t now_wall)
{
    return sm_group_offset_expired(g, e, c->cfg.retention_ms, now_wall);
}

static void expire_group(sm_group_coord_t *c, sm_group_t *g, sm_group_time_t now)
{
    uint32_t n;
    sm_offset_entry_t **v = sm_offset_table_sorted(&g->offsets, &n);
    sm_arena_t a;
    sm_arena_init(&a);
    sm_coord_kv_t *kvs = sm_xcalloc(n + 1, sizeof *kvs);
    int32_t k = 0;
    for (uint32_t i = 0; i < n; i++)
        if (offset_expired(c, g, v[i], now.wall_ms))
            sm_coord_record_offset(&a, g->id, v[i]->topic, v[i]->topic_len, v[i]->partition,
                                   NULL, &kvs[k++]);
    if (k && sm_coord_append(c, g->partition, kvs, k) == SM_OK) {
        SM_INFO("coord", "group %s: %d committed offsets expired", g->id, k);
        for (uint32_t i = 0; i < n; i++)
            if (offset_expired(c, g, v[i], now.wall_ms))
                (void)sm_offset_table_del(&g->offsets, v[i]->topic, v[i]->topic_len,
                                          v[i]->partition);
    }
    free(v);
    free(kvs);
    sm_arena_free(&a);
}

void sm_coord_expire(sm_group_coord_t *c, sm_group_time_t now)
{
    sm_group_t **drop = NULL;
    size_t ndrop = 0, cap = 0;
    for (sm_hmap_entry_t *e = NULL; (e = sm_hmap_next(&c->groups, e));) {
        sm_group_t *g = e->value;
        if (!sm_coord_part_ready(c, g->partition))
            continue;
        if (g->offsets.count)
            expire_group(c, g, now);
        if (!sm_group_is_disposable(g))
            continue;
        if (ndrop == cap) {
            cap = cap ? cap * 2 : 16;
            drop = sm_xrealloc(drop, sizeof *drop * cap);
        }
        drop[ndrop++] = g;
    }
    for (size_t i = 0; i < ndrop; i++) {
        sm_group_t *g = drop[i];
        if (g->stored_value) {
            sm_arena_t a;
            sm_arena_init(&a);
            sm_coord_kv_t kv;
            sm_coord_record_group(&a, g, true, &kv);
            sm_err_t err = sm_coord_append(c, g->partition, &kv, 1);
            sm_arena_free(&a);
            if (err)
                continue; /* keep it; try again next pass */
        }
        SM_INFO("coord", "group %s: empty with no offsets, removed", g->id);
        sm_coord_group_drop(c, g, SM_KERR_COORDINATOR_NOT_AVAILABLE);
    }
    free(drop);
}
