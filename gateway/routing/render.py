"""Result mapping and rendering: a provider's reply -> the HTTP response.

Enum objects become their constant names (as Dubbo's generic results do), ``class`` keys are
dropped unless the service keeps them, values no JSON can hold are a 502, and the configured
response attachments become ``x-dubbo-attachment-*`` headers.  A ``GatewayError`` renders as
its status and JSON body.
"""

from __future__ import annotations

import base64
import re
from collections.abc import Mapping
from decimal import Decimal
from typing import Any
from urllib.parse import quote

from tribridge.codecs.hessian2 import PairMap
from tribridge.errors import GatewayError
from tribridge.http.messages import Response
from tribridge.invoke.call import Call, Outcome
from tribridge.invoke.invoker import Service
from tribridge.invoke.jsonmap import dumps


def result_response(svc: Service, call: Call, res: Outcome) -> Response:
    if res.error is not None:
        raise res.error
    value = res.value
    if type(value) not in _LEAVES:
        enums = svc.enum_classes
        strip = not svc.cfg.include_class
        if enums or strip:
            value = plain_value(value, enums, strip)
    try:
        body = dumps(value)
    except ValueError as e:
        raise GatewayError(
            502, "unrepresentable_result", str(e), service=svc.cfg.interface, method=call.method
        ) from None
    if svc.cfg.response_attachments and res.attachments:
        return Response(
            200, body, attachment_headers(res.attachments, svc.cfg.response_attachments)
        )
    return Response(200, body)




#: prefix of the response headers that carry provider response attachments
ATTACHMENT_HEADER = "x-dubbo-attachment-"


def attachment_headers(attachments: Mapping[str, Any], wanted: list[str]) -> list[tuple[str, str]]:
    """``x-dubbo-attachment-<name>`` headers for the configured response attachments.
    Names are matched case-insensitively and sent lower-cased; strings that are not
    printable ASCII are percent-encoded (UTF-8), bytes base64-encoded, other values JSON."""
    every = "*" in wanted
    out: list[tuple[str, str]] = []
    for key, value in attachments.items():
        name = str(key).lower()
        if not (every or name in wanted) or not _HEADER_TOKEN.match(name):
            continue
        if isinstance(value, (bytes, bytearray)):
            text = base64.b64encode(bytes(value)).decode()
        elif isinstance(value, str):
            text = (
                value
                if _PRINTABLE.match(value)
                else quote(value, safe=" !\"#$&'()*+,/:;<=>?@[]^`{|}~")
            )
        else:
            try:
                text = dumps(value).decode()
            except ValueError:
                continue
        out.append((ATTACHMENT_HEADER + name, text))
    return out


_HEADER_TOKEN = re.compile(r"^[a-z0-9][a-z0-9._-]*$")
_PRINTABLE = re.compile(r"^[\x20-\x7e]*$")



def error_response(e: GatewayError) -> Response:
    headers = getattr(e, "headers", None)
    return Response(e.status, e.body(), list(headers) if headers else [])


#: value types with nothing inside to rewrite: the walks below skip them without a call
_LEAVES = frozenset((str, int, float, bool, type(None), bytes, Decimal))

# The walk below changes the decoded value in place: the decoder built it for this one reply,
# and copying every object of a 100-POJO list (once for enums, once for class keys) cost more
# than decoding it. A shared object (a hessian reference) may be visited twice: a second
# visit changes nothing more, and an enum object is replaced in its container, never changed
# itself, so every reference to it still reads as the enum.


def plain_value(v: Any, enums: frozenset[str], strip: bool) -> Any:
    """One walk: enum objects -> their constant name (as Dubbo's generic results show
    them) and, with ``strip``, every ``"class"`` key of the value's maps dropped."""
    if isinstance(v, dict):
        if enums and v.get("class") in enums and "name" in v and len(v) == 2:
            return v["name"]
        for k, x in v.items():
            if type(x) not in _LEAVES:
                y = plain_value(x, enums, strip)
                if y is not x:
                    v[k] = y  # (a value replaced: the dict's size does not change)
        if strip:
            v.pop("class", None)
        return v
    if isinstance(v, list):
        for i, x in enumerate(v):
            if type(x) not in _LEAVES:
                y = plain_value(x, enums, strip)
                if y is not x:
                    v[i] = y
        return v
    if isinstance(v, PairMap) and enums:
        # enum keys (Map<Color, V>) decode as objects, which Python cannot hash: once they are
        # names the map is an ordinary JSON object, as for any other map (a map that stays a
        # PairMap keeps its entries' class keys)
        pairs = [(plain_value(k, enums, False), plain_value(x, enums, False)) for k, x in v.pairs]
        if all(isinstance(k, (str, int, float, bool)) or k is None for k, _ in pairs):
            d = dict(pairs)
            return strip_class(d) if strip else d
        return PairMap(v.type, pairs)
    return v


def enum_names(v: Any, enums: frozenset[str]) -> Any:
    """Enum objects -> their constant name, as Dubbo's generic results do."""
    return plain_value(v, enums, False)


def strip_class(v: Any) -> Any:
    """Every ``"class"`` key of the value's maps dropped (unless the service keeps them)."""
    if isinstance(v, dict):
        v.pop("class", None)
        for x in v.values():
            if type(x) not in _LEAVES:
                strip_class(x)
        return v
    if isinstance(v, list):
        for x in v:
            if type(x) not in _LEAVES:
                strip_class(x)
        return v
    return v
