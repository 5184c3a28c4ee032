"""`mqlite pub` / `mqlite sub` over TLS, as mosquitto_pub/_sub users spell it.

- --cafile against Debian's mosquitto with a TLS listener and against
  `mqlite broker`; --cert/--key where client certificates are required;
- the failures a user meets print OpenSSL's reason in words and exit
  non-zero: a wrong CA, a host name the certificate does not name
  (and --insecure, which skips only that check, as in mosquitto_pub),
  TLS to a plain port.

Certificates and broker processes come from test_security_interop.py
(made with `openssl` at run time; free loopback ports; stopped by PID).
"""
from __future__ import annotations

import subprocess
import time

import pytest

from test_security_interop import WAIT, certs, free_port, mqlite_bin, start, started  # noqa: F401


def cli(*args: str, check: bool = True) -> subprocess.CompletedProcess:
    exe = mqlite_bin()
    if not exe.exists():
        pytest.skip(f"{exe} not built")
    r = subprocess.run([str(exe), *args], capture_output=True, text=True, timeout=WAIT)
    if check:
        assert r.returncode == 0, r.stdout + r.stderr
    return r


def tls_conf(certs, port: int, plain: int, require: bool = False) -> str:
    return (f"listener {plain} 127.0.0.1\nallow_anonymous true\n"
            f"listener {port} 127.0.0.1\ncafile {certs}/ca.crt\n"
            f"certfile {certs}/server.crt\nkeyfile {certs}/server.key\n"
            + ("require_certificate true\n" if require else ""))


