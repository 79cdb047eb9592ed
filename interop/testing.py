"""Run a gateway (and demo providers) on a background event loop, for tests and notebooks.

Synchronous tests talk to it over real sockets, as users' clients would::

    with BackgroundLoop() as bg:
        provider = bg.start_provider()
        gw = bg.start_gateway(config_yaml)
        status, body = http_request(gw.port, "GET", "/hello/world")
"""

from __future__ import annotations

import asyncio
import http.client
import threading
from collections.abc import Coroutine
from typing import Any

import orjson
from tribridge.config.model import parse_config
from tribridge.http.server import new_event_loop
from tribridge.routing.app import Gateway


class BackgroundLoop:
    """An event loop on a daemon thread; ``run(coro)`` executes a coroutine on it."""

    def __init__(self) -> None:
        self.loop = new_event_loop()
        self._thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self._closers: list[Any] = []

    def __enter__(self) -> BackgroundLoop:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def run(self, coro: Coroutine[Any, Any, Any], timeout: float = 30.0) -> Any:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)

    def start_provider(self, **kw: Any) -> Any:
        from tribridge.interop.demo_provider import DemoProvider

        async def go() -> Any:
            p = DemoProvider(**kw)
            await p.start()
            return p

        p = self.run(go())
        self._closers.append(lambda: p.close(0.1))
        return p

    def start_gateway(
        self, config_yaml: str, admin_port: int | None = None, watch: str | None = None
    ) -> Gateway:
        """A gateway on a free port; ``admin_port=0`` adds the admin API on a free port,
        ``watch`` follows that config file (poll interval from the config)."""
        cfg = parse_config(config_yaml, watch or "<test>")

        async def go() -> Gateway:
            gw = Gateway(cfg)
            await gw.start(port=0, admin_port=admin_port)
            if watch is not None:
                gw.watch(watch)
            return gw

        gw = self.run(go())
        self._closers.append(lambda: gw.stop(1.0))
        return gw

    def close(self) -> None:
        for closer in reversed(self._closers):
            try:
                self.run(closer(), timeout=10)
            except Exception:
                pass
        self._closers.clear()
        if self.loop.is_running():
            self.loop.call_soon_threadsafe(self.loop.stop)
            self._thread.join(5)


def http_request(
    port: int,
    method: str,
    path: str,
    body: Any = None,
    headers: dict[str, str] | None = None,
    timeout: float = 10.0,
) -> tuple[int, Any]:
    """One HTTP request on a fresh connection; returns (status, parsed JSON or raw bytes)."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        data = body if isinstance(body, (bytes, type(None))) else orjson.dumps(body)
        conn.request(method, path, body=data, headers=headers or {})
        resp = conn.getresponse()
        raw = resp.read()
        try:
            return resp.status, orjson.loads(raw)
        except orjson.JSONDecodeError:
            return resp.status, raw
    finally:
        conn.close()
