/*
 * txn_markers.c - the transaction coordinator's marker writer: COMMIT or
 * ABORT markers to every partition of a transaction.
 *
 * A partition this broker leads gets its marker by a local append
 * (sm_partition_write_marker) and the answer waits until the marker is
 * below the high watermark, exactly as a WriteTxnMarkers request from
 * another coordinator would. Partitions led elsewhere are grouped by leader
 * and sent one WriteTxnMarkers request per leader, over one peer connection
 * per broker on the event loop the marker writer owns (loop 0). A partition
 * with no leader, or whose leader does not answer, is reported with its
 * error and the coordinator retries it later (txn_coord.h).
 *
 * Threads: sm_txn_markers_write from any thread; local appends run on the
 * caller's thread; remote requests on loop 0; done() runs on whichever
 * thread finishes the last partition.
 */
#include "txn_markers.h"
#include "handler_util.h"
#include "group_coord.h"
#include "hmap.h"
#include "kerr.h"
#include "log.h"
#include "meta.h"
#include "peer.h"
#include "server.h"
#include "sm_proto_gen.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define TAG "txn"
#define MARKER_RPC_VERSION 1
#define MARKER_RPC_TIMEOUT_MS 30000
#define MARKER_HW_TIMEOUT_MS 30000

struct sm_txn_markers_writer {
    sm_server_t *srv;
    pthread_mutex_t mu;      /* jobs, stopped */
    struct job *jobs;        /* outstanding (their done not called yet) */
    bool stopped;
    sm_loop_t *loop;
    sm_hmap_t peers; /* broker id (4 bytes) -> peer_t*; loop thread only */
    uint64_t seed;
};

typedef struct peer_ent {
    sm_peer_t *peer;
    char *host;
    int port;
} peer_ent_t;

/* One write_markers call. */
typedef struct job {
    struct job *next, **pprev; /* in w->jobs while done is owed */
    sm_txn_markers_writer_t *w;
    sm_txn_markers_t m; /* partitions: the job's own copy */
    sm_txn_tp_t *tps;
    int16_t *errs;
    int remaining; /* atomic: partitions not finished + 1 while dispatching */
    void (*done)(void *arg, const int16_t *errs);
    void *arg;
} job_t;

static void job_free(job_t *j)
{
    for (int32_t i = 0; i < j->m.npartitions; i++)
        free(j->tps[i].topic);
    free(j->tps);
    free(j->errs);
    free(j);
}

/* Take j off the list of jobs owed an answer: true if its done is ours to
 * call (sm_txn_markers_stop did not answer it already). */
static bool job_claim(job_t *j)
{
    sm_txn_markers_writer_t *w = j->w;
    pthread_mutex_lock(&w->mu);
    bool mine = j->pprev != NULL;
    if (mine) {
        *j->pprev = j->next;
        if (j->next)
            j->next->pprev = j->pprev;
        j->pprev = NULL;
    }
    pthread_mutex_unlock(&w->mu);
    return mine;
}

static void job_release(job_t *j)
{
    if (__atomic_sub_fetch(&j->remaining, 1, __ATOMIC_ACQ_REL) == 0) {
        if (job_claim(j))
            j->done(j->arg, j->errs);
        job_free(j);
    }
}

void sm_txn_markers_stop(sm_txn_markers_writer_t *w)
{
    for (;;) {
        pthread_mutex_lock(&w->mu);
        w->stopped = true;
        job_t *j = w->jobs;
        if (j) {
            w->jobs = j->next;
            if (j->next)
                j->next->pprev = &w->jobs;
            j->pprev = NULL;
        }
        pthread_mutex_unlock(&w->mu);
        if (!j)
            return;
        /* the partitions still in flight finish into a job nobody waits for */
        int16_t *errs = sm_xcalloc((size_t)(j->m.npartitions > 0 ? j->m.npartitions : 1),
                                   sizeof *errs);
        for (int32_t i = 0; i < j->m.npartitions; i++)
            errs[i] = KERR_NOT_COORDINATOR;
        j->done(j->arg, errs);
        free(errs);
    }
}

