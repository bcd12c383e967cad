/*
 * sm_common.h - error codes, allocation and assertion helpers shared by every
 * Samsa module.
 *
 * Conventions (see docs/ARCHITECTURE.md):
 *  - fallible functions return an sm_err_t (0 = SM_OK) and are marked
 *    SM_MUST_CHECK; results go through out-parameters;
 *  - Kafka wire error codes are mapped only at the API edge (src/broker);
 *  - allocation failure aborts with a message (memory is governed by limits,
 *    not by recovering from malloc failure);
 *  - SM_ASSERT states programmer invariants and stays on in release builds.
 */
#ifndef SM_COMMON_H
#define SM_COMMON_H

#include <stddef.h>
#include <stdint.h>
#include <stdbool.h>

/* The release this tree builds: printed by `samsa-broker --version`, `samsa
 * version` and the broker's start-up banner. */
#define SM_VERSION "0.2.0-dev"

#define SM_MUST_CHECK __attribute__((warn_unused_result))
#define SM_UNUSED(x) ((void)(x))
#define SM_ARRAY_LEN(a) (sizeof(a) / sizeof((a)[0]))
#define SM_MIN(a, b) ((a) < (b) ? (a) : (b))
#define SM_MAX(a, b) ((a) > (b) ? (a) : (b))
#define SM_LIKELY(x) __builtin_expect(!!(x), 1)
#define SM_UNLIKELY(x) __builtin_expect(!!(x), 0)

typedef enum sm_err {
    SM_OK = 0,
    SM_ERR_NOMEM,     /* allocation refused by a configured limit */
    SM_ERR_IO,        /* an I/O system call failed (errno logged) */
    SM_ERR_NOSPC,     /* disk full */
    SM_ERR_CORRUPT,   /* bad bytes on disk or on the wire (CRC, framing) */
    SM_ERR_PARSE,     /* malformed input: truncated, bad length, bad varint */
    SM_ERR_INVALID,   /* a valid encoding with an unacceptable value */
    SM_ERR_NOT_FOUND, /* no such topic, partition, offset, file... */
    SM_ERR_EXISTS,    /* already exists */
    SM_ERR_TOO_LARGE, /* over a configured size limit */
    SM_ERR_RANGE,     /* offset or index out of range */
    SM_ERR_UNSUPPORTED,
    SM_ERR_AGAIN,     /* try again later (would block, not ready) */
    SM_ERR_CLOSED,    /* object is shutting down */
} sm_err_t;

/* Human-readable name of an error code; never NULL. */
const char *sm_err_str(sm_err_t err);

/* Allocation that aborts with a message on failure. */
void *sm_xmalloc(size_t n);
void *sm_xcalloc(size_t n, size_t size);
void *sm_xrealloc(void *p, size_t n);
char *sm_xstrdup(const char *s);
char *sm_xstrndup(const char *s, size_t n);
/* printf into a freshly allocated string. */
char *sm_xasprintf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* Levenshtein distance between a and b, giving up (returning limit + 1) once
 * it must exceed limit; for "did you mean" suggestions. Strings longer than
 * 127 bytes count as too far. */
int sm_edit_distance(const char *a, const char *b, int limit);

/* Invariant check that stays on in release builds. */
#define SM_ASSERT(cond)                                                        \
    do {                                                                       \
        if (SM_UNLIKELY(!(cond)))                                              \
            sm_assert_fail(#cond, __FILE__, __LINE__);                         \
    } while (0)
__attribute__((noreturn)) void sm_assert_fail(const char *expr, const char *file, int line);

/* Monotonic clock in ms / us / ns, and wall clock in ms since the epoch. */
int64_t sm_now_mono_ms(void);
int64_t sm_now_mono_us(void);
int64_t sm_now_wall_ms(void);

#endif
