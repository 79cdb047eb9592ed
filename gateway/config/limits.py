"""Process-wide resource arithmetic shared by the listeners (docs/security.md, "Resource limits").

Every inbound connection costs a file descriptor, and so does every upstream connection,
registry session and file the gateway opens.  A listener that accepted until ``EMFILE``
would leave the gateway unable to reach its providers — every caller fails, not just the
flood — so each listener caps its connections below the descriptor limit, keeping
``fd_reserve`` descriptors back for the outbound side.
"""

from __future__ import annotations

import logging
from typing import Any

try:
    import resource
except ImportError:  # pragma: no cover - not on Windows
    resource = None  # type: ignore[assignment]

log = logging.getLogger("tribridge.limits")

#: descriptors kept back for upstream connections, registries and files (``limits.fd_reserve``)
DEFAULT_FD_RESERVE = 256
#: inbound connections per listener (``limits.max_connections``, ``dubbo_ingress.max_connections``)
DEFAULT_MAX_CONNECTIONS = 10_000
#: JSON values one request body may hold (``limits.max_json_elements``): each costs a few
#: microseconds to coerce, police and encode, so this bounds a request's CPU (measured in
#: docs/security.md) whatever its byte size
DEFAULT_MAX_JSON_ELEMENTS = 20_000


def nofile_limit() -> int | None:
    """The soft ``RLIMIT_NOFILE`` of this process, or None when unlimited/unknown."""
    if resource is None:
        return None
    soft, _hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft == resource.RLIM_INFINITY or soft <= 0:
        return None
    return int(soft)


def connection_cap(setting: int, reserve: int, what: str = "listener") -> int:
    """``min(setting, nofile - reserve)``, at least 1: read once when a listener starts."""
    nofile = nofile_limit()
    if nofile is None:
        return setting
    room = nofile - reserve
    if room < setting:
        log.warning(
            "%s: connection cap %d lowered to %d (RLIMIT_NOFILE %d minus fd_reserve %d); "
            "raise `ulimit -n` to accept more",
            what,
            setting,
            max(room, 1),
            nofile,
            reserve,
        )
    return max(1, min(setting, room))


def json_elements_exceed(body: bytes, doc: Any, limit: int) -> bool:
    """Whether the parsed JSON ``doc`` (from ``body``) holds more than ``limit`` values.

    Nothing per request for ordinary bodies: a value takes at least one byte, and every
    value but a document's first is preceded by a comma or opens a container, so
    ``len(body)`` and then ``1 + commas + brackets + braces`` (C-speed counts; commas in
    strings only overcount) settle almost every body without a walk.  Only a body that
    might be over the limit is walked, iteratively, stopping at the limit.
    """
    if len(body) <= limit:
        return False
    if 1 + body.count(b",") + body.count(b"[") + body.count(b"{") <= limit:
        return False
    n = 1
    stack = [doc]
    while stack:
        v = stack.pop()
        if isinstance(v, dict):
            v = v.values()
        elif not isinstance(v, list):
            continue
        n += len(v)
        if n > limit:
            return True
        stack.extend(x for x in v if isinstance(x, (list, dict)))
    return False
