/*
 * smt_xf.c - the transforms of Kafka Connect's org.apache.kafka.connect.transforms
 * package, with their config keys and semantics: InsertField, ReplaceField, MaskField,
 * Cast, ExtractField, HoistField (each with $Key and $Value), ValueToKey, Flatten
 * ($Key/$Value), RegexRouter, TimestampRouter, TimestampConverter ($Key/$Value),
 * Filter, DropHeaders, InsertHeader, HeaderFrom ($Key/$Value).
 *
 * With a schema, a struct value is a JSON object whose schema is
 * {"type":"struct","fields":[{"field":"a","type":"int32","optional":false},...]}, and
 * each transform keeps the schema in step with the value (InsertField adds optional
 * fields, ReplaceField drops/renames them, Cast changes their type, ...). Without a
 * schema a struct is just a map (a JSON object). Tombstones (null values) pass
 * through the field transforms unchanged, as in Kafka.
 *
 * Date patterns (TimestampRouter, TimestampConverter) are a subset of Java's
 * SimpleDateFormat, always in UTC: yyyy yy MM dd HH mm ss SSS and 'quoted text'.
 */
#define _GNU_SOURCE
#include "smt_int.h"

#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#define TS_LOGICAL "org.apache.kafka.connect.data.Timestamp"
#define DATE_LOGICAL "org.apache.kafka.connect.data.Date"
#define TIME_LOGICAL "org.apache.kafka.connect.data.Time"
#define DAY_MS 86400000LL

/* ------------------------------------------------------------------ helpers */

static bool cfg_err(char *key, size_t key_len, char *err, size_t err_len, const smt_t *t, const char *k,
                    const char *value, const char *why)
{
    snprintf(key, key_len, "%s%s", t->prefix, k);
    if (!value)
        snprintf(err, err_len, "Missing required configuration \"%s%s\" which has no default value.", t->prefix, k);
    else
        snprintf(err, err_len, "Invalid value %s for configuration %s%s: %s", value, t->prefix, k, why);
    return false;
}

/* The operand: the record's key or value, by the transform's variant. */
typedef struct opnd {
    json_t **v;
    json_t **s;
    bool *bytes;
} opnd_t;

static opnd_t op(smt_t *t, cn_record_t *r)
{
    return t->is_key ? (opnd_t){&r->key, &r->key_schema, &r->key_bytes}
                     : (opnd_t){&r->value, &r->value_schema, &r->value_bytes};
}

static void set_v(opnd_t o, json_t *v)
{
    json_decref(*o.v);
    *o.v = v;
    *o.bytes = false;
}

static void set_s(opnd_t o, json_t *s)
{
    json_decref(*o.s);
    *o.s = s;
}

static const char *stype(json_t *s)
{
    const char *t = s ? json_string_value(json_object_get(s, "type")) : NULL;
    return t ? t : "";
}

static const char *sname(json_t *s)
{
    const char *n = s ? json_string_value(json_object_get(s, "name")) : NULL;
    return n ? n : "";
}

static const char *jtype(json_t *v)
{
    switch (json_typeof(v)) {
    case JSON_OBJECT: return "java.util.HashMap";
    case JSON_ARRAY: return "java.util.ArrayList";
    case JSON_STRING: return "java.lang.String";
    case JSON_INTEGER: return "java.lang.Long";
    case JSON_REAL: return "java.lang.Double";
    case JSON_TRUE:
    case JSON_FALSE: return "java.lang.Boolean";
    default: return "null";
    }
}

/* Check that the operand is a struct (schema) or a map (schemaless) for purpose. */
static bool need_struct(opnd_t o, const char *purpose, char *err, size_t err_len)
{
    if (*o.s) {
        if (strcmp(stype(*o.s), "struct") != 0 || !json_is_object(*o.v)) {
            snprintf(err, err_len, "Only Struct objects supported for [%s], found: %s", purpose,
                     *o.s ? stype(*o.s) : jtype(*o.v));
            return false;
        }
        return true;
    }
    if (!json_is_object(*o.v)) {
        snprintf(err, err_len, "Only Map objects supported in absence of schema for [%s], found: %s", purpose,
                 jtype(*o.v));
        return false;
    }
    return true;
}

/* The field named name in a struct schema (borrowed), or NULL. */
static json_t *sfield(json_t *schema, const char *name)
{
    size_t i;
    json_t *f;
    json_array_foreach(json_object_get(schema, "fields"), i, f) {
        const char *n = json_string_value(json_object_get(f, "field"));
        if (n && strcmp(n, name) == 0)
            return f;
    }
    return NULL;
}

/* A struct schema with old's basics (name, version, doc, optional) and no fields. */
static json_t *struct_like(json_t *old)
{
    json_t *s = json_pack("{s:s, s:[]}", "type", "struct", "fields");
    const char *keys[] = {"name", "version", "doc", "optional", "parameters"};
    for (size_t i = 0; i < 5; i++) {
        json_t *v = old ? json_object_get(old, keys[i]) : NULL;
        if (v)
            json_object_set(s, keys[i], v);
    }
    if (!json_object_get(s, "optional"))
        json_object_set_new(s, "optional", json_false());
    return s;
}

/* A field schema: a copy of schema with "field": name. */
static json_t *as_field(json_t *schema, const char *name)
{
    json_t *f = json_deep_copy(schema);
    json_object_set_new(f, "field", json_string(name));
    return f;
}

/* A value's schema with the "field" key removed (a copy). */
static json_t *unfield(json_t *field)
{
    json_t *s = json_deep_copy(field);
    json_object_del(s, "field");
    return s;
}

/* ---------------------------------------------------------------- dates */

