/*
 * perf.c - `samsa perf produce|consume|e2e|mock-cluster`: the benchmark
 * client, built on librdkafka so Samsa and other brokers (or librdkafka's
 * mock cluster) are measured with the same client.
 *
 *  produce  COUNT messages of SIZE bytes as fast as allowed (--rate), one
 *           shared payload buffer handed to librdkafka without a copy;
 *           latency = produce() call to delivery report, of every message
 *           when paced (--rate) and of every 16th when not (the clock
 *           reads cost the client a quarter of its CPU at full speed).
 *           --idempotent: librdkafka's idempotent producer; --txn-size N:
 *           a transactional producer committing every N messages (the
 *           commit waits for their delivery, so one transaction is in
 *           flight at a time), reporting transactions per second too.
 *  consume  counts messages and bytes from the beginning of every
 *           partition, in batches from the consumer queue, until COUNT or
 *           the end of all partitions (--isolation: read_committed, the
 *           librdkafka default, or read_uncommitted).
 *  e2e      produces and consumes in one process, one thread: each payload
 *           carries its send time (monotonic clock, so producer and
 *           consumer share it); latency = consumer receipt - send time.
 *  mock-cluster  starts librdkafka's in-memory mock cluster in this
 *           process, prints its bootstrap address and serves until
 *           SIGINT/SIGTERM: the baseline to compare the broker against.
 * A progress line goes to stderr every second and a summary (msgs/s, MB/s,
 * latency p50/p99/p99.9/max) to stdout at the end (JSON with --format
 * json). Main thread only; callbacks run inside rd_kafka_poll here.
 */
#include "cli.h"
#include "perf_stats.h"

#include <librdkafka/rdkafka_mock.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define PERF_MAGIC "SMPERF01"
#define PERF_HDR 16 /* magic(8) + send time ns(8) in e2e payloads */

static void perf_usage(FILE *f)
{
    fprintf(f,
            "usage: samsa perf <produce|consume|e2e> TOPIC [options]\n"
            "       samsa perf mock-cluster [--brokers N] [--topic T --partitions P]\n"
            "  -n, --count N          messages (produce default 1000000, e2e 10000;\n"
            "                         consume: until the end of every partition)\n"
            "  -s, --size BYTES       message size (default 100)\n"
            "      --rate N           messages per second, 0 = unlimited (default;\n"
            "                         e2e default 2000)\n"
            "      --acks ACKS        0, 1 or all (default all)\n"
            "      --partitions N     create the topic with N partitions if missing\n"
            "      --linger DURATION  producer linger (default 5ms; e2e 0)\n"
            "      --batch-size BYTES producer batch size (default 1MB)\n"
            "      --queue-size N     producer queue in messages (default 1000000)\n"
            "  -z, --compression C    none, gzip, snappy, lz4, zstd\n"
            "  -g, --group GROUP      consume: as a group member instead of assigning\n"
            "      --idempotent       produce, e2e: idempotent producer (acks=all)\n"
            "      --txn-size N       produce: transactions of N messages each (implies\n"
            "                         --idempotent); also reports transactions/s\n"
            "      --transactional-id ID  with --txn-size (default samsa-perf-PID)\n"
            "      --isolation LEVEL  consume, e2e: read_committed (librdkafka's default)\n"
            "                         or read_uncommitted\n"
            "      --keys N           produce: keyed messages, keys key-0 .. key-(N-1)\n"
            "                         in turn (for compacted topics)\n"
            "  Progress each second on stderr; summary on stdout (--format json).\n"
            "  Unpaced produce times every 16th message's delivery (latency count).\n");
}

typedef struct perf_opts {
    const char *topic, *acks, *codec, *group;
    const char *txn_id;    /* --transactional-id; NULL: samsa-perf-PID */
    const char *isolation; /* --isolation; NULL: librdkafka's default */
    int64_t count, size, rate, linger_ms, batch_size, queue_size;
    int64_t txn_size;      /* messages per transaction; 0: not transactional */
    int64_t keys;          /* produce --keys: keys "key-<i mod keys>"; 0: no key */
    int32_t partitions, mock_brokers;
    bool count_set, rate_set, linger_set, acks_set, idempotent;
} perf_opts_t;

/* option codes without a short form */
enum { OPT_IDEMPOTENT = 300, OPT_TXN_SIZE, OPT_TXN_ID, OPT_ISOLATION, OPT_KEYS };

static volatile sig_atomic_t perf_stop;
static void on_signal(int sig) { perf_stop = 1; }

static int64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

