/*
 * test_store_crash.c - the client store under SIGKILL, over TCP against
 * mqlite's own broker (a forked child on 127.0.0.1, free port).
 *
 * A publishing process (forked child) numbers its messages "n:incarnation"
 * alternately at QoS 1 and QoS 2 and reports each one to the parent over a
 * pipe as soon as mqlite_client_publish() has returned 0 - that is the
 * acknowledgement the library gives its caller. The parent kills it with
 * SIGKILL at seeded random moments and starts it again on the same store;
 * the last incarnation runs until its queue is empty. A subscriber with a
 * persistent session (never killed) collects what arrives. Afterwards:
 *  - every message whose publish returned 0 arrived (nothing lost), and
 *  - no QoS 2 message arrived twice (MQTT 3.1.1 [MQTT-4.3.3-2], 5.0
 *    [MQTT-4.3.3-10]: exactly once, here across process restarts through
 *    [MQTT-4.4.0-1] re-sends with the original packet identifiers).
 * Messages published but not yet reported when the kill came may or may
 * not arrive; they are counted, not required.
 *
 * Seed: MQLITE_CRASH_SEED (default 1); kills: MQLITE_CRASH_KILLS (default
 * 15, at most 100). Every wait is bounded.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "mqlite.h"
#include "testlib.h"

#define MAX_INC 128
#define MAX_N 400000
#define TOPIC_Q1 "crash/q1"
#define TOPIC_Q2 "crash/q2"

typedef struct rec {
    int32_t n, inc;
} rec;

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

/* ---- the broker: a child running mqlite_broker_run() ---- */

static pid_t start_broker(int *port)
{
    int fds[2];
    if (pipe(fds) != 0)
        abort();
    fflush(NULL);
    pid_t pid = fork();
    if (pid < 0)
        abort();
    if (pid == 0) {
        close(fds[0]);
        mqlite_broker *b = mqlite_broker_new();
        int32_t p = 0;
        if (!b || mqlite_broker_listen(b, "127.0.0.1", 0, &p) != 0)
            _exit(3);
        mqlite_broker_set_int(b, MQLITE_BOPT_SYS_INTERVAL_S, 0);
        if (write(fds[1], &p, sizeof p) != (ssize_t)sizeof p)
            _exit(3);
        close(fds[1]);
        mqlite_broker_run(b);
        _exit(0);
    }
    close(fds[1]);
    int32_t p = 0;
    struct pollfd pf = {fds[0], POLLIN, 0};
    if (poll(&pf, 1, 5000) != 1 || read(fds[0], &p, sizeof p) != (ssize_t)sizeof p)
        p = 0;
    close(fds[0]);
    *port = p;
    return pid;
}

/* ---- the publisher: a child that may die at any moment ---- */

static void drain_pub_events(mqlite_client *c)
{
    const mqlite_event *ev;
    while ((ev = mqlite_client_next_event(c)) != NULL)
        if (mqlite_event_error(ev) && mqlite_event_type(ev) != MQLITE_EVENT_TRACE)
            fprintf(stderr, "publisher: event %d: %s\n", mqlite_event_type(ev),
                    mqlite_event_text(ev));
}

