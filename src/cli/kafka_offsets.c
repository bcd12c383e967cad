/*
 * kafka_offsets.c - kafka-get-offsets.sh, kafka-delete-records.sh and
 * kafka-broker-api-versions.sh (see kafka.h).
 *
 * kafka-get-offsets prints "topic:partition:offset" per partition, sorted,
 * for --time latest/-1, earliest/-2 or a timestamp in ms (ListOffsets via
 * rd_kafka_offsets_for_times, which passes -1/-2 through as Kafka's special
 * timestamps). Partitions are chosen by --topic REGEX + --partitions LIST or
 * by --topic-partitions PATTERNS (Kafka's "regex:0-3,other:5" syntax; a
 * range's upper bound is exclusive, as in Kafka).
 *
 * kafka-delete-records reads Kafka's offset JSON file
 *   {"partitions": [{"topic": "t", "partition": 0, "offset": 3}], "version": 1}
 * with a small tolerant JSON reader (just objects, arrays, strings and
 * integers are needed) and prints Kafka's "partition: t-0<TAB>low_watermark:
 * 3" lines.
 *
 * kafka-broker-api-versions asks every broker ApiVersions (admin_wire.c) and
 * prints Kafka's "host:port (id: 1 rack: null) -> (" block; "usable" is the
 * highest version both the broker and Samsa's own codecs speak; racks come
 * from DescribeCluster (librdkafka 2.0.2's metadata has none).
 * Main thread only.
 */
#include "admin_wire.h"
#include "kafka.h"
#include "proto.h"

#include <ctype.h>
#include <stdlib.h>
#include <string.h>

/* ------------------------------------------------------------ kafka-get-offsets */

enum {
    G_TOPIC = KO_FIRST_FREE, G_PARTITIONS, G_TOPIC_PARTITIONS, G_TIME, G_EXCLUDE_INTERNAL,
    G_BROKER_LIST
};

/* "N", "N-M" (M exclusive), "N-", "-M" against p. */
static bool partition_matches(const char *spec, int32_t p)
{
    if (!spec || !*spec)
        return true;
    const char *dash = strchr(spec, '-');
    if (!dash)
        return atoi(spec) == p;
    int64_t lo = dash == spec ? 0 : atoll(spec);
    int64_t hi = dash[1] ? atoll(dash + 1) : INT32_MAX + 1LL;
    return p >= lo && p < hi;
}

static bool list_matches(const char *list, int32_t p)
{
    if (!list)
        return true;
    char *s = sm_xstrdup(list), *save = NULL;
    bool m = false;
    for (char *t = strtok_r(s, ",", &save); t && !m; t = strtok_r(NULL, ",", &save))
        m = partition_matches(t, p);
    free(s);
    return m;
}

/* --topic-partitions: comma-separated "topicregex[:partitions]" or
 * ":partitions". A partition range holds no comma, so split on commas that
 * are followed by something that is not a digit range continuation is not
 * needed: Kafka's own syntax allows one partition spec per pattern. */
static bool tp_patterns_match(const char *patterns, const char *topic, int32_t p)
{
    char *s = sm_xstrdup(patterns), *save = NULL;
    bool m = false;
    for (char *t = strtok_r(s, ",", &save); t && !m; t = strtok_r(NULL, ",", &save)) {
        char *colon = strrchr(t, ':');
        const char *parts = NULL;
        if (colon) {
            *colon = 0;
            parts = colon + 1;
        }
        m = (!*t || kafka_topic_match(t, topic)) && partition_matches(parts, p);
    }
    free(s);
    return m;
}

static int cmp_tp(const void *x, const void *y)
{
    const rd_kafka_topic_partition_t *a = x, *b = y;
    int c = strcmp(a->topic, b->topic);
    return c ? c : (a->partition > b->partition) - (a->partition < b->partition);
}