static int parse_opts(const char *cmd, int argc, char **argv, perf_opts_t *o)
{
    static const cli_opt_t opts[] = {
        {"topic", 1, 't'},      {"count", 1, 'n'},      {"size", 1, 's'},
        {"rate", 1, 'r'},       {"acks", 1, 'a'},       {"partitions", 1, 'p'},
        {"linger", 1, 'l'},     {"batch-size", 1, 'B'}, {"queue-size", 1, 'Q'},
        {"compression", 1, 'z'}, {"group", 1, 'g'},     {"brokers", 1, 'N'},
        {"idempotent", 0, OPT_IDEMPOTENT}, {"txn-size", 1, OPT_TXN_SIZE},
        {"transactional-id", 1, OPT_TXN_ID}, {"isolation", 1, OPT_ISOLATION},
        {"keys", 1, OPT_KEYS},  {0}};
    cli_args_t a;
    cli_args_init(&a, cmd, argc, argv);
    int c;
    while ((c = cli_getopt(&a, opts)) != -1) {
        switch (c) {
        case 0:
        case 't':
            if (o->topic)
                return cli_usage_fail(cmd, "one topic only");
            o->topic = a.arg;
            break;
        case 'n':
            if (!cli_parse_i64(a.arg, &o->count) || o->count < 1)
                return cli_usage_fail(cmd, "bad --count '%s'", a.arg);
            o->count_set = true;
            break;
        case 's':
            if (!cli_parse_size(a.arg, &o->size) || o->size < 0 || o->size > 100 * 1024 * 1024)
                return cli_usage_fail(cmd, "bad --size '%s'", a.arg);
            break;
        case 'r':
            if (!cli_parse_i64(a.arg, &o->rate) || o->rate < 0)
                return cli_usage_fail(cmd, "bad --rate '%s'", a.arg);
            o->rate_set = true;
            break;
        case 'a':
            if (strcmp(a.arg, "0") && strcmp(a.arg, "1") && strcmp(a.arg, "all") &&
                strcmp(a.arg, "-1"))
                return cli_usage_fail(cmd, "bad --acks '%s' (0, 1 or all)", a.arg);
            o->acks = a.arg;
            o->acks_set = true;
            break;
        case OPT_KEYS:
            if (!cli_parse_i64(a.arg, &o->keys) || o->keys < 1)
                return cli_usage_fail(cmd, "bad --keys '%s'", a.arg);
            break;
        case 'p':
            if (!cli_parse_i32(a.arg, 1, 100000, &o->partitions))
                return cli_usage_fail(cmd, "bad --partitions '%s'", a.arg);
            break;
        case 'l':
            if (!cli_parse_duration_ms(a.arg, &o->linger_ms) || o->linger_ms < 0)
                return cli_usage_fail(cmd, "bad --linger '%s'", a.arg);
            o->linger_set = true;
            break;
        case 'B':
            if (!cli_parse_size(a.arg, &o->batch_size) || o->batch_size < 1)
                return cli_usage_fail(cmd, "bad --batch-size '%s'", a.arg);
            break;
        case 'Q':
            if (!cli_parse_i64(a.arg, &o->queue_size) || o->queue_size < 1)
                return cli_usage_fail(cmd, "bad --queue-size '%s'", a.arg);
            break;
        case 'z': o->codec = a.arg; break;
        case 'g': o->group = a.arg; break;
        case 'N':
            if (!cli_parse_i32(a.arg, 1, 64, &o->mock_brokers))
                return cli_usage_fail(cmd, "bad --brokers '%s'", a.arg);
            break;
        case OPT_IDEMPOTENT: o->idempotent = true; break;
        case OPT_TXN_SIZE:
            if (!cli_parse_i64(a.arg, &o->txn_size) || o->txn_size < 1)
                return cli_usage_fail(cmd, "bad --txn-size '%s'", a.arg);
            break;
        case OPT_TXN_ID: o->txn_id = a.arg; break;
        case OPT_ISOLATION:
            if (strcmp(a.arg, "read_committed") && strcmp(a.arg, "read_uncommitted"))
                return cli_usage_fail(cmd, "bad --isolation '%s' (read_committed or"
                                           " read_uncommitted)", a.arg);
            o->isolation = a.arg;
            break;
        case 'h': perf_usage(stdout); return 0;
        default: return CLI_EXIT_USAGE;
        }
    }
    return -1;
}

/* ------------------------------------------------------------ topic */

/* Make sure the topic exists (creating it with o->partitions, or the broker
 * default), and return its partition count. */
