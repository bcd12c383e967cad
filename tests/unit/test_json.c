/*
 * test_json.c - the strict JSON reader (src/core/json.h): what RFC 8259 allows is read
 * exactly (numbers keep exact 64-bit integers, escapes and surrogate pairs become UTF-8),
 * everything else is refused with the offset, line and column where it went wrong, nesting
 * is bounded, and truncated documents are refused; the string escaper round-trips.
 */
#include "json.h"
#include "sm_test.h"

#include <math.h>

static const sm_json_t *parse_ok(sm_arena_t *a, const char *text)
{
    const sm_json_t *v = NULL;
    sm_json_err_t err;
    sm_err_t rc = sm_json_parse(text, strlen(text), a, &v, &err);
    if (rc != SM_OK)
        fprintf(stderr, "   refused %s: %d:%d %s\n", text, err.line, err.col, err.msg);
    CHECK_EQ(rc, SM_OK);
    return v;
}

static void test_values(void)
{
    sm_arena_t a;
    sm_arena_init(&a);
    const sm_json_t *v = parse_ok(&a, " \t\r\n{\"a\": [1, -2, 3.5, true, false, null, \"x\"], \"b\": {}}\n");
    CHECK(v && v->type == SM_JSON_OBJECT && v->count == 2);
    const sm_json_t *arr = sm_json_member(v, "a");
    CHECK(arr && arr->type == SM_JSON_ARRAY && arr->count == 7);
    const sm_json_t *e = arr ? arr->child : NULL;
    CHECK(e && e->type == SM_JSON_NUMBER && e->is_int && e->i == 1 && e->key == NULL);
    e = e ? e->next : NULL;
    CHECK(e && e->is_int && e->i == -2);
    e = e ? e->next : NULL;
    CHECK(e && !e->is_int && e->num == 3.5);
    e = e ? e->next : NULL;
    CHECK(e && e->type == SM_JSON_BOOL && e->b);
    e = e ? e->next : NULL;
    CHECK(e && e->type == SM_JSON_BOOL && !e->b);
    e = e ? e->next : NULL;
    CHECK(e && e->type == SM_JSON_NULL);
    e = e ? e->next : NULL;
    CHECK(e && e->type == SM_JSON_STRING && strcmp(e->str, "x") == 0 && e->next == NULL);
    const sm_json_t *b = sm_json_member(v, "b");
    CHECK(b && b->type == SM_JSON_OBJECT && b->count == 0 && b->child == NULL);
    CHECK(b && b->off == 53); /* the offset of the value */
    CHECK(sm_json_member(v, "c") == NULL);
    CHECK(sm_json_member(arr, "a") == NULL); /* not an object */
    CHECK_EQ(sm_json_member_count(v, "a"), 1);

    /* duplicates are kept; the first wins; a strict reader can count them */
    v = parse_ok(&a, "{\"k\":1,\"k\":2}");
    CHECK(v && sm_json_member(v, "k")->i == 1);
    CHECK_EQ(sm_json_member_count(v, "k"), 2);

    /* scalars at the top level */
    v = parse_ok(&a, "\"s\"");
    CHECK(v && v->type == SM_JSON_STRING);
    v = parse_ok(&a, "0");
    CHECK(v && v->is_int && v->i == 0);
    CHECK(strcmp(sm_json_type_name(SM_JSON_OBJECT), "object") == 0);
    sm_arena_free(&a);
}

static void test_numbers(void)
{
    sm_arena_t a;
    sm_arena_init(&a);
    const sm_json_t *v = parse_ok(&a, "[9223372036854775807,-9223372036854775808,9223372036854775808,"
                                      "-9223372036854775809,-0,1e2,1E+2,-12.5e-3,0.0,1e999]");
    const sm_json_t *e = v ? v->child : NULL;
    CHECK(e && e->is_int && e->i == INT64_MAX);
    e = e ? e->next : NULL;
    CHECK(e && e->is_int && e->i == INT64_MIN);
    e = e ? e->next : NULL;
    CHECK(e && !e->is_int && e->num > 9.2e18); /* too big for int64: a double only */
    e = e ? e->next : NULL;
    CHECK(e && !e->is_int && e->num < -9.2e18);
    e = e ? e->next : NULL;
    CHECK(e && e->is_int && e->i == 0);
    e = e ? e->next : NULL;
    CHECK(e && !e->is_int && e->num == 100); /* exponent: not integer syntax */
    e = e ? e->next : NULL;
    CHECK(e && e->num == 100);
    e = e ? e->next : NULL;
    CHECK(e && e->num == -0.0125);
    e = e ? e->next : NULL;
    CHECK(e && !e->is_int && e->num == 0);
    e = e ? e->next : NULL;
    CHECK(e && isinf(e->num));
    sm_arena_free(&a);
}

