"""The guard also covers protobuf IDL routes (gRPC/Triple): auth and rate limits apply
before any RPC, and forwarded claims replace client-sent metadata of the same name."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from tribridge.interop.idl_peers import ReadyProcess, start_grpc_server
from tribridge.interop.testing import BackgroundLoop, http_request
from tribridge.routing.idl_routes import _override

SVC = "idl.demo.v1.Demo"


@pytest.fixture(scope="module")
def grpcio_demo() -> Iterator[ReadyProcess]:
    with start_grpc_server("demo", reflection="v1") as srv:
        yield srv


@pytest.fixture(scope="module")
def gw(grpcio_demo) -> Iterator[int]:  # type: ignore[no-untyped-def]
    cfg = f"""
listen: {{host: 127.0.0.1, port: 0}}
access_log: false
services:
  - {{interface: {SVC}, protocol: grpc, endpoints: ["127.0.0.1:{grpcio_demo.port}"],
     idl: {{reflection: true}}, timeout: 5s}}
security:
  auth: {{keys: {{type: api_key, keys: [{{id: alice, key: k-alice}}]}}}}
  access: [{{service: "{SVC}", method: Echo, auth: [keys], forward: {{sub: x-user}}}}]
  rate_limits: [{{name: describe, service: "{SVC}", method: Describe, rate: 1/m, burst: 1}}]
"""
    with BackgroundLoop() as bg:
        yield bg.start_gateway(cfg).port


def test_idl_auto_route_needs_credentials(gw: int) -> None:
    st, doc = http_request(gw, "POST", f"/{SVC}/Echo", {"name": "x"})
    assert st == 401 and doc["error"]["code"] == "unauthenticated"
    st, doc = http_request(gw, "POST", f"/{SVC}/Echo", {"name": "x"}, {"x-api-key": "k-alice"})
    assert (st, doc.get("name")) == (200, "x")


def test_idl_rate_limit(gw: int) -> None:
    assert http_request(gw, "POST", f"/{SVC}/Describe", {"name": "a", "age": 1})[0] == 200
    st, doc = http_request(gw, "POST", f"/{SVC}/Describe", {"name": "a", "age": 1})
    assert st == 429 and doc["error"]["rule"] == "describe"


def test_forwarded_claims_override_metadata() -> None:
    md = [("x-user", "mallory"), ("x-request-id", "r1"), ("x-tenant", "evil")]
    assert _override(md, {"x-user": "alice", "x-tenant": None}) == [
        ("x-request-id", "r1"),
        ("x-user", "alice"),
    ]
    assert _override(md, {}) == md
