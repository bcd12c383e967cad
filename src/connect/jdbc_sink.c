/*
 * jdbc_sink.c - the built-in JDBC sink connector, Confluent's
 * io.confluent.connect.jdbc.JdbcSinkConnector (aliases JdbcSink, JdbcSinkConnector)
 * with its config keys, over SQLite and PostgreSQL (jdbc.h).
 *
 * Each record becomes one row of the table table.name.format names (${topic} replaced
 * by the record's topic). Its value must be a struct with a schema (JsonConverter with
 * schemas.enable=true): one column per field, typed by the field's schema (int8..int64,
 * float32/64, boolean, string, bytes, Timestamp). A schemaless JSON object is accepted
 * too: each field's type is inferred from its JSON value (integer -> int64, number ->
 * float64, boolean, string; an object or array is written as its JSON text; null ->
 * an optional string column), every field optional.
 *
 * Primary key (pk.mode):
 *   none          no key columns (insert.mode=insert only);
 *   kafka         __connect_topic, __connect_partition, __connect_offset (or the three
 *                 names in pk.fields);
 *   record_key    the key's struct fields (those in pk.fields, or all), or a primitive key
 *                 as one column (pk.fields[0], default __connect_key);
 *   record_value  the value's fields named in pk.fields (all fields when empty).
 *
 * Statements (identifiers quoted, every value a bound parameter):
 *   insert  INSERT INTO t (..) VALUES (..)
 *   upsert  INSERT INTO t (..) VALUES (..) ON CONFLICT (pk..) DO UPDATE SET c = EXCLUDED.c
 *           (SQLite >= 3.24 and PostgreSQL both)
 *   update  UPDATE t SET c = .. WHERE pk = ..
 *   delete  DELETE FROM t WHERE pk = ..   (a tombstone, delete.enabled, pk.mode=record_key)
 * Tombstones are skipped when delete.enabled=false.
 *
 * auto.create makes a missing table (PRIMARY KEY of the pk columns; NOT NULL for
 * non-optional fields); auto.evolve adds a missing column for an optional field (ALTER
 * TABLE .. ADD COLUMN); otherwise a missing table or column fails the task with the
 * reason. Tables are looked up once and then cached, refreshed after a failure.
 *
 * Transactions: a put writes its records in transactions of at most batch.size records,
 * each committed before put returns, so flush has nothing left to do: the worker
 * commits the consumer offsets only after put returned. A failure rolls the
 * transaction back and fails the task. A lost PostgreSQL connection is re-opened and
 * the transaction retried, max.retries times, retry.backoff.ms apart.
 *
 * Runs on the task's thread; all state is in the task object.
 */
#define _GNU_SOURCE
#include "cn.h"
#include "jdbc.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

enum { INS_INSERT = 1, INS_UPSERT, INS_UPDATE };
enum { PK_NONE = 1, PK_KAFKA, PK_RECORD_KEY, PK_RECORD_VALUE };

static const char *const aliases[] = {"JdbcSink", "JdbcSinkConnector", NULL};

static const samsa_connect_config_def_t defs[] = {
    {"connection.url", SAMSA_CONFIG_STRING, NULL, 1, 1, SAMSA_IMPORTANCE_HIGH,
     "JDBC connection URL: jdbc:sqlite:<file> or jdbc:postgresql://host[:port]/database"},
    {"connection.user", SAMSA_CONFIG_STRING, NULL, 0, 0, SAMSA_IMPORTANCE_HIGH, "JDBC connection user."},
    {"connection.password", SAMSA_CONFIG_PASSWORD, NULL, 0, 0, SAMSA_IMPORTANCE_HIGH,
     "JDBC connection password."},
    {"connection.attempts", SAMSA_CONFIG_INT, "3", 0, 0, SAMSA_IMPORTANCE_LOW,
     "Maximum number of attempts to retrieve a valid JDBC connection."},
    {"connection.backoff.ms", SAMSA_CONFIG_LONG, "10000", 0, 0, SAMSA_IMPORTANCE_LOW,
     "Backoff time in milliseconds between connection attempts."},
    {"table.name.format", SAMSA_CONFIG_STRING, "${topic}", 0, 1, SAMSA_IMPORTANCE_MEDIUM,
     "A format string for the destination table name, which may contain '${topic}'."},
    {"insert.mode", SAMSA_CONFIG_STRING, "insert", 0, 0, SAMSA_IMPORTANCE_HIGH,
     "The insertion mode to use: insert, upsert or update."},
    {"pk.mode", SAMSA_CONFIG_STRING, "none", 0, 0, SAMSA_IMPORTANCE_HIGH,
     "The primary key mode: none, kafka, record_key, record_value."},
    {"pk.fields", SAMSA_CONFIG_LIST, "", 0, 0, SAMSA_IMPORTANCE_MEDIUM,
     "List of comma-separated primary key field names (meaning depends on pk.mode)."},
    {"fields.whitelist", SAMSA_CONFIG_LIST, "", 0, 0, SAMSA_IMPORTANCE_MEDIUM,
     "List of comma-separated record value field names. If empty, all fields are used."},
    {"auto.create", SAMSA_CONFIG_BOOLEAN, "false", 0, 0, SAMSA_IMPORTANCE_MEDIUM,
     "Whether to automatically create the destination table based on record schema."},
    {"auto.evolve", SAMSA_CONFIG_BOOLEAN, "false", 0, 0, SAMSA_IMPORTANCE_MEDIUM,
     "Whether to automatically add columns in the table schema when found to be missing."},
    {"batch.size", SAMSA_CONFIG_INT, "3000", 0, 0, SAMSA_IMPORTANCE_MEDIUM,
     "Specifies how many records to attempt to batch together for insertion (one transaction)."},
    {"delete.enabled", SAMSA_CONFIG_BOOLEAN, "false", 0, 0, SAMSA_IMPORTANCE_MEDIUM,
     "Whether to treat null record values as deletes. Requires pk.mode to be record_key."},
    {"max.retries", SAMSA_CONFIG_INT, "10", 0, 0, SAMSA_IMPORTANCE_MEDIUM,
     "The maximum number of times to retry on a lost connection before failing the task."},
    {"retry.backoff.ms", SAMSA_CONFIG_INT, "3000", 0, 0, SAMSA_IMPORTANCE_MEDIUM,
     "The time in milliseconds to wait following an error before a retry attempt is made."},
};

