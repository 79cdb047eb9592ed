"""Fast HTTP/1.1 server: a bare ``asyncio.Protocol`` driving ``httptools.HttpRequestParser``.

This is the hot path of the gateway, so it is written for throughput first:

* one parser and one protocol object per connection, reused for every request on it;
* the response is rendered into one ``bytes`` object and written with one
  ``transport.write`` (status lines, content-type lines, small content-length lines and
  the ``Date`` line are cached; the Date line is rebuilt at most once a second);
* a handler that returns a :class:`Response` directly is answered without a task and
  without a queue entry; one that returns a :class:`~tribridge.http.messages.Later` is
  answered inside the callback that resolves it (no task, no future, no loop pass: the
  gateway resolves it in its provider connection's ``data_received``); one that returns an
  ``asyncio.Future`` is answered from the future's done callback; only coroutines get a task;
* timeouts use no per-request timer: every connection carries one deadline (a float) and a
  single server-wide ticker sweeps them.

Behaviour (see ``tests/integration/test_http_server.py``): keep-alive (HTTP/1.1 default, HTTP/1.0 only
with ``Connection: keep-alive``), pipelining answered strictly in request order, chunked
request bodies, ``Expect: 100-continue``, HEAD, request-smuggling defences (CL+TE, bad or
repeated Content-Length, unknown Transfer-Encoding), limits with JSON errors
(``{"error": {"code": ..., "message": ...}}``), slowloris/body/idle timeouts, read
back-pressure (pipeline depth and transport ``pause_writing``), graceful shutdown.

Resource bounds (docs/security.md, "Resource limits"): a connection cap below the file
descriptor limit (past it: a prebuilt 503 and close), an explicit write high-water mark, an
abort for a client that lets ``max_unread_response_bytes`` pile up, and a server-wide budget
for partial bodies held across reads (past it: 503 for the body that crossed it).

Works on plain asyncio; :func:`run` / :func:`new_event_loop` use uvloop when installed.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from email.utils import formatdate
from typing import Any

from tribridge.config.limits import connection_cap
from tribridge.http.connection import HttpConnection
from tribridge.http.messages import Handler, HttpLimits, Request, Response

try:
    import uvloop
except ImportError:  # pragma: no cover
    uvloop = None

__all__ = ["HttpServer", "new_event_loop", "run"]

log = logging.getLogger("tribridge.http")
_time = time.time


# --------------------------------------------------------------------------- public API


def new_event_loop() -> asyncio.AbstractEventLoop:
    """A uvloop loop when uvloop is installed, else a default asyncio loop."""
    if uvloop is not None:
        return uvloop.new_event_loop()
    return asyncio.new_event_loop()


def run(main: Awaitable[Any]) -> Any:
    """``asyncio.run`` on uvloop when installed."""
    with asyncio.Runner(loop_factory=new_event_loop) as runner:
        return runner.run(main)


# --------------------------------------------------------------------------- server


class HttpServer:
    """HTTP/1.1 server calling ``handler(request)`` for every request.

    ``handler`` may return a :class:`Response` (fast path: no task), a ``Later`` (answered
    when resolved, in the resolving callback), an ``asyncio.Future`` resolving to one (no
    task either: answered from its done callback), or a coroutine (run as a task).
    Responses go out in request order on every connection.

    ``on_error(request, exc)`` renders handler failures (exceptions, wrong return types,
    unrenderable responses); without it a :class:`HttpError` raised by the handler becomes
    its own status and anything else a 500 ``internal`` JSON error. Protocol errors
    (400/408/413/431/501) always use the built-in JSON shape. ``access_log(request,
    response, seconds)`` is called once per response to a parsed request (not for
    protocol errors that have no request).
    """

    def __init__(
        self,
        handler: Handler,
        limits: HttpLimits | None = None,
        on_error: Callable[[Request | None, BaseException], Response] | None = None,
        access_log: Callable[[Request, Response, float], None] | None = None,
    ):
        self.handler = handler
        self.limits = limits or HttpLimits()
        self.on_error = on_error
        self.access_log = access_log
        self._loop: asyncio.AbstractEventLoop | None = None
        self._server: asyncio.base_events.Server | None = None
        self._conns: set[HttpConnection] = set()
        self._ticker: asyncio.TimerHandle | None = None
        self._shutting_down = False
        self._all_closed: asyncio.Future | None = None
        self._cap = self.limits.max_connections  # set from RLIMIT_NOFILE at start()
        self._held = 0  # bytes of partial request bodies held, all connections
        #: connections refused past the cap (a counter for metrics)
        self.refused = 0
        self._date = b""  # the whole "date: ...\r\n" line, refreshed every second by a timer
        self._date_timer: asyncio.TimerHandle | None = None
        self._refresh_date()
        lim = self.limits
        self._tick = max(
            0.01,
            min(
                1.0,
                lim.header_timeout / 4,
                lim.body_timeout / 4,
                lim.idle_timeout / 4,
                lim.linger_timeout / 2,
            ),
        )

    def _refresh_date(self) -> float:
        now = _time()
        self._date = b"date: " + formatdate(int(now), usegmt=True).encode() + b"\r\n"
        return now

    def _date_tick(self) -> None:
        now = self._refresh_date()
        # just after the next second boundary
        self._date_timer = self._loop.call_later(1.0005 - now % 1.0, self._date_tick)

    async def start(
        self,
        host: str = "127.0.0.1",
        port: int = 0,
        *,
        reuse_port: bool = False,
        sock=None,
        ssl=None,
    ) -> None:
        """Listen; with ``ssl`` (an ``ssl.SSLContext``) serve HTTPS, the TLS handshake
        bounded by ``header_timeout``."""
        if self._server is not None:
            raise RuntimeError("server already started")
        loop = asyncio.get_running_loop()
        self._loop = loop
        self._shutting_down = False
        lim = self.limits
        self._cap = connection_cap(lim.max_connections, lim.fd_reserve, "HTTP listener")

        def factory() -> HttpConnection:
            return HttpConnection(self)

        tls: dict = {"ssl": ssl, "ssl_handshake_timeout": self.limits.header_timeout} if ssl else {}
        if sock is not None:
            self._server = await loop.create_server(factory, sock=sock, backlog=2048, **tls)
        else:
            self._server = await loop.create_server(
                factory, host, port, reuse_port=reuse_port or None, backlog=2048, **tls
            )
        self._ticker = loop.call_later(self._tick, self._sweep)
        self._date_tick()

    def _sweep(self) -> None:
        now = self._loop.time()
        for conn in tuple(self._conns):
            d = conn.deadline
            if d and d <= now:
                try:
                    conn._timeout()
                except Exception:
                    log.exception("timeout handling failed")
        self._ticker = self._loop.call_later(self._tick, self._sweep)

    @property
    def port(self) -> int:
        if self._server is None or not self._server.sockets:
            raise RuntimeError("server not started")
        return self._server.sockets[0].getsockname()[1]

    @property
    def active_connections(self) -> int:
        return len(self._conns)

    async def shutdown(self, grace: float = 10.0) -> None:
        """Stop accepting; close idle connections; let in-flight requests finish and send
        their responses (with ``Connection: close``); after ``grace`` seconds abort the rest."""
        if self._server is None:
            return
        loop = self._loop
        self._shutting_down = True
        self._server.close()
        for conn in tuple(self._conns):
            conn._drain()
        if self._conns:
            self._all_closed = loop.create_future()
            try:
                await asyncio.wait_for(asyncio.shield(self._all_closed), grace)
            except TimeoutError:
                pass
        for conn in tuple(self._conns):
            conn._kill()
        if self._conns:
            self._all_closed = loop.create_future()
            try:
                await asyncio.wait_for(asyncio.shield(self._all_closed), 1.0)
            except TimeoutError:
                pass
        if self._ticker is not None:
            self._ticker.cancel()
            self._ticker = None
        if self._date_timer is not None:
            self._date_timer.cancel()
            self._date_timer = None
        try:
            await asyncio.wait_for(self._server.wait_closed(), 1.0)
        except TimeoutError:
            pass
        self._server = None
        self._all_closed = None
