/*
 * jdbc_types.c - the pure parts of the JDBC connectors' database layer (jdbc.h): URL
 * parsing, the mapping between SQL types and Connect types, timestamps as text,
 * identifier quoting, base64. No I/O; any thread.
 *
 * Type mapping (source: column -> Connect; sink: Connect -> created column):
 *   PostgreSQL  int2 -> int16, int4 -> int32, int8/oid -> int64, float4 -> float32,
 *               float8/numeric -> float64, bool -> boolean, bytea -> bytes,
 *               timestamp/timestamptz -> Timestamp, date -> Date, time -> Time,
 *               everything else -> string (its text form); sink: SMALLINT, INTEGER,
 *               BIGINT, REAL, DOUBLE PRECISION, BOOLEAN, TEXT, BYTEA, TIMESTAMP, DATE, TIME.
 *   SQLite      by declared type (containing): BOOL -> boolean, TIMESTAMP or DATETIME
 *               -> Timestamp, exactly DATE -> Date, exactly TIME -> Time, TINYINT -> int8,
 *               SMALLINT -> int16, BIGINT, INTEGER, INT8 -> int64, other INT -> int32,
 *               CHAR, CLOB, TEXT -> string, BLOB -> bytes, REAL, FLOA, DOUB, NUMERIC,
 *               DECIMAL -> float64, other -> string; sink: TINYINT, SMALLINT, INT, BIGINT,
 *               FLOAT, DOUBLE, BOOLEAN, TEXT, BLOB, TIMESTAMP, DATE, TIME (so a table the
 *               sink created reads back with the same types).
 */
#define _GNU_SOURCE
#include "jdbc.h"

#include <ctype.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

/* ------------------------------------------------------------------ strings */

static void sb_reserve(jdbc_sb_t *b, size_t more)
{
    if (b->len + more + 1 <= b->cap)
        return;
    size_t cap = b->cap ? b->cap : 128;
    while (cap < b->len + more + 1)
        cap *= 2;
    b->s = realloc(b->s, cap);
    if (!b->s)
        abort();
    b->cap = cap;
}

void jdbc_sb_add(jdbc_sb_t *b, const char *s)
{
    size_t n = strlen(s);
    sb_reserve(b, n);
    memcpy(b->s + b->len, s, n + 1);
    b->len += n;
}

void jdbc_sb_addf(jdbc_sb_t *b, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    if (n < 0)
        return;
    sb_reserve(b, (size_t)n);
    va_start(ap, fmt);
    vsnprintf(b->s + b->len, (size_t)n + 1, fmt, ap);
    va_end(ap);
    b->len += (size_t)n;
}

void jdbc_sb_ident(jdbc_sb_t *b, const char *ident)
{
    sb_reserve(b, 2 * strlen(ident) + 2);
    b->s[b->len++] = '"';
    for (const char *p = ident; *p; p++) {
        if (*p == '"')
            b->s[b->len++] = '"';
        b->s[b->len++] = *p;
    }
    b->s[b->len++] = '"';
    b->s[b->len] = 0;
}

void jdbc_sb_free(jdbc_sb_t *b)
{
    free(b->s);
    memset(b, 0, sizeof *b);
}

/* ------------------------------------------------------------------ URLs */

/* Append key='value' to a libpq conninfo (quotes and backslashes escaped). */
static void conninfo_add(jdbc_sb_t *b, const char *key, const char *v, size_t n)
{
    jdbc_sb_addf(b, "%s%s='", b->len ? " " : "", key);
    for (size_t i = 0; i < n; i++) {
        char c[3] = {0};
        if (v[i] == '\'' || v[i] == '\\')
            c[0] = '\\', c[1] = v[i];
        else
            c[0] = v[i];
        jdbc_sb_add(b, c);
    }
    jdbc_sb_add(b, "'");
}

/* %XX decoding of a URL query value, into a new string. */
static char *url_decode(const char *s, size_t n)
{
    char *o = malloc(n + 1), *q = o;
    if (!o)
        abort();
    for (size_t i = 0; i < n; i++) {
        if (s[i] == '%' && i + 2 < n && isxdigit((unsigned char)s[i + 1]) &&
            isxdigit((unsigned char)s[i + 2])) {
            char h[3] = {s[i + 1], s[i + 2], 0};
            *q++ = (char)strtol(h, NULL, 16);
            i += 2;
        } else {
            *q++ = s[i];
        }
    }
    *q = 0;
    return o;
}

