/*
 * txn_ops.c - the operations behind `samsa txn` and kafka-transactions.sh
 * (txn.h), each a few raw requests over admin_wire.c:
 *
 *   list                ListTransactions to every broker (each coordinates
 *                       its own share of __transaction_state)
 *   describe            FindCoordinator (key type 1), DescribeTransactions
 *   describe-producers  Metadata (leader), DescribeProducers to the leader
 *                       or to --broker-id
 *   abort               WriteTxnMarkers with an ABORT marker to the leader,
 *                       as Kafka's Admin.abortTransaction; the --start-offset
 *                       form first finds the producer with DescribeProducers
 *   find-hanging        DescribeProducers over the partitions of a broker (or
 *                       topic), open transactions older than the maximum
 *                       timeout, then ListTransactions/DescribeTransactions
 *                       to keep those the coordinator does not know about
 *
 * Output goes through a small row collector printed either as samsa's table
 * or JSON, or as Kafka's tool prints it (every column padded to its widest
 * cell and followed by a tab). Main thread only.
 */
#include "txn.h"

#include "admin_wire.h"
#include "out.h"

#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>

void cli_txn_opts_init(cli_txn_opts_t *o, cli_txn_style_t style, const char *who)
{
    memset(o, 0, sizeof *o);
    o->style = style;
    o->who = who;
    o->partition = -1;
    o->broker_id = -1;
    o->producer_id = -1;
    o->producer_epoch = -1;
    o->coordinator_epoch = INT32_MIN;
    o->start_offset = -1;
    o->max_timeout_ms = 15 * 60000;
    o->min_duration_ms = -1;
}

static int64_t now_ms(void)
{
    struct timeval tv;
    gettimeofday(&tv, NULL);
    return (int64_t)tv.tv_sec * 1000 + tv.tv_usec / 1000;
}

/* ------------------------------------------------------------ rows */

/* A column: Kafka's header, samsa's table header and JSON key, and whether
 * the JSON value is a number ("None" and "-" become null). */
typedef struct col {
    const char *kafka, *samsa, *json;
    bool num;
} col_t;

typedef struct rows {
    const col_t *cols;
    int ncols;
    char **cells; /* nrows * ncols, malloc'd */
    int nrows, cap;
} rows_t;

static void rows_init(rows_t *r, const col_t *cols, int ncols)
{
    memset(r, 0, sizeof *r);
    r->cols = cols;
    r->ncols = ncols;
}

/* Append one row of ncols cells. */
static void rows_add(rows_t *r, const char *const *cells)
{
    if (r->nrows == r->cap) {
        r->cap = r->cap ? r->cap * 2 : 16;
        r->cells = sm_xrealloc(r->cells, sizeof(char *) * (size_t)r->cap * (size_t)r->ncols);
    }
    for (int i = 0; i < r->ncols; i++)
        r->cells[r->nrows * r->ncols + i] = strdup(cells[i] ? cells[i] : "");
    r->nrows++;
}

static void rows_free(rows_t *r)
{
    for (int i = 0; i < r->nrows * r->ncols; i++)
        free(r->cells[i]);
    free(r->cells);
}

static void print_kafka_row(const rows_t *r, const int *w, const char *const *cells)
{
    for (int i = 0; i < r->ncols; i++)
        printf("%-*s\t", w[i], cells[i]);
    printf("\n");
}

static void rows_print(const rows_t *r, cli_txn_style_t style)
{
    if (style == CLI_TXN_KAFKA) {
        int w[16] = {0};
        const char *hdr[16];
        for (int i = 0; i < r->ncols && i < 16; i++) {
            hdr[i] = r->cols[i].kafka;
            w[i] = (int)strlen(hdr[i]);
            for (int k = 0; k < r->nrows; k++)
                w[i] = SM_MAX(w[i], (int)strlen(r->cells[k * r->ncols + i]));
        }
        print_kafka_row(r, w, hdr);
        for (int k = 0; k < r->nrows; k++)
            print_kafka_row(r, w, (const char *const *)&r->cells[k * r->ncols]);
        return;
    }
    if (cli_g.format == CLI_FMT_JSON) {
        cli_json_t j;
        cli_json_init(&j, stdout);
        cli_json_arr_begin(&j);
        for (int k = 0; k < r->nrows; k++) {
            cli_json_obj_begin(&j);
            for (int i = 0; i < r->ncols; i++) {
                const char *c = r->cells[k * r->ncols + i];
                cli_json_key(&j, r->cols[i].json);
                if (r->cols[i].num && (strcmp(c, "None") == 0 || strcmp(c, "-") == 0))
                    cli_json_null(&j);
                else if (r->cols[i].num)
                    cli_json_int(&j, strtoll(c, NULL, 10));
                else
                    cli_json_str(&j, c);
            }
            cli_json_obj_end(&j);
        }
        cli_json_arr_end(&j);
        cli_json_done(&j);
        return;
    }
    cli_table_t t;
    cli_table_init(&t, r->ncols);
    for (int i = 0; i < r->ncols; i++)
        cli_table_cell(&t, "%s", r->cols[i].samsa);
    for (int k = 0; k < r->nrows * r->ncols; k++)
        cli_table_cell(&t, "%s", r->cells[k]);
    cli_table_print(&t, stdout);
    cli_table_free(&t);
}

