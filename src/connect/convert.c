/*
 * convert.c - Kafka Connect's converters: Connect data <-> record bytes.
 *
 *  org.apache.kafka.connect.json.JsonConverter (schemas.enable, default true): with
 *    schemas the bytes are the envelope {"schema":<Connect schema>,"payload":<value>}
 *    and reading refuses anything else with Kafka's message; without, the bare value.
 *    Bytes values are base64 strings, as in Kafka; a null key/value with no schema is
 *    a null record key/value (a tombstone), as Kafka's fromConnectData.
 *  org.apache.kafka.connect.storage.StringConverter: UTF-8 text; reads give an
 *    optional string schema.
 *  org.apache.kafka.connect.converters.ByteArrayConverter: bytes as they are; reads
 *    give an optional bytes schema. Strings are written as their UTF-8 bytes (Kafka
 *    refuses a string schema here); structured (JSON kind) values are refused, as Kafka.
 * Simple names (JsonConverter, StringConverter, ByteArrayConverter) are accepted too.
 * Pure functions; any thread.
 */
#define _GNU_SOURCE
#include "cn.h"
#include "smt.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

const char *const cn_converter_classes[] = {
    "org.apache.kafka.connect.json.JsonConverter",
    "org.apache.kafka.connect.storage.StringConverter",
    "org.apache.kafka.connect.converters.ByteArrayConverter",
    NULL,
};

static const char *simple_name(const char *c)
{
    const char *dot = strrchr(c, '.');
    return dot ? dot + 1 : c;
}

bool cn_converter_init(cn_converter_t *cv, const char *class_name, json_t *props, bool is_key,
                       char *err, size_t err_len)
{
    memset(cv, 0, sizeof *cv);
    cv->is_key = is_key;
    if (!class_name) {
        snprintf(err, err_len, "no converter class");
        return false;
    }
    const char *s = simple_name(class_name);
    bool full = strchr(class_name, '.') != NULL;
    if (strcmp(s, "JsonConverter") == 0 &&
        (!full || strcmp(class_name, cn_converter_classes[0]) == 0))
        cv->kind = CN_CONV_JSON;
    else if (strcmp(s, "StringConverter") == 0 &&
             (!full || strcmp(class_name, cn_converter_classes[1]) == 0))
        cv->kind = CN_CONV_STRING;
    else if (strcmp(s, "ByteArrayConverter") == 0 &&
             (!full || strcmp(class_name, cn_converter_classes[2]) == 0))
        cv->kind = CN_CONV_BYTES;
    else {
        snprintf(err, err_len, "Class %s could not be found.", class_name);
        return false;
    }
    if (!cn_cfg_bool(props, "schemas.enable", true, &cv->schemas_enable)) {
        snprintf(err, err_len, "Invalid value %s for configuration schemas.enable: Expected value to be either true or false",
                 cn_cfg_str(props, "schemas.enable"));
        return false;
    }
    return true;
}

void cn_value_free(cn_value_t *v)
{
    free(v->buf);
    free(v->schema);
    memset(v, 0, sizeof *v);
}

/* ---------------------------------------------------------------- base64 */

static const char b64[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

static char *b64_encode(const unsigned char *p, size_t n, size_t *out_len)
{
    size_t m = 4 * ((n + 2) / 3);
    char *o = malloc(m + 1), *q = o;
    if (!o)
        abort();
    size_t i = 0;
    for (; i + 2 < n; i += 3) {
        unsigned v = (unsigned)p[i] << 16 | (unsigned)p[i + 1] << 8 | p[i + 2];
        *q++ = b64[v >> 18];
        *q++ = b64[(v >> 12) & 63];
        *q++ = b64[(v >> 6) & 63];
        *q++ = b64[v & 63];
    }
    if (i < n) {
        unsigned v = (unsigned)p[i] << 16 | (i + 1 < n ? (unsigned)p[i + 1] << 8 : 0);
        *q++ = b64[v >> 18];
        *q++ = b64[(v >> 12) & 63];
        *q++ = i + 1 < n ? b64[(v >> 6) & 63] : '=';
        *q++ = '=';
    }
    *q = 0;
    *out_len = (size_t)(q - o);
    return o;
}

char *cn_base64_encode(const void *p, size_t n, size_t *out_len)
{
    return b64_encode(p, n, out_len);
}

static int b64_val(char c)
{
    if (c >= 'A' && c <= 'Z')
        return c - 'A';
    if (c >= 'a' && c <= 'z')
        return c - 'a' + 26;
    if (c >= '0' && c <= '9')
        return c - '0' + 52;
    if (c == '+' || c == '-')
        return 62;
    if (c == '/' || c == '_')
        return 63;
    return -1;
}

static char *b64_decode(const char *s, size_t n, size_t *out_len)
{
    while (n && s[n - 1] == '=')
        n--;
    char *o = malloc(n * 3 / 4 + 3), *q = o;
    if (!o)
        abort();
    unsigned acc = 0;
    int bits = 0;
    for (size_t i = 0; i < n; i++) {
        int v = b64_val(s[i]);
        if (v < 0) {
            free(o);
            return NULL;
        }
        acc = acc << 6 | (unsigned)v;
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            *q++ = (char)(acc >> bits);
            acc &= (1u << bits) - 1;
        }
    }
    *out_len = (size_t)(q - o);
    return o;
}

