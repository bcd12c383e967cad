/*
 * txn.c - `samsa txn <verb>`: transactions seen from the admin side
 * (list, describe, describe-producers, abort, find-hanging). Flags are
 * parsed here into a cli_txn_opts_t; txn_ops.c does the work (txn.h).
 * Main thread only.
 */
#include "txn.h"

#include <string.h>

static void txn_usage(FILE *f)
{
    fprintf(f,
            "usage: samsa txn <verb> [args]\n"
            "  list [--state S]... [--producer-id P]... [--min-duration DUR]\n"
            "                               transactions of every coordinator (state: Empty,\n"
            "                               Ongoing, PrepareCommit, PrepareAbort,\n"
            "                               CompleteCommit, CompleteAbort, ...)\n"
            "  describe --transactional-id ID\n"
            "                               state, producer, timeout and partitions of one\n"
            "  describe-producers --topic T --partition N [--broker-id B]\n"
            "                               producers a partition's leader (or broker B)\n"
            "                               remembers, with their open transactions\n"
            "  abort --topic T --partition N (--start-offset O | --producer-id P\n"
            "        --producer-epoch E --coordinator-epoch C)\n"
            "                               end a hanging transaction on one partition with\n"
            "                               an ABORT marker\n"
            "  find-hanging (--broker-id B | --topic T [--partition N])\n"
            "        [--max-transaction-timeout MIN]\n"
            "                               transactions open longer than MIN minutes (15)\n"
            "                               that no coordinator will finish\n");
}

enum {
    O_TXN_ID = 1100,
    O_TOPIC,
    O_PARTITION,
    O_BROKER,
    O_PID,
    O_EPOCH,
    O_CEPOCH,
    O_START,
    O_STATE,
    O_MAX_TIMEOUT,
    O_MIN_DURATION,
};

static const cli_opt_t txn_opts[] = {
    {"transactional-id", 1, O_TXN_ID},
    {"topic", 1, O_TOPIC},
    {"partition", 1, O_PARTITION},
    {"broker-id", 1, O_BROKER},
    {"producer-id", 1, O_PID},
    {"producer-epoch", 1, O_EPOCH},
    {"coordinator-epoch", 1, O_CEPOCH},
    {"start-offset", 1, O_START},
    {"state", 1, O_STATE},
    {"max-transaction-timeout", 1, O_MAX_TIMEOUT},
    {"min-duration", 1, O_MIN_DURATION},
    {NULL, 0, 0},
};

/* Parse one option into o; -1 to go on, else an exit status. */
static int txn_opt(const char *cmd, int c, const char *arg, cli_txn_opts_t *o)
{
    int32_t i32;
    int64_t i64;
    switch (c) {
    case O_TXN_ID: o->transactional_id = arg; return -1;
    case O_TOPIC: o->topic = arg; return -1;
    case O_PARTITION:
        if (!cli_parse_i32(arg, 0, INT32_MAX, &o->partition))
            return cli_usage_fail(cmd, "bad --partition '%s'", arg);
        return -1;
    case O_BROKER:
        if (!cli_parse_i32(arg, 0, INT32_MAX, &o->broker_id))
            return cli_usage_fail(cmd, "bad --broker-id '%s'", arg);
        return -1;
    case O_PID:
        if (!cli_parse_i64(arg, &i64) || i64 < 0)
            return cli_usage_fail(cmd, "bad --producer-id '%s'", arg);
        if (o->nproducer_ids < CLI_TXN_MAX_FILTERS)
            o->producer_ids[o->nproducer_ids++] = i64;
        o->producer_id = i64;
        return -1;
    case O_EPOCH:
        if (!cli_parse_i32(arg, 0, INT16_MAX, &o->producer_epoch))
            return cli_usage_fail(cmd, "bad --producer-epoch '%s'", arg);
        return -1;
    case O_CEPOCH:
        if (!cli_parse_i32(arg, INT32_MIN + 1, INT32_MAX, &o->coordinator_epoch))
            return cli_usage_fail(cmd, "bad --coordinator-epoch '%s'", arg);
        return -1;
    case O_START:
        if (!cli_parse_i64(arg, &o->start_offset) || o->start_offset < 0)
            return cli_usage_fail(cmd, "bad --start-offset '%s'", arg);
        return -1;
    case O_STATE:
        if (o->nstates < CLI_TXN_MAX_FILTERS)
            o->states[o->nstates++] = arg;
        return -1;
    case O_MAX_TIMEOUT:
        if (!cli_parse_i32(arg, 0, INT32_MAX / 60000, &i32))
            return cli_usage_fail(cmd, "bad --max-transaction-timeout '%s' (minutes)", arg);
        o->max_timeout_ms = (int64_t)i32 * 60000;
        return -1;
    case O_MIN_DURATION:
        if (!cli_parse_duration_ms(arg, &i64) || i64 < 0)
            return cli_usage_fail(cmd, "bad --min-duration '%s' (e.g. 30s, 5m)", arg);
        o->min_duration_ms = i64;
        return -1;
    }
    return cli_usage_fail(cmd, "unexpected argument '%s'", arg ? arg : "");
}

