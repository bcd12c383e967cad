/*
 * validate.c - connector configuration validation, shaped as Kafka Connect's
 * ConfigInfos (PUT /connector-plugins/{p}/config/validate), and used before every
 * connector is created, reconfigured or started.
 *
 * The keys checked are the runtime's own (Kafka's ConnectorConfig, SinkConnectorConfig
 * and SourceConnectorConfig: name, connector.class, tasks.max, converters, errors.*,
 * topics/topics.regex, ...) and then the plugin's config_defs, each for its type,
 * requiredness and non-emptiness, then the plugin's own validate(). Pure apart from
 * calling the plugin; any thread.
 */
#define _GNU_SOURCE
#include "cn.h"
#include "smt.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

typedef struct def {
    const char *name;
    samsa_connect_config_type_t type;
    const char *dflt;
    int required;
    const char *group;
    const char *doc;
} def_t;

static const def_t common_defs[] = {
    {"name", SAMSA_CONFIG_STRING, NULL, 1, "Common", "Globally unique name to use for this connector."},
    {"connector.class", SAMSA_CONFIG_STRING, NULL, 1, "Common",
     "Name or alias of the class for this connector."},
    {"tasks.max", SAMSA_CONFIG_INT, "1", 0, "Common", "Maximum number of tasks to use for this connector."},
    {"tasks.max.enforce", SAMSA_CONFIG_BOOLEAN, "true", 0, "Common",
     "(Deprecated) Whether to enforce that the tasks.max property is respected by the connector."},
    {"key.converter", SAMSA_CONFIG_CLASS, NULL, 0, "Common",
     "Converter class used to convert between Kafka Connect format and the serialized form that is written to Kafka."},
    {"value.converter", SAMSA_CONFIG_CLASS, NULL, 0, "Common",
     "Converter class used to convert between Kafka Connect format and the serialized form that is written to Kafka."},
    {"header.converter", SAMSA_CONFIG_CLASS, NULL, 0, "Common",
     "HeaderConverter class used to convert between Kafka Connect format and the serialized form that is written to Kafka."},
    {"config.action.reload", SAMSA_CONFIG_STRING, "restart", 0, "Common",
     "The action that Connect should take on the connector when changes in external configuration providers result in a change in the connector's configuration properties."},
    {"transforms", SAMSA_CONFIG_LIST, "", 0, "Transforms", "Aliases for the transformations to be applied to records."},
    {"predicates", SAMSA_CONFIG_LIST, "", 0, "Predicates", "Aliases for the predicates used by transformations."},
    {"errors.retry.timeout", SAMSA_CONFIG_LONG, "0", 0, "Error Handling",
     "The maximum duration in milliseconds that a failed operation will be reattempted."},
    {"errors.retry.delay.max.ms", SAMSA_CONFIG_LONG, "60000", 0, "Error Handling",
     "The maximum duration in milliseconds between consecutive retry attempts."},
    {"errors.tolerance", SAMSA_CONFIG_STRING, "none", 0, "Error Handling",
     "Behavior for tolerating errors during connector operation. 'none' is the default value and signals that any error will result in an immediate connector task failure; 'all' changes the behavior to skip over problematic records."},
    {"errors.log.enable", SAMSA_CONFIG_BOOLEAN, "false", 0, "Error Handling",
     "If true, write each error and the details of the failed operation and problematic record to the Connect application log."},
    {"errors.log.include.messages", SAMSA_CONFIG_BOOLEAN, "false", 0, "Error Handling",
     "Whether to include in the log the Connect record that resulted in a failure."},
};

static const def_t sink_defs[] = {
    {"topics", SAMSA_CONFIG_LIST, "", 0, "Common", "List of topics to consume, separated by commas"},
    {"topics.regex", SAMSA_CONFIG_STRING, "", 0, "Common",
     "Regular expression giving topics to consume."},
    {"errors.deadletterqueue.topic.name", SAMSA_CONFIG_STRING, "", 0, "Error Handling",
     "The name of the topic to be used as the dead letter queue (DLQ) for messages that result in an error when processed by this sink connector."},
    {"errors.deadletterqueue.topic.replication.factor", SAMSA_CONFIG_SHORT, "3", 0, "Error Handling",
     "Replication factor used to create the dead letter queue topic when it doesn't already exist."},
    {"errors.deadletterqueue.context.headers.enable", SAMSA_CONFIG_BOOLEAN, "false", 0, "Error Handling",
     "If true, add headers containing error context to the messages written to the dead letter queue."},
};