/* A table as the sink last saw it. */
typedef struct sink_table {
    char *name;
    jdbc_column_t *cols;
    size_t ncols;
} sink_table_t;

typedef struct jsink {
    jdbc_db_t *db;
    char *table_format;
    int insert_mode, pk_mode;
    char **pk_fields, **whitelist;
    size_t npk, nwhite;
    bool auto_create, auto_evolve, delete_enabled;
    int batch_size, max_retries;
    int64_t retry_backoff_ms;
    sink_table_t *tables;
    size_t ntables;
    bool warned_tombstone;
} jsink_t;

/* One column of a row to write. */
typedef struct col {
    const char *name;
    jdbc_ctype_t type;
    bool optional, pk;
    jdbc_value_t v;
} col_t;

/* The columns of one record, with the memory their values point at. */
typedef struct row {
    col_t *c;
    size_t n, cap;
    json_t *docs[4]; /* parsed key/value payloads and schemas */
    char **owned;    /* decoded bytes, JSON text of nested values */
    size_t nowned;
    char numbuf[3][32];
} row_t;

static int parse_insert_mode(const char *m)
{
    if (!m || !*m || strcmp(m, "insert") == 0)
        return INS_INSERT;
    if (strcmp(m, "upsert") == 0)
        return INS_UPSERT;
    if (strcmp(m, "update") == 0)
        return INS_UPDATE;
    return 0;
}

static int parse_pk_mode(const char *m)
{
    if (!m || !*m || strcmp(m, "none") == 0)
        return PK_NONE;
    if (strcmp(m, "kafka") == 0)
        return PK_KAFKA;
    if (strcmp(m, "record_key") == 0)
        return PK_RECORD_KEY;
    if (strcmp(m, "record_value") == 0)
        return PK_RECORD_VALUE;
    return 0;
}

/* ------------------------------------------------------------------ validation */

static void sink_validate(samsa_connect_context_t *ctx, const samsa_connect_config_t *cfg)
{
    int im = parse_insert_mode(samsa_connect_config_get(cfg, "insert.mode"));
    int pm = parse_pk_mode(samsa_connect_config_get(cfg, "pk.mode"));
    if (!im)
        ctx->rt->config_error(ctx, "insert.mode", "Invalid value; must be one of insert, upsert, update");
    if (!pm)
        ctx->rt->config_error(ctx, "pk.mode", "Invalid value; must be one of none, kafka, record_key, record_value");
    if ((im == INS_UPSERT || im == INS_UPDATE) && pm == PK_NONE)
        ctx->rt->config_error(ctx, "pk.mode", "insert.mode upsert and update need primary key columns: "
                                              "set pk.mode to kafka, record_key or record_value");
    if (jdbc_cfg_bool(cfg, "delete.enabled", false) && pm != PK_RECORD_KEY)
        ctx->rt->config_error(ctx, "delete.enabled", "Deletes are only supported for pk.mode record_key");
    char **pk;
    size_t npk = jdbc_split_list(samsa_connect_config_get(cfg, "pk.fields"), &pk);
    jdbc_names_free(pk, npk);
    if (pm == PK_KAFKA && npk != 0 && npk != 3)
        ctx->rt->config_error(ctx, "pk.fields", "pk.mode kafka needs exactly 3 pk.fields (topic, "
                                                "partition and offset column names) or none");
    jdbc_int_check(ctx, cfg, "batch.size", 1);
    jdbc_int_check(ctx, cfg, "max.retries", 0);
    const char *url = samsa_connect_config_get(cfg, "connection.url");
    if (!url)
        return;
    char err[512];
    jdbc_url_t u;
    if (jdbc_url_parse(url, NULL, NULL, &u, err, sizeof err) != 0) {
        ctx->rt->config_error(ctx, "connection.url", err);
        return;
    }
    /* Validation must not leave a new SQLite file behind: a missing one only needs a
     * directory the task can create it in. */
    if (u.kind == JDBC_SQLITE && access(u.path, F_OK) != 0) {
        char *dir = strdup(u.path), *slash = strrchr(dir, '/');
        if (slash)
            *(slash == dir ? slash + 1 : slash) = 0;
        if (access(slash ? dir : ".", W_OK) != 0) {
            snprintf(err, sizeof err, "Cannot create SQLite database %s: %s", u.path, strerror(errno));
            ctx->rt->config_error(ctx, "connection.url", err);
        }
        free(dir);
        jdbc_url_free(&u);
        return;
    }
    jdbc_url_free(&u);
    jdbc_close(jdbc_open_validate(ctx, cfg));
}

