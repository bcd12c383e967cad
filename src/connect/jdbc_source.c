/*
 * jdbc_source.c - the built-in JDBC source connector, Confluent's
 * io.confluent.connect.jdbc.JdbcSourceConnector (aliases JdbcSource,
 * JdbcSourceConnector) with its config keys, over SQLite and PostgreSQL (jdbc.h).
 *
 * The connector splits the tables (table.whitelist / table.include.list, or every
 * table of the database) round-robin over at most tasks.max tasks; a query runs in
 * one task. Each task polls its tables in turn, each at most every poll.interval.ms
 * (sooner while a query returns a full batch.max.rows):
 *
 *   bulk                   SELECT * FROM t                       (no offsets)
 *   incrementing           ... WHERE inc > last ORDER BY inc LIMIT batch
 *   timestamp              ... WHERE ts > last AND ts < now - delay ORDER BY ts
 *   timestamp+incrementing ... WHERE ts < now - delay AND ((ts = last AND inc > last_inc)
 *                                 OR ts > last) ORDER BY ts, inc LIMIT batch
 *
 * (ts: the timestamp column, or COALESCE of timestamp.column.name's list, wrapped in
 * SQLite in strftime('%Y-%m-%d %H:%M:%f', ..) to compare text timestamps; a query is
 * wrapped as SELECT * FROM (<query>) AS samsa_q WHERE ...). Timestamp mode
 * alone takes no LIMIT: rows sharing the last timestamp must all come in one result,
 * or the strict '>' would skip the rest.
 *
 * Each row becomes a record on topic.prefix + table (the prefix alone for a query)
 * whose value is a Connect struct named after the table, with one field per column
 * (types: jdbc_types.c), optional unless the column is NOT NULL. Source partition
 * {"table": name} or {"query": text}; source offset {"incrementing": n} and/or
 * {"timestamp": ms, "timestamp_nanos": nanos within the second}, Confluent's shape,
 * read back on start so a restarted task continues after the last row whose record
 * the broker acknowledged. The key is null, unless key.column.name (a Samsa
 * extension, what Kafka's ValueToKey transform would do) names columns for a key
 * struct.
 *
 * A lost PostgreSQL connection is re-opened connection.attempts times,
 * connection.backoff.ms apart, before the task fails with the error as its trace.
 *
 * Runs on the task's thread; all state is in the task object.
 */
#define _GNU_SOURCE
#include "cn.h"
#include "jdbc.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

enum { MODE_BULK = 1, MODE_INC, MODE_TS, MODE_TS_INC };

static const char *const aliases[] = {"JdbcSource", "JdbcSourceConnector", NULL};

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
    {"mode", SAMSA_CONFIG_STRING, NULL, 1, 1, SAMSA_IMPORTANCE_HIGH,
     "The mode for updating a table each time it is polled: bulk, incrementing, timestamp, "
     "timestamp+incrementing"},
    {"incrementing.column.name", SAMSA_CONFIG_STRING, "", 0, 0, SAMSA_IMPORTANCE_MEDIUM,
     "The name of the strictly incrementing column to use to detect new rows."},
    {"timestamp.column.name", SAMSA_CONFIG_STRING, "", 0, 0, SAMSA_IMPORTANCE_MEDIUM,
     "The name of the timestamp column to use to detect new or modified rows."},
    {"timestamp.delay.interval.ms", SAMSA_CONFIG_LONG, "0", 0, 0, SAMSA_IMPORTANCE_HIGH,
     "How long to wait after a row with a certain timestamp appears before it is included."},
    {"table.whitelist", SAMSA_CONFIG_LIST, "", 0, 0, SAMSA_IMPORTANCE_MEDIUM,
     "List of tables to include in copying (deprecated name of table.include.list)."},
    {"table.include.list", SAMSA_CONFIG_LIST, "", 0, 0, SAMSA_IMPORTANCE_MEDIUM,
     "List of tables to include in copying. Empty: every table."},
    {"table.blacklist", SAMSA_CONFIG_LIST, "", 0, 0, SAMSA_IMPORTANCE_MEDIUM,
     "List of tables to exclude from copying (deprecated name of table.exclude.list)."},
    {"table.exclude.list", SAMSA_CONFIG_LIST, "", 0, 0, SAMSA_IMPORTANCE_MEDIUM,
     "List of tables to exclude from copying when no include list is given."},
    {"timestamp.initial", SAMSA_CONFIG_LONG, NULL, 0, 0, SAMSA_IMPORTANCE_LOW,
     "The epoch timestamp (ms) used for initial queries that use timestamp criteria; -1: the current "
     "time. If not specified, all data is retrieved."},
    {"query", SAMSA_CONFIG_STRING, "", 0, 0, SAMSA_IMPORTANCE_MEDIUM,
     "Use this query instead of copying whole tables."},
    {"topic.prefix", SAMSA_CONFIG_STRING, NULL, 1, 0, SAMSA_IMPORTANCE_HIGH,
     "Prefix to prepend to table names to generate the topic name (the topic name for a query)."},
    {"poll.interval.ms", SAMSA_CONFIG_INT, "5000", 0, 0, SAMSA_IMPORTANCE_HIGH,
     "Frequency in ms to poll for new data in each table."},
    {"batch.max.rows", SAMSA_CONFIG_INT, "100", 0, 0, SAMSA_IMPORTANCE_LOW,
     "Maximum number of rows to include in a single batch when polling for new data."},
    {"key.column.name", SAMSA_CONFIG_LIST, "", 0, 0, SAMSA_IMPORTANCE_LOW,
     "Samsa extension: columns copied into a struct record key (as the ValueToKey transform)."},
};

