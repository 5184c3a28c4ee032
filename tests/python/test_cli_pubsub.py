"""`mqlite pub` and `mqlite sub` against Debian's mosquitto, with the
mosquitto_pub / mosquitto_sub flags they promise to share, and interop
both ways with mosquitto_pub / mosquitto_sub.

A subscriber runs with -d and the test waits until its SUBACK shows before
publishing, so nothing depends on sleeps; every process has a timeout.
"""
from __future__ import annotations

import os
import signal
import subprocess
import threading
import time
import uuid

import pytest

from peers import build_dir, closed_port, mosquitto, mosquitto_factory  # noqa: F401

MOSQ_SUB_FORMAT = "%t|%q|%r|%l|%p"       # topic|qos|retain|length|payload


def mqlite():
    exe = build_dir() / "bin" / "mqlite"
    if not exe.exists():
        pytest.fail(f"{exe} not built")
    return str(exe)


def uid() -> str:
    return uuid.uuid4().hex[:10]


def hp(peer):
    return ["-h", "127.0.0.1", "-p", str(peer.port)]


def run(args, timeout=15, input=None):
    r = subprocess.run(args, capture_output=True, timeout=timeout, input=input)
    return r.returncode, r.stdout.decode(errors="replace"), r.stderr.decode(errors="replace")


class Background:
    """A subscriber process; its stdout and stderr are collected by threads."""

    def __init__(self, args, ready_word="SUBACK"):
        self.args = args
        self.p = subprocess.Popen(args, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                  stderr=subprocess.PIPE)
        self.out: list[str] = []
        self.err: list[str] = []
        self.threads = [threading.Thread(target=self._read, args=(self.p.stdout, self.out),
                                         daemon=True),
                        threading.Thread(target=self._read, args=(self.p.stderr, self.err),
                                         daemon=True)]
        for t in self.threads:
            t.start()
        if ready_word:
            self.wait_for(ready_word)

    @staticmethod
    def _read(stream, sink):
        for line in iter(stream.readline, b""):
            sink.append(line.decode(errors="replace").rstrip("\n"))

    def wait_for(self, word, timeout=10.0):
        deadline = time.monotonic() + timeout
        while not any(word in line for line in self.out + self.err):
            if self.p.poll() is not None or time.monotonic() > deadline:
                self.stop()
                pytest.fail(f"{self.args[0]} never said {word!r}: rc={self.p.returncode}\n"
                            f"out={self.out}\nerr={self.err}")
            time.sleep(0.01)

    def finish(self, timeout=10.0):
        try:
            rc = self.p.wait(timeout)
        except subprocess.TimeoutExpired:
            self.stop()
            pytest.fail(f"{self.args} did not exit in {timeout}s; out={self.out} err={self.err}")
        for t in self.threads:
            t.join(2)
        return rc

    def messages(self):
        """stdout lines that are messages (mosquitto_sub -d mixes in 'Client ...' lines)."""
        return [l for l in self.out if not l.startswith(("Client ", "Subscribed ("))]

    def stop(self):
        if self.p.poll() is None:
            self.p.kill()
            self.p.wait(5)


@pytest.fixture
def procs():
    made = []

    def make(*a, **k):
        b = Background(*a, **k)
        made.append(b)
        return b
    yield make
    for b in made:
        b.stop()


def mosq_sub(peer, topic, *extra, version="mqttv311", count=1):
    # stdbuf: mosquitto_sub's stdout is block-buffered into a pipe
    return ["stdbuf", "-oL", "mosquitto_sub", *hp(peer), "-V", version, "-t", topic, "-C", str(count),
             "-d", "-F", MOSQ_SUB_FORMAT, *extra]


VERSIONS = pytest.mark.parametrize("vflag,mqtt", [("mqttv311", "mqttv311"), ("5", "mqttv5")],
                                   ids=["v311", "v5"])


# ---------------------------------------------------------------------------
# Interop both ways
# ---------------------------------------------------------------------------

@VERSIONS
@pytest.mark.parametrize("qos", [0, 1, 2])
def test_mqlite_pub_to_mosquitto_sub(mosquitto, procs, vflag, mqtt, qos):
    topic = f"cli/{uid()}/a"
    sub = procs(mosq_sub(mosquitto, topic, "-q", "2", version=mqtt))
    rc, out, err = run([mqlite(), "pub", *hp(mosquitto), "-V", vflag, "-t", topic,
                        "-m", "hello world", "-q", str(qos)])
    assert (rc, err) == (0, ""), err
    assert sub.finish() == 0
    assert sub.messages() == [f"{topic}|{qos}|0|11|hello world"]


