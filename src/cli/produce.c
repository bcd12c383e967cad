/*
 * produce.c - `samsa produce TOPIC`: one message per line of standard input.
 *
 * Each line (without its '\n') becomes a message value; with -k/-K SEP the
 * text before the first SEP is the key. -Z turns empty values (and keys)
 * into nulls, so "key:" with -K : -Z is a tombstone. --timestamp stamps
 * every message; -F FORMAT reads key, value, timestamp and headers from
 * each line by a template (see parse_line).  Headers (-H k=v), a fixed partition (-p),
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
            "  -k, -K, --key-delimiter SEP\n"
            "                            split each line at the first SEP into key and value\n"
            "                            (\"k:\" is key k with an empty value)\n"
            "  -Z, --null-empty          send empty values (and empty keys) as null:\n"
            "                            \"k:\" with -K : -Z is a tombstone for key k\n"
            "  -H, --header key=value    add a header to every message (repeatable)\n"
            "      --timestamp TIME      message timestamp: ms since the epoch or\n"
            "                            2024-01-31T12:00:00Z (default: now)\n"
            "  -F, --input-format FMT    read each line by a template: %%k key, %%v value,\n"
            "                            %%T timestamp (ms), %%h headers k=v,k=v, %%%% a percent\n"
            "                            sign; other text must match literally. Each field\n"
            "                            ends where the text after it starts (the last at\n"
            "                            the end of the line), e.g. -F '%%T|%%h|%%k|%%v'\n"
            "  -p, --partition N         produce to partition N (default: partitioner)\n"
            "  -z, --compression CODEC   none, gzip, snappy, lz4 or zstd\n"
            "      --acks ACKS           0, 1 or all (default all)\n"
            "      --linger DURATION     batch for up to this long (default 5ms)\n");
}

/* One input line split per -F template. Views into the line (modified in
 * place: header separators become NULs). */
typedef struct line_fields {
    const char *key, *val, *hdrs;
    size_t klen, vlen, hlen;
    bool has_key, has_val, has_hdrs;
    int64_t ts; /* 0: none (librdkafka stamps now) */
} line_fields_t;

/* Check -F: only %k %v %T %h %% fields, each at most once, and two fields
 * never side by side (nothing would say where the first ends). */
static const char *check_input_format(const char *fmt)
{
    int seen[128] = {0};
    bool prev_field = false;
    for (const char *p = fmt; *p; p++) {
        if (*p != '%') {
            prev_field = false;
            continue;
        }
        p++;
        if (*p == '%') {
            prev_field = false;
            continue;
        }
        if (!*p || !strchr("kvTh", *p))
            return "unknown field (use %k %v %T %h %%)";
        if (seen[(int)*p]++)
            return "a field appears twice";
        if (prev_field)
            return "two fields side by side need text between them";
        prev_field = true;
    }
    return NULL;
}

/* Split line (n bytes) by the template. Returns false when a literal part
 * of the template is not found or a timestamp is not a number. */
static bool parse_line(const char *fmt, char *line, size_t n, line_fields_t *lf)
{
    memset(lf, 0, sizeof *lf);
    size_t pos = 0;
    for (const char *p = fmt; *p;) {
        if (*p != '%' || p[1] == '%') {
            /* literal text up to the next field */
            char c = *p;
            p += c == '%' ? 2 : 1;
            if (pos >= n || line[pos] != c)
                return false;
            pos++;
            continue;
        }
        char field = p[1];
        p += 2;
        /* the literal after this field (up to the next '%' field or end) */
        char lit[64];
        size_t litlen = 0;
        for (const char *q = p; *q && litlen < sizeof lit - 1; q++) {
            if (*q == '%' && q[1] != '%')
                break;
            lit[litlen++] = *q;
            if (*q == '%')
                q++;
        }
        size_t end = n;
        if (litlen) {
            char *hit = memmem(line + pos, n - pos, lit, litlen);
            if (!hit)
                return false;
            end = (size_t)(hit - line);
        }
        const char *v = line + pos;
        size_t vl = end - pos;
        switch (field) {
        case 'k': lf->key = v, lf->klen = vl, lf->has_key = true; break;
        case 'v': lf->val = v, lf->vlen = vl, lf->has_val = true; break;
        case 'h': lf->hdrs = v, lf->hlen = vl, lf->has_hdrs = vl > 0; break;
        case 'T': {
            char buf[64];
            if (vl >= sizeof buf)
                return false;
            memcpy(buf, v, vl);
            buf[vl] = 0;
            if (vl && (!cli_parse_datetime_ms(buf, &lf->ts) || lf->ts < 0))
                return false;
            break;
        }
        }
        pos = end;
    }
    return pos == n;
}

