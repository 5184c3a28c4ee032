/*
 * test_broker_persist_crash.c - the broker under SIGKILL with its
 * persistence file (sync `always`).
 *
 * The broker runs in a forked child on 127.0.0.1 (a free port, kept across
 * restarts). Two publishers (MQTT 5.0 and 3.1.1) stream numbered messages,
 * alternately QoS 1 and QoS 2, each with at most 40 unfinished; two
 * subscribers (3.1.1 and 5.0) hold persistent sessions with a QoS 2
 * subscription. All are mqlite clients with persistent sessions that
 * reconnect on their own. The parent SIGKILLs the
 * broker at seeded random moments (MQLITE_CRASH_SEED, default 1) at least
 * 20 times (MQLITE_CRASH_KILLS) and starts it again on the same file at
 * once. Afterwards:
 *  - every message the broker acknowledged (PUBACK, or PUBREC then
 *    PUBCOMP: the publisher's PUBLISHED event without error) reached the
 *    subscriber: 3.1.1 [MQTT-3.1.2-5] / 5.0 [MQTT-3.1.2-5] (messages for a
 *    session are kept) and [MQTT-4.4.0-1] (re-sent after reconnecting),
 *    here across broker crashes;
 *  - no QoS 2 message reached the subscriber twice: 3.1.1 [MQTT-4.3.3-2],
 *    5.0 [MQTT-4.3.3-10] on both hops.
 * Bounded: about 10 s (the final drain gives up after 30 s).
 */
#define _GNU_SOURCE
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "mqlite.h"
#include "testlib.h"

#define MAX_MSGS 200000
#define WINDOW 40
#define NPUB 2
#define NSUB 2

static uint64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

static uint64_t rng_state;
static uint32_t rnd(void)
{
    rng_state = rng_state * 6364136223846793005ull + 1442695040888963407ull;
    return (uint32_t)(rng_state >> 33);
}

/* The broker child; returns its pid, *port set (0 on failure). */
static pid_t start_broker(const char *db, int *port)
{
    int fds[2];
    if (pipe(fds) != 0)
        abort();
    fflush(NULL);
    pid_t pid = fork();
    if (pid < 0)
        abort();
    if (pid == 0) {
        /* The parent's client sockets are not the broker's to keep. */
        for (int fd = 3; fd < 1024; fd++)
            if (fd != fds[1])
                close(fd);
        mqlite_broker *b = mqlite_broker_new();
        if (!b)
            _exit(3);
        mqlite_broker_set_int(b, MQLITE_BOPT_SYS_INTERVAL_S, 0);
        mqlite_broker_set_int(b, MQLITE_BOPT_LOG_LEVEL, MQLITE_LOG_ERROR);
        mqlite_broker_set_int(b, MQLITE_BOPT_PERSISTENCE_SYNC, MQLITE_PERSIST_SYNC_ALWAYS);
        /* The queue limit drops messages for a subscriber that is still
         * reconnecting (by design, counted as dropped): this test is about
         * crashes, so no limit. */
        mqlite_broker_set_int(b, MQLITE_BOPT_MAX_QUEUED, 0);
        if (mqlite_broker_set_str(b, MQLITE_BOPT_PERSISTENCE_FILE, db) != 0) {
            fprintf(stderr, "broker: %s\n", mqlite_broker_errmsg(b));
            _exit(4);
        }
        int32_t p = 0;
        for (int i = 0; i < 100 && mqlite_broker_listen(b, "127.0.0.1", *port, &p) != 0; i++)
            usleep(20000);
        if (p <= 0 || write(fds[1], &p, sizeof p) != (ssize_t)sizeof p)
            _exit(5);
        close(fds[1]);
        mqlite_broker_run(b);
        _exit(0);
    }
    close(fds[1]);
    int32_t p = 0;
    struct pollfd pf = {fds[0], POLLIN, 0};
    if (poll(&pf, 1, 10000) != 1 || read(fds[0], &p, sizeof p) != (ssize_t)sizeof p)
        p = 0;
    close(fds[0]);
    *port = p;
    return pid;
}

static mqlite_client *client(const char *id, int version)
{
    mqlite_client *c = mqlite_client_new(id);
    mqlite_client_set_int(c, MQLITE_OPT_PROTOCOL, version);
    mqlite_client_set_int(c, MQLITE_OPT_CLEAN_START, 0);
    if (version == MQLITE_V5)
        mqlite_client_set_int(c, MQLITE_OPT_SESSION_EXPIRY_S, 3600);
    mqlite_client_set_int(c, MQLITE_OPT_RECONNECT, 1);
    mqlite_client_set_int(c, MQLITE_OPT_RECONNECT_MIN_MS, 20);
    mqlite_client_set_int(c, MQLITE_OPT_RECONNECT_MAX_MS, 200);
    mqlite_client_set_int(c, MQLITE_OPT_CONNECT_TIMEOUT_MS, 2000);
    mqlite_client_set_int(c, MQLITE_OPT_KEEPALIVE_S, 5);
    return c;
}

