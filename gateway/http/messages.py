"""What the HTTP listener hands to a handler and takes back: ``Request``, ``Response``,
``HttpError`` and the listener's ``HttpLimits``. Apart from the protocol code in
``server.py`` so that routing, security and the admin API can name them without importing
the listener.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Generator
from dataclasses import dataclass, field
from typing import Any

from tribridge.config.limits import DEFAULT_FD_RESERVE, DEFAULT_MAX_CONNECTIONS

try:  # orjson is a hard dependency of the project, but keep the module importable without it
    import orjson

    def _dumps(obj: Any) -> bytes:
        return orjson.dumps(obj)
except ImportError:  # pragma: no cover
    import json

    def _dumps(obj: Any) -> bytes:
        return json.dumps(obj, separators=(",", ":")).encode()


log = logging.getLogger("tribridge.http")


@dataclass(slots=True)
class Request:
    method: str  # "GET"
    path: str  # the canonical path (gateway/http/canonical.py): what every rule and route sees
    query: str  # raw query string ('' if none)
    headers: dict[str, str]  # lower-cased names; repeated headers joined with ", "
    body: bytes
    client: tuple[str, int] | None
    keep_alive: bool


@dataclass(slots=True)
class Response:
    status: int
    body: bytes = b""
    # extra headers (content-type has its own field); the server adds content-length, date
    # and connection itself and drops those names (and transfer-encoding) from this list.
    headers: list[tuple[str, str]] = field(default_factory=list)
    content_type: str = "application/json"


class Later:
    """A response that a callback will complete: what a handler returns when its answer
    arrives in another protocol's callback (the gateway's provider replies).

    Cheaper than an ``asyncio.Future``: the listener registers one continuation with
    ``then`` and ``resolve`` / ``fail`` run it at once, in the caller's callback, where a
    future would schedule it for the next loop iteration (a ``Handle`` and a loop pass per
    request). One consumer only: the listener, or ``await`` for callers outside it."""

    __slots__ = ("_exc", "_then", "resp")

    def __init__(self) -> None:
        #: the response once resolved (read-only; None before, and when failed)
        self.resp: Response | None = None
        self._exc: BaseException | None = None
        self._then: Callable[[Later], None] | None = None

    def done(self) -> bool:
        return self.resp is not None or self._exc is not None

    def outcome(self) -> Response:
        """The response, or the handler's exception raised (only once ``done()``)."""
        if self._exc is not None:
            raise self._exc
        assert self.resp is not None, "Later.outcome() before it is done"
        return self.resp

    def then(self, fn: Callable[[Later], None]) -> None:
        """Run ``fn(self)`` once done (now, if already done)."""
        if self._then is not None:
            raise RuntimeError("a Later has one consumer")
        if self.resp is not None or self._exc is not None:
            fn(self)
        else:
            self._then = fn

    def resolve(self, resp: Response) -> None:
        if self.resp is None and self._exc is None:
            self.resp = resp
            self._run()

    def fail(self, exc: BaseException) -> None:
        if self.resp is None and self._exc is None:
            self._exc = exc
            self._run()

    def _run(self) -> None:
        fn, self._then = self._then, None
        if fn is not None:
            try:
                fn(self)
            except Exception:  # as the loop does for a future's callback: the resolver's
                # own work (other replies read in the same callback) goes on
                log.exception("continuation of a Later failed")

    def __await__(self) -> Generator[Any, None, Response]:
        if not self.done():
            fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()
            self.then(lambda _: fut.done() or fut.set_result(None))
            yield from fut
        return self.outcome()


Handler = Callable[[Request], "Awaitable[Response] | Response | Later"]


@dataclass
class HttpLimits:
    max_header_bytes: int = 16 * 1024  # request line + headers -> 431
    max_body_bytes: int = 1024 * 1024  # -> 413 (as soon as Content-Length/chunked data exceeds)
    header_timeout: float = 10.0  # headers not complete in time -> 408 then close (slowloris)
    body_timeout: float = 30.0  # body not complete -> 408 then close
    idle_timeout: float = 60.0  # keep-alive idle (also: a new connection sending nothing) -> close
    max_pipeline: int = 64  # requests queued per connection; beyond -> pause_reading until drained
    linger_timeout: float = 2.0  # after a closing response: drain input this long, then abort
    # open connections; beyond -> 503 and close (the cap is min(this, RLIMIT_NOFILE - fd_reserve))
    max_connections: int = DEFAULT_MAX_CONNECTIONS
    fd_reserve: int = DEFAULT_FD_RESERVE  # descriptors kept back for upstream connections
    write_buffer_bytes: int = 64 * 1024  # transport high-water mark -> pause_reading
    # output queued for a client that stopped reading; beyond -> the connection is aborted
    max_unread_response_bytes: int = 8 * 1024 * 1024
    # partial request bodies held across reads, all connections together; beyond -> 503
    max_buffered_body_bytes: int = 64 * 1024 * 1024


class HttpError(Exception):
    """An error with an HTTP status and a JSON error code.

    Used for protocol errors; a handler may raise it too to answer with that status
    (unless an ``on_error`` hook is installed, which then decides).
    """

    def __init__(self, status: int, code: str, message: str):
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message

    def response(self) -> Response:
        return error_response(self.status, self.code, self.message)


def error_response(status: int, code: str, message: str) -> Response:
    """The JSON error shape used by the server: ``{"error": {"code", "message"}}``."""
    return Response(status, _dumps({"error": {"code": code, "message": message}}))
