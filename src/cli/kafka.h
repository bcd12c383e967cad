/*
 * kafka.h - Kafka's own command-line scripts on top of the samsa tool.
 *
 * `samsa kafka <script> [--] [Kafka's flags]` (a hidden noun) runs one of
 * Kafka's tools - kafka-topics.sh, kafka-consumer-groups.sh, ... - with
 * Kafka's flags and Kafka's output formats, so a runbook written for Apache
 * Kafka works when pointed at <dir>/bin/kafka-*.sh, where every script is a
 * thin shell wrapper (scripts/kafka-dist/kafka-script.sh) that execs this.
 * The wrapper passes "--" first, so main.c's global options (-b, -v,
 * --timeout, ...) do not take Kafka's flags; every script parses its own,
 * including --bootstrap-server and --command-config (kafka_common_opt).
 *
 * One file per family: kafka_main.c (dispatch, the shared options, the
 * unsupported scripts), kafka_topics.c (kafka-topics, kafka-configs),
 * kafka_groups.c (kafka-consumer-groups), kafka_console.c (console
 * producer and consumer), kafka_offsets.c (kafka-get-offsets,
 * kafka-delete-records, kafka-broker-api-versions), kafka_offline.c
 * (kafka-dump-log, kafka-storage), kafka_perf.c (the two perf tests), kafka_txn.c
 * (kafka-transactions).
 * Errors go through cli_fail ("samsa: error: ..."); what Samsa cannot do
 * yet goes through kafka_unsupported. Main thread only.
 */
#ifndef SM_CLI_KAFKA_H
#define SM_CLI_KAFKA_H

#include "cli.h"

/* Option codes shared by every script's option table (above 255, so they
 * never clash with short option letters). */
enum {
    KO_BOOTSTRAP = 1000, /* --bootstrap-server / --broker-list */
    KO_COMMAND_CONFIG,   /* --command-config FILE */
    KO_FIRST_FREE = 1100 /* scripts number their own codes from here */
};

/* Common entries to put in a script's cli_opt_t table. */
#define KAFKA_COMMON_OPTS                                                                  \
    {"bootstrap-server", 1, KO_BOOTSTRAP}, {"command-config", 1, KO_COMMAND_CONFIG}

/* Handle a common option (KO_BOOTSTRAP, KO_COMMAND_CONFIG): true if c was
 * one of them. The config file is read later by kafka_client_ready. */
bool kafka_common_opt(int c, const char *arg);

/* Before talking to the cluster: --bootstrap-server must have been given,
 * and --command-config's properties are loaded. Returns -1 to go on, else
 * the exit status (message printed). */
int kafka_client_ready(const char *script);

/* Load a Kafka client properties file (--command-config,
 * --producer.config, ...) into the librdkafka properties every handle gets
 * (cli_g.rk_props). Keys librdkafka does not know (Java-only ones such as
 * key.serializer) are skipped with a warning; sasl.jaas.config's
 * PlainLoginModule/ScramLoginModule username and password become
 * sasl.username and sasl.password. false (message printed) on I/O errors. */
bool kafka_load_props_file(const char *path);
/* Add one "key=value" client property the same way (--producer-property,
 * --consumer-property, --producer-props). */
bool kafka_add_prop(const char *kv);

/* "<script>: not supported by Samsa yet: <what>" on stderr; returns 1. */
int kafka_unsupported(const char *script, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* Run one admin call on a fresh queue and wait for its result event. The
 * event's own error is reported (prefix what) and NULL returned; otherwise
 * the caller destroys the event. */
typedef void (*kafka_admin_fn)(rd_kafka_t *rk, rd_kafka_AdminOptions_t *o, rd_kafka_queue_t *q,
                               void *arg);
rd_kafka_event_t *kafka_admin(cli_rk_t *k, rd_kafka_admin_op_t op, const char *what,
                              kafka_admin_fn fn, void *arg);

/* Whole-string match of name against a Kafka --topic / --include pattern
 * (POSIX extended regex; a plain name matches itself). */
bool kafka_topic_match(const char *pattern, const char *name);

/* Scripts (argv[0] is the first flag, not the script name). */
int kafka_topics_main(int argc, char **argv);
int kafka_configs_main(int argc, char **argv);
int kafka_groups_main(int argc, char **argv);
int kafka_console_producer_main(int argc, char **argv);
int kafka_console_consumer_main(int argc, char **argv);
int kafka_get_offsets_main(int argc, char **argv);
int kafka_delete_records_main(int argc, char **argv);
int kafka_api_versions_main(int argc, char **argv);
int kafka_dump_log_main(int argc, char **argv);
int kafka_storage_main(int argc, char **argv);
int kafka_producer_perf_main(int argc, char **argv);
int kafka_consumer_perf_main(int argc, char **argv);
int kafka_transactions_main(int argc, char **argv); /* kafka_txn.c */

#endif
