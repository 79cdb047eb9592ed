"""Shared by the Java compatibility tests: the Java services' signatures as gateway config,
the type rows (JSON in -> JSON out), and how each matrix target is addressed.

The Java side lives in ``interop/java/peer`` (``com.tribridge.compat``); the JVMs come from
``tribridge.interop.java_peers`` through the session fixture ``java_peers``.
"""

from __future__ import annotations

import base64
from dataclasses import dataclass
from typing import Any

import yaml
from tribridge.interop.java_peers import GREET, TYPES, JavaPeers

P = "com.tribridge.compat."
PERSON_T, EMPLOYEE_T, ADDRESS_T, COLOR_T = P + "Person", P + "Employee", P + "Address", P + "Color"
MONEY_T, PAGE_T, BOX_T = P + "Money", P + "Page", P + "Box"

PERSON_FIELDS = {
    "name": "String",
    "age": "int",
    "score": "java.lang.Integer",
    "id": "long",
    "active": "boolean",
    "height": "double",
    "color": COLOR_T,
    "balance": "java.math.BigDecimal",
    "big": "java.math.BigInteger",
    "born": "java.util.Date",
    "day": "java.time.LocalDate",
    "tags": "java.util.List<String>",
    "counts": "java.util.Map<String,java.lang.Integer>",
    "address": ADDRESS_T,
}
# no inheritance in the config model: a subclass lists its superclass's fields too
TYPE_DEFS: dict[str, Any] = {
    COLOR_T: {"enum": ["RED", "GREEN", "BLUE"]},
    ADDRESS_T: {"fields": {"city": "String", "zip": "String"}},
    PERSON_T: {"fields": PERSON_FIELDS},
    EMPLOYEE_T: {"fields": {**PERSON_FIELDS, "company": "String", "salary": "long"}},
    MONEY_T: {
        "fields": {
            "amount": "java.math.BigDecimal",
            "currency": "String",
            "history": "java.util.List<java.math.BigDecimal>",
        }
    },
    PAGE_T: {
        "fields": {
            "people": f"java.util.List<{PERSON_T}>",
            "byId": f"java.util.Map<java.lang.Long,{PERSON_T}>",
            "colors": f"java.util.Set<{COLOR_T}>",
            "numbers": "int[]",
        }
    },
    BOX_T: {"fields": {"label": "String", "value": "java.lang.Object", "items": "java.util.List"}},
}

# method -> parameter types as the Java interface declares them (overloads: header hints)
METHODS: dict[str, list[str]] = {
    "echoInt": ["int"],
    "echoInteger": ["java.lang.Integer"],
    "echoLong": ["long"],
    "echoLongBoxed": ["java.lang.Long"],
    "echoShort": ["short"],
    "echoShortBoxed": ["java.lang.Short"],
    "echoByte": ["byte"],
    "echoByteBoxed": ["java.lang.Byte"],
    "echoDouble": ["double"],
    "echoDoubleBoxed": ["java.lang.Double"],
    "echoFloat": ["float"],
    "echoFloatBoxed": ["java.lang.Float"],
    "echoBool": ["boolean"],
    "echoBoolBoxed": ["java.lang.Boolean"],
    "echoChar": ["char"],
    "echoCharBoxed": ["java.lang.Character"],
    "echoString": ["java.lang.String"],
    "echoBigDecimal": ["java.math.BigDecimal"],
    "echoBigInteger": ["java.math.BigInteger"],
    "echoDate": ["java.util.Date"],
    "echoLocalDate": ["java.time.LocalDate"],
    "echoLocalTime": ["java.time.LocalTime"],
    "echoLocalDateTime": ["java.time.LocalDateTime"],
    "echoInstant": ["java.time.Instant"],
    "echoColor": [COLOR_T],
    "echoColors": [f"java.util.List<{COLOR_T}>"],
    "echoBytes": ["byte[]"],
    "echoInts": ["int[]"],
    "echoLongs": ["long[]"],
    "echoDoubles": ["double[]"],
    "echoStrings": ["java.lang.String[]"],
    "echoPersons": [f"{PERSON_T}[]"],
    "echoList": ["java.util.List<String>"],
    "echoSet": ["java.util.Set<java.lang.Integer>"],
    "echoMapOfLists": ["java.util.Map<String,java.util.List<java.lang.Integer>>"],
    "echoLongKeys": ["java.util.Map<java.lang.Long,String>"],
    "echoEnumKeys": [f"java.util.Map<{COLOR_T},java.lang.Integer>"],
    "echoNested": [f"java.util.List<java.util.Map<String,{PERSON_T}>>"],
    "echoDecimals": ["java.util.List<java.math.BigDecimal>"],
    "echoBigIntegers": ["java.util.Map<String,java.math.BigInteger>"],
    "echoPerson": [PERSON_T],
    "echoMoney": [MONEY_T],
    "echoPage": [PAGE_T],
    "echoBox": [BOX_T],
    "echoObject": ["java.lang.Object"],
    "typeOf": ["java.lang.Object"],
    "describe": [PERSON_T],
    "makeEmployee": ["java.lang.String"],
    "touch": ["java.lang.String"],
    "touched": [],
    "nullString": [],
    "nullPerson": [],
    "nullList": [],
    "fail": ["java.lang.String"],
    "greetAsync": ["java.lang.String"],
    "attachment": ["java.lang.String"],
    "big": ["int"],
    "bigBytes": ["int"],
    "length": ["java.lang.String"],
    "slow": ["int"],
    "whoami": [],
}

