"""Who is calling: JWT (RS256/ES256/HS256, keys inline or from a JWKS file), OIDC bearer
tokens (keys from the issuer's JWKS URL, cached, refetched on an unknown ``kid``) and API
keys (header or query; stored in plain or as SHA-256). Signature and claim checks are
PyJWT's; this module only picks keys and maps failures to 401/403.

``authenticate`` returns an ``Identity`` at once when it can, or an awaitable when a JWKS
must be fetched first, so the common request stays on the gateway's no-task fast path.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import logging
import ssl
import time
import urllib.request
from collections.abc import Awaitable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs

import jwt
from jwt.algorithms import ECAlgorithm, RSAAlgorithm
from tribridge.errors import GatewayError

log = logging.getLogger("tribridge.auth")

#: algorithms a verifier may be configured with (no "none", no alg confusion by design:
#: each key is used only with the algorithm family of its own key type)
ALGORITHMS = ("RS256", "RS384", "RS512", "PS256", "ES256", "ES384", "ES512", "HS256", "HS384",
              "HS512")
_FAMILY = {"RS": "RSA", "PS": "RSA", "ES": "EC", "HS": "oct"}


class AuthFailure(GatewayError):
    """401 (no or bad credentials, with a WWW-Authenticate challenge) or 403."""

    def __init__(self, status: int, code: str, message: str, challenge: str | None = None):
        super().__init__(status, code, message)
        self.headers = [("www-authenticate", challenge)] if challenge else []


@dataclass
class Identity:
    scheme: str  # the configured scheme's name
    subject: str
    claims: dict[str, Any] = field(default_factory=dict)


class Scheme:
    name: str
    challenge: str

    def credentials(self, headers: dict[str, str], query: str) -> str | None:
        raise NotImplementedError

    def verify(self, credential: str) -> Identity | Awaitable[Identity]:
        raise NotImplementedError

    def accepts(self, credential: str) -> bool:
        """Whether this scheme is the one meant, when several read the same header."""
        return True


# ---- API keys -------------------------------------------------------------------------------


@dataclass
class ApiKeyEntry:
    id: str
    sha256: bytes  # digest of the key; plain keys are hashed at load
    claims: dict[str, Any] = field(default_factory=dict)


class ApiKeyScheme(Scheme):
    def __init__(
        self, name: str, keys: list[ApiKeyEntry], header: str | None = "x-api-key",
        query: str | None = None,
    ) -> None:
        self.name = name
        self.keys = keys
        self.header = header.lower() if header else None
        self.query = query
        where = f'header="{self.header}"' if self.header else f'query="{query}"'
        self.challenge = f'ApiKey realm="tribridge", {where}'

    def credentials(self, headers: dict[str, str], query: str) -> str | None:
        if self.header and self.header in headers:
            return headers[self.header]
        if self.query and query:
            vals = parse_qs(query).get(self.query)
            if vals:
                return vals[-1]
        return None

    def verify(self, credential: str) -> Identity:
        digest = hashlib.sha256(credential.encode()).digest()
        found = None
        for k in self.keys:  # compare with every entry: timing says nothing about which
            if hmac.compare_digest(digest, k.sha256):
                found = k
        if found is None:
            raise AuthFailure(401, "unauthenticated", "invalid API key", self.challenge)
        return Identity(self.name, found.id, {"sub": found.id, **found.claims})


# ---- JWT / OIDC -----------------------------------------------------------------------------


def load_jwks(doc: Any, source: str) -> dict[str | None, jwt.PyJWK]:
    """A JWKS document (``{"keys": [...]}``) or a single JWK -> keys by kid."""
    keys = doc.get("keys") if isinstance(doc, dict) and "keys" in doc else [doc]
    if not isinstance(keys, list):
        raise ValueError(f"{source}: expected a JWKS with a 'keys' list")
    out: dict[str | None, jwt.PyJWK] = {}
    for n, k in enumerate(keys):
        if not isinstance(k, dict) or k.get("use", "sig") != "sig":
            continue
        try:
            out[k.get("kid") or f"#{n}"] = jwt.PyJWK(k)
        except (jwt.PyJWKError, jwt.InvalidKeyError) as e:
            log.warning("%s: skipping a key: %s", source, e)
    return out


def _key_type(key: Any) -> str:
    if isinstance(key, jwt.PyJWK):
        return str(key.key_type)
    return "oct"


class JwtScheme(Scheme):
    """Bearer JWTs against static keys, or (``jwks_url``/``issuer`` discovery) an OIDC
    issuer's published keys."""

    def __init__(
        self,
        name: str,
        algorithms: list[str],
        keys: dict[str | None, Any] | None = None,
        *,
        issuer: str | None = None,
        audience: list[str] | None = None,
        leeway: float = 30.0,
        jwks_url: str | None = None,
        discovery: bool = False,
        refresh_interval: float = 300.0,
        min_refresh: float = 10.0,
        fetch_timeout: float = 5.0,
        ca_file: str | None = None,
        require: list[str] | None = None,
    ) -> None:
        self.name = name
        self.algorithms = algorithms
        self.keys: dict[str | None, Any] = dict(keys or {})
        self.issuer = issuer
        self.audience = audience
        self.leeway = leeway
        self.jwks_url = jwks_url
        self.discovery = discovery
        self.refresh_interval = refresh_interval
        self.min_refresh = min_refresh
        self.fetch_timeout = fetch_timeout
        self.ca_file = ca_file
        self.require = ["exp", *(require or [])]
        self.remote = jwks_url is not None or discovery
        self._fetched_at = 0.0
        self._attempted_at = -1e9
        self._fetching: asyncio.Future[None] | None = None
        self.fetches = 0
        self.challenge = 'Bearer realm="tribridge"'

    def credentials(self, headers: dict[str, str], query: str) -> str | None:
        h = headers.get("authorization")
        if h is None:
            return None
        kind, _, token = h.strip().partition(" ")
        if kind.lower() != "bearer" or not token.strip():
            return None
        return token.strip()

    def accepts(self, credential: str) -> bool:
        """Same header, several issuers: pick by the (unverified) alg and iss."""
        try:
            alg = jwt.get_unverified_header(credential).get("alg")
            if alg not in self.algorithms:
                return False
            if self.issuer is None:
                return True
            body = jwt.decode(credential, options={"verify_signature": False})
        except jwt.PyJWTError:
            return False
        return body.get("iss") == self.issuer

    def _fail(self, message: str) -> AuthFailure:
        return AuthFailure(
            401, "unauthenticated", message,
            f'{self.challenge}, error="invalid_token", error_description="{message}"'.replace(
                "\\", ""
            ),
        )

    def verify(self, credential: str) -> Identity | Awaitable[Identity]:
        try:
            header = jwt.get_unverified_header(credential)
        except jwt.PyJWTError as e:
            raise self._fail(f"malformed token: {e}") from None
        alg = header.get("alg")
        if alg not in self.algorithms:
            raise self._fail(f"algorithm {alg!r} not accepted")
        kid = header.get("kid")
        if self.remote:
            stale = time.monotonic() - self._fetched_at > self.refresh_interval
            if stale or self._pick(kid, alg, quiet=True) is None:
                return self._verify_after_fetch(credential, kid, alg)
        return self._decode(credential, self._pick(kid, alg), alg)

    async def _verify_after_fetch(self, credential: str, kid: Any, alg: str) -> Identity:
        await self.refresh()
        return self._decode(credential, self._pick(kid, alg), alg)

    def _pick(self, kid: Any, alg: str, quiet: bool = False) -> Any:
        want = _FAMILY.get(alg[:2])
        key = self.keys.get(kid) if isinstance(kid, str) and not kid.startswith("#") else None
        if key is None and kid is not None:
            if quiet:
                return None
            raise self._fail(f"unknown key id {kid!r}")
        if key is None:
            candidates = [k for k in self.keys.values() if _key_type(k) == want]
            if len(candidates) != 1:
                if quiet:
                    return None
                raise self._fail("token has no kid and no single key fits its algorithm")
            key = candidates[0]
        if _key_type(key) != want:
            if quiet:
                return None
            raise self._fail(f"key {kid!r} is not a {want} key, token says {alg}")
        return key

    def _decode(self, credential: str, key: Any, alg: str) -> Identity:
        try:
            claims = jwt.decode(
                credential,
                key.key if isinstance(key, jwt.PyJWK) else key,
                algorithms=[alg],
                audience=self.audience,
                issuer=self.issuer,
                leeway=self.leeway,
                options={"require": self.require, "verify_aud": self.audience is not None},
            )
        except jwt.ExpiredSignatureError:
            raise self._fail("token expired") from None
        except jwt.ImmatureSignatureError:
            raise self._fail("token not valid yet") from None
        except jwt.InvalidAudienceError:
            raise self._fail("token audience not accepted") from None
        except jwt.InvalidIssuerError:
            raise self._fail("token issuer not accepted") from None
        except jwt.MissingRequiredClaimError as e:
            raise self._fail(f"token lacks the {e.claim!r} claim") from None
        except jwt.InvalidSignatureError:
            raise self._fail("bad token signature") from None
        except jwt.PyJWTError as e:
            raise self._fail(f"invalid token: {e}") from None
        return Identity(self.name, str(claims.get("sub", "")), claims)

    # ---- remote keys ----------------------------------------------------------------------

    async def refresh(self) -> None:
        """Fetch the JWKS unless fetched moments ago; concurrent callers share one fetch."""
        if time.monotonic() - self._attempted_at < self.min_refresh:
            return
        if self._fetching is None:
            self._fetching = asyncio.ensure_future(self._fetch())
        fut = self._fetching
        try:
            await asyncio.shield(fut)
        finally:
            if self._fetching is fut and fut.done():
                self._fetching = None

    async def _fetch(self) -> None:
        self._attempted_at = time.monotonic()
        self.fetches += 1
        try:
            url = self.jwks_url
            if url is None:
                assert self.issuer is not None
                conf = await asyncio.to_thread(
                    self._get, self.issuer.rstrip("/") + "/.well-known/openid-configuration"
                )
                url = conf.get("jwks_uri") if isinstance(conf, dict) else None
                if not isinstance(url, str):
                    raise ValueError("OpenID configuration has no jwks_uri")
                self.jwks_url = url
            doc = await asyncio.to_thread(self._get, url)
            keys = load_jwks(doc, url)
        except Exception as e:
            log.warning("%s: cannot fetch signing keys: %s", self.name, e)
            if not self.keys:
                raise AuthFailure(
                    503, "auth_unavailable", f"signing keys of {self.name} cannot be fetched"
                ) from None
            return
        self.keys = keys
        self._fetched_at = time.monotonic()

    def _get(self, url: str) -> Any:
        ctx = ssl.create_default_context(cafile=self.ca_file) if url.startswith("https") else None
        req = urllib.request.Request(url, headers={"accept": "application/json"})
        with urllib.request.urlopen(req, timeout=self.fetch_timeout, context=ctx) as resp:
            data = resp.read(1 << 20)
        return json.loads(data)


