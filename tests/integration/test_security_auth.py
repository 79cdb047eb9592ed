"""Authentication and authorization per route: JWT (RS256/ES256/HS256), API keys, OIDC with a
real JWKS server on 127.0.0.1; claims forwarded as attachments (checked on the provider)."""

from __future__ import annotations

import hashlib
import json
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from jwt.algorithms import ECAlgorithm, RSAAlgorithm
from tribridge.cli.commands import DEMO_SERVICE as S
from tribridge.cli.commands import demo_config
from tribridge.config.model import ConfigError, parse_config
from tribridge.interop.testing import http_request

ISS = "https://issuer.test"
AUD = "tribridge"
HS_SECRET = "a-long-enough-hmac-secret-for-hs256-tests-and-even-hs512-0123456789"


def _jwk(alg_cls: Any, key: Any, kid: str) -> dict[str, Any]:
    d = json.loads(alg_cls.to_jwk(key.public_key()))
    d.update(kid=kid, use="sig")
    return d


RSA_KEY = rsa.generate_private_key(public_exponent=65537, key_size=2048)
EC_KEY = ec.generate_private_key(ec.SECP256R1())
OTHER_RSA = rsa.generate_private_key(public_exponent=65537, key_size=2048)
OIDC_K1 = rsa.generate_private_key(public_exponent=65537, key_size=2048)
OIDC_K2 = rsa.generate_private_key(public_exponent=65537, key_size=2048)


def token(key: Any = RSA_KEY, alg: str = "RS256", kid: str | None = "r1", **claims: Any) -> str:
    now = int(time.time())
    body: dict[str, Any] = {"iss": ISS, "aud": AUD, "sub": "alice", "iat": now, "exp": now + 60}
    body.update(claims)
    body = {k: v for k, v in body.items() if v is not None}
    headers = {"kid": kid} if kid else {}
    return jwt.encode(body, key, algorithm=alg, headers=headers)


