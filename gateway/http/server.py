"""Fast HTTP/1.1 server: a bare ``asyncio.Protocol`` driving ``httptools.HttpRequestParser``.

This is the hot path of the gateway, so it is written for throughput first:

* one parser and one protocol object per connection, reused for every request on it;
* the response is rendered into one ``bytes`` object and written with one
  ``transport.write`` (status lines, content-type lines, small content-length lines and
  the ``Date`` line are cached; the Date line is rebuilt at most once a second);
* a handler that returns a :class:`Response` directly is answered without a task and
  without a queue entry; a handler that returns an ``asyncio.Future`` is answered from the
  future's done callback (no task either); only coroutines get a task;
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
import collections
import logging
import sys
import time
import types
from collections.abc import Awaitable, Callable
from email.utils import formatdate
from http import HTTPStatus
from typing import Any

import httptools
from tribridge.config.limits import (
    connection_cap,
)
from tribridge.http.canonical import PathError, split_target
from tribridge.http.messages import (
    Handler,
    HttpError,
    HttpLimits,
    Request,
    Response,
    error_response,
)

try:
    import uvloop
except ImportError:  # pragma: no cover
    uvloop = None

__all__ = ["HttpServer", "new_event_loop", "run"]

log = logging.getLogger("tribridge.http")


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


# --------------------------------------------------------------------------- rendering

_STATUS_LINES: dict[int, bytes] = {
    s.value: b"HTTP/1.1 %d %s\r\n" % (s.value, s.phrase.encode("latin-1")) for s in HTTPStatus
}
# statuses whose responses carry content-length and a body
_FAST_STATUS_LINES = {
    s: line for s, line in _STATUS_LINES.items() if s >= 200 and s not in (204, 304)
}
_CL_LINES = [b"content-length: %d\r\n" % i for i in range(2048)]
_CT_LINES: dict[str, bytes] = {"application/json": b"content-type: application/json\r\n"}
_CONN_KEEP = b"connection: keep-alive\r\n\r\n"
_CONN_CLOSE = b"connection: close\r\n\r\n"
_CONTINUE = b"HTTP/1.1 100 Continue\r\n\r\n"
_RESERVED = frozenset(("content-length", "connection", "date", "transfer-encoding"))
_time = time.time


def _status_line(status: int) -> bytes:
    line = _STATUS_LINES.get(status)
    if line is None:
        if type(status) is not int or not 100 <= status <= 999:
            raise ValueError(f"invalid HTTP status {status!r}")
        line = b"HTTP/1.1 %d Unknown\r\n" % status
    return line


def _ct_line(ct: str) -> bytes:
    line = _CT_LINES.get(ct)
    if line is None:
        if not ct:
            return b""
        if "\r" in ct or "\n" in ct:
            raise ValueError("CR/LF in content-type")
        line = b"content-type: " + ct.encode("latin-1") + b"\r\n"
        if len(_CT_LINES) < 256:
            _CT_LINES[ct] = line
    return line


def _extra_headers(headers: list[tuple[str, str]]) -> bytes:
    out = []
    for name, value in headers:
        if name.lower() in _RESERVED:
            continue
        line = f"{name}: {value}\r\n"
        if "\r" in line[:-2] or "\n" in line[:-2]:
            raise ValueError(f"CR/LF in response header {name!r}")
        out.append(line)
    return "".join(out).encode("latin-1")


def _render(resp: Response, head: bool, close: bool, date: bytes) -> bytes:
    status = resp.status
    body = resp.body
    extra = _extra_headers(resp.headers) if resp.headers else b""
    conn = _CONN_CLOSE if close else _CONN_KEEP
    if status < 200 or status == 204 or status == 304:
        # no body and no content-length for these
        return b"".join((_status_line(status), date, extra, conn))
    n = len(body)
    cl = _CL_LINES[n] if n < 2048 else b"content-length: %d\r\n" % n
    return b"".join(
        (
            _status_line(status),
            date,
            _ct_line(resp.content_type),
            cl,
            extra,
            conn,
            b"" if head else body,
        )
    )


_INTERNAL_BYTES: bytes = error_response(500, "internal", "internal server error").body
_BUSY_BODY: bytes = error_response(
    503, "too_many_connections", "connection limit reached; retry later"
).body
#: the whole answer to a connection past the cap (no request read, no Date line)
_BUSY: bytes = (
    b"HTTP/1.1 503 Service Unavailable\r\ncontent-type: application/json\r\n"
    b"content-length: %d\r\nretry-after: 1\r\nconnection: close\r\n\r\n%s"
    % (len(_BUSY_BODY), _BUSY_BODY)
)


def _internal() -> Response:
    return Response(500, _INTERNAL_BYTES)


# Python 3.12+: a coroutine handler's first step runs at once inside a real task (eager
# task), so a handler that finishes without suspending is answered in the same read and one
# that suspends has already sent its upstream request. On 3.11 the task starts on the next
# loop iteration (running the first step by hand would break asyncio.timeout() & co, which
# need a current task).
_EAGER_TASKS = sys.version_info >= (3, 12)
_CoroutineType = types.CoroutineType


# --------------------------------------------------------------------------- connection

# phases of the request currently being read
_IDLE, _HEAD, _BODY, _NOBODY = 0, 1, 2, 3
# deadline kinds
_DL_IDLE, _DL_HEAD, _DL_BODY, _DL_LINGER = 0, 1, 2, 3
# reasons to pause reading (bit flags)
_P_WRITE, _P_PIPE, _P_CLOSING = 1, 2, 4

_METHODS: dict[bytes, str] = {
    m.encode(): m
    for m in ("GET", "POST", "PUT", "DELETE", "HEAD", "OPTIONS", "PATCH", "TRACE", "CONNECT")
}
_HEADER_NAMES: dict[bytes, str] = {}
_URLS: dict[bytes, tuple[str, str]] = {}  # request target -> (canonical path, raw query)


class _Abort(Exception):
    """Raised inside parser callbacks to stop parsing; the reason is in ``conn._abort``."""


_STOP = HttpError(0, "", "")  # sentinel abort reason: stop parsing silently


class _Pending:
    """One response slot of a connection's pipeline (only used when it cannot be sent at once)."""

    __slots__ = ("conn", "fut", "own", "req", "resp", "t0")

    def __init__(
        self, conn: _HttpConnection, req: Request | None, resp: Response | None, t0: float
    ):
        self.conn = conn
        self.req = req
        self.resp = resp
        self.t0 = t0
        self.fut: asyncio.Future | None = None
        self.own = False  # fut is a task we created (cancelled on abort)

    def done(self, fut: asyncio.Future) -> None:
        conn = self.conn
        self.resp = conn._outcome(self.req, fut)
        self.fut = None
        if conn.transport is not None:
            conn._flush()


