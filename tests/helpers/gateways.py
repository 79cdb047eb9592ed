"""Gateway configs the registry tests share."""

from __future__ import annotations

from typing import Any

from tribridge.interop.demo_provider import DEMO_SIGNATURES, SERVICE


def demo_via_registry(url: str, name: str = "src") -> dict[str, Any]:
    """A gateway that finds the demo service (version 1.0.0, its signatures configured)
    through the registry at ``url`` and exposes it on auto routes: what every discovery
    test needs to show a provider found by that registry is really called."""
    return {
        "listen": {"host": "127.0.0.1", "port": 0},
        "registries": {name: url},
        "services": [
            {
                "interface": SERVICE,
                "version": "1.0.0",
                "registry": name,
                "methods": {m: {"types": d} for m, d in DEMO_SIGNATURES.items()},
            }
        ],
        "auto_routes": {"prefix": "/", "expose": ["com.tribridge.*"]},
    }