class Jwks:
    """A small OIDC issuer: discovery document and JWKS, with a fetch counter."""

    def __init__(self) -> None:
        self.keys: list[dict[str, Any]] = []
        self.fetches = 0
        outer = self

        class H(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                if self.path == "/.well-known/openid-configuration":
                    doc = {"issuer": outer.issuer, "jwks_uri": outer.issuer + "/jwks"}
                elif self.path == "/jwks":
                    outer.fetches += 1
                    doc = {"keys": outer.keys}
                else:
                    self.send_error(404)
                    return
                data = json.dumps(doc).encode()
                self.send_response(200)
                self.send_header("content-type", "application/json")
                self.send_header("content-length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *a: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), H)
        self.issuer = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture(scope="module")
def issuer() -> Iterator[Jwks]:
    j = Jwks()
    j.keys = [_jwk(RSAAlgorithm, OIDC_K1, "k1")]
    yield j
    j.close()


HASHED = "hashed-partner-key"


@pytest.fixture(scope="module")
def gw(bg, provider, issuer, tmp_path_factory) -> int:  # type: ignore[no-untyped-def]
    d = tmp_path_factory.mktemp("jwks")
    f = d / "keys.json"
    f.write_text(
        json.dumps({"keys": [_jwk(RSAAlgorithm, RSA_KEY, "r1"), _jwk(ECAlgorithm, EC_KEY, "e1")]})
    )
    sha = hashlib.sha256(HASHED.encode()).hexdigest()
    sec = f"""
passthrough_headers: [x-request-id, x-user, x-tenant]
security:
  auth:
    jwt: {{type: jwt, algorithms: [RS256, ES256], jwks_file: "{f}", issuer: "{ISS}",
          audience: {AUD}, leeway: 5s}}
    hs: {{type: jwt, algorithms: [HS256], secret: "{HS_SECRET}", issuer: "{ISS}", audience: {AUD}}}
    keys:
      type: api_key
      header: x-api-key
      query: api_key
      keys: [{{id: partner-a, key: plain-partner-key, claims: {{tenant: t-a}}}},
             {{id: partner-b, sha256: "{sha}"}}]
    sso: {{type: oidc, issuer: "{issuer.issuer}", algorithms: [RS256], min_refresh: 0s}}
    sso_slow: {{type: oidc, issuer: "{issuer.issuer}", jwks_url: "{issuer.issuer}/jwks",
               algorithms: [RS256]}}
  access:
    - {{path: "/hello/*", auth: none}}
    - {{method: greet, auth: [jwt, hs, keys], forward: {{sub: x-user, tenant: x-tenant}}}}
    - {{method: add, auth: [jwt], scopes: [math]}}
    - {{method: addLong, auth: [jwt], claims: {{role: [admin, root]}}}}
    - {{method: echoObject, auth: [sso], forward: {{sub: x-user}}}}
    - {{method: echoDate, auth: [sso_slow]}}
    - {{path: "*", auth: [jwt]}}
"""
    return bg.start_gateway(demo_config(provider.port, 0) + sec).port


def call(gw: int, method: str, args: list[Any], headers: dict[str, str] | None = None,
         query: str = "") -> tuple[int, Any]:
    return http_request(gw, "POST", f"/{S}/{method}{query}", args, headers)


def bearer(t: str) -> dict[str, str]:
    return {"authorization": f"Bearer {t}"}


def rejected(provider, gw: int, status: int, method: str, headers: dict[str, str] | None,  # type: ignore[no-untyped-def]
             match: str = "") -> dict[str, Any]:
    before = provider.requests
    st, doc = call(gw, method, ["x"] if method == "greet" else [1, 2], headers)
    assert st == status, doc
    assert match in doc["error"]["message"], doc
    assert provider.requests == before, "a rejected request reached the provider"
    return doc


def test_no_credentials_is_401_with_challenges(gw, provider) -> None:  # type: ignore[no-untyped-def]
    import http.client

    before = provider.requests
    c = http.client.HTTPConnection("127.0.0.1", gw, timeout=5)
    c.request("POST", f"/{S}/greet", body=b'["x"]')
    r = c.getresponse()
    body = json.loads(r.read())
    challenges = r.headers.get_all("www-authenticate")
    c.close()
    assert r.status == 401 and body["error"]["code"] == "unauthenticated"
    assert any(ch.startswith("Bearer") for ch in challenges)
    assert any(ch.startswith("ApiKey") and 'header="x-api-key"' in ch for ch in challenges)
    assert provider.requests == before


def test_public_route_needs_nothing(gw) -> None:  # type: ignore[no-untyped-def]
    assert http_request(gw, "GET", "/hello/bob") == (200, "Hello, bob")


@pytest.mark.parametrize(
    ("tok", "sub"),
    [
        (lambda: token(), "alice"),
        (lambda: token(EC_KEY, "ES256", "e1", sub="eve"), "eve"),
        (lambda: token(HS_SECRET, "HS256", None, sub="hank"), "hank"),
    ],
    ids=["RS256", "ES256", "HS256"],
)
def test_valid_tokens_and_claims_forwarded(gw, provider, tok, sub) -> None:  # type: ignore[no-untyped-def]
    spoof = {"x-user": "mallory", "x-tenant": "evil"}
    st, doc = call(gw, "greet", ["x"], bearer(tok()) | spoof)
    assert (st, doc) == (200, "Hello, x")
    att = provider.last_attachments["greet"]
    assert att["x-user"] == sub, "claim must override a client-sent header of the same name"
    assert "x-tenant" not in att, "a forwarded claim the token lacks must not come from headers"


@pytest.mark.parametrize(
    ("make", "why"),
    [
        (lambda: token(exp=int(time.time()) - 60), "expired"),
        (lambda: token(nbf=int(time.time()) + 60), "not valid yet"),
        (lambda: token(iss="https://evil.test"), "issuer"),
        (lambda: token(aud="someone-else"), "audience"),
        (lambda: token(exp=None), "'exp'"),
        (lambda: token(OTHER_RSA), "signature"),
        (lambda: token(kid="nope"), "unknown key id"),
        (lambda: token(EC_KEY, "ES256", "r1"), "not a EC key"),
        (lambda: jwt.encode({"sub": "x", "exp": int(time.time()) + 60}, None, algorithm="none"),
         "algorithm 'none'"),
        (lambda: token(HS_SECRET, "HS512", None), "algorithm 'HS512'"),
        (lambda: "not.a.jwt", "malformed"),
    ],
)
def test_bad_tokens_are_401(gw, provider, make, why) -> None:  # type: ignore[no-untyped-def]
    doc = rejected(provider, gw, 401, "greet", bearer(make()), why)
    assert doc["error"]["code"] == "unauthenticated"


def test_alg_confusion_hs256_with_rsa_public_key(gw, provider) -> None:  # type: ignore[no-untyped-def]
    """An HS256 token 'signed' with the RSA public key as secret must not verify."""
    import base64
    import hmac as _hmac

    pem = RSA_KEY.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )

    def b64(b: bytes) -> str:
        return base64.urlsafe_b64encode(b).rstrip(b"=").decode()

    head = b64(json.dumps({"alg": "HS256", "kid": "r1", "typ": "JWT"}).encode())
    body = b64(json.dumps({"sub": "x", "iss": ISS, "aud": AUD,
                           "exp": int(time.time()) + 60}).encode())
    sig = b64(_hmac.new(pem, f"{head}.{body}".encode(), hashlib.sha256).digest())
    rejected(provider, gw, 401, "greet", bearer(f"{head}.{body}.{sig}"))


def test_leeway_accepts_just_expired(gw) -> None:  # type: ignore[no-untyped-def]
    t = token(exp=int(time.time()) - 2)
    assert call(gw, "greet", ["y"], bearer(t))[0] == 200


def test_api_keys_header_query_and_hashed(gw, provider) -> None:  # type: ignore[no-untyped-def]
    assert call(gw, "greet", ["k"], {"x-api-key": "plain-partner-key"}) == (200, "Hello, k")
    att = provider.last_attachments["greet"]
    assert att["x-user"] == "partner-a" and att["x-tenant"] == "t-a"
    assert call(gw, "greet", ["q"], query="?api_key=plain-partner-key")[0] == 200
    assert call(gw, "greet", ["h"], {"x-api-key": HASHED})[0] == 200
    assert provider.last_attachments["greet"]["x-user"] == "partner-b"
    rejected(provider, gw, 401, "greet", {"x-api-key": "wrong"}, "invalid API key")
    rejected(provider, gw, 401, "greet", {"x-api-key": hashlib.sha256(HASHED.encode()).hexdigest()})


def test_scope_required_is_403(gw, provider) -> None:  # type: ignore[no-untyped-def]
    doc = rejected(provider, gw, 403, "add", bearer(token(scope="read write")), "math")
    assert doc["error"]["code"] == "forbidden"
    assert call(gw, "add", [1, 2], bearer(token(scope="read math"))) == (200, 3)
    assert call(gw, "add", [1, 2], bearer(token(scp=["math"]))) == (200, 3)


def test_claim_required_is_403(gw, provider) -> None:  # type: ignore[no-untyped-def]
    rejected(provider, gw, 403, "addLong", bearer(token(role="user")), "role")
    rejected(provider, gw, 403, "addLong", bearer(token()), "role")
    assert call(gw, "addLong", [1, 2], bearer(token(role="root"))) == (200, 3)


def test_api_key_cannot_use_a_jwt_only_route(gw, provider) -> None:  # type: ignore[no-untyped-def]
    rejected(provider, gw, 401, "add", {"x-api-key": "plain-partner-key"}, "credentials required")


def test_oidc_fetches_caches_and_refreshes_on_unknown_kid(gw, provider, issuer) -> None:  # type: ignore[no-untyped-def]
    t1 = token(OIDC_K1, kid="k1", iss=issuer.issuer, sub="olga")
    assert call(gw, "echoObject", ["o"], bearer(t1)) == (200, "o")
    assert provider.last_attachments["echoObject"]["x-user"] == "olga"
    n = issuer.fetches
    assert n >= 1
    assert call(gw, "echoObject", ["o"], bearer(t1))[0] == 200
    assert issuer.fetches == n, "keys must be cached"
    issuer.keys = [_jwk(RSAAlgorithm, OIDC_K2, "k2")]  # rotation
    t2 = token(OIDC_K2, kid="k2", iss=issuer.issuer, sub="olga2")
    assert call(gw, "echoObject", ["p"], bearer(t2)) == (200, "p")
    assert issuer.fetches == n + 1
    assert provider.last_attachments["echoObject"]["x-user"] == "olga2"
    # an old key no longer published, and a kid nobody has
    rejected(provider, gw, 401, "echoObject", bearer(t1), "unknown key id")
    rejected(provider, gw, 401, "echoObject",
             bearer(token(OIDC_K1, kid="k9", iss=issuer.issuer)), "unknown key id")
    # a token from the static issuer is not an OIDC token of this issuer
    rejected(provider, gw, 401, "echoObject", bearer(token()), "")


def test_oidc_issuer_down_is_503_not_a_hang(bg, provider) -> None:  # type: ignore[no-untyped-def]
    from tests.conftest import free_port

    dead = f"http://127.0.0.1:{free_port()}"
    sec = f"""
security:
  auth: {{sso: {{type: oidc, issuer: "{dead}", algorithms: [RS256]}}}}
  access: [{{auth: [sso]}}]
"""
    g = bg.start_gateway(demo_config(provider.port, 0) + sec).port
    before = provider.requests
    st, doc = call(g, "greet", ["x"], bearer(token(OIDC_K1, kid="k1", iss=dead)))
    assert st == 503 and doc["error"]["code"] == "auth_unavailable"
    assert provider.requests == before


@pytest.mark.parametrize(
    ("yaml_text", "match"),
    [
        ("security: {auth: {a: {type: magic}}}", r"security.auth.a.type: expected jwt"),
        ("security: {auth: {a: {type: jwt, algorithms: [none], secret: x}}}", r"algorithms: 'none'"),
        ("security: {auth: {a: {type: jwt}}}", r"needs keys"),
        ("security: {auth: {a: {type: oidc}}}", r"needs issuer"),
        ("security: {access: [{auth: [ghost]}]}", r"security.access\[0\].auth: unknown scheme"),
        ("security: {auth: {k: {type: api_key, keys: [{id: a, sha256: zz}]}}}", r"64 hex"),
        ("security: {auth: {k: {type: api_key, keys: [{id: a}]}}}", r"exactly one of key"),
        ("security: {auth: {a: {type: jwt, jwks_file: /nonexistent.json}}}", r"cannot load keys"),
    ],
)
def test_config_errors(yaml_text: str, match: str) -> None:
    with pytest.raises(ConfigError, match=match):
        parse_config(yaml_text)


def test_unknown_kids_do_not_trigger_a_fetch_each(gw, provider, issuer) -> None:  # type: ignore[no-untyped-def]
    """min_refresh (default 10 s) bounds JWKS fetches caused by tokens with made-up kids."""
    issuer.keys = [_jwk(RSAAlgorithm, OIDC_K2, "k2")]
    st, _ = call(gw, "echoDate", ["2024-01-01T00:00:00Z"],
                 bearer(token(OIDC_K2, kid="k2", iss=issuer.issuer)))
    assert st == 200
    n = issuer.fetches
    for i in range(5):
        rejected(provider, gw, 401, "echoDate",
                 bearer(token(OIDC_K1, kid=f"made-up-{i}", iss=issuer.issuer)), "unknown key id")
    assert issuer.fetches <= n + 1
