"""Request headers that steer a call, read the same way on every path (Java routes, auto
routes, IDL services), so one header means one thing whatever the upstream protocol."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from tribridge.errors import bad_request
from tribridge.http.canonical import canonical_header

#: per-request deadline in milliseconds, overriding route/method/service timeouts
TIMEOUT_HEADER = "x-dubbo-timeout"
MAX_TIMEOUT_MS = 600_000


def timeout_header(headers: Mapping[str, str]) -> float | None:
    """Seconds from ``x-dubbo-timeout`` (None when absent); a bad value is a 400."""
    t = headers.get(TIMEOUT_HEADER)
    if t is None:
        return None
    try:
        ms = int(t)
    except ValueError:
        raise bad_request(f"{TIMEOUT_HEADER} must be milliseconds, got {t!r}") from None
    if not 0 < ms <= MAX_TIMEOUT_MS:
        raise bad_request(f"{TIMEOUT_HEADER} must be 1..{MAX_TIMEOUT_MS} ms")
    return ms / 1000


def identity_names(security: Any) -> frozenset[str]:
    """Attachment names any access rule writes from verified claims (``forward``), in
    canonical form (gateway/http/canonical.py). They carry identity, so a client never sets them."""
    return frozenset(
        canonical_header(att) for rule in security.access for att in rule.forward.values()
    )


def passthrough_names(cfg: Any) -> tuple[str, ...]:
    """The ``passthrough_headers`` copied from a client's request to the provider, minus
    every identity name (``identity_names``).

    Dropped whatever rule matches the request, not only when a forwarding rule does: if a
    path or service escaped the rule, the client's ``x-user`` must still not reach the
    provider as the caller's identity. Compared in canonical form, so ``X_User`` in one
    list and ``x-user`` in the other are the same name.
    """
    reserved = identity_names(cfg.security)
    return tuple(h for h in cfg.passthrough_headers if canonical_header(h) not in reserved)


def under_prefix(prefix: str, path: str) -> str | None:
    """``path`` below the auto-route ``prefix`` (without the separating ``/``), or None.

    A whole-segment match: with prefix ``/api``, ``/apix/...`` is not below it. Both are
    canonical (no trailing ``/``, no ``//``), so no other spelling needs handling."""
    if prefix == "/":
        return path[1:]
    if path.startswith(prefix) and path[len(prefix) : len(prefix) + 1] == "/":
        return path[len(prefix) + 1 :]
    return None
