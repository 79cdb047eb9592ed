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
import struct
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from typing import Any

from .values import HessianError, HessianObject, Int, Long, TypedList

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
_INT_RANGES = {"byte": (-128, 127), "short": (-32768, 32767), "int": (-(2**31), 2**31 - 1)}
_LONG_RANGE = (-(2**63), 2**63 - 1)


class JavaTypeError(HessianError):
    """A value that does not fit its Java type; ``path`` says where (``args[1].name``)."""

    def __init__(self, path: str, expected: str, value: Any, detail: str = "") -> None:
        shown = repr(value)
        if len(shown) > 60:
            shown = shown[:57] + "..."
        msg = f"{path}: expected {expected}, got {shown}"
        if detail:
            msg += f" ({detail})"
        super().__init__(msg)
        self.path = path
        self.expected = expected


@dataclass(frozen=True, slots=True)
class JavaType:
    """A parsed Java type.

    ``kind`` is one of: a primitive name; ``boxed`` (nullable primitive, ``prim`` says
    which); ``string``, ``object``, ``bigdecimal``, ``biginteger``, ``date``, ``localdate``,
    ``localtime``, ``localdatetime``, ``instant``, ``bytes`` (``byte[]``), ``array``,
    ``list``, ``set``, ``map``, ``class`` (POJO or enum, resolved via a ``TypeRegistry``).
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
    kind = {
        "java.lang.String": "string",
        "java.lang.CharSequence": "string",
        "java.lang.Object": "object",
        "java.io.Serializable": "object",
        "java.lang.Number": "object",
        "java.math.BigDecimal": "bigdecimal",
        "java.math.BigInteger": "biginteger",
        "java.util.Date": "date",
        "java.sql.Timestamp": "date",
        "java.time.LocalDate": "localdate",
        "java.time.LocalTime": "localtime",
        "java.time.LocalDateTime": "localdatetime",
        "java.time.Instant": "instant",
    }.get(name)
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


def _valid_class_name(name: str) -> bool:
    return bool(name) and all(
        part
        and (part[0].isalpha() or part[0] in "_$")
        and all(c.isalnum() or c in "_$" for c in part)
        for part in name.split(".")
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
    if isinstance(value, int) or (isinstance(value, float) and value.is_integer()):
        v = int(value)
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
        f32 = struct.unpack(">f", struct.pack(">f", v))[0]
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


def infer(value: Any, path: str, generic: bool, reg: TypeRegistry) -> Any:
    """No declared type: the README's inference rules."""
    if value is None or isinstance(value, (str, bool, float, bytes)):
        return value
    if isinstance(value, int):
        return value  # int if it fits 32 bits, else long (encoder's rule)
    if isinstance(value, list):
        return [infer(v, f"{path}[{i}]", generic, reg) for i, v in enumerate(value)]
    if isinstance(value, dict):
        cls = value.get("class")
        if isinstance(cls, str) and cls:
            return coerce(value, _simple(cls), path, generic=generic, registry=reg)
        return {k: infer(v, f"{path}.{k}", generic, reg) for k, v in value.items()}
    return value


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
        if generic:
            return str(v)
        mag: list[int] = []
        a = abs(v)
        while a:
            w = a & 0xFFFFFFFF
            mag.append(w - (1 << 32) if w >= 1 << 31 else w)
            a >>= 32
        mag.reverse()
        return HessianObject(
            "java.math.BigInteger",
            {"signum": Int((v > 0) - (v < 0)), "mag": TypedList("[int", [Int(m) for m in mag])},
        )
    if k == "date":
        return _parse_datetime(value, t, path)
    if k in ("localdate", "localtime", "localdatetime", "instant"):
        return _java_time(value, t, path, generic)
    if k == "bytes":
        return _b64(value, t, path)
    if k == "array" or k == "list" or k == "set":
        if isinstance(value, (str, dict)) or not isinstance(value, (list, tuple, set)):
            raise JavaTypeError(path, str(t), value, "a JSON array")
        et = t.element
        items = [
            coerce(v, et, f"{path}[{i}]", generic=generic, registry=registry)
            for i, v in enumerate(value)
        ]
        if k == "array":
            return TypedList(_array_type_name(et), items)
        if k == "set" or t.name in _TYPED_COLLECTIONS:
            return TypedList("java.util.HashSet" if t.name in _SETS else t.name, items)
        return items
    if k == "map":
        if not isinstance(value, dict):
            raise JavaTypeError(path, str(t), value, "a JSON object")
        kt, vt = t.args if len(t.args) == 2 else (OBJECT, OBJECT)
        out: dict = {}
        for key, v in value.items():
            ck = _coerce_key(key, kt, f"{path}.{key}", generic, registry)
            out[ck] = coerce(v, vt, f"{path}.{key}", generic=generic, registry=registry)
        if t.name in _TYPED_MAPS and not generic:
            from .values import TypedMap

            return TypedMap(t.name, out)
        return out
    if k == "class":
        return _coerce_class(value, t, path, generic, registry)
    raise JavaTypeError(path, str(t), value, f"unsupported Java type kind {k}")


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
            fields = {"year": Int(d.year), "month": Int(d.month), "day": Int(d.day)}
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
    if not isinstance(cls, str) or not _valid_class_name(cls):
        raise JavaTypeError(f"{path}.class", "a Java class name", cls)
    if cls != t.name:
        sub = reg.get(cls)
        if sub is not None:
            d = sub
    fields: dict[str, Any] = {}
    if d is not None:
        declared = dict(d.fields)
        for key in value:
            if key != "class" and key not in declared:
                raise JavaTypeError(
                    f"{path}.{key}", f"a field of {d.name}", value[key], "unknown field"
                )
        for fname, ftype in d.fields:
            if fname in value:
                fields[fname] = coerce(
                    value[fname], ftype, f"{path}.{fname}", generic=generic, registry=reg
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