/* ------------------------------------------------------------ cluster */

/* Metadata of the brokers and of topic (NULL: every topic; "": none), on
 * a fresh connection to the bootstrap servers. */
static const sm_metadata_response_t *metadata(const char *topic, sm_arena_t *a)
{
    cli_wire_t w;
    if (!cli_wire_connect(&w, cli_g.brokers))
        return NULL;
    const sm_metadata_response_t *md = NULL;
    int16_t v;
    void *rv;
    sm_metadata_request_t req;
    sm_metadata_request_init(&req);
    req.allow_auto_topic_creation = false;
    sm_metadata_request_metadata_request_topic_t mt;
    sm_metadata_request_metadata_request_topic_init(&mt);
    if (!topic) {
        req.topics_count = -1;
    } else if (*topic) {
        mt.name = sm_str(topic);
        req.topics = &mt;
        req.topics_count = 1;
    } else {
        req.topics_count = 0;
    }
    if (cli_wire_version(&w, SM_API_METADATA, 4, 12, &v) &&
        cli_wire_call(&w, SM_API_METADATA, v, &req, a, &rv))
        md = rv;
    cli_wire_close(&w);
    return md;
}

static const sm_metadata_response_metadata_response_broker_t *
md_broker(const sm_metadata_response_t *md, int32_t id)
{
    for (int32_t i = 0; i < md->brokers_count; i++)
        if (md->brokers[i].node_id == id)
            return &md->brokers[i];
    return NULL;
}

/* Connect to broker id of md. false with a message. */
static bool connect_node(const sm_metadata_response_t *md, int32_t id, sm_arena_t *a,
                         cli_wire_t *w)
{
    const sm_metadata_response_metadata_response_broker_t *b = md_broker(md, id);
    if (!b) {
        cli_fail("broker %d is not in the cluster's metadata", id);
        return false;
    }
    char *host = sm_arena_strndup(a, b->host.ptr ? b->host.ptr : "",
                                  (size_t)SM_MAX(b->host.len, 0));
    return cli_wire_connect_one(w, host, b->port);
}

/* The leader of topic-partition from md: its node id, or -1 with a message. */
static int32_t md_leader(const sm_metadata_response_t *md, const char *topic, int32_t partition)
{
    for (int32_t t = 0; t < md->topics_count; t++) {
        const sm_metadata_response_metadata_response_topic_t *tm = &md->topics[t];
        if (tm->name.len != (int32_t)strlen(topic) || memcmp(tm->name.ptr, topic, strlen(topic)))
            continue;
        if (tm->error_code) {
            cli_fail("topic %s: %s", topic, cli_kafka_err_name(tm->error_code));
            return -1;
        }
        for (int32_t p = 0; p < tm->partitions_count; p++)
            if (tm->partitions[p].partition_index == partition) {
                if (tm->partitions[p].leader_id < 0)
                    cli_fail("%s-%d has no leader", topic, partition);
                return tm->partitions[p].leader_id;
            }
    }
    cli_fail("no such partition: %s-%d", topic, partition);
    return -1;
}

static char *fmt_i64(sm_arena_t *a, int64_t v)
{
    return sm_arena_sprintf(a, "%" PRId64, v);
}

/* ------------------------------------------------------------ list */

