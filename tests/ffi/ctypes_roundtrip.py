#!/usr/bin/env python3
"""ABI proof from Python ctypes (not the SWIG module).

Loads libmqlite.so.0 with ctypes, declares argtypes/restype for every
function it calls (opaque handles as pointers to incomplete structures, as
mqlite.h declares them), starts an embedded broker on port 0 and drives it
with mqlite_broker_poll() in the same loop as two clients (3.1.1 and 5.0).
QoS 0, 1 and 2 messages go both ways, text, binary with NUL bytes, empty
and 64 KiB payloads, and are compared byte for byte; every event is drained
and every handle freed.

The scenario runs twice: once with plain mqlite_*_new() (malloc), once with
mqlite_*_new_with_allocator() and a counting allocator written in Python
(a ctypes callback over libc realloc/free), which must end with 0 live
allocations: the leak check that holds in any build.

Usage: ctypes_roundtrip.py [path/to/libmqlite.so.0]
(default: $MQLITE_BUILD_DIR/lib/libmqlite.so.0). Exit status 0 and a last
line "ctypes: OK" on success. Every loop is bounded; traffic is loopback.
"""
import ctypes
import os
import sys
from ctypes import (CFUNCTYPE, POINTER, Structure, byref, c_char_p, c_int32, c_int64,
                    c_size_t, c_void_p)

TAG = "ctypes"
MAX_ROUNDS = 20000  # each round waits at most 1 ms in mqlite_broker_poll


class Broker(Structure):
    """struct mqlite_broker (incomplete)."""


class Client(Structure):
    """struct mqlite_client (incomplete)."""


class Event(Structure):
    """struct mqlite_event (incomplete)."""


BrokerP, ClientP, EventP = POINTER(Broker), POINTER(Client), POINTER(Event)
# typedef void *(*mqlite_realloc_fn)(void *ud, void *ptr, size_t size);
REALLOC_FN = CFUNCTYPE(c_void_p, c_void_p, c_void_p, c_size_t)

# Constants, as in mqlite.h.
MQLITE_OK = 0
MQLITE_ERR_TOPIC_NAME = -122
MQLITE_OPT_PROTOCOL = 1
MQLITE_BOPT_SYS_INTERVAL_S = 12
MQLITE_BOPT_LOG_LEVEL = 14
MQLITE_LOG_ERROR = 1
EV_CONNECTED, EV_CONNECT_FAILED, EV_DISCONNECTED, EV_MESSAGE = 1, 2, 3, 4
EV_PUBLISHED, EV_PUBLISH_LOST, EV_SUBACK, EV_UNSUBACK, EV_ERROR = 5, 6, 7, 8, 9
STATE_IDLE = 0

