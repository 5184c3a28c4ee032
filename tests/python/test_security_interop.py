"""Security of `mqlite broker` against software nobody here wrote.

- TLS: Debian's mosquitto_pub / mosquitto_sub (--cafile, --cert/--key)
  against mqlite's TLS listeners; a wrong CA, a certificate for another host
  name, an expired certificate and plain MQTT on a TLS port each fail with a
  clear error on both sides, and the broker keeps serving the next client.
- Passwords: a file made by Debian's mosquitto_passwd is accepted by mqlite;
  a file made by `mqlite passwd` is accepted by Debian's mosquitto.
- ACL: the same acl_file gives the same allow/deny outcomes on both brokers
  for a table of cases, with the same clients (paho-mqtt).

Certificates are made at run time with the `openssl` command (an expired
one with `openssl ca -startdate/-enddate`: OpenSSL 3.0's `x509 -days` cannot
go back). Processes are started on free loopback ports and stopped by PID;
every wait is bounded.
"""
from __future__ import annotations

import os
import queue
import shutil
import signal
import socket
import subprocess
import textwrap
import time
import uuid
from pathlib import Path
from typing import Iterator

import pytest

mqtt = pytest.importorskip("paho.mqtt.client")

WAIT = 10.0

pytestmark = pytest.mark.skipif(shutil.which("openssl") is None, reason="openssl not installed")


def need(tool: str) -> None:
    if shutil.which(tool) is None and not Path(tool).exists():
        pytest.skip(f"{tool} is not installed (apt-get install mosquitto mosquitto-clients)")


def mqlite_bin() -> Path:
    if os.environ.get("MQLITE_BIN"):
        return Path(os.environ["MQLITE_BIN"])
    return Path(os.environ.get("MQLITE_BUILD_DIR", "build")) / "bin" / "mqlite"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# ---------------------------------------------------------------------------
# certificates
# ---------------------------------------------------------------------------

GEN = r"""
set -e
cd "$1"
q() { "$@" >/dev/null 2>&1; }
EC='-newkey ec -pkeyopt ec_paramgen_curve:prime256v1'
mk_ca() {
  q openssl req -x509 $EC -nodes -keyout $1.key -out $1.crt -days 30 -subj "/CN=$1 test CA" \
    -addext basicConstraints=critical,CA:TRUE -addext keyUsage=critical,keyCertSign,cRLSign
}
mk_cert() {
  q openssl req $EC -nodes -keyout $1.key -out $1.csr -subj "$2"
  printf 'subjectAltName=%s\nbasicConstraints=CA:FALSE\n' "$4" > $1.ext
  q openssl x509 -req -in $1.csr -CA $3.crt -CAkey $3.key -CAcreateserial -out $1.crt \
    -days 30 -extfile $1.ext
}
mk_ca ca
mk_ca otherca
mk_cert server /CN=localhost ca DNS:localhost,IP:127.0.0.1
mk_cert wronghost /CN=wronghost.invalid ca DNS:wronghost.invalid
mk_cert alice /CN=alice ca DNS:alice
mk_cert mallory /CN=mallory otherca DNS:mallory
mkdir -p db && : > db/index.txt && echo 1000 > db/serial
printf '[ca]\ndefault_ca=t\n[t]\ndir=.\ndatabase=db/index.txt\nserial=db/serial\nnew_certs_dir=db\ncertificate=ca.crt\nprivate_key=ca.key\ndefault_md=sha256\npolicy=p\ncopy_extensions=copy\n[p]\ncommonName=supplied\n' > ca.cnf
q openssl req $EC -nodes -keyout expired.key -out expired.csr -subj /CN=localhost \
  -addext subjectAltName=DNS:localhost,IP:127.0.0.1
q openssl ca -batch -config ca.cnf -startdate 20200101000000Z -enddate 20200201000000Z \
  -in expired.csr -out expired.crt -notext
chmod 644 *.key
"""