static const def_t source_defs[] = {
    {"topic.creation.groups", SAMSA_CONFIG_LIST, "", 0, "Topic Creation",
     "Groups of configurations for topics created by source connectors"},
    {"exactly.once.support", SAMSA_CONFIG_STRING, "requested", 0, "Exactly Once Support",
     "Permitted values are requested, required."},
    {"transaction.boundary", SAMSA_CONFIG_STRING, "poll", 0, "Exactly Once Support",
     "Permitted values are: poll, interval, connector."},
    {"offsets.storage.topic", SAMSA_CONFIG_STRING, NULL, 0, "offsets.topic",
     "The name of a separate offsets topic to use for this connector."},
};

static const char *type_name(samsa_connect_config_type_t t)
{
    switch (t) {
    case SAMSA_CONFIG_BOOLEAN: return "BOOLEAN";
    case SAMSA_CONFIG_STRING: return "STRING";
    case SAMSA_CONFIG_INT: return "INT";
    case SAMSA_CONFIG_SHORT: return "SHORT";
    case SAMSA_CONFIG_LONG: return "LONG";
    case SAMSA_CONFIG_DOUBLE: return "DOUBLE";
    case SAMSA_CONFIG_LIST: return "LIST";
    case SAMSA_CONFIG_CLASS: return "CLASS";
    case SAMSA_CONFIG_PASSWORD: return "PASSWORD";
    }
    return "STRING";
}

static const char *importance_name(samsa_connect_importance_t i)
{
    return i == SAMSA_IMPORTANCE_HIGH ? "HIGH" : i == SAMSA_IMPORTANCE_MEDIUM ? "MEDIUM" : "LOW";
}

/* A type check of value; NULL if fine, else a static reason. */
static const char *type_error(samsa_connect_config_type_t t, const char *v)
{
    char *end;
    switch (t) {
    case SAMSA_CONFIG_BOOLEAN:
        return strcasecmp(v, "true") == 0 || strcasecmp(v, "false") == 0
                   ? NULL
                   : "Expected value to be either true or false";
    case SAMSA_CONFIG_INT:
    case SAMSA_CONFIG_SHORT:
    case SAMSA_CONFIG_LONG: {
        errno = 0;
        long long x = strtoll(v, &end, 10);
        if (!*v || *end || errno)
            return t == SAMSA_CONFIG_INT ? "Not a number of type INT"
                   : t == SAMSA_CONFIG_SHORT ? "Not a number of type SHORT"
                                             : "Not a number of type LONG";
        if (t == SAMSA_CONFIG_INT && (x < INT32_MIN || x > INT32_MAX))
            return "Not a number of type INT";
        if (t == SAMSA_CONFIG_SHORT && (x < INT16_MIN || x > INT16_MAX))
            return "Not a number of type SHORT";
        return NULL;
    }
    case SAMSA_CONFIG_DOUBLE:
        strtod(v, &end);
        return !*v || *end ? "Not a number of type DOUBLE" : NULL;
    default:
        return NULL;
    }
}

typedef struct vstate {
    json_t *configs;
    json_t *groups;
    json_t *config; /* the user's */
    int error_count;
    int order;
} vstate_t;

/* Add one definition and its value; returns the value's "errors" array (borrowed). */
static json_t *add_entry(vstate_t *vs, const char *name, samsa_connect_config_type_t type,
                         const char *dflt, int required, const char *importance, const char *group,
                         const char *doc, bool non_empty)
{
    if (group && !json_array_size(vs->groups))
        json_array_append_new(vs->groups, json_string(group));
    else if (group) {
        bool seen = false;
        size_t i;
        json_t *g;
        json_array_foreach(vs->groups, i, g) if (strcmp(json_string_value(g), group) == 0) seen = true;
        if (!seen)
            json_array_append_new(vs->groups, json_string(group));
    }
    json_t *def = json_pack("{s:s, s:s, s:b, s:o, s:s, s:s, s:o, s:s, s:s, s:[], s:i}", "name", name,
                            "type", type_name(type), "required", required, "default_value",
                            dflt ? json_string(dflt) : json_null(), "importance", importance,
                            "documentation", doc ? doc : "", "group", group ? json_string(group) : json_null(),
                            "width", "NONE", "display_name", name, "dependents", "order", ++vs->order);
    const char *v = cn_cfg_str(vs->config, name);
    json_t *errors = json_array();
    if (!v && required)
        json_array_append_new(errors, json_sprintf("Missing required configuration \"%s\" which has no default value.", name));
    else if (v && non_empty && !*v)
        json_array_append_new(errors, json_sprintf("Invalid value %s for configuration %s: String must be non-empty", v, name));
    else if (v) {
        const char *te = type_error(type, v);
        if (te)
            json_array_append_new(errors, json_sprintf("Invalid value %s for configuration %s: %s", v, name, te));
    }
    json_t *value = json_pack("{s:s, s:o, s:[], s:o, s:b}", "name", name, "value",
                              v ? json_string(type == SAMSA_CONFIG_PASSWORD ? "[hidden]" : v)
                                : (dflt ? json_string(dflt) : json_null()),
                              "recommended_values", "errors", errors, "visible", 1);
    json_array_append_new(vs->configs, json_pack("{s:o, s:o}", "definition", def, "value", value));
    return errors;
}

