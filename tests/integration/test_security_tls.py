"""TLS: HTTPS ingress (client certificates required or optional) and TLS to a Dubbo2
provider, with certificates generated at test time."""

from __future__ import annotations

import http.client
import json
import socket
import ssl

import pytest
from tribridge.cli.commands import DEMO_SERVICE as S
from tribridge.cli.commands import demo_config
from tribridge.config.model import ConfigError, parse_config
from tribridge.interop.certs import Pki, make_pki
from tribridge.interop.testing import http_request


@pytest.fixture(scope="module")
def pki(tmp_path_factory) -> Pki:  # type: ignore[no-untyped-def]
    return make_pki(tmp_path_factory.mktemp("pki"))


def client_ctx(pki: Pki, cert: object = None) -> ssl.SSLContext:
    ctx = ssl.create_default_context(cafile=pki.ca)
    if cert is not None:
        ctx.load_cert_chain(cert.cert, cert.key)  # type: ignore[attr-defined]
    return ctx


def https(port: int, ctx: ssl.SSLContext, path: str = "/hello/tls") -> tuple[int, object]:
    c = http.client.HTTPSConnection("127.0.0.1", port, context=ctx, timeout=5)
    try:
        c.request("GET", path)
        r = c.getresponse()
        return r.status, json.loads(r.read())
    finally:
        c.close()


def tls_listen(pki: Pki, extra: str = "") -> str:
    return f"  tls: {{cert: {pki.server.cert}, key: {pki.server.key}{extra}}}\n"


def with_listen_tls(yaml_text: str, tls: str) -> str:
    return yaml_text.replace("listen:\n", "listen:\n" + tls, 1)


def test_https_ingress(bg, provider, pki) -> None:  # type: ignore[no-untyped-def]
    gw = bg.start_gateway(with_listen_tls(demo_config(provider.port, 0), tls_listen(pki))).port
    assert https(gw, client_ctx(pki)) == (200, "Hello, tls")
    # a client that does not trust our CA refuses the server
    with pytest.raises(ssl.SSLCertVerificationError):
        https(gw, ssl.create_default_context(cafile=pki.other_ca))
    # plain HTTP on the TLS port gets no HTTP answer, and no hang
    with socket.create_connection(("127.0.0.1", gw), timeout=5) as s:
        s.sendall(b"GET /hello/x HTTP/1.1\r\nHost: t\r\n\r\n")
        try:
            data = s.recv(4096)
        except ConnectionResetError:
            data = b""
        assert not data.startswith(b"HTTP/1.1 200")


def test_client_certificate_required(bg, provider, pki) -> None:  # type: ignore[no-untyped-def]
    extra = f", client_ca: {pki.ca}, require_client_cert: true"
    gw = bg.start_gateway(
        with_listen_tls(demo_config(provider.port, 0), tls_listen(pki, extra))
    ).port
    assert https(gw, client_ctx(pki, pki.client)) == (200, "Hello, tls")
    before = provider.requests
    for ctx in (client_ctx(pki), client_ctx(pki, pki.rogue_client)):
        with pytest.raises((ssl.SSLError, ConnectionResetError, BrokenPipeError,
                            http.client.RemoteDisconnected)):
            https(gw, ctx)
    assert provider.requests == before


def test_client_certificate_optional(bg, provider, pki) -> None:  # type: ignore[no-untyped-def]
    extra = f", client_ca: {pki.ca}"
    gw = bg.start_gateway(
        with_listen_tls(demo_config(provider.port, 0), tls_listen(pki, extra))
    ).port
    assert https(gw, client_ctx(pki)) == (200, "Hello, tls")
    assert https(gw, client_ctx(pki, pki.client)) == (200, "Hello, tls")
    with pytest.raises((ssl.SSLError, ConnectionResetError, BrokenPipeError,
                        http.client.RemoteDisconnected)):
        https(gw, client_ctx(pki, pki.rogue_client))


