/*
 * test_broker_persist.c - the broker's persistence file
 * (MQLITE_BOPT_PERSISTENCE_FILE, docs/persistence.md), seen from clients:
 * a broker freed and created again on the same file still has its
 * retained messages and persistent sessions with their queued messages; a
 * session that expired while the broker was down is gone; a damaged file
 * stops start-up with a clear message and stays byte for byte as it was;
 * the will of a persistent session whose connection the broker's stop or
 * crash ended is published after the restart; a file of the previous
 * schema is migrated. Everything runs in this thread on 127.0.0.1 with free ports; every wait
 * is bounded.
 */
#define _GNU_SOURCE
#include <signal.h>
#include <stdio.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <sqlite3.h>

#include "mqlite.h"
#include "testlib.h"

static char dir[64];

static uint64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

static void path_of(char *buf, size_t cap, const char *name)
{
    snprintf(buf, cap, "%s/%s", dir, name);
}

static void remove_db(const char *p)
{
    char b[300];
    const char *sfx[] = {"", "-wal", "-shm"};
    for (int i = 0; i < 3; i++) {
        snprintf(b, sizeof b, "%s%s", p, sfx[i]);
        unlink(b);
    }
}

/* A broker on the persistence file `db`, listening on *port (0: pick). */
static mqlite_broker *broker_on(const char *db, int *port)
{
    mqlite_broker *b = mqlite_broker_new();
    mqlite_broker_set_int(b, MQLITE_BOPT_SYS_INTERVAL_S, 0);
    mqlite_broker_set_int(b, MQLITE_BOPT_LOG_LEVEL, MQLITE_LOG_ERROR);
    int32_t rc = mqlite_broker_set_str(b, MQLITE_BOPT_PERSISTENCE_FILE, db);
    if (rc != 0)
        fprintf(stderr, "persistence file: %s\n", mqlite_broker_errmsg(b));
    CHECK_EQ(rc, 0);
    int32_t p = 0;
    CHECK_EQ(mqlite_broker_listen(b, "127.0.0.1", *port, &p), 0);
    *port = p;
    return b;
}

static mqlite_client *client(const char *id, int version, int persistent)
{
    mqlite_client *c = mqlite_client_new(id);
    mqlite_client_set_int(c, MQLITE_OPT_PROTOCOL, version);
    mqlite_client_set_int(c, MQLITE_OPT_CLEAN_START, !persistent);
    if (version == MQLITE_V5 && persistent)
        mqlite_client_set_int(c, MQLITE_OPT_SESSION_EXPIRY_S, persistent);
    return c;
}

/* Drive broker and client until an event of `type` (others are dropped);
 * its payload is copied to buf. Returns the event's session-present flag
 * for CONNECTED, 1 for others, -1 on timeout. */
static int wait_for(mqlite_broker *b, mqlite_client *c, int type, char *buf, size_t cap)
{
    for (uint64_t end = now_ms() + 3000; now_ms() < end;) {
        mqlite_broker_poll(b, 0);
        mqlite_client_poll(c, 2);
        const mqlite_event *ev;
        while ((ev = mqlite_client_next_event(c)) != NULL) {
            if (mqlite_event_type(ev) != type)
                continue;
            if (buf) {
                size_t len = 0;
                const void *p = mqlite_event_payload(ev, &len);
                if (len >= cap)
                    len = cap - 1;
                memcpy(buf, p, len);
                buf[len] = 0;
            }
            return type == MQLITE_EVENT_CONNECTED ? mqlite_event_session_present(ev) : 1;
        }
    }
    return -1;
}

static int connect_to(mqlite_broker *b, mqlite_client *c, int port)
{
    CHECK_EQ(mqlite_client_connect(c, "127.0.0.1", port), 0);
    return wait_for(b, c, MQLITE_EVENT_CONNECTED, NULL, 0);
}

