/*
 * spy_conn.c - the MQTT side of `mqlite spy` for the TUI and the printers
 * (see spy.h): one client, subscribed on every CONNECTED so that a
 * reconnect (TUI) starts watching again, clocks and the quit flag.
 */
#define _POSIX_C_SOURCE 200809L
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "spy.h"

static volatile sig_atomic_t quit_flag;

static void on_quit(int sig)
{
    (void)sig;
    quit_flag = 1;
}

void spy_signals_install(void)
{
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_quit;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGHUP, &sa, NULL);
}

int spy_quit_requested(void)
{
    return quit_flag != 0;
}

int64_t spy_now_ms(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (int64_t)t.tv_sec * 1000 + t.tv_nsec / 1000000;
}

int64_t spy_wall_ms(void)
{
    struct timespec t;
    clock_gettime(CLOCK_REALTIME, &t);
    return (int64_t)t.tv_sec * 1000 + t.tv_nsec / 1000000;
}

int spy_conn_open(spy_conn *sc, const spy_opts *so, int reconnect)
{
    memset(sc, 0, sizeof *sc);
    sc->so = so;
    for (int i = 0; i < so->o.ntopics; i++)
        sc->filters[sc->nfilters++] = so->o.topics[i];
    if (sc->nfilters == 0) {
        sc->filters[sc->nfilters++] = "#";
        if (!so->no_sys)
            sc->filters[sc->nfilters++] = "$SYS/#";
    }
    sc->c = cli_client(&so->o, "spy");
    if (!sc->c)
        return -1;
    /* We subscribe on each CONNECTED ourselves; the client must not too. */
    mqlite_client_set_int(sc->c, MQLITE_OPT_RESUBSCRIBE, 0);
    if (reconnect) {
        mqlite_client_set_int(sc->c, MQLITE_OPT_RECONNECT, 1);
        mqlite_client_set_int(sc->c, MQLITE_OPT_RECONNECT_MAX_MS, 5000);
    }
    if (mqlite_client_connect(sc->c, so->o.host, so->o.port) < 0) {
        fprintf(stderr, "mqlite spy: %s\n", mqlite_client_errmsg(sc->c));
        mqlite_client_free(sc->c);
        sc->c = NULL;
        return -1;
    }
    snprintf(sc->note, sizeof sc->note, "connecting to %s:%d", so->o.host, so->o.port);
    return 0;
}

static int is_optional(const spy_conn *sc, int i)
{
    /* only the '$SYS/#' we added ourselves may be refused quietly */
    return sc->so->o.ntopics == 0 && strncmp(sc->filters[i], "$SYS", 4) == 0;
}

/* Every filter the user asked for (or '#') was refused. */
static int nothing_left(const spy_conn *sc)
{
    for (int i = 0; i < sc->nfilters; i++)
        if (!is_optional(sc, i) && sc->sub_state[i] != SPY_SUB_REFUSED)
            return 0;
    return 1;
}

static int subscribe_all(spy_conn *sc)
{
    /* 5.0: retain as published, so the retain flag shown is the publisher's */
    int32_t opts = sc->so->o.qos | (sc->so->o.version == MQLITE_V5 ? 0x08 : 0);
    for (int i = 0; i < sc->nfilters; i++) {
        sc->sub_ids[i] = 0;
        sc->sub_state[i] = SPY_SUB_PENDING;
        if (mqlite_client_subscribe(sc->c, sc->filters[i], opts, &sc->sub_ids[i]) < 0) {
            sc->sub_state[i] = SPY_SUB_REFUSED;
            snprintf(sc->note, sizeof sc->note, "cannot subscribe to %s: %s", sc->filters[i],
                     mqlite_client_errmsg(sc->c));
        }
    }
    return nothing_left(sc) ? SPY_EV_FATAL : SPY_EV_NONE;
}

static int on_suback(spy_conn *sc, const mqlite_event *ev)
{
    int32_t id = mqlite_event_packet_id(ev);
    int i = 0;
    while (i < sc->nfilters && sc->sub_ids[i] != id)
        i++;
    if (i == sc->nfilters || sc->sub_state[i] != SPY_SUB_PENDING)
        return SPY_EV_NONE;
    int32_t code = mqlite_event_count(ev) > 0 ? mqlite_event_reason_at(ev, 0) : 0x80;
    if (code < 0x80) {
        sc->sub_state[i] = SPY_SUB_GRANTED;
        return SPY_EV_NONE;
    }
    sc->sub_state[i] = SPY_SUB_REFUSED;
    snprintf(sc->note, sizeof sc->note, "subscription to %s refused: %s (0x%02x)%s", sc->filters[i],
             mqlite_reason_string(MQLITE_PKT_SUBACK, code, sc->so->o.version), (unsigned)code,
             is_optional(sc, i) ? "; watching without it" : "");
    return nothing_left(sc) ? SPY_EV_FATAL : SPY_EV_NOTE;
}

static int on_connected(spy_conn *sc)
{
    snprintf(sc->note, sizeof sc->note, "connected to %s:%d", sc->so->o.host, sc->so->o.port);
    return subscribe_all(sc) == SPY_EV_FATAL ? SPY_EV_FATAL : SPY_EV_NONE;
}

int spy_conn_event(spy_conn *sc, const mqlite_event *ev)
{
    switch (mqlite_event_type(ev)) {
    case MQLITE_EVENT_MESSAGE:
        return SPY_EV_MESSAGE;
    case MQLITE_EVENT_TRACE:
        cli_trace(ev, sc->so->o.version);
        return SPY_EV_NONE;
    case MQLITE_EVENT_CONNECTED:
        return on_connected(sc);
    case MQLITE_EVENT_SUBACK:
        return on_suback(sc, ev);
    case MQLITE_EVENT_CONNECT_FAILED:
    case MQLITE_EVENT_DISCONNECTED:
        snprintf(sc->note, sizeof sc->note, "%s", mqlite_event_text(ev));
        return SPY_EV_FATAL;
    case MQLITE_EVENT_ERROR:
        snprintf(sc->note, sizeof sc->note, "%s", mqlite_event_text(ev));
        return SPY_EV_NOTE;
    default:
        return SPY_EV_NONE;
    }
}

void spy_conn_io(spy_conn *sc, short revents)
{
    int readable = (revents & (POLLIN | POLLHUP | POLLERR)) != 0;
    int writable = (revents & (POLLOUT | POLLERR)) != 0; /* as mqlite_client_poll */
    mqlite_client_io(sc->c, readable, writable);
}

void spy_conn_close(spy_conn *sc)
{
    if (!sc->c)
        return;
    if (mqlite_client_state(sc->c) == MQLITE_STATE_CONNECTED &&
        mqlite_client_disconnect(sc->c, 0) == 0)
        for (int i = 0; i < 10 && mqlite_client_state(sc->c) != MQLITE_STATE_IDLE; i++)
            mqlite_client_poll(sc->c, 100);
    mqlite_client_free(sc->c);
    sc->c = NULL;
}
