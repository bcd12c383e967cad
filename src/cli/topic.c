/*
 * topic.c - `samsa topic create|list|describe|alter|delete`.
 *
 * All through librdkafka's Admin API (CreateTopics, DeleteTopics,
 * CreatePartitions, DescribeConfigs) plus Metadata and ListOffsets for
 * describe. Per-topic failures are printed per topic and make the exit
 * status 1; the other topics of the same command still go through, as
 * kafka-topics does. Main thread only.
 */
#include "cli.h"
#include "out.h"

#include <stdlib.h>
#include <string.h>
#include <time.h>

static void topic_usage(FILE *f)
{
    fprintf(f,
            "usage: samsa topic <verb> [args]\n"
            "  create NAME... [-p PARTITIONS] [-r REPLICAS] [-c key=value]... [--if-not-exists]\n"
            "                 (-p/-r default to the broker's num.partitions and\n"
            "                  default.replication.factor)\n"
            "  list [-a|--all]            topics with partition and replica counts\n"
            "                             (-a includes internal topics such as __consumer_offsets)\n"
            "  describe NAME... [--all-configs] [--metrics-url URL]\n"
            "                             partitions (leader, replicas, ISR, start/end offset)\n"
            "                             and configs that differ from their defaults; with\n"
            "                             --metrics-url (a broker's metrics.listener) also the\n"
            "                             log cleaner's dirty ratio and last cleaning of\n"
            "                             compacted partitions hosted there\n"
            "  alter NAME -p PARTITIONS   raise the partition count\n"
            "  delete NAME... [--if-exists]\n"
            "  delete-records NAME (--partition N --offset O | -p N:O[,N:O...]... | --offset O)\n"
            "                             delete records before offset O (O = end or -1: the\n"
            "                             partition's end); --offset alone: every partition;\n"
            "                             prints each partition's new start (low watermark)\n");
}

static void print_int_list(char *buf, size_t len, const int32_t *v, int n)
{
    size_t o = 0;
    buf[0] = 0;
    for (int i = 0; i < n && o < len; i++)
        o += (size_t)snprintf(buf + o, len - o, "%s%d", i ? "," : "", v[i]);
}

/* Print the per-topic results of a create/delete/alter; returns exit code. */
static int report_results(const rd_kafka_topic_result_t **res, size_t n, const char *done,
                          rd_kafka_resp_err_t ignore)
{
    int rc = CLI_EXIT_OK;
    cli_json_t j;
    cli_json_init(&j, stdout);
    if (cli_g.format == CLI_FMT_JSON)
        cli_json_arr_begin(&j);
    for (size_t i = 0; i < n; i++) {
        const char *name = rd_kafka_topic_result_name(res[i]);
        rd_kafka_resp_err_t err = rd_kafka_topic_result_error(res[i]);
        const char *msg = rd_kafka_topic_result_error_string(res[i]);
        bool ignored = err && err == ignore;
        if (err && !ignored) {
            rc = CLI_EXIT_FAIL;
            fprintf(stderr, "samsa: error: %s: %s\n", name,
                    msg && *msg ? msg : rd_kafka_err2str(err));
        }
        if (cli_g.format == CLI_FMT_JSON) {
            cli_json_obj_begin(&j);
            cli_json_kstr(&j, "topic", name);
            cli_json_kstr(&j, "error", err && !ignored ? (msg && *msg ? msg : rd_kafka_err2str(err))
                                                       : NULL);
            cli_json_obj_end(&j);
        } else if (!err || ignored) {
            printf("%s %s%s\n", done, name, ignored ? " (nothing to do)" : "");
        }
    }
    if (cli_g.format == CLI_FMT_JSON) {
        cli_json_arr_end(&j);
        cli_json_done(&j);
    }
    return rc;
}

