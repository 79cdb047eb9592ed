"""java.time (and ``java.util.Date``) values from their JSON text: hessian-lite's handles.

hessian-lite writes each java.time value through a ``java8.*Handle`` (writeReplace); its
readResolve rebuilds the value.  JSON in: the class's own ``toString()`` (ISO-8601), or for
a ``Date`` / ``Instant`` epoch milliseconds too.  ``coercion.coerce`` calls these for the
``localdate`` / ``localtime`` / ``localdatetime`` / ``instant`` / ``jtime`` / ``date`` kinds.
"""

from __future__ import annotations

import datetime as _dt
import re
from collections.abc import Callable
from typing import Any

from .javatypes import JavaType
from .values import HessianObject, Int, JavaTypeError, Long

_HL = "com.alibaba.com.caucho.hessian.io.java8."


def parse_datetime(value: Any, t: JavaType, path: str) -> _dt.datetime:
    """A ``Date`` / ``Instant`` value (ISO-8601 text or epoch ms) as an aware datetime (UTC
    when the text has no offset)."""
    if isinstance(value, _dt.datetime):
        return value if value.tzinfo else value.replace(tzinfo=_dt.UTC)
    if isinstance(value, int) and type(value) is not bool:
        return _dt.datetime(1970, 1, 1, tzinfo=_dt.UTC) + _dt.timedelta(milliseconds=value)
    if isinstance(value, str):
        try:
            d = _dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            raise JavaTypeError(path, t.name, value, "ISO-8601 or epoch ms") from None
        return d if d.tzinfo else d.replace(tzinfo=_dt.UTC)
    raise JavaTypeError(path, t.name, value, "ISO-8601 or epoch ms")


def java_time(value: Any, t: JavaType, path: str, generic: bool) -> Any:
    """A ``LocalDate`` / ``LocalTime`` / ``LocalDateTime`` / ``Instant``: its handle, or in a
    generic call the ISO text ``PojoUtils.realize`` converts."""
    if not isinstance(value, str):
        raise JavaTypeError(path, t.name, value, "an ISO-8601 string")
    try:
        if t.kind == "localdate":
            d = _dt.date.fromisoformat(value)
            fields: dict[str, Any] = {"year": Int(d.year), "month": Int(d.month), "day": Int(d.day)}
            handle = "LocalDateHandle"
        elif t.kind == "localtime":
            tm = _dt.time.fromisoformat(value)
            fields = _time_fields(tm)
            handle = "LocalTimeHandle"
        elif t.kind == "localdatetime":
            dt = _dt.datetime.fromisoformat(value)
            if dt.tzinfo is not None:
                raise ValueError("LocalDateTime has no zone")
            date = HessianObject(
                _HL + "LocalDateHandle",
                {"year": Int(dt.year), "month": Int(dt.month), "day": Int(dt.day)},
            )
            time = HessianObject(_HL + "LocalTimeHandle", _time_fields(dt.time()))
            fields = {"date": date, "time": time}
            handle = "LocalDateTimeHandle"
        else:
            dt = parse_datetime(value, t, path)
            epoch = _dt.datetime(1970, 1, 1, tzinfo=_dt.UTC)
            delta = dt - epoch
            secs = delta.days * 86400 + delta.seconds
            if generic:
                return dt.astimezone(_dt.UTC).isoformat().replace("+00:00", "Z")
            fields = {"seconds": Long(secs), "nanos": Int(delta.microseconds * 1000)}
            handle = "InstantHandle"
    except ValueError as e:
        raise JavaTypeError(path, t.name, value, str(e)) from None
    if generic:
        return value
    return HessianObject(_HL + handle, fields)


# ---- the other java.time classes -----------------------------------------------------------
# hessian-lite writes each through a ``java8.*Handle`` (writeReplace); its readResolve
# rebuilds the value.  PojoUtils.realize converts no String to these, so the handle is the
# wire form in generic calls too.  JSON in: the class's own ``toString()`` (ISO-8601).

_DURATION = re.compile(
    r"([-+]?)P(?:([-+]?\d+)D)?(?:T(?:([-+]?\d+)H)?(?:([-+]?\d+)M)?(?:([-+]?\d+)(?:[.,](\d{0,9}))?S)?)?",
    re.IGNORECASE,
)
_PERIOD = re.compile(
    r"([-+]?)P(?:([-+]?\d+)Y)?(?:([-+]?\d+)M)?(?:([-+]?\d+)W)?(?:([-+]?\d+)D)?", re.IGNORECASE
)


def _ldt_handle(d: _dt.datetime) -> HessianObject:
    date = HessianObject(
        _HL + "LocalDateHandle", {"year": Int(d.year), "month": Int(d.month), "day": Int(d.day)}
    )
    time = HessianObject(_HL + "LocalTimeHandle", _time_fields(d.time()))
    return HessianObject(_HL + "LocalDateTimeHandle", {"date": date, "time": time})


def _offset_handle(tz: _dt.tzinfo | None, at: _dt.datetime | None = None) -> HessianObject:
    off = tz.utcoffset(at) if tz is not None else None
    if off is None:
        raise ValueError("an offset such as +08:00 or Z is required")
    return HessianObject(_HL + "ZoneOffsetHandle", {"seconds": Int(int(off.total_seconds()))})


def _offset_id(text: str) -> _dt.timezone:
    if text.upper() == "Z":
        return _dt.UTC
    d = _dt.datetime.fromisoformat("2000-01-01T00:00:00" + text)
    assert d.tzinfo is not None
    return d.tzinfo  # type: ignore[return-value]