static int pg_url_parse(const char *rest, const char *user, const char *password, jdbc_url_t *out,
                        char *err, size_t err_len)
{
    jdbc_sb_t b = {0};
    const char *q = strchr(rest, '?');
    size_t main_len = q ? (size_t)(q - rest) : strlen(rest);
    if (strncmp(rest, "//", 2) == 0) {
        const char *hp = rest + 2, *slash = memchr(hp, '/', main_len - 2);
        size_t hp_len = slash ? (size_t)(slash - hp) : main_len - 2;
        const char *colon = NULL;
        if (hp_len && hp[0] == '[') { /* [ipv6]:port */
            const char *close = memchr(hp, ']', hp_len);
            if (!close)
                goto bad;
            conninfo_add(&b, "host", hp + 1, (size_t)(close - hp - 1));
            if (close + 1 < hp + hp_len) {
                if (close[1] != ':')
                    goto bad;
                colon = close + 1;
            }
        } else {
            colon = memchr(hp, ':', hp_len);
            size_t hl = colon ? (size_t)(colon - hp) : hp_len;
            conninfo_add(&b, "host", hl ? hp : "localhost", hl ? hl : 9);
        }
        if (colon) {
            size_t pl = (size_t)(hp + hp_len - colon - 1);
            if (!pl || pl > 5 || strspn(colon + 1, "0123456789") < pl)
                goto bad;
            conninfo_add(&b, "port", colon + 1, pl);
        }
        if (slash && (size_t)(rest + main_len - slash - 1) > 0)
            conninfo_add(&b, "dbname", slash + 1, (size_t)(rest + main_len - slash - 1));
    } else {
        if (!main_len)
            goto bad;
        conninfo_add(&b, "host", "localhost", 9);
        conninfo_add(&b, "dbname", rest, main_len);
    }
    if (q) {
        for (const char *p = q + 1; *p;) {
            size_t n = strcspn(p, "&");
            const char *eq = memchr(p, '=', n);
            if (eq) {
                size_t kl = (size_t)(eq - p);
                char *v = url_decode(eq + 1, n - kl - 1);
                if ((kl == 4 && strncmp(p, "user", 4) == 0 && !user) ||
                    (kl == 8 && strncmp(p, "password", 8) == 0 && !password) ||
                    (kl == 7 && strncmp(p, "sslmode", 7) == 0)) {
                    char key[16];
                    snprintf(key, sizeof key, "%.*s", (int)kl, p);
                    conninfo_add(&b, key, v, strlen(v));
                }
                free(v);
            }
            p += n;
            if (*p)
                p++;
        }
    }
    if (user && *user)
        conninfo_add(&b, "user", user, strlen(user));
    if (password && *password)
        conninfo_add(&b, "password", password, strlen(password));
    conninfo_add(&b, "connect_timeout", "10", 2);
    out->kind = JDBC_POSTGRES;
    out->conninfo = b.s;
    return 0;
bad:
    jdbc_sb_free(&b);
    snprintf(err, err_len,
             "Invalid PostgreSQL URL jdbc:postgresql:%s (expected jdbc:postgresql://host[:port]/database)",
             rest);
    return -1;
}

int jdbc_url_parse(const char *url, const char *user, const char *password, jdbc_url_t *out,
                   char *err, size_t err_len)
{
    memset(out, 0, sizeof *out);
    if (!url || !*url) {
        snprintf(err, err_len, "connection.url is not set");
        return -1;
    }
    if (strncmp(url, "jdbc:sqlite:", 12) == 0) {
        if (!url[12]) {
            snprintf(err, err_len, "Invalid SQLite URL %s (expected jdbc:sqlite:<file>)", url);
            return -1;
        }
        out->kind = JDBC_SQLITE;
        out->path = strdup(url + 12);
        return 0;
    }
    if (strncmp(url, "jdbc:postgresql:", 16) == 0)
        return pg_url_parse(url + 16, user, password, out, err, err_len);
    snprintf(err, err_len,
             "Unsupported connection.url %s: samsa-connect's JDBC connectors support jdbc:sqlite:<file> "
             "and jdbc:postgresql://host[:port]/database",
             url);
    return -1;
}

void jdbc_url_free(jdbc_url_t *u)
{
    free(u->path);
    free(u->conninfo);
    memset(u, 0, sizeof *u);
}

/* ------------------------------------------------------------------ types */

