/*
 * group.c - `samsa group list|describe|reset-offsets|delete`.
 *
 * Through librdkafka's Admin API (2.0.2 has ListConsumerGroups,
 * DescribeConsumerGroups, ListConsumerGroupOffsets,
 * AlterConsumerGroupOffsets, DeleteGroups); end offsets for lag come from
 * ListOffsets (watermarks), timestamps from OffsetsForTimes.
 *
 * reset-offsets follows kafka-consumer-groups: it prints the plan and
 * changes nothing unless --execute is given, and it refuses to move the
 * offsets of a group that has live members (they would overwrite them with
 * their next commit). New offsets are clamped to [start, end] of each
 * partition. Main thread only.
 */
#include "cli.h"
#include "out.h"

#include <stdlib.h>
#include <string.h>

static void group_usage(FILE *f)
{
    fprintf(f,
            "usage: samsa group <verb> [args]\n"
            "  list                         groups with their state\n"
            "  describe GROUP...            members, assignment, committed offset, end offset\n"
            "                               and lag per partition\n"
            "  reset-offsets GROUP (--topic T[:P,P...]... | --all-topics) MODE [--execute]\n"
            "      MODE is one of:\n"
            "        --to-earliest          the partition's first offset\n"
            "        --to-latest            the partition's end offset\n"
            "        --to-offset N          offset N (clamped to the partition's range)\n"
            "        --to-datetime TIME     first offset at or after TIME\n"
            "                               (2024-01-31T12:00:00Z, or ms since the epoch)\n"
            "        --shift-by N           committed offset + N (N may be negative)\n"
            "        --by-duration DUR      first offset at or after now - DUR (e.g. 1h, 30m)\n"
            "      Without --execute only the plan is shown (dry run). The group must have\n"
            "      no active members.\n"
            "  delete GROUP...              delete groups (must have no active members)\n"
            "  delete-offsets GROUP TOPIC[:P,P...]...\n"
            "                               delete the group's committed offsets of those\n"
            "                               partitions (all of the topic's without :P)\n");
}

/* ------------------------------------------------------------ helpers */

static rd_kafka_event_t *run_admin(cli_rk_t *k, rd_kafka_admin_op_t op, const char *what,
                                   void (*call)(cli_rk_t *, rd_kafka_AdminOptions_t *,
                                                rd_kafka_queue_t *, void *),
                                   void *arg)
{
    rd_kafka_queue_t *q = rd_kafka_queue_new(k->rk);
    rd_kafka_AdminOptions_t *o = cli_rk_admin_opts(k, op);
    call(k, o, q, arg);
    rd_kafka_event_t *ev = cli_rk_wait(k, q, what);
    if (ev && rd_kafka_event_error(ev)) {
        cli_fail("%s: %s", what, rd_kafka_event_error_string(ev));
        rd_kafka_event_destroy(ev);
        ev = NULL;
    }
    rd_kafka_AdminOptions_destroy(o);
    rd_kafka_queue_destroy(q);
    return ev;
}

static void call_describe(cli_rk_t *k, rd_kafka_AdminOptions_t *o, rd_kafka_queue_t *q,
                          void *arg)
{
    const char **g = arg;
    rd_kafka_DescribeConsumerGroups(k->rk, g, 1, o, q);
}

/* Description of one group; *ev owns it. NULL (message printed) on error. */
static const rd_kafka_ConsumerGroupDescription_t *describe_one(cli_rk_t *k, const char *group,
                                                               rd_kafka_event_t **ev)
{
    *ev = run_admin(k, RD_KAFKA_ADMIN_OP_DESCRIBECONSUMERGROUPS, "describe group",
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
        cli_fail("group '%s': %s", group, rd_kafka_error_string(e));
        return NULL;
    }
    return ds[0];
}

static void call_list_offsets(cli_rk_t *k, rd_kafka_AdminOptions_t *o, rd_kafka_queue_t *q,
                              void *arg)
{
    rd_kafka_ListConsumerGroupOffsets_t *l = rd_kafka_ListConsumerGroupOffsets_new(arg, NULL);
    rd_kafka_ListConsumerGroupOffsets(k->rk, &l, 1, o, q);
    rd_kafka_ListConsumerGroupOffsets_destroy(l);
}

/* Committed offsets of every partition of a group (copy; caller destroys),
 * or NULL (message printed). */
static rd_kafka_topic_partition_list_t *committed_offsets(cli_rk_t *k, const char *group)
{
    rd_kafka_event_t *ev = run_admin(k, RD_KAFKA_ADMIN_OP_LISTCONSUMERGROUPOFFSETS,
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
        cli_fail("group '%s': %s", group, rd_kafka_error_string(rd_kafka_group_result_error(gr[0])));
    } else {
        const rd_kafka_topic_partition_list_t *p = rd_kafka_group_result_partitions(gr[0]);
        out = p ? rd_kafka_topic_partition_list_copy(p) : rd_kafka_topic_partition_list_new(0);
    }
    rd_kafka_event_destroy(ev);
    return out;
}

static int cmp_tp(const void *x, const void *y)
{
    const rd_kafka_topic_partition_t *a = x, *b = y;
    int c = strcmp(a->topic, b->topic);
    return c ? c : a->partition - b->partition;
}

static bool group_is_active(rd_kafka_consumer_group_state_t s, size_t members)
{
    return members > 0 || !(s == RD_KAFKA_CONSUMER_GROUP_STATE_EMPTY ||
                            s == RD_KAFKA_CONSUMER_GROUP_STATE_DEAD ||
                            s == RD_KAFKA_CONSUMER_GROUP_STATE_UNKNOWN);
}