def static_keys(
    jwks_file: str | None, jwks: Any, secret: str | None, public_key_pem: str | None
) -> dict[str | None, Any]:
    """Keys for a JwtScheme from the config's several ways of giving them."""
    keys: dict[str | None, Any] = {}
    if jwks_file is not None:
        keys.update(load_jwks(json.loads(Path(jwks_file).read_text()), jwks_file))
    if jwks is not None:
        keys.update(load_jwks(jwks, "inline jwks"))
    if secret is not None:
        keys.setdefault("#secret", jwt.PyJWK({"kty": "oct", "k": _b64url(secret.encode())}))
    if public_key_pem is not None:
        pem = public_key_pem.encode()
        for algo, alg in ((RSAAlgorithm, "RS256"), (ECAlgorithm, "ES256")):
            try:
                key = algo.prepare_key(pem)  # type: ignore[attr-defined]
            except Exception:
                continue
            jwk = json.loads(algo.to_jwk(key))  # type: ignore[attr-defined]
            keys.setdefault("#pem", jwt.PyJWK(jwk, alg))
            break
        else:
            raise ValueError("public_key is neither an RSA nor an EC PEM public key")
    return keys


def _b64url(b: bytes) -> str:
    import base64

    return base64.urlsafe_b64encode(b).rstrip(b"=").decode()
