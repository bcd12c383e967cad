/*
 * kafka_main.c - `samsa kafka <script> [--] [flags]`: dispatch to Kafka's
 * tools by script name, the options every script shares
 * (--bootstrap-server, --command-config), client properties files, and the
 * scripts for features Samsa does not have yet (see kafka.h).
 *
 * Script names are accepted as kafka-topics.sh, kafka-topics (Confluent's
 * spelling) or a path ending in either. Exit status as Kafka's tools: 0 on
 * success, 1 on failure; a usage error is 2 as in the rest of samsa.
 * Main thread only.
 */
#include "kafka.h"

#include <regex.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

static const char *g_command_config;
static bool g_have_bootstrap;

/* The property list handed to every librdkafka handle: main.c's -X pairs
 * first, then the ones loaded here. Strings live until exit. */
#define KAFKA_MAX_PROPS 512
static const char *g_props[KAFKA_MAX_PROPS];

bool kafka_common_opt(int c, const char *arg)
{
    if (c == KO_BOOTSTRAP) {
        cli_g.brokers = arg;
        g_have_bootstrap = true;
        return true;
    }
    if (c == KO_COMMAND_CONFIG) {
        g_command_config = arg;
        return true;
    }
    return false;
}

int kafka_unsupported(const char *script, const char *fmt, ...)
{
    char buf[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf, sizeof buf, fmt, ap);
    va_end(ap);
    fprintf(stderr, "%s: not supported by Samsa yet: %s\n", script, buf);
    return CLI_EXIT_FAIL;
}

static bool props_append(const char *k, const char *v)
{
    if (cli_g.rk_props != g_props) {
        for (int i = 0; i < cli_g.nrk_props && i < KAFKA_MAX_PROPS; i++)
            g_props[i] = cli_g.rk_props[i];
        cli_g.rk_props = g_props;
    }
    if (cli_g.nrk_props >= KAFKA_MAX_PROPS) {
        cli_fail("too many client properties (at most %d)", KAFKA_MAX_PROPS);
        return false;
    }
    size_t n = strlen(k) + strlen(v) + 2;
    char *kv = sm_xmalloc(n);
    snprintf(kv, n, "%s=%s", k, v);
    g_props[cli_g.nrk_props++] = kv;
    return true;
}

/* Value of name="..." (or name='...') inside a JAAS line, into out. */
static bool jaas_value(const char *jaas, const char *name, char *out, size_t len)
{
    const char *p = jaas;
    size_t nl = strlen(name);
    while ((p = strstr(p, name)) != NULL) {
        const char *q = p + nl;
        while (*q == ' ')
            q++;
        if (*q == '=') {
            q++;
            while (*q == ' ')
                q++;
            char quote = *q;
            if (quote == '"' || quote == '\'') {
                const char *e = strchr(q + 1, quote);
                if (e && (size_t)(e - q - 1) < len) {
                    memcpy(out, q + 1, (size_t)(e - q - 1));
                    out[e - q - 1] = 0;
                    return true;
                }
            }
        }
        p += nl;
    }
    return false;
}

/* Keys a Java client reads that have no librdkafka meaning; skipped quietly
 * because every Kafka properties file carries them. */
static bool java_only_quiet(const char *k)
{
    static const char *const keys[] = {"key.serializer", "value.serializer", "key.deserializer",
                                       "value.deserializer", NULL};
    for (int i = 0; keys[i]; i++)
        if (strcmp(k, keys[i]) == 0)
            return true;
    return false;
}