static json_t *add_def(vstate_t *vs, const def_t *d)
{
    return add_entry(vs, d->name, d->type, d->dflt, d->required, "HIGH", d->group, d->doc, false);
}

static void add_error(json_t *errors, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void add_error(json_t *errors, const char *fmt, ...)
{
    char buf[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf, sizeof buf, fmt, ap);
    va_end(ap);
    json_array_append_new(errors, json_string(buf));
}

/* The errors array of key in configs (borrowed), or NULL. */
static json_t *errors_of(vstate_t *vs, const char *key)
{
    size_t i;
    json_t *c;
    json_array_foreach(vs->configs, i, c) {
        json_t *v = json_object_get(c, "value");
        if (strcmp(json_string_value(json_object_get(v, "name")), key) == 0)
            return json_object_get(v, "errors");
    }
    return NULL;
}

/* The transform chain (smt.c): its first problem, on the key it names. */
static void check_transforms(vstate_t *vs, json_t *config)
{
    char key[400] = "", err[1024] = "";
    cn_chain_t *c = cn_chain_new(config, key, sizeof key, err, sizeof err);
    if (c) {
        cn_chain_free(c);
        return;
    }
    json_t *errs = errors_of(vs, key);
    if (!errs)
        errs = add_entry(vs, key, SAMSA_CONFIG_STRING, NULL, 0, "HIGH",
                         strncmp(key, "predicates", 10) == 0 ? "Predicates" : "Transforms", "", false);
    add_error(errs, "%s", err);
}

/* Kafka's SinkConnectorConfig: the DLQ may not be one of the consumed topics. */
static void check_dlq(vstate_t *vs, json_t *config)
{
    const char *dlq = cn_cfg_str(config, "errors.deadletterqueue.topic.name");
    const char *topics = cn_cfg_str(config, "topics");
    if (!dlq || !*dlq || !topics)
        return;
    char *copy = strdup(topics), *save = NULL;
    if (!copy)
        abort();
    for (char *tok = strtok_r(copy, ", ", &save); tok; tok = strtok_r(NULL, ", ", &save))
        if (strcmp(tok, dlq) == 0) {
            add_error(errors_of(vs, "errors.deadletterqueue.topic.name"),
                      "The DLQ topic '%s' may not be included in the list of topics ('topics=%s') consumed by the connector",
                      dlq, topics);
            break;
        }
    free(copy);
}

json_t *cn_validate(cn_worker_t *w, const samsa_connect_plugin_t *plugin, json_t *config,
                    int *error_count)
{
    vstate_t vs = {json_array(), json_array(), config, 0, 0};
    json_t *e;
    for (size_t i = 0; i < sizeof common_defs / sizeof *common_defs; i++) {
        e = add_def(&vs, &common_defs[i]);
        const char *name = common_defs[i].name;
        const char *v = cn_cfg_str(config, name);
        if (!v || json_array_size(e))
            continue;
        if (strcmp(name, "tasks.max") == 0 && atoll(v) < 1)
            add_error(e, "Invalid value %s for configuration tasks.max: Value must be at least 1", v);
        else if (strcmp(name, "errors.tolerance") == 0 && strcasecmp(v, "none") != 0 &&
                 strcasecmp(v, "all") != 0)
            add_error(e, "Invalid value %s for configuration errors.tolerance: String must be one of: none, all", v);
        else if ((strcmp(name, "key.converter") == 0 || strcmp(name, "value.converter") == 0 ||
                  strcmp(name, "header.converter") == 0) && *v) {
            cn_converter_t cv;
            char err[256];
            bool header = strcmp(name, "header.converter") == 0;
            if (header && strcmp(v, "org.apache.kafka.connect.storage.SimpleHeaderConverter") == 0)
                continue;
            if (!cn_converter_init(&cv, v, NULL, false, err, sizeof err))
                add_error(e, "Invalid value %s for configuration %s: Class %s could not be found.", v, name, v);
        } else if (strcmp(name, "name") == 0 && !*v)
            add_error(e, "Invalid value %s for configuration name: String must be non-empty", v);
    }
    check_transforms(&vs, config);
    const char *cls = cn_cfg_str(config, "connector.class");
    if (!plugin && cls) {
        char *names = cn_plugins_names(w->plugins);
        add_error(errors_of(&vs, "connector.class"),
                  "Failed to find any class that implements Connector and which name matches %s, available connectors are: %s",
                  cls, names);
        free(names);
    }
    if (plugin && plugin->type == SAMSA_CONNECT_SINK) {
        for (size_t i = 0; i < sizeof sink_defs / sizeof *sink_defs; i++)
            add_def(&vs, &sink_defs[i]);
        const char *topics = cn_cfg_str(config, "topics"), *regex = cn_cfg_str(config, "topics.regex");
        bool has_t = topics && *topics, has_r = regex && *regex;
        if (has_t && has_r) {
            add_error(errors_of(&vs, "topics"), "topics and topics.regex are mutually exclusive options, but both are set.");
            add_error(errors_of(&vs, "topics.regex"), "topics and topics.regex are mutually exclusive options, but both are set.");
        } else if (!has_t && !has_r) {
            add_error(errors_of(&vs, "topics"), "Must configure one of topics or topics.regex");
            add_error(errors_of(&vs, "topics.regex"), "Must configure one of topics or topics.regex");
        }
        check_dlq(&vs, config);
    } else if (plugin) {
        for (size_t i = 0; i < sizeof source_defs / sizeof *source_defs; i++)
            add_def(&vs, &source_defs[i]);
    }
    if (plugin) {
        for (size_t i = 0; i < plugin->config_def_count; i++) {
            const samsa_connect_config_def_t *d = &plugin->config_defs[i];
            if (!d->name || errors_of(&vs, d->name))
                continue;
            add_entry(&vs, d->name, d->type, d->default_value, d->required,
                      importance_name(d->importance), NULL, d->documentation, d->non_empty);
        }
        if (plugin->validate) {
            cn_ctx_t ctx;
            cn_ctx_init(&ctx, CN_CTX_CONFIG, w, cn_cfg_str(config, "name"), plugin);
            samsa_connect_config_t pc = cn_plugin_config(config);
            plugin->validate(&ctx.base, &pc);
            cn_plugin_config_free(&pc);
            const char *k;
            json_t *msgs;
            json_object_foreach(ctx.errors, k, msgs) {
                json_t *errs = errors_of(&vs, k);
                if (!errs)
                    errs = add_entry(&vs, k, SAMSA_CONFIG_STRING, NULL, 0, "LOW", NULL, "", false);
                json_array_extend(errs, msgs);
            }
            cn_ctx_done(&ctx);
        }
    }
    size_t i;
    json_t *c;
    json_array_foreach(vs.configs, i, c)
        if (json_array_size(json_object_get(json_object_get(c, "value"), "errors")))
            vs.error_count++;
    *error_count = vs.error_count;
    return json_pack("{s:s, s:i, s:o, s:o}", "name",
                     plugin ? plugin->class_name : (cls ? cls : ""), "error_count", vs.error_count,
                     "groups", vs.groups, "configs", vs.configs);
}

json_t *cn_plugin_config_defs(const samsa_connect_plugin_t *plugin)
{
    json_t *a = json_array();
    for (size_t i = 0; i < plugin->config_def_count; i++) {
        const samsa_connect_config_def_t *d = &plugin->config_defs[i];
        json_array_append_new(
            a, json_pack("{s:s, s:s, s:b, s:o, s:s, s:s, s:o, s:s, s:s, s:[], s:i}", "name", d->name,
                         "type", type_name(d->type), "required", d->required, "default_value",
                         d->default_value ? json_string(d->default_value) : json_null(), "importance",
                         importance_name(d->importance), "documentation",
                         d->documentation ? d->documentation : "", "group", json_null(), "width",
                         "NONE", "display_name", d->name, "dependents", "order", (int)i + 1));
    }
    return a;
}

char *cn_validate_message(json_t *infos, int error_count)
{
    size_t cap = 256, len = 0;
    char *s = malloc(cap);
    if (!s)
        abort();
    len = (size_t)snprintf(s, cap, "Connector configuration is invalid and contains the following %d error(s):",
                           error_count);
    size_t i;
    json_t *c;
    json_array_foreach(json_object_get(infos, "configs"), i, c) {
        size_t k;
        json_t *m;
        json_array_foreach(json_object_get(json_object_get(c, "value"), "errors"), k, m) {
            const char *msg = json_string_value(m);
            size_t need = len + strlen(msg) + 2;
            if (need > cap) {
                cap = need * 2;
                s = realloc(s, cap);
                if (!s)
                    abort();
            }
            len += (size_t)snprintf(s + len, cap - len, "\n%s", msg);
        }
    }
    const char *tail = "\nYou can also find the above list of errors at the endpoint `/connector-plugins/{connectorType}/config/validate`";
    s = realloc(s, len + strlen(tail) + 1);
    if (!s)
        abort();
    strcpy(s + len, tail);
    return s;
}