static int sink_task_configs(samsa_connect_context_t *ctx, const samsa_connect_config_t *cfg,
                             int max_tasks, char *err, size_t err_len)
{
    for (int i = 0; i < max_tasks; i++)
        if (ctx->rt->add_task_config(ctx, cfg) != 0) {
            snprintf(err, err_len, "cannot add task config");
            return -1;
        }
    return 0;
}

/* ------------------------------------------------------------------ task */

static void tables_forget(jsink_t *s)
{
    for (size_t i = 0; i < s->ntables; i++) {
        free(s->tables[i].name);
        jdbc_columns_free(s->tables[i].cols, s->tables[i].ncols);
    }
    free(s->tables);
    s->tables = NULL;
    s->ntables = 0;
}

static void sink_free(jsink_t *s)
{
    tables_forget(s);
    jdbc_close(s->db);
    free(s->table_format);
    jdbc_names_free(s->pk_fields, s->npk);
    jdbc_names_free(s->whitelist, s->nwhite);
    free(s);
}

static int sink_start(samsa_connect_context_t *ctx, const samsa_connect_config_t *cfg, void **out,
                      char *err, size_t err_len)
{
    jsink_t *s = calloc(1, sizeof *s);
    if (!s)
        abort();
    const char *tf = samsa_connect_config_get(cfg, "table.name.format");
    s->table_format = strdup(tf && *tf ? tf : "${topic}");
    s->insert_mode = parse_insert_mode(samsa_connect_config_get(cfg, "insert.mode"));
    s->pk_mode = parse_pk_mode(samsa_connect_config_get(cfg, "pk.mode"));
    s->npk = jdbc_split_list(samsa_connect_config_get(cfg, "pk.fields"), &s->pk_fields);
    s->nwhite = jdbc_split_list(samsa_connect_config_get(cfg, "fields.whitelist"), &s->whitelist);
    s->auto_create = jdbc_cfg_bool(cfg, "auto.create", false);
    s->auto_evolve = jdbc_cfg_bool(cfg, "auto.evolve", false);
    s->delete_enabled = jdbc_cfg_bool(cfg, "delete.enabled", false);
    s->batch_size = (int)jdbc_cfg_i64(cfg, "batch.size", 3000);
    s->max_retries = (int)jdbc_cfg_i64(cfg, "max.retries", 10);
    s->retry_backoff_ms = jdbc_cfg_i64(cfg, "retry.backoff.ms", 3000);
    if (s->batch_size < 1)
        s->batch_size = 1;
    if (!s->insert_mode || !s->pk_mode) {
        snprintf(err, err_len, "invalid insert.mode or pk.mode");
        goto fail;
    }
    if (s->insert_mode != INS_INSERT && s->pk_mode == PK_NONE) {
        snprintf(err, err_len, "insert.mode %s needs a pk.mode other than none",
                 samsa_connect_config_get(cfg, "insert.mode"));
        goto fail;
    }
    s->db = jdbc_open_task(ctx, cfg, true, err, err_len);
    if (!s->db)
        goto fail;
    *out = s;
    return 0;
fail:
    sink_free(s);
    return -1;
}

/* ------------------------------------------------------------------ records to rows */

static void row_free(row_t *r)
{
    for (int i = 0; i < 4; i++)
        json_decref(r->docs[i]);
    for (size_t i = 0; i < r->nowned; i++)
        free(r->owned[i]);
    free(r->owned);
    free(r->c);
    memset(r, 0, sizeof *r);
}

static char *row_keep(row_t *r, char *p)
{
    r->owned = realloc(r->owned, (r->nowned + 1) * sizeof *r->owned);
    if (!r->owned)
        abort();
    r->owned[r->nowned++] = p;
    return p;
}

