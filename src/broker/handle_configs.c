/*
 * handle_configs.c - AlterConfigs (v0-2) and IncrementalAlterConfigs (v0-1).
 *
 * Topics: every change goes to the controller (sm_meta_alter_topic_configs),
 * which validates each key and value, appends ConfigRecords to the metadata
 * log, fsyncs and publishes a new image; the server's metadata listener
 * then hands the new settings to the open partition logs
 * (sm_log_set_config), so a retention or flush change takes effect without
 * a restart and survives one. AlterConfigs has Kafka's legacy
 * replace-everything semantics (overrides not named are removed);
 * IncrementalAlterConfigs applies SET / DELETE / APPEND / SUBTRACT per key
 * (APPEND and SUBTRACT only for list-typed keys, on the current override or
 * the topic default). validate_only runs every check and writes nothing.
 *
 * Brokers: Kafka lets only its dynamic broker configs be changed at run
 * time, for one broker (resource name = its node id) or as the cluster
 * default (resource name ""). Samsa accepts the ones it applies live (the
 * broker defaults of topic configs: log.retention.ms, log.segment.bytes,
 * message.max.bytes, ...; sm_config_is_dynamic); a static key is refused
 * with INVALID_CONFIG ("Cannot update these configs dynamically"), a bad
 * value with INVALID_CONFIG naming key and value. The controller stores
 * them as broker ConfigRecords (sm_meta_alter_broker_configs), and the
 * server's metadata listener recomputes every open partition's settings,
 * so the change takes effect without a restart and survives one.
 *
 * Errors carry a message; a resource's keys are all checked before
 * anything is written, so a request changes all of a resource or none of
 * it. Runs on the connection's loop thread (the controller call blocks it
 * for one metadata fsync, as the other admin handlers do).
 */
#include "handler_util.h"
#include "handlers.h"
#include "log.h"
#include "meta.h"
#include "server.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum {
    RES_TOPIC = 2,
    RES_BROKER = 4,
    RES_BROKER_LOGGER = 8,
};

enum { OP_SET = 0, OP_DELETE = 1, OP_APPEND = 2, OP_SUBTRACT = 3 };

static sm_str_t msg_dup(sm_req_t *req, const char *s)
{
    return s && *s ? sm_str(sm_arena_strndup(&req->arena, s, strlen(s))) : (sm_str_t){NULL, -1};
}

/* Kafka error code for a failed controller call. */
static int16_t meta_kerr(sm_err_t err)
{
    switch (sm_meta_last_fail()) {
    case SM_META_FAIL_UNKNOWN_TOPIC: return KERR_UNKNOWN_TOPIC_OR_PARTITION;
    case SM_META_FAIL_CONFIG: return KERR_INVALID_CONFIG;
    case SM_META_FAIL_STORAGE: return KERR_KAFKA_STORAGE_ERROR;
    case SM_META_FAIL_NOT_CONTROLLER: return KERR_NOT_CONTROLLER;
    case SM_META_FAIL_TIMEOUT: return KERR_REQUEST_TIMED_OUT;
    default: break;
    }
    return err == SM_ERR_NOT_FOUND ? KERR_UNKNOWN_TOPIC_OR_PARTITION
           : err == SM_ERR_INVALID ? KERR_INVALID_CONFIG
                                   : KERR_UNKNOWN_SERVER_ERROR;
}

/* One resource's outcome. */
typedef struct result {
    int16_t code;
    char msg[512];
} result_t;

static void set_result(result_t *r, int16_t code, const char *fmt, const char *arg)
{
    r->code = code;
    snprintf(r->msg, sizeof r->msg, fmt, arg);
}

/* Names and values are kept as C strings: one with a NUL byte would be cut. */
#define NUL_MSG "resource names, config names and values may not hold NUL bytes"

/* A key named twice in one resource is refused, as Kafka does; *dup gets
 * the name. */
static bool has_duplicate(sm_req_t *req, const sm_str_t *names, int32_t n, const char **dup)
{
    bool *twice = sm_names_duplicated(req, names, sizeof *names, n);
    for (int32_t i = 0; i < n; i++)
        if (twice[i]) {
            *dup = sm_req_str(req, names[i]);
            return true;
        }
    return false;
}