/* ------------------------------------------------------------ list */

static void call_list(cli_rk_t *k, rd_kafka_AdminOptions_t *o, rd_kafka_queue_t *q, void *arg)
{
    rd_kafka_ListConsumerGroups(k->rk, o, q);
}

static int cmp_listing(const void *x, const void *y)
{
    return strcmp(rd_kafka_ConsumerGroupListing_group_id(*(rd_kafka_ConsumerGroupListing_t *const *)x),
                  rd_kafka_ConsumerGroupListing_group_id(*(rd_kafka_ConsumerGroupListing_t *const *)y));
}

static int group_list(void)
{
    cli_rk_t k;
    if (!cli_rk_new(&k, RD_KAFKA_PRODUCER, NULL, NULL, NULL))
        return CLI_EXIT_FAIL;
    /* Fail fast (and with a clear reason) if the cluster is unreachable. */
    const struct rd_kafka_metadata *md;
    if (!cli_rk_metadata(&k, NULL, &md)) {
        cli_rk_destroy(&k);
        return CLI_EXIT_FAIL;
    }
    rd_kafka_metadata_destroy(md);
    rd_kafka_event_t *ev =
        run_admin(&k, RD_KAFKA_ADMIN_OP_LISTCONSUMERGROUPS, "list groups", call_list, NULL);
    if (!ev) {
        cli_rk_destroy(&k);
        return CLI_EXIT_FAIL;
    }
    const rd_kafka_ListConsumerGroups_result_t *res = rd_kafka_event_ListConsumerGroups_result(ev);
    size_t n, nerr;
    const rd_kafka_ConsumerGroupListing_t **ls = rd_kafka_ListConsumerGroups_result_valid(res, &n);
    const rd_kafka_error_t **errs = rd_kafka_ListConsumerGroups_result_errors(res, &nerr);
    int rc = CLI_EXIT_OK;
    for (size_t i = 0; i < nerr; i++)
        rc = cli_fail("list groups: %s", rd_kafka_error_string(errs[i]));
    const rd_kafka_ConsumerGroupListing_t **sorted = calloc(n + 1, sizeof *sorted);
    memcpy(sorted, ls, n * sizeof *sorted);
    qsort(sorted, n, sizeof *sorted, cmp_listing);
    if (cli_g.format == CLI_FMT_JSON) {
        cli_json_t j;
        cli_json_init(&j, stdout);
        cli_json_arr_begin(&j);
        for (size_t i = 0; i < n; i++) {
            cli_json_obj_begin(&j);
            cli_json_kstr(&j, "group", rd_kafka_ConsumerGroupListing_group_id(sorted[i]));
            cli_json_kstr(&j, "state", rd_kafka_consumer_group_state_name(
                                           rd_kafka_ConsumerGroupListing_state(sorted[i])));
            cli_json_kbool(&j, "simple",
                           rd_kafka_ConsumerGroupListing_is_simple_consumer_group(sorted[i]));
            cli_json_obj_end(&j);
        }
        cli_json_arr_end(&j);
        cli_json_done(&j);
    } else {
        cli_table_t t;
        cli_table_init(&t, 2);
        cli_table_cell(&t, "GROUP");
        cli_table_cell(&t, "STATE");
        for (size_t i = 0; i < n; i++) {
            cli_table_cell(&t, "%s", rd_kafka_ConsumerGroupListing_group_id(sorted[i]));
            cli_table_cell(&t, "%s", rd_kafka_consumer_group_state_name(
                                         rd_kafka_ConsumerGroupListing_state(sorted[i])));
        }
        cli_table_print(&t, stdout);
        cli_table_free(&t);
    }
    free(sorted);
    rd_kafka_event_destroy(ev);
    cli_rk_destroy(&k);
    return rc;
}

/* ------------------------------------------------------------ describe */

typedef struct gd_row {
    const char *topic;
    int32_t partition;
    int64_t committed; /* -1 none */
    int member;        /* index into members, -1 none */
} gd_row_t;

static int cmp_row(const void *x, const void *y)
{
    const gd_row_t *a = x, *b = y;
    int c = strcmp(a->topic, b->topic);
    return c ? c : a->partition - b->partition;
}

static gd_row_t *row_for(gd_row_t *rows, int *n, const char *topic, int32_t part)
{
    for (int i = 0; i < *n; i++)
        if (rows[i].partition == part && strcmp(rows[i].topic, topic) == 0)
            return &rows[i];
    gd_row_t *r = &rows[(*n)++];
    r->topic = topic;
    r->partition = part;
    r->committed = -1;
    r->member = -1;
    return r;
}