static void disconnect(mqlite_broker *b, mqlite_client *c)
{
    mqlite_client_disconnect(c, 0);
    for (uint64_t end = now_ms() + 2000;
         now_ms() < end && mqlite_client_state(c) != MQLITE_STATE_IDLE;) {
        mqlite_broker_poll(b, 0);
        mqlite_client_poll(c, 2);
    }
    for (int i = 0; i < 5; i++)
        mqlite_broker_poll(b, 1);
}

static void publish(mqlite_broker *b, const char *topic, const char *msg, int qos, int retain,
                    int port)
{
    mqlite_client *p = client("pub", MQLITE_V311, 0);
    CHECK_EQ(connect_to(b, p, port), 0);
    CHECK_EQ(mqlite_client_publish(p, topic, msg, strlen(msg), qos, retain, NULL), 0);
    if (qos)
        CHECK_EQ(wait_for(b, p, MQLITE_EVENT_PUBLISHED, NULL, 0), 1);
    disconnect(b, p);
    mqlite_client_free(p);
}

/* MQTT 3.1.1 [MQTT-3.3.1-5], [MQTT-3.1.2-4], [MQTT-3.1.2-5]; 5.0
   [MQTT-3.3.1-5], [MQTT-3.1.2-5]: retained messages, the subscriptions of a
   persistent session and the QoS 1/2 messages queued for it while it was
   offline survive a restart of the broker on the same file. */
static void test_restart_keeps_retained_sessions_and_queued_messages(void)
{
    const int versions[] = {MQLITE_V311, MQLITE_V5};
    for (int vi = 0; vi < 2; vi++) {
        int v = versions[vi];
        char db[128];
        path_of(db, sizeof db, "restart.db");
        remove_db(db);
        int port = 0;
        mqlite_broker *b = broker_on(db, &port);
        mqlite_client *s = client("keeper", v, 3600);
        CHECK_EQ(connect_to(b, s, port), 0);
        CHECK_EQ(mqlite_client_subscribe(s, "q/#", 2, NULL), 0);
        CHECK_EQ(wait_for(b, s, MQLITE_EVENT_SUBACK, NULL, 0), 1);
        disconnect(b, s);
        publish(b, "keep/r", "retained-1", 1, 1, port);
        publish(b, "q/1", "queued-q1", 1, 0, port);
        publish(b, "q/2", "queued-q2", 2, 0, port);
        mqlite_broker_free(b);

        b = broker_on(db, &port);
        CHECK_EQ(mqlite_broker_stat(b, MQLITE_BSTAT_RETAINED), 1);
        CHECK_EQ(mqlite_broker_stat(b, MQLITE_BSTAT_CLIENTS_TOTAL), 1);
        CHECK_EQ(connect_to(b, s, port), 1); /* session present */
        char got[64] = "";
        CHECK_EQ(wait_for(b, s, MQLITE_EVENT_MESSAGE, got, sizeof got), 1);
        CHECK_STR(got, "queued-q1");
        CHECK_EQ(wait_for(b, s, MQLITE_EVENT_MESSAGE, got, sizeof got), 1);
        CHECK_STR(got, "queued-q2");
        /* The subscription itself survived too: new messages arrive. */
        publish(b, "q/3", "after-restart", 1, 0, port);
        CHECK_EQ(wait_for(b, s, MQLITE_EVENT_MESSAGE, got, sizeof got), 1);
        CHECK_STR(got, "after-restart");
        disconnect(b, s);
        mqlite_client_free(s);

        mqlite_client *r = client("reader", v, 0);
        CHECK_EQ(connect_to(b, r, port), 0);
        CHECK_EQ(mqlite_client_subscribe(r, "keep/#", 1, NULL), 0);
        CHECK_EQ(wait_for(b, r, MQLITE_EVENT_MESSAGE, got, sizeof got), 1);
        CHECK_STR(got, "retained-1");
        disconnect(b, r);
        mqlite_client_free(r);
        /* Clearing a retained message is persistent as well. */
        publish(b, "keep/r", "", 1, 1, port);
        mqlite_broker_free(b);
        b = broker_on(db, &port);
        CHECK_EQ(mqlite_broker_stat(b, MQLITE_BSTAT_RETAINED), 0);
        mqlite_broker_free(b);
        remove_db(db);
    }
}

