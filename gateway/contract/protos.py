"""Protobuf messages -> JSON Schema, following the proto3 JSON mapping the IDL routes use
(``tribridge.idl.schema``: ``json_format`` with the service's ``json:`` options).

64-bit integers are written as strings and read as numbers or strings; ``bytes`` are base64;
enums are names (numbers with ``enums: numbers``); the well-known types have their special
JSON forms (Timestamp and Duration as text, wrappers as the bare value, Struct/Value as any
JSON). Messages become components named by their full protobuf name.
"""

from __future__ import annotations

from typing import Any

from google.protobuf.descriptor import Descriptor, FieldDescriptor
from tribridge.contract.schemas import BASE64_PATTERN, Schema

_REF = "#/components/schemas/"
_I32 = {"type": "integer", "format": "int32", "minimum": -(2**31), "maximum": 2**31 - 1}
_U32 = {"type": "integer", "format": "int32", "minimum": 0, "maximum": 2**32 - 1}
_I64_IN = {"type": "integer", "format": "int64", "minimum": -(2**63), "maximum": 2**63 - 1}
_U64_IN = {"type": "integer", "format": "int64", "minimum": 0, "maximum": 2**64 - 1}
_I64_OUT = {"type": "string", "pattern": "^-?[0-9]+$", "format": "int64"}
_FT = FieldDescriptor
_SCALARS: dict[int, tuple[Schema, Schema]] = {
    _FT.TYPE_INT32: (_I32, _I32),
    _FT.TYPE_SINT32: (_I32, _I32),
    _FT.TYPE_SFIXED32: (_I32, _I32),
    _FT.TYPE_UINT32: (_U32, _U32),
    _FT.TYPE_FIXED32: (_U32, _U32),
    _FT.TYPE_INT64: (_I64_IN, _I64_OUT),
    _FT.TYPE_SINT64: (_I64_IN, _I64_OUT),
    _FT.TYPE_SFIXED64: (_I64_IN, _I64_OUT),
    _FT.TYPE_UINT64: (_U64_IN, _I64_OUT),
    _FT.TYPE_FIXED64: (_U64_IN, _I64_OUT),
    _FT.TYPE_BOOL: ({"type": "boolean"}, {"type": "boolean"}),
    _FT.TYPE_STRING: ({"type": "string"}, {"type": "string"}),
    _FT.TYPE_BYTES: (
        {"type": "string", "contentEncoding": "base64", "pattern": BASE64_PATTERN},
        {"type": "string", "contentEncoding": "base64"},
    ),
    # NaN and the infinities are written as the strings "NaN", "Infinity", "-Infinity"
    _FT.TYPE_DOUBLE: ({"type": "number"}, {"type": ["number", "string"]}),
    _FT.TYPE_FLOAT: (
        {"type": "number", "minimum": -3.4028234663852886e38, "maximum": 3.4028234663852886e38},
        {"type": ["number", "string"]},
    ),
}
_ANY_JSON: Schema = {"description": "any JSON value"}
_WELL_KNOWN: dict[str, Schema] = {
    "google.protobuf.Timestamp": {"type": "string", "format": "date-time"},
    "google.protobuf.Duration": {"type": "string", "pattern": r"^-?[0-9]+(\.[0-9]{1,9})?s$"},
    "google.protobuf.FieldMask": {"type": "string"},
    "google.protobuf.Struct": {"type": "object"},
    "google.protobuf.Value": _ANY_JSON,
    "google.protobuf.ListValue": {"type": "array"},
    "google.protobuf.Empty": {"type": "object", "additionalProperties": False},
    "google.protobuf.Any": {"type": "object", "properties": {"@type": {"type": "string"}}},
}
_WRAPPERS = {
    "google.protobuf.DoubleValue": _FT.TYPE_DOUBLE,
    "google.protobuf.FloatValue": _FT.TYPE_FLOAT,
    "google.protobuf.Int64Value": _FT.TYPE_INT64,
    "google.protobuf.UInt64Value": _FT.TYPE_UINT64,
    "google.protobuf.Int32Value": _FT.TYPE_INT32,
    "google.protobuf.UInt32Value": _FT.TYPE_UINT32,
    "google.protobuf.BoolValue": _FT.TYPE_BOOL,
    "google.protobuf.StringValue": _FT.TYPE_STRING,
    "google.protobuf.BytesValue": _FT.TYPE_BYTES,
}


class ProtoSchemas:
    """Message schemas into a shared component table (the Java side's, so one document)."""

    def __init__(self, components: dict[str, Schema], prefix: str = _REF) -> None:
        self.components = components
        self.prefix = prefix

    def message(self, d: Descriptor, request: bool, opts: Any) -> Schema:
        wk = self._well_known(d.full_name, request)
        if wk is not None:
            return wk
        key = d.full_name + (".input" if request else "")
        ref = {"$ref": self.prefix + key}
        if key in self.components:
            return ref
        self.components[key] = {}  # placeholder for recursive messages
        body: Schema = {
            "type": "object",
            "title": d.full_name,
            "properties": self.fields(d, opts, request),
        }
        if request and not opts.ignore_unknown:
            body["additionalProperties"] = False
        self.components[key] = body
        return ref

    def fields(self, d: Descriptor, opts: Any, request: bool = True) -> dict[str, Schema]:
        """Field name (as the JSON mapping writes it) -> schema."""
        out: dict[str, Schema] = {}
        for f in d.fields:
            name = f.name if opts.proto_names else f.json_name
            out[name] = self._field(f, request, opts)
        return out

    def _field(self, f: FieldDescriptor, request: bool, opts: Any) -> Schema:
        if f.message_type is not None and f.message_type.GetOptions().map_entry:
            value = f.message_type.fields_by_name["value"]
            value_schema = self._single(value, request, opts, nullable=False)
            return {"type": "object", "additionalProperties": value_schema}
        if _repeated(f):  # null is no element of a repeated field
            return {"type": "array", "items": self._single(f, request, opts, nullable=False)}
        return self._single(f, request, opts)

    def _single(self, f: FieldDescriptor, request: bool, opts: Any, nullable: bool = True) -> Schema:
        if f.type == _FT.TYPE_MESSAGE or f.type == _FT.TYPE_GROUP:
            s = self.message(f.message_type, request, opts)
            if f.message_type.full_name == "google.protobuf.Value" or not nullable:
                return s
            return {"anyOf": [s, {"type": "null"}]}  # null: the field is unset
        if f.type == _FT.TYPE_ENUM:
            names = [v.name for v in f.enum_type.values]
            if opts.enums_as_numbers and not request:
                return {"type": "integer"}
            return {"type": "string", "enum": names}
        scal = _SCALARS.get(f.type)
        if scal is None:
            return dict(_ANY_JSON)
        return dict(scal[0] if request else scal[1])

    def _well_known(self, name: str, request: bool) -> Schema | None:
        if name in _WELL_KNOWN:
            return dict(_WELL_KNOWN[name])
        if name in _WRAPPERS:
            pair = _SCALARS[_WRAPPERS[name]]
            return dict(pair[0] if request else pair[1])
        return None


def _repeated(f: FieldDescriptor) -> bool:
    """``is_repeated`` (protobuf 6+; ``label`` is gone there) or the older ``label``."""
    rep = getattr(f, "is_repeated", None)
    if rep is not None:
        return bool(rep)
    return bool(f.label == FieldDescriptor.LABEL_REPEATED)
