"""Hessian 2.0 writer, byte-compatible with Caucho Hessian 4.0.x / dubbo-hessian-lite.

Sans-IO: values in, bytes out.  One ``Encoder`` is one hessian stream: class definitions,
type names and value references are numbered per encoder, exactly as Java numbers them per
``Hessian2Output`` (Dubbo uses one stream per message body).

Where Java has a canonical choice (smallest int form, the double forms, 32k string chunks
that never end on a high surrogate, minute-precision dates) this writer makes the same one,
so our bytes equal Caucho's.  Binary chunking is buffer-dependent in Java and therefore a
free choice; we use 32 KiB chunks.
"""

from __future__ import annotations

import datetime as _dt
import math
import re
import struct
from decimal import Decimal
from typing import Any

from .values import (
    Double,
    HessianError,
    HessianObject,
    Int,
    Long,
    PairMap,
    TypedList,
    TypedMap,
    big_integer,
)

_pack_i = struct.Struct(">i").pack
_pack_q = struct.Struct(">q").pack
_pack_d = struct.Struct(">d").pack
_pack_H = struct.Struct(">H").pack

INT_MIN, INT_MAX = -(2**31), 2**31 - 1
LONG_MIN, LONG_MAX = -(2**63), 2**63 - 1
STRING_CHUNK = 0x8000
BINARY_CHUNK = 0x8000
DEPTH_CEILING = 1024  # as the decoder's
_ASTRAL = re.compile("[\U00010000-\U0010ffff]")
_EPOCH = _dt.datetime(1970, 1, 1, tzinfo=_dt.UTC)


def _split_astral(match: re.Match[str]) -> str:
    cp = ord(match.group()) - 0x10000
    return chr(0xD800 + (cp >> 10)) + chr(0xDC00 + (cp & 0x3FF))


def to_utf16_units(s: str) -> str:
    """Rewrite astral characters as surrogate pairs so ``len()`` counts Java chars."""
    return s if s.isascii() else _ASTRAL.sub(_split_astral, s)


def java_d2i(v: float) -> int:
    """Java's ``(int) double`` cast: truncation, saturation, NaN -> 0."""
    if v != v:
        return 0
    if v >= INT_MAX:
        return INT_MAX
    if v <= INT_MIN:
        return INT_MIN
    return int(v)


def datetime_to_ms(value: _dt.datetime) -> int:
    if value.tzinfo is None:
        value = value.replace(tzinfo=_dt.UTC)
    delta = value - _EPOCH
    return (delta.days * 86_400 + delta.seconds) * 1000 + delta.microseconds // 1000


