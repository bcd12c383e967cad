/*
 * config.c - loading and checking the broker configuration (see config.h).
 *
 * Steps of sm_config_load():
 *   1. read the properties file into an ordered key/value list (last
 *      duplicate wins, first position kept), then apply the overrides;
 *   2. check every set key that has a definition (type, range, choices);
 *      unknown keys only warn, because Kafka configs carry keys for plugins
 *      and features Samsa does not have and a Kafka user's file must load;
 *   3. fill the typed fields from "set value, else default";
 *   4. parse the structured values (listeners, voters, protocol map, roles,
 *      log dirs) and check the combinations Kafka's KRaft mode requires.
 *
 * Properties syntax (java.util.Properties): lines starting with '#' or '!'
 * (after whitespace) are comments; a line ending in an odd number of
 * backslashes continues on the next line, whose leading whitespace is
 * dropped; the key ends at the first unescaped '=', ':' or whitespace; the
 * separator may be surrounded by whitespace; \t \n \r \f \uXXXX escapes; any
 * other escaped character stands for itself. Values are trimmed as Kafka's
 * ConfigDef does before parsing.
 *
 * Samsa's defaults differ from Kafka's only where Kafka has no usable KRaft
 * default (it would refuse to start): process.roles=broker,controller,
 * node.id=1, listeners with a CONTROLLER listener on 9093, and
 * controller.listener.names=CONTROLLER; num.network.threads means event-loop
 * threads (0 = one per core). docs/CONFIGURATION.md lists them.
 */
#define _GNU_SOURCE
#include "config.h"

#include "log.h"

#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#define TAG "config"
#define LMAX "9223372036854775807"
#define IMAX "2147483647"

/* ------------------------------------------------------------ definitions */

static const char *const k_roles[] = {"broker", "controller", NULL};
static const char *const k_ts_types[] = {"CreateTime", "LogAppendTime", NULL};
static const char *const k_cleanup[] = {"compact", "delete", NULL};
static const char *const k_compression[] = {"uncompressed", "zstd", "lz4", "snappy", "gzip",
                                            "producer", NULL};
static const char *const k_secprotos[] = {"PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL", NULL};

#define DEF(k, t, d, doc_) {.key = k, .type = t, .dflt = d, .doc = doc_}
#define RNG(k, t, d, lo, hi, doc_)                                                                 \
    {.key = k, .type = t, .dflt = d, .min = lo, .max = hi, .has_range = true, .doc = doc_}
#define CHO(k, t, d, ch, doc_) {.key = k, .type = t, .dflt = d, .choices = ch, .doc = doc_}
#define NOMAX 9.3e18