const char *jdbc_ctype_schema_type(jdbc_ctype_t t)
{
    switch (t) {
    case JC_INT8: return "int8";
    case JC_INT16: return "int16";
    case JC_INT32: return "int32";
    case JC_INT64: return "int64";
    case JC_FLOAT32: return "float32";
    case JC_FLOAT64: return "float64";
    case JC_BOOLEAN: return "boolean";
    case JC_BYTES: return "bytes";
    case JC_TIMESTAMP: return "int64";
    case JC_DATE: case JC_TIME: return "int32";
    case JC_STRING:
    case JC_NONE: break;
    }
    return "string";
}

const char *jdbc_ctype_logical_name(jdbc_ctype_t t)
{
    switch (t) {
    case JC_TIMESTAMP: return "org.apache.kafka.connect.data.Timestamp";
    case JC_DATE: return "org.apache.kafka.connect.data.Date";
    case JC_TIME: return "org.apache.kafka.connect.data.Time";
    default: return NULL;
    }
}

jdbc_ctype_t jdbc_ctype_from_schema(const char *type, const char *name)
{
    if (!type)
        return JC_NONE;
    if (name && strcmp(name, "org.apache.kafka.connect.data.Timestamp") == 0)
        return strcmp(type, "int64") == 0 ? JC_TIMESTAMP : JC_NONE;
    if (name && strcmp(name, "org.apache.kafka.connect.data.Date") == 0)
        return strcmp(type, "int32") == 0 ? JC_DATE : JC_NONE;
    if (name && strcmp(name, "org.apache.kafka.connect.data.Time") == 0)
        return strcmp(type, "int32") == 0 ? JC_TIME : JC_NONE;
    if (name && strncmp(name, "org.apache.kafka.connect.data.", 30) == 0)
        return JC_NONE; /* Decimal: not supported */
    static const struct {
        const char *n;
        jdbc_ctype_t t;
    } map[] = {{"int8", JC_INT8},       {"int16", JC_INT16},     {"int32", JC_INT32},
               {"int64", JC_INT64},     {"float32", JC_FLOAT32}, {"float64", JC_FLOAT64},
               {"boolean", JC_BOOLEAN}, {"string", JC_STRING},   {"bytes", JC_BYTES}};
    for (size_t i = 0; i < sizeof map / sizeof *map; i++)
        if (strcmp(type, map[i].n) == 0)
            return map[i].t;
    return JC_NONE;
}

const char *jdbc_ctype_sql(jdbc_kind_t kind, jdbc_ctype_t t)
{
    bool pg = kind == JDBC_POSTGRES;
    switch (t) {
    case JC_INT8: return pg ? "SMALLINT" : "TINYINT";
    case JC_INT16: return "SMALLINT";
    case JC_INT32: return pg ? "INTEGER" : "INT";
    case JC_INT64: return "BIGINT";
    case JC_FLOAT32: return pg ? "REAL" : "FLOAT";
    case JC_FLOAT64: return pg ? "DOUBLE PRECISION" : "DOUBLE";
    case JC_BOOLEAN: return "BOOLEAN";
    case JC_BYTES: return pg ? "BYTEA" : "BLOB";
    case JC_TIMESTAMP: return "TIMESTAMP";
    case JC_DATE: return "DATE";
    case JC_TIME: return "TIME";
    case JC_STRING:
    case JC_NONE: break;
    }
    return "TEXT";
}

static bool has(const char *up, const char *word)
{
    return strstr(up, word) != NULL;
}

jdbc_ctype_t jdbc_sqlite_decltype_ctype(const char *decl)
{
    if (!decl || !*decl)
        return JC_NONE;
    char up[64];
    size_t i = 0;
    for (; decl[i] && i + 1 < sizeof up; i++)
        up[i] = (char)toupper((unsigned char)decl[i]);
    up[i] = 0;
    if (has(up, "BOOL"))
        return JC_BOOLEAN;
    if (has(up, "TIMESTAMP") || has(up, "DATETIME"))
        return JC_TIMESTAMP;
    if (strcmp(up, "DATE") == 0)
        return JC_DATE;
    if (strcmp(up, "TIME") == 0)
        return JC_TIME;
    if (has(up, "INT")) {
        if (has(up, "TINYINT"))
            return JC_INT8;
        if (has(up, "SMALLINT"))
            return JC_INT16;
        if (has(up, "BIGINT") || has(up, "INTEGER") || has(up, "INT8"))
            return JC_INT64;
        return JC_INT32;
    }
    if (has(up, "CHAR") || has(up, "CLOB") || has(up, "TEXT"))
        return JC_STRING;
    if (has(up, "BLOB"))
        return JC_BYTES;
    if (has(up, "REAL") || has(up, "FLOA") || has(up, "DOUB") || has(up, "NUMERIC") ||
        has(up, "DECIMAL"))
        return JC_FLOAT64;
    return JC_STRING;
}