static int32_t ensure_topic(cli_rk_t *k, const perf_opts_t *o, bool create)
{
    const struct rd_kafka_metadata *md;
    if (!cli_rk_metadata(k, NULL, &md))
        return -1;
    const rd_kafka_metadata_topic_t *t = cli_md_topic(md, o->topic);
    int32_t n = t && !t->err ? t->partition_cnt : -1;
    rd_kafka_metadata_destroy(md);
    if (n > 0)
        return n;
    if (!create) {
        cli_fail("topic '%s' does not exist", o->topic);
        return -1;
    }
    char errstr[256];
    rd_kafka_NewTopic_t *nt =
        rd_kafka_NewTopic_new(o->topic, o->partitions > 0 ? o->partitions : -1, -1, errstr,
                              sizeof errstr);
    if (!nt) {
        cli_fail("topic '%s': %s", o->topic, errstr);
        return -1;
    }
    rd_kafka_queue_t *q = rd_kafka_queue_new(k->rk);
    rd_kafka_AdminOptions_t *ao = cli_rk_admin_opts(k, RD_KAFKA_ADMIN_OP_CREATETOPICS);
    rd_kafka_CreateTopics(k->rk, &nt, 1, ao, q);
    rd_kafka_event_t *ev = cli_rk_wait(k, q, "create topic");
    bool ok = false;
    char why[512] = "";
    if (ev && !rd_kafka_event_error(ev)) {
        size_t cnt;
        const rd_kafka_topic_result_t **r =
            rd_kafka_CreateTopics_result_topics(rd_kafka_event_CreateTopics_result(ev), &cnt);
        rd_kafka_resp_err_t e = cnt ? rd_kafka_topic_result_error(r[0]) : RD_KAFKA_RESP_ERR__FAIL;
        ok = !e || e == RD_KAFKA_RESP_ERR_TOPIC_ALREADY_EXISTS;
        if (!ok)
            snprintf(why, sizeof why, "%s", rd_kafka_err2str(e));
    } else if (ev) {
        snprintf(why, sizeof why, "%s", rd_kafka_event_error_string(ev));
    }
    bool answered = ev != NULL; /* if not, cli_rk_wait said why */
    if (ev)
        rd_kafka_event_destroy(ev);
    rd_kafka_AdminOptions_destroy(ao);
    rd_kafka_queue_destroy(q);
    rd_kafka_NewTopic_destroy(nt);
    if (!answered)
        return -1;
    if (!ok) {
        /* Some clusters (librdkafka's mock) cannot CreateTopics but create
         * topics on a Metadata request that names them: try that. */
        rd_kafka_topic_t *rkt = rd_kafka_topic_new(k->rk, o->topic, NULL);
        const struct rd_kafka_metadata *tmd = NULL;
        if (rd_kafka_metadata(k->rk, 0, rkt, &tmd, cli_g.timeout_ms) == RD_KAFKA_RESP_ERR_NO_ERROR) {
            t = cli_md_topic(tmd, o->topic);
            ok = t && !t->err && t->partition_cnt > 0;
            rd_kafka_metadata_destroy(tmd);
        }
        rd_kafka_topic_destroy(rkt);
        if (!ok) {
            cli_fail("create topic '%s': %s", o->topic, why);
            return -1;
        }
        fprintf(stderr, "samsa: topic %s auto-created by a metadata request\n", o->topic);
    }
    /* Wait (bounded) until every partition has a leader. */
    int64_t deadline = sm_now_mono_ms() + cli_g.timeout_ms;
    while (sm_now_mono_ms() < deadline) {
        if (!cli_rk_metadata(k, NULL, &md))
            return -1;
        t = cli_md_topic(md, o->topic);
        bool ready = t && !t->err && t->partition_cnt > 0;
        for (int i = 0; ready && i < t->partition_cnt; i++)
            ready = t->partitions[i].leader >= 0;
        n = ready ? t->partition_cnt : -1;
        rd_kafka_metadata_destroy(md);
        if (n > 0) {
            fprintf(stderr, "samsa: created topic %s with %d partitions\n", o->topic, n);
            return n;
        }
        usleep(100000);
    }
    cli_fail("topic '%s' created but has no leaders after %d ms", o->topic, cli_g.timeout_ms);
    return -1;
}

/* ------------------------------------------------------------ produce */

#define LAT_SAMPLE 16 /* unpaced produce: latency of one message in this many */

typedef struct prod_ctx {
    perf_stats_t st;
    perf_hist_t lat;
    char first_err[256];
    bool e2e;
} prod_ctx_t;

/* A producer handle whose opaque reaches the prod_ctx: the cli_rk_t comes
 * first, so the opaque librdkafka hands back (&k) is the handle too. */
typedef struct prod_handle {
    cli_rk_t k;
    prod_ctx_t *ctx;
} prod_handle_t;

static void perf_dr_cb(rd_kafka_t *rk, const rd_kafka_message_t *m, void *opaque)
{
    /* opaque is &prod_handle_t.k, its first member (see make_producer) */
    prod_ctx_t *p = opaque ? ((struct prod_handle *)opaque)->ctx : NULL;
    if (!p)
        return;
    if (m->err) {
        p->st.errors++;
        if (!p->first_err[0])
            snprintf(p->first_err, sizeof p->first_err, "%s", rd_kafka_err2str(m->err));
        return;
    }
    p->st.msgs++;
    p->st.bytes += (int64_t)m->len;
    if (!p->e2e && m->_private) {
        int64_t sent = (int64_t)(intptr_t)m->_private;
        perf_hist_record(&p->lat, (uint64_t)((now_ns() - sent) / 1000));
    }
}

static void prod_hook(rd_kafka_conf_t *conf, void *arg)
{
    rd_kafka_conf_set_dr_msg_cb(conf, perf_dr_cb);
}

