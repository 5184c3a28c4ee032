"""mqlite.Broker: mqlite's C broker, embedded in a Python process.

    import mqlite

    with mqlite.Broker(port=0) as b:        # a free port on 127.0.0.1
        with mqlite.Client(port=b.port) as c:
            ...

``with Broker(...)`` (or :meth:`Broker.start`) runs the broker's event loop
(``mqlite_broker_run``) in a background thread with the GIL released, so
Python threads, including the one that started it, keep running at full
speed; :meth:`Broker.stop` asks it to return (``mqlite_broker_stop``, the one
broker call that is safe from another thread) and joins the thread.
:meth:`Broker.serve_forever` runs the same loop in the calling thread
until Ctrl-C or :meth:`Broker.stop`.

Threads: while the broker runs, its handle belongs to the broker thread;
from other threads only stop() (and the read-only attributes computed
before start: port, ports, host, url) may be used.
"""
from __future__ import annotations

import threading
from typing import Any, Dict, List, Optional, Tuple, Union

from . import mqlite_c as _c
from ._errors import InvalidArgumentError, MqliteError, UnsupportedError, error_for

__all__ = ["Broker", "LOG_LEVELS", "STAT_NAMES"]

#: Log level names for ``log_level`` (mqlite.h MQLITE_LOG_*). The broker logs
#: to stderr.
LOG_LEVELS: Dict[str, int] = {
    "error": _c.MQLITE_LOG_ERROR,
    "warning": _c.MQLITE_LOG_WARNING,
    "notice": _c.MQLITE_LOG_NOTICE,
    "info": _c.MQLITE_LOG_INFO,
    "debug": _c.MQLITE_LOG_DEBUG,
}

#: Counter name -> MQLITE_BSTAT_* value, for :meth:`Broker.stats`.
STAT_NAMES: Dict[str, int] = {
    n[len("MQLITE_BSTAT_"):].lower(): int(getattr(_c, n))
    for n in dir(_c) if n.startswith("MQLITE_BSTAT_")
}

# keyword -> (MQLITE_BOPT_* name, unit): "int", "bool", "ms" (seconds given),
# "s" (seconds, whole), "level", "policy".
_INT_OPTIONS: Dict[str, Tuple[str, str]] = {
    "max_packet_size": ("MQLITE_BOPT_MAX_PACKET_SIZE", "int"),
    "max_inflight": ("MQLITE_BOPT_MAX_INFLIGHT", "int"),
    "max_queued": ("MQLITE_BOPT_MAX_QUEUED", "int"),
    "max_queued_bytes": ("MQLITE_BOPT_MAX_QUEUED_BYTES", "int"),
    "retain_available": ("MQLITE_BOPT_RETAIN_AVAILABLE", "bool"),
    "allow_anonymous": ("MQLITE_BOPT_ALLOW_ANONYMOUS", "bool"),
    "session_expiry_max": ("MQLITE_BOPT_SESSION_EXPIRY_MAX_S", "s"),
    "max_keepalive": ("MQLITE_BOPT_MAX_KEEPALIVE_S", "s"),
    "receive_maximum": ("MQLITE_BOPT_RECEIVE_MAX", "int"),
    "topic_alias_maximum": ("MQLITE_BOPT_TOPIC_ALIAS_MAX", "int"),
    "max_qos": ("MQLITE_BOPT_MAX_QOS", "int"),
    "sys_interval": ("MQLITE_BOPT_SYS_INTERVAL_S", "s"),
    "connect_timeout": ("MQLITE_BOPT_CONNECT_TIMEOUT_MS", "ms"),
    "log_level": ("MQLITE_BOPT_LOG_LEVEL", "level"),
    "max_connections": ("MQLITE_BOPT_MAX_CONNECTIONS", "int"),
    "wildcard_subscriptions": ("MQLITE_BOPT_WILDCARD_SUBS", "bool"),
    "shared_subscriptions": ("MQLITE_BOPT_SHARED_SUBS", "bool"),
    "subscription_identifiers": ("MQLITE_BOPT_SUBSCRIPTION_IDS", "bool"),
    "max_connection_rate": ("MQLITE_BOPT_MAX_CONNECTION_RATE", "int"),
    "tls_handshake_timeout": ("MQLITE_BOPT_TLS_HANDSHAKE_TIMEOUT_MS", "ms"),
    "max_backlog_bytes": ("MQLITE_BOPT_MAX_BACKLOG_BYTES", "int"),
    "slow_client_policy": ("MQLITE_BOPT_SLOW_CLIENT_POLICY", "policy"),
}
_STR_OPTIONS: Dict[str, str] = {
    "password_file": "MQLITE_BOPT_PASSWORD_FILE",
    "acl_file": "MQLITE_BOPT_ACL_FILE",
    "scram_file": "MQLITE_BOPT_SCRAM_FILE",
}
_POLICIES = {"drop_qos0": "MQLITE_SLOW_DROP_QOS0", "disconnect": "MQLITE_SLOW_DISCONNECT"}


