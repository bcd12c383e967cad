/*
 * txn_coord.c - the transaction coordinator's state machine and API (see
 * txn_coord.h for the role, the states and the durability rules;
 * txn_store.c holds loading, expiry, restatement, topic creation and the
 * lifecycle).
 *
 * Every call: lock; check this node coordinates the id (status_locked);
 * validate the request against the id's state exactly as Kafka's
 * TransactionCoordinator does; compute the transition (a full copy of the
 * new state, the "transit"); append it as a record (write_locked) and mark
 * the id pending; unlock. Once the ISR has the record (the hw waiter), the
 * transit replaces the state (written()) and the caller's done runs.
 *
 * Callbacks and host calls that may take other locks or call us back run
 * after the mutex is released: functions that decide them under the mutex
 * push them on an act list, run by the caller after unlocking.
 *
 * Every write op and marker op carries the load generation of its
 * __transaction_state partition: when the partition was unloaded (or
 * reloaded) meanwhile, its completion only answers NOT_COORDINATOR.
 */
#include "txn_internal.h"

#include "log.h"
#include "partition/partition.h"

#include <stdlib.h>
#include <string.h>

#define OFFSETS_TOPIC "__consumer_offsets"
#define MARKER_BACKOFF_MAX_MS 5000

int64_t sm_txn_now(sm_txn_coord_t *c)
{
    return c->host.now_ms ? c->host.now_ms(c->host.ctx) : sm_now_wall_ms();
}

int16_t sm_txn_kerr_for_version(int16_t api_key, int16_t version, int16_t kerr)
{
    if (kerr != SM_TXN_KERR_PRODUCER_FENCED)
        return kerr;
    bool old = (api_key == 22 && version < 4) || (api_key == 24 && version < 2) ||
               (api_key == 25 && version < 2) || (api_key == 26 && version < 2);
    return old ? SM_TXN_KERR_INVALID_PRODUCER_EPOCH : kerr;
}

/* ------------------------------------------------------------ acts */

void sm_txn_acts_push(sm_txn_acts_t *a, void (*fn)(sm_txn_coord_t *, void *), void *arg)
{
    if (a->n == a->cap) {
        a->cap = a->cap ? a->cap * 2 : 8;
        a->v = sm_xrealloc(a->v, sizeof *a->v * (size_t)a->cap);
    }
    a->v[a->n].fn = fn;
    a->v[a->n].arg = arg;
    a->n++;
}

void sm_txn_acts_run(sm_txn_coord_t *c, sm_txn_acts_t *a)
{
    for (int i = 0; i < a->n; i++)
        a->v[i].fn(c, a->v[i].arg);
    free(a->v);
    a->v = NULL;
    a->n = a->cap = 0;
}

/* An outstanding callback finished: close may proceed when none is left. */
void sm_txn_inflight_done(sm_txn_coord_t *c)
{
    pthread_mutex_lock(&c->mu);
    c->inflight--;
    pthread_cond_broadcast(&c->idle_cv);
    pthread_mutex_unlock(&c->mu);
}

static void act_init_done(sm_txn_coord_t *c, void *arg)
{
    SM_UNUSED(c);
    sm_txn_init_t *op = arg;
    op->done(op);
}

static void act_add_done(sm_txn_coord_t *c, void *arg)
{
    SM_UNUSED(c);
    sm_txn_add_t *op = arg;
    for (int32_t i = 0; i < op->nparts; i++)
        if (op->error != SM_TXN_KERR_NONE || !op->verify_only)
            op->parts[i].error = op->error;
    op->done(op);
}

static void act_end_done(sm_txn_coord_t *c, void *arg)
{
    SM_UNUSED(c);
    sm_txn_end_t *op = arg;
    if (op->error != SM_TXN_KERR_NONE) {
        op->out_producer_id = -1;
        op->out_producer_epoch = -1;
    }
    op->done(op);
}

/* ------------------------------------------------------------ ids */

sm_txn_t *sm_txn_get(sm_txn_coord_t *c, const char *id, size_t len)
{
    return sm_hmap_get(&c->txns, id, len);
}

sm_txn_t *sm_txn_create(sm_txn_coord_t *c, const char *id, size_t len, int32_t part)
{
    sm_txn_t *t = sm_xcalloc(1, sizeof *t);
    t->id = sm_xstrndup(id, len);
    t->len = len;
    t->part = part;
    t->m.producer_id = -1;
    t->m.prev_producer_id = -1;
    t->m.next_producer_id = -1;
    t->m.producer_epoch = -1;
    t->m.last_epoch = -1;
    t->m.start_ms = -1;
    sm_hmap_put(&c->txns, t->id, len, t);
    return t;
}

void sm_txn_drop(sm_txn_coord_t *c, sm_txn_t *t)
{
    sm_hmap_del(&c->txns, t->id, t->len);
    sm_txn_meta_free(&t->m);
    sm_txn_meta_free(&t->mk);
    free(t->id);
    free(t);
}

bool sm_txn_part_led(sm_txn_coord_t *c, int32_t part, int32_t *epoch)
{
    sm_partition_t *p = c->host.state_partition(c->host.ctx, part);
    if (!p)
        return false;
    bool led = sm_partition_role(p) == SM_ROLE_LEADER && !sm_partition_deleted(p);
    if (epoch)
        *epoch = sm_partition_leader_epoch(p);
    sm_partition_put(p);
    return led;
}

static int16_t status_locked(sm_txn_coord_t *c, const char *id, size_t len, int32_t *part_out)
{
    if (part_out)
        *part_out = -1;
    if (c->stopping)
        return SM_TXN_KERR_NOT_COORDINATOR;
    if (c->topic != SM_TXN_TOPIC_PRESENT) {
        sm_txn_topic_want_locked(c);
        return SM_TXN_KERR_COORDINATOR_NOT_AVAILABLE;
    }
    int32_t part = sm_coord_partition_for(id, len, c->nparts);
    if (part_out)
        *part_out = part;
    int32_t epoch = -1;
    if (!sm_txn_part_led(c, part, &epoch))
        return SM_TXN_KERR_NOT_COORDINATOR;
    if (!c->parts[part].loaded || c->parts[part].coord_epoch != epoch)
        return SM_TXN_KERR_COORDINATOR_LOAD_IN_PROGRESS;
    return SM_TXN_KERR_NONE;
}

