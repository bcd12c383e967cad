/*
 * kafka_topics.c - kafka-topics.sh and kafka-configs.sh (see kafka.h).
 *
 * kafka-topics: --create/--list/--describe/--alter/--delete with Kafka's
 * output: "Created topic t.", one name per line for --list, and for
 * --describe one line per topic
 *   Topic: t<TAB>TopicId: id<TAB>PartitionCount: n<TAB>ReplicationFactor: r<TAB>Configs: k=v,...
 * then one per partition
 *   <TAB>Topic: t<TAB>Partition: p<TAB>Leader: l<TAB>Replicas: 1,2<TAB>Isr: 1,2
 * Configs are those not at their default (any source but DEFAULT_CONFIG),
 * as Kafka shows them. Topic ids need Metadata v10+, which librdkafka 2.0.2
 * does not expose, so --describe asks through admin_wire.c; asking for all
 * topics never auto-creates one.
 *
 * kafka-configs: --describe / --alter (--add-config k=v,k2=[a,b] /
 * --delete-config k) for --entity-type topics|brokers (or --topic /
 * --broker), with "Dynamic configs for topic t are:" and "Completed
 * updating config for topic t." like Kafka. Alters go through
 * IncrementalAlterConfigs on the wire (librdkafka 2.0.2 has only the legacy
 * AlterConfigs, which would drop the other dynamic keys). Main thread only.
 */
#include "admin_wire.h"
#include "kafka.h"
#include "uuid.h"

#include <stdlib.h>
#include <string.h>

#define KT_SCRIPT "kafka-topics.sh"
#define KC_SCRIPT "kafka-configs.sh"

/* ------------------------------------------------------------ helpers */

static void join_ints(char *buf, size_t len, const int32_t *v, int n)
{
    size_t off = 0;
    buf[0] = 0;
    for (int i = 0; i < n && off < len; i++)
        off += (size_t)snprintf(buf + off, len - off, "%s%d", i ? "," : "", v[i]);
}

static char *str_dup(sm_str_t s)
{
    if (s.len < 0)
        return NULL;
    char *r = sm_xmalloc((size_t)s.len + 1);
    memcpy(r, s.ptr, (size_t)s.len);
    r[s.len] = 0;
    return r;
}

/* Metadata of every topic over the wire (for topic ids). */
static bool wire_metadata(cli_wire_t *w, sm_arena_t *a, sm_metadata_response_t **md)
{
    int16_t v;
    if (!cli_wire_version(w, SM_API_METADATA, 1, 12, &v))
        return false;
    sm_metadata_request_t req;
    sm_metadata_request_init(&req);
    req.topics = NULL; /* all */
    req.topics_count = -1;
    req.allow_auto_topic_creation = false;
    void *resp;
    if (!cli_wire_call(w, SM_API_METADATA, v, &req, a, &resp))
        return false;
    *md = resp;
    return true;
}

typedef struct cfg_call {
    rd_kafka_ConfigResource_t **rs;
    size_t n;
} cfg_call_t;

static void call_describe_configs(rd_kafka_t *rk, rd_kafka_AdminOptions_t *o,
                                  rd_kafka_queue_t *q, void *arg)
{
    cfg_call_t *c = arg;
    rd_kafka_DescribeConfigs(rk, c->rs, c->n, o, q);
}

/* DescribeConfigs of n resources of one type; the event owns the result. */
static rd_kafka_event_t *describe_configs(cli_rk_t *k, rd_kafka_ResourceType_t type,
                                          char **names, size_t n,
                                          const rd_kafka_ConfigResource_t ***res, size_t *cnt)
{
    cfg_call_t c = {sm_xcalloc(n + 1, sizeof *c.rs), n};
    for (size_t i = 0; i < n; i++)
        c.rs[i] = rd_kafka_ConfigResource_new(type, names[i]);
    rd_kafka_event_t *ev = kafka_admin(k, RD_KAFKA_ADMIN_OP_DESCRIBECONFIGS, "describe configs",
                                       call_describe_configs, &c);
    if (ev)
        *res = rd_kafka_DescribeConfigs_result_resources(rd_kafka_event_DescribeConfigs_result(ev),
                                                         cnt);
    rd_kafka_ConfigResource_destroy_array(c.rs, n);
    free(c.rs);
    return ev;
}

static const rd_kafka_ConfigResource_t *find_res(const rd_kafka_ConfigResource_t **res, size_t n,
                                                 const char *name)
{
    for (size_t i = 0; res && i < n; i++)
        if (strcmp(rd_kafka_ConfigResource_name(res[i]), name) == 0)
            return res[i];
    return NULL;
}

/* ------------------------------------------------------------ kafka-topics */

enum {
    T_CREATE = KO_FIRST_FREE, T_LIST, T_DESCRIBE, T_ALTER, T_DELETE, T_TOPIC, T_PARTITIONS,
    T_RF, T_CONFIG, T_DELETE_CONFIG, T_IF_EXISTS, T_IF_NOT_EXISTS, T_EXCLUDE_INTERNAL,
    T_REPLICA_ASSIGNMENT, T_UNDER_REPL, T_UNAVAILABLE, T_UNDER_MIN_ISR, T_AT_MIN_ISR,
    T_OVERRIDES, T_TOPIC_ID, T_ZOOKEEPER, T_VERSION
};