/* MQTT 5.0 [MQTT-3.1.2-23] (the session ends when its Session Expiry
   Interval has passed): the time the broker was down counts. */
static void test_session_expired_while_down_is_gone(void)
{
    char db[128];
    path_of(db, sizeof db, "expiry.db");
    remove_db(db);
    int port = 0;
    mqlite_broker *b = broker_on(db, &port);
    mqlite_client *s = client("brief", MQLITE_V5, 1); /* expires 1 s after it leaves */
    mqlite_client *l = client("long", MQLITE_V5, 3600);
    CHECK_EQ(connect_to(b, s, port), 0);
    CHECK_EQ(connect_to(b, l, port), 0);
    disconnect(b, s);
    disconnect(b, l);
    mqlite_broker_free(b);
    usleep(1300 * 1000);
    b = broker_on(db, &port);
    CHECK_EQ(mqlite_broker_stat(b, MQLITE_BSTAT_CLIENTS_TOTAL), 1);
    CHECK_EQ(connect_to(b, s, port), 0); /* no session present */
    CHECK_EQ(connect_to(b, l, port), 1);
    disconnect(b, s);
    disconnect(b, l);
    mqlite_client_free(s);
    mqlite_client_free(l);
    mqlite_broker_free(b);
    remove_db(db);
}

static size_t slurp(const char *path, char *buf, size_t cap)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return 0;
    size_t n = fread(buf, 1, cap, f);
    fclose(f);
    return n;
}

static void put_file(const char *path, const void *p, size_t n)
{
    FILE *f = fopen(path, "wb");
    if (!f)
        abort();
    fwrite(p, 1, n, f);
    fclose(f);
}

/* A damaged file: garbage, or a real persistence file cut short. Start-up
 * fails with a message naming the file, through the API and through a
 * configuration file, and the file keeps every byte. */
static void test_damaged_file_stops_startup_and_is_untouched(void)
{
    static char before[1 << 17], after[1 << 17];
    char db[128], conf[128], wal[160];
    path_of(db, sizeof db, "bad.db");
    path_of(conf, sizeof conf, "bad.conf");
    snprintf(wal, sizeof wal, "%s-wal", db);
    remove_db(db);
    /* 1. garbage */
    for (size_t i = 0; i < 9000; i++)
        before[i] = (char)(i * 31 + 7);
    put_file(db, before, 9000);
    mqlite_broker *b = mqlite_broker_new();
    CHECK_EQ(mqlite_broker_set_str(b, MQLITE_BOPT_PERSISTENCE_FILE, db), MQLITE_ERR_IO);
    CHECK(strstr(mqlite_broker_errmsg(b), db) != NULL);
    CHECK(strstr(mqlite_broker_errmsg(b), "not an SQLite database") != NULL);
    CHECK(strstr(mqlite_broker_errmsg(b), "untouched") != NULL);
    CHECK_MEM(after, slurp(db, after, sizeof after), before, 9000);
    CHECK(access(wal, F_OK) != 0);
    char text[300];
    snprintf(text, sizeof text, "persistence true\npersistence_file %s\n", db);
    put_file(conf, text, strlen(text));
    CHECK_EQ(mqlite_broker_load_config(b, conf), MQLITE_ERR_IO);
    CHECK(strstr(mqlite_broker_errmsg(b), db) != NULL);
    CHECK_EQ(mqlite_broker_port(b, 0), MQLITE_ERR_RANGE); /* nothing listens */
    CHECK_MEM(after, slurp(db, after, sizeof after), before, 9000);
    mqlite_broker_free(b);
    /* 2. a real file, truncated */
    remove_db(db);
    int port = 0;
    b = broker_on(db, &port);
    char big[2000];
    memset(big, 'x', sizeof big - 1);
    big[sizeof big - 1] = 0;
    for (int i = 0; i < 30; i++) {
        char t[32];
        snprintf(t, sizeof t, "r/%d", i);
        publish(b, t, big, 1, 1, port);
    }
    mqlite_broker_free(b);
    unlink(wal);
    size_t n = slurp(db, before, sizeof before);
    CHECK(n > 40000);
    put_file(db, before, n / 2 + 100);
    b = mqlite_broker_new();
    CHECK_EQ(mqlite_broker_set_str(b, MQLITE_BOPT_PERSISTENCE_FILE, db), MQLITE_ERR_IO);
    CHECK(strstr(mqlite_broker_errmsg(b), "truncated") != NULL);
    CHECK_MEM(after, slurp(db, after, sizeof after), before, n / 2 + 100);
    mqlite_broker_free(b);
    remove_db(db);
    unlink(conf);
}