BORN_MS = 1700000000123
DATE_OUT = "2023-11-14T22:13:20.123000+00:00"  # how the gateway writes a java.util.Date
PERSON_IN: dict[str, Any] = {
    "name": "Ann",
    "age": 36,
    "score": None,
    "id": 2**40,
    "active": True,
    "height": 1.75,
    "color": "BLUE",
    "balance": "1234.50",
    "big": 2**62 + 1,
    "born": BORN_MS,
    "day": "2024-02-29",
    "tags": ["a", "b"],
    "counts": {"x": 1},
    "address": {"city": "Oslo", "zip": "0150"},
}


def person_out(**over: Any) -> dict[str, Any]:
    """A Person as the gateway returns it: class first, BigDecimal as string, dates ISO."""
    out = {"class": PERSON_T, **PERSON_IN, "born": DATE_OUT}
    out["address"] = {"class": ADDRESS_T, **PERSON_IN["address"]}
    out.update(over)
    return out


@dataclass(frozen=True)
class Row:
    """One call: ``POST /{TypesService}/{method}`` with ``args`` must answer 200 ``want``."""

    id: str
    method: str
    args: list[Any] | bytes  # bytes: a raw JSON body
    want: Any  # the JSON answer; for a status other than 200, the error code
    headers: tuple[tuple[str, str], ...] = ()
    status: int = 200