def _zoned(text: str) -> HessianObject:
    """``2024-01-02T03:04:05+08:00[Asia/Shanghai]`` (ZonedDateTime.toString), or without
    the offset (taken from the zone) or without the zone (the offset is the zone)."""
    import zoneinfo

    stamp, _, zone = text.partition("[")
    zone = zone.rstrip("]")
    d = _dt.datetime.fromisoformat(stamp.replace("Z", "+00:00"))
    if zone:
        try:
            tz: _dt.tzinfo = zoneinfo.ZoneInfo(zone)
        except (zoneinfo.ZoneInfoNotFoundError, ValueError):
            tz = _offset_id(zone)  # "UTC+8"-style ids are not parsed: a ValueError
        if d.tzinfo is None:
            d = d.replace(tzinfo=tz)
    elif d.tzinfo is None:
        raise ValueError("a zone or an offset is required")
    else:
        zone = "Z" if d.utcoffset() == _dt.timedelta(0) else stamp[-6:]
    return HessianObject(
        _HL + "ZonedDateTimeHandle",
        {"dateTime": _ldt_handle(d), "offset": _offset_handle(d.tzinfo, d), "zoneId": zone},
    )


def _offset_dt(text: str) -> HessianObject:
    d = _dt.datetime.fromisoformat(text.replace("Z", "+00:00"))
    return HessianObject(
        _HL + "OffsetDateTimeHandle",
        {"dateTime": _ldt_handle(d), "offset": _offset_handle(d.tzinfo, d)},
    )


def _offset_time(text: str) -> HessianObject:
    tm = _dt.time.fromisoformat(text.replace("Z", "+00:00"))
    local = HessianObject(_HL + "LocalTimeHandle", _time_fields(tm))
    return HessianObject(
        _HL + "OffsetTimeHandle", {"localTime": local, "zoneOffset": _offset_handle(tm.tzinfo)}
    )


def _duration(text: str) -> HessianObject:
    m = _DURATION.fullmatch(text)
    if m is None or not any(m.group(i) for i in range(2, 6)):
        raise ValueError("ISO-8601 duration such as PT8H6M12.345S")
    sign = -1 if m.group(1) == "-" else 1
    d, h, mi, s = (int(m.group(i) or 0) for i in range(2, 6))
    frac = m.group(6) or ""
    nanos = int(frac.ljust(9, "0")) if frac else 0
    if m.group(5) and m.group(5).startswith("-"):
        nanos = -nanos
    total = sign * ((d * 86400 + h * 3600 + mi * 60 + s) * 10**9 + nanos)
    secs, nano = divmod(total, 10**9)
    return HessianObject(_HL + "DurationHandle", {"seconds": Long(secs), "nanos": Int(nano)})


def _period(text: str) -> HessianObject:
    m = _PERIOD.fullmatch(text)
    if m is None or not any(m.group(i) for i in range(2, 6)):
        raise ValueError("ISO-8601 period such as P1Y2M3D")
    sign = -1 if m.group(1) == "-" else 1
    y, mo, w, d = (sign * int(m.group(i) or 0) for i in range(2, 6))
    fields = {"years": Int(y), "months": Int(mo), "days": Int(d + 7 * w)}
    return HessianObject(_HL + "PeriodHandle", fields)


def _year(text: str) -> HessianObject:
    return HessianObject(_HL + "YearHandle", {"year": Int(int(text))})


def _year_month(text: str) -> HessianObject:
    y, _, mo = text.rpartition("-")
    d = _dt.date(int(y), int(mo), 1)
    return HessianObject(_HL + "YearMonthHandle", {"year": Int(d.year), "month": Int(d.month)})


def _month_day(text: str) -> HessianObject:
    if not text.startswith("--"):
        raise ValueError("--MM-DD")
    mo, _, day = text[2:].partition("-")
    d = _dt.date(2000, int(mo), int(day))  # a leap year: --02-29 is a MonthDay
    return HessianObject(_HL + "MonthDayHandle", {"month": Int(d.month), "day": Int(d.day)})


def _zone_offset(text: str) -> HessianObject:
    return _offset_handle(_offset_id(text))


def _zone_id(text: str) -> HessianObject:
    import zoneinfo

    try:
        zoneinfo.ZoneInfo(text)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        try:
            _offset_id(text)  # an offset id ("+08:00", "Z") is a ZoneId too
        except ValueError:
            raise ValueError("a zone id such as Asia/Shanghai or +08:00") from None
    return HessianObject(_HL + "ZoneIdHandle", {"zoneId": text})


_JTIME_HANDLES: dict[str, Callable[[str], HessianObject]] = {  # keys: javatypes._JTIME_CLASSES
    "java.time.ZonedDateTime": _zoned,
    "java.time.OffsetDateTime": _offset_dt,
    "java.time.OffsetTime": _offset_time,
    "java.time.Duration": _duration,
    "java.time.Period": _period,
    "java.time.Year": _year,
    "java.time.YearMonth": _year_month,
    "java.time.MonthDay": _month_day,
    "java.time.ZoneOffset": _zone_offset,
    "java.time.ZoneId": _zone_id,
}


def other_java_time(value: Any, t: JavaType, path: str) -> HessianObject:
    """Any other java.time class (the ``jtime`` kind): its handle, generic call or not."""
    if type(value) is int and t.name == "java.time.Year":
        value = str(value)
    if not isinstance(value, str):
        raise JavaTypeError(path, t.name, value, "an ISO-8601 string")
    try:
        return _JTIME_HANDLES[t.name](value.strip())
    except (ValueError, KeyError, AssertionError) as e:
        raise JavaTypeError(path, t.name, value, str(e) or "ISO-8601") from None


def _time_fields(tm: _dt.time) -> dict[str, Any]:
    return {
        "hour": Int(tm.hour),
        "minute": Int(tm.minute),
        "second": Int(tm.second),
        "nano": Int(tm.microsecond * 1000),
    }
