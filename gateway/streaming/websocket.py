"""Client and bidi streams over WebSocket: wsproto's sans-IO frame ``Connection`` behind the
HTTP/1.1 listener's 101 stream (the listener parsed the handshake request already).

Protocol (docs/streaming.md, "WebSocket"):

* one JSON value per text (or binary) message, each one stream element; for a server stream
  over WebSocket the first message holds the call's arguments (a JSON array, or one value);
* an empty message ends the client's side (half-close): the provider sees END_STREAM and
  may still answer;
* each provider message is one text message; the end of the provider's stream is a Close
  1000; an error a Close with code ``4000 + gRPC code`` and the gRPC message as reason
  (UTF-8, cut to the 123 bytes a close reason may hold); a message that is not JSON 1007,
  the gateway shutting down 1001,
  one over ``streaming.websocket_max_message`` 1009, a gateway failure 1011;
* a client Close or a lost connection cancels the upstream call (RST_STREAM);
* a Ping every ``streaming.keepalive`` while the provider is silent (idle proxies).

Buffers: at most ``MAX_QUEUED`` client messages wait for the provider (reading from the
client pauses past it), and upstream messages are read only when the client has taken the
previous one (``sink.drain``).
"""

from __future__ import annotations

import asyncio
import base64
import binascii
from collections.abc import Callable
from typing import Any

import orjson
from tribridge.codecs.triple import Code, Status
from tribridge.errors import GatewayError
from tribridge.http.messages import Request
from tribridge.http.streaming import StreamSink
from tribridge.streaming.codecs import MessageCodec
from tribridge.streaming.pumps import StreamState
from tribridge.upstream.triple_call import TripleCallError
from wsproto.connection import Connection, ConnectionType
from wsproto.events import CloseConnection, Message, Ping, TextMessage
from wsproto.utilities import LocalProtocolError, RemoteProtocolError, generate_accept_token

#: client messages waiting for the provider before reading from the client pauses
MAX_QUEUED = 8
CLOSE_OK, CLOSE_GOING_AWAY, CLOSE_INVALID, CLOSE_TOO_BIG, CLOSE_INTERNAL = (
    1000,
    1001,
    1007,
    1009,
    1011,
)
#: close code of a stream that ended with gRPC status ``code`` (4000-4016)
GRPC_CLOSE_BASE = 4000
_END = object()  # the client ended its side
_GONE = object()  # the client closed or vanished


def is_upgrade(req: Request) -> bool:
    return req.method == "GET" and req.headers.get("upgrade", "").lower() == "websocket"


def accept_headers(req: Request) -> list[tuple[str, str]]:
    """The 101 answer's headers; a ``GatewayError`` for a handshake RFC 6455 refuses."""
    h = req.headers
    if h.get("sec-websocket-version", "").strip() != "13":
        raise GatewayError(426, "bad_websocket", "Sec-WebSocket-Version must be 13")
    key = h.get("sec-websocket-key", "").strip()
    try:
        ok = len(base64.b64decode(key, validate=True)) == 16
    except (binascii.Error, ValueError):
        ok = False
    if not ok:
        raise GatewayError(400, "bad_websocket", "Sec-WebSocket-Key must be 16 bytes, base64")
    if "upgrade" not in h.get("connection", "").lower():
        raise GatewayError(400, "bad_websocket", "Connection must include Upgrade")
    return [
        ("upgrade", "websocket"),
        ("sec-websocket-accept", generate_accept_token(key.encode()).decode()),
    ]


def close_reason(text: str) -> str:
    raw = text.encode()[:123]
    return raw.decode(errors="ignore")


class _Session:
    """One WebSocket's frames: client messages into a bounded queue, ours out."""

    def __init__(self, sink: StreamSink, max_message: int) -> None:
        self.sink = sink
        self.conn = Connection(ConnectionType.SERVER)
        self.max_message = max_message
        self.queue: asyncio.Queue[Any] = asyncio.Queue()
        self.parts: list[bytes] = []
        self.size = 0
        self.closed = False  # we sent our Close
        self.failure: tuple[int, str] | None = None

    def on_data(self, data: bytes) -> None:
        try:
            self.conn.receive_data(data)
            for ev in self.conn.events():
                self._event(ev)
        except RemoteProtocolError as e:
            self.close(getattr(e.event_hint, "code", 1002), str(e))
            self.queue.put_nowait(_GONE)
        if self.queue.qsize() >= MAX_QUEUED:
            self.sink.pause_reading()

    def on_eof(self) -> None:
        self.queue.put_nowait(_GONE)

    def _event(self, ev: Any) -> None:
        if isinstance(ev, Message):
            data = ev.data.encode() if isinstance(ev, TextMessage) else bytes(ev.data)
            self.size += len(data)
            if self.size > self.max_message:
                self.close(CLOSE_TOO_BIG, f"message over {self.max_message} bytes")
                self.queue.put_nowait(_GONE)
                return
            self.parts.append(data)
            if ev.message_finished:
                whole = b"".join(self.parts)
                self.parts, self.size = [], 0
                self.queue.put_nowait(whole if whole else _END)
        elif isinstance(ev, Ping):
            self._send(ev.response())
        elif isinstance(ev, CloseConnection):
            self._send(ev.response())
            self.closed = True
            self.queue.put_nowait(_GONE)

    def _send(self, ev: Any) -> None:
        try:
            self.sink.write(self.conn.send(ev))
        except LocalProtocolError:
            pass

    async def next(self) -> Any:
        item = await self.queue.get()
        if self.queue.qsize() < MAX_QUEUED // 2:
            self.sink.resume_reading()
        return item

    def ping(self) -> None:
        if not self.closed:
            self._send(Ping(b"tribridge"))

    def send_text(self, data: bytes) -> None:
        if not self.closed:
            self._send(TextMessage(data=data.decode()))

    def close(self, code: int, reason: str = "") -> None:
        if not self.closed:
            self.closed = True
            self._send(CloseConnection(code=code, reason=close_reason(reason)))


