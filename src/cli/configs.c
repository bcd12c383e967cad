/*
 * configs.c - `samsa config get|set|delete topic NAME | broker ID [...]`.
 *
 * get: DescribeConfigs through librdkafka (every config with its value,
 * source and flags; keys given on the command line filter the list).
 * set/delete: IncrementalAlterConfigs (SET / DELETE per key) over the
 * project's wire client, because librdkafka 2.0.2 has only the legacy
 * AlterConfigs, which replaces a resource's whole dynamic config. If the
 * broker lacks IncrementalAlterConfigs we fall back to AlterConfigs with a
 * read-modify-write: read the current dynamic values, apply the change,
 * send the full set (racy against a concurrent writer, said in the docs).
 * Broker resources are altered on that broker itself (found in Metadata),
 * as Kafka requires. Main thread only.
 */
#include "admin_wire.h"
#include "cli.h"
#include "out.h"

#include <stdlib.h>
#include <string.h>

#define RES_TOPIC 2
#define RES_BROKER 4
#define OP_SET 0
#define OP_DELETE 1

static void config_usage(FILE *f)
{
    fprintf(f,
            "usage: samsa config <verb> topic NAME | broker ID [args]\n"
            "  get topic NAME [KEY...] [--changed]    configs with value and source\n"
            "                                         (--changed: only non-default ones)\n"
            "  get broker ID [KEY...] [--changed]\n"
            "  set topic NAME key=value...            set dynamic configs\n"
            "  set broker ID key=value...\n"
            "  delete topic NAME KEY...               remove overrides (back to default)\n"
            "  delete broker ID KEY...\n");
}

typedef struct cfg_target {
    int type; /* RES_TOPIC or RES_BROKER */
    const char *name;
} cfg_target_t;

static int parse_target(const char *cmd, const char *kind, const char *name, cfg_target_t *t)
{
    if (!kind || !name)
        return cli_usage_fail(cmd, "expected 'topic NAME' or 'broker ID'");
    if (strcmp(kind, "topic") == 0) {
        t->type = RES_TOPIC;
    } else if (strcmp(kind, "broker") == 0) {
        int32_t id;
        if (!cli_parse_i32(name, 0, INT32_MAX, &id))
            return cli_usage_fail(cmd, "broker ID must be a number, got '%s'", name);
        t->type = RES_BROKER;
    } else {
        return cli_usage_fail(cmd, "unknown resource type '%s' (topic or broker)", kind);
    }
    t->name = name;
    return -1;
}

/* Host and port of broker id from Metadata; fails (message printed) when the
 * cluster has no such broker, so requests aimed at it never wait for a
 * connection that cannot exist. host may be NULL. */
static bool broker_addr(const char *id, char *host, size_t hlen, int *port)
{
    cli_rk_t k;
    if (!cli_rk_new(&k, RD_KAFKA_PRODUCER, NULL, NULL, NULL))
        return false;
    const struct rd_kafka_metadata *md;
    bool ok = false;
    if (cli_rk_metadata(&k, NULL, &md)) {
        for (int i = 0; i < md->broker_cnt; i++)
            if (md->brokers[i].id == atoi(id)) {
                if (host)
                    snprintf(host, hlen, "%s", md->brokers[i].host);
                *port = md->brokers[i].port;
                ok = true;
            }
        if (!ok)
            cli_fail("broker %s is not in the cluster", id);
        rd_kafka_metadata_destroy(md);
    }
    cli_rk_destroy(&k);
    return ok;
}