typedef struct src_table {
    char *name;      /* NULL for a query */
    char *partition; /* {"table":...} or {"query":...} */
    char *topic;
    bool have_inc, have_ts;
    int64_t inc;   /* last incrementing value */
    int64_t ts_ns; /* last timestamp */
    int64_t next_poll_ms;
    bool offset_loaded;
} src_table_t;

typedef struct jsrc {
    jdbc_db_t *db;
    int mode;
    char *inc_col, *ts_col, *query;
    char **ts_cols; /* timestamp.column.name's list: the first non-null one counts */
    size_t nts;
    char **key_cols;
    size_t nkey;
    int64_t poll_ms, delay_ms, backoff_ms;
    int batch, attempts;
    src_table_t *tables;
    size_t nt, rr;
} jsrc_t;

static int parse_mode(const char *m)
{
    if (!m)
        return 0;
    if (strcmp(m, "bulk") == 0)
        return MODE_BULK;
    if (strcmp(m, "incrementing") == 0)
        return MODE_INC;
    if (strcmp(m, "timestamp") == 0)
        return MODE_TS;
    if (strcmp(m, "timestamp+incrementing") == 0)
        return MODE_TS_INC;
    return 0;
}

static const char *tables_list(const samsa_connect_config_t *cfg)
{
    const char *w = samsa_connect_config_get(cfg, "table.include.list");
    if (!w || !*w)
        w = samsa_connect_config_get(cfg, "table.whitelist");
    return w && *w ? w : NULL;
}

static const char *exclude_list(const samsa_connect_config_t *cfg)
{
    const char *x = samsa_connect_config_get(cfg, "table.exclude.list");
    if (!x || !*x)
        x = samsa_connect_config_get(cfg, "table.blacklist");
    return x && *x ? x : NULL;
}

static const char *get_or(const samsa_connect_config_t *cfg, const char *key, const char *dflt)
{
    const char *v = samsa_connect_config_get(cfg, key);
    return v && *v ? v : dflt;
}

/* ------------------------------------------------------------------ validation */

static bool has_column(const jdbc_column_t *cols, size_t n, const char *name)
{
    for (size_t i = 0; i < n; i++)
        if (strcmp(cols[i].name, name) == 0)
            return true;
    return false;
}

/* Check that table has the columns the mode (and key.column.name) needs. */
static void check_columns(samsa_connect_context_t *ctx, jdbc_db_t *db, const char *list_key,
                          const char *table, int mode, const char *inc, const char *ts,
                          const samsa_connect_config_t *cfg)
{
    jdbc_column_t *cols;
    size_t n;
    bool exists;
    char err[512];
    if (jdbc_table_columns(db, table, &cols, &n, &exists, err, sizeof err) != 0) {
        ctx->rt->config_error(ctx, list_key, err);
        return;
    }
    if (!exists) {
        char msg[600];
        snprintf(msg, sizeof msg, "Table %s does not exist in the database", table);
        ctx->rt->config_error(ctx, list_key, msg);
    }
    char **need;
    size_t nneed = jdbc_split_list(ts && (mode == MODE_TS || mode == MODE_TS_INC) ? ts : "", &need);
    for (size_t k = 0; exists && k <= nneed; k++) {
        const char *col = k < nneed ? need[k] : inc;
        if (k == nneed && (!inc || (mode != MODE_INC && mode != MODE_TS_INC)))
            continue;
        if (!has_column(cols, n, col)) {
            char msg[600];
            snprintf(msg, sizeof msg, "Table %s has no column %s", table, col);
            ctx->rt->config_error(ctx, k == nneed ? "incrementing.column.name" : "timestamp.column.name",
                                  msg);
        }
    }
    jdbc_names_free(need, nneed);
    char **keys;
    size_t nk = jdbc_split_list(samsa_connect_config_get(cfg, "key.column.name"), &keys);
    for (size_t i = 0; exists && i < nk; i++)
        if (!has_column(cols, n, keys[i])) {
            char msg[600];
            snprintf(msg, sizeof msg, "Table %s has no column %s", table, keys[i]);
            ctx->rt->config_error(ctx, "key.column.name", msg);
        }
    jdbc_names_free(keys, nk);
    jdbc_columns_free(cols, n);
}

