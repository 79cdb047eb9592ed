"""One listener connection: a bare ``asyncio.Protocol`` driving ``httptools.HttpRequestParser``.

Its life cycle lives here (transport callbacks, read back-pressure, deadlines swept by the
server's ticker, protocol errors, lingering close, shutdown drain); reading requests is
``reader.RequestReader``'s and writing responses ``responder.Responder``'s.
"""

from __future__ import annotations

import asyncio
import collections
import logging
from typing import Any

import httptools
from tribridge.http.messages import HttpError, error_response
from tribridge.http.reader import RequestReader
from tribridge.http.render import BUSY, CONTINUE
from tribridge.http.responder import Pending, Responder
from tribridge.http.states import (
    BODY,
    DL_BODY,
    DL_HEAD,
    DL_IDLE,
    DL_LINGER,
    HEAD,
    IDLE,
    P_CLOSING,
    P_WRITE,
    STOP,
)
from tribridge.http.streaming import StreamSink, abandon

log = logging.getLogger("tribridge.http")


class HttpConnection(RequestReader, Responder, asyncio.Protocol):
    __slots__ = (
        "_abort",
        "access_log",
        "backlog",
        "body",
        "body_len",
        "body_timeout",
        "client",
        "closing",
        "deadline",
        "deadline_kind",
        "draining",
        "eof",
        "handler",
        "hdr_bytes",
        "hdr_raw",
        "header_timeout",
        "headers",
        "held",
        "idle_timeout",
        "keep_alive",
        "lingering",
        "loop",
        "max_body",
        "max_hdr",
        "max_pipeline",
        "nbegun",
        "parser",
        "paused",
        "phase",
        "queue",
        "send_continue",
        "server",
        "stream",
        "t0",
        "transport",
        "upgrade_tail",
        "url",
        "want_continue",
    )

    def __init__(self, server: Any):
        self.server = server
        self.loop = server._loop
        self.handler = server.handler
        self.access_log = server.access_log
        lim = server.limits
        self.max_hdr = lim.max_header_bytes
        self.max_body = lim.max_body_bytes
        self.max_pipeline = max(1, lim.max_pipeline)
        self.header_timeout = lim.header_timeout
        self.body_timeout = lim.body_timeout
        self.idle_timeout = lim.idle_timeout
        self.transport: asyncio.Transport | None = None
        self.parser = httptools.HttpRequestParser(self)
        self.client: tuple[str, int] | None = None
        self.queue: collections.deque[Pending] = collections.deque()
        # parsed requests not dispatched yet (pipeline full), and protocol errors queued
        # behind them; entries with resp=None still have to go to the handler
        self.backlog: collections.deque[Pending] = collections.deque()
        self.phase = IDLE
        self.url = b""
        self.headers: dict[str, str] = {}
        self.body: bytes | bytearray = b""
        self.body_len = 0
        self.held = 0  # bytes of a partial body counted in the server's buffered-body budget
        self.hdr_bytes = 0
        self.hdr_raw = 0
        self.nbegun = 0
        self.keep_alive = True
        self.want_continue = False
        self.send_continue = False
        self.t0 = 0.0
        self.deadline = 0.0
        self.deadline_kind = DL_IDLE
        self.paused = 0
        self.closing = False  # no further request will be read on this connection
        self.draining = False  # server shutdown in progress
        self.lingering = False
        self.eof = False
        self._abort: HttpError | None = None
        self.stream: StreamSink | None = None  # the streamed response being written
        self.upgrade_tail = b""  # bytes after an Upgrade request, for the 101 stream

    # ---------------------------------------------------------------- transport callbacks

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]
        peer = transport.get_extra_info("peername")
        if isinstance(peer, tuple) and len(peer) >= 2:
            self.client = (peer[0], peer[1])
        srv = self.server
        if len(srv._conns) >= srv._cap:
            # Past the cap (and so short of descriptors for the upstream side): answer from
            # a prebuilt buffer and close; the connections already open keep being served.
            srv.refused += 1
            self.closing = True
            transport.write(BUSY)  # type: ignore[attr-defined]
            transport.close()
            return
        srv._conns.add(self)
        if srv._shutting_down:
            transport.close()
            return
        transport.set_write_buffer_limits(srv.limits.write_buffer_bytes)  # type: ignore[attr-defined]
        self.deadline = self.loop.time() + srv.limits.idle_timeout
        self.deadline_kind = DL_IDLE

    def connection_lost(self, exc: BaseException | None) -> None:
        if self.stream is not None:
            self.stream.lost()
        for p in self.queue:
            abandon(p.resp)  # streams answered but never started
        self.transport = None
        self.parser = None  # break the parser <-> protocol cycle
        self.deadline = 0.0
        self.backlog.clear()
        if self.held:
            self._release()
        srv = self.server
        srv._conns.discard(self)
        if srv._all_closed is not None and not srv._conns and not srv._all_closed.done():
            srv._all_closed.set_result(None)

    def pause_writing(self) -> None:
        self._pause(P_WRITE)

    def resume_writing(self) -> None:
        self._resume(P_WRITE)
        if self.stream is not None:
            self.stream.resume()
        if self.backlog and self.transport is not None:
            self._flush()

    def eof_received(self) -> bool:
        if self.lingering:
            return False
        self.eof = True
        if self.stream is not None:
            # the client closed its side mid-stream: it is gone (nobody half-closes an SSE
            # request and keeps reading), so stop the producer and its upstream call
            self.stream.lost()
            return False
        if self.queue or self.backlog:
            # half-closed client still waits for responses: answer them, then close
            self.closing = True
            return True
        return False

    def data_received(self, data: bytes) -> None:
        stream = self.stream
        if stream is not None and stream.upgraded:
            stream.receive(data)
            return
        if self.closing:
            return  # lingering or waiting to close: discard
        nbegun = self.nbegun
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserUpgrade as exc:
            # the upgrade/CONNECT request was dispatched with keep_alive=False; what follows
            # it belongs to the protocol switched to (a 101 stream) or is ignored
            self.closing = True
            off = exc.args[0] if exc.args and isinstance(exc.args[0], int) else len(data)
            tail = data[off:]
            stream = self.stream
            if stream is not None and stream.upgraded:
                stream.receive(tail)
            elif len(tail) <= self.max_hdr:
                self.upgrade_tail = tail
            return
        except httptools.HttpParserError as exc:
            reason = self._abort
            if reason is None:
                self._fail(400, "bad_request", f"malformed request: {exc}")
            elif reason is not STOP:
                self._fail(reason.status, reason.code, reason.message)
            return
        # Deadlines are set here, once per read, not once per request.
        if self.closing:
            if not self.lingering:
                self.deadline = 0.0  # waiting for our own responses
            return
        phase = self.phase
        if phase == IDLE:
            if self.nbegun != nbegun:  # requests were read (input that made none: no reset)
                if self.queue or self.backlog or self.paused:
                    self.deadline = 0.0  # in flight: no client timeout applies
                else:
                    self.deadline = self.loop.time() + self.idle_timeout
                    self.deadline_kind = DL_IDLE
        elif phase == HEAD:
            # headers still incomplete: bound what the parser buffers for them
            if self.nbegun != nbegun:  # a new request began in this read
                self.hdr_raw = 0
                if not self.paused:
                    self.deadline = self.loop.time() + self.header_timeout
                    self.deadline_kind = DL_HEAD
            else:
                self.hdr_raw += len(data)
                if self.hdr_raw > self.max_hdr:
                    self._fail(431, "header_too_large", "request line and headers are too large")
        elif phase == BODY:
            if self.body_len != self.held and self._hold():
                return
            if (self.nbegun != nbegun or self.deadline_kind != DL_BODY) and not self.paused:
                self.deadline = self.loop.time() + self.body_timeout
                self.deadline_kind = DL_BODY
            if self.want_continue:
                self.want_continue = False
                if self.queue or self.backlog:
                    self.send_continue = True  # after the earlier responses
                else:
                    self.transport.write(CONTINUE)

    # ---------------------------------------------------------------- errors, pauses, close

    def _hold(self) -> bool:
        """Count a partial body's growth in the server-wide budget (once per read, only
        while a body spans reads); past the budget answer 503 and close -> True."""
        srv = self.server
        srv._held += self.body_len - self.held
        self.held = self.body_len
        if srv._held <= srv.limits.max_buffered_body_bytes:
            return False
        self._fail(
            503, "overloaded", "too many request bodies in progress on this server; retry later"
        )
        return True

    def _release(self) -> None:
        self.server._held -= self.held
        self.held = 0

    def _overflow(self) -> None:
        """The client stopped reading with ``max_unread_response_bytes`` queued: drop it."""
        log.warning("%s: client stopped reading its responses; aborting", self.client)
        self.closing = True
        self.lingering = True
        self.backlog.clear()
        self._kill()
        self.transport = None  # nothing more is written to it (connection_lost follows)

    def _fail(self, status: int, code: str, message: str) -> None:
        """Protocol error: answer (after earlier pipelined responses), then close."""
        self.closing = True
        self.deadline = 0.0
        self.phase = IDLE
        if self.held:
            self._release()
            self.body = b""
        resp = error_response(status, code, message)
        if self.backlog:
            self.backlog.append(Pending(self, None, resp, self.t0))
        elif self.queue:
            self.queue.append(Pending(self, None, resp, self.t0))
        else:
            self._send(None, resp, self.t0)
            return
        self._pause(P_CLOSING)

    def _pause(self, reason: int) -> None:
        t = self.transport
        if t is None or self.lingering:
            return
        if reason == P_CLOSING and self.stream is not None and self.stream.upgraded:
            return  # no more HTTP requests, but the switched-to protocol reads on
        if not self.paused:
            try:
                t.pause_reading()
            except (RuntimeError, AttributeError):
                pass
            if self.deadline_kind != DL_IDLE:
                self.deadline = 0.0  # our back-pressure: do not blame the client
        self.paused |= reason

    def _resume(self, reason: int) -> None:
        if not self.paused & reason:
            return
        self.paused &= ~reason
        t = self.transport
        if self.paused or t is None or self.lingering:
            return
        try:
            t.resume_reading()
        except (RuntimeError, AttributeError):
            pass
        lim = self.server.limits
        if self.phase == HEAD:
            self.deadline = self.loop.time() + lim.header_timeout
            self.deadline_kind = DL_HEAD
        elif self.phase == BODY:
            self.deadline = self.loop.time() + lim.body_timeout
            self.deadline_kind = DL_BODY
        elif self.phase == IDLE and not self.queue and not self.backlog and self.stream is None:
            self.deadline = self.loop.time() + lim.idle_timeout
            self.deadline_kind = DL_IDLE

    def _linger(self, drain: bool) -> None:
        """Close after the last response; with ``drain``: half-close, discard input for a
        while (until the client closes, at most ``linger_timeout``), then close.

        Closing a socket with unread input makes the kernel send RST, which can destroy the
        response in flight (e.g. a 413 sent before the client finished its body).
        """
        t = self.transport
        if t is None or self.lingering:
            return
        self.lingering = True
        self.closing = True
        self.backlog.clear()
        if not drain or self.eof or not t.can_write_eof():
            t.close()
            return
        try:
            t.write_eof()
        except (OSError, RuntimeError):
            t.close()
            return
        if self.paused:
            self.paused = 0
            try:
                t.resume_reading()
            except (RuntimeError, AttributeError):
                pass
        self.hdr_raw = -1  # reused: write-buffer size at the last linger check
        self.deadline = self.loop.time() + self.server.limits.linger_timeout
        self.deadline_kind = DL_LINGER

    def _timeout(self) -> None:
        kind = self.deadline_kind
        self.deadline = 0.0
        t = self.transport
        if t is None:
            return
        if kind == DL_IDLE:
            if not self.queue and not self.backlog and self.phase == IDLE and self.stream is None:
                t.close()
        elif kind == DL_LINGER:
            # still flushing the last response to a slow reader: wait while it progresses
            buffered = t.get_write_buffer_size()
            if buffered and buffered != self.hdr_raw:
                self.hdr_raw = buffered
                self.deadline = self.loop.time() + self.server.limits.linger_timeout
                self.deadline_kind = DL_LINGER
            else:
                t.abort()
        elif kind == DL_HEAD:
            self._fail(408, "request_timeout", "request headers not received in time")
        else:
            self._fail(408, "request_timeout", "request body not received in time")

    def _drain(self) -> None:
        """Server shutdown: read no new request, finish the in-flight ones, then close."""
        t = self.transport
        if t is None or self.draining:
            return
        self.draining = True
        # requests parsed but not started yet are dropped (never seen by the handler)
        self.backlog.clear()
        if self.stream is not None:
            self.closing = True
            self.stream.shutdown()  # the producer ends it; the connection closes after
            return
        if self.phase == BODY:
            return  # its headers were accepted: let the body arrive, answer it with close
        self.closing = True
        self.phase = IDLE
        if self.lingering:
            return
        if not self.queue:
            t.close()
        else:
            self._pause(P_CLOSING)

    def _kill(self) -> None:
        if self.stream is not None and self.stream.task is not None:
            self.stream.task.cancel()
        for p in self.queue:
            if p.own and p.fut is not None:
                p.fut.cancel()
        t = self.transport
        if t is not None:
            t.abort()
