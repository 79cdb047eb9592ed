"""Triple's HTTP/1.1 unary mode (``transport: http1``) against
@apachedubbo/dubbo-node serving Triple on HTTP/1.1 (interop/node/triple_server.js http1):
JSON bodies, version/group headers, error replies, trailers, keep-alive, deadlines."""

from __future__ import annotations

import asyncio
import http.client
import time
from collections.abc import Iterator

import orjson
import pytest
from tribridge.config.model import ConfigError, parse_config
from tribridge.interop.testing import BackgroundLoop
from tribridge.interop.triple_peers import JSON_SERVICE, TriplePeer, start_node_server
from tribridge.upstream.triple_http1 import Http1TripleClient


def post(port: int, method: str, body: object, headers: dict[str, str] | None = None):  # type: ignore[no-untyped-def]
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        conn.request(
            "POST", f"/{JSON_SERVICE}/{method}", body=orjson.dumps(body), headers=headers or {}
        )
        resp = conn.getresponse()
        raw = resp.read()
        return resp.status, orjson.loads(raw), {k.lower(): v for k, v in resp.getheaders()}
    finally:
        conn.close()


def config(port: int, extra: str = "") -> str:
    return f"""
listen: {{host: 127.0.0.1, port: 0}}
passthrough_headers: [traceid]
registries:
  static:
    type: static
    services:
      {JSON_SERVICE}: ["tri://127.0.0.1:{port}/{JSON_SERVICE}"]
services:
  - interface: {JSON_SERVICE}
    transport: http1
    retries: 0
    timeout: 2s
    methods: {{slow: {{timeout: 300ms}}}}
{extra}
auto_routes: {{prefix: /, expose: ["com.tribridge.*"]}}
"""


@pytest.fixture(scope="module")
def node_http1() -> Iterator[TriplePeer]:
    peer = start_node_server("http1")
    try:
        yield peer
    finally:
        peer.close()


@pytest.fixture(scope="module")
def gw(bg: BackgroundLoop, node_http1: TriplePeer) -> int:
    extra = "    response_attachments: [x-served-by, x-trace]"
    return bg.start_gateway(config(node_http1.port, extra)).port


def test_json_call(gw: int) -> None:
    status, body, h = post(gw, "greet", [{"name": "Ada"}])
    assert status == 200, body
    # int64 fields come as strings: the protobuf JSON mapping dubbo-node answers with
    assert body == {
        "message": "Hello, Ada",
        "server": "dubbo-node/http1",
        "big": "9007199254740993",
    }
    # the reply header and the Connect-style "trailer-" header, as configured attachments
    assert h["x-dubbo-attachment-x-served-by"] == "dubbo-node"
    assert h["x-dubbo-attachment-x-trace"] == "t-Ada"
    # non-ASCII JSON travels as UTF-8 both ways (greet would put it in a header, so fail)
    status, body, _ = post(gw, "fail", [{"code": 9, "message": "✓ é"}])
    assert (status, body["error"]["message"]) == (400, "✓ é"), body


def test_version_group_and_attachments_reach_provider(gw: int) -> None:
    status, body, _ = post(gw, "headers", [], {"traceid": "T-9"})
    assert status == 200, body
    hs = body["headers"]
    assert hs["content-type"] == "application/json"
    assert hs["tri-consumer-appname"] == "tribridge"
    assert hs["tri-protocol-version"] == "1.0.0"
    assert hs["traceid"] == "T-9"
    assert hs["tri-service-timeout"] == "2000"
    assert "tri-service-version" not in hs
    status, body, _ = post(
        gw, "greet", [{"name": "b"}], {"x-dubbo-version": "2.0.0", "x-dubbo-group": "g2"}
    )
    assert (status, body["message"]) == (200, "Hello, b v2")


@pytest.mark.parametrize(
    ("code", "http", "name"),
    [
        (3, 400, "INVALID_ARGUMENT"),
        (5, 404, "NOT_FOUND"),
        (7, 403, "PERMISSION_DENIED"),
        (13, 500, "INTERNAL"),
        (14, 503, "UNAVAILABLE"),
    ],
)
def test_error_replies(gw: int, code: int, http: int, name: str) -> None:
    status, body, _ = post(gw, "fail", [{"code": code, "message": f"says {name}"}])
    assert status == http, body
    assert body["error"]["grpc_status"] == name
    assert body["error"]["message"] == f"says {name}"


def test_unknown_method_and_bad_body(gw: int) -> None:
    status, body, _ = post(gw, "nope", [{}])
    assert status == 404 and body["error"]["code"] == "not_found", body
    # two arguments are sent as a JSON array, which a one-message method refuses (400)
    status, body, _ = post(gw, "greet", [{"name": "a"}, 1])
    assert status == 400 and body["error"]["grpc_status"] == "INVALID_ARGUMENT", body


def test_deadline(gw: int) -> None:
    t = time.monotonic()
    status, body, _ = post(gw, "slow", [{"times": 3000}])
    assert status == 504 and body["error"]["code"] == "upstream_timeout", body
    assert time.monotonic() - t < 2.5
    assert post(gw, "slow", [{"times": 5}])[:2] == (
        200,
        {"message": "slept 5", "server": "dubbo-node/http1"},
    )


def test_keep_alive_and_concurrency(node_http1: TriplePeer) -> None:
    async def go() -> tuple[list[str], int, int]:
        c = Http1TripleClient(max_connections=4)
        addr = ("127.0.0.1", node_http1.port)
        path = f"/{JSON_SERVICE}/greet"
        try:
            seq = [await c.unary(addr, path, b'{"name":"s"}', [], 2) for _ in range(20)]
            opened_seq = c.pool(*addr).opened
            par = await asyncio.gather(
                *[c.unary(addr, path, b'{"name":"%d"}' % i, [], 5) for i in range(40)]
            )
            got = [orjson.loads(r.body)["message"] for r in seq + list(par)]
            return got, opened_seq, c.pool(*addr).opened
        finally:
            await c.close()

    got, opened_seq, opened = asyncio.run(go())
    assert got[:20] == ["Hello, s"] * 20
    assert got[20:] == [f"Hello, {i}" for i in range(40)]
    assert opened_seq == 1  # 20 sequential calls on one kept-alive connection
    assert opened <= 4  # 40 concurrent calls, at most max_connections


def test_connect_refused_is_not_sent() -> None:
    from tribridge.upstream.triple import TripleCallError

    from tests.conftest import free_port

    async def go() -> TripleCallError:
        c = Http1TripleClient()
        try:
            await c.unary(("127.0.0.1", free_port()), "/x/y", b"{}", [], 1)
        except TripleCallError as e:
            return e
        finally:
            await c.close()
        raise AssertionError("no error")

    e = asyncio.run(go())
    assert e.status.name == "UNAVAILABLE" and e.sent is False


def test_transport_config() -> None:
    with pytest.raises(ConfigError, match="transport"):
        parse_config(config(1).replace("transport: http1", "transport: http3"), "<t>")
    cfg = parse_config(config(1).replace("transport: http1", "transport: h2"), "<t>")
    assert cfg.services[0].transport == ""