typedef struct topics_opts {
    int action;
    const char *topic, *topic_id;
    int32_t partitions, rf;
    char **configs;
    int nconfigs;
    bool if_exists, if_not_exists, exclude_internal;
    bool under_repl, unavailable, under_min_isr, at_min_isr, overrides;
} topics_opts_t;

static void topics_usage(FILE *f)
{
    fprintf(f,
            "usage: kafka-topics.sh --bootstrap-server HOST:PORT [--command-config FILE]\n"
            "         (--create | --list | --describe | --alter | --delete) [options]\n"
            "  --topic NAME|REGEX  --partitions N  --replication-factor N  --config k=v\n"
            "  --if-exists  --if-not-exists  --exclude-internal  --topics-with-overrides\n"
            "  --under-replicated-partitions  --unavailable-partitions\n"
            "  --under-min-isr-partitions  --at-min-isr-partitions\n"
            "Samsa's implementation; see docs/KAFKA_SCRIPTS.md.\n");
}

static int topics_create(cli_rk_t *k, const topics_opts_t *o)
{
    if (!o->topic)
        return cli_usage_fail(KT_SCRIPT, "--create needs --topic");
    char errstr[512];
    rd_kafka_NewTopic_t *nt =
        rd_kafka_NewTopic_new(o->topic, o->partitions, o->rf, errstr, sizeof errstr);
    if (!nt)
        return cli_fail("Error while executing topic command : %s", errstr);
    int rc = CLI_EXIT_OK;
    for (int i = 0; i < o->nconfigs; i++) {
        char *kv = sm_xstrdup(o->configs[i]), *key, *val;
        if (!cli_split_kv(kv, &key, &val) ||
            rd_kafka_NewTopic_set_config(nt, key, val) != RD_KAFKA_RESP_ERR_NO_ERROR)
            rc = cli_usage_fail(KT_SCRIPT, "bad --config '%s' (key=value)", o->configs[i]);
        free(kv);
        if (rc) {
            rd_kafka_NewTopic_destroy(nt);
            return rc;
        }
    }
    rd_kafka_queue_t *q = rd_kafka_queue_new(k->rk);
    rd_kafka_AdminOptions_t *ao = cli_rk_admin_opts(k, RD_KAFKA_ADMIN_OP_CREATETOPICS);
    rd_kafka_CreateTopics(k->rk, &nt, 1, ao, q);
    rd_kafka_event_t *ev = cli_rk_wait(k, q, "create topic");
    if (!ev) {
        rc = CLI_EXIT_FAIL;
    } else if (rd_kafka_event_error(ev)) {
        rc = cli_fail("Error while executing topic command : %s", rd_kafka_event_error_string(ev));
    } else {
        size_t n;
        const rd_kafka_topic_result_t **res =
            rd_kafka_CreateTopics_result_topics(rd_kafka_event_CreateTopics_result(ev), &n);
        rd_kafka_resp_err_t err = n ? rd_kafka_topic_result_error(res[0]) : 0;
        if (err == RD_KAFKA_RESP_ERR_TOPIC_ALREADY_EXISTS && o->if_not_exists) {
            /* Kafka is silent here. */
        } else if (err == RD_KAFKA_RESP_ERR_TOPIC_ALREADY_EXISTS) {
            rc = cli_fail("Error while executing topic command : Topic '%s' already exists.",
                          o->topic);
        } else if (err) {
            const char *es = rd_kafka_topic_result_error_string(res[0]);
            rc = cli_fail("Error while executing topic command : %s",
                          es ? es : rd_kafka_err2str(err));
        } else {
            printf("Created topic %s.\n", o->topic);
        }
    }
    if (ev)
        rd_kafka_event_destroy(ev);
    rd_kafka_AdminOptions_destroy(ao);
    rd_kafka_queue_destroy(q);
    rd_kafka_NewTopic_destroy(nt);
    return rc;
}

static int cmp_str(const void *x, const void *y)
{
    return strcmp(*(char *const *)x, *(char *const *)y);
}

/* Topic names from librdkafka metadata matching --topic (all if none),
 * sorted. Caller frees the array (names point into md). */
static const char **matching_topics(const struct rd_kafka_metadata *md, const topics_opts_t *o,
                                    int *n)
{
    const char **names = sm_xcalloc((size_t)md->topic_cnt + 1, sizeof *names);
    *n = 0;
    for (int i = 0; i < md->topic_cnt; i++) {
        const char *t = md->topics[i].topic;
        if (md->topics[i].err)
            continue;
        if (o->exclude_internal && t[0] == '_' && t[1] == '_')
            continue;
        if (o->topic && !kafka_topic_match(o->topic, t))
            continue;
        names[(*n)++] = t;
    }
    qsort(names, (size_t)*n, sizeof *names, cmp_str);
    return names;
}

static int topics_list(cli_rk_t *k, const topics_opts_t *o)
{
    const struct rd_kafka_metadata *md;
    if (!cli_rk_metadata(k, NULL, &md))
        return CLI_EXIT_FAIL;
    int n;
    const char **names = matching_topics(md, o, &n);
    for (int i = 0; i < n; i++)
        printf("%s\n", names[i]);
    free(names);
    rd_kafka_metadata_destroy(md);
    return CLI_EXIT_OK;
}