static void test_strings(void)
{
    sm_arena_t a;
    sm_arena_init(&a);
    const sm_json_t *v =
        parse_ok(&a, "[\"\\\"\\\\\\/\\b\\f\\n\\r\\t\", \"\\u00e9\\u20ac\\ud83d\\ude00\", \"\xc3\xa9\xe2\x82\xac"
                     "\xf0\x9f\x98\x80\", \"a\\u0000b\"]");
    const sm_json_t *e = v ? v->child : NULL;
    CHECK(e && e->str_len == 8 && memcmp(e->str, "\"\\/\b\f\n\r\t", 8) == 0);
    e = e ? e->next : NULL;
    static const char utf8[] = "\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80";
    CHECK(e && e->str_len == 9 && memcmp(e->str, utf8, 9) == 0);
    e = e ? e->next : NULL;
    CHECK(e && e->str_len == 9 && memcmp(e->str, utf8, 9) == 0); /* raw UTF-8 passes */
    e = e ? e->next : NULL;
    CHECK(e && e->str_len == 3 && memcmp(e->str, "a\0b", 3) == 0);
    /* keys are decoded too, and compared with their length */
    v = parse_ok(&a, "{\"\\u006bey\":1}");
    CHECK(v && sm_json_member(v, "key") != NULL);

    /* the escaper: every byte 0..255 that is valid here round-trips */
    char raw[128];
    for (int i = 0; i < 128; i++)
        raw[i] = (char)i;
    sm_wbuf_t w;
    sm_wbuf_init(&w);
    sm_json_write_str(&w, raw, sizeof raw);
    sm_json_write_str(&w, utf8, 9);
    const sm_json_t *s;
    sm_json_err_t err;
    CHECK_EQ(sm_json_parse((const char *)w.mem, w.len - 11, &a, &s, &err), SM_OK);
    CHECK(s && s->str_len == 128 && memcmp(s->str, raw, 128) == 0);
    CHECK(w.len >= 11 && memcmp(w.mem + w.len - 11, "\"\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80\"", 11) == 0);
    sm_wbuf_free(&w);
    sm_arena_free(&a);
}

typedef struct {
    const char *text;
    size_t off; /* where the error must be reported */
    const char *msg; /* a part of the message */
} bad_t;

