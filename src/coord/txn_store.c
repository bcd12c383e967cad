/*
 * txn_store.c - the transaction coordinator's durable side and lifecycle:
 * replaying __transaction_state partitions this node comes to lead (and
 * forgetting the ones it stops leading), the periodic passes (abort of
 * timed-out transactions, removal of expired ids, marker retries,
 * restatement), creating the topic on first use, and open/close.
 *
 * Replay: batches from the log start (sm_partition_read_local), control and
 * compressed batches skipped, each record decoded (txn_records.h) and
 * applied in order: the last record of an id wins, a tombstone removes it.
 * A bad record is logged with its partition and offset and skipped. Ids
 * found in PrepareCommit/PrepareAbort get their markers (re)sent and are
 * completed - how a transaction survives a coordinator failover.
 *
 * __transaction_state's existence (c->topic), as the group coordinator's
 * __consumer_offsets:
 *
 *   ABSENT --first transactional call--> CREATING --created--> PRESENT
 *     ^       (sm_txn_topic_want_locked)     |    (create_task, controller thread)
 *     +---------- creation failed -----------+  (no new try for CREATE_RETRY_MS)
 */
#define _GNU_SOURCE
#include "txn_internal.h"

#include "config.h"
#include "log.h"
#include "storage/log.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define CREATE_RETRY_MS 1000
#define TIMER_MAX_SLEEP_MS 1000
#define RESTATE_BATCH_BYTES (512 * 1024)

/* ------------------------------------------------------------ config */

void sm_txn_coord_config_default(sm_txn_coord_config_t *cfg)
{
    memset(cfg, 0, sizeof *cfg);
    cfg->num_partitions = 50;
    cfg->replication_factor = 3;
    cfg->min_isr = 2;
    cfg->segment_bytes = 104857600;
    cfg->max_timeout_ms = 900000;
    cfg->id_expiration_ms = 604800000;
    cfg->abort_interval_ms = 10000;
    cfg->remove_interval_ms = 3600000;
    cfg->write_timeout_ms = 30000;
    cfg->marker_backoff_ms = 100;
    cfg->restate_min_bytes = cfg->segment_bytes;
}

/* A numeric key of the broker's table (unknown or unset keys keep *out). */
static void get_num(const sm_config_t *bc, const char *key, int64_t *out)
{
    const char *v = sm_config_get(bc, key, NULL);
    if (!v || !*v)
        return;
    char *end;
    errno = 0;
    long long n = strtoll(v, &end, 10);
    if (!errno && *end == '\0')
        *out = n;
}

void sm_txn_coord_config_from_broker(const sm_config_t *bc, sm_txn_coord_config_t *cfg)
{
    sm_txn_coord_config_default(cfg);
    if (bc->transaction_state_log_num_partitions > 0)
        cfg->num_partitions = bc->transaction_state_log_num_partitions;
    if (bc->transaction_state_log_replication_factor > 0)
        cfg->replication_factor = bc->transaction_state_log_replication_factor;
    if (bc->transaction_max_timeout_ms > 0)
        cfg->max_timeout_ms = bc->transaction_max_timeout_ms;
    if (bc->transactional_id_expiration_ms > 0)
        cfg->id_expiration_ms = bc->transactional_id_expiration_ms;
    int64_t v = cfg->min_isr;
    get_num(bc, "transaction.state.log.min.isr", &v);
    cfg->min_isr = (int32_t)v;
    v = cfg->segment_bytes;
    get_num(bc, "transaction.state.log.segment.bytes", &v);
    cfg->segment_bytes = (int32_t)v;
    get_num(bc, "transaction.abort.timed.out.transaction.cleanup.interval.ms",
            &cfg->abort_interval_ms);
    get_num(bc, "transaction.remove.expired.transaction.cleanup.interval.ms",
            &cfg->remove_interval_ms);
    cfg->restate_min_bytes = SM_MAX(cfg->segment_bytes, 1);
}

/* ------------------------------------------------------------ replay */