static void src_validate(samsa_connect_context_t *ctx, const samsa_connect_config_t *cfg)
{
    const char *m = samsa_connect_config_get(cfg, "mode");
    int mode = parse_mode(m);
    if (m && !mode)
        ctx->rt->config_error(ctx, "mode",
                              "Invalid value; must be one of bulk, incrementing, timestamp, timestamp+incrementing");
    const char *inc = get_or(cfg, "incrementing.column.name", NULL);
    const char *ts = get_or(cfg, "timestamp.column.name", NULL);
    if ((mode == MODE_INC || mode == MODE_TS_INC) && !inc)
        ctx->rt->config_error(ctx, "incrementing.column.name",
                              "Incrementing column name must be set in incrementing modes");
    if ((mode == MODE_TS || mode == MODE_TS_INC) && !ts)
        ctx->rt->config_error(ctx, "timestamp.column.name",
                              "Timestamp column name must be set in timestamp modes");
    const char *query = get_or(cfg, "query", NULL);
    const char *tables = tables_list(cfg);
    if (query && tables)
        ctx->rt->config_error(ctx, "query", "Do not specify table filtering (table.whitelist / "
                                            "table.include.list) with a query");
    if (tables && exclude_list(cfg))
        ctx->rt->config_error(ctx, "table.exclude.list",
                              "Cannot use an include list and an exclude list together");
    jdbc_int_check(ctx, cfg, "poll.interval.ms", 1);
    jdbc_int_check(ctx, cfg, "batch.max.rows", 1);
    const char *url = samsa_connect_config_get(cfg, "connection.url");
    if (!url)
        return; /* reported as missing already */
    char err[512];
    jdbc_db_t *db = jdbc_open_validate(ctx, cfg);
    if (!db)
        return;
    if (tables && !query) {
        const char *il = samsa_connect_config_get(cfg, "table.include.list");
        const char *list_key = il && *il ? "table.include.list" : "table.whitelist";
        char **names;
        size_t n = jdbc_split_list(tables, &names);
        for (size_t i = 0; i < n; i++)
            check_columns(ctx, db, list_key, names[i], mode, inc, ts, cfg);
        jdbc_names_free(names, n);
    } else if (query) {
        jdbc_rows_t *r;
        jdbc_sb_t sql = {0};
        jdbc_sb_addf(&sql, "SELECT * FROM (%s) AS samsa_q LIMIT 0", query);
        if (jdbc_query(db, sql.s, NULL, 0, &r, err, sizeof err) != 0)
            ctx->rt->config_error(ctx, "query", err);
        else
            jdbc_rows_close(r);
        jdbc_sb_free(&sql);
    }
    jdbc_close(db);
}

/* ------------------------------------------------------------------ task configs */

