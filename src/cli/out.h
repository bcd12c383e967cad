/*
 * out.h - output helpers of the samsa tool: aligned text tables for people
 * and a streaming JSON writer for scripts (--format json).
 *
 * Table: add a header row then data rows of printf-formatted cells; printing
 * pads every column to its widest cell. Cells are copied (malloc), so the
 * caller's buffers may be reused at once.
 *
 * JSON: a writer with a small nesting stack that inserts commas itself;
 * strings are escaped per RFC 8259 (control characters as \u00XX, invalid
 * UTF-8 bytes as \u00XX of the byte, so output is always valid JSON). Keys
 * are written with cli_json_key before each member value. Main thread only.
 */
#ifndef SM_CLI_OUT_H
#define SM_CLI_OUT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

typedef struct cli_table {
    int ncols;
    int nrows, cap;
    char **cells; /* nrows * ncols */
    int cur;      /* cells filled in the row being built */
} cli_table_t;

void cli_table_init(cli_table_t *t, int ncols);
/* Append a cell to the current row (a new row starts when one is full). */
void cli_table_cell(cli_table_t *t, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Print with two spaces between columns; the first row is the header. */
void cli_table_print(cli_table_t *t, FILE *f);
void cli_table_free(cli_table_t *t);

#define CLI_JSON_DEPTH 32

typedef struct cli_json {
    FILE *f;
    int depth;
    bool first[CLI_JSON_DEPTH]; /* no member written yet at this level */
    bool after_key;
} cli_json_t;

void cli_json_init(cli_json_t *j, FILE *f);
void cli_json_obj_begin(cli_json_t *j);
void cli_json_obj_end(cli_json_t *j);
void cli_json_arr_begin(cli_json_t *j);
void cli_json_arr_end(cli_json_t *j);
void cli_json_key(cli_json_t *j, const char *key);
void cli_json_str(cli_json_t *j, const char *s); /* NULL -> null */
void cli_json_strn(cli_json_t *j, const void *s, size_t n);
void cli_json_int(cli_json_t *j, int64_t v);
void cli_json_double(cli_json_t *j, double v);
void cli_json_bool(cli_json_t *j, bool v);
void cli_json_null(cli_json_t *j);
/* End the document with a newline. */
void cli_json_done(cli_json_t *j);

/* Convenience: key + value. */
void cli_json_kstr(cli_json_t *j, const char *key, const char *s);
void cli_json_kint(cli_json_t *j, const char *key, int64_t v);
void cli_json_kdouble(cli_json_t *j, const char *key, double v);
void cli_json_kbool(cli_json_t *j, const char *key, bool v);

/* Write bytes to f escaped as JSON string contents (no quotes). */
void cli_json_escape(FILE *f, const void *s, size_t n);

#endif