static int cmp_wire_topic(const void *x, const void *y)
{
    const sm_metadata_response_metadata_response_topic_t *a = x, *b = y;
    int32_t n = a->name.len < b->name.len ? a->name.len : b->name.len;
    int c = memcmp(a->name.ptr, b->name.ptr, (size_t)(n > 0 ? n : 0));
    return c ? c : (a->name.len > b->name.len) - (a->name.len < b->name.len);
}

static int cmp_wire_part(const void *x, const void *y)
{
    const sm_metadata_response_metadata_response_partition_t *a = x, *b = y;
    return (a->partition_index > b->partition_index) - (a->partition_index < b->partition_index);
}

static int topics_describe(cli_rk_t *k, const topics_opts_t *o)
{
    cli_wire_t w;
    if (!cli_wire_connect(&w, cli_g.brokers))
        return CLI_EXIT_FAIL;
    sm_arena_t a;
    sm_arena_init(&a);
    sm_metadata_response_t *md = NULL;
    int rc = CLI_EXIT_OK;
    char **names = NULL;
    rd_kafka_event_t *ev = NULL;
    if (!wire_metadata(&w, &a, &md)) {
        rc = CLI_EXIT_FAIL;
        goto out;
    }
    qsort(md->topics, (size_t)md->topics_count, sizeof *md->topics, cmp_wire_topic);
    names = sm_xcalloc((size_t)md->topics_count + 1, sizeof *names);
    size_t n = 0;
    char uuid[SM_UUID_STR_LEN + 1];
    for (int32_t i = 0; i < md->topics_count; i++) {
        char *t = str_dup(md->topics[i].name);
        bool keep = t && md->topics[i].error_code == 0 &&
                    !(o->exclude_internal && md->topics[i].is_internal) &&
                    (!o->topic || kafka_topic_match(o->topic, t));
        if (keep && o->topic_id)
            keep = strcmp(sm_uuid_to_str(&md->topics[i].topic_id, uuid), o->topic_id) == 0;
        if (keep)
            names[n++] = t;
        else
            free(t);
    }
    if (n == 0) {
        if (o->topic && !o->if_exists)
            rc = cli_fail("Error while executing topic command : Topic '%s' does not exist as "
                          "expected",
                          o->topic);
        goto out;
    }
    const rd_kafka_ConfigResource_t **res = NULL;
    size_t nres = 0;
    ev = describe_configs(k, RD_KAFKA_RESOURCE_TOPIC, names, n, &res, &nres);
    if (!ev)
        cli_warn("topic configs not shown");
    bool part_filter = o->under_repl || o->unavailable || o->under_min_isr || o->at_min_isr;
    size_t ti = 0;
    for (int32_t i = 0; i < md->topics_count && ti < n; i++) {
        const sm_metadata_response_metadata_response_topic_t *t = &md->topics[i];
        if (t->name.len != (int32_t)strlen(names[ti]) ||
            memcmp(t->name.ptr, names[ti], (size_t)t->name.len) != 0)
            continue;
        const char *name = names[ti++];
        /* configs not at their default, in Kafka's "k=v,k=v" */
        char *cfgs = NULL;
        size_t clen = 0;
        FILE *cf = open_memstream(&cfgs, &clen);
        int min_isr = 1;
        const rd_kafka_ConfigResource_t *r = find_res(res, nres, name);
        size_t ne = 0;
        const rd_kafka_ConfigEntry_t **es = r ? rd_kafka_ConfigResource_configs(r, &ne) : NULL;
        int shown = 0;
        for (size_t e = 0; e < ne; e++) {
            const char *cn = rd_kafka_ConfigEntry_name(es[e]);
            const char *cv = rd_kafka_ConfigEntry_value(es[e]);
            if (strcmp(cn, "min.insync.replicas") == 0 && cv)
                min_isr = atoi(cv);
            if (rd_kafka_ConfigEntry_is_default(es[e]) ||
                rd_kafka_ConfigEntry_source(es[e]) == RD_KAFKA_CONFIG_SOURCE_DEFAULT_CONFIG)
                continue;
            fprintf(cf, "%s%s=%s", shown++ ? "," : "", cn,
                    rd_kafka_ConfigEntry_is_sensitive(es[e]) ? "<hidden>" : cv ? cv : "null");
        }
        fclose(cf);
        qsort(t->partitions, (size_t)t->partitions_count, sizeof *t->partitions, cmp_wire_part);
        if (o->overrides && shown == 0) {
            free(cfgs);
            continue;
        }
        if (!part_filter)
            printf("Topic: %s\tTopicId: %s\tPartitionCount: %d\tReplicationFactor: %d\tConfigs: "
                   "%s\n",
                   name, sm_uuid_to_str(&t->topic_id, uuid), t->partitions_count,
                   t->partitions_count ? t->partitions[0].replica_nodes_count : 0, cfgs);
        free(cfgs);
        if (o->overrides)
            continue; /* Kafka lists only the topic lines here */
        for (int32_t p = 0; p < t->partitions_count; p++) {
            const sm_metadata_response_metadata_response_partition_t *pp = &t->partitions[p];
            int isr = pp->isr_nodes_count, reps = pp->replica_nodes_count;
            if (part_filter) {
                bool show = (o->under_repl && isr < reps) ||
                            (o->unavailable && pp->leader_id < 0) ||
                            (o->under_min_isr && isr < min_isr) ||
                            (o->at_min_isr && isr == min_isr);
                if (!show)
                    continue;
            }
            char leader[16], rl[1024], il[1024], ol[1024];
            if (pp->leader_id < 0)
                snprintf(leader, sizeof leader, "none");
            else
                snprintf(leader, sizeof leader, "%d", pp->leader_id);
            join_ints(rl, sizeof rl, pp->replica_nodes, reps);
            join_ints(il, sizeof il, pp->isr_nodes, isr);
            join_ints(ol, sizeof ol, pp->offline_replicas, pp->offline_replicas_count);
            printf("\tTopic: %s\tPartition: %d\tLeader: %s\tReplicas: %s\tIsr: %s%s%s\n", name,
                   pp->partition_index, leader, rl, il, pp->offline_replicas_count ? "\tOffline: " : "",
                   pp->offline_replicas_count ? ol : "");
        }
    }
out:
    if (ev)
        rd_kafka_event_destroy(ev);
    if (names)
        for (int32_t i = 0; names[i]; i++)
            free(names[i]);
    free(names);
    cli_wire_close(&w);
    sm_arena_free(&a);
    return rc;
}

