"""Streaming Triple/gRPC calls (server, client, bidi) on grpcio's ``grpc.aio``.

Streams are long and rare next to unary calls, so they use the gRPC core rather than the
gateway's lean HTTP/2 engine: its flow control, cancellation (``cancel()`` sends RST_STREAM
CANCEL) and multiplexing are proven. They go over a channel of their own per provider address
(every stream to an address shares its one HTTP/2 connection), configured for bounded
buffering: no BDP probing, and a per-stream receive window of ``stream_window`` bytes. The
gateway reads a message only when the HTTP client can take it, so a slow client leaves the
window unreplenished and the provider waits (flow control end to end).

:class:`UpstreamStream` is the seam the streaming layer uses (``typing.Protocol``);
:class:`GrpcStream` implements it on a ``grpc.aio`` call.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Any, Protocol

import grpc
import grpc.aio
from tribridge.codecs.triple import Code, Status
from tribridge.upstream.triple_call import TripleCallError

Metadata = Sequence[tuple[str, str | bytes]]


class UpstreamStream(Protocol):
    """One streaming call to a provider."""

    async def read(self) -> bytes | None:
        """The next message; ``None`` at the end (status OK). Raises ``TripleCallError``."""
        ...

    async def write(self, message: bytes) -> None: ...

    async def done_writing(self) -> None: ...

    def cancel(self) -> None:
        """Give up the call: RST_STREAM (CANCEL) to the provider."""
        ...

    async def initial_metadata(self) -> Metadata: ...

    def trailers(self) -> Metadata: ...


def message_text(details: str | None) -> str:
    """grpc core has percent-decoded ``grpc-message``; Java's encoder also turns spaces
    into ``+`` (see ``decode_grpc_message``)."""
    text = details or ""
    if "+" in text and " " not in text:
        text = text.replace("+", " ")
    return text


def pairs(md: Any) -> list[tuple[str, str | bytes]]:
    return [(k, v) for k, v in md] if md else []


def call_error(e: grpc.aio.AioRpcError, sent: bool = True) -> TripleCallError:
    code = e.code().value[0]
    return TripleCallError(
        Status(code, message_text(e.details())),
        sent=sent,
        trailers=pairs(e.trailing_metadata()),
    )


class GrpcStream:
    """``UpstreamStream`` on a ``grpc.aio`` unary-stream or stream-stream call."""

    __slots__ = ("_call", "_trailers", "ended")

    def __init__(self, call: Any) -> None:
        self._call = call
        self._trailers: list[tuple[str, str | bytes]] = []
        self.ended = False

    async def read(self) -> bytes | None:
        try:
            msg = await self._call.read()
        except grpc.aio.AioRpcError as e:
            self.ended = True
            raise call_error(e) from None
        if msg is grpc.aio.EOF:
            self.ended = True
            try:
                self._trailers = pairs(await self._call.trailing_metadata())
            except grpc.aio.AioRpcError:
                pass
            code = await self._call.code()
            if code != grpc.StatusCode.OK:
                raise TripleCallError(
                    Status(code.value[0], message_text(await self._call.details()))
                )
            return None
        return bytes(msg)

    async def write(self, message: bytes) -> None:
        try:
            await self._call.write(message)
        except grpc.aio.AioRpcError as e:
            raise call_error(e) from None
        except asyncio.InvalidStateError:
            raise TripleCallError(Status(Code.CANCELLED, "the call has ended")) from None

    async def done_writing(self) -> None:
        try:
            await self._call.done_writing()
        except grpc.aio.AioRpcError as e:
            raise call_error(e) from None

    def cancel(self) -> None:
        if not self.ended:
            self._call.cancel()

    async def initial_metadata(self) -> Metadata:
        try:
            return pairs(await self._call.initial_metadata())
        except grpc.aio.AioRpcError as e:
            raise call_error(e) from None

    def trailers(self) -> Metadata:
        return self._trailers


def open_grpc_stream(
    channel: grpc.aio.Channel,
    path: str,
    request: bytes | None,
    metadata: Metadata,
    timeout: float | None,
) -> GrpcStream:
    """A server stream when ``request`` is given (the one request message), else a
    client/bidi stream the caller writes to."""
    md = tuple(metadata)
    if request is not None:
        call = channel.unary_stream(path)(request, metadata=md, timeout=timeout)
    else:
        call = channel.stream_stream(path)(metadata=md, timeout=timeout)
    return GrpcStream(call)


__all__ = ["GrpcStream", "UpstreamStream", "open_grpc_stream"]