def _json(raw: bytes) -> Any:
    return orjson.loads(raw)


def bridge(
    open_up: Callable[[bytes | None], Any],
    codec: MessageCodec,
    st: StreamState,
    max_message: int,
    keepalive: float = 0.0,
) -> Callable[[StreamSink], Any]:
    """The 101 stream's producer: client messages to the provider, replies back; a Ping
    every ``keepalive`` seconds while nothing comes from the provider."""

    async def produce(sink: StreamSink) -> None:
        s = _Session(sink, max_message)
        sink.listen(s.on_data, s.on_eof)
        up: Any = None
        writer: asyncio.Task[None] | None = None
        try:
            if st.kind == "server":
                first = await s.next()
                if first is _GONE:
                    st.cancelled = True
                    return
                args = [] if first is _END else _json(first)
                up = open_up(codec.request(args if isinstance(args, list) else [args]))
                st.messages_in += 1
            else:
                up = open_up(None)
                writer = asyncio.ensure_future(_forward(s, up, codec, st))
            read: asyncio.Future[bytes | None] | None = None
            while True:
                if read is None:
                    read = asyncio.ensure_future(up.read())
                waits: set[asyncio.Future[Any]] = {read, sink.closing}
                if writer is not None:
                    if not writer.done():
                        waits.add(writer)
                    elif not writer.cancelled() and writer.exception() is not None:
                        # it failed while a reply was being read (both done in one pass):
                        # waiting on the provider alone would hang a stream it never ends
                        read.cancel()
                        raise writer.exception()  # type: ignore[misc]
                done, _ = await asyncio.wait(
                    waits, timeout=keepalive or None, return_when=asyncio.FIRST_COMPLETED
                )
                if not done:  # idle: keep proxies from timing the connection out
                    s.ping()
                    await sink.drain()
                    continue
                if read not in done and sink.closing.done():  # the server shuts down
                    read.cancel()
                    st.grpc_code = Code.UNAVAILABLE
                    s.close(CLOSE_GOING_AWAY, "gateway shutting down")
                    return
                if read not in done:
                    exc = writer.exception() if writer is not None else None
                    if exc is not None:  # a client message the gateway could not send
                        read.cancel()
                        raise exc
                    continue  # the client ended its side: read on
                msg = read.result()
                read = None
                if msg is None:
                    st.grpc_code = Code.OK
                    s.close(CLOSE_OK)
                    return
                s.send_text(codec.reply(msg))
                st.messages_out += 1
                await sink.drain()
        except (TripleCallError, GatewayError, ValueError) as e:
            _fail(s, st, e)
        except (asyncio.CancelledError, ConnectionError):
            st.cancelled = True
            raise
        finally:
            if writer is not None:
                if writer.done():
                    _ = writer.cancelled() or writer.exception()  # retrieved
                else:
                    writer.cancel()
            if up is not None and st.grpc_code is None:
                up.cancel()

    return produce


async def _forward(s: _Session, up: Any, codec: MessageCodec, st: StreamState) -> None:
    """Client messages to the provider; the empty message ends the client's side."""
    while True:
        item = await s.next()
        if item is _GONE:
            st.cancelled = True
            up.cancel()
            return
        if item is _END:
            await up.done_writing()
            return
        await up.write(codec.element(_json(item)))
        st.messages_in += 1


def _fail(s: _Session, st: StreamState, e: BaseException) -> None:
    if isinstance(e, TripleCallError):
        st.grpc_code = e.status.code
        s.close(GRPC_CLOSE_BASE + e.status.code, e.status.message or e.status.name)
    elif isinstance(e, orjson.JSONDecodeError):
        st.grpc_code = Code.INVALID_ARGUMENT
        s.close(CLOSE_INVALID, f"message is not JSON: {e}")
    elif isinstance(e, GatewayError):
        code = Code.INVALID_ARGUMENT if e.status == 400 else Code.INTERNAL
        st.grpc_code = code
        s.close(GRPC_CLOSE_BASE + code, e.message)
    else:
        st.grpc_code = Code.INTERNAL
        s.close(CLOSE_INTERNAL, str(Status(Code.INTERNAL, str(e)).message))


__all__ = ["accept_headers", "bridge", "is_upgrade"]