sm_txn_markers_writer_t *sm_txn_markers_new(sm_server_t *srv)
{
    sm_txn_markers_writer_t *w = sm_xcalloc(1, sizeof *w);
    w->srv = srv;
    w->loop = sm_server_loop(srv, 0);
    pthread_mutex_init(&w->mu, NULL);
    sm_hmap_init(&w->peers);
    w->seed = (uint64_t)sm_now_mono_ms();
    return w;
}

void sm_txn_markers_free(sm_txn_markers_writer_t *w)
{
    if (!w)
        return;
    for (sm_hmap_entry_t *e = NULL; (e = sm_hmap_next(&w->peers, e));) {
        peer_ent_t *pe = e->value;
        sm_peer_free(pe->peer);
        free(pe->host);
        free(pe);
    }
    sm_hmap_free(&w->peers);
    pthread_mutex_destroy(&w->mu);
    free(w);
}

/* ------------------------------------------------------------ local */

typedef struct local_wait {
    sm_hw_waiter_t w; /* first member */
    job_t *job;
    int idx;
} local_wait_t;

static void local_replicated(sm_hw_waiter_t *hw, int16_t kerr)
{
    local_wait_t *lw = (local_wait_t *)hw;
    if (kerr && kerr != KERR_NOT_ENOUGH_REPLICAS_AFTER_APPEND)
        lw->job->errs[lw->idx] = kerr;
    job_t *j = lw->job;
    free(lw);
    job_release(j);
}

static void write_local(job_t *j, int idx, sm_partition_t *p)
{
    const sm_txn_markers_t *m = &j->m;
    sm_append_info_t info;
    int16_t kerr = 0;
    sm_err_t err = sm_partition_write_marker(p, m->producer_id, m->producer_epoch, m->committed,
                                             m->coordinator_epoch, &info, &kerr);
    if (err != SM_OK) {
        j->errs[idx] = kerr ? kerr : sm_kerr_from(err);
        job_release(j);
        return;
    }
    const sm_txn_tp_t *tp = &m->partitions[idx];
    if (strcmp(tp->topic, SM_GROUP_COORD_TOPIC) == 0 && sm_server_groups(j->w->srv))
        sm_group_coord_txn_complete(sm_server_groups(j->w->srv), tp->partition, m->producer_id,
                                    m->committed);
    local_wait_t *lw = sm_xcalloc(1, sizeof *lw);
    lw->w.done = local_replicated;
    lw->w.target = info.last_offset + 1;
    lw->w.deadline_ms = sm_now_mono_ms() + MARKER_HW_TIMEOUT_MS;
    lw->job = j;
    lw->idx = idx;
    if (sm_partition_wait_hw(p, &lw->w)) {
        free(lw);
        job_release(j);
    }
}

/* ------------------------------------------------------------ remote */

/* A WriteTxnMarkers request to one leader, for the partitions idx[0..n). */
typedef struct remote {
    job_t *job;
    int32_t leader;
    int *idx;
    int n;
} remote_t;

static void remote_fail(remote_t *r, int16_t kerr)
{
    for (int i = 0; i < r->n; i++) {
        if (!r->job->errs[r->idx[i]])
            r->job->errs[r->idx[i]] = kerr;
        job_release(r->job);
    }
    free(r->idx);
    free(r);
}

