/*
 * topic_config.c - Kafka's per-topic configuration keys: definitions,
 * validation and resolution against the broker configuration (config.h).
 *
 * Each topic key's default comes from a broker key (its "synonym"): when a
 * topic has no override, the effective value is the broker's setting of the
 * first synonym that is set, converted to the topic key's unit, else the
 * default. The synonyms are listed in Kafka's precedence order, e.g.
 * retention.ms <- log.retention.ms, log.retention.minutes (x60000),
 * log.retention.hours (x3600000). Because the broker's defaults equal the
 * topic defaults after conversion, the DEFAULT source reports the topic
 * default directly, except for the few keys whose broker default is itself
 * derived (flush.ms <- log.flush.scheduler.interval.ms), handled by the
 * synonym chain. Any thread; the tables are constant.
 *
 * Dynamic broker configs (set with AlterConfigs on a BROKER resource, kept
 * in the metadata image) sit between the topic override and the static
 * broker config: for each synonym key in precedence order, its per-broker
 * dynamic value, then its cluster-default dynamic value, then its static
 * value, the first one set wins (Kafka resolves against its merged broker
 * config the same way). The dynamic keys are the first (primary) synonym of
 * each topic config, as Kafka's DynamicLogConfig: log.retention.ms is
 * dynamic, log.retention.hours is not; log.message.format.version is
 * excluded.
 */
#include "config.h"
#include "meta.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define LMAX "9223372036854775807"
#define NOMAX 9.3e18

static const char *const t_cleanup[] = {"compact", "delete", NULL};
static const char *const t_compression[] = {"uncompressed", "zstd", "lz4", "snappy", "gzip",
                                            "producer", NULL};
static const char *const t_ts_types[] = {"CreateTime", "LogAppendTime", NULL};

#define T(k, t, d, doc_, ...)                                                                      \
    {.def = {.key = k, .type = t, .dflt = d, .doc = doc_}, .synonyms = {__VA_ARGS__}}
#define TR(k, t, d, lo, hi, doc_, ...)                                                             \
    {.def = {.key = k, .type = t, .dflt = d, .min = lo, .max = hi, .has_range = true, .doc = doc_}, \
     .synonyms = {__VA_ARGS__}}
#define TC(k, t, d, ch, doc_, ...)                                                                 \
    {.def = {.key = k, .type = t, .dflt = d, .choices = ch, .doc = doc_}, .synonyms = {__VA_ARGS__}}
#define S(k) {k, 1}

