"""Dubbo2 framing: the 16-byte header and an incremental, sans-IO frame splitter.

``FrameDecoder.feed`` accepts any split of a TCP stream (one byte at a time, or many frames
in one chunk) and returns complete frames.  Malformed input raises ``DubboProtocolError``,
the one error type of this package; a declared body above ``max_payload`` is refused before
a byte of it is buffered, so memory stays bounded by the limit.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

from .errors import DubboProtocolError as DubboProtocolError  # re-exported

MAGIC = 0xDABB
HEADER_LEN = 16
FLAG_REQUEST = 0x80
FLAG_TWOWAY = 0x40
FLAG_EVENT = 0x20
SERIALIZATION_MASK = 0x1F
HESSIAN2 = 2
DEFAULT_MAX_PAYLOAD = 8 * 1024 * 1024

# Response status bytes (remoting/exchange/Response.java)
OK = 20
SERIALIZATION_ERROR = 25
CLIENT_TIMEOUT = 30
SERVER_TIMEOUT = 31
CHANNEL_INACTIVE = 35
BAD_REQUEST = 40
BAD_RESPONSE = 50
SERVICE_NOT_FOUND = 60
SERVICE_ERROR = 70
SERVER_ERROR = 80
CLIENT_ERROR = 90
SERVER_THREADPOOL_EXHAUSTED_ERROR = 100

STATUS_NAMES = {
    OK: "OK",
    SERIALIZATION_ERROR: "SERIALIZATION_ERROR",
    CLIENT_TIMEOUT: "CLIENT_TIMEOUT",
    SERVER_TIMEOUT: "SERVER_TIMEOUT",
    CHANNEL_INACTIVE: "CHANNEL_INACTIVE",
    BAD_REQUEST: "BAD_REQUEST",
    BAD_RESPONSE: "BAD_RESPONSE",
    SERVICE_NOT_FOUND: "SERVICE_NOT_FOUND",
    SERVICE_ERROR: "SERVICE_ERROR",
    SERVER_ERROR: "SERVER_ERROR",
    CLIENT_ERROR: "CLIENT_ERROR",
    SERVER_THREADPOOL_EXHAUSTED_ERROR: "SERVER_THREADPOOL_EXHAUSTED_ERROR",
}

_HEADER = struct.Struct(">HBBqi")


@dataclass(slots=True)
class Frame:
    """One complete Dubbo2 message as it came off the wire."""

    flag: int
    status: int
    request_id: int
    body: bytes
    oversize: int = 0  # declared body length of a skipped over-limit frame (body is empty)

    @property
    def is_request(self) -> bool:
        return bool(self.flag & FLAG_REQUEST)

    @property
    def is_twoway(self) -> bool:
        return bool(self.flag & FLAG_TWOWAY)

    @property
    def is_event(self) -> bool:
        return bool(self.flag & FLAG_EVENT)

    @property
    def serialization(self) -> int:
        return self.flag & SERIALIZATION_MASK

    @property
    def is_heartbeat(self) -> bool:
        # Java: an event whose body is the serialization's encoding of null.
        return self.is_event and self.body == b"N"


def pack_header(flag: int, status: int, request_id: int, body_len: int) -> bytes:
    return _HEADER.pack(MAGIC, flag, status, request_id, body_len)


def pack_frame(flag: int, status: int, request_id: int, body: bytes) -> bytes:
    return _HEADER.pack(MAGIC, flag, status, request_id, len(body)) + body


def unpack_header(data: bytes) -> tuple[int, int, int, int]:
    """-> (flag, status, request_id, body_length); raises on a bad magic or length."""
    if len(data) < HEADER_LEN:
        raise DubboProtocolError(f"header needs {HEADER_LEN} bytes, got {len(data)}")
    magic, flag, status, rid, length = _HEADER.unpack_from(data)
    if magic != MAGIC:
        raise DubboProtocolError(f"bad magic 0x{magic:04x}, expected 0xdabb")
    if length < 0:
        raise DubboProtocolError(f"negative body length {length}")
    return flag, status, rid, length


#: a client skips an over-limit body up to this multiple of the limit (at least
#: ``SKIP_FLOOR`` bytes); a larger one (a 2 GB declared length) would stall every call
#: sharing the connection, so the decoder refuses it and the client reconnects instead
SKIP_FACTOR = 4
SKIP_FLOOR = 1 << 20


class FrameDecoder:
    """Incremental splitter: ``feed(bytes) -> list[Frame]``."""

    __slots__ = ("_buf", "_skip", "_skip_max", "max_payload", "skip_oversized")

    def __init__(
        self, max_payload: int = DEFAULT_MAX_PAYLOAD, *, skip_oversized: bool = False
    ) -> None:
        self._buf = bytearray()
        self._skip = 0
        self.max_payload = max_payload
        self._skip_max = max(max_payload * SKIP_FACTOR, SKIP_FLOOR)
        # A client skips an over-limit response (reporting it) instead of dropping the
        # connection, as Java's finishRespWhenOverPayload does: other calls live on.
        self.skip_oversized = skip_oversized

    @property
    def buffered(self) -> int:
        return len(self._buf)

    @property
    def mid_frame(self) -> bool:
        """Inside a frame (partial header/body buffered, or an oversized body being
        skipped): a peer that stops here has left the stream unusable."""
        return self._skip > 0 or len(self._buf) > 0

    def feed(self, data: bytes) -> list[Frame]:
        buf = self._buf
        if self._skip:
            if len(data) <= self._skip:
                self._skip -= len(data)
                return []
            data = data[self._skip :]
            self._skip = 0
        buf += data
        frames: list[Frame] = []
        pos = 0
        n = len(buf)
        while n - pos >= HEADER_LEN:
            magic, flag, status, rid, length = _HEADER.unpack_from(buf, pos)
            if magic != MAGIC:
                del buf[:]
                raise DubboProtocolError(
                    f"bad magic 0x{magic:04x} at stream offset {pos}, expected 0xdabb"
                )
            if self.max_payload < length <= self._skip_max and self.skip_oversized:
                frames.append(Frame(flag, status, rid, b"", oversize=length))
                avail = n - pos - HEADER_LEN
                if avail < length:
                    self._skip = length - avail
                    pos = n
                    break
                pos += HEADER_LEN + length
                continue
            if length < 0 or length > self.max_payload:
                del buf[:]
                raise DubboProtocolError(
                    f"body length {length} exceeds the payload limit {self.max_payload}"
                    if length >= 0
                    else f"negative body length {length}"
                )
            end = pos + HEADER_LEN + length
            if end > n:
                break
            frames.append(Frame(flag, status, rid, bytes(buf[pos + HEADER_LEN : end])))
            pos = end
        if pos:
            del buf[:pos]
        return frames
