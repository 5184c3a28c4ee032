"""The mqlite Python package as a product: installable outside the build
tree (pip into a venv, no PyPI: pyproject.toml + setup.py package the
CMake build's python/mqlite), typed (py.typed, annotations, mypy --strict
when mypy is installed) and documented (a docstring on every public name)."""
from __future__ import annotations

import inspect
import os
import pathlib
import shutil
import subprocess
import sys
import textwrap
from typing import Any, Iterator, List, Tuple

import pytest

import mqlite
import mqlite.aio
import mqlite.broker
import mqlite.client
import mqlite.message
import mqlite.packet
import mqlite.testing
from pychild import child_env

ROOT = pathlib.Path(__file__).resolve().parents[2]
PY = "/usr/bin/python3" if os.path.exists("/usr/bin/python3") else sys.executable
MODULES = [mqlite, mqlite.client, mqlite.aio, mqlite.broker, mqlite.message, mqlite.testing,
           mqlite.packet, mqlite._errors, mqlite._core]


def build_dir() -> pathlib.Path:
    d = os.environ.get("MQLITE_BUILD_DIR")
    if d:
        return pathlib.Path(d).resolve()
    return pathlib.Path(mqlite.__file__).resolve().parents[2]


@pytest.mark.timeout(600)
def test_pip_install_into_a_venv_and_import_from_anywhere(tmp_path: pathlib.Path) -> None:
    venv = tmp_path / "venv"
    subprocess.run([PY, "-m", "venv", "--system-site-packages", str(venv)], check=True,
                   timeout=120)
    py = venv / "bin" / "python"
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONHOME")}
    env["MQLITE_BUILD_DIR"] = str(build_dir())
    env["PIP_NO_CACHE_DIR"] = "1"
    r = subprocess.run([str(py), "-m", "pip", "install", "--no-build-isolation", "--no-index",
                        "--no-deps", str(ROOT)], capture_output=True, text=True, env=env,
                       cwd=tmp_path, timeout=500)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    # Nothing was written into the source tree.
    assert not list(ROOT.glob("*.egg-info")) and not (ROOT / "mqlite.egg-info").exists()

    script = tmp_path / "use_it.py"
    script.write_text(textwrap.dedent("""
        import mqlite, mqlite.testing, pathlib
        print("file", pathlib.Path(mqlite.__file__).resolve())
        print("version", mqlite.__version__)
        print("typed", (pathlib.Path(mqlite.__file__).parent / "py.typed").exists())
        with mqlite.Broker(port=0) as b:
            with mqlite.Client(port=b.port, version=5) as c:
                c.subscribe("pkg/t", qos=1).wait(10)
                c.publish("pkg/t", b"installed", qos=1).wait(10)
                print("got", c.receive(10).payload.decode())
    """))
    clean = child_env({k: v for k, v in env.items() if not k.startswith("MQLITE")})
    out = subprocess.run([str(py), "-I", str(script)], capture_output=True, text=True,
                         env=clean, cwd=tmp_path, timeout=60)
    assert out.returncode == 0, out.stderr
    lines = dict(line.split(" ", 1) for line in out.stdout.splitlines())
    assert lines["file"].startswith(str(venv.resolve())), lines
    assert lines["version"] == mqlite.__version__
    assert lines["typed"] == "True" and lines["got"] == "installed"
    show = subprocess.run([str(py), "-m", "pip", "show", "-f", "mqlite"], capture_output=True,
                          text=True, env=clean, timeout=60)
    assert "Version: " + mqlite.__version__ in show.stdout
    for f in ("mqlite/client.py", "mqlite/aio.py", "mqlite/broker.py", "mqlite/testing.py",
              "mqlite/py.typed", "mqlite/mqlite_c.pyi", "_mqlite_c."):
        assert f in show.stdout, show.stdout


def test_setup_py_says_how_to_build_first(tmp_path: pathlib.Path) -> None:
    env = dict(os.environ, MQLITE_BUILD_DIR=str(tmp_path / "nowhere"))
    r = subprocess.run([PY, str(ROOT / "setup.py"), "--version"], capture_output=True,
                       text=True, env=env, cwd=tmp_path, timeout=60)
    assert r.returncode != 0
    assert "cmake --build" in r.stderr and "MQLITE_BUILD_DIR" in r.stderr


