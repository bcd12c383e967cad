/*
 * jdbc_db.c - connections, statements and rows of the JDBC connectors' database
 * layer (jdbc.h) over libsqlite3 and libpq.
 *
 * Every value travels as a bound parameter: SQLite binds typed values; PostgreSQL
 * gets text parameters of unspecified type (the server infers each from where it
 * is used) except bytea, sent in binary. Results from PostgreSQL come as text and
 * are converted by their column's type OID (bytea's hex form decoded here).
 *
 * A PostgreSQL failure with the connection gone (PQstatus CONNECTION_BAD) marks the
 * connection lost; the connectors then call jdbc_reconnect (PQreset) and retry.
 *
 * A connection belongs to one thread at a time.
 */
#define _GNU_SOURCE
#include "jdbc.h"

#include <libpq-fe.h>
#include <math.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define SQLITE_STMT_CACHE 16

struct jdbc_db {
    jdbc_kind_t kind;
    sqlite3 *lite;
    PGconn *pg;
    bool lost;
    /* SQLite: recently prepared statements by SQL text (a sink repeats a few). */
    struct {
        char *sql;
        sqlite3_stmt *st;
    } cache[SQLITE_STMT_CACHE];
    int cache_next;
};

struct jdbc_rows {
    jdbc_db_t *db;
    /* SQLite */
    sqlite3_stmt *st;
    bool st_cached; /* st belongs to the cache: reset, not finalize */
    /* PostgreSQL */
    PGresult *res;
    int row; /* current row, -1 before the first */
    unsigned char *scratch; /* decoded bytea of the current call */
    jdbc_ctype_t *pg_types;
};

static void quiet_notices(void *arg, const char *msg)
{
    (void)arg;
    (void)msg;
}

static int pg_session_setup(jdbc_db_t *db, char *err, size_t err_len)
{
    PQsetNoticeProcessor(db->pg, quiet_notices, NULL);
    PGresult *r = PQexec(db->pg, "SET TIME ZONE 'UTC'");
    int ok = PQresultStatus(r) == PGRES_COMMAND_OK;
    if (!ok)
        snprintf(err, err_len, "PostgreSQL: %s", PQerrorMessage(db->pg));
    PQclear(r);
    return ok ? 0 : -1;
}

/* libpq's messages end with a newline; the task trace wants one line. */
static void pg_err(jdbc_db_t *db, const char *what, char *err, size_t err_len)
{
    snprintf(err, err_len, "PostgreSQL %s: %s", what, PQerrorMessage(db->pg));
    size_t n = strlen(err);
    while (n && (err[n - 1] == '\n' || err[n - 1] == ' '))
        err[--n] = 0;
    if (PQstatus(db->pg) == CONNECTION_BAD)
        db->lost = true;
}

jdbc_db_t *jdbc_open(const char *url, const char *user, const char *password, bool create,
                     char *err, size_t err_len)
{
    jdbc_url_t u;
    if (jdbc_url_parse(url, user, password, &u, err, err_len) != 0)
        return NULL;
    jdbc_db_t *db = calloc(1, sizeof *db);
    if (!db)
        abort();
    db->kind = u.kind;
    if (u.kind == JDBC_SQLITE) {
        int flags = SQLITE_OPEN_READWRITE | (create ? SQLITE_OPEN_CREATE : 0);
        if (sqlite3_open_v2(u.path, &db->lite, flags, NULL) != SQLITE_OK) {
            snprintf(err, err_len, "Cannot open SQLite database %s: %s", u.path,
                     db->lite ? sqlite3_errmsg(db->lite) : "out of memory");
            goto fail;
        }
        sqlite3_busy_timeout(db->lite, 10000);
    } else {
        db->pg = PQconnectdb(u.conninfo);
        if (!db->pg || PQstatus(db->pg) != CONNECTION_OK) {
            pg_err(db, "connection failed", err, err_len);
            goto fail;
        }
        if (pg_session_setup(db, err, err_len) != 0)
            goto fail;
    }
    jdbc_url_free(&u);
    return db;
fail:
    jdbc_url_free(&u);
    jdbc_close(db);
    return NULL;
}

