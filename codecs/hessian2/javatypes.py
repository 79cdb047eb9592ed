"""The Java type model: which Java type a JSON-like value must become on the wire.

JSON has one number type and Java has six; guessing ``int`` vs ``long`` silently is the bug
users of other gateways report most.  Here a signature (JVM descriptor such as
``Ljava/lang/String;IJ``, or type names such as ``java.util.List<java.lang.Long>``) becomes
``JavaType`` objects, and ``coerce`` turns a JSON value into exactly the hessian value Java
expects, or raises ``JavaTypeError`` naming the argument path, the type and the value.

Two target shapes:

* ``generic=False`` — a direct call: the provider reads each argument with
  ``readObject(declaredClass)``; POJOs go as class instances, enums as enum objects,
  java.time values as hessian-lite handles.
* ``generic=True`` — ``$invoke``: Dubbo's "generalized" form (POJO -> map with ``class``,
  enum -> name, java.time -> ISO string) that ``PojoUtils.realize`` turns back into objects.
"""

from __future__ import annotations

import base64
import binascii
import datetime as _dt
import re
import struct
import uuid as _uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from functools import cached_property
from typing import Any

from .values import (
    HessianError,
    HessianObject,
    Int,
    JavaTypeError,
    Long,
    TypedList,
    TypedMap,
    big_integer,
)

PRIMITIVES = {
    "boolean": "Z",
    "byte": "B",
    "char": "C",
    "double": "D",
    "float": "F",
    "int": "I",
    "long": "J",
    "short": "S",
    "void": "V",
}
_DESC_TO_PRIMITIVE = {v: k for k, v in PRIMITIVES.items()}
_BOXED = {
    "java.lang.Boolean": "boolean",
    "java.lang.Byte": "byte",
    "java.lang.Character": "char",
    "java.lang.Double": "double",
    "java.lang.Float": "float",
    "java.lang.Integer": "int",
    "java.lang.Long": "long",
    "java.lang.Short": "short",
}
_SHORT_NAMES = {
    "String": "java.lang.String",
    "Object": "java.lang.Object",
    "Boolean": "java.lang.Boolean",
    "Byte": "java.lang.Byte",
    "Character": "java.lang.Character",
    "Double": "java.lang.Double",
    "Float": "java.lang.Float",
    "Integer": "java.lang.Integer",
    "Long": "java.lang.Long",
    "Short": "java.lang.Short",
    "BigDecimal": "java.math.BigDecimal",
    "BigInteger": "java.math.BigInteger",
    "Date": "java.util.Date",
    "List": "java.util.List",
    "Set": "java.util.Set",
    "Map": "java.util.Map",
    "Collection": "java.util.Collection",
    "LocalDate": "java.time.LocalDate",
    "LocalTime": "java.time.LocalTime",
    "LocalDateTime": "java.time.LocalDateTime",
    "Instant": "java.time.Instant",
    "UUID": "java.util.UUID",
    "Locale": "java.util.Locale",
    "Class": "java.lang.Class",
    "Timestamp": "java.sql.Timestamp",
}
_LISTS = {"java.util.List", "java.util.ArrayList", "java.util.Collection", "java.lang.Iterable"}
_SETS = {"java.util.Set", "java.util.HashSet"}
_TYPED_COLLECTIONS = {"java.util.LinkedList", "java.util.LinkedHashSet", "java.util.TreeSet"}
_MAPS = {"java.util.Map", "java.util.HashMap"}
_TYPED_MAPS = {
    "java.util.LinkedHashMap",
    "java.util.TreeMap",
    "java.util.SortedMap",
    "java.util.concurrent.ConcurrentHashMap",
}
_HL = "com.alibaba.com.caucho.hessian.io.java8."
#: hessian-lite writes a Locale as this handle with its ``toString()`` (LocaleSerializer)
_LOCALE_HANDLE = "com.alibaba.com.caucho.hessian.io.LocaleHandle"
#: the java.time classes other than LocalDate/LocalTime/LocalDateTime/Instant: one kind,
#: a parser each (``_JTIME_HANDLES``)
_JTIME_CLASSES = (
    "java.time.ZonedDateTime",
    "java.time.OffsetDateTime",
    "java.time.OffsetTime",
    "java.time.Duration",
    "java.time.Period",
    "java.time.Year",
    "java.time.YearMonth",
    "java.time.MonthDay",
    "java.time.ZoneOffset",
    "java.time.ZoneId",
)
#: class name -> kind, for the names that are not POJOs, collections or boxed primitives
_KINDS = {
    "java.lang.String": "string",
    "java.lang.CharSequence": "string",
    "java.lang.Object": "object",
    "java.io.Serializable": "object",
    "java.lang.Number": "object",
    "java.math.BigDecimal": "bigdecimal",
    "java.math.BigInteger": "biginteger",
    "java.util.Date": "date",
    "java.sql.Date": "sqldate",
    "java.sql.Time": "sqldate",
    "java.sql.Timestamp": "sqldate",
    "java.util.UUID": "uuid",
    "java.util.Locale": "locale",
    "java.lang.Class": "jclass",
    "java.time.LocalDate": "localdate",
    "java.time.LocalTime": "localtime",
    "java.time.LocalDateTime": "localdatetime",
    "java.time.Instant": "instant",
    **dict.fromkeys(_JTIME_CLASSES, "jtime"),
}
_INT_RANGES = {"byte": (-128, 127), "short": (-32768, 32767), "int": (-(2**31), 2**31 - 1)}
_LONG_RANGE = (-(2**63), 2**63 - 1)


