"""MQTT 5.0 enhanced authentication with SCRAM-SHA-256 against `mqlite broker`.

The client side is written here from RFC 5802 / RFC 7677 with Python's
hashlib and hmac (no code shared with the broker); packets are built and
parsed with mqlite's codec through the Python binding (tests/python/peers.py:
encode, Framer). Credentials come from `mqlite passwd --scram`. Covered:
success (and the server's signature verified), wrong password, unknown
user, an unsupported method (CONNACK 0x8C), re-authentication (AUTH 0x19)
in an open session, and a failed re-authentication (DISCONNECT 0x87).
"""
from __future__ import annotations

import base64
import hashlib
import hmac
import os
import secrets
import signal
import socket
import subprocess
import time
from pathlib import Path

import pytest

from mqlite import mqlite_c as m
from peers import Framer, encode

WAIT = 10.0
METHOD = "SCRAM-SHA-256"
METHOD_B = METHOD.encode()


def mqlite_bin() -> Path:
    return Path(os.environ.get("MQLITE_BUILD_DIR", "build")) / "bin" / "mqlite"


class ScramClient:
    """RFC 5802 section 3, client side."""

    def __init__(self, user: str, password: str) -> None:
        self.user, self.password = user, password
        self.nonce = base64.b64encode(secrets.token_bytes(18)).decode()
        self.first_bare = f"n={user.replace('=', '=3D').replace(',', '=2C')},r={self.nonce}"

    def first(self) -> bytes:
        return f"n,,{self.first_bare}".encode()

    def final(self, server_first: bytes) -> bytes:
        attrs = dict(kv.split("=", 1) for kv in server_first.decode().split(","))
        assert attrs["r"].startswith(self.nonce)
        salted = hashlib.pbkdf2_hmac("sha256", self.password.encode(),
                                     base64.b64decode(attrs["s"]), int(attrs["i"]))
        client_key = hmac.new(salted, b"Client Key", "sha256").digest()
        stored = hashlib.sha256(client_key).digest()
        without = f"c=biws,r={attrs['r']}"
        self.auth_message = f"{self.first_bare},{server_first.decode()},{without}".encode()
        sig = hmac.new(stored, self.auth_message, "sha256").digest()
        proof = bytes(a ^ b for a, b in zip(client_key, sig))
        self.server_key = hmac.new(salted, b"Server Key", "sha256").digest()
        return f"{without},p={base64.b64encode(proof).decode()}".encode()

    def verify(self, server_final: bytes) -> bool:
        want = hmac.new(self.server_key, self.auth_message, "sha256").digest()
        return server_final == b"v=" + base64.b64encode(want)


class Conn:
    """A raw MQTT 5.0 connection speaking through mqlite's codec."""

    def __init__(self, port: int) -> None:
        self.s = socket.create_connection(("127.0.0.1", port), timeout=WAIT)
        self.framer = Framer(m.MQLITE_V5, server=False)
        self.pending: list = []

    def send(self, ptype: int, **kw) -> None:
        self.s.sendall(encode(ptype, m.MQLITE_V5, **kw))

    def recv(self):
        deadline = time.monotonic() + WAIT
        while not self.pending:
            if time.monotonic() > deadline:
                raise TimeoutError("no packet")
            data = self.s.recv(65536)
            if not data:
                return None
            self.pending.extend(self.framer.feed(data))
        return self.pending.pop(0)

    def close(self) -> None:
        self.s.close()


def auth_props(data: bytes, method: str = METHOD) -> list:
    return [(m.MQLITE_PROP_AUTH_METHOD, method), (m.MQLITE_PROP_AUTH_DATA, data)]


def scram_connect(port: int, user: str, password: str):
    """(connection, scram client, CONNACK packet)."""
    sc = ScramClient(user, password)
    c = Conn(port)
    c.send(m.MQLITE_PKT_CONNECT, client_id=f"scram-{secrets.token_hex(3)}", clean_start=1,
           keepalive=30, props=auth_props(sc.first()))
    auth = c.recv()
    assert auth.type == m.MQLITE_PKT_AUTH and auth.reason == 0x18, auth
    assert auth.prop(m.MQLITE_PROP_AUTH_METHOD) == METHOD_B
    c.send(m.MQLITE_PKT_AUTH, reason=0x18,
           props=auth_props(sc.final(auth.prop(m.MQLITE_PROP_AUTH_DATA))))
    return c, sc, c.recv()


