/*
 * handle_fetch.c - Fetch, with long polling (the fetch purgatory).
 *
 * A fetch resolves its partitions once, then tries to fill: for each
 * partition in request order it asks the log for whole batches from the
 * fetch offset up to the high watermark, within partition_max_bytes and
 * what is left of max_bytes (the first partition with data may exceed both
 * by one batch, KIP-74). Record bytes are never copied: each partition's
 * records become a file splice that the connection sends with sendfile.
 *
 * If fewer than min_bytes are available and max_wait_ms > 0, the request
 * is parked on its loop's purgatory with a deadline timer. Every append
 * (any thread) calls sm_fetch_notify_append(), which posts one coalesced
 * "recheck" task to each loop that has parked fetches; the recheck retries
 * every parked fetch of that loop and answers those now satisfied. The
 * deadline timer answers with whatever is there.
 *
 * Fetch sessions (KIP-227): Samsa declines to create sessions (it answers
 * session id 0, which the protocol allows), so clients keep sending full
 * fetches; an incremental fetch naming a session gets
 * FETCH_SESSION_ID_NOT_FOUND.
 *
 * Threads: handler, recheck and timers run on the connection's loop; only
 * sm_fetch_notify_append() is called from other threads.
 */
#include "handler_util.h"
#include "handlers.h"
#include "log.h"
#include "loop.h"
#include "server.h"
#include "storage/log.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

typedef struct fetch_part {
    sm_partition_t *p; /* NULL if unknown (error set) */
    int16_t error;
    sm_fetch_request_fetch_partition_t *rq;
} fetch_part_t;

typedef struct fetch_state {
    sm_req_t *req;
    sm_fetch_request_t msg;
    fetch_part_t *parts; /* flattened, request order */
    int nparts;
    uint64_t timer;
    int64_t deadline_ms;
    struct fetch_state *prev, *next; /* purgatory list */
} fetch_state_t;

typedef struct purgatory {
    fetch_state_t *head;
    int count;         /* parked fetches; read by other threads (relaxed) */
    int wake_pending;  /* a recheck is already posted */
} purgatory_t;

static purgatory_t *g_purg;
static int g_npurg;

void sm_fetch_init(sm_server_t *srv)
{
    g_npurg = sm_server_nloops(srv);
    g_purg = sm_xcalloc((size_t)g_npurg, sizeof *g_purg);
}

void sm_fetch_shutdown(void)
{
    free(g_purg);
    g_purg = NULL;
    g_npurg = 0;
}

/* Bytes available for one partition from its fetch offset (no I/O beyond the
 * index lookup), filling the response slot when out is not NULL. */
static int64_t fill_partition(fetch_state_t *fs, fetch_part_t *fp, int32_t budget, bool min_one,
                              sm_fetch_response_partition_data_t *out)
{
    sm_fetch_request_fetch_partition_t *rq = fp->rq;
    if (out)
        out->partition_index = rq->partition;
    if (!fp->p) {
        if (out) {
            out->error_code = fp->error;
            out->high_watermark = -1;
            out->last_stable_offset = -1;
            out->log_start_offset = -1;
        }
        return 0;
    }
    sm_log_t *log = fp->p->log;
    int64_t hw = sm_log_end_offset(log);
    int64_t start = sm_log_start_offset(log);
    if (out) {
        out->high_watermark = hw;
        out->last_stable_offset = hw;
        out->log_start_offset = start;
        out->records.len = 0;
        out->aborted_transactions_count = fs->msg.isolation_level ? 0 : -1;
    }
    int32_t epoch = fp->p->leader_epoch;
    if (rq->current_leader_epoch >= 0 && rq->current_leader_epoch != epoch) {
        if (out)
            out->error_code = rq->current_leader_epoch < epoch ? KERR_FENCED_LEADER_EPOCH
                                                               : KERR_UNKNOWN_LEADER_EPOCH;
        return 0;
    }
    if (rq->fetch_offset < start || rq->fetch_offset > hw) {
        if (out)
            out->error_code = KERR_OFFSET_OUT_OF_RANGE;
        return 0;
    }
    if (rq->fetch_offset == hw || budget <= 0)
        return 0;
    int32_t max = SM_MIN(budget, rq->partition_max_bytes);
    if (max <= 0 && !min_one)
        return 0;
    sm_log_slice_t sl;
    sm_err_t err = sm_log_read(log, rq->fetch_offset, hw, max, min_one, &sl);
    if (err != SM_OK) {
        if (out)
            out->error_code = err == SM_ERR_RANGE ? KERR_OFFSET_OUT_OF_RANGE : sm_kerr_from(err);
        return 0;
    }
    if (out && sl.len > 0) {
        out->records.ptr = NULL;
        out->records.len = sl.len;
        out->records.fd = sl.fd;
        out->records.file_off = sl.file_pos;
        out->records.ref = sl.ref; /* released after encoding */
    } else if (sl.ref) {
        sm_ref_release(sl.ref);
    }
    return sl.len;
}

