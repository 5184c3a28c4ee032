"""A subscriber that prints what it receives.

usage: print_subscriber.py [--host H] [--port P] [--topic FILTER]...
                           [--count N] [--timeout S]

Stops after --count messages (0: never) or when nothing arrived for
--timeout seconds (0: never), and on Ctrl-C.
"""
from __future__ import annotations

import argparse

import mqlite


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, default=1883)
    ap.add_argument("--topic", action="append", default=[])
    ap.add_argument("--count", type=int, default=0)
    ap.add_argument("--timeout", type=float, default=0)
    a = ap.parse_args()
    filters = a.topic or ["#"]

    with mqlite.Client(host=a.host, port=a.port, version=5) as c:
        granted = c.subscribe([(f, 1) for f in filters]).wait(timeout=10)
        print(f"subscribed to {', '.join(filters)} (granted QoS {list(granted)})", flush=True)
        n = 0
        try:
            for msg in c.messages(timeout=a.timeout or None):
                try:
                    body = msg.text
                except UnicodeDecodeError:
                    body = repr(msg.payload)
                flags = " retained" if msg.retain else ""
                print(f"{msg.topic} [QoS {msg.qos}{flags}] {body}", flush=True)
                n += 1
                if a.count and n >= a.count:
                    break
        except KeyboardInterrupt:
            pass
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
