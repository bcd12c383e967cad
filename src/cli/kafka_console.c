/*
 * kafka_console.c - kafka-console-producer.sh and kafka-console-consumer.sh
 * (see kafka.h), on librdkafka directly.
 *
 * Producer: every stdin line is one record. --property parse.key=true with
 * key.separator (default TAB) splits key and value; parse.headers=true
 * reads "k1:v1,k2:v2<TAB>" before the key/value (headers.delimiter,
 * headers.separator, headers.key.separator); null.marker turns a field into
 * null. A line without the separator is an error, as in Kafka, unless
 * ignore.error=true. Records go out as the lines come (linger 1000 ms is
 * Kafka's console default; --sync waits for each one).
 *
 * Consumer: Kafka's DefaultMessageFormatter fields, in its order and with
 * its words: CreateTime:ts, Partition:p, Offset:o, headers k:v,... (or
 * NO_HEADERS), key, value, separated by key.separator and ended by
 * line.separator. Without --partition it joins a group (--group or a random
 * console-consumer-NNNNN, like Kafka) starting at the latest offset unless
 * --from-beginning; with --partition it reads that partition directly from
 * --offset (earliest, latest or a number). --max-messages and --timeout-ms
 * end it; "Processed a total of N messages" goes to stderr, as Kafka's does.
 * Main thread only (SIGINT/SIGTERM only set a flag).
 */
#include "kafka.h"

#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static volatile sig_atomic_t g_stop;

static void on_signal(int sig)
{
    (void)sig;
    g_stop = 1;
}

static void install_signals(void)
{
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal;
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
}

/* "\t", "\\n" escapes in a --property value, as a Java properties file
 * would read them. Returns a new string. */
static char *unescape(const char *s)
{
    char *r = sm_xmalloc(strlen(s) + 1), *o = r;
    for (; *s; s++) {
        if (*s == '\\' && s[1]) {
            s++;
            *o++ = *s == 't' ? '\t' : *s == 'n' ? '\n' : *s == 'r' ? '\r' : *s;
        } else {
            *o++ = *s;
        }
    }
    *o = 0;
    return r;
}

typedef struct fmt_props {
    bool print_key, print_value, print_ts, print_partition, print_offset, print_headers;
    bool parse_key, parse_headers, ignore_error;
    char *key_sep, *line_sep, *headers_sep, *headers_delim, *headers_key_sep, *null_marker;
} fmt_props_t;

static void props_init(fmt_props_t *p)
{
    memset(p, 0, sizeof *p);
    p->print_value = true;
    p->key_sep = sm_xstrdup("\t");
    p->line_sep = sm_xstrdup("\n");
    p->headers_sep = sm_xstrdup(",");
    p->headers_delim = sm_xstrdup("\t");
    p->headers_key_sep = sm_xstrdup(":");
}

static void props_free(fmt_props_t *p)
{
    free(p->key_sep);
    free(p->line_sep);
    free(p->headers_sep);
    free(p->headers_delim);
    free(p->headers_key_sep);
    free(p->null_marker);
}

static void set_str(char **dst, const char *v)
{
    free(*dst);
    *dst = unescape(v);
}

/* One --property key=value. false (message printed) on a bad one. */
static bool props_set(fmt_props_t *p, const char *script, const char *kv)
{
    const char *eq = strchr(kv, '=');
    if (!eq) {
        cli_fail("%s: --property must be key=value, got '%s'", script, kv);
        return false;
    }
    size_t kl = (size_t)(eq - kv);
    const char *v = eq + 1;
    bool on = strcasecmp(v, "true") == 0;
#define K(name) (kl == strlen(name) && strncmp(kv, name, kl) == 0)
    if (K("print.key")) p->print_key = on;
    else if (K("print.value")) p->print_value = on;
    else if (K("print.timestamp")) p->print_ts = on;
    else if (K("print.partition")) p->print_partition = on;
    else if (K("print.offset")) p->print_offset = on;
    else if (K("print.headers")) p->print_headers = on;
    else if (K("parse.key")) p->parse_key = on;
    else if (K("parse.headers")) p->parse_headers = on;
    else if (K("ignore.error")) p->ignore_error = on;
    else if (K("key.separator")) set_str(&p->key_sep, v);
    else if (K("line.separator")) set_str(&p->line_sep, v);
    else if (K("headers.separator")) set_str(&p->headers_sep, v);
    else if (K("headers.delimiter")) set_str(&p->headers_delim, v);
    else if (K("headers.key.separator")) set_str(&p->headers_key_sep, v);
    else if (K("null.marker")) set_str(&p->null_marker, v);
    else if (K("key.deserializer") || K("value.deserializer") || K("headers.deserializer"))
        cli_warn("%s: %.*s ignored: bytes are printed as they are", script, (int)kl, kv);
    else
        cli_warn("%s: unknown --property %.*s ignored", script, (int)kl, kv);
#undef K
    return true;
}

