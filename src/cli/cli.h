/*
 * cli.h - shared declarations of the samsa command-line tool (bin/samsa).
 *
 * Shape: `samsa [global options] <noun> <verb> [args]`. main.c pulls the
 * global options (-b brokers, --format, -X librdkafka property, --timeout,
 * -v) out of argv wherever they appear and dispatches to one command
 * function per noun (topic.c, produce.c, consume.c, group.c, configs.c,
 * cluster.c, storage.c, dump.c with dump_decode.c, perf.c, offsets.c). A
 * command returns the process exit status: 0 success, 1 failure (after printing one line "samsa: error: ..."
 * to stderr with cli_fail), 2 bad usage (cli_usage_fail).
 *
 * Client work goes through librdkafka (rk.c wraps handle creation, bounded
 * waits and error text); what librdkafka 2.0.2 lacks (ApiVersions,
 * DescribeCluster, IncrementalAlterConfigs) goes through the tiny blocking
 * wire client in admin_wire.c built on the project's generated codecs.
 * Output is either an aligned text table or JSON (out.c), picked by
 * --format. The tool is single-threaded except where librdkafka runs its own
 * threads; all of this runs on the main thread.
 */
#ifndef SM_CLI_H
#define SM_CLI_H

#include "sm_common.h"

#include <librdkafka/rdkafka.h>
#include <stdio.h>

#define CLI_EXIT_OK 0
#define CLI_EXIT_FAIL 1
#define CLI_EXIT_USAGE 2

typedef enum cli_format { CLI_FMT_TABLE = 0, CLI_FMT_JSON = 1 } cli_format_t;

/* Options shared by every command (set once by main.c, then read-only). */
typedef struct cli_globals {
    const char *brokers;    /* "host:port[,host:port]" */
    cli_format_t format;
    int timeout_ms;         /* bound on each network wait */
    int verbose;            /* -v: librdkafka logs and debug lines */
    const char **rk_props;  /* -X key=value pairs for librdkafka */
    int nrk_props;
} cli_globals_t;

extern cli_globals_t cli_g;

/* ------------------------------------------------------------ util.c */

