/*
 * consume.c - `samsa consume TOPIC...`: print messages.
 *
 * Two modes, both on librdkafka's KafkaConsumer:
 *  - without -g: partitions are assigned directly (no group membership, no
 *    commits; a private group.id only satisfies librdkafka), starting at -o
 *    (default beginning);
 *  - with -g GROUP: subscribe as a group member; committed offsets are used
 *    and progress is committed (auto-commit plus a final synchronous commit).
 *    -o beginning|end chooses where to start without a committed offset;
 *    other -o forms are applied to every partition the group assigns us.
 * Output: -f FORMAT with kcat-like fields, or one JSON object per line with
 * --format json, default the value per line. -e stops once every assigned
 * partition has reached its end; -n after COUNT messages; SIGINT/SIGTERM
 * stop cleanly (the group's offsets are committed on the way out).
 * An absolute -o out of a partition's range is reported (librdkafka's
 * auto.offset.reset=error event) and the partition restarts at its first
 * offset; brokers unreachable for --timeout end the command with exit 1
 * (saying the group's commit failed) instead of a silent endless retry.
 * Main thread only (the rebalance callback runs inside consumer_poll).
 */
#include "cli.h"
#include "out.h"

#include <signal.h>
#include <unistd.h>
#include <stdlib.h>
#include <string.h>

static void consume_usage(FILE *f)
{
    fprintf(f,
            "usage: samsa consume TOPIC... [options]\n"
            "  -o, --offset OFFSET    beginning (default), end, N (absolute), -N (N before the\n"
            "                         end of each partition), @TIME (first message at or after\n"
            "                         TIME: ms since the epoch or 2024-01-31T12:00:00Z)\n"
            "  -p, --partition N      only partition N (repeatable; not with -g)\n"
            "  -n, --count COUNT      exit after COUNT messages\n"
            "  -e, --exit             exit when every partition has reached its end\n"
            "  -g, --group GROUP      consume as a member of GROUP and commit offsets\n"
            "  -f, --fmt FORMAT       output format; fields: %%t topic, %%p partition,\n"
            "                         %%o offset, %%k key, %%K key length, %%v (or %%s) value,\n"
            "                         %%S value length, %%h headers (k=v,...), %%T timestamp (ms),\n"
            "                         %%%% a percent sign; escapes \\n \\t \\r \\\\ (default \"%%v\\n\")\n"
            "  --format json          one JSON object per message instead\n");
}

typedef enum { OFS_BEGIN, OFS_END, OFS_ABS, OFS_TAIL, OFS_TIME } ofs_kind_t;

typedef struct consume_state {
    cli_rk_t k;
    ofs_kind_t ofs_kind;
    int64_t ofs_val;
    bool group_mode, explicit_offset;
    /* partitions currently assigned and whether each is at its end */
    rd_kafka_topic_partition_list_t *assigned;
    bool *at_eof;
    char fatal[512];
} consume_state_t;

static volatile sig_atomic_t stop_flag;
/* First signal: stop cleanly (commit, leave the group). A second one while
 * that hangs (e.g. the broker went away) exits at once. */
static void on_signal(int sig)
{
    if (stop_flag)
        _exit(128 + sig);
    stop_flag = 1;
}

static bool parse_offset(const char *s, ofs_kind_t *kind, int64_t *val)
{
    if (strcmp(s, "beginning") == 0 || strcmp(s, "earliest") == 0 || strcmp(s, "start") == 0) {
        *kind = OFS_BEGIN;
        return true;
    }
    if (strcmp(s, "end") == 0 || strcmp(s, "latest") == 0) {
        *kind = OFS_END;
        return true;
    }
    if (s[0] == '@') {
        *kind = OFS_TIME;
        return cli_parse_datetime_ms(s + 1, val);
    }
    if (!cli_parse_i64(s, val))
        return false;
    if (*val < 0) {
        *kind = OFS_TAIL;
        *val = -*val;
    } else {
        *kind = OFS_ABS;
    }
    return true;
}

/* Fill the start offsets of list per the -o choice (timestamps resolved
 * with OffsetsForTimes; partitions with no message at/after the time start
 * at the end, as Kafka does). */