void jdbc_close(jdbc_db_t *db)
{
    if (!db)
        return;
    for (int i = 0; i < SQLITE_STMT_CACHE; i++) {
        sqlite3_finalize(db->cache[i].st);
        free(db->cache[i].sql);
    }
    if (db->lite)
        sqlite3_close_v2(db->lite);
    if (db->pg)
        PQfinish(db->pg);
    free(db);
}

jdbc_db_t *jdbc_open_task(samsa_connect_context_t *ctx, const samsa_connect_config_t *cfg, bool create,
                          char *err, size_t err_len)
{
    const char *url = samsa_connect_config_get(cfg, "connection.url");
    int attempts = (int)jdbc_cfg_i64(cfg, "connection.attempts", 3);
    int64_t backoff_ms = jdbc_cfg_i64(cfg, "connection.backoff.ms", 10000);
    for (int a = 1;; a++) {
        jdbc_db_t *db = jdbc_open(url, samsa_connect_config_get(cfg, "connection.user"),
                                  samsa_connect_config_get(cfg, "connection.password"), create, err,
                                  err_len);
        /* Only a server can come back: a bad URL or SQLite file fails at once. */
        if (db || a >= attempts || !url || strncmp(url, "jdbc:postgresql:", 16) != 0)
            return db;
        ctx->rt->log(ctx, SAMSA_LOG_WARN, "%s; retrying in %lld ms (attempt %d of %d)", err,
                     (long long)backoff_ms, a, attempts);
        for (int64_t w = 0; w < backoff_ms && !ctx->rt->should_yield(ctx); w += 50) {
            struct timespec ts = {0, 50 * 1000000L};
            nanosleep(&ts, NULL);
        }
        if (ctx->rt->should_yield(ctx))
            return NULL;
    }
}

bool jdbc_error_transient(const char *err)
{
    static const char *const unreachable[] = {
        "Connection refused", "could not connect", "timeout expired", "No route to host",
        "Network is unreachable", "the database system is", "server closed the connection",
        "could not translate host name", "Connection reset",
    };
    for (size_t i = 0; i < sizeof unreachable / sizeof *unreachable; i++)
        if (strstr(err, unreachable[i]))
            return true;
    return false;
}

jdbc_db_t *jdbc_open_validate(samsa_connect_context_t *ctx, const samsa_connect_config_t *cfg)
{
    char err[512];
    const char *url = samsa_connect_config_get(cfg, "connection.url");
    jdbc_db_t *db = jdbc_open(url, samsa_connect_config_get(cfg, "connection.user"),
                              samsa_connect_config_get(cfg, "connection.password"), false, err,
                              sizeof err);
    if (db)
        return db;
    if (url && strncmp(url, "jdbc:postgresql:", 16) == 0 && jdbc_error_transient(err))
        ctx->rt->log(ctx, SAMSA_LOG_WARN, "%s: the database cannot be checked now; tasks will retry "
                                          "connecting", err);
    else
        ctx->rt->config_error(ctx, "connection.url", err);
    return NULL;
}

jdbc_kind_t jdbc_db_kind(const jdbc_db_t *db)
{
    return db->kind;
}

bool jdbc_lost(const jdbc_db_t *db)
{
    return db->lost;
}

int jdbc_reconnect(jdbc_db_t *db, char *err, size_t err_len)
{
    if (db->kind != JDBC_POSTGRES)
        return 0;
    PQreset(db->pg);
    if (PQstatus(db->pg) != CONNECTION_OK) {
        pg_err(db, "reconnect failed", err, err_len);
        return -1;
    }
    if (pg_session_setup(db, err, err_len) != 0)
        return -1;
    db->lost = false;
    return 0;
}

void jdbc_sb_param(jdbc_sb_t *b, const jdbc_db_t *db, size_t i)
{
    if (db->kind == JDBC_POSTGRES)
        jdbc_sb_addf(b, "$%zu", i);
    else
        jdbc_sb_add(b, "?");
}

/* ------------------------------------------------------------------ SQLite */