static void apply_record(sm_txn_coord_t *c, int32_t part, int64_t offset, const sm_record_t *rec,
                         sm_arena_t *a)
{
    sm_str_t id;
    bool tomb;
    sm_txn_meta_t m;
    sm_err_t err =
        sm_txn_record_decode(rec->key, rec->key_len, rec->value, rec->value_len, a, &id, &tomb, &m);
    if (err == SM_ERR_NOT_FOUND)
        return;
    if (err) {
        SM_WARN(TXN_TAG, "%s-%d offset %lld: unreadable record skipped (%s)", SM_TXN_COORD_TOPIC,
                part, (long long)offset, sm_err_str(err));
        return;
    }
    if (sm_coord_partition_for(id.ptr, (size_t)id.len, c->nparts) != part) {
        SM_WARN(TXN_TAG, "%s-%d offset %lld: transactional id %.*s belongs elsewhere, skipped",
                SM_TXN_COORD_TOPIC, part, (long long)offset, (int)id.len, id.ptr);
        sm_txn_meta_free(&m);
        return;
    }
    sm_txn_t *t = sm_txn_get(c, id.ptr, (size_t)id.len);
    if (tomb) {
        if (t)
            sm_txn_drop(c, t);
        return;
    }
    if (!t)
        t = sm_txn_create(c, id.ptr, (size_t)id.len, part);
    sm_txn_meta_free(&t->m);
    t->m = m;
}

static size_t replay_buf(sm_txn_coord_t *c, int32_t part, const uint8_t *buf, size_t len,
                         int64_t *off, sm_arena_t *a)
{
    size_t pos = 0;
    while (len - pos >= SM_BATCH_HEADER_SIZE) {
        sm_batch_info_t bi;
        if (sm_batch_header_parse(buf + pos, len - pos, &bi) != SM_OK)
            break;
        int64_t total = sm_batch_total_size(&bi);
        if (total < SM_BATCH_HEADER_SIZE || (size_t)total > len - pos)
            break;
        if (bi.attributes & SM_BATCH_ATTR_COMPRESSION_MASK) {
            SM_WARN(TXN_TAG, "%s-%d offset %lld: compressed batch skipped", SM_TXN_COORD_TOPIC,
                    part, (long long)bi.base_offset);
        } else if (!(bi.attributes & SM_BATCH_ATTR_CONTROL)) {
            sm_record_iter_t it;
            if (sm_record_iter_init(&it, buf + pos, (size_t)total) == SM_OK) {
                sm_record_t rec;
                sm_err_t err;
                while ((err = sm_record_iter_next(&it, &rec)) == SM_OK) {
                    apply_record(c, part, bi.base_offset + rec.offset_delta, &rec, a);
                    sm_arena_reset(a);
                }
                if (err != SM_ERR_NOT_FOUND)
                    SM_WARN(TXN_TAG, "%s-%d offset %lld: malformed batch, rest skipped",
                            SM_TXN_COORD_TOPIC, part, (long long)bi.base_offset);
            }
        }
        *off = sm_batch_last_offset(&bi) + 1;
        pos += (size_t)total;
    }
    return pos;
}

static sm_err_t replay_part(sm_txn_coord_t *c, int32_t part, int64_t *bytes_out)
{
    sm_partition_t *p = c->host.state_partition(c->host.ctx, part);
    if (!p)
        return SM_ERR_AGAIN;
    sm_err_t err = SM_OK;
    int64_t off = sm_partition_log_start(p), end = sm_partition_log_end(p), bytes = 0;
    uint8_t *buf = NULL;
    size_t cap = 0;
    sm_arena_t a;
    sm_arena_init(&a);
    while (off < end) {
        sm_log_slice_t s;
        err = sm_partition_read_local(p, off, 1 << 20, true, &s);
        if (err != SM_OK || s.len == 0)
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
                err = SM_ERR_IO;
                break;
            }
            got += (size_t)r;
        }
        sm_ref_release(s.ref);
        if (err)
            break;
        int64_t before = off;
        size_t used = replay_buf(c, part, buf, got, &off, &a);
        bytes += (int64_t)used;
        if (used == 0 || off <= before) {
            SM_ERROR(TXN_TAG, "%s-%d: no whole batch at offset %lld, replay stops",
                     SM_TXN_COORD_TOPIC, part, (long long)off);
            break;
        }
    }
    if (err)
        SM_ERROR(TXN_TAG, "%s-%d: read at offset %lld failed: %s", SM_TXN_COORD_TOPIC, part,
                 (long long)off, sm_err_str(err));
    free(buf);
    sm_arena_free(&a);
    sm_partition_put(p);
    *bytes_out = bytes;
    return err;
}

