/*
 * config.c - the worker's configuration (Kafka Connect's worker keys) and small
 * helpers for string-valued config objects.
 *
 * Keys read here: bootstrap.servers, key.converter, value.converter (required, as in
 * Kafka), header.converter, offset.storage.file.filename (required in standalone),
 * group.id (distributed mode when set; its other keys are read by dist.c),
 * offset.flush.interval.ms, offset.flush.timeout.ms, task.shutdown.graceful.timeout.ms,
 * plugin.path, listeners (default http://:8083), rest.advertised.host.name and
 * rest.advertised.port. Converter keys ("value.converter.schemas.enable"), client keys
 * ("producer.*", "consumer.*", "admin.*") and errors.* defaults are read where they are
 * used, from cfg.props. Unknown keys are kept and ignored, as Kafka does.
 */
#define _GNU_SOURCE
#include "cn.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

const char *cn_cfg_str(json_t *obj, const char *key)
{
    return json_string_value(json_object_get(obj, key));
}

bool cn_cfg_i64(json_t *obj, const char *key, int64_t dflt, int64_t *out)
{
    const char *s = cn_cfg_str(obj, key);
    *out = dflt;
    if (!s)
        return true;
    while (*s == ' ')
        s++;
    if (!*s)
        return false;
    char *end;
    errno = 0;
    long long v = strtoll(s, &end, 10);
    while (*end == ' ')
        end++;
    if (errno || *end)
        return false;
    *out = v;
    return true;
}

bool cn_cfg_bool(json_t *obj, const char *key, bool dflt, bool *out)
{
    const char *s = cn_cfg_str(obj, key);
    *out = dflt;
    if (!s)
        return true;
    if (strcasecmp(s, "true") == 0)
        *out = true;
    else if (strcasecmp(s, "false") == 0)
        *out = false;
    else
        return false;
    return true;
}

json_t *cn_config_with_prefix(json_t *obj, const char *prefix)
{
    json_t *out = json_object();
    size_t n = strlen(prefix);
    const char *k;
    json_t *v;
    json_object_foreach(obj, k, v) {
        if (strncmp(k, prefix, n) == 0 && k[n])
            json_object_set(out, k + n, v);
    }
    return out;
}

/* "http://host:port[,...]": the first listener's host and port. */
static bool parse_listeners(const char *s, char *host, size_t host_len, int *port, char *err,
                            size_t err_len)
{
    while (*s == ' ')
        s++;
    const char *end = strchr(s, ',');
    size_t n = end ? (size_t)(end - s) : strlen(s);
    char one[512];
    if (n >= sizeof one)
        n = sizeof one - 1;
    memcpy(one, s, n);
    one[n] = 0;
    while (n && one[n - 1] == ' ')
        one[--n] = 0;
    if (strncasecmp(one, "https://", 8) == 0) {
        snprintf(err, err_len, "listeners: https is not supported yet (%s)", one);
        return false;
    }
    if (strncasecmp(one, "http://", 7) != 0) {
        snprintf(err, err_len, "listeners: '%s' is not of the form http://host:port", one);
        return false;
    }
    char *hp = one + 7;
    char *colon;
    if (*hp == '[') {
        char *rb = strchr(hp, ']');
        if (!rb || rb[1] != ':') {
            snprintf(err, err_len, "listeners: bad address '%s'", one);
            return false;
        }
        *rb = 0;
        snprintf(host, host_len, "%.255s", hp + 1);
        colon = rb + 1;
    } else {
        colon = strrchr(hp, ':');
        if (!colon) {
            snprintf(err, err_len, "listeners: '%s' has no port", one);
            return false;
        }
        *colon = 0;
        snprintf(host, host_len, "%.255s", hp);
    }
    char *pe;
    long p = strtol(colon + 1, &pe, 10);
    if (*pe || p < 0 || p > 65535) {
        snprintf(err, err_len, "listeners: bad port in '%s'", s);
        return false;
    }
    *port = (int)p;
    return true;
}