/* ------------------------------------------------------------ producer */

enum {
    P_TOPIC = KO_FIRST_FREE, P_PROPERTY, P_PRODUCER_PROPERTY, P_PRODUCER_CONFIG, P_SYNC,
    P_COMPRESSION, P_ACKS, P_BATCH_SIZE, P_TIMEOUT, P_RETRIES, P_RETRY_BACKOFF, P_MAX_BLOCK,
    P_REQUEST_TIMEOUT, P_LINE_READER, P_READER_CONFIG, P_IGNORED
};

typedef struct prod_state {
    int64_t failed;
    int64_t outstanding;
    char err[512];
} prod_state_t;

static void prod_dr(rd_kafka_t *rk, const rd_kafka_message_t *m, void *opaque)
{
    prod_state_t *s = m->_private;
    s->outstanding--;
    if (m->err) {
        s->failed++;
        snprintf(s->err, sizeof s->err, "%s", rd_kafka_err2str(m->err));
        fprintf(stderr, "ERROR Error when sending message to topic %s with key: %s, value: %zu "
                        "bytes with error: %s\n",
                rd_kafka_topic_name(m->rkt), m->key ? "<key>" : "null", m->len,
                rd_kafka_err2str(m->err));
    }
}

static void prod_conf_hook(rd_kafka_conf_t *conf, void *arg)
{
    rd_kafka_conf_set_dr_msg_cb(conf, prod_dr);
}

/* Split s at the first sep; returns the rest or NULL. */
static char *split_at(char *s, const char *sep)
{
    char *p = strstr(s, sep);
    if (!p)
        return NULL;
    *p = 0;
    return p + strlen(sep);
}

static bool is_null(const fmt_props_t *p, const char *s)
{
    return p->null_marker && strcmp(s, p->null_marker) == 0;
}

