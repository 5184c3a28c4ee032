# Type stub of the SWIG module mqlite.mqlite_c (generated from
# bindings/python/mqlite.i): private and thin, so typed as Any here; the
# public, typed API is the mqlite package itself.
from typing import Any

class Error(Exception): ...

def __getattr__(name: str) -> Any: ...