@pytest.fixture(scope="module")
def certs(tmp_path_factory) -> Path:
    d = tmp_path_factory.mktemp("certs")
    (d / "gen.sh").write_text(GEN)
    subprocess.run(["sh", str(d / "gen.sh"), str(d)], check=True, timeout=120)
    out = subprocess.run(["openssl", "x509", "-in", str(d / "expired.crt"), "-noout", "-enddate"],
                         capture_output=True, text=True, check=True).stdout
    assert "2020" in out
    return d


# ---------------------------------------------------------------------------
# brokers
# ---------------------------------------------------------------------------

def wait_listening(port: int, proc: subprocess.Popen, what: str) -> None:
    deadline = time.monotonic() + WAIT
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"{what} exited at start-up")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
            return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"{what} is not listening on {port}")


class Proc:
    """A broker process: `mqlite broker -c CONF` or `mosquitto -c CONF`."""

    def __init__(self, kind: str, tmp: Path, conf: str, ports: list[int]) -> None:
        self.kind = kind
        self.dir = tmp / f"{kind}-{uuid.uuid4().hex[:8]}"
        self.dir.mkdir()
        self.conf = self.dir / "broker.conf"
        if kind == "mosquitto":
            need("/usr/sbin/mosquitto")
            # Started as root, mosquitto would switch to user mosquitto and
            # could not read files under the test's directory.
            conf = "user root\npersistence false\nlog_dest stderr\nlog_type all\n" + conf
            argv = [shutil.which("mosquitto") or "/usr/sbin/mosquitto", "-c", str(self.conf)]
        else:
            exe = mqlite_bin()
            if not exe.exists():
                pytest.skip(f"{exe} not built")
            argv = [str(exe), "broker", "-c", str(self.conf)]
        self.conf.write_text(conf)
        self.log = open(self.dir / "log", "w+b")
        self.proc = subprocess.Popen(argv, stdout=self.log, stderr=self.log)
        for p in ports:
            wait_listening(p, self.proc, kind)

    def text(self) -> str:
        self.log.flush()
        self.log.seek(0)
        return self.log.read().decode(errors="replace")

    def alive(self) -> bool:
        return self.proc.poll() is None

    def stop(self) -> None:
        if self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout=WAIT)
            except subprocess.TimeoutExpired:
                os.kill(self.proc.pid, signal.SIGKILL)
                self.proc.wait(timeout=WAIT)
        self.log.close()


@pytest.fixture
def started(tmp_path) -> Iterator[list]:
    procs: list[Proc] = []
    yield procs
    for p in procs:
        p.stop()


def start(started: list, tmp: Path, kind: str, conf: str, ports: list[int]) -> Proc:
    p = Proc(kind, tmp, textwrap.dedent(conf), ports)
    started.append(p)
    return p


# ---------------------------------------------------------------------------
# mosquitto clients
# ---------------------------------------------------------------------------

def mpub(port: int, *args: str, host: str = "localhost", check: bool = True,
         version: str = "mqttv311") -> subprocess.CompletedProcess:
    need("mosquitto_pub")
    r = subprocess.run(["mosquitto_pub", "-h", host, "-p", str(port), "-V", version, *args],
                       capture_output=True, text=True, timeout=WAIT)
    if check:
        assert r.returncode == 0, r.stdout + r.stderr
    return r


class MSub:
    """mosquitto_sub -d in the background; its lines in a queue."""

    def __init__(self, port: int, *args: str, host: str = "localhost",
                 version: str = "mqttv311") -> None:
        need("mosquitto_sub")
        self.proc = subprocess.Popen(
            ["stdbuf", "-oL", "mosquitto_sub", "-d", "-h", host, "-p", str(port), "-V", version,
             *args], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        self.lines: queue.Queue = queue.Queue()
        import threading
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.lines.put(line.rstrip("\n"))
        self.lines.put(None)

    def wait_for(self, needle: str) -> bool:
        deadline = time.monotonic() + WAIT
        while time.monotonic() < deadline:
            try:
                line = self.lines.get(timeout=0.1)
            except queue.Empty:
                continue
            if line is None:
                return False
            if needle in line:
                return True
        return False

    def stop(self) -> None:
        if self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGTERM)
        self.proc.wait(timeout=WAIT)