int cli_txn_list(const cli_txn_opts_t *o)
{
    static const col_t cols[] = {
        {"TransactionalId", "TRANSACTIONAL-ID", "transactional_id", false},
        {"Coordinator", "COORDINATOR", "coordinator", true},
        {"ProducerId", "PRODUCER-ID", "producer_id", true},
        {"TransactionState", "STATE", "state", false},
    };
    sm_arena_t a;
    sm_arena_init(&a);
    rows_t rows;
    rows_init(&rows, cols, 4);
    int rc = CLI_EXIT_FAIL;
    const sm_metadata_response_t *md = metadata("", &a);
    if (!md)
        goto out;
    sm_str_t states[CLI_TXN_MAX_FILTERS];
    for (int i = 0; i < o->nstates; i++)
        states[i] = sm_str(o->states[i]);
    sm_list_transactions_request_t req;
    sm_list_transactions_request_init(&req);
    req.state_filters = states;
    req.state_filters_count = o->nstates;
    req.producer_id_filters = (int64_t *)o->producer_ids;
    req.producer_id_filters_count = o->nproducer_ids;
    req.duration_filter = o->min_duration_ms;
    for (int32_t b = 0; b < md->brokers_count; b++) {
        int32_t id = md->brokers[b].node_id;
        cli_wire_t w;
        int16_t v;
        void *rv;
        if (!connect_node(md, id, &a, &w))
            goto out;
        bool ok = cli_wire_version(&w, SM_API_LIST_TRANSACTIONS, o->min_duration_ms >= 0 ? 1 : 0,
                                   1, &v) &&
                  cli_wire_call(&w, SM_API_LIST_TRANSACTIONS, v, &req, &a, &rv);
        cli_wire_close(&w);
        if (!ok)
            goto out;
        const sm_list_transactions_response_t *r = rv;
        if (r->error_code) {
            cli_fail("%s: failed to list transactions on broker %d: %s", o->who, id,
                     cli_kafka_err_name(r->error_code));
            goto out;
        }
        for (int32_t k = 0; k < r->unknown_state_filters_count; k++)
            cli_warn("broker %d does not know the transaction state '%.*s'", id,
                     r->unknown_state_filters[k].len, r->unknown_state_filters[k].ptr);
        for (int32_t k = 0; k < r->transaction_states_count; k++) {
            const sm_list_transactions_response_transaction_state_t *s =
                &r->transaction_states[k];
            const char *cells[4] = {
                sm_arena_strndup(&a, s->transactional_id.ptr ? s->transactional_id.ptr : "",
                                 (size_t)SM_MAX(s->transactional_id.len, 0)),
                fmt_i64(&a, id), fmt_i64(&a, s->producer_id),
                sm_arena_strndup(&a, s->transaction_state.ptr ? s->transaction_state.ptr : "",
                                 (size_t)SM_MAX(s->transaction_state.len, 0))};
            rows_add(&rows, cells);
        }
    }
    rows_print(&rows, o->style);
    rc = CLI_EXIT_OK;
out:
    rows_free(&rows);
    sm_arena_free(&a);
    return rc;
}

/* ------------------------------------------------------------ describe */

/* The coordinator of a transactional id: its node id, with *w connected to
 * it. -1 with a message. */
static int32_t find_txn_coordinator(const char *who, const char *txn_id, sm_arena_t *a,
                                    cli_wire_t *w)
{
    cli_wire_t bw;
    if (!cli_wire_connect(&bw, cli_g.brokers))
        return -1;
    int16_t v;
    void *rv;
    int32_t node = -1;
    sm_find_coordinator_request_t req;
    sm_find_coordinator_request_init(&req);
    sm_str_t keys[1] = {sm_str(txn_id)};
    req.key = keys[0];
    req.key_type = 1; /* transaction */
    req.coordinator_keys = keys;
    req.coordinator_keys_count = 1;
    if (!cli_wire_version(&bw, SM_API_FIND_COORDINATOR, 1, 6, &v) ||
        !cli_wire_call(&bw, SM_API_FIND_COORDINATOR, v, &req, a, &rv)) {
        cli_wire_close(&bw);
        return -1;
    }
    cli_wire_close(&bw);
    const sm_find_coordinator_response_t *r = rv;
    int16_t err = r->error_code;
    sm_str_t host = r->host;
    int32_t port = r->port;
    node = r->node_id;
    if (v >= 4) {
        if (r->coordinators_count != 1) {
            cli_fail("%s: FindCoordinator answered %d coordinators", who, r->coordinators_count);
            return -1;
        }
        err = r->coordinators[0].error_code;
        host = r->coordinators[0].host;
        port = r->coordinators[0].port;
        node = r->coordinators[0].node_id;
    }
    if (err) {
        cli_fail("%s: no coordinator for transactional id '%s': %s", who, txn_id,
                 cli_kafka_err_name(err));
        return -1;
    }
    char *h = sm_arena_strndup(a, host.ptr ? host.ptr : "", (size_t)SM_MAX(host.len, 0));
    if (!cli_wire_connect_one(w, h, port))
        return -1;
    return node;
}

