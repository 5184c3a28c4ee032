#!/usr/bin/python3
"""bench/bench_python.py - Python clients through one broker: mqlite's
Python package against paho-mqtt (Debian's python3-paho-mqtt 1.6).

One process publishes N messages, another receives them, through the same
broker; each library runs both sides in turn, in the same run, at each QoS
and payload size asked for. The rate is messages received per second from
the publisher's first publish to the subscriber's last message (both
processes read CLOCK_MONOTONIC); the publisher's own rate and the losses
(lost / duplicated / out of order, from a sequence number in each payload)
are printed beside it.

    bench_python.py run -p PORT [-n N] [-q 0,1] [-s 64,1024] [-l mqlite,paho]

What each library does is what its users write:
  mqlite         publisher: Client.publish_many() in batches of 1000, then
                 flush(); subscriber: `for msg in c.messages(timeout=...)`.
  mqlite-single  publisher: Client.publish() per message (a handle each),
                 then flush(); subscriber as above.
  paho           publisher: loop_start() + publish() per message, then
                 wait_for_publish() on the last; subscriber: on_message
                 callback under loop_start().
Both use MQTT 3.1.1, the same QoS 1 window (-w), TCP_NODELAY as each
library sets it by default (mqlite: on; paho 1.6: on).

Output: `name=value unit` lines (see bench/python_vs_paho.sh).
"""
from __future__ import annotations

import argparse
import collections
import json
import os
import subprocess
import sys
import threading
import time
from typing import Any, Dict, List

BATCH = 1000


def _payload(seq: int, pad: bytes) -> bytes:
    return seq.to_bytes(8, "big") + pad


class Tally:
    """Counts arrivals by sequence number: received, duplicates, out of order."""

    def __init__(self, n: int) -> None:
        self.seen = bytearray(n)
        self.received = 0
        self.dups = 0
        self.ooo = 0
        self.last = -1
        self.t_first = 0.0
        self.t_last = 0.0

    def result(self) -> Dict[str, Any]:
        return {"received": self.received, "dups": self.dups, "ooo": self.ooo,
                "lost": len(self.seen) - (self.received - self.dups),
                "t_first": self.t_first, "t_last": self.t_last}


# ---------------------------------------------------------------------------
# mqlite
# ---------------------------------------------------------------------------

def mqlite_sub(a: argparse.Namespace) -> Dict[str, Any]:
    import mqlite
    n = a.n
    tally = Tally(n)
    seen = tally.seen
    with mqlite.Client(client_id=f"bench-sub-{os.getpid()}", host=a.host, port=a.port,
                       max_inflight=a.window) as c:
        c.subscribe(a.topic, qos=a.qos).wait(10)
        print("ready", flush=True)
        received = dups = ooo = 0
        last = -1
        # The loop a user writes: iterate, look at the payload.
        for msg in c.messages(timeout=a.idle):
            seq = int.from_bytes(msg.payload[:8], "big")
            if seen[seq]:
                dups += 1
            seen[seq] = 1
            if seq < last:
                ooo += 1
            last = seq
            received += 1
            if received == 1:
                tally.t_first = time.monotonic()
            if received - dups >= n:
                break
        tally.t_last = time.monotonic()
        tally.received, tally.dups, tally.ooo = received, dups, ooo
    return tally.result()


def mqlite_pub(a: argparse.Namespace, single: bool = False) -> Dict[str, Any]:
    import mqlite
    pad = b"x" * (a.size - 8)
    with mqlite.Client(client_id=f"bench-pub-{os.getpid()}", host=a.host, port=a.port,
                       max_inflight=a.window) as c:
        t0 = time.monotonic()
        if single:
            publish = c.publish
            topic, qos = a.topic, a.qos
            for i in range(a.n):
                publish(topic, _payload(i, pad), qos)
        else:
            for start in range(0, a.n, BATCH):
                c.publish_many(a.topic, [_payload(i, pad)
                                         for i in range(start, min(a.n, start + BATCH))], a.qos)
        t_queued = time.monotonic()
        c.flush(timeout=120)
        t_end = time.monotonic()
    return {"t_start": t0, "t_queued": t_queued, "t_end": t_end}


