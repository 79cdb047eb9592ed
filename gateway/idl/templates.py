"""HTTP rules in the ``google.api.http`` style: path templates, query and body binding.

Template grammar (the one in googleapis ``google/api/http.proto``)::

    Template = "/" Segments [ Verb ] ;
    Segments = Segment { "/" Segment } ;
    Segment  = "*" | "**" | LITERAL | Variable ;
    Variable = "{" FieldPath [ "=" Segments ] "}" ;
    FieldPath = IDENT { "." IDENT } ;
    Verb     = ":" LITERAL ;

``{id}`` is ``{id=*}``: one segment. ``{name=shelves/*}`` captures ``shelves/7`` whole.
Bound values are strings placed in a JSON object keyed by field; the proto3 JSON parser
then converts them by the field's type, so a template never needs its own type table.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from google.protobuf.descriptor import Descriptor, FieldDescriptor

_IDENT = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_LITERAL = re.compile(r"[^/{}*:=]+")
_WKT_FROM_STRING = {
    "google.protobuf.Timestamp",
    "google.protobuf.Duration",
    "google.protobuf.FieldMask",
    "google.protobuf.StringValue",
    "google.protobuf.BytesValue",
    "google.protobuf.Int64Value",
    "google.protobuf.UInt64Value",
    "google.protobuf.Int32Value",
    "google.protobuf.UInt32Value",
    "google.protobuf.DoubleValue",
    "google.protobuf.FloatValue",
    "google.protobuf.BoolValue",
}


class TemplateError(ValueError):
    pass


class BindError(ValueError):
    """A path variable or query parameter does not fit the request message."""


@dataclass(frozen=True)
class PathTemplate:
    text: str
    regex: re.Pattern[str]
    variables: tuple[str, ...]  # dotted field paths, in capture-group order
    verb: str | None

    def match(self, path: str) -> dict[str, str] | None:
        m = self.regex.match(path)
        if m is None:
            return None
        return {v: m.group(i + 1) for i, v in enumerate(self.variables)}


def parse_template(text: str) -> PathTemplate:
    if not text.startswith("/"):
        raise TemplateError("a path template starts with /")
    pos = 1
    variables: list[str] = []
    verb: str | None = None

    def segments(pos: int, in_var: bool) -> tuple[str, int]:
        out: list[str] = []
        while True:
            if text.startswith("**", pos):
                out.append(".+")
                pos += 2
            elif text.startswith("*", pos):
                out.append("[^/]+")
                pos += 1
            elif text.startswith("{", pos):
                if in_var:
                    raise TemplateError(f"nested variable at offset {pos}")
                end = text.find("}", pos)
                if end < 0:
                    raise TemplateError(f"unclosed {{ at offset {pos}")
                inner = text[pos + 1 : end]
                fpath, eq, sub = inner.partition("=")
                if not all(_IDENT.fullmatch(p) for p in fpath.split(".")):
                    raise TemplateError(f"bad field path {fpath!r} in {{{inner}}}")
                if fpath in variables:
                    raise TemplateError(f"variable {fpath!r} appears twice")
                sub_regex = _sub_segments(sub) if eq else "[^/]+"
                variables.append(fpath)
                out.append(f"({sub_regex})")
                pos = end + 1
            else:
                m = _LITERAL.match(text, pos)
                if m is None:
                    raise TemplateError(f"unexpected {text[pos : pos + 1]!r} at offset {pos}")
                out.append(re.escape(m.group(0)))
                pos = m.end()
            if pos >= len(text) or text[pos] != "/":
                return "/".join(out), pos
            pos += 1

    body, pos = segments(pos, False)
    if pos < len(text):
        if text[pos] != ":":
            raise TemplateError(f"unexpected {text[pos]!r} at offset {pos}")
        verb = text[pos + 1 :]
        if not _LITERAL.fullmatch(verb):
            raise TemplateError(f"bad verb {verb!r}")
    pattern = "^/" + body + (re.escape(":" + verb) if verb else "") + "$"
    return PathTemplate(text, re.compile(pattern), tuple(variables), verb)


def _sub_segments(sub: str) -> str:
    if not sub:
        raise TemplateError("empty segments after =")
    out = []
    for seg in sub.split("/"):
        if seg == "**":
            out.append(".+")
        elif seg == "*":
            out.append("[^/]+")
        elif _LITERAL.fullmatch(seg):
            out.append(re.escape(seg))
        else:
            raise TemplateError(f"bad segment {seg!r} in variable")
    return "/".join(out)


# ---- binding ------------------------------------------------------------------------------


def _field(desc: Descriptor, name: str) -> FieldDescriptor | None:
    f = desc.fields_by_name.get(name)
    if f is None:
        f = next((x for x in desc.fields if x.json_name == name), None)
    return f


def resolve_field(desc: Descriptor, dotted: str) -> list[FieldDescriptor]:
    """Dotted path -> the fields along it; BindError naming the first that does not exist."""
    chain: list[FieldDescriptor] = []
    cur = desc
    parts = dotted.split(".")
    for i, part in enumerate(parts):
        f = _field(cur, part)
        if f is None:
            raise BindError(f"{cur.full_name} has no field {part!r}")
        chain.append(f)
        if i < len(parts) - 1:
            if f.message_type is None or _is_repeated(f):
                raise BindError(f"{cur.full_name}.{part} is not a singular message field")
            cur = f.message_type
    return chain


def _is_repeated(f: FieldDescriptor) -> bool:
    return bool(f.is_repeated)


def _scalar(f: FieldDescriptor, text: str, where: str) -> Any:
    if f.type == FieldDescriptor.TYPE_BOOL:
        low = text.lower()
        if low in ("true", "1"):
            return True
        if low in ("false", "0"):
            return False
        raise BindError(f"{where}: field {f.name} is a bool, got {text!r}")
    if f.type == FieldDescriptor.TYPE_ENUM:
        return int(text) if text.lstrip("-").isdigit() else text
    if f.message_type is not None and f.message_type.full_name not in _WKT_FROM_STRING:
        raise BindError(f"{where}: field {f.name} is a message ({f.message_type.full_name})")
    return text  # numbers as strings are valid proto3 JSON


def set_field(
    target: dict[str, Any], desc: Descriptor, dotted: str, values: list[str], where: str
) -> None:
    chain = resolve_field(desc, dotted)
    leaf = chain[-1]
    if leaf.message_type is not None and leaf.message_type.GetOptions().map_entry:
        raise BindError(f"{where}: field {leaf.name} is a map")
    cur = target
    for f in chain[:-1]:
        nxt = cur.get(f.name, _ABSENT)
        if nxt is _ABSENT:
            nxt = cur.get(f.json_name, _ABSENT)
        if nxt is _ABSENT or nxt is None:
            nxt = {}
            cur[f.name] = nxt
        if not isinstance(nxt, dict):
            raise BindError(f"{where}: field {f.name} is not an object in the body")
        cur = nxt
    if _is_repeated(leaf):
        cur[leaf.name] = [_scalar(leaf, v, where) for v in values]
    else:
        cur.pop(leaf.json_name, None)
        cur[leaf.name] = _scalar(leaf, values[-1], where)


_ABSENT = object()


def check_body_field(desc: Descriptor, name: str) -> FieldDescriptor:
    """``body: field`` must name a top-level field of the request (http.proto rule)."""
    f = _field(desc, name)
    if f is None:
        raise BindError(f"{desc.full_name} has no field {name!r}")
    return f


__all__ = [
    "BindError",
    "PathTemplate",
    "TemplateError",
    "check_body_field",
    "parse_template",
    "resolve_field",
    "set_field",
]