int kafka_console_producer_main(int argc, char **argv)
{
    static const cli_opt_t opts[] = {KAFKA_COMMON_OPTS,
                                     {"broker-list", 1, KO_BOOTSTRAP},
                                     {"topic", 1, P_TOPIC},
                                     {"property", 1, P_PROPERTY},
                                     {"reader-property", 1, P_PROPERTY},
                                     {"producer-property", 1, P_PRODUCER_PROPERTY},
                                     {"producer.config", 1, P_PRODUCER_CONFIG},
                                     {"sync", 0, P_SYNC},
                                     {"compression-codec", 1, P_COMPRESSION},
                                     {"request-required-acks", 1, P_ACKS},
                                     {"batch-size", 1, P_BATCH_SIZE},
                                     {"timeout", 1, P_TIMEOUT},
                                     {"message-send-max-retries", 1, P_RETRIES},
                                     {"retry-backoff-ms", 1, P_RETRY_BACKOFF},
                                     {"max-block-ms", 1, P_MAX_BLOCK},
                                     {"request-timeout-ms", 1, P_REQUEST_TIMEOUT},
                                     {"line-reader", 1, P_LINE_READER},
                                     {"reader-config", 1, P_READER_CONFIG},
                                     {"max-memory-bytes", 1, P_IGNORED},
                                     {"max-partition-memory-bytes", 1, P_IGNORED},
                                     {"metadata-expiry-ms", 1, P_IGNORED},
                                     {"socket-buffer-size", 1, P_IGNORED},
                                     {0}};
    const char *script = "kafka-console-producer.sh";
    cli_args_t a;
    cli_args_init(&a, script, argc, argv);
    const char *topic = NULL, *producer_config = NULL;
    const char *extra[32];
    int nextra = 0, c, rc = CLI_EXIT_OK;
    bool sync = false;
    fmt_props_t p;
    props_init(&p);
    char **pprops = sm_xcalloc((size_t)argc + 1, sizeof *pprops);
    int npprops = 0;
    extra[nextra++] = "linger.ms";
    extra[nextra++] = "1000";
    extra[nextra++] = "acks";
    extra[nextra++] = "all";
    cli_rk_t k = {0};
    prod_state_t st = {0};
    rd_kafka_topic_t *rkt = NULL;
    char *line = NULL;
    size_t cap = 0;
    while ((c = cli_getopt(&a, opts)) != -1) {
        if (kafka_common_opt(c, a.arg))
            continue;
        switch (c) {
        case P_TOPIC: topic = a.arg; break;
        case P_PROPERTY:
            if (!props_set(&p, script, a.arg)) {
                rc = CLI_EXIT_USAGE;
                goto out;
            }
            break;
        case P_PRODUCER_PROPERTY: pprops[npprops++] = (char *)a.arg; break;
        case P_PRODUCER_CONFIG: producer_config = a.arg; break;
        case P_SYNC: sync = true; break;
        case P_COMPRESSION:
            extra[nextra++] = "compression.codec";
            extra[nextra++] = a.arg;
            break;
        case P_ACKS:
            extra[nextra++] = "acks";
            extra[nextra++] = a.arg;
            break;
        case P_BATCH_SIZE:
            extra[nextra++] = "batch.num.messages";
            extra[nextra++] = a.arg;
            break;
        case P_TIMEOUT:
            extra[nextra++] = "linger.ms";
            extra[nextra++] = a.arg;
            break;
        case P_RETRIES:
            extra[nextra++] = "retries";
            extra[nextra++] = a.arg;
            break;
        case P_RETRY_BACKOFF:
            extra[nextra++] = "retry.backoff.ms";
            extra[nextra++] = a.arg;
            break;
        case P_REQUEST_TIMEOUT:
            extra[nextra++] = "request.timeout.ms";
            extra[nextra++] = a.arg;
            break;
        case P_MAX_BLOCK: case P_IGNORED: break;
        case P_LINE_READER:
            rc = kafka_unsupported(script, "--line-reader %s (Java message reader classes)",
                                   a.arg);
            goto out;
        case P_READER_CONFIG:
            cli_warn("%s: --reader-config ignored; give --property key=value", script);
            break;
        case 0: rc = cli_usage_fail(a.cmd, "unexpected argument '%s'", a.arg); goto out;
        case 'h':
            printf("usage: kafka-console-producer.sh --bootstrap-server HOST:PORT --topic T\n"
                   "  [--property parse.key=true] [--property key.separator=:]\n"
                   "  [--property parse.headers=true] [--producer-property k=v]\n"
                   "  [--producer.config FILE] [--sync] [--compression-codec C]\n"
                   "  [--request-required-acks A]   (reads records from stdin, one a line)\n");
            goto out;
        default: rc = CLI_EXIT_USAGE; goto out;
        }
        if (nextra >= (int)SM_ARRAY_LEN(extra) - 2) {
            rc = cli_usage_fail(a.cmd, "too many producer options");
            goto out;
        }
    }
    extra[nextra] = NULL;
    if (!topic) {
        fprintf(stderr, "%s: Missing required argument \"[topic]\"\n", script);
        rc = CLI_EXIT_FAIL;
        goto out;
    }
    if ((rc = kafka_client_ready(script)) >= 0)
        goto out;
    rc = CLI_EXIT_OK;
    if (producer_config && !kafka_load_props_file(producer_config)) {
        rc = CLI_EXIT_FAIL;
        goto out;
    }
    for (int i = 0; i < npprops; i++)
        if (!kafka_add_prop(pprops[i])) {
            rc = CLI_EXIT_FAIL;
            goto out;
        }
    if (!cli_rk_new(&k, RD_KAFKA_PRODUCER, extra, prod_conf_hook, NULL)) {
        rc = CLI_EXIT_FAIL;
        goto out;
    }
    rkt = rd_kafka_topic_new(k.rk, topic, NULL);
    install_signals();
    bool prompt = isatty(0) && isatty(1);
    int64_t lineno = 0;
    for (;;) {
        if (prompt) {
            printf(">");
            fflush(stdout);
        }
        ssize_t n = getline(&line, &cap, stdin);
        if (n < 0 || g_stop)
            break;
        lineno++;
        if (n > 0 && line[n - 1] == '\n')
            line[--n] = 0;
        if (n > 0 && line[n - 1] == '\r')
            line[--n] = 0;
        char *rest = line, *key = NULL, *value;
        rd_kafka_headers_t *hdrs = NULL;
        if (p.parse_headers) {
            char *after = split_at(rest, p.headers_delim);
            if (!after) {
                if (!p.ignore_error) {
                    rc = cli_fail("No headers delimiter found on line number %" PRId64 ": '%s'",
                                  lineno, line);
                    break;
                }
            } else {
                hdrs = rd_kafka_headers_new(8);
                char *save = NULL;
                for (char *h = strtok_r(rest, p.headers_sep, &save); h;
                     h = strtok_r(NULL, p.headers_sep, &save)) {
                    char *hv = split_at(h, p.headers_key_sep);
                    if (hv && is_null(&p, hv))
                        hv = NULL;
                    rd_kafka_header_add(hdrs, h, -1, hv, hv ? -1 : 0);
                }
                rest = after;
            }
        }
        if (p.parse_key) {
            char *v = split_at(rest, p.key_sep);
            if (!v) {
                if (!p.ignore_error) {
                    if (hdrs)
                        rd_kafka_headers_destroy(hdrs);
                    rc = cli_fail("No key separator found on line number %" PRId64 ": '%s'",
                                  lineno, line);
                    break;
                }
                value = rest;
            } else {
                key = rest;
                value = v;
            }
        } else {
            value = rest;
        }
        if (key && is_null(&p, key))
            key = NULL;
        if (is_null(&p, value))
            value = NULL;
        st.outstanding++;
        rd_kafka_resp_err_t err;
        for (;;) {
            err = rd_kafka_producev(
                k.rk, RD_KAFKA_V_RKT(rkt), RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY),
                RD_KAFKA_V_KEY(key, key ? strlen(key) : 0),
                RD_KAFKA_V_VALUE(value, value ? strlen(value) : 0),
                RD_KAFKA_V_HEADERS(hdrs), RD_KAFKA_V_OPAQUE(&st), RD_KAFKA_V_END);
            if (err != RD_KAFKA_RESP_ERR__QUEUE_FULL)
                break;
            rd_kafka_poll(k.rk, 100);
        }
        if (err) {
            st.outstanding--;
            if (hdrs)
                rd_kafka_headers_destroy(hdrs);
            rc = cli_fail("cannot produce to %s: %s", topic, rd_kafka_err2str(err));
            break;
        }
        if (sync) {
            while (st.outstanding > 0 && !k.all_down)
                rd_kafka_poll(k.rk, 50);
        }
        rd_kafka_poll(k.rk, 0);
    }
    /* flush, bounded: --timeout (default 10 s) after the last line */
    int64_t deadline = sm_now_mono_ms() + cli_g.timeout_ms + 5000;
    while (st.outstanding > 0 && sm_now_mono_ms() < deadline && !k.all_down)
        rd_kafka_poll(k.rk, 50);
    if (k.all_down && st.outstanding > 0)
        rc = cli_fail("cannot reach any broker in '%s'%s%s", cli_g.brokers,
                      k.fatal[0] ? ": " : "", k.fatal);
    else if (st.outstanding > 0)
        rc = cli_fail("%" PRId64 " records not delivered before the timeout", st.outstanding);
    else if (st.failed)
        rc = CLI_EXIT_FAIL;
