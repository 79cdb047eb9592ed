"""What the contract costs (issue 18): building the OpenAPI document, serving it, and an MCP
tool call next to the same call over plain HTTP.

    .venv/bin/python bench/contract_bench.py [--calls 300] [--builds 50]

One demo provider and one gateway (the demo config, every method an MCP tool) on a
background loop; the client is this process, one keep-alive connection per side, calls one
after another (latency, not throughput). Reported in ms:

* ``build``: ``Contract.openapi()`` from scratch (catalog + schemas + document), median;
* ``get_cached``: ``GET /openapi.json`` when nothing changed (served from the cache), median;
* ``http_call`` / ``mcp_call``: ``addLong(1, 2)`` as ``POST /{iface}/addLong`` and as MCP
  ``tools/call`` (JSON-RPC in, the same request re-entering ``Gateway.handle``, the result
  wrapped), median and p90.
"""

from __future__ import annotations

import argparse
import statistics
import time
from typing import Any

import httpx2
import orjson
from tribridge.cli.commands import DEMO_SERVICE, demo_config
from tribridge.interop.testing import BackgroundLoop


def _ms(xs: list[float]) -> dict[str, float]:
    xs = sorted(xs)
    return {"median": round(statistics.median(xs) * 1000, 3), "p90": round(xs[int(len(xs) * 0.9)] * 1000, 3)}


def _timed(fn: Any, n: int) -> list[float]:
    out = []
    for _ in range(n):
        t = time.perf_counter()
        fn()
        out.append(time.perf_counter() - t)
    return out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--calls", type=int, default=300)
    ap.add_argument("--builds", type=int, default=50)
    a = ap.parse_args()
    with BackgroundLoop() as bg:
        provider = bg.start_provider(version="1.0.0")
        gw = bg.start_gateway(demo_config(provider.port, 0))
        base = f"http://127.0.0.1:{gw.port}"

        async def build() -> None:
            gw.contract.openapi()

        builds = _timed(lambda: bg.run(build()), a.builds)
        with httpx2.Client(base_url=base, timeout=10) as h, httpx2.Client(base_url=base, timeout=10) as m:
            cached = _timed(lambda: h.get("/openapi.json").raise_for_status(), a.calls)
            http = _timed(
                lambda: h.post(f"/{DEMO_SERVICE}/addLong", content=b"[1, 2]").raise_for_status(), a.calls
            )
            acc = {"accept": "application/json, text/event-stream"}
            init = {"jsonrpc": "2.0", "id": 0, "method": "initialize", "params": {
                "protocolVersion": "2025-11-25", "capabilities": {}, "clientInfo": {"name": "b", "version": "1"}}}
            sid = m.post("/mcp", json=init, headers=acc).headers["mcp-session-id"]
            call = orjson.dumps({"jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": {
                "name": f"{DEMO_SERVICE}.addLong", "arguments": {"arg0": 1, "arg1": 2}}})
            hdrs = {**acc, "mcp-session-id": sid, "content-type": "application/json"}

            def mcp_call() -> None:
                r = m.post("/mcp", content=call, headers=hdrs)
                assert r.json()["result"]["structuredContent"] == {"result": 3}

            mcp = _timed(mcp_call, a.calls)
        doc_bytes = len(orjson.dumps(bg.run(_doc(gw))))
    print(orjson.dumps({
        "document_bytes": doc_bytes,
        "build": _ms(builds),
        "get_cached": _ms(cached),
        "http_call": _ms(http),
        "mcp_call": _ms(mcp),
    }, option=orjson.OPT_INDENT_2).decode())


async def _doc(gw: Any) -> Any:
    return gw.contract.openapi()


if __name__ == "__main__":
    main()
