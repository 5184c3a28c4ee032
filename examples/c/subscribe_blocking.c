/*
 * subscribe_blocking.c - subscribe and print messages with the blocking
 * layer: no loop of your own, just "give me the next event".
 *
 * usage: example_subscribe_blocking [HOST [PORT [FILTER [COUNT]]]]
 */
#include <stdio.h>
#include <stdlib.h>

#include <mqlite.h>

int main(int argc, char **argv)
{
    const char *host = argc > 1 ? argv[1] : "127.0.0.1";
    int port = argc > 2 ? atoi(argv[2]) : 1883;
    const char *filter = argc > 3 ? argv[3] : "demo/#";
    int want = argc > 4 ? atoi(argv[4]) : 3;

    mqlite_client *c = mqlite_client_new("example-subscribe-blocking");
    int32_t pid = 0;
    if (!c || mqlite_client_connect(c, host, port) < 0 ||
        mqlite_client_wait_connected(c, 5000) < 0 ||
        mqlite_client_subscribe(c, filter, 1, &pid) < 0 || mqlite_client_wait(c, pid, 5000) < 0) {
        fprintf(stderr, "subscribe_blocking: %s\n", mqlite_client_errmsg(c));
        mqlite_client_free(c);
        return 1;
    }
    printf("subscribed to %s\n", filter);
    fflush(stdout);
    int got = 0;
    while (got < want) {
        const mqlite_event *ev = mqlite_client_next_event_wait(c, 10000);
        if (!ev) {
            fprintf(stderr, "subscribe_blocking: no message within 10 s\n");
            break;
        }
        if (mqlite_event_type(ev) == MQLITE_EVENT_MESSAGE) {
            size_t len;
            const char *payload = mqlite_event_payload(ev, &len);
            printf("%s: %.*s\n", mqlite_event_topic(ev, NULL), (int)len, payload);
            fflush(stdout);
            got++;
        }
    }
    mqlite_client_free(c);
    return got == want ? 0 : 1;
}