def tls_conf(certs: Path, port: int, cert: str = "server", extra: str = "") -> str:
    return (f"listener {port} 127.0.0.1\ncafile {certs}/ca.crt\ncertfile {certs}/{cert}.crt\n"
            f"keyfile {certs}/{cert}.key\n{extra}")


# ---------------------------------------------------------------------------
# TLS
# ---------------------------------------------------------------------------

@pytest.mark.parametrize("version", ["mqttv311", "mqttv5"])
@pytest.mark.parametrize("qos", [0, 1, 2])
def test_mosquitto_clients_over_tls(certs, started, tmp_path, version, qos) -> None:
    """mosquitto_sub and mosquitto_pub with --cafile through mqlite's TLS
    listener, next to a plain listener on the same broker."""
    tport, pport = free_port(), free_port()
    b = start(started, tmp_path, "mqlite",
              f"listener {pport} 127.0.0.1\n" + tls_conf(certs, tport), [tport, pport])
    s = MSub(tport, "--cafile", str(certs / "ca.crt"), "-t", "sec/#", "-q", str(qos), "-v",
             version=version)
    assert s.wait_for("received SUBACK")
    mpub(tport, "--cafile", str(certs / "ca.crt"), "-t", "sec/tls", "-m", "over-tls", "-q",
         str(qos), version=version)
    assert s.wait_for("sec/tls over-tls")
    mpub(pport, "-t", "sec/plain", "-m", "over-tcp", "-q", str(qos), host="127.0.0.1",
         version=version)
    assert s.wait_for("sec/plain over-tcp")
    s.stop()
    assert "TLSv1.3" in b.text()


def test_mosquitto_clients_with_client_certificates(certs, started, tmp_path) -> None:
    """require_certificate true: --cert/--key of our CA work; none, or one
    of another CA, fail; use_identity_as_username makes the CN the user
    name the ACL sees."""
    port = free_port()
    acl = tmp_path / "acl"
    acl.write_text("user alice\ntopic readwrite alice/#\n")
    b = start(started, tmp_path, "mqlite", tls_conf(
        certs, port, extra=f"require_certificate true\nuse_identity_as_username true\n"
                           f"acl_file {acl}\n"), [port])
    ca = ["--cafile", str(certs / "ca.crt")]
    alice = ca + ["--cert", str(certs / "alice.crt"), "--key", str(certs / "alice.key")]
    s = MSub(port, *alice, "-t", "alice/#", "-t", "bob/#", "-v", "-u", "bob")
    assert s.wait_for("received SUBACK")
    mpub(port, *alice, "-t", "bob/x", "-m", "denied")
    mpub(port, *alice, "-t", "alice/x", "-m", "allowed", "-u", "bob", "-P", "ignored")
    assert s.wait_for("alice/x allowed")
    s.stop()
    assert not any("denied" in line for line in list(s.lines.queue) if line)
    r = mpub(port, *ca, "-t", "alice/x", "-m", "x", check=False)
    assert r.returncode != 0
    mallory = ca + ["--cert", str(certs / "mallory.crt"), "--key", str(certs / "mallory.key")]
    r = mpub(port, *mallory, "-t", "alice/x", "-m", "x", check=False)
    assert r.returncode != 0
    mpub(port, *alice, "-t", "alice/again", "-m", "still serving")
    log = b.text()
    assert "certificate" in log and "ACL: denied PUBLISH" in log