int kafka_get_offsets_main(int argc, char **argv)
{
    static const cli_opt_t opts[] = {KAFKA_COMMON_OPTS,
                                     {"broker-list", 1, KO_BOOTSTRAP},
                                     {"topic", 1, G_TOPIC},
                                     {"partitions", 1, G_PARTITIONS},
                                     {"topic-partitions", 1, G_TOPIC_PARTITIONS},
                                     {"time", 1, G_TIME},
                                     {"exclude-internal-topics", 0, G_EXCLUDE_INTERNAL},
                                     {0}};
    cli_args_t a;
    cli_args_init(&a, "kafka-get-offsets.sh", argc, argv);
    const char *topic = NULL, *parts = NULL, *tps = NULL, *time = "-1";
    bool exclude_internal = false;
    int c, rc;
    while ((c = cli_getopt(&a, opts)) != -1) {
        if (kafka_common_opt(c, a.arg))
            continue;
        switch (c) {
        case G_TOPIC: topic = a.arg; break;
        case G_PARTITIONS: parts = a.arg; break;
        case G_TOPIC_PARTITIONS: tps = a.arg; break;
        case G_TIME: time = a.arg; break;
        case G_EXCLUDE_INTERNAL: exclude_internal = true; break;
        case 0: return cli_usage_fail(a.cmd, "unexpected argument '%s'", a.arg);
        case 'h':
            printf("usage: kafka-get-offsets.sh --bootstrap-server HOST:PORT [--topic REGEX] "
                   "[--partitions 0,1-3] [--topic-partitions PATTERNS] "
                   "[--time latest|earliest|-1|-2|TIMESTAMP_MS] [--exclude-internal-topics]\n");
            return CLI_EXIT_OK;
        default: return CLI_EXIT_USAGE;
        }
    }
    if (tps && (topic || parts))
        return cli_usage_fail(a.cmd, "--topic-partitions cannot be used with --topic or "
                                     "--partitions");
    int64_t ts;
    if (strcmp(time, "latest") == 0)
        ts = -1;
    else if (strcmp(time, "earliest") == 0)
        ts = -2;
    else if (strcmp(time, "max-timestamp") == 0 || strcmp(time, "-3") == 0 ||
             strcmp(time, "earliest-local") == 0 || strcmp(time, "-4") == 0 ||
             strcmp(time, "latest-tiered") == 0 || strcmp(time, "-5") == 0)
        return kafka_unsupported("kafka-get-offsets.sh", "--time %s (max-timestamp and tiered "
                                                         "storage offsets)",
                                 time);
    else if (!cli_parse_i64(time, &ts) || ts < -2)
        return cli_usage_fail(a.cmd, "Malformed time argument %s. Please use -1 or latest / "
                                     "-2 or earliest, or a timestamp in ms",
                              time);
    if ((rc = kafka_client_ready("kafka-get-offsets.sh")) >= 0)
        return rc;
    cli_rk_t k;
    if (!cli_rk_new(&k, RD_KAFKA_CONSUMER, (const char *const[]){"group.id", "samsa-get-offsets",
                                                                  NULL},
                    NULL, NULL))
        return CLI_EXIT_FAIL;
    const struct rd_kafka_metadata *md;
    if (!cli_rk_metadata(&k, NULL, &md)) {
        cli_rk_destroy(&k);
        return CLI_EXIT_FAIL;
    }
    rc = CLI_EXIT_OK;
    rd_kafka_topic_partition_list_t *l = rd_kafka_topic_partition_list_new(16);
    for (int i = 0; i < md->topic_cnt; i++) {
        const rd_kafka_metadata_topic_t *t = &md->topics[i];
        if (t->err || (exclude_internal && strncmp(t->topic, "__", 2) == 0))
            continue;
        if (topic && !kafka_topic_match(topic, t->topic))
            continue;
        for (int p = 0; p < t->partition_cnt; p++) {
            int32_t id = t->partitions[p].id;
            if (tps ? !tp_patterns_match(tps, t->topic, id) : !list_matches(parts, id))
                continue;
            rd_kafka_topic_partition_list_add(l, t->topic, id)->offset = ts;
        }
    }
    if (l->cnt == 0 && topic && !tps) {
        rc = cli_fail("Could not match any topic-partitions with the specified filters");
    } else if (l->cnt > 0) {
        rd_kafka_resp_err_t err = rd_kafka_offsets_for_times(k.rk, l, cli_g.timeout_ms);
        if (err) {
            rc = cli_fail("list offsets: %s", rd_kafka_err2str(err));
        } else {
            qsort(l->elems, (size_t)l->cnt, sizeof *l->elems, cmp_tp);
            for (int i = 0; i < l->cnt; i++) {
                if (l->elems[i].err) {
                    fprintf(stderr, "Skip getting offsets for topic-partition %s:%d due to "
                                    "error: %s\n",
                            l->elems[i].topic, l->elems[i].partition,
                            rd_kafka_err2str(l->elems[i].err));
                    continue;
                }
                printf("%s:%d:%" PRId64 "\n", l->elems[i].topic, l->elems[i].partition,
                       l->elems[i].offset);
            }
        }
    }
    rd_kafka_topic_partition_list_destroy(l);
    rd_kafka_metadata_destroy(md);
    cli_rk_destroy(&k);
    return rc;
}

