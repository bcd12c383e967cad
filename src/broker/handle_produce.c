/*
 * handle_produce.c - Produce: validate client batches and append them
 * verbatim.
 *
 * Per partition: look the partition up, check each batch's size against
 * max.message.bytes (MESSAGE_TOO_LARGE), validate it (magic 2, CRC32C,
 * record count; CORRUPT_MESSAGE / UNSUPPORTED_FOR_MESSAGE_FORMAT), then
 * append. The log patches base offsets in place in the request frame and
 * writes the bytes as received: no per-record work on this path.
 *
 * acks=0 requests get no response (Kafka's contract); if one of their
 * partitions fails, the connection is closed so the producer notices.
 *
 * Durability is decided in one place, produce_make_durable(): with a flush
 * policy that wants the bytes on disk, the request is parked and answered
 * by a background flusher after one group fsync (see there).
 *
 * Runs on the connection's loop thread; a parked request is answered from
 * a background worker.
 */
#include "handler_util.h"
#include "handlers.h"
#include "log.h"
#include "server.h"
#include "storage/log.h"
#include "batch.h"
#include "metrics.h"
#include "txn_markers.h"
#include "batch_rewrite.h"

#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

/* Group commit state of one produce request: the response under
 * construction and how many partitions still wait for an fsync. The last
 * one to finish (the handler itself, or a flusher on a background worker)
 * sends the response. Lives in the request arena. */
typedef struct produce_park {
    sm_req_t *req;
    sm_produce_response_t resp;
    int pending; /* atomic: waiting partitions + 1 while the handler runs */
    bool parked; /* counted in the produce purgatory size (metrics) */
    sm_produce_request_t msg;
    /* KIP-890 verification, per partition in request order (NULL: none) */
    uint64_t *guard;
    int16_t *verr;
    int32_t *vidx; /* verify.parts[i] is partition vidx[i] */
    sm_txn_verify_t verify;
} produce_park_t;

typedef struct produce_wait {
    sm_log_waiter_t w; /* first member: the log hands this back */
    produce_park_t *park;
    sm_produce_response_partition_produce_response_t *pr;
} produce_wait_t;

static void park_release(produce_park_t *park)
{
    if (__atomic_sub_fetch(&park->pending, 1, __ATOMIC_ACQ_REL) == 0) {
        if (park->parked)
            sm_metrics_produce_parked(sm_server_metrics(park->req->srv), -1);
        SM_RESPOND(produce_response, park->req, &park->resp);
    }
}

/* Background worker: fsync for every waiter of the partition, complete them. */
static void flusher_task(void *arg)
{
    sm_partition_t *p = arg;
    sm_partition_run_flusher(p);
    sm_partition_put(p);
}

/* A waiter's fsync finished (flusher's thread). */
static void wait_done(sm_log_waiter_t *w, sm_err_t err)
{
    produce_wait_t *pw = (produce_wait_t *)w;
    if (err != SM_OK) {
        pw->pr->error_code = sm_kerr_from(err);
        pw->pr->base_offset = -1;
    }
    park_release(pw->park);
}

/* acks=0 waiters only kick the flusher; nobody answers. */
static void wait_free(sm_log_waiter_t *w, sm_err_t err)
{
    (void)err;
    free(w);
}

/* THE DURABILITY POINT. A produce may be acknowledged once every partition
 * it wrote passed through here:
 *  - acks=0: never answered; if the topic's flush policy wants a sync, one
 *    is started in the background.
 *  - acks=1 and acks=-1: answered (as far as this log is concerned) after
 *    the append reached the page cache, unless the topic's flush policy (flush.messages, default
 *    log.flush.interval.messages) says the bytes must be on disk first.
 *    Then the partition is parked on the log's group-commit queue and the
 *    answer waits until a flusher on a background worker has fdatasync'ed
 *    past last_offset; every append that arrives while one fsync runs
 *    shares the next one. A failed fsync answers KAFKA_STORAGE_ERROR.
 * Returns SM_OK when nothing more is needed or the wait is queued (then
 * the park's pending count covers it and pr must not be touched again).
 * acks=all then also waits for the in-sync replicas: produce_wait_replicas. */
