"""Request headers that steer a call, read the same way on every path (Java routes, auto
routes, IDL services), so one header means one thing whatever the upstream protocol."""

from __future__ import annotations

from collections.abc import Mapping

from .errors import bad_request

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
