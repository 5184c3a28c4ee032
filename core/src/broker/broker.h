/*
 * broker.h - the broker handle and the records every broker module shares:
 * connections (conn.c), sessions (session.c), the subscription trie
 * (router.c), the retained store (retain.c), $SYS (sys.c), configuration
 * (config.c) and logging (log.c). broker.c owns the handle, the epoll loop,
 * listeners, timers and the public API.
 *
 * Ownership in one paragraph: the broker owns listeners, connections and
 * sessions. A connection points to its session and back; a session lives in
 * the session table until it ends (clean start, expiry, broker freed) and
 * may outlive its connection. Subscriptions belong to their session and are
 * indexed by the router's trie. Messages (mq_msg) are reference counted and
 * shared by every queue, flow and the retained store that holds them.
 *
 * One thread; nothing here is global. A connection is never freed during a
 * poll round (closed ones wait on b->dead until the round ends), and routing
 * never closes a connection, so a delivery cannot free what the router is
 * walking.
 */
#ifndef MQ_BROKER_BROKER_H
#define MQ_BROKER_BROKER_H

#include <stdatomic.h>

#include "common.h"
#include "inflight.h"
#include "passwd.h"
#include "tls.h"

typedef struct mq_acl mq_acl;
typedef struct mq_scram mq_scram;

#define MQ_BROKER_MAGIC 0x6d71624bu /* "mqbK" */

/* epoll tags: the first byte of every object registered with epoll. */
#define MQ_EP_WAKE 1
#define MQ_EP_LISTENER 2
#define MQ_EP_CONN 3

/* Session expiry meaning "never" (MQTT 5.0 3.1.2.11.2). */
#define MQ_EXPIRY_NEVER 0xffffffffu

typedef struct mq_conn mq_conn;
typedef struct mq_bsess mq_bsess;
typedef struct mq_bsub mq_bsub;
typedef struct mq_tnode mq_tnode;

/* ---- options (MQLITE_BOPT_*) ---- */
/* Slow client policies (MQLITE_BOPT_SLOW_CLIENT_POLICY). */
#define MQ_SLOW_DROP_QOS0 0
#define MQ_SLOW_DISCONNECT 1

typedef struct mq_bopts {
    uint32_t max_packet_size;
    uint32_t max_inflight;
    uint32_t max_queued;
    uint64_t max_queued_bytes;
    uint32_t session_expiry_max_s;
    uint32_t sys_interval_s;
    uint32_t connect_timeout_ms;
    uint32_t max_connections;
    uint16_t max_keepalive_s;
    uint16_t receive_max;
    uint16_t topic_alias_max;
    uint8_t retain_available;
    uint8_t allow_anonymous;
    uint8_t max_qos;
    uint8_t wildcard_subs;
    uint8_t shared_subs;
    uint8_t subscription_ids;
    uint8_t auth_external;       /* CONNECTs wait for mqlite_broker_auth_reply() */
    uint8_t slow_policy;         /* MQ_SLOW_* */
    uint32_t max_conn_rate;      /* new connections per source address per second */
    uint32_t tls_handshake_timeout_ms;
    uint64_t max_backlog_bytes;  /* per online client; 0 = no limit */
    int log_level;
} mq_bopts;

/* ---- counters (MQLITE_BSTAT_*) ---- */
typedef struct mq_bstats {
    uint64_t msgs_received;
    uint64_t msgs_sent;
    uint64_t bytes_received;
    uint64_t bytes_sent;
    uint64_t dropped;
    uint32_t connected;
    uint32_t subscriptions;
    uint64_t refused_max;        /* connections over max_connections */
    uint64_t refused_rate;       /* connections over the per-address rate */
    uint64_t auth_failed;        /* CONNECTs and re-authentications refused for credentials */
    uint64_t acl_denied;         /* PUBLISH, SUBSCRIBE and wills the ACL refused */
    uint64_t tls_failed;         /* TLS handshakes that failed or timed out */
    uint64_t slow_disconnected;  /* clients disconnected by the slow client policy */
    uint64_t slow_dropped;       /* QoS 0 messages dropped for clients over their backlog */
    uint64_t too_large;          /* packets over the maximum packet size */
} mq_bstats;

/*
 * ---- a security scope (auth.c) ----
 * What decides who may connect and what they may do: the broker's global
 * scope (b->gsec), or a listener's own with `per_listener_settings true`.
 * Scopes live as long as the broker; a file set again is reloaded in place,
 * so sessions and connections may keep pointers to their scope.
 */
typedef struct mq_bsec {
    struct mq_bsec *next;        /* b->secs: per-listener scopes */
    char *password_file, *acl_file, *scram_file;
    mq_pwdb pw;                  /* $6$ / $7$ entries */
    mq_pwdb scram;               /* SCRAM-SHA-256 credentials */
    uint8_t has_pw, has_scram;
    int8_t allow_anonymous;      /* -1: default (1 unless a password file is set) */
    mq_acl *acl;                 /* NULL: no ACL, everything allowed */
} mq_bsec;