static int topic_create(int argc, char **argv)
{
    static const cli_opt_t opts[] = {{"partitions", 1, 'p'},
                                     {"replicas", 1, 'r'},
                                     {"replication-factor", 1, 'r'},
                                     {"config", 1, 'c'},
                                     {"if-not-exists", 0, 'i'},
                                     {0}};
    cli_args_t a;
    cli_args_init(&a, "topic create", argc, argv);
    int32_t partitions = -1, replicas = -1;
    bool if_not_exists = false;
    const char **names = calloc((size_t)argc + 1, sizeof *names);
    char **cfgs = calloc((size_t)argc + 1, sizeof *cfgs);
    int nnames = 0, ncfgs = 0, rc = CLI_EXIT_OK, c;
    rd_kafka_NewTopic_t **nts = NULL;
    cli_rk_t k = {0};
    while ((c = cli_getopt(&a, opts)) != -1) {
        switch (c) {
        case 0: names[nnames++] = a.arg; break;
        case 'p':
            if (!cli_parse_i32(a.arg, 1, 1000000, &partitions)) {
                rc = cli_usage_fail(a.cmd, "bad partition count '%s'", a.arg);
                goto out;
            }
            break;
        case 'r':
            if (!cli_parse_i32(a.arg, 1, 32767, &replicas)) {
                rc = cli_usage_fail(a.cmd, "bad replication factor '%s'", a.arg);
                goto out;
            }
            break;
        case 'c': cfgs[ncfgs++] = (char *)a.arg; break;
        case 'i': if_not_exists = true; break;
        case 'h': cli_verb_help(stdout, topic_usage, a.cmd); goto out;
        default: rc = CLI_EXIT_USAGE; goto out;
        }
    }
    if (nnames == 0) {
        rc = cli_usage_fail(a.cmd, "topic name required");
        goto out;
    }
    for (int i = 0; i < ncfgs; i++)
        if (!strchr(cfgs[i], '=') || cfgs[i][0] == '=') {
            rc = cli_usage_fail(a.cmd, "config must be key=value, got '%s'", cfgs[i]);
            goto out;
        }
    if (!cli_rk_new(&k, RD_KAFKA_PRODUCER, NULL, NULL, NULL)) {
        rc = CLI_EXIT_FAIL;
        goto out;
    }
    nts = calloc((size_t)nnames, sizeof *nts);
    char errstr[512];
    for (int i = 0; i < nnames; i++) {
        nts[i] = rd_kafka_NewTopic_new(names[i], partitions, replicas, errstr, sizeof errstr);
        if (!nts[i]) {
            rc = cli_fail("%s: %s", names[i], errstr);
            goto out;
        }
        for (int j = 0; j < ncfgs; j++) {
            char *kv = sm_xstrdup(cfgs[j]), *key, *val;
            if (cli_split_kv(kv, &key, &val) &&
                rd_kafka_NewTopic_set_config(nts[i], key, val) != RD_KAFKA_RESP_ERR_NO_ERROR)
                rc = cli_fail("%s: bad config %s", names[i], cfgs[j]);
            free(kv);
            if (rc)
                goto out;
        }
    }
    rd_kafka_queue_t *q = rd_kafka_queue_new(k.rk);
    rd_kafka_AdminOptions_t *o = cli_rk_admin_opts(&k, RD_KAFKA_ADMIN_OP_CREATETOPICS);
    rd_kafka_CreateTopics(k.rk, nts, (size_t)nnames, o, q);
    rd_kafka_event_t *ev = cli_rk_wait(&k, q, "create topics");
    if (!ev) {
        rc = CLI_EXIT_FAIL;
    } else if (rd_kafka_event_error(ev)) {
        rc = cli_fail("create topics: %s", rd_kafka_event_error_string(ev));
    } else {
        size_t n;
        const rd_kafka_topic_result_t **res =
            rd_kafka_CreateTopics_result_topics(rd_kafka_event_CreateTopics_result(ev), &n);
        rc = report_results(res, n, "created topic",
                            if_not_exists ? RD_KAFKA_RESP_ERR_TOPIC_ALREADY_EXISTS : 0);
    }
    if (ev)
        rd_kafka_event_destroy(ev);
    rd_kafka_AdminOptions_destroy(o);
    rd_kafka_queue_destroy(q);
out:
    if (nts)
        for (int i = 0; i < nnames; i++)
            if (nts[i])
                rd_kafka_NewTopic_destroy(nts[i]);
    free(nts);
    cli_rk_destroy(&k);
    free(names);
    free(cfgs);
    return rc;
}

static int cmp_topic(const void *x, const void *y)
{
    return strcmp(((const rd_kafka_metadata_topic_t *)x)->topic,
                  ((const rd_kafka_metadata_topic_t *)y)->topic);
}