out:
    free(line);
    if (rkt)
        rd_kafka_topic_destroy(rkt);
    cli_rk_destroy(&k);
    free(pprops);
    props_free(&p);
    return rc;
}

/* ------------------------------------------------------------ consumer */

enum {
    N_TOPIC = KO_FIRST_FREE, N_INCLUDE, N_GROUP, N_FROM_BEGINNING, N_PARTITION, N_OFFSET,
    N_MAX_MESSAGES, N_TIMEOUT_MS, N_PROPERTY, N_CONSUMER_PROPERTY, N_CONSUMER_CONFIG,
    N_FORMATTER, N_ISOLATION, N_SKIP_ERROR, N_IGNORED0, N_IGNORED1
};

static void put_field(FILE *f, const void *p, size_t n, bool null)
{
    if (null)
        fputs("null", f);
    else
        fwrite(p, 1, n, f);
}

static void print_message(const fmt_props_t *p, const rd_kafka_message_t *m)
{
    FILE *f = stdout;
    int left = p->print_ts + p->print_partition + p->print_offset + p->print_headers +
               p->print_key + p->print_value;
#define SEP() do { if (--left > 0) fputs(p->key_sep, f); } while (0)
    if (p->print_ts) {
        rd_kafka_timestamp_type_t tt;
        int64_t ts = rd_kafka_message_timestamp(m, &tt);
        if (tt == RD_KAFKA_TIMESTAMP_CREATE_TIME)
            fprintf(f, "CreateTime:%" PRId64, ts);
        else if (tt == RD_KAFKA_TIMESTAMP_LOG_APPEND_TIME)
            fprintf(f, "LogAppendTime:%" PRId64, ts);
        else
            fputs("NO_TIMESTAMP", f);
        SEP();
    }
    if (p->print_partition) {
        fprintf(f, "Partition:%d", m->partition);
        SEP();
    }
    if (p->print_offset) {
        fprintf(f, "Offset:%" PRId64, m->offset);
        SEP();
    }
    if (p->print_headers) {
        rd_kafka_headers_t *h = NULL;
        size_t cnt = 0;
        if (rd_kafka_message_headers(m, &h) == RD_KAFKA_RESP_ERR_NO_ERROR && h)
            cnt = rd_kafka_header_cnt(h);
        if (cnt == 0)
            fputs("NO_HEADERS", f);
        for (size_t i = 0; i < cnt; i++) {
            const char *name;
            const void *v;
            size_t vl;
            if (rd_kafka_header_get_all(h, i, &name, &v, &vl))
                break;
            fprintf(f, "%s%s%s", i ? p->headers_sep : "", name, p->headers_key_sep);
            put_field(f, v, vl, v == NULL);
        }
        SEP();
    }
    if (p->print_key) {
        put_field(f, m->key, m->key_len, m->key == NULL);
        SEP();
    }
    if (p->print_value)
        put_field(f, m->payload, m->len, m->payload == NULL);
#undef SEP
    fputs(p->line_sep, f);
}

