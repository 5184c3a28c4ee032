"""The Python side of scripts/demo.sh: connect with a will, receive the four
demo messages (QoS 0, 1, 2 and a retained one), answer each QoS on
demo/reply/, then drop the connection without DISCONNECT so that the broker
publishes the will.

usage: demo_peer.py PORT
"""
import os
import sys

import mqlite


def main() -> int:
    port = int(sys.argv[1])
    c = mqlite.Client(client_id="demo-python", port=port, version=5,
                      will=mqlite.Will(topic="demo/status", payload=b"python peer vanished",
                                       qos=1, retain=True))
    c.connect(timeout=10)
    c.subscribe("demo/#", qos=2).wait(10)
    print("python: subscribed to demo/#", flush=True)
    seen = 0
    for msg in c.messages(timeout=20):
        if msg.topic.startswith("demo/reply/"):
            continue
        seen += 1
        print(f"python: got {msg.topic} qos={msg.qos} retain={int(msg.retain)}: "
              f"{msg.payload.decode(errors='replace')}", flush=True)
        if seen == 4:
            break
    for qos in (0, 1, 2):
        c.publish(f"demo/reply/{qos}", f"python says thanks at QoS {qos}", qos)
    c.flush(timeout=10)
    print("python: replied at QoS 0, 1 and 2; exiting without DISCONNECT", flush=True)
    os._exit(0 if seen == 4 else 1)  # the connection just breaks: the will fires


if __name__ == "__main__":
    sys.exit(main())