typedef struct mq_listener {
    uint8_t tag; /* MQ_EP_LISTENER */
    uint8_t use_identity;        /* TLS: certificate CN is the user name */
    int fd;
    int port;
    uint32_t max_connections;    /* this listener's own limit; 0 = none */
    uint32_t nconns;
    mq_tls_ctx *tls;             /* NULL: plain TCP */
    mq_bsec *sec;                /* NULL: the broker's global scope */
    char host[64];
} mq_listener;

/* ---- a connection (conn.c) ---- */
#define MQ_CONN_NEW 0    /* accepted, waiting for CONNECT */
#define MQ_CONN_ACTIVE 1 /* CONNACK sent */
#define MQ_CONN_DEAD 2   /* closed, freed at the end of the round */

/* Authentication in progress on a connection (auth.c). */
#define MQ_AUTH_NONE 0
#define MQ_AUTH_APP 1     /* a request waits for mqlite_broker_auth_reply() */
#define MQ_AUTH_SCRAM 2   /* SCRAM server-first sent; client-final awaited */
#define MQ_AUTH_CLIENT 3  /* the application said continue (0x18); client's AUTH awaited */

struct mq_conn {
    uint8_t tag; /* MQ_EP_CONN */
    uint8_t state;
    uint8_t version;     /* protocol level once CONNECT is in */
    uint8_t dirty;       /* on b->dirty: output to flush this round */
    uint8_t ep_out;      /* EPOLLOUT registered */
    uint8_t ep_in_off;   /* reading paused: output over its hard limit */
    uint8_t will_publish; /* publish the will when closing (abnormal end) */
    uint8_t tls_hs;      /* TLS handshake in progress */
    uint8_t tls_rd_ww;   /* the last TLS read waits for writability */
    uint8_t tls_wr_wr;   /* the last TLS write waits for readability */
    uint8_t more;        /* on b->more: TLS holds decrypted input */
    uint8_t refuse;      /* limits: 5.0 reason to refuse the CONNECT with; 0 = none */
    uint8_t auth;        /* MQ_AUTH_*: before CONNACK, or a re-authentication */
    uint8_t parked;      /* CONNECT waits for the application: input not parsed */
    uint8_t slow;        /* on b->slow: close at the end of the round */
    uint8_t cert_ok;     /* TLS peer certificate verified */
    uint16_t keepalive_s;
    uint16_t nalias;     /* topic aliases the client may use (5.0) */
    int fd;
    mqlite_broker *b;
    mq_conn *next, *prev;  /* b->conns */
    mq_conn *dirty_next;
    mq_conn *more_next, *slow_next;
    mq_conn *aw_next;      /* b->authwait: a request of ours is with the application */
    mq_bsess *s;
    mq_listener *l;        /* accepted on */
    mq_bsec *sec;          /* security scope (the listener's or the global one) */
    mq_tls *tls;           /* NULL: plain TCP */
    char *username;        /* user name in force (ACL, logs); owned; NULL = none */
    char *auth_method;     /* 5.0 enhanced authentication method in use; owned */
    mq_scram *scram;       /* SCRAM exchange in progress */
    mq_buf connect_raw;    /* the CONNECT while authentication is pending */
    mq_view raw;           /* bytes of the packet being handled (parse) */
    int64_t auth_id;       /* id of the request the application holds */
    uint64_t last_rx_ms;
    uint64_t deadline_ms;  /* connect timeout, then keep-alive; 0 = none */
    uint32_t max_out;      /* client's Maximum Packet Size (5.0); 0 = none */
    mq_buf in;             /* a partial packet carried to the next read */
    mq_buf out;            /* output waiting for the socket */
    size_t out_off;        /* bytes of out already written */
    mq_view *aliases;      /* [nalias], 1-based alias i at [i - 1]; owned copies */
    char peer[56];
    char *cert_cn;         /* CN of a verified client certificate; owned; NULL = none */
};

/* ---- a session (session.c) ---- */
struct mq_bsess {
    mq_bsess *hnext;            /* session table chain */
    mq_bsess *onext, *oprev;    /* b->offline: sessions waiting for a timer */
    uint32_t hash;
    uint16_t id_len;
    uint8_t version;
    uint8_t on_offline;         /* linked on b->offline */
    mq_conn *conn;              /* NULL while offline */
    mq_outq q;                  /* broker -> client flows */
    mq_inq inq;                 /* client -> broker QoS 2 ids awaiting PUBREL */
    mq_bsub **subs;
    uint32_t nsubs, subcap;
    uint32_t expiry_s;          /* Session Expiry Interval in force */
    uint64_t expire_at_ms;      /* offline: when the session ends; 0 = never */
    mq_msg *will;               /* will of the current or last connection */
    uint32_t will_delay_s;
    uint32_t will_expiry_s;     /* will Message Expiry Interval; 0 = none */
    uint8_t will_has_expiry;
    uint64_t will_at_ms;        /* offline: when the will is due; 0 = none pending */
    uint32_t match_gen;         /* router: last publish that matched this session */
    uint32_t match_idx;
    mq_bsec *sec;               /* scope of the last connection (ACL on delivery) */
    char *username;             /* user name of the last connection; owned */
    char id[];                  /* client identifier, NUL-terminated */
};