int kafka_console_consumer_main(int argc, char **argv)
{
    static const cli_opt_t opts[] = {KAFKA_COMMON_OPTS,
                                     {"topic", 1, N_TOPIC},
                                     {"include", 1, N_INCLUDE},
                                     {"whitelist", 1, N_INCLUDE},
                                     {"group", 1, N_GROUP},
                                     {"from-beginning", 0, N_FROM_BEGINNING},
                                     {"partition", 1, N_PARTITION},
                                     {"offset", 1, N_OFFSET},
                                     {"max-messages", 1, N_MAX_MESSAGES},
                                     {"timeout-ms", 1, N_TIMEOUT_MS},
                                     {"property", 1, N_PROPERTY},
                                     {"formatter-property", 1, N_PROPERTY},
                                     {"consumer-property", 1, N_CONSUMER_PROPERTY},
                                     {"consumer.config", 1, N_CONSUMER_CONFIG},
                                     {"formatter", 1, N_FORMATTER},
                                     {"formatter-config", 1, N_FORMATTER},
                                     {"isolation-level", 1, N_ISOLATION},
                                     {"skip-message-on-error", 0, N_SKIP_ERROR},
                                     {"enable-systest-events", 0, N_IGNORED0},
                                     {"key-deserializer", 1, N_IGNORED1},
                                     {"value-deserializer", 1, N_IGNORED1},
                                     {0}};
    const char *script = "kafka-console-consumer.sh";
    cli_args_t a;
    cli_args_init(&a, script, argc, argv);
    const char *topic = NULL, *include = NULL, *group = NULL, *offset = NULL,
               *consumer_config = NULL, *isolation = NULL;
    bool from_beginning = false;
    int32_t partition = -1;
    int64_t max_messages = -1, timeout_ms = -1, count = 0;
    int c, rc = CLI_EXIT_OK;
    fmt_props_t p;
    props_init(&p);
    char **cprops = sm_xcalloc((size_t)argc + 1, sizeof *cprops);
    int ncprops = 0;
    cli_rk_t k = {0};
    rd_kafka_topic_partition_list_t *l = NULL;
    char gbuf[64];
    while ((c = cli_getopt(&a, opts)) != -1) {
        if (kafka_common_opt(c, a.arg))
            continue;
        switch (c) {
        case N_TOPIC: topic = a.arg; break;
        case N_INCLUDE: include = a.arg; break;
        case N_GROUP: group = a.arg; break;
        case N_FROM_BEGINNING: from_beginning = true; break;
        case N_PARTITION:
            if (!cli_parse_i32(a.arg, 0, INT32_MAX, &partition)) {
                rc = cli_usage_fail(a.cmd, "bad --partition '%s'", a.arg);
                goto out;
            }
            break;
        case N_OFFSET: offset = a.arg; break;
        case N_MAX_MESSAGES:
            if (!cli_parse_i64(a.arg, &max_messages) || max_messages < 0) {
                rc = cli_usage_fail(a.cmd, "bad --max-messages '%s'", a.arg);
                goto out;
            }
            break;
        case N_TIMEOUT_MS:
            if (!cli_parse_i64(a.arg, &timeout_ms) || timeout_ms < 0) {
                rc = cli_usage_fail(a.cmd, "bad --timeout-ms '%s'", a.arg);
                goto out;
            }
            break;
        case N_PROPERTY:
            if (!props_set(&p, script, a.arg)) {
                rc = CLI_EXIT_USAGE;
                goto out;
            }
            break;
        case N_CONSUMER_PROPERTY: cprops[ncprops++] = (char *)a.arg; break;
        case N_CONSUMER_CONFIG: consumer_config = a.arg; break;
        case N_FORMATTER:
            if (strstr(a.arg, "DefaultMessageFormatter") || strchr(a.arg, '/') ||
                strstr(a.arg, ".properties")) {
                if (c == N_FORMATTER && strcmp(a.argv[a.i - 2], "--formatter-config") == 0)
                    cli_warn("%s: --formatter-config ignored; give --property key=value",
                             script);
                break;
            }
            rc = kafka_unsupported(script, "--formatter %s (only Kafka's default formatter)",
                                   a.arg);
            goto out;
        case N_ISOLATION: isolation = a.arg; break;
        case N_SKIP_ERROR: case N_IGNORED0: break;
        case N_IGNORED1: cli_warn("%s: deserializers ignored: bytes are printed", script); break;
        case 0: rc = cli_usage_fail(a.cmd, "unexpected argument '%s'", a.arg); goto out;
        case 'h':
            printf("usage: kafka-console-consumer.sh --bootstrap-server HOST:PORT\n"
                   "  (--topic T | --include REGEX) [--group G] [--from-beginning]\n"
                   "  [--partition P [--offset earliest|latest|N]] [--max-messages N]\n"
                   "  [--timeout-ms MS] [--property print.key=true] [--property "
                   "key.separator=SEP]\n"
                   "  [--property print.timestamp|print.partition|print.offset|"
                   "print.headers=true]\n"
                   "  [--consumer-property k=v] [--consumer.config FILE]\n");
            goto out;
        default: rc = CLI_EXIT_USAGE; goto out;
        }
    }
    if (!topic == !include) {
        rc = cli_usage_fail(a.cmd, "Exactly one of --include/--topic is required.");
        goto out;
    }
    if (partition >= 0 && !topic) {
        rc = cli_usage_fail(a.cmd, "--partition needs --topic");
        goto out;
    }
    if (offset && partition < 0) {
        rc = cli_usage_fail(a.cmd, "The partition is required when offset is specified.");
        goto out;
    }
    if (from_beginning && offset) {
        rc = cli_usage_fail(a.cmd, "Options from-beginning and offset cannot be specified "
                                   "together.");
        goto out;
    }
    int64_t start = from_beginning ? RD_KAFKA_OFFSET_BEGINNING : RD_KAFKA_OFFSET_END;
    if (offset) {
        if (strcmp(offset, "earliest") == 0)
            start = RD_KAFKA_OFFSET_BEGINNING;
        else if (strcmp(offset, "latest") == 0)
            start = RD_KAFKA_OFFSET_END;
        else if (!cli_parse_i64(offset, &start) || start < 0) {
            rc = cli_usage_fail(a.cmd, "The provided offset value '%s' is incorrect. Valid "
                                       "values are 'earliest', 'latest', or a non-negative "
                                       "long.",
                                offset);
            goto out;
        }
    }
    if ((rc = kafka_client_ready(script)) >= 0)
        goto out;
    rc = CLI_EXIT_OK;
    if (consumer_config && !kafka_load_props_file(consumer_config)) {
        rc = CLI_EXIT_FAIL;
        goto out;
    }
    for (int i = 0; i < ncprops; i++)
        if (!kafka_add_prop(cprops[i])) {
            rc = CLI_EXIT_FAIL;
            goto out;
        }
    if (!group) {
        srand((unsigned)(time(NULL) ^ getpid()));
        snprintf(gbuf, sizeof gbuf, "console-consumer-%d", rand() % 100000);
        group = gbuf;
    }
    const char *extra[] = {"group.id", group,
                           "auto.offset.reset", from_beginning ? "earliest" : "latest",
                           "isolation.level", isolation ? isolation : "read_uncommitted",
                           "enable.partition.eof", "false",
                           NULL};
    if (!cli_rk_new(&k, RD_KAFKA_CONSUMER, extra, NULL, NULL)) {
        rc = CLI_EXIT_FAIL;
        goto out;
    }
    rd_kafka_poll_set_consumer(k.rk);
    l = rd_kafka_topic_partition_list_new(1);
    rd_kafka_resp_err_t err;
    if (partition >= 0) {
        rd_kafka_topic_partition_list_add(l, topic, partition)->offset = start;
        err = rd_kafka_assign(k.rk, l);
    } else {
        char *pat = NULL;
        if (include) {
            size_t n = strlen(include) + 2;
            pat = sm_xmalloc(n);
            snprintf(pat, n, "^%s", include);
        }
        rd_kafka_topic_partition_list_add(l, pat ? pat : topic, RD_KAFKA_PARTITION_UA);
        err = rd_kafka_subscribe(k.rk, l);
        free(pat);
    }
    if (err) {
        rc = cli_fail("cannot consume: %s", rd_kafka_err2str(err));
        goto out;
    }
    install_signals();
    int64_t last = sm_now_mono_ms();
    while (!g_stop && (max_messages < 0 || count < max_messages)) {
        rd_kafka_message_t *m = rd_kafka_consumer_poll(k.rk, 100);
        if (!m) {
            fflush(stdout); /* idle: show what came so far (pipes are block-buffered) */
            if (k.all_down) {
                rc = cli_fail("cannot reach any broker in '%s'%s%s", cli_g.brokers,
                              k.fatal[0] ? ": " : "", k.fatal);
                break;
            }
            if (timeout_ms >= 0 && sm_now_mono_ms() - last >= timeout_ms) {
                fprintf(stderr, "ERROR Error processing message, terminating consumer "
                                "process: org.apache.kafka.common.errors.TimeoutException\n");
                break;
            }
            continue;
        }
        if (m->err) {
            if (m->err != RD_KAFKA_RESP_ERR__PARTITION_EOF)
                fprintf(stderr, "ERROR %s\n", rd_kafka_message_errstr(m));
            if (m->err == RD_KAFKA_RESP_ERR_UNKNOWN_TOPIC_OR_PART ||
                m->err == RD_KAFKA_RESP_ERR__UNKNOWN_TOPIC ||
                m->err == RD_KAFKA_RESP_ERR__UNKNOWN_PARTITION) {
                rd_kafka_message_destroy(m);
                rc = CLI_EXIT_FAIL;
                break;
            }
            rd_kafka_message_destroy(m);
            continue;
        }
        last = sm_now_mono_ms();
        print_message(&p, m);
        count++;
        rd_kafka_message_destroy(m);
    }
    fflush(stdout);
    fprintf(stderr, "Processed a total of %" PRId64 " messages\n", count);
    rd_kafka_consumer_close(k.rk);
out:
    if (l)
        rd_kafka_topic_partition_list_destroy(l);
    cli_rk_destroy(&k);
    free(cprops);
    props_free(&p);
    return rc;
}