@dataclass(frozen=True, slots=True)
class JavaType:
    """A parsed Java type.

    ``kind`` is one of: a primitive name; ``boxed`` (nullable primitive, ``prim`` says
    which); ``string``, ``object``, ``bigdecimal``, ``biginteger``, ``date``, ``sqldate``
    (``java.sql.Date``/``Time``/``Timestamp``), ``uuid``, ``locale``, ``jclass``
    (``java.lang.Class``), ``localdate``, ``localtime``, ``localdatetime``, ``instant``,
    ``bytes`` (``byte[]``), ``array``, ``list``, ``set``, ``map``, ``class`` (POJO or enum,
    resolved via a ``TypeRegistry``).
    """

    name: str
    kind: str
    prim: str | None = None
    args: tuple[JavaType, ...] = ()

    @property
    def element(self) -> JavaType:
        return self.args[0] if self.args else OBJECT

    def descriptor(self) -> str:
        """JVM descriptor, as in the Dubbo2 request body (``I``, ``[Ljava/lang/String;``)."""
        if self.kind in PRIMITIVES:
            return PRIMITIVES[self.kind]
        if self.kind == "bytes":
            return "[B"
        if self.kind == "array":
            return "[" + self.element.descriptor()
        return "L" + self.name.replace(".", "/") + ";"

    def generic_name(self) -> str:
        """Name for ``$invoke``'s ``String[]`` (``int``, ``java.lang.String[]``)."""
        if self.kind == "bytes":
            return "byte[]"
        if self.kind == "array":
            return self.element.generic_name() + "[]"
        return self.name

    def class_name(self) -> str:
        """``Class.getName()`` form, as Triple's ``argTypes`` (``[I``, ``[Ljava.lang.String;``)."""
        if self.kind in ("bytes", "array"):
            return self.descriptor().replace("/", ".")
        return self.name

    def __str__(self) -> str:
        if self.kind == "array":
            return f"{self.element}[]"
        if self.args:
            return f"{self.name}<{', '.join(str(a) for a in self.args)}>"
        return self.name


def _simple(name: str) -> JavaType:
    if name in PRIMITIVES:
        return JavaType(name, name, name)
    name = _SHORT_NAMES.get(name, name)
    if name in _BOXED:
        return JavaType(name, "boxed", _BOXED[name])
    kind = _KINDS.get(name)
    if kind is not None:
        return JavaType(name, kind)
    if name in _LISTS or name in _TYPED_COLLECTIONS:
        return JavaType(name, "list", args=(OBJECT,))
    if name in _SETS:
        return JavaType(name, "set", args=(OBJECT,))
    if name in _MAPS or name in _TYPED_MAPS:
        return JavaType(name, "map", args=(OBJECT, OBJECT))
    if not _valid_class_name(name):
        raise HessianError(f"not a Java type name: {name!r}")
    return JavaType(name, "class")


#: the ASCII class names (nearly all): the same rule as below in one regex match
_ASCII_CLASS_NAME = re.compile(r"[A-Za-z_$][A-Za-z0-9_$]*(?:\.[A-Za-z_$][A-Za-z0-9_$]*)*")


def _valid_class_name(name: str) -> bool:
    """Dot-separated Java identifiers (letters, digits, ``_``, ``$``; Unicode letters too)."""
    if _ASCII_CLASS_NAME.fullmatch(name) is not None:
        return True
    return (
        bool(name)
        and not name.isascii()
        and all(
            part
            and (part[0].isalpha() or part[0] in "_$")
            and all(c.isalnum() or c in "_$" for c in part)
            for part in name.split(".")
        )
    )


OBJECT = JavaType("java.lang.Object", "object")
STRING = JavaType("java.lang.String", "string")


def array_of(t: JavaType) -> JavaType:
    if t.kind == "byte":
        return JavaType("byte[]", "bytes")
    return JavaType(t.generic_name() + "[]", "array", args=(t,))


#: generic parameters and array dimensions one type name may nest (type hints are
#: client input: 10,000 levels would otherwise be a RecursionError, i.e. a 500)
MAX_TYPE_DEPTH = 64


def parse_type(text: str, _depth: int = 0) -> JavaType:
    """Parse one type: ``int``, ``java.lang.String[]``, ``[I``, ``[Ljava.lang.String;``,
    ``java.util.Map<String, java.util.List<Long>>``, ``com.x.User``."""
    text = text.strip()
    if not text:
        raise HessianError("empty Java type name")
    if _depth > MAX_TYPE_DEPTH:
        raise HessianError(f"type nested deeper than {MAX_TYPE_DEPTH} levels")
    if text.startswith("["):
        try:
            t, rest = _parse_descriptor_one(text.replace(".", "/"), 0)
        except (IndexError, HessianError):
            raise HessianError(f"bad array type name: {text!r}") from None
        if rest != len(text):
            raise HessianError(f"bad array type name: {text!r}")
        return t
    if text.endswith("[]"):
        return array_of(parse_type(text[:-2], _depth + 1))
    lt = text.find("<")
    if lt < 0:
        return _simple(text)
    if not text.endswith(">"):
        raise HessianError(f"bad generic type: {text!r}")
    base = _simple(text[:lt].strip())
    params = [parse_type(p, _depth + 1) for p in _split_params(text[lt + 1 : -1])]
    if base.kind in ("list", "set"):
        if len(params) != 1:
            raise HessianError(f"{base.name} takes one type parameter: {text!r}")
        return JavaType(base.name, base.kind, args=tuple(params))
    if base.kind == "map":
        if len(params) != 2:
            raise HessianError(f"{base.name} takes two type parameters: {text!r}")
        return JavaType(base.name, "map", args=tuple(params))
    return base  # generic POJOs: parameters are erased on the wire


