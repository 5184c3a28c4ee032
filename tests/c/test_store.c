/*
 * test_store.c - the client's persistent store (MQLITE_OPT_STORE_PATH)
 * through the public ABI, in sans-I/O mode against a scripted server
 * (peer.h). A "crash" is a forked child that does its part and leaves
 * with _exit(): nothing is freed or committed on the way out, exactly as
 * after SIGKILL. The parent then opens the same store in a new client, as
 * a restarted process would, and checks what the server sees.
 */
#define _GNU_SOURCE
#include <fcntl.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "peer.h"

static const int versions[] = {MQLITE_V311, MQLITE_V5};
#define FOR_VERSIONS(v)                                                                            \
    for (int v##_i = 0, v = 0; v##_i < (int)MQ_ARRAY_LEN(versions) && ((v = versions[v##_i]), 1);  \
         v##_i++)

static char tmpdir[256];

static void store_path(char *buf, size_t cap, const char *name)
{
    snprintf(buf, cap, "%s/%s", tmpdir, name);
}

static void remove_store(const char *path)
{
    char b[600];
    unlink(path);
    snprintf(b, sizeof b, "%s-wal", path);
    unlink(b);
    snprintf(b, sizeof b, "%s-shm", path);
    unlink(b);
}

/* A client of level v with the store at `path`, Clean Start 0 (5.0:
 * session expiry 600 s). `id` NULL: the store's identifier. */
static peer *with_store(int v, const char *id, const char *path)
{
    peer *p = peer_new(v, id ? id : "");
    int32_t rc = mqlite_client_set_str(p->c, MQLITE_OPT_STORE_PATH, path);
    if (rc != 0)
        pr_fail(__LINE__, "store %s: %s: %s", path, mqlite_error_name(rc),
                mqlite_client_errmsg(p->c));
    mqlite_client_set_int(p->c, MQLITE_OPT_CLEAN_START, 0);
    if (v == MQLITE_V5)
        mqlite_client_set_int(p->c, MQLITE_OPT_SESSION_EXPIRY_S, 600);
    return p;
}

static int32_t pub(peer *p, const char *topic, const char *payload, int qos)
{
    int32_t pid = -1;
    int32_t rc = mqlite_client_publish(p->c, topic, payload, strlen(payload), qos, 0, &pid);
    if (rc != 0)
        pr_fail(__LINE__, "publish %s: %s: %s", topic, mqlite_error_name(rc),
                mqlite_client_errmsg(p->c));
    return pid;
}

static void srv_ack(peer *p, int type, int32_t pid)
{
    mq_packet k = pk_ack(p->version, type, (uint16_t)pid, 0);
    CHECK_EQ(peer_send(p, &k), 0);
}

static void expect_publish_at(peer *p, const char *topic, int qos, int32_t pid, int dup, int line)
{
    const mq_packet *k = peer_expect_at(p, MQLITE_PKT_PUBLISH, line);
    tl_checks++;
    if (k && (!pr_view_is(k->topic, topic) || k->qos != qos || k->packet_id != pid ||
              k->dup != dup))
        pr_fail(line, "PUBLISH %.*s qos %d id %u dup %d, want %s qos %d id %d dup %d",
                (int)k->topic.len, (const char *)k->topic.p, k->qos, k->packet_id, k->dup, topic,
                qos, (int)pid, dup);
}
#define EXPECT_PUBLISH(p, t, q, id, d) expect_publish_at((p), (t), (q), (id), (d), __LINE__)

static void expect_ack_at(peer *p, int type, int32_t pid, int line)
{
    const mq_packet *k = peer_expect_at(p, type, line);
    tl_checks++;
    if (k && k->packet_id != pid)
        pr_fail(line, "%s id %u, want %d", mqlite_packet_type_name(type), k->packet_id, (int)pid);
}
#define EXPECT_ACK(p, type, id) expect_ack_at((p), (type), (id), __LINE__)

/* Run `part` in a child that ends as if killed; 0 when its checks passed. */
static int in_crashing_child(void (*part)(int v, const char *path, int32_t *ids), int v,
                             const char *path, int32_t *ids)
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
        int before = tl_failures;
        part(v, path, ids);
        ssize_t w = write(fds[1], ids, sizeof(int32_t) * 8);
        (void)w;
        _exit(tl_failures != before ? 1 : 0); /* no free, no commit: a crash */
    }
    close(fds[1]);
    ssize_t r = read(fds[0], ids, sizeof(int32_t) * 8);
    close(fds[0]);
    int st = 0;
    waitpid(pid, &st, 0);
    return r == (ssize_t)(sizeof(int32_t) * 8) && WIFEXITED(st) && WEXITSTATUS(st) == 0 ? 0 : -1;
}