/* Probe how many bytes are ready (without building a response). */
static int64_t bytes_ready(fetch_state_t *fs, bool *has_error)
{
    int64_t total = 0;
    int32_t budget = fs->msg.max_bytes;
    for (int i = 0; i < fs->nparts; i++) {
        fetch_part_t *fp = &fs->parts[i];
        if (!fp->p) {
            *has_error = true;
            continue;
        }
        int64_t hw = sm_log_end_offset(fp->p->log);
        int64_t start = sm_log_start_offset(fp->p->log);
        if (fp->rq->fetch_offset < start || fp->rq->fetch_offset > hw) {
            *has_error = true;
            continue;
        }
        if (fp->rq->fetch_offset < hw) {
            /* Cheap lower bound: at least one byte per partition with data;
             * the exact count needs a read, done when responding. */
            total += SM_MIN(hw - fp->rq->fetch_offset, (int64_t)budget);
        }
    }
    return total;
}

static void respond(fetch_state_t *fs)
{
    sm_req_t *req = fs->req;
    sm_fetch_response_t resp;
    sm_fetch_response_init(&resp);
    resp.session_id = 0;
    /* Group flattened partitions back under their topics. */
    SM_NEW_ARRAY(req, sm_fetch_response_fetchable_topic_response, fs->msg.topics_count,
                 resp.responses);
    resp.responses_count = fs->msg.topics_count;
    int32_t budget = fs->msg.max_bytes;
    bool first_data = true;
    int k = 0;
    for (int32_t i = 0; i < fs->msg.topics_count; i++) {
        sm_fetch_request_fetch_topic_t *rt = &fs->msg.topics[i];
        sm_fetch_response_fetchable_topic_response_t *tr = &resp.responses[i];
        tr->topic = rt->topic;
        tr->topic_id = rt->topic_id;
        SM_NEW_ARRAY(req, sm_fetch_response_partition_data, rt->partitions_count,
                     tr->partitions);
        tr->partitions_count = rt->partitions_count;
        for (int32_t j = 0; j < rt->partitions_count; j++, k++) {
            int64_t n = fill_partition(fs, &fs->parts[k], budget, first_data, &tr->partitions[j]);
            if (n > 0) {
                first_data = false;
                budget -= (int32_t)SM_MIN(n, (int64_t)budget);
            }
        }
    }
    sm_fetch_response_encode(&req->resp, req->api_version, &resp);
    /* The writer holds its own references to the spliced segments now. */
    for (int32_t i = 0; i < resp.responses_count; i++)
        for (int32_t j = 0; j < resp.responses[i].partitions_count; j++)
            if (resp.responses[i].partitions[j].records.ref)
                sm_ref_release(resp.responses[i].partitions[j].records.ref);
    for (int i = 0; i < fs->nparts; i++)
        sm_partition_put(fs->parts[i].p);
    sm_req_done(req);
}

static void purg_remove(purgatory_t *pg, fetch_state_t *fs)
{
    if (fs->prev)
        fs->prev->next = fs->next;
    else
        pg->head = fs->next;
    if (fs->next)
        fs->next->prev = fs->prev;
    fs->prev = fs->next = NULL;
    __atomic_fetch_sub(&pg->count, 1, __ATOMIC_RELAXED);
}

