/*
 * session.h - the client session engine, sans-I/O.
 *
 * Input: bytes from the server (mq_session_feed), the current time in
 * milliseconds (passed to every call), and the application's requests
 * (publish, subscribe, disconnect). Output: bytes to send (s->outbuf),
 * events (mq_session_pop_event) and the next deadline
 * (mq_session_deadline). No sockets, no clock reads, no threads: the client
 * handle (client.c) or a test drives it.
 *
 * Lifecycle of one transport connection:
 *   mq_session_begin()           CONNECT is queued in outbuf
 *   mq_session_feed()/_tick()    ... CONNACK, traffic, keep-alive ...
 *   mq_session_closed()          the transport is gone (any reason)
 * A negative return from feed/tick means "close the transport now, after
 * sending what is in outbuf" (it may hold a 5.0 DISCONNECT with the reason).
 * What outlives a connection: the outgoing queue and in-flight flows, the
 * incoming QoS 2 set, pending SUBSCRIBE/UNSUBSCRIBE and the subscription
 * list; the CONNACK decides what of it the new connection resumes.
 */
#ifndef MQ_SESSION_H
#define MQ_SESSION_H

#include "codec.h"
#include "common.h"
#include "inflight.h"
#include "props.h"

/* ---- events ---- */

typedef struct mq_event {
    struct mq_event *next;
    const mq_alloc *a;      /* the owner's allocator (for lazy props) */
    int32_t type;           /* MQLITE_EVENT_* */
    int32_t error;          /* MQLITE_ERR_* or 0 */
    uint16_t pid;
    uint8_t reason;
    uint8_t qos, retain, dup;
    uint8_t session_present;
    uint8_t props_built;    /* props indexed from props_wire on first use */
    uint8_t reserve;        /* the session's out-of-memory event: never freed
                               by mq_event_free, reused */
    uint32_t count;         /* SUBACK / UNSUBACK codes */
    const uint8_t *codes;
    const char *topic;      /* NUL-terminated */
    uint32_t topic_len;
    const uint8_t *payload; /* NUL-terminated */
    uint32_t payload_len;
    mq_view props_wire;
    const char *text;       /* static, or into data */
    mqlite_props props;     /* embedded list, built lazily */
    uint8_t data[];
} mq_event;

MQ_HIDDEN void mq_event_free(const mq_alloc *a, mq_event *ev);

/* ---- configuration (owned by the session; the client's setters write it) ---- */

typedef struct mq_session_cfg {
    uint8_t version;            /* 3, 4, 5 */
    uint8_t clean_start;
    uint8_t will_qos, will_retain;
    uint8_t request_problem_info, request_response_info;
    uint8_t resubscribe;
    uint8_t strict_utf8;
    uint8_t trace;              /* MQLITE_EVENT_TRACE per packet */
    uint16_t keepalive_s;
    uint16_t receive_max;       /* ours, advertised in CONNECT (5.0) */
    uint16_t topic_alias_max;   /* ours, advertised in CONNECT (5.0) */
    uint32_t session_expiry_s;
    uint32_t max_packet_size;   /* ours; 0 = none */
    uint32_t max_inflight;
    uint32_t max_queued;
    uint64_t max_queued_bytes;
    uint32_t connect_timeout_ms;
    uint32_t ping_timeout_ms;   /* 0 = the keep-alive */
    char *client_id;
    char *username;             /* NULL = none */
    mq_buf password;            /* has_password says if present */
    uint8_t has_password;
    char *will_topic;           /* NULL = no will */
    mq_buf will_payload;
    mq_buf will_props;          /* wire form */
    mq_buf connect_props;       /* wire form, user-supplied */
    char *auth_method;          /* 5.0 enhanced authentication, NULL = none */
    mq_buf auth_data;           /* initial Authentication Data (pluggable methods) */
    uint8_t has_auth_data;
} mq_session_cfg;

/* ---- the session ---- */

#define MQ_SS_IDLE 0
#define MQ_SS_CONNECTING 1
#define MQ_SS_CONNECTED 2
#define MQ_SS_DISCONNECTING 3

typedef struct mq_ctl mq_ctl; /* pending SUBSCRIBE / UNSUBSCRIBE */
typedef struct mq_sub mq_sub; /* an acknowledged subscription */