static int src_task_configs(samsa_connect_context_t *ctx, const samsa_connect_config_t *cfg,
                            int max_tasks, char *err, size_t err_len)
{
    char **names = NULL;
    size_t n = 0;
    if (get_or(cfg, "query", NULL)) {
        n = 0; /* one task runs the query */
    } else if (tables_list(cfg)) {
        n = jdbc_split_list(tables_list(cfg), &names);
    } else {
        jdbc_db_t *db = jdbc_open(samsa_connect_config_get(cfg, "connection.url"),
                                  samsa_connect_config_get(cfg, "connection.user"),
                                  samsa_connect_config_get(cfg, "connection.password"), false, err,
                                  err_len);
        if (!db)
            return -1;
        int rc = jdbc_list_tables(db, &names, &n, err, err_len);
        jdbc_close(db);
        if (rc != 0)
            return -1;
        char **skip;
        size_t nskip = jdbc_split_list(exclude_list(cfg), &skip), k = 0;
        for (size_t i = 0; i < n; i++) {
            bool excluded = false;
            for (size_t j = 0; j < nskip; j++)
                excluded |= strcmp(names[i], skip[j]) == 0;
            if (excluded)
                free(names[i]);
            else
                names[k++] = names[i];
        }
        n = k;
        jdbc_names_free(skip, nskip);
    }
    bool is_query = get_or(cfg, "query", NULL) != NULL;
    size_t ntasks = is_query ? 1 : (n < (size_t)max_tasks ? n : (size_t)max_tasks);
    if (!is_query && n == 0) {
        ctx->rt->log(ctx, SAMSA_LOG_WARN, "no tables to copy: the connector runs no task");
        jdbc_names_free(names, n);
        return 0;
    }
    int rc = 0;
    for (size_t t = 0; t < ntasks && rc == 0; t++) {
        jdbc_sb_t list = {0};
        jdbc_sb_add(&list, "");
        for (size_t i = t; names && i < n; i += ntasks)
            jdbc_sb_addf(&list, "%s%s", list.len ? "," : "", names[i]);
        samsa_connect_kv_t *kv = calloc(cfg->n + 1, sizeof *kv);
        if (!kv)
            abort();
        size_t k = 0;
        for (size_t i = 0; i < cfg->n; i++)
            if (strcmp(cfg->entries[i].key, "tables") != 0)
                kv[k++] = cfg->entries[i];
        kv[k++] = (samsa_connect_kv_t){"tables", list.s};
        samsa_connect_config_t tc = {kv, k};
        if (ctx->rt->add_task_config(ctx, &tc) != 0) {
            snprintf(err, err_len, "cannot add task config");
            rc = -1;
        }
        free(kv);
        jdbc_sb_free(&list);
    }
    jdbc_names_free(names, n);
    return rc;
}

/* ------------------------------------------------------------------ task */

static void src_free(jsrc_t *s)
{
    jdbc_close(s->db);
    free(s->inc_col);
    free(s->ts_col);
    jdbc_names_free(s->ts_cols, s->nts);
    free(s->query);
    jdbc_names_free(s->key_cols, s->nkey);
    for (size_t i = 0; i < s->nt; i++) {
        free(s->tables[i].name);
        free(s->tables[i].partition);
        free(s->tables[i].topic);
    }
    free(s->tables);
    free(s);
}

static char *json_text1(const char *key, const char *value)
{
    json_t *o = json_pack("{s:s}", key, value);
    char *t = json_dumps(o, JSON_COMPACT);
    json_decref(o);
    return t;
}

static int src_start(samsa_connect_context_t *ctx, const samsa_connect_config_t *cfg, void **out,
                     char *err, size_t err_len)
{
    jsrc_t *s = calloc(1, sizeof *s);
    if (!s)
        abort();
    s->mode = parse_mode(samsa_connect_config_get(cfg, "mode"));
    if (!s->mode) {
        snprintf(err, err_len, "Invalid value for mode: must be one of bulk, incrementing, timestamp, "
                               "timestamp+incrementing");
        goto fail;
    }
    s->inc_col = strdup(get_or(cfg, "incrementing.column.name", ""));
    s->ts_col = strdup(get_or(cfg, "timestamp.column.name", ""));
    s->nts = jdbc_split_list(s->ts_col, &s->ts_cols);
    const char *q = get_or(cfg, "query", NULL);
    s->query = q ? strdup(q) : NULL;
    s->nkey = jdbc_split_list(get_or(cfg, "key.column.name", ""), &s->key_cols);
    s->poll_ms = jdbc_cfg_i64(cfg, "poll.interval.ms", 5000);
    s->delay_ms = jdbc_cfg_i64(cfg, "timestamp.delay.interval.ms", 0);
    s->batch = (int)jdbc_cfg_i64(cfg, "batch.max.rows", 100);
    s->attempts = (int)jdbc_cfg_i64(cfg, "connection.attempts", 3);
    s->backoff_ms = jdbc_cfg_i64(cfg, "connection.backoff.ms", 10000);
    if (s->batch < 1)
        s->batch = 1;
    const char *prefix = get_or(cfg, "topic.prefix", "");
    char **names = NULL;
    size_t n = s->query ? 0 : jdbc_split_list(get_or(cfg, "tables", ""), &names);
    s->nt = s->query ? 1 : n;
    s->tables = calloc(s->nt ? s->nt : 1, sizeof *s->tables);
    if (!s->tables)
        abort();
    for (size_t i = 0; i < s->nt; i++) {
        src_table_t *t = &s->tables[i];
        t->name = s->query ? NULL : strdup(names[i]);
        t->partition = s->query ? json_text1("query", s->query) : json_text1("table", names[i]);
        jdbc_sb_t topic = {0};
        jdbc_sb_addf(&topic, "%s%s", prefix, s->query ? "" : names[i]);
        t->topic = topic.s;
        t->inc = -1;
        const char *initial = samsa_connect_config_get(cfg, "timestamp.initial");
        if (initial && *initial) { /* until a stored offset says otherwise */
            int64_t ms = jdbc_cfg_i64(cfg, "timestamp.initial", 0);
            t->have_ts = true;
            t->ts_ns = (ms == -1 ? cn_wall_ms() : ms) * 1000000;
        }
    }
    jdbc_names_free(names, n);
    if (!*prefix && s->query) {
        snprintf(err, err_len, "topic.prefix must name the topic when a query is used");
        goto fail;
    }
    s->db = jdbc_open_task(ctx, cfg, false, err, err_len);
    if (!s->db)
        goto fail;
    *out = s;
    return 0;
fail:
    src_free(s);
    return -1;
}

