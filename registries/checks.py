"""Field checks for untrusted registry records (Nacos, Eureka, Kubernetes, metadata).

Every registry turns the fields it routes by — host, port, weight, protocol, version, group,
metadata — into checked values with these, so one rule holds for every source: a bad field
raises ``RecordRejected`` (``registries/records.py``) with a stable reason label and a
detail, and the registry skips that record and reports it through ``Registry.skips``.
"""

from __future__ import annotations

import ipaddress
from typing import Any

from .records import (
    BAD_HOST,
    BAD_PORT,
    BAD_TYPE,
    BAD_VALUE,
    TOO_LARGE,
    RecordRejected,
    SkipReport,
)

#: ``SkipReport`` source for records not tied to one interface (a Kubernetes object, a
#: Eureka instance that cannot be read): ``registry ls SERVICE`` lists them too
ANY_SERVICE = "*"


def skipped_text(skips: SkipReport) -> dict[str, str]:
    """``status()["skipped"]``: record → "reason: detail", for people and older callers
    (``status()["skipped_records"]`` has the structured report)."""
    return {r.where: f"{r.reason}: {r.detail}" if r.detail else r.reason for r in skips.records()}


#: a weight above this is not a weight (Nacos caps at 10000 too; Dubbo's default is 100)
MAX_WEIGHT = 10000
#: longest metadata/annotation value a record may carry
MAX_VALUE = 64 * 1024
#: most metadata entries a record may carry
MAX_ENTRIES = 512
_HOST_CHARS = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789.-_:")
_PROTOCOLS = ("dubbo", "tri")


def check_host(v: Any, what: str = "address") -> str:
    """An IP address or DNS name, nothing else (no brackets, spaces, URLs, zone ids)."""
    if not isinstance(v, str) or not v:
        raise RecordRejected(BAD_HOST, f"{what} missing or not text")
    if len(v) > 253 or not set(v) <= _HOST_CHARS:
        raise RecordRejected(BAD_HOST, f"bad {what} {v[:60]!r}")
    if ":" in v:
        try:
            ipaddress.IPv6Address(v)
        except ValueError:
            raise RecordRejected(BAD_HOST, f"bad {what} {v[:60]!r}") from None
    elif v[0] in "-." or ".." in v:
        raise RecordRejected(BAD_HOST, f"bad {what} {v[:60]!r}")
    return v


def check_port(v: Any, what: str = "port") -> int:
    """1..65535, from an int or a decimal string (never a bool, float or huge text)."""
    if isinstance(v, bool):
        raise RecordRejected(BAD_PORT, f"bad {what} {v!r}")
    if isinstance(v, str):
        s = v.strip()
        if not s.isascii() or not s.isdigit() or len(s) > 5:
            raise RecordRejected(BAD_PORT, f"bad {what} {v[:20]!r}")
        v = int(s)
    if not isinstance(v, int) or not 0 < v < 65536:
        raise RecordRejected(BAD_PORT, f"bad {what} {str(v)[:20]!r}")
    return v


def check_weight(v: Any, default: int, what: str = "weight") -> int:
    """0..MAX_WEIGHT (absent = ``default``); floats with no fraction are accepted."""
    if v is None or v == "":
        return default
    if isinstance(v, bool):
        raise RecordRejected(BAD_VALUE, f"bad {what} {v!r}")
    if isinstance(v, float):
        if v != v or v in (float("inf"), float("-inf")) or v != int(v):
            raise RecordRejected(BAD_VALUE, f"bad {what} {v!r}")
        v = int(v)
    if isinstance(v, str):
        s = v.strip()
        if not s.isascii() or len(s) > 12 or not s.lstrip("-").isdigit():
            raise RecordRejected(BAD_VALUE, f"bad {what} {v[:20]!r}")
        v = int(s)
    if not isinstance(v, int) or not 0 <= v <= MAX_WEIGHT:
        raise RecordRejected(BAD_VALUE, f"{what} {str(v)[:20]} outside 0..{MAX_WEIGHT}")
    return v


def check_protocol(v: Any, default: str = "dubbo", what: str = "protocol") -> str:
    if v is None or v == "":
        return default
    if not isinstance(v, str) or v.lower() not in _PROTOCOLS:
        raise RecordRejected(BAD_VALUE, f"{what} {str(v)[:40]!r}: expected dubbo or tri")
    return v.lower()


_LAX_OK = frozenset("\t\n\r")


def check_text(v: Any, what: str, limit: int = MAX_VALUE, strict: bool = True) -> str:
    """A string of at most ``limit`` characters ("" when absent).  ``strict``: printable
    only (fields routing reads: versions, groups, names); otherwise tabs and line breaks
    are allowed (free-form metadata a registrant may format), NUL, other control
    characters and lone surrogates (undecodable bytes) never."""
    if v is None:
        return ""
    if not isinstance(v, str):
        raise RecordRejected(BAD_TYPE, f"{what} is not text ({type(v).__name__})")
    if len(v) > limit:
        raise RecordRejected(TOO_LARGE, f"{what} of {len(v)} characters (limit {limit})")
    if not v.isprintable() and (strict or not all(c.isprintable() or c in _LAX_OK for c in v)):
        raise RecordRejected(BAD_VALUE, f"{what} holds control characters")
    return v


def check_metadata(v: Any, what: str = "metadata") -> dict[str, str]:
    """A map of text to text, bounded in entries and value size (None values dropped)."""
    if v is None:
        return {}
    if not isinstance(v, dict):
        raise RecordRejected(BAD_TYPE, f"{what} is not a map ({type(v).__name__})")
    if len(v) > MAX_ENTRIES:
        raise RecordRejected(TOO_LARGE, f"{what} has {len(v)} entries (limit {MAX_ENTRIES})")
    out: dict[str, str] = {}
    for k, x in v.items():
        if x is None:
            continue
        key = check_text(k, f"{what} key", 256)
        if isinstance(x, bool):
            x = "true" if x else "false"
        elif isinstance(x, int | float):
            x = str(x)
        out[key] = check_text(x, f"{what}[{key[:40]}]", strict=False)
    return out