/* DescribeTransactions of one id at its coordinator: the description in a,
 * *coordinator set; NULL with a message (quiet: TRANSACTIONAL_ID_NOT_FOUND
 * answers NULL with *not_found set and nothing printed). */
static const sm_describe_transactions_response_transaction_state_t *
describe_one(const char *who, const char *txn_id, sm_arena_t *a, int32_t *coordinator,
             bool *not_found)
{
    cli_wire_t w;
    *not_found = false;
    int32_t node = find_txn_coordinator(who, txn_id, a, &w);
    if (node < 0)
        return NULL;
    *coordinator = node;
    int16_t v;
    void *rv;
    sm_describe_transactions_request_t req;
    sm_describe_transactions_request_init(&req);
    sm_str_t id = sm_str(txn_id);
    req.transactional_ids = &id;
    req.transactional_ids_count = 1;
    bool ok = cli_wire_version(&w, SM_API_DESCRIBE_TRANSACTIONS, 0, 0, &v) &&
              cli_wire_call(&w, SM_API_DESCRIBE_TRANSACTIONS, v, &req, a, &rv);
    cli_wire_close(&w);
    if (!ok)
        return NULL;
    const sm_describe_transactions_response_t *r = rv;
    if (r->transaction_states_count != 1) {
        cli_fail("%s: DescribeTransactions answered %d states", who, r->transaction_states_count);
        return NULL;
    }
    const sm_describe_transactions_response_transaction_state_t *s = &r->transaction_states[0];
    if (s->error_code == 105 /* TRANSACTIONAL_ID_NOT_FOUND */) {
        *not_found = true;
        return NULL;
    }
    if (s->error_code) {
        cli_fail("%s: failed to describe transaction state of transactional-id '%s': %s", who,
                 txn_id, cli_kafka_err_name(s->error_code));
        return NULL;
    }
    return s;
}

int cli_txn_describe(const cli_txn_opts_t *o)
{
    static const col_t cols[] = {
        {"CoordinatorId", "COORDINATOR", "coordinator", true},
        {"TransactionalId", "TRANSACTIONAL-ID", "transactional_id", false},
        {"ProducerId", "PRODUCER-ID", "producer_id", true},
        {"ProducerEpoch", "EPOCH", "producer_epoch", true},
        {"TransactionState", "STATE", "state", false},
        {"TransactionTimeoutMs", "TIMEOUT-MS", "timeout_ms", true},
        {"CurrentTransactionStartTimeMs", "START-TIME-MS", "start_time_ms", true},
        {"TransactionDurationMs", "DURATION-MS", "duration_ms", true},
        {"TopicPartitions", "PARTITIONS", "partitions", false},
    };
    sm_arena_t a;
    sm_arena_init(&a);
    int rc = CLI_EXIT_FAIL;
    int32_t coord = -1;
    bool not_found;
    const sm_describe_transactions_response_transaction_state_t *s =
        describe_one(o->who, o->transactional_id, &a, &coord, &not_found);
    if (!s) {
        if (not_found)
            cli_fail("%s: failed to describe transaction state of transactional-id '%s': "
                     "no such transactional id",
                     o->who, o->transactional_id);
        sm_arena_free(&a);
        return rc;
    }
    /* topic-partition,topic-partition,... */
    size_t cap = 1;
    for (int32_t t = 0; t < s->topics_count; t++)
        cap += (size_t)(SM_MAX(s->topics[t].topic.len, 0) + 13) *
               (size_t)SM_MAX(s->topics[t].partitions_count, 0);
    char *parts = SM_ARENA_NEW(&a, char, cap);
    size_t pl = 0;
    parts[0] = 0;
    for (int32_t t = 0; t < s->topics_count; t++)
        for (int32_t k = 0; k < s->topics[t].partitions_count; k++)
            pl += (size_t)snprintf(parts + pl, cap - pl, "%s%.*s-%d", pl ? "," : "",
                                   s->topics[t].topic.len, s->topics[t].topic.ptr,
                                   s->topics[t].partitions[k]);
    bool started = s->transaction_start_time_ms >= 0;
    const char *cells[9] = {
        fmt_i64(&a, coord),
        o->transactional_id,
        fmt_i64(&a, s->producer_id),
        fmt_i64(&a, s->producer_epoch),
        sm_arena_strndup(&a, s->transaction_state.ptr ? s->transaction_state.ptr : "",
                         (size_t)SM_MAX(s->transaction_state.len, 0)),
        fmt_i64(&a, s->transaction_timeout_ms),
        started ? fmt_i64(&a, s->transaction_start_time_ms) : "None",
        started ? fmt_i64(&a, now_ms() - s->transaction_start_time_ms) : "None",
        parts,
    };
    rows_t rows;
    rows_init(&rows, cols, 9);
    rows_add(&rows, cells);
    rows_print(&rows, o->style);
    rows_free(&rows);
    sm_arena_free(&a);
    return CLI_EXIT_OK;
}