B64 = base64.b64encode(bytes([0, 1, 255, 127])).decode()
ROWS: list[Row] = [
    Row("int", "echoInt", [-2147483648], -2147483648),
    Row("Integer", "echoInteger", [7], 7),
    Row("Integer_null", "echoInteger", [None], None),
    Row("long", "echoLong", [2**63 - 1], 2**63 - 1),
    Row("Long", "echoLongBoxed", [-(2**40)], -(2**40)),
    Row("Long_null", "echoLongBoxed", [None], None),
    Row("short", "echoShort", [-32768], -32768),
    Row("Short", "echoShortBoxed", [12], 12),
    Row("byte", "echoByte", [-128], -128),
    Row("Byte", "echoByteBoxed", [127], 127),
    Row("double", "echoDouble", [1.0e300], 1.0e300),
    Row("Double_null", "echoDoubleBoxed", [None], None),
    Row("float", "echoFloat", [0.1], 0.1),
    Row("Float", "echoFloatBoxed", [3.5], 3.5),
    Row("boolean", "echoBool", [True], True),
    Row("Boolean_null", "echoBoolBoxed", [None], None),
    Row("char", "echoChar", ["é"], "é"),
    Row("Character", "echoCharBoxed", ["x"], "x"),
    Row("String", "echoString", ["héllo 😀 世界"], "héllo 😀 世界"),
    Row("String_null", "echoString", [None], None),
    Row("numeric_string_int", "echoInt", ["42"], 42),
    Row("BigDecimal_string", "echoBigDecimal", ["12.50"], "12.50"),
    Row("BigDecimal_number", "echoBigDecimal", [0.25], "0.25"),
    Row("BigInteger", "echoBigInteger", [2**63 - 1], 2**63 - 1),
    Row("BigInteger_string", "echoBigInteger", ["-12345678901"], -12345678901),
    Row("Date_ms", "echoDate", [BORN_MS], DATE_OUT),
    Row("Date_iso", "echoDate", ["2023-11-14T22:13:20.123Z"], DATE_OUT),
    Row("LocalDate", "echoLocalDate", ["2024-02-29"], "2024-02-29"),
    Row("LocalTime", "echoLocalTime", ["10:15:30"], "10:15:30"),
    Row("LocalDateTime", "echoLocalDateTime", ["2024-02-29T10:15:30"], "2024-02-29T10:15:30"),
    Row("Instant", "echoInstant", ["2024-02-29T10:15:30Z"], "2024-02-29T10:15:30+00:00"),
    Row("enum", "echoColor", ["GREEN"], "GREEN"),
    Row("enum_null", "echoColor", [None], None),
    Row("enum_list", "echoColors", [["RED", "BLUE"]], ["RED", "BLUE"]),
    Row("byte[]", "echoBytes", [B64], B64),
    Row("byte[]_numbers", "echoBytes", [[0, 1, 255, 127]], B64),
    Row("int[]", "echoInts", [[1, -2, 3]], [1, -2, 3]),
    Row("long[]", "echoLongs", [[2**40, -1]], [2**40, -1]),
    Row("double[]", "echoDoubles", [[0.5, -1.25]], [0.5, -1.25]),
    Row("String[]", "echoStrings", [["a", None, "c"]], ["a", None, "c"]),
    Row("POJO[]", "echoPersons", [[PERSON_IN]], [person_out()]),
    Row("List<String>", "echoList", [["x", "y"]], ["x", "y"]),
    Row("Set<Integer>", "echoSet", [[3]], [3]),
    Row(
        "Map<String,List<Integer>>",
        "echoMapOfLists",
        [{"a": [1, 2], "b": []}],
        {"a": [1, 2], "b": []},
    ),
    Row(
        "Map<Long,String>",
        "echoLongKeys",
        [{"8589934592": "big", "1": "one"}],
        {"8589934592": "big", "1": "one"},
    ),
    Row("Map<enum,Integer>", "echoEnumKeys", [{"RED": 1}], {"RED": 1}),
    Row("List<Map<String,POJO>>", "echoNested", [[{"k": PERSON_IN}]], [{"k": person_out()}]),
    Row("List<BigDecimal>", "echoDecimals", [["0.1", "2.50"]], ["0.1", "2.50"]),
    Row("Map<String,BigInteger>", "echoBigIntegers", [{"a": 5}], {"a": 5}),
    Row("POJO", "echoPerson", [PERSON_IN], person_out()),
    Row(
        "POJO_nulls",
        "echoPerson",
        [{"name": "N"}],
        {
            "class": PERSON_T,
            **dict.fromkeys(PERSON_FIELDS),
            "name": "N",
            "age": 0,
            "id": 0,
            "active": False,
            "height": 0.0,
        },
    ),
    Row(
        "POJO_with_BigDecimal",
        "echoMoney",
        [{"amount": "12.50", "currency": "EUR", "history": ["1.10", "2"]}],
        {"class": MONEY_T, "amount": "12.50", "currency": "EUR", "history": ["1.10", "2"]},
    ),
    Row(
        "POJO_collections",
        "echoPage",
        [{"people": [PERSON_IN], "byId": {"7": PERSON_IN}, "colors": ["RED"], "numbers": [1, 2]}],
        {
            "class": PAGE_T,
            "people": [person_out()],
            "byId": {"7": person_out()},
            "colors": ["RED"],
            "numbers": [1, 2],
        },
    ),
    Row(
        "generic_field",
        "echoBox",
        [{"label": "l", "value": 5, "items": ["a", 1]}],
        {"class": BOX_T, "label": "l", "value": 5, "items": ["a", 1]},
    ),
    Row("Object_int", "typeOf", [5], "java.lang.Integer=5"),
    Row("Object_long", "typeOf", [2**40], f"java.lang.Long={2**40}"),
    Row(
        "Object_small_long_tagged",
        "typeOf",
        [{"class": "java.lang.Long", "value": 7}],
        "java.lang.Long=7",
    ),
    Row("Object_string", "typeOf", ["s"], "java.lang.String=s"),
    Row("Object_map", "typeOf", [{"a": 1}], "java.util.HashMap={a=1}"),
    Row(
        "Object_pojo",
        "typeOf",
        [{"class": ADDRESS_T, "city": "C", "zip": "Z"}],
        "com.tribridge.compat.Address=Address(C,Z)",
    ),
    Row(
        "subclass_in_superclass_slot",
        "describe",
        [{"class": EMPLOYEE_T, "name": "Eve", "company": "ACME", "salary": 1}],
        f"{EMPLOYEE_T}:Eve",
    ),
    Row(
        "subclass_returned",
        "makeEmployee",
        ["Max"],
        {
            "class": EMPLOYEE_T,
            **dict.fromkeys(PERSON_FIELDS),
            "name": "Max",
            "age": 30,
            "id": 0,
            "active": False,
            "height": 0.0,
            "company": "ACME",
            "salary": 5000000000,
        },
    ),
    Row("overload_int", "sum", [1, 2], 3, (("x-tribridge-types", "int,int"),)),
    Row("overload_long", "sum", [1, 2], 1000000000003, (("x-tribridge-types", "long,long"),)),
    Row(
        "overload_String",
        "sum",
        ["a", "b"],
        "ab",
        (("x-tribridge-types", "java.lang.String,java.lang.String"),),
    ),
    Row("null_String", "nullString", [], None),
    Row("null_POJO", "nullPerson", [], None),
    Row("null_List", "nullList", [], None),
    Row("CompletableFuture", "greetAsync", ["Bo"], "async hello, Bo"),
    Row(
        "unknown_field_refused",
        "echoPerson",
        [{"name": "x", "nope": 1}],
        "bad_arguments",
        status=400,
    ),
    Row("int_out_of_range", "echoInt", [2**31], "bad_arguments", status=400),
    Row("byte_out_of_range", "echoByte", [128], "bad_arguments", status=400),
    Row("enum_unknown_constant", "echoColor", ["PINK"], "bad_arguments", status=400),
]

