/*
 * test_broker_auth.c - authentication, access control and limits of the
 * embedded broker: password files (mosquitto's $7$ / $6$), allow_anonymous,
 * ACL files and rules on PUBLISH / SUBSCRIBE / delivery / retained / wills,
 * the application's pulled authentication requests, MQTT 5.0 enhanced
 * authentication with SCRAM-SHA-256 (and re-authentication), connection
 * limits, the per-address rate, slow consumers, and what reaches the log.
 */
#include "test_broker_security.h"

#include "broker/passwd.h"

/* A password file with the given "user:password" pairs ($7$ unless the
 * password starts with '6:' for $6$). */
static const char *pwfile(const char *name, const char *const *pairs, int n, int scram)
{
    char text[8192] = "# made by test_broker_auth\n";
    for (int i = 0; i < n; i++) {
        const char *colon = strchr(pairs[i], ':');
        char user[64];
        snprintf(user, sizeof user, "%.*s", (int)(colon - pairs[i]), pairs[i]);
        const char *pw = colon + 1;
        int kind = scram ? MQ_PW_SCRAM_SHA256 : MQ_PW_PBKDF2;
        if (!scram && strncmp(pw, "6:", 2) == 0) {
            kind = MQ_PW_SHA512;
            pw += 2;
        }
        char line[MQ_PW_LINE_MAX];
        if (mq_pw_make_line(line, sizeof line, user, pw, strlen(pw), kind, 0))
            abort();
        strcat(text, line);
        strcat(text, "\n");
    }
    return ts_write(name, text);
}

static tc *connect_user(mqlite_broker *b, int port, int v, const char *id, const char *user,
                        const char *pass, int expect)
{
    mq_packet p = pk_connect(id, 1, 60);
    if (user) {
        p.has_username = 1;
        p.username = mq_view_cstr(user);
    }
    if (pass) {
        p.has_password = 1;
        p.password = mq_view_cstr(pass);
    }
    return tc_connect_pkt(b, port, v, &p, expect);
}

/* ---- password files ---- */

/* mosquitto's formats: $7$ (PBKDF2-SHA512) and $6$ (salted SHA-512)
 * accepted with the right password; a wrong password, an unknown user or
 * a missing password get 0x86 (5.0) / 0x04 (3.1.1). With a password file
 * and no allow_anonymous, anonymous clients are refused (0x87 / 0x05). */
static void test_password_file_checks(void)
{
    int port;
    mqlite_broker *b = tb_new(&port);
    const char *pairs[] = {"alice:secret", "bob:6:old-style"};
    CHECK_EQ(mqlite_broker_set_str(b, MQLITE_BOPT_PASSWORD_FILE, pwfile("pw", pairs, 2, 0)), 0);
    CHECK_EQ(mqlite_broker_get_int(b, MQLITE_BOPT_ALLOW_ANONYMOUS), 0);
    for (int v = MQLITE_V311; v <= MQLITE_V5; v++) {
        int bad = v == MQLITE_V5 ? 0x86 : 0x04, anon = v == MQLITE_V5 ? 0x87 : 0x05;
        tc_disconnect(connect_user(b, port, v, "a", "alice", "secret", 0));
        tc_disconnect(connect_user(b, port, v, "b", "bob", "old-style", 0));
        tc_free(connect_user(b, port, v, "a", "alice", "Secret", bad));
        tc_free(connect_user(b, port, v, "a", "alice", NULL, bad));
        tc_free(connect_user(b, port, v, "c", "carol", "secret", bad));
        tc_free(connect_user(b, port, v, "n", NULL, NULL, anon));
    }
    CHECK_EQ(mqlite_broker_stat(b, MQLITE_BSTAT_AUTH_FAILED), 8);
    /* allow_anonymous set explicitly wins over the default. */
    mqlite_broker_set_int(b, MQLITE_BOPT_ALLOW_ANONYMOUS, 1);
    tc_disconnect(connect_user(b, port, MQLITE_V311, "n", NULL, NULL, 0));
    mqlite_broker_free(b);
}

/* A file mosquitto_passwd wrote (format fixed in its sources): accepted
 * unchanged. The vector was made with Debian's mosquitto_passwd 2.0.11:
 * `mosquitto_passwd -c -b f user pass1` and `-H sha512 -b f old pass2`. */
static void test_password_file_from_mosquitto_passwd(void)
{
    int port;
    mqlite_broker *b = tb_new(&port);
    const char *file = ts_write(
        "mosq.pw",
        "user:$7$101$GNVIt4pG1OgY/q28$H6rhSGyis0Hkb0PhJ9vP50pUTvIQqlw9TVuJMuH4myC1v1IPOwUo6oq3n6ja"
        "hdC5hgSBMukKdT9sgk20aLPTPA==\n"
        "old:$6$fYzurJuywfTFRA4Z$8Hx6oamtnBBfUhQFO7ht3hqKyFiNEeqGhFb8pDSkMwCmJ9/W5BJIrinl1Ug6KIfZt"
        "2zHu+JcuXl52ic2UKz5kg==\n"
        "broken:$7$101$short$short\n"
        "plain:text\n"
        "no-colon-line\n");
    mqlite_broker_set_int(b, MQLITE_BOPT_LOG_LEVEL, 0);
    CHECK_EQ(mqlite_broker_set_str(b, MQLITE_BOPT_PASSWORD_FILE, file), 0);
    tc_disconnect(connect_user(b, port, MQLITE_V311, "u", "user", "secret", 0));
    tc_free(connect_user(b, port, MQLITE_V311, "u", "user", "secre", 4));
    tc_disconnect(connect_user(b, port, MQLITE_V311, "o", "old", "pw2", 0));
    tc_free(connect_user(b, port, MQLITE_V311, "p", "plain", "text", 4));
    tc_free(connect_user(b, port, MQLITE_V311, "x", "broken", "short", 4));
    CHECK_EQ(mqlite_broker_set_str(b, MQLITE_BOPT_PASSWORD_FILE, "/nonexistent/pw"),
             MQLITE_ERR_IO);
    /* A failed reload keeps what was loaded. */
    tc_disconnect(connect_user(b, port, MQLITE_V311, "u", "user", "secret", 0));
    mqlite_broker_free(b);
}

/* Secrets never reach the log; a failed login is logged with client id
 * and address only. */
