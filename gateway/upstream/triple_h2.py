"""Triple (gRPC over HTTP/2, cleartext or TLS with ALPN h2) clients on the gateway's own
event loop.

The alternatives to ``TripleClient`` (grpc.aio), behind the same ``unary()`` API and
selected with ``upstream.triple_client``:

* ``h2``: python-hyper's sans-IO ``h2`` state machine (gateway/upstream/h2_engines.py HyperEngine);
* ``lean``: the unary-client subset of HTTP/2 written for speed (LeanEngine; HPACK
  decoding still by the ``hpack`` library).

One connection per provider address, every call a stream on it, on a plain
``asyncio.Protocol``: no second thread, no hand-off between grpc core's completion queue
and the loop, one socket write per loop pass for all calls started in it.  ``start()`` even
sends without a coroutine when the connection is up, so the invoker can hand the HTTP
server a bare future as its Dubbo2 fast path does.  docs/benchmarks.md compares all three.

What the gRPC core otherwise gives and is done here:

* flow control: received DATA gives its window back (batched); a request larger than the
  peer's window is sent in pieces as WINDOW_UPDATEs come;
* ``SETTINGS_MAX_CONCURRENT_STREAMS``: calls beyond it wait for a stream to finish;
* GOAWAY: streams above ``last_stream_id`` never reached the application (``sent=False``,
  safe to retry elsewhere); the others may finish; new calls open a new connection;
* deadlines: ``grpc-timeout`` is sent and the stream is reset (CANCEL) when it passes;
* reconnecting: a failed connect makes calls to that address fail fast (UNAVAILABLE, not
  sent) for a backoff that starts at ``backoff_initial`` and doubles up to ``backoff_max``.

Not done: keepalive PINGs (a provider that vanishes without a FIN is noticed by the calls'
deadlines), compression (``grpc-accept-encoding: identity``).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterable, Mapping
from typing import Any

from tribridge.codecs.triple import Code, Status
from tribridge.security.tls import address_key
from tribridge.upstream.h2_engines import ENGINES, literal_block
from tribridge.upstream.triple_call import (
    APP_NAME,
    TripleCallError,
    TripleReply,
    TripleSettings,
)
from tribridge.upstream.triple_call import address as _address
from tribridge.upstream.triple_grpcio import TripleClient
from tribridge.upstream.triple_h2_conn import PREFIX_SMALL, H2Connection, encode_pairs


class H2TripleClient:
    """Connections to provider addresses, opened on first use and kept."""

    def __init__(self, settings: TripleSettings | None = None, engine: str = "lean") -> None:
        if engine not in ENGINES:
            raise ValueError(f"unknown HTTP/2 engine {engine!r}")
        self.settings = settings or TripleSettings()
        self.engine = engine
        #: keyed by (host, port, TLS profile name or "")
        self._conns: dict[tuple[str, int, str], H2Connection] = {}
        self._connecting: dict[tuple[str, int, str], asyncio.Future[H2Connection]] = {}
        self._down: dict[tuple[str, int, str], tuple[float, float, str]] = {}  # until, backoff, why
        self._heads: dict[tuple[Any, ...], Any] = {}
        self._grpc: TripleClient | None = None  # streaming calls (server reflection)

    #: ``(host, port)`` from a tuple, an ``Endpoint`` or ``"host:port"``
    address = staticmethod(_address)

    def open_stream(self, address: Any, path: str, timeout: float) -> Any:
        """A raw-bytes bidi stream (IDL server reflection): rare and streaming, so it goes
        through a grpc.aio channel of its own rather than this unary client."""
        if self._grpc is None:
            self._grpc = TripleClient(self.settings)
        return self._grpc.open_stream(address, path, timeout)

    def stream(self, address: Any, path: str, request: bytes | None, *args: Any, **kw: Any) -> Any:
        """Streaming calls go through the grpc.aio client too (``triple_stream``)."""
        if self._grpc is None:
            self._grpc = TripleClient(self.settings)
        return self._grpc.stream(address, path, request, *args, **kw)

    def _forget(self, conn: H2Connection) -> None:
        for k, c in list(self._conns.items()):
            if c is conn:
                del self._conns[k]

    def ready(self, host: str, port: int, tls: Any = None) -> bool:
        c = self._conns.get(address_key(host, port, tls))
        return c is not None and not c.closed

    async def _connection(self, host: str, port: int, tls: Any = None) -> H2Connection:
        key = address_key(host, port, tls)
        c = self._conns.get(key)
        if c is not None and not c.closed:
            return c
        pending = self._connecting.get(key)
        if pending is not None:
            return await asyncio.shield(pending)
        down = self._down.get(key)
        if down is not None and time.monotonic() < down[0]:
            raise TripleCallError(Status(Code.UNAVAILABLE, down[2]), sent=False)
        loop = asyncio.get_running_loop()
        fut: asyncio.Future[H2Connection] = loop.create_future()
        self._connecting[key] = fut
        authority = (f"[{host}]:{port}" if ":" in host else f"{host}:{port}").encode()
        tls_args: dict[str, Any] = {}
        scheme = b"http"
        if tls is not None:
            tls_args = {"ssl": tls.h2_context(), "server_hostname": tls.server_name or host}
            scheme = b"https"
        try:
            _, conn = await asyncio.wait_for(
                loop.create_connection(
                    lambda: H2Connection(self, authority, scheme), host, port, **tls_args
                ),
                self.settings.connect_timeout,
            )
            if tls is not None:
                alpn = conn.transport.get_extra_info("ssl_object").selected_alpn_protocol()
                if alpn != "h2":
                    conn.closed = True
                    conn.transport.abort()
                    raise OSError(f"TLS without ALPN h2 (the server chose {alpn!r})")
        except (OSError, TimeoutError) as e:
            s = self.settings
            backoff = min(down[1] * 2, s.backoff_max) if down else s.backoff_initial
            why = f"cannot connect to {host}:{port}: {e or type(e).__name__}"
            self._down[key] = (time.monotonic() + backoff, backoff, why)
            err = TripleCallError(Status(Code.UNAVAILABLE, why), sent=False)
            fut.set_exception(err)
            fut.exception()  # retrieved: waiters get it through shield
            raise err from None
        finally:
            self._connecting.pop(key, None)
        self._down.pop(key, None)
        self._conns[key] = conn
        fut.set_result(conn)
        return conn

    def _head(
        self,
        conn: H2Connection,
        path: str,
        headers: Iterable[tuple[str, str | bytes]] | Mapping[str, str | bytes],
        timeout: float | None,
        extra: Iterable[tuple[str, str | bytes]] = (),
    ) -> Any:
        """The request's header block (lean) or list (h2): the part from ``headers`` built
        once per distinct (address, path, timeout, headers); ``extra`` (per-call values such
        as a trace id) encoded each time and appended -- literal HPACK representations are
        independent of each other, so blocks concatenate."""
        items = tuple(headers.items() if isinstance(headers, Mapping) else headers)
        key = (conn.scheme, conn.authority, path, timeout, items)
        head = self._heads.get(key)
        if head is None:
            head = self._build_head(conn, path, items, timeout)
            if len(self._heads) > 4096:
                self._heads.clear()
            self._heads[key] = head
        if extra:
            more = encode_pairs(extra)
            return head + (literal_block(more) if conn.lean else more)
        return head

    def _build_head(
        self,
        conn: H2Connection,
        path: str,
        items: tuple[tuple[str, str | bytes], ...],
        timeout: float | None,
    ) -> Any:
        hs = [
            (b":method", b"POST"),
            (b":scheme", conn.scheme),
            (b":path", path.encode()),
            (b":authority", conn.authority),
            (b"content-type", b"application/grpc"),
            (b"te", b"trailers"),
            (b"user-agent", f"{APP_NAME}/triple-{self.engine}".encode()),
            (b"grpc-accept-encoding", b"identity"),
        ]
        if timeout is not None:
            hs.append((b"grpc-timeout", b"%dm" % max(int(timeout * 1000), 1)))
        hs += encode_pairs(items)
        return literal_block(hs) if conn.lean else hs

    @staticmethod
    def _body(payload: bytes) -> bytes:
        n = len(payload)
        return (PREFIX_SMALL[n] if n < 256 else b"\0" + n.to_bytes(4)) + payload

    def _check(self, payload: bytes) -> None:
        if len(payload) > self.settings.max_message:
            raise TripleCallError(
                Status(Code.RESOURCE_EXHAUSTED, f"request larger than {self.settings.max_message}"),
                sent=False,
            )

    def start(
        self,
        address: tuple[str, int] | Any,
        path: str,
        payload: bytes,
        headers: Iterable[tuple[str, str | bytes]] | Mapping[str, str | bytes] = (),
        timeout: float | None = None,
        extra: Iterable[tuple[str, str | bytes]] = (),
        tls: Any = None,
    ) -> asyncio.Future[TripleReply] | None:
        """``unary`` without a coroutine: the reply's future, or ``None`` when the call must
        wait (no connection yet, no free stream); raises ``TripleCallError`` as ``unary``.
        ``extra``: per-call headers sent after ``headers`` (not cached)."""
        host, port = self.address(address)
        conn = self._conns.get(address_key(host, port, tls))
        if conn is None or not conn.can_start():
            return None
        self._check(payload)
        head = self._head(conn, path, headers, timeout, extra)
        return conn.start(head, self._body(payload), timeout)

    async def unary(
        self,
        address: tuple[str, int] | Any,
        path: str,
        payload: bytes,
        headers: Iterable[tuple[str, str | bytes]] | Mapping[str, str | bytes] = (),
        timeout: float | None = None,
        tls: Any = None,
    ) -> TripleReply:
        """Same contract as ``TripleClient.unary`` (gateway/upstream/triple.py)."""
        host, port = self.address(address)
        self._check(payload)
        conn = await self._connection(host, port, tls)
        head = self._head(conn, path, headers, timeout)
        return await conn.call(head, self._body(payload), timeout)

    async def close(self) -> None:
        if self._grpc is not None:
            g, self._grpc = self._grpc, None
            await g.close()
        conns, self._conns = list(self._conns.values()), {}
        for c in conns:
            c.closed = True
            if c.transport is not None:
                c.engine.close()
                c._flush()
                c.transport.close()


__all__ = ["H2TripleClient"]