static int describe_group(cli_rk_t *k, const char *group, cli_json_t *j, bool first)
{
    rd_kafka_event_t *ev;
    const rd_kafka_ConsumerGroupDescription_t *d = describe_one(k, group, &ev);
    if (!d) {
        if (ev)
            rd_kafka_event_destroy(ev);
        return CLI_EXIT_FAIL;
    }
    rd_kafka_topic_partition_list_t *com = committed_offsets(k, group);
    if (!com) {
        rd_kafka_event_destroy(ev);
        return CLI_EXIT_FAIL;
    }
    rd_kafka_consumer_group_state_t state = rd_kafka_ConsumerGroupDescription_state(d);
    size_t nm = rd_kafka_ConsumerGroupDescription_member_count(d);
    if (state == RD_KAFKA_CONSUMER_GROUP_STATE_DEAD && nm == 0 && com->cnt == 0) {
        rd_kafka_topic_partition_list_destroy(com);
        rd_kafka_event_destroy(ev);
        return cli_fail("group '%s' does not exist", group);
    }
    /* Rows: every assigned partition and every committed one. */
    int cap = com->cnt + 1, nrows = 0;
    for (size_t m = 0; m < nm; m++) {
        const rd_kafka_MemberAssignment_t *as =
            rd_kafka_MemberDescription_assignment(rd_kafka_ConsumerGroupDescription_member(d, m));
        const rd_kafka_topic_partition_list_t *pl = as ? rd_kafka_MemberAssignment_partitions(as) : NULL;
        cap += pl ? pl->cnt : 0;
    }
    gd_row_t *rows = calloc((size_t)cap, sizeof *rows);
    for (size_t m = 0; m < nm; m++) {
        const rd_kafka_MemberAssignment_t *as =
            rd_kafka_MemberDescription_assignment(rd_kafka_ConsumerGroupDescription_member(d, m));
        const rd_kafka_topic_partition_list_t *pl = as ? rd_kafka_MemberAssignment_partitions(as) : NULL;
        for (int i = 0; pl && i < pl->cnt; i++)
            row_for(rows, &nrows, pl->elems[i].topic, pl->elems[i].partition)->member = (int)m;
    }
    for (int i = 0; i < com->cnt; i++)
        if (!com->elems[i].err)
            row_for(rows, &nrows, com->elems[i].topic, com->elems[i].partition)->committed =
                com->elems[i].offset;
    qsort(rows, (size_t)nrows, sizeof *rows, cmp_row);
    const rd_kafka_Node_t *coord = rd_kafka_ConsumerGroupDescription_coordinator(d);
    const char *assignor = rd_kafka_ConsumerGroupDescription_partition_assignor(d);
    const char *sname = rd_kafka_consumer_group_state_name(state);
    if (cli_g.format == CLI_FMT_JSON) {
        cli_json_obj_begin(j);
        cli_json_kstr(j, "group", group);
        cli_json_kstr(j, "state", sname);
        cli_json_kint(j, "coordinator", coord ? rd_kafka_Node_id(coord) : -1);
        cli_json_kstr(j, "assignor", assignor && *assignor ? assignor : NULL);
        cli_json_key(j, "members");
        cli_json_arr_begin(j);
        for (size_t m = 0; m < nm; m++) {
            const rd_kafka_MemberDescription_t *md = rd_kafka_ConsumerGroupDescription_member(d, m);
            cli_json_obj_begin(j);
            cli_json_kstr(j, "member_id", rd_kafka_MemberDescription_consumer_id(md));
            cli_json_kstr(j, "client_id", rd_kafka_MemberDescription_client_id(md));
            cli_json_kstr(j, "host", rd_kafka_MemberDescription_host(md));
            cli_json_kstr(j, "instance_id", rd_kafka_MemberDescription_group_instance_id(md));
            const rd_kafka_MemberAssignment_t *as = rd_kafka_MemberDescription_assignment(md);
            const rd_kafka_topic_partition_list_t *pl =
                as ? rd_kafka_MemberAssignment_partitions(as) : NULL;
            cli_json_key(j, "assignment");
            cli_json_arr_begin(j);
            for (int i = 0; pl && i < pl->cnt; i++) {
                cli_json_obj_begin(j);
                cli_json_kstr(j, "topic", pl->elems[i].topic);
                cli_json_kint(j, "partition", pl->elems[i].partition);
                cli_json_obj_end(j);
            }
            cli_json_arr_end(j);
            cli_json_obj_end(j);
        }
        cli_json_arr_end(j);
        cli_json_key(j, "partitions");
        cli_json_arr_begin(j);
    } else {
        printf("%sGroup: %s  state: %s  coordinator: %d  assignor: %s  members: %zu\n",
               first ? "" : "\n", group, sname, coord ? rd_kafka_Node_id(coord) : -1,
               assignor && *assignor ? assignor : "-", nm);
        if (nm > 0) {
            /* every member, with its whole assignment (also members that
             * own no partition, which the per-partition table cannot show) */
            cli_table_t mt;
            cli_table_init(&mt, 4);
            cli_table_cell(&mt, "MEMBER-ID");
            cli_table_cell(&mt, "HOST");
            cli_table_cell(&mt, "CLIENT-ID");
            cli_table_cell(&mt, "ASSIGNMENT");
            for (size_t m = 0; m < nm; m++) {
                const rd_kafka_MemberDescription_t *md =
                    rd_kafka_ConsumerGroupDescription_member(d, m);
                const rd_kafka_MemberAssignment_t *as = rd_kafka_MemberDescription_assignment(md);
                const rd_kafka_topic_partition_list_t *pl =
                    as ? rd_kafka_MemberAssignment_partitions(as) : NULL;
                char buf[1024];
                size_t o = 0;
                buf[0] = 0;
                for (int i = 0; pl && i < pl->cnt && o < sizeof buf; i++)
                    o += (size_t)snprintf(buf + o, sizeof buf - o, "%s%s-%d", i ? "," : "",
                                          pl->elems[i].topic, pl->elems[i].partition);
                cli_table_cell(&mt, "%s", rd_kafka_MemberDescription_consumer_id(md));
                cli_table_cell(&mt, "%s", rd_kafka_MemberDescription_host(md));
                cli_table_cell(&mt, "%s", rd_kafka_MemberDescription_client_id(md));
                cli_table_cell(&mt, "%s", buf[0] ? buf : "-");
            }
            cli_table_print(&mt, stdout);
            cli_table_free(&mt);
            putchar('\n');
        }
    }
    cli_table_t t;
    cli_table_init(&t, 8);
    const char *hdr[] = {"TOPIC", "PARTITION", "COMMITTED", "END", "LAG", "MEMBER-ID", "HOST",
                         "CLIENT-ID"};
    for (int i = 0; i < 8; i++)
        cli_table_cell(&t, "%s", hdr[i]);
    int64_t total_lag = 0;
    for (int i = 0; i < nrows; i++) {
        int64_t lo = -1, hi = -1;
        cli_rk_watermarks(k, rows[i].topic, rows[i].partition, &lo, &hi);
        /* Like kafka-consumer-groups: no committed offset, no lag. */
        int64_t lag = rows[i].committed >= 0 && hi >= 0 ? SM_MAX(hi - rows[i].committed, 0) : -1;
        if (lag > 0)
            total_lag += lag;
        const rd_kafka_MemberDescription_t *md =
            rows[i].member >= 0 ? rd_kafka_ConsumerGroupDescription_member(d, (size_t)rows[i].member)
                                : NULL;
        if (cli_g.format == CLI_FMT_JSON) {
            cli_json_obj_begin(j);
            cli_json_kstr(j, "topic", rows[i].topic);
            cli_json_kint(j, "partition", rows[i].partition);
            cli_json_kint(j, "committed_offset", rows[i].committed);
            cli_json_kint(j, "end_offset", hi);
            cli_json_key(j, "lag");
            if (lag >= 0)
                cli_json_int(j, lag);
            else
                cli_json_null(j);
            cli_json_kstr(j, "member_id", md ? rd_kafka_MemberDescription_consumer_id(md) : NULL);
            cli_json_obj_end(j);
        } else {
            cli_table_cell(&t, "%s", rows[i].topic);
            cli_table_cell(&t, "%d", rows[i].partition);
            if (rows[i].committed >= 0)
                cli_table_cell(&t, "%lld", (long long)rows[i].committed);
            else
                cli_table_cell(&t, "-");
            cli_table_cell(&t, "%lld", (long long)hi);
            if (lag >= 0)
                cli_table_cell(&t, "%lld", (long long)lag);
            else
                cli_table_cell(&t, "-");
            cli_table_cell(&t, "%s", md ? rd_kafka_MemberDescription_consumer_id(md) : "-");
            cli_table_cell(&t, "%s", md ? rd_kafka_MemberDescription_host(md) : "-");
            cli_table_cell(&t, "%s", md ? rd_kafka_MemberDescription_client_id(md) : "-");
        }
    }
    /* The total counts the partitions that have a lag (committed ones). */
    if (cli_g.format == CLI_FMT_JSON) {
        cli_json_arr_end(j);
        cli_json_kint(j, "total_lag", total_lag);
        cli_json_obj_end(j);
    } else {
        cli_table_print(&t, stdout);
        printf("Total lag: %lld\n", (long long)total_lag);
    }
    cli_table_free(&t);
    free(rows);
    rd_kafka_topic_partition_list_destroy(com);
    rd_kafka_event_destroy(ev);
    return CLI_EXIT_OK;
}

