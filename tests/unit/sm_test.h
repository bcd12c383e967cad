/*
 * sm_test.h - minimal unit-test macros. Each test file is one executable
 * (one ctest entry); CHECK failures are counted and printed, and main
 * returns non-zero if any failed. Prints "N passed, N failed" at the end.
 */
#ifndef SM_TEST_H
#define SM_TEST_H

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int sm_test_passed, sm_test_failed;

#define CHECK(cond)                                                            \
    do {                                                                       \
        if (cond) {                                                            \
            sm_test_passed++;                                                  \
        } else {                                                               \
            sm_test_failed++;                                                  \
            fprintf(stderr, "FAIL %s:%d: %s\n", __FILE__, __LINE__, #cond);    \
        }                                                                      \
    } while (0)

#define CHECK_EQ(a, b)                                                         \
    do {                                                                       \
        long long _a = (long long)(a), _b = (long long)(b);                    \
        if (_a == _b) {                                                        \
            sm_test_passed++;                                                  \
        } else {                                                               \
            sm_test_failed++;                                                  \
            fprintf(stderr, "FAIL %s:%d: %s == %s (%lld != %lld)\n", __FILE__, \
                    __LINE__, #a, #b, _a, _b);                                 \
        }                                                                      \
    } while (0)

#define RUN(fn)                                                                \
    do {                                                                       \
        fprintf(stderr, "-- %s\n", #fn);                                       \
        fn();                                                                  \
    } while (0)

#define TEST_MAIN_END()                                                        \
    do {                                                                       \
        printf("%d passed, %d failed\n", sm_test_passed, sm_test_failed);      \
        return sm_test_failed ? 1 : 0;                                         \
    } while (0)

#endif
