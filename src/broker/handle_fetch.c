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
 * is parked on its loop's purgatory with a deadline timer, and one waiter
 * per partition goes into that loop's waiter table (buckets by partition
 * address). Appends wake only the fetches waiting on the appended
 * partition, not every parked fetch (with hundreds of parked consumers,
 * each append used to recheck them all):
 *
 *   append (any thread) -> sm_fetch_notify_append(p): for each loop whose
 *     interest counter for p's bucket is non-zero, add p to that loop's
 *     dirty list (mutex) and post its recheck task once (coalesced);
 *   recheck (loop thread): for each dirty partition, the waiters in its
 *     bucket whose partition is p name the fetches to retry; those now
 *     satisfied are answered.
 *
 * The interest counters (NBUCKETS per loop, atomic) are a counting filter:
 * a bucket shared by two partitions only causes a spurious recheck. The
 * deadline timer answers with whatever is there. The dirty list keeps
 * partition addresses only as keys: they are dereferenced only through a
 * waiter, whose parked fetch holds a reference to the partition.
 *
 * Fetch sessions (KIP-227, fetch_session.h): a full fetch with epoch 0
 * creates a session; incremental fetches name only changed partitions and
 * get only partitions with news. The fetch path works on a flattened copy
 * of the partitions (from the request, or from the session).
 *
 * Threads: handler, recheck and timers run on the connection's loop; only
 * sm_fetch_notify_append() is called from other threads.
 */
#include "handler_util.h"
#include "dispatch.h"
#include "handlers.h"
#include "log.h"
#include "loop.h"
#include "server.h"
#include "storage/log.h"
#include "conn.h"
#include "fetch_session.h"

#include <pthread.h>
#include <stdlib.h>
#include <stdio.h>
#include <string.h>

typedef struct fetch_part {
    sm_fsess_part_t sp; /* topic, partition, offset, max bytes, last sent */
    sm_partition_t *p;  /* NULL if unknown (error set) */
    int16_t error;
    bool diverging;     /* replica fetch: the follower must truncate first */
    int32_t div_epoch;
    int64_t div_end;
} fetch_part_t;

struct fetch_state;

/* One parked fetch's interest in one partition (in the request's arena). */
typedef struct waiter {
    struct fetch_state *fs;
    sm_partition_t *p;
    struct waiter *prev, *next; /* in the loop's bucket */
} waiter_t;

typedef struct fetch_state {
    sm_req_t *req;
    sm_fetch_request_t msg;
    fetch_part_t *parts; /* flattened; grouped by topic */
    int nparts;
    int32_t replica_id;  /* a follower broker's fetch; -1 for consumers */
    int64_t replica_epoch; /* its broker epoch (v15+), -1 unknown */
    int32_t session_id;  /* 0 = sessionless */
    bool incremental;    /* only partitions with news go in the response */
    uint64_t timer;
    int64_t deadline_ms;
    struct fetch_state *prev, *next; /* purgatory list */
    waiter_t *waiters;   /* nparts of them while parked */
    uint32_t seen;       /* recheck generation that last looked at it */
} fetch_state_t;

#define NBUCKETS 4096      /* waiter buckets per loop (power of two) */
#define MAX_DIRTY 1024     /* beyond this, a recheck looks at every fetch */

typedef struct purgatory {
    fetch_state_t *head;
    int count;                /* parked fetches */
    waiter_t **buckets;       /* NBUCKETS; loop thread only */
    int *interest;            /* NBUCKETS counters; written by the loop, read by any thread */
    pthread_mutex_t mu;       /* guards the dirty list */
    sm_partition_t **dirty;   /* appended partitions since the last recheck (keys only) */
    int ndirty;
    bool all_dirty;           /* the dirty list overflowed */
    int wake_pending;         /* atomic: a recheck is already posted */
    uint32_t gen;             /* recheck generation */
    sm_loop_task_t task;      /* the recheck, posted without allocation */
} purgatory_t;

/* One purgatory per event loop, and the fetch session cache: the fetch path's
 * state, owned by the server (sm_server_fetch), never process-wide. */
struct sm_fetch_state {
    purgatory_t *purg;
    int npurg;
    sm_fsess_cache_t *sessions;
};

