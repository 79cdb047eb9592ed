"""The ``security:`` config section and ``listen.tls``, validated with located errors.

Shape (docs/security.md documents every key)::

    listen: {tls: {cert: gw.pem, key: gw.key, client_ca: ca.pem, require_client_cert: true}}
    security:
      classes: {allow: ["com.acme.model.*"], deny: ["com.acme.internal.*"], max_depth: 128,
                generic_modes: {"com.acme.legacy.*": [nativejava]}, require_signature: false}
      auth:
        users: {type: jwt, algorithms: [RS256], jwks_file: keys.json, issuer: https://id,
                audience: [gw], leeway: 30s}
        sso: {type: oidc, issuer: https://id.example, jwks_url: https://id.example/jwks}
        partners: {type: api_key, header: x-api-key, keys: [{id: p1, sha256: "ab12..."}]}
      access:
        - {path: "/admin/*", auth: [users], scopes: [admin], forward: {sub: x-user}}
        - {service: "com.acme.*", auth: [users, partners]}
      rate_limits:
        - {name: per-key, service: "*", per: consumer, rate: 100/s, burst: 200}
      upstream_tls:
        - {service: "com.acme.*", ca: ca.pem, cert: gw-client.pem, key: gw-client.key}
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass, field
from typing import Any

from tribridge.codecs.hessian2 import MAX_DEPTH
from tribridge.config.paths import config_path_error
from tribridge.security.auth import (
    ALGORITHMS,
    ApiKeyEntry,
    ApiKeyScheme,
    JwtScheme,
    Scheme,
    static_keys,
)
from tribridge.security.guard import AccessRule, Guard, LimitRule, Match
from tribridge.security.policy import OTHER_GENERIC_MODES, ClassPolicy
from tribridge.security.ratelimit import RedisBuckets, TokenBuckets, parse_rate
from tribridge.security.tls import ClientTls, ServerTls

_HEX64 = re.compile(r"^[0-9a-fA-F]{64}$")


@dataclass
class SecurityConfig:
    classes: ClassPolicy = field(default_factory=ClassPolicy)
    schemes: dict[str, Scheme] = field(default_factory=dict)
    access: list[AccessRule] = field(default_factory=list)
    limits: list[LimitRule] = field(default_factory=list)
    upstream_tls: list[ClientTls] = field(default_factory=list)
    listen_tls: ServerTls | None = None

    def guard(self) -> Guard | None:
        if not self.access and not self.limits:
            return None
        return Guard(self.schemes, self.access, self.limits)


def _strs(v: Any, node: Any, key: str, path: str, items: Any) -> list[str]:
    if not isinstance(items, list) or not all(isinstance(x, str) for x in items):
        raise v.fail(node, f"{path}.{key}", "expected a list of strings", key)
    return list(items)


def parse_listen_tls(v: Any, listen: Any) -> ServerTls | None:
    if "tls" not in listen:
        return None
    path = "listen.tls"
    t = v.mapping(listen["tls"], path, {"cert", "key", "client_ca", "require_client_cert"})
    st = ServerTls(
        cert=v.get(t, "cert", path, str, required=True),
        key=v.get(t, "key", path, str, required=True),
        client_ca=v.get(t, "client_ca", path, str, None),
        require_client_cert=v.get(t, "require_client_cert", path, bool, False),
    )
    if st.require_client_cert and st.client_ca is None:
        raise v.fail(t, f"{path}.require_client_cert", "needs client_ca", "require_client_cert")
    try:
        st.context()
    except (OSError, ValueError) as e:
        raise v.fail(t, path, f"cannot load certificate/key: {e}") from None
    return st


def parse_security(v: Any, node: Any) -> SecurityConfig:
    sc = SecurityConfig()
    if node is None:
        return sc
    s = v.mapping(node, "security", {"classes", "auth", "access", "rate_limits", "upstream_tls"})
    if "classes" in s:
        c = v.mapping(
            s["classes"],
            "security.classes",
            {"allow", "deny", "max_depth", "generic_modes", "require_signature"},
        )
        gm = v.mapping(
            c.get("generic_modes"),
            "security.classes.generic_modes",
            set(c.get("generic_modes") or {}),
        )
        modes: dict[str, list[str]] = {}
        for glob, ms in gm.items():
            got = _strs(v, gm, str(glob), "security.classes.generic_modes", ms)
            for m in got:
                if m.lower() not in OTHER_GENERIC_MODES:
                    raise v.fail(
                        gm, f"security.classes.generic_modes.{glob}",
                        f"unknown generic mode {m!r}; one of "
                        f"{', '.join(sorted(OTHER_GENERIC_MODES))}", glob,
                    )
            modes[str(glob)] = got
        depth = v.get(c, "max_depth", "security.classes", int, MAX_DEPTH)
        if not 8 <= depth <= 1024:
            raise v.fail(c, "security.classes.max_depth", "must be 8..1024", "max_depth")
        sc.classes = ClassPolicy(
            _strs(v, c, "allow", "security.classes", c.get("allow", [])),
            _strs(v, c, "deny", "security.classes", c.get("deny", [])),
            depth,
            modes,
            v.get(c, "require_signature", "security.classes", bool, False),
        )
    auth = v.mapping(s.get("auth"), "security.auth", set(s.get("auth") or {}))
    for name, body in auth.items():
        sc.schemes[str(name)] = _scheme(v, str(name), body)
    for i, body in enumerate(v.get(s, "access", "security", list, [])):
        path = f"security.access[{i}]"
        a = v.mapping(
            body, path, {"path", "service", "method", "auth", "scopes", "claims", "forward"}
        )
        schemes = a.get("auth", [])
        if schemes == "none" or schemes is None:
            schemes = []
        schemes = _strs(v, a, "auth", path, schemes)
        for n in schemes:
            if n not in sc.schemes:
                raise v.fail(
                    a, f"{path}.auth", f"unknown scheme {n!r}; defined: "
                    f"{', '.join(sc.schemes) or 'none'}", "auth",
                )
        claims = v.mapping(a.get("claims"), f"{path}.claims", set(a.get("claims") or {}))
        forward = v.mapping(a.get("forward"), f"{path}.forward", set(a.get("forward") or {}))
        for k, att in forward.items():
            if not isinstance(att, str) or not att:
                raise v.fail(forward, f"{path}.forward.{k}", "expected an attachment name", k)
        sc.access.append(
            AccessRule(
                _match(v, a, path),
                schemes,
                _strs(v, a, "scopes", path, a.get("scopes", [])),
                {str(k): x for k, x in claims.items()},
                {str(k): str(x) for k, x in forward.items()},
            )
        )
    for i, body in enumerate(v.get(s, "rate_limits", "security", list, [])):
        path = f"security.rate_limits[{i}]"
        r = v.mapping(
            body,
            path,
            {"name", "path", "service", "method", "per", "rate", "burst", "max_keys", "redis"},
        )
        per = v.get(r, "per", path, str, "route")
        if per not in ("route", "consumer", "ip"):
            raise v.fail(r, f"{path}.per", "expected route, consumer or ip", "per")
        if "rate" not in r:
            raise v.fail(r, path, "missing required key 'rate'")
        try:
            rate = parse_rate(r["rate"])
        except ValueError as e:
            raise v.fail(r, f"{path}.rate", str(e), "rate") from None
        burst = v.get(r, "burst", path, (int, float), max(1.0, rate))
        if burst < 1:
            raise v.fail(r, f"{path}.burst", "expected at least 1", "burst")
        name = v.get(r, "name", path, str, f"rate_limits[{i}]")
        max_keys = v.get(r, "max_keys", path, int, 100_000)
        redis_url = v.get(r, "redis", path, str, None)
        buckets: TokenBuckets | RedisBuckets
        if redis_url is not None:
            v.extra(r, "redis", f"{path}.redis", "redis", "a Redis rate-limit store")
            if not redis_url.startswith(("redis://", "rediss://", "unix://")):
                raise v.fail(r, f"{path}.redis", "expected a redis:// URL", "redis")
            buckets = RedisBuckets(
                redis_url, rate, float(burst), f"tribridge:rl:{name}:", max_keys=max_keys
            )
        else:
            buckets = TokenBuckets(rate, float(burst), max_keys)
        sc.limits.append(LimitRule(name, _match(v, r, path), per, buckets))
    for i, body in enumerate(v.get(s, "upstream_tls", "security", list, [])):
        path = f"security.upstream_tls[{i}]"
        t = v.mapping(
            body, path, {"service", "registry", "ca", "cert", "key", "server_name", "verify"}
        )
        ct = ClientTls(
            service=v.get(t, "service", path, str, "*"),
            registry=v.get(t, "registry", path, str, "*"),
            ca=v.get(t, "ca", path, str, None),
            cert=v.get(t, "cert", path, str, None),
            key=v.get(t, "key", path, str, None),
            server_name=v.get(t, "server_name", path, str, None),
            verify=v.get(t, "verify", path, bool, True),
        )
        if (ct.cert is None) != (ct.key is None):
            raise v.fail(t, path, "cert and key go together")
        try:
            ct.context()
        except (OSError, ValueError) as e:
            raise v.fail(t, path, f"cannot load TLS files: {e}") from None
        sc.upstream_tls.append(ct)
    return sc


def _match(v: Any, node: Any, path: str) -> Match:
    glob = v.get(node, "path", path, str, "*")
    why = config_path_error(glob, glob=True)
    if why is not None:  # a pattern no canonical request path can match would never apply
        raise v.fail(node, f"{path}.path", why, "path")
    return Match(
        glob,
        v.get(node, "service", path, str, "*"),
        v.get(node, "method", path, str, "*"),
    )


def _scheme(v: Any, name: str, body: Any) -> Scheme:
    path = f"security.auth.{name}"
    if not isinstance(body, dict) or "type" not in body:
        raise v.fail(body, path, "expected a mapping with type: jwt, oidc or api_key")
    kind = body["type"]
    if kind == "api_key":
        a = v.mapping(body, path, {"type", "header", "query", "keys"})
        header = v.get(a, "header", path, str, None)
        query = v.get(a, "query", path, str, None)
        if header is None and query is None:
            header = "x-api-key"
        entries = []
        for j, k in enumerate(v.get(a, "keys", path, list, required=True)):
            kp = f"{path}.keys[{j}]"
            e = v.mapping(k, kp, {"id", "key", "sha256", "claims"})
            kid = v.get(e, "id", kp, str, required=True)
            if ("key" in e) == ("sha256" in e):
                raise v.fail(e, kp, "give exactly one of key (plain) or sha256 (hex digest)")
            if "key" in e:
                digest = hashlib.sha256(str(v.get(e, "key", kp, str)).encode()).digest()
            else:
                hx = v.get(e, "sha256", kp, str)
                if not _HEX64.match(hx):
                    raise v.fail(e, f"{kp}.sha256", "expected 64 hex digits", "sha256")
                digest = bytes.fromhex(hx)
            claims = v.mapping(e.get("claims"), f"{kp}.claims", set(e.get("claims") or {}))
            entries.append(ApiKeyEntry(kid, digest, dict(claims)))
        return ApiKeyScheme(name, entries, header, query)
    if kind not in ("jwt", "oidc"):
        raise v.fail(body, f"{path}.type", "expected jwt, oidc or api_key", "type")
    a = v.mapping(
        body,
        path,
        {
            "type", "algorithms", "jwks_file", "jwks", "secret", "public_key", "issuer",
            "audience", "leeway", "jwks_url", "refresh", "min_refresh", "ca", "require",
        },
    )
    algs = _strs(v, a, "algorithms", path, a.get("algorithms", ["RS256", "ES256"]))
    for alg in algs:
        if alg not in ALGORITHMS:
            raise v.fail(
                a, f"{path}.algorithms", f"{alg!r} not supported; one of {', '.join(ALGORITHMS)}",
                "algorithms",
            )
    aud = a.get("audience")
    if isinstance(aud, str):
        aud = [aud]
    if aud is not None:
        aud = _strs(v, a, "audience", path, aud)
    issuer = v.get(a, "issuer", path, str, None)
    common: dict[str, Any] = {
        "issuer": issuer,
        "audience": aud,
        "leeway": v.duration(a, "leeway", path, 30.0) if "leeway" in a else 30.0,
        "require": _strs(v, a, "require", path, a.get("require", [])),
    }
    if kind == "oidc":
        if issuer is None:
            raise v.fail(a, path, "an oidc scheme needs issuer")
        for bad in ("jwks_file", "jwks", "secret", "public_key"):
            if bad in a:
                raise v.fail(a, f"{path}.{bad}", "oidc keys come from the issuer", bad)
        return JwtScheme(
            name,
            algs,
            jwks_url=v.get(a, "jwks_url", path, str, None),
            discovery="jwks_url" not in a,
            refresh_interval=v.duration(a, "refresh", path, 300.0) or 300.0,
            min_refresh=v.duration(a, "min_refresh", path, 10.0) or 0.0,
            ca_file=v.get(a, "ca", path, str, None),
            **common,
        )
    for bad in ("jwks_url", "refresh", "min_refresh"):
        if bad in a:
            raise v.fail(a, f"{path}.{bad}", "remote keys need type: oidc", bad)
    try:
        keys = static_keys(
            v.get(a, "jwks_file", path, str, None),
            a.get("jwks"),
            v.get(a, "secret", path, str, None),
            v.get(a, "public_key", path, str, None),
        )
    except (OSError, ValueError) as e:
        raise v.fail(a, path, f"cannot load keys: {e}") from None
    if not keys:
        raise v.fail(a, path, "a jwt scheme needs keys: jwks_file, jwks, secret or public_key")
    if "secret" in a and any(not alg.startswith("HS") for alg in algs) and len(keys) == 1:
        raise v.fail(a, f"{path}.algorithms", "a secret signs HS256/HS384/HS512 only",
                     "algorithms")
    return JwtScheme(name, algs, keys, **common)
