/*
 * test_broker_config.c - the mosquitto-format configuration file: every key,
 * value syntax (booleans, durations, "no limit" values), comments and CRLF,
 * errors reported as "file:line: message" without changing the broker, and
 * limits that the file sets taking effect (max_connections).
 */
#include "test_broker_harness.h"

/* Write text to a fresh temporary file; returns its path (static buffer). */
static const char *conf(const char *text)
{
    static char path[64];
    snprintf(path, sizeof path, "/tmp/mqlite-test-XXXXXX");
    int fd = mkstemp(path);
    if (fd < 0 || write(fd, text, strlen(text)) != (ssize_t)strlen(text))
        abort();
    close(fd);
    return path;
}

static int load(mqlite_broker *b, const char *text)
{
    const char *path = conf(text);
    int rc = mqlite_broker_load_config(b, path);
    unlink(path);
    return rc;
}

static void test_config_every_key(void)
{
    mqlite_broker *b = mqlite_broker_new();
    const char *text = "# mosquitto.conf style\n"
                       "\n"
                       "max_connections 7\n" /* before any listener: broker-wide */
                       "listener 0 127.0.0.1\n"
                       "  allow_anonymous false\r\n"
                       "max_packet_size 10000\n"
                       "max_inflight_messages 5\n"
                       "max_queued_messages 50\n"
                       "max_queued_bytes 100000\n"
                       "retain_available false\n"
                       "persistent_client_expiration 2d\n"
                       "max_keepalive 120\n"
                       "sys_interval 3\n"
                       "max_qos 1\n"
                       "max_topic_alias 4\n"
                       "log_type error\n"
                       "log_type warning\n"
                       "log_dest stderr\n"
                       "persistence false\n"
                       "\tport 0\n"
                       "bind_address 127.0.0.1\n";
    CHECK_EQ(load(b, text), 0);
    CHECK_EQ(mqlite_broker_get_int(b, MQLITE_BOPT_ALLOW_ANONYMOUS), 0);
    CHECK_EQ(mqlite_broker_get_int(b, MQLITE_BOPT_MAX_PACKET_SIZE), 10000);
    CHECK_EQ(mqlite_broker_get_int(b, MQLITE_BOPT_MAX_INFLIGHT), 5);
    CHECK_EQ(mqlite_broker_get_int(b, MQLITE_BOPT_MAX_QUEUED), 50);
    CHECK_EQ(mqlite_broker_get_int(b, MQLITE_BOPT_MAX_QUEUED_BYTES), 100000);
    CHECK_EQ(mqlite_broker_get_int(b, MQLITE_BOPT_RETAIN_AVAILABLE), 0);
    CHECK_EQ(mqlite_broker_get_int(b, MQLITE_BOPT_SESSION_EXPIRY_MAX_S), 2 * 86400);
    CHECK_EQ(mqlite_broker_get_int(b, MQLITE_BOPT_MAX_KEEPALIVE_S), 120);
    CHECK_EQ(mqlite_broker_get_int(b, MQLITE_BOPT_MAX_CONNECTIONS), 7);
    CHECK_EQ(mqlite_broker_get_int(b, MQLITE_BOPT_SYS_INTERVAL_S), 3);
    CHECK_EQ(mqlite_broker_get_int(b, MQLITE_BOPT_MAX_QOS), 1);
    CHECK_EQ(mqlite_broker_get_int(b, MQLITE_BOPT_TOPIC_ALIAS_MAX), 4);
    CHECK_EQ(mqlite_broker_get_int(b, MQLITE_BOPT_LOG_LEVEL), MQLITE_LOG_WARNING);
    /* Two listeners: `listener` and the default one of `port`. */
    CHECK(mqlite_broker_port(b, 0) > 0);
    CHECK(mqlite_broker_port(b, 1) > 0);
    CHECK_EQ(mqlite_broker_port(b, 2), MQLITE_ERR_RANGE);
    int port = mqlite_broker_port(b, 0);
    mq_packet p = pk_connect("c", 1, 60);
    p.has_username = 1;
    p.username = mq_view_cstr("u");
    tc *c = tc_connect_pkt(b, port, MQLITE_V5, &p, 0);
    CHECK_EQ(prop_int(c->connack.props, MQLITE_PROP_MAX_QOS), 1);
    CHECK_EQ(prop_int(c->connack.props, MQLITE_PROP_TOPIC_ALIAS_MAX), 4);
    tc_disconnect(c);
    mqlite_broker_free(b);
}

