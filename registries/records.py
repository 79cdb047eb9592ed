"""Registry records are untrusted input: typed rejections and a bounded report of skips.

Anyone who can write to a registry can write anything: a provider URL with an unclosed IPv6
bracket, a port of 99999, a 10 MB metadata value, JSON with the wrong types, bytes that are
not UTF-8.  Every registry parses each record on its own and turns any problem into a
``RecordRejected`` (a reason, never a traceback); the record is skipped, the good ones beside
it keep serving.  ``SkipReport`` remembers what was skipped so ``registry ls``, the admin
registry view and the metrics can show it: bounded (the last ``per_source`` reasons per
source, counts for everything), and logged once per (source, key, reason) with a rate limit
so a hostile registry cannot flood the log either.
"""

from __future__ import annotations

import logging
import time
from collections import OrderedDict
from collections.abc import Callable
from typing import Any

log = logging.getLogger("tribridge.registry.records")

#: reasons kept per source (oldest dropped first)
DEFAULT_PER_SOURCE = 50
#: log lines per source per minute, at most
DEFAULT_LOG_PER_MINUTE = 10
#: a reason longer than this is cut (hostile records carry hostile text)
MAX_REASON = 300
MAX_KEY = 200


class RecordRejected(Exception):
    """One registry record that cannot be used; ``reason`` says why (short, printable)."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def _clip(text: str, limit: int) -> str:
    text = "".join(c if c.isprintable() else "?" for c in text[: limit + 1])
    return text if len(text) <= limit else text[: limit - 1] + "…"


class SkipReport:
    """Skipped records per source: the last ``per_source`` (key → reason) plus counts.

    ``reject`` is cheap and idempotent for a record that keeps being bad (a registry
    re-reads the same bad record on every push): it is logged once, counted once per
    distinct (key, reason), and ``clear`` forgets it when the record is fixed or gone.
    ``on_reject`` (optional) is called with the source for every newly counted skip
    (the gateway hooks its metrics counter there; registries do not import the gateway).
    """

    def __init__(
        self,
        per_source: int = DEFAULT_PER_SOURCE,
        log_per_minute: int = DEFAULT_LOG_PER_MINUTE,
        on_reject: Callable[[str], Any] | None = None,
    ) -> None:
        self.per_source = per_source
        self.log_per_minute = log_per_minute
        self.on_reject = on_reject
        self._recent: dict[str, OrderedDict[str, str]] = {}
        self._counts: dict[str, int] = {}
        self._log_window: dict[str, tuple[float, int]] = {}
        self._suppressed: dict[str, int] = {}

    def reject(self, source: str, key: str, reason: str) -> None:
        """Record that ``key`` from ``source`` was skipped because of ``reason``."""
        key = _clip(str(key), MAX_KEY)
        reason = _clip(str(reason), MAX_REASON)
        recent = self._recent.setdefault(source, OrderedDict())
        if recent.get(key) == reason:
            recent.move_to_end(key)
            return
        recent[key] = reason
        recent.move_to_end(key)
        while len(recent) > self.per_source:
            recent.popitem(last=False)
        self._counts[source] = self._counts.get(source, 0) + 1
        self._log(source, key, reason)
        if self.on_reject is not None:
            try:
                self.on_reject(source)
            except Exception:  # a metrics hook must never break discovery
                log.exception("skip hook failed")

    def clear(self, source: str, key: str) -> None:
        """``key`` is usable again (fixed or removed): no longer listed as skipped."""
        recent = self._recent.get(source)
        if recent is not None:
            recent.pop(_clip(str(key), MAX_KEY), None)

    def _log(self, source: str, key: str, reason: str) -> None:
        now = time.monotonic()
        start, n = self._log_window.get(source, (now, 0))
        if now - start >= 60.0:
            dropped = self._suppressed.pop(source, 0)
            if dropped:
                log.warning("%s: %d more skipped records not logged", source, dropped)
            start, n = now, 0
        if n < self.log_per_minute:
            log.warning("%s: skipped %s: %s", source, key, reason)
            self._log_window[source] = (start, n + 1)
        else:
            self._log_window[source] = (start, n)
            self._suppressed[source] = self._suppressed.get(source, 0) + 1

    def current(self, source: str) -> dict[str, str]:
        """key → reason of the records of ``source`` skipped now (most recent last)."""
        return dict(self._recent.get(source, {}))

    def count(self, source: str) -> int:
        return self._counts.get(source, 0)

    def snapshot(self) -> dict[str, dict[str, Any]]:
        """{source: {"count": n, "recent": {key: reason}}} for status, CLI and admin."""
        sources = set(self._recent) | set(self._counts)
        return {
            s: {"count": self._counts.get(s, 0), "recent": dict(self._recent.get(s, {}))}
            for s in sorted(sources)
        }


# ---- field checks shared by the registries (each raises RecordRejected) --------------------

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
        raise RecordRejected(f"{what} missing or not text")
    if len(v) > 253 or not set(v) <= _HOST_CHARS:
        raise RecordRejected(f"bad {what} {v[:60]!r}")
    if ":" in v:
        import ipaddress

        try:
            ipaddress.IPv6Address(v)
        except ValueError:
            raise RecordRejected(f"bad {what} {v[:60]!r}") from None
    elif v[0] in "-." or ".." in v:
        raise RecordRejected(f"bad {what} {v[:60]!r}")
    return v


def check_port(v: Any, what: str = "port") -> int:
    """1..65535, from an int or a decimal string (never a bool, float or huge text)."""
    if isinstance(v, bool):
        raise RecordRejected(f"bad {what} {v!r}")
    if isinstance(v, str):
        s = v.strip()
        if not s.isascii() or not s.isdigit() or len(s) > 5:
            raise RecordRejected(f"bad {what} {v[:20]!r}")
        v = int(s)
    if not isinstance(v, int) or not 0 < v < 65536:
        raise RecordRejected(f"bad {what} {str(v)[:20]!r}")
    return v


def check_weight(v: Any, default: int, what: str = "weight") -> int:
    """0..MAX_WEIGHT (absent = ``default``); floats with no fraction are accepted."""
    if v is None or v == "":
        return default
    if isinstance(v, bool):
        raise RecordRejected(f"bad {what} {v!r}")
    if isinstance(v, float):
        if v != v or v in (float("inf"), float("-inf")) or v != int(v):
            raise RecordRejected(f"bad {what} {v!r}")
        v = int(v)
    if isinstance(v, str):
        s = v.strip()
        if not s.isascii() or len(s) > 12 or not s.lstrip("-").isdigit():
            raise RecordRejected(f"bad {what} {v[:20]!r}")
        v = int(s)
    if not isinstance(v, int) or not 0 <= v <= MAX_WEIGHT:
        raise RecordRejected(f"{what} {str(v)[:20]} outside 0..{MAX_WEIGHT}")
    return v


def check_protocol(v: Any, default: str = "dubbo", what: str = "protocol") -> str:
    if v is None or v == "":
        return default
    if not isinstance(v, str) or v.lower() not in _PROTOCOLS:
        raise RecordRejected(f"{what} {str(v)[:40]!r}: expected dubbo or tri")
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
        raise RecordRejected(f"{what} is not text ({type(v).__name__})")
    if len(v) > limit:
        raise RecordRejected(f"{what} of {len(v)} characters (limit {limit})")
    if not v.isprintable() and (strict or not all(c.isprintable() or c in _LAX_OK for c in v)):
        raise RecordRejected(f"{what} holds control characters")
    return v


def check_metadata(v: Any, what: str = "metadata") -> dict[str, str]:
    """A map of text to text, bounded in entries and value size (None values dropped)."""
    if v is None:
        return {}
    if not isinstance(v, dict):
        raise RecordRejected(f"{what} is not a map ({type(v).__name__})")
    if len(v) > MAX_ENTRIES:
        raise RecordRejected(f"{what} has {len(v)} entries (limit {MAX_ENTRIES})")
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