/* DescribeConfigs of one resource; *ev owns the result. */
static const rd_kafka_ConfigResource_t *describe(cli_rk_t *k, const cfg_target_t *t,
                                                 rd_kafka_event_t **ev)
{
    rd_kafka_ConfigResource_t *r = rd_kafka_ConfigResource_new(
        t->type == RES_TOPIC ? RD_KAFKA_RESOURCE_TOPIC : RD_KAFKA_RESOURCE_BROKER, t->name);
    rd_kafka_queue_t *q = rd_kafka_queue_new(k->rk);
    rd_kafka_AdminOptions_t *o = cli_rk_admin_opts(k, RD_KAFKA_ADMIN_OP_DESCRIBECONFIGS);
    if (t->type == RES_BROKER) {
        char errstr[128];
        if (rd_kafka_AdminOptions_set_broker(o, atoi(t->name), errstr, sizeof errstr))
            cli_debug("set broker: %s", errstr);
    }
    rd_kafka_DescribeConfigs(k->rk, &r, 1, o, q);
    *ev = cli_rk_wait(k, q, "describe configs");
    const rd_kafka_ConfigResource_t *res = NULL;
    if (*ev && rd_kafka_event_error(*ev)) {
        cli_fail("describe configs: %s", rd_kafka_event_error_string(*ev));
    } else if (*ev) {
        size_t n;
        const rd_kafka_ConfigResource_t **rs = rd_kafka_DescribeConfigs_result_resources(
            rd_kafka_event_DescribeConfigs_result(*ev), &n);
        if (n < 1) {
            cli_fail("describe configs: empty response");
        } else if (rd_kafka_ConfigResource_error(rs[0])) {
            const char *m = rd_kafka_ConfigResource_error_string(rs[0]);
            cli_fail("%s '%s': %s", t->type == RES_TOPIC ? "topic" : "broker", t->name,
                     m && *m ? m : rd_kafka_err2str(rd_kafka_ConfigResource_error(rs[0])));
        } else {
            res = rs[0];
        }
    }
    rd_kafka_AdminOptions_destroy(o);
    rd_kafka_queue_destroy(q);
    rd_kafka_ConfigResource_destroy(r);
    return res;
}

static int config_get(const cfg_target_t *t, char **keys, int nkeys, bool changed)
{
    /* librdkafka waits for a broker id it has never seen until the request
     * times out: ask Metadata first and answer at once. */
    int port;
    if (t->type == RES_BROKER && !broker_addr(t->name, NULL, 0, &port))
        return CLI_EXIT_FAIL;
    cli_rk_t k;
    if (!cli_rk_new(&k, RD_KAFKA_PRODUCER, NULL, NULL, NULL))
        return CLI_EXIT_FAIL;
    rd_kafka_event_t *ev = NULL;
    const rd_kafka_ConfigResource_t *res = describe(&k, t, &ev);
    int rc = CLI_EXIT_OK;
    if (!res) {
        rc = CLI_EXIT_FAIL;
        goto out;
    }
    size_t n;
    const rd_kafka_ConfigEntry_t **ents = rd_kafka_ConfigResource_configs(res, &n);
    bool *found = calloc((size_t)nkeys + 1, sizeof *found);
    cli_json_t j;
    cli_json_init(&j, stdout);
    cli_table_t tab;
    cli_table_init(&tab, 3);
    cli_table_cell(&tab, "NAME");
    cli_table_cell(&tab, "VALUE");
    cli_table_cell(&tab, "SOURCE");
    if (cli_g.format == CLI_FMT_JSON)
        cli_json_arr_begin(&j);
    for (size_t i = 0; i < n; i++) {
        const char *name = rd_kafka_ConfigEntry_name(ents[i]);
        if (nkeys) {
            int m = -1;
            for (int q = 0; q < nkeys; q++)
                if (strcmp(keys[q], name) == 0)
                    m = q;
            if (m < 0)
                continue;
            found[m] = true;
        }
        if (changed && rd_kafka_ConfigEntry_is_default(ents[i]))
            continue;
        const char *v = rd_kafka_ConfigEntry_value(ents[i]);
        bool sensitive = rd_kafka_ConfigEntry_is_sensitive(ents[i]);
        const char *src = rd_kafka_ConfigSource_name(rd_kafka_ConfigEntry_source(ents[i]));
        if (cli_g.format == CLI_FMT_JSON) {
            cli_json_obj_begin(&j);
            cli_json_kstr(&j, "name", name);
            cli_json_kstr(&j, "value", sensitive ? NULL : v);
            cli_json_kstr(&j, "source", src);
            cli_json_kbool(&j, "default", rd_kafka_ConfigEntry_is_default(ents[i]));
            cli_json_kbool(&j, "read_only", rd_kafka_ConfigEntry_is_read_only(ents[i]));
            cli_json_kbool(&j, "sensitive", sensitive);
            cli_json_obj_end(&j);
        } else {
            cli_table_cell(&tab, "%s", name);
            cli_table_cell(&tab, "%s", sensitive ? "[hidden]" : v ? v : "null");
            cli_table_cell(&tab, "%s", src);
        }
    }
    if (cli_g.format == CLI_FMT_JSON) {
        cli_json_arr_end(&j);
        cli_json_done(&j);
    } else {
        cli_table_print(&tab, stdout);
    }
    cli_table_free(&tab);
    for (int q = 0; q < nkeys; q++)
        if (!found[q])
            rc = cli_fail("unknown config '%s' for %s %s", keys[q],
                          t->type == RES_TOPIC ? "topic" : "broker", t->name);
    free(found);
out:
    if (ev)
        rd_kafka_event_destroy(ev);
    cli_rk_destroy(&k);
    return rc;
}

