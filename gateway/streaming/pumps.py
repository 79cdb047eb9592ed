"""Moving messages between an HTTP stream and an upstream stream, with back-pressure.

``first_event`` runs before the response head is sent, so that an error the provider
reports at once (unknown method, no such service, provider down) is answered with an HTTP
status rather than inside a 200 stream. ``server_stream`` is a ``StreamResponse`` producer
(SSE / NDJSON): it reads one upstream message only once the client has taken the previous
one (``sink.drain()``), so a slow client leaves the upstream HTTP/2 window unreplenished and
the provider waits. Cancellation: the producer task is cancelled when the client goes away,
and the upstream call is cancelled with it (RST_STREAM CANCEL). Shutdown: the stream ends
with an error event ``UNAVAILABLE`` (``gateway shutting down``).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from tribridge.codecs.triple import Code, Status
from tribridge.errors import GatewayError
from tribridge.http.streaming import StreamSink
from tribridge.streaming.codecs import MessageCodec
from tribridge.streaming.formats import Framer
from tribridge.upstream.triple_call import TripleCallError, status_error
from tribridge.upstream.triple_stream import UpstreamStream

#: what ``first_event`` hands on: a message, the end (None), or nothing yet (timed out)
PENDING = object()


@dataclass(slots=True)
class StreamState:
    """One stream's progress, for metrics, tracing and the access log."""

    kind: str  # server | client | bidi
    fmt: str  # sse | ndjson | websocket
    where: dict[str, Any] = field(default_factory=dict)
    messages_out: int = 0
    messages_in: int = 0
    #: the gRPC code the stream ended with (0 OK); None while running or when the client left
    grpc_code: int | None = None
    cancelled: bool = False  # the client went away first
    read_task: asyncio.Task[bytes | None] | None = None

    def error_body(self, status: Status) -> bytes:
        self.grpc_code = status.code
        return status_error(status, **self.where).body()


async def first_event(up: UpstreamStream, wait: float, st: StreamState) -> Any:
    """The first upstream message (bytes), None (ended without one), or ``PENDING`` after
    ``wait`` seconds; raises ``TripleCallError`` for an error status. The read goes on in
    ``st.read_task`` when it is still pending."""
    task = asyncio.ensure_future(up.read())
    try:
        done, _ = await asyncio.wait({task}, timeout=wait)
    except asyncio.CancelledError:
        task.cancel()
        raise
    if not done:
        st.read_task = task
        return PENDING
    return task.result()


def _error_body(e: BaseException, st: StreamState) -> bytes:
    if isinstance(e, TripleCallError):
        return st.error_body(e.status)
    if isinstance(e, GatewayError):
        st.grpc_code = Code.INTERNAL
        return e.body()
    st.grpc_code = Code.INTERNAL
    return st.error_body(Status(Code.INTERNAL, "stream failed in the gateway"))


def server_stream(
    up: UpstreamStream,
    codec: MessageCodec,
    framer: Framer,
    st: StreamState,
    first: Any,
    keepalive: float,
) -> Callable[[StreamSink], Any]:
    """The producer of an SSE / NDJSON body (see the module docstring)."""

    async def produce(sink: StreamSink) -> None:
        pending = first
        try:
            while True:
                if pending is PENDING:
                    task = st.read_task or asyncio.ensure_future(up.read())
                    st.read_task = task
                    waits: set[asyncio.Future[Any]] = {task, sink.closing}
                    done, _ = await asyncio.wait(
                        waits,
                        timeout=keepalive if framer.keeps_alive and keepalive else None,
                        return_when=asyncio.FIRST_COMPLETED,
                    )
                    if task not in done:
                        if sink.closing.done():  # server shutdown
                            up.cancel()
                            sink.write(
                                framer.error(
                                    st.error_body(Status(Code.UNAVAILABLE, "gateway shutting down"))
                                )
                            )
                            return
                        sink.write(framer.keepalive())
                        await sink.drain()
                        continue
                    st.read_task = None
                    pending = task.result()
                if pending is None:
                    st.grpc_code = Code.OK
                    sink.write(framer.end())
                    return
                sink.write(framer.message(codec.reply(pending)))
                st.messages_out += 1
                pending = PENDING
                await sink.drain()  # back-pressure: read on once the client took it
        except asyncio.CancelledError:
            st.cancelled = True
            up.cancel()
            raise
        except ConnectionError:
            st.cancelled = True
            up.cancel()
            raise
        except (TripleCallError, GatewayError) as e:
            up.cancel()
            sink.write(framer.error(_error_body(e, st)))
        finally:
            t = st.read_task
            if t is not None and not t.done():
                t.cancel()
            st.read_task = None

    return produce


__all__ = ["PENDING", "StreamState", "first_event", "server_stream"]