static void publisher(const char *store, int port, int inc, int32_t start, int32_t stop, int wfd)
{
    mqlite_client *c = mqlite_client_new("crash-pub");
    if (!c)
        _exit(3);
    mqlite_client_set_int(c, MQLITE_OPT_PROTOCOL, inc % 2 ? MQLITE_V5 : MQLITE_V311);
    mqlite_client_set_int(c, MQLITE_OPT_CLEAN_START, 0);
    if (inc % 2)
        mqlite_client_set_int(c, MQLITE_OPT_SESSION_EXPIRY_S, 600);
    /* SIGKILL, not a power cut: a written WAL survives it (sync level 1). */
    mqlite_client_set_int(c, MQLITE_OPT_STORE_SYNC, 1);
    if (mqlite_client_set_str(c, MQLITE_OPT_STORE_PATH, store) != 0) {
        fprintf(stderr, "publisher: store: %s\n", mqlite_client_errmsg(c));
        _exit(4);
    }
    if (mqlite_client_connect(c, "127.0.0.1", port) != 0) {
        fprintf(stderr, "publisher: connect: %s\n", mqlite_client_errmsg(c));
        _exit(4);
    }
    uint64_t guard = now_ms() + 30000;
    int32_t n = start;
    while (now_ms() < guard) {
        if (n < stop) {
            char payload[64];
            int len = snprintf(payload, sizeof payload, "%d:%d", (int)n, inc);
            int qos = 1 + (n & 1);
            int32_t rc = mqlite_client_publish(c, qos == 1 ? TOPIC_Q1 : TOPIC_Q2, payload,
                                               (size_t)len, qos, 0, NULL);
            if (rc == 0) {
                rec r = {n, inc};
                if (write(wfd, &r, sizeof r) != (ssize_t)sizeof r)
                    _exit(5);
                n++;
            } else if (rc != MQLITE_ERR_QUEUE_FULL) {
                fprintf(stderr, "publisher: publish: %s\n", mqlite_client_errmsg(c));
                _exit(6);
            }
        }
        /* About two messages per millisecond, with a window in flight. */
        mqlite_client_poll(c, (n & 1) ? 1 : 0);
        drain_pub_events(c);
        if (mqlite_client_state(c) == MQLITE_STATE_IDLE) {
            fprintf(stderr, "publisher: connection ended\n");
            _exit(7);
        }
        if (n >= stop && mqlite_client_queued(c) + mqlite_client_inflight(c) == 0 &&
            mqlite_client_state(c) == MQLITE_STATE_CONNECTED)
            _exit(0);
    }
    _exit(8);
}

/* ---- the parent: subscriber and bookkeeping ---- */

static uint8_t *accepted; /* [inc * MAX_N + n] */
static uint8_t *received;
static int32_t max_n = -1;
static long n_accepted, n_received, dup_q2, bad_payload;

static void read_recs(int rfd)
{
    rec r[256];
    ssize_t got;
    while ((got = read(rfd, r, sizeof r)) > 0)
        for (ssize_t i = 0; i < got / (ssize_t)sizeof(rec); i++) {
            if (r[i].n < 0 || r[i].n >= MAX_N || r[i].inc < 0 || r[i].inc >= MAX_INC)
                continue;
            accepted[(size_t)r[i].inc * MAX_N + (size_t)r[i].n] = 1;
            n_accepted++;
            if (r[i].n > max_n)
                max_n = r[i].n;
        }
}

static void pump_sub(mqlite_client *s, int timeout_ms)
{
    mqlite_client_poll(s, timeout_ms);
    const mqlite_event *ev;
    while ((ev = mqlite_client_next_event(s)) != NULL) {
        if (mqlite_event_type(ev) != MQLITE_EVENT_MESSAGE)
            continue;
        size_t len = 0;
        const char *p = mqlite_event_payload(ev, &len);
        char buf[64];
        int n = -1, inc = -1;
        if (len < sizeof buf) {
            memcpy(buf, p, len);
            buf[len] = 0;
            if (sscanf(buf, "%d:%d", &n, &inc) != 2)
                n = -1;
        }
        if (n < 0 || n >= MAX_N || inc < 0 || inc >= MAX_INC) {
            bad_payload++;
            continue;
        }
        uint8_t *cnt = &received[(size_t)inc * MAX_N + (size_t)n];
        if (*cnt && (n & 1)) {
            dup_q2++;
            fprintf(stderr, "QoS 2 message %d:%d arrived twice\n", n, inc);
        }
        if (*cnt < 255)
            (*cnt)++;
        n_received++;
    }
}

static int all_accepted_received(void)
{
    for (size_t i = 0; i < (size_t)MAX_INC * MAX_N; i++)
        if (accepted[i] && !received[i])
            return 0;
    return 1;
}

/* MQTT 3.1.1 [MQTT-4.3.3-2] [MQTT-4.4.0-1]; 5.0 [MQTT-4.3.3-10]
   [MQTT-4.4.0-1]: see the file comment. */