static sm_err_t produce_make_durable(produce_park_t *park, sm_partition_t *p, int16_t acks,
                                     int64_t last_offset,
                                     sm_produce_response_partition_produce_response_t *pr)
{
    if (!sm_partition_sync_required(p))
        return SM_OK;
    produce_wait_t *pw;
    if (acks == 0) {
        pw = sm_xcalloc(1, sizeof *pw);
        pw->w.done = wait_free;
    } else {
        pw = SM_ARENA_NEW(&park->req->arena, produce_wait_t, 1);
        memset(pw, 0, sizeof *pw);
        pw->w.done = wait_done;
        pw->park = park;
        pw->pr = pr;
        __atomic_add_fetch(&park->pending, 1, __ATOMIC_ACQ_REL);
        if (!park->parked) {
            park->parked = true;
            sm_metrics_produce_parked(sm_server_metrics(park->req->srv), 1);
        }
    }
    pw->w.target = last_offset + 1;
    switch (sm_partition_wait_durable(p, &pw->w)) {
    case SM_LOG_WAIT_DURABLE:
        if (acks == 0)
            free(pw);
        else
            __atomic_sub_fetch(&park->pending, 1, __ATOMIC_ACQ_REL); /* never the last */
        break;
    case SM_LOG_WAIT_START:
        sm_partition_keep(p);
        sm_server_background(park->req->srv, flusher_task, p);
        break;
    case SM_LOG_WAIT_QUEUED:
        break;
    }
    return SM_OK;
}

/* acks=all on a replicated partition: the answer waits until the high
 * watermark passes the batch (every in-sync replica has it), or the
 * leadership goes, or the request's timeout passes. */
typedef struct produce_hw_wait {
    sm_hw_waiter_t w; /* first member: the partition hands this back */
    produce_park_t *park;
    sm_produce_response_partition_produce_response_t *pr;
} produce_hw_wait_t;

static void hw_done(sm_hw_waiter_t *w, int16_t kerr)
{
    produce_hw_wait_t *hw = (produce_hw_wait_t *)w;
    if (kerr) {
        hw->pr->error_code = kerr;
        if (kerr != KERR_NOT_ENOUGH_REPLICAS_AFTER_APPEND)
            hw->pr->base_offset = -1;
    }
    park_release(hw->park);
}

static void produce_wait_replicas(produce_park_t *park, sm_partition_t *p, int64_t last_offset,
                                  int32_t timeout_ms,
                                  sm_produce_response_partition_produce_response_t *pr)
{
    produce_hw_wait_t *hw = SM_ARENA_NEW(&park->req->arena, produce_hw_wait_t, 1);
    memset(hw, 0, sizeof *hw);
    hw->w.done = hw_done;
    hw->w.target = last_offset + 1;
    hw->w.deadline_ms = sm_now_mono_ms() + (timeout_ms > 0 ? timeout_ms : 0);
    hw->park = park;
    hw->pr = pr;
    __atomic_add_fetch(&park->pending, 1, __ATOMIC_ACQ_REL);
    if (!park->parked) {
        park->parked = true;
        sm_metrics_produce_parked(sm_server_metrics(park->req->srv), 1);
    }
    if (sm_partition_wait_hw(p, &hw->w)) /* already there */
        __atomic_sub_fetch(&park->pending, 1, __ATOMIC_ACQ_REL); /* never the last */
}

/* Decompressed records are bounded (a compressed bomb must not exhaust
 * memory): 16 times the batch size limit, at least 64 MiB. */
static size_t decompress_bound(int32_t max_message_bytes)
{
    size_t b = (size_t)(max_message_bytes > 0 ? max_message_bytes : 1) * 16;
    return b < ((size_t)64 << 20) ? (size_t)64 << 20 : b;
}

