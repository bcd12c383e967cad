/*
 * test_plugin.c - a tiny connector plugin for tests/integration/test_connect.py, built
 * by the test with cc -shared and loaded by samsa-connect from plugin.path.
 *
 *  com.example.connect.CounterSourceConnector ("topic", "count"): emits records
 *    0..count-1 with a string key "k<n>", a struct value {"n":n,"tag":"<tag>"} with its
 *    schema, and headers source=counter, seq=<n> and a header without a value; the
 *    source offset is {"n":n}, so a restarted task resumes after the last stored one.
 *  com.example.connect.RecordingSinkConnector ("file"): appends one line per record:
 *    topic|partition|offset|<key kind>:<key>|<value kind>:<value>|<schema or ->|h=v,...
 *
 * With -DBAD_ABI it declares ABI major version 2, which the worker must refuse.
 */
#include "connect_plugin.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#ifdef BAD_ABI
#define ABI 0x00020000u
#else
#define ABI SAMSA_CONNECT_ABI_VERSION
#endif

static const samsa_connect_config_def_t src_defs[] = {
    {"topic", SAMSA_CONFIG_STRING, NULL, 1, 1, SAMSA_IMPORTANCE_HIGH, "Topic to write to"},
    {"count", SAMSA_CONFIG_LONG, "10", 0, 0, SAMSA_IMPORTANCE_HIGH, "How many records"},
    {"tag", SAMSA_CONFIG_STRING, "t", 0, 0, SAMSA_IMPORTANCE_LOW, "Tag put in every value"},
};

typedef struct src {
    char topic[256], tag[64];
    long long count, next;
} src_t;

static void src_validate(samsa_connect_context_t *ctx, const samsa_connect_config_t *cfg)
{
    const char *c = samsa_connect_config_get(cfg, "count");
    if (c && atoll(c) < 0)
        ctx->rt->config_error(ctx, "count", "count must not be negative");
}

static int src_start(samsa_connect_context_t *ctx, const samsa_connect_config_t *cfg, void **out, char *err,
                     size_t err_len)
{
    src_t *s = calloc(1, sizeof *s);
    const char *t = samsa_connect_config_get(cfg, "topic"), *c = samsa_connect_config_get(cfg, "count");
    const char *tag = samsa_connect_config_get(cfg, "tag");
    if (!t) {
        snprintf(err, err_len, "no topic");
        free(s);
        return -1;
    }
    snprintf(s->topic, sizeof s->topic, "%s", t);
    snprintf(s->tag, sizeof s->tag, "%s", tag ? tag : "t");
    s->count = c ? atoll(c) : 10;
    const char *off = ctx->rt->offset(ctx, "{\"counter\":\"main\"}");
    if (off) {
        const char *p = strstr(off, "\"n\":");
        if (p)
            s->next = atoll(p + 4) + 1;
    }
    ctx->rt->log(ctx, SAMSA_LOG_INFO, "counter source starts at %lld of %lld", s->next, s->count);
    *out = s;
    return 0;
}

static int src_poll(void *task, samsa_connect_context_t *ctx, char *err, size_t err_len)
{
    (void)err;
    (void)err_len;
    src_t *s = task;
    static const char schema[] = "{\"type\":\"struct\",\"fields\":[{\"type\":\"int64\",\"optional\":false,\"field\":\"n\"},"
                                 "{\"type\":\"string\",\"optional\":false,\"field\":\"tag\"}],\"optional\":false}";
    int emitted = 0;
    while (s->next < s->count && emitted < 100) {
        char key[32], val[128], off[64], seq[32];
        snprintf(key, sizeof key, "k%lld", s->next);
        snprintf(val, sizeof val, "{\"n\":%lld,\"tag\":\"%s\"}", s->next, s->tag);
        snprintf(off, sizeof off, "{\"n\":%lld}", s->next);
        snprintf(seq, sizeof seq, "%lld", s->next);
        samsa_connect_header_t h[3] = {{"source", "counter", 7}, {"seq", seq, strlen(seq)}, {"empty", NULL, 0}};
        samsa_connect_source_record_t r = {
            .source_partition = "{\"counter\":\"main\"}",
            .source_offset = off,
            .topic = s->topic,
            .kafka_partition = -1,
            .key = {SAMSA_VALUE_STRING, key, strlen(key), "{\"type\":\"string\",\"optional\":false}"},
            .value = {SAMSA_VALUE_JSON, val, strlen(val), schema},
            .headers = h,
            .header_count = 3,
            .timestamp_ms = -1,
        };
        if (ctx->rt->emit(ctx, &r) != 0)
            return -1;
        s->next++;
        emitted++;
    }
    if (!emitted && !ctx->rt->should_yield(ctx)) {
        struct timespec ts = {0, 50 * 1000000L};
        nanosleep(&ts, NULL);
    }
    return 0;
}