jdbc_ctype_t jdbc_pg_oid_ctype(unsigned oid)
{
    switch (oid) {
    case 16: return JC_BOOLEAN;
    case 17: return JC_BYTES;
    case 20: case 26: return JC_INT64;
    case 21: return JC_INT16;
    case 23: return JC_INT32;
    case 700: return JC_FLOAT32;
    case 701: case 1700: return JC_FLOAT64;
    case 1114: case 1184: return JC_TIMESTAMP;
    case 1082: return JC_DATE;
    case 1083: return JC_TIME;
    default: return JC_STRING;
    }
}

/* ------------------------------------------------------------------ timestamps */

static bool digits(const char *s, size_t len, size_t at, size_t n, int *out)
{
    if (at + n > len)
        return false;
    int v = 0;
    for (size_t i = 0; i < n; i++) {
        if (!isdigit((unsigned char)s[at + i]))
            return false;
        v = v * 10 + (s[at + i] - '0');
    }
    *out = v;
    return true;
}

bool jdbc_parse_timestamp(const char *s, size_t len, int64_t *ns_out)
{
    int y, mo, d, h = 0, mi = 0, sec = 0;
    if (!digits(s, len, 0, 4, &y) || len < 10 || s[4] != '-' || !digits(s, len, 5, 2, &mo) ||
        s[7] != '-' || !digits(s, len, 8, 2, &d) || mo < 1 || mo > 12 || d < 1 || d > 31)
        return false;
    size_t p = 10;
    int64_t frac_ns = 0;
    if (p < len && (s[p] == ' ' || s[p] == 'T')) {
        if (!digits(s, len, p + 1, 2, &h) || p + 3 >= len || s[p + 3] != ':' ||
            !digits(s, len, p + 4, 2, &mi) || h > 24 || mi > 59)
            return false;
        p += 6;
        if (p < len && s[p] == ':') {
            if (!digits(s, len, p + 1, 2, &sec) || sec > 60)
                return false;
            p += 3;
            if (p < len && s[p] == '.') {
                p++;
                int64_t scale = 100000000;
                size_t start = p;
                for (; p < len && isdigit((unsigned char)s[p]); p++) {
                    frac_ns += (s[p] - '0') * scale;
                    scale /= 10;
                }
                if (p == start)
                    return false;
            }
        }
    }
    int64_t off_s = 0;
    if (p < len && s[p] == 'Z') {
        p++;
    } else if (p < len && (s[p] == '+' || s[p] == '-')) {
        int oh = 0, om = 0;
        int sign = s[p] == '-' ? -1 : 1;
        if (!digits(s, len, p + 1, 2, &oh))
            return false;
        p += 3;
        if (p < len && s[p] == ':')
            p++;
        if (p + 2 <= len && digits(s, len, p, 2, &om))
            p += 2;
        off_s = sign * (oh * 3600 + om * 60);
    }
    if (p != len)
        return false;
    struct tm tm = {.tm_year = y - 1900, .tm_mon = mo - 1, .tm_mday = d, .tm_hour = h, .tm_min = mi,
                    .tm_sec = sec};
    int64_t secs = (int64_t)timegm(&tm) - off_s;
    *ns_out = secs * 1000000000 + frac_ns;
    return true;
}

void jdbc_format_timestamp(int64_t ns, int digits_n, char *buf, size_t len)
{
    int64_t secs = ns / 1000000000, frac = ns % 1000000000;
    if (frac < 0) {
        frac += 1000000000;
        secs--;
    }
    time_t t = (time_t)secs;
    struct tm tm;
    gmtime_r(&t, &tm);
    char base[32];
    strftime(base, sizeof base, "%Y-%m-%d %H:%M:%S", &tm);
    if (digits_n == 6)
        snprintf(buf, len, "%s.%06lld", base, (long long)(frac / 1000));
    else
        snprintf(buf, len, "%s.%03lld", base, (long long)(frac / 1000000));
}

