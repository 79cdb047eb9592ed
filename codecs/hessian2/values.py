"""Python stand-ins for Java values that plain Python types cannot express.

A Python ``int`` says nothing about ``int`` vs ``long`` and a ``list`` nothing about
``int[]`` vs ``ArrayList``; hessian keeps those apart on the wire and Java keeps them apart in
untyped positions (``Object``, ``Map`` values, ``$invoke`` arguments).  These wrappers let a
caller say exactly what to write, and let a typed decode say exactly what was read.
"""

from __future__ import annotations

from typing import Any


class HessianError(ValueError):
    """Every malformed, truncated, hostile or unencodable input raises this, and only this."""


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


class Long(int):
    """A Java ``long``: always written with the long tags, even when small."""

    __slots__ = ()

    def __repr__(self) -> str:
        return f"Long({int(self)})"

    __str__ = int.__repr__


class Int(int):
    """A Java ``int`` (also ``byte``/``short``, which hessian writes as int)."""

    __slots__ = ()

    def __repr__(self) -> str:
        return f"Int({int(self)})"

    __str__ = int.__repr__


class Double(float):
    """A Java ``double`` where a Python int would otherwise be written as an int."""

    __slots__ = ()


class TypedList(list[Any]):
    """A list written with a hessian type string (``[int``, ``java.util.HashSet``, ...)."""

    __slots__ = ("type",)

    def __init__(self, type: str | None, items: Any = ()) -> None:
        super().__init__(items)
        self.type = type

    def __repr__(self) -> str:
        return f"TypedList({self.type!r}, {list.__repr__(self)})"


class TypedMap(dict[Any, Any]):
    """A map written as ``M type ... Z`` (``java.util.LinkedHashMap``, ...)."""

    __slots__ = ("type",)

    def __init__(self, type: str | None, items: Any = ()) -> None:
        super().__init__(items)
        self.type = type

    def __repr__(self) -> str:
        return f"TypedMap({self.type!r}, {dict.__repr__(self)})"


class PairMap:
    """A map whose keys Python cannot hash (lists, maps as keys), kept as ordered pairs."""

    __slots__ = ("pairs", "type")

    def __init__(self, type: str | None, pairs: list[tuple[Any, Any]] | None = None) -> None:
        self.type = type
        self.pairs = pairs if pairs is not None else []

    def __eq__(self, other: object) -> bool:
        return isinstance(other, PairMap) and other.type == self.type and other.pairs == self.pairs

    def __repr__(self) -> str:
        return f"PairMap({self.type!r}, {self.pairs!r})"


def big_integer(v: int) -> HessianObject:
    """``java.math.BigInteger`` as hessian-lite writes it.  It has no dedicated serializer,
    so Java writes the JDK's own fields: ``signum`` and ``mag`` (the magnitude as a
    big-endian ``int[]``).  The JDK's lazily computed cache fields may stay absent: 0 means
    "not computed yet", which is what Java's reader leaves in them."""
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


class HessianObject:
    """An instance of a Java class: class name plus fields in wire order."""

    __slots__ = ("cls", "fields")

    def __init__(self, cls: str, fields: dict[str, Any] | None = None) -> None:
        self.cls = cls
        self.fields = fields if fields is not None else {}

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, HessianObject):
            return NotImplemented
        if self is other:
            return True
        return self.cls == other.cls and list(self.fields.items()) == list(other.fields.items())

    __hash__ = object.__hash__

    def __repr__(self) -> str:
        return f"HessianObject({self.cls!r}, {self.fields!r})"