/* ---------------------------------------------------------------- helpers */

static char *memdup(const void *p, size_t n)
{
    char *o = malloc(n + 1);
    if (!o)
        abort();
    if (n)
        memcpy(o, p, n);
    o[n] = 0;
    return o;
}

static void set_owned(cn_value_t *out, samsa_connect_kind_t kind, char *buf, size_t len,
                      char *schema)
{
    out->buf = buf;
    out->schema = schema;
    out->v.kind = kind;
    out->v.data = buf;
    out->v.len = len;
    out->v.schema = schema;
}

/* The payload of v as a JSON value (new ref), or NULL with err. */
static json_t *payload_json(const samsa_connect_value_t *v, char *err, size_t err_len)
{
    switch (v->kind) {
    case SAMSA_VALUE_NULL:
        return json_null();
    case SAMSA_VALUE_STRING: {
        json_t *s = json_stringn_nocheck(v->data ? v->data : "", v->len);
        return s;
    }
    case SAMSA_VALUE_BYTES: {
        size_t n;
        char *e = b64_encode((const unsigned char *)v->data, v->len, &n);
        json_t *s = json_stringn(e, n);
        free(e);
        return s;
    }
    case SAMSA_VALUE_JSON: {
        json_error_t je;
        json_t *j = json_loadb(v->data ? v->data : "", v->len, JSON_DECODE_ANY | JSON_ALLOW_NUL, &je);
        if (!j)
            snprintf(err, err_len, "Converting Kafka Connect data to byte[] failed due to serialization error: %s",
                     je.text);
        return j;
    }
    }
    snprintf(err, err_len, "unknown value kind %d", (int)v->kind);
    return NULL;
}

int cn_convert_from_connect(const cn_converter_t *cv, const samsa_connect_value_t *v, char **out,
                            size_t *out_len, char *err, size_t err_len)
{
    *out = NULL;
    *out_len = 0;
    switch (cv->kind) {
    case CN_CONV_STRING:
    case CN_CONV_BYTES:
        if (v->kind == SAMSA_VALUE_NULL)
            return 0;
        if (cv->kind == CN_CONV_BYTES && v->kind == SAMSA_VALUE_JSON) {
            snprintf(err, err_len, "ByteArrayConverter is not compatible with objects of type %s",
                     v->schema ? v->schema : "(schemaless structured value)");
            return -1;
        }
        *out = memdup(v->data, v->len);
        *out_len = v->len;
        return 0;
    case CN_CONV_JSON:
        break;
    }
    if (v->kind == SAMSA_VALUE_NULL && !v->schema)
        return 0;
    json_t *payload = payload_json(v, err, err_len);
    if (!payload)
        return -1;
    json_t *doc = payload;
    if (cv->schemas_enable) {
        json_t *schema = json_null();
        if (v->schema) {
            json_error_t je;
            schema = json_loads(v->schema, 0, &je);
            if (!schema) {
                snprintf(err, err_len, "invalid Connect schema: %s", je.text);
                json_decref(payload);
                return -1;
            }
        }
        doc = json_object();
        json_object_set_new(doc, "schema", schema);
        json_object_set_new(doc, "payload", payload);
    }
    char *text = json_dumps(doc, JSON_COMPACT | JSON_ENCODE_ANY);
    json_decref(doc);
    if (!text) {
        snprintf(err, err_len, "Converting Kafka Connect data to byte[] failed: not valid UTF-8");
        return -1;
    }
    *out = text;
    *out_len = strlen(text);
    return 0;
}