SIGNATURES = {
    # name: (restype, argtypes)
    "mqlite_version": (c_int32, [POINTER(c_char_p)]),
    "mqlite_strerror": (c_char_p, [c_int32]),
    "mqlite_error_name": (c_char_p, [c_int32]),
    "mqlite_event_type_name": (c_char_p, [c_int32]),
    "mqlite_broker_new": (BrokerP, []),
    "mqlite_broker_new_with_allocator": (BrokerP, [REALLOC_FN, c_void_p]),
    "mqlite_broker_set_int": (c_int32, [BrokerP, c_int32, c_int64]),
    "mqlite_broker_listen": (c_int32, [BrokerP, c_char_p, c_int32, POINTER(c_int32)]),
    "mqlite_broker_port": (c_int32, [BrokerP, c_int32]),
    "mqlite_broker_poll": (c_int32, [BrokerP, c_int32]),
    "mqlite_broker_stop": (None, [BrokerP]),
    "mqlite_broker_stat": (c_int64, [BrokerP, c_int32]),
    "mqlite_broker_errmsg": (c_char_p, [BrokerP]),
    "mqlite_broker_free": (None, [BrokerP]),
    "mqlite_client_new": (ClientP, [c_char_p]),
    "mqlite_client_new_with_allocator": (ClientP, [c_char_p, REALLOC_FN, c_void_p]),
    "mqlite_client_set_int": (c_int32, [ClientP, c_int32, c_int64]),
    "mqlite_client_get_int": (c_int64, [ClientP, c_int32]),
    "mqlite_client_connect": (c_int32, [ClientP, c_char_p, c_int32]),
    "mqlite_client_poll": (c_int32, [ClientP, c_int32]),
    "mqlite_client_state": (c_int32, [ClientP]),
    "mqlite_client_subscribe": (c_int32, [ClientP, c_char_p, c_int32, POINTER(c_int32)]),
    "mqlite_client_unsubscribe": (c_int32, [ClientP, c_char_p, POINTER(c_int32)]),
    "mqlite_client_publish": (c_int32, [ClientP, c_char_p, c_void_p, c_size_t, c_int32,
                                        c_int32, POINTER(c_int32)]),
    "mqlite_client_disconnect": (c_int32, [ClientP, c_int32]),
    "mqlite_client_errmsg": (c_char_p, [ClientP]),
    "mqlite_client_next_event": (EventP, [ClientP]),
    "mqlite_client_pending_events": (c_int32, [ClientP]),
    "mqlite_client_free": (None, [ClientP]),
    "mqlite_event_type": (c_int32, [EventP]),
    "mqlite_event_packet_id": (c_int32, [EventP]),
    "mqlite_event_reason": (c_int32, [EventP]),
    "mqlite_event_error": (c_int32, [EventP]),
    "mqlite_event_text": (c_char_p, [EventP]),
    "mqlite_event_topic": (c_void_p, [EventP, POINTER(c_size_t)]),
    "mqlite_event_payload": (c_void_p, [EventP, POINTER(c_size_t)]),
    "mqlite_event_qos": (c_int32, [EventP]),
    "mqlite_event_retain": (c_int32, [EventP]),
    "mqlite_event_count": (c_int32, [EventP]),
    "mqlite_event_reason_at": (c_int32, [EventP, c_int32]),
}


class Failure(Exception):
    pass


def check(cond, what):
    if not cond:
        raise Failure(what)


def load(path):
    lib = ctypes.CDLL(path)
    for name, (restype, argtypes) in SIGNATURES.items():
        fn = getattr(lib, name)
        fn.restype = restype
        fn.argtypes = argtypes
    return lib


def payloads(qos):
    """Text, binary with NULs, empty and 64 KiB (every byte value, NULs too)."""
    big = bytes((i * 7 + qos) & 0xFF for i in range(65536))
    return [b"hello qos %d" % qos, b"\x00bin\x00ary\xff\x00\x01" + bytes([qos]) + b"\x00",
            b"", big]


class Session:
    """Two clients and a broker, driven round by round from one loop."""

    def __init__(self, lib, broker, clients):
        self.lib, self.b, self.clients = lib, broker, clients
        self.events = {name: [] for name in clients}

    def pump(self):
        L = self.lib
        rc = L.mqlite_broker_poll(self.b, 1)
        check(rc == 0, "mqlite_broker_poll: %d %s" % (rc, L.mqlite_broker_errmsg(self.b)))
        for name, c in self.clients.items():
            rc = L.mqlite_client_poll(c, 0)
            check(rc >= 0, "%s: mqlite_client_poll: %d %s" % (name, rc,
                                                            L.mqlite_client_errmsg(c)))
            self.drain(name, c)

    def drain(self, name, c):
        L = self.lib
        for _ in range(100000):
            ev = L.mqlite_client_next_event(c)
            if not ev:
                return
            self.events[name].append(self.copy_event(ev))
        raise Failure("event queue never emptied")

    def copy_event(self, ev):
        """Copy what we keep: accessors' pointers die at the next next_event."""
        L = self.lib
        n = c_size_t()
        d = {"type": L.mqlite_event_type(ev), "pid": L.mqlite_event_packet_id(ev),
             "reason": L.mqlite_event_reason(ev), "error": L.mqlite_event_error(ev),
             "text": L.mqlite_event_text(ev).decode("utf-8", "replace")}
        t = L.mqlite_event_topic(ev, byref(n))
        d["topic"] = ctypes.string_at(t, n.value) if t else None
        p = L.mqlite_event_payload(ev, byref(n))
        d["payload"] = ctypes.string_at(p, n.value) if p else None
        d["qos"] = L.mqlite_event_qos(ev)
        d["codes"] = [L.mqlite_event_reason_at(ev, i) for i in range(L.mqlite_event_count(ev))]
        if d["type"] in (EV_CONNECT_FAILED, EV_ERROR, EV_PUBLISH_LOST):
            raise Failure("unexpected event %s: %s" % (
                L.mqlite_event_type_name(d["type"]).decode(), d["text"]))
        return d

    def wait(self, cond, what):
        for _ in range(MAX_ROUNDS):
            if cond():
                return
            self.pump()
        raise Failure("timed out waiting for " + what)

    def take(self, name, etype):
        return [e for e in self.events[name] if e["type"] == etype]