/* ------------------------------------------------------------ brokers */

typedef struct broker_change {
    const char *key;
    const char *value; /* NULL = delete */
} broker_change_t;

static void alter_broker(sm_req_t *req, sm_str_t name, const broker_change_t *ch, int n,
                         bool replace_all, bool validate_only, result_t *r)
{
    char self[16];
    snprintf(self, sizeof self, "%d", sm_server_node_id(req->srv));
    if (name.len > 0 && !sm_str_eq(name, self)) {
        set_result(r, KERR_INVALID_REQUEST, "Unknown broker id %s", sm_req_str(req, name));
        return;
    }
    sm_config_kv_t *set = SM_ARENA_NEW(&req->arena, sm_config_kv_t, n > 0 ? n : 1);
    const char **del = SM_ARENA_NEW(&req->arena, const char *, n > 0 ? n : 1);
    int nset = 0, ndel = 0;
    for (int i = 0; i < n; i++) {
        if (ch[i].value) {
            set[nset].key = (char *)ch[i].key;
            set[nset].value = (char *)ch[i].value;
            nset++;
        } else {
            del[ndel++] = ch[i].key;
        }
    }
    const char *res = name.len > 0 ? self : "";
    char errmsg[512] = "";
    sm_err_t err = sm_meta_alter_broker_configs(sm_server_meta(req->srv), res, set, nset, del,
                                                ndel, replace_all, validate_only, errmsg,
                                                sizeof errmsg);
    if (err != SM_OK) {
        r->code = meta_kerr(err);
        if (r->code == KERR_UNKNOWN_TOPIC_OR_PARTITION)
            r->code = KERR_INVALID_CONFIG;
        snprintf(r->msg, sizeof r->msg, "%s", errmsg[0] ? errmsg : sm_err_str(err));
        return;
    }
    if (!validate_only && (n || replace_all))
        SM_INFO("admin", "broker configs %s: altered (%d set, %d deleted%s) for %s",
                name.len > 0 ? self : "<cluster default>", nset, ndel,
                replace_all ? ", others reset" : "", sm_req_peer(req));
}

/* The effective value of a broker key for APPEND/SUBTRACT (dynamic layers
 * of resource node_id, then static, then default); "" if null. */
static const char *broker_current(sm_req_t *req, sm_str_t name, const char *key)
{
    sm_meta_image_t *img = sm_meta_image_get(sm_server_meta(req->srv));
    sm_config_dynamic_t dyn;
    sm_meta_image_dynamic(img, name.len > 0 ? sm_server_node_id(req->srv) : -1, &dyn);
    const char *v = sm_config_get_dynamic(sm_server_config(req->srv), &dyn, key, NULL);
    const char *out = sm_arena_strndup(&req->arena, v ? v : "", v ? strlen(v) : 0);
    sm_meta_image_put(img);
    return out;
}

/* ------------------------------------------------------------ topics */

/* The topic's current value of key for APPEND/SUBTRACT: its override, else
 * the effective value (dynamic or static broker default, or Kafka's). */
static const char *current_value(sm_req_t *req, const char *topic, const char *key)
{
    sm_meta_image_t *img = sm_meta_image_get(sm_server_meta(req->srv));
    const sm_topic_meta_t *t = sm_meta_image_topic(img, topic, strlen(topic));
    char buf[512] = "";
    const char *out = NULL;
    if (t) {
        sm_config_source_t src;
        sm_config_dynamic_t dyn;
        sm_meta_image_dynamic(img, sm_server_node_id(req->srv), &dyn);
        if (sm_topic_config_resolve_dynamic(sm_server_config(req->srv), &dyn, key, t->configs,
                                            t->nconfigs, buf, sizeof buf, &src, NULL) == SM_OK)
            out = sm_arena_strndup(&req->arena, buf, strlen(buf));
    }
    sm_meta_image_put(img);
    return out;
}

static bool list_has(const char *list, const char *item, size_t ilen)
{
    const char *p = list;
    while (*p) {
        const char *e = strchr(p, ',');
        size_t n = e ? (size_t)(e - p) : strlen(p);
        if (n == ilen && memcmp(p, item, n) == 0)
            return true;
        if (!e)
            break;
        p = e + 1;
    }
    return false;
}

