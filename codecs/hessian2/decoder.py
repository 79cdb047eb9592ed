"""Hessian 2.0 reader that follows the Java reference reader, hardened for hostile input.

Two result shapes:

* ``typed=False`` (default): plain Python values following Dubbo's generic-call conventions
  — POJO -> ``dict`` with ``"class"`` first, ``BigDecimal`` -> ``Decimal`` (exact),
  dates -> aware ``datetime`` (UTC), java.time handles -> ISO strings, refs resolved (the
  value classes' conversions: ``plainvalues.py``).
* ``typed=True``: wire-faithful values (``Long``, ``TypedList``, ``TypedMap``,
  ``HessianObject``) so a value can be re-encoded to the same bytes or compared with
  what Java read.

Every failure is a ``HessianError``; memory is bounded by the input (no declared length is
trusted before the bytes are there) and time by the input length and ``max_depth``.

Class names are reported as a side channel of decoding (``named_classes``, ``class_keys``,
``java_serialized``) so that a class policy judges exactly the names the bytes carry: every
place where this reader meets a class name is one of the two places a Java hessian reader
resolves one (a class definition, a list / map type), so no shape of value — nested, keyed
by a non-string, referenced, behind a type index — can carry a name the policy did not see.
"""

from __future__ import annotations

import struct
from typing import Any

from .plainvalues import PLAIN_CONVERTERS as _PLAIN_CONVERTERS
from .plainvalues import ms_to_datetime
from .values import HessianError, HessianObject, Long, PairMap, TypedList, TypedMap

_unpack_i = struct.Struct(">i").unpack_from
_unpack_q = struct.Struct(">q").unpack_from
_unpack_d = struct.Struct(">d").unpack_from
_unpack_h = struct.Struct(">h").unpack_from
_unpack_H = struct.Struct(">H").unpack_from


#: Nesting limit for requests: the decoder refuses deeper input, and the gateway's class
#: policy walks (JSON arguments) use the same number, so nothing is accepted at a depth the
#: policy did not look at (``security.classes.max_depth`` sets both).
MAX_DEPTH = 128
#: No ``max_depth`` goes beyond this (the gateway's own setting stops at 1024): the compiled
#: reader recurses on the C stack, which has no recursion limit to raise an error before it
#: overflows, so the bound must hold whatever a caller asks for.
DEPTH_CEILING = 1024
#: ``java.io.ObjectOutputStream``'s stream magic and version: a ``byte[]`` starting so is a
#: Java-serialized object graph (Dubbo's ``nativejava`` generic mode deserializes those).
JAVA_STREAM_MAGIC = b"\xac\xed\x00\x05"
_PENDING = object()


def _join_surrogates(s: str) -> str:
    for ch in s:
        if "\ud800" <= ch <= "\udfff":
            return s.encode("utf-16-le", "surrogatepass").decode("utf-16-le", "surrogatepass")
    return s


