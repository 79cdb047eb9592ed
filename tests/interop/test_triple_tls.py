"""TLS to Triple providers: a grpcio server serving TLS (ALPN h2), once with client
certificates required, reached through the gateway with each Triple client (grpcio, h2,
lean) via ``security.upstream_tls`` profiles; and the failures a misconfiguration gives
(wrong CA, no client certificate, cleartext to a TLS port) as clear 503s."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from tribridge.interop.testing import http_request
from tribridge.interop.triple_peers import SERVICE, TriplePeer, start_peer
from tribridge.security.certs import make_certs

from tests.conftest import free_port


@pytest.fixture(scope="module")
def certs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    d = tmp_path_factory.mktemp("tri-certs")
    make_certs(d)
    make_certs(d / "other")  # an unrelated CA
    return d


@pytest.fixture(scope="module")
def tls_peer(certs: Path) -> Iterator[TriplePeer]:
    with start_peer("grpc", free_port(), tls=certs) as peer:
        yield peer


@pytest.fixture(scope="module")
def mtls_peer(certs: Path) -> Iterator[TriplePeer]:
    with start_peer("grpc", free_port(), tls=certs, mtls=True) as peer:
        yield peer


def gateway(port: int, client: str, profile: str) -> str:
    return f"""
listen: {{host: 127.0.0.1, port: 0}}
upstream: {{triple_client: {client}, connect_timeout: 2s}}
registries:
  static: {{type: static, services: {{{SERVICE}: ["tri://127.0.0.1:{port}/{SERVICE}?version=1.0.0"]}}}}
services:
  - interface: {SERVICE}
    version: 1.0.0
    retries: 0
    methods: {{greet: [java.lang.String], headers: []}}
auto_routes: {{prefix: /, expose: ["com.tribridge.*"]}}
""" + (f"security:\n  upstream_tls:\n    - {profile}\n" if profile else "")


CLIENTS = ["grpcio", "h2", "lean"]


@pytest.mark.parametrize("client", CLIENTS)
def test_triple_over_tls(bg, tls_peer, certs, client: str) -> None:  # type: ignore[no-untyped-def]
    prof = f"{{service: 'com.tribridge.*', ca: {certs}/ca.pem, server_name: localhost}}"
    gw = bg.start_gateway(gateway(tls_peer.port, client, prof)).port
    assert http_request(gw, "POST", f"/{SERVICE}/greet", ["tls"]) == (
        200,
        "Hello, tls (via grpcio)",
    )
    status, seen = http_request(gw, "POST", f"/{SERVICE}/headers", [])
    assert status == 200 and seen["tri-service-version"] == "1.0.0", seen


@pytest.mark.parametrize("client", CLIENTS)
def test_triple_over_mutual_tls(bg, mtls_peer, certs, client: str) -> None:  # type: ignore[no-untyped-def]
    prof = (
        f"{{ca: {certs}/ca.pem, cert: {certs}/client.pem, key: {certs}/client.key, "
        "server_name: localhost}"
    )
    gw = bg.start_gateway(gateway(mtls_peer.port, client, prof)).port
    assert http_request(gw, "POST", f"/{SERVICE}/greet", ["m"]) == (200, "Hello, m (via grpcio)")


@pytest.mark.parametrize("client", CLIENTS)
@pytest.mark.parametrize("which", ["untrusted-provider", "no-client-cert", "cleartext"])
def test_triple_tls_failures(bg, tls_peer, mtls_peer, certs, client: str, which: str) -> None:  # type: ignore[no-untyped-def]
    if which == "untrusted-provider":
        port, prof = tls_peer.port, f"{{ca: {certs}/other/ca.pem, server_name: localhost}}"
    elif which == "no-client-cert":
        port, prof = mtls_peer.port, f"{{ca: {certs}/ca.pem, server_name: localhost}}"
    else:
        port, prof = tls_peer.port, ""
    gw = bg.start_gateway(gateway(port, client, prof)).port
    status, body = http_request(gw, "POST", f"/{SERVICE}/greet", ["x"])
    assert status == 503, body
    assert body["error"]["code"] in ("connect_failed", "provider_unavailable"), body
    if which == "untrusted-provider":  # the reason is named, whichever client
        assert "certificate" in body["error"]["message"], body


def test_dubbo_consumer_through_the_ingress_to_a_tls_triple_provider(bg, mtls_peer, certs) -> None:  # type: ignore[no-untyped-def]
    from dubbo_ssl.client import DubboClient

    prof = (
        f"{{ca: {certs}/ca.pem, cert: {certs}/client.pem, key: {certs}/client.key, "
        "server_name: localhost}"
    )
    cfg = gateway(mtls_peer.port, "lean", prof) + (
        "dubbo_ingress:\n  listen: {host: 127.0.0.1, port: 0}\n"
        '  routes: [{interface: "com.tribridge.*", to: local}]\n'
    )
    gw = bg.start_gateway(cfg)
    c = DubboClient(SERVICE, group=None, version="1.0.0", host=f"127.0.0.1:{gw.relay.ingress.port}")
    assert c.call("greet", ["dubbo"], timeout=5) == "Hello, dubbo (via grpcio)"


# ---- IDL services over TLS (the shared attempt loop's pools carry the profile) -------------

WRAPPER_PROTO = """syntax = "proto3";
package com.tribridge.triple;
message TripleRequestWrapper { string serializeType = 1; repeated bytes args = 2;
                               repeated string argTypes = 3; }
