/*
 * main.c - entry point of bin/samsa: global options and noun dispatch.
 *
 *   samsa [-b host:port[,host:port]] [--format table|json] [-X key=value]
 *         [--timeout 10s] [-v] <noun> <verb> [args]
 *
 * Global options may appear anywhere before a "--" (so `samsa topic list -b
 * h:9092` works like `samsa -b h:9092 topic list`); they are removed from
 * argv before the noun's own parser sees it. Brokers default to the
 * SAMSA_BROKERS environment variable, then localhost:9092.
 * Exit status: 0 ok, 1 the operation failed, 2 bad usage.
 */
#include "cli.h"

#include <stdlib.h>
#include <string.h>

#define SAMSA_CLI_VERSION SM_VERSION

static void usage(FILE *f)
{
    fprintf(f,
            "usage: samsa [global options] <command> [args]\n"
            "\n"
            "Commands:\n"
            "  topic create|list|describe|alter|delete|delete-records\n"
            "                                            manage topics\n"
            "  produce TOPIC                             write stdin lines as messages\n"
            "  consume TOPIC...                          print messages\n"
            "  group list|describe|reset-offsets|delete|delete-offsets\n"
            "                                            consumer groups\n"
            "  offsets TOPIC...                          earliest/latest/by-time offsets\n"
            "  txn list|describe|describe-producers|abort|find-hanging\n"
            "                                            transactions and producer state\n"
            "  config get|set|delete topic|broker NAME   dynamic configuration\n"
            "  cluster info|health|quorum                cluster id, controller, brokers, APIs;\n"
            "                                            health from each broker's /metrics\n"
            "  storage format|info|random-uuid           prepare log directories (offline)\n"
            "  dump-log FILE...                          decode .log/.index/.timeindex (offline)\n"
            "  perf produce|consume|e2e                  benchmark client\n"
            "  version                                   print the tool's version\n"
            "\n"
            "Global options (accepted anywhere before --):\n"
            "  -b, --brokers LIST     bootstrap brokers host:port[,host:port]\n"
            "                         (default: $SAMSA_BROKERS, then localhost:9092)\n"
            "  --format table|json    output format (default table)\n"
            "  -X key=value           librdkafka client property (repeatable)\n"
            "  --timeout DURATION     bound on each network wait (default 10s)\n"
            "  -v, --verbose          show client debug logs\n"
            "  -h, --help             help (also after any command)\n");
}

/* Remove argv[i..i+n) from argv. */
static void drop(int *argc, char **argv, int i, int n)
{
    memmove(&argv[i], &argv[i + n], sizeof(char *) * (size_t)(*argc - i - n + 1));
    *argc -= n;
}