/* Forget partition part's ids (their ops in flight become void). */
static int unload_part(sm_txn_coord_t *c, int32_t part)
{
    int n = 0;
    for (sm_hmap_entry_t *e = sm_hmap_next(&c->txns, NULL); e;) {
        sm_hmap_entry_t *next = sm_hmap_next(&c->txns, e);
        sm_txn_t *t = e->value;
        if (t->part == part) {
            sm_txn_drop(c, t);
            n++;
            next = sm_hmap_next(&c->txns, NULL); /* restart: the map changed */
        }
        e = next;
    }
    sm_txn_part_t *tp = &c->parts[part];
    tp->loaded = false;
    tp->npending = 0;
    tp->restate_start = tp->restate_end = -1;
    tp->gen = ++c->next_gen;
    return n;
}

static void load_part(sm_txn_coord_t *c, int32_t part, int32_t epoch, sm_txn_acts_t *acts)
{
    int64_t t0 = sm_now_mono_ms(), bytes = 0;
    size_t before = c->txns.count;
    if (replay_part(c, part, &bytes) != SM_OK) {
        unload_part(c, part); /* partial state goes; the next tick retries */
        return;
    }
    sm_txn_part_t *tp = &c->parts[part];
    tp->loaded = true;
    tp->coord_epoch = epoch;
    tp->gen = ++c->next_gen;
    tp->npending = 0;
    tp->bytes_since = bytes;
    tp->snapshot_bytes = 0;
    tp->restate_start = tp->restate_end = -1;
    int resumed = 0;
    for (sm_hmap_entry_t *e = NULL; (e = sm_hmap_next(&c->txns, e));) {
        sm_txn_t *t = e->value;
        if (t->part == part &&
            (t->m.state == SM_TXN_PREPARE_COMMIT || t->m.state == SM_TXN_PREPARE_ABORT)) {
            sm_txn_markers_begin(c, t, acts);
            resumed++;
        }
    }
    SM_INFO(TXN_TAG, "%s-%d loaded at coordinator epoch %d: %zu transactional ids in %lld ms, "
                     "%d transactions to complete",
            SM_TXN_COORD_TOPIC, part, epoch, c->txns.count - before,
            (long long)(sm_now_mono_ms() - t0), resumed);
}

static void load_pending(sm_txn_coord_t *c, sm_txn_acts_t *acts)
{
    for (int32_t i = 0; i < c->nparts; i++) {
        int32_t epoch = -1;
        bool led = sm_txn_part_led(c, i, &epoch);
        sm_txn_part_t *tp = &c->parts[i];
        if (tp->loaded && (!led || tp->coord_epoch != epoch)) {
            int n = unload_part(c, i);
            SM_INFO(TXN_TAG, "%s-%d: no longer coordinating at epoch %d, %d ids dropped",
                    SM_TXN_COORD_TOPIC, i, tp->coord_epoch, n);
        }
        if (led && !tp->loaded)
            load_part(c, i, epoch, acts);
    }
}

/* ------------------------------------------------------------ periodic passes */

static void abort_timed_out(sm_txn_coord_t *c, int64_t now, sm_txn_acts_t *acts)
{
    for (sm_hmap_entry_t *e = NULL; (e = sm_hmap_next(&c->txns, e));) {
        sm_txn_t *t = e->value;
        if (!c->parts[t->part].loaded || t->pending || t->m.state != SM_TXN_ONGOING ||
            t->m.start_ms + t->m.timeout_ms >= now)
            continue;
        SM_INFO(TXN_TAG, "transactional id %s: transaction older than its timeout (%d ms)", t->id,
                t->m.timeout_ms);
        int16_t err = sm_txn_fence_locked(c, t, NULL, acts);
        if (err)
            SM_WARN(TXN_TAG, "transactional id %s: abort failed (error %d), retried later", t->id,
                    err);
    }
}