message TripleResponseWrapper { string serializeType = 1; bytes data = 2; string type = 3; }
service GreeterService { rpc greet (TripleRequestWrapper) returns (TripleResponseWrapper); }
"""


def idl_gateway(port: int, client: str, profile: str, proto: Path) -> str:
    return f"""
listen: {{host: 127.0.0.1, port: 0}}
upstream: {{triple_client: {client}, connect_timeout: 2s}}
services:
  - interface: {SERVICE}
    protocol: grpc
    retries: 0
    idl: {{protos: ["{proto}"], include: ["{proto.parent}"]}}
    endpoints: ["127.0.0.1:{port}"]
""" + (f"security:\n  upstream_tls:\n    - {profile}\n" if profile else "")


def _idl_greet(gw: int, name: str) -> tuple[int, object]:
    import base64

    from tribridge.codecs.hessian2 import Decoder, encode

    arg = base64.b64encode(encode(name)).decode()
    req = {"serializeType": "hessian4", "args": [arg], "argTypes": ["java.lang.String"]}
    status, body = http_request(gw, "POST", f"/{SERVICE}/greet", req)
    if status != 200:
        return status, body
    return status, Decoder(base64.b64decode(body["data"])).read()


@pytest.mark.parametrize("client", CLIENTS)
def test_idl_service_over_tls(bg, tls_peer, mtls_peer, certs, tmp_path, client: str) -> None:  # type: ignore[no-untyped-def]
    proto = tmp_path / "wrapper.proto"
    proto.write_text(WRAPPER_PROTO)
    prof = f"{{service: 'com.tribridge.*', ca: {certs}/ca.pem, server_name: localhost}}"
    gw = bg.start_gateway(idl_gateway(tls_peer.port, client, prof, proto)).port
    assert _idl_greet(gw, "idl") == (200, "Hello, idl (via grpcio)")
    mutual = (
        f"{{ca: {certs}/ca.pem, cert: {certs}/client.pem, key: {certs}/client.key, "
        "server_name: localhost}"
    )
    gw = bg.start_gateway(idl_gateway(mtls_peer.port, client, mutual, proto)).port
    assert _idl_greet(gw, "mutual") == (200, "Hello, mutual (via grpcio)")
    # cleartext to a TLS port: a clear 503, not a hang
    gw = bg.start_gateway(idl_gateway(tls_peer.port, client, "", proto)).port
    status, body = _idl_greet(gw, "x")
    assert status == 503 and body["error"]["code"] == "provider_unavailable", body  # type: ignore[index]