static bool apply_offsets(consume_state_t *st, rd_kafka_topic_partition_list_t *list)
{
    for (int i = 0; i < list->cnt; i++) {
        rd_kafka_topic_partition_t *p = &list->elems[i];
        switch (st->ofs_kind) {
        case OFS_BEGIN: p->offset = RD_KAFKA_OFFSET_BEGINNING; break;
        case OFS_END: p->offset = RD_KAFKA_OFFSET_END; break;
        case OFS_ABS: p->offset = st->ofs_val; break;
        case OFS_TAIL: p->offset = RD_KAFKA_OFFSET_TAIL(st->ofs_val); break;
        case OFS_TIME: p->offset = st->ofs_val; break;
        }
    }
    if (st->ofs_kind != OFS_TIME)
        return true;
    rd_kafka_resp_err_t err = rd_kafka_offsets_for_times(st->k.rk, list, cli_g.timeout_ms);
    if (err) {
        cli_fail("offsets for time %lld: %s", (long long)st->ofs_val, rd_kafka_err2str(err));
        return false;
    }
    for (int i = 0; i < list->cnt; i++)
        if (list->elems[i].err || list->elems[i].offset < 0)
            list->elems[i].offset = RD_KAFKA_OFFSET_END;
    return true;
}

static void set_assignment(consume_state_t *st, const rd_kafka_topic_partition_list_t *l)
{
    if (st->assigned)
        rd_kafka_topic_partition_list_destroy(st->assigned);
    free(st->at_eof);
    st->assigned = l ? rd_kafka_topic_partition_list_copy(l) : NULL;
    st->at_eof = calloc(l && l->cnt ? (size_t)l->cnt : 1, sizeof(bool));
}

static void rebalance_cb(rd_kafka_t *rk, rd_kafka_resp_err_t err,
                         rd_kafka_topic_partition_list_t *parts, void *opaque)
{
    consume_state_t *st = (consume_state_t *)opaque;
    if (err == RD_KAFKA_RESP_ERR__ASSIGN_PARTITIONS) {
        if (st->explicit_offset && !apply_offsets(st, parts))
            snprintf(st->fatal, sizeof st->fatal, "cannot resolve start offsets");
        cli_debug("assigned %d partitions", parts->cnt);
        rd_kafka_assign(rk, parts);
        set_assignment(st, parts);
    } else {
        cli_debug("revoked %d partitions", parts->cnt);
        rd_kafka_assign(rk, NULL);
        set_assignment(st, NULL);
    }
}

static void hook(rd_kafka_conf_t *conf, void *arg)
{
    consume_state_t *st = arg;
    if (st->group_mode)
        rd_kafka_conf_set_rebalance_cb(conf, rebalance_cb);
}

/* Mark a partition's EOF state; returns true when every assigned partition
 * is at its end. */
static bool note_eof(consume_state_t *st, const char *topic, int32_t part, bool eof)
{
    if (!st->assigned)
        return false;
    bool all = st->assigned->cnt > 0;
    for (int i = 0; i < st->assigned->cnt; i++) {
        rd_kafka_topic_partition_t *p = &st->assigned->elems[i];
        if (p->partition == part && strcmp(p->topic, topic) == 0)
            st->at_eof[i] = eof;
        all = all && st->at_eof[i];
    }
    return all;
}

/* Check a -f format before anything is consumed: an unknown field is a
 * typo the user must hear about, not text to print. Returns NULL when the
 * format is good, else the offending field ("%Z", or "%" at the end). */
static const char *check_fmt(const char *fmt, char *bad, size_t badlen)
{
    for (const char *p = fmt; *p; p++) {
        if (*p == '\\' && p[1]) {
            p++;
            continue;
        }
        if (*p != '%')
            continue;
        if (!p[1]) {
            snprintf(bad, badlen, "%%");
            return bad;
        }
        p++;
        if (!strchr("tpokKvsShT%", *p)) {
            snprintf(bad, badlen, "%%%c", *p);
            return bad;
        }
    }
    return NULL;
}

