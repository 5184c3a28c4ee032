"""Build the `mqlite` wheel from a CMake build tree (see pyproject.toml).

The package is not compiled here: CMake builds the C library and the SWIG
extension (linked statically to libmqlite) into <build>/python/mqlite,
next to copies of python/mqlite/*.py; this script packages that directory
as a platform wheel (cp3XX-linux_x86_64). The build tree is $MQLITE_BUILD_DIR
(relative paths are taken from this directory), default ./build.

setuptools' own scratch files go to <build>/setuptools, so an in-tree
`pip install .` writes nothing into the source tree.
"""
import os
import pathlib
import re
import sys

from setuptools import setup
from setuptools.dist import Distribution

ROOT = pathlib.Path(__file__).resolve().parent
BUILD = pathlib.Path(os.environ.get("MQLITE_BUILD_DIR") or ROOT / "build")
if not BUILD.is_absolute():
    BUILD = ROOT / BUILD
PKG = BUILD / "python" / "mqlite"


def _version() -> str:
    header = (ROOT / "core" / "include" / "mqlite.h").read_text()
    m = re.search(r'#define MQLITE_VERSION_STRING "([^"]+)"', header)
    return m.group(1) if m else "0.0.0"


if not any(PKG.glob("_mqlite_c*.so")) or not (PKG / "__init__.py").exists():
    sys.exit(f"setup.py: no built mqlite package in {PKG}.\n"
             f"Build it first:  cmake -S {ROOT} -B {BUILD} && cmake --build {BUILD}\n"
             f"(or point MQLITE_BUILD_DIR at your build tree)")


class BinaryDistribution(Distribution):
    """The package carries a compiled extension: a platform wheel."""

    def has_ext_modules(self) -> bool:
        return True


SCRATCH = BUILD / "setuptools"
setup(
    version=_version(),
    packages=["mqlite"],
    package_dir={"mqlite": os.path.relpath(PKG, ROOT)},
    package_data={"mqlite": ["*.so", "py.typed", "*.pyi"]},
    distclass=BinaryDistribution,
    options={
        "build": {"build_base": str(SCRATCH / "build")},
        "egg_info": {"egg_base": str(SCRATCH)},
        "bdist_wheel": {"bdist_dir": str(SCRATCH / "bdist")},
    },
)
