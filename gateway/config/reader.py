"""Reading a config document: YAML with every key's and item's source location, anchors
refused, and ``_V``, the value checker that turns a bad value into a ``ConfigError`` naming
file, line, path and expectation. Every section parser (model, security, relay, IDL) uses
it, so it sits apart from the model that those sections fill in.
"""

from __future__ import annotations

import re
from typing import Any

import yaml
from tribridge.codecs.hessian2 import HessianError, JavaType, parse_type
from tribridge.extras import missing


class ConfigError(Exception):
    """An invalid config: the message names file, line, path in the document and expectation."""


class _Loc(dict[Any, Any]):
    """A mapping that remembers where each key sat in the YAML source."""

    marks: dict[Any, Any]
    mark: Any


class _Seq(list[Any]):
    marks: list[Any]
    mark: Any


class _Loader(yaml.SafeLoader):  # type: ignore[misc]  # PyYAML ships no stubs
    """SafeLoader that refuses anchors and aliases.

    Why: aliases let a few hundred bytes stand for gigabytes (the "billion laughs" bomb: a
    712-byte body sent to ``PUT /config`` once held 1.7 GB for 15 s). A config never needs
    them, so the composer refuses the first anchor or alias, before anything is expanded;
    parsing then costs time and memory linear in the text, which the admin API bounds.
    """

    def compose_node(self, parent: Any, index: Any) -> Any:
        event = self.peek_event()
        if isinstance(event, yaml.AliasEvent) or getattr(event, "anchor", None) is not None:
            raise yaml.composer.ComposerError(
                None,
                None,
                "YAML anchors and aliases (&name, *name, <<: *name) are not accepted in a "
                "tribridge config; write the values out",
                event.start_mark,
            )
        return super().compose_node(parent, index)


def _construct_mapping(loader: _Loader, node: yaml.MappingNode) -> _Loc:
    loader.flatten_mapping(node)
    out = _Loc()
    out.marks = {}
    out.mark = node.start_mark
    for knode, vnode in node.value:
        key = loader.construct_object(knode, deep=True)
        try:
            hash(key)
        except TypeError:
            raise ConfigError(f"line {knode.start_mark.line + 1}: unhashable mapping key") from None
        if key in out:
            raise ConfigError(f"line {knode.start_mark.line + 1}: duplicate key {key!r}")
        out[key] = loader.construct_object(vnode, deep=True)
        out.marks[key] = vnode.start_mark
    return out


def _construct_seq(loader: _Loader, node: yaml.SequenceNode) -> _Seq:
    out = _Seq(loader.construct_object(v, deep=True) for v in node.value)
    out.marks = [v.start_mark for v in node.value]
    out.mark = node.start_mark
    return out


_Loader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_mapping)
_Loader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_SEQUENCE_TAG, _construct_seq)


_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s|m)?\s*$")


class _V:
    """Validation helper: knows the file and renders locations."""

    def __init__(self, source: str) -> None:
        self.source = source

    def fail(self, node: Any, path: str, msg: str, key: Any = None) -> ConfigError:
        mark = None
        if key is not None and isinstance(node, _Loc):
            mark = node.marks.get(key)
        elif isinstance(node, _Seq) and isinstance(key, int) and key < len(node.marks):
            mark = node.marks[key]
        if mark is None:
            mark = getattr(node, "mark", None)
        where = f"{self.source}:{mark.line + 1}:{mark.column + 1}" if mark else self.source
        return ConfigError(f"{where}: {path}: {msg}")

    def mapping(self, node: Any, path: str, allowed: set[str]) -> _Loc:
        if node is None:
            node = _Loc()
            node.marks, node.mark = {}, None
        if not isinstance(node, dict):
            raise self.fail(node, path, f"expected a mapping, got {type(node).__name__}")
        for k in node:
            if k not in allowed:
                raise self.fail(
                    node,
                    f"{path}.{k}",
                    f"unknown key; expected one of {', '.join(sorted(allowed))}",
                    k,
                )
        return node  # type: ignore[return-value]

    def get(
        self,
        node: _Loc,
        key: str,
        path: str,
        kind: type | tuple[type, ...],
        default: Any = None,
        required: bool = False,
    ) -> Any:
        if key not in node:
            if required:
                raise self.fail(node, path, f"missing required key {key!r}")
            return default
        v = node[key]
        if kind is float and isinstance(v, (int, float)) and not isinstance(v, bool):
            return float(v)
        if not isinstance(v, kind) or (isinstance(v, bool) and kind in (int, float)):
            names = (
                kind.__name__ if isinstance(kind, type) else " or ".join(k.__name__ for k in kind)
            )
            raise self.fail(node, f"{path}.{key}", f"expected {names}, got {v!r}", key)
        return v

    def duration(self, node: _Loc, key: str, path: str, default: float | None) -> float | None:
        if key not in node:
            return default
        v = node[key]
        if isinstance(v, (int, float)) and not isinstance(v, bool) and v > 0:
            return float(v)
        m = _DURATION.match(str(v)) if isinstance(v, str) else None
        if not m:
            raise self.fail(
                node, f"{path}.{key}", f"expected a duration like 3s or 500ms, got {v!r}", key
            )
        n = float(m.group(1))
        return n / 1000 if m.group(2) == "ms" else n * 60 if m.group(2) == "m" else n

    def extra(self, node: Any, key: Any, path: str, extra: str, what: str) -> None:
        """Refuse a setting whose optional extra is not installed, naming the pip line."""
        msg = missing(extra, what)
        if msg is not None:
            raise self.fail(node, path, msg, key)

    def jtype(self, node: Any, key: Any, path: str, text: Any) -> JavaType:
        if not isinstance(text, str):
            raise self.fail(node, path, f"expected a Java type name, got {text!r}", key)
        try:
            return parse_type(text)
        except HessianError as e:
            raise self.fail(node, path, str(e), key) from None
