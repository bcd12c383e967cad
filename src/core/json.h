/*
 * json.h - a small, strict JSON (RFC 8259) reader and a string escaper, for the few
 * JSON files Kafka keeps on disk (the KRaft quorum-state file) and other small documents.
 *
 * The reader builds a tree in the caller's arena. It accepts exactly RFC 8259: no
 * comments, no trailing commas, no single quotes, no leading zeros or '+', no NaN,
 * no control characters inside strings, only valid UTF-8, no lone surrogates in \u
 * escapes; one value, surrounded only by whitespace. Nesting deeper than
 * SM_JSON_MAX_DEPTH is refused (the parser recurses). On error it reports the byte offset,
 * line and column where the input stopped making sense and what was expected there; it
 * never asserts on input. Duplicate object keys are kept (RFC 8259 leaves them
 * undefined); sm_json_member returns the first and sm_json_member_count lets a strict
 * reader refuse them.
 *
 * Numbers keep both forms: `num` (a double) and, when the text is an integer that fits,
 * the exact `i` with is_int set, so 64-bit offsets and ids are not rounded.
 *
 * Ownership: every node, key and string lives in the arena passed to sm_json_parse
 * (strings are decoded copies, NUL-terminated; the input may be freed after parsing).
 * Pure functions: any thread, one arena per thread.
 */
#ifndef SM_JSON_H
#define SM_JSON_H

#include "arena.h"
#include "buf.h"
#include "sm_common.h"

#define SM_JSON_MAX_DEPTH 64

typedef enum sm_json_type {
    SM_JSON_NULL,
    SM_JSON_BOOL,
    SM_JSON_NUMBER,
    SM_JSON_STRING,
    SM_JSON_ARRAY,
    SM_JSON_OBJECT,
} sm_json_type_t;

typedef struct sm_json sm_json_t;
struct sm_json {
    sm_json_type_t type;
    size_t off;         /* byte offset of the value in the input (for error messages) */
    const char *key;    /* member name when the value is in an object, else NULL */
    size_t key_len;     /* (keys may contain NUL through \u0000) */
    const sm_json_t *next;  /* next element or member of the enclosing array/object */
    const sm_json_t *child; /* first element or member (arrays, objects) */
    size_t count;           /* number of elements or members (arrays, objects) */
    bool b;                 /* SM_JSON_BOOL */
    double num;             /* SM_JSON_NUMBER */
    int64_t i;              /* SM_JSON_NUMBER with is_int */
    bool is_int;            /* integer syntax (no fraction or exponent) that fits int64 */
    const char *str;        /* SM_JSON_STRING: decoded, NUL-terminated */
    size_t str_len;
};

/* Where and why parsing stopped. line and col count from 1 (col in bytes). */
typedef struct sm_json_err {
    size_t off;
    int line, col;
    char msg[96];
} sm_json_err_t;

/*
 * Parse text[0..len) into a tree allocated from a; *out is its root.
 * SM_ERR_PARSE with *err filled for anything that is not one valid JSON value.
 */
SM_MUST_CHECK sm_err_t sm_json_parse(const char *text, size_t len, sm_arena_t *a,
                                     const sm_json_t **out, sm_json_err_t *err);

/* The first member of object obj named key (NULL if none, or obj is not an object). */
const sm_json_t *sm_json_member(const sm_json_t *obj, const char *key);
/* How many members of obj are named key. */
size_t sm_json_member_count(const sm_json_t *obj, const char *key);
/* "null", "boolean", "number", "string", "array" or "object". */
const char *sm_json_type_name(sm_json_type_t t);
/* Line and column (from 1) of byte offset off in text. */
void sm_json_line_col(const char *text, size_t len, size_t off, int *line, int *col);

/* Append s[0..len) as a JSON string literal (quoted, escaped) to w. */
void sm_json_write_str(sm_wbuf_t *w, const char *s, size_t len);

#endif