/* The options every verb needs, as Kafka's tool checks them. -1 to go on. */
int cli_txn_check(const char *cmd, const char *verb, const cli_txn_opts_t *o)
{
    if (strcmp(verb, "describe") == 0 && !o->transactional_id)
        return cli_usage_fail(cmd, "--transactional-id is required");
    if ((strcmp(verb, "describe-producers") == 0 || strcmp(verb, "abort") == 0) &&
        (!o->topic || o->partition < 0))
        return cli_usage_fail(cmd, "--topic and --partition are required");
    if (strcmp(verb, "abort") == 0 && o->start_offset < 0) {
        if (o->producer_id < 0)
            return cli_usage_fail(cmd, "the transaction to abort must be identified either with "
                                       "--start-offset or with --producer-id, --producer-epoch "
                                       "and --coordinator-epoch");
        if (o->producer_epoch < 0)
            return cli_usage_fail(cmd, "missing required argument --producer-epoch");
        if (o->coordinator_epoch == INT32_MIN)
            return cli_usage_fail(cmd, "missing required argument --coordinator-epoch");
    }
    if (strcmp(verb, "find-hanging") == 0) {
        if (!o->topic && o->broker_id < 0)
            return cli_usage_fail(cmd, "find-hanging requires either --topic or --broker-id to "
                                       "limit the scope of the search");
        if (o->partition >= 0 && !o->topic)
            return cli_usage_fail(cmd, "--partition requires --topic");
    }
    return -1;
}

int cli_txn_run(const char *verb, const cli_txn_opts_t *o)
{
    if (strcmp(verb, "list") == 0)
        return cli_txn_list(o);
    if (strcmp(verb, "describe") == 0)
        return cli_txn_describe(o);
    if (strcmp(verb, "describe-producers") == 0)
        return cli_txn_describe_producers(o);
    if (strcmp(verb, "abort") == 0)
        return cli_txn_abort(o);
    return cli_txn_find_hanging(o);
}

int cli_cmd_txn(int argc, char **argv)
{
    int rc = cli_noun_start("txn", txn_usage, argc, argv);
    if (rc >= 0)
        return rc;
    static const char *const verbs[] = {"list", "describe", "describe-producers", "abort",
                                        "find-hanging"};
    const char *verb = argv[0];
    const char *cmd = NULL;
    static char cmdbuf[64];
    for (size_t i = 0; i < SM_ARRAY_LEN(verbs); i++)
        if (strcmp(verb, verbs[i]) == 0) {
            snprintf(cmdbuf, sizeof cmdbuf, "txn %s", verbs[i]);
            cmd = cmdbuf;
        }
    if (!cmd)
        return cli_usage_fail("txn", "unknown verb '%s'", verb);
    cli_txn_opts_t o;
    cli_txn_opts_init(&o, CLI_TXN_SAMSA, cmd);
    cli_args_t a;
    cli_args_init(&a, cmd, argc - 1, argv + 1);
    int c;
    while ((c = cli_getopt(&a, txn_opts)) != -1) {
        if (c == '?')
            return CLI_EXIT_USAGE;
        if (c == 'h') {
            cli_verb_help(stdout, txn_usage, cmd);
            return CLI_EXIT_OK;
        }
        if ((rc = txn_opt(cmd, c, a.arg, &o)) >= 0)
            return rc;
    }
    if ((rc = cli_txn_check(cmd, verb, &o)) >= 0)
        return rc;
    return cli_txn_run(verb, &o);
}