static bool date_pattern_ok(const char *p, char *why, size_t len)
{
    for (; *p; p++) {
        if (*p == '\'') {
            const char *q = strchr(p + 1, '\'');
            if (!q) {
                snprintf(why, len, "Unterminated quote");
                return false;
            }
            p = q;
            continue;
        }
        if (!isalpha((unsigned char)*p))
            continue;
        size_t n = 1;
        while (p[n] == *p)
            n++;
        bool ok = (*p == 'y' && (n == 2 || n == 4)) || (strchr("MdHms", *p) && n == 2) || (*p == 'S' && n == 3);
        if (!ok) {
            snprintf(why, len, "Unsupported pattern letters '%.*s' (supported: yyyy yy MM dd HH mm ss SSS)", (int)n, p);
            return false;
        }
        p += n - 1;
    }
    return true;
}

static void date_format(const char *p, int64_t ms, char *out, size_t len)
{
    time_t secs = (time_t)(ms >= 0 ? ms / 1000 : (ms - 999) / 1000);
    int msec = (int)(ms - (int64_t)secs * 1000);
    struct tm tm;
    gmtime_r(&secs, &tm);
    size_t o = 0;
    for (; *p && o + 8 < len; p++) {
        if (*p == '\'') {
            for (p++; *p && *p != '\'' && o + 1 < len; p++)
                out[o++] = *p;
            if (!*p)
                break;
            continue;
        }
        if (!isalpha((unsigned char)*p)) {
            out[o++] = *p;
            continue;
        }
        size_t n = 1;
        while (p[n] == *p)
            n++;
        int v = *p == 'y' ? tm.tm_year + 1900 : *p == 'M' ? tm.tm_mon + 1 : *p == 'd' ? tm.tm_mday
              : *p == 'H' ? tm.tm_hour : *p == 'm' ? tm.tm_min : *p == 's' ? tm.tm_sec : msec;
        if (*p == 'y' && n == 2)
            v %= 100;
        o += (size_t)snprintf(out + o, len - o, "%0*d", (int)n, v);
        p += n - 1;
    }
    out[o < len ? o : len - 1] = 0;
}

static bool date_parse(const char *p, const char *s, int64_t *ms)
{
    struct tm tm = {.tm_mday = 1, .tm_year = 70};
    int msec = 0;
    for (; *p; p++) {
        if (*p == '\'') {
            for (p++; *p && *p != '\''; p++, s++)
                if (*s != *p)
                    return false;
            if (!*p)
                break;
            continue;
        }
        if (!isalpha((unsigned char)*p)) {
            if (*s++ != *p)
                return false;
            continue;
        }
        size_t n = 1;
        while (p[n] == *p)
            n++;
        int v = 0;
        for (size_t i = 0; i < n; i++, s++) {
            if (!isdigit((unsigned char)*s))
                return false;
            v = v * 10 + (*s - '0');
        }
        switch (*p) {
        case 'y': tm.tm_year = (n == 2 ? 2000 + v : v) - 1900; break;
        case 'M': tm.tm_mon = v - 1; break;
        case 'd': tm.tm_mday = v; break;
        case 'H': tm.tm_hour = v; break;
        case 'm': tm.tm_min = v; break;
        case 's': tm.tm_sec = v; break;
        default: msec = v; break;
        }
        p += n - 1;
    }
    if (*s)
        return false;
    *ms = (int64_t)timegm(&tm) * 1000 + msec;
    return true;
}

/* ---------------------------------------------------------------- InsertField */

/* "name", "name!" (required) or "name?" (optional, the default). */
static void field_spec(const char *spec, char *name, size_t len, bool *optional)
{
    size_t n = strlen(spec);
    *optional = true;
    if (n && (spec[n - 1] == '!' || spec[n - 1] == '?')) {
        *optional = spec[n - 1] == '?';
        n--;
    }
    snprintf(name, len, "%.*s", (int)n, spec);
}

static bool insert_init(smt_t *t, char *key, size_t kl, char *err, size_t el)
{
    t->s1 = cn_cfg_str(t->cfg, "topic.field");
    t->s2 = cn_cfg_str(t->cfg, "partition.field");
    t->s3 = cn_cfg_str(t->cfg, "offset.field");
    t->s4 = cn_cfg_str(t->cfg, "timestamp.field");
    const char *sf = cn_cfg_str(t->cfg, "static.field");
    const char *sv = cn_cfg_str(t->cfg, "static.value");
    if (sf && *sf && !sv)
        return cfg_err(key, kl, err, el, t, "static.value", "null", "No value specified for static field: static.field");
    if (!(t->s1 && *t->s1) && !(t->s2 && *t->s2) && !(t->s3 && *t->s3) && !(t->s4 && *t->s4) && !(sf && *sf))
        return cfg_err(key, kl, err, el, t, "topic.field", "null",
                       "at least one of topic.field, partition.field, offset.field, timestamp.field, static.field must be set");
    return true;
}

static void insert_one(opnd_t o, json_t *nv, const char *spec, const char *type, const char *logical)
{
    if (!spec || !*spec) {
        json_decref(nv);
        return;
    }
    char name[256];
    bool optional;
    field_spec(spec, name, sizeof name, &optional);
    json_object_set_new(*o.v, name, nv);
    if (*o.s) {
        json_t *fields = json_object_get(*o.s, "fields");
        json_t *f = json_pack("{s:s, s:s, s:b}", "field", name, "type", type, "optional", optional);
        if (logical) {
            json_object_set_new(f, "name", json_string(logical));
            json_object_set_new(f, "version", json_integer(1));
        }
        json_t *old = sfield(*o.s, name);
        size_t i;
        json_t *x;
        json_array_foreach(fields, i, x) if (x == old) {
            json_array_set_new(fields, i, f);
            return;
        }
        json_array_append_new(fields, f);
    }
}

