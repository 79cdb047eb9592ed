"""Java types -> JSON Schema (2020-12, as OpenAPI 3.1 and MCP use it).

One rule per ``JavaType`` kind, following the README's JSON <-> Java table, in two
directions: a *request* schema describes what the gateway accepts for the type (only the
canonical forms: a schema narrower than the coercion is honest, a wider one would promise
values that are refused), a *response* schema what it writes (so every reference type may be
``null``, a double may be ``null`` — NaN and infinities have no JSON form — and a POJO may
carry fields of a subclass). POJOs and enums become named components, so a recursive type is
a ``$ref`` and not an endless schema.
"""

from __future__ import annotations

import re
from typing import Any

from tribridge.codecs.hessian2 import JavaType, TypeRegistry

#: JSON Schema for a JSON value the gateway turns into this Java type, and back
Schema = dict[str, Any]

_INT_BOUNDS = {
    "byte": (-128, 127),
    "short": (-32768, 32767),
    "int": (-(2**31), 2**31 - 1),
    "long": (-(2**63), 2**63 - 1),
}
_FORMATS = {"int": "int32", "long": "int64", "double": "double", "float": "float"}
_FLOAT_MAX = 3.4028234663852886e38
#: BigDecimal as text: what ``Decimal`` reads, with an exponent Java's int scale can hold
DECIMAL_PATTERN = r"^[-+]?([0-9]+(\.[0-9]*)?|\.[0-9]+)([eE][-+]?[0-9]{1,8})?$"
BASE64_PATTERN = r"^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$"
_CLASS_NAME = r"^[A-Za-z_$][A-Za-z0-9_$]*(\.[A-Za-z_$][A-Za-z0-9_$]*)*(\[\])*$"
#: the ISO-8601 texts the gateway's parser (Python's ``fromisoformat``) reads for dates and
#: times, as patterns. Narrower than the parser where a pattern cannot say it: February has 28
#: days here, and years are 1000..9899, so no offset moves a time outside Python's years 1..9999.
_YEAR = "(1[0-9]{3}|[2-8][0-9]{3}|9[0-8][0-9]{2})"
_MONTH_DAY = "((0[13578]|1[02])-(0[1-9]|[12][0-9]|3[01])|(0[469]|11)-(0[1-9]|[12][0-9]|30)|02-(0[1-9]|1[0-9]|2[0-8]))"
_DATE = f"{_YEAR}-{_MONTH_DAY}"
_TIME = r"([01][0-9]|2[0-3]):[0-5][0-9](:[0-5][0-9](\.[0-9]{1,6})?)?"
_OFFSET = "(Z|[+-]([01][0-9]|2[0-3]):[0-5][0-9])"
_TEXT_KINDS: dict[str, Schema] = {
    "localdate": {"type": "string", "format": "date", "pattern": f"^{_DATE}$"},
    "localtime": {"type": "string", "pattern": f"^{_TIME}$", "examples": ["12:30:00"]},
    "localdatetime": {
        "type": "string",
        "pattern": f"^{_DATE}T{_TIME}$",
        "examples": ["2024-01-02T03:04:05"],
    },
    "instant": {"type": "string", "pattern": f"^{_DATE}T{_TIME}{_OFFSET}$"},
    "date": {"type": "string", "pattern": f"^{_DATE}T{_TIME}{_OFFSET}$"},
    "sqldate": {"type": "string", "pattern": f"^{_DATE}T{_TIME}{_OFFSET}$"},
    "uuid": {"type": "string", "format": "uuid"},
    "locale": {"type": "string", "pattern": "^[A-Za-z0-9_#-]+$", "examples": ["en_US"]},
    "jclass": {"type": "string", "pattern": _CLASS_NAME, "examples": ["java.lang.String"]},
}
#: the other java.time classes: their ``toString()`` text (one example each)
_JTIME_EXAMPLES = {
    "java.time.ZonedDateTime": "2024-01-02T03:04:05+08:00[Asia/Shanghai]",
    "java.time.OffsetDateTime": "2024-01-02T03:04:05+08:00",
    "java.time.OffsetTime": "03:04:05+08:00",
    "java.time.Duration": "PT8H6M12.345S",
    "java.time.Period": "P1Y2M3D",
    "java.time.Year": "2024",
    "java.time.YearMonth": "2024-02",
    "java.time.MonthDay": "--02-29",
    "java.time.ZoneOffset": "+08:00",
    "java.time.ZoneId": "Asia/Shanghai",
}
_JTIME_PATTERNS = {
    "java.time.OffsetDateTime": f"^{_DATE}T{_TIME}{_OFFSET}$",
    "java.time.OffsetTime": f"^{_TIME}{_OFFSET}$",
    "java.time.Year": "^[0-9]{4}$",
    "java.time.YearMonth": "^[0-9]{4}-(0[1-9]|1[0-2])$",
    "java.time.MonthDay": "^--(0[1-9]|1[0-2])-(0[1-9]|1[0-9]|2[0-8])$",
    "java.time.ZoneOffset": "^(Z|[+-](0[0-9]|1[0-7]):[0-5][0-9])$",
}
_REF = "#/components/schemas/"
_UNSAFE = re.compile(r"[^A-Za-z0-9._-]")


def component_name(java_name: str, request: bool) -> str:
    """OpenAPI component names allow ``[A-Za-z0-9._-]``: ``com.x.Outer$Inner`` ->
    ``com.x.Outer_Inner``; request forms get a ``.input`` suffix."""
    return _UNSAFE.sub("_", java_name) + (".input" if request else "")