def _split_params(text: str) -> list[str]:
    out, depth, start = [], 0, 0
    for i, c in enumerate(text):
        if c == "<":
            depth += 1
        elif c == ">":
            depth -= 1
        elif c == "," and depth == 0:
            out.append(text[start:i])
            start = i + 1
    out.append(text[start:])
    if depth != 0 or any(not p.strip() for p in out):
        raise HessianError(f"bad type parameters: {text!r}")
    return out


def _parse_descriptor_one(desc: str, i: int, _depth: int = 0) -> tuple[JavaType, int]:
    c = desc[i]
    if c == "[":
        if _depth >= MAX_TYPE_DEPTH:
            raise HessianError(f"array type nested deeper than {MAX_TYPE_DEPTH} levels")
        elem, j = _parse_descriptor_one(desc, i + 1, _depth + 1)
        return array_of(elem), j
    if c == "L":
        j = desc.find(";", i)
        if j < 0:
            raise HessianError(f"unterminated class in descriptor {desc!r}")
        return _simple(desc[i + 1 : j].replace("/", ".")), j + 1
    prim = _DESC_TO_PRIMITIVE.get(c)
    if prim is None or prim == "void":
        raise HessianError(f"bad descriptor character {c!r} in {desc!r}")
    return JavaType(prim, prim, prim), i + 1


def parse_descriptor(desc: str) -> list[JavaType]:
    """``Ljava/lang/String;IJ`` or ``(Ljava/lang/String;IJ)V`` -> parameter types."""
    if desc.startswith("("):
        close = desc.find(")")
        if close < 0:
            raise HessianError(f"bad method descriptor {desc!r}")
        desc = desc[1:close]
    out, i = [], 0
    try:
        while i < len(desc):
            t, i = _parse_descriptor_one(desc, i)
            out.append(t)
    except IndexError:
        raise HessianError(f"truncated descriptor {desc!r}") from None
    return out


def parse_types(spec: str | list[str] | None) -> list[JavaType]:
    """A signature given either as a descriptor or as type names (list or comma-separated)."""
    if spec is None:
        return []
    if isinstance(spec, list):
        return [parse_type(s) for s in spec]
    spec = spec.strip()
    if not spec or spec == "()":
        return []
    if spec.startswith("(") or (";" in spec and "<" not in spec) or _looks_like_descriptor(spec):
        return parse_descriptor(spec)
    return [parse_type(s) for s in _split_params(spec)]


def _looks_like_descriptor(spec: str) -> bool:
    return all(c in "ZBCDFIJS[" for c in spec) and spec not in ("", "[")


def descriptor_of(types: list[JavaType]) -> str:
    return "".join(t.descriptor() for t in types)


@dataclass
class PojoDef:
    """A Java class as the provider declares it: field names and types in order."""

    name: str
    fields: list[tuple[str, JavaType]] = field(default_factory=list)
    enum_constants: list[str] | None = None

    @property
    def is_enum(self) -> bool:
        return self.enum_constants is not None

    @cached_property
    def field_names(self) -> frozenset[str]:
        """The declared field names, computed once: ``fields`` is complete when the
        definition is made (config, metadata) and never changes after."""
        return frozenset(name for name, _ in self.fields)


class TypeRegistry:
    """Known POJOs and enums (from config or Dubbo metadata) keyed by class name."""

    def __init__(self, defs: list[PojoDef] | None = None) -> None:
        self.defs: dict[str, PojoDef] = {}
        for d in defs or ():
            self.add(d)

    def add(self, d: PojoDef) -> None:
        self.defs[d.name] = d

    def get(self, name: str) -> PojoDef | None:
        return self.defs.get(name)


EMPTY_REGISTRY = TypeRegistry()


# ---- coercion ------------------------------------------------------------------------------


def _to_int(value: Any, t: JavaType, path: str, lo: int, hi: int) -> int:
    if type(value) is bool:
        raise JavaTypeError(path, t.name, value)
    if isinstance(value, int):
        v = int(value)
    elif isinstance(value, float) and value.is_integer():
        # 1e25 is exactly 10**25 in JSON; int(1e25) would be the binary neighbour instead
        v = int(Decimal(repr(value)))
    elif isinstance(value, str):
        try:
            v = int(value.strip())
        except ValueError:
            raise JavaTypeError(path, t.name, value) from None
    elif isinstance(value, Decimal) and value == value.to_integral_value():
        v = int(value)
    else:
        raise JavaTypeError(path, t.name, value)
    if not lo <= v <= hi:
        raise JavaTypeError(path, t.name, value, f"out of range {lo}..{hi}")
    return v


