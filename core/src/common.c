/*
 * common.c - allocator wrappers, growable buffers, error state, VBI decode.
 */
#include "common.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>

static void *libc_realloc(void *ud, void *p, size_t n)
{
    (void)ud;
    if (n == 0) {
        free(p);
        return NULL;
    }
    return realloc(p, n);
}

const mq_alloc mq_default_alloc = {libc_realloc, NULL};

void *mq_malloc(const mq_alloc *a, size_t n)
{
    return n ? a->fn(a->ud, NULL, n) : NULL;
}

void *mq_calloc(const mq_alloc *a, size_t n)
{
    void *p = mq_malloc(a, n);
    if (p)
        memset(p, 0, n);
    return p;
}

void *mq_realloc(const mq_alloc *a, void *p, size_t n)
{
    if (n == 0) {
        mq_free(a, p);
        return NULL;
    }
    return a->fn(a->ud, p, n);
}

void mq_free(const mq_alloc *a, void *p)
{
    if (p)
        a->fn(a->ud, p, 0);
}

char *mq_memdup0(const mq_alloc *a, const void *p, size_t n)
{
    char *s = mq_malloc(a, n + 1);
    if (!s)
        return NULL;
    if (n)
        memcpy(s, p, n);
    s[n] = '\0';
    return s;
}

int mq_buf_reserve(mq_buf *b, const mq_alloc *a, size_t extra)
{
    if (b->cap - b->len >= extra)
        return 0;
    if (extra > SIZE_MAX / 2 - b->len)
        return MQLITE_ERR_NOMEM;
    size_t want = b->len + extra;
    size_t cap = b->cap ? b->cap : 64;
    while (cap < want)
        cap *= 2;
    uint8_t *p = mq_realloc(a, b->p, cap);
    if (!p)
        return MQLITE_ERR_NOMEM;
    b->p = p;
    b->cap = cap;
    return 0;
}

int mq_buf_append(mq_buf *b, const mq_alloc *a, const void *p, size_t n)
{
    if (n == 0)
        return 0;
    int rc = mq_buf_reserve(b, a, n);
    if (rc)
        return rc;
    memcpy(b->p + b->len, p, n);
    b->len += n;
    return 0;
}

void mq_buf_consume(mq_buf *b, size_t n)
{
    if (n >= b->len) {
        b->len = 0;
        return;
    }
    memmove(b->p, b->p + n, b->len - n);
    b->len -= n;
}

void mq_buf_free(mq_buf *b, const mq_alloc *a)
{
    mq_free(a, b->p);
    b->p = NULL;
    b->len = b->cap = 0;
}

int32_t mq_err_set(mq_err *e, int32_t code, const char *fmt, ...)
{
    if (!e)
        return code;
    e->code = code;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(e->msg, sizeof e->msg, fmt, ap);
    va_end(ap);
    return code;
}

int32_t mq_err_code(mq_err *e, int32_t code)
{
    return mq_err_set(e, code, "%s", mqlite_strerror(code));
}

void mq_err_clear(mq_err *e)
{
    e->code = 0;
    e->msg[0] = '\0';
}

int mq_get_vbi(const uint8_t *p, size_t avail, uint32_t *out)
{
    uint32_t v = 0;
    for (size_t i = 0; i < 4; i++) {
        if (i >= avail)
            return 0;
        v |= (uint32_t)(p[i] & 0x7f) << (7 * i);
        if (!(p[i] & 0x80)) {
            /* MQTT 5.0 [MQTT-1.5.5-1]: minimal encoding; a last byte of 0
             * after the first one means a shorter form existed. */
            if (i > 0 && p[i] == 0)
                return MQLITE_ERR_REMLEN_NOT_MINIMAL;
            *out = v;
            return (int)i + 1;
        }
    }
    return MQLITE_ERR_REMLEN_TOO_LONG;
}
