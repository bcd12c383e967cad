/*
 * json.c - the strict JSON reader and string escaper of json.h.
 *
 * A recursive-descent parser over the input bytes (no copies of the input kept): each
 * value becomes one arena node; arrays and objects chain their children through `next`.
 * The first error wins and stops the parse; every path that reads a byte checks the
 * bounds first, so truncated input is an ordinary "unexpected end" error.
 */
#include "json.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct parser {
    const char *s;
    size_t len, pos;
    sm_arena_t *a;
    sm_json_err_t *err;
    bool failed;
} parser_t;

static void *fail(parser_t *p, size_t off, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static void *fail(parser_t *p, size_t off, const char *fmt, ...)
{
    if (p->failed)
        return NULL;
    p->failed = true;
    p->err->off = off;
    sm_json_line_col(p->s, p->len, off, &p->err->line, &p->err->col);
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(p->err->msg, sizeof p->err->msg, fmt, ap);
    va_end(ap);
    return NULL;
}

/* What is at the current position, for messages: "end of input" or the character. */
static const char *what_here(const parser_t *p, char buf[16])
{
    if (p->pos >= p->len)
        return "end of input";
    unsigned char c = (unsigned char)p->s[p->pos];
    if (c >= 0x20 && c < 0x7f)
        snprintf(buf, 16, "'%c'", c);
    else
        snprintf(buf, 16, "byte 0x%02x", c);
    return buf;
}

static void skip_ws(parser_t *p)
{
    while (p->pos < p->len) {
        char c = p->s[p->pos];
        if (c != ' ' && c != '\t' && c != '\n' && c != '\r')
            break;
        p->pos++;
    }
}

static sm_json_t *node(parser_t *p, sm_json_type_t t, size_t off)
{
    sm_json_t *n = sm_arena_alloc(p->a, sizeof *n);
    n->type = t;
    n->off = off;
    return n;
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

/* Four hex digits at p->pos (after "\u"); -1 after failing. */
static long read_hex4(parser_t *p)
{
    if (p->len - p->pos < 4) {
        fail(p, p->pos, "truncated \\u escape");
        return -1;
    }
    long v = 0;
    for (int i = 0; i < 4; i++) {
        int h = hexval(p->s[p->pos + (size_t)i]);
        if (h < 0) {
            fail(p, p->pos + (size_t)i, "bad hex digit in \\u escape");
            return -1;
        }
        v = v * 16 + h;
    }
    p->pos += 4;
    return v;
}

static size_t put_utf8(char *o, unsigned long cp)
{
    if (cp < 0x80) {
        o[0] = (char)cp;
        return 1;
    }
    if (cp < 0x800) {
        o[0] = (char)(0xc0 | (cp >> 6));
        o[1] = (char)(0x80 | (cp & 0x3f));
        return 2;
    }
    if (cp < 0x10000) {
        o[0] = (char)(0xe0 | (cp >> 12));
        o[1] = (char)(0x80 | ((cp >> 6) & 0x3f));
        o[2] = (char)(0x80 | (cp & 0x3f));
        return 3;
    }
    o[0] = (char)(0xf0 | (cp >> 18));
    o[1] = (char)(0x80 | ((cp >> 12) & 0x3f));
    o[2] = (char)(0x80 | ((cp >> 6) & 0x3f));
    o[3] = (char)(0x80 | (cp & 0x3f));
    return 4;
}

/* Length of the valid UTF-8 sequence starting at s[0] (a byte >= 0x80), or 0. */
static size_t utf8_seq(const unsigned char *s, size_t avail)
{
    unsigned char c = s[0];
    size_t n;
    unsigned char lo = 0x80, hi = 0xbf; /* allowed range of the second byte */
    if (c >= 0xc2 && c <= 0xdf)
        n = 2;
    else if (c >= 0xe0 && c <= 0xef) {
        n = 3;
        if (c == 0xe0)
            lo = 0xa0; /* overlong */
        if (c == 0xed)
            hi = 0x9f; /* surrogates */
    } else if (c >= 0xf0 && c <= 0xf4) {
        n = 4;
        if (c == 0xf0)
            lo = 0x90; /* overlong */
        if (c == 0xf4)
            hi = 0x8f; /* above U+10FFFF */
    } else
        return 0;
    if (avail < n || s[1] < lo || s[1] > hi)
        return 0;
    for (size_t i = 2; i < n; i++)
        if ((s[i] & 0xc0) != 0x80)
            return 0;
    return n;
}

/* A string literal at p->pos (the opening quote); the decoded copy goes to *out, its length
 * to *out_len. */
static bool parse_string(parser_t *p, const char **out, size_t *out_len)
{
    size_t start = p->pos++;
    /* the decoded form is never longer than the raw one */
    size_t end = start + 1;
    while (end < p->len && p->s[end] != '"')
        end += p->s[end] == '\\' ? 2 : 1;
    if (end >= p->len) {
        fail(p, start, "unterminated string");
        return false;
    }
    char *o = sm_arena_alloc(p->a, end - start);
    size_t n = 0;
    while (p->s[p->pos] != '"') {
        unsigned char c = (unsigned char)p->s[p->pos];
        if (c < 0x20) {
            fail(p, p->pos, "control character 0x%02x in a string (must be escaped)", c);
            return false;
        }
        if (c >= 0x80) {
            size_t k = utf8_seq((const unsigned char *)p->s + p->pos, end - p->pos);
            if (!k) {
                fail(p, p->pos, "invalid UTF-8 in a string");
                return false;
            }
            memcpy(o + n, p->s + p->pos, k);
            n += k;
            p->pos += k;
            continue;
        }
        if (c != '\\') {
            o[n++] = (char)c;
            p->pos++;
            continue;
        }
        size_t esc = p->pos++;
        char e = p->s[p->pos++]; /* in bounds: the scan above stopped at a quote after it */
        switch (e) {
        case '"': o[n++] = '"'; break;
        case '\\': o[n++] = '\\'; break;
        case '/': o[n++] = '/'; break;
        case 'b': o[n++] = '\b'; break;
        case 'f': o[n++] = '\f'; break;
        case 'n': o[n++] = '\n'; break;
        case 'r': o[n++] = '\r'; break;
        case 't': o[n++] = '\t'; break;
        case 'u': {
            long cp = read_hex4(p);
            if (cp < 0)
                return false;
            if (cp >= 0xdc00 && cp <= 0xdfff) {
                fail(p, esc, "lone low surrogate \\u%04lx", cp);
                return false;
            }
            if (cp >= 0xd800 && cp <= 0xdbff) {
                if (p->len - p->pos < 2 || p->s[p->pos] != '\\' || p->s[p->pos + 1] != 'u') {
                    fail(p, esc, "high surrogate \\u%04lx without a low one", cp);
                    return false;
                }
                p->pos += 2;
                long lo = read_hex4(p);
                if (lo < 0)
                    return false;
                if (lo < 0xdc00 || lo > 0xdfff) {
                    fail(p, esc, "high surrogate \\u%04lx without a low one", cp);
                    return false;
                }
                cp = 0x10000 + ((cp - 0xd800) << 10) + (lo - 0xdc00);
            }
            n += put_utf8(o + n, (unsigned long)cp);
            break;
        }
        default:
            fail(p, esc, "bad escape \\%c", e >= 0x20 && e < 0x7f ? e : '?');
            return false;
        }
    }
    p->pos++; /* closing quote */
    o[n] = '\0';
    *out = o;
    *out_len = n;
    return true;
}

static bool is_digit(char c) { return c >= '0' && c <= '9'; }

static sm_json_t *parse_number(parser_t *p)
{
    size_t start = p->pos;
    const char *s = p->s;
    bool neg = false, integer = true;
    if (s[p->pos] == '-') {
        neg = true;
        p->pos++;
    }
    if (p->pos >= p->len || !is_digit(s[p->pos]))
        return fail(p, p->pos, "expected a digit");
    if (s[p->pos] == '0') {
        p->pos++;
        if (p->pos < p->len && is_digit(s[p->pos]))
            return fail(p, start, "leading zero in a number");
    } else {
        while (p->pos < p->len && is_digit(s[p->pos]))
            p->pos++;
    }
    if (p->pos < p->len && s[p->pos] == '.') {
        integer = false;
        p->pos++;
        if (p->pos >= p->len || !is_digit(s[p->pos]))
            return fail(p, p->pos, "expected a digit after '.'");
        while (p->pos < p->len && is_digit(s[p->pos]))
            p->pos++;
    }
    if (p->pos < p->len && (s[p->pos] == 'e' || s[p->pos] == 'E')) {
        integer = false;
        p->pos++;
        if (p->pos < p->len && (s[p->pos] == '+' || s[p->pos] == '-'))
            p->pos++;
        if (p->pos >= p->len || !is_digit(s[p->pos]))
            return fail(p, p->pos, "expected a digit in the exponent");
        while (p->pos < p->len && is_digit(s[p->pos]))
            p->pos++;
    }
    sm_json_t *n = node(p, SM_JSON_NUMBER, start);
    char *copy = sm_arena_strndup(p->a, s + start, p->pos - start);
    n->num = strtod(copy, NULL);
    if (integer) {
        /* exact value, accumulated negatively so INT64_MIN fits */
        int64_t v = 0;
        bool fits = true;
        for (size_t i = start + (neg ? 1 : 0); i < p->pos; i++) {
            int d = s[i] - '0';
            if (v < (INT64_MIN + d) / 10) {
                fits = false;
                break;
            }
            v = v * 10 - d;
        }
        if (fits && !neg && v == INT64_MIN)
            fits = false;
        if (fits) {
            n->is_int = true;
            n->i = neg ? v : -v;
        }
    }
    return n;
}

static sm_json_t *parse_value(parser_t *p, int depth);

static sm_json_t *parse_array(parser_t *p, int depth)
{
    sm_json_t *arr = node(p, SM_JSON_ARRAY, p->pos++);
    sm_json_t **tail = (sm_json_t **)&arr->child;
    skip_ws(p);
    if (p->pos < p->len && p->s[p->pos] == ']') {
        p->pos++;
        return arr;
    }
    for (;;) {
        sm_json_t *v = parse_value(p, depth + 1);
        if (!v)
            return NULL;
        *tail = v;
        tail = (sm_json_t **)&v->next;
        arr->count++;
        skip_ws(p);
        char buf[16];
        if (p->pos < p->len && p->s[p->pos] == ',') {
            p->pos++;
            continue;
        }
        if (p->pos < p->len && p->s[p->pos] == ']') {
            p->pos++;
            return arr;
        }
        return fail(p, p->pos, "expected ',' or ']' in an array, found %s", what_here(p, buf));
    }
}

static sm_json_t *parse_object(parser_t *p, int depth)
{
    sm_json_t *obj = node(p, SM_JSON_OBJECT, p->pos++);
    sm_json_t **tail = (sm_json_t **)&obj->child;
    char buf[16];
    skip_ws(p);
    if (p->pos < p->len && p->s[p->pos] == '}') {
        p->pos++;
        return obj;
    }
    for (;;) {
        skip_ws(p);
        if (p->pos >= p->len || p->s[p->pos] != '"')
            return fail(p, p->pos, "expected a member name (a string), found %s", what_here(p, buf));
        const char *key;
        size_t key_len;
        if (!parse_string(p, &key, &key_len))
            return NULL;
        skip_ws(p);
        if (p->pos >= p->len || p->s[p->pos] != ':')
            return fail(p, p->pos, "expected ':' after member \"%.40s\", found %s", key,
                        what_here(p, buf));
        p->pos++;
        sm_json_t *v = parse_value(p, depth + 1);
        if (!v)
            return NULL;
        v->key = key;
        v->key_len = key_len;
        *tail = v;
        tail = (sm_json_t **)&v->next;
        obj->count++;
        skip_ws(p);
        if (p->pos < p->len && p->s[p->pos] == ',') {
            p->pos++;
            continue;
        }
        if (p->pos < p->len && p->s[p->pos] == '}') {
            p->pos++;
            return obj;
        }
        return fail(p, p->pos, "expected ',' or '}' in an object, found %s", what_here(p, buf));
    }
}

static sm_json_t *literal(parser_t *p, const char *word, sm_json_type_t t, bool b)
{
    size_t n = strlen(word);
    if (p->len - p->pos < n || memcmp(p->s + p->pos, word, n) != 0)
        return fail(p, p->pos, "unknown literal (expected %s)", word);
    sm_json_t *v = node(p, t, p->pos);
    v->b = b;
    p->pos += n;
    return v;
}

static sm_json_t *parse_value(parser_t *p, int depth)
{
    char buf[16];
    if (depth > SM_JSON_MAX_DEPTH)
        return fail(p, p->pos, "nested deeper than %d levels", SM_JSON_MAX_DEPTH);
    skip_ws(p);
    if (p->pos >= p->len)
        return fail(p, p->pos, "expected a value, found end of input");
    char c = p->s[p->pos];
    switch (c) {
    case '{':
        return parse_object(p, depth);
    case '[':
        return parse_array(p, depth);
    case '"': {
        sm_json_t *v = node(p, SM_JSON_STRING, p->pos);
        return parse_string(p, &v->str, &v->str_len) ? v : NULL;
    }
    case 't':
        return literal(p, "true", SM_JSON_BOOL, true);
    case 'f':
        return literal(p, "false", SM_JSON_BOOL, false);
    case 'n':
        return literal(p, "null", SM_JSON_NULL, false);
    default:
        if (c == '-' || is_digit(c))
            return parse_number(p);
        return fail(p, p->pos, "expected a value, found %s", what_here(p, buf));
    }
}

sm_err_t sm_json_parse(const char *text, size_t len, sm_arena_t *a, const sm_json_t **out,
                       sm_json_err_t *err)
{
    sm_json_err_t scratch;
    parser_t p = {text, len, 0, a, err ? err : &scratch, false};
    memset(p.err, 0, sizeof *p.err);
    *out = NULL;
    sm_json_t *v = parse_value(&p, 1);
    if (v) {
        skip_ws(&p);
        char buf[16];
        if (p.pos < p.len)
            fail(&p, p.pos, "unexpected %s after the value", what_here(&p, buf));
    }
    if (p.failed)
        return SM_ERR_PARSE;
    *out = v;
    return SM_OK;
}

static bool key_is(const sm_json_t *m, const char *key)
{
    size_t n = strlen(key);
    return m->key_len == n && memcmp(m->key, key, n) == 0;
}

const sm_json_t *sm_json_member(const sm_json_t *obj, const char *key)
{
    if (!obj || obj->type != SM_JSON_OBJECT)
        return NULL;
    for (const sm_json_t *m = obj->child; m; m = m->next)
        if (key_is(m, key))
            return m;
    return NULL;
}

size_t sm_json_member_count(const sm_json_t *obj, const char *key)
{
    size_t n = 0;
    if (obj && obj->type == SM_JSON_OBJECT)
        for (const sm_json_t *m = obj->child; m; m = m->next)
            n += key_is(m, key);
    return n;
}

const char *sm_json_type_name(sm_json_type_t t)
{
    static const char *const names[] = {"null", "boolean", "number", "string", "array", "object"};
    return (unsigned)t < SM_ARRAY_LEN(names) ? names[t] : "?";
}

void sm_json_line_col(const char *text, size_t len, size_t off, int *line, int *col)
{
    int l = 1, c = 1;
    for (size_t i = 0; i < off && i < len; i++) {
        if (text[i] == '\n') {
            l++;
            c = 1;
        } else {
            c++;
        }
    }
    *line = l;
    *col = c;
}

void sm_json_write_str(sm_wbuf_t *w, const char *s, size_t len)
{
    static const char hex[] = "0123456789abcdef";
    sm_wbuf_u8(w, '"');
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)s[i];
        switch (c) {
        case '"': sm_wbuf_bytes(w, "\\\"", 2); break;
        case '\\': sm_wbuf_bytes(w, "\\\\", 2); break;
        case '\n': sm_wbuf_bytes(w, "\\n", 2); break;
        case '\r': sm_wbuf_bytes(w, "\\r", 2); break;
        case '\t': sm_wbuf_bytes(w, "\\t", 2); break;
        case '\b': sm_wbuf_bytes(w, "\\b", 2); break;
        case '\f': sm_wbuf_bytes(w, "\\f", 2); break;
        default:
            if (c < 0x20) {
                char e[6] = {'\\', 'u', '0', '0', hex[c >> 4], hex[c & 15]};
                sm_wbuf_bytes(w, e, 6);
            } else {
                sm_wbuf_u8(w, c);
            }
        }
    }
    sm_wbuf_u8(w, '"');
}