static void on_remote(void *ctx, sm_err_t io, const uint8_t *body, size_t len)
{
    remote_t *r = ctx;
    job_t *j = r->job;
    if (io != SM_OK) {
        SM_DEBUG(TAG, "WriteTxnMarkers to broker %d failed: %s", r->leader, sm_err_str(io));
        remote_fail(r, KERR_COORDINATOR_NOT_AVAILABLE);
        return;
    }
    sm_arena_t a;
    sm_arena_init(&a);
    sm_rd_t rd;
    sm_rd_init(&rd, body, len);
    sm_write_txn_markers_response_t resp;
    if (sm_write_txn_markers_response_decode(&rd, &a, MARKER_RPC_VERSION, &resp) != SM_OK) {
        sm_arena_free(&a);
        SM_WARN(TAG, "malformed WriteTxnMarkers response from broker %d", r->leader);
        remote_fail(r, KERR_UNKNOWN_SERVER_ERROR);
        return;
    }
    /* every partition asked gets the error the leader gave it; one the
     * answer lacks counts as failed */
    for (int i = 0; i < r->n; i++) {
        const sm_txn_tp_t *tp = &j->m.partitions[r->idx[i]];
        int16_t e = KERR_UNKNOWN_SERVER_ERROR;
        for (int32_t k = 0; k < resp.markers_count; k++)
            for (int32_t t = 0; t < resp.markers[k].topics_count; t++) {
                const sm_write_txn_markers_response_writable_txn_marker_topic_result_t *tr =
                    &resp.markers[k].topics[t];
                if (tr->name.len != (int32_t)strlen(tp->topic) ||
                    memcmp(tr->name.ptr, tp->topic, (size_t)tr->name.len) != 0)
                    continue;
                for (int32_t q = 0; q < tr->partitions_count; q++)
                    if (tr->partitions[q].partition_index == tp->partition)
                        e = tr->partitions[q].error_code;
            }
        j->errs[r->idx[i]] = e;
    }
    sm_arena_free(&a);
    remote_fail(r, 0); /* errors are set; releases each partition */
}

static sm_peer_t *peer_for(sm_txn_markers_writer_t *w, int32_t id)
{
    sm_meta_image_t *img = sm_meta_image_get(sm_server_meta(w->srv));
    const sm_broker_meta_t *b = sm_meta_image_broker(img, id);
    const sm_config_t *cfg = sm_server_config(w->srv);
    const sm_endpoint_t *ep = b ? sm_meta_broker_endpoint(b, cfg->inter_broker_listener_name) : NULL;
    const char *host = ep ? ep->host : b ? b->host : NULL;
    int port = ep ? ep->port : b ? b->port : 0;
    sm_peer_t *peer = NULL;
    if (host && port > 0) {
        peer_ent_t *pe = sm_hmap_get(&w->peers, (const char *)&id, sizeof id);
        if (pe && (strcmp(pe->host, host) != 0 || pe->port != port)) {
            sm_peer_free(pe->peer);
            free(pe->host);
            free(pe);
            sm_hmap_del(&w->peers, (const char *)&id, sizeof id);
            pe = NULL;
        }
        if (!pe) {
            pe = sm_xcalloc(1, sizeof *pe);
            pe->host = sm_xstrdup(host);
            pe->port = port;
            char cid[64];
            snprintf(cid, sizeof cid, "samsa-txn-markers-%d", cfg->node_id);
            sm_peer_config_t pc = {.client_id = cid, .seed = w->seed++};
            pe->peer = sm_peer_new(w->loop, host, port, &pc);
            sm_hmap_put(&w->peers, (const char *)&id, sizeof id, pe);
        }
        peer = pe->peer;
    }
    sm_meta_image_put(img);
    return peer;
}

/* Loop 0: encode and send. */
static void remote_send(void *arg)
{
    remote_t *r = arg;
    job_t *j = r->job;
    sm_peer_t *peer = peer_for(j->w, r->leader);
    if (!peer) {
        remote_fail(r, KERR_COORDINATOR_NOT_AVAILABLE);
        return;
    }
    /* one marker, its partitions grouped by topic (in the order given) */
    sm_arena_t a;
    sm_arena_init(&a);
    sm_write_txn_markers_request_writable_txn_marker_t mk;
    sm_write_txn_markers_request_writable_txn_marker_init(&mk);
    mk.producer_id = j->m.producer_id;
    mk.producer_epoch = j->m.producer_epoch;
    mk.transaction_result = j->m.committed;
    mk.coordinator_epoch = j->m.coordinator_epoch;
    mk.topics = sm_arena_alloc(&a, sizeof *mk.topics * (size_t)r->n);
    for (int i = 0; i < r->n; i++) {
        const sm_txn_tp_t *tp = &j->m.partitions[r->idx[i]];
        sm_write_txn_markers_request_writable_txn_marker_topic_t *t = NULL;
        for (int32_t k = 0; k < mk.topics_count; k++)
            if (strcmp(mk.topics[k].name.ptr, tp->topic) == 0)
                t = &mk.topics[k];
        if (!t) {
            t = &mk.topics[mk.topics_count++];
            sm_write_txn_markers_request_writable_txn_marker_topic_init(t);
            t->name = sm_str(tp->topic);
            t->partition_indexes = sm_arena_alloc(&a, sizeof(int32_t) * (size_t)r->n);
        }
        t->partition_indexes[t->partition_indexes_count++] = tp->partition;
    }
    sm_write_txn_markers_request_t q;
    sm_write_txn_markers_request_init(&q);
    q.markers = &mk;
    q.markers_count = 1;
    sm_wbuf_t wb;
    sm_wbuf_init(&wb);
    sm_write_txn_markers_request_encode(&wb, MARKER_RPC_VERSION, &q);
    sm_arena_free(&a);
    sm_err_t err = sm_peer_send(peer, SM_API_WRITE_TXN_MARKERS, MARKER_RPC_VERSION, 2, 1, wb.mem,
                                wb.len, MARKER_RPC_TIMEOUT_MS, on_remote, r);
    sm_wbuf_free(&wb);
    if (err != SM_OK)
        remote_fail(r, KERR_COORDINATOR_NOT_AVAILABLE);
}

