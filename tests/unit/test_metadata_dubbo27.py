"""Dubbo 2.7's FullServiceDefinition: field types are nested TypeDefinitions or fastjson
``$ref`` paths, not type names as in Dubbo 3 (the document shape seen from Apache Dubbo 2.7.23
publishing to ZooKeeper's metadata report)."""

from __future__ import annotations

from tribridge.registries.metadata import ServiceDefinition

DOC = {
    "canonicalName": "com.x.Svc",
    "methods": [{"name": "echo", "parameterTypes": ["com.x.Person"], "returnType": "com.x.Person"}],
    "types": [
        {"type": "java.lang.String", "properties": {}, "items": [], "enums": []},
        {
            "type": "java.time.Instant",
            "properties": {
                "seconds": {"type": "long", "properties": {}},
                "nanos": {"type": "int", "properties": {}},
            },
        },
        {
            "type": "com.x.Person",
            "properties": {
                "name": {"$ref": "$.types[0]"},
                "id": {"$ref": "$.types[1].properties.seconds"},
                "age": {"$ref": "$.types[1].properties.nanos"},
                "balance": {"type": "java.math.BigDecimal", "properties": {}},
                "tags": {"type": "java.util.List<java.lang.String>", "items": []},
                "address": {
                    "type": "com.x.Address",
                    "properties": {"city": {"$ref": "$.types[0]"}},
                },
                "color": {"type": "com.x.Color", "enums": ["RED", "BLUE"], "properties": {}},
            },
        },
        {"$ref": "$.types[2]"},
    ],
}


def test_nested_and_referenced_field_types() -> None:
    d = ServiceDefinition.from_json(DOC)
    person = d.types.defs["com.x.Person"]
    assert {f: t.name for f, t in person.fields} == {
        "name": "java.lang.String",
        "id": "long",
        "age": "int",
        "balance": "java.math.BigDecimal",
        "tags": "java.util.List",
        "address": "com.x.Address",
        "color": "com.x.Color",
    }
    # definitions nested inline are known too
    assert [f for f, _ in d.types.defs["com.x.Address"].fields] == ["city"]
    assert d.types.defs["com.x.Color"].enum_constants == ["RED", "BLUE"]


def test_broken_references_leave_the_type_out() -> None:
    doc = {
        "canonicalName": "com.x.Svc",
        "methods": [],
        "types": [
            {"type": "com.x.A", "properties": {"f": {"$ref": "$.types[9]"}}},
            {"type": "com.x.B", "properties": {"f": {"$ref": "$[x"}}},
            {"type": "com.x.C", "properties": {"f": {"$ref": "$.types[2]"}}},  # C.f is a C
            {"type": "com.x.D", "properties": {"f": {"type": "int"}}},
        ],
    }
    d = ServiceDefinition.from_json(doc)
    assert set(d.types.defs) == {"com.x.C", "com.x.D"}
    assert d.types.defs["com.x.C"].fields[0][1].name == "com.x.C"
