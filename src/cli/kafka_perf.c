/*
 * kafka_perf.c - kafka-producer-perf-test.sh and kafka-consumer-perf-test.sh
 * (see kafka.h), with Kafka's flags and output lines.
 *
 * Producer: --num-records records of --record-size random capital letters
 * (one payload reused, as Kafka's tool does) or lines of --payload-file, at
 * most --throughput per second (-1: unlimited). Latency is produce() to
 * delivery report, recorded in the histogram of perf_stats.h (percentiles
 * within 1.6%, rounded up). Every 5 s a window line
 *   N records sent, X records/sec (Y MB/sec), A ms avg latency, M ms max latency.
 * and at the end Kafka's summary
 *   N records sent, X records/sec (Y MB/sec), A ms avg latency, M ms max latency,
 *   P50 ms 50th, P95 ms 95th, P99 ms 99th, P999 ms 99.9th.
 *
 * Consumer: joins --group (default perf-consumer-NNNNN) from the earliest
 * offset (or --from-latest), reads --messages records and prints Kafka's CSV
 * header and line (start.time, end.time, data.consumed.in.MB, MB.sec,
 * data.consumed.in.nMsg, nMsg.sec, rebalance.time.ms, fetch.time.ms,
 * fetch.MB.sec, fetch.nMsg.sec); it stops early after --timeout ms without a
 * record, with Kafka's warning. Main thread only (callbacks are served by
 * rd_kafka_poll / consumer_poll on it).
 */
#include "kafka.h"
#include "perf_stats.h"

#include <stdlib.h>
#include <string.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#define MB (1024.0 * 1024.0)

static int64_t now_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

/* ------------------------------------------------------------ producer */

enum {
    PP_TOPIC = KO_FIRST_FREE, PP_NUM, PP_SIZE, PP_THROUGHPUT, PP_PROPS, PP_CONFIG, PP_PAYLOAD_FILE,
    PP_DELIM, PP_METRICS, PP_TXN_ID, PP_TXN_MS, PP_MONOTONIC, PP_WARMUP
};

typedef struct pp_state {
    perf_hist_t *hist;
    int64_t done, errors, bytes;
    /* current window */
    int64_t w_start_us, w_count, w_bytes, w_max_us;
    double w_sum_us;
    char err[256];
} pp_state_t;

/* The handle first: librdkafka's opaque is the cli_rk_t (rk.c's error
 * callback needs it), and the callbacks find the state next to it. */
typedef struct pp_run {
    cli_rk_t k;
    pp_state_t st;
} pp_run_t;

static void pp_dr(rd_kafka_t *rk, const rd_kafka_message_t *m, void *opaque)
{
    pp_state_t *s = &((pp_run_t *)opaque)->st;
    s->done++;
    if (m->err) {
        s->errors++;
        snprintf(s->err, sizeof s->err, "%s", rd_kafka_err2str(m->err));
        return;
    }
    int64_t lat = now_us() - (int64_t)(intptr_t)m->_private;
    if (lat < 0)
        lat = 0;
    perf_hist_record(s->hist, (uint64_t)lat);
    s->bytes += (int64_t)m->len;
    s->w_count++;
    s->w_bytes += (int64_t)m->len;
    s->w_sum_us += (double)lat;
    if (lat > s->w_max_us)
        s->w_max_us = lat;
}

static void pp_conf_hook(rd_kafka_conf_t *conf, void *arg)
{
    rd_kafka_conf_set_dr_msg_cb(conf, pp_dr);
}

static void pp_window(pp_state_t *s, int64_t now)
{
    double secs = (double)(now - s->w_start_us) / 1e6;
    if (secs <= 0)
        secs = 1e-6;
    printf("%" PRId64 " records sent, %.1f records/sec (%.2f MB/sec), %.1f ms avg latency, "
           "%.1f ms max latency.\n",
           s->w_count, (double)s->w_count / secs, (double)s->w_bytes / MB / secs,
           s->w_count ? s->w_sum_us / (double)s->w_count / 1000.0 : 0.0,
           (double)s->w_max_us / 1000.0);
    fflush(stdout);
    s->w_start_us = now;
    s->w_count = s->w_bytes = s->w_max_us = 0;
    s->w_sum_us = 0;
}