def _public(obj: Any) -> Iterator[Tuple[str, Any]]:
    for name in sorted(dir(obj)):
        if name.startswith("_"):
            continue
        yield name, getattr(obj, name)


def _own_members(cls: type) -> Iterator[Tuple[str, Any]]:
    for klass in cls.__mro__:
        if not klass.__module__.startswith("mqlite"):
            continue
        for name, value in vars(klass).items():
            if name.startswith("_") and name not in ("__init__", "__await__"):
                continue
            yield f"{klass.__name__}.{name}", value


def _api() -> Iterator[Tuple[str, Any]]:
    for mod in MODULES:
        for name in getattr(mod, "__all__", []):
            yield f"{mod.__name__}.{name}", getattr(mod, name)


def test_every_public_name_has_a_docstring() -> None:
    missing: List[str] = []
    for mod in MODULES:
        if not (mod.__doc__ or "").strip():
            missing.append(mod.__name__)
    for qual, obj in _api():
        if isinstance(obj, (int, str, dict, tuple)) or obj is None:
            continue
        if inspect.ismodule(obj):
            continue
        if not (getattr(obj, "__doc__", None) or "").strip():
            missing.append(qual)
        if inspect.isclass(obj):
            for mname, member in _own_members(obj):
                if mname.endswith("__init__") or isinstance(member, (int, str, tuple)):
                    continue
                fn = member.fget if isinstance(member, property) else member
                if isinstance(fn, (staticmethod, classmethod)):
                    fn = fn.__func__
                if callable(fn) or isinstance(member, property):
                    if not (getattr(fn, "__doc__", None) or "").strip():
                        missing.append(f"{qual} {mname}")
    assert not missing, "no docstring: " + ", ".join(sorted(set(missing)))


def test_every_public_callable_is_annotated() -> None:
    bad: List[str] = []
    for qual, obj in _api():
        targets: List[Tuple[str, Any]] = []
        if inspect.isclass(obj):
            for mname, member in _own_members(obj):
                fn = member.fget if isinstance(member, property) else member
                if isinstance(fn, (staticmethod, classmethod)):
                    fn = fn.__func__
                if inspect.isfunction(fn):
                    targets.append((f"{qual} {mname}", fn))
        elif inspect.isfunction(obj):
            targets.append((qual, obj))
        for name, fn in targets:
            sig = inspect.signature(fn)
            for p in sig.parameters.values():
                if p.name in ("self", "cls"):
                    continue
                if p.annotation is inspect.Parameter.empty:
                    bad.append(f"{name}({p.name})")
            if sig.return_annotation is inspect.Signature.empty and \
                    not name.endswith("__init__"):
                bad.append(f"{name} -> ?")
    assert not bad, "not annotated: " + ", ".join(sorted(set(bad)))


def test_py_typed_and_stub_are_in_the_package() -> None:
    pkg = pathlib.Path(mqlite.__file__).parent
    assert (pkg / "py.typed").exists() and (pkg / "mqlite_c.pyi").exists()


@pytest.mark.timeout(300)
def test_mypy_strict_passes(tmp_path: pathlib.Path) -> None:
    if shutil.which("mypy") is None and subprocess.run(
            [PY, "-c", "import mypy"], capture_output=True).returncode != 0:
        pytest.skip("mypy is not installed (Debian package: mypy)")
    cfg = tmp_path / "mypy.ini"
    cfg.write_text("[mypy]\nstrict = True\nwarn_unused_ignores = False\n"
                   f"cache_dir = {tmp_path / 'cache'}\n"
                   "[mypy-pytest.*]\nignore_missing_imports = True\n")
    pkg_parent = pathlib.Path(mqlite.__file__).resolve().parents[1]
    r = subprocess.run([PY, "-m", "mypy", "--config-file", str(cfg), "-p", "mqlite"],
                       capture_output=True, text=True, cwd=pkg_parent, timeout=280)
    assert r.returncode == 0, r.stdout + r.stderr