/* ------------------------------------------------------------ tiny JSON */

/* A cursor over the offset JSON file. Only what the file needs is parsed;
 * anything else is skipped structurally. */
typedef struct jcur {
    const char *p, *end;
    bool bad;
} jcur_t;

static void jws(jcur_t *j)
{
    while (j->p < j->end && isspace((unsigned char)*j->p))
        j->p++;
}

static bool jeat(jcur_t *j, char ch)
{
    jws(j);
    if (j->p < j->end && *j->p == ch) {
        j->p++;
        return true;
    }
    return false;
}

/* A string into buf (escapes \" \\ \/ kept simple); false if not a string. */
static bool jstr(jcur_t *j, char *buf, size_t len)
{
    jws(j);
    if (j->p >= j->end || *j->p != '"')
        return false;
    j->p++;
    size_t n = 0;
    while (j->p < j->end && *j->p != '"') {
        char ch = *j->p++;
        if (ch == '\\' && j->p < j->end)
            ch = *j->p++;
        if (n + 1 < len)
            buf[n++] = ch;
    }
    buf[n] = 0;
    if (j->p >= j->end) {
        j->bad = true;
        return false;
    }
    j->p++;
    return true;
}

static void jskip(jcur_t *j)
{
    jws(j);
    if (j->p >= j->end) {
        j->bad = true;
        return;
    }
    char ch = *j->p;
    char tmp[8];
    if (ch == '"') {
        jstr(j, tmp, sizeof tmp);
    } else if (ch == '{' || ch == '[') {
        char close = ch == '{' ? '}' : ']';
        j->p++;
        if (jeat(j, close))
            return;
        do {
            if (ch == '{') {
                if (!jstr(j, tmp, sizeof tmp) || !jeat(j, ':')) {
                    j->bad = true;
                    return;
                }
            }
            jskip(j);
        } while (!j->bad && jeat(j, ','));
        if (!jeat(j, close))
            j->bad = true;
    } else {
        while (j->p < j->end && !strchr(",}] \t\r\n", *j->p))
            j->p++;
    }
}

static bool jint(jcur_t *j, int64_t *v)
{
    jws(j);
    char buf[32];
    size_t n = 0;
    while (j->p < j->end && n + 1 < sizeof buf && (isdigit((unsigned char)*j->p) || *j->p == '-'))
        buf[n++] = *j->p++;
    buf[n] = 0;
    return cli_parse_i64(buf, v);
}

typedef struct dr_entry {
    char topic[256];
    int64_t partition, offset;
} dr_entry_t;