/* APPEND (add items not present) or SUBTRACT (remove items) on a
 * comma-separated list; result in the request arena. */
static char *list_edit(sm_req_t *req, const char *cur, const char *items, bool append)
{
    size_t cap = strlen(cur) + strlen(items) + 2, n = 0;
    char *out = sm_arena_alloc(&req->arena, cap);
    out[0] = '\0';
    const char *p = cur;
    while (*p) { /* keep current items (unless subtracted) */
        const char *e = strchr(p, ',');
        size_t len = e ? (size_t)(e - p) : strlen(p);
        if (len > 0 && (append || !list_has(items, p, len))) {
            n += (size_t)snprintf(out + n, cap - n, "%s%.*s", n ? "," : "", (int)len, p);
        }
        if (!e)
            break;
        p = e + 1;
    }
    if (append) {
        p = items;
        while (*p) {
            const char *e = strchr(p, ',');
            size_t len = e ? (size_t)(e - p) : strlen(p);
            if (len > 0 && !list_has(out, p, len))
                n += (size_t)snprintf(out + n, cap - n, "%s%.*s", n ? "," : "", (int)len, p);
            if (!e)
                break;
            p = e + 1;
        }
    }
    return out;
}

/* Apply (set, del) to a topic through the controller. */
static void alter_topic(sm_req_t *req, const char *topic, const sm_topic_kv_t *set, int nset,
                        const char *const *del, int ndel, bool replace_all, bool validate_only,
                        result_t *r)
{
    char errmsg[512] = "";
    sm_err_t err = sm_meta_alter_topic_configs(sm_server_meta(req->srv), topic, set, nset, del,
                                               ndel, replace_all, validate_only, errmsg,
                                               sizeof errmsg);
    if (err != SM_OK) {
        r->code = meta_kerr(err);
        snprintf(r->msg, sizeof r->msg, "%s", errmsg[0] ? errmsg : sm_err_str(err));
        return;
    }
    if (!validate_only && (nset || ndel || replace_all))
        SM_INFO("admin", "topic %s: configs altered (%d set, %d deleted%s) for %s", topic, nset,
                ndel, replace_all ? ", others reset" : "", sm_req_peer(req));
}

/* ------------------------------------------------------------ AlterConfigs */

static void alter_configs_run(sm_req_t *req, void *msgp)
{
    sm_alter_configs_request_t msg = *(sm_alter_configs_request_t *)msgp;
    sm_alter_configs_response_t resp;
    sm_alter_configs_response_init(&resp);
    SM_NEW_ARRAY(req, sm_alter_configs_response_alter_configs_resource_response,
                 msg.resources_count, resp.responses);
    resp.responses_count = SM_MAX(msg.resources_count, 0);
    for (int32_t i = 0; i < msg.resources_count; i++) {
        const sm_alter_configs_request_alter_configs_resource_t *res = &msg.resources[i];
        sm_alter_configs_response_alter_configs_resource_response_t *out = &resp.responses[i];
        out->resource_type = res->resource_type;
        out->resource_name = res->resource_name;
        result_t r = {0};
        int32_t n = SM_MAX(res->configs_count, 0);
        sm_str_t *names = SM_ARENA_NEW(&req->arena, sm_str_t, n > 0 ? n : 1);
        for (int32_t c = 0; c < n; c++)
            names[c] = res->configs[c].name;
        const char *dup;
        bool nul = sm_str_has_nul(res->resource_name);
        for (int32_t c = 0; c < n; c++)
            nul |= sm_str_has_nul(res->configs[c].name) || sm_str_has_nul(res->configs[c].value);
        if (has_duplicate(req, names, n, &dup)) {
            set_result(&r, KERR_INVALID_REQUEST, "Error due to duplicate config keys: %s", dup);
        } else if (nul) {
            set_result(&r, KERR_INVALID_CONFIG, "%s", NUL_MSG);
        } else if (res->resource_type == RES_TOPIC) {
            sm_topic_kv_t *set = SM_ARENA_NEW(&req->arena, sm_topic_kv_t, n > 0 ? n : 1);
            int nset = 0;
            for (int32_t c = 0; c < n; c++) {
                if (res->configs[c].value.len < 0)
                    continue; /* null: not set, so replace_all removes it */
                set[nset].key = sm_req_str(req, res->configs[c].name);
                set[nset].value = sm_req_str(req, res->configs[c].value);
                nset++;
            }
            alter_topic(req, sm_req_str(req, res->resource_name), set, nset, NULL, 0, true,
                        msg.validate_only, &r);
        } else if (res->resource_type == RES_BROKER) {
            broker_change_t *ch = SM_ARENA_NEW(&req->arena, broker_change_t, n > 0 ? n : 1);
            for (int32_t c = 0; c < n; c++) {
                ch[c].key = sm_req_str(req, res->configs[c].name);
                ch[c].value = res->configs[c].value.len >= 0 ? sm_req_str(req, res->configs[c].value)
                                                             : NULL;
            }
            alter_broker(req, res->resource_name, ch, n, true, msg.validate_only, &r);
        } else {
            set_result(&r, KERR_INVALID_REQUEST, "Unsupported resource type %s",
                       res->resource_type == RES_BROKER_LOGGER ? "BROKER_LOGGER" : "(unknown)");
        }
        out->error_code = r.code;
        out->error_message = r.code ? msg_dup(req, r.msg) : (sm_str_t){NULL, -1};
    }
    SM_RESPOND(alter_configs_response, req, &resp);
}