static int group_describe(int argc, char **argv)
{
    cli_args_t a;
    cli_args_init(&a, "group describe", argc, argv);
    const char **groups = calloc((size_t)argc + 1, sizeof *groups);
    int n = 0, c, rc = CLI_EXIT_OK;
    while ((c = cli_getopt(&a, NULL)) != -1) {
        if (c == 0) {
            groups[n++] = a.arg;
        } else if (c == 'h') {
            cli_verb_help(stdout, group_usage, a.cmd);
            free(groups);
            return 0;
        } else {
            free(groups);
            return CLI_EXIT_USAGE;
        }
    }
    if (n == 0) {
        free(groups);
        return cli_usage_fail(a.cmd, "group name required");
    }
    cli_rk_t k;
    if (!cli_rk_new(&k, RD_KAFKA_PRODUCER, NULL, NULL, NULL)) {
        free(groups);
        return CLI_EXIT_FAIL;
    }
    cli_json_t j;
    cli_json_init(&j, stdout);
    if (cli_g.format == CLI_FMT_JSON)
        cli_json_arr_begin(&j);
    for (int i = 0; i < n; i++) {
        int r = describe_group(&k, groups[i], &j, i == 0);
        if (r)
            rc = r;
        if (k.all_down)
            break;
    }
    if (cli_g.format == CLI_FMT_JSON) {
        cli_json_arr_end(&j);
        cli_json_done(&j);
    }
    cli_rk_destroy(&k);
    free(groups);
    return rc;
}

/* ------------------------------------------------------------ reset */

typedef enum {
    RS_NONE,
    RS_EARLIEST,
    RS_LATEST,
    RS_OFFSET,
    RS_DATETIME,
    RS_SHIFT,
    RS_DURATION
} reset_mode_t;

static void call_alter(cli_rk_t *k, rd_kafka_AdminOptions_t *o, rd_kafka_queue_t *q, void *arg)
{
    rd_kafka_AlterConsumerGroupOffsets_t **ag = arg;
    rd_kafka_AlterConsumerGroupOffsets(k->rk, ag, 1, o, q);
}

/* Add the partitions named by spec ("T" or "T:0,2") to list, checking them
 * against metadata. */
