"""Registry records are untrusted input: how a bad one is rejected, skipped and reported.

Anyone who can write to a registry can write anything there: a provider URL with an unclosed
IPv6 bracket, a port of 99999, a megabyte of binary, JSON where a string should be a number.
One such record must never stop the good records beside it from serving, nor new ones from
arriving.  Every registry therefore parses each record on its own; a parser either returns a
value or raises ``RecordRejected`` with a short, stable ``reason`` (the label operators see in
metrics), and the registry hands the rejection to its ``SkipReport``:

* **counted** once per appearance (a record still bad on the next poll is not counted again),
  per reason — the ``tribridge_registry_records_skipped_total`` metric;
* **logged** when it first appears, rate-limited per source (a registry full of junk cannot
  flood the log);
* **listed** (the newest ``keep`` per source, ``max_sources`` sources) in ``status()``, so
  ``tribridge registry ls`` and the admin API's ``/registries`` show what was skipped and why.

Everything here is bounded: memory does not grow with the number of bad records written.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from .errors import RegistryError

log = logging.getLogger("tribridge.registry.records")

# Reasons (the metric label; keep the set small and stable, say the details in ``detail``).
BAD_URL = "bad_url"  #: not a URL, unparsable authority (e.g. unclosed IPv6 bracket)
BAD_HOST = "bad_host"  #: empty or non-address host
BAD_PORT = "bad_port"  #: missing, non-numeric or out-of-range port
BAD_VALUE = "bad_value"  #: a parameter with an unusable value (weight, timeout …)
BAD_JSON = "bad_json"  #: a document that is not JSON
BAD_TYPE = "bad_type"  #: JSON of the wrong shape (a list where an object belongs …)
NOT_UTF8 = "not_utf8"  #: bytes that are not UTF-8 text
TOO_LARGE = "too_large"  #: a record over the size bound
WRONG_SERVICE = "wrong_service"  #: a record filed under one service naming another
MISSING = "missing"  #: a required field absent
UNAVAILABLE = "unavailable"  #: a record that points somewhere that cannot be read

#: distinct reason labels counted; more fold into "other" (bounded metric cardinality)
MAX_REASONS = 32
OTHER = "other"


class RecordRejected(RegistryError):
    """One registry record that cannot be used; the others go on.

    ``reason`` is a short stable label (one of the constants above, ideally); ``detail``
    says what exactly was wrong, for humans (already truncated to a sane length)."""

    def __init__(self, reason: str, detail: str = "") -> None:
        self.reason = reason
        self.detail = detail[:300]
        super().__init__(f"{reason}: {self.detail}" if self.detail else reason)


@dataclass(frozen=True, slots=True)
class SkippedRecord:
    """One rejected record, as shown in ``registry ls`` and the admin API."""

    source: str  #: what was being read (an interface, an application, a namespace …)
    where: str  #: which record (a node name, an instance id), truncated
    reason: str
    detail: str
    at: float

    def as_dict(self) -> dict[str, Any]:
        return {
            "source": self.source,
            "where": self.where,
            "reason": self.reason,
            "detail": self.detail,
            "at": self.at,
        }


class SkipReport:
    """Bounded bookkeeping of rejected records of one registry.

    Call ``update(source, rejected)`` after each full pass over a source (the records still
    bad replace the previous set; records that disappeared or got fixed are forgotten), or
    ``add`` / ``clear`` from registries that learn of records one at a time.

    Two bounded tables per source: the records on show (the newest ``keep``) and the ones
    already counted (``track`` of them, as hashes), so a source with more bad records than
    are shown is still counted and logged once per record, not once per pass."""

    def __init__(
        self,
        name: str,
        *,
        keep: int = 20,
        track: int = 1024,
        max_sources: int = 256,
        log_interval: float = 60.0,
        clock: Any = time.monotonic,
    ) -> None:
        self.name = name
        self.keep = keep
        self.track = track
        self.max_sources = max_sources
        self.log_interval = log_interval
        self._clock = clock
        self._current: dict[str, dict[str, SkippedRecord]] = {}
        #: source -> hash(where) -> hash((reason, detail)) of the records already counted
        self._known: dict[str, dict[int, int]] = {}
        self.total = 0
        self.by_reason: dict[str, int] = {}
        self._last_log: dict[str, float] = {}
        self._suppressed: dict[str, int] = {}

    def add(self, source: str, where: str, err: RecordRejected | str, detail: str = "") -> None:
        """Record that ``where`` (of ``source``) was rejected; counted and logged only when
        it is new or its reason changed."""
        reason, det = (err.reason, err.detail) if isinstance(err, RecordRejected) else (err, detail)
        where = _short(where)
        known = self._known.get(source)
        if known is None:
            if len(self._known) >= self.max_sources:
                self._forget(next(iter(self._known)))
            known = self._known[source] = {}
            self._current[source] = {}
        recs = self._current.setdefault(source, {})
        wh, sig = hash(where), hash((reason, det))
        if known.get(wh) == sig:
            return  # counted already (shown, or pushed out of the shown ones by newer)
        if wh in known or len(known) < self.track:
            known[wh] = sig
        if where not in recs and len(recs) >= self.keep:
            recs.pop(next(iter(recs)))
        recs[where] = SkippedRecord(source, where, reason, det, time.time())
        self._count(reason)
        self._log(source, where, reason, det)

    def clear(self, source: str, where: str | None = None) -> None:
        """``where`` (or every record of ``source``) is gone or good again."""
        if where is None:
            self._forget(source)
            return
        where = _short(where)
        self._current.get(source, {}).pop(where, None)
        self._known.get(source, {}).pop(hash(where), None)

    def update(self, source: str, rejected: Iterable[tuple[str, RecordRejected]]) -> None:
        """The complete set of records of ``source`` rejected by the latest pass."""
        seen: set[str] = set()
        for where, err in rejected:
            self.add(source, where, err)
            seen.add(_short(where))
        if not seen:
            self._forget(source)
            return
        recs = self._current.get(source, {})
        for w in [w for w in recs if w not in seen]:
            del recs[w]
        known = self._known.get(source, {})
        hashes = {hash(w) for w in seen}
        for h in [h for h in known if h not in hashes]:
            del known[h]

    def _forget(self, source: str) -> None:
        self._current.pop(source, None)
        self._known.pop(source, None)

    def records(self, source: str | None = None) -> list[SkippedRecord]:
        if source is not None:
            return list(self._current.get(source, {}).values())
        return [r for recs in self._current.values() for r in recs.values()]

    def summary(self) -> dict[str, Any]:
        """JSON for ``status()``: totals since start and the records skipped right now."""
        return {
            "total": self.total,
            "by_reason": dict(self.by_reason),
            "current": [r.as_dict() for r in self.records()],
        }

    def _count(self, reason: str) -> None:
        if reason not in self.by_reason and len(self.by_reason) >= MAX_REASONS:
            reason = OTHER
        self.by_reason[reason] = self.by_reason.get(reason, 0) + 1
        self.total += 1

    def _log(self, source: str, where: str, reason: str, detail: str) -> None:
        now = self._clock()
        last = self._last_log.get(source)
        if last is not None and now - last < self.log_interval:
            self._suppressed[source] = self._suppressed.get(source, 0) + 1
            return
        if len(self._last_log) >= self.max_sources and source not in self._last_log:
            self._last_log.pop(next(iter(self._last_log)))
        self._last_log[source] = now
        more = self._suppressed.pop(source, 0)
        log.warning(
            "%s: skipped a bad record of %s (%s): %s %s%s",
            self.name,
            source,
            where,
            reason,
            detail,
            f" (+{more} more since the last report)" if more else "",
        )


def _short(where: str, limit: int = 200) -> str:
    """Record names are attacker-chosen: bound them and make them printable."""
    s = where if len(where) <= limit else where[:limit] + "…"
    return s.encode("unicode_escape", "replace").decode("ascii") if not s.isprintable() else s


def checked_text(data: bytes, limit: int, what: str = "record") -> str:
    """Bytes of a record → text: bounded size, strict UTF-8 (typed rejections otherwise)."""
    if len(data) > limit:
        raise RecordRejected(TOO_LARGE, f"{what} of {len(data)} bytes (limit {limit})")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as e:
        raise RecordRejected(NOT_UTF8, f"{what}: {e.reason} at byte {e.start}") from None


def bounded_int(value: Any, lo: int, hi: int, what: str) -> int:
    """An integer record field (JSON number or decimal text) within [lo, hi]."""
    if isinstance(value, bool):
        raise RecordRejected(BAD_TYPE, f"{what} is a boolean")
    if isinstance(value, str):
        v = value.strip()
        if not (v.isascii() and (v.isdigit() or (v[:1] == "-" and v[1:].isdigit()))) or len(v) > 19:
            raise RecordRejected(BAD_VALUE, f"{what} {value[:40]!r} is not an integer")
        value = int(v)
    if not isinstance(value, int):
        raise RecordRejected(BAD_TYPE, f"{what} is {type(value).__name__}, not an integer")
    if not lo <= value <= hi:
        raise RecordRejected(BAD_VALUE, f"{what} {value} outside {lo}..{hi}")
    return value
