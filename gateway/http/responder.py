"""Writing responses: dispatching parsed requests to the handler and sending the answers in
request order (pipelining), with the fast paths the listener is built around (a bare
``Response``: no task; a future: its done callback; only coroutines get a task).

A mixin of ``connection.HttpConnection`` (state lives in its slots).
"""

from __future__ import annotations

import asyncio
import logging
import sys
import types
from time import perf_counter
from typing import Any

from tribridge.http.messages import HttpError, Later, Request, Response
from tribridge.http.render import (
    CL_LINES,
    CONN_CLOSE,
    CONN_KEEP,
    CONTINUE,
    CT_LINES,
    FAST_STATUS_LINES,
    internal,
    render,
)
from tribridge.http.states import BODY, DL_IDLE, IDLE, P_CLOSING, P_PIPE, P_WRITE, STOP
from tribridge.http.streaming import StreamResponse, StreamSink, abandon

log = logging.getLogger("tribridge.http")


# Python 3.12+: a coroutine handler's first step runs at once inside a real task (eager
# task), so a handler that finishes without suspending is answered in the same read and one
# that suspends has already sent its upstream request. On 3.11 the task starts on the next
# loop iteration (running the first step by hand would break asyncio.timeout() & co, which
# need a current task).
_EAGER_TASKS = sys.version_info >= (3, 12)
_CoroutineType = types.CoroutineType


class Pending:
    """One response slot of a connection's pipeline (only used when it cannot be sent at once)."""

    __slots__ = ("conn", "fut", "own", "req", "resp", "t0")

    def __init__(self, conn: Any, req: Request | None, resp: Response | None, t0: float):
        self.conn = conn
        self.req = req
        self.resp = resp
        self.t0 = t0
        self.fut: asyncio.Future | None = None
        self.own = False  # fut is a task we created (cancelled on abort)

    def done(self, fut: asyncio.Future) -> None:
        self.fut = None
        self._answer(self.conn._outcome(self.req, fut))

    def settle(self, later: Later) -> None:
        """``Later.then`` continuation: run inside the callback that completed it."""
        resp = later.resp
        if type(resp) is not Response:  # failed (or not a Response): rendered as an error
            resp = self.conn._later_outcome(self.req, later)
        self._answer(resp)

    def _answer(self, resp: Response) -> None:
        self.resp = resp
        conn = self.conn
        if conn.transport is not None:
            conn._flush()
        else:
            abandon(resp)