/* Add "k=v,k=v" (n bytes) to headers; false on an entry without '='. */
static bool add_line_headers(rd_kafka_headers_t *h, const char *s, size_t n)
{
    size_t i = 0;
    while (i < n) {
        const char *e = memchr(s + i, ',', n - i);
        size_t elen = e ? (size_t)(e - (s + i)) : n - i;
        const char *eq = memchr(s + i, '=', elen);
        if (!eq || eq == s + i)
            return false;
        rd_kafka_header_add(h, s + i, eq - (s + i), eq + 1, (ssize_t)(s + i + elen - eq - 1));
        i += elen + 1;
    }
    return true;
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
    static const cli_opt_t opts[] = {{"key-delimiter", 1, 'k'}, {NULL, 1, 'K'},
                                     {"header", 1, 'H'},
                                     {"partition", 1, 'p'},     {"compression", 1, 'z'},
                                     {"acks", 1, 'a'},          {"linger", 1, 'l'},
                                     {"null-empty", 0, 'Z'},    {"timestamp", 1, 'T'},
                                     {"input-format", 1, 'F'},  {0}};
    cli_args_t a;
    cli_args_init(&a, "produce", argc, argv);
    const char *topic = NULL, *keysep = NULL, *codec = "none", *acks = "all", *infmt = NULL;
    bool null_empty = false;
    int64_t fixed_ts = 0, bad_lines = 0;
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
        case 'Z': null_empty = true; break;
        case 'T':
            if (!cli_parse_datetime_ms(a.arg, &fixed_ts) || fixed_ts <= 0) {
                rc = cli_usage_fail(a.cmd, "bad --timestamp '%s' (ms or 2024-01-31T12:00:00Z)",
                                    a.arg);
                goto out;
            }
            break;
        case 'F': {
            const char *why = check_input_format(a.arg);
            if (why) {
                rc = cli_usage_fail(a.cmd, "bad -F '%s': %s", a.arg, why);
                goto out;
            }
            infmt = a.arg;
            break;
        }
        case 'k':
        case 'K':
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
    if (infmt && keysep) {
        rc = cli_usage_fail(a.cmd, "-F and -k both say where the key is: use one");
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
    int64_t lineno = 0;
    while ((n = getline(&line, &cap, stdin)) >= 0) {
        lineno++;
        if (n > 0 && line[n - 1] == '\n')
            line[--n] = 0;
        const char *key = NULL, *val = line;
        size_t klen = 0, vlen = (size_t)n;
        int64_t ts = fixed_ts;
        rd_kafka_headers_t *mh = headers ? rd_kafka_headers_copy(headers) : NULL;
        if (infmt) {
            line_fields_t lf;
            if (!parse_line(infmt, line, (size_t)n, &lf)) {
                cli_warn("line %lld does not match -F '%s': skipped", (long long)lineno, infmt);
                bad_lines++;
                if (mh)
                    rd_kafka_headers_destroy(mh);
                continue;
            }
            key = lf.has_key ? lf.key : NULL;
            klen = lf.klen;
            val = lf.has_val ? lf.val : NULL;
            vlen = lf.vlen;
            if (lf.ts)
                ts = lf.ts;
            if (lf.has_hdrs) {
                if (!mh)
                    mh = rd_kafka_headers_new(4);
                if (!add_line_headers(mh, lf.hdrs, lf.hlen)) {
                    cli_warn("line %lld: headers must be k=v,k=v: skipped", (long long)lineno);
                    bad_lines++;
                    rd_kafka_headers_destroy(mh);
                    continue;
                }
            }
        } else if (keysep) {
            char *s = memmem(line, (size_t)n, keysep, seplen);
            if (s) {
                key = line;
                klen = (size_t)(s - line);
                val = s + seplen;
                vlen = (size_t)n - klen - seplen;
            }
        }
        if (null_empty && val && vlen == 0)
            val = NULL; /* a tombstone */
        if (null_empty && key && klen == 0)
            key = NULL;
        for (;;) {
            rd_kafka_resp_err_t err = rd_kafka_producev(
                k.rk, RD_KAFKA_V_TOPIC(topic), RD_KAFKA_V_PARTITION(partition),
                RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY), RD_KAFKA_V_KEY(key, klen),
                RD_KAFKA_V_VALUE((void *)val, val ? vlen : 0), RD_KAFKA_V_TIMESTAMP(ts),
                RD_KAFKA_V_HEADERS(mh), RD_KAFKA_V_OPAQUE(&st), RD_KAFKA_V_END);
            if (err == RD_KAFKA_RESP_ERR__QUEUE_FULL) {
                rd_kafka_poll(k.rk, 100);
                continue;
            }
            if (err) {
                rc = cli_fail("produce to '%s': %s", topic, rd_kafka_err2str(err));
                if (mh)
                    rd_kafka_headers_destroy(mh); /* not taken on failure */
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
    if (bad_lines)
        fprintf(stderr, "samsa: %lld input line%s skipped (not matching -F)\n",
                (long long)bad_lines, bad_lines == 1 ? "" : "s");
    if (st.failed || bad_lines)
        rc = CLI_EXIT_FAIL;
out:
    if (headers)
        rd_kafka_headers_destroy(headers);
    cli_rk_destroy(&k);
    free(hdrs);
    return rc;
}