/* Config changes are metadata commits (an fsync each, and every open
 * partition may be reconfigured): on the controller thread. */
SM_HANDLER_ON_CONTROLLER(sm_handle_alter_configs, alter_configs_request,
                         alter_configs_run)

/* ------------------------------------------------------------ Incremental */

typedef sm_incremental_alter_configs_request_alter_configs_resource_t inc_res_t;

static void incremental_topic(sm_req_t *req, const inc_res_t *res, bool validate_only,
                              result_t *r)
{
    const char *topic = sm_req_str(req, res->resource_name);
    int32_t n = SM_MAX(res->configs_count, 0);
    sm_topic_kv_t *set = SM_ARENA_NEW(&req->arena, sm_topic_kv_t, n > 0 ? n : 1);
    const char **del = SM_ARENA_NEW(&req->arena, const char *, n > 0 ? n : 1);
    int nset = 0, ndel = 0;
    for (int32_t c = 0; c < n; c++) {
        const sm_incremental_alter_configs_request_alterable_config_t *cf = &res->configs[c];
        const char *key = sm_req_str(req, cf->name);
        const sm_topic_config_def_t *d = sm_topic_config_def(key);
        if (!d) {
            set_result(r, KERR_INVALID_CONFIG, "Unknown topic config name: %s", key);
            return;
        }
        switch (cf->config_operation) {
        case OP_SET:
            if (cf->value.len < 0) {
                set_result(r, KERR_INVALID_CONFIG, "Null value not supported for %s", key);
                return;
            }
            set[nset].key = (char *)key;
            set[nset].value = sm_req_str(req, cf->value);
            nset++;
            break;
        case OP_DELETE:
            del[ndel++] = key;
            break;
        case OP_APPEND:
        case OP_SUBTRACT: {
            if (d->def.type != SM_CONFIG_LIST) {
                set_result(r, KERR_INVALID_CONFIG,
                           "Config value append/subtract is not allowed for config key: %s", key);
                return;
            }
            const char *cur = current_value(req, topic, key);
            if (!cur) {
                set_result(r, KERR_UNKNOWN_TOPIC_OR_PARTITION,
                           "This server does not host this topic: %s", topic);
                return;
            }
            set[nset].key = (char *)key;
            set[nset].value = list_edit(req, cur, cf->value.len > 0 ? sm_req_str(req, cf->value) : "",
                                        cf->config_operation == OP_APPEND);
            nset++;
            break;
        }
        default:
            set_result(r, KERR_INVALID_REQUEST, "Unknown config operation for %s", key);
            return;
        }
    }
    alter_topic(req, topic, set, nset, del, ndel, false, validate_only, r);
}