/* Parse {"partitions":[{topic,partition,offset}...], "version":1}. */
static int parse_offset_json(const char *text, size_t len, dr_entry_t **out, int *n)
{
    jcur_t j = {text, text + len, false};
    int cap = 0;
    *out = NULL;
    *n = 0;
    if (!jeat(&j, '{'))
        return -1;
    if (jeat(&j, '}'))
        return 0;
    char key[64];
    do {
        if (!jstr(&j, key, sizeof key) || !jeat(&j, ':'))
            return -1;
        if (strcmp(key, "partitions") != 0) {
            jskip(&j);
            continue;
        }
        if (!jeat(&j, '['))
            return -1;
        if (jeat(&j, ']'))
            continue;
        do {
            if (!jeat(&j, '{'))
                return -1;
            dr_entry_t e = {.partition = -1, .offset = -1};
            bool has_t = false, has_p = false, has_o = false;
            do {
                if (!jstr(&j, key, sizeof key) || !jeat(&j, ':'))
                    return -1;
                if (strcmp(key, "topic") == 0)
                    has_t = jstr(&j, e.topic, sizeof e.topic);
                else if (strcmp(key, "partition") == 0)
                    has_p = jint(&j, &e.partition);
                else if (strcmp(key, "offset") == 0)
                    has_o = jint(&j, &e.offset);
                else
                    jskip(&j);
                if (j.bad)
                    return -1;
            } while (jeat(&j, ','));
            if (!jeat(&j, '}') || !has_t || !has_p || !has_o)
                return -1;
            if (*n == cap) {
                cap = cap ? cap * 2 : 8;
                *out = realloc(*out, sizeof **out * (size_t)cap);
                SM_ASSERT(*out);
            }
            (*out)[(*n)++] = e;
        } while (jeat(&j, ','));
        if (!jeat(&j, ']'))
            return -1;
    } while (!j.bad && jeat(&j, ','));
    return j.bad || !jeat(&j, '}') ? -1 : 0;
}

/* ------------------------------------------------------------ kafka-delete-records */

enum { R_JSON = KO_FIRST_FREE };

static void call_delete_records(rd_kafka_t *rk, rd_kafka_AdminOptions_t *o, rd_kafka_queue_t *q,
                                void *arg)
{
    rd_kafka_DeleteRecords_t *d = arg;
    rd_kafka_DeleteRecords(rk, &d, 1, o, q);
}