static void recheck(void *arg);

int sm_fetch_purgatory_size(sm_server_t *srv)
{
    sm_fetch_state_t *f = sm_server_fetch(srv);
    if (!f)
        return 0;
    int n = 0;
    for (int i = 0; i < f->npurg; i++)
        n += __atomic_load_n(&f->purg[i].count, __ATOMIC_RELAXED);
    return n;
}

sm_fetch_state_t *sm_fetch_new(int nloops, int session_slots)
{
    sm_fetch_state_t *f = sm_xcalloc(1, sizeof *f);
    f->sessions = sm_fsess_cache_new(session_slots);
    f->npurg = nloops;
    f->purg = sm_xcalloc((size_t)nloops, sizeof *f->purg);
    for (int i = 0; i < f->npurg; i++) {
        purgatory_t *pg = &f->purg[i];
        pg->buckets = sm_xcalloc(NBUCKETS, sizeof *pg->buckets);
        pg->interest = sm_xcalloc(NBUCKETS, sizeof *pg->interest);
        pg->dirty = sm_xcalloc(MAX_DIRTY, sizeof *pg->dirty);
        pthread_mutex_init(&pg->mu, NULL);
        sm_loop_task_init(&pg->task, recheck, pg);
    }
    return f;
}

void sm_fetch_free(sm_fetch_state_t *f)
{
    if (!f)
        return;
    for (int i = 0; i < f->npurg; i++) {
        free(f->purg[i].buckets);
        free(f->purg[i].interest);
        free(f->purg[i].dirty);
        pthread_mutex_destroy(&f->purg[i].mu);
    }
    free(f->purg);
    sm_fsess_cache_free(f->sessions);
    free(f);
}

static unsigned bucket_of(const sm_partition_t *p)
{
    uint64_t x = (uint64_t)(uintptr_t)p;
    x ^= x >> 29;
    x *= 0xbf58476d1ce4e5b9ULL;
    x ^= x >> 32;
    return (unsigned)(x & (NBUCKETS - 1));
}

/* read_committed: the aborted transactions overlapping [from, upto), so the
 * consumer drops their records (Kafka's FetchResponse AbortedTransactions). */
static void add_aborted(sm_req_t *req, sm_partition_t *p, int64_t from, int64_t upto,
                        sm_fetch_response_partition_data_t *out)
{
    sm_log_aborted_t *ab = NULL;
    int n = sm_partition_aborted_txns(p, from, upto, &ab);
    if (n > 0) {
        SM_NEW_ARRAY(req, sm_fetch_response_aborted_transaction, n, out->aborted_transactions);
        for (int i = 0; i < n; i++) {
            out->aborted_transactions[i].producer_id = ab[i].pid;
            out->aborted_transactions[i].first_offset = ab[i].first_offset;
        }
        out->aborted_transactions_count = n;
    }
    free(ab);
}

/* Read one partition's records into its response slot; returns the bytes
 * spliced. The slice reference moves into out->records.ref. */
