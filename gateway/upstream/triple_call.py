"""What every Triple client takes and gives back, whichever transport carries the call:
settings, the reply, the call error with its gRPC status, and the HTTP answer for a status.

Apart from the clients (``triple_grpcio``, ``triple_h2``, ``triple_http1``) so that none of
them imports another to name these, and callers name them without a transport.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from tribridge.codecs.triple import DEFAULT_MAX_MESSAGE, Status
from tribridge.errors import GatewayError
from tribridge.statuses import grpc_to_http

#: the consumer application name the gateway announces (``tri-consumer-appname``)
APP_NAME = "tribridge"


@dataclass
class TripleSettings:
    max_message: int = DEFAULT_MAX_MESSAGE  # both directions; Dubbo's TripleConfig default
    connect_timeout: float = 3.0
    #: reconnect backoff after a provider went away (grpc's default starts at 1 s and
    #: grows to 120 s; a gateway wants a returning provider back within a second or two)
    backoff_initial: float = 0.2
    backoff_max: float = 2.0
    keepalive: float = 30.0
    #: transport high-water mark of an HTTP/2 connection (upstream.write_buffer_bytes)
    write_buffer_bytes: int = 256 * 1024
    #: bytes queued for a provider that stopped reading; past it calls fail fast
    #: (UNAVAILABLE, not sent: another instance may be tried) (upstream.max_queued_bytes)
    max_queued_bytes: int = 16 * 1024 * 1024
    #: receive window of one streaming call, bytes: what a provider may send ahead of a
    #: slow HTTP client (upstream.stream_window; docs/streaming.md)
    stream_window: int = 64 * 1024


@dataclass(slots=True)
class TripleReply:
    """A completed call: the (single) response message, response headers and trailers.
    ``exception_code`` != 0 means Java's wrapper-mode business exception: ``data`` then
    holds a ``TripleResponseWrapper`` with the serialized Throwable."""

    data: bytes
    headers: list[tuple[str, str | bytes]] = field(default_factory=list)
    trailers: list[tuple[str, str | bytes]] = field(default_factory=list)
    exception_code: int = 0


class TripleCallError(Exception):
    """A call that ended without a response message: a non-OK gRPC status (from the
    provider, or local like UNAVAILABLE / DEADLINE_EXCEEDED).  ``sent`` is False when the
    request surely never reached a provider (safe to retry elsewhere)."""

    def __init__(
        self,
        status: Status,
        *,
        sent: bool = True,
        trailers: list[tuple[str, str | bytes]] | None = None,
    ) -> None:
        super().__init__(f"{status.name}: {status.message}" if status.message else status.name)
        self.status = status
        self.sent = sent
        self.trailers = trailers or []

    @property
    def code(self) -> int:
        return self.status.code

    @property
    def http(self) -> tuple[int, str]:
        """(HTTP status, JSON error code) per ``statuses.GRPC_TO_HTTP`` (docs/triple.md)."""
        return grpc_to_http(self.status.code)


def status_error(status: Status, **extra: Any) -> GatewayError:
    """The HTTP answer for a non-OK gRPC status, the same for wrapper-mode and IDL calls:
    status and ``error.code`` from ``statuses.GRPC_TO_HTTP``, plus ``grpc_status`` (name),
    ``grpc_code`` and ``grpc_message``."""
    http, code = grpc_to_http(status.code)
    return GatewayError(
        http,
        code,
        status.message or status.name,
        grpc_status=status.name,
        grpc_code=status.code,
        grpc_message=status.message,
        **extra,
    )


def address(address: tuple[str, int] | str | Any) -> tuple[str, int]:
    """``(host, port)`` from a tuple, a registry ``Endpoint`` or ``"host:port"``
    (``"[v6]:port"``)."""
    if isinstance(address, str):
        host, sep, port = address.rpartition(":")
        if not sep or not port.isdigit():
            raise ValueError(f"expected host:port, got {address!r}")
        return host.strip("[]"), int(port)
    if hasattr(address, "host"):
        return address.host, address.port
    return address[0], address[1]