static void test_store_publisher_sigkilled_loses_nothing_and_duplicates_no_qos2(void)
{
    const char *seed_s = getenv("MQLITE_CRASH_SEED");
    const char *kills_s = getenv("MQLITE_CRASH_KILLS");
    uint64_t seed = seed_s ? strtoull(seed_s, NULL, 10) : 1;
    int kills = kills_s ? atoi(kills_s) : 15;
    if (kills < 1 || kills > 100)
        kills = 15;
    rng_state = seed;
    accepted = calloc((size_t)MAX_INC * MAX_N, 1);
    received = calloc((size_t)MAX_INC * MAX_N, 1);
    if (!accepted || !received)
        abort();

    char dir[] = "/tmp/mqlite-crash-XXXXXX";
    CHECK(mkdtemp(dir) != NULL);
    char store[128];
    snprintf(store, sizeof store, "%s/pub.db", dir);

    int port = 0;
    pid_t broker = start_broker(&port);
    CHECK(port > 0);

    mqlite_client *s = mqlite_client_new("crash-sub");
    mqlite_client_set_int(s, MQLITE_OPT_PROTOCOL, MQLITE_V5);
    mqlite_client_set_int(s, MQLITE_OPT_CLEAN_START, 0);
    mqlite_client_set_int(s, MQLITE_OPT_SESSION_EXPIRY_S, 600);
    CHECK_EQ(mqlite_client_connect(s, "127.0.0.1", port), 0);
    CHECK_EQ(mqlite_client_subscribe(s, "crash/#", 2, NULL), 0);
    int subscribed = 0;
    for (uint64_t end = now_ms() + 5000; !subscribed && now_ms() < end;) {
        mqlite_client_poll(s, 20);
        const mqlite_event *ev;
        while ((ev = mqlite_client_next_event(s)) != NULL)
            if (mqlite_event_type(ev) == MQLITE_EVENT_SUBACK)
                subscribed = 1;
    }
    CHECK(subscribed);

    int pfd[2];
    CHECK_EQ(pipe2(pfd, O_NONBLOCK | O_CLOEXEC), 0);
    int clean_exit = 0;
    for (int k = 0; k <= kills; k++) {
        int last = k == kills;
        int32_t start = max_n + 1;
        int32_t stop = last ? start + 300 : MAX_N - 1;
        fflush(NULL);
        pid_t pid = fork();
        CHECK(pid >= 0);
        if (pid == 0) {
            close(pfd[0]);
            int fl = fcntl(pfd[1], F_GETFL);
            fcntl(pfd[1], F_SETFL, fl & ~O_NONBLOCK);
            publisher(store, port, k, start, stop, pfd[1]);
        }
        int st = 0;
        if (!last) {
            uint64_t until = now_ms() + 10 + rnd() % 240;
            while (now_ms() < until) {
                pump_sub(s, 2);
                read_recs(pfd[0]);
            }
            kill(pid, SIGKILL);
            waitpid(pid, &st, 0);
            CHECK(WIFSIGNALED(st)); /* it was still running: killed, not failed */
        } else {
            uint64_t end = now_ms() + 30000;
            while (waitpid(pid, &st, WNOHANG) == 0 && now_ms() < end) {
                pump_sub(s, 5);
                read_recs(pfd[0]);
            }
            clean_exit = WIFEXITED(st) && WEXITSTATUS(st) == 0;
            if (!clean_exit) {
                kill(pid, SIGKILL);
                waitpid(pid, &st, 0);
            }
        }
        read_recs(pfd[0]);
    }
    CHECK(clean_exit);
    for (uint64_t end = now_ms() + 15000; !all_accepted_received() && now_ms() < end;)
        pump_sub(s, 50);
    pump_sub(s, 200); /* late duplicates, if any, show up now */

    long missing = 0;
    for (size_t i = 0; i < (size_t)MAX_INC * MAX_N; i++)
        if (accepted[i] && !received[i]) {
            if (missing++ < 10)
                fprintf(stderr, "accepted message %zu:%zu never arrived\n", i % MAX_N,
                        i / MAX_N);
        }
    printf("seed %llu, %d kills: %ld accepted, %ld received, %ld missing, %ld QoS 2 "
           "duplicates\n",
           (unsigned long long)seed, kills, n_accepted, n_received, missing, dup_q2);
    CHECK_EQ(missing, 0);
    CHECK_EQ(dup_q2, 0);
    CHECK_EQ(bad_payload, 0);
    CHECK(n_accepted > 100);

    mqlite_client_free(s);
    close(pfd[0]);
    close(pfd[1]);
    kill(broker, SIGKILL);
    waitpid(broker, NULL, 0);
    char b[200];
    const char *sfx[] = {"", "-wal", "-shm"};
    for (int i = 0; i < 3; i++) {
        snprintf(b, sizeof b, "%s%s", store, sfx[i]);
        unlink(b);
    }
    rmdir(dir);
    free(accepted);
    free(received);
}

int main(int argc, char **argv)
{
    TEST_MAIN_BEGIN(argc, argv);
    RUN(test_store_publisher_sigkilled_loses_nothing_and_duplicates_no_qos2);
    TEST_MAIN_END();
}