# ---- TLS to the provider ------------------------------------------------------------------


@pytest.fixture(scope="module")
def tls_provider(bg, pki):  # type: ignore[no-untyped-def]
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(pki.server.cert, pki.server.key)
    ctx.load_verify_locations(pki.ca)
    ctx.verify_mode = ssl.CERT_REQUIRED  # the provider wants our client certificate
    return bg.start_provider(version="1.0.0", ssl=ctx)


def upstream(pki: Pki, port: int, profile: str, params: str = "version=1.0.0") -> str:
    doc = demo_config(port, 0).replace(
        f"127.0.0.1:{port}?version=1.0.0", f"127.0.0.1:{port}?{params}"
    )
    return doc + ("security:\n  upstream_tls:\n" + profile if profile else "")


def test_tls_to_provider_with_client_certificate(bg, tls_provider, pki) -> None:  # type: ignore[no-untyped-def]
    prof = f"    - {{service: '{S}', ca: {pki.ca}, cert: {pki.client.cert}, key: {pki.client.key}}}\n"
    gw = bg.start_gateway(upstream(pki, tls_provider.port, prof)).port
    assert http_request(gw, "GET", "/hello/secure") == (200, "Hello, secure")
    assert http_request(gw, "POST", f"/{S}/add", [40, 2]) == (200, 42)


@pytest.mark.parametrize(
    "which",
    ["no-client-cert", "untrusted-provider", "rogue-client-cert", "plain-tcp", "endpoint-param"],
)
def test_tls_to_provider_failures(bg, tls_provider, pki, which: str) -> None:  # type: ignore[no-untyped-def]
    params = "version=1.0.0"
    if which == "no-client-cert":
        prof = f"    - {{ca: {pki.ca}}}\n"
    elif which == "untrusted-provider":
        prof = f"    - {{ca: {pki.other_ca}, cert: {pki.client.cert}, key: {pki.client.key}}}\n"
    elif which == "rogue-client-cert":
        prof = f"    - {{ca: {pki.ca}, cert: {pki.rogue_client.cert}, key: {pki.rogue_client.key}}}\n"
    elif which == "plain-tcp":
        prof = ""
    else:  # the provider URL says ssl=true: TLS with the system trust store, which fails here
        prof, params = "", "version=1.0.0&ssl=true"
    before = tls_provider.requests
    gw = bg.start_gateway(upstream(pki, tls_provider.port, prof, params)).port
    st, doc = http_request(gw, "GET", "/hello/x", timeout=15)
    assert st in (502, 503, 504), doc
    if which in ("untrusted-provider", "endpoint-param"):
        assert "certificate verify failed" in doc["error"]["message"], doc
    assert tls_provider.requests == before


def test_tls_profile_does_not_apply_to_other_services(bg, provider, pki) -> None:  # type: ignore[no-untyped-def]
    prof = f"    - {{service: 'com.other.*', ca: {pki.ca}}}\n"
    gw = bg.start_gateway(upstream(pki, provider.port, prof)).port
    assert http_request(gw, "GET", "/hello/plain") == (200, "Hello, plain")


def test_tls_config_errors(pki) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(ConfigError, match=r"listen.tls: cannot load"):
        parse_config("listen: {tls: {cert: /nonexistent.pem, key: /nonexistent.key}}")
    with pytest.raises(ConfigError, match=r"listen.tls.require_client_cert: needs client_ca"):
        parse_config(
            f"listen: {{tls: {{cert: {pki.server.cert}, key: {pki.server.key}, "
            "require_client_cert: true}}"
        )
    with pytest.raises(ConfigError, match=r"security.upstream_tls\[0\]: cert and key go together"):
        parse_config(f"security: {{upstream_tls: [{{cert: {pki.client.cert}}}]}}")
    with pytest.raises(ConfigError, match=r"listen.tls: missing required key 'key'"):
        parse_config(f"listen: {{tls: {{cert: {pki.server.cert}}}}}")
