"""mqlite.Broker (python/mqlite/broker.py) and the mqlite.testing fixture:
the C broker in a background thread (GIL released), in the foreground
(serve_forever, Ctrl-C), its options and configuration file, errors."""
from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from typing import Any, List

import pytest

import mqlite
from peers import build_dir
from pychild import child_env
from mqlite import mqlite_c as m

T = 10.0


def test_fixture_gives_a_running_broker_per_test(mqlite_broker: mqlite.Broker) -> None:
    assert mqlite_broker.running
    assert mqlite_broker.host == "127.0.0.1" and mqlite_broker.port > 0
    assert mqlite_broker.url == f"mqtt://127.0.0.1:{mqlite_broker.port}"
    assert mqlite_broker.ports == [mqlite_broker.port]
    with mqlite.Client(port=mqlite_broker.port) as c:
        assert c.is_connected


def test_with_starts_and_stops_cleanly() -> None:
    b = mqlite.Broker(port=0)
    assert not b.running and "ready" in repr(b)
    with b as same:
        assert same is b and b.running and "running" in repr(b)
        port = b.port
        with mqlite.Client(port=port) as c:
            c.subscribe("s/t", qos=1).wait(T)
            c.publish("s/t", b"x", qos=1).wait(T)
            assert c.receive(T) is not None
        with pytest.raises(mqlite.MqliteError, match="running"):
            b.stats()
        with pytest.raises(mqlite.MqliteError, match="running"):
            b.listen("127.0.0.1", 0)
    assert not b.running and "closed" in repr(b)
    st = b.stats()  # the final counters
    assert st["messages_received"] >= 1 and st["messages_sent"] >= 1
    assert st["clients_connected"] == 0
    b.stop()  # idempotent
    with socket.socket() as s:  # the port is closed
        assert s.connect_ex(("127.0.0.1", port)) != 0


def test_stop_closes_connected_clients() -> None:
    b = mqlite.Broker(port=0).start()
    c = mqlite.Client(port=b.port)
    c.connect(timeout=T)
    t0 = time.monotonic()
    b.stop()
    assert time.monotonic() - t0 < 5
    with pytest.raises(mqlite.ConnectionLostError):
        c.receive(T)
    c.close()