static void remove_expired(sm_txn_coord_t *c, int64_t now, sm_txn_acts_t *acts)
{
    for (sm_hmap_entry_t *e = NULL; (e = sm_hmap_next(&c->txns, e));) {
        sm_txn_t *t = e->value;
        sm_txn_state_t s = t->m.state;
        if (!c->parts[t->part].loaded || t->pending ||
            (s != SM_TXN_EMPTY && s != SM_TXN_COMPLETE_COMMIT && s != SM_TXN_COMPLETE_ABORT) ||
            t->m.update_ms + c->cfg.id_expiration_ms > now)
            continue;
        sm_txn_meta_t none = {0};
        (void)sm_txn_write_locked(c, t, &none, SM_TXN_W_TOMBSTONE, NULL, acts);
    }
}

/* Restatement (see txn_coord.h): two steps, so the log start only moves
 * once the ISR has the restated records. */
static void restate(sm_txn_coord_t *c)
{
    for (int32_t i = 0; i < c->nparts; i++) {
        sm_txn_part_t *tp = &c->parts[i];
        if (!tp->loaded)
            continue;
        sm_partition_t *p = c->host.state_partition(c->host.ctx, i);
        if (!p)
            continue;
        if (tp->restate_start >= 0) {
            if (sm_partition_high_watermark(p) >= tp->restate_end) {
                sm_err_t err = sm_partition_delete_records(p, tp->restate_start);
                if (err == SM_OK)
                    SM_INFO(TXN_TAG, "%s-%d: restated %lld bytes, log start now %lld",
                            SM_TXN_COORD_TOPIC, i, (long long)tp->snapshot_bytes,
                            (long long)tp->restate_start);
                else
                    SM_WARN(TXN_TAG, "%s-%d: delete-records failed: %s", SM_TXN_COORD_TOPIC, i,
                            sm_err_str(err));
                tp->restate_start = tp->restate_end = -1;
            }
        } else if (tp->npending == 0 &&
                   tp->bytes_since - tp->snapshot_bytes >=
                       SM_MAX(c->cfg.restate_min_bytes, tp->snapshot_bytes)) {
            sm_arena_t a;
            sm_arena_init(&a);
            sm_coord_kv_t *kvs = NULL;
            int32_t n = 0, cap = 0;
            int64_t first = -1, end = -1, total = 0, size = 0;
            int16_t err = SM_TXN_KERR_NONE;
            for (sm_hmap_entry_t *e = NULL; !err && (e = sm_hmap_next(&c->txns, e));) {
                sm_txn_t *t = e->value;
                if (t->part != i || t->m.producer_epoch < 0)
                    continue; /* epoch -1: created in memory, never written */
                if (n == cap) {
                    cap = cap ? cap * 2 : 64;
                    kvs = sm_xrealloc(kvs, sizeof *kvs * (size_t)cap);
                }
                sm_txn_record_encode(&a, t->id, t->len, &t->m, &kvs[n]);
                size += kvs[n].key_len + kvs[n].value_len + 16;
                n++;
                if (size >= RESTATE_BATCH_BYTES) {
                    int64_t base;
                    err = sm_txn_append(c, i, kvs, n, &base, &end);
                    if (first < 0)
                        first = base;
                    total += size;
                    n = 0, size = 0;
                    sm_arena_reset(&a);
                }
            }
            if (!err && n) {
                int64_t base;
                err = sm_txn_append(c, i, kvs, n, &base, &end);
                if (first < 0)
                    first = base;
                total += size;
            }
            free(kvs);
            sm_arena_free(&a);
            if (!err) {
                if (first < 0) /* nothing live: everything before the end can go */
                    first = end = sm_partition_log_end(p);
                tp->restate_start = first;
                tp->restate_end = end;
                tp->snapshot_bytes = total;
                tp->bytes_since = total;
            }
        }
        sm_partition_put(p);
    }
}