class Decoder:
    """Reads hessian2 values from one buffer; one ``Decoder`` is one hessian stream."""

    __slots__ = (
        "_budget",
        "_class_keys",
        "_classes",
        "_refs",
        "_types",
        "data",
        "end",
        "java_serialized",
        "max_depth",
        "pos",
        "typed",
    )

    def __init__(
        self,
        data: bytes | bytearray | memoryview,
        pos: int = 0,
        end: int | None = None,
        *,
        typed: bool = False,
        max_depth: int = MAX_DEPTH,
        max_elements: int | None = None,
    ) -> None:
        self.data = bytes(data) if not isinstance(data, bytes) else data
        #: container entries (list items, map pairs, object fields) still allowed: decoding
        #: costs CPU per value, so a listener that must stay responsive bounds the count
        #: (``None``: bounded only by the input's length)
        self._budget = max_elements if max_elements is not None else 1 << 62
        if pos < 0:
            raise HessianError(f"negative start offset {pos}")
        self.pos = pos
        # never past the buffer: the compiled reader indexes it unchecked
        self.end = len(self.data) if end is None else min(end, len(self.data))
        self.typed = typed
        self.max_depth = min(max_depth, DEPTH_CEILING)
        self._refs: list[Any] = []
        self._classes: list[tuple[str, tuple[str, ...]]] = []
        self._types: list[str] = []
        self._class_keys: list[str] = []
        #: binary values that start with Java's serialization stream magic
        self.java_serialized = 0

    # ---- primitives ----------------------------------------------------------------------

    def _need(self, n: int) -> int:
        pos = self.pos
        if n < 0 or pos + n > self.end:
            raise HessianError(f"truncated: need {n} bytes at offset {pos}, {self.end - pos} left")
        self.pos = pos + n
        return pos

    def _byte(self) -> int:
        pos = self.pos
        if pos >= self.end:
            raise HessianError(f"truncated: value expected at offset {pos}")
        self.pos = pos + 1
        return self.data[pos]

    def at_end(self) -> bool:
        return self.pos >= self.end

    def named_classes(self) -> tuple[str, ...]:
        """Classes defined and list / map types named so far: what a Java reader of the
        same bytes would look up and instantiate (for class policies). Recorded where the
        name is read, not found by walking the result, so no value shape can hide one."""
        return (*(c[0] for c in self._classes), *self._types)

    def class_keys(self) -> tuple[str, ...]:
        """Every string stored under a ``"class"`` key of any map (string-keyed or not, at
        any depth) or in a ``class`` field of an object (a ``HashMap`` class definition
        reads as a map): the names Dubbo's ``PojoUtils.realize`` instantiates in a generic
        call."""
        return tuple(self._class_keys)

    def read(self) -> Any:
        """Read the next value."""
        try:
            return self._read(0)
        except RecursionError:
            # only the interpreted reader gets here: a max_depth above what the interpreter's
            # recursion limit leaves room for, and input that deep
            raise HessianError("nesting deeper than the interpreter's recursion limit") from None

    def read_int(self) -> int:
        """Read a value that must be an integer (int or long tag), as Java's readInt does.

        Only scalar tags are read, so a length or index can never nest."""
        tag = self._byte()
        if not _is_int_tag(tag):
            raise HessianError(f"expected int, got tag 0x{tag:02x} at offset {self.pos - 1}")
        self.pos -= 1
        return int(self._read(0))

    def read_string(self) -> str | None:
        tag = self._byte()
        if not (tag <= 0x1F or 0x30 <= tag <= 0x33 or tag in (0x52, 0x53, 0x4E)):
            raise HessianError(f"expected string, got tag 0x{tag:02x} at offset {self.pos - 1}")
        self.pos -= 1
        value: str | None = self._read(0)  # one of the string tags checked above
        return value

    # ---- core ----------------------------------------------------------------------------

    def _read(self, depth: int) -> Any:
        if depth > self.max_depth:
            raise HessianError(f"nesting deeper than {self.max_depth}")
        tag = self._byte()
        while tag == 0x43:  # class definitions precede the value they describe
            self._class_def()
            tag = self._byte()
        data = self.data
        if tag >= 0x80:
            if tag <= 0xBF:
                return tag - 0x90
            if tag <= 0xCF:
                p = self._need(1)
                return ((tag - 0xC8) << 8) | data[p]
            if tag <= 0xD7:
                p = self._need(2)
                return ((tag - 0xD4) << 16) | (data[p] << 8) | data[p + 1]
            if tag <= 0xEF:
                return self._long(tag - 0xE0)
            p = self._need(1)
            return self._long(((tag - 0xF8) << 8) | data[p])
        if tag <= 0x1F:
            return self._string_body(tag)
        if tag <= 0x2F:
            p = self._need(tag - 0x20)
            return self._binary(data[p : p + tag - 0x20])
        if tag <= 0x33:
            p = self._need(1)
            return self._string_body(((tag - 0x30) << 8) | data[p])
        if tag <= 0x37:
            p = self._need(1)
            n = ((tag - 0x34) << 8) | data[p]
            p = self._need(n)
            return self._binary(data[p : p + n])
        if tag <= 0x3F:
            p = self._need(2)
            return self._long(((tag - 0x3C) << 16) | (data[p] << 8) | data[p + 1])
        if tag >= 0x70:
            if tag <= 0x77:
                return self._list(self._type(), tag - 0x70, depth)
            return self._list(None, tag - 0x78, depth)
        if 0x60 <= tag <= 0x6F:
            return self._instance(tag - 0x60, depth)
        # The commonest remaining tags inline (a call through the table costs more than
        # these tests, interpreted or compiled); the table keeps the rest.
        if tag == 0x4E:
            return None
        if tag == 0x54:
            return True
        if tag == 0x46:
            return False
        if tag == 0x48:
            return self._map(None, depth)
        if tag == 0x59:
            return self._long(_unpack_i(data, self._need(4))[0])
        if tag == 0x5F:  # Java's BC_DOUBLE_MILL: int32 thousandths, not the spec's float32
            return 0.001 * _unpack_i(data, self._need(4))[0]
        if tag == 0x44:
            return _unpack_d(data, self._need(8))[0]
        handler = _HANDLERS.get(tag)
        if handler is None:
            raise HessianError(f"unknown tag 0x{tag:02x} at offset {self.pos - 1}")
        return handler(self, tag, depth)

    def _long(self, v: int) -> int:
        return Long(v) if self.typed else v

    def _binary(self, b: bytes) -> bytes:
        if b[:4] == JAVA_STREAM_MAGIC:
            self.java_serialized += 1
        return b

    def _string_body(self, units: int) -> str:
        """Read ``units`` UTF-16 code units of Java-style UTF-8 (CESU-8 tolerated)."""
        data = self.data
        pos = self.pos
        chunk = data[pos : min(pos + units, self.end)]
        if len(chunk) == units and chunk.isascii():
            self.pos = pos + units
            return chunk.decode("ascii")
        end = self.end
        i = pos
        n = 0
        sur = False  # a CESU-8 surrogate (ED A0..BF ..) seen: pairs to join after decoding
        while n < units:
            if i >= end:
                raise HessianError(f"truncated string at offset {pos}")
            b = data[i]
            if b < 0x80:
                i += 1
                n += 1
            elif b < 0xC0:
                raise HessianError(f"bad utf-8 byte 0x{b:02x} at offset {i}")
            elif b < 0xE0:
                i += 2
                n += 1
            elif b < 0xF0:
                if b == 0xED and i + 1 < end and data[i + 1] >= 0xA0:
                    sur = True
                i += 3
                n += 1
            elif b < 0xF8:
                i += 4
                n += 2
            else:
                raise HessianError(f"bad utf-8 byte 0x{b:02x} at offset {i}")
        if i > end or n != units:
            raise HessianError(f"truncated or split string at offset {pos}")
        self.pos = i
        try:
            text = data[pos:i].decode("utf-8", "surrogatepass")
        except UnicodeDecodeError as e:
            raise HessianError(f"bad utf-8 in string at offset {pos}: {e.reason}") from None
        # no surrogate bytes, no surrogates in the text: skip the per-character scan
        return _join_surrogates(text) if sur else text

    def _chunked_string(self, tag: int, depth: int) -> str:
        parts = []
        while True:
            p = self._need(2)
            parts.append(self._string_body(_unpack_H(self.data, p)[0]))
            if tag == 0x53:
                break
            tag = self._byte()
            if tag == 0x52 or tag == 0x53:
                continue
            if tag <= 0x1F:
                parts.append(self._string_body(tag))
            elif 0x30 <= tag <= 0x33:
                p = self._need(1)
                parts.append(self._string_body(((tag - 0x30) << 8) | self.data[p]))
            else:
                raise HessianError(f"expected string chunk, got tag 0x{tag:02x}")
            break
        return _join_surrogates("".join(parts))

    def _chunked_binary(self, tag: int, depth: int) -> bytes:
        parts = []
        data = self.data
        while True:
            p = self._need(2)
            n = _unpack_H(data, p)[0]
            p = self._need(n)
            parts.append(data[p : p + n])
            if tag == 0x42:
                break
            tag = self._byte()
            if tag == 0x41 or tag == 0x42:
                continue
            if 0x20 <= tag <= 0x2F:
                p = self._need(tag - 0x20)
                parts.append(data[p : p + tag - 0x20])
            elif 0x34 <= tag <= 0x37:
                p = self._need(1)
                n = ((tag - 0x34) << 8) | data[p]
                p = self._need(n)
                parts.append(data[p : p + n])
            else:
                raise HessianError(f"expected binary chunk, got tag 0x{tag:02x}")
            break
        return self._binary(b"".join(parts))

    def _type(self) -> str:
        """A type is a string (appended to the type table) or an int index into it."""
        tag = self._byte()
        self.pos -= 1
        if tag <= 0x1F or 0x30 <= tag <= 0x33 or tag in (0x52, 0x53):
            t = self.read_string() or ""
            self._types.append(t)
            return t
        if not _is_int_tag(tag):
            raise HessianError(f"expected type string or type index, got tag 0x{tag:02x}")
        idx = self.read_int()
        if not 0 <= idx < len(self._types):
            raise HessianError(f"type reference {idx} undefined ({len(self._types)} types)")
        return self._types[idx]

    def _length(self, n: int) -> int:
        # Every element takes at least one byte: refuse lengths the input cannot hold.
        if n < 0 or n > self.end - self.pos:
            raise HessianError(f"list length {n} exceeds the {self.end - self.pos} bytes left")
        return n

    def _spend(self, n: int) -> None:
        self._budget -= n
        if self._budget < 0:
            raise HessianError("more container elements than the decoder's max_elements allows")

    def _list(self, type_name: str | None, n: int, depth: int) -> list[Any]:
        self._length(n)
        self._spend(n)
        out = TypedList(type_name) if (self.typed and type_name is not None) else []
        self._refs.append(out)
        d = depth + 1
        for _ in range(n):
            out.append(self._read(d))
        return out

    def _var_list(self, type_name: str | None, depth: int) -> list[Any]:
        out = TypedList(type_name) if (self.typed and type_name is not None) else []
        self._refs.append(out)
        d = depth + 1
        data = self.data
        while True:
            if self.pos >= self.end:
                raise HessianError("truncated list: missing end marker Z")
            if data[self.pos] == 0x5A:
                self.pos += 1
                return out
            self._spend(1)
            out.append(self._read(d))

    def _map(self, type_name: str | None, depth: int) -> Any:
        out: Any = TypedMap(type_name) if (self.typed and type_name is not None) else {}
        slot = len(self._refs)
        self._refs.append(out)
        d = depth + 1
        data = self.data
        while True:
            if self.pos >= self.end:
                raise HessianError("truncated map: missing end marker Z")
            if data[self.pos] == 0x5A:
                self.pos += 1
                return out
            self._spend(1)
            k = self._read(d)
            v = self._read(d)
            if k == "class" and isinstance(v, str):
                self._class_keys.append(v)
            if isinstance(out, PairMap):
                out.pairs.append((k, v))
                continue
            try:
                out[k] = v
            except TypeError:
                pairs = PairMap(type_name, list(out.items()))
                pairs.pairs.append((k, v))
                self._refs[slot] = pairs  # earlier self-references keep the dict (rare)
                out = pairs

    def _class_def(self) -> None:
        name = self.read_string()
        if not name:
            raise HessianError("class definition without a name")
        count = self.read_int()
        self._length(count)
        fields = []
        for _ in range(count):
            f = self.read_string()
            if f is None:
                raise HessianError(f"null field name in class {name}")
            fields.append(f)
        self._classes.append((name, tuple(fields)))

    def _instance(self, idx: int, depth: int) -> Any:
        if not 0 <= idx < len(self._classes):
            raise HessianError(f"object refers to class definition {idx}, which is undefined")
        cls, fields = self._classes[idx]
        self._spend(len(fields))
        slot = len(self._refs)
        d = depth + 1
        if self.typed:
            obj = HessianObject(cls)
            self._refs.append(obj)
            values = obj.fields
            for f in fields:
                values[f] = v = self._read(d)
                if f == "class" and isinstance(v, str):
                    self._class_keys.append(v)
            return obj
        out: dict[str, Any] = {"class": cls}
        self._refs.append(out)
        for f in fields:
            out[f] = v = self._read(d)
            if f == "class" and isinstance(v, str):
                # a Map class's definition with a "class" field is a Map with a "class" key
                # to Java's MapDeserializer, which realize() then instantiates
                self._class_keys.append(v)
        conv = _PLAIN_CONVERTERS.get(cls)
        if conv is not None:
            value = conv(out)
            if value is not out:
                self._refs[slot] = value
            return value
        return out

    def _ref(self, tag: int, depth: int) -> Any:
        idx = self.read_int()
        if not 0 <= idx < len(self._refs):
            raise HessianError(f"reference to undefined value {idx} ({len(self._refs)} defined)")
        return self._refs[idx]