/* Legacy AlterConfigs: read-modify-write of the resource's dynamic configs. */
static int alter_legacy(const cfg_target_t *t, int op, char **kvs, int n)
{
    cli_rk_t k;
    if (!cli_rk_new(&k, RD_KAFKA_PRODUCER, NULL, NULL, NULL))
        return CLI_EXIT_FAIL;
    rd_kafka_event_t *dev = NULL, *ev = NULL;
    int rc = CLI_EXIT_OK;
    const rd_kafka_ConfigResource_t *cur = describe(&k, t, &dev);
    if (!cur) {
        cli_rk_destroy(&k);
        return CLI_EXIT_FAIL;
    }
    rd_kafka_ResourceType_t rt =
        t->type == RES_TOPIC ? RD_KAFKA_RESOURCE_TOPIC : RD_KAFKA_RESOURCE_BROKER;
    rd_kafka_ConfigSource_t dyn = t->type == RES_TOPIC
                                      ? RD_KAFKA_CONFIG_SOURCE_DYNAMIC_TOPIC_CONFIG
                                      : RD_KAFKA_CONFIG_SOURCE_DYNAMIC_BROKER_CONFIG;
    rd_kafka_ConfigResource_t *r = rd_kafka_ConfigResource_new(rt, t->name);
    size_t ne;
    const rd_kafka_ConfigEntry_t **ents = rd_kafka_ConfigResource_configs(cur, &ne);
    for (size_t i = 0; i < ne; i++) {
        if (rd_kafka_ConfigEntry_source(ents[i]) != dyn)
            continue;
        const char *name = rd_kafka_ConfigEntry_name(ents[i]);
        bool touched = false;
        for (int q = 0; q < n; q++) {
            size_t kl = strcspn(kvs[q], "=");
            if (strlen(name) == kl && strncmp(kvs[q], name, kl) == 0)
                touched = true;
        }
        if (!touched)
            rd_kafka_ConfigResource_set_config(r, name, rd_kafka_ConfigEntry_value(ents[i]));
    }
    if (op == OP_SET)
        for (int q = 0; q < n; q++) {
            char *kv = sm_xstrdup(kvs[q]), *key, *val;
            if (cli_split_kv(kv, &key, &val))
                rd_kafka_ConfigResource_set_config(r, key, val);
            free(kv);
        }
    rd_kafka_queue_t *qu = rd_kafka_queue_new(k.rk);
    rd_kafka_AdminOptions_t *o = cli_rk_admin_opts(&k, RD_KAFKA_ADMIN_OP_ALTERCONFIGS);
    if (t->type == RES_BROKER) {
        char errstr[128];
        if (rd_kafka_AdminOptions_set_broker(o, atoi(t->name), errstr, sizeof errstr))
            cli_debug("set broker: %s", errstr);
    }
    rd_kafka_AlterConfigs(k.rk, &r, 1, o, qu);
    ev = cli_rk_wait(&k, qu, "alter configs");
    if (!ev) {
        rc = CLI_EXIT_FAIL;
    } else if (rd_kafka_event_error(ev)) {
        rc = cli_fail("alter configs: %s", rd_kafka_event_error_string(ev));
    } else {
        size_t nr;
        const rd_kafka_ConfigResource_t **rs = rd_kafka_AlterConfigs_result_resources(
            rd_kafka_event_AlterConfigs_result(ev), &nr);
        for (size_t i = 0; i < nr; i++)
            if (rd_kafka_ConfigResource_error(rs[i])) {
                const char *m = rd_kafka_ConfigResource_error_string(rs[i]);
                rc = cli_fail("%s: %s", t->name,
                              m && *m ? m
                                      : rd_kafka_err2str(rd_kafka_ConfigResource_error(rs[i])));
            }
    }
    if (ev)
        rd_kafka_event_destroy(ev);
    rd_kafka_event_destroy(dev);
    rd_kafka_AdminOptions_destroy(o);
    rd_kafka_queue_destroy(qu);
    rd_kafka_ConfigResource_destroy(r);
    cli_rk_destroy(&k);
    return rc;
}