/* A prepared statement for sql, from the cache when it is there. */
static sqlite3_stmt *lite_prepare(jdbc_db_t *db, const char *sql, bool *cached, char *err,
                                  size_t err_len)
{
    for (int i = 0; i < SQLITE_STMT_CACHE; i++)
        if (db->cache[i].sql && strcmp(db->cache[i].sql, sql) == 0) {
            *cached = true;
            sqlite3_reset(db->cache[i].st);
            sqlite3_clear_bindings(db->cache[i].st);
            return db->cache[i].st;
        }
    sqlite3_stmt *st = NULL;
    if (sqlite3_prepare_v2(db->lite, sql, -1, &st, NULL) != SQLITE_OK) {
        snprintf(err, err_len, "SQLite: %s (in: %s)", sqlite3_errmsg(db->lite), sql);
        return NULL;
    }
    /* DDL changes the schema: only DML and queries are worth keeping. */
    bool keep = strncmp(sql, "INSERT", 6) == 0 || strncmp(sql, "UPDATE", 6) == 0 ||
                strncmp(sql, "DELETE", 6) == 0 || strncmp(sql, "SELECT", 6) == 0;
    *cached = keep;
    if (keep) {
        int i = db->cache_next;
        db->cache_next = (db->cache_next + 1) % SQLITE_STMT_CACHE;
        sqlite3_finalize(db->cache[i].st);
        free(db->cache[i].sql);
        db->cache[i].sql = strdup(sql);
        db->cache[i].st = st;
    }
    return st;
}

static int lite_bind(jdbc_db_t *db, sqlite3_stmt *st, const jdbc_value_t *ps, size_t n, char *err,
                     size_t err_len)
{
    for (size_t i = 0; i < n; i++) {
        const jdbc_value_t *p = &ps[i];
        int k = (int)i + 1, rc;
        char ts[48];
        switch (p->t) {
        case JC_NONE: rc = sqlite3_bind_null(st, k); break;
        case JC_INT8: case JC_INT16: case JC_INT32: case JC_INT64: case JC_BOOLEAN:
            rc = sqlite3_bind_int64(st, k, p->i);
            break;
        case JC_FLOAT32: case JC_FLOAT64: rc = sqlite3_bind_double(st, k, p->d); break;
        case JC_STRING: rc = sqlite3_bind_text(st, k, p->s, (int)p->len, SQLITE_TRANSIENT); break;
        case JC_BYTES: rc = sqlite3_bind_blob(st, k, p->s, (int)p->len, SQLITE_TRANSIENT); break;
        case JC_TIMESTAMP: case JC_DATE: case JC_TIME:
            if (p->t == JC_TIMESTAMP)
                jdbc_format_timestamp(p->i, 3, ts, sizeof ts);
            else if (p->t == JC_DATE)
                jdbc_format_date(p->i, ts, sizeof ts);
            else
                jdbc_format_time(p->i, ts, sizeof ts);
            rc = sqlite3_bind_text(st, k, ts, -1, SQLITE_TRANSIENT);
            break;
        default: rc = SQLITE_MISUSE;
        }
        if (rc != SQLITE_OK) {
            snprintf(err, err_len, "SQLite: cannot bind parameter %d: %s", k, sqlite3_errmsg(db->lite));
            return -1;
        }
    }
    return 0;
}

static int lite_exec(jdbc_db_t *db, const char *sql, const jdbc_value_t *ps, size_t n,
                     int64_t *changes, char *err, size_t err_len)
{
    bool cached;
    sqlite3_stmt *st = lite_prepare(db, sql, &cached, err, err_len);
    if (!st)
        return -1;
    int rc = lite_bind(db, st, ps, n, err, err_len);
    if (rc == 0) {
        int s;
        while ((s = sqlite3_step(st)) == SQLITE_ROW)
            ;
        if (s != SQLITE_DONE) {
            snprintf(err, err_len, "SQLite: %s (in: %s)", sqlite3_errmsg(db->lite), sql);
            rc = -1;
        } else if (changes) {
            *changes = sqlite3_changes(db->lite);
        }
    }
    if (cached)
        sqlite3_reset(st);
    else
        sqlite3_finalize(st);
    return rc;
}

/* ------------------------------------------------------------------ PostgreSQL */

/* Text (or binary, for bytea) parameters for libpq. bufs holds the formatted ones. */
typedef struct pg_params {
    const char **vals;
    int *lens, *fmts;
    char (*bufs)[48];
} pg_params_t;