static bool add_prop_kv(const char *k, const char *v, const char *where)
{
    if (java_only_quiet(k))
        return true;
    if (strcmp(k, "sasl.jaas.config") == 0) {
        char user[256], pass[256];
        if (jaas_value(v, "username", user, sizeof user) &&
            jaas_value(v, "password", pass, sizeof pass))
            return props_append("sasl.username", user) && props_append("sasl.password", pass);
        cli_warn("%s: sasl.jaas.config without username/password is not understood; ignored",
                 where);
        return true;
    }
    /* Ask librdkafka whether it knows the key on a scratch conf. */
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    char errstr[512];
    rd_kafka_conf_res_t r = rd_kafka_conf_set(conf, k, v, errstr, sizeof errstr);
    rd_kafka_conf_destroy(conf);
    if (r == RD_KAFKA_CONF_UNKNOWN) {
        cli_warn("%s: ignoring Java-only client property '%s'", where, k);
        return true;
    }
    if (r != RD_KAFKA_CONF_OK) {
        cli_fail("%s: client property %s=%s: %s", where, k, v, errstr);
        return false;
    }
    return props_append(k, v);
}

bool kafka_add_prop(const char *kv)
{
    char *s = sm_xstrdup(kv), *k, *v;
    bool ok;
    if (!cli_split_kv(s, &k, &v)) {
        ok = false;
        cli_fail("client property must be key=value, got '%s'", kv);
    } else {
        ok = add_prop_kv(k, v, "property");
    }
    free(s);
    return ok;
}

static char *trim(char *s)
{
    while (*s == ' ' || *s == '\t')
        s++;
    char *e = s + strlen(s);
    while (e > s && (e[-1] == ' ' || e[-1] == '\t' || e[-1] == '\r' || e[-1] == '\n'))
        *--e = 0;
    return s;
}

bool kafka_load_props_file(const char *path)
{
    FILE *f = fopen(path, "r");
    if (!f) {
        cli_fail("cannot open %s: %m", path);
        return false;
    }
    char line[8192];
    bool ok = true;
    while (ok && fgets(line, sizeof line, f)) {
        char *s = trim(line);
        if (!*s || *s == '#' || *s == '!')
            continue;
        char *sep = s + strcspn(s, "=:");
        if (!*sep) {
            cli_warn("%s: line without '=' ignored: %s", path, s);
            continue;
        }
        *sep = 0;
        ok = add_prop_kv(trim(s), trim(sep + 1), path);
    }
    fclose(f);
    return ok;
}

int kafka_client_ready(const char *script)
{
    if (!g_have_bootstrap) {
        fprintf(stderr, "%s: Missing required argument \"[bootstrap-server]\"\n", script);
        return CLI_EXIT_FAIL;
    }
    if (g_command_config && !kafka_load_props_file(g_command_config))
        return CLI_EXIT_FAIL;
    g_command_config = NULL;
    return -1;
}

