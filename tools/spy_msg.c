/*
 * spy_msg.c - messages as `mqlite spy` keeps and prints them (see spy_msg.h).
 */
#define _POSIX_C_SOURCE 200809L
#include "spy_msg.h"

#include <stdlib.h>
#include <string.h>

static void *dup_bytes(const void *p, size_t n)
{
    unsigned char *d = spy_xrealloc(NULL, n + 1);
    if (n)
        memcpy(d, p, n);
    d[n] = 0;
    return d;
}

static void copy_props(spy_msg *m, const mqlite_props *pr)
{
    int32_t n = mqlite_props_count(pr);
    if (n <= 0)
        return;
    m->props = spy_xrealloc(NULL, (size_t)n * sizeof *m->props);
    for (int32_t i = 0; i < n; i++) {
        spy_prop *p = &m->props[i];
        memset(p, 0, sizeof *p);
        p->id = mqlite_props_id(pr, i);
        size_t len = 0;
        const char *key = mqlite_props_key(pr, i, &len);
        if (key) {
            p->key = dup_bytes(key, len);
            p->key_len = len;
        }
        const void *v = mqlite_props_value(pr, i, &len);
        if (v) {
            p->val = dup_bytes(v, len);
            p->val_len = len;
        } else {
            p->num = mqlite_props_int(pr, i);
        }
    }
    m->nprops = n;
}

spy_msg *spy_msg_from_event(const mqlite_event *ev, size_t max_payload, int64_t wall_ms)
{
    spy_msg *m = spy_xrealloc(NULL, sizeof *m);
    memset(m, 0, sizeof *m);
    size_t len = 0;
    const void *payload = mqlite_event_payload(ev, &len);
    m->full_len = len;
    m->len = len < max_payload ? len : max_payload;
    m->payload = dup_bytes(payload, m->len);
    m->qos = mqlite_event_qos(ev);
    m->retain = mqlite_event_retain(ev);
    m->dup = mqlite_event_dup(ev);
    m->wall_ms = wall_ms;
    copy_props(m, mqlite_event_props(ev));
    return m;
}

void spy_msg_free(spy_msg *m)
{
    if (!m)
        return;
    for (int i = 0; i < m->nprops; i++) {
        free(m->props[i].key);
        free(m->props[i].val);
    }
    free(m->props);
    free(m->payload);
    free(m);
}

/* ------------------------------------------------------------------ text */

static void bytes_text(sbuf *b, const unsigned char *v, size_t n)
{
    if (spy_is_text(v, n)) {
        sb_put(b, v, n);
    } else {
        sb_puts(b, "0x");
        spy_hex(b, v, n);
    }
}

void spy_msg_props_text(sbuf *b, const spy_msg *m)
{
    for (int i = 0; i < m->nprops; i++) {
        const spy_prop *p = &m->props[i];
        const char *name = mqlite_property_name(p->id);
        sb_printf(b, "%s: ", name ? name : "Property");
        if (p->key) {
            bytes_text(b, (const unsigned char *)p->key, p->key_len);
            sb_puts(b, " = ");
        }
        if (p->val)
            bytes_text(b, p->val, p->val_len);
        else
            sb_printf(b, "%lld", (long long)p->num);
        if (p->id == MQLITE_PROP_MESSAGE_EXPIRY)
            sb_puts(b, " s");
        else if (p->id == MQLITE_PROP_PAYLOAD_FORMAT)
            sb_puts(b, p->num ? " (UTF-8)" : " (bytes)");
        sb_putc(b, '\n');
    }
}

/* A topic as one field of a space-separated line. */
static void plain_topic(sbuf *b, const char *t, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)t[i];
        if (c <= ' ' || c == '"' || c == '\\' || c == 0x7f) {
            spy_escape_c(b, t, n);
            return;
        }
    }
    sb_put(b, t, n);
}

void spy_msg_plain(sbuf *b, const char *topic, size_t tlen, const spy_msg *m)
{
    char ts[32];
    spy_iso8601(m->wall_ms, ts);
    sb_printf(b, "%s ", ts);
    plain_topic(b, topic, tlen);
    sb_printf(b, " qos=%d retain=%d ", m->qos, m->retain);
    if (spy_utf8_valid(m->payload, m->len)) {
        spy_escape_c(b, m->payload, m->len);
    } else {
        sb_puts(b, "0x");
        spy_hex(b, m->payload, m->len);
    }
}

