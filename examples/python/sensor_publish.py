"""Publish sensor readings: one JSON message per reading at QoS 1, each
acknowledged by the broker, with `loop()` (not time.sleep) between them
so the connection is served while waiting (keep-alive, acknowledgements).

usage: sensor_publish.py [--host H] [--port P] [--count N] [--interval S]
                         [--topic T]
"""
from __future__ import annotations

import argparse
import json
import math
import time

import mqlite


def reading(i: int) -> dict:
    """A made-up temperature and humidity reading."""
    return {"seq": i, "ts": round(time.time(), 3),
            "temp_c": round(21.0 + 2.0 * math.sin(i / 5), 2),
            "humidity": round(45.0 + 5.0 * math.cos(i / 7), 1)}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, default=1883)
    ap.add_argument("--count", type=int, default=10)
    ap.add_argument("--interval", type=float, default=1.0)
    ap.add_argument("--topic", default="sensors/demo/env")
    a = ap.parse_args()

    # auto_reconnect: readings published while the broker is away wait in
    # the client's queue and go out after the reconnect.
    with mqlite.Client(client_id="sensor-demo", host=a.host, port=a.port,
                       auto_reconnect=True) as c:
        for i in range(a.count):
            h = c.publish(a.topic, json.dumps(reading(i)), qos=1)
            h.wait(timeout=10)  # raises on failure: PUBACK is in
            print(f"published #{i} (packet id {h.packet_id})", flush=True)
            if i + 1 < a.count:
                c.loop(timeout=a.interval)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