static col_t *row_add(row_t *r, const char *name, jdbc_ctype_t t, bool optional, bool pk)
{
    for (size_t i = 0; i < r->n; i++)
        if (strcmp(r->c[i].name, name) == 0) { /* already there (a pk field of the value) */
            r->c[i].pk |= pk;
            return NULL;
        }
    if (r->n == r->cap) {
        r->cap = r->cap ? r->cap * 2 : 16;
        r->c = realloc(r->c, r->cap * sizeof *r->c);
        if (!r->c)
            abort();
    }
    col_t *c = &r->c[r->n++];
    *c = (col_t){.name = name, .type = t, .optional = optional, .pk = pk};
    return c;
}

static bool in_list(char **list, size_t n, const char *name)
{
    for (size_t i = 0; i < n; i++)
        if (strcmp(list[i], name) == 0)
            return true;
    return false;
}

/* The JSON value j as a bound value of type t. */
static bool json_to_value(row_t *r, col_t *c, json_t *j, char *err, size_t err_len)
{
    c->v = (jdbc_value_t){.t = c->type};
    if (!j || json_is_null(j)) {
        if (!c->optional && !c->pk) {
            snprintf(err, err_len, "field %s is null but its schema is not optional", c->name);
            return false;
        }
        c->v.t = JC_NONE;
        return true;
    }
    switch (c->type) {
    case JC_INT8: case JC_INT16: case JC_INT32: case JC_INT64: case JC_TIMESTAMP: case JC_DATE:
    case JC_TIME:
        if (!json_is_integer(j))
            goto bad;
        c->v.i = json_integer_value(j);
        if (c->type == JC_TIMESTAMP)
            c->v.i *= 1000000; /* ms -> ns */
        return true;
    case JC_FLOAT32: case JC_FLOAT64:
        if (!json_is_number(j))
            goto bad;
        c->v.d = json_number_value(j);
        return true;
    case JC_BOOLEAN:
        if (!json_is_boolean(j))
            goto bad;
        c->v.i = json_is_true(j);
        return true;
    case JC_BYTES: {
        if (!json_is_string(j))
            goto bad;
        size_t n;
        unsigned char *b = jdbc_b64_decode(json_string_value(j), json_string_length(j), &n);
        if (!b)
            goto bad;
        c->v.s = row_keep(r, (char *)b);
        c->v.len = n;
        return true;
    }
    default:
        if (json_is_string(j)) {
            c->v.s = json_string_value(j);
            c->v.len = json_string_length(j);
        } else { /* schemaless nested value: its JSON text */
            c->v.s = row_keep(r, json_dumps(j, JSON_COMPACT | JSON_ENCODE_ANY));
            c->v.len = strlen(c->v.s);
        }
        return true;
    }
bad:
    snprintf(err, err_len, "field %s: value %s does not match its schema type %s", c->name,
             json_is_string(j) ? "(a string)" : json_is_integer(j) ? "(an integer)" : "(not convertible)",
             jdbc_ctype_schema_type(c->type));
    return false;
}

static jdbc_ctype_t infer_type(json_t *j)
{
    if (json_is_integer(j))
        return JC_INT64;
    if (json_is_real(j))
        return JC_FLOAT64;
    if (json_is_boolean(j))
        return JC_BOOLEAN;
    return JC_STRING;
}

/* Parse a record key or value into (payload, schema) JSON kept in r->docs[slot..]. */
static int parse_part(row_t *r, int slot, const samsa_connect_value_t *v, json_t **payload,
                      json_t **schema, char *err, size_t err_len)
{
    *payload = *schema = NULL;
    if (v->schema) {
        r->docs[slot + 1] = json_loads(v->schema, 0, NULL);
        *schema = r->docs[slot + 1];
    }
    switch (v->kind) {
    case SAMSA_VALUE_NULL:
        return 0;
    case SAMSA_VALUE_STRING:
        r->docs[slot] = json_stringn_nocheck(v->data, v->len);
        break;
    case SAMSA_VALUE_BYTES: {
        char *b = jdbc_b64_encode((const unsigned char *)v->data, v->len);
        r->docs[slot] = json_string(b);
        free(b);
        break;
    }
    case SAMSA_VALUE_JSON:
        r->docs[slot] = json_loadb(v->data, v->len, JSON_DECODE_ANY, NULL);
        if (!r->docs[slot]) {
            snprintf(err, err_len, "the record's JSON is malformed");
            return -1;
        }
        break;
    }
    *payload = r->docs[slot];
    return 0;
}

/* Add the fields of a struct (payload object + schema, or schemaless object) to r.
 * only/nonly: keep just these names (none: all); pk marks them as key columns. */
