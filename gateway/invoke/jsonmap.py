"""JSON <-> the values the hessian layer works with, exact for numbers.

**Parsing** (``loads``).  orjson reads integers beyond 64 bits and decimals with more digits
than a double holds as doubles: ``123456789012345678901234567890`` would reach a
``BigInteger`` slot as ``123456789012345677877719597056``.  The README promises exact, so a
body that *may* hold such a number is parsed again by the standard library with every
integer exact and, for a decimal literal no double can hold, a ``Decimal``.  "May" is a
cheap byte scan (``_may_lose_precision``): a decimal with 8 or more digits on one side of
its point (necessary for 16 significant digits), an integer beyond 64 bits, an exponent
below -99 (underflow), or a body
orjson refuses (an exponent beyond a double's range).  Everything else — nearly every body —
is orjson's result unchanged.  Numbers keep their value, not their spelling: ``12.50``
arrives as ``12.5``; send a string to keep a ``BigDecimal``'s scale.

Where a ``Decimal`` may appear is only where a double could not hold the literal; a typed
slot converts it exactly (``BigDecimal``, ``BigInteger``, ``long``) or rounds it
(``double``), and an untyped slot sends a ``double`` (``coercion.infer``).

**Writing** (``dumps``), following Dubbo's generic conventions: ``BigDecimal`` as a string
(no float rounding), ``BigInteger`` (and any integer) as a JSON number with every digit,
dates as ISO-8601, ``byte[]`` as base64, maps with non-string keys keep their keys
(stringified by orjson), maps with unhashable keys as ``{"$entries": [[k, v], ...]}``.  A
cyclic value cannot be JSON and raises ``ValueError``.
"""

from __future__ import annotations

import base64
import json
from decimal import Decimal
from typing import Any

import orjson
from tribridge.codecs.hessian2 import HessianObject, PairMap

_OPTS = orjson.OPT_NON_STR_KEYS

#: What callers catch: orjson's error is a subclass, the exact path raises this one.
JSONDecodeError = json.JSONDecodeError


def _default(v: Any) -> Any:
    if isinstance(v, Decimal):
        return str(v)
    if isinstance(v, (bytes, bytearray, memoryview)):
        return base64.b64encode(bytes(v)).decode("ascii")
    if isinstance(v, PairMap):
        return {"$entries": [[k, x] for k, x in v.pairs]}
    if isinstance(v, HessianObject):
        return {"class": v.cls, **v.fields}
    if isinstance(v, (set, frozenset, tuple)):
        return list(v)
    raise TypeError(f"{type(v).__name__} is not JSON serializable")


_INT64 = (-(2**63), 2**64 - 1)


def _big_ints(v: Any, depth: int = 0) -> Any:
    """orjson refuses integers beyond 64 bits: write those as raw JSON numbers (every
    digit; the README's ``BigInteger`` -> number).  Past Python's int->str digit limit
    (4300 digits) only a hex string is possible."""
    if depth > 200:
        raise ValueError("value is nested too deeply to be JSON")
    if isinstance(v, int) and not isinstance(v, bool):
        if _INT64[0] <= v <= _INT64[1]:
            return v
        try:
            return orjson.Fragment(str(v))
        except ValueError:  # beyond Python's safe decimal-conversion size: hex is linear
            return hex(v)
    if isinstance(v, dict):  # a key is a string in JSON anyway (Map<BigInteger, V> replies)
        return {_big_key(k): _big_ints(x, depth + 1) for k, x in v.items()}
    if isinstance(v, list):
        return [_big_ints(x, depth + 1) for x in v]
    if isinstance(v, HessianObject):
        return {"class": v.cls, **_big_ints(v.fields, depth + 1)}
    if isinstance(v, PairMap):
        return {
            "$entries": [[_big_ints(k, depth + 1), _big_ints(x, depth + 1)] for k, x in v.pairs]
        }
    if isinstance(v, (set, frozenset, tuple)):
        return [_big_ints(x, depth + 1) for x in v]
    return v


def _big_key(k: Any) -> Any:
    if isinstance(k, int) and not isinstance(k, bool) and not _INT64[0] <= k <= _INT64[1]:
        return str(k)
    return k


