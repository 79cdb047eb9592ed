"""``/openapi.json`` and ``/docs`` on a running gateway (demo provider), ``tribridge openapi``.

The document follows what is served: a reload that adds a route or exposes fewer methods shows
in the next GET; signatures the provider publishes in its metadata (no configured methods) are
in it as soon as the registry delivers them; the contract paths obey the access rules.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from typing import Any

import pytest
import yaml
from openapi_spec_validator import validate
from tribridge.cli.commands import DEMO_SERVICE, demo_config
from tribridge.config.model import parse_config
from tribridge.interop.testing import BackgroundLoop, http_request

from tests.conftest import tb

S = DEMO_SERVICE


@pytest.fixture(scope="module")
def bg() -> Iterator[tuple[BackgroundLoop, Any]]:
    with BackgroundLoop() as loop:
        yield loop, loop.start_provider(version="1.0.0")


def _doc(provider_port: int) -> dict[str, Any]:
    return yaml.safe_load(demo_config(provider_port, 0))


def test_document_of_the_demo(bg: Any) -> None:
    loop, provider = bg
    gw = loop.start_gateway(yaml.safe_dump(_doc(provider.port)))
    status, doc = http_request(gw.port, "GET", "/openapi.json")
    assert status == 200 and doc["openapi"] == "3.1.0"
    validate(doc)  # the OpenAPI 3.1 specification's own schema
    paths = doc["paths"]
    # explicit routes with typed parameters
    users = paths["/users/{id}"]["get"]
    assert users["parameters"][0] == {
        "name": "id", "in": "path", "required": True,
        "schema": {"type": "integer", "minimum": -(2**63), "maximum": 2**63 - 1, "format": "int64"},
    }
    assert users["responses"]["200"]["content"]["application/json"]["schema"] == {
        "anyOf": [{"$ref": "#/components/schemas/com.tribridge.demo.User"}, {"type": "null"}]
    }
    # auto routes: the JSON array of arguments, typed per position
    add_long = paths[f"/{S}/addLong"]["post"]
    body = add_long["requestBody"]["content"]["application/json"]["schema"]
    assert [i["format"] for i in body["prefixItems"]] == ["int64", "int64"]
    assert body["minItems"] == body["maxItems"] == 2
    dec = paths[f"/{S}/echoDecimal"]["post"]["responses"]["200"]["content"]["application/json"]
    assert dec["schema"]["type"] == ["string", "null"]
    assert "pattern" in paths[f"/{S}/echoBytes"]["post"]["requestBody"]["content"][
        "application/json"]["schema"]["prefixItems"][0]
    assert paths[f"/{S}/noop"]["post"]["responses"]["200"]["content"]["application/json"][
        "schema"] == {"type": "null"}
    # documented errors
    assert add_long["responses"]["504"] == {"$ref": "#/components/responses/E504"}
    assert "401" not in add_long["responses"]  # no access rules: no auth errors
    comps = doc["components"]["schemas"]
    assert comps["com.tribridge.demo.Color"]["enum"] == ["RED", "GREEN", "BLUE"]
    assert comps["com.tribridge.demo.User.input"]["properties"]["id"]["format"] == "int64"
    # the docs page and its files come from the package, nothing from elsewhere
    status, page = http_request(gw.port, "GET", "/docs")
    assert status == 200 and b'data-spec="/openapi.json"' in page and b"https://" not in page
    status, js = http_request(gw.port, "GET", "/docs/swagger-ui-bundle.js")
    assert status == 200 and len(js) > 1_000_000
    assert http_request(gw.port, "POST", "/openapi.json")[0] == 405


def test_document_follows_reloads(bg: Any) -> None:
    loop, provider = bg
    d = _doc(provider.port)
    gw = loop.start_gateway(yaml.safe_dump(d))
    assert f"/{S}/fail" in http_request(gw.port, "GET", "/openapi.json")[1]["paths"]
    d["auto_routes"]["expose"] = [f"{S}#greet"]
    d["routes"].append(
        {"method": "GET", "path": "/colors/{c}", "service": S, "call": "colorOf",
         "params": [{"from": "path", "name": "c", "type": "com.tribridge.demo.Color"}]}
    )
    d["contract"]["openapi"] = {"title": "demo", "path": "/v2/openapi.json"}
    loop.run(gw.reload(parse_config(yaml.safe_dump(d))))
    assert http_request(gw.port, "GET", "/openapi.json")[0] == 404  # moved
    status, doc = http_request(gw.port, "GET", "/v2/openapi.json")
    assert status == 200 and doc["info"]["title"] == "demo"
    autos = {p for p in doc["paths"] if p.startswith(f"/{S}/")}
    assert autos == {f"/{S}/greet"}
    assert doc["paths"]["/colors/{c}"]["get"]["parameters"][0]["schema"] == {
        "$ref": "#/components/schemas/com.tribridge.demo.Color"
    }


def test_signatures_from_provider_metadata(bg: Any, nacos: Any) -> None:
    """No configured methods: the document (and the MCP tools) have what the provider
    publishes to the metadata report, found through the registry (Nacos emulator)."""
    import uuid

    from tribridge.interop.nacos_registration import (
        DubboNacosProvider,
        demo_provider_url,
        demo_service_definition,
    )

    loop, provider = bg
    ns = f"ns-{uuid.uuid4().hex[:8]}"
    reg = DubboNacosProvider(
        nacos.address, demo_provider_url(provider.port), namespace=ns,
        definition=demo_service_definition(),
    )
    loop.run(reg.start())
    try:
        d = {
            "listen": {"host": "127.0.0.1", "port": 0},
            "registries": {"nacos": f"nacos://{nacos.address}?namespace={ns}&timeout=1000&refresh=1"},
            "services": [{"interface": S, "version": "1.0.0", "registry": "nacos"}],
            "auto_routes": {"prefix": "/rpc", "expose": [S]},
            "contract": {"mcp": {"allow": [f"{S}#getUser"]}},
        }
        gw = loop.start_gateway(yaml.safe_dump(d))
        deadline = time.monotonic() + 15
        doc: dict[str, Any] = {}
        while time.monotonic() < deadline and f"/rpc/{S}/getUser" not in doc.get("paths", {}):
            time.sleep(0.2)
            doc = http_request(gw.port, "GET", "/openapi.json")[1]
        op = doc["paths"][f"/rpc/{S}/getUser"]["post"]
        arg = op["requestBody"]["content"]["application/json"]["schema"]["prefixItems"][0]
        assert arg["format"] == "int64"
        out = op["responses"]["200"]["content"]["application/json"]["schema"]
        assert out == {"anyOf": [{"$ref": "#/components/schemas/com.tribridge.demo.User"}, {"type": "null"}]}
        user = doc["components"]["schemas"]["com.tribridge.demo.User"]["properties"]
        assert user["id"]["format"] == "int64" and "color" in user
        tools = loop.run(_tools(gw))
        assert set(tools) == {f"{S}.getUser"}
    finally:
        loop.run(reg.close())


async def _tools(gw: Any) -> dict[str, Any]:
    return gw.contract.tools()[1]


def test_contract_paths_obey_access_rules(bg: Any) -> None:
    loop, provider = bg
    d = _doc(provider.port)
    d["security"] = {
        "auth": {"k": {"type": "api_key", "header": "x-api-key", "keys": [{"id": "a", "key": "k" * 20}]}},
        "access": [
            {"service": "tribridge.contract", "method": "openapi", "auth": ["k"]},
            {"path": "/add", "auth": ["k"]},
        ],
    }
    gw = loop.start_gateway(yaml.safe_dump(d))
    status, body = http_request(gw.port, "GET", "/openapi.json")
    assert status == 401 and body["error"]["code"] == "unauthenticated"
    status, doc = http_request(gw.port, "GET", "/openapi.json", headers={"x-api-key": "k" * 20})
    assert status == 200
    assert doc["paths"]["/add"]["get"]["responses"]["401"] == {"$ref": "#/components/responses/E401"}
    # what Swagger UI's "Authorize" asks for, per operation as the first matching rule says
    assert doc["components"]["securitySchemes"] == {"k": {"type": "apiKey", "in": "header", "name": "x-api-key"}}
    assert doc["paths"]["/add"]["get"]["security"] == [{"k": []}]
    assert "security" not in doc["paths"]["/hello/{name}"]["get"]
    validate(doc)
    assert http_request(gw.port, "GET", "/add?a=1&b=2")[0] == 401
    assert http_request(gw.port, "GET", "/docs")[0] == 200  # the rule names only the document


def test_cli_prints_the_document(tmp_path: Any, bg: Any) -> None:
    _, provider = bg
    cfg = tmp_path / "gw.yaml"
    cfg.write_text(demo_config(provider.port, 0))
    r = tb("openapi", "-c", str(cfg))
    assert r.returncode == 0, r.stderr
    doc = json.loads(r.stdout)
    assert doc["paths"]["/hello/{name}"]["get"]["parameters"][0]["schema"]["type"] == "string"
    assert f"/{S}/listUsers" in doc["paths"]
    cfg.write_text("contract: {mcp: {max_sessions: 0}}\n")
    r = tb("openapi", "-c", str(cfg))
    assert r.returncode == 2 and "max_sessions" in r.stderr


def test_demo_command_serves_and_prints_the_contract() -> None:
    """``tribridge demo`` as a user runs it: the printed contract lines work as printed."""
    import re
    import subprocess
    import sys

    import httpx2

    proc = subprocess.Popen(
        [sys.executable, "-m", "tribridge.cli", "demo", "--port", "0"],
        stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
    )
    try:
        assert proc.stdout is not None
        lines: list[str] = []
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and not any("MCP" in x for x in lines):
            line = proc.stdout.readline()
            if not line:
                break
            lines.append(line.rstrip())
        text = "\n".join(lines)
        openapi = re.search(r"curl (http://127\.0\.0\.1:\d+/openapi\.json)", text)
        docs = re.search(r"open (http://127\.0\.0\.1:\d+/docs)", text)
        mcp = re.search(r"(http://127\.0\.0\.1:\d+/mcp)", text)
        assert openapi and docs and mcp, text
        with httpx2.Client(timeout=10) as h:
            doc = h.get(openapi.group(1)).json()
            assert f"/{S}/addLong" in doc["paths"]
            assert h.get(docs.group(1)).status_code == 200
            init = {"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
                "protocolVersion": "2025-06-18", "capabilities": {},
                "clientInfo": {"name": "t", "version": "1"}}}
            r = h.post(mcp.group(1), json=init, headers={"accept": "application/json, text/event-stream"})
            assert r.status_code == 200 and r.json()["result"]["protocolVersion"] == "2025-06-18"
    finally:
        proc.terminate()
        proc.wait(10)
