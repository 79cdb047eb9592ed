"""The per-request gate between routing and the provider: rate limits, authentication,
authorization, claims forwarded as attachments.

Rules match on the HTTP path, the service and the method (globs), so one list covers
explicit and auto routes alike; the first matching access rule decides. Order of checks:
per-IP limits (before any crypto, so a flood of bad tokens is throttled too), credentials
(401 + ``WWW-Authenticate``), required scopes/claims (403), then per-route and per-consumer
limits (429 + ``Retry-After``).
"""

from __future__ import annotations

import fnmatch
from collections.abc import Awaitable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import orjson
from tribridge.errors import GatewayError
from tribridge.security.auth import AuthFailure, Identity, Scheme
from tribridge.security.ratelimit import RedisBuckets, TokenBuckets, retry_after

if TYPE_CHECKING:  # the guard judges requests; it never needs the listener at run time
    from tribridge.http.messages import Request


class Limited(GatewayError):
    def __init__(self, wait: float, rule: str) -> None:
        super().__init__(429, "rate_limited", f"rate limit {rule} exceeded", rule=rule)
        self.headers = [("retry-after", retry_after(wait))]


@dataclass
class Match:
    path: str = "*"
    service: str = "*"
    method: str = "*"

    def hit(self, path: str, service: str, method: str) -> bool:
        return (
            fnmatch.fnmatchcase(path, self.path)
            and fnmatch.fnmatchcase(service, self.service)
            and fnmatch.fnmatchcase(method, self.method)
        )


@dataclass
class AccessRule:
    match: Match
    schemes: list[str] = field(default_factory=list)  # empty: public
    scopes: list[str] = field(default_factory=list)
    claims: dict[str, Any] = field(default_factory=dict)
    forward: dict[str, str] = field(default_factory=dict)  # claim -> attachment name


@dataclass
class LimitRule:
    name: str
    match: Match
    per: str  # route | consumer | ip
    buckets: TokenBuckets | RedisBuckets


def _claim(claims: dict[str, Any], dotted: str) -> Any:
    cur: Any = claims
    for part in dotted.split("."):
        if not isinstance(cur, dict) or part not in cur:
            return None
        cur = cur[part]
    return cur


def _scopes(claims: dict[str, Any]) -> set[str]:
    out: set[str] = set()
    for k in ("scope", "scp"):
        v = claims.get(k)
        if isinstance(v, str):
            out.update(v.split())
        elif isinstance(v, list):
            out.update(str(x) for x in v)
    return out