/* ------------------------------------------------------------------ JSON */

/* "Content Type" -> "content_type" */
static void json_key(sbuf *b, const char *name)
{
    sb_putc(b, '"');
    for (const char *s = name; *s; s++)
        sb_putc(b, *s == ' ' ? '_' : (*s >= 'A' && *s <= 'Z') ? (char)(*s - 'A' + 'a') : *s);
    sb_putc(b, '"');
}

/* "key":"text" when the bytes are UTF-8, else "key_base64":"..." */
static void json_bytes_field(sbuf *b, const char *name, const unsigned char *v, size_t n)
{
    int text = spy_utf8_valid(v, n);
    sbuf key = {0};
    sb_puts(&key, name);
    if (!text)
        sb_puts(&key, " base64");
    json_key(b, sb_str(&key));
    sb_free(&key);
    sb_putc(b, ':');
    if (text) {
        spy_escape_json(b, v, n);
    } else {
        sb_putc(b, '"');
        spy_base64(b, v, n);
        sb_putc(b, '"');
    }
}

static void json_string_pair(sbuf *b, const spy_prop *p)
{
    sb_putc(b, '[');
    spy_escape_json(b, p->key, spy_utf8_valid(p->key, p->key_len) ? p->key_len : 0);
    sb_putc(b, ',');
    spy_escape_json(b, p->val, spy_utf8_valid(p->val, p->val_len) ? p->val_len : 0);
    sb_putc(b, ']');
}

/* User properties and subscription identifiers may repeat: each becomes
 * one array, written where the first of its kind appears. */
static void json_prop_list(sbuf *b, const spy_msg *m, int32_t id)
{
    json_key(b, id == MQLITE_PROP_USER ? "user properties" : "subscription identifiers");
    sb_puts(b, ":[");
    int first = 1;
    for (int i = 0; i < m->nprops; i++) {
        if (m->props[i].id != id)
            continue;
        if (!first)
            sb_putc(b, ',');
        first = 0;
        if (id == MQLITE_PROP_USER)
            json_string_pair(b, &m->props[i]);
        else
            sb_printf(b, "%lld", (long long)m->props[i].num);
    }
    sb_putc(b, ']');
}

static int seen_before(const spy_msg *m, int i)
{
    for (int k = 0; k < i; k++)
        if (m->props[k].id == m->props[i].id)
            return 1;
    return 0;
}

static void json_props(sbuf *b, const spy_msg *m)
{
    sb_puts(b, ",\"properties\":{");
    int first = 1;
    for (int i = 0; i < m->nprops; i++) {
        const spy_prop *p = &m->props[i];
        if (seen_before(m, i))
            continue;
        if (!first)
            sb_putc(b, ',');
        first = 0;
        const char *name = mqlite_property_name(p->id);
        if (p->id == MQLITE_PROP_USER || p->id == MQLITE_PROP_SUBSCRIPTION_ID) {
            json_prop_list(b, m, p->id);
        } else if (p->val) {
            json_bytes_field(b, name ? name : "property", p->val, p->val_len);
        } else {
            json_key(b, name ? name : "property");
            sb_printf(b, ":%lld", (long long)p->num);
        }
    }
    sb_putc(b, '}');
}

void spy_msg_json(sbuf *b, const char *topic, size_t tlen, const spy_msg *m)
{
    char ts[32];
    spy_iso8601(m->wall_ms, ts);
    sb_printf(b, "{\"time\":\"%s\",\"topic\":", ts);
    spy_escape_json(b, topic, spy_utf8_valid(topic, tlen) ? tlen : 0);
    sb_printf(b, ",\"qos\":%d,\"retain\":%s,\"dup\":%s,\"payload_bytes\":%zu,", m->qos,
              m->retain ? "true" : "false", m->dup ? "true" : "false", m->full_len);
    json_bytes_field(b, "payload", m->payload, m->len);
    if (m->nprops > 0)
        json_props(b, m);
    sb_putc(b, '}');
}
