"""Plain-mode values of the Java value classes: what ``Decoder(typed=False)`` returns for them.

A Java value class reaches the decoder as an object (a class definition and its fields, as
hessian-lite's serializers write it: ``BigDecimal`` as ``value``, java.time as a
``java8.*Handle``); in plain mode the decoder looks its class up in ``PLAIN_CONVERTERS`` and
returns the Python value Dubbo's generic-call conventions give it (``Decimal``, ``int``, an
aware ``datetime``, the ISO-8601 text of a java.time value).  A converter that meets fields
it does not expect returns the map unchanged, so odd input stays visible instead of failing.
"""

from __future__ import annotations

import datetime as _dt
from collections.abc import Callable
from decimal import Decimal, InvalidOperation
from typing import Any

_EPOCH = _dt.datetime(1970, 1, 1, tzinfo=_dt.UTC)


def ms_to_datetime(ms: int) -> _dt.datetime | int:
    """A Java Date as an aware datetime; outside Python's range the raw ms survive."""
    try:
        return _EPOCH + _dt.timedelta(milliseconds=ms)
    except OverflowError:
        return ms


_HL = "com.alibaba.com.caucho.hessian.io.java8."


def _bigdecimal(d: dict[str, Any]) -> Any:
    try:
        return Decimal(d["value"])
    except (InvalidOperation, TypeError, ValueError, KeyError):
        return d


def _biginteger(d: dict[str, Any]) -> Any:
    mag, signum = d.get("mag"), d.get("signum")
    if not isinstance(mag, list) or not isinstance(signum, int):
        return d
    if not all(isinstance(w, int) for w in mag):
        return d
    v = int.from_bytes(b"".join((w & 0xFFFFFFFF).to_bytes(4, "big") for w in mag), "big")
    return -v if signum < 0 else v


def _sql_date(d: dict[str, Any]) -> Any:
    v = d.get("value")
    return v if isinstance(v, _dt.datetime) else d


def _single(field: str) -> Callable[[dict[str, Any]], Any]:
    def conv(d: dict[str, Any]) -> Any:
        return d.get(field, d) if len(d) == 2 else d

    return conv


def _local_date(d: dict[str, Any]) -> Any:
    try:
        return _dt.date(d["year"], d["month"], d["day"]).isoformat()
    except (KeyError, TypeError, ValueError, OverflowError):
        return d


def _local_time(d: dict[str, Any]) -> Any:
    try:
        t = _dt.time(d["hour"], d["minute"], d["second"], (d.get("nano") or 0) // 1000)
        return t.isoformat()
    except (KeyError, TypeError, ValueError, OverflowError):
        return d


def _local_datetime(d: dict[str, Any]) -> Any:
    date, time = d.get("date"), d.get("time")
    if isinstance(date, str) and isinstance(time, str):
        return f"{date}T{time}"
    return d


def _instant(d: dict[str, Any]) -> Any:
    try:
        return _EPOCH + _dt.timedelta(seconds=d["seconds"], microseconds=d["nanos"] // 1000)
    except (KeyError, TypeError, ValueError, OverflowError):
        return d


def _offset_text(seconds: int) -> str:
    """``ZoneOffset.toString()``: ``Z``, ``+08:00``, ``-05:30:15``."""
    if seconds == 0:
        return "Z"
    sign = "-" if seconds < 0 else "+"
    h, rest = divmod(abs(seconds), 3600)
    m, s = divmod(rest, 60)
    return f"{sign}{h:02d}:{m:02d}" + (f":{s:02d}" if s else "")


def _java_time_text(fmt: Callable[[dict[str, Any]], Any]) -> Callable[[dict[str, Any]], Any]:
    """A converter for the other ``java8.*Handle`` replies: their Java ``toString()`` (the
    ISO-8601 text the gateway also accepts), the map unchanged when a field is off."""

    def conv(d: dict[str, Any]) -> Any:
        try:
            text = fmt(d)
        except (KeyError, TypeError, ValueError, OverflowError):
            return d
        return text if isinstance(text, str) else d

    return conv


def _duration_text(d: dict[str, Any]) -> str:
    """``Duration.toString()``: PT8H6M12.345S, PT-0.5S, PT0S."""
    total = d["seconds"] * 10**9 + d["nanos"]
    if total == 0:
        return "PT0S"
    sign = "-" if total < 0 else ""
    secs, nanos = divmod(abs(total), 10**9)
    h, rest = divmod(secs, 3600)
    m, s = divmod(rest, 60)
    out = "PT" + (f"{sign}{h}H" if h else "") + (f"{sign}{m}M" if m else "")
    if s or nanos:
        frac = f".{nanos:09d}".rstrip("0") if nanos else ""
        out += f"{sign}{s}{frac}S"
    return out


def _period_text(d: dict[str, Any]) -> str:
    y, m, days = d["years"], d["months"], d["days"]
    if not (y or m or days):
        return "P0D"
    return "P" + (f"{y}Y" if y else "") + (f"{m}M" if m else "") + (f"{days}D" if days else "")


def _zoned_text(d: dict[str, Any]) -> str:
    offset, zone = d["offset"], d["zoneId"]
    text: str = d["dateTime"] + offset + ("" if zone == offset else f"[{zone}]")
    return text  # a TypeError (a field of another type) leaves the map as it came


PLAIN_CONVERTERS = {
    "java.math.BigDecimal": _bigdecimal,
    "java.math.BigInteger": _biginteger,
    "java.sql.Date": _sql_date,
    "java.sql.Time": _sql_date,
    "java.sql.Timestamp": _sql_date,
    "java.util.UUID": _single("value"),
    "java.net.URI": _single("value"),
    "java.lang.Class": _single("name"),
    "com.alibaba.com.caucho.hessian.io.LocaleHandle": _single("value"),
    _HL + "LocalDateHandle": _local_date,
    _HL + "LocalTimeHandle": _local_time,
    _HL + "LocalDateTimeHandle": _local_datetime,
    _HL + "InstantHandle": _instant,
    _HL + "ZoneOffsetHandle": _java_time_text(lambda d: _offset_text(d["seconds"])),
    _HL + "ZoneIdHandle": _java_time_text(lambda d: d["zoneId"]),
    _HL + "OffsetDateTimeHandle": _java_time_text(lambda d: d["dateTime"] + d["offset"]),
    _HL + "OffsetTimeHandle": _java_time_text(lambda d: d["localTime"] + d["zoneOffset"]),
    _HL + "ZonedDateTimeHandle": _java_time_text(_zoned_text),
    _HL + "DurationHandle": _java_time_text(_duration_text),
    _HL + "PeriodHandle": _java_time_text(_period_text),
    _HL + "YearHandle": _java_time_text(lambda d: f"{d['year']:04d}"),
    _HL + "YearMonthHandle": _java_time_text(lambda d: f"{d['year']:04d}-{d['month']:02d}"),
    _HL + "MonthDayHandle": _java_time_text(lambda d: f"--{d['month']:02d}-{d['day']:02d}"),
}
