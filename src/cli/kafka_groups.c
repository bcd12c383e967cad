/*
 * kafka_groups.c - kafka-consumer-groups.sh (see kafka.h), on librdkafka's
 * group admin calls (ListConsumerGroups, DescribeConsumerGroups,
 * ListConsumerGroupOffsets, AlterConsumerGroupOffsets, DeleteGroups,
 * DeleteConsumerGroupOffsets) and watermark queries.
 *
 * Output follows Kafka's: each table starts with an empty line, columns are
 * left-aligned with widths from the longest value (at least 15), "-" for a
 * missing value. --describe shows offsets (GROUP TOPIC PARTITION
 * CURRENT-OFFSET LOG-END-OFFSET LAG CONSUMER-ID HOST CLIENT-ID), --members
 * (with --verbose the ASSIGNMENT) or --state. A group that does not exist,
 * has no members or is rebalancing gets Kafka's note on stderr.
 *
 * --reset-offsets plans new offsets (--to-earliest, --to-latest,
 * --to-current, --to-offset, --shift-by, --to-datetime, --by-duration),
 * clamped into [log start, log end] as Kafka does, prints GROUP TOPIC
 * PARTITION NEW-OFFSET, and commits them only with --execute, which is
 * refused while the group has live members. Main thread only.
 */
#include "kafka.h"

#include <ctype.h>
#include <stdlib.h>
#include <string.h>

#define KG "kafka-consumer-groups.sh"
#define MISSING "-"

enum {
    O_LIST = KO_FIRST_FREE, O_DESCRIBE, O_DELETE, O_RESET, O_DELETE_OFFSETS, O_GROUP,
    O_ALL_GROUPS, O_TOPIC, O_ALL_TOPICS, O_EARLIEST, O_LATEST, O_CURRENT, O_TO_OFFSET, O_SHIFT,
    O_DATETIME, O_DURATION, O_FROM_FILE, O_EXECUTE, O_DRY_RUN, O_EXPORT, O_MEMBERS, O_OFFSETS,
    O_STATE, O_VERBOSE, O_TIMEOUT, O_TYPE
};

typedef struct grp_opts {
    int action, nactions;
    char **groups;
    int ngroups;
    bool all_groups;
    char **topics;
    int ntopics;
    bool all_topics;
    int mode, nmodes;
    const char *mode_arg;
    bool execute, dry_run, export_csv;
    bool members, offsets, state, verbose;
    char **states; /* --list --state filter */
    int nstates;
} grp_opts_t;

static void usage(FILE *f)
{
    fprintf(f,
            "usage: kafka-consumer-groups.sh --bootstrap-server HOST:PORT [--command-config F]\n"
            "  --list [--state [STATE,...]]\n"
            "  --describe (--group G... | --all-groups) [--members [--verbose] | --offsets | "
            "--state]\n"
            "  --reset-offsets (--group G... | --all-groups) (--topic T[:P,...]... | "
            "--all-topics)\n"
            "      (--to-earliest | --to-latest | --to-current | --to-offset N | --shift-by N |\n"
            "       --to-datetime YYYY-MM-DDTHH:mm:SS.sss | --by-duration PnDTnHnMnS)\n"
            "      [--dry-run | --execute] [--export]\n"
            "  --delete (--group G... | --all-groups)\n"
            "  --delete-offsets --group G --topic T[:P,...]\n"
            "Samsa's implementation; see docs/KAFKA_SCRIPTS.md.\n");
}

/* ------------------------------------------------------------ admin calls */

static void call_list(rd_kafka_t *rk, rd_kafka_AdminOptions_t *o, rd_kafka_queue_t *q, void *a)
{
    rd_kafka_ListConsumerGroups(rk, o, q);
}

static void call_describe(rd_kafka_t *rk, rd_kafka_AdminOptions_t *o, rd_kafka_queue_t *q,
                          void *arg)
{
    rd_kafka_DescribeConsumerGroups(rk, (const char **)arg, 1, o, q);
}

static void call_list_offsets(rd_kafka_t *rk, rd_kafka_AdminOptions_t *o, rd_kafka_queue_t *q,
                              void *arg)
{
    rd_kafka_ListConsumerGroupOffsets_t *l = rd_kafka_ListConsumerGroupOffsets_new(arg, NULL);
    rd_kafka_ListConsumerGroupOffsets(rk, &l, 1, o, q);
    rd_kafka_ListConsumerGroupOffsets_destroy(l);
}

typedef struct alter_arg {
    const char *group;
    const rd_kafka_topic_partition_list_t *parts;
} alter_arg_t;

static void call_alter(rd_kafka_t *rk, rd_kafka_AdminOptions_t *o, rd_kafka_queue_t *q,
                       void *arg)
{
    alter_arg_t *x = arg;
    rd_kafka_AlterConsumerGroupOffsets_t *a =
        rd_kafka_AlterConsumerGroupOffsets_new(x->group, x->parts);
    rd_kafka_AlterConsumerGroupOffsets(rk, &a, 1, o, q);
    rd_kafka_AlterConsumerGroupOffsets_destroy(a);
}

static void call_delete_offsets(rd_kafka_t *rk, rd_kafka_AdminOptions_t *o, rd_kafka_queue_t *q,
                                void *arg)
{
    alter_arg_t *x = arg;
    rd_kafka_DeleteConsumerGroupOffsets_t *d =
        rd_kafka_DeleteConsumerGroupOffsets_new(x->group, x->parts);
    rd_kafka_DeleteConsumerGroupOffsets(rk, &d, 1, o, q);
    rd_kafka_DeleteConsumerGroupOffsets_destroy(d);
}

typedef struct del_arg {
    rd_kafka_DeleteGroup_t **g;
    size_t n;
} del_arg_t;