@pytest.mark.parametrize("case", ["wrong-ca", "wrong-hostname", "expired", "plain-on-tls"])
def test_tls_failures_are_clear_and_harmless(certs, started, tmp_path, case) -> None:
    """Each failure ends that client with a clear error on both sides; the
    broker logs the reason and serves the next client."""
    good, bad = free_port(), free_port()
    cert = {"wrong-hostname": "wronghost", "expired": "expired"}.get(case, "server")
    b = start(started, tmp_path, "mqlite",
              tls_conf(certs, good) + tls_conf(certs, bad, cert=cert), [good, bad])
    ca = str(certs / ("otherca.crt" if case == "wrong-ca" else "ca.crt"))
    args = [] if case == "plain-on-tls" else ["--cafile", ca]
    r = mpub(bad, "-d", *args, "-t", "t", "-m", "x", check=False)
    assert r.returncode != 0
    out = r.stdout + r.stderr
    expected_client = {
        "wrong-ca": "certificate verify failed",
        "wrong-hostname": "host name verification failed",
        "expired": "certificate verify failed",
        "plain-on-tls": "connection was lost",
    }[case]
    assert expected_client in out, out
    time.sleep(0.2)
    expected_broker = {
        "wrong-ca": "unknown ca",
        "wrong-hostname": "alert",  # the client aborts after its own check
        "expired": "certificate expired",
        "plain-on-tls": "plain MQTT CONNECT to a TLS port",
    }[case]
    log = b.text()
    assert f"(port {bad}) failed" in log and expected_broker in log, log
    # ...and it keeps serving.
    assert b.alive()
    mpub(good, "--cafile", str(certs / "ca.crt"), "-t", "t", "-m", "next")


def test_tls_handshake_stall_does_not_block(certs, started, tmp_path) -> None:
    """A client that opens a TLS connection and sends half a ClientHello
    does not delay mosquitto_pub on the same listener."""
    port = free_port()
    start(started, tmp_path, "mqlite", tls_conf(certs, port), [port])
    stall = socket.create_connection(("127.0.0.1", port))
    stall.sendall(b"\x16\x03\x01\x02\x00")
    t0 = time.monotonic()
    mpub(port, "--cafile", str(certs / "ca.crt"), "-t", "t", "-m", "x")
    assert time.monotonic() - t0 < 3.0
    stall.close()


# ---------------------------------------------------------------------------
# password files
# ---------------------------------------------------------------------------

@pytest.mark.parametrize("version", ["mqttv311", "mqttv5"])
def test_mosquitto_passwd_file_works_in_mqlite(started, tmp_path, version) -> None:
    """Files made by Debian's mosquitto_passwd ($7$ default, $6$ with -H
    sha512) are accepted unchanged; allow_anonymous defaults to false."""
    need("mosquitto_passwd")
    pw = tmp_path / "pw"
    subprocess.run(["mosquitto_passwd", "-c", "-b", str(pw), "alice", "s3cret"], check=True)
    subprocess.run(["mosquitto_passwd", "-H", "sha512", "-b", str(pw), "bob", "old-style"],
                   check=True)
    port = free_port()
    b = start(started, tmp_path, "mqlite", f"listener {port} 127.0.0.1\npassword_file {pw}\n",
              [port])
    ok = dict(host="127.0.0.1", version=version)
    mpub(port, "-u", "alice", "-P", "s3cret", "-t", "t", "-m", "x", **ok)
    mpub(port, "-u", "bob", "-P", "old-style", "-t", "t", "-m", "x", **ok)
    for user, password in (("alice", "wrong"), ("bob", "s3cret"), ("carol", "s3cret")):
        r = mpub(port, "-u", user, "-P", password, "-t", "t", "-m", "x", check=False, **ok)
        assert r.returncode in (4, 134), r.stderr  # 3.1.1 code 4 / 5.0 0x86
    r = mpub(port, "-t", "t", "-m", "x", check=False, **ok)
    assert r.returncode in (5, 135)
    assert "s3cret" not in b.text() and "old-style" not in b.text()