def _to_float(value: Any, t: JavaType, path: str) -> float:
    if type(value) is bool:
        raise JavaTypeError(path, t.name, value)
    if isinstance(value, (int, float, Decimal)):
        return float(value)
    if isinstance(value, str):
        try:
            return float(value)
        except ValueError:
            raise JavaTypeError(path, t.name, value) from None
    raise JavaTypeError(path, t.name, value)


def java_float(v: float) -> float:
    """Round to float32, then take the shortest decimal that names it, as
    hessian-lite writes ``Double.parseDouble(String.valueOf(f))``."""
    try:
        f32: float = struct.unpack(">f", struct.pack(">f", v))[0]
    except OverflowError:
        raise HessianError(f"{v} does not fit a Java float") from None
    if f32 != f32 or f32 in (float("inf"), float("-inf")):
        return f32
    for digits in range(1, 10):
        s = f"{f32:.{digits}g}"
        if struct.unpack(">f", struct.pack(">f", float(s)))[0] == f32:
            return float(s)
    return f32


def _parse_datetime(value: Any, t: JavaType, path: str) -> _dt.datetime:
    if isinstance(value, _dt.datetime):
        return value if value.tzinfo else value.replace(tzinfo=_dt.UTC)
    if isinstance(value, int) and type(value) is not bool:
        return _dt.datetime(1970, 1, 1, tzinfo=_dt.UTC) + _dt.timedelta(milliseconds=value)
    if isinstance(value, str):
        try:
            d = _dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            raise JavaTypeError(path, t.name, value, "ISO-8601 or epoch ms") from None
        return d if d.tzinfo else d.replace(tzinfo=_dt.UTC)
    raise JavaTypeError(path, t.name, value, "ISO-8601 or epoch ms")


def _b64(value: Any, t: JavaType, path: str) -> bytes:
    if isinstance(value, (bytes, bytearray)):
        return bytes(value)
    if isinstance(value, str):
        try:
            return base64.b64decode(value, validate=True)
        except (binascii.Error, ValueError):
            raise JavaTypeError(path, "byte[]", value, "base64") from None
    if isinstance(value, list):
        return bytes(_to_int(b, t, f"{path}[{i}]", -128, 255) & 0xFF for i, b in enumerate(value))
    raise JavaTypeError(path, "byte[]", value, "base64 string or list of numbers")


#: Kinds whose class-tagged JSON form is ``{"class": NAME, "value": V}``: Java value
#: classes (hessian-lite realizes them with dedicated (de)serializers, or they are scalars)
#: and collections.  Maps and POJOs carry their entries/fields beside ``class`` instead.
_VALUE_KINDS = frozenset(
    {*PRIMITIVES, "boxed", "string", "bigdecimal", "biginteger", "date", "sqldate", "uuid"}
    | {"locale", "jclass", "localdate", "localtime", "localdatetime", "instant", "bytes"}
    | {"jtime", "array", "list", "set"}
)


def infer(value: Any, path: str, generic: bool, reg: TypeRegistry) -> Any:
    """No declared type (an ``Object`` slot, an untyped POJO field, a ``Map`` value): the
    README's inference rules, which never look at the *content* of a string.

    * integers: ``int`` when they fit 32 bits, ``long`` when 64, else ``BigInteger``;
    * other numbers (``float``, and the ``Decimal`` that exact JSON parsing gives for
      literals a double cannot hold): ``double``, rounded to the nearest double — an
      untyped decimal is never guessed to be a ``BigDecimal``;
    * a JSON object with ``"class"``: that Java class.  For a value class (``BigDecimal``,
      ``java.sql.Timestamp``, ``Long`` ...) the object is ``{"class", "value"}`` and the Java
      object itself goes on the wire even in a generic call, because no declared type on
      the provider will convert it there.
    """
    if value is None or isinstance(value, (str, bool, float, bytes)):
        return value
    if isinstance(value, int):
        return value  # int if it fits 32 bits, long if 64, else BigInteger (encoder's rule)
    if isinstance(value, Decimal):
        f = float(value)
        if f in (float("inf"), float("-inf")) or f != f:
            raise JavaTypeError(
                path,
                "java.lang.Double",
                value,
                "too large for a double; give the type, e.g. "
                '{"class": "java.math.BigDecimal", "value": "..."}',
            )
        return f
    if isinstance(value, list):
        return [infer(v, f"{path}[{i}]", generic, reg) for i, v in enumerate(value)]
    if isinstance(value, dict):
        cls = value.get("class")
        if isinstance(cls, str) and cls:
            try:
                t = parse_type(cls)
            except HessianError:
                raise JavaTypeError(f"{path}.class", "a Java class name", cls) from None
            if t.kind in _VALUE_KINDS:
                return coerce(value, t, path, generic=False, registry=reg)
            return coerce(value, t, path, generic=generic, registry=reg)
        return {k: infer(v, f"{path}.{k}", generic, reg) for k, v in value.items()}
    return value


