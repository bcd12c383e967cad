/*
 * kafka_txn.c - kafka-transactions.sh: Kafka's transaction tool with its
 * flags and output (tab-separated padded columns under Kafka's headers):
 *
 *   kafka-transactions.sh --bootstrap-server H:P [--command-config F] COMMAND ...
 *     list
 *     describe --transactional-id ID
 *     describe-producers --topic T --partition N [--broker-id B]
 *     abort --topic T --partition N (--start-offset O |
 *           --producer-id P --producer-epoch E --coordinator-epoch C)
 *     find-hanging (--broker-id B | --topic T [--partition N])
 *                  [--max-transaction-timeout MIN]
 *
 * Kafka's parser wants the global flags before the command; here they may
 * come anywhere. The work is txn_ops.c's (txn.h). Main thread only.
 */
#include "kafka.h"
#include "txn.h"

#include <string.h>

static const char *script = "kafka-transactions.sh";

static void usage(FILE *f)
{
    fprintf(f,
            "usage: %s --bootstrap-server HOST:PORT [--command-config FILE] COMMAND ...\n"
            "This tool is used to analyze the transactional state of producers in the\n"
            "cluster. It can be used to detect and recover from hanging transactions.\n"
            "commands:\n"
            "  list                       list transactions\n"
            "  describe --transactional-id ID\n"
            "                             describe the state of an active transactional-id\n"
            "  describe-producers --topic T --partition N [--broker-id B]\n"
            "                             describe the states of active producers for a\n"
            "                             topic partition\n"
            "  abort --topic T --partition N (--start-offset O | --producer-id P\n"
            "        --producer-epoch E --coordinator-epoch C)\n"
            "                             abort a hanging transaction\n"
            "  find-hanging (--broker-id B | --topic T [--partition N])\n"
            "        [--max-transaction-timeout MIN]\n"
            "                             find hanging transactions\n",
            script);
}

int kafka_transactions_main(int argc, char **argv)
{
    enum {
        O_TXN_ID = KO_FIRST_FREE,
        O_TOPIC,
        O_PARTITION,
        O_BROKER,
        O_PID,
        O_EPOCH,
        O_CEPOCH,
        O_START,
        O_MAX_TIMEOUT,
    };
    static const cli_opt_t opts[] = {KAFKA_COMMON_OPTS,
                                     {"transactional-id", 1, O_TXN_ID},
                                     {"topic", 1, O_TOPIC},
                                     {"partition", 1, O_PARTITION},
                                     {"broker-id", 1, O_BROKER},
                                     {"producer-id", 1, O_PID},
                                     {"producer-epoch", 1, O_EPOCH},
                                     {"coordinator-epoch", 1, O_CEPOCH},
                                     {"start-offset", 1, O_START},
                                     {"max-transaction-timeout", 1, O_MAX_TIMEOUT},
                                     {NULL, 0, 0}};
    static const char *const commands[] = {"list", "describe", "describe-producers", "abort",
                                           "find-hanging"};
    cli_txn_opts_t o;
    cli_txn_opts_init(&o, CLI_TXN_KAFKA, script);
    const char *command = NULL;
    cli_args_t a;
    cli_args_init(&a, script, argc, argv);
    int c;
    while ((c = cli_getopt(&a, opts)) != -1) {
        if (c == '?')
            return CLI_EXIT_USAGE;
        if (c == 'h') {
            usage(stdout);
            return CLI_EXIT_OK;
        }
        if (kafka_common_opt(c, a.arg))
            continue;
        int32_t i32;
        bool bad = false;
        switch (c) {
        case 0:
            if (command)
                return cli_usage_fail(script, "unrecognized argument '%s'", a.arg);
            for (size_t i = 0; i < SM_ARRAY_LEN(commands); i++)
                if (strcmp(a.arg, commands[i]) == 0)
                    command = commands[i];
            if (!command)
                return cli_usage_fail(script, "invalid choice: '%s' (choose from 'list', "
                                              "'describe', 'describe-producers', 'abort', "
                                              "'find-hanging')",
                                      a.arg);
            break;
        case O_TXN_ID: o.transactional_id = a.arg; break;
        case O_TOPIC: o.topic = a.arg; break;
        case O_PARTITION: bad = !cli_parse_i32(a.arg, 0, INT32_MAX, &o.partition); break;
        case O_BROKER: bad = !cli_parse_i32(a.arg, 0, INT32_MAX, &o.broker_id); break;
        case O_PID:
            bad = !cli_parse_i64(a.arg, &o.producer_id) || o.producer_id < 0;
            break;
        case O_EPOCH: bad = !cli_parse_i32(a.arg, 0, INT16_MAX, &o.producer_epoch); break;
        case O_CEPOCH:
            bad = !cli_parse_i32(a.arg, INT32_MIN + 1, INT32_MAX, &o.coordinator_epoch);
            break;
        case O_START:
            bad = !cli_parse_i64(a.arg, &o.start_offset) || o.start_offset < 0;
            break;
        case O_MAX_TIMEOUT:
            bad = !cli_parse_i32(a.arg, 0, INT32_MAX / 60000, &i32);
            o.max_timeout_ms = (int64_t)i32 * 60000;
            break;
        default: bad = true;
        }
        if (bad)
            return cli_usage_fail(script, "bad value '%s'", a.arg ? a.arg : "");
    }
    if (!command) {
        usage(stderr);
        return cli_usage_fail(script, "a command is required");
    }
    int rc = cli_txn_check(script, command, &o);
    if (rc >= 0)
        return rc;
    rc = kafka_client_ready(script);
    if (rc >= 0)
        return rc;
    return cli_txn_run(command, &o);
}