static void call_delete(rd_kafka_t *rk, rd_kafka_AdminOptions_t *o, rd_kafka_queue_t *q,
                        void *arg)
{
    del_arg_t *d = arg;
    rd_kafka_DeleteGroups(rk, d->g, d->n, o, q);
}

static int cmp_str(const void *x, const void *y)
{
    return strcmp(*(char *const *)x, *(char *const *)y);
}

/* Every group id, sorted (strdup'ed; caller frees), or -1. With states,
 * only groups in one of them (case-insensitive); st_out gets each state. */
static int list_groups(cli_rk_t *k, char ***out, char ***st_out)
{
    rd_kafka_event_t *ev =
        kafka_admin(k, RD_KAFKA_ADMIN_OP_LISTCONSUMERGROUPS, "list groups", call_list, NULL);
    if (!ev)
        return -1;
    const rd_kafka_ListConsumerGroups_result_t *r = rd_kafka_event_ListConsumerGroups_result(ev);
    size_t n;
    const rd_kafka_ConsumerGroupListing_t **ls = rd_kafka_ListConsumerGroups_result_valid(r, &n);
    size_t ne;
    const rd_kafka_error_t **errs = rd_kafka_ListConsumerGroups_result_errors(r, &ne);
    for (size_t i = 0; i < ne; i++)
        cli_warn("list groups: %s", rd_kafka_error_string(errs[i]));
    /* (id, state) pairs sorted by id */
    char **ids = sm_xcalloc(n + 1, sizeof *ids);
    for (size_t i = 0; i < n; i++) {
        const char *st =
            rd_kafka_consumer_group_state_name(rd_kafka_ConsumerGroupListing_state(ls[i]));
        size_t len = strlen(rd_kafka_ConsumerGroupListing_group_id(ls[i])) + strlen(st) + 2;
        ids[i] = sm_xmalloc(len);
        snprintf(ids[i], len, "%s%c%s", rd_kafka_ConsumerGroupListing_group_id(ls[i]), 0, st);
    }
    qsort(ids, n, sizeof *ids, cmp_str);
    if (st_out) {
        *st_out = sm_xcalloc(n + 1, sizeof **st_out);
        for (size_t i = 0; i < n; i++)
            (*st_out)[i] = ids[i] + strlen(ids[i]) + 1;
    }
    *out = ids;
    rd_kafka_event_destroy(ev);
    return (int)n;
}

/* Description of one group; *ev owns it. NULL (message printed). */
static const rd_kafka_ConsumerGroupDescription_t *describe_one(cli_rk_t *k, const char *group,
                                                               rd_kafka_event_t **ev)
{
    *ev = kafka_admin(k, RD_KAFKA_ADMIN_OP_DESCRIBECONSUMERGROUPS, "describe group",
                      call_describe, &group);
    if (!*ev)
        return NULL;
    size_t n;
    const rd_kafka_ConsumerGroupDescription_t **ds = rd_kafka_DescribeConsumerGroups_result_groups(
        rd_kafka_event_DescribeConsumerGroups_result(*ev), &n);
    if (n < 1) {
        cli_fail("describe group '%s': empty response", group);
        return NULL;
    }
    const rd_kafka_error_t *e = rd_kafka_ConsumerGroupDescription_error(ds[0]);
    if (e) {
        if (rd_kafka_error_code(e) == RD_KAFKA_RESP_ERR_GROUP_ID_NOT_FOUND)
            return ds[0]; /* reported as "does not exist" by the caller */
        cli_fail("group '%s': %s", group, rd_kafka_error_string(e));
        return NULL;
    }
    return ds[0];
}

static bool group_missing(const rd_kafka_ConsumerGroupDescription_t *d)
{
    const rd_kafka_error_t *e = rd_kafka_ConsumerGroupDescription_error(d);
    return (e && rd_kafka_error_code(e) == RD_KAFKA_RESP_ERR_GROUP_ID_NOT_FOUND) ||
           rd_kafka_ConsumerGroupDescription_state(d) == RD_KAFKA_CONSUMER_GROUP_STATE_DEAD;
}

/* Committed offsets (copy; caller destroys) or NULL (message printed). */
static rd_kafka_topic_partition_list_t *committed_offsets(cli_rk_t *k, const char *group)
{
    rd_kafka_event_t *ev = kafka_admin(k, RD_KAFKA_ADMIN_OP_LISTCONSUMERGROUPOFFSETS,
                                       "list group offsets", call_list_offsets, (void *)group);
    if (!ev)
        return NULL;
    size_t n;
    const rd_kafka_group_result_t **gr = rd_kafka_ListConsumerGroupOffsets_result_groups(
        rd_kafka_event_ListConsumerGroupOffsets_result(ev), &n);
    rd_kafka_topic_partition_list_t *out = NULL;
    if (n < 1) {
        cli_fail("list offsets of group '%s': empty response", group);
    } else if (rd_kafka_group_result_error(gr[0])) {
        cli_fail("group '%s': %s", group,
                 rd_kafka_error_string(rd_kafka_group_result_error(gr[0])));
    } else {
        const rd_kafka_topic_partition_list_t *p = rd_kafka_group_result_partitions(gr[0]);
        out = p ? rd_kafka_topic_partition_list_copy(p) : rd_kafka_topic_partition_list_new(0);
    }
    rd_kafka_event_destroy(ev);
    return out;
}

static int64_t committed_of(const rd_kafka_topic_partition_list_t *c, const char *t, int32_t p)
{
    rd_kafka_topic_partition_t *e =
        c ? rd_kafka_topic_partition_list_find((rd_kafka_topic_partition_list_t *)c, t, p) : NULL;
    return e && !e->err ? e->offset : -1;
}

