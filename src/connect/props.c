/*
 * props.c - Java .properties parsing and connector files from the command line.
 *
 * The properties format is java.util.Properties.load's: lines starting (after blanks)
 * with '#' or '!' are comments; a key ends at the first unescaped '=', ':' or blank,
 * and blanks around the separator are skipped; a line ending in an odd number of
 * backslashes continues on the next line (its leading blanks dropped); \t \n \r \f
 * \uXXXX and \<any> escapes are decoded in keys and values. A later key replaces an
 * earlier one. Pure functions; any thread.
 */
#define _GNU_SOURCE
#include "cn.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

typedef struct sbuf {
    char *p;
    size_t len, cap;
} sbuf_t;

static void sb_put(sbuf_t *b, const char *s, size_t n)
{
    if (b->len + n + 1 > b->cap) {
        size_t cap = b->cap ? b->cap * 2 : 64;
        while (cap < b->len + n + 1)
            cap *= 2;
        char *q = realloc(b->p, cap);
        if (!q) {
            fprintf(stderr, "samsa-connect: out of memory\n");
            abort();
        }
        b->p = q;
        b->cap = cap;
    }
    memcpy(b->p + b->len, s, n);
    b->len += n;
    b->p[b->len] = 0;
}

static void sb_putc(sbuf_t *b, char c) { sb_put(b, &c, 1); }

/* Append code point cp as UTF-8. */
static void sb_utf8(sbuf_t *b, unsigned cp)
{
    char u[4];
    if (cp < 0x80) {
        sb_putc(b, (char)cp);
    } else if (cp < 0x800) {
        u[0] = (char)(0xC0 | (cp >> 6));
        u[1] = (char)(0x80 | (cp & 0x3F));
        sb_put(b, u, 2);
    } else {
        u[0] = (char)(0xE0 | (cp >> 12));
        u[1] = (char)(0x80 | ((cp >> 6) & 0x3F));
        u[2] = (char)(0x80 | (cp & 0x3F));
        sb_put(b, u, 3);
    }
}

static bool is_blank(char c) { return c == ' ' || c == '\t' || c == '\f'; }

/* Join continued lines of text starting at *pos into one logical line (raw, escapes
 * kept except the continuation backslashes). Returns false at end of input. */
static bool logical_line(const char *t, size_t len, size_t *pos, sbuf_t *line)
{
    line->len = 0;
    if (line->p)
        line->p[0] = 0;
    size_t i = *pos;
    if (i >= len)
        return false;
    bool first = true;
    for (;;) {
        if (!first)
            while (i < len && is_blank(t[i]))
                i++;
        size_t s = i;
        while (i < len && t[i] != '\n' && t[i] != '\r')
            i++;
        size_t e = i;
        if (i + 1 < len && t[i] == '\r' && t[i + 1] == '\n')
            i += 2;
        else if (i < len)
            i++;
        size_t bs = 0;
        while (bs < e - s && t[e - 1 - bs] == '\\')
            bs++;
        bool cont = (bs % 2) == 1;
        /* A comment line never continues. */
        size_t k = s;
        while (k < e && is_blank(t[k]))
            k++;
        if (first && k < e && (t[k] == '#' || t[k] == '!'))
            cont = false;
        sb_put(line, t + s, cont ? e - s - 1 : e - s);
        first = false;
        if (!cont || i >= len)
            break;
    }
    *pos = i;
    if (!line->p)
        sb_put(line, "", 0);
    return true;
}

static void unescape(const char *s, size_t n, sbuf_t *out)
{
    out->len = 0;
    sb_put(out, "", 0);
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        if (c != '\\' || i + 1 >= n) {
            sb_putc(out, c);
            continue;
        }
        c = s[++i];
        switch (c) {
        case 't': sb_putc(out, '\t'); break;
        case 'n': sb_putc(out, '\n'); break;
        case 'r': sb_putc(out, '\r'); break;
        case 'f': sb_putc(out, '\f'); break;
        case 'u': {
            unsigned cp = 0;
            size_t k = 0;
            for (; k < 4 && i + 1 + k < n; k++) {
                char h = s[i + 1 + k];
                int d = h >= '0' && h <= '9'   ? h - '0'
                        : h >= 'a' && h <= 'f' ? h - 'a' + 10
                        : h >= 'A' && h <= 'F' ? h - 'A' + 10
                                               : -1;
                if (d < 0)
                    break;
                cp = cp * 16 + (unsigned)d;
            }
            if (k == 4) {
                sb_utf8(out, cp);
                i += 4;
            } else {
                sb_putc(out, 'u');
            }
            break;
        }
        default: sb_putc(out, c);
        }
    }
}

