/*
 * jdbc.h - the database layer under the JDBC-style connectors (jdbc_source.c,
 * jdbc_sink.c): one small interface over SQLite (libsqlite3) and PostgreSQL (libpq),
 * so the connectors speak in tables, columns, Connect types and bound parameters and
 * never paste a value into SQL text.
 *
 * URLs are JDBC's: jdbc:sqlite:<path> and jdbc:postgresql://host[:port]/db[?user=..&password=..]
 * (also jdbc:postgresql:db and jdbc:postgresql://host/ for the default database);
 * connection.user / connection.password override the URL's.
 *
 * Timestamps are nanoseconds since the epoch, UTC. PostgreSQL sessions run with
 * TimeZone=UTC; SQLite has no timestamp type, so a column declared TIMESTAMP, DATETIME
 * or DATE holds text "YYYY-MM-DD HH:MM:SS.SSS" (UTC; what strftime('%Y-%m-%d
 * %H:%M:%f') writes) and is compared through that normalization.
 *
 * Threads: a jdbc_db_t belongs to one thread (one task) at a time. Pure functions
 * (URL parsing, type names, quoting) run anywhere.
 */
#ifndef SM_CN_JDBC_H
#define SM_CN_JDBC_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "connect_plugin.h"

typedef enum jdbc_kind {
    JDBC_SQLITE = 1,
    JDBC_POSTGRES = 2,
} jdbc_kind_t;

/* A parsed connection URL. */
typedef struct jdbc_url {
    jdbc_kind_t kind;
    char *path;     /* SQLite: the database file */
    char *conninfo; /* PostgreSQL: libpq's "key='value' ..." string */
} jdbc_url_t;

/* Parse url (+ optional user/password). 0, or -1 with err naming what is wrong. */
int jdbc_url_parse(const char *url, const char *user, const char *password, jdbc_url_t *out,
                   char *err, size_t err_len);
void jdbc_url_free(jdbc_url_t *u);

/* Connect types a column or a field maps to (Kafka Connect's schema types). */
typedef enum jdbc_ctype {
    JC_NONE = 0,
    JC_INT8,
    JC_INT16,
    JC_INT32,
    JC_INT64,
    JC_FLOAT32,
    JC_FLOAT64,
    JC_BOOLEAN,
    JC_STRING,
    JC_BYTES,
    JC_TIMESTAMP, /* int64 with the org.apache.kafka.connect.data.Timestamp logical type */
    JC_DATE,      /* int32 days since the epoch: org.apache.kafka.connect.data.Date */
    JC_TIME,      /* int32 milliseconds since midnight: org.apache.kafka.connect.data.Time */
} jdbc_ctype_t;

/* "int32", ... (the Connect schema "type"; Timestamp gives "int64", Date and Time "int32"). */
const char *jdbc_ctype_schema_type(jdbc_ctype_t t);
/* The logical type's schema name (org.apache.kafka.connect.data.X) or NULL. */
const char *jdbc_ctype_logical_name(jdbc_ctype_t t);
/* A Connect schema ("type" and optional "name") to a ctype; JC_NONE when not
 * supported (struct, array, map, Decimal...). */
jdbc_ctype_t jdbc_ctype_from_schema(const char *type, const char *name);
/* The SQL column type to create for t on kind ("BIGINT", "TEXT", ...). */
const char *jdbc_ctype_sql(jdbc_kind_t kind, jdbc_ctype_t t);
/* A SQLite declared type (affinity rules, as sqlite's own) to a ctype; JC_NONE for "". */
jdbc_ctype_t jdbc_sqlite_decltype_ctype(const char *decl);
/* A PostgreSQL type OID to a ctype. */
jdbc_ctype_t jdbc_pg_oid_ctype(unsigned oid);

/* A bound parameter or a fetched value. TEXT and BLOB point at borrowed bytes. */
typedef struct jdbc_value {
    jdbc_ctype_t t; /* JC_NONE: SQL NULL */
    int64_t i;      /* integers, booleans (0/1), timestamps (ns since the epoch), dates
                     * (days since the epoch), times (ms since midnight) */
    double d;
    const char *s;
    size_t len;
} jdbc_value_t;

/* "YYYY-MM-DD HH:MM:SS[.fraction][T..][Z|+HH[:MM]]" to ns since the epoch. false when
 * the text is not a timestamp. */
bool jdbc_parse_timestamp(const char *s, size_t len, int64_t *ns_out);
/* ns -> "YYYY-MM-DD HH:MM:SS.ffffff" (digits: 3 or 6), into buf (>= 40 bytes). */
void jdbc_format_timestamp(int64_t ns, int digits, char *buf, size_t len);
/* "HH:MM[:SS[.fraction]]" to ms since midnight; false when it is not a time of day. */
bool jdbc_parse_time(const char *s, size_t len, int64_t *ms_out);
/* Text forms of dates ("YYYY-MM-DD") and times ("HH:MM:SS.mmm") into buf (>= 40 bytes). */
void jdbc_format_date(int64_t days, char *buf, size_t len);
void jdbc_format_time(int64_t ms, char *buf, size_t len);