def _untag(value: dict[str, Any], t: JavaType, path: str) -> Any:
    """``{"class": "java.math.BigDecimal", "value": "12.50"}`` in a slot of type ``t``: the
    inner value, after checking that the tag names ``t`` (or its boxed/primitive twin)."""
    cls = value.get("class")
    try:
        tagged = parse_type(cls) if isinstance(cls, str) else None
    except HessianError:
        tagged = None
    if tagged is None:
        raise JavaTypeError(f"{path}.class", "a Java class name", cls)
    same = tagged.name == t.name or (
        tagged.kind in ("boxed", *PRIMITIVES) and (tagged.prim or tagged.kind) == (t.prim or t.kind)
    )
    if not same:
        raise JavaTypeError(path, str(t), value, f"class {cls} does not fit a {t} slot")
    if set(value) != {"class", "value"}:
        raise JavaTypeError(
            path, str(t), value, f'a {tagged.name} is written {{"class": "{cls}", "value": ...}}'
        )
    return value["value"]


def coerce(
    value: Any,
    t: JavaType,
    path: str = "value",
    *,
    generic: bool = False,
    registry: TypeRegistry = EMPTY_REGISTRY,
) -> Any:
    """Turn a JSON-like value into the hessian value Java expects for type ``t``."""
    k = t.kind
    if value is None:
        if k in PRIMITIVES:
            raise JavaTypeError(path, t.name, value, "primitive cannot be null")
        return None
    if type(value) is dict and k in _VALUE_KINDS and "class" in value:
        value = _untag(value, t, path)
        if value is None:
            return coerce(None, t, path, generic=generic, registry=registry)
    if k == "boxed":
        k = t.prim or "object"
    if k == "int" or k == "short" or k == "byte":
        lo, hi = _INT_RANGES[k]
        return Int(_to_int(value, t, path, lo, hi))
    if k == "long":
        return Long(_to_int(value, t, path, *_LONG_RANGE))
    if k == "string":
        if isinstance(value, str):
            return value
        raise JavaTypeError(path, t.name, value)
    if k == "boolean":
        if isinstance(value, bool):
            return value
        if value in ("true", "false"):
            return value == "true"
        raise JavaTypeError(path, t.name, value)
    if k == "double":
        return _to_float(value, t, path)
    if k == "float":
        try:
            return java_float(_to_float(value, t, path))
        except JavaTypeError:
            raise
        except HessianError as e:
            raise JavaTypeError(path, t.name, value, str(e)) from None
    if k == "char":
        if isinstance(value, str) and len(value) == 1 and ord(value) <= 0xFFFF:
            return value
        raise JavaTypeError(path, t.name, value, "one UTF-16 character")
    if k == "object":
        return infer(value, path, generic, registry)
    if k == "bigdecimal":
        if type(value) is bool:
            raise JavaTypeError(path, t.name, value)
        try:
            d = Decimal(repr(value) if isinstance(value, float) else str(value).strip())
        except InvalidOperation:
            raise JavaTypeError(path, t.name, value, "a decimal number") from None
        if not d.is_finite():
            raise JavaTypeError(path, t.name, value, "a finite decimal")
        return d
    if k == "biginteger":
        v = _to_int(value, t, path, -(2**4096), 2**4096)
        return str(v) if generic else big_integer(v)
    if k == "date":
        return _parse_datetime(value, t, path)
    if k == "sqldate":
        # hessian-lite's SqlDateSerializer: an object of the class with one date field
        # ``value``; a bare hessian date would reach Java as a java.util.Date
        return HessianObject(t.name, {"value": _parse_datetime(value, t, path)})
    if k == "uuid":
        try:
            u = _uuid.UUID(value) if isinstance(value, str) else None
        except ValueError:
            u = None
        if u is None:
            raise JavaTypeError(path, t.name, value, "a UUID string")
        return HessianObject("java.util.UUID", {"value": str(u)})  # StringValueSerializer
    if k == "locale":
        if not isinstance(value, str) or not all(c.isalnum() or c in "_-#" for c in value):
            raise JavaTypeError(path, t.name, value, "a locale such as en_US")
        return HessianObject(_LOCALE_HANDLE, {"value": value.replace("-", "_")})
    if k == "jclass":
        if not isinstance(value, str):
            raise JavaTypeError(path, t.name, value, "a class name")
        try:
            parse_type(value)
        except HessianError:
            raise JavaTypeError(path, t.name, value, "a class name") from None
        return value if generic else HessianObject("java.lang.Class", {"name": value})
    if k in ("localdate", "localtime", "localdatetime", "instant"):
        return _java_time(value, t, path, generic)
    if k == "jtime":
        return _other_java_time(value, t, path)
    if k == "bytes":
        return _b64(value, t, path)
    if k == "array" or k == "list" or k == "set":
        if isinstance(value, (str, dict)) or not isinstance(value, (list, tuple, set)):
            raise JavaTypeError(path, str(t), value, "a JSON array")
        et = t.element
        items = []
        for i, v in enumerate(value):
            x = _as_is(v, et)
            items.append(
                x
                if x is not _NO
                else coerce(v, et, f"{path}[{i}]", generic=generic, registry=registry)
            )
        if k == "array":
            return TypedList(_array_type_name(et), items)
        if k == "set" or t.name in _TYPED_COLLECTIONS:
            return TypedList("java.util.HashSet" if t.name in _SETS else t.name, items)
        return items
    if k == "map":
        if not isinstance(value, dict):
            raise JavaTypeError(path, str(t), value, "a JSON object")
        kt, vt = t.args if len(t.args) == 2 else (OBJECT, OBJECT)
        name = t.name
        if "class" in value and kt.kind in ("object", "string"):
            # {"class": "java.util.LinkedHashMap", "a": 1}: the tag picks the map class
            tagged = _tagged_map(value["class"])
            if tagged is not None:
                value = {key: v for key, v in value.items() if key != "class"}
                name = tagged if tagged in _TYPED_MAPS or name not in _TYPED_MAPS else name
        out: dict[Any, Any] = {}
        plain_keys = kt.kind == "object" or kt.kind == "string"
        for key, v in value.items():
            ck = key if plain_keys else _coerce_key(key, kt, f"{path}.{key}", generic, registry)
            x = _as_is(v, vt)
            out[ck] = (
                x
                if x is not _NO
                else coerce(v, vt, f"{path}.{key}", generic=generic, registry=registry)
            )
        if name in _TYPED_MAPS and not generic:
            return TypedMap(name, out)
        return out
    if k == "class":
        return _coerce_class(value, t, path, generic, registry)
    raise JavaTypeError(path, str(t), value, f"unsupported Java type kind {k}")


