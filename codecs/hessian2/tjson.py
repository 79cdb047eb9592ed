"""Typed JSON (docs/typed-json.md): the neutral form interop peers and tests compare in.

``to_tjson`` turns a typed decode (``Decoder(typed=True)``) into TJSON with canonical
shared-reference labels; ``from_tjson`` builds the hessian values our encoder writes.
It lives with the codec (not in ``interop/``) because ``tribridge codec decode`` prints it:
production code must not import the test peers.
"""

from __future__ import annotations

import base64
import datetime as _dt
import math
from decimal import Decimal
from typing import Any

from tribridge.codecs.hessian2 import HessianObject, Int, Long, PairMap, TypedList, TypedMap
from tribridge.codecs.hessian2.encoder import datetime_to_ms

_CONTAINERS = (list, dict, HessianObject, PairMap)


def _count(value: Any, seen: dict[int, int]) -> None:
    stack = [value]
    while stack:
        v = stack.pop()
        if not isinstance(v, _CONTAINERS):
            continue
        k = id(v)
        if k in seen:
            seen[k] += 1
            continue
        seen[k] = 1
        if isinstance(v, list):
            stack.extend(reversed(v))
        elif isinstance(v, dict):
            for kk, vv in reversed(list(v.items())):
                stack.extend((vv, kk))
        elif isinstance(v, HessianObject):
            stack.extend(reversed(list(v.fields.values())))
        else:
            for kk, vv in reversed(v.pairs):
                stack.extend((vv, kk))


def to_tjson(value: Any) -> Any:
    counts: dict[int, int] = {}
    _count(value, counts)
    labels: dict[int, int] = {}

    def conv(v: Any) -> Any:
        if v is None:
            return ["null"]
        if isinstance(v, bool):
            return ["bool", v]
        if isinstance(v, Long):
            return ["long", str(int(v))]
        if isinstance(v, int):
            return ["int", int(v)]
        if isinstance(v, float):
            if math.isnan(v):
                return ["double", "NaN"]
            if math.isinf(v):
                return ["double", "Infinity" if v > 0 else "-Infinity"]
            return ["double", v]
        if isinstance(v, str):
            return ["string", v]
        if isinstance(v, (bytes, bytearray)):
            return ["binary", base64.b64encode(v).decode()]
        if isinstance(v, _dt.datetime):
            return ["date", datetime_to_ms(v)]
        if isinstance(v, Decimal):
            return ["object", "java.math.BigDecimal", [["value", ["string", str(v)]]]]
        k = id(v)
        if k in labels:
            return ["ref", labels[k]]
        shared = counts.get(k, 1) > 1
        if shared:
            labels[k] = len(labels)
        if isinstance(v, list):
            out = ["list", getattr(v, "type", None), [conv(i) for i in v]]
        elif isinstance(v, dict):
            out = ["map", getattr(v, "type", None), [[conv(a), conv(b)] for a, b in v.items()]]
        elif isinstance(v, PairMap):
            out = ["map", v.type, [[conv(a), conv(b)] for a, b in v.pairs]]
        elif isinstance(v, HessianObject):
            out = ["object", v.cls, [[f, conv(x)] for f, x in v.fields.items()]]
        else:
            raise TypeError(f"no TJSON form for {type(v).__name__}")
        if shared:
            out.append(labels[k])
        return out

    return conv(value)


def from_tjson(tj: Any) -> Any:
    """Build encoder input from TJSON; labels become shared Python objects."""
    labels: dict[int, Any] = {}

    def conv(t: Any) -> Any:
        tag = t[0]
        if tag == "null":
            return None
        if tag == "bool":
            return bool(t[1])
        if tag == "int":
            return Int(t[1])
        if tag == "long":
            return Long(int(t[1]))
        if tag == "double":
            return (
                float(t[1]) if not isinstance(t[1], str) else float(t[1].replace("Infinity", "inf"))
            )
        if tag == "string":
            return t[1]
        if tag == "binary":
            return base64.b64decode(t[1])
        if tag == "date":
            return _dt.datetime(1970, 1, 1, tzinfo=_dt.UTC) + _dt.timedelta(milliseconds=t[1])
        if tag == "ref":
            return labels[t[1]]
        label = t[3] if len(t) > 3 else None
        if tag == "list":
            out: Any = TypedList(t[1]) if t[1] is not None else []
            if label is not None:
                labels[label] = out
            out.extend(conv(i) for i in t[2])
            return out
        if tag == "map":
            keys_ok = all(e[0][0] not in ("list", "map", "object", "ref") for e in t[2])
            if keys_ok:
                out = TypedMap(t[1]) if t[1] is not None else {}
                if label is not None:
                    labels[label] = out
                for k, v in t[2]:
                    kk = conv(k)
                    out[kk] = conv(v)
                return out
            pm = PairMap(t[1])
            if label is not None:
                labels[label] = pm
            pm.pairs.extend((conv(k), conv(v)) for k, v in t[2])
            return pm
        if tag == "object":
            obj = HessianObject(t[1])
            if label is not None:
                labels[label] = obj
            for f, v in t[2]:
                obj.fields[f] = conv(v)
            return obj
        raise ValueError(f"unknown TJSON tag {tag!r}")

    return conv(tj)