static int topic_list(int argc, char **argv)
{
    static const cli_opt_t opts[] = {{"all", 0, 'a'}, {"internal", 0, 'a'}, {0}};
    cli_args_t a;
    cli_args_init(&a, "topic list", argc, argv);
    bool all = false;
    int c;
    while ((c = cli_getopt(&a, opts)) != -1) {
        if (c == 'a')
            all = true;
        else if (c == 'h') {
            cli_verb_help(stdout, topic_usage, a.cmd);
            return 0;
        } else if (c == 0)
            return cli_usage_fail(a.cmd, "unexpected argument '%s'", a.arg);
        else
            return CLI_EXIT_USAGE;
    }
    cli_rk_t k;
    if (!cli_rk_new(&k, RD_KAFKA_PRODUCER, NULL, NULL, NULL))
        return CLI_EXIT_FAIL;
    const struct rd_kafka_metadata *md;
    if (!cli_rk_metadata(&k, NULL, &md)) {
        cli_rk_destroy(&k);
        return CLI_EXIT_FAIL;
    }
    rd_kafka_metadata_topic_t *ts = calloc((size_t)md->topic_cnt + 1, sizeof *ts);
    int n = 0;
    for (int i = 0; i < md->topic_cnt; i++)
        if (all || strncmp(md->topics[i].topic, "__", 2) != 0)
            ts[n++] = md->topics[i];
    qsort(ts, (size_t)n, sizeof *ts, cmp_topic);
    if (cli_g.format == CLI_FMT_JSON) {
        cli_json_t j;
        cli_json_init(&j, stdout);
        cli_json_arr_begin(&j);
        for (int i = 0; i < n; i++) {
            cli_json_obj_begin(&j);
            cli_json_kstr(&j, "name", ts[i].topic);
            cli_json_kint(&j, "partitions", ts[i].partition_cnt);
            cli_json_kint(&j, "replicas",
                          ts[i].partition_cnt ? ts[i].partitions[0].replica_cnt : 0);
            cli_json_kstr(&j, "error", ts[i].err ? rd_kafka_err2str(ts[i].err) : NULL);
            cli_json_obj_end(&j);
        }
        cli_json_arr_end(&j);
        cli_json_done(&j);
    } else {
        cli_table_t t;
        cli_table_init(&t, 3);
        cli_table_cell(&t, "NAME");
        cli_table_cell(&t, "PARTITIONS");
        cli_table_cell(&t, "REPLICAS");
        for (int i = 0; i < n; i++) {
            cli_table_cell(&t, "%s", ts[i].topic);
            cli_table_cell(&t, "%d", ts[i].partition_cnt);
            cli_table_cell(&t, "%d", ts[i].partition_cnt ? ts[i].partitions[0].replica_cnt : 0);
        }
        cli_table_print(&t, stdout);
        cli_table_free(&t);
    }
    free(ts);
    rd_kafka_metadata_destroy(md);
    cli_rk_destroy(&k);
    return CLI_EXIT_OK;
}

static int cmp_part(const void *x, const void *y)
{
    return ((const rd_kafka_metadata_partition_t *)x)->id -
           ((const rd_kafka_metadata_partition_t *)y)->id;
}

/* DescribeConfigs of the named topics; *ev owns the result (NULL on failure,
 * with a warning: describe still prints partitions). */
static const rd_kafka_ConfigResource_t **describe_topic_configs(cli_rk_t *k, char **names,
                                                               int n, size_t *cnt,
                                                               rd_kafka_event_t **ev)
{
    rd_kafka_ConfigResource_t **rs = calloc((size_t)n, sizeof *rs);
    for (int i = 0; i < n; i++)
        rs[i] = rd_kafka_ConfigResource_new(RD_KAFKA_RESOURCE_TOPIC, names[i]);
    rd_kafka_queue_t *q = rd_kafka_queue_new(k->rk);
    rd_kafka_AdminOptions_t *o = cli_rk_admin_opts(k, RD_KAFKA_ADMIN_OP_DESCRIBECONFIGS);
    rd_kafka_DescribeConfigs(k->rk, rs, (size_t)n, o, q);
    *ev = cli_rk_wait(k, q, "describe configs");
    const rd_kafka_ConfigResource_t **res = NULL;
    if (*ev && rd_kafka_event_error(*ev)) {
        cli_warn("cannot describe configs: %s", rd_kafka_event_error_string(*ev));
    } else if (*ev) {
        res = rd_kafka_DescribeConfigs_result_resources(
            rd_kafka_event_DescribeConfigs_result(*ev), cnt);
    }
    rd_kafka_AdminOptions_destroy(o);
    rd_kafka_queue_destroy(q);
    rd_kafka_ConfigResource_destroy_array(rs, (size_t)n);
    free(rs);
    return res;
}

static const rd_kafka_ConfigResource_t *
find_res(const rd_kafka_ConfigResource_t **res, size_t n, const char *name)
{
    for (size_t i = 0; res && i < n; i++)
        if (strcmp(rd_kafka_ConfigResource_name(res[i]), name) == 0)
            return res[i];
    return NULL;
}

/* A compacted partition's cleaner gauges from a /metrics body: dirty ratio
 * (-1 when absent) and last cleaning (ms since the epoch, -1 none). */
static void cleaner_gauges(const char *metrics, const char *topic, int32_t part, double *ratio,
                           long long *last)
{
    *ratio = -1;
    *last = -1;
    if (!metrics)
        return;
    char key[400];
    snprintf(key, sizeof key, "samsa_log_cleaner_dirty_ratio{topic=\"%s\",partition=\"%d\"} ",
             topic, part);
    const char *at = strstr(metrics, key);
    if (at)
        *ratio = strtod(at + strlen(key), NULL);
    snprintf(key, sizeof key,
             "samsa_log_cleaner_last_clean_time_ms{topic=\"%s\",partition=\"%d\"} ", topic, part);
    at = strstr(metrics, key);
    if (at)
        *last = strtoll(at + strlen(key), NULL, 10);
}