/* Kafka's note for a group's state (stderr); false if nothing to print. */
static bool state_note(const char *group, const rd_kafka_ConsumerGroupDescription_t *d,
                       int nrows)
{
    if (group_missing(d)) {
        fprintf(stderr, "\nError: Consumer group '%s' does not exist.\n", group);
        return false;
    }
    rd_kafka_consumer_group_state_t s = rd_kafka_ConsumerGroupDescription_state(d);
    if (s == RD_KAFKA_CONSUMER_GROUP_STATE_EMPTY)
        fprintf(stderr, "\nConsumer group '%s' has no active members.\n", group);
    else if (s == RD_KAFKA_CONSUMER_GROUP_STATE_PREPARING_REBALANCE ||
             s == RD_KAFKA_CONSUMER_GROUP_STATE_COMPLETING_REBALANCE)
        fprintf(stderr, "\nWarning: Consumer group '%s' is rebalancing.\n", group);
    return nrows > 0;
}

static int widest(int w, const char *s)
{
    int n = (int)strlen(s);
    return n > w ? n : w;
}

/* ------------------------------------------------------------ describe */

typedef struct row {
    char *topic; /* NULL: member without assignment */
    int32_t partition;
    int64_t current, end;
    const char *consumer, *host, *client;
} row_t;

static int cmp_row(const void *x, const void *y)
{
    const row_t *a = x, *b = y;
    if (!a->topic || !b->topic)
        return (a->topic == NULL) - (b->topic == NULL);
    int c = strcmp(a->topic, b->topic);
    return c ? c : (a->partition > b->partition) - (a->partition < b->partition);
}

static void fmt_off(char *buf, size_t n, int64_t v)
{
    if (v < 0)
        snprintf(buf, n, MISSING);
    else
        snprintf(buf, n, "%" PRId64, v);
}

static int describe_offsets(cli_rk_t *k, const char *group,
                            const rd_kafka_ConsumerGroupDescription_t *d)
{
    rd_kafka_topic_partition_list_t *c = committed_offsets(k, group);
    if (!c)
        return CLI_EXIT_FAIL;
    size_t nm = rd_kafka_ConsumerGroupDescription_member_count(d);
    int cap = c->cnt + 16, n = 0;
    row_t *rows = sm_xcalloc((size_t)cap, sizeof *rows);
    for (size_t i = 0; i < nm; i++) {
        const rd_kafka_MemberDescription_t *m = rd_kafka_ConsumerGroupDescription_member(d, i);
        const rd_kafka_topic_partition_list_t *as =
            rd_kafka_MemberAssignment_partitions(rd_kafka_MemberDescription_assignment(m));
        int na = as ? as->cnt : 0;
        if (n + na + 1 >= cap) {
            cap = (n + na + 1) * 2;
            rows = realloc(rows, sizeof *rows * (size_t)cap);
            SM_ASSERT(rows);
        }
        row_t base = {.partition = -1, .current = -1, .end = -1,
                      .consumer = rd_kafka_MemberDescription_consumer_id(m),
                      .host = rd_kafka_MemberDescription_host(m),
                      .client = rd_kafka_MemberDescription_client_id(m)};
        if (na == 0)
            rows[n++] = base;
        for (int j = 0; j < na; j++) {
            row_t r = base;
            r.topic = as->elems[j].topic;
            r.partition = as->elems[j].partition;
            rows[n++] = r;
        }
    }
    /* committed partitions no member owns */
    for (int i = 0; i < c->cnt; i++) {
        bool owned = false;
        for (int j = 0; j < n && !owned; j++)
            owned = rows[j].topic && strcmp(rows[j].topic, c->elems[i].topic) == 0 &&
                    rows[j].partition == c->elems[i].partition;
        if (owned || c->elems[i].err || c->elems[i].offset < 0)
            continue;
        if (n + 1 >= cap) {
            cap *= 2;
            rows = realloc(rows, sizeof *rows * (size_t)cap);
            SM_ASSERT(rows);
        }
        rows[n++] = (row_t){.topic = c->elems[i].topic, .partition = c->elems[i].partition,
                            .consumer = MISSING, .host = MISSING, .client = MISSING};
    }
    int wg = widest(15, group), wt = 15, wc = 15, wh = 15;
    for (int i = 0; i < n; i++) {
        if (rows[i].topic) {
            int64_t lo;
            rows[i].current = committed_of(c, rows[i].topic, rows[i].partition);
            cli_rk_watermarks(k, rows[i].topic, rows[i].partition, &lo, &rows[i].end);
        }
        wt = widest(wt, rows[i].topic ? rows[i].topic : MISSING);
        wc = widest(wc, rows[i].consumer);
        wh = widest(wh, rows[i].host);
    }
    qsort(rows, (size_t)n, sizeof *rows, cmp_row);
    if (state_note(group, d, n)) {
        printf("\n%-*s %-*s %-10s %-15s %-15s %-15s %-*s %-*s %s\n", wg, "GROUP", wt, "TOPIC",
               "PARTITION", "CURRENT-OFFSET", "LOG-END-OFFSET", "LAG", wc, "CONSUMER-ID", wh,
               "HOST", "CLIENT-ID");
        for (int i = 0; i < n; i++) {
            const row_t *r = &rows[i];
            char part[16], cur[24], end[24], lag[24];
            if (r->topic)
                snprintf(part, sizeof part, "%d", r->partition);
            else
                snprintf(part, sizeof part, MISSING);
            fmt_off(cur, sizeof cur, r->current);
            fmt_off(end, sizeof end, r->end);
            fmt_off(lag, sizeof lag, r->current >= 0 && r->end >= 0 ? r->end - r->current : -1);
            printf("%-*s %-*s %-10s %-15s %-15s %-15s %-*s %-*s %s\n", wg, group, wt,
                   r->topic ? r->topic : MISSING, part, cur, end, lag, wc, r->consumer, wh,
                   r->host, r->client);
        }
    }
    free(rows);
    rd_kafka_topic_partition_list_destroy(c);
    return CLI_EXIT_OK;
}