/* ------------------------------------------------------------ entry */

void sm_txn_markers_write(sm_txn_markers_writer_t *w, const sm_txn_markers_t *m,
                          void (*done)(void *arg, const int16_t *errs), void *arg)
{
    job_t *j = sm_xcalloc(1, sizeof *j);
    j->w = w;
    j->m = *m;
    j->m.transactional_id = NULL;
    j->tps = sm_xcalloc((size_t)(m->npartitions > 0 ? m->npartitions : 1), sizeof *j->tps);
    for (int32_t i = 0; i < m->npartitions; i++) {
        j->tps[i].topic = sm_xstrdup(m->partitions[i].topic);
        j->tps[i].partition = m->partitions[i].partition;
    }
    j->m.partitions = j->tps;
    j->errs = sm_xcalloc((size_t)(m->npartitions > 0 ? m->npartitions : 1), sizeof *j->errs);
    j->remaining = m->npartitions + 1;
    j->done = done;
    j->arg = arg;
    pthread_mutex_lock(&w->mu);
    bool stopped = w->stopped;
    if (!stopped) {
        j->next = w->jobs;
        if (w->jobs)
            w->jobs->pprev = &j->next;
        w->jobs = j;
        j->pprev = &w->jobs;
    }
    pthread_mutex_unlock(&w->mu);
    if (stopped) {
        for (int32_t i = 0; i < m->npartitions; i++)
            j->errs[i] = KERR_NOT_COORDINATOR;
        done(arg, j->errs);
        job_free(j);
        return;
    }
    int32_t self = sm_server_config(w->srv)->node_id;
    sm_meta_image_t *img = sm_meta_image_get(sm_server_meta(w->srv));
    int32_t *leaders = sm_xcalloc((size_t)(m->npartitions > 0 ? m->npartitions : 1),
                                  sizeof *leaders);
    for (int32_t i = 0; i < m->npartitions; i++) {
        const sm_txn_tp_t *tp = &m->partitions[i];
        const sm_topic_meta_t *t = sm_meta_image_topic(img, tp->topic, strlen(tp->topic));
        leaders[i] = -2; /* unknown partition */
        if (t && tp->partition >= 0 && tp->partition < t->npartitions)
            leaders[i] = t->partitions[tp->partition].leader;
    }
    sm_meta_image_put(img);
    for (int32_t i = 0; i < m->npartitions; i++) {
        if (leaders[i] == -2) {
            j->errs[i] = KERR_UNKNOWN_TOPIC_OR_PARTITION;
            job_release(j);
        } else if (leaders[i] < 0) {
            j->errs[i] = KERR_NOT_LEADER_OR_FOLLOWER;
            job_release(j);
        } else if (leaders[i] == self) {
            const sm_txn_tp_t *tp = &m->partitions[i];
            sm_partition_t *p =
                sm_server_partition(w->srv, tp->topic, strlen(tp->topic), tp->partition);
            if (!p) {
                j->errs[i] = KERR_NOT_LEADER_OR_FOLLOWER;
                job_release(j);
            } else {
                write_local(j, i, p);
                sm_partition_put(p);
            }
        } else if (leaders[i] >= 0) {
            /* first partition of this leader: gather all of its partitions */
            bool first = true;
            for (int32_t k = 0; k < i; k++)
                if (leaders[k] == leaders[i])
                    first = false;
            if (!first)
                continue;
            remote_t *r = sm_xcalloc(1, sizeof *r);
            r->job = j;
            r->leader = leaders[i];
            r->idx = sm_xcalloc((size_t)m->npartitions, sizeof *r->idx);
            for (int32_t k = i; k < m->npartitions; k++)
                if (leaders[k] == leaders[i])
                    r->idx[r->n++] = k;
            sm_loop_post(w->loop, remote_send, r);
        }
    }
    free(leaders);
    job_release(j);
}