const sm_config_def_t sm_broker_config_defs[] = {
    /* identity, roles, quorum */
    RNG("node.id", SM_CONFIG_INT, "1", 0, 2147483647, "Id of this node (broker and/or controller)"),
    RNG("broker.id", SM_CONFIG_INT, "-1", -1, 2147483647, "Legacy alias of node.id; must match it if set"),
    CHO("process.roles", SM_CONFIG_LIST, "broker,controller", k_roles, "Roles of this process"),
    DEF("broker.rack", SM_CONFIG_STRING, NULL, "Rack of the broker"),
    DEF("controller.quorum.voters", SM_CONFIG_LIST, "", "Voters as id@host:port (derived for a single controller when empty)"),
    DEF("controller.quorum.bootstrap.servers", SM_CONFIG_LIST, "", "host:port of controllers to bootstrap from"),
    DEF("controller.listener.names", SM_CONFIG_LIST, "CONTROLLER", "Listener names used by the controller"),
    RNG("controller.quorum.election.timeout.ms", SM_CONFIG_INT, "1000", 0, 2147483647, "Raft election timeout"),
    RNG("controller.quorum.fetch.timeout.ms", SM_CONFIG_INT, "2000", 0, 2147483647, "Raft fetch timeout"),
    RNG("controller.quorum.election.backoff.max.ms", SM_CONFIG_INT, "1000", 0, 2147483647, "Raft election backoff"),
    RNG("controller.quorum.request.timeout.ms", SM_CONFIG_INT, "2000", 1, 2147483647, "Raft request timeout"),
    RNG("controller.quorum.append.linger.ms", SM_CONFIG_INT, "25", 0, 2147483647, "How long the quorum leader waits to gather appends before flushing"),
    RNG("controller.quorum.retry.backoff.ms", SM_CONFIG_INT, "20", 0, 2147483647, "Raft backoff before retrying a failed request"),
    /* network */
    DEF("listeners", SM_CONFIG_LIST, "PLAINTEXT://:9092,CONTROLLER://:9093", "Listeners to bind, NAME://host:port"),
    DEF("advertised.listeners", SM_CONFIG_LIST, NULL, "Listeners published to clients (default: listeners minus controller listeners)"),
    DEF("listener.security.protocol.map", SM_CONFIG_STRING,
        "SASL_SSL:SASL_SSL,PLAINTEXT:PLAINTEXT,SSL:SSL,SASL_PLAINTEXT:SASL_PLAINTEXT",
        "Listener name to security protocol"),
    DEF("inter.broker.listener.name", SM_CONFIG_STRING, NULL, "Listener used between brokers"),
    CHO("security.inter.broker.protocol", SM_CONFIG_STRING, "PLAINTEXT", k_secprotos, "Protocol between brokers when inter.broker.listener.name is unset"),
    RNG("num.network.threads", SM_CONFIG_INT, "0", 0, 1024, "Samsa: event-loop threads (0 = one per core)"),
    RNG("num.io.threads", SM_CONFIG_INT, "8", 1, 1024, "Samsa: background worker threads (fsync, file deletion)"),
    RNG("background.threads", SM_CONFIG_INT, "10", 1, 1024, "Threads for background tasks"),
    RNG("queued.max.requests", SM_CONFIG_INT, "500", 1, 2147483647, "Requests queued before reading stops"),
    RNG("socket.request.max.bytes", SM_CONFIG_INT, "104857600", 1, 2147483647, "Largest request accepted"),
    DEF("socket.send.buffer.bytes", SM_CONFIG_INT, "-1", "SO_SNDBUF of client connections (-1 = OS default)"),
    DEF("socket.receive.buffer.bytes", SM_CONFIG_INT, "-1", "SO_RCVBUF of client connections (-1 = OS default)"),
    RNG("socket.listen.backlog.size", SM_CONFIG_INT, "50", 1, 2147483647, "listen(2) backlog"),
    DEF("connections.max.idle.ms", SM_CONFIG_LONG, "600000", "Idle connections are closed after this"),
    RNG("max.connections", SM_CONFIG_INT, IMAX, 0, 2147483647, "Connection limit"),
    RNG("max.connections.per.ip", SM_CONFIG_INT, IMAX, 0, 2147483647, "Connection limit per client address"),
    DEF("metrics.listener", SM_CONFIG_STRING, "http://127.0.0.1:9644", "Samsa: HTTP endpoint serving /metrics (Prometheus) and /health, http://host:port (empty = off)"),
    /* logs */
    DEF("log.dirs", SM_CONFIG_LIST, NULL, "Directories holding partition logs (overrides log.dir)"),
    DEF("log.dir", SM_CONFIG_STRING, "/tmp/kraft-combined-logs", "Log directory when log.dirs is unset"),
    DEF("metadata.log.dir", SM_CONFIG_STRING, NULL, "Directory of the metadata log (default: first log dir)"),
    RNG("num.partitions", SM_CONFIG_INT, "1", 1, 2147483647, "Default partitions of a new topic"),
    RNG("default.replication.factor", SM_CONFIG_INT, "1", 1, 32767, "Default replication factor"),
    DEF("auto.create.topics.enable", SM_CONFIG_BOOLEAN, "true", "Create unknown topics on metadata requests"),
    DEF("delete.topic.enable", SM_CONFIG_BOOLEAN, "true", "Allow deleting topics"),
    RNG("message.max.bytes", SM_CONFIG_INT, "1048588", 0, 2147483647, "Largest record batch accepted"),
    RNG("log.segment.bytes", SM_CONFIG_INT, "1073741824", 14, 2147483647, "Segment size"),
    RNG("log.roll.ms", SM_CONFIG_LONG, NULL, 1, NOMAX, "Roll a segment after this long (overrides hours)"),
    RNG("log.roll.hours", SM_CONFIG_INT, "168", 1, 2147483647, "Roll a segment after this many hours"),
    RNG("log.roll.jitter.ms", SM_CONFIG_LONG, NULL, 0, NOMAX, "Random jitter subtracted from roll time"),
    RNG("log.roll.jitter.hours", SM_CONFIG_INT, "0", 0, 2147483647, "Roll jitter in hours"),
    DEF("log.retention.ms", SM_CONFIG_LONG, NULL, "Retention time (wins over minutes and hours; -1 = forever)"),
    DEF("log.retention.minutes", SM_CONFIG_INT, NULL, "Retention time in minutes (wins over hours)"),
    DEF("log.retention.hours", SM_CONFIG_INT, "168", "Retention time in hours"),
    DEF("log.retention.bytes", SM_CONFIG_LONG, "-1", "Retention size per partition (-1 = unlimited)"),
    RNG("log.retention.check.interval.ms", SM_CONFIG_LONG, "300000", 1, NOMAX, "How often retention runs"),
    RNG("log.flush.interval.messages", SM_CONFIG_LONG, LMAX, 1, NOMAX, "fsync after this many messages"),
    DEF("log.flush.interval.ms", SM_CONFIG_LONG, NULL, "fsync after this long (default: log.flush.scheduler.interval.ms)"),
    DEF("log.flush.scheduler.interval.ms", SM_CONFIG_LONG, LMAX, "How often the flusher checks logs"),
    RNG("log.flush.offset.checkpoint.interval.ms", SM_CONFIG_INT, "60000", 0, 2147483647, "Recovery point checkpoint interval"),
    RNG("log.flush.start.offset.checkpoint.interval.ms", SM_CONFIG_INT, "60000", 0, 2147483647, "Log start offset checkpoint interval"),
    RNG("log.index.interval.bytes", SM_CONFIG_INT, "4096", 0, 2147483647, "Bytes between offset index entries"),
    RNG("log.index.size.max.bytes", SM_CONFIG_INT, "10485760", 4, 2147483647, "Offset index size"),
    RNG("log.segment.delete.delay.ms", SM_CONFIG_LONG, "60000", 0, NOMAX, "Delay before a deleted segment is unlinked"),
    CHO("log.message.timestamp.type", SM_CONFIG_STRING, "CreateTime", k_ts_types, "Timestamp type of appended records"),
    RNG("log.message.timestamp.difference.max.ms", SM_CONFIG_LONG, LMAX, 0, NOMAX, "Deprecated timestamp skew limit"),
    RNG("log.message.timestamp.before.max.ms", SM_CONFIG_LONG, LMAX, 0, NOMAX, "How far in the past a timestamp may be"),
    RNG("log.message.timestamp.after.max.ms", SM_CONFIG_LONG, LMAX, 0, NOMAX, "How far in the future a timestamp may be"),
    DEF("log.message.downconversion.enable", SM_CONFIG_BOOLEAN, "true", "Down-convert for old fetchers"),
    DEF("log.message.format.version", SM_CONFIG_STRING, "3.0-IV1", "Deprecated; ignored"),
    CHO("log.cleanup.policy", SM_CONFIG_LIST, "delete", k_cleanup, "delete and/or compact"),
    DEF("log.cleaner.enable", SM_CONFIG_BOOLEAN, "true", "Run the log cleaner"),
    RNG("log.cleaner.threads", SM_CONFIG_INT, "1", 0, 2147483647, "Log cleaner threads"),
    RNG("log.cleaner.delete.retention.ms", SM_CONFIG_LONG, "86400000", 0, NOMAX, "How long tombstones are kept"),
    RNG("log.cleaner.min.compaction.lag.ms", SM_CONFIG_LONG, "0", 0, NOMAX, "Minimum age before compaction"),
    RNG("log.cleaner.max.compaction.lag.ms", SM_CONFIG_LONG, LMAX, 1, NOMAX, "Maximum age before compaction"),
    RNG("log.cleaner.min.cleanable.ratio", SM_CONFIG_DOUBLE, "0.5", 0, 1, "Dirty ratio that triggers cleaning"),
    DEF("log.cleaner.dedupe.buffer.size", SM_CONFIG_LONG, "134217728", "Cleaner dedupe memory (shared by the cleaner threads)"),
    RNG("log.cleaner.io.max.bytes.per.second", SM_CONFIG_DOUBLE, "1.7976931348623157E308", 0, 1.7976931348623157E308, "Cleaner read + write rate limit (shared by the cleaner threads)"),
    RNG("log.cleaner.backoff.ms", SM_CONFIG_LONG, "15000", 0, NOMAX, "Cleaner sleep when no log needs cleaning"),
    RNG("log.cleaner.io.buffer.size", SM_CONFIG_INT, "524288", 0, 2147483647, "Cleaner I/O buffers (accepted; Samsa sizes its own)"),
    DEF("log.preallocate", SM_CONFIG_BOOLEAN, "false", "Preallocate new segments"),
    RNG("log.cache.window.bytes", SM_CONFIG_LONG, "33554432", 0, NOMAX, "Newest bytes of each partition left in the page cache; older written data is written back early and dropped (0 = leave it to the kernel)"),
    RNG("log.local.retention.ms", SM_CONFIG_LONG, "-2", -2, NOMAX, "Local retention time with tiered storage"),
    RNG("log.local.retention.bytes", SM_CONFIG_LONG, "-2", -2, NOMAX, "Local retention size with tiered storage"),
    CHO("compression.type", SM_CONFIG_STRING, "producer", k_compression, "Compression of stored batches"),
    RNG("compression.gzip.level", SM_CONFIG_INT, "-1", -1, 9, "gzip level"),
    RNG("compression.lz4.level", SM_CONFIG_INT, "9", 1, 17, "lz4 level"),
    RNG("compression.zstd.level", SM_CONFIG_INT, "3", -131072, 22, "zstd level"),
    RNG("min.insync.replicas", SM_CONFIG_INT, "1", 1, 2147483647, "Replicas that must ack acks=all writes"),
    DEF("unclean.leader.election.enable", SM_CONFIG_BOOLEAN, "false", "Allow out-of-sync leaders"),
    RNG("num.recovery.threads.per.data.dir", SM_CONFIG_INT, "1", 1, 2147483647, "Threads recovering logs at start"),
    DEF("auto.leader.rebalance.enable", SM_CONFIG_BOOLEAN, "true", "Move leadership back to preferred replicas"),
    RNG("replica.fetch.max.bytes", SM_CONFIG_INT, "1048576", 0, 2147483647, "Follower fetch size per partition"),
    DEF("replica.lag.time.max.ms", SM_CONFIG_LONG, "30000", "Follower lag before leaving the ISR"),
    RNG("replica.fetch.wait.max.ms", SM_CONFIG_INT, "500", 0, 2147483647, "Follower fetch wait"),
    RNG("replica.fetch.min.bytes", SM_CONFIG_INT, "1", 1, 2147483647, "Bytes a follower fetch waits for"),
    RNG("replica.fetch.response.max.bytes", SM_CONFIG_INT, "10485760", 0, 2147483647, "Largest follower fetch response"),
    RNG("replica.fetch.backoff.ms", SM_CONFIG_INT, "1000", 0, 2147483647, "Follower pause after a failed fetch"),
    RNG("replica.socket.timeout.ms", SM_CONFIG_INT, "30000", 1, 2147483647, "Follower fetch request timeout"),
    RNG("num.replica.fetchers", SM_CONFIG_INT, "1", 1, 2147483647, "Follower fetch threads"),
    RNG("fetch.max.bytes", SM_CONFIG_INT, "57671680", 1024, 2147483647, "Largest fetch response"),
    /* group coordinator, offsets, transactions */
    RNG("offsets.topic.num.partitions", SM_CONFIG_INT, "50", 1, 2147483647, "Partitions of __consumer_offsets"),
    RNG("offsets.topic.replication.factor", SM_CONFIG_SHORT, "3", 1, 32767, "Replication factor of __consumer_offsets (capped at the broker count)"),
    RNG("offsets.topic.segment.bytes", SM_CONFIG_INT, "104857600", 1, 2147483647, "Segment size of __consumer_offsets"),
    RNG("offsets.topic.compression.codec", SM_CONFIG_INT, "0", 0, 4, "Compression of offset commits"),
    RNG("offsets.retention.minutes", SM_CONFIG_INT, "10080", 1, 2147483647, "Retention of committed offsets of empty groups"),
    RNG("offsets.retention.check.interval.ms", SM_CONFIG_LONG, "600000", 1, NOMAX, "How often stale offsets are removed"),
    RNG("offsets.commit.timeout.ms", SM_CONFIG_INT, "5000", 1, 2147483647, "Offset commit wait"),
    RNG("offsets.load.buffer.size", SM_CONFIG_INT, "5242880", 1, 2147483647, "Read size when loading offsets"),
    RNG("offset.metadata.max.bytes", SM_CONFIG_INT, "4096", 0, 2147483647, "Largest offset commit metadata"),
    RNG("group.initial.rebalance.delay.ms", SM_CONFIG_INT, "3000", 0, 2147483647, "Wait for more members before the first rebalance"),
    RNG("group.min.session.timeout.ms", SM_CONFIG_INT, "6000", 0, 2147483647, "Smallest session timeout accepted"),
    RNG("group.max.session.timeout.ms", SM_CONFIG_INT, "1800000", 0, 2147483647, "Largest session timeout accepted"),
    RNG("group.max.size", SM_CONFIG_INT, IMAX, 1, 2147483647, "Members per group"),
    DEF("group.coordinator.rebalance.protocols", SM_CONFIG_LIST, "classic,consumer", "Enabled rebalance protocols"),
    RNG("transaction.state.log.num.partitions", SM_CONFIG_INT, "50", 1, 2147483647, "Partitions of __transaction_state"),
    RNG("transaction.state.log.replication.factor", SM_CONFIG_SHORT, "3", 1, 32767, "Replication factor of __transaction_state"),
    RNG("transaction.state.log.min.isr", SM_CONFIG_INT, "2", 1, 2147483647, "min.insync.replicas of __transaction_state"),
    RNG("transaction.state.log.segment.bytes", SM_CONFIG_INT, "104857600", 1, 2147483647, "Segment size of __transaction_state"),
    RNG("transaction.max.timeout.ms", SM_CONFIG_INT, "900000", 1, 2147483647, "Largest transaction timeout"),
    RNG("transactional.id.expiration.ms", SM_CONFIG_INT, "604800000", 1, 2147483647, "Expiry of idle transactional ids"),
    RNG("producer.id.expiration.ms", SM_CONFIG_INT, "86400000", 1, 2147483647, "Expiry of idle producer ids"),
    DEF("transaction.partition.verification.enable", SM_CONFIG_BOOLEAN, "true", "Leaders ask the coordinator before a transactional write opens a transaction (KIP-890)"),
    RNG("transaction.abort.timed.out.transaction.cleanup.interval.ms", SM_CONFIG_INT, "10000", 1, 2147483647, "How often transactions past their timeout are aborted"),
    RNG("transaction.remove.expired.transaction.cleanup.interval.ms", SM_CONFIG_INT, "3600000", 1, 2147483647, "How often expired transactional ids are removed"),
    /* metadata log */
    RNG("metadata.log.segment.bytes", SM_CONFIG_INT, "1073741824", 12, 2147483647, "Metadata log segment size"),
    RNG("metadata.max.retention.bytes", SM_CONFIG_LONG, "104857600", -1, NOMAX, "Past this size the metadata log starts at the newest snapshot (-1: keep it whole)"),
    RNG("metadata.log.max.record.bytes.between.snapshots", SM_CONFIG_LONG, "20971520", 1, NOMAX, "Metadata record bytes applied before a new snapshot of the metadata image is written"),
    RNG("metadata.log.segment.ms", SM_CONFIG_LONG, "604800000", 1, NOMAX, "Metadata log segment age"),
    DEF("metadata.max.retention.bytes", SM_CONFIG_LONG, "104857600", "Metadata log retention size"),
    DEF("metadata.max.retention.ms", SM_CONFIG_LONG, "604800000", "Metadata log retention time"),
    /* accepted for compatibility; Samsa does not use them yet */
    DEF("authorizer.class.name", SM_CONFIG_STRING, "", "Authorizer (not supported yet)"),
    DEF("sasl.enabled.mechanisms", SM_CONFIG_LIST, "GSSAPI", "SASL mechanisms (not supported yet)"),
    DEF("create.topic.policy.class.name", SM_CONFIG_CLASS, NULL, "Topic creation policy (not supported)"),
    DEF("broker.session.timeout.ms", SM_CONFIG_INT, "9000", "Fence a broker after this long without a heartbeat (controller)"),
    DEF("broker.heartbeat.interval.ms", SM_CONFIG_INT, "2000", "How often a broker heartbeats to the controller"),
    DEF("max.incremental.fetch.session.cache.slots", SM_CONFIG_INT, "1000", "Incremental fetch sessions kept (KIP-227); 0 disables them"),
    DEF("leader.imbalance.check.interval.seconds", SM_CONFIG_LONG, "300", "Leader rebalance check interval"),
};
const size_t sm_broker_config_ndefs = SM_ARRAY_LEN(sm_broker_config_defs);