/* Print "samsa: error: <msg>" on one line to stderr; returns CLI_EXIT_FAIL. */
int cli_fail(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* Same, with a hint to run --help; returns CLI_EXIT_USAGE. */
int cli_usage_fail(const char *cmd, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* "samsa: warning: ..." to stderr. */
void cli_warn(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* Debug line to stderr when -v is given. */
void cli_debug(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* True if s is -h or --help. */
bool cli_is_help(const char *s);
/* A broker's metrics.listener (cluster.c): "http://host:port[/...]" ->
 * host, port; GET path, the status and the body (malloc'ed, NUL-ended).
 * False (with why) when unreachable or not HTTP. */
bool cli_split_url(const char *url, char *host, size_t hlen, char *port, size_t plen);
bool cli_http_get(const char *host, const char *port, const char *path, int *status, char **body,
                  char *why, size_t whylen);

/* The start shared by every "samsa <noun> <verb> ..." command: no verb is a
 * usage error, a help word prints the noun's usage. Returns -1 when the
 * caller should go on and dispatch argv[0], else the exit status. */
int cli_noun_start(const char *noun, void (*usage)(FILE *), int argc, char **argv);
/* Help of one verb: cmd is "noun verb". Prints "usage: samsa noun <line>"
 * for each line of the noun's usage text that starts with the verb, with
 * the detail lines under it; the whole noun usage if the verb has none. */
void cli_verb_help(FILE *f, void (*usage)(FILE *), const char *cmd);
/* For verbs that take no arguments: -1 to go on, else the exit status (help
 * printed, or an unexpected argument refused). argv[0] is the verb. */
int cli_verb_no_args(const char *cmd, void (*usage)(FILE *), int argc, char **argv);

/* Strict number parsing: the whole string must be a number in range. */
bool cli_parse_i64(const char *s, int64_t *out);
bool cli_parse_i32(const char *s, int32_t lo, int32_t hi, int32_t *out);
/* "1500", "1500ms", "30s", "5m", "2h", "1d", optional leading '-' -> ms. */
bool cli_parse_duration_ms(const char *s, int64_t *out);
/* ISO-8601 "2024-01-31T12:00:00[.123][Z|+01:00]", "2024-01-31", or a plain
 * number of ms since the epoch -> ms since the epoch (UTC unless an offset
 * is given). */
bool cli_parse_datetime_ms(const char *s, int64_t *out);
/* "1.5MB"-style sizes: plain bytes or k/K, M, G suffixes (powers of 1024). */
bool cli_parse_size(const char *s, int64_t *out);
/* Split "key=value" in place into key and value; false without an =. */
bool cli_split_kv(char *s, char **key, char **value);
/* Format ms since the epoch as "2024-01-31T12:00:00.123Z" into buf. */
const char *cli_fmt_time(int64_t ms, char *buf, size_t len);

/* ------------------------------------------------------------ getopt */

/* A long/short option table entry for cli_getopt. has_arg: 0 or 1. */
typedef struct cli_opt {
    const char *name; /* long name without "--" (may be NULL) */
    int has_arg;
    int val;          /* short option character or a code > 255 */
} cli_opt_t;

/* Argument cursor over a subcommand's argv. Options may appear anywhere;
 * "--" ends options. */
typedef struct cli_args {
    int argc;
    char **argv;
    int i;
    const char *cmd;  /* "topic create", for messages */
    const char *arg;  /* argument of the last option */
    bool dashdash;    /* "--" seen: the rest are positionals */
} cli_args_t;

void cli_args_init(cli_args_t *a, const char *cmd, int argc, char **argv);
/* Next option: its val, or 0 for a positional (in a->arg), -1 at the end,
 * '?' after printing a usage error (unknown option / missing argument).
 * 'h' is returned for -h/--help without being listed. */
int cli_getopt(cli_args_t *a, const cli_opt_t *opts);

/* ------------------------------------------------------------ rk.c */

typedef struct cli_rk {
    rd_kafka_t *rk;
    char fatal[512]; /* last all-brokers-down / fatal error text, "" if none */
    int all_down;    /* set by the error callback */
    /* Monotonic ms of the first connection error (transport, all brokers
     * down) since the user last cleared it to 0; 0 if none. librdkafka does
     * not raise "all brokers down" while its group-coordinator connection
     * is still counted, so a consumer watches this instead. */
    int64_t conn_err_ms;
} cli_rk_t;

/* Create a librdkafka handle of the given type with bootstrap servers and
 * -X properties applied, extra "key","value" pairs first (NULL ends). The
 * cli_rk_t must stay at a fixed address (it is the callbacks' opaque). On
 * failure prints the reason and returns false. conf_hook may adjust the
 * conf (callbacks) before the handle is made; may be NULL. */
bool cli_rk_new(cli_rk_t *c, rd_kafka_type_t type, const char *const *extra,
                void (*conf_hook)(rd_kafka_conf_t *conf, void *arg), void *arg);
void cli_rk_destroy(cli_rk_t *c);

/* Wait for one admin result event on q, failing early when every broker is
 * down. Returns the event (caller destroys) or NULL after printing why. */
rd_kafka_event_t *cli_rk_wait(cli_rk_t *c, rd_kafka_queue_t *q, const char *what);

/* Fetch metadata (all topics, or one topic). Fails (message printed) on
 * timeout / unreachable cluster. */
bool cli_rk_metadata(cli_rk_t *c, const char *topic, const struct rd_kafka_metadata **md);
/* Metadata of one topic inside md, or NULL. */
const rd_kafka_metadata_topic_t *cli_md_topic(const struct rd_kafka_metadata *md,
                                              const char *topic);
/* One short Metadata request (at most 1 s): true if some broker answers. */
bool cli_rk_probe(cli_rk_t *c);
/* Admin options with the request timeout set from --timeout. */
rd_kafka_AdminOptions_t *cli_rk_admin_opts(cli_rk_t *c, rd_kafka_admin_op_t op);

/* Low and high watermarks of a partition (ListOffsets). */
bool cli_rk_watermarks(cli_rk_t *c, const char *topic, int32_t partition, int64_t *lo,
                       int64_t *hi);

/* ------------------------------------------------------------ commands */

int cli_cmd_topic(int argc, char **argv);
int cli_cmd_produce(int argc, char **argv);
int cli_cmd_consume(int argc, char **argv);
int cli_cmd_group(int argc, char **argv);
int cli_cmd_config(int argc, char **argv);
int cli_cmd_cluster(int argc, char **argv);
int cli_cmd_storage(int argc, char **argv);
int cli_cmd_dump_log(int argc, char **argv);
int cli_cmd_perf(int argc, char **argv);
/* samsa txn (txn.c, txn_ops.c; txn.h). */
int cli_cmd_txn(int argc, char **argv);
/* kafka-metadata-quorum.sh describe and `samsa cluster quorum` (cluster.c):
 * DescribeQuorum printed in Kafka's --status or --replication format. */
int cli_cluster_quorum(bool replication);
/* ElectLeaders (type 0 preferred, 1 unclean) for topic's partition (-1: all of
 * the topic's; topic NULL: every partition); prints Kafka's tool's lines. */
int cli_elect_leaders(const char *script, int8_t type, const char *topic, int32_t partition);
/* Partition reassignment with a kafka-reassign-partitions.sh plan file. */
typedef enum cli_reassign_mode {
    CLI_REASSIGN_EXECUTE,
    CLI_REASSIGN_VERIFY,
    CLI_REASSIGN_CANCEL,
    CLI_REASSIGN_LIST,
} cli_reassign_mode_t;
int cli_reassign(const char *script, cli_reassign_mode_t mode, const char *plan_path);
/* DescribeLogDirs of every broker (brokers_csv: only these ids; topics_csv:
 * only these topics; NULL = all), printed as kafka-log-dirs.sh does. */
int cli_log_dirs(const char *script, const char *topics_csv, const char *brokers_csv);

/* Kafka's scripts (kafka_main.c), a hidden noun: `samsa kafka kafka-topics.sh ...`. */
int cli_cmd_kafka(int argc, char **argv);
int cli_cmd_offsets(int argc, char **argv);

#endif