/* Validate every batch in a partition's records; returns a Kafka error. */
static int16_t check_records(sm_req_t *req, sm_partition_t *p, const sm_records_t *rec,
                             int32_t max_message_bytes)
{
    if (rec->len <= 0)
        return KERR_CORRUPT_MESSAGE;
    const uint8_t *q = rec->ptr;
    size_t left = (size_t)rec->len;
    while (left > 0) {
        sm_batch_info_t info;
        sm_err_t err = sm_batch_header_parse(q, left, &info);
        if (err == SM_ERR_UNSUPPORTED)
            return KERR_UNSUPPORTED_FOR_MESSAGE_FORMAT;
        if (err != SM_OK || info.batch_length < 0)
            return KERR_CORRUPT_MESSAGE;
        int64_t total = sm_batch_total_size(&info);
        if (total > max_message_bytes)
            return KERR_MESSAGE_TOO_LARGE;
        if ((size_t)total > left)
            return KERR_CORRUPT_MESSAGE;
        const char *why = NULL;
        err = sm_batch_validate(q, (size_t)total, &info, &why);
        if (err != SM_OK) {
            SM_WARN("produce", "%s: rejected batch from %s: %s", p->name, sm_req_peer(req),
                    why ? why : sm_err_str(err));
            return err == SM_ERR_UNSUPPORTED ? KERR_UNSUPPORTED_FOR_MESSAGE_FORMAT
                                             : KERR_CORRUPT_MESSAGE;
        }
        /* a max timestamp below the base one (sarama writes -1) would
         * mislead retention, the time index and producer expiry: the real
         * one goes into the header, as Kafka's validator does */
        if (info.max_timestamp < info.base_timestamp &&
            sm_batch_fix_max_timestamp((uint8_t *)q, &info, decompress_bound(max_message_bytes)) !=
                SM_OK)
            return KERR_CORRUPT_MESSAGE;
        q += total;
        left -= (size_t)total;
    }
    return KERR_NONE;
}

/* What the topic asks of the records before they are stored, done here
 * while the request is answered per partition:
 *  - cleanup.policy with compact: every record needs a key; a keyless one
 *    fails the partition's records with INVALID_RECORD and a record error
 *    naming it (KIP-467), nothing of them is stored;
 *  - compression.type other than producer: batches in another codec are
 *    re-framed in the topic's (every record validated on the way).
 * *rec and *len are replaced when batches were rewritten (request arena). */
static int16_t topic_rules(sm_req_t *req, sm_partition_t *p,
                           sm_produce_response_partition_produce_response_t *pr,
                           uint8_t **rec, size_t *len)
{
    int32_t codec = __atomic_load_n(&p->compression, __ATOMIC_RELAXED);
    bool compacted = __atomic_load_n(&p->compacted, __ATOMIC_RELAXED);
    if (codec < 0 && !compacted)
        return KERR_NONE;
    int32_t level = __atomic_load_n(&p->compression_level, __ATOMIC_RELAXED);
    size_t bound = decompress_bound(__atomic_load_n(&p->max_message_bytes, __ATOMIC_RELAXED));
    /* batches were validated by check_records */
    bool rewrite = false;
    for (size_t at = 0; at < *len;) {
        sm_batch_info_t b;
        if (sm_batch_header_parse(*rec + at, *len - at, &b) != SM_OK)
            return KERR_CORRUPT_MESSAGE;
        bool control = b.attributes & SM_BATCH_ATTR_CONTROL;
        int32_t keyless = -1;
        if (compacted && !control) {
            sm_err_t err = sm_batch_scan(*rec + at, &b, bound, &keyless);
            if (err != SM_OK) {
                SM_WARN("produce", "%s: unreadable records from %s: %s", p->name,
                        sm_req_peer(req), sm_err_str(err));
                return err == SM_ERR_TOO_LARGE ? KERR_RECORD_LIST_TOO_LARGE
                                               : KERR_CORRUPT_MESSAGE;
            }
        }
        if (keyless >= 0) {
            SM_NEW_ARRAY(req, sm_produce_response_batch_index_and_error_message, 1,
                         pr->record_errors);
            pr->record_errors_count = 1;
            pr->record_errors[0].batch_index = keyless;
            char *msg = sm_arena_sprintf(&req->arena,
                                         "Compacted topic cannot accept message without key in "
                                         "topic partition %s.", p->name);
            pr->record_errors[0].batch_index_error_message = sm_str(msg);
            pr->error_message = sm_str("One or more records have been rejected");
            SM_DEBUG("produce", "%s: keyless record %d from %s refused (compacted topic)", p->name,
                     keyless, sm_req_peer(req));
            return KERR_INVALID_RECORD;
        }
        if (codec >= 0 && !control && (b.attributes & SM_BATCH_ATTR_COMPRESSION_MASK) != codec)
            rewrite = true;
        at += (size_t)sm_batch_total_size(&b);
    }
    if (!rewrite)
        return KERR_NONE;
    sm_wbuf_t w;
    sm_wbuf_init(&w);
    for (size_t at = 0; at < *len;) {
        sm_batch_info_t b;
        if (sm_batch_header_parse(*rec + at, *len - at, &b) != SM_OK) {
            sm_wbuf_free(&w);
            return KERR_CORRUPT_MESSAGE;
        }
        size_t total = (size_t)sm_batch_total_size(&b);
        if ((b.attributes & SM_BATCH_ATTR_CONTROL) ||
            (b.attributes & SM_BATCH_ATTR_COMPRESSION_MASK) == codec) {
            sm_wbuf_bytes(&w, *rec + at, total);
        } else {
            sm_err_t err = sm_batch_recompress(*rec + at, &b, (sm_codec_t)codec, level, bound, &w);
            if (err != SM_OK) {
                SM_WARN("produce", "%s: could not recompress a batch from %s: %s", p->name,
                        sm_req_peer(req), sm_err_str(err));
                sm_wbuf_free(&w);
                return err == SM_ERR_TOO_LARGE ? KERR_RECORD_LIST_TOO_LARGE
                                               : KERR_CORRUPT_MESSAGE;
            }
        }
        at += total;
    }
    uint8_t *out = sm_arena_alloc(&req->arena, w.len);
    memcpy(out, w.mem, w.len);
    *rec = out;
    *len = w.len;
    sm_wbuf_free(&w);
    return KERR_NONE;
}