# A gateway with no signatures configured: types from the x-tribridge-types header and the
# "class" of objects; POJOs the gateway does not know come back with every field.
T = "x-tribridge-types"
BARE_ROWS: list[Row] = [
    Row("long_by_header", "echoLong", [2**40], 2**40, ((T, "long"),)),
    Row("int_inferred_generic", "echoInt", [7], 7),
    Row("String_generic", "echoString", ["s"], "s"),
    Row(
        "POJO_by_class",
        "echoPerson",
        [{"class": PERSON_T, "name": "Ann", "age": 3}],
        {
            "class": PERSON_T,
            **dict.fromkeys(PERSON_FIELDS),
            "name": "Ann",
            "age": 3,
            "id": 0,
            "active": False,
            "height": 0.0,
        },
    ),
    Row(
        "unknown_class_fields_returned",
        "makeEmployee",
        ["Max"],
        {
            "class": EMPLOYEE_T,
            **dict.fromkeys(PERSON_FIELDS),
            "name": "Max",
            "age": 30,
            "id": 0,
            "active": False,
            "height": 0.0,
            "company": "ACME",
            "salary": 5000000000,
        },
        ((T, "java.lang.String"),),
    ),
    Row("Object_inferred_int", "typeOf", [5], "java.lang.Integer=5"),
    Row("Object_inferred_list", "typeOf", [[1, "a"]], "java.util.ArrayList=[1, a]"),
]


