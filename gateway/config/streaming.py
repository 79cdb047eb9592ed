"""The ``streaming:`` section: server, client and bidi streams over HTTP (docs/streaming.md).

Every buffer a stream holds is bounded by one of these settings: ``max_streams`` streams at
once (each holds at most one message plus the listener's ``limits.write_buffer_bytes``
toward the client and ``stream_window`` bytes from the provider), messages no larger than
``upstream``'s Triple message limit, WebSocket messages no larger than
``websocket_max_message``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from tribridge.config.reader import _V, _Loc

#: ``methods.<name>.stream`` values: how a Java-interface method streams
STREAM_KINDS = ("server", "client", "bidi")
FORMATS = ("ndjson", "sse")


@dataclass(slots=True)
class StreamingSettings:
    #: seconds between SSE comment lines (``: keep-alive``) on an idle stream; 0: none
    keepalive: float = 15.0
    #: streams open at once, all clients together; past it new streams get 503
    max_streams: int = 1000
    #: bytes a provider may send ahead of a slow client, per stream (HTTP/2 window)
    stream_window: int = 64 * 1024
    #: default deadline of a whole stream, seconds; 0: none (x-dubbo-timeout sets one per call)
    timeout: float = 0.0
    #: largest WebSocket message the gateway accepts from a client, bytes
    websocket_max_message: int = 1024 * 1024
    #: when Accept names neither text/event-stream nor application/x-ndjson
    default_format: str = "ndjson"


_KEYS = {
    "keepalive",
    "max_streams",
    "stream_window",
    "timeout",
    "websocket_max_message",
    "default_format",
}


def _seconds(v: _V, node: _Loc, key: str, default: float) -> float:
    """A duration where 0 (or ``off``) means none."""
    raw = node.get(key)
    if raw in (0, "0", "off"):
        return 0.0
    return v.duration(node, key, "streaming", default) or 0.0


def parse_streaming(v: _V, root: _Loc) -> StreamingSettings:
    node = v.mapping(root.get("streaming"), "streaming", _KEYS)
    s = StreamingSettings()
    s.keepalive = _seconds(v, node, "keepalive", s.keepalive)
    s.timeout = _seconds(v, node, "timeout", s.timeout)
    for key, least in (("max_streams", 1), ("stream_window", 1024), ("websocket_max_message", 16)):
        n = v.get(node, key, "streaming", int, getattr(s, key))
        if n < least:
            raise v.fail(node, f"streaming.{key}", f"must be at least {least}, got {n!r}", key)
        setattr(s, key, n)
    s.default_format = v.get(node, "default_format", "streaming", str, s.default_format)
    if s.default_format not in FORMATS:
        raise v.fail(
            node,
            "streaming.default_format",
            f"expected one of {', '.join(FORMATS)}",
            "default_format",
        )
    return s