# ---------------------------------------------------------------------------
# paho-mqtt 1.6
# ---------------------------------------------------------------------------

def paho_sub(a: argparse.Namespace) -> Dict[str, Any]:
    import paho.mqtt.client as mqtt
    n = a.n
    tally = Tally(n)
    seen = tally.seen
    done = threading.Event()
    state = {"received": 0, "dups": 0, "ooo": 0, "last": -1, "t_any": time.monotonic()}

    def on_message(client: Any, userdata: Any, msg: Any) -> None:
        seq = int.from_bytes(msg.payload[:8], "big")
        if seen[seq]:
            state["dups"] += 1
        seen[seq] = 1
        if seq < state["last"]:
            state["ooo"] += 1
        state["last"] = seq
        state["received"] += 1
        now = time.monotonic()
        if state["received"] == 1:
            tally.t_first = now
        tally.t_last = now
        state["t_any"] = now
        if state["received"] - state["dups"] >= n:
            done.set()

    subscribed = threading.Event()
    c = mqtt.Client(client_id=f"bench-sub-{os.getpid()}", protocol=mqtt.MQTTv311)
    c.max_inflight_messages_set(a.window)
    c.on_message = on_message
    c.on_subscribe = lambda *args: subscribed.set()
    c.connect(a.host, a.port)
    c.loop_start()
    c.subscribe(a.topic, qos=a.qos)
    if not subscribed.wait(10):
        raise SystemExit("paho: no SUBACK")
    print("ready", flush=True)
    while not done.wait(0.2):
        if state["received"] and time.monotonic() - state["t_any"] > a.idle:
            break
        if not state["received"] and time.monotonic() - state["t_any"] > a.idle + 30:
            break
    c.disconnect()
    c.loop_stop()
    tally.received, tally.dups, tally.ooo = state["received"], state["dups"], state["ooo"]
    return tally.result()


def paho_pub(a: argparse.Namespace) -> Dict[str, Any]:
    import paho.mqtt.client as mqtt
    pad = b"x" * (a.size - 8)
    connected = threading.Event()
    c = mqtt.Client(client_id=f"bench-pub-{os.getpid()}", protocol=mqtt.MQTTv311)
    c.max_inflight_messages_set(a.window)
    c.max_queued_messages_set(0)
    c.on_connect = lambda *args: connected.set()
    c.connect(a.host, a.port)
    c.loop_start()
    if not connected.wait(10):
        raise SystemExit("paho: no CONNACK")
    t0 = time.monotonic()
    info = None
    publish = c.publish
    topic, qos = a.topic, a.qos
    # paho refuses a packet id still queued (ERR_QUEUE_SIZE) once 65535
    # QoS 1/2 messages wait: keep at most 50000 outstanding.
    pending: "collections.deque[Any]" = collections.deque()
    for i in range(a.n):
        info = publish(topic, _payload(i, pad), qos)
        if qos:
            pending.append(info)
            if len(pending) >= 50000:
                pending.popleft().wait_for_publish(120)
    t_queued = time.monotonic()
    if info is not None:
        info.wait_for_publish(120)
    # QoS 0: wait_for_publish only says the last one was handed over; let
    # the loop thread write out what it still holds.
    deadline = time.monotonic() + 120
    while (c._out_packet or c._out_messages) and time.monotonic() < deadline:  # noqa: SLF001
        time.sleep(0.001)
    t_end = time.monotonic()
    c.disconnect()
    c.loop_stop()
    return {"t_start": t0, "t_queued": t_queued, "t_end": t_end}


# ---------------------------------------------------------------------------
# orchestration
# ---------------------------------------------------------------------------

ROLES = {
    ("mqlite", "sub"): mqlite_sub,
    ("mqlite", "pub"): mqlite_pub,
    ("mqlite-single", "sub"): mqlite_sub,
    ("mqlite-single", "pub"): lambda a: mqlite_pub(a, single=True),
    ("paho", "sub"): paho_sub,
    ("paho", "pub"): paho_pub,
}


def role_main(a: argparse.Namespace) -> None:
    res = ROLES[(a.lib, a.role)](a)
    print("result " + json.dumps(res), flush=True)


