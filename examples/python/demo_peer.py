"""The Python side of scripts/demo.sh: connect with a will, receive the four
demo messages (QoS 0, 1, 2 and a retained one), answer each QoS on
demo/reply/, then drop the connection without DISCONNECT so that the broker
publishes the will.

usage: demo_peer.py PORT
"""
import os
import sys
import time

from mqlite import mqlite_c as c

EV_CONNECTED, EV_MESSAGE, EV_SUBACK = c.MQLITE_EVENT_CONNECTED, c.MQLITE_EVENT_MESSAGE, c.MQLITE_EVENT_SUBACK


def main() -> int:
    port = int(sys.argv[1])
    cl = c.mqlite_client_new("demo-python")
    c.mqlite_client_set_int(cl, c.MQLITE_OPT_PROTOCOL, 5)
    c.mqlite_client_set_str(cl, c.MQLITE_OPT_WILL_TOPIC, "demo/status")
    c.mqlite_client_set_bytes(cl, c.MQLITE_OPT_WILL_PAYLOAD, b"python peer vanished")
    c.mqlite_client_set_int(cl, c.MQLITE_OPT_WILL_QOS, 1)
    c.mqlite_client_set_int(cl, c.MQLITE_OPT_WILL_RETAIN, 1)
    c.mqlite_client_connect(cl, "127.0.0.1", port)
    c.client_subscribe(cl, "demo/#", 2)
    seen = 0
    deadline = time.monotonic() + 20
    while seen < 4 and time.monotonic() < deadline:
        c.mqlite_client_poll(cl, 200)
        for ev in c.client_drain(cl, 100):
            kind, topic, payload, qos, retain = ev[0], ev[5], ev[6], ev[7], ev[8]
            if kind == EV_SUBACK:
                print("python: subscribed to demo/#", flush=True)
            elif kind == EV_MESSAGE and not topic.startswith(b"demo/reply/"):
                seen += 1
                print(f"python: got {topic.decode()} qos={qos} retain={retain}: "
                      f"{payload.decode(errors='replace')}", flush=True)
    for qos in (0, 1, 2):
        c.client_publish(cl, f"demo/reply/{qos}", f"python says thanks at QoS {qos}".encode(),
                         qos, 0, None)
    while c.mqlite_client_inflight(cl) or c.mqlite_client_queued(cl) or c.mqlite_client_want_write(cl):
        c.mqlite_client_poll(cl, 100)
        c.client_drain(cl, 100)
    print("python: replied at QoS 0, 1 and 2; exiting without DISCONNECT", flush=True)
    os.close(c.mqlite_client_fd(cl))  # the connection just breaks: the will fires
    os._exit(0 if seen == 4 else 1)


if __name__ == "__main__":
    sys.exit(main())
