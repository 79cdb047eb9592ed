"""Fixtures shared by the integration modules (the session-wide ones are in tests/conftest.py)."""

from __future__ import annotations

from typing import Any

import pytest
from tribridge.http.messages import HttpLimits
from tribridge.http.server import HttpServer
from tribridge.interop.testing import BackgroundLoop


@pytest.fixture(scope="module")
def provider(bg: BackgroundLoop) -> Any:
    """The demo Dubbo2 provider (version 1.0.0) on the module's loop, one per module."""
    return bg.start_provider(version="1.0.0")


@pytest.fixture
async def serve() -> Any:
    """``await serve(handler, limits=None, **server_options)``: an ``HttpServer`` on a free
    127.0.0.1 port, shut down after the test (the HTTP server and streaming modules)."""
    servers: list[HttpServer] = []

    async def start(handler: Any, limits: HttpLimits | None = None, **kw: Any) -> HttpServer:
        srv = HttpServer(handler, limits, **kw)
        await srv.start("127.0.0.1", 0)
        servers.append(srv)
        return srv

    yield start
    for srv in servers:
        await srv.shutdown(grace=0.5)
