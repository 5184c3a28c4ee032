/*
 * sys.c - $SYS/broker/... topics (see sys.h).
 */
#include "sys.h"

#include <inttypes.h>
#include <stdio.h>

#include "log.h"

enum {
    T_VERSION,
    T_UPTIME,
    T_CONNECTED,
    T_TOTAL,
    T_DISCONNECTED,
    T_MSG_RECEIVED,
    T_MSG_SENT,
    T_DROPPED,
    T_BYTES_RECEIVED,
    T_BYTES_SENT,
    T_RETAINED,
    T_SUBSCRIPTIONS,
    T_REFUSED,
    T_RATE_LIMITED,
    T_AUTH_FAILED,
    T_ACL_DENIED,
    T_TLS_FAILED,
    T_SLOW_DISCONNECTED,
    T_SLOW_DROPPED,
    T_TOO_LARGE,
    T_COUNT
};

static const char *const topics[T_COUNT] = {
    "$SYS/broker/version",
    "$SYS/broker/uptime",
    "$SYS/broker/clients/connected",
    "$SYS/broker/clients/total",
    "$SYS/broker/clients/disconnected",
    "$SYS/broker/messages/received",
    "$SYS/broker/messages/sent",
    "$SYS/broker/publish/messages/dropped",
    "$SYS/broker/bytes/received",
    "$SYS/broker/bytes/sent",
    "$SYS/broker/retained messages/count",
    "$SYS/broker/subscriptions/count",
    /* mqlite's: what the limits and the security checks refused. */
    "$SYS/broker/connections/refused",
    "$SYS/broker/connections/rate_limited",
    "$SYS/broker/auth/failed",
    "$SYS/broker/acl/denied",
    "$SYS/broker/tls/handshakes_failed",
    "$SYS/broker/clients/slow_disconnected",
    "$SYS/broker/publish/messages/slow_dropped",
    "$SYS/broker/packets/too_large",
};

static uint64_t value_of(const mqlite_broker *b, int t)
{
    switch (t) {
    case T_UPTIME:
        return (b->now_ms - b->started_ms) / 1000u;
    case T_CONNECTED:
        return b->st.connected;
    case T_TOTAL:
        return b->nsess;
    case T_DISCONNECTED:
        return b->nsess > b->st.connected ? b->nsess - b->st.connected : 0;
    case T_MSG_RECEIVED:
        return b->st.msgs_received;
    case T_MSG_SENT:
        return b->st.msgs_sent;
    case T_DROPPED:
        return b->st.dropped;
    case T_BYTES_RECEIVED:
        return b->st.bytes_received;
    case T_BYTES_SENT:
        return b->st.bytes_sent;
    case T_RETAINED:
        return b->nretained;
    case T_SUBSCRIPTIONS:
        return b->st.subscriptions;
    case T_REFUSED:
        return b->st.refused_max;
    case T_RATE_LIMITED:
        return b->st.refused_rate;
    case T_AUTH_FAILED:
        return b->st.auth_failed;
    case T_ACL_DENIED:
        return b->st.acl_denied;
    case T_TLS_FAILED:
        return b->st.tls_failed;
    case T_SLOW_DISCONNECTED:
        return b->st.slow_disconnected;
    case T_SLOW_DROPPED:
        return b->st.slow_dropped;
    case T_TOO_LARGE:
        return b->st.too_large;
    default:
        return 0;
    }
}

static void publish(mqlite_broker *b, int t, const char *text)
{
    mq_msg *m = mq_msg_new(&b->a, mq_view_cstr(topics[t]), mq_view_make(NULL, 0),
                           mq_view_cstr(text), 0, 1);
    if (!m)
        return;
    mq_broker_publish(b, m, NULL);
    mq_msg_unref(&b->a, m);
}

void mq_bsys_tick(mqlite_broker *b)
{
    if (!b->o.sys_interval_s)
        return;
    if (b->now_ms < b->sys.next_ms) {
        mq_broker_wake_at(b, b->sys.next_ms);
        return;
    }
    char text[64];
    for (int t = 0; t < T_COUNT; t++) {
        uint64_t v = value_of(b, t);
        if (b->sys.sent[t] && b->sys.last[t] == v)
            continue;
        if (t == T_VERSION)
            snprintf(text, sizeof text, "mqlite version %s", MQLITE_VERSION_STRING);
        else if (t == T_UPTIME)
            snprintf(text, sizeof text, "%" PRIu64 " seconds", v);
        else
            snprintf(text, sizeof text, "%" PRIu64, v);
        publish(b, t, text);
        b->sys.sent[t] = 1;
        b->sys.last[t] = v;
    }
    b->sys.next_ms = b->now_ms + (uint64_t)b->o.sys_interval_s * 1000u;
    mq_broker_wake_at(b, b->sys.next_ms);
}