/* Payloads from --payload-file split at delim; returns count. */
static int read_payloads(const char *path, const char *delim, char ***out, char **buf)
{
    FILE *f = fopen(path, "r");
    if (!f) {
        cli_fail("cannot open %s: %m", path);
        return -1;
    }
    size_t cap = 0, len = 0, got;
    char *text = NULL;
    do {
        if (len + 65536 > cap) {
            cap = cap ? cap * 2 : 131072;
            text = realloc(text, cap + 1);
            SM_ASSERT(text);
        }
        got = fread(text + len, 1, cap - len, f);
        len += got;
    } while (got > 0);
    fclose(f);
    text[len] = 0;
    int n = 0, pcap = 16;
    char **ps = sm_xcalloc((size_t)pcap, sizeof *ps);
    size_t dl = strlen(delim);
    for (char *s = text; *s;) {
        char *e = strstr(s, delim);
        if (e)
            *e = 0;
        if (*s) {
            if (n == pcap) {
                pcap *= 2;
                ps = realloc(ps, sizeof *ps * (size_t)pcap);
                SM_ASSERT(ps);
            }
            ps[n++] = s;
        }
        if (!e)
            break;
        s = e + dl;
    }
    *out = ps;
    *buf = text;
    return n;
}

int kafka_producer_perf_main(int argc, char **argv)
{
    static const cli_opt_t opts[] = {KAFKA_COMMON_OPTS,
                                     {"topic", 1, PP_TOPIC},
                                     {"num-records", 1, PP_NUM},
                                     {"record-size", 1, PP_SIZE},
                                     {"throughput", 1, PP_THROUGHPUT},
                                     {"producer-props", 1, PP_PROPS},
                                     {"producer.config", 1, PP_CONFIG},
                                     {"payload-file", 1, PP_PAYLOAD_FILE},
                                     {"payload-delimiter", 1, PP_DELIM},
                                     {"print-metrics", 0, PP_METRICS},
                                     {"transactional-id", 1, PP_TXN_ID},
                                     {"transaction-duration-ms", 1, PP_TXN_MS},
                                     {"payload-monotonic", 0, PP_MONOTONIC},
                                     {"warmup-records", 1, PP_WARMUP},
                                     {0}};
    const char *script = "kafka-producer-perf-test.sh";
    cli_args_t a;
    cli_args_init(&a, script, argc, argv);
    const char *topic = NULL, *config = NULL, *payload_file = NULL, *delim = "\\n";
    int64_t num = -1, size = -1, throughput = 0;
    bool have_tp = false, monotonic = false;
    char **props = sm_xcalloc((size_t)argc + 1, sizeof *props);
    int nprops = 0, c, rc = CLI_EXIT_OK;
    char **payloads = NULL, *pbuf = NULL, *payload = NULL;
    int npayloads = 0;
    perf_hist_t *hist = sm_xcalloc(1, sizeof *hist);
    pp_run_t *run = sm_xcalloc(1, sizeof *run);
    cli_rk_t *kp = &run->k;
    pp_state_t *sp = &run->st;
    sp->hist = hist;
    rd_kafka_topic_t *rkt = NULL;
    while ((c = cli_getopt(&a, opts)) != -1) {
        if (kafka_common_opt(c, a.arg))
            continue;
        switch (c) {
        case PP_TOPIC: topic = a.arg; break;
        case PP_NUM:
            if (!cli_parse_i64(a.arg, &num) || num < 0) {
                rc = cli_usage_fail(a.cmd, "bad --num-records '%s'", a.arg);
                goto out;
            }
            break;
        case PP_SIZE:
            if (!cli_parse_i64(a.arg, &size) || size < 0 || size > 100 * 1024 * 1024) {
                rc = cli_usage_fail(a.cmd, "bad --record-size '%s'", a.arg);
                goto out;
            }
            break;
        case PP_THROUGHPUT: {
            double t = strtod(a.arg, NULL);
            throughput = t <= 0 ? -1 : (int64_t)t;
            have_tp = true;
            break;
        }
        case PP_PROPS:
            /* Kafka takes several values after one --producer-props */
            props[nprops++] = (char *)a.arg;
            while (a.i < a.argc && a.argv[a.i][0] != '-' && strchr(a.argv[a.i], '='))
                props[nprops++] = a.argv[a.i++];
            break;
        case PP_CONFIG: config = a.arg; break;
        case PP_PAYLOAD_FILE: payload_file = a.arg; break;
        case PP_DELIM: delim = a.arg; break;
        case PP_METRICS: cli_warn("--print-metrics ignored: Java client metrics"); break;
        case PP_TXN_ID: case PP_TXN_MS:
            rc = kafka_unsupported(script, "transactions (--transactional-id, "
                                           "--transaction-duration-ms)");
            goto out;
        case PP_MONOTONIC: monotonic = true; break;
        case PP_WARMUP: cli_warn("--warmup-records ignored"); break;
        case 0: rc = cli_usage_fail(a.cmd, "unexpected argument '%s'", a.arg); goto out;
        case 'h':
            printf("usage: kafka-producer-perf-test.sh --topic T --num-records N "
                   "(--record-size S | --payload-file F | --payload-monotonic)\n"
                   "  --throughput N|-1 [--producer-props k=v ...] [--producer.config F]\n"
                   "  [--bootstrap-server HOST:PORT] (or bootstrap.servers in the props)\n");
            goto out;
        default: rc = CLI_EXIT_USAGE; goto out;
        }
    }
    if (!topic || num < 0 || !have_tp) {
        fprintf(stderr, "%s: Missing required argument \"[%s]\"\n", script,
                !topic ? "topic" : num < 0 ? "num-records" : "throughput");
        rc = CLI_EXIT_FAIL;
        goto out;
    }
    if ((size >= 0) + (payload_file != NULL) + monotonic != 1) {
        rc = cli_usage_fail(a.cmd, "exactly one of --record-size, --payload-file and "
                                   "--payload-monotonic is required");
        goto out;
    }
    /* bootstrap.servers may come from the props instead of --bootstrap-server */
    for (int i = 0; i < nprops; i++)
        if (strncmp(props[i], "bootstrap.servers=", 18) == 0)
            kafka_common_opt(KO_BOOTSTRAP, props[i] + 18);
    if (config) {
        FILE *f = fopen(config, "r");
        char line[4096];
        while (f && fgets(line, sizeof line, f)) {
            char *s = line;
            while (*s == ' ')
                s++;
            if (strncmp(s, "bootstrap.servers", 17) == 0 && (s[17] == '=' || s[17] == ':')) {
                s[strcspn(s, "\r\n")] = 0;
                kafka_common_opt(KO_BOOTSTRAP, sm_xstrdup(s + 18));
            }
        }
        if (f)
            fclose(f);
    }
    if ((rc = kafka_client_ready(script)) >= 0)
        goto out;
    rc = CLI_EXIT_OK;
    if (config && !kafka_load_props_file(config)) {
        rc = CLI_EXIT_FAIL;
        goto out;
    }
    for (int i = 0; i < nprops; i++)
        if (strncmp(props[i], "bootstrap.servers=", 18) != 0 && !kafka_add_prop(props[i])) {
            rc = CLI_EXIT_FAIL;
            goto out;
        }
    if (payload_file) {
        char *d = strcmp(delim, "\\n") == 0 ? sm_xstrdup("\n") : sm_xstrdup(delim);
        npayloads = read_payloads(payload_file, d, &payloads, &pbuf);
        free(d);
        if (npayloads <= 0) {
            if (npayloads == 0)
                rc = cli_fail("File does not contain any payloads: %s", payload_file);
            else
                rc = CLI_EXIT_FAIL;
            goto out;
        }
    } else if (size >= 0) {
        payload = sm_xmalloc((size_t)size + 1);
        srand((unsigned)time(NULL));
        for (int64_t i = 0; i < size; i++)
            payload[i] = (char)('A' + rand() % 26);
    }
    const char *extra[] = {"queue.buffering.max.messages", "1000000", NULL};
    if (!cli_rk_new(kp, RD_KAFKA_PRODUCER, extra, pp_conf_hook, NULL)) {
        rc = CLI_EXIT_FAIL;
        goto out;
    }
    rkt = rd_kafka_topic_new(kp->rk, topic, NULL);
    int64_t start = now_us();
    sp->w_start_us = start;
    char mono[32];
    for (int64_t i = 0; i < num && !kp->all_down; i++) {
        if (throughput > 0) {
            int64_t due = start + (int64_t)((double)i * 1e6 / (double)throughput);
            while (now_us() < due) {
                int64_t wait_ms = (due - now_us()) / 1000;
                rd_kafka_poll(kp->rk, wait_ms > 0 ? (int)(wait_ms < 100 ? wait_ms : 100) : 0);
                if (wait_ms <= 0)
                    break;
            }
        }
        const char *val;
        size_t len;
        int flags = 0;
        if (payload_file) {
            val = payloads[rand() % npayloads];
            len = strlen(val);
        } else if (monotonic) {
            len = (size_t)snprintf(mono, sizeof mono, "%" PRId64, i);
            val = mono;
            flags = RD_KAFKA_MSG_F_COPY;
        } else {
            val = payload;
            len = (size_t)size;
        }
        int64_t t0 = now_us();
        while (rd_kafka_produce(rkt, RD_KAFKA_PARTITION_UA, flags, (void *)val, len, NULL, 0,
                                (void *)(intptr_t)t0) != 0) {
            if (rd_kafka_last_error() != RD_KAFKA_RESP_ERR__QUEUE_FULL) {
                rc = cli_fail("produce: %s", rd_kafka_err2str(rd_kafka_last_error()));
                goto flush;
            }
            rd_kafka_poll(kp->rk, 10);
        }
        rd_kafka_poll(kp->rk, 0);
        int64_t now = now_us();
        if (now - sp->w_start_us >= 5000000)
            pp_window(sp, now);
    }
flush:
    while (sp->done < num && !kp->all_down && rc == CLI_EXIT_OK) {
        rd_kafka_poll(kp->rk, 50);
        int64_t now = now_us();
        if (now - sp->w_start_us >= 5000000)
            pp_window(sp, now);
    }
    if (kp->all_down)
        rc = cli_fail("cannot reach any broker in '%s'%s%s", cli_g.brokers,
                      kp->fatal[0] ? ": " : "", kp->fatal);
    if (rc == CLI_EXIT_OK) {
        double secs = (double)(now_us() - start) / 1e6;
        int64_t ok = sp->done - sp->errors;
        if (secs <= 0)
            secs = 1e-6;
        printf("%" PRId64 " records sent, %f records/sec (%.2f MB/sec), %.2f ms avg latency, "
               "%.2f ms max latency, %d ms 50th, %d ms 95th, %d ms 99th, %d ms 99.9th.\n",
               ok, (double)ok / secs, (double)sp->bytes / MB / secs,
               hist->count ? hist->sum_us / (double)hist->count / 1000.0 : 0.0,
               (double)hist->max_us / 1000.0, (int)(perf_hist_quantile(hist, 0.5) / 1000),
               (int)(perf_hist_quantile(hist, 0.95) / 1000),
               (int)(perf_hist_quantile(hist, 0.99) / 1000),
               (int)(perf_hist_quantile(hist, 0.999) / 1000));
        if (sp->errors)
            rc = cli_fail("%" PRId64 " records failed: %s", sp->errors, sp->err);
    }
out:
    if (rkt)
        rd_kafka_topic_destroy(rkt);
    cli_rk_destroy(kp);
    free(run);
    free(props);
    free(payloads);
    free(pbuf);
    free(payload);
    free(hist);
    return rc;
}

