"""Responses produced over time: chunked bodies (SSE, NDJSON) and protocol switches (WebSocket).

A handler answers with a :class:`StreamResponse` instead of a ``Response``; when its turn in
the connection's pipeline comes, the listener writes the head and runs
``resp.produce(sink)`` as a task. The producer writes through the :class:`StreamSink`:

* ``write(data)`` sends bytes at once (one chunk of a chunked body, raw after a 101);
* ``await drain()`` returns when the client has read enough: the transport's write buffer is
  below its high-water mark (``limits.write_buffer_bytes``). A producer that awaits it after
  every write holds at most one message plus that mark for a slow client, and stops reading
  its own source meanwhile (for a Triple stream: the HTTP/2 window is not given back, so the
  provider is slowed by flow control);
* ``closing`` (a future) completes when the server shuts down: the producer should end the
  stream cleanly (a last event) and return; after the shutdown grace the task is cancelled;
* for a 101 answer, ``receive`` gets the bytes the client sends (``on_data``/``on_eof``
  callbacks set by the producer), ``pause_reading``/``resume_reading`` apply back-pressure.

When the client goes away (connection lost, or its end of the stream closed) the producer
task is cancelled, so whatever it awaits upstream is cancelled too (RST_STREAM).

The connection answers nothing else while a stream runs: pipelined requests wait behind it,
as HTTP/1.1 requires.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from tribridge.http.messages import Request, Response
from tribridge.http.render import ct_line, status_line
from tribridge.http.states import P_STREAM, P_WRITE

log = logging.getLogger("tribridge.http")

_NO_COPY = frozenset(("content-length", "transfer-encoding", "connection", "date"))


@dataclass(slots=True)
class StreamResponse(Response):
    """A response whose body ``produce(sink)`` writes over time. ``status`` 101 switches
    protocols (its ``headers`` carry ``upgrade`` and the handshake's own); any other status
    is sent with ``transfer-encoding: chunked`` (HTTP/1.0: raw, then close)."""

    produce: Callable[[StreamSink], Awaitable[None]] | None = None
    #: called once when the stream ends, however it ends, or with None when it never
    #: started (the client left while it waited its turn): metrics, tracing, cleanup
    on_end: Callable[[StreamSink | None], None] | None = None
    extra: dict[str, Any] = field(default_factory=dict)


def abandon(resp: Any) -> None:
    """A ``StreamResponse`` that will never be started: let it clean up."""
    if type(resp) is StreamResponse and resp.on_end is not None:
        hook, resp.on_end = resp.on_end, None
        try:
            hook(None)
        except Exception:
            log.exception("stream on_end hook failed")


class StreamSink:
    """The producer's side of one streamed response (see the module docstring)."""

    __slots__ = (
        "_waiter",
        "bytes_out",
        "chunked",
        "close",
        "closing",
        "conn",
        "ended",
        "gone",
        "held",
        "on_data",
        "on_eof",
        "req",
        "resp",
        "t0",
        "task",
        "upgraded",
    )

    def __init__(self, conn: Any, req: Request, resp: StreamResponse, t0: float) -> None:
        self.conn = conn
        self.req = req
        self.resp = resp
        self.t0 = t0
        self.chunked = False
        self.upgraded = resp.status == 101
        self.closing: asyncio.Future[None] = conn.loop.create_future()
        self.task: asyncio.Task[None] | None = None
        self._waiter: asyncio.Future[None] | None = None
        self.bytes_out = 0
        self.gone = False  # the client went away
        self.ended = False
        self.on_data: Callable[[bytes], None] | None = None
        self.on_eof: Callable[[], None] | None = None
        self.close = True  # the connection closes after this stream
        self.held = b""  # bytes received after a 101 before the producer listens

    def listen(self, on_data: Callable[[bytes], None], on_eof: Callable[[], None]) -> None:
        """After a 101: take the client's bytes (those that came with the request first)."""
        self.on_data, self.on_eof = on_data, on_eof
        held, self.held = self.held, b""
        if held:
            on_data(held)
        if self.gone:
            on_eof()

    # ---- for the producer ----------------------------------------------------------------

    def write(self, data: bytes) -> None:
        t = self.conn.transport
        if t is None or self.ended or not data:
            return
        self.bytes_out += len(data)
        if self.chunked:
            t.write(b"%x\r\n%b\r\n" % (len(data), data))
        else:
            t.write(data)

    @property
    def buffered(self) -> int:
        """Bytes written and not yet taken by the client's socket."""
        t = self.conn.transport
        return t.get_write_buffer_size() if t is not None else 0

    async def drain(self) -> None:
        """Wait while the client is not reading (the transport paused writing)."""
        while self.conn.paused & P_WRITE and not self.gone:
            if self._waiter is None or self._waiter.done():
                self._waiter = self.conn.loop.create_future()
            await self._waiter
        if self.gone:
            raise ConnectionResetError("client went away")

    def pause_reading(self) -> None:
        self.conn._pause(P_STREAM)

    def resume_reading(self) -> None:
        self.conn._resume(P_STREAM)

    # ---- for the connection --------------------------------------------------------------

    def start(self, close: bool, date: bytes) -> None:
        self.close = close or self.upgraded
        resp = self.resp
        req = self.req
        t = self.conn.transport
        lines = [status_line(resp.status), date]
        if self.upgraded:
            lines.append(b"connection: Upgrade\r\n")
        else:
            lines.append(ct_line(resp.content_type))
            # not keep-alive (HTTP/1.0, or Connection: close): the body ends at the close
            self.chunked = req.keep_alive and not close
            self.close = not self.chunked
            if self.chunked:
                lines.append(b"transfer-encoding: chunked\r\n")
        for name, value in resp.headers:
            if name.lower() in _NO_COPY:
                continue
            line = f"{name}: {value}\r\n"
            if "\r" in line[:-2] or "\n" in line[:-2]:
                raise ValueError(f"CR/LF in response header {name!r}")
            lines.append(line.encode("latin-1"))
        if not self.upgraded:
            lines.append(b"connection: close\r\n" if close else b"connection: keep-alive\r\n")
        lines.append(b"\r\n")
        t.write(b"".join(lines))
        if req.method == "HEAD" or resp.produce is None:
            self.chunked = self.chunked and req.method != "HEAD"  # HEAD: no body at all
            self.finish()
            return
        self.task = self.conn.loop.create_task(self._run())

    async def _run(self) -> None:
        try:
            await self.resp.produce(self)  # type: ignore[misc]
        except (asyncio.CancelledError, ConnectionError):
            pass
        except Exception:
            log.exception("stream producer failed for %s", self.req.path)
        finally:
            self.task = None
            self.finish()

    def receive(self, data: bytes) -> None:
        if self.on_data is not None:
            self.on_data(data)
        elif len(self.held) < 1 << 20:  # before listen(): at most one read, bounded anyway
            self.held += data

    def resume(self) -> None:
        w = self._waiter
        if w is not None and not w.done():
            w.set_result(None)

    def shutdown(self) -> None:
        """The server is draining: ask the producer to end."""
        if not self.closing.done():
            self.closing.set_result(None)

    def lost(self) -> None:
        """The client went away: stop producing (cancels what the producer awaits)."""
        self.gone = True
        self.resume()
        if self.on_eof is not None:
            self.on_eof()
        if self.task is not None:
            self.task.cancel()
        else:
            self.finish()

    def finish(self) -> None:
        if self.ended:
            return
        if self.chunked and not self.gone:
            t = self.conn.transport
            if t is not None:
                t.write(b"0\r\n\r\n")
        self.ended = True
        if not self.closing.done():
            self.closing.cancel()
        hook, self.resp.on_end = self.resp.on_end, None
        if hook is not None:
            try:
                hook(self)
            except Exception:
                log.exception("stream on_end hook failed")
        self.conn._stream_ended(self)


__all__ = ["StreamResponse", "StreamSink"]
