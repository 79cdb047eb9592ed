"""Triple providers behind the Dubbo2 ingress and across a relay link.

Domain B's providers speak Triple (wrapper mode): a grpcio server and an apache-dubbo
server (interop/triple_peers.py; both check ``argTypes`` against the Java signature and
answer business exceptions with ``tri-exception-code``).  They are reached by

* HTTP/JSON in domain A -> gateway A -> relay link -> gateway B -> Triple provider,
* a real Dubbo2 consumer (dubbo-ssl-python) -> A's Dubbo2 ingress -> link -> B -> Triple,
* dubbo-ssl-python -> B's own Dubbo2 ingress (``to: local``) -> Triple.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from dubbo_ssl.client import DubboClient
from dubbo_ssl.common.exceptions import DubboResponseException
from tribridge.codecs.dubbo import decode_response, encode_request
from tribridge.codecs.dubbo.frame import OK, SERVER_TIMEOUT, SERVICE_ERROR, SERVICE_NOT_FOUND
from tribridge.interop.testing import BackgroundLoop, http_request
from tribridge.interop.triple_peers import SERVICE, TriplePeer, start_peer
from tribridge.security.certs import make_certs

from tests.conftest import free_port
from tests.helpers.dubbo_raw import RawDubbo
from tests.interop.test_triple_gateway import METHODS

DEAD = "com.tribridge.triple.Gone"


def b_config(grpc_port: int, dubbo_port: int, dead_port: int, relay_port: int, certs: Path) -> str:
    return f"""
registries:
  static:
    type: static
    services:
      {SERVICE}:
        - tri://127.0.0.1:{grpc_port}/{SERVICE}?version=1.0.0&group=blue
        - tri://127.0.0.1:{dubbo_port}/{SERVICE}?version=1.0.0&group=red
      {DEAD}: ["tri://127.0.0.1:{dead_port}/{DEAD}?version=1.0.0"]
relay:
  tls: {{cert: {certs}/server.pem, key: {certs}/server.key, ca: {certs}/ca.pem}}
  listen: {{host: 127.0.0.1, port: {relay_port}}}
  exports: ["com.tribridge.triple.*"]
  allow: [client]
dubbo_ingress:
  listen: {{host: 127.0.0.1, port: 0}}
  routes: [{{interface: "com.tribridge.triple.*", to: local}}]
"""


def a_config(relay_port: int, certs: Path) -> str:
    return f"""
registries:
  static: {{type: static, services: {{{SERVICE}: ["relay:b"], {DEAD}: ["relay:b"]}}}}
relay:
  tls: {{cert: {certs}/client.pem, key: {certs}/client.key, ca: {certs}/ca.pem}}
  links:
    b: {{address: "127.0.0.1:{relay_port}", server_name: tribridge-relay, heartbeat: 1s}}
services:
  - interface: {SERVICE}
    version: 1.0.0
    group: blue
    retries: 0{METHODS}  - {{interface: {DEAD}, version: 1.0.0, retries: 0, methods: {{x: []}}}}
passthrough_headers: [x-request-id]
auto_routes: {{prefix: /, expose: ["com.tribridge.*"]}}
dubbo_ingress:
  listen: {{host: 127.0.0.1, port: 0}}
  routes: [{{interface: "com.tribridge.*", to: "relay:b"}}]