static void assignment_text(char *buf, size_t len, const rd_kafka_topic_partition_list_t *as)
{
    size_t off = 0;
    buf[0] = 0;
    if (!as || as->cnt == 0) {
        snprintf(buf, len, MISSING);
        return;
    }
    rd_kafka_topic_partition_list_t *s = rd_kafka_topic_partition_list_copy(as);
    rd_kafka_topic_partition_list_sort(s, NULL, NULL);
    for (int i = 0; i < s->cnt && off < len; i++) {
        bool first = i == 0 || strcmp(s->elems[i - 1].topic, s->elems[i].topic) != 0;
        bool last = i + 1 == s->cnt || strcmp(s->elems[i + 1].topic, s->elems[i].topic) != 0;
        if (first)
            off += (size_t)snprintf(buf + off, len - off, "%s%s(", i ? ", " : "",
                                    s->elems[i].topic);
        off += (size_t)snprintf(buf + off, len - off, "%s%d%s", first ? "" : ",",
                                s->elems[i].partition, last ? ")" : "");
    }
    rd_kafka_topic_partition_list_destroy(s);
}

static int describe_members(const char *group, const rd_kafka_ConsumerGroupDescription_t *d,
                            bool verbose)
{
    size_t nm = rd_kafka_ConsumerGroupDescription_member_count(d);
    int wg = widest(15, group), wc = 15, wh = 15, wl = 15;
    for (size_t i = 0; i < nm; i++) {
        const rd_kafka_MemberDescription_t *m = rd_kafka_ConsumerGroupDescription_member(d, i);
        wc = widest(wc, rd_kafka_MemberDescription_consumer_id(m));
        wh = widest(wh, rd_kafka_MemberDescription_host(m));
        wl = widest(wl, rd_kafka_MemberDescription_client_id(m));
    }
    if (!state_note(group, d, (int)nm))
        return CLI_EXIT_OK;
    printf("\n%-*s %-*s %-*s %-*s %-12s%s\n", wg, "GROUP", wc, "CONSUMER-ID", wh, "HOST", wl,
           "CLIENT-ID", "#PARTITIONS", verbose ? " ASSIGNMENT" : "");
    for (size_t i = 0; i < nm; i++) {
        const rd_kafka_MemberDescription_t *m = rd_kafka_ConsumerGroupDescription_member(d, i);
        const rd_kafka_topic_partition_list_t *as =
            rd_kafka_MemberAssignment_partitions(rd_kafka_MemberDescription_assignment(m));
        char np[16], asg[4096];
        snprintf(np, sizeof np, "%d", as ? as->cnt : 0);
        printf("%-*s %-*s %-*s %-*s %-12s", wg, group, wc,
               rd_kafka_MemberDescription_consumer_id(m), wh, rd_kafka_MemberDescription_host(m),
               wl, rd_kafka_MemberDescription_client_id(m), np);
        if (verbose) {
            assignment_text(asg, sizeof asg, as);
            printf(" %s", asg);
        }
        printf("\n");
    }
    return CLI_EXIT_OK;
}

static int describe_state(const char *group, const rd_kafka_ConsumerGroupDescription_t *d)
{
    if (!state_note(group, d, 1))
        return CLI_EXIT_OK;
    const rd_kafka_Node_t *co = rd_kafka_ConsumerGroupDescription_coordinator(d);
    char coord[300];
    if (co)
        snprintf(coord, sizeof coord, "%s:%d  (%d)", rd_kafka_Node_host(co), rd_kafka_Node_port(co),
                 rd_kafka_Node_id(co));
    else
        snprintf(coord, sizeof coord, MISSING);
    const char *assignor = rd_kafka_ConsumerGroupDescription_partition_assignor(d);
    int wg = widest(15, group), wc = widest(25, coord);
    printf("\n%-*s %-*s %-20s %-20s %s\n", wg, "GROUP", wc, "COORDINATOR (ID)",
           "ASSIGNMENT-STRATEGY", "STATE", "#MEMBERS");
    printf("%-*s %-*s %-20s %-20s %d\n", wg, group, wc, coord,
           assignor && *assignor ? assignor : "",
           rd_kafka_consumer_group_state_name(rd_kafka_ConsumerGroupDescription_state(d)),
           (int)rd_kafka_ConsumerGroupDescription_member_count(d));
    return CLI_EXIT_OK;
}

/* ------------------------------------------------------------ reset-offsets */

/* ISO-8601 duration "PnDTnHnMn.nS" (what Java's Duration.parse takes) in ms. */
static bool parse_iso_duration(const char *s, int64_t *ms)
{
    bool neg = false;
    if (*s == '-') {
        neg = true;
        s++;
    }
    if (*s != 'P' && *s != 'p')
        return false;
    s++;
    bool in_time = false, any = false;
    double total = 0;
    while (*s) {
        if (*s == 'T' || *s == 't') {
            in_time = true;
            s++;
            continue;
        }
        char *end;
        double v = strtod(s, &end);
        if (end == s)
            return false;
        char u = (char)toupper((unsigned char)*end);
        if (u == 'D' && !in_time)
            total += v * 86400000.0;
        else if (u == 'H' && in_time)
            total += v * 3600000.0;
        else if (u == 'M' && in_time)
            total += v * 60000.0;
        else if (u == 'S' && in_time)
            total += v * 1000.0;
        else
            return false;
        any = true;
        s = end + 1;
    }
    *ms = (int64_t)(neg ? -total : total);
    return any;
}