def test_mqlite_passwd_file_works_in_mosquitto(started, tmp_path) -> None:
    """Files made by `mqlite passwd` (-c, -b, -H sha512, prompt on stdin,
    -U upgrade of a plain-text file, -D) are accepted by Debian's mosquitto
    (and by mqlite)."""
    exe = str(mqlite_bin())
    pw = tmp_path / "pw"
    subprocess.run([exe, "passwd", "-c", "-b", str(pw), "alice", "s3cret"], check=True)
    subprocess.run([exe, "passwd", "-H", "sha512", "-b", str(pw), "bob", "old-style"],
                   check=True)
    subprocess.run([exe, "passwd", str(pw), "carol"], input="from-stdin\n", text=True,
                   check=True)
    subprocess.run([exe, "passwd", "-b", str(pw), "dave", "gone"], check=True)
    subprocess.run([exe, "passwd", "-D", str(pw), "dave"], check=True)
    assert oct(pw.stat().st_mode & 0o777) == "0o600"
    plain = tmp_path / "plain"
    plain.write_text("# plain text\nerin:clear-text\n")
    subprocess.run([exe, "passwd", "-U", str(plain)], check=True)
    text = plain.read_text()
    assert text.startswith("# plain text\nerin:$7$101$") and "clear-text" not in text
    pw.write_text(pw.read_text() + text.split("\n", 1)[1])
    for kind in ("mosquitto", "mqlite"):
        port = free_port()
        start(started, tmp_path, kind,
              f"listener {port} 127.0.0.1\nallow_anonymous false\npassword_file {pw}\n", [port])
        for user, password in (("alice", "s3cret"), ("bob", "old-style"),
                               ("carol", "from-stdin"), ("erin", "clear-text")):
            mpub(port, "-u", user, "-P", password, "-t", "t", "-m", "x", host="127.0.0.1")
        for user, password in (("alice", "S3cret"), ("dave", "gone")):
            r = mpub(port, "-u", user, "-P", password, "-t", "t", "-m", "x", host="127.0.0.1",
                     check=False)
            assert r.returncode in (4, 5), (kind, user, r.stderr)


# ---------------------------------------------------------------------------
# ACL: same file, same outcomes
# ---------------------------------------------------------------------------

ACL = """\
# anonymous clients
topic read public/#

user admin
topic readwrite #

user alice
topic readwrite alice/#
topic read public/#
topic write drop/box
topic read shared/+/news
topic deny shared/secret/#
topic read shared/#

user bob
topic read public/#
topic readwrite shared/#

pattern readwrite clients/%c/#
pattern read inbox/%u
"""

# (user, client id, action, topic or filter, topic published, allowed?)
# read: the user subscribes to FILTER and admin publishes TOPIC;
# write: the user publishes TOPIC and admin (subscribed to #) watches.
CASES = [
    ("alice", "a1", "write", "alice/x", "alice/x", True),
    ("alice", "a1", "write", "bob/x", "bob/x", False),
    ("alice", "a1", "write", "drop/box", "drop/box", True),
    ("alice", "a1", "write", "public/x", "public/x", False),
    ("alice", "a1", "read", "public/#", "public/news", True),
    ("alice", "a1", "read", "shared/+/news", "shared/a/news", True),
    ("alice", "a1", "read", "shared/#", "shared/secret/plan", False),
    ("alice", "a1", "read", "shared/#", "shared/open", True),
    ("alice", "a1", "read", "#", "bob/private", False),
    ("alice", "a1", "write", "clients/a1/status", "clients/a1/status", True),
    ("alice", "a1", "write", "clients/a2/status", "clients/a2/status", False),
    ("alice", "a1", "read", "inbox/alice", "inbox/alice", True),
    ("alice", "a1", "read", "inbox/+", "inbox/bob", False),
    ("bob", "b1", "write", "shared/secret/plan", "shared/secret/plan", True),
    ("bob", "b1", "read", "alice/#", "alice/x", False),
    ("bob", "b1", "read", "inbox/bob", "inbox/bob", True),
    (None, "anon1", "read", "public/#", "public/x", True),
    (None, "anon1", "write", "public/x", "public/x", False),
    (None, "anon1", "read", "inbox/#", "inbox/anon1", False),
    (None, "anon1", "write", "clients/anon1/x", "clients/anon1/x", True),
    # client id "+" would turn clients/%c/# into clients/+/#: denied everything
    ("carol", "+", "write", "clients/other/x", "clients/other/x", False),
]