def _default_number(v: Any) -> Any:
    if isinstance(v, Decimal) and v.is_finite():
        return orjson.Fragment(str(v))
    return _default(v)


def dumps(value: Any, *, decimals_as_numbers: bool = False) -> bytes:
    """``decimals_as_numbers``: a ``Decimal`` that ``loads`` read from a JSON number goes
    back out as that number (relaying a request body), not as the README's ``BigDecimal``
    reply string."""
    default = _default_number if decimals_as_numbers else _default
    try:
        try:
            return orjson.dumps(value, default=default, option=_OPTS)
        except orjson.JSONEncodeError as e:
            if "64-bit" not in str(e):
                raise
        return orjson.dumps(_big_ints(value), default=default, option=_OPTS)
    except orjson.JSONEncodeError as e:
        msg = str(e)
        if "ecursion" in msg:
            msg = "value is cyclic or nested too deeply to be JSON"
        raise ValueError(msg) from None


# ---- exact parsing --------------------------------------------------------------------------


def _number_view_table() -> bytes:
    table = bytearray(b" " * 256)
    for c in b"0123456789":
        table[c] = 0x30
    for c, to in ((b".", b"."), (b"-", b"-"), (b"e", b"e"), (b"E", b"e")):
        table[c[0]] = to[0]
    return bytes(table)


#: digits become "0"; ".", "-" and the exponent letter stay; everything else is " "
_NUMBER_VIEW = _number_view_table()
#: in that view, the shapes of a number orjson could round (each a necessary condition):
_LOSSY_SHAPES = (
    b"0" * 20,  # an integer beyond unsigned 64 bits (or 20+ digits of a decimal)
    b"-" + b"0" * 19,  # a negative integer below -2**63 (and 19-digit ones near it)
    b"00000000.",  # a decimal with 16+ digits has 8+ on one side of its point
    b".00000000",
    b"0" * 16 + b"e",  # 16+ mantissa digits with an exponent and no point
    b"e-000",  # an exponent below -99: underflow towards 0.0
)


def _may_lose_precision(data: bytes) -> bool:
    """True when orjson could round a number in ``data``.  One ``bytes.translate`` and a
    few substring searches, all at C speed; a body of ordinary numbers, 19-digit ids or
    digit-only strings never matches, a decimal with 8+ digits on one side of its point
    does (and is then parsed exactly even if a double would have held it)."""
    t = data.translate(_NUMBER_VIEW)
    return (
        _LOSSY_SHAPES[0] in t
        or _LOSSY_SHAPES[1] in t
        or _LOSSY_SHAPES[2] in t
        or _LOSSY_SHAPES[3] in t
        or _LOSSY_SHAPES[4] in t
        or _LOSSY_SHAPES[5] in t
    )


def _float_or_decimal(text: str) -> float | Decimal:
    """A double when it holds the literal's value exactly as written, else a ``Decimal``."""
    f = float(text)
    if f - f == 0 and Decimal(repr(f)) == Decimal(text):  # finite and exact
        return f
    return Decimal(text)


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def _exact_loads(data: bytes | str) -> Any:
    text = data if isinstance(data, str) else bytes(data).decode("utf-8")
    return json.loads(text, parse_float=_float_or_decimal, parse_constant=_reject_constant)


def loads(data: bytes | bytearray | memoryview | str) -> Any:
    """Parse JSON with every number exact (see the module docstring); raises
    ``JSONDecodeError``."""
    if type(data) is bytes:
        raw = data
    else:
        raw = data.encode("utf-8", "surrogatepass") if isinstance(data, str) else bytes(data)
    if not _may_lose_precision(raw):
        try:
            return orjson.loads(raw)
        except orjson.JSONDecodeError as e:
            if "number" not in str(e):  # not an out-of-range number: a real syntax error
                raise
    try:
        return _exact_loads(data)
    except JSONDecodeError:
        raise
    except (ValueError, RecursionError) as e:  # bad UTF-8, 4300+ digit ints, NaN, depth
        raise JSONDecodeError(str(e) or type(e).__name__, "", 0) from None