/* ------------------------------------------------------------ describe-producers */

typedef sm_describe_producers_response_producer_state_t pstate_t;

/* DescribeProducers of some partitions of one topic at broker node:
 * the partition answers (in a), *n of them; NULL with a message. */
static const sm_describe_producers_response_partition_response_t *
describe_producers(const char *who, const sm_metadata_response_t *md, int32_t node,
                   const char *topic, const int32_t *parts, int32_t nparts, sm_arena_t *a,
                   int32_t *n)
{
    cli_wire_t w;
    if (!connect_node(md, node, a, &w))
        return NULL;
    int16_t v;
    void *rv;
    sm_describe_producers_request_t req;
    sm_describe_producers_request_init(&req);
    sm_describe_producers_request_topic_request_t tr;
    sm_describe_producers_request_topic_request_init(&tr);
    tr.name = sm_str(topic);
    tr.partition_indexes = (int32_t *)parts;
    tr.partition_indexes_count = nparts;
    req.topics = &tr;
    req.topics_count = 1;
    bool ok = cli_wire_version(&w, SM_API_DESCRIBE_PRODUCERS, 0, 0, &v) &&
              cli_wire_call(&w, SM_API_DESCRIBE_PRODUCERS, v, &req, a, &rv);
    cli_wire_close(&w);
    if (!ok)
        return NULL;
    const sm_describe_producers_response_t *r = rv;
    if (r->topics_count != 1) {
        cli_fail("%s: DescribeProducers answered %d topics", who, r->topics_count);
        return NULL;
    }
    *n = r->topics[0].partitions_count;
    return r->topics[0].partitions;
}

/* The producers of topic-partition at its leader (or broker_id >= 0):
 * *out and *n, in a. false with a message. */
static bool partition_producers(const char *who, const char *topic, int32_t partition,
                                int32_t broker_id, sm_arena_t *a, const pstate_t **out,
                                int32_t *n)
{
    const sm_metadata_response_t *md = metadata(topic, a);
    if (!md)
        return false;
    int32_t node = broker_id >= 0 ? broker_id : md_leader(md, topic, partition);
    if (node < 0)
        return false;
    int32_t np = 0;
    const sm_describe_producers_response_partition_response_t *pr =
        describe_producers(who, md, node, topic, &partition, 1, a, &np);
    if (!pr)
        return false;
    if (np != 1 || pr[0].error_code) {
        cli_fail("%s: failed to describe producers for partition %s-%d on %s %d: %s", who,
                 topic, partition, broker_id >= 0 ? "broker" : "leader", node,
                 np == 1 ? cli_kafka_err_name(pr[0].error_code) : "no answer");
        return false;
    }
    *out = pr[0].active_producers;
    *n = pr[0].active_producers_count;
    return true;
}

int cli_txn_describe_producers(const cli_txn_opts_t *o)
{
    static const col_t cols[] = {
        {"ProducerId", "PRODUCER-ID", "producer_id", true},
        {"ProducerEpoch", "EPOCH", "producer_epoch", true},
        {"LatestCoordinatorEpoch", "COORDINATOR-EPOCH", "coordinator_epoch", true},
        {"LastSequence", "LAST-SEQUENCE", "last_sequence", true},
        {"LastTimestamp", "LAST-TIMESTAMP", "last_timestamp", true},
        {"CurrentTransactionStartOffset", "TXN-START-OFFSET", "current_txn_start_offset", true},
    };
    sm_arena_t a;
    sm_arena_init(&a);
    const pstate_t *ps;
    int32_t n;
    if (!partition_producers(o->who, o->topic, o->partition, o->broker_id, &a, &ps, &n)) {
        sm_arena_free(&a);
        return CLI_EXIT_FAIL;
    }
    rows_t rows;
    rows_init(&rows, cols, 6);
    for (int32_t i = 0; i < n; i++) {
        const char *cells[6] = {
            fmt_i64(&a, ps[i].producer_id),
            fmt_i64(&a, ps[i].producer_epoch),
            fmt_i64(&a, ps[i].coordinator_epoch),
            fmt_i64(&a, ps[i].last_sequence),
            fmt_i64(&a, ps[i].last_timestamp),
            ps[i].current_txn_start_offset >= 0 ? fmt_i64(&a, ps[i].current_txn_start_offset)
                                                : "None",
        };
        rows_add(&rows, cells);
    }
    rows_print(&rows, o->style);
    rows_free(&rows);
    sm_arena_free(&a);
    return CLI_EXIT_OK;
}

