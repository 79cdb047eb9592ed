"""Triple wrapper messages (``org.apache.dubbo.triple``, triple_wrapper.proto), by hand.

Java-interface ("non-IDL") methods travel over Triple as a ``TripleRequestWrapper`` holding
one hessian2 stream per argument, and come back as a ``TripleResponseWrapper``.  The messages
are three fields each.  Requests are written here directly: field order is free in
protobuf, so a method's constant fields (``serializeType``, ``argTypes``) are pre-encoded
once and a call only appends its arguments (faster than building a runtime message).
Responses, the hot decode, go through the protobuf runtime (upb), measured ~4x faster than
Python code (docs/benchmarks.md, "Triple wrapper codec"); the small hand-written reader
serves the rarer messages (the server side of tests, exception wrappers).

    message TripleRequestWrapper  { string serializeType = 1; repeated bytes args = 2;
                                    repeated string argTypes = 3; }
    message TripleResponseWrapper { string serializeType = 1; bytes data = 2; string type = 3; }
    message TripleExceptionWrapper { string language = 1; string serialization = 2;
                                     string className = 3; bytes data = 4; }
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from google.protobuf.message import DecodeError as _DecodeError

from . import wrapper_pb as _pb
from .errors import TripleProtocolError

#: what Java writes for hessian2 in ``serializeType`` (``convertHessianToWrapper``)
HESSIAN_WRAPPER = "hessian4"
_HESSIAN_NAMES = ("hessian4", "hessian2")


def _varint(n: int) -> bytes:
    if n < 0x80:
        return bytes((n,))
    out = bytearray()
    while n >= 0x80:
        out.append((n & 0x7F) | 0x80)
        n >>= 7
    out.append(n)
    return bytes(out)


def _field(number: int, data: bytes) -> bytes:
    """A length-delimited field (wire type 2)."""
    return _varint(number << 3 | 2) + _varint(len(data)) + data


_ARG_SMALL = [bytes((0x12, n)) for n in range(0x80)]


def _read_varint(buf: bytes, pos: int, end: int) -> tuple[int, int]:
    shift = 0
    result = 0
    while True:
        if pos >= end:
            raise TripleProtocolError("truncated varint in wrapper message")
        b = buf[pos]
        pos += 1
        result |= (b & 0x7F) << shift
        if not b & 0x80:
            return result, pos
        shift += 7
        if shift >= 64:
            raise TripleProtocolError("varint longer than 10 bytes in wrapper message")


def iter_fields(buf: bytes) -> list[tuple[int, bytes]]:
    """``(field number, bytes)`` of every length-delimited field; other wire types are
    skipped (they are unknown fields here), groups are refused."""
    out: list[tuple[int, bytes]] = []
    pos = 0
    end = len(buf)
    while pos < end:
        key, pos = _read_varint(buf, pos, end)
        number, wtype = key >> 3, key & 7
        if number == 0:
            raise TripleProtocolError("field number 0 in wrapper message")
        if wtype == 2:
            length, pos = _read_varint(buf, pos, end)
            if length > end - pos:
                raise TripleProtocolError("field length past the end of the wrapper message")
            out.append((number, buf[pos : pos + length]))
            pos += length
        elif wtype == 0:
            _, pos = _read_varint(buf, pos, end)
        elif wtype == 1:
            pos += 8
        elif wtype == 5:
            pos += 4
        else:
            raise TripleProtocolError(f"unsupported protobuf wire type {wtype} in wrapper")
        if pos > end:
            raise TripleProtocolError("fixed-size field past the end of the wrapper message")
    return out


def _text(b: bytes, what: str) -> str:
    try:
        return b.decode()
    except UnicodeDecodeError:
        raise TripleProtocolError(f"{what} is not valid UTF-8") from None


@dataclass(slots=True)
class RequestWrapper:
    serialize_type: str = ""
    args: list[bytes] = field(default_factory=list)
    arg_types: list[str] = field(default_factory=list)


@dataclass(slots=True)
class ResponseWrapper:
    serialize_type: str = ""
    data: bytes = b""
    type: str = ""


@dataclass(slots=True)
class ExceptionWrapper:
    language: str = ""
    serialization: str = ""
    class_name: str = ""
    data: bytes = b""


class RequestWrapperTemplate:
    """Pre-encoded ``serializeType`` and ``argTypes`` of one method signature."""

    __slots__ = ("arg_types", "head", "serialize_type")

    def __init__(self, arg_types: Sequence[str], serialize_type: str = HESSIAN_WRAPPER) -> None:
        self.serialize_type = serialize_type
        self.arg_types = list(arg_types)
        self.head = _field(1, serialize_type.encode()) + b"".join(
            _field(3, t.encode()) for t in self.arg_types
        )

    def encode(self, args: Sequence[bytes]) -> bytes:
        """``args`` are already serialized, one stream each."""
        parts = [self.head]
        for a in args:
            n = len(a)
            parts.append(_ARG_SMALL[n] if n < 0x80 else b"\x12" + _varint(n))
            parts.append(a)
        return b"".join(parts)


def encode_request_wrapper(
    args: Sequence[bytes], arg_types: Sequence[str], serialize_type: str = HESSIAN_WRAPPER
) -> bytes:
    return RequestWrapperTemplate(arg_types, serialize_type).encode(args)


def decode_request_wrapper(buf: bytes) -> RequestWrapper:
    w = RequestWrapper()
    for n, v in iter_fields(buf):
        if n == 1:
            w.serialize_type = _text(v, "serializeType")
        elif n == 2:
            w.args.append(bytes(v))
        elif n == 3:
            w.arg_types.append(_text(v, "argTypes"))
    return w


def encode_response_wrapper(
    data: bytes, type_name: str = "", serialize_type: str = HESSIAN_WRAPPER
) -> bytes:
    out = _field(1, serialize_type.encode()) + _field(2, data)
    if type_name:
        out += _field(3, type_name.encode())
    return out


def decode_response_wrapper(buf: bytes) -> ResponseWrapper:
    m = _pb.TripleResponseWrapper()
    try:
        m.ParseFromString(buf)
    except _DecodeError as e:
        raise TripleProtocolError(f"bad TripleResponseWrapper: {e}") from None
    return ResponseWrapper(m.serializeType, m.data, m.type)


def encode_exception_wrapper(w: ExceptionWrapper) -> bytes:
    return (
        _field(1, w.language.encode())
        + _field(2, w.serialization.encode())
        + _field(3, w.class_name.encode())
        + _field(4, w.data)
    )


def decode_exception_wrapper(buf: bytes) -> ExceptionWrapper:
    w = ExceptionWrapper()
    for n, v in iter_fields(buf):
        if n == 1:
            w.language = _text(v, "language")
        elif n == 2:
            w.serialization = _text(v, "serialization")
        elif n == 3:
            w.class_name = _text(v, "className")
        elif n == 4:
            w.data = bytes(v)
    return w


def is_hessian(serialize_type: str) -> bool:
    """Java accepts ``hessian4`` or ``hessian2`` back (``convertHessianFromWrapper``)."""
    return serialize_type in _HESSIAN_NAMES
