"""A Triple (gRPC over cleartext HTTP/2) client on python-hyper's sans-IO ``h2``.

The alternative to ``TripleClient`` (grpc.aio), behind the same ``unary()`` API and
selected with ``upstream.triple_client: h2``.  One connection per provider address, every
call a stream on it, on a plain ``asyncio.Protocol`` in the gateway's own loop: no second
thread, no hand-off between grpc core's completion queue and the loop, one socket write per
call.  docs/benchmarks.md compares the two in the same run.

What the gRPC core otherwise gives and is done here:

* flow control: received DATA is acknowledged as it is consumed (h2 batches the
  WINDOW_UPDATEs); a request larger than the peer's window is sent in pieces as the window
  opens;
* ``SETTINGS_MAX_CONCURRENT_STREAMS``: calls beyond it wait for a stream to finish;
* GOAWAY: streams above ``last_stream_id`` never reached the application (``sent=False``,
  safe to retry elsewhere); the others may finish; new calls open a new connection;
* deadlines: ``grpc-timeout`` is sent and the stream is reset (CANCEL) when it passes;
* reconnecting: a failed connect makes calls to that address fail fast (UNAVAILABLE, not
  sent) for a backoff that starts at ``backoff_initial`` and doubles up to ``backoff_max``.

Not done: keepalive PINGs (a provider that vanishes without a FIN is noticed by the calls'
deadlines), compression (``grpc-accept-encoding: identity``), TLS.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import time
from collections import deque
from collections.abc import Iterable, Mapping
from typing import Any

import h2.config
import h2.connection
import h2.errors
import h2.events
import h2.exceptions
import h2.settings
from tribridge.codecs.triple import (
    Code,
    MessageDecoder,
    Status,
    TripleProtocolError,
    decode_grpc_message,
    encode_message,
)

from .triple import APP_NAME, TripleCallError, TripleReply, TripleSettings

_CONFIG = h2.config.H2Configuration(
    client_side=True,
    header_encoding=None,
    validate_outbound_headers=False,
    normalize_outbound_headers=False,
    validate_inbound_headers=False,
    normalize_inbound_headers=False,
)
#: gRPC's mapping of an HTTP status without grpc-status to a code (PROTOCOL-HTTP2 / http-grpc
#: status mapping)
_HTTP_TO_GRPC = {
    400: Code.INTERNAL,
    401: Code.UNAUTHENTICATED,
    403: Code.PERMISSION_DENIED,
    404: Code.UNIMPLEMENTED,
    429: Code.UNAVAILABLE,
    502: Code.UNAVAILABLE,
    503: Code.UNAVAILABLE,
    504: Code.UNAVAILABLE,
}
_RESET_TO_GRPC = {
    h2.errors.ErrorCodes.REFUSED_STREAM: Code.UNAVAILABLE,
    h2.errors.ErrorCodes.CANCEL: Code.CANCELLED,
    h2.errors.ErrorCodes.ENHANCE_YOUR_CALM: Code.RESOURCE_EXHAUSTED,
    h2.errors.ErrorCodes.INADEQUATE_SECURITY: Code.PERMISSION_DENIED,
}
#: what grpc.aio does not hand out as metadata either
_NOT_METADATA = frozenset({b"content-type", b"grpc-status", b"grpc-message", b"te"})
_WINDOW = 16 * 1024 * 1024  # receive window per stream and for the connection


def _text(v: bytes) -> str:
    return v.decode("latin-1")


def _metadata(headers: list[tuple[bytes, bytes]]) -> list[tuple[str, str | bytes]]:
    """Response headers/trailers as grpc.aio gives them: no pseudo headers, ``-bin``
    values base64-decoded."""
    out: list[tuple[str, str | bytes]] = []
    for k, v in headers:
        if k[:1] == b":" or k in _NOT_METADATA:
            continue
        name = k.decode("latin-1")
        if name.endswith("-bin"):
            try:
                out.append((name, base64.b64decode(v + b"=" * (-len(v) % 4))))
            except (binascii.Error, ValueError):
                continue
        else:
            out.append((name, v.decode("latin-1")))
    return out


class _Stream:
    __slots__ = ("body", "fut", "headers", "size", "timer", "trailers")

    def __init__(self, fut: asyncio.Future[TripleReply]) -> None:
        self.fut = fut
        self.headers: list[tuple[bytes, bytes]] | None = None
        self.trailers: list[tuple[bytes, bytes]] = []
        self.body: list[bytes] = []
        self.size = 0
        self.timer: asyncio.TimerHandle | None = None


class _Connection(asyncio.Protocol):
    """One HTTP/2 connection to a provider; calls are streams."""

    def __init__(self, client: H2TripleClient, authority: bytes) -> None:
        self.client = client
        self.authority = authority
        self.loop = asyncio.get_running_loop()
        self.h2 = h2.connection.H2Connection(_CONFIG)
        self.transport: asyncio.Transport | None = None
        self.streams: dict[int, _Stream] = {}
        self.closed = False  # lost, or GOAWAY received: no new streams
        self._slots: deque[asyncio.Future[None]] = deque()  # waiting for a stream slot
        self._window: deque[asyncio.Future[None]] = deque()  # waiting for flow control
        self._flush_soon = False

    # ---- asyncio.Protocol -------------------------------------------------------------------

    def connection_made(self, transport: Any) -> None:
        self.transport = transport
        h = self.h2
        h.local_settings = h2.settings.Settings(
            client=True,
            initial_values={
                h2.settings.SettingCodes.INITIAL_WINDOW_SIZE: _WINDOW,
                h2.settings.SettingCodes.MAX_HEADER_LIST_SIZE: 65536,
                h2.settings.SettingCodes.ENABLE_PUSH: 0,
            },
        )
        h.initiate_connection()
        h.increment_flow_control_window(_WINDOW)
        transport.write(h.data_to_send())

    def data_received(self, data: bytes) -> None:
        try:
            events = self.h2.receive_data(data)
        except h2.exceptions.ProtocolError as e:
            self._fail_all(Status(Code.INTERNAL, f"HTTP/2 protocol error from provider: {e}"))
            if self.transport is not None:
                self.transport.write(self.h2.data_to_send())
                self.transport.close()
            return
        for ev in events:
            t = type(ev)
            if t is h2.events.DataReceived:
                self._data(ev)
            elif t is h2.events.ResponseReceived:
                st = self.streams.get(ev.stream_id)
                if st is not None:
                    st.headers = ev.headers
            elif t is h2.events.TrailersReceived:
                st = self.streams.get(ev.stream_id)
                if st is not None:
                    st.trailers = ev.headers
            elif t is h2.events.StreamEnded:
                self._ended(ev.stream_id)
            elif t is h2.events.StreamReset:
                self._reset(ev)
            elif t is h2.events.ConnectionTerminated:
                self._goaway(ev)
            elif t in (h2.events.WindowUpdated, h2.events.RemoteSettingsChanged):
                self._wake()
        out = self.h2.data_to_send()
        if out and self.transport is not None:
            self.transport.write(out)

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        self.transport = None
        self.client._forget(self)
        self._fail_all(Status(Code.UNAVAILABLE, f"connection to provider lost ({exc or 'EOF'})"))

    # ---- events -------------------------------------------------------------------------

    def _data(self, ev: h2.events.DataReceived) -> None:
        if ev.flow_controlled_length:
            self.h2.acknowledge_received_data(ev.flow_controlled_length, ev.stream_id)
        st = self.streams.get(ev.stream_id)
        if st is None:
            return
        st.size += len(ev.data)
        if st.size > self.client.settings.max_message + 5:
            self._finish(
                ev.stream_id,
                error=Status(
                    Code.RESOURCE_EXHAUSTED,
                    f"response larger than the limit of {self.client.settings.max_message} bytes",
                ),
                reset=True,
            )
            return
        st.body.append(ev.data)

    def _ended(self, sid: int) -> None:
        st = self.streams.get(sid)
        if st is None:
            return
        try:
            reply = self._reply(st)
        except TripleCallError as e:
            self._finish(sid, exc=e)
            return
        except TripleProtocolError as e:
            self._finish(sid, error=Status(Code.INTERNAL, str(e)))
            return
        self._finish(sid, reply=reply)

    def _reply(self, st: _Stream) -> TripleReply:
        headers = st.headers or []
        status_line = None
        ctype = b""
        grpc_status = grpc_message = None
        exc_code = b""
        for k, v in headers:
            if k == b":status":
                status_line = v
            elif k == b"content-type":
                ctype = v
            elif k == b"grpc-status":
                grpc_status = v
            elif k == b"grpc-message":
                grpc_message = v
            elif k == b"tri-exception-code":
                exc_code = v
        for k, v in st.trailers:
            if k == b"grpc-status":
                grpc_status = v
            elif k == b"grpc-message":
                grpc_message = v
            elif k == b"tri-exception-code":
                exc_code = exc_code or v
        md_headers = _metadata(headers)
        md_trailers = _metadata(st.trailers)
        if status_line != b"200" or (
            grpc_status is None and not ctype.startswith(b"application/grpc")
        ):
            http = int(status_line) if status_line and status_line.isdigit() else 0
            code = _HTTP_TO_GRPC.get(http, Code.UNKNOWN)
            raise TripleCallError(
                Status(code, f"HTTP {http} from provider, content-type {_text(ctype)!r}"),
                trailers=md_trailers,
            )
        if grpc_status is None:
            raise TripleProtocolError("response without grpc-status")
        try:
            code = int(grpc_status)
        except ValueError:
            raise TripleProtocolError(f"bad grpc-status {_text(grpc_status)!r}") from None
        if code != 0:
            msg = decode_grpc_message(_text(grpc_message)) if grpc_message else ""
            raise TripleCallError(Status(code, msg), trailers=md_trailers)
        dec = MessageDecoder(self.client.settings.max_message)
        msgs = dec.feed(b"".join(st.body)) if st.body else []
        dec.close()
        if len(msgs) != 1:
            raise TripleProtocolError(f"unary response with {len(msgs)} messages")
        exc = 0
        if exc_code:
            try:
                exc = int(exc_code)
            except ValueError:
                raise TripleProtocolError(f"bad tri-exception-code {exc_code!r}") from None
        return TripleReply(msgs[0], md_headers, md_trailers, exc)

    def _reset(self, ev: h2.events.StreamReset) -> None:
        code = _RESET_TO_GRPC.get(ev.error_code, Code.INTERNAL)
        sent = ev.error_code != h2.errors.ErrorCodes.REFUSED_STREAM
        self._finish(
            ev.stream_id,
            exc=TripleCallError(
                Status(code, f"stream reset by provider ({ev.error_code!s})"), sent=sent
            ),
        )

    def _goaway(self, ev: h2.events.ConnectionTerminated) -> None:
        self.closed = True
        self.client._forget(self)
        last = ev.last_stream_id if ev.last_stream_id is not None else 0
        for sid in [s for s in self.streams if s > last]:
            self._finish(
                sid,
                exc=TripleCallError(
                    Status(Code.UNAVAILABLE, "provider is going away (GOAWAY)"), sent=False
                ),
            )
        self._wake()
        if not self.streams and self.transport is not None:
            self.transport.close()

    # ---- completion ----------------------------------------------------------------------

    def _finish(
        self,
        sid: int,
        reply: TripleReply | None = None,
        exc: TripleCallError | None = None,
        error: Status | None = None,
        reset: bool = False,
    ) -> None:
        st = self.streams.pop(sid, None)
        if st is None:
            return
        if st.timer is not None:
            st.timer.cancel()
        if reset and not self.closed:
            try:
                self.h2.reset_stream(sid, h2.errors.ErrorCodes.CANCEL)
            except h2.exceptions.H2Error:
                pass
            if self.transport is not None:
                self.transport.write(self.h2.data_to_send())
        if not st.fut.done():
            if reply is not None:
                st.fut.set_result(reply)
            else:
                st.fut.set_exception(exc or TripleCallError(error or Status(Code.INTERNAL)))
        if self._slots:
            self._wake()
        if self.closed and not self.streams and self.transport is not None:
            self.transport.close()

    def _fail_all(self, status: Status) -> None:
        for sid in list(self.streams):
            self._finish(sid, exc=TripleCallError(status, sent=True))
        self._wake()

    def _timeout(self, sid: int) -> None:
        st = self.streams.get(sid)
        if st is not None:
            st.timer = None
            self._finish(sid, error=Status(Code.DEADLINE_EXCEEDED, "deadline exceeded"), reset=True)

    def _wake(self) -> None:
        for q in (self._slots, self._window):
            while q:
                f = q.popleft()
                if not f.done():
                    f.set_result(None)

    # ---- calls ---------------------------------------------------------------------------

    async def call(
        self, headers: list[tuple[bytes, bytes]], body: bytes, timeout: float | None
    ) -> TripleReply:
        h = self.h2
        while h.open_outbound_streams >= h.remote_settings.max_concurrent_streams:
            if self.closed:
                raise TripleCallError(Status(Code.UNAVAILABLE, "connection closed"), sent=False)
            f = self.loop.create_future()
            self._slots.append(f)
            await f
        if self.closed or self.transport is None:
            raise TripleCallError(Status(Code.UNAVAILABLE, "connection closed"), sent=False)
        sid = h.get_next_available_stream_id()
        fut: asyncio.Future[TripleReply] = self.loop.create_future()
        st = self.streams[sid] = _Stream(fut)
        if timeout is not None:
            st.timer = self.loop.call_later(timeout, self._timeout, sid)
        h.send_headers(sid, headers)
        if len(body) <= h.local_flow_control_window(sid) and len(body) <= h.max_outbound_frame_size:
            h.send_data(sid, body, end_stream=True)
            if not self._flush_soon:  # one write for every call started in this loop pass
                self._flush_soon = True
                self.loop.call_soon(self._flush)
        else:
            self.transport.write(h.data_to_send())
            await self._send_slowly(sid, body)
        try:
            return await fut
        except asyncio.CancelledError:
            self._finish(sid, error=Status(Code.CANCELLED, "cancelled"), reset=True)
            raise

    def _flush(self) -> None:
        self._flush_soon = False
        if self.transport is not None:
            out = self.h2.data_to_send()
            if out:
                self.transport.write(out)

    async def _send_slowly(self, sid: int, body: bytes) -> None:
        """A body larger than the window or a frame: pieces as the window opens."""
        h = self.h2
        view = memoryview(body)
        while view and sid in self.streams and not self.closed:
            n = min(h.local_flow_control_window(sid), h.max_outbound_frame_size, len(view))
            if n <= 0:
                f = self.loop.create_future()
                self._window.append(f)
                await f
                continue
            h.send_data(sid, bytes(view[:n]), end_stream=n == len(view))
            view = view[n:]
            if self.transport is not None:
                self.transport.write(h.data_to_send())


class H2TripleClient:
    """Connections to provider addresses, opened on first use and kept."""

    def __init__(self, settings: TripleSettings | None = None) -> None:
        self.settings = settings or TripleSettings()
        self._conns: dict[tuple[str, int], _Connection] = {}
        self._connecting: dict[tuple[str, int], asyncio.Future[_Connection]] = {}
        self._down: dict[tuple[str, int], tuple[float, float, str]] = {}  # until, backoff, why
        self._heads: dict[tuple[bytes, str], list[tuple[bytes, bytes]]] = {}

    def _forget(self, conn: _Connection) -> None:
        for k, c in list(self._conns.items()):
            if c is conn:
                del self._conns[k]

    def ready(self, host: str, port: int) -> bool:
        c = self._conns.get((host, port))
        return c is not None and not c.closed

    async def _connection(self, host: str, port: int) -> _Connection:
        key = (host, port)
        c = self._conns.get(key)
        if c is not None and not c.closed:
            return c
        pending = self._connecting.get(key)
        if pending is not None:
            return await asyncio.shield(pending)
        down = self._down.get(key)
        now = time.monotonic()
        if down is not None and now < down[0]:
            raise TripleCallError(Status(Code.UNAVAILABLE, down[2]), sent=False)
        loop = asyncio.get_running_loop()
        fut: asyncio.Future[_Connection] = loop.create_future()
        self._connecting[key] = fut
        authority = (f"[{host}]:{port}" if ":" in host else f"{host}:{port}").encode()
        try:
            _, conn = await asyncio.wait_for(
                loop.create_connection(lambda: _Connection(self, authority), host, port),
                self.settings.connect_timeout,
            )
        except (OSError, TimeoutError) as e:
            backoff = (
                min(down[1] * 2, self.settings.backoff_max)
                if down
                else (self.settings.backoff_initial)
            )
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

    def _head(self, conn: _Connection, path: str) -> list[tuple[bytes, bytes]]:
        key = (conn.authority, path)
        head = self._heads.get(key)
        if head is None:
            if len(self._heads) > 16384:
                self._heads.clear()
            head = self._heads[key] = [
                (b":method", b"POST"),
                (b":scheme", b"http"),
                (b":path", path.encode()),
                (b":authority", conn.authority),
                (b"content-type", b"application/grpc"),
                (b"te", b"trailers"),
                (b"user-agent", f"{APP_NAME}/triple-h2".encode()),
                (b"grpc-accept-encoding", b"identity"),
            ]
        return head

    async def unary(
        self,
        address: tuple[str, int] | Any,
        path: str,
        payload: bytes,
        headers: Iterable[tuple[str, str | bytes]] | Mapping[str, str | bytes] = (),
        timeout: float | None = None,
    ) -> TripleReply:
        """Same contract as ``TripleClient.unary`` (gateway/triple.py)."""
        host, port = (address.host, address.port) if hasattr(address, "host") else address
        conn = await self._connection(host, port)
        hs = list(self._head(conn, path))
        if timeout is not None:
            hs.append((b"grpc-timeout", b"%dm" % max(int(timeout * 1000), 1)))
        items = headers.items() if isinstance(headers, Mapping) else headers
        for k, v in items:
            if isinstance(v, bytes):
                hs.append((k.encode(), base64.b64encode(v).rstrip(b"=")))
            else:
                hs.append((k.encode(), v.encode("latin-1", "replace")))
        if len(payload) > self.settings.max_message:
            raise TripleCallError(
                Status(Code.RESOURCE_EXHAUSTED, f"request larger than {self.settings.max_message}"),
                sent=False,
            )
        return await conn.call(hs, encode_message(payload), timeout)

    async def close(self) -> None:
        conns, self._conns = list(self._conns.values()), {}
        for c in conns:
            c.closed = True
            if c.transport is not None:
                try:
                    c.h2.close_connection()
                    c.transport.write(c.h2.data_to_send())
                except h2.exceptions.H2Error:
                    pass
                c.transport.close()


__all__ = ["H2TripleClient"]