typedef struct parts_call {
    rd_kafka_NewPartitions_t *np;
} parts_call_t;

static void call_create_partitions(rd_kafka_t *rk, rd_kafka_AdminOptions_t *o,
                                   rd_kafka_queue_t *q, void *arg)
{
    parts_call_t *c = arg;
    rd_kafka_CreatePartitions(rk, &c->np, 1, o, q);
}

typedef struct del_call {
    rd_kafka_DeleteTopic_t **dt;
    size_t n;
} del_call_t;

static void call_delete_topics(rd_kafka_t *rk, rd_kafka_AdminOptions_t *o, rd_kafka_queue_t *q,
                               void *arg)
{
    del_call_t *c = arg;
    rd_kafka_DeleteTopics(rk, c->dt, c->n, o, q);
}

static int report_topic_results(const rd_kafka_topic_result_t **res, size_t n)
{
    int rc = CLI_EXIT_OK;
    for (size_t i = 0; i < n; i++) {
        rd_kafka_resp_err_t err = rd_kafka_topic_result_error(res[i]);
        if (err) {
            const char *es = rd_kafka_topic_result_error_string(res[i]);
            rc = cli_fail("Error while executing topic command : %s",
                          es ? es : rd_kafka_err2str(err));
        }
    }
    return rc;
}

static int topics_alter_or_delete(cli_rk_t *k, const topics_opts_t *o)
{
    if (!o->topic)
        return cli_usage_fail(KT_SCRIPT, "--%s needs --topic",
                              o->action == T_ALTER ? "alter" : "delete");
    const struct rd_kafka_metadata *md;
    if (!cli_rk_metadata(k, NULL, &md))
        return CLI_EXIT_FAIL;
    int n, rc = CLI_EXIT_OK;
    const char **names = matching_topics(md, o, &n);
    if (n == 0) {
        if (!o->if_exists)
            rc = cli_fail("Error while executing topic command : Topic '%s' does not exist as "
                          "expected",
                          o->topic);
        goto out;
    }
    if (o->action == T_ALTER) {
        if (o->partitions < 0) {
            rc = cli_usage_fail(KT_SCRIPT, "--alter needs --partitions (topic configs are "
                                           "changed with kafka-configs.sh)");
            goto out;
        }
        for (int i = 0; i < n && rc == CLI_EXIT_OK; i++) {
            char errstr[512];
            parts_call_t c = {rd_kafka_NewPartitions_new(names[i], (size_t)o->partitions, errstr,
                                                         sizeof errstr)};
            if (!c.np) {
                rc = cli_fail("Error while executing topic command : %s", errstr);
                break;
            }
            rd_kafka_event_t *ev = kafka_admin(k, RD_KAFKA_ADMIN_OP_CREATEPARTITIONS,
                                               "alter topic", call_create_partitions, &c);
            if (!ev) {
                rc = CLI_EXIT_FAIL;
            } else {
                size_t nr;
                const rd_kafka_topic_result_t **res = rd_kafka_CreatePartitions_result_topics(
                    rd_kafka_event_CreatePartitions_result(ev), &nr);
                rc = report_topic_results(res, nr);
                rd_kafka_event_destroy(ev);
            }
            rd_kafka_NewPartitions_destroy(c.np);
        }
    } else {
        del_call_t c = {sm_xcalloc((size_t)n, sizeof *c.dt), (size_t)n};
        for (int i = 0; i < n; i++)
            c.dt[i] = rd_kafka_DeleteTopic_new(names[i]);
        rd_kafka_event_t *ev = kafka_admin(k, RD_KAFKA_ADMIN_OP_DELETETOPICS, "delete topics",
                                           call_delete_topics, &c);
        if (!ev) {
            rc = CLI_EXIT_FAIL;
        } else {
            size_t nr;
            const rd_kafka_topic_result_t **res =
                rd_kafka_DeleteTopics_result_topics(rd_kafka_event_DeleteTopics_result(ev), &nr);
            rc = report_topic_results(res, nr);
            rd_kafka_event_destroy(ev);
        }
        rd_kafka_DeleteTopic_destroy_array(c.dt, c.n);
        free(c.dt);
    }
out:
    free(names);
    rd_kafka_metadata_destroy(md);
    return rc;
}

