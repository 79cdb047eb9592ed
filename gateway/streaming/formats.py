"""SSE and NDJSON framing, sans-IO: bytes out for messages, errors, keep-alives, the end.

* SSE (``text/event-stream``): each message one ``data:`` line (compact JSON holds no
  newline), an error a last ``event: error``, a clean end a last ``event: end`` (so an
  ``EventSource`` can tell it from a dropped connection and stop reconnecting), keep-alives
  comment lines that every SSE parser ignores.
* NDJSON (``application/x-ndjson``): each message one line; an error a last line
  ``{"error": {...}}``; no keep-alives (an empty line is not NDJSON), the end is the body's.

The error document is the gateway's error body (``{"error": {"code", "message",
"grpc_status", "grpc_code", "grpc_message", ...}}``), the same a unary call answers with.
"""

from __future__ import annotations

from dataclasses import dataclass

SSE = "text/event-stream"
NDJSON = "application/x-ndjson"
_TYPES = {"sse": SSE, "ndjson": NDJSON}


def asked_format(accept: str | None) -> str | None:
    """``"sse"`` or ``"ndjson"`` when the Accept header asks for one (the first named
    wins; ``q=0`` refuses), else None."""
    if not accept:
        return None
    low = accept.lower()
    if "event-stream" not in low and "ndjson" not in low:
        return None  # the common case, on every unary request: one scan
    for part in low.split(","):
        media, _, params = part.partition(";")
        media = media.strip()
        if media not in (SSE, NDJSON):
            continue
        if params.replace(" ", "") in ("q=0", "q=0.0", "q=0.00", "q=0.000"):
            continue
        return "sse" if media == SSE else "ndjson"
    return None


@dataclass(frozen=True, slots=True)
class Framer:
    """Bytes of one stream's body in one format."""

    kind: str  # "sse" | "ndjson"

    @property
    def content_type(self) -> str:
        return _TYPES[self.kind]

    def message(self, json: bytes) -> bytes:
        if self.kind == "sse":
            return b"data: " + _one_line(json) + b"\n\n"
        return _one_line(json) + b"\n"

    def error(self, error_body: bytes) -> bytes:
        if self.kind == "sse":
            return b"event: error\ndata: " + _one_line(error_body) + b"\n\n"
        return _one_line(error_body) + b"\n"

    def end(self) -> bytes:
        return b"event: end\ndata: {}\n\n" if self.kind == "sse" else b""

    def keepalive(self) -> bytes:
        return b": keep-alive\n\n" if self.kind == "sse" else b""

    @property
    def keeps_alive(self) -> bool:
        return self.kind == "sse"


def _one_line(json: bytes) -> bytes:
    """Compact JSON has no raw newline (strings escape it); pretty JSON would: join it."""
    if b"\n" in json or b"\r" in json:
        return json.replace(b"\r", b"").replace(b"\n", b"")
    return json


__all__ = ["NDJSON", "SSE", "Framer", "asked_format"]