/* Add "T" (all partitions from metadata) or "T:0,2" to l. */
static bool add_topic_spec(const struct rd_kafka_metadata *md, const char *spec,
                           rd_kafka_topic_partition_list_t *l)
{
    char *s = sm_xstrdup(spec);
    char *colon = strchr(s, ':');
    bool ok = true;
    if (colon) {
        *colon = 0;
        char *save = NULL;
        for (char *p = strtok_r(colon + 1, ",", &save); p; p = strtok_r(NULL, ",", &save)) {
            int32_t id;
            if (!cli_parse_i32(p, 0, INT32_MAX, &id)) {
                ok = false;
                cli_usage_fail(KG, "bad partition '%s' in --topic %s", p, spec);
                break;
            }
            rd_kafka_topic_partition_list_add(l, s, id);
        }
    } else {
        const rd_kafka_metadata_topic_t *t = cli_md_topic(md, s);
        if (!t || t->err) {
            ok = false;
            cli_fail("Error: topic '%s' does not exist", s);
        } else {
            for (int p = 0; p < t->partition_cnt; p++)
                rd_kafka_topic_partition_list_add(l, s, t->partitions[p].id);
        }
    }
    free(s);
    return ok;
}

/* New offset of every partition of l (written into l->elems[].offset).
 * false (message printed) on failure. */
static bool plan_offsets(cli_rk_t *k, const grp_opts_t *o, const char *group,
                         const rd_kafka_topic_partition_list_t *committed,
                         rd_kafka_topic_partition_list_t *l)
{
    int64_t ts = -1, arg = 0;
    if (o->mode == O_TO_OFFSET || o->mode == O_SHIFT) {
        if (!cli_parse_i64(o->mode_arg, &arg)) {
            cli_usage_fail(KG, "bad offset '%s'", o->mode_arg);
            return false;
        }
        if (o->mode == O_TO_OFFSET && arg < 0) {
            cli_usage_fail(KG, "--to-offset must be non-negative");
            return false;
        }
    } else if (o->mode == O_DATETIME) {
        if (!cli_parse_datetime_ms(o->mode_arg, &ts)) {
            cli_usage_fail(KG, "Error parsing timestamp '%s'. It must be in the format "
                               "'YYYY-MM-DDTHH:mm:SS.sss'",
                           o->mode_arg);
            return false;
        }
    } else if (o->mode == O_DURATION) {
        int64_t d;
        if (!parse_iso_duration(o->mode_arg, &d)) {
            cli_usage_fail(KG, "Error parsing duration '%s'. It must be in ISO-8601 format, "
                               "e.g. PT1H or P7D",
                           o->mode_arg);
            return false;
        }
        ts = sm_now_wall_ms() - d;
    }
    rd_kafka_topic_partition_list_t *times = NULL;
    if (ts >= 0) {
        times = rd_kafka_topic_partition_list_copy(l);
        for (int i = 0; i < times->cnt; i++)
            times->elems[i].offset = ts;
        rd_kafka_resp_err_t err = rd_kafka_offsets_for_times(k->rk, times, cli_g.timeout_ms);
        if (err) {
            cli_fail("list offsets by time: %s", rd_kafka_err2str(err));
            rd_kafka_topic_partition_list_destroy(times);
            return false;
        }
    }
    bool ok = true;
    for (int i = 0; i < l->cnt && ok; i++) {
        rd_kafka_topic_partition_t *p = &l->elems[i];
        int64_t lo, hi, cur = committed_of(committed, p->topic, p->partition), v = 0;
        if (!cli_rk_watermarks(k, p->topic, p->partition, &lo, &hi)) {
            ok = false;
            cli_fail("cannot read offsets of %s-%d", p->topic, p->partition);
            break;
        }
        switch (o->mode) {
        case O_EARLIEST: v = lo; break;
        case O_LATEST: v = hi; break;
        case O_CURRENT: v = cur >= 0 ? cur : hi; break;
        case O_TO_OFFSET: v = arg; break;
        case O_SHIFT:
            if (cur < 0) {
                ok = false;
                cli_fail("Cannot shift offset for partition %s-%d since there is no current "
                         "committed offset",
                         p->topic, p->partition);
            }
            v = cur + arg;
            break;
        default: {
            int64_t f = times->elems[i].err ? -1 : times->elems[i].offset;
            v = f >= 0 ? f : hi;
            break;
        }
        }
        if (v < lo)
            v = lo;
        if (v > hi)
            v = hi;
        p->offset = v;
    }
    (void)group;
    if (times)
        rd_kafka_topic_partition_list_destroy(times);
    return ok;
}