@pytest.fixture(scope="module")
def broker(tmp_path_factory):
    exe = mqlite_bin()
    if not exe.exists():
        pytest.skip(f"{exe} not built")
    d = tmp_path_factory.mktemp("scram")
    creds = d / "scram"
    subprocess.run([str(exe), "passwd", "--scram", "-c", "-b", str(creds), "alice", "pencil"],
                   check=True)
    subprocess.run([str(exe), "passwd", "--scram", "-I", "10000", "-b", str(creds), "bob",
                    "Tr0ub4dor&3"], check=True)
    assert creds.read_text().startswith("alice:SCRAM-SHA-256$4096:")
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    conf = d / "broker.conf"
    conf.write_text(f"listener {port} 127.0.0.1\nscram_file {creds}\n")
    log = open(d / "log", "w+b")
    proc = subprocess.Popen([str(exe), "broker", "-c", str(conf)], stdout=log, stderr=log)
    deadline = time.monotonic() + WAIT
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
            break
        except OSError:
            assert proc.poll() is None and time.monotonic() < deadline, "broker did not start"
            time.sleep(0.05)
    yield port, log
    os.kill(proc.pid, signal.SIGTERM)
    proc.wait(timeout=WAIT)
    log.close()


@pytest.mark.spec("5.0", "MQTT-4.12.0-5")
@pytest.mark.parametrize("user,password", [("alice", "pencil"), ("bob", "Tr0ub4dor&3")])
def test_scram_success_and_server_proof(broker, user, password) -> None:
    """The CONNACK carries the method and server-final-message, whose
    signature proves the broker holds the user's ServerKey."""
    port, _ = broker
    c, sc, ack = scram_connect(port, user, password)
    assert ack.type == m.MQLITE_PKT_CONNACK and ack.reason == 0
    assert ack.prop(m.MQLITE_PROP_AUTH_METHOD) == METHOD_B
    assert sc.verify(ack.prop(m.MQLITE_PROP_AUTH_DATA))
    c.send(m.MQLITE_PKT_SUBSCRIBE, pid=1, topics=[("scram/t", 1)])
    assert c.recv().type == m.MQLITE_PKT_SUBACK
    c.close()


@pytest.mark.spec("5.0", "MQTT-4.12.0-4")
@pytest.mark.parametrize("user,password", [("alice", "pencil!"), ("mallory", "pencil")])
def test_scram_wrong_password_or_user_refused(broker, user, password) -> None:
    """A wrong password and an unknown user look the same: CONNACK 0x87,
    connection closed, nothing secret in the log."""
    port, log = broker
    c, _, ack = scram_connect(port, user, password)
    assert ack.type == m.MQLITE_PKT_CONNACK and ack.reason == 0x87
    assert c.recv() is None
    c.close()
    log.flush()
    log.seek(0)
    text = log.read().decode(errors="replace")
    assert "authentication failed" in text and password not in text


@pytest.mark.spec("5.0", "MQTT-4.12.0-1")
def test_scram_unsupported_method(broker) -> None:
    port, _ = broker
    c = Conn(port)
    c.send(m.MQLITE_PKT_CONNECT, client_id="m1", clean_start=1, keepalive=30,
           props=auth_props(b"x", method="SCRAM-SHA-1"))
    ack = c.recv()
    assert ack.type == m.MQLITE_PKT_CONNACK and ack.reason == 0x8C
    c.close()


@pytest.mark.spec("5.0", "MQTT-4.12.1-1")
def test_scram_reauthentication(broker) -> None:
    """AUTH 0x19 starts SCRAM again inside the session; messages keep
    flowing; success is AUTH 0x00 with the server's signature; a wrong
    password ends the connection with DISCONNECT 0x87 (5.0 [MQTT-4.12.1-2])."""
    port, _ = broker
    c, _, ack = scram_connect(port, "alice", "pencil")
    assert ack.reason == 0
    c.send(m.MQLITE_PKT_SUBSCRIBE, pid=1, topics=[("re/#", 0)])
    assert c.recv().type == m.MQLITE_PKT_SUBACK
    for password, ok in (("pencil", True), ("crayon", False)):
        sc = ScramClient("alice", password)
        c.send(m.MQLITE_PKT_AUTH, reason=0x19, props=auth_props(sc.first()))
        c.send(m.MQLITE_PKT_PUBLISH, topic="re/x", payload=b"during", qos=0)
        got = [c.recv(), c.recv()]
        auth = next(p for p in got if p.type == m.MQLITE_PKT_AUTH)
        assert any(p.type == m.MQLITE_PKT_PUBLISH and p.payload == b"during" for p in got)
        assert auth.reason == 0x18
        c.send(m.MQLITE_PKT_AUTH, reason=0x18,
               props=auth_props(sc.final(auth.prop(m.MQLITE_PROP_AUTH_DATA))))
        r = c.recv()
        if ok:
            assert r.type == m.MQLITE_PKT_AUTH and r.reason == 0
            assert sc.verify(r.prop(m.MQLITE_PROP_AUTH_DATA))
        else:
            assert r.type == m.MQLITE_PKT_DISCONNECT and r.reason == 0x87
            assert c.recv() is None
    c.close()