bool jdbc_parse_time(const char *s, size_t len, int64_t *ms_out)
{
    int h, mi, sec = 0;
    if (!digits(s, len, 0, 2, &h) || len < 5 || s[2] != ':' || !digits(s, len, 3, 2, &mi) || h > 24 ||
        mi > 59)
        return false;
    size_t p = 5;
    int64_t frac_ms = 0;
    if (p < len && s[p] == ':') {
        if (!digits(s, len, p + 1, 2, &sec) || sec > 60)
            return false;
        p += 3;
        if (p < len && s[p] == '.') {
            int64_t scale = 100;
            size_t start = ++p;
            for (; p < len && isdigit((unsigned char)s[p]); p++) {
                frac_ms += (s[p] - '0') * scale;
                scale /= 10;
            }
            if (p == start)
                return false;
        }
    }
    if (p != len)
        return false;
    *ms_out = ((int64_t)h * 3600 + mi * 60 + sec) * 1000 + frac_ms;
    return true;
}

void jdbc_format_date(int64_t days, char *buf, size_t len)
{
    time_t t = (time_t)(days * 86400);
    struct tm tm;
    gmtime_r(&t, &tm);
    strftime(buf, len, "%Y-%m-%d", &tm);
}

void jdbc_format_time(int64_t ms, char *buf, size_t len)
{
    ms %= 86400000;
    if (ms < 0)
        ms += 86400000;
    snprintf(buf, len, "%02d:%02d:%02d.%03d", (int)(ms / 3600000), (int)(ms / 60000 % 60),
             (int)(ms / 1000 % 60), (int)(ms % 1000));
}

/* ------------------------------------------------------------------ base64 */

static const char b64[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

char *jdbc_b64_encode(const unsigned char *p, size_t n)
{
    char *o = malloc(4 * ((n + 2) / 3) + 1), *q = o;
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
    return o;
}

unsigned char *jdbc_b64_decode(const char *s, size_t len, size_t *out_len)
{
    unsigned char *o = malloc(len / 4 * 3 + 3), *q = o;
    if (!o)
        abort();
    unsigned acc = 0;
    int bits = 0;
    for (size_t i = 0; i < len; i++) {
        const char *pos = s[i] ? strchr(b64, s[i]) : NULL;
        if (s[i] == '=')
            break;
        if (!pos) {
            free(o);
            return NULL;
        }
        acc = acc << 6 | (unsigned)(pos - b64);
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            *q++ = (unsigned char)(acc >> bits);
            acc &= (1u << bits) - 1;
        }
    }
    *out_len = (size_t)(q - o);
    return o;
}

/* ------------------------------------------------------------------ config helpers */

size_t jdbc_split_list(const char *list, char ***out)
{
    *out = NULL;
    size_t n = 0, cap = 0;
    for (const char *p = list ? list : ""; *p;) {
        size_t len = strcspn(p, ",");
        const char *a = p, *b = p + len;
        while (a < b && isspace((unsigned char)*a))
            a++;
        while (b > a && isspace((unsigned char)b[-1]))
            b--;
        if (b > a) {
            if (n == cap) {
                cap = cap ? cap * 2 : 8;
                *out = realloc(*out, cap * sizeof **out);
                if (!*out)
                    abort();
            }
            (*out)[n++] = strndup(a, (size_t)(b - a));
        }
        p += len;
        if (*p)
            p++;
    }
    return n;
}

int64_t jdbc_cfg_i64(const samsa_connect_config_t *cfg, const char *key, int64_t dflt)
{
    const char *v = samsa_connect_config_get(cfg, key);
    if (!v || !*v)
        return dflt;
    char *end;
    long long x = strtoll(v, &end, 10);
    return *end ? dflt : x;
}

bool jdbc_cfg_bool(const samsa_connect_config_t *cfg, const char *key, bool dflt)
{
    const char *v = samsa_connect_config_get(cfg, key);
    if (!v || !*v)
        return dflt;
    return strcasecmp(v, "true") == 0;
}

void jdbc_int_check(samsa_connect_context_t *ctx, const samsa_connect_config_t *cfg, const char *key,
                    int64_t min)
{
    const char *v = samsa_connect_config_get(cfg, key);
    char *end;
    if (!v || !*v)
        return;
    long long x = strtoll(v, &end, 10);
    if (!*end && x < min) {
        char msg[96];
        snprintf(msg, sizeof msg, "Value must be at least %lld", (long long)min);
        ctx->rt->config_error(ctx, key, msg);
    }
}
