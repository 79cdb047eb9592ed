"""Triple/gRPC calls through grpcio's ``grpc.aio``: one HTTP/2 channel per address, reused.

``TripleClient.unary`` takes the already-encoded message and returns the response message
plus headers and trailers, or raises ``TripleCallError`` carrying the gRPC status.  grpcio
does the HTTP/2 work (raw bytes: no serializers), so flow control, HPACK, keepalive and
reconnect backoff are the gRPC core's, not ours.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping
from typing import Any

import grpc
import grpc.aio
from tribridge.codecs.triple import (
    Code,
    Status,
    TripleProtocolError,
    exception_code,
)
from tribridge.security.tls import address_key
from tribridge.upstream.triple_call import (
    APP_NAME,
    TripleCallError,
    TripleReply,
    TripleSettings,
)
from tribridge.upstream.triple_call import address as _address
from tribridge.upstream.triple_stream import GrpcStream, message_text, open_grpc_stream, pairs

log = logging.getLogger("tribridge.triple")


class TripleClient:
    """Channels to provider addresses, created on first use and kept."""

    def __init__(self, settings: TripleSettings | None = None) -> None:
        self.settings = settings or TripleSettings()
        self._channels: dict[tuple[str, int, str], grpc.aio.Channel] = {}
        self._methods: dict[tuple[tuple[str, int, str], str], Any] = {}

    def _options(self) -> list[tuple[str, Any]]:
        s = self.settings
        return [
            ("grpc.max_send_message_length", s.max_message),
            ("grpc.max_receive_message_length", s.max_message),
            ("grpc.enable_retries", 0),
            ("grpc.initial_reconnect_backoff_ms", int(s.backoff_initial * 1000)),
            ("grpc.min_reconnect_backoff_ms", int(s.backoff_initial * 1000)),
            ("grpc.max_reconnect_backoff_ms", int(s.backoff_max * 1000)),
            ("grpc.keepalive_time_ms", int(s.keepalive * 1000)),
            ("grpc.primary_user_agent", f"{APP_NAME}/triple"),
            ("grpc.client_idle_timeout_ms", 24 * 3600 * 1000),
        ]

    def _stream_options(self) -> list[tuple[str, Any]]:
        """Streams: bounded buffering per stream (docs/streaming.md, "Flow control")."""
        # grpc core reads min_reconnect_backoff as the deadline of one connection attempt
        # (TCP + HTTP/2 SETTINGS): give a cold provider connect_timeout, not the backoff
        base = [o for o in self._options() if o[0] != "grpc.min_reconnect_backoff_ms"]
        return [
            *base,
            ("grpc.min_reconnect_backoff_ms", int(self.settings.connect_timeout * 1000)),
            ("grpc.http2.bdp_probe", 0),
            ("grpc.http2.lookahead_bytes", self.settings.stream_window),
        ]

    def channel(
        self, host: str, port: int, tls: Any = None, streams: bool = False
    ) -> grpc.aio.Channel:
        """The channel to an address; ``tls`` a ``tls.ClientTls`` (one channel per profile)
        or None for cleartext HTTP/2; ``streams``: the address's channel for streaming calls."""
        key = address_key(host, port, tls)
        if streams:
            key = (key[0], key[1], key[2] + "\0streams")
        ch = self._channels.get(key)
        if ch is None:
            target = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
            options = self._stream_options() if streams else self._options()
            if tls is None:
                ch = grpc.aio.insecure_channel(target, options=options)
            else:
                if not tls.verify:
                    raise TripleCallError(
                        Status(
                            Code.UNAVAILABLE,
                            "upstream_tls verify: false is not supported by the grpcio Triple "
                            "client (use triple_client: lean or h2)",
                        ),
                        sent=False,
                    )
                ca, key_pem, chain = tls.read_pem()
                creds = grpc.ssl_channel_credentials(ca, key_pem, chain)
                opts = options
                if tls.server_name:
                    opts.append(("grpc.ssl_target_name_override", tls.server_name))
                ch = grpc.aio.secure_channel(target, creds, options=opts)
            self._channels[key] = ch
        return ch

    def _method(self, host: str, port: int, path: str, tls: Any = None) -> Any:
        key = (address_key(host, port, tls), path)
        m = self._methods.get(key)
        if m is None:
            if len(self._methods) > 16384:
                self._methods.clear()
            m = self._methods[key] = self.channel(host, port, tls).unary_unary(path)
        return m

    #: ``(host, port)`` from a tuple, a registry ``Endpoint`` or ``"host:port"``
    address = staticmethod(_address)

    def open_stream(self, address: tuple[str, int] | str | Any, path: str, timeout: float) -> Any:
        """A raw-bytes bidi stream on the address's channel (server reflection uses it)."""
        host, port = self.address(address)
        return self.channel(host, port).stream_stream(path)(timeout=timeout)

    def stream(
        self,
        address: tuple[str, int] | str | Any,
        path: str,
        request: bytes | None,
        headers: Iterable[tuple[str, str | bytes]] = (),
        timeout: float | None = None,
        tls: Any = None,
    ) -> GrpcStream:
        """A streaming call (``triple_stream``): a server stream when ``request`` is the one
        request message, else a client/bidi stream the caller writes to."""
        if request is not None and len(request) > self.settings.max_message:
            raise TripleCallError(
                Status(Code.RESOURCE_EXHAUSTED, f"request larger than {self.settings.max_message}"),
                sent=False,
            )
        host, port = self.address(address)
        return open_grpc_stream(
            self.channel(host, port, tls, streams=True), path, request, tuple(headers), timeout
        )

    def ready(self, host: str, port: int, tls: Any = None) -> bool:
        ch = self._channels.get(address_key(host, port, tls))
        return ch is not None and ch.get_state() == grpc.ChannelConnectivity.READY

    async def unary(
        self,
        address: tuple[str, int] | str | Any,
        path: str,
        payload: bytes,
        headers: Iterable[tuple[str, str | bytes]] | Mapping[str, str | bytes] = (),
        timeout: float | None = None,
        tls: Any = None,
    ) -> TripleReply:
        """One unary call.  ``address`` is ``(host, port)``, ``"host:port"`` or an ``Endpoint``;
        ``path`` is ``/service/method``; ``payload`` the encoded message (protobuf or a
        wrapper); ``headers`` lower-case names, ``-bin`` names with bytes values; ``tls`` a
        ``tls.ClientTls`` for a provider that serves TLS (ALPN h2), None for cleartext."""
        host, port = self.address(address)
        md = tuple(headers.items()) if isinstance(headers, Mapping) else tuple(headers)
        was_ready = self.ready(host, port, tls)
        call = self._method(host, port, path, tls)(payload, metadata=md, timeout=timeout)
        try:
            data = await call
            initial = pairs(await call.initial_metadata())
            trailers = pairs(await call.trailing_metadata())
        except grpc.aio.AioRpcError as e:
            code = e.code().value[0]
            status = Status(code, message_text(e.details()))
            sent = not (code == Code.UNAVAILABLE and not was_ready)
            raise TripleCallError(
                status, sent=sent, trailers=pairs(e.trailing_metadata())
            ) from None
        try:
            exc = exception_code(initial) or exception_code(trailers)
        except TripleProtocolError as e:
            raise TripleCallError(Status(Code.INTERNAL, str(e))) from None
        return TripleReply(data, initial, trailers, exc)

    async def close(self) -> None:
        channels, self._channels = self._channels, {}
        self._methods.clear()
        for ch in channels.values():
            try:
                await ch.close(grace=None)
            except Exception as e:  # closing must not raise at shutdown
                log.debug("closing channel: %s", e)


__all__ = ["TripleClient"]