/* ------------------------------------------------------------ consumer */

enum {
    CP_TOPIC = KO_FIRST_FREE, CP_INCLUDE, CP_MESSAGES, CP_GROUP, CP_FROM_LATEST, CP_FETCH_SIZE,
    CP_SOCKET, CP_THREADS, CP_INTERVAL, CP_DETAILED, CP_HIDE_HEADER, CP_DATE_FORMAT, CP_TIMEOUT,
    CP_CONFIG, CP_METRICS
};

/* The handle first, as pp_run_t. */
typedef struct cp_state {
    cli_rk_t k;
    int64_t assigned_ms; /* wall ms of the first assignment, 0 before */
} cp_state_t;

static void cp_rebalance(rd_kafka_t *rk, rd_kafka_resp_err_t err,
                         rd_kafka_topic_partition_list_t *parts, void *opaque)
{
    cp_state_t *s = opaque;
    if (err == RD_KAFKA_RESP_ERR__ASSIGN_PARTITIONS) {
        if (!s->assigned_ms)
            s->assigned_ms = sm_now_wall_ms();
        rd_kafka_assign(rk, parts);
    } else {
        rd_kafka_assign(rk, NULL);
    }
}

static void cp_conf_hook(rd_kafka_conf_t *conf, void *arg)
{
    rd_kafka_conf_set_rebalance_cb(conf, cp_rebalance);
}

