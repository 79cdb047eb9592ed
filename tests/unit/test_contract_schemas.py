"""Java types -> JSON Schema (gateway/contract/schemas.py), the ``contract:`` config section,
and the vendored Swagger UI files.

The schema rules are checked against the coercion itself: values a request schema accepts
must coerce (``coercion.coerce``), and typical values it refuses must be refused too.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import jsonschema
import pytest
from tribridge.codecs.hessian2 import HessianError, PojoDef, TypeRegistry, parse_type
from tribridge.codecs.hessian2.coercion import coerce
from tribridge.config.model import ConfigError, parse_config
from tribridge.contract.schemas import JavaSchemas

ROOT = Path(__file__).resolve().parents[2]
USER = "com.x.User"
REG = TypeRegistry(
    [
        PojoDef(
            USER,
            [
                ("id", parse_type("long")),
                ("name", parse_type("String")),
                ("color", parse_type("com.x.Color")),
                ("friends", parse_type(f"java.util.List<{USER}>")),
            ],
        ),
        PojoDef("com.x.Color", [], ["RED", "GREEN"]),
    ]
)


def _validator(type_name: str, request: bool) -> tuple[Any, dict[str, Any]]:
    js = JavaSchemas()
    s = js.schema(parse_type(type_name), request, REG)
    doc = {**s, "components": {"schemas": js.components}}
    return jsonschema.Draft202012Validator(doc, format_checker=jsonschema.FormatChecker()), s


def _accepts(type_name: str, value: Any) -> bool:
    v, _ = _validator(type_name, True)
    return v.is_valid(value)


def _coerces(type_name: str, value: Any) -> bool:
    try:
        coerce(value, parse_type(type_name), registry=REG)
    except HessianError:
        return False
    return True


CASES: list[tuple[str, Any]] = [
    ("int", 2**31 - 1), ("int", 2**31), ("int", "7"), ("long", 2**63 - 1), ("long", 2**63),
    ("long", 1.5), ("short", 40000), ("byte", -129), ("boolean", True), ("char", "a"),
    ("char", "ab"), ("char", "\U0001f600"), ("double", 1.25), ("float", 1e39),
    ("java.math.BigDecimal", "12.50"), ("java.math.BigDecimal", "1e5"), ("java.math.BigDecimal", "x"),
    ("java.math.BigInteger", 2**100), ("java.util.Date", "2024-01-02T03:04:05Z"),
    ("java.util.Date", "yesterday"), ("java.time.LocalDate", "2024-02-29"),
    ("java.time.LocalDate", "2024-13-01"), ("java.time.LocalDateTime", "2024-01-02T03:04:05"),
    ("java.time.Instant", "2024-01-02T03:04:05.123Z"), ("java.util.UUID", "not-a-uuid"),
    ("java.util.UUID", "123e4567-e89b-12d3-a456-426614174000"), ("byte[]", "aGk="),
    ("byte[]", "a!"), ("int[]", [1, 2]), ("java.util.List<Long>", [1, "x"]),
    ("java.util.Map<String, Integer>", {"a": 1}), ("java.util.Map<Integer, String>", {"x": "a"}),
    ("com.x.Color", "RED"), ("com.x.Color", "BLUE"),
    (USER, {"id": 1, "name": "Ada", "color": "GREEN", "friends": [{"id": 2}]}),
    (USER, {"id": 1, "nick": "x"}), (USER, {"class": USER, "id": 1}), (USER, "RED"),
    ("java.time.YearMonth", "2024-02"), ("java.time.Year", "24x"),
]


@pytest.mark.parametrize(("type_name", "value"), CASES, ids=[f"{t}={v!r}"[:60] for t, v in CASES])
def test_request_schema_never_promises_what_coercion_refuses(type_name: str, value: Any) -> None:
    if _accepts(type_name, value):
        assert _coerces(type_name, value), f"schema accepts {value!r} for {type_name}, gateway refuses"


def test_request_schema_accepts_the_canonical_forms() -> None:
    for type_name, value in [
        ("long", 2**63 - 1), ("char", "a"), ("java.math.BigDecimal", "12.50"), ("byte[]", "aGk="),
        ("java.util.Date", "2024-01-02T03:04:05Z"), ("java.time.LocalDate", "2024-02-28"),
        ("com.x.Color", "RED"), ("java.util.Map<Integer, String>", {"7": "a"}),
        (USER, {"id": 1, "name": "Ada", "color": "GREEN", "friends": [{"id": 2}]}),
    ]:
        assert _accepts(type_name, value) and _coerces(type_name, value), (type_name, value)
    for type_name, value in [("int", 2**31), ("char", "ab"), (USER, {"nick": "x"}), ("byte[]", "a!")]:
        assert not _accepts(type_name, value), (type_name, value)


def test_mapping_rules_of_the_readme() -> None:
    _, s = _validator("long", True)
    assert s == {"type": "integer", "minimum": -(2**63), "maximum": 2**63 - 1, "format": "int64"}
    _, s = _validator("java.math.BigDecimal", False)
    assert s["type"] == ["string", "null"]  # a string, never a float
    _, s = _validator("java.util.Date", False)
    assert s["format"] == "date-time"
    _, s = _validator("byte[]", False)
    assert s["contentEncoding"] == "base64"
    js = JavaSchemas()
    ref = js.schema(parse_type(USER), True, REG)
    assert ref == {"$ref": "#/components/schemas/com.x.User.input"}
    user = js.components["com.x.User.input"]
    assert user["additionalProperties"] is False  # an unknown field is a 400
    friends = user["properties"]["friends"]["items"]
    assert {"$ref": "#/components/schemas/com.x.User.input"} in friends["anyOf"]  # recursion by $ref
    assert js.components["com.x.Color"]["enum"] == ["RED", "GREEN"]
    out = JavaSchemas()
    out.schema(parse_type(USER), False, REG)
    assert "additionalProperties" not in out.components["com.x.User"]  # subclasses add fields


def test_response_schema_admits_what_the_gateway_writes() -> None:
    v, _ = _validator("double", False)
    assert v.is_valid(None)  # NaN has no JSON form: orjson writes null
    v, _ = _validator("java.lang.String", False)
    assert v.is_valid(None)
    v, _ = _validator(USER, False)
    assert v.is_valid({"class": "com.x.Admin", "id": 1, "name": None, "level": 3})


def _contract(yaml_text: str) -> Any:
    return parse_config(yaml_text, "gw.yaml").contract


def test_contract_config_defaults_and_errors() -> None:
    c = _contract("listen: {port: 0}\n")
    assert c.paths >= {"/openapi.json", "/docs", "/docs/swagger-ui-bundle.js"}
    assert "/mcp" not in c.paths and not c.mcp.enabled  # MCP only when configured
    c = _contract("contract: {mcp: {allow: ['com.x.*#get*']}, openapi: {path: /api.json}}\n")
    assert c.mcp.enabled and "/mcp" in c.paths and "/api.json" in c.paths
    assert c.mcp.allows("com.x.A", "getUser") and not c.mcp.allows("com.x.A", "delete")
    c = _contract("contract: {docs: {enabled: false}, openapi: {enabled: false}}\n")
    assert c.paths == frozenset()
    for bad, msg in [
        ("contract: {mcp: {path: mcp}}", "contract.mcp.path: expected an absolute path"),
        ("contract: {docs: {path: /x/}}", "contract.docs.path: no trailing"),
        ("contract: {mcp: {max_sessions: 0}}", "max_sessions: must be at least 1"),
        ("contract: {methods: {nohash: {}}}", "expected a key interface#method"),
        ("contract: {methods: {'a.B#m': {returns: 'List<'}}}", "returns"),
        ("contract: {docs: {path: /openapi.json}}", "distinct paths"),
        ("contract: {bogus: 1}", "unknown key"),
        ("contract: {openapi: {enabled: false}}", "enable it too"),
    ]:
        with pytest.raises(ConfigError, match=msg):
            _contract(bad + "\n")


def test_contract_path_cannot_shadow_a_route() -> None:
    with pytest.raises(ConfigError, match="also an explicit route"):
        parse_config(
            "services: [{interface: com.x.A}]\n"
            "routes: [{method: GET, path: /docs, service: com.x.A, call: m}]\n",
            "gw.yaml",
        )


def test_vendored_swagger_ui_is_the_npm_package() -> None:
    """gateway/contract/static holds swagger-ui-dist's files unchanged (VERSION.md)."""
    dist = ROOT / "interop/node/node_modules/swagger-ui-dist"
    static = ROOT / "gateway/contract/static"
    pkg = (dist / "package.json").read_text()
    assert '"version": "5.35.0"' in pkg
    assert "5.35.0" in (static / "VERSION.md").read_text()
    for name in ("swagger-ui-bundle.js", "swagger-ui.css", "LICENSE"):
        assert (static / name).read_bytes() == (dist / name).read_bytes(), name


def test_mcp_without_the_extra_is_a_config_error(monkeypatch: pytest.MonkeyPatch) -> None:
    import tribridge.config.contract as cc

    monkeypatch.setattr(cc, "mcp_available", lambda: False)
    with pytest.raises(ConfigError, match=r"pip install tribridge\[contract\]"):
        _contract("contract: {mcp: {allow: ['com.x.*']}}\n")
    assert not _contract("listen: {port: 0}\n").mcp.enabled  # off by default: no extra needed