/* Append every partition's records (after the verification, if any); the
 * loop thread, or the thread the coordinator's answer came on. */
static void produce_append_all(produce_park_t *park)
{
    sm_req_t *req = park->req;
    sm_produce_request_t *m = &park->msg;
    sm_produce_response_t *resp = &park->resp;
    bool valid_acks = m->acks == 0 || m->acks == 1 || m->acks == -1;
    bool any_error = false;
    /* flush.messages is handled by produce_make_durable (group commit), not
     * inline in the append on this thread */
    sm_log_defer_flush(true);
    int32_t k = 0;
    for (int32_t i = 0; i < m->topic_data_count; i++) {
        sm_produce_request_topic_produce_data_t *td = &m->topic_data[i];
        sm_produce_response_topic_produce_response_t *tr = &resp->responses[i];
        for (int32_t j = 0; j < td->partition_data_count; j++, k++) {
            sm_produce_request_partition_produce_data_t *pd = &td->partition_data[j];
            sm_produce_response_partition_produce_response_t *pr = &tr->partition_responses[j];
            pr->index = pd->index;
            pr->base_offset = -1;
            if (!valid_acks) {
                pr->error_code = KERR_INVALID_REQUIRED_ACKS;
                any_error = true;
                continue;
            }
            if (park->verr && park->verr[k]) {
                pr->error_code = park->verr[k];
                any_error = true;
                continue;
            }
            sm_partition_t *p = td->name.len > 0
                                    ? sm_server_partition(req->srv, td->name.ptr,
                                                          (size_t)td->name.len, pd->index)
                                    : NULL;
            if (!p) {
                pr->error_code = KERR_UNKNOWN_TOPIC_OR_PARTITION;
                any_error = true;
                continue;
            }
            /* acks=all needs min.insync.replicas in the ISR, checked
             * before the append as Kafka does (NOT_ENOUGH_REPLICAS) */
            bool too_few_isr =
                m->acks == -1 && __atomic_load_n(&p->isr_size, __ATOMIC_RELAXED) <
                                     __atomic_load_n(&p->min_insync_replicas, __ATOMIC_RELAXED);
            int16_t kerr = sm_partition_role(p) != SM_ROLE_LEADER
                               ? KERR_NOT_LEADER_OR_FOLLOWER
                           : too_few_isr ? KERR_NOT_ENOUGH_REPLICAS
                                         : check_records(req, p, &pd->records,
                                                         __atomic_load_n(&p->max_message_bytes,
                                                                         __ATOMIC_RELAXED));
            uint8_t *rec = (uint8_t *)pd->records.ptr;
            size_t rec_len = pd->records.len > 0 ? (size_t)pd->records.len : 0;
            if (kerr == KERR_NONE)
                kerr = topic_rules(req, p, pr, &rec, &rec_len);
            if (kerr == KERR_NONE) {
                sm_append_info_t info;
                int16_t refused = 0;
                bool duplicate = false;
                /* The frame is ours: the log patches offsets in place.
                 * Idempotent and transactional batches are checked
                 * against their producer's state; a retry of a stored
                 * batch gets its original offsets. */
                sm_err_t err = sm_partition_produce(p, rec, rec_len, &info, &refused,
                                                    &duplicate, park->guard ? park->guard[k] : 0);
                if (err == SM_ERR_INVALID && refused) {
                    kerr = refused;
                    err = SM_OK;
                    if (refused != KERR_NOT_LEADER_OR_FOLLOWER)
                        SM_DEBUG("produce", "%s: producer batch from %s refused: error %d",
                                 p->name, sm_req_peer(req), refused);
                } else if (err == SM_OK) {
                    if (duplicate)
                        SM_DEBUG("produce", "%s: retried batch from %s answered with offset %" PRId64,
                                 p->name, sm_req_peer(req), info.base_offset);
                    pr->base_offset = info.base_offset;
                    pr->log_append_time_ms = info.log_append_time;
                    pr->log_start_offset = info.log_start_offset;
                    err = produce_make_durable(park, p, m->acks, info.last_offset, pr);
                    if (err == SM_OK && m->acks == -1)
                        produce_wait_replicas(park, p, info.last_offset, m->timeout_ms, pr);
                }
                if (err != SM_OK) {
                    SM_WARN("produce", "%s: append failed: %s", p->name, sm_err_str(err));
                    kerr = sm_kerr_from(err);
                    pr->base_offset = -1;
                }
            }
            if (kerr != KERR_NONE) {
                pr->error_code = kerr;
                any_error = true;
            }
            sm_partition_put(p);
        }
    }
    sm_log_defer_flush(false);
    if (m->acks == 0) {
        if (any_error) {
            sm_req_fail(req, "acks=0 produce failed for a partition");
            return;
        }
        sm_wbuf_reset(&req->resp); /* no response for acks=0 */
        sm_req_done(req);
        return;
    }
    park_release(park); /* answers now unless partitions wait for an fsync */
}

