"""Optional extras: which third-party package a feature needs, and the one line that installs it.

The core install (HTTP -> Dubbo2 / Triple with the static registry) carries no discovery
client, no protoc, no Redis or OpenTelemetry client. A config that asks for one of those is
refused while it is read, with the ``pip install`` line to run, instead of failing at the
first request or with an ImportError traceback. The check looks the package up without
importing it, so loading a config stays cheap and side-effect free.
"""

from __future__ import annotations

import importlib.util

#: extra name -> the importable modules it provides (pyproject.toml [project.optional-dependencies])
PROVIDES: dict[str, tuple[str, ...]] = {
    "zookeeper": ("kazoo",),
    "nacos": ("v2.nacos",),
    "eureka": ("py_eureka_client",),
    "kubernetes": ("lightkube",),
    "redis": ("redis",),
    "idl": ("grpc_tools", "grpc_reflection"),
    "otel": ("opentelemetry.trace",),
    "contract": ("mcp_types",),
}


def installed(module: str) -> bool:
    """Whether ``module`` can be imported, without importing it (a parent package may be)."""
    try:
        return importlib.util.find_spec(module) is not None
    except (ImportError, ValueError):
        return False


def missing(extra: str, what: str) -> str | None:
    """``None`` when ``extra`` is installed, else the one-line message naming it."""
    if all(installed(m) for m in PROVIDES[extra]):
        return None
    return f"{what}: the {extra} extra is not installed: pip install 'tribridge[{extra}]'"