/* ---- the router's per-publish scratch: one entry per matched session ---- */
typedef struct mq_bmatch {
    mq_bsess *s;
    uint8_t qos;
    uint8_t rap;           /* retain as published on some matching subscription */
    int32_t subid_head;    /* index into b->subid_nodes, -1 = none */
} mq_bmatch;

typedef struct mq_subid_node {
    uint32_t id;
    int32_t next;
} mq_subid_node;

/* ---- $SYS state (sys.c) ---- */
#define MQ_SYS_TOPICS 24
typedef struct mq_sys {
    uint64_t next_ms;
    uint64_t last[MQ_SYS_TOPICS];
    uint8_t sent[MQ_SYS_TOPICS];
} mq_sys;

struct mqlite_broker {
    uint32_t magic;
    mq_alloc a;
    mq_err err;
    mq_bopts o;
    mq_bstats st;
    atomic_int stopping;
    int epfd;
    int wakefd;                 /* eventfd for mqlite_broker_stop */
    uint8_t wake_tag;           /* MQ_EP_WAKE */
    uint8_t routing;            /* inside mq_router_publish (no nesting) */
    mq_listener **ls;
    int nls, cls;
    mq_conn *conns;             /* every open connection */
    uint32_t nconns;
    mq_conn *dirty;             /* connections with output to flush */
    mq_conn *dead;              /* closed this round, freed at its end */
    mq_conn *more;              /* TLS connections with buffered input */
    mq_conn *slow;              /* over their backlog: to close (slow client policy) */
    uint32_t nrefusing;         /* accepted only to be refused (limits) */
    /* security (auth.c) */
    mq_bsec gsec;               /* global scope */
    mq_bsec *secs;              /* per-listener scopes */
    uint8_t secret[32];         /* random: SCRAM fake salts for unknown users */
    struct mqlite_auth_request *authq, *authq_tail; /* not yet pulled */
    struct mqlite_auth_request *auth_cur;  /* the last one pulled */
    mq_conn *authwait;          /* connections whose request is out */
    int64_t auth_seq;
    uint32_t nauthq;
    /* limits */
    struct mq_rate *rate;       /* per-address connection counters */
    /* sessions (session.c) */
    mq_bsess **stab;
    uint32_t stab_cap, nsess;
    mq_bsess *offline;          /* offline sessions with an expiry or a will timer */
    uint64_t assign_seq;        /* for assigned client identifiers */
    /* router (router.c) */
    mq_tnode *subs_root;
    mq_bmatch *matches;
    uint32_t nmatches, matches_cap;
    mq_subid_node *subid_nodes;
    uint32_t nsubid_nodes, subid_nodes_cap;
    uint32_t match_gen;
    uint32_t *ids_tmp;          /* subscription ids of one delivery */
    uint32_t ids_cap;
    void **stack;               /* trie walks (router, retain) */
    uint32_t stack_cap;
    /* retained messages (retain.c) */
    mq_tnode *ret_root;
    uint32_t nretained;
    uint32_t nret_expiring;     /* retained messages with an expiry */
    uint64_t ret_next_ms;       /* earliest retained expiry; 0 = none known */
    /* time */
    uint64_t now_ms;            /* monotonic, taken once per round */
    uint64_t started_ms;
    uint64_t next_tick_ms;      /* earliest timer; 0 = none */
    mq_sys sys;
    mq_buf scratch;             /* property blocks being built */
    uint8_t *rbuf;              /* shared read buffer */
    size_t rbuf_cap;
    char *config_path;
};

/* ---- broker.c: services for the other modules ---- */

/* Ask for a timer pass at or after `at_ms` (0 is ignored). */
MQ_HIDDEN void mq_broker_wake_at(mqlite_broker *b, uint64_t at_ms);
/* Queue c for this round's flush. */
MQ_HIDDEN void mq_broker_mark_dirty(mqlite_broker *b, mq_conn *c);
/* Publish m as received from `from` (NULL: the broker itself): store or
 * clear it as retained when m->retain, count it, route it. Returns the
 * number of sessions it went to. */
MQ_HIDDEN int mq_broker_publish(mqlite_broker *b, mq_msg *m, const mq_bsess *from);
/* Open a plain listener; used by the public API and the config file. *out
 * (may be NULL) gets it, for TLS and per-listener settings. */
MQ_HIDDEN int mq_broker_listen(mqlite_broker *b, const char *host, int port, int *bound,
                               mq_listener **out);
/* Apply one MQLITE_BOPT_* option with range checks (message in b->err). */
MQ_HIDDEN int mq_broker_set_opt(mqlite_broker *b, int32_t opt, int64_t v);

#endif