static purgatory_t *my_purgatory(void)
{
    return &g_purg[sm_loop_id(sm_loop_current())];
}

static void on_deadline(void *arg)
{
    fetch_state_t *fs = arg;
    purg_remove(my_purgatory(), fs);
    respond(fs);
}

static void recheck(void *arg)
{
    purgatory_t *pg = arg;
    __atomic_store_n(&pg->wake_pending, 0, __ATOMIC_RELEASE);
    fetch_state_t *fs = pg->head;
    while (fs) {
        fetch_state_t *next = fs->next;
        bool err = false;
        if (bytes_ready(fs, &err) >= fs->msg.min_bytes || err) {
            sm_loop_timer_cancel(sm_loop_current(), fs->timer);
            purg_remove(pg, fs);
            respond(fs);
        }
        fs = next;
    }
}

void sm_fetch_notify_append(sm_server_t *srv, sm_partition_t *p)
{
    (void)p;
    for (int i = 0; i < g_npurg; i++) {
        purgatory_t *pg = &g_purg[i];
        if (__atomic_load_n(&pg->count, __ATOMIC_RELAXED) > 0 &&
            !__atomic_exchange_n(&pg->wake_pending, 1, __ATOMIC_ACQ_REL))
            sm_loop_post(sm_server_loop(srv, i), recheck, pg);
    }
}

void sm_handle_fetch(sm_req_t *req)
{
    fetch_state_t *fs = SM_ARENA_NEW(&req->arena, fetch_state_t, 1);
    fs->req = req;
    SM_DECODE_OR_FAIL(fetch_request, req, &fs->msg);
    sm_fetch_request_t *m = &fs->msg;

    if (m->session_id != 0 || m->session_epoch > 0) {
        /* We never hand out session ids, so any named session is unknown. */
        sm_fetch_response_t resp;
        sm_fetch_response_init(&resp);
        resp.error_code = KERR_FETCH_SESSION_ID_NOT_FOUND;
        SM_RESPOND(fetch_response, req, &resp);
        return;
    }
    if (m->max_bytes <= 0)
        m->max_bytes = INT32_MAX;

    int n = 0;
    for (int32_t i = 0; i < m->topics_count; i++)
        n += m->topics[i].partitions_count;
    fs->parts = SM_ARENA_NEW(&req->arena, fetch_part_t, n > 0 ? n : 1);
    fs->nparts = n;
    int k = 0;
    bool by_id = req->api_version >= 13;
    for (int32_t i = 0; i < m->topics_count; i++) {
        sm_fetch_request_fetch_topic_t *t = &m->topics[i];
        for (int32_t j = 0; j < t->partitions_count; j++, k++) {
            fetch_part_t *fp = &fs->parts[k];
            fp->rq = &t->partitions[j];
            if (by_id)
                fp->p = sm_server_partition_by_id(req->srv, &t->topic_id, fp->rq->partition);
            else if (t->topic.len > 0)
                fp->p = sm_server_partition(req->srv, t->topic.ptr, (size_t)t->topic.len,
                                            fp->rq->partition);
            if (!fp->p)
                fp->error = by_id ? KERR_UNKNOWN_TOPIC_ID : KERR_UNKNOWN_TOPIC_OR_PARTITION;
        }
    }

    bool err = false;
    if (m->max_wait_ms <= 0 || bytes_ready(fs, &err) >= m->min_bytes || err || !g_purg) {
        respond(fs);
        return;
    }
    purgatory_t *pg = my_purgatory();
    fs->next = pg->head;
    if (pg->head)
        pg->head->prev = fs;
    pg->head = fs;
    __atomic_fetch_add(&pg->count, 1, __ATOMIC_RELAXED);
    fs->deadline_ms = sm_now_mono_ms() + m->max_wait_ms;
    fs->timer = sm_loop_timer(sm_loop_current(), fs->deadline_ms, on_deadline, fs);
    /* Close the race with an append that landed between the check above and
     * the registration: look once more. */
    err = false;
    if (bytes_ready(fs, &err) >= m->min_bytes || err) {
        sm_loop_timer_cancel(sm_loop_current(), fs->timer);
        purg_remove(pg, fs);
        respond(fs);
    }
}