rd_kafka_event_t *kafka_admin(cli_rk_t *k, rd_kafka_admin_op_t op, const char *what,
                              kafka_admin_fn fn, void *arg)
{
    rd_kafka_queue_t *q = rd_kafka_queue_new(k->rk);
    rd_kafka_AdminOptions_t *o = cli_rk_admin_opts(k, op);
    fn(k->rk, o, q, arg);
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

bool kafka_topic_match(const char *pattern, const char *name)
{
    if (strcmp(pattern, name) == 0)
        return true;
    size_t n = strlen(pattern) + 5;
    char *anchored = sm_xmalloc(n);
    snprintf(anchored, n, "^(%s)$", pattern);
    regex_t re;
    bool m = false;
    if (regcomp(&re, anchored, REG_EXTENDED | REG_NOSUB) == 0) {
        m = regexec(&re, name, 0, NULL, 0) == 0;
        regfree(&re);
    }
    free(anchored);
    return m;
}

/* ------------------------------------------------------------ unsupported */

static int help_or_unsupported(const char *script, int argc, char **argv, const char *what)
{
    for (int i = 0; i < argc; i++)
        if (cli_is_help(argv[i])) {
            printf("%s: accepted for compatibility; %s is not supported by Samsa yet.\n", script,
                   what);
            return CLI_EXIT_OK;
        }
    return kafka_unsupported(script, "%s", what);
}

/* kafka-metadata-quorum.sh --bootstrap-server HOST:PORT [--command-config F]
 * describe --status | --replication (DescribeQuorum) */
static int quorum_main(int argc, char **argv)
{
    static const char *script = "kafka-metadata-quorum.sh";
    enum { O_STATUS = KO_FIRST_FREE, O_REPLICATION, O_HUMAN, O_CONTROLLER };
    static const cli_opt_t opts[] = {KAFKA_COMMON_OPTS,
                                     {"status", 0, O_STATUS},
                                     {"replication", 0, O_REPLICATION},
                                     {"human-readable", 0, O_HUMAN},
                                     {"bootstrap-controller", 1, O_CONTROLLER},
                                     {NULL, 0, 0}};
    cli_args_t a;
    cli_args_init(&a, script, argc, argv);
    bool describe = false, status = false, replication = false;
    int c;
    while ((c = cli_getopt(&a, opts)) != -1) {
        if (c == '?')
            return CLI_EXIT_USAGE;
        if (c == 'h') {
            printf("usage: %s --bootstrap-server HOST:PORT describe --status | --replication\n",
                   script);
            return CLI_EXIT_OK;
        }
        if (kafka_common_opt(c, a.arg))
            continue;
        if (c == O_STATUS)
            status = true;
        else if (c == O_REPLICATION)
            replication = true;
        else if (c == O_CONTROLLER)
            kafka_common_opt(KO_BOOTSTRAP, a.arg); /* a controller serves DescribeQuorum too */
        else if (c == 0 && strcmp(a.arg, "describe") == 0)
            describe = true;
        else if (c == 0)
            return kafka_unsupported(script, "the '%s' command (dynamic KRaft quorums)", a.arg);
    }
    if (!describe || status == replication) {
        fprintf(stderr, "%s: describe needs exactly one of --status and --replication\n", script);
        return CLI_EXIT_USAGE;
    }
    int rc = kafka_client_ready(script);
    if (rc >= 0)
        return rc;
    return cli_cluster_quorum(replication);
}

static int election_main(int argc, char **argv)
{
    static const char *script = "kafka-leader-election.sh";
    enum { O_TYPE = KO_FIRST_FREE, O_ALL, O_TOPIC, O_PARTITION, O_JSON };
    static const cli_opt_t opts[] = {KAFKA_COMMON_OPTS,
                                     {"election-type", 1, O_TYPE},
                                     {"all-topic-partitions", 0, O_ALL},
                                     {"topic", 1, O_TOPIC},
                                     {"partition", 1, O_PARTITION},
                                     {"path-to-json-file", 1, O_JSON},
                                     {NULL, 0, 0}};
    cli_args_t a;
    cli_args_init(&a, script, argc, argv);
    int type = -1;
    bool all = false;
    const char *topic = NULL;
    int32_t partition = -1;
    int c;
    while ((c = cli_getopt(&a, opts)) != -1) {
        if (c == '?')
            return CLI_EXIT_USAGE;
        if (c == 'h') {
            printf("usage: %s --bootstrap-server HOST:PORT --election-type preferred|unclean\n"
                   "       (--all-topic-partitions | --topic T [--partition P])\n",
                   script);
            return CLI_EXIT_OK;
        }
        if (kafka_common_opt(c, a.arg))
            continue;
        if (c == O_TYPE)
            type = strcasecmp(a.arg, "preferred") == 0 ? 0
                   : strcasecmp(a.arg, "unclean") == 0 ? 1
                                                       : -2;
        else if (c == O_ALL)
            all = true;
        else if (c == O_TOPIC)
            topic = a.arg;
        else if (c == O_PARTITION)
            partition = atoi(a.arg);
        else if (c == O_JSON)
            return kafka_unsupported(script, "--path-to-json-file (use --topic/--partition)");
        else
            return cli_usage_fail(script, "unexpected argument '%s'", a.arg);
    }
    if (type < 0 || all == (topic != NULL) || (partition >= 0 && !topic)) {
        fprintf(stderr, "%s: needs --election-type preferred|unclean and exactly one of "
                        "--all-topic-partitions and --topic [--partition]\n",
                script);
        return CLI_EXIT_USAGE;
    }
    int rc = kafka_client_ready(script);
    if (rc >= 0)
        return rc;
    return cli_elect_leaders(script, (int8_t)type, topic, partition);
}

static int reassign_main(int argc, char **argv)
{
    static const char *script = "kafka-reassign-partitions.sh";
    enum { O_FILE = KO_FIRST_FREE, O_EXECUTE, O_VERIFY, O_CANCEL, O_LIST, O_GENERATE,
           O_PRESERVE, O_THROTTLE };
    static const cli_opt_t opts[] = {KAFKA_COMMON_OPTS,
                                     {"reassignment-json-file", 1, O_FILE},
                                     {"execute", 0, O_EXECUTE},
                                     {"verify", 0, O_VERIFY},
                                     {"cancel", 0, O_CANCEL},
                                     {"list", 0, O_LIST},
                                     {"generate", 0, O_GENERATE},
                                     {"preserve-throttles", 0, O_PRESERVE},
                                     {"throttle", 1, O_THROTTLE},
                                     {NULL, 0, 0}};
    cli_args_t a;
    cli_args_init(&a, script, argc, argv);
    const char *file = NULL;
    int mode = -1, nmodes = 0;
    int c;
    while ((c = cli_getopt(&a, opts)) != -1) {
        if (c == '?')
            return CLI_EXIT_USAGE;
        if (c == 'h') {
            printf("usage: %s --bootstrap-server HOST:PORT (--execute | --verify | --cancel)\n"
                   "       --reassignment-json-file FILE, or --list\n",
                   script);
            return CLI_EXIT_OK;
        }
        if (kafka_common_opt(c, a.arg))
            continue;
        switch (c) {
        case O_FILE: file = a.arg; break;
        case O_EXECUTE: mode = CLI_REASSIGN_EXECUTE; nmodes++; break;
        case O_VERIFY: mode = CLI_REASSIGN_VERIFY; nmodes++; break;
        case O_CANCEL: mode = CLI_REASSIGN_CANCEL; nmodes++; break;
        case O_LIST: mode = CLI_REASSIGN_LIST; nmodes++; break;
        case O_GENERATE:
            return kafka_unsupported(script, "--generate (write the plan by hand)");
        case O_THROTTLE:
            return kafka_unsupported(script, "--throttle (replication throttles)");
        case O_PRESERVE: break;
        default:
            return cli_usage_fail(script, "unexpected argument '%s'", a.arg);
        }
    }
    if (nmodes != 1 || (mode != CLI_REASSIGN_LIST && !file)) {
        fprintf(stderr, "%s: needs exactly one of --execute, --verify, --cancel and --list, "
                        "and --reassignment-json-file except with --list\n",
                script);
        return CLI_EXIT_USAGE;
    }
    int rc = kafka_client_ready(script);
    if (rc >= 0)
        return rc;
    return cli_reassign(script, (cli_reassign_mode_t)mode, file);
}

static int log_dirs_main(int argc, char **argv)
{
    static const char *script = "kafka-log-dirs.sh";
    enum { O_DESCRIBE = KO_FIRST_FREE, O_TOPICS, O_BROKERS };
    static const cli_opt_t opts[] = {KAFKA_COMMON_OPTS,
                                     {"describe", 0, O_DESCRIBE},
                                     {"topic-list", 1, O_TOPICS},
                                     {"broker-list", 1, O_BROKERS},
                                     {NULL, 0, 0}};
    cli_args_t a;
    cli_args_init(&a, script, argc, argv);
    bool describe = false;
    const char *topics = NULL, *brokers = NULL;
    int c;
    while ((c = cli_getopt(&a, opts)) != -1) {
        if (c == '?')
            return CLI_EXIT_USAGE;
        if (c == 'h') {
            printf("usage: %s --bootstrap-server HOST:PORT --describe [--topic-list T1,T2]\n"
                   "       [--broker-list 1,2]\n",
                   script);
            return CLI_EXIT_OK;
        }
        if (kafka_common_opt(c, a.arg))
            continue;
        if (c == O_DESCRIBE)
            describe = true;
        else if (c == O_TOPICS)
            topics = a.arg;
        else if (c == O_BROKERS)
            brokers = a.arg;
        else
            return cli_usage_fail(script, "unexpected argument '%s'", a.arg);
    }
    if (!describe) {
        fprintf(stderr, "%s: --describe is required\n", script);
        return CLI_EXIT_USAGE;
    }
    int rc = kafka_client_ready(script);
    if (rc >= 0)
        return rc;
    return cli_log_dirs(script, topics, brokers);
}

static int acls_main(int argc, char **argv)
{
    return help_or_unsupported("kafka-acls.sh", argc, argv,
                               "ACLs (DescribeAcls, CreateAcls, DeleteAcls)");
}

/* ------------------------------------------------------------ dispatch */

static const struct {
    const char *name; /* without ".sh" */
    int (*fn)(int, char **);
} scripts[] = {
    {"kafka-topics", kafka_topics_main},
    {"kafka-configs", kafka_configs_main},
    {"kafka-consumer-groups", kafka_groups_main},
    {"kafka-console-producer", kafka_console_producer_main},
    {"kafka-console-consumer", kafka_console_consumer_main},
    {"kafka-get-offsets", kafka_get_offsets_main},
    {"kafka-delete-records", kafka_delete_records_main},
    {"kafka-dump-log", kafka_dump_log_main},
    {"kafka-storage", kafka_storage_main},
    {"kafka-metadata-quorum", quorum_main},
    {"kafka-leader-election", election_main},
    {"kafka-reassign-partitions", reassign_main},
    {"kafka-log-dirs", log_dirs_main},
    {"kafka-transactions", kafka_transactions_main},
    {"kafka-acls", acls_main},
    {"kafka-producer-perf-test", kafka_producer_perf_main},
    {"kafka-consumer-perf-test", kafka_consumer_perf_main},
    {"kafka-broker-api-versions", kafka_api_versions_main},
};

static void kafka_usage(FILE *f)
{
    fprintf(f, "usage: samsa kafka <script> [--] [Kafka's flags]\n"
               "  Runs one of Kafka's command-line tools with Kafka's flags and output\n"
               "  (normally through <dir>/bin/<script>.sh; see docs/KAFKA_SCRIPTS.md).\n"
               "Scripts:\n");
    for (size_t i = 0; i < SM_ARRAY_LEN(scripts); i++)
        fprintf(f, "  %s.sh\n", scripts[i].name);
}

int cli_cmd_kafka(int argc, char **argv)
{
    if (argc < 1 || cli_is_help(argv[0])) {
        kafka_usage(argc < 1 ? stderr : stdout);
        return argc < 1 ? CLI_EXIT_USAGE : CLI_EXIT_OK;
    }
    const char *name = strrchr(argv[0], '/');
    name = name ? name + 1 : argv[0];
    size_t n = strlen(name);
    if (n > 3 && strcmp(name + n - 3, ".sh") == 0)
        n -= 3;
    int sargc = argc - 1;
    char **sargv = argv + 1;
    if (sargc > 0 && strcmp(sargv[0], "--") == 0) {
        sargc--;
        sargv++;
    }
    for (size_t i = 0; i < SM_ARRAY_LEN(scripts); i++)
        if (strlen(scripts[i].name) == n && strncmp(scripts[i].name, name, n) == 0)
            return scripts[i].fn(sargc, sargv);
    return cli_usage_fail("kafka", "unknown Kafka script '%s'", argv[0]);
}