/* ------------------------------------------------------------ abort */

int cli_txn_abort(const cli_txn_opts_t *o)
{
    sm_arena_t a;
    sm_arena_init(&a);
    int rc = CLI_EXIT_FAIL;
    int64_t pid = o->producer_id;
    int32_t epoch = o->producer_epoch, cepoch = o->coordinator_epoch;
    if (o->start_offset >= 0) {
        const pstate_t *ps;
        int32_t n;
        if (!partition_producers(o->who, o->topic, o->partition, -1, &a, &ps, &n))
            goto out;
        int32_t i = 0;
        while (i < n && ps[i].current_txn_start_offset != o->start_offset)
            i++;
        if (i == n) {
            cli_fail("%s: could not find any open transactions starting at offset %" PRId64
                     " on partition %s-%d",
                     o->who, o->start_offset, o->topic, o->partition);
            goto out;
        }
        pid = ps[i].producer_id;
        epoch = ps[i].producer_epoch;
        cepoch = ps[i].coordinator_epoch;
    }
    /* A transaction begun by a new producer id that hung before its first
     * marker has no coordinator epoch (-1): 0 is at most any leader epoch
     * (Kafka's tool does the same). */
    if (cepoch < 0)
        cepoch = 0;
    const sm_metadata_response_t *md = metadata(o->topic, &a);
    if (!md)
        goto out;
    int32_t leader = md_leader(md, o->topic, o->partition);
    if (leader < 0)
        goto out;
    cli_wire_t w;
    if (!connect_node(md, leader, &a, &w))
        goto out;
    int16_t v;
    void *rv;
    sm_write_txn_markers_request_t req;
    sm_write_txn_markers_request_init(&req);
    sm_write_txn_markers_request_writable_txn_marker_t mk;
    sm_write_txn_markers_request_writable_txn_marker_init(&mk);
    sm_write_txn_markers_request_writable_txn_marker_topic_t mt;
    sm_write_txn_markers_request_writable_txn_marker_topic_init(&mt);
    int32_t part = o->partition;
    mt.name = sm_str(o->topic);
    mt.partition_indexes = &part;
    mt.partition_indexes_count = 1;
    mk.producer_id = pid;
    mk.producer_epoch = (int16_t)epoch;
    mk.transaction_result = false; /* ABORT */
    mk.topics = &mt;
    mk.topics_count = 1;
    mk.coordinator_epoch = cepoch;
    req.markers = &mk;
    req.markers_count = 1;
    bool ok = cli_wire_version(&w, SM_API_WRITE_TXN_MARKERS, 0, 1, &v) &&
              cli_wire_call(&w, SM_API_WRITE_TXN_MARKERS, v, &req, &a, &rv);
    cli_wire_close(&w);
    if (!ok)
        goto out;
    const sm_write_txn_markers_response_t *r = rv;
    int16_t err = -1;
    if (r->markers_count == 1 && r->markers[0].topics_count == 1 &&
        r->markers[0].topics[0].partitions_count == 1)
        err = r->markers[0].topics[0].partitions[0].error_code;
    if (err) {
        cli_fail("%s: failed to abort transaction of producer %" PRId64 " (epoch %d, "
                 "coordinator epoch %d) on %s-%d: %s",
                 o->who, pid, epoch, cepoch, o->topic, o->partition,
                 err < 0 ? "malformed answer" : cli_kafka_err_name(err));
        goto out;
    }
    if (o->style == CLI_TXN_SAMSA)
        printf("Aborted the transaction of producer %" PRId64 " (epoch %d) on %s-%d\n", pid,
               epoch, o->topic, o->partition);
    rc = CLI_EXIT_OK;
out:
    sm_arena_free(&a);
    return rc;
}