static void incremental_broker(sm_req_t *req, const inc_res_t *res, bool validate_only,
                               result_t *r)
{
    int32_t n = SM_MAX(res->configs_count, 0);
    broker_change_t *ch = SM_ARENA_NEW(&req->arena, broker_change_t, n > 0 ? n : 1);
    for (int32_t c = 0; c < n; c++) {
        const sm_incremental_alter_configs_request_alterable_config_t *cf = &res->configs[c];
        ch[c].key = sm_req_str(req, cf->name);
        if (cf->config_operation == OP_DELETE) {
            ch[c].value = NULL;
        } else if (cf->config_operation == OP_SET) {
            if (cf->value.len < 0) {
                set_result(r, KERR_INVALID_CONFIG, "Null value not supported for %s", ch[c].key);
                return;
            }
            ch[c].value = sm_req_str(req, cf->value);
        } else if (cf->config_operation == OP_APPEND || cf->config_operation == OP_SUBTRACT) {
            const sm_config_def_t *d = sm_broker_config_def(ch[c].key);
            if (d && d->type != SM_CONFIG_LIST) {
                set_result(r, KERR_INVALID_CONFIG,
                           "Config value append/subtract is not allowed for config key: %s",
                           ch[c].key);
                return;
            }
            ch[c].value = list_edit(req, broker_current(req, res->resource_name, ch[c].key),
                                    cf->value.len > 0 ? sm_req_str(req, cf->value) : "",
                                    cf->config_operation == OP_APPEND);
        } else {
            set_result(r, KERR_INVALID_REQUEST, "Unknown config operation for %s", ch[c].key);
            return;
        }
    }
    alter_broker(req, res->resource_name, ch, n, false, validate_only, r);
}

static void incremental_alter_configs_run(sm_req_t *req, void *msgp)
{
    sm_incremental_alter_configs_request_t msg = *(sm_incremental_alter_configs_request_t *)msgp;
    sm_incremental_alter_configs_response_t resp;
    sm_incremental_alter_configs_response_init(&resp);
    SM_NEW_ARRAY(req, sm_incremental_alter_configs_response_alter_configs_resource_response,
                 msg.resources_count, resp.responses);
    resp.responses_count = SM_MAX(msg.resources_count, 0);
    for (int32_t i = 0; i < msg.resources_count; i++) {
        const inc_res_t *res = &msg.resources[i];
        sm_incremental_alter_configs_response_alter_configs_resource_response_t *out =
            &resp.responses[i];
        out->resource_type = res->resource_type;
        out->resource_name = res->resource_name;
        result_t r = {0};
        int32_t n = SM_MAX(res->configs_count, 0);
        sm_str_t *names = SM_ARENA_NEW(&req->arena, sm_str_t, n > 0 ? n : 1);
        for (int32_t c = 0; c < n; c++)
            names[c] = res->configs[c].name;
        const char *dup;
        bool nul = sm_str_has_nul(res->resource_name);
        for (int32_t c = 0; c < n; c++)
            nul |= sm_str_has_nul(res->configs[c].name) || sm_str_has_nul(res->configs[c].value);
        if (has_duplicate(req, names, n, &dup))
            set_result(&r, KERR_INVALID_REQUEST, "Error due to duplicate config keys: %s", dup);
        else if (nul)
            set_result(&r, KERR_INVALID_CONFIG, "%s", NUL_MSG);
        else if (res->resource_type == RES_TOPIC)
            incremental_topic(req, res, msg.validate_only, &r);
        else if (res->resource_type == RES_BROKER)
            incremental_broker(req, res, msg.validate_only, &r);
        else
            set_result(&r, KERR_INVALID_REQUEST, "Unsupported resource type %s",
                       res->resource_type == RES_BROKER_LOGGER ? "BROKER_LOGGER" : "(unknown)");
        out->error_code = r.code;
        out->error_message = r.code ? msg_dup(req, r.msg) : (sm_str_t){NULL, -1};
    }
    SM_RESPOND(incremental_alter_configs_response, req, &resp);
}

SM_HANDLER_ON_CONTROLLER(sm_handle_incremental_alter_configs,
                         incremental_alter_configs_request, incremental_alter_configs_run)