static void test_failed_login_log_has_no_secrets(void)
{
    int port;
    mqlite_broker *b = tb_new(&port);
    const char *pairs[] = {"alice:right-password"};
    mqlite_broker_set_str(b, MQLITE_BOPT_PASSWORD_FILE, pwfile("pw2", pairs, 1, 0));
    mqlite_broker_set_int(b, MQLITE_BOPT_LOG_LEVEL, MQLITE_LOG_DEBUG);
    tlog lg;
    tlog_start(&lg);
    tc_free(connect_user(b, port, MQLITE_V5, "login-1", "alice", "Wrong-Pa55word", 0x86));
    tc_disconnect(connect_user(b, port, MQLITE_V5, "login-2", "alice", "right-password", 0));
    tb_run(b, 20);
    mqlite_broker_set_int(b, MQLITE_BOPT_LOG_LEVEL, MQLITE_LOG_ERROR);
    char *log = tlog_stop(&lg);
    CHECK(strstr(log, "Wrong-Pa55word") == NULL);
    CHECK(strstr(log, "right-password") == NULL);
    const char *line = strstr(log, "refused client \"login-1\" from 127.0.0.1:");
    CHECK(line != NULL);
    if (line) {
        const char *eol = strchr(line, '\n');
        char one[512];
        snprintf(one, sizeof one, "%.*s", (int)(eol ? eol - line : 100), line);
        CHECK(strstr(one, "alice") == NULL); /* not even the user name */
    }
    free(log);
    mqlite_broker_free(b);
}

/* ---- ACL ---- */

static const char acl_text[] =
    "# anonymous clients\n"
    "topic read public/#\n"
    "\n"
    "user alice\n"
    "topic readwrite alice/#\n"
    "topic read shared/#\n"
    "topic write shared/in\n"
    "topic deny shared/secret\n"
    "topic read $SYS/broker/clients/#\n"
    "\n"
    "user bob\n"
    "topic shared/#\n"
    "\n"
    "pattern readwrite clients/%c/#\n"
    "pattern read users/%u/inbox\n";

/* MQTT 5.0 3.4.2.1 / 3.5.2.1: a denied QoS 1/2 PUBLISH gets PUBACK /
 * PUBREC 0x87; 3.1.1 has no code: acknowledged and dropped (mosquitto). */
static void test_acl_publish(void)
{
    int port;
    mqlite_broker *b = tb_new(&port);
    CHECK_EQ(mqlite_broker_set_str(b, MQLITE_BOPT_ACL_FILE, ts_write("acl", acl_text)), 0);
    tc *sub = connect_user(b, port, MQLITE_V5, "watch", "bob", NULL, 0);
    CHECK_EQ(tc_subscribe(sub, "shared/#", 2), 2);
    for (int v = MQLITE_V311; v <= MQLITE_V5; v++) {
        tc *a = connect_user(b, port, v, "a1", "alice", NULL, 0);
        mq_packet k;
        mq_packet p = pk_publish("shared/in", "ok", 1, 0, 1);
        tc_send(a, &p);
        CHECK(tc_expect(a, MQLITE_PKT_PUBACK, &k));
        CHECK_EQ(k.reason, 0);
        CHECK(tc_expect_msg(sub, "shared/in", "ok", &k));
        tc_send(sub, &(mq_packet){.type = MQLITE_PKT_PUBACK, .packet_id = k.packet_id});
        for (int qos = 0; qos <= 2; qos++) {
            p = pk_publish("shared/other", "no", qos, 0, 10 + qos);
            tc_send(a, &p);
            if (qos) {
                CHECK(tc_expect(a, qos == 1 ? MQLITE_PKT_PUBACK : MQLITE_PKT_PUBREC, &k));
                CHECK_EQ(k.reason, v == MQLITE_V5 ? 0x87 : 0);
            }
            if (qos == 2 && v != MQLITE_V5) {
                mq_packet rel = pk_ack(MQLITE_PKT_PUBREL, 12);
                tc_send(a, &rel);
                CHECK(tc_expect(a, MQLITE_PKT_PUBCOMP, NULL));
            }
        }
        CHECK(tc_quiet(sub));
        /* The connection stays up after a denial. */
        mq_packet ping = pk(MQLITE_PKT_PINGREQ);
        tc_send(a, &ping);
        CHECK(tc_expect(a, MQLITE_PKT_PINGRESP, NULL));
        tc_disconnect(a);
    }
    CHECK_EQ(mqlite_broker_stat(b, MQLITE_BSTAT_ACL_DENIED), 6);
    tc_disconnect(sub);
    mqlite_broker_free(b);
}

/* SUBSCRIBE: refused (5.0 0x87, 3.1.1 0x80) when nothing it matches is
 * readable or a deny rule covers it; granted otherwise, and then each
 * message is checked: '#' of anonymous clients only carries public/... */
static void test_acl_subscribe_and_delivery(void)
{
    int port;
    mqlite_broker *b = tb_new(&port);
    CHECK_EQ(mqlite_broker_set_str(b, MQLITE_BOPT_ACL_FILE, ts_write("acl", acl_text)), 0);
    tc *a5 = connect_user(b, port, MQLITE_V5, "a5", "alice", NULL, 0);
    tc *a3 = connect_user(b, port, MQLITE_V311, "a3", "alice", NULL, 0);
    CHECK_EQ(tc_subscribe(a5, "bob/#", 0), 0x87);
    CHECK_EQ(tc_subscribe(a3, "bob/#", 0), 0x80);
    CHECK_EQ(tc_subscribe(a5, "shared/secret", 0), 0x87);
    CHECK_EQ(tc_subscribe(a5, "shared/+", 1), 1);
    CHECK_EQ(tc_subscribe(a5, "+/in", 1), 1);
    tc *anon = connect_user(b, port, MQLITE_V311, "anon", NULL, NULL, 0);
    CHECK_EQ(tc_subscribe(anon, "#", 0), 0);
    tc *bob = connect_user(b, port, MQLITE_V311, "bob1", "bob", NULL, 0);
    tc_publish(bob, "shared/secret", "s", 0, 0, 0);
    tc_publish(bob, "shared/news", "n", 0, 0, 0);
    CHECK(tc_expect_msg(a5, "shared/news", "n", NULL)); /* shared/secret: denied read */
    CHECK(tc_quiet(a5));
    CHECK(tc_quiet(anon));
    tc_publish(bob, "shared/in", "i", 0, 0, 0);
    mq_packet k;
    CHECK(tc_expect_msg(a5, "shared/in", "i", &k)); /* one copy, two subscriptions */
    CHECK(tc_quiet(a5));
    tc_disconnect(a5);
    tc_disconnect(a3);
    tc_disconnect(anon);
    tc_disconnect(bob);
    mqlite_broker_free(b);
}

/* Retained messages on subscribe and wills are checked too; patterns with
 * %c and %u; $SYS readable only where granted. */
