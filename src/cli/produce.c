/*
 * produce.c - `samsa produce TOPIC`: one message per line of standard input.
 *
 * Each line (without its '\n') becomes a message value; with -k SEP the text
 * before the first SEP is the key. Headers (-H k=v), a fixed partition (-p),
 * compression (-z) and acks (--acks) map to librdkafka settings. Delivery
 * reports are counted; the command flushes at EOF and prints a one-line
 * summary on stderr. The topic must exist (checked in Metadata first), so a
 * typo fails at once instead of after librdkafka's message timeout.
 * Exit status 1 if any message failed. Main thread only (delivery reports
 * run inside rd_kafka_poll/flush on this thread).
 */
#define _GNU_SOURCE
#include "cli.h"

#include <stdlib.h>
#include <string.h>

static void produce_usage(FILE *f)
{
    fprintf(f,
            "usage: samsa produce TOPIC [options] < lines\n"
            "  One message per input line.\n"
            "  -k, --key-delimiter SEP   split each line at the first SEP into key and value\n"
            "  -H, --header key=value    add a header to every message (repeatable)\n"
            "  -p, --partition N         produce to partition N (default: partitioner)\n"
            "  -z, --compression CODEC   none, gzip, snappy, lz4 or zstd\n"
            "      --acks ACKS           0, 1 or all (default all)\n"
            "      --linger DURATION     batch for up to this long (default 5ms)\n");
}

typedef struct produce_state {
    int64_t delivered, failed, bytes;
    char first_error[512];
} produce_state_t;

static void dr_cb(rd_kafka_t *rk, const rd_kafka_message_t *m, void *opaque)
{
    produce_state_t *s = (produce_state_t *)m->_private;
    if (!s)
        return;
    if (m->err) {
        s->failed++;
        if (!s->first_error[0])
            snprintf(s->first_error, sizeof s->first_error, "%s", rd_kafka_err2str(m->err));
    } else {
        s->delivered++;
        s->bytes += (int64_t)m->len;
    }
}

static void hook(rd_kafka_conf_t *conf, void *arg)
{
    rd_kafka_conf_set_dr_msg_cb(conf, dr_cb);
}

