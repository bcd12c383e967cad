/*
 * ctx.c - the runtime side of connect_plugin.h: the function table a plugin reaches
 * through ctx->rt, and conversions between config objects and plugin configs.
 *
 * A cn_ctx_t is created by whoever calls into a plugin (validation and task_configs in
 * herder.c/validate.c, tasks in task_source.c/task_sink.c) and used on that thread only.
 */
#define _GNU_SOURCE
#include "cn.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void rt_log(samsa_connect_context_t *ctx, samsa_connect_log_level_t level, const char *fmt, ...)
{
    cn_ctx_t *c = (cn_ctx_t *)ctx;
    if (level < SAMSA_LOG_TRACE || level > SAMSA_LOG_ERROR)
        level = SAMSA_LOG_INFO;
    va_list ap;
    va_start(ap, fmt);
    cn_logv(c->log, (int)level, fmt, ap);
    va_end(ap);
}

static const char *rt_offset(samsa_connect_context_t *ctx, const char *partition)
{
    cn_ctx_t *c = (cn_ctx_t *)ctx;
    if (!partition || c->kind != CN_CTX_SOURCE)
        return NULL;
    json_t *p = json_loads(partition, 0, NULL);
    if (!json_is_object(p)) {
        json_decref(p);
        CN_WARN(c->log, "offset(): source partition %s is not a JSON object", partition);
        return NULL;
    }
    json_t *o = cn_offsets_get(c->w->offsets, c->conn_name, p);
    json_decref(p);
    free(c->offset_text);
    c->offset_text = o ? json_dumps(o, JSON_COMPACT | JSON_SORT_KEYS) : NULL;
    json_decref(o);
    return c->offset_text;
}

static int rt_emit(samsa_connect_context_t *ctx, const samsa_connect_source_record_t *rec)
{
    cn_ctx_t *c = (cn_ctx_t *)ctx;
    if (c->kind != CN_CTX_SOURCE || !c->src || !rec)
        return -1;
    return cn_source_emit(c->src, rec);
}

static int rt_add_task_config(samsa_connect_context_t *ctx, const samsa_connect_config_t *cfg)
{
    cn_ctx_t *c = (cn_ctx_t *)ctx;
    if (c->kind != CN_CTX_CONFIG || !c->task_configs || !cfg)
        return -1;
    json_t *o = json_object();
    for (size_t i = 0; i < cfg->n; i++)
        if (cfg->entries[i].key && cfg->entries[i].value)
            json_object_set_new(o, cfg->entries[i].key, json_string(cfg->entries[i].value));
    json_array_append_new(c->task_configs, o);
    return 0;
}

static int rt_should_yield(samsa_connect_context_t *ctx)
{
    cn_ctx_t *c = (cn_ctx_t *)ctx;
    return c->task ? cn_task_wanted(c->task) != 'r' : 0;
}

static void rt_config_error(samsa_connect_context_t *ctx, const char *key, const char *message)
{
    cn_ctx_t *c = (cn_ctx_t *)ctx;
    if (c->kind != CN_CTX_CONFIG || !c->errors || !key || !message)
        return;
    json_t *a = json_object_get(c->errors, key);
    if (!a) {
        a = json_array();
        json_object_set_new(c->errors, key, a);
    }
    json_array_append_new(a, json_string(message));
}

const samsa_connect_runtime_t cn_runtime = {
    .abi_version = SAMSA_CONNECT_ABI_VERSION,
    .log = rt_log,
    .offset = rt_offset,
    .emit = rt_emit,
    .add_task_config = rt_add_task_config,
    .should_yield = rt_should_yield,
    .config_error = rt_config_error,
};

void cn_ctx_init(cn_ctx_t *c, cn_ctx_kind_t kind, cn_worker_t *w, const char *conn_name,
                 const samsa_connect_plugin_t *plugin)
{
    memset(c, 0, sizeof *c);
    c->base.rt = &cn_runtime;
    c->kind = kind;
    c->w = w;
    c->conn_name = conn_name;
    char name[512];
    snprintf(name, sizeof name, "samsa.connect.connector.%s", conn_name ? conn_name : "validate");
    c->log = cn_logger(name);
    (void)plugin;
    if (kind == CN_CTX_CONFIG) {
        c->errors = json_object();
        c->task_configs = json_array();
    }
}

void cn_ctx_done(cn_ctx_t *c)
{
    json_decref(c->errors);
    json_decref(c->task_configs);
    free(c->offset_text);
    c->errors = c->task_configs = NULL;
    c->offset_text = NULL;
}

samsa_connect_config_t cn_plugin_config(json_t *obj)
{
    samsa_connect_config_t c = {0};
    size_t n = json_object_size(obj);
    samsa_connect_kv_t *e = calloc(n ? n : 1, sizeof *e);
    if (!e)
        abort();
    const char *k;
    json_t *v;
    size_t i = 0;
    json_object_foreach(obj, k, v) {
        if (!json_is_string(v))
            continue;
        e[i].key = k;
        e[i].value = json_string_value(v);
        i++;
    }
    c.entries = e;
    c.n = i;
    return c;
}

void cn_plugin_config_free(samsa_connect_config_t *c)
{
    free((void *)c->entries);
    c->entries = NULL;
    c->n = 0;
}
