/*
 * storage_bench.c - client side of bench/storage_bench.sh (librdkafka, no
 * project code; the script builds it with the system compiler).
 *
 *   storage_bench fsync DIR SECONDS
 *       the machine's fsync rate: append 512 bytes, fdatasync, repeat;
 *       prints "fsync_per_sec=N fsync_us_p50=N fsync_us_p99=N"
 *   storage_bench create BOOTSTRAP TOPIC PARTITIONS [key=value ...]
 *       create a topic with configs (admin API), wait for it
 *   storage_bench produce BOOTSTRAP TOPIC TOTAL_MB MSG_BYTES ACKS INFLIGHT LINGER_MS [PRODUCERS [BATCH]]
 *       produce TOTAL_MB of MSG_BYTES messages round-robin over the topic's
 *       partitions with PRODUCERS producer instances (threads, default 1),
 *       each allowing INFLIGHT requests per connection and BATCH records per
 *       batch (batch.num.messages, default 10000); prints
 *       "msgs=N seconds=S msgs_per_sec=R mb_per_sec=M"
 *   storage_bench serving BOOTSTRAP TIMEOUT_S
 *       poll until the broker answers a metadata request; prints "ready_ms=N"
 *
 * Output is key=value lines on stdout; errors go to stderr with exit 1.
 */
#define _GNU_SOURCE
#include <librdkafka/rdkafka.h>

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void die(const char *what)
{
    fprintf(stderr, "storage_bench: %s\n", what);
    exit(1);
}

static int cmp_d(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static int cmd_fsync(const char *dir, double seconds)
{
    char path[4096];
    snprintf(path, sizeof path, "%s/storage_bench.fsync", dir);
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    if (fd < 0)
        die(strerror(errno));
    char buf[512];
    memset(buf, 'x', sizeof buf);
    size_t cap = 1 << 20, n = 0;
    double *lat = malloc(cap * sizeof *lat);
    double t0 = now_s();
    while (now_s() - t0 < seconds && n < cap) {
        double a = now_s();
        if (write(fd, buf, sizeof buf) != (ssize_t)sizeof buf || fdatasync(fd) != 0)
            die(strerror(errno));
        lat[n++] = (now_s() - a) * 1e6;
    }
    double el = now_s() - t0;
    close(fd);
    unlink(path);
    qsort(lat, n, sizeof *lat, cmp_d);
    printf("fsync_per_sec=%.0f fsync_us_p50=%.0f fsync_us_p99=%.0f\n", (double)n / el,
           lat[n / 2], lat[(size_t)((double)n * 0.99)]);
    free(lat);
    return 0;
}

static rd_kafka_t *client(rd_kafka_type_t type, const char *bootstrap, const char **kv, int nkv)
{
    char err[512];
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    if (rd_kafka_conf_set(conf, "bootstrap.servers", bootstrap, err, sizeof err) != RD_KAFKA_CONF_OK)
        die(err);
    for (int i = 0; i + 1 < nkv; i += 2)
        if (rd_kafka_conf_set(conf, kv[i], kv[i + 1], err, sizeof err) != RD_KAFKA_CONF_OK)
            die(err);
    rd_kafka_t *rk = rd_kafka_new(type, conf, err, sizeof err);
    if (!rk)
        die(err);
    return rk;
}

static int cmd_create(const char *bootstrap, const char *topic, int parts, char **cfg, int ncfg)
{
    rd_kafka_t *rk = client(RD_KAFKA_PRODUCER, bootstrap, NULL, 0);
    char err[512];
    rd_kafka_NewTopic_t *nt = rd_kafka_NewTopic_new(topic, parts, 1, err, sizeof err);
    if (!nt)
        die(err);
    for (int i = 0; i < ncfg; i++) {
        char *eq = strchr(cfg[i], '=');
        if (!eq)
            die("config must be key=value");
        *eq = '\0';
        rd_kafka_NewTopic_set_config(nt, cfg[i], eq + 1);
    }
    rd_kafka_queue_t *q = rd_kafka_queue_new(rk);
    rd_kafka_CreateTopics(rk, &nt, 1, NULL, q);
    rd_kafka_event_t *ev = rd_kafka_queue_poll(q, 60000);
    if (!ev || rd_kafka_event_error(ev))
        die(ev ? rd_kafka_event_error_string(ev) : "CreateTopics timed out");
    size_t n;
    const rd_kafka_topic_result_t **res =
        rd_kafka_CreateTopics_result_topics(rd_kafka_event_CreateTopics_result(ev), &n);
    if (n != 1 || rd_kafka_topic_result_error(res[0]))
        die(n ? rd_kafka_topic_result_error_string(res[0]) : "no result");
    rd_kafka_event_destroy(ev);
    rd_kafka_queue_destroy(q);
    rd_kafka_NewTopic_destroy(nt);
    rd_kafka_destroy(rk);
    return 0;
}

typedef struct prod_arg {
    const char *bootstrap, *topic, *acks, *inflight, *linger, *batch;
    long long msgs;
    int size;
    long long failed;
} prod_arg_t;

static void on_delivery(rd_kafka_t *rk, const rd_kafka_message_t *m, void *opaque)
{
    (void)rk;
    if (m->err)
        __atomic_add_fetch((long long *)opaque, 1, __ATOMIC_RELAXED);
}

static void *producer_thread(void *p)
{
    prod_arg_t *a = p;
    const char *kv[] = {"acks", a->acks, "max.in.flight.requests.per.connection", a->inflight,
                        "linger.ms", a->linger, "queue.buffering.max.messages", "1000000",
                        "queue.buffering.max.kbytes", "1048576", "enable.idempotence", "false",
                        "batch.size", "1000000", "batch.num.messages", a->batch};
    char err[512];
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    rd_kafka_conf_set(conf, "bootstrap.servers", a->bootstrap, err, sizeof err);
    for (size_t i = 0; i + 1 < sizeof kv / sizeof *kv; i += 2)
        if (rd_kafka_conf_set(conf, kv[i], kv[i + 1], err, sizeof err) != RD_KAFKA_CONF_OK)
            die(err);
    rd_kafka_conf_set_dr_msg_cb(conf, on_delivery);
    rd_kafka_conf_set_opaque(conf, &a->failed);
    rd_kafka_t *rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, err, sizeof err);
    if (!rk)
        die(err);
    char *payload = malloc((size_t)a->size);
    memset(payload, 'v', (size_t)a->size);
    for (long long i = 0; i < a->msgs;) {
        rd_kafka_resp_err_t e = rd_kafka_producev(
            rk, RD_KAFKA_V_TOPIC(a->topic), RD_KAFKA_V_VALUE(payload, (size_t)a->size),
            RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY), RD_KAFKA_V_END);
        if (e == RD_KAFKA_RESP_ERR__QUEUE_FULL) {
            rd_kafka_poll(rk, 10);
            continue;
        }
        if (e)
            die(rd_kafka_err2str(e));
        if ((++i & 1023) == 0)
            rd_kafka_poll(rk, 0);
    }
    while (rd_kafka_outq_len(rk) > 0)
        rd_kafka_poll(rk, 50);
    free(payload);
    rd_kafka_destroy(rk);
    return NULL;
}