static void pg_params_make(pg_params_t *pp, const jdbc_value_t *ps, size_t n)
{
    size_t m = n ? n : 1;
    pp->vals = calloc(m, sizeof *pp->vals);
    pp->lens = calloc(m, sizeof *pp->lens);
    pp->fmts = calloc(m, sizeof *pp->fmts);
    pp->bufs = calloc(m, sizeof *pp->bufs);
    if (!pp->vals || !pp->lens || !pp->fmts || !pp->bufs)
        abort();
    for (size_t i = 0; i < n; i++) {
        const jdbc_value_t *p = &ps[i];
        char *b = pp->bufs[i];
        switch (p->t) {
        case JC_NONE: pp->vals[i] = NULL; continue;
        case JC_INT8: case JC_INT16: case JC_INT32: case JC_INT64:
            snprintf(b, 48, "%lld", (long long)p->i);
            break;
        case JC_BOOLEAN: snprintf(b, 48, "%s", p->i ? "true" : "false"); break;
        case JC_FLOAT32: case JC_FLOAT64:
            if (isnan(p->d))
                snprintf(b, 48, "NaN");
            else if (isinf(p->d))
                snprintf(b, 48, "%sInfinity", p->d < 0 ? "-" : "");
            else
                snprintf(b, 48, "%.17g", p->d);
            break;
        case JC_TIMESTAMP: jdbc_format_timestamp(p->i, 6, b, 48); break;
        case JC_DATE: jdbc_format_date(p->i, b, 48); break;
        case JC_TIME: jdbc_format_time(p->i, b, 48); break;
        case JC_STRING:
            pp->vals[i] = p->s ? p->s : "";
            pp->lens[i] = (int)p->len;
            continue;
        case JC_BYTES:
            pp->vals[i] = p->s ? p->s : "";
            pp->lens[i] = (int)p->len;
            pp->fmts[i] = 1;
            continue;
        }
        pp->vals[i] = b;
    }
}

static void pg_params_free(pg_params_t *pp)
{
    free(pp->vals);
    free(pp->lens);
    free(pp->fmts);
    free(pp->bufs);
}

static PGresult *pg_run(jdbc_db_t *db, const char *sql, const jdbc_value_t *ps, size_t n)
{
    pg_params_t pp;
    pg_params_make(&pp, ps, n);
    /* Text parameters need no length (NUL-terminated) except strings, which may hold
     * any byte but NUL: libpq reads text parameters up to their NUL, so a string with
     * an embedded NUL is cut there, as PostgreSQL's text type cannot hold NUL. */
    PGresult *r = PQexecParams(db->pg, sql, (int)n, NULL, pp.vals, pp.lens, pp.fmts, 0);
    pg_params_free(&pp);
    return r;
}

static int pg_exec(jdbc_db_t *db, const char *sql, const jdbc_value_t *ps, size_t n,
                   int64_t *changes, char *err, size_t err_len)
{
    PGresult *r = pg_run(db, sql, ps, n);
    ExecStatusType s = PQresultStatus(r);
    if (s != PGRES_COMMAND_OK && s != PGRES_TUPLES_OK) {
        pg_err(db, "error", err, err_len);
        PQclear(r);
        return -1;
    }
    if (changes) {
        const char *t = PQcmdTuples(r);
        *changes = t && *t ? strtoll(t, NULL, 10) : 0;
    }
    PQclear(r);
    return 0;
}

/* ------------------------------------------------------------------ statements */

int jdbc_exec(jdbc_db_t *db, const char *sql, const jdbc_value_t *params, size_t n, int64_t *changes,
              char *err, size_t err_len)
{
    if (db->kind == JDBC_SQLITE)
        return lite_exec(db, sql, params, n, changes, err, err_len);
    return pg_exec(db, sql, params, n, changes, err, err_len);
}

int jdbc_query(jdbc_db_t *db, const char *sql, const jdbc_value_t *params, size_t n,
               jdbc_rows_t **out, char *err, size_t err_len)
{
    *out = NULL;
    jdbc_rows_t *r = calloc(1, sizeof *r);
    if (!r)
        abort();
    r->db = db;
    r->row = -1;
    if (db->kind == JDBC_SQLITE) {
        r->st = lite_prepare(db, sql, &r->st_cached, err, err_len);
        if (!r->st || lite_bind(db, r->st, params, n, err, err_len) != 0) {
            jdbc_rows_close(r);
            return -1;
        }
    } else {
        r->res = pg_run(db, sql, params, n);
        if (PQresultStatus(r->res) != PGRES_TUPLES_OK) {
            pg_err(db, "query failed", err, err_len);
            jdbc_rows_close(r);
            return -1;
        }
        int nf = PQnfields(r->res);
        r->pg_types = calloc((size_t)nf + 1, sizeof *r->pg_types);
        if (!r->pg_types)
            abort();
        for (int i = 0; i < nf; i++)
            r->pg_types[i] = jdbc_pg_oid_ctype(PQftype(r->res, i));
    }
    *out = r;
    return 0;
}

