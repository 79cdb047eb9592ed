"""Result mapping and rendering: a provider's reply -> the HTTP response.

Enum objects become their constant names (as Dubbo's generic results do), ``class`` keys are
dropped unless the service keeps them, values no JSON can hold are a 502, and the configured
response attachments become ``x-dubbo-attachment-*`` headers.  A ``GatewayError`` renders as
its status and JSON body.
"""

from __future__ import annotations

import base64
import re
from typing import Any
from urllib.parse import quote

from tribridge.codecs.hessian2 import PairMap
from tribridge.errors import GatewayError
from tribridge.http.messages import Response
from tribridge.invoke.invoker import Call, Service
from tribridge.invoke.jsonmap import dumps


def result_response(svc: Service, call: Call, res: Any) -> Response:
    if not res.ok:
        raise svc.result_error(res, call)
    value = res.value
    enums = svc.enum_classes
    if enums:
        value = enum_names(value, enums)
    if not svc.cfg.include_class:
        value = strip_class(value)
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


def attachment_headers(attachments: dict[str, Any], wanted: list[str]) -> list[tuple[str, str]]:
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


def enum_names(v: Any, enums: frozenset[str]) -> Any:
    """Enum objects -> their constant name, as Dubbo's generic results do."""
    if isinstance(v, dict):
        if v.get("class") in enums and "name" in v and len(v) == 2:
            return v["name"]
        return {k: enum_names(x, enums) for k, x in v.items()}
    if isinstance(v, list):
        return [enum_names(x, enums) for x in v]
    if isinstance(v, PairMap):
        # enum keys (Map<Color, V>) decode as objects, which Python cannot hash: once they are
        # names the map is an ordinary JSON object, as for any other map
        pairs = [(enum_names(k, enums), enum_names(x, enums)) for k, x in v.pairs]
        if all(isinstance(k, (str, int, float, bool)) or k is None for k, _ in pairs):
            return dict(pairs)
        return PairMap(v.type, pairs)
    return v


def strip_class(v: Any) -> Any:
    if isinstance(v, dict):
        return {k: strip_class(x) for k, x in v.items() if k != "class"}
    if isinstance(v, list):
        return [strip_class(x) for x in v]
    return v