int64_t sm_txn_coord_tick(sm_txn_coord_t *c)
{
    sm_txn_acts_t acts = {0};
    pthread_mutex_lock(&c->mu);
    int64_t now = sm_txn_now(c);
    int64_t next = now + TIMER_MAX_SLEEP_MS;
    if (!c->stopping) {
        if (c->topic == SM_TXN_TOPIC_ABSENT) {
            int32_t n = sm_txn_topic_partitions(c, SM_TXN_COORD_TOPIC);
            if (n > 0) { /* created by someone else (another broker's first use) */
                free(c->parts);
                c->parts = sm_xcalloc((size_t)n, sizeof *c->parts);
                c->nparts = n;
                c->topic = SM_TXN_TOPIC_PRESENT;
            }
        }
        if (c->topic == SM_TXN_TOPIC_PRESENT)
            load_pending(c, &acts);
        if (now >= c->next_abort_ms) {
            abort_timed_out(c, now, &acts);
            c->next_abort_ms = now + c->cfg.abort_interval_ms;
        }
        if (now >= c->next_remove_ms) {
            remove_expired(c, now, &acts);
            c->next_remove_ms = now + c->cfg.remove_interval_ms;
        }
        for (sm_hmap_entry_t *e = NULL; (e = sm_hmap_next(&c->txns, e));) {
            sm_txn_t *t = e->value;
            if (!c->parts[t->part].loaded)
                continue;
            sm_txn_markers_retry_locked(c, t, now, &acts);
            if ((t->complete_due || (t->mk_active && !t->mk_inflight)) && t->mk_retry_ms < next)
                next = SM_MAX(t->mk_retry_ms, now);
        }
        restate(c);
        next = SM_MIN(next, SM_MIN(c->next_abort_ms, c->next_remove_ms));
    }
    int32_t nparts = c->stopping ? 0 : c->nparts;
    pthread_mutex_unlock(&c->mu);
    sm_txn_acts_run(c, &acts);
    /* Writes the ISR did not take within write_timeout_ms fail (their ids
     * stop being pending); nothing else expires waiters on this topic.
     * Without the mutex: the waiters' callbacks take it. */
    int64_t mono = sm_now_mono_ms();
    for (int32_t i = 0; i < nparts; i++) {
        sm_partition_t *p = c->host.state_partition(c->host.ctx, i);
        if (p) {
            sm_partition_expire_hw_waiters(p, mono);
            sm_partition_put(p);
        }
    }
    return next;
}

/* ------------------------------------------------------------ timer thread */

void sm_txn_wake_locked(sm_txn_coord_t *c)
{
    c->timer_wake = true;
    pthread_cond_signal(&c->cv);
}

void sm_txn_coord_wake(sm_txn_coord_t *c)
{
    pthread_mutex_lock(&c->mu);
    sm_txn_wake_locked(c);
    pthread_mutex_unlock(&c->mu);
}

static void *timer_main(void *arg)
{
    sm_txn_coord_t *c = arg;
    pthread_mutex_lock(&c->mu);
    while (!c->stopping) {
        c->timer_wake = false;
        pthread_mutex_unlock(&c->mu);
        int64_t next = sm_txn_coord_tick(c);
        int64_t wait_ms = SM_MAX(0, SM_MIN(next - sm_txn_now(c), TIMER_MAX_SLEEP_MS));
        pthread_mutex_lock(&c->mu);
        if (c->stopping || c->timer_wake || wait_ms == 0)
            continue;
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        ts.tv_sec += wait_ms / 1000;
        ts.tv_nsec += (wait_ms % 1000) * 1000000L;
        if (ts.tv_nsec >= 1000000000L) {
            ts.tv_sec++;
            ts.tv_nsec -= 1000000000L;
        }
        pthread_cond_timedwait(&c->cv, &c->mu, &ts);
    }
    pthread_mutex_unlock(&c->mu);
    return NULL;
}

sm_err_t sm_txn_coord_start_timer(sm_txn_coord_t *c)
{
    if (c->timer_started)
        return SM_OK;
    if (pthread_create(&c->timer, NULL, timer_main, c) != 0) {
        SM_ERROR(TXN_TAG, "cannot start the transaction coordinator's timer thread");
        return SM_ERR_IO;
    }
    c->timer_started = true;
    return SM_OK;
}

/* ------------------------------------------------------------ topic creation */