@VERSIONS
@pytest.mark.parametrize("qos", [0, 1, 2])
def test_mosquitto_pub_to_mqlite_sub(mosquitto, procs, vflag, mqtt, qos):
    topic = f"cli/{uid()}/b"
    sub = procs([mqlite(), "sub", *hp(mosquitto), "-V", vflag, "-t", f"cli/+/b", "-t", topic,
                 "-q", "2", "-v", "-d", "-C", "1"])
    sub.wait_for("SUBACK", 10)
    sub.wait_for("received SUBACK id=2")        # both filters acknowledged
    rc, _, err = run(["mosquitto_pub", *hp(mosquitto), "-V", mqtt, "-t", topic, "-m", "hi there",
                      "-q", str(qos)])
    assert rc == 0, err
    assert sub.finish() == 0, sub.err
    assert sub.out == [f"{topic} hi there"]
    received = [l for l in sub.err if l.startswith("received PUBLISH")]
    assert len(received) == 1 and f"qos={qos}" in received[0]


def test_sub_C_exits_after_n_messages(mosquitto, procs):
    topic = f"cli/{uid()}/c"
    sub = procs([mqlite(), "sub", *hp(mosquitto), "-t", topic, "-q", "1", "-d", "-C", "3"])
    rc, _, err = run(["mosquitto_pub", *hp(mosquitto), "-t", topic, "-q", "1", "-l"],
                     input=b"one\ntwo\nthree\nfour\nfive\n")
    assert rc == 0, err
    assert sub.finish() == 0
    assert sub.out == ["one", "two", "three"]


def test_pub_f_sends_a_file_verbatim(mosquitto, procs, tmp_path):
    topic = f"cli/{uid()}/f"
    data = bytes(range(256)) * 4 + b"\nend"
    f = tmp_path / "payload.bin"
    f.write_bytes(data)
    sub = procs(["stdbuf", "-oL", "mosquitto_sub", *hp(mosquitto), "-t", topic, "-C", "1", "-d",
                 "-F", "%l %x"])
    rc, _, err = run([mqlite(), "pub", *hp(mosquitto), "-t", topic, "-f", str(f), "-q", "1"])
    assert rc == 0, err
    assert sub.finish() == 0
    assert sub.messages() == [f"{len(data)} {data.hex()}"]