/* ------------------------------------------------------------ verification */

#define VERIFY_RPC_VERSION 4
#define VERIFY_RPC_TIMEOUT_MS 10000

static void verify_finish(sm_txn_verify_t *v, int16_t all)
{
    if (all)
        for (int32_t i = 0; i < v->nparts; i++)
            v->parts[i].error = all;
    v->done(v);
}

static void verify_local_done(sm_txn_add_t *op)
{
    sm_txn_verify_t *v = op->arg;
    verify_finish(v, op->error);
}

static void on_verify(void *ctx, sm_err_t io, const uint8_t *body, size_t len)
{
    sm_txn_verify_t *v = ctx;
    if (io != SM_OK) {
        SM_DEBUG(TAG, "verification by broker %d failed: %s", v->coordinator, sm_err_str(io));
        verify_finish(v, KERR_COORDINATOR_NOT_AVAILABLE);
        return;
    }
    sm_arena_t a;
    sm_arena_init(&a);
    sm_rd_t rd;
    sm_rd_init(&rd, body, len);
    sm_add_partitions_to_txn_response_t resp;
    if (sm_add_partitions_to_txn_response_decode(&rd, &a, VERIFY_RPC_VERSION, &resp) != SM_OK) {
        sm_arena_free(&a);
        SM_WARN(TAG, "malformed AddPartitionsToTxn response from broker %d", v->coordinator);
        verify_finish(v, KERR_UNKNOWN_SERVER_ERROR);
        return;
    }
    int16_t all = resp.error_code;
    for (int32_t i = 0; i < v->nparts && !all; i++) {
        sm_txn_add_part_t *pt = &v->parts[i];
        pt->error = KERR_UNKNOWN_SERVER_ERROR; /* unless the answer has it */
        for (int32_t k = 0; k < resp.results_by_transaction_count; k++)
            for (int32_t t = 0; t < resp.results_by_transaction[k].topic_results_count; t++) {
                const sm_add_partitions_to_txn_response_add_partitions_to_txn_topic_result_t *tr =
                    &resp.results_by_transaction[k].topic_results[t];
                if (tr->name.len != (int32_t)strlen(pt->topic) ||
                    memcmp(tr->name.ptr, pt->topic, (size_t)tr->name.len) != 0)
                    continue;
                for (int32_t q = 0; q < tr->results_by_partition_count; q++)
                    if (tr->results_by_partition[q].partition_index == pt->partition)
                        pt->error = tr->results_by_partition[q].partition_error_code;
            }
    }
    sm_arena_free(&a);
    verify_finish(v, all);
}