int kafka_delete_records_main(int argc, char **argv)
{
    static const cli_opt_t opts[] = {KAFKA_COMMON_OPTS, {"offset-json-file", 1, R_JSON}, {0}};
    cli_args_t a;
    cli_args_init(&a, "kafka-delete-records.sh", argc, argv);
    const char *path = NULL;
    int c, rc;
    while ((c = cli_getopt(&a, opts)) != -1) {
        if (kafka_common_opt(c, a.arg))
            continue;
        switch (c) {
        case R_JSON: path = a.arg; break;
        case 0: return cli_usage_fail(a.cmd, "unexpected argument '%s'", a.arg);
        case 'h':
            printf("usage: kafka-delete-records.sh --bootstrap-server HOST:PORT "
                   "--offset-json-file FILE\n"
                   "  FILE: {\"partitions\": [{\"topic\": \"t\", \"partition\": 0, "
                   "\"offset\": 3}], \"version\": 1}\n");
            return CLI_EXIT_OK;
        default: return CLI_EXIT_USAGE;
        }
    }
    if (!path) {
        fprintf(stderr, "kafka-delete-records.sh: Missing required argument "
                        "\"[offset-json-file]\"\n");
        return CLI_EXIT_FAIL;
    }
    FILE *f = fopen(path, "r");
    if (!f)
        return cli_fail("cannot open %s: %m", path);
    char *text = NULL;
    size_t cap = 0, len = 0, got;
    do {
        if (len + 4096 > cap) {
            cap = cap ? cap * 2 : 8192;
            text = realloc(text, cap);
            SM_ASSERT(text);
        }
        got = fread(text + len, 1, cap - len, f);
        len += got;
    } while (got > 0 && len < 16 * 1024 * 1024);
    fclose(f);
    dr_entry_t *es = NULL;
    int n = 0;
    if (parse_offset_json(text, len, &es, &n) != 0 || n == 0) {
        free(text);
        free(es);
        return cli_fail("%s: not a Kafka offset JSON file (expected {\"partitions\": "
                        "[{\"topic\": ..., \"partition\": ..., \"offset\": ...}], "
                        "\"version\": 1})",
                        path);
    }
    free(text);
    for (int i = 0; i < n; i++)
        for (int m = 0; m < i; m++)
            if (strcmp(es[i].topic, es[m].topic) == 0 && es[i].partition == es[m].partition) {
                free(es);
                return cli_fail("Offset json file contains duplicate topic partitions: %s-%" PRId64,
                                es[i].topic, es[i].partition);
            }
    if ((rc = kafka_client_ready("kafka-delete-records.sh")) >= 0) {
        free(es);
        return rc;
    }
    cli_rk_t k;
    if (!cli_rk_new(&k, RD_KAFKA_PRODUCER, NULL, NULL, NULL)) {
        free(es);
        return CLI_EXIT_FAIL;
    }
    rd_kafka_topic_partition_list_t *l = rd_kafka_topic_partition_list_new(n);
    for (int i = 0; i < n; i++)
        rd_kafka_topic_partition_list_add(l, es[i].topic, (int32_t)es[i].partition)->offset =
            es[i].offset;
    free(es);
    rd_kafka_DeleteRecords_t *d = rd_kafka_DeleteRecords_new(l);
    rd_kafka_topic_partition_list_destroy(l);
    printf("Executing records delete operation\n");
    fflush(stdout);
    rc = CLI_EXIT_OK;
    rd_kafka_event_t *ev = kafka_admin(&k, RD_KAFKA_ADMIN_OP_DELETERECORDS, "delete records",
                                       call_delete_records, d);
    if (!ev) {
        rc = CLI_EXIT_FAIL;
    } else {
        const rd_kafka_topic_partition_list_t *res =
            rd_kafka_DeleteRecords_result_offsets(rd_kafka_event_DeleteRecords_result(ev));
        printf("Records delete operation completed:\n");
        for (int i = 0; res && i < res->cnt; i++) {
            const rd_kafka_topic_partition_t *p = &res->elems[i];
            if (p->err) {
                printf("partition: %s-%d\terror: %s\n", p->topic, p->partition,
                       rd_kafka_err2str(p->err));
                rc = CLI_EXIT_FAIL;
            } else {
                printf("partition: %s-%d\tlow_watermark: %" PRId64 "\n", p->topic, p->partition,
                       p->offset);
            }
        }
        rd_kafka_event_destroy(ev);
    }
    rd_kafka_DeleteRecords_destroy(d);
    cli_rk_destroy(&k);
    return rc;
}

/* ------------------------------------------------------------ kafka-broker-api-versions */

static int cmp_broker(const void *x, const void *y)
{
    const rd_kafka_metadata_broker_t *a = x, *b = y;
    return (a->id > b->id) - (a->id < b->id);
}

/* Rack of broker id from DescribeCluster (in a), or NULL (Kafka prints "null"). */
static char *rack_of(const sm_describe_cluster_response_t *dc, int32_t id, char *buf, size_t len)
{
    for (int32_t i = 0; dc && i < dc->brokers_count; i++)
        if (dc->brokers[i].broker_id == id && dc->brokers[i].rack.len >= 0) {
            snprintf(buf, len, "%.*s", (int)dc->brokers[i].rack.len, dc->brokers[i].rack.ptr);
            return buf;
        }
    return NULL;
}

/* DescribeCluster through the first broker, for racks; NULL if unavailable. */
static sm_describe_cluster_response_t *describe_cluster(sm_arena_t *a)
{
    cli_wire_t w;
    if (!cli_wire_connect(&w, cli_g.brokers))
        return NULL;
    sm_describe_cluster_response_t *dc = NULL;
    int16_t v;
    if (w.max_ver[SM_API_DESCRIBE_CLUSTER] >= 0 &&
        cli_wire_version(&w, SM_API_DESCRIBE_CLUSTER, 0, 1, &v)) {
        sm_describe_cluster_request_t req;
        sm_describe_cluster_request_init(&req);
        void *resp;
        if (cli_wire_call(&w, SM_API_DESCRIBE_CLUSTER, v, &req, a, &resp) &&
            ((sm_describe_cluster_response_t *)resp)->error_code == 0)
            dc = resp;
    }
    cli_wire_close(&w);
    return dc;
}