/* A newer schema (written by a later mqlite) is refused, not downgraded. */
static void test_newer_schema_refused(void)
{
    char db[128];
    path_of(db, sizeof db, "newer.db");
    remove_db(db);
    int port = 0;
    mqlite_broker *b = broker_on(db, &port);
    mqlite_broker_free(b);
    /* Bump user_version at byte 60 of the header (SQLite file format 1.3). */
    FILE *f = fopen(db, "r+b");
    CHECK(f != NULL);
    if (f) {
        unsigned char v[4] = {0, 0, 0, 99};
        fseek(f, 60, SEEK_SET);
        fwrite(v, 1, 4, f);
        fclose(f);
    }
    b = mqlite_broker_new();
    CHECK_EQ(mqlite_broker_set_str(b, MQLITE_BOPT_PERSISTENCE_FILE, db), MQLITE_ERR_IO);
    CHECK(strstr(mqlite_broker_errmsg(b), "newer") != NULL);
    mqlite_broker_free(b);
    remove_db(db);
}

/* The persistence file cannot grow any more (the file size limit, as a
 * full disk): the broker stops with MQLITE_ERR_IO naming the file, and
 * every retained message it acknowledged before is in the file. */
static void test_write_failure_stops_the_broker_and_loses_nothing_acknowledged(void)
{
    char db[128];
    path_of(db, sizeof db, "full.db");
    remove_db(db);
    int fds[2];
    CHECK_EQ(pipe(fds), 0);
    fflush(NULL);
    pid_t pid = fork();
    if (pid == 0) {
        close(fds[0]);
        signal(SIGXFSZ, SIG_IGN);
        int port = 0;
        mqlite_broker *b = broker_on(db, &port);
        mqlite_client *c = client("filler", MQLITE_V311, 0);
        int good = connect_to(b, c, port) == 0;
        struct rlimit rl = {1u << 20, 1u << 20};
        setrlimit(RLIMIT_FSIZE, &rl);
        static char big[50000];
        memset(big, 'f', sizeof big);
        int32_t acked = 0, stopped = 0;
        for (int i = 0; i < 200 && !stopped; i++) {
            char t[32];
            snprintf(t, sizeof t, "fill/%d", i);
            mqlite_client_publish(c, t, big, sizeof big, 1, 1, NULL);
            for (uint64_t end = now_ms() + 2000; now_ms() < end && !stopped;) {
                if (mqlite_broker_poll(b, 0) == MQLITE_ERR_IO) {
                    stopped = 1;
                    good = good && strstr(mqlite_broker_errmsg(b), db) != NULL;
                }
                mqlite_client_poll(c, 1);
                const mqlite_event *ev;
                int done = 0;
                while ((ev = mqlite_client_next_event(c)) != NULL)
                    if (mqlite_event_type(ev) == MQLITE_EVENT_PUBLISHED) {
                        acked++;
                        done = 1;
                    }
                if (done)
                    break;
            }
        }
        /* After the failure nothing more is acknowledged. */
        mqlite_client_publish(c, "fill/late", "x", 1, 1, 1, NULL);
        for (int i = 0; i < 50; i++) {
            mqlite_broker_poll(b, 0);
            mqlite_client_poll(c, 2);
            const mqlite_event *ev;
            while ((ev = mqlite_client_next_event(c)) != NULL)
                if (mqlite_event_type(ev) == MQLITE_EVENT_PUBLISHED)
                    good = 0;
        }
        int32_t out[3] = {acked, stopped, good};
        ssize_t w = write(fds[1], out, sizeof out);
        (void)w;
        _exit(0);
    }
    close(fds[1]);
    int32_t in[3] = {0, 0, 0};
    CHECK_EQ(read(fds[0], in, sizeof in), (ssize_t)sizeof in);
    close(fds[0]);
    waitpid(pid, NULL, 0);
    CHECK(in[1]); /* the broker stopped */
    CHECK(in[2]); /* with the file's name; nothing acknowledged after */
    CHECK(in[0] > 0);
    int port = 0;
    mqlite_broker *b = broker_on(db, &port);
    CHECK(mqlite_broker_stat(b, MQLITE_BSTAT_RETAINED) >= in[0]);
    mqlite_broker_free(b);
    remove_db(db);
}