int kafka_topics_main(int argc, char **argv)
{
    static const cli_opt_t opts[] = {KAFKA_COMMON_OPTS,
                                     {"create", 0, T_CREATE},
                                     {"list", 0, T_LIST},
                                     {"describe", 0, T_DESCRIBE},
                                     {"alter", 0, T_ALTER},
                                     {"delete", 0, T_DELETE},
                                     {"topic", 1, T_TOPIC},
                                     {"topic-id", 1, T_TOPIC_ID},
                                     {"partitions", 1, T_PARTITIONS},
                                     {"replication-factor", 1, T_RF},
                                     {"config", 1, T_CONFIG},
                                     {"delete-config", 1, T_DELETE_CONFIG},
                                     {"if-exists", 0, T_IF_EXISTS},
                                     {"if-not-exists", 0, T_IF_NOT_EXISTS},
                                     {"exclude-internal", 0, T_EXCLUDE_INTERNAL},
                                     {"replica-assignment", 1, T_REPLICA_ASSIGNMENT},
                                     {"under-replicated-partitions", 0, T_UNDER_REPL},
                                     {"unavailable-partitions", 0, T_UNAVAILABLE},
                                     {"under-min-isr-partitions", 0, T_UNDER_MIN_ISR},
                                     {"at-min-isr-partitions", 0, T_AT_MIN_ISR},
                                     {"topics-with-overrides", 0, T_OVERRIDES},
                                     {"zookeeper", 1, T_ZOOKEEPER},
                                     {"version", 0, T_VERSION},
                                     {0}};
    cli_args_t a;
    cli_args_init(&a, KT_SCRIPT, argc, argv);
    topics_opts_t o = {.partitions = -1, .rf = -1};
    o.configs = sm_xcalloc((size_t)argc + 1, sizeof *o.configs);
    int c, rc = CLI_EXIT_OK, nactions = 0;
    cli_rk_t k = {0};
    while ((c = cli_getopt(&a, opts)) != -1) {
        if (kafka_common_opt(c, a.arg))
            continue;
        switch (c) {
        case T_CREATE: case T_LIST: case T_DESCRIBE: case T_ALTER: case T_DELETE:
            o.action = c;
            nactions++;
            break;
        case T_TOPIC: o.topic = a.arg; break;
        case T_TOPIC_ID: o.topic_id = a.arg; break;
        case T_PARTITIONS:
            if (!cli_parse_i32(a.arg, 1, 1000000, &o.partitions)) {
                rc = cli_usage_fail(a.cmd, "bad --partitions '%s'", a.arg);
                goto out;
            }
            break;
        case T_RF:
            if (!cli_parse_i32(a.arg, 1, 32767, &o.rf)) {
                rc = cli_usage_fail(a.cmd, "bad --replication-factor '%s'", a.arg);
                goto out;
            }
            break;
        case T_CONFIG: o.configs[o.nconfigs++] = (char *)a.arg; break;
        case T_DELETE_CONFIG:
            rc = cli_usage_fail(a.cmd, "--delete-config is not an option of kafka-topics.sh "
                                       "any more; use kafka-configs.sh --alter --delete-config");
            goto out;
        case T_IF_EXISTS: o.if_exists = true; break;
        case T_IF_NOT_EXISTS: o.if_not_exists = true; break;
        case T_EXCLUDE_INTERNAL: o.exclude_internal = true; break;
        case T_REPLICA_ASSIGNMENT:
            rc = kafka_unsupported(KT_SCRIPT, "--replica-assignment (Samsa is a single node; "
                                              "use --partitions and --replication-factor)");
            goto out;
        case T_UNDER_REPL: o.under_repl = true; break;
        case T_UNAVAILABLE: o.unavailable = true; break;
        case T_UNDER_MIN_ISR: o.under_min_isr = true; break;
        case T_AT_MIN_ISR: o.at_min_isr = true; break;
        case T_OVERRIDES: o.overrides = true; break;
        case T_ZOOKEEPER:
            rc = cli_usage_fail(a.cmd, "--zookeeper: Samsa has no ZooKeeper; use "
                                       "--bootstrap-server");
            goto out;
        case T_VERSION: printf("samsa (Kafka-compatible kafka-topics.sh)\n"); goto out;
        case 0: rc = cli_usage_fail(a.cmd, "unexpected argument '%s'", a.arg); goto out;
        case 'h': topics_usage(stdout); goto out;
        default: rc = CLI_EXIT_USAGE; goto out;
        }
    }
    if (nactions != 1) {
        topics_usage(stderr);
        rc = cli_usage_fail(a.cmd, "Command must include exactly one action: --list, "
                                   "--describe, --create, --alter or --delete");
        goto out;
    }
    if ((rc = kafka_client_ready(KT_SCRIPT)) >= 0)
        goto out;
    rc = CLI_EXIT_OK;
    if (!cli_rk_new(&k, RD_KAFKA_PRODUCER, NULL, NULL, NULL)) {
        rc = CLI_EXIT_FAIL;
        goto out;
    }
    switch (o.action) {
    case T_CREATE: rc = topics_create(&k, &o); break;
    case T_LIST: rc = topics_list(&k, &o); break;
    case T_DESCRIBE: rc = topics_describe(&k, &o); break;
    default: rc = topics_alter_or_delete(&k, &o); break;
    }
out:
    cli_rk_destroy(&k);
    free(o.configs);
    return rc;
}