static int64_t fill_partition(fetch_state_t *fs, fetch_part_t *fp, int32_t budget, bool min_one,
                              sm_fetch_response_partition_data_t *out)
{
    const sm_fsess_part_t *rq = &fp->sp;
    out->partition_index = rq->partition;
    out->aborted_transactions_count = fs->msg.isolation_level ? 0 : -1;
    out->records.len = 0; /* empty, never null: clients reject a null record set */
    if (!fp->p) {
        out->error_code = fp->error;
        out->high_watermark = -1;
        out->last_stable_offset = -1;
        out->log_start_offset = -1;
        return 0;
    }
    if (sm_partition_role(fp->p) != SM_ROLE_LEADER) {
        out->error_code = KERR_NOT_LEADER_OR_FOLLOWER; /* clients refresh metadata */
        out->high_watermark = out->last_stable_offset = out->log_start_offset = -1;
        return 0;
    }
    out->records.len = 0;
    out->error_code = sm_partition_epoch_check(fp->p, rq->current_leader_epoch);
    if (out->error_code) {
        out->high_watermark = out->last_stable_offset = out->log_start_offset = -1;
        return 0;
    }
    bool replica = fs->replica_id >= 0;
    if (fp->diverging) { /* a follower whose log parts from ours truncates first */
        out->diverging_epoch.epoch = fp->div_epoch;
        out->diverging_epoch.end_offset = fp->div_end;
        out->high_watermark = out->last_stable_offset = sm_partition_high_watermark(fp->p);
        out->log_start_offset = sm_partition_log_start(fp->p);
        return 0;
    }
    int64_t hw = sm_partition_high_watermark(fp->p);
    int64_t lso = sm_partition_lso(fp->p);
    int64_t start = sm_partition_log_start(fp->p);
    int64_t end = sm_partition_log_end(fp->p);
    bool committed = !replica && fs->msg.isolation_level == 1; /* READ_COMMITTED */
    /* consumers read below the high watermark (read_committed ones below
     * the last stable offset), followers to the log end; an offset is out
     * of range only outside the log (a new leader's high watermark may
     * trail what consumers already saw: they wait) */
    int64_t limit = replica ? end : committed ? lso : hw;
    out->high_watermark = hw;
    out->last_stable_offset = lso;
    out->log_start_offset = start;
    if (rq->fetch_offset < start || rq->fetch_offset > SM_MAX(end, hw)) {
        out->error_code = KERR_OFFSET_OUT_OF_RANGE;
        return 0;
    }
    if (rq->fetch_offset >= limit || budget <= 0)
        return 0;
    int32_t max = SM_MIN(budget, rq->max_bytes);
    if (max <= 0 && !min_one)
        return 0;
    sm_log_slice_t sl;
    sm_err_t err = replica     ? sm_partition_read_local(fp->p, rq->fetch_offset, max, min_one, &sl)
                   : committed ? sm_partition_read_below(fp->p, rq->fetch_offset, limit, max,
                                                         min_one, &sl)
                               : sm_partition_read(fp->p, rq->fetch_offset, max, min_one, &sl);
    if (err != SM_OK) {
        out->error_code = err == SM_ERR_RANGE ? KERR_OFFSET_OUT_OF_RANGE : sm_kerr_from(err);
        return 0;
    }
    if (sl.len > 0 && committed)
        add_aborted(fs->req, fp->p, rq->fetch_offset, sl.next_offset, out);
    if (sl.len > 0) {
        out->records.ptr = NULL;
        out->records.len = sl.len;
        out->records.fd = sl.fd;
        out->records.file_off = sl.file_pos;
        out->records.ref = sl.ref; /* released after encoding */
        /* metrics: bytes and messages (offsets) out, read at scrape time */
        __atomic_fetch_add(&fp->p->bytes_out, (uint64_t)sl.len, __ATOMIC_RELAXED);
        if (sl.next_offset > rq->fetch_offset)
            __atomic_fetch_add(&fp->p->msgs_out, (uint64_t)(sl.next_offset - rq->fetch_offset),
                               __ATOMIC_RELAXED);
    } else if (sl.ref) {
        sm_ref_release(sl.ref);
    }
    return sl.len;
}

/* Does this partition go into an incremental response? */
static bool is_news(const fetch_part_t *fp, const sm_fetch_response_partition_data_t *out)
{
    return out->records.len > 0 || out->error_code != KERR_NONE ||
           out->high_watermark != fp->sp.last_hw || out->last_stable_offset != fp->sp.last_lso ||
           out->log_start_offset != fp->sp.last_start;
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
        int64_t hw = fs->replica_id >= 0         ? sm_partition_log_end(fp->p)
                     : fs->msg.isolation_level == 1 ? sm_partition_lso(fp->p)
                                                    : sm_partition_high_watermark(fp->p);
        int64_t start = sm_partition_log_start(fp->p);
        int64_t end = sm_partition_log_end(fp->p);
        if (sm_partition_role(fp->p) != SM_ROLE_LEADER ||
            (fs->replica_id >= 0 &&
             (fp->diverging || sm_partition_epoch_cmp(fp->p, fp->sp.current_leader_epoch) != 0))) {
            *has_error = true;
            continue;
        }
        if (fp->sp.fetch_offset < start || fp->sp.fetch_offset > SM_MAX(end, hw)) {
            *has_error = true;
            continue;
        }
        if (fp->sp.fetch_offset < hw) {
            /* Cheap lower bound: at least one byte per offset ready; the
             * exact count needs a read, done when responding. */
            total += SM_MIN(hw - fp->sp.fetch_offset, (int64_t)budget);
        }
    }
    return total;
}