/* Read the stored offset of t once. */
static int load_offset(jsrc_t *s, src_table_t *t, samsa_connect_context_t *ctx, char *err,
                       size_t err_len)
{
    t->offset_loaded = true;
    const char *text = ctx->rt->offset(ctx, t->partition);
    if (!text)
        return 0;
    json_t *o = json_loads(text, 0, NULL);
    json_t *inc = json_object_get(o, "incrementing"), *ts = json_object_get(o, "timestamp"),
           *nanos = json_object_get(o, "timestamp_nanos");
    if (!json_is_object(o) || (inc && !json_is_integer(inc)) || (ts && !json_is_integer(ts)) ||
        (nanos && !json_is_integer(nanos))) {
        snprintf(err, err_len, "stored offset %s of %s is not {\"incrementing\":n,\"timestamp\":ms,"
                               "\"timestamp_nanos\":n}", text, t->partition);
        json_decref(o);
        return -1;
    }
    if (inc) {
        t->have_inc = true;
        t->inc = json_integer_value(inc);
    }
    if (ts) {
        int64_t ms = json_integer_value(ts);
        t->have_ts = true;
        t->ts_ns = nanos ? (ms >= 0 ? ms / 1000 : (ms - 999) / 1000) * 1000000000 + json_integer_value(nanos)
                         : ms * 1000000;
    }
    ctx->rt->log(ctx, SAMSA_LOG_INFO, "%s: continuing after stored offset %s", t->partition, text);
    json_decref(o);
    return 0;
}

/* The SQL expression of the timestamp: the column, or COALESCE of the columns in
 * order; SQLite's text normalized for comparison. */
static void ts_expr(jdbc_sb_t *b, const jsrc_t *s)
{
    bool lite = jdbc_db_kind(s->db) == JDBC_SQLITE;
    if (lite)
        jdbc_sb_add(b, "strftime('%Y-%m-%d %H:%M:%f', ");
    if (s->nts > 1)
        jdbc_sb_add(b, "COALESCE(");
    for (size_t i = 0; i < s->nts; i++) {
        jdbc_sb_add(b, i ? ", " : "");
        jdbc_sb_ident(b, s->ts_cols[i]);
    }
    if (s->nts > 1)
        jdbc_sb_add(b, ")");
    if (lite)
        jdbc_sb_add(b, ")");
}

/* Build the poll query of t and its parameters (ps has room for 4). */
static void build_query(const jsrc_t *s, const src_table_t *t, jdbc_sb_t *b, jdbc_value_t *ps,
                        size_t *np)
{
    size_t n = 0;
    jdbc_sb_add(b, "SELECT * FROM ");
    if (t->name)
        jdbc_sb_ident(b, t->name);
    else
        jdbc_sb_addf(b, "(%s) AS samsa_q", s->query);
    int64_t end_ns = (cn_wall_ms() - s->delay_ms) * 1000000;
    jdbc_value_t last_ts = {.t = JC_TIMESTAMP, .i = t->have_ts ? t->ts_ns : 0};
    jdbc_value_t last_inc = {.t = JC_INT64, .i = t->inc};
    jdbc_value_t end = {.t = JC_TIMESTAMP, .i = end_ns};
    switch (s->mode) {
    case MODE_INC:
        jdbc_sb_add(b, " WHERE ");
        jdbc_sb_ident(b, s->inc_col);
        jdbc_sb_add(b, " > ");
        ps[n++] = last_inc;
        jdbc_sb_param(b, s->db, n);
        jdbc_sb_add(b, " ORDER BY ");
        jdbc_sb_ident(b, s->inc_col);
        jdbc_sb_addf(b, " ASC LIMIT %d", s->batch);
        break;
    case MODE_TS:
        jdbc_sb_add(b, " WHERE ");
        ts_expr(b, s);
        jdbc_sb_add(b, " > ");
        ps[n++] = last_ts;
        jdbc_sb_param(b, s->db, n);
        jdbc_sb_add(b, " AND ");
        ts_expr(b, s);
        jdbc_sb_add(b, " < ");
        ps[n++] = end;
        jdbc_sb_param(b, s->db, n);
        jdbc_sb_add(b, " ORDER BY ");
        ts_expr(b, s);
        jdbc_sb_add(b, " ASC");
        break;
    case MODE_TS_INC:
        jdbc_sb_add(b, " WHERE ");
        ts_expr(b, s);
        jdbc_sb_add(b, " < ");
        ps[n++] = end;
        jdbc_sb_param(b, s->db, n);
        jdbc_sb_add(b, " AND ((");
        ts_expr(b, s);
        jdbc_sb_add(b, " = ");
        ps[n++] = last_ts;
        jdbc_sb_param(b, s->db, n);
        jdbc_sb_add(b, " AND ");
        jdbc_sb_ident(b, s->inc_col);
        jdbc_sb_add(b, " > ");
        ps[n++] = last_inc;
        jdbc_sb_param(b, s->db, n);
        jdbc_sb_add(b, ") OR ");
        ts_expr(b, s);
        jdbc_sb_add(b, " > ");
        ps[n++] = last_ts;
        jdbc_sb_param(b, s->db, n);
        jdbc_sb_add(b, ") ORDER BY ");
        ts_expr(b, s);
        jdbc_sb_add(b, " ASC, ");
        jdbc_sb_ident(b, s->inc_col);
        jdbc_sb_addf(b, " ASC LIMIT %d", s->batch);
        break;
    default:
        break;
    }
    *np = n;
}