static bool add_topic_spec(const struct rd_kafka_metadata *md, const char *spec,
                           rd_kafka_topic_partition_list_t *list)
{
    char *s = sm_xstrdup(spec), *colon = strchr(s, ':');
    if (colon)
        *colon = 0;
    const rd_kafka_metadata_topic_t *t = cli_md_topic(md, s);
    bool ok = true;
    if (!t || t->err == RD_KAFKA_RESP_ERR_UNKNOWN_TOPIC_OR_PART) {
        cli_fail("topic '%s' does not exist", s);
        ok = false;
    } else if (!colon) {
        for (int p = 0; p < t->partition_cnt; p++)
            rd_kafka_topic_partition_list_add(list, s, t->partitions[p].id);
    } else {
        char *save = NULL;
        for (char *tok = strtok_r(colon + 1, ",", &save); tok && ok;
             tok = strtok_r(NULL, ",", &save)) {
            int32_t p;
            if (!cli_parse_i32(tok, 0, INT32_MAX, &p) || p >= t->partition_cnt) {
                cli_fail("topic '%s' has no partition '%s'", s, tok);
                ok = false;
            } else {
                rd_kafka_topic_partition_list_add(list, s, p);
            }
        }
    }
    free(s);
    return ok;
}

static int group_reset(int argc, char **argv)
{
    static const cli_opt_t opts[] = {{"topic", 1, 't'},        {"all-topics", 0, 'A'},
                                     {"to-earliest", 0, 'E'},  {"to-latest", 0, 'L'},
                                     {"to-offset", 1, 'O'},    {"to-datetime", 1, 'D'},
                                     {"shift-by", 1, 'S'},     {"by-duration", 1, 'U'},
                                     {"execute", 0, 'x'},      {"dry-run", 0, 'd'},
                                     {0}};
    cli_args_t a;
    cli_args_init(&a, "group reset-offsets", argc, argv);
    const char *group = NULL;
    const char **specs = calloc((size_t)argc + 1, sizeof *specs);
    int nspecs = 0, c, rc = CLI_EXIT_OK, nmodes = 0;
    bool all_topics = false, execute = false;
    reset_mode_t mode = RS_NONE;
    int64_t val = 0;
    cli_rk_t k = {0};
    rd_kafka_topic_partition_list_t *parts = NULL, *com = NULL;
    rd_kafka_event_t *dev = NULL;
    while ((c = cli_getopt(&a, opts)) != -1) {
        switch (c) {
        case 0:
            if (group) {
                rc = cli_usage_fail(a.cmd, "one group at a time");
                goto out;
            }
            group = a.arg;
            break;
        case 't': specs[nspecs++] = a.arg; break;
        case 'A': all_topics = true; break;
        case 'E': mode = RS_EARLIEST; nmodes++; break;
        case 'L': mode = RS_LATEST; nmodes++; break;
        case 'O':
            mode = RS_OFFSET;
            nmodes++;
            if (!cli_parse_i64(a.arg, &val) || val < 0) {
                rc = cli_usage_fail(a.cmd, "bad --to-offset '%s'", a.arg);
                goto out;
            }
            break;
        case 'D':
            mode = RS_DATETIME;
            nmodes++;
            if (!cli_parse_datetime_ms(a.arg, &val)) {
                rc = cli_usage_fail(a.cmd, "bad --to-datetime '%s' (e.g. 2024-01-31T12:00:00Z)",
                                    a.arg);
                goto out;
            }
            break;
        case 'S':
            mode = RS_SHIFT;
            nmodes++;
            if (!cli_parse_i64(a.arg, &val)) {
                rc = cli_usage_fail(a.cmd, "bad --shift-by '%s'", a.arg);
                goto out;
            }
            break;
        case 'U':
            mode = RS_DURATION;
            nmodes++;
            if (!cli_parse_duration_ms(a.arg, &val) || val < 0) {
                rc = cli_usage_fail(a.cmd, "bad --by-duration '%s' (e.g. 1h, 30m, 7d)", a.arg);
                goto out;
            }
            break;
        case 'x': execute = true; break;
        case 'd': execute = false; break;
        case 'h': cli_verb_help(stdout, group_usage, a.cmd); goto out;
        default: rc = CLI_EXIT_USAGE; goto out;
        }
    }
    if (!group) {
        rc = cli_usage_fail(a.cmd, "group name required");
        goto out;
    }
    if (nmodes != 1) {
        rc = cli_usage_fail(a.cmd, nmodes ? "give only one reset mode"
                                          : "give a reset mode (--to-earliest, --to-latest, "
                                            "--to-offset, --to-datetime, --shift-by, "
                                            "--by-duration)");
        goto out;
    }
    if (!nspecs == !all_topics) {
        rc = cli_usage_fail(a.cmd, "give --topic T[:P,...] or --all-topics");
        goto out;
    }
    if (!cli_rk_new(&k, RD_KAFKA_PRODUCER, NULL, NULL, NULL)) {
        rc = CLI_EXIT_FAIL;
        goto out;
    }
    const struct rd_kafka_metadata *md;
    if (!cli_rk_metadata(&k, NULL, &md)) {
        rc = CLI_EXIT_FAIL;
        goto out;
    }
    const rd_kafka_ConsumerGroupDescription_t *d = describe_one(&k, group, &dev);
    com = d ? committed_offsets(&k, group) : NULL;
    if (!d || !com) {
        rd_kafka_metadata_destroy(md);
        rc = CLI_EXIT_FAIL;
        goto out;
    }
    parts = rd_kafka_topic_partition_list_new(16);
    for (int i = 0; i < nspecs; i++)
        if (!add_topic_spec(md, specs[i], parts))
            rc = CLI_EXIT_FAIL;
    if (all_topics)
        for (int i = 0; i < com->cnt; i++)
            if (!com->elems[i].err && com->elems[i].offset >= 0)
                rd_kafka_topic_partition_list_add(parts, com->elems[i].topic,
                                                  com->elems[i].partition);
    rd_kafka_metadata_destroy(md);
    if (rc)
        goto out;
    if (parts->cnt == 0) {
        rc = cli_fail("group '%s' has no committed offsets to reset", group);
        goto out;
    }
    qsort(parts->elems, (size_t)parts->cnt, sizeof *parts->elems, cmp_tp);
    rd_kafka_consumer_group_state_t state = rd_kafka_ConsumerGroupDescription_state(d);
    size_t nm = rd_kafka_ConsumerGroupDescription_member_count(d);
    if (execute && group_is_active(state, nm)) {
        rc = cli_fail("group '%s' is %s with %zu member%s; stop its consumers before resetting "
                      "offsets", group, rd_kafka_consumer_group_state_name(state), nm,
                      nm == 1 ? "" : "s");
        goto out;
    }
    /* Current committed offsets go in a parallel array; parts gets the new. */
    int64_t *cur = calloc((size_t)parts->cnt, sizeof *cur);
    int64_t *los = calloc((size_t)parts->cnt, sizeof *los);
    int64_t *his = calloc((size_t)parts->cnt, sizeof *his);
    for (int i = 0; i < parts->cnt; i++) {
        rd_kafka_topic_partition_t *p = &parts->elems[i];
        cur[i] = -1;
        rd_kafka_topic_partition_t *cp = rd_kafka_topic_partition_list_find(com, p->topic,
                                                                            p->partition);
        if (cp && !cp->err)
            cur[i] = cp->offset;
        if (!cli_rk_watermarks(&k, p->topic, p->partition, &los[i], &his[i])) {
            rc = cli_fail("cannot read offsets of %s-%d", p->topic, p->partition);
            break;
        }
    }
    if (!rc && (mode == RS_DATETIME || mode == RS_DURATION)) {
        int64_t ts = mode == RS_DATETIME ? val : sm_now_wall_ms() - val;
        for (int i = 0; i < parts->cnt; i++)
            parts->elems[i].offset = ts;
        rd_kafka_resp_err_t err = rd_kafka_offsets_for_times(k.rk, parts, cli_g.timeout_ms);
        if (err)
            rc = cli_fail("offsets for time: %s", rd_kafka_err2str(err));
        for (int i = 0; !rc && i < parts->cnt; i++)
            if (parts->elems[i].err || parts->elems[i].offset < 0)
                parts->elems[i].offset = his[i]; /* nothing that new: the end */
    }
    for (int i = 0; !rc && i < parts->cnt; i++) {
        int64_t o = parts->elems[i].offset;
        switch (mode) {
        case RS_EARLIEST: o = los[i]; break;
        case RS_LATEST: o = his[i]; break;
        case RS_OFFSET: o = val; break;
        case RS_SHIFT: o = (cur[i] >= 0 ? cur[i] : his[i]) + val; break;
        default: break;
        }
        parts->elems[i].offset = SM_MAX(SM_MIN(o, his[i]), los[i]);
        parts->elems[i].err = 0;
    }
    if (!rc) {
        cli_json_t j;
        cli_json_init(&j, stdout);
        cli_table_t t;
        cli_table_init(&t, 4);
        cli_table_cell(&t, "TOPIC");
        cli_table_cell(&t, "PARTITION");
        cli_table_cell(&t, "CURRENT");
        cli_table_cell(&t, "NEW");
        if (cli_g.format == CLI_FMT_JSON) {
            cli_json_obj_begin(&j);
            cli_json_kstr(&j, "group", group);
            cli_json_kbool(&j, "executed", execute);
            cli_json_key(&j, "partitions");
            cli_json_arr_begin(&j);
        }
        for (int i = 0; i < parts->cnt; i++) {
            if (cli_g.format == CLI_FMT_JSON) {
                cli_json_obj_begin(&j);
                cli_json_kstr(&j, "topic", parts->elems[i].topic);
                cli_json_kint(&j, "partition", parts->elems[i].partition);
                cli_json_kint(&j, "current_offset", cur[i]);
                cli_json_kint(&j, "new_offset", parts->elems[i].offset);
                cli_json_obj_end(&j);
            } else {
                cli_table_cell(&t, "%s", parts->elems[i].topic);
                cli_table_cell(&t, "%d", parts->elems[i].partition);
                if (cur[i] >= 0)
                    cli_table_cell(&t, "%lld", (long long)cur[i]);
                else
                    cli_table_cell(&t, "-");
                cli_table_cell(&t, "%lld", (long long)parts->elems[i].offset);
            }
        }
        if (execute) {
            rd_kafka_AlterConsumerGroupOffsets_t *ag =
                rd_kafka_AlterConsumerGroupOffsets_new(group, parts);
            rd_kafka_event_t *ev = run_admin(&k, RD_KAFKA_ADMIN_OP_ALTERCONSUMERGROUPOFFSETS,
                                             "alter group offsets", call_alter, &ag);
            rd_kafka_AlterConsumerGroupOffsets_destroy(ag);
            if (!ev) {
                rc = CLI_EXIT_FAIL;
            } else {
                size_t n;
                const rd_kafka_group_result_t **gr =
                    rd_kafka_AlterConsumerGroupOffsets_result_groups(
                        rd_kafka_event_AlterConsumerGroupOffsets_result(ev), &n);
                for (size_t g = 0; g < n; g++) {
                    if (rd_kafka_group_result_error(gr[g]))
                        rc = cli_fail("group '%s': %s", group,
                                      rd_kafka_error_string(rd_kafka_group_result_error(gr[g])));
                    const rd_kafka_topic_partition_list_t *pl =
                        rd_kafka_group_result_partitions(gr[g]);
                    for (int i = 0; pl && i < pl->cnt; i++)
                        if (pl->elems[i].err)
                            rc = cli_fail("%s-%d: %s", pl->elems[i].topic,
                                          pl->elems[i].partition,
                                          rd_kafka_err2str(pl->elems[i].err));
                }
                rd_kafka_event_destroy(ev);
            }
        }
        if (cli_g.format == CLI_FMT_JSON) {
            cli_json_arr_end(&j);
            cli_json_obj_end(&j);
            cli_json_done(&j);
        } else {
            cli_table_print(&t, stdout);
            if (!execute)
                printf("(dry run: add --execute to apply)\n");
            else if (!rc)
                printf("offsets of group %s reset\n", group);
        }
        cli_table_free(&t);
    }
    free(cur);
    free(los);
    free(his);
out:
    if (parts)
        rd_kafka_topic_partition_list_destroy(parts);
    if (com)
        rd_kafka_topic_partition_list_destroy(com);
    if (dev)
        rd_kafka_event_destroy(dev);
    cli_rk_destroy(&k);
    free(specs);
    return rc;
}

