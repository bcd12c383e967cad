/*
 * smt.c - the transform chain of a connector (Kafka Connect's "transforms" and
 * "predicates" keys), the records it works on, and the predicates.
 *
 * Configuration, as Kafka's ConnectorConfig reads it:
 *   transforms=a,b                      aliases, applied in this order
 *   transforms.a.type=<class>           full class name or simple name (InsertField$Value)
 *   transforms.a.<key>=...              the transform's own keys
 *   transforms.a.predicate=p            apply a only to records where p holds ...
 *   transforms.a.negate=true            ... or does not hold
 *   predicates=p
 *   predicates.p.type=<class>           TopicNameMatches, HasHeaderKey, RecordIsTombstone
 *   predicates.p.<key>=...
 * Every problem is refused at validation with a message naming the key.
 *
 * Regular expressions (RegexRouter.regex, TopicNameMatches.pattern) are POSIX extended
 * regular expressions (regcomp REG_EXTENDED), not Java's: no lazy quantifiers (*?),
 * no lookaround, no \d \w \s (use [0-9] [[:alnum:]_] [[:space:]]), no named groups,
 * no (?:...) nor inline flags. As in Kafka the whole topic name must match.
 *
 * Records: keys and values are jansson values. A BYTES value is kept as a json string
 * holding the raw bytes (json_stringn_nocheck) with key_bytes/value_bytes set, so it
 * survives a chain that does not touch it. Pure functions; one task thread uses a chain.
 */
#define _GNU_SOURCE
#include "smt_int.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* --------------------------------------------------------------- small helpers */