static bool same_topic(const fetch_part_t *a, const fetch_part_t *b)
{
    return memcmp(a->sp.topic_id.b, b->sp.topic_id.b, 16) == 0 &&
           strcmp(a->sp.topic, b->sp.topic) == 0;
}

static void respond(fetch_state_t *fs)
{
    sm_req_t *req = fs->req;
    sm_fetch_response_t resp;
    sm_fetch_response_init(&resp);
    resp.session_id = fs->session_id;
    /* Parts are grouped by topic: one response topic per run. */
    SM_NEW_ARRAY(req, sm_fetch_response_fetchable_topic_response, fs->nparts, resp.responses);
    sm_fetch_response_partition_data_t *pd = NULL;
    SM_NEW_ARRAY(req, sm_fetch_response_partition_data, fs->nparts, pd);
    int32_t budget = fs->msg.max_bytes;
    bool first_data = true;
    int used = 0;
    sm_fetch_response_fetchable_topic_response_t *tr = NULL;
    const fetch_part_t *last = NULL;
    for (int k = 0; k < fs->nparts; k++) {
        fetch_part_t *fp = &fs->parts[k];
        sm_fetch_response_partition_data_t *out = &pd[used];
        int64_t n = fill_partition(fs, fp, budget, first_data, out);
        if (n > 0) {
            first_data = false;
            budget -= (int32_t)SM_MIN(n, (int64_t)budget);
        }
        if (fs->incremental && !is_news(fp, out))
            continue;
        if (fs->session_id) {
            fp->sp.last_hw = out->high_watermark;
            fp->sp.last_lso = out->last_stable_offset;
            fp->sp.last_start = out->log_start_offset;
            sm_fsess_sent(sm_server_fetch(fs->req->srv)->sessions, fs->session_id, &fp->sp);
        }
        if (!tr || !same_topic(last, fp)) {
            tr = &resp.responses[resp.responses_count++];
            tr->topic = sm_str(fp->sp.topic);
            tr->topic_id = fp->sp.topic_id;
            tr->partitions = out;
            tr->partitions_count = 0;
        }
        tr->partitions_count++;
        last = fp;
        used++;
    }
    sm_fetch_response_encode(&req->resp, req->api_version, &resp);
    sm_fetch_response_errors(&resp, sm_req_count_error, req);
    /* The writer holds its own references to the spliced segments now. */
    for (int i = 0; i < used; i++)
        if (pd[i].records.ref)
            sm_ref_release(pd[i].records.ref);
    for (int i = 0; i < fs->nparts; i++)
        sm_partition_put(fs->parts[i].p);
    sm_req_done(req);
}

/* Park fs: list, waiters, interest. Loop thread. */
static void purg_add(purgatory_t *pg, fetch_state_t *fs)
{
    fs->next = pg->head;
    if (pg->head)
        pg->head->prev = fs;
    pg->head = fs;
    __atomic_store_n(&pg->count, pg->count + 1, __ATOMIC_RELAXED); /* read by metrics */
    fs->waiters = SM_ARENA_NEW(&fs->req->arena, waiter_t, fs->nparts > 0 ? fs->nparts : 1);
    for (int i = 0; i < fs->nparts; i++) {
        waiter_t *w = &fs->waiters[i];
        w->fs = fs;
        w->p = fs->parts[i].p;
        if (!w->p)
            continue;
        unsigned b = bucket_of(w->p);
        w->next = pg->buckets[b];
        if (w->next)
            w->next->prev = w;
        pg->buckets[b] = w;
        /* seq_cst: pairs with the fence in sm_fetch_notify_append, so an
         * append either sees this interest or its offset is seen by the
         * check that follows parking. */
        __atomic_fetch_add(&pg->interest[b], 1, __ATOMIC_SEQ_CST);
    }
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
    __atomic_store_n(&pg->count, pg->count - 1, __ATOMIC_RELAXED);
    for (int i = 0; i < fs->nparts; i++) {
        waiter_t *w = &fs->waiters[i];
        if (!w->p)
            continue;
        unsigned b = bucket_of(w->p);
        if (w->prev)
            w->prev->next = w->next;
        else
            pg->buckets[b] = w->next;
        if (w->next)
            w->next->prev = w->prev;
        __atomic_fetch_sub(&pg->interest[b], 1, __ATOMIC_RELAXED);
    }
    fs->waiters = NULL;
}