def pub_sub_round_trip(port: int, *tls: str) -> None:
    sub = subprocess.Popen([str(mqlite_bin()), "sub", "-h", "localhost", "-p", str(port),
                            "-t", "cli/tls", "-C", "1", "-W", "8", *tls],
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        # mqlite sub prints nothing before its SUBACK; give it time to subscribe
        # and publish retained so a late subscription still gets it.
        time.sleep(0.5)
        cli("pub", "-h", "localhost", "-p", str(port), "-t", "cli/tls", "-m", "hello tls",
            "-q", "1", "-r", *tls)
        out, err = sub.communicate(timeout=WAIT)
    finally:
        if sub.poll() is None:
            sub.kill()
            sub.wait(timeout=WAIT)
    assert sub.returncode == 0, err
    assert out.strip() == "hello tls"


@pytest.mark.parametrize("kind", ["mosquitto", "mqlite"])
def test_cli_tls_cafile_round_trip(kind, certs, tmp_path, started):  # noqa: F811
    port, plain = free_port(), free_port()
    start(started, tmp_path, kind, tls_conf(certs, port, plain), [port, plain])
    pub_sub_round_trip(port, "--cafile", str(certs / "ca.crt"))


@pytest.mark.parametrize("kind", ["mosquitto", "mqlite"])
def test_cli_tls_client_certificate_required(kind, certs, tmp_path, started):  # noqa: F811
    port, plain = free_port(), free_port()
    start(started, tmp_path, kind, tls_conf(certs, port, plain, require=True), [port, plain])
    pub_sub_round_trip(port, "--cafile", str(certs / "ca.crt"), "--cert",
                       str(certs / "alice.crt"), "--key", str(certs / "alice.key"))
    r = cli("pub", "-h", "localhost", "-p", str(port), "-t", "x", "-m", "x", "-q", "1",
            "--cafile", str(certs / "ca.crt"), check=False)
    assert r.returncode != 0
    assert "certificate" in r.stderr


def test_cli_tls_failures_are_explained(certs, tmp_path, started):  # noqa: F811
    port, plain = free_port(), free_port()
    start(started, tmp_path, "mosquitto", tls_conf(certs, port, plain), [port, plain])
    # A CA that did not sign the server's certificate.
    r = cli("pub", "-h", "localhost", "-p", str(port), "-t", "x", "-m", "x",
            "--cafile", str(certs / "otherca.crt"), check=False)
    assert r.returncode != 0
    assert "certificate verify failed" in r.stderr
    # A name the certificate does not carry; --insecure skips only that check.
    r = cli("pub", "-h", "127.0.0.1", "-p", str(port), "-t", "x", "-m", "x",
            "--cafile", str(certs / "ca.crt"), "--tls-server-name", "broker.example.org",
            check=False)
    assert r.returncode != 0
    assert "hostname mismatch" in r.stderr
    cli("pub", "-h", "127.0.0.1", "-p", str(port), "-t", "x", "-m", "x",
        "--cafile", str(certs / "ca.crt"), "--tls-server-name", "broker.example.org",
        "--insecure")
    # TLS to the plain listener.
    r = cli("pub", "-h", "localhost", "-p", str(plain), "-t", "x", "-m", "x",
            "--cafile", str(certs / "ca.crt"), check=False)
    assert r.returncode != 0
    assert "TLS port" in r.stderr


def test_swig_client_tls_and_scram_options(certs, tmp_path, started):  # noqa: F811
    """The new options through the generic setters of the SWIG module: TLS
    with a CA file, then SCRAM-SHA-256 (built in) over that TLS connection
    to `mqlite broker` with a scram_file (5.0 [MQTT-4.12.0-5])."""
    from mqlite import mqlite_c as m

    creds = tmp_path / "scram"
    cli("passwd", "--scram", "-c", "-b", str(creds), "alice", "pencil")
    port, plain = free_port(), free_port()
    start(started, tmp_path, "mqlite", tls_conf(certs, port, plain) + f"scram_file {creds}\n",
          [port, plain])

    def connect(password: str):
        c = m.mqlite_client_new("swig-tls")
        m.mqlite_client_set_int(c, m.MQLITE_OPT_PROTOCOL, 5)
        m.mqlite_client_set_int(c, m.MQLITE_OPT_TLS, 1)
        m.mqlite_client_set_str(c, m.MQLITE_OPT_TLS_CAFILE, str(certs / "ca.crt"))
        m.mqlite_client_set_str(c, m.MQLITE_OPT_AUTH_METHOD, "SCRAM-SHA-256")
        m.mqlite_client_set_str(c, m.MQLITE_OPT_USERNAME, "alice")
        m.mqlite_client_set_str(c, m.MQLITE_OPT_PASSWORD, password)
        m.mqlite_client_connect(c, "localhost", port)
        deadline = time.monotonic() + WAIT
        try:
            while time.monotonic() < deadline:
                m.mqlite_client_poll(c, 20)
                ev = m.mqlite_client_next_event(c)
                while ev is not None:
                    t = m.mqlite_event_type(ev)
                    if t in (m.MQLITE_EVENT_CONNECTED, m.MQLITE_EVENT_CONNECT_FAILED):
                        return t, m.mqlite_event_reason(ev)
                    ev = m.mqlite_client_next_event(c)
            return None, None
        finally:
            m.mqlite_client_free(c)

    assert connect("pencil") == (m.MQLITE_EVENT_CONNECTED, 0)
    assert connect("crayon") == (m.MQLITE_EVENT_CONNECT_FAILED, 0x87)


@pytest.mark.parametrize("kind", ["mosquitto", "mqlite"])
def test_python_client_tls(kind, certs, tmp_path, started):  # noqa: F811
    """mqlite.Client(ca_certs=..., certfile=..., keyfile=...) over TLS; a
    wrong CA fails with OpenSSL's reason in the exception."""
    import mqlite

    port, plain = free_port(), free_port()
    start(started, tmp_path, kind, tls_conf(certs, port, plain, require=True), [port, plain])
    with mqlite.Client(host="localhost", port=port, ca_certs=str(certs / "ca.crt"),
                       certfile=str(certs / "alice.crt"),
                       keyfile=str(certs / "alice.key")) as c:
        assert c.is_connected
    c = mqlite.Client(host="localhost", port=port, ca_certs=str(certs / "otherca.crt"))
    with pytest.raises(mqlite.MqliteError) as e:
        c.connect(timeout=WAIT)
    assert "certificate verify failed" in e.value.message
    c.close()


def test_python_client_tls_options_and_scram(certs, tmp_path, started):  # noqa: F811
    """The rest of the client TLS options and SCRAM-SHA-256 through
    mqlite.Client, against `mqlite broker` with a TLS listener and a
    scram_file (5.0 [MQTT-4.12.0-5]: a refused authentication ends with a
    CONNACK reason code >= 0x80)."""
    import mqlite

    creds = tmp_path / "scram"
    cli("passwd", "--scram", "-c", "-b", str(creds), "alice", "pencil")
    port, plain = free_port(), free_port()
    start(started, tmp_path, "mqlite", tls_conf(certs, port, plain) + f"scram_file {creds}\n",
          [port, plain])
    ca = str(certs / "ca.crt")

    # The name verified is tls_server_name, not host: a name the certificate
    # does not carry fails, and only that check.
    c = mqlite.Client(host="localhost", port=port, ca_certs=ca, tls_server_name="wrong.invalid")
    with pytest.raises(mqlite.MqliteError) as e:
        c.connect(timeout=WAIT)
    c.close()
    assert "wrong.invalid" in e.value.message or "hostname" in e.value.message.lower()
    # An untrusted CA is accepted only with the loudly named option.
    with mqlite.Client(host="localhost", port=port, ca_certs=str(certs / "otherca.crt"),
                       tls_insecure_skip_verify=True, tls_min_version="1.3") as c:
        assert c.is_connected
    with pytest.raises(ValueError, match="tls_min_version"):
        mqlite.Client(port=port, tls_min_version="1.4")

    # SCRAM-SHA-256 over TLS: the right password connects, a wrong one is
    # refused with 0x87 (not authorized).
    with mqlite.Client(host="localhost", port=port, ca_certs=ca, version=5,
                       auth_method="SCRAM-SHA-256", username="alice",
                       password="pencil") as c:
        assert c.is_connected
    c = mqlite.Client(host="localhost", port=port, ca_certs=ca, version=5,
                      auth_method="SCRAM-SHA-256", username="alice", password="crayon")
    with pytest.raises(mqlite.ConnectError) as e:
        c.connect(timeout=WAIT)
    c.close()
    assert e.value.reason_code == 0x87
