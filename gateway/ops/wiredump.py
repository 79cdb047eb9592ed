"""Human-facing views of wire bytes for ``tribridge codec``: hex in, JSON out, and back."""

from __future__ import annotations

import re
from typing import Any

import orjson
from tribridge.codecs import dubbo
from tribridge.codecs.dubbo.frame import HEADER_LEN, STATUS_NAMES
from tribridge.codecs.hessian2 import decode, encode, parse_type
from tribridge.codecs.hessian2.coercion import coerce
from tribridge.codecs.hessian2.tjson import to_tjson
from tribridge.invoke.jsonmap import JSONDecodeError, dumps, loads

_HEX_JUNK = re.compile(r"(0x|\\x|[\s:,-])", re.IGNORECASE)


def parse_hex(text: str) -> bytes:
    cleaned = _HEX_JUNK.sub("", text)
    if not cleaned:
        raise ValueError("no hex input")
    try:
        return bytes.fromhex(cleaned)
    except ValueError:
        raise ValueError("input is not hex") from None


def dump_value(data: bytes, typed: bool = False) -> bytes:
    if typed:
        return orjson.dumps(to_tjson(decode(data, typed=True)))
    return dumps(decode(data))


def dump_frame(data: bytes) -> bytes:
    flag, status, rid, length = dubbo.unpack_header(data)
    if len(data) != HEADER_LEN + length:
        raise ValueError(f"frame declares a {length}-byte body but {len(data) - HEADER_LEN} follow")
    frame = dubbo.Frame(flag, status, rid, data[HEADER_LEN:])
    head: dict[str, Any] = {
        "request": frame.is_request,
        "twoway": frame.is_twoway,
        "event": frame.is_event,
        "serialization": frame.serialization,
        "request_id": rid,
        "body_length": length,
    }
    if frame.serialization != 2:
        raise ValueError(f"serialization id {frame.serialization} is not hessian2")
    if frame.is_request:
        if frame.is_event:
            head["heartbeat"] = frame.is_heartbeat
            head["data"] = None if frame.is_heartbeat else decode(frame.body)
            return dumps(head)
        inv = dubbo.decode_request_body(frame.body)
        head.update(
            dubbo_version=inv.dubbo_version,
            path=inv.path,
            version=inv.version,
            method=inv.method,
            parameter_types=inv.desc,
            arguments=inv.args,
            attachments=inv.attachments,
        )
        return dumps(head)
    res = dubbo.decode_response(frame)
    head["status"] = status
    head["status_name"] = STATUS_NAMES.get(status, "UNKNOWN")
    if res.event:
        head["heartbeat"] = frame.is_heartbeat
    elif res.error is not None or status != 20:
        head["error"] = res.error
    else:
        head["response_flag"] = res.flag
        if res.exception is not None:
            head["exception"] = res.exception.to_json()
        else:
            head["value"] = res.value
        head["attachments"] = res.attachments
    return dumps(head)


def encode_json(text: str, java_type: str, generic: bool = False) -> bytes:
    try:
        value = loads(text)
    except JSONDecodeError as e:
        raise ValueError(f"invalid JSON: {e}") from None
    return encode(coerce(value, parse_type(java_type), "value", generic=generic))