def _nullable(s: Schema) -> Schema:
    """``s`` or ``null``: every Java reference may be null."""
    t = s.get("type")
    if isinstance(t, str):
        return {**s, "type": [t, "null"]}
    if "$ref" in s or "enum" in s or "anyOf" in s:
        return {"anyOf": [s, {"type": "null"}]}
    return s  # already admits anything


class JavaSchemas:
    """Builds schemas for Java types and collects the POJO/enum components they name.

    ``schema(t, request)`` returns an inline schema (``$ref`` for classes); ``components``
    holds every class reached so far, in both directions as used. Unknown classes (nobody
    declared their fields) are open objects, or strings where the gateway would take an
    enum constant.
    """

    def __init__(self, prefix: str = _REF) -> None:
        self.prefix = prefix
        self.components: dict[str, Schema] = {}
        self._types = TypeRegistry()

    def schema(self, t: JavaType, request: bool, types: TypeRegistry | None = None) -> Schema:
        if types is not None:
            self._types = types
        return self._of(t, request, top=True)

    def _of(self, t: JavaType, request: bool, top: bool = False) -> Schema:
        s = self._plain(t, request)
        if t.kind in _FORMATS or t.kind in ("boolean", "byte", "short", "char"):
            return s  # a primitive is never null
        if t.kind == "boxed" and request:
            return _nullable(s)
        return s if request and top else _nullable(s)

    def _plain(self, t: JavaType, request: bool) -> Schema:
        k = t.kind
        if k == "boxed":
            k = t.prim or "object"
        if k in _INT_BOUNDS:
            lo, hi = _INT_BOUNDS[k]
            s: Schema = {"type": "integer", "minimum": lo, "maximum": hi}
            if k in _FORMATS:
                s["format"] = _FORMATS[k]
            return s
        if k == "double":
            return {"type": "number", "format": "double"} if request else {"type": ["number", "null"]}
        if k == "float":
            if request:
                return {"type": "number", "format": "float", "minimum": -_FLOAT_MAX, "maximum": _FLOAT_MAX}
            return {"type": ["number", "null"], "format": "float"}
        if k == "boolean":
            return {"type": "boolean"}
        if k == "char":
            # one UTF-16 unit: a character outside the Basic Multilingual Plane does not fit
            return {"type": "string", "minLength": 1, "maxLength": 1, "pattern": "^[\u0000-\uffff]$"}
        if k == "string":
            return {"type": "string"}
        if k == "bigdecimal":
            s = {"type": "string", "format": "decimal", "description": "java.math.BigDecimal, exact"}
            if request:
                s["pattern"] = DECIMAL_PATTERN
            return s
        if k == "biginteger":
            return {"type": "integer", "description": "java.math.BigInteger, every digit"}
        if k in _TEXT_KINDS:
            s = dict(_TEXT_KINDS[k])
            if k in ("date", "sqldate", "instant"):
                s["format"] = "date-time"
                s["description"] = f"{t.name}, ISO-8601"
            return s if request else {kk: v for kk, v in s.items() if kk != "pattern"}
        if k == "jtime":
            s = {"type": "string", "description": f"{t.name}, its toString() text"}
            if t.name in _JTIME_EXAMPLES:
                s["examples"] = [_JTIME_EXAMPLES[t.name]]
            if request and t.name in _JTIME_PATTERNS:
                s["pattern"] = _JTIME_PATTERNS[t.name]
            return s
        if k == "bytes":
            s = {"type": "string", "contentEncoding": "base64", "description": "byte[], base64"}
            if request:
                s["pattern"] = BASE64_PATTERN
            return s
        if k in ("array", "list", "set"):
            return {"type": "array", "items": self._of(t.element, request)}
        if k == "map":
            return self._map(t, request)
        if k == "class":
            return self._class(t.name, request)
        return {"description": f"{t.name}: any JSON value (a class tag picks a Java class)"}

    def _map(self, t: JavaType, request: bool) -> Schema:
        kt, vt = t.args if len(t.args) == 2 else (None, None)
        s: Schema = {"type": "object"}
        if vt is not None:
            s["additionalProperties"] = self._of(vt, request)
        if request and kt is not None:
            kk = kt.prim if kt.kind == "boxed" else kt.kind
            if kk in _INT_BOUNDS or kk == "biginteger":
                s["propertyNames"] = {"pattern": "^-?[0-9]{1,18}$"}
            elif kk == "class" and self._types.get(kt.name) is not None:
                d = self._types.get(kt.name)
                if d is not None and d.is_enum:
                    s["propertyNames"] = {"enum": list(d.enum_constants or [])}
            elif kk not in ("string", "object"):
                s["propertyNames"] = {"description": f"{kt}: the key's JSON text"}
        return s

    def _class(self, name: str, request: bool) -> Schema:
        d = self._types.get(name)
        if d is None:
            return {"type": "object", "description": f"{name} (fields not declared)"}
        key = component_name(name, request and not d.is_enum)
        ref = {"$ref": self.prefix + key}
        if key in self.components:
            return ref
        if d.is_enum:
            self.components[key] = {
                "type": "string",
                "enum": list(d.enum_constants or []),
                "title": name,
            }
            return ref
        self.components[key] = {}  # placeholder: a field of its own type refers back
        props: dict[str, Schema] = {"class": {"type": "string", "const": name}}
        for fname, ftype in d.fields:
            props[fname] = self._of(ftype, request)
        body: Schema = {"type": "object", "title": name, "properties": props}
        if request:
            body["additionalProperties"] = False  # an unknown field is a 400
            body["description"] = "fields left out take Java's defaults"
        else:
            props["class"] = {"type": "string", "description": "the Java class (a subclass too)"}
        self.components[key] = body
        return ref
