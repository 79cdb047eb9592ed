"""The contract in front of the real Java matrix service (Apache Dubbo 3.3, ``TypesService``),
found through ZooKeeper with no signature configured: every type in ``/openapi.json`` and in
the MCP tools comes from the provider's published metadata.

* the document's schemas are the Java types (long -> int64, BigDecimal -> string, Date ->
  date-time, LocalDate -> date, enums, POJOs as components, byte[] as base64);
* schemathesis (derandomized, bounded) finds nothing: every schema-valid request is accepted by
  the gateway *and* the JVM, and every answer matches the document;
* the MCP Python SDK client calls typed methods with exact values.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import pytest
import schemathesis
import yaml
from hypothesis import HealthCheck, Phase, given, settings
from mcp.client import Client
from openapi_spec_validator import validate
from schemathesis.checks import CHECKS
from tribridge.interop.java_peers import TYPES, JavaPeers
from tribridge.interop.testing import BackgroundLoop, http_request

from tests.helpers.java_compat import BY_ID, COLOR_T, PERSON_T

pytestmark = pytest.mark.interop

#: the echo methods: scalars, value classes, collections, POJOs (slow, big, fail... are not
#: for a fuzzer; the matrix covers them)
EXPOSED = [f"{TYPES}#echo*", f"{TYPES}#describe", f"{TYPES}#length"]
MAX_EXAMPLES = 8
REF = "#/components/schemas/"


@pytest.fixture(scope="module")
def gw(java_peers: JavaPeers) -> Iterator[Any]:
    t = BY_ID["3.3-dubbo"]
    zk = java_peers.providers[t.provider].zookeeper
    doc = {
        "listen": {"host": "127.0.0.1", "port": 0},
        "registries": {"zk": f"zookeeper://{zk}?discovery=interface"},
        "registry_wait": "10s",
        "services": [{"interface": TYPES, "version": "1.0.0", "registry": "zk", "timeout": "20s", "retries": 0}],
        "auto_routes": {"prefix": "/", "expose": EXPOSED},
        "access_log": False,
        "contract": {"mcp": {"allow": [f"{TYPES}#echo*"]}},
    }
    with BackgroundLoop() as bg:
        gateway = bg.start_gateway(yaml.safe_dump(doc))
        deadline = time.monotonic() + 30
        paths: dict[str, Any] = {}
        while time.monotonic() < deadline and f"/{TYPES}/echoPerson" not in paths:
            time.sleep(0.3)
            paths = http_request(gateway.port, "GET", "/openapi.json")[1]["paths"]
        assert f"/{TYPES}/echoPerson" in paths, "the provider's metadata never arrived"
        yield gateway


def _arg(doc: dict[str, Any], method: str) -> Any:
    body = doc["paths"][f"/{TYPES}/{method}"]["post"]["requestBody"]["content"]["application/json"]
    return body["schema"]["prefixItems"][0]


def _out(doc: dict[str, Any], method: str) -> Any:
    return doc["paths"][f"/{TYPES}/{method}"]["post"]["responses"]["200"]["content"][
        "application/json"]["schema"]


def test_schemas_are_the_java_types(gw: Any) -> None:
    status, doc = http_request(gw.port, "GET", "/openapi.json")
    assert status == 200
    validate(doc)  # the OpenAPI 3.1 specification's own schema
    assert _arg(doc, "echoLong")["format"] == "int64"
    assert _arg(doc, "echoLong")["maximum"] == 2**63 - 1
    assert _arg(doc, "echoInt")["format"] == "int32"
    assert _arg(doc, "echoLongBoxed")["type"] == ["integer", "null"]
    assert _arg(doc, "echoBigDecimal")["type"] == "string"
    assert _out(doc, "echoBigDecimal")["type"] == ["string", "null"]
    assert _out(doc, "echoDate")["format"] == "date-time"
    assert _arg(doc, "echoLocalDate")["format"] == "date"
    assert _arg(doc, "echoBytes")["contentEncoding"] == "base64"
    assert _arg(doc, "echoColor") == {"$ref": REF + COLOR_T}
    assert _out(doc, "echoPerson") == {"anyOf": [{"$ref": REF + PERSON_T}, {"type": "null"}]}
    person = doc["components"]["schemas"][PERSON_T + ".input"]["properties"]
    assert person["id"]["format"] == "int64" and person["balance"]["type"] == ["string", "null"]
    assert person["born"]["format"] == "date-time" and person["day"]["type"] == ["string", "null"]
    assert person["color"]["anyOf"][0] == {"$ref": REF + COLOR_T}
    assert doc["components"]["schemas"][COLOR_T]["enum"] == ["RED", "GREEN", "BLUE"]
    assert f"/{TYPES}/slow" not in doc["paths"]  # not exposed, not documented


def test_schemathesis_against_java(gw: Any) -> None:
    base = f"http://127.0.0.1:{gw.port}"
    schema = schemathesis.openapi.from_url(f"{base}/openapi.json")
    excluded = [c for c in CHECKS.get_all() if getattr(c, "__name__", "") == "not_a_server_error"]
    ops = [r.ok() for r in schema.get_all_operations()]
    assert len(ops) >= 40
    failures: list[str] = []
    for op in ops:

        @settings(
            max_examples=MAX_EXAMPLES, derandomize=True, deadline=None, database=None,
            phases=[Phase.explicit, Phase.generate], suppress_health_check=list(HealthCheck),
        )
        @given(case=op.as_strategy())
        def run(case: Any) -> None:
            case.call_and_validate(base_url=base, excluded_checks=excluded, timeout=30)

        try:
            run()
        except (Exception, BaseExceptionGroup) as e:
            failures.append(f"{op.label}: {str(e)[:1500]}")
    assert not failures, "\n\n".join(failures)


async def test_mcp_tools_call_java(gw: Any) -> None:
    async with Client(f"http://127.0.0.1:{gw.port}/mcp") as c:
        tools = {t.name: t for t in (await c.list_tools()).tools}
        assert f"{TYPES}.echoPerson" in tools and f"{TYPES}.describe" not in tools
        schema = tools[f"{TYPES}.echoPerson"].input_schema
        assert schema["$defs"][PERSON_T + ".input"]["properties"]["id"]["format"] == "int64"
        r = await c.call_tool(f"{TYPES}.echoLong", {"arg0": 2**63 - 1})
        assert r.structured_content == {"result": 2**63 - 1}
        r = await c.call_tool(f"{TYPES}.echoBigDecimal", {"arg0": "1234.50"})
        assert r.structured_content == {"result": "1234.50"}
        person = {"name": "Ann", "id": 2**40, "balance": "0.10", "day": "2024-02-29", "color": "BLUE"}
        r = await c.call_tool(f"{TYPES}.echoPerson", {"arg0": person})
        assert not r.is_error, r.content
        out = r.structured_content["result"]
        assert out["id"] == 2**40 and out["balance"] == "0.10" and out["day"] == "2024-02-29"
        assert out["color"] == "BLUE" and out["class"] == PERSON_T