/* The purgatory of the loop running now, in srv. Loop thread. */
static purgatory_t *my_purgatory(sm_server_t *srv)
{
    return &sm_server_fetch(srv)->purg[sm_loop_id(sm_loop_current())];
}

static void on_deadline(void *arg)
{
    fetch_state_t *fs = arg;
    purg_remove(my_purgatory(fs->req->srv), fs);
    respond(fs);
}

/* Answer fs if it is satisfied now. Loop thread. */
static void try_answer(purgatory_t *pg, fetch_state_t *fs)
{
    bool err = false;
    if (bytes_ready(fs, &err) >= fs->msg.min_bytes || err) {
        sm_loop_timer_cancel(sm_loop_current(), fs->timer);
        purg_remove(pg, fs);
        respond(fs);
    }
}

/* Posted by sm_fetch_notify_append; runs on the purgatory's loop. */
static void recheck(void *arg)
{
    purgatory_t *pg = arg;
    __atomic_store_n(&pg->wake_pending, 0, __ATOMIC_RELEASE);
    sm_partition_t *dirty[64];
    for (;;) {
        /* Take the dirty partitions in chunks (appends may keep coming). */
        pthread_mutex_lock(&pg->mu);
        bool all = pg->all_dirty;
        int n = all ? 0 : SM_MIN(pg->ndirty, 64);
        memcpy(dirty, pg->dirty + pg->ndirty - n, sizeof *dirty * (size_t)n);
        pg->ndirty = all ? 0 : pg->ndirty - n;
        pg->all_dirty = false;
        pthread_mutex_unlock(&pg->mu);
        if (all) {
            for (fetch_state_t *fs = pg->head, *next; fs; fs = next) {
                next = fs->next;
                try_answer(pg, fs);
            }
            return;
        }
        if (n == 0)
            return;
        /* Candidates first (answering unlinks waiters), each fetch once. */
        uint32_t gen = ++pg->gen;
        fetch_state_t *cand[256];
        int nc = 0;
        bool overflow = false;
        for (int i = 0; i < n; i++)
            for (waiter_t *w = pg->buckets[bucket_of(dirty[i])]; w; w = w->next)
                if (w->p == dirty[i] && w->fs->seen != gen) {
                    w->fs->seen = gen;
                    if (nc < (int)SM_ARRAY_LEN(cand))
                        cand[nc++] = w->fs;
                    else
                        overflow = true;
                }
        for (int i = 0; i < nc; i++)
            if (cand[i]->waiters) /* still parked */
                try_answer(pg, cand[i]);
        if (overflow) {
            for (fetch_state_t *fs = pg->head, *next; fs; fs = next) {
                next = fs->next;
                try_answer(pg, fs);
            }
        }
    }
}

void sm_fetch_notify_append(sm_server_t *srv, sm_partition_t *p)
{
    /* Pairs with the seq_cst increment in purg_add: the new end offset
     * (stored by the append) is ordered before the interest loads. */
    __atomic_thread_fence(__ATOMIC_SEQ_CST);
    unsigned b = bucket_of(p);
    sm_fetch_state_t *f = sm_server_fetch(srv);
    for (int i = 0; f && i < f->npurg; i++) {
        purgatory_t *pg = &f->purg[i];
        if (__atomic_load_n(&pg->interest[b], __ATOMIC_SEQ_CST) == 0)
            continue;
        pthread_mutex_lock(&pg->mu);
        if (!pg->all_dirty) {
            bool have = false;
            for (int k = 0; k < pg->ndirty && !have; k++)
                have = pg->dirty[k] == p;
            if (!have && pg->ndirty == MAX_DIRTY)
                pg->all_dirty = true;
            else if (!have)
                pg->dirty[pg->ndirty++] = p;
        }
        pthread_mutex_unlock(&pg->mu);
        if (!__atomic_exchange_n(&pg->wake_pending, 1, __ATOMIC_ACQ_REL))
            sm_loop_post_task(sm_server_loop(srv, i), &pg->task);
    }
}