/* ------------------------------------------------------------ delete */

typedef struct del_arg {
    rd_kafka_DeleteGroup_t **dg;
    size_t n;
} del_arg_t;

static void call_delete(cli_rk_t *k, rd_kafka_AdminOptions_t *o, rd_kafka_queue_t *q, void *arg)
{
    del_arg_t *d = arg;
    rd_kafka_DeleteGroups(k->rk, d->dg, d->n, o, q);
}

static int group_delete(int argc, char **argv)
{
    cli_args_t a;
    cli_args_init(&a, "group delete", argc, argv);
    const char **groups = calloc((size_t)argc + 1, sizeof *groups);
    int n = 0, c, rc = CLI_EXIT_OK;
    while ((c = cli_getopt(&a, NULL)) != -1) {
        if (c == 0) {
            groups[n++] = a.arg;
        } else if (c == 'h') {
            cli_verb_help(stdout, group_usage, a.cmd);
            free(groups);
            return 0;
        } else {
            free(groups);
            return CLI_EXIT_USAGE;
        }
    }
    if (n == 0) {
        free(groups);
        return cli_usage_fail(a.cmd, "group name required");
    }
    cli_rk_t k;
    if (!cli_rk_new(&k, RD_KAFKA_PRODUCER, NULL, NULL, NULL)) {
        free(groups);
        return CLI_EXIT_FAIL;
    }
    del_arg_t d = {calloc((size_t)n, sizeof(rd_kafka_DeleteGroup_t *)), (size_t)n};
    for (int i = 0; i < n; i++)
        d.dg[i] = rd_kafka_DeleteGroup_new(groups[i]);
    rd_kafka_event_t *ev =
        run_admin(&k, RD_KAFKA_ADMIN_OP_DELETEGROUPS, "delete groups", call_delete, &d);
    if (!ev) {
        rc = CLI_EXIT_FAIL;
    } else {
        size_t nr;
        const rd_kafka_group_result_t **gr =
            rd_kafka_DeleteGroups_result_groups(rd_kafka_event_DeleteGroups_result(ev), &nr);
        cli_json_t j;
        cli_json_init(&j, stdout);
        if (cli_g.format == CLI_FMT_JSON)
            cli_json_arr_begin(&j);
        for (size_t i = 0; i < nr; i++) {
            const rd_kafka_error_t *e = rd_kafka_group_result_error(gr[i]);
            const char *name = rd_kafka_group_result_name(gr[i]);
            if (e)
                rc = cli_fail("group '%s': %s", name, rd_kafka_error_string(e));
            if (cli_g.format == CLI_FMT_JSON) {
                cli_json_obj_begin(&j);
                cli_json_kstr(&j, "group", name);
                cli_json_kstr(&j, "error", e ? rd_kafka_error_string(e) : NULL);
                cli_json_obj_end(&j);
            } else if (!e) {
                printf("deleted group %s\n", name);
            }
        }
        if (cli_g.format == CLI_FMT_JSON) {
            cli_json_arr_end(&j);
            cli_json_done(&j);
        }
        rd_kafka_event_destroy(ev);
    }
    rd_kafka_DeleteGroup_destroy_array(d.dg, d.n);
    free(d.dg);
    free(groups);
    cli_rk_destroy(&k);
    return rc;
}

