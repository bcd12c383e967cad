/*
 * common.c - error names, aborting allocators, assertion failure and clocks.
 * May run on any thread.
 */
#define _GNU_SOURCE
#include "sm_common.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

const char *sm_err_str(sm_err_t err)
{
    switch (err) {
    case SM_OK: return "ok";
    case SM_ERR_NOMEM: return "out of memory";
    case SM_ERR_IO: return "I/O error";
    case SM_ERR_NOSPC: return "no space left on device";
    case SM_ERR_CORRUPT: return "corrupt data";
    case SM_ERR_PARSE: return "malformed input";
    case SM_ERR_INVALID: return "invalid value";
    case SM_ERR_NOT_FOUND: return "not found";
    case SM_ERR_EXISTS: return "already exists";
    case SM_ERR_TOO_LARGE: return "too large";
    case SM_ERR_RANGE: return "out of range";
    case SM_ERR_UNSUPPORTED: return "unsupported";
    case SM_ERR_AGAIN: return "try again";
    case SM_ERR_CLOSED: return "closed";
    }
    return "unknown error";
}

static __attribute__((noreturn)) void oom(size_t n)
{
    fprintf(stderr, "samsa: fatal: out of memory allocating %zu bytes\n", n);
    abort();
}

void *sm_xmalloc(size_t n)
{
    void *p = malloc(n ? n : 1);
    if (!p)
        oom(n);
    return p;
}

void *sm_xcalloc(size_t n, size_t size)
{
    void *p = calloc(n ? n : 1, size ? size : 1);
    if (!p)
        oom(n * size);
    return p;
}

void *sm_xrealloc(void *p, size_t n)
{
    void *q = realloc(p, n ? n : 1);
    if (!q)
        oom(n);
    return q;
}

char *sm_xstrdup(const char *s)
{
    return sm_xstrndup(s, strlen(s));
}

char *sm_xstrndup(const char *s, size_t n)
{
    char *p = sm_xmalloc(n + 1);
    memcpy(p, s, n);
    p[n] = '\0';
    return p;
}

char *sm_xasprintf(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    char *out = NULL;
    int n = vasprintf(&out, fmt, ap);
    va_end(ap);
    if (n < 0)
        oom(0);
    return out;
}

int sm_edit_distance(const char *a, const char *b, int limit)
{
    size_t la = strlen(a), lb = strlen(b);
    if (la > 127 || lb > 127)
        return limit + 1;
    if ((la > lb ? la - lb : lb - la) > (size_t)limit)
        return limit + 1;
    int prev[128], cur[128];
    for (size_t j = 0; j <= lb; j++)
        prev[j] = (int)j;
    for (size_t i = 1; i <= la; i++) {
        cur[0] = (int)i;
        int best = cur[0];
        for (size_t j = 1; j <= lb; j++) {
            int sub = prev[j - 1] + (a[i - 1] != b[j - 1]);
            int del = prev[j] + 1, ins = cur[j - 1] + 1;
            cur[j] = SM_MIN(sub, SM_MIN(del, ins));
            best = SM_MIN(best, cur[j]);
        }
        if (best > limit)
            return limit + 1;
        memcpy(prev, cur, sizeof(int) * (lb + 1));
    }
    return prev[lb];
}

void sm_assert_fail(const char *expr, const char *file, int line)
{
    fprintf(stderr, "samsa: assertion failed: %s at %s:%d\n", expr, file, line);
    abort();
}

static int64_t ts_ns(clockid_t c)
{
    struct timespec ts;
    clock_gettime(c, &ts);
    return (int64_t)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

int64_t sm_now_mono_ms(void) { return ts_ns(CLOCK_MONOTONIC) / 1000000; }
int64_t sm_now_mono_us(void) { return ts_ns(CLOCK_MONOTONIC) / 1000; }
int64_t sm_now_wall_ms(void) { return ts_ns(CLOCK_REALTIME) / 1000000; }