static int reset_group(cli_rk_t *k, const grp_opts_t *o, const char *group,
                       const struct rd_kafka_metadata *md)
{
    rd_kafka_event_t *dev = NULL;
    const rd_kafka_ConsumerGroupDescription_t *d = describe_one(k, group, &dev);
    if (!d) {
        if (dev)
            rd_kafka_event_destroy(dev);
        return CLI_EXIT_FAIL;
    }
    int rc = CLI_EXIT_OK;
    rd_kafka_consumer_group_state_t st = rd_kafka_ConsumerGroupDescription_state(d);
    if (o->execute && !group_missing(d) && st != RD_KAFKA_CONSUMER_GROUP_STATE_EMPTY) {
        fprintf(stderr, "\nError: Assignments can only be reset if the group '%s' is inactive, "
                        "but the current state is %s.\n\n",
                group, rd_kafka_consumer_group_state_name(st));
        rd_kafka_event_destroy(dev);
        return CLI_EXIT_FAIL;
    }
    rd_kafka_event_destroy(dev);
    rd_kafka_topic_partition_list_t *committed = committed_offsets(k, group);
    if (!committed)
        return CLI_EXIT_FAIL;
    rd_kafka_topic_partition_list_t *l = rd_kafka_topic_partition_list_new(16);
    if (o->all_topics) {
        for (int i = 0; i < committed->cnt; i++)
            if (!committed->elems[i].err && committed->elems[i].offset >= 0)
                rd_kafka_topic_partition_list_add(l, committed->elems[i].topic,
                                                  committed->elems[i].partition);
    } else {
        for (int i = 0; i < o->ntopics; i++)
            if (!add_topic_spec(md, o->topics[i], l)) {
                rc = CLI_EXIT_FAIL;
                goto out;
            }
    }
    rd_kafka_topic_partition_list_sort(l, NULL, NULL);
    if (!plan_offsets(k, o, group, committed, l)) {
        rc = CLI_EXIT_FAIL;
        goto out;
    }
    if (o->export_csv) {
        for (int i = 0; i < l->cnt; i++) {
            if (o->ngroups > 1 || o->all_groups)
                printf("%s,", group);
            printf("%s,%d,%" PRId64 "\n", l->elems[i].topic, l->elems[i].partition,
                   l->elems[i].offset);
        }
    } else {
        int wg = widest(15, group), wt = 15;
        for (int i = 0; i < l->cnt; i++)
            wt = widest(wt, l->elems[i].topic);
        printf("\n%-*s %-*s %-10s %s\n", wg, "GROUP", wt, "TOPIC", "PARTITION", "NEW-OFFSET");
        for (int i = 0; i < l->cnt; i++)
            printf("%-*s %-*s %-10d %" PRId64 "\n", wg, group, wt, l->elems[i].topic,
                   l->elems[i].partition, l->elems[i].offset);
    }
    if (o->execute && l->cnt > 0) {
        alter_arg_t x = {group, l};
        rd_kafka_event_t *ev = kafka_admin(k, RD_KAFKA_ADMIN_OP_ALTERCONSUMERGROUPOFFSETS,
                                           "reset offsets", call_alter, &x);
        if (!ev) {
            rc = CLI_EXIT_FAIL;
        } else {
            size_t n;
            const rd_kafka_group_result_t **gr = rd_kafka_AlterConsumerGroupOffsets_result_groups(
                rd_kafka_event_AlterConsumerGroupOffsets_result(ev), &n);
            if (n < 1 || rd_kafka_group_result_error(gr[0])) {
                rc = cli_fail("reset offsets of group '%s': %s", group,
                              n < 1 ? "empty response"
                                    : rd_kafka_error_string(rd_kafka_group_result_error(gr[0])));
            } else {
                const rd_kafka_topic_partition_list_t *p = rd_kafka_group_result_partitions(gr[0]);
                for (int i = 0; p && i < p->cnt; i++)
                    if (p->elems[i].err)
                        rc = cli_fail("reset offset of %s-%d: %s", p->elems[i].topic,
                                      p->elems[i].partition, rd_kafka_err2str(p->elems[i].err));
            }
            rd_kafka_event_destroy(ev);
        }
    }
out:
    rd_kafka_topic_partition_list_destroy(l);
    rd_kafka_topic_partition_list_destroy(committed);
    return rc;
}

/* ------------------------------------------------------------ delete */

static int delete_groups(cli_rk_t *k, char **groups, int n)
{
    del_arg_t d = {sm_xcalloc((size_t)n, sizeof *d.g), (size_t)n};
    for (int i = 0; i < n; i++)
        d.g[i] = rd_kafka_DeleteGroup_new(groups[i]);
    int rc = CLI_EXIT_OK;
    rd_kafka_event_t *ev =
        kafka_admin(k, RD_KAFKA_ADMIN_OP_DELETEGROUPS, "delete groups", call_delete, &d);
    if (!ev) {
        rc = CLI_EXIT_FAIL;
    } else {
        size_t nr;
        const rd_kafka_group_result_t **gr =
            rd_kafka_DeleteGroups_result_groups(rd_kafka_event_DeleteGroups_result(ev), &nr);
        char *ok = NULL, *bad = NULL;
        size_t okl = 0, badl = 0;
        FILE *okf = open_memstream(&ok, &okl), *badf = open_memstream(&bad, &badl);
        int nok = 0, nbad = 0;
        for (size_t i = 0; i < nr; i++) {
            const rd_kafka_error_t *e = rd_kafka_group_result_error(gr[i]);
            const char *name = rd_kafka_group_result_name(gr[i]);
            if (e) {
                fprintf(badf, "* Group '%s' could not be deleted due to: %s\n", name,
                        rd_kafka_error_string(e));
                nbad++;
            } else {
                fprintf(okf, "%s'%s'", nok ? ", " : "", name);
                nok++;
            }
        }
        fclose(okf);
        fclose(badf);
        if (nbad == 0) {
            printf("Deletion of requested consumer groups (%s) was successful.\n", ok);
        } else {
            printf("Deletion of some consumer groups failed:\n%s", bad);
            if (nok)
                printf("\nThese consumer groups were deleted successfully: %s\n", ok);
            rc = CLI_EXIT_FAIL;
        }
        free(ok);
        free(bad);
        rd_kafka_event_destroy(ev);
    }
    rd_kafka_DeleteGroup_destroy_array(d.g, d.n);
    free(d.g);
    return rc;
}