static void test_acl_retained_wills_patterns(void)
{
    int port;
    mqlite_broker *b = tb_new(&port);
    mqlite_broker_set_int(b, MQLITE_BOPT_SYS_INTERVAL_S, 1);
    CHECK_EQ(mqlite_broker_set_str(b, MQLITE_BOPT_ACL_FILE, ts_write("acl", acl_text)), 0);
    tc *bob = connect_user(b, port, MQLITE_V311, "bob1", "bob", NULL, 0);
    tc_publish(bob, "shared/secret", "s", 1, 1, 1);
    tc_publish(bob, "shared/open", "o", 1, 1, 2);
    tc *a = connect_user(b, port, MQLITE_V5, "a", "alice", NULL, 0);
    CHECK_EQ(tc_subscribe(a, "shared/#", 0), 0);
    mq_packet k;
    CHECK(tc_expect_msg(a, "shared/open", "o", &k));
    CHECK_EQ(k.retain, 1);
    CHECK(tc_quiet(a));
    /* $SYS: alice may read $SYS/broker/clients/#, not the rest. */
    CHECK_EQ(tc_subscribe(a, "$SYS/#", 0), 0);
    CHECK(tc_expect(a, MQLITE_PKT_PUBLISH, &k));
    CHECK(k.topic.len > 20 && memcmp(k.topic.p, "$SYS/broker/clients/", 20) == 0);
    tc_disconnect(a);
    /* Patterns: %c and %u. */
    tc *c = connect_user(b, port, MQLITE_V5, "dev7", "carol", NULL, 0);
    CHECK_EQ(tc_subscribe(c, "clients/dev7/#", 1), 1);
    CHECK_EQ(tc_subscribe(c, "clients/dev8/#", 1), 0x87);
    CHECK_EQ(tc_subscribe(c, "users/carol/inbox", 1), 1);
    CHECK_EQ(tc_subscribe(c, "users/dave/inbox", 1), 0x87);
    tc_publish(c, "clients/dev7/status", "up", 0, 0, 0);
    CHECK(tc_expect_msg(c, "clients/dev7/status", "up", &k));
    /* A client id with a wildcard could widen a pattern: nothing allowed. */
    tc *w = connect_user(b, port, MQLITE_V5, "dev+", "carol", NULL, 0);
    CHECK_EQ(tc_subscribe(w, "clients/#", 1), 0x87);
    tc_disconnect(w);
    /* Wills: published only to topics the client may write. */
    CHECK_EQ(tc_subscribe(c, "clients/#", 0), 0); /* granted: clients/dev7/# readable */
    mq_packet p = pk_connect("dev9", 1, 60);
    p.will = 1;
    p.will_topic = mq_view_cstr("clients/dev7/will");
    p.will_payload = mq_view_cstr("not mine");
    tc *x = tc_connect_pkt(b, port, MQLITE_V311, &p, 0);
    tc_drop(x);
    p.client_id = mq_view_cstr("dev7b");
    p.will_topic = mq_view_cstr("clients/dev7b/will");
    p.will_payload = mq_view_cstr("gone");
    x = tc_connect_pkt(b, port, MQLITE_V311, &p, 0);
    tc_drop(x);
    CHECK(tc_quiet(c)); /* dev7 cannot read dev7b's topic either */
    CHECK(mqlite_broker_stat(b, MQLITE_BSTAT_ACL_DENIED) >= 4);
    tc_disconnect(c);
    tc_disconnect(bob);
    mqlite_broker_free(b);
}

/* Rules through the API; an empty rule set denies everything; clearing
 * allows everything again; bad rules are refused with a message. */
static void test_acl_api(void)
{
    int port;
    mqlite_broker *b = tb_new(&port);
    tc *a = connect_user(b, port, MQLITE_V5, "a", "alice", NULL, 0);
    CHECK_EQ(tc_subscribe(a, "x/#", 0), 0);
    CHECK_EQ(mqlite_broker_acl_add(b, "alice", MQLITE_ACL_READ, "x/#"), 0);
    CHECK_EQ(mqlite_broker_acl_add(b, NULL, MQLITE_ACL_WRITE | MQLITE_ACL_PATTERN, "x/%c"), 0);
    CHECK_EQ(mqlite_broker_acl_add(b, "alice", MQLITE_ACL_DENY, "x/private"), 0);
    CHECK_EQ(mqlite_broker_acl_add(b, "alice", MQLITE_ACL_READ, "a/#/b"), MQLITE_ERR_INVALID);
    CHECK(strstr(mqlite_broker_errmsg(b), "a/#/b") != NULL);
    CHECK_EQ(mqlite_broker_acl_add(b, "alice", 7, "x"), MQLITE_ERR_INVALID);
    tc *w = connect_user(b, port, MQLITE_V5, "w", "writer", NULL, 0);
    mq_packet p = pk_publish("x/w", "mine", 1, 0, 1);
    mq_packet k;
    tc_send(w, &p);
    CHECK(tc_expect(w, MQLITE_PKT_PUBACK, &k));
    CHECK_EQ(k.reason, 0);
    CHECK(tc_expect_msg(a, "x/w", "mine", NULL));
    p = pk_publish("x/private", "p", 1, 0, 2);
    tc_send(w, &p);
    CHECK(tc_expect(w, MQLITE_PKT_PUBACK, &k));
    CHECK_EQ(k.reason, 0x87); /* the pattern grants x/w only */
    CHECK_EQ(mqlite_broker_acl_clear(b), 0);
    tc_publish(w, "x/private", "now", 0, 0, 0);
    CHECK(tc_expect_msg(a, "x/private", "now", NULL));
    tc_disconnect(w);
    tc_disconnect(a);
    /* An ACL file with no rules: nothing is allowed. */
    CHECK_EQ(mqlite_broker_set_str(b, MQLITE_BOPT_ACL_FILE, ts_write("empty.acl", "# none\n")), 0);
    a = connect_user(b, port, MQLITE_V5, "a", "alice", NULL, 0);
    CHECK_EQ(tc_subscribe(a, "#", 0), 0x87);
    tc_disconnect(a);
    CHECK_EQ(mqlite_broker_set_str(b, MQLITE_BOPT_ACL_FILE, ts_write("bad.acl", "topic bogus x\n")),
             MQLITE_ERR_CONFIG);
    CHECK(strstr(mqlite_broker_errmsg(b), "bad.acl:1:") != NULL);
    mqlite_broker_free(b);
}

/* ---- the application decides: pulled requests ---- */

static const mqlite_auth_request *wait_request(mqlite_broker *b)
{
    uint64_t end = tc_now_ms() + TC_WAIT;
    const mqlite_auth_request *r;
    while (!(r = mqlite_broker_next_auth_request(b)) && tc_now_ms() < end)
        mqlite_broker_poll(b, 1);
    return r;
}

/* Every CONNECT becomes a request with the client's data; nothing is
 * handled until the answer (not even packets sent right after CONNECT),
 * other clients are served meanwhile; accepted and refused answers. */