int16_t sm_txn_coord_status(sm_txn_coord_t *c, const char *txn_id, size_t len, int32_t *part)
{
    pthread_mutex_lock(&c->mu);
    int16_t err = status_locked(c, txn_id, len, part);
    pthread_mutex_unlock(&c->mu);
    return err;
}

/* ------------------------------------------------------------ writes */

/* Append kvs to partition part as one batch; *end_out = the log end after
 * it. A Kafka error code. Mutex held (log order = order of decisions). */
int16_t sm_txn_append(sm_txn_coord_t *c, int32_t part, const sm_coord_kv_t *kvs, int32_t n,
                      int64_t *base_out, int64_t *end_out)
{
    sm_partition_t *p = c->host.state_partition(c->host.ctx, part);
    if (!p)
        return SM_TXN_KERR_NOT_COORDINATOR;
    int64_t ts = sm_txn_now(c);
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
                            .attributes = 0,
                            .producer_id = -1,
                            .producer_epoch = -1,
                            .base_sequence = -1};
    sm_wbuf_t w;
    sm_wbuf_init(&w);
    sm_batch_encode(&w, &bp, recs, n);
    sm_append_info_t info;
    sm_err_t err = sm_partition_append(p, w.mem, w.len, &info);
    int16_t kerr = SM_TXN_KERR_NONE;
    if (err == SM_OK) {
        c->parts[part].bytes_since += (int64_t)w.len;
        if (base_out)
            *base_out = info.base_offset;
        if (end_out)
            *end_out = info.last_offset + 1;
    } else {
        SM_WARN(TXN_TAG, "%s-%d: append of %d records failed: %s", SM_TXN_COORD_TOPIC, part, n,
                sm_err_str(err));
        kerr = err == SM_ERR_TOO_LARGE ? SM_TXN_KERR_UNKNOWN_SERVER_ERROR
                                       : SM_TXN_KERR_NOT_COORDINATOR;
    }
    sm_wbuf_free(&w);
    free(recs);
    sm_partition_put(p);
    return kerr;
}

static void written(sm_txn_coord_t *c, sm_txn_wop_t *op, int16_t kerr);

static void hw_done(sm_hw_waiter_t *w, int16_t kerr)
{
    sm_txn_wop_t *op = (sm_txn_wop_t *)w;
    written(op->c, op, kerr);
}

/* After the append: wait (without the mutex) for the ISR to have it. */
static void act_start_wait(sm_txn_coord_t *c, void *arg)
{
    sm_txn_wop_t *op = arg;
    sm_partition_t *p = c->host.state_partition(c->host.ctx, op->part);
    if (!p) {
        written(c, op, SM_TXN_KERR_NOT_LEADER_OR_FOLLOWER);
        return;
    }
    bool there = sm_partition_wait_hw(p, &op->w); /* or done(NOT_LEADER) now */
    sm_partition_put(p);
    if (there)
        written(c, op, SM_TXN_KERR_NONE);
}

/* Append t's transition to *transit (taken over: freed on failure) and mark
 * t pending; the op completes through written(). A Kafka error code when
 * the append itself failed (nothing pending then). Mutex held. */
int16_t sm_txn_write_locked(sm_txn_coord_t *c, sm_txn_t *t, sm_txn_meta_t *transit,
                            sm_txn_wkind_t kind, void *user, sm_txn_acts_t *acts)
{
    sm_arena_t a;
    sm_arena_init(&a);
    sm_coord_kv_t kv;
    sm_txn_record_encode(&a, t->id, t->len, kind == SM_TXN_W_TOMBSTONE ? NULL : transit, &kv);
    int64_t end = -1;
    int16_t err = sm_txn_append(c, t->part, &kv, 1, NULL, &end);
    sm_arena_free(&a);
    if (err) {
        sm_txn_meta_free(transit);
        return err;
    }
    sm_txn_wop_t *op = sm_xcalloc(1, sizeof *op);
    op->w.done = hw_done;
    op->w.target = end;
    op->w.deadline_ms = sm_now_mono_ms() + c->cfg.write_timeout_ms;
    op->c = c;
    op->id = sm_xstrndup(t->id, t->len);
    op->len = t->len;
    op->part = t->part;
    op->gen = c->parts[t->part].gen;
    op->kind = kind;
    op->transit = *transit;
    memset(transit, 0, sizeof *transit);
    op->user = user;
    t->pending = true;
    t->pending_state = kind == SM_TXN_W_TOMBSTONE ? SM_TXN_DEAD : op->transit.state;
    c->parts[t->part].npending++;
    c->inflight++;
    sm_txn_acts_push(acts, act_start_wait, op);
    return SM_TXN_KERR_NONE;
}

/* Kafka's mapping of a failed transaction-log append to the caller's error. */
static int16_t write_error(int16_t kerr)
{
    switch (kerr) {
    case SM_TXN_KERR_UNKNOWN_TOPIC_OR_PARTITION:
    case SM_TXN_KERR_NOT_ENOUGH_REPLICAS:
    case SM_TXN_KERR_NOT_ENOUGH_REPLICAS_AFTER_APPEND:
    case SM_TXN_KERR_REQUEST_TIMED_OUT:
        return SM_TXN_KERR_COORDINATOR_NOT_AVAILABLE;
    case SM_TXN_KERR_UNKNOWN_SERVER_ERROR:
        return kerr;
    default:
        return SM_TXN_KERR_NOT_COORDINATOR;
    }
}