void cn_strlist_parse(strlist_t *l, const char *s)
{
    memset(l, 0, sizeof *l);
    if (!s)
        return;
    char *copy = strdup(s), *save = NULL;
    if (!copy)
        abort();
    for (char *tok = strtok_r(copy, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
        while (*tok == ' ' || *tok == '\t')
            tok++;
        size_t n = strlen(tok);
        while (n && (tok[n - 1] == ' ' || tok[n - 1] == '\t'))
            tok[--n] = 0;
        if (!n)
            continue;
        l->v = realloc(l->v, (l->n + 1) * sizeof *l->v);
        if (!l->v || !(l->v[l->n++] = strdup(tok)))
            abort();
    }
    free(copy);
}

void cn_strlist_free(strlist_t *l)
{
    for (size_t i = 0; i < l->n; i++)
        free(l->v[i]);
    free(l->v);
    memset(l, 0, sizeof *l);
}

bool cn_strlist_has(const strlist_t *l, const char *s)
{
    for (size_t i = 0; i < l->n; i++)
        if (strcmp(l->v[i], s) == 0)
            return true;
    return false;
}

bool cn_regex_compile(regex_t *re, const char *pattern, char *err, size_t err_len)
{
    int rc = regcomp(re, pattern, REG_EXTENDED);
    if (rc != 0) {
        char buf[256];
        regerror(rc, re, buf, sizeof buf);
        snprintf(err, err_len, "Invalid regex: %s (POSIX extended syntax)", buf);
        return false;
    }
    return true;
}

bool cn_regex_full_match(const regex_t *re, const char *s, regmatch_t *m, size_t nm)
{
    regmatch_t local[1];
    if (!m || !nm) {
        m = local;
        nm = 1;
    }
    /* POSIX takes the leftmost-longest match, so a match at 0 that can cover the
     * whole string does. */
    return regexec(re, s, nm, m, 0) == 0 && m[0].rm_so == 0 && (size_t)m[0].rm_eo == strlen(s);
}

/* ------------------------------------------------------------------- records */

void cn_record_add_header(cn_record_t *r, const char *key, const void *value, size_t len)
{
    if (r->nhdrs == r->cap_hdrs) {
        r->cap_hdrs = r->cap_hdrs ? r->cap_hdrs * 2 : 4;
        r->hdrs = realloc(r->hdrs, r->cap_hdrs * sizeof *r->hdrs);
        if (!r->hdrs)
            abort();
    }
    cn_hdr_t *h = &r->hdrs[r->nhdrs++];
    h->key = strdup(key);
    h->value = NULL;
    h->len = 0;
    if (value) {
        h->value = malloc(len + 1);
        if (!h->value)
            abort();
        memcpy(h->value, value, len);
        h->value[len] = 0;
        h->len = len;
    }
    if (!h->key)
        abort();
}

const cn_hdr_t *cn_record_header(const cn_record_t *r, const char *key)
{
    for (size_t i = 0; i < r->nhdrs; i++)
        if (strcmp(r->hdrs[i].key, key) == 0)
            return &r->hdrs[i];
    return NULL;
}

/* A Connect value as json (new ref) and schema (new ref or NULL); NULL with err. */
static json_t *value_import(const samsa_connect_value_t *v, json_t **schema, bool *bytes, char *err,
                            size_t err_len)
{
    json_error_t je;
    *schema = NULL;
    *bytes = false;
    if (v->schema && !(*schema = json_loads(v->schema, 0, &je))) {
        snprintf(err, err_len, "invalid Connect schema: %s", je.text);
        return NULL;
    }
    switch (v->kind) {
    case SAMSA_VALUE_NULL:
        return json_null();
    case SAMSA_VALUE_STRING:
        return json_stringn_nocheck(v->data ? v->data : "", v->len);
    case SAMSA_VALUE_BYTES:
        *bytes = true;
        return json_stringn_nocheck(v->data ? v->data : "", v->len);
    case SAMSA_VALUE_JSON: {
        json_t *j = json_loadb(v->data ? v->data : "", v->len, JSON_DECODE_ANY | JSON_ALLOW_NUL, &je);
        if (!j) {
            snprintf(err, err_len, "the value is not valid JSON: %s", je.text);
            json_decref(*schema);
            *schema = NULL;
        }
        return j;
    }
    }
    snprintf(err, err_len, "unknown value kind %d", (int)v->kind);
    json_decref(*schema);
    *schema = NULL;
    return NULL;
}

int cn_record_init(cn_record_t *r, const char *topic, int32_t partition, int64_t offset, int64_t ts,
                   const samsa_connect_value_t *key, const samsa_connect_value_t *value,
                   const samsa_connect_header_t *hdrs, size_t nhdrs, bool *bad_key, char *err,
                   size_t err_len)
{
    memset(r, 0, sizeof *r);
    r->topic = strdup(topic ? topic : "");
    if (!r->topic)
        abort();
    r->partition = partition;
    r->offset = offset;
    r->timestamp_ms = ts;
    *bad_key = true;
    if (!(r->key = value_import(key, &r->key_schema, &r->key_bytes, err, err_len)))
        goto fail;
    *bad_key = false;
    if (!(r->value = value_import(value, &r->value_schema, &r->value_bytes, err, err_len)))
        goto fail;
    for (size_t i = 0; i < nhdrs; i++)
        cn_record_add_header(r, hdrs[i].key, hdrs[i].value, hdrs[i].len);
    return 0;
fail:
    cn_record_free(r);
    return -1;
}

static int value_export(json_t *j, json_t *schema, bool bytes, cn_value_t *out, char *err, size_t err_len)
{
    memset(out, 0, sizeof *out);
    if (schema)
        out->schema = json_dumps(schema, JSON_COMPACT);
    out->v.schema = out->schema;
    if (!j || json_is_null(j)) {
        out->v.kind = SAMSA_VALUE_NULL;
        return 0;
    }
    if (json_is_string(j)) {
        size_t n = json_string_length(j);
        out->buf = malloc(n + 1);
        if (!out->buf)
            abort();
        memcpy(out->buf, json_string_value(j), n);
        out->buf[n] = 0;
        const char *type = schema ? json_string_value(json_object_get(schema, "type")) : NULL;
        out->v.kind = bytes || (type && strcmp(type, "bytes") == 0) ? SAMSA_VALUE_BYTES : SAMSA_VALUE_STRING;
        out->v.data = out->buf;
        out->v.len = n;
        return 0;
    }
    /* Fails when a string inside is not UTF-8 (raw bytes moved into a struct). */
    out->buf = json_dumps(j, JSON_COMPACT | JSON_ENCODE_ANY);
    if (!out->buf) {
        snprintf(err, err_len, "the transformed value holds a string that is not valid UTF-8");
        cn_value_free(out);
        return -1;
    }
    out->v.kind = SAMSA_VALUE_JSON;
    out->v.data = out->buf;
    out->v.len = strlen(out->buf);
    return 0;
}

int cn_record_export(cn_record_t *r, cn_value_t *key, cn_value_t *value, char *err, size_t err_len)
{
    memset(value, 0, sizeof *value);
    if (value_export(r->key, r->key_schema, r->key_bytes, key, err, err_len) != 0)
        return -1;
    if (value_export(r->value, r->value_schema, r->value_bytes, value, err, err_len) != 0) {
        cn_value_free(key);
        return -1;
    }
    free(r->view);
    r->view = calloc(r->nhdrs ? r->nhdrs : 1, sizeof *r->view);
    if (!r->view)
        abort();
    for (size_t i = 0; i < r->nhdrs; i++)
        r->view[i] = (samsa_connect_header_t){r->hdrs[i].key, r->hdrs[i].value, r->hdrs[i].len};
    return 0;
}

void cn_record_free(cn_record_t *r)
{
    free(r->topic);
    json_decref(r->key);
    json_decref(r->value);
    json_decref(r->key_schema);
    json_decref(r->value_schema);
    for (size_t i = 0; i < r->nhdrs; i++) {
        free(r->hdrs[i].key);
        free(r->hdrs[i].value);
    }
    free(r->hdrs);
    free(r->view);
    memset(r, 0, sizeof *r);
}

/* ---------------------------------------------------------------- predicates */

typedef enum pred_kind { PRED_TOPIC = 1, PRED_HEADER, PRED_TOMBSTONE } pred_kind_t;

typedef struct pred {
    pred_kind_t kind;
    char alias[128];
    char *name; /* HasHeaderKey.name */
    regex_t re; /* TopicNameMatches.pattern */
    bool re_ok;
} pred_t;

#define PRED_PKG "org.apache.kafka.connect.transforms.predicates."
#define XF_PKG "org.apache.kafka.connect.transforms."

static const char *const pred_names[] = {NULL, "TopicNameMatches", "HasHeaderKey", "RecordIsTombstone"};

static bool pred_test(const pred_t *p, const cn_record_t *r)
{
    switch (p->kind) {
    case PRED_TOPIC:
        return cn_regex_full_match(&p->re, r->topic, NULL, 0);
    case PRED_HEADER:
        return cn_record_header(r, p->name) != NULL;
    case PRED_TOMBSTONE:
        return json_is_null(r->value);
    }
    return false;
}

struct cn_chain {
    smt_t *t;
    size_t n;
    pred_t *p;
    size_t np;
};

/* The simple name of cls when it names something in package pkg or nothing. */
static const char *simple_of(const char *cls, const char *pkg)
{
    size_t n = strlen(pkg);
    if (strncmp(cls, pkg, n) == 0)
        return cls + n;
    return strchr(cls, '.') ? NULL : cls;
}

static bool pred_init(pred_t *p, const char *alias, json_t *config, char *key, size_t key_len, char *err,
                      size_t err_len)
{
    char k[400];
    snprintf(p->alias, sizeof p->alias, "%s", alias);
    snprintf(k, sizeof k, "predicates.%s.type", alias);
    const char *cls = cn_cfg_str(config, k);
    if (!cls || !*cls) {
        snprintf(key, key_len, "%s", k);
        snprintf(err, err_len, "Missing required configuration \"%s\" which has no default value.", k);
        return false;
    }
    const char *simple = simple_of(cls, PRED_PKG);
    for (int i = 1; i <= 3 && simple; i++)
        if (strcmp(simple, pred_names[i]) == 0)
            p->kind = (pred_kind_t)i;
    if (!p->kind) {
        snprintf(key, key_len, "%s", k);
        snprintf(err, err_len, "Invalid value %s for configuration %s: Class %s could not be found.", cls, k, cls);
        return false;
    }
    if (p->kind == PRED_TOPIC) {
        snprintf(k, sizeof k, "predicates.%s.pattern", alias);
        const char *pat = cn_cfg_str(config, k);
        char why[300];
        if (!pat || !*pat) {
            snprintf(key, key_len, "%s", k);
            snprintf(err, err_len, "Missing required configuration \"%s\" which has no default value.", k);
            return false;
        }
        if (!cn_regex_compile(&p->re, pat, why, sizeof why)) {
            snprintf(key, key_len, "%s", k);
            snprintf(err, err_len, "Invalid value %s for configuration %s: %s", pat, k, why);
            return false;
        }
        p->re_ok = true;
    } else if (p->kind == PRED_HEADER) {
        snprintf(k, sizeof k, "predicates.%s.name", alias);
        const char *name = cn_cfg_str(config, k);
        if (!name || !*name) {
            snprintf(key, key_len, "%s", k);
            snprintf(err, err_len, "Invalid value %s for configuration %s: String must be non-empty",
                     name ? name : "null", k);
            return false;
        }
        p->name = strdup(name);
    }
    return true;
}

/* Resolve a transform class to its kind and variant; NULL when unknown. */
static const smt_kind_t *kind_of(const char *cls, bool *is_key, char *full, size_t full_len)
{
    const char *simple = simple_of(cls, XF_PKG);
    if (!simple)
        return NULL;
    const char *dollar = strchr(simple, '$');
    size_t base = dollar ? (size_t)(dollar - simple) : strlen(simple);
    for (size_t i = 0; i < cn_smt_kind_count; i++) {
        const smt_kind_t *k = &cn_smt_kinds[i];
        if (strlen(k->name) != base || strncmp(simple, k->name, base) != 0)
            continue;
        if (k->variants != (dollar != NULL))
            return NULL;
        if (dollar && strcmp(dollar, "$Key") != 0 && strcmp(dollar, "$Value") != 0)
            return NULL;
        *is_key = dollar && strcmp(dollar, "$Key") == 0;
        snprintf(full, full_len, "%s%s", XF_PKG, simple);
        return k;
    }
    return NULL;
}

static void smt_free(smt_t *t)
{
    json_decref(t->cfg);
    json_decref(t->map);
    cn_strlist_free(&t->l1);
    cn_strlist_free(&t->l2);
    if (t->re_ok)
        regfree(&t->re);
}

static bool smt_init(cn_chain_t *c, smt_t *t, const char *alias, json_t *config, char *key, size_t key_len,
                     char *err, size_t err_len)
{
    char k[400];
    t->pred = -1;
    snprintf(t->prefix, sizeof t->prefix, "transforms.%s.", alias);
    t->cfg = cn_config_with_prefix(config, t->prefix);
    snprintf(k, sizeof k, "%stype", t->prefix);
    const char *cls = cn_cfg_str(config, k);
    if (!cls || !*cls) {
        snprintf(key, key_len, "%s", k);
        snprintf(err, err_len, "Missing required configuration \"%s\" which has no default value.", k);
        return false;
    }
    if (!(t->kind = kind_of(cls, &t->is_key, t->cls, sizeof t->cls))) {
        snprintf(key, key_len, "%s", k);
        snprintf(err, err_len, "Invalid value %s for configuration %s: Class %s could not be found.", cls, k, cls);
        return false;
    }
    snprintf(k, sizeof k, "%spredicate", t->prefix);
    const char *pred = cn_cfg_str(config, k);
    if (pred && *pred) {
        for (size_t i = 0; i < c->np; i++)
            if (strcmp(c->p[i].alias, pred) == 0)
                t->pred = (int)i;
        if (t->pred < 0) {
            snprintf(key, key_len, "%s", k);
            snprintf(err, err_len, "Invalid value %s for configuration %s: Predicate alias %s is not listed in predicates",
                     pred, k, pred);
            return false;
        }
    }
    snprintf(k, sizeof k, "%snegate", t->prefix);
    if (!cn_cfg_bool(config, k, false, &t->negate)) {
        snprintf(key, key_len, "%s", k);
        snprintf(err, err_len, "Invalid value %s for configuration %s: Expected value to be either true or false",
                 cn_cfg_str(config, k), k);
        return false;
    }
    return !t->kind->init || t->kind->init(t, key, key_len, err, err_len);
}

/* Kafka refuses an alias listed twice. */
static bool dup_alias(const strlist_t *l, const char *key, json_t *config, char *bad_key, size_t key_len, char *err,
                      size_t err_len)
{
    for (size_t i = 0; i < l->n; i++)
        for (size_t j = 0; j < i; j++)
            if (strcmp(l->v[i], l->v[j]) == 0) {
                snprintf(bad_key, key_len, "%s", key);
                snprintf(err, err_len, "Invalid value %s for configuration %s: Duplicate alias provided.",
                         cn_cfg_str(config, key), key);
                return true;
            }
    return false;
}

cn_chain_t *cn_chain_new(json_t *config, char *bad_key, size_t key_len, char *err, size_t err_len)
{
    cn_chain_t *c = calloc(1, sizeof *c);
    if (!c)
        abort();
    strlist_t preds, xfs;
    cn_strlist_parse(&preds, cn_cfg_str(config, "predicates"));
    cn_strlist_parse(&xfs, cn_cfg_str(config, "transforms"));
    c->p = calloc(preds.n + 1, sizeof *c->p);
    c->t = calloc(xfs.n + 1, sizeof *c->t);
    if (!c->p || !c->t)
        abort();
    bool ok = !dup_alias(&preds, "predicates", config, bad_key, key_len, err, err_len) &&
              !dup_alias(&xfs, "transforms", config, bad_key, key_len, err, err_len);
    for (size_t i = 0; ok && i < preds.n; i++) {
        ok = pred_init(&c->p[i], preds.v[i], config, bad_key, key_len, err, err_len);
        c->np++;
    }
    for (size_t i = 0; ok && i < xfs.n; i++) {
        ok = smt_init(c, &c->t[i], xfs.v[i], config, bad_key, key_len, err, err_len);
        c->n++;
    }
    cn_strlist_free(&preds);
    cn_strlist_free(&xfs);
    if (!ok) {
        cn_chain_free(c);
        return NULL;
    }
    return c;
}

void cn_chain_free(cn_chain_t *c)
{
    if (!c)
        return;
    for (size_t i = 0; i < c->n; i++)
        smt_free(&c->t[i]);
    for (size_t i = 0; i < c->np; i++) {
        free(c->p[i].name);
        if (c->p[i].re_ok)
            regfree(&c->p[i].re);
    }
    free(c->t);
    free(c->p);
    free(c);
}

size_t cn_chain_size(const cn_chain_t *c)
{
    return c ? c->n : 0;
}

int cn_chain_apply(cn_chain_t *c, cn_record_t *r, const char **cls, char *err, size_t err_len)
{
    for (size_t i = 0; c && i < c->n; i++) {
        smt_t *t = &c->t[i];
        if (t->pred >= 0 && pred_test(&c->p[t->pred], r) == t->negate)
            continue;
        int rc = t->kind->apply(t, r, err, err_len);
        if (rc <= 0) {
            if (rc < 0)
                *cls = t->cls;
            return rc;
        }
    }
    return 1;
}

void cn_smt_plugins_list(json_t *a)
{
    char cls[200];
    for (size_t i = 0; i < cn_smt_kind_count; i++) {
        const smt_kind_t *k = &cn_smt_kinds[i];
        for (int v = 0; v < (k->variants ? 2 : 1); v++) {
            snprintf(cls, sizeof cls, "%s%s%s", XF_PKG, k->name, !k->variants ? "" : v ? "$Value" : "$Key");
            json_array_append_new(a, json_pack("{s:s, s:s, s:s}", "class", cls, "type", "transformation",
                                               "version", CN_VERSION));
        }
    }
    for (int i = 1; i <= 3; i++) {
        snprintf(cls, sizeof cls, "%s%s", PRED_PKG, pred_names[i]);
        json_array_append_new(a, json_pack("{s:s, s:s, s:s}", "class", cls, "type", "predicate", "version",
                                           CN_VERSION));
    }
}