typedef struct mq_session {
    mq_alloc a;
    mq_session_cfg cfg;
    int state;
    uint8_t version;            /* of the current/last connection */
    uint8_t refused;            /* CONNACK refused this connection */
    uint8_t disconnect_sent;
    uint8_t ever_connected;
    /* what the server told us in CONNACK (5.0; defaults for 3.x) */
    uint16_t srv_receive_max;
    uint8_t srv_max_qos;
    uint8_t srv_retain_available;
    uint32_t srv_max_packet_size; /* 0 = none */
    uint16_t srv_topic_alias_max;
    uint16_t keepalive_s;       /* in force: ours, or the server's override */
    char *assigned_id;
    /* QoS state that survives reconnects */
    mq_outq out;
    mq_inq in;
    mq_ctl *ctl_head, *ctl_tail;
    mq_sub *subs;
    /* per connection */
    mq_buf inbuf;               /* an incomplete packet */
    mq_buf outbuf;              /* bytes for the transport */
    char **aliases;             /* incoming topic aliases, [1..topic_alias_max] */
    uint32_t *alias_len;
    uint64_t last_sent, last_recv, ping_sent, connect_deadline;
    int32_t close_error;        /* why we asked the transport to close */
    uint8_t close_reason;       /* 5.0 reason we sent or received */
    /* events */
    mq_event *ev_head, *ev_tail;
    uint32_t ev_count;
    mq_event *oom_ev;           /* allocated ahead: "events were lost" */
    uint32_t ev_lost;           /* events dropped since it was last taken */
    uint8_t oom_queued;
    uint32_t msgs_in;           /* statistics */
    mq_err err;                 /* message of the last failing request */
    /* 5.0 enhanced authentication (section 4.12) */
    struct mq_scramc *scram;    /* built-in SCRAM-SHA-256 exchange under way */
    uint8_t reauth;             /* our AUTH 0x19 awaits the server's AUTH 0x00 */
} mq_session;

MQ_HIDDEN void mq_session_init(mq_session *s, const mq_alloc *a);
/* Allocate what the session needs to report its own allocation failures
 * (an event saying events were lost). 0 or MQLITE_ERR_NOMEM. */
MQ_HIDDEN int mq_session_reserve(mq_session *s);
MQ_HIDDEN void mq_session_free(mq_session *s);

/* Start a connection: resets per-connection state and queues CONNECT.
 * 0, MQLITE_ERR_STATE (not idle) or MQLITE_ERR_NOMEM / a CONNECT
 * validation error (message in s->err). */
MQ_HIDDEN int mq_session_begin(mq_session *s, uint64_t now);

/* Bytes from the server. 0, or negative: close the transport (after
 * flushing outbuf). */
MQ_HIDDEN int mq_session_feed(mq_session *s, const uint8_t *data, size_t len, uint64_t now);

/* Run timers. 0, or negative: close the transport (keep-alive or CONNACK
 * timeout). */
MQ_HIDDEN int mq_session_tick(mq_session *s, uint64_t now);

/* Absolute time of the next timer, or UINT64_MAX. */
MQ_HIDDEN uint64_t mq_session_deadline(const mq_session *s);

/* The transport is gone. `err` is why (0 = we closed it as asked, e.g.
 * after DISCONNECT). Emits CONNECT_FAILED or DISCONNECTED. */
MQ_HIDDEN void mq_session_closed(mq_session *s, int32_t err, uint64_t now);

/* Move queued messages into outbuf as the window allows, while outbuf
 * holds less than `limit` bytes. */
MQ_HIDDEN void mq_session_pump(mq_session *s, size_t limit, uint64_t now);

/* Queue an application message. props: 5.0 PUBLISH properties (wire form,
 * validated here). *pid gets the packet id (0 for QoS 0). Errors as
 * mqlite_client_publish, message in s->err. */
MQ_HIDDEN int mq_session_publish(mq_session *s, mq_view topic, mq_view payload, int qos,
                                 int retain, mq_view props, uint16_t *pid, uint64_t now);

/* Queue a SUBSCRIBE or UNSUBSCRIBE whose list/count/props are taken from
 * tmpl (copied). *pid gets its packet id. */
MQ_HIDDEN int mq_session_send_list(mq_session *s, const mq_packet *tmpl, uint16_t *pid,
                                   uint64_t now);

/* Queue DISCONNECT (5.0: reason, and session expiry override when
 * expiry_override >= 0). The caller closes the transport once outbuf is
 * flushed and then calls mq_session_closed(s, 0, now). */
MQ_HIDDEN int mq_session_disconnect(mq_session *s, int reason, int64_t expiry_override,
                                    uint64_t now);

/* 5.0 enhanced authentication: send AUTH with `reason` 0x18 (continue: the
 * application's answer to MQLITE_EVENT_AUTH) or 0x19 (re-authenticate,
 * once connected), the configured method and `data`. With the built-in
 * SCRAM-SHA-256 the library makes the data itself (data must be empty).
 * 0; MQLITE_ERR_STATE (no method configured, or not now: message says why),
 * MQLITE_ERR_RANGE (other reasons), MQLITE_ERR_NOT_CONNECTED, _NOMEM. */
MQ_HIDDEN int mq_session_auth(mq_session *s, int reason, mq_view data, uint64_t now);

/* Take the oldest event (caller frees it with mq_event_free), or NULL. */
MQ_HIDDEN mq_event *mq_session_pop_event(mq_session *s);

/* Queue an event made outside the engine (transport errors). */
MQ_HIDDEN int mq_session_event(mq_session *s, int32_t type, int32_t error, const char *text);

/* Index the event's properties (lazily, on first use); NULL when memory
 * ran out (a later call tries again). */
MQ_HIDDEN const mqlite_props *mq_event_props(mq_event *ev);

#endif