static void set_user_result(sm_txn_wop_t *op, int16_t err, sm_txn_acts_t *acts,
                            const sm_txn_t *t)
{
    if (!op->user)
        return;
    switch (op->kind) {
    case SM_TXN_W_INIT: {
        sm_txn_init_t *u = op->user;
        u->error = err;
        u->out_producer_id = err ? -1 : t->m.producer_id;
        u->out_producer_epoch = err ? -1 : t->m.producer_epoch;
        sm_txn_acts_push(acts, act_init_done, u);
        break;
    }
    case SM_TXN_W_FENCE: { /* InitProducerId that found an ongoing txn */
        sm_txn_init_t *u = op->user;
        u->error = err ? err : SM_TXN_KERR_CONCURRENT_TRANSACTIONS;
        u->out_producer_id = -1;
        u->out_producer_epoch = -1;
        sm_txn_acts_push(acts, act_init_done, u);
        break;
    }
    case SM_TXN_W_ADD: {
        sm_txn_add_t *u = op->user;
        u->error = err;
        sm_txn_acts_push(acts, act_add_done, u);
        break;
    }
    case SM_TXN_W_END: {
        sm_txn_end_t *u = op->user;
        u->error = err;
        if (!err && t->m.client_version >= 2) {
            /* the id and epoch the Complete record will hold */
            bool rotate = t->m.next_producer_id >= 0;
            u->out_producer_id = rotate ? t->m.next_producer_id : t->m.producer_id;
            u->out_producer_epoch = rotate ? 0 : t->m.producer_epoch;
        } else {
            u->out_producer_id = -1;
            u->out_producer_epoch = -1;
        }
        sm_txn_acts_push(acts, act_end_done, u);
        break;
    }
    default:
        break;
    }
}

/* The append of op is in the ISR (kerr 0) or failed. Any thread, no mutex. */
static void written(sm_txn_coord_t *c, sm_txn_wop_t *op, int16_t kerr)
{
    sm_txn_acts_t acts = {0};
    pthread_mutex_lock(&c->mu);
    bool valid = op->part < c->nparts && c->parts[op->part].loaded &&
                 c->parts[op->part].gen == op->gen;
    sm_txn_t *t = valid ? sm_txn_get(c, op->id, op->len) : NULL;
    if (valid)
        c->parts[op->part].npending--;
    int16_t err = !t ? SM_TXN_KERR_NOT_COORDINATOR : kerr ? write_error(kerr) : SM_TXN_KERR_NONE;
    if (t)
        t->pending = false;
    if (err == SM_TXN_KERR_NONE) {
        if (op->kind == SM_TXN_W_TOMBSTONE) {
            SM_INFO(TXN_TAG, "transactional id %s expired and removed", t->id);
            sm_txn_drop(c, t);
            t = NULL;
        } else {
            sm_txn_meta_free(&t->m);
            t->m = op->transit;
            memset(&op->transit, 0, sizeof op->transit);
        }
        set_user_result(op, err, &acts, t);
        if (t && (op->kind == SM_TXN_W_END || op->kind == SM_TXN_W_FENCE))
            sm_txn_markers_begin(c, t, &acts);
    } else {
        if (kerr)
            SM_WARN(TXN_TAG, "transactional id %.*s: write of %s to %s-%d failed (error %d)",
                    (int)op->len, op->id,
                    op->kind == SM_TXN_W_TOMBSTONE ? "a tombstone"
                                                   : sm_txn_state_name(op->transit.state),
                    SM_TXN_COORD_TOPIC, op->part, kerr);
        set_user_result(op, err, &acts, t);
        if (t && op->kind == SM_TXN_W_COMPLETE) {
            /* still coordinating: the markers are written, retry the record */
            t->complete_due = true;
            t->mk_retry_ms = sm_txn_now(c) + c->cfg.marker_backoff_ms;
        }
    }
    pthread_mutex_unlock(&c->mu);
    sm_txn_acts_run(c, &acts);
    sm_txn_meta_free(&op->transit);
    free(op->id);
    free(op);
    sm_txn_inflight_done(c);
}

/* ------------------------------------------------------------ markers */

typedef struct marker_op {
    sm_txn_coord_t *c;
    char *id;
    size_t len;
    int32_t part;
    uint64_t gen;
    sm_txn_meta_t tps; /* the partitions sent (tps only) */
    sm_txn_markers_t m;
} marker_op_t;

static void act_send_markers(sm_txn_coord_t *c, void *arg);

/* The transition to Complete*: (KIP-890) onto the next producer id. */
static void prepare_complete(sm_txn_coord_t *c, const sm_txn_t *t, sm_txn_meta_t *out)
{
    sm_txn_meta_copy(out, &t->m);
    sm_txn_meta_clear_tps(out);
    out->state = t->m.state == SM_TXN_PREPARE_COMMIT ? SM_TXN_COMPLETE_COMMIT
                                                     : SM_TXN_COMPLETE_ABORT;
    if (t->m.client_version >= 2 && t->m.next_producer_id >= 0) {
        out->prev_producer_id = t->m.producer_id;
        out->producer_id = t->m.next_producer_id;
        out->producer_epoch = 0;
    }
    out->next_producer_id = -1;
    out->update_ms = sm_txn_now(c);
}

static void complete_write(sm_txn_coord_t *c, sm_txn_t *t, sm_txn_acts_t *acts)
{
    sm_txn_meta_t transit;
    prepare_complete(c, t, &transit);
    t->mk_active = false;
    t->complete_due = false;
    int16_t err = sm_txn_write_locked(c, t, &transit, SM_TXN_W_COMPLETE, NULL, acts);
    if (err) {
        t->complete_due = true;
        t->mk_retry_ms = sm_txn_now(c) + c->cfg.marker_backoff_ms;
    }
}