static int add_struct(row_t *r, json_t *payload, json_t *schema, char **only, size_t nonly, bool pk,
                      const char *what, char *err, size_t err_len)
{
    if (schema) {
        json_t *fields = json_object_get(schema, "fields");
        size_t i;
        json_t *f;
        json_array_foreach(fields, i, f) {
            const char *name = json_string_value(json_object_get(f, "field"));
            if (!name || (nonly && !in_list(only, nonly, name)))
                continue;
            const char *type = json_string_value(json_object_get(f, "type"));
            jdbc_ctype_t t = jdbc_ctype_from_schema(type, json_string_value(json_object_get(f, "name")));
            if (t == JC_NONE) {
                snprintf(err, err_len, "%s field %s has schema type %s%s%s, which the JDBC sink cannot "
                                       "write to a column", what, name, type ? type : "?",
                         json_object_get(f, "name") ? " " : "",
                         json_object_get(f, "name") ? json_string_value(json_object_get(f, "name")) : "");
                return -1;
            }
            col_t *c = row_add(r, name, t, json_is_true(json_object_get(f, "optional")), pk);
            if (c && !json_to_value(r, c, json_object_get(payload, name), err, err_len))
                return -1;
        }
        return 0;
    }
    const char *name;
    json_t *j;
    json_object_foreach(payload, name, j) {
        if (nonly && !in_list(only, nonly, name))
            continue;
        col_t *c = row_add(r, name, infer_type(j), true, pk);
        if (c && !json_to_value(r, c, j, err, err_len))
            return -1;
    }
    return 0;
}

/* The schema's "type", or "" when it has none. */
static const char *schema_type(json_t *schema)
{
    const char *t = json_string_value(json_object_get(schema, "type"));
    return t ? t : "";
}

static bool is_struct(json_t *payload, json_t *schema)
{
    if (schema)
        return json_is_object(payload) &&
               strcmp(schema_type(schema), "struct") == 0;
    return json_is_object(payload);
}

/* The key columns from the record key. */
static int add_key(jsink_t *s, row_t *r, json_t *kp, json_t *ks, char *err, size_t err_len)
{
    if (!kp || json_is_null(kp)) {
        snprintf(err, err_len, "pk.mode record_key but the record has a null key");
        return -1;
    }
    if (is_struct(kp, ks)) {
        size_t before = r->n;
        if (add_struct(r, kp, ks, s->pk_fields, s->npk, true, "key", err, err_len) != 0)
            return -1;
        if (r->n == before) {
            snprintf(err, err_len, "the record key has none of the pk.fields");
            return -1;
        }
        return 0;
    }
    if (json_is_object(kp) || json_is_array(kp)) {
        snprintf(err, err_len, "a record key used as primary key must be a struct or a primitive");
        return -1;
    }
    jdbc_ctype_t t = ks ? jdbc_ctype_from_schema(json_string_value(json_object_get(ks, "type")),
                                                 json_string_value(json_object_get(ks, "name")))
                        : infer_type(kp);
    if (t == JC_NONE)
        t = infer_type(kp);
    col_t *c = row_add(r, s->npk ? s->pk_fields[0] : "__connect_key", t, false, true);
    return c && !json_to_value(r, c, kp, err, err_len) ? -1 : 0;
}

static int add_kafka_pk(jsink_t *s, row_t *r, const samsa_connect_sink_record_t *rec)
{
    const char *names[3] = {"__connect_topic", "__connect_partition", "__connect_offset"};
    if (s->npk == 3)
        for (int i = 0; i < 3; i++)
            names[i] = s->pk_fields[i];
    col_t *c = row_add(r, names[0], JC_STRING, false, true);
    if (c)
        c->v = (jdbc_value_t){.t = JC_STRING, .s = rec->topic, .len = strlen(rec->topic)};
    c = row_add(r, names[1], JC_INT32, false, true);
    if (c)
        c->v = (jdbc_value_t){.t = JC_INT32, .i = rec->kafka_partition};
    c = row_add(r, names[2], JC_INT64, false, true);
    if (c)
        c->v = (jdbc_value_t){.t = JC_INT64, .i = rec->kafka_offset};
    return 0;
}

/* Build the row of rec. *tombstone: a null value (no value columns). */
static int record_row(jsink_t *s, const samsa_connect_sink_record_t *rec, row_t *r, bool *tombstone,
                      char *err, size_t err_len)
{
    json_t *kp, *ks, *vp, *vs;
    if (parse_part(r, 0, &rec->key, &kp, &ks, err, err_len) != 0 ||
        parse_part(r, 2, &rec->value, &vp, &vs, err, err_len) != 0)
        return -1;
    *tombstone = !vp || json_is_null(vp);
    if (s->pk_mode == PK_KAFKA)
        add_kafka_pk(s, r, rec);
    else if (s->pk_mode == PK_RECORD_KEY && add_key(s, r, kp, ks, err, err_len) != 0)
        return -1;
    if (*tombstone)
        return 0;
    if (!is_struct(vp, vs)) {
        snprintf(err, err_len, "the JDBC sink needs record values that are structs with a schema "
                               "(JsonConverter schemas.enable=true) or JSON objects, but found %s%s",
                 vs ? "a value of schema type " : "a schemaless ",
                 vs ? schema_type(vs)
                    : (json_is_string(vp) ? "string" : "non-object value"));
        return -1;
    }
    if (s->pk_mode == PK_RECORD_VALUE) {
        size_t before = r->n;
        if (add_struct(r, vp, vs, s->pk_fields, s->npk, true, "value", err, err_len) != 0)
            return -1;
        if (r->n == before) {
            snprintf(err, err_len, "pk.mode record_value: the value has none of the pk.fields");
            return -1;
        }
    }
    return add_struct(r, vp, vs, s->whitelist, s->nwhite, false, "value", err, err_len);
}

