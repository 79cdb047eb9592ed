"""The contract of protobuf IDL services (grpcio demo server, static .proto descriptors):
proto3 JSON schemas in ``/openapi.json``, schemathesis on them, and MCP tools that take the
request message as their arguments.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import schemathesis
import yaml
from hypothesis import HealthCheck, Phase, given, settings
from mcp.client import Client
from openapi_spec_validator import validate
from schemathesis.checks import CHECKS
from tribridge.interop.idl_peers import start_grpc_server
from tribridge.interop.testing import BackgroundLoop, http_request

PROTOS = Path(__file__).resolve().parents[2] / "interop" / "protos"
SVC = "idl.demo.v1.Demo"
REF = "#/components/schemas/"


def _config(port: int) -> str:
    return yaml.safe_dump({
        "listen": {"host": "127.0.0.1", "port": 0},
        "access_log": False,
        "services": [{
            "interface": SVC, "protocol": "grpc", "endpoints": [f"127.0.0.1:{port}"],
            "idl": {"protos": [f"{PROTOS}/demo.proto"], "include": [str(PROTOS)]}, "timeout": "5s",
        }],
        "routes": [
            {"method": "GET", "path": "/v1/{name=shelves/*}/books/{id}", "service": SVC, "call": "GetBook"},
            {"method": "GET", "path": "/v1/books/{id}", "service": SVC, "call": "GetBook"},
            {"method": "POST", "path": "/v1/people:describe", "service": SVC, "call": "Describe", "body": "*"},
        ],
        "contract": {"mcp": {"allow": [f"{SVC}#Echo", f"{SVC}#Describe"]}},
    })


@pytest.fixture(scope="module")
def gw() -> Iterator[Any]:
    with start_grpc_server("demo", reflection="v1") as srv, BackgroundLoop() as bg:
        yield bg.start_gateway(_config(srv.port))


def test_proto3_json_schemas(gw: Any) -> None:
    status, doc = http_request(gw.port, "GET", "/openapi.json")
    assert status == 200
    validate(doc)
    paths = doc["paths"]
    echo = paths[f"/{SVC}/Echo"]["post"]
    assert echo["requestBody"]["content"]["application/json"]["schema"] == {"$ref": REF + "idl.demo.v1.Person.input"}
    person_in = doc["components"]["schemas"]["idl.demo.v1.Person.input"]["properties"]
    person_out = doc["components"]["schemas"]["idl.demo.v1.Person"]["properties"]
    assert person_in["id"]["format"] == "int64" and person_in["id"]["type"] == "integer"
    assert person_out["id"]["type"] == "string"  # proto3 JSON writes 64-bit integers as strings
    assert person_in["avatar"]["contentEncoding"] == "base64"
    assert person_in["color"]["enum"] == ["COLOR_UNSPECIFIED", "RED", "GREEN", "BLUE"]
    assert person_in["born"]["anyOf"][0] == {"type": "string", "format": "date-time"}
    assert person_in["counts"]["additionalProperties"]["format"] == "int32"
    assert "pastAddresses" in person_in and "nickName" in person_in  # JSON names
    assert paths["/v1/books/{id}"]["get"]["parameters"][0]["schema"]["format"] == "int64"
    assert not any("shelves" in p or "{name" in p for p in paths)  # multi-segment: no OpenAPI form
    ids = [op["operationId"] for item in paths.values() for op in item.values()]
    assert len(ids) == len(set(ids))
    assert paths["/v1/people:describe"]["post"]["requestBody"]["content"]["application/json"][
        "schema"] == {"$ref": REF + "idl.demo.v1.Person.input"}


def test_schemathesis_on_idl(gw: Any) -> None:
    base = f"http://127.0.0.1:{gw.port}"
    schema = schemathesis.openapi.from_url(f"{base}/openapi.json")
    excluded = [c for c in CHECKS.get_all() if getattr(c, "__name__", "") == "not_a_server_error"]
    failures: list[str] = []
    ops = [r.ok() for r in schema.get_all_operations()]
    names = {op.label for op in ops}
    assert f"POST /{SVC}/Echo" in names and "GET /v1/books/{id}" in names
    for op in ops:
        if op.label.endswith(("/Slow", "/Fail")):
            continue  # Slow sleeps as told; Fail answers the status it is given: by design

        @settings(max_examples=15, derandomize=True, deadline=None, database=None,
                  phases=[Phase.explicit, Phase.generate], suppress_health_check=list(HealthCheck))
        @given(case=op.as_strategy())
        def run(case: Any) -> None:
            case.call_and_validate(base_url=base, excluded_checks=excluded, timeout=10)

        try:
            run()
        except (Exception, BaseExceptionGroup) as e:
            failures.append(f"{op.label}: {str(e)[:1500]}")
    assert not failures, "\n\n".join(failures)


async def test_idl_tools(gw: Any) -> None:
    async with Client(f"http://127.0.0.1:{gw.port}/mcp") as c:
        tools = {t.name: t for t in (await c.list_tools()).tools}
        assert set(tools) == {f"{SVC}.Echo", f"{SVC}.Describe"}
        assert tools[f"{SVC}.Echo"].input_schema["properties"]["id"]["format"] == "int64"
        r = await c.call_tool(f"{SVC}.Describe", {"name": "Ann", "id": 41, "tags": ["a", "b"]})
        assert not r.is_error, r.content
        out = r.structured_content["result"]
        assert out["tagCount"] == 2 and out["idPlusOne"] == "42"