static void send_markers_locked(sm_txn_coord_t *c, sm_txn_t *t, sm_txn_acts_t *acts)
{
    marker_op_t *mo = sm_xcalloc(1, sizeof *mo);
    mo->c = c;
    mo->id = sm_xstrndup(t->id, t->len);
    mo->len = t->len;
    mo->part = t->part;
    mo->gen = c->parts[t->part].gen;
    sm_txn_meta_copy(&mo->tps, &t->mk);
    mo->m.transactional_id = mo->id;
    mo->m.producer_id = t->m.producer_id;
    mo->m.producer_epoch = t->m.producer_epoch;
    mo->m.committed = t->m.state == SM_TXN_PREPARE_COMMIT;
    mo->m.coordinator_epoch = c->parts[t->part].coord_epoch;
    mo->m.partitions = mo->tps.tps;
    mo->m.npartitions = mo->tps.ntps;
    t->mk_inflight = true;
    c->inflight++;
    sm_txn_acts_push(acts, act_send_markers, mo);
}

void sm_txn_markers_begin(sm_txn_coord_t *c, sm_txn_t *t, sm_txn_acts_t *acts)
{
    sm_txn_meta_free(&t->mk);
    memset(&t->mk, 0, sizeof t->mk);
    for (int32_t i = 0; i < t->m.ntps; i++)
        (void)sm_txn_meta_add(&t->mk, t->m.tps[i].topic, strlen(t->m.tps[i].topic),
                              t->m.tps[i].partition);
    t->mk_active = true;
    t->mk_inflight = false;
    t->mk_backoff_ms = c->cfg.marker_backoff_ms;
    if (t->mk.ntps == 0)
        complete_write(c, t, acts);
    else
        send_markers_locked(c, t, acts);
}

void sm_txn_markers_retry_locked(sm_txn_coord_t *c, sm_txn_t *t, int64_t now,
                                 sm_txn_acts_t *acts)
{
    if (t->pending || t->mk_retry_ms > now)
        return;
    if (t->complete_due)
        complete_write(c, t, acts);
    else if (t->mk_active && !t->mk_inflight && t->mk.ntps > 0)
        send_markers_locked(c, t, acts);
}

/* Partitions of topic per the metadata (-1: no such topic). Mutex held. */
int32_t sm_txn_topic_partitions(sm_txn_coord_t *c, const char *topic)
{
    if (c->host.topic_partitions)
        return c->host.topic_partitions(c->host.ctx, topic);
    sm_meta_t *meta = c->host.meta ? c->host.meta(c->host.ctx) : NULL;
    sm_meta_image_t *img = meta ? sm_meta_image_get(meta) : NULL;
    const sm_topic_meta_t *tm = img ? sm_meta_image_topic(img, topic, strlen(topic)) : NULL;
    int32_t n = tm ? tm->npartitions : -1;
    if (img)
        sm_meta_image_put(img);
    return n;
}

/* Kafka's handling of a WriteTxnMarkers partition error: true when this
 * partition needs no more tries. */
static bool marker_settled(int16_t kerr)
{
    return kerr == SM_TXN_KERR_NONE || kerr == SM_TXN_KERR_UNSUPPORTED_FOR_MESSAGE_FORMAT ||
           kerr == SM_TXN_KERR_UNSUPPORTED_VERSION;
}

static void markers_done(void *arg, const int16_t *errs)
{
    marker_op_t *mo = arg;
    sm_txn_coord_t *c = mo->c;
    sm_txn_acts_t acts = {0};
    pthread_mutex_lock(&c->mu);
    bool valid = mo->part < c->nparts && c->parts[mo->part].loaded &&
                 c->parts[mo->part].gen == mo->gen;
    sm_txn_t *t = valid ? sm_txn_get(c, mo->id, mo->len) : NULL;
    if (t && t->mk_active && t->mk_inflight) {
        t->mk_inflight = false;
        bool fenced = false;
        int32_t failed = 0;
        for (int32_t i = 0; i < mo->m.npartitions; i++) {
            const sm_txn_tp_t *tp = &mo->m.partitions[i];
            int16_t e = errs[i];
            if (e == SM_TXN_KERR_INVALID_PRODUCER_EPOCH ||
                e == SM_TXN_KERR_TRANSACTION_COORDINATOR_FENCED) {
                fenced = true; /* Kafka: the producer or coordinator moved on; stop */
                continue;
            }
            bool gone = sm_txn_topic_partitions(c, tp->topic) <= tp->partition;
            if (marker_settled(e) || gone) {
                /* drop it from the partitions still to do */
                sm_txn_meta_t rest = {0};
                for (int32_t k = 0; k < t->mk.ntps; k++)
                    if (strcmp(t->mk.tps[k].topic, tp->topic) != 0 ||
                        t->mk.tps[k].partition != tp->partition)
                        (void)sm_txn_meta_add(&rest, t->mk.tps[k].topic,
                                              strlen(t->mk.tps[k].topic), t->mk.tps[k].partition);
                sm_txn_meta_free(&t->mk);
                t->mk = rest;
            } else {
                failed++;
            }
        }
        if (fenced) {
            SM_WARN(TXN_TAG, "transactional id %s: markers fenced (producer or coordinator epoch "
                             "moved on); not completing here", t->id);
            t->mk_active = false;
        } else if (t->mk.ntps == 0) {
            complete_write(c, t, &acts);
        } else {
            SM_INFO(TXN_TAG, "transactional id %s: %d markers failed, retry in %lld ms", t->id,
                    failed, (long long)t->mk_backoff_ms);
            t->mk_retry_ms = sm_txn_now(c) + t->mk_backoff_ms;
            t->mk_backoff_ms = SM_MIN(t->mk_backoff_ms * 2, MARKER_BACKOFF_MAX_MS);
            sm_txn_wake_locked(c);
        }
    }
    pthread_mutex_unlock(&c->mu);
    sm_txn_acts_run(c, &acts);
    sm_txn_meta_free(&mo->tps);
    free(mo->id);
    free(mo);
    sm_txn_inflight_done(c);
}

static void act_send_markers(sm_txn_coord_t *c, void *arg)
{
    marker_op_t *mo = arg;
    c->host.write_markers(c->host.ctx, &mo->m, markers_done, mo);
}

/* ------------------------------------------------------------ transitions */

static bool epoch_exhausted(int16_t epoch)
{
    return epoch >= INT16_MAX - 1;
}