static int insert_apply(smt_t *t, cn_record_t *r, char *err, size_t el)
{
    opnd_t o = op(t, r);
    if (json_is_null(*o.v))
        return 1;
    if (!need_struct(o, "field insertion", err, el))
        return -1;
    if (t->s3 && *t->s3 && r->offset < 0) {
        snprintf(err, el, "Only SinkRecord supported for [field insertion], found: "
                          "org.apache.kafka.connect.source.SourceRecord (offset.field is for sink connectors)");
        return -1;
    }
    json_t *v = json_deep_copy(*o.v), *s = *o.s ? json_deep_copy(*o.s) : NULL;
    set_v(o, v);
    set_s(o, s);
    insert_one(o, json_string(r->topic), t->s1, "string", NULL);
    insert_one(o, r->partition >= 0 ? json_integer(r->partition) : json_null(), t->s2, "int32", NULL);
    insert_one(o, json_integer(r->offset), t->s3, "int64", NULL);
    insert_one(o, r->timestamp_ms >= 0 ? json_integer(r->timestamp_ms) : json_null(), t->s4, "int64", TS_LOGICAL);
    const char *sf = cn_cfg_str(t->cfg, "static.field");
    if (sf && *sf)
        insert_one(o, json_string(cn_cfg_str(t->cfg, "static.value")), sf, "string", NULL);
    return 1;
}

/* ---------------------------------------------------------------- ReplaceField */

static bool replace_init(smt_t *t, char *key, size_t kl, char *err, size_t el)
{
    const char *inc = cn_cfg_str(t->cfg, "include"), *exc = cn_cfg_str(t->cfg, "exclude");
    cn_strlist_parse(&t->l1, inc ? inc : cn_cfg_str(t->cfg, "whitelist"));
    cn_strlist_parse(&t->l2, exc ? exc : cn_cfg_str(t->cfg, "blacklist"));
    t->map = json_object();
    strlist_t ren;
    cn_strlist_parse(&ren, cn_cfg_str(t->cfg, "renames"));
    for (size_t i = 0; i < ren.n; i++) {
        char *colon = strchr(ren.v[i], ':');
        if (!colon || colon == ren.v[i] || !colon[1]) {
            cfg_err(key, kl, err, el, t, "renames", cn_cfg_str(t->cfg, "renames"),
                    "Invalid rename mapping: expected old:new pairs separated by commas");
            cn_strlist_free(&ren);
            return false;
        }
        *colon = 0;
        json_object_set_new(t->map, ren.v[i], json_string(colon + 1));
    }
    cn_strlist_free(&ren);
    return true;
}

static bool replace_keep(const smt_t *t, const char *name)
{
    return (t->l1.n == 0 || cn_strlist_has(&t->l1, name)) && !cn_strlist_has(&t->l2, name);
}

static const char *replace_rename(const smt_t *t, const char *name)
{
    const char *n = json_string_value(json_object_get(t->map, name));
    return n ? n : name;
}

static int replace_apply(smt_t *t, cn_record_t *r, char *err, size_t el)
{
    opnd_t o = op(t, r);
    if (json_is_null(*o.v))
        return 1;
    if (!need_struct(o, "field replacement", err, el))
        return -1;
    json_t *nv = json_object();
    if (*o.s) {
        json_t *ns = struct_like(*o.s), *nf = json_object_get(ns, "fields");
        size_t i;
        json_t *f;
        json_array_foreach(json_object_get(*o.s, "fields"), i, f) {
            const char *name = json_string_value(json_object_get(f, "field"));
            if (!name || !replace_keep(t, name))
                continue;
            json_t *g = json_deep_copy(f);
            json_object_set_new(g, "field", json_string(replace_rename(t, name)));
            json_array_append_new(nf, g);
            json_t *x = json_object_get(*o.v, name);
            json_object_set(nv, replace_rename(t, name), x ? x : json_null());
        }
        set_s(o, ns);
    } else {
        const char *k;
        json_t *x;
        json_object_foreach(*o.v, k, x) if (replace_keep(t, k)) json_object_set(nv, replace_rename(t, k), x);
    }
    set_v(o, nv);
    return 1;
}

/* ---------------------------------------------------------------- MaskField */

static bool mask_init(smt_t *t, char *key, size_t kl, char *err, size_t el)
{
    cn_strlist_parse(&t->l1, cn_cfg_str(t->cfg, "fields"));
    if (!t->l1.n)
        return cfg_err(key, kl, err, el, t, "fields", cn_cfg_str(t->cfg, "fields"),
                       cn_cfg_str(t->cfg, "fields") ? "Empty list" : NULL);
    t->s1 = cn_cfg_str(t->cfg, "replacement");
    if (t->s1 && !*t->s1)
        return cfg_err(key, kl, err, el, t, "replacement", t->s1, "String must be non-empty");
    return true;
}

/* The masked form of x whose Connect type is type ("" schemaless). */
static json_t *mask_value(const smt_t *t, json_t *x, const char *type, char *err, size_t el)
{
    bool integral = strncmp(type, "int", 3) == 0 || (!*type && json_is_integer(x));
    bool real = strncmp(type, "float", 5) == 0 || (!*type && json_is_real(x));
    bool str = strcmp(type, "string") == 0 || (!*type && json_is_string(x));
    if (t->s1) {
        char *end;
        if (str)
            return json_string(t->s1);
        if (integral || real) {
            errno = 0;
            double d = strtod(t->s1, &end);
            if (*end || errno) {
                snprintf(err, el, "Unable to convert %s (%s) to number", t->s1, "java.lang.String");
                return NULL;
            }
            return integral ? json_integer((json_int_t)d) : json_real(d);
        }
        snprintf(err, el, "Cannot mask value of type %s with custom replacement", *type ? type : jtype(x));
        return NULL;
    }
    if (integral)
        return json_integer(0);
    if (real)
        return json_real(0);
    if (str)
        return json_string("");
    if (strcmp(type, "boolean") == 0 || json_is_boolean(x))
        return json_false();
    if (strcmp(type, "array") == 0 || json_is_array(x))
        return json_array();
    if (strcmp(type, "map") == 0 || strcmp(type, "struct") == 0 || json_is_object(x))
        return json_object();
    return json_null();
}

