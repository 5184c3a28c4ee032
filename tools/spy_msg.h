/*
 * spy_msg.h - a received application message as `mqlite spy` keeps it
 * (a copy that outlives the client's event), and its renderings: the
 * --plain line, the --json object, and the properties as text.
 */
#ifndef MQLITE_SPY_MSG_H
#define MQLITE_SPY_MSG_H

#include <stddef.h>
#include <stdint.h>

#include "mqlite.h"
#include "spy_fmt.h"

/* One MQTT 5.0 property, copied. */
typedef struct spy_prop {
    int32_t id;
    int64_t num; /* integer properties */
    char *key;   /* user property key, else NULL */
    size_t key_len;
    unsigned char *val; /* string / binary value (user property: its value), else NULL */
    size_t val_len;
} spy_prop;

typedef struct spy_msg {
    unsigned char *payload; /* the first `len` bytes (the rest was not kept) */
    size_t len, full_len;
    int qos, retain, dup;
    int64_t wall_ms; /* when it arrived (wall clock) */
    spy_prop *props;
    int nprops;
    uint64_t seq; /* the TUI's running number (caches key on it) */
} spy_msg;

/* Copy a MQLITE_EVENT_MESSAGE, keeping at most `max_payload` payload bytes.
 * The caller frees it with spy_msg_free(). */
spy_msg *spy_msg_from_event(const mqlite_event *ev, size_t max_payload, int64_t wall_ms);
void spy_msg_free(spy_msg *m);

/* "Name: value" lines, one per property (nothing when there are none). */
void spy_msg_props_text(sbuf *b, const spy_msg *m);
/* The --plain line, without newline:
 *   TIME TOPIC qos=Q retain=R PAYLOAD
 * TOPIC is C-escaped when it holds spaces, quotes, backslashes or control
 * characters; PAYLOAD is "escaped text" or 0x<hex> (binary). */
void spy_msg_plain(sbuf *b, const char *topic, size_t tlen, const spy_msg *m);
/* The --json object, without newline: time, topic, qos, retain, dup,
 * payload_bytes, then "payload" (UTF-8 text) or "payload_base64" (any other
 * bytes), then "properties" when there are any. */
void spy_msg_json(sbuf *b, const char *topic, size_t tlen, const spy_msg *m);

#endif