static void test_refused(void)
{
    static const bad_t bad[] = {
        {"", 0, "end of input"},
        {"   ", 3, "end of input"},
        {"{\"a\":1,}", 7, "member name"},
        {"[1,]", 3, "expected a value"},
        {"[1 2]", 3, "expected ',' or ']'"},
        {"{\"a\" 1}", 5, "expected ':'"},
        {"{a:1}", 1, "member name"},
        {"{'a':1}", 1, "member name"},
        {"[01]", 1, "leading zero"},
        {"[-01]", 1, "leading zero"},
        {"+1", 0, "expected a value"},
        {"1.", 2, "after '.'"},
        {".5", 0, "expected a value"},
        {"1e", 2, "exponent"},
        {"1e+", 3, "exponent"},
        {"-", 1, "digit"},
        {"NaN", 0, "expected a value"},
        {"Infinity", 0, "expected a value"},
        {"tru", 0, "literal"},
        {"nulll", 4, "after the value"},
        {"1 2", 2, "after the value"},
        {"{} x", 3, "after the value"},
        {"// c\n1", 0, "expected a value"},
        {"\"abc", 0, "unterminated"},
        {"\"abc\\\"", 0, "unterminated"},
        {"\"a\tb\"", 2, "control character"},
        {"\"a\nb\"", 2, "control character"},
        {"\"\\x\"", 1, "bad escape"},
        {"\"\\u12\"", 3, "truncated"},
        {"\"\\u12g4\"", 5, "bad hex digit"},
        {"\"\\ud800\"", 1, "high surrogate"},
        {"\"\\ud800\\u0041\"", 1, "high surrogate"},
        {"\"\\udc00\"", 1, "lone low surrogate"},
        {"\"\xc0\xaf\"", 1, "UTF-8"},       /* overlong '/' */
        {"\"\xe0\x80\xaf\"", 1, "UTF-8"},   /* overlong */
        {"\"\xed\xa0\x80\"", 1, "UTF-8"},   /* an encoded surrogate */
        {"\"\xf4\x90\x80\x80\"", 1, "UTF-8"}, /* above U+10FFFF */
        {"\"\xf5\x80\x80\x80\"", 1, "UTF-8"},
        {"\"\xc3\"", 1, "UTF-8"},           /* truncated sequence */
        {"\"\x80\"", 1, "UTF-8"},           /* a lone continuation byte */
        {"[1]\x00", 3, "after the value"},
        {"{\"a\":1}\n{\"b\":2}", 8, "after the value"},
    };
    sm_arena_t a;
    sm_arena_init(&a);
    for (size_t i = 0; i < SM_ARRAY_LEN(bad); i++) {
        const sm_json_t *v = (const sm_json_t *)&a; /* must be reset to NULL */
        sm_json_err_t err;
        size_t len = strlen(bad[i].text);
        if (i == SM_ARRAY_LEN(bad) - 2)
            len = 4; /* the one with an embedded NUL */
        sm_err_t rc = sm_json_parse(bad[i].text, len, &a, &v, &err);
        bool ok = rc == SM_ERR_PARSE && v == NULL && err.off == bad[i].off &&
                  strstr(err.msg, bad[i].msg) != NULL;
        if (!ok)
            fprintf(stderr, "   %zu: %s -> rc %d off %zu (want %zu) \"%s\" (want \"%s\")\n", i,
                    bad[i].text, rc, err.off, bad[i].off, err.msg, bad[i].msg);
        CHECK(ok);
    }
    /* line and column */
    const char *text = "{\n  \"a\": 1,\n  \"b\": tru\n}";
    const sm_json_t *v;
    sm_json_err_t err;
    CHECK_EQ(sm_json_parse(text, strlen(text), &a, &v, &err), SM_ERR_PARSE);
    CHECK_EQ(err.line, 3);
    CHECK_EQ(err.col, 8);
    /* the error argument may be NULL */
    CHECK_EQ(sm_json_parse("[", 1, &a, &v, NULL), SM_ERR_PARSE);
    sm_arena_free(&a);
}

static void test_depth_and_truncation(void)
{
    sm_arena_t a;
    sm_arena_init(&a);
    char deep[2 * SM_JSON_MAX_DEPTH + 4];
    for (int depth = SM_JSON_MAX_DEPTH; depth <= SM_JSON_MAX_DEPTH + 1; depth++) {
        size_t n = 0;
        for (int i = 0; i < depth; i++)
            deep[n++] = '[';
        for (int i = 0; i < depth; i++)
            deep[n++] = ']';
        const sm_json_t *v;
        sm_json_err_t err;
        sm_err_t rc = sm_json_parse(deep, n, &a, &v, &err);
        CHECK_EQ(rc, depth <= SM_JSON_MAX_DEPTH ? SM_OK : SM_ERR_PARSE);
        if (rc)
            CHECK(strstr(err.msg, "deeper") != NULL && err.off == (size_t)SM_JSON_MAX_DEPTH);
    }
    /* 100,000 nested arrays: refused quickly, no stack overflow */
    size_t big = 100000;
    char *many = malloc(big);
    memset(many, '[', big);
    const sm_json_t *v;
    CHECK_EQ(sm_json_parse(many, big, &a, &v, NULL), SM_ERR_PARSE);
    free(many);

    /* every proper prefix of a document that is an object is refused */
    const char *doc = "{\"leaderId\":1,\"x\":[true,false,null,\"s\\u00e9\",-1.5e3,{}],\"y\":\"\xe2\x82\xac\"}";
    size_t len = strlen(doc);
    CHECK_EQ(sm_json_parse(doc, len, &a, &v, NULL), SM_OK);
    int accepted = 0;
    for (size_t n = 0; n < len; n++) {
        sm_arena_reset(&a);
        if (sm_json_parse(doc, n, &a, &v, NULL) != SM_ERR_PARSE)
            accepted++;
    }
    CHECK_EQ(accepted, 0);
    sm_arena_free(&a);
}

int main(void)
{
    RUN(test_values);
    RUN(test_numbers);
    RUN(test_strings);
    RUN(test_refused);
    RUN(test_depth_and_truncation);
    TEST_MAIN_END();
}