/* ------------------------------------------------------------ find-hanging */

typedef struct open_txn {
    const char *topic;
    int32_t partition;
    const pstate_t *ps;
    bool hanging;
} open_txn_t;

typedef struct open_txns {
    open_txn_t *v;
    int n, cap;
} open_txns_t;

static void open_add(open_txns_t *l, const char *topic, int32_t partition, const pstate_t *ps)
{
    if (l->n == l->cap) {
        l->cap = l->cap ? l->cap * 2 : 16;
        l->v = sm_xrealloc(l->v, sizeof *l->v * (size_t)l->cap);
    }
    l->v[l->n++] = (open_txn_t){topic, partition, ps, true};
}

/* Open transactions older than the maximum timeout on the partitions of
 * topic tm that o selects, read from their leaders (or o->broker_id). */
static bool collect_open(const cli_txn_opts_t *o, const sm_metadata_response_t *md,
                         const sm_metadata_response_metadata_response_topic_t *tm, int64_t now,
                         sm_arena_t *a, open_txns_t *out)
{
    char *topic = sm_arena_strndup(a, tm->name.ptr ? tm->name.ptr : "",
                                   (size_t)SM_MAX(tm->name.len, 0));
    if (o->topic && strcmp(o->topic, topic) != 0)
        return true;
    /* The partitions per broker asked: --broker-id's replicas, else leaders. */
    for (int32_t b = 0; b < md->brokers_count; b++) {
        int32_t node = md->brokers[b].node_id;
        if (o->broker_id >= 0 && node != o->broker_id)
            continue;
        int32_t *parts = SM_ARENA_NEW(a, int32_t, tm->partitions_count + 1);
        int32_t np = 0;
        for (int32_t p = 0; p < tm->partitions_count; p++) {
            const sm_metadata_response_metadata_response_partition_t *pm = &tm->partitions[p];
            if (o->partition >= 0 && pm->partition_index != o->partition)
                continue;
            bool pick = pm->leader_id == node;
            if (o->broker_id >= 0) {
                pick = false;
                for (int32_t r = 0; r < pm->replica_nodes_count; r++)
                    pick |= pm->replica_nodes[r] == node;
            }
            if (pick)
                parts[np++] = pm->partition_index;
        }
        if (np == 0)
            continue;
        int32_t n = 0;
        const sm_describe_producers_response_partition_response_t *pr =
            describe_producers(o->who, md, node, topic, parts, np, a, &n);
        if (!pr)
            return false;
        for (int32_t k = 0; k < n; k++) {
            if (pr[k].error_code) {
                cli_fail("%s: failed to describe producers for %s-%d on broker %d: %s", o->who,
                         topic, pr[k].partition_index, node,
                         cli_kafka_err_name(pr[k].error_code));
                return false;
            }
            for (int32_t i = 0; i < pr[k].active_producers_count; i++) {
                const pstate_t *ps = &pr[k].active_producers[i];
                if (ps->current_txn_start_offset >= 0 &&
                    now - ps->last_timestamp > o->max_timeout_ms)
                    open_add(out, topic, pr[k].partition_index, ps);
            }
        }
    }
    return true;
}

/* Transactional ids of the producer ids of l, from every broker's
 * ListTransactions: ids[i] for l->v[i], NULL when no coordinator knows it. */
static bool lookup_ids(const cli_txn_opts_t *o, const sm_metadata_response_t *md,
                       const open_txns_t *l, sm_arena_t *a, const char **ids)
{
    int64_t *pids = SM_ARENA_NEW(a, int64_t, l->n);
    for (int i = 0; i < l->n; i++) {
        pids[i] = l->v[i].ps->producer_id;
        ids[i] = NULL;
    }
    sm_list_transactions_request_t req;
    sm_list_transactions_request_init(&req);
    req.producer_id_filters = pids;
    req.producer_id_filters_count = l->n;
    req.state_filters_count = 0;
    for (int32_t b = 0; b < md->brokers_count; b++) {
        cli_wire_t w;
        int16_t v;
        void *rv;
        if (!connect_node(md, md->brokers[b].node_id, a, &w))
            return false;
        bool ok = cli_wire_version(&w, SM_API_LIST_TRANSACTIONS, 0, 1, &v) &&
                  cli_wire_call(&w, SM_API_LIST_TRANSACTIONS, v, &req, a, &rv);
        cli_wire_close(&w);
        if (!ok)
            return false;
        const sm_list_transactions_response_t *r = rv;
        if (r->error_code) {
            cli_fail("%s: failed to list transactions on broker %d: %s", o->who,
                     md->brokers[b].node_id, cli_kafka_err_name(r->error_code));
            return false;
        }
        for (int32_t k = 0; k < r->transaction_states_count; k++)
            for (int i = 0; i < l->n; i++)
                if (pids[i] == r->transaction_states[k].producer_id)
                    ids[i] = sm_arena_strndup(
                        a, r->transaction_states[k].transactional_id.ptr
                               ? r->transaction_states[k].transactional_id.ptr
                               : "",
                        (size_t)SM_MAX(r->transaction_states[k].transactional_id.len, 0));
    }
    return true;
}

