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
} mq_bstats;

typedef struct mq_listener {
    uint8_t tag; /* MQ_EP_LISTENER */
    int fd;
    int port;
    char host[64];
} mq_listener;

/* ---- a connection (conn.c) ---- */
#define MQ_CONN_NEW 0    /* accepted, waiting for CONNECT */
#define MQ_CONN_ACTIVE 1 /* CONNACK sent */
#define MQ_CONN_DEAD 2   /* closed, freed at the end of the round */

struct mq_conn {
    uint8_t tag; /* MQ_EP_CONN */
    uint8_t state;
    uint8_t version;     /* protocol level once CONNECT is in */
    uint8_t dirty;       /* on b->dirty: output to flush this round */
    uint8_t ep_out;      /* EPOLLOUT registered */
    uint8_t ep_in_off;   /* reading paused: output over its hard limit */
    uint8_t will_publish; /* publish the will when closing (abnormal end) */
    uint16_t keepalive_s;
    uint16_t nalias;     /* topic aliases the client may use (5.0) */
    int fd;
    mqlite_broker *b;
    mq_conn *next, *prev;  /* b->conns */
    mq_conn *dirty_next;
    mq_bsess *s;
    uint64_t last_rx_ms;
    uint64_t deadline_ms;  /* connect timeout, then keep-alive; 0 = none */
    uint32_t max_out;      /* client's Maximum Packet Size (5.0); 0 = none */
    mq_buf in;             /* a partial packet carried to the next read */
    mq_buf out;            /* output waiting for the socket */
    size_t out_off;        /* bytes of out already written */
    mq_view *aliases;      /* [nalias], 1-based alias i at [i - 1]; owned copies */
    char peer[56];
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
#define MQ_SYS_TOPICS 16
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
/* Open a listener; used by the public API and the config file. */
MQ_HIDDEN int mq_broker_listen(mqlite_broker *b, const char *host, int port, int *bound);
/* Apply one MQLITE_BOPT_* option with range checks (message in b->err). */
MQ_HIDDEN int mq_broker_set_opt(mqlite_broker *b, int32_t opt, int64_t v);

#endif