static int32_t pid_to_n[NPUB][65536];
static uint8_t *acked[NPUB], *received[NSUB][NPUB];
static int32_t next_n[NPUB];
/* Distinct messages of publisher pi that subscriber si has seen. */
static int32_t seen[NSUB][NPUB];
/* A publisher runs at most LAG messages ahead of the slower subscriber, so
 * the backlog left when the kills end stays small however slow the disk
 * (every delivery waits for an fsync with sync `always`) and the drain
 * below ends in seconds, not after its deadline. */
#define LAG 2000

static int lagging(int pi)
{
    for (int si = 0; si < NSUB; si++)
        if (next_n[pi] - seen[si][pi] >= LAG)
            return 1;
    return 0;
}
static long n_acked, n_received, dup_q2, lost_events;
static int publishing = 1;

static void pump_pub(mqlite_client *p, int pi)
{
    while (publishing && next_n[pi] < MAX_MSGS && !lagging(pi) &&
           mqlite_client_queued(p) + mqlite_client_inflight(p) < WINDOW &&
           mqlite_client_state(p) == MQLITE_STATE_CONNECTED) {
        char msg[32];
        int len = snprintf(msg, sizeof msg, "%d:%d", pi, (int)next_n[pi]);
        int qos = 1 + (next_n[pi] & 1);
        int32_t pid = 0;
        if (mqlite_client_publish(p, "cr/t", msg, (size_t)len, qos, 0, &pid) != 0)
            break;
        pid_to_n[pi][pid & 0xffff] = next_n[pi]++;
    }
    mqlite_client_poll(p, 0);
    const mqlite_event *ev;
    while ((ev = mqlite_client_next_event(p)) != NULL) {
        int t = mqlite_event_type(ev);
        if (t == MQLITE_EVENT_PUBLISHED && mqlite_event_error(ev) == 0) {
            int32_t n = pid_to_n[pi][mqlite_event_packet_id(ev) & 0xffff];
            if (!acked[pi][n]) {
                acked[pi][n] = 1;
                n_acked++;
            }
        } else if (t == MQLITE_EVENT_PUBLISH_LOST ||
                   (t == MQLITE_EVENT_PUBLISHED && mqlite_event_error(ev))) {
            lost_events++;
        }
    }
}

static void pump_sub(mqlite_client *s, int si)
{
    mqlite_client_poll(s, 1);
    const mqlite_event *ev;
    while ((ev = mqlite_client_next_event(s)) != NULL) {
        if (mqlite_event_type(ev) != MQLITE_EVENT_MESSAGE)
            continue;
        size_t len = 0;
        const char *p = mqlite_event_payload(ev, &len);
        char buf[32];
        if (len == 0 || len >= sizeof buf)
            continue;
        memcpy(buf, p, len);
        buf[len] = 0;
        int pi = -1, n = -1;
        if (sscanf(buf, "%d:%d", &pi, &n) != 2 || pi < 0 || pi >= NPUB || n < 0 ||
            n >= MAX_MSGS)
            continue;
        uint8_t *r = &received[si][pi][n];
        if (*r && (n & 1)) {
            dup_q2++;
            fprintf(stderr, "QoS 2 message %d:%d arrived twice at subscriber %d\n", pi, n, si);
        }
        if (!*r)
            seen[si][pi]++;
        if (*r < 255)
            (*r)++;
        n_received++;
    }
}

static void pump_all(mqlite_client **p, mqlite_client **s)
{
    for (int pi = 0; pi < NPUB; pi++)
        pump_pub(p[pi], pi);
    for (int si = 0; si < NSUB; si++)
        pump_sub(s[si], si);
}

static long unfinished(mqlite_client **p)
{
    long n = 0;
    for (int pi = 0; pi < NPUB; pi++)
        n += mqlite_client_queued(p[pi]) + mqlite_client_inflight(p[pi]);
    return n;
}

static long missing_count(int print)
{
    long missing = 0;
    for (int si = 0; si < NSUB; si++)
        for (int pi = 0; pi < NPUB; pi++)
            for (int32_t n = 0; n < next_n[pi]; n++)
                if (acked[pi][n] && !received[si][pi][n] && missing++ < 10 && print)
                    fprintf(stderr, "acknowledged message %d:%d never reached subscriber %d\n",
                            pi, (int)n, si);
    return missing;
}