static void test_external_auth_connect(void)
{
    int port;
    mqlite_broker *b = tb_new(&port);
    tc *other = tc_connect(b, port, MQLITE_V5, "other", 1); /* before the switch */
    CHECK_EQ(mqlite_broker_set_int(b, MQLITE_BOPT_AUTH_EXTERNAL, 1), 0);
    tc *c = tc_open(b, port, MQLITE_V311);
    mq_packet p = pk_connect("ext-1", 1, 60);
    p.has_username = p.has_password = 1;
    p.username = mq_view_cstr("alice");
    p.password = mq_view_make("p\0w", 3);
    tc_send(c, &p);
    /* Pipelined behind the CONNECT: held until it is accepted. */
    mq_packet sub = pk(MQLITE_PKT_SUBSCRIBE);
    mq_buf list = {0};
    mq_list_put_filter(&list, &mq_default_alloc, mq_view_cstr("t"), 1, 0);
    sub.packet_id = 5;
    sub.list = mq_view_make(list.p, list.len);
    sub.count = 1;
    tc_send(c, &sub);
    mq_buf_free(&list, &mq_default_alloc);
    const mqlite_auth_request *r = wait_request(b);
    CHECK(r != NULL);
    if (!r)
        return;
    CHECK_EQ(mqlite_auth_request_kind(r), MQLITE_AUTH_CONNECT);
    CHECK_STR(mqlite_auth_request_client_id(r), "ext-1");
    CHECK_STR(mqlite_auth_request_username(r), "alice");
    size_t len = 0;
    const void *pw = mqlite_auth_request_password(r, &len);
    CHECK(pw && len == 3 && memcmp(pw, "p\0w", 3) == 0);
    CHECK(strncmp(mqlite_auth_request_address(r), "127.0.0.1:", 10) == 0);
    CHECK(mqlite_auth_request_cert_cn(r) == NULL);
    CHECK(mqlite_auth_request_method(r) == NULL);
    CHECK_EQ(mqlite_auth_request_version(r), MQLITE_V311);
    CHECK_EQ(mqlite_auth_request_port(r), port);
    CHECK_EQ(mqlite_auth_request_tls(r), 0);
    CHECK_EQ(mqlite_broker_stat(b, MQLITE_BSTAT_AUTH_PENDING), 0);
    int64_t id = mqlite_auth_request_id(r);
    mq_packet k;
    CHECK_EQ(tc_recv(c, &k, TC_QUIET), TC_TIMEOUT); /* no CONNACK yet */
    mq_packet ping = pk(MQLITE_PKT_PINGREQ);
    tc_send(other, &ping);
    CHECK(tc_expect(other, MQLITE_PKT_PINGRESP, NULL)); /* others are served */
    CHECK_EQ(mqlite_broker_auth_reply(b, id, 0x42), MQLITE_ERR_INVALID);
    CHECK_EQ(mqlite_broker_auth_reply(b, id, 0x18), MQLITE_ERR_INVALID); /* no method */
    CHECK_EQ(mqlite_broker_auth_reply(b, id, 0), 0);
    CHECK_EQ(mqlite_broker_auth_reply(b, id, 0), MQLITE_ERR_NOT_FOUND);
    CHECK(tc_expect(c, MQLITE_PKT_CONNACK, &k));
    CHECK_EQ(k.reason, 0);
    CHECK(tc_expect(c, MQLITE_PKT_SUBACK, &k));
    tc_disconnect(c);
    /* Refused, with the 3.1.1 code mapped from the 5.0 one. */
    for (int v = MQLITE_V311; v <= MQLITE_V5; v++) {
        c = tc_open(b, port, v);
        p = pk_connect("ext-2", 1, 60);
        p.version = (uint8_t)v;
        tc_send(c, &p);
        r = wait_request(b);
        CHECK(r && mqlite_auth_request_username(r) == NULL);
        CHECK(r && mqlite_auth_request_password(r, &len) == NULL && len == 0);
        CHECK_EQ(mqlite_broker_auth_reply(b, mqlite_auth_request_id(r), 0x86), 0);
        CHECK(tc_expect(c, MQLITE_PKT_CONNACK, &k));
        CHECK_EQ(k.reason, v == MQLITE_V5 ? 0x86 : 0x04);
        CHECK(tc_wait_closed(c, NULL, TC_WAIT));
        tc_free(c);
    }
    CHECK_EQ(mqlite_broker_stat(b, MQLITE_BSTAT_AUTH_FAILED), 2);
    tc_disconnect(other);
    mqlite_broker_free(b);
}

/* Unanswered requests are bounded by the connect timeout; a request of a
 * connection that went away is dropped (never pulled), and answering a
 * pulled one that went away says NOT_FOUND. set_username feeds the ACL. */
static void test_external_auth_timeouts_and_identity(void)
{
    int port;
    mqlite_broker *b = tb_new(&port);
    mqlite_broker_set_int(b, MQLITE_BOPT_AUTH_EXTERNAL, 1);
    mqlite_broker_set_int(b, MQLITE_BOPT_CONNECT_TIMEOUT_MS, 300);
    tc *c = tc_open(b, port, MQLITE_V311);
    mq_packet p = pk_connect("slow-app", 1, 60);
    tc_send(c, &p);
    const mqlite_auth_request *r = wait_request(b);
    int64_t id = r ? mqlite_auth_request_id(r) : -1;
    CHECK(tc_wait_closed(c, NULL, 2000));
    tc_free(c);
    CHECK_EQ(mqlite_broker_auth_reply(b, id, 0), MQLITE_ERR_NOT_FOUND);
    /* Gone before the application pulled it: no request is left. */
    c = tc_open(b, port, MQLITE_V311);
    tc_send(c, &p);
    tb_run(b, 20);
    CHECK_EQ(mqlite_broker_stat(b, MQLITE_BSTAT_AUTH_PENDING), 1);
    tc_drop(c);
    CHECK_EQ(mqlite_broker_stat(b, MQLITE_BSTAT_AUTH_PENDING), 0);
    CHECK(mqlite_broker_next_auth_request(b) == NULL);
    /* The application names the user; the ACL sees that name. */
    mqlite_broker_set_int(b, MQLITE_BOPT_CONNECT_TIMEOUT_MS, 10000);
    mqlite_broker_acl_add(b, "device-42", MQLITE_ACL_READWRITE, "dev/42/#");
    c = tc_open(b, port, MQLITE_V5);
    p = pk_connect("d42", 1, 60);
    p.version = MQLITE_V5;
    tc_send(c, &p);
    r = wait_request(b);
    CHECK(r != NULL);
    id = r ? mqlite_auth_request_id(r) : -1;
    CHECK_EQ(mqlite_broker_auth_set_username(b, id, "device-42"), 0);
    CHECK_EQ(mqlite_broker_auth_set_username(b, id + 100, "x"), MQLITE_ERR_NOT_FOUND);
    CHECK_EQ(mqlite_broker_auth_reply(b, id, 0), 0);
    mq_packet k;
    CHECK(tc_expect(c, MQLITE_PKT_CONNACK, &k));
    CHECK_EQ(tc_subscribe(c, "dev/42/cmd", 0), 0);
    CHECK_EQ(tc_subscribe(c, "dev/43/cmd", 0), 0x87);
    tc_disconnect(c);
    mqlite_broker_free(b);
}