static int delete_offsets(cli_rk_t *k, const grp_opts_t *o, const struct rd_kafka_metadata *md)
{
    if (o->ngroups != 1 || o->ntopics == 0)
        return cli_usage_fail(KG, "--delete-offsets needs one --group and at least one --topic");
    rd_kafka_topic_partition_list_t *l = rd_kafka_topic_partition_list_new(16);
    int rc = CLI_EXIT_OK;
    for (int i = 0; i < o->ntopics; i++)
        if (!add_topic_spec(md, o->topics[i], l)) {
            rd_kafka_topic_partition_list_destroy(l);
            return CLI_EXIT_FAIL;
        }
    alter_arg_t x = {o->groups[0], l};
    rd_kafka_event_t *ev = kafka_admin(k, RD_KAFKA_ADMIN_OP_DELETECONSUMERGROUPOFFSETS,
                                       "delete offsets", call_delete_offsets, &x);
    if (!ev) {
        rc = CLI_EXIT_FAIL;
    } else {
        size_t n;
        const rd_kafka_group_result_t **gr = rd_kafka_DeleteConsumerGroupOffsets_result_groups(
            rd_kafka_event_DeleteConsumerGroupOffsets_result(ev), &n);
        const rd_kafka_error_t *e = n ? rd_kafka_group_result_error(gr[0]) : NULL;
        if (n < 1 || e) {
            rc = cli_fail("Encounter some unknown error: %s",
                          e ? rd_kafka_error_string(e) : "empty response");
        } else {
            const rd_kafka_topic_partition_list_t *p = rd_kafka_group_result_partitions(gr[0]);
            bool any_err = false;
            for (int i = 0; p && i < p->cnt; i++)
                any_err = any_err || p->elems[i].err;
            printf("%s\n", any_err ? "Request succeed for deleting offsets with topic but some "
                                     "partitions failed:"
                                   : "Request succeed for deleting offsets from group.");
            printf("\n%-30s %-15s %-15s\n", "TOPIC", "PARTITION", "STATUS");
            for (int i = 0; p && i < p->cnt; i++) {
                char status[300];
                if (p->elems[i].err)
                    snprintf(status, sizeof status, "Error: %s", rd_kafka_err2str(p->elems[i].err));
                else
                    snprintf(status, sizeof status, "Successful");
                printf("%-30s %-15d %s\n", p->elems[i].topic, p->elems[i].partition, status);
            }
            if (any_err)
                rc = CLI_EXIT_FAIL;
        }
        rd_kafka_event_destroy(ev);
    }
    rd_kafka_topic_partition_list_destroy(l);
    return rc;
}

/* ------------------------------------------------------------ main */

static bool state_wanted(const grp_opts_t *o, const char *st)
{
    if (o->nstates == 0)
        return true;
    for (int i = 0; i < o->nstates; i++) {
        char *s = sm_xstrdup(o->states[i]), *save = NULL;
        bool m = false;
        for (char *t = strtok_r(s, ",", &save); t && !m; t = strtok_r(NULL, ",", &save))
            m = strcasecmp(t, st) == 0;
        free(s);
        if (m)
            return true;
    }
    return false;
}

static int run(cli_rk_t *k, grp_opts_t *o)
{
    const struct rd_kafka_metadata *md;
    if (!cli_rk_metadata(k, NULL, &md))
        return CLI_EXIT_FAIL;
    int rc = CLI_EXIT_OK, nall = 0;
    char **all = NULL, **states = NULL;
    if (o->action == O_LIST || o->all_groups) {
        nall = list_groups(k, &all, o->action == O_LIST ? &states : NULL);
        if (nall < 0) {
            rc = CLI_EXIT_FAIL;
            goto out;
        }
    }
    if (o->action == O_LIST) {
        if (!o->state) {
            for (int i = 0; i < nall; i++)
                printf("%s\n", all[i]);
        } else {
            int wg = 15;
            for (int i = 0; i < nall; i++)
                wg = widest(wg, all[i]);
            printf("%-*s %s\n", wg, "GROUP", "STATE");
            for (int i = 0; i < nall; i++)
                if (state_wanted(o, states[i]))
                    printf("%-*s %s\n", wg, all[i], states[i]);
        }
        goto out;
    }
    char **groups = o->all_groups ? all : o->groups;
    int ngroups = o->all_groups ? nall : o->ngroups;
    if (o->action == O_DELETE) {
        if (ngroups > 0)
            rc = delete_groups(k, groups, ngroups);
        goto out;
    }
    if (o->action == O_DELETE_OFFSETS) {
        rc = delete_offsets(k, o, md);
        goto out;
    }
    if (o->action == O_RESET && !o->execute && !o->dry_run && !o->export_csv)
        printf("WARN: No action will be performed as the --execute option is missing. In a "
               "future major release, the default behavior of this command will be to prompt "
               "the user before executing the reset rather than doing a dry run. You should add "
               "the --dry-run option explicitly if you are scripting this command and want to "
               "keep the current default behavior without prompting.\n");
    for (int i = 0; i < ngroups; i++) {
        int r;
        if (o->action == O_RESET) {
            r = reset_group(k, o, groups[i], md);
        } else {
            rd_kafka_event_t *ev = NULL;
            const rd_kafka_ConsumerGroupDescription_t *d = describe_one(k, groups[i], &ev);
            if (!d)
                r = CLI_EXIT_FAIL;
            else if (o->members)
                r = describe_members(groups[i], d, o->verbose);
            else if (o->state)
                r = describe_state(groups[i], d);
            else
                r = group_missing(d) ? (state_note(groups[i], d, 0), CLI_EXIT_OK)
                                     : describe_offsets(k, groups[i], d);
            if (ev)
                rd_kafka_event_destroy(ev);
        }
        if (r)
            rc = r;
    }
out:
    for (int i = 0; i < nall; i++)
        free(all[i]);
    free(all);
    free(states);
    rd_kafka_metadata_destroy(md);
    return rc;
}