const sm_topic_config_def_t sm_topic_config_defs[] = {
    TC("cleanup.policy", SM_CONFIG_LIST, "delete", t_cleanup, "delete and/or compact", S("log.cleanup.policy")),
    TC("compression.type", SM_CONFIG_STRING, "producer", t_compression, "Compression of stored batches", S("compression.type")),
    TR("compression.gzip.level", SM_CONFIG_INT, "-1", -1, 9, "gzip level", S("compression.gzip.level")),
    TR("compression.lz4.level", SM_CONFIG_INT, "9", 1, 17, "lz4 level", S("compression.lz4.level")),
    TR("compression.zstd.level", SM_CONFIG_INT, "3", -131072, 22, "zstd level", S("compression.zstd.level")),
    TR("delete.retention.ms", SM_CONFIG_LONG, "86400000", 0, NOMAX, "How long tombstones are kept", S("log.cleaner.delete.retention.ms")),
    TR("file.delete.delay.ms", SM_CONFIG_LONG, "60000", 0, NOMAX, "Delay before a deleted segment is unlinked", S("log.segment.delete.delay.ms")),
    TR("flush.messages", SM_CONFIG_LONG, LMAX, 1, NOMAX, "fsync after this many messages", S("log.flush.interval.messages")),
    TR("flush.ms", SM_CONFIG_LONG, LMAX, 0, NOMAX, "fsync after this long", S("log.flush.interval.ms"), S("log.flush.scheduler.interval.ms")),
    T("follower.replication.throttled.replicas", SM_CONFIG_LIST, "", "Throttled follower replicas", {NULL, 0}),
    TR("index.interval.bytes", SM_CONFIG_INT, "4096", 0, 2147483647, "Bytes between offset index entries", S("log.index.interval.bytes")),
    T("leader.replication.throttled.replicas", SM_CONFIG_LIST, "", "Throttled leader replicas", {NULL, 0}),
    TR("local.retention.bytes", SM_CONFIG_LONG, "-2", -2, NOMAX, "Local retention size with tiered storage", S("log.local.retention.bytes")),
    TR("local.retention.ms", SM_CONFIG_LONG, "-2", -2, NOMAX, "Local retention time with tiered storage", S("log.local.retention.ms")),
    TR("max.compaction.lag.ms", SM_CONFIG_LONG, LMAX, 1, NOMAX, "Maximum age before compaction", S("log.cleaner.max.compaction.lag.ms")),
    TR("max.message.bytes", SM_CONFIG_INT, "1048588", 0, 2147483647, "Largest record batch accepted", S("message.max.bytes")),
    T("message.downconversion.enable", SM_CONFIG_BOOLEAN, "true", "Down-convert for old fetchers", S("log.message.downconversion.enable")),
    T("message.format.version", SM_CONFIG_STRING, "3.0-IV1", "Deprecated; ignored", S("log.message.format.version")),
    TR("message.timestamp.after.max.ms", SM_CONFIG_LONG, LMAX, 0, NOMAX, "How far in the future a timestamp may be", S("log.message.timestamp.after.max.ms")),
    TR("message.timestamp.before.max.ms", SM_CONFIG_LONG, LMAX, 0, NOMAX, "How far in the past a timestamp may be", S("log.message.timestamp.before.max.ms")),
    TR("message.timestamp.difference.max.ms", SM_CONFIG_LONG, LMAX, 0, NOMAX, "Deprecated timestamp skew limit", S("log.message.timestamp.difference.max.ms")),
    TC("message.timestamp.type", SM_CONFIG_STRING, "CreateTime", t_ts_types, "CreateTime or LogAppendTime", S("log.message.timestamp.type")),
    TR("min.cleanable.dirty.ratio", SM_CONFIG_DOUBLE, "0.5", 0, 1, "Dirty ratio that triggers cleaning", S("log.cleaner.min.cleanable.ratio")),
    TR("min.compaction.lag.ms", SM_CONFIG_LONG, "0", 0, NOMAX, "Minimum age before compaction", S("log.cleaner.min.compaction.lag.ms")),
    TR("min.insync.replicas", SM_CONFIG_INT, "1", 1, 2147483647, "Replicas that must ack acks=all writes", S("min.insync.replicas")),
    T("preallocate", SM_CONFIG_BOOLEAN, "false", "Preallocate new segments", S("log.preallocate")),
    T("remote.log.copy.disable", SM_CONFIG_BOOLEAN, "false", "Stop copying to remote storage", {NULL, 0}),
    T("remote.log.delete.on.disable", SM_CONFIG_BOOLEAN, "false", "Delete remote data when tiering is disabled", {NULL, 0}),
    T("remote.storage.enable", SM_CONFIG_BOOLEAN, "false", "Tiered storage (not supported)", {NULL, 0}),
    T("retention.bytes", SM_CONFIG_LONG, "-1", "Retention size per partition (-1 = unlimited)", S("log.retention.bytes")),
    TR("retention.ms", SM_CONFIG_LONG, "604800000", -1, NOMAX, "Retention time (-1 = forever)", S("log.retention.ms"), {"log.retention.minutes", 60000}, {"log.retention.hours", 3600000}),
    TR("segment.bytes", SM_CONFIG_INT, "1073741824", 14, 2147483647, "Segment size", S("log.segment.bytes")),
    TR("segment.index.bytes", SM_CONFIG_INT, "10485760", 4, 2147483647, "Offset index size", S("log.index.size.max.bytes")),
    TR("segment.jitter.ms", SM_CONFIG_LONG, "0", 0, NOMAX, "Random jitter subtracted from roll time", S("log.roll.jitter.ms"), {"log.roll.jitter.hours", 3600000}),
    TR("segment.ms", SM_CONFIG_LONG, "604800000", 1, NOMAX, "Roll a segment after this long", S("log.roll.ms"), {"log.roll.hours", 3600000}),
    T("unclean.leader.election.enable", SM_CONFIG_BOOLEAN, "false", "Allow out-of-sync leaders", S("unclean.leader.election.enable")),
};
const size_t sm_topic_config_ndefs = SM_ARRAY_LEN(sm_topic_config_defs);