static char *fetch_metrics(const char *url)
{
    char host[256], port[16], why[256];
    int status = 0;
    char *body = NULL;
    if (!cli_split_url(url, host, sizeof host, port, sizeof port)) {
        cli_warn("bad --metrics-url %s (expected http://host:port)", url);
        return NULL;
    }
    if (!cli_http_get(host, port, "/metrics", &status, &body, why, sizeof why) || status != 200) {
        cli_warn("cannot read %s/metrics: %s", url, body ? "not 200" : why);
        free(body);
        return NULL;
    }
    return body;
}

static int topic_describe(int argc, char **argv)
{
    static const cli_opt_t opts[] = {{"all-configs", 0, 'A'}, {"metrics-url", 1, 'M'}, {0}};
    const char *metrics_url = NULL;
    cli_args_t a;
    cli_args_init(&a, "topic describe", argc, argv);
    char **names = calloc((size_t)argc + 1, sizeof *names);
    int nnames = 0, c, rc = CLI_EXIT_OK;
    bool all_configs = false;
    while ((c = cli_getopt(&a, opts)) != -1) {
        if (c == 0)
            names[nnames++] = (char *)a.arg;
        else if (c == 'A')
            all_configs = true;
        else if (c == 'M')
            metrics_url = a.arg;
        else if (c == 'h') {
            cli_verb_help(stdout, topic_usage, a.cmd);
            free(names);
            return 0;
        } else {
            free(names);
            return CLI_EXIT_USAGE;
        }
    }
    if (nnames == 0) {
        free(names);
        return cli_usage_fail(a.cmd, "topic name required");
    }
    cli_rk_t k;
    const struct rd_kafka_metadata *md = NULL;
    if (!cli_rk_new(&k, RD_KAFKA_PRODUCER, NULL, NULL, NULL)) {
        free(names);
        return CLI_EXIT_FAIL;
    }
    if (!cli_rk_metadata(&k, NULL, &md)) {
        rc = CLI_EXIT_FAIL;
        goto out;
    }
    /* Unknown topics are reported and dropped; the rest are described. */
    int nfound = 0;
    for (int i = 0; i < nnames; i++) {
        const rd_kafka_metadata_topic_t *t = cli_md_topic(md, names[i]);
        if (!t || t->err == RD_KAFKA_RESP_ERR_UNKNOWN_TOPIC_OR_PART) {
            rc = cli_fail("topic '%s' does not exist", names[i]);
            continue;
        }
        names[nfound++] = names[i];
    }
    size_t ncfg = 0;
    rd_kafka_event_t *cev = NULL;
    const rd_kafka_ConfigResource_t **cres =
        nfound ? describe_topic_configs(&k, names, nfound, &ncfg, &cev) : NULL;
    char *metrics = metrics_url ? fetch_metrics(metrics_url) : NULL;
    cli_json_t j;
    cli_json_init(&j, stdout);
    if (cli_g.format == CLI_FMT_JSON)
        cli_json_arr_begin(&j);
    for (int ti = 0; ti < nfound; ti++) {
        const rd_kafka_metadata_topic_t *t = cli_md_topic(md, names[ti]);
        rd_kafka_metadata_partition_t *ps =
            calloc((size_t)t->partition_cnt + 1, sizeof *ps);
        memcpy(ps, t->partitions, sizeof *ps * (size_t)t->partition_cnt);
        qsort(ps, (size_t)t->partition_cnt, sizeof *ps, cmp_part);
        const rd_kafka_ConfigResource_t *cr = find_res(cres, ncfg, t->topic);
        size_t nent = 0;
        const rd_kafka_ConfigEntry_t **ents = cr ? rd_kafka_ConfigResource_configs(cr, &nent) : NULL;
        if (cli_g.format == CLI_FMT_JSON) {
            cli_json_obj_begin(&j);
            cli_json_kstr(&j, "name", t->topic);
            cli_json_kbool(&j, "internal", strncmp(t->topic, "__", 2) == 0);
            cli_json_kstr(&j, "error", t->err ? rd_kafka_err2str(t->err) : NULL);
            cli_json_key(&j, "partitions");
            cli_json_arr_begin(&j);
        } else {
            printf("%sTopic: %s  partitions: %d  replication factor: %d%s%s\n", ti ? "\n" : "",
                   t->topic, t->partition_cnt, t->partition_cnt ? ps[0].replica_cnt : 0,
                   t->err ? "  error: " : "", t->err ? rd_kafka_err2str(t->err) : "");
        }
        cli_table_t tab;
        cli_table_init(&tab, metrics ? 8 : 6);
        cli_table_cell(&tab, "PARTITION");
        cli_table_cell(&tab, "LEADER");
        cli_table_cell(&tab, "REPLICAS");
        cli_table_cell(&tab, "ISR");
        cli_table_cell(&tab, "START");
        cli_table_cell(&tab, "END");
        if (metrics) {
            cli_table_cell(&tab, "DIRTY");
            cli_table_cell(&tab, "LAST-CLEANED");
        }
        for (int i = 0; i < t->partition_cnt; i++) {
            int64_t lo = -1, hi = -1;
            cli_rk_watermarks(&k, t->topic, ps[i].id, &lo, &hi);
            double dirty;
            long long cleaned;
            cleaner_gauges(metrics, t->topic, ps[i].id, &dirty, &cleaned);
            if (cli_g.format == CLI_FMT_JSON) {
                cli_json_obj_begin(&j);
                cli_json_kint(&j, "partition", ps[i].id);
                cli_json_kint(&j, "leader", ps[i].leader);
                cli_json_key(&j, "replicas");
                cli_json_arr_begin(&j);
                for (int r = 0; r < ps[i].replica_cnt; r++)
                    cli_json_int(&j, ps[i].replicas[r]);
                cli_json_arr_end(&j);
                cli_json_key(&j, "isr");
                cli_json_arr_begin(&j);
                for (int r = 0; r < ps[i].isr_cnt; r++)
                    cli_json_int(&j, ps[i].isrs[r]);
                cli_json_arr_end(&j);
                cli_json_kint(&j, "start_offset", lo);
                cli_json_kint(&j, "end_offset", hi);
                if (metrics && dirty >= 0) {
                    char r[32];
                    snprintf(r, sizeof r, "%.4f", dirty);
                    cli_json_kstr(&j, "dirty_ratio", r);
                    cli_json_kint(&j, "last_clean_ms", cleaned);
                }
                cli_json_kstr(&j, "error", ps[i].err ? rd_kafka_err2str(ps[i].err) : NULL);
                cli_json_obj_end(&j);
            } else {
                char rep[256], isr[256];
                print_int_list(rep, sizeof rep, ps[i].replicas, ps[i].replica_cnt);
                print_int_list(isr, sizeof isr, ps[i].isrs, ps[i].isr_cnt);
                cli_table_cell(&tab, "%d", ps[i].id);
                cli_table_cell(&tab, "%d", ps[i].leader);
                cli_table_cell(&tab, "%s", rep);
                cli_table_cell(&tab, "%s", isr);
                cli_table_cell(&tab, "%lld", (long long)lo);
                cli_table_cell(&tab, "%lld", (long long)hi);
                if (metrics && dirty < 0) {
                    cli_table_cell(&tab, "-");
                    cli_table_cell(&tab, "-");
                } else if (metrics) {
                    char when[64] = "never";
                    if (cleaned > 0) {
                        time_t secs = (time_t)(cleaned / 1000);
                        struct tm tm;
                        gmtime_r(&secs, &tm);
                        strftime(when, sizeof when, "%Y-%m-%dT%H:%M:%SZ", &tm);
                    }
                    cli_table_cell(&tab, "%.1f%%", dirty * 100);
                    cli_table_cell(&tab, "%s", when);
                }
            }
        }
        if (cli_g.format == CLI_FMT_JSON) {
            cli_json_arr_end(&j);
            cli_json_key(&j, "configs");
            cli_json_obj_begin(&j);
        } else {
            cli_table_print(&tab, stdout);
        }
        cli_table_free(&tab);
        int shown = 0;
        for (size_t e = 0; e < nent; e++) {
            if (!all_configs && rd_kafka_ConfigEntry_is_default(ents[e]))
                continue;
            const char *v = rd_kafka_ConfigEntry_value(ents[e]);
            if (rd_kafka_ConfigEntry_is_sensitive(ents[e]))
                v = "[hidden]";
            if (cli_g.format == CLI_FMT_JSON) {
                cli_json_kstr(&j, rd_kafka_ConfigEntry_name(ents[e]), v);
            } else {
                if (shown++ == 0)
                    printf("Configs%s:\n", all_configs ? "" : " (not default)");
                printf("  %s=%s  (%s)\n", rd_kafka_ConfigEntry_name(ents[e]), v ? v : "null",
                       rd_kafka_ConfigSource_name(rd_kafka_ConfigEntry_source(ents[e])));
            }
        }
        if (cli_g.format == CLI_FMT_JSON) {
            cli_json_obj_end(&j);
            cli_json_obj_end(&j);
        }
        free(ps);
    }
    if (cli_g.format == CLI_FMT_JSON) {
        cli_json_arr_end(&j);
        cli_json_done(&j);
    }
    if (cev)
        rd_kafka_event_destroy(cev);
    free(metrics);
out:
    if (md)
        rd_kafka_metadata_destroy(md);
    cli_rk_destroy(&k);
    free(names);
    return rc;
}