def scenario(lib, new_broker, new_client, label):
    L = lib
    b = new_broker()
    check(bool(b), "mqlite_broker_new returned NULL")
    clients = {}
    try:
        check(L.mqlite_broker_set_int(b, MQLITE_BOPT_SYS_INTERVAL_S, 0) == 0, "set $SYS")
        check(L.mqlite_broker_set_int(b, MQLITE_BOPT_LOG_LEVEL, MQLITE_LOG_ERROR) == 0, "log")
        port = c_int32(-1)
        rc = L.mqlite_broker_listen(b, b"127.0.0.1", 0, byref(port))
        check(rc == 0, "listen: %d %s" % (rc, L.mqlite_broker_errmsg(b)))
        check(port.value > 0 and L.mqlite_broker_port(b, 0) == port.value, "bound port")
        for name, version in (("a", 4), ("b", 5)):
            c = new_client(("ffi-%s-%s" % (TAG, name)).encode())
            check(bool(c), "mqlite_client_new returned NULL")
            clients[name] = c
            check(L.mqlite_client_set_int(c, MQLITE_OPT_PROTOCOL, version) == 0, "protocol")
            check(L.mqlite_client_get_int(c, MQLITE_OPT_PROTOCOL) == version, "get protocol")
            rc = L.mqlite_client_connect(c, b"127.0.0.1", port.value)
            check(rc == 0, "connect: %d %s" % (rc, L.mqlite_client_errmsg(c)))
        s = Session(L, b, clients)
        s.wait(lambda: all(s.take(n, EV_CONNECTED) for n in clients), "CONNECTED")

        # A usage error reaches the caller as a code and a message.
        a = clients["a"]
        rc = L.mqlite_client_publish(a, b"bad/#", None, 0, 0, 0, None)
        check(rc == MQLITE_ERR_TOPIC_NAME, "wildcard topic: %d" % rc)
        check(L.mqlite_error_name(rc) == b"MQLITE_ERR_TOPIC_NAME", "error name")
        check(L.mqlite_client_errmsg(a) and L.mqlite_strerror(rc), "error words")

        sub_ids = {}
        for name, c in clients.items():
            pid = c_int32(0)
            rc = L.mqlite_client_subscribe(c, ("ffi/to-%s/#" % name).encode(), 2, byref(pid))
            check(rc == 0 and pid.value > 0, "subscribe: %d" % rc)
            sub_ids[name] = pid.value
        s.wait(lambda: all(s.take(n, EV_SUBACK) for n in clients), "SUBACK")
        for name in clients:
            ev = s.take(name, EV_SUBACK)[0]
            check(ev["pid"] == sub_ids[name] and ev["codes"] == [2], "SUBACK %r" % ev)

        expected = {}  # (receiver, topic) -> (payload, qos)
        acks = {n: set() for n in clients}
        for sender, receiver in (("a", "b"), ("b", "a")):
            for qos in (0, 1, 2):
                for i, data in enumerate(payloads(qos)):
                    topic = ("ffi/to-%s/q%d/%d" % (receiver, qos, i)).encode()
                    pid = c_int32(-1)
                    rc = L.mqlite_client_publish(clients[sender], topic, data, len(data), qos, 0,
                                                 byref(pid))
                    check(rc == 0, "publish: %d %s" % (rc,
                                                       L.mqlite_client_errmsg(clients[sender])))
                    check((pid.value == 0) == (qos == 0), "packet id %d for QoS %d" % (
                        pid.value, qos))
                    if qos:
                        acks[sender].add(pid.value)
                    expected[(receiver, topic)] = (data, qos)
        # Our data may go now: mqlite copied it on entry.
        n_msgs, n_acks = len(expected), sum(len(v) for v in acks.values())

        def done():
            got = sum(len(s.take(n, EV_MESSAGE)) for n in clients)
            acked = sum(len(s.take(n, EV_PUBLISHED)) for n in clients)
            return got >= n_msgs and acked >= n_acks
        s.wait(done, "%d messages and %d acknowledgements" % (n_msgs, n_acks))
        for name in clients:
            got = {}
            for ev in s.take(name, EV_MESSAGE):
                key = (name, ev["topic"])
                check(key in expected and key not in got, "unexpected or duplicate %r" % (key,))
                got[key] = ev
                data, qos = expected[key]
                check(ev["payload"] == data, "payload of %r differs (%d vs %d bytes)" % (
                    ev["topic"], len(ev["payload"]), len(data)))
                check(ev["qos"] == qos, "QoS of %r: %d, not %d" % (ev["topic"], ev["qos"], qos))
            published = s.take(name, EV_PUBLISHED)
            check({e["pid"] for e in published} == acks[name], "acks of %s" % name)
            check(all(e["error"] == 0 and e["reason"] < 0x80 for e in published), "ack codes")
        biggest = max(len(d) for d, _ in expected.values())

        for name, c in clients.items():
            rc = L.mqlite_client_unsubscribe(c, ("ffi/to-%s/#" % name).encode(), None)
            check(rc == 0, "unsubscribe: %d" % rc)
        s.wait(lambda: all(s.take(n, EV_UNSUBACK) for n in clients), "UNSUBACK")
        for c in clients.values():
            check(L.mqlite_client_disconnect(c, 0) == 0, "disconnect")
        s.wait(lambda: all(s.take(n, EV_DISCONNECTED) for n in clients), "DISCONNECTED")
        for name, c in clients.items():
            ev = s.take(name, EV_DISCONNECTED)[0]
            check(ev["error"] == 0, "clean disconnect of %s: %r" % (name, ev))
            check(L.mqlite_client_state(c) == STATE_IDLE, "idle after disconnect")
            s.drain(name, c)
            check(L.mqlite_client_pending_events(c) == 0, "events drained")
        print("%s[%s]: %d messages byte-exact (QoS 0/1/2, both ways, empty to %d bytes), "
              "%d QoS>0 acknowledgements" % (TAG, label, n_msgs, biggest, n_acks))
    finally:
        for c in clients.values():
            L.mqlite_client_free(c)
        L.mqlite_broker_stop(b)
        rc = L.mqlite_broker_poll(b, 0)
        L.mqlite_broker_free(b)
    check(rc < 0, "mqlite_broker_poll after mqlite_broker_stop must fail (MQLITE_ERR_STATE)")