/* ---- wills (schema 2) ---- */

/* A 5.0 client with a persistent session (expiry_s) and a QoS 1 will on
 * "will/<id>" with Will Delay Interval delay_s. */
static mqlite_client *will_client(const char *id, int expiry_s, int delay_s)
{
    mqlite_client *c = client(id, MQLITE_V5, expiry_s);
    char topic[64], payload[64];
    snprintf(topic, sizeof topic, "will/%s", id);
    snprintf(payload, sizeof payload, "gone-%s", id);
    CHECK_EQ(mqlite_client_set_str(c, MQLITE_OPT_WILL_TOPIC, topic), 0);
    CHECK_EQ(mqlite_client_set_bytes(c, MQLITE_OPT_WILL_PAYLOAD, payload, strlen(payload)), 0);
    mqlite_client_set_int(c, MQLITE_OPT_WILL_QOS, 1);
    mqlite_props *wp = mqlite_props_new();
    CHECK_EQ(mqlite_props_add_int(wp, MQLITE_PROP_WILL_DELAY, delay_s), 0);
    CHECK_EQ(mqlite_props_add_int(wp, MQLITE_PROP_MESSAGE_EXPIRY, 600), 0);
    CHECK_EQ(mqlite_client_set_props(c, MQLITE_OPT_WILL_PROPS, wp), 0);
    mqlite_props_free(wp);
    return c;
}

/* Drive c alone (its broker runs elsewhere) until an event of `type`. */
static int wait_alone(mqlite_client *c, int type)
{
    for (uint64_t end = now_ms() + 3000; now_ms() < end;) {
        mqlite_client_poll(c, 5);
        const mqlite_event *ev;
        while ((ev = mqlite_client_next_event(c)) != NULL)
            if (mqlite_event_type(ev) == type)
                return 1;
    }
    return -1;
}

/* The watcher: a 5.0 persistent session subscribed to "will/#" at QoS 1,
 * left offline (its messages are queued for it meanwhile). b NULL: the
 * broker runs in another process. */
static mqlite_client *watcher(mqlite_broker *b, int port)
{
    mqlite_client *w = client("watcher", MQLITE_V5, 3600);
    CHECK_EQ(mqlite_client_connect(w, "127.0.0.1", port), 0);
    if (b)
        CHECK_EQ(wait_for(b, w, MQLITE_EVENT_CONNECTED, NULL, 0), 0);
    else
        CHECK_EQ(wait_alone(w, MQLITE_EVENT_CONNECTED), 1);
    CHECK_EQ(mqlite_client_subscribe(w, "will/#", 1, NULL), 0);
    CHECK_EQ(b ? wait_for(b, w, MQLITE_EVENT_SUBACK, NULL, 0) : wait_alone(w, MQLITE_EVENT_SUBACK),
             1);
    if (b) {
        disconnect(b, w);
    } else {
        mqlite_client_disconnect(w, 0);
        for (uint64_t end = now_ms() + 2000;
             now_ms() < end && mqlite_client_state(w) != MQLITE_STATE_IDLE;)
            mqlite_client_poll(w, 5);
    }
    return w;
}

