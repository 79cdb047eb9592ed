"""Raw-bytes gRPC calls on cached ``grpc.aio`` channels (the IDL mode's wire boundary).

Kept deliberately thin: the JSON <-> protobuf work happens in ``idl.py``; this only moves
bytes, so a shared Triple client can replace it without touching the rest.
"""

from __future__ import annotations

from typing import Any

import grpc

#: HTTP/2 settings for upstream channels; 8 MiB matches Dubbo's TripleConfig defaults
CHANNEL_OPTIONS: list[tuple[str, Any]] = [
    ("grpc.max_receive_message_length", 8 * 1024 * 1024),
    ("grpc.max_send_message_length", 8 * 1024 * 1024),
    ("grpc.enable_retries", 0),
    ("grpc.primary_user_agent", "tribridge"),
    # a restarted provider must be reachable again at once, not after a reconnect backoff
    ("grpc.initial_reconnect_backoff_ms", 100),
    ("grpc.max_reconnect_backoff_ms", 1000),
]


class GrpcClient:
    """One channel per target ("host:port"), created on first use on the running loop."""

    def __init__(self, options: list[tuple[str, Any]] | None = None) -> None:
        self._options = options or CHANNEL_OPTIONS
        self._channels: dict[str, grpc.aio.Channel] = {}
        self._unary: dict[tuple[str, str], Any] = {}

    def channel(self, target: str) -> grpc.aio.Channel:
        ch = self._channels.get(target)
        if ch is None:
            ch = grpc.aio.insecure_channel(target, options=self._options)
            self._channels[target] = ch
        return ch

    async def unary_call(
        self,
        target: str,
        path: str,
        payload: bytes,
        metadata: list[tuple[str, str]],
        timeout: float,
    ) -> bytes:
        """Raises ``grpc.aio.AioRpcError`` for any non-OK status (including deadline)."""
        mc = self._unary.get((target, path))
        if mc is None:
            mc = self.channel(target).unary_unary(path)
            if len(self._unary) < 65536:
                self._unary[(target, path)] = mc
        return await mc(payload, metadata=metadata or None, timeout=timeout)

    def open_stream(self, target: str, path: str, timeout: float) -> Any:
        """A raw-bytes bidi stream (used for server reflection)."""
        return self.channel(target).stream_stream(path)(timeout=timeout)

    async def close(self) -> None:
        chans, self._channels = self._channels, {}
        self._unary.clear()
        for ch in chans.values():
            await ch.close(grace=None)