static void src_stop(void *task, samsa_connect_context_t *ctx)
{
    (void)ctx;
    free(task);
}

static const char *const src_aliases[] = {"Counter", NULL};

static const samsa_connect_plugin_t counter_source = {
    .abi_version = ABI,
    .struct_size = sizeof(samsa_connect_plugin_t),
    .class_name = "com.example.connect.CounterSourceConnector",
    .aliases = src_aliases,
    .version = "0.1",
    .type = SAMSA_CONNECT_SOURCE,
    .config_defs = src_defs,
    .config_def_count = 3,
    .validate = src_validate,
    .task_start = src_start,
    .source_poll = src_poll,
    .task_stop = src_stop,
};

static const samsa_connect_config_def_t sink_defs[] = {
    {"file", SAMSA_CONFIG_STRING, NULL, 1, 1, SAMSA_IMPORTANCE_HIGH, "Where to record"},
};

static const char *kind_name(samsa_connect_kind_t k)
{
    return k == SAMSA_VALUE_NULL ? "null" : k == SAMSA_VALUE_STRING ? "string" : k == SAMSA_VALUE_BYTES ? "bytes" : "json";
}

static int sink_start(samsa_connect_context_t *ctx, const samsa_connect_config_t *cfg, void **out, char *err,
                      size_t err_len)
{
    (void)ctx;
    const char *f = samsa_connect_config_get(cfg, "file");
    FILE *fp = f ? fopen(f, "a") : NULL;
    if (!fp) {
        snprintf(err, err_len, "cannot open %s", f ? f : "(no file)");
        return -1;
    }
    *out = fp;
    return 0;
}

static int sink_put(void *task, samsa_connect_context_t *ctx, const samsa_connect_sink_record_t *recs, size_t n,
                    char *err, size_t err_len)
{
    (void)ctx;
    (void)err;
    (void)err_len;
    FILE *fp = task;
    for (size_t i = 0; i < n; i++) {
        const samsa_connect_sink_record_t *r = &recs[i];
        fprintf(fp, "%s|%d|%lld|%s:%.*s|%s:%.*s|%s|", r->topic, r->kafka_partition, (long long)r->kafka_offset,
                kind_name(r->key.kind), (int)r->key.len, r->key.data ? r->key.data : "", kind_name(r->value.kind),
                (int)r->value.len, r->value.data ? r->value.data : "", r->value.schema ? r->value.schema : "-");
        for (size_t k = 0; k < r->header_count; k++)
            fprintf(fp, "%s%s=%.*s", k ? "," : "", r->headers[k].key, (int)r->headers[k].len,
                    r->headers[k].value ? (const char *)r->headers[k].value : "");
        fputc('\n', fp);
    }
    return 0;
}

static int sink_flush(void *task, samsa_connect_context_t *ctx, char *err, size_t err_len)
{
    (void)ctx;
    (void)err;
    (void)err_len;
    return fflush((FILE *)task) == 0 ? 0 : -1;
}

static void sink_stop(void *task, samsa_connect_context_t *ctx)
{
    (void)ctx;
    if (task)
        fclose(task);
}

static const samsa_connect_plugin_t recording_sink = {
    .abi_version = ABI,
    .struct_size = sizeof(samsa_connect_plugin_t),
    .class_name = "com.example.connect.RecordingSinkConnector",
    .version = "0.1",
    .type = SAMSA_CONNECT_SINK,
    .config_defs = sink_defs,
    .config_def_count = 1,
    .task_start = sink_start,
    .sink_put = sink_put,
    .sink_flush = sink_flush,
    .task_stop = sink_stop,
};

static const samsa_connect_plugin_t *const all[] = {&counter_source, &recording_sink, NULL};

SAMSA_CONNECT_EXPORT const samsa_connect_plugin_t *const *samsa_connect_plugins(uint32_t runtime_abi)
{
    (void)runtime_abi;
    return all;
}