static int mask_apply(smt_t *t, cn_record_t *r, char *err, size_t el)
{
    opnd_t o = op(t, r);
    if (json_is_null(*o.v))
        return 1;
    if (!need_struct(o, "masking fields", err, el))
        return -1;
    json_t *nv = json_deep_copy(*o.v);
    for (size_t i = 0; i < t->l1.n; i++) {
        json_t *x = json_object_get(nv, t->l1.v[i]);
        json_t *f = *o.s ? sfield(*o.s, t->l1.v[i]) : NULL;
        if (*o.s && !f) {
            snprintf(err, el, "%s is not a valid field name", t->l1.v[i]);
            json_decref(nv);
            return -1;
        }
        if (!x)
            continue;
        json_t *m = mask_value(t, x, f ? stype(f) : "", err, el);
        if (!m) {
            json_decref(nv);
            return -1;
        }
        json_object_set_new(nv, t->l1.v[i], m);
    }
    set_v(o, nv);
    return 1;
}

/* ---------------------------------------------------------------- Cast */

static const char *const cast_types[] = {"int8", "int16", "int32", "int64", "float32",
                                         "float64", "boolean", "string", NULL};

static bool cast_type_ok(const char *s)
{
    for (size_t i = 0; cast_types[i]; i++)
        if (strcmp(cast_types[i], s) == 0)
            return true;
    return false;
}

static bool cast_init(smt_t *t, char *key, size_t kl, char *err, size_t el)
{
    const char *spec = cn_cfg_str(t->cfg, "spec");
    strlist_t l;
    cn_strlist_parse(&l, spec);
    if (!l.n)
        return cfg_err(key, kl, err, el, t, "spec", spec, spec ? "Must specify at least one field to cast." : NULL);
    t->map = json_object();
    bool ok = true;
    for (size_t i = 0; ok && i < l.n; i++) {
        char *colon = strchr(l.v[i], ':');
        const char *type = colon ? colon + 1 : l.v[i];
        if (colon)
            *colon = 0;
        if (!cast_type_ok(type))
            ok = cfg_err(key, kl, err, el, t, "spec", spec,
                         "Invalid cast type: expected one of int8, int16, int32, int64, float32, float64, boolean, string");
        else if (!colon && l.n > 1)
            ok = cfg_err(key, kl, err, el, t, "spec", spec,
                         "Cast of the whole value must be the only entry in the spec");
        else
            json_object_set_new(t->map, colon ? l.v[i] : "", json_string(type));
    }
    cn_strlist_free(&l);
    return ok;
}

static json_t *cast_value(json_t *x, const char *type, char *err, size_t el)
{
    if (json_is_null(x))
        return json_null();
    double d = 0;
    json_int_t n = 0;
    if (json_is_integer(x))
        d = (double)(n = json_integer_value(x));
    else if (json_is_real(x))
        n = (json_int_t)(d = json_real_value(x));
    else if (json_is_boolean(x))
        d = (double)(n = json_is_true(x));
    else if (json_is_string(x)) {
        const char *s = json_string_value(x);
        char *end;
        if (strcmp(type, "string") == 0)
            return json_incref(x);
        if (strcmp(type, "boolean") == 0) {
            if (strcasecmp(s, "true") && strcasecmp(s, "false"))
                goto bad;
            return json_boolean(strcasecmp(s, "true") == 0);
        }
        errno = 0;
        d = strtod(s, &end);
        if (!*s || *end || errno)
            goto bad;
        n = (json_int_t)d;
    } else
        goto bad;
    if (strcmp(type, "int8") == 0)
        return json_integer((int8_t)n);
    if (strcmp(type, "int16") == 0)
        return json_integer((int16_t)n);
    if (strcmp(type, "int32") == 0)
        return json_integer((int32_t)n);
    if (strcmp(type, "int64") == 0)
        return json_integer(n);
    if (strcmp(type, "float32") == 0)
        return json_real((float)d);
    if (strcmp(type, "float64") == 0)
        return json_real(d);
    if (strcmp(type, "boolean") == 0)
        return json_boolean(d != 0);
    if (json_is_boolean(x))
        return json_string(json_is_true(x) ? "true" : "false");
    char *text = json_dumps(x, JSON_ENCODE_ANY | JSON_COMPACT);
    json_t *s = text ? json_string(text) : NULL;
    free(text);
    if (s)
        return s;
bad:
    snprintf(err, el, "Cast transformation does not support casting %s to %s", jtype(x), type);
    return NULL;
}

static json_t *retype(json_t *schema, const char *type)
{
    json_t *s = json_deep_copy(schema);
    json_object_set_new(s, "type", json_string(type));
    json_object_del(s, "name");
    json_object_del(s, "version");
    return s;
}

static int cast_apply(smt_t *t, cn_record_t *r, char *err, size_t el)
{
    opnd_t o = op(t, r);
    const char *whole = json_string_value(json_object_get(t->map, ""));
    if (whole) {
        json_t *nv = cast_value(*o.v, whole, err, el);
        if (!nv)
            return -1;
        set_v(o, nv);
        if (*o.s)
            set_s(o, retype(*o.s, whole));
        return 1;
    }
    if (json_is_null(*o.v))
        return 1;
    if (!need_struct(o, "cast types", err, el))
        return -1;
    json_t *nv = json_deep_copy(*o.v), *ns = *o.s ? json_deep_copy(*o.s) : NULL;
    const char *k;
    json_t *type;
    json_object_foreach(t->map, k, type) {
        json_t *x = json_object_get(nv, k);
        if (ns) {
            json_t *f = sfield(ns, k);
            if (!f) {
                snprintf(err, el, "Unknown field: %s", k);
                goto fail;
            }
            json_object_set_new(f, "type", json_string(json_string_value(type)));
            json_object_del(f, "name");
            json_object_del(f, "version");
        }
        if (!x)
            continue;
        json_t *c = cast_value(x, json_string_value(type), err, el);
        if (!c)
            goto fail;
        json_object_set_new(nv, k, c);
    }
    set_v(o, nv);
    if (ns)
        set_s(o, ns);
    return 1;
fail:
    json_decref(nv);
    json_decref(ns);
    return -1;
}