static bool make_producer(prod_handle_t *h, const perf_opts_t *o, prod_ctx_t *ctx)
{
    char linger[32], batch[32], queue[32], kbytes[32], txn_id[64];
    snprintf(linger, sizeof linger, "%lld", (long long)o->linger_ms);
    snprintf(batch, sizeof batch, "%lld", (long long)o->batch_size);
    snprintf(queue, sizeof queue, "%lld", (long long)o->queue_size);
    /* queue.buffering.max.kbytes must hold the message queue; cap at 2 GB */
    int64_t kb = SM_MIN(SM_MAX(o->queue_size * (o->size + 64) / 1024, 65536), 2097151);
    snprintf(kbytes, sizeof kbytes, "%lld", (long long)kb);
    const char *extra[] = {"acks", o->acks,
                           "linger.ms", linger,
                           "batch.size", batch,
                           "batch.num.messages", "1000000",
                           "queue.buffering.max.messages", queue,
                           "queue.buffering.max.kbytes", kbytes,
                           "compression.codec", o->codec,
                           "message.timeout.ms", "60000",
                           NULL, NULL, NULL, NULL, NULL};
    /* idempotence and transactions: the two optional pairs at the end */
    int n = 0;
    while (extra[n])
        n += 2;
    if (o->idempotent || o->txn_size > 0) {
        extra[n++] = "enable.idempotence";
        extra[n++] = "true";
    }
    if (o->txn_size > 0) {
        if (o->txn_id)
            snprintf(txn_id, sizeof txn_id, "%s", o->txn_id);
        else
            snprintf(txn_id, sizeof txn_id, "samsa-perf-%d", (int)getpid());
        extra[n++] = "transactional.id";
        extra[n++] = txn_id;
    }
    h->ctx = ctx;
    if (!cli_rk_new(&h->k, RD_KAFKA_PRODUCER, extra, prod_hook, NULL))
        return false;
    h->ctx = ctx; /* cli_rk_new zeroed only h->k */
    return true;
}

/* Sleep until the rate schedule allows message i, serving callbacks. */
static void pace(rd_kafka_t *rk, const perf_opts_t *o, int64_t start_ns, int64_t i)
{
    if (o->rate <= 0)
        return;
    int64_t due = start_ns + (int64_t)((double)i * 1e9 / (double)o->rate);
    for (;;) {
        int64_t now = now_ns();
        if (now >= due)
            return;
        int64_t wait_ms = (due - now) / 1000000;
        if (wait_ms >= 1) {
            rd_kafka_poll(rk, (int)SM_MIN(wait_ms, 100));
        } else {
            rd_kafka_poll(rk, 0);
            struct timespec ts = {0, (long)SM_MIN(due - now, 200000)};
            nanosleep(&ts, NULL);
        }
    }
}

/* librdkafka's transactional calls return an error object; say what
 * failed, abort the transaction if the error requires it, and return false.
 * A retriable error is retried (bounded) by the callers. */
static bool txn_failed(cli_rk_t *k, const char *what, rd_kafka_error_t *e)
{
    cli_fail("%s: %s%s", what, rd_kafka_error_string(e),
             rd_kafka_error_is_fatal(e) ? " (fatal)" : "");
    if (rd_kafka_error_txn_requires_abort(e)) {
        rd_kafka_error_t *a = rd_kafka_abort_transaction(k->rk, cli_g.timeout_ms);
        if (a) {
            cli_warn("abort transaction: %s", rd_kafka_error_string(a));
            rd_kafka_error_destroy(a);
        }
    }
    rd_kafka_error_destroy(e);
    return false;
}

/* Commit the open transaction: waits until its messages are delivered
 * (serving their delivery reports) and the coordinator answered EndTxn. */
static bool txn_commit(cli_rk_t *k, perf_stats_t *st)
{
    for (int attempt = 0;; attempt++) {
        rd_kafka_error_t *e = rd_kafka_commit_transaction(k->rk, cli_g.timeout_ms);
        if (!e) {
            st->txns++;
            return true;
        }
        if (!rd_kafka_error_is_retriable(e) || attempt >= 10)
            return txn_failed(k, "commit transaction", e);
        rd_kafka_error_destroy(e);
    }
}

static bool txn_begin(cli_rk_t *k)
{
    rd_kafka_error_t *e = rd_kafka_begin_transaction(k->rk);
    return e ? txn_failed(k, "begin transaction", e) : true;
}

