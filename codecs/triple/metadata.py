"""Dubbo attachments <-> Triple headers (Java ``StreamUtils``).

Header names are lower case on HTTP/2, so a key with upper case is sent lower-cased and
``tri-header-convert`` carries a percent-encoded JSON map back to the original spelling.
Binary values travel as ``<key>-bin`` in unpadded base64 (gRPC's binary metadata).
"""

from __future__ import annotations

import base64
import binascii
import json
import re
from collections.abc import Iterable, Mapping
from typing import Any
from urllib.parse import quote, unquote

HEADER_CONVERT = "tri-header-convert"

#: never sent as attachments: pseudo headers, Triple/gRPC headers, Dubbo's own keys
RESERVED = frozenset(
    {
        "content-type",
        "te",
        "user-agent",
        "authorization",
        "http-status",
        "grpc-status",
        "grpc-message",
        "grpc-status-details-bin",
        "grpc-timeout",
        "grpc-encoding",
        "grpc-accept-encoding",
        "grpc-previous-rpc-attempts",
        "grpc-retry-pushback-ms",
        "tri-consumer-appname",
        "tri-service-version",
        "tri-service-group",
        "tri-service-timeout",
        "tri-header-convert",
        "tri-exception-code",
        "group",
        "interface",
        "path",
        "remote.application",
        "application",
        "serialization",
        "rest-service-version",
        "rest-service-group",
        "generic",
        "version",
        "timeout",
    }
)


#: a header name we send (lower-cased first); regexes, not per-character Python loops:
#: every call with a ``traceparent`` attachment goes through these
_valid_name = re.compile(r"[a-z0-9_.\-]+").fullmatch
#: a legal header value: visible ASCII, space and tab
_legal_value = re.compile(r"[\t -~]*").fullmatch


def attachments_to_headers(attachments: Mapping[str, Any]) -> list[tuple[str, str | bytes]]:
    """Headers for a call's attachments; values Java would drop (maps, lists…) and names
    HTTP/2 cannot carry are left out, as Java logs-and-drops them."""
    out: list[tuple[str, str | bytes]] = []
    convert: dict[str, str] = {}
    for key, value in attachments.items():
        low = key.lower()
        if low.startswith(":") or low in RESERVED or not _valid_name(low):
            continue
        if isinstance(value, (bytes, bytearray)):
            name = low if low.endswith("-bin") else low + "-bin"
            out.append((name, bytes(value)))
        elif isinstance(value, bool):
            out.append((low, "true" if value else "false"))
        elif isinstance(value, (str, int, float)):
            text = str(value)
            if _legal_value(text) is None:
                continue  # not a legal header value; Java's Netty would refuse it too
            out.append((low, text))
        else:
            continue
        if low != key:
            convert[low] = key
    if convert:
        out.append((HEADER_CONVERT, quote(json.dumps(convert, separators=(",", ":")))))
    return out


def headers_to_attachments(
    headers: Iterable[tuple[str, str | bytes]],
) -> dict[str, str | bytes]:
    """Attachments from response headers/trailers: reserved names dropped, ``-bin`` values
    decoded, original key spelling restored from ``tri-header-convert``."""
    items = list(headers)
    convert: dict[str, str] = {}
    for k, v in items:
        if k == HEADER_CONVERT:
            try:
                m = json.loads(unquote(v if isinstance(v, str) else v.decode("latin-1")))
                if isinstance(m, dict):
                    convert = {str(a): str(b) for a, b in m.items()}
            except ValueError:
                pass
    out: dict[str, str | bytes] = {}
    for k, v in items:
        if k.startswith(":") or k in RESERVED:
            continue
        if k.endswith("-bin"):
            if isinstance(v, str):
                try:
                    v = base64.b64decode(v + "=" * (-len(v) % 4))
                except (binascii.Error, ValueError):
                    continue
            k = k[:-4]
        elif isinstance(v, bytes):
            v = v.decode("latin-1")
        out[convert.get(k, k)] = v
    return out
