/*
 * handle_txn_admin.c - the transaction admin APIs behind kafka-transactions.sh
 * and `samsa txn`: DescribeProducers (61), DescribeTransactions (65) and
 * ListTransactions (66).
 *
 * DescribeProducers reads a partition's producer state (producer_state.h):
 * every producer id the partition remembers, with its epoch, last sequence
 * and timestamp, the epoch of the coordinator that wrote its last marker
 * and the first offset of its open transaction. Any replica with the
 * partition's log answers, leader or follower, as in Kafka (a follower's
 * state lags its leader's by what it has not fetched yet; kafka-transactions
 * describe-producers --broker-id asks a given replica). The two others are thin adapters
 * over the transaction coordinator (txn_coord.h); on a node without one
 * (not started yet, controller-only) DescribeTransactions answers
 * COORDINATOR_NOT_AVAILABLE and ListTransactions an empty list, which is
 * what an admin client that asks every broker expects.
 *
 * Loop thread; nothing here blocks (the partition's append mutex is held
 * only while its producers are copied).
 */
#include "handler_util.h"
#include "handlers.h"
#include "meta.h"
#include "server.h"
#include "txn_coord.h"

#include <string.h>

/* ------------------------------------------------------ DescribeProducers */

typedef sm_describe_producers_response_producer_state_t producer_out_t;

/* The producers of one partition, copied into the request's arena while the
 * partition's mutex is held. */
typedef struct producers_acc {
    sm_req_t *req;
    producer_out_t *v;
    int32_t n, cap;
} producers_acc_t;

static void producer_collect(void *arg, const sm_producer_t *pr)
{
    producers_acc_t *acc = arg;
    if (acc->n == acc->cap) {
        int32_t cap = acc->cap ? acc->cap * 2 : 8;
        producer_out_t *v = SM_ARENA_NEW(&acc->req->arena, producer_out_t, cap);
        if (acc->n)
            memcpy(v, acc->v, sizeof *v * (size_t)acc->n);
        acc->v = v;
        acc->cap = cap;
    }
    producer_out_t *o = &acc->v[acc->n++];
    sm_describe_producers_response_producer_state_init(o);
    o->producer_id = pr->pid;
    o->producer_epoch = pr->epoch;
    o->last_sequence = pr->nbatches > 0 ? pr->batches[pr->nbatches - 1].last_seq : -1;
    o->last_timestamp = pr->last_timestamp;
    o->coordinator_epoch = pr->coordinator_epoch;
    o->current_txn_start_offset = pr->txn_first_offset;
}

/* Kafka's answer for a partition with no replica here: NOT_LEADER_OR_FOLLOWER
 * when the metadata knows it (other brokers host it), else
 * UNKNOWN_TOPIC_OR_PARTITION. */
static int16_t not_here_kerr(sm_req_t *req, const char *topic, int32_t index)
{
    sm_meta_image_t *img = sm_meta_image_get(sm_server_meta(req->srv));
    const sm_topic_meta_t *tm = sm_meta_image_topic(img, topic, strlen(topic));
    bool known = tm && index >= 0 && index < tm->npartitions;
    sm_meta_image_put(img);
    return known ? KERR_NOT_LEADER_OR_FOLLOWER : KERR_UNKNOWN_TOPIC_OR_PARTITION;
}

static void describe_partition(sm_req_t *req, const char *topic, int32_t index,
                               sm_describe_producers_response_partition_response_t *out)
{
    out->partition_index = index;
    out->active_producers_count = 0;
    sm_partition_t *p = sm_server_partition(req->srv, topic, strlen(topic), index);
    if (!p || sm_partition_role(p) == SM_ROLE_NONE || sm_partition_deleted(p)) {
        out->error_code = p && !sm_partition_deleted(p) ? KERR_NOT_LEADER_OR_FOLLOWER
                                                        : not_here_kerr(req, topic, index);
        if (p)
            sm_partition_put(p);
        return;
    }
    producers_acc_t acc = {.req = req};
    sm_partition_each_producer(p, producer_collect, &acc);
    sm_partition_put(p);
    out->active_producers = acc.v;
    out->active_producers_count = acc.n;
}

void sm_handle_describe_producers(sm_req_t *req)
{
    sm_describe_producers_request_t msg;
    SM_DECODE_OR_FAIL(describe_producers_request, req, &msg);
    sm_describe_producers_response_t resp;
    sm_describe_producers_response_init(&resp);
    int32_t nt = msg.topics_count > 0 ? msg.topics_count : 0;
    SM_NEW_ARRAY(req, sm_describe_producers_response_topic_response, nt, resp.topics);
    resp.topics_count = nt;
    for (int32_t i = 0; i < nt; i++) {
        const sm_describe_producers_request_topic_request_t *t = &msg.topics[i];
        sm_describe_producers_response_topic_response_t *r = &resp.topics[i];
        int32_t np = t->partition_indexes_count > 0 ? t->partition_indexes_count : 0;
        r->name = t->name;
        SM_NEW_ARRAY(req, sm_describe_producers_response_partition_response, np, r->partitions);
        r->partitions_count = np;
        bool bad_name = t->name.len <= 0 || sm_str_has_nul(t->name);
        char *topic = sm_req_str(req, t->name);
        for (int32_t k = 0; k < np; k++) {
            if (bad_name) {
                r->partitions[k].partition_index = t->partition_indexes[k];
                r->partitions[k].error_code = KERR_UNKNOWN_TOPIC_OR_PARTITION;
                r->partitions[k].active_producers_count = 0;
                continue;
            }
            describe_partition(req, topic, t->partition_indexes[k], &r->partitions[k]);
        }
    }
    SM_RESPOND(describe_producers_response, req, &resp);
}