static int perf_produce(perf_opts_t *o)
{
    prod_ctx_t *ctx = calloc(1, sizeof *ctx);
    prod_handle_t h;
    memset(&h, 0, sizeof h);
    int rc = CLI_EXIT_OK;
    if (!make_producer(&h, o, ctx)) {
        free(ctx);
        return CLI_EXIT_FAIL;
    }
    if (ensure_topic(&h.k, o, true) < 0) {
        rc = CLI_EXIT_FAIL;
        goto out;
    }
    bool txn = o->txn_size > 0;
    if (txn) { /* before the clock starts: finds the coordinator, gets a producer id */
        rd_kafka_error_t *e = rd_kafka_init_transactions(h.k.rk, cli_g.timeout_ms);
        if (e) {
            txn_failed(&h.k, "init transactions", e);
            rc = CLI_EXIT_FAIL;
            goto out;
        }
    }
    rd_kafka_topic_t *rkt = rd_kafka_topic_new(h.k.rk, o->topic, NULL);
    char *payload = sm_xmalloc((size_t)o->size + 1);
    srand((unsigned)time(NULL));
    for (int64_t i = 0; i < o->size; i++)
        payload[i] = (char)('a' + rand() % 26); /* compressible like text, not all zeroes */
    perf_stats_init(&ctx->st, "produce", &ctx->lat);
    ctx->st.txn = txn;
    signal(SIGINT, on_signal);
    signal(SIGTERM, on_signal);
    int64_t start = now_ns(), sent = 0, in_txn = 0;
    for (int64_t i = 0; i < o->count && !perf_stop; i++) {
        pace(h.k.rk, o, start, i);
        if (txn && in_txn == 0 && !txn_begin(&h.k)) {
            rc = CLI_EXIT_FAIL;
            goto drain;
        }
        /* Unpaced, every LAT_SAMPLE-th message carries its send time: two
         * clock reads per message were a quarter of this client's CPU. */
        void *stamp = o->rate > 0 || (i % LAT_SAMPLE) == 0 ? (void *)(intptr_t)now_ns() : NULL;
        char key[32];
        int klen = o->keys > 0 ? snprintf(key, sizeof key, "key-%lld", (long long)(i % o->keys)) : 0;
        while (rd_kafka_produce(rkt, RD_KAFKA_PARTITION_UA, 0, payload, (size_t)o->size,
                                klen ? key : NULL, (size_t)klen, stamp) == -1) {
            rd_kafka_resp_err_t err = rd_kafka_last_error();
            if (err != RD_KAFKA_RESP_ERR__QUEUE_FULL) {
                rc = cli_fail("produce: %s", rd_kafka_err2str(err));
                goto drain;
            }
            rd_kafka_poll(h.k.rk, 1);
            if (h.k.all_down && sm_now_mono_ms() - ctx->st.start_us / 1000 > cli_g.timeout_ms &&
                ctx->st.msgs == 0) {
                rc = cli_fail("cannot reach any broker: %s", h.k.fatal);
                goto drain;
            }
        }
        sent++;
        if (txn && ++in_txn == o->txn_size) {
            in_txn = 0;
            if (!txn_commit(&h.k, &ctx->st)) {
                rc = CLI_EXIT_FAIL;
                goto drain;
            }
            perf_stats_tick(&ctx->st, sm_now_mono_us());
        } else if ((i & 1023) == 0) {
            rd_kafka_poll(h.k.rk, 0);
            perf_stats_tick(&ctx->st, sm_now_mono_us());
        }
    }
    /* the last, shorter transaction (or one a signal interrupted) */
    if (txn && in_txn > 0 && !txn_commit(&h.k, &ctx->st))
        rc = CLI_EXIT_FAIL;
drain:
    while (rd_kafka_outq_len(h.k.rk) > 0 && !perf_stop) {
        rd_kafka_poll(h.k.rk, 50);
        perf_stats_tick(&ctx->st, sm_now_mono_us());
        if (h.k.all_down && ctx->st.msgs + ctx->st.errors < sent &&
            sm_now_mono_ms() - ctx->st.last_us / 1000 > cli_g.timeout_ms) {
            rc = cli_fail("cannot reach any broker: %s", h.k.fatal);
            break;
        }
    }
    {
        char sz[32], acks[16];
        snprintf(sz, sizeof sz, "%lld", (long long)o->size);
        snprintf(acks, sizeof acks, "%s", o->acks);
        const char *extra[] = {"topic", o->topic, "size", sz, "acks", acks,
                               o->idempotent || txn ? "idempotent" : NULL, "true", NULL};
        perf_stats_summary(&ctx->st, sm_now_mono_us(), extra);
    }
    if (ctx->st.errors && rc == CLI_EXIT_OK)
        rc = cli_fail("%lld messages failed: %s", (long long)ctx->st.errors, ctx->first_err);
    free(payload);
    rd_kafka_topic_destroy(rkt);
out:
    cli_rk_destroy(&h.k);
    free(ctx);
    return rc;
}

/* Up to max messages now, or (if none is ready) wait at most wait_ms for
 * one. rd_kafka_consume_batch_queue with a timeout waits to fill the whole
 * batch, which would add up to wait_ms to every latency and to the run. */
static ssize_t take_batch(rd_kafka_t *rk, rd_kafka_queue_t *q, rd_kafka_message_t **msgs,
                          size_t max, int wait_ms)
{
    ssize_t n = rd_kafka_consume_batch_queue(q, 0, msgs, max);
    if (n != 0 || wait_ms == 0)
        return n;
    rd_kafka_message_t *m = rd_kafka_consumer_poll(rk, wait_ms);
    if (!m)
        return 0;
    msgs[0] = m;
    return 1;
}

/* ------------------------------------------------------------ consume */

/* Consumer assigned to every partition at the given offsets (NULL: from
 * the beginning), or subscribed as group member. */