/* t's state as a base for a transit. */
static void transit_from(sm_txn_coord_t *c, const sm_txn_t *t, sm_txn_meta_t *out,
                         sm_txn_state_t state)
{
    sm_txn_meta_copy(out, &t->m);
    out->state = state;
    out->update_ms = sm_txn_now(c);
}

/* Ongoing -> PrepareCommit/PrepareAbort (Kafka's prepareAbortOrCommit).
 * v2 bumps the epoch (and names the next producer id when exhausted). */
static void prepare_end(sm_txn_coord_t *c, const sm_txn_t *t, sm_txn_meta_t *out,
                        sm_txn_state_t next, int16_t client_version, int64_t next_pid,
                        bool no_partition_added)
{
    transit_from(c, t, out, next);
    if (client_version >= 2) {
        out->last_epoch = t->m.producer_epoch;
        if (t->m.producer_epoch < INT16_MAX)
            out->producer_epoch = (int16_t)(t->m.producer_epoch + 1);
        out->next_producer_id = next_pid;
    }
    if (no_partition_added)
        out->start_ms = out->update_ms;
    out->client_version = client_version;
}

/* An Ongoing transaction aborted by the coordinator (timeout, or a new
 * InitProducerId): Kafka's PrepareEpochFence, which is never written -
 * the bumped epoch goes straight into the PrepareAbort record. */
static void prepare_fence(sm_txn_coord_t *c, const sm_txn_t *t, sm_txn_meta_t *out)
{
    sm_txn_t fenced = *t;
    if (t->m.producer_epoch < INT16_MAX)
        fenced.m.producer_epoch = (int16_t)(t->m.producer_epoch + 1);
    fenced.m.last_epoch = -1;
    prepare_end(c, &fenced, out, SM_TXN_PREPARE_ABORT, t->m.client_version, -1, false);
}

int16_t sm_txn_fence_locked(sm_txn_coord_t *c, sm_txn_t *t, void *user, sm_txn_acts_t *acts)
{
    sm_txn_meta_t transit;
    prepare_fence(c, t, &transit);
    SM_INFO(TXN_TAG, "transactional id %s: aborting the ongoing transaction, epoch %d -> %d",
            t->id, t->m.producer_epoch, transit.producer_epoch);
    return sm_txn_write_locked(c, t, &transit, SM_TXN_W_FENCE, user, acts);
}

/* ------------------------------------------------------------ InitProducerId */

static bool valid_expected_pid(const sm_txn_t *t, int64_t pid, int16_t epoch)
{
    return t->m.producer_epoch == -1 || pid == t->m.producer_id ||
           (pid == t->m.prev_producer_id && epoch_exhausted(epoch));
}

/* Kafka's prepareIncrementProducerEpoch. */
static int16_t prepare_bump(sm_txn_coord_t *c, const sm_txn_t *t, const sm_txn_init_t *op,
                            bool expected, sm_txn_meta_t *out)
{
    int16_t bumped = (int16_t)(t->m.producer_epoch + 1), epoch, last;
    if (!expected) {
        epoch = bumped, last = -1;
    } else if (t->m.producer_epoch == -1 || op->producer_epoch == t->m.producer_epoch) {
        epoch = bumped, last = t->m.producer_epoch;
    } else if (op->producer_epoch == t->m.last_epoch) {
        epoch = t->m.producer_epoch, last = t->m.last_epoch; /* a retry of a bump */
    } else {
        return SM_TXN_KERR_PRODUCER_FENCED;
    }
    transit_from(c, t, out, SM_TXN_EMPTY);
    sm_txn_meta_clear_tps(out);
    out->producer_epoch = epoch;
    out->last_epoch = last;
    out->timeout_ms = op->timeout_ms;
    out->start_ms = -1;
    out->next_producer_id = -1;
    return SM_TXN_KERR_NONE;
}

/* Takes a producer id without the mutex. */
static int16_t alloc_pid(sm_txn_coord_t *c, int64_t *pid)
{
    if (!c->host.alloc_producer_id)
        return SM_TXN_KERR_COORDINATOR_NOT_AVAILABLE;
    return c->host.alloc_producer_id(c->host.ctx, pid);
}

