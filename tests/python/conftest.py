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