#: ``_as_is``'s "no": the value needs ``coerce`` (a conversion, a check with a path, a container)
_NO: Any = object()
_INT_MIN, _INT_MAX = _INT_RANGES["int"]
_LONG_MIN, _LONG_MAX = _LONG_RANGE


def _as_is(value: Any, t: JavaType) -> Any:
    """What ``coerce`` returns for the commonest element or field: a JSON value that already
    has its Java type's own JSON type (a string for a ``String``, an in-range integer for an
    ``int`` / ``long``, a bool for a ``boolean``, a float for a ``double``, boxed or not; any
    of those four for an ``Object``);
    ``_NO`` for anything else.  It exists for speed: the caller then builds no path string
    and makes no call through ``coerce``'s dispatch (POJO fields and list elements ~1.7x
    faster); the property tests check it never disagrees with ``coerce``."""
    vt = type(value)
    k = t.kind if t.kind != "boxed" else t.prim
    if k == "object":  # ``infer`` keeps these four as they are
        return value if vt is str or vt is int or vt is bool or vt is float else _NO
    if vt is str:
        return value if k == "string" else _NO
    if vt is int:
        if k == "int":
            return Int(value) if _INT_MIN <= value <= _INT_MAX else _NO
        if k == "long":
            return Long(value) if _LONG_MIN <= value <= _LONG_MAX else _NO
        return _NO
    if vt is bool:
        return value if k == "boolean" else _NO
    if vt is float:
        return value if k == "double" else _NO
    return _NO


def _tagged_map(cls: Any) -> str | None:
    """The map class a ``"class"`` entry names, or None when it names none (then it is an
    ordinary key)."""
    if not isinstance(cls, str):
        return None
    try:
        t = parse_type(cls)
    except HessianError:
        return None
    return t.name if t.kind == "map" else None


def _coerce_key(key: Any, kt: JavaType, path: str, generic: bool, reg: TypeRegistry) -> Any:
    if kt.kind == "object" or kt.kind == "string":
        return key
    v = coerce(key, kt, path, generic=generic, registry=reg)
    if isinstance(v, (list, dict)):
        raise JavaTypeError(path, str(kt), key, "map keys must be scalar")
    return v


def _array_type_name(et: JavaType) -> str:
    """Hessian's array type string, as Caucho's ArraySerializer spells it."""
    return "[" + _component_name(et)


def _component_name(t: JavaType) -> str:
    if t.kind == "array":
        return "[" + _component_name(t.element)
    if t.kind == "bytes":
        return "[byte"
    return {
        "java.lang.String": "string",
        "java.lang.Object": "object",
        "java.util.Date": "date",
    }.get(t.name, t.name)


def _java_time(value: Any, t: JavaType, path: str, generic: bool) -> Any:
    if not isinstance(value, str):
        raise JavaTypeError(path, t.name, value, "an ISO-8601 string")
    try:
        if t.kind == "localdate":
            d = _dt.date.fromisoformat(value)
            fields: dict[str, Any] = {"year": Int(d.year), "month": Int(d.month), "day": Int(d.day)}
            handle = "LocalDateHandle"
        elif t.kind == "localtime":
            tm = _dt.time.fromisoformat(value)
            fields = _time_fields(tm)
            handle = "LocalTimeHandle"
        elif t.kind == "localdatetime":
            dt = _dt.datetime.fromisoformat(value)
            if dt.tzinfo is not None:
                raise ValueError("LocalDateTime has no zone")
            date = HessianObject(
                _HL + "LocalDateHandle",
                {"year": Int(dt.year), "month": Int(dt.month), "day": Int(dt.day)},
            )
            time = HessianObject(_HL + "LocalTimeHandle", _time_fields(dt.time()))
            fields = {"date": date, "time": time}
            handle = "LocalDateTimeHandle"
        else:
            dt = _parse_datetime(value, t, path)
            epoch = _dt.datetime(1970, 1, 1, tzinfo=_dt.UTC)
            delta = dt - epoch
            secs = delta.days * 86400 + delta.seconds
            if generic:
                return dt.astimezone(_dt.UTC).isoformat().replace("+00:00", "Z")
            fields = {"seconds": Long(secs), "nanos": Int(delta.microseconds * 1000)}
            handle = "InstantHandle"
    except ValueError as e:
        raise JavaTypeError(path, t.name, value, str(e)) from None
    if generic:
        return value
    return HessianObject(_HL + handle, fields)


