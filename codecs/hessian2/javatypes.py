"""The Java type model: type names and JVM descriptors parsed into ``JavaType`` objects.

JSON has one number type and Java has six; guessing ``int`` vs ``long`` silently is the bug
users of other gateways report most.  Here a signature (JVM descriptor such as
``Ljava/lang/String;IJ``, or type names such as ``java.util.List<java.lang.Long>``) becomes
``JavaType`` objects, whose ``kind`` says which Java type a JSON-like value must become on
the wire; ``PojoDef`` / ``TypeRegistry`` hold the POJOs and enums a provider declares.
Turning a JSON value into that type is ``coercion.py``'s job (the java.time classes'
ISO-8601 forms: ``javatime.py``).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from functools import cached_property

from .values import HessianError

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
SETS = {"java.util.Set", "java.util.HashSet"}
TYPED_COLLECTIONS = {"java.util.LinkedList", "java.util.LinkedHashSet", "java.util.TreeSet"}
_MAPS = {"java.util.Map", "java.util.HashMap"}
TYPED_MAPS = {
    "java.util.LinkedHashMap",
    "java.util.TreeMap",
    "java.util.SortedMap",
    "java.util.concurrent.ConcurrentHashMap",
}
#: the java.time classes other than LocalDate/LocalTime/LocalDateTime/Instant: one kind,
#: a parser each (``javatime._JTIME_HANDLES``)
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
    if name in _LISTS or name in TYPED_COLLECTIONS:
        return JavaType(name, "list", args=(OBJECT,))
    if name in SETS:
        return JavaType(name, "set", args=(OBJECT,))
    if name in _MAPS or name in TYPED_MAPS:
        return JavaType(name, "map", args=(OBJECT, OBJECT))
    if not valid_class_name(name):
        raise HessianError(f"not a Java type name: {name!r}")
    return JavaType(name, "class")


#: the ASCII class names (nearly all): the same rule as below in one regex match
_ASCII_CLASS_NAME = re.compile(r"[A-Za-z_$][A-Za-z0-9_$]*(?:\.[A-Za-z_$][A-Za-z0-9_$]*)*")


def valid_class_name(name: str) -> bool:
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