/* Reconnect the watcher to the restarted broker b and collect the wills
 * published within ms: their payloads, space-separated, into got. */
static void collect_wills(mqlite_broker *b, mqlite_client *w, int port, int ms, char *got,
                          size_t cap, uint64_t *first_at)
{
    got[0] = 0;
    *first_at = 0;
    CHECK_EQ(connect_to(b, w, port), 1); /* session present */
    for (uint64_t end = now_ms() + (uint64_t)ms; now_ms() < end;) {
        mqlite_broker_poll(b, 0);
        mqlite_client_poll(w, 5);
        const mqlite_event *ev;
        while ((ev = mqlite_client_next_event(w)) != NULL) {
            if (mqlite_event_type(ev) != MQLITE_EVENT_MESSAGE)
                continue;
            size_t len = 0;
            const char *p = mqlite_event_payload(ev, &len);
            size_t at = strlen(got);
            if (at + len + 2 < cap) {
                memcpy(got + at, p, len);
                memcpy(got + at + len, " ", 2);
            }
            if (!*first_at)
                *first_at = now_ms();
        }
    }
    disconnect(b, w);
}

/* MQTT 5.0 3.1.2.5, 3.1.3.2.2 and [MQTT-3.1.3-9]: the broker is stopped
 * (mqlite_broker_free) under a connected client with a will and a Will
 * Delay Interval of 2 s. Its connection ended without DISCONNECT, so
 * after the restart the will is published once the delay has passed, not
 * before, and reaches the offline subscriber with a persistent session
 * (5.0 [MQTT-3.1.2-5]). */
static void test_will_survives_a_clean_stop(void)
{
    char db[128], got[256];
    path_of(db, sizeof db, "will-stop.db");
    remove_db(db);
    int port = 0;
    mqlite_broker *b = broker_on(db, &port);
    mqlite_client *w = watcher(b, port);
    mqlite_client *d = will_client("stopped", 60, 2);
    CHECK_EQ(connect_to(b, d, port), 0);
    mqlite_broker_free(b);
    mqlite_client_free(d);

    uint64_t t0 = now_ms(), first;
    b = broker_on(db, &port);
    collect_wills(b, w, port, 1500, got, sizeof got, &first);
    CHECK_STR(got, ""); /* the delay runs */
    collect_wills(b, w, port, 1500, got, sizeof got, &first);
    CHECK_STR(got, "gone-stopped ");
    CHECK(first >= t0 + 1900);
    mqlite_broker_free(b);
    /* Published means gone from the file: not sent a second time. */
    b = broker_on(db, &port);
    collect_wills(b, w, port, 500, got, sizeof got, &first);
    CHECK_STR(got, "");
    mqlite_broker_free(b);
    mqlite_client_free(w);
    remove_db(db);
}

/* The broker runs in a child until SIGKILLed; returns its pid. */
static pid_t broker_child(const char *db, int *port)
{
    int fds[2];
    if (pipe(fds) != 0)
        abort();
    fflush(NULL);
    pid_t pid = fork();
    if (pid == 0) {
        close(fds[0]);
        int p = 0;
        mqlite_broker *b = broker_on(db, &p);
        int32_t out = p;
        if (write(fds[1], &out, sizeof out) != (ssize_t)sizeof out)
            _exit(1);
        for (uint64_t end = now_ms() + 20000; now_ms() < end;)
            mqlite_broker_poll(b, 50);
        _exit(0); /* not reached when the test goes well */
    }
    close(fds[1]);
    int32_t in = 0;
    if (read(fds[0], &in, sizeof in) != (ssize_t)sizeof in)
        in = 0;
    close(fds[0]);
    *port = in;
    return pid;
}

/* The same with a crash: the broker SIGKILLed under two connected clients
 * with wills, a 5.0 one with Will Delay Interval 2 s and a 3.1.1 one
 * (no delay). The crash closed their connections without DISCONNECT
 * (3.1.1 [MQTT-3.1.2-8], 5.0 [MQTT-3.1.2-8]): after the restart the 3.1.1
 * will goes out at once, the 5.0 one after its delay (5.0 [MQTT-3.1.3-9]). */