def _run(b: Any, errors: List[BaseException]) -> None:
    """The broker thread: mqlite_broker_run() with the GIL released."""
    try:
        _c.mqlite_broker_run(b)
    except BaseException as e:  # pragma: no cover - a fatal epoll error
        errors.append(e)


def _supported(name: str) -> bool:
    return hasattr(_c, name)


class Broker:
    """An MQTT 3.1 / 3.1.1 / 5.0 broker running inside this process.

    Options are keyword-only; times are in seconds. An option left at
    ``None`` keeps the C broker's default (see ``mqlite.h`` MQLITE_BOPT_* and
    docs/broker.md). Options the linked C library does not have raise
    :class:`mqlite.UnsupportedError`.

    Args:
        host: address of the listener (default ``"127.0.0.1"``; ``"0.0.0.0"``
            or ``"::"`` for all).
        port: its port; 0 picks a free one (see :attr:`port`). Default: 0,
            or no extra listener when `config_file` is given.
        config_file: a configuration file in mosquitto's ``key value``
            format (docs/broker.md); its listeners are opened too.
        log_level: "error", "warning" (default), "notice", "info", "debug"
            (or MQLITE_LOG_*); the log goes to stderr.
        max_packet_size, max_inflight, max_queued, max_queued_bytes,
        receive_maximum, topic_alias_maximum, max_qos, max_connections,
        max_connection_rate, max_backlog_bytes: limits (MQLITE_BOPT_*).
        retain_available, allow_anonymous, wildcard_subscriptions,
        shared_subscriptions, subscription_identifiers: features on/off.
        session_expiry_max, max_keepalive, sys_interval: seconds.
        connect_timeout, tls_handshake_timeout: seconds (float).
        slow_client_policy: "drop_qos0" or "disconnect".
        password_file, acl_file, scram_file: files in mosquitto's formats.
    """

    def __init__(self, *, host: str = "127.0.0.1", port: Optional[int] = None,
                 config_file: Optional[str] = None,
                 log_level: Union[str, int, None] = None,
                 max_packet_size: Optional[int] = None, max_inflight: Optional[int] = None,
                 max_queued: Optional[int] = None, max_queued_bytes: Optional[int] = None,
                 retain_available: Optional[bool] = None,
                 allow_anonymous: Optional[bool] = None,
                 session_expiry_max: Optional[int] = None, max_keepalive: Optional[int] = None,
                 receive_maximum: Optional[int] = None,
                 topic_alias_maximum: Optional[int] = None, max_qos: Optional[int] = None,
                 sys_interval: Optional[int] = None, connect_timeout: Optional[float] = None,
                 max_connections: Optional[int] = None,
                 wildcard_subscriptions: Optional[bool] = None,
                 shared_subscriptions: Optional[bool] = None,
                 subscription_identifiers: Optional[bool] = None,
                 max_connection_rate: Optional[int] = None,
                 tls_handshake_timeout: Optional[float] = None,
                 max_backlog_bytes: Optional[int] = None,
                 slow_client_policy: Optional[str] = None,
                 password_file: Optional[str] = None, acl_file: Optional[str] = None,
                 scram_file: Optional[str] = None) -> None:
        self._b: Any = None
        self._thread: Optional[threading.Thread] = None
        self._ports: List[int] = []
        self._stopping = False
        self._serving: Optional[threading.Event] = None
        # Held by stop() around mqlite_broker_stop() and by _free() around
        # mqlite_broker_free(): serve_forever() in another thread would
        # otherwise free the broker while that stop call (the GIL released)
        # still touches it (ASan: heap-use-after-free).
        self._free_lock = threading.Lock()
        self._final_stats: Optional[Dict[str, int]] = None
        if not isinstance(host, str):
            raise TypeError(f"host must be a str, not {type(host).__name__}")
        self.host = host
        if port is not None and (isinstance(port, bool) or not isinstance(port, int)):
            raise TypeError(f"port must be an int, not {type(port).__name__}")
        self._want_port = port if port is not None else (None if config_file else 0)
        b = _c.mqlite_broker_new()
        if b is None:  # pragma: no cover
            raise MemoryError("mqlite_broker_new")
        self._b = b
        try:
            values = dict(locals())
            for name, (cname, unit) in _INT_OPTIONS.items():
                value = values[name]
                if value is not None:
                    self._set_int(name, cname, unit, value)
            for name, cname in _STR_OPTIONS.items():
                value = values[name]
                if value is not None:
                    self._set_str(name, cname, value)
            if config_file is not None:
                self.load_config(config_file)
            if self._want_port is not None:
                self.listen(host, self._want_port)
        except BaseException:
            self._free()
            raise

    # -- configuration --------------------------------------------------------

    def _err(self, e: BaseException, what: str, argument: bool = True) -> MqliteError:
        msg = _c.mqlite_broker_errmsg(self._b) or (e.args[1] if len(e.args) > 1 else "")
        return error_for(e.args[0], f"{what}: {msg}", argument=argument)

    def _configurable(self) -> Any:
        if self._b is None:
            raise MqliteError(_c.MQLITE_ERR_MISUSE, "the broker is closed")
        if self._thread is not None or self._serving is not None:
            raise MqliteError(_c.MQLITE_ERR_STATE,
                              "the broker is running: configure it before start()")
        return self._b

    def _set_int(self, name: str, cname: str, unit: str, value: Any) -> None:
        if not _supported(cname):
            raise UnsupportedError(_c.MQLITE_ERR_UNSUPPORTED,
                                   f"{name}: this build of the mqlite C library has no {cname}")
        if unit == "level":
            if isinstance(value, str):
                if value.lower() not in LOG_LEVELS:
                    raise InvalidArgumentError(_c.MQLITE_ERR_RANGE,
                                               f"log_level must be one of {sorted(LOG_LEVELS)}, "
                                               f"not {value!r}")
                value = LOG_LEVELS[value.lower()]
        elif unit == "policy":
            if value not in _POLICIES or not _supported(_POLICIES[value]):
                raise InvalidArgumentError(_c.MQLITE_ERR_RANGE, f"slow_client_policy must be "
                                           f"one of {sorted(_POLICIES)}, not {value!r}")
            value = getattr(_c, _POLICIES[value])
        elif unit == "ms":
            if isinstance(value, bool) or not isinstance(value, (int, float)):
                raise TypeError(f"{name} must be a number of seconds")
            value = int(round(value * 1000))
        elif unit == "bool":
            value = int(bool(value))
        if isinstance(value, bool) or not isinstance(value, int):
            raise TypeError(f"{name} must be an int, not {type(value).__name__}")
        try:
            _c.mqlite_broker_set_int(self._configurable(), getattr(_c, cname), value)
        except _c.Error as e:
            raise self._err(e, name) from None
        except OverflowError:
            raise InvalidArgumentError(_c.MQLITE_ERR_RANGE, f"{name}: {value} out of range") \
                from None

    def _set_str(self, name: str, cname: str, value: str) -> None:
        if not _supported(cname) or not _supported("mqlite_broker_set_str"):
            raise UnsupportedError(_c.MQLITE_ERR_UNSUPPORTED,
                                   f"{name}: this build of the mqlite C library has no {cname}")
        if not isinstance(value, str):
            raise TypeError(f"{name} must be a path (str), not {type(value).__name__}")
        try:
            _c.mqlite_broker_set_str(self._configurable(), getattr(_c, cname), value)
        except _c.Error as e:
            raise self._err(e, name, argument=False) from None

    def load_config(self, path: str) -> None:
        """Read a mosquitto-format configuration file (before start()).
        Raises MqliteError (MQLITE_ERR_CONFIG, "file:line: message") or
        MQLITE_ERR_IO."""
        if not isinstance(path, str):
            raise TypeError(f"config_file must be a path (str), not {type(path).__name__}")
        try:
            _c.mqlite_broker_load_config(self._configurable(), path)
        except _c.Error as e:
            raise self._err(e, "config_file", argument=False) from None
        self._refresh_ports()

    def listen(self, host: str = "127.0.0.1", port: int = 0) -> int:
        """Open another listener (before start()); returns its port (a free
        one for port 0). Raises MqliteError (MQLITE_ERR_IO: address in use...)."""
        try:
            bound = _c.broker_listen(self._configurable(), host, port)
        except _c.Error as e:
            raise self._err(e, f"listen {host}:{port}", argument=False) from None
        except OverflowError:
            raise InvalidArgumentError(_c.MQLITE_ERR_INVALID, f"port {port} out of range") \
                from None
        self._refresh_ports()
        return int(bound)

    def listen_tls(self, host: str = "127.0.0.1", port: int = 0, *, certfile: str,
                   keyfile: Optional[str] = None, cafile: Optional[str] = None,
                   require_certificate: bool = False, request_certificate: bool = False,
                   use_identity_as_username: bool = False, tls13_only: bool = False) -> int:
        """Open a TLS listener (before start()); returns its port. Raises
        UnsupportedError when the C library has no TLS listeners."""
        if not _supported("mqlite_broker_listen_tls"):
            raise UnsupportedError(_c.MQLITE_ERR_UNSUPPORTED, "listen_tls: this build of the "
                                   "mqlite C library has no TLS listeners")
        flags = 0
        for on, name in ((require_certificate, "MQLITE_BTLS_REQUIRE_CERT"),
                         (request_certificate, "MQLITE_BTLS_REQUEST_CERT"),
                         (use_identity_as_username, "MQLITE_BTLS_IDENTITY_AS_USERNAME"),
                         (tls13_only, "MQLITE_BTLS_MIN_TLS13")):
            if on:
                flags |= int(getattr(_c, name))
        try:
            res = _c.mqlite_broker_listen_tls(self._configurable(), host, port, certfile,
                                              keyfile, cafile, flags)
        except _c.Error as e:
            raise self._err(e, f"listen_tls {host}:{port}", argument=False) from None
        self._refresh_ports()
        bound = res[-1] if isinstance(res, (list, tuple)) else res
        return int(bound)

    def _refresh_ports(self) -> None:
        ports = []
        i = 0
        while True:
            try:
                ports.append(int(_c.mqlite_broker_port(self._b, i)))
            except _c.Error:
                break
            i += 1
        self._ports = ports

    # -- attributes --------------------------------------------------------------

    @property
    def port(self) -> int:
        """The port of the first listener (the one `host`/`port` opened,
        else the configuration file's first)."""
        if not self._ports:
            raise MqliteError(_c.MQLITE_ERR_STATE, "the broker has no listener")
        return self._ports[0]

    @property
    def ports(self) -> List[int]:
        """The ports of every listener, in the order they were opened."""
        return list(self._ports)

    @property
    def url(self) -> str:
        """``mqtt://host:port`` of the first listener."""
        h = self.host
        if ":" in h:
            h = f"[{h}]"
        return f"mqtt://{h}:{self.port}"

    @property
    def running(self) -> bool:
        """True while the broker thread runs."""
        return self._thread is not None and self._thread.is_alive()

    def stats(self) -> Dict[str, int]:
        """The broker's counters (MQLITE_BSTAT_*: "clients_connected",
        "messages_received", ...). While the broker runs in its thread the
        handle is that thread's, so this raises MqliteError (state);
        after stop() it gives the final counters."""
        if self._thread is not None or (self._serving is not None
                                        and not self._serving.is_set()):
            raise MqliteError(_c.MQLITE_ERR_STATE, "stats(): the broker is running in its own "
                              "thread; read them after stop(), or subscribe to $SYS/#")
        if self._b is None:
            if self._final_stats is not None:
                return dict(self._final_stats)
            raise MqliteError(_c.MQLITE_ERR_MISUSE, "the broker is closed")
        return self._read_stats()

    def _read_stats(self) -> Dict[str, int]:
        out = {}
        for name, sid in STAT_NAMES.items():
            try:
                out[name] = int(_c.mqlite_broker_stat(self._b, sid))
            except _c.Error:  # pragma: no cover - a counter this build lacks
                pass
        return out

    # -- running -------------------------------------------------------------------

    def start(self) -> "Broker":
        """Run the broker in a background thread (GIL released); returns self."""
        b = self._configurable()
        if not self._ports:
            raise MqliteError(_c.MQLITE_ERR_STATE, "start(): the broker has no listener")
        # The thread must not hold a reference to self: a forgotten Broker
        # is then collected, and __del__ stops it.
        self._run_errors: List[BaseException] = []
        self._thread = threading.Thread(target=_run, args=(b, self._run_errors),
                                        name=f"mqlite-broker:{self._ports[0]}", daemon=True)
        self._thread.start()
        return self

    def stop(self, timeout: Optional[float] = 10.0) -> None:
        """Stop the broker (closing every connection) and free it; from the
        thread that started it or, for serve_forever(), from any thread.
        Idempotent."""
        t = self._thread
        if t is not None:
            _c.mqlite_broker_stop(self._b)
            t.join(timeout)
            if t.is_alive():
                raise MqliteError(_c.MQLITE_ERR_TIMEOUT,
                                  f"the broker thread did not stop within {timeout} s")
            self._thread = None
        elif self._serving is not None:
            # serve_forever() in another thread: ask it to return; it frees.
            with self._free_lock:
                self._stopping = True
                if self._b is not None:
                    _c.mqlite_broker_stop(self._b)
            if not self._serving.wait(timeout):
                raise MqliteError(_c.MQLITE_ERR_TIMEOUT,
                                  f"serve_forever() did not return within {timeout} s")
            return
        self._free()
        errs = getattr(self, "_run_errors", [])
        if errs and isinstance(errs[0], _c.Error):  # pragma: no cover - fatal epoll error
            err = errs.pop()
            raise error_for(err.args[0], err.args[1] if len(err.args) > 1 else None)

    close = stop

    def serve_forever(self, poll_interval: float = 0.25) -> None:
        """Run the broker in this thread until Ctrl-C (KeyboardInterrupt is
        caught: the broker then stops cleanly) or stop() from another
        thread; frees it afterwards. The GIL is released while it waits
        (rounds of at most `poll_interval` seconds, so signals are seen)."""
        b = self._configurable()
        if not self._ports:
            raise MqliteError(_c.MQLITE_ERR_STATE, "serve_forever(): the broker has no listener")
        ms = max(1, int(poll_interval * 1000))
        self._serving = threading.Event()
        try:
            while not self._stopping:
                _c.mqlite_broker_poll(b, ms)
        except _c.Error as e:
            if e.args[0] != _c.MQLITE_ERR_STATE:
                raise self._err(e, "serve_forever", argument=False) from None
        except KeyboardInterrupt:
            pass
        finally:
            self._free()
            self._serving.set()

    def _free(self) -> None:
        with self._free_lock:
            self._free_locked()

    def _free_locked(self) -> None:
        b, self._b = self._b, None
        if b is not None:
            self._final_stats = None
            try:
                self._final_stats = {n: int(_c.mqlite_broker_stat(b, i))
                                     for n, i in STAT_NAMES.items()}
            except _c.Error:  # pragma: no cover
                pass
            _c.mqlite_broker_free(b)

    def __enter__(self) -> "Broker":
        if self._thread is None:
            self.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self.stop()

    def __del__(self) -> None:
        try:
            if getattr(self, "_b", None) is not None:
                self.stop(timeout=2.0)
        except Exception:  # pragma: no cover - interpreter shutdown
            pass

    def __repr__(self) -> str:
        state = "running" if self.running else ("closed" if self._b is None else "ready")
        ports = ",".join(map(str, self._ports)) or "-"
        return f"<Broker {self.host}:{ports} {state}>"