static void test_broker_sigkilled_loses_no_acknowledged_message_and_duplicates_no_qos2(void)
{
    const char *seed_s = getenv("MQLITE_CRASH_SEED");
    const char *kills_s = getenv("MQLITE_CRASH_KILLS");
    uint64_t seed = seed_s ? strtoull(seed_s, NULL, 10) : 1;
    int kills = kills_s ? atoi(kills_s) : 20;
    if (kills < 1 || kills > 200)
        kills = 20;
    rng_state = seed;
    for (int pi = 0; pi < NPUB; pi++) {
        if (!(acked[pi] = calloc(MAX_MSGS, 1)))
            abort();
        for (int si = 0; si < NSUB; si++)
            if (!(received[si][pi] = calloc(MAX_MSGS, 1)))
                abort();
    }
    char dir[] = "/tmp/mqlite-bcrash-XXXXXX";
    CHECK(mkdtemp(dir) != NULL);
    char db[128];
    snprintf(db, sizeof db, "%s/broker.db", dir);

    int port = 0;
    pid_t broker = start_broker(db, &port);
    CHECK(port > 0);
    mqlite_client *s[NSUB] = {client("cr-sub-0", MQLITE_V311), client("cr-sub-1", MQLITE_V5)};
    mqlite_client *p[NPUB] = {client("cr-pub-0", MQLITE_V5), client("cr-pub-1", MQLITE_V311)};
    for (int si = 0; si < NSUB; si++) {
        CHECK_EQ(mqlite_client_connect(s[si], "127.0.0.1", port), 0);
        CHECK_EQ(mqlite_client_subscribe(s[si], "cr/#", 2, NULL), 0);
        int subscribed = 0;
        for (uint64_t end = now_ms() + 5000; !subscribed && now_ms() < end;) {
            mqlite_client_poll(s[si], 10);
            const mqlite_event *ev;
            while ((ev = mqlite_client_next_event(s[si])) != NULL)
                subscribed |= mqlite_event_type(ev) == MQLITE_EVENT_SUBACK;
        }
        CHECK(subscribed);
    }
    for (int pi = 0; pi < NPUB; pi++)
        CHECK_EQ(mqlite_client_connect(p[pi], "127.0.0.1", port), 0);

    int restarts_ok = 1;
    for (int k = 0; k < kills; k++) {
        uint64_t until = now_ms() + 80 + rnd() % 320;
        while (now_ms() < until) {
            pump_all(p, s);
        }
        kill(broker, SIGKILL);
        waitpid(broker, NULL, 0);
        int again = port;
        broker = start_broker(db, &again);
        if (again != port) {
            restarts_ok = 0;
            break;
        }
    }
    CHECK(restarts_ok);
    /* Let everything finish. */
    publishing = 0;
    for (uint64_t end = now_ms() + 30000; now_ms() < end;) {
        pump_all(p, s);
        if (unfinished(p) == 0 && missing_count(0) == 0)
            break;
    }
    for (uint64_t end = now_ms() + 200; now_ms() < end;)
        for (int si = 0; si < NSUB; si++)
            pump_sub(s[si], si); /* late duplicates, if any */
    long missing = missing_count(1);
    if (missing || unfinished(p)) {
        /* What each client was doing when the wait ended. */
        mqlite_client *all[NPUB + NSUB] = {p[0], p[1], s[0], s[1]};
        for (int i = 0; i < NPUB + NSUB; i++)
            fprintf(stderr, "%s %d: state %d, %d queued, %d in flight, last error: %s\n",
                    i < NPUB ? "publisher" : "subscriber", i < NPUB ? i : i - NPUB,
                    (int)mqlite_client_state(all[i]), (int)mqlite_client_queued(all[i]),
                    (int)mqlite_client_inflight(all[i]), mqlite_client_errmsg(all[i]));
    }
    printf("seed %llu, %d broker kills, %d publishers, %d subscribers: %d published, %ld "
           "acknowledged, %ld received, %ld missing, %ld QoS 2 duplicates, %ld lost events\n",
           (unsigned long long)seed, kills, NPUB, NSUB, (int)(next_n[0] + next_n[1]), n_acked,
           n_received, missing, dup_q2, lost_events);
    CHECK_EQ(missing, 0);
    CHECK_EQ(dup_q2, 0);
    CHECK_EQ(lost_events, 0); /* the broker never forgot a session */
    CHECK(n_acked > 200);
    CHECK_EQ(unfinished(p), 0);

    for (int i = 0; i < NPUB; i++)
        mqlite_client_free(p[i]);
    for (int i = 0; i < NSUB; i++)
        mqlite_client_free(s[i]);
    kill(broker, SIGKILL);
    waitpid(broker, NULL, 0);
    char b[200];
    const char *sfx[] = {"", "-wal", "-shm"};
    for (int i = 0; i < 3; i++) {
        snprintf(b, sizeof b, "%s%s", db, sfx[i]);
        unlink(b);
    }
    rmdir(dir);
    for (int pi = 0; pi < NPUB; pi++) {
        free(acked[pi]);
        for (int si = 0; si < NSUB; si++)
            free(received[si][pi]);
    }
}

int main(int argc, char **argv)
{
    TEST_MAIN_BEGIN(argc, argv);
    RUN(test_broker_sigkilled_loses_no_acknowledged_message_and_duplicates_no_qos2);
    TEST_MAIN_END();
}