static int topic_alter(int argc, char **argv)
{
    static const cli_opt_t opts[] = {{"partitions", 1, 'p'}, {0}};
    cli_args_t a;
    cli_args_init(&a, "topic alter", argc, argv);
    const char *name = NULL;
    int32_t partitions = -1;
    int c;
    while ((c = cli_getopt(&a, opts)) != -1) {
        if (c == 0) {
            if (name)
                return cli_usage_fail(a.cmd, "one topic at a time");
            name = a.arg;
        } else if (c == 'p') {
            if (!cli_parse_i32(a.arg, 1, 1000000, &partitions))
                return cli_usage_fail(a.cmd, "bad partition count '%s'", a.arg);
        } else if (c == 'h') {
            cli_verb_help(stdout, topic_usage, a.cmd);
            return 0;
        } else {
            return CLI_EXIT_USAGE;
        }
    }
    if (!name)
        return cli_usage_fail(a.cmd, "topic name required");
    if (partitions < 0)
        return cli_usage_fail(a.cmd, "nothing to alter: give -p PARTITIONS (use 'samsa config "
                                     "set topic' for configs)");
    cli_rk_t k;
    if (!cli_rk_new(&k, RD_KAFKA_PRODUCER, NULL, NULL, NULL))
        return CLI_EXIT_FAIL;
    int rc;
    char errstr[512];
    rd_kafka_NewPartitions_t *np =
        rd_kafka_NewPartitions_new(name, (size_t)partitions, errstr, sizeof errstr);
    rd_kafka_queue_t *q = rd_kafka_queue_new(k.rk);
    rd_kafka_AdminOptions_t *o = cli_rk_admin_opts(&k, RD_KAFKA_ADMIN_OP_CREATEPARTITIONS);
    rd_kafka_CreatePartitions(k.rk, &np, 1, o, q);
    rd_kafka_event_t *ev = cli_rk_wait(&k, q, "create partitions");
    if (!ev) {
        rc = CLI_EXIT_FAIL;
    } else if (rd_kafka_event_error(ev)) {
        rc = cli_fail("create partitions: %s", rd_kafka_event_error_string(ev));
    } else {
        size_t n;
        const rd_kafka_topic_result_t **res = rd_kafka_CreatePartitions_result_topics(
            rd_kafka_event_CreatePartitions_result(ev), &n);
        rc = report_results(res, n, "altered topic", 0);
    }
    if (ev)
        rd_kafka_event_destroy(ev);
    rd_kafka_AdminOptions_destroy(o);
    rd_kafka_queue_destroy(q);
    rd_kafka_NewPartitions_destroy(np);
    cli_rk_destroy(&k);
    return rc;
}