/* One column's value as JSON (new ref) in its Connect form. */
static json_t *value_json(const jdbc_value_t *v)
{
    switch (v->t) {
    case JC_NONE: return json_null();
    case JC_INT8: case JC_INT16: case JC_INT32: case JC_INT64: return json_integer(v->i);
    case JC_BOOLEAN: return json_boolean(v->i);
    case JC_FLOAT32: case JC_FLOAT64: {
        json_t *r = json_real(v->d);
        return r ? r : json_null(); /* NaN and infinities have no JSON form */
    }
    case JC_TIMESTAMP: return json_integer(v->i >= 0 ? v->i / 1000000 : (v->i - 999999) / 1000000);
    case JC_DATE: case JC_TIME: return json_integer(v->i);
    case JC_BYTES: {
        char *b = jdbc_b64_encode((const unsigned char *)v->s, v->len);
        json_t *r = json_string(b);
        free(b);
        return r;
    }
    case JC_STRING: break;
    }
    json_t *r = json_stringn(v->s ? v->s : "", v->len);
    if (!r) { /* not UTF-8: keep the bytes readable rather than fail the row */
        char *b = jdbc_b64_encode((const unsigned char *)v->s, v->len);
        r = json_string(b);
        free(b);
    }
    return r;
}

static json_t *field_schema(const char *name, jdbc_ctype_t t, bool optional)
{
    json_t *f = json_pack("{s:s, s:b, s:s}", "type", jdbc_ctype_schema_type(t), "optional", optional,
                          "field", name);
    if (jdbc_ctype_logical_name(t)) {
        json_object_set_new(f, "name", json_string(jdbc_ctype_logical_name(t)));
        json_object_set_new(f, "version", json_integer(1));
    }
    return f;
}

static bool nullable(const jdbc_column_t *cols, size_t ncols, const char *name)
{
    for (size_t i = 0; i < ncols; i++)
        if (strcmp(cols[i].name, name) == 0)
            return cols[i].nullable;
    return true;
}

static bool is_key_col(const jsrc_t *s, const char *name)
{
    for (size_t i = 0; i < s->nkey; i++)
        if (strcmp(s->key_cols[i], name) == 0)
            return true;
    return false;
}

