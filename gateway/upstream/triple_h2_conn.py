"""One HTTP/2 connection to a Triple provider for ``triple_h2.H2TripleClient``: every call a
stream on it, driven by a sans-IO engine (gateway/upstream/h2_engines.py) on a plain
``asyncio.Protocol``.  Flow control, stream slots, REFUSED_STREAM retries, GOAWAY, deadlines
and the reply's status are handled here; the client owns addresses, connects and headers.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
from collections import deque
from collections.abc import Iterable
from typing import Any

from tribridge.codecs.triple import (
    Code,
    MessageDecoder,
    Status,
    TripleProtocolError,
    decode_grpc_message,
)
from tribridge.statuses import http2_to_grpc, reset_to_grpc
from tribridge.upstream.h2_engines import (
    ENGINES,
    REFUSED_STREAM,
    H2ProtocolError,
    LeanEngine,
)
from tribridge.upstream.triple_call import TripleCallError, TripleReply

#: REFUSED_STREAM answers after which a call fails (UNAVAILABLE, not sent)
_MAX_REFUSED = 8
#: what grpc.aio does not hand out as metadata either
_NOT_METADATA = frozenset({b"content-type", b"grpc-status", b"grpc-message", b"te"})
PREFIX_SMALL = [bytes((0, 0, 0, 0, n)) for n in range(256)]


def encode_pairs(items: Iterable[tuple[str, str | bytes]]) -> list[tuple[bytes, bytes]]:
    """Metadata as header bytes: ``-bin`` values (bytes) in unpadded base64."""
    out = []
    for k, v in items:
        if isinstance(v, bytes):
            out.append((k.encode(), base64.b64encode(v).rstrip(b"=")))
        else:
            out.append((k.encode(), v.encode("latin-1", "replace")))
    return out


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
    __slots__ = (
        "body",
        "fut",
        "head",
        "headers",
        "refused",
        "request",
        "sid",
        "size",
        "timer",
        "trailers",
    )

    def __init__(self, fut: asyncio.Future[TripleReply], head: Any, request: bytes) -> None:
        self.fut = fut
        self.head = head
        self.request = request
        self.sid = 0
        self.refused = 0  # times the server refused the stream (REFUSED_STREAM)
        self.headers: list[tuple[bytes, bytes]] | None = None
        self.trailers: list[tuple[bytes, bytes]] = []
        self.body: list[bytes] = []
        self.size = 0
        self.timer: asyncio.TimerHandle | None = None


class H2Connection(asyncio.Protocol):
    """One HTTP/2 connection to a provider; calls are streams (the engine's ``Sink``)."""

    def __init__(self, client: Any, authority: bytes, scheme: bytes = b"http") -> None:
        self.client = client
        self.authority = authority
        self.scheme = scheme
        self.max_message = client.settings.max_message
        self.loop = asyncio.get_running_loop()
        self.engine: Any = ENGINES[client.engine](self)
        self.lean = isinstance(self.engine, LeanEngine)
        self.transport: asyncio.Transport | None = None
        self.streams: dict[int, _Stream] = {}
        self.closed = False  # lost, or GOAWAY received: no new streams
        self._slots: deque[asyncio.Future[None]] = deque()  # waiting for a stream slot
        self._window: deque[asyncio.Future[None]] = deque()  # waiting for flow control
        self._flush_soon = False
        self._requeue: deque[_Stream] = deque()  # refused by the server, to be re-sent
        self._md_cache: dict[int, tuple[list[tuple[bytes, bytes]], list[Any]]] = {}
        self.write_paused = False  # past the transport's high-water mark
        #: request body bytes waiting for flow-control window (held by ``_send_slowly``)
        self.unsent = 0

    # ---- asyncio.Protocol -------------------------------------------------------------------

    def connection_made(self, transport: Any) -> None:
        self.transport = transport
        transport.set_write_buffer_limits(self.client.settings.write_buffer_bytes)
        self.engine.start()
        transport.write(self.engine.take())

    def data_received(self, data: bytes) -> None:
        try:
            self.engine.feed(data)
        except H2ProtocolError as e:
            self.closed = True
            self._fail_all(Status(Code.INTERNAL, f"HTTP/2 protocol error from provider: {e}"))
            if self.transport is not None:
                self.transport.close()
            return
        self._flush()

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        self.transport = None
        self.client._forget(self)
        self._fail_all(Status(Code.UNAVAILABLE, f"connection to provider lost ({exc or 'EOF'})"))

    def pause_writing(self) -> None:
        self.write_paused = True

    def resume_writing(self) -> None:
        self.write_paused = False

    def _flush(self) -> None:
        self._flush_soon = False
        if self.transport is not None:
            out = self.engine.take()
            if out:
                self.transport.write(out)

    def _flush_later(self) -> None:
        if not self._flush_soon:  # one write for every call started in this loop pass
            self._flush_soon = True
            self.loop.call_soon(self._flush)

    # ---- Sink ----------------------------------------------------------------------------

    def on_headers(self, sid: int, headers: list[tuple[bytes, bytes]]) -> None:
        st = self.streams.get(sid)
        if st is not None:
            if st.headers is None:
                st.headers = headers
            else:
                st.trailers = headers

    def on_data(self, sid: int, data: bytes) -> None:
        st = self.streams.get(sid)
        if st is None:
            return
        st.size += len(data)
        if st.size > self.max_message + 5:
            self._finish(
                sid,
                error=Status(
                    Code.RESOURCE_EXHAUSTED,
                    f"response larger than the limit of {self.max_message} bytes",
                ),
                reset=True,
            )
            return
        st.body.append(data)

    def on_end(self, sid: int) -> None:
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

    def on_reset(self, sid: int, code: int) -> None:
        st = self.streams.get(sid)
        if code == REFUSED_STREAM and st is not None and st.refused < _MAX_REFUSED:
            # not processed (RFC 9113 §8.7): gRPC's transparent retry, on this connection
            # once a stream slot is free (grpc core servers refuse a stream they still count
            # as open even after the client saw it end)
            del self.streams[sid]
            st.refused += 1
            st.headers, st.trailers, st.body, st.size = None, [], [], 0
            self._requeue.append(st)
            self.loop.call_later(0.002 * st.refused, self._drain)
            return
        self._finish(
            sid,
            exc=TripleCallError(
                Status(reset_to_grpc(code), f"stream reset by provider ({code})"),
                sent=code != REFUSED_STREAM,
            ),
        )

    def on_goaway(self, last_sid: int, code: int) -> None:
        self.closed = True
        self.client._forget(self)
        for sid in [s for s in self.streams if s > last_sid]:
            self._finish(
                sid,
                exc=TripleCallError(
                    Status(Code.UNAVAILABLE, f"provider is going away (GOAWAY {code})"),
                    sent=False,
                ),
            )
        while self._requeue:
            self._abandon(
                self._requeue.popleft(),
                TripleCallError(Status(Code.UNAVAILABLE, "provider is going away"), sent=False),
            )
        self.on_window()
        if not self.streams and self.transport is not None:
            self.transport.close()

    def on_window(self) -> None:
        for q in (self._slots, self._window):
            while q:
                f = q.popleft()
                if not f.done():
                    f.set_result(None)

    # ---- completion ----------------------------------------------------------------------

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
        md_trailers = self._md(st.trailers) if st.trailers else []
        if status_line != b"200" or (
            grpc_status is None and not ctype.startswith(b"application/grpc")
        ):
            http = int(status_line) if status_line and status_line.isdigit() else 0
            code = http2_to_grpc(http)
            raise TripleCallError(
                Status(code, f"HTTP {http} from provider, content-type {_text(ctype)!r}"),
                trailers=md_trailers,
            )
        if grpc_status is None:
            raise TripleProtocolError("response without grpc-status")
        if grpc_status != b"0":
            try:
                code = int(grpc_status)
            except ValueError:
                raise TripleProtocolError(f"bad grpc-status {_text(grpc_status)!r}") from None
            msg = decode_grpc_message(_text(grpc_message)) if grpc_message else ""
            raise TripleCallError(Status(code, msg), trailers=md_trailers)
        body = st.body[0] if len(st.body) == 1 else b"".join(st.body)
        if len(body) >= 5 and body[0] == 0 and int.from_bytes(body[1:5]) == len(body) - 5:
            data = body[5:]  # the common case: exactly one uncompressed message
        else:
            dec = MessageDecoder(self.max_message)
            msgs = dec.feed(body) if body else []
            dec.close()
            if len(msgs) != 1:
                raise TripleProtocolError(f"unary response with {len(msgs)} messages")
            data = msgs[0]
        exc = 0
        if exc_code:
            try:
                exc = int(exc_code)
            except ValueError:
                raise TripleProtocolError(f"bad tri-exception-code {exc_code!r}") from None
        return TripleReply(data, self._md(headers), md_trailers, exc)

    def _md(self, headers: list[tuple[bytes, bytes]]) -> list[tuple[str, str | bytes]]:
        """``_metadata``, remembered for the header lists the lean engine's block cache
        hands out again and again (same list object)."""
        hit = self._md_cache.get(id(headers))
        if hit is not None and hit[0] is headers:
            return list(hit[1])
        md = _metadata(headers)
        if len(self._md_cache) > 64:
            self._md_cache.clear()
        self._md_cache[id(headers)] = (headers, md)
        return list(md)

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
        if reset and self.transport is not None:
            self.engine.reset(sid)
            self._flush_later()
        if not st.fut.done():
            if reply is not None:
                st.fut.set_result(reply)
            else:
                st.fut.set_exception(exc or TripleCallError(error or Status(Code.INTERNAL)))
        if self._requeue:
            self._drain()
        if self._slots or self._window:
            # a sender parked for window may belong to this stream: let it drop the body
            self.on_window()
        if self.closed and not self.streams and self.transport is not None:
            self.transport.close()

    def _fail_all(self, status: Status) -> None:
        for sid in list(self.streams):
            self._finish(sid, exc=TripleCallError(status, sent=True))
        while self._requeue:  # refused earlier: never processed
            st = self._requeue.popleft()
            self._abandon(st, TripleCallError(status, sent=False))
        self.on_window()

    def _abandon(self, st: _Stream, exc: TripleCallError) -> None:
        """A call waiting to be re-sent ends without a stream."""
        if st.timer is not None:
            st.timer.cancel()
        if not st.fut.done():
            st.fut.set_exception(exc)

    def _timeout(self, st: _Stream) -> None:
        st.timer = None
        if self.streams.get(st.sid) is st:
            self._finish(
                st.sid, error=Status(Code.DEADLINE_EXCEEDED, "deadline exceeded"), reset=True
            )
        elif st in self._requeue:
            self._requeue.remove(st)
            self._abandon(st, TripleCallError(Status(Code.DEADLINE_EXCEEDED, "deadline exceeded")))

    def cancel(self, fut: asyncio.Future[TripleReply]) -> None:
        """The caller gave up: reset the call's stream (or drop it from the retry queue)."""
        for sid, st in list(self.streams.items()):
            if st.fut is fut:
                self._finish(sid, error=Status(Code.CANCELLED, "cancelled"), reset=True)
                return

    def _drain(self) -> None:
        """Re-send refused calls while stream slots are free."""
        while self._requeue and self.can_start():
            st = self._requeue.popleft()
            if not st.fut.done():
                self._open(st)
        if self._requeue and self.closed:
            self._fail_all(Status(Code.UNAVAILABLE, "connection closed"))

    # ---- calls ---------------------------------------------------------------------------

    def start(self, head: Any, body: bytes, timeout: float | None) -> asyncio.Future[TripleReply]:
        """Open the stream and queue the whole request; the caller checked ``can_start``.
        Raises (not sent) when the provider has stopped reading and ``max_queued_bytes``
        wait for it: flow control bounds the DATA on the wire, not the bodies of new streams
        waiting for window (nor their HEADERS)."""
        t = self.transport
        limit = self.client.settings.max_queued_bytes
        queued = self.unsent + (t.get_write_buffer_size() if self.write_paused and t else 0)
        if queued > limit:
            raise TripleCallError(
                Status(Code.UNAVAILABLE, f"provider is not reading: over {limit} bytes queued"),
                sent=False,
            )
        fut: asyncio.Future[TripleReply] = self.loop.create_future()
        st = _Stream(fut, head, body)
        if timeout is not None:
            st.timer = self.loop.call_later(timeout, self._timeout, st)
        self._open(st)
        return fut

    def _open(self, st: _Stream) -> None:
        eng = self.engine
        sid = st.sid = eng.open_stream(st.head)
        self.streams[sid] = st
        body = st.request
        if len(body) <= eng.send_window(sid) and len(body) <= eng.max_frame:
            eng.send_data(sid, body, True)
        else:
            self.unsent += len(body)
            self.loop.create_task(self._send_slowly(sid, body))
        self._flush_later()

    def can_start(self) -> bool:
        return not self.closed and self.transport is not None and self.engine.can_open()

    async def call(self, head: Any, body: bytes, timeout: float | None) -> TripleReply:
        while not self.closed and not self.engine.can_open():
            f = self.loop.create_future()
            self._slots.append(f)
            await f
        if self.closed or self.transport is None:
            raise TripleCallError(Status(Code.UNAVAILABLE, "connection closed"), sent=False)
        fut = self.start(head, body, timeout)
        try:
            return await fut
        except asyncio.CancelledError:
            self.cancel(fut)
            raise

    async def _send_slowly(self, sid: int, body: bytes) -> None:
        """A body larger than the window or a frame: pieces as the window opens."""
        eng = self.engine
        view = memoryview(body)
        try:
            while view and sid in self.streams and not self.closed:
                n = min(eng.send_window(sid), eng.max_frame, len(view))
                if n <= 0:
                    f = self.loop.create_future()
                    self._window.append(f)
                    await f
                    continue
                eng.send_data(sid, bytes(view[:n]), n == len(view))
                self.unsent -= n
                view = view[n:]
                self._flush()
        finally:
            self.unsent -= len(view)  # the stream ended (or the connection) before it all went


__all__ = ["PREFIX_SMALL", "H2Connection", "encode_pairs"]