/* Child: four messages accepted, all sent; C past PUBREC (PUBREL sent),
 * D acknowledged, A and B unacknowledged; E accepted while offline. */
static void publish_then_crash(int v, const char *path, int32_t *ids)
{
    peer *p = with_store(v, "resume", path);
    PEER_CONNECT(p, 0);
    ids[0] = pub(p, "r/a", "A", 1);
    ids[1] = pub(p, "r/b", "B", 2);
    ids[2] = pub(p, "r/c", "C", 2);
    ids[3] = pub(p, "r/d", "D", 1);
    for (int i = 0; i < 4; i++)
        PEER_EXPECT(p, MQLITE_PKT_PUBLISH);
    srv_ack(p, MQLITE_PKT_PUBREC, ids[2]);
    EXPECT_ACK(p, MQLITE_PKT_PUBREL, ids[2]);
    srv_ack(p, MQLITE_PKT_PUBACK, ids[3]);
    peer_cut(p);
    ids[4] = pub(p, "r/e", "E", 2);
}

/* MQTT 3.1.1 [MQTT-4.4.0-1], 5.0 [MQTT-4.4.0-1]: a process restarted on
   its store resumes the session: the PUBREL of the flow past PUBREC, then
   each unacknowledged PUBLISH with DUP 1 and its original identifier, then
   the message that was only queued; nothing acknowledged comes back. */
static void test_store_restarted_process_resumes_outgoing(void)
{
    FOR_VERSIONS(v)
    {
        char path[300];
        store_path(path, sizeof path, "out.db");
        remove_store(path);
        int32_t ids[8] = {0};
        CHECK_EQ(in_crashing_child(publish_then_crash, v, path, ids), 0);
        peer *p = with_store(v, NULL, path);
        CHECK_EQ(mqlite_client_queued(p->c) + mqlite_client_inflight(p->c), 4);
        CHECK_EQ(mqlite_client_start(p->c), 0);
        const mq_packet *k = PEER_EXPECT(p, MQLITE_PKT_CONNECT);
        CHECK(k && k->clean_start == 0 && pr_view_is(k->client_id, "resume"));
        PEER_QUIET(p);
        mq_packet ack = pk_connack(v, 1, 0);
        CHECK_EQ(peer_send(p, &ack), 0);
        PEER_EVENT(p, MQLITE_EVENT_CONNECTED);
        EXPECT_ACK(p, MQLITE_PKT_PUBREL, ids[2]);
        EXPECT_PUBLISH(p, "r/a", 1, ids[0], 1);
        EXPECT_PUBLISH(p, "r/b", 2, ids[1], 1);
        EXPECT_PUBLISH(p, "r/e", 2, ids[4], 0);
        PEER_QUIET(p);
        srv_ack(p, MQLITE_PKT_PUBACK, ids[0]);
        srv_ack(p, MQLITE_PKT_PUBREC, ids[1]);
        EXPECT_ACK(p, MQLITE_PKT_PUBREL, ids[1]);
        srv_ack(p, MQLITE_PKT_PUBCOMP, ids[1]);
        srv_ack(p, MQLITE_PKT_PUBCOMP, ids[2]);
        srv_ack(p, MQLITE_PKT_PUBREC, ids[4]);
        EXPECT_ACK(p, MQLITE_PKT_PUBREL, ids[4]);
        srv_ack(p, MQLITE_PKT_PUBCOMP, ids[4]);
        CHECK_EQ(mqlite_client_queued(p->c) + mqlite_client_inflight(p->c), 0);
        peer_free(p);
        /* Completed flows are gone from the file too. */
        p = with_store(v, NULL, path);
        CHECK_EQ(mqlite_client_queued(p->c) + mqlite_client_inflight(p->c), 0);
        peer_free(p);
        remove_store(path);
    }
}

/* Child: a QoS 2 message arrives and is handed to the application; the
 * PUBREC goes out; the process dies before the PUBREL. */