static bool make_consumer(cli_rk_t *k, const perf_opts_t *o, bool eof, int64_t *start_offsets,
                          int32_t nparts)
{
    char gid[64];
    snprintf(gid, sizeof gid, "samsa-perf-%d", (int)getpid());
    const char *extra[] = {"group.id", o->group ? o->group : gid,
                           "enable.auto.commit", o->group ? "true" : "false",
                           "auto.offset.reset", "earliest",
                           "enable.partition.eof", eof ? "true" : "false",
                           "queued.min.messages", "1000000",
                           "fetch.wait.max.ms", "100",
                           o->isolation ? "isolation.level" : NULL, o->isolation,
                           NULL};
    if (!cli_rk_new(k, RD_KAFKA_CONSUMER, extra, NULL, NULL))
        return false;
    rd_kafka_poll_set_consumer(k->rk);
    rd_kafka_topic_partition_list_t *l = rd_kafka_topic_partition_list_new(nparts);
    rd_kafka_resp_err_t err;
    if (o->group) {
        rd_kafka_topic_partition_list_add(l, o->topic, RD_KAFKA_PARTITION_UA);
        err = rd_kafka_subscribe(k->rk, l);
    } else {
        for (int32_t p = 0; p < nparts; p++)
            rd_kafka_topic_partition_list_add(l, o->topic, p)->offset =
                start_offsets ? start_offsets[p] : RD_KAFKA_OFFSET_BEGINNING;
        err = rd_kafka_assign(k->rk, l);
    }
    rd_kafka_topic_partition_list_destroy(l);
    if (err) {
        cli_fail("consumer: %s", rd_kafka_err2str(err));
        return false;
    }
    return true;
}

static int perf_consume(perf_opts_t *o)
{
    cli_rk_t k;
    int rc = CLI_EXIT_OK;
    /* Partition count first, with a plain handle (fails fast if down). */
    cli_rk_t meta;
    if (!cli_rk_new(&meta, RD_KAFKA_PRODUCER, NULL, NULL, NULL))
        return CLI_EXIT_FAIL;
    int32_t nparts = ensure_topic(&meta, o, false);
    cli_rk_destroy(&meta);
    if (nparts < 0)
        return CLI_EXIT_FAIL;
    bool until_end = !o->count_set;
    if (until_end && o->group)
        return cli_usage_fail("perf consume", "with -g give --count");
    if (!make_consumer(&k, o, until_end, NULL, nparts)) {
        cli_rk_destroy(&k);
        return CLI_EXIT_FAIL;
    }
    rd_kafka_queue_t *q = rd_kafka_queue_get_consumer(k.rk);
    perf_stats_t st;
    perf_stats_init(&st, "consume", NULL);
    signal(SIGINT, on_signal);
    signal(SIGTERM, on_signal);
    enum { BATCH = 10000 };
    rd_kafka_message_t **msgs = sm_xmalloc(sizeof *msgs * BATCH);
    bool *eof = calloc((size_t)nparts, sizeof *eof);
    int32_t neof = 0;
    int64_t idle_ms = SM_MAX(cli_g.timeout_ms, 10000), last_msg = sm_now_mono_ms();
    bool started = false;
    while (!perf_stop) {
        ssize_t n = take_batch(k.rk, q, msgs, BATCH, 100);
        int64_t now = sm_now_mono_ms();
        for (ssize_t i = 0; i < n; i++) {
            rd_kafka_message_t *m = msgs[i];
            if (o->count_set && st.msgs >= o->count) {
                rd_kafka_message_destroy(m); /* past COUNT: prefetched, not counted */
                continue;
            }
            if (!m->err) {
                if (!started) {
                    /* time from the first message: excludes connect/join */
                    st.start_us = st.last_us = sm_now_mono_us();
                    started = true;
                }
                st.msgs++;
                st.bytes += (int64_t)m->len;
                if (m->partition >= 0 && m->partition < nparts && eof[m->partition]) {
                    eof[m->partition] = false;
                    neof--;
                }
            } else if (m->err == RD_KAFKA_RESP_ERR__PARTITION_EOF) {
                if (m->partition >= 0 && m->partition < nparts && !eof[m->partition]) {
                    eof[m->partition] = true;
                    neof++;
                }
            } else {
                st.errors++;
                cli_warn("%s", rd_kafka_message_errstr(m));
            }
            rd_kafka_message_destroy(m);
        }
        if (n > 0)
            last_msg = now;
        perf_stats_tick(&st, sm_now_mono_us());
        if ((o->count_set && st.msgs >= o->count) || (until_end && neof == nparts))
            break;
        if (now - last_msg > idle_ms) {
            rc = cli_fail("no messages for %lld ms (consumed %lld)%s%s", (long long)idle_ms,
                          (long long)st.msgs, k.fatal[0] ? ": " : "", k.fatal);
            break;
        }
    }
    const char *extra[] = {"topic", o->topic, NULL};
    perf_stats_summary(&st, sm_now_mono_us(), extra);
    free(msgs);
    free(eof);
    rd_kafka_queue_destroy(q);
    rd_kafka_consumer_close(k.rk);
    cli_rk_destroy(&k);
    return rc;
}

/* ------------------------------------------------------------ e2e */