/* min.insync.replicas capped at the replicas the topic will have (the
 * replication factor capped at the live brokers), as Kafka caps it. */
static int32_t capped_min_isr(sm_txn_coord_t *c, sm_meta_t *meta)
{
    int32_t rf = c->cfg.replication_factor;
    sm_meta_image_t *img = sm_meta_image_get(meta);
    if (img) {
        int live = 0;
        for (int i = 0; i < img->nbrokers; i++)
            live += !img->brokers[i].fenced;
        if (live > 0 && rf > live)
            rf = live;
        sm_meta_image_put(img);
    }
    return SM_MAX(1, SM_MIN(c->cfg.min_isr, rf));
}

static sm_err_t topic_create(sm_txn_coord_t *c)
{
    sm_meta_t *meta = c->host.meta ? c->host.meta(c->host.ctx) : NULL;
    if (!meta)
        return SM_ERR_UNSUPPORTED;
    char seg[32], isr[32];
    snprintf(seg, sizeof seg, "%d", c->cfg.segment_bytes > 0 ? c->cfg.segment_bytes : 104857600);
    snprintf(isr, sizeof isr, "%d", capped_min_isr(c, meta));
    /* retention.ms=-1: never trimmed by time (the broker's retention pass
     * ignores cleanup.policy); the coordinator restates to bound it. */
    sm_topic_kv_t configs[] = {
        {"cleanup.policy", "compact"},
        {"compression.type", "uncompressed"},
        {"min.insync.replicas", isr},
        {"retention.ms", "-1"},
        {"segment.bytes", seg},
        {"unclean.leader.election.enable", "false"},
    };
    return sm_meta_create_internal_topic(meta, SM_TXN_COORD_TOPIC, c->cfg.num_partitions,
                                         c->cfg.replication_factor, configs,
                                         (int)SM_ARRAY_LEN(configs), NULL);
}

static void create_task(void *arg)
{
    sm_txn_coord_t *c = arg;
    pthread_mutex_lock(&c->mu);
    bool stopping = c->stopping;
    pthread_mutex_unlock(&c->mu);
    sm_err_t err = stopping ? SM_ERR_CLOSED : topic_create(c);
    sm_txn_acts_t acts = {0};
    pthread_mutex_lock(&c->mu);
    int32_t n = err ? -1 : sm_txn_topic_partitions(c, SM_TXN_COORD_TOPIC);
    if (err == SM_OK && n <= 0)
        err = SM_ERR_NOT_FOUND;
    if (err == SM_OK) {
        free(c->parts);
        c->parts = sm_xcalloc((size_t)n, sizeof *c->parts);
        c->nparts = n;
        c->topic = SM_TXN_TOPIC_PRESENT;
        load_pending(c, &acts);
        SM_INFO(TXN_TAG, "%s created: %d partitions", SM_TXN_COORD_TOPIC, n);
    } else {
        c->topic = SM_TXN_TOPIC_ABSENT;
        c->create_retry_ms = sm_now_mono_ms() + CREATE_RETRY_MS;
        if (!stopping)
            SM_WARN(TXN_TAG, "could not create %s: %s", SM_TXN_COORD_TOPIC, sm_err_str(err));
    }
    sm_txn_ready_t *w = c->topic_waiters;
    c->topic_waiters = NULL;
    pthread_mutex_unlock(&c->mu);
    sm_txn_acts_run(c, &acts);
    while (w) {
        sm_txn_ready_t *next = w->next;
        w->on_ready(w);
        w = next;
    }
    pthread_mutex_lock(&c->mu);
    c->create_busy = false;
    pthread_cond_broadcast(&c->idle_cv);
    pthread_mutex_unlock(&c->mu);
}

void sm_txn_topic_want_locked(sm_txn_coord_t *c)
{
    if (c->topic != SM_TXN_TOPIC_ABSENT || c->stopping || !c->host.on_controller ||
        sm_now_mono_ms() < c->create_retry_ms)
        return;
    c->topic = SM_TXN_TOPIC_CREATING;
    c->create_busy = true;
    SM_INFO(TXN_TAG, "first transactional request: creating %s (%d partitions)",
            SM_TXN_COORD_TOPIC, c->cfg.num_partitions);
    c->host.on_controller(c->host.ctx, create_task, c);
}

