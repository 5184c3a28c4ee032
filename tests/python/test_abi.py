"""The ABI as a product: the exported symbol set is deliberate, every public
function is documented, every signature is callable from a plain FFI, and the
API reference builds without warnings."""
import os
import pathlib
import re
import shutil
import subprocess

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[2]
HEADER = ROOT / "core" / "include" / "mqlite.h"
SYMBOLS = ROOT / "core" / "mqlite.symbols"
BUILD = pathlib.Path(os.environ.get("MQLITE_BUILD_DIR", ROOT / "build"))
DECL = re.compile(r"MQLITE_API\s+([^;]*?)\b(mqlite_\w+)\s*\(([^;]*?)\)\s*;", re.S)


def declarations():
    text = HEADER.read_text(encoding="utf-8")
    return [(m.group(2), " ".join(m.group(1).split()), " ".join(m.group(3).split()), m.start())
            for m in DECL.finditer(text)], text


def listed_symbols():
    return {line.strip() for line in SYMBOLS.read_text().splitlines()
            if line.strip() and not line.startswith("#")}


def test_header_declares_exactly_the_listed_symbols():
    decls, _ = declarations()
    assert {d[0] for d in decls} == listed_symbols()


def test_shared_library_exports_exactly_the_listed_symbols():
    lib = BUILD / "lib" / "libmqlite.so"
    assert lib.exists(), f"{lib} not built"
    out = subprocess.run(["nm", "-D", "--defined-only", str(lib)], check=True,
                         capture_output=True, text=True).stdout
    exported = {line.split()[-1].split("@")[0] for line in out.splitlines()
                if line.split() and line.split()[-2] in ("T", "W", "D", "B", "R")}
    exported.discard("MQLITE_0.1")
    missing = listed_symbols() - exported
    extra = exported - listed_symbols()
    assert not missing and not extra, (
        f"exported set differs from core/mqlite.symbols: missing {sorted(missing)}, "
        f"unlisted {sorted(extra)} -- an ABI change must update the list on purpose")


def test_every_public_function_has_a_doc_comment():
    decls, text = declarations()
    undocumented = []
    for name, _, _, start in decls:
        # The governing comment block: the nearest one above the declaration
        # (a block may document a group of adjacent declarations).
        block_end = text.rfind("*/", 0, start)
        block_start = text.rfind("/*", 0, block_end)
        block = text[block_start:block_end]
        between = text[block_end + 2:start]
        if name not in block or "Since:" not in block or ";" in between and \
                not all(n in block for n in re.findall(r"\b(mqlite_\w+)\s*\(", between)):
            undocumented.append(name)
    assert not undocumented, f"public functions without a doc comment: {undocumented}"


ALLOWED_TYPES = re.compile(
    r"^(const )?(void|char|int32_t|int64_t|uint16_t|uint32_t|uint64_t|size_t|"
    r"mqlite_\w+|mqlite_realloc_fn)( \*| \*const \*)?( \*)?$")


def test_signatures_are_plain_ffi_types():
    decls, _ = declarations()
    bad = []
    for name, ret, params, _ in decls:
        types = [ret.strip()]
        for p in params.split(","):
            p = p.strip()
            if p == "void":
                continue
            if "..." in p:
                bad.append((name, "varargs"))
                continue
            # drop the parameter name
            types.append(re.sub(r"\s*\b\w+$", "", p).replace("* ", "*").replace("*", " *")
                         .replace("  ", " ").strip())
        for t in types:
            if t.startswith("struct") or not ALLOWED_TYPES.match(t):
                bad.append((name, t))
    assert not bad, f"types an FFI cannot pass without a C compiler: {bad}"


def test_header_compiles_alone_as_c_and_cpp(tmp_path):
    for compiler, flag in (("cc", "-std=c11"), ("c++", "-std=c++11")):
        if not shutil.which(compiler):
            continue
        src = tmp_path / ("t.c" if compiler == "cc" else "t.cpp")
        src.write_text('#include "mqlite.h"\nint main(void) { return mqlite_version(0) > 0 ? 0 : 1; }\n')
        r = subprocess.run([compiler, flag, "-Wall", "-Wextra", "-Werror", "-pedantic",
                            "-fsyntax-only", f"-I{HEADER.parent}", str(src)],
                           capture_output=True, text=True)
        assert r.returncode == 0, r.stderr


@pytest.mark.skipif(not shutil.which("doxygen"), reason="doxygen not installed (scripts/deps.sh)")
def test_api_reference_builds_without_warnings(tmp_path):
    conf = (ROOT / "docs" / "Doxyfile.in").read_text()
    for key, val in {"@PROJECT_VERSION@": "0", "@MQLITE_DOXY_OUT@": str(tmp_path),
                     "@PROJECT_SOURCE_DIR@": str(ROOT),
                     "@MQLITE_PYTHON_FOR_DOCS@": "/usr/bin/python3"}.items():
        conf = conf.replace(key, val)
    (tmp_path / "Doxyfile").write_text(conf)
    r = subprocess.run(["doxygen", str(tmp_path / "Doxyfile")], capture_output=True, text=True,
                       timeout=120)
    assert r.returncode == 0, r.stderr
    assert r.stderr.strip() == "", f"doxygen warnings:\n{r.stderr}"
    html = (tmp_path / "html" / "mqlite_8h.html").read_text(errors="replace")
    decls, _ = declarations()
    for name, *_ in decls:
        assert name in html