static mq_packet auth_pkt(int reason, const char *method, mq_view data, pb *props)
{
    memset(props, 0, sizeof *props);
    pb_str(props, MQLITE_PROP_AUTH_METHOD, method);
    if (data.len && mq_props_put_bytes(&props->b, &mq_default_alloc, MQLITE_PROP_AUTH_DATA, data))
        abort();
    mq_packet a = pk(MQLITE_PKT_AUTH);
    a.version = MQLITE_V5;
    a.reason = (uint8_t)reason;
    a.props = pb_view(props);
    return a;
}

static mq_view prop_bytes(mq_view block, int id)
{
    mq_prop p;
    return mq_props_get(block, (unsigned)id, &p) ? p.val : mq_view_make(NULL, 0);
}

/* MQTT 5.0 4.12 with the application as the authenticator: CONNECT with a
 * method -> request; continue (AUTH 0x18 with data) -> the client's AUTH
 * arrives as a CONTINUE request -> success with data in the CONNACK; then
 * re-authentication (AUTH 0x19) while messages keep flowing. */
static void test_external_enhanced_auth_and_reauth(void)
{
    int port;
    mqlite_broker *b = tb_new(&port);
    mqlite_broker_set_int(b, MQLITE_BOPT_AUTH_EXTERNAL, 1);
    pb props = {{0}};
    pb_str(&props, MQLITE_PROP_AUTH_METHOD, "X-TOKEN");
    mq_props_put_bytes(&props.b, &mq_default_alloc, MQLITE_PROP_AUTH_DATA, mq_view_cstr("hi"));
    mq_packet p = pk_connect("tok", 1, 60);
    p.version = MQLITE_V5;
    p.props = pb_view(&props);
    tc *c = tc_open(b, port, MQLITE_V5);
    tc_send(c, &p);
    pb_free(&props);
    const mqlite_auth_request *r = wait_request(b);
    CHECK(r && mqlite_auth_request_kind(r) == MQLITE_AUTH_CONNECT);
    CHECK_STR(r ? mqlite_auth_request_method(r) : "", "X-TOKEN");
    size_t len;
    const void *d = r ? mqlite_auth_request_data(r, &len) : NULL;
    CHECK(d && len == 2 && memcmp(d, "hi", 2) == 0);
    CHECK_EQ(mqlite_broker_auth_reply_data(b, mqlite_auth_request_id(r), 0x18, "challenge", 9), 0);
    mq_packet k;
    CHECK(tc_expect(c, MQLITE_PKT_AUTH, &k));
    CHECK_EQ(k.reason, 0x18);
    CHECK(view_is(prop_bytes(k.props, MQLITE_PROP_AUTH_METHOD), "X-TOKEN"));
    CHECK(view_is(prop_bytes(k.props, MQLITE_PROP_AUTH_DATA), "challenge"));
    mq_packet a = auth_pkt(0x18, "X-TOKEN", mq_view_cstr("response"), &props);
    tc_send(c, &a);
    pb_free(&props);
    r = wait_request(b);
    CHECK(r && mqlite_auth_request_kind(r) == MQLITE_AUTH_CONTINUE);
    d = r ? mqlite_auth_request_data(r, &len) : NULL;
    CHECK(d && len == 8 && memcmp(d, "response", 8) == 0);
    CHECK_EQ(mqlite_broker_auth_reply_data(b, mqlite_auth_request_id(r), 0, "welcome", 7), 0);
    CHECK(tc_expect(c, MQLITE_PKT_CONNACK, &k));
    CHECK_EQ(k.reason, 0);
    CHECK(view_is(prop_bytes(k.props, MQLITE_PROP_AUTH_METHOD), "X-TOKEN"));
    CHECK(view_is(prop_bytes(k.props, MQLITE_PROP_AUTH_DATA), "welcome"));
    CHECK_EQ(tc_subscribe(c, "re/#", 0), 0);
    /* Re-authentication: messages flow while the application decides. */
    a = auth_pkt(0x19, "X-TOKEN", mq_view_cstr("again"), &props);
    tc_send(c, &a);
    pb_free(&props);
    r = wait_request(b);
    CHECK(r && mqlite_auth_request_kind(r) == MQLITE_AUTH_REAUTH);
    CHECK_STR(r ? mqlite_auth_request_client_id(r) : "", "tok");
    int64_t id = r ? mqlite_auth_request_id(r) : -1;
    tc_publish(c, "re/x", "during", 0, 0, 0);
    CHECK(tc_expect_msg(c, "re/x", "during", NULL));
    CHECK_EQ(mqlite_broker_auth_reply(b, id, 0), 0);
    CHECK(tc_expect(c, MQLITE_PKT_AUTH, &k));
    CHECK_EQ(k.reason, 0);
    /* A failed re-authentication ends the connection (5.0 [MQTT-4.12.1-2]). */
    a = auth_pkt(0x19, "X-TOKEN", mq_view_cstr("bad"), &props);
    tc_send(c, &a);
    pb_free(&props);
    r = wait_request(b);
    CHECK_EQ(mqlite_broker_auth_reply(b, mqlite_auth_request_id(r), 0x87), 0);
    int reason;
    CHECK(tc_wait_closed(c, &reason, TC_WAIT));
    CHECK_EQ(reason, 0x87);
    tc_free(c);
    mqlite_broker_free(b);
}

/* ---- SCRAM-SHA-256 ---- */

static tc *scram_connect(mqlite_broker *b, int port, const char *user, const char *password,
                         tscram *s, int *connack)
{
    tscram_first(s, user, "rOprNGfwEbeRWgbNEkqO");
    pb props = {{0}};
    pb_str(&props, MQLITE_PROP_AUTH_METHOD, "SCRAM-SHA-256");
    mq_props_put_bytes(&props.b, &mq_default_alloc, MQLITE_PROP_AUTH_DATA,
                       mq_view_cstr(s->client_first));
    mq_packet p = pk_connect("scram-client", 1, 60);
    p.version = MQLITE_V5;
    p.props = pb_view(&props);
    tc *c = tc_open(b, port, MQLITE_V5);
    tc_send(c, &p);
    pb_free(&props);
    mq_packet k;
    *connack = -1;
    if (!tc_expect(c, MQLITE_PKT_AUTH, &k))
        return c;
    CHECK_EQ(k.reason, 0x18);
    mq_view sf = prop_bytes(k.props, MQLITE_PROP_AUTH_DATA);
    CHECK_EQ(tscram_final(s, (const char *)sf.p, sf.len, password), 0);
    mq_packet a = auth_pkt(0x18, "SCRAM-SHA-256", mq_view_cstr(s->final_msg), &props);
    tc_send(c, &a);
    pb_free(&props);
    if (!tc_expect(c, MQLITE_PKT_CONNACK, &k))
        return c;
    *connack = k.reason;
    if (k.reason == 0) {
        mq_view v = prop_bytes(k.props, MQLITE_PROP_AUTH_DATA);
        CHECK(tscram_verify(s, v.p, v.len)); /* the server proved itself too */
        CHECK(view_is(prop_bytes(k.props, MQLITE_PROP_AUTH_METHOD), "SCRAM-SHA-256"));
    }
    return c;
}