static int perf_e2e(perf_opts_t *o)
{
    prod_ctx_t *ctx = calloc(1, sizeof *ctx);
    ctx->e2e = true;
    prod_handle_t h;
    memset(&h, 0, sizeof h);
    cli_rk_t ck = {0};
    int rc = CLI_EXIT_OK;
    int64_t *starts = NULL;
    if (o->size < PERF_HDR)
        o->size = PERF_HDR;
    if (!make_producer(&h, o, ctx)) {
        free(ctx);
        return CLI_EXIT_FAIL;
    }
    int32_t nparts = ensure_topic(&h.k, o, true);
    if (nparts < 0) {
        rc = CLI_EXIT_FAIL;
        goto out;
    }
    /* Start exactly at today's end of every partition, so we see only our
     * own messages and none are missed while END is being resolved. */
    starts = calloc((size_t)nparts, sizeof *starts);
    for (int32_t p = 0; p < nparts; p++) {
        int64_t lo, hi;
        if (!cli_rk_watermarks(&h.k, o->topic, p, &lo, &hi)) {
            rc = cli_fail("cannot read the end offset of %s-%d", o->topic, p);
            goto out;
        }
        starts[p] = hi;
    }
    if (!make_consumer(&ck, o, false, starts, nparts)) {
        rc = CLI_EXIT_FAIL;
        goto out;
    }
    rd_kafka_queue_t *q = rd_kafka_queue_get_consumer(ck.rk);
    rd_kafka_topic_t *rkt = rd_kafka_topic_new(h.k.rk, o->topic, NULL);
    char *payload = sm_xmalloc((size_t)o->size);
    for (int64_t i = 0; i < o->size; i++)
        payload[i] = (char)('a' + i % 26);
    memcpy(payload, PERF_MAGIC, 8);
    /* Warm-up: one message through before the clock starts, so connection
     * set-up and the consumer's first fetch are not counted as latency. */
    enum { BATCH = 1000 };
    rd_kafka_message_t *msgs[BATCH];
    int64_t warm_deadline = sm_now_mono_ms() + SM_MAX(cli_g.timeout_ms, 10000);
    bool warm = false;
    memset(payload + 8, 0, 8);
    if (rd_kafka_produce(rkt, RD_KAFKA_PARTITION_UA, RD_KAFKA_MSG_F_COPY, payload,
                         (size_t)o->size, NULL, 0, NULL) == -1) {
        rc = cli_fail("produce: %s", rd_kafka_err2str(rd_kafka_last_error()));
        warm_deadline = 0;
    }
    while (!warm && !perf_stop && sm_now_mono_ms() < warm_deadline) {
        rd_kafka_poll(h.k.rk, 0);
        ssize_t n = take_batch(ck.rk, q, msgs, BATCH, 50);
        for (ssize_t i = 0; i < n; i++) {
            warm = warm || (!msgs[i]->err && msgs[i]->len >= PERF_HDR &&
                            memcmp(msgs[i]->payload, PERF_MAGIC, 8) == 0);
            rd_kafka_message_destroy(msgs[i]);
        }
    }
    if (!warm && !rc)
        rc = cli_fail("warm-up message not received within %d ms%s%s",
                      (int)SM_MAX(cli_g.timeout_ms, 10000), h.k.fatal[0] ? ": " : "",
                      h.k.fatal);
    perf_hist_t *lat = calloc(1, sizeof *lat);
    perf_stats_t st;
    perf_stats_init(&st, "e2e", lat);
    signal(SIGINT, on_signal);
    signal(SIGTERM, on_signal);
    int64_t start = now_ns(), sent = 0, idle_ms = SM_MAX(cli_g.timeout_ms, 10000);
    int64_t last_progress = sm_now_mono_ms();
    while (!rc && st.msgs < o->count && !perf_stop) {
        /* produce what the schedule allows now */
        while (sent < o->count) {
            if (o->rate > 0 && now_ns() < start + (int64_t)((double)sent * 1e9 / (double)o->rate))
                break;
            int64_t t = now_ns();
            memcpy(payload + 8, &t, 8);
            if (rd_kafka_produce(rkt, RD_KAFKA_PARTITION_UA, RD_KAFKA_MSG_F_COPY, payload,
                                 (size_t)o->size, NULL, 0, NULL) == -1)
                break; /* queue full: consume, then retry */
            sent++;
            if (o->rate <= 0 && (sent & 255) == 0)
                break;
        }
        rd_kafka_poll(h.k.rk, 0);
        ssize_t n = take_batch(ck.rk, q, msgs, BATCH, sent < o->count ? 0 : 100);
        int64_t now = now_ns();
        for (ssize_t i = 0; i < n; i++) {
            rd_kafka_message_t *m = msgs[i];
            if (!m->err && m->len >= PERF_HDR && memcmp(m->payload, PERF_MAGIC, 8) == 0) {
                int64_t t;
                memcpy(&t, (const char *)m->payload + 8, 8);
                perf_hist_record(lat, (uint64_t)SM_MAX((now - t) / 1000, 0));
                st.msgs++;
                st.bytes += (int64_t)m->len;
            } else if (m->err && m->err != RD_KAFKA_RESP_ERR__PARTITION_EOF) {
                st.errors++;
                cli_warn("%s", rd_kafka_message_errstr(m));
            }
            rd_kafka_message_destroy(m);
        }
        if (n > 0)
            last_progress = sm_now_mono_ms();
        else if (sm_now_mono_ms() - last_progress > idle_ms) {
            rc = cli_fail("no messages received for %lld ms (sent %lld, received %lld)%s%s",
                          (long long)idle_ms, (long long)sent, (long long)st.msgs,
                          h.k.fatal[0] ? ": " : "", h.k.fatal);
            break;
        }
        if (n == 0 && sent < o->count && o->rate > 0) {
            struct timespec ts = {0, 100000};
            nanosleep(&ts, NULL);
        }
        perf_stats_tick(&st, sm_now_mono_us());
    }
    char sz[32], rate[32];
    snprintf(sz, sizeof sz, "%lld", (long long)o->size);
    snprintf(rate, sizeof rate, "%lld", (long long)o->rate);
    const char *extra[] = {"topic", o->topic, "size", sz, "rate", rate, NULL};
    perf_stats_summary(&st, sm_now_mono_us(), extra);
    if (ctx->st.errors)
        rc = cli_fail("%lld messages failed: %s", (long long)ctx->st.errors, ctx->first_err);
    free(lat);
    free(payload);
    rd_kafka_topic_destroy(rkt);
    rd_kafka_queue_destroy(q);
    rd_kafka_consumer_close(ck.rk);
out:
    cli_rk_destroy(&ck);
    rd_kafka_flush(h.k.rk, 1000);
    cli_rk_destroy(&h.k);
    free(starts);
    free(ctx);
    return rc;
}