static const char *fmt_date(int64_t ms, char *buf, size_t len)
{
    time_t s = (time_t)(ms / 1000);
    struct tm tm;
    localtime_r(&s, &tm);
    size_t n = strftime(buf, len, "%Y-%m-%d %H:%M:%S", &tm);
    snprintf(buf + n, len - n, ":%03d", (int)(ms % 1000));
    return buf;
}

int kafka_consumer_perf_main(int argc, char **argv)
{
    static const cli_opt_t opts[] = {KAFKA_COMMON_OPTS,
                                     {"broker-list", 1, KO_BOOTSTRAP},
                                     {"topic", 1, CP_TOPIC},
                                     {"include", 1, CP_INCLUDE},
                                     {"messages", 1, CP_MESSAGES},
                                     {"group", 1, CP_GROUP},
                                     {"from-latest", 0, CP_FROM_LATEST},
                                     {"fetch-size", 1, CP_FETCH_SIZE},
                                     {"socket-buffer-size", 1, CP_SOCKET},
                                     {"threads", 1, CP_THREADS},
                                     {"num-fetch-threads", 1, CP_THREADS},
                                     {"reporting-interval", 1, CP_INTERVAL},
                                     {"show-detailed-stats", 0, CP_DETAILED},
                                     {"hide-header", 0, CP_HIDE_HEADER},
                                     {"date-format", 1, CP_DATE_FORMAT},
                                     {"timeout", 1, CP_TIMEOUT},
                                     {"consumer.config", 1, CP_CONFIG},
                                     {"print-metrics", 0, CP_METRICS},
                                     {0}};
    const char *script = "kafka-consumer-perf-test.sh";
    cli_args_t a;
    cli_args_init(&a, script, argc, argv);
    const char *topic = NULL, *include = NULL, *group = NULL, *config = NULL,
               *fetch_size = NULL;
    int64_t messages = -1, interval_ms = 5000, timeout_ms = 10000;
    bool from_latest = false, detailed = false, hide_header = false;
    int c, rc = CLI_EXIT_OK;
    cp_state_t st = {0};
    cli_rk_t *kp = &st.k;
    char gbuf[64];
    while ((c = cli_getopt(&a, opts)) != -1) {
        if (kafka_common_opt(c, a.arg))
            continue;
        switch (c) {
        case CP_TOPIC: topic = a.arg; break;
        case CP_INCLUDE: include = a.arg; break;
        case CP_MESSAGES:
            if (!cli_parse_i64(a.arg, &messages) || messages < 0)
                return cli_usage_fail(a.cmd, "bad --messages '%s'", a.arg);
            break;
        case CP_GROUP: group = a.arg; break;
        case CP_FROM_LATEST: from_latest = true; break;
        case CP_FETCH_SIZE: fetch_size = a.arg; break;
        case CP_SOCKET: case CP_THREADS: break;
        case CP_INTERVAL:
            if (!cli_parse_i64(a.arg, &interval_ms) || interval_ms <= 0)
                return cli_usage_fail(a.cmd, "bad --reporting-interval '%s'", a.arg);
            break;
        case CP_DETAILED: detailed = true; break;
        case CP_HIDE_HEADER: hide_header = true; break;
        case CP_DATE_FORMAT:
            if (strcmp(a.arg, "yyyy-MM-dd HH:mm:ss:SSS") != 0)
                cli_warn("--date-format %s ignored: Kafka's default yyyy-MM-dd HH:mm:ss:SSS "
                         "is used",
                         a.arg);
            break;
        case CP_TIMEOUT:
            if (!cli_parse_i64(a.arg, &timeout_ms) || timeout_ms <= 0)
                return cli_usage_fail(a.cmd, "bad --timeout '%s'", a.arg);
            break;
        case CP_CONFIG: config = a.arg; break;
        case CP_METRICS: cli_warn("--print-metrics ignored: Java client metrics"); break;
        case 0: return cli_usage_fail(a.cmd, "unexpected argument '%s'", a.arg);
        case 'h':
            printf("usage: kafka-consumer-perf-test.sh --bootstrap-server HOST:PORT --topic T "
                   "--messages N\n"
                   "  [--group G] [--from-latest] [--timeout MS] [--show-detailed-stats]\n"
                   "  [--reporting-interval MS] [--hide-header] [--consumer.config F]\n");
            return CLI_EXIT_OK;
        default: return CLI_EXIT_USAGE;
        }
    }
    if ((!topic && !include) || messages < 0) {
        fprintf(stderr, "%s: Missing required argument \"[%s]\"\n", script,
                messages < 0 ? "messages" : "topic");
        return CLI_EXIT_FAIL;
    }
    if ((rc = kafka_client_ready(script)) >= 0)
        return rc;
    rc = CLI_EXIT_OK;
    if (config && !kafka_load_props_file(config))
        return CLI_EXIT_FAIL;
    if (!group) {
        srand((unsigned)(time(NULL) ^ getpid()));
        snprintf(gbuf, sizeof gbuf, "perf-consumer-%d", rand() % 100000);
        group = gbuf;
    }
    const char *extra[] = {"group.id", group,
                           "auto.offset.reset", from_latest ? "latest" : "earliest",
                           "enable.auto.commit", "true",
                           fetch_size ? "fetch.max.bytes" : NULL, fetch_size,
                           NULL};
    if (!cli_rk_new(kp, RD_KAFKA_CONSUMER, extra, cp_conf_hook, NULL))
        return CLI_EXIT_FAIL;
    rd_kafka_poll_set_consumer(kp->rk);
    rd_kafka_topic_partition_list_t *l = rd_kafka_topic_partition_list_new(1);
    char pat[512];
    if (include)
        snprintf(pat, sizeof pat, "^%s", include);
    rd_kafka_topic_partition_list_add(l, include ? pat : topic, RD_KAFKA_PARTITION_UA);
    if (!hide_header)
        printf("%s, data.consumed.in.MB, MB.sec, data.consumed.in.nMsg, nMsg.sec, "
               "rebalance.time.ms, fetch.time.ms, fetch.MB.sec, fetch.nMsg.sec\n",
               detailed ? "time, threadId" : "start.time, end.time");
    int64_t start_ms = sm_now_wall_ms();
    rd_kafka_resp_err_t err = rd_kafka_subscribe(kp->rk, l);
    rd_kafka_topic_partition_list_destroy(l);
    if (err) {
        cli_rk_destroy(kp);
        return cli_fail("subscribe: %s", rd_kafka_err2str(err));
    }
    int64_t count = 0, bytes = 0, last_ms = sm_now_mono_ms(), end_ms = start_ms;
    int64_t rep_ms = start_ms, rep_count = 0, rep_bytes = 0;
    bool first_report = true;
    char d1[64], d2[64];
    while (count < messages) {
        rd_kafka_message_t *m = rd_kafka_consumer_poll(kp->rk, 100);
        if (!m) {
            if (kp->all_down) {
                rc = cli_fail("cannot reach any broker in '%s'%s%s", cli_g.brokers,
                              kp->fatal[0] ? ": " : "", kp->fatal);
                break;
            }
            if (sm_now_mono_ms() - last_ms > timeout_ms)
                break;
            continue;
        }
        if (!m->err) {
            count++;
            bytes += (int64_t)m->len + (int64_t)m->key_len;
            last_ms = sm_now_mono_ms();
            end_ms = sm_now_wall_ms();
        }
        rd_kafka_message_destroy(m);
        if (detailed && end_ms - rep_ms >= interval_ms) {
            double secs = (double)(end_ms - rep_ms) / 1000.0;
            int64_t reb = first_report && st.assigned_ms ? st.assigned_ms - start_ms : 0;
            double fsecs = (double)(end_ms - rep_ms - reb) / 1000.0;
            double mbi = (double)(bytes - rep_bytes) / MB;
            printf("%s, %d, %.4f, %.4f, %" PRId64 ", %.4f, %" PRId64 ", %" PRId64
                   ", %.4f, %.4f\n",
                   fmt_date(end_ms, d1, sizeof d1), 0, (double)bytes / MB, mbi / secs, count,
                   (double)(count - rep_count) / secs, reb, end_ms - rep_ms - reb,
                   fsecs > 0 ? mbi / fsecs : 0.0,
                   fsecs > 0 ? (double)(count - rep_count) / fsecs : 0.0);
            fflush(stdout);
            first_report = false;
            rep_ms = end_ms;
            rep_count = count;
            rep_bytes = bytes;
        }
    }
    if (rc == CLI_EXIT_OK && count < messages)
        printf("WARNING: Exiting before consuming the expected number of messages: timeout "
               "(%" PRId64 " ms) exceeded. You can use the --timeout option to increase the "
               "timeout.\n",
               timeout_ms);
    if (rc == CLI_EXIT_OK && !detailed) {
        double secs = (double)(end_ms - start_ms) / 1000.0;
        int64_t reb = st.assigned_ms ? st.assigned_ms - start_ms : 0;
        double fetch_secs = (double)(end_ms - start_ms - reb) / 1000.0;
        double mb = (double)bytes / MB;
        printf("%s, %s, %.4f, %.4f, %" PRId64 ", %.4f, %" PRId64 ", %" PRId64 ", %.4f, %.4f\n",
               fmt_date(start_ms, d1, sizeof d1), fmt_date(end_ms, d2, sizeof d2), mb,
               secs > 0 ? mb / secs : 0.0, count, secs > 0 ? (double)count / secs : 0.0, reb,
               end_ms - start_ms - reb, fetch_secs > 0 ? mb / fetch_secs : 0.0,
               fetch_secs > 0 ? (double)count / fetch_secs : 0.0);
    }
    rd_kafka_consumer_close(kp->rk);
    cli_rk_destroy(kp);
    return rc;
}