/* RFC 7677 with MQTT 5.0 4.12: success (and the server's signature checks
 * out), wrong password and unknown user -> 0x87, other methods -> 0x8C. */
static void test_scram_connect(void)
{
    int port;
    mqlite_broker *b = tb_new(&port);
    const char *pairs[] = {"alice:pencil", "b,o=b:p@ss"};
    CHECK_EQ(mqlite_broker_set_str(b, MQLITE_BOPT_SCRAM_FILE, pwfile("scram", pairs, 2, 1)), 0);
    tscram s;
    int code;
    tc *c = scram_connect(b, port, "alice", "pencil", &s, &code);
    CHECK_EQ(code, 0);
    CHECK_EQ(tc_subscribe(c, "a", 0), 0);
    tc_disconnect(c);
    c = scram_connect(b, port, "b=2Co=3Db", "p@ss", &s, &code); /* saslname escapes */
    CHECK_EQ(code, 0);
    tc_disconnect(c);
    c = scram_connect(b, port, "alice", "Pencil", &s, &code);
    CHECK_EQ(code, 0x87);
    tc_free(c);
    c = scram_connect(b, port, "nobody", "pencil", &s, &code);
    CHECK_EQ(code, 0x87);
    tc_free(c);
    CHECK_EQ(mqlite_broker_stat(b, MQLITE_BSTAT_AUTH_FAILED), 2);
    /* MQTT 5.0 [MQTT-4.12.0-1]: a method the server does not offer. */
    pb props = {{0}};
    pb_str(&props, MQLITE_PROP_AUTH_METHOD, "SCRAM-SHA-1");
    mq_packet p = pk_connect("m", 1, 60);
    p.props = pb_view(&props);
    c = tc_connect_pkt(b, port, MQLITE_V5, &p, 0x8C);
    tc_free(c);
    pb_free(&props);
    /* MQTT 5.0 [MQTT-3.1.2-30]: only AUTH or DISCONNECT before the CONNACK. */
    tscram_first(&s, "alice", "abc");
    pb_str(&props, MQLITE_PROP_AUTH_METHOD, "SCRAM-SHA-256");
    mq_props_put_bytes(&props.b, &mq_default_alloc, MQLITE_PROP_AUTH_DATA,
                       mq_view_cstr(s.client_first));
    p = pk_connect("early", 1, 60);
    p.version = MQLITE_V5;
    p.props = pb_view(&props);
    c = tc_open(b, port, MQLITE_V5);
    tc_send(c, &p);
    pb_free(&props);
    CHECK(tc_expect(c, MQLITE_PKT_AUTH, NULL));
    mq_packet pub = pk_publish("t", "x", 0, 0, 0);
    tc_send(c, &pub);
    CHECK(tc_wait_closed(c, NULL, TC_WAIT));
    tc_free(c);
    /* An AUTH with another method during the exchange: CONNACK 0x8C. */
    p.client_id = mq_view_cstr("switch");
    pb_str(&props, MQLITE_PROP_AUTH_METHOD, "SCRAM-SHA-256");
    mq_props_put_bytes(&props.b, &mq_default_alloc, MQLITE_PROP_AUTH_DATA,
                       mq_view_cstr(s.client_first));
    p.props = pb_view(&props);
    c = tc_open(b, port, MQLITE_V5);
    tc_send(c, &p);
    pb_free(&props);
    CHECK(tc_expect(c, MQLITE_PKT_AUTH, NULL));
    mq_packet a = auth_pkt(0x18, "OTHER", mq_view_cstr("x"), &props);
    tc_send(c, &a);
    pb_free(&props);
    mq_packet k;
    CHECK(tc_expect(c, MQLITE_PKT_CONNACK, &k));
    CHECK_EQ(k.reason, 0x8C);
    tc_free(c);
    mqlite_broker_free(b);
}

/* Re-authentication (AUTH 0x19) with SCRAM in an open session: success ->
 * AUTH 0x00 with the server signature; a wrong password -> DISCONNECT 0x87;
 * another method -> DISCONNECT 0x8C; AUTH from a client that used none ->
 * protocol error. */
static void test_scram_reauthentication(void)
{
    int port;
    mqlite_broker *b = tb_new(&port);
    const char *pairs[] = {"alice:pencil"};
    mqlite_broker_set_str(b, MQLITE_BOPT_SCRAM_FILE, pwfile("scram", pairs, 1, 1));
    for (int round = 0; round < 3; round++) {
        tscram s;
        int code;
        tc *c = scram_connect(b, port, "alice", "pencil", &s, &code);
        CHECK_EQ(code, 0);
        CHECK_EQ(tc_subscribe(c, "r", 0), 0);
        tscram r;
        tscram_first(&r, "alice", "second-nonce");
        pb props;
        mq_packet a = auth_pkt(0x19, round == 2 ? "PLAIN" : "SCRAM-SHA-256",
                               mq_view_cstr(r.client_first), &props);
        tc_send(c, &a);
        pb_free(&props);
        mq_packet k;
        if (round == 2) {
            int reason;
            CHECK(tc_wait_closed(c, &reason, TC_WAIT));
            CHECK_EQ(reason, 0x8C);
            tc_free(c);
            continue;
        }
        CHECK(tc_expect(c, MQLITE_PKT_AUTH, &k));
        CHECK_EQ(k.reason, 0x18);
        mq_view sf = prop_bytes(k.props, MQLITE_PROP_AUTH_DATA);
        tscram_final(&r, (const char *)sf.p, sf.len, round == 0 ? "pencil" : "eraser");
        tc_publish(c, "r", "still flowing", 0, 0, 0); /* the session goes on meanwhile */
        CHECK(tc_expect_msg(c, "r", "still flowing", NULL));
        a = auth_pkt(0x18, "SCRAM-SHA-256", mq_view_cstr(r.final_msg), &props);
        tc_send(c, &a);
        pb_free(&props);
        if (round == 0) {
            CHECK(tc_expect(c, MQLITE_PKT_AUTH, &k));
            CHECK_EQ(k.reason, 0);
            mq_view v = prop_bytes(k.props, MQLITE_PROP_AUTH_DATA);
            CHECK(tscram_verify(&r, v.p, v.len));
            tc_disconnect(c);
        } else {
            int reason;
            CHECK(tc_wait_closed(c, &reason, TC_WAIT));
            CHECK_EQ(reason, 0x87);
            tc_free(c);
        }
    }
    /* MQTT 5.0 [MQTT-4.12.0-7]: no AUTH without a method in CONNECT. A SCRAM file
     * makes anonymous access opt-in, like a password file. */
    mqlite_broker_set_int(b, MQLITE_BOPT_ALLOW_ANONYMOUS, 1);
    tc *c = tc_connect(b, port, MQLITE_V5, "plain", 1);
    pb props;
    mq_packet a = auth_pkt(0x19, "SCRAM-SHA-256", mq_view_cstr("n,,n=alice,r=x"), &props);
    tc_send(c, &a);
    pb_free(&props);
    int reason;
    CHECK(tc_wait_closed(c, &reason, TC_WAIT));
    CHECK_EQ(reason, 0x82);
    tc_free(c);
    mqlite_broker_free(b);
}