/* ------------------------------------------------------------ mock */

static int perf_mock(perf_opts_t *o)
{
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    char errstr[256];
    /* this handle has no bootstrap servers on purpose: hush that warning */
    if (rd_kafka_conf_set(conf, "log_level", cli_g.verbose ? "7" : "3", errstr,
                          sizeof errstr) != RD_KAFKA_CONF_OK)
        cli_debug("log_level: %s", errstr);
    /* The mock cluster needs a handle to hang off; it serves on its own
     * threads and sockets, independent of this handle's use. */
    rd_kafka_t *rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, errstr, sizeof errstr);
    if (!rk)
        return cli_fail("cannot create client: %s", errstr);
    rd_kafka_mock_cluster_t *mc =
        rd_kafka_mock_cluster_new(rk, o->mock_brokers > 0 ? o->mock_brokers : 1);
    if (!mc) {
        rd_kafka_destroy(rk);
        return cli_fail("cannot start the mock cluster");
    }
    if (o->topic &&
        rd_kafka_mock_topic_create(mc, o->topic, o->partitions > 0 ? o->partitions : 1, 1)) {
        rd_kafka_mock_cluster_destroy(mc);
        rd_kafka_destroy(rk);
        return cli_fail("cannot create topic %s in the mock cluster", o->topic);
    }
    printf("%s\n", rd_kafka_mock_cluster_bootstraps(mc));
    fflush(stdout);
    signal(SIGINT, on_signal);
    signal(SIGTERM, on_signal);
    while (!perf_stop)
        pause();
    rd_kafka_mock_cluster_destroy(mc);
    rd_kafka_destroy(rk);
    return 0;
}

int cli_cmd_perf(int argc, char **argv)
{
    int rc0 = cli_noun_start("perf", perf_usage, argc, argv);
    if (rc0 >= 0)
        return rc0;
    const char *verb = argv[0];
    perf_opts_t o = {.acks = "all", .codec = "none", .size = 100, .linger_ms = 5,
                     .batch_size = 1024 * 1024, .queue_size = 1000000, .partitions = -1};
    char cmd[64];
    snprintf(cmd, sizeof cmd, "perf %s", verb);
    int rc = parse_opts(cmd, argc - 1, argv + 1, &o);
    if (rc >= 0)
        return rc;
    if (strcmp(verb, "mock-cluster") == 0 || strcmp(verb, "mock") == 0)
        return perf_mock(&o);
    if (!o.topic)
        return cli_usage_fail(cmd, "topic required");
    if (strcmp(o.codec, "none") && strcmp(o.codec, "gzip") && strcmp(o.codec, "snappy") &&
        strcmp(o.codec, "lz4") && strcmp(o.codec, "zstd"))
        return cli_usage_fail(cmd, "unknown codec '%s'", o.codec);
    if (o.idempotent && o.acks_set && strcmp(o.acks, "all") && strcmp(o.acks, "-1"))
        return cli_usage_fail(cmd, "--idempotent needs --acks all");
    if (o.txn_size > 0 && strcmp(verb, "produce"))
        return cli_usage_fail(cmd, "--txn-size is for perf produce");
    if (o.txn_id && o.txn_size == 0)
        return cli_usage_fail(cmd, "--transactional-id needs --txn-size");
    if (o.isolation && strcmp(verb, "consume") && strcmp(verb, "e2e"))
        return cli_usage_fail(cmd, "--isolation is for perf consume and e2e");
    if (o.keys && strcmp(verb, "produce"))
        return cli_usage_fail(cmd, "--keys is for perf produce");
    if (strcmp(verb, "produce") == 0) {
        if (!o.count_set)
            o.count = 1000000;
        return perf_produce(&o);
    }
    if (strcmp(verb, "consume") == 0)
        return perf_consume(&o);
    if (strcmp(verb, "e2e") == 0) {
        if (!o.count_set)
            o.count = 10000;
        if (!o.rate_set)
            o.rate = 2000;
        if (!o.linger_set)
            o.linger_ms = 0;
        return perf_e2e(&o);
    }
    return cli_usage_fail("perf", "unknown verb '%s'", verb);
}