def _is_int_tag(tag: int) -> bool:
    return tag >= 0x80 or 0x38 <= tag <= 0x3F or tag in (0x49, 0x4C, 0x59)


def _describe(v: Any) -> str:
    return "null" if v is None else type(v).__name__


def _d_int32(self: Decoder, tag: int, depth: int) -> Any:
    return _unpack_i(self.data, self._need(4))[0]


def _d_long64(self: Decoder, tag: int, depth: int) -> Any:
    return self._long(_unpack_q(self.data, self._need(8))[0])


def _d_double0(self: Decoder, tag: int, depth: int) -> Any:
    return 0.0


def _d_double1(self: Decoder, tag: int, depth: int) -> Any:
    return 1.0


def _d_double_b(self: Decoder, tag: int, depth: int) -> Any:
    b = self.data[self._need(1)]
    return float(b - 256 if b > 127 else b)


def _d_double_s(self: Decoder, tag: int, depth: int) -> Any:
    return float(_unpack_h(self.data, self._need(2))[0])


def _d_date_ms(self: Decoder, tag: int, depth: int) -> Any:
    return ms_to_datetime(_unpack_q(self.data, self._need(8))[0])


def _d_date_min(self: Decoder, tag: int, depth: int) -> Any:
    return ms_to_datetime(_unpack_i(self.data, self._need(4))[0] * 60000)