"""


class Env:
    bg: BackgroundLoop
    a: Any
    b: Any

    def rpc(self, method: str, args: object, headers: dict[str, str] | None = None) -> Any:
        return http_request(self.a.port, "POST", f"/{SERVICE}/{method}", args, headers)

    def consumer(self, port: int, group: str = "blue") -> DubboClient:
        return DubboClient(SERVICE, group=group, version="1.0.0", host=f"127.0.0.1:{port}")


@pytest.fixture(scope="module")
def env(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Env]:
    certs = tmp_path_factory.mktemp("certs")
    make_certs(certs)
    grpc_peer: TriplePeer = start_peer("grpc", free_port())
    dubbo_peer: TriplePeer | None = None
    try:
        dubbo_peer = start_peer("dubbo", free_port())
        e = Env()
        with BackgroundLoop() as bg:
            e.bg = bg
            relay_port = free_port()
            e.b = bg.start_gateway(
                b_config(grpc_peer.port, dubbo_peer.port, free_port(), relay_port, certs)
            )
            e.a = bg.start_gateway(a_config(relay_port, certs))
            link = e.a.relay.links["b"]
            deadline = time.monotonic() + 10
            while not link.up:
                assert time.monotonic() < deadline, "relay link did not come up"
                time.sleep(0.02)
            yield e
    finally:
        grpc_peer.close()
        if dubbo_peer is not None:
            dubbo_peer.close()


# ---- HTTP/JSON in A -> relay -> B -> Triple --------------------------------------------------


def test_http_json_reaches_triple_providers_through_the_relay(env: Env) -> None:
    assert env.rpc("greet", ["Ada ✓"]) == (200, "Hello, Ada ✓ (via grpcio)")
    assert env.rpc("add", [2, 40]) == (200, 42)
    assert env.rpc("addLong", [9007199254740993, 1]) == (200, 9007199254740994)
    assert env.rpc("names", [["a", "b"]]) == (200, ["A", "B"])
    doc = {"k": [1, 2.5, True, None, "x"], "n": {"m": "v"}}
    assert env.rpc("echo", [doc]) == (200, doc)
    assert env.rpc("echo", [None]) == (200, None)
    # the same route, another group: apache-dubbo's Triple server
    assert env.rpc("greet", ["Bo"], {"x-dubbo-group": "red"}) == (
        200,
        "Hello, Bo (via apache-dubbo)",
    )


def test_triple_headers_and_attachments_cross_the_link(env: Env) -> None:
    status, seen = env.rpc("headers", [], {"x-request-id": "r-42"})
    assert status == 200, seen
    assert seen["tri-service-version"] == "1.0.0" and seen["tri-service-group"] == "blue"
    assert seen["tri-consumer-appname"] == "tribridge"
    assert seen["x-request-id"] == "r-42"
    assert "generic" not in seen


def test_triple_business_exception_through_the_relay(env: Env) -> None:
    status, body = env.rpc("fail", ["nope"])
    assert status == 500, body
    assert body["error"]["exception"] == "java.lang.IllegalStateException"
    assert "failing on purpose: nope" in body["error"]["message"]


def test_triple_error_statuses_through_the_relay(env: Env) -> None:
    status, body = env.rpc("status", [4, "too slow"])  # DEADLINE_EXCEEDED
    assert status == 504, body
    status, body = env.rpc("status", [14, "backend down"])  # UNAVAILABLE -> 70
    assert status == 502 and "backend down" in body["error"]["message"], body
    t0 = time.monotonic()
    status, body = env.rpc("sleep", [3000])  # the route's 300 ms reaches B's Triple call
    assert status == 504, body
    assert time.monotonic() - t0 < 2.5
    assert env.rpc("greet", ["after"]) == (200, "Hello, after (via grpcio)")


def test_dead_triple_provider_in_b_is_a_clear_error(env: Env) -> None:
    t0 = time.monotonic()
    status, body = http_request(env.a.port, "POST", f"/{DEAD}/x", [])
    assert status in (502, 503), body
    assert DEAD in body["error"]["message"]
    assert time.monotonic() - t0 < 5
    assert env.a.relay.links["b"].up


# ---- Dubbo2 consumers -> Triple ------------------------------------------------------------


@pytest.mark.parametrize("where", ["a_relay", "b_local"])
def test_dubbo_consumer_reaches_triple_provider(env: Env, where: str) -> None:
    port = env.a.relay.ingress.port if where == "a_relay" else env.b.relay.ingress.port
    c = env.consumer(port)
    ctx = {"x-trace-id": "t-9", "timeout": "4000"}
    assert c.call("greet", ["Bob"], context=ctx, timeout=5) == "Hello, Bob (via grpcio)"
    assert c.call("add", [40, 2], timeout=5) == 42
    seen = c.call("headers", [], context=ctx, timeout=5)
    assert seen["x-trace-id"] == "t-9" and seen["tri-service-group"] == "blue"
    assert seen["tri-service-version"] == "1.0.0"
    with pytest.raises(DubboResponseException, match="IllegalStateException"):
        c.call("fail", ["bad"], timeout=5)
    red = env.consumer(port, group="red")
    assert red.call("greet", ["Cy"], timeout=5) == "Hello, Cy (via apache-dubbo)"


def test_dubbo_consumer_triple_statuses(env: Env) -> None:
    """Raw frames, to see the Dubbo status a consumer gets for each Triple outcome."""
    raw = RawDubbo("127.0.0.1", env.b.relay.ingress.port)
    att = {"group": "blue", "timeout": "300"}
    ids = iter(range(1, 100))

    def call(path: str, method: str, desc: str, args: list[Any]) -> Any:
        rid = next(ids)
        raw.send(encode_request(rid, path, method, desc, args, att, version="1.0.0"))
        fr = raw.recv(5)
        assert fr.request_id == rid
        return fr.status, decode_response(fr)

    try:
        t0 = time.monotonic()
        status, _ = call(SERVICE, "sleep", "I", [2000])
        assert status == SERVER_TIMEOUT and time.monotonic() - t0 < 1.5
        status, res = call(SERVICE, "status", "ILjava/lang/String;", [14, "gone"])
        assert status == SERVICE_ERROR and "gone" in res.error, res
        # argTypes the provider has no overload for: UNIMPLEMENTED -> SERVICE_NOT_FOUND
        status, res = call(SERVICE, "greet", "I", [1])
        assert status == SERVICE_NOT_FOUND and "no overload" in res.error, res
        status, res = call(SERVICE, "echo", "Ljava/lang/Object;", [None])
        assert status == OK and res.ok and res.value is None, res
        status, res = call(SERVICE, "echo", "Ljava/lang/Object;", [{"a": [1, "b"]}])
        assert status == OK and res.value == {"a": [1, "b"]}, res
        status, res = call(DEAD, "x", "", [])
        assert status == SERVICE_ERROR and DEAD in res.error, res
        status, res = call(SERVICE, "add", "II", [1, 2])  # the connection still serves
        assert status == OK and res.value == 3, res
    finally:
        raw.close()