class Responder:
    """Dispatch to the handler, render, write, keep the pipeline in order."""

    __slots__ = ()

    def _dispatch(self, req: Request, t0: float) -> None:
        try:
            res = self.handler(req)
        except Exception as exc:
            res = self._handler_failed(req, exc)
        self._dispatch_result(req, res, t0)

    def _dispatch_result(self, req: Request, res: Any, t0: float) -> None:
        if type(res) is not Response and isinstance(res, Later):
            if res.done():  # answered already: as a Response
                res = self._later_outcome(req, res)
            else:
                p = Pending(self, req, None, t0)
                self.queue.append(p)
                res.then(p.settle)
                return
        if isinstance(res, Response):
            if self.queue or self.stream is not None:
                self.queue.append(Pending(self, req, res, t0))
            else:
                self._send(req, res, t0)
            return
        p = Pending(self, req, None, t0)
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

    async def _run(self, p: Pending, coro: Any) -> None:
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
        else:
            abandon(resp)

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

    def _later_outcome(self, req: Request | None, later: Later) -> Response:
        try:
            resp = later.outcome()
        except (Exception, asyncio.CancelledError) as exc:
            return self._handler_failed(req, exc)
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
        return internal()

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
        if type(resp) is StreamResponse:
            self._start_stream(req, resp, t0, close, date)  # type: ignore[arg-type]
            return
        try:
            if resp.headers or head:
                data = render(resp, head, close, date)
            else:
                try:
                    body = resp.body
                    n = len(body)
                    data = b"".join(
                        (
                            FAST_STATUS_LINES[resp.status],
                            date,
                            CT_LINES[resp.content_type],
                            CL_LINES[n] if n < 2048 else b"content-length: %d\r\n" % n,
                            CONN_CLOSE if close else CONN_KEEP,
                            body,
                        )
                    )
                except KeyError:  # uncached status / content type, or a body-less status
                    data = render(resp, head, close, date)
        except Exception as exc:
            resp = self._handler_failed(req, exc)
            try:
                data = render(resp, False, close, date)
            except Exception:
                resp = internal()
                data = render(resp, False, close, date)
        if (
            self.paused & P_WRITE
            and t.get_write_buffer_size() > self.server.limits.max_unread_response_bytes
        ):
            self._overflow()
            return
        t.write(data)
        if self.access_log is not None and req is not None:
            try:
                self.access_log(req, resp, perf_counter() - t0)
            except Exception:
                log.exception("access_log hook failed")
        if close:
            self.closing = True
            # drain unread input first only where some is likely: after a protocol error,
            # with more requests seen behind a closing one, mid-request, or at shutdown
            self._linger(req is None or self._abort is STOP or self.phase != IDLE or self.draining)

    def _flush(self) -> None:
        if self.stream is not None:
            return  # everything waits behind a streamed response
        q = self.queue
        while q and q[0].resp is not None:
            p = q.popleft()
            self._send(p.req, p.resp, p.t0)  # type: ignore[arg-type]
            if self.transport is None or self.lingering or self.stream is not None:
                return
        backlog = self.backlog
        while backlog and len(q) < self.max_pipeline and not self.paused & P_WRITE:
            item = backlog.popleft()
            if item.resp is None:
                self._dispatch(item.req, item.t0)  # type: ignore[arg-type]
            elif q:  # a protocol error queued behind earlier requests
                q.append(item)
            else:
                self._send(item.req, item.resp, item.t0)
            if self.transport is None or self.lingering or self.stream is not None:
                return
        if self.paused & P_PIPE and len(q) + len(backlog) < self.max_pipeline:
            self._resume(P_PIPE)
        if q or backlog:
            return
        if self.closing:
            if self.transport is not None and not self.lingering:
                # e.g. half-closed by the client or draining with nothing left to send
                self._linger(self.draining)
            return
        if self.send_continue:
            self.send_continue = False
            if self.phase == BODY:
                self.transport.write(CONTINUE)
        if self.phase == IDLE and not self.paused:
            self.deadline = self.loop.time() + self.idle_timeout
            self.deadline_kind = DL_IDLE

    # ---------------------------------------------------------------- streamed responses

    def _start_stream(
        self, req: Request, resp: StreamResponse, t0: float, close: bool, date: bytes
    ) -> None:
        """Write a ``StreamResponse``'s head and start its producer (http/streaming.py);
        the pipeline waits until ``_stream_ended``."""
        sink = StreamSink(self, req, resp, t0)
        self.stream = sink
        self.deadline = 0.0  # in flight: no client timeout applies
        try:
            sink.start(close, date)
        except Exception as exc:
            self.stream = None
            sink.ended = True
            self._send(req, self._handler_failed(req, exc), t0)
            return
        if sink.upgraded:
            self._resume(P_CLOSING)  # paused after the Upgrade request: read for the new protocol
            tail, self.upgrade_tail = self.upgrade_tail, b""
            if tail and not sink.ended:
                sink.receive(tail)

    def _stream_ended(self, sink: StreamSink) -> None:
        if self.stream is sink:
            self.stream = None
        if self.access_log is not None:
            try:
                self.access_log(sink.req, sink.resp, perf_counter() - sink.t0)
            except Exception:
                log.exception("access_log hook failed")
        if self.transport is None:
            return
        if sink.close or sink.gone or self.closing:
            self.closing = True
            self._linger(self.draining and not sink.upgraded)
            return
        self._flush()
