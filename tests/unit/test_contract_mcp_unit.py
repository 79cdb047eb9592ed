"""The MCP endpoint's bounds, without a listener: sessions, held streams, origins, ids."""

from __future__ import annotations

import asyncio
from typing import Any

import orjson
from tribridge.config.contract import McpSettings
from tribridge.contract.mcp import McpEndpoint, origin_allowed
from tribridge.http.messages import Request

INIT = orjson.dumps({
    "jsonrpc": "2.0", "id": 1, "method": "initialize",
    "params": {"protocolVersion": "2025-11-25", "capabilities": {}, "clientInfo": {"name": "t", "version": "1"}},
})
ACCEPT = "application/json, text/event-stream"


def _req(method: str, body: bytes = b"", **headers: str) -> Request:
    h = {"accept": ACCEPT, **{k.replace("_", "-"): v for k, v in headers.items()}}
    return Request(method, "/mcp", "", h, body, ("127.0.0.1", 1), True)


def _endpoint(gen: list[int]) -> McpEndpoint:
    async def call(*_: Any) -> Any:
        raise AssertionError("no calls here")

    return McpEndpoint(lambda: (gen[0], {}), call, "0")


async def test_sessions_are_bounded_and_streams_held_at_most_twice() -> None:
    gen = [1]
    ep = _endpoint(gen)
    cfg = McpSettings(enabled=True, max_sessions=2, stream_hold=0.3)
    sids = []
    for _ in range(3):
        r = await ep.handle(_req("POST", INIT), cfg)
        assert r.status == 200
        sids.append(dict(r.headers)["mcp-session-id"])
    assert set(ep.sessions) == set(sids[1:])  # the least recently used one made room
    # three GETs on one session: two are held, the third is answered at once
    gets = [asyncio.ensure_future(ep.handle(_req("GET", mcp_session_id=sids[1]), cfg)) for _ in range(3)]
    await asyncio.sleep(0.05)
    assert sum(g.done() for g in gets) == 1
    gen[0] = 2  # the tool list changed: held streams end with the notification
    done = await asyncio.gather(*gets)
    assert any(b"tools/list_changed" in r.body for r in done)
    assert all(r.content_type == "text/event-stream" and r.body.startswith(b"retry:") for r in done)
    # the other session hears of the change with its next response, as a finished SSE body
    ping = orjson.dumps({"jsonrpc": "2.0", "id": 2, "method": "ping"})
    r = await ep.handle(_req("POST", ping, mcp_session_id=sids[2]), cfg)
    assert r.content_type == "text/event-stream" and r.body.index(b"list_changed") < r.body.index(b'"id":2')
    r = await ep.handle(_req("POST", ping, mcp_session_id=sids[2]), cfg)
    assert r.content_type == "application/json"  # told once
    # both sessions hold streams: no room for a third
    held = [asyncio.ensure_future(ep.handle(_req("GET", mcp_session_id=s), cfg)) for s in sids[1:]]
    await asyncio.sleep(0.05)
    r = await ep.handle(_req("POST", INIT), cfg)
    assert r.status == 503
    ep.close()  # shutdown ends held streams at once
    assert all(r.status == 200 for r in await asyncio.wait_for(asyncio.gather(*held), 1))


def test_origins() -> None:
    assert origin_allowed(None, [])
    assert origin_allowed("http://localhost:6274", [])
    assert origin_allowed("http://[::1]:80", [])
    assert not origin_allowed("http://evil.example", [])
    assert not origin_allowed("http://127.0.0.1.evil.example", [])
    assert origin_allowed("https://agents.example", ["https://agents.example"])
    assert not origin_allowed("null", [])


async def test_discover_probe_is_method_not_found() -> None:
    ep = _endpoint([1])
    probe = orjson.dumps({"jsonrpc": "2.0", "id": 7, "method": "server/discover", "params": {}})
    r = await ep.handle(_req("POST", probe), McpSettings(enabled=True))
    assert r.status == 200 and orjson.loads(r.body)["error"]["code"] == -32601