static int config_alter(const cfg_target_t *t, int op, char **kvs, int n)
{
    cli_wire_t w;
    bool ok;
    if (t->type == RES_BROKER) {
        char host[256];
        int port;
        if (!broker_addr(t->name, host, sizeof host, &port))
            return CLI_EXIT_FAIL;
        ok = cli_wire_connect_one(&w, host, port);
    } else {
        ok = cli_wire_connect(&w, cli_g.brokers);
    }
    if (!ok)
        return CLI_EXIT_FAIL;
    if (w.max_ver[SM_API_INCREMENTAL_ALTER_CONFIGS] < 0) {
        cli_wire_close(&w);
        cli_debug("broker lacks IncrementalAlterConfigs; using AlterConfigs");
        return alter_legacy(t, op, kvs, n);
    }
    int16_t v;
    int rc = CLI_EXIT_OK;
    sm_arena_t a;
    sm_arena_init(&a);
    if (!cli_wire_version(&w, SM_API_INCREMENTAL_ALTER_CONFIGS, 0, 1, &v)) {
        rc = CLI_EXIT_FAIL;
        goto out;
    }
    sm_incremental_alter_configs_request_t req;
    sm_incremental_alter_configs_request_init(&req);
    sm_incremental_alter_configs_request_alter_configs_resource_t res;
    sm_incremental_alter_configs_request_alter_configs_resource_init(&res);
    res.resource_type = (int8_t)t->type;
    res.resource_name = sm_str(t->name);
    res.configs = SM_ARENA_NEW(&a, sm_incremental_alter_configs_request_alterable_config_t, n);
    res.configs_count = n;
    for (int i = 0; i < n; i++) {
        sm_incremental_alter_configs_request_alterable_config_t *c = &res.configs[i];
        sm_incremental_alter_configs_request_alterable_config_init(c);
        c->config_operation = (int8_t)op;
        char *kv = sm_arena_strndup(&a, kvs[i], strlen(kvs[i])), *key, *val;
        if (op == OP_SET && cli_split_kv(kv, &key, &val)) {
            c->name = sm_str(key);
            c->value = sm_str(val);
        } else {
            c->name = sm_str(kv);
            c->value = sm_str(NULL);
        }
    }
    req.resources = &res;
    req.resources_count = 1;
    void *out;
    if (!cli_wire_call(&w, SM_API_INCREMENTAL_ALTER_CONFIGS, v, &req, &a, &out)) {
        rc = CLI_EXIT_FAIL;
        goto out;
    }
    sm_incremental_alter_configs_response_t *resp = out;
    if (resp->responses_count < 1)
        rc = cli_fail("IncrementalAlterConfigs: empty response");
    for (int i = 0; i < resp->responses_count; i++) {
        const sm_incremental_alter_configs_response_alter_configs_resource_response_t *r =
            &resp->responses[i];
        if (r->error_code)
            rc = cli_fail("%s %s: %.*s%s", t->type == RES_TOPIC ? "topic" : "broker", t->name,
                          r->error_message.len > 0 ? r->error_message.len : 0,
                          r->error_message.len > 0 ? r->error_message.ptr : "",
                          r->error_message.len > 0 ? "" : cli_kafka_err_name(r->error_code));
    }
    if (rc == CLI_EXIT_OK) {
        if (cli_g.format == CLI_FMT_JSON) {
            cli_json_t j;
            cli_json_init(&j, stdout);
            cli_json_obj_begin(&j);
            cli_json_kstr(&j, "resource", t->type == RES_TOPIC ? "topic" : "broker");
            cli_json_kstr(&j, "name", t->name);
            cli_json_kstr(&j, "operation", op == OP_SET ? "set" : "delete");
            cli_json_key(&j, "configs");
            cli_json_arr_begin(&j);
            for (int i = 0; i < n; i++)
                cli_json_str(&j, kvs[i]);
            cli_json_arr_end(&j);
            cli_json_obj_end(&j);
            cli_json_done(&j);
        } else {
            for (int i = 0; i < n; i++)
                printf("%s %s %s: %s\n", op == OP_SET ? "set" : "deleted",
                       t->type == RES_TOPIC ? "topic" : "broker", t->name, kvs[i]);
        }
    }
out:
    sm_arena_free(&a);
    cli_wire_close(&w);
    return rc;
}