bool cn_worker_config_load(cn_worker_config_t *c, const char *path, char *err, size_t err_len)
{
    memset(c, 0, sizeof *c);
    size_t len;
    char *text = cn_read_file(path, &len, err, err_len);
    if (!text)
        return false;
    c->props = cn_props_parse(text, len);
    free(text);
    json_t *p = c->props;
    /* Distributed mode is chosen by group.id, the key only a distributed worker has;
     * it needs the storage topics (checked by dist.c) instead of the offset file. */
    c->distributed = cn_cfg_str(p, "group.id") && *cn_cfg_str(p, "group.id");
    static const char *const required[] = {"key.converter", "value.converter",
                                           "offset.storage.file.filename"};
    for (size_t i = 0; i < sizeof required / sizeof *required - (c->distributed ? 1 : 0); i++)
        if (!cn_cfg_str(p, required[i]) || !*cn_cfg_str(p, required[i])) {
            snprintf(err, err_len, "Missing required configuration \"%s\" which has no default value.",
                     required[i]);
            return false;
        }
    /* A converter class that does not exist stops start-up, as in Kafka (not each task). */
    static const char *const convs[] = {"key", "value"};
    for (int i = 0; i < 2; i++) {
        char key[32], prefix[40], e[256];
        snprintf(key, sizeof key, "%s.converter", convs[i]);
        snprintf(prefix, sizeof prefix, "%s.converter.", convs[i]);
        json_t *cp = cn_config_with_prefix(p, prefix);
        cn_converter_t cv;
        bool ok = cn_converter_init(&cv, cn_cfg_str(p, key), cp, i == 0, e, sizeof e);
        json_decref(cp);
        if (!ok) {
            snprintf(err, err_len, "Invalid value %s for configuration %s: %s", cn_cfg_str(p, key), key, e);
            return false;
        }
    }
    c->bootstrap = cn_cfg_str(p, "bootstrap.servers");
    if (!c->bootstrap)
        c->bootstrap = "localhost:9092";
    c->offset_file = cn_cfg_str(p, "offset.storage.file.filename");
    c->plugin_path = cn_cfg_str(p, "plugin.path");
    struct {
        const char *key;
        int64_t dflt;
        int64_t *out;
    } nums[] = {
        {"offset.flush.interval.ms", 60000, &c->offset_flush_interval_ms},
        {"offset.flush.timeout.ms", 5000, &c->offset_flush_timeout_ms},
        {"task.shutdown.graceful.timeout.ms", 5000, &c->task_shutdown_timeout_ms},
    };
    for (size_t i = 0; i < sizeof nums / sizeof *nums; i++)
        if (!cn_cfg_i64(p, nums[i].key, nums[i].dflt, nums[i].out) || *nums[i].out < 0) {
            snprintf(err, err_len, "Invalid value %s for configuration %s: Not a non-negative number",
                     cn_cfg_str(p, nums[i].key), nums[i].key);
            return false;
        }
    if (c->offset_flush_interval_ms < 1)
        c->offset_flush_interval_ms = 1;
    const char *listeners = cn_cfg_str(p, "listeners");
    if (!listeners || !*listeners) {
        /* Kafka's older keys, then its default http://:8083. */
        const char *h = cn_cfg_str(p, "rest.host.name");
        int64_t port;
        if (!cn_cfg_i64(p, "rest.port", 8083, &port) || port < 0 || port > 65535) {
            snprintf(err, err_len, "Invalid value for configuration rest.port");
            return false;
        }
        snprintf(c->listen_host, sizeof c->listen_host, "%s", h ? h : "");
        c->listen_port = (int)port;
    } else if (!parse_listeners(listeners, c->listen_host, sizeof c->listen_host,
                                &c->listen_port, err, err_len)) {
        return false;
    }
    return true;
}

void cn_worker_config_free(cn_worker_config_t *c)
{
    json_decref(c->props);
    memset(c, 0, sizeof *c);
}