# ---- the other java.time classes -----------------------------------------------------------
# hessian-lite writes each through a ``java8.*Handle`` (writeReplace); its readResolve
# rebuilds the value.  PojoUtils.realize converts no String to these, so the handle is the
# wire form in generic calls too.  JSON in: the class's own ``toString()`` (ISO-8601).

_DURATION = re.compile(
    r"([-+]?)P(?:([-+]?\d+)D)?(?:T(?:([-+]?\d+)H)?(?:([-+]?\d+)M)?(?:([-+]?\d+)(?:[.,](\d{0,9}))?S)?)?",
    re.IGNORECASE,
)
_PERIOD = re.compile(
    r"([-+]?)P(?:([-+]?\d+)Y)?(?:([-+]?\d+)M)?(?:([-+]?\d+)W)?(?:([-+]?\d+)D)?", re.IGNORECASE
)


def _ldt_handle(d: _dt.datetime) -> HessianObject:
    date = HessianObject(
        _HL + "LocalDateHandle", {"year": Int(d.year), "month": Int(d.month), "day": Int(d.day)}
    )
    time = HessianObject(_HL + "LocalTimeHandle", _time_fields(d.time()))
    return HessianObject(_HL + "LocalDateTimeHandle", {"date": date, "time": time})


def _offset_handle(tz: _dt.tzinfo | None, at: _dt.datetime | None = None) -> HessianObject:
    off = tz.utcoffset(at) if tz is not None else None
    if off is None:
        raise ValueError("an offset such as +08:00 or Z is required")
    return HessianObject(_HL + "ZoneOffsetHandle", {"seconds": Int(int(off.total_seconds()))})


def _offset_id(text: str) -> _dt.timezone:
    if text.upper() == "Z":
        return _dt.UTC
    d = _dt.datetime.fromisoformat("2000-01-01T00:00:00" + text)
    assert d.tzinfo is not None
    return d.tzinfo  # type: ignore[return-value]


def _zoned(text: str) -> HessianObject:
    """``2024-01-02T03:04:05+08:00[Asia/Shanghai]`` (ZonedDateTime.toString), or without
    the offset (taken from the zone) or without the zone (the offset is the zone)."""
    import zoneinfo

    stamp, _, zone = text.partition("[")
    zone = zone.rstrip("]")
    d = _dt.datetime.fromisoformat(stamp.replace("Z", "+00:00"))
    if zone:
        try:
            tz: _dt.tzinfo = zoneinfo.ZoneInfo(zone)
        except (zoneinfo.ZoneInfoNotFoundError, ValueError):
            tz = _offset_id(zone)  # "UTC+8"-style ids are not parsed: a ValueError
        if d.tzinfo is None:
            d = d.replace(tzinfo=tz)
    elif d.tzinfo is None:
        raise ValueError("a zone or an offset is required")
    else:
        zone = "Z" if d.utcoffset() == _dt.timedelta(0) else stamp[-6:]
    return HessianObject(
        _HL + "ZonedDateTimeHandle",
        {"dateTime": _ldt_handle(d), "offset": _offset_handle(d.tzinfo, d), "zoneId": zone},
    )


def _offset_dt(text: str) -> HessianObject:
    d = _dt.datetime.fromisoformat(text.replace("Z", "+00:00"))
    return HessianObject(
        _HL + "OffsetDateTimeHandle",
        {"dateTime": _ldt_handle(d), "offset": _offset_handle(d.tzinfo, d)},
    )


def _offset_time(text: str) -> HessianObject:
    tm = _dt.time.fromisoformat(text.replace("Z", "+00:00"))
    local = HessianObject(_HL + "LocalTimeHandle", _time_fields(tm))
    return HessianObject(
        _HL + "OffsetTimeHandle", {"localTime": local, "zoneOffset": _offset_handle(tm.tzinfo)}
    )


def _duration(text: str) -> HessianObject:
    m = _DURATION.fullmatch(text)
    if m is None or not any(m.group(i) for i in range(2, 6)):
        raise ValueError("ISO-8601 duration such as PT8H6M12.345S")
    sign = -1 if m.group(1) == "-" else 1
    d, h, mi, s = (int(m.group(i) or 0) for i in range(2, 6))
    frac = m.group(6) or ""
    nanos = int(frac.ljust(9, "0")) if frac else 0
    if m.group(5) and m.group(5).startswith("-"):
        nanos = -nanos
    total = sign * ((d * 86400 + h * 3600 + mi * 60 + s) * 10**9 + nanos)
    secs, nano = divmod(total, 10**9)
    return HessianObject(_HL + "DurationHandle", {"seconds": Long(secs), "nanos": Int(nano)})