static int cmd_produce(char **argv, int argc)
{
    int nprod = argc > 9 ? atoi(argv[9]) : 1;
    if (nprod < 1)
        nprod = 1;
    double total = atof(argv[4]) * 1048576.0;
    int size = atoi(argv[5]);
    long long msgs = (long long)(total / size);
    prod_arg_t *args = calloc((size_t)nprod, sizeof *args);
    pthread_t *th = calloc((size_t)nprod, sizeof *th);
    double t0 = now_s();
    for (int i = 0; i < nprod; i++) {
        args[i] = (prod_arg_t){argv[2], argv[3], argv[6], argv[7], argv[8],
                               argc > 10 ? argv[10] : "10000", msgs / nprod, size, 0};
        pthread_create(&th[i], NULL, producer_thread, &args[i]);
    }
    long long failed = 0;
    for (int i = 0; i < nprod; i++) {
        pthread_join(th[i], NULL);
        failed += args[i].failed;
    }
    double el = now_s() - t0;
    long long sent = (msgs / nprod) * nprod;
    printf("msgs=%lld failed=%lld seconds=%.2f msgs_per_sec=%.0f mb_per_sec=%.1f\n", sent, failed,
           el, (double)sent / el, (double)sent * size / el / 1048576.0);
    return failed ? 1 : 0;
}

static int cmd_serving(const char *bootstrap, double timeout)
{
    double t0 = now_s();
    while (now_s() - t0 < timeout) {
        rd_kafka_t *rk = client(RD_KAFKA_PRODUCER, bootstrap, NULL, 0);
        const struct rd_kafka_metadata *md;
        rd_kafka_resp_err_t e = rd_kafka_metadata(rk, 0, NULL, &md, 500);
        if (!e) {
            rd_kafka_metadata_destroy(md);
            rd_kafka_destroy(rk);
            printf("ready_ms=%.0f\n", (now_s() - t0) * 1000);
            return 0;
        }
        rd_kafka_destroy(rk);
        usleep(20000);
    }
    die("broker not serving");
    return 1;
}

int main(int argc, char **argv)
{
    if (argc >= 4 && !strcmp(argv[1], "fsync"))
        return cmd_fsync(argv[2], atof(argv[3]));
    if (argc >= 5 && !strcmp(argv[1], "create"))
        return cmd_create(argv[2], argv[3], atoi(argv[4]), argv + 5, argc - 5);
    if (argc >= 9 && !strcmp(argv[1], "produce"))
        return cmd_produce(argv, argc);
    if (argc >= 4 && !strcmp(argv[1], "serving"))
        return cmd_serving(argv[2], atof(argv[3]));
    fprintf(stderr, "usage: see the comment at the top of bench/storage_bench.c\n");
    return 2;
}