static void print_versions(const cli_wire_t *w)
{
    const char *sep = "";
    for (int16_t key = 0; key < CLI_WIRE_MAX_KEYS; key++) {
        const sm_api_desc_t *d = sm_api_desc(key);
        bool broker_has = w->max_ver[key] >= 0;
        if (!d && !broker_has)
            continue;
        /* as Kafka's tool, which lists ApiKeys.clientApis(): controller-only APIs (Vote,
         * BrokerHeartbeat, ...) appear only if the node has them */
        if (!broker_has && d->listeners == SM_API_LISTENER_CONTROLLER)
            continue;
        printf("%s\t", sep);
        sep = ",\n";
        if (!broker_has) {
            printf("%s(%d): UNSUPPORTED", d->name, key);
            continue;
        }
        int16_t lo = w->min_ver[key], hi = w->max_ver[key];
        if (lo == hi)
            printf("%s(%d): %d", d ? d->name : "UNKNOWN", key, lo);
        else
            printf("%s(%d): %d to %d", d ? d->name : "UNKNOWN", key, lo, hi);
        if (!d)
            continue;
        if (d->max_version < lo)
            printf(" [unusable: node too new]");
        else if (d->min_version > hi)
            printf(" [unusable: node too old]");
        else
            printf(" [usable: %d]", hi < d->max_version ? hi : d->max_version);
    }
    printf("\n)\n");
}

int kafka_api_versions_main(int argc, char **argv)
{
    static const cli_opt_t opts[] = {KAFKA_COMMON_OPTS, {"version", 0, 'V'}, {0}};
    cli_args_t a;
    cli_args_init(&a, "kafka-broker-api-versions.sh", argc, argv);
    int c, rc;
    while ((c = cli_getopt(&a, opts)) != -1) {
        if (kafka_common_opt(c, a.arg))
            continue;
        switch (c) {
        case 'V':
            printf("samsa %s (Kafka-compatible kafka-broker-api-versions.sh)\n", "0.1.0");
            return CLI_EXIT_OK;
        case 0: return cli_usage_fail(a.cmd, "unexpected argument '%s'", a.arg);
        case 'h':
            printf("usage: kafka-broker-api-versions.sh --bootstrap-server HOST:PORT "
                   "[--command-config FILE]\n");
            return CLI_EXIT_OK;
        default: return CLI_EXIT_USAGE;
        }
    }
    if ((rc = kafka_client_ready("kafka-broker-api-versions.sh")) >= 0)
        return rc;
    cli_rk_t k;
    if (!cli_rk_new(&k, RD_KAFKA_PRODUCER, NULL, NULL, NULL))
        return CLI_EXIT_FAIL;
    const struct rd_kafka_metadata *md;
    if (!cli_rk_metadata(&k, NULL, &md)) {
        cli_rk_destroy(&k);
        return CLI_EXIT_FAIL;
    }
    rd_kafka_metadata_broker_t *bs = sm_xcalloc((size_t)md->broker_cnt + 1, sizeof *bs);
    memcpy(bs, md->brokers, sizeof *bs * (size_t)md->broker_cnt);
    qsort(bs, (size_t)md->broker_cnt, sizeof *bs, cmp_broker);
    rc = CLI_EXIT_OK;
    sm_arena_t arena;
    sm_arena_init(&arena);
    sm_describe_cluster_response_t *dc = describe_cluster(&arena);
    for (int i = 0; i < md->broker_cnt; i++) {
        cli_wire_t w;
        char rack[256];
        if (!cli_wire_connect_one(&w, bs[i].host, bs[i].port)) {
            rc = CLI_EXIT_FAIL;
            continue;
        }
        const char *r = rack_of(dc, bs[i].id, rack, sizeof rack);
        printf("%s:%d (id: %d rack: %s) -> (\n", bs[i].host, bs[i].port, bs[i].id,
               r ? r : "null");
        print_versions(&w);
        cli_wire_close(&w);
    }
    sm_arena_free(&arena);
    free(bs);
    rd_kafka_metadata_destroy(md);
    cli_rk_destroy(&k);
    return rc;
}