/* ---- limits ---- */

/* max_connections: the one over gets CONNACK 0x97 (5.0) / 0x03 (3.1.1)
 * and is counted; when one leaves, a new one is accepted. A per-listener
 * limit from the configuration file works the same way. */
static void test_max_connections(void)
{
    int port;
    mqlite_broker *b = tb_new(&port);
    mqlite_broker_set_int(b, MQLITE_BOPT_LOG_LEVEL, 0);
    mqlite_broker_set_int(b, MQLITE_BOPT_MAX_CONNECTIONS, 2);
    tc *c1 = tc_connect(b, port, MQLITE_V5, "c1", 1);
    tc *c2 = tc_connect(b, port, MQLITE_V5, "c2", 1);
    mq_packet p = pk_connect("c3", 1, 60);
    tc *c3 = tc_connect_pkt(b, port, MQLITE_V5, &p, 0x97);
    CHECK(tc_wait_closed(c3, NULL, TC_WAIT));
    tc_free(c3);
    p = pk_connect("c4", 1, 60);
    tc *c4 = tc_connect_pkt(b, port, MQLITE_V311, &p, 0x03);
    tc_free(c4);
    CHECK_EQ(mqlite_broker_stat(b, MQLITE_BSTAT_CONNECTIONS_REFUSED), 2);
    tc_disconnect(c1);
    tc *c5 = tc_connect(b, port, MQLITE_V5, "c5", 1);
    tc_disconnect(c5);
    tc_disconnect(c2);
    mqlite_broker_set_int(b, MQLITE_BOPT_MAX_CONNECTIONS, 0);
    /* Per listener: `max_connections` after its `listener` line. */
    CHECK_EQ(mqlite_broker_load_config(b, ts_write("lim.conf", "listener 0 127.0.0.1\n"
                                                              "max_connections 1\n")),
             0);
    int lport = mqlite_broker_port(b, 1);
    tc *l1 = tc_connect(b, lport, MQLITE_V5, "l1", 1);
    p = pk_connect("l2", 1, 60);
    tc *l2 = tc_connect_pkt(b, lport, MQLITE_V5, &p, 0x97);
    tc_free(l2);
    tc *other = tc_connect(b, port, MQLITE_V5, "other", 1); /* the other listener: fine */
    tc_disconnect(other);
    tc_disconnect(l1);
    mqlite_broker_free(b);
}

/* MQLITE_BOPT_MAX_CONNECTION_RATE: per source address and second; the
 * connection over it gets CONNACK 0x9F (5.0) and is counted. */
static void test_connection_rate_limit(void)
{
    int port;
    mqlite_broker *b = tb_new(&port);
    mqlite_broker_set_int(b, MQLITE_BOPT_LOG_LEVEL, 0);
    mqlite_broker_set_int(b, MQLITE_BOPT_MAX_CONNECTION_RATE, 3);
    /* Start right after a second boundary so the burst falls in one second. */
    while (tc_now_ms() % 1000 > 100)
        poll(NULL, 0, 10);
    int accepted = 0, limited = 0;
    for (int i = 0; i < 6; i++) {
        tc *c = tc_open(b, port, MQLITE_V5);
        mq_packet p = pk_connect("r", 1, 60);
        tc_send(c, &p);
        mq_packet k;
        if (tc_expect(c, MQLITE_PKT_CONNACK, &k)) {
            accepted += k.reason == 0;
            limited += k.reason == 0x9F;
        }
        tc_free(c);
    }
    CHECK_EQ(accepted, 3);
    CHECK_EQ(limited, 3);
    CHECK_EQ(mqlite_broker_stat(b, MQLITE_BSTAT_CONNECTIONS_RATE_LIMITED), 3);
    poll(NULL, 0, 1100); /* the next second starts afresh */
    tc *c = tc_connect(b, port, MQLITE_V5, "later", 1);
    tc_disconnect(c);
    mqlite_broker_free(b);
}

/* A subscriber that does not read: with the drop policy its backlog stays
 * near MQLITE_BOPT_MAX_BACKLOG_BYTES and QoS 0 messages are dropped and
 * counted; with the disconnect policy it is closed (DISCONNECT 0x97 sent
 * best-effort) while a reading subscriber gets everything. */
static void test_slow_consumer_policies(void)
{
    for (int policy = MQLITE_SLOW_DROP_QOS0; policy <= MQLITE_SLOW_DISCONNECT; policy++) {
        int port;
        mqlite_broker *b = tb_new(&port);
        mqlite_broker_set_int(b, MQLITE_BOPT_LOG_LEVEL, 0);
        mqlite_broker_set_int(b, MQLITE_BOPT_MAX_BACKLOG_BYTES, 256 * 1024);
        mqlite_broker_set_int(b, MQLITE_BOPT_SLOW_CLIENT_POLICY, policy);
        mqlite_broker_set_int(b, MQLITE_BOPT_MAX_QUEUED, 0);
        tc *slow = tc_connect(b, port, MQLITE_V5, "slow", 1);
        CHECK_EQ(tc_subscribe(slow, "flood", 0), 0);
        int rcv = 0;
        setsockopt(slow->fd, SOL_SOCKET, SO_RCVBUF, &(int){4096}, sizeof(int));
        tc *fast = tc_connect(b, port, MQLITE_V5, "fast", 1);
        CHECK_EQ(tc_subscribe(fast, "flood", 0), 0);
        tc *pub = tc_connect(b, port, MQLITE_V5, "pub", 1);
        char payload[8192];
        memset(payload, 'x', sizeof payload - 1);
        payload[sizeof payload - 1] = '\0';
        int sent = 0;
        for (; sent < 2000; sent++) {
            mq_packet p = pk_publish("flood", payload, 0, 0, 0);
            tc_send(pub, &p);
            mq_packet k;
            while (tc_recv(fast, &k, 1) == 0)
                rcv++;
        }
        mq_packet k;
        while (rcv < sent && tc_recv(fast, &k, 500) == 0)
            rcv++;
        CHECK_EQ(rcv, sent); /* the reading one lost nothing */
        if (policy == MQLITE_SLOW_DROP_QOS0) {
            CHECK(mqlite_broker_stat(b, MQLITE_BSTAT_SLOW_DROPPED) > 0);
            CHECK_EQ(mqlite_broker_stat(b, MQLITE_BSTAT_SLOW_DISCONNECTED), 0);
            CHECK_EQ(mqlite_broker_stat(b, MQLITE_BSTAT_CLIENTS_CONNECTED), 3);
        } else {
            CHECK_EQ(mqlite_broker_stat(b, MQLITE_BSTAT_SLOW_DISCONNECTED), 1);
            CHECK_EQ(mqlite_broker_stat(b, MQLITE_BSTAT_CLIENTS_CONNECTED), 2);
        }
        tc_free(slow);
        tc_disconnect(fast);
        tc_disconnect(pub);
        mqlite_broker_free(b);
    }
}

