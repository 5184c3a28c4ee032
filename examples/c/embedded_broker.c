/* ctest */
/*
 * embedded_broker.c - a broker and a client in one program, one thread: the
 * broker listens on a free port, the client connects to it, subscribes,
 * publishes to itself at QoS 2, and both are driven by the same loop.
 *
 * usage: example_embedded_broker
 */
#include <stdio.h>
#include <string.h>

#include <mqlite.h>

int main(void)
{
    mqlite_broker *b = mqlite_broker_new();
    int32_t port = 0;
    if (!b || mqlite_broker_listen(b, "127.0.0.1", 0, &port) < 0) {
        fprintf(stderr, "embedded_broker: %s\n", mqlite_broker_errmsg(b));
        mqlite_broker_free(b);
        return 1;
    }
    printf("broker listening on 127.0.0.1:%d\n", port);

    mqlite_client *c = mqlite_client_new("example-embedded");
    mqlite_client_set_int(c, MQLITE_OPT_PROTOCOL, MQLITE_V5);
    mqlite_client_connect(c, "127.0.0.1", port);
    mqlite_client_subscribe(c, "greetings/#", 2, NULL);
    const char *msg = "hello from the same process";
    mqlite_client_publish(c, "greetings/world", msg, strlen(msg), 2, 0, NULL);

    int status = 1;
    for (int round = 0; round < 1000 && status; round++) {
        mqlite_broker_poll(b, 0);   /* serve what is ready, never wait */
        mqlite_client_poll(c, 5);   /* then let the client wait briefly */
        const mqlite_event *ev;
        while ((ev = mqlite_client_next_event(c)) != NULL) {
            if (mqlite_event_type(ev) == MQLITE_EVENT_MESSAGE) {
                printf("received on %s at QoS %d: %s\n", mqlite_event_topic(ev, NULL),
                       mqlite_event_qos(ev), (const char *)mqlite_event_payload(ev, NULL));
                status = 0;
            }
        }
    }
    mqlite_client_free(c);
    mqlite_broker_free(b);
    return status;
}