/* Pull global options out of argv. Returns -1 on success, else an exit code. */
static int take_globals(int *argc, char **argv)
{
    static const char *props[256];
    cli_g.rk_props = props;
    for (int i = 1; i < *argc;) {
        char *s = argv[i];
        const char *val = NULL;
        int n = 0;
        if (strcmp(s, "--") == 0)
            break;
        if (strcmp(s, "-b") == 0 || strcmp(s, "--brokers") == 0 ||
            strcmp(s, "--bootstrap-server") == 0) {
            if (i + 1 >= *argc)
                return cli_usage_fail("", "option '%s' needs a value", s);
            cli_g.brokers = argv[i + 1];
            n = 2;
        } else if (strncmp(s, "--brokers=", 10) == 0) {
            cli_g.brokers = s + 10;
            n = 1;
        } else if (strncmp(s, "-b", 2) == 0 && s[2] && s[2] != '-') {
            cli_g.brokers = s + 2;
            n = 1;
        } else if (strcmp(s, "--format") == 0 || strncmp(s, "--format=", 9) == 0) {
            if (s[8] == '=') {
                val = s + 9;
                n = 1;
            } else if (i + 1 < *argc) {
                val = argv[i + 1];
                n = 2;
            } else {
                return cli_usage_fail("", "option '--format' needs a value");
            }
            if (strcmp(val, "json") == 0)
                cli_g.format = CLI_FMT_JSON;
            else if (strcmp(val, "table") == 0 || strcmp(val, "text") == 0)
                cli_g.format = CLI_FMT_TABLE;
            else
                return cli_usage_fail("", "unknown --format '%s' (table or json)", val);
        } else if (strcmp(s, "--json") == 0) {
            cli_g.format = CLI_FMT_JSON;
            n = 1;
        } else if (strcmp(s, "-X") == 0 || (strncmp(s, "-X", 2) == 0 && s[2])) {
            if (s[2]) {
                val = s + 2;
                n = 1;
            } else if (i + 1 < *argc) {
                val = argv[i + 1];
                n = 2;
            } else {
                return cli_usage_fail("", "option '-X' needs key=value");
            }
            if (!strchr(val, '='))
                return cli_usage_fail("", "-X expects key=value, got '%s'", val);
            if (cli_g.nrk_props < (int)SM_ARRAY_LEN(props))
                props[cli_g.nrk_props++] = val;
        } else if (strcmp(s, "--timeout") == 0 || strncmp(s, "--timeout=", 10) == 0) {
            if (s[9] == '=') {
                val = s + 10;
                n = 1;
            } else if (i + 1 < *argc) {
                val = argv[i + 1];
                n = 2;
            } else {
                return cli_usage_fail("", "option '--timeout' needs a value");
            }
            int64_t ms;
            if (!cli_parse_duration_ms(val, &ms) || ms <= 0 || ms > 3600000)
                return cli_usage_fail("", "bad --timeout '%s' (e.g. 5s, 1500ms)", val);
            cli_g.timeout_ms = (int)ms;
        } else if (strcmp(s, "-v") == 0 || strcmp(s, "--verbose") == 0) {
            cli_g.verbose++;
            n = 1;
        }
        if (n)
            drop(argc, argv, i, n);
        else
            i++;
    }
    return -1;
}

int main(int argc, char **argv)
{
    cli_g.timeout_ms = 10000;
    int rc = take_globals(&argc, argv);
    if (rc >= 0)
        return rc;
    if (!cli_g.brokers || !*cli_g.brokers) {
        const char *env = getenv("SAMSA_BROKERS");
        cli_g.brokers = env && *env ? env : "localhost:9092";
    }
    if (argc < 2) {
        usage(stderr);
        return cli_usage_fail("", "a command is required");
    }
    const char *noun = argv[1];
    int sargc = argc - 2;
    char **sargv = argv + 2;
    if (cli_is_help(noun)) {
        usage(stdout);
        return CLI_EXIT_OK;
    }
    if (strcmp(noun, "version") == 0 || strcmp(noun, "--version") == 0) {
        printf("samsa %s (librdkafka %s)\n", SAMSA_CLI_VERSION, rd_kafka_version_str());
        return CLI_EXIT_OK;
    }
    static const struct {
        const char *name;
        int (*fn)(int, char **);
    } nouns[] = {
        {"topic", cli_cmd_topic},     {"topics", cli_cmd_topic},
        {"produce", cli_cmd_produce}, {"consume", cli_cmd_consume},
        {"group", cli_cmd_group},     {"groups", cli_cmd_group},
        {"config", cli_cmd_config},   {"configs", cli_cmd_config},
        {"cluster", cli_cmd_cluster}, {"storage", cli_cmd_storage},
        {"dump-log", cli_cmd_dump_log}, {"perf", cli_cmd_perf},
        {"kafka", cli_cmd_kafka}, /* hidden: Kafka's scripts (docs/KAFKA_SCRIPTS.md) */
        {"offsets", cli_cmd_offsets},
        {"txn", cli_cmd_txn},
    };
    for (size_t i = 0; i < SM_ARRAY_LEN(nouns); i++)
        if (strcmp(noun, nouns[i].name) == 0) {
            rc = nouns[i].fn(sargc, sargv);
            fflush(stdout);
            if (ferror(stdout))
                return rc ? rc : cli_fail("cannot write to standard output");
            return rc;
        }
    return cli_usage_fail("", "unknown command '%s'", noun);
}