class Guard:
    def __init__(
        self,
        schemes: dict[str, Scheme],
        access: list[AccessRule],
        limits: list[LimitRule],
    ) -> None:
        self.schemes = schemes
        self.access = access
        self.limits = limits
        self._ip_limits = [r for r in limits if r.per == "ip"]
        self._other_limits = [r for r in limits if r.per != "ip"]

    async def close(self) -> None:
        for r in self.limits:
            if isinstance(r.buckets, RedisBuckets):
                await r.buckets.close()

    def check(
        self, req: Request, service: str, method: str, attachments: dict[str, str]
    ) -> Awaitable[None] | None:
        """Raise a GatewayError, return None (go on), or an awaitable to finish first."""
        path = req.path
        ip = req.client[0] if req.client else "-"
        remote = self._take(
            [(r, ip) for r in self._ip_limits if r.match.hit(path, service, method)]
        )
        if remote is not None:
            return self._resume(remote, req, service, method, attachments, path, ip)
        return self._identify(req, service, method, attachments, path, ip)

    async def _resume(
        self,
        remote: Awaitable[None],
        req: Request,
        service: str,
        method: str,
        attachments: dict[str, str],
        path: str,
        ip: str,
    ) -> None:
        await remote
        more = self._identify(req, service, method, attachments, path, ip)
        if more is not None:
            await more

    def _identify(
        self,
        req: Request,
        service: str,
        method: str,
        attachments: dict[str, str],
        path: str,
        ip: str,
    ) -> Awaitable[None] | None:
        rule = next((a for a in self.access if a.match.hit(path, service, method)), None)
        if rule is None or not rule.schemes:
            return self._limit(path, service, method, None, ip)
        ident = self._authenticate(req, rule)
        if isinstance(ident, Identity):
            return self._after(rule, ident, attachments, path, service, method, ip)
        return self._finish(ident, rule, attachments, path, service, method, ip)

    def _take(self, checks: list[tuple[LimitRule, str]]) -> Awaitable[None] | None:
        """Local buckets answer now (raising Limited); Redis ones in an awaitable."""
        remote: list[tuple[LimitRule, str]] = []
        for r, key in checks:
            b = r.buckets
            if isinstance(b, TokenBuckets):
                wait = b.take(key)
                if wait:
                    raise Limited(wait, r.name)
            else:
                remote.append((r, key))
        return self._take_remote(remote) if remote else None

    async def _take_remote(self, checks: list[tuple[LimitRule, str]]) -> None:
        for r, key in checks:
            assert isinstance(r.buckets, RedisBuckets)
            wait = await r.buckets.take(key)
            if wait:
                raise Limited(wait, r.name)

    async def _finish(
        self,
        pending: Awaitable[Identity],
        rule: AccessRule,
        attachments: dict[str, str],
        path: str,
        service: str,
        method: str,
        ip: str,
    ) -> None:
        ident = await pending
        more = self._after(rule, ident, attachments, path, service, method, ip)
        if more is not None:
            await more

    def _authenticate(self, req: Request, rule: AccessRule) -> Identity | Awaitable[Identity]:
        challenges = []
        first: tuple[Scheme, str] | None = None
        for name in rule.schemes:
            scheme = self.schemes[name]
            cred = scheme.credentials(req.headers, req.query)
            if cred is None:
                challenges.append(scheme.challenge)
                continue
            if scheme.accepts(cred):
                return scheme.verify(cred)
            if first is None:
                first = (scheme, cred)
        if first is not None:  # nobody claims it: let the first reader say what is wrong
            return first[0].verify(first[1])
        err = AuthFailure(401, "unauthenticated", "credentials required")
        err.headers = [("www-authenticate", c) for c in challenges]
        raise err

    def _after(
        self,
        rule: AccessRule,
        ident: Identity,
        attachments: dict[str, str],
        path: str,
        service: str,
        method: str,
        ip: str,
    ) -> Awaitable[None] | None:
        claims = ident.claims
        missing = [s for s in rule.scopes if s not in _scopes(claims)]
        if missing:
            raise AuthFailure(
                403, "forbidden", f"missing scope(s): {', '.join(missing)}",
            )
        for k, want in rule.claims.items():
            have = _claim(claims, k)
            ok = (
                any(w == have or (isinstance(have, list) and w in have) for w in want)
                if isinstance(want, list)
                else have == want or (isinstance(have, list) and want in have)
            )
            if not ok:
                raise AuthFailure(403, "forbidden", f"claim {k!r} does not allow this call")
        pending = self._limit(path, service, method, ident, ip)
        for claim, att in rule.forward.items():
            v = _claim(claims, claim)
            if v is None:
                attachments.pop(att, None)
                continue
            attachments[att] = v if isinstance(v, str) else orjson.dumps(v).decode()
        return pending

    def _limit(
        self, path: str, service: str, method: str, ident: Identity | None, ip: str
    ) -> Awaitable[None] | None:
        checks = []
        for r in self._other_limits:
            if not r.match.hit(path, service, method):
                continue
            if r.per == "route":
                key = f"{service}#{method}"
            else:
                key = f"{ident.scheme}:{ident.subject}" if ident is not None else f"ip:{ip}"
            checks.append((r, key))
        return self._take(checks) if checks else None