void sm_fetch_loop_drain(sm_server_t *srv, sm_loop_t *l)
{
    int i = sm_loop_id(l);
    sm_fetch_state_t *f = sm_server_fetch(srv);
    if (!f || i < 0 || i >= f->npurg)
        return;
    purgatory_t *pg = &f->purg[i];
    while (pg->head) {
        fetch_state_t *fs = pg->head;
        sm_loop_timer_cancel(l, fs->timer);
        purg_remove(pg, fs);
        respond(fs);
    }
}

/* A follower's fetch arrived: note where its log ends (this may move the
 * high watermark and answer acks=all produces) unless its log diverges
 * from ours, before the fetch is answered or parked. */
static void replica_fetched(fetch_state_t *fs, fetch_part_t *fp, int64_t now)
{
    if (sm_partition_role(fp->p) != SM_ROLE_LEADER ||
        sm_partition_epoch_cmp(fp->p, fp->sp.current_leader_epoch) != 0)
        return; /* answered with the error by fill_partition */
    fp->diverging = sm_partition_diverging(fp->p, fp->sp.last_fetched_epoch, fp->sp.fetch_offset,
                                           &fp->div_epoch, &fp->div_end);
    if (!fp->diverging &&
        !sm_partition_follower_fetched(fp->p, fs->replica_id, fs->replica_epoch,
                                       fp->sp.fetch_offset, now)) {
        /* not one of the partition's replicas */
        sm_partition_put(fp->p);
        fp->p = NULL;
        fp->error = KERR_NOT_LEADER_OR_FOLLOWER;
    }
}

/* Copy one request partition into session form. */
static void part_from_request(const sm_fetch_request_fetch_topic_t *t,
                              const sm_fetch_request_fetch_partition_t *rp, bool by_id,
                              sm_fsess_part_t *out)
{
    memset(out, 0, sizeof *out);
    if (by_id)
        out->topic_id = t->topic_id;
    else
        snprintf(out->topic, sizeof out->topic, "%.*s", SM_MAX(t->topic.len, 0),
                 t->topic.ptr ? t->topic.ptr : "");
    out->partition = rp->partition;
    out->fetch_offset = rp->fetch_offset;
    out->max_bytes = rp->partition_max_bytes;
    out->current_leader_epoch = rp->current_leader_epoch;
    out->last_fetched_epoch = rp->last_fetched_epoch;
    out->last_hw = out->last_lso = out->last_start = -2;
}

static int cmp_part(const void *a, const void *b)
{
    const fetch_part_t *x = a, *y = b;
    int c = memcmp(x->sp.topic_id.b, y->sp.topic_id.b, 16);
    if (!c)
        c = strcmp(x->sp.topic, y->sp.topic);
    return c ? c : (x->sp.partition > y->sp.partition) - (x->sp.partition < y->sp.partition);
}

static void fail_session(sm_req_t *req, int16_t code)
{
    sm_fetch_response_t resp;
    sm_fetch_response_init(&resp);
    resp.error_code = code;
    SM_RESPOND(fetch_response, req, &resp);
}