def service_config(registry: str, version: str = "1.0.0", timeout: str = "20s") -> dict[str, Any]:
    """``services:`` entries for TypesService with every configured signature."""
    methods = {m: {"types": t} for m, t in METHODS.items()}
    return {
        "interface": TYPES,
        "version": version,
        "registry": registry,
        "timeout": timeout,
        "retries": 0,
        "methods": methods,
        "types": TYPE_DEFS,
        "response_attachments": ["tb-reply"],
    }


@dataclass(frozen=True)
class Target:
    """One provider line x protocol, addressed directly."""

    id: str
    provider: str  # key in java_peers.PROVIDERS
    protocol: str  # dubbo | tri
    port_name: str  # key in Provider.ports

    def url(self, peers: JavaPeers, iface: str = TYPES) -> str:
        prov = peers.providers[self.provider]
        return f"{self.protocol}://{peers.ns_ip}:{prov.ports[self.port_name]}/{iface}"

    def static_entry(self, peers: JavaPeers, iface: str, **params: str) -> str:
        q = "&".join(f"{k}={v}" for k, v in params.items())
        return self.url(peers, iface) + (f"?{q}" if q else "")


TARGETS = [
    Target("3.3-dubbo", "33d", "dubbo", "dubbo"),
    Target("3.3-tri", "33t", "tri", "tri"),
    Target("3.3-oneport-dubbo", "33u", "dubbo", "dubbo+tri"),
    Target("3.3-oneport-tri", "33u", "tri", "dubbo+tri"),
    Target("2.7-dubbo", "27", "dubbo", "dubbo"),
]
BY_ID = {t.id: t for t in TARGETS}


def direct_config(peers: JavaPeers, target: Target, extra: dict[str, Any] | None = None) -> str:
    """A gateway in front of one target: static registry, configured signatures, auto routes."""
    greets = [
        target.static_entry(peers, GREET, version=v, group=g)
        for g, v in (("g1", "1.0.0"), ("g2", "1.0.0"), ("g1", "2.0.0"))
    ]
    doc: dict[str, Any] = {
        "registries": {
            "static": {
                "type": "static",
                "services": {
                    TYPES: [target.static_entry(peers, TYPES, version="1.0.0")],
                    GREET: greets,
                },
            }
        },
        "services": [service_config("static")],
        "auto_routes": {"prefix": "/", "expose": ["com.tribridge.compat.*"]},
        "passthrough_headers": ["x-request-id", "tb-key"],
    }
    doc.update(extra or {})
    return yaml.safe_dump(doc, sort_keys=False)


# ---- differences being fixed in parallel (they pass once those fixes merge) ---------------

BIG = 123456789012345678901234567890
FINE = "0.1234567890123456789012345"
#: JSON integers beyond 64 bits and high-precision decimals reach Java exact
PRECISION_ROWS: list[Row] = [
    # raw JSON bodies: neither a Python float nor orjson could carry these literals
    Row(
        "BigInteger_beyond_64_bits_in_Object",
        "typeOf",
        f"[{BIG}]".encode(),
        f"java.math.BigInteger={BIG}",
    ),
    Row("BigDecimal_high_precision_number", "echoBigDecimal", f"[{FINE}]".encode(), FINE),
    Row(
        "BigDecimal_field_high_precision_number",
        "echoMoney",
        f'[{{"amount": {FINE}, "currency": "EUR", "history": []}}]'.encode(),
        {"class": MONEY_T, "amount": FINE, "currency": "EUR", "history": []},
    ),
]
#: a BigDecimal field with no configured types, and {"class": "java.math.BigDecimal", ...}
BARE_BIGDECIMAL_ROWS: list[Row] = [
    Row(
        "POJO_BigDecimal_field_untyped",
        "echoMoney",
        [{"class": MONEY_T, "amount": "12.50", "currency": "EUR"}],
        {"class": MONEY_T, "amount": "12.50", "currency": "EUR", "history": None},
        ((T, MONEY_T),),
    ),
    Row(
        "BigDecimal_as_class_value",
        "typeOf",
        [{"class": "java.math.BigDecimal", "value": "12.50"}],
        "java.math.BigDecimal=12.50",
    ),
]