static int topic_delete(int argc, char **argv)
{
    static const cli_opt_t opts[] = {{"if-exists", 0, 'i'}, {0}};
    cli_args_t a;
    cli_args_init(&a, "topic delete", argc, argv);
    const char **names = calloc((size_t)argc + 1, sizeof *names);
    int nnames = 0, c, rc;
    bool if_exists = false;
    while ((c = cli_getopt(&a, opts)) != -1) {
        if (c == 0)
            names[nnames++] = a.arg;
        else if (c == 'i')
            if_exists = true;
        else if (c == 'h') {
            cli_verb_help(stdout, topic_usage, a.cmd);
            free(names);
            return 0;
        } else {
            free(names);
            return CLI_EXIT_USAGE;
        }
    }
    if (nnames == 0) {
        free(names);
        return cli_usage_fail(a.cmd, "topic name required");
    }
    /* As kafka-topics does: deleting the group or transaction state would
     * lose every group's offsets, so internal topics are refused here. */
    for (int i = 0; i < nnames; i++)
        if (strcmp(names[i], "__consumer_offsets") == 0 ||
            strcmp(names[i], "__transaction_state") == 0 ||
            strcmp(names[i], "__cluster_metadata") == 0) {
            int r = cli_fail("topic '%s' is internal and cannot be deleted", names[i]);
            free(names);
            return r;
        }
    cli_rk_t k;
    if (!cli_rk_new(&k, RD_KAFKA_PRODUCER, NULL, NULL, NULL)) {
        free(names);
        return CLI_EXIT_FAIL;
    }
    rd_kafka_DeleteTopic_t **dts = calloc((size_t)nnames, sizeof *dts);
    for (int i = 0; i < nnames; i++)
        dts[i] = rd_kafka_DeleteTopic_new(names[i]);
    rd_kafka_queue_t *q = rd_kafka_queue_new(k.rk);
    rd_kafka_AdminOptions_t *o = cli_rk_admin_opts(&k, RD_KAFKA_ADMIN_OP_DELETETOPICS);
    rd_kafka_DeleteTopics(k.rk, dts, (size_t)nnames, o, q);
    rd_kafka_event_t *ev = cli_rk_wait(&k, q, "delete topics");
    if (!ev) {
        rc = CLI_EXIT_FAIL;
    } else if (rd_kafka_event_error(ev)) {
        rc = cli_fail("delete topics: %s", rd_kafka_event_error_string(ev));
    } else {
        size_t n;
        const rd_kafka_topic_result_t **res =
            rd_kafka_DeleteTopics_result_topics(rd_kafka_event_DeleteTopics_result(ev), &n);
        rc = report_results(res, n, "deleted topic",
                            if_exists ? RD_KAFKA_RESP_ERR_UNKNOWN_TOPIC_OR_PART : 0);
    }
    if (ev)
        rd_kafka_event_destroy(ev);
    rd_kafka_AdminOptions_destroy(o);
    rd_kafka_queue_destroy(q);
    rd_kafka_DeleteTopic_destroy_array(dts, (size_t)nnames);
    free(dts);
    free(names);
    cli_rk_destroy(&k);
    return rc;
}