bool sm_txn_coord_await_topic(sm_txn_coord_t *c, sm_txn_ready_t *r)
{
    pthread_mutex_lock(&c->mu);
    sm_txn_topic_want_locked(c);
    bool park = c->topic == SM_TXN_TOPIC_CREATING && !c->stopping;
    if (park) {
        r->next = c->topic_waiters;
        c->topic_waiters = r;
    }
    pthread_mutex_unlock(&c->mu);
    return park;
}

/* ------------------------------------------------------------ lifecycle */

sm_err_t sm_txn_coord_open(const sm_txn_coord_config_t *cfg, const sm_txn_host_t *host,
                           sm_txn_coord_t **out)
{
    sm_txn_coord_t *c = sm_xcalloc(1, sizeof *c);
    c->host = *host;
    c->cfg = *cfg;
    if (c->cfg.marker_backoff_ms <= 0)
        c->cfg.marker_backoff_ms = 100;
    pthread_mutex_init(&c->mu, NULL);
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&c->cv, &ca);
    pthread_condattr_destroy(&ca);
    pthread_cond_init(&c->idle_cv, NULL);
    sm_hmap_init(&c->txns);
    sm_txn_acts_t acts = {0};
    pthread_mutex_lock(&c->mu);
    int64_t now = sm_txn_now(c);
    c->next_abort_ms = now + c->cfg.abort_interval_ms;
    c->next_remove_ms = now + c->cfg.remove_interval_ms;
    int32_t n = sm_txn_topic_partitions(c, SM_TXN_COORD_TOPIC);
    if (n > 0) {
        c->parts = sm_xcalloc((size_t)n, sizeof *c->parts);
        c->nparts = n;
        c->topic = SM_TXN_TOPIC_PRESENT;
        load_pending(c, &acts);
    } else {
        c->topic = SM_TXN_TOPIC_ABSENT;
    }
    pthread_mutex_unlock(&c->mu);
    sm_txn_acts_run(c, &acts);
    SM_INFO(TXN_TAG, "transaction coordinator up: %s %s (%zu transactional ids)",
            SM_TXN_COORD_TOPIC, n > 0 ? "loaded" : "to be created on first use",
            c->txns.count);
    *out = c;
    return SM_OK;
}

void sm_txn_coord_shutdown(sm_txn_coord_t *c)
{
    if (!c)
        return;
    pthread_mutex_lock(&c->mu);
    c->stopping = true;
    pthread_cond_signal(&c->cv);
    pthread_mutex_unlock(&c->mu);
}

void sm_txn_coord_close(sm_txn_coord_t *c)
{
    if (!c)
        return;
    sm_txn_coord_shutdown(c);
    pthread_mutex_lock(&c->mu);
    while (c->create_busy)
        pthread_cond_wait(&c->idle_cv, &c->mu);
    int32_t nparts = c->nparts;
    pthread_mutex_unlock(&c->mu);
    if (c->timer_started)
        pthread_join(c->timer, NULL);
    /* Writes waiting for the ISR are answered now (NOT_COORDINATOR to their
     * callers); only this coordinator waits on __transaction_state. */
    for (int32_t i = 0; i < nparts; i++) {
        sm_partition_t *p = c->host.state_partition(c->host.ctx, i);
        if (p) {
            sm_partition_fail_hw_waiters(p, SM_TXN_KERR_NOT_LEADER_OR_FOLLOWER);
            sm_partition_put(p);
        }
    }
    pthread_mutex_lock(&c->mu);
    while (c->inflight > 0)
        pthread_cond_wait(&c->idle_cv, &c->mu);
    for (sm_hmap_entry_t *e = sm_hmap_next(&c->txns, NULL); e; e = sm_hmap_next(&c->txns, NULL))
        sm_txn_drop(c, e->value);
    sm_hmap_free(&c->txns);
    pthread_mutex_unlock(&c->mu);
    pthread_mutex_destroy(&c->mu);
    pthread_cond_destroy(&c->cv);
    pthread_cond_destroy(&c->idle_cv);
    free(c->parts);
    free(c);
}
