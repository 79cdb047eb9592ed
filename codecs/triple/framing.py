"""gRPC length-prefixed messages: 1 byte compressed flag, 4-byte big-endian length, bytes.

Triple uses gRPC's framing unchanged on HTTP/2 DATA frames.  ``MessageDecoder`` takes any
split of a stream body and refuses a declared length above ``max_size`` before buffering it,
so memory stays bounded by the limit (Dubbo's ``TripleConfig`` default is 8 MiB).
"""

from __future__ import annotations

import struct

from .errors import TripleProtocolError

DEFAULT_MAX_MESSAGE = 8 * 1024 * 1024
PREFIX_LEN = 5
_PREFIX = struct.Struct(">BI")


def encode_message(data: bytes, compressed: bool = False) -> bytes:
    """One length-prefixed message (``compressed`` only sets the flag)."""
    return _PREFIX.pack(1 if compressed else 0, len(data)) + data


class MessageDecoder:
    """Incremental splitter of length-prefixed messages."""

    __slots__ = ("_buf", "max_size")

    def __init__(self, max_size: int = DEFAULT_MAX_MESSAGE) -> None:
        self.max_size = max_size
        self._buf = bytearray()

    def feed(self, data: bytes) -> list[bytes]:
        """Complete messages in ``data`` plus what was buffered; compressed ones raise,
        since the gateway never offers an encoding (``grpc-accept-encoding: identity``)."""
        buf = self._buf
        buf += data
        out: list[bytes] = []
        pos = 0
        n = len(buf)
        while n - pos >= PREFIX_LEN:
            flag, length = _PREFIX.unpack_from(buf, pos)
            if flag not in (0, 1):
                raise TripleProtocolError(f"bad gRPC message flag {flag:#x}")
            if flag == 1:
                raise TripleProtocolError("compressed gRPC message, but no encoding was offered")
            if length > self.max_size:
                raise TripleProtocolError(
                    f"gRPC message of {length} bytes exceeds the limit of {self.max_size}"
                )
            end = pos + PREFIX_LEN + length
            if end > n:
                break
            out.append(bytes(buf[pos + PREFIX_LEN : end]))
            pos = end
        if pos:
            del buf[:pos]
        return out

    @property
    def buffered(self) -> int:
        return len(self._buf)

    def close(self) -> None:
        """End of stream: a partial message left over is an error."""
        if self._buf:
            raise TripleProtocolError(
                f"stream ended inside a gRPC message ({len(self._buf)} bytes left)"
            )
