/*
 * txn.h - the transaction tools shared by `samsa txn ...` (txn.c) and
 * kafka-transactions.sh (kafka_txn.c): list, describe, describe-producers,
 * abort and find-hanging over the raw protocol (admin_wire.h).
 *
 * The two front ends parse their own flags into a cli_txn_opts_t and call
 * the same operations; only the printing differs: samsa's aligned table or
 * JSON (--format), or Kafka's tool's tab-separated padded columns with its
 * headers, so scripts that parse kafka-transactions.sh output keep working.
 * Main thread only.
 */
#ifndef SM_CLI_TXN_H
#define SM_CLI_TXN_H

#include "cli.h"

typedef enum cli_txn_style { CLI_TXN_SAMSA = 0, CLI_TXN_KAFKA = 1 } cli_txn_style_t;

#define CLI_TXN_MAX_FILTERS 64

typedef struct cli_txn_opts {
    cli_txn_style_t style;
    const char *who;            /* message prefix: "txn abort", "kafka-transactions.sh" */
    const char *transactional_id;
    const char *topic;          /* NULL: none given */
    int32_t partition;          /* -1: none given */
    int32_t broker_id;          /* -1: none given */
    int64_t producer_id;        /* -1: none given */
    int32_t producer_epoch;     /* -1: none given */
    int32_t coordinator_epoch;  /* INT32_MIN: none given */
    int64_t start_offset;       /* -1: none given */
    int64_t max_timeout_ms;     /* find-hanging: --max-transaction-timeout (15 min) */
    int64_t min_duration_ms;    /* list: running at least this long; -1 all */
    const char *states[CLI_TXN_MAX_FILTERS];
    int nstates;
    int64_t producer_ids[CLI_TXN_MAX_FILTERS];
    int nproducer_ids;
} cli_txn_opts_t;

/* Fields set to "none given". */
void cli_txn_opts_init(cli_txn_opts_t *o, cli_txn_style_t style, const char *who);

/* Each returns the exit status (0, or 1 after printing why). The options
 * each one needs were checked by the caller (cli_txn_check_abort etc.). */
int cli_txn_list(const cli_txn_opts_t *o);
int cli_txn_describe(const cli_txn_opts_t *o);
int cli_txn_describe_producers(const cli_txn_opts_t *o);
int cli_txn_abort(const cli_txn_opts_t *o);
int cli_txn_find_hanging(const cli_txn_opts_t *o);

/* Check that verb has the options it needs (usage error printed): -1 to go
 * on, else the exit status. cmd names the command in messages. */
int cli_txn_check(const char *cmd, const char *verb, const cli_txn_opts_t *o);
/* Run verb (list, describe, describe-producers, abort, find-hanging). */
int cli_txn_run(const char *verb, const cli_txn_opts_t *o);

#endif
