"""gRPC status and Triple's ``tri-exception-code``, as a provider reports them.

A Java Triple provider reports a business exception of a wrapper-mode unary method with
``grpc-status: 0`` plus a ``tri-exception-code`` response header, the Throwable being the
message; every other failure is a non-zero ``grpc-status`` with a
percent-encoded ``grpc-message``.  What a code means to an HTTP client or a Dubbo2 consumer
is the gateway's policy, in ``tribridge.statuses``.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from enum import IntEnum
from urllib.parse import unquote, unquote_plus

from .errors import TripleProtocolError


class Code(IntEnum):
    OK = 0
    CANCELLED = 1
    UNKNOWN = 2
    INVALID_ARGUMENT = 3
    DEADLINE_EXCEEDED = 4
    NOT_FOUND = 5
    ALREADY_EXISTS = 6
    PERMISSION_DENIED = 7
    RESOURCE_EXHAUSTED = 8
    FAILED_PRECONDITION = 9
    ABORTED = 10
    OUT_OF_RANGE = 11
    UNIMPLEMENTED = 12
    INTERNAL = 13
    UNAVAILABLE = 14
    DATA_LOSS = 15
    UNAUTHENTICATED = 16


TRI_EXCEPTION_CODE = "tri-exception-code"
GRPC_STATUS = "grpc-status"
GRPC_MESSAGE = "grpc-message"


def code_name(code: int) -> str:
    try:
        return Code(code).name
    except ValueError:
        return str(code)


def decode_grpc_message(value: str) -> str:
    """Percent-decode ``grpc-message``.  gRPC encodes only bytes outside 0x20-0x7E (spaces
    stay literal, ``+`` is a plus); Java's Netty ``QueryStringEncoder`` encodes spaces as
    ``+``.  A message with no literal space and a ``+`` therefore came from the latter."""
    if "+" in value and " " not in value:
        return unquote_plus(value, errors="replace")
    return unquote(value, errors="replace")


def encode_grpc_message(text: str) -> str:
    """gRPC's percent-encoding (bytes outside 0x20-0x7E, and ``%``)."""
    out = []
    for b in text.encode():
        if 0x20 <= b <= 0x7E and b != 0x25:
            out.append(chr(b))
        else:
            out.append(f"%{b:02X}")
    return "".join(out)


@dataclass(slots=True)
class Status:
    """The outcome a provider reported for one call."""

    code: int
    message: str = ""
    #: ``tri-exception-code`` (0 = absent): the message is a serialized Throwable
    exception_code: int = 0

    @property
    def ok(self) -> bool:
        return self.code == 0

    @property
    def name(self) -> str:
        return code_name(self.code)


def _get(headers: Mapping[str, str] | Iterable[tuple[str, str]], name: str) -> str | None:
    if isinstance(headers, Mapping):
        return headers.get(name)
    for k, v in headers:
        if k == name:
            return v if isinstance(v, str) else v.decode("latin-1")
    return None


def parse_status(
    trailers: Mapping[str, str] | Iterable[tuple[str, str]],
    headers: Mapping[str, str] | Iterable[tuple[str, str]] = (),
) -> Status:
    """Status from a response's trailers (or a Trailers-Only HEADERS block) and headers."""
    raw = _get(trailers, GRPC_STATUS)
    if raw is None:
        raw = _get(headers, GRPC_STATUS)
    if raw is None:
        raise TripleProtocolError("response without grpc-status")
    try:
        code = int(raw)
    except ValueError:
        raise TripleProtocolError(f"bad grpc-status {raw!r}") from None
    msg = _get(trailers, GRPC_MESSAGE) or _get(headers, GRPC_MESSAGE) or ""
    return Status(code, decode_grpc_message(msg), exception_code(headers))


def exception_code(headers: Mapping[str, str] | Iterable[tuple[str, str]]) -> int:
    raw = _get(headers, TRI_EXCEPTION_CODE)
    if not raw:
        return 0
    try:
        return int(raw)
    except ValueError:
        raise TripleProtocolError(f"bad {TRI_EXCEPTION_CODE} {raw!r}") from None
