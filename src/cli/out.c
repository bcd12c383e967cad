/*
 * out.c - text tables and the JSON writer (see out.h). Main thread only.
 */
#define _GNU_SOURCE
#include "out.h"

#include "sm_common.h"

#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

void cli_table_init(cli_table_t *t, int ncols)
{
    memset(t, 0, sizeof *t);
    t->ncols = ncols;
}

void cli_table_cell(cli_table_t *t, const char *fmt, ...)
{
    if (t->cur == 0) {
        if (t->nrows == t->cap) {
            t->cap = t->cap ? t->cap * 2 : 16;
            t->cells = sm_xrealloc(t->cells, sizeof(char *) * (size_t)t->cap * (size_t)t->ncols);
        }
        t->nrows++;
    }
    va_list ap;
    va_start(ap, fmt);
    char *s = NULL;
    if (vasprintf(&s, fmt, ap) < 0)
        s = sm_xstrdup("?");
    va_end(ap);
    t->cells[(t->nrows - 1) * t->ncols + t->cur] = s;
    t->cur = (t->cur + 1) % t->ncols;
}

/* Display width of a UTF-8 string: count code points, not bytes, so names
 * with accents still line up. */
static int display_width(const char *s)
{
    int w = 0;
    for (; *s; s++)
        if (((unsigned char)*s & 0xC0) != 0x80)
            w++;
    return w;
}

void cli_table_print(cli_table_t *t, FILE *f)
{
    /* Fill an unfinished last row so every cell is valid. */
    while (t->cur != 0)
        cli_table_cell(t, "%s", "");
    int *w = sm_xcalloc((size_t)t->ncols, sizeof(int));
    for (int r = 0; r < t->nrows; r++)
        for (int c = 0; c < t->ncols; c++)
            w[c] = SM_MAX(w[c], display_width(t->cells[r * t->ncols + c]));
    for (int r = 0; r < t->nrows; r++) {
        for (int c = 0; c < t->ncols; c++) {
            const char *s = t->cells[r * t->ncols + c];
            fputs(s, f);
            if (c + 1 < t->ncols)
                fprintf(f, "%*s", w[c] - display_width(s) + 2, "");
        }
        fputc('\n', f);
    }
    free(w);
}

void cli_table_free(cli_table_t *t)
{
    int filled = t->nrows == 0 ? 0 : (t->nrows - 1) * t->ncols + (t->cur ? t->cur : t->ncols);
    for (int i = 0; i < filled; i++)
        free(t->cells[i]);
    free(t->cells);
    memset(t, 0, sizeof *t);
}

/* ---------------------------------------------------------------- JSON */

void cli_json_init(cli_json_t *j, FILE *f)
{
    memset(j, 0, sizeof *j);
    j->f = f;
    j->first[0] = true;
}

/* Separator before a value: a comma unless first at this level or right
 * after a key. */
static void sep(cli_json_t *j)
{
    if (j->after_key) {
        j->after_key = false;
        return;
    }
    if (!j->first[j->depth])
        fputc(',', j->f);
    j->first[j->depth] = false;
}

static void push(cli_json_t *j, char c)
{
    sep(j);
    fputc(c, j->f);
    SM_ASSERT(j->depth + 1 < CLI_JSON_DEPTH);
    j->depth++;
    j->first[j->depth] = true;
}

static void pop(cli_json_t *j, char c)
{
    SM_ASSERT(j->depth > 0);
    j->depth--;
    fputc(c, j->f);
}

void cli_json_obj_begin(cli_json_t *j) { push(j, '{'); }
void cli_json_obj_end(cli_json_t *j) { pop(j, '}'); }
void cli_json_arr_begin(cli_json_t *j) { push(j, '['); }
void cli_json_arr_end(cli_json_t *j) { pop(j, ']'); }

/* Length of a valid UTF-8 sequence at p (n bytes left), or 0 if invalid. */
static size_t utf8_len(const unsigned char *p, size_t n)
{
    unsigned char c = p[0];
    size_t len;
    if (c < 0x80)
        return 1;
    else if (c >= 0xC2 && c <= 0xDF)
        len = 2;
    else if (c >= 0xE0 && c <= 0xEF)
        len = 3;
    else if (c >= 0xF0 && c <= 0xF4)
        len = 4;
    else
        return 0;
    if (len > n)
        return 0;
    for (size_t i = 1; i < len; i++)
        if ((p[i] & 0xC0) != 0x80)
            return 0;
    return len;
}

void cli_json_escape(FILE *f, const void *s, size_t n)
{
    const unsigned char *p = s;
    size_t i = 0;
    while (i < n) {
        unsigned char c = p[i];
        if (c == '"' || c == '\\') {
            fputc('\\', f);
            fputc(c, f);
            i++;
        } else if (c == '\n') {
            fputs("\\n", f);
            i++;
        } else if (c == '\t') {
            fputs("\\t", f);
            i++;
        } else if (c == '\r') {
            fputs("\\r", f);
            i++;
        } else if (c < 0x20 || c == 0x7F) {
            fprintf(f, "\\u%04x", c);
            i++;
        } else {
            size_t l = utf8_len(p + i, n - i);
            if (l == 0) {
                fprintf(f, "\\u%04x", c); /* keep the output valid JSON */
                i++;
            } else {
                fwrite(p + i, 1, l, f);
                i += l;
            }
        }
    }
}

void cli_json_key(cli_json_t *j, const char *key)
{
    sep(j);
    fputc('"', j->f);
    cli_json_escape(j->f, key, strlen(key));
    fputs("\":", j->f);
    j->after_key = true;
}

void cli_json_strn(cli_json_t *j, const void *s, size_t n)
{
    sep(j);
    if (!s) {
        fputs("null", j->f);
        return;
    }
    fputc('"', j->f);
    cli_json_escape(j->f, s, n);
    fputc('"', j->f);
}

void cli_json_str(cli_json_t *j, const char *s) { cli_json_strn(j, s, s ? strlen(s) : 0); }

void cli_json_int(cli_json_t *j, int64_t v)
{
    sep(j);
    fprintf(j->f, "%lld", (long long)v);
}

void cli_json_double(cli_json_t *j, double v)
{
    sep(j);
    if (v != v || v > 1e300 || v < -1e300)
        fputs("null", j->f);
    else
        fprintf(j->f, "%.3f", v);
}

void cli_json_bool(cli_json_t *j, bool v)
{
    sep(j);
    fputs(v ? "true" : "false", j->f);
}

void cli_json_null(cli_json_t *j)
{
    sep(j);
    fputs("null", j->f);
}

void cli_json_done(cli_json_t *j)
{
    fputc('\n', j->f);
    j->first[0] = true;
}

void cli_json_kstr(cli_json_t *j, const char *key, const char *s)
{
    cli_json_key(j, key);
    cli_json_str(j, s);
}
void cli_json_kint(cli_json_t *j, const char *key, int64_t v)
{
    cli_json_key(j, key);
    cli_json_int(j, v);
}
void cli_json_kdouble(cli_json_t *j, const char *key, double v)
{
    cli_json_key(j, key);
    cli_json_double(j, v);
}
void cli_json_kbool(cli_json_t *j, const char *key, bool v)
{
    cli_json_key(j, key);
    cli_json_bool(j, v);
}