/* ------------------------------------------------------------ KIP-890 verification
 *
 * A transactional batch from a producer with no transaction open on the
 * partition would start one. Before appending it the leader asks the
 * producer's transaction coordinator whether the partition really is in
 * the ongoing transaction (AddPartitionsToTxn verify_only): a write that
 * arrives after its transaction ended (a delayed retry, a zombie) is
 * refused instead of opening a transaction no marker will ever close, which
 * would hold the last stable offset, and every read_committed consumer,
 * forever. The partition's guard (sm_partition_txn_verify_begin) closes the
 * window between the answer and the append. */

/* The coordinator's answer, as an error a producer of any version handles:
 * its transient errors become NOT_ENOUGH_REPLICAS (retriable), "not in the
 * transaction" TRANSACTION_ABORTABLE for Produce v11+ and INVALID_TXN_STATE
 * before, as Kafka answers. */
static int16_t verify_error(int16_t e, int16_t version)
{
    switch (e) {
    case KERR_TRANSACTION_ABORTABLE:
        /* Produce v11 knows the abortable error (KIP-890) */
        return version >= 11 ? KERR_TRANSACTION_ABORTABLE : KERR_INVALID_TXN_STATE;
    case KERR_NONE:
        return KERR_NONE;
    case KERR_NOT_COORDINATOR:
    case KERR_COORDINATOR_NOT_AVAILABLE:
    case KERR_COORDINATOR_LOAD_IN_PROGRESS:
    case KERR_CONCURRENT_TRANSACTIONS:
    case KERR_REQUEST_TIMED_OUT:
    case KERR_UNKNOWN_SERVER_ERROR:
        return KERR_NOT_ENOUGH_REPLICAS;
    case KERR_INVALID_PRODUCER_EPOCH:
    case KERR_PRODUCER_FENCED:
        return KERR_INVALID_PRODUCER_EPOCH;
    default:
        return KERR_INVALID_TXN_STATE;
    }
}

static void verify_done(sm_txn_verify_t *v)
{
    produce_park_t *park = v->arg;
    sm_req_t *req = park->req;
    for (int32_t i = 0; i < v->nparts; i++) {
        int32_t k = park->vidx[i];
        park->verr[k] = verify_error(v->parts[i].error, req->api_version);
        if (park->verr[k]) {
            SM_DEBUG("produce", "%s-%d: transactional write from %s refused by its coordinator "
                                "(error %d)",
                     v->parts[i].topic, v->parts[i].partition, sm_req_peer(req), v->parts[i].error);
            sm_partition_t *p = sm_server_partition(req->srv, v->parts[i].topic,
                                                    strlen(v->parts[i].topic),
                                                    v->parts[i].partition);
            if (p) {
                sm_partition_txn_verify_cancel(p, v->producer_id, park->guard[k]);
                sm_partition_put(p);
            }
            park->guard[k] = 0;
        }
    }
    produce_append_all(park);
}

