"""Sans-IO pieces of streaming: SSE / NDJSON framing, Accept negotiation, the WebSocket
handshake checks and close reasons, the ``streaming:`` config section."""

from __future__ import annotations

import pytest
from tribridge.config.model import ConfigError, parse_config
from tribridge.errors import GatewayError
from tribridge.http.messages import Request
from tribridge.streaming.formats import Framer, asked_format
from tribridge.streaming.websocket import accept_headers, close_reason, is_upgrade


@pytest.mark.parametrize(
    ("accept", "want"),
    [
        (None, None),
        ("application/json", None),
        ("text/event-stream", "sse"),
        ("application/x-ndjson", "ndjson"),
        ("application/json, application/x-ndjson;q=0.9", "ndjson"),
        ("TEXT/EVENT-STREAM", "sse"),
        ("text/event-stream;q=0, application/x-ndjson", "ndjson"),
        ("text/event-stream; q=0", None),
    ],
)
def test_asked_format(accept: str | None, want: str | None) -> None:
    assert asked_format(accept) == want


def test_sse_framing() -> None:
    f = Framer("sse")
    assert f.content_type == "text/event-stream"
    assert f.message(b'{"a":1}') == b'data: {"a":1}\n\n'
    assert f.message(b'{\n "a": 1\n}') == b'data: { "a": 1}\n\n'  # never a second data line
    assert f.error(b'{"error":{}}') == b'event: error\ndata: {"error":{}}\n\n'
    assert f.end() == b"event: end\ndata: {}\n\n"
    assert f.keepalive() == b": keep-alive\n\n" and f.keeps_alive


def test_ndjson_framing() -> None:
    f = Framer("ndjson")
    assert f.content_type == "application/x-ndjson"
    assert f.message(b"[1,2]") == b"[1,2]\n"
    assert f.error(b'{"error":{}}') == b'{"error":{}}\n'
    assert f.end() == b"" and f.keepalive() == b"" and not f.keeps_alive


def _req(headers: dict[str, str], method: str = "GET") -> Request:
    return Request(method, "/x", "", headers, b"", None, False)


GOOD = {
    "upgrade": "websocket",
    "connection": "keep-alive, Upgrade",
    "sec-websocket-version": "13",
    "sec-websocket-key": "dGhlIHNhbXBsZSBub25jZQ==",
}


def test_websocket_handshake_accept_token() -> None:
    assert is_upgrade(_req(GOOD)) and not is_upgrade(_req(GOOD, "POST"))
    # RFC 6455 section 1.3's example
    assert ("sec-websocket-accept", "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=") in accept_headers(_req(GOOD))


@pytest.mark.parametrize(
    ("change", "status"),
    [
        ({"sec-websocket-version": "8"}, 426),
        ({"sec-websocket-key": "short"}, 400),
        ({"sec-websocket-key": "not base64 at all!!"}, 400),
        ({"connection": "keep-alive"}, 400),
    ],
)
def test_websocket_handshake_refusals(change: dict[str, str], status: int) -> None:
    with pytest.raises(GatewayError) as e:
        accept_headers(_req({**GOOD, **change}))
    assert e.value.status == status


def test_close_reason_fits_a_control_frame() -> None:
    reason = close_reason("é" * 200)
    assert len(reason.encode()) <= 123 and reason == "é" * 61


def test_streaming_config_section() -> None:
    cfg = parse_config("streaming: {keepalive: off, max_streams: 5, default_format: sse}\n")
    s = cfg.streaming
    assert (s.keepalive, s.max_streams, s.default_format) == (0.0, 5, "sse")
    with pytest.raises(ConfigError, match=r"streaming\.max_streams"):
        parse_config("streaming: {max_streams: 0}\n")
    with pytest.raises(ConfigError, match=r"streaming\.default_format"):
        parse_config("streaming: {default_format: xml}\n")
    with pytest.raises(ConfigError, match=r"methods\.m\.stream"):
        parse_config("services:\n  - interface: a.B\n    methods:\n      m: {stream: sideways}\n")