/* ------------------------------------------------------------ delete-offsets */

static void call_delete_offsets(cli_rk_t *k, rd_kafka_AdminOptions_t *o, rd_kafka_queue_t *q,
                                void *arg)
{
    rd_kafka_DeleteConsumerGroupOffsets_t **d = arg;
    rd_kafka_DeleteConsumerGroupOffsets(k->rk, d, 1, o, q);
}

/* OffsetDelete: the coordinator refuses partitions a live member of the
 * group is subscribed to (GROUP_SUBSCRIBED_TO_TOPIC), reported per row. */
static int group_delete_offsets(int argc, char **argv)
{
    cli_args_t a;
    cli_args_init(&a, "group delete-offsets", argc, argv);
    const char *group = NULL;
    const char **specs = calloc((size_t)argc + 1, sizeof *specs);
    int nspecs = 0, c, rc = CLI_EXIT_OK;
    while ((c = cli_getopt(&a, NULL)) != -1) {
        if (c == 0 && !group) {
            group = a.arg;
        } else if (c == 0) {
            specs[nspecs++] = a.arg;
        } else if (c == 'h') {
            cli_verb_help(stdout, group_usage, a.cmd);
            free(specs);
            return 0;
        } else {
            free(specs);
            return CLI_EXIT_USAGE;
        }
    }
    if (!group || !nspecs) {
        free(specs);
        return cli_usage_fail(a.cmd, "give GROUP and at least one TOPIC[:P,P...]");
    }
    cli_rk_t k;
    if (!cli_rk_new(&k, RD_KAFKA_PRODUCER, NULL, NULL, NULL)) {
        free(specs);
        return CLI_EXIT_FAIL;
    }
    const struct rd_kafka_metadata *md = NULL;
    rd_kafka_topic_partition_list_t *parts = rd_kafka_topic_partition_list_new(8);
    rd_kafka_DeleteConsumerGroupOffsets_t *del = NULL;
    rd_kafka_event_t *ev = NULL;
    if (!cli_rk_metadata(&k, NULL, &md)) {
        rc = CLI_EXIT_FAIL;
        goto out;
    }
    for (int i = 0; i < nspecs; i++)
        if (!add_topic_spec(md, specs[i], parts))
            rc = CLI_EXIT_FAIL;
    if (rc)
        goto out;
    del = rd_kafka_DeleteConsumerGroupOffsets_new(group, parts);
    ev = run_admin(&k, RD_KAFKA_ADMIN_OP_DELETECONSUMERGROUPOFFSETS, "delete group offsets",
                   call_delete_offsets, &del);
    if (!ev) {
        rc = CLI_EXIT_FAIL;
        goto out;
    }
    size_t nr;
    const rd_kafka_group_result_t **gr = rd_kafka_DeleteConsumerGroupOffsets_result_groups(
        rd_kafka_event_DeleteConsumerGroupOffsets_result(ev), &nr);
    if (nr < 1) {
        rc = cli_fail("delete offsets of group '%s': empty response", group);
        goto out;
    }
    if (rd_kafka_group_result_error(gr[0])) {
        rc = cli_fail("group '%s': %s", group,
                      rd_kafka_error_string(rd_kafka_group_result_error(gr[0])));
        goto out;
    }
    const rd_kafka_topic_partition_list_t *res = rd_kafka_group_result_partitions(gr[0]);
    cli_json_t j;
    cli_json_init(&j, stdout);
    cli_table_t t;
    cli_table_init(&t, 3);
    cli_table_cell(&t, "TOPIC");
    cli_table_cell(&t, "PARTITION");
    cli_table_cell(&t, "STATUS");
    if (cli_g.format == CLI_FMT_JSON)
        cli_json_arr_begin(&j);
    for (int i = 0; res && i < res->cnt; i++) {
        const rd_kafka_topic_partition_t *p = &res->elems[i];
        const char *e = p->err ? rd_kafka_err2str(p->err) : NULL;
        if (e)
            rc = cli_fail("group '%s' %s [%d]: %s", group, p->topic, p->partition, e);
        if (cli_g.format == CLI_FMT_JSON) {
            cli_json_obj_begin(&j);
            cli_json_kstr(&j, "topic", p->topic);
            cli_json_kint(&j, "partition", p->partition);
            cli_json_kstr(&j, "error", e);
            cli_json_obj_end(&j);
        } else {
            cli_table_cell(&t, "%s", p->topic);
            cli_table_cell(&t, "%d", p->partition);
            cli_table_cell(&t, "%s", e ? e : "deleted");
        }
    }
    if (cli_g.format == CLI_FMT_JSON) {
        cli_json_arr_end(&j);
        cli_json_done(&j);
    } else {
        cli_table_print(&t, stdout);
    }
    cli_table_free(&t);
out:
    if (ev)
        rd_kafka_event_destroy(ev);
    if (del)
        rd_kafka_DeleteConsumerGroupOffsets_destroy(del);
    if (md)
        rd_kafka_metadata_destroy(md);
    rd_kafka_topic_partition_list_destroy(parts);
    free(specs);
    cli_rk_destroy(&k);
    return rc;
}

int cli_cmd_group(int argc, char **argv)
{
    int rc0 = cli_noun_start("group", group_usage, argc, argv);
    if (rc0 >= 0)
        return rc0;
    const char *verb = argv[0];
    if (strcmp(verb, "list") == 0 || strcmp(verb, "ls") == 0) {
        int rc = cli_verb_no_args("group list", group_usage, argc, argv);
        return rc >= 0 ? rc : group_list();
    }
    if (strcmp(verb, "describe") == 0)
        return group_describe(argc - 1, argv + 1);
    if (strcmp(verb, "reset-offsets") == 0 || strcmp(verb, "reset") == 0)
        return group_reset(argc - 1, argv + 1);
    if (strcmp(verb, "delete") == 0)
        return group_delete(argc - 1, argv + 1);
    if (strcmp(verb, "delete-offsets") == 0)
        return group_delete_offsets(argc - 1, argv + 1);
    return cli_usage_fail("group", "unknown verb '%s'", verb);
}