static void put_escaped_fmt(FILE *f, const char *fmt, const rd_kafka_message_t *m,
                            const char *topic)
{
    for (const char *p = fmt; *p; p++) {
        if (*p == '\\' && p[1]) {
            p++;
            char c = *p == 'n' ? '\n' : *p == 't' ? '\t' : *p == 'r' ? '\r' : *p == '0' ? 0 : *p;
            fputc(c, f);
            continue;
        }
        if (*p != '%' || !p[1]) {
            fputc(*p, f);
            continue;
        }
        p++;
        switch (*p) {
        case 't': fputs(topic, f); break;
        case 'p': fprintf(f, "%d", m->partition); break;
        case 'o': fprintf(f, "%lld", (long long)m->offset); break;
        case 'k':
            if (m->key)
                fwrite(m->key, 1, m->key_len, f);
            break;
        case 'K': fprintf(f, "%lld", m->key ? (long long)m->key_len : -1LL); break;
        case 's':
        case 'v':
            if (m->payload)
                fwrite(m->payload, 1, m->len, f);
            break;
        case 'S': fprintf(f, "%lld", m->payload ? (long long)m->len : -1LL); break;
        case 'T': {
            rd_kafka_timestamp_type_t tt;
            fprintf(f, "%lld", (long long)rd_kafka_message_timestamp(m, &tt));
            break;
        }
        case 'h': {
            rd_kafka_headers_t *h = NULL;
            if (rd_kafka_message_headers(m, &h) == RD_KAFKA_RESP_ERR_NO_ERROR && h) {
                const char *name;
                const void *val;
                size_t sz;
                for (size_t i = 0; !rd_kafka_header_get_all(h, i, &name, &val, &sz); i++) {
                    fprintf(f, "%s%s=", i ? "," : "", name);
                    if (val)
                        fwrite(val, 1, sz, f);
                }
            }
            break;
        }
        default: fputc('%', f); break; /* "%%" (check_fmt refused the rest) */
        }
    }
}

/* librdkafka could not start a partition where -o asked (auto.offset.reset
 * is "error" for an absolute -o, so it reports instead of silently moving):
 * say so, then start from the log's first offset as Kafka's "earliest"
 * would. requested is the offset that failed (from the error event, else
 * the -o value). */
static void on_offset_reset(consume_state_t *st, const char *topic, int32_t part,
                            int64_t requested)
{
    int64_t lo, hi;
    char where[64];
    if (requested < 0 && st->ofs_kind == OFS_ABS)
        requested = st->ofs_val;
    if (!cli_rk_watermarks(&st->k, topic, part, &lo, &hi)) {
        cli_warn("%s [%d]: offset %lld is out of range; starting from the beginning", topic,
                 part, (long long)requested);
        lo = RD_KAFKA_OFFSET_BEGINNING;
    } else {
        if (requested >= hi)
            snprintf(where, sizeof where, "log ends at %lld", (long long)hi);
        else
            snprintf(where, sizeof where, "log starts at %lld", (long long)lo);
        cli_warn("%s [%d]: offset %lld is out of range (%s); starting from the beginning "
                 "(offset %lld)",
                 topic, part, (long long)requested, where, (long long)lo);
    }
    /* After the error librdkafka has stopped fetching the partition, and a
     * seek needs a running fetcher: assign again, every other partition at
     * its current position (or its original start if it has none yet). */
    if (!st->assigned)
        return;
    rd_kafka_topic_partition_list_t *l = rd_kafka_topic_partition_list_copy(st->assigned);
    rd_kafka_topic_partition_list_t *pos = rd_kafka_topic_partition_list_copy(st->assigned);
    if (rd_kafka_position(st->k.rk, pos) != RD_KAFKA_RESP_ERR_NO_ERROR)
        pos->cnt = 0;
    for (int i = 0; i < l->cnt; i++) {
        rd_kafka_topic_partition_t *p = &l->elems[i];
        if (p->partition == part && strcmp(p->topic, topic) == 0)
            p->offset = lo;
        else if (i < pos->cnt && pos->elems[i].offset >= 0)
            p->offset = pos->elems[i].offset;
    }
    rd_kafka_resp_err_t err = rd_kafka_assign(st->k.rk, l);
    if (err)
        cli_warn("%s [%d]: cannot restart at %lld: %s", topic, part, (long long)lo,
                 rd_kafka_err2str(err));
    rd_kafka_topic_partition_list_destroy(pos);
    rd_kafka_topic_partition_list_destroy(l);
}