json_t *cn_props_parse(const char *text, size_t len)
{
    json_t *obj = json_object();
    if (!obj)
        return NULL;
    sbuf_t line = {0}, key = {0}, val = {0};
    size_t pos = 0;
    while (logical_line(text, len, &pos, &line)) {
        const char *l = line.p;
        size_t n = line.len, i = 0;
        while (i < n && is_blank(l[i]))
            i++;
        if (i >= n || l[i] == '#' || l[i] == '!')
            continue;
        size_t ks = i;
        while (i < n) {
            if (l[i] == '\\') {
                i += 2;
                continue;
            }
            if (l[i] == '=' || l[i] == ':' || is_blank(l[i]))
                break;
            i++;
        }
        if (i > n)
            i = n;
        size_t ke = i;
        while (i < n && is_blank(l[i]))
            i++;
        if (i < n && (l[i] == '=' || l[i] == ':')) {
            i++;
            while (i < n && is_blank(l[i]))
                i++;
        }
        unescape(l + ks, ke - ks, &key);
        unescape(l + i, n - i, &val);
        json_object_set_new(obj, key.p, json_stringn(val.p, val.len));
    }
    free(line.p);
    free(key.p);
    free(val.p);
    return obj;
}

char *cn_read_file(const char *path, size_t *len_out, char *err, size_t err_len)
{
    FILE *f = fopen(path, "rb");
    if (!f) {
        snprintf(err, err_len, "%s: %s", path, strerror(errno));
        return NULL;
    }
    struct stat st;
    if (fstat(fileno(f), &st) != 0 || st.st_size > (16 << 20)) {
        snprintf(err, err_len, "%s: %s", path, errno ? strerror(errno) : "larger than 16 MiB");
        fclose(f);
        return NULL;
    }
    size_t n = (size_t)st.st_size;
    char *buf = malloc(n + 1);
    if (!buf) {
        fclose(f);
        snprintf(err, err_len, "%s: out of memory", path);
        return NULL;
    }
    size_t got = fread(buf, 1, n, f);
    fclose(f);
    if (got != n) {
        free(buf);
        snprintf(err, err_len, "%s: short read", path);
        return NULL;
    }
    buf[n] = 0;
    if (len_out)
        *len_out = n;
    return buf;
}

json_t *cn_config_normalize(json_t *obj, char *err, size_t err_len)
{
    if (!json_is_object(obj)) {
        snprintf(err, err_len, "a connector configuration must be a JSON object");
        return NULL;
    }
    json_t *out = json_object();
    const char *k;
    json_t *v;
    json_object_foreach(obj, k, v) {
        char num[64];
        switch (json_typeof(v)) {
        case JSON_STRING:
            json_object_set_new(out, k, json_stringn(json_string_value(v), json_string_length(v)));
            break;
        case JSON_INTEGER:
            snprintf(num, sizeof num, "%" JSON_INTEGER_FORMAT, json_integer_value(v));
            json_object_set_new(out, k, json_string(num));
            break;
        case JSON_REAL:
            snprintf(num, sizeof num, "%.17g", json_real_value(v));
            json_object_set_new(out, k, json_string(num));
            break;
        case JSON_TRUE:
        case JSON_FALSE:
            json_object_set_new(out, k, json_string(json_is_true(v) ? "true" : "false"));
            break;
        case JSON_NULL:
            break;
        default:
            snprintf(err, err_len, "configuration value of '%s' must be a string", k);
            json_decref(out);
            return NULL;
        }
    }
    return out;
}

json_t *cn_connector_file_load(const char *path, char *err, size_t err_len)
{
    size_t len;
    char *text = cn_read_file(path, &len, err, err_len);
    if (!text)
        return NULL;
    json_t *cfg = NULL;
    size_t pl = strlen(path);
    if (pl > 5 && strcmp(path + pl - 5, ".json") == 0) {
        json_error_t je;
        json_t *doc = json_loadb(text, len, JSON_REJECT_DUPLICATES, &je);
        if (!doc) {
            snprintf(err, err_len, "%s:%d:%d: %s", path, je.line, je.column, je.text);
            goto done;
        }
        json_t *inner = json_object_get(doc, "config");
        if (json_is_object(inner)) {
            cfg = cn_config_normalize(inner, err, err_len);
            json_t *name = json_object_get(doc, "name");
            if (cfg && json_is_string(name) && !json_object_get(cfg, "name"))
                json_object_set(cfg, "name", name);
        } else {
            cfg = cn_config_normalize(doc, err, err_len);
        }
        json_decref(doc);
    } else {
        cfg = cn_props_parse(text, len);
    }
    if (cfg && !json_is_string(json_object_get(cfg, "name"))) {
        snprintf(err, err_len, "%s: the connector configuration has no 'name'", path);
        json_decref(cfg);
        cfg = NULL;
    }
done:
    free(text);
    return cfg;
}