int cli_cmd_produce(int argc, char **argv)
{
    static const cli_opt_t opts[] = {{"key-delimiter", 1, 'k'}, {"header", 1, 'H'},
                                     {"partition", 1, 'p'},     {"compression", 1, 'z'},
                                     {"acks", 1, 'a'},          {"linger", 1, 'l'},
                                     {0}};
    cli_args_t a;
    cli_args_init(&a, "produce", argc, argv);
    const char *topic = NULL, *keysep = NULL, *codec = "none", *acks = "all";
    char **hdrs = calloc((size_t)argc + 1, sizeof *hdrs);
    int nhdrs = 0, c, rc = CLI_EXIT_OK;
    int32_t partition = RD_KAFKA_PARTITION_UA;
    int64_t linger_ms = 5;
    cli_rk_t k = {0};
    rd_kafka_headers_t *headers = NULL;
    while ((c = cli_getopt(&a, opts)) != -1) {
        switch (c) {
        case 0:
            if (topic) {
                rc = cli_usage_fail(a.cmd, "one topic only (got '%s' and '%s')", topic, a.arg);
                goto out;
            }
            topic = a.arg;
            break;
        case 'k':
            if (!*a.arg) {
                rc = cli_usage_fail(a.cmd, "empty key delimiter");
                goto out;
            }
            keysep = a.arg;
            break;
        case 'H':
            if (!strchr(a.arg, '=') || a.arg[0] == '=') {
                rc = cli_usage_fail(a.cmd, "header must be key=value, got '%s'", a.arg);
                goto out;
            }
            hdrs[nhdrs++] = (char *)a.arg;
            break;
        case 'p':
            if (!cli_parse_i32(a.arg, 0, INT32_MAX, &partition)) {
                rc = cli_usage_fail(a.cmd, "bad partition '%s'", a.arg);
                goto out;
            }
            break;
        case 'z':
            if (strcmp(a.arg, "none") && strcmp(a.arg, "gzip") && strcmp(a.arg, "snappy") &&
                strcmp(a.arg, "lz4") && strcmp(a.arg, "zstd")) {
                rc = cli_usage_fail(a.cmd, "unknown codec '%s' (none, gzip, snappy, lz4, zstd)",
                                    a.arg);
                goto out;
            }
            codec = a.arg;
            break;
        case 'a':
            if (strcmp(a.arg, "0") && strcmp(a.arg, "1") && strcmp(a.arg, "all") &&
                strcmp(a.arg, "-1")) {
                rc = cli_usage_fail(a.cmd, "bad --acks '%s' (0, 1 or all)", a.arg);
                goto out;
            }
            acks = a.arg;
            break;
        case 'l':
            if (!cli_parse_duration_ms(a.arg, &linger_ms) || linger_ms < 0 ||
                linger_ms > 900000) {
                rc = cli_usage_fail(a.cmd, "bad --linger '%s'", a.arg);
                goto out;
            }
            break;
        case 'h': produce_usage(stdout); goto out;
        default: rc = CLI_EXIT_USAGE; goto out;
        }
    }
    if (!topic) {
        rc = cli_usage_fail(a.cmd, "topic required");
        goto out;
    }
    char linger[32], mto[32];
    snprintf(linger, sizeof linger, "%lld", (long long)linger_ms);
    snprintf(mto, sizeof mto, "%d", SM_MAX(cli_g.timeout_ms * 3, 30000));
    const char *extra[] = {"acks", acks, "compression.codec", codec, "linger.ms", linger,
                           "message.timeout.ms", mto, NULL};
    if (!cli_rk_new(&k, RD_KAFKA_PRODUCER, extra, hook, NULL)) {
        rc = CLI_EXIT_FAIL;
        goto out;
    }
    const struct rd_kafka_metadata *md;
    if (!cli_rk_metadata(&k, topic, &md)) {
        rc = CLI_EXIT_FAIL;
        goto out;
    }
    const rd_kafka_metadata_topic_t *mt = cli_md_topic(md, topic);
    if (!mt || mt->err == RD_KAFKA_RESP_ERR_UNKNOWN_TOPIC_OR_PART)
        rc = cli_fail("topic '%s' does not exist", topic);
    else if (partition != RD_KAFKA_PARTITION_UA && partition >= mt->partition_cnt)
        rc = cli_fail("topic '%s' has %d partitions, no partition %d", topic, mt->partition_cnt,
                      partition);
    rd_kafka_metadata_destroy(md);
    if (rc)
        goto out;

    if (nhdrs) {
        headers = rd_kafka_headers_new((size_t)nhdrs);
        for (int i = 0; i < nhdrs; i++) {
            char *eq = strchr(hdrs[i], '=');
            rd_kafka_header_add(headers, hdrs[i], eq - hdrs[i], eq + 1, -1);
        }
    }
    produce_state_t st = {0};
    int64_t t0 = sm_now_mono_ms(), sent = 0;
    char *line = NULL;
    size_t cap = 0;
    ssize_t n;
    size_t seplen = keysep ? strlen(keysep) : 0;
    while ((n = getline(&line, &cap, stdin)) >= 0) {
        if (n > 0 && line[n - 1] == '\n')
            line[--n] = 0;
        const char *key = NULL, *val = line;
        size_t klen = 0, vlen = (size_t)n;
        if (keysep) {
            char *s = memmem(line, (size_t)n, keysep, seplen);
            if (s) {
                key = line;
                klen = (size_t)(s - line);
                val = s + seplen;
                vlen = (size_t)n - klen - seplen;
            }
        }
        for (;;) {
            rd_kafka_resp_err_t err = rd_kafka_producev(
                k.rk, RD_KAFKA_V_TOPIC(topic), RD_KAFKA_V_PARTITION(partition),
                RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY), RD_KAFKA_V_KEY(key, klen),
                RD_KAFKA_V_VALUE((void *)val, vlen),
                RD_KAFKA_V_HEADERS(headers ? rd_kafka_headers_copy(headers) : NULL),
                RD_KAFKA_V_OPAQUE(&st), RD_KAFKA_V_END);
            if (err == RD_KAFKA_RESP_ERR__QUEUE_FULL) {
                rd_kafka_poll(k.rk, 100);
                continue;
            }
            if (err) {
                rc = cli_fail("produce to '%s': %s", topic, rd_kafka_err2str(err));
                free(line);
                goto out;
            }
            break;
        }
        sent++;
        rd_kafka_poll(k.rk, 0);
    }
    free(line);
    while (rd_kafka_outq_len(k.rk) > 0) {
        rd_kafka_poll(k.rk, 100);
        if (k.all_down && st.delivered + st.failed < sent &&
            sm_now_mono_ms() - t0 > cli_g.timeout_ms) {
            cli_fail("cannot reach any broker: %s; %lld messages not delivered", k.fatal,
                     (long long)(sent - st.delivered - st.failed));
            st.failed = sent - st.delivered;
            break;
        }
    }
    double secs = (double)(sm_now_mono_ms() - t0) / 1000.0;
    fprintf(stderr, "samsa: produced %lld message%s (%lld bytes) to %s in %.2f s", 
            (long long)st.delivered, st.delivered == 1 ? "" : "s", (long long)st.bytes, topic,
            secs);
    if (st.failed)
        fprintf(stderr, "; %lld failed: %s", (long long)st.failed, st.first_error);
    fputc('\n', stderr);
    if (st.failed)
        rc = CLI_EXIT_FAIL;
out:
    if (headers)
        rd_kafka_headers_destroy(headers);
    cli_rk_destroy(&k);
    free(hdrs);
    return rc;
}
