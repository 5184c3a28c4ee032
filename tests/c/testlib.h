/*
 * testlib.h - the tiny test harness of mqlite's C tests.
 *
 * A test file defines `static void test_xxx(void)` functions and lists them
 * in main() with RUN(test_xxx). CHECK* record a failure and continue; the
 * process exits non-zero if any check failed or if no test ran. Run one test
 * by name: ./test_codec test_publish_qos3_is_malformed
 */
#ifndef MQ_TESTLIB_H
#define MQ_TESTLIB_H

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int tl_failures;
static int tl_checks;
static int tl_ran;
static const char *tl_current;
static const char *tl_only;

#define CHECK(cond)                                                                        \
    do {                                                                                   \
        tl_checks++;                                                                       \
        if (!(cond)) {                                                                     \
            tl_failures++;                                                                 \
            fprintf(stderr, "%s:%d: %s: CHECK(%s) failed\n", __FILE__, __LINE__, tl_current, \
                    #cond);                                                                \
        }                                                                                  \
    } while (0)

#define CHECK_EQ(a, b)                                                                     \
    do {                                                                                   \
        long long tl_a = (long long)(a), tl_b = (long long)(b);                            \
        tl_checks++;                                                                       \
        if (tl_a != tl_b) {                                                                \
            tl_failures++;                                                                 \
            fprintf(stderr, "%s:%d: %s: %s == %s failed: %lld != %lld\n", __FILE__,        \
                    __LINE__, tl_current, #a, #b, tl_a, tl_b);                             \
        }                                                                                  \
    } while (0)

#define CHECK_STR(a, b)                                                                    \
    do {                                                                                   \
        const char *tl_a = (a), *tl_b = (b);                                               \
        tl_checks++;                                                                       \
        if (!tl_a || !tl_b || strcmp(tl_a, tl_b) != 0) {                                   \
            tl_failures++;                                                                 \
            fprintf(stderr, "%s:%d: %s: %s == %s failed: \"%s\" != \"%s\"\n", __FILE__,    \
                    __LINE__, tl_current, #a, #b, tl_a ? tl_a : "(null)",                  \
                    tl_b ? tl_b : "(null)");                                               \
        }                                                                                  \
    } while (0)

/* Compare n bytes, printing both in hex on mismatch. */
#define CHECK_MEM(a, alen, b, blen)                                                        \
    do {                                                                                   \
        const unsigned char *tl_a = (const unsigned char *)(a);                            \
        const unsigned char *tl_b = (const unsigned char *)(b);                            \
        size_t tl_al = (size_t)(alen), tl_bl = (size_t)(blen);                             \
        tl_checks++;                                                                       \
        if (tl_al != tl_bl || (tl_al && memcmp(tl_a, tl_b, tl_al) != 0)) {                 \
            tl_failures++;                                                                 \
            fprintf(stderr, "%s:%d: %s: bytes differ (%zu vs %zu)\n  got: ", __FILE__,     \
                    __LINE__, tl_current, tl_al, tl_bl);                                   \
            for (size_t tl_i = 0; tl_i < tl_al; tl_i++)                                    \
                fprintf(stderr, "%02x", tl_a[tl_i]);                                       \
            fprintf(stderr, "\n  exp: ");                                                  \
            for (size_t tl_i = 0; tl_i < tl_bl; tl_i++)                                    \
                fprintf(stderr, "%02x", tl_b[tl_i]);                                       \
            fprintf(stderr, "\n");                                                         \
        }                                                                                  \
    } while (0)

#define RUN(fn)                                                                            \
    do {                                                                                   \
        if (!tl_only || strcmp(tl_only, #fn) == 0) {                                       \
            tl_current = #fn;                                                              \
            int tl_before = tl_failures;                                                   \
            fn();                                                                          \
            tl_ran++;                                                                      \
            if (getenv("MQ_TEST_VERBOSE"))                                                 \
                fprintf(stderr, "%s %s\n", tl_failures == tl_before ? "ok  " : "FAIL", #fn); \
        }                                                                                  \
    } while (0)

#define TEST_MAIN_BEGIN(argc, argv)                                                        \
    tl_only = (argc) > 1 ? (argv)[1] : NULL;

#define TEST_MAIN_END()                                                                    \
    do {                                                                                   \
        if (tl_ran == 0) {                                                                 \
            fprintf(stderr, "no test ran%s%s\n", tl_only ? " matching " : "",              \
                    tl_only ? tl_only : "");                                               \
            return 2;                                                                      \
        }                                                                                  \
        printf("%d tests, %d checks, %d failures\n", tl_ran, tl_checks, tl_failures);      \
        return tl_failures ? 1 : 0;                                                        \
    } while (0)

/* Parse a hex string ("10 0c 00 04 ...", spaces ignored) into buf; returns
 * the byte count. Aborts on bad input: a broken vector is a broken test. */
static inline size_t tl_hex(const char *hex, unsigned char *buf, size_t cap)
{
    size_t n = 0;
    int hi = -1;
    for (const char *s = hex; *s; s++) {
        int v;
        if (*s >= '0' && *s <= '9')
            v = *s - '0';
        else if (*s >= 'a' && *s <= 'f')
            v = *s - 'a' + 10;
        else if (*s >= 'A' && *s <= 'F')
            v = *s - 'A' + 10;
        else if (*s == ' ' || *s == '\n' || *s == '_')
            continue;
        else {
            fprintf(stderr, "bad hex vector: %s\n", hex);
            abort();
        }
        if (hi < 0)
            hi = v;
        else {
            if (n >= cap)
                abort();
            buf[n++] = (unsigned char)(hi << 4 | v);
            hi = -1;
        }
    }
    if (hi >= 0)
        abort();
    return n;
}

#endif
