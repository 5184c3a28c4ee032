"""mqlite: MQTT 3.1/3.1.1/5.0 client and broker (Python bindings over the C core)."""
from . import mqlite_c as _c

__version__ = _c.version_string()