static void receive_then_crash(int v, const char *path, int32_t *ids)
{
    peer *p = with_store(v, "rx", path);
    PEER_CONNECT(p, 0);
    mq_packet k = pk_publish(v, "in/x", "once", 2, 7);
    CHECK_EQ(peer_send(p, &k), 0);
    const mqlite_event *e = PEER_EVENT(p, MQLITE_EVENT_MESSAGE);
    CHECK(e && mqlite_event_packet_id(e) == 7);
    EXPECT_ACK(p, MQLITE_PKT_PUBREC, 7);
    ids[0] = 7;
}

/* MQTT 3.1.1 [MQTT-4.3.3-2], 5.0 [MQTT-4.3.3-10]: until the PUBREL, a
   re-sent PUBLISH with the same identifier is acknowledged with PUBREC and
   not delivered again, also by a process restarted on its store. */
static void test_store_incoming_qos2_not_delivered_twice_after_restart(void)
{
    FOR_VERSIONS(v)
    {
        char path[300];
        store_path(path, sizeof path, "in.db");
        remove_store(path);
        int32_t ids[8] = {0};
        CHECK_EQ(in_crashing_child(receive_then_crash, v, path, ids), 0);
        peer *p = with_store(v, NULL, path);
        PEER_CONNECT(p, 1);
        mq_packet k = pk_publish(v, "in/x", "once", 2, 7);
        k.dup = 1;
        CHECK_EQ(peer_send(p, &k), 0);
        EXPECT_ACK(p, MQLITE_PKT_PUBREC, 7);
        PEER_NO_EVENT(p);
        srv_ack(p, MQLITE_PKT_PUBREL, 7);
        EXPECT_ACK(p, MQLITE_PKT_PUBCOMP, 7);
        /* After PUBREL the identifier is free: the same id is a new message. */
        k.dup = 0;
        CHECK_EQ(peer_send(p, &k), 0);
        PEER_EVENT(p, MQLITE_EVENT_MESSAGE);
        peer_free(p);
        remove_store(path);
    }
}

/* One store keeps one client's session: another identifier is refused
 * with a message naming the file and its owner. */
static void test_store_refuses_another_client_id(void)
{
    char path[300];
    store_path(path, sizeof path, "owner.db");
    remove_store(path);
    peer *p = with_store(MQLITE_V311, "alice", path);
    peer_free(p);
    mqlite_client *c = mqlite_client_new("bob");
    CHECK_EQ(mqlite_client_set_str(c, MQLITE_OPT_STORE_PATH, path), MQLITE_ERR_CLIENT_ID);
    CHECK_HAS(mqlite_client_errmsg(c), "alice");
    CHECK_HAS(mqlite_client_errmsg(c), path);
    /* A new store needs an identifier to belong to. */
    mqlite_client *anon = mqlite_client_new("");
    char other[300];
    store_path(other, sizeof other, "anon.db");
    remove_store(other);
    CHECK_EQ(mqlite_client_set_str(anon, MQLITE_OPT_STORE_PATH, other), MQLITE_ERR_CLIENT_ID);
    mqlite_client_free(anon);
    mqlite_client_free(c);
    remove_store(path);
    remove_store(other);
}