def test_runs_with_the_gil_released() -> None:
    """While the broker thread serves clients, Python code in this thread
    keeps running: the C loop holds no GIL. The load comes from another
    process (`mqlite bench pairs`), so the broker thread is the only other
    thread here; were the GIL held inside its poll loop, this thread would
    get almost nothing done while the load runs."""
    def spin(seconds: float) -> int:
        n, end = 0, time.monotonic() + seconds
        while time.monotonic() < end:
            n += 1
        return n

    exe = build_dir() / "bin" / "mqlite"
    if not exe.exists():
        pytest.fail(f"{exe} not built")
    alone = spin(0.3)
    with mqlite.Broker(port=0) as b:
        load = subprocess.Popen([str(exe), "bench", "pairs", "-p", str(b.port), "-c", "4",
                                 "-q", "1", "-d", "3", "--json"],
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        try:
            time.sleep(0.5)            # the bench's clients connect and start
            with_broker = spin(0.3)    # ... while the broker thread serves them
        finally:
            out, err = load.communicate(timeout=T)
        assert load.returncode == 0, err
    result = json.loads(out)
    # The broker kept serving while this thread ran, and this thread ran.
    assert result["received"] > 1000 and result["lost"] == 0, result
    assert with_broker > alone / 20, (alone, with_broker)


def test_two_brokers_in_one_process() -> None:
    with mqlite.Broker(port=0) as a, mqlite.Broker(port=0) as b:
        assert a.port != b.port
        with mqlite.Client(port=a.port) as ca, mqlite.Client(port=b.port) as cb:
            ca.subscribe("x").wait(T)
            cb.publish("x", b"to b").wait(T)
            assert ca.receive(0.2) is None  # separate brokers


@pytest.mark.parametrize("kw,prop,value", [
    ({"max_qos": 1}, "max_qos", 1),
    ({"retain_available": False}, "retain_available", 0),
    ({"receive_maximum": 7}, "receive_max", 7),
    ({"topic_alias_maximum": 3}, "topic_alias_max", 3),
    ({"max_keepalive": 30}, "server_keepalive", 30),
    ({"max_packet_size": 5000}, "max_packet_size", 5000),
    ({"wildcard_subscriptions": False}, "wildcard_sub_available", 0),
    ({"shared_subscriptions": False}, "shared_sub_available", 0),
    ({"subscription_identifiers": False}, "sub_id_available", 0),
])
def test_options_reach_the_c_broker(kw: Any, prop: str, value: int) -> None:
    """Each keyword sets its MQLITE_BOPT_*: the 5.0 CONNACK says so."""
    with mqlite.Broker(port=0, **kw) as b:
        with mqlite.Client(port=b.port, version=5, keepalive=60) as c:
            assert c.connack_properties[prop] == value


def test_more_options_are_accepted() -> None:
    with mqlite.Broker(port=0, max_inflight=5, max_queued=10, max_queued_bytes=10000,
                       allow_anonymous=True, session_expiry_max=60, sys_interval=0,
                       connect_timeout=0.5, max_connections=2, log_level="error") as b:
        with mqlite.Client(port=b.port) as c1, mqlite.Client(port=b.port) as c2:
            assert c1.is_connected and c2.is_connected
            with pytest.raises(mqlite.ConnectError):
                mqlite.Client(port=b.port).connect(timeout=T)  # over max_connections
        # connect_timeout: a socket that sends no CONNECT is closed
        with socket.create_connection(("127.0.0.1", b.port)) as s:
            s.settimeout(T)
            assert s.recv(10) == b""


def test_allow_anonymous_false_refuses() -> None:
    with mqlite.Broker(port=0, allow_anonymous=False) as b:
        with pytest.raises(mqlite.ConnectError) as e:
            mqlite.Client(port=b.port, version=5).connect(timeout=T)
        assert e.value.reason_code == 0x87


@pytest.mark.parametrize("kw,exc,text", [
    ({"max_qos": 3}, ValueError, "max_qos: MQLITE_BOPT_MAX_QOS"),
    ({"log_level": "loud"}, ValueError, "log_level must be one of"),
    ({"slow_client_policy": "ignore"}, ValueError, "slow_client_policy"),
    ({"max_inflight": "20"}, TypeError, "max_inflight must be an int"),
    ({"connect_timeout": "1"}, TypeError, "seconds"),
    ({"port": "1883"}, TypeError, "port must be an int"),
    ({"host": 1}, TypeError, "host must be a str"),
    ({"config_file": 1}, TypeError, "config_file"),
    ({"colour": "red"}, TypeError, "colour"),
])
def test_bad_options(kw: Any, exc: type, text: str) -> None:
    with pytest.raises(exc) as e:
        mqlite.Broker(**kw)
    assert text in str(e.value)


def test_listen_errors() -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen(1)
        with pytest.raises(mqlite.MqliteError) as e:
            mqlite.Broker(port=s.getsockname()[1])
        assert e.value.name == "MQLITE_ERR_IO"
        assert "listen 127.0.0.1" in e.value.message
    b = mqlite.Broker(port=0)
    extra = b.listen("127.0.0.1", 0)
    assert b.ports == [b.port, extra] and extra != b.port
    with b:
        with mqlite.Client(port=extra) as c:
            assert c.is_connected
    with pytest.raises(mqlite.MqliteError, match="closed"):
        b.listen("127.0.0.1", 0)
    nolisten = mqlite.Broker(config_file=None, port=None)
    assert nolisten.ports == [nolisten.port]  # port None without a file: a free port


def test_config_file(tmp_path: Any) -> None:
    conf = tmp_path / "mqlite.conf"
    conf.write_text("listener 0 127.0.0.1\nmax_qos 1\nretain_available false\n")
    with mqlite.Broker(config_file=str(conf)) as b:  # no other listener
        assert len(b.ports) == 1
        with mqlite.Client(port=b.port, version=5) as c:
            assert c.connack_properties["max_qos"] == 1
    bad = tmp_path / "bad.conf"
    bad.write_text("listener 0 127.0.0.1\nno_such_key 1\n")
    with pytest.raises(mqlite.MqliteError) as e:
        mqlite.Broker(config_file=str(bad))
    assert e.value.name == "MQLITE_ERR_CONFIG"
    assert f"{bad}:2" in e.value.message
    with pytest.raises(mqlite.MqliteError):
        mqlite.Broker(config_file=str(tmp_path / "missing.conf"))


def test_start_without_listener_fails(tmp_path: Any) -> None:
    conf = tmp_path / "empty.conf"
    conf.write_text("max_qos 2\n")
    b = mqlite.Broker(config_file=str(conf))
    with pytest.raises(mqlite.MqliteError, match="no listener"):
        b.start()
    with pytest.raises(mqlite.MqliteError, match="no listener"):
        b.port
    b.stop()


def test_serve_forever_stopped_from_another_thread() -> None:
    b = mqlite.Broker(port=0)
    port = b.port
    th = threading.Thread(target=b.serve_forever, kwargs={"poll_interval": 0.05})
    th.start()
    try:
        with mqlite.Client(port=port) as c:
            assert c.is_connected
        with pytest.raises(mqlite.MqliteError, match="running"):
            b.stats()
    finally:
        b.stop()
        th.join(T)
    assert not th.is_alive()
    assert b.stats()["messages_received"] == 0


def test_serve_forever_stops_on_ctrl_c(tmp_path: Any) -> None:
    """`Broker(...).serve_forever()` in the foreground: SIGINT stops it and
    the process exits normally."""
    port_file = tmp_path / "port"
    code = ("import mqlite, sys\n"
            "b = mqlite.Broker(port=0)\n"
            f"open({str(port_file)!r}, 'w').write(str(b.port))\n"
            "b.serve_forever()\n"
            "print('stopped', 'messages_received' in b.stats())\n")
    p = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True,
                         env=child_env())
    try:
        deadline = time.monotonic() + T
        while not (port_file.exists() and port_file.read_text()):
            assert time.monotonic() < deadline and p.poll() is None
            time.sleep(0.02)
        with mqlite.Client(port=int(port_file.read_text())) as c:
            assert c.is_connected
        p.send_signal(signal.SIGINT)
        out, _ = p.communicate(timeout=T)
        assert p.returncode == 0 and "stopped True" in out
    finally:
        if p.poll() is None:
            p.kill()
            p.wait()


