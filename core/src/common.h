/*
 * common.h - internal building blocks shared by every mqlite module:
 * byte views, the per-handle allocator, growable buffers, error state and
 * big-endian helpers. Nothing here touches a socket, a clock or a global.
 */
#ifndef MQ_COMMON_H
#define MQ_COMMON_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "mqlite.h"

#if defined(__GNUC__)
#define MQ_HIDDEN __attribute__((visibility("hidden")))
#define MQ_PRINTF(a, b) __attribute__((format(printf, a, b)))
#define MQ_LIKELY(x) __builtin_expect(!!(x), 1)
#define MQ_UNLIKELY(x) __builtin_expect(!!(x), 0)
#else
#define MQ_HIDDEN
#define MQ_PRINTF(a, b)
#define MQ_LIKELY(x) (x)
#define MQ_UNLIKELY(x) (x)
#endif

#define MQ_ARRAY_LEN(a) (sizeof(a) / sizeof((a)[0]))

/* A borrowed byte range. Strings in packets are views: not NUL-terminated. */
typedef struct mq_view {
    const uint8_t *p;
    uint32_t len;
} mq_view;

static inline mq_view mq_view_make(const void *p, size_t len)
{
    mq_view v;
    v.p = (const uint8_t *)p;
    v.len = (uint32_t)len;
    return v;
}
static inline mq_view mq_view_cstr(const char *s)
{
    return mq_view_make(s, s ? strlen(s) : 0);
}
static inline int mq_view_eq(mq_view a, mq_view b)
{
    return a.len == b.len && (a.len == 0 || memcmp(a.p, b.p, a.len) == 0);
}

/* ---- allocator: realloc-style function + user pointer, per handle ---- */
typedef struct mq_alloc {
    mqlite_realloc_fn fn;
    void *ud;
} mq_alloc;

/* The allocator plain _new() functions use: the C library's. */
MQ_HIDDEN extern const mq_alloc mq_default_alloc;

MQ_HIDDEN void *mq_malloc(const mq_alloc *a, size_t n);
MQ_HIDDEN void *mq_calloc(const mq_alloc *a, size_t n);
MQ_HIDDEN void *mq_realloc(const mq_alloc *a, void *p, size_t n);
MQ_HIDDEN void mq_free(const mq_alloc *a, void *p);
/* Copy n bytes into a new NUL-terminated allocation. NULL on OOM. */
MQ_HIDDEN char *mq_memdup0(const mq_alloc *a, const void *p, size_t n);

/* ---- growable byte buffer ---- */
typedef struct mq_buf {
    uint8_t *p;
    size_t len;
    size_t cap;
} mq_buf;

/* Make room for `extra` more bytes. 0 or MQLITE_ERR_NOMEM; on failure the
 * buffer is unchanged. */
MQ_HIDDEN int mq_buf_reserve(mq_buf *b, const mq_alloc *a, size_t extra);
MQ_HIDDEN int mq_buf_append(mq_buf *b, const mq_alloc *a, const void *p, size_t n);
/* Drop the first n bytes (consumed input). */
MQ_HIDDEN void mq_buf_consume(mq_buf *b, size_t n);
MQ_HIDDEN void mq_buf_free(mq_buf *b, const mq_alloc *a);

/* ---- error state: a code and a message a user can act on ---- */
#define MQ_ERRMSG_MAX 256
typedef struct mq_err {
    int32_t code;
    char msg[MQ_ERRMSG_MAX];
} mq_err;

/* Set code and message together; returns code, so `return mq_err_set(...)`. */
MQ_HIDDEN int32_t mq_err_set(mq_err *e, int32_t code, const char *fmt, ...) MQ_PRINTF(3, 4);
/* Set code with mqlite_strerror(code) as the message. */
MQ_HIDDEN int32_t mq_err_code(mq_err *e, int32_t code);
MQ_HIDDEN void mq_err_clear(mq_err *e);

/* ---- big-endian integers ---- */
static inline uint16_t mq_get16(const uint8_t *p)
{
    return (uint16_t)((p[0] << 8) | p[1]);
}
static inline uint32_t mq_get32(const uint8_t *p)
{
    return ((uint32_t)p[0] << 24) | ((uint32_t)p[1] << 16) | ((uint32_t)p[2] << 8) | p[3];
}
static inline uint8_t *mq_put16(uint8_t *p, uint16_t v)
{
    p[0] = (uint8_t)(v >> 8);
    p[1] = (uint8_t)v;
    return p + 2;
}
static inline uint8_t *mq_put32(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)(v >> 24);
    p[1] = (uint8_t)(v >> 16);
    p[2] = (uint8_t)(v >> 8);
    p[3] = (uint8_t)v;
    return p + 4;
}

/* Variable Byte Integer (MQTT 5.0 1.5.5 / 3.1.1 2.2.3 remaining length). */
#define MQ_VBI_MAX 268435455u
static inline size_t mq_vbi_size(uint32_t v)
{
    return v < 128u ? 1 : v < 16384u ? 2 : v < 2097152u ? 3 : 4;
}
static inline uint8_t *mq_put_vbi(uint8_t *p, uint32_t v)
{
    do {
        uint8_t b = (uint8_t)(v & 0x7f);
        v >>= 7;
        if (v)
            b |= 0x80;
        *p++ = b;
    } while (v);
    return p;
}
/* Decode a VBI from p[0..avail). Returns bytes used (1..4), 0 when more input
 * is needed, or a negative MQLITE_ERR_* (too long / not minimal). */
MQ_HIDDEN int mq_get_vbi(const uint8_t *p, size_t avail, uint32_t *out);

#endif