/* ------------------------------------------------------- ExtractField, HoistField */

static bool field_init(smt_t *t, char *key, size_t kl, char *err, size_t el)
{
    t->s1 = cn_cfg_str(t->cfg, "field");
    if (!t->s1 || !*t->s1)
        return cfg_err(key, kl, err, el, t, "field", t->s1, "String must be non-empty");
    return true;
}

static int extract_apply(smt_t *t, cn_record_t *r, char *err, size_t el)
{
    opnd_t o = op(t, r);
    if (json_is_null(*o.v))
        return 1;
    if (!need_struct(o, "field extraction", err, el))
        return -1;
    json_t *x = json_object_get(*o.v, t->s1);
    if (*o.s) {
        json_t *f = sfield(*o.s, t->s1);
        if (!f) {
            snprintf(err, el, "Unknown field: %s", t->s1);
            return -1;
        }
        set_s(o, unfield(f));
    }
    set_v(o, x ? json_incref(x) : json_null());
    return 1;
}

static int hoist_apply(smt_t *t, cn_record_t *r, char *err, size_t el)
{
    (void)err, (void)el;
    opnd_t o = op(t, r);
    json_t *nv = json_object();
    if (*o.bytes) {
        /* Bytes inside a struct or map are base64 text, as the JsonConverter writes them. */
        size_t n;
        char *b64 = cn_base64_encode(json_string_value(*o.v), json_string_length(*o.v), &n);
        json_object_set_new(nv, t->s1, json_stringn(b64, n));
        free(b64);
    } else {
        json_object_set(nv, t->s1, *o.v);
    }
    if (*o.s) {
        json_t *ns = json_pack("{s:s, s:[o], s:b}", "type", "struct", "fields", as_field(*o.s, t->s1),
                               "optional", 0);
        set_s(o, ns);
    }
    set_v(o, nv);
    return 1;
}

/* ---------------------------------------------------------------- ValueToKey */

static bool v2k_init(smt_t *t, char *key, size_t kl, char *err, size_t el)
{
    cn_strlist_parse(&t->l1, cn_cfg_str(t->cfg, "fields"));
    if (!t->l1.n)
        return cfg_err(key, kl, err, el, t, "fields", cn_cfg_str(t->cfg, "fields"),
                       cn_cfg_str(t->cfg, "fields") ? "Empty list" : NULL);
    return true;
}

static int v2k_apply(smt_t *t, cn_record_t *r, char *err, size_t el)
{
    opnd_t o = {&r->value, &r->value_schema, &r->value_bytes};
    if (json_is_null(r->value) && !r->value_schema) {
        snprintf(err, el, "Only Map objects supported in absence of schema for [copying fields from value to key], found: null");
        return -1;
    }
    if (!need_struct(o, "copying fields from value to key", err, el))
        return -1;
    json_t *key = json_object(), *ks = r->value_schema ? json_pack("{s:s, s:[], s:b}", "type", "struct", "fields", "optional", 0) : NULL;
    for (size_t i = 0; i < t->l1.n; i++) {
        json_t *x = json_object_get(r->value, t->l1.v[i]);
        if (ks) {
            json_t *f = sfield(r->value_schema, t->l1.v[i]);
            if (!f) {
                snprintf(err, el, "Field does not exist: %s", t->l1.v[i]);
                json_decref(key);
                json_decref(ks);
                return -1;
            }
            json_array_append_new(json_object_get(ks, "fields"), json_deep_copy(f));
        }
        json_object_set(key, t->l1.v[i], x ? x : json_null());
    }
    json_decref(r->key);
    json_decref(r->key_schema);
    r->key = key;
    r->key_schema = ks;
    r->key_bytes = false;
    return 1;
}

/* ---------------------------------------------------------------- Flatten */

static void flat_value(json_t *out, const char *prefix, const char *delim, json_t *v)
{
    const char *k;
    json_t *x;
    json_object_foreach(v, k, x) {
        char *name;
        if (asprintf(&name, "%s%s%s", prefix, *prefix ? delim : "", k) < 0)
            abort();
        if (json_is_object(x))
            flat_value(out, name, delim, x);
        else
            json_object_set(out, name, x);
        free(name);
    }
}

/* Flatten a struct schema's fields into out_fields, and v (may be NULL/null) into out. */
static void flat_struct(json_t *out_fields, json_t *out, const char *prefix, const char *delim, json_t *schema,
                        json_t *v, bool optional)
{
    size_t i;
    json_t *f;
    json_array_foreach(json_object_get(schema, "fields"), i, f) {
        const char *k = json_string_value(json_object_get(f, "field"));
        char *name;
        if (!k || asprintf(&name, "%s%s%s", prefix, *prefix ? delim : "", k) < 0)
            continue;
        json_t *x = json_is_object(v) ? json_object_get(v, k) : NULL;
        bool opt = optional || json_is_true(json_object_get(f, "optional"));
        if (strcmp(stype(f), "struct") == 0) {
            flat_struct(out_fields, out, name, delim, f, x, opt);
        } else {
            json_t *g = as_field(f, name);
            if (opt)
                json_object_set_new(g, "optional", json_true());
            json_array_append_new(out_fields, g);
            json_object_set(out, name, x ? x : json_null());
        }
        free(name);
    }
}

static bool flatten_init(smt_t *t, char *key, size_t kl, char *err, size_t el)
{
    (void)key, (void)kl, (void)err, (void)el;
    t->s1 = cn_cfg_str(t->cfg, "delimiter");
    if (!t->s1)
        t->s1 = ".";
    return true;
}