/* Values with a special meaning in mosquitto: 0 = no limit, -1 = unlimited. */
static void test_config_special_values(void)
{
    mqlite_broker *b = mqlite_broker_new();
    CHECK_EQ(load(b, "max_inflight_messages 0\nmax_packet_size 0\nmax_connections -1\n"
                     "max_keepalive 0\npersistent_client_expiration 1h\n"),
             0);
    CHECK_EQ(mqlite_broker_get_int(b, MQLITE_BOPT_MAX_INFLIGHT), 65535);
    CHECK_EQ(mqlite_broker_get_int(b, MQLITE_BOPT_MAX_PACKET_SIZE), 268435460);
    CHECK_EQ(mqlite_broker_get_int(b, MQLITE_BOPT_MAX_CONNECTIONS), 0);
    CHECK_EQ(mqlite_broker_get_int(b, MQLITE_BOPT_MAX_KEEPALIVE_S), 65535);
    CHECK_EQ(mqlite_broker_get_int(b, MQLITE_BOPT_SESSION_EXPIRY_MAX_S), 3600);
    static const struct {
        const char *text;
        int64_t secs;
    } durations[] = {{"1w", 7 * 86400}, {"1m", 30 * 86400}, {"1y", 365 * 86400}, {"3d", 3 * 86400}};
    for (size_t i = 0; i < MQ_ARRAY_LEN(durations); i++) {
        char line[64];
        snprintf(line, sizeof line, "persistent_client_expiration %s\n", durations[i].text);
        CHECK_EQ(load(b, line), 0);
        CHECK_EQ(mqlite_broker_get_int(b, MQLITE_BOPT_SESSION_EXPIRY_MAX_S), durations[i].secs);
    }
    CHECK_EQ(load(b, "log_type all\n"), 0);
    CHECK_EQ(mqlite_broker_get_int(b, MQLITE_BOPT_LOG_LEVEL), MQLITE_LOG_DEBUG);
    CHECK_EQ(load(b, "log_dest none\n"), 0);
    CHECK_EQ(mqlite_broker_get_int(b, MQLITE_BOPT_LOG_LEVEL), 0);
    mqlite_broker_free(b);
}

/* An unknown key or a bad value: MQLITE_ERR_CONFIG, "file:line: message",
   and nothing of the file applied. */