int kafka_groups_main(int argc, char **argv)
{
    static const cli_opt_t opts[] = {KAFKA_COMMON_OPTS,
                                     {"list", 0, O_LIST},
                                     {"describe", 0, O_DESCRIBE},
                                     {"delete", 0, O_DELETE},
                                     {"reset-offsets", 0, O_RESET},
                                     {"delete-offsets", 0, O_DELETE_OFFSETS},
                                     {"group", 1, O_GROUP},
                                     {"all-groups", 0, O_ALL_GROUPS},
                                     {"topic", 1, O_TOPIC},
                                     {"all-topics", 0, O_ALL_TOPICS},
                                     {"to-earliest", 0, O_EARLIEST},
                                     {"to-latest", 0, O_LATEST},
                                     {"to-current", 0, O_CURRENT},
                                     {"to-offset", 1, O_TO_OFFSET},
                                     {"shift-by", 1, O_SHIFT},
                                     {"to-datetime", 1, O_DATETIME},
                                     {"by-duration", 1, O_DURATION},
                                     {"from-file", 1, O_FROM_FILE},
                                     {"execute", 0, O_EXECUTE},
                                     {"dry-run", 0, O_DRY_RUN},
                                     {"export", 0, O_EXPORT},
                                     {"members", 0, O_MEMBERS},
                                     {"offsets", 0, O_OFFSETS},
                                     {"state", 0, O_STATE},
                                     {"verbose", 0, O_VERBOSE},
                                     {"timeout", 1, O_TIMEOUT},
                                     {"type", 1, O_TYPE},
                                     {0}};
    cli_args_t a;
    cli_args_init(&a, KG, argc, argv);
    grp_opts_t o = {0};
    o.groups = sm_xcalloc((size_t)argc + 1, sizeof *o.groups);
    o.topics = sm_xcalloc((size_t)argc + 1, sizeof *o.topics);
    o.states = sm_xcalloc((size_t)argc + 1, sizeof *o.states);
    int c, rc = CLI_EXIT_OK;
    cli_rk_t k = {0};
    while ((c = cli_getopt(&a, opts)) != -1) {
        if (kafka_common_opt(c, a.arg))
            continue;
        switch (c) {
        case O_LIST: case O_DESCRIBE: case O_DELETE: case O_RESET: case O_DELETE_OFFSETS:
            o.action = c;
            o.nactions++;
            break;
        case O_GROUP: o.groups[o.ngroups++] = (char *)a.arg; break;
        case O_ALL_GROUPS: o.all_groups = true; break;
        case O_TOPIC: o.topics[o.ntopics++] = (char *)a.arg; break;
        case O_ALL_TOPICS: o.all_topics = true; break;
        case O_EARLIEST: case O_LATEST: case O_CURRENT: case O_TO_OFFSET: case O_SHIFT:
        case O_DATETIME: case O_DURATION:
            o.mode = c;
            o.mode_arg = a.arg;
            o.nmodes++;
            break;
        case O_FROM_FILE:
            rc = kafka_unsupported(KG, "--from-file (give the offsets with --topic and "
                                       "--to-offset)");
            goto out;
        case O_EXECUTE: o.execute = true; break;
        case O_DRY_RUN: o.dry_run = true; break;
        case O_EXPORT: o.export_csv = true; break;
        case O_MEMBERS: o.members = true; break;
        case O_OFFSETS: o.offsets = true; break;
        case O_STATE: o.state = true; break;
        case O_VERBOSE: o.verbose = true; break;
        case O_TIMEOUT: {
            int32_t ms;
            if (!cli_parse_i32(a.arg, 1, 3600000, &ms)) {
                rc = cli_usage_fail(a.cmd, "bad --timeout '%s' (ms)", a.arg);
                goto out;
            }
            cli_g.timeout_ms = ms;
            break;
        }
        case O_TYPE:
            if (strcasecmp(a.arg, "classic") != 0 && strcasecmp(a.arg, "consumer") != 0) {
                rc = kafka_unsupported(KG, "group type '%s'", a.arg);
                goto out;
            }
            break;
        case 0:
            if (o.action == O_LIST && o.state) {
                o.states[o.nstates++] = (char *)a.arg; /* --list --state STATES */
                break;
            }
            rc = cli_usage_fail(a.cmd, "unexpected argument '%s'", a.arg);
            goto out;
        case 'h': usage(stdout); goto out;
        default: rc = CLI_EXIT_USAGE; goto out;
        }
    }
    if (o.nactions != 1) {
        usage(stderr);
        rc = cli_usage_fail(a.cmd, "Command must include exactly one action: --list, "
                                   "--describe, --delete, --reset-offsets, --delete-offsets");
        goto out;
    }
    if (o.action != O_LIST && !o.all_groups && o.ngroups == 0) {
        rc = cli_usage_fail(a.cmd, "Option [%s] takes one of these options: [all-groups], "
                                   "[group]",
                            o.action == O_DESCRIBE ? "describe"
                            : o.action == O_DELETE ? "delete"
                            : o.action == O_RESET  ? "reset-offsets"
                                                   : "delete-offsets");
        goto out;
    }
    if (o.action == O_RESET) {
        if (o.nmodes != 1) {
            rc = cli_usage_fail(a.cmd, "Option [reset-offsets] takes exactly one of these "
                                       "options: [to-datetime], [by-duration], [to-earliest], "
                                       "[to-latest], [shift-by], [from-file], [to-current], "
                                       "[to-offset]");
            goto out;
        }
        if (!o.all_topics && o.ntopics == 0) {
            rc = cli_usage_fail(a.cmd, "One of the reset scopes should be defined: "
                                       "--all-topics, --topic.");
            goto out;
        }
        if (o.execute && o.dry_run) {
            rc = cli_usage_fail(a.cmd, "Option [execute] can't be used with option [dry-run]");
            goto out;
        }
    }
    if ((rc = kafka_client_ready(KG)) >= 0)
        goto out;
    if (!cli_rk_new(&k, RD_KAFKA_PRODUCER, NULL, NULL, NULL)) {
        rc = CLI_EXIT_FAIL;
        goto out;
    }
    rc = run(&k, &o);
out:
    cli_rk_destroy(&k);
    free(o.groups);
    free(o.topics);
    free(o.states);
    return rc;
}
