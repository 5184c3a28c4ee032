/*
 * publish.c - publish a few messages at QoS 0, 1 and 2 and wait until each
 * QoS 1/2 flow is complete, with the blocking convenience layer.
 *
 * usage: example_publish [HOST [PORT [TOPIC]]]   (default 127.0.0.1 1883 demo/temp)
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <mqlite.h>

static int fail(mqlite_client *c, const char *what)
{
    fprintf(stderr, "publish: %s: %s\n", what, mqlite_client_errmsg(c));
    mqlite_client_free(c);
    return 1;
}

int main(int argc, char **argv)
{
    const char *host = argc > 1 ? argv[1] : "127.0.0.1";
    int port = argc > 2 ? atoi(argv[2]) : 1883;
    const char *topic = argc > 3 ? argv[3] : "demo/temp";

    mqlite_client *c = mqlite_client_new("example-publish");
    if (!c)
        return 1;
    mqlite_client_set_int(c, MQLITE_OPT_PROTOCOL, MQLITE_V5);
    if (mqlite_client_connect(c, host, port) < 0 || mqlite_client_wait_connected(c, 5000) < 0)
        return fail(c, "connect");
    for (int qos = 0; qos <= 2; qos++) {
        char msg[64];
        snprintf(msg, sizeof msg, "21.%d degrees at QoS %d", qos, qos);
        int32_t pid = 0;
        if (mqlite_client_publish(c, topic, msg, strlen(msg), qos, 0, &pid) < 0)
            return fail(c, "publish");
        if (qos > 0 && mqlite_client_wait(c, pid, 5000) < 0)
            return fail(c, "wait");
        printf("published \"%s\" to %s at QoS %d%s\n", msg, topic, qos,
               qos ? " (acknowledged)" : "");
    }
    /* Read the outcomes the waits left queued: one PUBLISHED per QoS 1/2. */
    const mqlite_event *ev;
    int done = 0;
    while ((ev = mqlite_client_next_event(c)) != NULL)
        if (mqlite_event_type(ev) == MQLITE_EVENT_PUBLISHED && mqlite_event_error(ev) == 0)
            done++;
    mqlite_client_disconnect(c, 0);
    while (mqlite_client_state(c) != MQLITE_STATE_IDLE && mqlite_client_poll(c, 100) >= 0)
        ;
    mqlite_client_free(c);
    printf("%d QoS 1/2 flows completed\n", done);
    return done == 2 ? 0 : 1;
}