int cli_cmd_config(int argc, char **argv)
{
    int rc0 = cli_noun_start("config", config_usage, argc, argv);
    if (rc0 >= 0)
        return rc0;
    const char *verb = argv[0];
    char cmd[64];
    snprintf(cmd, sizeof cmd, "config %s", verb);
    int mode = strcmp(verb, "get") == 0      ? 0
               : strcmp(verb, "describe") == 0 ? 0
               : strcmp(verb, "set") == 0    ? 1
               : strcmp(verb, "alter") == 0  ? 1
               : strcmp(verb, "delete") == 0 ? 2
                                             : -1;
    if (mode < 0)
        return cli_usage_fail("config", "unknown verb '%s'", verb);
    static const cli_opt_t opts[] = {{"changed", 0, 'c'}, {0}};
    cli_args_t a;
    cli_args_init(&a, cmd, argc - 1, argv + 1);
    char **pos = calloc((size_t)argc + 1, sizeof *pos);
    int npos = 0, c, rc = -1;
    bool changed = false;
    while ((c = cli_getopt(&a, opts)) != -1) {
        if (c == 0)
            pos[npos++] = (char *)a.arg;
        else if (c == 'c' && mode == 0)
            changed = true;
        else if (c == 'h') {
            cli_verb_help(stdout, config_usage, a.cmd);
            rc = 0;
            goto out;
        } else {
            rc = c == '?' ? CLI_EXIT_USAGE : cli_usage_fail(cmd, "unexpected option");
            goto out;
        }
    }
    cfg_target_t t;
    rc = parse_target(cmd, npos > 0 ? pos[0] : NULL, npos > 1 ? pos[1] : NULL, &t);
    if (rc >= 0)
        goto out;
    char **rest = pos + 2;
    int nrest = npos - 2;
    if (mode == 0) {
        rc = config_get(&t, rest, nrest, changed);
        goto out;
    }
    if (nrest == 0) {
        rc = cli_usage_fail(cmd, mode == 1 ? "give at least one key=value" : "give at least one key");
        goto out;
    }
    for (int i = 0; i < nrest; i++) {
        bool has_eq = strchr(rest[i], '=') != NULL;
        if (mode == 1 && (!has_eq || rest[i][0] == '=')) {
            rc = cli_usage_fail(cmd, "expected key=value, got '%s'", rest[i]);
            goto out;
        }
        if (mode == 2 && has_eq) {
            rc = cli_usage_fail(cmd, "delete takes keys without values, got '%s'", rest[i]);
            goto out;
        }
    }
    rc = config_alter(&t, mode == 1 ? OP_SET : OP_DELETE, rest, nrest);
out:
    free(pos);
    return rc;
}