def one_case(a: argparse.Namespace, lib: str, qos: int, size: int) -> Dict[str, Any]:
    topic = f"bench/{lib}/{qos}/{size}/{os.getpid()}/{time.monotonic_ns()}"
    base = [sys.executable, os.path.abspath(__file__), "--host", a.host, "-p", str(a.port),
            "-n", str(a.n), "-w", str(a.window), "--idle", str(a.idle), "--lib", lib,
            "--qos", str(qos), "--size", str(size), "--topic", topic]
    sub = subprocess.Popen(base + ["--role", "sub"], stdout=subprocess.PIPE, text=True)
    try:
        line = sub.stdout.readline()  # type: ignore[union-attr]
        if line.strip() != "ready":
            raise SystemExit(f"{lib} subscriber did not start: {line!r}")
        pub = subprocess.run(base + ["--role", "pub"], stdout=subprocess.PIPE, text=True,
                             timeout=600)
        if pub.returncode != 0:
            raise SystemExit(f"{lib} publisher failed ({pub.returncode})")
        out, _ = sub.communicate(timeout=600)
    finally:
        if sub.poll() is None:
            sub.kill()
            sub.wait()
    p = json.loads(pub.stdout.split("result ", 1)[1])
    s = json.loads(out.split("result ", 1)[1])
    elapsed = max(s["t_last"] - p["t_start"], 1e-9)
    uniq = s["received"] - s["dups"]
    return {
        "lib": lib, "qos": qos, "size": size,
        "rate": uniq / elapsed,
        "pub_rate": a.n / max(p["t_end"] - p["t_start"], 1e-9),
        "lost": s["lost"], "dups": s["dups"], "ooo": s["ooo"],
    }


def run_main(a: argparse.Namespace) -> None:
    libs = a.libs.split(",")
    results: List[Dict[str, Any]] = []
    for qos in (int(q) for q in a.qos_list.split(",")):
        for size in (int(s) for s in a.sizes.split(",")):
            by_lib = {}
            for lib in libs:
                best = None
                for _ in range(a.repeat):
                    r = one_case(a, lib, qos, size)
                    if best is None or r["rate"] > best["rate"]:
                        best = r
                assert best is not None
                by_lib[lib] = best
                results.append(best)
                tag = f"{a.label}{lib}_qos{qos}_{size}B"
                print(f"{tag}_msgs_per_s={best['rate']:.0f} msgs/s", flush=True)
                print(f"{tag}_publisher_msgs_per_s={best['pub_rate']:.0f} msgs/s")
                print(f"{tag}_lost={best['lost']} msgs")
                print(f"{tag}_duplicated={best['dups']} msgs")
                print(f"{tag}_out_of_order={best['ooo']} msgs", flush=True)
            if "paho" in by_lib:
                for lib in libs:
                    if lib != "paho":
                        ratio = by_lib[lib]["rate"] / max(by_lib["paho"]["rate"], 1e-9)
                        print(f"{a.label}ratio_{lib}_over_paho_qos{qos}_{size}B={ratio:.2f} x",
                              flush=True)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("mode", nargs="?", default="role", choices=["run", "role"])
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("-p", "--port", type=int, required=True)
    ap.add_argument("-n", type=int, default=100000, help="messages per case")
    ap.add_argument("-w", "--window", type=int, default=100, help="QoS 1 in-flight window")
    ap.add_argument("--idle", type=float, default=5.0,
                    help="subscriber gives up after this many idle seconds")
    ap.add_argument("-q", "--qos-list", default="0,1")
    ap.add_argument("-s", "--sizes", default="64,1024")
    ap.add_argument("-l", "--libs", default="mqlite,paho")
    ap.add_argument("-r", "--repeat", type=int, default=1, help="runs per case; best kept")
    ap.add_argument("--label", default="", help="prefix of every output name")
    # role mode (internal)
    ap.add_argument("--lib")
    ap.add_argument("--role", choices=["pub", "sub"])
    ap.add_argument("--qos", type=int)
    ap.add_argument("--size", type=int)
    ap.add_argument("--topic")
    a = ap.parse_args()
    if a.mode == "run":
        run_main(a)
    else:
        role_main(a)


if __name__ == "__main__":
    main()