/* Is topic-partition among the partitions a description still expects a
 * marker on? */
static bool desc_has(const sm_describe_transactions_response_transaction_state_t *s,
                     const char *topic, int32_t partition)
{
    for (int32_t t = 0; t < s->topics_count; t++) {
        if (s->topics[t].topic.len != (int32_t)strlen(topic) ||
            memcmp(s->topics[t].topic.ptr, topic, strlen(topic)) != 0)
            continue;
        for (int32_t k = 0; k < s->topics[t].partitions_count; k++)
            if (s->topics[t].partitions[k] == partition)
                return true;
    }
    return false;
}

int cli_txn_find_hanging(const cli_txn_opts_t *o)
{
    static const col_t cols[] = {
        {"Topic", "TOPIC", "topic", false},
        {"Partition", "PARTITION", "partition", true},
        {"ProducerId", "PRODUCER-ID", "producer_id", true},
        {"ProducerEpoch", "EPOCH", "producer_epoch", true},
        {"CoordinatorEpoch", "COORDINATOR-EPOCH", "coordinator_epoch", true},
        {"StartOffset", "START-OFFSET", "start_offset", true},
        {"LastTimestamp", "LAST-TIMESTAMP", "last_timestamp", true},
        {"Duration(min)", "DURATION-MIN", "duration_min", true},
    };
    sm_arena_t a;
    sm_arena_init(&a);
    open_txns_t l = {0};
    rows_t rows;
    rows_init(&rows, cols, 8);
    int rc = CLI_EXIT_FAIL;
    const sm_metadata_response_t *md = metadata(o->topic, &a);
    if (!md)
        goto out;
    int64_t now = now_ms();
    for (int32_t t = 0; t < md->topics_count; t++) {
        const sm_metadata_response_metadata_response_topic_t *tm = &md->topics[t];
        if (tm->error_code) {
            if (o->topic) {
                cli_fail("%s: topic %s: %s", o->who, o->topic,
                         cli_kafka_err_name(tm->error_code));
                goto out;
            }
            continue;
        }
        if (!collect_open(o, md, tm, now, &a, &l))
            goto out;
    }
    if (l.n > 0) {
        const char **ids = SM_ARENA_NEW(&a, const char *, l.n);
        if (!lookup_ids(o, md, &l, &a, ids))
            goto out;
        for (int i = 0; i < l.n; i++) {
            if (!ids[i])
                continue; /* no coordinator knows the producer: hanging */
            int32_t coord;
            bool not_found;
            const sm_describe_transactions_response_transaction_state_t *s =
                describe_one(o->who, ids[i], &a, &coord, &not_found);
            if (!s && !not_found)
                goto out;
            /* Still hanging unless its coordinator will write this marker:
             * the partition is in its ongoing (or preparing) transaction. */
            l.v[i].hanging = !s || !desc_has(s, l.v[i].topic, l.v[i].partition);
        }
    }
    for (int i = 0; i < l.n; i++) {
        if (!l.v[i].hanging)
            continue;
        const pstate_t *ps = l.v[i].ps;
        const char *cells[8] = {
            l.v[i].topic,
            fmt_i64(&a, l.v[i].partition),
            fmt_i64(&a, ps->producer_id),
            fmt_i64(&a, ps->producer_epoch),
            fmt_i64(&a, ps->coordinator_epoch),
            fmt_i64(&a, ps->current_txn_start_offset),
            fmt_i64(&a, ps->last_timestamp),
            fmt_i64(&a, (now - ps->last_timestamp) / 60000),
        };
        rows_add(&rows, cells);
    }
    rows_print(&rows, o->style);
    rc = CLI_EXIT_OK;
out:
    free(l.v);
    rows_free(&rows);
    sm_arena_free(&a);
    return rc;
}