/* ------------------------------------------------------------------ tables */

static char *table_name(const jsink_t *s, const char *topic)
{
    jdbc_sb_t b = {0};
    jdbc_sb_add(&b, "");
    for (const char *p = s->table_format; *p;) {
        if (strncmp(p, "${topic}", 8) == 0) {
            jdbc_sb_add(&b, topic);
            p += 8;
        } else {
            char c[2] = {*p++, 0};
            jdbc_sb_add(&b, c);
        }
    }
    return b.s;
}

static sink_table_t *table_find(jsink_t *s, const char *name)
{
    for (size_t i = 0; i < s->ntables; i++)
        if (strcmp(s->tables[i].name, name) == 0)
            return &s->tables[i];
    return NULL;
}

static const jdbc_column_t *table_col(const sink_table_t *t, const char *name)
{
    for (size_t i = 0; i < t->ncols; i++)
        if (strcmp(t->cols[i].name, name) == 0)
            return &t->cols[i];
    return NULL;
}

static int create_table(jsink_t *s, const char *name, const row_t *r, char *err, size_t err_len)
{
    jdbc_sb_t sql = {0};
    jdbc_sb_add(&sql, "CREATE TABLE ");
    jdbc_sb_ident(&sql, name);
    jdbc_sb_add(&sql, " (");
    size_t npk = 0;
    for (size_t i = 0; i < r->n; i++) {
        jdbc_sb_add(&sql, i ? ", " : "");
        jdbc_sb_ident(&sql, r->c[i].name);
        jdbc_sb_addf(&sql, " %s%s", jdbc_ctype_sql(jdbc_db_kind(s->db), r->c[i].type),
                     r->c[i].optional && !r->c[i].pk ? "" : " NOT NULL");
        npk += r->c[i].pk;
    }
    if (npk) {
        jdbc_sb_add(&sql, ", PRIMARY KEY (");
        for (size_t i = 0, k = 0; i < r->n; i++)
            if (r->c[i].pk) {
                jdbc_sb_add(&sql, k++ ? ", " : "");
                jdbc_sb_ident(&sql, r->c[i].name);
            }
        jdbc_sb_add(&sql, ")");
    }
    jdbc_sb_add(&sql, ")");
    int rc = jdbc_exec(s->db, sql.s, NULL, 0, NULL, err, err_len);
    jdbc_sb_free(&sql);
    return rc;
}

/* Add the row's columns the table lacks (auto.evolve), or fail naming them. */
static int evolve_table(jsink_t *s, sink_table_t *t, const row_t *r, bool *changed, char *err,
                        size_t err_len)
{
    *changed = false;
    jdbc_sb_t missing = {0};
    jdbc_sb_add(&missing, "");
    for (size_t i = 0; i < r->n; i++)
        if (!table_col(t, r->c[i].name))
            jdbc_sb_addf(&missing, "%s%s", missing.len ? ", " : "", r->c[i].name);
    if (!missing.len) {
        jdbc_sb_free(&missing);
        return 0;
    }
    int rc = 0;
    if (!s->auto_evolve) {
        snprintf(err, err_len, "Table %s is missing fields (%s) and auto-evolution is disabled", t->name,
                 missing.s);
        rc = -1;
    }
    for (size_t i = 0; rc == 0 && i < r->n; i++) {
        const col_t *c = &r->c[i];
        if (table_col(t, c->name))
            continue;
        if (!c->optional || c->pk) {
            snprintf(err, err_len, "Cannot ALTER TABLE %s to add missing field %s, as it is not optional",
                     t->name, c->name);
            rc = -1;
            break;
        }
        jdbc_sb_t sql = {0};
        jdbc_sb_add(&sql, "ALTER TABLE ");
        jdbc_sb_ident(&sql, t->name);
        jdbc_sb_add(&sql, " ADD COLUMN ");
        jdbc_sb_ident(&sql, c->name);
        jdbc_sb_addf(&sql, " %s", jdbc_ctype_sql(jdbc_db_kind(s->db), c->type));
        rc = jdbc_exec(s->db, sql.s, NULL, 0, NULL, err, err_len);
        jdbc_sb_free(&sql);
        *changed = true;
    }
    jdbc_sb_free(&missing);
    return rc;
}

/* The table name, known to have every column of r (created/evolved as configured).
 * NULL with err. A tombstone (r holds only key columns) never creates a table:
 * *absent is set instead. */
