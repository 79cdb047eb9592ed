"""``response_attachments``: provider response attachments (Dubbo2) and trailers (Triple)
returned as ``x-dubbo-attachment-<name>`` HTTP response headers, only when configured."""

from __future__ import annotations

import http.client

import orjson
import pytest
from tribridge.config.model import ConfigError, parse_config
from tribridge.interop.testing import BackgroundLoop
from tribridge.interop.triple_peers import DEMO_SERVICE, SERVICE, TriplePeer


def post(port: int, path: str, body: object, headers: dict[str, str] | None = None):  # type: ignore[no-untyped-def]
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        conn.request("POST", path, body=orjson.dumps(body), headers=headers or {})
        resp = conn.getresponse()
        raw = resp.read()
        got = {k.lower(): v for k, v in resp.getheaders()}
        return resp.status, orjson.loads(raw), got
    finally:
        conn.close()


def gw_config(iface: str, url: str, extra: str, client: str = "lean") -> str:
    return f"""
listen: {{host: 127.0.0.1, port: 0}}
upstream: {{triple_client: {client}}}
passthrough_headers: [traceid]
registries:
  static:
    type: static
    services:
      {iface}: ["{url}"]
services:
  - interface: {iface}
    version: "1.0.0"
    retries: 0
    methods: {{greet: [java.lang.String]}}
{extra}
auto_routes: {{prefix: /, expose: ["com.tribridge.*"]}}
"""


def attachment_headers(h: dict[str, str]) -> dict[str, str]:
    return {k: v for k, v in h.items() if k.startswith("x-dubbo-attachment-")}


@pytest.mark.parametrize("client", ["grpcio", "lean"])
def test_triple_trailers_as_headers(bg: BackgroundLoop, grpc_peer: TriplePeer, client: str) -> None:
    url = f"tri://127.0.0.1:{grpc_peer.port}/{SERVICE}"
    extra = "    response_attachments: [x-served-by, X-Echo, traceid]"
    gw = bg.start_gateway(gw_config(SERVICE, url, extra, client)).port
    status, body, h = post(gw, f"/{SERVICE}/greet", ["a"], {"traceid": "T-77"})
    assert status == 200 and body == "Hello, a (via grpcio)"
    # the grpcio server's trailers: a text one, a -bin one (bytes -> base64), and the
    # request attachment it echoes back
    assert attachment_headers(h) == {
        "x-dubbo-attachment-x-served-by": "grpcio",
        "x-dubbo-attachment-x-echo": "AP8=",
        "x-dubbo-attachment-traceid": "T-77",
    }


def test_triple_not_configured_no_headers(bg: BackgroundLoop, grpc_peer: TriplePeer) -> None:
    url = f"tri://127.0.0.1:{grpc_peer.port}/{SERVICE}"
    gw = bg.start_gateway(gw_config(SERVICE, url, "")).port
    status, _, h = post(gw, f"/{SERVICE}/greet", ["a"], {"traceid": "T-1"})
    assert status == 200 and attachment_headers(h) == {}


def test_dubbo2_response_attachments(bg: BackgroundLoop) -> None:
    # the demo provider answers as Java does: response attachments {"dubbo": "2.0.2"} for a
    # request of dubbo version 2.0.2
    provider = bg.start_provider(version="1.0.0")
    url = f"127.0.0.1:{provider.port}?version=1.0.0"
    gw = bg.start_gateway(gw_config(DEMO_SERVICE, url, '    response_attachments: ["*"]')).port
    status, body, h = post(gw, f"/{DEMO_SERVICE}/greet", ["x"])
    assert (status, body) == (200, "Hello, x")
    assert attachment_headers(h) == {"x-dubbo-attachment-dubbo": "2.0.2"}
    gw2 = bg.start_gateway(gw_config(DEMO_SERVICE, url, "    response_attachments: [other]")).port
    status, _, h = post(gw2, f"/{DEMO_SERVICE}/greet", ["x"])
    assert status == 200 and attachment_headers(h) == {}


def test_bad_names_refused() -> None:
    with pytest.raises(ConfigError, match="response_attachments"):
        parse_config(gw_config(SERVICE, "127.0.0.1:1", "    response_attachments: ['a b']"), "<t>")
    with pytest.raises(ConfigError, match="response_attachments"):
        parse_config(gw_config(SERVICE, "127.0.0.1:1", "    response_attachments: [1]"), "<t>")


def test_value_rendering() -> None:
    from tribridge.routing.render import attachment_headers as render

    got = render(
        {"A": "x", "u": "ü é", "b": b"\x01\x02", "n": 5, "skip": "no", "bad name": "v"},
        ["a", "u", "b", "n", "bad name"],
    )
    assert got == [
        ("x-dubbo-attachment-a", "x"),
        ("x-dubbo-attachment-u", "%C3%BC %C3%A9"),
        ("x-dubbo-attachment-b", "AQI="),
        ("x-dubbo-attachment-n", "5"),
    ]