static void test_will_survives_a_crash(void)
{
    char db[128], got[256];
    path_of(db, sizeof db, "will-crash.db");
    remove_db(db);
    int port = 0;
    pid_t pid = broker_child(db, &port);
    CHECK(port > 0);
    mqlite_client *w = watcher(NULL, port);
    mqlite_client *d = will_client("crashed", 60, 2);
    mqlite_client *o = client("old", MQLITE_V311, 1);
    mqlite_client_set_str(o, MQLITE_OPT_WILL_TOPIC, "will/old");
    mqlite_client_set_bytes(o, MQLITE_OPT_WILL_PAYLOAD, "gone-old", 8);
    mqlite_client_set_int(o, MQLITE_OPT_WILL_QOS, 1);
    CHECK_EQ(mqlite_client_connect(d, "127.0.0.1", port), 0);
    CHECK_EQ(wait_alone(d, MQLITE_EVENT_CONNECTED), 1);
    CHECK_EQ(mqlite_client_connect(o, "127.0.0.1", port), 0);
    CHECK_EQ(wait_alone(o, MQLITE_EVENT_CONNECTED), 1);
    kill(pid, SIGKILL);
    waitpid(pid, NULL, 0);
    mqlite_client_free(d);
    mqlite_client_free(o);

    uint64_t t0 = now_ms(), first;
    mqlite_broker *b = broker_on(db, &port);
    collect_wills(b, w, port, 1000, got, sizeof got, &first);
    CHECK_STR(got, "gone-old ");
    collect_wills(b, w, port, 2000, got, sizeof got, &first);
    CHECK_STR(got, "gone-crashed ");
    CHECK(first >= t0 + 1900);
    mqlite_broker_free(b);
    mqlite_client_free(w);
    remove_db(db);
}

/* 3.1.1 [MQTT-3.1.2-10], 5.0 [MQTT-3.1.2-10] and [MQTT-3.14.4-3]: a
 * DISCONNECT with reason 0x00 discards the will; it is gone from the file
 * too, so no restart brings it back. */
static void test_will_discarded_by_disconnect_stays_gone(void)
{
    char db[128], got[256];
    path_of(db, sizeof db, "will-gone.db");
    remove_db(db);
    int port = 0;
    mqlite_broker *b = broker_on(db, &port);
    mqlite_client *w = watcher(b, port);
    mqlite_client *d = will_client("polite", 60, 0);
    CHECK_EQ(connect_to(b, d, port), 0);
    disconnect(b, d);
    mqlite_client_free(d);
    mqlite_broker_free(b);

    uint64_t first;
    b = broker_on(db, &port);
    CHECK_EQ(mqlite_broker_stat(b, MQLITE_BSTAT_CLIENTS_TOTAL), 2); /* the session stays */
    collect_wills(b, w, port, 1000, got, sizeof got, &first);
    CHECK_STR(got, "");
    mqlite_broker_free(b);
    mqlite_client_free(w);
    remove_db(db);
}

/* Wills whose delay was running when the broker stopped (the clients
 * left with DISCONNECT 0x04, 5.0 [MQTT-3.14.4-3] keeping the will): the
 * time the broker was down counts. 5.0 [MQTT-3.1.3-9]: the one whose
 * session expired meanwhile is published at once after the restart (the
 * session ended first); the other when what is left of its delay ends. */