/* ------------------------------------------------------------ kafka-configs */

enum {
    C_DESCRIBE = KO_FIRST_FREE, C_ALTER, C_ENTITY_TYPE, C_ENTITY_NAME, C_ENTITY_DEFAULT,
    C_ADD_CONFIG, C_ADD_CONFIG_FILE, C_DELETE_CONFIG, C_ALL, C_TOPIC, C_BROKER, C_BROKER_DEFAULTS,
    C_CLIENT, C_USER, C_GROUP, C_BROKER_LOGGER, C_ZOOKEEPER
};

static void configs_usage(FILE *f)
{
    fprintf(f,
            "usage: kafka-configs.sh --bootstrap-server HOST:PORT [--command-config FILE]\n"
            "         (--describe [--all] | --alter --add-config k=v,... | --delete-config k,...)\n"
            "         (--entity-type topics|brokers --entity-name NAME | --topic T | --broker ID)\n"
            "Samsa's implementation; see docs/KAFKA_SCRIPTS.md.\n");
}

static const char *source_name(rd_kafka_ConfigSource_t s)
{
    switch (s) {
    case RD_KAFKA_CONFIG_SOURCE_DYNAMIC_TOPIC_CONFIG: return "DYNAMIC_TOPIC_CONFIG";
    case RD_KAFKA_CONFIG_SOURCE_DYNAMIC_BROKER_CONFIG: return "DYNAMIC_BROKER_CONFIG";
    case RD_KAFKA_CONFIG_SOURCE_DYNAMIC_DEFAULT_BROKER_CONFIG:
        return "DYNAMIC_DEFAULT_BROKER_CONFIG";
    case RD_KAFKA_CONFIG_SOURCE_STATIC_BROKER_CONFIG: return "STATIC_BROKER_CONFIG";
    case RD_KAFKA_CONFIG_SOURCE_DEFAULT_CONFIG: return "DEFAULT_CONFIG";
    default: return "UNKNOWN";
    }
}

static bool is_dynamic(rd_kafka_ConfigSource_t s)
{
    return s == RD_KAFKA_CONFIG_SOURCE_DYNAMIC_TOPIC_CONFIG ||
           s == RD_KAFKA_CONFIG_SOURCE_DYNAMIC_BROKER_CONFIG ||
           s == RD_KAFKA_CONFIG_SOURCE_DYNAMIC_DEFAULT_BROKER_CONFIG;
}

static void print_entry(const rd_kafka_ConfigEntry_t *e)
{
    bool sens = rd_kafka_ConfigEntry_is_sensitive(e);
    const char *v = rd_kafka_ConfigEntry_value(e);
    printf("  %s=%s sensitive=%s synonyms={", rd_kafka_ConfigEntry_name(e),
           sens ? "null" : v ? v : "null", sens ? "true" : "false");
    size_t ns = 0;
    const rd_kafka_ConfigEntry_t **syn = rd_kafka_ConfigEntry_synonyms(e, &ns);
    if (ns == 0) {
        /* librdkafka asks without synonyms on some versions; show the entry's own */
        printf("%s:%s=%s", source_name(rd_kafka_ConfigEntry_source(e)),
               rd_kafka_ConfigEntry_name(e), sens ? "null" : v ? v : "null");
    }
    for (size_t i = 0; i < ns; i++) {
        const char *sv = rd_kafka_ConfigEntry_value(syn[i]);
        printf("%s%s:%s=%s", i ? ", " : "", source_name(rd_kafka_ConfigEntry_source(syn[i])),
               rd_kafka_ConfigEntry_name(syn[i]), sens ? "null" : sv ? sv : "null");
    }
    printf("}\n");
}

static int configs_describe(cli_rk_t *k, rd_kafka_ResourceType_t type, const char *kind,
                            char **names, size_t n, bool all)
{
    const rd_kafka_ConfigResource_t **res = NULL;
    size_t nres = 0;
    rd_kafka_event_t *ev = describe_configs(k, type, names, n, &res, &nres);
    if (!ev)
        return CLI_EXIT_FAIL;
    int rc = CLI_EXIT_OK;
    for (size_t i = 0; i < n; i++) {
        const rd_kafka_ConfigResource_t *r = find_res(res, nres, names[i]);
        if (!r || rd_kafka_ConfigResource_error(r)) {
            const char *es = r ? rd_kafka_ConfigResource_error_string(r) : NULL;
            rc = cli_fail("%s %s: %s", kind, names[i],
                          es && *es ? es : r ? rd_kafka_err2str(rd_kafka_ConfigResource_error(r))
                                             : "no result");
            continue;
        }
        printf("%s configs for %s %s are:\n", all ? "All" : "Dynamic", kind, names[i]);
        size_t ne = 0;
        const rd_kafka_ConfigEntry_t **es = rd_kafka_ConfigResource_configs(r, &ne);
        for (size_t e = 0; e < ne; e++)
            if (all || is_dynamic(rd_kafka_ConfigEntry_source(es[e])))
                print_entry(es[e]);
    }
    rd_kafka_event_destroy(ev);
    return rc;
}

/* Split Kafka's "k1=v1,k2=[a,b],k3=v3" into key/value pairs in place:
 * commas inside [] belong to the value (and the brackets are dropped). */
