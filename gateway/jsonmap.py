"""Decoded hessian values -> JSON, following Dubbo's generic conventions.

BigDecimal travels as a string (no float rounding), dates as ISO-8601, ``byte[]`` as base64,
maps with non-string keys keep their keys (stringified by orjson), maps with unhashable keys
as ``{"$entries": [[k, v], ...]}``.  A cyclic value cannot be JSON and raises ``ValueError``.
"""

from __future__ import annotations

import base64
from decimal import Decimal
from typing import Any

import orjson
from tribridge.codecs.hessian2 import HessianObject, PairMap

_OPTS = orjson.OPT_NON_STR_KEYS


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
    """orjson refuses integers beyond 64 bits: send those as strings (like BigDecimal)."""
    if depth > 200:
        raise ValueError("value is nested too deeply to be JSON")
    if isinstance(v, int) and not isinstance(v, bool):
        if _INT64[0] <= v <= _INT64[1]:
            return v
        try:
            return str(v)
        except ValueError:  # beyond Python's safe decimal-conversion size: hex is linear
            return hex(v)
    if isinstance(v, dict):
        return {k: _big_ints(x, depth + 1) for k, x in v.items()}
    if isinstance(v, list):
        return [_big_ints(x, depth + 1) for x in v]
    return v


def dumps(value: Any) -> bytes:
    try:
        return orjson.dumps(value, default=_default, option=_OPTS)
    except orjson.JSONEncodeError as e:
        msg = str(e)
        if "64-bit" in msg:
            return dumps(_big_ints(value))
        if "ecursion" in msg:
            msg = "value is cyclic or nested too deeply to be JSON"
        raise ValueError(msg) from None


def loads(data: bytes | str) -> Any:
    return orjson.loads(data)
