/*
 * spy.h - the parts of `mqlite spy` (cmd_spy.c) and what they share:
 * options, the MQTT session that feeds the TUI and the --plain/--json
 * printers (spy_conn.c), the three runners, clocks and the quit flag.
 */
#ifndef MQLITE_SPY_H
#define MQLITE_SPY_H

#include <stddef.h>
#include <stdint.h>

#include "cliopts.h"
#include "mqlite.h"

#define SPY_TUI 0
#define SPY_PLAIN 1
#define SPY_JSON 2
#define SPY_PROXY 3

/* -W ran out before -C was reached (as mosquitto_sub / mqlite sub). */
#define SPY_EXIT_TIMEOUT 27

typedef struct spy_opts {
    cli_opts o;          /* -h -p -u -P -V -i -t -q -k ... */
    int mode;            /* SPY_* */
    long count;          /* -C: stop after this many messages (0: no limit) */
    long timeout_s;      /* -W: stop after this many seconds (0: no limit) */
    int no_sys;          /* --no-sys: do not add $SYS/# to the default '#' */
    size_t max_payload;  /* --max-payload: bytes kept per message in the TUI */
    int ascii;           /* --ascii: no line-drawing characters */
    int no_color;        /* --no-color */
    int proxy_port;      /* --proxy LISTEN_PORT (0: any free port) */
    const char *to_host; /* --to HOST:PORT */
    int to_port;
    const char *port_file; /* --port-file: write the proxy's port here */
} spy_opts;

/* Runners; each returns the process exit status. */
int spy_run_tui(const spy_opts *so);
int spy_run_print(const spy_opts *so);
int spy_run_proxy(const spy_opts *so);

/* Clocks: monotonic (rates, deadlines) and wall (time stamps), in ms. */
int64_t spy_now_ms(void);
int64_t spy_wall_ms(void);

/* SIGINT / SIGTERM set a flag (the one piece of static state, a
 * sig_atomic_t); the loops poll it. Installed without SA_RESTART so that
 * poll() returns EINTR at once. */
void spy_signals_install(void);
int spy_quit_requested(void);

/* ------------------------------------------------------------------ */
/* The MQTT session of the TUI and the printers.                       */

#define SPY_MAX_FILTERS 65
#define SPY_SUB_PENDING 0
#define SPY_SUB_GRANTED 1
#define SPY_SUB_REFUSED 2

typedef struct spy_conn {
    const spy_opts *so;
    mqlite_client *c;
    const char *filters[SPY_MAX_FILTERS];
    int32_t sub_ids[SPY_MAX_FILTERS];
    int sub_state[SPY_MAX_FILTERS]; /* SPY_SUB_*, for the latest connection */
    int nfilters;
    char note[512]; /* the latest thing worth telling the user */
} spy_conn;

/* What an event means to a runner (spy_conn_event). */
#define SPY_EV_NONE 0    /* nothing to show */
#define SPY_EV_NOTE 1    /* `note` says something worth showing */
#define SPY_EV_MESSAGE 2 /* an application message: the caller takes it */
#define SPY_EV_FATAL 3   /* a runner without reconnects should stop (note says why) */

/* Create the client (reconnecting when asked: the TUI) and start the TCP
 * connect. The filters are -t, or '#' plus '$SYS/#' (unless --no-sys).
 * Returns 0, or -1 after printing why to stderr. */
int spy_conn_open(spy_conn *sc, const spy_opts *so, int reconnect);
/* Interpret one event: subscribe on CONNECTED, judge SUBACKs (a refused
 * '$SYS/#' is a note, all other filters refused is fatal), report
 * connection failures. */
int spy_conn_event(spy_conn *sc, const mqlite_event *ev);
/* One round of I/O for a loop that polled the client's fd itself. */
void spy_conn_io(spy_conn *sc, short revents);
/* DISCONNECT, wait for it to go out (at most ~1 s), free. */
void spy_conn_close(spy_conn *sc);

#endif