const sm_topic_config_def_t *sm_topic_config_def(const char *key)
{
    for (size_t i = 0; i < sm_topic_config_ndefs; i++)
        if (strcmp(sm_topic_config_defs[i].def.key, key) == 0)
            return &sm_topic_config_defs[i];
    return NULL;
}

sm_err_t sm_topic_config_validate(const char *key, const char *value, char *err, size_t errlen)
{
    const sm_topic_config_def_t *t = sm_topic_config_def(key);
    if (!t) {
        if (err && errlen)
            snprintf(err, errlen, "Unknown topic config name: %s", key);
        return SM_ERR_NOT_FOUND;
    }
    if (!value) {
        if (err && errlen)
            snprintf(err, errlen, "Null value not supported for topic config %s", key);
        return SM_ERR_INVALID;
    }
    return sm_config_def_check(&t->def, value, err, errlen);
}

/* Write a broker value converted by factor. Non-numeric values are copied. */
static void put_converted(char *buf, size_t buflen, const char *v, int64_t factor)
{
    if (factor == 1) {
        snprintf(buf, buflen, "%s", v);
        return;
    }
    char *end;
    long long x = strtoll(v, &end, 10);
    if (*end || !*v) {
        snprintf(buf, buflen, "%s", v);
        return;
    }
    /* a negative hours/minutes value means "forever" for retention */
    if (x < 0)
        snprintf(buf, buflen, "-1");
    else
        snprintf(buf, buflen, "%lld", (long long)(x * factor));
}

/* The value of key in a sorted-or-not kv list, or NULL. */
static const char *kv_find(const sm_config_kv_t *kv, int n, const char *key)
{
    for (int i = 0; i < n; i++)
        if (strcmp(kv[i].key, key) == 0)
            return kv[i].value;
    return NULL;
}

bool sm_config_is_dynamic(const char *key)
{
    if (!key || strcmp(key, "log.message.format.version") == 0)
        return false;
    for (size_t i = 0; i < sm_topic_config_ndefs; i++)
        if (sm_topic_config_defs[i].synonyms[0].key &&
            strcmp(sm_topic_config_defs[i].synonyms[0].key, key) == 0)
            return true;
    return false;
}

const char *sm_config_get_dynamic(const sm_config_t *c, const sm_config_dynamic_t *dyn,
                                  const char *key, sm_config_source_t *source)
{
    const char *v;
    if (dyn && (v = kv_find(dyn->node, dyn->nnode, key))) {
        if (source)
            *source = SM_CONFIG_SOURCE_DYNAMIC_BROKER;
        return v;
    }
    if (dyn && (v = kv_find(dyn->cluster, dyn->ncluster, key))) {
        if (source)
            *source = SM_CONFIG_SOURCE_DYNAMIC_DEFAULT;
        return v;
    }
    if (c)
        return sm_config_get(c, key, source);
    const sm_config_def_t *d = sm_broker_config_def(key);
    if (source)
        *source = d ? SM_CONFIG_SOURCE_DEFAULT : SM_CONFIG_SOURCE_UNKNOWN;
    return d ? d->dflt : NULL;
}