static int flatten_apply(smt_t *t, cn_record_t *r, char *err, size_t el)
{
    opnd_t o = op(t, r);
    if (json_is_null(*o.v))
        return 1;
    if (!need_struct(o, "flattening", err, el))
        return -1;
    json_t *nv = json_object();
    if (*o.s) {
        json_t *ns = struct_like(*o.s);
        flat_struct(json_object_get(ns, "fields"), nv, "", t->s1, *o.s, *o.v, false);
        set_s(o, ns);
    } else {
        flat_value(nv, "", t->s1, *o.v);
    }
    set_v(o, nv);
    return 1;
}

/* ---------------------------------------------------------------- routers */

static bool regex_router_init(smt_t *t, char *key, size_t kl, char *err, size_t el)
{
    const char *re = cn_cfg_str(t->cfg, "regex");
    t->s1 = cn_cfg_str(t->cfg, "replacement");
    char why[300];
    if (!re || !*re)
        return cfg_err(key, kl, err, el, t, "regex", re, "String must be non-empty");
    if (!cn_regex_compile(&t->re, re, why, sizeof why))
        return cfg_err(key, kl, err, el, t, "regex", re, why);
    t->re_ok = true;
    if (!t->s1)
        return cfg_err(key, kl, err, el, t, "replacement", NULL, NULL);
    return true;
}

/* Java's Matcher.replaceFirst on a whole match: $n group references, \x escapes. */
static char *java_replace(const char *src, const char *repl, const regmatch_t *m, size_t nm)
{
    size_t cap = strlen(repl) + strlen(src) * 2 + 16, o = 0;
    char *out = malloc(cap);
    if (!out)
        abort();
    for (const char *p = repl; *p; p++) {
        const char *piece = p;
        size_t len = 1;
        if (*p == '\\' && p[1]) {
            piece = ++p;
        } else if (*p == '$' && isdigit((unsigned char)p[1])) {
            size_t g = (size_t)(*++p - '0');
            len = 0;
            if (g < nm && m[g].rm_so >= 0) {
                piece = src + m[g].rm_so;
                len = (size_t)(m[g].rm_eo - m[g].rm_so);
            }
        }
        if (o + len + 1 > cap) {
            cap = (o + len + 1) * 2;
            out = realloc(out, cap);
            if (!out)
                abort();
        }
        memcpy(out + o, piece, len);
        o += len;
    }
    out[o] = 0;
    return out;
}

static int regex_router_apply(smt_t *t, cn_record_t *r, char *err, size_t el)
{
    (void)err, (void)el;
    regmatch_t m[10];
    if (!cn_regex_full_match(&t->re, r->topic, m, 10))
        return 1;
    char *topic = java_replace(r->topic, t->s1, m, 10);
    free(r->topic);
    r->topic = topic;
    return 1;
}

static bool ts_router_init(smt_t *t, char *key, size_t kl, char *err, size_t el)
{
    t->s1 = cn_cfg_str(t->cfg, "topic.format");
    t->s2 = cn_cfg_str(t->cfg, "timestamp.format");
    if (!t->s1)
        t->s1 = "${topic}-${timestamp}";
    if (!t->s2)
        t->s2 = "yyyyMMdd";
    char why[200];
    if (!*t->s1)
        return cfg_err(key, kl, err, el, t, "topic.format", t->s1, "String must be non-empty");
    if (!*t->s2 || !date_pattern_ok(t->s2, why, sizeof why))
        return cfg_err(key, kl, err, el, t, "timestamp.format", t->s2, *t->s2 ? why : "String must be non-empty");
    return true;
}

static int ts_router_apply(smt_t *t, cn_record_t *r, char *err, size_t el)
{
    if (r->timestamp_ms < 0) {
        snprintf(err, el, "Timestamp missing on record: topic %s", r->topic);
        return -1;
    }
    char ts[128];
    date_format(t->s2, r->timestamp_ms, ts, sizeof ts);
    size_t cap = strlen(t->s1) + strlen(r->topic) + sizeof ts + 1, o = 0;
    char *out = malloc(cap);
    if (!out)
        abort();
    for (const char *p = t->s1; *p;) {
        if (strncmp(p, "${topic}", 8) == 0) {
            o += (size_t)sprintf(out + o, "%s", r->topic);
            p += 8;
        } else if (strncmp(p, "${timestamp}", 12) == 0) {
            o += (size_t)sprintf(out + o, "%s", ts);
            p += 12;
        } else {
            out[o++] = *p++;
        }
        if (o + sizeof ts + strlen(r->topic) + 1 > cap) {
            cap *= 2;
            out = realloc(out, cap);
            if (!out)
                abort();
        }
    }
    out[o] = 0;
    free(r->topic);
    r->topic = out;
    return 1;
}

/* ---------------------------------------------------------------- TimestampConverter */

static const char *const tc_targets[] = {"string", "unix", "Date", "Time", "Timestamp", NULL};
static const char *const tc_precisions[] = {"milliseconds", "seconds", "microseconds", "nanoseconds", NULL};

static int index_of(const char *const *names, const char *s)
{
    for (int i = 0; s && names[i]; i++)
        if (strcmp(names[i], s) == 0)
            return i;
    return -1;
}