/* Append "ident" quoted (double quotes doubled) to a malloc'ed, growing string. */
typedef struct jdbc_sb {
    char *s;
    size_t len, cap;
} jdbc_sb_t;
void jdbc_sb_add(jdbc_sb_t *b, const char *s);
void jdbc_sb_addf(jdbc_sb_t *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void jdbc_sb_ident(jdbc_sb_t *b, const char *ident);
void jdbc_sb_free(jdbc_sb_t *b);

/* ------------------------------------------------------------ connections */

typedef struct jdbc_db jdbc_db_t;

/* Open a connection. create: a missing SQLite file may be created (sinks). NULL with
 * err on failure. */
jdbc_db_t *jdbc_open(const char *url, const char *user, const char *password, bool create,
                     char *err, size_t err_len);
void jdbc_close(jdbc_db_t *db);
/* jdbc_open for a task, with cfg's connection.url/user/password: a PostgreSQL server that
 * cannot be reached is tried connection.attempts times, connection.backoff.ms apart
 * (logged; given up early when the worker wants the task back). */
jdbc_db_t *jdbc_open_task(samsa_connect_context_t *ctx, const samsa_connect_config_t *cfg, bool create,
                          char *err, size_t err_len);
/* Validation's connection: NULL after reporting a config error on connection.url (bad
 * URL, missing SQLite file, refused login, unknown database), or NULL after only a
 * warning when the server cannot be reached now (the tasks retry, so a connector must
 * not be refused, e.g. on a restart, because its database is briefly down). */
jdbc_db_t *jdbc_open_validate(samsa_connect_context_t *ctx, const samsa_connect_config_t *cfg);
/* True when a connection error text says the server could not be reached (as opposed
 * to a refused login or an unknown database). */
bool jdbc_error_transient(const char *err);
jdbc_kind_t jdbc_db_kind(const jdbc_db_t *db);
/* True when the last failure was a lost connection (PostgreSQL), so a retry after
 * jdbc_reconnect may succeed. */
bool jdbc_lost(const jdbc_db_t *db);
/* Re-open the connection. 0 or -1 with err. */
int jdbc_reconnect(jdbc_db_t *db, char *err, size_t err_len);

/* Run sql with n parameters (? for SQLite, $1.. for PostgreSQL: write them with
 * jdbc_sb_param). 0, or -1 with err. *changes (may be NULL) gets the rows changed. */
int jdbc_exec(jdbc_db_t *db, const char *sql, const jdbc_value_t *params, size_t n, int64_t *changes,
              char *err, size_t err_len);
/* Append the i-th (1-based) parameter placeholder for db's dialect. */
void jdbc_sb_param(jdbc_sb_t *b, const jdbc_db_t *db, size_t i);

/* A query's rows, read one at a time. */
typedef struct jdbc_rows jdbc_rows_t;
int jdbc_query(jdbc_db_t *db, const char *sql, const jdbc_value_t *params, size_t n,
               jdbc_rows_t **out, char *err, size_t err_len);
/* 1: a row is current; 0: no more rows; -1: error (err). */
int jdbc_rows_next(jdbc_rows_t *r, char *err, size_t err_len);
size_t jdbc_rows_ncols(const jdbc_rows_t *r);
const char *jdbc_rows_name(const jdbc_rows_t *r, size_t col);
/* The Connect type of a column (from its declared/OID type; for an SQLite expression
 * without a declared type, from the current row's value). */
jdbc_ctype_t jdbc_rows_ctype(const jdbc_rows_t *r, size_t col);
/* The current row's value of col, in the column's ctype (text/blob borrowed until the
 * next call). false with err when the value does not fit the type (a malformed
 * timestamp, text in an integer column...). */
bool jdbc_rows_get(jdbc_rows_t *r, size_t col, jdbc_value_t *out, char *err, size_t err_len);
void jdbc_rows_close(jdbc_rows_t *r);

/* One column of a table. */
typedef struct jdbc_column {
    char *name;
    jdbc_ctype_t type;
    bool nullable;
    bool pk;
} jdbc_column_t;

/* The columns of table (in the current schema for PostgreSQL). *exists false (and no
 * columns) when there is no such table. 0 or -1 with err. */
int jdbc_table_columns(jdbc_db_t *db, const char *table, jdbc_column_t **cols, size_t *n,
                       bool *exists, char *err, size_t err_len);
void jdbc_columns_free(jdbc_column_t *cols, size_t n);
/* The user tables (malloc'ed array of malloc'ed names). 0 or -1 with err. */
int jdbc_list_tables(jdbc_db_t *db, char ***names, size_t *n, char *err, size_t err_len);
void jdbc_names_free(char **names, size_t n);

/* Base64 (Connect's JSON form of bytes). encode: malloc'ed text; decode: malloc'ed bytes
 * or NULL when the text is not base64. */
char *jdbc_b64_encode(const unsigned char *p, size_t n);
unsigned char *jdbc_b64_decode(const char *s, size_t len, size_t *out_len);

/* ------------------------------------------------------------ config helpers */

/* Split a comma-separated list (entries trimmed, empty ones dropped) into a malloc'ed
 * array of malloc'ed strings (free with jdbc_names_free); returns the count. */
size_t jdbc_split_list(const char *list, char ***out);
/* An integer config value, dflt when absent or malformed (validation reports those). */
int64_t jdbc_cfg_i64(const samsa_connect_config_t *cfg, const char *key, int64_t dflt);
/* A boolean config value ("true"/"false", any case), dflt when absent. */
bool jdbc_cfg_bool(const samsa_connect_config_t *cfg, const char *key, bool dflt);
/* Report key when it is set to an integer below min. */
void jdbc_int_check(samsa_connect_context_t *ctx, const samsa_connect_config_t *cfg, const char *key,
                    int64_t min);

#endif