class Client:
    def __init__(self, port: int, cid: str, user: str | None) -> None:
        self.c = mqtt.Client(client_id=cid, protocol=mqtt.MQTTv311)
        if user:
            self.c.username_pw_set(user, "pw")
        self.msgs: queue.Queue = queue.Queue()
        self.acks: queue.Queue = queue.Queue()
        self.c.on_message = lambda c, u, m: self.msgs.put((m.topic, m.payload))
        self.c.on_subscribe = lambda c, u, mid, q: self.acks.put(q)
        conn: queue.Queue = queue.Queue()
        self.c.on_connect = lambda c, u, f, rc: conn.put(rc)
        self.c.connect("127.0.0.1", port, keepalive=30)
        self.c.loop_start()
        assert conn.get(timeout=WAIT) == 0

    def sub(self, flt: str) -> None:
        self.c.subscribe(flt, 1)
        self.acks.get(timeout=WAIT)

    def until(self, payload: bytes) -> list:
        """Messages up to (and without) the one with `payload`."""
        got = []
        deadline = time.monotonic() + WAIT
        while time.monotonic() < deadline:
            try:
                t, p = self.msgs.get(timeout=0.1)
            except queue.Empty:
                continue
            if p == payload:
                return got
            got.append((t, p))
        raise AssertionError(f"sentinel {payload!r} never came; got {got}")

    def close(self) -> None:
        self.c.disconnect()
        self.c.loop_stop()


def run_cases(port: int) -> list[bool]:
    """Each case with a fresh client. A sentinel message after the probe
    says when the probe's fate is known, so no case waits on a timeout:
    read: admin publishes probe then sentinel to the reader (same publisher,
    same subscriber: delivered in order; clients/<id>/sentinel is readable
    through the %c pattern); write: the writer's QoS 1 probe is acknowledged
    (so routed, or dropped) before admin publishes its sentinel."""
    admin = Client(port, "admin1", "admin")
    admin.sub("#")
    outcome = []
    for user, cid, action, what, topic, _ in CASES:
        probe = f"probe-{uuid.uuid4().hex[:6]}".encode()
        sentinel = f"sentinel-{uuid.uuid4().hex[:6]}".encode()
        c = Client(port, cid, user)
        if action == "read":
            c.sub(what)
            c.sub(f"clients/{cid}/sentinel")
            admin.c.publish(topic, probe, qos=1)
            admin.c.publish(f"clients/{cid}/sentinel", sentinel, qos=1)
            seen = c.until(sentinel)
        else:
            c.c.publish(topic, probe, qos=1).wait_for_publish(timeout=WAIT)
            admin.c.publish("admin/sentinel", sentinel, qos=1)
            seen = admin.until(sentinel)
        outcome.append(any(p == probe for _, p in seen))
        c.close()
    admin.close()
    return outcome


def test_same_acl_same_outcomes_on_both_brokers(started, tmp_path) -> None:
    """One acl_file, the same clients, both brokers: identical decisions,
    and the expected ones. Decisions differ in one documented place only:
    a SUBSCRIBE nothing can pass is refused by mqlite (SUBACK 0x80) and
    granted-then-filtered by mosquitto 2.0; either way nothing arrives,
    which is what this table compares."""
    acl = tmp_path / "acl"
    acl.write_text(ACL)
    results = {}
    for kind in ("mosquitto", "mqlite"):
        port = free_port()
        b = start(started, tmp_path, kind,
                  f"listener {port} 127.0.0.1\nallow_anonymous true\nacl_file {acl}\n", [port])
        results[kind] = run_cases(port)
        assert b.alive()
    table = [(c[0], c[1], c[2], c[4]) for c in CASES]
    expected = [c[5] for c in CASES]
    diff = [(row, results["mosquitto"][i], results["mqlite"][i])
            for i, row in enumerate(table) if results["mosquitto"][i] != results["mqlite"][i]]
    assert not diff, f"brokers disagree (case, mosquitto, mqlite): {diff}"
    wrong = [(row, results["mqlite"][i]) for i, row in enumerate(table)
             if results["mqlite"][i] != expected[i]]
    assert not wrong, f"unexpected outcomes: {wrong}"