class _HttpConnection(asyncio.Protocol):
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
        "t0",
        "transport",
        "url",
        "want_continue",
    )

    def __init__(self, server: HttpServer):
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
        self.queue: collections.deque[_Pending] = collections.deque()
        # parsed requests not dispatched yet (pipeline full), and protocol errors queued
        # behind them; entries with resp=None still have to go to the handler
        self.backlog: collections.deque[_Pending] = collections.deque()
        self.phase = _IDLE
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
        self.deadline_kind = _DL_IDLE
        self.paused = 0
        self.closing = False  # no further request will be read on this connection
        self.draining = False  # server shutdown in progress
        self.lingering = False
        self.eof = False
        self._abort: HttpError | None = None

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
            transport.write(_BUSY)  # type: ignore[attr-defined]
            transport.close()
            return
        srv._conns.add(self)
        if srv._shutting_down:
            transport.close()
            return
        transport.set_write_buffer_limits(srv.limits.write_buffer_bytes)  # type: ignore[attr-defined]
        self.deadline = self.loop.time() + srv.limits.idle_timeout
        self.deadline_kind = _DL_IDLE

    def connection_lost(self, exc: BaseException | None) -> None:
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
        self._pause(_P_WRITE)

    def resume_writing(self) -> None:
        self._resume(_P_WRITE)
        if self.backlog and self.transport is not None:
            self._flush()

    def eof_received(self) -> bool:
        if self.lingering:
            return False
        self.eof = True
        if self.queue or self.backlog:
            # half-closed client still waits for responses: answer them, then close
            self.closing = True
            return True
        return False

    def data_received(self, data: bytes) -> None:
        if self.closing:
            return  # lingering or waiting to close: discard
        nbegun = self.nbegun
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserUpgrade:
            # the upgrade/CONNECT request was dispatched with keep_alive=False; ignore the rest
            self.closing = True
            return
        except httptools.HttpParserError as exc:
            reason = self._abort
            if reason is None:
                self._fail(400, "bad_request", f"malformed request: {exc}")
            elif reason is not _STOP:
                self._fail(reason.status, reason.code, reason.message)
            return
        # Deadlines are set here, once per read, not once per request.
        if self.closing:
            if not self.lingering:
                self.deadline = 0.0  # waiting for our own responses
            return
        phase = self.phase
        if phase == _IDLE:
            if self.nbegun != nbegun:  # requests were read (input that made none: no reset)
                if self.queue or self.backlog or self.paused:
                    self.deadline = 0.0  # in flight: no client timeout applies
                else:
                    self.deadline = self.loop.time() + self.idle_timeout
                    self.deadline_kind = _DL_IDLE
        elif phase == _HEAD:
            # headers still incomplete: bound what the parser buffers for them
            if self.nbegun != nbegun:  # a new request began in this read
                self.hdr_raw = 0
                if not self.paused:
                    self.deadline = self.loop.time() + self.header_timeout
                    self.deadline_kind = _DL_HEAD
            else:
                self.hdr_raw += len(data)
                if self.hdr_raw > self.max_hdr:
                    self._fail(431, "header_too_large", "request line and headers are too large")
        elif phase == _BODY:
            if self.body_len != self.held and self._hold():
                return
            if (self.nbegun != nbegun or self.deadline_kind != _DL_BODY) and not self.paused:
                self.deadline = self.loop.time() + self.body_timeout
                self.deadline_kind = _DL_BODY
            if self.want_continue:
                self.want_continue = False
                if self.queue or self.backlog:
                    self.send_continue = True  # after the earlier responses
                else:
                    self.transport.write(_CONTINUE)

    # ---------------------------------------------------------------- parser callbacks

    # (no on_message_begin: one callback less per request; the first URL fragment is the
    # start of a request as far as we are concerned)

    def on_url(self, url: bytes) -> None:
        if self.phase == _IDLE:  # first fragment of a new request
            if self.closing or self.draining:
                self.closing = True
                self._abort = _STOP
                raise _Abort
            self.phase = _HEAD
            self.nbegun += 1
            self.url = url
            self.hdr_bytes = n = len(url)
            if self.access_log is not None:
                self.t0 = self.loop.time()
        else:
            self.url += url
            self.hdr_bytes = n = self.hdr_bytes + len(url)
        if n > self.max_hdr:
            self._raise(431, "header_too_large", "request line is too large")

    def on_header(self, name: bytes, value: bytes) -> None:
        if self.phase != _HEAD:  # trailer fields of a chunked body: counted, not kept
            self.body_len += len(name) + len(value) + 4
            if self.body_len > self.max_body:
                self._raise(413, "body_too_large", "request body is too large")
            return
        self.hdr_bytes += len(name) + len(value) + 4
        if self.hdr_bytes > self.max_hdr:
            self._raise(431, "header_too_large", "request headers are too large")
        key = _HEADER_NAMES.get(name)
        if key is None:
            key = name.decode("latin-1").lower()
            if len(_HEADER_NAMES) < 512:
                _HEADER_NAMES[name] = key
        h = self.headers
        if key in h:
            h[key] = h[key] + ", " + value.decode("latin-1")
        else:
            h[key] = value.decode("latin-1")

    def on_headers_complete(self) -> None:
        h = self.headers
        has_body = False
        te = h.get("transfer-encoding")
        if te is not None:
            if "content-length" in h:
                self._raise(400, "bad_request", "both Content-Length and Transfer-Encoding")
            if te.strip().lower() != "chunked":
                self._raise(501, "not_implemented", f"Transfer-Encoding {te!r} not supported")
            has_body = True
        else:
            cl = h.get("content-length")
            if cl is not None:
                cl = cl.strip()
                if not (cl.isascii() and cl.isdigit()):
                    self._raise(400, "bad_request", "invalid Content-Length")
                n = int(cl)
                if n > self.max_body:
                    self._raise(
                        413, "body_too_large", f"request body exceeds {self.max_body} bytes"
                    )
                has_body = n > 0
        parser = self.parser
        ka = parser.should_keep_alive()
        # upgrades / CONNECT (authority-form target) are not supported: answer, then close
        if ka and ("upgrade" in h or self.url[:1] != b"/") and parser.should_upgrade():
            ka = False
        self.keep_alive = ka
        if has_body:
            self.phase = _BODY
            exp = h.get("expect")
            if (
                exp is not None
                and exp.lower() == "100-continue"
                and parser.get_http_version() == "1.1"
            ):
                self.want_continue = True
        else:
            self.phase = _NOBODY

    def on_body(self, data: bytes) -> None:
        n = self.body_len + len(data)
        if n > self.max_body:
            self._raise(413, "body_too_large", f"request body exceeds {self.max_body} bytes")
        self.body_len = n
        body = self.body
        if not body:
            self.body = data
        elif type(body) is bytes:
            b = bytearray(body)
            b += data
            self.body = b
        else:
            body += data

    def on_message_complete(self) -> None:
        url = self.url
        pq = _URLS.get(url)
        if pq is None:
            pq = self._split_url(url)
        m = self.parser.get_method()
        method = _METHODS.get(m) or m.decode("latin-1")
        body = self.body
        if body:
            if type(body) is not bytes:
                body = bytes(body)
            self.body = b""
            self.body_len = 0
        if self.held:  # (a body that spanned reads; trailers alone count too)
            self._release()
        ka = self.keep_alive
        req = Request(method, pq[0], pq[1], self.headers, body, self.client, ka)
        self.headers = {}
        self.phase = _IDLE
        if self.want_continue or self.send_continue:
            self.want_continue = self.send_continue = False
        if not ka or self.draining:
            self.closing = True  # this is the last request read on this connection
        q = self.queue
        if not q and not self.backlog and not self.paused:
            # the common case, nothing in flight: call the handler right here
            try:
                res = self.handler(req)
            except Exception as exc:
                res = self._handler_failed(req, exc)
            if type(res) is Response:
                self._send(req, res, self.t0)
            else:
                self._dispatch_result(req, res, self.t0)
            if self.closing:
                self._pause(_P_CLOSING)
            return
        if self.backlog or len(q) >= self.max_pipeline or self.paused & _P_WRITE:
            # pipeline full, or the peer does not read: park it (bounded by one read)
            self.backlog.append(_Pending(self, req, None, self.t0))
        else:
            self._dispatch(req, self.t0)
        if self.transport is None:
            return
        if self.closing:
            self._pause(_P_CLOSING)
        elif len(q) + len(self.backlog) >= self.max_pipeline:
            self._pause(_P_PIPE)

    def _split_url(self, url: bytes) -> tuple[str, str]:
        """The canonical path (gateway/http/canonical.py) and raw query; 400 for a target with
        no single reading. Computed here once: every later layer reads ``Request.path``."""
        try:
            path, query, authority = split_target(url)
        except PathError as e:
            self._raise(400, "bad_request", f"invalid request target: {e}")
        if authority is not None:
            self.headers["host"] = authority  # absolute-form: its authority is the Host
        pq = (path, query)
        if len(url) <= 256 and authority is None:  # origin-form only: headers untouched
            if len(_URLS) >= 4096:
                _URLS.clear()
            _URLS[url] = pq
        return pq

    # ---------------------------------------------------------------- dispatch & responses

    def _dispatch(self, req: Request, t0: float) -> None:
        try:
            res = self.handler(req)
        except Exception as exc:
            res = self._handler_failed(req, exc)
        self._dispatch_result(req, res, t0)

    def _dispatch_result(self, req: Request, res: Any, t0: float) -> None:
        if isinstance(res, Response):
            if self.queue:
                self.queue.append(_Pending(self, req, res, t0))
            else:
                self._send(req, res, t0)
            return
        p = _Pending(self, req, None, t0)
        self.queue.append(p)
        if type(res) is _CoroutineType:
            # the task itself renders and flushes at its end: no done-callback hop
            if _EAGER_TASKS:
                p.fut = asyncio.Task(self._run(p, res), loop=self.loop, eager_start=True)
            else:
                p.fut = self.loop.create_task(self._run(p, res))
            p.own = True
            return
        try:
            if asyncio.isfuture(res):
                fut = res
            else:
                fut = asyncio.ensure_future(res)
                p.own = True
        except Exception as exc:
            p.resp = self._handler_failed(
                req, TypeError(f"handler returned {type(res).__name__}: {exc}")
            )
            self._flush()
            return
        p.fut = fut
        fut.add_done_callback(p.done)

    async def _run(self, p: _Pending, coro: Any) -> None:
        try:
            resp = await coro
            if not isinstance(resp, Response):
                resp = self._handler_failed(
                    p.req, TypeError(f"handler returned {type(resp).__name__}, not Response")
                )
        except asyncio.CancelledError as exc:
            task = asyncio.current_task()
            if task is not None and task.cancelling():
                raise  # cancelled by us (shutdown abort): nothing to answer
            resp = self._handler_failed(p.req, exc)  # the handler's own doing
        except Exception as exc:
            resp = self._handler_failed(p.req, exc)
        p.resp = resp
        p.fut = None
        if self.transport is not None:
            self._flush()

    def _outcome(self, req: Request | None, fut: asyncio.Future) -> Response:
        """The Response a finished handler future stands for (errors rendered)."""
        if fut.cancelled():
            return self._handler_failed(req, asyncio.CancelledError())
        exc = fut.exception()
        if exc is not None:
            return self._handler_failed(req, exc)
        resp = fut.result()
        if not isinstance(resp, Response):
            return self._handler_failed(
                req, TypeError(f"handler returned {type(resp).__name__}, not Response")
            )
        return resp

    def _handler_failed(self, req: Request | None, exc: BaseException) -> Response:
        hook = self.server.on_error
        if hook is not None:
            try:
                r = hook(req, exc)
                if isinstance(r, Response):
                    return r
                log.error("on_error hook returned %r, not a Response", type(r).__name__)
            except Exception:
                log.exception("on_error hook failed")
        elif isinstance(exc, HttpError):
            return exc.response()
        if not isinstance(exc, asyncio.CancelledError):
            log.error(
                "handler failed for %s %s",
                req.method if req else "-",
                req.path if req else "-",
                exc_info=exc,
            )
        return _internal()

    def _send(self, req: Request | None, resp: Response, t0: float) -> None:
        t = self.transport
        if t is None:
            return
        if req is None:
            close = True
            head = False
        else:
            close = not req.keep_alive or (self.closing and not self.queue and not self.backlog)
            head = req.method == "HEAD"
        date = self.server._date
        try:
            if resp.headers or head:
                data = _render(resp, head, close, date)
            else:
                try:
                    body = resp.body
                    n = len(body)
                    data = b"".join(
                        (
                            _FAST_STATUS_LINES[resp.status],
                            date,
                            _CT_LINES[resp.content_type],
                            _CL_LINES[n] if n < 2048 else b"content-length: %d\r\n" % n,
                            _CONN_CLOSE if close else _CONN_KEEP,
                            body,
                        )
                    )
                except KeyError:  # uncached status / content type, or a body-less status
                    data = _render(resp, head, close, date)
        except Exception as exc:
            resp = self._handler_failed(req, exc)
            try:
                data = _render(resp, False, close, date)
            except Exception:
                resp = _internal()
                data = _render(resp, False, close, date)
        if (
            self.paused & _P_WRITE
            and t.get_write_buffer_size() > self.server.limits.max_unread_response_bytes
        ):
            self._overflow()
            return
        t.write(data)
        if self.access_log is not None and req is not None:
            try:
                self.access_log(req, resp, self.loop.time() - t0)
            except Exception:
                log.exception("access_log hook failed")
        if close:
            self.closing = True
            # drain unread input first only where some is likely: after a protocol error,
            # with more requests seen behind a closing one, mid-request, or at shutdown
            self._linger(
                req is None or self._abort is _STOP or self.phase != _IDLE or self.draining
            )

    def _flush(self) -> None:
        q = self.queue
        while q and q[0].resp is not None:
            p = q.popleft()
            self._send(p.req, p.resp, p.t0)  # type: ignore[arg-type]
            if self.transport is None or self.lingering:
                return
        backlog = self.backlog
        while backlog and len(q) < self.max_pipeline and not self.paused & _P_WRITE:
            item = backlog.popleft()
            if item.resp is None:
                self._dispatch(item.req, item.t0)  # type: ignore[arg-type]
            elif q:  # a protocol error queued behind earlier requests
                q.append(item)
            else:
                self._send(item.req, item.resp, item.t0)
            if self.transport is None or self.lingering:
                return
        if self.paused & _P_PIPE and len(q) + len(backlog) < self.max_pipeline:
            self._resume(_P_PIPE)
        if q or backlog:
            return
        if self.closing:
            if self.transport is not None and not self.lingering:
                # e.g. half-closed by the client or draining with nothing left to send
                self._linger(self.draining)
            return
        if self.send_continue:
            self.send_continue = False
            if self.phase == _BODY:
                self.transport.write(_CONTINUE)
        if self.phase == _IDLE and not self.paused:
            self.deadline = self.loop.time() + self.idle_timeout
            self.deadline_kind = _DL_IDLE

    # ---------------------------------------------------------------- errors, pauses, close

    def _raise(self, status: int, code: str, message: str) -> None:
        self._abort = HttpError(status, code, message)
        raise _Abort

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
        self.phase = _IDLE
        if self.held:
            self._release()
            self.body = b""
        resp = error_response(status, code, message)
        if self.backlog:
            self.backlog.append(_Pending(self, None, resp, self.t0))
        elif self.queue:
            self.queue.append(_Pending(self, None, resp, self.t0))
        else:
            self._send(None, resp, self.t0)
            return
        self._pause(_P_CLOSING)

    def _pause(self, reason: int) -> None:
        t = self.transport
        if t is None or self.lingering:
            return
        if not self.paused:
            try:
                t.pause_reading()
            except (RuntimeError, AttributeError):
                pass
            if self.deadline_kind != _DL_IDLE:
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
        if self.phase == _HEAD:
            self.deadline = self.loop.time() + lim.header_timeout
            self.deadline_kind = _DL_HEAD
        elif self.phase == _BODY:
            self.deadline = self.loop.time() + lim.body_timeout
            self.deadline_kind = _DL_BODY
        elif self.phase == _IDLE and not self.queue and not self.backlog:
            self.deadline = self.loop.time() + lim.idle_timeout
            self.deadline_kind = _DL_IDLE

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
        self.deadline_kind = _DL_LINGER

    def _timeout(self) -> None:
        kind = self.deadline_kind
        self.deadline = 0.0
        t = self.transport
        if t is None:
            return
        if kind == _DL_IDLE:
            if not self.queue and not self.backlog and self.phase == _IDLE:
                t.close()
        elif kind == _DL_LINGER:
            # still flushing the last response to a slow reader: wait while it progresses
            buffered = t.get_write_buffer_size()
            if buffered and buffered != self.hdr_raw:
                self.hdr_raw = buffered
                self.deadline = self.loop.time() + self.server.limits.linger_timeout
                self.deadline_kind = _DL_LINGER
            else:
                t.abort()
        elif kind == _DL_HEAD:
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
        if self.phase == _BODY:
            return  # its headers were accepted: let the body arrive, answer it with close
        self.closing = True
        self.phase = _IDLE
        if self.lingering:
            return
        if not self.queue:
            t.close()
        else:
            self._pause(_P_CLOSING)

    def _kill(self) -> None:
        for p in self.queue:
            if p.own and p.fut is not None:
                p.fut.cancel()
        t = self.transport
        if t is not None:
            t.abort()


# --------------------------------------------------------------------------- server


class HttpServer:
    """HTTP/1.1 server calling ``handler(request)`` for every request.

    ``handler`` may return a :class:`Response` (fast path: no task), an ``asyncio.Future``
    resolving to one (no task either: answered from its done callback), or a coroutine
    (run as a task). Responses go out in request order on every connection.

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
        self._conns: set[_HttpConnection] = set()
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

        def factory() -> _HttpConnection:
            return _HttpConnection(self)

        tls: dict = (
            {"ssl": ssl, "ssl_handshake_timeout": self.limits.header_timeout} if ssl else {}
        )
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
