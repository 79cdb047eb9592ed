"""Java signatures from Dubbo's own metadata (the ServiceDefinition providers publish).

Dubbo providers publish a ``FullServiceDefinition`` JSON to the metadata report
(ZooKeeper ``/dubbo/metadata/{interface}[/{version}][/{group}]/provider/{app}``, Nacos
config ``dataId={interface}:{version}:{group}:provider:{app}``, group ``dubbo``):

    {"canonicalName": "org.x.Greeter",
     "methods": [{"name": "greet", "parameterTypes": ["org.x.User", "int"],
                  "returnType": "java.lang.String"}],
     "types": [{"type": "org.x.User", "properties": {"name": "java.lang.String",
                                                     "age": "int"}},
               {"type": "org.x.Color", "enums": ["RED", "GREEN"]}]}

This module turns that into ``JavaType`` lists per method and a ``TypeRegistry`` of POJOs
and enums, so ``POST /{interface}/{method}`` coerces JSON to the right Java types with no
route config.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import orjson
from tribridge.codecs.hessian2 import HessianError, JavaType, PojoDef, TypeRegistry, parse_type

from .base import RegistryError


@dataclass(frozen=True, slots=True)
class MethodDefinition:
    name: str
    parameter_types: tuple[JavaType, ...]
    return_type: str = ""


@dataclass(frozen=True)
class ServiceDefinition:
    """Methods (overloads kept in declaration order) and the POJO/enum types they use."""

    interface: str
    methods: Mapping[str, tuple[MethodDefinition, ...]]
    types: TypeRegistry = field(default_factory=TypeRegistry)
    source: str = "provider metadata"

    def overloads(self, method: str) -> tuple[MethodDefinition, ...]:
        return self.methods.get(method, ())

    def signature(self, method: str, argc: int) -> list[JavaType] | None:
        """The one overload of ``method`` taking ``argc`` arguments, or None when there is
        none or the arity alone cannot tell overloads apart."""
        cands = [m for m in self.overloads(method) if len(m.parameter_types) == argc]
        if len(cands) != 1:
            return None
        return list(cands[0].parameter_types)

    @classmethod
    def from_json(cls, data: bytes | str | Mapping[str, Any], source: str = "") -> ServiceDefinition:
        """Parse a FullServiceDefinition; raises ``RegistryError`` naming what is wrong, and
        nothing else: the document comes from whoever registered the provider."""
        try:
            return cls._from_json(data, source)
        except RegistryError:
            raise
        except (TypeError, ValueError, AttributeError, KeyError, HessianError) as e:
            raise RegistryError(f"malformed service definition: {type(e).__name__}") from None
        except RecursionError:
            raise RegistryError("service definition nested too deeply") from None

    @classmethod
    def _from_json(cls, data: bytes | str | Mapping[str, Any], source: str) -> ServiceDefinition:
        if isinstance(data, (bytes, str)):
            try:
                data = orjson.loads(data)
            except orjson.JSONDecodeError as e:
                raise RegistryError(f"service definition is not JSON: {e}") from None
        if not isinstance(data, Mapping):
            raise RegistryError("service definition must be a JSON object")
        iface = data.get("canonicalName") or data.get("name") or ""
        if not isinstance(iface, str) or not iface:
            raise RegistryError("service definition has no canonicalName")
        methods: dict[str, list[MethodDefinition]] = {}
        for i, m in enumerate(_list(data, "methods", iface)):
            if not isinstance(m, Mapping) or not isinstance(m.get("name"), str):
                raise RegistryError(f"{iface}: methods[{i}] has no name")
            try:
                params = tuple(_type(p) for p in _list(m, "parameterTypes", iface))
            except (HessianError, TypeError, ValueError) as e:
                raise RegistryError(f"{iface}.{m['name']}: bad parameter type: {e}") from None
            ret = m.get("returnType")
            methods.setdefault(m["name"], []).append(
                MethodDefinition(m["name"], params, ret if isinstance(ret, str) else "")
            )
        types = TypeRegistry()
        for t in _definitions(_list(data, "types", iface)):
            d = _pojo(t, data)
            if d is not None and d.name not in types.defs:
                types.add(d)
        return cls(
            iface,
            {k: tuple(v) for k, v in methods.items()},
            types,
            source or "provider metadata",
        )


_SKIP_PREFIXES = ("java.", "javax.")


def _list(d: Mapping[str, Any], key: str, where: str) -> list[Any]:
    """A list field of an untrusted document (absent or null: empty)."""
    v = d.get(key)
    if v is None:
        return []
    if not isinstance(v, list):
        raise RegistryError(f"{where}: {key} must be a list, not {type(v).__name__}")
    return v


def _type(text: Any) -> JavaType:
    if not isinstance(text, str) or not text:
        raise ValueError(f"expected a Java type name, got {text!r}")
    return parse_type(text)


def _definitions(listed: Any, depth: int = 0) -> list[Mapping[str, Any]]:
    """Every TypeDefinition: the listed ones and, as Dubbo 2.7 writes them, those nested
    inline in ``properties`` and ``items`` (bounded depth)."""
    out: list[Mapping[str, Any]] = []
    if depth > 16 or not isinstance(listed, (list, tuple)):
        return out
    for t in listed:
        if not isinstance(t, Mapping) or "$ref" in t:
            continue
        out.append(t)
        props = t.get("properties")
        nested = list(props.values()) if isinstance(props, Mapping) else []
        items = t.get("items")
        out.extend(_definitions(nested + (items if isinstance(items, list) else []), depth + 1))
    return out


_REF_STEP = re.compile(r"\.([^.\[]+)|\[(\d+)\]")


def _field_type(ftype: Any, root: Any) -> Any:
    """Dubbo 3 writes a field's type name; Dubbo 2.7 writes a nested TypeDefinition, or a
    fastjson reference such as ``{"$ref": "$.types[1].properties.seconds"}`` into the
    document (followed here, a bounded number of hops)."""
    for _ in range(8):
        if not isinstance(ftype, Mapping):
            return ftype
        ref = ftype.get("$ref")
        if not isinstance(ref, str):
            return ftype.get("type")
        ftype = _resolve(ref, root)
    return None


def _resolve(ref: str, root: Any) -> Any:
    if not ref.startswith("$"):
        return None
    node, pos = root, 1
    while pos < len(ref):
        m = _REF_STEP.match(ref, pos)
        if m is None:
            return None
        if m.group(1) is not None:
            node = node.get(m.group(1)) if isinstance(node, Mapping) else None
        else:
            i = int(m.group(2))
            node = node[i] if isinstance(node, (list, tuple)) and i < len(node) else None
        pos = m.end()
    return node


def _pojo(t: Any, root: Any = None) -> PojoDef | None:
    """A TypeDefinition → PojoDef; JDK types and malformed entries are left out (the
    codec already knows the JDK types, and one bad entry must not hide the others)."""
    if not isinstance(t, Mapping):
        return None
    name = t.get("type")
    if not isinstance(name, str) or "<" in name or name.endswith("]"):
        return None
    if name.startswith(_SKIP_PREFIXES) or "." not in name:
        return None
    enums = t.get("enums")
    if isinstance(enums, list) and enums:
        return PojoDef(name, [], [str(e) for e in enums])
    props = t.get("properties")
    if not isinstance(props, Mapping):
        return PojoDef(name, [])
    fields = []
    for fname, ftype in props.items():
        try:
            fields.append((str(fname), _type(_field_type(ftype, root))))
        except (HessianError, ValueError):
            return None
    return PojoDef(name, fields)