void sm_txn_coord_init_producer(sm_txn_coord_t *c, sm_txn_init_t *op)
{
    op->out_producer_id = -1;
    op->out_producer_epoch = -1;
    if (!op->transactional_id) { /* idempotent producer */
        int64_t pid = -1;
        op->error = alloc_pid(c, &pid);
        if (!op->error) {
            op->out_producer_id = pid;
            op->out_producer_epoch = 0;
        }
        op->done(op);
        return;
    }
    if (op->id_len == 0) {
        op->error = SM_TXN_KERR_INVALID_REQUEST;
        op->done(op);
        return;
    }
    if (op->timeout_ms <= 0 || op->timeout_ms > c->cfg.max_timeout_ms) {
        op->error = SM_TXN_KERR_INVALID_TRANSACTION_TIMEOUT;
        op->done(op);
        return;
    }
    bool expected = op->producer_id != -1 || op->producer_epoch != -1;
    int64_t spare = -1; /* a producer id taken outside the mutex */
    sm_txn_acts_t acts = {0};
    int16_t err;
    for (;;) {
        bool need_pid = false;
        pthread_mutex_lock(&c->mu);
        int32_t part;
        err = status_locked(c, op->transactional_id, op->id_len, &part);
        if (err)
            break;
        sm_txn_t *t = sm_txn_get(c, op->transactional_id, op->id_len);
        if (!t) {
            if (spare < 0) {
                need_pid = true;
            } else {
                /* as Kafka, the id exists in memory from now on (Empty, no epoch) */
                t = sm_txn_create(c, op->transactional_id, op->id_len, part);
                t->m.producer_id = spare;
                t->m.timeout_ms = op->timeout_ms;
                t->m.state = SM_TXN_EMPTY;
                t->m.update_ms = sm_txn_now(c);
                spare = -1;
            }
        }
        if (!need_pid) {
            sm_txn_meta_t transit;
            if (t->pending) {
                err = SM_TXN_KERR_CONCURRENT_TRANSACTIONS;
            } else if (expected && !valid_expected_pid(t, op->producer_id, op->producer_epoch)) {
                err = SM_TXN_KERR_PRODUCER_FENCED;
            } else {
                switch (t->m.state) {
                case SM_TXN_EMPTY:
                case SM_TXN_COMPLETE_COMMIT:
                case SM_TXN_COMPLETE_ABORT:
                    if (epoch_exhausted(t->m.producer_epoch) &&
                        (!expected || op->producer_epoch == t->m.producer_epoch)) {
                        if (spare < 0) {
                            need_pid = true;
                            break;
                        }
                        /* Kafka's prepareProducerIdRotation */
                        transit_from(c, t, &transit, SM_TXN_EMPTY);
                        sm_txn_meta_clear_tps(&transit);
                        transit.prev_producer_id = t->m.producer_id;
                        transit.producer_id = spare;
                        transit.producer_epoch = 0;
                        transit.last_epoch = expected ? t->m.producer_epoch : -1;
                        transit.timeout_ms = op->timeout_ms;
                        transit.start_ms = -1;
                        transit.next_producer_id = -1;
                        spare = -1;
                    } else {
                        err = prepare_bump(c, t, op, expected, &transit);
                        if (err)
                            break;
                    }
                    err = sm_txn_write_locked(c, t, &transit, SM_TXN_W_INIT, op, &acts);
                    if (!err)
                        op = NULL; /* answered by written() */
                    break;
                case SM_TXN_ONGOING:
                    /* abort it first; the client retries (CONCURRENT_TRANSACTIONS)
                     * and then gets a second bump */
                    err = sm_txn_fence_locked(c, t, op, &acts);
                    if (!err)
                        op = NULL;
                    break;
                default: /* Prepare*: markers being written */
                    err = SM_TXN_KERR_CONCURRENT_TRANSACTIONS;
                    break;
                }
            }
        }
        if (!need_pid)
            break;
        pthread_mutex_unlock(&c->mu);
        err = alloc_pid(c, &spare);
        if (err) {
            pthread_mutex_lock(&c->mu);
            break;
        }
    }
    pthread_mutex_unlock(&c->mu);
    sm_txn_acts_run(c, &acts);
    if (op) {
        op->error = err;
        op->done(op);
    }
}

/* ------------------------------------------------------------ AddPartitions */

static int16_t check_pid_epoch(const sm_txn_t *t, int64_t pid, int16_t epoch)
{
    if (t->m.producer_id != pid)
        return SM_TXN_KERR_INVALID_PRODUCER_ID_MAPPING;
    if (t->m.producer_epoch != epoch)
        return SM_TXN_KERR_PRODUCER_FENCED;
    return SM_TXN_KERR_NONE;
}

static bool is_prepare(sm_txn_state_t s)
{
    return s == SM_TXN_PREPARE_COMMIT || s == SM_TXN_PREPARE_ABORT;
}

void sm_txn_coord_add_partitions(sm_txn_coord_t *c, sm_txn_add_t *op)
{
    sm_txn_acts_t acts = {0};
    int16_t err = SM_TXN_KERR_NONE;
    if (!op->transactional_id || op->id_len == 0) {
        op->error = SM_TXN_KERR_INVALID_REQUEST;
        act_add_done(c, op);
        return;
    }
    pthread_mutex_lock(&c->mu);
    err = status_locked(c, op->transactional_id, op->id_len, NULL);
    sm_txn_t *t = err ? NULL : sm_txn_get(c, op->transactional_id, op->id_len);
    if (!err && !t)
        err = SM_TXN_KERR_INVALID_PRODUCER_ID_MAPPING;
    if (!err && op->verify_only) {
        /* KIP-890 part 1: a leader checks before a transactional write */
        err = check_pid_epoch(t, op->producer_id, op->producer_epoch);
        if (!err && is_prepare(t->m.state))
            err = SM_TXN_KERR_CONCURRENT_TRANSACTIONS;
        if (!err)
            for (int32_t i = 0; i < op->nparts; i++)
                op->parts[i].error =
                    sm_txn_meta_has(&t->m, op->parts[i].topic, op->parts[i].partition)
                        ? SM_TXN_KERR_NONE
                        : SM_TXN_KERR_TRANSACTION_ABORTABLE;
    } else if (!err) {
        err = check_pid_epoch(t, op->producer_id, op->producer_epoch);
        if (!err && (t->pending || is_prepare(t->m.state)))
            err = SM_TXN_KERR_CONCURRENT_TRANSACTIONS;
        if (!err && t->m.state != SM_TXN_ONGOING && t->m.state != SM_TXN_EMPTY &&
            t->m.state != SM_TXN_COMPLETE_COMMIT && t->m.state != SM_TXN_COMPLETE_ABORT)
            err = SM_TXN_KERR_INVALID_TXN_STATE;
        if (!err) {
            bool all_in = t->m.state == SM_TXN_ONGOING;
            for (int32_t i = 0; all_in && i < op->nparts; i++)
                all_in = sm_txn_meta_has(&t->m, op->parts[i].topic, op->parts[i].partition);
            if (!all_in) { /* Kafka's prepareAddPartitions */
                sm_txn_meta_t transit;
                transit_from(c, t, &transit, SM_TXN_ONGOING);
                if (t->m.state != SM_TXN_ONGOING)
                    transit.start_ms = transit.update_ms;
                for (int32_t i = 0; i < op->nparts; i++)
                    (void)sm_txn_meta_add(&transit, op->parts[i].topic, strlen(op->parts[i].topic),
                                          op->parts[i].partition);
                transit.client_version = op->client_version;
                err = sm_txn_write_locked(c, t, &transit, SM_TXN_W_ADD, op, &acts);
                if (!err)
                    op = NULL;
            }
        }
    }
    pthread_mutex_unlock(&c->mu);
    sm_txn_acts_run(c, &acts);
    if (op) {
        op->error = err;
        act_add_done(c, op);
    }
}

