/*
 * subscribe_poll.c - subscribe and print messages, driving the client from
 * your own poll() loop: the client says which fd to watch, whether it wants
 * to write, and when it next needs a call; you call mqlite_client_io().
 *
 * usage: example_subscribe_poll [HOST [PORT [FILTER [COUNT]]]]
 *        (default 127.0.0.1 1883 demo/# 3; exits after COUNT messages)
 */
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>

#include <mqlite.h>

int main(int argc, char **argv)
{
    const char *host = argc > 1 ? argv[1] : "127.0.0.1";
    int port = argc > 2 ? atoi(argv[2]) : 1883;
    const char *filter = argc > 3 ? argv[3] : "demo/#";
    int want = argc > 4 ? atoi(argv[4]) : 3;

    mqlite_client *c = mqlite_client_new("example-subscribe-poll");
    if (!c || mqlite_client_connect(c, host, port) < 0 ||
        mqlite_client_subscribe(c, filter, 2, NULL) < 0) {
        fprintf(stderr, "subscribe_poll: %s\n", mqlite_client_errmsg(c));
        mqlite_client_free(c);
        return 1;
    }
    int got = 0, status = 0;
    while (got < want && status == 0) {
        struct pollfd p = {mqlite_client_fd(c), POLLIN, 0};
        if (mqlite_client_want_write(c))
            p.events |= POLLOUT;
        int timeout = mqlite_client_next_timeout_ms(c); /* -1: no deadline */
        int n = poll(&p, p.fd >= 0 ? 1 : 0, timeout < 0 || timeout > 1000 ? 1000 : timeout);
        mqlite_client_io(c, n > 0 && (p.revents & (POLLIN | POLLHUP | POLLERR)),
                         n > 0 && (p.revents & POLLOUT));
        const mqlite_event *ev;
        while ((ev = mqlite_client_next_event(c)) != NULL) {
            switch (mqlite_event_type(ev)) {
            case MQLITE_EVENT_SUBACK:
                printf("subscribed to %s, granted QoS %d\n", filter, mqlite_event_reason_at(ev, 0));
                fflush(stdout);
                break;
            case MQLITE_EVENT_MESSAGE: {
                size_t len;
                const char *payload = mqlite_event_payload(ev, &len);
                printf("%s (QoS %d): %.*s\n", mqlite_event_topic(ev, NULL), mqlite_event_qos(ev),
                       (int)len, payload);
                fflush(stdout);
                got++;
                break;
            }
            case MQLITE_EVENT_CONNECT_FAILED:
            case MQLITE_EVENT_DISCONNECTED:
                fprintf(stderr, "subscribe_poll: %s\n", mqlite_event_text(ev));
                status = 1;
                break;
            default:
                break;
            }
        }
    }
    mqlite_client_free(c);
    return status;
}