static void put_json(cli_json_t *j, const rd_kafka_message_t *m, const char *topic)
{
    rd_kafka_timestamp_type_t tt;
    cli_json_obj_begin(j);
    cli_json_kstr(j, "topic", topic);
    cli_json_kint(j, "partition", m->partition);
    cli_json_kint(j, "offset", m->offset);
    cli_json_kint(j, "timestamp", rd_kafka_message_timestamp(m, &tt));
    cli_json_key(j, "key");
    cli_json_strn(j, m->key, m->key_len);
    cli_json_key(j, "value");
    cli_json_strn(j, m->payload, m->len);
    cli_json_key(j, "headers");
    cli_json_arr_begin(j);
    rd_kafka_headers_t *h = NULL;
    if (rd_kafka_message_headers(m, &h) == RD_KAFKA_RESP_ERR_NO_ERROR && h) {
        const char *name;
        const void *val;
        size_t sz;
        for (size_t i = 0; !rd_kafka_header_get_all(h, i, &name, &val, &sz); i++) {
            cli_json_obj_begin(j);
            cli_json_kstr(j, "key", name);
            cli_json_key(j, "value");
            cli_json_strn(j, val, sz);
            cli_json_obj_end(j);
        }
    }
    cli_json_arr_end(j);
    cli_json_obj_end(j);
    cli_json_done(j);
}

