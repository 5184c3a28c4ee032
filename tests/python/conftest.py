"""Shared pytest setup for tests/python.

ctest runs pytest with PYTHONPATH=build/python; a bare `pytest` finds the
built package through MQLITE_BUILD_DIR (default: build/ at the top of the
tree) instead.
"""
import importlib.util
import os
import pathlib
import sys

ROOT = pathlib.Path(__file__).resolve().parents[2]

if importlib.util.find_spec("mqlite") is None:
    _build = pathlib.Path(os.environ.get("MQLITE_BUILD_DIR", ROOT / "build"))
    sys.path.insert(0, str(_build / "python"))

# In a sanitizer build ctest preloads the ASan runtime into this interpreter
# (the SWIG module needs it). It is loaded by now; children must not inherit
# it: our own programs link the runtime themselves, and other programs
# (mosquitto, the Erlang brokers, tmux, paho scripts) would run under ASan,
# slowly or not at all.
os.environ.pop("LD_PRELOAD", None)

# The `mqlite_broker` fixture (an in-process broker per test), as other
# projects use it: see python/mqlite/testing.py.
pytest_plugins = ["mqlite.testing"]