/* Packets over the maximum packet size are counted ($SYS too) and close
 * the connection with DISCONNECT 0x95; the counters reach $SYS. */
static void test_limits_counted_in_sys(void)
{
    int port;
    mqlite_broker *b = tb_new(&port);
    mqlite_broker_set_int(b, MQLITE_BOPT_LOG_LEVEL, 0);
    mqlite_broker_set_int(b, MQLITE_BOPT_MAX_PACKET_SIZE, 100);
    mqlite_broker_set_int(b, MQLITE_BOPT_SYS_INTERVAL_S, 1);
    tc *c = tc_connect(b, port, MQLITE_V5, "big", 1);
    char payload[200];
    memset(payload, 'y', sizeof payload - 1);
    payload[sizeof payload - 1] = '\0';
    mq_packet p = pk_publish("t", payload, 0, 0, 0);
    tc_send(c, &p);
    int reason;
    CHECK(tc_wait_closed(c, &reason, TC_WAIT));
    CHECK_EQ(reason, 0x95);
    tc_free(c);
    CHECK_EQ(mqlite_broker_stat(b, MQLITE_BSTAT_PACKETS_TOO_LARGE), 1);
    mqlite_broker_set_int(b, MQLITE_BOPT_MAX_CONNECTIONS, 1);
    tc *w = tc_connect(b, port, MQLITE_V5, "w", 1);
    p = pk_connect("x", 1, 60);
    tc_free(tc_connect_pkt(b, port, MQLITE_V5, &p, 0x97));
    /* Published every second when changed: wait for the "1" (a retained
     * "0" from before may come first). */
    CHECK_EQ(tc_subscribe(w, "$SYS/broker/+/+", 0), 0);
    int seen = 0;
    uint64_t end = tc_now_ms() + 3000;
    while (seen != 3 && tc_now_ms() < end) {
        mq_packet k;
        if (tc_recv(w, &k, 100) != 0 || !view_is(k.payload, "1"))
            continue;
        seen |= view_is(k.topic, "$SYS/broker/packets/too_large") ? 1 : 2;
    }
    CHECK_EQ(seen, 3);
    tc_disconnect(w);
    mqlite_broker_free(b);
}

/* Security keys of the configuration file: global by default, per listener
 * with per_listener_settings true (mosquitto's semantics). */
static void test_security_config_scopes(void)
{
    const char *pairs[] = {"alice:secret"};
    const char *pw = pwfile("scope.pw", pairs, 1, 0);
    char text[1024];
    mqlite_broker *b = mqlite_broker_new();
    mqlite_broker_set_int(b, MQLITE_BOPT_LOG_LEVEL, 0);
    mqlite_broker_set_int(b, MQLITE_BOPT_SYS_INTERVAL_S, 0);
    snprintf(text, sizeof text, "listener 0 127.0.0.1\nlistener 0 127.0.0.1\npassword_file %s\n",
             pw);
    CHECK_EQ(mqlite_broker_load_config(b, ts_write("g.conf", text)), 0);
    /* Global: both listeners need the password. */
    for (int i = 0; i < 2; i++) {
        int port = mqlite_broker_port(b, i);
        tc_free(connect_user(b, port, MQLITE_V5, "n", NULL, NULL, 0x87));
        tc_disconnect(connect_user(b, port, MQLITE_V5, "a", "alice", "secret", 0));
    }
    mqlite_broker_free(b);
    b = mqlite_broker_new();
    mqlite_broker_set_int(b, MQLITE_BOPT_LOG_LEVEL, 0);
    mqlite_broker_set_int(b, MQLITE_BOPT_SYS_INTERVAL_S, 0);
    snprintf(text, sizeof text,
             "per_listener_settings true\n"
             "listener 0 127.0.0.1\n"
             "allow_anonymous true\n"
             "listener 0 127.0.0.1\n"
             "password_file %s\n"
             "acl_file %s\n",
             pw, ts_write("scope.acl", "user alice\ntopic readwrite a/#\n"));
    CHECK_EQ(mqlite_broker_load_config(b, ts_write("p.conf", text)), 0);
    int open_port = mqlite_broker_port(b, 0), locked = mqlite_broker_port(b, 1);
    tc *anon = connect_user(b, open_port, MQLITE_V5, "n", NULL, NULL, 0);
    CHECK_EQ(tc_subscribe(anon, "b/#", 0), 0); /* no ACL on this listener */
    tc_disconnect(anon);
    tc_free(connect_user(b, locked, MQLITE_V5, "n", NULL, NULL, 0x87));
    tc *a = connect_user(b, locked, MQLITE_V5, "a", "alice", "secret", 0);
    CHECK_EQ(tc_subscribe(a, "b/#", 0), 0x87);
    CHECK_EQ(tc_subscribe(a, "a/#", 0), 0);
    tc_disconnect(a);
    CHECK_EQ(mqlite_broker_load_config(b, ts_write("bad.conf", "listener 0\n"
                                                               "per_listener_settings true\n")),
             MQLITE_ERR_CONFIG);
    snprintf(text, sizeof text, "password_file /nonexistent/pw\n");
    CHECK_EQ(mqlite_broker_load_config(b, ts_write("bad.conf", text)), MQLITE_ERR_IO);
    CHECK(strstr(mqlite_broker_errmsg(b), "bad.conf:1:") != NULL);
    mqlite_broker_free(b);
}

int main(int argc, char **argv)
{
    TEST_MAIN_BEGIN(argc, argv);
    signal(SIGPIPE, SIG_IGN);
    ts_make_certs();
    RUN(test_password_file_checks);
    RUN(test_password_file_from_mosquitto_passwd);
    RUN(test_failed_login_log_has_no_secrets);
    RUN(test_acl_publish);
    RUN(test_acl_subscribe_and_delivery);
    RUN(test_acl_retained_wills_patterns);
    RUN(test_acl_api);
    RUN(test_external_auth_connect);
    RUN(test_external_auth_timeouts_and_identity);
    RUN(test_external_enhanced_auth_and_reauth);
    RUN(test_scram_connect);
    RUN(test_scram_reauthentication);
    RUN(test_max_connections);
    RUN(test_connection_rate_limit);
    RUN(test_slow_consumer_policies);
    RUN(test_limits_counted_in_sys);
    RUN(test_security_config_scopes);
    TEST_MAIN_END();
}