/* Emit the current row of r. */
static int emit_row(jsrc_t *s, src_table_t *t, jdbc_rows_t *r, const jdbc_column_t *cols,
                    size_t ncols, samsa_connect_context_t *ctx, char *err, size_t err_len)
{
    size_t nc = jdbc_rows_ncols(r);
    json_t *payload = json_object(), *fields = json_array();
    json_t *kpayload = s->nkey ? json_object() : NULL, *kfields = s->nkey ? json_array() : NULL;
    int rc = -1;
    bool got_inc = false, got_ts = false;
    int64_t inc = 0, ts = 0;
    size_t ts_rank = s->nts; /* index in ts_cols of the column ts came from */
    for (size_t i = 0; i < nc; i++) {
        const char *name = jdbc_rows_name(r, i);
        jdbc_value_t v;
        if (!jdbc_rows_get(r, i, &v, err, err_len))
            goto out;
        jdbc_ctype_t ct = jdbc_rows_ctype(r, i);
        bool opt = nullable(cols, ncols, name);
        json_array_append_new(fields, field_schema(name, ct, opt));
        json_object_set_new(payload, name, value_json(&v));
        if (kfields && is_key_col(s, name)) {
            json_array_append_new(kfields, field_schema(name, ct, opt));
            json_object_set_new(kpayload, name, value_json(&v));
        }
        if (*s->inc_col && strcmp(name, s->inc_col) == 0 && v.t != JC_NONE) {
            got_inc = true;
            inc = v.t == JC_FLOAT32 || v.t == JC_FLOAT64 ? (int64_t)v.d : v.i;
        }
        for (size_t k = 0; k < ts_rank && v.t == JC_TIMESTAMP; k++)
            if (strcmp(name, s->ts_cols[k]) == 0) {
                got_ts = true;
                ts = v.i;
                ts_rank = k;
            }
    }
    bool need_inc = s->mode == MODE_INC || s->mode == MODE_TS_INC;
    bool need_ts = s->mode == MODE_TS || s->mode == MODE_TS_INC;
    if ((need_inc && !got_inc) || (need_ts && !got_ts)) {
        snprintf(err, err_len, "%s: a row has no non-null %s column %s", t->name ? t->name : "query",
                 need_inc && !got_inc ? "incrementing" : "timestamp",
                 need_inc && !got_inc ? s->inc_col : s->ts_col);
        goto out;
    }
    json_t *schema = json_pack("{s:s, s:o, s:b, s:s}", "type", "struct", "fields", fields, "optional", 0,
                               "name", t->name ? t->name : "query");
    fields = NULL;
    char *vschema = schema ? json_dumps(schema, JSON_COMPACT) : NULL;
    char *vtext = json_dumps(payload, JSON_COMPACT);
    json_decref(schema);
    if (!vschema || !vtext) { /* a table or column name that is not UTF-8 */
        snprintf(err, err_len, "%s: a row cannot be written as JSON (names must be UTF-8)",
                 t->name ? t->name : "query");
        free(vschema);
        free(vtext);
        goto out;
    }
    char *kschema = NULL, *ktext = NULL;
    if (kfields) {
        json_t *ks = json_pack("{s:s, s:O, s:b}", "type", "struct", "fields", kfields, "optional", 0);
        kschema = json_dumps(ks, JSON_COMPACT);
        ktext = json_dumps(kpayload, JSON_COMPACT);
        json_decref(ks);
    }
    char offset[160] = "";
    if (need_inc) {
        t->inc = inc;
        t->have_inc = true;
    }
    if (need_ts) {
        t->ts_ns = ts;
        t->have_ts = true;
    }
    int64_t secs = ts >= 0 ? ts / 1000000000 : (ts - 999999999) / 1000000000;
    int64_t ms = ts >= 0 ? ts / 1000000 : (ts - 999999) / 1000000;
    if (s->mode == MODE_INC)
        snprintf(offset, sizeof offset, "{\"incrementing\":%lld}", (long long)inc);
    else if (s->mode == MODE_TS)
        snprintf(offset, sizeof offset, "{\"timestamp\":%lld,\"timestamp_nanos\":%lld}", (long long)ms,
                 (long long)(ts - secs * 1000000000));
    else if (s->mode == MODE_TS_INC)
        snprintf(offset, sizeof offset,
                 "{\"timestamp\":%lld,\"timestamp_nanos\":%lld,\"incrementing\":%lld}", (long long)ms,
                 (long long)(ts - secs * 1000000000), (long long)inc);
    samsa_connect_source_record_t rec = {
        .source_partition = s->mode == MODE_BULK ? NULL : t->partition,
        .source_offset = s->mode == MODE_BULK ? NULL : offset,
        .topic = t->topic,
        .kafka_partition = -1,
        .key = {ktext ? SAMSA_VALUE_JSON : SAMSA_VALUE_NULL, ktext, ktext ? strlen(ktext) : 0, kschema},
        .value = {SAMSA_VALUE_JSON, vtext, strlen(vtext), vschema},
        .timestamp_ms = -1,
    };
    rc = ctx->rt->emit(ctx, &rec);
    if (rc != 0)
        snprintf(err, err_len, "the worker refused a record of %s", t->name ? t->name : "the query");
    free(vschema);
    free(vtext);
    free(kschema);
    free(ktext);
out:
    json_decref(payload);
    json_decref(fields);
    json_decref(kpayload);
    json_decref(kfields);
    return rc;
}