class CountingAllocator:
    """A realloc-style allocator in Python over libc, counting live blocks."""

    def __init__(self):
        libc = ctypes.CDLL(None)
        self.realloc = libc.realloc
        self.realloc.restype, self.realloc.argtypes = c_void_p, [c_void_p, c_size_t]
        self.free = libc.free
        self.free.restype, self.free.argtypes = None, [c_void_p]
        self.live = self.total = 0
        self.fn = REALLOC_FN(self._call)  # keep a reference while mqlite may call it

    def _call(self, ud, ptr, size):
        if size == 0:
            if ptr:
                self.live -= 1
                self.free(ptr)
            return None
        q = self.realloc(ptr, size)
        if q and not ptr:
            self.live += 1
            self.total += 1
        return q


def main():
    path = sys.argv[1] if len(sys.argv) > 1 else os.path.join(
        os.environ.get("MQLITE_BUILD_DIR", "build"), "lib", "libmqlite.so.0")
    L = load(path)
    text = c_char_p()
    number = L.mqlite_version(byref(text))
    check(number >= 100 and text.value, "mqlite_version")
    print("%s: mqlite %s (%d) from %s" % (TAG, text.value.decode(), number, path))

    scenario(L, L.mqlite_broker_new, L.mqlite_client_new, "malloc")

    alloc = CountingAllocator()
    scenario(L, lambda: L.mqlite_broker_new_with_allocator(alloc.fn, None),
             lambda cid: L.mqlite_client_new_with_allocator(cid, alloc.fn, None), "allocator")
    check(alloc.total > 0, "the allocator was never called")
    check(alloc.live == 0, "%d allocations never freed" % alloc.live)
    print("%s[allocator]: %d allocations through the Python allocator, 0 live after free"
          % (TAG, alloc.total))
    print("%s: OK" % TAG)
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except Failure as e:
        print("%s: FAIL: %s" % (TAG, e), file=sys.stderr)
        sys.exit(1)