static int split_add_config(char *s, char **keys, char **vals, int max)
{
    int n = 0;
    while (*s && n < max) {
        char *eq = strchr(s, '=');
        if (!eq)
            return -1;
        *eq = 0;
        keys[n] = s;
        char *v = eq + 1, *end;
        if (*v == '[') {
            v++;
            end = strchr(v, ']');
            if (!end)
                return -1;
            *end++ = 0;
            if (*end == ',')
                *end++ = 0;
            else if (*end)
                return -1;
        } else {
            end = v + strcspn(v, ",");
            if (*end)
                *end++ = 0;
        }
        vals[n++] = v;
        s = end;
    }
    return n;
}

/* IncrementalAlterConfigs on the wire: op 0 SET, 1 DELETE. */
static int configs_alter(cli_wire_t *w, int8_t restype, const char *kind, const char *name,
                         char **keys, char **vals, int nset, char **dels, int ndel)
{
    sm_arena_t a;
    sm_arena_init(&a);
    int rc = CLI_EXIT_OK;
    int16_t v;
    if (!cli_wire_version(w, SM_API_INCREMENTAL_ALTER_CONFIGS, 0, 1, &v)) {
        rc = CLI_EXIT_FAIL;
        goto out;
    }
    sm_incremental_alter_configs_request_t req;
    sm_incremental_alter_configs_request_init(&req);
    sm_incremental_alter_configs_request_alter_configs_resource_t res;
    sm_incremental_alter_configs_request_alter_configs_resource_init(&res);
    res.resource_type = restype;
    res.resource_name = sm_str(name);
    int nc = nset + ndel;
    sm_incremental_alter_configs_request_alterable_config_t *cf =
        sm_xcalloc((size_t)nc + 1, sizeof *cf);
    for (int i = 0; i < nc; i++) {
        sm_incremental_alter_configs_request_alterable_config_init(&cf[i]);
        if (i < nset) {
            cf[i].name = sm_str(keys[i]);
            cf[i].config_operation = 0;
            cf[i].value = sm_str(vals[i]);
        } else {
            cf[i].name = sm_str(dels[i - nset]);
            cf[i].config_operation = 1;
            cf[i].value.ptr = NULL;
            cf[i].value.len = -1;
        }
    }
    res.configs = cf;
    res.configs_count = nc;
    req.resources = &res;
    req.resources_count = 1;
    void *rp;
    if (!cli_wire_call(w, SM_API_INCREMENTAL_ALTER_CONFIGS, v, &req, &a, &rp)) {
        rc = CLI_EXIT_FAIL;
    } else {
        sm_incremental_alter_configs_response_t *resp = rp;
        for (int32_t i = 0; i < resp->responses_count; i++) {
            const sm_incremental_alter_configs_response_alter_configs_resource_response_t *r =
                &resp->responses[i];
            if (r->error_code) {
                if (r->error_message.len > 0)
                    rc = cli_fail("Error while executing config command with args: %.*s",
                                  (int)r->error_message.len, r->error_message.ptr);
                else
                    rc = cli_fail("Error while executing config command with args: %s",
                                  cli_kafka_err_name(r->error_code));
            }
        }
        if (rc == CLI_EXIT_OK)
            printf("Completed updating config for %s %s.\n", kind, name);
    }
    free(cf);
out:
    sm_arena_free(&a);
    return rc;
}