sm_err_t sm_topic_config_resolve_dynamic(const sm_config_t *broker,
                                         const sm_config_dynamic_t *dyn, const char *key,
                                         const sm_config_kv_t *overrides, int noverrides,
                                         char *buf, size_t buflen, sm_config_source_t *source,
                                         const char **synonym_key)
{
    const sm_topic_config_def_t *t = sm_topic_config_def(key);
    if (synonym_key)
        *synonym_key = NULL;
    if (!t)
        return SM_ERR_NOT_FOUND;
    for (int i = noverrides - 1; i >= 0; i--) {
        if (strcmp(overrides[i].key, key) == 0) {
            snprintf(buf, buflen, "%s", overrides[i].value ? overrides[i].value : "");
            if (source)
                *source = SM_CONFIG_SOURCE_TOPIC;
            return SM_OK;
        }
    }
    for (int s = 0; s < 3 && t->synonyms[s].key; s++) {
        const char *sk = t->synonyms[s].key;
        const char *v = NULL;
        sm_config_source_t src = SM_CONFIG_SOURCE_UNKNOWN;
        if (dyn && (v = kv_find(dyn->node, dyn->nnode, sk)))
            src = SM_CONFIG_SOURCE_DYNAMIC_BROKER;
        else if (dyn && (v = kv_find(dyn->cluster, dyn->ncluster, sk)))
            src = SM_CONFIG_SOURCE_DYNAMIC_DEFAULT;
        else if (broker && sm_config_is_set(broker, sk) && (v = sm_config_get(broker, sk, NULL)))
            src = SM_CONFIG_SOURCE_STATIC_BROKER;
        if (!v || !*v)
            continue; /* "key=" means unset */
        put_converted(buf, buflen, v, t->synonyms[s].factor);
        if (source)
            *source = src;
        if (synonym_key)
            *synonym_key = sk;
        return SM_OK;
    }
    snprintf(buf, buflen, "%s", t->def.dflt ? t->def.dflt : "");
    if (source)
        *source = SM_CONFIG_SOURCE_DEFAULT;
    return SM_OK;
}

sm_err_t sm_topic_config_resolve(const sm_config_t *broker, const char *key,
                                 const sm_config_kv_t *overrides, int noverrides, char *buf,
                                 size_t buflen, sm_config_source_t *source,
                                 const char **synonym_key)
{
    return sm_topic_config_resolve_dynamic(broker, NULL, key, overrides, noverrides, buf, buflen,
                                           source, synonym_key);
}

/* ------------------------------------------------ partition log settings */

static int64_t resolve_i64(const sm_config_t *broker, const sm_config_dynamic_t *dyn,
                           const char *key, const sm_topic_kv_t *ov, int nov, int64_t dflt)
{
    char buf[64];
    if (sm_topic_config_resolve_dynamic(broker, dyn, key, ov, nov, buf, sizeof buf, NULL,
                                        NULL) != SM_OK)
        return dflt;
    char *end;
    long long v = strtoll(buf, &end, 10);
    return (*buf && !*end) ? (int64_t)v : dflt;
}

void sm_meta_topic_log_config(const sm_config_t *broker, const sm_topic_kv_t *ov, int nov,
                              sm_log_config_t *out)
{
    sm_meta_topic_log_config_dynamic(broker, NULL, ov, nov, out);
}

void sm_meta_topic_log_config_dynamic(const sm_config_t *broker, const sm_config_dynamic_t *dyn,
                                      const sm_topic_kv_t *ov, int nov, sm_log_config_t *out)
{
    sm_log_config_default(out);
#define R(key, dflt) resolve_i64(broker, dyn, key, ov, nov, dflt)
    out->segment_bytes = R("segment.bytes", out->segment_bytes);
    out->segment_ms = R("segment.ms", out->segment_ms);
    out->index_interval_bytes = (int32_t)R("index.interval.bytes", out->index_interval_bytes);
    out->segment_index_bytes = (int32_t)R("segment.index.bytes", out->segment_index_bytes);
    out->flush_messages = R("flush.messages", out->flush_messages);
    out->flush_ms = R("flush.ms", out->flush_ms);
    out->retention_bytes = R("retention.bytes", out->retention_bytes);
    out->retention_ms = R("retention.ms", out->retention_ms);
#undef R
    /* a broker setting (Samsa's own; Kafka has no such key) */
    const char *win = broker ? sm_config_get(broker, "log.cache.window.bytes", NULL) : NULL;
    if (win && *win)
        out->cache_window_bytes = strtoll(win, NULL, 10);
    char buf[64];
    if (sm_topic_config_resolve_dynamic(broker, dyn, "message.timestamp.type", ov, nov, buf,
                                        sizeof buf, NULL, NULL) == SM_OK)
        out->log_append_time = strcmp(buf, "LogAppendTime") == 0;
}
