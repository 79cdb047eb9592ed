"""Triple's HTTP/1.1 unary mode (Dubbo 3.3 "Triple Rest" basic dialect,
dubbo-node's Connect-style unary): ``POST /{service}/{method}`` with a JSON body, answered
by a JSON body, on keep-alive HTTP/1.1 connections.

A small client on ``asyncio.Protocol`` + httptools' response parser: per provider address a
pool of idle connections, one request in flight per connection (HTTP/1.1 has no
multiplexing), at most ``max_connections`` per address (callers beyond wait for one).
A connection the peer closes, or one whose response said ``Connection: close``, is dropped;
a request that fails on a *reused* connection before any response byte came is reported as
not sent (the peer may have closed it while idle), so the caller may retry it.
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import httptools
from tribridge.codecs.triple import Code, Status
from tribridge.upstream.triple_call import APP_NAME, TripleCallError, TripleSettings

#: response headers that are HTTP's own, not provider attachments
_HTTP_HEADERS = frozenset(
    {
        "content-type",
        "content-length",
        "date",
        "connection",
        "keep-alive",
        "transfer-encoding",
        "server",
        "vary",
        "content-encoding",
        "accept-encoding",
    }
)


@dataclass(slots=True)
class Http1Reply:
    status: int
    body: bytes
    headers: list[tuple[str, str]] = field(default_factory=list)

    def attachments(self) -> dict[str, str]:
        """Non-HTTP response headers; ``trailer-<name>`` (how Connect-style unary carries
        trailers) becomes ``<name>``."""
        out: dict[str, str] = {}
        for k, v in self.headers:
            if k in _HTTP_HEADERS:
                continue
            out[k[8:] if k.startswith("trailer-") else k] = v
        return out


class _Conn(asyncio.Protocol):
    def __init__(self, pool: _Pool) -> None:
        self.pool = pool
        self.transport: asyncio.Transport | None = None
        self.parser = httptools.HttpResponseParser(self)
        self.fut: asyncio.Future[Http1Reply] | None = None
        self.headers: list[tuple[str, str]] = []
        self.body: list[bytes] = []
        self.size = 0
        self.got_bytes = False
        self.reused = False
        self.keep = True
        self.closed = False
        self.counted = True  # still in the pool's count

    # ---- asyncio.Protocol ---------------------------------------------------------------

    def connection_made(self, transport: Any) -> None:
        self.transport = transport

    def data_received(self, data: bytes) -> None:
        if self.fut is None:  # nothing asked: a peer talking out of turn
            self._close()
            return
        self.got_bytes = True
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserError as e:
            self._fail(Status(Code.INTERNAL, f"bad HTTP/1.1 response from provider: {e}"))
            self._close()

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        self.transport = None
        self.pool.forget(self)
        if self.fut is not None and not self.fut.done():
            # a reused connection closed before answering: the peer probably closed it while
            # idle and never read the request
            sent = self.got_bytes or not self.reused
            self._fail(
                Status(Code.UNAVAILABLE, f"connection to provider lost ({exc or 'EOF'})"),
                sent=sent,
            )

    # ---- httptools callbacks --------------------------------------------------------------

    def on_header(self, name: bytes, value: bytes) -> None:
        self.headers.append((name.decode("latin-1").lower(), value.decode("latin-1")))

    def on_body(self, body: bytes) -> None:
        self.size += len(body)
        if self.size > self.pool.max_body:
            self._fail(
                Status(Code.RESOURCE_EXHAUSTED, f"response larger than {self.pool.max_body} bytes")
            )
            self._close()
            return
        self.body.append(body)

    def on_message_complete(self) -> None:
        fut, self.fut = self.fut, None
        self.keep = self.parser.should_keep_alive()
        reply = Http1Reply(self.parser.get_status_code(), b"".join(self.body), self.headers)
        self.headers, self.body, self.size = [], [], 0
        if fut is not None and not fut.done():
            fut.set_result(reply)

    # ---- use ----------------------------------------------------------------------------

    def send(self, data: bytes) -> asyncio.Future[Http1Reply]:
        assert self.transport is not None
        self.fut = self.pool.loop.create_future()
        self.got_bytes = False
        self.transport.write(data)
        return self.fut

    def _fail(self, status: Status, sent: bool = True) -> None:
        fut, self.fut = self.fut, None
        if fut is not None and not fut.done():
            fut.set_exception(TripleCallError(status, sent=sent))

    def _close(self) -> None:
        self.closed = True
        if self.transport is not None:
            self.transport.close()


class _Pool:
    def __init__(self, client: Http1TripleClient, host: str, port: int) -> None:
        self.client = client
        self.host, self.port = host, port
        self.loop = asyncio.get_running_loop()
        self.idle: deque[_Conn] = deque()
        self.count = 0  # open or opening
        self.opened = 0  # connections ever opened (for tests and /status)
        self.waiters: deque[asyncio.Future[None]] = deque()
        self.max_body = client.settings.max_message

    def forget(self, conn: _Conn) -> None:
        if conn in self.idle:
            self.idle.remove(conn)
        if conn.counted:
            conn.counted = False
            self.count -= 1
            self._wake()

    def _wake(self) -> None:
        while self.waiters:
            f = self.waiters.popleft()
            if not f.done():
                f.set_result(None)
                return

    async def acquire(self, timeout: float) -> _Conn:
        deadline = time.monotonic() + timeout
        while True:
            while self.idle:
                c = self.idle.pop()
                if not c.closed and c.transport is not None:
                    c.reused = True
                    return c
            if self.count < self.client.max_connections:
                self.count += 1
                try:
                    _, conn = await asyncio.wait_for(
                        self.loop.create_connection(lambda: _Conn(self), self.host, self.port),
                        min(
                            self.client.settings.connect_timeout,
                            max(deadline - time.monotonic(), 0.001),
                        ),
                    )
                except (OSError, TimeoutError) as e:
                    self.count -= 1
                    self._wake()
                    raise TripleCallError(
                        Status(Code.UNAVAILABLE, f"cannot connect to {self.host}:{self.port}: {e}"),
                        sent=False,
                    ) from None
                self.opened += 1
                return conn
            f = self.loop.create_future()
            self.waiters.append(f)
            try:
                await asyncio.wait_for(f, max(deadline - time.monotonic(), 0.001))
            except TimeoutError:
                raise TripleCallError(
                    Status(Code.DEADLINE_EXCEEDED, "no free HTTP/1.1 connection in time"),
                    sent=False,
                ) from None

    def release(self, conn: _Conn) -> None:
        if conn.closed or not conn.keep:
            conn._close()
            return
        self.idle.append(conn)
        self._wake()


class Http1TripleClient:
    """Keep-alive HTTP/1.1 connections to provider addresses."""

    def __init__(self, settings: TripleSettings | None = None, max_connections: int = 32) -> None:
        self.settings = settings or TripleSettings()
        self.max_connections = max_connections
        self._pools: dict[tuple[str, int], _Pool] = {}
        self._heads: dict[tuple[Any, ...], bytes] = {}

    def pool(self, host: str, port: int) -> _Pool:
        p = self._pools.get((host, port))
        if p is None:
            p = self._pools[(host, port)] = _Pool(self, host, port)
        return p

    def _head(
        self, host: str, port: int, path: str, items: tuple[tuple[str, str | bytes], ...]
    ) -> bytes:
        key = (host, port, path, items)
        head = self._heads.get(key)
        if head is None:
            authority = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
            lines = [
                f"POST {path} HTTP/1.1",
                f"Host: {authority}",
                "Content-Type: application/json",
                "Accept: application/json",
                "TRI-Protocol-Version: 1.0.0",
                f"User-Agent: {APP_NAME}/triple-http1",
            ]
            for k, v in items:
                if isinstance(v, bytes):
                    continue  # binary attachments have no HTTP/1.1 form here
                if "\r" in v or "\n" in v or "\r" in k or "\n" in k:
                    continue
                lines.append(f"{k}: {v}")
            head = ("\r\n".join(lines) + "\r\nContent-Length: ").encode("latin-1", "replace")
            if len(self._heads) > 4096:
                self._heads.clear()
            self._heads[key] = head
        return head

    async def unary(
        self,
        address: tuple[str, int] | Any,
        path: str,
        body: bytes,
        headers: Iterable[tuple[str, str | bytes]] | Mapping[str, str | bytes] = (),
        timeout: float | None = None,
    ) -> Http1Reply:
        """One request; any HTTP status is a reply (the caller maps errors).  Raises
        ``TripleCallError`` for transport failures (UNAVAILABLE / DEADLINE_EXCEEDED)."""
        host, port = (address.host, address.port) if hasattr(address, "host") else address
        items = tuple(headers.items() if isinstance(headers, Mapping) else headers)
        if timeout is not None:
            items += (("tri-service-timeout", str(max(int(timeout * 1000), 1))),)
        request = self._head(host, port, path, items) + b"%d\r\n\r\n" % len(body) + body
        pool = self.pool(host, port)
        wait = timeout if timeout is not None else 30.0
        deadline = time.monotonic() + wait
        for attempt in range(2):
            conn = await pool.acquire(max(deadline - time.monotonic(), 0.001))
            fut = conn.send(request)
            try:
                reply = await asyncio.wait_for(
                    asyncio.shield(fut), max(deadline - time.monotonic(), 0.001)
                )
            except TimeoutError:
                conn._close()
                raise TripleCallError(Status(Code.DEADLINE_EXCEEDED, "deadline exceeded")) from None
            except TripleCallError as e:
                conn._close()
                if not e.sent and conn.reused and attempt == 0:
                    continue  # a stale keep-alive connection: once more on a fresh one
                raise
            except BaseException:
                conn._close()
                raise
            pool.release(conn)
            return reply
        raise AssertionError("unreachable")

    async def close(self) -> None:
        pools, self._pools = list(self._pools.values()), {}
        for p in pools:
            for c in list(p.idle):
                c._close()


__all__ = ["Http1Reply", "Http1TripleClient"]