int cli_cmd_consume(int argc, char **argv)
{
    static const cli_opt_t opts[] = {{"offset", 1, 'o'},    {"count", 1, 'n'},
                                     {"group", 1, 'g'},     {"fmt", 1, 'f'},
                                     {"exit", 0, 'e'},      {"partition", 1, 'p'},
                                     {0}};
    cli_args_t a;
    cli_args_init(&a, "consume", argc, argv);
    consume_state_t *st = calloc(1, sizeof *st);
    const char **topics = calloc((size_t)argc + 1, sizeof *topics);
    int32_t *only = calloc((size_t)argc + 1, sizeof *only);
    int ntopics = 0, nonly = 0, c, rc = CLI_EXIT_OK;
    int64_t count = -1, seen = 0;
    const char *group = NULL, *fmt = "%v\\n";
    bool exit_eof = false;
    st->ofs_kind = OFS_BEGIN;
    while ((c = cli_getopt(&a, opts)) != -1) {
        switch (c) {
        case 0: topics[ntopics++] = a.arg; break;
        case 'o':
            if (!parse_offset(a.arg, &st->ofs_kind, &st->ofs_val)) {
                rc = cli_usage_fail(a.cmd, "bad offset '%s'", a.arg);
                goto out;
            }
            st->explicit_offset = true;
            break;
        case 'n':
            if (!cli_parse_i64(a.arg, &count) || count < 0) {
                rc = cli_usage_fail(a.cmd, "bad count '%s'", a.arg);
                goto out;
            }
            break;
        case 'g': group = a.arg; break;
        case 'f': fmt = a.arg; break;
        case 'e': exit_eof = true; break;
        case 'p':
            if (!cli_parse_i32(a.arg, 0, INT32_MAX, &only[nonly])) {
                rc = cli_usage_fail(a.cmd, "bad partition '%s'", a.arg);
                goto out;
            }
            nonly++;
            break;
        case 'h': consume_usage(stdout); goto out;
        default: rc = CLI_EXIT_USAGE; goto out;
        }
    }
    if (ntopics == 0) {
        rc = cli_usage_fail(a.cmd, "at least one topic required");
        goto out;
    }
    char badf[8];
    if (check_fmt(fmt, badf, sizeof badf)) {
        rc = cli_usage_fail(a.cmd,
                            "unknown format field '%s' in -f '%s' (fields: %%t %%p %%o %%k "
                            "%%K %%v %%s %%S %%h %%T %%%%)",
                            badf, fmt);
        goto out;
    }
    if (group && nonly) {
        rc = cli_usage_fail(a.cmd, "-p cannot be used with -g (the group assigns partitions)");
        goto out;
    }
    st->group_mode = group != NULL;
    /* With a group, beginning/end only choose the reset policy so committed
     * offsets keep working; other forms override on each assignment. */
    if (st->group_mode && (st->ofs_kind == OFS_BEGIN || st->ofs_kind == OFS_END))
        st->explicit_offset = false;
    /* An absolute -o that is out of range must be reported, not silently
     * reset: "error" makes librdkafka raise an event we handle below. */
    const char *reset = st->ofs_kind == OFS_END   ? "latest"
                        : st->ofs_kind == OFS_ABS ? "error"
                                                  : "earliest";
    char gid[64];
    snprintf(gid, sizeof gid, "samsa-consume-%d", (int)getpid());
    const char *extra[] = {"group.id", group ? group : gid,
                           "enable.auto.commit", group ? "true" : "false",
                           "auto.offset.reset", reset,
                           "enable.partition.eof", exit_eof ? "true" : "false",
                           "session.timeout.ms", "10000",
                           NULL};
    if (!cli_rk_new(&st->k, RD_KAFKA_CONSUMER, extra, hook, st)) {
        rc = CLI_EXIT_FAIL;
        goto out;
    }
    /* The rebalance callback needs st; librdkafka passes the conf opaque,
     * which cli_rk_new set to &st->k, the first member of st. */
    const struct rd_kafka_metadata *md;
    if (!cli_rk_metadata(&st->k, NULL, &md)) {
        rc = CLI_EXIT_FAIL;
        goto out;
    }
    rd_kafka_topic_partition_list_t *list = rd_kafka_topic_partition_list_new(8);
    for (int i = 0; i < ntopics; i++) {
        const rd_kafka_metadata_topic_t *t = cli_md_topic(md, topics[i]);
        if (!t || t->err == RD_KAFKA_RESP_ERR_UNKNOWN_TOPIC_OR_PART) {
            rc = cli_fail("topic '%s' does not exist", topics[i]);
            continue;
        }
        if (nonly) {
            for (int q = 0; q < nonly; q++) {
                if (only[q] >= t->partition_cnt)
                    rc = cli_fail("topic '%s' has %d partitions, no partition %d", topics[i],
                                  t->partition_cnt, only[q]);
                else
                    rd_kafka_topic_partition_list_add(list, topics[i], only[q]);
            }
        } else {
            for (int p = 0; p < t->partition_cnt; p++)
                rd_kafka_topic_partition_list_add(list, topics[i], t->partitions[p].id);
        }
    }
    rd_kafka_metadata_destroy(md);
    if (rc) {
        rd_kafka_topic_partition_list_destroy(list);
        goto out;
    }
    rd_kafka_poll_set_consumer(st->k.rk);
    rd_kafka_resp_err_t err;
    if (group) {
        rd_kafka_topic_partition_list_t *sub = rd_kafka_topic_partition_list_new(ntopics);
        for (int i = 0; i < ntopics; i++)
            rd_kafka_topic_partition_list_add(sub, topics[i], RD_KAFKA_PARTITION_UA);
        err = rd_kafka_subscribe(st->k.rk, sub);
        rd_kafka_topic_partition_list_destroy(sub);
    } else {
        if (!apply_offsets(st, list)) {
            rd_kafka_topic_partition_list_destroy(list);
            rc = CLI_EXIT_FAIL;
            goto out;
        }
        err = rd_kafka_assign(st->k.rk, list);
        set_assignment(st, list);
    }
    rd_kafka_topic_partition_list_destroy(list);
    if (err) {
        rc = cli_fail("cannot %s: %s", group ? "subscribe" : "assign", rd_kafka_err2str(err));
        goto out;
    }
    signal(SIGINT, on_signal);
    signal(SIGTERM, on_signal);
    signal(SIGPIPE, SIG_IGN);
    cli_json_t j;
    cli_json_init(&j, stdout);
    bool done = count == 0, ever_assigned = !group, warned = false;
    int64_t join_deadline = sm_now_mono_ms() + 3LL * cli_g.timeout_ms;
    bool gave_up = false;
    while (!done && !stop_flag) {
        rd_kafka_message_t *m = rd_kafka_consumer_poll(st->k.rk, 200);
        /* Brokers gone (librdkafka retries forever, silently): after
         * --timeout of connection errors with nothing received, and a last
         * metadata probe, give up and say so, rather than hang or leave with
         * nothing said and nothing committed. */
        if (m && (!m->err || m->err == RD_KAFKA_RESP_ERR__PARTITION_EOF)) {
            st->k.conn_err_ms = 0;
        } else if (st->k.conn_err_ms &&
                   sm_now_mono_ms() - st->k.conn_err_ms > cli_g.timeout_ms) {
            if (cli_rk_probe(&st->k)) {
                st->k.conn_err_ms = 0; /* a broker answers: keep going */
                st->k.all_down = 0;
            } else {
                gave_up = true;
                st->k.all_down = 1;
                if (m)
                    rd_kafka_message_destroy(m);
                break;
            }
        }
        /* A group that never assigns us anything (coordinator down, group
         * bigger than the partition count) must not look like a silent
         * hang: warn, and with -e give up. */
        ever_assigned = ever_assigned || (st->assigned && st->assigned->cnt > 0);
        if (!ever_assigned && !warned && sm_now_mono_ms() > join_deadline) {
            if (exit_eof) {
                rc = cli_fail("group '%s' assigned no partitions within %lld ms%s%s", group,
                              3LL * cli_g.timeout_ms, st->k.fatal[0] ? ": " : "", st->k.fatal);
                if (m)
                    rd_kafka_message_destroy(m);
                break;
            }
            cli_warn("still waiting for group '%s' to assign partitions", group);
            warned = true;
        }
        if (st->fatal[0]) {
            rc = cli_fail("%s", st->fatal);
            if (m)
                rd_kafka_message_destroy(m);
            break;
        }
        if (!m) {
            fflush(stdout); /* idle: let a reader on a pipe see what we have */
            continue;
        }
        const char *topic = m->rkt ? rd_kafka_topic_name(m->rkt) : "";
        if (m->err == RD_KAFKA_RESP_ERR__PARTITION_EOF) {
            if (exit_eof && note_eof(st, topic, m->partition, true))
                done = true;
        } else if (m->err == RD_KAFKA_RESP_ERR__AUTO_OFFSET_RESET) {
            cli_debug("%s", rd_kafka_message_errstr(m));
            on_offset_reset(st, topic, m->partition, m->offset);
        } else if (m->err) {
            if (m->err == RD_KAFKA_RESP_ERR_UNKNOWN_TOPIC_OR_PART ||
                m->err == RD_KAFKA_RESP_ERR__UNKNOWN_TOPIC ||
                m->err == RD_KAFKA_RESP_ERR__UNKNOWN_PARTITION ||
                m->err == RD_KAFKA_RESP_ERR_TOPIC_AUTHORIZATION_FAILED ||
                m->err == RD_KAFKA_RESP_ERR_GROUP_AUTHORIZATION_FAILED ||
                m->err == RD_KAFKA_RESP_ERR__FATAL) {
                rc = cli_fail("%s%s%s", topic, *topic ? ": " : "", rd_kafka_message_errstr(m));
                done = true;
            } else {
                cli_warn("%s%s%s", topic, *topic ? ": " : "", rd_kafka_message_errstr(m));
            }
        } else {
            if (exit_eof)
                note_eof(st, topic, m->partition, false);
            if (cli_g.format == CLI_FMT_JSON)
                put_json(&j, m, topic);
            else
                put_escaped_fmt(stdout, fmt, m, topic);
            if (ferror(stdout)) {
                done = true; /* reader went away (e.g. piped into head) */
            }
            if (++seen == count)
                done = true;
        }
        rd_kafka_message_destroy(m);
    }
    fflush(stdout);
    /* Stopped (Ctrl-C, -n, -e) right after connection errors: check a
     * broker still answers before a commit that would wait for one. */
    if (!st->k.all_down && st->k.conn_err_ms && !cli_rk_probe(&st->k))
        st->k.all_down = 1;
    if (st->k.all_down) {
        /* No broker to commit to or leave the group with: librdkafka would
         * wait for one forever, so skip both (say so when it matters). */
        if (group)
            rc = cli_fail("cannot reach any broker in '%s': commit failed, offsets of group "
                          "'%s' not committed%s%s",
                          cli_g.brokers, group, st->k.fatal[0] ? ": " : "", st->k.fatal);
        else if (gave_up)
            rc = cli_fail("cannot reach any broker in '%s' for %d ms%s%s", cli_g.brokers,
                          cli_g.timeout_ms, st->k.fatal[0] ? ": " : "", st->k.fatal);
        rd_kafka_destroy_flags(st->k.rk, RD_KAFKA_DESTROY_F_NO_CONSUMER_CLOSE);
        st->k.rk = NULL;
        goto out;
    }
    if (group) {
        err = rd_kafka_commit(st->k.rk, NULL, 0);
        if (err && err != RD_KAFKA_RESP_ERR__NO_OFFSET)
            rc = cli_fail("commit offsets of group '%s': %s", group, rd_kafka_err2str(err));
    }
    rd_kafka_consumer_close(st->k.rk);
    cli_debug("consumed %lld messages", (long long)seen);
out:
    cli_rk_destroy(&st->k);
    if (st->assigned)
        rd_kafka_topic_partition_list_destroy(st->assigned);
    free(st->at_eof);
    free(st);
    free(topics);
    free(only);
    return rc;
}
