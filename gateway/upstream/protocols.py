"""What the call path needs from an upstream, declared (``typing.Protocol``), not inherited.

The attempt loop (``invoke.attempts``), the invoker and the Dubbo2 ingress depend on these
shapes, never on the concrete classes, so three kinds of Dubbo2 upstream serve them alike —
``upstream.pool.InstancePool`` (connections to one provider address), ``relay.links.RelayLink``
(a link to another gateway, registered in ``PoolSet.relay_links`` so ``upstream`` never
imports ``relay``) and the in-memory pool of ``tribridge.interop.harness`` (tests) — and so
do the Triple clients (grpcio, h2, lean).
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable, Mapping
from typing import Any, Protocol, TypeVar

from tribridge.codecs.dubbo import Frame

#: header lists as the Triple clients take them (``-bin`` names carry bytes)
Headers = Iterable[tuple[str, str | bytes]] | Mapping[str, str | bytes]


_T_contra = TypeVar("_T_contra", contravariant=True)


class Waiter(Protocol[_T_contra]):
    """Who waits for a call's answer: an ``asyncio.Future`` (``call``), or a caller's own
    object completed right inside the connection's ``data_received``, with no loop hop
    (``send``: the gateway's fast path). Completed at most once; ``done()`` says whether it
    has been."""

    def done(self) -> bool: ...

    def set_result(self, result: _T_contra, /) -> None: ...

    def set_exception(self, exception: BaseException, /) -> None: ...


class UpstreamConnection(Protocol):
    """One Dubbo2 connection: request ids, two-way calls (a future each, or a waiter of the
    caller's), one-way sends."""

    def next_id(self) -> int:
        """A fresh request id for this connection."""
        ...

    def call(self, request_id: int, frame: bytes, timeout: float) -> asyncio.Future[Frame]:
        """Send a two-way request frame; the future gets the response frame, or an
        ``upstream.errors.UpstreamError`` (timeout, connection lost, backlogged)."""
        ...

    def send(self, request_id: int, frame: bytes, timeout: float, waiter: Waiter[Frame]) -> None:
        """``call`` with the caller's waiter instead of a new future (completed at once
        when the connection cannot take the call)."""
        ...

    def send_oneway(self, frame: bytes) -> None:
        """Send a one-way request frame (nobody waits for an answer)."""
        ...


class UpstreamPool(Protocol):
    """Where calls to one provider instance (or one relay link) go, and its health."""

    #: calls in flight (least-active balancing reads it; callers count their calls)
    active: int

    @property
    def address(self) -> str:
        """``host:port`` for messages and metrics."""
        ...

    @property
    def tls(self) -> Any:
        """The ``security.tls.ClientTls`` of this instance, or None (Triple calls use it)."""
        ...

    def available(self, now: float) -> bool:
        """Not ejected and not READONLY: the balancer prefers available instances."""
        ...

    def ready_connection(self) -> UpstreamConnection | None:
        """An open usable connection without awaiting, or None (then ``connection``)."""
        ...

    async def connection(self) -> UpstreamConnection:
        """An open connection; raises ``ConnectFailed`` when none can be had (not sent)."""
        ...

    def record_failure(self) -> None:
        """One more consecutive failure (outlier ejection counts them)."""
        ...

    def record_success(self) -> None:
        """The instance answered: its failure count starts over."""
        ...


class TripleAnswer(Protocol):
    """A completed unary Triple call (``upstream.triple.TripleReply``)."""

    data: bytes
    headers: list[tuple[str, str | bytes]]
    trailers: list[tuple[str, str | bytes]]
    exception_code: int


class TripleTransport(Protocol):
    """A Triple client: one unary call at a time, channels kept per address.

    Raises ``upstream.triple.TripleCallError`` for a non-OK status; its ``sent`` says
    whether the request may have reached the provider."""

    async def unary(
        self,
        address: Any,
        path: str,
        payload: bytes,
        headers: Headers = (),
        timeout: float | None = None,
        tls: Any = None,
    ) -> TripleAnswer: ...

    async def close(self) -> None: ...
