/*
 * fuzz_json.c - libFuzzer target for the JSON reader (src/core/json.h) and the
 * quorum-state file reader built on it (src/raft/quorum_state.h).
 *
 * Input: any bytes, read as a JSON document and as a quorum-state file.
 * Oracle, besides the sanitizers:
 *  - a document that parses is written back out canonically (sm_json_write_str for
 *    strings and keys); that text must parse again into an equal tree;
 *  - a refused document reports an offset inside the input and a line and column >= 1;
 *  - a quorum-state that parses is formatted at its own data_version and must parse
 *    back to the same state, and formatting that again gives the same bytes.
 * Built with clang -fsanitize=fuzzer and, with any compiler, as fuzz_json_replay that
 * replays tests/fuzz/corpus/json in ctest.
 */
#include "json.h"
#include "quorum_state.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void must(bool cond, const char *what)
{
    if (!cond) {
        fprintf(stderr, "fuzz_json: %s\n", what);
        abort();
    }
}

static void write_value(sm_wbuf_t *w, const sm_json_t *v)
{
    char buf[40];
    switch (v->type) {
    case SM_JSON_NULL:
        sm_wbuf_bytes(w, "null", 4);
        break;
    case SM_JSON_BOOL:
        v->b ? sm_wbuf_bytes(w, "true", 4) : sm_wbuf_bytes(w, "false", 5);
        break;
    case SM_JSON_NUMBER:
        if (v->is_int)
            snprintf(buf, sizeof buf, "%lld", (long long)v->i);
        else if (isinf(v->num))
            snprintf(buf, sizeof buf, "%s1e999", v->num < 0 ? "-" : "");
        else
            snprintf(buf, sizeof buf, "%.17g", v->num);
        sm_wbuf_bytes(w, buf, strlen(buf));
        break;
    case SM_JSON_STRING:
        sm_json_write_str(w, v->str, v->str_len);
        break;
    case SM_JSON_ARRAY:
    case SM_JSON_OBJECT:
        sm_wbuf_u8(w, v->type == SM_JSON_ARRAY ? '[' : '{');
        for (const sm_json_t *c = v->child; c; c = c->next) {
            if (c != v->child)
                sm_wbuf_u8(w, ',');
            if (v->type == SM_JSON_OBJECT) {
                sm_json_write_str(w, c->key, c->key_len);
                sm_wbuf_u8(w, ':');
            }
            write_value(w, c);
        }
        sm_wbuf_u8(w, v->type == SM_JSON_ARRAY ? ']' : '}');
        break;
    }
}

static bool same(const sm_json_t *x, const sm_json_t *y)
{
    if (x->type != y->type || x->count != y->count || x->key_len != y->key_len ||
        (x->key_len && memcmp(x->key, y->key, x->key_len) != 0))
        return false;
    switch (x->type) {
    case SM_JSON_BOOL:
        return x->b == y->b;
    case SM_JSON_NUMBER:
        return x->is_int && y->is_int ? x->i == y->i : x->num == y->num;
    case SM_JSON_STRING:
        return x->str_len == y->str_len && memcmp(x->str, y->str, x->str_len) == 0;
    case SM_JSON_ARRAY:
    case SM_JSON_OBJECT: {
        const sm_json_t *a = x->child, *b = y->child;
        for (; a && b; a = a->next, b = b->next)
            if (!same(a, b))
                return false;
        return !a && !b;
    }
    default:
        return true;
    }
}

static void check_quorum_state(const uint8_t *data, size_t size)
{
    sm_quorum_state_t s, s2;
    char why[256];
    if (sm_quorum_state_parse((const char *)data, size, "fuzz", &s, why, sizeof why) != SM_OK) {
        must(strncmp(why, "fuzz: line ", 11) == 0, "quorum-state error without a position");
        return;
    }
    sm_wbuf_t w1, w2;
    sm_wbuf_init(&w1);
    sm_wbuf_init(&w2);
    sm_quorum_state_format(&s, s.data_version, &w1);
    must(sm_quorum_state_parse((const char *)w1.mem, w1.len, "fuzz", &s2, why, sizeof why) == SM_OK,
         "formatted quorum-state does not parse");
    must(s2.data_version == s.data_version && s2.leader_id == s.leader_id &&
             s2.leader_epoch == s.leader_epoch && s2.voted_id == s.voted_id &&
             memcmp(&s2.voted_directory_id, &s.voted_directory_id, 16) == 0 &&
             s2.current_voters_count == s.current_voters_count,
         "quorum-state changed in a round trip");
    sm_quorum_state_format(&s2, s2.data_version, &w2);
    must(w1.len == w2.len && memcmp(w1.mem, w2.mem, w1.len) == 0, "quorum-state format unstable");
    sm_wbuf_free(&w1);
    sm_wbuf_free(&w2);
    sm_quorum_state_free(&s);
    sm_quorum_state_free(&s2);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    sm_arena_t a;
    sm_arena_init(&a);
    const sm_json_t *root, *root2;
    sm_json_err_t err;
    if (sm_json_parse((const char *)data, size, &a, &root, &err) == SM_OK) {
        must(root != NULL, "no root");
        sm_wbuf_t w;
        sm_wbuf_init(&w);
        write_value(&w, root);
        sm_json_err_t err2;
        must(sm_json_parse((const char *)w.mem, w.len, &a, &root2, &err2) == SM_OK,
             "canonical form does not parse");
        must(same(root, root2), "canonical form differs");
        sm_wbuf_free(&w);
    } else {
        must(err.off <= size && err.line >= 1 && err.col >= 1 && err.msg[0], "bad error report");
    }
    sm_arena_free(&a);
    check_quorum_state(data, size);
    return 0;
}