const sm_config_def_t *sm_broker_config_def(const char *key)
{
    for (size_t i = 0; i < sm_broker_config_ndefs; i++)
        if (strcmp(sm_broker_config_defs[i].key, key) == 0)
            return &sm_broker_config_defs[i];
    return NULL;
}

const char *sm_broker_config_suggest(const char *key)
{
    /* Close enough to be a typo: a few edits, fewer for short keys. */
    int limit = (int)strlen(key) / 5 + 1;
    if (limit > 3)
        limit = 3;
    const char *best = NULL;
    int best_d = limit + 1;
    for (size_t i = 0; i < sm_broker_config_ndefs; i++) {
        int d = sm_edit_distance(key, sm_broker_config_defs[i].key, limit);
        if (d < best_d) {
            best_d = d;
            best = sm_broker_config_defs[i].key;
        }
    }
    return best;
}

/* ------------------------------------------------------------ value checks */

static void set_err(char *err, size_t errlen, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static void set_err(char *err, size_t errlen, const char *fmt, ...)
{
    if (!err || errlen == 0)
        return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
}

/* Parse a decimal integer that must use the whole (trimmed) string. */
static bool parse_i64(const char *s, int64_t *out)
{
    if (!*s)
        return false;
    errno = 0;
    char *end;
    long long v = strtoll(s, &end, 10);
    if (errno || *end || isspace((unsigned char)*s))
        return false;
    *out = v;
    return true;
}

static bool choice_ok(const sm_config_def_t *d, const char *v, size_t n)
{
    for (const char *const *c = d->choices; *c; c++)
        if (strlen(*c) == n &&
            (d->choices_nocase ? strncasecmp(*c, v, n) : strncmp(*c, v, n)) == 0)
            return true;
    return false;
}

sm_err_t sm_config_def_check(const sm_config_def_t *d, const char *value, char *err, size_t errlen)
{
    const char *v = value;
    switch (d->type) {
    case SM_CONFIG_BOOLEAN:
        if (strcasecmp(v, "true") && strcasecmp(v, "false"))
            goto bad_type;
        return SM_OK;
    case SM_CONFIG_INT:
    case SM_CONFIG_SHORT:
    case SM_CONFIG_LONG: {
        int64_t x;
        if (!parse_i64(v, &x))
            goto bad_type;
        if (d->type == SM_CONFIG_INT && (x < INT32_MIN || x > INT32_MAX))
            goto bad_type;
        if (d->type == SM_CONFIG_SHORT && (x < INT16_MIN || x > INT16_MAX))
            goto bad_type;
        if (d->has_range && ((double)x < d->min || (double)x > d->max))
            goto bad_range;
        return SM_OK;
    }
    case SM_CONFIG_DOUBLE: {
        char *end;
        errno = 0;
        double x = strtod(v, &end);
        if (!*v || *end || errno || isnan(x))
            goto bad_type;
        if (d->has_range && (x < d->min || x > d->max))
            goto bad_range;
        return SM_OK;
    }
    case SM_CONFIG_STRING:
    case SM_CONFIG_CLASS:
    case SM_CONFIG_PASSWORD:
        if (d->choices && !choice_ok(d, v, strlen(v)))
            goto bad_choice;
        return SM_OK;
    case SM_CONFIG_LIST:
        if (d->choices) {
            const char *p = v;
            while (*p) {
                const char *comma = strchr(p, ',');
                size_t n = comma ? (size_t)(comma - p) : strlen(p);
                const char *s = p;
                while (n && isspace((unsigned char)*s))
                    s++, n--;
                while (n && isspace((unsigned char)s[n - 1]))
                    n--;
                if (!choice_ok(d, s, n))
                    goto bad_choice;
                p = comma ? comma + 1 : p + strlen(p);
            }
        }
        return SM_OK;
    }
bad_type:
    set_err(err, errlen, "Invalid value %s for configuration %s: expected %s", value, d->key,
            d->type == SM_CONFIG_BOOLEAN ? "true or false"
            : d->type == SM_CONFIG_DOUBLE ? "a number"
            : d->type == SM_CONFIG_INT    ? "a 32-bit integer"
            : d->type == SM_CONFIG_SHORT  ? "a 16-bit integer"
                                          : "a 64-bit integer");
    return SM_ERR_INVALID;
bad_range:
    if (d->max >= 9e18 || (d->type == SM_CONFIG_INT && d->max >= 2147483647))
        set_err(err, errlen, "Invalid value %s for configuration %s: must be at least %.17g", value,
                d->key, d->min);
    else
        set_err(err, errlen, "Invalid value %s for configuration %s: must be between %.17g and %.17g",
                value, d->key, d->min, d->max);
    return SM_ERR_INVALID;
bad_choice: {
    char list[256] = "";
    size_t off = 0;
    for (const char *const *c = d->choices; *c && off < sizeof list; c++)
        off += (size_t)snprintf(list + off, sizeof list - off, "%s%s", off ? ", " : "", *c);
    set_err(err, errlen, "Invalid value %s for configuration %s: must be one of [%s]", value,
            d->key, list);
    return SM_ERR_INVALID;
}
}

/* ------------------------------------------------------- properties parser */

static void kv_set(sm_config_t *c, const char *key, const char *value)
{
    for (int i = 0; i < c->nset; i++) {
        if (strcmp(c->set[i].key, key) == 0) {
            free(c->set[i].value);
            c->set[i].value = sm_xstrdup(value);
            return;
        }
    }
    c->set = sm_xrealloc(c->set, sizeof *c->set * (size_t)(c->nset + 1));
    c->set[c->nset].key = sm_xstrdup(key);
    c->set[c->nset].value = sm_xstrdup(value);
    c->nset++;
}

static char *trim(char *s)
{
    while (isspace((unsigned char)*s))
        s++;
    size_t n = strlen(s);
    while (n && isspace((unsigned char)s[n - 1]))
        s[--n] = 0;
    return s;
}

static int hexval(int ch)
{
    if (ch >= '0' && ch <= '9') return ch - '0';
    if (ch >= 'a' && ch <= 'f') return ch - 'a' + 10;
    if (ch >= 'A' && ch <= 'F') return ch - 'A' + 10;
    return -1;
}

/* Append the UTF-8 encoding of code point cp. */
static size_t put_utf8(char *o, unsigned cp)
{
    if (cp < 0x80) { o[0] = (char)cp; return 1; }
    if (cp < 0x800) {
        o[0] = (char)(0xC0 | (cp >> 6));
        o[1] = (char)(0x80 | (cp & 0x3F));
        return 2;
    }
    o[0] = (char)(0xE0 | (cp >> 12));
    o[1] = (char)(0x80 | ((cp >> 6) & 0x3F));
    o[2] = (char)(0x80 | (cp & 0x3F));
    return 3;
}

/* Unescape s[0..n) into out (out has room for n+1 bytes: escapes never grow:
 * "\uXXXX" is 6 bytes, its UTF-8 at most 3). Returns false on a bad \u. */
static bool unescape(const char *s, size_t n, char *out)
{
    size_t o = 0;
    for (size_t i = 0; i < n; i++) {
        if (s[i] != '\\' || i + 1 == n) {
            out[o++] = s[i];
            continue;
        }
        char ch = s[++i];
        switch (ch) {
        case 't': out[o++] = '\t'; break;
        case 'n': out[o++] = '\n'; break;
        case 'r': out[o++] = '\r'; break;
        case 'f': out[o++] = '\f'; break;
        case 'u': {
            if (i + 4 >= n)
                return false;
            unsigned cp = 0;
            for (int k = 1; k <= 4; k++) {
                int h = hexval((unsigned char)s[i + (size_t)k]);
                if (h < 0)
                    return false;
                cp = cp * 16 + (unsigned)h;
            }
            i += 4;
            o += put_utf8(out + o, cp);
            break;
        }
        default: out[o++] = ch; break;
        }
    }
    out[o] = 0;
    return true;
}

/* Split one logical line into key and value and store them. */
static sm_err_t parse_logical_line(sm_config_t *c, const char *line, const char *where, int lineno,
                                   char *err, size_t errlen)
{
    size_t n = strlen(line), k = 0;
    while (k < n) {
        if (line[k] == '\\') {
            k += 2;
            continue;
        }
        if (line[k] == '=' || line[k] == ':' || isspace((unsigned char)line[k]))
            break;
        k++;
    }
    if (k > n)
        k = n;
    size_t v = k;
    while (v < n && isspace((unsigned char)line[v]))
        v++;
    if (v < n && (line[v] == '=' || line[v] == ':'))
        v++;
    while (v < n && isspace((unsigned char)line[v]))
        v++;
    char *key = sm_xmalloc(k + 1), *val = sm_xmalloc(n - v + 1);
    sm_err_t rc = SM_OK;
    if (!unescape(line, k, key) || !unescape(line + v, n - v, val)) {
        set_err(err, errlen, "%s:%d: malformed \\uXXXX escape", where, lineno);
        rc = SM_ERR_PARSE;
    } else if (!*key) {
        set_err(err, errlen, "%s:%d: empty key", where, lineno);
        rc = SM_ERR_PARSE;
    } else {
        kv_set(c, key, trim(val));
    }
    free(key);
    free(val);
    return rc;
}

/* Does a physical line end in an odd number of backslashes (continuation)? */
static bool continues(const char *s, size_t n)
{
    size_t bs = 0;
    while (bs < n && s[n - 1 - bs] == '\\')
        bs++;
    return bs % 2 == 1;
}

static sm_err_t parse_properties(sm_config_t *c, const char *text, const char *where, char *err,
                                 size_t errlen)
{
    char *logical = NULL;
    size_t llen = 0, lcap = 0;
    int lineno = 0, start_line = 0;
    bool in_cont = false;
    const char *p = text;
    while (*p) {
        const char *eol = p + strcspn(p, "\r\n");
        lineno++;
        const char *s = p;
        while (s < eol && (*s == ' ' || *s == '\t' || *s == '\f'))
            s++;
        size_t n = (size_t)(eol - s);
        p = eol;
        if (*p == '\r' && p[1] == '\n')
            p += 2;
        else if (*p)
            p++;
        if (!in_cont) {
            if (n == 0 || *s == '#' || *s == '!')
                continue;
            llen = 0;
            start_line = lineno;
        }
        bool more = continues(s, n);
        size_t take = more ? n - 1 : n;
        if (llen + take + 1 > lcap) {
            lcap = (llen + take + 1) * 2;
            logical = sm_xrealloc(logical, lcap);
        }
        memcpy(logical + llen, s, take);
        llen += take;
        logical[llen] = 0;
        in_cont = more;
        if (!more) {
            sm_err_t rc = parse_logical_line(c, logical, where, start_line, err, errlen);
            if (rc) {
                free(logical);
                return rc;
            }
        }
    }
    if (in_cont && llen) {
        sm_err_t rc = parse_logical_line(c, logical, where, start_line, err, errlen);
        if (rc) {
            free(logical);
            return rc;
        }
    }
    free(logical);
    return SM_OK;
}

static sm_err_t read_file(const char *path, char **out, char *err, size_t errlen)
{
    FILE *f = fopen(path, "rb");
    if (!f) {
        set_err(err, errlen, "cannot open config file %s: %s", path, strerror(errno));
        return SM_ERR_IO;
    }
    size_t len = 0, cap = 4096;
    char *buf = sm_xmalloc(cap);
    size_t n;
    while ((n = fread(buf + len, 1, cap - len - 1, f)) > 0) {
        len += n;
        if (cap - len - 1 == 0)
            buf = sm_xrealloc(buf, cap *= 2);
    }
    bool failed = ferror(f);
    fclose(f);
    if (failed) {
        free(buf);
        set_err(err, errlen, "cannot read config file %s", path);
        return SM_ERR_IO;
    }
    buf[len] = 0;
    if (strlen(buf) != len) {
        free(buf);
        set_err(err, errlen, "%s: config file contains a NUL byte", path);
        return SM_ERR_PARSE;
    }
    *out = buf;
    return SM_OK;
}

/* --------------------------------------------------------------- lookups */

const char *sm_config_get(const sm_config_t *c, const char *key, sm_config_source_t *source)
{
    for (int i = 0; i < c->nset; i++) {
        if (strcmp(c->set[i].key, key) == 0) {
            if (source)
                *source = SM_CONFIG_SOURCE_STATIC_BROKER;
            return c->set[i].value;
        }
    }
    const sm_config_def_t *d = sm_broker_config_def(key);
    if (source)
        *source = d ? SM_CONFIG_SOURCE_DEFAULT : SM_CONFIG_SOURCE_UNKNOWN;
    return d ? d->dflt : NULL;
}

bool sm_config_is_set(const sm_config_t *c, const char *key)
{
    for (int i = 0; i < c->nset; i++)
        if (strcmp(c->set[i].key, key) == 0)
            return true;
    return false;
}

/* Effective value of a known key, treating "" as null for numeric types
 * (Kafka properties files often carry "key=" to mean unset). */
static const char *eff(const sm_config_t *c, const char *key)
{
    const char *v = sm_config_get(c, key, NULL);
    const sm_config_def_t *d = sm_broker_config_def(key);
    SM_ASSERT(d);
    if (v && !*v && d->type != SM_CONFIG_STRING && d->type != SM_CONFIG_LIST &&
        d->type != SM_CONFIG_CLASS && d->type != SM_CONFIG_PASSWORD)
        return d->dflt;
    return v;
}

static int64_t get_long(const sm_config_t *c, const char *key, int64_t if_null)
{
    const char *v = eff(c, key);
    int64_t x;
    if (!v || !parse_i64(v, &x))
        return if_null;
    return x;
}
static int32_t get_int(const sm_config_t *c, const char *key)
{
    return (int32_t)get_long(c, key, 0);
}
static bool get_bool(const sm_config_t *c, const char *key)
{
    const char *v = eff(c, key);
    return v && strcasecmp(v, "true") == 0;
}
static char *get_str(const sm_config_t *c, const char *key)
{
    const char *v = eff(c, key);
    return v ? sm_xstrdup(v) : NULL;
}

const char *sm_security_protocol_name(sm_security_protocol_t p)
{
    switch (p) {
    case SM_SECPROTO_PLAINTEXT: return "PLAINTEXT";
    case SM_SECPROTO_SSL: return "SSL";
    case SM_SECPROTO_SASL_PLAINTEXT: return "SASL_PLAINTEXT";
    case SM_SECPROTO_SASL_SSL: return "SASL_SSL";
    }
    return "UNKNOWN";
}

static bool parse_secproto(const char *s, sm_security_protocol_t *out)
{
    for (int i = 0; k_secprotos[i]; i++) {
        if (strcasecmp(k_secprotos[i], s) == 0) {
            *out = (sm_security_protocol_t)i;
            return true;
        }
    }
    return false;
}

const sm_listener_t *sm_config_advertised(const sm_config_t *c, const char *name)
{
    for (int i = 0; i < c->nadvertised; i++)
        if (strcasecmp(c->advertised[i].name, name) == 0)
            return &c->advertised[i];
    return NULL;
}

/* ------------------------------------------------------ structured values */

/* Split a comma list into trimmed, non-empty, malloc'd items. */
static char **split_list(const char *v, int *count)
{
    char **items = NULL;
    int n = 0;
    char *copy = sm_xstrdup(v ? v : "");
    char *save = NULL;
    for (char *tok = strtok_r(copy, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
        char *t = trim(tok);
        if (!*t)
            continue;
        items = sm_xrealloc(items, sizeof *items * (size_t)(n + 1));
        items[n++] = sm_xstrdup(t);
    }
    free(copy);
    *count = n;
    return items;
}

static void free_list(char **items, int n)
{
    for (int i = 0; i < n; i++)
        free(items[i]);
    free(items);
}

static void upcase(char *s)
{
    for (; *s; s++)
        *s = (char)toupper((unsigned char)*s);
}

/* Parse "host:port" where host may be empty, a name, an IPv4 address or a
 * bracketed IPv6 address. */
static bool parse_host_port(const char *s, char **host, int32_t *port)
{
    const char *colon;
    const char *h = s;
    size_t hlen;
    if (*s == '[') {
        const char *close = strchr(s, ']');
        if (!close || close[1] != ':')
            return false;
        h = s + 1;
        hlen = (size_t)(close - h);
        colon = close + 1;
    } else {
        colon = strrchr(s, ':');
        if (!colon)
            return false;
        hlen = (size_t)(colon - s);
        if (memchr(s, ':', hlen))
            return false; /* unbracketed IPv6 */
    }
    int64_t p;
    if (!parse_i64(colon + 1, &p) || p < 0 || p > 65535)
        return false;
    *host = sm_xstrndup(h, hlen);
    *port = (int32_t)p;
    return true;
}

static void free_listeners(sm_listener_t *l, int n)
{
    for (int i = 0; i < n; i++) {
        free(l[i].name);
        free(l[i].host);
    }
    free(l);
}

typedef struct proto_map {
    char **names;
    sm_security_protocol_t *protos;
    int n;
} proto_map_t;

static sm_err_t parse_proto_map(const char *v, proto_map_t *m, char *err, size_t errlen)
{
    int n;
    char **items = split_list(v, &n);
    m->names = sm_xcalloc((size_t)n + 1, sizeof *m->names);
    m->protos = sm_xcalloc((size_t)n + 1, sizeof *m->protos);
    m->n = 0;
    sm_err_t rc = SM_OK;
    for (int i = 0; i < n && !rc; i++) {
        char *colon = strchr(items[i], ':');
        sm_security_protocol_t p;
        if (!colon || colon == items[i] || !parse_secproto(trim(colon + 1), &p)) {
            set_err(err, errlen,
                    "Invalid value %s for configuration listener.security.protocol.map: "
                    "entries must be NAME:PROTOCOL with PROTOCOL one of "
                    "PLAINTEXT, SSL, SASL_PLAINTEXT, SASL_SSL",
                    v);
            rc = SM_ERR_INVALID;
            break;
        }
        *colon = 0;
        m->names[m->n] = sm_xstrdup(trim(items[i]));
        upcase(m->names[m->n]);
        m->protos[m->n++] = p;
    }
    free_list(items, n);
    return rc;
}

static void free_proto_map(proto_map_t *m)
{
    free_list(m->names, m->n);
    free(m->protos);
}

static bool in_names(char **names, int n, const char *s)
{
    for (int i = 0; i < n; i++)
        if (strcasecmp(names[i], s) == 0)
            return true;
    return false;
}

/* Parse a listeners-style list. Names not in the protocol map get the
 * protocol of the same name, or PLAINTEXT for a controller listener when the
 * map was left at its default (as Kafka does). */
static sm_err_t parse_listeners(const sm_config_t *c, const char *key, const char *v,
                                const proto_map_t *map, bool map_is_default, sm_listener_t **out,
                                int *nout, char *err, size_t errlen)
{
    int n;
    char **items = split_list(v, &n);
    sm_listener_t *ls = sm_xcalloc((size_t)n + 1, sizeof *ls);
    sm_err_t rc = SM_OK;
    for (int i = 0; i < n && !rc; i++) {
        char *sep = strstr(items[i], "://");
        if (!sep || sep == items[i] ||
            !parse_host_port(sep + 3, &ls[i].host, &ls[i].port)) {
            set_err(err, errlen,
                    "Invalid value %s for configuration %s: each listener must be "
                    "NAME://host:port",
                    v, key);
            rc = SM_ERR_INVALID;
            break;
        }
        ls[i].name = sm_xstrndup(items[i], (size_t)(sep - items[i]));
        upcase(ls[i].name);
        ls[i].controller =
            in_names(c->controller_listener_names, c->ncontroller_listener_names, ls[i].name);
        bool found = false;
        for (int k = 0; k < map->n; k++) {
            if (strcmp(map->names[k], ls[i].name) == 0) {
                ls[i].protocol = map->protos[k];
                found = true;
            }
        }
        if (!found && ls[i].controller && map_is_default) {
            ls[i].protocol = SM_SECPROTO_PLAINTEXT;
            found = true;
        }
        if (!found) {
            set_err(err, errlen,
                    "Invalid value %s for configuration %s: listener %s has no entry in "
                    "listener.security.protocol.map",
                    v, key, ls[i].name);
            rc = SM_ERR_INVALID;
            break;
        }
        for (int k = 0; k < i && !rc; k++) {
            if (strcmp(ls[k].name, ls[i].name) == 0) {
                set_err(err, errlen,
                        "Invalid value %s for configuration %s: listener name %s is repeated", v,
                        key, ls[i].name);
                rc = SM_ERR_INVALID;
            }
        }
    }
    free_list(items, n);
    if (rc) {
        free_listeners(ls, n);
        return rc;
    }
    *out = ls;
    *nout = n;
    return SM_OK;
}

static sm_err_t parse_voters(sm_config_t *c, const char *v, char *err, size_t errlen)
{
    int n;
    char **items = split_list(v, &n);
    c->voters = sm_xcalloc((size_t)n + 1, sizeof *c->voters);
    sm_err_t rc = SM_OK;
    for (int i = 0; i < n; i++) {
        char *at = strchr(items[i], '@');
        int64_t id;
        if (at)
            *at = 0;
        if (!at || !parse_i64(items[i], &id) || id < 0 || id > INT32_MAX ||
            !parse_host_port(at + 1, &c->voters[c->nvoters].host, &c->voters[c->nvoters].port)) {
            set_err(err, errlen,
                    "Invalid value %s for configuration controller.quorum.voters: entries must "
                    "be id@host:port",
                    v);
            rc = SM_ERR_INVALID;
            break;
        }
        c->voters[c->nvoters++].id = (int32_t)id;
    }
    free_list(items, n);
    return rc;
}

/* -------------------------------------------------------------- load/free */

void sm_config_free(sm_config_t *c)
{
    if (!c)
        return;
    free(c->rack);
    free_listeners(c->listeners, c->nlisteners);
    free_listeners(c->advertised, c->nadvertised);
    free_list(c->controller_listener_names, c->ncontroller_listener_names);
    free(c->inter_broker_listener_name);
    for (int i = 0; i < c->nvoters; i++)
        free(c->voters[i].host);
    free(c->voters);
    free_list(c->log_dirs, c->nlog_dirs);
    free(c->metadata_log_dir);
    free(c->log_cleanup_policy);
    free(c->compression_type);
    free(c->metrics_host);
    for (int i = 0; i < c->nset; i++) {
        free(c->set[i].key);
        free(c->set[i].value);
    }
    free(c->set);
    memset(c, 0, sizeof *c);
}

/* Kafka: ms if set, else minutes if set, else hours; negative = unlimited. */
static int64_t resolve_retention_ms(const sm_config_t *c)
{
    int64_t ms;
    if (eff(c, "log.retention.ms"))
        ms = get_long(c, "log.retention.ms", 0);
    else if (eff(c, "log.retention.minutes"))
        ms = get_long(c, "log.retention.minutes", 0) * 60000;
    else
        ms = get_long(c, "log.retention.hours", 168) * 3600000;
    return ms < 0 ? -1 : ms;
}

static void fill_scalars(sm_config_t *c)
{
    c->node_id = get_int(c, "node.id");
    c->rack = get_str(c, "broker.rack");
    c->num_network_threads = get_int(c, "num.network.threads");
    c->num_io_threads = get_int(c, "num.io.threads");
    c->fetch_session_cache_slots = get_int(c, "max.incremental.fetch.session.cache.slots");
    c->broker_session_timeout_ms = get_int(c, "broker.session.timeout.ms");
    c->broker_heartbeat_interval_ms = get_int(c, "broker.heartbeat.interval.ms");
    c->quorum_election_timeout_ms = get_int(c, "controller.quorum.election.timeout.ms");
    c->quorum_fetch_timeout_ms = get_int(c, "controller.quorum.fetch.timeout.ms");
    c->quorum_election_backoff_max_ms = get_int(c, "controller.quorum.election.backoff.max.ms");
    c->quorum_request_timeout_ms = get_int(c, "controller.quorum.request.timeout.ms");
    c->quorum_append_linger_ms = get_int(c, "controller.quorum.append.linger.ms");
    c->quorum_retry_backoff_ms = get_int(c, "controller.quorum.retry.backoff.ms");
    c->queued_max_requests = get_int(c, "queued.max.requests");
    c->socket_request_max_bytes = get_int(c, "socket.request.max.bytes");
    c->socket_send_buffer_bytes = get_int(c, "socket.send.buffer.bytes");
    c->socket_receive_buffer_bytes = get_int(c, "socket.receive.buffer.bytes");
    c->socket_listen_backlog_size = get_int(c, "socket.listen.backlog.size");
    c->connections_max_idle_ms = get_long(c, "connections.max.idle.ms", 600000);
    c->max_connections = get_int(c, "max.connections");
    c->max_connections_per_ip = get_int(c, "max.connections.per.ip");

    c->metadata_log_dir = get_str(c, "metadata.log.dir");
    c->num_partitions = get_int(c, "num.partitions");
    c->default_replication_factor = (int16_t)get_int(c, "default.replication.factor");
    c->auto_create_topics_enable = get_bool(c, "auto.create.topics.enable");
    c->delete_topic_enable = get_bool(c, "delete.topic.enable");
    c->message_max_bytes = get_int(c, "message.max.bytes");
    c->log_segment_bytes = get_int(c, "log.segment.bytes");
    c->log_roll_ms = eff(c, "log.roll.ms") ? get_long(c, "log.roll.ms", 0)
                                           : get_long(c, "log.roll.hours", 168) * 3600000;
    c->log_roll_jitter_ms = eff(c, "log.roll.jitter.ms")
                                ? get_long(c, "log.roll.jitter.ms", 0)
                                : get_long(c, "log.roll.jitter.hours", 0) * 3600000;
    c->log_retention_ms = resolve_retention_ms(c);
    c->log_retention_bytes = get_long(c, "log.retention.bytes", -1);
    c->log_retention_check_interval_ms = get_long(c, "log.retention.check.interval.ms", 300000);
    c->log_flush_interval_messages = get_long(c, "log.flush.interval.messages", INT64_MAX);
    c->log_flush_interval_ms =
        eff(c, "log.flush.interval.ms")
            ? get_long(c, "log.flush.interval.ms", INT64_MAX)
            : get_long(c, "log.flush.scheduler.interval.ms", INT64_MAX);
    c->log_index_interval_bytes = get_int(c, "log.index.interval.bytes");
    c->log_index_size_max_bytes = get_int(c, "log.index.size.max.bytes");
    c->log_segment_delete_delay_ms = get_long(c, "log.segment.delete.delay.ms", 60000);
    c->log_message_timestamp_create_time =
        strcmp(eff(c, "log.message.timestamp.type"), "CreateTime") == 0;
    c->log_cleanup_policy = get_str(c, "log.cleanup.policy");
    c->log_preallocate = get_bool(c, "log.preallocate");
    c->compression_type = get_str(c, "compression.type");
    c->min_insync_replicas = get_int(c, "min.insync.replicas");
    c->num_recovery_threads_per_data_dir = get_int(c, "num.recovery.threads.per.data.dir");
    c->replica_fetch_max_bytes = get_int(c, "replica.fetch.max.bytes");
    c->replica_lag_time_max_ms = get_long(c, "replica.lag.time.max.ms", 30000);
    c->replica_fetch_wait_max_ms = get_int(c, "replica.fetch.wait.max.ms");
    c->replica_fetch_min_bytes = get_int(c, "replica.fetch.min.bytes");
    c->replica_fetch_response_max_bytes = get_int(c, "replica.fetch.response.max.bytes");
    c->replica_fetch_backoff_ms = get_int(c, "replica.fetch.backoff.ms");
    c->replica_socket_timeout_ms = get_int(c, "replica.socket.timeout.ms");
    c->unclean_leader_election_enable = get_bool(c, "unclean.leader.election.enable");
    c->auto_leader_rebalance_enable = get_bool(c, "auto.leader.rebalance.enable");
    c->leader_imbalance_check_interval_ms =
        get_long(c, "leader.imbalance.check.interval.seconds", 300) * 1000;
    c->fetch_max_bytes = get_int(c, "fetch.max.bytes");

    c->offsets_topic_num_partitions = get_int(c, "offsets.topic.num.partitions");
    c->offsets_topic_replication_factor = (int16_t)get_int(c, "offsets.topic.replication.factor");
    c->offsets_topic_segment_bytes = get_int(c, "offsets.topic.segment.bytes");
    c->offsets_retention_minutes = get_int(c, "offsets.retention.minutes");
    c->offsets_retention_check_interval_ms =
        get_long(c, "offsets.retention.check.interval.ms", 600000);
    c->offsets_commit_timeout_ms = get_int(c, "offsets.commit.timeout.ms");
    c->offset_metadata_max_bytes = get_int(c, "offset.metadata.max.bytes");
    c->group_initial_rebalance_delay_ms = get_int(c, "group.initial.rebalance.delay.ms");
    c->group_min_session_timeout_ms = get_int(c, "group.min.session.timeout.ms");
    c->group_max_session_timeout_ms = get_int(c, "group.max.session.timeout.ms");
    c->group_max_size = get_int(c, "group.max.size");
    c->transaction_state_log_num_partitions = get_int(c, "transaction.state.log.num.partitions");
    c->transaction_state_log_replication_factor =
        (int16_t)get_int(c, "transaction.state.log.replication.factor");
    c->transaction_max_timeout_ms = get_int(c, "transaction.max.timeout.ms");
    c->transactional_id_expiration_ms = get_int(c, "transactional.id.expiration.ms");
    c->producer_id_expiration_ms = get_int(c, "producer.id.expiration.ms");
    c->transaction_partition_verification_enable =
        get_bool(c, "transaction.partition.verification.enable");
    c->metadata_log_segment_bytes = get_int(c, "metadata.log.segment.bytes");
    c->metadata_max_retention_bytes = get_long(c, "metadata.max.retention.bytes", 104857600);
    c->metadata_snapshot_bytes = get_long(c, "metadata.log.max.record.bytes.between.snapshots", 20971520);
    c->metadata_log_segment_ms = get_long(c, "metadata.log.segment.ms", 604800000);
}

/* Roles, listeners, voters, log dirs and their consistency rules. */
static sm_err_t fill_structured(sm_config_t *c, char *err, size_t errlen)
{
    sm_err_t rc = SM_OK;
    int n;
    char **roles = split_list(eff(c, "process.roles"), &n);
    for (int i = 0; i < n; i++) {
        bool *flag = strcmp(roles[i], "broker") == 0 ? &c->role_broker : &c->role_controller;
        if (*flag) {
            set_err(err, errlen, "Invalid value %s for configuration process.roles: duplicate role %s",
                    eff(c, "process.roles"), roles[i]);
            rc = SM_ERR_INVALID;
        }
        *flag = true;
    }
    free_list(roles, n);
    if (rc)
        return rc;
    if (!c->role_broker && !c->role_controller) {
        set_err(err, errlen, "Invalid value %s for configuration process.roles: at least one of "
                "broker, controller is required", eff(c, "process.roles"));
        return SM_ERR_INVALID;
    }
    int64_t broker_id = get_long(c, "broker.id", -1);
    if (broker_id >= 0 && broker_id != c->node_id) {
        set_err(err, errlen, "broker.id=%lld and node.id=%d must be equal when both are set",
                (long long)broker_id, c->node_id);
        return SM_ERR_INVALID;
    }

    c->controller_listener_names = split_list(eff(c, "controller.listener.names"),
                                              &c->ncontroller_listener_names);
    for (int i = 0; i < c->ncontroller_listener_names; i++)
        upcase(c->controller_listener_names[i]);

    proto_map_t map;
    const char *mapv = eff(c, "listener.security.protocol.map");
    if ((rc = parse_proto_map(mapv, &map, err, errlen))) {
        free_proto_map(&map);
        return rc;
    }
    bool map_default = !sm_config_is_set(c, "listener.security.protocol.map");
    rc = parse_listeners(c, "listeners", eff(c, "listeners"), &map, map_default, &c->listeners,
                         &c->nlisteners, err, errlen);
    if (!rc && c->nlisteners == 0) {
        set_err(err, errlen, "Invalid value %s for configuration listeners: no listener",
                eff(c, "listeners"));
        rc = SM_ERR_INVALID;
    }
    sm_listener_t *adv = NULL;
    int nadv = 0;
    if (!rc) {
        const char *advv = eff(c, "advertised.listeners");
        rc = parse_listeners(c, "advertised.listeners", advv ? advv : eff(c, "listeners"), &map,
                             map_default, &adv, &nadv, err, errlen);
    }
    free_proto_map(&map);
    if (rc)
        return rc;
    /* brokers advertise only their non-controller listeners */
    c->advertised = sm_xcalloc((size_t)nadv + 1, sizeof *c->advertised);
    for (int i = 0; i < nadv; i++) {
        if (adv[i].controller) {
            free(adv[i].name);
            free(adv[i].host);
            continue;
        }
        c->advertised[c->nadvertised++] = adv[i];
    }
    free(adv);
    /* an empty advertised host means "this machine's name", as in Kafka */
    for (int i = 0; i < c->nadvertised; i++) {
        sm_listener_t *l = &c->advertised[i];
        if (!*l->host || strcmp(l->host, "0.0.0.0") == 0) {
            char hn[256];
            if (gethostname(hn, sizeof hn) != 0 || !*hn)
                snprintf(hn, sizeof hn, "localhost");
            hn[sizeof hn - 1] = 0;
            free(l->host);
            l->host = sm_xstrdup(hn);
        }
    }

    if (c->role_controller) {
        if (c->ncontroller_listener_names == 0) {
            set_err(err, errlen, "controller.listener.names must be set when process.roles "
                    "contains controller");
            return SM_ERR_INVALID;
        }
        for (int i = 0; i < c->ncontroller_listener_names; i++) {
            bool found = false;
            for (int k = 0; k < c->nlisteners; k++)
                found |= strcmp(c->listeners[k].name, c->controller_listener_names[i]) == 0;
            if (!found) {
                set_err(err, errlen, "controller.listener.names contains %s, which is not in "
                        "listeners=%s", c->controller_listener_names[i], eff(c, "listeners"));
                return SM_ERR_INVALID;
            }
        }
    } else {
        for (int k = 0; k < c->nlisteners; k++) {
            if (c->listeners[k].controller) {
                set_err(err, errlen, "listeners must not contain the controller listener %s "
                        "when process.roles is broker only", c->listeners[k].name);
                return SM_ERR_INVALID;
            }
        }
    }

    if (c->role_broker) {
        const char *ibl = eff(c, "inter.broker.listener.name");
        if (ibl && *ibl) {
            char *name = sm_xstrdup(ibl);
            upcase(name);
            if (!sm_config_advertised(c, name)) {
                set_err(err, errlen, "inter.broker.listener.name=%s must be one of the "
                        "advertised (non-controller) listeners", ibl);
                free(name);
                return SM_ERR_INVALID;
            }
            c->inter_broker_listener_name = name;
        } else if (c->nadvertised == 0) {
            set_err(err, errlen, "a broker needs at least one non-controller listener "
                    "(listeners=%s)", eff(c, "listeners"));
            return SM_ERR_INVALID;
        } else {
            /* Kafka picks the listener named after security.inter.broker.protocol;
             * fall back to the first advertised listener. */
            const char *want = eff(c, "security.inter.broker.protocol");
            const sm_listener_t *l = sm_config_advertised(c, want);
            c->inter_broker_listener_name = sm_xstrdup(l ? l->name : c->advertised[0].name);
        }
    }

    const char *vv = eff(c, "controller.quorum.voters");
    if ((rc = parse_voters(c, vv, err, errlen)))
        return rc;
    if (c->nvoters == 0 && c->role_controller) {
        /* Samsa: a lone controller is its own single voter */
        const sm_listener_t *cl = NULL;
        for (int k = 0; k < c->nlisteners && !cl; k++)
            if (strcmp(c->listeners[k].name, c->controller_listener_names[0]) == 0)
                cl = &c->listeners[k];
        c->voters[0].id = c->node_id;
        c->voters[0].host = sm_xstrdup(cl && *cl->host ? cl->host : "localhost");
        c->voters[0].port = cl ? cl->port : 9093;
        c->nvoters = 1;
    }
    if (c->role_controller) {
        bool me = false;
        for (int i = 0; i < c->nvoters; i++)
            me |= c->voters[i].id == c->node_id;
        if (!me) {
            set_err(err, errlen, "node.id=%d is a controller but is not in "
                    "controller.quorum.voters=%s", c->node_id, vv);
            return SM_ERR_INVALID;
        }
    }
    if (c->nvoters == 0) {
        /* Samsa needs the static voter list: with bootstrap servers only, a
         * broker would have to learn the voters from the quorum (KIP-853),
         * which is not supported yet. */
        set_err(err, errlen, "controller.quorum.voters must be set when process.roles is broker "
                "only%s", *eff(c, "controller.quorum.bootstrap.servers")
                              ? " (controller.quorum.bootstrap.servers alone is not supported yet)"
                              : "");
        return SM_ERR_INVALID;
    }

    const char *dirs = eff(c, "log.dirs");
    c->log_dirs = split_list(dirs ? dirs : eff(c, "log.dir"), &c->nlog_dirs);
    if (c->nlog_dirs == 0) {
        set_err(err, errlen, "log.dirs (or log.dir) must name at least one directory");
        return SM_ERR_INVALID;
    }
    /* metrics.listener: "http://host:port", or empty for none */
    const char *ml = eff(c, "metrics.listener");
    c->metrics_port = -1;
    if (ml && *ml) {
        if (strncmp(ml, "http://", 7) != 0 || !parse_host_port(ml + 7, &c->metrics_host,
                                                               &c->metrics_port)) {
            set_err(err, errlen, "Invalid value %s for configuration metrics.listener: expected "
                    "http://host:port (or empty to disable)", ml);
            return SM_ERR_INVALID;
        }
    }
    if (c->group_min_session_timeout_ms > c->group_max_session_timeout_ms) {
        set_err(err, errlen, "group.min.session.timeout.ms=%d is larger than "
                "group.max.session.timeout.ms=%d", c->group_min_session_timeout_ms,
                c->group_max_session_timeout_ms);
        return SM_ERR_INVALID;
    }
    return SM_OK;
}

sm_err_t sm_config_load(const char *path, char **overrides, int noverrides, sm_config_t *out,
                        char *err, size_t errlen)
{
    sm_config_t *c = out;
    memset(c, 0, sizeof *c);
    set_err(err, errlen, "%s", "");
    sm_err_t rc = SM_OK;
    if (path) {
        char *text = NULL;
        if ((rc = read_file(path, &text, err, errlen)))
            goto fail;
        rc = parse_properties(c, text, path, err, errlen);
        free(text);
        if (rc)
            goto fail;
    }
    for (int i = 0; i < noverrides; i++) {
        const char *eq = strchr(overrides[i], '=');
        if (!eq || eq == overrides[i]) {
            set_err(err, errlen, "invalid override \"%s\": expected key=value", overrides[i]);
            rc = SM_ERR_PARSE;
            goto fail;
        }
        char *key = sm_xstrndup(overrides[i], (size_t)(eq - overrides[i]));
        char *val = sm_xstrdup(eq + 1);
        kv_set(c, trim(key), trim(val));
        free(key);
        free(val);
    }
    for (int i = 0; i < c->nset; i++) {
        const sm_config_def_t *d = sm_broker_config_def(c->set[i].key);
        if (!d) {
            const char *near = sm_broker_config_suggest(c->set[i].key);
            if (near)
                SM_WARN(TAG, "unknown configuration %s=%s ignored (did you mean %s?)",
                        c->set[i].key, c->set[i].value, near);
            else
                SM_WARN(TAG, "unknown configuration %s=%s ignored", c->set[i].key,
                        c->set[i].value);
            continue;
        }
        bool numeric = d->type == SM_CONFIG_INT || d->type == SM_CONFIG_LONG ||
                       d->type == SM_CONFIG_SHORT || d->type == SM_CONFIG_DOUBLE ||
                       d->type == SM_CONFIG_BOOLEAN;
        if (numeric && !*c->set[i].value)
            continue; /* "key=" leaves a number at its default */
        if ((rc = sm_config_def_check(d, c->set[i].value, err, errlen)))
            goto fail;
    }
    fill_scalars(c);
    if ((rc = fill_structured(c, err, errlen)))
        goto fail;
    return SM_OK;
fail:
    sm_config_free(c);
    return rc;
}

int sm_config_dirs(const sm_config_t *cfg, const char **dirs, int max)
{
    int n = 0;
    for (int i = 0; i < cfg->nlog_dirs && n < max; i++)
        dirs[n++] = cfg->log_dirs[i];
    if (cfg->metadata_log_dir && n < max) {
        bool dup = false;
        for (int i = 0; i < n; i++)
            dup = dup || strcmp(dirs[i], cfg->metadata_log_dir) == 0;
        if (!dup)
            dirs[n++] = cfg->metadata_log_dir;
    }
    return n;
}