/* Start the verification if any partition needs it: true when started (the
 * append then runs from verify_done). */
static bool produce_verify(produce_park_t *park)
{
    sm_req_t *req = park->req;
    sm_produce_request_t *m = &park->msg;
    sm_txn_markers_writer_t *w = sm_server_txn_markers(req->srv);
    if (!w || !m->transactional_id.ptr || m->transactional_id.len <= 0)
        return false;
    int32_t total = 0;
    for (int32_t i = 0; i < m->topic_data_count; i++)
        total += m->topic_data[i].partition_data_count;
    if (total <= 0)
        return false;
    sm_txn_verify_t *v = &park->verify;
    memset(v, 0, sizeof *v);
    int32_t k = 0;
    for (int32_t i = 0; i < m->topic_data_count; i++) {
        sm_produce_request_topic_produce_data_t *td = &m->topic_data[i];
        for (int32_t j = 0; j < td->partition_data_count; j++, k++) {
            sm_produce_request_partition_produce_data_t *pd = &td->partition_data[j];
            sm_batch_info_t b;
            if (td->name.len <= 0 || pd->records.len <= 0 ||
                sm_batch_header_parse(pd->records.ptr, (size_t)pd->records.len, &b) != SM_OK ||
                b.producer_id < 0 || !(b.attributes & SM_BATCH_ATTR_TRANSACTIONAL) ||
                (b.attributes & SM_BATCH_ATTR_CONTROL))
                continue;
            if (v->nparts > 0 && (b.producer_id != v->producer_id ||
                                  b.producer_epoch != v->producer_epoch))
                continue; /* one producer per request; the append's checks refuse the rest */
            sm_partition_t *p = sm_server_partition(req->srv, td->name.ptr, (size_t)td->name.len,
                                                    pd->index);
            if (!p)
                continue;
            uint64_t guard = 0;
            bool need = sm_partition_role(p) == SM_ROLE_LEADER &&
                        sm_partition_txn_verify_begin(p, b.producer_id, b.producer_epoch, &guard);
            sm_partition_put(p);
            if (!need)
                continue;
            if (!park->guard) {
                park->guard = SM_ARENA_NEW(&req->arena, uint64_t, total);
                park->verr = SM_ARENA_NEW(&req->arena, int16_t, total);
                park->vidx = SM_ARENA_NEW(&req->arena, int32_t, total);
                v->parts = SM_ARENA_NEW(&req->arena, sm_txn_add_part_t, total);
                memset(park->guard, 0, sizeof *park->guard * (size_t)total);
                memset(park->verr, 0, sizeof *park->verr * (size_t)total);
                v->producer_id = b.producer_id;
                v->producer_epoch = b.producer_epoch;
            }
            park->guard[k] = guard;
            park->vidx[v->nparts] = k;
            v->parts[v->nparts].topic =
                sm_arena_strndup(&req->arena, td->name.ptr, (size_t)td->name.len);
            v->parts[v->nparts].partition = pd->index;
            v->parts[v->nparts].error = 0;
            v->nparts++;
        }
    }
    if (v->nparts == 0)
        return false;
    v->transactional_id = m->transactional_id.ptr;
    v->id_len = (size_t)m->transactional_id.len;
    v->done = verify_done;
    v->arg = park;
    sm_txn_markers_verify(w, v);
    return true;
}

void sm_handle_produce(sm_req_t *req)
{
    produce_park_t *park = SM_ARENA_NEW(&req->arena, produce_park_t, 1);
    memset(park, 0, sizeof *park);
    SM_DECODE_OR_FAIL(produce_request, req, &park->msg);
    sm_produce_request_t *m = &park->msg;
    park->req = req;
    park->pending = 1;
    sm_produce_response_t *resp = &park->resp;
    sm_produce_response_init(resp);
    SM_NEW_ARRAY(req, sm_produce_response_topic_produce_response, m->topic_data_count,
                 resp->responses);
    resp->responses_count = m->topic_data_count;
    for (int32_t i = 0; i < m->topic_data_count; i++) {
        sm_produce_response_topic_produce_response_t *tr = &resp->responses[i];
        tr->name = m->topic_data[i].name;
        SM_NEW_ARRAY(req, sm_produce_response_partition_produce_response,
                     m->topic_data[i].partition_data_count, tr->partition_responses);
        tr->partition_responses_count = m->topic_data[i].partition_data_count;
    }
    if (produce_verify(park))
        return; /* verify_done appends */
    produce_append_all(park);
}