/* ------------------------------------------------------------ delete-records */

/* "end"/"-1" -> RD_KAFKA_OFFSET_END (the high watermark, as Kafka's -1). */
static bool parse_before_offset(const char *s, int64_t *out)
{
    if (strcmp(s, "end") == 0 || strcmp(s, "latest") == 0 || strcmp(s, "-1") == 0) {
        *out = RD_KAFKA_OFFSET_END;
        return true;
    }
    return cli_parse_i64(s, out) && *out >= 0;
}

/* DeleteRecords (kafka-delete-records): every partition named gets its log
 * start moved up to the offset given; the broker answers with the new low
 * watermark, which is what we print. */
static int topic_delete_records(int argc, char **argv)
{
    static const cli_opt_t opts[] = {{"partition", 1, 'p'}, {"offset", 1, 'o'}, {0}};
    cli_args_t a;
    cli_args_init(&a, "topic delete-records", argc, argv);
    const char *topic = NULL;
    int c, rc = CLI_EXIT_OK, nparts = 0;
    int64_t offset = -2;                 /* -2: not given */
    size_t cap = 1; /* each N:O of a -p list takes at least one character */
    for (int i = 0; i < argc; i++)
        cap += strlen(argv[i]);
    int32_t *parts = calloc(cap, sizeof *parts);
    int64_t *offs = calloc(cap, sizeof *offs);
    bool bare_partition = false;
    cli_rk_t k = {0};
    const struct rd_kafka_metadata *md = NULL;
    rd_kafka_topic_partition_list_t *list = rd_kafka_topic_partition_list_new(8);
    rd_kafka_DeleteRecords_t *dr = NULL;
    rd_kafka_queue_t *q = NULL;
    rd_kafka_AdminOptions_t *o = NULL;
    rd_kafka_event_t *ev = NULL;
    while ((c = cli_getopt(&a, opts)) != -1) {
        switch (c) {
        case 0:
            if (topic) {
                rc = cli_usage_fail(a.cmd, "one topic at a time");
                goto out;
            }
            topic = a.arg;
            break;
        case 'o':
            if (!parse_before_offset(a.arg, &offset)) {
                rc = cli_usage_fail(a.cmd, "bad --offset '%s' (N, end or -1)", a.arg);
                goto out;
            }
            break;
        case 'p': {
            /* "N" (with --offset) or "N:O[,N:O...]" */
            char *sv = sm_xstrdup(a.arg), *save = NULL;
            bool good = true;
            for (char *tok = strtok_r(sv, ",", &save); tok && good;
                 tok = strtok_r(NULL, ",", &save)) {
                char *colon = strchr(tok, ':');
                if (colon)
                    *colon = 0;
                good = cli_parse_i32(tok, 0, INT32_MAX, &parts[nparts]) &&
                       (!colon || parse_before_offset(colon + 1, &offs[nparts]));
                if (!colon) {
                    offs[nparts] = -2;
                    bare_partition = true;
                }
                nparts += good;
            }
            free(sv);
            if (!good) {
                rc = cli_usage_fail(a.cmd, "bad --partition '%s' (N or N:OFFSET[,N:OFFSET])",
                                    a.arg);
                goto out;
            }
            break;
        }
        case 'h': cli_verb_help(stdout, topic_usage, a.cmd); goto out;
        default: rc = CLI_EXIT_USAGE; goto out;
        }
    }
    if (!topic) {
        rc = cli_usage_fail(a.cmd, "topic name required");
        goto out;
    }
    if (bare_partition && offset == -2) {
        rc = cli_usage_fail(a.cmd, "--partition N needs --offset O (or use -p N:O)");
        goto out;
    }
    if (!nparts && offset == -2) {
        rc = cli_usage_fail(a.cmd, "give --partition N --offset O, -p N:O or --offset O");
        goto out;
    }
    if (!cli_rk_new(&k, RD_KAFKA_PRODUCER, NULL, NULL, NULL) || !cli_rk_metadata(&k, NULL, &md)) {
        rc = CLI_EXIT_FAIL;
        goto out;
    }
    const rd_kafka_metadata_topic_t *mt = cli_md_topic(md, topic);
    if (!mt || mt->err == RD_KAFKA_RESP_ERR_UNKNOWN_TOPIC_OR_PART) {
        rc = cli_fail("topic '%s' does not exist", topic);
        goto out;
    }
    if (!nparts) {
        for (int i = 0; i < mt->partition_cnt; i++)
            rd_kafka_topic_partition_list_add(list, topic, mt->partitions[i].id)->offset = offset;
    }
    for (int i = 0; i < nparts; i++) {
        if (parts[i] >= mt->partition_cnt) {
            rc = cli_fail("topic '%s' has %d partitions, no partition %d", topic,
                          mt->partition_cnt, parts[i]);
            goto out;
        }
        rd_kafka_topic_partition_list_add(list, topic, parts[i])->offset =
            offs[i] == -2 ? offset : offs[i];
    }
    dr = rd_kafka_DeleteRecords_new(list);
    q = rd_kafka_queue_new(k.rk);
    o = cli_rk_admin_opts(&k, RD_KAFKA_ADMIN_OP_DELETERECORDS);
    rd_kafka_DeleteRecords(k.rk, &dr, 1, o, q);
    ev = cli_rk_wait(&k, q, "delete records");
    if (!ev) {
        rc = CLI_EXIT_FAIL;
        goto out;
    }
    if (rd_kafka_event_error(ev)) {
        rc = cli_fail("delete records: %s", rd_kafka_event_error_string(ev));
        goto out;
    }
    const rd_kafka_topic_partition_list_t *res =
        rd_kafka_DeleteRecords_result_offsets(rd_kafka_event_DeleteRecords_result(ev));
    cli_json_t j;
    cli_json_init(&j, stdout);
    cli_table_t t;
    cli_table_init(&t, 3);
    cli_table_cell(&t, "TOPIC");
    cli_table_cell(&t, "PARTITION");
    cli_table_cell(&t, "LOW-WATERMARK");
    if (cli_g.format == CLI_FMT_JSON)
        cli_json_arr_begin(&j);
    for (int i = 0; res && i < res->cnt; i++) {
        const rd_kafka_topic_partition_t *p = &res->elems[i];
        const char *e = p->err ? rd_kafka_err2str(p->err) : NULL;
        if (e)
            rc = cli_fail("%s [%d]: %s", p->topic, p->partition, e);
        if (cli_g.format == CLI_FMT_JSON) {
            cli_json_obj_begin(&j);
            cli_json_kstr(&j, "topic", p->topic);
            cli_json_kint(&j, "partition", p->partition);
            cli_json_key(&j, "low_watermark");
            if (e)
                cli_json_null(&j);
            else
                cli_json_int(&j, p->offset);
            cli_json_kstr(&j, "error", e);
            cli_json_obj_end(&j);
        } else if (!e) {
            cli_table_cell(&t, "%s", p->topic);
            cli_table_cell(&t, "%d", p->partition);
            cli_table_cell(&t, "%lld", (long long)p->offset);
        }
    }
    if (cli_g.format == CLI_FMT_JSON) {
        cli_json_arr_end(&j);
        cli_json_done(&j);
    } else if (t.nrows > 1) {
        cli_table_print(&t, stdout);
    }
    cli_table_free(&t);
out:
    if (ev)
        rd_kafka_event_destroy(ev);
    if (o)
        rd_kafka_AdminOptions_destroy(o);
    if (q)
        rd_kafka_queue_destroy(q);
    if (dr)
        rd_kafka_DeleteRecords_destroy(dr);
    if (md)
        rd_kafka_metadata_destroy(md);
    rd_kafka_topic_partition_list_destroy(list);
    cli_rk_destroy(&k);
    free(parts);
    free(offs);
    return rc;
}

int cli_cmd_topic(int argc, char **argv)
{
    int rc0 = cli_noun_start("topic", topic_usage, argc, argv);
    if (rc0 >= 0)
        return rc0;
    const char *verb = argv[0];
    if (strcmp(verb, "create") == 0)
        return topic_create(argc - 1, argv + 1);
    if (strcmp(verb, "list") == 0 || strcmp(verb, "ls") == 0)
        return topic_list(argc - 1, argv + 1);
    if (strcmp(verb, "describe") == 0)
        return topic_describe(argc - 1, argv + 1);
    if (strcmp(verb, "alter") == 0)
        return topic_alter(argc - 1, argv + 1);
    if (strcmp(verb, "delete") == 0)
        return topic_delete(argc - 1, argv + 1);
    if (strcmp(verb, "delete-records") == 0)
        return topic_delete_records(argc - 1, argv + 1);
    return cli_usage_fail("topic", "unknown verb '%s'", verb);
}
