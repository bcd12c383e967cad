/*
 * smt_int.h - what smt.c (chain, records, predicates) and smt_xf.c (the transforms)
 * share. Not for use outside those two files.
 */
#ifndef SM_CN_SMT_INT_H
#define SM_CN_SMT_INT_H

#include "smt.h"

#include <regex.h>

typedef struct smt smt_t;

/* A list config value split on commas, blanks trimmed, empty items dropped. */
typedef struct strlist {
    char **v;
    size_t n;
} strlist_t;

/* One configured transform. cfg holds its own keys with "transforms.<alias>." removed. */
struct smt {
    const struct smt_kind *kind;
    char cls[160];   /* the full class name, e.g. org.apache.kafka.connect.transforms.Cast$Value */
    char prefix[300]; /* "transforms.<alias>." for error messages */
    bool is_key;     /* the $Key variant */
    int pred;        /* index of its predicate, -1: none */
    bool negate;
    json_t *cfg;
    /* parsed parameters; which are used depends on the kind */
    strlist_t l1, l2;
    const char *s1, *s2, *s3, *s4;
    bool b1, b2, b3, b4, b5;
    int i1;
    json_t *map; /* e.g. renames old -> new, cast spec field -> type */
    regex_t re;
    bool re_ok;
};

/* "1 keep, 0 drop, -1 error (err filled)". */
typedef int (*smt_apply_fn)(smt_t *t, cn_record_t *r, char *err, size_t err_len);
/* Parse t->cfg; false with the full key name in key and Kafka's message in err. */
typedef bool (*smt_init_fn)(smt_t *t, char *key, size_t key_len, char *err, size_t err_len);

typedef struct smt_kind {
    const char *name;  /* simple name, e.g. "InsertField" */
    bool variants;     /* has $Key and $Value */
    smt_init_fn init;  /* may be NULL */
    smt_apply_fn apply;
} smt_kind_t;

extern const smt_kind_t cn_smt_kinds[];
extern const size_t cn_smt_kind_count;

void cn_strlist_parse(strlist_t *l, const char *s);
void cn_strlist_free(strlist_t *l);
bool cn_strlist_has(const strlist_t *l, const char *s);
/* Compile a POSIX extended regex; false with err. */
bool cn_regex_compile(regex_t *re, const char *pattern, char *err, size_t err_len);
/* Whether re matches the whole of s (Java's Matcher.matches()). */
bool cn_regex_full_match(const regex_t *re, const char *s, regmatch_t *m, size_t nm);

#endif