int kafka_configs_main(int argc, char **argv)
{
    static const cli_opt_t opts[] = {KAFKA_COMMON_OPTS,
                                     {"describe", 0, C_DESCRIBE},
                                     {"alter", 0, C_ALTER},
                                     {"entity-type", 1, C_ENTITY_TYPE},
                                     {"entity-name", 1, C_ENTITY_NAME},
                                     {"entity-default", 0, C_ENTITY_DEFAULT},
                                     {"add-config", 1, C_ADD_CONFIG},
                                     {"add-config-file", 1, C_ADD_CONFIG_FILE},
                                     {"delete-config", 1, C_DELETE_CONFIG},
                                     {"all", 0, C_ALL},
                                     {"topic", 1, C_TOPIC},
                                     {"broker", 1, C_BROKER},
                                     {"broker-defaults", 0, C_BROKER_DEFAULTS},
                                     {"broker-logger", 1, C_BROKER_LOGGER},
                                     {"client", 1, C_CLIENT},
                                     {"user", 1, C_USER},
                                     {"group", 1, C_GROUP},
                                     {"zookeeper", 1, C_ZOOKEEPER},
                                     {0}};
    cli_args_t a;
    cli_args_init(&a, KC_SCRIPT, argc, argv);
    int action = 0, c, rc = CLI_EXIT_OK;
    const char *etype = NULL, *ename = NULL;
    bool all = false, entity_default = false;
    char *add = NULL, *del = NULL;
    cli_rk_t k = {0};
    while ((c = cli_getopt(&a, opts)) != -1) {
        if (kafka_common_opt(c, a.arg))
            continue;
        switch (c) {
        case C_DESCRIBE: case C_ALTER: action = c; break;
        case C_ENTITY_TYPE: etype = a.arg; break;
        case C_ENTITY_NAME: ename = a.arg; break;
        case C_ENTITY_DEFAULT: entity_default = true; break;
        case C_ADD_CONFIG: add = (char *)a.arg; break;
        case C_DELETE_CONFIG: del = (char *)a.arg; break;
        case C_ALL: all = true; break;
        case C_TOPIC: etype = "topics"; ename = a.arg; break;
        case C_BROKER: etype = "brokers"; ename = a.arg; break;
        case C_BROKER_DEFAULTS: etype = "brokers"; entity_default = true; break;
        case C_ADD_CONFIG_FILE:
            rc = kafka_unsupported(KC_SCRIPT, "--add-config-file (give --add-config k=v,...)");
            goto out;
        case C_BROKER_LOGGER: etype = "broker-loggers"; ename = a.arg; break;
        case C_CLIENT: etype = "clients"; ename = a.arg; break;
        case C_USER: etype = "users"; ename = a.arg; break;
        case C_GROUP: etype = "groups"; ename = a.arg; break;
        case C_ZOOKEEPER:
            rc = cli_usage_fail(a.cmd, "--zookeeper: Samsa has no ZooKeeper; use "
                                       "--bootstrap-server");
            goto out;
        case 0: rc = cli_usage_fail(a.cmd, "unexpected argument '%s'", a.arg); goto out;
        case 'h': configs_usage(stdout); goto out;
        default: rc = CLI_EXIT_USAGE; goto out;
        }
    }
    if (!action) {
        configs_usage(stderr);
        rc = cli_usage_fail(a.cmd, "Command must include exactly one action: --describe, "
                                   "--alter");
        goto out;
    }
    if (!etype) {
        rc = cli_usage_fail(a.cmd, "--entity-type must be specified");
        goto out;
    }
    bool topics = strcmp(etype, "topics") == 0 || strcmp(etype, "topic") == 0;
    bool brokers = strcmp(etype, "brokers") == 0 || strcmp(etype, "broker") == 0;
    if (!topics && !brokers) {
        rc = kafka_unsupported(KC_SCRIPT, "entity type '%s' (quotas, SCRAM users, client and "
                                          "group configs, broker loggers); topics and brokers "
                                          "are supported",
                               etype);
        goto out;
    }
    if (entity_default) {
        rc = kafka_unsupported(KC_SCRIPT, "cluster-wide default broker configs "
                                          "(--entity-default); name the broker with "
                                          "--entity-name ID");
        goto out;
    }
    if ((rc = kafka_client_ready(KC_SCRIPT)) >= 0)
        goto out;
    rc = CLI_EXIT_OK;
    if (!cli_rk_new(&k, RD_KAFKA_PRODUCER, NULL, NULL, NULL)) {
        rc = CLI_EXIT_FAIL;
        goto out;
    }
    const char *kind = topics ? "topic" : "broker";
    if (action == C_DESCRIBE) {
        char **names = NULL;
        size_t n = 0;
        const struct rd_kafka_metadata *md = NULL;
        if (ename) {
            names = sm_xcalloc(2, sizeof *names);
            names[n++] = (char *)ename;
        } else {
            if (!cli_rk_metadata(&k, NULL, &md)) {
                rc = CLI_EXIT_FAIL;
                goto out;
            }
            int cnt = topics ? md->topic_cnt : md->broker_cnt;
            names = sm_xcalloc((size_t)cnt + 1, sizeof *names);
            for (int i = 0; i < cnt; i++) {
                if (topics) {
                    names[n++] = sm_xstrdup(md->topics[i].topic);
                } else {
                    char id[16];
                    snprintf(id, sizeof id, "%d", md->brokers[i].id);
                    names[n++] = sm_xstrdup(id);
                }
            }
            qsort(names, n, sizeof *names, cmp_str);
        }
        rc = configs_describe(&k, topics ? RD_KAFKA_RESOURCE_TOPIC : RD_KAFKA_RESOURCE_BROKER,
                              kind, names, n, all);
        if (md) {
            for (size_t i = 0; i < n; i++)
                free(names[i]);
            rd_kafka_metadata_destroy(md);
        }
        free(names);
        goto out;
    }
    /* --alter */
    if (!ename) {
        rc = cli_usage_fail(a.cmd, "an entity name must be specified with --alter of %s",
                            etype);
        goto out;
    }
    if (!add && !del) {
        rc = cli_usage_fail(a.cmd, "At least one of --add-config or --delete-config must be "
                                   "specified with --alter");
        goto out;
    }
    char *keys[256], *vals[256], *dels[256];
    int nset = 0, ndel = 0;
    char *addc = add ? sm_xstrdup(add) : NULL, *delc = del ? sm_xstrdup(del) : NULL;
    if (addc && (nset = split_add_config(addc, keys, vals, 256)) < 0) {
        rc = cli_usage_fail(a.cmd, "bad --add-config '%s' (k1=v1,k2=[v1,v2,v2],k3=v3)", add);
    } else {
        for (char *s = delc ? strtok(delc, ",") : NULL; s && ndel < 256; s = strtok(NULL, ","))
            dels[ndel++] = s;
        cli_wire_t w;
        if (!cli_wire_connect(&w, cli_g.brokers)) {
            rc = CLI_EXIT_FAIL;
        } else {
            rc = configs_alter(&w, topics ? 2 : 4, kind, ename, keys, vals, nset, dels, ndel);
            cli_wire_close(&w);
        }
    }
    free(addc);
    free(delc);
out:
    cli_rk_destroy(&k);
    return rc;
}