/* A second handle on the same file is refused while the first holds it. */
static void test_store_one_owner_at_a_time(void)
{
    char path[300];
    store_path(path, sizeof path, "lock.db");
    remove_store(path);
    peer *p = with_store(MQLITE_V311, "one", path);
    mqlite_client *c = mqlite_client_new("one");
    CHECK_EQ(mqlite_client_set_str(c, MQLITE_OPT_STORE_PATH, path), MQLITE_ERR_IO);
    CHECK_HAS(mqlite_client_errmsg(c), "in use");
    mqlite_client_free(c);
    peer_free(p);
    remove_store(path);
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

static void write_file(const char *path, const void *p, size_t n)
{
    FILE *f = fopen(path, "wb");
    if (!f)
        abort();
    fwrite(p, 1, n, f);
    fclose(f);
}

/* A file that is not a store (garbage, a truncated database) is refused
 * with the path and "untouched" in the message, and left byte for byte as
 * it was; no -wal/-shm files appear next to it. */
static void test_store_damaged_file_refused_and_untouched(void)
{
    char path[300], wal[320];
    store_path(path, sizeof path, "bad.db");
    snprintf(wal, sizeof wal, "%s-wal", path);
    static char before[1 << 16], after[1 << 16];
    /* garbage */
    remove_store(path);
    for (size_t i = 0; i < 5000; i++)
        before[i] = (char)(i * 7 + 3);
    write_file(path, before, 5000);
    mqlite_client *c = mqlite_client_new("x");
    CHECK_EQ(mqlite_client_set_str(c, MQLITE_OPT_STORE_PATH, path), MQLITE_ERR_IO);
    CHECK_HAS(mqlite_client_errmsg(c), path);
    CHECK_HAS(mqlite_client_errmsg(c), "untouched");
    CHECK_MEM(after, slurp(path, after, sizeof after), before, 5000);
    CHECK(access(wal, F_OK) != 0);
    /* truncated: a real store cut in the middle of a page */
    remove_store(path);
    peer *p = with_store(MQLITE_V311, "x", path);
    for (int i = 0; i < 20; i++)
        pub(p, "t", "a payload that takes some room in the file", 1);
    peer_free(p);
    unlink(wal); /* after a clean close the WAL is checkpointed */
    size_t n = slurp(path, before, sizeof before);
    CHECK(n > 3000);
    write_file(path, before, n - 1000);
    CHECK_EQ(mqlite_client_set_str(c, MQLITE_OPT_STORE_PATH, path), MQLITE_ERR_IO);
    CHECK_HAS(mqlite_client_errmsg(c), "truncated");
    CHECK_MEM(after, slurp(path, after, sizeof after), before, n - 1000);
    mqlite_client_free(c);
    remove_store(path);
}

/* A store that cannot write any more (here: the file size limit, as a full
 * disk would) makes publish fail with MQLITE_ERR_IO and the file's name;
 * it stays failed; every message accepted before is in the file. */
static void test_store_write_failure_is_an_error_not_a_loss(void)
{
    char path[300];
    store_path(path, sizeof path, "full.db");
    remove_store(path);
    int fds[2];
    CHECK_EQ(pipe(fds), 0);
    fflush(NULL);
    pid_t pid = fork();
    if (pid == 0) {
        close(fds[0]);
        signal(SIGXFSZ, SIG_IGN);
        peer *p = with_store(MQLITE_V311, "full", path);
        struct rlimit rl = {1u << 20, 1u << 20};
        setrlimit(RLIMIT_FSIZE, &rl);
        static char big[60000];
        memset(big, 'b', sizeof big);
        int32_t ok = 0, rc = 0;
        for (int i = 0; i < 100 && rc == 0; i++)
            if ((rc = mqlite_client_publish(p->c, "t", big, sizeof big, 1, 0, NULL)) == 0)
                ok++;
        int good = rc == MQLITE_ERR_IO && strstr(mqlite_client_errmsg(p->c), path) &&
                   mqlite_client_publish(p->c, "t", "x", 1, 1, 0, NULL) == MQLITE_ERR_IO &&
                   mqlite_client_queued(p->c) == ok;
        if (!good)
            fprintf(stderr, "publish: %s\n", mqlite_client_errmsg(p->c));
        int32_t out[2] = {ok, good};
        ssize_t w = write(fds[1], out, sizeof out);
        (void)w;
        _exit(0);
    }
    close(fds[1]);
    int32_t in[2] = {0, 0};
    CHECK_EQ(read(fds[0], in, sizeof in), (ssize_t)sizeof in);
    close(fds[0]);
    waitpid(pid, NULL, 0);
    CHECK(in[1]);
    CHECK(in[0] > 0);
    peer *p = with_store(MQLITE_V311, NULL, path);
    CHECK_EQ(mqlite_client_queued(p->c), in[0]);
    peer_free(p);
    remove_store(path);
}

int main(int argc, char **argv)
{
    snprintf(tmpdir, sizeof tmpdir, "/tmp/mqlite-store-XXXXXX");
    if (!mkdtemp(tmpdir))
        return 2;
    TEST_MAIN_BEGIN(argc, argv);
    RUN(test_store_restarted_process_resumes_outgoing);
    RUN(test_store_incoming_qos2_not_delivered_twice_after_restart);
    RUN(test_store_refuses_another_client_id);
    RUN(test_store_one_owner_at_a_time);
    RUN(test_store_damaged_file_refused_and_untouched);
    RUN(test_store_write_failure_is_an_error_not_a_loss);
    rmdir(tmpdir);
    TEST_MAIN_END();
}