int jdbc_rows_next(jdbc_rows_t *r, char *err, size_t err_len)
{
    if (r->st) {
        int s = sqlite3_step(r->st);
        if (s == SQLITE_ROW)
            return 1;
        if (s == SQLITE_DONE)
            return 0;
        snprintf(err, err_len, "SQLite: %s", sqlite3_errmsg(r->db->lite));
        return -1;
    }
    if (r->row + 1 >= PQntuples(r->res))
        return 0;
    r->row++;
    return 1;
}

size_t jdbc_rows_ncols(const jdbc_rows_t *r)
{
    return r->st ? (size_t)sqlite3_column_count(r->st) : (size_t)PQnfields(r->res);
}

const char *jdbc_rows_name(const jdbc_rows_t *r, size_t col)
{
    return r->st ? sqlite3_column_name(r->st, (int)col) : PQfname(r->res, (int)col);
}

jdbc_ctype_t jdbc_rows_ctype(const jdbc_rows_t *r, size_t col)
{
    if (!r->st)
        return r->pg_types[col];
    jdbc_ctype_t t = jdbc_sqlite_decltype_ctype(sqlite3_column_decltype(r->st, (int)col));
    if (t != JC_NONE)
        return t;
    switch (sqlite3_column_type(r->st, (int)col)) {
    case SQLITE_INTEGER: return JC_INT64;
    case SQLITE_FLOAT: return JC_FLOAT64;
    case SQLITE_BLOB: return JC_BYTES;
    default: return JC_STRING;
    }
}

static bool parse_i64(const char *s, int64_t *out)
{
    char *end;
    if (!s || !*s)
        return false;
    long long v = strtoll(s, &end, 10);
    *out = v;
    return *end == 0;
}

/* A date or time in text (out->s) into out->i: days since the epoch or ms since midnight. */
static bool text_date_time(jdbc_ctype_t t, jdbc_value_t *out)
{
    int64_t ns;
    if (t == JC_TIME)
        return jdbc_parse_time(out->s, out->len, &out->i);
    if (!jdbc_parse_timestamp(out->s, out->len, &ns))
        return false;
    out->i = ns >= 0 ? ns / 86400000000000LL : (ns - 86399999999999LL) / 86400000000000LL;
    return true;
}

static bool lite_get(jdbc_rows_t *r, size_t col, jdbc_ctype_t t, jdbc_value_t *out, char *err,
                     size_t err_len)
{
    int c = (int)col, st = sqlite3_column_type(r->st, c);
    switch (t) {
    case JC_INT8: case JC_INT16: case JC_INT32: case JC_INT64: case JC_BOOLEAN:
        if (st == SQLITE_INTEGER || st == SQLITE_FLOAT) {
            out->i = sqlite3_column_int64(r->st, c);
        } else if (!parse_i64((const char *)sqlite3_column_text(r->st, c), &out->i)) {
            snprintf(err, err_len, "column %s: '%s' is not an integer", jdbc_rows_name(r, col),
                     (const char *)sqlite3_column_text(r->st, c));
            return false;
        }
        if (t == JC_BOOLEAN)
            out->i = out->i != 0;
        return true;
    case JC_FLOAT32: case JC_FLOAT64:
        out->d = sqlite3_column_double(r->st, c);
        return true;
    case JC_BYTES:
        out->s = sqlite3_column_blob(r->st, c);
        out->len = (size_t)sqlite3_column_bytes(r->st, c);
        return true;
    case JC_TIMESTAMP:
        if (st == SQLITE_INTEGER) { /* milliseconds since the epoch */
            out->i = sqlite3_column_int64(r->st, c) * 1000000;
            return true;
        }
        out->s = (const char *)sqlite3_column_text(r->st, c);
        out->len = (size_t)sqlite3_column_bytes(r->st, c);
        if (!jdbc_parse_timestamp(out->s, out->len, &out->i)) {
            snprintf(err, err_len, "column %s: '%s' is not a timestamp (YYYY-MM-DD HH:MM:SS[.fff])",
                     jdbc_rows_name(r, col), out->s);
            return false;
        }
        return true;
    case JC_DATE: case JC_TIME:
        out->s = (const char *)sqlite3_column_text(r->st, c);
        out->len = (size_t)sqlite3_column_bytes(r->st, c);
        if (!text_date_time(t, out)) {
            snprintf(err, err_len, "column %s: '%s' is not a %s", jdbc_rows_name(r, col), out->s,
                     t == JC_DATE ? "date (YYYY-MM-DD)" : "time (HH:MM:SS[.fff])");
            return false;
        }
        return true;
    default:
        out->s = (const char *)sqlite3_column_text(r->st, c);
        out->len = (size_t)sqlite3_column_bytes(r->st, c);
        return true;
    }
}