void sm_handle_fetch(sm_req_t *req)
{
    if (sm_req_scope(req) == SM_SCOPE_CONTROLLER) { /* the metadata quorum's own fetch */
        sm_handle_quorum(req);
        return;
    }
    fetch_state_t *fs = SM_ARENA_NEW(&req->arena, fetch_state_t, 1);
    fs->req = req;
    SM_DECODE_OR_FAIL(fetch_request, req, &fs->msg);
    sm_fetch_request_t *m = &fs->msg;
    bool by_id = req->api_version >= 13;
    fs->replica_id = req->api_version >= 15 ? m->replica_state.replica_id : m->replica_id;
    fs->replica_epoch = req->api_version >= 15 ? m->replica_state.replica_epoch : -1;
    if (fs->replica_id < 0)
        fs->replica_id = -1;
    if (m->max_bytes <= 0)
        m->max_bytes = INT32_MAX;

    /* The request's partitions, in session form. */
    int n = 0;
    for (int32_t i = 0; i < m->topics_count; i++)
        n += SM_MAX(m->topics[i].partitions_count, 0);
    sm_fsess_part_t *rparts = SM_ARENA_NEW(&req->arena, sm_fsess_part_t, n > 0 ? n : 1);
    int k = 0;
    for (int32_t i = 0; i < m->topics_count; i++)
        for (int32_t j = 0; j < m->topics[i].partitions_count; j++)
            part_from_request(&m->topics[i], &m->topics[i].partitions[j], by_id, &rparts[k++]);

    sm_fsess_part_t *src = rparts;
    sm_fsess_part_t *session_parts = NULL;
    int64_t now = sm_now_mono_ms();
    if (m->session_id != 0 && m->session_epoch > 0) {
        int nf = 0;
        for (int32_t i = 0; i < m->forgotten_topics_data_count; i++)
            nf += SM_MAX(m->forgotten_topics_data[i].partitions_count, 0);
        sm_fsess_part_t *forgot = SM_ARENA_NEW(&req->arena, sm_fsess_part_t, nf > 0 ? nf : 1);
        int f = 0;
        for (int32_t i = 0; i < m->forgotten_topics_data_count; i++) {
            sm_fetch_request_forgotten_topic_t *ft = &m->forgotten_topics_data[i];
            for (int32_t j = 0; j < ft->partitions_count; j++, f++) {
                if (by_id)
                    forgot[f].topic_id = ft->topic_id;
                else
                    snprintf(forgot[f].topic, sizeof forgot[f].topic, "%.*s",
                             SM_MAX(ft->topic.len, 0), ft->topic.ptr ? ft->topic.ptr : "");
                forgot[f].partition = ft->partitions[j];
            }
        }
        sm_err_t err = sm_fsess_update(sm_server_fetch(req->srv)->sessions, m->session_id, m->session_epoch, rparts, n, forgot, nf,
                                       now, &session_parts, &n);
        if (err != SM_OK) {
            fail_session(req, err == SM_ERR_NOT_FOUND ? KERR_FETCH_SESSION_ID_NOT_FOUND
                                                      : KERR_INVALID_FETCH_SESSION_EPOCH);
            return;
        }
        src = session_parts;
        fs->session_id = m->session_id;
        fs->incremental = true;
    } else {
        if (m->session_id != 0)
            sm_fsess_close(sm_server_fetch(req->srv)->sessions, m->session_id);
        if (m->session_epoch == 0 && req->api_version >= 7)
            fs->session_id = sm_fsess_create(sm_server_fetch(req->srv)->sessions, rparts, n, now);
    }

    fs->parts = SM_ARENA_NEW(&req->arena, fetch_part_t, n > 0 ? n : 1);
    fs->nparts = n;
    for (int i = 0; i < n; i++) {
        fetch_part_t *fp = &fs->parts[i];
        fp->sp = src[i];
        if (by_id)
            fp->p = sm_server_partition_by_id(req->srv, &fp->sp.topic_id, fp->sp.partition);
        else if (fp->sp.topic[0])
            fp->p = sm_server_partition(req->srv, fp->sp.topic, strlen(fp->sp.topic),
                                        fp->sp.partition);
        if (!fp->p)
            fp->error = by_id ? KERR_UNKNOWN_TOPIC_ID : KERR_UNKNOWN_TOPIC_OR_PARTITION;
        else if (fs->replica_id >= 0)
            replica_fetched(fs, fp, now);
    }
    free(session_parts);
    if (fs->incremental)
        qsort(fs->parts, (size_t)n, sizeof *fs->parts, cmp_part);

    bool err = false;
    if (m->max_wait_ms <= 0 || bytes_ready(fs, &err) >= m->min_bytes || err || !sm_server_fetch(req->srv)) {
        respond(fs);
        return;
    }
    purgatory_t *pg = my_purgatory(req->srv);
    purg_add(pg, fs);
    fs->deadline_ms = now + m->max_wait_ms;
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
