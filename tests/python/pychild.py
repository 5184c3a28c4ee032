"""Environments for child Python interpreters that import the built mqlite
package. In the sanitizer build (MQLITE_SANITIZE=1) the SWIG module is
compiled with ASan, so a child interpreter needs the ASan runtime loaded
first, as ctest does for pytest itself; conftest.py removes LD_PRELOAD from
the environment (other programs must not run under ASan), so it is put
back here, for Python children only. Leak detection stays off, as for
pytest: the interpreter itself does not free everything at exit."""
from __future__ import annotations

import os
import re
from typing import Dict, Optional


def _asan_runtime() -> Optional[str]:
    with open("/proc/self/maps", encoding="utf-8") as maps:
        for line in maps:
            parts = line.split()
            path = parts[-1] if len(parts) >= 6 else ""
            if re.search(r"/lib(clang_rt\.asan-[^/]*|asan)\.so[^/]*$", path):
                return path
    return None


def child_env(base: Optional[Dict[str, str]] = None) -> Dict[str, str]:
    """A copy of `base` (default: os.environ) for a Python child process."""
    env = dict(os.environ if base is None else base)
    if os.environ.get("MQLITE_SANITIZE") == "1":
        runtime = _asan_runtime()
        assert runtime, "MQLITE_SANITIZE=1 but no ASan runtime is loaded in pytest"
        env["LD_PRELOAD"] = runtime
        env["ASAN_OPTIONS"] = "detect_leaks=0"
        env["PYTHONMALLOC"] = "malloc"
    return env