def _period(text: str) -> HessianObject:
    m = _PERIOD.fullmatch(text)
    if m is None or not any(m.group(i) for i in range(2, 6)):
        raise ValueError("ISO-8601 period such as P1Y2M3D")
    sign = -1 if m.group(1) == "-" else 1
    y, mo, w, d = (sign * int(m.group(i) or 0) for i in range(2, 6))
    fields = {"years": Int(y), "months": Int(mo), "days": Int(d + 7 * w)}
    return HessianObject(_HL + "PeriodHandle", fields)


def _year(text: str) -> HessianObject:
    return HessianObject(_HL + "YearHandle", {"year": Int(int(text))})


def _year_month(text: str) -> HessianObject:
    y, _, mo = text.rpartition("-")
    d = _dt.date(int(y), int(mo), 1)
    return HessianObject(_HL + "YearMonthHandle", {"year": Int(d.year), "month": Int(d.month)})


def _month_day(text: str) -> HessianObject:
    if not text.startswith("--"):
        raise ValueError("--MM-DD")
    mo, _, day = text[2:].partition("-")
    d = _dt.date(2000, int(mo), int(day))  # a leap year: --02-29 is a MonthDay
    return HessianObject(_HL + "MonthDayHandle", {"month": Int(d.month), "day": Int(d.day)})


def _zone_offset(text: str) -> HessianObject:
    return _offset_handle(_offset_id(text))


def _zone_id(text: str) -> HessianObject:
    import zoneinfo

    try:
        zoneinfo.ZoneInfo(text)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        try:
            _offset_id(text)  # an offset id ("+08:00", "Z") is a ZoneId too
        except ValueError:
            raise ValueError("a zone id such as Asia/Shanghai or +08:00") from None
    return HessianObject(_HL + "ZoneIdHandle", {"zoneId": text})


_JTIME_HANDLES: dict[str, Callable[[str], HessianObject]] = {  # same keys as _JTIME_CLASSES
    "java.time.ZonedDateTime": _zoned,
    "java.time.OffsetDateTime": _offset_dt,
    "java.time.OffsetTime": _offset_time,
    "java.time.Duration": _duration,
    "java.time.Period": _period,
    "java.time.Year": _year,
    "java.time.YearMonth": _year_month,
    "java.time.MonthDay": _month_day,
    "java.time.ZoneOffset": _zone_offset,
    "java.time.ZoneId": _zone_id,
}


def _other_java_time(value: Any, t: JavaType, path: str) -> HessianObject:
    if type(value) is int and t.name == "java.time.Year":
        value = str(value)
    if not isinstance(value, str):
        raise JavaTypeError(path, t.name, value, "an ISO-8601 string")
    try:
        return _JTIME_HANDLES[t.name](value.strip())
    except (ValueError, KeyError, AssertionError) as e:
        raise JavaTypeError(path, t.name, value, str(e) or "ISO-8601") from None


def _time_fields(tm: _dt.time) -> dict[str, Any]:
    return {
        "hour": Int(tm.hour),
        "minute": Int(tm.minute),
        "second": Int(tm.second),
        "nano": Int(tm.microsecond * 1000),
    }


def _coerce_class(value: Any, t: JavaType, path: str, generic: bool, reg: TypeRegistry) -> Any:
    d = reg.get(t.name)
    if d is not None and d.is_enum:
        name = value.get("name") if isinstance(value, dict) else value
        if not isinstance(name, str):
            raise JavaTypeError(path, f"enum {t.name}", value, "constant name")
        if d.enum_constants and name not in d.enum_constants:
            raise JavaTypeError(
                path, f"enum {t.name}", value, "one of " + ", ".join(d.enum_constants)
            )
        return name if generic else HessianObject(t.name, {"name": name})
    if isinstance(value, str) and d is None:
        # An unknown class given a string: most likely an enum constant.
        return value if generic else HessianObject(t.name, {"name": value})
    if not isinstance(value, dict):
        raise JavaTypeError(path, t.name, value, "a JSON object")
    cls = value.get("class", t.name)
    if cls != t.name:  # t.name was checked when the type was parsed
        if not isinstance(cls, str) or not _valid_class_name(cls):
            raise JavaTypeError(f"{path}.class", "a Java class name", cls)
        sub = reg.get(cls)
        if sub is not None:
            d = sub
    fields: dict[str, Any] = {}
    if d is not None:
        declared = d.field_names
        for key in value:
            if key != "class" and key not in declared:
                raise JavaTypeError(
                    f"{path}.{key}", f"a field of {d.name}", value[key], "unknown field"
                )
        for fname, ftype in d.fields:
            if fname in value:
                v = value[fname]
                x = _as_is(v, ftype)
                fields[fname] = (
                    x
                    if x is not _NO
                    else coerce(v, ftype, f"{path}.{fname}", generic=generic, registry=reg)
                )
            elif not generic:
                fields[fname] = _default_for(ftype)
    else:
        for key, v in value.items():
            if key != "class":
                fields[key] = infer(v, f"{path}.{key}", generic, reg)
    if generic:
        return {"class": cls, **fields}
    return HessianObject(cls, fields)


def _default_for(t: JavaType) -> Any:
    return {
        "int": Int(0),
        "short": Int(0),
        "byte": Int(0),
        "long": Long(0),
        "double": 0.0,
        "float": 0.0,
        "boolean": False,
        "char": "\x00",
    }.get(t.kind)