static sink_table_t *ensure_table(jsink_t *s, const char *name, const row_t *r, bool tombstone,
                                  bool *absent, char *err, size_t err_len)
{
    *absent = false;
    sink_table_t *t = table_find(s, name);
    for (int round = 0; round < 3; round++) {
        if (!t) {
            jdbc_column_t *cols;
            size_t n;
            bool exists;
            if (jdbc_table_columns(s->db, name, &cols, &n, &exists, err, err_len) != 0)
                return NULL;
            if (!exists) {
                if (tombstone) {
                    *absent = true;
                    return NULL;
                }
                if (!s->auto_create) {
                    snprintf(err, err_len, "Table %s is missing and auto-creation is disabled", name);
                    return NULL;
                }
                if (create_table(s, name, r, err, err_len) != 0)
                    return NULL;
                continue;
            }
            s->tables = realloc(s->tables, (s->ntables + 1) * sizeof *s->tables);
            if (!s->tables)
                abort();
            t = &s->tables[s->ntables++];
            *t = (sink_table_t){strdup(name), cols, n};
        }
        bool changed;
        if (evolve_table(s, t, r, &changed, err, err_len) != 0)
            return NULL;
        if (!changed)
            return t;
        /* Re-read the evolved table. */
        jdbc_columns_free(t->cols, t->ncols);
        free(t->name);
        *t = s->tables[--s->ntables];
        t = NULL;
    }
    snprintf(err, err_len, "Table %s keeps changing under the sink", name);
    return NULL;
}

/* ------------------------------------------------------------------ statements */

static void add_where_pk(jdbc_sb_t *sql, const jdbc_db_t *db, const row_t *r, jdbc_value_t *ps,
                         size_t *np)
{
    jdbc_sb_add(sql, " WHERE ");
    for (size_t i = 0, k = 0; i < r->n; i++)
        if (r->c[i].pk) {
            jdbc_sb_add(sql, k++ ? " AND " : "");
            jdbc_sb_ident(sql, r->c[i].name);
            jdbc_sb_add(sql, " = ");
            ps[(*np)++] = r->c[i].v;
            jdbc_sb_param(sql, db, *np);
        }
}

/* The statement that writes r (or deletes it) and its parameters. */
static void build_write(const jsink_t *s, const char *table, const row_t *r, bool del, jdbc_sb_t *sql,
                        jdbc_value_t *ps, size_t *np)
{
    *np = 0;
    size_t nonpk = 0;
    for (size_t i = 0; i < r->n; i++)
        nonpk += !r->c[i].pk;
    if (del) {
        jdbc_sb_add(sql, "DELETE FROM ");
        jdbc_sb_ident(sql, table);
        add_where_pk(sql, s->db, r, ps, np);
        return;
    }
    if (s->insert_mode == INS_UPDATE) {
        jdbc_sb_add(sql, "UPDATE ");
        jdbc_sb_ident(sql, table);
        jdbc_sb_add(sql, " SET ");
        for (size_t i = 0, k = 0; i < r->n; i++)
            if (!r->c[i].pk) {
                jdbc_sb_add(sql, k++ ? ", " : "");
                jdbc_sb_ident(sql, r->c[i].name);
                jdbc_sb_add(sql, " = ");
                ps[(*np)++] = r->c[i].v;
                jdbc_sb_param(sql, s->db, *np);
            }
        add_where_pk(sql, s->db, r, ps, np);
        return;
    }
    jdbc_sb_add(sql, "INSERT INTO ");
    jdbc_sb_ident(sql, table);
    jdbc_sb_add(sql, " (");
    for (size_t i = 0; i < r->n; i++) {
        jdbc_sb_add(sql, i ? ", " : "");
        jdbc_sb_ident(sql, r->c[i].name);
    }
    jdbc_sb_add(sql, ") VALUES (");
    for (size_t i = 0; i < r->n; i++) {
        jdbc_sb_add(sql, i ? ", " : "");
        ps[(*np)++] = r->c[i].v;
        jdbc_sb_param(sql, s->db, *np);
    }
    jdbc_sb_add(sql, ")");
    if (s->insert_mode != INS_UPSERT)
        return;
    jdbc_sb_add(sql, " ON CONFLICT (");
    for (size_t i = 0, k = 0; i < r->n; i++)
        if (r->c[i].pk) {
            jdbc_sb_add(sql, k++ ? ", " : "");
            jdbc_sb_ident(sql, r->c[i].name);
        }
    if (!nonpk) {
        jdbc_sb_add(sql, ") DO NOTHING");
        return;
    }
    jdbc_sb_add(sql, ") DO UPDATE SET ");
    for (size_t i = 0, k = 0; i < r->n; i++)
        if (!r->c[i].pk) {
            jdbc_sb_add(sql, k++ ? ", " : "");
            jdbc_sb_ident(sql, r->c[i].name);
            jdbc_sb_add(sql, " = EXCLUDED.");
            jdbc_sb_ident(sql, r->c[i].name);
        }
}