/* Loop 0: one AddPartitionsToTxn v4 (verify_only) to the coordinator. */
static void verify_send(void *arg)
{
    sm_txn_verify_t *v = arg;
    sm_peer_t *peer = peer_for(v->w, v->coordinator);
    if (!peer) {
        verify_finish(v, KERR_COORDINATOR_NOT_AVAILABLE);
        return;
    }
    sm_arena_t a;
    sm_arena_init(&a);
    sm_add_partitions_to_txn_request_add_partitions_to_txn_transaction_t tx;
    sm_add_partitions_to_txn_request_add_partitions_to_txn_transaction_init(&tx);
    tx.transactional_id = (sm_str_t){.ptr = v->transactional_id, .len = (int32_t)v->id_len};
    tx.producer_id = v->producer_id;
    tx.producer_epoch = v->producer_epoch;
    tx.verify_only = true;
    tx.topics = sm_arena_alloc(&a, sizeof *tx.topics * (size_t)(v->nparts > 0 ? v->nparts : 1));
    for (int32_t i = 0; i < v->nparts; i++) {
        const sm_txn_add_part_t *pt = &v->parts[i];
        sm_add_partitions_to_txn_request_add_partitions_to_txn_topic_t *t = NULL;
        for (int32_t k = 0; k < tx.topics_count; k++)
            if (strcmp(tx.topics[k].name.ptr, pt->topic) == 0)
                t = &tx.topics[k];
        if (!t) {
            t = &tx.topics[tx.topics_count++];
            sm_add_partitions_to_txn_request_add_partitions_to_txn_topic_init(t);
            t->name = sm_str(pt->topic);
            t->partitions = sm_arena_alloc(&a, sizeof(int32_t) * (size_t)v->nparts);
        }
        t->partitions[t->partitions_count++] = pt->partition;
    }
    sm_add_partitions_to_txn_request_t q;
    sm_add_partitions_to_txn_request_init(&q);
    q.transactions = &tx;
    q.transactions_count = 1;
    sm_wbuf_t wb;
    sm_wbuf_init(&wb);
    sm_add_partitions_to_txn_request_encode(&wb, VERIFY_RPC_VERSION, &q);
    sm_arena_free(&a);
    sm_err_t err = sm_peer_send(peer, SM_API_ADD_PARTITIONS_TO_TXN, VERIFY_RPC_VERSION, 2, 1,
                                wb.mem, wb.len, VERIFY_RPC_TIMEOUT_MS, on_verify, v);
    sm_wbuf_free(&wb);
    if (err != SM_OK)
        verify_finish(v, KERR_COORDINATOR_NOT_AVAILABLE);
}

void sm_txn_markers_verify(sm_txn_markers_writer_t *w, sm_txn_verify_t *v)
{
    v->w = w;
    v->coordinator = -1;
    for (int32_t i = 0; i < v->nparts; i++)
        v->parts[i].error = 0;
    sm_txn_coord_t *tc = sm_server_txn(w->srv);
    pthread_mutex_lock(&w->mu);
    bool stopped = w->stopped;
    pthread_mutex_unlock(&w->mu);
    if (!tc || stopped) {
        verify_finish(v, KERR_COORDINATOR_NOT_AVAILABLE);
        return;
    }
    int32_t part = -1;
    int16_t st = sm_txn_coord_status(tc, v->transactional_id, v->id_len, &part);
    if (st != KERR_NOT_COORDINATOR) {
        /* ours (loaded or loading: the coordinator answers either way) */
        memset(&v->op, 0, sizeof v->op);
        v->op.transactional_id = v->transactional_id;
        v->op.id_len = v->id_len;
        v->op.producer_id = v->producer_id;
        v->op.producer_epoch = v->producer_epoch;
        v->op.verify_only = true;
        v->op.client_version = 1;
        v->op.parts = v->parts;
        v->op.nparts = v->nparts;
        v->op.done = verify_local_done;
        v->op.arg = v;
        sm_txn_coord_add_partitions(tc, &v->op);
        return;
    }
    sm_meta_image_t *img = sm_meta_image_get(sm_server_meta(w->srv));
    const sm_topic_meta_t *t =
        sm_meta_image_topic(img, SM_TXN_COORD_TOPIC, strlen(SM_TXN_COORD_TOPIC));
    if (t && part >= 0 && part < t->npartitions)
        v->coordinator = t->partitions[part].leader;
    sm_meta_image_put(img);
    if (v->coordinator < 0 || v->coordinator == sm_server_config(w->srv)->node_id) {
        verify_finish(v, KERR_COORDINATOR_NOT_AVAILABLE);
        return;
    }
    sm_loop_post(w->loop, verify_send, v);
}