static int hexval(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

static bool pg_get(jdbc_rows_t *r, size_t col, jdbc_ctype_t t, jdbc_value_t *out, char *err,
                   size_t err_len)
{
    const char *s = PQgetvalue(r->res, r->row, (int)col);
    size_t len = (size_t)PQgetlength(r->res, r->row, (int)col);
    char *end;
    switch (t) {
    case JC_INT8: case JC_INT16: case JC_INT32: case JC_INT64:
        if (!parse_i64(s, &out->i))
            goto bad;
        return true;
    case JC_BOOLEAN:
        out->i = s[0] == 't';
        return true;
    case JC_FLOAT32: case JC_FLOAT64:
        out->d = strtod(s, &end);
        if (*end)
            goto bad;
        return true;
    case JC_TIMESTAMP:
        if (!jdbc_parse_timestamp(s, len, &out->i))
            goto bad;
        return true;
    case JC_DATE: case JC_TIME:
        out->s = s;
        out->len = len;
        if (!text_date_time(t, out))
            goto bad;
        return true;
    case JC_BYTES: {
        if (len < 2 || s[0] != '\\' || s[1] != 'x')
            goto bad;
        free(r->scratch);
        r->scratch = malloc(len / 2 + 1);
        if (!r->scratch)
            abort();
        size_t n = 0;
        for (size_t i = 2; i + 1 < len; i += 2) {
            int hi = hexval(s[i]), lo = hexval(s[i + 1]);
            if (hi < 0 || lo < 0)
                goto bad;
            r->scratch[n++] = (unsigned char)(hi << 4 | lo);
        }
        out->s = (const char *)r->scratch;
        out->len = n;
        return true;
    }
    default:
        out->s = s;
        out->len = len;
        return true;
    }
bad:
    snprintf(err, err_len, "column %s: cannot read '%.64s' as %s", jdbc_rows_name(r, col), s,
             jdbc_ctype_schema_type(t));
    return false;
}

bool jdbc_rows_get(jdbc_rows_t *r, size_t col, jdbc_value_t *out, char *err, size_t err_len)
{
    memset(out, 0, sizeof *out);
    bool null = r->st ? sqlite3_column_type(r->st, (int)col) == SQLITE_NULL
                      : PQgetisnull(r->res, r->row, (int)col);
    if (null)
        return true;
    jdbc_ctype_t t = jdbc_rows_ctype(r, col);
    out->t = t;
    return r->st ? lite_get(r, col, t, out, err, err_len) : pg_get(r, col, t, out, err, err_len);
}

void jdbc_rows_close(jdbc_rows_t *r)
{
    if (!r)
        return;
    if (r->st) {
        if (r->st_cached)
            sqlite3_reset(r->st);
        else
            sqlite3_finalize(r->st);
    }
    PQclear(r->res);
    free(r->scratch);
    free(r->pg_types);
    free(r);
}

/* ------------------------------------------------------------------ catalog */

void jdbc_columns_free(jdbc_column_t *cols, size_t n)
{
    for (size_t i = 0; i < n; i++)
        free(cols[i].name);
    free(cols);
}

void jdbc_names_free(char **names, size_t n)
{
    for (size_t i = 0; i < n; i++)
        free(names[i]);
    free(names);
}

static const char lite_cols_sql[] =
    "SELECT name, type, \"notnull\", pk FROM pragma_table_info(?) ORDER BY cid";
static const char pg_cols_sql[] =
    "SELECT a.attname, a.atttypid::int, a.attnotnull, "
    "EXISTS (SELECT 1 FROM pg_index i WHERE i.indrelid = c.oid AND i.indisprimary "
    "AND a.attnum = ANY(i.indkey)) "
    "FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
    "JOIN pg_attribute a ON a.attrelid = c.oid "
    "WHERE c.relname = $1 AND n.nspname = current_schema() AND a.attnum > 0 "
    "AND NOT a.attisdropped AND c.relkind IN ('r','p','v','m','f') ORDER BY a.attnum";

int jdbc_table_columns(jdbc_db_t *db, const char *table, jdbc_column_t **cols, size_t *n,
                       bool *exists, char *err, size_t err_len)
{
    *cols = NULL;
    *n = 0;
    *exists = false;
    jdbc_value_t p = {.t = JC_STRING, .s = table, .len = strlen(table)};
    jdbc_rows_t *r;
    if (jdbc_query(db, db->kind == JDBC_SQLITE ? lite_cols_sql : pg_cols_sql, &p, 1, &r, err,
                   err_len) != 0)
        return -1;
    size_t cap = 0;
    int s;
    while ((s = jdbc_rows_next(r, err, err_len)) == 1) {
        jdbc_value_t name, type, notnull, pk;
        if (!jdbc_rows_get(r, 0, &name, err, err_len) || !jdbc_rows_get(r, 1, &type, err, err_len) ||
            !jdbc_rows_get(r, 2, &notnull, err, err_len) || !jdbc_rows_get(r, 3, &pk, err, err_len)) {
            s = -1;
            break;
        }
        if (*n == cap) {
            cap = cap ? cap * 2 : 16;
            *cols = realloc(*cols, cap * sizeof **cols);
            if (!*cols)
                abort();
        }
        jdbc_column_t *c = &(*cols)[(*n)++];
        c->name = strndup(name.s ? name.s : "", name.len);
        if (db->kind == JDBC_SQLITE) {
            char decl[64];
            snprintf(decl, sizeof decl, "%.*s", (int)type.len, type.s ? type.s : "");
            c->type = jdbc_sqlite_decltype_ctype(decl);
            if (c->type == JC_NONE)
                c->type = JC_STRING;
        } else {
            c->type = jdbc_pg_oid_ctype((unsigned)type.i);
        }
        c->nullable = !notnull.i && !pk.i;
        c->pk = pk.i != 0;
    }
    jdbc_rows_close(r);
    if (s < 0) {
        jdbc_columns_free(*cols, *n);
        *cols = NULL;
        *n = 0;
        return -1;
    }
    *exists = *n > 0;
    return 0;
}

int jdbc_list_tables(jdbc_db_t *db, char ***names, size_t *n, char *err, size_t err_len)
{
    static const char lite_sql[] = "SELECT name FROM sqlite_master WHERE type = 'table' "
                                   "AND name NOT LIKE 'sqlite\\_%' ESCAPE '\\' ORDER BY name";
    static const char pg_sql[] = "SELECT c.relname FROM pg_class c JOIN pg_namespace n ON "
                                 "n.oid = c.relnamespace WHERE n.nspname = current_schema() "
                                 "AND c.relkind IN ('r','p') ORDER BY 1";
    *names = NULL;
    *n = 0;
    jdbc_rows_t *r;
    if (jdbc_query(db, db->kind == JDBC_SQLITE ? lite_sql : pg_sql, NULL, 0, &r, err, err_len) != 0)
        return -1;
    size_t cap = 0;
    int s;
    while ((s = jdbc_rows_next(r, err, err_len)) == 1) {
        jdbc_value_t v;
        if (!jdbc_rows_get(r, 0, &v, err, err_len)) {
            s = -1;
            break;
        }
        if (*n == cap) {
            cap = cap ? cap * 2 : 16;
            *names = realloc(*names, cap * sizeof **names);
            if (!*names)
                abort();
        }
        (*names)[(*n)++] = strndup(v.s ? v.s : "", v.len);
    }
    jdbc_rows_close(r);
    if (s < 0) {
        jdbc_names_free(*names, *n);
        *names = NULL;
        *n = 0;
        return -1;
    }
    return 0;
}