static void test_pending_will_delay_counts_the_downtime(void)
{
    char db[128], got[256];
    path_of(db, sizeof db, "will-pending.db");
    remove_db(db);
    int port = 0;
    mqlite_broker *b = broker_on(db, &port);
    mqlite_client *w = watcher(b, port);
    mqlite_client *e = will_client("expired", 1, 30);
    mqlite_client *d = will_client("delayed", 60, 2);
    CHECK_EQ(connect_to(b, e, port), 0);
    CHECK_EQ(connect_to(b, d, port), 0);
    mqlite_client_disconnect(e, 0x04);
    mqlite_client_disconnect(d, 0x04);
    uint64_t t0 = now_ms(), first;
    for (int i = 0; i < 20; i++) {
        mqlite_broker_poll(b, 0);
        mqlite_client_poll(e, 2);
        mqlite_client_poll(d, 2);
    }
    mqlite_broker_free(b);
    mqlite_client_free(e);
    mqlite_client_free(d);
    usleep(1200 * 1000);

    b = broker_on(db, &port);
    collect_wills(b, w, port, 400, got, sizeof got, &first);
    CHECK_STR(got, "gone-expired ");
    collect_wills(b, w, port, 1500, got, sizeof got, &first);
    CHECK_STR(got, "gone-delayed ");
    CHECK(first >= t0 + 1900 && first < t0 + 3000);
    mqlite_broker_free(b);
    mqlite_client_free(w);
    remove_db(db);
}

static int sql_int(const char *db, const char *q)
{
    sqlite3 *h = NULL;
    sqlite3_stmt *st = NULL;
    int v = -1;
    if (sqlite3_open(db, &h) == SQLITE_OK && sqlite3_prepare_v2(h, q, -1, &st, NULL) == SQLITE_OK &&
        sqlite3_step(st) == SQLITE_ROW)
        v = sqlite3_column_int(st, 0);
    sqlite3_finalize(st);
    sqlite3_close(h);
    return v;
}

/* A file of schema 1 (no wills table: mqlite before wills were kept) is
 * migrated at open: its sessions load, the wills table is added, and the
 * migration is recorded. */
static void test_schema_1_file_is_migrated(void)
{
    char db[128];
    path_of(db, sizeof db, "schema1.db");
    remove_db(db);
    int port = 0;
    mqlite_broker *b = broker_on(db, &port);
    mqlite_client *s = client("veteran", MQLITE_V311, 1);
    CHECK_EQ(connect_to(b, s, port), 0);
    disconnect(b, s);
    mqlite_broker_free(b);
    /* Back to what schema 1 wrote. */
    sqlite3 *h = NULL;
    CHECK_EQ(sqlite3_open(db, &h), SQLITE_OK);
    CHECK_EQ(sqlite3_exec(h,
                          "DROP TABLE wills; DELETE FROM mqlite_migrations WHERE version > 1;"
                          " PRAGMA user_version = 1;",
                          NULL, NULL, NULL),
             SQLITE_OK);
    sqlite3_close(h);
    CHECK_EQ(sql_int(db, "PRAGMA user_version"), 1);

    b = broker_on(db, &port);
    CHECK_EQ(connect_to(b, s, port), 1); /* the session was loaded */
    disconnect(b, s);
    mqlite_client_free(s);
    mqlite_broker_free(b);
    CHECK_EQ(sql_int(db, "PRAGMA user_version"), 2);
    CHECK_EQ(sql_int(db, "SELECT count(*) FROM mqlite_migrations"), 2);
    CHECK_EQ(sql_int(db, "SELECT count(*) FROM wills"), 0);
    remove_db(db);
}

int main(int argc, char **argv)
{
    snprintf(dir, sizeof dir, "/tmp/mqlite-bpersist-XXXXXX");
    if (!mkdtemp(dir))
        return 2;
    TEST_MAIN_BEGIN(argc, argv);
    RUN(test_restart_keeps_retained_sessions_and_queued_messages);
    RUN(test_session_expired_while_down_is_gone);
    RUN(test_damaged_file_stops_startup_and_is_untouched);
    RUN(test_newer_schema_refused);
    RUN(test_write_failure_stops_the_broker_and_loses_nothing_acknowledged);
    RUN(test_will_survives_a_clean_stop);
    RUN(test_will_survives_a_crash);
    RUN(test_will_discarded_by_disconnect_stays_gone);
    RUN(test_pending_will_delay_counts_the_downtime);
    RUN(test_schema_1_file_is_migrated);
    rmdir(dir);
    TEST_MAIN_END();
}
