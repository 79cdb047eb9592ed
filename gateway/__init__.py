"""tribridge: HTTP/JSON to Dubbo2 / Triple gateway."""

from typing import Any

__version__ = "0.1.0"
__all__ = ["AsyncClient", "CallError", "Client", "__version__"]


def __getattr__(name: str) -> Any:
    # lazy: ``import tribridge`` stays cheap (the pytest plugin imports it at startup)
    if name in ("Client", "AsyncClient", "CallError"):
        from tribridge.cli import client

        return getattr(client, name)
    raise AttributeError(f"module 'tribridge' has no attribute {name!r}")