def _d_string_chunk(self: Decoder, tag: int, depth: int) -> Any:
    return self._chunked_string(tag, depth)


def _d_binary_chunk(self: Decoder, tag: int, depth: int) -> Any:
    return self._chunked_binary(tag, depth)


def _d_typed_map(self: Decoder, tag: int, depth: int) -> Any:
    return self._map(self._type(), depth)


def _d_var_typed_list(self: Decoder, tag: int, depth: int) -> Any:
    return self._var_list(self._type(), depth)


def _d_fixed_typed_list(self: Decoder, tag: int, depth: int) -> Any:
    t = self._type()
    return self._list(t, self.read_int(), depth)


def _d_var_list(self: Decoder, tag: int, depth: int) -> Any:
    return self._var_list(None, depth)


def _d_fixed_list(self: Decoder, tag: int, depth: int) -> Any:
    return self._list(None, self.read_int(), depth)


def _d_object(self: Decoder, tag: int, depth: int) -> Any:
    return self._instance(self.read_int(), depth)


_HANDLERS = {
    0x49: _d_int32,
    0x4C: _d_long64,
    0x5B: _d_double0,
    0x5C: _d_double1,
    0x5D: _d_double_b,
    0x5E: _d_double_s,
    0x4A: _d_date_ms,
    0x4B: _d_date_min,
    0x52: _d_string_chunk,
    0x53: _d_string_chunk,
    0x41: _d_binary_chunk,
    0x42: _d_binary_chunk,
    0x4D: _d_typed_map,
    0x55: _d_var_typed_list,
    0x56: _d_fixed_typed_list,
    0x57: _d_var_list,
    0x58: _d_fixed_list,
    0x4F: _d_object,
    0x51: Decoder._ref,
}


def decode(data: bytes | bytearray | memoryview, *, typed: bool = False) -> Any:
    """Decode exactly one value; trailing bytes are an error."""
    dec = Decoder(data, typed=typed)
    value = dec.read()
    if not dec.at_end():
        raise HessianError(f"{dec.end - dec.pos} trailing bytes after the value")
    return value