/* Turn a JSON payload with an optional schema (object or NULL) into Connect data. */
static int from_payload(json_t *schema, json_t *payload, cn_value_t *out, char *err, size_t err_len)
{
    char *schema_text = NULL;
    const char *type = NULL;
    if (json_is_object(schema)) {
        type = json_string_value(json_object_get(schema, "type"));
        if (!type) {
            snprintf(err, err_len, "Schema must contain 'type' field");
            return -1;
        }
        schema_text = json_dumps(schema, JSON_COMPACT);
    } else if (schema && !json_is_null(schema)) {
        snprintf(err, err_len, "Schema must be a JSON object");
        return -1;
    }
    if (!payload || json_is_null(payload)) {
        set_owned(out, SAMSA_VALUE_NULL, NULL, 0, schema_text);
        return 0;
    }
    if (json_is_string(payload) && (!type || strcmp(type, "string") == 0)) {
        set_owned(out, SAMSA_VALUE_STRING, memdup(json_string_value(payload), json_string_length(payload)),
                  json_string_length(payload), schema_text);
        return 0;
    }
    if (type && strcmp(type, "bytes") == 0) {
        size_t n = 0;
        char *b = json_is_string(payload)
                      ? b64_decode(json_string_value(payload), json_string_length(payload), &n)
                      : NULL;
        if (!b) {
            free(schema_text);
            snprintf(err, err_len, "Invalid bytes field");
            return -1;
        }
        set_owned(out, SAMSA_VALUE_BYTES, b, n, schema_text);
        return 0;
    }
    if (type && strcmp(type, "string") == 0) {
        free(schema_text);
        snprintf(err, err_len, "Invalid JSON for string type: expected a string");
        return -1;
    }
    char *text = json_dumps(payload, JSON_COMPACT | JSON_ENCODE_ANY);
    set_owned(out, SAMSA_VALUE_JSON, text, strlen(text), schema_text);
    return 0;
}

int cn_convert_to_connect(const cn_converter_t *cv, const void *data, size_t len, cn_value_t *out,
                          char *err, size_t err_len)
{
    memset(out, 0, sizeof *out);
    switch (cv->kind) {
    case CN_CONV_STRING:
        set_owned(out, data ? SAMSA_VALUE_STRING : SAMSA_VALUE_NULL, data ? memdup(data, len) : NULL,
                  data ? len : 0, memdup("{\"type\":\"string\",\"optional\":true}", 33));
        return 0;
    case CN_CONV_BYTES:
        set_owned(out, data ? SAMSA_VALUE_BYTES : SAMSA_VALUE_NULL, data ? memdup(data, len) : NULL,
                  data ? len : 0, memdup("{\"type\":\"bytes\",\"optional\":true}", 32));
        return 0;
    case CN_CONV_JSON:
        break;
    }
    if (!data)
        return 0; /* a tombstone: null, no schema */
    json_error_t je;
    json_t *doc = json_loadb(data, len, JSON_DECODE_ANY, &je);
    if (!doc) {
        snprintf(err, err_len, "Converting byte[] to Kafka Connect data failed due to serialization error: %s",
                 je.text);
        return -1;
    }
    int rc;
    if (cv->schemas_enable) {
        if (!json_is_object(doc) || json_object_size(doc) != 2 || !json_object_get(doc, "schema") ||
            !json_object_get(doc, "payload")) {
            snprintf(err, err_len,
                     "JsonConverter with schemas.enable requires \"schema\" and \"payload\" fields and may "
                     "not contain additional fields. If you are trying to deserialize plain JSON data, set "
                     "schemas.enable=false in your converter configuration.");
            rc = -1;
        } else {
            rc = from_payload(json_object_get(doc, "schema"), json_object_get(doc, "payload"), out, err,
                              err_len);
        }
    } else {
        rc = from_payload(NULL, doc, out, err, err_len);
    }
    json_decref(doc);
    return rc;
}