void sm_txn_coord_add_offsets(sm_txn_coord_t *c, sm_txn_add_t *op, const char *group_id,
                              size_t group_len)
{
    int32_t n = c->host.offsets_partition_count ? c->host.offsets_partition_count(c->host.ctx)
                                                : -1;
    op->nparts = 1;
    op->verify_only = false;
    op->parts[0].topic = OFFSETS_TOPIC;
    op->parts[0].partition = n > 0 ? sm_coord_partition_for(group_id, group_len, n) : -1;
    if (n <= 0) {
        op->error = SM_TXN_KERR_COORDINATOR_NOT_AVAILABLE;
        act_add_done(c, op);
        return;
    }
    sm_txn_coord_add_partitions(c, op);
}

/* ------------------------------------------------------------ EndTxn */

void sm_txn_coord_end(sm_txn_coord_t *c, sm_txn_end_t *op)
{
    op->out_producer_id = -1;
    op->out_producer_epoch = -1;
    if (!op->transactional_id || op->id_len == 0) {
        op->error = SM_TXN_KERR_INVALID_REQUEST;
        act_end_done(c, op);
        return;
    }
    bool v2 = op->client_version >= 2;
    bool commit = op->committed;
    sm_txn_state_t prep = commit ? SM_TXN_PREPARE_COMMIT : SM_TXN_PREPARE_ABORT;
    sm_txn_acts_t acts = {0};
    int64_t spare = -1;
    int16_t err;
    for (;;) {
        bool need_pid = false;
        pthread_mutex_lock(&c->mu);
        err = status_locked(c, op->transactional_id, op->id_len, NULL);
        sm_txn_t *t = err ? NULL : sm_txn_get(c, op->transactional_id, op->id_len);
        if (!err && !t)
            err = SM_TXN_KERR_INVALID_PRODUCER_ID_MAPPING;
        if (err)
            break;
        /* the transition to write, if any: (state, no_partition_added) */
        bool write = false, no_parts = false;
        if (!v2) {
            err = check_pid_epoch(t, op->producer_id, op->producer_epoch);
            if (!err && t->pending)
                err = SM_TXN_KERR_CONCURRENT_TRANSACTIONS;
            if (!err) {
                switch (t->m.state) {
                case SM_TXN_ONGOING:
                    write = true;
                    break;
                case SM_TXN_COMPLETE_COMMIT:
                    err = commit ? SM_TXN_KERR_NONE : SM_TXN_KERR_INVALID_TXN_STATE;
                    break;
                case SM_TXN_COMPLETE_ABORT:
                    err = !commit ? SM_TXN_KERR_NONE : SM_TXN_KERR_INVALID_TXN_STATE;
                    break;
                case SM_TXN_PREPARE_COMMIT:
                    err = commit ? SM_TXN_KERR_CONCURRENT_TRANSACTIONS
                                 : SM_TXN_KERR_INVALID_TXN_STATE;
                    break;
                case SM_TXN_PREPARE_ABORT:
                    err = !commit ? SM_TXN_KERR_CONCURRENT_TRANSACTIONS
                                  : SM_TXN_KERR_INVALID_TXN_STATE;
                    break;
                default:
                    err = SM_TXN_KERR_INVALID_TXN_STATE;
                    break;
                }
            }
        } else {
            /* KIP-890 v2: each EndTxn bumps the epoch, so a retry carries
             * the epoch before the bump (or the last epoch of the old id) */
            bool retry_overflow = t->m.prev_producer_id == op->producer_id &&
                                  op->producer_epoch == INT16_MAX - 1 &&
                                  t->m.producer_epoch == 0;
            bool retry_bump = t->m.producer_epoch == op->producer_epoch + 1;
            bool retry = retry_overflow || retry_bump;
            bool valid_epoch;
            switch (t->m.state) {
            case SM_TXN_PREPARE_COMMIT:
            case SM_TXN_PREPARE_ABORT:
                valid_epoch = retry_bump;
                break;
            case SM_TXN_COMPLETE_COMMIT:
            case SM_TXN_COMPLETE_ABORT:
                valid_epoch = retry || op->producer_epoch == t->m.producer_epoch;
                break;
            default:
                valid_epoch = op->producer_epoch == t->m.producer_epoch;
                break;
            }
            if (t->m.producer_id != op->producer_id && !retry_overflow)
                err = SM_TXN_KERR_INVALID_PRODUCER_ID_MAPPING;
            else if (!valid_epoch)
                err = SM_TXN_KERR_PRODUCER_FENCED;
            else if (t->pending)
                err = SM_TXN_KERR_CONCURRENT_TRANSACTIONS;
            else {
                switch (t->m.state) {
                case SM_TXN_ONGOING:
                    write = true;
                    break;
                case SM_TXN_COMPLETE_COMMIT:
                    if (commit)
                        err = retry ? SM_TXN_KERR_NONE : SM_TXN_KERR_INVALID_TXN_STATE;
                    else if (retry)
                        err = SM_TXN_KERR_INVALID_TXN_STATE;
                    else
                        write = no_parts = true;
                    break;
                case SM_TXN_COMPLETE_ABORT:
                    if (!commit && retry)
                        err = SM_TXN_KERR_NONE;
                    else if (!commit)
                        write = no_parts = true;
                    else
                        err = SM_TXN_KERR_INVALID_TXN_STATE;
                    break;
                case SM_TXN_PREPARE_COMMIT:
                    err = commit ? SM_TXN_KERR_CONCURRENT_TRANSACTIONS
                                 : SM_TXN_KERR_INVALID_TXN_STATE;
                    break;
                case SM_TXN_PREPARE_ABORT:
                    err = !commit ? SM_TXN_KERR_CONCURRENT_TRANSACTIONS
                                  : SM_TXN_KERR_INVALID_TXN_STATE;
                    break;
                case SM_TXN_EMPTY:
                    if (!commit)
                        write = no_parts = true;
                    else
                        err = SM_TXN_KERR_INVALID_TXN_STATE;
                    break;
                default:
                    err = SM_TXN_KERR_INVALID_TXN_STATE;
                    break;
                }
            }
            if (err == SM_TXN_KERR_NONE && !write) { /* a retry: the current id and epoch */
                op->out_producer_id = t->m.producer_id;
                op->out_producer_epoch = t->m.producer_epoch;
            }
            if (write && epoch_exhausted(t->m.producer_epoch) && spare < 0)
                need_pid = true; /* the Prepare record names the next producer id */
        }
        if (write && !need_pid) {
            sm_txn_meta_t transit;
            prepare_end(c, t, &transit, write && no_parts ? SM_TXN_PREPARE_ABORT : prep,
                        v2 ? op->client_version : t->m.client_version,
                        v2 && epoch_exhausted(t->m.producer_epoch) ? spare : -1, no_parts);
            if (v2 && epoch_exhausted(t->m.producer_epoch))
                spare = -1;
            err = sm_txn_write_locked(c, t, &transit, SM_TXN_W_END, op, &acts);
            if (!err)
                op = NULL;
        }
        if (!need_pid)
            break;
        pthread_mutex_unlock(&c->mu);
        err = alloc_pid(c, &spare);
        if (err) {
            pthread_mutex_lock(&c->mu);
            break;
        }
    }
    pthread_mutex_unlock(&c->mu);
    sm_txn_acts_run(c, &acts);
    if (op) {
        op->error = err;
        act_end_done(c, op);
    }
}

