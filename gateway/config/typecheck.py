"""Java type names in a config that parse but name no type a provider could have.

``parse_type`` accepts any well-formed class name, so a typo (``Strng``) or a JVM
descriptor with a bad code (``IX``) would become a class nobody defines and fail only at the
first call, as a provider-side error. A Dubbo interface's types live in packages, so a class
name without one is a mistake unless the service's ``types:`` defines it; the check runs
while the config is read, so the message carries file:line.
"""

from __future__ import annotations

import difflib
from collections.abc import Collection, Iterable, Iterator

from tribridge.codecs.hessian2 import JavaType, parse_type
from tribridge.codecs.hessian2.javatypes import PRIMITIVES

#: short names a user may mean (the ones parse_type resolves into a package)
_COMMON = [
    "String",
    "Object",
    "Boolean",
    "Byte",
    "Character",
    "Double",
    "Float",
    "Integer",
    "Long",
    "Short",
    "BigDecimal",
    "BigInteger",
    "Date",
    "List",
    "Set",
    "Map",
    "Collection",
    "LocalDate",
    "LocalTime",
    "LocalDateTime",
    "Instant",
    "UUID",
]
_JVM_CODES = "ZBCSIJFDV"


def _names(t: JavaType) -> Iterator[str]:
    """Every class name in ``t``: itself and its element / type arguments."""
    if t.kind == "class":
        yield t.name
    for a in t.args:
        yield from _names(a)


def unknown_type(types: Iterable[JavaType], defined: Collection[str], text: str) -> str | None:
    """A message for the first class name in ``types`` without a package that ``defined``
    (the service's ``types:``) does not name, else ``None``. ``text`` is what the user wrote."""
    for t in types:
        for name in _names(t):
            if "." in name or name in defined:
                continue
            shorts = [n for n in _COMMON if "." in parse_type(n).name]
            near = difflib.get_close_matches(name, [*PRIMITIVES, *shorts, *defined], n=1)
            hint = f"; did you mean {near[0]!r}?" if near else ""
            if name.isupper() and len(name) > 1 and name == text.strip():
                bad = next((c for c in name if c not in _JVM_CODES), "L")
                hint = f"; as a JVM descriptor it does not parse either ({bad!r} is no type code)"
            return (
                f"unknown Java type {name!r}: not a primitive, a short name such as String "
                f"or List, a fully qualified class, or a class defined in types{hint}"
            )
    return None