static bool tc_init(smt_t *t, char *key, size_t kl, char *err, size_t el)
{
    t->s1 = cn_cfg_str(t->cfg, "field");
    if (!t->s1)
        t->s1 = "";
    const char *target = cn_cfg_str(t->cfg, "target.type");
    if ((t->i1 = index_of(tc_targets, target)) < 0)
        return cfg_err(key, kl, err, el, t, "target.type", target,
                       "Unknown timestamp type in TimestampConverter: expected one of string, unix, Date, Time, Timestamp");
    t->s2 = cn_cfg_str(t->cfg, "format");
    char why[200];
    if (t->s2 && *t->s2 && !date_pattern_ok(t->s2, why, sizeof why))
        return cfg_err(key, kl, err, el, t, "format", t->s2, why);
    if (t->i1 == 0 && (!t->s2 || !*t->s2))
        return cfg_err(key, kl, err, el, t, "format", t->s2 ? t->s2 : "",
                       "TimestampConverter requires format option to be specified when using string timestamps");
    const char *prec = cn_cfg_str(t->cfg, "unix.precision");
    int pi = prec ? index_of(tc_precisions, prec) : 0;
    if (pi < 0)
        return cfg_err(key, kl, err, el, t, "unix.precision", prec,
                       "String must be one of: nanoseconds, microseconds, milliseconds, seconds");
    t->b1 = pi == 1; /* seconds */
    t->b2 = pi == 2; /* microseconds */
    t->b3 = pi == 3; /* nanoseconds */
    return true;
}

static int64_t tc_unix_to_ms(const smt_t *t, int64_t v)
{
    return t->b1 ? v * 1000 : t->b2 ? v / 1000 : t->b3 ? v / 1000000 : v;
}

static int64_t tc_ms_to_unix(const smt_t *t, int64_t ms)
{
    return t->b1 ? ms / 1000 : t->b2 ? ms * 1000 : t->b3 ? ms * 1000000 : ms;
}

/* x (with field/value schema s, may be NULL) to epoch milliseconds. */
static bool tc_to_ms(const smt_t *t, json_t *x, json_t *s, int64_t *ms, char *err, size_t el)
{
    const char *name = sname(s);
    if (json_is_string(x)) {
        if (!t->s2 || !date_parse(t->s2, json_string_value(x), ms)) {
            snprintf(err, el, "Could not parse timestamp: value (%s) does not match pattern (%s)", json_string_value(x),
                     t->s2 ? t->s2 : "(no format)");
            return false;
        }
        return true;
    }
    if (!json_is_integer(x)) {
        snprintf(err, el, "TimestampConverter does not support %s objects as timestamps", jtype(x));
        return false;
    }
    int64_t v = json_integer_value(x);
    if (strcmp(name, DATE_LOGICAL) == 0)
        *ms = v * DAY_MS;
    else if (strcmp(name, TIME_LOGICAL) == 0 || strcmp(name, TS_LOGICAL) == 0)
        *ms = v;
    else
        *ms = tc_unix_to_ms(t, v);
    return true;
}

static json_t *tc_from_ms(const smt_t *t, int64_t ms, bool optional, json_t **schema)
{
    json_t *v;
    const char *type = "int64", *logical = NULL;
    switch (t->i1) {
    case 0: {
        char buf[128];
        date_format(t->s2, ms, buf, sizeof buf);
        v = json_string(buf);
        type = "string";
        break;
    }
    case 1: v = json_integer(tc_ms_to_unix(t, ms)); break;
    case 2:
        v = json_integer(ms >= 0 ? ms / DAY_MS : (ms - DAY_MS + 1) / DAY_MS);
        type = "int32", logical = DATE_LOGICAL;
        break;
    case 3:
        v = json_integer(((ms % DAY_MS) + DAY_MS) % DAY_MS);
        type = "int32", logical = TIME_LOGICAL;
        break;
    default: v = json_integer(ms); logical = TS_LOGICAL; break;
    }
    if (schema) {
        *schema = json_pack("{s:s, s:b}", "type", type, "optional", optional);
        if (logical) {
            json_object_set_new(*schema, "name", json_string(logical));
            json_object_set_new(*schema, "version", json_integer(1));
        }
    }
    return v;
}

static int tc_apply(smt_t *t, cn_record_t *r, char *err, size_t el)
{
    opnd_t o = op(t, r);
    int64_t ms;
    if (!*t->s1) { /* the whole value */
        if (json_is_null(*o.v))
            return 1;
        if (!tc_to_ms(t, *o.v, *o.s, &ms, err, el))
            return -1;
        json_t *ns = NULL;
        json_t *nv = tc_from_ms(t, ms, json_is_true(json_object_get(*o.s, "optional")), *o.s ? &ns : NULL);
        set_v(o, nv);
        if (*o.s)
            set_s(o, ns);
        return 1;
    }
    if (json_is_null(*o.v))
        return 1;
    if (!need_struct(o, "converting timestamp formats", err, el))
        return -1;
    json_t *f = *o.s ? sfield(*o.s, t->s1) : NULL;
    if (*o.s && !f) {
        snprintf(err, el, "Unknown field: %s", t->s1);
        return -1;
    }
    json_t *x = json_object_get(*o.v, t->s1), *nv = json_deep_copy(*o.v);
    if (x && !json_is_null(x)) {
        if (!tc_to_ms(t, x, f, &ms, err, el)) {
            json_decref(nv);
            return -1;
        }
        json_object_set_new(nv, t->s1, tc_from_ms(t, ms, false, NULL));
    }
    if (*o.s) {
        json_t *ns = json_deep_copy(*o.s), *fs = NULL;
        json_decref(tc_from_ms(t, 0, json_is_true(json_object_get(f, "optional")), &fs));
        json_t *nf = sfield(ns, t->s1);
        json_object_update(nf, fs);
        if (!json_object_get(fs, "name")) {
            json_object_del(nf, "name");
            json_object_del(nf, "version");
        }
        json_decref(fs);
        set_s(o, ns);
    }
    set_v(o, nv);
    return 1;
}

/* ---------------------------------------------------------------- Filter and headers */

static int filter_apply(smt_t *t, cn_record_t *r, char *err, size_t el)
{
    (void)t, (void)r, (void)err, (void)el;
    return 0;
}

static bool drop_headers_init(smt_t *t, char *key, size_t kl, char *err, size_t el)
{
    cn_strlist_parse(&t->l1, cn_cfg_str(t->cfg, "headers"));
    if (!t->l1.n)
        return cfg_err(key, kl, err, el, t, "headers", cn_cfg_str(t->cfg, "headers"),
                       cn_cfg_str(t->cfg, "headers") ? "Empty list" : NULL);
    return true;
}

