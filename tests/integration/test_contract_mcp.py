"""The gateway's MCP endpoint, driven by the official Python SDK client (``mcp`` on PyPI).

Tools come from the demo service's signatures; calls reach the demo provider through the same
path as HTTP calls (auth, rate limits, class policy), and the tool list follows the registry:
when the service's providers go away (a reload empties its static registry entry) a
``notifications/tools/list_changed`` reaches the client, and again when they come back.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from typing import Any

import httpx2
import orjson
import pytest
import yaml
from mcp.client import Client
from tribridge.cli.commands import DEMO_SERVICE, demo_config
from tribridge.interop.testing import BackgroundLoop

KEY = "k-0123456789abcdef"
S = DEMO_SERVICE


def _config(provider_port: int, *, providers: bool = True, extra: dict[str, Any] | None = None) -> str:
    doc = yaml.safe_load(demo_config(provider_port, 0))
    if not providers:
        doc["registries"]["static"]["services"][S] = []
    doc["contract"]["mcp"]["allow"] = [f"{S}#[!s]*", f"{S}#sum"]  # not slow
    doc["security"] = {
        "auth": {"keys": {"type": "api_key", "header": "x-api-key", "keys": [{"id": "a", "key": KEY}]}},
        "access": [{"path": "*", "auth": ["keys"]}],
        "rate_limits": [
            {"name": "adds", "service": S, "method": "addLong", "per": "route", "rate": "1/m", "burst": 2}
        ],
    }
    doc.update(extra or {})
    return yaml.safe_dump(doc, sort_keys=False)


@pytest.fixture(scope="module")
def gw() -> Iterator[tuple[BackgroundLoop, Any, Any]]:
    with BackgroundLoop() as bg:
        provider = bg.start_provider(version="1.0.0")
        gateway = bg.start_gateway(_config(provider.port))
        yield bg, gateway, provider


def _client(gw: Any, **kw: Any) -> Client:
    http = httpx2.AsyncClient(headers={"x-api-key": KEY}, timeout=10)
    from mcp.client.streamable_http import streamable_http_client

    return Client(streamable_http_client(f"http://127.0.0.1:{gw.port}/mcp", http_client=http), **kw)


def _text(result: Any) -> Any:
    return orjson.loads(result.content[0].text)


async def test_tools_from_signatures_and_calls(gw: Any) -> None:
    _, gateway, _ = gw
    async with _client(gateway) as c:
        tools = {t.name: t for t in (await c.list_tools()).tools}
        assert f"{S}.slow" not in tools  # the allowlist
        assert f"{S}.greet" in tools and f"{S}.getUser" in tools
        add = tools[f"{S}.add"].input_schema
        assert add["properties"]["arg0"]["format"] == "int32" and add["required"] == ["arg0", "arg1"]
        user = tools[f"{S}.echoUser"].input_schema
        pojo = user["$defs"]["com.tribridge.demo.User.input"]
        assert pojo["properties"]["id"]["format"] == "int64"
        assert user["$defs"]["com.tribridge.demo.Color"]["enum"] == ["RED", "GREEN", "BLUE"]
        assert tools[f"{S}.greet"].annotations.title == f"{S}#greet"
        out = tools[f"{S}.echoDecimal"].output_schema["properties"]["result"]
        assert out["type"] == ["string", "null"]  # BigDecimal is a string, never a float

        r = await c.call_tool(f"{S}.greet", {"arg0": "mcp"})
        assert not r.is_error and r.structured_content == {"result": "Hello, mcp"}
        r = await c.call_tool(f"{S}.echoDecimal", {"arg0": "12.50"})
        assert r.structured_content == {"result": "12.50"}
        r = await c.call_tool(
            f"{S}.echoUser",
            {"arg0": {"id": 9007199254740993, "name": "Ada", "age": 36, "color": "GREEN"}},
        )
        assert r.structured_content["result"]["id"] == 9007199254740993
        assert r.structured_content["result"]["color"] == "GREEN"
        r = await c.call_tool(f"{S}.fail", {"arg0": "boom"})
        assert r.is_error and _text(r)["error"]["code"] == "provider_exception"
        assert _text(r)["error"]["exception"] == "java.lang.IllegalStateException"


async def test_same_call_path_policy_and_limits(gw: Any) -> None:
    _, gateway, _ = gw
    async with _client(gateway) as c:
        # the class policy judges the arguments exactly as on HTTP
        r = await c.call_tool(f"{S}.echoObject", {"arg0": {"class": "java.lang.Runtime"}})
        assert r.is_error and _text(r)["error"]["code"] == "class_not_allowed"
        # arguments that do not fit the signature: the gateway's own 400
        r = await c.call_tool(f"{S}.add", {"arg0": "x", "arg1": 1})
        assert r.is_error and _text(r)["error"]["code"] == "bad_arguments"
        # the route's rate limit counts MCP calls (burst 2)
        codes = []
        for _ in range(3):
            r = await c.call_tool(f"{S}.addLong", {"arg0": 1, "arg1": 2})
            codes.append(_text(r)["error"]["code"] if r.is_error else r.structured_content["result"])
        assert codes == [3, 3, "rate_limited"]
    counters = gateway.stats
    assert counters is not None


def test_auth_origin_and_sessions(gw: Any) -> None:
    bg, gateway, _ = gw
    url = f"http://127.0.0.1:{gateway.port}/mcp"
    init = {
        "jsonrpc": "2.0",
        "id": 1,
        "method": "initialize",
        "params": {"protocolVersion": "2025-11-25", "capabilities": {}, "clientInfo": {"name": "t", "version": "1"}},
    }
    accept = {"accept": "application/json, text/event-stream"}
    with httpx2.Client(timeout=10) as h:
        r = h.post(url, json=init, headers=accept)
        assert r.status_code == 401 and r.json()["error"]["code"] == "unauthenticated"
        auth = {**accept, "x-api-key": KEY}
        r = h.post(url, json=init, headers={**auth, "origin": "http://evil.example"})
        assert r.status_code == 403
        r = h.post(url, json=init, headers={**auth, "origin": "http://localhost:6274"})
        assert r.status_code == 200 and r.json()["result"]["protocolVersion"] == "2025-11-25"
        sid = r.headers["mcp-session-id"]
        ping = {"jsonrpc": "2.0", "id": 2, "method": "ping"}
        assert h.post(url, json=ping, headers=auth).status_code == 400  # no session
        r = h.post(url, json=ping, headers={**auth, "mcp-session-id": "nope"})
        assert r.status_code == 404
        forged = ("A" if sid[0] != "A" else "B") + sid[1:]  # same shape, wrong signature
        assert h.post(url, json=ping, headers={**auth, "mcp-session-id": forged}).status_code == 404

        async def forget() -> None:  # as if another worker had created it, or it idled out
            gateway.contract.mcp.sessions.pop(sid)

        bg.run(forget())
        r = h.post(url, json=ping, headers={**auth, "mcp-session-id": sid})
        assert r.status_code == 200 and sid in gateway.contract.mcp.sessions
        r = h.post(url, json=ping, headers={**auth, "mcp-session-id": sid})
        assert r.status_code == 200 and r.json()["result"] == {}
        r = h.post(url, content=b"x" * 300_000, headers={**auth, "mcp-session-id": sid})
        assert r.status_code == 413
        r = h.post(url, content=b"{nope", headers={**auth, "mcp-session-id": sid})
        assert r.status_code == 400 and r.json()["error"]["code"] == -32700
        r = h.post(
            url,
            json={"jsonrpc": "2.0", "id": 3, "method": "tools/call", "params": {"name": f"{S}.slow", "arguments": {"arg0": 1}}},
            headers={**auth, "mcp-session-id": sid},
        )
        assert r.json()["error"]["code"] == -32602  # not on the allowlist: no such tool
        for args, what in [({"arg0": 1}, "missing argument(s): arg1"), ({"arg0": 1, "arg1": 2, "x": 3}, "unknown")]:
            r = h.post(
                url,
                json={"jsonrpc": "2.0", "id": 4, "method": "tools/call", "params": {"name": f"{S}.add", "arguments": args}},
                headers={**auth, "mcp-session-id": sid},
            )
            assert r.json()["error"]["code"] == -32602 and what in r.json()["error"]["message"]
        assert h.delete(url, headers={**auth, "mcp-session-id": sid}).status_code == 204
        r = h.post(url, json=ping, headers={**auth, "mcp-session-id": sid})
        assert r.status_code == 404


async def test_list_changed_when_providers_come_and_go(gw: Any) -> None:
    bg, gateway, provider = gw
    seen: list[str] = []
    changed = asyncio.Event()

    async def on_message(msg: Any) -> None:
        method = getattr(getattr(msg, "root", msg), "method", None)
        if method == "notifications/tools/list_changed":
            seen.append(method)
            changed.set()

    from tribridge.config.model import parse_config

    async with _client(gateway, message_handler=on_message) as c:
        before = {t.name for t in (await c.list_tools()).tools}
        assert f"{S}.greet" in before
        bg.run(gateway.reload(parse_config(_config(provider.port, providers=False))))
        await asyncio.wait_for(changed.wait(), 20)
        assert {t.name for t in (await c.list_tools()).tools} == set()
        changed.clear()
        bg.run(gateway.reload(parse_config(_config(provider.port))))
        await asyncio.wait_for(changed.wait(), 20)
        assert {t.name for t in (await c.list_tools()).tools} == before
    assert len(seen) >= 2


def test_typescript_sdk_client(gw: Any) -> None:
    """The official TypeScript SDK: handshake, tools, calls (validated by the SDK against our
    output schemas), and list_changed pushed over its GET stream while providers come and go."""
    import subprocess

    from tribridge.config.model import parse_config
    from tribridge.interop.peers import NODE_DIR, _require_node_modules

    bg, gateway, provider = gw
    node = _require_node_modules("@modelcontextprotocol/sdk")
    calls = [
        [f"{S}.add", {"arg0": 2, "arg1": 40}],
        [f"{S}.listUsers", {"arg0": 2}],
        [f"{S}.nextColor", {"arg0": "RED"}],
        [f"{S}.fail", {"arg0": "ts"}],
    ]
    proc = subprocess.Popen(
        [node, "mcp_ts_client.js", f"http://127.0.0.1:{gateway.port}/mcp", KEY, orjson.dumps(calls).decode(), "2"],
        cwd=NODE_DIR, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    try:
        assert proc.stdout is not None
        ready = orjson.loads(proc.stdout.readline() or b"{}")
        assert ready.get("step") == "ready", (ready, proc.stderr.read() if proc.poll() is not None else "")
        assert ready["protocol"] == "2025-11-25" and ready["session"]
        names = {t["name"] for t in ready["tools"]}
        assert f"{S}.echoUser" in names and f"{S}.slow" not in names
        out = [(c["isError"], c["structured"]) for c in ready["calls"]]
        assert out[0] == (False, {"result": 42})
        assert out[1][0] is False and [u["id"] for u in out[1][1]["result"]] == [1, 2], out[1]
        assert {u["class"] for u in out[1][1]["result"]} == {"com.tribridge.demo.User"}
        assert out[2] == (False, {"result": "GREEN"})
        assert out[3][0] is True and "provider_exception" in ready["calls"][3]["text"]
        bg.run(gateway.reload(parse_config(_config(provider.port, providers=False))))
        gone = orjson.loads(proc.stdout.readline() or b"{}")
        assert gone == {"step": "changed", "tools": []}
        bg.run(gateway.reload(parse_config(_config(provider.port))))
        back = orjson.loads(proc.stdout.readline() or b"{}")
        assert back.get("step") == "changed" and set(back["tools"]) == names
        assert proc.wait(30) == 0, proc.stderr.read()
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(5)