static void test_config_errors_name_file_and_line(void)
{
    static const struct {
        const char *text;
        int line;
        const char *words;
    } cases[] = {
        {"max_qos 1\n\nno_such_key 1\n", 3, "unknown option \"no_such_key\""},
        {"# c\nallow_anonymous yes\n", 2, "expected true or false"},
        {"max_qos 3\n", 1, "out of range"},
        {"max_inflight_messages 70000\n", 1, "out of range"},
        {"max_packet_size 5\n", 1, "out of range"},
        {"max_queued_messages many\n", 1, "not a whole number"},
        {"persistent_client_expiration 10\n", 1, "not a duration"},
        {"persistent_client_expiration 5x\n", 1, "not a duration"},
        {"listener\n", 1, "listener takes 1 to 2 values, not 0"},
        {"listener 1883 127.0.0.1 extra\n", 1, "listener takes 1 to 2 values, not 3"},
        {"listener 70000\n", 1, "out of range"},
        {"max_qos 1 2\n", 1, "max_qos takes 1 value, not 2"},
        {"persistence_sync sometimes\n", 1, "expected always, batch or off"},
        {"log_dest file /var/log/x\n", 1, "only stderr"},
        {"log_type loud\n", 1, "unknown type"},
    };
    mqlite_broker *b = mqlite_broker_new();
    for (size_t i = 0; i < MQ_ARRAY_LEN(cases); i++) {
        const char *path = conf(cases[i].text);
        CHECK_EQ(mqlite_broker_load_config(b, path), MQLITE_ERR_CONFIG);
        char prefix[96];
        snprintf(prefix, sizeof prefix, "%s:%d: ", path, cases[i].line);
        const char *msg = mqlite_broker_errmsg(b);
        int ok = strncmp(msg, prefix, strlen(prefix)) == 0 && strstr(msg, cases[i].words);
        if (!ok)
            fprintf(stderr, "case %zu: \"%s\"\n", i, msg);
        CHECK(ok);
        unlink(path);
        /* Nothing applied: max_qos 1 on line 1 of the first case too. */
        CHECK_EQ(mqlite_broker_get_int(b, MQLITE_BOPT_MAX_QOS), 2);
        CHECK_EQ(mqlite_broker_port(b, 0), MQLITE_ERR_RANGE);
    }
    CHECK_EQ(mqlite_broker_load_config(b, "/nonexistent/mqlite.conf"), MQLITE_ERR_IO);
    CHECK(strstr(mqlite_broker_errmsg(b), "/nonexistent/mqlite.conf") != NULL);
    mqlite_broker_free(b);
}

/* A listener that cannot be opened: MQLITE_ERR_IO naming file and line;
   listeners the same file opened before it are closed again. */
static void test_config_listener_in_use(void)
{
    int port;
    mqlite_broker *holder = tb_new(&port);
    mqlite_broker *b = mqlite_broker_new();
    char text[128];
    snprintf(text, sizeof text, "listener 0 127.0.0.1\nlistener %d 127.0.0.1\n", port);
    const char *path = conf(text);
    CHECK_EQ(mqlite_broker_load_config(b, path), MQLITE_ERR_IO);
    char prefix[96];
    snprintf(prefix, sizeof prefix, "%s:2: ", path);
    CHECK(strncmp(mqlite_broker_errmsg(b), prefix, strlen(prefix)) == 0);
    CHECK_EQ(mqlite_broker_port(b, 0), MQLITE_ERR_RANGE);
    unlink(path);
    mqlite_broker_free(b);
    mqlite_broker_free(holder);
}

/* max_connections: connections beyond the limit are closed at once. */
static void test_config_max_connections(void)
{
    mqlite_broker *b = mqlite_broker_new();
    mqlite_broker_set_int(b, MQLITE_BOPT_SYS_INTERVAL_S, 0);
    CHECK_EQ(load(b, "listener 0 127.0.0.1\nmax_connections 1\n"), 0);
    int port = mqlite_broker_port(b, 0);
    tc *c1 = tc_connect(b, port, MQLITE_V311, "one", 1);
    tc *c2 = tc_open(b, port, MQLITE_V311);
    mq_packet k;
    CHECK_EQ(tc_recv(c2, &k, TC_WAIT), TC_CLOSED);
    tc_free(c2);
    CHECK_EQ(tc_subscribe(c1, "t", 0), 0);
    tc_disconnect(c1);
    tb_run(b, 20);
    c2 = tc_connect(b, port, MQLITE_V311, "two", 1);
    tc_disconnect(c2);
    mqlite_broker_free(b);
}

int main(int argc, char **argv)
{
    TEST_MAIN_BEGIN(argc, argv);
    RUN(test_config_every_key);
    RUN(test_config_special_values);
    RUN(test_config_errors_name_file_and_line);
    RUN(test_config_listener_in_use);
    RUN(test_config_max_connections);
    TEST_MAIN_END();
}