def test_pub_l_sends_each_line_as_it_arrives(mosquitto, procs):
    """-l with a producer that keeps standard input open: lines written in
    one burst must all go out, not wait for more input or EOF."""
    topic = f"cli/{uid()}/l"
    sub = procs(mosq_sub(mosquitto, topic, count=3))
    pub = subprocess.Popen([mqlite(), "pub", *hp(mosquitto), "-t", topic, "-l", "-q", "1"],
                           stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        time.sleep(0.3)                       # let it connect; then one write of three lines
        pub.stdin.write(b"alpha\nbeta\ngamma\n")
        pub.stdin.flush()
        deadline = time.monotonic() + 5
        while len(sub.messages()) < 3 and time.monotonic() < deadline:
            time.sleep(0.02)
        got = sub.messages()
        pub.stdin.close()
        assert pub.wait(10) == 0
    finally:
        if pub.poll() is None:
            pub.kill()
            pub.wait(5)
    assert [l.split("|")[-1] for l in got] == ["alpha", "beta", "gamma"], \
        "lines stayed in mqlite pub's stdio buffer until more input came"


def test_pub_l_sends_lines_until_eof(mosquitto, procs):
    topic = f"cli/{uid()}/l2"
    sub = procs(mosq_sub(mosquitto, topic, count=3))
    rc, _, err = run([mqlite(), "pub", *hp(mosquitto), "-t", topic, "-l", "-q", "2"],
                     input=b"x1\nx2\nx3\n")
    assert rc == 0, err
    assert sub.finish() == 0
    assert [l.split("|")[-1] for l in sub.messages()] == ["x1", "x2", "x3"]


def test_pub_n_sends_an_empty_message(mosquitto, procs):
    topic = f"cli/{uid()}/n"
    sub = procs(mosq_sub(mosquitto, topic))
    rc, _, err = run([mqlite(), "pub", *hp(mosquitto), "-t", topic, "-n"])
    assert rc == 0, err
    assert sub.finish() == 0
    assert sub.messages() == [f"{topic}|0|0|0|"]


def test_pub_r_retains_and_n_r_clears(mosquitto):
    topic = f"cli/{uid()}/r"
    rc, _, err = run([mqlite(), "pub", *hp(mosquitto), "-t", topic, "-m", "kept", "-r", "-q", "1"])
    assert rc == 0, err
    rc, out, _ = run(["mosquitto_sub", *hp(mosquitto), "-t", topic, "-C", "1", "-W", "3",
                      "-F", MOSQ_SUB_FORMAT])
    assert (rc, out.strip()) == (0, f"{topic}|0|1|4|kept")
    rc, _, err = run([mqlite(), "pub", *hp(mosquitto), "-t", topic, "-n", "-r"])
    assert rc == 0, err
    rc, out, _ = run(["mosquitto_sub", *hp(mosquitto), "-t", topic, "-C", "1", "-W", "1"])
    assert (rc, out) == (27, ""), "retained message not cleared"


def test_identity_keepalive_version_and_credentials_reach_the_broker(mosquitto):
    cid = "cli-" + uid()
    rc, _, err = run([mqlite(), "pub", *hp(mosquitto), "-t", "cli/id", "-m", "x",
                      "-i", cid, "-k", "17", "-V", "mqttv5", "-u", "alice", "-P", "pw", "-d"])
    assert rc == 0, err
    assert f'client_id="{cid}"' in err and "keepalive=17" in err and 'username="alice"' in err
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        log = (mosquitto.workdir / "mosquitto.log").read_text(errors="replace")
        if f"as {cid} (p5, c1, k17, u'alice')" in log:
            break
        time.sleep(0.05)
    else:
        pytest.fail(f"mosquitto did not log {cid} as (p5, c1, k17, u'alice')")


def test_I_prefix_and_v311_and_v31(mosquitto):
    for vflag, p in (("311", "p2"), ("mqttv31", "p1")):
        rc, _, err = run([mqlite(), "pub", *hp(mosquitto), "-t", "cli/p", "-m", "x",
                          "-I", "pfx-", "-V", vflag])
        assert rc == 0, err
    log = (mosquitto.workdir / "mosquitto.log").read_text(errors="replace")
    assert "as pfx-" in log and "(p1, c1, k60)" in log


def test_d_prints_every_packet_of_a_qos2_publish(mosquitto):
    rc, _, err = run([mqlite(), "pub", *hp(mosquitto), "-t", "cli/d", "-m", "x", "-q", "2", "-d"])
    assert rc == 0
    kinds = [l.split()[1] for l in err.splitlines()]
    assert kinds == ["CONNECT", "CONNACK", "PUBLISH", "PUBREC", "PUBREL", "PUBCOMP", "DISCONNECT"]
    assert [l.split()[0] for l in err.splitlines()] == \
        ["sent", "received", "sent", "received", "sent", "received", "sent"]


def test_will_flags(mosquitto, procs):
    """--will-topic/--will-payload/--will-qos/--will-retain, published by the
    broker when the mqlite process dies without DISCONNECT."""
    wt = f"cli/{uid()}/will"
    watcher = procs(mosq_sub(mosquitto, wt, "-q", "1"))
    victim = procs([mqlite(), "sub", *hp(mosquitto), "-t", f"cli/{uid()}/quiet", "-d",
                    "--will-topic", wt, "--will-payload", "died", "--will-qos", "1",
                    "--will-retain"])
    connect = [l for l in victim.err if "CONNECT" in l][0]
    assert "will_qos=1" in connect and "will_retain=1" in connect
    os.kill(victim.p.pid, signal.SIGKILL)
    assert watcher.finish() == 0
    assert watcher.messages() == [f"{wt}|1|0|4|died"]
    try:                                       # --will-retain: a late subscriber gets it retained
        rc, out, _ = run(["mosquitto_sub", *hp(mosquitto), "-t", wt, "-C", "1", "-W", "3",
                          "-F", MOSQ_SUB_FORMAT])
        assert (rc, out.strip()) == (0, f"{wt}|0|1|4|died")
    finally:
        run(["mosquitto_pub", *hp(mosquitto), "-t", wt, "-n", "-r"])


def test_c_keeps_the_session_between_runs(mosquitto):
    """-c -i ID: subscribe (-E exits once subscribed), go away, messages
    queue at the broker, the next run with the same id gets them."""
    cid, topic = "cli-p-" + uid(), f"cli/{uid()}/c"
    base = [mqlite(), "sub", *hp(mosquitto), "-c", "-i", cid, "-t", topic, "-q", "1"]
    rc, _, err = run(base + ["-E"])
    assert rc == 0, err
    rc, _, err = run(["mosquitto_pub", *hp(mosquitto), "-t", topic, "-q", "1", "-l"],
                     input=b"q1\nq2\nq3\n")
    assert rc == 0, err
    rc, out, err = run(base + ["-C", "3", "-W", "5"])
    assert (rc, out.splitlines()) == (0, ["q1", "q2", "q3"]), err


def test_W_times_out_with_27(mosquitto):
    rc, out, err = run([mqlite(), "sub", *hp(mosquitto), "-t", f"cli/{uid()}/w", "-W", "1"])
    assert rc == 27 and out == ""
    assert len(err.splitlines()) == 1 and "timed out" in err


def test_W_waits_the_whole_timeout(mosquitto):
    for _ in range(4):
        t0 = time.monotonic()
        rc, _, _ = run([mqlite(), "sub", *hp(mosquitto), "-t", f"cli/{uid()}/w", "-W", "1"])
        took = time.monotonic() - t0
        assert rc == 27
        assert took >= 0.9, f"-W 1 gave up after {took:.2f} s"


def test_hostname_localhost(mosquitto, procs):
    topic = f"cli/{uid()}/h"
    sub = procs(mosq_sub(mosquitto, topic))
    rc, _, err = run([mqlite(), "pub", "-h", "localhost", "-p", str(mosquitto.port), "-t", topic,
                      "-m", "by name"])
    assert rc == 0, err
    assert sub.finish() == 0
    assert sub.messages()[0].endswith("|by name")


# ---------------------------------------------------------------------------
# Failures: one line on stderr, non-zero exit
# ---------------------------------------------------------------------------

@pytest.fixture
def locked_mosquitto(mosquitto_factory, tmp_path):
    pw = tmp_path / "passwd"
    r = subprocess.run(["mosquitto_passwd", "-c", "-b", str(pw), "alice", "secret"],
                       capture_output=True, timeout=10)
    if r.returncode != 0:
        pytest.fail(f"mosquitto_passwd failed: {r.stderr!r}")
    return mosquitto_factory(conf=f"allow_anonymous false\npassword_file {pw}\nuser root\n",
                             ready_args="-u alice -P secret")


@pytest.mark.parametrize("cmd", ["pub", "sub"])
@pytest.mark.parametrize("creds", [[], ["-u", "alice", "-P", "wrong"]], ids=["anonymous", "bad-password"])
@pytest.mark.parametrize("vflag", ["311", "5"])
def test_refused_connection_is_one_line_and_nonzero(locked_mosquitto, cmd, creds, vflag):
    what = ["-m", "x"] if cmd == "pub" else []
    rc, out, err = run([mqlite(), cmd, *hp(locked_mosquitto), "-t", "cli/x", "-V", vflag,
                        *creds, *what], timeout=15)
    assert rc != 0 and out == ""
    lines = err.splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith(f"mqlite {cmd}: ") and "not authori" in lines[0].lower(), err


def test_accepted_with_the_right_password(locked_mosquitto, procs):
    topic = f"cli/{uid()}/ok"
    sub = procs([mqlite(), "sub", *hp(locked_mosquitto), "-u", "alice", "-P", "secret",
                 "-t", topic, "-C", "1", "-d"])
    rc, _, err = run([mqlite(), "pub", *hp(locked_mosquitto), "-u", "alice", "-P", "secret",
                      "-t", topic, "-m", "in"])
    assert rc == 0, err
    assert sub.finish() == 0 and sub.out == ["in"]


@pytest.mark.parametrize("cmd", ["pub", "sub"])
def test_unreachable_broker_is_one_line_and_nonzero(cmd):
    what = ["-m", "x"] if cmd == "pub" else []
    t0 = time.monotonic()
    rc, out, err = run([mqlite(), cmd, "-h", "127.0.0.1", "-p", str(closed_port()), "-t", "x",
                        *what], timeout=30)
    assert rc != 0 and out == ""
    assert len(err.splitlines()) == 1 and err.startswith(f"mqlite {cmd}: "), err
    assert "refused" in err.lower()
    assert time.monotonic() - t0 < 10


@pytest.mark.parametrize("args", [["-t", "a"], ["-m", "x"], ["-t", "a", "-m", "x", "-q", "3"],
                                  ["-t", "a", "-m", "x", "-V", "6"], ["-t", "a", "-m", "x", "-p"]])
def test_pub_usage_errors_exit_2(args):
    rc, out, err = run([mqlite(), "pub", *args])
    assert rc == 2 and err.startswith("mqlite pub: ")