static void remove_header(cn_record_t *r, const char *name)
{
    size_t w = 0;
    for (size_t i = 0; i < r->nhdrs; i++) {
        if (strcmp(r->hdrs[i].key, name) == 0) {
            free(r->hdrs[i].key);
            free(r->hdrs[i].value);
        } else {
            r->hdrs[w++] = r->hdrs[i];
        }
    }
    r->nhdrs = w;
}

static int drop_headers_apply(smt_t *t, cn_record_t *r, char *err, size_t el)
{
    (void)err, (void)el;
    for (size_t i = 0; i < t->l1.n; i++)
        remove_header(r, t->l1.v[i]);
    return 1;
}

static bool insert_header_init(smt_t *t, char *key, size_t kl, char *err, size_t el)
{
    t->s1 = cn_cfg_str(t->cfg, "header");
    t->s2 = cn_cfg_str(t->cfg, "value.literal");
    if (!t->s1 || !*t->s1)
        return cfg_err(key, kl, err, el, t, "header", t->s1, "String must be non-empty");
    if (!t->s2)
        return cfg_err(key, kl, err, el, t, "value.literal", NULL, NULL);
    return true;
}

static int insert_header_apply(smt_t *t, cn_record_t *r, char *err, size_t el)
{
    (void)err, (void)el;
    cn_record_add_header(r, t->s1, t->s2, strlen(t->s2));
    return 1;
}

static bool header_from_init(smt_t *t, char *key, size_t kl, char *err, size_t el)
{
    cn_strlist_parse(&t->l1, cn_cfg_str(t->cfg, "fields"));
    cn_strlist_parse(&t->l2, cn_cfg_str(t->cfg, "headers"));
    const char *opn = cn_cfg_str(t->cfg, "operation");
    if (!t->l1.n)
        return cfg_err(key, kl, err, el, t, "fields", cn_cfg_str(t->cfg, "fields"),
                       cn_cfg_str(t->cfg, "fields") ? "Empty list" : NULL);
    if (t->l1.n != t->l2.n)
        return cfg_err(key, kl, err, el, t, "headers", cn_cfg_str(t->cfg, "headers") ? cn_cfg_str(t->cfg, "headers") : "",
                       "'fields' config must have the same number of elements as 'headers' config.");
    if (!opn)
        return cfg_err(key, kl, err, el, t, "operation", NULL, NULL);
    if (strcmp(opn, "copy") != 0 && strcmp(opn, "move") != 0)
        return cfg_err(key, kl, err, el, t, "operation", opn, "String must be one of: move, copy");
    t->b1 = strcmp(opn, "move") == 0;
    return true;
}

static int header_from_apply(smt_t *t, cn_record_t *r, char *err, size_t el)
{
    opnd_t o = op(t, r);
    if (json_is_null(*o.v))
        return 1;
    if (!need_struct(o, "header from field", err, el))
        return -1;
    for (size_t i = 0; i < t->l1.n; i++) {
        if (*o.s && !sfield(*o.s, t->l1.v[i])) {
            snprintf(err, el, "%s is not a valid field name", t->l1.v[i]);
            return -1;
        }
    }
    json_t *nv = t->b1 ? json_deep_copy(*o.v) : NULL, *ns = t->b1 && *o.s ? json_deep_copy(*o.s) : NULL;
    for (size_t i = 0; i < t->l1.n; i++) {
        json_t *x = json_object_get(*o.v, t->l1.v[i]);
        if (!x || json_is_null(x))
            cn_record_add_header(r, t->l2.v[i], NULL, 0);
        else if (json_is_string(x))
            cn_record_add_header(r, t->l2.v[i], json_string_value(x), json_string_length(x));
        else {
            char *text = json_dumps(x, JSON_COMPACT | JSON_ENCODE_ANY);
            if (!text) {
                snprintf(err, el, "field %s cannot be written as a header: not valid UTF-8", t->l1.v[i]);
                json_decref(nv);
                json_decref(ns);
                return -1;
            }
            cn_record_add_header(r, t->l2.v[i], text, strlen(text));
            free(text);
        }
        if (nv)
            json_object_del(nv, t->l1.v[i]);
        if (ns) {
            json_t *fields = json_object_get(ns, "fields");
            json_t *f = sfield(ns, t->l1.v[i]);
            size_t j;
            json_t *g;
            json_array_foreach(fields, j, g) if (g == f) {
                json_array_remove(fields, j);
                break;
            }
        }
    }
    if (nv)
        set_v(o, nv);
    if (ns)
        set_s(o, ns);
    return 1;
}

/* ---------------------------------------------------------------- the table */

const smt_kind_t cn_smt_kinds[] = {
    {"InsertField", true, insert_init, insert_apply},
    {"ReplaceField", true, replace_init, replace_apply},
    {"MaskField", true, mask_init, mask_apply},
    {"Cast", true, cast_init, cast_apply},
    {"ExtractField", true, field_init, extract_apply},
    {"HoistField", true, field_init, hoist_apply},
    {"ValueToKey", false, v2k_init, v2k_apply},
    {"Flatten", true, flatten_init, flatten_apply},
    {"RegexRouter", false, regex_router_init, regex_router_apply},
    {"TimestampRouter", false, ts_router_init, ts_router_apply},
    {"TimestampConverter", true, tc_init, tc_apply},
    {"Filter", false, NULL, filter_apply},
    {"DropHeaders", false, drop_headers_init, drop_headers_apply},
    {"InsertHeader", false, insert_header_init, insert_header_apply},
    {"HeaderFrom", true, header_from_init, header_from_apply},
};
const size_t cn_smt_kind_count = sizeof cn_smt_kinds / sizeof *cn_smt_kinds;