def test_unsupported_options_say_so() -> None:
    # Options of the security work exist only when the C library has them.
    for name, cname in (("password_file", "MQLITE_BOPT_PASSWORD_FILE"),
                        ("max_connection_rate", "MQLITE_BOPT_MAX_CONNECTION_RATE")):
        if hasattr(m, cname):
            continue
        with pytest.raises(mqlite.UnsupportedError):
            mqlite.Broker(port=0, **{name: 1 if "rate" in name else "/nonexistent"})
    if not hasattr(m, "mqlite_broker_listen_tls"):
        with pytest.raises(mqlite.UnsupportedError):
            mqlite.Broker(port=0).listen_tls(certfile="x")


@pytest.mark.skipif(not hasattr(m, "MQLITE_BOPT_ACL_FILE"), reason="no ACL files in this build")
def test_acl_file_gives_delivery_errors(tmp_path: Any) -> None:
    acl = tmp_path / "acl"
    acl.write_text("topic readwrite ok/#\ntopic read ro/#\n")
    with mqlite.Broker(port=0, acl_file=str(acl)) as b:
        with mqlite.Client(port=b.port, version=5) as c:
            with pytest.raises(mqlite.DeliveryError) as e:
                c.publish("ro/x", b"a", qos=1).wait(T)
            assert e.value.reason_code == 0x87
            c.publish("ok/x", b"a", qos=1).wait(T)
    with pytest.raises(mqlite.MqliteError):
        mqlite.Broker(port=0, acl_file=str(tmp_path / "missing"))


@pytest.mark.skipif(not hasattr(m, "MQLITE_BOPT_MAX_BACKLOG_BYTES"),
                    reason="no slow client policy in this build")
def test_security_limits_are_accepted() -> None:
    with mqlite.Broker(port=0, max_backlog_bytes=1 << 20, slow_client_policy="disconnect",
                       max_connection_rate=100, tls_handshake_timeout=2.0) as b:
        with mqlite.Client(port=b.port) as c:
            assert c.is_connected


def test_del_stops_a_forgotten_broker() -> None:
    import gc
    b = mqlite.Broker(port=0).start()
    port = b.port
    th: List[threading.Thread] = [t for t in threading.enumerate()
                                  if t.name == f"mqlite-broker:{port}"]
    assert th
    del b
    gc.collect()
    th[0].join(T)
    assert not th[0].is_alive()