class Encoder:
    """Writes hessian2 values into one growing buffer."""

    __slots__ = ("_classes", "_refs", "_types", "buf", "max_depth")

    def __init__(self, max_depth: int = 512) -> None:
        self.buf = bytearray()
        self._refs: dict[int, tuple[int, Any]] = {}
        self._classes: dict[tuple[str, tuple[str, ...]], int] = {}
        self._types: dict[str, int] = {}
        # the compiled writer recurses on the C stack: bounded whatever a caller asks for
        self.max_depth = min(max_depth, DEPTH_CEILING)

    def getvalue(self) -> bytes:
        return bytes(self.buf)

    # ---- scalars -------------------------------------------------------------------------

    def write_null(self) -> None:
        self.buf.append(0x4E)

    def write_bool(self, value: bool) -> None:
        self.buf.append(0x54 if value else 0x46)

    def write_int(self, v: int) -> None:
        buf = self.buf
        if -16 <= v <= 47:
            buf.append(0x90 + v)
        elif -2048 <= v <= 2047:
            buf += bytes((0xC8 + (v >> 8), v & 0xFF))
        elif -262144 <= v <= 262143:
            buf += bytes((0xD4 + (v >> 16), (v >> 8) & 0xFF, v & 0xFF))
        elif INT_MIN <= v <= INT_MAX:
            buf.append(0x49)
            buf += _pack_i(v)
        else:
            raise HessianError(f"int out of range: {v}")

    def write_long(self, v: int) -> None:
        buf = self.buf
        if -8 <= v <= 15:
            buf.append(0xE0 + v)
        elif -2048 <= v <= 2047:
            buf += bytes((0xF8 + (v >> 8), v & 0xFF))
        elif -262144 <= v <= 262143:
            buf += bytes((0x3C + (v >> 16), (v >> 8) & 0xFF, v & 0xFF))
        elif INT_MIN <= v <= INT_MAX:
            buf.append(0x59)
            buf += _pack_i(v)
        elif LONG_MIN <= v <= LONG_MAX:
            buf.append(0x4C)
            buf += _pack_q(v)
        else:
            raise HessianError(f"long out of range: {v}")

    def write_double(self, v: float) -> None:
        buf = self.buf
        iv = java_d2i(v)
        if iv == v:
            if iv == 0:
                buf.append(0x5B)
                return
            if iv == 1:
                buf.append(0x5C)
                return
            if -0x80 <= iv < 0x80:
                buf += bytes((0x5D, iv & 0xFF))
                return
            if -0x8000 <= iv < 0x8000:
                buf.append(0x5E)
                buf += _pack_H(iv & 0xFFFF)
                return
        mills = java_d2i(v * 1000) if math.isfinite(v) else 0
        if 0.001 * mills == v:
            buf.append(0x5F)
            buf += _pack_i(mills)
            return
        buf.append(0x44)
        buf += _pack_d(v)

    def write_date_ms(self, ms: int) -> None:
        if ms % 60000 == 0:
            minutes = ms // 60000
            if INT_MIN <= minutes <= INT_MAX:
                self.buf.append(0x4B)
                self.buf += _pack_i(minutes)
                return
        self.buf.append(0x4A)
        self.buf += _pack_q(ms)

    def write_string(self, s: str) -> None:
        buf = self.buf
        if s.isascii():
            n = len(s)
            if n <= 31:
                buf.append(n)
                buf += s.encode("ascii")
                return
            if n <= 1023:
                buf += bytes((0x30 + (n >> 8), n & 0xFF))
                buf += s.encode("ascii")
                return
            units = s
        else:
            units = to_utf16_units(s)
        n = len(units)
        off = 0
        while n - off > STRING_CHUNK:
            sub = STRING_CHUNK
            if 0xD800 <= ord(units[off + sub - 1]) <= 0xDBFF:
                sub -= 1
            buf.append(0x52)
            buf += _pack_H(sub)
            buf += units[off : off + sub].encode("utf-8", "surrogatepass")
            off += sub
        rest = n - off
        if rest <= 31:
            buf.append(rest)
        elif rest <= 1023:
            buf += bytes((0x30 + (rest >> 8), rest & 0xFF))
        else:
            buf.append(0x53)
            buf += _pack_H(rest)
        buf += units[off:].encode("utf-8", "surrogatepass")

    def write_binary(self, data: bytes | bytearray | memoryview) -> None:
        buf = self.buf
        data = bytes(data)
        n = len(data)
        off = 0
        while n - off > BINARY_CHUNK:
            buf.append(0x41)
            buf += _pack_H(BINARY_CHUNK)
            buf += data[off : off + BINARY_CHUNK]
            off += BINARY_CHUNK
        rest = n - off
        if rest <= 15:
            buf.append(0x20 + rest)
        elif rest <= 1023:
            buf += bytes((0x34 + (rest >> 8), rest & 0xFF))
        else:
            buf.append(0x42)
            buf += _pack_H(rest)
        buf += data[off:]

    # ---- structure -----------------------------------------------------------------------

    def write_type(self, type_name: str) -> None:
        idx = self._types.get(type_name)
        if idx is None:
            self._types[type_name] = len(self._types)
            self.write_string(type_name)
        else:
            self.write_int(idx)

    def add_ref(self, obj: Any) -> bool:
        """Claim a reference slot for ``obj``; if it was written before, write ``Q idx``."""
        key = id(obj)
        hit = self._refs.get(key)
        if hit is not None:
            self.buf.append(0x51)
            self.write_int(hit[0])
            return True
        # Keep obj alive so its id() cannot be recycled while this stream is open.
        self._refs[key] = (len(self._refs), obj)
        return False

    def write_list_header(self, length: int, type_name: str | None) -> None:
        buf = self.buf
        if length <= 7:
            if type_name is not None:
                buf.append(0x70 + length)
                self.write_type(type_name)
            else:
                buf.append(0x78 + length)
        elif type_name is not None:
            buf.append(0x56)
            self.write_type(type_name)
            self.write_int(length)
        else:
            buf.append(0x58)
            self.write_int(length)

    def write_map_begin(self, type_name: str | None) -> None:
        if type_name is None:
            self.buf.append(0x48)
        else:
            self.buf.append(0x4D)
            self.write_type(type_name)

    def write_object_begin(self, cls: str, field_names: tuple[str, ...]) -> None:
        key = (cls, field_names)
        idx = self._classes.get(key)
        if idx is None:
            idx = len(self._classes)
            self._classes[key] = idx
            self.buf.append(0x43)
            self.write_string(cls)
            self.write_int(len(field_names))
            for name in field_names:
                self.write_string(name)
        if idx <= 15:
            self.buf.append(0x60 + idx)
        else:
            self.buf.append(0x4F)
            self.write_int(idx)

    # ---- generic dispatch ----------------------------------------------------------------

    def write(self, value: Any, _depth: int = 0) -> None:
        """Write a Python value with the default mapping (see README, JSON <-> Java)."""
        if _depth > self.max_depth:
            raise HessianError(f"value nested deeper than {self.max_depth}")
        t = type(value)
        if value is None:
            self.buf.append(0x4E)
        elif t is str:
            self.write_string(value)
        elif t is int:
            if INT_MIN <= value <= INT_MAX:
                self.write_int(value)
            elif LONG_MIN <= value <= LONG_MAX:
                self.write_long(value)
            else:  # only a BigInteger holds it (the decoder reads one back as an int)
                self.write(big_integer(value), _depth)
        elif t is bool:
            self.buf.append(0x54 if value else 0x46)
        elif t is float or t is Double:
            self.write_double(value)
        elif t is Long:
            self.write_long(value)
        elif t is Int:
            self.write_int(value)
        elif t is dict or t is TypedMap:
            if self.add_ref(value):
                return
            self.write_map_begin(value.type if t is TypedMap else None)
            d = _depth + 1
            for k, v in value.items():
                self.write(k, d)
                self.write(v, d)
            self.buf.append(0x5A)
        elif t is list or t is TypedList or t is tuple:
            if self.add_ref(value):
                return
            self.write_list_header(len(value), value.type if t is TypedList else None)
            d = _depth + 1
            for item in value:
                self.write(item, d)
        elif t is HessianObject:
            if self.add_ref(value):
                return
            fields = value.fields
            self.write_object_begin(value.cls, tuple(fields))
            d = _depth + 1
            for v in fields.values():
                self.write(v, d)
        elif t is bytes or t is bytearray or t is memoryview:
            self.write_binary(value)
        elif t is PairMap:
            if self.add_ref(value):
                return
            self.write_map_begin(value.type)
            d = _depth + 1
            for k, v in value.pairs:
                self.write(k, d)
                self.write(v, d)
            self.buf.append(0x5A)
        elif isinstance(value, _dt.datetime):
            self.write_date_ms(datetime_to_ms(value))
        elif isinstance(value, Decimal):
            if self.add_ref(value):
                return
            if not value.is_finite():
                raise HessianError(f"BigDecimal cannot hold {value}")
            self.write_object_begin("java.math.BigDecimal", ("value",))
            self.write_string(str(value))
        elif isinstance(value, (set, frozenset)):
            if self.add_ref(value):
                return
            self.write_list_header(len(value), "java.util.HashSet")
            for item in value:
                self.write(item, _depth + 1)
        elif isinstance(value, bool):
            self.buf.append(0x54 if value else 0x46)
        elif isinstance(value, int):
            self.write(int(value), _depth)
        elif isinstance(value, float):
            self.write_double(float(value))
        elif isinstance(value, str):
            self.write_string(str(value))
        else:
            raise HessianError(f"cannot encode Python {t.__name__} as hessian")


def encode(value: Any) -> bytes:
    """Encode one value as a complete hessian2 stream."""
    enc = Encoder()
    enc.write(value)
    return bytes(enc.buf)