/* --------------------------------------------------- DescribeTransactions */

void sm_handle_describe_transactions(sm_req_t *req)
{
    sm_describe_transactions_request_t msg;
    SM_DECODE_OR_FAIL(describe_transactions_request, req, &msg);
    sm_describe_transactions_response_t resp;
    sm_describe_transactions_response_init(&resp);
    sm_txn_coord_t *tc = sm_server_txn(req->srv);
    int32_t n = msg.transactional_ids_count > 0 ? msg.transactional_ids_count : 0;
    SM_NEW_ARRAY(req, sm_describe_transactions_response_transaction_state, n,
                 resp.transaction_states);
    resp.transaction_states_count = n;
    for (int32_t i = 0; i < n; i++) {
        sm_str_t id = msg.transactional_ids[i];
        sm_describe_transactions_response_transaction_state_t *r = &resp.transaction_states[i];
        r->transactional_id = id;
        r->topics_count = 0;
        if (!tc) {
            r->error_code = KERR_COORDINATOR_NOT_AVAILABLE;
            continue;
        }
        if (id.len <= 0 || sm_str_has_nul(id)) {
            r->error_code = KERR_TRANSACTIONAL_ID_NOT_FOUND; /* no id has such a name */
            continue;
        }
        sm_txn_desc_t d;
        memset(&d, 0, sizeof d);
        sm_txn_coord_describe(tc, id.ptr, (size_t)id.len, &req->arena, &d);
        r->error_code = d.error;
        if (d.error)
            continue;
        r->transaction_state = sm_str(d.state);
        r->transaction_timeout_ms = d.timeout_ms;
        r->transaction_start_time_ms = d.start_ms;
        r->producer_id = d.producer_id;
        r->producer_epoch = d.producer_epoch;
        /* d.tps is sorted by topic: one entry per run of equal topics. */
        int32_t ntopics = 0;
        for (int32_t k = 0; k < d.ntps; k++)
            ntopics += k == 0 || strcmp(d.tps[k].topic, d.tps[k - 1].topic) != 0;
        SM_NEW_ARRAY(req, sm_describe_transactions_response_topic_data, ntopics, r->topics);
        r->topics_count = ntopics;
        int32_t *parts = SM_ARENA_NEW(&req->arena, int32_t, d.ntps > 0 ? d.ntps : 1);
        int32_t t = -1;
        for (int32_t k = 0; k < d.ntps; k++) {
            if (k == 0 || strcmp(d.tps[k].topic, d.tps[k - 1].topic) != 0) {
                t++;
                r->topics[t].topic = sm_str(d.tps[k].topic);
                r->topics[t].partitions = &parts[k];
                r->topics[t].partitions_count = 0;
            }
            parts[k] = d.tps[k].partition;
            r->topics[t].partitions_count++;
        }
    }
    SM_RESPOND(describe_transactions_response, req, &resp);
}

/* ------------------------------------------------------ ListTransactions */

void sm_handle_list_transactions(sm_req_t *req)
{
    sm_list_transactions_request_t msg;
    SM_DECODE_OR_FAIL(list_transactions_request, req, &msg);
    sm_list_transactions_response_t resp;
    sm_list_transactions_response_init(&resp);
    resp.unknown_state_filters_count = 0;
    resp.transaction_states_count = 0;
    sm_txn_coord_t *tc = sm_server_txn(req->srv);
    if (tc) {
        sm_txn_list_filter_t f = {
            .states = msg.state_filters,
            .nstates = msg.state_filters_count > 0 ? msg.state_filters_count : 0,
            .producer_ids = msg.producer_id_filters,
            .nproducer_ids = msg.producer_id_filters_count > 0 ? msg.producer_id_filters_count : 0,
            .min_duration_ms = req->api_version >= 1 ? msg.duration_filter : -1,
        };
        sm_txn_listing_t *l = NULL;
        sm_str_t *unknown = NULL;
        int32_t n = 0, nunknown = 0;
        resp.error_code = sm_txn_coord_list(tc, &f, &req->arena, &l, &n, &unknown, &nunknown);
        resp.unknown_state_filters = unknown;
        resp.unknown_state_filters_count = nunknown;
        SM_NEW_ARRAY(req, sm_list_transactions_response_transaction_state, n,
                     resp.transaction_states);
        resp.transaction_states_count = n;
        for (int32_t i = 0; i < n; i++) {
            resp.transaction_states[i].transactional_id = sm_str(l[i].transactional_id);
            resp.transaction_states[i].producer_id = l[i].producer_id;
            resp.transaction_states[i].transaction_state = sm_str(l[i].state);
        }
    }
    SM_RESPOND(list_transactions_response, req, &resp);
}