/* Run one poll query of t. *full: it returned a whole batch (poll again soon). */
static int poll_table(jsrc_t *s, src_table_t *t, samsa_connect_context_t *ctx, bool *full,
                      char *err, size_t err_len)
{
    *full = false;
    if (!t->offset_loaded && s->mode != MODE_BULK && load_offset(s, t, ctx, err, err_len) != 0)
        return -1;
    jdbc_column_t *cols = NULL;
    size_t ncols = 0;
    bool exists = true;
    if (t->name && jdbc_table_columns(s->db, t->name, &cols, &ncols, &exists, err, err_len) != 0)
        return -1;
    if (!exists) {
        snprintf(err, err_len, "Table %s does not exist", t->name);
        return -1;
    }
    jdbc_sb_t sql = {0};
    jdbc_value_t ps[4];
    size_t np;
    build_query(s, t, &sql, ps, &np);
    jdbc_rows_t *r;
    int rc = jdbc_query(s->db, sql.s, ps, np, &r, err, err_len);
    int rows = 0;
    if (rc == 0) {
        int st;
        while ((st = jdbc_rows_next(r, err, err_len)) == 1) {
            if (emit_row(s, t, r, cols, ncols, ctx, err, err_len) != 0) {
                st = -1;
                break;
            }
            rows++;
        }
        rc = st < 0 ? -1 : 0;
        jdbc_rows_close(r);
    }
    if (rc == 0 && rows)
        ctx->rt->log(ctx, SAMSA_LOG_DEBUG, "%s: %d row(s) from %s", t->topic, rows,
                     t->name ? t->name : "the query");
    *full = (s->mode == MODE_INC || s->mode == MODE_TS_INC) && rows >= s->batch;
    jdbc_sb_free(&sql);
    jdbc_columns_free(cols, ncols);
    return rc;
}

static void sleep_ms(int64_t ms)
{
    struct timespec ts = {(time_t)(ms / 1000), (long)(ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

/* Wait up to ms, returning early when the worker wants the task back. */
static void nap(samsa_connect_context_t *ctx, int64_t ms)
{
    for (int64_t waited = 0; waited < ms && !ctx->rt->should_yield(ctx); waited += 50)
        sleep_ms(ms - waited < 50 ? ms - waited : 50);
}

/* After a failure on a lost connection: reconnect, connection.attempts times. */
static int recover(jsrc_t *s, samsa_connect_context_t *ctx, char *err, size_t err_len)
{
    for (int a = 1; a <= s->attempts; a++) {
        ctx->rt->log(ctx, SAMSA_LOG_WARN, "database connection lost (%s); reconnecting (attempt %d of %d)",
                     err, a, s->attempts);
        char e2[512];
        if (jdbc_reconnect(s->db, e2, sizeof e2) == 0)
            return 0;
        snprintf(err, err_len, "%s", e2);
        if (a < s->attempts)
            nap(ctx, s->backoff_ms);
        if (ctx->rt->should_yield(ctx))
            return 0; /* stopping: the next start reconnects */
    }
    return -1;
}

static int src_poll(void *task, samsa_connect_context_t *ctx, char *err, size_t err_len)
{
    jsrc_t *s = task;
    if (!s->nt) {
        nap(ctx, 1000);
        return 0;
    }
    int64_t now = cn_wall_ms(), soonest = INT64_MAX;
    for (size_t k = 0; k < s->nt; k++) {
        src_table_t *t = &s->tables[(s->rr + k) % s->nt];
        if (t->next_poll_ms > now) {
            if (t->next_poll_ms < soonest)
                soonest = t->next_poll_ms;
            continue;
        }
        s->rr = (s->rr + k + 1) % s->nt;
        bool full;
        if (poll_table(s, t, ctx, &full, err, err_len) != 0) {
            if (!jdbc_lost(s->db))
                return -1;
            return recover(s, ctx, err, err_len);
        }
        t->next_poll_ms = full ? now : now + s->poll_ms;
        return 0;
    }
    nap(ctx, soonest - now < 500 ? soonest - now : 500);
    return 0;
}

static void src_stop(void *task, samsa_connect_context_t *ctx)
{
    (void)ctx;
    if (task)
        src_free(task);
}

const samsa_connect_plugin_t cn_jdbc_source_plugin = {
    .abi_version = SAMSA_CONNECT_ABI_VERSION,
    .struct_size = sizeof(samsa_connect_plugin_t),
    .class_name = "io.confluent.connect.jdbc.JdbcSourceConnector",
    .aliases = aliases,
    .version = CN_VERSION,
    .type = SAMSA_CONNECT_SOURCE,
    .config_defs = defs,
    .config_def_count = sizeof defs / sizeof *defs,
    .validate = src_validate,
    .task_configs = src_task_configs,
    .task_start = src_start,
    .source_poll = src_poll,
    .task_stop = src_stop,
};