/* ------------------------------------------------------------ Describe / List */

static sm_txn_tp_t *tps_to_arena(sm_arena_t *a, const sm_txn_meta_t *m)
{
    sm_txn_tp_t *v = SM_ARENA_NEW(a, sm_txn_tp_t, m->ntps ? m->ntps : 1);
    for (int32_t i = 0; i < m->ntps; i++) {
        v[i].topic = sm_arena_strndup(a, m->tps[i].topic, strlen(m->tps[i].topic));
        v[i].partition = m->tps[i].partition;
    }
    return v;
}

void sm_txn_coord_describe(sm_txn_coord_t *c, const char *txn_id, size_t len, sm_arena_t *a,
                           sm_txn_desc_t *out)
{
    memset(out, 0, sizeof *out);
    out->producer_id = -1;
    out->producer_epoch = -1;
    out->start_ms = -1;
    out->state = "";
    pthread_mutex_lock(&c->mu);
    /* describing never creates the topic: without it no id exists */
    int16_t err = c->topic != SM_TXN_TOPIC_PRESENT && !c->stopping
                      ? SM_TXN_KERR_TRANSACTIONAL_ID_NOT_FOUND
                      : status_locked(c, txn_id, len, NULL);
    sm_txn_t *t = err ? NULL : sm_txn_get(c, txn_id, len);
    if (!err && !t)
        err = SM_TXN_KERR_TRANSACTIONAL_ID_NOT_FOUND;
    out->error = err;
    if (t) {
        out->state = sm_txn_state_name(t->m.state);
        out->timeout_ms = t->m.timeout_ms;
        out->start_ms = t->m.start_ms;
        out->producer_id = t->m.producer_id;
        out->producer_epoch = t->m.producer_epoch;
        out->tps = tps_to_arena(a, &t->m);
        out->ntps = t->m.ntps;
    }
    pthread_mutex_unlock(&c->mu);
}

int16_t sm_txn_coord_list(sm_txn_coord_t *c, const sm_txn_list_filter_t *f, sm_arena_t *a,
                          sm_txn_listing_t **out, int32_t *n, sm_str_t **unknown,
                          int32_t *nunknown)
{
    uint32_t mask = 0;
    *unknown = SM_ARENA_NEW(a, sm_str_t, f->nstates > 0 ? f->nstates : 1);
    *nunknown = 0;
    for (int32_t i = 0; i < f->nstates; i++) {
        int s = f->states[i].len >= 0
                    ? sm_txn_state_parse(f->states[i].ptr, (size_t)f->states[i].len)
                    : -1;
        if (s < 0)
            (*unknown)[(*nunknown)++] = f->states[i];
        else
            mask |= 1u << s;
    }
    *out = NULL;
    *n = 0;
    pthread_mutex_lock(&c->mu);
    int16_t err = SM_TXN_KERR_NONE;
    if (c->stopping)
        err = SM_TXN_KERR_NOT_COORDINATOR;
    for (int32_t i = 0; !err && i < c->nparts; i++)
        if (!c->parts[i].loaded && sm_txn_part_led(c, i, NULL))
            err = SM_TXN_KERR_COORDINATOR_LOAD_IN_PROGRESS;
    if (!err && c->txns.count) {
        int64_t now = sm_txn_now(c);
        *out = SM_ARENA_NEW(a, sm_txn_listing_t, c->txns.count);
        for (sm_hmap_entry_t *e = NULL; (e = sm_hmap_next(&c->txns, e));) {
            const sm_txn_t *t = e->value;
            if (!c->parts[t->part].loaded)
                continue;
            if (f->nstates > 0 && !(mask & (1u << t->m.state)))
                continue;
            bool pid_ok = f->nproducer_ids <= 0;
            for (int32_t k = 0; !pid_ok && k < f->nproducer_ids; k++)
                pid_ok = f->producer_ids[k] == t->m.producer_id;
            if (!pid_ok)
                continue;
            if (t->m.state == SM_TXN_DEAD)
                continue;
            if (f->min_duration_ms >= 0 && now - t->m.start_ms <= f->min_duration_ms)
                continue; /* Kafka compares with the start time as is (-1 when none) */
            sm_txn_listing_t *l = &(*out)[(*n)++];
            l->transactional_id = sm_arena_strndup(a, t->id, t->len);
            l->producer_id = t->m.producer_id;
            l->state = sm_txn_state_name(t->m.state);
        }
    }
    pthread_mutex_unlock(&c->mu);
    return err;
}

const sm_txn_coord_config_t *sm_txn_coord_config(const sm_txn_coord_t *c)
{
    return &c->cfg;
}