/* Write one record. */
static int write_record(jsink_t *s, samsa_connect_context_t *ctx, const samsa_connect_sink_record_t *rec,
                        char *err, size_t err_len)
{
    row_t r = {0};
    bool tombstone, absent;
    char *table = NULL;
    int rc = -1;
    char why[768];
    if (rec->value.kind == SAMSA_VALUE_NULL && !s->delete_enabled) {
        if (!s->warned_tombstone)
            ctx->rt->log(ctx, SAMSA_LOG_INFO, "skipping null-valued records (delete.enabled=false)");
        s->warned_tombstone = true;
        return 0;
    }
    if (record_row(s, rec, &r, &tombstone, why, sizeof why) != 0)
        goto out;
    if (tombstone && rec->key.kind == SAMSA_VALUE_NULL) {
        rc = 0; /* nothing to delete */
        goto out;
    }
    table = table_name(s, rec->topic);
    if (!ensure_table(s, table, &r, tombstone, &absent, why, sizeof why)) {
        rc = absent ? 0 : -1;
        goto out;
    }
    jdbc_sb_t sql = {0};
    jdbc_value_t *ps = calloc(2 * r.n + 1, sizeof *ps);
    if (!ps)
        abort();
    size_t np;
    build_write(s, table, &r, tombstone, &sql, ps, &np);
    int64_t changes = 0;
    rc = jdbc_exec(s->db, sql.s, ps, np, &changes, why, sizeof why);
    if (rc == 0 && s->insert_mode == INS_UPDATE && !tombstone && changes == 0)
        ctx->rt->log(ctx, SAMSA_LOG_DEBUG, "update of %s changed no row (no row with that key)", table);
    free(ps);
    jdbc_sb_free(&sql);
out:
    if (rc != 0)
        snprintf(err, err_len, "record %s-%d@%lld: %s", rec->topic, rec->kafka_partition,
                 (long long)rec->kafka_offset, why);
    free(table);
    row_free(&r);
    return rc;
}

static int write_batch(jsink_t *s, samsa_connect_context_t *ctx, const samsa_connect_sink_record_t *recs,
                       size_t n, char *err, size_t err_len)
{
    if (jdbc_exec(s->db, "BEGIN", NULL, 0, NULL, err, err_len) != 0)
        return -1;
    for (size_t i = 0; i < n; i++)
        if (write_record(s, ctx, &recs[i], err, err_len) != 0) {
            char e2[256];
            if (jdbc_exec(s->db, "ROLLBACK", NULL, 0, NULL, e2, sizeof e2) != 0 && !jdbc_lost(s->db))
                ctx->rt->log(ctx, SAMSA_LOG_WARN, "rollback failed: %s", e2);
            tables_forget(s); /* a rolled back CREATE or ALTER is gone again */
            return -1;
        }
    return jdbc_exec(s->db, "COMMIT", NULL, 0, NULL, err, err_len);
}

static void sleep_ms(int64_t ms)
{
    struct timespec ts = {(time_t)(ms / 1000), (long)(ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

static int sink_put(void *task, samsa_connect_context_t *ctx, const samsa_connect_sink_record_t *recs,
                    size_t n, char *err, size_t err_len)
{
    jsink_t *s = task;
    for (size_t off = 0; off < n; off += (size_t)s->batch_size) {
        size_t k = n - off < (size_t)s->batch_size ? n - off : (size_t)s->batch_size;
        for (int attempt = 0;; attempt++) {
            if (write_batch(s, ctx, recs + off, k, err, err_len) == 0)
                break;
            if (!jdbc_lost(s->db) || attempt >= s->max_retries || ctx->rt->should_yield(ctx))
                return -1;
            ctx->rt->log(ctx, SAMSA_LOG_WARN, "%s; reconnecting and retrying (%d of %d)", err,
                         attempt + 1, s->max_retries);
            for (int64_t w = 0; w < s->retry_backoff_ms && !ctx->rt->should_yield(ctx); w += 50)
                sleep_ms(50);
            char e2[512];
            if (jdbc_reconnect(s->db, e2, sizeof e2) != 0)
                ctx->rt->log(ctx, SAMSA_LOG_WARN, "%s", e2);
        }
    }
    return 0;
}

/* Every put committed its transactions before it returned: nothing is pending. */
static int sink_flush(void *task, samsa_connect_context_t *ctx, char *err, size_t err_len)
{
    (void)task;
    (void)ctx;
    (void)err;
    (void)err_len;
    return 0;
}

static void sink_stop(void *task, samsa_connect_context_t *ctx)
{
    (void)ctx;
    if (task)
        sink_free(task);
}

const samsa_connect_plugin_t cn_jdbc_sink_plugin = {
    .abi_version = SAMSA_CONNECT_ABI_VERSION,
    .struct_size = sizeof(samsa_connect_plugin_t),
    .class_name = "io.confluent.connect.jdbc.JdbcSinkConnector",
    .aliases = aliases,
    .version = CN_VERSION,
    .type = SAMSA_CONNECT_SINK,
    .config_defs = defs,
    .config_def_count = sizeof defs / sizeof *defs,
    .validate = sink_validate,
    .task_configs = sink_task_configs,
    .task_start = sink_start,
    .sink_put = sink_put,
    .sink_flush = sink_flush,
    .task_stop = sink_stop,
};
